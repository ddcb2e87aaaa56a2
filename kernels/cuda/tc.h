/* tc.h — tensor-core building blocks as small device functions, the only place kernels meet inline PTX:
 *
 *   tc_mma<T>(d, a, b)            d[4] += A·B, mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}: A 16x16 (4 regs),
 *                                 B 16x8 (2 regs), f32 accumulators; T = __half or __nv_bfloat16
 *   tc_ldmatrix_x4 / _x2 (_trans) ldmatrix.sync.aligned.m8n8.{x4,x2}{.trans}.shared.b16: 4 or 2 8x8 matrices of
 *                                 16-bit elements from shared memory, one row address per lane (lanes 0-7: matrix
 *                                 0, 8-15: matrix 1, ...)
 *   tc_cp_async16(s, g, n)        cp.async.cg.shared.global, 16 bytes of which the first n come from g (0 <= n <= 16)
 *                                 and the rest are zero; tc_cp_async_commit() closes a group, tc_cp_async_wait<N>()
 *                                 waits until at most N committed groups of this thread are in flight
 *   tc_cp_async8(s, g, n)         cp.async.ca.shared.global, the same with 8 bytes (8-byte aligned addresses)
 *   tc_ld128 / tc_st128           128-bit global loads and stores (16-byte aligned addresses)
 *   tc_ld_acquire(p)              ld.acquire.gpu.global.u32: a counter, ordered before the loads after it
 *   tc_globaltimer()              %globaltimer: nanoseconds of the GPU's clock (for timeouts, not for timing code)
 *   tc_pack<T>(lo, hi)            two f32 rounded to T and packed as an mma operand register (lo in bits 0-15)
 *
 * Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"; g = lane / 4, t = lane % 4):
 *   A regs 0..3: rows g, g+8, g, g+8; columns 2t..2t+1, 2t..2t+1, 2t+8..2t+9, 2t+8..2t+9
 *   B regs 0..1: rows (k) 2t..2t+1, 2t+8..2t+9; column (n) g
 *   C/D 0..3:    (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1)
 *   ldmatrix:    reg i of lane l holds row l/4, columns 2(l%4)..+1 of matrix i (.trans: rows 2(l%4)..+1, column l/4)
 * Under nvcc these are one instruction each; the emulated build (CUDA_EMU) takes the twins in emu/emu_tc.h, which
 * implement exactly these layouts as warp collectives, so a kernel that mixes up a layout fails its test on the CPU. */
#ifndef KERNELS_CUDA_TC_H
#define KERNELS_CUDA_TC_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include <type_traits>

#ifdef CUDA_EMU
#include "emu_tc.h"
#else

static __device__ __forceinline__ void tc_mma_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
static __device__ __forceinline__ void tc_mma_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

static __device__ __forceinline__ uint32_t tc_smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

static __device__ __forceinline__ void tc_ldmatrix_x4(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(tc_smem_addr(p)));
}
static __device__ __forceinline__ void tc_ldmatrix_x2(uint32_t (&r)[2], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(tc_smem_addr(p)));
}
static __device__ __forceinline__ void tc_ldmatrix_x4_trans(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(tc_smem_addr(p)));
}
static __device__ __forceinline__ void tc_ldmatrix_x2_trans(uint32_t (&r)[2], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(tc_smem_addr(p)));
}

static __device__ __forceinline__ void tc_cp_async16(void *smem, const void *gmem, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(tc_smem_addr(smem)), "l"(gmem), "r"(src_bytes) : "memory");
}
static __device__ __forceinline__ void tc_cp_async8(void *smem, const void *gmem, int src_bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(tc_smem_addr(smem)), "l"(gmem), "r"(src_bytes) : "memory");
}
static __device__ __forceinline__ void tc_cp_async_commit(void) { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> static __device__ __forceinline__ void tc_cp_async_wait(void) { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

/* ld.acquire.gpu: a counter another block increments after a fence, before reading what that block wrote */
static __device__ __forceinline__ unsigned tc_ld_acquire(const unsigned *p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
}

static __device__ __forceinline__ unsigned long long tc_globaltimer(void) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
    return t;
}

static __device__ __forceinline__ uint4 tc_ld128(const void *p) { return *reinterpret_cast<const uint4 *>(p); }
static __device__ __forceinline__ void tc_st128(void *p, uint4 v) { *reinterpret_cast<uint4 *>(p) = v; }

#endif

/* 16 bytes as 4 packed registers (8 16-bit values). Indexed with constants only, so it stays in registers, unlike
 * a uint4 whose address is taken. tc_ld8 / tc_st8 work on global and shared memory (16-byte aligned). */
struct tc_v8 {
    uint32_t r[4];
};
static __device__ __forceinline__ tc_v8 tc_ld8(const void *p) {
    const uint4 q = tc_ld128(p);
    tc_v8 v = {{q.x, q.y, q.z, q.w}};
    return v;
}
static __device__ __forceinline__ void tc_st8(void *p, const tc_v8 &v) { tc_st128(p, make_uint4(v.r[0], v.r[1], v.r[2], v.r[3])); }

template <typename T> static __device__ __forceinline__ void tc_mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    static_assert(std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value, "tc_mma: f16 or bf16 operands");
    if constexpr (std::is_same<T, __half>::value) tc_mma_f16(d, a, b);
    else tc_mma_bf16(d, a, b);
}

template <typename T> static __device__ __forceinline__ uint32_t tc_pack(float lo, float hi) {
    uint32_t r;
    if constexpr (std::is_same<T, __half>::value) {
        __half2 h = __floats2half2_rn(lo, hi);
        memcpy(&r, &h, 4);
    } else {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        memcpy(&r, &h, 4);
    }
    return r;
}

/* The two 16-bit elements of a packed register as f32 (lo = bits 0-15). */
template <typename T> static __device__ __forceinline__ float2 tc_unpack(uint32_t r) {
    if constexpr (std::is_same<T, __half>::value) {
        __half2 h;
        memcpy(&h, &r, 4);
        return __half22float2(h);
    } else {
        __nv_bfloat162 h;
        memcpy(&h, &r, 4);
        return __bfloat1622float2(h);
    }
}

#endif
