/* test_cuda_lora.c — LoRA adapters and textual-inversion embeddings on the CUDA backend (emulated in `make test`):
 * the merged weights reach the GPU through the same weight upload as loading, so a generation with a kohya LoRA
 * (LoCon conv included), LoHa, LoKr, DoRA and an embedding is held to what the CPU backend gives (at about twice
 * the emulator's measured f16 error, as test_cuda_models.c gates its cases); and a LoRA switched off again leaves the GPU's weights as loaded (same bits). */
#include "../test.h"
#include "../latent_capture.h"
#include "../../core/error.h"
#include "../../sd.h"
#include "cuda_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define U16 0x1p-11
#define LORA_F16_U 1.5 /* about twice the emulator's measured 0.6 u (test_cuda_models.c's per-case policy) */

typedef struct out {
    latent_capture cap;
    sd_image img;
} out;

static sd_ctx *load(sd_backend_kind kind) {
    sd_load_params lp;
    sd_load_params_init(&lp);
    lp.model_path = test_path("golden/pipeline/sd1");
    lp.backend = kind;
    sd_ctx *ctx;
    REQUIRE_MSG(sd_load(&lp, &ctx) == SD_OK, "%s", sd_last_error());
    return ctx;
}

static void gen(sd_ctx *ctx, const char *prompt, out *o) {
    char loras[1024], emb[1024];
    snprintf(loras, sizeof loras, "%s", test_path("golden/lora/loras"));
    snprintf(emb, sizeof emb, "%s", test_path("golden/lora/emb"));
    sd_gen_params p;
    sd_gen_params_init(&p);
    p.prompt = prompt;
    p.negative_prompt = "neg1, blurry";
    p.steps = 3;
    p.cfg_scale = 5.0f;
    p.width = 48;
    p.height = 32;
    p.seed = 31;
    p.rng = "cpu";
    p.lora_dir = loras;
    p.embedding_dir = emb;
    memset(o, 0, sizeof *o);
    sd_result r;
    REQUIRE_MSG(sd_generate(ctx, &p, latent_capture_fn, &o->cap, &r) == SD_OK, "%s", sd_last_error());
    o->img = r.images[0];
    r.images[0].data = NULL;
    sd_result_free(&r);
}

static void out_free(out *o) {
    free(o->cap.latent);
    sd_image_free(&o->img);
}

static const char *k_prompt = "a red circle on a hexstyle background <lora:sd1_kohya:0.8> <lora:sd1_lycoris:0.7>";

TEST(cuda_model_lora_and_embedding) {
    sd_ctx *cpu = load(SD_BACKEND_CPU), *gpu = load(SD_BACKEND_CUDA);
    out a, b;
    gen(cpu, k_prompt, &a);
    gen(gpu, k_prompt, &b);
    REQUIRE(a.cap.n == b.cap.n && a.img.w == b.img.w);
    double scale = 1e-3, err = 0;
    for (size_t i = 0; i < a.cap.n; i++) scale = fmax(scale, fabs(a.cap.latent[i])), err = fmax(err, fabs(a.cap.latent[i] - b.cap.latent[i]));
    int px = 0;
    for (size_t i = 0; i < (size_t)a.img.w * a.img.h * 3; i++) px = abs(a.img.data[i] - b.img.data[i]) > px ? abs(a.img.data[i] - b.img.data[i]) : px;
    test_note("LoRA (LoRA, LoCon, LoHa, LoKr, DoRA) + embedding on %s: latent vs cpu %.2e = %.1f u·|x|, image %d/255", cuda_test_platform(),
              err, err / (U16 * scale), px);
    CHECK(err <= LORA_F16_U * U16 * scale);
    CHECK(px <= 2); /* measured 1, the pipeline cases' bar */
    char msg[512] = "";
    CHECK_MSG(cuda_test_clean(msg, sizeof msg), "%s", msg);
    out_free(&a), out_free(&b);
    sd_free(cpu);
    sd_free(gpu);
}

TEST(cuda_model_lora_off_again_restores_the_weights) {
    sd_ctx *gpu = load(SD_BACKEND_CUDA);
    out a, b, c;
    gen(gpu, "a red circle on a hexstyle background", &a);
    gen(gpu, k_prompt, &b);
    gen(gpu, "a red circle on a hexstyle background", &c);
    CHECK(a.cap.n == c.cap.n && !memcmp(a.cap.latent, c.cap.latent, a.cap.n * sizeof(float)));
    CHECK(memcmp(a.cap.latent, b.cap.latent, a.cap.n * sizeof(float)));
    out_free(&a), out_free(&b), out_free(&c);
    sd_free(gpu);
}
