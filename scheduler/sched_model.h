/* sched_model.h — a model's diffusers scheduler config (scheduler/scheduler_config.json), read once at load, and
 * applied to one run the way that run's sampler reads it. In diffusers a user switches samplers with
 * SamplerClass.from_config(model config): each class reads the keys it knows, and a key the file does not state
 * takes that class's own default. sched_model_apply does the same for the class behind each sampler (README
 * "Scheduler configs"): every key is honoured, or refused by name when its value is one the engine does not
 * implement, and only when the chosen sampler's class reads it (a DPM-Solver option never stops a DDIM run).
 *
 *   sched_model m;
 *   sched_model_parse(json, "model/scheduler/scheduler_config.json", &m);    // or sched_model_default(&m, sdxl)
 *   sched_config cfg; sched_config_default(&cfg); cfg.sampler = SCHED_DDIM;
 *   sched_model_apply(&m, &cfg);      // betas, T, zero-SNR, spacing, offset, clip_sample, set_alpha_to_one ... */
#ifndef SCHEDULER_SCHED_MODEL_H
#define SCHEDULER_SCHED_MODEL_H

#include <cjson/cJSON.h>

#include "sampler.h"

#define SCHED_MODEL_MAX_REFUSED 24

typedef struct sched_model {
    int present;                  /* a config file was read; 0: SD's own schedule (single-file checkpoints) */
    char file[256];               /* its path, for messages */
    unsigned stated;              /* SM_* bits of the keys the file states (absent ones take the class default) */
    int train_steps;
    double beta_start, beta_end;
    sched_beta beta_schedule;
    sched_prediction prediction;
    sched_spacing spacing;        /* DEFAULT: the sampler's own */
    int steps_offset;
    int rescale_zero_snr;
    sched_schedule sigmas;        /* use_karras_sigmas / use_exponential_sigmas / use_beta_sigmas, else DISCRETE */
    int clip_sample, set_alpha_to_one, skip_prk_steps;
    float clip_sample_range;
    double sigma_min, sigma_max;  /* 0: not stated */
    int lcm_origin_steps;
    float lcm_timestep_scaling;
    /* stated values the engine does not implement: refused when a sampler whose class reads the key runs */
    struct { char key[40], value[48]; unsigned readers; } refused[SCHED_MODEL_MAX_REFUSED];
    int nrefused;
} sched_model;

/* SD's schedule without a config file: scaled_linear 0.00085..0.012 over 1000 steps, steps_offset 1, epsilon;
 * SDXL checkpoints get "leading" spacing (diffusers' single-file loader). */
void sched_model_default(sched_model *m, int sdxl);
/* Reads a scheduler config; a key whose value no supported sampler could run (num_train_timesteps above 1000,
 * an unknown beta_schedule, trained_betas, prediction_type "sample", two of use_*_sigmas ...) is an error that
 * names the file and the key. */
sd_status sched_model_parse(const cJSON *j, const char *file, sched_model *m);
/* Sets cfg's schedule fields for cfg->sampler and cfg->convention (chosen before), as that sampler's diffusers
 * class reads the config; refuses, naming the key, a stated value the class reads and the engine does not
 * implement. The kdiffusion convention (AUTOMATIC1111 reads no diffusers config) takes only the training
 * schedule: T, betas, zero-SNR, and use_*_sigmas as the default schedule. */
sd_status sched_model_apply(const sched_model *m, sched_config *cfg);
/* One line per setting for `sd info`: what a default run (and each sampler family) will use. */
void sched_model_describe(const sched_model *m, char *buf, size_t cap);

#endif
