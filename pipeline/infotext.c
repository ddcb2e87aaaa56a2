/* infotext.c — AUTOMATIC1111-compatible "parameters" text, our JSON settings, and reading both back. */
#include "infotext.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/image.h"

static const struct { const char *ours, *a1111; } k_names[] = {
    {"euler_a", "Euler a"}, {"euler", "Euler"}, {"heun", "Heun"}, {"dpm2", "DPM2"}, {"dpm2_a", "DPM2 a"},
    {"dpm++2s_a", "DPM++ 2S a"}, {"dpm++2m", "DPM++ 2M"}, {"dpm++2m_sde", "DPM++ 2M SDE"}, {"lms", "LMS"},
    {"ddim", "DDIM"}, {"pndm", "PLMS"}, {"plms", "PLMS"}, {"ddpm", "DDPM"}, {"unipc", "UniPC"}, {"lcm", "LCM"},
};

const char *infotext_sampler_to_a1111(const char *ours) {
    for (size_t i = 0; i < sizeof k_names / sizeof *k_names; i++)
        if (!strcmp(k_names[i].ours, ours)) return k_names[i].a1111;
    return NULL;
}

const char *infotext_sampler_from_a1111(const char *a) {
    for (size_t i = 0; i < sizeof k_names / sizeof *k_names; i++)
        if (!strcmp(k_names[i].a1111, a)) return k_names[i].ours;
    return NULL;
}

/* Growable string. */
typedef struct { char *s; size_t n, cap; } sbuf;
static void sb_add(sbuf *b, const char *t, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, t, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void sb_str(sbuf *b, const char *t) { sb_add(b, t, strlen(t)); }

/* A1111 quotes a value as JSON when it contains ',', ':' or a newline. */
static void sb_kv(sbuf *b, const char *key, const char *val) {
    if (b->n && b->s[b->n - 1] != '\n') sb_str(b, ", ");
    sb_str(b, key);
    sb_str(b, ": ");
    if (strpbrk(val, ",:\n")) {
        cJSON *j = cJSON_CreateString(val);
        char *q = cJSON_PrintUnformatted(j);
        sb_str(b, q);
        free(q);
        cJSON_Delete(j);
    } else {
        sb_str(b, val);
    }
}

static const char *schedule_a1111(const char *s) {
    if (!strcmp(s, "discrete")) return "Automatic";
    if (!strcmp(s, "karras")) return "Karras";
    if (!strcmp(s, "exponential")) return "Exponential";
    if (!strcmp(s, "sgm_uniform")) return "SGM Uniform";
    if (!strcmp(s, "beta")) return "Beta";
    return s;
}

char *infotext_a1111(const sd_gen_params *p, const infotext_ctx *c, uint64_t seed) {
    sbuf b = {0};
    char v[128];
    sb_str(&b, p->prompt ? p->prompt : "");
    sb_str(&b, "\n");
    if (p->negative_prompt && *p->negative_prompt) {
        sb_str(&b, "Negative prompt: ");
        sb_str(&b, p->negative_prompt);
        sb_str(&b, "\n");
    }
    snprintf(v, sizeof v, "%d", c->steps);
    sb_kv(&b, "Steps", v);
    const char *an = infotext_sampler_to_a1111(c->sampler);
    sb_kv(&b, "Sampler", an ? an : c->sampler);
    sb_kv(&b, "Schedule type", schedule_a1111(c->scheduler));
    snprintf(v, sizeof v, "%g", c->cfg_scale);
    sb_kv(&b, "CFG scale", v);
    snprintf(v, sizeof v, "%" PRIu64, seed);
    sb_kv(&b, "Seed", v);
    snprintf(v, sizeof v, "%dx%d", c->width, c->height);
    sb_kv(&b, "Size", v);
    if (c->model_hash) sb_kv(&b, "Model hash", c->model_hash);
    if (c->model_name) sb_kv(&b, "Model", c->model_name);
    if (p->variation_strength > 0) {
        snprintf(v, sizeof v, "%" PRIu64, p->variation_seed);
        sb_kv(&b, "Variation seed", v);
        snprintf(v, sizeof v, "%g", p->variation_strength);
        sb_kv(&b, "Variation seed strength", v);
    }
    if (p->init_image) {
        snprintf(v, sizeof v, "%g", p->strength);
        sb_kv(&b, "Denoising strength", v);
    }
    if (p->mask && p->mask_blur > 0) {
        snprintf(v, sizeof v, "%d", p->mask_blur);
        sb_kv(&b, "Mask blur", v);
    }
    if (p->mask && p->inpaint_only_masked) {
        sb_kv(&b, "Inpaint area", "Only masked");
        snprintf(v, sizeof v, "%d", p->inpaint_padding);
        sb_kv(&b, "Masked area padding", v);
    }
    if (p->clip_skip > 1) {
        snprintf(v, sizeof v, "%d", p->clip_skip);
        sb_kv(&b, "Clip skip", v);
    }
    if (p->rng && !strcmp(p->rng, "cpu")) sb_kv(&b, "RNG", "CPU");
    if (p->eta > 0) {
        snprintf(v, sizeof v, "%g", p->eta);
        sb_kv(&b, "Eta", v);
    }
    if (p->guidance_rescale > 0) {
        snprintf(v, sizeof v, "%g", p->guidance_rescale);
        sb_kv(&b, "CFG rescale", v);
    }
    sb_kv(&b, "Version", "sd " SD_VERSION);
    return b.s;
}

char *infotext_json(const sd_gen_params *p, const infotext_ctx *c, uint64_t seed) {
    cJSON *j = cJSON_CreateObject();
    char v[32];
    cJSON_AddStringToObject(j, "prompt", p->prompt ? p->prompt : "");
    cJSON_AddStringToObject(j, "negative_prompt", p->negative_prompt ? p->negative_prompt : "");
    cJSON_AddNumberToObject(j, "width", c->width);
    cJSON_AddNumberToObject(j, "height", c->height);
    cJSON_AddNumberToObject(j, "steps", c->steps);
    cJSON_AddNumberToObject(j, "cfg_scale", c->cfg_scale);
    cJSON_AddNumberToObject(j, "guidance_rescale", p->guidance_rescale);
    cJSON_AddStringToObject(j, "sampler", c->sampler);
    cJSON_AddStringToObject(j, "scheduler", c->scheduler);
    cJSON_AddStringToObject(j, "convention", p->convention ? p->convention : "diffusers");
    cJSON_AddNumberToObject(j, "eta", p->eta);
    snprintf(v, sizeof v, "%" PRIu64, seed); /* as a string: JSON numbers lose 64-bit seeds */
    cJSON_AddStringToObject(j, "seed", v);
    cJSON_AddStringToObject(j, "rng", p->rng ? p->rng : "cuda");
    if (p->sampler_rng) cJSON_AddStringToObject(j, "sampler_rng", p->sampler_rng); /* absent: continues the image's generator */
    cJSON_AddNumberToObject(j, "clip_skip", p->clip_skip);
    if (p->init_image) cJSON_AddNumberToObject(j, "strength", p->strength);
    if (p->mask) { /* informative: the mask itself is not in the PNG, so these are not read back */
        cJSON_AddNumberToObject(j, "mask_blur", p->mask_blur);
        cJSON_AddBoolToObject(j, "inpaint_only_masked", p->inpaint_only_masked != 0);
        if (p->inpaint_only_masked) cJSON_AddNumberToObject(j, "inpaint_padding", p->inpaint_padding);
        cJSON_AddStringToObject(j, "masked_content", p->inpaint_fill ? p->inpaint_fill : "original");
    }
    if (p->timestep_spacing) cJSON_AddStringToObject(j, "timestep_spacing", p->timestep_spacing);
    if (p->clip_skip_negative) cJSON_AddNumberToObject(j, "clip_skip_negative", p->clip_skip_negative);
    if (p->variation_strength > 0) {
        snprintf(v, sizeof v, "%" PRIu64, p->variation_seed);
        cJSON_AddStringToObject(j, "variation_seed", v);
        cJSON_AddNumberToObject(j, "variation_strength", p->variation_strength);
    }
    if (c->model_name) cJSON_AddStringToObject(j, "model", c->model_name);
    if (c->model_hash) cJSON_AddStringToObject(j, "model_hash", c->model_hash);
    cJSON_AddStringToObject(j, "version", SD_VERSION);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

sd_status sd_save_png(const char *path, const sd_image *img, const char *infotext, const char *json, int overwrite) {
    image_text kv[2];
    int n = 0;
    if (infotext) kv[n++] = (image_text){"parameters", infotext};
    if (json) kv[n++] = (image_text){"sd", json};
    return image_write_png(path, img, kv, n, !overwrite);
}

/* ---- reading settings back ---- */

/* All strings handed out by sd_params_from_png live in one arena block freed by the caller. */
typedef struct { char *buf; size_t n, cap; } strstore;
static const char *keep(strstore *s, const char *t) {
    size_t n = strlen(t) + 1;
    if (s->n + n > s->cap) return NULL; /* sized up front: cannot happen */
    char *d = s->buf + s->n;
    memcpy(d, t, n);
    s->n += n;
    return d;
}

static const char *jstr(const cJSON *j, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}
static int jnum(const cJSON *j, const char *k, double *out) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, k);
    if (!cJSON_IsNumber(x)) return 0;
    *out = x->valuedouble;
    return 1;
}

static sd_status from_json(const char *path, const char *text, sd_gen_params *p, strstore *st) {
    cJSON *j = cJSON_Parse(text);
    if (!j || !cJSON_IsObject(j)) { cJSON_Delete(j); return err_fail(SD_ERR_FORMAT, "%s: the \"sd\" text chunk is not a JSON object", path); }
    const char *s;
    double d;
    if ((s = jstr(j, "prompt"))) p->prompt = keep(st, s);
    if ((s = jstr(j, "negative_prompt"))) p->negative_prompt = keep(st, s);
    if ((s = jstr(j, "sampler"))) p->sampler = keep(st, s);
    if ((s = jstr(j, "scheduler"))) p->scheduler = keep(st, s);
    if ((s = jstr(j, "convention"))) p->convention = keep(st, s);
    if ((s = jstr(j, "rng"))) p->rng = keep(st, s);
    if ((s = jstr(j, "sampler_rng"))) p->sampler_rng = keep(st, s);
    if ((s = jstr(j, "seed"))) p->seed = strtoull(s, NULL, 10);
    if ((s = jstr(j, "variation_seed"))) p->variation_seed = strtoull(s, NULL, 10);
    if (jnum(j, "width", &d)) p->width = (int)d;
    if (jnum(j, "height", &d)) p->height = (int)d;
    if (jnum(j, "steps", &d)) p->steps = (int)d;
    if (jnum(j, "cfg_scale", &d)) p->cfg_scale = (float)d;
    if (jnum(j, "guidance_rescale", &d)) p->guidance_rescale = (float)d;
    if (jnum(j, "eta", &d)) p->eta = (float)d;
    if (jnum(j, "clip_skip", &d)) p->clip_skip = (int)d;
    if (jnum(j, "clip_skip_negative", &d)) p->clip_skip_negative = (int)d;
    if ((s = jstr(j, "timestep_spacing"))) p->timestep_spacing = keep(st, s);
    if (jnum(j, "strength", &d)) p->strength = (float)d;
    if (jnum(j, "variation_strength", &d)) p->variation_strength = (float)d;
    cJSON_Delete(j);
    return SD_OK;
}

/* A1111's last line: "Key: value, Key: \"quoted, value\", ..." */
static sd_status from_a1111(const char *text, sd_gen_params *p, strstore *st) {
    const char *last = strrchr(text, '\n');
    const char *params = last ? last + 1 : text;
    size_t plen = last ? (size_t)(last - text) : 0;
    if (!strstr(params, "Steps: ")) { params = ""; plen = strlen(text); } /* no parameter line at all */
    char *head = strndup(text, plen);
    char *neg = strstr(head, "\nNegative prompt: ");
    if (!neg && !strncmp(head, "Negative prompt: ", 17)) neg = head - 1;
    if (neg) {
        p->negative_prompt = keep(st, neg + 18);
        if (neg >= head) *neg = 0; else head[0] = 0;
    }
    p->prompt = keep(st, head);
    free(head);
    const char *q = params;
    while (*q) {
        while (*q == ' ' || *q == ',') q++;
        const char *colon = strstr(q, ": ");
        if (!colon) break;
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(colon - q) < 63 ? (int)(colon - q) : 63, q);
        const char *v = colon + 2;
        char val[4096];
        if (*v == '"') { /* JSON-quoted */
            const char *e = v + 1;
            while (*e && *e != '"') e += (*e == '\\' && e[1]) ? 2 : 1;
            char *js = strndup(v, (size_t)(e - v) + 1);
            cJSON *j = cJSON_Parse(js);
            free(js);
            snprintf(val, sizeof val, "%s", cJSON_IsString(j) ? j->valuestring : "");
            cJSON_Delete(j);
            q = *e ? e + 1 : e;
        } else {
            const char *e = strchr(v, ',');
            if (!e) e = v + strlen(v);
            snprintf(val, sizeof val, "%.*s", (int)(e - v), v);
            q = e;
        }
        if (!strcmp(key, "Steps")) p->steps = atoi(val);
        else if (!strcmp(key, "Sampler")) {
            const char *ours = infotext_sampler_from_a1111(val);
            p->sampler = keep(st, ours ? ours : val);
        } else if (!strcmp(key, "Schedule type")) {
            p->scheduler = !strcmp(val, "Karras") ? "karras" : !strcmp(val, "Exponential") ? "exponential" : !strcmp(val, "SGM Uniform") ? "sgm_uniform"
                         : !strcmp(val, "Beta") ? "beta" : "discrete";
        } else if (!strcmp(key, "CFG scale")) p->cfg_scale = (float)atof(val);
        else if (!strcmp(key, "Seed")) p->seed = strtoull(val, NULL, 10);
        else if (!strcmp(key, "Size")) sscanf(val, "%dx%d", &p->width, &p->height);
        else if (!strcmp(key, "Clip skip")) p->clip_skip = atoi(val);
        else if (!strcmp(key, "RNG")) p->rng = !strcmp(val, "CPU") ? "cpu" : "cuda";
        else if (!strcmp(key, "Variation seed")) p->variation_seed = strtoull(val, NULL, 10);
        else if (!strcmp(key, "Variation seed strength")) p->variation_strength = (float)atof(val);
        else if (!strcmp(key, "Denoising strength")) p->strength = (float)atof(val);
        else if (!strcmp(key, "Eta")) p->eta = (float)atof(val);
        else if (!strcmp(key, "CFG rescale")) p->guidance_rescale = (float)atof(val);
    }
    if (!p->rng) p->rng = "cuda"; /* A1111: a missing RNG key means GPU */
    /* A1111 samplers are k-diffusion's */
    p->convention = "kdiffusion";
    return SD_OK;
}

sd_status sd_params_from_png(const char *path, sd_gen_params *p, void **storage) {
    *storage = NULL;
    image_text *t;
    int n;
    sd_status st = image_read_png_text(path, &t, &n);
    if (st != SD_OK) return st;
    const char *json = NULL, *a1111 = NULL;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(t[i].key, "sd")) json = t[i].value;
        if (!strcmp(t[i].key, "parameters")) a1111 = t[i].value;
        total += strlen(t[i].value) + 64;
    }
    if (!json && !a1111) {
        image_text_free(t, n);
        return err_fail(SD_ERR_FORMAT, "%s: no generation parameters in this PNG (no \"sd\" or \"parameters\" text chunk)", path);
    }
    strstore s = {malloc(2 * total + 256), 0, 2 * total + 256};
    sd_gen_params_init(p);
    st = json ? from_json(path, json, p, &s) : from_a1111(a1111, p, &s);
    image_text_free(t, n);
    if (st != SD_OK) { free(s.buf); return st; }
    *storage = s.buf;
    return SD_OK;
}
