/* unet.c — UNet2DConditionModel: loading by canonical (diffusers) names and the NHWC forward. */
#include "unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

#define TRY(x) do { sd_status st_ = (x); if (st_ != SD_OK) return st_; } while (0)

typedef struct unet_level {
    int n;                                   /* resnets (down: layers, up: layers + 1) */
    layer_resnet res[UNET_MAX_LAYERS + 1];
    layer_t2d attn[UNET_MAX_LAYERS + 1];     /* depth 0: none after this resnet */
    int has_sample;                          /* down: stride-2 conv; up: nearest upsample + conv */
    be_weight sample_w, sample_b;
} unet_level;

/* The cross-attention keys and values of the last context given with an id: for the transformer blocks of t2d[i],
 * kv[off[i]] ... (two tensors per block), [N, 1, T, channels], outside the arena so that they outlive a forward. */
#define UNET_MAX_T2D (2 * UNET_MAX_LEVELS * (UNET_MAX_LAYERS + 1) + 1)
typedef struct unet_kv {
    const layer_t2d *t2d[UNET_MAX_T2D];
    int off[UNET_MAX_T2D + 1], n_t2d;
    be_tensor *kv;
    unsigned id, next_id;    /* id of the context in kv (0: none); the last id handed out */
    const void *src;         /* the context tensor they were made from */
    int n, t;                /* its batch and tokens (the buffers' shape) */
} unet_kv;

struct unet_model {
    unet_config cfg;
    unet_kv *kvc;
    be_weight conv_in_w, conv_in_b;
    be_weight t1_w, t1_b, t2_w, t2_b, tcond_w;     /* time_embedding.{linear_1, linear_2, cond_proj} */
    be_weight a1_w, a1_b, a2_w, a2_b;              /* add_embedding.{linear_1, linear_2} (SDXL) */
    unet_level down[UNET_MAX_LEVELS], up[UNET_MAX_LEVELS]; /* up[l] works at the resolution of down[l] */
    layer_resnet mid_res[2];
    layer_t2d mid_attn;
    be_weight norm_out_w, norm_out_b, conv_out_w, conv_out_b;
    int encoder_only;                              /* a ControlNet's half: no up path, no output layers */
};

const unet_config *unet_get_config(const unet_model *u) { return &u->cfg; }

/* ---- loading ---- */

static sd_status load_conv(be *b, wmap *m, be_weight *w, be_weight *bias, int out, int in, const char *p) {
    TRY(wmap_load(b, m, w, BE_W_CONV, out, in, 3, 3, "%s.weight", p));
    return wmap_vec(b, m, bias, out, "%s.bias", p);
}

static sd_status load_attn(be *b, wmap *m, layer_t2d *t, const char *p, int ch, int ctx, int heads, int depth, int groups) {
    if (!depth) return SD_OK;
    return layer_t2d_load(b, m, t, p, ch, ctx, heads, depth, groups);
}

static sd_status load_all(be *b, wmap *m, unet_model *u) {
    const unet_config *c = &u->cfg;
    int L = c->levels, C0 = c->block_out[0];
    char p[256];
    TRY(load_conv(b, m, &u->conv_in_w, &u->conv_in_b, C0, c->in_channels, "conv_in"));
    TRY(wmap_linear(b, m, &u->t1_w, c->temb_dim, C0, "time_embedding.linear_1.weight"));
    TRY(wmap_vec(b, m, &u->t1_b, c->temb_dim, "time_embedding.linear_1.bias"));
    TRY(wmap_linear(b, m, &u->t2_w, c->temb_dim, c->temb_dim, "time_embedding.linear_2.weight"));
    TRY(wmap_vec(b, m, &u->t2_b, c->temb_dim, "time_embedding.linear_2.bias"));
    if (c->time_cond_dim) TRY(wmap_linear(b, m, &u->tcond_w, C0, c->time_cond_dim, "time_embedding.cond_proj.weight"));
    if (c->add_embed) {
        TRY(wmap_linear(b, m, &u->a1_w, c->temb_dim, c->add_in_dim, "add_embedding.linear_1.weight"));
        TRY(wmap_vec(b, m, &u->a1_b, c->temb_dim, "add_embedding.linear_1.bias"));
        TRY(wmap_linear(b, m, &u->a2_w, c->temb_dim, c->temb_dim, "add_embedding.linear_2.weight"));
        TRY(wmap_vec(b, m, &u->a2_b, c->temb_dim, "add_embedding.linear_2.bias"));
    }
    /* channel bookkeeping of the skip connections, as the forward pushes and pops them */
    int skip[1 + UNET_MAX_LEVELS * (UNET_MAX_LAYERS + 1)], ns = 0, ch = C0;
    skip[ns++] = ch;
    for (int l = 0; l < L; l++) {
        unet_level *d = &u->down[l];
        int co = c->block_out[l];
        for (int j = 0; j < c->layers[l]; j++) {
            snprintf(p, sizeof p, "down_blocks.%d.resnets.%d", l, j);
            d->n = j + 1;
            TRY(layer_resnet_load(b, m, &d->res[j], p, ch, co, c->temb_dim, c->norm_groups, c->norm_eps));
            snprintf(p, sizeof p, "down_blocks.%d.attentions.%d", l, j);
            TRY(load_attn(b, m, &d->attn[j], p, co, c->ctx_dim, c->heads[l], c->down_depth[l][j], c->norm_groups));
            skip[ns++] = ch = co;
        }
        if (l < L - 1) {
            snprintf(p, sizeof p, "down_blocks.%d.downsamplers.0.conv", l);
            d->has_sample = 1;
            TRY(load_conv(b, m, &d->sample_w, &d->sample_b, ch, ch, p));
            skip[ns++] = ch;
        }
    }
    TRY(layer_resnet_load(b, m, &u->mid_res[0], "mid_block.resnets.0", ch, ch, c->temb_dim, c->norm_groups, c->norm_eps));
    TRY(load_attn(b, m, &u->mid_attn, "mid_block.attentions.0", ch, c->ctx_dim, c->mid_heads, c->mid_depth, c->norm_groups));
    TRY(layer_resnet_load(b, m, &u->mid_res[1], "mid_block.resnets.1", ch, ch, c->temb_dim, c->norm_groups, c->norm_eps));
    if (u->encoder_only) return SD_OK; /* the ControlNet's loader owns the rest of its file */
    for (int l = L - 1; l >= 0; l--) {
        unet_level *up = &u->up[l];
        int i = L - 1 - l, co = c->block_out[l];
        for (int j = 0; j <= c->layers[l]; j++) {
            int s = skip[--ns];
            snprintf(p, sizeof p, "up_blocks.%d.resnets.%d", i, j);
            up->n = j + 1;
            TRY(layer_resnet_load(b, m, &up->res[j], p, ch + s, co, c->temb_dim, c->norm_groups, c->norm_eps));
            snprintf(p, sizeof p, "up_blocks.%d.attentions.%d", i, j);
            TRY(load_attn(b, m, &up->attn[j], p, co, c->ctx_dim, c->heads[l], c->up_depth[l][j], c->norm_groups));
            ch = co;
        }
        if (l > 0) {
            snprintf(p, sizeof p, "up_blocks.%d.upsamplers.0.conv", i);
            up->has_sample = 1;
            TRY(load_conv(b, m, &up->sample_w, &up->sample_b, ch, ch, p));
        }
    }
    TRY(wmap_vec(b, m, &u->norm_out_w, C0, "conv_norm_out.weight"));
    TRY(wmap_vec(b, m, &u->norm_out_b, C0, "conv_norm_out.bias"));
    TRY(load_conv(b, m, &u->conv_out_w, &u->conv_out_b, c->out_channels, ch, "conv_out"));

    char names[1024];
    int extra = wmap_unused(m, names, sizeof names);
    if (extra) {
        if (strlen(names) >= sizeof names - 1) strcpy(names + sizeof names - 5, "...");
        return err_fail(SD_ERR_MODEL, "%d unexpected tensor%s for this UNet configuration: %s", extra, extra > 1 ? "s" : "", names);
    }
    return SD_OK;
}

/* ---- cross-attention keys and values, kept across forwards ---- */

static void kv_add(unet_kv *k, const layer_t2d *a) {
    if (!a->depth) return;
    k->t2d[k->n_t2d] = a;
    k->off[k->n_t2d + 1] = k->off[k->n_t2d] + 2 * a->depth;
    k->n_t2d++;
}

/* every transformer of the model, in the order of the forward */
static void kv_index(unet_model *u) {
    unet_kv *k = u->kvc;
    for (int l = 0; l < u->cfg.levels; l++)
        for (int j = 0; j < u->down[l].n; j++) kv_add(k, &u->down[l].attn[j]);
    kv_add(k, &u->mid_attn);
    for (int l = u->cfg.levels - 1; l >= 0; l--)
        for (int j = 0; j < u->up[l].n; j++) kv_add(k, &u->up[l].attn[j]);
}

static void kv_release(be *b, unet_kv *k) {
    if (k->kv)
        for (int i = 0; i < k->off[k->n_t2d]; i++) be_buffer_free(b, &k->kv[i]);
    free(k->kv);
    k->kv = NULL;
    k->id = 0;
}

unsigned unet_context_id(unet_model *u) {
    if (++u->kvc->next_id == 0) u->kvc->next_id = 1;
    return u->kvc->next_id;
}

/* The keys and values for context ctx with id `id`: kept from an earlier forward, or made now. NULL (each forward
 * makes its own) without an id, in measure mode, or when the buffers cannot be had. */
static const be_tensor *kv_for_context(be *b, const unet_model *u, const be_tensor *ctx, unsigned id) {
    unet_kv *k = u->kvc;
    const int N = ctx->n, T = ctx->h * ctx->w, nkv = k->off[k->n_t2d];
    if (!id || b->measuring || !nkv || !be_ok(b)) return NULL;
    if (k->kv && k->id == id && k->src == ctx->data && k->n == N && k->t == T) return k->kv;
    if (k->kv && (k->n != N || k->t != T)) kv_release(b, k);
    if (!k->kv) {
        k->kv = calloc((size_t)nkv, sizeof *k->kv);
        if (!k->kv) return NULL;
        for (int i = 0; i < k->n_t2d; i++)
            for (int j = k->off[i]; j < k->off[i + 1]; j++)
                if (be_buffer_new(b, &k->kv[j], N, 1, T, k->t2d[i]->ch) != SD_OK) {
                    kv_release(b, k);
                    return NULL;
                }
        k->n = N;
        k->t = T;
    }
    for (int i = 0; i < k->n_t2d; i++) layer_t2d_context_kv(b, k->t2d[i], ctx, k->kv + k->off[i]);
    k->id = be_ok(b) ? id : 0;
    k->src = ctx->data;
    return k->kv;
}

/* the keys and values of transformer a within the set kv (NULL: none) */
static const be_tensor *kv_of(const unet_model *u, const be_tensor *kv, const layer_t2d *a) {
    if (!kv) return NULL;
    for (int i = 0; i < u->kvc->n_t2d; i++)
        if (u->kvc->t2d[i] == a) return kv + u->kvc->off[i];
    return NULL;
}

static sd_status load_model(be *b, wmap *m, const unet_config *cfg, int encoder_only, unet_model **out) {
    *out = NULL;
    unet_model *u = calloc(1, sizeof *u);
    if (!u) return err_fail(SD_ERR_MEMORY, "out of memory");
    u->cfg = *cfg;
    u->encoder_only = encoder_only;
    u->kvc = calloc(1, sizeof *u->kvc);
    sd_status st = u->kvc ? load_all(b, m, u) : err_fail(SD_ERR_MEMORY, "out of memory");
    if (st == SD_OK) kv_index(u);
    if (st != SD_OK) {
        err_prefix("UNet");
        unet_free(b, u);
        return st;
    }
    *out = u;
    return SD_OK;
}

sd_status unet_load(be *b, wmap *m, const unet_config *cfg, unet_model **out) { return load_model(b, m, cfg, 0, out); }
sd_status unet_load_encoder(be *b, wmap *m, const unet_config *cfg, unet_model **out) { return load_model(b, m, cfg, 1, out); }

static void free_level(be *b, unet_level *lv) {
    for (int j = 0; j < UNET_MAX_LAYERS + 1; j++) {
        layer_resnet_free(b, &lv->res[j]);
        layer_t2d_free(b, &lv->attn[j]);
    }
    be_weight_free(b, &lv->sample_w);
    be_weight_free(b, &lv->sample_b);
}

void unet_free(be *b, unet_model *u) {
    if (!u) return;
    be_weight *ws[] = {&u->conv_in_w, &u->conv_in_b, &u->t1_w, &u->t1_b, &u->t2_w, &u->t2_b, &u->tcond_w, &u->a1_w, &u->a1_b,
                       &u->a2_w, &u->a2_b, &u->norm_out_w, &u->norm_out_b, &u->conv_out_w, &u->conv_out_b};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) be_weight_free(b, ws[i]);
    for (int l = 0; l < UNET_MAX_LEVELS; l++) {
        free_level(b, &u->down[l]);
        free_level(b, &u->up[l]);
    }
    layer_resnet_free(b, &u->mid_res[0]);
    layer_resnet_free(b, &u->mid_res[1]);
    layer_t2d_free(b, &u->mid_attn);
    if (u->kvc) kv_release(b, u->kvc);
    free(u->kvc);
    free(u);
}

/* ---- forward ---- */

/* resnet on x (or the channel concat [x | x2]) with its projected time embedding tp, then the attention if this slot
 * has one: -> y (allocated by the caller) */
static void res_attn(be *b, const layer_resnet *r, const layer_t2d *a, const be_tensor *x, const be_tensor *x2, const be_tensor *tp,
                     const be_tensor *ctx, const be_tensor *kv, be_tensor *y) {
    if (!a->depth) {
        layer_resnet_forward_cat(b, r, x, x2, tp, y);
        return;
    }
    size_t mark = be_mark(b);
    be_tensor h = be_new(b, y->n, y->h, y->w, y->c);
    layer_resnet_forward_cat(b, r, x, x2, tp, &h);
    layer_t2d_forward_kv(b, a, &h, ctx, kv, y);
    be_release(b, mark);
}

/* SiLU(time embedding [+ add embedding]) -> temb [N, 1, 1, temb_dim] */
static void time_embed(be *b, const unet_model *u, int N, const float *ts, const unet_cond *c, be_tensor *temb) {
    const unet_config *g = &u->cfg;
    size_t mark = be_mark(b);
    be_tensor s = be_new(b, N, 1, 1, g->block_out[0]);
    be_timestep_embedding(b, ts, g->flip_sin_to_cos, g->freq_shift, &s);
    if (g->time_cond_dim && c->timestep_cond) { /* LCM: guidance embedding projected onto the sinusoids */
        be_tensor p = be_new(b, N, 1, 1, g->block_out[0]);
        be_linear(b, c->timestep_cond, &u->tcond_w, NULL, BE_ACT_NONE, &p);
        be_add(b, &s, &p, 1.0f, &s);
    }
    be_tensor h = be_new(b, N, 1, 1, g->temb_dim), e = be_new(b, N, 1, 1, g->temb_dim);
    be_linear(b, &s, &u->t1_w, &u->t1_b, BE_ACT_SILU, &h);
    if (!g->add_embed) { /* every resnet takes SiLU(temb): computed once, here with the projection */
        be_linear(b, &h, &u->t2_w, &u->t2_b, BE_ACT_SILU, temb);
        be_release(b, mark);
        return;
    }
    be_linear(b, &h, &u->t2_w, &u->t2_b, BE_ACT_NONE, &e);
    /* SDXL: + the add embedding of the pooled text ‖ sinusoids of the size/crop ids (one row per id, rows contiguous) */
    int pooled = c->text_embeds->c, nids = unet_config_n_time_ids(g, pooled);
    be_tensor ids = be_new(b, N * nids, 1, 1, g->add_time_dim), cat = be_new(b, N, 1, 1, g->add_in_dim);
    be_timestep_embedding(b, c->time_ids, g->flip_sin_to_cos, g->freq_shift, &ids);
    be_tensor idv = be_view(ids, N, 1, 1, nids * g->add_time_dim);
    be_concat_channels(b, c->text_embeds, &idv, &cat);
    be_linear(b, &cat, &u->a1_w, &u->a1_b, BE_ACT_SILU, &h);
    be_tensor a = be_new(b, N, 1, 1, g->temb_dim);
    be_linear(b, &h, &u->a2_w, &u->a2_b, BE_ACT_NONE, &a);
    be_add(b, &e, &a, 1.0f, &e);
    be_act_fn(b, BE_ACT_SILU, &e, temb);
    be_release(b, mark);
}

#define UNET_MAX_RESNETS (UNET_MAX_LEVELS * (2 * UNET_MAX_LAYERS + 1) + 2)

static be_tensor project(be *b, const layer_resnet *r, const be_tensor *temb) {
    be_tensor t = be_new(b, temb->n, 1, 1, r->cout);
    layer_resnet_temb(b, r, temb, &t);
    return t;
}

/* Every resnet's projection of SiLU(temb) into tp, in the order the forward takes them (down, mid, then up unless
 * the model is an encoder half), one after another: a backend may run them as one launch (CUDA: 22 -> 1 for SD 1.5). */
static void project_temb(be *b, const unet_model *u, const be_tensor *temb, be_tensor *tp) {
    int n = 0, L = u->cfg.levels;
    for (int l = 0; l < L; l++)
        for (int j = 0; j < u->down[l].n; j++) tp[n++] = project(b, &u->down[l].res[j], temb);
    tp[n++] = project(b, &u->mid_res[0], temb);
    tp[n++] = project(b, &u->mid_res[1], temb);
    if (!u->encoder_only)
        for (int l = L - 1; l >= 0; l--)
            for (int j = 0; j < u->up[l].n; j++) tp[n++] = project(b, &u->up[l].res[j], temb);
}

static int check_inputs(be *b, const unet_model *u, const be_tensor *x, const float *ts, const unet_cond *c, const be_tensor *out) {
    const unet_config *g = &u->cfg;
    if (!x || !c || !c->ctx || !out) { be_set_error(b, SD_ERR_ARG, "unet_forward: missing input"); return 0; }
    int N = x->n;
    if (x->c != g->in_channels || out->n != N || out->h != x->h || out->w != x->w || out->c != g->out_channels) {
        be_set_error(b, SD_ERR_ARG, "unet_forward: x [%d,%d,%d,%d] -> out [%d,%d,%d,%d], the model takes %d channels and gives %d",
                     x->n, x->h, x->w, x->c, out->n, out->h, out->w, out->c, g->in_channels, g->out_channels);
        return 0;
    }
    if (c->ctx->n != N || c->ctx->c != g->ctx_dim) {
        be_set_error(b, SD_ERR_ARG, "unet_forward: context [%d,%d,%d,%d] for batch %d, the model takes %d-wide context", c->ctx->n,
                     c->ctx->h, c->ctx->w, c->ctx->c, N, g->ctx_dim);
        return 0;
    }
    if (!ts && !b->measuring) { be_set_error(b, SD_ERR_ARG, "unet_forward: no timesteps"); return 0; }
    if (g->add_embed) {
        if (!c->text_embeds || (!c->time_ids && !b->measuring)) {
            be_set_error(b, SD_ERR_ARG, "unet_forward: this UNet (SDXL-style add embedding) needs text_embeds and time_ids");
            return 0;
        }
        const be_tensor *t = c->text_embeds;
        if (t->n != N || t->h != 1 || t->w != 1 || unet_config_n_time_ids(g, t->c) < 1) {
            be_set_error(b, SD_ERR_ARG, "unet_forward: text_embeds [%d,%d,%d,%d] do not fit the %d-wide add embedding", t->n, t->h, t->w,
                         t->c, g->add_in_dim);
            return 0;
        }
    }
    if (c->timestep_cond) {
        const be_tensor *t = c->timestep_cond;
        if (!g->time_cond_dim || t->n != N || t->h != 1 || t->w != 1 || t->c != g->time_cond_dim) {
            be_set_error(b, SD_ERR_ARG, "unet_forward: timestep_cond [%d,%d,%d,%d] given, the model takes %d-wide", t->n, t->h, t->w, t->c,
                         g->time_cond_dim);
            return 0;
        }
    }
    return 1;
}

int unet_skip_count(const unet_config *g) {
    int n = 1 + g->levels - 1;
    for (int l = 0; l < g->levels; l++) n += g->layers[l];
    return n;
}

void unet_skip_shape(const unet_config *g, int i, int h, int w, int *sh, int *sw, int *sc) {
    int k = 0, c = g->block_out[0];
    for (int l = 0; l < g->levels && k < i; l++) {
        c = g->block_out[l];
        for (int j = 0; j < g->layers[l] && k < i; j++) k++;
        if (k < i && l < g->levels - 1) {
            k++;
            h = (h + 1) / 2;
            w = (w + 1) / 2;
        }
    }
    *sh = h;
    *sw = w;
    *sc = c;
}

/* Adds a residual to rows [row0, row0 + r->n) of t. */
static void add_rows(be *b, be_tensor *t, const be_tensor *r, int row0) {
    if (r->n < 1 || row0 < 0 || row0 + r->n > t->n || r->h != t->h || r->w != t->w || r->c != t->c) {
        be_set_error(b, SD_ERR_ARG, "unet_forward: ControlNet residual [%d,%d,%d,%d] at row %d does not fit the skip [%d,%d,%d,%d]", r->n, r->h,
                     r->w, r->c, row0, t->n, t->h, t->w, t->c);
        return;
    }
    be_tensor v = be_view(*t, r->n, t->h, t->w, t->c);
    if (t->data) v.data = (char *)t->data + (size_t)row0 * t->h * t->w * t->c * b->elem_size;
    be_add(b, &v, r, 1.0f, &v);
}

/* conv_in (+ hint), down blocks, mid block: the resnets' time embeddings (tp, UNET_MAX_RESNETS; *ntp of them used
 * here), skips and the mid output in the arena (caller's mark). */
static void encode(be *b, const unet_model *u, const be_tensor *x, const float *ts, const unet_cond *c, const be_tensor *hint,
                   const be_tensor *kv, be_tensor *tp, int *ntp, be_tensor *skip, int *nskip, be_tensor *mid, int *lh, int *lw) {
    const unet_config *g = &u->cfg;
    const be_tensor *ctx = c->ctx;
    int N = x->n, L = g->levels, ti = 0;
    be_tensor temb = be_new(b, N, 1, 1, g->temb_dim);
    time_embed(b, u, N, ts, c, &temb);
    project_temb(b, u, &temb, tp);

    /* down: every output is kept as a skip for the way up */
    int ns = 0;
    be_tensor h = be_new(b, N, x->h, x->w, g->block_out[0]);
    be_conv2d(b, x, &u->conv_in_w, &u->conv_in_b, 1, 1, 1, &h);
    if (hint) be_add(b, &h, hint, 1.0f, &h); /* ControlNet: the control image's embedding joins the latent's */
    skip[ns++] = h;
    for (int l = 0; l < L; l++) {
        const unet_level *d = &u->down[l];
        lh[l] = h.h;
        lw[l] = h.w;
        for (int j = 0; j < d->n; j++) {
            be_tensor o = be_new(b, N, h.h, h.w, g->block_out[l]);
            res_attn(b, &d->res[j], &d->attn[j], &h, NULL, &tp[ti++], ctx, kv_of(u, kv, &d->attn[j]), &o);
            skip[ns++] = h = o;
        }
        if (d->has_sample) { /* 3x3, stride 2, pad 1: ceil(h / 2) */
            be_tensor o = be_new(b, N, (h.h + 1) / 2, (h.w + 1) / 2, h.c);
            be_conv2d(b, &h, &d->sample_w, &d->sample_b, 2, 1, 1, &o);
            skip[ns++] = h = o;
        }
    }

    /* mid */
    be_tensor o = be_new(b, N, h.h, h.w, h.c);
    size_t mark = be_mark(b);
    be_tensor r = be_new(b, N, h.h, h.w, h.c), a = be_new(b, N, h.h, h.w, h.c);
    layer_resnet_forward_cat(b, &u->mid_res[0], &h, NULL, &tp[ti++], &r);
    layer_t2d_forward_kv(b, &u->mid_attn, &r, ctx, kv_of(u, kv, &u->mid_attn), &a);
    layer_resnet_forward_cat(b, &u->mid_res[1], &a, NULL, &tp[ti++], &o);
    be_release(b, mark);
    *mid = o;
    *nskip = ns;
    *ntp = ti;
}

void unet_encode(be *b, const unet_model *u, const be_tensor *x, const float *ts, const unet_cond *c, const be_tensor *hint,
                 be_tensor *skips, be_tensor *mid) {
    if (!be_ok(b)) return;
    const unet_config *g = &u->cfg;
    be_tensor fake = {0};
    fake.n = x ? x->n : 0;
    fake.h = x ? x->h : 0;
    fake.w = x ? x->w : 0;
    fake.c = g->out_channels;
    if (!check_inputs(b, u, x, ts, c, &fake)) return;
    if (c->control) { be_set_error(b, SD_ERR_ARG, "unet_encode: a ControlNet takes no ControlNet residuals"); return; }
    if (hint && (hint->n != x->n || hint->h != x->h || hint->w != x->w || hint->c != g->block_out[0])) {
        be_set_error(b, SD_ERR_ARG, "unet_encode: hint [%d,%d,%d,%d] for x [%d,%d,%d,%d] and %d channels", hint->n, hint->h, hint->w, hint->c,
                     x->n, x->h, x->w, x->c, g->block_out[0]);
        return;
    }
    be_tensor tp[UNET_MAX_RESNETS];
    int ns, ntp, lh[UNET_MAX_LEVELS], lw[UNET_MAX_LEVELS];
    encode(b, u, x, ts, c, hint, kv_for_context(b, u, c->ctx, c->ctx_id), tp, &ntp, skips, &ns, mid, lh, lw);
}

void unet_forward(be *b, const unet_model *u, const be_tensor *x, const float *ts, const unet_cond *c, be_tensor *out) {
    if (!be_ok(b) || !check_inputs(b, u, x, ts, c, out)) return;
    const unet_config *g = &u->cfg;
    if (u->encoder_only) { be_set_error(b, SD_ERR_ARG, "unet_forward: this model is a UNet's encoder half (a ControlNet)"); return; }
    const be_tensor *ctx = c->ctx;
    int N = x->n, L = g->levels;
    const be_tensor *kv = kv_for_context(b, u, ctx, c->ctx_id); /* outside the arena: before the mark */
    size_t m0 = be_mark(b);
    be_tensor tp[UNET_MAX_RESNETS], h, skip[1 + UNET_MAX_LEVELS * (UNET_MAX_LAYERS + 1)];
    int ns, ti, lh[UNET_MAX_LEVELS], lw[UNET_MAX_LEVELS];
    encode(b, u, x, ts, c, NULL, kv, tp, &ti, skip, &ns, &h, lh, lw);
    if (c->control) { /* ControlNet residuals join the skips (after the down path used them) and the mid output */
        const unet_control *k = c->control;
        if (k->count != ns || !k->down || !k->mid) {
            be_set_error(b, SD_ERR_ARG, "unet_forward: %d ControlNet residuals for %d skip connections", k->count, ns);
            be_release(b, m0);
            return;
        }
        for (int i = 0; i < ns; i++) add_rows(b, &skip[i], &k->down[i], k->row0);
        add_rows(b, &h, k->mid, k->row0);
    }

    /* up: outputs alternate between two buffers sized for the largest of them */
    size_t big = 0;
    for (int l = 0; l < L; l++) {
        size_t here = (size_t)lh[l] * lw[l] * g->block_out[l];
        size_t upsampled = l > 0 ? (size_t)lh[l - 1] * lw[l - 1] * g->block_out[l] : 0;
        if (here > big) big = here;
        if (upsampled > big) big = upsampled;
    }
    be_tensor pp[2] = {be_new(b, N, 1, 1, (int)big), be_new(b, N, 1, 1, (int)big)};
    int k = 0;
    for (int l = L - 1; l >= 0; l--) {
        const unet_level *up = &u->up[l];
        for (int j = 0; j < up->n; j++) {
            const be_tensor *s = &skip[--ns];
            be_tensor o = be_view(pp[k], N, h.h, h.w, g->block_out[l]);
            res_attn(b, &up->res[j], &up->attn[j], &h, s, &tp[ti++], ctx, kv_of(u, kv, &up->attn[j]), &o); /* on the concat [h | skip] */
            h = o;
            k ^= 1;
        }
        if (up->has_sample) { /* nearest to the next skip's size (2x, or the odd size the way down produced) */
            const be_tensor *s = &skip[ns - 1];
            be_tensor o = be_view(pp[k], N, s->h, s->w, h.c);
            if (s->h == 2 * h.h && s->w == 2 * h.w) { /* exact 2x: read through the convolution's addressing */
                be_gemm_args a = {.x = &h, .up2x = 1, .stride = 1, .pad_lo = 1, .pad_hi = 1, .nw = 1, .w = {&up->sample_w},
                                  .bias = {&up->sample_b}, .y = {&o}};
                be_gemm(b, &a);
            } else {
                size_t mark = be_mark(b);
                be_tensor z = be_new(b, N, s->h, s->w, h.c);
                be_upsample_nearest(b, &h, &z);
                be_conv2d(b, &z, &up->sample_w, &up->sample_b, 1, 1, 1, &o);
                be_release(b, mark);
            }
            h = o;
            k ^= 1;
        }
    }

    be_gemm_args co = {.x = &h, .stride = 1, .pad_lo = 1, .pad_hi = 1, .norm = BE_NORM_GROUP, .groups = g->norm_groups, .eps = g->norm_eps,
                       .gamma = &u->norm_out_w, .beta = &u->norm_out_b, .norm_silu = 1, .nw = 1, .w = {&u->conv_out_w},
                       .bias = {&u->conv_out_b}, .y = {out}};
    be_gemm(b, &co);
    be_release(b, m0);
}
