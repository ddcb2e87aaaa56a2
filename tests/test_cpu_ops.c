/* test_cpu_ops.c — every op of the CPU backend against naive references written here, on ragged shapes. */
#include "test.h"
#include "be_test.h"
#include "../core/error.h"
#include "../kernels/backend.h"

#include <stdlib.h>

static uint32_t g_rs = 1;
static float frand(void) { /* uniform in [-1, 1) */
    g_rs = g_rs * 1664525u + 1013904223u;
    return (float)((g_rs >> 8) * (1.0 / 8388608.0)) - 1.0f;
}
static float *rnd(size_t n, float scale) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

static double act_ref(be_act a, double v) {
    switch (a) {
    case BE_ACT_SILU: return v / (1 + exp(-v));
    case BE_ACT_GELU: return 0.5 * v * (1 + erf(v / sqrt(2.0)));
    case BE_ACT_QUICK_GELU: return v / (1 + exp(-1.702 * v));
    case BE_ACT_RELU: return v < 0 ? 0 : v;
    default: return v;
    }
}

TEST(cpu_linear_with_bias_and_activations) {
    be *b = test_cpu_backend(0);
    const int R = 37, I = 29, O = 13;
    for (int a = 0; a < BE_ACT_COUNT; a++) {
        float *x = rnd(R * I, 1), *w = rnd(O * I, 0.5f), *bias = rnd(O, 0.5f), *ref = malloc(R * O * 4);
        for (int r = 0; r < R; r++)
            for (int o = 0; o < O; o++) {
                double s = bias[o];
                for (int i = 0; i < I; i++) s += (double)x[r * I + i] * w[o * I + i];
                ref[r * O + o] = (float)act_ref((be_act)a, s);
            }
        be_weight W, B;
        REQUIRE(be_weight_upload(b, &W, BE_W_LINEAR, O, I, 1, 1, BE_F32, w) == SD_OK);
        REQUIRE(be_weight_upload(b, &B, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
        size_t m = be_mark(b);
        be_tensor tx = test_upload(b, x, 1, 1, R, I), ty = be_new(b, 1, 1, R, O);
        be_linear(b, &tx, &W, &B, (be_act)a, &ty);
        REQUIRE(be_status(b) == SD_OK);
        float *got = test_download(b, &ty);
        CHECK_MAXERR(got, ref, R * O, 2e-5);
        be_release(b, m);
        be_weight_free(b, &W);
        be_weight_free(b, &B);
        free(x); free(w); free(bias); free(ref); free(got);
    }
    be_free(b);
}

static void conv_ref(const float *x, int N, int H, int W, int C, const float *w, const float *bias, int O, int kh, int kw,
                     int stride, int plo, int Ho, int Wo, float *y) {
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++)
                for (int o = 0; o < O; o++) {
                    double s = bias ? bias[o] : 0;
                    for (int i = 0; i < C; i++)
                        for (int ky = 0; ky < kh; ky++)
                            for (int kx = 0; kx < kw; kx++) {
                                int iy = oy * stride - plo + ky, ix = ox * stride - plo + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += (double)x[((n * H + iy) * W + ix) * C + i] * w[((o * C + i) * kh + ky) * kw + kx];
                            }
                    y[((n * Ho + oy) * Wo + ox) * O + o] = (float)s;
                }
}

TEST(cpu_conv2d_shapes) {
    be *b = test_cpu_backend(0);
    static const struct { int N, H, W, C, O, k, stride, plo, phi; } cs[] = {
        {2, 7, 5, 3, 11, 3, 1, 1, 1},   /* UNet/VAE 3x3 */
        {2, 9, 6, 5, 7, 3, 2, 1, 1},    /* UNet downsample */
        {1, 8, 11, 4, 6, 3, 2, 0, 1},   /* VAE encoder downsample: pad right/bottom only */
        {2, 5, 3, 13, 9, 1, 1, 0, 0},   /* 1x1 (GEMM path) */
        {1, 4, 4, 2, 3, 5, 1, 2, 2},    /* other kernel sizes */
    };
    for (size_t t = 0; t < sizeof cs / sizeof *cs; t++) {
        int N = cs[t].N, H = cs[t].H, W = cs[t].W, C = cs[t].C, O = cs[t].O, k = cs[t].k, s = cs[t].stride;
        int Ho = (H + cs[t].plo + cs[t].phi - k) / s + 1, Wo = (W + cs[t].plo + cs[t].phi - k) / s + 1;
        float *x = rnd((size_t)N * H * W * C, 1), *w = rnd((size_t)O * C * k * k, 0.3f), *bias = rnd(O, 0.3f);
        float *ref = malloc((size_t)N * Ho * Wo * O * 4);
        conv_ref(x, N, H, W, C, w, bias, O, k, k, s, cs[t].plo, Ho, Wo, ref);
        be_weight Wt, B;
        REQUIRE(be_weight_upload(b, &Wt, BE_W_CONV, O, C, k, k, BE_F32, w) == SD_OK);
        REQUIRE(be_weight_upload(b, &B, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
        size_t m = be_mark(b);
        be_tensor tx = test_upload(b, x, N, H, W, C), ty = be_new(b, N, Ho, Wo, O);
        be_conv2d(b, &tx, &Wt, &B, s, cs[t].plo, cs[t].phi, &ty);
        REQUIRE_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
        float *got = test_download(b, &ty);
        CHECK_MAXERR(got, ref, (long)N * Ho * Wo * O, 2e-5);
        be_release(b, m);
        be_weight_free(b, &Wt);
        be_weight_free(b, &B);
        free(x); free(w); free(bias); free(ref); free(got);
    }
    be_free(b);
}

TEST(cpu_group_norm_and_silu) {
    be *b = test_cpu_backend(0);
    const int N = 2, H = 5, W = 7, C = 12, G = 4;
    float *x = rnd(N * H * W * C, 2), *g = rnd(C, 1), *bt = rnd(C, 1);
    for (int i = 0; i < N * H * W * C; i++) x[i] += 3.0f; /* an offset mean exercises the two-pass variance */
    for (int silu = 0; silu < 2; silu++) {
        float *ref = malloc(N * H * W * C * 4);
        int cpg = C / G;
        for (int n = 0; n < N; n++)
            for (int gi = 0; gi < G; gi++) {
                double s = 0, v = 0, cnt = H * W * cpg;
                for (int p = 0; p < H * W; p++)
                    for (int j = 0; j < cpg; j++) s += x[(n * H * W + p) * C + gi * cpg + j];
                double mean = s / cnt;
                for (int p = 0; p < H * W; p++)
                    for (int j = 0; j < cpg; j++) {
                        double d = x[(n * H * W + p) * C + gi * cpg + j] - mean;
                        v += d * d;
                    }
                double rstd = 1 / sqrt(v / cnt + 1e-5);
                for (int p = 0; p < H * W; p++)
                    for (int j = 0; j < cpg; j++) {
                        int c = gi * cpg + j, i = (n * H * W + p) * C + c;
                        double o = (x[i] - mean) * rstd * g[c] + bt[c];
                        ref[i] = (float)(silu ? act_ref(BE_ACT_SILU, o) : o);
                    }
            }
        be_weight Wg, Wb;
        be_weight_upload(b, &Wg, BE_W_VEC, C, 1, 1, 1, BE_F32, g);
        be_weight_upload(b, &Wb, BE_W_VEC, C, 1, 1, 1, BE_F32, bt);
        size_t m = be_mark(b);
        be_tensor tx = test_upload(b, x, N, H, W, C), ty = be_new(b, N, H, W, C);
        be_group_norm(b, &tx, &Wg, &Wb, G, 1e-5f, silu, &ty);
        float *got = test_download(b, &ty);
        CHECK_MAXERR(got, ref, N * H * W * C, 1e-5);
        be_group_norm(b, &tx, &Wg, &Wb, G, 1e-5f, silu, &tx); /* in place is allowed */
        float *got2 = test_download(b, &tx);
        CHECK_MAXERR(got2, ref, N * H * W * C, 1e-5);
        REQUIRE(be_status(b) == SD_OK);
        be_release(b, m);
        be_weight_free(b, &Wg);
        be_weight_free(b, &Wb);
        free(ref); free(got); free(got2);
    }
    free(x); free(g); free(bt);
    be_free(b);
}

TEST(cpu_layer_norm) {
    be *b = test_cpu_backend(0);
    const int R = 19, C = 33;
    float *x = rnd(R * C, 3), *g = rnd(C, 1), *bt = rnd(C, 1), *ref = malloc(R * C * 4);
    for (int r = 0; r < R; r++) {
        double s = 0, v = 0;
        for (int j = 0; j < C; j++) s += x[r * C + j];
        double mean = s / C;
        for (int j = 0; j < C; j++) v += (x[r * C + j] - mean) * (x[r * C + j] - mean);
        for (int j = 0; j < C; j++) ref[r * C + j] = (float)((x[r * C + j] - mean) / sqrt(v / C + 1e-5) * g[j] + bt[j]);
    }
    be_weight Wg, Wb;
    be_weight_upload(b, &Wg, BE_W_VEC, C, 1, 1, 1, BE_F32, g);
    be_weight_upload(b, &Wb, BE_W_VEC, C, 1, 1, 1, BE_F32, bt);
    be_tensor tx = test_upload(b, x, 1, 1, R, C), ty = be_new(b, 1, 1, R, C);
    be_layer_norm(b, &tx, &Wg, &Wb, 1e-5f, &ty);
    float *got = test_download(b, &ty);
    CHECK_MAXERR(got, ref, R * C, 1e-5);
    CHECK(be_status(b) == SD_OK);
    be_weight_free(b, &Wg);
    be_weight_free(b, &Wb);
    free(x); free(g); free(bt); free(ref); free(got);
    be_free(b);
}

TEST(cpu_elementwise_ops) {
    be *b = test_cpu_backend(0);
    const int N = 2, H = 3, W = 5, C = 7;
    size_t n = N * H * W * C;
    float *x = rnd(n, 4), *x2 = rnd(2 * n, 4), *ref = malloc(2 * n * 4);
    be_tensor tx = test_upload(b, x, N, H, W, C), ty = be_new(b, N, H, W, C);
    for (int a = 1; a < BE_ACT_COUNT; a++) {
        be_act_fn(b, (be_act)a, &tx, &ty);
        float *got = test_download(b, &ty);
        for (size_t i = 0; i < n; i++) ref[i] = (float)act_ref((be_act)a, x[i]);
        CHECK_MAXERR(got, ref, (long)n, 2e-6);
        free(got);
    }
    /* geglu: [a | g] -> a * gelu(g) */
    be_tensor tg = test_upload(b, x2, N, H, W, 2 * C);
    be_geglu(b, &tg, &ty);
    float *got = test_download(b, &ty);
    for (size_t r = 0; r < n / C; r++)
        for (int j = 0; j < C; j++) ref[r * C + j] = (float)(x2[r * 2 * C + j] * act_ref(BE_ACT_GELU, x2[r * 2 * C + C + j]));
    CHECK_MAXERR(got, ref, (long)n, 2e-6);
    free(got);
    /* add: same shape, and broadcast of [N,1,1,C] (time embedding) and [1,1,W,C] (positions) */
    float *t1 = rnd(N * C, 1), *t2 = rnd(W * C, 1);
    be_tensor ta = test_upload(b, x2, N, H, W, C), tb = test_upload(b, t1, N, 1, 1, C), tp = test_upload(b, t2, 1, 1, W, C);
    be_add(b, &tx, &ta, 0.5f, &ty);
    got = test_download(b, &ty);
    for (size_t i = 0; i < n; i++) ref[i] = x[i] + 0.5f * x2[i];
    CHECK_MAXERR(got, ref, (long)n, 1e-6);
    free(got);
    be_add(b, &tx, &tb, 1.0f, &ty);
    got = test_download(b, &ty);
    for (size_t i = 0; i < n; i++) ref[i] = x[i] + t1[(i / (H * W * C)) * C + i % C];
    CHECK_MAXERR(got, ref, (long)n, 1e-6);
    free(got);
    be_add(b, &tx, &tp, 1.0f, &tx); /* in place */
    got = test_download(b, &tx);
    for (size_t i = 0; i < n; i++) ref[i] = x[i] + t2[(i / C) % W * C + i % C];
    CHECK_MAXERR(got, ref, (long)n, 1e-6);
    free(got);
    CHECK(be_status(b) == SD_OK);
    free(x); free(x2); free(ref); free(t1); free(t2);
    be_free(b);
}

TEST(cpu_upsample_concat_embedding) {
    be *b = test_cpu_backend(0);
    const int N = 2, H = 3, W = 5, C = 3;
    float *x = rnd(N * H * W * C, 1);
    /* exact 2x, and resize to an odd skip size (3 -> 5, 5 -> 9) as the UNet does for odd latents */
    int outs[2][2] = {{6, 10}, {5, 9}};
    for (int t = 0; t < 2; t++) {
        int Ho = outs[t][0], Wo = outs[t][1];
        be_tensor tx = test_upload(b, x, N, H, W, C), ty = be_new(b, N, Ho, Wo, C);
        be_upsample_nearest(b, &tx, &ty);
        float *got = test_download(b, &ty), *ref = malloc(N * Ho * Wo * C * 4);
        for (int n = 0; n < N; n++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    int iy = oy * H / Ho, ix = ox * W / Wo; /* integer floor of dst*in/out */
                    for (int c = 0; c < C; c++) ref[((n * Ho + oy) * Wo + ox) * C + c] = x[((n * H + iy) * W + ix) * C + c];
                }
        CHECK_MAXERR(got, ref, N * Ho * Wo * C, 0);
        free(got); free(ref);
    }
    float *a = rnd(N * H * W * 2, 1);
    be_tensor ta = test_upload(b, a, N, H, W, 2), tx = test_upload(b, x, N, H, W, C), ty = be_new(b, N, H, W, 2 + C);
    be_concat_channels(b, &ta, &tx, &ty);
    float *got = test_download(b, &ty);
    int ok = 1;
    for (int r = 0; r < N * H * W; r++) {
        for (int j = 0; j < 2; j++) ok &= got[r * 5 + j] == a[r * 2 + j];
        for (int j = 0; j < C; j++) ok &= got[r * 5 + 2 + j] == x[r * C + j];
    }
    CHECK(ok);
    free(got);
    float *table = rnd(10 * 4, 1);
    be_weight T;
    be_weight_upload(b, &T, BE_W_EMBED, 10, 4, 1, 1, BE_F32, table);
    int32_t ids[6] = {3, 0, 9, 9, 1, 5};
    be_tensor te = be_new(b, 2, 1, 3, 4);
    be_embedding(b, ids, &T, &te);
    got = test_download(b, &te);
    ok = 1;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++) ok &= got[i * 4 + j] == table[ids[i] * 4 + j];
    CHECK(ok);
    free(got);
    CHECK(be_status(b) == SD_OK);
    int32_t bad[6] = {3, 0, 10, 9, 1, 5};
    be_embedding(b, bad, &T, &te);
    CHECK(be_status(b) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "out of range");
    be_weight_free(b, &T);
    free(x); free(a); free(table);
    be_free(b);
}

TEST(cpu_attention_heads_and_mask) {
    be *b = test_cpu_backend(0);
    static const struct { int N, Tq, Tk, C, Cv, heads, causal; } cs[] = {
        {2, 13, 13, 24, 24, 3, 0},    /* self attention, head dim 8 */
        {2, 77, 77, 40, 40, 5, 1},    /* CLIP-like causal */
        {2, 150, 7, 30, 30, 2, 0},    /* cross attention, more queries than one block */
        {1, 70, 70, 20, 20, 1, 0},    /* single head (VAE) */
        {1, 9, 5, 12, 18, 3, 0},      /* value width differs */
    };
    for (size_t t = 0; t < sizeof cs / sizeof *cs; t++) {
        int N = cs[t].N, Tq = cs[t].Tq, Tk = cs[t].Tk, C = cs[t].C, Cv = cs[t].Cv;
        float *q = rnd(N * Tq * C, 2), *k = rnd(N * Tk * C, 2), *v = rnd(N * Tk * Cv, 1), *ref = malloc(N * Tq * Cv * 4);
        test_attention_ref(q, k, v, N, Tq, Tk, C, Cv, cs[t].heads, cs[t].causal, ref);
        size_t m = be_mark(b);
        be_tensor tq = test_upload(b, q, N, 1, Tq, C), tk = test_upload(b, k, N, 1, Tk, C), tv = test_upload(b, v, N, 1, Tk, Cv), ty = be_new(b, N, 1, Tq, Cv);
        be_attention(b, &tq, &tk, &tv, cs[t].heads, cs[t].causal, &ty);
        REQUIRE_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
        float *got = test_download(b, &ty);
        CHECK_MAXERR(got, ref, N * Tq * Cv, 1e-5);
        be_release(b, m);
        free(q); free(k); free(v); free(ref); free(got);
    }
    be_free(b);
}

TEST(cpu_timestep_embedding) {
    be *b = test_cpu_backend(0);
    float t[3] = {999.0f, 0.0f, 52.578949f};
    be_tensor y = be_new(b, 3, 1, 1, 32);
    be_timestep_embedding(b, t, 1, 0.0f, &y);
    float *got = test_download(b, &y), ref[96];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 16; j++) {
            double f = exp(-log(10000.0) * j / 16.0);
            ref[i * 32 + j] = (float)cos(t[i] * f); /* flip_sin_to_cos: cos first */
            ref[i * 32 + 16 + j] = (float)sin(t[i] * f);
        }
    CHECK_MAXERR(got, ref, 96, 5e-4); /* f32 argument rounding at t=999 bounds the agreement */
    free(got);
    be_free(b);
}

TEST(backend_shape_errors_and_measure) {
    be *b = test_cpu_backend(0);
    be_tensor x = be_new(b, 1, 2, 3, 4), y = be_new(b, 1, 2, 3, 5);
    be_act_fn(b, BE_ACT_SILU, &x, &y);
    CHECK(be_status(b) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "act");
    be_clear_error(b);
    float w[20] = {0};
    be_weight W;
    be_weight_upload(b, &W, BE_W_LINEAR, 5, 3, 1, 1, BE_F32, w); /* in = 3 but x has 4 channels */
    be_linear(b, &x, &W, NULL, BE_ACT_NONE, &y);
    CHECK(be_status(b) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "linear");
    be_clear_error(b);
    be_weight_free(b, &W);
    /* measure mode: allocations are counted, nothing runs, the real arena is untouched */
    size_t used = b->arena.used;
    be_measure_begin(b);
    be_tensor big = be_new(b, 1, 1000, 1000, 64);
    be_tensor big2 = be_new(b, 1, 1000, 1000, 64);
    be_act_fn(b, BE_ACT_SILU, &big, &big2);
    size_t peak = be_measure_end(b);
    CHECK(peak >= 2 * 64000000ull * 4 - 512);
    CHECK(b->arena.used == used);
    CHECK(be_status(b) == SD_OK);
    /* exhaustion is an error, not a crash */
    be_tensor huge = be_new(b, 1, 1 << 14, 1 << 14, 64);
    CHECK(huge.data == NULL);
    CHECK(be_status(b) == SD_ERR_MEMORY);
    CHECK_STR_CONTAINS(sd_last_error(), "activation memory");
    be_free(b);
}
