/* cpu_norm.c — GroupNorm (+ fused SiLU) and LayerNorm on channels-last data, parallel over contiguous rows. */
#include "cpu_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* GroupNorm statistics are per (sample, group) over H·W rows with C/G channels each, i.e. strided in NHWC.
 * So the first pass sums per channel over contiguous row chunks (in f32 over short runs of rows, of values
 * shifted by the sample's first row to avoid cancellation, folded into doubles per chunk); the channel means
 * and squared deviations are then combined per group exactly (parallel-variance formula), and the second
 * pass applies y = (x - mean_g)·rstd_g·gamma_c + beta_c (+ SiLU) over row chunks. */
#define GN_RUN 64 /* rows summed in f32 before folding into doubles */

void cpu_group_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, int groups, float eps, int silu, be_tensor *y) {
    cpu_impl *c = b->impl;
    double t0 = c->profile ? cpu_now() : 0;
    const float *xs = x->data, *g = cpu_vec(gamma), *bt = cpu_vec(beta);
    float *ys = y->data;
    int N = x->n, C = x->c, cpg = C / groups, T = c->threads;
    size_t hw = (size_t)x->h * x->w;
    /* chunks of rows per sample: enough for every thread, each a whole number of GN_RUN runs */
    size_t runs = (hw + GN_RUN - 1) / GN_RUN;
    int per = (int)(runs < (size_t)4 * T ? runs : (size_t)4 * T);
    size_t chunk_rows = (runs + per - 1) / per * GN_RUN;
    per = (int)((hw + chunk_rows - 1) / chunk_rows);
    int tasks = N * per;
    double *part = malloc((size_t)tasks * 2 * C * sizeof(double));
    float *coef = malloc((size_t)N * 3 * C * sizeof(float)); /* per sample: mean, scale, shift per channel */
    float *fbuf = malloc((size_t)T * 2 * C * sizeof(float));
    if (!part || !coef || !fbuf) {
        free(part); free(coef); free(fbuf);
        be_set_error(b, SD_ERR_MEMORY, "group_norm: out of memory");
        return;
    }
#pragma omp parallel for schedule(static) num_threads(T) if (hw * C * N > 32768)
    for (int task = 0; task < tasks; task++) {
        int n = task / per;
        size_t r0 = (size_t)(task % per) * chunk_rows, r1 = r0 + chunk_rows < hw ? r0 + chunk_rows : hw;
        const float *base = xs + (size_t)n * hw * C, *shift = base;
        float *s1 = fbuf + (size_t)omp_get_thread_num() * 2 * C, *s2 = s1 + C;
        double *d1 = part + (size_t)task * 2 * C, *d2 = d1 + C;
        memset(d1, 0, 2 * C * sizeof(double));
        for (size_t r = r0; r < r1; r += GN_RUN) {
            int len = (int)(r1 - r < GN_RUN ? r1 - r : GN_RUN);
            memset(s1, 0, 2 * C * sizeof(float));
            cpu_shifted_moments(base + r * C, C, len, shift, s1, s2, C);
            for (int k = 0; k < C; k++) { d1[k] += s1[k]; d2[k] += s2[k]; }
        }
    }
    for (int n = 0; n < N; n++) {
        const float *shift = xs + (size_t)n * hw * C;
        for (int gi = 0; gi < groups; gi++) {
            /* channel means and squared deviations (shifted sums are exact enough: values are near the shift) */
            double gsum = 0;
            for (int k = gi * cpg; k < (gi + 1) * cpg; k++) {
                double s = 0;
                for (int p = 0; p < per; p++) s += part[((size_t)n * per + p) * 2 * C + k];
                gsum += shift[k] + s / hw;
            }
            double gmean = gsum / cpg, m2 = 0;
            for (int k = gi * cpg; k < (gi + 1) * cpg; k++) {
                double s = 0, q = 0;
                for (int p = 0; p < per; p++) {
                    s += part[((size_t)n * per + p) * 2 * C + k];
                    q += part[((size_t)n * per + p) * 2 * C + C + k];
                }
                double cm = shift[k] + s / hw, cm2 = q - s * s / hw;
                if (cm2 < 0) cm2 = 0;
                m2 += cm2 + (double)hw * (cm - gmean) * (cm - gmean);
            }
            double rstd = 1.0 / sqrt(m2 / ((double)hw * cpg) + eps);
            for (int k = gi * cpg; k < (gi + 1) * cpg; k++) {
                float *cf = coef + (size_t)n * 3 * C;
                cf[k] = (float)gmean;
                cf[C + k] = (float)rstd * (g ? g[k] : 1.0f);
                cf[2 * C + k] = bt ? bt[k] : 0.0f;
            }
        }
    }
    size_t rows = (size_t)N * hw;
#pragma omp parallel for schedule(static) num_threads(T) if (rows * C > 32768)
    for (size_t r = 0; r < rows; r++) {
        const float *cf = coef + (r / hw) * 3 * C;
        cpu_affine_row(xs + r * C, cf, cf + C, cf + 2 * C, silu, ys + r * C, C);
    }
    free(part);
    free(coef);
    free(fbuf);
    if (c->profile) { c->prof_s[PROF_GN] += cpu_now() - t0; c->prof_calls[PROF_GN]++; }
}

void cpu_layer_norm(be *b, const be_tensor *x, const be_weight *gamma, const be_weight *beta, float eps, be_tensor *y) {
    cpu_impl *c = b->impl;
    double t0 = c->profile ? cpu_now() : 0;
    const float *xs = x->data, *g = cpu_vec(gamma), *bt = cpu_vec(beta);
    float *ys = y->data;
    int C = x->c;
    size_t rows = (size_t)x->n * x->h * x->w;
#pragma omp parallel for schedule(static) num_threads(c->threads) if (rows * C > 32768)
    for (size_t r = 0; r < rows; r++) cpu_layer_norm_row(xs + r * C, g, bt, eps, ys + r * C, C);
    if (c->profile) { c->prof_s[PROF_LN] += cpu_now() - t0; c->prof_calls[PROF_LN]++; }
}
