/* emu_tc_kernels.h — launchers of the tensor-core helper test kernels (tests/emu/emu_tc.cu). Pointers are device
 * memory; 16-bit matrices are raw f16 or bf16 bits (bf16 != 0 selects bf16); each launcher returns the error of
 * its launch. */
#ifndef TESTS_EMU_TC_KERNELS_H
#define TESTS_EMU_TC_KERNELS_H

#include <cuda_runtime.h>

/* D [16][8] = A [16][16] · B [16][8] + C [16][8] by one mma, every lane's registers assembled by the PTX table. */
cudaError_t emu_tc_probe_mma(int bf16, const unsigned short *A, const unsigned short *B, const float *C, float *D);
/* The registers ldmatrix x4, x4.trans, x2, x2.trans give each lane for M [16][16]: out[lane * 12 + 0..11]. */
cudaError_t emu_tc_probe_ldmatrix(const unsigned short *M, unsigned *out);
/* C [m][n] = A [m][k] · B with B [n][k] (b_kn = 0) or [k][n] (b_kn = 1): cp.async, ldmatrix, mma in two-warp
 * blocks sharing a two-stage ring; k % 8 == 0, and n % 8 == 0 when b_kn. skip_barrier: the bug of refilling a stage
 * without the barrier after its use. */
cudaError_t emu_tc_gemm(int bf16, const void *A, const void *B, float *C, int m, int n, int k, int b_kn, int skip_barrier);
/* y + skew = x + skew for n 16-byte vectors through tc_ld128 / tc_st128. */
cudaError_t emu_tc_copy128(const void *x, void *y, int n, int skew);
/* One block of 128 threads staging x [4][128][4] through a two-stage cp.async ring; y[i] = the sum of the 16
 * values thread 127 - i staged. bug 0: a stage read before its wait; 1: no wait at all; 2: no barrier before a
 * refill; anything else: correct. */
cudaError_t emu_tc_cp_async_bug(const float *x, float *y, int bug);
/* which 0: mma called by half a warp (y: 32 floats); 1: ldmatrix from global memory x (y: 32 unsigned). */
cudaError_t emu_tc_misuse(int which, const void *x, void *y);

#endif
