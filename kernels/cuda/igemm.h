/* igemm.h — the tensor-core GEMM of igemm.cu (convolutions as implicit GEMMs, linear layers as 1x1 convolutions) and
 * its fused prologue / epilogue, described by one argument block. Pointers are device memory. */
#ifndef KERNELS_CUDA_IGEMM_H
#define KERNELS_CUDA_IGEMM_H

#include "cuda_internal.h"

#define NORM_GROUP 1
#define NORM_LAYER 2
#define IN_NARROW 3 /* (the kernel's mode, not a norm) an input of C < 32 channels, C a multiple of 4 (conv_in): no
                     * prologue, K = taps·C copied in 8-byte pieces and zero-padded to a multiple of 32 */
#define IG_MAX_STATS CUDA_GN_MAX_EMIT

/* One set of GroupNorm statistics of an igemm's stored output for a later GroupNorm prologue (graph.cu links the ops):
 * the output's column c is channel c + coff of the consumer's input of ctot channels in `groups` groups (coff > 0
 * or ctot > cout: one part of a channel concat). Each tile leaves (count, mean, M2) of every (sample, group) piece
 * it touches (ns x gt slots per tile in ws); the last tile merges each (sample, group)'s pieces in tile order, then
 * the other part's (count, mean, M2) in `merge` when not NULL (left by an earlier op), and writes (mean, rstd) to
 * out and/or (count, mean, M2) to partial (for a later op's merge). ns, gt and ws are set by the launch. */
typedef struct ig_stats {
    float2 *out;
    float *partial;
    const float *merge;
    int groups, coff, ctot, ns, gt;
    float eps;
    float *ws;
} ig_stats;

typedef struct ig_args {
    /* input NHWC: channels [0, ca) of xa, [ca, C) of xb (concat; xb NULL when C = ca); the convolution sees H x W,
     * the stored tensors are (H >> up) x (W >> up) (2x nearest upsample when up = 1) */
    const void *xa, *xb;
    int ca, C, H, W, up;
    /* convolution: output Ho x Wo, kernel taps = kh * kw of width kw, stride, top/left padding; M = N·Ho·Wo rows,
     * K = taps · C */
    int Ho, Wo, kw, taps, stride, pad, M, K;
    /* nw weights [cout][taps][C] with f32 biases (or NULL) and outputs [M][cout]; with geglu (nw = 1) the output is
     * [M][cout / 2] = a · GELU(g) of the weight's halves */
    const void *w[3];
    const float *bias[3];
    void *y[3];
    int nw, cout, geglu;
    int act;            /* be_act after bias + add (not with geglu) */
    /* a 1x1 shortcut summed into the product (a second stretch of K: k in [K, K + sC)): the output pixel's channels
     * [0, sca) of sxa and [sca, sC) of sxb (stored Ho x Wo, no prologue) times sw [cout][sC], + sbias; sxa NULL: none */
    const void *sxa, *sxb;
    int sca, sC;
    const void *sw;
    const float *sbias;
    const void *add;    /* [N][cout] per-sample broadcast, or NULL */
    const void *res;    /* [M][out width], added last (may be y[0]), or NULL */
    /* prologue: NORM_GROUP with (mean, rstd) per [n][groups] in stats (cpg channels per group), or NORM_LAYER over C
     * (statistics made by the kernel); affine gamma/beta (f32, may be NULL), eps, then SiLU when silu */
    int norm;
    const float2 *stats;
    int groups, cpg, silu;
    const float *gamma, *beta;
    float eps;
    /* statistics epilogue (nw = 1, no GEGLU): nst sets (ig_stats), a counter set by the launch */
    ig_stats st[IG_MAX_STATS];
    int nst;
    unsigned *counter;
    int vec_out;        /* set by cuda_igemm: the output widths allow 16-byte rows */
    float *ws;          /* set by the launch when K is split: f32 partial tiles, and a counter per tile */
    unsigned *counters;
} ig_args;

/* Sequences (igemm.cu): consecutive ops in one launch, each tile waiting for the tiles of earlier ops it depends on:
 * those holding its output rows (IG_DEP_OUT), its input window's rows (IG_DEP_IN), or all (IG_DEP_ALL). */
#define IG_SEQ_MAX 16
#define IG_DEP_OUT 1
#define IG_DEP_IN 2
#define IG_DEP_ALL 4

typedef struct ig_seq_op {
    ig_args a;
    int first, gx, gy, S;              /* items [first, first + gx·gy·S): row tiles, column tiles, K slices */
    int done_off;                      /* its row tiles' counters: done[done_off + row tile] */
    unsigned char dep[IG_SEQ_MAX];     /* on each earlier op: IG_DEP_* */
} ig_seq_op;

typedef struct ig_seq {
    ig_seq_op op[IG_SEQ_MAX];
    int nops, items, ndone;
    unsigned *ticket;                  /* [0] the next ticket, [1] blocks finished; zero between launches */
    unsigned *done;                    /* per op and row tile: column tiles whose epilogue ran; zero between launches */
    const unsigned *order;             /* NULL: ticket t runs item t; else item order[t] (tests) */
    unsigned long long *fault;         /* host memory: a wait that timed out leaves its record (igemm.cu) here */
    unsigned long long timeout_ns;     /* how long a wait may take */
    unsigned stall;                    /* tests: each wait needs this many tiles more than there are */
} ig_seq;

/* Runs it; SD_ERR_UNSUPPORTED (no message) when the shapes or the storage type do not fit the kernel (f32 storage,
 * C, ca, sC or sca not a multiple of 32, unaligned tensors): the caller then takes the cuBLAS path. */
sd_status cuda_igemm(be *b, const ig_args *a);
/* Whether cuda_igemm would take a (without running anything). */
int cuda_igemm_fits(be *b, const ig_args *a);

#endif
