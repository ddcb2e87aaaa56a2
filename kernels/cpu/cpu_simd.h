/* cpu_simd.h — the CPU backend's levels and its vectorised kernels. One binary per architecture carries every
 * level it can run; the level is chosen once at run time from the processor's features:
 *   avx512   AVX-512 F/BW/DQ/VL (x86-64)          avx2   AVX2 + FMA + F16C (x86-64)
 *   neon     Advanced SIMD (every AArch64 CPU)     generic  portable C (any machine; the reference)
 * $SD_CPU_LEVEL=generic|avx2|avx512|neon forces one (a level the CPU lacks falls back to the best it has).
 * The vector levels are one source (cpu_kern_body.h over cpu_vec.h) compiled per level; they agree with the
 * generic level to a few float ulps.
 *
 * The transcendental functions are our own polynomial fits (cpu_math.h); their error against the libm
 * functions is under 2 ulp for exp and under 3e-7 relative for erfc, checked by tests/test_cpu_fast.c. */
#ifndef KERNELS_CPU_SIMD_H
#define KERNELS_CPU_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"

typedef enum cpu_level { CPU_LEVEL_GENERIC = 0, CPU_LEVEL_AVX2, CPU_LEVEL_AVX512, CPU_LEVEL_NEON, CPU_LEVEL_COUNT } cpu_level;

/* The level in use: the best the CPU has, unless $SD_CPU_LEVEL names another it has. */
cpu_level cpu_level_get(void);
/* Forces a level (tests compare them); returns the previous one. A level the CPU (or this build) lacks is
 * refused: the level stays as it was. */
cpu_level cpu_level_set(cpu_level l);
int cpu_level_supported(cpu_level l);
const char *cpu_level_name(cpu_level l);

/* How 3x3 stride-1 convolutions run (cpu_winograd.c): the measured rules, or forced for comparisons and tests.
 * The default comes from $SD_CPU_CONV=default|direct|auto|im2col|wino2|wino4|wino6 (default: Winograd F(2x2) where
 * cpu_wino_rule_loop says it wins, and F(4x4)/F(6x6) where cpu_wino_rule says so while be->single_pass is set, i.e.
 * in the VAE decode; direct: the slab path everywhere; auto: cpu_wino_rule everywhere; im2col: no slab). */
enum { CPU_CONV_AUTO, CPU_CONV_DIRECT, CPU_CONV_IM2COL, CPU_CONV_WINO4, CPU_CONV_WINO6, CPU_CONV_DEFAULT, CPU_CONV_WINO2 };
int cpu_conv_mode(void);
int cpu_conv_mode_set(int mode); /* returns the previous mode */
/* The measured rules: the Winograd tile size m (4 or 6) for an [N, H, W, C] -> O convolution, or 0 (direct); and
 * whether F(2x2) beats the direct path there (2, else 0), for the sampler's loop where only F(2x2) rounds little enough. */
int cpu_wino_rule(int N, int H, int W, int C, int O);
int cpu_wino_rule_loop(int N, int H, int W, int C, int O);

/* Winograd F(m x m, 3 x 3) tile sizes: m = 2 (4 x 4 input tiles), 4 (6 x 6) or 6 (8 x 8). */
#define WINO_MAX_T 8

/* The kernels one level provides (each level's table; the generic one is in cpu_simd.c). */
typedef struct cpu_kern {
    void (*widen_f16)(const uint16_t *src, float *dst, size_t n);
    void (*widen_bf16)(const uint16_t *src, float *dst, size_t n);
    void (*bias_act_row)(const float *x, const float *bias, be_act act, float *y, size_t n);
    void (*geglu_row)(const float *a, const float *g, float *y, size_t n);
    void (*axpy_row)(const float *a, const float *x, float alpha, float *y, size_t n);
    void (*affine_row)(const float *x, const float *mean, const float *scale, const float *shift, int silu, float *y, size_t n);
    void (*shifted_moments)(const float *x, size_t ld, int rows, const float *shift, float *s1, float *s2, size_t n);
    void (*layer_norm_row)(const float *x, const float *gamma, const float *beta, float eps, float *y, int n);
    float (*max_row)(const float *x, size_t n);
    float (*exp_sum_row)(float *x, float m, size_t n);
    void (*scale_row)(float *x, float s, size_t n);
    /* multi-head attention (the flash kernel of the level); NULL: the generic sgemm version */
    void (*attention)(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y);
    /* Winograd transforms (cpu_wino_body.h, cpu_winograd.c says what they compute); m is 4 or 6. */
    void (*wino_weight)(int m, const float *w, int C, int no, float *U, size_t ldu);
    void (*wino_input)(int m, const float *x, int N, int H, int W, int C, int tw, int th, long t0, int nt, float *V, size_t ldv);
    void (*wino_output)(int m, const float *M, size_t ldm, int N, int H, int W, int O, int tw, int th, long t0, int nt, const float *bias,
                        float *y, int ldy);
} cpu_kern;

extern const cpu_kern cpu_kern_generic;
#if defined(__x86_64__)
extern const cpu_kern cpu_kern_avx2, cpu_kern_avx512;
#endif
#if defined(__aarch64__)
extern const cpu_kern cpu_kern_neon;
#endif
/* The kernels of the level in use. */
const cpu_kern *cpu_kern_get(void);

/* 16-bit float storage widened to f32. */
void cpu_widen_f16(const uint16_t *src, float *dst, size_t n);
void cpu_widen_bf16(const uint16_t *src, float *dst, size_t n);

/* y[i] = act(x[i] + (bias ? bias[i] : 0)); y may be x. */
void cpu_bias_act_row(const float *x, const float *bias, be_act act, float *y, size_t n);
/* y[i] = a[i] * GELU(g[i]) (erf GELU). */
void cpu_geglu_row(const float *a, const float *g, float *y, size_t n);
/* y[i] = a[i] + alpha * x[i]; y may alias a. */
void cpu_axpy_row(const float *a, const float *x, float alpha, float *y, size_t n);
/* y[i] = (x[i] - mean[i]) * scale[i] + shift[i], then SiLU when silu is set (GroupNorm's per-channel affine). */
void cpu_affine_row(const float *x, const float *mean, const float *scale, const float *shift, int silu, float *y, size_t n);
/* s1[i] += x[i] - shift[i], s2[i] += (x[i] - shift[i])² over `rows` rows of n (row stride ld). */
void cpu_shifted_moments(const float *x, size_t ld, int rows, const float *shift, float *s1, float *s2, size_t n);
/* LayerNorm of one row: y = (x - mean) * rstd * gamma + beta (gamma/beta may be NULL). */
void cpu_layer_norm_row(const float *x, const float *gamma, const float *beta, float eps, float *y, int n);
/* max of x[0..n) (n >= 1). */
float cpu_max_row(const float *x, size_t n);
/* x[i] = exp(x[i] - m); returns the sum. */
float cpu_exp_sum_row(float *x, float m, size_t n);
/* x[i] *= s */
void cpu_scale_row(float *x, float s, size_t n);

/* Scalar forms of the polynomial approximations (the generic level and the tests use them). */
float cpu_expf(float x);
float cpu_erfcf(float x);  /* x >= 0 */
float cpu_gelu(float x);

#endif
