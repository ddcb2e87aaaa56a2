/* cpu_simd.c — vectorised row kernels of the CPU backend (AVX-512 with a portable C twin), chosen at run time. */
#include "cpu_simd.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/half.h"

/* ---- level selection ---- */

static int g_level = -1;

static cpu_simd_level detect(void) {
    const char *e = getenv("SD_CPU_SIMD");
    if (e && !strcmp(e, "generic")) return CPU_SIMD_GENERIC;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return CPU_SIMD_AVX512;
    return CPU_SIMD_GENERIC;
}

cpu_simd_level cpu_simd_get(void) {
    if (g_level < 0) g_level = detect();
    return (cpu_simd_level)g_level;
}

cpu_simd_level cpu_simd_set(cpu_simd_level l) {
    cpu_simd_level old = cpu_simd_get();
    if (l == CPU_SIMD_AVX512) {
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq") ||
            !__builtin_cpu_supports("avx512vl"))
            l = CPU_SIMD_GENERIC;
    }
    g_level = l;
    return old;
}

const char *cpu_simd_name(cpu_simd_level l) { return l == CPU_SIMD_AVX512 ? "avx512" : "generic"; }

#define AVX512 (g_level == CPU_SIMD_AVX512)

/* ---- polynomial constants ----
 * exp: e^x = 2^n · e^r, n = round(x / ln 2), r = x - n ln2 in [-ln2/2, ln2/2] (ln 2 split so n·LN2_HI is exact);
 * e^r by a degree-6 least-squares fit (relative error 2.6e-9 before float rounding).
 * erf(u) = u · P(u²) for |u| < ERF_T (degree 5 in u², abs error 8e-9);
 * erfc(u) = exp(-u²) · R(t), t = 1 / (1 + u/2) for u >= ERF_T (R fits erfcx on [ERF_T, 10], rel error 2.4e-9). */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.42860682030941723e-6f
#define EXP_LO (-104.0f) /* e^-104 is below the smallest float denormal */
#define EXP_HI 88.7f
static const float EXP_C[7] = {1.0f, 1.000000037735531f, 0.5000000107769619f, 0.16666415441350427f, 0.04166621821842437f,
                               0.00837513187807255f, 0.00139485845501401f};
#define ERF_T 0.875f
static const float ERF_P[6] = {1.1283791633204685f, -0.37612574571392549f, 0.11282670383433355f, -0.026798669381659420f,
                               0.0050423433944972338f, -0.00062542445806692485f};
static const float ERFC_R[10] = {4.1196795187889859e-06f, 0.28197020100801690f, 0.28374407207622693f, 0.23425951050824889f,
                                 0.23731447110174966f, -0.11208188832911571f, 0.41147847612957172f, -0.61473061225063008f,
                                 0.35255702127492650f, -0.074516575663178167f};
#define SQRT1_2 0.70710678118654752f

/* ---- scalar forms (generic level; written branch-light so compilers can vectorise the loops) ---- */

static inline float pow2i(int k) { return f32_from_bits((uint32_t)(k + 127) << 23); } /* 2^k, k in [-126, 127] */

float cpu_expf(float x) {
    x = x < EXP_LO ? EXP_LO : x > EXP_HI ? EXP_HI : x; /* NaN fails both tests and stays NaN */
    float t = x * LOG2E + 12582912.0f;                  /* 1.5·2^23: rounds to the nearest integer */
    float n = t - 12582912.0f;
    float r = x - n * LN2_HI;
    r = r - n * LN2_LO;
    float p = EXP_C[6];
    for (int i = 5; i >= 0; i--) p = p * r + EXP_C[i];
    int ni = (int)n, n1 = ni / 2; /* two factors keep each 2^k normal; the product rounds into denormals */
    return p * pow2i(n1) * pow2i(ni - n1);
}

float cpu_erfcf(float u) {
    float t = 1.0f / (1.0f + 0.5f * u), r = ERFC_R[9];
    for (int i = 8; i >= 0; i--) r = r * t + ERFC_R[i];
    return cpu_expf(-u * u) * r;
}

float cpu_gelu(float x) {
    float u = x * SQRT1_2, au = fabsf(u), f;
    if (au < ERF_T) {
        float z = u * u, p = ERF_P[5];
        for (int i = 4; i >= 0; i--) p = p * z + ERF_P[i];
        f = 1.0f + u * p;
    } else {
        float e = cpu_erfcf(au);
        f = u > 0 ? 2.0f - e : e;
    }
    return 0.5f * x * f;
}

static inline float silu1(float v) { return v / (1.0f + cpu_expf(-v)); }

static inline float act1(be_act a, float v) {
    switch (a) {
    case BE_ACT_SILU: return silu1(v);
    case BE_ACT_GELU: return cpu_gelu(v);
    case BE_ACT_QUICK_GELU: return v / (1.0f + cpu_expf(-1.702f * v));
    default: return v;
    }
}

/* ---- AVX-512 ---- */

#define T512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")))

T512 static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(EXP_LO), _mm512_min_ps(_mm512_set1_ps(EXP_HI), x)); /* NaN is returned as is */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(EXP_C[6]);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C[5]));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C[4]));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C[3]));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C[2]));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C[1]));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C[0]));
    return _mm512_scalef_ps(p, n); /* p·2^n, with denormal results rounded correctly */
}

T512 static inline __m512 silu512(__m512 v) {
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
}

T512 static inline __m512 gelu512(__m512 x) {
    __m512 u = _mm512_mul_ps(x, _mm512_set1_ps(SQRT1_2));
    __m512 au = _mm512_abs_ps(u), z = _mm512_mul_ps(u, u);
    __m512 p = _mm512_set1_ps(ERF_P[5]);
    for (int i = 4; i >= 0; i--) p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(ERF_P[i]));
    __m512 f = _mm512_fmadd_ps(u, p, _mm512_set1_ps(1.0f));
    __mmask16 big = _mm512_cmp_ps_mask(au, _mm512_set1_ps(ERF_T), _CMP_GE_OQ);
    if (big) {
        __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(au, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
        __m512 r = _mm512_set1_ps(ERFC_R[9]);
        for (int i = 8; i >= 0; i--) r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(ERFC_R[i]));
        __m512 e = _mm512_mul_ps(exp512(_mm512_sub_ps(_mm512_setzero_ps(), z)), r);
        __mmask16 pos = _mm512_cmp_ps_mask(u, _mm512_setzero_ps(), _CMP_GT_OQ);
        __m512 g = _mm512_mask_sub_ps(e, pos, _mm512_set1_ps(2.0f), e);
        f = _mm512_mask_blend_ps(big, f, g);
    }
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), f);
}

T512 static inline __m512 act512(be_act a, __m512 v) {
    switch (a) {
    case BE_ACT_SILU: return silu512(v);
    case BE_ACT_GELU: return gelu512(v);
    case BE_ACT_QUICK_GELU:
        return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_mul_ps(v, _mm512_set1_ps(-1.702f)))));
    default: return v;
    }
}

static inline __mmask16 tail_mask(size_t left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

T512 static void widen_f16_512(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < n; i++) dst[i] = f16_to_f32(src[i]);
}

T512 static void widen_bf16_512(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i)));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
    for (; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

T512 static void bias_act_512(const float *x, const float *bias, be_act act, float *y, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));
        _mm512_mask_storeu_ps(y + i, m, act512(act, v));
    }
}

T512 static void geglu_512(const float *a, const float *g, float *y, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = gelu512(_mm512_maskz_loadu_ps(m, g + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i), v));
    }
}

T512 static void axpy_512(const float *a, const float *x, float alpha, float *y, size_t n) {
    __m512 al = _mm512_set1_ps(alpha);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_fmadd_ps(al, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, a + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

T512 static void affine_512(const float *x, const float *mean, const float *scale, const float *shift, int silu, float *y, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, mean + i));
        __m512 v = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, scale + i), _mm512_maskz_loadu_ps(m, shift + i));
        if (silu) v = silu512(v);
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

T512 static void moments_512(const float *x, size_t ld, int rows, const float *shift, float *s1, float *s2, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 sh = _mm512_maskz_loadu_ps(m, shift + i), a = _mm512_setzero_ps(), q = _mm512_setzero_ps();
        for (int r = 0; r < rows; r++) {
            __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + r * ld + i), sh);
            a = _mm512_add_ps(a, d);
            q = _mm512_fmadd_ps(d, d, q);
        }
        _mm512_mask_storeu_ps(s1 + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, s1 + i), a));
        _mm512_mask_storeu_ps(s2 + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, s2 + i), q));
    }
}

T512 static void layer_norm_512(const float *x, const float *gamma, const float *beta, float eps, float *y, int n) {
    __m512 s = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    float mean = _mm512_reduce_add_ps(s) / n;
    __m512 mv = _mm512_set1_ps(mean), q = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), mv);
        q = _mm512_fmadd_ps(d, d, q);
    }
    float rstd = 1.0f / sqrtf(_mm512_reduce_add_ps(q) / n + eps);
    __m512 rv = _mm512_set1_ps(rstd);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv), rv);
        if (gamma) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, gamma + i));
        if (beta) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, beta + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

T512 static float max_512(const float *x, size_t n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (size_t i = 0; i < n; i += 16) mx = _mm512_mask_max_ps(mx, tail_mask(n - i), mx, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    return _mm512_reduce_max_ps(mx);
}

T512 static float exp_sum_512(float *x, float mval, size_t n) {
    __m512 m = _mm512_set1_ps(mval), s = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m));
        _mm512_mask_storeu_ps(x + i, k, e);
        s = _mm512_mask_add_ps(s, k, s, e);
    }
    return _mm512_reduce_add_ps(s);
}

T512 static void scale_512(float *x, float sc, size_t n) {
    __m512 s = _mm512_set1_ps(sc);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), s));
    }
}

/* F16C (every AVX2 processor has it): the generic level's widening of f16 weights, the bulk of its non-GEMM time */
__attribute__((target("avx,f16c"))) static void widen_f16_f16c(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = f16_to_f32(src[i]);
}

static int has_f16c(void) {
    static int v = -1;
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    }
    return v;
}

/* ---- dispatch ---- */

void cpu_widen_f16(const uint16_t *src, float *dst, size_t n) {
    if (AVX512) { widen_f16_512(src, dst, n); return; }
    if (has_f16c()) { widen_f16_f16c(src, dst, n); return; }
    for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(src[i]);
}

void cpu_widen_bf16(const uint16_t *src, float *dst, size_t n) {
    if (AVX512) { widen_bf16_512(src, dst, n); return; }
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

void cpu_bias_act_row(const float *x, const float *bias, be_act act, float *y, size_t n) {
    if (AVX512) { bias_act_512(x, bias, act, y, n); return; }
    for (size_t i = 0; i < n; i++) y[i] = act1(act, x[i] + (bias ? bias[i] : 0.0f));
}

void cpu_geglu_row(const float *a, const float *g, float *y, size_t n) {
    if (AVX512) { geglu_512(a, g, y, n); return; }
    for (size_t i = 0; i < n; i++) y[i] = a[i] * cpu_gelu(g[i]);
}

void cpu_axpy_row(const float *a, const float *x, float alpha, float *y, size_t n) {
    if (AVX512) { axpy_512(a, x, alpha, y, n); return; }
    for (size_t i = 0; i < n; i++) y[i] = a[i] + alpha * x[i];
}

void cpu_affine_row(const float *x, const float *mean, const float *scale, const float *shift, int silu, float *y, size_t n) {
    if (AVX512) { affine_512(x, mean, scale, shift, silu, y, n); return; }
    for (size_t i = 0; i < n; i++) {
        float v = (x[i] - mean[i]) * scale[i] + shift[i];
        y[i] = silu ? silu1(v) : v;
    }
}

void cpu_shifted_moments(const float *x, size_t ld, int rows, const float *shift, float *s1, float *s2, size_t n) {
    if (AVX512) { moments_512(x, ld, rows, shift, s1, s2, n); return; }
    for (int r = 0; r < rows; r++)
        for (size_t i = 0; i < n; i++) {
            float d = x[r * ld + i] - shift[i];
            s1[i] += d;
            s2[i] += d * d;
        }
}

void cpu_layer_norm_row(const float *x, const float *gamma, const float *beta, float eps, float *y, int n) {
    if (AVX512) { layer_norm_512(x, gamma, beta, eps, y, n); return; }
    double s = 0, v = 0;
    for (int j = 0; j < n; j++) s += x[j];
    double mean = s / n;
    for (int j = 0; j < n; j++) v += (x[j] - mean) * (x[j] - mean);
    float m = (float)mean, rstd = (float)(1.0 / sqrt(v / n + eps));
    for (int j = 0; j < n; j++) y[j] = (x[j] - m) * rstd * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
}

float cpu_max_row(const float *x, size_t n) {
    if (AVX512) return max_512(x, n);
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

float cpu_exp_sum_row(float *x, float m, size_t n) {
    if (AVX512) return exp_sum_512(x, m, n);
    float s = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = cpu_expf(x[i] - m);
        s += x[i];
    }
    return s;
}

void cpu_scale_row(float *x, float s, size_t n) {
    if (AVX512) { scale_512(x, s, n); return; }
    for (size_t i = 0; i < n; i++) x[i] *= s;
}
