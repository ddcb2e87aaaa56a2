/* cpu_gemm.c — GEMM-shaped ops on the CPU: linear, and conv2d as chunked NHWC im2col + sgemm. */
#include "cpu_internal.h"

#include <string.h>

void cpu_linear(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y) {
    (void)b;
    size_t rows = (size_t)x->n * x->h * x->w;
    /* y[rows, out] = x[rows, in] · W[out, in]ᵀ */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, w->out, w->in, 1.0f, x->data, w->in, w->data, w->in,
                0.0f, y->data, w->out);
    cpu_bias_act(y->data, rows, w->out, bias ? bias->data : NULL, act);
}

/* im2col bound: at most this many floats of scratch, so a 512x512 VAE conv does not need gigabytes */
#define IM2COL_FLOATS (4u << 20)

void cpu_conv2d(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, int stride, int pad_lo, int pad_hi, be_tensor *y) {
    (void)pad_hi; /* implied by the output size */
    int ci = x->c, co = w->out, kh = w->kh, kw = w->kw;
    size_t rows = (size_t)y->n * y->h * y->w;
    if (kh == 1 && kw == 1 && stride == 1 && pad_lo == 0) { /* a 1x1 conv is a linear layer on [N*H*W, C] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, co, ci, 1.0f, x->data, ci, w->data, ci, 0.0f, y->data, co);
        cpu_bias_act(y->data, rows, co, bias ? bias->data : NULL, BE_ACT_NONE);
        return;
    }
    size_t K = (size_t)kh * kw * ci;
    size_t chunk = IM2COL_FLOATS / K;
    if (chunk < 16) chunk = 16;
    if (chunk > rows) chunk = rows;
    float *cols = cpu_scratch(b, chunk * K);
    if (!cols) return;
    const float *xs = x->data;
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        size_t nr = rows - r0 < chunk ? rows - r0 : chunk;
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < nr; r++) {
            size_t g = r0 + r;
            int n = (int)(g / ((size_t)y->h * y->w)), oy = (int)(g / y->w % y->h), ox = (int)(g % y->w);
            float *dst = cols + r * K;
            for (int ky = 0; ky < kh; ky++) {
                int iy = oy * stride - pad_lo + ky;
                for (int kx = 0; kx < kw; kx++) {
                    int ix = ox * stride - pad_lo + kx;
                    float *d = dst + ((size_t)ky * kw + kx) * ci;
                    if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w) memset(d, 0, ci * sizeof(float));
                    else memcpy(d, xs + (((size_t)n * x->h + iy) * x->w + ix) * ci, ci * sizeof(float));
                }
            }
        }
        float *yo = (float *)y->data + r0 * co;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, co, (int)K, 1.0f, cols, (int)K, w->data, (int)K, 0.0f, yo, co);
        cpu_bias_act(yo, nr, co, bias ? bias->data : NULL, BE_ACT_NONE);
    }
}
