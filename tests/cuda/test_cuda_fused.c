/* test_cuda_fused.c — the fused GEMM-shaped op (be_gemm) of the CUDA backend against the CPU backend, in f16, bf16
 * and f32 storage, on ragged shapes (odd H and W, batch 2, output widths that do and do not allow 16-byte rows), for
 * each fusion the models use: GroupNorm(+SiLU) prologue with per-sample add and residual (ResNet convolutions), a
 * channel concat read through the addressing (+ GroupNorm straddling the concat, 3 channels per group), a 2x
 * upsample read through the addressing, stride 2, a 1x1 shortcut over a concat, LayerNorm prologue with three
 * weights (fused Q/K/V), LayerNorm + GEGLU, a residual living in the output (x += ...), an activation after the add,
 * a ResNet's second convolution with its 1x1 shortcut summed in (over a concat, and not), inputs of 4 and 8 channels
 * (conv_in: 8-byte pieces); both tile shapes of the kernel.
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
    int sa, sb;          /* sa > 0: a 1x1 shortcut over [sx (sa channels) | sx2 (sb)] makes the residual */
} fcase;

static const fcase CASES[] = {
    {"ResNet conv1: GroupNorm+SiLU, 3x3, bias, time-embedding add", 2, 7, 5, 32, 0, 0, 1, 3, 1, 1, 1, 40, 1, 1, BE_NORM_GROUP, 8, 1, BE_ACT_NONE, 1, 0, 0, 0},
    {"ResNet conv2: GroupNorm+SiLU, 3x3, bias, residual, 20 outputs", 2, 5, 7, 64, 0, 0, 1, 3, 1, 1, 1, 20, 1, 1, BE_NORM_GROUP, 32, 1, BE_ACT_NONE, 0, 1, 0, 0},
    {"up-path conv1: concat 32 + 64, GroupNorm over the concat (3 ch/group), 3x3", 2, 5, 6, 32, 64, 0, 1, 3, 1, 1, 1, 48, 1, 1, BE_NORM_GROUP, 32, 1, BE_ACT_NONE, 0, 0, 0, 0},
    {"upsample conv: 2x nearest read through the addressing, 3x3", 1, 4, 3, 64, 0, 1, 1, 3, 1, 1, 1, 24, 1, 1, BE_NORM_NONE, 0, 0, BE_ACT_NONE, 0, 0, 0, 0},
    {"downsample conv: 3x3 stride 2, pad 0/1", 2, 9, 7, 32, 0, 0, 1, 3, 2, 0, 1, 32, 1, 1, BE_NORM_NONE, 0, 0, BE_ACT_NONE, 0, 0, 0, 0},
    {"shortcut: 1x1 linear over a concat 32 + 32, into a residual", 2, 5, 3, 32, 32, 0, 0, 1, 1, 0, 0, 24, 1, 1, BE_NORM_NONE, 0, 0, BE_ACT_NONE, 0, 1, 0, 0},
    {"fused Q/K/V: LayerNorm prologue, 3 weights, no bias", 2, 1, 37, 64, 0, 0, 0, 1, 1, 0, 0, 64, 3, 0, BE_NORM_LAYER, 0, 0, BE_ACT_NONE, 0, 0, 0, 0},
    {"feed-forward in: LayerNorm + GEGLU", 2, 1, 21, 32, 0, 0, 0, 1, 1, 0, 0, 80, 1, 1, BE_NORM_LAYER, 0, 0, BE_ACT_GEGLU, 0, 0, 0, 0},
    {"feed-forward out: x += g·Wᵀ + b (residual in y)", 2, 1, 21, 96, 0, 0, 0, 1, 1, 0, 0, 32, 1, 1, BE_NORM_NONE, 0, 0, BE_ACT_NONE, 0, 2, 0, 0},
    {"conv with SiLU after the add (GroupNorm without SiLU, 2 groups)", 2, 3, 5, 32, 0, 0, 1, 3, 1, 1, 1, 16, 1, 1, BE_NORM_GROUP, 2, 0, BE_ACT_SILU, 1, 0, 0, 0},
    {"ResNet conv2 + its 1x1 shortcut over a concat 32 + 64 (K in two stretches), 40 outputs", 2, 5, 7, 64, 0, 0, 1, 3, 1, 1, 1, 40, 1, 1,
     BE_NORM_GROUP, 16, 1, BE_ACT_NONE, 0, 0, 32, 64},
    {"conv_in: 4 channels (K = 36 in 8-byte pieces, zero-padded to 64), 3x3, 40 outputs", 2, 7, 5, 4, 0, 0, 1, 3, 1, 1, 1, 40, 1, 1,
     BE_NORM_NONE, 0, 0, BE_ACT_NONE, 0, 0, 0, 0},
    {"8 channels, 3x3 stride 2 (K = 72), 24 outputs", 1, 9, 6, 8, 0, 0, 1, 3, 2, 0, 1, 24, 1, 1, BE_NORM_NONE, 0, 0, BE_ACT_NONE, 0, 0, 0, 0},
    {"ResNet conv2 + its 1x1 shortcut, no concat, 128 outputs", 1, 6, 6, 32, 0, 0, 1, 3, 1, 1, 1, 128, 1, 1, BE_NORM_GROUP, 8, 1, BE_ACT_NONE,
     0, 0, 64, 0},
};

typedef struct fdata {
    float *x, *x2, *w[3], *bias[3], *gamma, *beta, *add, *res, *sx, *sx2, *sw, *sbias;
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
    if (f->sa) {
        d->sx = rnd((size_t)f->N * d->Ho * d->Wo * f->sa, 1, 0, t);
        if (f->sb) d->sx2 = rnd((size_t)f->N * d->Ho * d->Wo * f->sb, 1, 0.5f, t);
        d->sw = rnd((size_t)f->out * (f->sa + f->sb), 0.2f, 0, t);
        d->sbias = rnd(f->out, 0.5f, 0, BE_F32);
    }
}

static void free_data(const fcase *f, fdata *d) {
    free(d->x); free(d->x2); free(d->gamma); free(d->beta); free(d->add); free(d->res);
    free(d->sx); free(d->sx2); free(d->sw); free(d->sbias);
    for (int j = 0; j < f->nw; j++) { free(d->w[j]); free(d->bias[j]); }
}

typedef struct fweights { be_weight w[3], bias[3], gamma, beta, sw, sbias; } fweights;

static void upload_weights(be *b, const fcase *f, const fdata *d, be_dtype src, fweights *fw) {
    memset(fw, 0, sizeof *fw);
    for (int j = 0; j < f->nw; j++) {
        REQUIRE(be_weight_upload(b, &fw->w[j], f->conv ? BE_W_CONV : BE_W_LINEAR, f->out, d->C, f->k, f->k, src, d->w[j]) == SD_OK);
        if (d->bias[j]) REQUIRE(be_weight_upload(b, &fw->bias[j], BE_W_VEC, f->out, 1, 1, 1, BE_F32, d->bias[j]) == SD_OK);
    }
    if (d->sw) {
        REQUIRE(be_weight_upload(b, &fw->sw, BE_W_LINEAR, f->out, f->sa + f->sb, 1, 1, src, d->sw) == SD_OK);
        REQUIRE(be_weight_upload(b, &fw->sbias, BE_W_VEC, f->out, 1, 1, 1, BE_F32, d->sbias) == SD_OK);
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
    be_weight_free(b, &fw->sw);
    be_weight_free(b, &fw->sbias);
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
    be_tensor x, x2 = {0}, add = {0}, res = {0}, sx = {0}, sx2 = {0}, y[3];
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
    if (f->sa) { /* part of the product: in the bare run too, without its bias */
        sx = put(b, d->sx, f->N, d->Ho, d->Wo, f->sa);
        a.sx = &sx;
        if (f->sb) { sx2 = put(b, d->sx2, f->N, d->Ho, d->Wo, f->sb); a.sx2 = &sx2; }
        a.sw = &fw->sw;
        a.sbias = bare ? NULL : &fw->sbias;
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
    const int uploads = 1 + (f->cb > 0) + (f->add > 0) + (f->res > 0) + (f->sa > 0) + (f->sb > 0);
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

/* ---- GroupNorm statistics left by the producing GEMM (graph.cu links two recorded be_gemm ops) ----
 * A be_gemm whose GroupNorm prologue reads the output of an earlier recorded be_gemm takes the statistics that op's
 * epilogue leaves (per-tile (count, mean, M2), merged by the last tile) instead of launching the statistics
 * kernel. Reference: the same two ops with a sync point between them (the producer has run: no link, the
 * statistics kernel, itself held to 1 u of the CPU in cuda_op_group_norm). Both sides round the same products; the
 * statistics differ only in their f32 summation order (~1e-7 relative), which may flip the rounding of an output
 * (one ulp: up to 2 u of max|y|) or of a normalised input (1 ulp of a few of its 1440 terms: far less). Stale or
 * misassembled statistics move the outputs by percents. */
typedef struct lcase {
    const char *what;
    int N, H, W, C, k1, mid, groups, k2, out;
    float offset; /* added to the producer's bias: mean far from zero against the spread */
    int res, poke; /* res: the producer adds a residual; poke: an add writes the producer's output before the consumer */
} lcase;

static const lcase LCASES[] = {
    {"3x3 -> 3x3, 35 pixels (a tile holds several samples), 10 channels per group, residual", 2, 7, 5, 32, 3, 160, 16, 3, 24, 0, 1, 0},
    {"1x1 -> 1x1, 192 pixels (tiles straddle samples), 2 channels per group, mean 8 x the spread", 3, 16, 12, 64, 1, 64, 32, 1, 32, 8, 0, 0},
    {"3x3 -> 3x3, 160 channels (groups straddle column tiles), 5 per group", 2, 9, 9, 32, 3, 160, 32, 3, 32, 0, 0, 0},
    {"as the first, but an add writes the output in between: no link", 2, 7, 5, 32, 3, 160, 16, 3, 24, 0, 1, 1},
};

/* producer + consumer on b (with a sync point between them when `apart`); the consumer's output (host) and the
 * launches the two ops took */
static float *linked_pair(be *b, const lcase *l, const float *const *d, const be_weight *w, int apart, long long *launches) {
    size_t mark = be_mark(b);
    be_tensor x = put(b, d[0], l->N, l->H, l->W, l->C), res = {0}, z = {0};
    if (l->res) res = put(b, d[1], l->N, l->H, l->W, l->mid);
    if (l->poke) z = put(b, d[2], l->N, l->H, l->W, l->mid);
    be_tensor y = be_new(b, l->N, l->H, l->W, l->mid), o = be_new(b, l->N, l->H, l->W, l->out);
    be_sync(b);
    const long long l0 = cuda_test_launches();
    be_gemm_args p = {.x = &x, .stride = 1, .pad_lo = l->k1 / 2, .pad_hi = l->k1 / 2, .nw = 1, .w = {&w[0]}, .bias = {&w[1]}, .y = {&y},
                      .residual = l->res ? &res : NULL};
    be_gemm(b, &p);
    if (l->poke) be_add(b, &y, &z, 1.0f, &y);
    if (apart) be_sync(b);
    be_gemm_args c = {.x = &y, .stride = 1, .pad_lo = l->k2 / 2, .pad_hi = l->k2 / 2, .norm = BE_NORM_GROUP, .groups = l->groups, .eps = 1e-5f,
                      .gamma = &w[2], .beta = &w[3], .norm_silu = 1, .nw = 1, .w = {&w[4]}, .bias = {&w[5]}, .y = {&o}};
    be_gemm(b, &c);
    be_sync(b);
    *launches = l0 < 0 ? -1 : cuda_test_launches() - l0;
    float *h = get(b, &o);
    be_release(b, mark);
    return h;
}

static void upload_pair_weights(be *b, const lcase *l, float *const *h, be_weight *w) {
    memset(w, 0, 6 * sizeof *w);
    REQUIRE(be_weight_upload(b, &w[0], l->k1 > 1 ? BE_W_CONV : BE_W_LINEAR, l->mid, l->C, l->k1, l->k1, BE_F32, h[3]) == SD_OK);
    REQUIRE(be_weight_upload(b, &w[1], BE_W_VEC, l->mid, 1, 1, 1, BE_F32, h[4]) == SD_OK);
    REQUIRE(be_weight_upload(b, &w[2], BE_W_VEC, l->mid, 1, 1, 1, BE_F32, h[5]) == SD_OK);
    REQUIRE(be_weight_upload(b, &w[3], BE_W_VEC, l->mid, 1, 1, 1, BE_F32, h[6]) == SD_OK);
    REQUIRE(be_weight_upload(b, &w[4], l->k2 > 1 ? BE_W_CONV : BE_W_LINEAR, l->out, l->mid, l->k2, l->k2, BE_F32, h[7]) == SD_OK);
    REQUIRE(be_weight_upload(b, &w[5], BE_W_VEC, l->out, 1, 1, 1, BE_F32, h[8]) == SD_OK);
}

static void linked_all(const char *tile, const char *splits) {
    for (int di = 0; di < 2; di++) {
        const be_dtype t = DTS[di];
        if (tile) setenv("SD_CUDA_TILE", tile, 1);
        if (splits) setenv("SD_CUDA_SPLITK", splits, 1);
        setenv("SD_CUDA_SEQ", "0", 1); /* a launch per op, to count the statistics kernels (sequences: cuda_op_gemm_sequence) */
        be *g = mk_gpu(t), *e = mk_gpu(t);
        unsetenv("SD_CUDA_TILE");
        unsetenv("SD_CUDA_SPLITK");
        unsetenv("SD_CUDA_SEQ");
        double worst = 0;
        for (size_t k = 0; k < sizeof LCASES / sizeof *LCASES; k++) {
            const lcase *l = &LCASES[k];
            const size_t px = (size_t)l->N * l->H * l->W;
            float *h[9] = {rnd(px * l->C, 1, 0, t), rnd(px * l->mid, 1, 0, t), rnd(px * l->mid, 2, 1, t),
                           rnd((size_t)l->mid * l->C * l->k1 * l->k1, 0.2f, 0, t), rnd(l->mid, 0.5f, l->offset, BE_F32),
                           rnd(l->mid, 0.5f, 1, BE_F32), rnd(l->mid, 0.5f, 0, BE_F32),
                           rnd((size_t)l->out * l->mid * l->k2 * l->k2, 0.2f, 0, t), rnd(l->out, 0.5f, 0, BE_F32)};
            be_weight wg[6], we[6];
            upload_pair_weights(g, l, h, wg);
            upload_pair_weights(e, l, h, we);
            long long lg, le;
            float *got = linked_pair(g, l, (const float *const *)h, wg, 0, &lg), *want = linked_pair(e, l, (const float *const *)h, we, 1, &le);
            const size_t n = px * l->out;
            const double err = rel_err(got, want, n, maxabs(want, n)), tol = 2 * unit(t) + SLACK;
            CHECK_MSG(err <= tol, "%s [%s]: error %.3g > tolerance %.3g", l->what, dt_name(t), err, tol);
            worst = fmax(worst, err);
            if (lg >= 0) /* the link saves the statistics kernel, unless something wrote the output in between */
                CHECK_MSG(lg == le - (l->poke ? 0 : 1), "%s [%s]: %lld launches linked, %lld unlinked", l->what, dt_name(t), lg, le);
            free(got);
            free(want);
            for (int j = 0; j < 6; j++) { be_weight_free(g, &wg[j]); be_weight_free(e, &we[j]); }
            for (int j = 0; j < 9; j++) free(h[j]);
        }
        test_note("GroupNorm statistics from the producer's epilogue, %zu pairs%s%s [%s]: max err vs the statistics kernel %.3g (tol %.3g)",
                  sizeof LCASES / sizeof *LCASES, tile ? ", large tiles" : "", splits ? ", K split in 3" : "", dt_name(t), worst, 2 * unit(t) + SLACK);
        check_clean(g, e);
        be_free(g);
        be_free(e);
    }
}

TEST(cuda_op_gemm_statistics_epilogue) { linked_all(NULL, NULL); }
TEST(cuda_op_gemm_statistics_epilogue_large_tiles_split_k) { linked_all("big", "3"); }

/* ---- linear layers of a few rows, grouped (gemv.cu; graph.cu groups consecutive ones on the same input) ----
 * Four layers on one input x [M,1,1,K] (different widths, with and without bias, three activations), then one on
 * another input, against the CPU backend's be_linear on the same rounded values: one rounding of the output, as
 * cuda_op_linear: 2.2 u of max(|xWᵀ|, |y|). The five layers take two launches: the group and the other one. */
static void linear_group_case(be *g, be *c, be_dtype t, int M, int K, double *worst) {
    enum { L = 5 };
    const int out[L] = {40, 24, 8, 64, 16}, hasb[L] = {1, 0, 1, 1, 1};
    const be_act act[L] = {BE_ACT_NONE, BE_ACT_SILU, BE_ACT_GELU, BE_ACT_NONE, BE_ACT_SILU};
    float *xh = rnd((size_t)M * K, 1, 0, t), *x2h = rnd((size_t)M * K, 1, 0.5f, t), *wh[L], *bh[L];
    be_weight wg[L], bg[L], wc[L], bc[L];
    for (int i = 0; i < L; i++) {
        wh[i] = rnd((size_t)out[i] * K, 0.1f, 0, t);
        bh[i] = rnd(out[i], 0.5f, 0, BE_F32);
        REQUIRE(be_weight_upload(g, &wg[i], BE_W_LINEAR, out[i], K, 1, 1, BE_F32, wh[i]) == SD_OK);
        REQUIRE(be_weight_upload(c, &wc[i], BE_W_LINEAR, out[i], K, 1, 1, BE_F32, wh[i]) == SD_OK);
        REQUIRE(be_weight_upload(g, &bg[i], BE_W_VEC, out[i], 1, 1, 1, BE_F32, bh[i]) == SD_OK);
        REQUIRE(be_weight_upload(c, &bc[i], BE_W_VEC, out[i], 1, 1, 1, BE_F32, bh[i]) == SD_OK);
    }
    size_t mg = be_mark(g), mc = be_mark(c);
    be_tensor x = put(g, xh, M, 1, 1, K), x2 = put(g, x2h, M, 1, 1, K), xc = put(c, xh, M, 1, 1, K), x2c = put(c, x2h, M, 1, 1, K);
    be_tensor yg[L], yc[L], zc[L];
    for (int i = 0; i < L; i++) {
        yg[i] = be_new(g, M, 1, 1, out[i]);
        yc[i] = be_new(c, M, 1, 1, out[i]);
        zc[i] = be_new(c, M, 1, 1, out[i]);
    }
    be_sync(g);
    const long long l0 = cuda_test_launches();
    for (int i = 0; i < L; i++) be_linear(g, i < 4 ? &x : &x2, &wg[i], hasb[i] ? &bg[i] : NULL, act[i], &yg[i]);
    be_sync(g);
    const long long launches = l0 < 0 ? -1 : cuda_test_launches() - l0;
    if (launches >= 0) CHECK_MSG(launches == 2, "M %d, K %d [%s]: 5 linear layers took %lld launches (want 2)", M, K, dt_name(t), launches);
    for (int i = 0; i < L; i++) {
        be_linear(c, i < 4 ? &xc : &x2c, &wc[i], hasb[i] ? &bc[i] : NULL, act[i], &yc[i]);
        be_linear(c, i < 4 ? &xc : &x2c, &wc[i], NULL, BE_ACT_NONE, &zc[i]);
        float *got = get(g, &yg[i]), *want = get(c, &yc[i]), *z = get(c, &zc[i]);
        const size_t n = (size_t)M * out[i];
        const double e = rel_err(got, want, n, fmax(maxabs(z, n), maxabs(want, n))), tol = 2.2 * unit(t) + SLACK;
        CHECK_MSG(e <= tol, "M %d, K %d, layer %d [%s]: error %.3g > tolerance %.3g", M, K, i, dt_name(t), e, tol);
        *worst = fmax(*worst, e);
        free(got); free(want); free(z);
    }
    be_release(g, mg);
    be_release(c, mc);
    for (int i = 0; i < L; i++) {
        be_weight_free(g, &wg[i]); be_weight_free(g, &bg[i]); be_weight_free(c, &wc[i]); be_weight_free(c, &bc[i]);
        free(wh[i]); free(bh[i]);
    }
    free(xh);
    free(x2h);
}

TEST(cuda_op_linear_group) {
    for (int di = 0; di < 2; di++) {
        be *g = mk_gpu(DTS[di]), *c = mk_cpu();
        double worst = 0;
        const int shapes[][2] = {{1, 32}, {2, 1280}, {5, 96}, {8, 320}};
        for (int s = 0; s < 4; s++) linear_group_case(g, c, DTS[di], shapes[s][0], shapes[s][1], &worst);
        test_note("5 linear layers of 1-8 rows (K 32-1280) in 2 launches [%s]: max err %.3g (tol %.3g)", dt_name(DTS[di]), worst,
                  2.2 * unit(DTS[di]) + SLACK);
        check_clean(g, c);
        be_free(g);
        be_free(c);
    }
}

/* ---- statistics of a channel concat [x | x2] from the two ops that wrote its parts ----
 * A writes a (64 channels) and is also read by a GroupNorm of its own (8 groups: A leaves two sets); B writes b (96
 * channels) later; a consumer's GroupNorm over the concat, in either order ([b | a]: 16 groups of 10, one straddling
 * the seam; [a | b]: 32 groups of 5, seam inside a group) takes (mean, rstd) that B's last tile made from its pieces
 * and A's (count, mean, M2). Reference and tolerance as above; the links save the two statistics kernels. */
static void concat_chain(be *b, int order, int apart, const float *const *h, const be_weight *w, float **out, long long *launches) {
    const int N = 2, H = 7, W = 5, groups2 = order ? 32 : 16;
    size_t mark = be_mark(b);
    be_tensor x0 = put(b, h[0], N, H, W, 32), x1 = put(b, h[1], N, H, W, 32);
    be_tensor a = be_new(b, N, H, W, 64), bb = be_new(b, N, H, W, 96), o1 = be_new(b, N, H, W, 32), o2 = be_new(b, N, H, W, 24);
    be_sync(b);
    const long long l0 = cuda_test_launches();
    be_gemm_args pa = {.x = &x0, .stride = 1, .pad_lo = 1, .pad_hi = 1, .nw = 1, .w = {&w[0]}, .bias = {&w[1]}, .y = {&a}};
    be_gemm(b, &pa);
    if (apart) be_sync(b);
    be_gemm_args c1 = {.x = &a, .stride = 1, .norm = BE_NORM_GROUP, .groups = 8, .eps = 1e-5f, .gamma = &w[2], .beta = &w[3], .norm_silu = 1,
                       .nw = 1, .w = {&w[4]}, .y = {&o1}};
    be_gemm(b, &c1);
    if (apart) be_sync(b);
    be_gemm_args pb = {.x = &x1, .stride = 1, .pad_lo = 1, .pad_hi = 1, .nw = 1, .w = {&w[5]}, .bias = {&w[6]}, .y = {&bb}};
    be_gemm(b, &pb);
    if (apart) be_sync(b);
    be_gemm_args c2 = {.x = order ? &a : &bb, .x2 = order ? &bb : &a, .stride = 1, .pad_lo = 1, .pad_hi = 1, .norm = BE_NORM_GROUP,
                       .groups = groups2, .eps = 1e-6f, .gamma = &w[7], .beta = &w[8], .norm_silu = 1, .nw = 1, .w = {&w[9]}, .y = {&o2}};
    be_gemm(b, &c2);
    be_sync(b);
    *launches = l0 < 0 ? -1 : cuda_test_launches() - l0;
    out[0] = get(b, &o1);
    out[1] = get(b, &o2);
    be_release(b, mark);
}

TEST(cuda_op_gemm_statistics_concat) {
    for (int di = 0; di < 2; di++) {
        const be_dtype t = DTS[di];
        setenv("SD_CUDA_SEQ", "0", 1); /* a launch per op, to count the statistics kernels */
        be *g = mk_gpu(t);
        unsetenv("SD_CUDA_SEQ");
        const size_t px = 2 * 7 * 5;
        float *h[2] = {rnd(px * 32, 1, 0, t), rnd(px * 32, 1, 0.5f, t)};
        /* A 3x3 32->64 (+bias 1.5 off zero), GN 8 + 1x1 64->32, B 3x3 32->96, GN over 160 + 3x3 160->24 */
        const int shape[10][4] = {{64, 32, 3, 3}, {64, 1, 1, 1}, {64, 1, 1, 1}, {64, 1, 1, 1}, {32, 64, 1, 1},
                                  {96, 32, 3, 3}, {96, 1, 1, 1}, {160, 1, 1, 1}, {160, 1, 1, 1}, {24, 160, 3, 3}};
        float *wh[10];
        be_weight w[10];
        for (int i = 0; i < 10; i++) {
            const int vec = shape[i][1] == 1 && i != 4;
            wh[i] = vec ? rnd(shape[i][0], 0.5f, i == 1 ? 1.5f : i == 2 || i == 7 ? 1.0f : 0.0f, BE_F32)
                        : rnd((size_t)shape[i][0] * shape[i][1] * shape[i][2] * shape[i][3], 0.2f, 0, t);
            REQUIRE(be_weight_upload(g, &w[i], vec ? BE_W_VEC : shape[i][2] > 1 ? BE_W_CONV : BE_W_LINEAR, shape[i][0], shape[i][1], shape[i][2],
                                     shape[i][3], BE_F32, wh[i]) == SD_OK);
        }
        double worst = 0;
        for (int order = 0; order < 2; order++) {
            float *got[2], *want[2];
            long long lg, le;
            concat_chain(g, order, 0, (const float *const *)h, w, got, &lg);
            concat_chain(g, order, 1, (const float *const *)h, w, want, &le);
            const size_t n[2] = {px * 32, px * 24};
            for (int k = 0; k < 2; k++) {
                const double e = rel_err(got[k], want[k], n[k], maxabs(want[k], n[k])), tol = 2 * unit(t) + SLACK;
                CHECK_MSG(e <= tol, "concat %s [%s], output %d: error %.3g > tolerance %.3g", order ? "[a | b]" : "[b | a]", dt_name(t), k, e, tol);
                worst = fmax(worst, e);
                free(got[k]);
                free(want[k]);
            }
            if (lg >= 0) CHECK_MSG(lg == le - 2, "concat %s [%s]: %lld launches linked, %lld apart", order ? "[a | b]" : "[b | a]", dt_name(t), lg, le);
        }
        test_note("GroupNorm over a concat from its two producers' epilogues, both orders [%s]: max err vs the statistics kernel %.3g (tol %.3g)",
                  dt_name(t), worst, 2 * unit(t) + SLACK);
        for (int i = 0; i < 10; i++) { be_weight_free(g, &w[i]); free(wh[i]); }
        free(h[0]);
        free(h[1]);
        char msg[512] = "";
        CHECK_MSG(be_status(g) == SD_OK, "%s", sd_last_error());
        CHECK_MSG(cuda_test_clean(msg, sizeof msg), "%s", msg);
        be_free(g);
    }
}

/* ---- igemm sequences: consecutive igemm ops in one launch, each tile waiting for the tiles it depends on ----
 * Nine recorded be_gemm ops with every kind of dependency between them, on 2x16x16 pixels (row tiles of whole image
 * rows, so that a window one row short would miss a tile; several row tiles at the half resolution too):
 * a 3x3 convolution reading the rows around its own (its input window: the producer's row tiles above and below),
 * LayerNorm over rows, an output written in place (x += ...: the earlier reader and writer of those rows), a
 * stride-2 and an upsampling 3x3 (windows of another shape), a GroupNorm taking its statistics from the producer's
 * epilogue (the whole producer), a per-sample add, GEGLU, and an op overwriting the first one's input (which read it
 * around its rows: all of it must have run). Run as one sequence, in ticket order and in the two most eager orders
 * the dependencies allow (the latest op first, its tiles from the first or from the last: a dependency the analysis
 * missed reads rows not yet written, 0xFF-poisoned NaN or stale), the results must be those of one launch per op
 * ($SD_CUDA_SEQ=0) bit for bit; again when the sequence is captured into a graph and replayed. */
static void seq_chain(be *b, float *const *h, const be_weight *w, float **out, long long *launches) {
    const int N = 2, H = 16, W = 16;
    size_t mark = be_mark(b);
    be_tensor x0 = put(b, h[0], N, H, W, 32), r = put(b, h[1], N, H, W, 32), t = put(b, h[2], N, 1, 1, 32);
    be_tensor a = be_new(b, N, H, W, 64), bb = be_new(b, N, H, W, 32), c = be_new(b, N, H, W, 64), d = be_new(b, N, H / 2, W / 2, 32);
    be_tensor e = be_new(b, N, H, W, 32), f = be_new(b, N, H, W, 32), g = be_new(b, N, H, W, 32);
    be_sync(b);
    const long long l0 = cuda_test_launches();
    const be_gemm_args ops[9] = {
        {.x = &x0, .stride = 1, .pad_lo = 1, .pad_hi = 1, .nw = 1, .w = {&w[0]}, .bias = {&w[1]}, .y = {&a}},
        {.x = &a, .stride = 1, .pad_lo = 1, .pad_hi = 1, .nw = 1, .w = {&w[2]}, .y = {&bb}, .residual = &r},
        {.x = &bb, .stride = 1, .norm = BE_NORM_LAYER, .eps = 1e-5f, .gamma = &w[3], .nw = 1, .w = {&w[4]}, .y = {&c}},
        {.x = &c, .stride = 1, .nw = 1, .w = {&w[5]}, .bias = {&w[6]}, .y = {&bb}, .residual = &bb},
        {.x = &bb, .stride = 2, .pad_lo = 0, .pad_hi = 1, .nw = 1, .w = {&w[7]}, .y = {&d}},
        {.x = &d, .up2x = 1, .stride = 1, .pad_lo = 1, .pad_hi = 1, .nw = 1, .w = {&w[8]}, .y = {&e}},
        {.x = &e, .stride = 1, .pad_lo = 1, .pad_hi = 1, .norm = BE_NORM_GROUP, .groups = 8, .eps = 1e-5f, .gamma = &w[3], .beta = &w[6],
         .norm_silu = 1, .nw = 1, .w = {&w[9]}, .y = {&f}, .add = &t},
        {.x = &f, .stride = 1, .nw = 1, .w = {&w[10]}, .bias = {&w[11]}, .y = {&g}, .act = BE_ACT_GEGLU},
        {.x = &r, .stride = 1, .nw = 1, .w = {&w[12]}, .y = {&x0}}, /* overwrites what the first read around its rows */
    };
    for (int i = 0; i < 9; i++) be_gemm(b, &ops[i]);
    be_sync(b);
    *launches = l0 < 0 ? -1 : cuda_test_launches() - l0;
    const be_tensor *res[5] = {&bb, &c, &f, &g, &x0};
    for (int i = 0; i < 5; i++) out[i] = get(b, res[i]);
    be_release(b, mark);
}

TEST(cuda_op_gemm_sequence) {
    const char *tiles[3] = {"small", "big", "small"}, *splits[3] = {NULL, NULL, "3"};
    const int shape[13][4] = {{64, 32, 3, 3}, {64, 1, 1, 1},  {32, 64, 3, 3}, {32, 1, 1, 1}, {64, 32, 1, 1}, {32, 64, 1, 1}, {32, 1, 1, 1},
                              {32, 32, 3, 3}, {32, 32, 3, 3}, {32, 32, 3, 3}, {64, 32, 1, 1}, {64, 1, 1, 1}, {32, 32, 1, 1}};
    const size_t px = 2 * 16 * 16, n[5] = {px * 32, px * 64, px * 32, px * 32, px * 32};
    for (int di = 0; di < 2; di++) {
        const be_dtype t = DTS[di];
        g_rs = 4242;
        float *h[3] = {rnd(px * 32, 1, 0, t), rnd(px * 32, 1, 0, t), rnd(2 * 32, 1, 0, t)}, *wh[13];
        for (int i = 0; i < 13; i++)
            wh[i] = shape[i][1] == 1 ? rnd(shape[i][0], 0.5f, i == 3 ? 1.0f : 0.0f, BE_F32)
                                     : rnd((size_t)shape[i][0] * shape[i][1] * shape[i][2] * shape[i][3], 0.2f, 0, t);
        for (int v = 0; v < 3; v++) {
            float *res[4][5];
            long long launches[4];
            const char *modes[4] = {"0", "1", "eager", "eager-reverse"};
            for (int m = 0; m < 4; m++) {
                setenv("SD_CUDA_TILE", tiles[v], 1);
                if (splits[v]) setenv("SD_CUDA_SPLITK", splits[v], 1);
                setenv("SD_CUDA_SEQ", modes[m], 1);
                be *g = mk_gpu(t);
                unsetenv("SD_CUDA_TILE");
                unsetenv("SD_CUDA_SPLITK");
                unsetenv("SD_CUDA_SEQ");
                be_weight w[13];
                for (int i = 0; i < 13; i++)
                    REQUIRE(be_weight_upload(g, &w[i], shape[i][1] == 1 ? BE_W_VEC : shape[i][2] > 1 ? BE_W_CONV : BE_W_LINEAR, shape[i][0], shape[i][1],
                                             shape[i][2], shape[i][3], BE_F32, wh[i]) == SD_OK);
                seq_chain(g, h, w, res[m], &launches[m]);
                for (int again = 0; m == 1 && again < 2; again++) { /* captured, then replayed: the counters were reset */
                    float *re[5];
                    long long l;
                    seq_chain(g, h, w, re, &l);
                    for (int i = 0; i < 5; i++) {
                        CHECK_MSG(!memcmp(re[i], res[m][i], n[i] * sizeof(float)), "run %d of the sequence differs from the first", again + 2);
                        free(re[i]);
                    }
                }
                char msg[512] = "";
                CHECK_MSG(be_status(g) == SD_OK, "%s", sd_last_error());
                CHECK_MSG(cuda_test_clean(msg, sizeof msg), "%s", msg);
                for (int i = 0; i < 13; i++) be_weight_free(g, &w[i]);
                be_free(g);
            }
            int same = 1;
            for (int m = 1; m < 4; m++)
                for (int i = 0; i < 5; i++) same &= !memcmp(res[m][i], res[0][i], n[i] * sizeof(float));
            test_note("9 dependent igemm ops, %s tiles%s [%s]: %lld launches one by one, %lld as sequences; ticket order and both eager orders %s",
                      tiles[v], splits[v] ? ", K split in 3" : "", dt_name(t), launches[0], launches[1], same ? "bit-identical" : "DIFFER");
            CHECK_MSG(same, "a sequence's results differ from those of one launch per op");
            /* (with large tiles the GroupNorm op runs alone, between two sequences: igemm.cu) */
            const long long want = strcmp(tiles[v], "big") ? 1 : 3;
            if (launches[0] >= 0)
                CHECK_MSG(launches[0] == 9 && launches[1] == want, "%lld launches one by one, %lld as sequences (want 9, %lld)", launches[0], launches[1], want);
            for (int m = 0; m < 4; m++)
                for (int i = 0; i < 5; i++) free(res[m][i]);
        }
        for (int i = 0; i < 13; i++) free(wh[i]);
        for (int i = 0; i < 3; i++) free(h[i]);
    }
}

/* A wait that never ends (SD_CUDA_SEQ=stall: every wait needs one tile more than its op has) must stop the kernel
 * with a record of what it waited for, not hang: the backend's error names the sequence, the op, the row tile and
 * the counts (in ticket order the first wait is op 1's, a 3x3 window over op 0's first row tiles: gy = 1 column
 * tile of 64 outputs has run, 2 are needed). Emulator only: on a GPU the trap ends the process's CUDA context. */
TEST(cuda_op_gemm_sequence_stall) {
    if (!cuda_test_fault_begin()) {
        test_note("skipped: a kernel that traps ends a GPU's context for the whole process");
        return;
    }
    const int shape[13][4] = {{64, 32, 3, 3}, {64, 1, 1, 1},  {32, 64, 3, 3}, {32, 1, 1, 1}, {64, 32, 1, 1}, {32, 64, 1, 1}, {32, 1, 1, 1},
                              {32, 32, 3, 3}, {32, 32, 3, 3}, {32, 32, 3, 3}, {64, 32, 1, 1}, {64, 1, 1, 1}, {32, 32, 1, 1}};
    g_rs = 4242;
    const size_t px = 2 * 16 * 16;
    float *h[3] = {rnd(px * 32, 1, 0, BE_F16), rnd(px * 32, 1, 0, BE_F16), rnd(2 * 32, 1, 0, BE_F16)}, *wh[13];
    for (int i = 0; i < 13; i++)
        wh[i] = rnd((size_t)shape[i][0] * shape[i][1] * shape[i][2] * shape[i][3], 0.2f, 0, BE_F16);
    for (int run = 0; run < 2; run++) { /* stalled, then a fresh backend: the process goes on (emulator) */
        setenv("SD_CUDA_TILE", "small", 1);
        if (!run) setenv("SD_CUDA_SEQ", "stall", 1);
        be *g = mk_gpu(BE_F16);
        unsetenv("SD_CUDA_TILE");
        unsetenv("SD_CUDA_SEQ");
        be_weight w[13];
        for (int i = 0; i < 13; i++)
            REQUIRE(be_weight_upload(g, &w[i], shape[i][1] == 1 ? BE_W_VEC : shape[i][2] > 1 ? BE_W_CONV : BE_W_LINEAR, shape[i][0], shape[i][1],
                                     shape[i][2], shape[i][3], BE_F32, wh[i]) == SD_OK);
        float *res[5];
        long long launches;
        seq_chain(g, h, w, res, &launches);
        char msg[512] = "";
        const int clean = cuda_test_clean(msg, sizeof msg);
        if (!run) {
            const sd_status st = be_status(g);
            char e[512];
            snprintf(e, sizeof e, "%s", sd_last_error());
            test_note("error: %s", e);
            CHECK_MSG(st == SD_ERR_BACKEND, "status %d", (int)st);
            CHECK_MSG(strstr(e, "igemm sequence stopped: a tile of its op 1 waited in vain for row tile 0 of op 0 (1 of the 2 column tiles"),
                      "error: %s", e);
            CHECK_MSG(!clean && strstr(msg, "__trap"), "the kernel did not trap: %s", msg);
            cuda_test_fault_end();
        } else {
            CHECK_MSG(be_status(g) == SD_OK, "%s", sd_last_error());
            CHECK_MSG(clean, "%s", msg);
        }
        for (int i = 0; i < 5; i++) free(res[i]);
        for (int i = 0; i < 13; i++) be_weight_free(g, &w[i]);
        be_free(g);
    }
    for (int i = 0; i < 13; i++) free(wh[i]);
    for (int i = 0; i < 3; i++) free(h[i]);
}
