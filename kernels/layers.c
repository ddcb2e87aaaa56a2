/* layers.c — ResNet, attention and transformer blocks built on the backend contract. */
#include "layers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

#define TRY(x) do { sd_status st_ = (x); if (st_ != SD_OK) return st_; } while (0)

/* ---- ResnetBlock2D ---- */

sd_status layer_resnet_load(be *b, wmap *m, layer_resnet *r, const char *p, int cin, int cout, int temb_dim, int groups, float eps) {
    memset(r, 0, sizeof *r);
    r->cin = cin; r->cout = cout; r->temb_dim = temb_dim; r->groups = groups; r->eps = eps;
    TRY(wmap_vec(b, m, &r->norm1_w, cin, "%s.norm1.weight", p));
    TRY(wmap_vec(b, m, &r->norm1_b, cin, "%s.norm1.bias", p));
    TRY(wmap_load(b, m, &r->conv1_w, BE_W_CONV, cout, cin, 3, 3, "%s.conv1.weight", p));
    TRY(wmap_vec(b, m, &r->conv1_b, cout, "%s.conv1.bias", p));
    if (temb_dim) {
        TRY(wmap_linear(b, m, &r->temb_w, cout, temb_dim, "%s.time_emb_proj.weight", p));
        TRY(wmap_vec(b, m, &r->temb_b, cout, "%s.time_emb_proj.bias", p));
    }
    TRY(wmap_vec(b, m, &r->norm2_w, cout, "%s.norm2.weight", p));
    TRY(wmap_vec(b, m, &r->norm2_b, cout, "%s.norm2.bias", p));
    TRY(wmap_load(b, m, &r->conv2_w, BE_W_CONV, cout, cout, 3, 3, "%s.conv2.weight", p));
    TRY(wmap_vec(b, m, &r->conv2_b, cout, "%s.conv2.bias", p));
    if (cin != cout) { /* a 1x1 conv: loaded as the linear layer it is on channels-last data */
        TRY(wmap_linear(b, m, &r->short_w, cout, cin, "%s.conv_shortcut.weight", p));
        TRY(wmap_vec(b, m, &r->short_b, cout, "%s.conv_shortcut.bias", p));
    }
    return SD_OK;
}

void layer_resnet_free(be *b, layer_resnet *r) {
    be_weight *ws[] = {&r->norm1_w, &r->norm1_b, &r->conv1_w, &r->conv1_b, &r->temb_w, &r->temb_b, &r->norm2_w,
                       &r->norm2_b, &r->conv2_w, &r->conv2_b, &r->short_w, &r->short_b};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) be_weight_free(b, ws[i]);
}

void layer_resnet_temb(be *b, const layer_resnet *r, const be_tensor *temb_silu, be_tensor *t) {
    be_linear(b, temb_silu, &r->temb_w, &r->temb_b, BE_ACT_NONE, t);
}

void layer_resnet_forward(be *b, const layer_resnet *r, const be_tensor *x, const be_tensor *temb_silu, be_tensor *y) {
    size_t mark = be_mark(b);
    be_tensor t = {0};
    if (r->temb_dim && temb_silu) {
        t = be_new(b, x->n, 1, 1, r->cout);
        layer_resnet_temb(b, r, temb_silu, &t);
    }
    layer_resnet_forward_cat(b, r, x, NULL, t.data ? &t : NULL, y);
    be_release(b, mark);
}

/* Each convolution is one be_gemm with its GroupNorm+SiLU as the prologue; the time embedding and the residual
 * (the input, or its 1x1 shortcut) come in through the epilogues. */
void layer_resnet_forward_cat(be *b, const layer_resnet *r, const be_tensor *x, const be_tensor *x2, const be_tensor *temb_proj, be_tensor *y) {
    int N = x->n, H = x->h, W = x->w;
    size_t mark = be_mark(b);
    be_tensor h1 = be_new(b, N, H, W, r->cout);
    /* the time embedding: a per-sample bias, broadcast over H, W */
    be_gemm_args a = {.x = x, .x2 = x2, .stride = 1, .pad_lo = 1, .pad_hi = 1, .norm = BE_NORM_GROUP, .groups = r->groups, .eps = r->eps,
                      .gamma = &r->norm1_w, .beta = &r->norm1_b, .norm_silu = 1, .nw = 1, .w = {&r->conv1_w}, .bias = {&r->conv1_b},
                      .y = {&h1}, .add = r->temb_dim ? temb_proj : NULL};
    be_gemm(b, &a);
    be_gemm_args c2 = {.x = &h1, .stride = 1, .pad_lo = 1, .pad_hi = 1, .norm = BE_NORM_GROUP, .groups = r->groups, .eps = r->eps,
                       .gamma = &r->norm2_w, .beta = &r->norm2_b, .norm_silu = 1, .nw = 1, .w = {&r->conv2_w}, .bias = {&r->conv2_b},
                       .y = {y}, .residual = x};
    if (r->cin != r->cout) { /* the 1x1 shortcut (a linear layer on channels-last data) makes the residual */
        c2.residual = NULL;
        c2.sx = x;
        c2.sx2 = x2;
        c2.sw = &r->short_w;
        c2.sbias = &r->short_b;
    }
    be_gemm(b, &c2);
    be_release(b, mark);
}

/* ---- attention ---- */

sd_status layer_attn_load(be *b, wmap *m, layer_attn *a, const char *p, const char *const names[4], int dim, int ctx_dim, int heads,
                          int qkv_bias) {
    static const char *const diffusers[4] = {"to_q", "to_k", "to_v", "to_out.0"};
    const char *const *n = names ? names : diffusers;
    memset(a, 0, sizeof *a);
    a->dim = dim; a->ctx_dim = ctx_dim; a->heads = heads; a->qkv_bias = qkv_bias;
    TRY(wmap_linear(b, m, &a->q_w, dim, dim, "%s.%s.weight", p, n[0]));
    TRY(wmap_linear(b, m, &a->k_w, dim, ctx_dim, "%s.%s.weight", p, n[1]));
    TRY(wmap_linear(b, m, &a->v_w, dim, ctx_dim, "%s.%s.weight", p, n[2]));
    if (qkv_bias) {
        TRY(wmap_vec(b, m, &a->q_b, dim, "%s.%s.bias", p, n[0]));
        TRY(wmap_vec(b, m, &a->k_b, dim, "%s.%s.bias", p, n[1]));
        TRY(wmap_vec(b, m, &a->v_b, dim, "%s.%s.bias", p, n[2]));
    }
    TRY(wmap_linear(b, m, &a->o_w, dim, dim, "%s.%s.weight", p, n[3]));
    TRY(wmap_vec(b, m, &a->o_b, dim, "%s.%s.bias", p, n[3]));
    return SD_OK;
}

void layer_attn_free(be *b, layer_attn *a) {
    be_weight *ws[] = {&a->q_w, &a->q_b, &a->k_w, &a->k_b, &a->v_w, &a->v_b, &a->o_w, &a->o_b};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) be_weight_free(b, ws[i]);
}

/* q, k, v of x (and ctx) after the optional LayerNorm ln_w/ln_b of x: self-attention takes one be_gemm with three
 * weights; cross-attention one for q and one with two weights for k, v. Then attention, and the output projection
 * with the residual (when given) added in its epilogue. */
static void attn_forward(be *b, const layer_attn *a, const be_tensor *x, const be_weight *ln_w, const be_weight *ln_b, const be_tensor *ctx,
                         const be_tensor *kv, int causal, const be_tensor *residual, be_tensor *y) {
    const be_tensor *c = ctx ? ctx : x;
    size_t mark = be_mark(b);
    be_tensor q = be_new(b, x->n, x->h, x->w, a->dim), k, v;
    if (kv) { /* the context's keys and values, made earlier */
        k = kv[0];
        v = kv[1];
    } else {
        k = be_new(b, c->n, c->h, c->w, a->dim);
        v = be_new(b, c->n, c->h, c->w, a->dim);
    }
    be_tensor o = be_new(b, x->n, x->h, x->w, a->dim);
    be_gemm_args p = {.x = x, .stride = 1, .norm = ln_w ? BE_NORM_LAYER : BE_NORM_NONE, .eps = 1e-5f, .gamma = ln_w, .beta = ln_b,
                      .nw = ctx ? 1 : 3, .w = {&a->q_w, &a->k_w, &a->v_w}, .y = {&q, &k, &v}};
    if (a->qkv_bias) {
        p.bias[0] = &a->q_b;
        p.bias[1] = &a->k_b;
        p.bias[2] = &a->v_b;
    }
    be_gemm(b, &p);
    if (ctx && !kv) layer_attn_context_kv(b, a, ctx, &k, &v);
    be_attention(b, &q, &k, &v, a->heads, causal, &o);
    be_gemm_args out = {.x = &o, .stride = 1, .nw = 1, .w = {&a->o_w}, .bias = {&a->o_b}, .y = {y}, .residual = residual};
    be_gemm(b, &out);
    be_release(b, mark);
}

void layer_attn_forward(be *b, const layer_attn *a, const be_tensor *x, const be_tensor *ctx, int causal, be_tensor *y) {
    attn_forward(b, a, x, NULL, NULL, ctx, NULL, causal, NULL, y);
}

void layer_attn_context_kv(be *b, const layer_attn *a, const be_tensor *ctx, be_tensor *k, be_tensor *v) {
    be_gemm_args kv = {.x = ctx, .stride = 1, .nw = 2, .w = {&a->k_w, &a->v_w}, .y = {k, v}};
    if (a->qkv_bias) {
        kv.bias[0] = &a->k_b;
        kv.bias[1] = &a->v_b;
    }
    be_gemm(b, &kv);
}

/* ---- BasicTransformerBlock ---- */

sd_status layer_tblock_load(be *b, wmap *m, layer_tblock *t, const char *p, int dim, int ctx_dim, int heads) {
    char q[512];
    memset(t, 0, sizeof *t);
    t->dim = dim;
    int ff = 4 * dim; /* GEGLU: proj to 2*ff, gate half, back to dim */
    TRY(wmap_vec(b, m, &t->n1_w, dim, "%s.norm1.weight", p));
    TRY(wmap_vec(b, m, &t->n1_b, dim, "%s.norm1.bias", p));
    snprintf(q, sizeof q, "%s.attn1", p);
    TRY(layer_attn_load(b, m, &t->attn1, q, NULL, dim, dim, heads, 0));
    TRY(wmap_vec(b, m, &t->n2_w, dim, "%s.norm2.weight", p));
    TRY(wmap_vec(b, m, &t->n2_b, dim, "%s.norm2.bias", p));
    snprintf(q, sizeof q, "%s.attn2", p);
    TRY(layer_attn_load(b, m, &t->attn2, q, NULL, dim, ctx_dim, heads, 0));
    TRY(wmap_vec(b, m, &t->n3_w, dim, "%s.norm3.weight", p));
    TRY(wmap_vec(b, m, &t->n3_b, dim, "%s.norm3.bias", p));
    TRY(wmap_linear(b, m, &t->ff1_w, 2 * ff, dim, "%s.ff.net.0.proj.weight", p));
    TRY(wmap_vec(b, m, &t->ff1_b, 2 * ff, "%s.ff.net.0.proj.bias", p));
    TRY(wmap_linear(b, m, &t->ff2_w, dim, ff, "%s.ff.net.2.weight", p));
    TRY(wmap_vec(b, m, &t->ff2_b, dim, "%s.ff.net.2.bias", p));
    return SD_OK;
}

void layer_tblock_free(be *b, layer_tblock *t) {
    be_weight *ws[] = {&t->n1_w, &t->n1_b, &t->n2_w, &t->n2_b, &t->n3_w, &t->n3_b, &t->ff1_w, &t->ff1_b, &t->ff2_w, &t->ff2_b};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) be_weight_free(b, ws[i]);
    layer_attn_free(b, &t->attn1);
    layer_attn_free(b, &t->attn2);
}

/* Every LayerNorm is the prologue of the GEMM that follows it and every residual add the epilogue of the GEMM
 * before it: x += attn1(LN1(x)); x += attn2(LN2(x), ctx); x += W2·GEGLU(W1·LN3(x)). */
static void tblock_forward(be *b, const layer_tblock *t, be_tensor *x, const be_tensor *ctx, const be_tensor *kv) {
    size_t mark = be_mark(b);
    attn_forward(b, &t->attn1, x, &t->n1_w, &t->n1_b, NULL, NULL, 0, x, x);
    attn_forward(b, &t->attn2, x, &t->n2_w, &t->n2_b, ctx, kv, 0, x, x);
    be_tensor g = be_new(b, x->n, x->h, x->w, 4 * t->dim);
    be_gemm_args ff1 = {.x = x, .stride = 1, .norm = BE_NORM_LAYER, .eps = 1e-5f, .gamma = &t->n3_w, .beta = &t->n3_b, .nw = 1,
                        .w = {&t->ff1_w}, .bias = {&t->ff1_b}, .y = {&g}, .act = BE_ACT_GEGLU};
    be_gemm(b, &ff1);
    be_gemm_args ff2 = {.x = &g, .stride = 1, .nw = 1, .w = {&t->ff2_w}, .bias = {&t->ff2_b}, .y = {x}, .residual = x};
    be_gemm(b, &ff2);
    be_release(b, mark);
}

void layer_tblock_forward(be *b, const layer_tblock *t, be_tensor *x, const be_tensor *ctx) { tblock_forward(b, t, x, ctx, NULL); }

/* ---- Transformer2DModel ---- */

sd_status layer_t2d_load(be *b, wmap *m, layer_t2d *t, const char *p, int ch, int ctx_dim, int heads, int depth, int groups) {
    memset(t, 0, sizeof *t);
    t->ch = ch;
    t->groups = groups;
    TRY(wmap_vec(b, m, &t->norm_w, ch, "%s.norm.weight", p));
    TRY(wmap_vec(b, m, &t->norm_b, ch, "%s.norm.bias", p));
    TRY(wmap_linear(b, m, &t->in_w, ch, ch, "%s.proj_in.weight", p));
    TRY(wmap_vec(b, m, &t->in_b, ch, "%s.proj_in.bias", p));
    TRY(wmap_linear(b, m, &t->out_w, ch, ch, "%s.proj_out.weight", p));
    TRY(wmap_vec(b, m, &t->out_b, ch, "%s.proj_out.bias", p));
    t->blocks = calloc(depth, sizeof *t->blocks);
    if (!t->blocks) return err_fail(SD_ERR_MEMORY, "out of memory");
    for (int i = 0; i < depth; i++) {
        char q[512];
        snprintf(q, sizeof q, "%s.transformer_blocks.%d", p, i);
        t->depth = i + 1; /* so free() releases what was loaded */
        TRY(layer_tblock_load(b, m, &t->blocks[i], q, ch, ctx_dim, heads));
    }
    return SD_OK;
}

void layer_t2d_free(be *b, layer_t2d *t) {
    be_weight *ws[] = {&t->norm_w, &t->norm_b, &t->in_w, &t->in_b, &t->out_w, &t->out_b};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) be_weight_free(b, ws[i]);
    for (int i = 0; i < t->depth; i++) layer_tblock_free(b, &t->blocks[i]);
    free(t->blocks);
    t->blocks = NULL;
    t->depth = 0;
}

/* y = x + proj_out(blocks(proj_in(GN(x)))): the GroupNorm is proj_in's prologue, the residual proj_out's epilogue. */
void layer_t2d_context_kv(be *b, const layer_t2d *t, const be_tensor *ctx, be_tensor *kv) {
    for (int i = 0; i < t->depth; i++) layer_attn_context_kv(b, &t->blocks[i].attn2, ctx, &kv[2 * i], &kv[2 * i + 1]);
}

void layer_t2d_forward(be *b, const layer_t2d *t, const be_tensor *x, const be_tensor *ctx, be_tensor *y) {
    layer_t2d_forward_kv(b, t, x, ctx, NULL, y);
}

void layer_t2d_forward_kv(be *b, const layer_t2d *t, const be_tensor *x, const be_tensor *ctx, const be_tensor *kv, be_tensor *y) {
    size_t mark = be_mark(b);
    be_tensor p = be_new(b, x->n, x->h, x->w, t->ch);
    be_gemm_args in = {.x = x, .stride = 1, .norm = BE_NORM_GROUP, .groups = t->groups, .eps = 1e-6f, .gamma = &t->norm_w, .beta = &t->norm_b,
                       .nw = 1, .w = {&t->in_w}, .bias = {&t->in_b}, .y = {&p}};
    be_gemm(b, &in);
    for (int i = 0; i < t->depth; i++) tblock_forward(b, &t->blocks[i], &p, ctx, kv ? kv + 2 * i : NULL);
    be_gemm_args out = {.x = &p, .stride = 1, .nw = 1, .w = {&t->out_w}, .bias = {&t->out_b}, .y = {y}, .residual = x};
    be_gemm(b, &out);
    be_release(b, mark);
}
