/* clip_model.c — CLIP / OpenCLIP text transformer: loading (with OpenCLIP's fused q/k/v and transposed
 * projection) and the forward pass (pre-LN causal blocks, hidden state of any layer, pooled output). */
#include "clip_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

#define TRY(x) do { sd_status st_ = (x); if (st_ != SD_OK) return st_; } while (0)
#define LAYER "text_model.encoder.layers.%d"

/* ---- loading ---- */

static void shape_str(const int64_t *s, int nd, char *buf, size_t cap) {
    size_t o = snprintf(buf, cap, "[");
    for (int d = 0; d < nd && o < cap; d++) o += snprintf(buf + o, cap - o, d ? ", %lld" : "%lld", (long long)s[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* Finds `name`, checks its shape and that it is F32/F16/BF16 (what wmap_load checks, for the tensors that
 * need host-side rework before upload). */
static sd_status check_tensor(const wmap *m, const char *name, int nd, const int64_t *want, const st_tensor **out) {
    const st_tensor *t = wmap_find(m, name);
    if (!t) return err_fail(SD_ERR_MODEL, "missing tensor \"%s\"", name);
    char both[600]; /* the file's name, and the canonical one when they differ */
    if (strcmp(t->name, name)) snprintf(both, sizeof both, "\"%s\" (%s)", t->name, name);
    else snprintf(both, sizeof both, "\"%s\"", name);
    int ok = t->ndim == nd;
    for (int d = 0; ok && d < nd; d++) ok = t->shape[d] == want[d];
    if (!ok) {
        char got[128], exp[128];
        shape_str(t->shape, t->ndim, got, sizeof got);
        shape_str(want, nd, exp, sizeof exp);
        return err_fail(SD_ERR_MODEL, "tensor %s has shape %s, expected %s", both, got, exp);
    }
    if (!st_dtype_is_float(t->dtype) || t->dtype == ST_F64)
        return err_fail(SD_ERR_MODEL, "tensor %s has dtype %s, expected F32, F16 or BF16", both, st_dtype_name(t->dtype));
    *out = t;
    return SD_OK;
}

/* A weight that was only checked (measure mode, virtual entry): shape set, no storage. */
static void checked_only(be_weight *w, be_wkind kind, int out, int in) {
    memset(w, 0, sizeof *w);
    w->kind = kind; w->out = out; w->in = in; w->kh = w->kw = 1;
}

static sd_status upload(be *b, be_weight *w, be_wkind kind, int out, int in, const float *src, const char *name) {
    sd_status st = be_weight_upload(b, w, kind, out, in, 1, 1, BE_F32, src);
    if (st != SD_OK) err_prefix("tensor \"%s\"", name);
    return st;
}

/* OpenCLIP's nn.MultiheadAttention keeps q, k, v stacked in one in_proj [3C, C] (+ [3C] bias): split rows. */
static sd_status load_fused_attn(be *b, wmap *m, layer_attn *a, int l, int C, int heads) {
    char nw[256], nb[256];
    snprintf(nw, sizeof nw, LAYER ".self_attn.in_proj_weight", l);
    snprintf(nb, sizeof nb, LAYER ".self_attn.in_proj_bias", l);
    memset(a, 0, sizeof *a);
    a->dim = a->ctx_dim = C; a->heads = heads; a->qkv_bias = 1;
    const st_tensor *tw, *tb;
    TRY(check_tensor(m, nw, 2, (int64_t[]){3 * (int64_t)C, C}, &tw));
    TRY(check_tensor(m, nb, 1, (int64_t[]){3 * (int64_t)C}, &tb));
    be_weight *ws[3] = {&a->q_w, &a->k_w, &a->v_w}, *bs[3] = {&a->q_b, &a->k_b, &a->v_b};
    if (b->measuring || !tw->data || !tb->data) {
        for (int i = 0; i < 3; i++) { checked_only(ws[i], BE_W_LINEAR, C, C); checked_only(bs[i], BE_W_VEC, C, 1); }
        wmap_mark_used(m, nw);
        wmap_mark_used(m, nb);
    } else {
        float *w = wmap_read_f32(m, nw, NULL), *bias = w ? wmap_read_f32(m, nb, NULL) : NULL;
        sd_status st = bias ? SD_OK : SD_ERR_MODEL;
        static const char *const qkv[3] = {"q", "k", "v"};
        for (int i = 0; i < 3 && st == SD_OK; i++) {
            char name[256]; /* the split matrices answer to the transformers names (what LoRAs target) */
            snprintf(name, sizeof name, LAYER ".self_attn.%s_proj.weight", l, qkv[i]);
            st = upload(b, ws[i], BE_W_LINEAR, C, C, w + (size_t)i * C * C, nw);
            if (st == SD_OK) st = wmap_note_source(m, name, b, ws[i], nw, (int64_t)i * C, BE_F32);
            if (st == SD_OK) st = upload(b, bs[i], BE_W_VEC, C, 1, bias + (size_t)i * C, nb);
        }
        free(w);
        free(bias);
        if (st != SD_OK) return st;
    }
    TRY(wmap_linear(b, m, &a->o_w, C, C, LAYER ".self_attn.out_proj.weight", l));
    TRY(wmap_vec(b, m, &a->o_b, C, LAYER ".self_attn.out_proj.bias", l));
    return SD_OK;
}

/* OpenCLIP's text_projection is a [C, P] matrix used as x @ proj: transpose into a [P, C] linear. */
static sd_status load_proj_transposed(be *b, wmap *m, be_weight *w, int P, int C) {
    const st_tensor *t;
    TRY(check_tensor(m, "text_projection", 2, (int64_t[]){C, P}, &t));
    if (b->measuring || !t->data) {
        checked_only(w, BE_W_LINEAR, P, C);
        wmap_mark_used(m, "text_projection");
        return SD_OK;
    }
    float *src = wmap_read_f32(m, "text_projection", NULL), *dst = src ? malloc((size_t)P * C * sizeof(float)) : NULL;
    if (!dst) {
        free(src);
        return src ? err_fail(SD_ERR_MEMORY, "out of memory") : SD_ERR_MODEL;
    }
    for (int c = 0; c < C; c++)
        for (int p = 0; p < P; p++) dst[(size_t)p * C + c] = src[(size_t)c * P + p];
    sd_status st = upload(b, w, BE_W_LINEAR, P, C, dst, "text_projection");
    free(src);
    free(dst);
    return st;
}

static sd_status load_block(be *b, wmap *m, const clip_config *g, clip_block *k, int l) {
    static const char *const names[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    int C = g->width;
    TRY(wmap_vec(b, m, &k->ln1_w, C, LAYER ".layer_norm1.weight", l));
    TRY(wmap_vec(b, m, &k->ln1_b, C, LAYER ".layer_norm1.bias", l));
    if (wmap_has(m, LAYER ".self_attn.in_proj_weight", l)) {
        TRY(load_fused_attn(b, m, &k->attn, l, C, g->heads));
    } else {
        char p[128];
        snprintf(p, sizeof p, LAYER ".self_attn", l);
        TRY(layer_attn_load(b, m, &k->attn, p, names, C, C, g->heads, 1));
    }
    TRY(wmap_vec(b, m, &k->ln2_w, C, LAYER ".layer_norm2.weight", l));
    TRY(wmap_vec(b, m, &k->ln2_b, C, LAYER ".layer_norm2.bias", l));
    TRY(wmap_linear(b, m, &k->fc1_w, g->inter, C, LAYER ".mlp.fc1.weight", l));
    TRY(wmap_vec(b, m, &k->fc1_b, g->inter, LAYER ".mlp.fc1.bias", l));
    TRY(wmap_linear(b, m, &k->fc2_w, C, g->inter, LAYER ".mlp.fc2.weight", l));
    TRY(wmap_vec(b, m, &k->fc2_b, C, LAYER ".mlp.fc2.bias", l));
    return SD_OK;
}

sd_status clip_config_check(const clip_config *g) {
    if (g->vocab <= 0 || g->width <= 0 || g->layers <= 0 || g->inter <= 0 || g->max_pos <= 0 || g->proj_dim < 0)
        return err_fail(SD_ERR_ARG, "CLIP config: vocab %d, width %d, layers %d, inter %d, max positions %d, projection %d must be positive",
                       g->vocab, g->width, g->layers, g->inter, g->max_pos, g->proj_dim);
    if (g->heads <= 0 || g->width % g->heads)
        return err_fail(SD_ERR_ARG, "CLIP config: %d heads do not divide width %d", g->heads, g->width);
    if (!(g->ln_eps > 0) || (g->act != CLIP_ACT_GELU && g->act != CLIP_ACT_QUICK_GELU) ||
        (g->pool != CLIP_POOL_ARGMAX && g->pool != CLIP_POOL_FIRST_EOS))
        return err_fail(SD_ERR_ARG, "CLIP config: bad layer norm eps, activation or pooling rule");
    return SD_OK;
}

/* Blocks past cfg->layers (SD 2 drops OpenCLIP-H's last one) and an unused projection are known, not unexpected. */
static void mark_ignored(wmap *m, const clip_config *g) {
    size_t pl = strlen("text_model.encoder.layers.");
    for (int i = 0; i < wmap_count(m); i++) {
        const char *n = wmap_name(m, i);
        if (!strncmp(n, "text_model.encoder.layers.", pl) && atol(n + pl) >= g->layers) wmap_mark_used(m, n);
    }
    if (!g->proj_dim) {
        wmap_mark_used(m, "text_projection.weight");
        wmap_mark_used(m, "text_projection");
    }
}

static sd_status load_all(be *b, wmap *m, clip_model *c) {
    const clip_config *g = &c->cfg;
    TRY(wmap_load(b, m, &c->tok, BE_W_EMBED, g->vocab, g->width, 1, 1, "text_model.embeddings.token_embedding.weight"));
    TRY(wmap_load(b, m, &c->pos, BE_W_EMBED, g->max_pos, g->width, 1, 1, "text_model.embeddings.position_embedding.weight"));
    c->pos_ids = malloc(g->max_pos * sizeof *c->pos_ids);
    c->blocks = calloc(g->layers, sizeof *c->blocks);
    if (!c->pos_ids || !c->blocks) return err_fail(SD_ERR_MEMORY, "out of memory");
    for (int i = 0; i < g->max_pos; i++) c->pos_ids[i] = i;
    for (int l = 0; l < g->layers; l++) {
        c->nblocks = l + 1; /* so clip_free releases what was loaded */
        TRY(load_block(b, m, g, &c->blocks[l], l));
    }
    TRY(wmap_vec(b, m, &c->lnf_w, g->width, "text_model.final_layer_norm.weight"));
    TRY(wmap_vec(b, m, &c->lnf_b, g->width, "text_model.final_layer_norm.bias"));
    if (g->proj_dim) {
        if (wmap_has(m, "text_projection") && !wmap_has(m, "text_projection.weight"))
            TRY(load_proj_transposed(b, m, &c->proj, g->proj_dim, g->width));
        else
            TRY(wmap_linear(b, m, &c->proj, g->proj_dim, g->width, "text_projection.weight"));
    }
    mark_ignored(m, g);
    return SD_OK;
}

sd_status clip_load(be *b, wmap *m, const clip_config *cfg, clip_model *c) {
    memset(c, 0, sizeof *c);
    TRY(clip_config_check(cfg));
    c->cfg = *cfg;
    sd_status st = load_all(b, m, c);
    if (st != SD_OK) clip_free(b, c);
    return st;
}

void clip_free(be *b, clip_model *c) {
    for (int l = 0; l < c->nblocks; l++) {
        clip_block *k = &c->blocks[l];
        be_weight *ws[] = {&k->ln1_w, &k->ln1_b, &k->ln2_w, &k->ln2_b, &k->fc1_w, &k->fc1_b, &k->fc2_w, &k->fc2_b};
        for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) be_weight_free(b, ws[i]);
        layer_attn_free(b, &k->attn);
    }
    be_weight *ws[] = {&c->tok, &c->pos, &c->lnf_w, &c->lnf_b, &c->proj};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) be_weight_free(b, ws[i]);
    free(c->blocks);
    free(c->pos_ids);
    c->blocks = NULL;
    c->pos_ids = NULL;
    c->nblocks = 0;
}

/* ---- forward ---- */

int clip_pool_position(const clip_config *cfg, const int32_t *ids, int t) {
    int best = 0;
    if (cfg->pool == CLIP_POOL_ARGMAX) {
        for (int i = 1; i < t; i++)
            if (ids[i] > ids[best]) best = i; /* first occurrence of the maximum, like torch.argmax */
        return best;
    }
    for (int i = 0; i < t; i++)
        if (ids[i] == cfg->eos_id) return i;
    return 0; /* transformers: argmax of an all-false mask */
}

/* Row r of a [rows, C] activation as a [1, 1, 1, C] tensor (activations are dense channels-last). */
static be_tensor row_view(const be *b, const be_tensor *x, size_t r) {
    be_tensor v = {NULL, 1, 1, 1, x->c};
    if (x->data) v.data = (char *)x->data + r * x->c * b->elem_size;
    return v;
}

/* Pre-LN block: h += out_proj(attn(LN1(h))); h += fc2(act(fc1(LN2(h)))). x, a [n,1,t,C], f [n,1,t,inter] scratch. */
static void block_forward(be *b, const clip_config *g, const clip_block *k, be_tensor *h, be_tensor *x, be_tensor *a, be_tensor *f) {
    be_layer_norm(b, h, &k->ln1_w, &k->ln1_b, g->ln_eps, x);
    layer_attn_forward(b, &k->attn, x, NULL, 1, a);
    be_add(b, h, a, 1.0f, h);
    be_layer_norm(b, h, &k->ln2_w, &k->ln2_b, g->ln_eps, x);
    be_linear(b, x, &k->fc1_w, &k->fc1_b, g->act == CLIP_ACT_GELU ? BE_ACT_GELU : BE_ACT_QUICK_GELU, f);
    be_linear(b, f, &k->fc2_w, &k->fc2_b, BE_ACT_NONE, a);
    be_add(b, h, a, 1.0f, h);
}

void clip_forward(be *b, const clip_model *c, const int32_t *ids, int n, int t, int layer, int final_ln, be_tensor *hidden,
                  be_tensor *pooled) {
    const clip_config *g = &c->cfg;
    int C = g->width, L = c->nblocks, P = g->proj_dim ? g->proj_dim : C;
    if (!be_ok(b)) return;
    if (layer < 0) layer += L + 1;
    if (n <= 0 || t <= 0 || t > g->max_pos || !ids || (!hidden && !pooled)) {
        be_set_error(b, SD_ERR_ARG, "clip: %d sequences of %d tokens (1..%d) requested", n, t, g->max_pos);
        return;
    }
    if (hidden && (layer < 0 || layer > L || hidden->n != n || (size_t)hidden->h * hidden->w != (size_t)t || hidden->c != C)) {
        be_set_error(b, SD_ERR_ARG, "clip: hidden state %d of 0..%d into [%d,%d,%d,%d], expected [%d,1,%d,%d]", layer, L, hidden->n,
                     hidden->h, hidden->w, hidden->c, n, t, C);
        return;
    }
    if (pooled && be_numel(pooled) != (size_t)n * P) {
        be_set_error(b, SD_ERR_ARG, "clip: pooled output [%d,%d,%d,%d], expected [%d,1,1,%d]", pooled->n, pooled->h, pooled->w,
                     pooled->c, n, P);
        return;
    }
    int run = pooled ? L : layer;
    /* textual-inversion ids: the token table gets 0 there, the vector replaces its row below */
    int32_t *tok_ids = NULL;
    for (size_t i = 0; i < (size_t)n * t && c->extra; i++) { /* without a table, be_embedding range-checks the ids */
        if (ids[i] < g->vocab) continue;
        const clip_extra *x = c->extra;
        if (ids[i] < x->first || ids[i] - x->first >= x->count || !x->rows[ids[i] - x->first]) {
            be_set_error(b, SD_ERR_ARG, "clip: token id %d is neither in the vocabulary (%d) nor an embedding vector", ids[i], g->vocab);
            free(tok_ids);
            return;
        }
        if (!tok_ids && !(tok_ids = malloc((size_t)n * t * sizeof *tok_ids))) {
            be_set_error(b, SD_ERR_MEMORY, "clip: out of memory");
            return;
        }
    }
    if (tok_ids)
        for (size_t i = 0; i < (size_t)n * t; i++) tok_ids[i] = ids[i] < g->vocab ? ids[i] : 0;
    /* the residual stream lives in `hidden` itself when nothing after it is needed */
    int in_place = hidden && !final_ln && !pooled;
    size_t mark = be_mark(b);
    be_tensor h = in_place ? be_view(*hidden, n, 1, t, C) : be_new(b, n, 1, t, C);
    be_tensor pe = be_new(b, 1, 1, t, C);
    be_embedding(b, tok_ids ? tok_ids : ids, &c->tok, &h);
    for (size_t i = 0; tok_ids && i < (size_t)n * t; i++)
        if (ids[i] >= g->vocab) {
            be_tensor row = row_view(b, &h, i);
            be_upload(b, &row, c->extra->rows[ids[i] - c->extra->first]);
        }
    be_embedding(b, c->pos_ids, &c->pos, &pe);
    be_add(b, &h, &pe, 1.0f, &h); /* positions broadcast over the batch */
    be_tensor x = be_new(b, n, 1, t, C), a = be_new(b, n, 1, t, C), f = be_new(b, n, 1, t, g->inter);
    for (int l = 0;; l++) {
        if (hidden && l == layer && !in_place) {
            be_tensor hv = be_view(*hidden, n, 1, t, C);
            if (final_ln) be_layer_norm(b, &h, &c->lnf_w, &c->lnf_b, g->ln_eps, &hv);
            else be_add(b, &h, &h, 0.0f, &hv); /* a copy (h + 0·h is h exactly): the contract has no copy op */
        }
        if (l == run) break;
        block_forward(b, g, &c->blocks[l], &h, &x, &a, &f);
    }
    if (pooled) {
        /* final LN of each row's pool position only (positions come from the host ids: measure-mode safe) */
        be_tensor pre = g->proj_dim ? be_new(b, n, 1, 1, C) : be_view(*pooled, n, 1, 1, C);
        for (int i = 0; i < n; i++) {
            const int32_t *row_ids = (tok_ids ? tok_ids : ids) + (size_t)i * t;
            be_tensor src = row_view(b, &h, (size_t)i * t + clip_pool_position(g, row_ids, t)), dst = row_view(b, &pre, i);
            be_layer_norm(b, &src, &c->lnf_w, &c->lnf_b, g->ln_eps, &dst);
        }
        if (g->proj_dim) {
            be_tensor pv = be_view(*pooled, n, 1, 1, P);
            be_linear(b, &pre, &c->proj, NULL, BE_ACT_NONE, &pv);
        }
    }
    be_release(b, mark);
    free(tok_ids);
}

void clip_sdxl_forward(be *b, const clip_model *l, const clip_model *g, const int32_t *ids_l, const int32_t *ids_g, int n, int t,
                       int clip_skip, be_tensor *ctx, be_tensor *pooled) {
    int cl = l->cfg.width, cg = g->cfg.width;
    if (!be_ok(b)) return;
    if (clip_skip < 0 || ctx->n != n || (size_t)ctx->h * ctx->w != (size_t)t || ctx->c != cl + cg) {
        be_set_error(b, SD_ERR_ARG, "clip_sdxl: clip skip %d, context [%d,%d,%d,%d], expected [%d,1,%d,%d]", clip_skip, ctx->n, ctx->h,
                     ctx->w, ctx->c, n, t, cl + cg);
        return;
    }
    size_t mark = be_mark(b);
    be_tensor hl = be_new(b, n, 1, t, cl), hg = be_new(b, n, 1, t, cg), cv = be_view(*ctx, n, 1, t, cl + cg);
    clip_forward(b, l, ids_l, n, t, -(2 + clip_skip), 0, &hl, NULL);
    clip_forward(b, g, ids_g, n, t, -(2 + clip_skip), 0, &hg, pooled);
    be_concat_channels(b, &hl, &hg, &cv);
    be_release(b, mark);
}
