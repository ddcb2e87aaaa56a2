/* cpu_attention.c — multi-head attention on the CPU. With AVX-512: flash-style, per query block of BQ rows
 * the keys are visited in blocks of BK with an online softmax, so only BQ x BK scores exist per thread; the
 * two products are register-tiled micro-kernels over keys packed in 64-wide panels. Otherwise: query blocks
 * of 64 rows against all keys with two sgemm calls (at most threads x 64 x Tk scores). */
#include "cpu_internal.h"

#include <immintrin.h>
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

/* ---- AVX-512 flash attention ---- */

#define T512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#define BQ 48   /* query rows per task: 8 tiles of 6 */
#define BK 256  /* keys per online-softmax step: 4 panels of 64 */
#define MR 6    /* rows of a micro-tile */
#define PW 64   /* keys per packed panel (4 zmm) */

/* S[MR][64] = Q[MR][d] · P[d][64] (one panel; P rows are 64 floats apart); rmax[r] = max(rmax[r], row r's max). */
T512 static inline void qk_tile(const float *Q, int ldq, const float *P, int d, float *S, int lds, float *rmax) {
    __m512 acc[MR][4];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int z = 0; z < 4; z++) acc[r][z] = _mm512_setzero_ps();
    for (int kk = 0; kk < d; kk++) {
        const float *p = P + (size_t)kk * PW;
        __m512 k0 = _mm512_loadu_ps(p), k1 = _mm512_loadu_ps(p + 16), k2 = _mm512_loadu_ps(p + 32), k3 = _mm512_loadu_ps(p + 48);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            __m512 qv = _mm512_set1_ps(Q[(size_t)r * ldq + kk]);
            acc[r][0] = _mm512_fmadd_ps(qv, k0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(qv, k1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(qv, k2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(qv, k3, acc[r][3]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
#pragma GCC unroll 4
        for (int z = 0; z < 4; z++) _mm512_storeu_ps(S + (size_t)r * lds + 16 * z, acc[r][z]);
        float m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(acc[r][0], acc[r][1]), _mm512_max_ps(acc[r][2], acc[r][3])));
        rmax[r] = m > rmax[r] ? m : rmax[r];
    }
}

/* O[MR][16·NZ (+ 8 when HALF)] += Pr[MR][bk] · V[bk][...] (V rows ldv apart). A trailing 8 columns (head
 * dims 40, 72, 120, ...) are a ymm register: on CPUs that split zmm work in two halves it costs half. */
T512 static inline __attribute__((always_inline)) void pv_tile(const float *Pr, int ldp, const float *V, int ldv, int bk, float *O, int ldo,
                                                              const int NZ, const int HALF) {
    __m512 acc[MR][4];
    __m256 acch[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
#pragma GCC unroll 4
        for (int z = 0; z < NZ; z++) acc[r][z] = _mm512_loadu_ps(O + (size_t)r * ldo + 16 * z);
        if (HALF) acch[r] = _mm256_loadu_ps(O + (size_t)r * ldo + 16 * NZ);
    }
    for (int j = 0; j < bk; j++) {
        const float *vr = V + (size_t)j * ldv;
        __m512 vv[4];
        __m256 vh = _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int z = 0; z < NZ; z++) vv[z] = _mm512_loadu_ps(vr + 16 * z);
        if (HALF) vh = _mm256_loadu_ps(vr + 16 * NZ);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            __m512 pv = _mm512_set1_ps(Pr[(size_t)r * ldp + j]); /* a broadcast load, no shuffle */
#pragma GCC unroll 4
            for (int z = 0; z < NZ; z++) acc[r][z] = _mm512_fmadd_ps(pv, vv[z], acc[r][z]);
            if (HALF) acch[r] = _mm256_fmadd_ps(_mm512_castps512_ps256(pv), vh, acch[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
#pragma GCC unroll 4
        for (int z = 0; z < NZ; z++) _mm512_storeu_ps(O + (size_t)r * ldo + 16 * z, acc[r][z]);
        if (HALF) _mm256_storeu_ps(O + (size_t)r * ldo + 16 * NZ, acch[r]);
    }
}

/* O[BQ][dv] += P[BQ][bk] · V[bk][dv], in column chunks of up to 64 (O rows are padded to 16 columns, so a
 * chunk may compute a few columns past dv: V is read only up to dv, the rest of O is never used). */
T512 static void pv_block(const float *Pr, int ldp, const float *V, int ldv, int bk, float *O, int ldo, int dv, float *vtail) {
    for (int z0 = 0; z0 < dv; z0 += 64) {
        int w = dv - z0 < 64 ? dv - z0 : 64, nz = w / 16, rem = w % 16;
        const float *Vc = V + z0;
        int ldvc = ldv;
        if (rem && rem != 8) { /* a ragged tail: copy the chunk into rows padded with zeros */
            int wp = (w + 15) & ~15;
            for (int j = 0; j < bk; j++) {
                memcpy(vtail + (size_t)j * wp, V + (size_t)j * ldv + z0, w * sizeof(float));
                memset(vtail + (size_t)j * wp + w, 0, (wp - w) * sizeof(float));
            }
            Vc = vtail;
            ldvc = wp;
            nz = wp / 16;
            rem = 0;
        }
        int half = rem == 8;
        for (int r = 0; r < BQ; r += MR) {
            const float *p = Pr + (size_t)r * ldp;
            float *o = O + (size_t)r * ldo + z0;
#define PV(nzv, hv) pv_tile(p, ldp, Vc, ldvc, bk, o, ldo, nzv, hv)
            switch (nz * 2 + half) {
            case 1: PV(0, 1); break;
            case 2: PV(1, 0); break;
            case 3: PV(1, 1); break;
            case 4: PV(2, 0); break;
            case 5: PV(2, 1); break;
            case 6: PV(3, 0); break;
            case 7: PV(3, 1); break;
            default: PV(4, 0); break;
            }
#undef PV
        }
    }
}

T512 static void attention_flash(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    cpu_impl *c = b->impl;
    int N = q->n, Tq = q->h * q->w, Tk = k->h * k->w, d = q->c / heads, dv = v->c / heads, T = c->threads;
    int qc = q->c, kc = k->c, vc = v->c, yc = y->c;
    int npanel = (Tk + PW - 1) / PW, Tkp = npanel * PW, dvp = (dv + 15) & ~15;
    int nqb = (Tq + BQ - 1) / BQ, tasks = heads * nqb;
    size_t packed = (size_t)heads * d * Tkp; /* per head: panels [Tk/64][d][64] */
    size_t each = (size_t)BQ * d + (size_t)BQ * BK + (size_t)BQ * dvp + 3 * BQ + (size_t)BK * 64;
    each = (each + 15) & ~(size_t)15;
    float *scr = cpu_scratch(b, packed + each * T);
    if (!scr) return;
    float *Kp = scr, scale = 1.0f / sqrtf((float)d);
    for (int n = 0; n < N; n++) {
        const float *K = (const float *)k->data + (size_t)n * Tk * kc;
#pragma omp parallel for schedule(static) num_threads(T)
        for (int hp = 0; hp < heads * npanel; hp++) {
            int hd = hp / npanel, pn = hp % npanel;
            float *dst = Kp + ((size_t)hd * npanel + pn) * d * PW;
            for (int j = 0; j < PW; j++) {
                int key = pn * PW + j;
                if (key < Tk) {
                    const float *src = K + (size_t)key * kc + (size_t)hd * d;
                    for (int kk = 0; kk < d; kk++) dst[(size_t)kk * PW + j] = src[kk];
                } else {
                    for (int kk = 0; kk < d; kk++) dst[(size_t)kk * PW + j] = 0.0f;
                }
            }
        }
#pragma omp parallel for schedule(dynamic, 1) num_threads(T)
        for (int task = 0; task < tasks; task++) {
            int hd = task / nqb, q0 = task % nqb * BQ, bq = Tq - q0 < BQ ? Tq - q0 : BQ;
            float *Qs = scr + packed + each * omp_get_thread_num(), *S = Qs + (size_t)BQ * d, *O = S + (size_t)BQ * BK;
            float *mrow = O + (size_t)BQ * dvp, *lrow = mrow + BQ, *bmax = lrow + BQ, *vtail = bmax + BQ;
            const float *Q = (const float *)q->data + ((size_t)n * Tq + q0) * qc + (size_t)hd * d;
            const float *V = (const float *)v->data + (size_t)n * Tk * vc + (size_t)hd * dv;
            for (int i = 0; i < BQ; i++) {
                for (int kk = 0; kk < d; kk++) Qs[(size_t)i * d + kk] = i < bq ? Q[(size_t)i * qc + kk] * scale : 0.0f;
                mrow[i] = -INFINITY;
                lrow[i] = 0.0f;
            }
            memset(O, 0, (size_t)BQ * dvp * sizeof(float));
            int kend = causal ? (q0 + bq < Tk ? q0 + bq : Tk) : Tk; /* causal: no key past the block's last query */
            for (int j0 = 0; j0 < kend; j0 += BK) {
                int bk = kend - j0 < BK ? kend - j0 : BK, np = (bk + PW - 1) / PW;
                for (int i = 0; i < BQ; i++) bmax[i] = -INFINITY;
                for (int p = 0; p < np; p++) {
                    const float *P = Kp + ((size_t)hd * npanel + j0 / PW + p) * d * PW;
                    for (int r = 0; r < BQ; r += MR) qk_tile(Qs + (size_t)r * d, d, P, d, S + (size_t)r * BK + p * PW, BK, bmax + r);
                }
                int full = !causal && bk == np * PW; /* no padded or masked keys: the tiles' maxima are the rows' */
                for (int i = 0; i < bq; i++) {
                    float *s = S + (size_t)i * BK;
                    int valid = bk;
                    if (causal && q0 + i + 1 - j0 < valid) valid = q0 + i + 1 - j0; /* query q0+i sees keys up to itself */
                    if (valid <= 0) { memset(s, 0, (size_t)bk * sizeof(float)); continue; }
                    float mb = full ? bmax[i] : cpu_max_row(s, valid), mn = mb > mrow[i] ? mb : mrow[i];
                    float alpha = cpu_expf(mrow[i] - mn);
                    float sum = cpu_exp_sum_row(s, mn, valid);
                    if (valid < bk) memset(s + valid, 0, (size_t)(bk - valid) * sizeof(float));
                    if (alpha != 1.0f) cpu_scale_row(O + (size_t)i * dvp, alpha, dv);
                    lrow[i] = lrow[i] * alpha + sum;
                    mrow[i] = mn;
                }
                pv_block(S, BK, V + (size_t)j0 * vc, vc, bk, O, dvp, dv, vtail);
            }
            float *Y = (float *)y->data + ((size_t)n * Tq + q0) * yc + (size_t)hd * dv;
            for (int i = 0; i < bq; i++) {
                float inv = 1.0f / lrow[i];
                for (int j = 0; j < dv; j++) Y[(size_t)i * yc + j] = O[(size_t)i * dvp + j] * inv;
            }
        }
    }
}

void cpu_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    cpu_impl *c = b->impl;
    double t0 = c->profile ? cpu_now() : 0;
    if (cpu_simd_get() == CPU_SIMD_AVX512) attention_flash(b, q, k, v, heads, causal, y);
    else attention_blas(b, q, k, v, heads, causal, y);
    if (c->profile) {
        c->prof_s[PROF_ATTN] += cpu_now() - t0;
        c->prof_calls[PROF_ATTN]++;
        c->prof_flops[PROF_ATTN] += 2.0 * q->n * q->h * q->w * k->h * k->w * (q->c + v->c);
    }
}
