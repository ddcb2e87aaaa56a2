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
#include "../../pipeline/lora.h"
#include "../../pipeline/pipeline.h"
#include "../random_ckpt.h"

#define PEAK_GFLOPS 166.4 /* 2 cores x 32 f32 FLOP/cycle x 2.6 GHz (AVX-512 FMA), the machine's f32 ceiling */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
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
    unet_cond cond = {.ctx = &ctx};
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

/* A random kohya-layout LoRA of rank r on every layer kohya's default SD 1.5 LoRA trains: the UNet's transformer
 * linears (attention, feed-forward, projections) and the text encoder's attention and MLP. f16, as shared files are. */
static const char *write_lora(sd_ctx *c, int r) {
    static char path[512];
    snprintf(path, sizeof path, "%s/bench-lora-r%d.safetensors", getenv("SD_TEST_CACHE") ? getenv("SD_TEST_CACHE") : "build/cache", r);
    FILE *f = fopen(path, "rb");
    if (f) { fclose(f); return path; }
    static const char *const tails[] = {"to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out",
                                        "q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"};
    st_writer *w = st_writer_new();
    uint64_t seed = 7;
    for (int part = 0; part < LORA_PARTS; part++)
        for (int i = 0; i < wsrc_count(c->lora->src[part]); i++) {
            wsrc *x = wsrc_at(c->lora->src[part], i);
            char layer[512];
            snprintf(layer, sizeof layer, "%.*s", (int)(strlen(x->name) - 7), x->name); /* without ".weight" */
            int hit = 0;
            for (size_t k = 0; k < sizeof tails / sizeof *tails; k++) {
                size_t l = strlen(layer), tl = strlen(tails[k]);
                hit |= l > tl && !strcmp(layer + l - tl, tails[k]) && layer[l - tl - 1] == '.';
            }
            if (!hit) continue;
            char key[600];
            snprintf(key, sizeof key, "%s", part == LORA_UNET ? "lora_unet_" : "lora_te_");
            for (char *p = layer, *o = key + strlen(key); ; p++, o++) { *o = *p == '.' ? '_' : *p; if (!*p) break; }
            int in = x->w->in * x->w->kh * x->w->kw, out = x->w->out;
            float *down = malloc(sizeof(float) * r * in), *up = malloc(sizeof(float) * out * r);
            for (int j = 0; j < r * in; j++) down[j] = (float)(((seed = seed * 6364136223846793005ull + 1) >> 40) / 16777216.0 - 0.5) * 0.02f;
            for (int j = 0; j < out * r; j++) up[j] = (float)(((seed = seed * 6364136223846793005ull + 1) >> 40) / 16777216.0 - 0.5) * 0.02f;
            char name[700];
            float alpha = (float)r;
            snprintf(name, sizeof name, "%s.lora_down.weight", key);
            if (st_writer_add_f32(w, name, ST_F16, 2, (int64_t[]){r, in}, down) != SD_OK) die();
            snprintf(name, sizeof name, "%s.lora_up.weight", key);
            if (st_writer_add_f32(w, name, ST_F16, 2, (int64_t[]){out, r}, up) != SD_OK) die();
            snprintf(name, sizeof name, "%s.alpha", key);
            if (st_writer_add_f32(w, name, ST_F16, 0, NULL, &alpha) != SD_OK) die();
            free(down), free(up);
        }
    if (st_writer_save(w, path) != SD_OK) die();
    st_writer_free(w);
    return path;
}

/* LoRA: merging a rank-128 file into the loaded weights (open, place, up·down GEMMs, upload), putting the base back,
 * and a 512² step with it merged (merged weights keep the checkpoint's f16: the step costs what it did). */
static void lora_rows(sd_ctx *c, int runs, double *t) {
    int r = getenv("BENCH_LORA_RANK") ? atoi(getenv("BENCH_LORA_RANK")) : 128;
    const char *path = write_lora(c, r);
    sd_lora l = {path, 1.0f, 1.0f};
    sd_gen_params p;
    sd_gen_params_init(&p);
    p.prompt = "x";
    p.loras = &l;
    p.lora_count = 1;
    lora_call on, off = {0};
    if (lora_resolve(&p, &on) != SD_OK) die();
    double tr[16], fl = 0;
    char how[160];
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    double mib = ftell(f) / 1048576.0;
    fclose(f);
    double cpu[16], cpu_off[16];
    for (int i = 0; i < runs && i < 16; i++) {
        double s = now(), cs = cpu_now();
        if (lora_apply(c, &on) != SD_OK) die();
        t[i] = now() - s, cpu[i] = cpu_now() - cs;
        s = now(), cs = cpu_now();
        if (lora_apply(c, &off) != SD_OK) die();
        tr[i] = now() - s, cpu_off[i] = cpu_now() - cs;
    }
    int k = runs < 16 ? runs : 16;
    /* process CPU seconds too: on a shared machine the wall clock says more about the neighbours */
    snprintf(how, sizeof how, "rank %d, %.0f MiB file (f16); %.2f CPU s", r, mib, median(cpu, k));
    row("LoRA load + merge", median(t, k), 0, how);
    snprintf(how, sizeof how, "%.2f CPU s", median(cpu_off, k));
    row("LoRA off (base restored)", median(tr, k), 0, how);
    if (want("unet512")) {
        size_t arena;
        if (lora_apply(c, &on) != SD_OK) die();
        for (int i = 0; i < runs; i++) t[i] = unet_step(c, 512, &fl, &arena);
        row("UNet guided step 512², LoRA", median(t, runs), fl, "merged: same layers, same storage");
        if (lora_apply(c, &off) != SD_OK) die();
    }
    lora_call_free(&on);
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
    if (want("lora")) lora_rows(c, runs, t);
    printf("\npeak RSS %.0f MiB; f32 peak assumed %.1f GFLOP/s\n", peak_rss_mib(), PEAK_GFLOPS);
    free(t);
    sd_free(c);
    return 0;
}
