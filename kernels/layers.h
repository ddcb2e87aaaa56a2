/* layers.h — composite layers shared by the models, written once against the backend contract:
 * ResNet block, multi-head attention, transformer block (self + cross + GEGLU), Transformer2D.
 * Weight names are the diffusers ones, under a prefix (the model's loader maps other formats onto them). */
#ifndef KERNELS_LAYERS_H
#define KERNELS_LAYERS_H

#include "backend.h"
#include "weights.h"

/* ResnetBlock2D: h = conv1(SiLU(GN(x))) [+ time_emb_proj(SiLU(temb))]; h = conv2(SiLU(GN(h)));
 * out = shortcut(x) + h, shortcut = 1x1 conv when channels change. */
typedef struct layer_resnet {
    int cin, cout, temb_dim, groups;   /* temb_dim 0: no time embedding (VAE) */
    float eps;
    be_weight norm1_w, norm1_b, conv1_w, conv1_b, temb_w, temb_b, norm2_w, norm2_b, conv2_w, conv2_b, short_w, short_b;
} layer_resnet;

sd_status layer_resnet_load(be *b, wmap *m, layer_resnet *r, const char *prefix, int cin, int cout, int temb_dim, int groups, float eps);
void layer_resnet_free(be *b, layer_resnet *r);
/* x [N,H,W,cin] -> y [N,H,W,cout] (allocated by the caller, not aliasing x); temb_silu [N,1,1,temb_dim]
 * is SiLU(time embedding), computed once per step by the caller (NULL when temb_dim is 0). */
void layer_resnet_forward(be *b, const layer_resnet *r, const be_tensor *x, const be_tensor *temb_silu, be_tensor *y);
/* The block's projection of SiLU(time embedding): t [N,1,1,cout], allocated by the caller. A model with many
 * blocks makes all of theirs one after another (same input, nothing in between), which a backend may run as one
 * launch (the CUDA backend does). */
void layer_resnet_temb(be *b, const layer_resnet *r, const be_tensor *temb_silu, be_tensor *t);
/* The forward on the channel concat [x | x2] (cin = x.c + x2.c; x2 may be NULL), which is never materialised on
 * backends that fuse, with the time embedding already projected (layer_resnet_temb; NULL when temb_dim is 0). */
void layer_resnet_forward_cat(be *b, const layer_resnet *r, const be_tensor *x, const be_tensor *x2, const be_tensor *temb_proj, be_tensor *y);

/* Multi-head attention with q/k/v/out projections; bias on q/k/v optional, on out always. */
typedef struct layer_attn {
    int dim, ctx_dim, heads;
    be_weight q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
    int qkv_bias;
} layer_attn;

/* names: {q, k, v, out} relative to prefix, or NULL for diffusers' {"to_q", "to_k", "to_v", "to_out.0"}. */
sd_status layer_attn_load(be *b, wmap *m, layer_attn *a, const char *prefix, const char *const names[4], int dim, int ctx_dim,
                          int heads, int qkv_bias);
void layer_attn_free(be *b, layer_attn *a);
/* y = out(attention(q(x), k(ctx), v(ctx))); ctx NULL means self-attention. x [N,H,W,dim], ctx [N,1,T,ctx_dim]. */
void layer_attn_forward(be *b, const layer_attn *a, const be_tensor *x, const be_tensor *ctx, int causal, be_tensor *y);
/* The keys k and values v [N,1,T,dim] (allocated by the caller) of a cross-attention for context ctx. */
void layer_attn_context_kv(be *b, const layer_attn *a, const be_tensor *ctx, be_tensor *k, be_tensor *v);

/* BasicTransformerBlock: x += attn1(LN1(x)); x += attn2(LN2(x), ctx); x += FF_GEGLU(LN3(x)). */
typedef struct layer_tblock {
    int dim;
    be_weight n1_w, n1_b, n2_w, n2_b, n3_w, n3_b, ff1_w, ff1_b, ff2_w, ff2_b;
    layer_attn attn1, attn2;
} layer_tblock;

sd_status layer_tblock_load(be *b, wmap *m, layer_tblock *t, const char *prefix, int dim, int ctx_dim, int heads);
void layer_tblock_free(be *b, layer_tblock *t);
void layer_tblock_forward(be *b, const layer_tblock *t, be_tensor *x, const be_tensor *ctx); /* in place */

/* Transformer2DModel: y = x + proj_out(blocks(proj_in(GN(x)))); proj_in/out are 1x1 convs (SD1) or
 * linears (SD2/XL), the same GEMM on channels-last data. */
typedef struct layer_t2d {
    int ch, depth, groups;   /* groups: of the input GroupNorm (32 in every SD model) */
    be_weight norm_w, norm_b, in_w, in_b, out_w, out_b;
    layer_tblock *blocks;
} layer_t2d;

sd_status layer_t2d_load(be *b, wmap *m, layer_t2d *t, const char *prefix, int ch, int ctx_dim, int heads, int depth, int groups);
void layer_t2d_free(be *b, layer_t2d *t);
void layer_t2d_forward(be *b, const layer_t2d *t, const be_tensor *x, const be_tensor *ctx, be_tensor *y);
/* The cross-attention keys and values of every block for context ctx: kv[2i], kv[2i + 1] (caller-allocated,
 * [N,1,T,ch]) for block i; made once, they serve every forward with the same context (layer_t2d_forward_kv). */
void layer_t2d_context_kv(be *b, const layer_t2d *t, const be_tensor *ctx, be_tensor *kv);
void layer_t2d_forward_kv(be *b, const layer_t2d *t, const be_tensor *x, const be_tensor *ctx, const be_tensor *kv, be_tensor *y);

#endif
