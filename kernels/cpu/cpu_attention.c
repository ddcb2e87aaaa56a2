/* cpu_attention.c — multi-head attention on the CPU, tiled over query blocks so at most
 * (threads x block x Tk) scores exist at once (a 4096-token VAE attention never holds 4096²). */
#include "cpu_internal.h"

#include <math.h>
#include <omp.h>

#define QBLOCK 64

void cpu_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    cpu_impl *c = b->impl;
    int N = q->n, Tq = q->h * q->w, Tk = k->h * k->w, d = q->c / heads, dv = v->c / heads;
    int qc = q->c, kc = k->c, vc = v->c, yc = y->c;
    int nqb = (Tq + QBLOCK - 1) / QBLOCK, ntasks = N * heads * nqb, nthreads = c->threads;
    float *scores = cpu_scratch(b, (size_t)nthreads * QBLOCK * Tk);
    if (!scores) return;
    float scale = 1.0f / sqrtf((float)d);
    openblas_set_num_threads(1); /* parallelism comes from the tasks; nested BLAS threads would oversubscribe */
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
            float m = -INFINITY, sum = 0;
            for (int j = 0; j < valid; j++) m = s[j] > m ? s[j] : m;
            for (int j = 0; j < valid; j++) { s[j] = expf(s[j] - m); sum += s[j]; }
            float inv = 1.0f / sum;
            for (int j = 0; j < valid; j++) s[j] *= inv;
            for (int j = valid; j < Tk; j++) s[j] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bq, dv, Tk, 1.0f, S, Tk, V, vc, 0.0f, Y, yc);
    }
    openblas_set_num_threads(nthreads);
}
