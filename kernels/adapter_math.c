/* adapter_math.c — the weight update of one adapter module (formulas in adapter.h), in f32 on the host: GEMMs
 * through OpenBLAS in fixed 64-row blocks spread over OpenMP threads, so the result of every element is the
 * same whatever the thread count (a merge repeated in a fresh process gives the same bits). */
#include "adapter.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

#define ROW_BLOCK 64

/* c [m, n] = alpha * a [m, k] @ b [k, n] + beta * c, row-major; b transposed when bt ([n, k]), a when at ([k, m]). */
static void gemm(int m, int n, int k, float alpha, const float *a, int at, const float *b, int bt, float beta, float *c) {
    int blocks = (m + ROW_BLOCK - 1) / ROW_BLOCK;
#pragma omp parallel for schedule(dynamic, 1) if (2.0 * m * n * k > 4e6)
    for (int i = 0; i < blocks; i++) {
        int r0 = i * ROW_BLOCK, r = m - r0 < ROW_BLOCK ? m - r0 : ROW_BLOCK;
        const float *ai = at ? a + r0 : a + (size_t)r0 * k;
        cblas_sgemm(CblasRowMajor, at ? CblasTrans : CblasNoTrans, bt ? CblasTrans : CblasNoTrans, r, n, k, alpha, ai, at ? m : k, b,
                    bt ? k : n, beta, c + (size_t)r0 * n, n);
    }
}

static float *load(const ad_file *a, const st_tensor *t, sd_status *st) {
    float *p = malloc((t->numel ? t->numel : 1) * sizeof *p);
    if (!p) {
        *st = err_fail(SD_ERR_MEMORY, "out of memory reading \"%s\"", t->name);
        return NULL;
    }
    if ((*st = st_read_f32(a->f, t, p)) != SD_OK) {
        free(p);
        return NULL;
    }
    return p;
}

static int64_t dim(const st_tensor *t, int i) { return i < t->ndim ? t->shape[i] : 1; }
static int64_t taps(const st_tensor *t) { return dim(t, 2) * dim(t, 3); }

/* LyCORIS' older DoRA layout [1, in, ...]: one magnitude per input channel; [out, 1, ...] and PEFT's vectors are per output row. */
static int dora_per_in(const ad_module *m, int out, int in) {
    return !m->dora_peft && out > 1 && dim(m->dora, 0) == 1 && m->dora->numel == in;
}

/* LoKr's factor sizes: w1 [A, C]; w2 [B, D, taps]. */
static void lokr_sizes(const ad_module *m, int64_t *A, int64_t *C, int64_t *B, int64_t *D, int64_t *T) {
    *A = m->w1 ? dim(m->w1, 0) : dim(m->w1a, 0);
    *C = m->w1 ? dim(m->w1, 1) : dim(m->w1b, 1);
    if (m->w2) {
        *B = dim(m->w2, 0), *D = dim(m->w2, 1), *T = taps(m->w2);
    } else if (m->t2) {
        *B = dim(m->w2a, 1), *D = dim(m->w2b, 1), *T = taps(m->t2);
    } else {
        *B = dim(m->w2a, 0), *D = m->w2b->ndim == 4 ? dim(m->w2b, 1) : -1, *T = m->w2b->ndim == 4 ? taps(m->w2b) : -1;
    }
}

sd_status ad_check(const ad_file *a, const ad_module *m, int out, int in, int kh, int kw) {
    int64_t K = (int64_t)in * kh * kw, r = m->rank, T = (int64_t)kh * kw;
    int ok = 1;
    switch (m->type) {
    case AD_LORA:
        ok = m->up->numel == out * r && (m->mid ? m->down->numel == r * in && dim(m->mid, 2) == kh && dim(m->mid, 3) == kw
                                                : m->down->numel == r * K && (m->down->ndim == 2 || (dim(m->down, 2) == kh && dim(m->down, 3) == kw)));
        break;
    case AD_LOHA:
        for (int k = 0; k < 2 && ok; k++) {
            const st_tensor *wa = k ? m->w2a : m->w1a, *wb = k ? m->w2b : m->w1b, *t = k ? m->t2 : m->t1;
            ok = t ? dim(wa, 1) == out && dim(wb, 1) == in && dim(t, 2) == kh && dim(t, 3) == kw
                   : dim(wa, 0) == out && wb->numel == dim(wb, 0) * K;
        }
        break;
    case AD_LOKR: {
        int64_t A, C, B, D, TT;
        lokr_sizes(m, &A, &C, &B, &D, &TT);
        if (D < 0 && C > 0 && in % C == 0) D = in / C, TT = m->w2b->numel / (dim(m->w2b, 0) * D);
        ok = A * B == out && C * D == in && TT == T;
        break;
    }
    }
    if (ok && m->dora) {
        ok = m->dora->numel == out || dora_per_in(m, out, in);
    }
    if (ok) return SD_OK;
    const st_tensor *show = m->type == AD_LORA ? m->down : m->type == AD_LOHA ? m->w1b : m->w1 ? m->w1 : m->w1a;
    char s[96] = "";
    for (int i = 0; i < show->ndim; i++) snprintf(s + strlen(s), sizeof s - strlen(s), i ? ", %lld" : "%lld", (long long)show->shape[i]);
    return err_fail(SD_ERR_MODEL, "%s: module \"%s\" (%s, \"%s\" [%s]) does not fit a layer of shape [%d, %d, %d, %d]", st_path(a->f), m->name,
                    ad_type_name(m), show->name, s, out, in, kh, kw);
}

/* dst [out, in, T] <- Σ_i Σ_j core[i, j, t] · wa[i, p] · wb[j, q] (the Tucker rebuilds of LoCon, LoHa and LoKr: wa [r, out],
 * wb [r, in], core [r, r, T]), one GEMM pair per tap. */
static sd_status tucker(const float *core, const float *wa, const float *wb, int r, int out, int in, int T, float *dst) {
    float *ct = malloc((size_t)r * r * sizeof *ct), *tmp = malloc((size_t)r * in * sizeof *tmp), *tap = malloc((size_t)out * in * sizeof *tap);
    if (!ct || !tmp || !tap) {
        free(ct), free(tmp), free(tap);
        return err_fail(SD_ERR_MEMORY, "out of memory");
    }
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < r * r; i++) ct[i] = core[(size_t)i * T + t];
        gemm(r, in, r, 1.0f, ct, 0, wb, 0, 0.0f, tmp);      /* [r_i, in] = core_t [r_i, r_j] @ wb [r_j, in] */
        gemm(out, in, r, 1.0f, wa, 1, tmp, 0, 0.0f, tap);   /* [out, in] = wa^T [out, r_i] @ tmp */
        for (size_t i = 0; i < (size_t)out * in; i++) dst[i * T + t] = tap[i];
    }
    free(ct), free(tmp), free(tap);
    return SD_OK;
}

/* dst = ΔW (unscaled) [out, in * T]. */
static sd_status delta(const ad_file *a, const ad_module *m, int out, int in, int T, float *dst) {
    sd_status st = SD_OK;
    int r = m->rank;
    size_t n = (size_t)out * in * T;
    if (m->type == AD_LORA) {
        float *u = load(a, m->up, &st), *d = u ? load(a, m->down, &st) : NULL, *c = d && m->mid ? load(a, m->mid, &st) : NULL;
        if (d && (!m->mid || c)) {
            if (!m->mid) {
                gemm(out, in * T, r, 1.0f, u, 0, d, 0, 0.0f, dst);
            } else { /* up [out, r] is wa^T: transpose it into [r, out] */
                float *ut = malloc((size_t)r * out * sizeof *ut);
                if (!ut) st = err_fail(SD_ERR_MEMORY, "out of memory");
                else {
                    for (int o = 0; o < out; o++)
                        for (int i = 0; i < r; i++) ut[(size_t)i * out + o] = u[(size_t)o * r + i];
                    st = tucker(c, ut, d, r, out, in, T, dst);
                }
                free(ut);
            }
        }
        free(u), free(d), free(c);
        return st;
    }
    if (m->type == AD_LOHA) {
        float *second = malloc(n * sizeof *second);
        if (!second) return err_fail(SD_ERR_MEMORY, "out of memory");
        for (int k = 0; k < 2 && st == SD_OK; k++) {
            const st_tensor *ta = k ? m->w2a : m->w1a, *tb = k ? m->w2b : m->w1b, *tt = k ? m->t2 : m->t1;
            float *wa = load(a, ta, &st), *wb = wa ? load(a, tb, &st) : NULL, *c = wb && tt ? load(a, tt, &st) : NULL;
            float *to = k ? second : dst;
            if (wb && tt && c) st = tucker(c, wa, wb, (int)dim(tt, 0), out, in, T, to);
            else if (wb && !tt) gemm(out, in * T, (int)dim(tb, 0), 1.0f, wa, 0, wb, 0, 0.0f, to);
            free(wa), free(wb), free(c);
        }
        if (st == SD_OK)
            for (size_t i = 0; i < n; i++) dst[i] *= second[i];
        free(second);
        return st;
    }
    /* LoKr: w1 [A, C] ⊗ w2 [B, D, T] -> [A*B, C*D, T] */
    int64_t A, C, B, D, TT;
    lokr_sizes(m, &A, &C, &B, &D, &TT);
    D = in / C;
    float *w1 = NULL, *w2 = malloc((size_t)B * D * T * sizeof *w2);
    if (!w2) return err_fail(SD_ERR_MEMORY, "out of memory");
    if (m->w1) {
        w1 = load(a, m->w1, &st);
    } else {
        float *x = load(a, m->w1a, &st), *y = x ? load(a, m->w1b, &st) : NULL;
        if ((w1 = y ? malloc((size_t)A * C * sizeof *w1) : NULL)) gemm((int)A, (int)C, (int)dim(m->w1b, 0), 1.0f, x, 0, y, 0, 0.0f, w1);
        else if (y) st = err_fail(SD_ERR_MEMORY, "out of memory");
        free(x), free(y);
    }
    if (st == SD_OK) {
        if (m->w2) {
            sd_status s2 = st_read_f32(a->f, m->w2, w2);
            st = s2;
        } else {
            float *x = load(a, m->w2a, &st), *y = x ? load(a, m->w2b, &st) : NULL, *c = y && m->t2 ? load(a, m->t2, &st) : NULL;
            if (y && m->t2 && c) st = tucker(c, x, y, (int)dim(m->t2, 0), (int)B, (int)D, T, w2);
            else if (y && !m->t2) gemm((int)B, (int)D * T, (int)dim(m->w2b, 0), 1.0f, x, 0, y, 0, 0.0f, w2);
            free(x), free(y), free(c);
        }
    }
    if (st == SD_OK)
        for (int64_t i = 0; i < A; i++)
            for (int64_t j = 0; j < B; j++)
                for (int64_t k = 0; k < C; k++) {
                    float s = w1[i * C + k];
                    const float *src = w2 + (size_t)j * D * T;
                    float *row = dst + ((size_t)(i * B + j) * in + (size_t)k * D) * T;
                    for (int64_t l = 0; l < D * T; l++) row[l] = s * src[l];
                }
    free(w1), free(w2);
    return st;
}

/* d <- m ⊙ (W + d) / ‖W + d‖ − W, the norm per output row or (per_in) per input channel over the rows and taps. */
static void dora(const float *mag, int per_in, const float *w, int out, int in, int T, float *d) {
    size_t K = (size_t)in * T;
    if (!per_in) {
#pragma omp parallel for schedule(static)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (size_t k = 0; k < K; k++) {
                double v = (double)w[o * K + k] + d[o * K + k];
                s += v * v;
            }
            double f = s > 0 ? mag[o] / sqrt(s) : 1.0;
            for (size_t k = 0; k < K; k++) d[o * K + k] = (float)(f * ((double)w[o * K + k] + d[o * K + k]) - w[o * K + k]);
        }
        return;
    }
    double *s = calloc(in, sizeof *s);
    if (!s) return;
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++)
            for (int t = 0; t < T; t++) {
                size_t x = (size_t)o * K + (size_t)i * T + t;
                double v = (double)w[x] + d[x];
                s[i] += v * v;
            }
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) {
            double f = s[i] > 0 ? mag[i] / sqrt(s[i]) : 1.0;
            for (int t = 0; t < T; t++) {
                size_t x = (size_t)o * K + (size_t)i * T + t;
                d[x] = (float)(f * ((double)w[x] + d[x]) - w[x]);
            }
        }
    free(s);
}

sd_status ad_apply(const ad_file *a, const ad_module *m, const float *base, int out, int in, int kh, int kw, float strength,
                   float *acc, float *scratch) {
    sd_status st = ad_check(a, m, out, in, kh, kw);
    if (st != SD_OK || strength == 0.0f) return st;
    int T = kh * kw;
    size_t n = (size_t)out * in * T;
    if (m->type == AD_LORA && !m->mid && !m->dora) { /* the common case: one GEMM accumulating straight into acc */
        float *u = load(a, m->up, &st), *d = u ? load(a, m->down, &st) : NULL;
        if (d) gemm(out, in * T, m->rank, strength * m->scale, u, 0, d, 0, 1.0f, acc);
        free(u), free(d);
        return st;
    }
    float *tmp = scratch ? scratch : malloc(n * sizeof *tmp);
    if (!tmp) return err_fail(SD_ERR_MEMORY, "out of memory for the update of \"%s\"", m->name);
    st = delta(a, m, out, in, T, tmp);
    float *mag = st == SD_OK && m->dora ? load(a, m->dora, &st) : NULL;
    if (st == SD_OK) {
        if (m->scale != 1.0f)
            for (size_t i = 0; i < n; i++) tmp[i] *= m->scale;
        if (m->dora) dora(mag, dora_per_in(m, out, in), base, out, in, T, tmp);
        for (size_t i = 0; i < n; i++) acc[i] += strength * tmp[i];
    }
    free(mag);
    if (tmp != scratch) free(tmp);
    return st;
}
