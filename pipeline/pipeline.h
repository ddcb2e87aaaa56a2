/* pipeline.h — what the pipeline's files share: the loaded context and the steps of a generation. */
#ifndef PIPELINE_PIPELINE_H
#define PIPELINE_PIPELINE_H

#include <stdio.h>

#include "../kernels/backend.h"
#include "../scheduler/sched_model.h"
#include "../sd.h"
#include "../text_encoder/clip_model.h"
#include "../text_encoder/prompt.h"
#include "../text_encoder/tokenizer.h"
#include "../unet/unet.h"
#include "../vae/taesd.h"
#include "../vae/vae.h"
#include "model_files.h"

struct sd_ctx {
    model_files files;
    be *b;
    be *vb;                              /* the VAE's backend: b, or an f32 CUDA instance where f16 overflows (SDXL) */
    sd_model_info info;
    char name[256], hash[16];
    int hash_done;
    int verbose;
    model_prediction prediction;
    sched_model sched;                   /* the model's scheduler config (scheduler/sched_model.h) */

    /* text encoders: SD1/SD2 use te only; SDXL te (CLIP-L) + te2 (OpenCLIP bigG); the refiner te2 only */
    clip_tokenizer *tok, *tok2;          /* NULL: the embedded default tokenizer */
    clip_model te, te2;
    int has_te, has_te2;
    int te_layer_last;                   /* clip_forward layer index of "last_hidden_state" for te (-1, or -2 for 24-block OpenCLIP-H) */
    int pad_zero;                        /* SD2's tokenizer pads with id 0 */

    unet_model *unet;
    vae_model *vae;

    struct lora_state *lora;             /* adapters: the base weights' sources and what is merged now (lora.h) */
    struct emb_state *emb;               /* textual-inversion embeddings of the current call (embeddings.h) */
    struct control_model *controlnets[SD_MAX_CONTROLS]; /* ControlNets loaded for the calls (control_models.c) */
    taesd_model *taesd;                  /* optional tiny autoencoder (tiny.c), on b */
    int taesd_decodes;                   /* it decodes and encodes in place of the VAE (else: previews only) */
    char taesd_name[256];
};

/* The VAE decode options of a generation with an h x w latent: vae_tiling > 0 exact bands, < 0 untiled, 0
 * automatic within the pipeline's activation budget for the decode (on the CPU backend: the bytes of weights
 * the model holds). flops (may be
 * NULL) gets the nominal work of one image's decode: the untiled decoder's layer shapes (bands recompute a few
 * halo rows, which is not counted). */
void decode_opts(const sd_ctx *c, int vae_tiling, int h, int w, vae_decode_opts *o, double *flops);

/* The SHA-256 cache of big files ($XDG_CACHE_HOME/sd/hashes.tsv): 64 hex digits by key "path<TAB>size<TAB>mtime"
 * (load.c). get returns 1 when found. */
int hash_cache_get(const char *key, char hex[65]);
void hash_cache_put(const char *key, const char hex[65]);

/* tiny.c — the TAESD: loaded beside the model (sd_load_params.taesd_path), `sd info` of one, decoding and encoding. */
sd_status tiny_load(sd_ctx *c, const char *path, int preview_only);
int tiny_detect(const char *path);                       /* path is a TAESD (file, pair or folder) */
sd_status tiny_describe(const char *path, FILE *out);    /* `sd info` of a TAESD */
size_t tiny_mem_limit(const be *b);                      /* activation bytes before TAESD runs in bands */
/* n latents [n, h, w, lc] -> rgb [n, H, W, 3] in [-1, 1]; one picture [H, W, 3] in [-1, 1] -> latent [h, w, lc]. */
sd_status tiny_decode(sd_ctx *c, const float *x, int n, int h, int w, float *rgb);
sd_status tiny_encode(sd_ctx *c, const float *img, int H, int W, float *latent);
/* The TAESD encodes init images: it replaces the VAE and has an encoder (a decoder-only file leaves it to the VAE). */
int tiny_encodes(const sd_ctx *c);

/* Checks a parameter set against the resolved size (sampler names are checked by the scheduler). */
sd_status params_validate(const sd_gen_params *p, int width, int height);

/* The conditioning of one prompt: context [1, 1, tokens, ctx_dim] (host) and, for SDXL, the pooled vector. */
typedef struct text_cond {
    float *ctx;       /* [tokens * ctx_dim] */
    int tokens, ctx_dim;
    float *pooled;    /* [pooled_dim] or NULL */
    int pooled_dim;
} text_cond;

/* Encodes a prompt with the context's text encoder(s), A1111 weighting syntax and 75-token chunks
 * (chunks are padded to `min_chunks` with empty-prompt chunks so cond and uncond line up). */
sd_status text_cond_encode(sd_ctx *ctx, const char *prompt, int clip_skip, int min_chunks, text_cond *out);
int text_cond_windows(sd_ctx *ctx, const char *prompt);
void text_cond_free(text_cond *c);

#endif
