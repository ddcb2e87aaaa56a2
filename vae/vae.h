/* vae.h — AutoencoderKL (the SD 1.x / 2.x / XL VAE): config, weight-name mapping, decoder and encoder
 * written on the backend contract, tiled decoding of large images, latent scaling and image conversions.
 *
 * Typical use (the pipeline):
 *   vae_config c;  vae_config_from_json("vae/config.json", &c)   or   vae_config_infer(m, &c) + family scaling
 *   vae_add_weights(m, file, "first_stage_model.", VAE_LAYOUT_AUTO);      // single-file checkpoint
 *   vae_load(b, m, &c, VAE_DECODER, &v);
 *   size_t need = vae_decode_arena_bytes(b, v, h, w, &opts);             // measure mode, computes nothing
 *   ... be_arena_reserve(b, max(need, unet_need)) ...
 *   vae_decode(b, v, unet_latent, n, h, w, &opts, rgb);                  // rgb in [-1, 1] (not clamped)
 *   vae_image_to_u8(rgb, n * H * W * 3, pixels);                         // diffusers' rounding
 *
 * Layouts: every host array is channels-last (NHWC). A latent is [n, h, w, latent_channels]; an image is
 * [n, h·f, w·f, 3] with f = 2^(levels-1) (8 for SD). Noise given to vae_encode is NHWC too: a caller that
 * reproduces torch.randn (NCHW order) transposes it first. */
#ifndef VAE_VAE_H
#define VAE_VAE_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/backend.h"
#include "../kernels/weights.h"

#define VAE_MAX_LEVELS 8
#define VAE_MAX_LATENT 64

/* Latent scaling factors by family (single-file checkpoints carry no config). */
#define VAE_SCALING_SD1 0.18215f   /* SD 1.x and 2.x */
#define VAE_SCALING_SDXL 0.13025f

/* ---- config ---- */

typedef struct vae_config {
    int in_channels, out_channels;    /* image channels (3) */
    int latent_channels;              /* 4 for SD */
    int levels;                       /* len(block_out_channels) */
    int block_out[VAE_MAX_LEVELS];    /* block_out_channels: 128, 256, 512, 512 for SD */
    int layers_per_block;             /* encoder resnets per level; the decoder has one more */
    int groups;                       /* norm_num_groups (32); GroupNorm eps is 1e-6 everywhere */
    int mid_attention;                /* mid_block_add_attention */
    int quant_conv, post_quant_conv;  /* use_quant_conv / use_post_quant_conv */
    float scaling_factor;
    float shift_factor;               /* 0 when the config has none */
    int has_latents_mean_std;         /* per-channel latents_mean / latents_std given */
    float latents_mean[VAE_MAX_LATENT], latents_std[VAE_MAX_LATENT];
    int force_upcast;                 /* informative: fp16 overflows (SDXL); decode in f32/bf16 */
} vae_config;

/* The SD 1.x/2.x VAE (SDXL: the same with scaling_factor = VAE_SCALING_SDXL). */
void vae_config_default(vae_config *c);
/* A diffusers vae/config.json (AutoencoderKL); missing keys take diffusers' defaults. */
sd_status vae_config_from_json(const char *path, vae_config *c);
sd_status vae_config_from_json_text(const char *text, size_t len, const char *what, vae_config *c);
/* From the canonical tensor names/shapes in m (after vae_add_weights). Shapes cannot tell the group
 * count (32 assumed, as in every SD VAE) nor the scaling factor (VAE_SCALING_SD1; the pipeline sets
 * the family's); set them before vae_load, which checks the result. */
sd_status vae_config_infer(const wmap *m, vae_config *c);
/* Checks a config for values the code cannot run (levels, channels not divisible by groups ...). */
sd_status vae_config_check(const vae_config *c);

/* ---- weights ---- */

typedef enum vae_layout {
    VAE_LAYOUT_AUTO,       /* decide from the names */
    VAE_LAYOUT_LDM,        /* original: encoder.down.{l}.block.{j}, decoder.up.{l} (reversed), mid.attn_1.{q,k,v,proj_out} */
    VAE_LAYOUT_DIFFUSERS   /* decoder.up_blocks.{i}..., mid_block.attentions.0.{to_q,...} (also the old query/key/value/proj_attn) */
} vae_layout;

/* Adds the VAE tensors of f under `prefix` ("first_stage_model." in a single-file checkpoint, "" for
 * a VAE file) to m under the canonical diffusers names. Names outside encoder./decoder./quant_conv./
 * post_quant_conv. are not the VAE's and are skipped. */
sd_status vae_add_weights(wmap *m, const st_file *f, const char *prefix, vae_layout layout);
/* The layout the names under `prefix` are in (VAE_LAYOUT_DIFFUSERS if nothing says LDM). */
vae_layout vae_detect_layout(const st_file *f, const char *prefix);
/* The canonical name of one original (LDM) name (without prefix) given the level count; returns 0 if
 * the name is not a VAE tensor. Exposed for tests and tools. */
int vae_ldm_rename(const char *src, int levels, char *dst, size_t cap);

/* ---- model ---- */

enum { VAE_DECODER = 1, VAE_ENCODER = 2 };

typedef struct vae_model vae_model;

/* Loads the parts asked for (VAE_DECODER | VAE_ENCODER) from m. Tensors of a part not asked for are
 * marked used, so wmap_unused() reports only tensors that belong to no part. Works in measure mode
 * and with virtual weights (architecture checks). */
sd_status vae_load(be *b, wmap *m, const vae_config *c, int parts, vae_model **out);
void vae_free(vae_model *v);
const vae_config *vae_get_config(const vae_model *v);
int vae_factor(const vae_model *v);                    /* image pixels per latent pixel: 2^(levels-1) */
/* The latent size the encoder makes of an H x W image (each downsample: floor(x/2)). */
void vae_latent_size(const vae_model *v, int H, int W, int *h, int *w);

/* Backend-level forwards (any batch). Outputs are allocated by the caller; scratch comes from the arena.
 * z [N, h, w, latent] in the VAE's own space -> img [N, h·f, w·f, out_channels]. */
void vae_decoder_forward(be *b, const vae_model *v, const be_tensor *z, be_tensor *img);
/* img [N, H, W, in_channels] -> moments [N, h, w, 2·latent] = mean ‖ logvar (after quant_conv). */
void vae_encoder_forward(be *b, const vae_model *v, const be_tensor *img, be_tensor *moments);

/* ---- decoding (host arrays) ---- */

typedef enum vae_tiling {
    VAE_TILING_AUTO = 0,   /* whole when it fits mem_limit; else exact bands; else blended tiles */
    VAE_TILING_OFF,        /* whole image at once */
    VAE_TILING_ON,         /* exact: the latent-resolution trunk whole, then row bands streamed through host
                              memory with whole-image GroupNorm statistics; equals the untiled decode up to
                              float rounding. Host memory: ~3 full-resolution activations (vae_stream.c). */
    VAE_TILING_BLEND       /* approximate: overlapping tiles decoded independently (GroupNorm statistics and
                              attention per tile) and blended with linear ramps; the least memory anywhere */
} vae_tiling;

typedef struct vae_decode_opts {
    vae_tiling tiling;
    size_t mem_limit;   /* activation (arena) bytes a decode may use; 0: vae_decode takes the arena's free
                           space, vae_decode_arena_bytes assumes no limit */
    int tile;           /* ON: latent rows per band; BLEND: latent tile edge. 0: the largest that fits
                           mem_limit, else 8 (ON) or 32 (BLEND) */
    int overlap;        /* BLEND: latent overlap of neighbouring tiles; 0: tile / 4 */
} vae_decode_opts;

/* How vae_decode will run for a latent size and opts (decided with measure mode). */
typedef struct vae_plan {
    vae_tiling mode;     /* VAE_TILING_OFF (whole), VAE_TILING_ON (exact bands) or VAE_TILING_BLEND */
    int tile, overlap;   /* band rows or tile edge, and the BLEND overlap (latent pixels) */
    size_t arena_bytes;  /* activation memory it needs */
} vae_plan;

/* latent: host [n, h, w, latent] as the UNet sees it (scaled); this applies the config's unscaling
 * (z / scaling_factor + shift, or · latents_std / scaling_factor + latents_mean) and decodes each sample
 * (one at a time) to rgb: host [n, h·f, w·f, out_channels], nominally [-1, 1], unclamped.
 * opts NULL: AUTO with the arena's free space as the limit. */
sd_status vae_decode(be *b, const vae_model *v, const float *latent, int n, int h, int w, const vae_decode_opts *opts, float *rgb);
/* The same with a latent already in the VAE's space (no unscaling). */
sd_status vae_decode_z(be *b, const vae_model *v, const float *z, int n, int h, int w, const vae_decode_opts *opts, float *rgb);
/* Arena bytes vae_decode needs for an h x w latent with these opts (pass the same opts to vae_decode).
 * Returns 0 and sets the error when nothing fits opts->mem_limit. */
size_t vae_decode_arena_bytes(be *b, const vae_model *v, int h, int w, const vae_decode_opts *opts);
/* What vae_decode will do (mem_limit 0 read as vae_decode reads it). */
sd_status vae_decode_plan(be *b, const vae_model *v, int h, int w, const vae_decode_opts *opts, vae_plan *plan);

/* ---- encoding (host arrays) ---- */

/* image: host [n, H, W, in_channels] in [-1, 1] -> latent: host [n, h, w, latent] (vae_latent_size) in
 * the UNet's space. noise NULL: the posterior mean; else mean + std·noise (noise [n, h, w, latent],
 * logvar clamped to [-30, 20]), as diffusers' latent_dist.mode() / .sample(). Untiled, one sample at a time. */
sd_status vae_encode(be *b, const vae_model *v, const float *image, int n, int H, int W, const float *noise, float *latent);
size_t vae_encode_arena_bytes(be *b, const vae_model *v, int H, int W);
/* Host-side posterior: moments [count, 2·lc] -> out [count, lc] (mean, or mean + exp(0.5·clamp(logvar))·noise). */
void vae_posterior(const float *moments, int lc, size_t count, const float *noise, float *out);

/* ---- latent scaling (in place, [count, latent_channels]) ---- */
void vae_latent_to_unet(const vae_config *c, float *z, size_t count);    /* after encoding */
void vae_latent_from_unet(const vae_config *c, float *z, size_t count);  /* before decoding */

/* ---- image conversions (diffusers VaeImageProcessor, bit-exact in f32) ---- */
/* uint8 = round_half_even(clamp(x·0.5 + 0.5, 0, 1)·255); NaN -> 0. */
void vae_image_to_u8(const float *x, size_t count, uint8_t *out);
/* x = 2·(u / 255) − 1. */
void vae_image_from_u8(const uint8_t *u, size_t count, float *x);

#endif
