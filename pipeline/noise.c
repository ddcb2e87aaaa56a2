/* noise.c — the starting noise of each image (its seed, AUTOMATIC1111's variation seed) and the fresh noise
 * stochastic samplers draw, each image from its own generator so that batching never changes an image. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "gen.h"

/* torch fills NCHW; our latents are NHWC */
static void nchw_to_nhwc(const float *src, int c, int h, int w, float *dst) {
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h * w; i++) dst[(size_t)i * c + ch] = src[(size_t)ch * h * w + i];
}

void gen_randn_nhwc(gen *g, rng *r, float *out) {
    rng_randn(r, g->nchw, (size_t)g->lc * g->h * g->w);
    nchw_to_nhwc(g->nchw, g->lc, g->h, g->w, out);
}

/* AUTOMATIC1111's slerp of the variation noise into the base noise (torch.norm over dim 1 of [C, H, W]).
 * Arrays are NCHW here; norms per (c, w) over h, as A1111's `dim=1` on a 3-D tensor. dot: [C * W] scratch. */
static void slerp_variation(float val, float *base, const float *var, int C, int H, int W, double *dot) {
    int n = C * W;
    double mean = 0;
    for (int c = 0; c < C; c++)
        for (int x = 0; x < W; x++) {
            double nl = 0, nh = 0, d = 0;
            for (int y = 0; y < H; y++) {
                double a = base[((size_t)c * H + y) * W + x], b = var[((size_t)c * H + y) * W + x];
                nl += a * a; nh += b * b; d += a * b;
            }
            dot[c * W + x] = d / (sqrt(nl) * sqrt(nh));
            mean += dot[c * W + x];
        }
    mean /= n;
    for (int c = 0; c < C; c++)
        for (int x = 0; x < W; x++) {
            double om = acos(dot[c * W + x]), so = sin(om);
            for (int y = 0; y < H; y++) {
                size_t i = ((size_t)c * H + y) * W + x;
                if (mean > 0.9995) base[i] = (float)(base[i] * val + var[i] * (1 - val)); /* A1111's fallback, as written */
                else base[i] = (float)(sin((1.0 - val) * om) / so * base[i] + sin(val * om) / so * var[i]);
            }
        }
}

sd_status gen_noise_init(gen *g, float *x) {
    const sd_gen_params *p = g->p;
    size_t per = (size_t)g->lc * g->h * g->w;
    float *var = NULL;
    double *dot = NULL;
    if (p->variation_strength > 0) {
        var = malloc(per * sizeof *var);
        dot = malloc((size_t)g->lc * g->w * sizeof *dot);
        if (!var || !dot) {
            free(var);
            free(dot);
            return err_fail(SD_ERR_MEMORY, "out of memory for the variation noise");
        }
    }
    for (int i = 0; i < g->B; i++) {
        uint64_t seed = p->seed + (uint64_t)(g->first + i);
        rng_init(&g->img[i], g->rng, seed);
        rng_init(&g->smp[i], g->srng, seed);
        rng_randn(&g->img[i], g->nchw, per);
        if (var) {
            rng vr;
            /* one variation seed for every image of the call, as the infotext records it: the images of a call
             * depend only on the parameters and each image's seed (sd.h), so sd batch may pack them */
            rng_init(&vr, g->rng, p->variation_seed);
            rng_randn(&vr, var, per);
            slerp_variation(p->variation_strength, g->nchw, var, g->lc, g->h, g->w, dot);
        }
        nchw_to_nhwc(g->nchw, g->lc, g->h, g->w, x + i * per);
    }
    free(var);
    free(dot);
    return SD_OK;
}

sd_status gen_noise_draw(void *user, float *out) {
    gen *g = user;
    size_t per = (size_t)g->lc * g->h * g->w;
    for (int i = 0; i < g->B; i++) gen_randn_nhwc(g, g->separate_srng ? &g->smp[i] : &g->img[i], out + i * per);
    return SD_OK;
}
