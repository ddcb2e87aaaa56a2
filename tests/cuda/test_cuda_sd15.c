/* test_cuda_sd15.c — the SD 1.5 UNet (every block and tensor name of the real checkpoint, tests/data/sd15-ldm-keys.tsv)
 * at a fifth of its widths (320 -> 64, 640 -> 128, 1280 -> 256, text context 768 -> 128) with random weights, on a
 * 8x8 latent, batch 2 (a guided step). The channel counts stay multiples of 32 and the head dims (8 heads: 8, 16,
 * 32) multiples of 8, so the CUDA backend takes exactly the paths of the full-size model: the fused convolutions
 * (GroupNorm prologue, concat and upsample through the addressing, time-embedding and residual epilogues), the
 * fused Q/K/V and feed-forward GEMMs, the flash attention kernel.
 *  - CUDA f16 against the CPU backend at the whole-model tolerance of test_cuda_models.c (32 u·max|y|).
 *  - The kernel launches of one forward: the same count as the full-size model's (same structure and paths), listed
 *    per kernel. */
#include "../test.h"
#include "../random_ckpt.h"
#include "../../core/error.h"
#include "../../core/fileio.h"
#include "../../unet/unet.h"
#include "cuda_op_util.h"

#include <stdio.h>

#define MODEL_U 32

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

/* One forward; returns the host output (2 x 8 x 8 x 4). launches/names/counts: the kernels it launched (CUDA). */
static float *forward(be *b, const char *ckpt, const float *xh, const float *ch, int *launches, const char **names, unsigned long long *counts, int *nk) {
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
    const float ts[2] = {500.0f, 500.0f};
    be_tensor x = put(b, xh, 2, 8, 8, 4), ctx = put(b, ch, 2, 1, 77, 128), y = be_new(b, 2, 8, 8, 4);
    /* a first step makes the context's cross-attention keys and values; the second, counted, is the steady state */
    unet_cond c = {.ctx = &ctx, .ctx_id = unet_context_id(u)};
    unet_forward(b, u, &x, ts, &c, &y);
    if (launches) cuda_test_launch_counts(names, counts, 0, 1);
    const long long l0 = cuda_test_launches();
    unet_forward(b, u, &x, ts, &c, &y);
    if (launches) {
        *launches = l0 < 0 ? -1 : (int)(cuda_test_launches() - l0);
        *nk = cuda_test_launch_counts(names, counts, 64, 1);
    }
    float *out = get(b, &y);
    REQUIRE_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
    unet_free(b, u);
    return out;
}

TEST(cuda_model_sd15_structure) {
    const char *keys = scaled_keys();
    char ckpt[4096];
    snprintf(ckpt, sizeof ckpt, "%s/sd15-fifth.safetensors", test_tmpdir());
    REQUIRE_MSG(random_ckpt_write(keys, ckpt, 7, ST_F16) == SD_OK, "%s", sd_last_error());
    float *xh = rnd(2 * 8 * 8 * 4, 1, 0, BE_F32), *ch = rnd(2 * 77 * 128, 1, 0, BE_F32);
    be *c = mk_cpu();
    float *want = forward(c, ckpt, xh, ch, NULL, NULL, NULL, NULL);
    be_free(c);
    const size_t n = 2 * 8 * 8 * 4;
    const double scale = maxabs(want, n);
    for (int di = 0; di < 1; di++) { /* f16, as the other whole-model tests; bf16 storage is covered op by op */
        const be_dtype t = DTS[di];
        be *g = mk_gpu(t);
        const char *names[64];
        unsigned long long counts[64];
        int launches = 0, nk = 0;
        float *got = forward(g, ckpt, xh, ch, &launches, names, counts, &nk);
        const double e = rel_err(got, want, n, scale);
        test_note("SD 1.5 UNet structure at 1/5 width, 8x8 latent, batch 2 [%s]: |y| <= %.3g, max err vs cpu %.3g = %.1f u·|y| (tol %d u)",
                  dt_name(t), scale, e * scale, e / unit(t), MODEL_U);
        CHECK_MSG(e <= MODEL_U * unit(t), "[%s] error %.3g u > %d u", dt_name(t), e / unit(t), MODEL_U);
        if (launches >= 0 && di == 0) {
            char list[2048];
            size_t o = 0;
            for (int i = 0; i < nk && i < 64 && o < sizeof list; i++)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s %llu", i ? ", " : "", names[i], counts[i]);
            test_note("kernel launches of one guided step (batch 2): %d: %s", launches, list);
        }
        char msg[512] = "";
        CHECK_MSG(cuda_test_clean(msg, sizeof msg), "%s", msg);
        free(got);
        be_free(g);
    }
    free(xh);
    free(ch);
    free(want);
}
