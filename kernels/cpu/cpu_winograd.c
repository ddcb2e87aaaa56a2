/* cpu_winograd.c — 3x3 stride-1 convolutions (zero padding 1) by Winograd F(m x m, 3 x 3), m = 2, 4 or 6.
 *
 * The output is cut into m x m tiles; tile t reads the (m+2) x (m+2) input patch around it. With T = m + 2:
 *   U[ξ][o][c] = (G g_oc Gᵀ)[ξ]              the weights, T² matrices [O][C]        (wino_weight)
 *   V[ξ][t][c] = (Bᵀ d_tc B)[ξ]              the input tiles, T² matrices [tiles][C] (wino_input)
 *   M[ξ] = V[ξ] · U[ξ]ᵀ                      T² independent GEMMs [tiles][O]         (sgemm)
 *   y_to = Aᵀ M[·][t][o] A (+ bias)          each tile's m x m outputs               (wino_output)
 * so a tile costs T² multiply-adds per (c, o) instead of 9 m²: 4 per output for m = 2 (2.25x fewer than direct),
 * 2.25 for m = 4 (4x), 1.78 for m = 6 (5x). The transforms are the level's (cpu_wino_body.h), vectorised across channels.
 *
 * The weights are transformed per call, for a block of output channels at a time: kept for the model's life the
 * transformed weights would be 4x (m = 4) or 7x (m = 6) the f32 size of the 3x3 kernels (8.7 GB for SD 1.5's
 * UNet at m = 4, against its 1 GB of f16 3x3 kernels), and per call the transform is a few percent of the layer
 * (it is linear in the weights, the products are linear in weights x tiles). Work is split over threads by
 * chunks of tiles; each thread transforms its tiles, runs the T² GEMMs and transforms back. */
#include "cpu_internal.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINO_U_FLOATS ((size_t)8 << 20) /* transformed weights of one output-channel block: 32 MiB at most */
#define WINO_TILES 256                  /* tiles per chunk: the GEMMs' row count */

/* Leading dimension of the T² matrices of a transform buffer: padded to 64 bytes past a multiple of 4 KiB, so the
 * T² vectors written together for one tile do not all fall in one cache set. */
static size_t ld_pad(size_t n) { return (n + 1023) / 1024 * 1024 + 16; }

void cpu_conv3x3_wino(be *b, const be_tensor *x, const float *wf, const float *bias, be_tensor *y, int o0, int O, int m) {
    cpu_impl *c = b->impl;
    const cpu_kern *k = cpu_kern_get();
    int N = x->n, H = x->h, W = x->w, C = x->c, T = m + 2, TT = T * T, nth = c->threads;
    int th = (H + m - 1) / m, tw = (W + m - 1) / m;
    long ntiles = (long)N * th * tw;
    int ob = O;
    if ((size_t)TT * O * C > WINO_U_FLOATS) {
        ob = (int)(WINO_U_FLOATS / ((size_t)TT * C)) & ~15;
        if (ob < 16) ob = 16;
        if (ob > O) ob = O;
    }
    long tb = WINO_TILES;
    if (ntiles < tb * nth) tb = (ntiles + nth - 1) / nth; /* a chunk for every thread */
    long nchunks = (ntiles + tb - 1) / tb;
    /* Too few chunks for the threads (small images): blocks of output channels too, so each thread packs only
     * its part of the transformed weights (the tiles' input transform is then repeated per block: it is cheap). */
    int ncb = 1;
    while (nchunks * ncb < nth && ob / (2 * ncb) >= 64) ncb *= 2;
    int cbw = ((ob + ncb - 1) / ncb + 15) & ~15;
    size_t ldu = ld_pad((size_t)ob * C), ldv = ld_pad((size_t)tb * C), ldm = ld_pad((size_t)tb * cbw);
    size_t each = TT * (ldv + ldm);
    float *scr = cpu_scratch(b, TT * ldu + each * nth);
    if (!scr) return;
    float *U = scr, *ys = (float *)y->data + o0;
    const float *xs = x->data;
    for (int b0 = 0; b0 < O; b0 += ob) {
        int nb = O - b0 < ob ? O - b0 : ob, nblk = (nb + cbw - 1) / cbw;
#pragma omp parallel for schedule(static) num_threads(nth)
        for (int o = 0; o < nb; o++) k->wino_weight(m, wf + (size_t)(b0 + o) * 9 * C, C, 1, U + (size_t)o * C, ldu);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
        for (long task = 0; task < nchunks * nblk; task++) {
            long t0 = task / nblk * tb;
            int nt = (int)(ntiles - t0 < tb ? ntiles - t0 : tb), c0 = (int)(task % nblk) * cbw, cw = nb - c0 < cbw ? nb - c0 : cbw;
            float *V = scr + TT * ldu + each * omp_get_thread_num(), *M = V + TT * ldv;
            k->wino_input(m, xs, N, H, W, C, tw, th, t0, nt, V, ldv);
            for (int e = 0; e < TT; e++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nt, cw, C, 1.0f, V + e * ldv, C, U + e * ldu + (size_t)c0 * C, C, 0.0f,
                            M + e * ldm, cw);
            k->wino_output(m, M, ldm, N, H, W, cw, tw, th, t0, nt, bias ? bias + b0 + c0 : NULL, ys + b0 + c0, y->c);
        }
    }
}

/* $SD_CPU_CONV: default, direct (no Winograd), auto (F(4x4)/F(6x6) where cpu_wino_rule says they win, everywhere),
 * wino2 / wino4 / wino6 (that tile for every 3x3 stride-1 convolution), im2col (no Winograd and no slab path).
 * The default weighs rounding against speed. Winograd's error grows with the tile: over max |y|, F(2x2) 6.7e-7,
 * F(4x4) 5.2e-6, F(6x6) 2.6e-5 on the shapes of test_cpu_winograd.c (the direct path's f32 sums are near F(2x2)).
 * In the sampler's loop it compounds over the steps: with F(4x4) in the UNet the demo model's PNDM case ends
 * 1.08e-5 of the latent's scale from diffusers, past the 8e-6 bar the goldens hold; with F(2x2) 3.3e-6 to 5.6e-6 (the
 * direct path 4.0e-6 to 5.4e-6: the thread count changes the sums' order, and every rounding after). A decode
 * runs once: there F(4x4)/F(6x6) keep every VAE golden at its tolerance. So by default the UNet (and every model
 * but a decode) takes F(2x2) where cpu_wino_rule_loop says it wins (1.7-2x the direct path's speed on SD 1.5's
 * layers), and the VAE decode (be->single_pass) what cpu_wino_rule says (F(6x6): 3.6x the direct path's). */
static int g_mode = -1;

int cpu_conv_mode(void) {
    static const struct { const char *name; int mode; } k_modes[] = {
        {"default", CPU_CONV_DEFAULT}, {"direct", CPU_CONV_DIRECT}, {"auto", CPU_CONV_AUTO}, {"im2col", CPU_CONV_IM2COL},
        {"wino2", CPU_CONV_WINO2},     {"wino4", CPU_CONV_WINO4},   {"wino6", CPU_CONV_WINO6}};
    if (g_mode < 0) {
        const char *e = getenv("SD_CPU_CONV");
        g_mode = CPU_CONV_DEFAULT;
        size_t i = 0, n = sizeof k_modes / sizeof *k_modes;
        while (e && *e && i < n && strcmp(e, k_modes[i].name)) i++;
        if (e && *e && i == n)
            fprintf(stderr, "warning: SD_CPU_CONV=%s is not one of default, direct, auto, im2col, wino2, wino4, wino6: the default is used\n", e);
        else if (e && *e)
            g_mode = k_modes[i].mode;
    }
    return g_mode;
}

int cpu_conv_mode_set(int mode) {
    int old = cpu_conv_mode();
    g_mode = mode;
    return old;
}

/* The rule, from one-thread CPU times on this project's machine (AMD EPYC Zen 4, avx2 and avx512 alike; f16
 * weights; direct = the slab path), in ms, direct / F(4x4) / F(6x6):
 *   2x64x64  320->320   163 / 58 / 51      2x32x32  640->640  173 / 64 / 83     2x16x16 1280->1280 181 / 126 / 180
 *   2x8x8   1280->1280   56 / 82 / 114     1x16x16 1280->1280 102 / 97 / 155    2x12x12 1280->1280 122 / 106 / 126
 *   1x24x24 1280->1280  211 / 136 / 170    1x16x16  320->320  5.5 / 6.5 / 10    1x12x12  640->640   12 / 21 / 27
 *   1x48x48  320->320    46 / 20 / 20      1x64x64  512->512  206 / 78 / 80     1x128x128 512->512 827 / 283 / 250
 *   1x512x512 128->128  844 / 398 / 323    1x512x512 128->3   110 / 59 / 79     2x64x64    4->320  2.9 / 6.9 / 6.6
 * Winograd needs enough tiles to reuse each transformed weight (it has 4x, as f32 8x, the bytes of an f16 kernel)
 * and channels to make the GEMMs' inner dimension: F(4x4) from 16 input channels and 7 tiles across the width
 * (times the batch; at the square sizes above that is 24 tiles or more). F(6x6) computes 64 products per 36
 * outputs against 36 per 16 but rounds the sides up to multiples of 6: it is taken from 64 columns (every VAE
 * level above the latent, SD's largest UNet level); not for a few output channels, where the transforms dominate.
 * The rule does not look at the height, so a band of rows of an image (vae_stream.c) takes the path the whole
 * image takes, and with its rows aligned to the tile grid rounds exactly as the whole image does. */
int cpu_wino_rule(int N, int H, int W, int C, int O) {
    (void)H;
    if (C < 16 || N * ((W + 3) / 4) < 7) return 0;
    return W >= 64 && O >= 16 ? 6 : 4;
}

/* F(2x2) in the loop (one-thread CPU ms, direct / F(2x2), on an AMD EPYC Zen 5 at the avx2 level, `make bench`'s
 * conv rows; avx512 alike):
 *   2x64x64 320->320 130 / 70     2x32x32 640->640 134 / 67     2x16x16 1280->1280 146 / 87    2x8x8 1280->1280 45 / 39
 *   2x16x16 96->96 (the demo model) 1.0 / 0.6                   1x8x8 320->320 1.0 / 1.5       1x4x4 1280->1280 8 / 19
 * Its 16 products per 4 outputs need enough tiles to reuse each transformed weight: 8 across the width (times the
 * batch) and more. */
int cpu_wino_rule_loop(int N, int H, int W, int C, int O) {
    (void)H;
    (void)O;
    /* the generic level's transforms are scalar: there F(2x2) needs 4x the tiles (2x8x8 1280->1280 57 / 104 ms,
     * 2x16x16 1280->1280 159 / 147, 2x32x32 640->640 128 / 84) */
    int across = cpu_level_get() == CPU_LEVEL_GENERIC ? 32 : 8;
    return C >= 16 && N * ((W + 1) / 2) >= across ? 2 : 0;
}

int cpu_wino_choose(const be *b, const be_tensor *x, int O) {
    int mode = cpu_conv_mode();
    if (mode == CPU_CONV_WINO2) return 2;
    if (mode == CPU_CONV_WINO4) return 4;
    if (mode == CPU_CONV_WINO6) return 6;
    if (mode == CPU_CONV_DEFAULT && !b->single_pass) return cpu_wino_rule_loop(x->n, x->h, x->w, x->c, O);
    if (mode != CPU_CONV_AUTO && mode != CPU_CONV_DEFAULT) return 0;
    return cpu_wino_rule(x->n, x->h, x->w, x->c, O);
}
