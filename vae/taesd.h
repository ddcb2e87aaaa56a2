/* taesd.h — TAESD, the tiny autoencoder (madebyollin/taesd; diffusers' AutoencoderTiny): a decoder and an encoder
 * of plain 3x3 convolutions, ReLU and residual blocks (no normalisation, no attention) that map the UNet's latents
 * to pictures and back with ~18 times less work than the KL VAE, at lower quality. Written on the backend contract.
 *
 *   int parts;  taesd_names names = taesd_detect(file, &parts);     // from its tensor names, or TAESD_NOT
 *   taesd_add_weights(m, file, names);                              // canonical diffusers names: decoder.layers.N...
 *   taesd_load(b, m, 1.0f, 0.0f, &t);                               // the layer lists come from the names and shapes
 *   size_t need = taesd_decode_arena_bytes(b, t, h, w, limit);      // measure mode; bands of rows above `limit`
 *   taesd_decode(b, t, latent, n, h, w, limit, rgb);                // UNet latents -> rgb in [-1, 1] (diffusers' range)
 *
 * Architecture (diffusers vae.py DecoderTiny / EncoderTiny, AutoencoderTinyBlock):
 *   block(x)  = ReLU(conv(ReLU(conv(ReLU(conv(x))))) + skip(x)), skip = 1x1 conv without bias when channels change
 *   decoder:  z -> 3·tanh(z/3) -> conv, ReLU, then blocks, (nearest 2x, conv without bias), ... -> conv to RGB [0, 1]
 *   encoder:  image [0, 1] -> conv, blocks, (conv stride 2 without bias, blocks) ... -> conv to the latent
 * The latents are the UNet's own (scaling factor 1). Every layer has a bounded receptive field, so a picture decoded
 * (or encoded) in row bands with enough overlapping rows is the whole-picture result: large pictures stay within a
 * memory limit without seams.
 *
 * Weight names: diffusers (encoder.layers.N / decoder.layers.N, one file or a folder with config.json), the original
 * taesd.py files (taesd_decoder.safetensors "1.weight" ..., taesd_encoder.safetensors "0.weight" ...; the decoder's
 * indices are one higher: a parameterless clamp is its layer 0), and ComfyUI's combined file (taesd_decoder.N,
 * taesd_encoder.N). Host arrays are channels-last (NHWC). */
#ifndef VAE_TAESD_H
#define VAE_TAESD_H

#include <stddef.h>

#include "../kernels/backend.h"
#include "../kernels/weights.h"

enum { TAESD_DECODER = 1, TAESD_ENCODER = 2 };

typedef enum taesd_names {
    TAESD_NOT = 0,            /* not a TAESD file */
    TAESD_NAMES_DIFFUSERS,    /* decoder.layers.N..., encoder.layers.N... */
    TAESD_NAMES_DECODER,      /* the original decoder file: N... (N = diffusers index + 1) */
    TAESD_NAMES_ENCODER,      /* the original encoder file: N... */
    TAESD_NAMES_COMFY         /* taesd_decoder.N... (original decoder index), taesd_encoder.N... */
} taesd_names;

/* Which naming f uses (TAESD_NOT when its names are not a TAESD's) and the parts it holds (TAESD_DECODER |
 * TAESD_ENCODER) in *parts. Names only: taesd_load checks the shapes. */
taesd_names taesd_detect(const st_file *f, int *parts);
/* Adds f's TAESD tensors to m under the diffusers names. */
sd_status taesd_add_weights(wmap *m, const st_file *f, taesd_names names);

typedef struct taesd_model taesd_model;

/* Builds the decoder and/or encoder found in m (at least one) from their names and shapes, checks that the layers
 * chain (channels, kernel sizes, an RGB end), uploads the weights. scaling/shift: the config's scaling_factor and
 * shift_factor (1 and 0 for every SD TAESD): the decoder reads latent / scaling + shift. */
sd_status taesd_load(be *b, wmap *m, float scaling, float shift, taesd_model **out);
void taesd_free(taesd_model *t);

int taesd_parts(const taesd_model *t);            /* TAESD_DECODER | TAESD_ENCODER actually loaded */
int taesd_latent_channels(const taesd_model *t);
int taesd_factor(const taesd_model *t);           /* picture pixels per latent pixel (8) */
/* One line about the layers: "decoder 4 levels, 64 channels, blocks 3-3-3-1; encoder ..." */
void taesd_describe(const taesd_model *t, char *buf, size_t cap);

/* Backend-level forwards on whole tensors (any batch; the caller allocates outputs, scratch comes from the arena):
 * z [N, h, w, lc] already clamped and unscaled -> img [N, h·f, w·f, 3] in [0, 1] (the network's own range), and
 * img [N, H, W, 3] in [0, 1] (H, W multiples of f) -> z [N, H/f, W/f, lc]. */
void taesd_decoder_forward(be *b, const taesd_model *t, const be_tensor *z, be_tensor *img);
void taesd_encoder_forward(be *b, const taesd_model *t, const be_tensor *img, be_tensor *z);

/* Host-level, one sample at a time, in row bands when the whole picture needs more than mem_limit bytes of
 * activations (0: no limit). latent [n, h, w, lc] as the UNet sees it -> rgb [n, h·f, w·f, 3] in [-1, 1] (unclamped,
 * as diffusers' AutoencoderTiny.decode returns it). */
sd_status taesd_decode(be *b, const taesd_model *t, const float *latent, int n, int h, int w, size_t mem_limit, float *rgb);
/* image [n, H, W, 3] in [-1, 1], H and W multiples of the factor -> latent [n, H/f, W/f, lc] for the UNet. */
sd_status taesd_encode(be *b, const taesd_model *t, const float *image, int n, int H, int W, size_t mem_limit, float *latent);
/* Arena bytes the two need (measure mode), or 0 with the error set. */
size_t taesd_decode_arena_bytes(be *b, const taesd_model *t, int h, int w, size_t mem_limit);
size_t taesd_encode_arena_bytes(be *b, const taesd_model *t, int H, int W, size_t mem_limit);
/* The rows per band the two use (the whole height when it fits), for tests and verbose output; 0 with the error
 * set when not even one row fits. */
int taesd_decode_band(be *b, const taesd_model *t, int h, int w, size_t mem_limit);
int taesd_encode_band(be *b, const taesd_model *t, int H, int W, size_t mem_limit);

#endif
