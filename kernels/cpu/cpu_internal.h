/* cpu_internal.h — shared state and helpers of the CPU backend's files. */
#ifndef KERNELS_CPU_INTERNAL_H
#define KERNELS_CPU_INTERNAL_H

#include <cblas.h>

#include "../backend.h"

typedef struct cpu_impl {
    int threads;
    void *arena_mem;
    size_t arena_bytes;
    float *scratch;        /* im2col and attention scores; grown on demand, kept between calls */
    size_t scratch_floats;
} cpu_impl;

float *cpu_scratch(be *b, size_t floats);
void cpu_bias_act(float *y, size_t rows, int cols, const float *bias, be_act act);
void cpu_timestep_embedding_host(const float *t, int n, int dim, int flip, float shift, float *out);

void cpu_linear(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y);
void cpu_conv2d(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, int stride, int pad_lo, int pad_hi, be_tensor *y);
void cpu_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y);

#endif
