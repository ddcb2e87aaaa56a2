/* test_cpu_fast.c — the CPU backend's fast paths against naive double references written here: the polynomial
 * exp/GELU/SiLU, 16-bit weight storage, the padded-slab 3x3 convolution, split GEMMs, the flash attention with
 * several key blocks, GroupNorm over many row chunks. Every op check runs at every level the machine has (the
 * notes name them). */
#include "test.h"
#include "be_test.h"
#include "../core/error.h"
#include "../core/half.h"
#include "../kernels/backend.h"
#include "../kernels/cpu/cpu_simd.h"

#include <math.h>
#include <stdlib.h>

static uint32_t g_rs = 7;
static float frand(void) { /* uniform in [-1, 1) */
    g_rs = g_rs * 1664525u + 1013904223u;
    return (float)((g_rs >> 8) * (1.0 / 8388608.0)) - 1.0f;
}
static float *rnd(size_t n, float scale, float offset) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = offset + frand() * scale;
    return p;
}

/* The levels to run: every one this CPU has (the generic one always). */
static int levels(cpu_level out[CPU_LEVEL_COUNT]) {
    int n = 0;
    for (int l = CPU_LEVEL_COUNT - 1; l >= 0; l--)
        if (cpu_level_supported((cpu_level)l)) out[n++] = (cpu_level)l;
    return n;
}

TEST(cpu_simd_math_against_libm) {
    cpu_level lv[CPU_LEVEL_COUNT];
    int nl = levels(lv);
    for (int l = 0; l < nl; l++) {
        cpu_level was = cpu_level_set(lv[l]);
        enum { N = 20001 };
        float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
        /* exp over [-100, 88]: relative error (the row kernel subtracts m = 0) */
        for (int i = 0; i < N; i++) x[i] = -100.0f + 188.0f * i / (N - 1);
        for (int i = 0; i < N; i++) y[i] = x[i];
        cpu_exp_sum_row(y, 0.0f, N);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double r = exp((double)x[i]), e = fabs(y[i] - r) / r;
            if (r > 1e-37 && e > worst) worst = e; /* below FLT_MIN results are denormal: absolute error is what counts */
        }
        test_note("%s exp on [-100, 88]: max relative error %.2e", cpu_level_name(lv[l]), worst);
        CHECK(worst < 4e-7);
        /* GELU (erf) and SiLU over [-12, 12]: error relative to max(1, |x|) */
        double wg = 0, ws = 0, wq = 0;
        for (int i = 0; i < N; i++) x[i] = -12.0f + 24.0f * i / (N - 1);
        float *g = malloc(N * sizeof(float)), *s = malloc(N * sizeof(float)), *q = malloc(N * sizeof(float));
        cpu_bias_act_row(x, NULL, BE_ACT_GELU, g, N);
        cpu_bias_act_row(x, NULL, BE_ACT_SILU, s, N);
        cpu_bias_act_row(x, NULL, BE_ACT_QUICK_GELU, q, N);
        for (int i = 0; i < N; i++) {
            double v = x[i], sc = fabs(v) > 1 ? fabs(v) : 1;
            double rg = 0.5 * v * (1 + erf(v / sqrt(2.0))), rs = v / (1 + exp(-v)), rq = v / (1 + exp(-1.702 * v));
            if (fabs(g[i] - rg) / sc > wg) wg = fabs(g[i] - rg) / sc;
            if (fabs(s[i] - rs) / sc > ws) ws = fabs(s[i] - rs) / sc;
            if (fabs(q[i] - rq) / sc > wq) wq = fabs(q[i] - rq) / sc;
        }
        test_note("%s on [-12, 12], error / max(1, |x|): GELU %.2e, SiLU %.2e, QuickGELU %.2e", cpu_level_name(lv[l]), wg, ws, wq);
        CHECK(wg < 3e-7);
        CHECK(ws < 3e-7);
        CHECK(wq < 3e-7);
        /* the far negative GELU tail keeps its relative precision (computed from erfc, not 1 - erf) */
        float tail[4] = {-4.0f, -5.5f, -7.0f, -9.0f}, tg[4];
        cpu_bias_act_row(tail, NULL, BE_ACT_GELU, tg, 4);
        double wt = 0;
        for (int i = 0; i < 4; i++) {
            double r = 0.5 * tail[i] * erfc(-tail[i] / sqrt(2.0));
            if (fabs(tg[i] - r) / fabs(r) > wt) wt = fabs(tg[i] - r) / fabs(r);
        }
        test_note("%s GELU tail x in [-9, -4]: max relative error %.2e", cpu_level_name(lv[l]), wt);
        CHECK(wt < 2e-5);
        float nanv = NAN, o;
        cpu_bias_act_row(&nanv, NULL, BE_ACT_SILU, &o, 1);
        CHECK(o != o); /* NaN stays NaN */
        free(x); free(y); free(g); free(s); free(q);
        cpu_level_set(was);
    }
}

/* y = x · Wᵀ + b over rows, in double. */
static void linear_ref(const float *x, const float *w, const float *bias, int R, int I, int O, float *y) {
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) {
            double s = bias ? bias[o] : 0;
            for (int i = 0; i < I; i++) s += (double)x[(size_t)r * I + i] * w[(size_t)o * I + i];
            y[(size_t)r * O + o] = (float)s;
        }
}

/* 16-bit weights: the op result equals the f32 computation with the widened weights. */
TEST(cpu_16bit_weights_linear_conv_embedding) {
    int mode = cpu_conv_mode_set(CPU_CONV_DIRECT); /* the slab path (Winograd has its own test) */
    cpu_level lv[CPU_LEVEL_COUNT];
    int nl = levels(lv);
    for (int l = 0; l < nl; l++) {
        cpu_level was = cpu_level_set(lv[l]);
        be *b = test_cpu_backend(0);
        for (int dt = 0; dt < 2; dt++) {
            be_dtype type = dt ? BE_BF16 : BE_F16;
            const int R = 150, I = 70, O = 45;
            float *x = rnd((size_t)R * I, 1, 0), *w = rnd((size_t)O * I, 0.3f, 0), *bias = rnd(O, 0.3f, 0);
            uint16_t *w16 = malloc((size_t)O * I * 2);
            for (int i = 0; i < O * I; i++) {
                w16[i] = dt ? f32_to_bf16(w[i]) : f32_to_f16(w[i]);
                w[i] = dt ? bf16_to_f32(w16[i]) : f16_to_f32(w16[i]); /* the reference uses the stored values */
            }
            float *ref = malloc((size_t)R * O * 4);
            linear_ref(x, w, bias, R, I, O, ref);
            be_weight W, B;
            REQUIRE(be_weight_upload(b, &W, BE_W_LINEAR, O, I, 1, 1, type, w16) == SD_OK);
            REQUIRE(be_weight_upload(b, &B, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
            CHECK(b->weight_bytes == (size_t)O * I * 2 + O * 4); /* kept at 16 bits, vectors as f32 */
            size_t m = be_mark(b);
            be_tensor tx = test_upload(b, x, 1, 10, 15, I), ty = be_new(b, 1, 10, 15, O);
            be_linear(b, &tx, &W, &B, BE_ACT_NONE, &ty);
            REQUIRE(be_status(b) == SD_OK);
            float *got = test_download(b, &ty);
            CHECK_MAXERR(got, ref, R * O, 1e-5);
            free(got);
            /* a conv 3x3 with 16-bit weights, through the slab path (W >= 16, C >= 16) */
            const int N = 1, H = 5, Wd = 17, C = 16, Oc = 24;
            float *cx = rnd((size_t)N * H * Wd * C, 1, 0), *cw = rnd((size_t)Oc * C * 9, 0.2f, 0);
            uint16_t *cw16 = malloc((size_t)Oc * C * 9 * 2);
            for (int i = 0; i < Oc * C * 9; i++) {
                cw16[i] = dt ? f32_to_bf16(cw[i]) : f32_to_f16(cw[i]);
                cw[i] = dt ? bf16_to_f32(cw16[i]) : f16_to_f32(cw16[i]);
            }
            float *cref = malloc((size_t)N * H * Wd * Oc * 4);
            for (int oy = 0; oy < H; oy++)
                for (int ox = 0; ox < Wd; ox++)
                    for (int o = 0; o < Oc; o++) {
                        double s = 0;
                        for (int i = 0; i < C; i++)
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++) {
                                    int iy = oy - 1 + ky, ix = ox - 1 + kx;
                                    if (iy >= 0 && iy < H && ix >= 0 && ix < Wd) s += (double)cx[(iy * Wd + ix) * C + i] * cw[((o * C + i) * 3 + ky) * 3 + kx];
                                }
                        cref[(oy * Wd + ox) * Oc + o] = (float)s;
                    }
            be_weight CW;
            REQUIRE(be_weight_upload(b, &CW, BE_W_CONV, Oc, C, 3, 3, type, cw16) == SD_OK);
            be_tensor tcx = test_upload(b, cx, N, H, Wd, C), tcy = be_new(b, N, H, Wd, Oc);
            be_conv2d(b, &tcx, &CW, NULL, 1, 1, 1, &tcy);
            REQUIRE(be_status(b) == SD_OK);
            got = test_download(b, &tcy);
            CHECK_MAXERR(got, cref, N * H * Wd * Oc, 1e-5);
            free(got);
            /* embedding rows widened on lookup */
            be_weight T;
            REQUIRE(be_weight_upload(b, &T, BE_W_EMBED, O, I, 1, 1, type, w16) == SD_OK);
            int32_t ids[3] = {44, 0, 17};
            be_tensor te = be_new(b, 1, 1, 3, I);
            be_embedding(b, ids, &T, &te);
            got = test_download(b, &te);
            int same = 1;
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < I; j++) same &= got[i * I + j] == w[ids[i] * I + j];
            CHECK(same);
            free(got);
            be_release(b, m);
            be_weight_free(b, &W); be_weight_free(b, &B); be_weight_free(b, &CW); be_weight_free(b, &T);
            CHECK(b->weight_bytes == 0);
            free(x); free(w); free(bias); free(w16); free(ref); free(cx); free(cw); free(cw16); free(cref);
        }
        be_free(b);
        cpu_level_set(was);
    }
    cpu_conv_mode_set(mode);
}

/* The slab conv (Winograd off): chunks of rows (a ragged last chunk), one and two samples, one and two threads,
 * channel blocks. */
TEST(cpu_conv3x3_slab_chunks) {
    int mode = cpu_conv_mode_set(CPU_CONV_DIRECT);
    static const struct { int N, H, W, C, O, threads; } cs[] = {
        {2, 37, 20, 16, 19, 0},  /* several chunks per sample, the last one short */
        {1, 3, 64, 24, 16, 0},   /* fewer rows than threads x 2: chunks of one row */
        {1, 9, 130, 17, 33, 1},  /* one thread, wide rows */
        {2, 16, 16, 32, 40, 0},
        {1, 8, 16, 16, 168, 0},  /* few chunks: blocks of output channels too (two threads or more) */
    };
    for (size_t t = 0; t < sizeof cs / sizeof *cs; t++) {
        int N = cs[t].N, H = cs[t].H, W = cs[t].W, C = cs[t].C, O = cs[t].O;
        float *x = rnd((size_t)N * H * W * C, 1, 0), *w = rnd((size_t)O * C * 9, 0.2f, 0), *bias = rnd(O, 0.3f, 0);
        size_t ny = (size_t)N * H * W * O;
        double *refd = malloc(ny * sizeof(double));
        float *ref = malloc(ny * 4);
        test_conv3x3_ref(x, N, H, W, C, w, bias, O, refd);
        for (size_t i = 0; i < ny; i++) ref[i] = (float)refd[i];
        free(refd);
        be *b = test_cpu_backend(cs[t].threads);
        be_weight Wt, B;
        REQUIRE(be_weight_upload(b, &Wt, BE_W_CONV, O, C, 3, 3, BE_F32, w) == SD_OK);
        REQUIRE(be_weight_upload(b, &B, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
        be_tensor tx = test_upload(b, x, N, H, W, C), ty = be_new(b, N, H, W, O);
        be_conv2d(b, &tx, &Wt, &B, 1, 1, 1, &ty);
        REQUIRE_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
        float *got = test_download(b, &ty);
        CHECK_MAXERR(got, ref, (long)N * H * W * O, 2e-5);
        free(got);
        be_weight_free(b, &Wt);
        be_weight_free(b, &B);
        be_free(b);
        free(x); free(w); free(bias); free(ref);
    }
    cpu_conv_mode_set(mode);
}

/* GEMMs split by rows (many rows) and by columns (few rows, many outputs), with bias and activations. */
TEST(cpu_split_gemm_rows_and_columns) {
    static const int shapes[][3] = {{300, 70, 90}, {30, 300, 400}, {7, 1000, 256}};
    for (int s = 0; s < 3; s++) {
        int R = shapes[s][0], O = shapes[s][1], I = shapes[s][2];
        float *x = rnd((size_t)R * I, 1, 0), *w = rnd((size_t)O * I, 0.1f, 0), *bias = rnd(O, 0.5f, 0);
        float *lin = malloc((size_t)R * O * 4), *ref = malloc((size_t)R * O * 4);
        linear_ref(x, w, bias, R, I, O, lin);
        for (int i = 0; i < R * O; i++) ref[i] = (float)(lin[i] / (1 + exp(-(double)lin[i]))); /* SiLU */
        be *b = test_cpu_backend(0);
        be_weight W, B;
        REQUIRE(be_weight_upload(b, &W, BE_W_LINEAR, O, I, 1, 1, BE_F32, w) == SD_OK);
        REQUIRE(be_weight_upload(b, &B, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
        be_tensor tx = test_upload(b, x, 1, 1, R, I), ty = be_new(b, 1, 1, R, O);
        be_linear(b, &tx, &W, &B, BE_ACT_SILU, &ty);
        REQUIRE(be_status(b) == SD_OK);
        float *got = test_download(b, &ty);
        CHECK_MAXERR(got, ref, R * O, 2e-5);
        free(got);
        be_weight_free(b, &W);
        be_weight_free(b, &B);
        be_free(b);
        free(x); free(w); free(bias); free(lin); free(ref);
    }
}

/* Flash attention: several key blocks (online softmax rescaling), ragged query blocks, the head widths of
 * SD 1.x/2.x/XL and the VAE, ragged head widths, causal masks across key blocks. */
TEST(cpu_attention_key_blocks_and_head_widths) {
    static const struct { int N, Tq, Tk, C, Cv, heads, causal; float qs; } cs[] = {
        {2, 100, 600, 80, 80, 2, 0, 2},    /* head dim 40 (SD 1.x level 1), 3 key blocks with a tail */
        {1, 61, 300, 128, 128, 2, 0, 3},   /* head dim 64 (SD 2), large scores: the running max moves */
        {1, 50, 260, 160, 160, 1, 0, 1},   /* head dim 160 */
        {1, 40, 90, 72, 72, 1, 0, 2},      /* head dim 72: a ymm tail */
        {1, 33, 270, 60, 60, 3, 0, 2},     /* head dim 20: a ragged tail */
        {1, 20, 64, 512, 512, 1, 0, 1},    /* the VAE's single 512-wide head */
        {1, 300, 300, 24, 24, 2, 1, 2},    /* causal across key blocks */
        {2, 70, 77, 24, 48, 2, 0, 2},      /* value width differs, 77 keys (cross attention) */
    };
    cpu_level lv[CPU_LEVEL_COUNT];
    int nl = levels(lv);
    for (int l = 0; l < nl; l++) {
        cpu_level was = cpu_level_set(lv[l]);
        be *b = test_cpu_backend(0);
        double worst = 0;
        for (size_t t = 0; t < sizeof cs / sizeof *cs; t++) {
            int N = cs[t].N, Tq = cs[t].Tq, Tk = cs[t].Tk, C = cs[t].C, Cv = cs[t].Cv;
            float *q = rnd((size_t)N * Tq * C, cs[t].qs, 0), *k = rnd((size_t)N * Tk * C, 2, 0), *v = rnd((size_t)N * Tk * Cv, 1, 0);
            float *ref = malloc((size_t)N * Tq * Cv * 4);
            test_attention_ref(q, k, v, N, Tq, Tk, C, Cv, cs[t].heads, cs[t].causal, ref);
            size_t m = be_mark(b);
            be_tensor tq = test_upload(b, q, N, 1, Tq, C), tk = test_upload(b, k, N, 1, Tk, C), tv = test_upload(b, v, N, 1, Tk, Cv), ty = be_new(b, N, 1, Tq, Cv);
            be_attention(b, &tq, &tk, &tv, cs[t].heads, cs[t].causal, &ty);
            REQUIRE_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
            float *got = test_download(b, &ty);
            for (long i = 0; i < (long)N * Tq * Cv; i++)
                if (fabs(got[i] - ref[i]) > worst) worst = fabs(got[i] - ref[i]);
            CHECK_MAXERR(got, ref, (long)N * Tq * Cv, 1.5e-6); /* measured 7.4e-7 (both SIMD levels) */
            be_release(b, m);
            free(q); free(k); free(v); free(ref); free(got);
        }
        test_note("%s attention, 8 shapes: max abs err %.2e (tol 1.5e-6)", cpu_level_name(lv[l]), worst);
        be_free(b);
        cpu_level_set(was);
    }
}

/* GroupNorm over a large image (many row chunks) with a mean far from zero, in place, with SiLU. */
TEST(cpu_group_norm_many_chunks_offset_mean) {
    const int N = 2, H = 45, W = 61, C = 64, G = 32;
    float *x = rnd((size_t)N * H * W * C, 1.5f, 30.0f), *g = rnd(C, 1, 0), *bt = rnd(C, 1, 0);
    size_t hw = (size_t)H * W;
    float *ref = malloc((size_t)N * hw * C * 4);
    int cpg = C / G;
    for (int n = 0; n < N; n++)
        for (int gi = 0; gi < G; gi++) {
            double s = 0, v = 0, cnt = (double)hw * cpg;
            for (size_t p = 0; p < hw; p++)
                for (int j = 0; j < cpg; j++) s += x[(n * hw + p) * C + gi * cpg + j];
            double mean = s / cnt;
            for (size_t p = 0; p < hw; p++)
                for (int j = 0; j < cpg; j++) {
                    double d = x[(n * hw + p) * C + gi * cpg + j] - mean;
                    v += d * d;
                }
            double rstd = 1 / sqrt(v / cnt + 1e-6);
            for (size_t p = 0; p < hw; p++)
                for (int j = 0; j < cpg; j++) {
                    int c = gi * cpg + j;
                    size_t i = (n * hw + p) * C + c;
                    double o = (x[i] - mean) * rstd * g[c] + bt[c];
                    ref[i] = (float)(o / (1 + exp(-o)));
                }
        }
    cpu_level lv[CPU_LEVEL_COUNT];
    int nl = levels(lv);
    for (int l = 0; l < nl; l++) {
        cpu_level was = cpu_level_set(lv[l]);
        be *b = test_cpu_backend(0);
        be_weight Gw, Bw;
        REQUIRE(be_weight_upload(b, &Gw, BE_W_VEC, C, 1, 1, 1, BE_F32, g) == SD_OK);
        REQUIRE(be_weight_upload(b, &Bw, BE_W_VEC, C, 1, 1, 1, BE_F32, bt) == SD_OK);
        be_tensor tx = test_upload(b, x, N, H, W, C);
        be_group_norm(b, &tx, &Gw, &Bw, G, 1e-6f, 1, &tx); /* in place, as the ResNet block does */
        REQUIRE(be_status(b) == SD_OK);
        float *got = test_download(b, &tx);
        double worst = 0;
        for (size_t i = 0; i < (size_t)N * hw * C; i++)
            if (fabs(got[i] - ref[i]) > worst) worst = fabs(got[i] - ref[i]);
        test_note("%s GroupNorm+SiLU, mean 30, 2 x 2745 rows: max abs err %.2e (tol 3e-6)", cpu_level_name(lv[l]), worst);
        CHECK_MAXERR(got, ref, (long)N * hw * C, 3e-6); /* measured 1.43e-6 */
        free(got);
        be_weight_free(b, &Gw);
        be_weight_free(b, &Bw);
        be_free(b);
        cpu_level_set(was);
    }
    free(x); free(g); free(bt); free(ref);
}

/* 16-bit weights over 4 Mi elements are widened a block of output rows at a time: linear, slab conv, im2col conv. */
TEST(cpu_16bit_weights_in_row_blocks) {
    int mode = cpu_conv_mode_set(CPU_CONV_DIRECT);
    be *b = test_cpu_backend(0);
    const int R = 20, I = 4000, O = 1100;
    float *x = rnd((size_t)R * I, 1, 0), *w = rnd((size_t)O * I, 0.05f, 0), *bias = rnd(O, 0.3f, 0);
    uint16_t *w16 = malloc((size_t)O * I * 2);
    for (size_t i = 0; i < (size_t)O * I; i++) {
        w16[i] = f32_to_f16(w[i]);
        w[i] = f16_to_f32(w16[i]);
    }
    float *ref = malloc((size_t)R * O * 4);
    linear_ref(x, w, bias, R, I, O, ref);
    be_weight W, B;
    REQUIRE(be_weight_upload(b, &W, BE_W_LINEAR, O, I, 1, 1, BE_F16, w16) == SD_OK);
    REQUIRE(be_weight_upload(b, &B, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
    be_tensor tx = test_upload(b, x, 1, 1, R, I), ty = be_new(b, 1, 1, R, O);
    be_linear(b, &tx, &W, &B, BE_ACT_NONE, &ty);
    REQUIRE(be_status(b) == SD_OK);
    float *got = test_download(b, &ty);
    CHECK_MAXERR(got, ref, R * O, 2e-5);
    free(got);
    /* conv 3x3, 520 outputs x 900 inputs x 9 = 4.2 Mi weights: stride 1 (slab) and stride 2 (im2col) */
    const int C = 900, Oc = 520, H = 4, Wd = 16;
    float *cx = rnd((size_t)H * Wd * C, 1, 0), *cw = rnd((size_t)Oc * C * 9, 0.02f, 0);
    uint16_t *cw16 = malloc((size_t)Oc * C * 9 * 2);
    for (size_t i = 0; i < (size_t)Oc * C * 9; i++) {
        cw16[i] = f32_to_f16(cw[i]);
        cw[i] = f16_to_f32(cw16[i]);
    }
    be_weight CW;
    REQUIRE(be_weight_upload(b, &CW, BE_W_CONV, Oc, C, 3, 3, BE_F16, cw16) == SD_OK);
    for (int stride = 1; stride <= 2; stride++) {
        int Ho = (H + 2 - 3) / stride + 1, Wo = (Wd + 2 - 3) / stride + 1;
        float *cref = malloc((size_t)Ho * Wo * Oc * 4);
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++)
                for (int o = 0; o < Oc; o++) {
                    double s = 0;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int iy = oy * stride - 1 + ky, ix = ox * stride - 1 + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= Wd) continue;
                            for (int i = 0; i < C; i++) s += (double)cx[(iy * Wd + ix) * C + i] * cw[((size_t)(o * C + i) * 3 + ky) * 3 + kx];
                        }
                    cref[(oy * Wo + ox) * Oc + o] = (float)s;
                }
        size_t m = be_mark(b);
        be_tensor tcx = test_upload(b, cx, 1, H, Wd, C), tcy = be_new(b, 1, Ho, Wo, Oc);
        be_conv2d(b, &tcx, &CW, NULL, stride, 1, 1, &tcy);
        REQUIRE(be_status(b) == SD_OK);
        got = test_download(b, &tcy);
        CHECK_MAXERR(got, cref, Ho * Wo * Oc, 2e-5);
        free(got);
        free(cref);
        be_release(b, m);
    }
    be_weight_free(b, &W); be_weight_free(b, &B); be_weight_free(b, &CW);
    be_free(b);
    free(x); free(w); free(bias); free(w16); free(ref); free(cx); free(cw); free(cw16);
    cpu_conv_mode_set(mode);
}

/* be_arena_trim keeps what is below the top and leaves the arena usable above it. */
TEST(cpu_arena_trim_keeps_live_tensors) {
    be *b = test_cpu_backend(0);
    float *h = rnd(1 << 16, 1, 0);
    be_tensor live = test_upload(b, h, 1, 1, 256, 256);
    size_t m = be_mark(b);
    be_tensor dead = be_new(b, 1, 1024, 1024, 16); /* 64 MiB, touched, then released */
    be_act_fn(b, BE_ACT_NONE, &dead, &dead);
    be_release(b, m);
    be_arena_trim(b);
    float *got = test_download(b, &live);
    CHECK_MAXERR(got, h, 1 << 16, 0);
    be_tensor again = be_new(b, 1, 1, 256, 256);
    be_act_fn(b, BE_ACT_SILU, &live, &again);
    REQUIRE(be_status(b) == SD_OK);
    float *s = test_download(b, &again), *ref = malloc((1 << 16) * sizeof(float));
    for (int i = 0; i < 1 << 16; i++) ref[i] = (float)(h[i] / (1 + exp(-(double)h[i])));
    CHECK_MAXERR(s, ref, 1 << 16, 1e-6);
    be_measure_begin(b); /* a no-op in measure mode */
    be_arena_trim(b);
    be_measure_end(b);
    free(h); free(got); free(s); free(ref);
    be_free(b);
}
