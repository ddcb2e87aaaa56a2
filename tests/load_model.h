/* load_model.h — loads a model (diffusers folder or single file) with the default load settings, or fails the
 * test with the loader's own message. */
#ifndef TESTS_LOAD_MODEL_H
#define TESTS_LOAD_MODEL_H

#include "test.h"
#include "../sd.h"

static inline sd_ctx *test_load_model(const char *path) {
    sd_load_params lp;
    sd_load_params_init(&lp);
    lp.model_path = path;
    sd_ctx *ctx = NULL;
    REQUIRE_MSG(sd_load(&lp, &ctx) == SD_OK, "%s: %s", path, sd_last_error());
    return ctx;
}

#endif
