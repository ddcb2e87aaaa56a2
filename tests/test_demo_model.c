/* test_demo_model.c — the bundled demo model (samples/models/shapes, trained by tools/train_demo.py):
 *  1. it draws what it is asked for: the fixed prompt × seed list of tests/golden/shapes/e2e_prompts.txt, rendered
 *     with the model's default settings (what `sd -p` does), checked by the geometric classifier that
 *     test_shapes_classify.c validates on the training renderer's own pictures;
 *  2. our engine draws the same pictures as diffusers' StableDiffusionPipeline on it (tests/golden/demo, made by
 *     tools/goldens_demo.py): same seed (CPU generator), sampler, steps and guidance, within 1/255. */
#include "test.h"
#include "latent_capture.h"
#include "load_model.h"
#include "shapes_classify.h"
#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/safetensors.h"
#include "../sd.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static sd_ctx *load_demo(void) { return test_load_model(test_path("../samples/models/shapes")); }

TEST(demo_model_draws_what_is_asked) {
    FILE *f = fopen(test_path("golden/shapes/e2e_prompts.txt"), "r");
    REQUIRE_MSG(f != NULL, "cannot open %s", test_path("golden/shapes/e2e_prompts.txt"));
    sd_ctx *ctx = load_demo();
    const sd_model_info *mi = sd_model(ctx);
    CHECK(!strcmp(mi->family, "SD 1.x") && mi->default_width == 128 && mi->default_height == 128);
    static const char *names[5] = {"colour", "background", "shape", "position", "size"};
    int n = 0, right[5] = {0};
    char line[512], *seed, *prompt;
    int rc;
    while ((rc = shapes_list_next(f, line, sizeof line, &seed, &prompt)) > 0) {
        shapes_scene want;
        REQUIRE_MSG(shapes_parse_caption(prompt, &want) == 0, "not a demo caption: %s", prompt);
        sd_gen_params p;
        sd_gen_params_init(&p); /* the model's defaults: 128x128, euler_a, 20 steps, guidance 3 (its model_index.json), Philox noise */
        p.prompt = prompt;
        p.seed = strtoull(seed, NULL, 10);
        sd_result r;
        REQUIRE_MSG(sd_generate(ctx, &p, NULL, NULL, &r) == SD_OK, "%s: %s", prompt, sd_last_error());
        shapes_result got;
        CHECK(shapes_classify(r.images[0].data, r.images[0].w, r.images[0].h, &got) == 0);
        const char *w[5] = {want.colour, want.background, want.shape, want.position, want.size};
        const char *g[5] = {got.colour, got.background, got.shape, got.position, got.size};
        for (int k = 0; k < 5; k++) {
            if (g[k] && !strcmp(g[k], w[k])) right[k]++;
            else test_note("seed %s \"%s\": %s %s", seed, prompt, names[k], g[k] ? g[k] : "(no shape found)");
        }
        sd_result_free(&r);
        n++;
    }
    fclose(f);
    sd_free(ctx);
    REQUIRE_MSG(rc == 0, "bad line in e2e_prompts.txt: %s", line);
    REQUIRE_MSG(n == 32, "%d prompts; the bars below are for the 32 of the model card", n);
    /* Misses allowed per attribute, from what the model card (samples/models/shapes/README.md) measures on these 32
     * prompts: colour, background, position and size 100% right, so one miss at most (a borderline picture may
     * flip on another CPU); shape 84.4% (5 misses), so 8 at most (75%, the demo-model issue's bar). */
    static const int max_miss[5] = {1, 1, 8, 1, 1};
    for (int k = 0; k < 5; k++) {
        test_note("%s accuracy %.1f%% (%d/%d; at most %d misses)", names[k], 100.0 * right[k] / n, right[k], n, max_miss[k]);
        CHECK_MSG(n - right[k] <= max_miss[k], "%s: %d of %d prompts wrong, at most %d allowed", names[k], n - right[k], n,
                  max_miss[k]);
    }
}

#define DEMO_LATENT_REL 8e-6

TEST(demo_model_matches_diffusers) {
    char *txt;
    REQUIRE(file_read(test_path("golden/demo/demo.json"), 1 << 20, &txt, NULL) == SD_OK);
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    REQUIRE(root);
    sd_ctx *ctx = load_demo();
    /* diffusers' scheduler classes under our sampler names */
    static const char *map[][2] = {{"euler_a", "euler_a"}, {"dpmpp2m", "dpm++2m"}, {"pndm", "pndm"}};
    int ncases = 0, worst_px = 0;
    double worst_lat = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const char *sampler = cJSON_GetObjectItem(c, "sampler")->valuestring, *ours = NULL;
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (!strcmp(map[i][0], sampler)) ours = map[i][1];
        REQUIRE_MSG(ours, "%s: sampler %s has no counterpart", name, sampler);
        sd_gen_params p;
        sd_gen_params_init(&p);
        p.prompt = cJSON_GetObjectItem(c, "prompt")->valuestring;
        p.seed = (uint64_t)cJSON_GetObjectItem(c, "seed")->valuedouble;
        p.sampler = ours;
        p.steps = cJSON_GetObjectItem(c, "steps")->valueint;
        p.cfg_scale = (float)cJSON_GetObjectItem(c, "guidance_scale")->valuedouble;
        p.width = p.height = 128;
        p.rng = "cpu"; /* torch.Generator().manual_seed(seed) */
        latent_capture cap = {0};
        sd_result r;
        REQUIRE_MSG(sd_generate(ctx, &p, latent_capture_fn, &cap, &r) == SD_OK, "%s: %s", name, sd_last_error());

        char path[512];
        snprintf(path, sizeof path, "golden/demo/%s.safetensors", name);
        st_file *f;
        REQUIRE_MSG(st_open(test_path(path), &f) == SD_OK, "%s", sd_last_error());
        int64_t n;
        float *want = st_load_f32(f, "final_latent", &n); /* [1, 4, 16, 16] NCHW */
        st_close(f);
        REQUIRE(want && n == 4 * 16 * 16 && cap.latent && cap.n == (size_t)n);
        double err = 0, scale = 1;
        for (int i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
        for (int ch = 0; ch < 4; ch++)
            for (int y = 0; y < 16; y++)
                for (int x = 0; x < 16; x++)
                    err = fmax(err, fabs(cap.latent[(y * 16 + x) * 4 + ch] - want[(ch * 16 + y) * 16 + x]));

        snprintf(path, sizeof path, "golden/demo/%s.png", name);
        sd_image ref;
        REQUIRE(sd_image_load(test_path(path), 3, &ref) == SD_OK);
        REQUIRE(ref.w == r.images[0].w && ref.h == r.images[0].h);
        int px = 0;
        for (size_t i = 0; i < (size_t)ref.w * ref.h * 3; i++) {
            int d = abs(ref.data[i] - r.images[0].data[i]);
            px = d > px ? d : px;
        }
        /* f16 weights widened to f32 on both sides, f32 arithmetic: what is left is summation order. The model card
         * claims pictures within 1/255; the latent is held to about twice the worst measured (pndm's 20 steps:
         * 3.8e-6 of the latent's scale) */
        CHECK_MSG(err / scale <= DEMO_LATENT_REL, "%s: final latent max abs err %.3g (max |x| %.3g)", name, err, scale);
        CHECK_MSG(px <= 1, "%s: picture differs by %d/255", name, px);
        test_note("%s (%s, %d steps, cfg %g): latent max abs err %.3g (%.3g of its scale; tol %g), picture max diff %d/255",
                  name, ours, p.steps, p.cfg_scale, err, err / scale, DEMO_LATENT_REL, px);
        worst_lat = fmax(worst_lat, err);
        worst_px = px > worst_px ? px : worst_px;
        ncases++;
        free(want);
        free(cap.latent);
        sd_image_free(&ref);
        sd_result_free(&r);
    }
    CHECK(ncases == 3);
    test_note("%d cases: latent max abs err %.3g, picture max diff %d/255", ncases, worst_lat, worst_px);
    sd_free(ctx);
    cJSON_Delete(root);
}
