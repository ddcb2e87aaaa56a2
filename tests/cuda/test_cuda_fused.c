/* test_cuda_fused.c — the fused GEMM-shaped op (be_gemm) of the CUDA backend against the CPU backend, in f16, bf16
 * and f32 storage, on ragged shapes (odd H and W, batch 2, output widths that do and do not allow 16-byte rows), for
 * each fusion the models use: GroupNorm(+SiLU) prologue with per-sample add and residual (ResNet convolutions), a
 * channel concat read through the addressing (+ GroupNorm straddling the concat, 3 channels per group), a 2x
 * upsample read through the addressing, stride 2, a 1x1 shortcut over a concat, LayerNorm prologue with three
 * weights (fused Q/K/V), LayerNorm + GEGLU, a residual living in the output (x += ...), an activation after the add;
 * both tile shapes of the kernel.
 *
 * The reference: the CPU backend's be_gemm on the same input as the CUDA kernel's weights see. Where the op has a
 * prologue (concat, upsample, norm) that input is made by the CUDA backend's own plain ops (tested against the CPU
 * in test_cuda_ops.c) and downloaded, so both sides multiply identical rounded values; the remaining difference
 * is the rounding of the outputs: as the conv/linear op tests, 2.2 u of max(|product|, |y|), + 1 u when a residual
 * is added after the rounding. GEGLU rounds both halves and their product: 3.2 u of max|a|·max(|g|, 1). On the
 * emulator the fused op must take at most 2 launches (statistics + GEMM). */
#include "cuda_op_util.h"

typedef struct fcase {
    const char *what;
    int N, H, W, ca, cb; /* input; cb > 0: concat */
    int up2x, conv, k, stride, pad_lo, pad_hi;
    int out, nw, bias;
    be_norm norm;
    int groups, silu;
    be_act act;
    int add, res;        /* res 1: a separate residual tensor, 2: the residual lives in y */
} fcase;

static const fcase CASES[] = {
    {"ResNet conv1: GroupNorm+SiLU, 3x3, bias, time-embedding add", 2, 7, 5, 32, 0, 0, 1, 3, 1, 1, 1, 40, 1, 1, BE_NORM_GROUP, 8, 1, BE_ACT_NONE, 1, 0},
    {"ResNet conv2: GroupNorm+SiLU, 3x3, bias, residual, 20 outputs", 2, 5, 7, 64, 0, 0, 1, 3, 1, 1, 1, 20, 1, 1, BE_NORM_GROUP, 32, 1, BE_ACT_NONE, 0, 1},
    {"up-path conv1: concat 32 + 64, GroupNorm over the concat (3 ch/group), 3x3", 2, 5, 6, 32, 64, 0, 1, 3, 1, 1, 1, 48, 1, 1, BE_NORM_GROUP, 32, 1, BE_ACT_NONE, 0, 0},
    {"upsample conv: 2x nearest read through the addressing, 3x3", 1, 4, 3, 64, 0, 1, 1, 3, 1, 1, 1, 24, 1, 1, BE_NORM_NONE, 0, 0, BE_ACT_NONE, 0, 0},
    {"downsample conv: 3x3 stride 2, pad 0/1", 2, 9, 7, 32, 0, 0, 1, 3, 2, 0, 1, 32, 1, 1, BE_NORM_NONE, 0, 0, BE_ACT_NONE, 0, 0},
    {"shortcut: 1x1 linear over a concat 32 + 32, into a residual", 2, 5, 3, 32, 32, 0, 0, 1, 1, 0, 0, 24, 1, 1, BE_NORM_NONE, 0, 0, BE_ACT_NONE, 0, 1},
    {"fused Q/K/V: LayerNorm prologue, 3 weights, no bias", 2, 1, 37, 64, 0, 0, 0, 1, 1, 0, 0, 64, 3, 0, BE_NORM_LAYER, 0, 0, BE_ACT_NONE, 0, 0},
    {"feed-forward in: LayerNorm + GEGLU", 2, 1, 21, 32, 0, 0, 0, 1, 1, 0, 0, 80, 1, 1, BE_NORM_LAYER, 0, 0, BE_ACT_GEGLU, 0, 0},
    {"feed-forward out: x += g·Wᵀ + b (residual in y)", 2, 1, 21, 96, 0, 0, 0, 1, 1, 0, 0, 32, 1, 1, BE_NORM_NONE, 0, 0, BE_ACT_NONE, 0, 2},
    {"conv with SiLU after the add (GroupNorm without SiLU, 2 groups)", 2, 3, 5, 32, 0, 0, 1, 3, 1, 1, 1, 16, 1, 1, BE_NORM_GROUP, 2, 0, BE_ACT_SILU, 1, 0},
};

typedef struct fdata {
    float *x, *x2, *w[3], *bias[3], *gamma, *beta, *add, *res;
    int C, Hi, Wi, Ho, Wo, oc;
} fdata;

static void make_data(const fcase *f, be_dtype t, fdata *d) {
    memset(d, 0, sizeof *d);
    d->C = f->ca + f->cb;
    d->Hi = f->H << f->up2x;
    d->Wi = f->W << f->up2x;
    d->Ho = f->conv ? (d->Hi + f->pad_lo + f->pad_hi - f->k) / f->stride + 1 : d->Hi;
    d->Wo = f->conv ? (d->Wi + f->pad_lo + f->pad_hi - f->k) / f->stride + 1 : d->Wi;
    d->oc = f->act == BE_ACT_GEGLU ? f->out / 2 : f->out;
    d->x = rnd((size_t)f->N * f->H * f->W * f->ca, 1, 0.5f, t);
    if (f->cb) d->x2 = rnd((size_t)f->N * f->H * f->W * f->cb, 2, -1.0f, t);
    for (int j = 0; j < f->nw; j++) {
        d->w[j] = rnd((size_t)f->out * d->C * f->k * f->k, 0.2f, 0, t);
        if (f->bias) d->bias[j] = rnd(f->out, 0.5f, 0, BE_F32);
    }
    if (f->norm != BE_NORM_NONE) {
        d->gamma = rnd(d->C, 0.5f, 1.0f, BE_F32);
        d->beta = rnd(d->C, 0.5f, 0, BE_F32);
    }
    if (f->add) d->add = rnd((size_t)f->N * d->oc, 1, 0, t);
    if (f->res) d->res = rnd((size_t)f->N * d->Ho * d->Wo * d->oc, 1, 0, t);
}

static void free_data(const fcase *f, fdata *d) {
    free(d->x); free(d->x2); free(d->gamma); free(d->beta); free(d->add); free(d->res);
    for (int j = 0; j < f->nw; j++) { free(d->w[j]); free(d->bias[j]); }
}

typedef struct fweights { be_weight w[3], bias[3], gamma, beta; } fweights;

static void upload_weights(be *b, const fcase *f, const fdata *d, be_dtype src, fweights *fw) {
    memset(fw, 0, sizeof *fw);
    for (int j = 0; j < f->nw; j++) {
        REQUIRE(be_weight_upload(b, &fw->w[j], f->conv ? BE_W_CONV : BE_W_LINEAR, f->out, d->C, f->k, f->k, src, d->w[j]) == SD_OK);
        if (d->bias[j]) REQUIRE(be_weight_upload(b, &fw->bias[j], BE_W_VEC, f->out, 1, 1, 1, BE_F32, d->bias[j]) == SD_OK);
    }
    if (d->gamma) {
        REQUIRE(be_weight_upload(b, &fw->gamma, BE_W_VEC, d->C, 1, 1, 1, BE_F32, d->gamma) == SD_OK);
        REQUIRE(be_weight_upload(b, &fw->beta, BE_W_VEC, d->C, 1, 1, 1, BE_F32, d->beta) == SD_OK);
    }
}

static void free_weights(be *b, fweights *fw) {
    for (int j = 0; j < 3; j++) { be_weight_free(b, &fw->w[j]); be_weight_free(b, &fw->bias[j]); }
    be_weight_free(b, &fw->gamma);
    be_weight_free(b, &fw->beta);
}

/* The input the weights see, made by the backend's plain ops: concat, upsample, norm (+SiLU). Host copy. */
static float *prologue_input(be *g, const fcase *f, const fdata *d, const fweights *fw) {
    size_t mark = be_mark(g);
    be_tensor in = put(g, d->x, f->N, f->H, f->W, f->ca);
    if (f->cb) {
        be_tensor x2 = put(g, d->x2, f->N, f->H, f->W, f->cb), cat = be_new(g, f->N, f->H, f->W, d->C);
        be_concat_channels(g, &in, &x2, &cat);
        in = cat;
    }
    if (f->up2x) {
        be_tensor u = be_new(g, f->N, d->Hi, d->Wi, d->C);
        be_upsample_nearest(g, &in, &u);
        in = u;
    }
    if (f->norm == BE_NORM_GROUP) be_group_norm(g, &in, &fw->gamma, &fw->beta, f->groups, 1e-5f, f->silu, &in);
    if (f->norm == BE_NORM_LAYER) {
        be_tensor h = be_new(g, in.n, in.h, in.w, in.c);
        be_layer_norm(g, &in, &fw->gamma, &fw->beta, 1e-5f, &h);
        if (f->silu) be_act_fn(g, BE_ACT_SILU, &h, &h);
        in = h;
    }
    float *h = get(g, &in);
    be_release(g, mark);
    return h;
}

/* be_gemm of the case on backend b. full: with the prologue on x (else on the given input h, which already has it);
 * bare: weights only (no bias, add, activation, residual: the product's scale). Host copies of the outputs. */
static void run_gemm(be *b, const fcase *f, const fdata *d, const fweights *fw, const float *h, int full, int bare, float *out[3]) {
    size_t mark = be_mark(b);
    be_tensor x, x2 = {0}, add = {0}, res = {0}, y[3];
    be_gemm_args a;
    memset(&a, 0, sizeof a);
    if (full) {
        x = put(b, d->x, f->N, f->H, f->W, f->ca);
        if (f->cb) { x2 = put(b, d->x2, f->N, f->H, f->W, f->cb); a.x2 = &x2; }
        a.up2x = f->up2x;
        a.norm = f->norm;
        a.groups = f->groups;
        a.eps = 1e-5f;
        a.gamma = f->norm ? &fw->gamma : NULL;
        a.beta = f->norm ? &fw->beta : NULL;
        a.norm_silu = f->silu;
    } else {
        x = put(b, h, f->N, d->Hi, d->Wi, d->C);
    }
    a.x = &x;
    a.stride = f->stride;
    a.pad_lo = f->pad_lo;
    a.pad_hi = f->pad_hi;
    a.nw = f->nw;
    const int oc = bare ? f->out : d->oc;
    for (int j = 0; j < f->nw; j++) {
        a.w[j] = &fw->w[j];
        a.bias[j] = bare || !d->bias[j] ? NULL : &fw->bias[j];
        y[j] = be_new(b, f->N, d->Ho, d->Wo, oc);
        a.y[j] = &y[j];
    }
    if (!bare) {
        a.act = f->act;
        if (f->add) { add = put(b, d->add, f->N, 1, 1, oc); a.add = &add; }
        if (f->res == 1) { res = put(b, d->res, f->N, d->Ho, d->Wo, oc); a.residual = &res; }
        if (f->res == 2) { be_upload(b, &y[0], d->res); a.residual = &y[0]; }
    }
    be_gemm(b, &a);
    for (int j = 0; j < f->nw; j++) out[j] = get(b, &y[j]);
    be_release(b, mark);
}

static void fused_case(be *g, be *c, be_dtype t, const fcase *f, double *worst, double *worst_u) {
    fdata d;
    make_data(f, t, &d);
    fweights wg, wc;
    upload_weights(g, f, &d, BE_F32, &wg);
    upload_weights(c, f, &d, BE_F32, &wc);
    float *h = f->cb || f->up2x || f->norm ? prologue_input(g, f, &d, &wg) : NULL;
    if (!h) { /* no prologue: the input as it is */
        h = malloc((size_t)f->N * d.Hi * d.Wi * d.C * sizeof(float));
        memcpy(h, d.x, (size_t)f->N * d.Hi * d.Wi * d.C * sizeof(float));
    }
    float *want[3], *z[3], *got[3];
    run_gemm(c, f, &d, &wc, h, 0, 0, want);
    run_gemm(c, f, &d, &wc, h, 0, 1, z);
    const long long l0 = cuda_test_launches();
    run_gemm(g, f, &d, &wg, h, 1, 0, got);
    /* besides the op: uploads (2 launches each in 16-bit storage) and the downloads of the outputs */
    const long long launches = l0 < 0 ? -1 : cuda_test_launches() - l0;
    const size_t ny = (size_t)f->N * d.Ho * d.Wo * d.oc, nz = (size_t)f->N * d.Ho * d.Wo * f->out;
    const int uploads = 1 + (f->cb > 0) + (f->add > 0) + (f->res > 0);
    if (t != BE_F32 && launches >= 0) {
        const long long op = launches - (long long)uploads * (t == BE_F32 ? 0 : 1) - f->nw;
        CHECK_MSG(op <= 1 + (f->norm == BE_NORM_GROUP), "%s [%s]: the fused op took %lld launches", f->what, dt_name(t), op);
    }
    for (int j = 0; j < f->nw; j++) {
        double zmax = maxabs(z[j], nz), scale, tol;
        if (f->act == BE_ACT_GEGLU) {
            scale = (zmax + 0.5) * fmax(zmax + 0.5, 1.0); /* |a|, |g| include the bias (|b| < 0.5) */
            tol = 3.2 * unit(t) + SLACK;
        } else {
            scale = fmax(zmax, maxabs(want[j], ny));
            tol = (2.2 + (f->res ? 1.0 : 0.0)) * unit(t) + SLACK;
        }
        const double e = rel_err(got[j], want[j], ny, scale);
        CHECK_MSG(e <= tol, "%s [%s] output %d: error %.3g > tolerance %.3g", f->what, dt_name(t), j, e, tol);
        *worst = fmax(*worst, e);
        *worst_u = fmax(*worst_u, e / tol);
        free(want[j]); free(z[j]); free(got[j]);
    }
    free(h);
    free_weights(g, &wg);
    free_weights(c, &wc);
    free_data(f, &d);
}

static void fused_all(const char *tile, const char *splits) {
    for (int di = 0; di < 3; di++) {
        be_dtype t = DTS[di];
        if (tile) setenv("SD_CUDA_TILE", tile, 1);
        if (splits) setenv("SD_CUDA_SPLITK", splits, 1);
        be *g = mk_gpu(t), *c = mk_cpu();
        unsetenv("SD_CUDA_TILE");
        unsetenv("SD_CUDA_SPLITK");
        double worst = 0, worst_frac = 0;
        for (size_t k = 0; k < sizeof CASES / sizeof *CASES; k++) fused_case(g, c, t, &CASES[k], &worst, &worst_frac);
        test_note("be_gemm, %zu fusions%s%s [%s]: max err %.3g (largest share of its tolerance %.2f)", sizeof CASES / sizeof *CASES,
                  tile ? ", large tiles" : "", splits ? ", K split in 3" : "", dt_name(t), worst, worst_frac);
        check_clean(g, c);
        be_free(g);
        be_free(c);
    }
}

TEST(cuda_op_gemm_fused) { fused_all(NULL, NULL); }

/* The 128x128 tile (8 warps) the kernel uses on full-size layers; the small shapes above take 64x64. */
TEST(cuda_op_gemm_fused_large_tiles) { fused_all("big", NULL); }

/* K split over 3 blocks per tile (the low-resolution layers of a UNet): partial sums through device memory, the
 * last block of each tile adds them and runs the epilogue. */
TEST(cuda_op_gemm_fused_split_k) { fused_all(NULL, "3"); }
