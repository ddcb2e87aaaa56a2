/* sampler_run.c — what every sampler family shares while it runs: the model call (with the timestep added to
 * its errors), fresh noise, and progress after each step. */
#include "../core/error.h"
#include "sampler_internal.h"

sd_status sched_run_model(sched_run *r, const float *x_in, float t) {
    sd_status st = r->model(r->user, x_in, t, r->out);
    if (st) err_prefix("model at t=%g", t);
    return st;
}

sd_status sched_run_noise(sched_run *r, float *buf) {
    if (!r->noise) return err_fail(SD_ERR_ARG, "sampler %s needs a noise callback", sched_sampler_name(r->p->cfg.sampler));
    return r->noise(r->user, buf);
}

void sched_run_progress(sched_run *r, const float *x) {
    r->done++;
    if (r->progress) r->progress(r->user, r->done, r->total, x);
}
