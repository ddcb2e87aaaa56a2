/* cpu_simd.c — the CPU backend's level selection, the generic (portable C) level's kernels, and the dispatch of
 * the row kernels to the level in use. The vector levels' kernels are in cpu_kern_*.c (cpu_kern_body.h). */
#include "cpu_simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/half.h"
#include "cpu_math.h"

/* ---- levels ---- */

static const char *const LEVEL_NAMES[CPU_LEVEL_COUNT] = {"generic", "avx2", "avx512", "neon"};

const char *cpu_level_name(cpu_level l) { return (unsigned)l < CPU_LEVEL_COUNT ? LEVEL_NAMES[l] : "?"; }

int cpu_level_supported(cpu_level l) {
    switch (l) {
    case CPU_LEVEL_GENERIC: return 1;
#if defined(__x86_64__)
    case CPU_LEVEL_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case CPU_LEVEL_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#endif
#if defined(__aarch64__)
    case CPU_LEVEL_NEON: return 1; /* Advanced SIMD (with FMA and f16 conversions) is part of every AArch64 CPU */
#endif
    default: return 0;
    }
}

static const cpu_kern *const TABLES[CPU_LEVEL_COUNT] = {
    &cpu_kern_generic,
#if defined(__x86_64__)
    &cpu_kern_avx2, &cpu_kern_avx512, NULL,
#elif defined(__aarch64__)
    NULL, NULL, &cpu_kern_neon,
#else
    NULL, NULL, NULL,
#endif
};

static int g_level = -1;
static const cpu_kern *g_kern = &cpu_kern_generic;

static cpu_level best(void) {
    static const cpu_level order[] = {CPU_LEVEL_AVX512, CPU_LEVEL_AVX2, CPU_LEVEL_NEON};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (cpu_level_supported(order[i])) return order[i];
    return CPU_LEVEL_GENERIC;
}

static void use(cpu_level l) {
    g_level = l;
    g_kern = TABLES[l];
}

cpu_level cpu_level_get(void) {
    if (g_level < 0) {
        cpu_level l = best();
        const char *e = getenv("SD_CPU_LEVEL");
        for (int i = 0; e && i < CPU_LEVEL_COUNT; i++)
            if (!strcmp(e, LEVEL_NAMES[i]) && cpu_level_supported((cpu_level)i)) l = (cpu_level)i;
        use(l);
    }
    return (cpu_level)g_level;
}

cpu_level cpu_level_set(cpu_level l) {
    cpu_level old = cpu_level_get();
    if ((unsigned)l < CPU_LEVEL_COUNT && cpu_level_supported(l)) use(l);
    return old;
}

const cpu_kern *cpu_kern_get(void) {
    if (g_level < 0) cpu_level_get();
    return g_kern;
}

/* ---- the generic level (written branch-light so compilers can vectorise the loops) ---- */

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
    case BE_ACT_QUICK_GELU: return v / (1.0f + cpu_expf(-QUICK_GELU_K * v));
    case BE_ACT_RELU: return v < 0.0f ? 0.0f : v;
    default: return v;
    }
}


static void g_widen_f16(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(src[i]);
}

static void g_widen_bf16(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

static void g_bias_act(const float *x, const float *bias, be_act act, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = act1(act, x[i] + (bias ? bias[i] : 0.0f));
}

static void g_geglu(const float *a, const float *g, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = a[i] * cpu_gelu(g[i]);
}

static void g_axpy(const float *a, const float *x, float alpha, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = a[i] + alpha * x[i];
}

static void g_affine(const float *x, const float *mean, const float *scale, const float *shift, int silu, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = (x[i] - mean[i]) * scale[i] + shift[i];
        y[i] = silu ? silu1(v) : v;
    }
}

static void g_moments(const float *x, size_t ld, int rows, const float *shift, float *s1, float *s2, size_t n) {
    for (int r = 0; r < rows; r++)
        for (size_t i = 0; i < n; i++) {
            float d = x[r * ld + i] - shift[i];
            s1[i] += d;
            s2[i] += d * d;
        }
}

static void g_layer_norm(const float *x, const float *gamma, const float *beta, float eps, float *y, int n) {
    double s = 0, v = 0;
    for (int j = 0; j < n; j++) s += x[j];
    double mean = s / n;
    for (int j = 0; j < n; j++) v += (x[j] - mean) * (x[j] - mean);
    float m = (float)mean, rstd = (float)(1.0 / sqrt(v / n + eps));
    for (int j = 0; j < n; j++) y[j] = (x[j] - m) * rstd * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
}

static float g_max(const float *x, size_t n) {
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static float g_exp_sum(float *x, float m, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = cpu_expf(x[i] - m);
        s += x[i];
    }
    return s;
}

static void g_scale(float *x, float s, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

/* the scalar Winograd transforms (cpu_wino_generic.c) */
void cpu_wino_weight_generic(int m, const float *w, int C, int no, float *U, size_t ldu);
void cpu_wino_input_generic(int m, const float *x, int N, int H, int W, int C, int tw, int th, long t0, int nt, float *V, size_t ldv);
void cpu_wino_output_generic(int m, const float *M, size_t ldm, int N, int H, int W, int O, int tw, int th, long t0, int nt, const float *bias,
                             float *y, int ldy);

const cpu_kern cpu_kern_generic = {
    .widen_f16 = g_widen_f16,
    .widen_bf16 = g_widen_bf16,
    .bias_act_row = g_bias_act,
    .geglu_row = g_geglu,
    .axpy_row = g_axpy,
    .affine_row = g_affine,
    .shifted_moments = g_moments,
    .layer_norm_row = g_layer_norm,
    .max_row = g_max,
    .exp_sum_row = g_exp_sum,
    .scale_row = g_scale,
    .attention = NULL,
    .wino_weight = cpu_wino_weight_generic,
    .wino_input = cpu_wino_input_generic,
    .wino_output = cpu_wino_output_generic,
};

/* ---- dispatch ---- */

void cpu_widen_f16(const uint16_t *src, float *dst, size_t n) { cpu_kern_get()->widen_f16(src, dst, n); }
void cpu_widen_bf16(const uint16_t *src, float *dst, size_t n) { cpu_kern_get()->widen_bf16(src, dst, n); }
void cpu_bias_act_row(const float *x, const float *bias, be_act act, float *y, size_t n) { cpu_kern_get()->bias_act_row(x, bias, act, y, n); }
void cpu_geglu_row(const float *a, const float *g, float *y, size_t n) { cpu_kern_get()->geglu_row(a, g, y, n); }
void cpu_axpy_row(const float *a, const float *x, float alpha, float *y, size_t n) { cpu_kern_get()->axpy_row(a, x, alpha, y, n); }
void cpu_affine_row(const float *x, const float *mean, const float *scale, const float *shift, int silu, float *y, size_t n) {
    cpu_kern_get()->affine_row(x, mean, scale, shift, silu, y, n);
}
void cpu_shifted_moments(const float *x, size_t ld, int rows, const float *shift, float *s1, float *s2, size_t n) {
    cpu_kern_get()->shifted_moments(x, ld, rows, shift, s1, s2, n);
}
void cpu_layer_norm_row(const float *x, const float *gamma, const float *beta, float eps, float *y, int n) {
    cpu_kern_get()->layer_norm_row(x, gamma, beta, eps, y, n);
}
float cpu_max_row(const float *x, size_t n) { return cpu_kern_get()->max_row(x, n); }
float cpu_exp_sum_row(float *x, float m, size_t n) { return cpu_kern_get()->exp_sum_row(x, m, n); }
void cpu_scale_row(float *x, float s, size_t n) { cpu_kern_get()->scale_row(x, s, n); }
