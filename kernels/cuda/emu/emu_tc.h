/* emu_tc.h — the emulated twins of kernels/cuda/tc.h (mma.sync m16n8k16, ldmatrix, cp.async, 128-bit accesses),
 * written from the PTX ISA's fragment layouts (listed in tc.h).
 *
 *  - mma and ldmatrix are warp collectives (.sync.aligned): every lane of the warp must call the same one at the
 *    same site, or the launch stops with a violation. mma rebuilds A (16x16), B (16x8) and C from the 32 lanes'
 *    registers, computes D = A·B + C with exact products summed in f32 in k order, and hands each lane its part.
 *    ldmatrix takes each 8x8 matrix's row i from the address of lane 8·matrix + i; the addresses must be 16-byte
 *    aligned and lie in shared memory.
 *  - cp.async is asynchronous as on the GPU: at issue the destination is filled with poison (0xFF, NaN in every
 *    float format), and the copy happens only when a cp.async.wait_group retires its group. A read of a stage
 *    before the wait, or a refill of a stage another thread still reads (missing barrier), gives NaN. Copies
 *    still in flight when a thread exits are reported as a warning.
 *  - tc_ld128 / tc_st128 report a misaligned address as a violation (a misaligned-address fault on the GPU). */
#ifndef CUDA_EMU_TC_H
#define CUDA_EMU_TC_H

#include "cuda_emu.h"

#include <time.h>

/* ---- runtime side (emu_tc.cpp) ---- */
void cuda_emu_mma16816(float *d, const uint32_t *a, const uint32_t *b, int bf16, const char *file, int line);
void cuda_emu_ldmatrix(uint32_t *r, const void *p, int num, int trans, const char *file, int line);
void cuda_emu_cp_async(void *smem, const void *gmem, int bytes, int src_bytes, const char *file, int line);
void cuda_emu_cp_async_commit(void);
void cuda_emu_cp_async_wait(int n);
void cuda_emu_misaligned(const char *what, const void *p, int align, const char *file, int line);

static inline void tc_mma_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], CUDA_EMU_SITE) {
    cuda_emu_mma16816(d, a, b, 0, file_, line_);
}
static inline void tc_mma_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], CUDA_EMU_SITE) {
    cuda_emu_mma16816(d, a, b, 1, file_, line_);
}
static inline void tc_ldmatrix_x4(uint32_t (&r)[4], const void *p, CUDA_EMU_SITE) { cuda_emu_ldmatrix(r, p, 4, 0, file_, line_); }
static inline void tc_ldmatrix_x2(uint32_t (&r)[2], const void *p, CUDA_EMU_SITE) { cuda_emu_ldmatrix(r, p, 2, 0, file_, line_); }
static inline void tc_ldmatrix_x4_trans(uint32_t (&r)[4], const void *p, CUDA_EMU_SITE) { cuda_emu_ldmatrix(r, p, 4, 1, file_, line_); }
static inline void tc_ldmatrix_x2_trans(uint32_t (&r)[2], const void *p, CUDA_EMU_SITE) { cuda_emu_ldmatrix(r, p, 2, 1, file_, line_); }

static inline void tc_cp_async16(void *smem, const void *gmem, int src_bytes, CUDA_EMU_SITE) {
    cuda_emu_cp_async(smem, gmem, 16, src_bytes, file_, line_);
}
static inline void tc_cp_async8(void *smem, const void *gmem, int src_bytes, CUDA_EMU_SITE) {
    cuda_emu_cp_async(smem, gmem, 8, src_bytes, file_, line_);
}
static inline void tc_cp_async_commit(void) { cuda_emu_cp_async_commit(); }
/* (one block runs at a time: a plain load sees every earlier block's stores) */
static inline unsigned tc_ld_acquire(const unsigned *p) { return *(const volatile unsigned *)p; }
template <int N> static inline void tc_cp_async_wait(void) { cuda_emu_cp_async_wait(N); }
static inline unsigned long long tc_globaltimer(void) {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static inline uint4 tc_ld128(const void *p, CUDA_EMU_SITE) {
    if ((uintptr_t)p & 15) cuda_emu_misaligned("128-bit load", p, 16, file_, line_);
    return *(const uint4 *)p;
}
static inline void tc_st128(void *p, uint4 v, CUDA_EMU_SITE) {
    if ((uintptr_t)p & 15) cuda_emu_misaligned("128-bit store", p, 16, file_, line_);
    *(uint4 *)p = v;
}

#endif
