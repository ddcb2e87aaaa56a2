/* half.h — exact conversions between f32 and the 16-bit float formats (IEEE f16, bfloat16), round to nearest even. */
#ifndef CORE_HALF_H
#define CORE_HALF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return f32_from_bits(sign | 0x7f800000u | (m << 13));
    if (e == 0) { /* zero or subnormal: m * 2^-24, exact in f32 */
        float v = (float)m * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
}

static inline uint16_t f32_to_f16(float f) {
    uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf stays inf; NaN stays a quiet NaN with its top payload bits */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520 rounds to infinity */
    if (ax >= 0x38800000u) { /* normal half: drop 13 mantissa bits with round-to-nearest-even */
        ax += 0xfff + ((ax >> 13) & 1);
        return (uint16_t)(sign | ((ax - (112u << 23)) >> 13));
    }
    uint32_t e = ax >> 23;
    if (e < 102) return (uint16_t)sign; /* below 2^-25: rounds to zero */
    uint32_t mant = (ax & 0x7fffff) | 0x800000, shift = 126 - e; /* subnormal: round(mant * 2^(e-126)) */
    uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

static inline float bf16_to_f32(uint16_t b) { return f32_from_bits((uint32_t)b << 16); }

static inline uint16_t f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

void f16_to_f32_array(const uint16_t *src, float *dst, size_t n);
void bf16_to_f32_array(const uint16_t *src, float *dst, size_t n);
void f32_to_f16_array(const float *src, uint16_t *dst, size_t n);
void f32_to_bf16_array(const float *src, uint16_t *dst, size_t n);

#endif
