/* a1111_info.c — the AUTOMATIC1111 routes that do not generate: progress (with the current preview), interrupt,
 * samplers, schedulers, sd-models, loras, options (switching sd_model_checkpoint among --models-dir), scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "a1111.h"
#include "a1111_names.h"
#include "b64.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- models and LoRAs by name ---- */

int a1111_find_model(srv *s, const char *name, model_entry *out, jfield_err *e, unsigned *status) {
    *status = 422;
    const char *field = "sd_model_checkpoint";
    if (models_name_is_path(name)) return jfield_fail(e, field, "\"%.80s\" is a path: name a model of /sdapi/v1/sd-models", name);
    model_list l;
    char err[512];
    if (models_scan(s->o.models_dir, s->o.load.model_path, &l, err, sizeof err) != 0) {
        *status = 500;
        return jfield_fail(e, field, "%s", err);
    }
    int i = models_find(&l, name);
    if (i < 0) {
        char names[300] = "";
        for (int k = 0; k < l.n && strlen(names) < 200; k++) snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "", l.e[k].file);
        models_free(&l);
        return jfield_fail(e, field, "no model \"%.80s\" (have: %s)", name, names);
    }
    *out = l.e[i];
    models_free(&l);
    return 0;
}

int a1111_check_loras(srv *s, const char *field, const char *prompt, jfield_err *e) {
    for (const char *p = strstr(prompt, "<lora:"); p; p = strstr(p + 1, "<lora:")) {
        const char *n = p + 6, *end = n + strcspn(n, ":>");
        char name[300];
        snprintf(name, sizeof name, "%.*s", (int)(end - n) < 299 ? (int)(end - n) : 299, n);
        if (models_name_is_path(name)) return jfield_fail(e, field, "<lora:%.80s>: a LoRA is named, not given as a path", name);
        if (!s->o.lora_dir) return jfield_fail(e, field, "<lora:%.80s>: this server has no --lora-model-dir", name);
        char **names;
        int count, found = 0;
        char err[512];
        if (models_scan_loras(s->o.lora_dir, &names, &count, err, sizeof err) != 0) return jfield_fail(e, field, "%s", err);
        for (int i = 0; i < count && !found; i++) found = !strcmp(names[i], name);
        models_free_names(names, count);
        if (!found) return jfield_fail(e, field, "<lora:%.80s>: no such LoRA (see /sdapi/v1/loras)", name);
    }
    return 0;
}

/* ---- progress and interrupt ---- */

static int query_bool(req *r, const char *key, int def, int *out) {
    const char *v = http_query(r, key);
    if (!v) { *out = def; return 0; }
    if (!strcasecmp(v, "true") || !strcmp(v, "1")) { *out = 1; return 0; }
    if (!strcasecmp(v, "false") || !strcmp(v, "0")) { *out = 0; return 0; }
    return -1;
}

enum MHD_Result a1111_progress(req *r) {
    srv *s = r->s;
    int skip;
    if (query_bool(r, "skip_current_image", 0, &skip) != 0)
        return http_error(r, 422, "skip_current_image", "skip_current_image: must be true or false");
    const char *task = http_query(r, "id_task");
    pthread_mutex_lock(&s->mu);
    progress p = s->prog;
    sd_image pv = {0};
    if (!skip && p.active && p.preview.data) {
        pv = p.preview;
        pv.data = malloc((size_t)pv.w * pv.h * pv.c);
        if (pv.data) memcpy(pv.data, p.preview.data, (size_t)pv.w * pv.h * pv.c);
    }
    p.preview.data = NULL;
    int pending = s->qn, position = -1;
    for (int i = 0; task && i < s->qn && position < 0; i++)
        if (!strcmp(s->q[i]->task_id, task)) position = i;
    pthread_mutex_unlock(&s->mu);

    cJSON *o = cJSON_CreateObject();
    double progress = 0, eta = 0;
    if (p.active && p.job_count > 0) {
        /* A1111's formula: the calls done, the steps of this one, and 0.01 so that the ETA is finite at once */
        progress = 0.01 + (double)p.job_no / p.job_count + (p.steps ? (double)p.step / p.steps / p.job_count : 0);
        double elapsed = now_s() - p.t_start;
        eta = elapsed / progress - elapsed;
        if (progress > 1) progress = 1;
    }
    cJSON_AddNumberToObject(o, "progress", progress);
    cJSON_AddNumberToObject(o, "eta_relative", eta);
    cJSON *st = cJSON_AddObjectToObject(o, "state");
    cJSON_AddBoolToObject(st, "skipped", 0);
    cJSON_AddBoolToObject(st, "interrupted", p.interrupted);
    cJSON_AddBoolToObject(st, "stopping_generation", 0);
    char job[80] = "";
    if (p.active) snprintf(job, sizeof job, "%s", p.task_id[0] ? p.task_id : "job");
    cJSON_AddStringToObject(st, "job", job);
    cJSON_AddNumberToObject(st, "job_count", p.active ? p.job_count : 0);
    cJSON_AddStringToObject(st, "job_timestamp", p.timestamp[0] ? p.timestamp : "0");
    cJSON_AddNumberToObject(st, "job_no", p.job_no);
    cJSON_AddNumberToObject(st, "sampling_step", p.step);
    cJSON_AddNumberToObject(st, "sampling_steps", p.steps);
    char *b = pv.data ? b64_png(&pv, NULL, NULL) : NULL;
    free(pv.data);
    if (b) cJSON_AddStringToObject(o, "current_image", b);
    else cJSON_AddNullToObject(o, "current_image");
    free(b);
    cJSON_AddNullToObject(o, "textinfo");
    if (p.active && p.task_id[0]) cJSON_AddStringToObject(o, "current_task", p.task_id);
    else cJSON_AddNullToObject(o, "current_task");
    /* not in A1111: the queue, and where the task id_task waits in it */
    cJSON *q = cJSON_AddObjectToObject(o, "queue");
    cJSON_AddNumberToObject(q, "pending", pending);
    if (position >= 0) cJSON_AddNumberToObject(q, "position", position);
    else cJSON_AddNullToObject(q, "position");
    return http_json(r, 200, o);
}

enum MHD_Result a1111_interrupt(req *r) {
    pthread_mutex_lock(&r->s->mu);
    if (r->s->running) {
        r->s->interrupt = 1;
        r->s->prog.interrupted = 1; /* A1111's state.interrupt() sets it at once, not when the job ends */
    }
    pthread_mutex_unlock(&r->s->mu);
    return http_json(r, 200, cJSON_CreateObject());
}

/* ---- lists ---- */

enum MHD_Result a1111_samplers(req *r) { return http_json(r, 200, a1111_samplers_json()); }
enum MHD_Result a1111_schedulers(req *r) { return http_json(r, 200, a1111_schedulers_json()); }

enum MHD_Result a1111_sd_models(req *r) {
    srv *s = r->s;
    model_list l;
    char err[512];
    if (models_scan(s->o.models_dir, s->o.load.model_path, &l, err, sizeof err) != 0) return http_error(r, 500, NULL, "%s", err);
    pthread_mutex_lock(&s->mu);
    model_entry loaded = s->loaded;
    char hash[16], sampler[32];
    snprintf(hash, sizeof hash, "%s", s->loaded_hash);
    snprintf(sampler, sizeof sampler, "%s", s->loaded_sampler);
    int w = s->loaded_w, h = s->loaded_h, steps = s->loaded_steps;
    double cfg = s->loaded_cfg;
    pthread_mutex_unlock(&s->mu);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < l.n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "title", l.e[i].file);
        cJSON_AddStringToObject(m, "model_name", l.e[i].name);
        int is_loaded = loaded.name[0] && !strcmp(loaded.path, l.e[i].path) && !strcmp(loaded.name, l.e[i].name);
        if (is_loaded && hash[0]) cJSON_AddStringToObject(m, "hash", hash);
        else cJSON_AddNullToObject(m, "hash");
        cJSON_AddNullToObject(m, "sha256");
        cJSON_AddStringToObject(m, "filename", l.e[i].path[0] ? l.e[i].path : "(bundled demo model)");
        cJSON_AddNullToObject(m, "config");
        if (is_loaded) { /* not in A1111: the defaults of the model in memory (the web page starts from them) */
            cJSON_AddNumberToObject(m, "default_width", w);
            cJSON_AddNumberToObject(m, "default_height", h);
            cJSON_AddNumberToObject(m, "default_steps", steps);
            cJSON_AddNumberToObject(m, "default_cfg", cfg);
            cJSON_AddStringToObject(m, "default_sampler", sampler);
        }
        cJSON_AddItemToArray(arr, m);
    }
    models_free(&l);
    return http_json(r, 200, arr);
}

enum MHD_Result a1111_loras(req *r) {
    cJSON *arr = cJSON_CreateArray();
    const char *dir = r->s->o.lora_dir;
    if (dir) {
        char **names, err[512];
        int n;
        if (models_scan_loras(dir, &names, &n, err, sizeof err) != 0) {
            cJSON_Delete(arr);
            return http_error(r, 500, NULL, "%s", err);
        }
        for (int i = 0; i < n; i++) {
            cJSON *m = cJSON_CreateObject();
            char path[4400];
            snprintf(path, sizeof path, "%s/%s.safetensors", dir, names[i]);
            cJSON_AddStringToObject(m, "name", names[i]);
            cJSON_AddStringToObject(m, "alias", names[i]);
            cJSON_AddStringToObject(m, "path", path);
            cJSON_AddObjectToObject(m, "metadata");
            cJSON_AddItemToArray(arr, m);
        }
        models_free_names(names, n);
    }
    return http_json(r, 200, arr);
}

enum MHD_Result a1111_scripts(req *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddArrayToObject(o, "txt2img");
    cJSON_AddArrayToObject(o, "img2img");
    return http_json(r, 200, o);
}

enum MHD_Result a1111_refresh(req *r) { return http_json(r, 200, cJSON_CreateNull()); } /* folders are read on each request */

/* ---- options ---- */

enum MHD_Result a1111_options_get(req *r) {
    srv *s = r->s;
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&s->mu);
    cJSON_AddStringToObject(o, "sd_model_checkpoint", s->def_model.file);
    int loaded = s->loaded.name[0] && !strcmp(s->loaded.path, s->def_model.path) && s->loaded_hash[0];
    if (loaded) cJSON_AddStringToObject(o, "sd_checkpoint_hash", s->loaded_hash);
    else cJSON_AddNullToObject(o, "sd_checkpoint_hash");
    cJSON_AddNumberToObject(o, "CLIP_stop_at_last_layers", s->opt_clip_skip);
    cJSON_AddNumberToObject(o, "eta_ddim", s->opt_eta_ddim);
    cJSON_AddNumberToObject(o, "eta_ancestral", s->opt_eta_ancestral);
    cJSON_AddStringToObject(o, "randn_source", s->opt_rng_cpu ? "CPU" : "GPU");
    pthread_mutex_unlock(&s->mu);
    cJSON_AddStringToObject(o, "samples_format", "png");
    return http_json(r, 200, o);
}

static enum MHD_Result options_loaded(req *r) {
    job *j = r->job;
    if (j->status) return http_error(r, 500, "sd_model_checkpoint", "sd_model_checkpoint: cannot load %s: %s", j->model.file, j->error);
    return http_json(r, 200, cJSON_CreateNull());
}

int a1111_options_parse(srv *s, const cJSON *b, a1111_options *out, jfield_err *e, unsigned *status) {
    memset(out, 0, sizeof *out);
    out->eta_ddim = out->eta_ancestral = -1;
    *status = 422;
    const char *fmt;
    for (const cJSON *it = b->child; it; it = it->next) {
        const char *k = it->string;
        int bad = 0;
        if (!strcmp(k, "sd_model_checkpoint")) bad = jfield_str(b, k, 255, NULL, &out->checkpoint, e) || (out->checkpoint && a1111_find_model(s, out->checkpoint, &out->model, e, status));
        else if (!strcmp(k, "CLIP_stop_at_last_layers")) bad = jfield_int(b, k, 1, 12, 0, &out->clip_skip, e);
        else if (!strcmp(k, "eta_ddim")) bad = jfield_num(b, k, 0, 1, -1, &out->eta_ddim, e);
        else if (!strcmp(k, "eta_ancestral")) bad = jfield_num(b, k, 0, 1, -1, &out->eta_ancestral, e);
        else if (!strcmp(k, "randn_source")) bad = jfield_str(b, k, 8, NULL, &out->rng, e) || (out->rng && strcmp(out->rng, "GPU") && strcmp(out->rng, "CPU") && jfield_fail(e, k, "must be \"GPU\" or \"CPU\""));
        else if (!strcmp(k, "samples_format")) bad = jfield_str(b, k, 8, NULL, &fmt, e) || (fmt && strcmp(fmt, "png") && jfield_fail(e, k, "only \"png\" is made here"));
        else if (!strcmp(k, "sd_checkpoint_hash")) bad = jfield_fail(e, k, "is read-only: it follows sd_model_checkpoint");
        else bad = jfield_fail(e, k, "not an option this server has (see GET /sdapi/v1/options)");
        if (bad) return -1;
    }
    return 0;
}

enum MHD_Result a1111_options_post(req *r) {
    srv *s = r->s;
    cJSON *b = http_body_object(r);
    if (!b) return MHD_YES;
    jfield_err e = {{0}, {0}};
    a1111_options p;
    unsigned status;
    if (a1111_options_parse(s, b, &p, &e, &status) != 0) return http_error(r, status, e.field, "%s", e.msg);
    pthread_mutex_lock(&s->mu);
    if (p.clip_skip) s->opt_clip_skip = (int)p.clip_skip;
    if (p.eta_ddim >= 0) s->opt_eta_ddim = p.eta_ddim;
    if (p.eta_ancestral >= 0) s->opt_eta_ancestral = p.eta_ancestral;
    if (p.rng) s->opt_rng_cpu = !strcmp(p.rng, "CPU");
    int switching = p.checkpoint && (strcmp(p.model.path, s->def_model.path) || strcmp(p.model.name, s->def_model.name));
    pthread_mutex_unlock(&s->mu);
    if (!switching) return http_json(r, 200, cJSON_CreateNull());
    /* A1111 answers once the new model is loaded: a load job in the queue, in turn */
    job *j = job_new(JOB_LOAD);
    if (!j) return http_error(r, 500, NULL, "out of memory");
    j->model = p.model;
    return http_submit(r, j, options_loaded);
}
