/* test_cuda_sd15.c — the SD 1.5 UNet (every block and tensor name of the real checkpoint, tests/data/sd15-ldm-keys.tsv)
 * at a fifth of its widths (320 -> 64, 640 -> 128, 1280 -> 256, text context 768 -> 128) with random weights, on a
 * 8x8 latent (batch 1: a guided step's batch of 2 runs the same kernels). The channel counts stay multiples of 32 and the head dims (8 heads: 8, 16,
 * 32) multiples of 8, so the CUDA backend takes exactly the paths of the full-size model: the fused convolutions
 * (GroupNorm prologue, concat and upsample through the addressing, time-embedding and residual epilogues), the
 * fused Q/K/V and feed-forward GEMMs, the flash attention kernel.
 *  - CUDA f16 against the CPU backend at about twice the error measured on the emulator (3.5 u·max|y|: 7 u), as the
 *    per-case bars of test_cuda_models.c.
 *  - The kernel launches of one forward: the same count as the full-size model's (same structure and paths), listed
 *    per kernel. */
#include "../test.h"
#include "../random_ckpt.h"
#include "../../core/error.h"
#include "../../core/fileio.h"
#include "../../unet/unet.h"
#include "cuda_op_util.h"

#include <stdio.h>

#define MODEL_U 7
/* Kernel launches of one step as measured (upload and download included); the target is 150. More is a regression. */
#define MAX_KERNELS 72

/* The key list of the SD 1.5 UNet with every width divided by 5 (the context's 768 by 6). */
static const char *scaled_keys(void) {
    static char path[4096];
    char *txt;
    REQUIRE_MSG(file_read(test_path("data/sd15-ldm-keys.tsv"), 16u << 20, &txt, NULL) == SD_OK, "%s", sd_last_error());
    snprintf(path, sizeof path, "%s/sd15-fifth-keys.tsv", test_tmpdir());
    FILE *out = fopen(path, "w");
    REQUIRE(out);
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        if (!tab || strncmp(line, "model.diffusion_model.", 22)) continue;
        fprintf(out, "%.*s\t", (int)(tab - line), line);
        for (char *d = tab + 1; *d;) {
            long v = strtol(d, &d, 10);
            fprintf(out, "%ld", v == 768 ? 128 : v > 4 ? v / 5 : v);
            if (*d == ',') fputc(*d++, out);
            else break;
        }
        fputc('\n', out);
    }
    fclose(out);
    free(txt);
    return path;
}

#define STEPS 4

typedef struct step_log {
    cuda_test_counts d[STEPS];           /* counter increments of each step */
    int nk;                              /* kernels of the counted (second) step, by name */
    const char *names[64];
    unsigned long long counts[64];
} step_log;

/* `count` guided steps as the pipeline makes them (upload x, the UNet, download eps; one text context with its id),
 * on the same input; out[s] the host output of step s. */
static void steps(be *b, const char *ckpt, const float *xh, const float *ch, int count, float **out, step_log *log) {
    st_file *f;
    REQUIRE_MSG(st_open(ckpt, &f) == SD_OK, "%s", sd_last_error());
    wmap *m = wmap_new();
    REQUIRE(unet_add_tensors(m, f, UNET_NAMES_LDM, "model.diffusion_model.") == SD_OK);
    unet_config cfg;
    REQUIRE_MSG(unet_config_infer(m, &cfg) == SD_OK, "%s", sd_last_error());
    unet_model *u;
    REQUIRE_MSG(unet_load(b, m, &cfg, &u) == SD_OK, "%s", sd_last_error());
    wmap_free(m);
    st_close(f);
    const float ts[1] = {500.0f};
    be_tensor ctx = put(b, ch, 1, 1, 77, 128);
    unet_cond c = {.ctx = &ctx, .ctx_id = unet_context_id(u)};
    for (int s = 0; s < count; s++) {
        cuda_test_counts c0, c1;
        cuda_test_counters(&c0);
        if (log && s == 1) cuda_test_launch_counts(log->names, log->counts, 0, 1);
        size_t mark = be_mark(b);
        be_tensor x = put(b, xh, 1, 8, 8, 4), y = be_new(b, 1, 8, 8, 4);
        unet_forward(b, u, &x, ts, &c, &y);
        out[s] = get(b, &y);
        be_release(b, mark);
        if (log && s == 1) log->nk = cuda_test_launch_counts(log->names, log->counts, 64, 1);
        cuda_test_counters(&c1);
        if (log) log->d[s] = (cuda_test_counts){c1.kernels - c0.kernels, c1.graphs - c0.graphs, c1.mallocs - c0.mallocs, c1.syncs - c0.syncs};
        REQUIRE_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
    }
    unet_free(b, u);
}

/* Steps of the SD 1.5 structure on CUDA f16 against the CPU; eager, captured and replayed steps bit for bit equal;
 * what a step costs the host once its graph exists. */
TEST(cuda_model_sd15_structure) {
    const char *keys = scaled_keys();
    char ckpt[4096];
    snprintf(ckpt, sizeof ckpt, "%s/sd15-fifth.safetensors", test_tmpdir());
    REQUIRE_MSG(random_ckpt_write(keys, ckpt, 7, ST_F16) == SD_OK, "%s", sd_last_error());
    float *xh = rnd(8 * 8 * 4, 1, 0, BE_F32), *ch = rnd(77 * 128, 1, 0, BE_F32);
    const size_t n = 8 * 8 * 4;
    float *want[1], *got[STEPS];
    be *c = mk_cpu();
    steps(c, ckpt, xh, ch, 1, want, NULL);
    be_free(c);
    const double scale = maxabs(want[0], n);
    be *g = mk_gpu(BE_F16);
    step_log log;
    memset(&log, 0, sizeof log);
    steps(g, ckpt, xh, ch, STEPS, got, &log);
    be_free(g);

    const double e = rel_err(got[STEPS - 1], want[0], n, scale);
    test_note("SD 1.5 UNet structure at 1/5 width, 8x8 latent [f16]: |y| <= %.3g, max err vs cpu %.3g = %.1f u·|y| (tol %d u)", scale,
              e * scale, e / unit(BE_F16), MODEL_U);
    CHECK_MSG(e <= MODEL_U * unit(BE_F16), "error %.3g u > %d u", e / unit(BE_F16), MODEL_U);
    int same = 1;
    for (int s = 1; s < STEPS; s++) same &= !memcmp(got[s], got[0], n * sizeof(float));
    CHECK_MSG(same, "graph steps differ from eager ones (or from each other)");
    test_note("steps 1-2 eager (the first also makes the context's keys and values), 3 captured, 4 replayed: all %d equal, bit for bit",
              STEPS);
    if (log.d[0].kernels >= 0) {
        char list[2048];
        size_t o = 0;
        for (int i = 0; i < log.nk && i < 64 && o < sizeof list; i++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s %llu", i ? ", " : "", log.names[i], log.counts[i]);
        test_note("kernels of one step (the same at batch 2, a guided step), upload and download included: %lld: %s", log.d[1].kernels, list);
        for (int s = 0; s < STEPS; s++)
            test_note("step %d: %lld kernels, %lld graph launches, %lld allocations, %lld host waits", s + 1, log.d[s].kernels, log.d[s].graphs,
                      log.d[s].mallocs, log.d[s].syncs);
        CHECK_MSG(log.d[1].kernels <= MAX_KERNELS, "%lld kernels per step, more than the %d measured before", log.d[1].kernels, MAX_KERNELS);
        const cuda_test_counts *r = &log.d[STEPS - 1];
        CHECK_MSG(r->graphs == 1 && r->mallocs == 0 && r->syncs == 1 && r->kernels == log.d[1].kernels,
                  "a replayed step: %lld graph launches, %lld allocations, %lld host waits, %lld kernels (want 1, 0, 1, %lld)", r->graphs, r->mallocs,
                  r->syncs, r->kernels, log.d[1].kernels);
    }
    char msg[512] = "";
    CHECK_MSG(cuda_test_clean(msg, sizeof msg), "%s", msg);
    for (int s = 0; s < STEPS; s++) free(got[s]);
    free(want[0]);
    free(xh);
    free(ch);
}
