/* sampler_k.c — the σ-space samplers (x = x0 + σ·ε): Euler, Euler a, Heun, DPM2, DPM2 a, DPM++ 2S a, LMS, and
 * k-diffusion's DPM++ 2M / 2M SDE. One implementation per sampler; the convention switches the few places where
 * diffusers' scheduler and k-diffusion's sampler differ (noise at the last step, lerp direction, t of a σ). */
#include <math.h>
#include <stdlib.h>

#include "../core/error.h"
#include "sampler_internal.h"

typedef struct kctx {
    sched_run *r;
    const sched_plan *p;
    size_t n;
    float *D, *d, *x2, *D2, *old, *z;
    float *hist[4]; /* LMS derivatives, newest last */
    int nhist;
} kctx;

/* UNet timestep of an arbitrary σ (midpoints): diffusers' float64 _sigma_to_t or k-diffusion's float32 one. */
static float t_of_sigma(const sched_plan *p, float sigma) {
    return p->kdiff ? sched_sigma_to_t_f32(&p->table, sigma) : (float)sched_sigma_to_t(&p->table, sigma);
}

/* D(x; σ): scale the input by 1/sqrt(σ²+1), run the model at t, turn ε or v into the denoised latent. */
static sd_status denoise(kctx *k, const float *x, float sigma, float t, float *D) {
    sched_run *r = k->r;
    size_t n = k->n;
    float s2 = sigma * sigma + 1.0f, root = sqrtf(s2);
    if (k->p->kdiff) {
        float c_in = 1.0f / root;
        for (size_t i = 0; i < n; i++) r->xin[i] = x[i] * c_in;
    } else {
        for (size_t i = 0; i < n; i++) r->xin[i] = x[i] / root;
    }
    sd_status st = sched_run_model(r, r->xin, t);
    if (st) return st;
    const float *o = r->out;
    if (k->p->cfg.prediction == SCHED_PRED_V) {
        float c_out = -sigma / root, c_skip = 1.0f / s2;
        if (k->p->kdiff) for (size_t i = 0; i < n; i++) D[i] = o[i] * c_out + x[i] * c_skip;
        else for (size_t i = 0; i < n; i++) D[i] = o[i] * c_out + x[i] / s2;
    } else {
        for (size_t i = 0; i < n; i++) D[i] = x[i] - sigma * o[i];
    }
    if (k->p->cfg.clip_sample) { /* diffusers' Heun clamps its x̂0 when the config asks */
        float rr = k->p->cfg.clip_sample_range;
        for (size_t i = 0; i < n; i++) D[i] = D[i] < -rr ? -rr : D[i] > rr ? rr : D[i];
    }
    sched_run_denoised(r, D);
    return SD_OK;
}

static void to_d(size_t n, const float *x, const float *D, float sigma, float *d) {
    for (size_t i = 0; i < n; i++) d[i] = (x[i] - D[i]) / sigma;
}

/* exp(lerp(log a, log b, 1/2)) with torch's lerp branch for weight 0.5: end - (end - start)/2. */
static float geo_mid(float start, float end) {
    float ls = logf(start), le = logf(end);
    return expf(le - (le - ls) * 0.5f);
}

void sched_ancestral_step(const sched_plan *p, float sigma, float sigma_next, float *down, float *up) {
    /* diffusers has no eta (= 1, where the clamp never binds), so one formula serves both conventions */
    float eta = p->cfg.eta;
    if (eta == 0.0f) {
        *down = sigma_next;
        *up = 0.0f;
        return;
    }
    float u = eta * sqrtf(sigma_next * sigma_next * (sigma * sigma - sigma_next * sigma_next) / (sigma * sigma));
    if (u > sigma_next) u = sigma_next;
    *up = u;
    *down = sqrtf(sigma_next * sigma_next - u * u);
}

/* Add σ_up·z (z from the noise callback). */
static sd_status add_noise(kctx *k, float *x, float scale) {
    sd_status st = sched_run_noise(k->r, k->z);
    if (st) return st;
    for (size_t i = 0; i < k->n; i++) x[i] += k->z[i] * scale;
    return SD_OK;
}

/* ---- one step of each sampler: x at sigmas[i] -> sigmas[i+1] ---- */

static sd_status step_euler(kctx *k, float *x, int i) {
    const float *sg = k->p->sigmas;
    sd_status st = denoise(k, x, sg[i], k->p->t[i], k->D);
    if (st) return st;
    to_d(k->n, x, k->D, sg[i], k->d);
    float dt = sg[i + 1] - sg[i];
    for (size_t j = 0; j < k->n; j++) x[j] = x[j] + k->d[j] * dt;
    return SD_OK;
}

static sd_status step_euler_a(kctx *k, float *x, int i) {
    const float *sg = k->p->sigmas;
    sd_status st = denoise(k, x, sg[i], k->p->t[i], k->D);
    if (st) return st;
    float down, up;
    sched_ancestral_step(k->p, sg[i], sg[i + 1], &down, &up);
    to_d(k->n, x, k->D, sg[i], k->d);
    float dt = down - sg[i];
    for (size_t j = 0; j < k->n; j++) x[j] = x[j] + k->d[j] * dt;
    /* diffusers draws (and adds σ_up = 0) at the last step too, so the generator advances; k-diffusion does not */
    if (!k->p->kdiff || sg[i + 1] > 0) return add_noise(k, x, up);
    return SD_OK;
}

static sd_status step_heun(kctx *k, float *x, int i) {
    const float *sg = k->p->sigmas;
    size_t n = k->n;
    sd_status st = denoise(k, x, sg[i], k->p->t[i], k->D);
    if (st) return st;
    to_d(n, x, k->D, sg[i], k->d);
    float dt = sg[i + 1] - sg[i];
    if (sg[i + 1] == 0.0f) { /* last interval: plain Euler, one evaluation */
        for (size_t j = 0; j < n; j++) x[j] = x[j] + k->d[j] * dt;
        return SD_OK;
    }
    for (size_t j = 0; j < n; j++) k->x2[j] = x[j] + k->d[j] * dt;
    sched_run_after_call(k->r, k->x2, i + 1); /* diffusers blends after the first-order call too */
    if ((st = denoise(k, k->x2, sg[i + 1], k->p->t[i + 1], k->D2))) return st;
    for (size_t j = 0; j < n; j++) {
        float d2 = (k->x2[j] - k->D2[j]) / sg[i + 1];
        x[j] = x[j] + ((k->d[j] + d2) / 2.0f) * dt;
    }
    return SD_OK;
}

static sd_status step_dpm2(kctx *k, float *x, int i) {
    const float *sg = k->p->sigmas;
    size_t n = k->n;
    sd_status st = denoise(k, x, sg[i], k->p->t[i], k->D);
    if (st) return st;
    to_d(n, x, k->D, sg[i], k->d);
    if (sg[i + 1] == 0.0f) {
        float dt = sg[i + 1] - sg[i];
        for (size_t j = 0; j < n; j++) x[j] = x[j] + k->d[j] * dt;
        return SD_OK;
    }
    /* diffusers lerps from the next σ towards the current one, k-diffusion the other way (last-bit difference) */
    float mid = k->p->kdiff ? geo_mid(sg[i], sg[i + 1]) : geo_mid(sg[i + 1], sg[i]);
    float dt1 = mid - sg[i], dt2 = sg[i + 1] - sg[i];
    for (size_t j = 0; j < n; j++) k->x2[j] = x[j] + k->d[j] * dt1;
    sched_run_after_call(k->r, k->x2, i + 1); /* diffusers blends after the first-order call too */
    if ((st = denoise(k, k->x2, mid, t_of_sigma(k->p, mid), k->D2))) return st;
    for (size_t j = 0; j < n; j++) {
        float d2 = (k->x2[j] - k->D2[j]) / mid;
        x[j] = x[j] + d2 * dt2;
    }
    return SD_OK;
}

static sd_status step_dpm2_a(kctx *k, float *x, int i) {
    const float *sg = k->p->sigmas;
    size_t n = k->n;
    sd_status st = denoise(k, x, sg[i], k->p->t[i], k->D);
    if (st) return st;
    float down, up;
    sched_ancestral_step(k->p, sg[i], sg[i + 1], &down, &up);
    to_d(n, x, k->D, sg[i], k->d);
    if (down == 0.0f || sg[i + 1] == 0.0f) { /* diffusers zeroes the midpoint of the last interval: Euler to 0 */
        float dt = down - sg[i];
        for (size_t j = 0; j < n; j++) x[j] = x[j] + k->d[j] * dt;
        return SD_OK;
    }
    float mid = geo_mid(sg[i], down);
    float dt1 = mid - sg[i], dt2 = down - sg[i];
    for (size_t j = 0; j < n; j++) k->x2[j] = x[j] + k->d[j] * dt1;
    sched_run_after_call(k->r, k->x2, i + 1); /* diffusers blends after the first-order call too */
    if ((st = denoise(k, k->x2, mid, t_of_sigma(k->p, mid), k->D2))) return st;
    for (size_t j = 0; j < n; j++) {
        float d2 = (k->x2[j] - k->D2[j]) / mid;
        x[j] = x[j] + d2 * dt2;
    }
    return add_noise(k, x, up);
}

static sd_status step_dpmpp_2s_a(kctx *k, float *x, int i) {
    const float *sg = k->p->sigmas;
    size_t n = k->n;
    sd_status st = denoise(k, x, sg[i], k->p->t[i], k->D);
    if (st) return st;
    float down, up;
    sched_ancestral_step(k->p, sg[i], sg[i + 1], &down, &up);
    if (down == 0.0f) {
        to_d(n, x, k->D, sg[i], k->d);
        float dt = down - sg[i];
        for (size_t j = 0; j < n; j++) x[j] = x[j] + k->d[j] * dt;
    } else {
        /* DPM-Solver++(2S) in t = -log σ, midpoint r = 1/2 */
        float t = -logf(sg[i]), t_next = -logf(down), h = t_next - t, s = t + 0.5f * h;
        float sig_t = expf(-t), sig_s = expf(-s), sig_next = expf(-t_next);
        float a1 = sig_s / sig_t, b1 = expm1f(-h * 0.5f);
        for (size_t j = 0; j < n; j++) k->x2[j] = a1 * x[j] - b1 * k->D[j];
        if ((st = denoise(k, k->x2, sig_s, t_of_sigma(k->p, sig_s), k->D2))) return st;
        float a2 = sig_next / sig_t, b2 = expm1f(-h);
        for (size_t j = 0; j < n; j++) x[j] = a2 * x[j] - b2 * k->D2[j];
    }
    if (sg[i + 1] > 0) return add_noise(k, x, up);
    return SD_OK;
}

/* ∫_{σ_i}^{σ_i+1} of the j-th Lagrange basis polynomial over nodes σ_i, σ_i-1, ... (order nodes). The integrand
 * has degree <= 3, so 3-point Gauss-Legendre is exact (diffusers/k-diffusion use scipy quad, exact to ~1e-15). */
static double lms_coeff(const float *sg, int order, int i, int j) {
    static const double gx[3] = {-0.77459666924148337704, 0.0, 0.77459666924148337704};
    static const double gw[3] = {5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0};
    double a = sg[i], b = sg[i + 1], sum = 0;
    for (int q = 0; q < 3; q++) {
        double tau = 0.5 * (b - a) * gx[q] + 0.5 * (a + b), prod = 1.0;
        for (int m = 0; m < order; m++)
            if (m != j) prod *= (tau - sg[i - m]) / ((double)sg[i - j] - sg[i - m]);
        sum += gw[q] * prod;
    }
    return sum * 0.5 * (b - a);
}

static sd_status step_lms(kctx *k, float *x, int i, int local) {
    const float *sg = k->p->sigmas;
    size_t n = k->n;
    sd_status st = denoise(k, x, sg[i], k->p->t[i], k->D);
    if (st) return st;
    if (k->nhist == 4) { /* rotate: drop the oldest */
        float *old = k->hist[0];
        for (int q = 0; q < 3; q++) k->hist[q] = k->hist[q + 1];
        k->hist[3] = old;
        k->nhist = 3;
    }
    to_d(n, x, k->D, sg[i], k->hist[k->nhist++]);
    /* k-diffusion runs on the sliced σ list, so an img2img start counts from 0; diffusers uses the absolute step
     * index for the order and then pairs coefficients with however many derivatives it has */
    int order = (k->p->kdiff ? local : i) + 1;
    if (order > 4) order = 4;
    int terms = order < k->nhist ? order : k->nhist;
    float c[4];
    for (int j = 0; j < terms; j++) c[j] = (float)lms_coeff(sg, order, i, j);
    for (size_t q = 0; q < n; q++) {
        float acc = 0.0f;
        for (int j = 0; j < terms; j++) acc += c[j] * k->hist[k->nhist - 1 - j][q];
        x[q] = x[q] + acc;
    }
    return SD_OK;
}

/* k-diffusion sample_dpmpp_2m: σ-space, t = -log σ. */
static sd_status step_dpmpp_2m_k(kctx *k, float *x, int i, int local) {
    const float *sg = k->p->sigmas;
    size_t n = k->n;
    sd_status st = denoise(k, x, sg[i], k->p->t[i], k->D);
    if (st) return st;
    if (sg[i + 1] == 0.0f) {
        for (size_t j = 0; j < n; j++) x[j] = k->D[j];
    } else {
        float t = -logf(sg[i]), t_next = -logf(sg[i + 1]), h = t_next - t;
        float a = expf(-t_next) / expf(-t), b = expm1f(-h);
        if (local == 0) {
            for (size_t j = 0; j < n; j++) x[j] = a * x[j] - b * k->D[j];
        } else {
            float h_last = t - (-logf(sg[i - 1])), rr = h_last / h;
            float c0 = 1.0f + 1.0f / (2.0f * rr), c1 = 1.0f / (2.0f * rr);
            for (size_t j = 0; j < n; j++) x[j] = a * x[j] - b * (c0 * k->D[j] - c1 * k->old[j]);
        }
    }
    float *tmp = k->old;
    k->old = k->D;
    k->D = tmp;
    return SD_OK;
}

/* k-diffusion sample_dpmpp_2m_sde (midpoint) with per-step Gaussian noise in place of its Brownian tree. */
static sd_status step_dpmpp_2m_sde_k(kctx *k, float *x, int i, int local) {
    const float *sg = k->p->sigmas;
    size_t n = k->n;
    float eta = k->p->cfg.eta;
    sd_status st = denoise(k, x, sg[i], k->p->t[i], k->D);
    if (st) return st;
    if (sg[i + 1] == 0.0f) {
        for (size_t j = 0; j < n; j++) x[j] = k->D[j];
    } else {
        float t = -logf(sg[i]), s = -logf(sg[i + 1]), h = s - t, eta_h = eta * h;
        float a = sg[i + 1] / sg[i] * expf(-eta_h), b = -expm1f(-h - eta_h);
        for (size_t j = 0; j < n; j++) x[j] = a * x[j] + b * k->D[j];
        if (local > 0) {
            float h_last = -logf(sg[i]) - (-logf(sg[i - 1])), rr = h_last / h, c = 0.5f * b * (1.0f / rr);
            for (size_t j = 0; j < n; j++) x[j] = x[j] + c * (k->D[j] - k->old[j]);
        }
        if (eta != 0.0f) {
            if ((st = add_noise(k, x, sg[i + 1] * sqrtf(-expm1f(-2.0f * eta_h))))) return st;
        }
    }
    float *tmp = k->old;
    k->old = k->D;
    k->D = tmp;
    return SD_OK;
}

int sched_sigma_space_evals(const sched_plan *p, int start) {
    int evals = 0;
    for (int i = start; i < p->steps; i++) {
        float s = p->sigmas[i], sn = p->sigmas[i + 1], down, up;
        int second = 0;
        switch (p->cfg.sampler) {
        case SCHED_HEUN: case SCHED_DPM2: second = sn != 0.0f; break;
        case SCHED_DPM2_A: sched_ancestral_step(p, s, sn, &down, &up); second = down != 0.0f && sn != 0.0f; break;
        case SCHED_DPMPP_2S_A: sched_ancestral_step(p, s, sn, &down, &up); second = down != 0.0f; break;
        default: break;
        }
        evals += 1 + second;
    }
    return evals;
}

sd_status sched_run_sigma_space(sched_run *r, float *x, int start) {
    const sched_plan *p = r->p;
    size_t n = r->n;
    kctx k = {.r = r, .p = p, .n = n};
    float *buf = malloc(10 * n * sizeof *buf);
    if (!buf) return err_fail(SD_ERR_MEMORY, "sampler: out of memory for %zu latent values", n);
    k.D = buf; k.d = buf + n; k.x2 = buf + 2 * n; k.D2 = buf + 3 * n; k.old = buf + 4 * n; k.z = buf + 5 * n;
    for (int q = 0; q < 4; q++) k.hist[q] = buf + (6 + q) * n;
    sd_status st = SD_OK;
    for (int i = start; i < p->steps && !st; i++) {
        int local = i - start;
        switch (p->cfg.sampler) {
        case SCHED_EULER: st = step_euler(&k, x, i); break;
        case SCHED_EULER_A: st = step_euler_a(&k, x, i); break;
        case SCHED_HEUN: st = step_heun(&k, x, i); break;
        case SCHED_DPM2: st = step_dpm2(&k, x, i); break;
        case SCHED_DPM2_A: st = step_dpm2_a(&k, x, i); break;
        case SCHED_DPMPP_2S_A: st = step_dpmpp_2s_a(&k, x, i); break;
        case SCHED_LMS: st = step_lms(&k, x, i, local); break;
        case SCHED_DPMPP_2M: st = step_dpmpp_2m_k(&k, x, i, local); break;
        case SCHED_DPMPP_2M_SDE: st = step_dpmpp_2m_sde_k(&k, x, i, local); break;
        default: st = err_fail(SD_ERR_UNSUPPORTED, "sampler %s is not a sigma-space sampler", sched_sampler_name(p->cfg.sampler));
        }
        if (!st) {
            sched_run_after_call(r, x, i + 1);
            sched_run_progress(r, x);
        }
    }
    free(buf);
    return st;
}
