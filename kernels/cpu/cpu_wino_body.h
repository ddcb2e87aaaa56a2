/* cpu_wino_body.h — the Winograd F(m x m, 3 x 3) transforms (m = 2: 4 x 4 tiles, m = 4: 6 x 6, m = 6: 8 x 8), written
 * once over cpu_vec.h, vectorised across channels; included by each level's kernel file (and with one scalar
 * lane by cpu_wino_generic.c). cpu_winograd.c drives them and says what each computes.
 *
 * The matrices are Cook-Toom's, Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A for a 3 x 3 kernel g and a tile d, for the points
 * 0, 1, -1, 2, -1/2 and infinity (m = 4) and 0, ±1, ±2, ±1/2 and infinity (m = 6). For m = 4 these points round
 * about 3.5x less than Lavin & Gray's 0, ±1, ±2 (max error over max |y| 3.8e-6 against 1.5e-5, simulated in f32 for
 * 256 channels; the asymmetric set is Barabasz et al.'s finding, 2019); for m = 6 no set tried beat ±1, ±2, ±1/2.
 * m = 2 uses the points 0, 1, -1 and infinity: its transforms only add and halve, so it rounds about as the direct
 * convolution does (cpu_winograd.c says where that matters).
 * Bᵀ and Aᵀ are applied as the factored sums below (their zero entries are skipped, not multiplied). */
#include "cpu_vec.h"

/* 1-D Bᵀ·d for 4 values (m = 2). */
VINL void wino_in2(const vf *d, int s, vf *r, int rs) {
    vf d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s];
    r[0] = v_sub(d0, d2);
    r[rs] = v_add(d1, d2);
    r[2 * rs] = v_sub(d2, d1);
    r[3 * rs] = v_sub(d1, d3);
}

/* 1-D Aᵀ·m: 4 -> 2 values. */
VINL void wino_out2(const vf *m, int s, vf *y, int ys) {
    vf a = m[s], b = m[2 * s];
    y[0] = v_add(v_add(m[0], a), b);
    y[ys] = v_sub(v_sub(a, b), m[3 * s]);
}

/* 1-D Bᵀ·d for 6 (m = 4) or 8 (m = 6) values d[k·s], written to r[k·rs]. */
VINL void wino_in4(const vf *d, int s, vf *r, int rs) {
    vf d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
    r[0] = v_add(v_fma(v_set1(1.5f), v_sub(d1, d3), v_fnma(v_set1(2.0f), d2, d0)), d4);
    r[rs] = v_sub(v_fnma(v_set1(2.5f), d2, d4), v_fma(v_set1(0.5f), d3, d1));
    r[2 * rs] = v_add(v_fma(v_set1(0.5f), d2, d1), v_fnma(v_set1(2.5f), d3, d4));
    r[3 * rs] = v_add(v_fma(v_set1(0.5f), v_sub(d3, d1), d4), v_sub(v_zero(), d2));
    r[4 * rs] = v_sub(v_fma(v_set1(2.0f), v_sub(d1, d3), d4), d2);
    r[5 * rs] = v_add(v_fma(v_set1(1.5f), v_sub(d2, d4), v_fnma(v_set1(2.0f), d3, d1)), d5);
}

VINL void wino_in6(const vf *d, int s, vf *r, int rs) {
    vf d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s], d6 = d[6 * s], d7 = d[7 * s];
    r[0] = v_fma(v_set1(5.25f), v_sub(d4, d2), v_sub(d0, d6));
    vf a = v_fnma(v_set1(4.25f), d4, v_add(d2, d6)), b = v_fnma(v_set1(4.25f), d3, v_add(d1, d5));
    r[rs] = v_add(a, b);
    r[2 * rs] = v_sub(a, b);
    a = v_fma(v_set1(0.25f), d2, v_fnma(v_set1(1.25f), d4, d6));
    b = v_fma(v_set1(0.5f), d1, v_fma(v_set1(2.0f), d5, v_mul(v_set1(-2.5f), d3)));
    r[3 * rs] = v_add(a, b);
    r[4 * rs] = v_sub(a, b);
    a = v_fma(v_set1(4.0f), d2, v_fnma(v_set1(5.0f), d4, d6));
    b = v_fma(v_set1(2.0f), d1, v_fma(v_set1(0.5f), d5, v_mul(v_set1(-2.5f), d3)));
    r[5 * rs] = v_add(a, b);
    r[6 * rs] = v_sub(a, b);
    r[7 * rs] = v_fma(v_set1(5.25f), v_sub(d3, d5), v_sub(d7, d1));
}

/* 1-D Aᵀ·m: 6 -> 4 or 8 -> 6 values. */
VINL void wino_out4(const vf *m, int s, vf *y, int ys) {
    vf a = v_add(m[s], m[2 * s]), b = v_sub(m[s], m[2 * s]), m3 = m[3 * s], m4 = m[4 * s];
    y[0] = v_add(v_add(m[0], a), v_add(m3, m4));
    y[ys] = v_fnma(v_set1(0.5f), m4, v_fma(v_set1(2.0f), m3, b));
    y[2 * ys] = v_fma(v_set1(0.25f), m4, v_fma(v_set1(4.0f), m3, a));
    y[3 * ys] = v_add(v_fnma(v_set1(0.125f), m4, v_fma(v_set1(8.0f), m3, b)), m[5 * s]);
}

VINL void wino_out6(const vf *m, int s, vf *y, int ys) {
    vf a = v_add(m[s], m[2 * s]), b = v_sub(m[s], m[2 * s]), c = v_add(m[3 * s], m[4 * s]), e = v_sub(m[3 * s], m[4 * s]);
    vf f = v_add(m[5 * s], m[6 * s]), g = v_sub(m[5 * s], m[6 * s]);
    y[0] = v_add(v_add(m[0], a), v_add(c, f));
    y[ys] = v_fma(v_set1(0.5f), g, v_fma(v_set1(2.0f), e, b));
    y[2 * ys] = v_fma(v_set1(0.25f), f, v_fma(v_set1(4.0f), c, a));
    y[3 * ys] = v_fma(v_set1(0.125f), g, v_fma(v_set1(8.0f), e, b));
    y[4 * ys] = v_fma(v_set1(0.0625f), f, v_fma(v_set1(16.0f), c, a));
    y[5 * ys] = v_add(v_fma(v_set1(0.03125f), g, v_fma(v_set1(32.0f), e, b)), m[7 * s]);
}

/* G (T x 3) for m = 2, 4 and 6 */
static const float WINO_G2[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
static const float WINO_G4[6][3] = {{1, 0, 0},
                                    {-1.0f / 3, -1.0f / 3, -1.0f / 3},
                                    {1.0f / 3, -1.0f / 3, 1.0f / 3},
                                    {1.0f / 15, 2.0f / 15, 4.0f / 15},
                                    {-16.0f / 15, 8.0f / 15, -4.0f / 15},
                                    {0, 0, 1}};
static const float WINO_G6[8][3] = {{1, 0, 0},
                                    {-2.0f / 9, -2.0f / 9, -2.0f / 9},
                                    {-2.0f / 9, 2.0f / 9, -2.0f / 9},
                                    {1.0f / 90, 2.0f / 90, 4.0f / 90},
                                    {1.0f / 90, -2.0f / 90, 4.0f / 90},
                                    {32.0f / 45, 16.0f / 45, 8.0f / 45},
                                    {32.0f / 45, -16.0f / 45, 8.0f / 45},
                                    {0, 0, 1}};

static void k_wino_weight(int m, const float *w, int C, int no, float *U, size_t ldu) {
    int T = m + 2;
    const float(*G)[3] = m == 2 ? WINO_G2 : m == 4 ? WINO_G4 : WINO_G6;
    for (int o = 0; o < no; o++)
        for (int c = 0; c < C; c += VN) {
            int wd = C - c < VN ? C - c : VN;
            vf g[9], t[WINO_MAX_T][3];
            for (int k = 0; k < 9; k++) g[k] = v_loadw(w + ((size_t)o * 9 + k) * C + c, wd);
            for (int i = 0; i < T; i++) /* t = G g */
                for (int b = 0; b < 3; b++)
                    t[i][b] = v_fma(v_set1(G[i][0]), g[b], v_fma(v_set1(G[i][1]), g[3 + b], v_mul(v_set1(G[i][2]), g[6 + b])));
            for (int i = 0; i < T; i++) /* U = t Gᵀ */
                for (int j = 0; j < T; j++) {
                    vf u = v_fma(v_set1(G[j][0]), t[i][0], v_fma(v_set1(G[j][1]), t[i][1], v_mul(v_set1(G[j][2]), t[i][2])));
                    v_storew(U + (size_t)(i * T + j) * ldu + (size_t)o * C + c, u, wd);
                }
        }
}

static void k_wino_input(int m, const float *x, int N, int H, int W, int C, int tw, int th, long t0, int nt, float *V, size_t ldv) {
    (void)N;
    int T = m + 2;
    for (int t = 0; t < nt; t++) {
        long tile = t0 + t;
        int n = (int)(tile / ((long)th * tw)), ty = (int)(tile / tw % th), tx = (int)(tile % tw);
        int y0 = ty * m - 1, x0 = tx * m - 1;
        int i0 = y0 < 0 ? -y0 : 0, i1 = H - y0 < T ? H - y0 : T, j0 = x0 < 0 ? -x0 : 0, j1 = W - x0 < T ? W - x0 : T;
        const float *base = x + (((size_t)n * H + y0) * W + x0) * C;
        for (int c = 0; c < C; c += VN) {
            int wd = C - c < VN ? C - c : VN;
            vf d[WINO_MAX_T * WINO_MAX_T], r[WINO_MAX_T * WINO_MAX_T];
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++)
                    d[i * T + j] = i >= i0 && i < i1 && j >= j0 && j < j1 ? v_loadw(base + ((size_t)i * W + j) * C + c, wd) : v_zero();
            if (m == 2) {
                for (int j = 0; j < 4; j++) wino_in2(d + j, 4, r + j, 4);    /* columns */
                for (int i = 0; i < 4; i++) wino_in2(r + i * 4, 1, d + i * 4, 1); /* rows */
            } else if (m == 4) {
                for (int j = 0; j < 6; j++) wino_in4(d + j, 6, r + j, 6);    /* columns */
                for (int i = 0; i < 6; i++) wino_in4(r + i * 6, 1, d + i * 6, 1); /* rows */
            } else {
                for (int j = 0; j < 8; j++) wino_in6(d + j, 8, r + j, 8);
                for (int i = 0; i < 8; i++) wino_in6(r + i * 8, 1, d + i * 8, 1);
            }
            float *dst = V + (size_t)t * C + c;
            for (int k = 0; k < T * T; k++) v_storew(dst + (size_t)k * ldv, d[k], wd);
        }
    }
}

static void k_wino_output(int m, const float *M, size_t ldm, int N, int H, int W, int O, int tw, int th, long t0, int nt, const float *bias,
                          float *y, int ldy) {
    (void)N;
    int T = m + 2;
    for (int t = 0; t < nt; t++) {
        long tile = t0 + t;
        int n = (int)(tile / ((long)th * tw)), ty = (int)(tile / tw % th), tx = (int)(tile % tw);
        int oy = ty * m, ox = tx * m, ih = H - oy < m ? H - oy : m, jw = W - ox < m ? W - ox : m;
        float *base = y + (((size_t)n * H + oy) * W + ox) * ldy;
        for (int o = 0; o < O; o += VN) {
            int wd = O - o < VN ? O - o : VN;
            vf s[WINO_MAX_T * WINO_MAX_T], r[WINO_MAX_T * WINO_MAX_T];
            const float *src = M + (size_t)t * O + o;
            for (int k = 0; k < T * T; k++) s[k] = v_loadw(src + (size_t)k * ldm, wd);
            if (m == 2) {
                for (int j = 0; j < 4; j++) wino_out2(s + j, 4, r + j, 4);    /* columns: 4 -> 2 rows */
                for (int i = 0; i < 2; i++) wino_out2(r + i * 4, 1, s + i * 2, 1); /* rows: 4 -> 2 */
            } else if (m == 4) {
                for (int j = 0; j < 6; j++) wino_out4(s + j, 6, r + j, 6);    /* columns: 6 -> 4 rows */
                for (int i = 0; i < 4; i++) wino_out4(r + i * 6, 1, s + i * 4, 1); /* rows: 6 -> 4 */
            } else {
                for (int j = 0; j < 8; j++) wino_out6(s + j, 8, r + j, 8);
                for (int i = 0; i < 6; i++) wino_out6(r + i * 8, 1, s + i * 6, 1);
            }
            vf bv = bias ? v_loadw(bias + o, wd) : v_zero();
            for (int i = 0; i < ih; i++)
                for (int j = 0; j < jw; j++) v_storew(base + ((size_t)i * W + j) * ldy + o, v_add(s[i * m + j], bv), wd);
        }
    }
}
