/* a1111_resp.c — the answer to txt2img/img2img once the job is done: {"images": [base64 PNG ...], "parameters":
 * {...}, "info": "<JSON text>"} as AUTOMATIC1111 returns it; each PNG carries the library's infotext. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a1111.h"
#include "b64.h"

void a1111_data_free(void *p) {
    a1111_data *d = p;
    if (!d) return;
    cJSON_Delete(d->params);
    free(d);
}

/* Library messages start with the parameter they are about ("size 7x9: ...", "scheduler karras does not ..."). */
static const char *field_of(const char *msg) {
    static const struct { const char *prefix, *field; } MAP[] = {
        {"size", "width"}, {"steps", "steps"}, {"scheduler", "scheduler"}, {"sampler", "sampler_name"},
        {"cfg", "cfg_scale"}, {"strength", "denoising_strength"}, {"mask", "mask"}, {"init image", "init_images"},
        {"negative prompt", "negative_prompt"}, {"prompt", "prompt"}, {"clip skip", "CLIP_stop_at_last_layers"},
        {"eta", "eta"}, {"variation", "subseed_strength"}, {"lcm", "sampler_name"}, {"ddim", "sampler_name"},
    };
    for (size_t i = 0; i < sizeof MAP / sizeof *MAP; i++)
        if (!strncasecmp(msg, MAP[i].prefix, strlen(MAP[i].prefix))) return MAP[i].field;
    return NULL;
}

unsigned a1111_job_status(const job *j, const char **field) {
    *field = NULL;
    switch (j->status) {
    case SD_ERR_ARG:
    case SD_ERR_UNSUPPORTED: *field = field_of(j->error); return 422;
    case SD_ERR_CANCELLED: return 503; /* shutting down, or a client that is gone anyway */
    default: return 500;               /* a model that does not load, the backend, memory */
    }
}

static cJSON *info_json(req *r, const job *j, const a1111_data *d) {
    cJSON *info = cJSON_CreateObject(), *first = NULL;
    if (j->count && j->json[0]) first = cJSON_Parse(j->json[0]); /* the library's resolved settings */
    const cJSON *v;
#define STR_OF(k, dflt) ((v = cJSON_GetObjectItemCaseSensitive(first, k)) && cJSON_IsString(v) ? v->valuestring : (dflt))
#define NUM_OF(k, dflt) ((v = cJSON_GetObjectItemCaseSensitive(first, k)) && cJSON_IsNumber(v) ? v->valuedouble : (dflt))
    cJSON_AddStringToObject(info, "prompt", j->prompt);
    cJSON *ap = cJSON_AddArrayToObject(info, "all_prompts"), *an = NULL;
    cJSON_AddStringToObject(info, "negative_prompt", j->negative);
    an = cJSON_AddArrayToObject(info, "all_negative_prompts");
    cJSON_AddNumberToObject(info, "seed", (double)d->seed);
    cJSON *as = cJSON_AddArrayToObject(info, "all_seeds");
    cJSON_AddNumberToObject(info, "subseed", (double)d->subseed);
    cJSON *asub = cJSON_AddArrayToObject(info, "all_subseeds");
    cJSON_AddNumberToObject(info, "subseed_strength", d->subseed_strength);
    for (int i = 0; i < j->count; i++) {
        cJSON_AddItemToArray(ap, cJSON_CreateString(j->prompt));
        cJSON_AddItemToArray(an, cJSON_CreateString(j->negative));
        cJSON_AddItemToArray(as, cJSON_CreateNumber((double)j->seeds[i]));
        cJSON_AddItemToArray(asub, cJSON_CreateNumber((double)(d->subseed + (uint64_t)i)));
    }
    cJSON_AddNumberToObject(info, "width", NUM_OF("width", j->gp.width));
    cJSON_AddNumberToObject(info, "height", NUM_OF("height", j->gp.height));
    const char *sampler = STR_OF("sampler", j->gp.sampler), *a = sd_sampler_a1111(sampler);
    cJSON_AddStringToObject(info, "sampler_name", a ? a : sampler);
    const char *sched = STR_OF("scheduler", "discrete"), *as_ = sd_scheduler_a1111(sched);
    cJSON_AddStringToObject(info, "scheduler", as_ ? as_ : sched);
    cJSON_AddNumberToObject(info, "cfg_scale", NUM_OF("cfg_scale", j->gp.cfg_scale));
    cJSON_AddNumberToObject(info, "steps", NUM_OF("steps", j->gp.steps));
    cJSON_AddNumberToObject(info, "batch_size", j->gp.batch_count);
    cJSON_AddBoolToObject(info, "restore_faces", 0);
    cJSON_AddNullToObject(info, "face_restoration_model");
    cJSON_AddStringToObject(info, "sd_model_name", j->model_name);
    if (j->model_hash[0]) cJSON_AddStringToObject(info, "sd_model_hash", j->model_hash);
    else cJSON_AddNullToObject(info, "sd_model_hash");
    cJSON_AddNullToObject(info, "sd_vae_name");
    cJSON_AddNullToObject(info, "sd_vae_hash");
    cJSON_AddNumberToObject(info, "seed_resize_from_w", -1);
    cJSON_AddNumberToObject(info, "seed_resize_from_h", -1);
    if (d->img2img) cJSON_AddNumberToObject(info, "denoising_strength", d->denoising);
    else cJSON_AddNullToObject(info, "denoising_strength");
    cJSON_AddObjectToObject(info, "extra_generation_params");
    cJSON_AddNumberToObject(info, "index_of_first_image", 0);
    cJSON *it = cJSON_AddArrayToObject(info, "infotexts");
    for (int i = 0; i < j->count; i++) cJSON_AddItemToArray(it, cJSON_CreateString(j->infotext[i] ? j->infotext[i] : ""));
    cJSON_AddArrayToObject(info, "styles");
    char ts[20];
    pthread_mutex_lock(&r->s->mu);
    snprintf(ts, sizeof ts, "%s", r->s->prog.timestamp);
    pthread_mutex_unlock(&r->s->mu);
    cJSON_AddStringToObject(info, "job_timestamp", ts);
    cJSON_AddNumberToObject(info, "clip_skip", j->gp.clip_skip > 1 ? j->gp.clip_skip : 1);
    cJSON_AddBoolToObject(info, "is_using_inpainting_conditioning", 0);
    cJSON_AddStringToObject(info, "version", "sd " SD_VERSION);
    /* not in A1111: whether /interrupt or a shutdown stopped it early, and the seconds the library spent generating */
    cJSON_AddBoolToObject(info, "interrupted", j->interrupted);
    cJSON_AddNumberToObject(info, "generation_seconds", j->t_generate);
#undef STR_OF
#undef NUM_OF
    cJSON_Delete(first);
    return info;
}

enum MHD_Result a1111_finish_generate(req *r) {
    job *j = r->job;
    a1111_data *d = r->data;
    if (j->status) {
        const char *field;
        unsigned st = a1111_job_status(j, &field);
        if (st == 503) return http_busy(r, 30, j->error);
        return http_error(r, st, field, "%s", j->error);
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *imgs = cJSON_AddArrayToObject(out, "images");
    for (int i = 0; d->send_images && i < j->count; i++) {
        char *b = b64_png(&j->images[i], j->infotext[i], j->json[i]);
        cJSON *s = b ? cJSON_CreateString(b) : NULL;
        free(b);
        if (!s) {
            cJSON_Delete(out);
            return http_error(r, 500, NULL, "cannot encode the image: %s", sd_last_error());
        }
        cJSON_AddItemToArray(imgs, s);
    }
    cJSON *params = d->params;
    d->params = NULL;
    if (d->img2img) { /* A1111 leaves the uploads out of the echo unless include_init_images */
        const cJSON *inc = cJSON_GetObjectItemCaseSensitive(params, "include_init_images");
        if (!cJSON_IsTrue(inc)) {
            cJSON_ReplaceItemInObjectCaseSensitive(params, "init_images", cJSON_CreateNull());
            cJSON_ReplaceItemInObjectCaseSensitive(params, "mask", cJSON_CreateNull());
        }
    }
    cJSON_AddItemToObject(out, "parameters", params);
    cJSON *info = info_json(r, j, d);
    char *text = info ? cJSON_PrintUnformatted(info) : NULL;
    cJSON_Delete(info);
    cJSON_AddStringToObject(out, "info", text ? text : "{}");
    free(text);
    return http_json(r, 200, out);
}
