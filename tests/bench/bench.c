/* bench.c — `make bench`: CPU timings of the SD 1.5 and SDXL stages on random-weight full-size checkpoints (f16,
 * the real single-file layouts, tests/random_ckpt.c), with achieved GFLOP/s from the layer shapes against the
 * machine's measured f32 FMA peak, and peak RSS. Not a test: nothing is asserted.
 *
 * The project's machines are shared, so beside wall time each row gives the process CPU time and the rate per
 * CPU-second: on a loaded machine that is the honest figure (it does not count time the threads were not
 * running; it does not see threads idling at a barrier either).
 *
 * Usage: build/sd-bench [sd15|sdxl] [runs]   (median of `runs` timings per stage, default 3 for sd15, 1 for sdxl)
 *   BENCH_STAGES=a,b,...     only these of: start, text, unet256, unet512, vae256, vae512, lora, conv, taesd512 (sd15);
 *                            start, text, unet1024, vae1024 (sdxl)
 *   BENCH_SKIP_512=1         skips the 512² rows
 *   BENCH_VAE=auto|off|on    VAE decode mode: the pipeline's automatic choice (default), untiled, exact bands
 *   BENCH_VAE_LIMIT=MiB      activation budget of the decode (default: the pipeline's)
 *   BENCH_THREADS=n          CPU threads (default: all cores)
 *   SD_CPU_LEVEL=...         kernel level (generic, avx2, avx512, neon); SD_CPU_PROFILE=1: per-op times at the end */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include "../../core/error.h"
#include "../../kernels/cpu/cpu_simd.h"
#include "../../pipeline/lora.h"
#include "../../pipeline/pipeline.h"
#include "../random_ckpt.h"
#include "peak.h"

extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);

static double g_peak, g_peak_thread; /* measured f32 FMA peak, GFLOP/s: all threads, one thread */

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

/* Current RSS split into anonymous memory and mapped file pages (/proc/self/status), MiB. */
static void rss_now(double *anon, double *file) {
    *anon = *file = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "RssAnon:", 8)) *anon = atof(line + 8) / 1024;
        if (!strncmp(line, "RssFile:", 8)) *file = atof(line + 8) / 1024;
    }
    fclose(f);
}

static void header(void) {
    printf("| stage                        | wall s   | CPU s    | GFLOP    | GFLOP/s | %% peak | GFLOP/CPU-s | %% peak/core | peak RSS MiB |\n");
    printf("|------------------------------|----------|----------|----------|---------|--------|-------------|-------------|--------------|\n");
}

static void row(const char *name, double sec, double cpu, double flops, const char *extra) {
    double gf = flops / 1e9;
    if (gf > 0)
        printf("| %-28s | %8.2f | %8.2f | %8.1f | %7.1f | %5.1f%% | %11.1f | %10.1f%% | %12.0f | %s\n", name, sec, cpu, gf, gf / sec,
               100.0 * gf / sec / g_peak, gf / cpu, 100.0 * gf / cpu / g_peak_thread, peak_rss_mib(), extra ? extra : "");
    else
        printf("| %-28s | %8.2f | %8.2f | %8s | %7s | %6s | %11s | %11s | %12.0f | %s\n", name, sec, cpu, "", "", "", "", "", peak_rss_mib(),
               extra ? extra : "");
    fflush(stdout);
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

/* One guided UNet step at an image side: the UNet on a batch of 2 (uncond + cond). Returns seconds, sets flops
 * and the CPU seconds. */
static double unet_step(sd_ctx *c, int side, double *flops, size_t *arena, double *cpu) {
    be *b = c->b;
    int h = side / 8, w = side / 8;
    const unet_config *uc = unet_get_config(c->unet);
    float ts[2] = {500, 500}, S = (float)side, ids[12] = {S, S, 0, 0, S, S, S, S, 0, 0, S, S}; /* SDXL's time ids */
    int pd = uc->add_embed ? uc->add_in_dim - 6 * uc->add_time_dim : 1; /* SDXL's pooled text width */
    float *ctxh = calloc(2 * 77 * uc->ctx_dim, sizeof(float)), *xh = malloc(sizeof(float) * 2 * h * w * 4);
    float *pooled_h = calloc(2 * pd, sizeof(float));
    for (int i = 0; i < 2 * h * w * 4; i++) xh[i] = (float)sin(i * 0.37);
    be_measure_begin(b);
    be_tensor x = be_new(b, 2, h, w, 4), e = be_new(b, 2, h, w, 4), ctx = be_new(b, 2, 1, 77, uc->ctx_dim);
    be_tensor pooled = be_new(b, 2, 1, 1, pd);
    unet_cond cond = {.ctx = &ctx, .text_embeds = uc->add_embed ? &pooled : NULL, .time_ids = uc->add_embed ? ids : NULL};
    double f0 = b->flops;
    unet_forward(b, c->unet, &x, ts, &cond, &e);
    *flops = b->flops - f0; /* measure mode counts the layer shapes without computing */
    size_t need = be_measure_end(b);
    *arena = need;
    if (need > b->arena.size && be_arena_reserve(b, need) != SD_OK) die();
    x = be_new(b, 2, h, w, 4);
    e = be_new(b, 2, h, w, 4);
    ctx = be_new(b, 2, 1, 77, uc->ctx_dim);
    pooled = be_new(b, 2, 1, 1, pd);
    be_upload(b, &x, xh);
    be_upload(b, &ctx, ctxh);
    be_upload(b, &pooled, pooled_h);
    double t0 = now(), c0 = cpu_now();
    unet_forward(b, c->unet, &x, ts, &cond, &e);
    be_sync(b);
    double t = now() - t0;
    *cpu = cpu_now() - c0;
    be_release(b, 0);
    free(ctxh);
    free(xh);
    free(pooled_h);
    if (be_status(b) != SD_OK) die();
    return t;
}

/* One VAE decode of a side x side image with the given tiling; sets the nominal FLOPs (the untiled decode's
 * layer shapes: bands recompute a few halo rows, which is not counted) and the plan. */
static double vae_dec(sd_ctx *c, int side, int tiling, double *flops, vae_plan *plan, double *cpu) {
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
    double t0 = now(), c0 = cpu_now();
    sd_status st = vae_decode(b, c->vae, lat, 1, h, w, &o, rgb);
    double t = now() - t0;
    *cpu = cpu_now() - c0;
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
static void lora_rows(sd_ctx *c, int runs, double *t, double *tc) {
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
    snprintf(how, sizeof how, "rank %d, %.0f MiB file (f16)", r, mib);
    row("LoRA load + merge", median(t, k), median(cpu, k), 0, how);
    row("LoRA off (base restored)", median(tr, k), median(cpu_off, k), 0, NULL);
    if (want("unet512")) {
        size_t arena;
        if (lora_apply(c, &on) != SD_OK) die();
        for (int i = 0; i < runs; i++) t[i] = unet_step(c, 512, &fl, &arena, &tc[i]);
        row("UNet guided step 512², LoRA", median(t, runs), median(tc, runs), fl, "merged: same layers, same storage");
        if (lora_apply(c, &off) != SD_OK) die();
    }
    lora_call_free(&on);
}

/* The 3x3 convolution paths on a few layer shapes of the two models, one thread (the rule in cpu_winograd.c). */
static void conv_paths(void) {
    static const int shapes[][5] = {{2, 64, 64, 320, 320}, {2, 32, 32, 640, 640}, {2, 16, 16, 1280, 1280}, {2, 8, 8, 1280, 1280},
                                    {1, 128, 128, 512, 512}, {1, 512, 512, 128, 128}, {2, 16, 16, 96, 96}, {1, 8, 8, 320, 320},
                                    {1, 4, 4, 1280, 1280}};
    static const char *const names[4] = {"direct", "F(2x2)", "F(4x4)", "F(6x6)"};
    static const int modes[4] = {CPU_CONV_DIRECT, CPU_CONV_WINO2, CPU_CONV_WINO4, CPU_CONV_WINO6}, ms[4] = {0, 2, 4, 6};
    be *b = be_cpu_new(1);
    if (!b) die();
    printf("\n3x3 convolutions, one thread, f16 weights: CPU ms (effective GFLOP/s = direct FLOPs / time); * = the decode's choice, "
           "+ = the sampler loop's (cpu_winograd.c)\n");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int N = shapes[s][0], H = shapes[s][1], W = shapes[s][2], C = shapes[s][3], O = shapes[s][4];
        if (be_arena_reserve(b, (size_t)N * H * W * (C + O) * 4 + 4096) != SD_OK) die();
        size_t nw = (size_t)O * C * 9;
        uint16_t *w16 = malloc(nw * 2);
        float *xh = malloc((size_t)N * H * W * C * 4);
        for (size_t i = 0; i < nw; i++) w16[i] = (uint16_t)(0x2000 + i % 0x1000); /* small positive halves */
        for (size_t i = 0; i < (size_t)N * H * W * C; i++) xh[i] = (float)(i % 17) / 17.0f;
        be_weight wt;
        if (be_weight_upload(b, &wt, BE_W_CONV, O, C, 3, 3, BE_F16, w16) != SD_OK) die();
        be_tensor x = be_new(b, N, H, W, C), y = be_new(b, N, H, W, O);
        be_upload(b, &x, xh);
        double fl = 2.0 * N * H * W * O * C * 9;
        int saved = cpu_conv_mode_set(CPU_CONV_AUTO), pick = cpu_wino_rule(N, H, W, C, O), loop = cpu_wino_rule_loop(N, H, W, C, O);
        printf("  %dx%dx%dx%d -> %d, %.1f GFLOP:", N, H, W, C, O, fl / 1e9);
        for (int m = 0; m < 4; m++) {
            cpu_conv_mode_set(modes[m]);
            be_conv2d(b, &x, &wt, NULL, 1, 1, 1, &y); /* warm: scratch, pages */
            double c0 = cpu_now();
            be_conv2d(b, &x, &wt, NULL, 1, 1, 1, &y);
            double t = cpu_now() - c0;
            printf("  %s%s%s %.0f ms (%.0f)", names[m], ms[m] == pick ? "*" : "", ms[m] == loop ? "+" : "", t * 1e3, fl / t / 1e9);
        }
        printf("\n");
        cpu_conv_mode_set(saved);
        be_release(b, 0);
        be_weight_free(b, &wt);
        free(w16);
        free(xh);
    }
    be_free(b);
}

/* A 512² decode by a random-weight full-size TAESD (AutoencoderTiny's architecture, tests/data/taesd-keys.tsv),
 * written once under build/cache/. Returns seconds; *cpu gets the process CPU seconds of the decode. */
static double taesd_dec(sd_ctx *c, double *flops, double *cpu) {
    static taesd_model *t;
    static st_file *f;
    if (!t) {
        const char *path = "build/cache/taesd-random.safetensors";
        FILE *fp = fopen(path, "rb");
        if (fp) fclose(fp);
        else if (random_ckpt_write("tests/data/taesd-keys.tsv", path, 7, ST_F16) != SD_OK) die();
        wmap *m = wmap_new();
        if (st_open(path, &f) != SD_OK || taesd_add_weights(m, f, TAESD_NAMES_DIFFUSERS) != SD_OK || taesd_load(c->b, m, 1, 0, &t) != SD_OK) die();
        wmap_free(m);
    }
    int h = 64;
    size_t need = taesd_decode_arena_bytes(c->b, t, h, h, 0);
    if (!need || (need > c->b->arena.size && be_arena_reserve(c->b, need) != SD_OK)) die();
    float *lat = malloc(sizeof(float) * h * h * 4), *rgb = malloc(sizeof(float) * 512 * 512 * 3);
    for (int i = 0; i < h * h * 4; i++) lat[i] = (float)cos(i * 0.11);
    double f0 = c->b->flops, c0 = cpu_now(), t0 = now();
    sd_status st = taesd_decode(c->b, t, lat, 1, h, h, 0, rgb);
    double s = now() - t0;
    *cpu = cpu_now() - c0;
    *flops = c->b->flops - f0;
    free(lat);
    free(rgb);
    if (st != SD_OK) die();
    return s;
}

/* OpenBLAS picks its GEMM kernels when it loads ($OPENBLAS_CORETYPE, else the CPU's best), so a level forced by
 * $SD_CPU_LEVEL=avx2 would still run AVX-512 GEMMs on an AVX-512 machine: the "avx2" rows would not be what an AVX2
 * CPU runs (measured on Zen 5, one thread: SD 1.5 256² guided step 2.74 CPU-s with OpenBLAS's Cooperlake core,
 * 4.00 s with its Zen core, whose kernels are Haswell's). The bench starts itself again with OpenBLAS's AVX2 core set. */
static void match_openblas_to_level(char **argv) {
    const char *lv = getenv("SD_CPU_LEVEL");
    if (!lv || strcmp(lv, "avx2") || getenv("OPENBLAS_CORETYPE")) return;
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "warning: could not restart with OPENBLAS_CORETYPE=Haswell: the avx2 rows use OpenBLAS's own choice\n");
}

int main(int argc, char **argv) {
    match_openblas_to_level(argv);
    double t_start = now();
    int sdxl = argc > 1 && !strcmp(argv[1], "sdxl");
    int ai = argc > 1 && (!strcmp(argv[1], "sdxl") || !strcmp(argv[1], "sd15")) ? 2 : 1;
    int runs = argc > ai ? atoi(argv[ai]) : sdxl ? 1 : 3;
    if (runs < 1) runs = 1;
    sd_load_params lp;
    sd_load_params_init(&lp);
    if (getenv("BENCH_THREADS")) lp.threads = atoi(getenv("BENCH_THREADS"));
    const char *path = sdxl ? random_ckpt_sdxl("tests/data") : random_ckpt_sd15("tests/data/sd15-ldm-keys.tsv");
    if (!path) die();
    lp.model_path = path;
    const char *vm = getenv("BENCH_VAE");
    int tiling = vm && !strcmp(vm, "off") ? -1 : vm && !strcmp(vm, "on") ? 1 : 0;

    char model[256];
    bench_cpu_model(model, sizeof model);
    double la[3] = {0, 0, 0};
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = la[1] = la[2] = 0;
        fclose(lf);
    }
    double rss_anon0, rss_file0;
    rss_now(&rss_anon0, &rss_file0);
    double t0 = now(), c0 = cpu_now();
    sd_ctx *c;
    if (sd_load(&lp, &c) != SD_OK) die();
    double load = now() - t0, load_cpu = cpu_now() - c0, rss_anon, rss_file;
    rss_now(&rss_anon, &rss_file);
    int threads = lp.threads > 0 ? lp.threads : omp_get_num_procs(); /* the CPU backend's default */
    const char *vec;
    g_peak = bench_fma_peak(threads, be_cpu_level(), &vec);
    g_peak_thread = g_peak / threads;
    printf("CPU: %s, %d threads; kernel level %s; OpenBLAS core %s (%s)\n", model, threads, be_cpu_level(), openblas_get_corename(),
           openblas_get_config());
    double ghz = bench_cpu_ghz();
    printf("f32 FMA peak, measured with %s FMAs in thread CPU time: %.1f GFLOP/s (%.1f per thread", vec, g_peak, g_peak_thread);
    if (ghz > 0) printf(": %.0f FLOP per cycle at the %.2f GHz /proc/cpuinfo states", g_peak_thread / ghz, ghz);
    printf(")\n");
    printf("load average at start %.2f %.2f %.2f\n", la[0], la[1], la[2]);
    printf("random-weight %s (%s), CPU backend, %d run(s) per stage, median\n", sdxl ? "SDXL base" : "SD 1.5", path, runs);
    printf("load %.2f s (%.2f CPU s); weights %.0f MiB read in place from the mapped file + %.0f MiB copied; RSS before load %.0f MiB "
           "anon + %.0f MiB file, after %.0f MiB anon + %.0f MiB file\n\n",
           load, load_cpu, c->b->weight_mapped / 1048576.0, (c->b->weight_bytes + (c->vb != c->b ? c->vb->weight_bytes : 0)) / 1048576.0,
           rss_anon0, rss_file0, rss_anon, rss_file);
    header();
    double *t = malloc(runs * sizeof *t), *tc = malloc(runs * sizeof *tc), fl = 0;
    if (want("start") || want("text")) { /* text encoder: the two prompts of a guided generation */
        for (int i = 0; i < runs; i++) {
            text_cond cond;
            double f0 = c->b->flops, s = now(), cs = cpu_now();
            if (text_cond_encode(c, "a photo of an astronaut riding a horse on mars", 0, 1, &cond) != SD_OK) die();
            text_cond_free(&cond);
            if (text_cond_encode(c, "", 0, 1, &cond) != SD_OK) die();
            t[i] = now() - s;
            tc[i] = cpu_now() - cs;
            fl = (c->b->flops - f0) / 2; /* measure + real pass both count */
            text_cond_free(&cond);
            if (i == 0 && want("start")) {
                char how[96];
                snprintf(how, sizeof how, "load %.2f s + 2 prompts %.2f s (process start to here %.2f s)", load, t[0], now() - t_start);
                row("start to first step", load + t[0], load_cpu + tc[0], 0, how);
            }
        }
        if (want("text")) row("text encode (2 prompts)", median(t, runs), median(tc, runs), fl, NULL);
        be_arena_trim(c->b); /* as the pipeline does after encoding: the text encoders' pages leave the RSS */
    }
    static const int sides15[2] = {256, 512}, sidesxl[1] = {1024};
    const int *sides = sdxl ? sidesxl : sides15;
    int nsides = sdxl ? 1 : 2;
    for (int k = 0; k < nsides; k++) {
        char name[64];
        snprintf(name, sizeof name, "unet%d", sides[k]);
        if (!want(name)) continue;
        size_t arena;
        char how[64];
        for (int i = 0; i < runs; i++) t[i] = unet_step(c, sides[k], &fl, &arena, &tc[i]);
        snprintf(name, sizeof name, "UNet guided step %d²", sides[k]);
        snprintf(how, sizeof how, "batch 2, arena %.0f MiB", arena / 1048576.0);
        row(name, median(t, runs), median(tc, runs), fl, how);
        be_arena_trim(c->b); /* as the pipeline does after sampling */
    }
    for (int k = 0; k < nsides; k++) {
        char name[64], how[96];
        snprintf(name, sizeof name, "vae%d", sides[k]);
        if (!want(name)) continue;
        vae_plan pl;
        for (int i = 0; i < runs; i++) t[i] = vae_dec(c, sides[k], tiling, &fl, &pl, &tc[i]);
        if (pl.mode == VAE_TILING_ON) snprintf(how, sizeof how, "exact bands of %d latent rows, arena %.0f MiB", pl.tile, pl.arena_bytes / 1048576.0);
        else snprintf(how, sizeof how, "%s, arena %.0f MiB", pl.mode == VAE_TILING_OFF ? "untiled" : "blended tiles", pl.arena_bytes / 1048576.0);
        snprintf(name, sizeof name, "VAE decode %d²", sides[k]);
        row(name, median(t, runs), median(tc, runs), fl, how);
        be_arena_trim(c->b);
    }
    if (!sdxl && want("lora")) lora_rows(c, runs, t, tc);
    if (!sdxl && want("taesd512")) {
        for (int i = 0; i < runs; i++) t[i] = taesd_dec(c, &fl, &tc[i]);
        row("TAESD decode 512²", median(t, runs), median(tc, runs), fl, "random full-size TAESD, f16");
        be_arena_trim(c->b);
    }
    printf("\npeak RSS %.0f MiB; %% peak = GFLOP/s over the measured %.1f GFLOP/s; %% peak/core = GFLOP per CPU-second over %.1f\n",
           peak_rss_mib(), g_peak, g_peak_thread);
    free(t);
    free(tc);
    sd_free(c);
    if (!sdxl && want("conv")) conv_paths();
    return 0;
}
