/* taesd_run.c — TAESD on host arrays: latents to pictures and back, one sample at a time, in row bands when the whole
 * picture needs more activation memory than allowed. A band is run with `halo` extra rows on each side (more than
 * the receptive field of an output pixel) and only its own rows are kept, so banding changes no value. */
#include "taesd_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "measure.h"

/* Extra latent rows above and below a band: the receptive-field radius, rounded up, and one for the rounding of
 * picture rows to latent rows. */
static int halo(const taesd_coder *c) { return (int)ceil(c->reach) + 1; }

static const taesd_coder *part_of(const taesd_model *t, int dec) { return dec ? &t->dec : &t->enc; }

/* Arena bytes of running a part on `rows` latent rows (rows·f picture rows) of width w latent pixels. */
static size_t band_need(be *b, const taesd_model *t, int dec, int rows, int w) {
    int f = t->factor, lc = t->latent_channels;
    measure m;
    measure_begin(b, &m);
    be_tensor z = be_new(b, 1, rows, w, lc), img = be_new(b, 1, rows * f, w * f, 3);
    if (dec) taesd_decoder_forward(b, t, &z, &img);
    else taesd_encoder_forward(b, t, &img, &z);
    return measure_end(b, &m);
}

/* Latent rows per band into *band: all h when they fit the limit (or there is none), else the most whose band with
 * its halos fits; an error when not even one row fits. */
static sd_status pick_band(be *b, const taesd_model *t, int dec, int h, int w, size_t limit, int *band) {
    *band = 0;
    if (!(t->parts & (dec ? TAESD_DECODER : TAESD_ENCODER))) return err_fail(SD_ERR_ARG, "TAESD: the %s was not loaded", dec ? "decoder" : "encoder");
    if (h < 1 || w < 1 || h > 65536 / t->factor || w > 65536 / t->factor)
        return err_fail(SD_ERR_ARG, "TAESD: cannot %s a %dx%d latent", dec ? "decode" : "encode", w, h);
    if (!limit || band_need(b, t, dec, h, w) <= limit) {
        *band = h;
        return be_status(b);
    }
    int H = halo(part_of(t, dec)), lo = 1, hi = h - 1, best = 0;
    while (lo <= hi) { /* the need grows with the rows */
        int r = (lo + hi) / 2, rows = r + 2 * H < h ? r + 2 * H : h;
        if (band_need(b, t, dec, rows, w) <= limit) { best = r; lo = r + 1; }
        else hi = r - 1;
    }
    if (!best)
        return err_fail(SD_ERR_MEMORY, "TAESD: one latent row of a %dx%d latent (with %d rows of overlap each side) needs %.1f MiB of activations; the limit is %.1f MiB",
                        w, h, H, band_need(b, t, dec, 1 + 2 * H < h ? 1 + 2 * H : h, w) / 1048576.0, limit / 1048576.0);
    *band = best;
    return be_status(b);
}

/* The encoder's latent size of an H x W picture (sides multiples of the factor). */
static sd_status enc_size(const taesd_model *t, int H, int W, int *h, int *w) {
    if (H < 1 || W < 1 || H % t->factor || W % t->factor)
        return err_fail(SD_ERR_ARG, "TAESD: a %dx%d picture; its sides must be multiples of %d", W, H, t->factor);
    *h = H / t->factor;
    *w = W / t->factor;
    return SD_OK;
}

int taesd_decode_band(be *b, const taesd_model *t, int h, int w, size_t mem_limit) {
    int band;
    return pick_band(b, t, 1, h, w, mem_limit, &band) == SD_OK ? band : 0;
}

int taesd_encode_band(be *b, const taesd_model *t, int H, int W, size_t mem_limit) {
    int h, w, band;
    return enc_size(t, H, W, &h, &w) == SD_OK && pick_band(b, t, 0, h, w, mem_limit, &band) == SD_OK ? band : 0;
}

static size_t arena_bytes(be *b, const taesd_model *t, int dec, int h, int w, size_t limit) {
    int band;
    if (pick_band(b, t, dec, h, w, limit, &band) != SD_OK) return 0;
    int H = band == h ? 0 : halo(part_of(t, dec)), rows = band + 2 * H < h ? band + 2 * H : h;
    return band_need(b, t, dec, rows, w);
}

size_t taesd_decode_arena_bytes(be *b, const taesd_model *t, int h, int w, size_t mem_limit) { return arena_bytes(b, t, 1, h, w, mem_limit); }
size_t taesd_encode_arena_bytes(be *b, const taesd_model *t, int H, int W, size_t mem_limit) {
    int h, w;
    return enc_size(t, H, W, &h, &w) == SD_OK ? arena_bytes(b, t, 0, h, w, mem_limit) : 0;
}

/* One sample: src rows (latent rows for the decoder, picture rows for the encoder) through a part in bands of
 * `band` latent rows. src and dst are host arrays in the network's own ranges. */
static sd_status run_bands(be *b, const taesd_model *t, int dec, const float *src, int h, int w, int band, float *dst) {
    int f = t->factor, lc = t->latent_channels, H = band == h ? 0 : halo(part_of(t, dec));
    size_t in_row = dec ? (size_t)w * lc : (size_t)f * w * f * 3, out_row = dec ? (size_t)f * w * f * 3 : (size_t)w * lc; /* per latent row */
    float *part = malloc(((size_t)band + 2 * H) * out_row * sizeof(float));
    if (!part) return err_fail(SD_ERR_MEMORY, "TAESD: out of memory");
    sd_status st = SD_OK;
    for (int r0 = 0; r0 < h && st == SD_OK; r0 += band) {
        int r1 = r0 + band < h ? r0 + band : h, lo = r0 - H > 0 ? r0 - H : 0, hi = r1 + H < h ? r1 + H : h;
        size_t mark = be_mark(b);
        be_tensor z = be_new(b, 1, hi - lo, w, lc), img = be_new(b, 1, (hi - lo) * f, w * f, 3);
        be_tensor *in = dec ? &z : &img, *out = dec ? &img : &z;
        be_upload(b, in, src + (size_t)lo * in_row);
        if (dec) taesd_decoder_forward(b, t, &z, &img);
        else taesd_encoder_forward(b, t, &img, &z);
        be_download(b, out, part);
        be_release(b, mark);
        if ((st = be_status(b)) == SD_OK) memcpy(dst + (size_t)r0 * out_row, part + (size_t)(r0 - lo) * out_row, (size_t)(r1 - r0) * out_row * sizeof(float));
    }
    free(part);
    return st;
}

sd_status taesd_decode(be *b, const taesd_model *t, const float *latent, int n, int h, int w, size_t mem_limit, float *rgb) {
    if (n < 1) return err_fail(SD_ERR_ARG, "TAESD decode: batch %d", n);
    sd_status st = be_status(b);
    if (st != SD_OK) return st;
    int band;
    if ((st = pick_band(b, t, 1, h, w, mem_limit, &band)) != SD_OK) return st;
    int lc = t->latent_channels, f = t->factor;
    size_t zs = (size_t)h * w * lc, is = (size_t)h * f * w * f * 3;
    float *z = malloc(zs * sizeof(float));
    if (!z) return err_fail(SD_ERR_MEMORY, "TAESD decode: out of memory");
    for (int s = 0; s < n && st == SD_OK; s++) {
        /* the UNet's latent into the decoder's space, then DecoderTiny's soft clamp 3·tanh(z/3) */
        for (size_t i = 0; i < zs; i++) z[i] = 3.0f * tanhf((latent[s * zs + i] / t->scaling + t->shift) / 3.0f);
        float *o = rgb + s * is;
        st = run_bands(b, t, 1, z, h, w, band, o);
        if (st == SD_OK)
            for (size_t i = 0; i < is; i++) o[i] = o[i] * 2.0f - 1.0f; /* [0, 1] -> diffusers' [-1, 1] */
    }
    free(z);
    return st;
}

sd_status taesd_encode(be *b, const taesd_model *t, const float *image, int n, int H, int W, size_t mem_limit, float *latent) {
    if (n < 1) return err_fail(SD_ERR_ARG, "TAESD encode: batch %d", n);
    sd_status st = be_status(b);
    if (st != SD_OK) return st;
    int h, w, band;
    if ((st = enc_size(t, H, W, &h, &w)) != SD_OK || (st = pick_band(b, t, 0, h, w, mem_limit, &band)) != SD_OK) return st;
    int lc = t->latent_channels;
    size_t is = (size_t)H * W * 3, zs = (size_t)h * w * lc;
    float *x = malloc(is * sizeof(float));
    if (!x) return err_fail(SD_ERR_MEMORY, "TAESD encode: out of memory");
    for (int s = 0; s < n && st == SD_OK; s++) {
        for (size_t i = 0; i < is; i++) x[i] = (image[s * is + i] + 1.0f) / 2.0f; /* EncoderTiny: [-1, 1] -> [0, 1] */
        float *o = latent + s * zs;
        st = run_bands(b, t, 0, x, h, w, band, o);
        if (st == SD_OK)
            for (size_t i = 0; i < zs; i++) o[i] = (o[i] - t->shift) * t->scaling;
    }
    free(x);
    return st;
}
