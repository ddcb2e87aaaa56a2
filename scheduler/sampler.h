/* sampler.h — the denoising loop: sampler/schedule configuration, name parsing, and sched_sample().
 *
 *   sched_config cfg;
 *   sched_config_default(&cfg);                          // diffusers' SD 1.5 behaviour, Euler a
 *   sched_sampler_from_name("dpm++2m", &cfg.sampler);    // or "DPM++ 2M", "dpmpp_2m" ...
 *   cfg.schedule = SCHED_SCHEDULE_KARRAS;
 *   rng_randn(&r, x, n);                                 // unscaled initial noise
 *   sched_sample(&cfg, 20, x, n, unet_cb, noise_cb, progress_cb, ctx);   // x: noise in, clean latent out
 *
 * The sampler owns the loop. For every model evaluation it calls model(user, x_in, t, out) with the already
 * scaled UNet input and the (possibly fractional) UNet timestep; the callback returns the raw guided output
 * (ε or v, after CFG). Stochastic samplers ask noise(user, out) for n fresh standard normals.
 *
 * Two conventions:
 *  - SCHED_CONV_DIFFUSERS: each sampler behaves like the diffusers scheduler built with from_config() from SD 1.5's
 *    scheduler config (DDIM/PNDM/DDPM/LCM "leading" + steps_offset 1, the others "linspace"), σ interpolated
 *    linearly, init noise scaled by init_noise_sigma, Euler a drawing noise at its last step too.
 *  - SCHED_CONV_KDIFFUSION: k-diffusion's samplers on the LDM float64 ᾱ table (what AUTOMATIC1111 and
 *    stable-diffusion.cpp run): log-σ interpolation, fractional t = sigma_to_t(σ), init noise × σ₀, no noise at the
 *    last step. Samplers k-diffusion has no version of (ddim, pndm, ddpm, unipc, lcm) keep their diffusers
 *    algorithm and only take the LDM table.
 *
 * Latent space: σ-space samplers (euler… lms, and dpm++ in the k-diffusion convention) carry x = x₀ + σ·ε; the
 * others carry the DDPM latent x_t = sqrt(ᾱ)x₀ + sqrt(1-ᾱ)ε. progress() sees the sampler's own x; after the last
 * step both are the clean latent. */
#ifndef SCHEDULER_SAMPLER_H
#define SCHEDULER_SAMPLER_H

#include <stddef.h>

#include "../core/status.h"
#include "schedule.h"

typedef enum sched_sampler {
    SCHED_EULER,        /* euler        Euler (Karras ODE), 1 eval/step                        A1111 "Euler"        */
    SCHED_EULER_A,      /* euler_a      Euler ancestral                                         A1111 "Euler a"      */
    SCHED_HEUN,         /* heun         Heun 2nd order, 2 evals/step                            A1111 "Heun"         */
    SCHED_DPM2,         /* dpm2         DPM-Solver-2 (KDPM2), 2 evals/step                      A1111 "DPM2"         */
    SCHED_DPM2_A,       /* dpm2_a       DPM2 ancestral                                          A1111 "DPM2 a"       */
    SCHED_DPMPP_2S_A,   /* dpm++2s_a    DPM-Solver++(2S) ancestral, 2 evals/step                A1111 "DPM++ 2S a"   */
    SCHED_DPMPP_2M,     /* dpm++2m      DPM-Solver++(2M) multistep                              A1111 "DPM++ 2M"     */
    SCHED_DPMPP_2M_SDE, /* dpm++2m_sde  DPM-Solver++(2M) SDE, fresh noise each step             A1111 "DPM++ 2M SDE" */
    SCHED_LMS,          /* lms          linear multistep, order 4                               A1111 "LMS"          */
    SCHED_DDIM,         /* ddim         DDIM (eta: stochasticity, default 0)                    A1111 "DDIM"         */
    SCHED_PNDM,         /* pndm / plms  pseudo linear multistep (PLMS), steps+1 evals           A1111 "PLMS"         */
    SCHED_DDPM,         /* ddpm         ancestral DDPM                                                               */
    SCHED_UNIPC,        /* unipc        UniPC bh2 predictor-corrector, order 2                  A1111 "UniPC"        */
    SCHED_LCM,          /* lcm          latent consistency (for LCM-distilled models)           A1111 "LCM"          */
    SCHED_SAMPLER_COUNT
} sched_sampler;

typedef enum sched_schedule {
    SCHED_SCHEDULE_DISCRETE,    /* the model's own timesteps ("discrete"/"automatic"/"uniform"/"default") */
    SCHED_SCHEDULE_KARRAS,      /* Karras et al. ρ = 7 between σ_min and σ_max */
    SCHED_SCHEDULE_EXPONENTIAL, /* log-σ uniform */
    SCHED_SCHEDULE_SGM_UNIFORM, /* uniform in t over n+1 points, last dropped (k-diffusion convention only) */
    SCHED_SCHEDULE_BETA,        /* Beta(0.6, 0.6) quantiles between σ_min and σ_max (diffusers use_beta_sigmas, A1111 "Beta") */
    SCHED_SCHEDULE_COUNT
} sched_schedule;

typedef enum sched_prediction { SCHED_PRED_EPS, SCHED_PRED_V, SCHED_PRED_COUNT } sched_prediction;
typedef enum sched_convention { SCHED_CONV_DIFFUSERS, SCHED_CONV_KDIFFUSION, SCHED_CONV_COUNT } sched_convention;

typedef struct sched_config {
    sched_sampler sampler;
    sched_schedule schedule;
    sched_spacing spacing;       /* diffusers timestep spacing; DEFAULT = the sampler's SD 1.5 from_config default */
    int steps_offset;            /* diffusers steps_offset (SD: 1); only "leading" uses it */
    sched_prediction prediction; /* ε (SD 1.x, 2.x-base, XL) or v (SD 2.x 768-v) */
    sched_convention convention;
    float eta;                   /* < 0: the sampler's default (ddim 0; ancestral and SDE samplers 1) */
    int discard_penultimate;     /* < 0: default (A1111 drops the next-to-last σ for dpm2 / dpm2_a in the
                                  * k-diffusion convention); 0/1 force it off/on (k-diffusion convention only) */
    int train_steps;             /* T = 1000 */
    double beta_start, beta_end; /* 0.00085, 0.012 */
    sched_beta beta_schedule;    /* scaled_linear */
    /* what a model's scheduler config can change (sched_model_apply sets those the sampler's diffusers class reads) */
    int rescale_zero_snr;        /* zero terminal SNR (README "Scheduler configs": which samplers, which arithmetic) */
    int clip_sample;             /* DDIM, DDPM, LCM, Heun (diffusers): x̂0 clamped to ±clip_sample_range */
    float clip_sample_range;     /* 1 */
    int set_alpha_to_one;        /* DDIM, PLMS: ᾱ past the last step is 1 (else ᾱ_0, SD's configs) */
    double sigma_min, sigma_max; /* Karras / exponential / beta range instead of the schedule's ends (> 0 when set) */
    int lcm_origin_steps;        /* LCM original_inference_steps (50) */
    float lcm_timestep_scaling;  /* LCM timestep_scaling (10) */
} sched_config;

/* UNet callback: x_in (n floats, already scaled for the model) at timestep t -> out (n floats, guided ε or v). */
typedef sd_status (*sched_model_fn)(void *user, const float *x_in, float t, float *out);
/* Fill out[0..n) with standard normals (only stochastic samplers call it). */
typedef sd_status (*sched_noise_fn)(void *user, float *out);
/* Called after each step with the sampler's current latent (may be NULL). step counts from 1 to total. */
typedef void (*sched_step_fn)(void *user, int step, int total, const float *x);

void sched_config_default(sched_config *cfg);
/* Reject impossible settings with a message naming the choices: 0 steps, steps > T, schedule not available for the
 * sampler/convention, lcm with more than 50 steps, negative eta where it is not a default request ... */
sd_status sched_config_check(const sched_config *cfg, int steps);

/* txt2img: x holds unscaled randn on entry (the sampler applies init_noise_sigma / σ₀), the final latent on exit. */
sd_status sched_sample(const sched_config *cfg, int steps, float *x, size_t n,
                       sched_model_fn model, sched_noise_fn noise, sched_step_fn progress, void *user);
/* img2img: run steps start_step..steps-1 on x prepared by sched_img2img_prepare(). */
sd_status sched_sample_from(const sched_config *cfg, int steps, int start_step, float *x, size_t n,
                            sched_model_fn model, sched_noise_fn noise, sched_step_fn progress, void *user);

/* Inpainting with an ordinary (4-channel) model, or any model in the k-diffusion convention: the known area, kept
 * while the sampler runs (n values each; mask 1 where the sampler repaints, 0 where x0 stays).
 *  - diffusers convention (StableDiffusionInpaintPipeline with a 4-channel UNet): after every scheduler call (the
 *    first-order halves of heun/dpm2/dpm2_a and PLMS's warm-up included) the known area is set to x0 noised, with
 *    `noise`, to the level the scheduler's add_noise gives for its next timestep; after the last call to x0.
 *  - kdiffusion convention (AUTOMATIC1111): every model call's denoised prediction keeps x0 in the known area
 *    (σ-space samplers); DDPM-space samplers instead get x0 blended into the model's input (A1111's timestep
 *    samplers); the final latent is blended once more. `noise` is unused. */
typedef struct sched_mask {
    const float *mask, *x0, *noise;
} sched_mask;

/* sched_sample (start_step 0, from noise) or sched_sample_from, keeping the known area of m (NULL: no mask). */
sd_status sched_sample_masked(const sched_config *cfg, int steps, int start_step, int from_noise, float *x, size_t n,
                              const sched_mask *m, sched_model_fn model, sched_noise_fn noise, sched_step_fn progress,
                              void *user);

/* First step for an img2img strength in [0, 1]: diffusers runs the last int(steps·strength) steps (fails when
 * that is 0); A1111/k-diffusion runs int(min(strength, 0.999)·steps) + 1. */
sd_status sched_img2img_start(const sched_config *cfg, int steps, double strength, int *start_step);
/* Noise a clean latent to the start step: x = x0 + σ·noise (σ-space) or sqrt(ᾱ)x0 + sqrt(1-ᾱ)noise (DDPM-space). */
sd_status sched_img2img_prepare(const sched_config *cfg, int steps, int start_step, const float *x0,
                                const float *noise, float *x, size_t n);

/* The run's schedule, for tables and debugging: sigmas[0..steps] (σ of each step, last 0; for DDPM-space
 * samplers σ = sqrt((1-ᾱ)/ᾱ) of the step's timestep) and the UNet timestep of each step, timesteps[0..steps).
 * Either pointer may be NULL. init_sigma (may be NULL) receives the factor applied to the initial noise. */
sd_status sched_get_schedule(const sched_config *cfg, int steps, float *sigmas, float *timesteps, float *init_sigma);
/* Number of UNet evaluations a run makes (heun/dpm2/dpm2_a/dpm++2s_a ~2 per step, pndm steps+1), or -1 + error. */
int sched_model_evals(const sched_config *cfg, int steps, int start_step);

/* ---- names ---- */
sd_status sched_sampler_from_name(const char *name, sched_sampler *out);
sd_status sched_schedule_from_name(const char *name, sched_schedule *out);
sd_status sched_spacing_from_name(const char *name, sched_spacing *out);
sd_status sched_prediction_from_name(const char *name, sched_prediction *out);
sd_status sched_convention_from_name(const char *name, sched_convention *out);
const char *sched_sampler_name(sched_sampler s);
const char *sched_schedule_name(sched_schedule s);
const char *sched_spacing_name(sched_spacing s);
const char *sched_convention_name(sched_convention c);
/* One line describing a sampler or a schedule, for --help. */
const char *sched_sampler_description(sched_sampler s);
const char *sched_schedule_description(sched_schedule s);

#endif
