// test_emu_half.cpp — __half and __nv_bfloat16 of the emulator, bit for bit: f16 against GCC's _Float16
// (emu_f16_ref.c), every rounding mode and bf16 against a table search written here (find the two
// representable neighbours of the exact value, pick by the mode), and the device path through a kernel.
// CUDA_EMU_EXHAUSTIVE=1 checks round-to-nearest on all 2^32 floats instead of a stride.
#include <stdlib.h>

#include "core/half.h"
#include "tests/emu/emu_kernels.h"
#include "tests/emu/emu_test_util.h"

extern "C" {
uint16_t emu_ref_f32_to_f16(float f);
uint16_t emu_ref_f64_to_f16(double d);
float emu_ref_f16_to_f32(uint16_t h);
uint16_t emu_ref_f16_add(uint16_t a, uint16_t b);
uint16_t emu_ref_f16_sub(uint16_t a, uint16_t b);
uint16_t emu_ref_f16_mul(uint16_t a, uint16_t b);
uint16_t emu_ref_f16_div(uint16_t a, uint16_t b);
uint16_t emu_ref_f16_fma(uint16_t a, uint16_t b, uint16_t c);
}

typedef __float128 quad;

/* exact magnitude of a finite 16-bit pattern */
static quad dec(uint16_t b, bool bf) {
    b &= 0x7fff;
    if (bf) {
        const uint32_t u = (uint32_t)b << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    const int e = b >> 10, m = b & 1023;
    return e ? ldexp((double)(1024 + m), e - 25) : ldexp((double)m, -24);
}

static bool is_nan16(uint16_t b, bool bf) { return bf ? (b & 0x7fff) > 0x7f80 : (b & 0x7fff) > 0x7c00; }

/* Correct rounding of x + tail (sign given separately so -0 survives; |tail| far below the 16-bit ulp of x,
 * so it only breaks round-to-nearest ties) by searching the sorted magnitudes. */
static uint16_t ref_round(quad x, bool neg, bool bf, int mode, quad tail = 0) {
    const uint16_t inf = bf ? 0x7f80 : 0x7c00, maxf = inf - 1, sign = neg ? 0x8000 : 0;
    if (x != x) return 0x7fff;
    const quad a = neg ? -x : x, tail_mag = neg ? -tail : tail;
    if (a != 0 && a * 2 == a) return sign | inf;
    uint16_t lo = 0, hi;
    quad vhi;
    if (a >= dec(maxf, bf)) {
        lo = maxf;
        hi = inf;
        vhi = bf ? (quad)ldexp(1.0, 128) : (quad)65536.0; /* where the next value would be */
    } else {
        uint16_t l = 0, h = maxf; /* dec(l) <= a < dec(h) */
        while (h - l > 1) {
            const uint16_t mid = (uint16_t)((l + h) / 2);
            if (dec(mid, bf) <= a) l = mid; else h = mid;
        }
        lo = l;
        hi = h;
        vhi = dec(h, bf);
    }
    const quad vlo = dec(lo, bf);
    uint16_t r;
    if (vlo == a) r = lo;
    else if (mode == CUDA_EMU_RZ) r = lo;
    else if (mode == CUDA_EMU_RU) r = neg ? lo : hi;
    else if (mode == CUDA_EMU_RD) r = neg ? hi : lo;
    else {
        const quad d1 = a - vlo, d2 = vhi - a;
        r = d1 < d2 ? lo : d2 < d1 ? hi : tail_mag > 0 ? hi : tail_mag < 0 ? lo : (lo & 1) ? hi : lo;
    }
    return sign | r;
}

/* p + c as a rounded sum and its exact error (TwoSum), so a tie decided by a far smaller c is still seen */
static quad two_sum(quad p, quad c, quad *tail) {
    const quad s = p + c, bb = s - p;
    *tail = (p - (s - bb)) + (c - bb);
    return s;
}

static float f_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static uint32_t stride(uint32_t dflt) { return getenv("CUDA_EMU_EXHAUSTIVE") ? 1 : dflt; }

TEST(emu_half_f32_round_nearest_matches_float16_and_core) {
    long bad = 0, n = 0;
    const uint32_t step = stride(4099);
    for (uint64_t u = 0; u < (1ull << 32); u += step, n++) {
        const float f = f_of((uint32_t)u);
        const uint16_t got = __float2half_rn(f).__x, want = emu_ref_f32_to_f16(f);
        if (got != want && !(is_nan16(got, false) && is_nan16(want, false)) && bad++ < 5)
            test_fail(__FILE__, __LINE__, "f32 %08x -> f16 %04x, want %04x", (unsigned)u, got, want);
        /* bf16: the project's own converter (core/half.h), written independently */
        const uint16_t bgot = __float2bfloat16_rn(f).__x, bwant = f32_to_bf16(f);
        if (bgot != bwant && !(is_nan16(bgot, true) && is_nan16(bwant, true)) && bad++ < 5)
            test_fail(__FILE__, __LINE__, "f32 %08x -> bf16 %04x, want %04x", (unsigned)u, bgot, bwant);
    }
    /* exact ties: every midpoint between neighbouring halves, as a float */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        const quad mid = (dec((uint16_t)h, false) + dec((uint16_t)(h + 1), false)) / 2;
        for (int s = 0; s < 2; s++) {
            const float f = s ? -(float)mid : (float)mid;
            if ((quad)(s ? -f : f) != mid) continue; /* not representable in f32 (only near the top) */
            if (__float2half(f).__x != emu_ref_f32_to_f16(f) && bad++ < 5) test_fail(__FILE__, __LINE__, "tie %a", (double)f);
            n++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    test_note("%ld floats converted to f16 and bf16 (stride %u over all 2^32, plus every f16 tie), %ld mismatches", n, step, bad);
}

TEST(emu_half_f64_to_f16_rounds_once) {
    long bad = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) { /* midpoints and their double neighbours: f64->f32->f16 would fail */
        const double mid = (double)((dec((uint16_t)h, false) + dec((uint16_t)(h + 1), false)) / 2);
        const double xs[] = {mid, nextafter(mid, 0.0), nextafter(mid, INFINITY), -mid, -nextafter(mid, INFINITY)};
        for (double x : xs)
            if (__double2half(x).__x != emu_ref_f64_to_f16(x) && bad++ < 5)
                test_fail(__FILE__, __LINE__, "f64 %a -> %04x, want %04x", x, __double2half(x).__x, emu_ref_f64_to_f16(x));
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(emu_half_f16_to_f32_all) {
    long bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        __half_raw r;
        r.x = (unsigned short)h;
        const float got = __half2float(__half(r)), want = emu_ref_f16_to_f32((uint16_t)h);
        if (memcmp(&got, &want, 4) && !(got != got && want != want)) bad++;
        if (is_nan16((uint16_t)h, false) != (got != got)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(emu_half_directed_rounding_and_bf16) {
    long bad = 0, n = 0;
    const uint32_t step = 65521;
    for (uint64_t u = 0; u < (1ull << 32); u += step) {
        const float f = f_of((uint32_t)u);
        const bool neg = u >> 31;
        const __half hs[4] = {__float2half_rn(f), __float2half_rz(f), __float2half_rd(f), __float2half_ru(f)};
        const __nv_bfloat16 bs[4] = {__float2bfloat16_rn(f), __float2bfloat16_rz(f), __float2bfloat16_rd(f), __float2bfloat16_ru(f)};
        for (int mode = 0; mode < 4; mode++, n += 2) {
            const uint16_t wh = ref_round(f, neg, false, mode), wb = ref_round(f, neg, true, mode);
            if (hs[mode].__x != wh && !(is_nan16(wh, false) && is_nan16(hs[mode].__x, false)) && bad++ < 5)
                test_fail(__FILE__, __LINE__, "f16 mode %d of %08x: %04x, want %04x", mode, (unsigned)u, hs[mode].__x, wh);
            if (bs[mode].__x != wb && !(is_nan16(wb, true) && is_nan16(bs[mode].__x, true)) && bad++ < 5)
                test_fail(__FILE__, __LINE__, "bf16 mode %d of %08x: %04x, want %04x", mode, (unsigned)u, bs[mode].__x, wb);
        }
    }
    CHECK_EQ_INT(bad, 0);
    test_note("%ld conversions in 4 rounding modes (stride %u), %ld mismatches", n, step, bad);
}

static uint16_t rnd16(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint16_t)(*s >> 48);
}

TEST(emu_half_arithmetic_correctly_rounded) {
    uint64_t s = 12345;
    long bad = 0;
    const int n = 50000;
    for (int i = 0; i < n; i++) {
        const uint16_t a = rnd16(&s), b = rnd16(&s), c = rnd16(&s);
        __half_raw ra, rb, rc;
        ra.x = a; rb.x = b; rc.x = c;
        const __half ha(ra), hb(rb), hc(rc);
        const uint16_t got[5] = {__hadd(ha, hb).__x, __hsub(ha, hb).__x, __hmul(ha, hb).__x, __hdiv(ha, hb).__x, __hfma(ha, hb, hc).__x};
        const uint16_t want[5] = {emu_ref_f16_add(a, b), emu_ref_f16_sub(a, b), emu_ref_f16_mul(a, b), emu_ref_f16_div(a, b),
                                  emu_ref_f16_fma(a, b, c)};
        for (int k = 0; k < 5; k++)
            if (got[k] != want[k] && !(is_nan16(got[k], false) && is_nan16(want[k], false)) && bad++ < 5)
                test_fail(__FILE__, __LINE__, "f16 op %d of %04x %04x %04x: %04x, want %04x", k, a, b, c, got[k], want[k]);
        /* bf16: exact value in __float128, rounded by the table search */
        __nv_bfloat16_raw xa, xb, xc;
        xa.x = a; xb.x = b; xc.x = c;
        const __nv_bfloat16 ba(xa), bb(xb), bc(xc);
        const quad qa = (a >> 15 ? -1 : 1) * dec(a, true), qb = (b >> 15 ? -1 : 1) * dec(b, true), qc = (c >> 15 ? -1 : 1) * dec(c, true);
        if (is_nan16(a, true) || is_nan16(b, true) || is_nan16(c, true) || (a & 0x7fff) == 0x7f80 || (b & 0x7fff) == 0x7f80 ||
            (c & 0x7fff) == 0x7f80 || (b & 0x7fff) == 0)
            continue; /* specials: covered through the f16 path; the table search handles finite values */
        quad tail = 0;
        const quad exact[5] = {qa + qb, qa - qb, qa * qb, qa / qb, two_sum(qa * qb, qc, &tail)};
        const uint16_t bgot[5] = {__hadd(ba, bb).__x, __hsub(ba, bb).__x, __hmul(ba, bb).__x, __hdiv(ba, bb).__x, __hfma(ba, bb, bc).__x};
        for (int k = 0; k < 5; k++) {
            const bool neg = exact[k] < 0 || (exact[k] == 0 && (bgot[k] >> 15)); /* zero sign: not checked */
            const uint16_t w = ref_round(exact[k], neg, true, CUDA_EMU_RN, k == 4 ? tail : 0);
            if (bgot[k] != w && bad++ < 5)
                test_fail(__FILE__, __LINE__, "bf16 op %d of %04x %04x %04x: %04x, want %04x", k, a, b, c, bgot[k], w);
        }
    }
    CHECK_EQ_INT(bad, 0);
    test_note("%d random triples x 5 ops, f16 and bf16, %ld mismatches", n, bad);
}

TEST(emu_half_ops_in_a_kernel) {
    const int n = 4096;
    uint64_t s = 777;
    std::vector<unsigned short> a(n), b(n), c(n);
    for (int i = 0; i < n; i++) { a[i] = rnd16(&s); b[i] = rnd16(&s); c[i] = rnd16(&s); }
    unsigned short *da = dev_upload(a), *db = dev_upload(b), *dc = dev_upload(c), *dout = dev_alloc<unsigned short>(4 * n),
                   *dbout = dev_alloc<unsigned short>(4 * n);
    REQUIRE(da && db && dc && dout && dbout);
    CHECK_EQ_INT(emu_probe_half_ops(da, db, dc, dout, da, db, dc, dbout, n), cudaSuccess);
    std::vector<unsigned short> out = dev_download(dout, 4 * n), bout = dev_download(dbout, 4 * n);
    long bad = 0;
    for (int i = 0; i < n; i++) {
        const uint16_t want[4] = {emu_ref_f16_add(a[i], b[i]), emu_ref_f16_mul(a[i], b[i]), emu_ref_f16_fma(a[i], b[i], c[i]),
                                  emu_ref_f16_div(a[i], b[i])};
        for (int k = 0; k < 4; k++)
            if (out[i * 4 + k] != want[k] && !(is_nan16(out[i * 4 + k], false) && is_nan16(want[k], false))) bad++;
        const quad qa = (a[i] >> 15 ? -1 : 1) * dec(a[i], true), qb = (b[i] >> 15 ? -1 : 1) * dec(b[i], true),
                   qc = (c[i] >> 15 ? -1 : 1) * dec(c[i], true);
        if (is_nan16(a[i], true) || is_nan16(b[i], true) || is_nan16(c[i], true) || (a[i] & 0x7fff) >= 0x7f80 ||
            (b[i] & 0x7fff) >= 0x7f80 || (c[i] & 0x7fff) >= 0x7f80 || (b[i] & 0x7fff) == 0)
            continue;
        quad tail = 0;
        const quad exact[4] = {qa + qb, qa * qb, two_sum(qa * qb, qc, &tail), qa / qb};
        for (int k = 0; k < 4; k++) {
            const uint16_t g = bout[i * 4 + k];
            if (g != ref_round(exact[k], exact[k] < 0 || (exact[k] == 0 && (g >> 15)), true, CUDA_EMU_RN, k == 2 ? tail : 0)) bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    cudaFree(da); cudaFree(db); cudaFree(dc); cudaFree(dout); cudaFree(dbout);
}

TEST(emu_half_misc_semantics) {
    const __half nan = CUDART_NAN_FP16, one = __float2half(1.0f), two = __float2half(2.0f), nz = __float2half(-0.0f);
    CHECK(__hmax(nan, one).__x == one.__x && __hmin(one, nan).__x == one.__x);
    CHECK(__hisnan(__hmax_nan(nan, one)));
    CHECK(__hmax(nz, __float2half(0.0f)).__x == 0 && __hmin(__float2half(0.0f), nz).__x == 0x8000);
    CHECK(one < two && !(nan < one) && !(nan == nan) && (nan != nan) && !__hne(nan, one) && __hneu(nan, one));
    CHECK_EQ_INT(__half2int_rz(__float2half(-3.75f)), -3);
    CHECK_EQ_INT(__half2int_rn(__float2half(2.5f)), 2);
    CHECK_EQ_INT(__half2int_rd(__float2half(-2.5f)), -3);
    CHECK_EQ_INT(__half2int_ru(CUDART_INF_FP16), 2147483647);
    CHECK_EQ_INT(__half2int_rz(nan), 0);
    CHECK_EQ_INT(__int2half_rn(2049).__x, __float2half(2048.0f).__x); /* tie to even */
    CHECK_EQ_INT(__int2half_ru(2049).__x, __float2half(2050.0f).__x);
    CHECK_EQ_INT(__float2half(70000.0f).__x, 0x7c00);
    CHECK_EQ_INT(__float2half_rz(70000.0f).__x, 0x7bff);
    const __half2 p = __floats2half2_rn(1.5f, -2.0f), q = __hmul2(p, __half2half2(two));
    CHECK(__low2float(q) == 3.0f && __high2float(q) == -4.0f);
    const float2 f2 = __half22float2(__hfma2(p, p, p));
    CHECK(f2.x == 3.75f && f2.y == 2.0f);
    CHECK(__bfloat162float(__float2bfloat16(1.00390625f)) == 1.0f); /* 1 + 2^-8: tie, to even */
    CHECK(__bfloat162float(__float2bfloat16(1.01171875f)) == 1.015625f); /* 1 + 3*2^-8: tie, to even (up) */
    CHECK(__float2bfloat16(NAN).__x == 0x7fff && __float2half(NAN).__x == 0x7fff);
    __half h = __float2half(0.5f);
    h += one;
    CHECK(__half2float(h) == 1.5f && __half2float(-h) == -1.5f && (float)(h * two) == 3.0f);
}
