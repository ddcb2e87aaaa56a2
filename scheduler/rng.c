/* rng.c — torch's CPU normal generator (mt19937 + its AVX2 Box-Muller) and A1111's CPU emulation of CUDA Philox. */
#include "rng.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "../core/error.h"
#include "../core/half.h"

/* ---------------------------------------------------------------------------------------------------------------
 * torch CPU engine: 32-bit MT19937 seeded like at::mt19937 (only the low 32 bits of the seed reach the state). */

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UMASK 0x80000000u
#define MT_LMASK 0x7fffffffu

static uint32_t mt_twist(uint32_t u, uint32_t v) {
    return (((u & MT_UMASK) | (v & MT_LMASK)) >> 1) ^ ((v & 1u) ? MT_MATRIX_A : 0u);
}

static void mt_seed(rng *r, uint64_t seed) {
    r->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (int j = 1; j < RNG_MT_N; j++)
        r->mt[j] = 1812433253u * (r->mt[j - 1] ^ (r->mt[j - 1] >> 30)) + (uint32_t)j;
    r->mt_left = 1; /* torch starts with left = 1: the very first draw regenerates the whole block */
    r->mt_next = 0;
}

static void mt_next_state(rng *r) {
    uint32_t *s = r->mt;
    int j = 0;
    for (; j < RNG_MT_N - MT_M; j++) s[j] = s[j + MT_M] ^ mt_twist(s[j], s[j + 1]);
    for (; j < RNG_MT_N - 1; j++) s[j] = s[j + MT_M - RNG_MT_N] ^ mt_twist(s[j], s[j + 1]);
    s[RNG_MT_N - 1] = s[MT_M - 1] ^ mt_twist(s[RNG_MT_N - 1], s[0]);
    r->mt_left = RNG_MT_N;
    r->mt_next = 0;
}

uint32_t rng_torch_cpu_u32(rng *r) {
    if (--r->mt_left == 0) mt_next_state(r);
    uint32_t y = r->mt[r->mt_next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* uniform_real_distribution<float>: 24 random bits, one 32-bit draw. */
static float mt_uniform_f32(rng *r) { return (float)(rng_torch_cpu_u32(r) & 0xffffffu) * (1.0f / 16777216.0f); }

/* uniform_real_distribution<double>: 53 random bits from random64() = (first draw << 32) | second draw. */
static double mt_uniform_f64(rng *r) {
    uint64_t hi = rng_torch_cpu_u32(r), lo = rng_torch_cpu_u32(r);
    return (double)(((hi << 32) | lo) & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------------------------------------------------------
 * The float32 log and sincos of avx_mathfun.h (Cephes polynomials), lane by lane, with the multiply-adds fused the
 * way torch's AVX2 build compiles them. torch registers no AVX-512 normal kernel, so every x86-64 machine with AVX2
 * runs these; libm's logf/cosf differ in the last bit for ~1/6 of the values. */

static float mathfun_logf(float x) {
    if (!(x > 0.0f)) return NAN; /* the invalid mask: the argument 1 - u is never <= 0 here */
    if (x < 1.17549435e-38f) x = 1.17549435e-38f;
    uint32_t bits = f32_bits(x);
    float e = (float)((int32_t)(bits >> 23) - 127) + 1.0f;
    float m = f32_from_bits((bits & ~0x7f800000u) | 0x3f000000u); /* mantissa in [0.5, 1) */
    if (m < 0.707106781186547524f) {
        e -= 1.0f;
        m = (m - 1.0f) + m;
    } else {
        m = m - 1.0f;
    }
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = fmaf(y, m, -1.1514610310e-1f);
    y = fmaf(y, m, 1.1676998740e-1f);
    y = fmaf(y, m, -1.2420140846e-1f);
    y = fmaf(y, m, 1.4249322787e-1f);
    y = fmaf(y, m, -1.6668057665e-1f);
    y = fmaf(y, m, 2.0000714765e-1f);
    y = fmaf(y, m, -2.4999993993e-1f);
    y = fmaf(y, m, 3.3333331174e-1f);
    y = y * m;
    y = fmaf(y, z, e * -2.12194440e-4f);
    y = fmaf(-z, 0.5f, y);
    return fmaf(e, 0.693359375f, m + y);
}

static void mathfun_sincosf(float x, float *s, float *c) {
    uint32_t sign_sin = f32_bits(x) & 0x80000000u;
    float ax = fabsf(x);
    int32_t j = (int32_t)(ax * 1.27323954473516f); /* x * 4/pi, truncated */
    j = (j + 1) & ~1;
    float y = (float)j;
    uint32_t swap_sin = ((uint32_t)j & 4u) << 29;
    int poly_is_sin = (j & 2) == 0;
    uint32_t sign_cos = (~(uint32_t)(j - 2) & 4u) << 29;
    sign_sin ^= swap_sin;
    /* extended-precision reduction x - j*pi/4 in three parts */
    float xr = fmaf(y, -0.78515625f, ax);
    xr = fmaf(y, -2.4187564849853515625e-4f, xr);
    xr = fmaf(y, -3.77489497744594108e-8f, xr);
    float z = xr * xr;
    float yc = 2.443315711809948e-5f;
    yc = fmaf(yc, z, -1.388731625493765e-3f);
    yc = fmaf(yc, z, 4.166664568298827e-2f);
    yc = yc * z;
    yc = fmaf(yc, z, -0.5f * z); /* (y z) z - z/2 fused: checked against torch 2.15 bit for bit */
    yc = yc + 1.0f;
    float ys = -1.9515295891e-4f;
    ys = fmaf(ys, z, 8.3321608736e-3f);
    ys = fmaf(ys, z, -1.6666654611e-1f);
    ys = ys * z;
    ys = fmaf(ys, xr, xr);
    float sv = poly_is_sin ? ys : yc, cv = poly_is_sin ? yc : ys;
    *s = f32_from_bits(f32_bits(sv) ^ sign_sin);
    *c = f32_from_bits(f32_bits(cv) ^ sign_cos);
}

/* normal_fill_16_AVX2: d[0..8) become r cos(theta), d[8..16) r sin(theta), from u1 = 1 - d[j], u2 = d[j + 8]. */
static void normal_fill_16(float *d) {
    const float two_pi = 6.28318530717958647692f;
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j], u2 = d[j + 8];
        float radius = sqrtf(-2.0f * mathfun_logf(u1));
        float theta = two_pi * u2, sn, cs;
        mathfun_sincosf(theta, &sn, &cs);
        d[j] = radius * cs;
        d[j + 8] = radius * sn;
    }
}

static void torch_cpu_randn(rng *r, float *out, size_t n) {
    if (n >= 16) {
        /* torch.randn(n) with n >= 16: all uniforms first, then 16-wide blocks; a ragged tail re-draws 16 fresh
         * uniforms into the LAST 16 slots (overwriting finished values) and transforms them again. */
        for (size_t i = 0; i < n; i++) out[i] = mt_uniform_f32(r);
        for (size_t i = 0; i + 16 <= n; i += 16) normal_fill_16(out + i);
        if (n % 16) {
            float *tail = out + n - 16;
            for (int i = 0; i < 16; i++) tail[i] = mt_uniform_f32(r);
            normal_fill_16(tail);
        }
        return;
    }
    /* fewer than 16: normal_distribution<double> per element, with the generator's cached second value */
    for (size_t i = 0; i < n; i++) {
        double v;
        if (r->has_cached_normal) {
            v = r->cached_normal;
            r->has_cached_normal = 0;
        } else {
            double u1 = mt_uniform_f64(r), u2 = mt_uniform_f64(r);
            double radius = sqrt(-2.0 * log1p(-u2)), theta = 2.0 * 3.14159265358979323846 * u1;
            r->cached_normal = radius * sin(theta);
            r->has_cached_normal = 1;
            v = radius * cos(theta);
        }
        out[i] = (float)v;
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Philox4x32-10, counter (offset, 0, i, 0), key (seed lo, seed hi); Box-Muller as in A1111's rng_philox.py, whose
 * numpy code promotes uint32 * float32 to double: u = x 2^-32 + 2^-33, v = y 2pi 2^-32 + pi 2^-32 with the
 * float32-rounded constants, then sqrt(-2 ln u) sin v in double, rounded to float. */

static void philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)c[0] * 0xD2511F53u, p1 = (uint64_t)c[2] * 0xCD9E8D57u;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1, n3 = (uint32_t)p0;
        c[0] = n0; c[1] = n1; c[2] = n2; c[3] = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

static void philox_randn(rng *r, float *out, size_t n) {
    const double inv32 = (double)2.3283064e-10f;
    const double inv32_2pi = (double)(float)(2.3283064e-10 * 6.2831855);
    const double half_inv32 = (double)(2.3283064e-10f / 2), half_inv32_2pi = (double)((float)(2.3283064e-10 * 6.2831855) / 2);
    uint32_t k0 = (uint32_t)r->seed, k1 = (uint32_t)(r->seed >> 32);
    for (size_t i = 0; i < n; i++) {
        uint32_t c[4] = {r->philox_offset, 0, (uint32_t)i, 0}; /* A1111: up to 2^32 values per call */
        philox4x32_10(c, k0, k1);
        double u = (double)c[0] * inv32 + half_inv32;
        double v = (double)c[1] * inv32_2pi + half_inv32_2pi;
        out[i] = (float)(sqrt(-2.0 * log(u)) * sin(v));
    }
    r->philox_offset++;
}

/* --------------------------------------------------------------------------------------------------------------- */

void rng_init(rng *r, rng_kind kind, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->seed = seed;
    if (kind == RNG_TORCH_CPU) mt_seed(r, seed);
}

void rng_randn(rng *r, float *out, size_t n) {
    if (r->kind == RNG_PHILOX) philox_randn(r, out, n);
    else torch_cpu_randn(r, out, n);
}

static const struct { const char *name; rng_kind kind; } rng_names[] = {
    {"cpu", RNG_TORCH_CPU}, {"torch", RNG_TORCH_CPU}, {"cuda", RNG_PHILOX}, {"gpu", RNG_PHILOX}, {"philox", RNG_PHILOX},
};

sd_status rng_kind_from_name(const char *name, rng_kind *out) {
    for (size_t i = 0; name && i < sizeof rng_names / sizeof *rng_names; i++)
        if (strcasecmp(name, rng_names[i].name) == 0) {
            *out = rng_names[i].kind;
            return SD_OK;
        }
    return err_fail(SD_ERR_ARG, "unknown RNG \"%s\" (valid: cpu = torch CPU generator, cuda = torch CUDA Philox as "
                               "A1111/stable-diffusion.cpp emulate it)", name ? name : "(null)");
}

const char *rng_kind_name(rng_kind kind) { return kind == RNG_PHILOX ? "cuda" : "cpu"; }
