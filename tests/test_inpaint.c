/* test_inpaint.c — inpainting against diffusers' StableDiffusionInpaintPipeline (tests/golden/inpaint, made by
 * tools/goldens_inpaint.py) on tiny models with a 4-channel and a 9-channel UNet: every sampler with a diffusers
 * scheduler, strengths 0.35 / 0.75 / 1.0, a soft mask off the 8-pixel grid, mask blur, padding_mask_crop (with and
 * without fill bands), and a 9-channel model without a mask. Latents within 1e-4 (relative to their scale),
 * pictures within 2/255. Plus the rules that need no reference: the kept area, fill modes, bad input. */
#include "test.h"
#include "latent_capture.h"
#include "load_model.h"
#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/safetensors.h"
#include "../sd.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static sd_image load_golden(const char *name, int channels) {
    char path[256];
    snprintf(path, sizeof path, "golden/inpaint/%s", name);
    sd_image im = {0};
    if (sd_image_load(test_path(path), channels, &im) != SD_OK) test_note("%s", sd_last_error());
    return im;
}

TEST(inpaint_matches_diffusers) {
    char *txt;
    REQUIRE(file_read(test_path("golden/inpaint/cases.json"), 1 << 20, &txt, NULL) == SD_OK);
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    REQUIRE(root);
    sd_ctx *models[2] = {test_load_model(test_path("golden/inpaint/sd1")), test_load_model(test_path("golden/inpaint/sd1_inp"))};
    CHECK(!sd_model(models[0])->inpainting && sd_model(models[1])->inpainting);
    double worst_rel = 0, worst_abs = 0;
    int worst_px = 0, ncases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        int nine = !strcmp(cJSON_GetObjectItem(c, "model")->valuestring, "sd1_inp");
        sd_gen_params p;
        sd_gen_params_init(&p);
        p.prompt = cJSON_GetObjectItem(c, "prompt")->valuestring;
        p.negative_prompt = cJSON_GetObjectItem(c, "negative_prompt")->valuestring;
        p.sampler = cJSON_GetObjectItem(c, "sampler")->valuestring;
        p.steps = cJSON_GetObjectItem(c, "steps")->valueint;
        p.cfg_scale = (float)cJSON_GetObjectItem(c, "cfg")->valuedouble;
        p.seed = (uint64_t)cJSON_GetObjectItem(c, "seed")->valuedouble;
        p.width = cJSON_GetObjectItem(c, "width")->valueint;
        p.height = cJSON_GetObjectItem(c, "height")->valueint;
        p.strength = (float)cJSON_GetObjectItem(c, "strength")->valuedouble;
        p.rng = "cpu";
        p.mask_blur = cJSON_GetObjectItem(c, "mask_blur")->valueint;
        const cJSON *pad = cJSON_GetObjectItem(c, "padding");
        if (cJSON_IsNumber(pad)) {
            p.inpaint_only_masked = 1;
            p.inpaint_padding = pad->valueint;
        }
        sd_image init = load_golden(cJSON_GetObjectItem(c, "init")->valuestring, 3), mask = {0};
        const cJSON *mk = cJSON_GetObjectItem(c, "mask");
        if (cJSON_IsString(mk)) mask = load_golden(mk->valuestring, 1);
        REQUIRE(init.data && (mask.data || !cJSON_IsString(mk)));
        p.init_image = &init;
        p.mask = mask.data ? &mask : NULL;
        latent_capture cap = {0};
        sd_result r;
        sd_status st = sd_generate(models[nine], &p, latent_capture_fn, &cap, &r);
        CHECK_MSG(st == SD_OK, "%s: %s", name, sd_last_error());
        if (st == SD_OK) {
            char path[256];
            snprintf(path, sizeof path, "golden/inpaint/%s.safetensors", name);
            st_file *f;
            REQUIRE(st_open(test_path(path), &f) == SD_OK);
            int64_t n;
            float *want = st_load_f32(f, "latent", &n);
            st_close(f);
            REQUIRE(want && cap.latent && (size_t)n == cap.n);
            double err = 0, scale = 1;
            for (int64_t i = 0; i < n; i++) {
                err = fmax(err, fabs(cap.latent[i] - want[i]));
                scale = fmax(scale, fabs(want[i]));
            }
            snprintf(path, sizeof path, "%s.png", name);
            sd_image ref = load_golden(path, 3);
            REQUIRE(ref.data);
            CHECK_MSG(ref.w == r.images[0].w && ref.h == r.images[0].h, "%s: picture %dx%d, diffusers %dx%d", name,
                      r.images[0].w, r.images[0].h, ref.w, ref.h);
            int px = 0;
            if (ref.w == r.images[0].w && ref.h == r.images[0].h)
                for (size_t i = 0; i < (size_t)ref.w * ref.h * 3; i++) {
                    int d = abs(ref.data[i] - r.images[0].data[i]);
                    px = d > px ? d : px;
                }
            CHECK_MSG(err / scale <= 1e-4, "%s: latent max abs err %.3g (max |x| %.3g)", name, err, scale);
            CHECK_MSG(px <= 2, "%s: picture differs by %d/255", name, px);
            worst_rel = fmax(worst_rel, err / scale);
            worst_abs = fmax(worst_abs, err);
            worst_px = px > worst_px ? px : worst_px;
            ncases++;
            free(want);
            sd_image_free(&ref);
            sd_result_free(&r);
        }
        free(cap.latent);
        sd_image_free(&init);
        sd_image_free(&mask);
    }
    test_note("%d cases: latent max abs err %.3g (%.3g relative to the latent scale), picture max diff %d/255", ncases,
              worst_abs, worst_rel, worst_px);
    CHECK(ncases == 42);
    sd_free(models[0]);
    sd_free(models[1]);
    cJSON_Delete(root);
}
