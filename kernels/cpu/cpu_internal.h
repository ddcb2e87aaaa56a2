/* cpu_internal.h — shared state and helpers of the CPU backend's files. */
#ifndef KERNELS_CPU_INTERNAL_H
#define KERNELS_CPU_INTERNAL_H

#include <cblas.h>

#include "../backend.h"
#include "cpu_simd.h"

/* A weight as the CPU backend keeps it: the checkpoint's storage type (f32, f16 or bf16; parameter vectors are
 * always f32). Copied weights (owned) have conv kernels re-laid out to [out][kh][kw][in]; borrowed ones (zero-copy:
 * the checkpoint's mapped pages) keep PyTorch's [out][in][kh][kw], and cpu_weight_rows re-lays out k x k kernels
 * while it widens them. 16-bit matrices are widened to f32 per call. */
typedef struct cpu_w {
    be_dtype type;
    size_t count;          /* elements */
    void *data;            /* owned: 64-byte aligned; borrowed: element-aligned */
    int borrowed;          /* data is the caller's: release(keep) when freed */
    int torch_layout;      /* [out][in][kh][kw] with kh·kw > 1: rows need re-laying out */
    void (*release)(void *);
    void *keep;
} cpu_w;

/* Per-op wall time, for SD_CPU_PROFILE=1 (printed when the backend is freed). */
enum { PROF_LINEAR, PROF_CONV, PROF_WIDEN, PROF_GN, PROF_LN, PROF_ATTN, PROF_ELEM, PROF_COPY, PROF_COUNT };

typedef struct cpu_impl {
    int threads;
    void *arena_mem;
    size_t arena_bytes;
    float *scratch;        /* conv and attention working memory; grown on demand, kept between calls */
    size_t scratch_floats;
    float *wide;           /* f32 copy of rows [wide_o0, +wide_n) of the 16-bit weight `wide_of`, kept for the next call */
    size_t wide_floats;
    const void *wide_of;
    int wide_o0, wide_n;
    cpu_w **borrowed;      /* the zero-copy weights, whose pages be_arena_trim drops from the process */
    int nborrowed, borrowed_cap;
    int profile;
    double prof_s[PROF_COUNT];
    double prof_flops[PROF_COUNT];
    long prof_calls[PROF_COUNT];
} cpu_impl;

float *cpu_scratch(be *b, size_t floats);
/* 16-bit weights are widened to f32 at most WIDE_FLOATS at a time (a 1280x2560x3x3 conv would be 113 MiB): ops
 * run over blocks of cpu_weight_block(w) output rows, each from cpu_weight_rows(), which returns rows [o0, o0+n)
 * of the [out][kh·kw·in] matrix as f32 (the stored data when it is f32, else a widened copy valid until the next
 * call; repeated calls for the same rows reuse it). */
#define WIDE_FLOATS ((size_t)4 << 20)
int cpu_weight_block(const be_weight *w);
const float *cpu_weight_rows(be *b, const be_weight *w, int o0, int n);
static inline const float *cpu_vec(const be_weight *w) { return w ? (const float *)((const cpu_w *)w->data)->data : NULL; }
double cpu_now(void);

/* y[M, N] (ldy) = A[M, K] (lda) · B[N, K]ᵀ (ldb) + bias, then act; split over the backend's threads. */
void cpu_gemm_nt(be *b, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *y, int ldy, const float *bias, be_act act);

/* 3x3 stride-1 pad-1 convolution by Winograd F(m x m, 3 x 3) (cpu_winograd.c): output channels [o0, o0+O) of y
 * from their f32 weight rows wf [O][3][3][C]; bias is already offset. */
void cpu_conv3x3_wino(be *b, const be_tensor *x, const float *wf, const float *bias, be_tensor *y, int o0, int O, int m);
/* The Winograd tile size (4 or 6) for a 3x3 stride-1 pad-1 convolution of x to O channels, or 0 for the direct paths. */
int cpu_wino_choose(const be *b, const be_tensor *x, int O);

void cpu_timestep_embedding_host(const float *t, int n, int dim, int flip, float shift, float *out);

void cpu_linear(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y);
void cpu_conv2d(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, int stride, int pad_lo, int pad_hi, be_tensor *y);
void cpu_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y);
void cpu_group_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, int groups, float eps, int silu, be_tensor *y);
void cpu_layer_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, float eps, be_tensor *y);

#endif
