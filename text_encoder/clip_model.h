/* clip_model.h — the CLIP / OpenCLIP text transformer (SD 1.x CLIP ViT-L/14, SD 2.x OpenCLIP ViT-H/14,
 * SDXL's CLIP-L + OpenCLIP bigG pair): one config-driven model written against the backend contract.
 *
 *   wmap *m = wmap_new();
 *   clip_add_file(m, f, "cond_stage_model.transformer.", CLIP_LAYOUT_AUTO);   // or "" for a diffusers file
 *   clip_config cfg;
 *   clip_config_infer(m, &cfg);            // or clip_config_from_json("text_encoder/config.json", &cfg)
 *   clip_model c;
 *   clip_load(b, m, &cfg, &c);             // missing / mis-shaped tensors are reported by name
 *   be_tensor ctx = be_new(b, 2, 1, 77, cfg.width);
 *   clip_forward(b, &c, ids, 2, 77, -1, 1, &ctx, NULL);   // SD 1.x: last_hidden_state
 *   if (be_status(b) != SD_OK) ...
 *
 * Which hidden state each family uses (`layer` counts like transformers' hidden_states[layer]: 0 is the
 * embeddings, cfg.layers the last block; negative values count from the end, -1 = last):
 *   SD 1.x      layer -1, final LN (last_hidden_state); clip skip k (diffusers) -> layer -(k+1), final LN
 *               (A1111 "stop at last layers" n -> layer -n).
 *   SD 2.x      diffusers 23-layer encoder: layer -1, final LN. The original OpenCLIP file has 24 blocks:
 *               layer -2, final LN ("penultimate"), or set cfg.layers = 23 and cfg.proj_dim = 0 before
 *               clip_load (the last block and the projection are then ignored, not loaded) and use -1.
 *   SDXL        both encoders layer -(2+k), no final LN, concatenated; pooled vector from encoder 2
 *               (clip_sdxl_forward). The refiner uses encoder 2 alone the same way.
 * A prompt of k chunks of 77 tokens is encoded as n*k sequences: the output [n*k, 1, 77, C] is, in memory,
 * the [n, 1, 77*k, C] context the UNet reads. */
#ifndef TEXT_ENCODER_CLIP_MODEL_H
#define TEXT_ENCODER_CLIP_MODEL_H

#include <stdint.h>

#include "../kernels/layers.h"

typedef enum clip_act { CLIP_ACT_QUICK_GELU, CLIP_ACT_GELU } clip_act;

/* Where the pooled output is read (transformers' rule, facts §4.1). ARGMAX: the first position holding the
 * row's largest id — transformers' legacy path for configs with eos_token_id 2 (the real SD 1.x and SDXL
 * configs), and what OpenAI CLIP / OpenCLIP do; with the CLIP tokenizer this is the first EOS (49407 is the
 * largest id). FIRST_EOS: the first position equal to eos_id (position 0 when the row has none). */
typedef enum clip_pool { CLIP_POOL_ARGMAX, CLIP_POOL_FIRST_EOS } clip_pool;

typedef struct clip_config {
    int vocab;        /* token embedding rows (49408) */
    int width;        /* hidden size: 768 (CLIP-L), 1024 (OpenCLIP-H), 1280 (OpenCLIP-bigG) */
    int layers;       /* transformer blocks loaded and run */
    int heads;        /* attention heads (width / 64 in every SD encoder) */
    int inter;        /* MLP hidden width (4 * width) */
    clip_act act;     /* quick_gelu (CLIP-L), gelu erf (OpenCLIP) */
    int max_pos;      /* learned positions (77) */
    float ln_eps;     /* LayerNorm eps (1e-5) */
    int proj_dim;     /* text projection output width; 0: no projection (pooled = final-LN state) */
    clip_pool pool;
    int eos_id;       /* for CLIP_POOL_FIRST_EOS */
} clip_config;

/* ---- weight names ----
 * Canonical names are the transformers CLIPTextModel(WithProjection) ones: text_model.embeddings.*,
 * text_model.encoder.layers.N.{self_attn.{q,k,v,out}_proj, layer_norm1, layer_norm2, mlp.fc1, mlp.fc2}.*,
 * text_model.final_layer_norm.*, text_projection.weight [P, C]. Two OpenCLIP tensors have no such
 * counterpart by renaming alone and keep their own spelling under the canonical prefix:
 * text_model.encoder.layers.N.self_attn.in_proj_{weight,bias} (q, k, v stacked: [3C, C], [3C]) and
 * text_projection ([C, P], applied as x @ P); clip_load splits / transposes them. */
typedef enum clip_layout {
    CLIP_LAYOUT_AUTO,      /* OpenCLIP if prefix + "token_embedding.weight" exists, else HF */
    CLIP_LAYOUT_HF,        /* transformers names, with or without "text_model." (transformers 5 writes a
                              bare CLIPTextModel without it, as very old SD 1.x files did) */
    CLIP_LAYOUT_OPENCLIP   /* open_clip names (SD 2.x cond_stage_model.model., SDXL conditioner.embedders.1.model.) */
} clip_layout;

/* Rename callbacks for wmap_add_file (src has the file prefix removed). They skip position_ids buffers,
 * OpenCLIP's logit_scale and attn_mask, and keep unknown names as they are (wmap_unused reports them). */
int clip_rename_hf(const char *src, char *dst, size_t cap, void *user);
int clip_rename_openclip(const char *src, char *dst, size_t cap, void *user);

/* Adds the encoder tensors of f under `prefix` to m under canonical names. Prefixes: "" (diffusers
 * text_encoder / text_encoder_2 file), "cond_stage_model.transformer." (SD 1.x), "cond_stage_model.model."
 * (SD 2.x), "conditioner.embedders.0.transformer." and "conditioner.embedders.1.model." (SDXL). */
sd_status clip_add_file(wmap *m, const st_file *f, const char *prefix, clip_layout layout);

/* ---- config ---- */
/* From a transformers config.json (a CLIPTextConfig, or a CLIPConfig with "text_config"); absent keys take
 * transformers' defaults. proj_dim is projection_dim when "architectures" names CLIPTextModelWithProjection,
 * else 0. eos_token_id 2 selects CLIP_POOL_ARGMAX (transformers' legacy rule), any other id FIRST_EOS. */
sd_status clip_config_from_json(const char *path, clip_config *cfg);
sd_status clip_config_from_json_text(const char *text, size_t len, const char *what, clip_config *cfg);
/* From the names and shapes in m (canonical names): vocab and width from the token embedding, max_pos
 * from the position table, layers from the highest encoder.layers.N, inter from fc1, proj_dim from the
 * projection. Not stored in files, so fixed by convention: heads = width / 64 (0 if width is not a multiple
 * of 64: set it yourself), eps 1e-5, pooling ARGMAX, activation gelu when the tensors came in OpenCLIP
 * layout (SD 2.x, SDXL encoder 2) and quick_gelu otherwise (SD 1.x, SDXL encoder 1). */
sd_status clip_config_infer(const wmap *m, clip_config *cfg);
/* Sizes a model can be built with (positive, heads dividing the width, a known activation and pooling rule);
 * clip_load checks too, but only a caller knows which file the config came from. "CLIP config: ..." */
sd_status clip_config_check(const clip_config *cfg);

/* ---- model ---- */
typedef struct clip_block {
    be_weight ln1_w, ln1_b, ln2_w, ln2_b;
    layer_attn attn;                   /* q/k/v/out with biases */
    be_weight fc1_w, fc1_b;            /* [inter, width] */
    be_weight fc2_w, fc2_b;            /* [width, inter] */
} clip_block;

/* Textual-inversion vectors: an id in [first, first + count) stands for the host vector rows[id - first] (width
 * floats) instead of a row of the token table; NULL rows are an error if a prompt uses them. */
typedef struct clip_extra {
    int32_t first;
    int count;
    const float *const *rows;
} clip_extra;

typedef struct clip_model {
    clip_config cfg;
    const clip_extra *extra;           /* NULL: ids must be in the vocabulary */
    be_weight tok;                     /* EMBED [vocab, width] */
    be_weight pos;                     /* EMBED [max_pos, width] */
    int32_t *pos_ids;                  /* host [max_pos]: 0, 1, 2, ... (the position table's lookup ids) */
    clip_block *blocks;                /* [cfg.layers] */
    int nblocks;                       /* loaded so far (what clip_free releases) */
    be_weight lnf_w, lnf_b;            /* final LayerNorm */
    be_weight proj;                    /* LINEAR [proj_dim, width], no bias; unset when proj_dim is 0 */
} clip_model;

/* Loads (or, in measure mode / from virtual entries, checks) every tensor by canonical name. Blocks at
 * and beyond cfg->layers and a projection when cfg->proj_dim is 0 are deliberately ignored and marked used.
 * On failure the model is freed and the error names the tensor. */
sd_status clip_load(be *b, wmap *m, const clip_config *cfg, clip_model *c);
void clip_free(be *b, clip_model *c);

/* Position of ids[0..t-1] whose final-LN state is pooled (cfg->pool). */
int clip_pool_position(const clip_config *cfg, const int32_t *ids, int t);

/* ids: host int32 [n, t], 1 <= t <= max_pos, each < vocab or one of c->extra's (its vector replaces the token
 * embedding; for pooling it counts as id 0, as AUTOMATIC1111 places 0 there).
 * hidden (or NULL): [n, 1, t, width] <- hidden_states[layer], through the final LayerNorm if final_ln.
 * pooled (or NULL): [n, 1, 1, proj_dim or width] <- projection(final_LN(last state)[pool position]); all
 * blocks run when it is asked for. Errors (bad arguments, ids out of range) are sticky in the backend;
 * works unchanged in measure mode. */
void clip_forward(be *b, const clip_model *c, const int32_t *ids, int n, int t, int layer, int final_ln, be_tensor *hidden,
                  be_tensor *pooled);

/* SDXL: ctx [n, 1, t, width_l + width_g] <- concat(l's, g's hidden_states[-(2 + clip_skip)]) (no final LN);
 * pooled (or NULL) [n, 1, 1, g proj_dim] <- g's projected pooled output. ids_l / ids_g: each encoder's ids
 * (their tokenizers pad differently, facts §3.2). */
void clip_sdxl_forward(be *b, const clip_model *l, const clip_model *g, const int32_t *ids_l, const int32_t *ids_g, int n, int t,
                       int clip_skip, be_tensor *ctx, be_tensor *pooled);

#endif
