/* emu_fp16.h — __half / __nv_bfloat16 (and their pairs) for the CUDA emulator: bit-exact conversions in
 * every rounding mode and correctly rounded arithmetic, matching the IEEE behaviour of the GPU units.
 *
 * Why double: a sum, product, quotient or square root of two f16/bf16 values computed in double and
 * rounded once to 16 bits is the correctly rounded result (products are exact; for the others double
 * has more than 2p+2 bits, so double rounding is innocuous). An fma carries the sign of its rounding
 * error into the final rounding so ties are broken correctly. NaN results are the canonical 0x7fff. */
#ifndef CUDA_EMU_FP16_H
#define CUDA_EMU_FP16_H

#include "emu_device.h"

enum { CUDA_EMU_RN, CUDA_EMU_RZ, CUDA_EMU_RD, CUDA_EMU_RU };

/* Round x to a binary format with `mbits` stored mantissa bits and `ebits` exponent bits (f16: 10, 5;
 * bf16: 7, 8). `lost` is the sign of (exact value - x) when x is itself rounded (only used for RN ties). */
static inline uint16_t cuda_emu_round16(double x, int mbits, int ebits, int mode, int lost) {
    uint64_t u;
    memcpy(&u, &x, 8);
    const int neg = (int)(u >> 63), bias = (1 << (ebits - 1)) - 1, emin = 1 - bias;
    const uint16_t sign = (uint16_t)(neg << 15), inf = (uint16_t)(((1u << ebits) - 1) << mbits);
    const uint64_t ax = u & 0x7fffffffffffffffull;
    if (ax > 0x7ff0000000000000ull) return 0x7fff;
    if (ax == 0x7ff0000000000000ull) return sign | inf;
    int e = (int)(ax >> 52) - 1023;
    uint64_t m = ax & ((1ull << 52) - 1);
    if (e == -1023) e = -1022; else m |= 1ull << 52;  /* value = m * 2^(e-52) */
    const int q = (e < emin ? emin : e) - mbits;      /* exponent of the target's last mantissa bit */
    const int sh = q - (e - 52);                       /* >= 52 - mbits */
    uint64_t n, r, halfway;
    if (sh >= 64) { n = 0; r = m ? 1 : 0; halfway = 2; } /* far below the smallest subnormal */
    else { n = m >> sh; r = m & ((1ull << sh) - 1); halfway = 1ull << (sh - 1); }
    int up = 0;
    if (mode == CUDA_EMU_RN) {
        const int lost_mag = neg ? -lost : lost;
        up = r > halfway || (r == halfway && (lost_mag > 0 || (lost_mag == 0 && (n & 1))));
    } else if (mode == CUDA_EMU_RU) up = !neg && r;
    else if (mode == CUDA_EMU_RD) up = neg && r;
    n += (uint64_t)up;
    const int64_t bits = ((int64_t)(q + mbits + bias - 1) << mbits) + (int64_t)n;
    if (bits >= inf) { /* overflow: infinity, or the largest finite value when rounding toward zero */
        const int to_max = mode == CUDA_EMU_RZ || (mode == CUDA_EMU_RU && neg) || (mode == CUDA_EMU_RD && !neg);
        return (uint16_t)(sign | (to_max ? inf - 1 : inf));
    }
    return (uint16_t)(sign | (uint16_t)bits);
}
static inline uint16_t cuda_emu_f2h_bits(double x, int mode = CUDA_EMU_RN) { return cuda_emu_round16(x, 10, 5, mode, 0); }
static inline uint16_t cuda_emu_f2bf_bits(double x, int mode = CUDA_EMU_RN) { return cuda_emu_round16(x, 7, 8, mode, 0); }
static inline float cuda_emu_h2f_bits(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    uint32_t b;
    if (e == 0x1f) b = sign | 0x7f800000u | (m << 13);
    else if (e == 0) { float v = (float)m * (1.0f / 16777216.0f); return sign ? -v : v; }
    else b = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &b, 4);
    return f;
}
static inline float cuda_emu_bf2f_bits(uint16_t h) {
    const uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

struct __half_raw { unsigned short x; };
struct __nv_bfloat16_raw { unsigned short x; };

/* The two 16-bit types share everything but their rounding; T_ is the type, F2B/B2F its conversions. */
#define CUDA_EMU_H16_TYPE(T_, RAW, F2B, B2F)                                                           \
    struct T_ {                                                                                       \
        unsigned short __x;                                                                           \
        T_() = default;                                                                               \
        constexpr T_(const RAW &r) : __x(r.x) {}                                                      \
        T_(float f) : __x(F2B(f)) {}                                                                  \
        T_(double d) : __x(F2B(d)) {}                                                                 \
        T_(int i) : __x(F2B((double)i)) {}                                                            \
        T_(unsigned int i) : __x(F2B((double)i)) {}                                                   \
        T_(long i) : __x(F2B((double)i)) {}                                                           \
        T_(unsigned long i) : __x(F2B((double)i)) {}                                                  \
        T_(long long i) : __x(F2B((double)i)) {}                                                      \
        T_(unsigned long long i) : __x(F2B((double)i)) {}                                             \
        T_(short i) : __x(F2B((double)i)) {}                                                          \
        T_(unsigned short i) : __x(F2B((double)i)) {}                                                 \
        operator float() const { return B2F(__x); }                                                   \
        operator RAW() const { RAW r; r.x = __x; return r; }                                          \
    };
CUDA_EMU_H16_TYPE(__half, __half_raw, cuda_emu_f2h_bits, cuda_emu_h2f_bits)
CUDA_EMU_H16_TYPE(__nv_bfloat16, __nv_bfloat16_raw, cuda_emu_f2bf_bits, cuda_emu_bf2f_bits)
#undef CUDA_EMU_H16_TYPE

struct __align__(4) __half2 {
    __half x, y;
    __half2() = default;
    constexpr __half2(__half a, __half b) : x(a), y(b) {}
};
struct __align__(4) __nv_bfloat162 {
    __nv_bfloat16 x, y;
    __nv_bfloat162() = default;
    constexpr __nv_bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) : x(a), y(b) {}
};
typedef __half half;
typedef __half2 half2;
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;

static inline __half cuda_emu_mk_h(uint16_t b) { __half_raw r; r.x = b; return __half(r); }
static inline __nv_bfloat16 cuda_emu_mk_bf(uint16_t b) { __nv_bfloat16_raw r; r.x = b; return __nv_bfloat16(r); }

/* ---- conversions ---------------------------------------------------------------------------------- */
static inline __half __float2half(float f) { return cuda_emu_mk_h(cuda_emu_f2h_bits(f)); }
static inline __half __float2half_rn(float f) { return cuda_emu_mk_h(cuda_emu_f2h_bits(f)); }
static inline __half __float2half_rz(float f) { return cuda_emu_mk_h(cuda_emu_f2h_bits(f, CUDA_EMU_RZ)); }
static inline __half __float2half_rd(float f) { return cuda_emu_mk_h(cuda_emu_f2h_bits(f, CUDA_EMU_RD)); }
static inline __half __float2half_ru(float f) { return cuda_emu_mk_h(cuda_emu_f2h_bits(f, CUDA_EMU_RU)); }
static inline __half __double2half(double d) { return cuda_emu_mk_h(cuda_emu_f2h_bits(d)); }
static inline float __half2float(__half h) { return cuda_emu_h2f_bits(h.__x); }
static inline __nv_bfloat16 __float2bfloat16(float f) { return cuda_emu_mk_bf(cuda_emu_f2bf_bits(f)); }
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return cuda_emu_mk_bf(cuda_emu_f2bf_bits(f)); }
static inline __nv_bfloat16 __float2bfloat16_rz(float f) { return cuda_emu_mk_bf(cuda_emu_f2bf_bits(f, CUDA_EMU_RZ)); }
static inline __nv_bfloat16 __float2bfloat16_rd(float f) { return cuda_emu_mk_bf(cuda_emu_f2bf_bits(f, CUDA_EMU_RD)); }
static inline __nv_bfloat16 __float2bfloat16_ru(float f) { return cuda_emu_mk_bf(cuda_emu_f2bf_bits(f, CUDA_EMU_RU)); }
static inline __nv_bfloat16 __double2bfloat16(double d) { return cuda_emu_mk_bf(cuda_emu_f2bf_bits(d)); }
static inline float __bfloat162float(__nv_bfloat16 h) { return cuda_emu_bf2f_bits(h.__x); }

static inline short __half_as_short(__half h) { return (short)h.__x; }
static inline unsigned short __half_as_ushort(__half h) { return h.__x; }
static inline __half __short_as_half(short s) { return cuda_emu_mk_h((uint16_t)s); }
static inline __half __ushort_as_half(unsigned short s) { return cuda_emu_mk_h(s); }
static inline short __bfloat16_as_short(__nv_bfloat16 h) { return (short)h.__x; }
static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
static inline __nv_bfloat16 __short_as_bfloat16(short s) { return cuda_emu_mk_bf((uint16_t)s); }
static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short s) { return cuda_emu_mk_bf(s); }

/* float -> integer as cvt.rXi.s32: saturating, NaN -> 0 */
static inline long long cuda_emu_f2ll(double v, int mode, double lo, double hi) {
    if (v != v) return 0;
    v = mode == CUDA_EMU_RN ? nearbyint(v) : mode == CUDA_EMU_RZ ? trunc(v) : mode == CUDA_EMU_RD ? floor(v) : ceil(v);
    return (long long)(v < lo ? lo : v > hi ? hi : v);
}
#define CUDA_EMU_H16_INT(P, T_, B2F, F2B)                                                              \
    static inline int P##2int_rn(T_ h) { return (int)cuda_emu_f2ll(B2F(h.__x), CUDA_EMU_RN, -2147483648.0, 2147483647.0); } \
    static inline int P##2int_rz(T_ h) { return (int)cuda_emu_f2ll(B2F(h.__x), CUDA_EMU_RZ, -2147483648.0, 2147483647.0); } \
    static inline int P##2int_rd(T_ h) { return (int)cuda_emu_f2ll(B2F(h.__x), CUDA_EMU_RD, -2147483648.0, 2147483647.0); } \
    static inline int P##2int_ru(T_ h) { return (int)cuda_emu_f2ll(B2F(h.__x), CUDA_EMU_RU, -2147483648.0, 2147483647.0); } \
    static inline unsigned int P##2uint_rn(T_ h) { return (unsigned)cuda_emu_f2ll(B2F(h.__x), CUDA_EMU_RN, 0.0, 4294967295.0); } \
    static inline unsigned int P##2uint_rz(T_ h) { return (unsigned)cuda_emu_f2ll(B2F(h.__x), CUDA_EMU_RZ, 0.0, 4294967295.0); } \
    static inline short P##2short_rn(T_ h) { return (short)cuda_emu_f2ll(B2F(h.__x), CUDA_EMU_RN, -32768.0, 32767.0); } \
    static inline short P##2short_rz(T_ h) { return (short)cuda_emu_f2ll(B2F(h.__x), CUDA_EMU_RZ, -32768.0, 32767.0); } \
    static inline unsigned short P##2ushort_rz(T_ h) { return (unsigned short)cuda_emu_f2ll(B2F(h.__x), CUDA_EMU_RZ, 0.0, 65535.0); } \
    static inline long long P##2ll_rz(T_ h) { return cuda_emu_f2ll(B2F(h.__x), CUDA_EMU_RZ, -9.2233720368547758e18, 9.2233720368547748e18); }
CUDA_EMU_H16_INT(__half, __half, cuda_emu_h2f_bits, cuda_emu_f2h_bits)
CUDA_EMU_H16_INT(__bfloat16, __nv_bfloat16, cuda_emu_bf2f_bits, cuda_emu_f2bf_bits)
#undef CUDA_EMU_H16_INT
#define CUDA_EMU_INT2H(name, IT, T_, F2B, MK)                                                          \
    static inline T_ name##_rn(IT i) { return MK(F2B((double)i, CUDA_EMU_RN)); }                    \
    static inline T_ name##_rz(IT i) { return MK(F2B((double)i, CUDA_EMU_RZ)); }                    \
    static inline T_ name##_rd(IT i) { return MK(F2B((double)i, CUDA_EMU_RD)); }                    \
    static inline T_ name##_ru(IT i) { return MK(F2B((double)i, CUDA_EMU_RU)); }
CUDA_EMU_INT2H(__int2half, int, __half, cuda_emu_f2h_bits, cuda_emu_mk_h)
CUDA_EMU_INT2H(__uint2half, unsigned int, __half, cuda_emu_f2h_bits, cuda_emu_mk_h)
CUDA_EMU_INT2H(__short2half, short, __half, cuda_emu_f2h_bits, cuda_emu_mk_h)
CUDA_EMU_INT2H(__ushort2half, unsigned short, __half, cuda_emu_f2h_bits, cuda_emu_mk_h)
CUDA_EMU_INT2H(__ll2half, long long, __half, cuda_emu_f2h_bits, cuda_emu_mk_h)
CUDA_EMU_INT2H(__int2bfloat16, int, __nv_bfloat16, cuda_emu_f2bf_bits, cuda_emu_mk_bf)
CUDA_EMU_INT2H(__uint2bfloat16, unsigned int, __nv_bfloat16, cuda_emu_f2bf_bits, cuda_emu_mk_bf)
CUDA_EMU_INT2H(__short2bfloat16, short, __nv_bfloat16, cuda_emu_f2bf_bits, cuda_emu_mk_bf)
#undef CUDA_EMU_INT2H

/* pairs */
static inline __half2 make_half2(__half a, __half b) { return __half2(a, b); }
static inline __half2 __halves2half2(__half a, __half b) { return __half2(a, b); }
static inline __half2 __half2half2(__half a) { return __half2(a, a); }
static inline __half2 __float2half2_rn(float f) { return __half2(__float2half(f), __float2half(f)); }
static inline __half2 __floats2half2_rn(float a, float b) { return __half2(__float2half(a), __float2half(b)); }
static inline __half2 __float22half2_rn(float2 v) { return __floats2half2_rn(v.x, v.y); }
static inline float2 __half22float2(__half2 h) { return make_float2(__half2float(h.x), __half2float(h.y)); }
static inline __nv_bfloat162 make_bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) { return __nv_bfloat162(a, b); }
static inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) { return __nv_bfloat162(a, b); }
static inline __nv_bfloat162 __bfloat162bfloat162(__nv_bfloat16 a) { return __nv_bfloat162(a, a); }
static inline __nv_bfloat162 __float2bfloat162_rn(float f) { return __nv_bfloat162(__float2bfloat16(f), __float2bfloat16(f)); }
static inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return __nv_bfloat162(__float2bfloat16(a), __float2bfloat16(b)); }
static inline __nv_bfloat162 __float22bfloat162_rn(float2 v) { return __floats2bfloat162_rn(v.x, v.y); }
static inline float2 __bfloat1622float2(__nv_bfloat162 h) { return make_float2(__bfloat162float(h.x), __bfloat162float(h.y)); }
#define CUDA_EMU_PAIR_FUNCS(T_, T2, LOW, HIGH, LOWS, HIGHS)                                            \
    static inline T_ LOW(T2 a) { return a.x; }                                                        \
    static inline T_ HIGH(T2 a) { return a.y; }                                                       \
    static inline T2 LOWS(T2 a, T2 b) { return T2(a.x, b.x); }                                        \
    static inline T2 HIGHS(T2 a, T2 b) { return T2(a.y, b.y); }                                       \
    static inline float __low2float(T2 a) { return (float)a.x; }                                      \
    static inline float __high2float(T2 a) { return (float)a.y; }                                     \
    static inline T2 __lowhigh2highlow(T2 a) { return T2(a.y, a.x); }
CUDA_EMU_PAIR_FUNCS(__half, __half2, __low2half, __high2half, __lows2half2, __highs2half2)
CUDA_EMU_PAIR_FUNCS(__nv_bfloat16, __nv_bfloat162, __low2bfloat16, __high2bfloat16, __lows2bfloat162, __highs2bfloat162)
#undef CUDA_EMU_PAIR_FUNCS
static inline __half2 __low2half2(__half2 a) { return __half2(a.x, a.x); }
static inline __half2 __high2half2(__half2 a) { return __half2(a.y, a.y); }

/* ---- arithmetic, shared names for both 16-bit types ------------------------------------------------ */
static inline int cuda_emu_fma_lost(double p, double c, double s) { /* sign of (p + c) - s, TwoSum */
    const double bb = s - p, err = (p - (s - bb)) + (c - bb);
    return err > 0 ? 1 : err < 0 ? -1 : 0;
}
#define CUDA_EMU_H16_ARITH(T_, T2, MB, EB, MK)                                                         \
    static inline T_ cuda_emu_rnd(T_ *, double v, int lost = 0) { return MK(cuda_emu_round16(v, MB, EB, CUDA_EMU_RN, lost)); } \
    static inline double cuda_emu_d(T_ a) { return (double)(float)a; }                                \
    static inline bool __hisnan(T_ a) { return cuda_emu_d(a) != cuda_emu_d(a); }                      \
    static inline int __hisinf(T_ a) { double v = cuda_emu_d(a); return v == INFINITY ? 1 : v == -INFINITY ? -1 : 0; } \
    static inline T_ __hadd(T_ a, T_ b) { return cuda_emu_rnd((T_ *)0, cuda_emu_d(a) + cuda_emu_d(b)); } \
    static inline T_ __hsub(T_ a, T_ b) { return cuda_emu_rnd((T_ *)0, cuda_emu_d(a) - cuda_emu_d(b)); } \
    static inline T_ __hmul(T_ a, T_ b) { return cuda_emu_rnd((T_ *)0, cuda_emu_d(a) * cuda_emu_d(b)); } \
    static inline T_ __hdiv(T_ a, T_ b) { return cuda_emu_rnd((T_ *)0, cuda_emu_d(a) / cuda_emu_d(b)); } \
    static inline T_ __hadd_rn(T_ a, T_ b) { return __hadd(a, b); }                                  \
    static inline T_ __hsub_rn(T_ a, T_ b) { return __hsub(a, b); }                                  \
    static inline T_ __hmul_rn(T_ a, T_ b) { return __hmul(a, b); }                                  \
    static inline T_ __hfma(T_ a, T_ b, T_ c) {                                                       \
        const double p = cuda_emu_d(a) * cuda_emu_d(b), s = p + cuda_emu_d(c);                       \
        return cuda_emu_rnd((T_ *)0, s, (s == s && fabs(s) != INFINITY) ? cuda_emu_fma_lost(p, cuda_emu_d(c), s) : 0); \
    }                                                                                                 \
    static inline T_ cuda_emu_sat(T_ a) { double v = cuda_emu_d(a); return v > 0 ? (v < 1 ? a : T_(1.0f)) : T_(0.0f); } \
    static inline T_ __hadd_sat(T_ a, T_ b) { return cuda_emu_sat(__hadd(a, b)); }                  \
    static inline T_ __hsub_sat(T_ a, T_ b) { return cuda_emu_sat(__hsub(a, b)); }                  \
    static inline T_ __hmul_sat(T_ a, T_ b) { return cuda_emu_sat(__hmul(a, b)); }                  \
    static inline T_ __hfma_sat(T_ a, T_ b, T_ c) { return cuda_emu_sat(__hfma(a, b, c)); }         \
    static inline T_ __hfma_relu(T_ a, T_ b, T_ c) { T_ r = __hfma(a, b, c); return cuda_emu_d(r) < 0 ? T_(0.0f) : r; } \
    static inline T_ __hneg(T_ a) { T_ r = a; r.__x ^= 0x8000; return r; }                          \
    static inline T_ __habs(T_ a) { T_ r = a; r.__x &= 0x7fff; return r; }                          \
    static inline T_ cuda_emu_minmax(T_ a, T_ b, int want_max, int nan_wins) {                       \
        if (__hisnan(a) || __hisnan(b)) {                                                             \
            if (nan_wins || (__hisnan(a) && __hisnan(b))) return MK(0x7fff);                          \
            return __hisnan(a) ? b : a;                                                               \
        }                                                                                             \
        double x = cuda_emu_d(a), y = cuda_emu_d(b);                                                  \
        if (x == y) return ((a.__x >> 15) ^ want_max) ? a : b; /* -0 < +0 */                         \
        return ((x > y) == (want_max != 0)) ? a : b;                                                  \
    }                                                                                                 \
    static inline T_ __hmax(T_ a, T_ b) { return cuda_emu_minmax(a, b, 1, 0); }                      \
    static inline T_ __hmin(T_ a, T_ b) { return cuda_emu_minmax(a, b, 0, 0); }                      \
    static inline T_ __hmax_nan(T_ a, T_ b) { return cuda_emu_minmax(a, b, 1, 1); }                  \
    static inline T_ __hmin_nan(T_ a, T_ b) { return cuda_emu_minmax(a, b, 0, 1); }                  \
    static inline bool __heq(T_ a, T_ b) { return cuda_emu_d(a) == cuda_emu_d(b); }                  \
    static inline bool __hne(T_ a, T_ b) { return cuda_emu_d(a) < cuda_emu_d(b) || cuda_emu_d(a) > cuda_emu_d(b); } \
    static inline bool __hlt(T_ a, T_ b) { return cuda_emu_d(a) < cuda_emu_d(b); }                   \
    static inline bool __hle(T_ a, T_ b) { return cuda_emu_d(a) <= cuda_emu_d(b); }                  \
    static inline bool __hgt(T_ a, T_ b) { return cuda_emu_d(a) > cuda_emu_d(b); }                   \
    static inline bool __hge(T_ a, T_ b) { return cuda_emu_d(a) >= cuda_emu_d(b); }                  \
    static inline bool __hequ(T_ a, T_ b) { return !__hne(a, b); }                                   \
    static inline bool __hneu(T_ a, T_ b) { return !__heq(a, b); }                                   \
    static inline bool __hltu(T_ a, T_ b) { return !__hge(a, b); }                                   \
    static inline bool __hleu(T_ a, T_ b) { return !__hgt(a, b); }                                   \
    static inline bool __hgtu(T_ a, T_ b) { return !__hle(a, b); }                                   \
    static inline bool __hgeu(T_ a, T_ b) { return !__hlt(a, b); }                                   \
    static inline T_ operator+(T_ a, T_ b) { return __hadd(a, b); }                                  \
    static inline T_ operator-(T_ a, T_ b) { return __hsub(a, b); }                                  \
    static inline T_ operator*(T_ a, T_ b) { return __hmul(a, b); }                                  \
    static inline T_ operator/(T_ a, T_ b) { return __hdiv(a, b); }                                  \
    static inline T_ &operator+=(T_ &a, T_ b) { return a = __hadd(a, b); }                           \
    static inline T_ &operator-=(T_ &a, T_ b) { return a = __hsub(a, b); }                           \
    static inline T_ &operator*=(T_ &a, T_ b) { return a = __hmul(a, b); }                           \
    static inline T_ &operator/=(T_ &a, T_ b) { return a = __hdiv(a, b); }                           \
    static inline T_ &operator++(T_ &a) { return a = __hadd(a, T_(1.0f)); }                          \
    static inline T_ &operator--(T_ &a) { return a = __hsub(a, T_(1.0f)); }                          \
    static inline T_ operator++(T_ &a, int) { T_ o = a; ++a; return o; }                              \
    static inline T_ operator--(T_ &a, int) { T_ o = a; --a; return o; }                              \
    static inline T_ operator+(T_ a) { return a; }                                                    \
    static inline T_ operator-(T_ a) { return __hneg(a); }                                            \
    static inline bool operator==(T_ a, T_ b) { return __heq(a, b); }                                \
    static inline bool operator!=(T_ a, T_ b) { return __hneu(a, b); }                               \
    static inline bool operator<(T_ a, T_ b) { return __hlt(a, b); }                                 \
    static inline bool operator<=(T_ a, T_ b) { return __hle(a, b); }                                \
    static inline bool operator>(T_ a, T_ b) { return __hgt(a, b); }                                 \
    static inline bool operator>=(T_ a, T_ b) { return __hge(a, b); }                                \
    static inline T_ hsqrt(T_ a) { return cuda_emu_rnd((T_ *)0, sqrt(cuda_emu_d(a))); }              \
    static inline T_ hrsqrt(T_ a) { return cuda_emu_rnd((T_ *)0, 1.0 / sqrt(cuda_emu_d(a))); }       \
    static inline T_ hrcp(T_ a) { return cuda_emu_rnd((T_ *)0, 1.0 / cuda_emu_d(a)); }               \
    static inline T_ hexp(T_ a) { return cuda_emu_rnd((T_ *)0, exp(cuda_emu_d(a))); }                \
    static inline T_ hexp2(T_ a) { return cuda_emu_rnd((T_ *)0, exp2(cuda_emu_d(a))); }              \
    static inline T_ hexp10(T_ a) { return cuda_emu_rnd((T_ *)0, pow(10.0, cuda_emu_d(a))); }        \
    static inline T_ hlog(T_ a) { return cuda_emu_rnd((T_ *)0, log(cuda_emu_d(a))); }                \
    static inline T_ hlog2(T_ a) { return cuda_emu_rnd((T_ *)0, log2(cuda_emu_d(a))); }              \
    static inline T_ hlog10(T_ a) { return cuda_emu_rnd((T_ *)0, log10(cuda_emu_d(a))); }            \
    static inline T_ hsin(T_ a) { return cuda_emu_rnd((T_ *)0, sin(cuda_emu_d(a))); }                \
    static inline T_ hcos(T_ a) { return cuda_emu_rnd((T_ *)0, cos(cuda_emu_d(a))); }                \
    static inline T_ htanh(T_ a) { return cuda_emu_rnd((T_ *)0, tanh(cuda_emu_d(a))); }              \
    static inline T_ htrunc(T_ a) { return cuda_emu_rnd((T_ *)0, trunc(cuda_emu_d(a))); }            \
    static inline T_ hceil(T_ a) { return cuda_emu_rnd((T_ *)0, ceil(cuda_emu_d(a))); }              \
    static inline T_ hfloor(T_ a) { return cuda_emu_rnd((T_ *)0, floor(cuda_emu_d(a))); }            \
    static inline T_ hrint(T_ a) { return cuda_emu_rnd((T_ *)0, nearbyint(cuda_emu_d(a))); }         \
    /* pairs: element-wise */                                                                         \
    static inline T2 __hadd2(T2 a, T2 b) { return T2(__hadd(a.x, b.x), __hadd(a.y, b.y)); }          \
    static inline T2 __hsub2(T2 a, T2 b) { return T2(__hsub(a.x, b.x), __hsub(a.y, b.y)); }          \
    static inline T2 __hmul2(T2 a, T2 b) { return T2(__hmul(a.x, b.x), __hmul(a.y, b.y)); }          \
    static inline T2 __h2div(T2 a, T2 b) { return T2(__hdiv(a.x, b.x), __hdiv(a.y, b.y)); }          \
    static inline T2 __hfma2(T2 a, T2 b, T2 c) { return T2(__hfma(a.x, b.x, c.x), __hfma(a.y, b.y, c.y)); } \
    static inline T2 __hadd2_sat(T2 a, T2 b) { return T2(__hadd_sat(a.x, b.x), __hadd_sat(a.y, b.y)); } \
    static inline T2 __hmul2_sat(T2 a, T2 b) { return T2(__hmul_sat(a.x, b.x), __hmul_sat(a.y, b.y)); } \
    static inline T2 __hfma2_sat(T2 a, T2 b, T2 c) { return T2(__hfma_sat(a.x, b.x, c.x), __hfma_sat(a.y, b.y, c.y)); } \
    static inline T2 __hfma2_relu(T2 a, T2 b, T2 c) { return T2(__hfma_relu(a.x, b.x, c.x), __hfma_relu(a.y, b.y, c.y)); } \
    static inline T2 __hneg2(T2 a) { return T2(__hneg(a.x), __hneg(a.y)); }                          \
    static inline T2 __habs2(T2 a) { return T2(__habs(a.x), __habs(a.y)); }                          \
    static inline T2 __hmax2(T2 a, T2 b) { return T2(__hmax(a.x, b.x), __hmax(a.y, b.y)); }          \
    static inline T2 __hmin2(T2 a, T2 b) { return T2(__hmin(a.x, b.x), __hmin(a.y, b.y)); }          \
    static inline T2 __hmax2_nan(T2 a, T2 b) { return T2(__hmax_nan(a.x, b.x), __hmax_nan(a.y, b.y)); } \
    static inline T2 __hmin2_nan(T2 a, T2 b) { return T2(__hmin_nan(a.x, b.x), __hmin_nan(a.y, b.y)); } \
    static inline T2 cuda_emu_b2(T2 *, bool x, bool y) { return T2(T_(x ? 1.0f : 0.0f), T_(y ? 1.0f : 0.0f)); } \
    static inline T2 __heq2(T2 a, T2 b) { return cuda_emu_b2((T2 *)0, __heq(a.x, b.x), __heq(a.y, b.y)); }     \
    static inline T2 __hne2(T2 a, T2 b) { return cuda_emu_b2((T2 *)0, __hne(a.x, b.x), __hne(a.y, b.y)); }     \
    static inline T2 __hlt2(T2 a, T2 b) { return cuda_emu_b2((T2 *)0, __hlt(a.x, b.x), __hlt(a.y, b.y)); }     \
    static inline T2 __hle2(T2 a, T2 b) { return cuda_emu_b2((T2 *)0, __hle(a.x, b.x), __hle(a.y, b.y)); }     \
    static inline T2 __hgt2(T2 a, T2 b) { return cuda_emu_b2((T2 *)0, __hgt(a.x, b.x), __hgt(a.y, b.y)); }     \
    static inline T2 __hge2(T2 a, T2 b) { return cuda_emu_b2((T2 *)0, __hge(a.x, b.x), __hge(a.y, b.y)); }     \
    static inline T2 __hisnan2(T2 a) { return cuda_emu_b2((T2 *)0, __hisnan(a.x), __hisnan(a.y)); }           \
    static inline bool __hbeq2(T2 a, T2 b) { return __heq(a.x, b.x) && __heq(a.y, b.y); }             \
    static inline bool __hbne2(T2 a, T2 b) { return __hne(a.x, b.x) && __hne(a.y, b.y); }             \
    static inline bool __hblt2(T2 a, T2 b) { return __hlt(a.x, b.x) && __hlt(a.y, b.y); }             \
    static inline bool __hble2(T2 a, T2 b) { return __hle(a.x, b.x) && __hle(a.y, b.y); }             \
    static inline bool __hbgt2(T2 a, T2 b) { return __hgt(a.x, b.x) && __hgt(a.y, b.y); }             \
    static inline bool __hbge2(T2 a, T2 b) { return __hge(a.x, b.x) && __hge(a.y, b.y); }             \
    static inline T2 operator+(T2 a, T2 b) { return __hadd2(a, b); }                                 \
    static inline T2 operator-(T2 a, T2 b) { return __hsub2(a, b); }                                 \
    static inline T2 operator*(T2 a, T2 b) { return __hmul2(a, b); }                                 \
    static inline T2 operator/(T2 a, T2 b) { return __h2div(a, b); }                                 \
    static inline T2 &operator+=(T2 &a, T2 b) { return a = __hadd2(a, b); }                          \
    static inline T2 &operator-=(T2 &a, T2 b) { return a = __hsub2(a, b); }                          \
    static inline T2 &operator*=(T2 &a, T2 b) { return a = __hmul2(a, b); }                          \
    static inline T2 &operator/=(T2 &a, T2 b) { return a = __h2div(a, b); }                          \
    static inline T2 operator-(T2 a) { return __hneg2(a); }                                           \
    static inline bool operator==(T2 a, T2 b) { return __hbeq2(a, b); }                              \
    static inline bool operator!=(T2 a, T2 b) { return !__hbeq2(a, b); }                             \
    static inline T2 h2sqrt(T2 a) { return T2(hsqrt(a.x), hsqrt(a.y)); }                              \
    static inline T2 h2rsqrt(T2 a) { return T2(hrsqrt(a.x), hrsqrt(a.y)); }                           \
    static inline T2 h2rcp(T2 a) { return T2(hrcp(a.x), hrcp(a.y)); }                                 \
    static inline T2 h2exp(T2 a) { return T2(hexp(a.x), hexp(a.y)); }                                 \
    static inline T2 h2exp2(T2 a) { return T2(hexp2(a.x), hexp2(a.y)); }                              \
    static inline T2 h2log(T2 a) { return T2(hlog(a.x), hlog(a.y)); }                                 \
    static inline T2 h2log2(T2 a) { return T2(hlog2(a.x), hlog2(a.y)); }                              \
    static inline T2 h2sin(T2 a) { return T2(hsin(a.x), hsin(a.y)); }                                 \
    static inline T2 h2cos(T2 a) { return T2(hcos(a.x), hcos(a.y)); }                                 \
    static inline T2 h2trunc(T2 a) { return T2(htrunc(a.x), htrunc(a.y)); }                           \
    static inline T2 h2ceil(T2 a) { return T2(hceil(a.x), hceil(a.y)); }                              \
    static inline T2 h2floor(T2 a) { return T2(hfloor(a.x), hfloor(a.y)); }                           \
    static inline T2 h2rint(T2 a) { return T2(hrint(a.x), hrint(a.y)); }                              \
    static inline T_ atomicAdd(T_ *p, T_ v) { T_ o = *p; *p = __hadd(o, v); return o; }               \
    static inline T2 atomicAdd(T2 *p, T2 v) { T2 o = *p; *p = __hadd2(o, v); return o; }
CUDA_EMU_H16_ARITH(__half, __half2, 10, 5, cuda_emu_mk_h)
CUDA_EMU_H16_ARITH(__nv_bfloat16, __nv_bfloat162, 7, 8, cuda_emu_mk_bf)
#undef CUDA_EMU_H16_ARITH

/* Constants as in cuda_fp16.h / cuda_bf16.h */
#define CUDART_INF_FP16 cuda_emu_mk_h(0x7c00)
#define CUDART_NAN_FP16 cuda_emu_mk_h(0x7fff)
#define CUDART_MAX_NORMAL_FP16 cuda_emu_mk_h(0x7bff)
#define CUDART_ONE_FP16 cuda_emu_mk_h(0x3c00)
#define CUDART_ZERO_FP16 cuda_emu_mk_h(0x0000)
#define CUDART_INF_BF16 cuda_emu_mk_bf(0x7f80)
#define CUDART_NAN_BF16 cuda_emu_mk_bf(0x7fff)
#define CUDART_MAX_NORMAL_BF16 cuda_emu_mk_bf(0x7f7f)
#define CUDART_ONE_BF16 cuda_emu_mk_bf(0x3f80)
#define CUDART_ZERO_BF16 cuda_emu_mk_bf(0x0000)

#endif
