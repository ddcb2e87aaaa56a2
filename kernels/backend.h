/* backend.h — the contract between model code and compute backends (CPU, CUDA).
 *
 * Model code (text_encoder/, unet/, vae/) is written once against these calls. Conventions:
 *  - Activations are channels-last: be_tensor {n, h, w, c} is [N, H, W, C]. A token sequence is
 *    [N, 1, T, C]; a linear layer or 1x1 conv acts on the [N*H*W, C] matrix; attention treats the
 *    H*W positions of each sample as its sequence. Activation storage is the backend's (f32 on the
 *    CPU, f16 on CUDA); the host only sees f32 through be_upload / be_download.
 *  - Parameters are be_weight: uploaded once from PyTorch layout ([out, in] linear, [out, in, kh, kw]
 *    conv, [len] vectors, [rows, dim] embedding tables) and re-laid out privately by the backend.
 *  - Activations come from an arena with stack discipline: allocate the output first, then
 *    `m = be_mark(be)`, scratch tensors, `be_release(be, m)`. Addresses repeat from step to step.
 *  - Ops never return errors: a failure (shape mismatch, arena exhausted, CUDA error) is recorded
 *    once in the backend and later ops are skipped; check be_status() at the end of a forward.
 *  - Measure mode (be_measure_begin/end) runs a forward without computing anything, to learn the
 *    arena peak before any memory is reserved. */
#ifndef KERNELS_BACKEND_H
#define KERNELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/arena.h"
#include "../core/status.h"

typedef struct be_tensor {
    void *data;           /* backend memory; NULL after a failed allocation */
    int n, h, w, c;
} be_tensor;

typedef enum be_wkind { BE_W_VEC, BE_W_LINEAR, BE_W_CONV, BE_W_EMBED } be_wkind;
typedef enum be_dtype { BE_F32, BE_F16, BE_BF16 } be_dtype;

typedef struct be_weight {
    void *data;           /* backend-private layout and storage type */
    be_wkind kind;
    int out, in, kh, kw;  /* VEC: out = length; LINEAR: [out, in]; CONV: [out, in, kh, kw]; EMBED: [out rows, in dim] */
} be_weight;

/* RELU: TAESD; NaN passes through, as torch.relu. BE_ACT_COUNT: the element-wise activations (NONE .. RELU: be_act_fn,
 * be_linear, be_gemm). BE_ACT_GEGLU only in be_gemm: the product's two halves [a | g] give y = a · GELU(g) (half the
 * channels). */
typedef enum be_act { BE_ACT_NONE, BE_ACT_SILU, BE_ACT_GELU, BE_ACT_QUICK_GELU, BE_ACT_RELU, BE_ACT_GEGLU } be_act;
#define BE_ACT_COUNT BE_ACT_GEGLU
typedef enum be_norm { BE_NORM_NONE, BE_NORM_GROUP, BE_NORM_LAYER } be_norm;

/* A GEMM-shaped op with what surrounds it in the models fused in (be_gemm below). */
typedef struct be_gemm_args {
    const be_tensor *x, *x2;        /* input x [N,H,W,Ca], concatenated along C with x2 [N,H,W,Cb] when x2 != NULL */
    int up2x;                       /* 1: the input is read through a 2x nearest upsample ([N,2H,2W,C]) */
    int stride, pad_lo, pad_hi;     /* convolution weights; a linear weight is a 1x1 conv (stride 1, no padding) */
    be_norm norm;                   /* prologue: GroupNorm (groups) or LayerNorm over C of the input, eps, */
    int groups;                     /*   affine gamma/beta (may be NULL), then SiLU when norm_silu */
    float eps;
    const be_weight *gamma, *beta;
    int norm_silu;
    int nw;                         /* 1..3 weights of one kind and shape, all applied to the same input */
    const be_weight *w[3], *bias[3];/*   (bias may be NULL) */
    be_tensor *y[3];
    be_act act;                     /* epilogue: y = act(product + bias + add) + residual */
    const be_tensor *add;           /* [N,1,1,out] per-sample broadcast (a time embedding), or NULL */
    const be_tensor *residual;      /* like y[0] (nw = 1), may alias it; or NULL */
    /* or a residual made here by a 1x1 shortcut (a ResNet block whose channels change): residual = sx·swᵀ + sbias,
     * sx [N,Ho,Wo,Cs] concatenated with sx2 when not NULL, sw linear [out][Cs]; nw = 1, no activation, add or
     * residual. A fusing backend sums both products before one rounding. */
    const be_tensor *sx, *sx2;
    const be_weight *sw, *sbias;
} be_gemm_args;

typedef struct be be;

struct be_ops {
    const char *name;
    int host_memory;      /* activations live in the process's own RAM (they add to its RSS beside the weights) */
    void (*free)(be *b);
    /* memory */
    sd_status (*arena_reserve)(be *b, size_t bytes);             /* (re)create the activation arena */
    void (*arena_trim)(be *b);                                     /* optional: give back the memory above the top */
    sd_status (*weight_upload)(be *b, be_weight *w, be_dtype src_type, const void *src);
    void (*weight_free)(be *b, be_weight *w);
    /* memory of its own outside the arena, for data a model keeps across forwards (caches) */
    sd_status (*buffer_alloc)(be *b, size_t bytes, void **p);
    void (*buffer_free)(be *b, void *p);
    void (*upload)(be *b, be_tensor *dst, const float *src);       /* host f32 NHWC -> backend */
    void (*download)(be *b, const be_tensor *src, float *dst);     /* backend -> host f32 NHWC */
    sd_status (*sync)(be *b);
    /* ops: shapes were checked by the be_* wrappers before these are called */
    void (*linear)(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y);
    void (*conv2d)(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, int stride, int pad_lo, int pad_hi, be_tensor *y);
    void (*group_norm)(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, int groups, float eps, int silu, be_tensor *y);
    void (*layer_norm)(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, float eps, be_tensor *y);
    void (*act)(be *b, be_act act, const be_tensor *x, be_tensor *y);
    void (*geglu)(be *b, const be_tensor *x, be_tensor *y);
    void (*add)(be *b, const be_tensor *a, const be_tensor *x, float alpha, be_tensor *y);
    void (*attention)(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y);
    void (*upsample_nearest)(be *b, const be_tensor *x, be_tensor *y);
    void (*concat_channels)(be *b, const be_tensor *a, const be_tensor *x, be_tensor *y);
    void (*embedding)(be *b, const int32_t *ids, const be_weight *table, be_tensor *y);
    void (*timestep_embedding)(be *b, const float *t, int flip_sin_to_cos, float freq_shift, be_tensor *y);
    /* optional: the fused op; returns 0 when it does not take these arguments, and be_gemm then runs it as the
     * sequence of the ops above */
    int (*gemm)(be *b, const be_gemm_args *a);
};

struct be {
    const struct be_ops *ops;
    void *impl;              /* the backend's private state */
    size_t elem_size;        /* bytes per activation element (4 on the CPU, 2 on CUDA) */
    mem_arena arena;          /* activation arena (addresses are backend memory) */
    int measuring;           /* measure mode: allocations count, ops do nothing */
    mem_arena measure_saved;
    sd_status err;           /* first failure, sticky */
    char err_msg[512];
    size_t weight_bytes;     /* backend memory held by weights */
    size_t weight_mapped;    /* bytes of zero-copy weights computed from in place (the caller's memory) */
    double flops;            /* multiply-adds x 2 of the GEMM-shaped ops issued so far (also in measure mode) */
    int single_pass;         /* set while a model runs whose output is not fed back into it (the VAE decode): a
                              * backend may then take convolution algorithms that round more for speed (the CPU's
                              * Winograd), which in the sampler's loop would compound over the steps */
    /* Optional zero-copy upload (set by backends that can compute from host memory in place, NULL otherwise; kept
     * out of be_ops so backends without it need not name it): compute from src and call release(keep) when the
     * weight is freed; a weight the backend must copy is refused with SD_ERR_UNSUPPORTED, nothing touched. */
    sd_status (*weight_borrow)(be *b, be_weight *w, be_dtype src_type, const void *src, void (*release)(void *), void *keep);
};

/* ---- backends ---- */
be *be_cpu_new(int threads);   /* threads <= 0: all cores */
/* The CPU kernels' level in use: "avx512", "avx2", "neon" or "generic" (chosen from the CPU's features; $SD_CPU_LEVEL). */
const char *be_cpu_level(void);
/* CUDA (kernels/cuda/): activations and GEMM weights stored in act_dtype (BE_F16 normally; BE_BF16 or BE_F32
 * where f16 overflows, e.g. the SDXL VAE), f32 accumulation, f32 norm statistics and attention scores.
 * Returns NULL with sd_last_error() set when there is no device or the build has no CUDA backend. */
be *be_cuda_new(int device, be_dtype act_dtype);
int be_cuda_available(void);                     /* 1 when the build has CUDA and a device is present */
const char *be_cuda_device_name(const be *b);    /* the GPU's name, NULL for other backends */
/* With $SD_CUDA_PROFILE=1 when it was made, a CUDA backend times every op with CUDA events (and runs without graphs);
 * this prints the table per op (time, calls, TFLOP/s and GB/s against the given peaks) and clears it. No-op otherwise. */
void be_cuda_profile_print(be *b, FILE *f, double peak_tflops, double peak_gbs);
void be_free(be *b);

/* ---- status ---- */
sd_status be_status(const be *b);   /* SD_OK, or the first failure (its message goes to sd_last_error) */
void be_set_error(be *b, sd_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void be_clear_error(be *b);
static inline int be_ok(const be *b) { return b->err == SD_OK; }

/* ---- memory ---- */
sd_status be_arena_reserve(be *b, size_t bytes);
be_tensor be_new(be *b, int n, int h, int w, int c);
static inline size_t be_mark(be *b) { return arena_mark(&b->arena); }
static inline void be_release(be *b, size_t mark) { arena_release(&b->arena, mark); }
/* Gives the arena's memory above its current top back to the system (what lies there is dead by the stack
 * discipline, and its contents are lost); addresses, size and everything below the top stay. Between stages
 * whose peaks differ (sampling, then decoding) this keeps the process from holding both. Zero-copy weights'
 * pages leave the process too (they stay in the page cache and come back, at a minor fault each, when next
 * read), so a stage holds only the weights it uses. A no-op where the backend has nothing to give back. */
void be_arena_trim(be *b);
void be_measure_begin(be *b);
size_t be_measure_end(be *b);      /* returns the arena peak seen while measuring */
sd_status be_weight_upload(be *b, be_weight *w, be_wkind kind, int out, int in, int kh, int kw, be_dtype src_type, const void *src);
/* Zero-copy upload: as be_weight_upload, but a backend that can compute from src in place (the CPU: from a
 * memory-mapped checkpoint) keeps pointing at it and calls release(keep) when the weight is freed; src must stay
 * valid and unchanged until then, and must lie in a read-only file mapping (be_arena_trim drops its pages from the
 * process, which would zero anonymous memory). *borrowed says which happened: 0 when the backend copied (then release is
 * never called and the caller still owns src). */
sd_status be_weight_upload_borrowed(be *b, be_weight *w, be_wkind kind, int out, int in, int kh, int kw, be_dtype src_type, const void *src,
                                    void (*release)(void *), void *keep, int *borrowed);
void be_weight_free(be *b, be_weight *w);
/* A tensor in memory of its own, outside the arena and its stack discipline: for what a model keeps across
 * forwards (the cross-attention keys and values of a text context). Contents undefined until written; nothing is
 * allocated in measure mode (t->data stays NULL). be_buffer_free releases it (NULL data: nothing). */
sd_status be_buffer_new(be *b, be_tensor *t, int n, int h, int w, int c);
void be_buffer_free(be *b, be_tensor *t);
void be_upload(be *b, be_tensor *dst, const float *src);
void be_download(be *b, const be_tensor *src, float *dst);
sd_status be_sync(be *b);

static inline size_t be_numel(const be_tensor *t) { return (size_t)t->n * t->h * t->w * t->c; }
static inline be_tensor be_view(be_tensor t, int n, int h, int w, int c) {
    /* a reshape: same memory, same element count (checked by callers through the ops' shape checks) */
    t.n = n; t.h = h; t.w = w; t.c = c;
    return t;
}

/* ---- ops (shape-checking wrappers) ---- */
/* y[rows, out] = act(x[rows, in] · Wᵀ + bias); rows = n*h*w; bias may be NULL. */
void be_linear(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y);
/* 2-D convolution, NHWC, kernel from the weight; zero padding pad_lo at top/left and pad_hi at bottom/right. */
void be_conv2d(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, int stride, int pad_lo, int pad_hi, be_tensor *y);
/* GroupNorm over (H, W, C/groups) per sample and group, biased variance, optional fused SiLU. */
void be_group_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, int groups, float eps, int silu, be_tensor *y);
/* LayerNorm over C. */
void be_layer_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, float eps, be_tensor *y);
/* y = act(x): SiLU, GELU (erf), QuickGELU, ReLU; y may alias x. */
void be_act_fn(be *b, be_act act, const be_tensor *x, be_tensor *y);
/* x [.., 2C] = [a | g] -> y [.., C] = a * GELU(g). */
void be_geglu(be *b, const be_tensor *x, be_tensor *y);
/* y = a + alpha * x; x's n, h, w may each be 1 (broadcast), c must match. y may alias a. */
void be_add(be *b, const be_tensor *a, const be_tensor *x, float alpha, be_tensor *y);
/* Multi-head scaled dot-product attention per sample; q [N, Tq, heads*d], k/v [N, Tk, heads*d]
 * (T = h*w of each tensor); softmax(q·kᵀ/sqrt(d) [+ causal mask]) · v. */
void be_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y);
/* Nearest-neighbour resize to y's H, W (src = floor(dst * in / out)); exact 2x when y is twice x. */
void be_upsample_nearest(be *b, const be_tensor *x, be_tensor *y);
/* y[..., :Ca] = a, y[..., Ca:] = x. */
void be_concat_channels(be *b, const be_tensor *a, const be_tensor *x, be_tensor *y);
/* y [.., T, dim] rows = table[ids[i]] for the n*h*w ids (host array; ids are range-checked). */
void be_embedding(be *b, const int32_t *ids, const be_weight *table, be_tensor *y);
/* Sinusoidal timestep embedding of the n host timesteps into y [n, 1, 1, dim] (diffusers' recipe). */
void be_timestep_embedding(be *b, const float *t, int flip_sin_to_cos, float freq_shift, be_tensor *y);
/* y_j = act(conv_or_linear(prologue(input), W_j) + bias_j + add) + residual, j < nw (be_gemm_args). Exactly the
 * sequence concat, upsample, group_norm/layer_norm (+SiLU), conv2d/linear, add, activation or GEGLU, add; a
 * backend with its own fused kernel (CUDA) skips the intermediate tensors. */
void be_gemm(be *b, const be_gemm_args *a);

#endif
