/* sampler_internal.h — what the sampler files share: the resolved plan of a run and the model/noise plumbing. */
#ifndef SCHEDULER_SAMPLER_INTERNAL_H
#define SCHEDULER_SAMPLER_INTERNAL_H

#include "sampler.h"
#include "schedule.h"

/* Everything a run needs, resolved from the config and the step count (sampler.c: plan_make). */
typedef struct sched_plan {
    sched_config cfg;   /* with defaults resolved (spacing, eta, discard_penultimate) */
    int steps;          /* N */
    int sigma_space;    /* 1: x = x0 + σ·ε samplers; 0: DDPM-space x_t */
    int kdiff;          /* cfg.convention == SCHED_CONV_KDIFFUSION */
    sched_table table;
    float *sigmas;      /* [N+1] σ of each step, last 0 (σ-space: the solver's σ; DPM/UniPC: their σ list) */
    float *t;           /* [n_t] UNet timestep per model evaluation slot (per step; PLMS: its N+1 list) */
    int *ti;            /* [n_t] integer timesteps of the DDPM-space samplers */
    int n_t;
    float init_sigma;   /* factor on the initial noise */
    double *work;       /* [2 (N + 2)] scratch of the plan builders (doubles, or floats / ints in its space) */
} sched_plan;

typedef struct sched_run {
    const sched_plan *p;
    size_t n;
    const sched_mask *mask; /* inpainting: the known area (NULL: none) */
    float *known;           /* [n] scratch of the diffusers blend */
    sched_model_fn model;
    sched_noise_fn noise;
    sched_step_fn progress;
    void *user;
    float *xin, *out; /* [n] scratch: scaled model input, raw model output */
    int done, total;  /* progress counters */
} sched_run;

/* Call the model on x (already in model-input scale) at timestep t; result in r->out. */
sd_status sched_run_model(sched_run *r, const float *x_in, float t);
/* Fill buf with n fresh normals from the caller. */
sd_status sched_run_noise(sched_run *r, float *buf);
void sched_run_progress(sched_run *r, float *x);

/* Inpainting, diffusers convention: after a scheduler call that leaves x heading for step `next` (an index into
 * the plan's timesteps; PLMS: its evaluation list), the known area becomes x0 noised to that level, or x0 itself
 * past the last one. No-op without a mask or in the k-diffusion convention. */
void sched_run_after_call(sched_run *r, float *x, int next);
/* Inpainting, k-diffusion convention (AUTOMATIC1111's CFGDenoiser): the denoised prediction keeps x0 in the known
 * area. No-op otherwise. */
void sched_run_denoised(sched_run *r, float *D);
/* x noised to the level of step idx: x0 + σ·noise (σ-space), α·x0 + σα·noise (DPM-Solver/UniPC), or
 * sqrt(ᾱ)·x0 + sqrt(1-ᾱ)·noise (DDIM/PLMS/DDPM/LCM), as each diffusers scheduler's add_noise. */
void sched_noise_to(const sched_plan *p, int idx, const float *x0, const float *noise, float *out, size_t n);

/* σ-space samplers (sampler_k.c), DDPM-space ones (sampler_ddpm.c: ddim, pndm, ddpm, lcm; sampler_dpm.c:
 * diffusers DPM-Solver++ and UniPC). x is in the sampler's space; steps start..N-1 are run. */
sd_status sched_run_sigma_space(sched_run *r, float *x, int start);
sd_status sched_run_ddpm_family(sched_run *r, float *x, int start);
sd_status sched_run_dpm_family(sched_run *r, float *x, int start);

/* Number of model evaluations of σ-space samplers from `start` (they skip the second call on the last interval). */
int sched_sigma_space_evals(const sched_plan *p, int start);

/* k-diffusion get_ancestral_step (diffusers' ancestral schedulers: same without the min clamp, eta = 1). */
void sched_ancestral_step(const sched_plan *p, float sigma, float sigma_next, float *down, float *up);

#endif
