/* cuda_op_util.h — what the CUDA op tests share: storage types and their unit roundoff, test data rounded to the
 * storage type, a CPU and a CUDA backend, host <-> backend copies, error measures and the verdict line. */
#ifndef TESTS_CUDA_CUDA_OP_UTIL_H
#define TESTS_CUDA_CUDA_OP_UTIL_H

#include "../test.h"
#include "../../core/error.h"
#include "../../core/half.h"
#include "../../kernels/backend.h"
#include "cuda_test.h"

#include <stdint.h>
#include <stdlib.h>

static const be_dtype DTS[3] = {BE_F16, BE_BF16, BE_F32};
static inline const char *dt_name(be_dtype t) { return t == BE_F16 ? "f16" : t == BE_BF16 ? "bf16" : "f32"; }
static inline double unit(be_dtype t) { return t == BE_F16 ? 0x1p-11 : t == BE_BF16 ? 0x1p-8 : 0x1p-24; }
/* f32 slack: different summation orders (GEMMs of up to a few hundred terms, double vs f32 statistics) */
#define SLACK 1e-5

/* ---- data ---- */

static uint32_t g_rs = 12345;
static inline float frand(void) { /* uniform in [-1, 1) */
    g_rs = g_rs * 1664525u + 1013904223u;
    return (float)((g_rs >> 8) * (1.0 / 8388608.0)) - 1.0f;
}
static inline float quant1(float v, be_dtype t) {
    return t == BE_F16 ? f16_to_f32(f32_to_f16(v)) : t == BE_BF16 ? bf16_to_f32(f32_to_bf16(v)) : v;
}
/* n values uniform in [offset - scale, offset + scale), rounded to storage type t */
static inline float *rnd(size_t n, float scale, float offset, be_dtype t) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = quant1(offset + scale * frand(), t);
    return p;
}

/* ---- backends ---- */

static inline be *mk_cpu(void) {
    be *b = be_cpu_new(0);
    REQUIRE(b);
    REQUIRE(be_arena_reserve(b, 64u << 20) == SD_OK);
    return b;
}
static inline be *mk_gpu(be_dtype t) {
    be *b = be_cuda_new(0, t);
    REQUIRE_MSG(b, "%s", sd_last_error());
    REQUIRE_MSG(be_arena_reserve(b, 64u << 20) == SD_OK, "%s", sd_last_error());
    return b;
}
static inline be_tensor put(be *b, const float *h, int n, int hh, int w, int c) {
    be_tensor t = be_new(b, n, hh, w, c);
    be_upload(b, &t, h);
    return t;
}
static inline float *get(be *b, const be_tensor *t) {
    float *h = malloc(be_numel(t) * sizeof(float));
    for (size_t i = 0; i < be_numel(t); i++) h[i] = NAN;
    be_download(b, t, h);
    return h;
}
/* both backends healthy, and the emulator saw no misuse */
static inline void check_clean(be *g, be *c) {
    char msg[512] = "";
    CHECK_MSG(be_status(g) == SD_OK, "cuda backend: %s", sd_last_error());
    CHECK_MSG(be_status(c) == SD_OK, "cpu backend: %s", sd_last_error());
    CHECK_MSG(cuda_test_clean(msg, sizeof msg), "%s", msg);
}

static inline double maxabs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}
/* max |got - want| / scale; NaN or inf anywhere counts as infinite */
static inline double rel_err(const float *got, const float *want, size_t n, double scale) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d == d) || isinf(got[i])) return INFINITY;
        m = fmax(m, d);
    }
    return m / (scale > 0 ? scale : 1);
}
static inline void judge(const char *what, be_dtype t, double err, double tol) {
    test_note("%s [%s]: max err %.3g (tol %.3g = %.2f u)", what, dt_name(t), err, tol, tol / unit(t));
    CHECK_MSG(err <= tol, "%s [%s]: error %.3g > tolerance %.3g", what, dt_name(t), err, tol);
}

#endif
