// emu_kernels.cu — correct CUDA kernels in everyday style (block reductions, shared-memory tiles, shuffles,
// wmma) that the emulator runs against C references; nvcc compiles the same file in `make cuda-check`.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <type_traits>

#include "kernels/cuda/cuda_portable.h"
#include "tests/emu/emu_kernels.h"

#define FULL_MASK 0xffffffffu

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

// Block-wide reductions for blockDim.x a multiple of 32; `red` holds one partial per warp. Every thread
// gets the result. The trailing barrier lets the caller reuse `red` at once.
__device__ float block_max(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_max(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nwarps ? red[lane] : -INFINITY;
    v = warp_max(v);
    __syncthreads();
    return v;
}

__device__ float block_sum(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nwarps ? red[lane] : 0.0f;
    v = warp_sum(v);
    __syncthreads();
    return v;
}

// ---- row softmax: one block per row; the row is staged in dynamic shared memory ----
__global__ void softmax_rows_kernel(const float *__restrict__ x, float *__restrict__ y, int cols) {
    CUDA_DYNAMIC_SHARED(float, row);  // [cols]
    __shared__ float red[32];
    const float *xr = x + (size_t)blockIdx.x * cols;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        row[i] = xr[i];
        m = fmaxf(m, row[i]);
    }
    m = block_max(m, red);
    float s = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        const float e = __expf(row[i] - m);
        row[i] = e;
        s += e;
    }
    s = block_sum(s, red);
    const float inv = 1.0f / s;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) y[(size_t)blockIdx.x * cols + i] = row[i] * inv;
}

cudaError_t emu_softmax_rows(const float *x, float *y, int rows, int cols, int threads) {
    CUDA_LAUNCH(softmax_rows_kernel, rows, threads, (size_t)cols * sizeof(float), 0, x, y, cols);
    return cudaGetLastError();
}

// ---- GroupNorm, NHWC: one block per (sample, group); two passes for the variance ----
__global__ void group_norm_kernel(const float *__restrict__ x, const float *__restrict__ gamma, const float *__restrict__ beta,
                                  float *__restrict__ y, int hw, int c, int groups, float eps) {
    __shared__ float red[32];
    const int n = blockIdx.x / groups, g = blockIdx.x % groups, cg = c / groups;
    const size_t base = (size_t)n * hw * c + (size_t)g * cg;
    const int count = hw * cg;
    float s = 0.0f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) s += x[base + (size_t)(i / cg) * c + i % cg];
    const float mean = block_sum(s, red) / (float)count;
    float q = 0.0f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) {
        const float d = x[base + (size_t)(i / cg) * c + i % cg] - mean;
        q += d * d;
    }
    const float rstd = rsqrtf(block_sum(q, red) / (float)count + eps);
    for (int i = threadIdx.x; i < count; i += blockDim.x) {
        const size_t at = base + (size_t)(i / cg) * c + i % cg;
        const int ch = g * cg + i % cg;
        y[at] = (x[at] - mean) * rstd * gamma[ch] + beta[ch];
    }
}

cudaError_t emu_group_norm(const float *x, const float *gamma, const float *beta, float *y, int n, int hw, int c, int groups, float eps) {
    CUDA_LAUNCH(group_norm_kernel, n * groups, 256, 0, 0, x, gamma, beta, y, hw, c, groups, eps);
    return cudaGetLastError();
}

// ---- tiled SGEMM: 32x32 output tile per block, one element per thread ----
#define TILE 32

__global__ void sgemm_tiled_kernel(const float *__restrict__ A, const float *__restrict__ B, float *__restrict__ C, int m, int n, int k) {
    __shared__ float As[TILE][TILE + 1];
    __shared__ float Bs[TILE][TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
    float acc = 0.0f;
    for (int t = 0; t < k; t += TILE) {
        As[ty][tx] = row < m && t + tx < k ? A[(size_t)row * k + t + tx] : 0.0f;
        Bs[ty][tx] = t + ty < k && col < n ? B[(size_t)(t + ty) * n + col] : 0.0f;
        __syncthreads();
#pragma unroll 8
        for (int i = 0; i < TILE; i++) acc += As[ty][i] * Bs[i][tx];
        __syncthreads();
    }
    if (row < m && col < n) C[(size_t)row * n + col] = acc;
}

cudaError_t emu_sgemm_tiled(const float *A, const float *B, float *C, int m, int n, int k) {
    const dim3 grid((n + TILE - 1) / TILE, (m + TILE - 1) / TILE), block(TILE, TILE);
    CUDA_LAUNCH(sgemm_tiled_kernel, grid, block, 0, 0, A, B, C, m, n, k);
    return cudaGetLastError();
}

// ---- wmma GEMM: one warp per 16x16 output tile, f16 inputs, f32 accumulation ----
// A is [m, k] row-major or, with a column-major fragment, stored [k, m]; B is [k, n] row-major or [n, k].
// The accumulator starts from C0 (column-major [n, m]) when given, else from zero; C is [m, n] row-major.
template <typename ALayout, typename BLayout>
__global__ void wmma_gemm_kernel(const __half *__restrict__ A, const __half *__restrict__ B, const float *__restrict__ C0,
                                 float *__restrict__ C, int m, int n, int k) {
    using namespace nvcuda;
    const int tm = blockIdx.y * 16, tn = blockIdx.x * 16;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, ALayout> a;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, BLayout> b;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    if (C0) wmma::load_matrix_sync(acc, C0 + (size_t)tn * m + tm, m, wmma::mem_col_major);
    else wmma::fill_fragment(acc, 0.0f);
    const bool acol = std::is_same<ALayout, wmma::col_major>::value, bcol = std::is_same<BLayout, wmma::col_major>::value;
    for (int t = 0; t < k; t += 16) {
        wmma::load_matrix_sync(a, acol ? A + (size_t)t * m + tm : A + (size_t)tm * k + t, acol ? m : k);
        wmma::load_matrix_sync(b, bcol ? B + (size_t)tn * k + t : B + (size_t)t * n + tn, bcol ? k : n);
        wmma::mma_sync(acc, a, b, acc);
    }
    wmma::store_matrix_sync(C + (size_t)tm * n + tn, acc, n, wmma::mem_row_major);
}

cudaError_t emu_wmma_gemm(const void *A, const void *B, const float *C0, float *C, int m, int n, int k, int a_col_major, int b_col_major) {
    using nvcuda::wmma::col_major;
    using nvcuda::wmma::row_major;
    const dim3 grid(n / 16, m / 16);
    const __half *a = (const __half *)A, *b = (const __half *)B;
    switch (a_col_major * 2 + b_col_major) {
    case 0: CUDA_LAUNCH((wmma_gemm_kernel<row_major, row_major>), grid, 32, 0, 0, a, b, C0, C, m, n, k); break;
    case 1: CUDA_LAUNCH((wmma_gemm_kernel<row_major, col_major>), grid, 32, 0, 0, a, b, C0, C, m, n, k); break;
    case 2: CUDA_LAUNCH((wmma_gemm_kernel<col_major, row_major>), grid, 32, 0, 0, a, b, C0, C, m, n, k); break;
    default: CUDA_LAUNCH((wmma_gemm_kernel<col_major, col_major>), grid, 32, 0, 0, a, b, C0, C, m, n, k); break;
    }
    return cudaGetLastError();
}
