/* bench.c — `make bench`: CPU timings of the SD 1.5 stages on a random-weight full-size checkpoint (f16,
 * exact SD 1.5 layout), with achieved GFLOP/s from the layer shapes and peak RSS. Not a test: nothing is asserted.
 *
 * Usage: build/sd-bench [runs]   (median of `runs` timings per stage, default 3; BENCH_SKIP_512=1 skips 512²) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../../core/error.h"
#include "../../pipeline/pipeline.h"
#include "../random_ckpt.h"

#define PEAK_GFLOPS 166.4 /* 2 cores x 32 f32 FLOP/cycle x 2.6 GHz (AVX-512 FMA), the machine's f32 ceiling */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static void row(const char *name, double sec, double flops) {
    double gf = flops / 1e9;
    printf("| %-26s | %9.3f | %9.1f | %8.1f | %5.1f%% |\n", name, sec, gf, gf / sec, 100.0 * gf / sec / PEAK_GFLOPS);
}

/* One guided UNet step at an image side: the UNet on a batch of 2 (uncond + cond). Returns seconds, sets flops. */
static double unet_step(sd_ctx *c, int side, double *flops) {
    be *b = c->b;
    int h = side / 8, w = side / 8;
    const unet_config *uc = unet_get_config(c->unet);
    float ts[2] = {500, 500};
    float *ctxh = calloc(2 * 77 * uc->ctx_dim, sizeof(float)), *xh = malloc(sizeof(float) * 2 * h * w * 4);
    for (int i = 0; i < 2 * h * w * 4; i++) xh[i] = (float)sin(i * 0.37);
    be_measure_begin(b);
    be_tensor x = be_new(b, 2, h, w, 4), e = be_new(b, 2, h, w, 4), ctx = be_new(b, 2, 1, 77, uc->ctx_dim);
    unet_cond cond = {&ctx, NULL, NULL, NULL};
    double f0 = b->flops;
    unet_forward(b, c->unet, &x, ts, &cond, &e);
    *flops = b->flops - f0;
    size_t need = be_measure_end(b);
    if (need > b->arena.size) be_arena_reserve(b, need);
    x = be_new(b, 2, h, w, 4);
    e = be_new(b, 2, h, w, 4);
    ctx = be_new(b, 2, 1, 77, uc->ctx_dim);
    be_upload(b, &x, xh);
    be_upload(b, &ctx, ctxh);
    double t0 = now();
    unet_forward(b, c->unet, &x, ts, &cond, &e);
    be_sync(b);
    double t = now() - t0;
    be_release(b, 0);
    free(ctxh);
    free(xh);
    if (be_status(b) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); exit(1); }
    return t;
}

static double vae_dec(sd_ctx *c, int side, double *flops) {
    be *b = c->b;
    int h = side / 8, w = side / 8;
    float *lat = malloc(sizeof(float) * h * w * 4), *rgb = malloc(sizeof(float) * side * side * 3);
    for (int i = 0; i < h * w * 4; i++) lat[i] = (float)cos(i * 0.11);
    vae_decode_opts o = {VAE_TILING_OFF, 0, 0, 0};
    double f0 = b->flops;
    size_t need = vae_decode_arena_bytes(b, c->vae, h, w, &o); /* one measure-mode pass: counts the FLOPs once */
    *flops = b->flops - f0;
    if (need > b->arena.size) be_arena_reserve(b, need);
    double t0 = now();
    sd_status st = vae_decode(b, c->vae, lat, 1, h, w, &o, rgb);
    double t = now() - t0;
    free(lat);
    free(rgb);
    if (st != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); exit(1); }
    return t;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    if (runs < 1) runs = 1;
    const char *path = random_ckpt_sd15("tests/data/sd15-ldm-keys.tsv");
    if (!path) { fprintf(stderr, "error: %s\n", sd_last_error()); return 1; }
    sd_load_params lp;
    sd_load_params_init(&lp);
    lp.model_path = path;
    sd_ctx *c;
    double t0 = now();
    if (sd_load(&lp, &c) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); return 1; }
    double load = now() - t0;
    printf("random-weight SD 1.5 (%s), CPU backend, %d run(s) per stage, median\n", path, runs);
    printf("load %.1f s, weights in memory %.0f MiB\n\n", load, c->b->weight_bytes / 1048576.0);
    printf("| stage                      | seconds   | GFLOP     | GFLOP/s  | peak   |\n");
    printf("|----------------------------|-----------|-----------|----------|--------|\n");
    double *t = malloc(runs * sizeof *t), fl = 0;
    /* text encoder: the two prompts of a guided generation */
    for (int i = 0; i < runs; i++) {
        sd_cond cond;
        double f0 = c->b->flops, s = now();
        if (sd_encode_prompt(c, "a photo of an astronaut riding a horse on mars", 0, 1, &cond) != SD_OK ||
            sd_encode_prompt(c, "", 0, 1, &cond) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); return 1; }
        t[i] = now() - s;
        fl = (c->b->flops - f0) / 2; /* measure + real pass both count */
        sd_cond_free(&cond);
    }
    row("text encode (2 prompts)", median(t, runs), fl);
    int sides[2] = {256, 512};
    int skip512 = getenv("BENCH_SKIP_512") != NULL;
    for (int k = 0; k < 2; k++) {
        if (k == 1 && skip512) break;
        for (int i = 0; i < runs; i++) t[i] = unet_step(c, sides[k], &fl);
        char name[64];
        snprintf(name, sizeof name, "UNet guided step %d²", sides[k]);
        row(name, median(t, runs), fl);
    }
    for (int k = 0; k < 2; k++) {
        if (k == 1 && skip512) break;
        for (int i = 0; i < runs; i++) t[i] = vae_dec(c, sides[k], &fl);
        char name[64];
        snprintf(name, sizeof name, "VAE decode %d²", sides[k]);
        row(name, median(t, runs), fl);
    }
    printf("\npeak RSS %.0f MiB; f32 peak assumed %.1f GFLOP/s\n", peak_rss_mib(), PEAK_GFLOPS);
    free(t);
    sd_free(c);
    return 0;
}
