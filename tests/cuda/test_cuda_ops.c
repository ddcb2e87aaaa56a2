/* test_cuda_ops.c — every op of the CUDA backend against the CPU backend on ragged shapes (odd H and W, C not a
 * multiple of 8, batch 2), in each storage type (f16, bf16, f32). Runs on the emulator in `make test` (under
 * four thread schedules) and unchanged on a GPU (`make cuda-test-bin`).
 *
 * How the tolerances are set: inputs and GEMM weights are first rounded to the storage type, so both backends
 * compute from identical values and the CPU result (f32, exact inputs) differs from the CUDA one only by the
 * roundings the CUDA backend makes on the way. u is the unit roundoff of the storage type (f16 2^-11, bf16
 * 2^-8): one rounding to nearest is off by at most u·|value|. Each op's tolerance is the number of roundings
 * on its path times u, relative to the output's scale (named per op), plus a small f32 slack for summation
 * order and libm differences. Pure data movement (upsample, concat, embedding) must be exact. */
#include "cuda_op_util.h"

/* ---- conversion ---- */

TEST(cuda_op_upload_download_rounding) {
    /* f32 -> storage -> f32 must be exactly core/half.h's round-to-nearest-even, specials included */
    static const float special[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.0f, 65520.0f, -1e6f, 1e-8f, 5.9604645e-08f, 3e-5f, 3.3895314e38f, INFINITY};
    const size_t ns = sizeof special / sizeof *special, n = 2 * 3 * 5 * 7;
    for (int d = 0; d < 3; d++) {
        be *g = mk_gpu(DTS[d]);
        float *x = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) x[i] = i < ns ? special[i] : frand() * powf(2.0f, (float)(i % 40) - 20.0f);
        for (size_t i = 0; i < n; i++) want[i] = quant1(x[i], DTS[d]);
        be_tensor t = put(g, x, 2, 3, 5, 7);
        float *got = get(g, &t);
        int bad = 0;
        for (size_t i = 0; i < n; i++) bad += memcmp(&got[i], &want[i], sizeof(float)) != 0;
        CHECK_MSG(bad == 0, "[%s] %d of %zu values differ from round-to-nearest-even", dt_name(DTS[d]), bad, n);
        CHECK(be_status(g) == SD_OK);
        free(x); free(want); free(got);
        be_free(g);
    }
}

/* ---- GEMM-shaped ops ---- */

TEST(cuda_op_linear) {
    const int N = 2, H = 3, W = 7, I = 29, O = 13;
    const size_t rows = (size_t)N * H * W;
    for (int d = 0; d < 3; d++) {
        be_dtype t = DTS[d];
        be *g = mk_gpu(t), *c = mk_cpu();
        float *x = rnd(rows * I, 1, 0, t), *w = rnd((size_t)O * I, 0.5f, 0, t), *bias = rnd(O, 0.5f, 0, BE_F32);
        be_weight wg, bg, wc, bc;
        REQUIRE(be_weight_upload(g, &wg, BE_W_LINEAR, O, I, 1, 1, BE_F32, w) == SD_OK);
        REQUIRE(be_weight_upload(g, &bg, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
        REQUIRE(be_weight_upload(c, &wc, BE_W_LINEAR, O, I, 1, 1, BE_F32, w) == SD_OK);
        REQUIRE(be_weight_upload(c, &bc, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
        be_tensor xg = put(g, x, N, H, W, I), xc = put(c, x, N, H, W, I), yg = be_new(g, N, H, W, O), yc = be_new(c, N, H, W, O);
        be_linear(c, &xc, &wc, NULL, BE_ACT_NONE, &yc);
        float *z = get(c, &yc);  /* the bare product sets the scale: its rounding is the first error */
        double worst = 0;
        for (int a = 0; a < BE_ACT_COUNT; a++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                be_linear(g, &xg, &wg, with_bias ? &bg : NULL, (be_act)a, &yg);
                be_linear(c, &xc, &wc, with_bias ? &bc : NULL, (be_act)a, &yc);
                float *got = get(g, &yg), *want = get(c, &yc);
                double scale = fmax(maxabs(z, rows * O), maxabs(want, rows * O));
                worst = fmax(worst, rel_err(got, want, rows * O, scale));
                free(got); free(want);
            }
        /* product rounded (u), then bias + activation rounded again (u); activations have slope <= 1.13 */
        judge("linear 42x29 -> 13, 5 activations, with/without bias", t, worst, 2.2 * unit(t) + SLACK);
        check_clean(g, c);
        be_weight_free(g, &wg); be_weight_free(g, &bg); be_weight_free(c, &wc); be_weight_free(c, &bc);
        free(x); free(w); free(bias); free(z);
        be_free(g); be_free(c);
    }
}

TEST(cuda_op_conv2d) {
    static const struct { int N, H, W, C, O, k, stride, plo, phi; } cs[] = {
        {2, 7, 5, 3, 11, 3, 1, 1, 1},  /* UNet/VAE 3x3 */
        {2, 9, 7, 5, 7, 3, 2, 1, 1},   /* UNet downsample */
        {1, 8, 11, 4, 6, 3, 2, 0, 1},  /* VAE encoder downsample: pad right/bottom only */
        {2, 5, 3, 13, 9, 1, 1, 0, 0},  /* 1x1: one GEMM */
        {1, 4, 5, 2, 3, 5, 1, 2, 2},   /* other kernel sizes */
    };
    for (int d = 0; d < 3; d++) {
        be_dtype t = DTS[d];
        be *g = mk_gpu(t), *c = mk_cpu();
        double worst = 0;
        for (size_t k = 0; k < sizeof cs / sizeof *cs; k++) {
            int N = cs[k].N, H = cs[k].H, W = cs[k].W, C = cs[k].C, O = cs[k].O, K = cs[k].k, s = cs[k].stride;
            int Ho = (H + cs[k].plo + cs[k].phi - K) / s + 1, Wo = (W + cs[k].plo + cs[k].phi - K) / s + 1;
            size_t nw = (size_t)O * C * K * K, ny = (size_t)N * Ho * Wo * O;
            float *x = rnd((size_t)N * H * W * C, 1, 0, t), *w = rnd(nw, 0.3f, 0, t), *bias = rnd(O, 0.3f, 0, BE_F32);
            /* the weight arrives in each source type the loader passes on (f32, f16, bf16 checkpoints) */
            uint16_t *w16 = malloc(nw * 2);
            if (t == BE_F16) f32_to_f16_array(w, w16, nw);
            if (t == BE_BF16) f32_to_bf16_array(w, w16, nw);
            be_weight wg, bg, wc, bc;
            REQUIRE(be_weight_upload(g, &wg, BE_W_CONV, O, C, K, K, t, t == BE_F32 ? (const void *)w : (const void *)w16) == SD_OK);
            REQUIRE(be_weight_upload(g, &bg, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
            REQUIRE(be_weight_upload(c, &wc, BE_W_CONV, O, C, K, K, BE_F32, w) == SD_OK);
            REQUIRE(be_weight_upload(c, &bc, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
            size_t mg = be_mark(g), mc = be_mark(c);
            be_tensor xg = put(g, x, N, H, W, C), xc = put(c, x, N, H, W, C), yg = be_new(g, N, Ho, Wo, O), yc = be_new(c, N, Ho, Wo, O);
            be_conv2d(c, &xc, &wc, NULL, s, cs[k].plo, cs[k].phi, &yc);
            float *z = get(c, &yc);
            be_conv2d(g, &xg, &wg, &bg, s, cs[k].plo, cs[k].phi, &yg);
            be_conv2d(c, &xc, &wc, &bc, s, cs[k].plo, cs[k].phi, &yc);
            float *got = get(g, &yg), *want = get(c, &yc);
            worst = fmax(worst, rel_err(got, want, ny, fmax(maxabs(z, ny), maxabs(want, ny))));
            be_release(g, mg);
            be_release(c, mc);
            be_weight_free(g, &wg); be_weight_free(g, &bg); be_weight_free(c, &wc); be_weight_free(c, &bc);
            free(x); free(w); free(w16); free(bias); free(z); free(got); free(want);
        }
        judge("conv2d 3x3 s1/s2, asymmetric pad, 1x1, 5x5 (+bias)", t, worst, 2.2 * unit(t) + SLACK);
        check_clean(g, c);
        be_free(g); be_free(c);
    }
}

/* The im2col path in several chunks of output rows gives the same result as in one. */
TEST(cuda_op_conv2d_chunked) {
    const int N = 2, H = 9, W = 7, C = 5, O = 6;
    float *x = rnd((size_t)N * H * W * C, 1, 0, BE_F16), *w = rnd((size_t)O * C * 9, 0.3f, 0, BE_F16);
    float *out[2];
    for (int i = 0; i < 2; i++) {
        if (i) setenv("SD_CUDA_SCRATCH_BYTES", "1000", 1); /* 11 rows of 45 f16 columns per chunk */
        be *g = mk_gpu(BE_F16);
        unsetenv("SD_CUDA_SCRATCH_BYTES");
        be_weight wg;
        REQUIRE(be_weight_upload(g, &wg, BE_W_CONV, O, C, 3, 3, BE_F32, w) == SD_OK);
        be_tensor xg = put(g, x, N, H, W, C), yg = be_new(g, N, H, W, O);
        be_conv2d(g, &xg, &wg, NULL, 1, 1, 1, &yg);
        out[i] = get(g, &yg);
        REQUIRE_MSG(be_status(g) == SD_OK, "%s", sd_last_error());
        be_weight_free(g, &wg);
        be_free(g);
    }
    CHECK(!memcmp(out[0], out[1], (size_t)N * H * W * O * sizeof(float)));
    free(x); free(w); free(out[0]); free(out[1]);
}

/* ---- normalisation ---- */

TEST(cuda_op_group_norm) {
    static const struct { int N, H, W, C, G; float offset; } cs[] = {
        {2, 5, 7, 12, 4, 3.0f},    /* offset mean: the variance must not cancel */
        {2, 9, 11, 40, 8, -1.0f},  /* 5 channels per group */
        {1, 13, 3, 9, 9, 0.0f},    /* one channel per group */
        {2, 3, 5, 6, 1, 0.5f},     /* one group */
    };
    for (int d = 0; d < 3; d++) {
        be_dtype t = DTS[d];
        be *g = mk_gpu(t), *c = mk_cpu();
        double worst = 0;
        for (size_t k = 0; k < sizeof cs / sizeof *cs; k++) {
            int N = cs[k].N, H = cs[k].H, W = cs[k].W, C = cs[k].C, G = cs[k].G;
            size_t n = (size_t)N * H * W * C;
            float *x = rnd(n, 2, cs[k].offset, t), *ga = rnd(C, 1, 0, BE_F32), *bt = rnd(C, 1, 0, BE_F32);
            be_weight gg, bg, gc, bc;
            REQUIRE(be_weight_upload(g, &gg, BE_W_VEC, C, 1, 1, 1, BE_F32, ga) == SD_OK);
            REQUIRE(be_weight_upload(g, &bg, BE_W_VEC, C, 1, 1, 1, BE_F32, bt) == SD_OK);
            REQUIRE(be_weight_upload(c, &gc, BE_W_VEC, C, 1, 1, 1, BE_F32, ga) == SD_OK);
            REQUIRE(be_weight_upload(c, &bc, BE_W_VEC, C, 1, 1, 1, BE_F32, bt) == SD_OK);
            for (int silu = 0; silu < 2; silu++) {
                size_t mg = be_mark(g), mc = be_mark(c);
                be_tensor xg = put(g, x, N, H, W, C), xc = put(c, x, N, H, W, C), yg = be_new(g, N, H, W, C), yc = be_new(c, N, H, W, C);
                be_group_norm(g, &xg, &gg, &bg, G, 1e-5f, silu, &yg);
                be_group_norm(c, &xc, &gc, &bc, G, 1e-5f, silu, &yc);
                float *got = get(g, &yg), *want = get(c, &yc);
                worst = fmax(worst, rel_err(got, want, n, maxabs(want, n)));
                be_group_norm(g, &xg, &gg, &bg, G, 1e-5f, silu, &xg); /* in place */
                float *got2 = get(g, &xg);
                worst = fmax(worst, rel_err(got2, want, n, maxabs(want, n)));
                free(got); free(got2); free(want);
                be_release(g, mg);
                be_release(c, mc);
            }
            be_weight_free(g, &gg); be_weight_free(g, &bg); be_weight_free(c, &gc); be_weight_free(c, &bc);
            free(x); free(ga); free(bt);
        }
        /* one rounding of the output; statistics in f32 */
        judge("group_norm (+SiLU, in place) 4 shapes", t, worst, unit(t) + SLACK);
        check_clean(g, c);
        be_free(g); be_free(c);
    }
}

/* More pixels per group than one block takes: the partial statistics are merged across blocks. */
TEST(cuda_op_group_norm_many_chunks) {
    const int N = 2, H = 67, W = 65, C = 16, G = 2; /* 4355 pixels x 8 channels: 5 chunks per group */
    size_t n = (size_t)N * H * W * C;
    be *g = mk_gpu(BE_F16), *c = mk_cpu();
    float *x = rnd(n, 1, 0, BE_F32), *ga = rnd(C, 1, 0, BE_F32), *bt = rnd(C, 1, 0, BE_F32);
    /* a ramp down the rows: the chunks' means differ, so merging them must account for it */
    for (size_t i = 0; i < n; i++) x[i] = quant1(10.0f + 4.0f * (float)(i / ((size_t)W * C) % H) / H + x[i], BE_F16);
    be_weight gg, bg, gc, bc;
    REQUIRE(be_weight_upload(g, &gg, BE_W_VEC, C, 1, 1, 1, BE_F32, ga) == SD_OK);
    REQUIRE(be_weight_upload(g, &bg, BE_W_VEC, C, 1, 1, 1, BE_F32, bt) == SD_OK);
    REQUIRE(be_weight_upload(c, &gc, BE_W_VEC, C, 1, 1, 1, BE_F32, ga) == SD_OK);
    REQUIRE(be_weight_upload(c, &bc, BE_W_VEC, C, 1, 1, 1, BE_F32, bt) == SD_OK);
    be_tensor xg = put(g, x, N, H, W, C), xc = put(c, x, N, H, W, C), yg = be_new(g, N, H, W, C), yc = be_new(c, N, H, W, C);
    be_group_norm(g, &xg, &gg, &bg, G, 1e-6f, 1, &yg);
    be_group_norm(c, &xc, &gc, &bc, G, 1e-6f, 1, &yc);
    float *got = get(g, &yg), *want = get(c, &yc);
    judge("group_norm+SiLU 2x67x65x16, 5 chunks per group, ramp 10..14", BE_F16, rel_err(got, want, n, maxabs(want, n)), unit(BE_F16) + SLACK);
    check_clean(g, c);
    be_weight_free(g, &gg); be_weight_free(g, &bg); be_weight_free(c, &gc); be_weight_free(c, &bc);
    free(x); free(ga); free(bt); free(got); free(want);
    be_free(g); be_free(c);
}

TEST(cuda_op_layer_norm) {
    static const struct { int N, T, C; } cs[] = {{2, 37, 33}, {2, 7, 320}, {1, 3, 1}};
    for (int d = 0; d < 3; d++) {
        be_dtype t = DTS[d];
        be *g = mk_gpu(t), *c = mk_cpu();
        double worst = 0;
        for (size_t k = 0; k < sizeof cs / sizeof *cs; k++) {
            int N = cs[k].N, T = cs[k].T, C = cs[k].C;
            size_t n = (size_t)N * T * C;
            float *x = rnd(n, 3, 1.0f, t), *ga = rnd(C, 1, 0, BE_F32), *bt = rnd(C, 1, 0, BE_F32);
            be_weight gg, bg, gc, bc;
            REQUIRE(be_weight_upload(g, &gg, BE_W_VEC, C, 1, 1, 1, BE_F32, ga) == SD_OK);
            REQUIRE(be_weight_upload(g, &bg, BE_W_VEC, C, 1, 1, 1, BE_F32, bt) == SD_OK);
            REQUIRE(be_weight_upload(c, &gc, BE_W_VEC, C, 1, 1, 1, BE_F32, ga) == SD_OK);
            REQUIRE(be_weight_upload(c, &bc, BE_W_VEC, C, 1, 1, 1, BE_F32, bt) == SD_OK);
            size_t mg = be_mark(g), mc = be_mark(c);
            be_tensor xg = put(g, x, N, 1, T, C), xc = put(c, x, N, 1, T, C), yg = be_new(g, N, 1, T, C), yc = be_new(c, N, 1, T, C);
            be_layer_norm(g, &xg, &gg, &bg, 1e-5f, &yg);
            be_layer_norm(c, &xc, &gc, &bc, 1e-5f, &yc);
            float *got = get(g, &yg), *want = get(c, &yc);
            worst = fmax(worst, rel_err(got, want, n, maxabs(want, n)));
            free(got); free(want);
            be_release(g, mg);
            be_release(c, mc);
            be_weight_free(g, &gg); be_weight_free(g, &bg); be_weight_free(c, &gc); be_weight_free(c, &bc);
            free(x); free(ga); free(bt);
        }
        judge("layer_norm C = 33, 320, 1", t, worst, unit(t) + SLACK);
        check_clean(g, c);
        be_free(g); be_free(c);
    }
}

/* ---- element-wise ---- */

TEST(cuda_op_activations_geglu_add) {
    const int N = 2, H = 5, W = 7, C = 13;
    const size_t n = (size_t)N * H * W * C;
    for (int d = 0; d < 3; d++) {
        be_dtype t = DTS[d];
        be *g = mk_gpu(t), *c = mk_cpu();
        float *x = rnd(n, 4, 0, t), *x2 = rnd(2 * n, 3, 0, t);
        double act_err = 0, geglu_err, add_err = 0;
        be_tensor xg = put(g, x, N, H, W, C), xc = put(c, x, N, H, W, C), yg = be_new(g, N, H, W, C), yc = be_new(c, N, H, W, C);
        for (int a = 1; a < BE_ACT_COUNT; a++) {
            be_act_fn(g, (be_act)a, &xg, &yg);
            be_act_fn(c, (be_act)a, &xc, &yc);
            float *got = get(g, &yg), *want = get(c, &yc);
            act_err = fmax(act_err, rel_err(got, want, n, maxabs(want, n)));
            free(got); free(want);
        }
        /* GEGLU: [.., 2C] -> [.., C] */
        be_tensor pg = put(g, x2, N, H, W, 2 * C), pc = put(c, x2, N, H, W, 2 * C);
        be_geglu(g, &pg, &yg);
        be_geglu(c, &pc, &yc);
        float *got = get(g, &yg), *want = get(c, &yc);
        geglu_err = rel_err(got, want, n, maxabs(want, n));
        free(got); free(want);
        /* add, with each broadcast pattern the models use, and y aliasing a */
        static const int bc[][3] = {{N, H, W}, {N, 1, 1}, {1, H, W}, {1, 1, W}, {N, H, 1}, {1, 1, 1}};
        for (size_t k = 0; k < sizeof bc / sizeof *bc; k++) {
            size_t m = (size_t)bc[k][0] * bc[k][1] * bc[k][2] * C;
            float *v = rnd(m, 2, 0, t);
            size_t mg = be_mark(g), mc = be_mark(c);
            be_tensor vg = put(g, v, bc[k][0], bc[k][1], bc[k][2], C), vc = put(c, v, bc[k][0], bc[k][1], bc[k][2], C);
            be_tensor ag = put(g, x, N, H, W, C), ac = put(c, x, N, H, W, C);
            float alpha = k % 2 ? -0.5f : 1.0f;
            be_add(g, &ag, &vg, alpha, &ag);
            be_add(c, &ac, &vc, alpha, &ac);
            got = get(g, &ag);
            want = get(c, &ac);
            add_err = fmax(add_err, rel_err(got, want, n, maxabs(want, n)));
            free(got); free(want); free(v);
            be_release(g, mg);
            be_release(c, mc);
        }
        /* each is computed in f32 from the same inputs and rounded once */
        judge("SiLU / GELU / QuickGELU / ReLU", t, act_err, unit(t) + SLACK);
        judge("GEGLU", t, geglu_err, unit(t) + SLACK);
        judge("add, 6 broadcast patterns, in place", t, add_err, unit(t) + SLACK);
        check_clean(g, c);
        free(x); free(x2);
        be_free(g); be_free(c);
    }
}

/* The same element-wise ops with channel counts that allow 16-byte loads and stores (the other tests' 13, 11 and 6
 * take the element-at-a-time path). */
TEST(cuda_op_eltwise_16byte) {
    const int N = 2, H = 5, W = 3, C = 24, C2 = 16;
    const size_t n = (size_t)N * H * W * C;
    for (int d = 0; d < 3; d++) {
        be_dtype t = DTS[d];
        be *g = mk_gpu(t), *c = mk_cpu();
        float *x = rnd(n, 4, 0, t), *x2 = rnd(2 * n, 3, 0, t), *v = rnd((size_t)N * W * C, 2, 0, t), *z = rnd((size_t)N * H * W * C2, 1, 0, t);
        double err = 0;
        int exact_bad = 0;
        be_tensor xg = put(g, x, N, H, W, C), xc = put(c, x, N, H, W, C), yg = be_new(g, N, H, W, C), yc = be_new(c, N, H, W, C);
        be_tensor pg = put(g, x2, N, H, W, 2 * C), pc = put(c, x2, N, H, W, 2 * C);
        be_tensor vg = put(g, v, N, 1, W, C), vc = put(c, v, N, 1, W, C);
        for (int op = 0; op < 3; op++) {
            if (op == 0) { be_act_fn(g, BE_ACT_SILU, &xg, &yg); be_act_fn(c, BE_ACT_SILU, &xc, &yc); }
            if (op == 1) { be_geglu(g, &pg, &yg); be_geglu(c, &pc, &yc); }
            if (op == 2) { be_add(g, &xg, &vg, -0.5f, &yg); be_add(c, &xc, &vc, -0.5f, &yc); }
            float *got = get(g, &yg), *want = get(c, &yc);
            err = fmax(err, rel_err(got, want, n, maxabs(want, n)));
            free(got); free(want);
        }
        be_tensor ug = be_new(g, N, 2 * H, 2 * W, C), uc = be_new(c, N, 2 * H, 2 * W, C);
        be_upsample_nearest(g, &xg, &ug);
        be_upsample_nearest(c, &xc, &uc);
        float *got = get(g, &ug), *want = get(c, &uc);
        exact_bad += memcmp(got, want, be_numel(&uc) * sizeof(float)) != 0;
        free(got); free(want);
        be_tensor zg = put(g, z, N, H, W, C2), zc = put(c, z, N, H, W, C2), kg = be_new(g, N, H, W, C + C2), kc = be_new(c, N, H, W, C + C2);
        be_concat_channels(g, &xg, &zg, &kg);
        be_concat_channels(c, &xc, &zc, &kc);
        got = get(g, &kg);
        want = get(c, &kc);
        exact_bad += memcmp(got, want, be_numel(&kc) * sizeof(float)) != 0;
        free(got); free(want);
        judge("SiLU / GEGLU / broadcast add, 24 channels (16-byte IO)", t, err, unit(t) + SLACK);
        CHECK_MSG(exact_bad == 0, "[%s] upsample / concat with 16-byte IO differ from the CPU in %d of 2", dt_name(t), exact_bad);
        check_clean(g, c);
        free(x); free(x2); free(v); free(z);
        be_free(g); be_free(c);
    }
}

/* ---- attention ---- */

typedef struct attn_case { int N, tq_h, tq_w, tk, heads, d, dv, causal; } attn_case;

/* Runs one attention case on both backends; returns max |err| / max |v| (each output is an average of v rows). */
static double attention_err(be *g, be *c, be_dtype t, const attn_case *a, float scale) {
    int N = a->N, Tq = a->tq_h * a->tq_w, Tk = a->tk, qc = a->heads * a->d, vc = a->heads * a->dv;
    float *q = rnd((size_t)N * Tq * qc, scale, 0, t), *k = rnd((size_t)N * Tk * qc, scale, 0, t), *v = rnd((size_t)N * Tk * vc, scale, 0, t);
    size_t mg = be_mark(g), mc = be_mark(c), ny = (size_t)N * Tq * vc;
    be_tensor qg = put(g, q, N, a->tq_h, a->tq_w, qc), kg = put(g, k, N, 1, Tk, qc), vg = put(g, v, N, 1, Tk, vc), yg = be_new(g, N, a->tq_h, a->tq_w, vc);
    be_tensor qq = put(c, q, N, a->tq_h, a->tq_w, qc), kk = put(c, k, N, 1, Tk, qc), vv = put(c, v, N, 1, Tk, vc), yc = be_new(c, N, a->tq_h, a->tq_w, vc);
    be_attention(g, &qg, &kg, &vg, a->heads, a->causal, &yg);
    be_attention(c, &qq, &kk, &vv, a->heads, a->causal, &yc);
    float *got = get(g, &yg), *want = get(c, &yc);
    double e = rel_err(got, want, ny, maxabs(v, (size_t)N * Tk * vc));
    be_release(g, mg);
    be_release(c, mc);
    free(q); free(k); free(v); free(got); free(want);
    return e;
}

static const attn_case ATTN_CASES[] = {
    {2, 5, 7, 35, 2, 40, 40, 0},     /* self-attention on a 5x7 latent, head dim 40 (SD 1.x level 0) */
    {2, 3, 5, 77, 1, 80, 80, 0},     /* cross-attention to 77 tokens, head dim 80 */
    {1, 1, 13, 13, 2, 160, 160, 0},  /* head dim 160 */
    {2, 1, 11, 11, 3, 8, 8, 1},      /* causal (CLIP) */
    {2, 1, 9, 5, 4, 10, 6, 0},       /* v narrower than q/k, more queries than keys */
    {1, 3, 3, 4, 1, 33, 33, 1},      /* causal with more queries than keys */
    {1, 10, 15, 150, 2, 40, 40, 0},  /* several query blocks and key tiles (flash: 3 x 3) */
    {1, 1, 77, 77, 2, 16, 16, 1},    /* causal over several tiles (CLIP's 77 tokens) */
    {1, 4, 17, 77, 1, 160, 160, 0},  /* wide heads: 32-key tiles, 3 of them, the last partial */
    {2, 8, 9, 77, 2, 64, 64, 0},     /* SD 2.x / SDXL head dim 64, cross-attention, 2 query blocks */
    {1, 9, 15, 135, 1, 64, 64, 0},   /* head dim 64 self-attention: 3 query blocks, 3 key tiles, the last partial */
};

/* Both paths (fused kernel, and cuBLAS + softmax) in 16-bit storage; f32 storage always takes cuBLAS. */
TEST(cuda_op_attention) {
    for (int d = 0; d < 3; d++)
        for (int path = 0; path < (DTS[d] == BE_F32 ? 1 : 2); path++) {
            be_dtype t = DTS[d];
            if (path) setenv("SD_CUDA_ATTENTION", "cublas", 1);
            be *g = mk_gpu(t), *c = mk_cpu();
            unsetenv("SD_CUDA_ATTENTION");
            double worst = 0;
            for (size_t i = 0; i < sizeof ATTN_CASES / sizeof *ATTN_CASES; i++) worst = fmax(worst, attention_err(g, c, t, &ATTN_CASES[i], 1.5f));
            /* probabilities rounded (u each: sum |dp·v| <= u·max|v|), output rounded (u) */
            judge(t != BE_F32 && !path ? "attention (flash) d = 40/80/160/64/8/10/33/16, causal, cross, dv != d, multi-tile"
                                       : "attention (cuBLAS) d = 40/80/160/64/8/10/33/16, causal, cross, dv != d, multi-tile",
                  t, worst, 2 * unit(t) + SLACK);
            check_clean(g, c);
            be_free(g); be_free(c);
        }
}

/* Reference path: scores chunked by heads, then by queries, when the score buffer would exceed the scratch budget. */
TEST(cuda_op_attention_chunked) {
    static const char *budgets[] = {"2000", "200"}; /* f16 score rows of 35 keys take 210 bytes */
    be *c = mk_cpu();
    for (int i = 0; i < 2; i++) {
        setenv("SD_CUDA_SCRATCH_BYTES", budgets[i], 1);
        setenv("SD_CUDA_ATTENTION", "cublas", 1);
        be *g = mk_gpu(BE_F16);
        unsetenv("SD_CUDA_SCRATCH_BYTES");
        unsetenv("SD_CUDA_ATTENTION");
        attn_case a = {2, 5, 7, 35, 3, 16, 16, i};
        char what[96];
        snprintf(what, sizeof what, "attention, scratch budget %s bytes%s", budgets[i], i ? ", causal" : "");
        judge(what, BE_F16, attention_err(g, c, BE_F16, &a, 1.0f), 2 * unit(BE_F16) + SLACK);
        check_clean(g, c);
        be_free(g);
    }
    be_free(c);
}

/* ---- data movement (exact) ---- */

TEST(cuda_op_upsample_concat_embedding) {
    const int N = 2, H = 5, W = 7, C = 11, C2 = 6;
    for (int d = 0; d < 3; d++) {
        be_dtype t = DTS[d];
        be *g = mk_gpu(t), *c = mk_cpu();
        float *x = rnd((size_t)N * H * W * C, 1, 0, t), *x2 = rnd((size_t)N * H * W * C2, 1, 0, t);
        be_tensor xg = put(g, x, N, H, W, C), xc = put(c, x, N, H, W, C);
        static const int outs[][2] = {{10, 14}, {9, 13}, {5, 8}};
        int bad = 0;
        for (int k = 0; k < 3; k++) {
            size_t mg = be_mark(g), mc = be_mark(c), n = (size_t)N * outs[k][0] * outs[k][1] * C;
            be_tensor yg = be_new(g, N, outs[k][0], outs[k][1], C), yc = be_new(c, N, outs[k][0], outs[k][1], C);
            be_upsample_nearest(g, &xg, &yg);
            be_upsample_nearest(c, &xc, &yc);
            float *got = get(g, &yg), *want = get(c, &yc);
            bad += memcmp(got, want, n * sizeof(float)) != 0;
            free(got); free(want);
            be_release(g, mg);
            be_release(c, mc);
        }
        CHECK_MSG(bad == 0, "[%s] nearest upsampling (2x, 9/5 x 13/7, 1 x 8/7) differs in %d of 3 cases", dt_name(t), bad);
        be_tensor x2g = put(g, x2, N, H, W, C2), x2c = put(c, x2, N, H, W, C2);
        be_tensor yg = be_new(g, N, H, W, C + C2), yc = be_new(c, N, H, W, C + C2);
        be_concat_channels(g, &xg, &x2g, &yg);
        be_concat_channels(c, &xc, &x2c, &yc);
        float *got = get(g, &yg), *want = get(c, &yc);
        CHECK_MSG(!memcmp(got, want, be_numel(&yc) * sizeof(float)), "[%s] concat_channels differs", dt_name(t));
        free(got); free(want);
        /* embedding rows for host ids */
        const int rows = 50, dim = 21, T = 9;
        float *table = rnd((size_t)rows * dim, 1, 0, t);
        int32_t ids[2 * 9];
        for (int i = 0; i < 2 * T; i++) ids[i] = (int32_t)((g_rs = g_rs * 1664525u + 1013904223u) >> 8) % rows;
        ids[0] = 0;
        ids[1] = rows - 1;
        be_weight tg, tc;
        REQUIRE(be_weight_upload(g, &tg, BE_W_EMBED, rows, dim, 1, 1, BE_F32, table) == SD_OK);
        REQUIRE(be_weight_upload(c, &tc, BE_W_EMBED, rows, dim, 1, 1, BE_F32, table) == SD_OK);
        be_tensor eg = be_new(g, 2, 1, T, dim), ec = be_new(c, 2, 1, T, dim);
        be_embedding(g, ids, &tg, &eg);
        be_embedding(c, ids, &tc, &ec);
        got = get(g, &eg);
        want = get(c, &ec);
        CHECK_MSG(!memcmp(got, want, be_numel(&ec) * sizeof(float)), "[%s] embedding differs", dt_name(t));
        free(got); free(want);
        be_weight_free(g, &tg); be_weight_free(c, &tc);
        check_clean(g, c);
        free(x); free(x2); free(table);
        be_free(g); be_free(c);
    }
}

TEST(cuda_op_timestep_embedding) {
    const float ts[3] = {0.0f, 999.0f, 261.5f};
    for (int d = 0; d < 3; d++) {
        be_dtype t = DTS[d];
        be *g = mk_gpu(t), *c = mk_cpu();
        double worst = 0;
        for (int dim = 32; dim <= 33; dim++)
            for (int flip = 0; flip < 2; flip++)
                for (int shift = 0; shift < 2; shift++) {
                    size_t mg = be_mark(g), mc = be_mark(c);
                    be_tensor yg = be_new(g, 3, 1, 1, dim), yc = be_new(c, 3, 1, 1, dim);
                    be_timestep_embedding(g, ts, flip, (float)shift, &yg);
                    be_timestep_embedding(c, ts, flip, (float)shift, &yc);
                    float *got = get(g, &yg), *want = get(c, &yc);
                    worst = fmax(worst, rel_err(got, want, be_numel(&yc), 1.0));
                    free(got); free(want);
                    be_release(g, mg);
                    be_release(c, mc);
                }
        /* values in [-1, 1] rounded once; sin/cos of arguments up to 999 (f32 libm differences ~1e-7) */
        judge("timestep_embedding dim 32/33, flip, shift", t, worst, unit(t) + SLACK);
        check_clean(g, c);
        be_free(g); be_free(c);
    }
}

/* ---- numerical hazards ---- */

/* Activations of 1e4 through GroupNorm, LayerNorm and attention in 16-bit storage: the CPU gives finite
 * values, so must the GPU path (statistics and scores in f32, softmax max-subtracted). */
TEST(cuda_op_extreme_inputs_stay_finite) {
    for (int d = 0; d < 2; d++) {
        be_dtype t = DTS[d];
        be *g = mk_gpu(t), *c = mk_cpu();
        const int N = 2, H = 5, W = 7, C = 16;
        const size_t n = (size_t)N * H * W * C;
        float *x = rnd(n, 1e4f, 2e4f, t);
        be_tensor xg = put(g, x, N, H, W, C), xc = put(c, x, N, H, W, C), yg = be_new(g, N, H, W, C), yc = be_new(c, N, H, W, C);
        be_group_norm(g, &xg, NULL, NULL, 4, 1e-6f, 1, &yg);
        be_group_norm(c, &xc, NULL, NULL, 4, 1e-6f, 1, &yc);
        float *got = get(g, &yg), *want = get(c, &yc);
        judge("group_norm+SiLU of values 1e4..3e4", t, rel_err(got, want, n, maxabs(want, n)), unit(t) + SLACK);
        free(got); free(want);
        be_layer_norm(g, &xg, NULL, NULL, 1e-5f, &yg);
        be_layer_norm(c, &xc, NULL, NULL, 1e-5f, &yc);
        got = get(g, &yg);
        want = get(c, &yc);
        judge("layer_norm of values 1e4..3e4", t, rel_err(got, want, n, maxabs(want, n)), unit(t) + SLACK);
        free(got); free(want);
        /* attention of |q|, |k| up to 3e4 with head dim 16: scores reach ~1e9, far past f16's 65504 */
        float *q = rnd(n, 3e4f, 0, t);
        double smax = 0;
        for (int i = 0; i < H * W; i++)
            for (int j = 0; j < H * W; j++) {
                double s = 0;
                for (int e = 0; e < 16; e++) s += (double)q[i * C + e] * x[j * C + e];
                smax = fmax(smax, fabs(s) / 4);
            }
        CHECK_MSG(smax > 65504 * 1000.0, "the case must overflow f16 scores (max |score| %.3g)", smax);
        be_tensor qg = put(g, q, N, H, W, C), qc = put(c, q, N, H, W, C);
        be_attention(c, &qc, &xc, &xc, 1, 0, &yc);
        want = get(c, &yc);
        setenv("SD_CUDA_ATTENTION", "cublas", 1);
        be *gr = mk_gpu(t);
        unsetenv("SD_CUDA_ATTENTION");
        be_tensor qr = put(gr, q, N, H, W, C), xr = put(gr, x, N, H, W, C), yr = be_new(gr, N, H, W, C);
        for (int path = 0; path < 2; path++) {
            be_attention(path ? gr : g, path ? &qr : &qg, path ? &xr : &xg, path ? &xr : &xg, 1, 0, path ? &yr : &yg);
            got = get(path ? gr : g, path ? &yr : &yg);
            char what[128];
            snprintf(what, sizeof what, "attention (%s) with scores up to %.2g (f32 scores, max-subtracted softmax)", path ? "cuBLAS" : "flash", smax);
            judge(what, t, rel_err(got, want, n, maxabs(x, n)), 2 * unit(t) + SLACK);
            free(got);
        }
        free(want); free(q); free(x);
        check_clean(g, c);
        check_clean(gr, c);
        be_free(g); be_free(gr); be_free(c);
    }
}

/* ---- errors ---- */

TEST(cuda_op_errors) {
    CHECK(be_cuda_available());
    CHECK(be_cuda_new(7, BE_F16) == NULL);
    CHECK_STR_CONTAINS(sd_last_error(), "CUDA device 7 does not exist");
    be *g = be_cuda_new(0, BE_F16);
    REQUIRE(g);
    CHECK(!strcmp(g->ops->name, "cuda") && g->elem_size == 2);
    CHECK(be_cuda_device_name(g) != NULL);
    test_note("device: %s on %s", be_cuda_device_name(g), cuda_test_platform());
    REQUIRE(be_arena_reserve(g, 1u << 20) == SD_OK);
    be_tensor a = be_new(g, 1, 1, 1, 1000);
    CHECK(a.data != NULL);
    CHECK(be_arena_reserve(g, 2u << 20) != SD_OK); /* not while tensors live in the old one */
    CHECK_STR_CONTAINS(sd_last_error(), "arena resized while in use");
    be_tensor big = be_new(g, 1, 1024, 1024, 1);
    CHECK(big.data == NULL);
    CHECK(be_status(g) == SD_ERR_MEMORY);
    CHECK_STR_CONTAINS(sd_last_error(), "activation memory exhausted");
    be_clear_error(g);
    /* measure mode computes nothing and counts the peak */
    be_release(g, 0);
    be_measure_begin(g);
    be_tensor m1 = be_new(g, 2, 64, 64, 320), m2 = be_new(g, 2, 64, 64, 320);
    be_act_fn(g, BE_ACT_SILU, &m1, &m2);
    size_t peak = be_measure_end(g);
    CHECK(peak >= 2 * (size_t)2 * 64 * 64 * 320 * 2);
    CHECK(be_status(g) == SD_OK);
    be_free(g);
    be *f = be_cuda_new(0, BE_F32);
    REQUIRE(f);
    CHECK(f->elem_size == 4);
    be_free(f);
}
