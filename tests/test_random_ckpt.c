/* test_random_ckpt.c — the random SD 1.5 checkpoint has exactly the reference names and shapes and is
 * recognised as SD 1.x by family detection. */
#include "test.h"
#include "load_model.h"
#include "random_ckpt.h"
#include "../core/error.h"
#include "../pipeline/model_files.h"
#include "../sd.h"

#include <math.h>

TEST(random_sd15_checkpoint_layout) {
    const char *path = random_ckpt_sd15(test_path("data/sd15-ldm-keys.tsv"));
    REQUIRE_MSG(path, "%s", sd_last_error());
    model_files m;
    REQUIRE_MSG(model_files_open(path, NULL, &m) == SD_OK, "%s", sd_last_error());
    CHECK(m.family == MODEL_FAMILY_SD1 && m.in_channels == 4);
    CHECK_EQ_INT(st_count(m.single), 1130);
    int64_t params = 0;
    for (int i = 0; i < st_count(m.single); i++) params += st_at(m.single, i)->numel;
    CHECK_EQ_INT(params, 1066235307); /* the published SD 1.5 total (facts §5.2) */
    const st_tensor *t = st_find(m.single, "model.diffusion_model.input_blocks.0.0.weight");
    CHECK(t && t->dtype == ST_F16 && t->ndim == 4 && t->shape[0] == 320 && t->shape[1] == 4);
    model_files_close(&m);
}

static int all_finite(void *user, const sd_progress *p) {
    int *bad = user;
    if (p->latent)
        for (int i = 0; i < p->lw * p->lh * 4; i++)
            if (!isfinite(p->latent[i])) (*bad)++;
    return 0;
}

TEST(random_sd15_renders) {
    /* the full SD 1.5 architecture loads from original names and runs: 64x64, 2 steps, finite latents */
    const char *path = random_ckpt_sd15(test_path("data/sd15-ldm-keys.tsv"));
    REQUIRE_MSG(path, "%s", sd_last_error());
    sd_ctx *ctx = test_load_model(path);
    CHECK(!strcmp(sd_model(ctx)->family, "SD 1.x") && sd_model(ctx)->default_width == 512);
    sd_gen_params p;
    sd_gen_params_init(&p);
    p.prompt = "a photo of an astronaut riding a horse on mars";
    p.width = p.height = 64;
    p.steps = 2;
    int bad = 0;
    sd_result r;
    REQUIRE_MSG(sd_generate(ctx, &p, all_finite, &bad, &r) == SD_OK, "%s", sd_last_error());
    CHECK_EQ_INT(bad, 0);
    CHECK(r.count == 1 && r.images[0].w == 64 && r.images[0].h == 64);
    test_note("2 steps at 64x64: text %.2fs, sampling %.2fs, decode %.2fs", r.timings.text_encode, r.timings.sample, r.timings.decode);
    sd_result_free(&r);
    sd_free(ctx);
}
