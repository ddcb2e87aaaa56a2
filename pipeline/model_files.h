/* model_files.h — opening what a user calls "a model": a single-file .safetensors checkpoint or a
 * diffusers folder, and telling which family it is (SD 1.x, 2.x, SDXL, inpainting) from names and shapes. */
#ifndef PIPELINE_MODEL_FILES_H
#define PIPELINE_MODEL_FILES_H

#include <cjson/cJSON.h>

#include "../core/safetensors.h"
#include "../sd.h"

typedef enum sd_family {
    SD_FAMILY_UNKNOWN = 0,
    SD_FAMILY_SD1,
    SD_FAMILY_SD2,
    SD_FAMILY_SDXL,
    SD_FAMILY_SDXL_REFINER,
} sd_family;

typedef enum sd_prediction { SD_PRED_AUTO = 0, SD_PRED_EPS, SD_PRED_V } sd_prediction;

/* A component's weights: a file (or the single checkpoint) plus the name prefix of that component in it. */
typedef struct sd_component {
    st_file *file;        /* not owned when it is the single checkpoint */
    const char *prefix;   /* "" for diffusers component files */
    int original_names;   /* 1: LDM / OpenCLIP names (single-file checkpoints) */
    cJSON *config;        /* diffusers config.json, or NULL */
    char dir[4096];       /* component folder (diffusers), "" otherwise */
} sd_component;

typedef struct sd_model_files {
    char path[4096];
    int is_folder;
    st_file *single;                 /* single-file checkpoint */
    sd_component unet, vae, te, te2; /* te2: SDXL's OpenCLIP-bigG */
    cJSON *scheduler_config;         /* diffusers scheduler/scheduler_config.json */
    char tokenizer_dir[4096], tokenizer2_dir[4096]; /* diffusers tokenizer folders ("" if absent) */
    sd_family family;
    int in_channels;                 /* UNet input channels: 4, 9 (inpainting), 8 (instruct-pix2pix) */
    sd_prediction prediction;        /* from a config or metadata; AUTO when unknown */
    char family_reason[256];         /* which tensor or file decided the family */
    /* Settings the model's makers chose (model_index.json "_sd_defaults": guidance_scale, num_inference_steps),
     * used where the caller gives none; 0 = none given (the family's defaults apply). */
    float default_cfg;
    int default_steps;
} sd_model_files;

/* Opens and validates the files; `vae_override` (may be NULL) replaces the VAE. Refuses .ckpt pickles,
 * unsupported families (SD3, Flux, ...) and missing components with a message naming the file. */
sd_status sd_model_files_open(const char *path, const char *vae_override, sd_model_files *m);
void sd_model_files_close(sd_model_files *m);

const char *sd_family_name(sd_family f);
/* The steps and guidance a caller who gives none gets: the folder's "_sd_defaults", else the family's. */
int sd_model_files_default_steps(const sd_model_files *m);
float sd_model_files_default_cfg(const sd_model_files *m);
/* Family of a single-file checkpoint from its tensor names (facts §5.3); sets a reason string. */
sd_family sd_detect_family(const st_file *f, int *in_channels, char *reason, size_t cap);

#endif
