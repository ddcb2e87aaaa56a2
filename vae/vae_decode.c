/* vae_decode.c — host-level VAE decoding (tiled for large images) and encoding, arena sizing by
 * measure mode, latent scaling, and diffusers' image <-> float conversions. */
#include "vae_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "measure.h"

/* ---- measuring ---- */

/* Arena bytes of decoding one th x tw latent tile (input, output and the forward's scratch). */
static size_t decode_peak(be *b, const vae_model *v, int th, int tw) {
    int f = vae_factor(v);
    measure m;
    measure_begin(b, &m);
    be_tensor z = be_new(b, 1, th, tw, v->cfg.latent_channels), img = be_new(b, 1, th * f, tw * f, v->cfg.out_channels);
    vae_decoder_forward(b, v, &z, &img);
    return measure_end(b, &m);
}

/* Arena bytes of the exact banded decode of an h x w latent with bands of `band` latent rows. */
static size_t stream_peak(be *b, const vae_model *v, int h, int w, int band) {
    measure m;
    measure_begin(b, &m);
    vae_stream_decode(b, v, NULL, h, w, band, NULL, 1);
    return measure_end(b, &m);
}

/* ---- planning ---- */

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* Largest candidate (below `below`) whose peak fits the limit, or 0. */
static int largest_fit(be *b, const vae_model *v, int h, int w, int below, size_t limit, int bands, size_t *peak) {
    static const int cands[] = {128, 112, 96, 80, 64, 56, 48, 40, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1};
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        int t = cands[i];
        if (t >= below || (!bands && t < 8)) continue;
        size_t p = bands ? stream_peak(b, v, h, w, t) : decode_peak(b, v, imin(t, h), imin(t, w));
        if (!be_ok(b)) return 0;
        if (p <= limit) { *peak = p; return t; }
    }
    return 0;
}

/* arena_free: vae_decode's reading of mem_limit 0 (the arena's free space) rather than "no limit". */
static sd_status plan(be *b, const vae_model *v, int h, int w, const vae_decode_opts *opts, int arena_free, vae_plan *p) {
    vae_decode_opts o = {0};
    if (opts) o = *opts;
    memset(p, 0, sizeof *p);
    p->mode = VAE_TILING_OFF;
    if (!(v->parts & VAE_DECODER)) return err_fail(SD_ERR_ARG, "VAE: the decoder was not loaded");
    if (h < 1 || w < 1 || h > 65536 / vae_factor(v) || w > 65536 / vae_factor(v))
        return err_fail(SD_ERR_ARG, "VAE: cannot decode a %dx%d latent", h, w);
    if ((unsigned)o.tiling > VAE_TILING_BLEND || o.tile < 0 || o.overlap < 0 || (o.tile && o.tiling == VAE_TILING_BLEND && o.overlap >= o.tile))
        return err_fail(SD_ERR_ARG, "VAE tiling: mode %d, tile %d, overlap %d", (int)o.tiling, o.tile, o.overlap);
    size_t limit = o.mem_limit;
    if (!limit && arena_free && !b->measuring) limit = b->arena.size - b->arena.used;
    p->arena_bytes = decode_peak(b, v, h, w);
    vae_tiling mode = o.tiling;
    if (mode == VAE_TILING_OFF || (mode == VAE_TILING_AUTO && (!limit || p->arena_bytes <= limit))) goto done;
    if (mode != VAE_TILING_BLEND) { /* exact bands */
        int band = o.tile;
        if (!band) band = limit ? largest_fit(b, v, h, w, h, limit, 1, &p->arena_bytes) : imin(8, h);
        if (band) {
            p->mode = VAE_TILING_ON;
            p->tile = band;
            p->arena_bytes = stream_peak(b, v, h, w, band);
            goto done;
        }
        if (mode == VAE_TILING_ON || !be_ok(b)) goto nofit;
    }
    /* blended tiles: bigger tiles blend fewer seams */
    int T = o.tile ? o.tile : limit ? largest_fit(b, v, h, w, imax(h, w), limit, 0, &p->arena_bytes) : 32;
    if (!T) goto nofit;
    if (T >= h && T >= w) goto done; /* one tile is the whole latent */
    p->mode = VAE_TILING_BLEND;
    p->tile = T;
    p->overlap = o.overlap ? o.overlap : imax(1, T / 4);
    p->arena_bytes = decode_peak(b, v, imin(T, h), imin(T, w));
done:
    return be_ok(b) ? SD_OK : be_status(b);
nofit:
    if (!be_ok(b)) return be_status(b);
    return err_fail(SD_ERR_MEMORY, "VAE decode of a %dx%d latent needs %.1f MiB of activations untiled, %.1f MiB in bands of one latent row, "
                   "%.1f MiB in 8x8 tiles; the limit is %.1f MiB", h, w, decode_peak(b, v, h, w) / 1048576.0, stream_peak(b, v, h, w, 1) / 1048576.0,
                   decode_peak(b, v, imin(8, h), imin(8, w)) / 1048576.0, limit / 1048576.0);
}

sd_status vae_decode_plan(be *b, const vae_model *v, int h, int w, const vae_decode_opts *opts, vae_plan *p) {
    return plan(b, v, h, w, opts, 1, p);
}

size_t vae_decode_arena_bytes(be *b, const vae_model *v, int h, int w, const vae_decode_opts *opts) {
    vae_plan p;
    return plan(b, v, h, w, opts, 0, &p) == SD_OK ? p.arena_bytes : 0;
}

/* ---- tiled decoding ---- */

/* Starts of the tiles covering [0, n) with tiles of T and overlaps of at least O, spread evenly. */
static int tile_starts(int n, int T, int O, int *starts) {
    if (T >= n) { starts[0] = 0; return 1; }
    int count = (n - O + (T - O) - 1) / (T - O);
    if (count < 2) count = 2;
    for (int i = 0; i < count; i++) starts[i] = (int)((long long)i * (n - T) / (count - 1));
    return count;
}

/* Blend weights along one axis of tile i: linear ramps across the overlaps with its neighbours, so two
 * overlapping tiles' weights sum to one (the accumulation is normalised anyway). */
static void axis_weights(const int *starts, int count, int i, int T, int f, float *wt) {
    int Tp = T * f;
    int lo = i > 0 ? (starts[i - 1] + T - starts[i]) * f : 0;
    int ro = i + 1 < count ? (starts[i] + T - starts[i + 1]) * f : 0;
    for (int d = 0; d < Tp; d++) {
        float a = d < lo ? (d + 0.5f) / lo : 1.0f;
        float c = d >= Tp - ro ? (Tp - d - 0.5f) / ro : 1.0f;
        wt[d] = a * c;
    }
}

/* Decodes one sample's VAE-space latent z [h, w, lc] into out [h·f, w·f, oc]. */
static sd_status decode_one(be *b, const vae_model *v, const float *z, int h, int w, const vae_plan *p, float *out) {
    const vae_config *c = &v->cfg;
    int f = vae_factor(v), lc = c->latent_channels, oc = c->out_channels, H = h * f, W = w * f, T = p->tile, O = p->overlap;
    if (p->mode == VAE_TILING_ON) return vae_stream_decode(b, v, z, h, w, T, out, b->measuring); /* measuring: no host buffers */
    if (p->mode == VAE_TILING_OFF || b->measuring) { /* measuring a blended decode: one tile is the peak */
        if (p->mode == VAE_TILING_BLEND) { h = imin(T, h); w = imin(T, w); H = h * f; W = w * f; }
        size_t mark = be_mark(b);
        be_tensor zt = be_new(b, 1, h, w, lc), it = be_new(b, 1, H, W, oc);
        be_upload(b, &zt, z);
        vae_decoder_forward(b, v, &zt, &it);
        be_download(b, &it, out);
        be_release(b, mark);
        return be_status(b);
    }
    int th = imin(T, h), tw = imin(T, w), Hp = th * f, Wp = tw * f;
    int *ys = malloc(sizeof(int) * h), *xs = malloc(sizeof(int) * w);
    float *zt_h = malloc(sizeof(float) * th * tw * lc), *pix = malloc(sizeof(float) * Hp * Wp * oc);
    float *wsum = calloc((size_t)H * W, sizeof(float)), *wy = malloc(sizeof(float) * Hp), *wx = malloc(sizeof(float) * Wp);
    sd_status st = SD_OK;
    if (!ys || !xs || !zt_h || !pix || !wsum || !wy || !wx) { st = err_fail(SD_ERR_MEMORY, "VAE tiling: out of memory"); goto done; }
    memset(out, 0, sizeof(float) * H * W * oc);
    int ny = tile_starts(h, th, imin(O, th - 1), ys), nx = tile_starts(w, tw, imin(O, tw - 1), xs);
    for (int iy = 0; iy < ny && st == SD_OK; iy++) {
        axis_weights(ys, ny, iy, th, f, wy);
        for (int ix = 0; ix < nx && st == SD_OK; ix++) {
            axis_weights(xs, nx, ix, tw, f, wx);
            for (int y = 0; y < th; y++)
                memcpy(zt_h + (size_t)y * tw * lc, z + ((size_t)(ys[iy] + y) * w + xs[ix]) * lc, sizeof(float) * tw * lc);
            size_t mark = be_mark(b);
            be_tensor zt = be_new(b, 1, th, tw, lc), it = be_new(b, 1, Hp, Wp, oc);
            be_upload(b, &zt, zt_h);
            vae_decoder_forward(b, v, &zt, &it);
            be_download(b, &it, pix);
            be_release(b, mark);
            if ((st = be_status(b)) != SD_OK) break;
            for (int y = 0; y < Hp; y++) {
                size_t row = (size_t)(ys[iy] * f + y) * W + xs[ix] * f;
                for (int x = 0; x < Wp; x++) {
                    float wt = wy[y] * wx[x];
                    const float *p = pix + ((size_t)y * Wp + x) * oc;
                    float *o = out + (row + x) * oc;
                    for (int k = 0; k < oc; k++) o[k] += wt * p[k];
                    wsum[row + x] += wt;
                }
            }
        }
    }
    if (st == SD_OK)
        for (size_t i = 0; i < (size_t)H * W; i++)
            for (int k = 0; k < oc; k++) out[i * oc + k] /= wsum[i];
done:
    free(ys); free(xs); free(zt_h); free(pix); free(wsum); free(wy); free(wx);
    return st;
}

sd_status vae_decode_z(be *b, const vae_model *v, const float *z, int n, int h, int w, const vae_decode_opts *opts, float *rgb) {
    if (n < 1) return err_fail(SD_ERR_ARG, "VAE decode: batch %d", n);
    if (be_status(b) != SD_OK) return b->err;
    vae_plan p;
    sd_status st = plan(b, v, h, w, opts, 1, &p);
    if (st != SD_OK) return st;
    int f = vae_factor(v), single = b->single_pass;
    size_t zs = (size_t)h * w * v->cfg.latent_channels, is = (size_t)h * f * w * f * v->cfg.out_channels;
    b->single_pass = 1; /* the decode's output is not fed back: backends may take their faster convolutions */
    for (int s = 0; s < n && st == SD_OK; s++) st = decode_one(b, v, z + s * zs, h, w, &p, rgb + s * is);
    b->single_pass = single;
    return st;
}

sd_status vae_decode(be *b, const vae_model *v, const float *latent, int n, int h, int w, const vae_decode_opts *opts, float *rgb) {
    if (n < 1 || h < 1 || w < 1) return err_fail(SD_ERR_ARG, "VAE decode: latent [%d, %d, %d]", n, h, w);
    size_t count = (size_t)n * h * w;
    float *z = malloc(count * v->cfg.latent_channels * sizeof(float));
    if (!z) return err_fail(SD_ERR_MEMORY, "VAE decode: out of memory");
    memcpy(z, latent, count * v->cfg.latent_channels * sizeof(float));
    vae_latent_from_unet(&v->cfg, z, count);
    sd_status st = vae_decode_z(b, v, z, n, h, w, opts, rgb);
    free(z);
    return st;
}

/* ---- encoding ---- */

void vae_posterior(const float *moments, int lc, size_t count, const float *noise, float *out) {
    for (size_t i = 0; i < count; i++) {
        const float *m = moments + i * 2 * lc;
        for (int k = 0; k < lc; k++) {
            float x = m[k];
            if (noise) {
                float lv = m[lc + k];
                lv = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv;
                x = x + expf(0.5f * lv) * noise[i * lc + k];
            }
            out[i * lc + k] = x;
        }
    }
}

static sd_status check_encode(const vae_model *v, int H, int W, int *h, int *w) {
    if (!(v->parts & VAE_ENCODER)) return err_fail(SD_ERR_ARG, "VAE: the encoder was not loaded");
    vae_latent_size(v, H, W, h, w);
    if (H < 1 || W < 1 || H > 65536 || W > 65536 || *h < 1 || *w < 1)
        return err_fail(SD_ERR_ARG, "VAE: cannot encode a %dx%d image (at least %d pixels a side)", W, H, vae_factor(v));
    return SD_OK;
}

size_t vae_encode_arena_bytes(be *b, const vae_model *v, int H, int W) {
    int h, w;
    if (check_encode(v, H, W, &h, &w) != SD_OK) return 0;
    measure m;
    measure_begin(b, &m);
    be_tensor img = be_new(b, 1, H, W, v->cfg.in_channels), mom = be_new(b, 1, h, w, 2 * v->cfg.latent_channels);
    vae_encoder_forward(b, v, &img, &mom);
    size_t peak = measure_end(b, &m);
    return be_status(b) == SD_OK ? peak : 0;
}

sd_status vae_encode(be *b, const vae_model *v, const float *image, int n, int H, int W, const float *noise, float *latent) {
    int h, w, lc = v->cfg.latent_channels;
    sd_status st = check_encode(v, H, W, &h, &w);
    if (st != SD_OK) return st;
    if (n < 1) return err_fail(SD_ERR_ARG, "VAE encode: batch %d", n);
    if ((st = be_status(b)) != SD_OK) return st;
    size_t hw = (size_t)h * w, is = (size_t)H * W * v->cfg.in_channels;
    float *mom = malloc(hw * 2 * lc * sizeof(float));
    if (!mom) return err_fail(SD_ERR_MEMORY, "VAE encode: out of memory");
    for (int s = 0; s < n && st == SD_OK; s++) {
        size_t mark = be_mark(b);
        be_tensor it = be_new(b, 1, H, W, v->cfg.in_channels), mt = be_new(b, 1, h, w, 2 * lc);
        be_upload(b, &it, image + s * is);
        vae_encoder_forward(b, v, &it, &mt);
        be_download(b, &mt, mom);
        be_release(b, mark);
        if ((st = be_status(b)) == SD_OK) vae_posterior(mom, lc, hw, noise ? noise + s * hw * lc : NULL, latent + s * hw * lc);
    }
    free(mom);
    if (st == SD_OK) vae_latent_to_unet(&v->cfg, latent, (size_t)n * hw);
    return st;
}

/* ---- latent scaling: the expressions (and their order) of the diffusers pipelines ---- */

void vae_latent_to_unet(const vae_config *c, float *z, size_t count) {
    int lc = c->latent_channels;
    float s = c->scaling_factor;
    for (size_t i = 0; i < count; i++)
        for (int k = 0; k < lc; k++) {
            float *x = &z[i * lc + k];
            if (c->has_latents_mean_std) *x = (*x - c->latents_mean[k]) * s / c->latents_std[k];
            else *x = (*x - c->shift_factor) * s;
        }
}

void vae_latent_from_unet(const vae_config *c, float *z, size_t count) {
    int lc = c->latent_channels;
    float s = c->scaling_factor;
    for (size_t i = 0; i < count; i++)
        for (int k = 0; k < lc; k++) {
            float *x = &z[i * lc + k];
            if (c->has_latents_mean_std) *x = *x * c->latents_std[k] / s + c->latents_mean[k];
            else *x = *x / s + c->shift_factor;
        }
}

/* ---- images ---- */

void vae_image_to_u8(const float *x, size_t count, uint8_t *out) {
    for (size_t i = 0; i < count; i++) {
        float t = x[i] * 0.5f + 0.5f;
        if (!(t > 0.0f)) t = 0.0f; /* also NaN */
        if (t > 1.0f) t = 1.0f;
        out[i] = (uint8_t)nearbyintf(t * 255.0f); /* default rounding mode: half to even, like numpy's round */
    }
}

void vae_image_from_u8(const uint8_t *u, size_t count, float *x) {
    for (size_t i = 0; i < count; i++) x[i] = 2.0f * ((float)u[i] / 255.0f) - 1.0f;
}
