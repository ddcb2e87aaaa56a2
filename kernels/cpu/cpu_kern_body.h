/* cpu_kern_body.h — the vector levels' kernels, written once over cpu_vec.h and compiled by each level's file
 * (cpu_kern_avx512.c, cpu_kern_avx2.c, cpu_kern_neon.c), which names the table it defines in CPU_KERN_TABLE.
 * Row kernels, and the flash attention: per query block of BQ rows the keys are visited in blocks of BK with an
 * online softmax, so only BQ x BK scores exist per thread; the two products are register-tiled micro-kernels
 * (MR rows x ATT_NV vectors of accumulators) over keys packed in panels of PW = ATT_NV·VN. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../../core/half.h"
#include "cpu_internal.h"
#include "cpu_math.h"
#include "cpu_vec.h"

/* ---- math ---- */

VINL vf v_exp(vf x) {
    x = v_max(v_set1(EXP_LO), v_min(v_set1(EXP_HI), x)); /* NaN is returned as is */
    vf n = v_round(v_mul(x, v_set1(LOG2E)));
    vf r = v_fnma(n, v_set1(LN2_HI), x);
    r = v_fnma(n, v_set1(LN2_LO), r);
    vf p = v_set1(EXP_C[6]);
    for (int i = 5; i >= 0; i--) p = v_fma(p, r, v_set1(EXP_C[i]));
    return v_ldexp(p, n);
}

VINL vf v_silu(vf v) { return v_div(v, v_add(v_set1(1.0f), v_exp(v_sub(v_zero(), v)))); }

VINL vf v_gelu(vf x) {
    vf u = v_mul(x, v_set1(SQRT1_2)), au = v_abs(u), z = v_mul(u, u);
    vf p = v_set1(ERF_P[5]);
    for (int i = 4; i >= 0; i--) p = v_fma(p, z, v_set1(ERF_P[i]));
    vf f = v_fma(u, p, v_set1(1.0f));
    vm big = v_ge(au, v_set1(ERF_T));
    if (v_any(big)) { /* the tails from erfc, so the far negative side keeps its relative precision */
        vf t = v_div(v_set1(1.0f), v_fma(au, v_set1(0.5f), v_set1(1.0f)));
        vf r = v_set1(ERFC_R[9]);
        for (int i = 8; i >= 0; i--) r = v_fma(r, t, v_set1(ERFC_R[i]));
        vf e = v_mul(v_exp(v_sub(v_zero(), z)), r);
        vf g = v_sel(v_gt(u, v_zero()), v_sub(v_set1(2.0f), e), e);
        f = v_sel(big, g, f);
    }
    return v_mul(v_mul(v_set1(0.5f), x), f);
}

VINL vf v_act(be_act a, vf v) {
    switch (a) {
    case BE_ACT_SILU: return v_silu(v);
    case BE_ACT_GELU: return v_gelu(v);
    case BE_ACT_QUICK_GELU: return v_div(v, v_add(v_set1(1.0f), v_exp(v_mul(v, v_set1(-QUICK_GELU_K)))));
    case BE_ACT_RELU: return v_sel(v_lt(v, v_zero()), v_zero(), v); /* ordered compare: NaN stays NaN, as torch.relu */
    default: return v;
    }
}

/* ---- row kernels (a ragged tail runs as a partial vector) ---- */

static void k_widen_f16(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + VN <= n; i += VN) v_store(dst + i, v_load_f16(src + i));
    for (; i < n; i++) dst[i] = f16_to_f32(src[i]);
}

static void k_widen_bf16(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + VN <= n; i += VN) v_store(dst + i, v_load_bf16(src + i));
    for (; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

static void k_bias_act(const float *x, const float *bias, be_act act, float *y, size_t n) {
    size_t i = 0;
    for (; i + VN <= n; i += VN) {
        vf v = v_load(x + i);
        if (bias) v = v_add(v, v_load(bias + i));
        v_store(y + i, v_act(act, v));
    }
    if (i < n) {
        int r = (int)(n - i);
        vf v = v_load_n(x + i, r);
        if (bias) v = v_add(v, v_load_n(bias + i, r));
        v_store_n(y + i, v_act(act, v), r);
    }
}

static void k_geglu(const float *a, const float *g, float *y, size_t n) {
    size_t i = 0;
    for (; i + VN <= n; i += VN) v_store(y + i, v_mul(v_load(a + i), v_gelu(v_load(g + i))));
    if (i < n) {
        int r = (int)(n - i);
        v_store_n(y + i, v_mul(v_load_n(a + i, r), v_gelu(v_load_n(g + i, r))), r);
    }
}

static void k_axpy(const float *a, const float *x, float alpha, float *y, size_t n) {
    vf al = v_set1(alpha);
    size_t i = 0;
    for (; i + VN <= n; i += VN) v_store(y + i, v_fma(al, v_load(x + i), v_load(a + i)));
    if (i < n) {
        int r = (int)(n - i);
        v_store_n(y + i, v_fma(al, v_load_n(x + i, r), v_load_n(a + i, r)), r);
    }
}

VINL vf affine1(vf x, vf mean, vf scale, vf shift, int silu) {
    vf v = v_fma(v_sub(x, mean), scale, shift);
    return silu ? v_silu(v) : v;
}

static void k_affine(const float *x, const float *mean, const float *scale, const float *shift, int silu, float *y, size_t n) {
    size_t i = 0;
    for (; i + VN <= n; i += VN) v_store(y + i, affine1(v_load(x + i), v_load(mean + i), v_load(scale + i), v_load(shift + i), silu));
    if (i < n) {
        int r = (int)(n - i);
        v_store_n(y + i, affine1(v_load_n(x + i, r), v_load_n(mean + i, r), v_load_n(scale + i, r), v_load_n(shift + i, r), silu), r);
    }
}

static void k_moments(const float *x, size_t ld, int rows, const float *shift, float *s1, float *s2, size_t n) {
    for (size_t i = 0; i < n; i += VN) {
        int w = n - i < VN ? (int)(n - i) : VN;
        vf sh = v_loadw(shift + i, w), a = v_zero(), q = v_zero();
        for (int r = 0; r < rows; r++) {
            vf d = v_sub(v_loadw(x + r * ld + i, w), sh);
            a = v_add(a, d);
            q = v_fma(d, d, q);
        }
        v_storew(s1 + i, v_add(v_loadw(s1 + i, w), a), w);
        v_storew(s2 + i, v_add(v_loadw(s2 + i, w), q), w);
    }
}

static void k_layer_norm(const float *x, const float *gamma, const float *beta, float eps, float *y, int n) {
    int nv = n / VN * VN; /* whole vectors; the statistics of the tail are added in scalar code */
    vf s = v_zero();
    for (int i = 0; i < nv; i += VN) s = v_add(s, v_load(x + i));
    float sum = v_hsum(s);
    for (int i = nv; i < n; i++) sum += x[i];
    float mean = sum / n;
    vf mv = v_set1(mean), q = v_zero();
    for (int i = 0; i < nv; i += VN) {
        vf d = v_sub(v_load(x + i), mv);
        q = v_fma(d, d, q);
    }
    float ss = v_hsum(q);
    for (int i = nv; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
    vf rv = v_set1(1.0f / sqrtf(ss / n + eps));
    for (int i = 0; i < n; i += VN) {
        int w = n - i < VN ? n - i : VN;
        vf v = v_mul(v_sub(v_loadw(x + i, w), mv), rv);
        if (gamma) v = v_mul(v, v_loadw(gamma + i, w));
        if (beta) v = v_add(v, v_loadw(beta + i, w));
        v_storew(y + i, v, w);
    }
}

static float k_max(const float *x, size_t n) {
    size_t i = 0;
    float m = x[0];
    if (n >= VN) {
        vf mx = v_load(x);
        for (i = VN; i + VN <= n; i += VN) mx = v_max(mx, v_load(x + i));
        m = v_hmax(mx);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static float k_exp_sum(float *x, float mval, size_t n) {
    vf m = v_set1(mval), s = v_zero();
    size_t i = 0;
    for (; i + VN <= n; i += VN) {
        vf e = v_exp(v_sub(v_load(x + i), m));
        v_store(x + i, e);
        s = v_add(s, e);
    }
    float sum = v_hsum(s);
    if (i < n) { /* the unused lanes are exp(0 - m): stored nowhere, summed from the stored lanes only */
        int r = (int)(n - i);
        v_store_n(x + i, v_exp(v_sub(v_load_n(x + i, r), m)), r);
        for (; i < n; i++) sum += x[i];
    }
    return sum;
}

static void k_scale(float *x, float sc, size_t n) {
    vf s = v_set1(sc);
    size_t i = 0;
    for (; i + VN <= n; i += VN) v_store(x + i, v_mul(v_load(x + i), s));
    if (i < n) v_store_n(x + i, v_mul(v_load_n(x + i, (int)(n - i)), s), (int)(n - i));
}

/* ---- flash attention ---- */

#ifndef ATT_NV
#define ATT_NV 4 /* vectors of keys per panel: MR x ATT_NV accumulators stay in registers */
#endif
#define PW (ATT_NV * VN) /* keys per packed panel */
#define BQ 48            /* query rows per task: 8 tiles of MR */
#define BK 256           /* keys per online-softmax step: a whole number of panels */
#define MR 6             /* rows of a micro-tile */

/* S[MR][PW] = Q[MR][d] · P[d][PW] (one panel; P rows are PW floats apart); rmax[r] = max(rmax[r], row r's max). */
VINL void qk_tile(const float *Q, int ldq, const float *P, int d, float *S, int lds, float *rmax) {
    vf acc[MR][ATT_NV];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int z = 0; z < ATT_NV; z++) acc[r][z] = v_zero();
    for (int kk = 0; kk < d; kk++) {
        const float *p = P + (size_t)kk * PW;
        vf kv[ATT_NV];
#pragma GCC unroll 4
        for (int z = 0; z < ATT_NV; z++) kv[z] = v_load(p + z * VN);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            vf qv = v_set1(Q[(size_t)r * ldq + kk]);
#pragma GCC unroll 4
            for (int z = 0; z < ATT_NV; z++) acc[r][z] = v_fma(qv, kv[z], acc[r][z]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        vf mx = acc[r][0];
#pragma GCC unroll 4
        for (int z = 0; z < ATT_NV; z++) {
            v_store(S + (size_t)r * lds + z * VN, acc[r][z]);
            mx = v_max(mx, acc[r][z]);
        }
        float m = v_hmax(mx);
        rmax[r] = m > rmax[r] ? m : rmax[r];
    }
}

/* O[MR][VN·NZ (+ VN/2 when HALF)] += Pr[MR][bk] · V[bk][...] (V rows ldv apart). */
VINL void pv_tile(const float *Pr, int ldp, const float *V, int ldv, int bk, float *O, int ldo, const int NZ, const int HALF) {
    vf acc[MR][4];
    (void)HALF;
#if VHALF
    vh acch[MR];
#endif
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
#pragma GCC unroll 4
        for (int z = 0; z < NZ; z++) acc[r][z] = v_load(O + (size_t)r * ldo + z * VN);
#if VHALF
        acch[r] = HALF ? vh_load(O + (size_t)r * ldo + NZ * VN) : vh_zero();
#endif
    }
    for (int j = 0; j < bk; j++) {
        const float *vr = V + (size_t)j * ldv;
        vf vv[4];
#pragma GCC unroll 4
        for (int z = 0; z < NZ; z++) vv[z] = v_load(vr + z * VN);
#if VHALF
        vh vhv = HALF ? vh_load(vr + NZ * VN) : vh_zero();
#endif
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            vf pv = v_set1(Pr[(size_t)r * ldp + j]);
#pragma GCC unroll 4
            for (int z = 0; z < NZ; z++) acc[r][z] = v_fma(pv, vv[z], acc[r][z]);
#if VHALF
            if (HALF) acch[r] = vh_fma(vh_low(pv), vhv, acch[r]);
#endif
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
#pragma GCC unroll 4
        for (int z = 0; z < NZ; z++) v_store(O + (size_t)r * ldo + z * VN, acc[r][z]);
#if VHALF
        if (HALF) vh_store(O + (size_t)r * ldo + NZ * VN, acch[r]);
#endif
    }
}

/* O[BQ][dv] += P[BQ][bk] · V[bk][dv], in column chunks of up to PW (O rows are padded to VN columns, so a chunk
 * may compute a few columns past dv: V is read only up to dv, the rest of O is never used). */
static void pv_block(const float *Pr, int ldp, const float *V, int ldv, int bk, float *O, int ldo, int dv, float *vtail) {
    for (int z0 = 0; z0 < dv; z0 += PW) {
        int w = dv - z0 < PW ? dv - z0 : PW, nz = w / VN, rem = w % VN;
        const float *Vc = V + z0;
        int ldvc = ldv, half = VHALF && rem == VN / 2;
        if (rem && !half) { /* a ragged tail: copy the chunk into rows padded with zeros */
            int wp = (w + VN - 1) / VN * VN;
            for (int j = 0; j < bk; j++) {
                memcpy(vtail + (size_t)j * wp, V + (size_t)j * ldv + z0, w * sizeof(float));
                memset(vtail + (size_t)j * wp + w, 0, (wp - w) * sizeof(float));
            }
            Vc = vtail;
            ldvc = wp;
            nz = wp / VN;
        }
        for (int r = 0; r < BQ; r += MR) {
            const float *p = Pr + (size_t)r * ldp;
            float *o = O + (size_t)r * ldo + z0;
#define PV(nzv, hv) pv_tile(p, ldp, Vc, ldvc, bk, o, ldo, nzv, hv)
            switch (nz * 2 + half) {
            case 1: PV(0, 1); break;
            case 2: PV(1, 0); break;
            case 3: PV(1, 1); break;
            case 4: PV(2, 0); break;
#if ATT_NV > 2
            case 5: PV(2, 1); break;
            case 6: PV(3, 0); break;
            case 7: PV(3, 1); break;
            case 8: PV(4, 0); break;
#endif
            default: break;
            }
#undef PV
        }
    }
}

static void k_attention(be *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int heads, int causal, be_tensor *y) {
    cpu_impl *c = b->impl;
    int N = q->n, Tq = q->h * q->w, Tk = k->h * k->w, d = q->c / heads, dv = v->c / heads, T = c->threads;
    int qc = q->c, kc = k->c, vc = v->c, yc = y->c;
    int npanel = (Tk + PW - 1) / PW, Tkp = npanel * PW, dvp = (dv + VN - 1) / VN * VN;
    int nqb = (Tq + BQ - 1) / BQ, tasks = heads * nqb;
    size_t packed = (size_t)heads * d * Tkp; /* per head: panels [Tk/PW][d][PW] */
    size_t each = (size_t)BQ * d + (size_t)BQ * BK + (size_t)BQ * dvp + 3 * BQ + (size_t)BK * PW;
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
                    float mb = full ? bmax[i] : k_max(s, valid), mn = mb > mrow[i] ? mb : mrow[i];
                    float alpha = cpu_expf(mrow[i] - mn);
                    float sum = k_exp_sum(s, mn, valid);
                    if (valid < bk) memset(s + valid, 0, (size_t)(bk - valid) * sizeof(float));
                    if (alpha != 1.0f) k_scale(O + (size_t)i * dvp, alpha, dv);
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

#include "cpu_wino_body.h"

const cpu_kern CPU_KERN_TABLE = {
    .widen_f16 = k_widen_f16,
    .widen_bf16 = k_widen_bf16,
    .bias_act_row = k_bias_act,
    .geglu_row = k_geglu,
    .axpy_row = k_axpy,
    .affine_row = k_affine,
    .shifted_moments = k_moments,
    .layer_norm_row = k_layer_norm,
    .max_row = k_max,
    .exp_sum_row = k_exp_sum,
    .scale_row = k_scale,
    .attention = k_attention,
    .wino_weight = k_wino_weight,
    .wino_input = k_wino_input,
    .wino_output = k_wino_output,
};
