/* test_controlnet_parts.c — the ControlNet's pieces: original (control_model.*) names against diffusers names of the
 * same weights, the Canny preprocessor against OpenCV's cv2.Canny, resize modes, and the refusals. */
#include "test.h"
#include "load_model.h"
#include "../core/error.h"
#include "../core/fileio.h"
#include "../kernels/backend.h"
#include "../pipeline/control.h"
#include "../pipeline/infotext.h"
#include "../sd.h"
#include "../unet/controlnet.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

/* Loads a ControlNet file with the config of the diffusers folder `folder` (tiny models: heads and groups are not
 * the family rules'). */
static controlnet *load_cn(be *b, const char *file, const char *folder) {
    st_file *f;
    if (st_open(file, &f) != SD_OK) return NULL;
    wmap *m = wmap_new();
    controlnet_config cfg;
    char cp[1400];
    snprintf(cp, sizeof cp, "%s/config.json", folder);
    controlnet *cn = NULL;
    if (controlnet_add_tensors(m, f) == SD_OK && controlnet_config_from_file(cp, &cfg) == SD_OK) controlnet_load(b, m, &cfg, &cn);
    wmap_free(m);
    st_close(f);
    return cn;
}

/* Residuals of one ControlNet on fixed random inputs, downloaded into one host array. */
static float *residuals(be *b, controlnet *cn, int sdxl, size_t *total) {
    const unet_config *u = &controlnet_get_config(cn)->unet;
    int N = 2, h = 6, w = 5, T = 7, ns = unet_skip_count(u);
    size_t mark = be_mark(b);
    be_tensor x = be_new(b, N, h, w, 4), hint = be_new(b, N, 2 * h, 2 * w, 3), ctx = be_new(b, N, 1, T, u->ctx_dim), pooled = {0};
    float *hx = malloc(sizeof(float) * N * 2 * h * 2 * w * 3 * 4 + sizeof(float) * N * T * u->ctx_dim);
    unsigned s = 7;
    for (size_t i = 0; i < (size_t)N * 2 * h * 2 * w * 3 * 4 + (size_t)N * T * u->ctx_dim; i++) {
        s = s * 1103515245u + 12345u;
        hx[i] = ((s >> 8) & 0xffff) / 65535.0f;
    }
    be_upload(b, &x, hx);
    be_upload(b, &hint, hx + 100);
    be_upload(b, &ctx, hx + 7);
    float ids[12] = {32, 48, 0, 0, 32, 48, 64, 40, 1, 2, 64, 40}, ts[2] = {500, 37.5f};
    if (sdxl) {
        int pd = u->add_in_dim - 6 * u->add_time_dim;
        pooled = be_new(b, N, 1, 1, pd);
        be_upload(b, &pooled, hx + 31);
    }
    unet_cond c = {&ctx, sdxl ? &pooled : NULL, sdxl ? ids : NULL, NULL, NULL, 0};
    be_tensor res[CONTROLNET_MAX_SKIPS], mid;
    *total = 0;
    for (int i = 0; i < ns; i++) {
        int sh, sw, sc;
        unet_skip_shape(u, i, h, w, &sh, &sw, &sc);
        res[i] = be_new(b, N, sh, sw, sc);
        *total += be_numel(&res[i]);
    }
    mid = be_new(b, N, res[ns - 1].h, res[ns - 1].w, u->block_out[u->levels - 1]);
    *total += be_numel(&mid);
    float scales[CONTROLNET_MAX_SKIPS + 1];
    for (int i = 0; i <= ns; i++) scales[i] = 0.5f + 0.1f * i;
    unet_control out = {ns, res, &mid, 0};
    controlnet_forward(b, cn, &x, ts, &c, &hint, scales, 0, &out);
    float *all = malloc(*total * sizeof(float)), *p = all;
    for (int i = 0; i < ns; i++) {
        be_download(b, &res[i], p);
        p += be_numel(&res[i]);
    }
    be_download(b, &mid, p);
    be_release(b, mark);
    free(hx);
    return all;
}

TEST(controlnet_original_names_match_diffusers_names) {
    /* the same weights as lllyasviel's layout (control_model.input_hint_block / zero_convs / input_blocks ..., f32)
     * and as a diffusers folder (f16): identical residuals */
    const char *fam[2] = {"sd1", "sdxl"};
    for (int k = 0; k < 2; k++) {
        be *b = be_cpu_new(1);
        REQUIRE(b && be_arena_reserve(b, 64 << 20) == SD_OK);
        char folder[1400], dfile[1400], lfile[1400];
        snprintf(folder, sizeof folder, "%s", test_path(k ? "golden/controlnet/sdxl_cn_a" : "golden/controlnet/sd1_cn_a"));
        snprintf(dfile, sizeof dfile, "%s/diffusion_pytorch_model.safetensors", folder);
        snprintf(lfile, sizeof lfile, "%s", test_path(k ? "golden/controlnet/sdxl_cn_a_ldm.safetensors" : "golden/controlnet/sd1_cn_a_ldm.safetensors"));
        controlnet *a = load_cn(b, dfile, folder);
        CHECK_MSG(a, "%s diffusers: %s", fam[k], sd_last_error());
        controlnet *l = load_cn(b, lfile, folder);
        CHECK_MSG(l, "%s original names: %s", fam[k], sd_last_error());
        if (a && l) {
            size_t na, nl;
            float *ra = residuals(b, a, k, &na), *rl = residuals(b, l, k, &nl);
            CHECK_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
            REQUIRE(na == nl);
            double maxabs = 0;
            int same = 1;
            for (size_t i = 0; i < na; i++) {
                same &= ra[i] == rl[i];
                maxabs = fmax(maxabs, fabs(ra[i]));
            }
            CHECK_MSG(same, "%s: residuals differ between the two layouts", fam[k]);
            CHECK_MSG(maxabs > 1e-3, "%s: residuals are all ~0 (max %g): the test would prove nothing", fam[k], maxabs);
            test_note("%s: %zu residual values identical (max |r| %.3g)", fam[k], na, maxabs);
            free(ra);
            free(rl);
        }
        controlnet_free(b, a);
        controlnet_free(b, l);
        be_free(b);
    }
}

TEST(canny_matches_opencv) {
    char *txt;
    REQUIRE(file_read(test_path("golden/controlnet/cases.json"), 1 << 20, &txt, NULL) == SD_OK);
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    REQUIRE(root);
    long px = 0, diff = 0, edges = 0;
    int ncases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "canny")) {
        char ip[256], ep[256];
        snprintf(ip, sizeof ip, "golden/controlnet/%s", cJSON_GetObjectItem(c, "image")->valuestring);
        snprintf(ep, sizeof ep, "golden/controlnet/%s", cJSON_GetObjectItem(c, "edges")->valuestring);
        sd_image img, want;
        int grey = strstr(ip, "grey") != NULL;
        REQUIRE(sd_image_load(test_path(ip), grey ? 1 : 3, &img) == SD_OK);
        REQUIRE(sd_image_load(test_path(ep), 1, &want) == SD_OK);
        uint8_t *got = malloc((size_t)img.w * img.h);
        REQUIRE(canny_u8(img.data, img.w, img.h, img.c, (float)cJSON_GetObjectItem(c, "low")->valuedouble,
                         (float)cJSON_GetObjectItem(c, "high")->valuedouble, got) == SD_OK);
        long d = 0;
        for (long i = 0; i < (long)img.w * img.h; i++) {
            d += got[i] != want.data[i];
            edges += want.data[i] != 0;
        }
        CHECK_MSG(d == 0, "%s: %ld of %d pixels differ from cv2.Canny", ep, d, img.w * img.h);
        diff += d;
        px += (long)img.w * img.h;
        ncases++;
        free(got);
        sd_image_free(&img);
        sd_image_free(&want);
    }
    test_note("%d edge maps, %ld pixels (%ld edge pixels): %ld differ from OpenCV", ncases, px, edges, diff);
    CHECK(ncases == 17);
    cJSON_Delete(root);
}

TEST(control_resize_modes) {
    /* a 4x2 picture, left half white: stretched, cropped (cover, middle kept) and fitted (padded black) into 4x4 */
    uint8_t src[8] = {255, 255, 0, 0, 255, 255, 0, 0};
    sd_image im = {.data = src, .w = 4, .h = 2, .c = 1};
    uint8_t out[16];
    REQUIRE(control_resize(&im, "just-resize", 4, 4, out) == SD_OK);
    for (int y = 0; y < 4; y++) CHECK(out[y * 4] == 255 && out[y * 4 + 3] == 0);
    REQUIRE(control_resize(&im, "crop", 4, 4, out) == SD_OK); /* scale 2 (bilinear): the middle 2x2 of the source, white | black */
    for (int y = 0; y < 4; y++) CHECK(out[y * 4] == 255 && out[y * 4 + 1] > 128 && out[y * 4 + 2] < 128 && out[y * 4 + 3] == 0);
    REQUIRE(control_resize(&im, "fill", 4, 4, out) == SD_OK); /* scale 1: rows 1-2 hold the picture, rows 0 and 3 black */
    CHECK(out[0] == 0 && out[12] == 0 && out[4] == 255 && out[8] == 255 && out[7] == 0);
    /* shrinking averages: an 8x1 alternating row into 2x1 is mid grey, not one of the samples */
    uint8_t alt[8] = {0, 255, 0, 255, 0, 255, 0, 255}, o2[2];
    sd_image a = {.data = alt, .w = 8, .h = 1, .c = 1};
    REQUIRE(control_resize(&a, "just-resize", 2, 1, o2) == SD_OK);
    CHECK(abs(o2[0] - 128) <= 1 && abs(o2[1] - 128) <= 1);
}

TEST(controlnet_refusals) {
    sd_ctx *xl = test_load_model(test_path("golden/pipeline/sdxl"));
    sd_image img;
    REQUIRE(sd_image_load(test_path("golden/controlnet/control_a.png"), 3, &img) == SD_OK);
    sd_control c;
    sd_control_init(&c);
    char path[1400];
    snprintf(path, sizeof path, "%s", test_path("golden/controlnet/sd1_cn_a"));
    c.model = path;
    c.image = &img;
    sd_gen_params p;
    sd_gen_params_init(&p);
    p.prompt = "x";
    p.steps = 2;
    p.width = 48;
    p.height = 32;
    p.controls = &c;
    p.control_count = 1;
    sd_result r;
    /* an SD 1.x ControlNet on an SDXL model */
    CHECK(sd_generate(xl, &p, NULL, NULL, &r) == SD_ERR_MODEL);
    CHECK_MSG(strstr(sd_last_error(), "sd1_cn_a") && strstr(sd_last_error(), "SD 1.x ControlNet") && strstr(sd_last_error(), "SDXL"),
              "%s", sd_last_error());
    /* not a ControlNet: the model's own UNet file */
    snprintf(path, sizeof path, "%s", test_path("golden/pipeline/sdxl/unet/diffusion_pytorch_model.safetensors"));
    CHECK(sd_generate(xl, &p, NULL, NULL, &r) == SD_ERR_MODEL);
    CHECK_MSG(strstr(sd_last_error(), "not a ControlNet"), "%s", sd_last_error());
    /* a pickle, a missing file */
    snprintf(path, sizeof path, "%s", "/nonexistent/control_v11p_sd15_canny.pth");
    CHECK(sd_generate(xl, &p, NULL, NULL, &r) != SD_OK && strstr(sd_last_error(), "control_v11p_sd15_canny.pth"));
    snprintf(path, sizeof path, "%s", test_path("golden/controlnet/sdxl_cn_a"));
    /* bad settings are refused before any work, naming the control */
    c.strength = NAN;
    CHECK(sd_check_params(xl, &p) == SD_ERR_ARG && strstr(sd_last_error(), "strength"));
    c.strength = 1;
    c.start = 0.8f;
    c.end = 0.2f;
    CHECK(sd_check_params(xl, &p) == SD_ERR_ARG && strstr(sd_last_error(), "start"));
    c.start = 0;
    c.end = 1;
    c.preprocess = "depth";
    CHECK(sd_check_params(xl, &p) == SD_ERR_ARG && strstr(sd_last_error(), "depth"));
    c.preprocess = NULL;
    c.resize = "stretch";
    CHECK(sd_check_params(xl, &p) == SD_ERR_ARG && strstr(sd_last_error(), "stretch"));
    c.resize = NULL;
    c.image = NULL;
    CHECK(sd_check_params(xl, &p) == SD_ERR_ARG && strstr(sd_last_error(), "control image"));
    c.image = &img;
    p.control_count = SD_MAX_CONTROLS + 1;
    CHECK(sd_check_params(xl, &p) == SD_ERR_ARG);
    p.control_count = 1;
    CHECK(sd_check_params(xl, &p) == SD_OK);
    CHECK_MSG(sd_generate(xl, &p, NULL, NULL, &r) == SD_OK, "%s", sd_last_error()); /* and it still works after the refusals */
    sd_result_free(&r);
    sd_image_free(&img);
    sd_free(xl);
}

TEST(controlnet_settings_text_round_trip) {
    /* the PNG keeps the controls as sd-webui-controlnet writes them (parameters) and in full (our JSON), and
     * --from-png gets them back; an AUTOMATIC1111 line alone gives strength, steps window, preprocessor, resize */
    sd_ctx *ctx = test_load_model(test_path("golden/pipeline/sd1"));
    sd_image img;
    REQUIRE(sd_image_load(test_path("golden/controlnet/control_b.png"), 3, &img) == SD_OK);
    char model[1400];
    snprintf(model, sizeof model, "%s", test_path("golden/controlnet/sd1_cn_a"));
    sd_control c[2];
    sd_control_init(&c[0]);
    sd_control_init(&c[1]);
    c[0].model = c[1].model = model;
    c[0].image = c[1].image = &img;
    c[0].image_name = "control_b.png";
    c[1].image_name = "other.png";
    c[0].strength = 0.75f;
    c[1].preprocess = "canny";
    c[1].canny_low = 50;
    c[1].canny_high = 150;
    c[1].start = 0.25f;
    c[1].resize = "fill";
    sd_gen_params p;
    sd_gen_params_init(&p);
    p.prompt = "a red circle";
    p.width = 48;
    p.height = 32;
    p.steps = 2;
    p.controls = c;
    p.control_count = 2;
    p.control_guess_mode = 1;
    sd_result r;
    REQUIRE_MSG(sd_generate(ctx, &p, NULL, NULL, &r) == SD_OK, "%s", sd_last_error());
    const char *want0 = "ControlNet 0: \"Module: none, Model: sd1_cn_a [";
    const char *want1 = "ControlNet 1: \"Module: canny, Model: sd1_cn_a [";
    CHECK_MSG(strstr(r.infotext[0], want0) && strstr(r.infotext[0], want1), "%s", r.infotext[0]);
    CHECK(strstr(r.infotext[0], "Weight: 0.75, Resize Mode: Crop and Resize") && strstr(r.infotext[0], "Threshold A: 50, Threshold B: 150"));
    CHECK(strstr(r.infotext[0], "Resize Mode: Resize and Fill") && strstr(r.infotext[0], "Guidance Start: 0.25, Guidance End: 1"));
    CHECK(strstr(r.infotext[0], "Control Mode: ControlNet is more important"));
    char path[1600];
    snprintf(path, sizeof path, "%s/cn.png", test_tmpdir());
    REQUIRE(sd_save_png(path, &r.images[0], r.infotext[0], r.json[0], 0) == SD_OK);
    sd_gen_params q;
    void *store;
    REQUIRE(sd_params_from_png(path, &q, &store) == SD_OK);
    REQUIRE(q.control_count == 2 && q.controls);
    CHECK(!strcmp(q.controls[0].model, model) && !strcmp(q.controls[0].image_name, "control_b.png") && !q.controls[0].image);
    CHECK(q.controls[0].strength == 0.75f && q.controls[1].start == 0.25f && q.controls[1].end == 1.0f);
    CHECK(!strcmp(q.controls[1].preprocess, "canny") && q.controls[1].canny_low == 50 && q.controls[1].canny_high == 150);
    CHECK(!strcmp(q.controls[1].resize, "fill") && q.control_guess_mode == 1);
    free(store);
    /* the A1111 text alone */
    snprintf(path, sizeof path, "%s/a1111.png", test_tmpdir());
    REQUIRE(sd_save_png(path, &r.images[0], r.infotext[0], NULL, 0) == SD_OK);
    REQUIRE(sd_params_from_png(path, &q, &store) == SD_OK);
    REQUIRE(q.control_count == 2);
    CHECK(!strcmp(q.controls[0].model, "sd1_cn_a") && !q.controls[0].image_name && q.controls[0].strength == 0.75f);
    CHECK(!strcmp(q.controls[1].preprocess, "canny") && q.controls[1].canny_low == 50 && q.controls[1].start == 0.25f);
    CHECK(!strcmp(q.controls[1].resize, "fill") && q.control_guess_mode == 1 && q.steps == 2);
    free(store);
    sd_result_free(&r);
    sd_image_free(&img);
    sd_free(ctx);
}

TEST(controlnet_stored_numbers_out_of_range_are_refused) {
    /* a number a float cannot hold, or not a number, in a picture's ControlNet settings reads as NaN (its conversion
     * would be undefined) and the call's check refuses it by name; in range values come back as they were */
    static const char *bad[] = {
        "x\nSteps: 2, Seed: 1, ControlNet 0: \"Module: none, Model: m, Weight: 1e999\"",
        "x\nSteps: 2, Seed: 1, ControlNet 0: \"Module: none, Model: m, Weight: abc\"",
        "x\nSteps: 2, Seed: 1, ControlNet 0: \"Module: canny, Model: m, Threshold A: -1e300\"",
    };
    static const char *bad_json[] = {
        "{\"prompt\": \"x\", \"controls\": [{\"model\": \"m\", \"strength\": 1e300}]}",
        "{\"prompt\": \"x\", \"controls\": [{\"model\": \"m\", \"end\": \"1\"}]}",
    };
    sd_ctx *ctx = test_load_model(test_path("golden/pipeline/sd1"));
    sd_image img;
    REQUIRE(sd_image_load(test_path("golden/controlnet/control_b.png"), 3, &img) == SD_OK);
    for (int i = 0; i < 5; i++) {
        sd_gen_params q;
        void *store;
        const char *a1111 = i < 3 ? bad[i] : NULL, *json = i < 3 ? NULL : bad_json[i - 3];
        REQUIRE_MSG(infotext_params_from_text("img.png", json, a1111, &q, &store) == SD_OK, "%d: %s", i, sd_last_error());
        REQUIRE(q.control_count == 1);
        sd_control c = q.controls[0];
        c.image = &img;
        q.controls = &c;
        CHECK_MSG(sd_check_params(ctx, &q) == SD_ERR_ARG, "case %d accepted", i);
        CHECK_MSG(strstr(sd_last_error(), "ControlNet 0"), "%d: %s", i, sd_last_error());
        free(store);
    }
    sd_image_free(&img);
    sd_free(ctx);
}

TEST(controlnet_with_inpainting) {
    /* a 4-channel model inpaints by blending: with a ControlNet the kept half still lands on the init image, and the
     * ControlNet changes what is painted in the other half */
    sd_ctx *ctx = test_load_model(test_path("golden/pipeline/sd1"));
    sd_image init, cimg;
    REQUIRE(sd_image_load(test_path("golden/pipeline/init.png"), 3, &init) == SD_OK);
    REQUIRE(sd_image_load(test_path("golden/controlnet/control_b.png"), 3, &cimg) == SD_OK);
    int W = init.w, H = init.h;
    sd_image mask = {W, H, 1, calloc((size_t)W * H, 1)};
    for (int y = 0; y < H; y++)
        for (int x = W / 2; x < W; x++) mask.data[y * W + x] = 255;
    char model[1400];
    snprintf(model, sizeof model, "%s", test_path("golden/controlnet/sd1_cn_a"));
    sd_control c;
    sd_control_init(&c);
    c.model = model;
    c.image = &cimg;
    c.strength = 2;
    sd_gen_params p;
    sd_gen_params_init(&p);
    p.prompt = "a red circle";
    p.width = W;
    p.height = H;
    p.steps = 6;
    p.init_image = &init;
    p.mask = &mask;
    p.strength = 1.0f;
    sd_result r[2];
    for (int k = 0; k < 2; k++) {
        p.controls = k ? &c : NULL;
        p.control_count = k;
        REQUIRE_MSG(sd_generate(ctx, &p, NULL, NULL, &r[k]) == SD_OK, "%s", sd_last_error());
    }
    double d[2] = {0};
    int cnt[2] = {0};
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int side = x < W / 2 - 4 ? 0 : x >= W / 2 + 4 ? 1 : -1;
            if (side < 0) continue;
            for (int ch = 0; ch < 3; ch++) {
                size_t i = ((size_t)y * W + x) * 3 + ch;
                d[side] += abs(r[0].images[0].data[i] - r[1].images[0].data[i]);
                cnt[side]++;
            }
        }
    d[0] /= cnt[0];
    d[1] /= cnt[1];
    test_note("mean |without - with ControlNet| per 8-bit channel: kept half %.2f, repainted half %.2f", d[0], d[1]);
    CHECK(d[1] > 0.25 && d[0] < 0.05 * d[1]); /* the tiny random model draws low-contrast pictures: a fraction of a level is a change */
    for (int k = 0; k < 2; k++) sd_result_free(&r[k]);
    free(mask.data);
    sd_image_free(&init);
    sd_image_free(&cimg);
    sd_free(ctx);
}
