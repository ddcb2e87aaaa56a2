/* sampler.c — sampler configuration, the per-run plan (which timesteps and σ each sampler uses in each
 * convention), the sched_sample loop entry points that hand a run to its sampler family, img2img start and
 * noising. Names are in sampler_names.c, what the families share in sampler_run.c. */
#include "sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "sampler_internal.h"

/* ---------------------------------------------------------------------------------------------------------------
 * Configuration */

void sched_config_default(sched_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->sampler = SCHED_EULER_A;
    cfg->schedule = SCHED_SCHEDULE_DISCRETE;
    cfg->spacing = SCHED_SPACING_DEFAULT;
    cfg->steps_offset = 1;
    cfg->prediction = SCHED_PRED_EPS;
    cfg->convention = SCHED_CONV_DIFFUSERS;
    cfg->eta = -1.0f;
    cfg->discard_penultimate = -1;
    cfg->train_steps = 1000;
    cfg->beta_start = 0.00085;
    cfg->beta_end = 0.012;
    cfg->beta_schedule = SCHED_BETA_SCALED_LINEAR;
    cfg->clip_sample_range = 1.0f;
    cfg->lcm_origin_steps = 50;
    cfg->lcm_timestep_scaling = 10.0f;
}

/* Zero-SNR rescaling as each implementation does it: diffusers' Euler, Euler a, DPM-Solver and UniPC rescale and
 * clamp the last ᾱ to 2⁻²⁴, DDIM/DDPM/LCM rescale only; Heun, KDPM2, LMS and PNDM do not read the key; A1111 rescales
 * its own table for every sampler. */
static sched_snr snr_mode(const sched_config *c) {
    if (!c->rescale_zero_snr) return SCHED_SNR_NONE;
    if (c->convention == SCHED_CONV_KDIFFUSION) return SCHED_SNR_A1111;
    switch (c->sampler) {
    case SCHED_EULER: case SCHED_EULER_A: case SCHED_DPMPP_2S_A: case SCHED_DPMPP_2M: case SCHED_DPMPP_2M_SDE: case SCHED_UNIPC:
        return SCHED_SNR_DIFFUSERS_CLAMP;
    case SCHED_DDIM: case SCHED_DDPM: case SCHED_LCM: return SCHED_SNR_DIFFUSERS;
    default: return SCHED_SNR_NONE;
    }
}

static int is_ddpm_space(const sched_config *c) {
    switch (c->sampler) {
    case SCHED_DDIM: case SCHED_PNDM: case SCHED_DDPM: case SCHED_LCM: case SCHED_UNIPC: return 1;
    case SCHED_DPMPP_2M: case SCHED_DPMPP_2M_SDE: return c->convention == SCHED_CONV_DIFFUSERS;
    default: return 0;
    }
}

static int integer_timesteps(sched_sampler s) {
    return s == SCHED_DDIM || s == SCHED_PNDM || s == SCHED_DDPM || s == SCHED_LCM;
}

static sd_status config_check_basic(const sched_config *cfg, int steps) {
    if ((unsigned)cfg->sampler >= SCHED_SAMPLER_COUNT || (unsigned)cfg->schedule >= SCHED_SCHEDULE_COUNT ||
        (unsigned)cfg->spacing >= SCHED_SPACING_COUNT || (unsigned)cfg->prediction >= SCHED_PRED_COUNT ||
        (unsigned)cfg->convention >= SCHED_CONV_COUNT)
        return err_fail(SD_ERR_ARG, "sampler configuration holds an out-of-range enum value");
    int T = cfg->train_steps;
    if (T < 2 || T > SCHED_MAX_TRAIN) return err_fail(SD_ERR_ARG, "train steps %d out of range (2..%d)", T, SCHED_MAX_TRAIN);
    if (steps < 1) return err_fail(SD_ERR_ARG, "steps must be at least 1 (got %d)", steps);
    if (steps > T) return err_fail(SD_ERR_ARG, "steps %d exceeds the %d training timesteps (valid: 1..%d)", steps, T, T);
    if (cfg->steps_offset < 0 || cfg->steps_offset >= T) return err_fail(SD_ERR_ARG, "steps_offset %d out of range (0..%d)", cfg->steps_offset, T - 1);
    int origin = cfg->lcm_origin_steps;
    if (cfg->sampler == SCHED_LCM && (origin < 1 || origin > T))
        return err_fail(SD_ERR_ARG, "lcm original_inference_steps %d out of range (1..%d)", origin, T);
    if (cfg->sampler == SCHED_LCM && steps > origin)
        return err_fail(SD_ERR_ARG, "lcm supports at most %d steps (its original_inference_steps), got %d", origin, steps);
    if (!(cfg->clip_sample_range > 0)) return err_fail(SD_ERR_ARG, "clip_sample_range %g must be positive", cfg->clip_sample_range);
    if (!(cfg->lcm_timestep_scaling > 0)) return err_fail(SD_ERR_ARG, "lcm timestep_scaling %g must be positive", cfg->lcm_timestep_scaling);
    if (cfg->sigma_min < 0 || cfg->sigma_max < 0 || (cfg->sigma_min > 0 && cfg->sigma_max > 0 && cfg->sigma_min >= cfg->sigma_max))
        return err_fail(SD_ERR_ARG, "sigma range %g..%g is invalid", cfg->sigma_min, cfg->sigma_max);
    if (cfg->rescale_zero_snr && cfg->prediction == SCHED_PRED_EPS && (cfg->sampler == SCHED_DDIM || cfg->sampler == SCHED_DDPM || cfg->sampler == SCHED_LCM) &&
        cfg->convention == SCHED_CONV_DIFFUSERS)
        return err_fail(SD_ERR_ARG, "%s with zero terminal SNR needs a v-prediction model (an epsilon model's first step divides by 0)",
                       sched_sampler_name(cfg->sampler));
    if (!(cfg->eta < 0) && !(cfg->eta <= 100.0f)) return err_fail(SD_ERR_ARG, "eta %g is invalid (valid: 0..100, or negative for the default)", cfg->eta);
    if (cfg->schedule != SCHED_SCHEDULE_DISCRETE && integer_timesteps(cfg->sampler))
        return err_fail(SD_ERR_ARG, "scheduler %s does not apply to %s, which walks integer timesteps (valid: discrete)",
                       sched_schedule_name(cfg->schedule), sched_sampler_name(cfg->sampler));
    if (cfg->schedule == SCHED_SCHEDULE_SGM_UNIFORM && (cfg->convention != SCHED_CONV_KDIFFUSION || is_ddpm_space(cfg)))
        return err_fail(SD_ERR_ARG, "scheduler sgm_uniform exists only for the k-diffusion samplers in the kdiffusion "
                                   "convention (valid here: discrete, karras, exponential, beta; or --timestep-spacing trailing)");
    return SD_OK;
}

static float default_eta(sched_sampler s) {
    switch (s) {
    case SCHED_EULER_A: case SCHED_DPM2_A: case SCHED_DPMPP_2S_A: case SCHED_DPMPP_2M_SDE: return 1.0f;
    default: return 0.0f;
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * The plan of a run */

static void plan_free(sched_plan *p) {
    if (!p) return;
    free(p->sigmas);
    free(p->t);
    free(p->ti);
    free(p->work);
    free(p);
}

/* diffusers σ-space schedulers (Euler, EulerA, Heun, KDPM2, KDPM2A, LMS): float timesteps by spacing, σ by
 * linear interpolation, Karras/exponential between the ends of that interpolated schedule. */
static void plan_sigma_diffusers(sched_plan *p) {
    int N = p->steps;
    double *sd = p->work, *td = p->work + N;
    sched_grid_float(p->table.T, N, p->cfg.spacing, p->cfg.steps_offset, p->t);
    for (int i = 0; i < N; i++) sd[i] = sched_sigma_interp(&p->table, p->t[i]);
    if (p->cfg.schedule != SCHED_SCHEDULE_DISCRETE) {
        /* a config's sigma range, except in LMS's Karras conversion, the one diffusers did not give the lookup */
        int range = !(p->cfg.sampler == SCHED_LMS && p->cfg.schedule == SCHED_SCHEDULE_KARRAS);
        double smin = range && p->cfg.sigma_min > 0 ? p->cfg.sigma_min : sd[N - 1];
        double smax = range && p->cfg.sigma_max > 0 ? p->cfg.sigma_max : sd[0];
        if (p->cfg.schedule == SCHED_SCHEDULE_KARRAS) sched_karras_f64(N, smin, smax, sd);
        else if (p->cfg.schedule == SCHED_SCHEDULE_BETA) sched_beta_sigmas_f64(N, smin, smax, sd);
        else sched_exponential_f64(N, smin, smax, sd);
        for (int i = 0; i < N; i++) {
            td[i] = sched_sigma_to_t(&p->table, sd[i]);
            /* KDPM2 rounds the Karras timesteps it feeds the UNet */
            if (p->cfg.schedule == SCHED_SCHEDULE_KARRAS && (p->cfg.sampler == SCHED_DPM2 || p->cfg.sampler == SCHED_DPM2_A))
                td[i] = nearbyint(td[i]);
            p->t[i] = (float)td[i];
        }
    }
    float smax = 0;
    for (int i = 0; i < N; i++) {
        p->sigmas[i] = (float)sd[i];
        if (p->sigmas[i] > smax) smax = p->sigmas[i];
    }
    p->sigmas[N] = 0.0f;
    /* init_noise_sigma: max σ for linspace/trailing, sqrt(max σ² + 1) for leading */
    p->init_sigma = p->cfg.spacing == SCHED_SPACING_LEADING ? sqrtf(smax * smax + 1.0f) : smax;
}

/* k-diffusion / A1111: σ from the LDM table by log-σ interpolation (or Karras/exponential between the table
 * ends), t = sigma_to_t(σ), x_T = noise·σ₀; optionally A1111's "discard next-to-last sigma". */
static void plan_sigma_kdiff(sched_plan *p) {
    int N = p->steps, nn = N + (p->cfg.discard_penultimate > 0);
    float *s = (float *)p->work; /* nn + 1 <= steps + 2 */
    double smin = p->table.sigmas[0], smax = p->table.sigmas[p->table.T - 1];
    switch (p->cfg.schedule) {
    case SCHED_SCHEDULE_KARRAS: sched_karras_f32(nn, smin, smax, s); break;
    case SCHED_SCHEDULE_EXPONENTIAL: sched_exponential_f32(nn, smin, smax, s); break;
    case SCHED_SCHEDULE_BETA: { /* A1111's beta_scheduler: Python floats, then a float32 tensor */
        double *b = p->work + (nn + 1) / 2 + 1;
        sched_beta_sigmas_f64(nn, smin, smax, b);
        for (int i = 0; i < nn; i++) s[i] = (float)b[i];
        break;
    }
    case SCHED_SCHEDULE_SGM_UNIFORM: sched_kdiff_sgm_uniform(&p->table, nn, s); break;
    default: sched_kdiff_discrete(&p->table, nn, s); break;
    }
    s[nn] = 0.0f;
    if (nn > N) s[nn - 1] = 0.0f; /* drop the next-to-last σ: [.., σ_N-1, σ_N, 0] -> [.., σ_N-1, 0] */
    for (int i = 0; i <= N; i++) p->sigmas[i] = s[i];
    for (int i = 0; i < N; i++) p->t[i] = sched_sigma_to_t_f32(&p->table, p->sigmas[i]);
    p->init_sigma = p->sigmas[0];
}

/* diffusers DPMSolverMultistep / UniPC: an (N+1)-point integer grid (its last point dropped), σ read from the table;
 * Karras/exponential between the TABLE ends with the UNet fed rounded (Karras) or truncated (exponential) t. */
static void plan_dpm_diffusers(sched_plan *p) {
    int N = p->steps;
    const sched_table *tb = &p->table;
    if (p->cfg.schedule == SCHED_SCHEDULE_DISCRETE) {
        sched_grid_int_plus1(tb->T, N, p->cfg.spacing, p->cfg.steps_offset, p->ti);
        for (int i = 0; i < N; i++) p->sigmas[i] = (float)sched_sigma_interp(tb, p->ti[i]);
    } else {
        double *sd = p->work;
        double smin = p->cfg.sigma_min > 0 ? p->cfg.sigma_min : tb->sigmas[0], smax = p->cfg.sigma_max > 0 ? p->cfg.sigma_max : tb->sigmas[tb->T - 1];
        if (p->cfg.schedule == SCHED_SCHEDULE_KARRAS) sched_karras_f64(N, smin, smax, sd);
        else if (p->cfg.schedule == SCHED_SCHEDULE_BETA) sched_beta_sigmas_f64(N, smin, smax, sd);
        else sched_exponential_f64(N, smin, smax, sd);
        /* Karras timesteps are rounded (DPM-Solver: not with the cosine schedule), the others truncated */
        int round = p->cfg.schedule == SCHED_SCHEDULE_KARRAS &&
                    (p->cfg.sampler == SCHED_UNIPC || p->cfg.beta_schedule != SCHED_BETA_SQUAREDCOS);
        for (int i = 0; i < N; i++) {
            double t = sched_sigma_to_t(tb, sd[i]);
            p->ti[i] = (int)(round ? nearbyint(t) : trunc(t));
            p->sigmas[i] = (float)sd[i];
        }
    }
    for (int i = 0; i < N; i++) p->t[i] = (float)p->ti[i];
    p->sigmas[N] = 0.0f;
    p->init_sigma = 1.0f;
}

/* σ of an integer timestep for reporting; clamped because the grid is validated only afterwards. */
static float table_sigma(const sched_table *tb, int t) { return tb->sigmas[t < 0 ? 0 : t >= tb->T ? tb->T - 1 : t]; }

/* DDIM, DDPM, PLMS, LCM: integer timesteps; σ only for reporting. */
static void plan_integer(sched_plan *p) {
    int N = p->steps, T = p->table.T;
    if (p->cfg.sampler == SCHED_PNDM) {
        /* base grid ascending, then [base[:-1], base[-2], base[-1]] reversed: the second-largest repeats */
        int *base = (int *)p->work;
        sched_grid_int(T, N, p->cfg.spacing, p->cfg.steps_offset, base); /* descending */
        int k = 0;
        p->ti[k++] = base[0];
        if (N >= 2) p->ti[k++] = base[1];
        for (int i = 1; i < N; i++) p->ti[k++] = base[i];
        p->n_t = k;
        for (int i = 0; i < N; i++) p->sigmas[i] = table_sigma(&p->table, base[i]);
    } else if (p->cfg.sampler == SCHED_LCM) {
        /* origin steps (i+1)·(T//O) - 1 (O = original_inference_steps), reversed, picked at
         * floor(linspace(0, O, N, endpoint=False)) */
        int O = p->cfg.lcm_origin_steps, k = T / O;
        for (int i = 0; i < N; i++) {
            int idx = (int)floor((double)i * ((double)O / N));
            p->ti[i] = (O - idx) * k - 1;
        }
    } else {
        sched_grid_int(T, N, p->cfg.spacing, p->cfg.steps_offset, p->ti);
    }
    if (p->cfg.sampler != SCHED_PNDM)
        for (int i = 0; i < N; i++) p->sigmas[i] = table_sigma(&p->table, p->ti[i]);
    for (int i = 0; i < p->n_t; i++) p->t[i] = (float)p->ti[i];
    p->sigmas[N] = 0.0f;
    p->init_sigma = 1.0f;
}

/* Integer grids must stay inside the table and strictly decrease: at 1000 steps "leading" + steps_offset 1 starts at
 * t = 1000 (diffusers indexes past ᾱ and fails) and DPM-Solver/UniPC's 1001-point grid repeats timesteps (h = 0,
 * NaN in diffusers). Report it instead. */
static sd_status plan_check_grid(const sched_plan *p) {
    if (p->sigma_space) return SD_OK;
    int dpm = p->cfg.sampler == SCHED_UNIPC || p->cfg.sampler == SCHED_DPMPP_2M || p->cfg.sampler == SCHED_DPMPP_2M_SDE;
    if (dpm && p->cfg.schedule != SCHED_SCHEDULE_DISCRETE) return SD_OK; /* σ from Karras/exponential: t only labels */
    for (int i = 0; i < p->n_t; i++) {
        int t = p->ti[i], dup_ok = p->cfg.sampler == SCHED_PNDM && i == 2; /* PLMS repeats its second timestep */
        if (t < 0 || t >= p->table.T || (i > 0 && t >= p->ti[i - 1] && !dup_ok))
            return err_fail(SD_ERR_ARG, "%s with %d steps and %s spacing (steps_offset %d) gives timestep %d at step %d, "
                                       "outside 0..%d or not decreasing; use fewer steps or another spacing",
                           sched_sampler_name(p->cfg.sampler), p->steps, sched_spacing_name(p->cfg.spacing),
                           p->cfg.steps_offset, t, i, p->table.T - 1);
    }
    return SD_OK;
}

static sd_status plan_make(const sched_config *cfg, int steps, sched_plan **out) {
    *out = NULL;
    sd_status st = config_check_basic(cfg, steps);
    if (st) return st;
    sched_plan *p = calloc(1, sizeof *p);
    if (!p) return err_fail(SD_ERR_MEMORY, "sampler: out of memory");
    p->cfg = *cfg;
    p->steps = steps;
    p->kdiff = cfg->convention == SCHED_CONV_KDIFFUSION;
    p->sigma_space = !is_ddpm_space(cfg);
    if (p->cfg.spacing == SCHED_SPACING_DEFAULT)
        p->cfg.spacing = integer_timesteps(cfg->sampler) ? SCHED_SPACING_LEADING : SCHED_SPACING_LINSPACE;
    if (p->cfg.eta < 0) p->cfg.eta = default_eta(cfg->sampler);
    if (p->cfg.discard_penultimate < 0)
        p->cfg.discard_penultimate = p->kdiff && (cfg->sampler == SCHED_DPM2 || cfg->sampler == SCHED_DPM2_A);
    if (!p->kdiff) p->cfg.discard_penultimate = 0;
    p->n_t = steps;
    p->sigmas = malloc((size_t)(steps + 2) * sizeof *p->sigmas);
    p->t = malloc((size_t)(steps + 2) * sizeof *p->t);
    p->ti = malloc((size_t)(steps + 2) * sizeof *p->ti);
    p->work = malloc(2 * (size_t)(steps + 2) * sizeof *p->work);
    if (!p->sigmas || !p->t || !p->ti || !p->work) {
        plan_free(p);
        return err_fail(SD_ERR_MEMORY, "sampler: out of memory");
    }
    if ((st = sched_table_init(&p->table, cfg->train_steps, cfg->beta_start, cfg->beta_end, cfg->beta_schedule, p->kdiff))) {
        plan_free(p);
        return st;
    }
    sched_table_zero_snr(&p->table, snr_mode(cfg));
    if (p->sigma_space) {
        if (p->kdiff) plan_sigma_kdiff(p);
        else plan_sigma_diffusers(p);
    } else if (cfg->sampler == SCHED_UNIPC || cfg->sampler == SCHED_DPMPP_2M || cfg->sampler == SCHED_DPMPP_2M_SDE) {
        plan_dpm_diffusers(p);
    } else {
        plan_integer(p);
    }
    if ((st = plan_check_grid(p))) {
        plan_free(p);
        return st;
    }
    *out = p;
    return SD_OK;
}

/* The basic checks, then the grid itself (which only exists once built). */
sd_status sched_config_check(const sched_config *cfg, int steps) {
    sched_plan *p;
    sd_status st = plan_make(cfg, steps, &p);
    plan_free(p);
    return st;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Running */

static int steps_in_run(const sched_plan *p, int start) {
    if (p->cfg.sampler == SCHED_PNDM) return p->n_t - start > 1 ? p->n_t - start - 1 : 1;
    return p->steps - start;
}

static sd_status run(const sched_config *cfg, int steps, int start, int from_noise, float *x, size_t n, const sched_mask *mask,
                     sched_model_fn model, sched_noise_fn noise, sched_step_fn progress, void *user) {
    if (!x || !model || n == 0) return err_fail(SD_ERR_ARG, "sampler: no latent or no model callback");
    sched_plan *p;
    sd_status st = plan_make(cfg, steps, &p);
    if (st) return st;
    int last = p->cfg.sampler == SCHED_PNDM ? p->n_t : steps;
    if (start < 0 || start >= last) {
        plan_free(p);
        return err_fail(SD_ERR_ARG, "start step %d out of range (0..%d)", start, last - 1);
    }
    if (mask && (!mask->mask || !mask->x0 || (!mask->noise && !p->kdiff))) {
        plan_free(p);
        return err_fail(SD_ERR_ARG, "sampler: inpainting mask without its mask, init latent or noise");
    }
    sched_run r = {.p = p, .n = n, .mask = mask, .model = model, .noise = noise, .progress = progress, .user = user,
                   .total = steps_in_run(p, start)};
    r.xin = malloc(3 * n * sizeof *r.xin);
    if (!r.xin) {
        plan_free(p);
        return err_fail(SD_ERR_MEMORY, "sampler: out of memory for %zu latent values", n);
    }
    r.out = r.xin + n;
    r.known = r.xin + 2 * n;
    if (from_noise && p->init_sigma != 1.0f)
        for (size_t i = 0; i < n; i++) x[i] = x[i] * p->init_sigma;
    if (p->sigma_space) st = sched_run_sigma_space(&r, x, start);
    else if (cfg->sampler == SCHED_UNIPC || cfg->sampler == SCHED_DPMPP_2M || cfg->sampler == SCHED_DPMPP_2M_SDE)
        st = sched_run_dpm_family(&r, x, start);
    else st = sched_run_ddpm_family(&r, x, start);
    free(r.xin);
    plan_free(p);
    return st;
}

sd_status sched_sample(const sched_config *cfg, int steps, float *x, size_t n,
                       sched_model_fn model, sched_noise_fn noise, sched_step_fn progress, void *user) {
    return run(cfg, steps, 0, 1, x, n, NULL, model, noise, progress, user);
}

sd_status sched_sample_from(const sched_config *cfg, int steps, int start_step, float *x, size_t n,
                            sched_model_fn model, sched_noise_fn noise, sched_step_fn progress, void *user) {
    return run(cfg, steps, start_step, 0, x, n, NULL, model, noise, progress, user);
}

sd_status sched_sample_masked(const sched_config *cfg, int steps, int start_step, int from_noise, float *x, size_t n,
                              const sched_mask *m, sched_model_fn model, sched_noise_fn noise, sched_step_fn progress,
                              void *user) {
    return run(cfg, steps, start_step, from_noise, x, n, m, model, noise, progress, user);
}

/* ---------------------------------------------------------------------------------------------------------------
 * img2img, schedule queries */

sd_status sched_img2img_start(const sched_config *cfg, int steps, double strength, int *start_step) {
    sd_status st = sched_config_check(cfg, steps);
    if (st) return st;
    if (!(strength >= 0.0 && strength <= 1.0))
        return err_fail(SD_ERR_ARG, "strength %g is outside [0, 1]", strength);
    if (cfg->convention == SCHED_CONV_KDIFFUSION && !is_ddpm_space(cfg)) {
        /* A1111 sample_img2img: t_enc = int(min(strength, 0.999)·steps), σ schedule sliced at steps - t_enc - 1 */
        int t_enc = (int)((strength < 0.999 ? strength : 0.999) * steps);
        *start_step = steps - t_enc - 1;
        return SD_OK;
    }
    /* diffusers get_timesteps: run the last min(int(steps·strength), steps) steps */
    int init = (int)((double)steps * strength);
    if (init > steps) init = steps;
    if (init < 1)
        return err_fail(SD_ERR_ARG, "strength %g with %d steps leaves no step to run (need strength >= %g)",
                       strength, steps, 1.0 / steps);
    *start_step = steps - init;
    return SD_OK;
}

sd_status sched_img2img_prepare(const sched_config *cfg, int steps, int start_step, const float *x0,
                                const float *noise, float *x, size_t n) {
    sched_plan *p;
    sd_status st = plan_make(cfg, steps, &p);
    if (st) return st;
    int last = p->cfg.sampler == SCHED_PNDM ? p->n_t : steps;
    if (start_step < 0 || start_step >= last) {
        plan_free(p);
        return err_fail(SD_ERR_ARG, "start step %d out of range (0..%d)", start_step, last - 1);
    }
    sched_noise_to(p, start_step, x0, noise, x, n);
    plan_free(p);
    return SD_OK;
}

void sched_noise_to(const sched_plan *p, int idx, const float *x0, const float *noise, float *x, size_t n) {
    if (p->sigma_space) {
        float s = p->sigmas[idx];
        for (size_t i = 0; i < n; i++) x[i] = x0[i] + noise[i] * s;
    } else if (p->cfg.sampler == SCHED_UNIPC || p->cfg.sampler == SCHED_DPMPP_2M || p->cfg.sampler == SCHED_DPMPP_2M_SDE) {
        float s = p->sigmas[idx], a = 1.0f / sqrtf(s * s + 1.0f), b = s * a;
        for (size_t i = 0; i < n; i++) x[i] = a * x0[i] + b * noise[i];
    } else {
        float ac = p->table.alphas_cumprod[p->ti[idx]], a = sqrtf(ac), b = sqrtf(1.0f - ac);
        for (size_t i = 0; i < n; i++) x[i] = a * x0[i] + b * noise[i];
    }
}

sd_status sched_get_schedule(const sched_config *cfg, int steps, float *sigmas, float *timesteps, float *init_sigma) {
    sched_plan *p;
    sd_status st = plan_make(cfg, steps, &p);
    if (st) return st;
    if (sigmas) memcpy(sigmas, p->sigmas, (size_t)(steps + 1) * sizeof *sigmas);
    if (timesteps) {
        if (p->cfg.sampler == SCHED_PNDM) /* one nominal timestep per step: the list without its repeat */
            for (int i = 0; i < steps; i++) timesteps[i] = p->t[i == 0 ? 0 : i + 1];
        else memcpy(timesteps, p->t, (size_t)steps * sizeof *timesteps);
    }
    if (init_sigma) *init_sigma = p->init_sigma;
    plan_free(p);
    return SD_OK;
}

int sched_model_evals(const sched_config *cfg, int steps, int start_step) {
    sched_plan *p;
    if (plan_make(cfg, steps, &p)) return -1;
    int evals;
    if (p->cfg.sampler == SCHED_PNDM) evals = p->n_t - start_step;
    else if (p->sigma_space) evals = sched_sigma_space_evals(p, start_step);
    else evals = steps - start_step;
    plan_free(p);
    if (start_step < 0 || evals < 1) {
        err_fail(SD_ERR_ARG, "start step %d out of range for %d steps", start_step, steps);
        return -1;
    }
    return evals;
}
