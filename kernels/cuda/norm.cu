/* norm.cu — GroupNorm (+ fused SiLU) over NHWC and LayerNorm, statistics in f32.
 *
 * GroupNorm runs in three kernels so that a 512x512 VAE activation (a quarter million pixels per group) is
 * spread over many blocks instead of one block per (sample, group):
 *   1. group_norm_partial: block (sample·group, chunk) takes `chunk` pixels of one group and computes the
 *      chunk's mean and sum of squared deviations from it (two passes over the chunk, which stays in cache);
 *   2. group_norm_finalize: one thread per (sample, group) merges its chunks (Chan et al.'s pairwise update,
 *      stable for data far from zero mean) into mean and 1/std;
 *   3. group_norm_apply: one element per thread, normalise, scale, shift, optional SiLU.
 * Every element is read before it is written by the same thread, so x may alias y. */
#include "cuda_internal.h"

#define THREADS 256
#define GN_CHUNK_ELEMS 8192 /* elements of one group handled by one block of the partial kernel */

/* partial[(ng·chunks + k)] = (mean, M2, count) of pixels [k·chunk, (k+1)·chunk) of group ng. */
template <typename T>
__global__ void group_norm_partial_kernel(const T *__restrict__ x, float3 *__restrict__ partial, int hw, int C, int groups, int chunk) {
    __shared__ float red[32];
    const int ng = blockIdx.x, n = ng / groups, g = ng % groups, cpg = C / groups;
    const int p0 = blockIdx.y * chunk, p1 = min(p0 + chunk, hw);
    const T *base = x + ((size_t)n * hw + p0) * C + (size_t)g * cpg;
    const int cnt = (p1 - p0) * cpg;
    /* thread i of the block takes elements i, i + blockDim.x, ... of the chunk, in (pixel, channel) order */
    float s = 0.0f;
    for (int i = threadIdx.x; i < cnt; i += blockDim.x) s += ld(base + (size_t)(i / cpg) * C + i % cpg);
    const float mean = block_sum(s, red) / (float)cnt;
    float q = 0.0f;
    for (int i = threadIdx.x; i < cnt; i += blockDim.x) {
        float d = ld(base + (size_t)(i / cpg) * C + i % cpg) - mean;
        q += d * d;
    }
    q = block_sum(q, red);
    if (threadIdx.x == 0) partial[(size_t)ng * gridDim.y + blockIdx.y] = make_float3(mean, q, (float)cnt);
}

/* stats[ng] = (mean, 1/sqrt(var + eps)) from the group's partials. One thread per (sample, group). */
__global__ void group_norm_finalize_kernel(const float3 *__restrict__ partial, float2 *__restrict__ stats, int ngroups, int chunks, float eps) {
    const int ng = blockIdx.x * blockDim.x + threadIdx.x;
    if (ng >= ngroups) return;
    float mean = 0.0f, m2 = 0.0f, cnt = 0.0f;
    for (int k = 0; k < chunks; k++) {
        const float3 p = partial[(size_t)ng * chunks + k];
        const float tot = cnt + p.z, d = p.x - mean;
        mean += d * (p.z / tot);
        m2 += p.y + d * d * (cnt * p.z / tot);
        cnt = tot;
    }
    stats[ng] = make_float2(mean, rsqrtf(m2 / cnt + eps));
}

template <typename T>
__global__ void group_norm_apply_kernel(const T *x, const float2 *__restrict__ stats, const float *__restrict__ gamma,
                                        const float *__restrict__ beta, T *y, size_t n, int hwc, int C, int cpg, int groups, int silu) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const int c = (int)(i % C);
        const float2 s = stats[(i / hwc) * groups + c / cpg];
        float v = (ld(x + i) - s.x) * s.y;
        if (gamma) v *= gamma[c];
        if (beta) v += beta[c];
        if (silu) v = v / (1.0f + expf(-v));
        st(y + i, v);
    }
}

template <typename T>
static sd_status group_norm_as(be *b, const be_tensor *x, const float *gamma, const float *beta, int groups, float eps, int silu, be_tensor *y) {
    const int N = x->n, hw = x->h * x->w, C = x->c, cpg = C / groups, ngroups = N * groups;
    /* chunk: whole pixels, about GN_CHUNK_ELEMS elements, at most 65535 chunks (the grid's y limit) */
    int chunk = GN_CHUNK_ELEMS / cpg > 0 ? GN_CHUNK_ELEMS / cpg : 1;
    if ((hw + chunk - 1) / chunk > 65535) chunk = (hw + 65534) / 65535;
    const int chunks = (hw + chunk - 1) / chunk;
    void *scratch = NULL;
    sd_status st = cuda_scratch(b, (size_t)ngroups * chunks * sizeof(float3) + (size_t)ngroups * sizeof(float2) + 256, &scratch);
    if (st != SD_OK) return st;
    float3 *partial = (float3 *)scratch;
    float2 *stats = (float2 *)((char *)scratch + (((size_t)ngroups * chunks * sizeof(float3) + 255) & ~(size_t)255));
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_LAUNCH((group_norm_partial_kernel<T>), dim3(ngroups, chunks), THREADS, 0, s, (const T *)x->data, partial, hw, C, groups, chunk);
    CUDA_CHECK_LAUNCH();
    CUDA_LAUNCH(group_norm_finalize_kernel, (ngroups + 127) / 128, 128, 0, s, (const float3 *)partial, stats, ngroups, chunks, eps);
    CUDA_CHECK_LAUNCH();
    size_t n = be_numel(x);
    CUDA_LAUNCH((group_norm_apply_kernel<T>), cuda_grid(n, THREADS), THREADS, 0, s, (const T *)x->data, (const float2 *)stats, gamma, beta,
                (T *)y->data, n, hw * C, C, cpg, groups, silu ? 1 : 0);
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

void cuda_group_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, int groups, float eps, int silu, be_tensor *y) {
    const float *g = gamma ? (const float *)gamma->data : NULL, *bt = beta ? (const float *)beta->data : NULL;
    sd_status st = SD_OK;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T, st = group_norm_as<T>(b, x, g, bt, groups, eps, silu, y));
    cuda_report(b, st);
}

/* LayerNorm over C: one warp per row (8 rows per block); each lane strides over the row three times (mean,
 * variance about the mean, output), so a row is read from memory once and then from cache. */
template <typename T>
__global__ void layer_norm_kernel(const T *x, const float *__restrict__ gamma, const float *__restrict__ beta, T *y, size_t rows, int C, float eps) {
    const size_t row = blockIdx.x * (size_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= rows) return; /* whole warps leave together: the shuffles below see full warps */
    const T *xr = x + row * C;
    T *yr = y + row * C;
    float s = 0.0f;
    for (int j = lane; j < C; j += 32) s += ld(xr + j);
    const float mean = warp_sum(s) / (float)C;
    float q = 0.0f;
    for (int j = lane; j < C; j += 32) {
        float d = ld(xr + j) - mean;
        q += d * d;
    }
    const float rstd = rsqrtf(warp_sum(q) / (float)C + eps);
    for (int j = lane; j < C; j += 32) {
        float v = (ld(xr + j) - mean) * rstd;
        if (gamma) v *= gamma[j];
        if (beta) v += beta[j];
        st(yr + j, v);
    }
}

static sd_status layer_norm_run(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, float eps, be_tensor *y) {
    size_t rows = (size_t)x->n * x->h * x->w;
    const float *g = gamma ? (const float *)gamma->data : NULL, *bt = beta ? (const float *)beta->data : NULL;
    unsigned grid = (unsigned)((rows + THREADS / 32 - 1) / (THREADS / 32));
    cudaStream_t s = cuda_of(b)->stream;
    CUDA_DTYPE_SWITCH(cuda_of(b)->dt, T,
                      CUDA_LAUNCH((layer_norm_kernel<T>), grid, THREADS, 0, s, (const T *)x->data, g, bt, (T *)y->data, rows, x->c, eps));
    CUDA_CHECK_LAUNCH();
    return SD_OK;
}

void cuda_layer_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, float eps, be_tensor *y) {
    cuda_report(b, layer_norm_run(b, x, gamma, beta, eps, y));
}
