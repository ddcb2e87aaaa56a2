/* cuda_internal.h — what the CUDA backend's files share: its state, the storage-type helpers used by every
 * kernel, block reductions, and the op entry points each .cu file provides to the ops table (backend.cu).
 *
 * Storage: activations and GEMM weights (linear, conv, embedding tables) are stored in the backend's
 * dtype (f16 by default, bf16 or f32 on request); parameter vectors (biases, norm gains) are stored in f32
 * (they are tiny and read once per element). Every kernel loads through ld() and stores through st(), so
 * one template serves the three types; arithmetic, accumulation and statistics are always f32. */
#ifndef KERNELS_CUDA_INTERNAL_H
#define KERNELS_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" {
#include "../backend.h"
}
#include "cuda_portable.h"
#include "tc.h"

#include <type_traits>

/* Op-private device buffers. SCRATCH: im2col columns, attention scores, upload staging (one op at a time);
 * GN_*: GroupNorm statistics (partials, per-sample counters that are zero between launches, (mean, rstd));
 * SPLITK: the f32 partial tiles of GEMMs whose K is split over several blocks. */
/* GN_TILES: the per-tile partial statistics of igemm's statistics epilogue; GN_LINKED: the statistics an igemm leaves
 * for a later op of the same recorded sequence ((mean, rstd), or (count, mean, M2) of a concat's part; graph.cu, one
 * slot per set). */
/* SEQ: an igemm sequence's tickets and per-tile counters (zero between launches); SEQ_ORDER: its item order (tests). */
enum { CUDA_BUF_SCRATCH, CUDA_BUF_GN_PART, CUDA_BUF_GN_STATS, CUDA_BUF_COUNTERS, CUDA_BUF_SPLITK, CUDA_BUF_GN_TILES, CUDA_BUF_GN_LINKED,
       CUDA_BUF_SEQ, CUDA_BUF_SEQ_ORDER, CUDA_BUF_COUNT };
/* the counters buffer (65536 of them): [0, 8191 - 16) GroupNorm statistics (one per sample), 8191 - k the statistics
 * epilogue of op k of an igemm sequence (k < 16; 8191 a lone igemm's), the rest split-K tiles */
#define CUDA_EPI_STATS_COUNTER 8191
#define CUDA_SPLITK_COUNTER0 8192
#define CUDA_SPLITK_COUNTERS (65536 - CUDA_SPLITK_COUNTER0)

typedef struct cuda_impl {
    int device;
    be_dtype dt;            /* activation / GEMM-weight storage type */
    cudaStream_t stream;    /* every kernel and copy of this backend runs on it, in order */
    cublasHandle_t blas;
    void *arena_mem;        /* one cudaMalloc per be_arena_reserve; mem_arena hands out its addresses */
    size_t arena_bytes;
    void *buf[CUDA_BUF_COUNT];      /* op-private device memory (cuda_buffer): grown on demand, kept, reused */
    size_t buf_bytes[CUDA_BUF_COUNT];
    size_t scratch_budget;  /* what one im2col chunk or attention score chunk may take (default 256 MiB;
                               $SD_CUDA_SCRATCH_BYTES overrides it, e.g. to exercise chunking in tests) */
    int tile_mode;          /* igemm tiles: 0 by shape, 1 always 128x128, 2 always 64x64 ($SD_CUDA_TILE=big|small) */
    int split_k;            /* igemm K slices: 0 by shape, n > 0 always n ($SD_CUDA_SPLITK, for tests) */
    int sms;                /* the device's multiprocessors */
    void *blas_ws;          /* cuBLAS workspace (CUDA_BLAS_WORKSPACE bytes) */
    struct cuda_slab { char *base; size_t size, used; int live; } *slabs; /* weights, packed into a few allocations */
    int nslabs;
    struct cuda_recorder *rec; /* graph.cu: ops recorded until a sync point, one CUDA graph per repeated sequence */
    size_t smem_optin;      /* the device's largest dynamic shared memory per block */
    int flash_attention;    /* 1: fused attention kernel for f16/bf16 (default); 0: the cuBLAS reference path
                               ($SD_CUDA_ATTENTION=cublas, for comparisons) */
    int seq_mode;           /* igemm sequences (igemm.cu): 0 off ($SD_CUDA_SEQ=0), 1 on, 2 and 3 on in the most eager order
                               the dependencies allow, tiles from the first or from the last ($SD_CUDA_SEQ=eager,
                               eager-reverse: tests; never captured into a graph), 4 on with every wait needing one
                               tile more than there are ($SD_CUDA_SEQ=stall: tests of the timeout) */
    int seq_collect;        /* set while an op that may join the open sequence runs (graph.cu) */
    void *seq;              /* the open sequence */
    unsigned long long *seq_fault;   /* pinned host memory: the record of a sequence's wait that timed out */
    unsigned long long seq_timeout_ns; /* how long a sequence's tile may wait (60 s; $SD_CUDA_SEQ_TIMEOUT seconds) */
    char device_name[256];
} cuda_impl;

static inline cuda_impl *cuda_of(be *b) { return (cuda_impl *)b->impl; }

#define CUDA_BLAS_WORKSPACE ((size_t)32 << 20)

/* st, or after a failure that an igemm sequence's timed-out wait caused (every CUDA call fails alike after it: the
 * kernel stopped), SD_ERR_BACKEND and a message saying what it waited for (igemm.cu). */
sd_status cuda_explain(be *b, sd_status st);

/* Records a failed step of an op as the backend's sticky error. */
static inline void cuda_report(be *b, sd_status st) {
    if ((st = cuda_explain(b, st)) != SD_OK) be_set_error(b, st, "%s", sd_last_error());
}

/* igemm sequences (igemm.cu): while cuda_impl.seq_collect is set (graph.cu, around an op that launches nothing but
 * one igemm), the igemm joins the open sequence instead of launching; flush launches the sequence (nothing when it is
 * empty). Anything else launched must come after a flush. */
sd_status cuda_igemm_seq_flush(be *b);
void cuda_igemm_seq_free(be *b);

/* Device buffer `which` of at least `bytes` (256-byte aligned); its contents survive until it has to grow (the
 * counters buffer starts zeroed). */
sd_status cuda_buffer(be *b, int which, size_t bytes, void **out);
/* Device scratch of at least `bytes` (256-byte aligned), valid until the next cuda_scratch call. */
static inline sd_status cuda_scratch(be *b, size_t bytes, void **out) { return cuda_buffer(b, CUDA_BUF_SCRATCH, bytes, out); }

static inline size_t cuda_dtype_size(be_dtype t) { return t == BE_F32 ? 4 : 2; }

/* Runs `body` with T the C++ type of storage type `dt`. */
#define CUDA_DTYPE_SWITCH(dt, T, ...)                                  \
    switch (dt) {                                                      \
    case BE_F16: { typedef __half T; __VA_ARGS__; } break;             \
    case BE_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; } break;     \
    default: { typedef float T; __VA_ARGS__; } break;                  \
    }
/* The same for the 16-bit storage types only (kernels without an f32 form). */
#define CUDA_HALF_SWITCH(dt, T, ...)                                   \
    switch (dt) {                                                      \
    case BE_F16: { typedef __half T; __VA_ARGS__; } break;             \
    case BE_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; } break;     \
    default: break;                                                    \
    }

/* Raises kernel func's dynamic shared memory limit to `bytes` once per process (so never while a step is being
 * captured into a graph); a no-op up to the default 48 KiB. Use in the function that launches func. */
#define CUDA_SMEM_OPTIN(func, bytes)                                                                            \
    do {                                                                                                        \
        static int raised_ = 0;                                                                                 \
        if ((bytes) > 48 * 1024 && raised_ < (bytes)) {                                                         \
            CUDA_CHECK(cudaFuncSetAttribute(func, cudaFuncAttributeMaxDynamicSharedMemorySize, (bytes)));       \
            raised_ = (bytes);                                                                                  \
        }                                                                                                       \
    } while (0)

/* After a launch: a configuration error now, or a sticky error of an earlier kernel. */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

/* ---- device helpers ---- */

static __device__ __forceinline__ float ld(const float *p) { return *p; }
static __device__ __forceinline__ float ld(const __half *p) { return __half2float(*p); }
static __device__ __forceinline__ float ld(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
static __device__ __forceinline__ void st(float *p, float v) { *p = v; }
static __device__ __forceinline__ void st(__half *p, float v) { *p = __float2half_rn(v); }
static __device__ __forceinline__ void st(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

/* W consecutive elements as f32: W = 1, or 16 bytes at once (W = 8 for the 16-bit types, 4 for f32; the address
 * 16-byte aligned). Memory-bound kernels take the wide form when every channel count is a multiple of
 * cuda_vec_width(T) and the tensors are aligned. */
template <typename T> static inline constexpr int cuda_vec_width(void) { return 16 / (int)sizeof(T); }
template <int W, typename T> static __device__ __forceinline__ void ldv(const T *p, float *v) {
    if constexpr (W == 1) {
        v[0] = ld(p);
    } else if constexpr (std::is_same<T, float>::value) {
        static_assert(W == 4, "f32: 4 per 16 bytes");
        const uint4 q = tc_ld128(p);
        v[0] = __uint_as_float(q.x); v[1] = __uint_as_float(q.y); v[2] = __uint_as_float(q.z); v[3] = __uint_as_float(q.w);
    } else {
        static_assert(W == 8, "16-bit types: 8 per 16 bytes");
        const tc_v8 q = tc_ld8(p);
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const float2 f = tc_unpack<T>(q.r[e]);
            v[2 * e] = f.x;
            v[2 * e + 1] = f.y;
        }
    }
}
template <int W, typename T> static __device__ __forceinline__ void stv(T *p, const float *v) {
    if constexpr (W == 1) {
        st(p, v[0]);
    } else if constexpr (std::is_same<T, float>::value) {
        static_assert(W == 4, "f32: 4 per 16 bytes");
        tc_st128(p, make_uint4(__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]), __float_as_uint(v[3])));
    } else {
        static_assert(W == 8, "16-bit types: 8 per 16 bytes");
        tc_v8 q;
#pragma unroll
        for (int e = 0; e < 4; e++) q.r[e] = tc_pack<T>(v[2 * e], v[2 * e + 1]);
        tc_st8(p, q);
    }
}
static inline int cuda_aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

#define CUDA_FULL_MASK 0xffffffffu

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(CUDA_FULL_MASK, v, o);
    return v;
}
static __device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(CUDA_FULL_MASK, v, o));
    return v;
}
/* Sum over a block whose size is a multiple of 32; every thread gets it. `red` holds 32 floats of shared
 * memory; the trailing barrier lets the caller reuse it at once. */
static __device__ __forceinline__ float block_sum(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nwarps ? red[lane] : 0.0f;
    v = warp_sum(v);
    __syncthreads();
    return v;
}

/* The activations a fused epilogue applies (igemm): act_apply's without ReLU, whose extra case cost the 64x64
 * igemm tile 8 bytes of register spills on sm_90; cuda_igemm_fits declines any other. */
static __device__ __forceinline__ float epi_act(be_act a, float v) {
    switch (a) {
    case BE_ACT_SILU: return v / (1.0f + expf(-v));
    case BE_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case BE_ACT_QUICK_GELU: return v / (1.0f + expf(-1.702f * v));
    default: return v;
    }
}

static __device__ __forceinline__ float act_apply(be_act a, float v) {
    return a == BE_ACT_RELU ? (v < 0.0f ? 0.0f : v) : epi_act(a, v); /* NaN stays NaN, as torch.relu */
}

/* Blocks for a grid-stride loop over n items with `threads` per block (at least 1, at most 8192: enough
 * to fill any current GPU several times over). */
static inline unsigned cuda_grid(size_t n, int threads) {
    size_t g = (n + threads - 1) / threads;
    return (unsigned)(g < 1 ? 1 : g > 8192 ? 8192 : g);
}

/* cublas_lazy.cu: loads cuBLAS (real build; a no-op on the emulator). */
sd_status cuda_blas_load(void);

/* ---- the backend's memory and transfers (backend.cu), run when graph.cu's ops table calls them ---- */
void cuda_free_backend(be *b);
sd_status cuda_arena_reserve(be *b, size_t bytes);
sd_status cuda_weight_upload(be *b, be_weight *w, be_dtype src_type, const void *src);
void cuda_weight_free(be *b, be_weight *w);
sd_status cuda_buffer_alloc(be *b, size_t bytes, void **p);
void cuda_buffer_free(be *b, void *p);
void cuda_upload(be *b, be_tensor *dst, const float *src);
/* converts and queues the copy to host memory dst (pinned when it is to be captured); the caller synchronises */
sd_status cuda_download_async(be *b, const be_tensor *src, float *dst);
sd_status cuda_sync(be *b);

/* graph.cu: the ops table; the recorder's life; dropping every captured graph (a buffer they use moved) */
extern const struct be_ops cuda_ops;
sd_status cuda_recorder_new(be *b);
void cuda_recorder_free(be *b);
void cuda_graphs_drop(be *b);
/* fused.cu: whether cuda_gemm_fused takes these arguments (nothing is launched) */
int cuda_gemm_fused_fits(be *b, const be_gemm_args *a);

/* ---- op entry points (graph.cu's ops table runs these) ---- */

/* eltwise.cu */
sd_status cuda_convert(be *b, const void *src, be_dtype st_, void *dst, be_dtype dt_, size_t n);
sd_status cuda_weight_convert(be *b, const void *src, be_dtype st_, void *dst, be_dtype dt_, int rows, int in, int taps);
sd_status cuda_bias_act(be *b, void *y, size_t rows, int cols, const float *bias, be_act act);
void cuda_act(be *b, be_act act, const be_tensor *x, be_tensor *y);
void cuda_geglu(be *b, const be_tensor *x, be_tensor *y);
void cuda_add(be *b, const be_tensor *a, const be_tensor *x, float alpha, be_tensor *y);
void cuda_upsample_nearest(be *b, const be_tensor *x, be_tensor *y);
void cuda_concat_channels(be *b, const be_tensor *a, const be_tensor *x, be_tensor *y);
void cuda_embedding(be *b, const int32_t *ids, const be_weight *table, be_tensor *y);
void cuda_timestep_embedding(be *b, const float *t, int flip_sin_to_cos, float freq_shift, be_tensor *y);
/* norm.cu */
/* (mean, 1/sqrt(var + eps)) per [n][group] of the concat [xa (ca channels) | xb (cb, or NULL and 0)], N samples of
 * hw pixels; *stats stays valid until the next call */
sd_status cuda_gn_stats(be *b, const void *xa, int ca, const void *xb, int cb, int N, int hw, int groups, float eps, const float2 **stats);
void cuda_group_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, int groups, float eps, int silu, be_tensor *y);
void cuda_layer_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, float eps, be_tensor *y);
/* gemm.cu: C = alpha·op(A)·op(B) (+ beta·C), column-major as cuBLAS sees it, `batch` GEMMs strided by sa, sb,
 * sc elements. A and B are in the backend's dtype, C in c_type (the dtype, or f32 for attention scores). */
sd_status cuda_gemm(be *b, int trans_a, int trans_b, int m, int n, int k, float alpha, const void *A, int lda, long long sa,
                    const void *B, int ldb, long long sb, float beta, void *C, be_dtype c_type, int ldc, long long sc, int batch);
void cuda_linear(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y);
/* conv.cu */
void cuda_conv2d(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, int stride, int pad_lo, int pad_hi, be_tensor *y);
/* fused.cu: the be_gemm op (0: not taken, be_gemm composes it from the other ops); conv2d and linear on the
 * tensor-core GEMM, SD_ERR_UNSUPPORTED (nothing done) when it does not take them. A GroupNorm link (graph.cu, may
 * be NULL): `in` the statistics of the GroupNorm prologue's input, made by earlier ops; `emit` the statistics the
 * epilogue leaves for later ops (igemm.h's ig_stats: (mean, rstd) to out, (count, mean, M2) to partial, the
 * output being channels [coff, coff + out) of a ctot-channel input in `groups` groups, merged with `merge`);
 * `emitted` says whether it did. */
typedef struct cuda_gn_emit {
    float2 *out;
    float *partial;
    const float *merge;
    int groups, coff, ctot;
    float eps;
} cuda_gn_emit;
#define CUDA_GN_MAX_EMIT 2
typedef struct cuda_gn_link { const float2 *in; cuda_gn_emit emit[CUDA_GN_MAX_EMIT]; int nemit, emitted; } cuda_gn_link;
int cuda_gemm_fused(be *b, const be_gemm_args *a, cuda_gn_link *l);
/* whether the kernel can run this op with the statistics l->emit (the pointers are not used) */
int cuda_gemm_links_out(be *b, const be_gemm_args *a, const cuda_gn_link *l);
/* the be_gemm a plain convolution or linear layer is */
be_gemm_args cuda_plain_gemm(const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, int stride, int pad_lo, int pad_hi,
                             be_tensor *y);
sd_status cuda_conv_igemm(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, int stride, int pad_lo, be_tensor *y);
sd_status cuda_linear_igemm(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y);
/* gemv.cu: up to GEMV_MAX_ITEMS linear layers y_i = act_i(x W_iᵀ + b_i) of M <= GEMV_MAX_ROWS rows on one input x
 * [M][K] (16-bit storage, K a multiple of 8, x and the weights 16-byte aligned), one launch; the caller fills x, M,
 * K, n and the items' w, bias (f32 or NULL), y, cout, act */
#define GEMV_MAX_ROWS 8
#define GEMV_MAX_ITEMS 32
typedef struct cuda_gemv_item { const void *w; const float *bias; void *y; int cout, act, col0; } cuda_gemv_item;
typedef struct cuda_gemv_group { const void *x; int M, K, n, cols; cuda_gemv_item item[GEMV_MAX_ITEMS]; } cuda_gemv_group;
int cuda_gemv_takes(be *b, int rows, int K);
sd_status cuda_gemv_run(be *b, cuda_gemv_group *g);
/* attention.cu */
void cuda_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y);
/* flash.cu: the fused kernel; SD_ERR_UNSUPPORTED (no message) when the storage type or head dim does not fit it */
sd_status cuda_flash_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y);

#endif
