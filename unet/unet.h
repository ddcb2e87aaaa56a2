/* unet.h — the config-driven UNet2DConditionModel denoiser (SD 1.x, SD 2.x, SDXL base/refiner, inpainting).
 *
 * Typical use (the pipeline):
 *
 *   wmap *m = wmap_new();
 *   unet_add_tensors(m, file, UNET_NAMES_LDM, "model.diffusion_model.");   // or UNET_NAMES_DIFFUSERS, ""
 *   unet_config cfg;
 *   if (have config.json) unet_config_from_file("unet/config.json", &cfg);
 *   else                  unet_config_infer(m, &cfg);                     // from names and shapes
 *   unet_model *u;
 *   unet_load(b, m, &cfg, &u);       // every tensor checked; missing / unexpected / mis-shaped ones named
 *   wmap_free(m);                    // (after unet_load the weights live in the backend)
 *   ...
 *   be_tensor eps = be_new(b, N, h, w, cfg.out_channels);
 *   unet_cond c = {.ctx = &ctx, .text_embeds = &pooled, .time_ids = ids};   // SDXL; SD1/2 give ctx only
 *   unet_forward(b, u, &x, timesteps, &c, &eps);
 *   if (be_status(b) != SD_OK) ...
 *   unet_free(b, u);
 *
 * Weight names: both the original single-file layout (`input_blocks.N.M.*`, `middle_block.*`,
 * `output_blocks.*`, `time_embed.*`, `label_emb.*`, `out.*`) and the diffusers layout map onto the
 * diffusers names at unet_add_tensors; the rest of the code only sees diffusers names. */
#ifndef UNET_UNET_H
#define UNET_UNET_H

#include "../core/safetensors.h"
#include "../kernels/backend.h"
#include "../kernels/layers.h"
#include "../kernels/weights.h"

#define UNET_MAX_LEVELS 6
#define UNET_MAX_LAYERS 8 /* resnets per down level (up levels have one more) */
#define UNET_MAX_SAMPLE_SIZE 2048 /* config.json sample_size: latent side of 16384 pixels at 8x */

typedef struct unet_config {
    int in_channels, out_channels;           /* 4 / 4; inpainting 9 in; instruct-pix2pix 8 in */
    int levels;                              /* number of down (and up) blocks */
    int block_out[UNET_MAX_LEVELS];          /* channels per level */
    int layers[UNET_MAX_LEVELS];             /* resnets per down level; the mirrored up level has layers + 1 */
    /* transformer depth of the attention after each resnet; 0 = no attention (DownBlock2D / UpBlock2D).
     * Up level l is the one at the resolution of down level l (diffusers up_blocks[levels-1-l]). */
    int down_depth[UNET_MAX_LEVELS][UNET_MAX_LAYERS];
    int up_depth[UNET_MAX_LEVELS][UNET_MAX_LAYERS + 1];
    int mid_depth;                           /* UNetMidBlock2DCrossAttn transformer depth */
    int heads[UNET_MAX_LEVELS];              /* attention heads at each level (up level l mirrors down level l) */
    int mid_heads;
    int ctx_dim;                             /* cross_attention_dim: width of the text context */
    int linear_proj;                         /* Transformer2D proj_in/out: 1 = Linear (SD2/XL), 0 = 1x1 conv (SD1) */
    int norm_groups;                         /* GroupNorm groups (32) */
    float norm_eps;                          /* resnet / output GroupNorm eps (1e-5) */
    int flip_sin_to_cos;                     /* 1: [cos | sin] */
    float freq_shift;                        /* 0 */
    int temb_dim;                            /* time embedding width (4 * block_out[0]) */
    int add_embed;                           /* 1: SDXL "text_time" add_embedding */
    int add_time_dim;                        /* sinusoid width per time id (256) */
    int add_in_dim;                          /* add_embedding input: pooled dim + n_ids * add_time_dim (2816) */
    int time_cond_dim;                       /* LCM time_cond_proj_dim (guidance embedding), 0 = none */
    int sample_size;                         /* nominal latent size from config.json (0 = unknown) */
} unet_config;

typedef enum unet_names { UNET_NAMES_DIFFUSERS, UNET_NAMES_LDM } unet_names;

/* ---- configuration ---- */
/* Parses a diffusers unet/config.json text. Unsupported options (other block types, class embeddings,
 * encoder_hid_proj, only_cross_attention ...) are refused by name with SD_ERR_UNSUPPORTED. */
sd_status unet_config_from_json(const char *json, unet_config *cfg);
sd_status unet_config_from_file(const char *path, unet_config *cfg);
/* Infers the config from the canonical (diffusers) names and shapes in m. Heads follow the family rules:
 * 1x1-conv projections (SD 1.x) -> 8 heads per level, linear projections (SD 2.x / SDXL) -> head dim 64. */
sd_status unet_config_infer(const wmap *m, unet_config *cfg);
/* The same for an encoder half (a ControlNet's copy: conv_in, time/add embedding, down and mid blocks). */
sd_status unet_config_infer_encoder(const wmap *m, unet_config *cfg);
/* Number of time ids an SDXL-style model expects per sample given the pooled width (6 base, 5 refiner). */
int unet_config_n_time_ids(const unet_config *cfg, int pooled_dim);

/* ---- weights ---- */
/* Adds f's tensors whose names start with `prefix` to m under canonical diffusers names. With
 * UNET_NAMES_LDM the layers-per-block of the file is read from its index layout first. Names that do
 * not map are kept as they are, so unet_load reports them as unexpected. */
sd_status unet_add_tensors(wmap *m, const st_file *f, unet_names names, const char *prefix);
/* The pieces of the LDM mapping, for name lists without a file (architecture checks with virtual entries):
 * layers per block from the input_blocks index layout of the names under `prefix`, and the diffusers
 * name of one LDM name (prefix removed); the latter returns 0 for a name that does not map. */
sd_status unet_ldm_layers_per_block(const char *const *names, int count, const char *prefix, int *layers_per_block);
int unet_ldm_to_diffusers(const char *name, int layers_per_block, char *dst, size_t cap);
/* A layer named the way kohya-ss names LoRA modules of an LDM UNet (SDXL LoRAs): the LDM path with '_' for '.',
 * "input_blocks_4_1_transformer_blocks_0_attn1_to_q" -> the diffusers path in the same spelling,
 * "down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q". Returns 0 for a name that is not one. */
int unet_ldm_layer_to_diffusers(const char *name, int layers_per_block, char *dst, size_t cap);

/* ---- model ---- */
typedef struct unet_model unet_model;

/* Loads every tensor cfg asks for (shape and dtype checked, errors name the tensor), then fails if m
 * holds tensors the model does not use. In measure mode (or with virtual wmap entries) only the checks run. */
sd_status unet_load(be *b, wmap *m, const unet_config *cfg, unet_model **out);
void unet_free(be *b, unet_model *u);
const unet_config *unet_get_config(const unet_model *u);

/* ControlNet residuals (unet/controlnet.h computes them): added to the down path's skip connections, in the order
 * the down path stores them (conv_in, then each resnet(+attention) and downsampler, level by level), and to the mid
 * block's output, as diffusers' down_block_additional_residuals / mid_block_additional_residual. They apply to the
 * UNet batch rows [row0, row0 + n) (guess mode steers only the prompt's half of a guided batch). */
typedef struct unet_control {
    int count;                      /* unet_skip_count(): one residual per skip connection */
    const be_tensor *down;          /* [count], down[i] [n, h_i, w_i, c_i] as the skip it is added to */
    const be_tensor *mid;           /* [n, h, w, block_out[levels - 1]] */
    int row0;
} unet_control;

/* Conditioning of one forward. N = batch. */
typedef struct unet_cond {
    const be_tensor *ctx;           /* [N, 1, T, ctx_dim] text context (required) */
    const be_tensor *text_embeds;   /* SDXL: [N, 1, 1, pooled_dim] pooled text embedding; else NULL */
    const float *time_ids;          /* SDXL: host, N x n_ids values (orig_h, orig_w, crop_top, crop_left,
                                       target_h, target_w; refiner: ..., aesthetic score); else NULL */
    const be_tensor *timestep_cond; /* LCM: [N, 1, 1, time_cond_dim] guidance embedding; NULL = none */
    const unet_control *control;    /* ControlNet residuals; NULL = none */
    unsigned ctx_id;                /* 0, or an id from unet_context_id() for the contents of ctx: forwards with the
                                       same id (and ctx tensor) reuse the cross-attention keys and values computed
                                       by the first one (once per image instead of once per step) */
} unet_cond;

/* A new context id (unet_cond.ctx_id) for text context contents just written; never 0. */
unsigned unet_context_id(unet_model *u);

/* eps (or v) prediction: x [N, h, w, in_channels] -> out [N, h, w, out_channels] (caller-allocated).
 * timesteps: host, N values, may be fractional. Any h, w >= 1 (odd sizes resize to the skip's size on
 * the way up, as diffusers does). Errors are recorded in the backend (check be_status). Works in
 * measure mode. */
void unet_forward(be *b, const unet_model *u, const be_tensor *x, const float *timesteps, const unet_cond *c, be_tensor *out);

/* ---- the encoder half (a ControlNet is this half of a UNet plus its own input and output layers) ---- */
/* Loads conv_in, the time (and add) embedding, the down blocks and the mid block only; m must hold nothing else
 * of a UNet (other tensors are left for the caller: wmap_unused lists them). */
sd_status unet_load_encoder(be *b, wmap *m, const unet_config *cfg, unet_model **out);
/* Number of skip connections of the down path, and the [h, w, c] of skip i for an h x w input. */
int unet_skip_count(const unet_config *cfg);
void unet_skip_shape(const unet_config *cfg, int i, int h, int w, int *sh, int *sw, int *sc);
/* Runs conv_in (+ `hint` [N, h, w, block_out[0]] added to its output when not NULL), the down blocks and the
 * mid block: skips[unet_skip_count()] and mid are allocated in the arena by this call (the caller releases
 * them with its own mark). c->control must be NULL. */
void unet_encode(be *b, const unet_model *u, const be_tensor *x, const float *timesteps, const unet_cond *c,
                 const be_tensor *hint, be_tensor *skips, be_tensor *mid);

#endif
