/* test_controlnet.c — ControlNet generations against diffusers' ControlNet pipelines on the tiny random-weight models
 * (tests/golden/controlnet, made by tools/goldens_controlnet.py): SD1 and SDXL, one and two ControlNets, strength,
 * start/end, guess mode, img2img; the original-name file against the diffusers-name one; refusals. */
#include "test.h"
#include "latent_capture.h"
#include "load_model.h"
#include "pipeline_case.h"
#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/safetensors.h"
#include "../kernels/backend.h"
#include "../sd.h"
#include "../unet/controlnet.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

/* Path of a file under tests/golden/controlnet (a buffer per call site: test_path's is shared). */
static const char *gpath(char *buf, size_t cap, const char *fmt, const char *arg) {
    char rel[256];
    snprintf(rel, sizeof rel, fmt, arg);
    snprintf(buf, cap, "%s", test_path(rel));
    return buf;
}

static cJSON *cases_json(void) {
    char *txt;
    if (file_read(test_path("golden/controlnet/cases.json"), 1 << 20, &txt, NULL) != SD_OK) return NULL;
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    return root;
}

/* The case's controls, images loaded (freed by free_controls). */
static int case_controls(const cJSON *c, sd_control *ctl, sd_image *img, char paths[][256]) {
    int n = 0;
    const cJSON *u;
    cJSON_ArrayForEach(u, cJSON_GetObjectItem(c, "controls")) {
        sd_control_init(&ctl[n]);
        gpath(paths[n], 256, "golden/controlnet/%s", cJSON_GetObjectItem(u, "model")->valuestring);
        ctl[n].model = paths[n];
        char ip[256];
        snprintf(ip, sizeof ip, "golden/controlnet/%s", cJSON_GetObjectItem(u, "image")->valuestring);
        if (sd_image_load(test_path(ip), 3, &img[n]) != SD_OK) return -1;
        ctl[n].image = &img[n];
        ctl[n].strength = (float)cJSON_GetObjectItem(u, "strength")->valuedouble;
        ctl[n].start = (float)cJSON_GetObjectItem(u, "start")->valuedouble;
        ctl[n].end = (float)cJSON_GetObjectItem(u, "end")->valuedouble;
        n++;
    }
    return n;
}

static void compare_case(sd_ctx *ctx, const cJSON *c, const sd_image *init, double *worst_rel, int *worst_px) {
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    sd_gen_params p;
    if (pipeline_case_params(c, &p)) p.init_image = init;
    sd_control ctl[4];
    sd_image img[4];
    char paths[4][256];
    int n = case_controls(c, ctl, img, paths);
    REQUIRE(n > 0);
    p.controls = ctl;
    p.control_count = n;
    p.control_guess_mode = cJSON_IsTrue(cJSON_GetObjectItem(c, "guess_mode"));
    latent_capture cap = {0};
    sd_result r;
    sd_status st = sd_generate(ctx, &p, latent_capture_fn, &cap, &r);
    CHECK_MSG(st == SD_OK, "%s: %s", name, sd_last_error());
    if (st == SD_OK) {
        st_file *f;
        char buf[512];
        REQUIRE(st_open(gpath(buf, sizeof buf, "golden/controlnet/%s.safetensors", name), &f) == SD_OK);
        int64_t cnt;
        float *want = st_load_f32(f, "latent", &cnt);
        st_close(f);
        REQUIRE(want && cap.latent && (size_t)cnt == cap.n);
        double err = 0, scale = 1;
        for (int64_t i = 0; i < cnt; i++) {
            err = fmax(err, fabs(cap.latent[i] - want[i]));
            scale = fmax(scale, fabs(want[i]));
        }
        sd_image ref;
        REQUIRE(sd_image_load(gpath(buf, sizeof buf, "golden/controlnet/%s.png", name), 3, &ref) == SD_OK);
        REQUIRE(ref.w == r.images[0].w && ref.h == r.images[0].h);
        int px = 0;
        for (size_t i = 0; i < (size_t)ref.w * ref.h * 3; i++) px = abs(ref.data[i] - r.images[0].data[i]) > px ? abs(ref.data[i] - r.images[0].data[i]) : px;
        /* 1e-6 of the latent's scale and 1/255, the pipeline goldens' bars (measured: 3.4e-7, 0/255; issue 20 asks
         * 1e-4 and 2/255) */
        CHECK_MSG(err / scale <= 1e-6, "%s: latent max abs err %.3g (max |x| %.3g)", name, err, scale);
        CHECK_MSG(px <= 1, "%s: image differs by %d/255", name, px);
        *worst_rel = fmax(*worst_rel, err / scale);
        *worst_px = px > *worst_px ? px : *worst_px;
        free(want);
        sd_image_free(&ref);
        sd_result_free(&r);
    }
    free(cap.latent);
    for (int i = 0; i < n; i++) sd_image_free(&img[i]);
}

TEST(controlnet_matches_diffusers) {
    cJSON *root = cases_json();
    REQUIRE(root);
    sd_image init;
    REQUIRE(sd_image_load(test_path("golden/pipeline/init.png"), 3, &init) == SD_OK);
    sd_ctx *models[2] = {test_load_model(test_path("golden/pipeline/sd1")), test_load_model(test_path("golden/pipeline/sdxl"))};
    double worst = 0;
    int worst_px = 0, ncases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        compare_case(models[strcmp(cJSON_GetObjectItem(c, "model")->valuestring, "sd1") ? 1 : 0], c, &init, &worst, &worst_px);
        ncases++;
    }
    test_note("%d cases: latent max err %.3g relative to the latent scale, image max diff %d/255", ncases, worst, worst_px);
    CHECK(ncases == 10);
    sd_free(models[0]);
    sd_free(models[1]);
    sd_image_free(&init);
    cJSON_Delete(root);
}
