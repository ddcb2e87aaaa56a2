/* names.c — the sampler and scheduler names users pick from, with one-line descriptions for --help. */
#include <stddef.h>

#include "../sd.h"

static const struct { const char *name, *desc; } k_samplers[] = {
    {"euler_a", "Euler ancestral (A1111 \"Euler a\"), the default"},
    {"euler", "Euler, deterministic (A1111 \"Euler\")"},
    {"heun", "Heun, 2nd order, 2 model calls per step"},
    {"dpm2", "DPM-Solver-2 (KDPM2), 2 model calls per step"},
    {"dpm2_a", "DPM2 ancestral"},
    {"dpm++2s_a", "DPM-Solver++(2S) ancestral, 2 model calls per step"},
    {"dpm++2m", "DPM-Solver++(2M) multistep: sharp in few steps"},
    {"dpm++2m_sde", "DPM-Solver++(2M) SDE (fresh noise each step)"},
    {"lms", "linear multistep, order 4"},
    {"ddim", "DDIM (--eta for stochasticity)"},
    {"pndm", "PLMS / PNDM pseudo linear multistep (also \"plms\")"},
    {"ddpm", "ancestral DDPM (needs many steps)"},
    {"unipc", "UniPC bh2 predictor-corrector"},
    {"lcm", "latent consistency, for LCM-distilled models (2-8 steps)"},
};

static const struct { const char *name, *desc; } k_schedulers[] = {
    {"discrete", "the model's own timesteps (A1111 \"Automatic\")"},
    {"karras", "Karras et al. sigmas, rho 7"},
    {"exponential", "log-sigma uniform"},
    {"sgm_uniform", "uniform in t (with --schedule-convention kdiffusion)"},
};

int sd_sampler_count(void) { return (int)(sizeof k_samplers / sizeof *k_samplers); }
const char *sd_sampler_name(int i, const char **description) {
    if (i < 0 || i >= sd_sampler_count()) return NULL;
    if (description) *description = k_samplers[i].desc;
    return k_samplers[i].name;
}
int sd_scheduler_count(void) { return (int)(sizeof k_schedulers / sizeof *k_schedulers); }
const char *sd_scheduler_name(int i, const char **description) {
    if (i < 0 || i >= sd_scheduler_count()) return NULL;
    if (description) *description = k_schedulers[i].desc;
    return k_schedulers[i].name;
}
