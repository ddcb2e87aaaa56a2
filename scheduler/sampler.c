/* sampler.c — sampler configuration and names, the per-run plan (which timesteps and σ each sampler uses in each
 * convention), the sched_sample loop entry points, img2img start and noising. */
#include "sampler.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "sampler_internal.h"

/* ---------------------------------------------------------------------------------------------------------------
 * Names. Lookup ignores case, spaces, '_' and '-', so "euler_a", "Euler a" and "euler-a" all work. */

typedef struct name_entry { const char *name; int value; } name_entry;

static const name_entry sampler_names[] = {
    {"euler", SCHED_EULER}, {"euler_a", SCHED_EULER_A}, {"heun", SCHED_HEUN}, {"dpm2", SCHED_DPM2},
    {"dpm2_a", SCHED_DPM2_A}, {"dpm++2s_a", SCHED_DPMPP_2S_A}, {"dpm++2m", SCHED_DPMPP_2M},
    {"dpm++2m_sde", SCHED_DPMPP_2M_SDE}, {"lms", SCHED_LMS}, {"ddim", SCHED_DDIM}, {"pndm", SCHED_PNDM},
    {"ddpm", SCHED_DDPM}, {"unipc", SCHED_UNIPC}, {"lcm", SCHED_LCM},
    /* aliases: A1111 labels, k-diffusion function names, diffusers class names */
    {"euler ancestral", SCHED_EULER_A}, {"k_euler", SCHED_EULER}, {"k_euler_a", SCHED_EULER_A},
    {"k_euler_ancestral", SCHED_EULER_A}, {"k_heun", SCHED_HEUN}, {"k_dpm_2", SCHED_DPM2},
    {"k_dpm_2_a", SCHED_DPM2_A}, {"k_dpm_2_ancestral", SCHED_DPM2_A}, {"dpm2 ancestral", SCHED_DPM2_A},
    {"dpmpp_2s_a", SCHED_DPMPP_2S_A}, {"dpmpp_2s_ancestral", SCHED_DPMPP_2S_A}, {"dpmpp_2m", SCHED_DPMPP_2M},
    {"dpmpp_2m_sde", SCHED_DPMPP_2M_SDE}, {"k_lms", SCHED_LMS}, {"plms", SCHED_PNDM},
    {"dpmsolvermultistep", SCHED_DPMPP_2M}, {"unipcmultistep", SCHED_UNIPC},
};
static const name_entry schedule_names[] = {
    {"discrete", SCHED_SCHEDULE_DISCRETE}, {"karras", SCHED_SCHEDULE_KARRAS},
    {"exponential", SCHED_SCHEDULE_EXPONENTIAL}, {"sgm_uniform", SCHED_SCHEDULE_SGM_UNIFORM},
    {"default", SCHED_SCHEDULE_DISCRETE}, {"automatic", SCHED_SCHEDULE_DISCRETE}, {"uniform", SCHED_SCHEDULE_DISCRETE},
    {"normal", SCHED_SCHEDULE_DISCRETE},
};
static const name_entry spacing_names[] = {
    {"default", SCHED_SPACING_DEFAULT}, {"leading", SCHED_SPACING_LEADING}, {"trailing", SCHED_SPACING_TRAILING},
    {"linspace", SCHED_SPACING_LINSPACE},
};
static const name_entry prediction_names[] = {
    {"eps", SCHED_PRED_EPS}, {"v", SCHED_PRED_V}, {"epsilon", SCHED_PRED_EPS}, {"v_prediction", SCHED_PRED_V},
};
static const name_entry convention_names[] = {
    {"diffusers", SCHED_CONV_DIFFUSERS}, {"kdiffusion", SCHED_CONV_KDIFFUSION}, {"k-diffusion", SCHED_CONV_KDIFFUSION},
    {"a1111", SCHED_CONV_KDIFFUSION}, {"webui", SCHED_CONV_KDIFFUSION}, {"sdcpp", SCHED_CONV_KDIFFUSION},
};
#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

static void squash(const char *in, char *out, size_t cap) {
    size_t k = 0;
    for (; *in && k + 1 < cap; in++)
        if (*in != ' ' && *in != '_' && *in != '-') out[k++] = (char)tolower((unsigned char)*in);
    out[k] = 0;
}

static int lookup(const name_entry *tab, int count, const char *name) {
    char a[64], b[64];
    if (!name || strlen(name) >= sizeof a) return -1;
    squash(name, a, sizeof a);
    for (int i = 0; i < count; i++) {
        squash(tab[i].name, b, sizeof b);
        if (strcmp(a, b) == 0) return tab[i].value;
    }
    return -1;
}

/* "unknown <what> "x" (valid: a, b, c)" listing the canonical names (the first `canon` entries). */
static sd_status unknown(const char *what, const char *name, const name_entry *tab, int canon) {
    char list[512];
    size_t k = 0;
    for (int i = 0; i < canon && k < sizeof list; i++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", tab[i].name);
    return sd_fail(SD_ERR_ARG, "unknown %s \"%s\" (valid: %s)", what, name ? name : "(null)", list);
}

#define PARSER(fn, type, what, tab, canon)                              \
    sd_status fn(const char *name, type *out) {                         \
        int v = lookup(tab, COUNT(tab), name);                          \
        if (v < 0) return unknown(what, name, tab, canon);              \
        *out = (type)v;                                                 \
        return SD_OK;                                                   \
    }
PARSER(sched_sampler_from_name, sched_sampler, "sampling method", sampler_names, SCHED_SAMPLER_COUNT)
PARSER(sched_schedule_from_name, sched_schedule, "scheduler", schedule_names, SCHED_SCHEDULE_COUNT)
PARSER(sched_spacing_from_name, sched_spacing, "timestep spacing", spacing_names, SCHED_SPACING_COUNT)
PARSER(sched_prediction_from_name, sched_prediction, "prediction type", prediction_names, SCHED_PRED_COUNT)
PARSER(sched_convention_from_name, sched_convention, "schedule convention", convention_names, SCHED_CONV_COUNT)

const char *sched_sampler_name(sched_sampler s) { return (unsigned)s < SCHED_SAMPLER_COUNT ? sampler_names[s].name : "?"; }
const char *sched_schedule_name(sched_schedule s) { return (unsigned)s < SCHED_SCHEDULE_COUNT ? schedule_names[s].name : "?"; }
const char *sched_spacing_name(sched_spacing s) { return (unsigned)s < SCHED_SPACING_COUNT ? spacing_names[s].name : "?"; }
const char *sched_convention_name(sched_convention c) { return (unsigned)c < SCHED_CONV_COUNT ? convention_names[c].name : "?"; }

static const char *sampler_help[SCHED_SAMPLER_COUNT] = {
    [SCHED_EULER] = "Euler (A1111 \"Euler\")",
    [SCHED_EULER_A] = "Euler ancestral, stochastic (A1111 \"Euler a\")",
    [SCHED_HEUN] = "Heun, 2nd order, ~2 UNet calls per step (A1111 \"Heun\")",
    [SCHED_DPM2] = "DPM-Solver-2, ~2 calls per step (A1111 \"DPM2\")",
    [SCHED_DPM2_A] = "DPM2 ancestral, stochastic (A1111 \"DPM2 a\")",
    [SCHED_DPMPP_2S_A] = "DPM-Solver++(2S) ancestral, ~2 calls per step (A1111 \"DPM++ 2S a\")",
    [SCHED_DPMPP_2M] = "DPM-Solver++(2M) multistep (A1111 \"DPM++ 2M\", diffusers DPMSolverMultistep)",
    [SCHED_DPMPP_2M_SDE] = "DPM-Solver++(2M) SDE, fresh noise per step (A1111 \"DPM++ 2M SDE\")",
    [SCHED_LMS] = "linear multistep, order 4 (A1111 \"LMS\")",
    [SCHED_DDIM] = "DDIM; --eta > 0 adds noise (A1111 \"DDIM\")",
    [SCHED_PNDM] = "PLMS / PNDM, steps+1 UNet calls (A1111 \"PLMS\", SD 1.5's own scheduler); alias plms",
    [SCHED_DDPM] = "DDPM ancestral sampling (needs many steps)",
    [SCHED_UNIPC] = "UniPC predictor-corrector, order 2 (A1111 \"UniPC\")",
    [SCHED_LCM] = "latent consistency, for LCM-distilled models, at most 50 steps (A1111 \"LCM\")",
};

size_t sched_help(char *buf, size_t cap) {
    size_t k = 0;
#define OUT(...) k += (size_t)snprintf(buf + (k < cap ? k : cap), k < cap ? cap - k : 0, __VA_ARGS__)
    if (cap) buf[0] = 0;
    OUT("  --sampling-method NAME\n");
    for (int s = 0; s < SCHED_SAMPLER_COUNT; s++) OUT("      %-12s %s\n", sampler_names[s].name, sampler_help[s]);
    OUT("  --scheduler NAME          discrete (default), karras, exponential, sgm_uniform (k-diffusion convention)\n"
        "  --timestep-spacing NAME   default, leading, trailing, linspace (diffusers grids; default = the sampler's\n"
        "                            SD 1.5 default: leading for ddim/pndm/ddpm/lcm, linspace otherwise)\n"
        "  --schedule-convention C   diffusers (default): match diffusers' schedulers;\n"
        "                            kdiffusion: k-diffusion samplers as AUTOMATIC1111 / stable-diffusion.cpp run them\n"
        "  --rng cpu|cuda            initial noise: torch CPU generator, or CUDA Philox (default cuda, as the UIs)\n"
        "  --sampler-rng cpu|cuda    noise drawn by stochastic samplers at each step\n");
#undef OUT
    return k;
}

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
    if ((unsigned)cfg->sampler >= SCHED_SAMPLER_COUNT) return unknown("sampling method", "(enum out of range)", sampler_names, SCHED_SAMPLER_COUNT);
    if ((unsigned)cfg->schedule >= SCHED_SCHEDULE_COUNT) return unknown("scheduler", "(enum out of range)", schedule_names, SCHED_SCHEDULE_COUNT);
    if ((unsigned)cfg->spacing >= SCHED_SPACING_COUNT) return unknown("timestep spacing", "(enum out of range)", spacing_names, SCHED_SPACING_COUNT);
    if ((unsigned)cfg->prediction >= SCHED_PRED_COUNT) return unknown("prediction type", "(enum out of range)", prediction_names, SCHED_PRED_COUNT);
    if ((unsigned)cfg->convention >= SCHED_CONV_COUNT) return unknown("schedule convention", "(enum out of range)", convention_names, SCHED_CONV_COUNT);
    int T = cfg->train_steps;
    if (T < 2 || T > SCHED_MAX_TRAIN) return sd_fail(SD_ERR_ARG, "train steps %d out of range (2..%d)", T, SCHED_MAX_TRAIN);
    if (steps < 1) return sd_fail(SD_ERR_ARG, "steps must be at least 1 (got %d)", steps);
    if (steps > T) return sd_fail(SD_ERR_ARG, "steps %d exceeds the %d training timesteps (valid: 1..%d)", steps, T, T);
    if (cfg->steps_offset < 0 || cfg->steps_offset >= T) return sd_fail(SD_ERR_ARG, "steps_offset %d out of range (0..%d)", cfg->steps_offset, T - 1);
    if (cfg->sampler == SCHED_LCM && steps > 50)
        return sd_fail(SD_ERR_ARG, "lcm supports at most 50 steps (its original_inference_steps), got %d", steps);
    if (cfg->sampler == SCHED_LCM && T / 50 < 1) return sd_fail(SD_ERR_ARG, "lcm needs at least 50 training timesteps");
    if (!(cfg->eta < 0) && !(cfg->eta <= 100.0f)) return sd_fail(SD_ERR_ARG, "eta %g is invalid (valid: 0..100, or negative for the default)", cfg->eta);
    if (cfg->schedule != SCHED_SCHEDULE_DISCRETE && integer_timesteps(cfg->sampler))
        return sd_fail(SD_ERR_ARG, "scheduler %s does not apply to %s, which walks integer timesteps (valid: discrete)",
                       sched_schedule_name(cfg->schedule), sched_sampler_name(cfg->sampler));
    if (cfg->schedule == SCHED_SCHEDULE_SGM_UNIFORM && (cfg->convention != SCHED_CONV_KDIFFUSION || is_ddpm_space(cfg)))
        return sd_fail(SD_ERR_ARG, "scheduler sgm_uniform exists only for the k-diffusion samplers in the kdiffusion "
                                   "convention (valid here: discrete, karras, exponential; or --timestep-spacing trailing)");
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
    free(p);
}

/* diffusers σ-space schedulers (Euler, EulerA, Heun, KDPM2, KDPM2A, LMS): float timesteps by spacing, σ by
 * linear interpolation, Karras/exponential between the ends of that interpolated schedule. */
static void plan_sigma_diffusers(sched_plan *p) {
    int N = p->steps;
    double *sd = malloc((size_t)N * sizeof *sd), *td = malloc((size_t)N * sizeof *td);
    sched_grid_float(p->table.T, N, p->cfg.spacing, p->cfg.steps_offset, p->t);
    for (int i = 0; i < N; i++) sd[i] = sched_sigma_interp(&p->table, p->t[i]);
    if (p->cfg.schedule != SCHED_SCHEDULE_DISCRETE) {
        double smin = sd[N - 1], smax = sd[0];
        if (p->cfg.schedule == SCHED_SCHEDULE_KARRAS) sched_karras_f64(N, smin, smax, sd);
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
    free(sd);
    free(td);
}

/* k-diffusion / A1111: σ from the LDM table by log-σ interpolation (or Karras/exponential between the table
 * ends), t = sigma_to_t(σ), x_T = noise·σ₀; optionally A1111's "discard next-to-last sigma". */
static void plan_sigma_kdiff(sched_plan *p) {
    int N = p->steps, nn = N + (p->cfg.discard_penultimate > 0);
    float *s = malloc((size_t)(nn + 1) * sizeof *s);
    double smin = p->table.sigmas[0], smax = p->table.sigmas[p->table.T - 1];
    switch (p->cfg.schedule) {
    case SCHED_SCHEDULE_KARRAS: sched_karras_f32(nn, smin, smax, s); break;
    case SCHED_SCHEDULE_EXPONENTIAL: sched_exponential_f32(nn, smin, smax, s); break;
    case SCHED_SCHEDULE_SGM_UNIFORM: sched_kdiff_sgm_uniform(&p->table, nn, s); break;
    default: sched_kdiff_discrete(&p->table, nn, s); break;
    }
    s[nn] = 0.0f;
    if (nn > N) s[nn - 1] = 0.0f; /* drop the next-to-last σ: [.., σ_N-1, σ_N, 0] -> [.., σ_N-1, 0] */
    for (int i = 0; i <= N; i++) p->sigmas[i] = s[i];
    for (int i = 0; i < N; i++) p->t[i] = sched_sigma_to_t_f32(&p->table, p->sigmas[i]);
    p->init_sigma = p->sigmas[0];
    free(s);
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
        double *sd = malloc((size_t)N * sizeof *sd);
        if (p->cfg.schedule == SCHED_SCHEDULE_KARRAS) sched_karras_f64(N, tb->sigmas[0], tb->sigmas[tb->T - 1], sd);
        else sched_exponential_f64(N, tb->sigmas[0], tb->sigmas[tb->T - 1], sd);
        for (int i = 0; i < N; i++) {
            double t = sched_sigma_to_t(tb, sd[i]);
            p->ti[i] = (int)(p->cfg.schedule == SCHED_SCHEDULE_KARRAS ? nearbyint(t) : trunc(t));
            p->sigmas[i] = (float)sd[i];
        }
        free(sd);
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
        int *base = malloc((size_t)N * sizeof *base);
        sched_grid_int(T, N, p->cfg.spacing, p->cfg.steps_offset, base); /* descending */
        int k = 0;
        p->ti[k++] = base[0];
        if (N >= 2) p->ti[k++] = base[1];
        for (int i = 1; i < N; i++) p->ti[k++] = base[i];
        p->n_t = k;
        for (int i = 0; i < N; i++) p->sigmas[i] = table_sigma(&p->table, base[i]);
        free(base);
    } else if (p->cfg.sampler == SCHED_LCM) {
        /* origin steps (i+1)·(T//50) - 1, reversed, picked at floor(linspace(0, 50, N, endpoint=False)) */
        int k = T / 50;
        for (int i = 0; i < N; i++) {
            int idx = (int)floor((double)i * (50.0 / N));
            p->ti[i] = (50 - idx) * k - 1;
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
            return sd_fail(SD_ERR_ARG, "%s with %d steps and %s spacing (steps_offset %d) gives timestep %d at step %d, "
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
    if (!p) return sd_fail(SD_ERR_MEMORY, "sampler: out of memory");
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
    if (!p->sigmas || !p->t || !p->ti) {
        plan_free(p);
        return sd_fail(SD_ERR_MEMORY, "sampler: out of memory");
    }
    if ((st = sched_table_init(&p->table, cfg->train_steps, cfg->beta_start, cfg->beta_end, cfg->beta_schedule, p->kdiff))) {
        plan_free(p);
        return st;
    }
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

sd_status sched_run_model(sched_run *r, const float *x_in, float t) {
    sd_status st = r->model(r->user, x_in, t, r->out);
    if (st) sd_error_prefix("model at t=%g", t);
    return st;
}

sd_status sched_run_noise(sched_run *r, float *buf) {
    if (!r->noise) return sd_fail(SD_ERR_ARG, "sampler %s needs a noise callback", sched_sampler_name(r->p->cfg.sampler));
    return r->noise(r->user, buf);
}

void sched_run_progress(sched_run *r, const float *x) {
    r->done++;
    if (r->progress) r->progress(r->user, r->done, r->total, x);
}

static int steps_in_run(const sched_plan *p, int start) {
    if (p->cfg.sampler == SCHED_PNDM) return p->n_t - start > 1 ? p->n_t - start - 1 : 1;
    return p->steps - start;
}

static sd_status run(const sched_config *cfg, int steps, int start, int from_noise, float *x, size_t n,
                     sched_model_fn model, sched_noise_fn noise, sched_step_fn progress, void *user) {
    if (!x || !model || n == 0) return sd_fail(SD_ERR_ARG, "sampler: no latent or no model callback");
    sched_plan *p;
    sd_status st = plan_make(cfg, steps, &p);
    if (st) return st;
    int last = p->cfg.sampler == SCHED_PNDM ? p->n_t : steps;
    if (start < 0 || start >= last) {
        plan_free(p);
        return sd_fail(SD_ERR_ARG, "start step %d out of range (0..%d)", start, last - 1);
    }
    sched_run r = {.p = p, .n = n, .model = model, .noise = noise, .progress = progress, .user = user,
                   .total = steps_in_run(p, start)};
    r.xin = malloc(2 * n * sizeof *r.xin);
    if (!r.xin) {
        plan_free(p);
        return sd_fail(SD_ERR_MEMORY, "sampler: out of memory for %zu latent values", n);
    }
    r.out = r.xin + n;
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
    return run(cfg, steps, 0, 1, x, n, model, noise, progress, user);
}

sd_status sched_sample_from(const sched_config *cfg, int steps, int start_step, float *x, size_t n,
                            sched_model_fn model, sched_noise_fn noise, sched_step_fn progress, void *user) {
    return run(cfg, steps, start_step, 0, x, n, model, noise, progress, user);
}

/* ---------------------------------------------------------------------------------------------------------------
 * img2img, schedule queries */

sd_status sched_img2img_start(const sched_config *cfg, int steps, double strength, int *start_step) {
    sd_status st = sched_config_check(cfg, steps);
    if (st) return st;
    if (!(strength >= 0.0 && strength <= 1.0))
        return sd_fail(SD_ERR_ARG, "strength %g is outside [0, 1]", strength);
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
        return sd_fail(SD_ERR_ARG, "strength %g with %d steps leaves no step to run (need strength >= %g)",
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
        return sd_fail(SD_ERR_ARG, "start step %d out of range (0..%d)", start_step, last - 1);
    }
    if (p->sigma_space) {
        float s = p->sigmas[start_step];
        for (size_t i = 0; i < n; i++) x[i] = x0[i] + noise[i] * s;
    } else if (cfg->sampler == SCHED_UNIPC || cfg->sampler == SCHED_DPMPP_2M || cfg->sampler == SCHED_DPMPP_2M_SDE) {
        float s = p->sigmas[start_step], a = 1.0f / sqrtf(s * s + 1.0f), b = s * a;
        for (size_t i = 0; i < n; i++) x[i] = a * x0[i] + b * noise[i];
    } else {
        float ac = p->table.alphas_cumprod[p->ti[start_step]], a = sqrtf(ac), b = sqrtf(1.0f - ac);
        for (size_t i = 0; i < n; i++) x[i] = a * x0[i] + b * noise[i];
    }
    plan_free(p);
    return SD_OK;
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
        sd_fail(SD_ERR_ARG, "start step %d out of range for %d steps", start_step, steps);
        return -1;
    }
    return evals;
}
