/* vae_model.c — AutoencoderKL weights and forwards (encoder, decoder) on the backend contract, NHWC.
 *
 * Decoder: [post_quant_conv] → conv_in → mid (ResNet, attention, ResNet) → up levels (layers+1 ResNets,
 * nearest 2x + conv 3x3 except the last) → GroupNorm+SiLU → conv_out. Encoder: conv_in → down levels
 * (layers ResNets, pad right/bottom + conv 3x3 stride 2 except the last) → mid → GN+SiLU → conv_out →
 * [quant_conv]. Activations ping-pong between two arena buffers sized for the largest tensor. */
#include "vae_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

#define TRY(x) do { sd_status st_ = (x); if (st_ != SD_OK) return st_; } while (0)

/* ---- loading ---- */

static sd_status load_mid(be *b, wmap *m, vae_mid *mid, const char *part, int C, const vae_config *c) {
    char p[128];
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s.mid_block.resnets.%d", part, k);
        TRY(layer_resnet_load(b, m, &mid->res[k], p, C, C, 0, c->groups, VAE_EPS));
    }
    if (!c->mid_attention) return SD_OK;
    mid->has_attn = 1;
    snprintf(p, sizeof p, "%s.mid_block.attentions.0", part);
    TRY(wmap_vec(b, m, &mid->gn_w, C, "%s.group_norm.weight", p));
    TRY(wmap_vec(b, m, &mid->gn_b, C, "%s.group_norm.bias", p));
    return layer_attn_load(b, m, &mid->attn, p, NULL, C, C, 1, 1); /* one head of all C channels, q/k/v with bias */
}

/* A host copy of a parameter vector (zeros for virtual weights and in measure mode). */
static sd_status host_vec(be *b, wmap *m, int len, float **out, const char *fmt, const char *p) {
    char name[160];
    snprintf(name, sizeof name, fmt, p);
    const st_tensor *t = wmap_find(m, name);
    if (!t) return err_fail(SD_ERR_MODEL, "missing tensor \"%s\"", name);
    if (b->measuring || !t->data) {
        *out = calloc(len, sizeof(float));
        return *out ? SD_OK : err_fail(SD_ERR_MEMORY, "out of memory");
    }
    int64_t n;
    *out = wmap_read_f32(m, name, &n);
    if (!*out) return SD_ERR_MODEL;
    if (n != len) return err_fail(SD_ERR_MODEL, "tensor \"%s\" has %lld values, expected %d", name, (long long)n, len);
    return SD_OK;
}

static sd_status load_level(be *b, wmap *m, vae_level *lv, const char *p, int nres, int cin, int cout, int samp, const char *samp_name,
                            int host_gn, const vae_config *c) {
    lv->res = calloc(nres, sizeof *lv->res);
    if (!lv->res) return err_fail(SD_ERR_MEMORY, "out of memory");
    if (host_gn && !(lv->gnh = calloc(nres, sizeof *lv->gnh))) return err_fail(SD_ERR_MEMORY, "out of memory");
    char q[160];
    for (int j = 0; j < nres; j++) {
        snprintf(q, sizeof q, "%s.resnets.%d", p, j);
        lv->nres = j + 1; /* so a failure frees what was loaded */
        TRY(layer_resnet_load(b, m, &lv->res[j], q, j ? cout : cin, cout, 0, c->groups, VAE_EPS));
        if (lv->gnh) {
            TRY(host_vec(b, m, j ? cout : cin, &lv->gnh[j].g1, "%s.norm1.weight", q));
            TRY(host_vec(b, m, j ? cout : cin, &lv->gnh[j].b1, "%s.norm1.bias", q));
            TRY(host_vec(b, m, cout, &lv->gnh[j].g2, "%s.norm2.weight", q));
            TRY(host_vec(b, m, cout, &lv->gnh[j].b2, "%s.norm2.bias", q));
        }
    }
    if (samp) {
        lv->has_samp = 1;
        TRY(wmap_load(b, m, &lv->samp_w, BE_W_CONV, cout, cout, 3, 3, "%s.%s.0.conv.weight", p, samp_name));
        TRY(wmap_vec(b, m, &lv->samp_b, cout, "%s.%s.0.conv.bias", p, samp_name));
    }
    return SD_OK;
}

static sd_status load_decoder(be *b, wmap *m, vae_model *v) {
    const vae_config *c = &v->cfg;
    vae_coder *d = &v->dec;
    int L = c->levels, C = c->block_out[L - 1], lc = c->latent_channels;
    if (c->post_quant_conv) {
        TRY(wmap_linear(b, m, &v->post_w, lc, lc, "post_quant_conv.weight"));
        TRY(wmap_vec(b, m, &v->post_b, lc, "post_quant_conv.bias"));
    }
    TRY(wmap_load(b, m, &d->in_w, BE_W_CONV, C, lc, 3, 3, "decoder.conv_in.weight"));
    TRY(wmap_vec(b, m, &d->in_b, C, "decoder.conv_in.bias"));
    TRY(load_mid(b, m, &d->mid, "decoder", C, c));
    for (int i = 0; i < L; i++) {
        char p[64];
        snprintf(p, sizeof p, "decoder.up_blocks.%d", i);
        int cout = c->block_out[L - 1 - i], cin = i ? c->block_out[L - i] : C;
        TRY(load_level(b, m, &d->level[i], p, c->layers_per_block + 1, cin, cout, i < L - 1, "upsamplers", i > 0, c));
    }
    TRY(wmap_vec(b, m, &d->norm_w, c->block_out[0], "decoder.conv_norm_out.weight"));
    TRY(wmap_vec(b, m, &d->norm_b, c->block_out[0], "decoder.conv_norm_out.bias"));
    TRY(host_vec(b, m, c->block_out[0], &d->norm_g_host, "%s.conv_norm_out.weight", "decoder"));
    TRY(host_vec(b, m, c->block_out[0], &d->norm_b_host, "%s.conv_norm_out.bias", "decoder"));
    TRY(wmap_load(b, m, &d->out_w, BE_W_CONV, c->out_channels, c->block_out[0], 3, 3, "decoder.conv_out.weight"));
    return wmap_vec(b, m, &d->out_b, c->out_channels, "decoder.conv_out.bias");
}

static sd_status load_encoder(be *b, wmap *m, vae_model *v) {
    const vae_config *c = &v->cfg;
    vae_coder *e = &v->enc;
    int L = c->levels, C = c->block_out[L - 1], lc2 = 2 * c->latent_channels;
    TRY(wmap_load(b, m, &e->in_w, BE_W_CONV, c->block_out[0], c->in_channels, 3, 3, "encoder.conv_in.weight"));
    TRY(wmap_vec(b, m, &e->in_b, c->block_out[0], "encoder.conv_in.bias"));
    for (int l = 0; l < L; l++) {
        char p[64];
        snprintf(p, sizeof p, "encoder.down_blocks.%d", l);
        TRY(load_level(b, m, &e->level[l], p, c->layers_per_block, l ? c->block_out[l - 1] : c->block_out[0], c->block_out[l], l < L - 1,
                       "downsamplers", 0, c));
    }
    TRY(load_mid(b, m, &e->mid, "encoder", C, c));
    TRY(wmap_vec(b, m, &e->norm_w, C, "encoder.conv_norm_out.weight"));
    TRY(wmap_vec(b, m, &e->norm_b, C, "encoder.conv_norm_out.bias"));
    TRY(wmap_load(b, m, &e->out_w, BE_W_CONV, lc2, C, 3, 3, "encoder.conv_out.weight"));
    TRY(wmap_vec(b, m, &e->out_b, lc2, "encoder.conv_out.bias"));
    if (c->quant_conv) {
        TRY(wmap_linear(b, m, &v->quant_w, lc2, lc2, "quant_conv.weight"));
        TRY(wmap_vec(b, m, &v->quant_b, lc2, "quant_conv.bias"));
    }
    return SD_OK;
}

static void free_coder(be *b, vae_coder *d) {
    be_weight *ws[] = {&d->in_w, &d->in_b, &d->mid.gn_w, &d->mid.gn_b, &d->norm_w, &d->norm_b, &d->out_w, &d->out_b};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) be_weight_free(b, ws[i]);
    for (int k = 0; k < 2; k++) layer_resnet_free(b, &d->mid.res[k]);
    free(d->norm_g_host);
    free(d->norm_b_host);
    layer_attn_free(b, &d->mid.attn);
    for (int l = 0; l < VAE_MAX_LEVELS; l++) {
        vae_level *lv = &d->level[l];
        for (int j = 0; j < lv->nres; j++) {
            layer_resnet_free(b, &lv->res[j]);
            if (lv->gnh) { free(lv->gnh[j].g1); free(lv->gnh[j].b1); free(lv->gnh[j].g2); free(lv->gnh[j].b2); }
        }
        free(lv->res);
        free(lv->gnh);
        be_weight_free(b, &lv->samp_w);
        be_weight_free(b, &lv->samp_b);
    }
}

void vae_free(vae_model *v) {
    if (!v) return;
    free_coder(v->b, &v->enc);
    free_coder(v->b, &v->dec);
    be_weight *ws[] = {&v->quant_w, &v->quant_b, &v->post_w, &v->post_b};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) be_weight_free(v->b, ws[i]);
    free(v);
}

sd_status vae_load(be *b, wmap *m, const vae_config *c, int parts, vae_model **out) {
    *out = NULL;
    TRY(vae_config_check(c));
    if (!(parts & (VAE_DECODER | VAE_ENCODER))) return err_fail(SD_ERR_ARG, "vae_load: no part asked for");
    vae_model *v = calloc(1, sizeof *v);
    if (!v) return err_fail(SD_ERR_MEMORY, "out of memory");
    v->cfg = *c;
    v->b = b;
    v->parts = parts & (VAE_DECODER | VAE_ENCODER);
    sd_status st = SD_OK;
    if (parts & VAE_DECODER) st = load_decoder(b, m, v);
    if (st == SD_OK && (parts & VAE_ENCODER)) st = load_encoder(b, m, v);
    if (st != SD_OK) {
        err_prefix("VAE");
        vae_free(v);
        return st;
    }
    /* the other part's tensors are expected in the file, just not needed */
    for (int i = 0; i < wmap_count(m); i++) {
        const char *n = wmap_name(m, i);
        int enc = !strncmp(n, "encoder.", 8) || !strncmp(n, "quant_conv.", 11);
        int dec = !strncmp(n, "decoder.", 8) || !strncmp(n, "post_quant_conv.", 16);
        if ((enc && !(parts & VAE_ENCODER)) || (dec && !(parts & VAE_DECODER))) wmap_mark_used(m, n);
    }
    *out = v;
    return SD_OK;
}

const vae_config *vae_get_config(const vae_model *v) { return &v->cfg; }
int vae_factor(const vae_model *v) { return 1 << (v->cfg.levels - 1); }

static int down_size(int x) { return x >= 2 ? (x - 2) / 2 + 1 : 0; } /* pad 1 at the end, 3x3, stride 2 */

void vae_latent_size(const vae_model *v, int H, int W, int *h, int *w) {
    for (int l = 0; l + 1 < v->cfg.levels; l++) { H = down_size(H); W = down_size(W); }
    *h = H;
    *w = W;
}

/* ---- forwards ---- */

/* The largest activation (per sample) of a forward, as a shape: the two ping-pong buffers get it. */
typedef struct shape3 { int h, w, c; } shape3;
static void track(shape3 *m, int h, int w, int c) {
    if ((size_t)h * w * c > (size_t)m->h * m->w * m->c) { m->h = h; m->w = w; m->c = c; }
}

static void attn_block(be *b, const vae_mid *mid, int groups, const be_tensor *x, be_tensor *y) {
    size_t mark = be_mark(b);
    be_tensor h = be_new(b, x->n, x->h, x->w, x->c);
    be_group_norm(b, x, &mid->gn_w, &mid->gn_b, groups, VAE_EPS, 0, &h);
    layer_attn_forward(b, &mid->attn, &h, NULL, 0, y); /* the H·W positions of a sample are its sequence */
    be_add(b, y, x, 1.0f, y);
    be_release(b, mark);
}

/* x lives in buf[*cur]; the result of each layer goes to the other buffer. */
static be_tensor mid_forward(be *b, const vae_mid *mid, int groups, be_tensor buf[2], int *cur, be_tensor x) {
    be_tensor y = be_view(buf[!*cur], x.n, x.h, x.w, x.c);
    layer_resnet_forward(b, &mid->res[0], &x, NULL, &y);
    *cur = !*cur;
    x = y;
    if (mid->has_attn) {
        y = be_view(buf[!*cur], x.n, x.h, x.w, x.c);
        attn_block(b, mid, groups, &x, &y);
        *cur = !*cur;
        x = y;
    }
    y = be_view(buf[!*cur], x.n, x.h, x.w, x.c);
    layer_resnet_forward(b, &mid->res[1], &x, NULL, &y);
    *cur = !*cur;
    return y;
}

/* The level's ResNets; the last one writes into `out` when given. */
static be_tensor resnets_forward(be *b, const vae_level *lv, be_tensor buf[2], int *cur, be_tensor x, const be_tensor *out) {
    for (int j = 0; j < lv->nres; j++) {
        be_tensor y = out && j == lv->nres - 1 ? *out : be_view(buf[!*cur], x.n, x.h, x.w, lv->res[j].cout);
        layer_resnet_forward(b, &lv->res[j], &x, NULL, &y);
        *cur = !*cur;
        x = y;
    }
    return x;
}

static int dec_check(be *b, const vae_model *v, const be_tensor *z, int oh, int ow, int oc, const be_tensor *out, const char *what) {
    if (!(v->parts & VAE_DECODER)) { be_set_error(b, SD_ERR_ARG, "VAE: the decoder was not loaded"); return 0; }
    if (z->c != v->cfg.latent_channels || out->n != z->n || out->h != oh || out->w != ow || out->c != oc) {
        be_set_error(b, SD_ERR_ARG, "VAE %s: latent [%d,%d,%d,%d] -> [%d,%d,%d,%d], expected [%d,%d,%d,%d]", what, z->n, z->h, z->w, z->c,
                     out->n, out->h, out->w, out->c, z->n, oh, ow, oc);
        return 0;
    }
    return 1;
}

/* Everything at latent resolution: [post_quant_conv], conv_in, the mid block, the first up level's
 * ResNets (its upsampler excluded). The result goes to `out` when given. */
static be_tensor dec_trunk(be *b, const vae_model *v, const be_tensor *z, be_tensor buf[2], int *cur, const be_tensor *out) {
    const vae_config *c = &v->cfg;
    const vae_coder *d = &v->dec;
    int N = z->n, h = z->h, w = z->w, C = c->block_out[c->levels - 1];
    *cur = 0;
    be_tensor x = be_view(buf[0], N, h, w, C);
    if (c->post_quant_conv) {
        be_tensor t = be_view(buf[1], N, h, w, c->latent_channels);
        be_linear(b, z, &v->post_w, &v->post_b, BE_ACT_NONE, &t);
        be_conv2d(b, &t, &d->in_w, &d->in_b, 1, 1, 1, &x);
    } else {
        be_conv2d(b, z, &d->in_w, &d->in_b, 1, 1, 1, &x);
    }
    x = mid_forward(b, &d->mid, c->groups, buf, cur, x);
    return resnets_forward(b, &d->level[0], buf, cur, x, out);
}

void vae_decoder_forward(be *b, const vae_model *v, const be_tensor *z, be_tensor *img) {
    const vae_config *c = &v->cfg;
    const vae_coder *d = &v->dec;
    int L = c->levels, C = c->block_out[L - 1], lc = c->latent_channels, f = 1 << (L - 1);
    int N = z->n, h = z->h, w = z->w;
    if (!dec_check(b, v, z, h * f, w * f, c->out_channels, img, "decoder")) return;
    shape3 mx = {1, 1, 1};
    track(&mx, h, w, C > lc ? C : lc);
    for (int i = 0, rh = h, rw = w; i < L; i++, rh *= 2, rw *= 2) {
        int cout = c->block_out[L - 1 - i];
        track(&mx, rh, rw, cout);
        if (i < L - 1) track(&mx, 2 * rh, 2 * rw, cout);
    }
    size_t mark = be_mark(b);
    be_tensor buf[2] = {be_new(b, N, mx.h, mx.w, mx.c), be_new(b, N, mx.h, mx.w, mx.c)};
    int cur;
    be_tensor x = dec_trunk(b, v, z, buf, &cur, NULL);
    for (int i = 0; i < L; i++) {
        const vae_level *lv = &d->level[i];
        if (i) x = resnets_forward(b, lv, buf, &cur, x, NULL);
        if (lv->has_samp) { /* nearest 2x into the free buffer, then the conv back into x's (x is dead by then) */
            be_tensor u = be_view(buf[!cur], N, 2 * x.h, 2 * x.w, x.c);
            be_upsample_nearest(b, &x, &u);
            x = be_view(buf[cur], N, u.h, u.w, u.c);
            be_conv2d(b, &u, &lv->samp_w, &lv->samp_b, 1, 1, 1, &x);
        }
    }
    be_group_norm(b, &x, &d->norm_w, &d->norm_b, c->groups, VAE_EPS, 1, &x);
    be_conv2d(b, &x, &d->out_w, &d->out_b, 1, 1, 1, img);
    be_release(b, mark);
}

void vae_dec_trunk_forward(be *b, const vae_model *v, const be_tensor *z, be_tensor *y) {
    const vae_config *c = &v->cfg;
    int C = c->block_out[c->levels - 1], lc = c->latent_channels;
    if (!dec_check(b, v, z, z->h, z->w, C, y, "decoder trunk")) return;
    size_t mark = be_mark(b);
    be_tensor buf[2] = {be_new(b, z->n, z->h, z->w, C > lc ? C : lc), be_new(b, z->n, z->h, z->w, C > lc ? C : lc)};
    int cur;
    dec_trunk(b, v, z, buf, &cur, y);
    be_release(b, mark);
}

void vae_encoder_forward(be *b, const vae_model *v, const be_tensor *img, be_tensor *moments) {
    const vae_config *c = &v->cfg;
    const vae_coder *e = &v->enc;
    int L = c->levels, C = c->block_out[L - 1], lc2 = 2 * c->latent_channels, N = img->n, h, w;
    if (!(v->parts & VAE_ENCODER)) { be_set_error(b, SD_ERR_ARG, "VAE: the encoder was not loaded"); return; }
    vae_latent_size(v, img->h, img->w, &h, &w);
    if (img->c != c->in_channels || h < 1 || w < 1 || moments->n != N || moments->h != h || moments->w != w || moments->c != lc2) {
        be_set_error(b, SD_ERR_ARG, "VAE encoder: image [%d,%d,%d,%d] -> moments [%d,%d,%d,%d], expected [%d,%d,%d,%d] (%d input channels)", img->n,
                     img->h, img->w, img->c, moments->n, moments->h, moments->w, moments->c, N, h, w, lc2, c->in_channels);
        return;
    }
    shape3 mx = {1, 1, 1};
    for (int l = 0, rh = img->h, rw = img->w; l < L; l++) {
        track(&mx, rh, rw, l ? c->block_out[l - 1] : c->block_out[0]);
        track(&mx, rh, rw, c->block_out[l]);
        rh = down_size(rh);
        rw = down_size(rw);
    }
    track(&mx, h, w, C > lc2 ? C : lc2);
    size_t mark = be_mark(b);
    be_tensor buf[2] = {be_new(b, N, mx.h, mx.w, mx.c), be_new(b, N, mx.h, mx.w, mx.c)};
    int cur = 0;
    be_tensor x = be_view(buf[0], N, img->h, img->w, c->block_out[0]);
    be_conv2d(b, img, &e->in_w, &e->in_b, 1, 1, 1, &x);
    for (int l = 0; l < L; l++) {
        const vae_level *lv = &e->level[l];
        x = resnets_forward(b, lv, buf, &cur, x, NULL);
        if (lv->has_samp) { /* zero pad right and bottom only, then 3x3 stride 2 */
            be_tensor y = be_view(buf[!cur], N, down_size(x.h), down_size(x.w), x.c);
            be_conv2d(b, &x, &lv->samp_w, &lv->samp_b, 2, 0, 1, &y);
            cur = !cur;
            x = y;
        }
    }
    x = mid_forward(b, &e->mid, c->groups, buf, &cur, x);
    be_group_norm(b, &x, &e->norm_w, &e->norm_b, c->groups, VAE_EPS, 1, &x);
    if (c->quant_conv) {
        be_tensor t = be_view(buf[!cur], N, h, w, lc2);
        be_conv2d(b, &x, &e->out_w, &e->out_b, 1, 1, 1, &t);
        be_linear(b, &t, &v->quant_w, &v->quant_b, BE_ACT_NONE, moments);
    } else {
        be_conv2d(b, &x, &e->out_w, &e->out_b, 1, 1, 1, moments);
    }
    be_release(b, mark);
}
