/* pipeline_case.h — the generation settings of one case of tests/golden/pipeline/cases.json (written by
 * tools/goldens_pipeline.py), as sd_gen_params. Strings point into the cJSON tree. */
#ifndef TESTS_PIPELINE_CASE_H
#define TESTS_PIPELINE_CASE_H

#include <cjson/cJSON.h>
#include <string.h>

#include "../sd.h"

/* Fills p (prompt, negative, sampler, steps, cfg, seed, size, CPU generator as diffusers used); for an img2img
 * case also the strength, and returns 1: the caller then sets p->init_image to golden/pipeline/init.png. */
static inline int pipeline_case_params(const cJSON *c, sd_gen_params *p) {
    sd_gen_params_init(p);
    p->prompt = cJSON_GetObjectItem(c, "prompt")->valuestring;
    const cJSON *neg = cJSON_GetObjectItem(c, "negative_prompt");
    p->negative_prompt = cJSON_IsString(neg) ? neg->valuestring : NULL;
    p->sampler = cJSON_GetObjectItem(c, "sampler")->valuestring;
    p->steps = cJSON_GetObjectItem(c, "steps")->valueint;
    p->cfg_scale = (float)cJSON_GetObjectItem(c, "cfg")->valuedouble;
    p->seed = (uint64_t)cJSON_GetObjectItem(c, "seed")->valuedouble;
    p->width = cJSON_GetObjectItem(c, "width")->valueint;
    p->height = cJSON_GetObjectItem(c, "height")->valueint;
    p->rng = "cpu"; /* diffusers with a CPU torch.Generator */
    if (strcmp(cJSON_GetObjectItem(c, "mode")->valuestring, "img2img")) return 0;
    p->strength = (float)cJSON_GetObjectItem(c, "strength")->valuedouble;
    return 1;
}

#endif
