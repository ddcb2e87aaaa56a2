/* vae_stream.c — exact tiled decoding. The decoder's latent-resolution trunk (with the mid-block
 * attention, which is global) runs whole on the device; every later layer runs over row bands of the
 * image that are streamed through host memory. GroupNorm needs statistics of the whole image, so each
 * layer's output is gathered on the host with per-channel sums, and the next band is normalised on the
 * host with those global statistics before the device applies SiLU and the convolution. A band carries
 * halo rows on each side per 3x3 conv, whose outputs are dropped, so the result is the untiled decode's up
 * to float rounding, while the device holds only the trunk and one band.
 *
 * The halos are not one row but reach to multiples of ROW_ALIGN: a convolution that works on tiles of rows (the
 * CPU's Winograd, tiles of 4 or 6 rows aligned to the tensor's first row) then sees in a band the same tiles,
 * with the same rows in them, as in the whole image, and rounds each kept output as the untiled decode does.
 * With one-row halos the two differ by that algorithm's rounding (up to ~2e-5 of the values for F(6x6)).
 *
 * Host memory: up to three full-resolution activations (the largest: 2·H·W·C_1 + H·W·C_0 floats, i.e.
 * ~0.5 GiB at 512² and ~8.6 GiB at 2048² for SD). */
#include "vae_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

/* A host activation [h, w, c] with the per-channel Σx and Σx² of what was written into it. */
typedef struct hact {
    float *d;
    int h, w, c;
    double *s1, *s2;
} hact;

static void hact_free(hact *a) {
    free(a->d);
    free(a->s1);
    free(a->s2);
    memset(a, 0, sizeof *a);
}

static sd_status hact_init(hact *a, int h, int w, int c, int dry) {
    memset(a, 0, sizeof *a);
    a->h = h; a->w = w; a->c = c;
    if (dry) return SD_OK;
    a->d = malloc((size_t)h * w * c * sizeof(float));
    a->s1 = calloc(c, sizeof(double));
    a->s2 = calloc(c, sizeof(double));
    if (!a->d || !a->s1 || !a->s2) {
        hact_free(a);
        return err_fail(SD_ERR_MEMORY, "VAE tiled decode: cannot allocate %.1f MiB of host memory", (double)h * w * c * 4 / 1048576.0);
    }
    return SD_OK;
}

/* Adds the per-channel Σx and Σx² of cnt pixels of C channels to s1, s2 (in double; over the OpenMP threads, each
 * summing its own rows, then combined: the host side of a band pass is then not single-threaded). */
static void add_stats(const float *src, size_t cnt, int C, double *s1, double *s2) {
    int T = omp_get_max_threads();
    double *part = cnt * C > 65536 && T > 1 ? calloc((size_t)T * 2 * C, sizeof(double)) : NULL;
    if (!part) { /* small, or no memory for the partial sums: one thread */
        for (size_t i = 0; i < cnt; i++)
            for (int k = 0; k < C; k++) {
                double v = src[i * C + k];
                s1[k] += v;
                s2[k] += v * v;
            }
        return;
    }
#pragma omp parallel num_threads(T)
    {
        double *p1 = part + (size_t)omp_get_thread_num() * 2 * C, *p2 = p1 + C;
#pragma omp for schedule(static)
        for (size_t i = 0; i < cnt; i++)
            for (int k = 0; k < C; k++) {
                double v = src[i * C + k];
                p1[k] += v;
                p2[k] += v * v;
            }
    }
    for (int t = 0; t < T; t++)
        for (int k = 0; k < C; k++) {
            s1[k] += part[(size_t)t * 2 * C + k];
            s2[k] += part[(size_t)t * 2 * C + C + k];
        }
    free(part);
}

/* Writes n rows at row r0 and adds them to the statistics. */
static void hact_put_rows(hact *a, int r0, const float *src, int n) {
    size_t cnt = (size_t)n * a->w;
    memcpy(a->d + (size_t)r0 * a->w * a->c, src, cnt * a->c * sizeof(float));
    add_stats(src, cnt, a->c, a->s1, a->s2);
}

/* GroupNorm of the whole activation as a per-channel map t = (x - mu_c)·scale_c + beta_c. */
static void gn_coeffs(const hact *x, int groups, const float *gamma, float *mu, float *scale) {
    int cpg = x->c / groups;
    double n = (double)x->h * x->w * cpg;
    for (int g = 0; g < groups; g++) {
        double s1 = 0, s2 = 0;
        for (int k = g * cpg; k < (g + 1) * cpg; k++) { s1 += x->s1[k]; s2 += x->s2[k]; }
        double mean = s1 / n, var = s2 / n - mean * mean;
        if (var < 0) var = 0;
        double rstd = 1.0 / sqrt(var + VAE_EPS);
        for (int k = g * cpg; k < (g + 1) * cpg; k++) {
            mu[k] = (float)mean;
            scale[k] = (float)(gamma[k] * rstd);
        }
    }
}

/* Normalised rows [a, e) of x into dst; rows in [olo, ohi) come from `orig` (x's rows there were overwritten). */
static void stage_norm(const hact *x, int a, int e, const float *orig, int olo, int ohi, const float *mu, const float *scale, const float *beta,
                       float *dst) {
    int C = x->c;
    size_t row = (size_t)x->w * C;
#pragma omp parallel for schedule(static) if ((size_t)(e - a) * row > 65536)
    for (int r = a; r < e; r++) {
        const float *src = r >= olo && r < ohi ? orig + (size_t)(r - olo) * row : x->d + (size_t)r * row;
        float *o = dst + (size_t)(r - a) * row;
        for (int i = 0; i < x->w; i++)
            for (int k = 0; k < C; k++) o[i * C + k] = (src[i * C + k] - mu[k]) * scale[k] + beta[k];
    }
}

static int imin(int a, int b) { return a < b ? a : b; }

/* Band halos reach to multiples of ROW_ALIGN rows (a multiple of every tile height a convolution may use). For
 * output rows [r0, r1) of a 3x3 convolution over H rows the band reads input rows [band_lo(r0), band_hi(r1, H)):
 * it starts on a multiple of ROW_ALIGN before the tile that holds row r0 and its top row of zero padding, and
 * ends after the row below the tile that holds row r1 - 1. */
#define ROW_ALIGN 12
static int band_lo(int r0) { return r0 < ROW_ALIGN ? 0 : r0 / ROW_ALIGN * ROW_ALIGN - ROW_ALIGN; }
static int band_hi(int r1, int H) { return imin(H, (r1 + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN + 1); }

/* dst = conv(SiLU(GroupNorm(x))) [+ res, through the 1x1 shortcut of `sc` when given], in bands of
 * `band` output rows. dst may be x (in place: the halo row a band needs from above is saved before
 * its band is overwritten), or NULL with img set (the final layer: no statistics). */
static sd_status pass_norm_conv(be *b, hact *x, const float *gamma, const float *beta, int groups, const be_weight *cw, const be_weight *cb,
                                const hact *res, const layer_resnet *sc, int band, int dry, hact *dst, float *img) {
    int H = x->h, W = x->w, Ci = x->c, Co = cw->out, maxn = imin(H, band + 3 * ROW_ALIGN);
    size_t row_in = (size_t)W * Ci, row_out = (size_t)W * Co;
    float *mu = NULL, *scale = NULL, *in = NULL, *out = NULL, *orig = NULL, *orig2 = NULL;
    sd_status st = SD_OK;
    if (!dry) {
        mu = malloc(Ci * sizeof(float));
        scale = malloc(Ci * sizeof(float));
        in = malloc((size_t)maxn * row_in * sizeof(float));
        out = malloc((size_t)maxn * row_out * sizeof(float));
        orig = malloc(2 * ROW_ALIGN * row_in * sizeof(float));
        orig2 = malloc(2 * ROW_ALIGN * row_in * sizeof(float));
        if (!mu || !scale || !in || !out || !orig || !orig2) { st = err_fail(SD_ERR_MEMORY, "VAE tiled decode: out of memory"); goto done; }
        gn_coeffs(x, groups, gamma, mu, scale);
        if (dst) { /* x's statistics are consumed: dst (maybe x itself) starts counting afresh */
            memset(dst->s1, 0, dst->c * sizeof(double));
            memset(dst->s2, 0, dst->c * sizeof(double));
        }
    }
    int olo = 0, ohi = 0; /* in place (dst == x): the inputs of rows [olo, ohi), overwritten, kept in orig */
    for (int r0 = 0; r0 < H; r0 += band) {
        int r1 = imin(H, r0 + band), a = band_lo(r0), e = band_hi(r1, H), n = e - a;
        if (dry) n = maxn; /* the largest band: measured once */
        else stage_norm(x, a, e, orig, olo, ohi, mu, scale, beta, in);
        size_t mark = be_mark(b);
        be_tensor t = be_new(b, 1, n, W, Ci), o = be_new(b, 1, n, W, Co);
        be_upload(b, &t, in);
        be_act_fn(b, BE_ACT_SILU, &t, &t);
        be_conv2d(b, &t, cw, cb, 1, 1, 1, &o);
        if (res) {
            be_tensor rt = be_new(b, 1, n, W, res->c);
            be_upload(b, &rt, dry ? NULL : res->d + (size_t)a * W * res->c);
            if (sc) {
                be_tensor s = be_new(b, 1, n, W, Co);
                be_linear(b, &rt, &sc->short_w, &sc->short_b, BE_ACT_NONE, &s);
                be_add(b, &o, &s, 1.0f, &o);
            } else {
                be_add(b, &o, &rt, 1.0f, &o);
            }
        }
        be_download(b, &o, out);
        be_release(b, mark);
        if ((st = be_status(b)) != SD_OK || dry) break;
        const float *keep = out + (size_t)(r0 - a) * row_out;
        if (dst == x && r1 < H) { /* rows [r0, r1) are about to be overwritten: keep the inputs the next band reads */
            int lo = band_lo(r1); /* >= band_lo(r0) = olo: rows below r0 are in orig already */
            for (int r = lo; r < r1; r++)
                memcpy(orig2 + (size_t)(r - lo) * row_in, r < r0 ? orig + (size_t)(r - olo) * row_in : x->d + (size_t)r * row_in, row_in * sizeof(float));
            float *t2 = orig; orig = orig2; orig2 = t2;
            olo = lo;
            ohi = r1;
        }
        if (dst) hact_put_rows(dst, r0, keep, r1 - r0);
        else memcpy(img + (size_t)r0 * row_out, keep, (size_t)(r1 - r0) * row_out * sizeof(float));
    }
done:
    free(mu); free(scale); free(in); free(out); free(orig); free(orig2);
    return st;
}

/* dst [2h, 2w, Co] = conv(nearest2x(x)), in bands of `band` (even) output rows. */
static sd_status pass_upconv(be *b, const hact *x, const be_weight *cw, const be_weight *cb, int band, int dry, hact *dst) {
    int R = x->h, W = x->w, C = x->c, Co = cw->out, H2 = 2 * R, W2 = 2 * W;
    size_t row_out = (size_t)W2 * Co;
    int maxn = imin(R, band / 2 + 2 * ROW_ALIGN);
    float *out = dry ? NULL : malloc((size_t)2 * maxn * row_out * sizeof(float));
    if (!dry && !out) return err_fail(SD_ERR_MEMORY, "VAE tiled decode: out of memory");
    sd_status st = SD_OK;
    for (int r0 = 0; r0 < H2; r0 += band) {
        /* the convolution runs on the upsampled rows [2a, 2e), which cover [band_lo(r0), band_hi(r1, H2)) */
        int r1 = imin(H2, r0 + band), a = band_lo(r0) / 2, e = imin(R, (band_hi(r1, H2) + 1) / 2), n = e - a;
        if (dry) n = maxn;
        size_t mark = be_mark(b);
        be_tensor t = be_new(b, 1, n, W, C), u = be_new(b, 1, 2 * n, W2, C), o = be_new(b, 1, 2 * n, W2, Co);
        be_upload(b, &t, dry ? NULL : x->d + (size_t)a * W * C);
        be_upsample_nearest(b, &t, &u);
        be_conv2d(b, &u, cw, cb, 1, 1, 1, &o);
        be_download(b, &o, out);
        be_release(b, mark);
        if ((st = be_status(b)) != SD_OK || dry) break;
        hact_put_rows(dst, r0, out + (size_t)(r0 - 2 * a) * row_out, r1 - r0);
    }
    free(out);
    return st;
}

sd_status vae_stream_decode(be *b, const vae_model *v, const float *z, int h, int w, int band, float *out, int dry) {
    const vae_config *c = &v->cfg;
    const vae_coder *d = &v->dec;
    int L = c->levels, C = c->block_out[L - 1];
    if (band < 1) return err_fail(SD_ERR_ARG, "VAE tiled decode: band of %d rows", band);
    hact X, Hh;
    sd_status st = hact_init(&X, h, w, C, dry);
    if (st != SD_OK) return st;
    /* the trunk, whole */
    size_t mark = be_mark(b);
    be_tensor zt = be_new(b, 1, h, w, c->latent_channels), yt = be_new(b, 1, h, w, C);
    be_upload(b, &zt, z);
    vae_dec_trunk_forward(b, v, &zt, &yt);
    be_download(b, &yt, X.d);
    be_release(b, mark);
    if ((st = be_status(b)) != SD_OK) goto done;
    if (!dry) add_stats(X.d, (size_t)h * w, C, X.s1, X.s2); /* statistics of the trunk's output */
    for (int i = 0; i < L && st == SD_OK; i++) {
        const vae_level *lv = &d->level[i];
        int rows = band << i; /* band latent rows at this level's resolution */
        for (int j = 0; i > 0 && j < lv->nres && st == SD_OK; j++) {
            const layer_resnet *r = &lv->res[j];
            const vae_gn_host *g = &lv->gnh[j];
            if ((st = hact_init(&Hh, X.h, X.w, r->cout, dry)) != SD_OK) break;
            st = pass_norm_conv(b, &X, g->g1, g->b1, c->groups, &r->conv1_w, &r->conv1_b, NULL, NULL, rows, dry, &Hh, NULL);
            if (st == SD_OK)
                st = pass_norm_conv(b, &Hh, g->g2, g->b2, c->groups, &r->conv2_w, &r->conv2_b, &X, r->cin != r->cout ? r : NULL, rows, dry, &Hh, NULL);
            hact_free(&X);
            X = Hh;
        }
        if (lv->has_samp && st == SD_OK) {
            if ((st = hact_init(&Hh, 2 * X.h, 2 * X.w, X.c, dry)) != SD_OK) break;
            st = pass_upconv(b, &X, &lv->samp_w, &lv->samp_b, 2 * rows, dry, &Hh);
            hact_free(&X);
            X = Hh;
        }
    }
    if (st == SD_OK) st = pass_norm_conv(b, &X, d->norm_g_host, d->norm_b_host, c->groups, &d->out_w, &d->out_b, NULL, NULL, band << (L - 1), dry, NULL, out);
done:
    hact_free(&X);
    return st;
}
