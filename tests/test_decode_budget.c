/* test_decode_budget.c — the automatic CPU decode policy on the full-size SD 1.5 / SDXL VAE decoder (the random
 * SD 1.5 checkpoint; SDXL's VAE has the same layers, only another scaling factor): at 768² and 1024² it must plan
 * the untiled decode or exact bands, never blended tiles. With the old fixed 128 MiB budget no exact band fitted
 * and the decode fell to blended tiles, which differ from the untiled decode by up to 170/255. That exact bands
 * equal the untiled decode at 1024²-shaped latents is test_vae_tiling's 128x128 case. Plans only: measure mode. */
#include "test.h"
#include "load_model.h"
#include "random_ckpt.h"
#include "../core/error.h"
#include "../pipeline/pipeline.h"

TEST(decode_budget_large_cpu_decodes_stay_exact) {
    const char *path = random_ckpt_sd15(test_path("data/sd15-ldm-keys.tsv"));
    REQUIRE_MSG(path, "%s", sd_last_error());
    sd_ctx *c = test_load_model(path);
    if (!c->vb->ops->host_memory) { /* the budget rule is the CPU backend's */
        sd_free(c);
        return;
    }
    static const int sides[] = {64, 96, 128}; /* latent edge: 512², 768², 1024² */
    for (int i = 0; i < 3; i++) {
        int s = sides[i];
        vae_decode_opts o, old, off = {VAE_TILING_OFF, 0, 0, 0};
        decode_opts(c, 0, s, s, &o, NULL);
        size_t whole = vae_decode_arena_bytes(c->vb, c->vae, s, s, &off);
        vae_plan pl, po;
        REQUIRE_MSG(vae_decode_plan(c->vb, c->vae, s, s, &o, &pl) == SD_OK, "%s", sd_last_error());
        old = o;
        old.mem_limit = (size_t)128 << 20;
        REQUIRE_MSG(vae_decode_plan(c->vb, c->vae, s, s, &old, &po) == SD_OK, "%s", sd_last_error());
        test_note("%d² decode: untiled %.0f MiB; budget %.0f MiB -> %s%.0d (%.0f MiB); old 128 MiB -> %s", s * 8, whole / 1048576.0,
                  o.mem_limit / 1048576.0, pl.mode == VAE_TILING_OFF ? "whole" : pl.mode == VAE_TILING_ON ? "exact bands of " : "blended tiles",
                  pl.mode == VAE_TILING_ON ? pl.tile : 0, pl.arena_bytes / 1048576.0,
                  po.mode == VAE_TILING_OFF ? "whole" : po.mode == VAE_TILING_ON ? "exact bands" : "blended tiles");
        CHECK(pl.mode == VAE_TILING_OFF || pl.mode == VAE_TILING_ON);
        CHECK(pl.arena_bytes <= o.mem_limit);
        if (s == 64) CHECK(pl.mode == VAE_TILING_OFF); /* 512²: whole fits what the weights hold (1 GiB < 2 GiB) */
    }
    sd_free(c);
}
