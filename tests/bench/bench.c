/* bench.c — `make bench`: CPU timings of the SD 1.5 stages on a random-weight full-size checkpoint (f16,
 * exact SD 1.5 layout), with achieved GFLOP/s from the layer shapes and peak RSS. Not a test: nothing is asserted.
 *
 * Usage: build/sd-bench [runs]   (median of `runs` timings per stage, default 3)
 *   BENCH_SKIP_512=1         skips the 512² rows
 *   BENCH_STAGES=a,b,...     only these of text, unet256, unet512, vae256, vae512
 *   BENCH_VAE=auto|off|on    VAE decode mode: the pipeline's automatic choice (default), untiled, exact bands
 *   BENCH_VAE_LIMIT=MiB      activation budget of the decode (default: the pipeline's)
 *   BENCH_THREADS=n          CPU threads (default: all cores)
 *   SD_CPU_PROFILE=1         per-op times of the whole run when the backend is freed */
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

static void row(const char *name, double sec, double flops, const char *extra) {
    double gf = flops / 1e9;
    printf("| %-26s | %9.3f | %9.1f | %8.1f | %5.1f%% | %8.0f | %s\n", name, sec, gf, gf / sec, 100.0 * gf / sec / PEAK_GFLOPS,
           peak_rss_mib(), extra ? extra : "");
}

static int want(const char *stage) {
    const char *s = getenv("BENCH_STAGES");
    if (getenv("BENCH_SKIP_512") && strstr(stage, "512")) return 0;
    if (!s || !*s) return 1;
    size_t l = strlen(stage);
    for (const char *p = s; (p = strstr(p, stage)); p += l)
        if ((p == s || p[-1] == ',') && (p[l] == 0 || p[l] == ',')) return 1;
    return 0;
}

static void die(void) {
    fprintf(stderr, "error: %s\n", sd_last_error());
    exit(1);
}

/* One guided UNet step at an image side: the UNet on a batch of 2 (uncond + cond). Returns seconds, sets flops. */
static double unet_step(sd_ctx *c, int side, double *flops, size_t *arena) {
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
    *flops = b->flops - f0; /* measure mode counts the layer shapes without computing */
    size_t need = be_measure_end(b);
    *arena = need;
    if (need > b->arena.size && be_arena_reserve(b, need) != SD_OK) die();
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
    if (be_status(b) != SD_OK) die();
    return t;
}

/* One VAE decode of a side x side image with the given tiling; sets the nominal FLOPs (the untiled decode's
 * layer shapes: bands recompute a few halo rows, which is not counted) and the plan. */
static double vae_dec(sd_ctx *c, int side, int tiling, double *flops, vae_plan *plan) {
    be *b = c->vb; /* the VAE's backend (an f32 instance for SDXL's VAE on CUDA) */
    int h = side / 8, w = side / 8;
    float *lat = malloc(sizeof(float) * h * w * 4), *rgb = malloc(sizeof(float) * side * side * 3);
    for (int i = 0; i < h * w * 4; i++) lat[i] = (float)cos(i * 0.11);
    vae_decode_opts o;
    decode_opts(c, tiling, h, w, &o, flops);
    if (getenv("BENCH_VAE_LIMIT")) o.mem_limit = (size_t)atol(getenv("BENCH_VAE_LIMIT")) << 20;
    size_t need = vae_decode_arena_bytes(b, c->vae, h, w, &o);
    if (!need || vae_decode_plan(b, c->vae, h, w, &o, plan) != SD_OK) die();
    if (need > b->arena.size && be_arena_reserve(b, need) != SD_OK) die();
    double t0 = now();
    sd_status st = vae_decode(b, c->vae, lat, 1, h, w, &o, rgb);
    double t = now() - t0;
    free(lat);
    free(rgb);
    if (st != SD_OK) die();
    return t;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    if (runs < 1) runs = 1;
    const char *path = random_ckpt_sd15("tests/data/sd15-ldm-keys.tsv");
    if (!path) die();
    sd_load_params lp;
    sd_load_params_init(&lp);
    lp.model_path = path;
    if (getenv("BENCH_THREADS")) lp.threads = atoi(getenv("BENCH_THREADS"));
    const char *vm = getenv("BENCH_VAE");
    int tiling = vm && !strcmp(vm, "off") ? -1 : vm && !strcmp(vm, "on") ? 1 : 0;
    sd_ctx *c;
    double t0 = now();
    if (sd_load(&lp, &c) != SD_OK) die();
    double load = now() - t0;
    printf("random-weight SD 1.5 (%s), CPU backend, %d run(s) per stage, median\n", path, runs);
    printf("load %.1f s, weights in memory %.0f MiB, RSS after load %.0f MiB\n\n", load, c->b->weight_bytes / 1048576.0, peak_rss_mib());
    printf("| stage                      | seconds   | GFLOP     | GFLOP/s  | peak   | RSS MiB  |\n");
    printf("|----------------------------|-----------|-----------|----------|--------|----------|\n");
    double *t = malloc(runs * sizeof *t), fl = 0;
    if (want("text")) { /* text encoder: the two prompts of a guided generation */
        for (int i = 0; i < runs; i++) {
            text_cond cond;
            double f0 = c->b->flops, s = now();
            if (text_cond_encode(c, "a photo of an astronaut riding a horse on mars", 0, 1, &cond) != SD_OK) die();
            text_cond_free(&cond);
            if (text_cond_encode(c, "", 0, 1, &cond) != SD_OK) die();
            t[i] = now() - s;
            fl = (c->b->flops - f0) / 2; /* measure + real pass both count */
            text_cond_free(&cond);
        }
        row("text encode (2 prompts)", median(t, runs), fl, NULL);
    }
    static const int sides[2] = {256, 512};
    for (int k = 0; k < 2; k++) {
        char name[64];
        snprintf(name, sizeof name, "unet%d", sides[k]);
        if (!want(name)) continue;
        size_t arena;
        char how[64];
        for (int i = 0; i < runs; i++) t[i] = unet_step(c, sides[k], &fl, &arena);
        snprintf(name, sizeof name, "UNet guided step %d²", sides[k]);
        snprintf(how, sizeof how, "batch 2, arena %.0f MiB", arena / 1048576.0);
        row(name, median(t, runs), fl, how);
        be_arena_trim(c->b); /* as the pipeline does after sampling */
    }
    for (int k = 0; k < 2; k++) {
        char name[64], how[96];
        snprintf(name, sizeof name, "vae%d", sides[k]);
        if (!want(name)) continue;
        vae_plan pl;
        for (int i = 0; i < runs; i++) t[i] = vae_dec(c, sides[k], tiling, &fl, &pl);
        if (pl.mode == VAE_TILING_ON) snprintf(how, sizeof how, "exact bands of %d latent rows, arena %.0f MiB", pl.tile, pl.arena_bytes / 1048576.0);
        else snprintf(how, sizeof how, "%s, arena %.0f MiB", pl.mode == VAE_TILING_OFF ? "untiled" : "blended tiles", pl.arena_bytes / 1048576.0);
        snprintf(name, sizeof name, "VAE decode %d²", sides[k]);
        row(name, median(t, runs), fl, how);
        be_arena_trim(c->b);
    }
    printf("\npeak RSS %.0f MiB; f32 peak assumed %.1f GFLOP/s\n", peak_rss_mib(), PEAK_GFLOPS);
    free(t);
    sd_free(c);
    return 0;
}
