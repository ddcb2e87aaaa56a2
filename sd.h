/* sd.h — the public C API of the engine: load a model once, generate any number of images, free.
 *
 *   sd_load_params lp;  sd_load_params_init(&lp);  lp.model_path = "model.safetensors";
 *   sd_ctx *ctx;
 *   if (sd_load(&lp, &ctx) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); return 1; }
 *   sd_gen_params gp;   sd_gen_params_init(&gp);   gp.prompt = "a red circle"; gp.seed = 42;
 *   sd_result r;
 *   if (sd_generate(ctx, &gp, NULL, NULL, &r) == SD_OK)
 *       sd_save_png("out.png", &r.images[0], r.infotext[0], r.json[0], 0);
 *   sd_result_free(&r);
 *   sd_free(ctx);
 *
 * A context holds the weights; generations share nothing else, so two calls with the same parameters
 * give the same images whatever ran in between. Errors: every function returns an sd_status (or NULL)
 * and leaves a one-line message for sd_last_error() that names the file or parameter at fault. */
#ifndef SD_H
#define SD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h" /* sd_status, sd_last_error, sd_image: shared with the engine's lower floors */

#ifdef __cplusplus
extern "C" {
#endif

#define SD_VERSION "0.1.0"

/* Reads a PNG, JPEG, WebP or BMP file into `channels` (3 RGB, 1 grey) 8-bit pixels; other formats (GIF, TIFF,
 * PNM ...), corrupt files, sides over 16384 or images over 64 megapixels, and non-regular files are refused. */
sd_status sd_image_load(const char *path, int channels, sd_image *out);
/* The same from bytes in memory (an upload): sides over max_side (0: the 16384 of files) are refused from the header,
 * before the pixels are allocated (a small PNG can stand for gigabytes); `what` names the bytes in error messages. */
sd_status sd_image_decode(const void *data, size_t len, int channels, int max_side, const char *what, sd_image *out);
void sd_image_free(sd_image *img);

/* ---- models ---- */

typedef enum sd_backend_kind { SD_BACKEND_AUTO = 0, SD_BACKEND_CPU, SD_BACKEND_CUDA } sd_backend_kind;

typedef struct sd_load_params {
    const char *model_path;   /* .safetensors checkpoint or diffusers folder; NULL: the bundled demo model */
    const char *vae_path;     /* optional VAE replacing the model's */
    sd_backend_kind backend;  /* AUTO: CUDA when a GPU is present, else CPU */
    int threads;              /* CPU threads, 0: all cores */
    const char *prediction;   /* NULL or "auto", "eps", "v" */
    int verbose;              /* print loading details to stderr */
    const char *taesd_path;   /* optional TAESD, the tiny autoencoder (a .safetensors file or a diffusers AutoencoderTiny
                                 folder, taesd for SD 1.x/2.x, taesdxl for SDXL): it decodes the images and encodes
                                 init images in place of the VAE, ~18x less work and a little less faithful */
    int taesd_preview_only;   /* with taesd_path: the VAE still makes the images; the TAESD only draws previews */
} sd_load_params;

typedef struct sd_ctx sd_ctx;

void sd_load_params_init(sd_load_params *p);
sd_status sd_load(const sd_load_params *p, sd_ctx **out);
void sd_free(sd_ctx *ctx);

/* What was loaded, and the defaults that fit it. Strings live as long as the context. */
typedef struct sd_model_info {
    const char *name;            /* file or folder name without extension ("shapes", "v1-5-pruned-emaonly") */
    const char *family;          /* "SD 1.x", "SD 2.x", "SDXL" */
    const char *prediction;      /* "epsilon" or "v" */
    const char *backend;         /* "cpu" or "cuda" */
    int inpainting;              /* 9-channel UNet */
    int default_width, default_height, default_steps;
    float default_cfg;
    const char *default_sampler, *default_scheduler;
    const char *taesd;           /* the loaded TAESD's name, or NULL */
    int taesd_decodes;           /* the TAESD (not the VAE) decodes the images and encodes init images */
} sd_model_info;

const sd_model_info *sd_model(const sd_ctx *ctx);
/* The name sd_model_info.name will have for the model at path (NULL: the bundled demo model), without loading
 * it: the file or folder name without a .safetensors / .sft extension ("sd-1.5" stays "sd-1.5"). */
void sd_model_name(const char *path, char *out, size_t cap);
/* First 10 hex digits of the SHA-256 of the model file (A1111's "Model hash"); computed once, on first use. */
const char *sd_model_hash(sd_ctx *ctx);

/* `sd info`: print what `path` is — a model (family, prediction type, component sizes, default
 * resolution), a safetensors file (tensor count, dtypes, parameters) or a PNG (its generation text). */
sd_status sd_describe(const char *path, FILE *out);

/* ---- adapters ----
 * LoRA / LyCORIS files (kohya-ss and AUTOMATIC1111 layouts, diffusers / PEFT, LoCon, LoHa, LoKr, DoRA) change a
 * model's weights for the images of one call: the call's --lora files first, then the prompt's <lora:NAME:...>
 * tags, each merged into the base weights in that order (a later call with other adapters starts again from the
 * untouched base weights). Textual-inversion embeddings are used where their file name appears in a prompt. */
typedef struct sd_lora {
    const char *path;           /* a .safetensors adapter file */
    float te_weight;            /* strength in the text encoder(s): 1 as trained, 0 off, negative allowed */
    float unet_weight;          /* strength in the UNet */
} sd_lora;

/* "PATH[:W[:UNET_W]]" (as --lora takes it) -> path and strengths: W applies to both, a second number to the UNet
 * alone (the order of AUTOMATIC1111's <lora:NAME:TE:UNET>). path points into spec (the numbers are cut off in
 * place). */
sd_status sd_lora_parse(char *spec, sd_lora *out);

/* ---- generation ---- */

/* ControlNet: a model that steers the layout from a control image (edges, silhouette, depth ...). */
#define SD_MAX_CONTROLS 8

typedef struct sd_control {
    const char *model;          /* ControlNet .safetensors (original control_model.* names or diffusers names) or diffusers
                                   folder; loaded on first use and kept by the context while calls name it */
    const sd_image *image;      /* the control image, any size (fitted to the picture by `resize`) */
    const char *image_name;     /* where the image came from, for the settings text (may be NULL) */
    float strength;             /* conditioning scale (1) */
    float start, end;           /* steered from the fraction `start` of the steps to `end` (0, 1) */
    const char *preprocess;     /* NULL / "none": the image is the control map; "canny": its Canny edges */
    float canny_low, canny_high;/* Canny hysteresis thresholds on the gradient (|dx| + |dy|, 8-bit scale): 100, 200 */
    const char *resize;         /* "crop" (default, AUTOMATIC1111's Crop and Resize), "just-resize" (stretch), "fill" (fit
                                   inside, the rest black) */
} sd_control;

void sd_control_init(sd_control *c);

/* Longest prompt (and negative prompt) accepted, in bytes: ~400 CLIP windows, far beyond what a model attends to. */
#define SD_PROMPT_MAX_BYTES 32768

typedef struct sd_gen_params {
    const char *prompt;             /* UTF-8, at most SD_PROMPT_MAX_BYTES */
    const char *negative_prompt;    /* NULL: "" */
    int width, height;              /* multiples of 8; 0: model default */
    int steps;                      /* 0: model default */
    float cfg_scale;                /* < 0: model default; <= 1 disables classifier-free guidance */
    float guidance_rescale;         /* 0..1 (diffusers' rescale_noise_cfg) */
    const char *sampler;            /* NULL: default; names as `sd --help` lists (euler_a, dpm++2m, ddim ...) */
    const char *scheduler;          /* NULL: default; discrete, karras, exponential, sgm_uniform ... */
    const char *convention;         /* NULL/"diffusers" or "kdiffusion" (AUTOMATIC1111 / stable-diffusion.cpp) */
    float eta;                      /* DDIM eta (0) */
    uint64_t seed;                  /* image i of the call uses seed + i */
    const char *rng;                /* "cuda" (Philox, default) or "cpu" (torch CPU generator) */
    const char *sampler_rng;        /* noise of ancestral/SDE samplers; NULL: same as rng */
    int batch_count;                /* images to make (>= 1) */
    int batch_size;                 /* latents per UNet call (>= 1); the same images up to float rounding */
    int clip_skip;                  /* 0 or 1: last layer; 2: penultimate (A1111 numbering) */
    const sd_image *init_image;     /* img2img when set (any size: resized to width x height) */
    float strength;                 /* img2img denoising strength 0..1 */
    const sd_image *mask;           /* inpainting: white = repaint (grey, same size as init_image) */
    int mask_blur;                  /* inpainting: Gaussian blur of the mask in pixels (0: none; README "Inpainting") */
    int inpaint_only_masked;        /* repaint a crop around the mask (+ inpaint_padding) at width x height and lay it
                                       back into the init image: the picture keeps the init image's size */
    int inpaint_padding;            /* pixels around the mask's bounding box (inpaint_only_masked) */
    const char *inpaint_fill;       /* masked content: NULL/"original", "fill", "latent noise", "latent nothing" */
    const char *timestep_spacing;   /* NULL: the model's scheduler config; "leading", "linspace", "trailing" */
    int clip_skip_negative;         /* clip skip of the negative prompt; 0: the convention's rule (README) */
    int vae_tiling;                 /* 0: automatic, 1: always, -1: never */
    uint64_t variation_seed;        /* A1111 "variation seed": slerp(variation_strength, noise(seed), noise(variation_seed)) */
    float variation_strength;       /* 0: off */
    const sd_lora *loras;           /* adapters of every image of the call (applied before the prompt's tags) */
    int lora_count;
    const char *lora_dir;           /* where a prompt's <lora:NAME:W> finds NAME.safetensors (NULL: tags are refused);
                                       <lora:NAME:TE:UNET> or te=/unet= give the two strengths apart, as in A1111 */
    const char *embedding_dir;      /* textual inversion: NAME.safetensors there is used where NAME appears in a prompt */
    const sd_control *controls;     /* ControlNets steering the call (their residuals add up); NULL: none */
    int control_count;              /* 0..SD_MAX_CONTROLS */
    int control_guess_mode;         /* diffusers' guess mode: ControlNets see the prompt's half only, scaled 0.1 -> 1 */
    /* Live previews: every preview_interval sampler steps the progress callback gets the picture as it stands
     * (sd_progress.preview): the model's current estimate of the clean image of the group's first image. */
    const char *preview_method;     /* NULL or "none": off; "latent2rgb" (a linear map of the latent: no model, 1/8 the
                                       sides), "taesd" (needs sd_load_params.taesd_path), "full" (the VAE: slow) */
    int preview_interval;           /* sampler steps between previews, >= 1 (0: every step) */
    /* Hires fix as AUTOMATIC1111's: txt2img at width x height, upscale to the hires size, then img2img there with
     * the same prompt, seeds and sampler (hires_steps steps of a schedule of hires_steps / hires_denoise). On when
     * hires_scale > 1 or a hires size is given; txt2img only, without ControlNets (refused). Images come out at the
     * hires size. */
    float hires_scale;              /* A1111 "Hires upscale": width and height times this, rounded down to multiples of 8 */
    int hires_width, hires_height;  /* A1111 "Hires resize" (instead of the scale); one of them 0: kept in proportion */
    int hires_steps;                /* steps of the second pass; 0: steps */
    float hires_denoise;            /* its denoising strength, 0..1 (0.7, A1111's default) */
    const char *hires_upscaler;     /* NULL or "latent" (bilinear), "latent-bicubic", "latent-nearest-exact" (the latent
                                       is resized), "lanczos" (the picture: decoded, resized, encoded), "none" (as
                                       lanczos: A1111 resizes with Lanczos when the upscaler does nothing) */
} sd_gen_params;

void sd_gen_params_init(sd_gen_params *p);

/* Progress, reported after each sampler step and at stage changes. Return non-zero to cancel. */
typedef struct sd_progress {
    const char *stage;              /* "encode", "sample", "decode" */
    int image, images;              /* current image index in the call, and the total */
    int step, steps;                /* sampler step (1-based) and total of this image */
    double elapsed;                 /* seconds since sd_generate started */
    const float *latent;            /* current latent [lh, lw, 4] channels-last (sample stage), for previews */
    int lw, lh;
    const sd_image *preview;        /* on the steps a preview was made (sd_gen_params.preview_method), the RGB picture;
                                       else NULL. Valid during the callback only: copy it to keep it */
    int pass, passes;               /* the sampling pass (1; the hires fix's second pass: 2) of how many (1 or 2) */
} sd_progress;

typedef int (*sd_progress_fn)(void *user, const sd_progress *p);

typedef struct sd_timings {
    double text_encode, sample, decode, total; /* seconds, summed over the images of the call */
    double per_step;                           /* mean seconds per sampler step (one model evaluation batch) */
    size_t peak_activation_bytes;              /* largest arena reservation of the call */
    double sample_flops, decode_flops;         /* work of the sampling and decode stages (multiply-adds x 2 of the
                                                  GEMM-shaped layers, from their shapes): flops / seconds = speed */
} sd_timings;

typedef struct sd_result {
    int count;
    sd_image *images;       /* count images, RGB */
    uint64_t *seeds;        /* the seed of each image */
    char **infotext;        /* A1111-style "parameters" text of each image */
    char **json;            /* our full settings of each image, as one JSON object */
    sd_timings timings;
} sd_result;

/* Images of a call depend only on the parameters and each image's seed; batch_size changes how many latents
 * share a UNet call, which can move a pixel by one 8-bit level through float rounding (GEMM blocking). */
sd_status sd_generate(sd_ctx *ctx, const sd_gen_params *p, sd_progress_fn progress, void *user, sd_result *out);
void sd_result_free(sd_result *r);

/* Checks parameters without generating (the same messages sd_generate would give). */
sd_status sd_check_params(const sd_ctx *ctx, const sd_gen_params *p);

/* Writes an RGB PNG with the "parameters" (A1111) and "sd" (JSON) text chunks (either may be NULL).
 * The file appears atomically; unless overwrite is set an existing file is an error and is kept. */
sd_status sd_save_png(const char *path, const sd_image *img, const char *infotext, const char *json, int overwrite);

/* The PNG sd_save_png would write, in memory: *png is malloc'd (free it), *len bytes. */
sd_status sd_png_encode(const sd_image *img, const char *infotext, const char *json, uint8_t **png, size_t *len);

/* Reads the settings stored by sd_save_png back into p (strings point into *storage: free it after use). ControlNets
 * come back with image NULL and image_name set: the caller loads the control images (from an AUTOMATIC1111 text
 * alone, model is the name the extension wrote, not a path). */
sd_status sd_params_from_png(const char *path, sd_gen_params *p, void **storage);

/* What the settings sd_params_from_png read (`storage` its block) say about the inputs a PNG does not hold: 1 when
 * the image was made from an init image (img2img or inpainting: a denoising strength stored without the hires fix),
 * with that strength in *strength and *masked 1 when a mask was used too; 0 when it was made from noise. Either
 * pointer may be NULL. */
int sd_params_png_init(const void *storage, float *strength, int *masked);

/* `sd tokenize`: the token ids of each 77-token window of a prompt (weights and token strings when verbose),
 * with the model's tokenizer (model_path NULL: CLIP's own vocabulary, which every SD model uses). */
sd_status sd_tokenize(const char *model_path, const char *prompt, int verbose, FILE *out);

/* SHA-256 as 64 lowercase hex digits + NUL: of a whole file (manifests, model hashes), or of n bytes. */
sd_status sd_sha256_file(const char *path, char hex[65]);
void sd_sha256_string(const void *data, size_t n, char hex[65]);

/* Sampler and scheduler names with one-line descriptions, for --help and validation. */
int sd_sampler_count(void);
const char *sd_sampler_name(int i, const char **description);
int sd_scheduler_count(void);
const char *sd_scheduler_name(int i, const char **description);
/* AUTOMATIC1111's name of one of ours, as its infotext writes it ("euler_a" -> "Euler a", "karras" -> "Karras",
 * "discrete" -> "Automatic"); NULL when it has none. */
const char *sd_sampler_a1111(const char *name);
const char *sd_scheduler_a1111(const char *name);
/* Our sampler for an A1111 sampler name, NULL if unknown; an old name with the schedule's label appended ("DPM++ 2M
 * Karras", "DPM++ 2M SDE Exponential") also sets *scheduler to ours ("karras"), which is otherwise left alone. */
const char *sd_sampler_from_a1111(const char *name, const char **scheduler);

#ifdef __cplusplus
}
#endif

#endif
