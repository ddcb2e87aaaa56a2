/* test_hires.c — the hires fix equals its parts, with the demo model: txt2img at the base size, an explicit upscale
 * and an img2img at the large size with the same settings give the same pixels (Lanczos: through the public API
 * only, as a user would with two `sd` runs; latent: the captured first-pass latent, the test's own bilinear resize,
 * and an img2img from those latents). Also A1111's size rules, its infotext keys read back by --from-png, and the
 * refusals. */
#include "test.h"
#include "latent_capture.h"
#include "load_model.h"
#include "../core/error.h"
#include "../pipeline/gen.h"
#include "../sd.h"

#include <stdlib.h>

static sd_ctx *demo(void) { return test_load_model(test_path("../samples/models/shapes")); }

static void base_params(sd_gen_params *p) {
    sd_gen_params_init(p);
    p->prompt = "a large green triangle on a white background, bottom right";
    p->seed = 21;
    p->steps = 8;
}

static int max_diff(const sd_image *a, const sd_image *b) {
    if (a->w != b->w || a->h != b->h || a->c != b->c) return 999;
    return test_u8_maxdiff(a->data, b->data, (size_t)a->w * a->h * a->c);
}

TEST(hires_lanczos_equals_txt2img_upscale_img2img) {
    sd_ctx *ctx = demo();
    sd_gen_params p;
    base_params(&p);
    p.batch_count = 2; /* seeds 21 and 22: each image's second pass keeps its own seed */
    p.hires_scale = 2;
    p.hires_steps = 4;
    p.hires_denoise = 0.5f; /* a schedule of 4 / 0.5 = 8 steps, the last 4 run */
    p.hires_upscaler = "lanczos";
    sd_result hr;
    REQUIRE_MSG(sd_generate(ctx, &p, NULL, NULL, &hr) == SD_OK, "%s", sd_last_error());
    REQUIRE(hr.count == 2 && hr.images[0].w == 256 && hr.images[0].h == 256);
    /* the parts: txt2img at 128x128, PIL-Lanczos to 256x256, img2img with 8 steps at strength 0.5 (diffusers runs the
     * last int(8 * 0.5) = 4) */
    sd_gen_params t;
    base_params(&t);
    t.batch_count = 2;
    sd_result lo;
    REQUIRE(sd_generate(ctx, &t, NULL, NULL, &lo) == SD_OK);
    for (int i = 0; i < 2; i++) {
        sd_image up;
        REQUIRE(upscale_lanczos(&lo.images[i], 256, 256, &up) == SD_OK);
        sd_gen_params q;
        base_params(&q);
        q.seed = t.seed + i;
        q.width = q.height = 256;
        q.init_image = &up;
        q.strength = 0.5f;
        sd_result r;
        REQUIRE_MSG(sd_generate(ctx, &q, NULL, NULL, &r) == SD_OK, "%s", sd_last_error());
        int d = max_diff(&r.images[0], &hr.images[i]);
        test_note("image %d (seed %d): hires fix vs txt2img + Lanczos + img2img: max pixel difference %d", i, (int)q.seed, d);
        CHECK_EQ_INT(d, 0);
        sd_result_free(&r);
        free(up.data);
    }
    /* the infotext is AUTOMATIC1111's */
    CHECK_STR_CONTAINS(hr.infotext[1], "Seed: 22, Size: 128x128");
    CHECK_STR_CONTAINS(hr.infotext[1], "Denoising strength: 0.5, Hires upscale: 2, Hires steps: 4, Hires upscaler: Lanczos");
    sd_result_free(&lo);
    sd_result_free(&hr);
    sd_free(ctx);
}

/* The test's own torch-style bilinear resize (align_corners=False): a second implementation, not upscale.c's. */
static void bilinear(const float *x, int h, int w, int c, int h2, int w2, float *out) {
    for (int y = 0; y < h2; y++)
        for (int xx = 0; xx < w2; xx++) {
            double sy = fmax(0.0, (y + 0.5) * h / h2 - 0.5), sx = fmax(0.0, (xx + 0.5) * w / w2 - 0.5);
            int y0 = (int)sy, x0 = (int)sx, y1 = y0 + (y0 < h - 1), x1 = x0 + (x0 < w - 1);
            double fy = sy - y0, fx = sx - x0;
            for (int k = 0; k < c; k++)
                out[((size_t)y * w2 + xx) * c + k] =
                    (float)((1 - fy) * ((1 - fx) * x[((size_t)y0 * w + x0) * c + k] + fx * x[((size_t)y0 * w + x1) * c + k]) +
                            fy * ((1 - fx) * x[((size_t)y1 * w + x0) * c + k] + fx * x[((size_t)y1 * w + x1) * c + k]));
        }
}

TEST(hires_latent_equals_txt2img_resize_img2img_from_latents) {
    sd_ctx *ctx = demo();
    sd_gen_params p;
    base_params(&p);
    p.hires_scale = 1.5f; /* 128 -> 192: a ragged 16 -> 24 latent resize */
    p.hires_steps = 3;
    p.hires_denoise = 0.6f; /* int(3 / 0.6) = 5 steps, the last 3 run */
    sd_result hr;
    latent_capture first = {0};
    REQUIRE_MSG(sd_generate(ctx, &p, latent_capture_fn, &first, &hr) == SD_OK, "%s", sd_last_error());
    REQUIRE(hr.images[0].w == 192 && hr.images[0].h == 192);
    /* latent_capture keeps the last "sample" latent of each pass: the second pass's; run the first pass alone */
    sd_gen_params t;
    base_params(&t);
    latent_capture lat = {0};
    sd_result lo;
    REQUIRE(sd_generate(ctx, &t, latent_capture_fn, &lat, &lo) == SD_OK);
    REQUIRE(lat.n == 16 * 16 * 4);
    float *up = malloc(24 * 24 * 4 * sizeof(float)), *ref = malloc(24 * 24 * 4 * sizeof(float));
    bilinear(lat.latent, 16, 16, 4, 24, 24, ref);
    upscale_latent(UPSCALE_BILINEAR, lat.latent, 16, 16, 4, 24, 24, up);
    double e = 0;
    for (int i = 0; i < 24 * 24 * 4; i++) e = fmax(e, fabs(up[i] - ref[i]));
    test_note("upscale.c vs the test's bilinear: max abs diff %.2e", e);
    CHECK(e < 1e-5);
    sd_gen_params q;
    base_params(&q);
    q.width = q.height = 192;
    q.steps = 5;
    q.strength = 0.6f; /* diffusers' rule: the last int(5 * 0.6) = 3 */
    sd_result r;
    REQUIRE_MSG(gen_generate(ctx, &q, up, NULL, NULL, &r) == SD_OK, "%s", sd_last_error());
    int d = max_diff(&r.images[0], &hr.images[0]);
    test_note("hires fix (latent) vs txt2img + latent resize + img2img from the latent: max pixel difference %d", d);
    CHECK_EQ_INT(d, 0);
    CHECK_STR_CONTAINS(hr.infotext[0], "Denoising strength: 0.6, Hires upscale: 1.5, Hires steps: 3, Hires upscaler: Latent");
    sd_result_free(&r);
    sd_result_free(&lo);
    sd_result_free(&hr);
    free(up); free(ref); free(lat.latent); free(first.latent);
    sd_free(ctx);
}

TEST(hires_from_png_redoes_it) {
    sd_ctx *ctx = demo();
    sd_gen_params p;
    base_params(&p);
    p.steps = 4;
    p.hires_width = 192; /* the height follows: 192 * 128 / 128 */
    p.hires_steps = 2;
    p.hires_upscaler = "latent-nearest-exact";
    sd_result r;
    REQUIRE_MSG(sd_generate(ctx, &p, NULL, NULL, &r) == SD_OK, "%s", sd_last_error());
    CHECK(r.images[0].w == 192 && r.images[0].h == 192);
    CHECK_STR_CONTAINS(r.infotext[0], "Hires resize: 192x0, Hires steps: 2, Hires upscaler: Latent (nearest-exact)"); /* A1111 quotes only values with , : or a newline */
    char path[4200];
    snprintf(path, sizeof path, "%s/hr.png", test_tmpdir());
    REQUIRE(sd_save_png(path, &r.images[0], r.infotext[0], r.json[0], 0) == SD_OK);
    sd_gen_params q;
    void *store;
    REQUIRE(sd_params_from_png(path, &q, &store) == SD_OK); /* the "sd" JSON chunk */
    sd_result again;
    REQUIRE_MSG(sd_generate(ctx, &q, NULL, NULL, &again) == SD_OK, "%s", sd_last_error());
    CHECK_EQ_INT(max_diff(&again.images[0], &r.images[0]), 0);
    sd_result_free(&again);
    free(store);
    /* an A1111 text alone (no "sd" chunk): its keys come back too */
    snprintf(path, sizeof path, "%s/a1111.png", test_tmpdir());
    const char *txt = "a cat\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 5, Size: 512x768, "
                      "Denoising strength: 0.45, Hires upscale: 1.75, Hires steps: 12, Hires upscaler: \"Latent (bicubic)\", Version: v1.10.1";
    REQUIRE(sd_save_png(path, &r.images[0], txt, NULL, 0) == SD_OK);
    REQUIRE(sd_params_from_png(path, &q, &store) == SD_OK);
    CHECK(q.width == 512 && q.height == 768 && q.steps == 20 && q.seed == 5);
    CHECK_NEAR(q.hires_scale, 1.75, 1e-6);
    CHECK_NEAR(q.hires_denoise, 0.45, 1e-6);
    CHECK_EQ_INT(q.hires_steps, 12);
    CHECK(q.hires_upscaler && !strcmp(q.hires_upscaler, "latent-bicubic"));
    CHECK_NEAR(q.strength, 0.75, 1e-6); /* the strength was the hires pass's, not an img2img's */
    free(store);
    sd_result_free(&r);
    sd_free(ctx);
}

TEST(hires_sizes_and_refusals) {
    sd_ctx *ctx = demo();
    sd_gen_params p;
    base_params(&p);
    p.steps = 2;
    p.hires_steps = 1;
    /* both sides given with another aspect: cover 256x256, then cut 4 latent rows off the top and the bottom */
    p.hires_width = 256;
    p.hires_height = 192;
    sd_result r;
    REQUIRE_MSG(sd_generate(ctx, &p, NULL, NULL, &r) == SD_OK, "%s", sd_last_error());
    CHECK(r.images[0].w == 256 && r.images[0].h == 192);
    CHECK_STR_CONTAINS(r.infotext[0], "Hires resize: 256x192");
    sd_result_free(&r);
    p.hires_width = p.hires_height = 0;
    p.hires_scale = 1.3f; /* 166.4 -> 166 -> 160 (multiples of 8) */
    p.hires_upscaler = "lanczos";
    REQUIRE_MSG(sd_generate(ctx, &p, NULL, NULL, &r) == SD_OK, "%s", sd_last_error());
    CHECK(r.images[0].w == 160 && r.images[0].h == 160);
    sd_result_free(&r);
    /* refusals, each naming the parameter */
    sd_image img = {8, 8, 3, (uint8_t[192]){0}};
    p.init_image = &img;
    CHECK(sd_check_params(ctx, &p) == SD_ERR_ARG);
    CHECK_STR_CONTAINS(sd_last_error(), "the hires fix is for txt2img");
    p.init_image = NULL;
    sd_control cn;
    sd_control_init(&cn);
    cn.model = "control.safetensors"; /* never loaded: the parameters are refused first */
    cn.image = &img;
    p.controls = &cn;
    p.control_count = 1;
    CHECK(sd_check_params(ctx, &p) == SD_ERR_ARG);
    CHECK_STR_CONTAINS(sd_last_error(), "the hires fix with ControlNets is not supported");
    p.controls = NULL;
    p.control_count = 0;
    p.hires_upscaler = "R-ESRGAN 4x+";
    CHECK(sd_check_params(ctx, &p) == SD_ERR_ARG);
    CHECK_STR_CONTAINS(sd_last_error(), "unknown hires upscaler \"R-ESRGAN 4x+\"");
    p.hires_upscaler = NULL;
    p.hires_denoise = 0;
    CHECK(sd_check_params(ctx, &p) == SD_ERR_ARG);
    CHECK_STR_CONTAINS(sd_last_error(), "hires denoising strength 0");
    p.hires_denoise = 0.5f;
    p.hires_steps = 600;
    CHECK(sd_check_params(ctx, &p) == SD_ERR_ARG);
    CHECK_STR_CONTAINS(sd_last_error(), "need a schedule of 1200 steps");
    p.hires_steps = 1;
    p.hires_scale = 9;
    CHECK(sd_check_params(ctx, &p) == SD_ERR_ARG);
    CHECK_STR_CONTAINS(sd_last_error(), "hires scale 9");
    sd_free(ctx);
}
