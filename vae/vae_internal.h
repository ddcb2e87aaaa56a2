/* vae_internal.h — the VAE model's private layout, shared by vae_model.c (load, forwards) and vae_decode.c. */
#ifndef VAE_VAE_INTERNAL_H
#define VAE_VAE_INTERNAL_H

#include "../kernels/layers.h"
#include "vae.h"

/* mid block: ResNet, single-head self-attention (GroupNorm inside, residual), ResNet */
typedef struct vae_mid {
    layer_resnet res[2];
    be_weight gn_w, gn_b;
    layer_attn attn;
    int has_attn;
} vae_mid;

/* host copies of a ResNet's GroupNorm parameters (the exact tiled decode normalises on the host) */
typedef struct vae_gn_host { float *g1, *b1, *g2, *b2; } vae_gn_host;

/* one resolution level: ResNets, then a resampling conv (down: stride 2 after padding right/bottom;
 * up: 3x3 after a nearest 2x upsample), absent at the last level */
typedef struct vae_level {
    layer_resnet *res;
    vae_gn_host *gnh;                /* decoder levels >= 1 only */
    int nres;
    be_weight samp_w, samp_b;
    int has_samp;
} vae_level;

/* encoder or decoder */
typedef struct vae_coder {
    be_weight in_w, in_b;            /* conv_in */
    vae_level level[VAE_MAX_LEVELS]; /* encoder: down_blocks; decoder: up_blocks (lowest resolution first) */
    vae_mid mid;
    be_weight norm_w, norm_b;        /* conv_norm_out (+ SiLU) */
    float *norm_g_host, *norm_b_host; /* decoder only */
    be_weight out_w, out_b;          /* conv_out */
} vae_coder;

struct vae_model {
    vae_config cfg;
    be *b;
    int parts;                       /* VAE_DECODER | VAE_ENCODER actually loaded */
    vae_coder enc, dec;
    be_weight quant_w, quant_b;      /* encoder side, 2·lc -> 2·lc */
    be_weight post_w, post_b;        /* decoder side, lc -> lc */
};

#define VAE_EPS 1e-6f

/* Decoder up to the first upsampler (everything at latent resolution): z [N,h,w,lc] -> y [N,h,w,C_top]. */
void vae_dec_trunk_forward(be *b, const vae_model *v, const be_tensor *z, be_tensor *y);

/* Exact tiled decoding (vae_stream.c): the trunk on the device, then every later layer in row bands
 * streamed through host memory with global GroupNorm statistics. band: latent rows per band.
 * dry: measure mode walk (device allocations only, no host buffers); the arena peak is in *peak. */
sd_status vae_stream_decode(be *b, const vae_model *v, const float *z, int h, int w, int band, float *out, int dry);

#endif
