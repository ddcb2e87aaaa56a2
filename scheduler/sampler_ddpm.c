/* sampler_ddpm.c — the samplers that walk integer timesteps in DDPM space (x_t = sqrt(ᾱ)x0 + sqrt(1-ᾱ)ε):
 * DDIM (with eta), PLMS (diffusers' PNDM with skip_prk_steps), DDPM and LCM; float32 scalar arithmetic as in
 * diffusers. Here the model sees x_t itself (scale_model_input is the identity). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "sampler_internal.h"

/* ᾱ of a timestep; past the start of the table: 1 (set_alpha_to_one) or ᾱ_0 (SD configs: set_alpha_to_one false).
 * Grids are validated in range; PLMS's "t + T//N" re-step is clamped rather than trusted. */
static float alpha_bar(const sched_plan *p, int t, float final) {
    if (t < 0) return final;
    return p->table.alphas_cumprod[t < p->table.T ? t : p->table.T - 1];
}

/* x̂0 and ε̂ from the model output for prediction type eps or v; x̂0 clamped to ±clip_sample_range when the
 * config asks (ε̂ is not recomputed, as in diffusers). */
static void predict(const sched_plan *p, size_t n, const float *x, const float *o, float ac, float *x0, float *eps) {
    float a = sqrtf(ac), b = sqrtf(1.0f - ac), r = p->cfg.clip_sample_range;
    for (size_t i = 0; i < n; i++) {
        if (p->cfg.prediction == SCHED_PRED_V) {
            if (x0) x0[i] = a * x[i] - b * o[i];
            if (eps) eps[i] = a * o[i] + b * x[i];
        } else {
            if (x0) x0[i] = (x[i] - b * o[i]) / a;
            if (eps) eps[i] = o[i];
        }
        if (x0 && p->cfg.clip_sample) x0[i] = x0[i] < -r ? -r : x0[i] > r ? r : x0[i];
    }
}

/* ᾱ past the start of the table (DDIM, PLMS): 1 with set_alpha_to_one, else ᾱ_0 */
static float final_alpha(const sched_plan *p) { return p->cfg.set_alpha_to_one ? 1.0f : p->table.alphas_cumprod[0]; }

static sd_status run_ddim(sched_run *r, float *x, int start, float *x0, float *eps, float *z) {
    const sched_plan *p = r->p;
    size_t n = r->n;
    int ratio = p->table.T / p->steps;
    for (int i = start; i < p->steps; i++) {
        int t = p->ti[i], prev = t - ratio; /* diffusers steps back by T//N whatever the spacing */
        sd_status st = sched_run_model(r, x, (float)t);
        if (st) return st;
        float ac = alpha_bar(p, t, 0), ac_prev = alpha_bar(p, prev, final_alpha(p));
        predict(p, n, x, r->out, ac, x0, eps);
        float variance = ((1.0f - ac_prev) / (1.0f - ac)) * (1.0f - ac / ac_prev);
        float std = p->cfg.eta * sqrtf(variance);
        float cx0 = sqrtf(ac_prev), ceps = sqrtf(1.0f - ac_prev - std * std);
        for (size_t j = 0; j < n; j++) x[j] = cx0 * x0[j] + ceps * eps[j];
        if (p->cfg.eta > 0) {
            if ((st = sched_run_noise(r, z))) return st;
            for (size_t j = 0; j < n; j++) x[j] = x[j] + std * z[j];
        }
        sched_run_after_call(r, x, i + 1);
        sched_run_progress(r, x);
    }
    return SD_OK;
}

static sd_status run_ddpm(sched_run *r, float *x, int start, float *x0, float *z) {
    const sched_plan *p = r->p;
    size_t n = r->n;
    for (int i = start; i < p->steps; i++) {
        int t = p->ti[i], prev = i + 1 < p->steps ? p->ti[i + 1] : -1;
        sd_status st = sched_run_model(r, x, (float)t);
        if (st) return st;
        float ac = alpha_bar(p, t, 0), ac_prev = alpha_bar(p, prev, 1.0f);
        float bp = 1.0f - ac, bp_prev = 1.0f - ac_prev, cur_alpha = ac / ac_prev, cur_beta = 1.0f - cur_alpha;
        predict(p, n, x, r->out, ac, x0, NULL);
        float c0 = (sqrtf(ac_prev) * cur_beta) / bp, cx = sqrtf(cur_alpha) * bp_prev / bp;
        for (size_t j = 0; j < n; j++) x[j] = c0 * x0[j] + cx * x[j];
        if (t > 0) { /* "fixed_small" variance; the generator is drawn even where the variance clamps to 1e-20 */
            if ((st = sched_run_noise(r, z))) return st;
            float var = (1.0f - ac_prev) / (1.0f - ac) * cur_beta;
            if (var < 1e-20f) var = 1e-20f;
            float sd = sqrtf(var);
            for (size_t j = 0; j < n; j++) x[j] = x[j] + sd * z[j];
        }
        sched_run_after_call(r, x, i + 1);
        sched_run_progress(r, x);
    }
    return SD_OK;
}

/* PLMS transfer x_t -> x_prev with combined model output e (v is converted with the sample it is applied to). */
static void plms_prev(const sched_plan *p, size_t n, float *x, const float *sample, const float *e, int t, int prev) {
    float ac = alpha_bar(p, t, 0), ac_prev = alpha_bar(p, prev, final_alpha(p));
    float bp = 1.0f - ac, bp_prev = 1.0f - ac_prev;
    float sc = sqrtf(ac_prev / ac), denom = ac * sqrtf(bp_prev) + sqrtf(ac * bp * ac_prev), diff = ac_prev - ac;
    for (size_t j = 0; j < n; j++) {
        float ej = p->cfg.prediction == SCHED_PRED_V ? sqrtf(ac) * e[j] + sqrtf(bp) * sample[j] : e[j];
        x[j] = sc * sample[j] - diff * ej / denom;
    }
}

/* diffusers PNDMScheduler.step_plms over the eval list t[start..n_t): counter 1 re-does the first step with the
 * average of the first two outputs (a Heun-like warm-up), then Adams-Bashforth of order 2, 3, 4. */
static sd_status run_plms(sched_run *r, float *x, int start, float *work) {
    const sched_plan *p = r->p;
    size_t n = r->n;
    int ratio = p->table.T / p->steps;
    float *ets[4], *cur = work + 4 * n, *e = work + 5 * n;
    for (int q = 0; q < 4; q++) ets[q] = work + q * n;
    int nets = 0;
    for (int c = 0; start + c < p->n_t; c++) {
        int t = p->ti[start + c], prev = t - ratio;
        sd_status st = sched_run_model(r, x, (float)t);
        if (st) return st;
        const float *o = r->out;
        if (c != 1) {
            if (nets == 4) {
                float *old = ets[0];
                memmove(ets, ets + 1, 3 * sizeof *ets);
                ets[3] = old;
                nets = 3;
            }
            memcpy(ets[nets++], o, n * sizeof *o);
        } else {
            prev = t;
            t = t + ratio;
        }
        const float *sample = x;
        if (nets == 1 && c == 0) {
            memcpy(e, o, n * sizeof *e);
            memcpy(cur, x, n * sizeof *cur);
        } else if (nets == 1 && c == 1) {
            for (size_t j = 0; j < n; j++) e[j] = (o[j] + ets[0][j]) / 2.0f;
            sample = cur;
        } else if (nets == 2) {
            for (size_t j = 0; j < n; j++) e[j] = (3.0f * ets[1][j] - ets[0][j]) / 2.0f;
        } else if (nets == 3) {
            for (size_t j = 0; j < n; j++) e[j] = (23.0f * ets[2][j] - 16.0f * ets[1][j] + 5.0f * ets[0][j]) / 12.0f;
        } else {
            for (size_t j = 0; j < n; j++)
                e[j] = (1.0f / 24.0f) * (55.0f * ets[3][j] - 59.0f * ets[2][j] + 37.0f * ets[1][j] - 9.0f * ets[0][j]);
        }
        plms_prev(p, n, x, sample, e, t, prev);
        sched_run_after_call(r, x, start + c + 1);
        /* the first output of a run of >= 2 evaluations is provisional: the next call redoes that step */
        if (c != 0 || start + 1 >= p->n_t) sched_run_progress(r, x);
    }
    return SD_OK;
}

static sd_status run_lcm(sched_run *r, float *x, int start, float *x0, float *z) {
    const sched_plan *p = r->p;
    size_t n = r->n;
    for (int i = start; i < p->steps; i++) {
        int t = p->ti[i], prev = i + 1 < p->steps ? p->ti[i + 1] : t;
        sd_status st = sched_run_model(r, x, (float)t);
        if (st) return st;
        float ac = alpha_bar(p, t, 0), ac_prev = alpha_bar(p, prev, p->table.alphas_cumprod[0]);
        float scaled = (float)t * p->cfg.lcm_timestep_scaling, c_skip = 0.25f / (scaled * scaled + 0.25f);
        float c_out = scaled / sqrtf(scaled * scaled + 0.25f);
        predict(p, n, x, r->out, ac, x0, NULL);
        for (size_t j = 0; j < n; j++) x[j] = c_out * x0[j] + c_skip * x[j];
        if (i != p->steps - 1) {
            if ((st = sched_run_noise(r, z))) return st;
            float a = sqrtf(ac_prev), b = sqrtf(1.0f - ac_prev);
            for (size_t j = 0; j < n; j++) x[j] = a * x[j] + b * z[j];
        }
        sched_run_after_call(r, x, i + 1);
        sched_run_progress(r, x);
    }
    return SD_OK;
}

sd_status sched_run_ddpm_family(sched_run *r, float *x, int start) {
    size_t n = r->n;
    float *buf = malloc(6 * n * sizeof *buf);
    if (!buf) return err_fail(SD_ERR_MEMORY, "sampler: out of memory for %zu latent values", n);
    sd_status st;
    switch (r->p->cfg.sampler) {
    case SCHED_DDIM: st = run_ddim(r, x, start, buf, buf + n, buf + 2 * n); break;
    case SCHED_DDPM: st = run_ddpm(r, x, start, buf, buf + n); break;
    case SCHED_PNDM: st = run_plms(r, x, start, buf); break;
    case SCHED_LCM: st = run_lcm(r, x, start, buf, buf + n); break;
    default: st = err_fail(SD_ERR_UNSUPPORTED, "sampler %s is not a DDPM-space sampler", sched_sampler_name(r->p->cfg.sampler));
    }
    free(buf);
    return st;
}
