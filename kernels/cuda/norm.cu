/* norm.cu — GroupNorm statistics (one kernel, also for the fused GroupNorm prologue of igemm.cu), GroupNorm apply
 * (+ SiLU), LayerNorm; statistics in f32 (their final merge in f64).
 *
 * Statistics of GroupNorm over NHWC x (optionally the channel concat [xa | xb]), one launch:
 *   block (pixel chunk, sample, slot chunk) takes a run of pixels of one sample and up to 256 "slots" of 8 (or 1)
 *   consecutive channels, one slot per thread, several pixel rows at once when the slots are few; each thread sums
 *   (x - s) and (x - s)² of its channels, where s is the group's first value in the sample (the shift keeps the
 *   sums from cancelling when the mean is far from zero); the block writes per-channel partial sums; the last block
 *   of a sample (a counter in device memory, reset by that block) adds the partials of each channel in chunk order
 *   (deterministic), then each group's channels, and writes (mean, 1/sqrt(var + eps)).
 * Loads are 16 bytes wide when every channel count is a multiple of 8; no 64-bit division anywhere. */
#include "cuda_internal.h"
#include "tc.h"

#define THREADS 256
#define GN_MAX_CHUNKS 64 /* pixel chunks per sample */

template <typename T> static __device__ __forceinline__ void load8(const T *p, float *v) {
    const tc_v8 q = tc_ld8(p);
#pragma unroll
    for (int e = 0; e < 4; e++) {
        const float2 f = tc_unpack<T>(q.r[e]);
        v[2 * e] = f.x;
        v[2 * e + 1] = f.y;
    }
}
static __device__ __forceinline__ void load8(const float *p, float *v) {
#pragma unroll
    for (int e = 0; e < 8; e++) v[e] = p[e];
}

/* value of channel c of pixel p (of the concatenated tensor) */
template <typename T> static __device__ __forceinline__ float chan(const T *xa, int ca, const T *xb, int cb, size_t p, int c) {
    return c < ca ? ld(xa + p * ca + c) : ld(xb + p * cb + (c - ca));
}

template <typename T, int W>
__global__ void __launch_bounds__(THREADS)
gn_stats_kernel(const T *__restrict__ xa, int ca, const T *__restrict__ xb, int cb, int hw, int groups, int chunk, float eps,
                float2 *__restrict__ part, unsigned *__restrict__ count, float2 *__restrict__ stats) {
    __shared__ float red[2][THREADS][W];
    __shared__ int last;
    const int C = ca + cb, V = C / W, cpg = C / groups, n = blockIdx.y, chunks = gridDim.x;
    const int s0 = blockIdx.z * THREADS, nslots = min(V - s0, THREADS); /* this block's slots */
    const int ppb = THREADS / nslots, slot = threadIdx.x % nslots, prow = threadIdx.x / nslots;
    const int p0 = blockIdx.x * chunk, p1 = min(p0 + chunk, hw);
    const size_t base = (size_t)n * hw;
    const int c0 = (s0 + slot) * W;
    float s1[W], s2[W], sh[W];
#pragma unroll
    for (int e = 0; e < W; e++) {
        s1[e] = s2[e] = 0.0f;
        sh[e] = chan(xa, ca, xb, cb, base, (c0 + e) / cpg * cpg); /* the group's first value in this sample */
    }
    if (prow < ppb) {
        const bool second = c0 >= ca;
        const T *src = second ? xb + base * cb + (c0 - ca) : xa + base * ca + c0;
        const int stride = second ? cb : ca;
        for (int p = p0 + prow; p < p1; p += ppb) {
            float v[W];
            if (W == 8) load8(src + (size_t)p * stride, v);
            else v[0] = ld(src + (size_t)p * stride);
#pragma unroll
            for (int e = 0; e < W; e++) {
                const float d = v[e] - sh[e];
                s1[e] += d;
                s2[e] += d * d;
            }
        }
    }
#pragma unroll
    for (int e = 0; e < W; e++) {
        red[0][threadIdx.x][e] = prow < ppb ? s1[e] : 0.0f;
        red[1][threadIdx.x][e] = prow < ppb ? s2[e] : 0.0f;
    }
    __syncthreads();
    if ((int)threadIdx.x < nslots) { /* add the pixel rows of the block, write this chunk's per-channel partials */
        for (int r = 1; r < ppb; r++)
#pragma unroll
            for (int e = 0; e < W; e++) {
                s1[e] += red[0][r * nslots + threadIdx.x][e];
                s2[e] += red[1][r * nslots + threadIdx.x][e];
            }
#pragma unroll
        for (int e = 0; e < W; e++) part[((size_t)n * chunks + blockIdx.x) * C + c0 + e] = make_float2(s1[e], s2[e]);
    }
    /* the last block of this sample merges */
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&count[n], 1u) == (unsigned)(chunks * gridDim.z) - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    float2 *pn = part + (size_t)n * chunks * C;
    for (int c = threadIdx.x; c < C; c += THREADS) { /* per channel, over the chunks in order; kept in chunk 0's slot */
        double a = 0, q = 0;
        for (int k = 0; k < chunks; k++) {
            const float2 v = pn[(size_t)k * C + c];
            a += v.x;
            q += v.y;
        }
        pn[c] = make_float2((float)a, (float)q);
    }
    __syncthreads();
    const double cnt = (double)hw * cpg;
    for (int g = threadIdx.x; g < groups; g += THREADS) {
        double a = 0, q = 0;
        for (int c = g * cpg; c < (g + 1) * cpg; c++) {
            a += pn[c].x;
            q += pn[c].y;
        }
        const double shift = chan(xa, ca, xb, cb, (size_t)n * hw, g * cpg), m = a / cnt, var = fmax(q / cnt - m * m, 0.0);
        stats[n * groups + g] = make_float2((float)(shift + m), (float)(1.0 / sqrt(var + (double)eps)));
    }
    if (threadIdx.x == 0) count[n] = 0; /* ready for the next launch (and the next replay of a graph) */
}

/* Device buffers of the statistics: partial sums, per-sample counters (zero between launches), (mean, rstd). */
static sd_status gn_buffers(be *b, size_t part_elems, int nstats, float2 **part, unsigned **count, float2 **stats) {
    void *p;
    sd_status st = cuda_buffer(b, CUDA_BUF_GN_PART, part_elems * sizeof(float2), &p);
    if (st != SD_OK) return st;
    *part = (float2 *)p;
    if ((st = cuda_buffer(b, CUDA_BUF_GN_STATS, (size_t)nstats * sizeof(float2), &p)) != SD_OK) return st;
    *stats = (float2 *)p;
    if ((st = cuda_buffer(b, CUDA_BUF_COUNTERS, 65536 * sizeof(unsigned), &p)) != SD_OK) return st;
    *count = (unsigned *)p;
    return SD_OK;
}

sd_status cuda_gn_stats(be *b, const void *xa, int ca, const void *xb, int cb, int N, int hw, int groups, float eps, const float2 **out) {
    const int C = ca + cb;
    if (N > CUDA_EPI_STATS_COUNTER) return err_fail(SD_ERR_ARG, "cuda group_norm: %d samples", N);
    const int w8 = ca % 8 == 0 && cb % 8 == 0 && ((uintptr_t)xa & 15) == 0 && (!xb || ((uintptr_t)xb & 15) == 0) && cuda_of(b)->dt != BE_F32;
    const int W = w8 ? 8 : 1, V = C / W, zchunks = (V + THREADS - 1) / THREADS;
    const int vs = V < THREADS ? V : THREADS, ppb = THREADS / vs;
    int chunks = (hw + ppb * 16 - 1) / (ppb * 16); /* at least 16 pixel rows per thread row */
    if (chunks > GN_MAX_CHUNKS) chunks = GN_MAX_CHUNKS;
    if (chunks < 1) chunks = 1;
    const int chunk = (hw + chunks - 1) / chunks;
    chunks = (hw + chunk - 1) / chunk;
    if (zchunks > 65535) return err_fail(SD_ERR_ARG, "cuda group_norm: %d channels", C);
    float2 *part, *stats;
    unsigned *count;
    sd_status st = gn_buffers(b, (size_t)N * chunks * C, N * groups, &part, &count, &stats);
    if (st != SD_OK) return st;
    const dim3 grid(chunks, N, zchunks);
    cudaStream_t s = cuda_of(b)->stream;
    if (W == 8) {
        CUDA_HALF_SWITCH(cuda_of(b)->dt, T, CUDA_LAUNCH((gn_stats_kernel<T, 8>), grid, THREADS, 0, s, (const T *)xa, ca, (const T *)xb, cb, hw,
                                                        groups, chunk, eps, part, count, stats));
    } else {
        CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, CUDA_LAUNCH((gn_stats_kernel<T, 1>), grid, THREADS, 0, s, (const T *)xa, ca, (const T *)xb, cb, hw,
                                                         groups, chunk, eps, part, count, stats));
    }
    CUDA_CHECK_LAUNCH();
    *out = stats;
    return SD_OK;
}

/* y = (x - mean)·rstd·gamma + beta (+ SiLU), W channels per thread and step (16-byte IO for W = 8). x may be y:
 * each element is read before it is written, by the same thread. */
template <typename T, int W>
__global__ void gn_apply_kernel(const T *x, const float2 *__restrict__ stats, const float *__restrict__ gamma, const float *__restrict__ beta,
                                T *y, unsigned nvec, int V, int hw, int cpg, int groups, int silu) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < nvec; i += gridDim.x * blockDim.x) {
        const unsigned pix = i / V;
        const int c = (int)(i - pix * V) * W, n = (int)(pix / (unsigned)hw);
        float v[W];
        if (W == 8) load8(x + (size_t)i * 8, v);
        else v[0] = ld(x + i);
        int g = c / cpg, gr = c - g * cpg;
        float2 s = stats[n * groups + g];
#pragma unroll
        for (int e = 0; e < W; e++) {
            if (gr == cpg) { g++; gr = 0; s = stats[n * groups + g]; }
            float t = (v[e] - s.x) * s.y;
            if (gamma) t *= gamma[c + e];
            if (beta) t += beta[c + e];
            v[e] = silu ? t / (1.0f + __expf(-t)) : t;
            gr++;
        }
        if (W == 8) {
            tc_v8 q;
#pragma unroll
            for (int e = 0; e < 4; e++) q.r[e] = tc_pack<T>(v[2 * e], v[2 * e + 1]);
            tc_st8(y + (size_t)i * 8, q);
        } else {
            st(y + i, v[0]);
        }
    }
}
/* f32 storage: element-wise (the 16-byte path packs 16-bit values) */
__global__ void gn_apply_f32_kernel(const float *x, const float2 *__restrict__ stats, const float *__restrict__ gamma, const float *__restrict__ beta,
                                    float *y, unsigned n, int C, int hw, int cpg, int groups, int silu) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const unsigned pix = i / C;
        const int c = (int)(i - pix * C), s_ = (int)(pix / (unsigned)hw) * groups + c / cpg;
        float t = (x[i] - stats[s_].x) * stats[s_].y;
        if (gamma) t *= gamma[c];
        if (beta) t += beta[c];
        y[i] = silu ? t / (1.0f + __expf(-t)) : t;
    }
}

static sd_status group_norm_run(be *b, const be_tensor *x, const float *gamma, const float *beta, int groups, float eps, int silu, be_tensor *y) {
    const int N = x->n, hw = x->h * x->w, C = x->c;
    const size_t n = be_numel(x);
    if (n > 0xffffffffu) return err_fail(SD_ERR_ARG, "cuda group_norm: %zu elements", n);
    const float2 *stats;
    sd_status st = cuda_gn_stats(b, x->data, C, NULL, 0, N, hw, groups, eps, &stats);
    if (st != SD_OK) return st;
    cudaStream_t s = cuda_of(b)->stream;
    const int cpg = C / groups;
    switch (cuda_of(b)->dt) {
    case BE_F32:
        CUDA_LAUNCH(gn_apply_f32_kernel, cuda_grid(n, THREADS), THREADS, 0, s, (const float *)x->data, stats, gamma, beta, (float *)y->data,
                    (unsigned)n, C, hw, cpg, groups, silu);
        break;
    default: {
        const int w8 = C % 8 == 0;
        const unsigned nvec = (unsigned)(w8 ? n / 8 : n);
        CUDA_HALF_SWITCH(cuda_of(b)->dt, T,
                         if (w8) CUDA_LAUNCH((gn_apply_kernel<T, 8>), cuda_grid(nvec, THREADS), THREADS, 0, s, (const T *)x->data, stats, gamma,
                                             beta, (T *)y->data, nvec, C / 8, hw, cpg, groups, silu);
                         else CUDA_LAUNCH((gn_apply_kernel<T, 1>), cuda_grid(nvec, THREADS), THREADS, 0, s, (const T *)x->data, stats, gamma,
                                          beta, (T *)y->data, nvec, C, hw, cpg, groups, silu));
    }
    }
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

void cuda_group_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, int groups, float eps, int silu, be_tensor *y) {
    const float *g = gamma ? (const float *)gamma->data : NULL, *bt = beta ? (const float *)beta->data : NULL;
    cuda_report(b, group_norm_run(b, x, g, bt, groups, eps, silu ? 1 : 0, y));
}

/* LayerNorm over C: one warp per row (8 rows per block); each lane strides over the row three times (mean,
 * variance about the mean, output), 16 bytes at a time when C is a multiple of 8, so a row is read from memory
 * once and then from cache. */
template <typename T, int W>
__global__ void layer_norm_kernel(const T *x, const float *__restrict__ gamma, const float *__restrict__ beta, T *y, unsigned rows, int C, float eps) {
    const unsigned row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= rows) return; /* whole warps leave together: the shuffles below see full warps */
    const T *xr = x + (size_t)row * C;
    T *yr = y + (size_t)row * C;
    float s = 0.0f;
    for (int j = lane * W; j < C; j += 32 * W) {
        float v[W];
        if (W == 8) load8(xr + j, v);
        else v[0] = ld(xr + j);
#pragma unroll
        for (int e = 0; e < W; e++) s += v[e];
    }
    const float mean = warp_sum(s) / (float)C;
    float q = 0.0f;
    for (int j = lane * W; j < C; j += 32 * W) {
        float v[W];
        if (W == 8) load8(xr + j, v);
        else v[0] = ld(xr + j);
#pragma unroll
        for (int e = 0; e < W; e++) q += (v[e] - mean) * (v[e] - mean);
    }
    const float rstd = rsqrtf(warp_sum(q) / (float)C + eps);
    for (int j = lane * W; j < C; j += 32 * W) {
        float v[W];
        if (W == 8) load8(xr + j, v);
        else v[0] = ld(xr + j);
#pragma unroll
        for (int e = 0; e < W; e++) {
            v[e] = (v[e] - mean) * rstd;
            if (gamma) v[e] *= gamma[j + e];
            if (beta) v[e] += beta[j + e];
        }
        if (W == 8) {
            tc_v8 q4;
#pragma unroll
            for (int e = 0; e < 4; e++) q4.r[e] = tc_pack<T>(v[2 * e], v[2 * e + 1]);
            tc_st8(yr + j, q4);
        } else {
            st(yr + j, v[0]);
        }
    }
}

static sd_status layer_norm_run(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, float eps, be_tensor *y) {
    const size_t rows = (size_t)x->n * x->h * x->w;
    if (rows > 0xffffffffu) return err_fail(SD_ERR_ARG, "cuda layer_norm: %zu rows", rows);
    const float *g = gamma ? (const float *)gamma->data : NULL, *bt = beta ? (const float *)beta->data : NULL;
    const unsigned grid = (unsigned)((rows + THREADS / 32 - 1) / (THREADS / 32));
    cudaStream_t s = cuda_of(b)->stream;
    const int w8 = x->c % 8 == 0 && cuda_of(b)->dt != BE_F32;
    if (cuda_of(b)->dt == BE_F32) {
        CUDA_LAUNCH((layer_norm_kernel<float, 1>), grid, THREADS, 0, s, (const float *)x->data, g, bt, (float *)y->data, (unsigned)rows, x->c, eps);
    } else {
        CUDA_HALF_SWITCH(cuda_of(b)->dt, T,
                         if (w8) CUDA_LAUNCH((layer_norm_kernel<T, 8>), grid, THREADS, 0, s, (const T *)x->data, g, bt, (T *)y->data, (unsigned)rows,
                                             x->c, eps);
                         else CUDA_LAUNCH((layer_norm_kernel<T, 1>), grid, THREADS, 0, s, (const T *)x->data, g, bt, (T *)y->data, (unsigned)rows,
                                          x->c, eps));
    }
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

void cuda_layer_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, float eps, be_tensor *y) {
    cuda_report(b, layer_norm_run(b, x, gamma, beta, eps, y));
}
