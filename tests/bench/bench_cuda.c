/* bench_cuda.c — `make bench-cuda`: the CUDA backend on random-weight full-size checkpoints (exact layouts, f16):
 *   SD 1.5 512x512: a whole 20-step image through the library (text, sampling, decode), then one guided UNet step
 *   (batch 2) and one VAE decode at a time on the steady state (CUDA graphs), then the same with every op timed by
 *   CUDA events ($SD_CUDA_PROFILE=1: per op, achieved TFLOP/s and GB/s against the card's peaks);
 *   SDXL 1024x1024: guided UNet steps the same way (UNet only, keys from tools/sdxl_unet_keys.py).
 * Without a GPU it says so and exits 0. Not a test: nothing is asserted.
 * Usage: build/sd-bench-cuda [steps]   (UNet steps per timing, default 8; --probe: exit 0 iff a GPU is there) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/error.h"
#include "../../pipeline/pipeline.h"
#include "../random_ckpt.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
    fprintf(stderr, "error: %s: %s\n", what, sd_last_error());
    exit(1);
}

/* dense f16 tensor TFLOP/s (f32 accumulation) and memory GB/s of the cards we know; 0 when unknown */
static void peaks(const char *name, double *tf, double *gb) {
    static const struct { const char *key; double tf, gb; } t[] = {
        {"H200", 989, 4800},     {"H100 NVL", 835, 3900}, {"H100 PCIe", 756, 2000}, {"H100", 989, 3350},
        {"A100-SXM4-80GB", 312, 2039}, {"A100", 312, 1555}, {"L40S", 362, 864}, {"L4", 121, 300},
        {"RTX 4090", 165, 1008}, {"A10", 125, 600},
    };
    *tf = *gb = 0;
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (strstr(name, t[i].key)) {
            *tf = t[i].tf;
            *gb = t[i].gb;
            return;
        }
}

/* `steps` guided UNet steps (batch 2) as the pipeline makes them: upload x, forward, download eps; prints each step's
 * time (the steady state is the graph replay from the third on). */
static void unet_steps(be *b, unet_model *u, int side, int steps, const char *what) {
    const unet_config *uc = unet_get_config(u);
    const int h = side / 8, N = 2;
    float ts[2] = {500, 500};
    float *xh = malloc(sizeof(float) * N * h * h * uc->in_channels), *eh = malloc(sizeof(float) * N * h * h * uc->out_channels);
    float *ch = calloc((size_t)N * 77 * uc->ctx_dim, sizeof(float)), *pooled = NULL, ids[12];
    for (int i = 0; i < N * h * h * uc->in_channels; i++) xh[i] = (float)sin(i * 0.37);
    be_measure_begin(b);
    be_tensor x = be_new(b, N, h, h, uc->in_channels), e = be_new(b, N, h, h, uc->out_channels), ctx = be_new(b, N, 1, 77, uc->ctx_dim);
    be_tensor pt = {0};
    unet_cond c = {.ctx = &ctx};
    if (uc->add_embed) {
        pt = be_new(b, N, 1, 1, 1280);
        c.text_embeds = &pt;
        for (int i = 0; i < 12; i++) ids[i] = i % 6 == 2 || i % 6 == 3 ? 0 : (float)side;
        c.time_ids = ids;
    }
    unet_forward(b, u, &x, ts, &c, &e);
    size_t need = be_measure_end(b);
    if (need > b->arena.size && be_arena_reserve(b, need) != SD_OK) die("arena");
    ctx = be_new(b, N, 1, 77, uc->ctx_dim);
    be_upload(b, &ctx, ch);
    if (uc->add_embed) {
        pooled = calloc(N * 1280, sizeof(float));
        pt = be_new(b, N, 1, 1, 1280);
        be_upload(b, &pt, pooled);
    }
    c.ctx_id = unet_context_id(u);
    printf("%s:", what);
    double best = 1e30;
    for (int s = 0; s < steps; s++) {
        size_t mark = be_mark(b);
        double t0 = now();
        x = be_new(b, N, h, h, uc->in_channels);
        e = be_new(b, N, h, h, uc->out_channels);
        be_upload(b, &x, xh);
        unet_forward(b, u, &x, ts, &c, &e);
        be_download(b, &e, eh);
        const double t = now() - t0;
        be_release(b, mark);
        if (be_status(b) != SD_OK) die(what);
        printf(" %.2f", t * 1e3);
        if (s >= 2 && t < best) best = t;
    }
    printf(" ms per step; steady state (graph replay) %.2f ms\n", steps > 2 ? best * 1e3 : 0.0);
    be_release(b, 0);
    free(xh);
    free(eh);
    free(ch);
    free(pooled);
}

static void sd15(const char *path, int steps, double tf, double gb) {
    sd_load_params lp;
    sd_load_params_init(&lp);
    lp.model_path = path;
    lp.backend = SD_BACKEND_CUDA;
    sd_ctx *c;
    double t0 = now();
    if (sd_load(&lp, &c) != SD_OK) die("load SD 1.5");
    printf("\n## SD 1.5 512x512 (random weights, %s)\nload %.1f s, weights %.0f MiB on the device\n", path, now() - t0, c->b->weight_bytes / 1048576.0);
    for (int run = 0; run < 2; run++) { /* the second run is warm */
        sd_gen_params p;
        sd_gen_params_init(&p);
        p.prompt = "a red circle on a blue background";
        p.width = p.height = 512;
        p.steps = 20;
        p.seed = 1;
        sd_result r;
        t0 = now();
        if (sd_generate(c, &p, NULL, NULL, &r) != SD_OK) die("generate");
        printf("20-step 512x512 image, %s: %.1f ms (text %.1f, sampling %.1f = %.2f per step, decode %.1f)\n", run ? "warm" : "cold",
               (now() - t0) * 1e3, r.timings.text_encode * 1e3, r.timings.sample * 1e3, r.timings.sample / 20 * 1e3, r.timings.decode * 1e3);
        sd_result_free(&r);
    }
    unet_steps(c->b, c->unet, 512, steps, "guided UNet step (batch 2)");
    sd_free(c);
    setenv("SD_CUDA_PROFILE", "1", 1);
    if (sd_load(&lp, &c) != SD_OK) die("load SD 1.5");
    unsetenv("SD_CUDA_PROFILE");
    unet_steps(c->b, c->unet, 512, 2, "profiled guided UNet step (batch 2), ops timed one by one");
    be_cuda_profile_print(c->b, stdout, tf, gb); /* both steps; the second is the steady state */
    sd_free(c);
}

static void sdxl(const char *keys, int steps, double tf, double gb) {
    char path[1024];
    const char *dir = getenv("SD_TEST_CACHE") ? getenv("SD_TEST_CACHE") : "build/cache";
    snprintf(path, sizeof path, "%s/sdxl-unet-random-f16.safetensors", dir);
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    else if (random_ckpt_write(keys, path, 1, ST_F16) != SD_OK) die("random SDXL UNet");
    for (int prof = 0; prof < 2; prof++) {
        if (prof) setenv("SD_CUDA_PROFILE", "1", 1);
        be *b = be_cuda_new(0, BE_F16);
        unsetenv("SD_CUDA_PROFILE");
        if (!b) die("cuda backend");
        st_file *sf;
        if (st_open(path, &sf) != SD_OK) die(path);
        wmap *m = wmap_new();
        unet_config cfg;
        unet_model *u;
        if (unet_add_tensors(m, sf, UNET_NAMES_DIFFUSERS, "") != SD_OK || unet_config_infer(m, &cfg) != SD_OK || unet_load(b, m, &cfg, &u) != SD_OK)
            die("load SDXL UNet");
        wmap_free(m);
        st_close(sf);
        if (!prof) printf("\n## SDXL 1024x1024 (random-weight UNet, %s)\nweights %.0f MiB on the device\n", path, b->weight_bytes / 1048576.0);
        unet_steps(b, u, 1024, prof ? 2 : steps, prof ? "profiled guided UNet step (batch 2), ops timed one by one" : "guided UNet step (batch 2)");
        if (prof) be_cuda_profile_print(b, stdout, tf, gb);
        unet_free(b, u);
        be_free(b);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--probe")) return be_cuda_available() ? 0 : 1; /* for the Makefile */
    int steps = argc > 1 ? atoi(argv[1]) : 8;
    if (steps < 3) steps = 3;
    if (!be_cuda_available()) {
        printf("bench-cuda: no GPU (no CUDA device is visible to this process, or this build has no CUDA backend): nothing to measure\n");
        return 0;
    }
    be *probe = be_cuda_new(0, BE_F16);
    if (!probe) die("cuda backend");
    char name[256];
    snprintf(name, sizeof name, "%s", be_cuda_device_name(probe));
    be_free(probe);
    double tf, gb;
    peaks(name, &tf, &gb);
    printf("# bench-cuda on %s (peaks used: %.0f TFLOP/s dense f16, %.0f GB/s%s)\n", name, tf, gb, tf ? "" : ": unknown card, percentages meaningless");
    if (!tf) tf = gb = 1;
    const char *p15 = random_ckpt_sd15("tests/data/sd15-ldm-keys.tsv");
    if (!p15) die("random SD 1.5 checkpoint");
    sd15(p15, steps, tf, gb);
    sdxl("tests/data/sdxl-unet-keys.tsv", steps, tf, gb);
    return 0;
}
