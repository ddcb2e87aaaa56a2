// emu_buggy.cu — kernels with the classic CUDA bugs, kept as negative tests: the emulator must detect each
// (a violation, NaN from poisoned memory, or a wrong result) under at least one schedule of `make test`.
// They are valid CUDA to the compiler; nvcc builds them in `make cuda-check` like any other kernel.
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_portable.h"
#include "tests/emu/emu_kernels.h"

#define TILE 32

// Bug: no barrier between loading the tiles and reading them; a thread reads tile entries that other
// threads have not written yet.
__global__ void bug_sgemm_no_barrier_after_load_kernel(const float *A, const float *B, float *C, int m, int n, int k) {
    __shared__ float As[TILE][TILE + 1];
    __shared__ float Bs[TILE][TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y, row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
    float acc = 0.0f;
    for (int t = 0; t < k; t += TILE) {
        As[ty][tx] = row < m && t + tx < k ? A[(size_t)row * k + t + tx] : 0.0f;
        Bs[ty][tx] = t + ty < k && col < n ? B[(size_t)(t + ty) * n + col] : 0.0f;
        for (int i = 0; i < TILE; i++) acc += As[ty][i] * Bs[i][tx];
        __syncthreads();
    }
    if (row < m && col < n) C[(size_t)row * n + col] = acc;
}

cudaError_t emu_bug_sgemm_no_barrier_after_load(const float *A, const float *B, float *C, int m, int n, int k) {
    CUDA_LAUNCH(bug_sgemm_no_barrier_after_load_kernel, dim3((n + TILE - 1) / TILE, (m + TILE - 1) / TILE), dim3(TILE, TILE), 0, 0,
                A, B, C, m, n, k);
    return cudaGetLastError();
}

// Bug: no barrier after the compute loop; a fast thread overwrites the tile for step t+1 while others
// still read step t.
__global__ void bug_sgemm_no_barrier_after_compute_kernel(const float *A, const float *B, float *C, int m, int n, int k) {
    __shared__ float As[TILE][TILE + 1];
    __shared__ float Bs[TILE][TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y, row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
    float acc = 0.0f;
    for (int t = 0; t < k; t += TILE) {
        As[ty][tx] = row < m && t + tx < k ? A[(size_t)row * k + t + tx] : 0.0f;
        Bs[ty][tx] = t + ty < k && col < n ? B[(size_t)(t + ty) * n + col] : 0.0f;
        __syncthreads();
        for (int i = 0; i < TILE; i++) acc += As[ty][i] * Bs[i][tx];
    }
    if (row < m && col < n) C[(size_t)row * n + col] = acc;
}

cudaError_t emu_bug_sgemm_no_barrier_after_compute(const float *A, const float *B, float *C, int m, int n, int k) {
    CUDA_LAUNCH(bug_sgemm_no_barrier_after_compute_kernel, dim3((n + TILE - 1) / TILE, (m + TILE - 1) / TILE), dim3(TILE, TILE), 0, 0,
                A, B, C, m, n, k);
    return cudaGetLastError();
}

// Bug: threads past the end return, the rest then meet at __syncthreads.
__global__ void bug_barrier_after_return_kernel(const float *x, float *y, int n) {
    __shared__ float s[256];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    s[threadIdx.x] = x[i];
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0.0f;
        for (int j = 0; j < 256 && (int)blockIdx.x * 256 + j < n; j++) t += s[j];
        y[blockIdx.x] = t;
    }
}

cudaError_t emu_bug_barrier_after_return(const float *x, float *y, int n) {
    CUDA_LAUNCH(bug_barrier_after_return_kernel, (n + 255) / 256, 256, 0, 0, x, y, n);
    return cudaGetLastError();
}

// Bug: lanes >= n leave before the full-mask warp reduction, whose butterflies then read them.
__global__ void bug_shuffle_after_exit_kernel(const float *x, float *y, int n) {
    const int lane = threadIdx.x;
    if (lane >= n) return;
    float v = x[lane];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) y[0] = v;
}

cudaError_t emu_bug_shuffle_after_exit(const float *x, float *y, int n) {
    CUDA_LAUNCH(bug_shuffle_after_exit_kernel, 1, 32, 0, 0, x, y, n);
    return cudaGetLastError();
}

// Bug: a full-mask shuffle inside a branch taken by half the warp; the other half goes on to a barrier.
__global__ void bug_divergent_shuffle_kernel(const float *x, float *y) {
    float v = x[threadIdx.x];
    if (threadIdx.x < 16) v += __shfl_xor_sync(0xffffffffu, v, 1);
    __syncthreads();
    y[threadIdx.x] = v;
}

cudaError_t emu_bug_divergent_shuffle(const float *x, float *y) {
    CUDA_LAUNCH(bug_divergent_shuffle_kernel, 1, 64, 0, 0, x, y);
    return cudaGetLastError();
}

// Bug: the two halves of the block wait at different barriers.
__global__ void bug_divergent_barrier_kernel(float *y) {
    if (threadIdx.x < 16) {
        y[threadIdx.x] = 1.0f;
        __syncthreads();
    } else {
        y[threadIdx.x] = 2.0f;
        __syncthreads();
    }
}

cudaError_t emu_bug_divergent_barrier(float *y) {
    CUDA_LAUNCH(bug_divergent_barrier_kernel, 1, 32, 0, 0, y);
    return cudaGetLastError();
}

// Bug: `<=` instead of `<`: one element past the end (or, with far, 64 floats past it).
__global__ void bug_oob_write_kernel(const float *x, float *y, int n, int far) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) {
        const float v = i < n ? 2.0f * x[i] : 0.0f;
        y[i == n && far ? i + 64 : i] = v;
    }
}

cudaError_t emu_bug_oob_write(const float *x, float *y, int n, int far) {
    CUDA_LAUNCH(bug_oob_write_kernel, (n + 128) / 128, 128, 0, 0, x, y, n, far);
    return cudaGetLastError();
}

// Bug: the second stage reads all 32 partial sums, but only blockDim/32 were written.
__global__ void bug_uninit_shared_kernel(const float *x, float *y, int n) {
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float v = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) v += x[i];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = part[lane];  // should be: lane < blockDim.x / 32 ? part[lane] : 0
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) y[0] = v;
    }
}

cudaError_t emu_bug_uninit_shared(const float *x, float *y, int n, int threads) {
    CUDA_LAUNCH(bug_uninit_shared_kernel, 1, threads, 0, 0, x, y, n);
    return cudaGetLastError();
}

// Bug: the pre-Volta idiom that assumed a warp runs in lockstep; without __syncwarp between the steps a
// lane can read a partial sum before its neighbour has written it.
__global__ void bug_warp_sync_reduce_kernel(const float *x, float *y) {
    __shared__ float s[64];
    const int t = threadIdx.x;
    s[t] = x[t];
    s[t + 32] = x[t + 32];
    __syncwarp();
    volatile float *vs = s;
    vs[t] += vs[t + 32];
    vs[t] += vs[t + 16];
    vs[t] += vs[t + 8];
    vs[t] += vs[t + 4];
    vs[t] += vs[t + 2];
    vs[t] += vs[t + 1];
    if (t == 0) y[0] = vs[0];
}

cudaError_t emu_bug_warp_sync_reduce(const float *x, float *y) {
    CUDA_LAUNCH(bug_warp_sync_reduce_kernel, 1, 32, 0, 0, x, y);
    return cudaGetLastError();
}

// Bug: the two halves of a warp name different member masks for the same shuffle (the upper half's mask
// includes the lower half, which never takes part in its shuffle).
__global__ void bug_shuffle_mask_mismatch_kernel(const float *x, float *y) {
    const unsigned mask = threadIdx.x < 16 ? 0x0000ffffu : 0xffffffffu;
    y[threadIdx.x] = __shfl_xor_sync(mask, x[threadIdx.x], 1);
}

cudaError_t emu_bug_shuffle_mask_mismatch(const float *x, float *y) {
    CUDA_LAUNCH(bug_shuffle_mask_mismatch_kernel, 1, 32, 0, 0, x, y);
    return cudaGetLastError();
}
