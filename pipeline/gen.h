/* gen.h — one sd_generate call, resolved once, and the jobs it is made of. Each job has its own file:
 *   noise.c    the seeded starting noise of each image (variation seeds) and the samplers' fresh noise
 *   inpaint.c  img2img / inpainting in pixel space: init image and mask at generation size, the final overlay
 *   img2img.c  img2img / inpainting latents: the init latents, the start noise, a 9-channel UNet's extra input
 *   guided.c   the guided model call: conditioning tensors, UNet on [uncond; cond], CFG and rescale
 *   decode.c   the VAE decode policy and latents to 8-bit images
 *   preview.c  live previews: the clean-latent estimate after a step as a picture (latent2rgb, TAESD or the VAE)
 *   hires.c    the hires fix: upscale the first pass (latent or picture) and run the second pass at the large size
 *   upscale.c  the resamplers the hires fix uses (torch's latent interpolations, PIL's Lanczos)
 *   tiny.c     TAESD in the pipeline: loading, decoding and encoding with it
 *   generate.c the orchestration: resolve the parameters, run the images in groups, settings text
 * A feature that changes one job (a ControlNet in the model call, a preview after a step, a second pass)
 * extends that job's file or adds its own, and generate.c only calls it. */
#ifndef PIPELINE_GEN_H
#define PIPELINE_GEN_H

#include "../scheduler/rng.h"
#include "../scheduler/sampler.h"
#include "lora.h"
#include "pipeline.h"

#define GEN_MAX_GROUP 64 /* latents per UNet call (sd_gen_params.batch_size is capped to it) */

/* Masked content (AUTOMATIC1111's "inpainting fill"). */
typedef enum inpaint_fill { FILL_ORIGINAL, FILL_FILL, FILL_LATENT_NOISE, FILL_LATENT_NOTHING } inpaint_fill;

/* The pixel-space preparation of an img2img / inpainting call (inpaint.c), the same for every image. */
typedef struct inpaint_plan {
    int kdiff;             /* AUTOMATIC1111's rules (else diffusers') */
    inpaint_fill fill;
    float *image;          /* [H, W, 3] the init picture as the VAE encodes it, [-1, 1] */
    float *masked;         /* [H, W, 3] 9-channel UNets: the picture with the repainted area at 0 */
    float *lat_mask;       /* [h, w] 1 where the sampler repaints (NULL: plain img2img) */
    float *cond_mask;      /* [h, w] 9-channel UNets' mask input */
    uint8_t *orig, *over;  /* [oh, ow, 3], [oh, ow]: the picture laid over the generation, and its mask (255 =
                              generated); NULL: the generation is the picture */
    int ow, oh;
    int cropped, crop[4];  /* inpaint only masked: where the generation goes (x1, y1, x2, y2) */
} inpaint_plan;

/* Where a pass starts: noise (txt2img), an encoded picture (img2img), or given latents (the hires fix's latent
 * upscalers). */
enum { GEN_INIT_NONE = 0, GEN_INIT_IMAGE, GEN_INIT_LATENT };

typedef struct gen_preview gen_preview;
typedef struct gen_hires gen_hires;

typedef struct gen {
    /* the call */
    sd_ctx *c;
    const sd_gen_params *p;
    sd_progress_fn progress;
    void *user;
    double t0;                      /* start of the call (progress times are relative to it) */
    sd_status cb_err;               /* set when the progress callback asked to stop */

    /* resolved once (generate.c: resolve) */
    int W, H, h, w, lc;             /* image size, latent size and channels (4) */
    int steps;
    float cfg;
    int use_cfg;                    /* a second UNet batch for the negative prompt */
    const char *sampler, *scheduler;
    sched_config sc;
    rng_kind rng, srng;
    int separate_srng;              /* the sampler's noise has its own generator (--sampler-rng) */
    int start_step;                 /* img2img: the first sampler step run */
    lora_call loras;                /* the call's adapters; loras.prompt is the prompt the encoder sees (tags cut out) */
    int init_kind;                  /* GEN_INIT_*: how the pass starts */
    const float *init_latent;       /* GEN_INIT_LATENT: the group's starting latents [B, h, w, lc] (UNet space) */
    const float *init_latents;      /* gen_generate's: all the call's [total, h, w, lc] */
    text_cond cond, uncond;
    int uncond_zero;                /* SDXL with no negative prompt: zero conditioning */

    /* the current group of images [first, first + B) of total */
    int B, first, total;
    rng img[GEN_MAX_GROUP], smp[GEN_MAX_GROUP]; /* each image's generator, and its sampler-noise generator */

    /* guided.c: model-call state (device tensors at the bottom of the arena, host staging buffers) */
    be_tensor ctx_t, pooled_t, tcond_t;
    unsigned ctx_id;        /* the UNet's id of ctx_t's contents (unet_context_id): its cross-attention K/V are made once */
    float *time_ids;                /* SDXL micro-conditioning [N, 6] */
    float *x_in_host, *eps_host;    /* [N, h, w, in_channels], [N, h, w, lc] */

    float *nchw;                    /* [lc, h, w] scratch: torch draws noise in NCHW order */

    /* inpaint.c: the call's pixel-space preparation; img2img.c: the current group's latents */
    inpaint_plan ip;
    int from_noise;                 /* inpainting at strength 1 (diffusers): the start is pure noise */
    float *inpaint_extra;           /* 9-channel UNets: [B, h, w, 5] mask ‖ masked-image latent */
    float *known_x0, *known_noise, *known_mask; /* [B, h, w, lc] what the sampler keeps (sched_mask) */
    sched_mask known;
    int has_known;

    double t_sample;                /* seconds in the sampler, over the groups */

    struct gen_control *ctl;        /* control.c: the call's ControlNets (NULL: none) */
    double sample_flops;            /* the backend's FLOP count of the sampling, over the groups */

    int pass, passes;               /* this sampling pass (1, or 2: the hires fix's second) of how many */
    gen_preview *pv;                /* preview.c: NULL when the call makes no previews */
    gen_hires *hires;               /* hires.c: NULL without the hires fix */
} gen;

/* generate.c */
double gen_now(void); /* monotonic seconds */
/* sd_generate, or with init_latents [batch_count, h, w, lc] (UNet space, at the resolved size) an img2img from them:
 * the hires fix's second pass as a call of its own (the latent upscalers' "explicit" twin, for tests). */
sd_status gen_generate(sd_ctx *c, const sd_gen_params *p, const float *init_latents, sd_progress_fn progress, void *user, sd_result *r);
/* Resolves g->p against the model into g (size, steps, sampler, generators, img2img start ...). */
sd_status gen_resolve(gen *g);
/* Samples the current group [g->first, g->first + g->B) into x [B, h, w, lc]: starting noise, img2img or latent
 * start, the sampler loop around the guided model (with previews). */
sd_status gen_sample(gen *g, float *x);
/* The progress callback for a stage without a latent; non-zero: cancel. */
int gen_report(gen *g, const char *stage);

/* noise.c */
/* x [B, h, w, lc] <- each image's starting noise (seed + index, blended with its variation seed). */
sd_status gen_noise_init(gen *g, float *x);
/* The samplers' fresh noise (sched_noise_fn): n = B latents, from each image's sampler generator. */
sd_status gen_noise_draw(void *user, float *out);
/* n standard normals from r, drawn in torch's NCHW order and stored NHWC in out. */
void gen_randn_nhwc(gen *g, rng *r, float *out);

/* inpaint.c */
sd_status inpaint_fill_from_name(const char *name, inpaint_fill *out);
/* The init picture and mask at generation size and on the latent grid (once per call). */
sd_status inpaint_plan_make(gen *g, inpaint_plan *ip);
void inpaint_plan_free(inpaint_plan *ip);
/* The picture of one image: the generation laid back over the original where the plan says so (the picture
 * then takes the original's size). */
sd_status inpaint_compose(const inpaint_plan *ip, sd_image *img);

/* img2img.c */
/* img2img / inpainting: x holds each image's first draw on entry, the sampler's start on exit (g->from_noise:
 * unscaled noise); sets the group's inpainting state (freed by img2img_release). */
sd_status img2img_prepare(gen *g, float *x);
void img2img_release(gen *g);

/* guided.c */
/* Sizes the arena for the largest group (contexts + one UNet evaluation, + the VAE encoder for img2img) and
 * allocates the host staging buffers; reports the need in *peak (max with its value). */
sd_status guided_prepare(gen *g, int B, size_t *peak);
/* The group's conditioning tensors at the bottom of the arena: context, pooled, LCM guidance embedding. */
sd_status guided_upload(gen *g);
/* The guided model output for x_in [B, h, w, lc] at timestep t (sched_model_fn). */
sd_status guided_model(void *user, const float *x_in, float t, float *out);
void guided_release(gen *g);

/* decode.c */
/* Decodes the group's B final latents into r->images[first .. first + B). */
sd_status decode_group(gen *g, const float *x, sd_result *r);

/* preview.c */
/* Checks preview_method / preview_interval and sets up g->pv (NULL when off). */
sd_status preview_resolve(gen *g);
/* Reserves the activation memory a preview decode needs beside the sampler's (guided_need: guided_prepare's). */
sd_status preview_prepare(gen *g, size_t guided_need);
/* The guided model (sched_model_fn) that also keeps the clean-latent estimate of the group's first image. */
sd_status preview_model(void *user, const float *x_in, float t, float *out);
/* After sampler step `step`: the preview picture when one is due (valid until the next call), else NULL. A failed
 * decode sets g->cb_err. */
const sd_image *preview_after_step(gen *g, int step, int total);
void preview_free(gen *g);

/* hires.c */
/* Checks the hires parameters (off: g->hires stays NULL). */
sd_status hires_resolve(gen *g);
/* Sets up the second pass for groups of up to B images (its own resolved gen, buffers, arena). */
sd_status hires_prepare(gen *g, int B, size_t *peak);
/* The group's first-pass latents x -> upscaled -> second pass -> decoded into r->images. */
sd_status hires_group(gen *g, const float *x, sd_result *r);
/* UNet evaluations of the second passes run so far (for the per-step timing). */
int hires_model_evals(const gen *g);
void hires_free(gen *g);

/* upscale.c */
enum { UPSCALE_BILINEAR, UPSCALE_BICUBIC, UPSCALE_NEAREST_EXACT };
/* x [h, w, c] -> out [h2, w2, c] as torch.nn.functional.interpolate(size=(h2, w2), mode=bilinear | bicubic |
 * nearest-exact) on the CPU in float32 (align_corners False, no antialias). */
void upscale_latent(int mode, const float *x, int h, int w, int c, int h2, int w2, float *out);
/* An 8-bit picture resized to W x H as PIL's Image.resize((W, H), Image.LANCZOS); out->data is malloc'd. */
sd_status upscale_lanczos(const sd_image *in, int W, int H, sd_image *out);

/* tiny.c (the rest of it: pipeline.h) */
/* Reserves the arena a TAESD encode of the pass's init pictures needs beside the sampler's (when it encodes). */
sd_status tiny_prepare(gen *g, size_t guided_need);
/* Grows b's arena to `bytes` (only while nothing lives in it). */
sd_status gen_arena_ensure(be *b, size_t bytes);

#endif
