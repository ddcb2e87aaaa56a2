/* openai.c — OpenAI's Images API: POST /v1/images/generations ({prompt, model, n, size, response_format}) answered
 * {"created", "data": [{"b64_json"}]}, and GET /v1/models. `model` names a model of --models-dir. The settings
 * OpenAI has no field for come from the model's defaults, as with `sd -p PROMPT` on the command line; a client may
 * send seed, negative_prompt, steps, cfg_scale, sampler and scheduler too (the openai client's extra_body). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "a1111.h"
#include "b64.h"
#include "jfield.h"

/* OpenAI's own fields this route accepts and leaves without effect (the picture is what the model makes) */
static const char *const IGNORED[] = {"quality", "style", "user", "background", "moderation"};

int openai_parse(srv *s, const cJSON *b, job *j, jfield_err *e, unsigned *status) {
    const server_opts *o = &s->o;
    *status = 400;
    for (const cJSON *it = b->child; it; it = it->next) {
        static const char *const KNOWN[] = {"prompt", "model", "n", "size", "response_format", "output_format", "seed",
                                            "negative_prompt", "steps", "cfg_scale", "sampler", "scheduler"};
        int known = 0;
        for (size_t k = 0; k < sizeof KNOWN / sizeof *KNOWN && !known; k++) known = !strcmp(KNOWN[k], it->string);
        for (size_t k = 0; k < sizeof IGNORED / sizeof *IGNORED && !known; k++)
            known = !strcmp(IGNORED[k], it->string) && (cJSON_IsString(it) || cJSON_IsNull(it));
        if (!known) return jfield_fail(e, it->string, "Unrecognized request argument supplied: %.80s", it->string);
    }
    const char *prompt, *model, *size, *fmt, *ofmt, *neg, *sampler, *sched;
    long long n, seed, steps;
    double cfg;
    if (!jfield_get(b, "prompt")) return jfield_fail(e, "prompt", "is required");
    if (jfield_str(b, "prompt", SD_PROMPT_MAX_BYTES, "", &prompt, e) || jfield_str(b, "model", 255, NULL, &model, e) ||
        jfield_int(b, "n", 1, o->max_images, 1, &n, e) || jfield_str(b, "size", 32, "auto", &size, e) ||
        jfield_str(b, "response_format", 16, "b64_json", &fmt, e) || jfield_str(b, "output_format", 16, "png", &ofmt, e) ||
        jfield_int(b, "seed", -1, 1ll << 53, -1, &seed, e) || jfield_str(b, "negative_prompt", SD_PROMPT_MAX_BYTES, "", &neg, e) ||
        jfield_int(b, "steps", 0, o->max_steps, 0, &steps, e) || jfield_num(b, "cfg_scale", -1, 100, -1, &cfg, e) ||
        jfield_str(b, "sampler", 32, NULL, &sampler, e) || jfield_str(b, "scheduler", 32, NULL, &sched, e))
        return -1;
    if (strcmp(fmt, "b64_json")) return jfield_fail(e, "response_format", "\"%.20s\": only b64_json is served (this server keeps no image URLs)", fmt);
    if (strcmp(ofmt, "png")) return jfield_fail(e, "output_format", "\"%.20s\": only png is made", ofmt);
    if (strcmp(size, "auto")) {
        int w, h, used = 0;
        if (sscanf(size, "%5dx%5d%n", &w, &h, &used) != 2 || size[used] || w < 8 || h < 8 || w > o->max_side || h > o->max_side)
            return jfield_fail(e, "size", "\"%.32s\" is not WIDTHxHEIGHT with sides from 8 to %d (or auto)", size, o->max_side);
        if (w % 8 || h % 8) return jfield_fail(e, "size", "\"%.32s\": width and height must be multiples of 8", size);
        j->gp.width = w;
        j->gp.height = h;
    }
    pthread_mutex_lock(&s->mu);
    j->model = s->def_model;
    pthread_mutex_unlock(&s->mu);
    if (model) {
        unsigned st;
        if (a1111_find_model(s, model, &j->model, e, &st) != 0) {
            *status = st == 422 ? 400 : st;
            return jfield_fail(e, "model", "%s", strchr(e->msg, ':') + 2);
        }
    }
    if (a1111_check_loras(s, "prompt", prompt, e) || a1111_check_loras(s, "negative_prompt", neg, e)) return -1;
    j->prompt = strdup(prompt);
    j->negative = strdup(neg);
    if (!j->prompt || !j->negative) return jfield_fail(e, "prompt", "out of memory");
    j->gp.prompt = j->prompt;
    j->gp.negative_prompt = j->negative[0] ? j->negative : NULL;
    j->gp.lora_dir = s->o.lora_dir; /* the prompt's <lora:NAME:W> tags, checked above (a1111_check_loras) */
    j->gp.batch_count = (int)n;
    j->gp.steps = (int)steps;
    j->gp.cfg_scale = (float)cfg;
    j->gp.sampler = sampler;
    j->gp.scheduler = sched;
    if (seed >= 0) j->gp.seed = (uint64_t)seed;
    else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        j->gp.seed = ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20)) % 4294967296ull;
    }
    return 0;
}

static enum MHD_Result finish(req *r) {
    job *j = r->job;
    if (j->status) {
        const char *field;
        unsigned st = a1111_job_status(j, &field);
        if (st == 503) return http_busy(r, 30, j->error);
        if (field && (!strcmp(field, "width") || !strcmp(field, "height"))) field = "size"; /* OpenAI's one field */
        if (field && !strcmp(field, "sampler_name")) field = "sampler";
        return http_error(r, st == 422 ? 400 : st, field, "%s", j->error);
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "created", (double)time(NULL));
    cJSON *data = cJSON_AddArrayToObject(out, "data");
    for (int i = 0; i < j->count; i++) {
        char *b = b64_png(&j->images[i], j->infotext[i], j->json[i]);
        cJSON *item = b ? cJSON_CreateObject() : NULL;
        if (item) cJSON_AddStringToObject(item, "b64_json", b);
        free(b);
        if (!item) {
            cJSON_Delete(out);
            return http_error(r, 500, NULL, "cannot encode the image: %s", sd_last_error());
        }
        cJSON_AddItemToArray(data, item);
    }
    return http_json(r, 200, out);
}

enum MHD_Result openai_images(req *r) {
    cJSON *b = http_body_object(r);
    if (!b) return MHD_YES;
    job *j = job_new(JOB_GENERATE);
    if (!j) return http_error(r, 500, NULL, "out of memory");
    jfield_err e = {{0}, {0}};
    unsigned status;
    if (openai_parse(r->s, b, j, &e, &status) != 0) {
        job_release(r->s, j);
        return http_error(r, status, e.field, "%s", e.msg);
    }
    return http_submit(r, j, finish);
}

enum MHD_Result openai_models(req *r) {
    model_list l;
    char err[512];
    if (models_scan(r->s->o.models_dir, r->s->o.load.model_path, &l, err, sizeof err) != 0) return http_error(r, 500, NULL, "%s", err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    for (int i = 0; i < l.n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", l.e[i].name);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", "sd");
        cJSON_AddItemToArray(data, m);
    }
    models_free(&l);
    return http_json(r, 200, o);
}
