/* test_half.c — f16/bf16 conversions against the compiler's own _Float16 / bit arithmetic references. */
#include "test.h"
#include "../core/half.h"

#include <stdint.h>

/* Independent reference for f32 -> bf16: round-to-nearest-even via double arithmetic on the value. */
static uint16_t ref_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0; /* NaN handled separately */
    uint32_t lo = x & 0xffff0000u, hi = lo + 0x10000u;
    double v = f, a = f32_from_bits(lo), b = f32_from_bits(hi);
    if ((lo & 0x7f800000u) == 0x7f800000u) return (uint16_t)(lo >> 16); /* already inf */
    if ((hi & 0x7f800000u) == 0x7f800000u) b = (v < 0 ? -1 : 1) * ldexp(1.0, 128); /* overflow rounds as if unbounded */
    double da = v - a, db = b - v;
    if (da < 0) da = -da;
    if (db < 0) db = -db;
    if (da < db) return (uint16_t)(lo >> 16);
    if (db < da) return (uint16_t)(hi >> 16);
    return (uint16_t)(((lo >> 16) & 1) ? hi >> 16 : lo >> 16);
}

TEST(f16_all_65536_roundtrip) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = f16_to_f32((uint16_t)h);
        _Float16 ref;
        uint16_t hb = (uint16_t)h;
        memcpy(&ref, &hb, 2);
        float fr = (float)ref;
        int nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (nan) {
            if (f == f || f32_to_f16(f) == f32_to_f16(0.0f)) bad++;
            continue;
        }
        if (f32_bits(f) != f32_bits(fr)) bad++;          /* widening equals the compiler's */
        if (f32_to_f16(f) != (uint16_t)h) bad++;         /* and narrowing back is the identity */
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(f32_to_f16_matches_compiler_rounding) {
    /* every f32 whose top 20 bits vary, with low bits chosen to hit ties and near-ties */
    const uint32_t lows[] = {0, 1, 0xfff, 0x1000, 0x1001, 0x1fff, 0x2000, 0xfff, 0x7ff, 0x800, 0xfff};
    long bad = 0, n = 0;
    for (uint32_t top = 0; top < (1u << 20); top++) {
        for (size_t k = 0; k < sizeof lows / sizeof *lows; k++) {
            uint32_t x = (top << 12) | lows[k];
            float f = f32_from_bits(x);
            if (f != f) continue;
            _Float16 r = (_Float16)f;
            uint16_t rb;
            memcpy(&rb, &r, 2);
            n++;
            if (f32_to_f16(f) != rb) { if (bad < 5) test_note("0x%08x -> 0x%04x, compiler 0x%04x", x, f32_to_f16(f), rb); bad++; }
        }
    }
    CHECK_EQ_INT(bad, 0);
    test_note("%ld values compared", n);
}

TEST(bf16_rounding) {
    long bad = 0;
    uint32_t s = 12345;
    for (long i = 0; i < 2000000; i++) {
        s = s * 1664525u + 1013904223u;
        uint32_t x = s;
        if (i % 3 == 0) x = (x & 0xffff0000u) | 0x8000u; /* exact ties */
        float f = f32_from_bits(x);
        if (f != f) { CHECK(bf16_to_f32(f32_to_bf16(f)) != bf16_to_f32(f32_to_bf16(f))); continue; }
        if (f32_to_bf16(f) != ref_bf16(f)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    for (uint32_t b = 0; b < 65536; b++) {
        float f = bf16_to_f32((uint16_t)b);
        if (f == f) CHECK(f32_to_bf16(f) == b);
    }
}

TEST(half_arrays) {
    float src[5] = {1.0f, -2.5f, 65504.0f, 1e-8f, 70000.0f}, back[5];
    uint16_t h[5];
    f32_to_f16_array(src, h, 5);
    f16_to_f32_array(h, back, 5);
    CHECK(back[0] == 1.0f && back[1] == -2.5f && back[2] == 65504.0f);
    CHECK(back[3] == 0.0f);
    CHECK(back[4] == INFINITY);
}
