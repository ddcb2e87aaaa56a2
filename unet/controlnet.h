/* controlnet.h — ControlNet (Zhang et al. 2023; diffusers ControlNetModel): a copy of a UNet's encoder half (conv_in,
 * time/add embedding, down blocks, mid block — unet.c's own code, loaded with unet_load_encoder), plus a small
 * convolutional embedding of the control image added after conv_in, and one zero-initialised 1x1 convolution per
 * skip connection and after the mid block. Its outputs are unet_control residuals for unet_forward.
 *
 *   wmap *m = wmap_new();
 *   controlnet_add_tensors(m, file);                    // control_model.* / bare LDM names, or diffusers names
 *   controlnet_config cfg;
 *   controlnet_config_from_file("config.json", &cfg)    // diffusers folder; else controlnet_config_infer(m, &cfg)
 *   controlnet_load(b, m, &cfg, &cn);                   // every tensor checked, unexpected ones named
 *   controlnet_forward(b, cn, &x, ts, &cond, &hint, scales, accumulate, &residuals);
 *
 * Weight names: diffusers (`controlnet_cond_embedding.*`, `controlnet_down_blocks.K`, `controlnet_mid_block`, and a
 * UNet's encoder names) and the original single-file layout of lllyasviel's files (`control_model.` prefix or none:
 * `input_hint_block.I`, `zero_convs.K.0`, `middle_block_out.0`, and a UNet's LDM names), mapped at load. */
#ifndef UNET_CONTROLNET_H
#define UNET_CONTROLNET_H

#include "unet.h"

#define CONTROLNET_MAX_EMBED 8   /* conditioning_embedding_out_channels entries */
#define CONTROLNET_MAX_SKIPS (1 + UNET_MAX_LEVELS * (UNET_MAX_LAYERS + 1))

typedef struct controlnet_config {
    unet_config unet;                      /* the encoder half (up-path fields unused) */
    int cond_channels;                     /* control image channels (3) */
    int embed[CONTROLNET_MAX_EMBED];       /* conditioning_embedding_out_channels (16, 32, 96, 256) */
    int n_embed;
    int bgr;                               /* controlnet_conditioning_channel_order "bgr" */
} controlnet_config;

typedef struct controlnet controlnet;

/* Adds a ControlNet file's tensors to m under diffusers names: the layout is told by the names (original:
 * "[control_model.]input_hint_block.0.weight"; diffusers: "controlnet_cond_embedding.conv_in.weight"). Other
 * tensors of an original file (a whole SD model saved beside the ControlNet) are left out. A file that is
 * neither is refused, naming it. */
sd_status controlnet_add_tensors(wmap *m, const st_file *f);
/* diffusers ControlNetModel config.json; refuses options this engine does not implement
 * (global_pool_conditions, class embeddings, ...) by name. */
sd_status controlnet_config_from_json(const char *json, controlnet_config *cfg);
sd_status controlnet_config_from_file(const char *path, controlnet_config *cfg);
/* From the names and shapes (heads by the family rules of unet_config_infer). */
sd_status controlnet_config_infer(const wmap *m, controlnet_config *cfg);

sd_status controlnet_load(be *b, wmap *m, const controlnet_config *cfg, controlnet **out);
void controlnet_free(be *b, controlnet *cn);
const controlnet_config *controlnet_get_config(const controlnet *cn);

/* Residuals of one forward: x [N, h, w, in_channels] latents, `hint` [N, 8h, 8w, cond_channels] control image in
 * [0, 1], in the model's channel order (controlnet_hint_bgr).
 * out->down[i] and out->mid must be allocated by the caller with unet_skip_shape()'s shapes and n = N. scales:
 * unet_skip_count() + 1 factors (the last for the mid block; diffusers' conditioning_scale, or guess mode's
 * logspace ramp). accumulate 0: out = scale · residual; 1: out += scale · residual (several ControlNets). */
void controlnet_forward(be *b, const controlnet *cn, const be_tensor *x, const float *timesteps, const unet_cond *c,
                        const be_tensor *hint, const float *scales, int accumulate, const unet_control *out);
/* 1 when the model reads its control image as BGR (the caller flips the channels of its RGB image). */
int controlnet_hint_bgr(const controlnet *cn);

#endif
