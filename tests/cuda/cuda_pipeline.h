/* cuda_pipeline.h — one golden pipeline case (tests/golden/pipeline/cases.json) generated through sd_load /
 * sd_generate on a chosen backend, for the CUDA model tests. */
#ifndef TESTS_CUDA_CUDA_PIPELINE_H
#define TESTS_CUDA_CUDA_PIPELINE_H

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "../latent_capture.h"
#include "../pipeline_case.h"
#include "../../core/error.h"
#include "../../core/fileio.h"
#include "../../sd.h"

/* Runs golden pipeline case `name` (tests/golden/pipeline/cases.json) on one backend; returns the image and
 * the final latent. */
static inline void generate(const char *name, sd_backend_kind kind, sd_image *img, latent_capture *cap) {
    char *txt;
    REQUIRE(file_read(test_path("golden/pipeline/cases.json"), 1 << 20, &txt, NULL) == SD_OK);
    cJSON *root = cJSON_Parse(txt), *c = NULL, *it;
    free(txt);
    REQUIRE(root);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "cases"))
        if (!strcmp(cJSON_GetObjectItem(it, "name")->valuestring, name)) c = it;
    REQUIRE_MSG(c, "no case %s", name);
    char folder[64];
    snprintf(folder, sizeof folder, "golden/pipeline/%s", cJSON_GetObjectItem(c, "model")->valuestring);
    sd_load_params lp;
    sd_load_params_init(&lp);
    lp.model_path = test_path(folder);
    lp.backend = kind;
    sd_ctx *ctx;
    REQUIRE_MSG(sd_load(&lp, &ctx) == SD_OK, "%s", sd_last_error());
    CHECK(!strcmp(sd_model(ctx)->backend, kind == SD_BACKEND_CUDA ? "cuda" : "cpu"));
    sd_gen_params p;
    sd_image init = {0};
    if (pipeline_case_params(c, &p)) {
        REQUIRE(sd_image_load(test_path("golden/pipeline/init.png"), 3, &init) == SD_OK);
        p.init_image = &init;
    }
    memset(cap, 0, sizeof *cap);
    sd_result r;
    REQUIRE_MSG(sd_generate(ctx, &p, latent_capture_fn, cap, &r) == SD_OK, "%s", sd_last_error());
    REQUIRE(cap->latent);
    *img = r.images[0];
    r.images[0].data = NULL; /* kept by the caller */
    sd_result_free(&r);
    sd_image_free(&init);
    sd_free(ctx);
    cJSON_Delete(root);
}

#endif
