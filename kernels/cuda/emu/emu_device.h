/* emu_device.h — the device side of the CUDA emulator: keywords, built-in variables, vector types,
 * barriers, warp collectives, atomics and math intrinsics, as seen by kernel code compiled with g++.
 * Included through cuda_emu.h; see there for the execution model. */
#ifndef CUDA_EMU_DEVICE_H
#define CUDA_EMU_DEVICE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
/* (the C++ headers come before the keyword macros below: libstdc++ spells __noinline__ as an attribute) */

/* ---- keywords ---------------------------------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __constant__
/* One object per kernel shared by every fiber of the block; thread_local so that all of them sit in
 * the executable's TLS block, which the runtime fills with 0xFF before each block (NaN in f32/f16/bf16)
 * and restores after the launch. */
#define __shared__ static thread_local
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __grid_constant__
#define __managed__

/* ---- vector types ------------------------------------------------------------------------------ */
#define CUDA_EMU_VEC2(T, name, al) struct __attribute__((aligned(al))) name { T x, y; };               \
    static inline name make_##name(T x, T y) { name v; v.x = x; v.y = y; return v; }
#define CUDA_EMU_VEC3(T, name) struct name { T x, y, z; };                                           \
    static inline name make_##name(T x, T y, T z) { name v; v.x = x; v.y = y; v.z = z; return v; }
#define CUDA_EMU_VEC4(T, name, al) struct __attribute__((aligned(al))) name { T x, y, z, w; };         \
    static inline name make_##name(T x, T y, T z, T w) { name v; v.x = x; v.y = y; v.z = z; v.w = w; return v; }
CUDA_EMU_VEC2(float, float2, 8) CUDA_EMU_VEC3(float, float3) CUDA_EMU_VEC4(float, float4, 16)
CUDA_EMU_VEC2(int, int2, 8) CUDA_EMU_VEC3(int, int3) CUDA_EMU_VEC4(int, int4, 16)
CUDA_EMU_VEC2(unsigned int, uint2, 8) CUDA_EMU_VEC4(unsigned int, uint4, 16)
CUDA_EMU_VEC2(double, double2, 16) CUDA_EMU_VEC2(long long, longlong2, 16)
CUDA_EMU_VEC2(short, short2, 4) CUDA_EMU_VEC2(unsigned short, ushort2, 4)
CUDA_EMU_VEC4(short, short4, 8) CUDA_EMU_VEC4(unsigned short, ushort4, 8)
CUDA_EMU_VEC4(signed char, char4, 4) CUDA_EMU_VEC4(unsigned char, uchar4, 4)
#undef CUDA_EMU_VEC2
#undef CUDA_EMU_VEC3
#undef CUDA_EMU_VEC4

struct uint3 { unsigned int x, y, z; };
static inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { uint3 v; v.x = x; v.y = y; v.z = z; return v; }

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

/* ---- built-in variables: plain globals the scheduler rewrites before it resumes a fiber ---------- */
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

/* ---- barriers and warp collectives (blocking: implemented by the scheduler, emu_sched.cpp) --------
 * The call site (file, line) is part of every barrier: threads of a block that wait at different
 * __syncthreads() are reported, as are lanes of a warp in different collectives. */
#define CUDA_EMU_SITE const char *file_ = __builtin_FILE(), int line_ = __builtin_LINE()
void __syncthreads(CUDA_EMU_SITE);
int __syncthreads_count(int pred, CUDA_EMU_SITE);
int __syncthreads_and(int pred, CUDA_EMU_SITE);
int __syncthreads_or(int pred, CUDA_EMU_SITE);
void __syncwarp(unsigned mask = 0xffffffffu, CUDA_EMU_SITE);
unsigned __activemask(void);
void __trap(CUDA_EMU_SITE);
static inline void __threadfence(void) { __asm__ __volatile__("" ::: "memory"); }
static inline void __threadfence_block(void) { __asm__ __volatile__("" ::: "memory"); }
static inline void __threadfence_system(void) { __asm__ __volatile__("" ::: "memory"); }
static inline void __nanosleep(unsigned) {}
long long clock64(void);

/* Linear thread index in the block and lane in the warp (warps are 32 consecutive linear indices). */
static inline unsigned cuda_emu_linear_tid(void) { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
static inline int cuda_emu_lane(void) { return (int)(cuda_emu_linear_tid() & 31); }
/* Report a violation from kernel code (or a collective's fn) and stop the launch; never returns there. */
void cuda_emu_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Generic warp collective: every lane of `mask` posts `lane_data` and waits; the last one to arrive
 * calls fn(data, present) where data[l] is lane l's pointer for the lanes that took part (`present`,
 * which excludes lanes of the mask that exited) and NULL otherwise; then all lanes resume. */
typedef void (*cuda_emu_warp_fn)(void *const *data, unsigned present);
void cuda_emu_warp_collective(const char *op, unsigned mask, void *lane_data, cuda_emu_warp_fn fn,
                              const char *file, int line);
/* Called from a collective's fn when a lane reads a value from a lane that did not take part. */
void cuda_emu_warn_inactive_lane(const char *op, int reader, int source);

enum { CUDA_EMU_SHFL_IDX, CUDA_EMU_SHFL_UP, CUDA_EMU_SHFL_DOWN, CUDA_EMU_SHFL_XOR };
uint64_t cuda_emu_shfl(int mode, unsigned mask, uint64_t bits, int b, int width, const char *file, int line);

template <typename T> static inline uint64_t cuda_emu_to_bits(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type wider than 8 bytes");
    uint64_t u = 0;
    memcpy(&u, &v, sizeof(T));
    return u;
}
template <typename T> static inline T cuda_emu_from_bits(uint64_t u) {
    T v;
    memcpy(&v, &u, sizeof(T));
    return v;
}
template <typename T> static inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize, CUDA_EMU_SITE) {
    return cuda_emu_from_bits<T>(cuda_emu_shfl(CUDA_EMU_SHFL_IDX, mask, cuda_emu_to_bits(var), src_lane, width, file_, line_));
}
template <typename T> static inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize, CUDA_EMU_SITE) {
    return cuda_emu_from_bits<T>(cuda_emu_shfl(CUDA_EMU_SHFL_UP, mask, cuda_emu_to_bits(var), (int)delta, width, file_, line_));
}
template <typename T> static inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize, CUDA_EMU_SITE) {
    return cuda_emu_from_bits<T>(cuda_emu_shfl(CUDA_EMU_SHFL_DOWN, mask, cuda_emu_to_bits(var), (int)delta, width, file_, line_));
}
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize, CUDA_EMU_SITE) {
    return cuda_emu_from_bits<T>(cuda_emu_shfl(CUDA_EMU_SHFL_XOR, mask, cuda_emu_to_bits(var), lane_mask, width, file_, line_));
}

enum { CUDA_EMU_VOTE_BALLOT, CUDA_EMU_VOTE_ANY, CUDA_EMU_VOTE_ALL };
unsigned cuda_emu_vote(int mode, unsigned mask, int pred, const char *file, int line);
static inline unsigned __ballot_sync(unsigned mask, int pred, CUDA_EMU_SITE) { return cuda_emu_vote(CUDA_EMU_VOTE_BALLOT, mask, pred, file_, line_); }
static inline int __any_sync(unsigned mask, int pred, CUDA_EMU_SITE) { return (int)cuda_emu_vote(CUDA_EMU_VOTE_ANY, mask, pred, file_, line_); }
static inline int __all_sync(unsigned mask, int pred, CUDA_EMU_SITE) { return (int)cuda_emu_vote(CUDA_EMU_VOTE_ALL, mask, pred, file_, line_); }

unsigned cuda_emu_match(int all, unsigned mask, uint64_t value, int *pred, const char *file, int line);
template <typename T> static inline unsigned __match_any_sync(unsigned mask, T value, CUDA_EMU_SITE) {
    return cuda_emu_match(0, mask, cuda_emu_to_bits(value), NULL, file_, line_);
}
template <typename T> static inline unsigned __match_all_sync(unsigned mask, T value, int *pred, CUDA_EMU_SITE) {
    return cuda_emu_match(1, mask, cuda_emu_to_bits(value), pred, file_, line_);
}

enum { CUDA_EMU_RED_ADD, CUDA_EMU_RED_MIN, CUDA_EMU_RED_MAX, CUDA_EMU_RED_AND, CUDA_EMU_RED_OR, CUDA_EMU_RED_XOR };
unsigned cuda_emu_reduce(int op, int is_signed, unsigned mask, unsigned value, const char *file, int line);
static inline unsigned __reduce_add_sync(unsigned mask, unsigned v, CUDA_EMU_SITE) { return cuda_emu_reduce(CUDA_EMU_RED_ADD, 0, mask, v, file_, line_); }
static inline int __reduce_add_sync(unsigned mask, int v, CUDA_EMU_SITE) { return (int)cuda_emu_reduce(CUDA_EMU_RED_ADD, 1, mask, (unsigned)v, file_, line_); }
static inline unsigned __reduce_min_sync(unsigned mask, unsigned v, CUDA_EMU_SITE) { return cuda_emu_reduce(CUDA_EMU_RED_MIN, 0, mask, v, file_, line_); }
static inline int __reduce_min_sync(unsigned mask, int v, CUDA_EMU_SITE) { return (int)cuda_emu_reduce(CUDA_EMU_RED_MIN, 1, mask, (unsigned)v, file_, line_); }
static inline unsigned __reduce_max_sync(unsigned mask, unsigned v, CUDA_EMU_SITE) { return cuda_emu_reduce(CUDA_EMU_RED_MAX, 0, mask, v, file_, line_); }
static inline int __reduce_max_sync(unsigned mask, int v, CUDA_EMU_SITE) { return (int)cuda_emu_reduce(CUDA_EMU_RED_MAX, 1, mask, (unsigned)v, file_, line_); }
static inline unsigned __reduce_and_sync(unsigned mask, unsigned v, CUDA_EMU_SITE) { return cuda_emu_reduce(CUDA_EMU_RED_AND, 0, mask, v, file_, line_); }
static inline unsigned __reduce_or_sync(unsigned mask, unsigned v, CUDA_EMU_SITE) { return cuda_emu_reduce(CUDA_EMU_RED_OR, 0, mask, v, file_, line_); }
static inline unsigned __reduce_xor_sync(unsigned mask, unsigned v, CUDA_EMU_SITE) { return cuda_emu_reduce(CUDA_EMU_RED_XOR, 0, mask, v, file_, line_); }

/* ---- atomics: plain read-modify-write, since a fiber is never interrupted between two blocking calls */
#define CUDA_EMU_ATOMIC(name, T, expr)                                                                 \
    static inline T name(T *p, T v) { T old = *p; *p = (expr); return old; }                        \
    static inline T name##_block(T *p, T v) { return name(p, v); }                                  \
    static inline T name##_system(T *p, T v) { return name(p, v); }
CUDA_EMU_ATOMIC(atomicAdd, int, old + v) CUDA_EMU_ATOMIC(atomicAdd, unsigned int, old + v)
CUDA_EMU_ATOMIC(atomicAdd, unsigned long long, old + v) CUDA_EMU_ATOMIC(atomicAdd, float, old + v)
CUDA_EMU_ATOMIC(atomicAdd, double, old + v)
CUDA_EMU_ATOMIC(atomicSub, int, old - v) CUDA_EMU_ATOMIC(atomicSub, unsigned int, old - v)
CUDA_EMU_ATOMIC(atomicExch, int, v) CUDA_EMU_ATOMIC(atomicExch, unsigned int, v)
CUDA_EMU_ATOMIC(atomicExch, unsigned long long, v) CUDA_EMU_ATOMIC(atomicExch, float, v)
CUDA_EMU_ATOMIC(atomicMin, int, v < old ? v : old) CUDA_EMU_ATOMIC(atomicMin, unsigned int, v < old ? v : old)
CUDA_EMU_ATOMIC(atomicMin, long long, v < old ? v : old) CUDA_EMU_ATOMIC(atomicMin, unsigned long long, v < old ? v : old)
CUDA_EMU_ATOMIC(atomicMax, int, v > old ? v : old) CUDA_EMU_ATOMIC(atomicMax, unsigned int, v > old ? v : old)
CUDA_EMU_ATOMIC(atomicMax, long long, v > old ? v : old) CUDA_EMU_ATOMIC(atomicMax, unsigned long long, v > old ? v : old)
CUDA_EMU_ATOMIC(atomicAnd, int, old & v) CUDA_EMU_ATOMIC(atomicAnd, unsigned int, old & v)
CUDA_EMU_ATOMIC(atomicAnd, unsigned long long, old & v)
CUDA_EMU_ATOMIC(atomicOr, int, old | v) CUDA_EMU_ATOMIC(atomicOr, unsigned int, old | v)
CUDA_EMU_ATOMIC(atomicOr, unsigned long long, old | v)
CUDA_EMU_ATOMIC(atomicXor, int, old ^ v) CUDA_EMU_ATOMIC(atomicXor, unsigned int, old ^ v)
CUDA_EMU_ATOMIC(atomicXor, unsigned long long, old ^ v)
CUDA_EMU_ATOMIC(atomicInc, unsigned int, old >= v ? 0u : old + 1u)
CUDA_EMU_ATOMIC(atomicDec, unsigned int, (old == 0u || old > v) ? v : old - 1u)
#undef CUDA_EMU_ATOMIC
#define CUDA_EMU_CAS(T)                                                                                \
    static inline T atomicCAS(T *p, T cmp, T v) { T old = *p; if (old == cmp) *p = v; return old; } \
    static inline T atomicCAS_block(T *p, T cmp, T v) { return atomicCAS(p, cmp, v); }              \
    static inline T atomicCAS_system(T *p, T cmp, T v) { return atomicCAS(p, cmp, v); }
CUDA_EMU_CAS(int) CUDA_EMU_CAS(unsigned int) CUDA_EMU_CAS(unsigned long long) CUDA_EMU_CAS(unsigned short)
#undef CUDA_EMU_CAS

/* ---- cache-hinted loads and stores ---------------------------------------------------------------- */
template <typename T> static inline T __ldg(const T *p) { return *p; }
template <typename T> static inline T __ldcg(const T *p) { return *p; }
template <typename T> static inline T __ldca(const T *p) { return *p; }
template <typename T> static inline T __ldcs(const T *p) { return *p; }
template <typename T> static inline T __ldlu(const T *p) { return *p; }
template <typename T> static inline T __ldcv(const T *p) { return *p; }
template <typename T> static inline void __stcg(T *p, T v) { *p = v; }
template <typename T> static inline void __stcs(T *p, T v) { *p = v; }
template <typename T> static inline void __stwb(T *p, T v) { *p = v; }
template <typename T> static inline void __stwt(T *p, T v) { *p = v; }

/* ---- math intrinsics -------------------------------------------------------------------------------
 * The fast variants (__expf ...) are exact here; on the GPU they are approximate: compare with tolerances. */
#define CUDA_EMU_MINMAX(T)                                                                             \
    static inline T min(T a, T b) { return a < b ? a : b; }                                           \
    static inline T max(T a, T b) { return a > b ? a : b; }
CUDA_EMU_MINMAX(int) CUDA_EMU_MINMAX(unsigned int) CUDA_EMU_MINMAX(long) CUDA_EMU_MINMAX(unsigned long)
CUDA_EMU_MINMAX(long long) CUDA_EMU_MINMAX(unsigned long long)
#undef CUDA_EMU_MINMAX
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline unsigned int min(int a, unsigned int b) { return min((unsigned int)a, b); }
static inline unsigned int min(unsigned int a, int b) { return min(a, (unsigned int)b); }
static inline unsigned int max(int a, unsigned int b) { return max((unsigned int)a, b); }
static inline unsigned int max(unsigned int a, int b) { return max(a, (unsigned int)b); }
static inline unsigned int umin(unsigned int a, unsigned int b) { return min(a, b); }
static inline unsigned int umax(unsigned int a, unsigned int b) { return max(a, b); }

static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
/* glibc's math.h declares __expf, __sinf ... for its own use but does not export them, so the CUDA
 * intrinsics of those names are macros here. */
static inline void cuda_emu_sincosf(float x, float *s, float *c) { *s = sinf(x); *c = cosf(x); }
#define __expf(x) expf(x)
#define __exp10f(x) powf(10.0f, (x))
#define __logf(x) logf(x)
#define __log2f(x) log2f(x)
#define __log10f(x) log10f(x)
#define __powf(x, y) powf((x), (y))
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanf(x) tanf(x)
#define __tanhf(x) tanhf(x)
#define __sincosf(x, s, c) cuda_emu_sincosf((x), (s), (c))
static inline float __fdividef(float a, float b) { return a / b; }
static inline float fdividef(float a, float b) { return a / b; }
static inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __frsqrt_rn(float a) { return 1.0f / sqrtf(a); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
static inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
static inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
static inline int __float2int_rz(float x) { return (int)x; }
static inline int __float2int_rd(float x) { return (int)floorf(x); }
static inline int __float2int_ru(float x) { return (int)ceilf(x); }
static inline unsigned int __float2uint_rn(float x) { return (unsigned int)nearbyintf(x); }
static inline unsigned int __float2uint_rz(float x) { return (unsigned int)x; }
static inline float __int2float_rn(int x) { return (float)x; }
static inline float __uint2float_rn(unsigned int x) { return (float)x; }
static inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
static inline unsigned int __float_as_uint(float x) { unsigned int i; memcpy(&i, &x, 4); return i; }
static inline float __int_as_float(int i) { float x; memcpy(&x, &i, 4); return x; }
static inline float __uint_as_float(unsigned int i) { float x; memcpy(&x, &i, 4); return x; }
static inline long long __double_as_longlong(double x) { long long i; memcpy(&i, &x, 8); return i; }
static inline double __longlong_as_double(long long i) { double x; memcpy(&x, &i, 8); return x; }

static inline int __popc(unsigned int x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned int __brev(unsigned int x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    return __builtin_bswap32(x);
}
static inline unsigned long long __brevll(unsigned long long x) {
    return ((unsigned long long)__brev((unsigned)x) << 32) | __brev((unsigned)(x >> 32));
}
static inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int s) {
    uint64_t v = ((uint64_t)y << 32) | x;
    unsigned int r = 0;
    for (int i = 0; i < 4; i++) r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}
static inline unsigned int __funnelshift_l(unsigned int lo, unsigned int hi, unsigned int s) {
    return (unsigned)((((uint64_t)hi << 32 | lo) << (s & 31)) >> 32);
}
static inline unsigned int __funnelshift_r(unsigned int lo, unsigned int hi, unsigned int s) {
    return (unsigned)(((uint64_t)hi << 32 | lo) >> (s & 31));
}
static inline unsigned int __funnelshift_lc(unsigned int lo, unsigned int hi, unsigned int s) {
    return s >= 32 ? lo : __funnelshift_l(lo, hi, s);
}
static inline unsigned int __funnelshift_rc(unsigned int lo, unsigned int hi, unsigned int s) {
    return s >= 32 ? hi : __funnelshift_r(lo, hi, s);
}
static inline int __mul24(int a, int b) {
    return (int)(uint32_t)((int64_t)((int32_t)((uint32_t)a << 8) >> 8) * ((int32_t)((uint32_t)b << 8) >> 8));
}
static inline unsigned int __umul24(unsigned int a, unsigned int b) { return (a & 0xffffffu) * (b & 0xffffffu); }
static inline int __mulhi(int a, int b) { return (int)(((int64_t)a * b) >> 32); }
static inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned)(((uint64_t)a * b) >> 32); }
static inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
static inline int __hadd(int a, int b) { return (int)(((int64_t)a + b) >> 1); }
static inline int __rhadd(int a, int b) { return (int)(((int64_t)a + b + 1) >> 1); }
static inline unsigned int __uhadd(unsigned int a, unsigned int b) { return (unsigned)(((uint64_t)a + b) >> 1); }
static inline unsigned int __urhadd(unsigned int a, unsigned int b) { return (unsigned)(((uint64_t)a + b + 1) >> 1); }
static inline unsigned int __sad(int a, int b, unsigned int c) { return c + (unsigned)(a > b ? a - b : b - a); }
static inline unsigned int __usad(unsigned int a, unsigned int b, unsigned int c) { return c + (a > b ? a - b : b - a); }

#endif
