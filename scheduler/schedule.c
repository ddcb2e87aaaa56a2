/* schedule.c — training tables, timestep grids and σ schedules with the rounding of torch/numpy/LDM reproduced. */
#include "schedule.h"

#include <math.h>
#include <stddef.h>

#include "../core/error.h"

/* torch.linspace on the CPU is two-sided and its multiply-add is fused (checked against torch 2.15: the unfused
 * formula differs in 145 of the 1000 SD betas). */
void sched_torch_linspace_f32(float a, float b, int n, float *out) {
    if (n <= 0) return;
    if (n == 1) {
        out[0] = a;
        return;
    }
    float step = (b - a) / (float)(n - 1);
    int half = n / 2;
    for (int i = 0; i < n; i++) out[i] = i < half ? fmaf(step, (float)i, a) : fmaf(-step, (float)(n - 1 - i), b);
}

static void torch_linspace_f64(double a, double b, int n, double *out) {
    if (n == 1) {
        out[0] = a;
        return;
    }
    double step = (b - a) / (double)(n - 1);
    int half = n / 2;
    for (int i = 0; i < n; i++) out[i] = i < half ? fma(step, (double)i, a) : fma(-step, (double)(n - 1 - i), b);
}

/* numpy.linspace: start + i·step in float64, the last point set to stop exactly. */
void sched_np_linspace(double a, double b, int n, double *out) {
    if (n <= 0) return;
    if (n == 1) {
        out[0] = a;
        return;
    }
    double step = (b - a) / (double)(n - 1);
    for (int i = 0; i < n; i++) out[i] = (double)i * step + a;
    out[n - 1] = b;
}

/* numpy.arange(start, 0, -step) for a float step, as numpy fills it: v0 = start, v1 = start + delta, then
 * v_i = start + i·(v1 - v0). Capped at `cap` entries: for 62 values of n in 1..1000 (n = 61 first) numpy's length
 * ceil(T / (T/n)) comes out n + 1 and diffusers' trailing grid gains a timestep -1; we keep n. */
static int np_arange_down(double start, double step, int cap, double *out) {
    int len = (int)ceil((0.0 - start) / -step);
    if (len > cap) len = cap;
    double v1 = start - step, delta = v1 - start;
    for (int i = 0; i < len; i++) out[i] = i == 0 ? start : i == 1 ? v1 : start + (double)i * delta;
    return len;
}

/* --------------------------------------------------------------------------------------------------------------- */

/* σ and log σ of every ᾱ (σ = sqrt((1-ᾱ)/ᾱ) in float32, as torch computes it). */
static void table_derive(sched_table *tb) {
    for (int t = 0; t < tb->T; t++) {
        float ac = tb->alphas_cumprod[t];
        tb->sigmas[t] = sqrtf((1.0f - ac) / ac);
        tb->log_sigmas64[t] = log((double)tb->sigmas[t]);
        tb->log_sigmas[t] = (float)tb->log_sigmas64[t];
    }
}

/* GLIDE's cosine schedule: diffusers' betas_for_alpha_bar (Python floats); the LDM code's cosine schedule is the
 * same ratio in float64. */
static double cosine_alpha_bar(double t) {
    double c = cos((t + 0.008) / 1.008 * M_PI / 2);
    return c * c;
}

static double cosine_beta(int i, int T) {
    double b = 1 - cosine_alpha_bar((double)(i + 1) / T) / cosine_alpha_bar((double)i / T);
    return b < 0.999 ? b : 0.999;
}

sd_status sched_table_init(sched_table *tb, int T, double beta_start, double beta_end, sched_beta beta, int ldm_float64) {
    if (T < 2 || T > SCHED_MAX_TRAIN)
        return err_fail(SD_ERR_ARG, "num_train_timesteps %d is out of range (2..%d)", T, SCHED_MAX_TRAIN);
    if ((unsigned)beta >= SCHED_BETA_COUNT) return err_fail(SD_ERR_ARG, "beta schedule %d is out of range", (int)beta);
    if (beta != SCHED_BETA_SQUAREDCOS && !(beta_start > 0 && beta_end > beta_start && beta_end < 1))
        return err_fail(SD_ERR_ARG, "beta range %g..%g is invalid (need 0 < beta_start < beta_end < 1)", beta_start, beta_end);
    tb->T = T;
    if (beta == SCHED_BETA_SQUAREDCOS) {
        double acc = 1.0;
        for (int t = 0; t < T; t++) {
            double bt = cosine_beta(t, T);
            if (ldm_float64) acc *= 1.0 - bt;
            else acc *= (double)(1.0f - (float)bt); /* torch.tensor(betas, float32), then 1 - betas in float32 */
            tb->alphas_cumprod[t] = (float)acc;
        }
    } else if (ldm_float64) {
        /* ldm make_beta_schedule: torch.linspace(float64)**2, numpy float64 cumprod, stored as float32 */
        double b[SCHED_MAX_TRAIN], acc = 1.0;
        if (beta == SCHED_BETA_SCALED_LINEAR) torch_linspace_f64(sqrt(beta_start), sqrt(beta_end), T, b);
        else torch_linspace_f64(beta_start, beta_end, T, b);
        for (int t = 0; t < T; t++) {
            double bt = beta == SCHED_BETA_SCALED_LINEAR ? b[t] * b[t] : b[t];
            acc *= 1.0 - bt;
            tb->alphas_cumprod[t] = (float)acc;
        }
    } else {
        /* diffusers: float32 linspace (**2), alphas = 1 - betas in float32, cumprod with a double accumulator */
        float b[SCHED_MAX_TRAIN];
        double acc = 1.0;
        if (beta == SCHED_BETA_SCALED_LINEAR) sched_torch_linspace_f32((float)sqrt(beta_start), (float)sqrt(beta_end), T, b);
        else sched_torch_linspace_f32((float)beta_start, (float)beta_end, T, b);
        for (int t = 0; t < T; t++) {
            float bt = beta == SCHED_BETA_SCALED_LINEAR ? b[t] * b[t] : b[t];
            float alpha = 1.0f - bt;
            acc *= (double)alpha;
            tb->alphas_cumprod[t] = (float)acc;
        }
    }
    table_derive(tb);
    return SD_OK;
}

void sched_table_zero_snr(sched_table *tb, sched_snr mode) {
    if (mode == SCHED_SNR_NONE) return;
    int T = tb->T;
    float sq[SCHED_MAX_TRAIN];
    for (int t = 0; t < T; t++) sq[t] = sqrtf(tb->alphas_cumprod[t]);
    float s0 = sq[0], sT = sq[T - 1], scale = s0 / (s0 - sT);
    for (int t = 0; t < T; t++) sq[t] = (sq[t] - sT) * scale;
    if (mode == SCHED_SNR_A1111) {
        for (int t = 0; t < T; t++) tb->alphas_cumprod[t] = sq[t] * sq[t];
        tb->alphas_cumprod[T - 1] = 4.8973451890853435e-08f;
    } else {
        /* betas from the rescaled ᾱ, then the scheduler's own alphas = 1 - betas and cumprod (double accumulator) */
        double acc = 1.0;
        float prev = 0;
        for (int t = 0; t < T; t++) {
            float bar = sq[t] * sq[t], alpha = t == 0 ? bar : bar / prev, betat = 1.0f - alpha;
            prev = bar;
            acc *= (double)(1.0f - betat);
            tb->alphas_cumprod[t] = (float)acc;
        }
        if (mode == SCHED_SNR_DIFFUSERS_CLAMP) tb->alphas_cumprod[T - 1] = 0x1p-24f;
    }
    table_derive(tb);
}

double sched_sigma_to_t(const sched_table *tb, double sigma) {
    double ls = log(sigma > 1e-10 ? sigma : 1e-10);
    int low = 0; /* the last t with log σ_t <= log σ (0 if none), at most T-2 */
    for (int t = 0; t < tb->T; t++)
        if (ls - tb->log_sigmas64[t] >= 0) low = t;
    if (low > tb->T - 2) low = tb->T - 2;
    double lo = tb->log_sigmas64[low], hi = tb->log_sigmas64[low + 1];
    double w = (lo - ls) / (lo - hi);
    w = w < 0 ? 0 : w > 1 ? 1 : w;
    return (1.0 - w) * low + w * (low + 1);
}

float sched_sigma_to_t_f32(const sched_table *tb, float sigma) {
    float ls = logf(sigma);
    int low = 0;
    for (int t = 0; t < tb->T; t++)
        if (ls - tb->log_sigmas[t] >= 0.0f) low = t;
    if (low > tb->T - 2) low = tb->T - 2;
    float lo = tb->log_sigmas[low], hi = tb->log_sigmas[low + 1];
    float w = (lo - ls) / (lo - hi);
    w = w < 0.0f ? 0.0f : w > 1.0f ? 1.0f : w;
    return (1.0f - w) * (float)low + w * (float)(low + 1);
}

float sched_t_to_sigma_f32(const sched_table *tb, float t) {
    int lo = (int)floorf(t), hi = (int)ceilf(t);
    if (lo < 0) lo = 0;
    if (hi > tb->T - 1) hi = tb->T - 1;
    float w = t - truncf(t);
    return expf((1.0f - w) * tb->log_sigmas[lo] + w * tb->log_sigmas[hi]);
}

double sched_sigma_interp(const sched_table *tb, double t) {
    if (!(t > 0)) return tb->sigmas[0];
    if (t >= tb->T - 1) return tb->sigmas[tb->T - 1];
    int j = (int)floor(t);
    if ((double)j == t) return tb->sigmas[j];
    double slope = (double)tb->sigmas[j + 1] - (double)tb->sigmas[j];
    return slope * (t - j) + tb->sigmas[j];
}

/* --------------------------------------------------------------------------------------------------------------- */

void sched_grid_float(int T, int n, sched_spacing sp, int steps_offset, float *out) {
    double v[SCHED_MAX_TRAIN];
    if (sp == SCHED_SPACING_LEADING) {
        int ratio = T / n;
        for (int i = 0; i < n; i++) out[i] = (float)((n - 1 - i) * ratio) + (float)steps_offset;
    } else if (sp == SCHED_SPACING_TRAILING) {
        int len = np_arange_down(T, (double)T / n, n, v);
        for (int i = 0; i < n; i++) out[i] = (float)nearbyint(v[i < len ? i : len - 1]) - 1.0f;
    } else {
        sched_np_linspace(0, T - 1, n, v);
        for (int i = 0; i < n; i++) out[i] = (float)v[n - 1 - i];
    }
}

void sched_grid_int(int T, int n, sched_spacing sp, int steps_offset, int *out) {
    double v[SCHED_MAX_TRAIN];
    if (sp == SCHED_SPACING_LEADING) {
        int ratio = T / n;
        for (int i = 0; i < n; i++) out[i] = (n - 1 - i) * ratio + steps_offset;
    } else if (sp == SCHED_SPACING_TRAILING) {
        int len = np_arange_down(T, (double)T / n, n, v);
        for (int i = 0; i < n; i++) out[i] = (int)nearbyint(v[i < len ? i : len - 1]) - 1;
    } else {
        sched_np_linspace(0, T - 1, n, v);
        for (int i = 0; i < n; i++) out[i] = (int)nearbyint(v[n - 1 - i]);
    }
}

void sched_grid_int_plus1(int T, int n, sched_spacing sp, int steps_offset, int *out) {
    double v[SCHED_MAX_TRAIN + 1];
    if (sp == SCHED_SPACING_LEADING) {
        int ratio = T / (n + 1);
        for (int i = 0; i < n; i++) out[i] = (n - i) * ratio + steps_offset;
    } else if (sp == SCHED_SPACING_TRAILING) {
        sched_grid_int(T, n, sp, steps_offset, out);
    } else {
        sched_np_linspace(0, T - 1, n + 1, v);
        for (int i = 0; i < n; i++) out[i] = (int)nearbyint(v[n - i]);
    }
}

/* --------------------------------------------------------------------------------------------------------------- */

void sched_karras_f64(int n, double sigma_min, double sigma_max, double *out) {
    double ramp[SCHED_MAX_TRAIN + 1];
    sched_np_linspace(0.0, 1.0, n, ramp);
    double lo = pow(sigma_min, 1.0 / 7.0), hi = pow(sigma_max, 1.0 / 7.0);
    for (int i = 0; i < n; i++) out[i] = pow(hi + ramp[i] * (lo - hi), 7.0);
}

void sched_exponential_f64(int n, double sigma_min, double sigma_max, double *out) {
    sched_np_linspace(log(sigma_max), log(sigma_min), n, out);
    for (int i = 0; i < n; i++) out[i] = exp(out[i]);
}

void sched_karras_f32(int n, double sigma_min, double sigma_max, float *out) {
    float ramp[SCHED_MAX_TRAIN + 1];
    sched_torch_linspace_f32(0.0f, 1.0f, n, ramp);
    double lo = pow(sigma_min, 1.0 / 7.0), hi = pow(sigma_max, 1.0 / 7.0);
    /* torch: python scalars meet a float32 tensor as float32 */
    float diff = (float)(lo - hi), base = (float)hi;
    for (int i = 0; i < n; i++) out[i] = powf(ramp[i] * diff + base, 7.0f);
}

void sched_exponential_f32(int n, double sigma_min, double sigma_max, float *out) {
    sched_torch_linspace_f32((float)log(sigma_max), (float)log(sigma_min), n, out);
    for (int i = 0; i < n; i++) out[i] = expf(out[i]);
}

/* ln B(a, b) and the continued fraction of the regularized incomplete beta function (modified Lentz). */
static double beta_cf(double x, double a, double b) {
    const double tiny = 1e-300;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 500; m++) {
        double aa = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < 1e-16) break;
    }
    return h;
}

static double beta_cdf(double x, double a, double b) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1) / (a + b + 2)) return front * beta_cf(x, a, b) / a;
    return 1.0 - front * beta_cf(1 - x, b, a) / b;
}

double sched_beta_ppf(double p, double a, double b) {
    if (!(p > 0)) return 0;
    if (!(p < 1)) return 1;
    double lo = 0, hi = 1; /* the CDF is monotone: bisection to the last bit */
    for (int i = 0; i < 200 && hi - lo > 0; i++) {
        double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi) break;
        if (beta_cdf(mid, a, b) < p) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

void sched_beta_sigmas_f64(int n, double sigma_min, double sigma_max, double *out) {
    double ramp[SCHED_MAX_TRAIN + 1];
    sched_np_linspace(0.0, 1.0, n, ramp);
    for (int i = 0; i < n; i++) out[i] = sigma_min + sched_beta_ppf(1 - ramp[i], 0.6, 0.6) * (sigma_max - sigma_min);
}

void sched_kdiff_discrete(const sched_table *tb, int n, float *out) {
    float t[SCHED_MAX_TRAIN + 1];
    sched_torch_linspace_f32((float)(tb->T - 1), 0.0f, n, t);
    for (int i = 0; i < n; i++) out[i] = sched_t_to_sigma_f32(tb, t[i]);
}

void sched_kdiff_sgm_uniform(const sched_table *tb, int n, float *out) {
    float t[SCHED_MAX_TRAIN + 2];
    float start = sched_sigma_to_t_f32(tb, tb->sigmas[tb->T - 1]), end = sched_sigma_to_t_f32(tb, tb->sigmas[0]);
    sched_torch_linspace_f32(start, end, n + 1, t);
    for (int i = 0; i < n; i++) out[i] = sched_t_to_sigma_f32(tb, t[i]);
}
