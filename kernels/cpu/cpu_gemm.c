/* cpu_gemm.c — GEMM-shaped ops on the CPU: linear, and conv2d as an implicit GEMM over a padded row slab
 * (3x3, stride 1) or as chunked NHWC im2col + sgemm (other kernels and strides). Work is split over the
 * OpenMP threads here; each part calls single-threaded OpenBLAS. */
#include "cpu_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static void epilogue(float *y, int ldy, int rows, int cols, const float *bias, be_act act) {
    if (!bias && act == BE_ACT_NONE) return;
    for (int r = 0; r < rows; r++) cpu_bias_act_row(y + (size_t)r * ldy, bias, act, y + (size_t)r * ldy, cols);
}

static void sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *y, int ldy) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, y, ldy);
}

void cpu_gemm_nt(be *b, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *y, int ldy, const float *bias, be_act act) {
    cpu_impl *c = b->impl;
    int T = c->threads;
    if (T == 1 || 2.0 * M * N * K < 4e6) {
        sgemm_nt(M, N, K, A, lda, B, ldb, 0.0f, y, ldy);
        epilogue(y, ldy, M, N, bias, act);
        return;
    }
    /* Each part packs the operand it does not split: splitting rows repeats B (N x K) per thread, splitting columns
     * repeats A (M x K). So split the longer side. */
    if (M >= N || N < 32 * T) { /* rows: each thread a contiguous block of whole rows, epilogue while they are in cache */
#pragma omp parallel num_threads(T)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            int m0 = (int)((long)M * t / nt), m1 = (int)((long)M * (t + 1) / nt);
            if (m1 > m0) {
                sgemm_nt(m1 - m0, N, K, A + (size_t)m0 * lda, lda, B, ldb, 0.0f, y + (size_t)m0 * ldy, ldy);
                epilogue(y + (size_t)m0 * ldy, ldy, m1 - m0, N, bias, act);
            }
        }
    } else { /* few rows (text encoder, low-resolution UNet levels): columns, in multiples of 16 */
#pragma omp parallel num_threads(T)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            int n0 = (int)((long)N * t / nt) & ~15, n1 = t == nt - 1 ? N : (int)((long)N * (t + 1) / nt) & ~15;
            if (n1 > n0) {
                sgemm_nt(M, n1 - n0, K, A, lda, B + (size_t)n0 * ldb, ldb, 0.0f, y + n0, ldy);
                epilogue(y + n0, ldy, M, n1 - n0, bias ? bias + n0 : NULL, act);
            }
        }
    }
}

void cpu_linear(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, be_act act, be_tensor *y) {
    cpu_impl *c = b->impl;
    int rows = x->n * x->h * x->w, O = w->out, nb = cpu_weight_block(w);
    const float *bv = cpu_vec(bias);
    for (int o0 = 0; o0 < O; o0 += nb) {
        int n = O - o0 < nb ? O - o0 : nb;
        const float *wf = cpu_weight_rows(b, w, o0, n);
        if (!wf) return;
        double t0 = c->profile ? cpu_now() : 0;
        /* y[rows, o0:o0+n] = x[rows, in] · W[o0:o0+n, in]ᵀ */
        cpu_gemm_nt(b, rows, n, w->in, x->data, w->in, wf, w->in, (float *)y->data + o0, O, bv ? bv + o0 : NULL, act);
        if (c->profile) c->prof_s[PROF_LINEAR] += cpu_now() - t0;
    }
    if (c->profile) {
        c->prof_calls[PROF_LINEAR]++;
        c->prof_flops[PROF_LINEAR] += 2.0 * rows * w->out * w->in;
    }
}

/* ---- 3x3 stride-1 pad-1 convolution as 9 accumulated GEMMs over a padded slab ----
 * A chunk of R output rows of one sample reads input rows r0-1 .. r0+R; they are copied once, zero padded,
 * into a slab [R+2][W+2][C] (+2 spare pixels). Computing the output over the padded width W+2 makes every
 * tap (ky, kx) one GEMM: out[R·(W+2), O] += slab[from ky·(W+2)+kx][R·(W+2), C] · W_tap[O, C]ᵀ, with W_tap
 * the weight columns (ky·3+kx)·C .. +C (leading dimension 9C). Two columns per row are garbage and dropped. */
#define SLAB_ROWS 1024 /* output positions (GEMM rows) per chunk */

/* Output channels [o0, o0+O) of y from their weight rows wf [O][9C]; bias is already offset. Tasks are chunks of
 * R rows, and when those are too few for the threads also blocks of output channels (each task then packs only
 * its part of the weights, instead of every thread packing all of them). */
static void conv3x3_slab(be *b, const be_tensor *x, const float *wf, const float *bias, be_tensor *y, int o0, int O, int R) {
    cpu_impl *c = b->impl;
    int N = x->n, H = x->h, W = x->w, C = x->c, Wp = W + 2, T = c->threads, ldy = y->c;
    int per = (H + R - 1) / R, chunks = N * per, ncb = 1;
    while ((long)chunks * ncb < 2L * T && O / (2 * ncb) >= 64) ncb *= 2;
    int cbw = ((O + ncb - 1) / ncb + 15) & ~15;
    ncb = (O + cbw - 1) / cbw;
    int tasks = chunks * ncb;
    size_t slab = ((size_t)(R + 2) * Wp + 2) * C, outf = (size_t)R * Wp * cbw, each = (slab + outf + 15) & ~(size_t)15;
    float *scr = cpu_scratch(b, each * T);
    if (!scr) return;
    const float *xs = x->data;
    float *ys = y->data;
#pragma omp parallel for schedule(dynamic, 1) num_threads(T)
    for (int task = 0; task < tasks; task++) {
        int ch = task / ncb, c0 = task % ncb * cbw, cw = O - c0 < cbw ? O - c0 : cbw;
        int n = ch / per, r0 = ch % per * R, rr = H - r0 < R ? H - r0 : R;
        float *s = scr + each * omp_get_thread_num(), *o = s + slab;
        for (int i = 0; i < rr + 2; i++) {
            int iy = r0 - 1 + i;
            float *row = s + (size_t)i * Wp * C;
            if (iy < 0 || iy >= H) { memset(row, 0, (size_t)Wp * C * sizeof(float)); continue; }
            memset(row, 0, C * sizeof(float));
            memcpy(row + C, xs + (((size_t)n * H + iy) * W) * C, (size_t)W * C * sizeof(float));
            memset(row + (size_t)(W + 1) * C, 0, C * sizeof(float));
        }
        memset(s + (size_t)(rr + 2) * Wp * C, 0, 2 * C * sizeof(float)); /* read only by dropped columns */
        int M = rr * Wp;
        const float *wc = wf + (size_t)c0 * 9 * C;
        for (int t = 0; t < 9; t++) {
            int ky = t / 3, kx = t % 3;
            sgemm_nt(M, cw, C, s + ((size_t)ky * Wp + kx) * C, C, wc + (size_t)t * C, 9 * C, t ? 1.0f : 0.0f, o, cw);
        }
        const float *bc = bias ? bias + c0 : NULL;
        for (int i = 0; i < rr; i++) {
            float *dst = ys + (((size_t)n * H + r0 + i) * W) * ldy + o0 + c0;
            const float *src = o + (size_t)i * Wp * cw;
            for (int j = 0; j < W; j++) {
                if (bc) cpu_bias_act_row(src + (size_t)j * cw, bc, BE_ACT_NONE, dst + (size_t)j * ldy, cw);
                else memcpy(dst + (size_t)j * ldy, src + (size_t)j * cw, cw * sizeof(float));
            }
        }
    }
}

/* ---- im2col: [positions, kh·kw·C] rows in the weight's [out][kh][kw][in] order ---- */

static void im2col_rows(const be_tensor *x, const be_tensor *y, int kh, int kw, int stride, int pad, size_t g0, size_t nr, float *cols) {
    int ci = x->c;
    size_t K = (size_t)kh * kw * ci;
    const float *xs = x->data;
    for (size_t r = 0; r < nr; r++) {
        size_t g = g0 + r;
        int n = (int)(g / ((size_t)y->h * y->w)), oy = (int)(g / y->w % y->h), ox = (int)(g % y->w);
        float *dst = cols + r * K;
        for (int ky = 0; ky < kh; ky++) {
            int iy = oy * stride - pad + ky;
            for (int kx = 0; kx < kw; kx++) {
                int ix = ox * stride - pad + kx;
                float *d = dst + ((size_t)ky * kw + kx) * ci;
                if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w) memset(d, 0, ci * sizeof(float));
                else memcpy(d, xs + (((size_t)n * x->h + iy) * x->w + ix) * ci, ci * sizeof(float));
            }
        }
    }
}

#define IM2COL_FLOATS (1u << 20) /* per chunk: a few MiB, so the chunk is still in cache when the GEMM reads it */

/* Output channels [o0, o0+co) of y from their weight rows wf [co][kh·kw·C]; bias is already offset. */
static void conv_im2col(be *b, const be_tensor *x, const float *wf, const float *bias, int stride, int pad, int kh, int kw, be_tensor *y,
                        int o0, int co) {
    cpu_impl *c = b->impl;
    int T = c->threads, ldy = y->c;
    size_t rows = (size_t)y->n * y->h * y->w, K = (size_t)kh * kw * x->c;
    size_t chunk = IM2COL_FLOATS / K;
    if (chunk < 16) chunk = 16;
    float *ys = y->data;
    if (rows >= chunk * T) { /* each thread its own chunks: im2col and GEMM on the same core */
        float *scr = cpu_scratch(b, chunk * K * T);
        if (!scr) return;
        long tasks = (long)((rows + chunk - 1) / chunk);
#pragma omp parallel for schedule(dynamic, 1) num_threads(T)
        for (long t = 0; t < tasks; t++) {
            size_t r0 = (size_t)t * chunk, nr = rows - r0 < chunk ? rows - r0 : chunk;
            float *cols = scr + chunk * K * omp_get_thread_num();
            im2col_rows(x, y, kh, kw, stride, pad, r0, nr, cols);
            sgemm_nt((int)nr, co, (int)K, cols, (int)K, wf, (int)K, 0.0f, ys + r0 * ldy + o0, ldy);
            epilogue(ys + r0 * ldy + o0, ldy, (int)nr, co, bias, BE_ACT_NONE);
        }
        return;
    }
    /* few positions (small latents): one shared im2col, the GEMM split over the threads */
    float *cols = cpu_scratch(b, rows * K);
    if (!cols) return;
#pragma omp parallel for schedule(static) num_threads(T) if (rows * K > 32768)
    for (size_t r = 0; r < rows; r++) im2col_rows(x, y, kh, kw, stride, pad, r, 1, cols + r * K);
    cpu_gemm_nt(b, (int)rows, co, (int)K, cols, (int)K, wf, (int)K, ys + o0, ldy, bias, BE_ACT_NONE);
}

void cpu_conv2d(be *b, const be_tensor *x, const be_weight *w, const be_weight *bias, int stride, int pad_lo, int pad_hi, be_tensor *y) {
    cpu_impl *c = b->impl;
    int ci = x->c, co = w->out, kh = w->kh, kw = w->kw, nb = cpu_weight_block(w);
    size_t rows = (size_t)y->n * y->h * y->w;
    const float *bv = cpu_vec(bias);
    int s1p1 = kh == 3 && kw == 3 && stride == 1 && pad_lo == 1 && pad_hi == 1;
    int wino = s1p1 ? cpu_wino_choose(b, x, co) : 0;
    int slab = s1p1 && x->w >= 16 && ci >= 16 && cpu_conv_mode() != CPU_CONV_IM2COL;
    int R = (SLAB_ROWS + x->w + 1) / (x->w + 2);
    if (R > x->h) R = x->h;
    while (R > 1 && (long)x->n * ((x->h + R - 1) / R) < c->threads) R = (R + 1) / 2; /* a chunk for every thread */
    R = (x->h + (x->h + R - 1) / R - 1) / ((x->h + R - 1) / R);                      /* chunks of equal height */
    for (int o0 = 0; o0 < co; o0 += nb) {
        int n = co - o0 < nb ? co - o0 : nb;
        const float *wf = cpu_weight_rows(b, w, o0, n);
        if (!wf) return;
        double t0 = c->profile ? cpu_now() : 0;
        const float *bo = bv ? bv + o0 : NULL;
        if (kh == 1 && kw == 1 && stride == 1 && pad_lo == 0 && pad_hi == 0) /* a 1x1 conv is a linear layer on [N*H*W, C] */
            cpu_gemm_nt(b, (int)rows, n, ci, x->data, ci, wf, ci, (float *)y->data + o0, co, bo, BE_ACT_NONE);
        else if (wino)
            cpu_conv3x3_wino(b, x, wf, bo, y, o0, n, wino);
        else if (slab)
            conv3x3_slab(b, x, wf, bo, y, o0, n, R);
        else
            conv_im2col(b, x, wf, bo, stride, pad_lo, kh, kw, y, o0, n);
        if (c->profile) c->prof_s[PROF_CONV] += cpu_now() - t0;
    }
    if (c->profile) {
        c->prof_calls[PROF_CONV]++;
        c->prof_flops[PROF_CONV] += 2.0 * rows * co * ci * kh * kw;
    }
}
