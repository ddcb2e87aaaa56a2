/* cpu_attention.c — multi-head attention on the CPU: the level's flash kernel (cpu_kern_body.h) on the vector
 * levels; at the generic level query blocks of 64 rows against all keys with two sgemm calls (at most
 * threads x 64 x Tk scores). */
#include "cpu_internal.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* ---- generic: sgemm per query block ---- */

#define QBLOCK 64

static void attention_blas(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    cpu_impl *c = b->impl;
    int N = q->n, Tq = q->h * q->w, Tk = k->h * k->w, d = q->c / heads, dv = v->c / heads;
    int qc = q->c, kc = k->c, vc = v->c, yc = y->c;
    int nqb = (Tq + QBLOCK - 1) / QBLOCK, ntasks = N * heads * nqb, nthreads = c->threads;
    float *scores = cpu_scratch(b, (size_t)nthreads * QBLOCK * Tk);
    if (!scores) return;
    float scale = 1.0f / sqrtf((float)d);
#pragma omp parallel for schedule(dynamic) num_threads(nthreads)
    for (int task = 0; task < ntasks; task++) {
        int n = task / (heads * nqb), hd = task / nqb % heads, q0 = task % nqb * QBLOCK;
        int bq = Tq - q0 < QBLOCK ? Tq - q0 : QBLOCK;
        float *S = scores + (size_t)omp_get_thread_num() * QBLOCK * Tk;
        const float *Q = (const float *)q->data + ((size_t)n * Tq + q0) * qc + (size_t)hd * d;
        const float *K = (const float *)k->data + (size_t)n * Tk * kc + (size_t)hd * d;
        const float *V = (const float *)v->data + (size_t)n * Tk * vc + (size_t)hd * dv;
        float *Y = (float *)y->data + ((size_t)n * Tq + q0) * yc + (size_t)hd * dv;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bq, Tk, d, scale, Q, qc, K, kc, 0.0f, S, Tk);
        for (int i = 0; i < bq; i++) {
            float *s = S + (size_t)i * Tk;
            int valid = causal ? q0 + i + 1 : Tk; /* causal: query i sees keys 0..i */
            if (valid > Tk) valid = Tk;
            float sum = cpu_exp_sum_row(s, cpu_max_row(s, valid), valid);
            cpu_scale_row(s, 1.0f / sum, valid);
            memset(s + valid, 0, (size_t)(Tk - valid) * sizeof(float));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bq, dv, Tk, 1.0f, S, Tk, V, vc, 0.0f, Y, yc);
    }
}

void cpu_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    cpu_impl *c = b->impl;
    double t0 = c->profile ? cpu_now() : 0;
    const cpu_kern *kn = cpu_kern_get();
    if (kn->attention) kn->attention(b, q, k, v, heads, causal, y);
    else attention_blas(b, q, k, v, heads, causal, y);
    if (c->profile) {
        c->prof_s[PROF_ATTN] += cpu_now() - t0;
        c->prof_calls[PROF_ATTN]++;
        c->prof_flops[PROF_ATTN] += 2.0 * q->n * q->h * q->w * k->h * k->w * (q->c + v->c);
    }
}
