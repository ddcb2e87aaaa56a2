/* emu_kernels.h — launchers of the test kernels in tests/emu/ (.cu files) (normal CUDA style, built by nvcc in
 * `make cuda-check` and by g++ with the emulator in `make test`). Pointers are device memory; each
 * launcher returns the error of its launch (cudaGetLastError after the launch). */
#ifndef TESTS_EMU_KERNELS_H
#define TESTS_EMU_KERNELS_H

#include <cuda_runtime.h>

/* ---- correct kernels (emu_kernels.cu) ---- */
/* y[r, :] = softmax(x[r, :]) for rows x cols, one block of `threads` per row, the row in dynamic smem. */
cudaError_t emu_softmax_rows(const float *x, float *y, int rows, int cols, int threads);
/* GroupNorm on NHWC x [n, hw, c] with `groups` groups: y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c]. */
cudaError_t emu_group_norm(const float *x, const float *gamma, const float *beta, float *y, int n, int hw, int c, int groups, float eps);
/* C[m, n] = A[m, k] B[k, n], row-major, 32x32 tiles in shared memory, 1024-thread blocks. */
cudaError_t emu_sgemm_tiled(const float *A, const float *B, float *C, int m, int n, int k);
/* C[m, n] (f32, row-major) = A B + C0 with nvcuda::wmma, one warp per 16x16 tile; A is f16 [m, k] row-major
 * ([k, m] when a_col_major), B f16 [k, n] row-major ([n, k] when b_col_major), C0 f32 column-major [n, m] or
 * NULL for zero; m, n, k multiples of 16. */
cudaError_t emu_wmma_gemm(const void *A, const void *B, const float *C0, float *C, int m, int n, int k, int a_col_major, int b_col_major);

/* ---- probes of the emulated primitives (emu_probe.cu) ---- */
/* out[t * 4 + {0,1,2,3}] = __shfl_sync/up/down/xor of in[t] for thread t of one block, with the given
 * source lane / delta / lane mask and width (one warp per 32 threads; `threads` total). */
cudaError_t emu_probe_shuffles(const int *in, int *out, int threads, int src, int delta, int xmask, int width);
/* out[t*6 + ...] = ballot, any, all, __reduce_add, __match_any, __activemask for predicate pred[t]. */
cudaError_t emu_probe_votes(const int *pred, unsigned *out, int threads);
/* out[t*3 + ...] = __syncthreads_count/and/or of pred[t] (one block). */
cudaError_t emu_probe_barrier_reduce(const int *pred, int *out, int threads);
/* counter[0] += 1 by every thread (atomicAdd), counter[1] = max of thread ids (atomicMax), over a grid. */
cudaError_t emu_probe_atomics(unsigned *counter, int blocks, int threads);
/* out[i] for one thread per element: threadIdx/blockIdx/blockDim/gridDim of a 3-D launch, packed. */
cudaError_t emu_probe_indices(unsigned *out, dim3 grid, dim3 block);
/* half/bfloat16 arithmetic on the device: out[i*4 + {0..3}] = a+b, a*b, fma(a, b, c), a/b as f16 bits;
 * bf_out the same for bfloat16. */
cudaError_t emu_probe_half_ops(const unsigned short *a, const unsigned short *b, const unsigned short *c, unsigned short *out,
                               const unsigned short *ba, const unsigned short *bb, const unsigned short *bc, unsigned short *bf_out, int n);
/* One block; thread 0 recurses `depth` levels, each with a 1 KiB local array (stack use). */
cudaError_t emu_probe_stack(int *out, int depth);
/* Launch with explicit configuration, to test the limits: a no-op kernel. */
cudaError_t emu_probe_launch(dim3 grid, dim3 block, size_t smem);
/* Kernel that reads n floats from p and writes their sum to out[0] (one thread). */
cudaError_t emu_probe_sum(const float *p, int n, float *out);
/* dynamic shared memory of `bytes`: every thread writes its slot, then thread 0 sums; optionally writes
 * one float past the end (overrun). */
cudaError_t emu_probe_dyn_smem(float *out, int threads, size_t bytes, int overrun);

/* out[t] = coeffs[t % 4] * t through __constant__ memory; *counter = threads via a __device__ variable */
cudaError_t emu_probe_symbols(const float coeffs[4], float *out, int threads, unsigned *counter);
/* blocks x threads threads each pass `iters` __syncthreads; out[t] = iters (a context-switch benchmark) */
cudaError_t emu_probe_barriers(int *out, int blocks, int threads, int iters);

/* ---- deliberately buggy kernels (emu_buggy.cu): each should be detected by the emulator ---- */
cudaError_t emu_bug_sgemm_no_barrier_after_load(const float *A, const float *B, float *C, int m, int n, int k);
cudaError_t emu_bug_sgemm_no_barrier_after_compute(const float *A, const float *B, float *C, int m, int n, int k);
/* y[i] = block sum of x over a 256-thread block, but threads past n return before the block barrier. */
cudaError_t emu_bug_barrier_after_return(const float *x, float *y, int n);
/* warp sum of x[0..n) (n < 32) where lanes >= n return before the shuffles. */
cudaError_t emu_bug_shuffle_after_exit(const float *x, float *y, int n);
/* full-mask shuffle taken by half of the warp, then a block barrier (deadlock on a GPU) */
cudaError_t emu_bug_divergent_shuffle(const float *x, float *y);
/* threads 0..15 and 16..31 wait at different __syncthreads calls */
cudaError_t emu_bug_divergent_barrier(float *y);
/* y[i] = 2 x[i] for i <= n (one past the end); far != 0 writes 64 floats past it instead */
cudaError_t emu_bug_oob_write(const float *x, float *y, int n, int far);
/* block sum where the second stage reads all 32 partial slots though only blockDim/32 were written */
cudaError_t emu_bug_uninit_shared(const float *x, float *y, int n, int threads);
/* lanes 0..15 shuffle with mask 0xffff, lanes 16..31 with the full mask */
cudaError_t emu_bug_shuffle_mask_mismatch(const float *x, float *y);
/* reduction of 64 values by one warp with the pre-Volta warp-synchronous idiom (no __syncwarp) */
cudaError_t emu_bug_warp_sync_reduce(const float *x, float *y);

#endif
