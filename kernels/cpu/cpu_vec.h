/* cpu_vec.h — the small vector vocabulary the CPU kernels are written in once (cpu_kern_body.h), defined for the
 * level of the file that includes it: CPU_VEC_AVX512 (F, BW, DQ, VL), CPU_VEC_AVX2 (with FMA and F16C) or
 * CPU_VEC_NEON (AArch64 Advanced SIMD), or CPU_VEC_SCALAR (one lane: plain C). Each level's file sets its
 * target before including this.
 *
 *   vf            a vector of VN floats;  vm  a lane mask (the result of a comparison)
 *   v_load/v_store, v_load_n/v_store_n (the first n < VN lanes; the rest read as 0 / left untouched),
 *   v_loadw/v_storew (w <= VN lanes, whole-vector instructions when w is VN)
 *   v_add v_sub v_mul v_div v_max v_min v_abs, v_fma(a, b, c) = a·b + c, v_fnma(a, b, c) = c - a·b
 *   v_round (to nearest even), v_ldexp(p, n) = p·2^n for integral n in [-150, 128] (denormal results rounded once)
 *   v_gt/v_ge/v_lt (ordered: false for NaN), v_sel(m, a, b) = m ? a : b, v_any(m)
 *   v_hsum, v_hmax (across lanes), v_load_f16/v_load_bf16 (VN 16-bit floats widened) */
#ifndef KERNELS_CPU_VEC_H
#define KERNELS_CPU_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VINL static inline __attribute__((always_inline))

#if defined(CPU_VEC_AVX512)
#include <immintrin.h>
#define VN 16
typedef __m512 vf;
typedef __mmask16 vm;
VINL vf v_zero(void) { return _mm512_setzero_ps(); }
VINL vf v_set1(float x) { return _mm512_set1_ps(x); }
VINL vf v_load(const float *p) { return _mm512_loadu_ps(p); }
VINL void v_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
VINL __mmask16 v_first(int n) { return (__mmask16)((1u << n) - 1); }
VINL vf v_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(v_first(n), p); }
VINL void v_store_n(float *p, vf v, int n) { _mm512_mask_storeu_ps(p, v_first(n), v); }
VINL vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
VINL vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
VINL vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
VINL vf v_div(vf a, vf b) { return _mm512_div_ps(a, b); }
VINL vf v_max(vf a, vf b) { return _mm512_max_ps(a, b); }
VINL vf v_min(vf a, vf b) { return _mm512_min_ps(a, b); }
VINL vf v_abs(vf a) { return _mm512_abs_ps(a); }
VINL vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
VINL vf v_fnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
VINL vf v_round(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
VINL vf v_ldexp(vf p, vf n) { return _mm512_scalef_ps(p, n); }
VINL vm v_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
VINL vm v_ge(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
VINL vm v_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
VINL vf v_sel(vm m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }
VINL int v_any(vm m) { return m != 0; }
VINL float v_hsum(vf a) { return _mm512_reduce_add_ps(a); }
VINL float v_hmax(vf a) { return _mm512_reduce_max_ps(a); }
VINL vf v_load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
VINL vf v_load_bf16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

#elif defined(CPU_VEC_AVX2)
#include <immintrin.h>
#define VN 8
typedef __m256 vf;
typedef __m256 vm;
VINL vf v_zero(void) { return _mm256_setzero_ps(); }
VINL vf v_set1(float x) { return _mm256_set1_ps(x); }
VINL vf v_load(const float *p) { return _mm256_loadu_ps(p); }
VINL void v_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
VINL __m256i v_first(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
VINL vf v_load_n(const float *p, int n) { return _mm256_maskload_ps(p, v_first(n)); }
VINL void v_store_n(float *p, vf v, int n) { _mm256_maskstore_ps(p, v_first(n), v); }
VINL vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
VINL vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
VINL vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
VINL vf v_div(vf a, vf b) { return _mm256_div_ps(a, b); }
VINL vf v_max(vf a, vf b) { return _mm256_max_ps(a, b); }
VINL vf v_min(vf a, vf b) { return _mm256_min_ps(a, b); }
VINL vf v_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
VINL vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
VINL vf v_fnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
VINL vf v_round(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
VINL vf v_pow2i(__m256i k) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23)); }
VINL vf v_ldexp(vf p, vf n) { /* two factors keep each 2^k normal; the second product rounds into denormals */
    __m256i k = _mm256_cvtps_epi32(n), k1 = _mm256_srai_epi32(k, 1);
    return _mm256_mul_ps(_mm256_mul_ps(p, v_pow2i(k1)), v_pow2i(_mm256_sub_epi32(k, k1)));
}
VINL vm v_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
VINL vm v_ge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
VINL vm v_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
VINL vf v_sel(vm m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
VINL int v_any(vm m) { return _mm256_movemask_ps(m) != 0; }
VINL float v_hsum(vf a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
VINL float v_hmax(vf a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
VINL vf v_load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
VINL vf v_load_bf16(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

#elif defined(CPU_VEC_NEON)
#include <arm_neon.h>
#define VN 4
typedef float32x4_t vf;
typedef uint32x4_t vm;
VINL vf v_zero(void) { return vdupq_n_f32(0.0f); }
VINL vf v_set1(float x) { return vdupq_n_f32(x); }
VINL vf v_load(const float *p) { return vld1q_f32(p); }
VINL void v_store(float *p, vf v) { vst1q_f32(p, v); }
VINL vf v_load_n(const float *p, int n) {
    float t[4] = {0, 0, 0, 0};
    memcpy(t, p, (size_t)n * sizeof(float));
    return vld1q_f32(t);
}
VINL void v_store_n(float *p, vf v, int n) {
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, (size_t)n * sizeof(float));
}
VINL vf v_add(vf a, vf b) { return vaddq_f32(a, b); }
VINL vf v_sub(vf a, vf b) { return vsubq_f32(a, b); }
VINL vf v_mul(vf a, vf b) { return vmulq_f32(a, b); }
VINL vf v_div(vf a, vf b) { return vdivq_f32(a, b); }
VINL vf v_max(vf a, vf b) { return vmaxq_f32(a, b); } /* NaN in, NaN out (maxnm would drop it) */
VINL vf v_min(vf a, vf b) { return vminq_f32(a, b); }
VINL vf v_abs(vf a) { return vabsq_f32(a); }
VINL vf v_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
VINL vf v_fnma(vf a, vf b, vf c) { return vfmsq_f32(c, a, b); }
VINL vf v_round(vf a) { return vrndnq_f32(a); }
VINL vf v_pow2i(int32x4_t k) { return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k, vdupq_n_s32(127)), 23)); }
VINL vf v_ldexp(vf p, vf n) {
    int32x4_t k = vcvtnq_s32_f32(n), k1 = vshrq_n_s32(k, 1);
    return vmulq_f32(vmulq_f32(p, v_pow2i(k1)), v_pow2i(vsubq_s32(k, k1)));
}
VINL vm v_gt(vf a, vf b) { return vcgtq_f32(a, b); }
VINL vm v_ge(vf a, vf b) { return vcgeq_f32(a, b); }
VINL vm v_lt(vf a, vf b) { return vcltq_f32(a, b); }
VINL vf v_sel(vm m, vf a, vf b) { return vbslq_f32(m, a, b); }
VINL int v_any(vm m) { return vmaxvq_u32(m) != 0; }
VINL float v_hsum(vf a) { return vaddvq_f32(a); }
VINL float v_hmax(vf a) { return vmaxvq_f32(a); }
VINL vf v_load_f16(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
VINL vf v_load_bf16(const uint16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }

#elif defined(CPU_VEC_SCALAR) /* one lane: the generic level's Winograd transforms */
#include <math.h>
#define VN 1
typedef float vf;
typedef int vm;
VINL vf v_zero(void) { return 0.0f; }
VINL vf v_set1(float x) { return x; }
VINL vf v_load(const float *p) { return *p; }
VINL void v_store(float *p, vf v) { *p = v; }
VINL vf v_load_n(const float *p, int n) { return n > 0 ? *p : 0.0f; }
VINL void v_store_n(float *p, vf v, int n) {
    if (n > 0) *p = v;
}
VINL vf v_add(vf a, vf b) { return a + b; }
VINL vf v_sub(vf a, vf b) { return a - b; }
VINL vf v_mul(vf a, vf b) { return a * b; }
VINL vf v_div(vf a, vf b) { return a / b; }
VINL vf v_max(vf a, vf b) { return a > b ? a : b; }
VINL vf v_min(vf a, vf b) { return a < b ? a : b; }
VINL vf v_abs(vf a) { return fabsf(a); }
VINL vf v_fma(vf a, vf b, vf c) { return a * b + c; }
VINL vf v_fnma(vf a, vf b, vf c) { return c - a * b; }
VINL vm v_gt(vf a, vf b) { return a > b; }
VINL vm v_ge(vf a, vf b) { return a >= b; }
VINL vm v_lt(vf a, vf b) { return a < b; }
VINL vf v_sel(vm m, vf a, vf b) { return m ? a : b; }
VINL int v_any(vm m) { return m; }
VINL float v_hsum(vf a) { return a; }
VINL float v_hmax(vf a) { return a; }

#else
#error "cpu_vec.h: define CPU_VEC_AVX512, CPU_VEC_AVX2, CPU_VEC_NEON or CPU_VEC_SCALAR"
#endif

#if defined(CPU_VEC_AVX512) /* a half vector: 8-wide tails of head dims such as 40 cost half a zmm */
#define VHALF 1
typedef __m256 vh;
VINL vh vh_load(const float *p) { return _mm256_loadu_ps(p); }
VINL void vh_store(float *p, vh v) { _mm256_storeu_ps(p, v); }
VINL vh vh_fma(vh a, vh b, vh c) { return _mm256_fmadd_ps(a, b, c); }
VINL vh vh_low(vf a) { return _mm512_castps512_ps256(a); }
VINL vh vh_zero(void) { return _mm256_setzero_ps(); }
#else
#define VHALF 0
#endif

/* w lanes, w <= VN: a whole vector when w is VN */
VINL vf v_loadw(const float *p, int w) { return w == VN ? v_load(p) : v_load_n(p, w); }
VINL void v_storew(float *p, vf v, int w) {
    if (w == VN) v_store(p, v);
    else v_store_n(p, v, w);
}

#endif
