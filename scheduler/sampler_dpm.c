/* sampler_dpm.c — diffusers' exponential-integrator multistep solvers in DDPM space: DPMSolverMultistep
 * (dpmsolver++ order 2 midpoint, and sde-dpmsolver++) and UniPCMultistep (bh2, order 2, predict_x0), with their
 * warm-up and lower-order-final rules. Per-σ quantities follow diffusers: α = 1/sqrt(σ²+1), σ' = σα,
 * λ = log α - log σ'. The model sees x_t unscaled and an integer timestep. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "sampler_internal.h"

typedef struct lam { float alpha, sigma, lambda; } lam;

static lam lam_of(float s) {
    lam l;
    l.alpha = 1.0f / sqrtf(s * s + 1.0f);
    l.sigma = s * l.alpha;
    l.lambda = logf(l.alpha) - logf(l.sigma); /* +inf at σ = 0 */
    return l;
}

/* dpmsolver++ converts every output to the x0 prediction at the current σ. */
static void to_x0(const sched_plan *p, size_t n, const float *x, const float *o, float s, float *m) {
    lam l = lam_of(s);
    for (size_t i = 0; i < n; i++)
        m[i] = p->cfg.prediction == SCHED_PRED_V ? l.alpha * x[i] - l.sigma * o[i] : (x[i] - l.sigma * o[i]) / l.alpha;
}

static sd_status run_dpmpp(sched_run *r, float *x, int start, float *buf) {
    const sched_plan *p = r->p;
    size_t n = r->n;
    int N = p->steps, sde = p->cfg.sampler == SCHED_DPMPP_2M_SDE, lower = 0;
    float *m0 = buf, *m1 = buf + n, *z = buf + 2 * n;
    for (int i = start; i < N; i++) {
        sd_status st = sched_run_model(r, x, p->t[i]);
        if (st) return st;
        float *tmp = m1; /* history shift: m1 <- m0, m0 <- new */
        m1 = m0;
        m0 = tmp;
        to_x0(p, n, x, r->out, p->sigmas[i], m0);
        if (sde && (st = sched_run_noise(r, z))) return st; /* drawn every step, the last included */
        /* final σ is 0, so the last step is first order (x' = x0); the first step of a run too (warm-up) */
        int order = (lower < 1 || i == N - 1) ? 1 : 2;
        float s_next = p->sigmas[i + 1];
        if (s_next == 0.0f) {
            memcpy(x, m0, n * sizeof *x);
        } else {
            lam lt = lam_of(s_next), l0 = lam_of(p->sigmas[i]);
            float h = lt.lambda - l0.lambda;
            if (!sde) {
                float a = lt.sigma / l0.sigma, b = lt.alpha * (expf(-h) - 1.0f);
                if (order == 1) {
                    for (size_t j = 0; j < n; j++) x[j] = a * x[j] - b * m0[j];
                } else {
                    lam l1 = lam_of(p->sigmas[i - 1]);
                    float r0 = (l0.lambda - l1.lambda) / h, inv = 1.0f / r0;
                    for (size_t j = 0; j < n; j++) x[j] = a * x[j] - b * m0[j] - 0.5f * b * (inv * (m0[j] - m1[j]));
                }
            } else {
                float a = lt.sigma / l0.sigma * expf(-h), b = lt.alpha * (1.0f - expf(-2.0f * h));
                float c = lt.sigma * sqrtf(1.0f - expf(-2.0f * h));
                if (order == 1) {
                    for (size_t j = 0; j < n; j++) x[j] = a * x[j] + b * m0[j] + c * z[j];
                } else {
                    lam l1 = lam_of(p->sigmas[i - 1]);
                    float r0 = (l0.lambda - l1.lambda) / h, inv = 1.0f / r0;
                    for (size_t j = 0; j < n; j++) x[j] = a * x[j] + b * m0[j] + 0.5f * b * (inv * (m0[j] - m1[j])) + c * z[j];
                }
            }
        }
        if (lower < 2) lower++;
        sched_run_after_call(r, x, i + 1);
        sched_run_progress(r, x);
    }
    return SD_OK;
}

/* UniPC coefficients for order 1 or 2 between λ_s0 and λ_t with (for order 2) the older point λ_s1:
 * h_phi_1 = expm1(-h), B_h = expm1(-h) (bh2), b_i = h_phi_i·i!/B_h; the order-2 corrector solves R ρ = b. */
typedef struct unic { float a, hphi1, bh, rho[2], inv_r1; } unic;

static unic unipc_coeffs(float s_t, float s_0, float s_1, int order, int corrector) {
    lam lt = lam_of(s_t), l0 = lam_of(s_0);
    float h = lt.lambda - l0.lambda, hh = -h;
    unic u = {0};
    u.a = lt.sigma / l0.sigma;
    u.hphi1 = expm1f(hh);
    u.bh = expm1f(hh);
    float hphi_k = u.hphi1 / hh - 1.0f, b[2] = {0, 0};
    float fact = 1.0f;
    for (int i = 1; i <= order; i++) {
        b[i - 1] = hphi_k * fact / u.bh;
        fact *= (float)(i + 1);
        hphi_k = hphi_k / hh - 1.0f / fact;
    }
    float r1 = 1.0f;
    if (order == 2) {
        lam l1 = lam_of(s_1);
        r1 = (l1.lambda - l0.lambda) / h;
        u.inv_r1 = 1.0f / r1;
    }
    if (!corrector) {
        u.rho[0] = 0.5f; /* diffusers hard-codes ρ = 1/2 for the order-2 predictor */
    } else if (order == 1) {
        u.rho[0] = 0.5f;
    } else {
        /* [[1, 1], [r1, 1]] ρ = b */
        u.rho[0] = (b[0] - b[1]) / (1.0f - r1);
        u.rho[1] = b[0] - u.rho[0];
    }
    return u;
}

static sd_status run_unipc(sched_run *r, float *x, int start, float *buf) {
    const sched_plan *p = r->p;
    size_t n = r->n;
    int N = p->steps, lower = 0, prev_order = 0, have_last = 0;
    float *m0 = buf, *m1 = buf + n, *mt = buf + 2 * n, *last = buf + 3 * n;
    for (int i = start; i < N; i++) {
        sd_status st = sched_run_model(r, x, p->t[i]);
        if (st) return st;
        to_x0(p, n, x, r->out, p->sigmas[i], mt);
        if (have_last) { /* corrector UniC: redo the previous step with the new output */
            int o = prev_order;
            unic u = unipc_coeffs(p->sigmas[i], p->sigmas[i - 1], o == 2 ? p->sigmas[i - 2] : 0, o, 1);
            float lt_alpha = lam_of(p->sigmas[i]).alpha;
            for (size_t j = 0; j < n; j++) {
                float corr = 0.0f;
                if (o == 2) corr = u.rho[0] * ((m1[j] - m0[j]) * u.inv_r1);
                float base = u.a * last[j] - lt_alpha * u.hphi1 * m0[j];
                float d1t = mt[j] - m0[j];
                x[j] = base - lt_alpha * u.bh * (corr + u.rho[o == 2 ? 1 : 0] * d1t);
            }
        }
        float *tmp = m1; /* history shift */
        m1 = m0;
        m0 = mt;
        mt = tmp;
        int order = N - i < 2 ? N - i : 2; /* lower_order_final */
        if (order > lower + 1) order = lower + 1;
        memcpy(last, x, n * sizeof *x);
        have_last = 1;
        /* predictor UniP */
        float s_next = p->sigmas[i + 1];
        unic u = unipc_coeffs(s_next, p->sigmas[i], order == 2 ? p->sigmas[i - 1] : 0, order, 0);
        float lt_alpha = lam_of(s_next).alpha;
        for (size_t j = 0; j < n; j++) {
            float base = u.a * x[j] - lt_alpha * u.hphi1 * m0[j];
            float res = order == 2 ? u.rho[0] * ((m1[j] - m0[j]) * u.inv_r1) : 0.0f;
            x[j] = base - lt_alpha * u.bh * res;
        }
        prev_order = order;
        if (lower < 2) lower++;
        sched_run_after_call(r, x, i + 1);
        sched_run_progress(r, x);
    }
    return SD_OK;
}

sd_status sched_run_dpm_family(sched_run *r, float *x, int start) {
    size_t n = r->n;
    float *buf = malloc(4 * n * sizeof *buf);
    if (!buf) return err_fail(SD_ERR_MEMORY, "sampler: out of memory for %zu latent values", n);
    sd_status st = r->p->cfg.sampler == SCHED_UNIPC ? run_unipc(r, x, start, buf) : run_dpmpp(r, x, start, buf);
    free(buf);
    return st;
}
