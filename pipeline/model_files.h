/* model_files.h — opening what a user calls "a model": a single-file .safetensors checkpoint or a
 * diffusers folder, and telling which family it is (SD 1.x, 2.x, SDXL, inpainting) from names and shapes. */
#ifndef PIPELINE_MODEL_FILES_H
#define PIPELINE_MODEL_FILES_H

#include <cjson/cJSON.h>

#include "../core/safetensors.h"
#include "../sd.h"

typedef enum model_family {
    MODEL_FAMILY_UNKNOWN = 0,
    MODEL_FAMILY_SD1,
    MODEL_FAMILY_SD2,
    MODEL_FAMILY_SDXL,
    MODEL_FAMILY_SDXL_REFINER,
} model_family;

typedef enum model_prediction { MODEL_PRED_AUTO = 0, MODEL_PRED_EPS, MODEL_PRED_V } model_prediction;

/* A component's weights: a file (or the single checkpoint) plus the name prefix of that component in it. */
typedef struct model_component {
    st_file *file;        /* not owned when it is the single checkpoint */
    const char *prefix;   /* "" for diffusers component files */
    int original_names;   /* 1: LDM / OpenCLIP names (single-file checkpoints) */
    cJSON *config;        /* diffusers config.json, or NULL */
    char dir[4096];       /* component folder (diffusers), "" otherwise */
} model_component;

typedef struct model_files {
    char path[4096];
    int is_folder;
    st_file *single;                 /* single-file checkpoint */
    model_component unet, vae, te, te2; /* te2: SDXL's OpenCLIP-bigG */
    cJSON *scheduler_config;         /* diffusers scheduler/scheduler_config.json */
    char tokenizer_dir[4096], tokenizer2_dir[4096]; /* diffusers tokenizer folders ("" if absent) */
    model_family family;
    int in_channels;                 /* UNet input channels: 4, 9 (inpainting), 8 (instruct-pix2pix) */
    int sample_size;                 /* the UNet config.json's latent size (0: none given) */
    model_prediction prediction;        /* from a config or metadata; AUTO when unknown */
    char family_reason[256];         /* which tensor or file decided the family */
    /* Settings the model's makers chose (model_index.json "_sd_defaults": guidance_scale, num_inference_steps),
     * used where the caller gives none; 0 = none given (the family's defaults apply). */
    float default_cfg;
    int default_steps;
} model_files;

/* Opens and validates the files; `vae_override` (may be NULL) replaces the VAE. Refuses .ckpt pickles,
 * unsupported families (SD3, Flux, ...) and missing components with a message naming the file. */
sd_status model_files_open(const char *path, const char *vae_override, model_files *m);
void model_files_close(model_files *m);

/* model_index.json (`file`, json[0, len)) of the diffusers folder `folder`: refuses pipelines other than SD 1.x / 2.x /
 * SDXL by their class name and reads "_sd_defaults" into m. */
sd_status model_files_index_parse(const char *file, const char *json, size_t len, const char *folder, model_files *m);

const char *model_family_name(model_family f);
/* The steps and guidance a caller who gives none gets: the folder's "_sd_defaults", else the family's. */
int model_files_default_steps(const model_files *m);
float model_files_default_cfg(const model_files *m);
/* A PyTorch pickle (.ckpt/.pt/.pth/.bin, or a zip / pickle header) and the error that refuses one (it could run code
 * when loaded), for every file the engine is asked to read: checkpoints, VAEs, LoRAs, embeddings. */
int model_files_is_pickle(const char *path);
sd_status model_files_refuse_pickle(const char *path);
/* Family of a single-file checkpoint from its tensor names (facts §5.3); sets a reason string. */
model_family model_family_detect(const st_file *f, int *in_channels, char *reason, size_t cap);

#endif
