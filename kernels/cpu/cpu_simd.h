/* cpu_simd.h — the CPU backend's vectorised row kernels: AVX-512 when the processor has it (chosen once at
 * run time), portable C otherwise. Every function here has both versions; they agree to a few float ulps.
 *
 * The transcendental functions are our own polynomial fits (tools-free: the coefficients were fitted once by
 * least squares on Chebyshev nodes and are stated below); their error against the libm functions is under
 * 2 ulp for exp and under 3e-7 relative for erfc, checked by tests/test_cpu_simd.c. */
#ifndef KERNELS_CPU_SIMD_H
#define KERNELS_CPU_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"

typedef enum cpu_simd_level { CPU_SIMD_GENERIC = 0, CPU_SIMD_AVX512 = 1 } cpu_simd_level;

/* The level in use: AVX-512 (F, BW, DQ, VL) when the CPU has it, unless $SD_CPU_SIMD=generic. */
cpu_simd_level cpu_simd_get(void);
/* Forces a level (tests compare the two); returns the previous one. Asking for AVX-512 on a CPU without it
 * keeps the generic level. */
cpu_simd_level cpu_simd_set(cpu_simd_level l);
const char *cpu_simd_name(cpu_simd_level l);

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
