// emu_probe.cu — small kernels that expose one primitive each (shuffles, votes, barrier reductions, atomics,
// built-in indices, 16-bit arithmetic, stack use, launch limits, dynamic shared memory) so the tests can
// compare the emulator with the CUDA rules written out independently.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_portable.h"
#include "tests/emu/emu_kernels.h"

__global__ void probe_shuffles_kernel(const int *in, int *out, int src, int delta, int xmask, int width) {
    const int t = threadIdx.x, v = in[t];
    out[t * 4 + 0] = __shfl_sync(0xffffffffu, v, src, width);
    out[t * 4 + 1] = __shfl_up_sync(0xffffffffu, v, delta, width);
    out[t * 4 + 2] = __shfl_down_sync(0xffffffffu, v, delta, width);
    out[t * 4 + 3] = __shfl_xor_sync(0xffffffffu, v, xmask, width);
}

cudaError_t emu_probe_shuffles(const int *in, int *out, int threads, int src, int delta, int xmask, int width) {
    CUDA_LAUNCH(probe_shuffles_kernel, 1, threads, 0, 0, in, out, src, delta, xmask, width);
    return cudaGetLastError();
}

__global__ void probe_votes_kernel(const int *pred, unsigned *out) {
    const int t = threadIdx.x, p = pred[t];
    out[t * 6 + 0] = __ballot_sync(0xffffffffu, p);
    out[t * 6 + 1] = __any_sync(0xffffffffu, p);
    out[t * 6 + 2] = __all_sync(0xffffffffu, p);
    out[t * 6 + 3] = __reduce_add_sync(0xffffffffu, (unsigned)p);
    out[t * 6 + 4] = __match_any_sync(0xffffffffu, p);
    out[t * 6 + 5] = __activemask();
}

cudaError_t emu_probe_votes(const int *pred, unsigned *out, int threads) {
    CUDA_LAUNCH(probe_votes_kernel, 1, threads, 0, 0, pred, out);
    return cudaGetLastError();
}

__global__ void probe_barrier_reduce_kernel(const int *pred, int *out) {
    const int t = threadIdx.x, p = pred[t];
    out[t * 3 + 0] = __syncthreads_count(p);
    out[t * 3 + 1] = __syncthreads_and(p);
    out[t * 3 + 2] = __syncthreads_or(p);
}

cudaError_t emu_probe_barrier_reduce(const int *pred, int *out, int threads) {
    CUDA_LAUNCH(probe_barrier_reduce_kernel, 1, threads, 0, 0, pred, out);
    return cudaGetLastError();
}

__global__ void probe_atomics_kernel(unsigned *counter) {
    const unsigned id = blockIdx.x * blockDim.x + threadIdx.x;
    atomicAdd(&counter[0], 1u);
    atomicMax(&counter[1], id);
}

cudaError_t emu_probe_atomics(unsigned *counter, int blocks, int threads) {
    CUDA_LAUNCH(probe_atomics_kernel, blocks, threads, 0, 0, counter);
    return cudaGetLastError();
}

__global__ void probe_indices_kernel(unsigned *out) {
    const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    unsigned *o = out + (b * blockDim.x * blockDim.y * blockDim.z + t) * 4;
    o[0] = threadIdx.x | threadIdx.y << 10 | threadIdx.z << 20;
    o[1] = blockIdx.x | blockIdx.y << 10 | blockIdx.z << 20;
    o[2] = blockDim.x | blockDim.y << 10 | blockDim.z << 20;
    o[3] = gridDim.x | gridDim.y << 10 | gridDim.z << 20;
}

cudaError_t emu_probe_indices(unsigned *out, dim3 grid, dim3 block) {
    CUDA_LAUNCH(probe_indices_kernel, grid, block, 0, 0, out);
    return cudaGetLastError();
}

__global__ void probe_half_ops_kernel(const __half *a, const __half *b, const __half *c, __half *out, const __nv_bfloat16 *ba,
                                      const __nv_bfloat16 *bb, const __nv_bfloat16 *bc, __nv_bfloat16 *bout, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    out[i * 4 + 0] = __hadd(a[i], b[i]);
    out[i * 4 + 1] = __hmul(a[i], b[i]);
    out[i * 4 + 2] = __hfma(a[i], b[i], c[i]);
    out[i * 4 + 3] = __hdiv(a[i], b[i]);
    bout[i * 4 + 0] = __hadd(ba[i], bb[i]);
    bout[i * 4 + 1] = __hmul(ba[i], bb[i]);
    bout[i * 4 + 2] = __hfma(ba[i], bb[i], bc[i]);
    bout[i * 4 + 3] = __hdiv(ba[i], bb[i]);
}

cudaError_t emu_probe_half_ops(const unsigned short *a, const unsigned short *b, const unsigned short *c, unsigned short *out,
                               const unsigned short *ba, const unsigned short *bb, const unsigned short *bc, unsigned short *bf_out, int n) {
    CUDA_LAUNCH(probe_half_ops_kernel, (n + 127) / 128, 128, 0, 0, (const __half *)a, (const __half *)b, (const __half *)c,
                (__half *)out, (const __nv_bfloat16 *)ba, (const __nv_bfloat16 *)bb, (const __nv_bfloat16 *)bc,
                (__nv_bfloat16 *)bf_out, n);
    return cudaGetLastError();
}

__device__ __noinline__ int deep(int depth, int seed) {
    volatile int local[256];
    for (int i = 0; i < 256; i++) local[i] = seed + i;
    if (!depth) return local[7];
    const int r = deep(depth - 1, local[seed & 255]);
    return r + local[r & 255] - local[0];  // the frame stays live across the call
}

__global__ void probe_stack_kernel(int *out, int depth) {
    if (threadIdx.x == 0) out[0] = deep(depth, 3);
}

cudaError_t emu_probe_stack(int *out, int depth) {
    CUDA_LAUNCH(probe_stack_kernel, 1, 32, 0, 0, out, depth);
    return cudaGetLastError();
}

__global__ void probe_noop_kernel(void) {}

cudaError_t emu_probe_launch(dim3 grid, dim3 block, size_t smem) {
    CUDA_LAUNCH(probe_noop_kernel, grid, block, smem, 0);
    return cudaGetLastError();
}

__global__ void probe_sum_kernel(const float *p, int n, float *out) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += p[i];
    out[0] = s;
}

cudaError_t emu_probe_sum(const float *p, int n, float *out) {
    CUDA_LAUNCH(probe_sum_kernel, 1, 1, 0, 0, p, n, out);
    return cudaGetLastError();
}

__global__ void probe_dyn_smem_kernel(float *out, int nfloats, int overrun) {
    CUDA_DYNAMIC_SHARED(float, buf);
    for (int i = threadIdx.x; i < nfloats; i += blockDim.x) buf[i] = 1.0f;
    if (overrun && threadIdx.x == 0) buf[nfloats] = 1.0f;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (int i = 0; i < nfloats; i++) s += buf[i];
        out[0] = s;
    }
}

cudaError_t emu_probe_dyn_smem(float *out, int threads, size_t bytes, int overrun) {
    if (bytes > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(probe_dyn_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
        if (e != cudaSuccess) return e;
    }
    CUDA_LAUNCH(probe_dyn_smem_kernel, 1, threads, bytes, 0, out, (int)(bytes / sizeof(float)), overrun);
    return cudaGetLastError();
}

// Barrier-bound: every thread parks `iters` times; measures the emulator's context switches.
__global__ void probe_barriers_kernel(int *out, int iters) {
    __shared__ int s[1024];
    s[threadIdx.x] = 0;
    for (int i = 0; i < iters; i++) {
        __syncthreads();
        s[threadIdx.x] += 1;
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = s[threadIdx.x];
}

cudaError_t emu_probe_barriers(int *out, int blocks, int threads, int iters) {
    CUDA_LAUNCH(probe_barriers_kernel, blocks, threads, 0, 0, out, iters);
    return cudaGetLastError();
}

// __constant__ memory filled from the host with cudaMemcpyToSymbol, and a __device__ counter read back.
__constant__ float probe_coeffs[4];
__device__ unsigned probe_counter;

__global__ void probe_symbols_kernel(float *out) {
    out[threadIdx.x] = probe_coeffs[threadIdx.x % 4] * (float)threadIdx.x;
    atomicAdd(&probe_counter, 1u);
}

cudaError_t emu_probe_symbols(const float coeffs[4], float *out, int threads, unsigned *counter) {
    cudaError_t e = cudaMemcpyToSymbol(probe_coeffs, coeffs, 4 * sizeof(float));
    const unsigned zero = 0;
    if (e == cudaSuccess) e = cudaMemcpyToSymbol(probe_counter, &zero, sizeof zero);
    if (e != cudaSuccess) return e;
    CUDA_LAUNCH(probe_symbols_kernel, 1, threads, 0, 0, out);
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaMemcpyFromSymbol(counter, probe_counter, sizeof *counter);
    return e;
}
