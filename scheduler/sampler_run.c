/* sampler_run.c — what every sampler family shares while it runs: the model call (with the timestep added to
 * its errors), fresh noise, progress after each step, and the inpainting hooks that keep the known area. */
#include <string.h>

#include "../core/error.h"
#include "sampler_internal.h"

/* x·m + x0·(1 - m), AUTOMATIC1111's `x * nmask + init_latent * mask` */
static void keep_known(const sched_mask *m, const float *x, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] * m->mask[i] + m->x0[i] * (1.0f - m->mask[i]);
}

sd_status sched_run_model(sched_run *r, const float *x_in, float t) {
    /* A1111's timestep samplers (mask_before_denoising): the model sees x0 in the known area */
    if (r->mask && r->p->kdiff && !r->p->sigma_space) {
        keep_known(r->mask, x_in, r->known, r->n);
        x_in = r->known;
    }
    sd_status st = r->model(r->user, x_in, t, r->out);
    if (st) err_prefix("model at t=%g", t);
    return st;
}

sd_status sched_run_noise(sched_run *r, float *buf) {
    if (!r->noise) return err_fail(SD_ERR_ARG, "sampler %s needs a noise callback", sched_sampler_name(r->p->cfg.sampler));
    return r->noise(r->user, buf);
}

void sched_run_progress(sched_run *r, float *x) {
    r->done++;
    if (r->mask && r->p->kdiff && r->done == r->total) keep_known(r->mask, x, x, r->n); /* A1111's final blend */
    if (r->progress) r->progress(r->user, r->done, r->total, x);
}

void sched_run_after_call(sched_run *r, float *x, int next) {
    const sched_mask *m = r->mask;
    if (!m || r->p->kdiff) return;
    int last = r->p->cfg.sampler == SCHED_PNDM ? r->p->n_t : r->p->steps;
    if (next < last) sched_noise_to(r->p, next, m->x0, m->noise, r->known, r->n);
    else memcpy(r->known, m->x0, r->n * sizeof *r->known);
    /* diffusers: (1 - mask) * init_latents_proper + mask * latents */
    for (size_t i = 0; i < r->n; i++) x[i] = (1.0f - m->mask[i]) * r->known[i] + m->mask[i] * x[i];
}

void sched_run_denoised(sched_run *r, float *D) {
    if (r->mask && r->p->kdiff) keep_known(r->mask, D, D, r->n);
}
