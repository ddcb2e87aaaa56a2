/* schedule.h — the training noise schedule (betas, ᾱ, σ tables), timestep grids and σ schedules, in the exact
 * float32/float64 arithmetic of the implementation each one reproduces (diffusers, k-diffusion/LDM).
 *
 *   sched_table tb;
 *   sched_table_init(&tb, 1000, 0.00085, 0.012, SCHED_BETA_SCALED_LINEAR, 0);   // diffusers' float32 path
 *   tb.sigmas[999] == 14.6146450f; sched_sigma_to_t(&tb, 1.0) == 0.5-ish fractional t
 *
 * Everything here is a plain function of its arguments; which sampler uses which grid lives in sampler.c. */
#ifndef SCHEDULER_SCHEDULE_H
#define SCHEDULER_SCHEDULE_H

#include "../core/status.h"

#define SCHED_MAX_TRAIN 1000 /* num_train_timesteps of every SD checkpoint; also the most inference steps allowed */

typedef enum sched_beta {
    SCHED_BETA_SCALED_LINEAR, /* betas = linspace(sqrt(b0), sqrt(b1), T)^2 — every SD 1.x/2.x/XL model */
    SCHED_BETA_LINEAR,        /* betas = linspace(b0, b1, T) */
    SCHED_BETA_SQUAREDCOS,    /* "squaredcos_cap_v2": ᾱ(t) = cos²((t + 0.008)/1.008 · π/2), β capped at 0.999 */
    SCHED_BETA_COUNT
} sched_beta;

/* Zero terminal SNR (Lin et al. 2023): sqrt(ᾱ) shifted so its last value is 0 and scaled back to its first. */
typedef enum sched_snr {
    SCHED_SNR_NONE,
    SCHED_SNR_DIFFUSERS,       /* rescale_betas_zero_snr: betas rebuilt, ᾱ recomputed (DDIM, DDPM, LCM: last ᾱ 0) */
    SCHED_SNR_DIFFUSERS_CLAMP, /* ... then the last ᾱ set to 2⁻²⁴ (Euler, Euler a, DPM-Solver, UniPC: σ finite) */
    SCHED_SNR_A1111,           /* AUTOMATIC1111's "Zero Terminal SNR": ᾱ rescaled directly, the last set to 4.897e-8 */
} sched_snr;

typedef struct sched_table {
    int T;                                 /* number of training timesteps */
    float alphas_cumprod[SCHED_MAX_TRAIN]; /* ᾱ_t, t = 0..T-1 */
    float sigmas[SCHED_MAX_TRAIN];         /* σ_t = sqrt((1-ᾱ_t)/ᾱ_t), ascending in t (float32 arithmetic) */
    float log_sigmas[SCHED_MAX_TRAIN];     /* log σ_t rounded to float (k-diffusion's float32 log table) */
    double log_sigmas64[SCHED_MAX_TRAIN];  /* log σ_t in double: diffusers' _sigma_to_t, so that σ = σ_t maps to t
                                            * exactly (np.log's float32 table does, at the ends that matter) */
} sched_table;

/* ldm_float64 = 0: diffusers (torch float32 linspace, cumprod with a double accumulator, float32 ᾱ);
 * ldm_float64 = 1: the original LDM code that k-diffusion/A1111 wrap (float64 betas and cumprod, then float32).
 * The two ᾱ tables differ in the last bit for most t (facts §1.1). */
sd_status sched_table_init(sched_table *tb, int T, double beta_start, double beta_end, sched_beta beta, int ldm_float64);
/* Rescales a table to zero terminal SNR in the float32 arithmetic of the implementation `mode` names. */
void sched_table_zero_snr(sched_table *tb, sched_snr mode);

/* σ -> fractional timestep: diffusers' _sigma_to_t (float64 math on the float32 log table) ... */
double sched_sigma_to_t(const sched_table *tb, double sigma);
/* ... and k-diffusion's DiscreteSchedule.sigma_to_t / t_to_sigma (float32 math, log-σ interpolation). */
float sched_sigma_to_t_f32(const sched_table *tb, float sigma);
float sched_t_to_sigma_f32(const sched_table *tb, float t);
/* np.interp(t, arange(T), sigmas): diffusers' timestep -> σ (linear in σ, float64). */
double sched_sigma_interp(const sched_table *tb, double t);

/* ---- timestep grids (diffusers set_timesteps), descending, n entries ---- */
typedef enum sched_spacing {
    SCHED_SPACING_DEFAULT,  /* the sampler's own diffusers default (from SD 1.5's config) */
    SCHED_SPACING_LEADING,  /* (T//n)·i + steps_offset */
    SCHED_SPACING_TRAILING, /* round(T - i·T/n) - 1 */
    SCHED_SPACING_LINSPACE, /* linspace(0, T-1, n) */
    SCHED_SPACING_COUNT
} sched_spacing;

/* Float timesteps of the σ-space schedulers (Euler, Heun, LMS, KDPM2): linspace keeps non-integers. */
void sched_grid_float(int T, int n, sched_spacing sp, int steps_offset, float *out);
/* Integer timesteps (DDIM, DDPM): linspace rounded half-to-even. */
void sched_grid_int(int T, int n, sched_spacing sp, int steps_offset, int *out);
/* DPM-Solver / UniPC: an (n+1)-point grid with its last point dropped (trailing is the plain n-point grid). */
void sched_grid_int_plus1(int T, int n, sched_spacing sp, int steps_offset, int *out);

/* numpy.linspace(a, b, n) in float64 (last point exactly b) and torch.linspace(a, b, n) in float32
 * (two-sided: the second half counts back from b). */
void sched_np_linspace(double a, double b, int n, double *out);
void sched_torch_linspace_f32(float a, float b, int n, float *out);

/* ---- σ schedules (n values, descending, without the final 0) ---- */
void sched_karras_f64(int n, double sigma_min, double sigma_max, double *out);       /* diffusers, numpy float64 */
void sched_exponential_f64(int n, double sigma_min, double sigma_max, double *out);  /* diffusers */
void sched_karras_f32(int n, double sigma_min, double sigma_max, float *out);        /* k-diffusion, torch float32 */
void sched_exponential_f32(int n, double sigma_min, double sigma_max, float *out);   /* k-diffusion */
/* The "beta" schedule (Lee et al. 2024; diffusers use_beta_sigmas, A1111 "Beta"): σ_min + ppf(1 - i/(n-1))·(σ_max -
 * σ_min) with ppf the inverse CDF of the Beta(0.6, 0.6) distribution, in double precision. */
void sched_beta_sigmas_f64(int n, double sigma_min, double sigma_max, double *out);
/* The inverse CDF of Beta(a, b) at p (scipy.stats.beta.ppf). */
double sched_beta_ppf(double p, double a, double b);
void sched_kdiff_discrete(const sched_table *tb, int n, float *out); /* k-diffusion get_sigmas(n): t = linspace(T-1, 0, n) */
void sched_kdiff_sgm_uniform(const sched_table *tb, int n, float *out); /* A1111 sgm_uniform: linspace(T-1, 0, n+1)[:-1] */

#endif
