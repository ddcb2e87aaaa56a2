/* sampler_names.c — the names users give samplers, schedules, spacings, predictions and conventions, with
 * aliases from AUTOMATIC1111, k-diffusion and diffusers, and a one-line description of each sampler. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "../core/error.h"
#include "sampler.h"

/* Lookup ignores case, spaces, '_' and '-', so "euler_a", "Euler a" and "euler-a" all work. */

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
    {"exponential", SCHED_SCHEDULE_EXPONENTIAL}, {"sgm_uniform", SCHED_SCHEDULE_SGM_UNIFORM}, {"beta", SCHED_SCHEDULE_BETA},
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
    return err_fail(SD_ERR_ARG, "unknown %s \"%s\" (valid: %s)", what, name ? name : "(null)", list);
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

static const char *schedule_help[SCHED_SCHEDULE_COUNT] = {
    [SCHED_SCHEDULE_DISCRETE] = "the model's own timesteps (A1111 \"Automatic\")",
    [SCHED_SCHEDULE_KARRAS] = "Karras et al. sigmas, rho 7",
    [SCHED_SCHEDULE_EXPONENTIAL] = "log-sigma uniform",
    [SCHED_SCHEDULE_BETA] = "Beta(0.6, 0.6) quantiles (A1111 \"Beta\", diffusers use_beta_sigmas)",
    [SCHED_SCHEDULE_SGM_UNIFORM] = "uniform in t (with --schedule-convention kdiffusion)",
};

const char *sched_sampler_description(sched_sampler s) { return (unsigned)s < SCHED_SAMPLER_COUNT ? sampler_help[s] : "?"; }
const char *sched_schedule_description(sched_schedule s) { return (unsigned)s < SCHED_SCHEDULE_COUNT ? schedule_help[s] : "?"; }
