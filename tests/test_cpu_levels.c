/* test_cpu_levels.c — every vector level this CPU has (avx2, avx512 on x86-64; neon on AArch64) against the
 * generic level, kernel by kernel, on ragged lengths (1, a vector minus one, a vector plus one, odd hundreds) so
 * the partial-vector tails run: the row kernels, the Winograd transforms, and the flash attention against the
 * generic sgemm attention. The notes say which levels ran. Tolerances: the same polynomials in a different
 * operation order (fused multiply-adds) agree to a few ulps; widening is exact. */
#include "test.h"
#include "be_test.h"
#include "../core/half.h"
#include "../kernels/cpu/cpu_simd.h"

static uint32_t g_rs = 12345;
static float frand(void) {
    g_rs = g_rs * 1664525u + 1013904223u;
    return (float)((g_rs >> 8) * (1.0 / 8388608.0)) - 1.0f;
}
static float *rnd(size_t n, float scale, float offset) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = offset + scale * frand();
    return p;
}

/* max |a - b| / max(1, |b|) */
static double relerr(const float *a, const float *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs(b[i]));
        if (!(d <= e)) e = d; /* NaN counts as the worst */
    }
    return e;
}

static const size_t LENS[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1001};
#define NLENS (sizeof LENS / sizeof *LENS)

/* Runs one row kernel of table k and of the generic table on the same input; returns the worst relative error. */
static double row_kernels(const cpu_kern *k) {
    const cpu_kern *g = &cpu_kern_generic;
    double worst = 0;
    for (size_t li = 0; li < NLENS; li++) {
        size_t n = LENS[li];
        float *x = rnd(n, 6, 0), *x2 = rnd(n, 3, 0), *bias = rnd(n, 1, 0), *mean = rnd(n, 1, 0), *scale = rnd(n, 2, 0), *shift = rnd(n, 1, 0);
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
        for (int act = BE_ACT_NONE; act <= BE_ACT_QUICK_GELU; act++)
            for (int wb = 0; wb < 2; wb++) {
                k->bias_act_row(x, wb ? bias : NULL, (be_act)act, a, n);
                g->bias_act_row(x, wb ? bias : NULL, (be_act)act, b, n);
                worst = fmax(worst, relerr(a, b, n));
            }
        k->geglu_row(x2, x, a, n);
        g->geglu_row(x2, x, b, n);
        worst = fmax(worst, relerr(a, b, n));
        k->axpy_row(x, x2, -0.7f, a, n);
        g->axpy_row(x, x2, -0.7f, b, n);
        worst = fmax(worst, relerr(a, b, n));
        for (int silu = 0; silu < 2; silu++) {
            k->affine_row(x, mean, scale, shift, silu, a, n);
            g->affine_row(x, mean, scale, shift, silu, b, n);
            worst = fmax(worst, relerr(a, b, n));
        }
        /* moments over 5 rows of n with a row stride of n + 3 */
        float *rows = rnd(5 * (n + 3), 2, 7), *s1 = calloc(2 * n, sizeof(float)), *s2 = calloc(2 * n, sizeof(float));
        k->shifted_moments(rows, n + 3, 5, shift, s1, s1 + n, n);
        g->shifted_moments(rows, n + 3, 5, shift, s2, s2 + n, n);
        worst = fmax(worst, relerr(s1, s2, 2 * n) / 8); /* sums of 5 squares of values near 8: relative to the sums */
        for (int aff = 0; aff < 2; aff++) {
            k->layer_norm_row(x, aff ? scale : NULL, aff ? shift : NULL, 1e-5f, a, (int)n);
            g->layer_norm_row(x, aff ? scale : NULL, aff ? shift : NULL, 1e-5f, b, (int)n);
            if (n > 1) worst = fmax(worst, relerr(a, b, n)); /* one value normalises to 0 in both, any rounding */
        }
        float ma = k->max_row(x, n), mb = g->max_row(x, n);
        worst = fmax(worst, ma == mb ? 0 : 1);
        memcpy(a, x, n * sizeof(float));
        memcpy(b, x, n * sizeof(float));
        float sa = k->exp_sum_row(a, 2.0f, n), sb = g->exp_sum_row(b, 2.0f, n);
        worst = fmax(worst, fmax(relerr(a, b, n), fabs(sa - sb) / fmax(1, fabs(sb))));
        memcpy(a, x, n * sizeof(float));
        memcpy(b, x, n * sizeof(float));
        k->scale_row(a, 1.3f, n);
        g->scale_row(b, 1.3f, n);
        worst = fmax(worst, relerr(a, b, n));
        /* 16-bit widening: exact */
        uint16_t *h = malloc(n * 2);
        for (size_t i = 0; i < n; i++) h[i] = f32_to_f16(x[i] * 1000);
        if (n > 2) h[1] = 0x0001; /* a subnormal */
        k->widen_f16(h, a, n);
        g->widen_f16(h, b, n);
        worst = fmax(worst, memcmp(a, b, n * sizeof(float)) ? 1 : 0);
        for (size_t i = 0; i < n; i++) h[i] = f32_to_bf16(x[i]);
        k->widen_bf16(h, a, n);
        g->widen_bf16(h, b, n);
        worst = fmax(worst, memcmp(a, b, n * sizeof(float)) ? 1 : 0);
        free(h);
        free(x); free(x2); free(bias); free(mean); free(scale); free(shift); free(a); free(b); free(rows); free(s1); free(s2);
    }
    return worst;
}

/* The Winograd transforms of table k against the generic ones, for m = 2, 4 and 6, ragged C and O, tiles that
 * straddle the image's edges. Returns the worst error relative to the largest value. */
static double wino_transforms(const cpu_kern *k) {
    const cpu_kern *g = &cpu_kern_generic;
    static const int CS[] = {1, 5, 17, 40};
    double worst = 0;
    for (int m = 2; m <= 6; m += 2)
        for (size_t ci = 0; ci < sizeof CS / sizeof *CS; ci++) {
            int C = CS[ci], O = CS[(ci + 1) % 4], T = m + 2, TT = T * T, N = 2, H = 7, W = 10;
            int th = (H + m - 1) / m, tw = (W + m - 1) / m, nt = N * th * tw;
            float *w = rnd((size_t)O * 9 * C, 1, 0), *x = rnd((size_t)N * H * W * C, 1, 0), *bias = rnd(O, 1, 0);
            size_t ldu = (size_t)O * C + 5, ldv = (size_t)nt * C + 3, ldm = (size_t)nt * O + 1;
            float *ua = calloc(TT * ldu, sizeof(float)), *ub = calloc(TT * ldu, sizeof(float));
            float *va = calloc(TT * ldv, sizeof(float)), *vb = calloc(TT * ldv, sizeof(float));
            float *mm = rnd(TT * ldm, 1, 0), *ya = calloc((size_t)N * H * W * (O + 2), sizeof(float)), *yb = calloc((size_t)N * H * W * (O + 2), sizeof(float));
            k->wino_weight(m, w, C, O, ua, ldu);
            g->wino_weight(m, w, C, O, ub, ldu);
            k->wino_input(m, x, N, H, W, C, tw, th, 1, nt - 1, va, ldv); /* from tile 1: the first-tile offset */
            g->wino_input(m, x, N, H, W, C, tw, th, 1, nt - 1, vb, ldv);
            k->wino_output(m, mm, ldm, N, H, W, O, tw, th, 0, nt, bias, ya + 1, O + 2); /* rows of O + 2: a strided y */
            g->wino_output(m, mm, ldm, N, H, W, O, tw, th, 0, nt, bias, yb + 1, O + 2);
            double su = 0, sv = 0, sy = 0;
            for (size_t i = 0; i < TT * ldu; i++) su = fmax(su, fabs(ub[i]));
            for (size_t i = 0; i < TT * ldv; i++) sv = fmax(sv, fabs(vb[i]));
            for (size_t i = 0; i < (size_t)N * H * W * (O + 2); i++) sy = fmax(sy, fabs(yb[i]));
            for (size_t i = 0; i < TT * ldu; i++) worst = fmax(worst, fabs(ua[i] - ub[i]) / su);
            for (size_t i = 0; i < TT * ldv; i++) worst = fmax(worst, fabs(va[i] - vb[i]) / sv);
            for (size_t i = 0; i < (size_t)N * H * W * (O + 2); i++) worst = fmax(worst, fabs(ya[i] - yb[i]) / sy);
            free(w); free(x); free(bias); free(ua); free(ub); free(va); free(vb); free(mm); free(ya); free(yb);
        }
    return worst;
}

TEST(cpu_levels_against_generic) {
    char ran[64] = "", absent[64] = "";
    cpu_level was = cpu_level_get();
    for (int l = 0; l < CPU_LEVEL_COUNT; l++) {
        if (l == CPU_LEVEL_GENERIC) continue;
        if (!cpu_level_supported((cpu_level)l)) {
            snprintf(absent + strlen(absent), sizeof absent - strlen(absent), " %s", cpu_level_name((cpu_level)l));
            continue;
        }
        snprintf(ran + strlen(ran), sizeof ran - strlen(ran), " %s", cpu_level_name((cpu_level)l));
        REQUIRE(cpu_level_set((cpu_level)l) == was || cpu_level_get() == (cpu_level)l);
        const cpu_kern *k = cpu_kern_get();
        double er = row_kernels(k), ew = wino_transforms(k);
        test_note("%s vs generic: row kernels at %zu lengths, max rel err %.2e (tol 1e-6); Winograd transforms %.2e (tol 1e-6)",
                  cpu_level_name((cpu_level)l), NLENS, er, ew);
        CHECK(er <= 1e-6);
        CHECK(ew <= 1e-6);
        /* the level's attention against the generic sgemm attention, ragged sequence lengths and head widths */
        static const struct { int N, Tq, Tk, C, heads, causal; } cs[] = {{2, 37, 301, 80, 2, 0}, {1, 77, 77, 36, 3, 1}, {1, 5, 1000, 520, 1, 0}};
        double wa = 0;
        for (size_t t = 0; t < sizeof cs / sizeof *cs; t++) {
            int N = cs[t].N, Tq = cs[t].Tq, Tk = cs[t].Tk, C = cs[t].C;
            float *q = rnd((size_t)N * Tq * C, 2, 0), *kk = rnd((size_t)N * Tk * C, 2, 0), *v = rnd((size_t)N * Tk * C, 1, 0);
            float *outs[2];
            for (int pass = 0; pass < 2; pass++) {
                cpu_level_set(pass ? CPU_LEVEL_GENERIC : (cpu_level)l);
                be *b = test_cpu_backend(0);
                be_tensor tq = test_upload(b, q, N, 1, Tq, C), tk = test_upload(b, kk, N, 1, Tk, C), tv = test_upload(b, v, N, 1, Tk, C);
                be_tensor ty = be_new(b, N, 1, Tq, C);
                be_attention(b, &tq, &tk, &tv, cs[t].heads, cs[t].causal, &ty);
                REQUIRE(be_status(b) == SD_OK);
                outs[pass] = test_download(b, &ty);
                be_free(b);
            }
            wa = fmax(wa, relerr(outs[0], outs[1], (size_t)N * Tq * C));
            free(outs[0]); free(outs[1]); free(q); free(kk); free(v);
        }
        test_note("%s vs generic: attention (head dims 40, 12, 520; causal; ragged lengths) max err %.2e (tol 2e-6)", cpu_level_name((cpu_level)l), wa);
        CHECK(wa <= 2e-6);
        cpu_level_set(was);
    }
    test_note("levels compared with generic on this CPU:%s%s%s", ran[0] ? ran : " none", absent[0] ? "; not available here:" : "", absent);
    /* a level the CPU lacks is refused */
    for (int l = 0; l < CPU_LEVEL_COUNT; l++)
        if (!cpu_level_supported((cpu_level)l)) {
            cpu_level_set((cpu_level)l);
            CHECK(cpu_level_get() == was);
        }
}
