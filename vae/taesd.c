/* taesd.c — TAESD's weight names, its layer lists built from the checkpoint's names and shapes, and the forwards of
 * its decoder and encoder on the backend contract (three ping-pong buffers of the largest activation). */
#include "taesd_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

#define TRY(x) do { sd_status st_ = (x); if (st_ != SD_OK) return st_; } while (0)

/* ---- names ---- */

static int has(const st_file *f, const char *name) { return st_find(f, name) != NULL; }

taesd_names taesd_detect(const st_file *f, int *parts) {
    int p = 0;
    taesd_names n = TAESD_NOT;
    if (has(f, "decoder.layers.0.weight") || has(f, "encoder.layers.0.weight")) {
        n = TAESD_NAMES_DIFFUSERS;
        p = (has(f, "decoder.layers.0.weight") ? TAESD_DECODER : 0) | (has(f, "encoder.layers.0.weight") ? TAESD_ENCODER : 0);
    } else if (has(f, "taesd_decoder.1.weight") || has(f, "taesd_encoder.0.weight")) {
        n = TAESD_NAMES_COMFY;
        p = (has(f, "taesd_decoder.1.weight") ? TAESD_DECODER : 0) | (has(f, "taesd_encoder.0.weight") ? TAESD_ENCODER : 0);
    } else if (has(f, "1.weight") && has(f, "3.conv.0.weight") && !has(f, "0.weight")) {
        n = TAESD_NAMES_DECODER; /* layer 0 is the clamp, layer 2 a ReLU, layer 3 the first block */
        p = TAESD_DECODER;
    } else if (has(f, "0.weight") && has(f, "1.conv.0.weight")) {
        n = TAESD_NAMES_ENCODER;
        p = TAESD_ENCODER;
    }
    if (parts) *parts = p;
    return n;
}

/* "12.conv.0.weight" -> 12 and "conv.0.weight"; 0 when the name does not start with an index. */
static int split_index(const char *s, int *idx, const char **rest) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '.' || v < 0 || v > 100000 || (s[0] == '0' && end - s > 1)) return 0;
    *idx = (int)v;
    *rest = end + 1;
    return 1;
}

static int rename_taesd(const char *src, char *dst, size_t cap, void *user) {
    taesd_names names = *(const taesd_names *)user;
    int idx;
    const char *rest;
    const char *part = NULL;
    int shift = 0;
    if (names == TAESD_NAMES_COMFY) {
        if (!strcmp(src, "vae_scale") || !strcmp(src, "vae_shift")) return 0; /* ComfyUI's latent scalars (not SD's) */
        if (!strncmp(src, "taesd_decoder.", 14)) { part = "decoder"; shift = 1; src += 14; }
        else if (!strncmp(src, "taesd_encoder.", 14)) { part = "encoder"; src += 14; }
    } else if (names == TAESD_NAMES_DECODER) {
        part = "decoder";
        shift = 1;
    } else if (names == TAESD_NAMES_ENCODER) {
        part = "encoder";
    }
    /* a name that is not one of the layers keeps its own spelling, so the loader reports it as unexpected */
    if (part && split_index(src, &idx, &rest) && idx >= shift) snprintf(dst, cap, "%s.layers.%d.%s", part, idx - shift, rest);
    else snprintf(dst, cap, "%s", src);
    return 1;
}

sd_status taesd_add_weights(wmap *m, const st_file *f, taesd_names names) {
    if (names == TAESD_NOT) return err_fail(SD_ERR_MODEL, "%s: not a TAESD file", st_path(f));
    return wmap_add_file(m, f, "", names == TAESD_NAMES_DIFFUSERS ? NULL : rename_taesd, &names);
}

/* ---- loading ---- */

/* The largest layer index under "<part>.layers.", or -1. */
static int max_index(const wmap *m, const char *part) {
    char pre[32];
    int best = -1, n = snprintf(pre, sizeof pre, "%s.layers.", part);
    for (int i = 0; i < wmap_count(m); i++) {
        const char *name = wmap_name(m, i), *rest;
        int idx;
        if (!strncmp(name, pre, n) && split_index(name + n, &idx, &rest) && idx > best) best = idx;
    }
    return best;
}

/* The first tensor under "<p>." (a layer's prefix), or NULL. */
static const char *first_under(const wmap *m, const char *p) {
    size_t n = strlen(p);
    for (int i = 0; i < wmap_count(m); i++) {
        const char *name = wmap_name(m, i);
        if (!strncmp(name, p, n) && name[n] == '.') return name;
    }
    return NULL;
}

/* A 3x3 conv [out, in, 3, 3] (bias optional unless required) whose input has `cin` channels. */
static sd_status load_conv(be *b, wmap *m, be_weight *w, be_weight *bias, int cin, int need_bias, int *cout, const char *p) {
    char name[96];
    snprintf(name, sizeof name, "%s.weight", p);
    const st_tensor *t = wmap_find(m, name);
    if (!t) return err_fail(SD_ERR_MODEL, "missing tensor \"%s\"", name);
    if (t->ndim != 4 || t->shape[1] != cin || t->shape[2] != 3 || t->shape[3] != 3 || t->shape[0] < 1 || t->shape[0] > 4096)
        return err_fail(SD_ERR_MODEL, "tensor \"%s\": expected a 3x3 convolution of %d input channels", name, cin);
    *cout = (int)t->shape[0];
    TRY(wmap_load(b, m, w, BE_W_CONV, *cout, cin, 3, 3, "%s.weight", p));
    if (need_bias || wmap_has(m, "%s.bias", p)) TRY(wmap_vec(b, m, bias, *cout, "%s.bias", p));
    return SD_OK;
}

static sd_status load_block(be *b, wmap *m, taesd_layer *L, const char *p) {
    char q[96];
    int c = L->cin;
    for (int k = 0; k < 3; k++) {
        snprintf(q, sizeof q, "%s.conv.%d", p, 2 * k);
        int co;
        TRY(load_conv(b, m, &L->cw[k], &L->cb[k], c, 1, &co, q));
        if (k && co != c) return err_fail(SD_ERR_MODEL, "tensor \"%s.weight\": %d outputs, expected %d", q, co, c);
        c = co;
    }
    L->cout = c;
    if (L->cin != L->cout) return wmap_load(b, m, &L->skip, BE_W_CONV, L->cout, L->cin, 1, 1, "%s.skip.weight", p);
    if (wmap_has(m, "%s.skip.weight", p)) return err_fail(SD_ERR_MODEL, "tensor \"%s.skip.weight\": a block that keeps its channels has no skip conv", p);
    return SD_OK;
}

/* The layer list of one part from the names: index i is a conv ("layers.i.weight"), a block ("layers.i.conv.0.weight")
 * or, with no parameters, the decoder's ReLU (right after its first conv) or one of its nearest 2x upsamplers. */
static sd_status load_coder(be *b, wmap *m, const char *part, int is_dec, taesd_coder *c) {
    int last = max_index(m, part);
    if (last < 0) return SD_OK;
    c->l = calloc(last + 1, sizeof *c->l);
    if (!c->l) return err_fail(SD_ERR_MEMORY, "out of memory");
    c->n = last + 1;
    c->factor = 1;
    int ch = -1;
    double scale = 1; /* resolution relative to the latent's (decoder) or the picture's (encoder) */
    for (int i = 0; i < c->n; i++) {
        taesd_layer *L = &c->l[i];
        char p[64], wn[80];
        snprintf(p, sizeof p, "%s.layers.%d", part, i);
        snprintf(wn, sizeof wn, "%s.weight", p);
        const st_tensor *t = wmap_find(m, wn);
        if (t) {
            if (i == 0) ch = t->ndim == 4 ? (int)t->shape[1] : -1;
            L->kind = TL_CONV;
            L->cin = ch;
            L->stride = !is_dec && i > 0 && i < c->n - 1 ? 2 : 1;
            L->has_bias = wmap_has(m, "%s.bias", p);
            TRY(load_conv(b, m, &L->w, &L->b, ch, 0, &L->cout, p));
            c->reach += 1.0 / scale; /* a 3x3 conv reaches one pixel of its input */
            if (L->stride == 2) { c->factor *= 2; scale /= 2; }
            ch = L->cout;
        } else if (wmap_has(m, "%s.conv.0.weight", p)) {
            if (i == 0) return err_fail(SD_ERR_MODEL, "TAESD %s: layer 0 must be a convolution", part);
            L->kind = TL_BLOCK;
            L->cin = ch;
            TRY(load_block(b, m, L, p));
            c->reach += 3.0 / scale;
            ch = L->cout;
        } else if (first_under(m, p)) {
            return err_fail(SD_ERR_MODEL, "TAESD %s: layer %d has \"%s\" but neither \"%s.weight\" (a conv) nor \"%s.conv.0.weight\" (a block)", part, i,
                            first_under(m, p), p, p);
        } else if (is_dec && i == 1 && c->l[0].kind == TL_CONV) {
            L->kind = TL_RELU;
        } else if (is_dec && i > 1) {
            L->kind = TL_UP;
            c->factor *= 2;
            scale *= 2;
        } else {
            return err_fail(SD_ERR_MODEL, "TAESD %s: no tensors for layer %d (\"%s.weight\" or \"%s.conv.0.weight\")", part, i, p, p);
        }
    }
    if (c->l[c->n - 1].kind != TL_CONV) return err_fail(SD_ERR_MODEL, "TAESD %s: the last layer (%d) must be a convolution", part, c->n - 1);
    c->cin = c->l[0].cin;
    c->cout = ch;
    if (!is_dec) c->reach /= c->factor; /* picture pixels -> latent pixels */
    return SD_OK;
}

static void free_coder(be *b, taesd_coder *c) {
    for (int i = 0; i < c->n; i++) {
        taesd_layer *L = &c->l[i];
        be_weight_free(b, &L->w);
        be_weight_free(b, &L->b);
        be_weight_free(b, &L->skip);
        for (int k = 0; k < 3; k++) { be_weight_free(b, &L->cw[k]); be_weight_free(b, &L->cb[k]); }
    }
    free(c->l);
    memset(c, 0, sizeof *c);
}

void taesd_free(taesd_model *t) {
    if (!t) return;
    free_coder(t->b, &t->dec);
    free_coder(t->b, &t->enc);
    free(t);
}

static sd_status check(const taesd_model *t) {
    const taesd_coder *d = &t->dec, *e = &t->enc;
    if (d->n) {
        if (d->cout != 3) return err_fail(SD_ERR_MODEL, "TAESD decoder: ends in %d channels, expected 3 (RGB)", d->cout);
        if (d->cin < 1 || d->cin > 64) return err_fail(SD_ERR_MODEL, "TAESD decoder: %d latent channels", d->cin);
    }
    if (e->n) {
        if (e->cin != 3) return err_fail(SD_ERR_MODEL, "TAESD encoder: takes %d channels, expected 3 (RGB)", e->cin);
        if (e->cout < 1 || e->cout > 64) return err_fail(SD_ERR_MODEL, "TAESD encoder: %d latent channels", e->cout);
    }
    if (d->n && e->n && (d->cin != e->cout || d->factor != e->factor))
        return err_fail(SD_ERR_MODEL, "TAESD: the encoder (%d channels, factor %d) and the decoder (%d channels, factor %d) do not match", e->cout,
                        e->factor, d->cin, d->factor);
    int f = d->n ? d->factor : e->factor;
    if (f < 2 || f > 64) return err_fail(SD_ERR_MODEL, "TAESD: a resolution factor of %d", f);
    return SD_OK;
}

sd_status taesd_load(be *b, wmap *m, float scaling, float shift, taesd_model **out) {
    *out = NULL;
    if (!(scaling > 0) || !(shift == shift)) return err_fail(SD_ERR_MODEL, "TAESD: scaling factor %g, shift %g", scaling, shift);
    taesd_model *t = calloc(1, sizeof *t);
    if (!t) return err_fail(SD_ERR_MEMORY, "out of memory");
    t->b = b;
    t->scaling = scaling;
    t->shift = shift;
    sd_status st = load_coder(b, m, "decoder", 1, &t->dec);
    if (st == SD_OK) st = load_coder(b, m, "encoder", 0, &t->enc);
    if (st == SD_OK && !t->dec.n && !t->enc.n) st = err_fail(SD_ERR_MODEL, "TAESD: no decoder.layers.* or encoder.layers.* tensors");
    if (st == SD_OK) st = check(t);
    if (st != SD_OK) {
        taesd_free(t);
        return st;
    }
    t->parts = (t->dec.n ? TAESD_DECODER : 0) | (t->enc.n ? TAESD_ENCODER : 0);
    t->latent_channels = t->dec.n ? t->dec.cin : t->enc.cout;
    t->factor = t->dec.n ? t->dec.factor : t->enc.factor;
    *out = t;
    return SD_OK;
}

int taesd_parts(const taesd_model *t) { return t->parts; }
int taesd_latent_channels(const taesd_model *t) { return t->latent_channels; }
int taesd_factor(const taesd_model *t) { return t->factor; }

static void describe_coder(const taesd_coder *c, const char *what, char *buf, size_t cap) {
    size_t n = strlen(buf);
    int width = 0, levels = 1, blocks = 0;
    for (int i = 0; i < c->n; i++) if (c->l[i].kind == TL_BLOCK && c->l[i].cout > width) width = c->l[i].cout;
    n += snprintf(buf + n, n < cap ? cap - n : 0, "%s%s: %d channels, blocks ", n ? "; " : "", what, width);
    for (int i = 0; i < c->n; i++) {
        const taesd_layer *L = &c->l[i];
        int boundary = L->kind == TL_UP || (L->kind == TL_CONV && L->stride == 2);
        if (boundary) {
            n += snprintf(buf + n, n < cap ? cap - n : 0, "%d-", blocks);
            blocks = 0;
            levels++;
        }
        if (L->kind == TL_BLOCK) blocks++;
    }
    snprintf(buf + n, n < cap ? cap - n : 0, "%d (%d levels)", blocks, levels);
}

void taesd_describe(const taesd_model *t, char *buf, size_t cap) {
    if (!cap) return;
    buf[0] = 0;
    if (t->dec.n) describe_coder(&t->dec, "decoder", buf, cap);
    if (t->enc.n) describe_coder(&t->enc, "encoder", buf, cap);
}

/* ---- forwards ---- */

/* The largest activation (per sample) between the first and the last layer of a part for an h x w input. */
static size_t largest(const taesd_coder *c, int h, int w) {
    size_t mx = 1;
    int ch = c->cin;
    for (int i = 0; i + 1 < c->n; i++) {
        const taesd_layer *L = &c->l[i];
        if (L->kind == TL_UP) { h *= 2; w *= 2; }
        if (L->kind == TL_CONV && L->stride == 2) { h = (h - 1) / 2 + 1; w = (w - 1) / 2 + 1; }
        if (L->kind == TL_CONV || L->kind == TL_BLOCK) ch = L->cout;
        if ((size_t)h * w * ch > mx) mx = (size_t)h * w * ch;
    }
    return mx;
}

/* A free buffer: neither `a` nor `b` (indices into buf, -1 for the caller's input). */
static int other(int a, int b) {
    for (int i = 0; i < 3; i++) if (i != a && i != b) return i;
    return 0;
}

/* x -> the block's output in a buffer other than x's (written into *y; returns its index). */
static int block_forward(be *b, const taesd_layer *L, const be_tensor *x, int xi, be_tensor buf[3], be_tensor *y) {
    int i1 = other(xi, -1), i2 = other(xi, i1);
    be_tensor t1 = be_view(buf[i1], x->n, x->h, x->w, L->cout), t2 = be_view(buf[i2], x->n, x->h, x->w, L->cout);
    be_conv2d(b, x, &L->cw[0], &L->cb[0], 1, 1, 1, &t1);
    be_act_fn(b, BE_ACT_RELU, &t1, &t1);
    be_conv2d(b, &t1, &L->cw[1], &L->cb[1], 1, 1, 1, &t2);
    be_act_fn(b, BE_ACT_RELU, &t2, &t2);
    be_conv2d(b, &t2, &L->cw[2], &L->cb[2], 1, 1, 1, &t1);
    if (L->cin != L->cout) { /* t2 is free again */
        be_conv2d(b, x, &L->skip, NULL, 1, 0, 0, &t2);
        be_add(b, &t1, &t2, 1.0f, &t1);
    } else {
        be_add(b, &t1, x, 1.0f, &t1);
    }
    be_act_fn(b, BE_ACT_RELU, &t1, &t1);
    *y = t1;
    return i1;
}

/* Runs a part's layers from x (the caller's tensor) into out (the caller's tensor, the last conv's output). */
static void coder_forward(be *b, const taesd_coder *c, const be_tensor *x, be_tensor *out) {
    size_t mark = be_mark(b);
    size_t mx = largest(c, x->h, x->w);
    if (mx > INT_MAX) {
        be_set_error(b, SD_ERR_ARG, "TAESD: a %dx%d activation is too large for one buffer", x->h, x->w);
        return;
    }
    be_tensor buf[3];
    for (int i = 0; i < 3; i++) buf[i] = be_new(b, x->n, 1, 1, (int)mx);
    be_tensor cur = *x;
    int ci = -1; /* which buffer holds cur (-1: the caller's input) */
    for (int i = 0; i < c->n && be_ok(b); i++) {
        const taesd_layer *L = &c->l[i];
        be_tensor y;
        int yi;
        switch (L->kind) {
        case TL_CONV: {
            int ho = L->stride == 2 ? (cur.h - 1) / 2 + 1 : cur.h, wo = L->stride == 2 ? (cur.w - 1) / 2 + 1 : cur.w;
            yi = other(ci, -1);
            y = i == c->n - 1 ? *out : be_view(buf[yi], cur.n, ho, wo, L->cout);
            be_conv2d(b, &cur, &L->w, L->has_bias ? &L->b : NULL, L->stride, 1, 1, &y);
            break;
        }
        case TL_BLOCK: yi = block_forward(b, L, &cur, ci, buf, &y); break;
        case TL_RELU: be_act_fn(b, BE_ACT_RELU, &cur, &cur); continue;
        case TL_UP:
            yi = other(ci, -1);
            y = be_view(buf[yi], cur.n, 2 * cur.h, 2 * cur.w, cur.c);
            be_upsample_nearest(b, &cur, &y);
            break;
        default: continue;
        }
        cur = y;
        ci = yi;
    }
    be_release(b, mark);
}

void taesd_decoder_forward(be *b, const taesd_model *t, const be_tensor *z, be_tensor *img) {
    const taesd_coder *d = &t->dec;
    if (!d->n) { be_set_error(b, SD_ERR_ARG, "TAESD: the decoder was not loaded"); return; }
    if (z->c != d->cin || img->n != z->n || img->h != z->h * d->factor || img->w != z->w * d->factor || img->c != 3) {
        be_set_error(b, SD_ERR_ARG, "TAESD decoder: latent [%d,%d,%d,%d] -> [%d,%d,%d,%d], expected %d channels and %dx the size", z->n, z->h,
                     z->w, z->c, img->n, img->h, img->w, img->c, d->cin, d->factor);
        return;
    }
    coder_forward(b, d, z, img);
}

void taesd_encoder_forward(be *b, const taesd_model *t, const be_tensor *img, be_tensor *z) {
    const taesd_coder *e = &t->enc;
    if (!e->n) { be_set_error(b, SD_ERR_ARG, "TAESD: the encoder was not loaded"); return; }
    int f = e->factor;
    if (img->c != 3 || img->h % f || img->w % f || img->h < f || img->w < f || z->n != img->n || z->h != img->h / f || z->w != img->w / f ||
        z->c != e->cout) {
        be_set_error(b, SD_ERR_ARG, "TAESD encoder: image [%d,%d,%d,%d] -> [%d,%d,%d,%d], expected RGB with sides multiples of %d", img->n,
                     img->h, img->w, img->c, z->n, z->h, z->w, z->c, f);
        return;
    }
    coder_forward(b, e, img, z);
}
