/* be_test.h — the few lines every backend test needs: a CPU backend with an arena, host <-> backend copies. */
#ifndef TESTS_BE_TEST_H
#define TESTS_BE_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../core/error.h"
#include "../core/safetensors.h"
#include "../kernels/backend.h"

/* A CPU backend (threads 0: all cores) with a 256 MiB arena; the test stops if it cannot be made. */
static inline be *test_cpu_backend(int threads) {
    be *b = be_cpu_new(threads);
    REQUIRE(b);
    REQUIRE(be_arena_reserve(b, 256u << 20) == SD_OK);
    return b;
}

/* A new backend tensor holding the host f32 NHWC values h. */
static inline be_tensor test_upload(be *b, const float *h, int n, int hh, int w, int c) {
    be_tensor t = be_new(b, n, hh, w, c);
    be_upload(b, &t, h);
    return t;
}

/* A malloc'd host copy of a backend tensor (the caller frees it). */
static inline float *test_download(be *b, const be_tensor *t) {
    float *h = malloc(be_numel(t) * sizeof(float));
    be_download(b, t, h);
    return h;
}

/* Golden tensor `name` of f uploaded as an activation of the given shape (element counts must agree). */
static inline be_tensor test_golden_upload(be *b, st_file *f, const char *name, int n, int h, int w, int c) {
    int64_t cnt;
    float *d = st_load_f32(f, name, &cnt);
    REQUIRE_MSG(d, "%s", sd_last_error());
    REQUIRE_MSG(cnt == (int64_t)n * h * w * c, "%s: %lld values", name, (long long)cnt);
    be_tensor t = be_new(b, n, h, w, c);
    be_upload(b, &t, d);
    free(d);
    return t;
}

/* Golden tensor `name` of f as a malloc'd f32 array of exactly `want` values (the test stops otherwise). */
static inline float *test_golden_f32(st_file *f, const char *name, int64_t want) {
    int64_t n;
    float *d = st_load_f32(f, name, &n);
    REQUIRE_MSG(d, "%s", sd_last_error());
    REQUIRE_MSG(n == want, "%s: %lld values, expected %lld", name, (long long)n, (long long)want);
    return d;
}

/* A weight-name filter for golden files that keep their inputs and outputs under "io.": every other name as is. */
static inline int test_skip_io(const char *src, char *dst, size_t cap, void *user) {
    (void)user;
    if (!strncmp(src, "io.", 3)) return 0;
    snprintf(dst, cap, "%s", src);
    return 1;
}

/* Naive multi-head attention in double precision, the reference for the backends' kernels: q [N, Tq, C],
 * k [N, Tk, C], v [N, Tk, Cv] (heads split the channels), causal masks keys after the query; y [N, Tq, Cv]. */
static inline void test_attention_ref(const float *q, const float *k, const float *v, int N, int Tq, int Tk, int C, int Cv, int heads, int causal, float *y) {
    int d = C / heads, dv = Cv / heads;
    double *s = malloc(Tk * sizeof(double));
    for (int n = 0; n < N; n++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < Tq; i++) {
                double m = -1e300, sum = 0;
                for (int j = 0; j < Tk; j++) {
                    double dot = 0;
                    for (int e = 0; e < d; e++) dot += (double)q[((size_t)n * Tq + i) * C + h * d + e] * k[((size_t)n * Tk + j) * C + h * d + e];
                    s[j] = (causal && j > i) ? -INFINITY : dot / sqrt((double)d);
                    if (s[j] > m) m = s[j];
                }
                for (int j = 0; j < Tk; j++) { s[j] = exp(s[j] - m); sum += s[j]; }
                for (int e = 0; e < dv; e++) {
                    double o = 0;
                    for (int j = 0; j < Tk; j++) o += s[j] / sum * v[((size_t)n * Tk + j) * Cv + h * dv + e];
                    y[((size_t)n * Tq + i) * Cv + h * dv + e] = (float)o;
                }
            }
    free(s);
}

/* The reference 3x3 convolution (stride 1, zero padding 1) in double: x [N,H,W,C], w [O][C][3][3], y [N,H,W,O]. */
static inline void test_conv3x3_ref(const float *x, int N, int H, int W, int C, const float *w, const float *bias, int O, double *y) {
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < H; oy++)
            for (int ox = 0; ox < W; ox++)
                for (int o = 0; o < O; o++) {
                    double s = bias ? bias[o] : 0;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int iy = oy - 1 + ky, ix = ox - 1 + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            const float *xp = x + (((size_t)n * H + iy) * W + ix) * C;
                            for (int i = 0; i < C; i++) s += (double)xp[i] * w[(((size_t)o * C + i) * 3 + ky) * 3 + kx];
                        }
                    y[(((size_t)n * H + oy) * W + ox) * O + o] = s;
                }
}

#endif
