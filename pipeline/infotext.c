/* infotext.c — AUTOMATIC1111-compatible "parameters" text, our JSON settings, and reading both back. */
#include "infotext.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/image.h"
#include "../core/numparse.h"
#include "control.h"

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

/* A1111 before 1.9 had no "Schedule type": a schedule other than Automatic rode on the sampler's name ("DPM++ 2M
 * Karras", "DPM++ 2M SDE Exponential"). Its reader (sd_samplers.get_sampler_and_scheduler) cuts a trailing
 * " <schedule label>" off; so do we, giving our sampler and (through *scheduler, else untouched) our schedule. */
const char *sd_sampler_from_a1111(const char *name, const char **scheduler) {
    const char *ours = infotext_sampler_from_a1111(name);
    if (ours) return ours;
    size_t n = strlen(name);
    for (int i = 0; i < sd_scheduler_count(); i++) {
        const char *sch = sd_scheduler_name(i, NULL), *label = sd_scheduler_a1111(sch);
        size_t k = label ? strlen(label) : 0;
        if (!k || n <= k + 1 || name[n - k - 1] != ' ' || strcmp(name + n - k, label)) continue;
        char base[64];
        if (n - k - 1 >= sizeof base) return NULL;
        snprintf(base, sizeof base, "%.*s", (int)(n - k - 1), name);
        if (!(ours = infotext_sampler_from_a1111(base))) return NULL;
        *scheduler = sch;
        return ours;
    }
    return NULL;
}

/* Growable string; once an allocation fails it stays failed and sb_done gives NULL. */
typedef struct { char *s; size_t n, cap; int failed; } sbuf;
static void sb_add(sbuf *b, const char *t, size_t n) {
    if (b->failed) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) { b->failed = 1; return; }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, t, n);
    b->n += n;
    b->s[b->n] = 0;
}
static char *sb_done(sbuf *b) {
    if (!b->failed) return b->s;
    free(b->s);
    err_fail(SD_ERR_MEMORY, "infotext: out of memory");
    return NULL;
}
static void sb_str(sbuf *b, const char *t) { sb_add(b, t, strlen(t)); }

/* A1111 quotes a value as JSON when it contains ',', ':' or a newline. */
static void sb_kv(sbuf *b, const char *key, const char *val) {
    if (b->n && b->s[b->n - 1] != '\n') sb_str(b, ", ");
    sb_str(b, key);
    sb_str(b, ": ");
    if (strpbrk(val, ",:\n")) {
        cJSON *j = cJSON_CreateString(val);
        char *q = j ? cJSON_PrintUnformatted(j) : NULL;
        if (q) sb_str(b, q);
        else b->failed = 1;
        free(q);
        cJSON_Delete(j);
    } else {
        sb_str(b, val);
    }
}

/* Our hires upscaler names and AUTOMATIC1111's. */
static const struct { const char *ours, *a1111; } k_upscalers[] = {
    {"latent", "Latent"}, {"latent-bicubic", "Latent (bicubic)"}, {"latent-nearest-exact", "Latent (nearest-exact)"},
    {"lanczos", "Lanczos"}, {"none", "None"},
};

static const char *upscaler_name(const char *name, int to_a1111) {
    for (size_t i = 0; i < sizeof k_upscalers / sizeof *k_upscalers; i++)
        if (!strcmp(to_a1111 ? k_upscalers[i].ours : k_upscalers[i].a1111, name)) return to_a1111 ? k_upscalers[i].a1111 : k_upscalers[i].ours;
    return NULL;
}

static int hires_on(const sd_gen_params *p) { return p->hires_scale != 0 || p->hires_width || p->hires_height; }

static const char *schedule_a1111(const char *s) {
    const char *a = sd_scheduler_a1111(s);
    return a ? a : s;
}

const char *sd_scheduler_a1111(const char *s) {
    if (!strcmp(s, "discrete")) return "Automatic";
    if (!strcmp(s, "karras")) return "Karras";
    if (!strcmp(s, "exponential")) return "Exponential";
    if (!strcmp(s, "sgm_uniform")) return "SGM Uniform";
    if (!strcmp(s, "beta")) return "Beta";
    return NULL;
}

const char *sd_sampler_a1111(const char *name) { return infotext_sampler_to_a1111(name); }

/* A1111's timestep samplers (sd_samplers_timesteps.CompVisSampler: DDIM, PLMS, UniPC) keep eta under "Eta DDIM"
 * (option eta_ddim), its k-diffusion ones under "Eta" (eta_ancestral): each reads only its own key, so we write and read
 * the same way. They also make their own timesteps, whatever "Schedule type" says. */
static int timestep_sampler(const char *ours) {
    return ours && (!strcmp(ours, "ddim") || !strcmp(ours, "pndm") || !strcmp(ours, "plms") || !strcmp(ours, "unipc"));
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
    if (p->init_image || hires_on(p)) { /* A1111 writes the hires pass's strength under the same key */
        snprintf(v, sizeof v, "%g", p->init_image ? p->strength : p->hires_denoise);
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
        sb_kv(&b, timestep_sampler(c->sampler) ? "Eta DDIM" : "Eta", v);
    }
    if (p->guidance_rescale > 0) {
        snprintf(v, sizeof v, "%g", p->guidance_rescale);
        sb_kv(&b, "CFG rescale", v);
    }
    if (c->lora_hashes) sb_kv(&b, "Lora hashes", c->lora_hashes);
    if (c->ti_hashes) sb_kv(&b, "TI hashes", c->ti_hashes);
    for (int i = 0; i < p->control_count; i++) { /* as sd-webui-controlnet writes its units */
        char key[32], *unit = control_text_unit(&p->controls[i], c->control_labels ? c->control_labels[i] : p->controls[i].model,
                                                p->control_guess_mode, c->width < c->height ? c->width : c->height);
        snprintf(key, sizeof key, "ControlNet %d", i);
        if (unit) sb_kv(&b, key, unit);
        free(unit);
    }
    if (hires_on(p)) { /* A1111's order: Hires upscale or Hires resize, Hires steps (when not 0), Hires upscaler */
        if (p->hires_width || p->hires_height) {
            snprintf(v, sizeof v, "%dx%d", p->hires_width, p->hires_height);
            sb_kv(&b, "Hires resize", v);
        } else {
            snprintf(v, sizeof v, "%g", p->hires_scale);
            sb_kv(&b, "Hires upscale", v);
        }
        if (p->hires_steps) {
            snprintf(v, sizeof v, "%d", p->hires_steps);
            sb_kv(&b, "Hires steps", v);
        }
        const char *u = p->hires_upscaler ? p->hires_upscaler : "latent";
        sb_kv(&b, "Hires upscaler", upscaler_name(u, 1) ? upscaler_name(u, 1) : u);
    }
    sb_kv(&b, "Version", "sd " SD_VERSION);
    return sb_done(&b);
}

char *infotext_json(const sd_gen_params *p, const infotext_ctx *c, uint64_t seed) {
    cJSON *j = cJSON_CreateObject();
    char v[32];
    cJSON_AddStringToObject(j, "prompt", p->prompt ? p->prompt : "");
    /* no key when no negative prompt was given: SDXL then zeroes the unconditional embedding (diffusers'
     * force_zeros_for_empty_prompt) but encodes a given "" - another picture, so the reader must tell them apart */
    if (p->negative_prompt) cJSON_AddStringToObject(j, "negative_prompt", p->negative_prompt);
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
    if (p->lora_count > 0) { /* the --lora files (the prompt's tags are in the prompt) */
        cJSON *a = cJSON_AddArrayToObject(j, "loras");
        for (int i = 0; i < p->lora_count; i++) {
            cJSON *l = cJSON_CreateObject();
            cJSON_AddStringToObject(l, "path", p->loras[i].path ? p->loras[i].path : "");
            cJSON_AddNumberToObject(l, "te", p->loras[i].te_weight);
            cJSON_AddNumberToObject(l, "unet", p->loras[i].unet_weight);
            cJSON_AddItemToArray(a, l);
        }
    }
    if (c->lora_hashes) cJSON_AddStringToObject(j, "lora_hashes", c->lora_hashes);
    if (c->ti_hashes) cJSON_AddStringToObject(j, "ti_hashes", c->ti_hashes);
    if (hires_on(p)) {
        cJSON_AddNumberToObject(j, "hires_scale", p->hires_scale);
        cJSON_AddNumberToObject(j, "hires_width", p->hires_width);
        cJSON_AddNumberToObject(j, "hires_height", p->hires_height);
        cJSON_AddNumberToObject(j, "hires_steps", p->hires_steps);
        cJSON_AddNumberToObject(j, "hires_denoise", p->hires_denoise);
        cJSON_AddStringToObject(j, "hires_upscaler", p->hires_upscaler ? p->hires_upscaler : "latent");
    }
    if (c->model_name) cJSON_AddStringToObject(j, "model", c->model_name);
    if (c->model_hash) cJSON_AddStringToObject(j, "model_hash", c->model_hash);
    control_text_json(j, p->controls, p->control_count, p->control_guess_mode);
    cJSON_AddStringToObject(j, "version", SD_VERSION);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* The text chunks of a generated image: A1111's "parameters" and our "sd" JSON. */
static int png_chunks(image_text kv[2], const char *infotext, const char *json) {
    int n = 0;
    if (infotext) kv[n++] = (image_text){"parameters", infotext};
    if (json) kv[n++] = (image_text){"sd", json};
    return n;
}

sd_status sd_save_png(const char *path, const sd_image *img, const char *infotext, const char *json, int overwrite) {
    image_text kv[2];
    return image_write_png(path, img, kv, png_chunks(kv, infotext, json), !overwrite);
}

sd_status sd_png_encode(const sd_image *img, const char *infotext, const char *json, uint8_t **png, size_t *len) {
    image_text kv[2];
    return image_encode_png(img, kv, png_chunks(kv, infotext, json), png, len);
}

/* ---- reading settings back ---- */

/* The numbers both formats store, with the ranges params_validate accepts: a value outside is refused here,
 * naming the file and the key, before anything converts it (a huge double cast to int or float is undefined). */
typedef enum { F_INT, F_FLOAT, F_SEED } field_kind;
static const struct field {
    const char *json, *a1111; /* key in our JSON, in A1111's text (NULL: not stored there, or stored otherwise) */
    field_kind kind;
    double lo, hi;
    size_t off;
} k_fields[] = {
    {"width", NULL, F_INT, 8, 8192, offsetof(sd_gen_params, width)},
    {"height", NULL, F_INT, 8, 8192, offsetof(sd_gen_params, height)},
    {"steps", "Steps", F_INT, 1, 1000, offsetof(sd_gen_params, steps)},
    {"cfg_scale", "CFG scale", F_FLOAT, 0, 100, offsetof(sd_gen_params, cfg_scale)},
    {"guidance_rescale", "CFG rescale", F_FLOAT, 0, 1, offsetof(sd_gen_params, guidance_rescale)},
    {"eta", NULL, F_FLOAT, 0, 1, offsetof(sd_gen_params, eta)}, /* A1111: "Eta" or "Eta DDIM", by sampler */
    {"clip_skip", "Clip skip", F_INT, 0, 12, offsetof(sd_gen_params, clip_skip)},
    {"clip_skip_negative", NULL, F_INT, 0, 12, offsetof(sd_gen_params, clip_skip_negative)},
    {"strength", "Denoising strength", F_FLOAT, 0, 1, offsetof(sd_gen_params, strength)},
    {"variation_strength", "Variation seed strength", F_FLOAT, 0, 1, offsetof(sd_gen_params, variation_strength)},
    {"seed", "Seed", F_SEED, 0, 0, offsetof(sd_gen_params, seed)},
    {"variation_seed", "Variation seed", F_SEED, 0, 0, offsetof(sd_gen_params, variation_seed)},
    /* the hires fix ("sd" JSON: 0 for the one of scale / size not used) */
    {"hires_scale", "Hires upscale", F_FLOAT, 0, 8, offsetof(sd_gen_params, hires_scale)},
    {"hires_width", NULL, F_INT, 0, 8192, offsetof(sd_gen_params, hires_width)},
    {"hires_height", NULL, F_INT, 0, 8192, offsetof(sd_gen_params, hires_height)},
    {"hires_steps", "Hires steps", F_INT, 0, 1000, offsetof(sd_gen_params, hires_steps)},
    {"hires_denoise", NULL, F_FLOAT, 0, 1, offsetof(sd_gen_params, hires_denoise)},
};

static sd_status field_refused(const char *src, const char *key, const struct field *f) {
    if (f->kind == F_SEED) return err_fail(SD_ERR_FORMAT, "%s: \"%s\" must be a whole number from 0 to 18446744073709551615", src, key);
    return err_fail(SD_ERR_FORMAT, "%s: \"%s\" must be %s from %g to %g", src, key, f->kind == F_INT ? "a whole number" : "a number", f->lo, f->hi);
}

static void field_put(sd_gen_params *p, const struct field *f, int i, double d, uint64_t u) {
    char *at = (char *)p + f->off;
    if (f->kind == F_INT) *(int *)at = i;
    else if (f->kind == F_FLOAT) *(float *)at = (float)d;
    else *(uint64_t *)at = u;
}

/* A value of our JSON: a number (a seed is a string there, since JSON numbers lose 64-bit seeds). */
static sd_status field_from_json(const char *src, const struct field *f, const cJSON *j, sd_gen_params *p) {
    int i = 0;
    double d = 0;
    uint64_t u = 0;
    if (f->kind == F_SEED) {
        if (!cJSON_IsString(j) || num_parse_u64(j->valuestring, &u)) return field_refused(src, f->json, f);
    } else if (f->kind == F_INT) {
        if (num_int_value(src, j, f->json, (int)f->lo, (int)f->hi, &i) != SD_OK) return SD_ERR_FORMAT;
    } else if (num_double_value(src, j, f->json, f->lo, f->hi, &d) != SD_OK) {
        return SD_ERR_FORMAT;
    }
    field_put(p, f, i, d, u);
    return SD_OK;
}

/* A value of A1111's text. */
static sd_status field_from_text(const char *src, const struct field *f, const char *key, const char *val, sd_gen_params *p) {
    int i = 0;
    double d = 0;
    uint64_t u = 0;
    int bad = f->kind == F_SEED  ? num_parse_u64(val, &u)
              : f->kind == F_INT ? num_parse_int(val, (int)f->lo, (int)f->hi, &i)
                                 : num_parse_double(val, f->lo, f->hi, &d);
    if (bad) return field_refused(src, key, f);
    field_put(p, f, i, d, u);
    return SD_OK;
}

/* All strings handed out by infotext_params_from_text live in one block freed by the caller, sized up front. */
typedef struct { char *buf; size_t n, cap; } strstore;
static const char *keep_n(strstore *s, const char *t, size_t n) {
    if (s->n + n + 1 > s->cap) return ""; /* cannot happen: the block holds every text twice over, and more */
    char *d = s->buf + s->n;
    memcpy(d, t, n);
    d[n] = 0;
    s->n += n + 1;
    return d;
}
static const char *keep(strstore *s, const char *t) { return keep_n(s, t, strlen(t)); }

/* n bytes aligned for any C object, from the same block. */
static void *keep_bytes(strstore *s, size_t n) {
    size_t at = (s->n + 15) & ~(size_t)15;
    if (at + n > s->cap) return NULL;
    s->n = at + n;
    return s->buf + at;
}

static const char *keep_cb(void *st, const char *t) { return keep(st, t); }
/* The controls read back live at the start of the storage block (see sd_params_from_png). */
static sd_control *stored_controls(strstore *st) { return (sd_control *)(void *)st->buf; }

/* What the settings say about the inputs a PNG does not hold (sd_params_png_init), after the controls. */
typedef struct png_inputs { int init, masked; float strength; } png_inputs;
#define INPUTS_AT (SD_MAX_CONTROLS * sizeof(sd_control))
static png_inputs *stored_inputs(strstore *st) { return (png_inputs *)(void *)(st->buf + INPUTS_AT); }

static const char *jstr(const cJSON *j, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static sd_status from_json(const char *src, const char *text, sd_gen_params *p, strstore *st) {
    cJSON *j = cJSON_Parse(text);
    if (!j || !cJSON_IsObject(j)) { cJSON_Delete(j); return err_fail(SD_ERR_FORMAT, "%s: not a JSON object", src); }
    static const struct { const char *key; size_t off; } strs[] = {
        {"prompt", offsetof(sd_gen_params, prompt)}, {"negative_prompt", offsetof(sd_gen_params, negative_prompt)},
        {"sampler", offsetof(sd_gen_params, sampler)}, {"scheduler", offsetof(sd_gen_params, scheduler)},
        {"convention", offsetof(sd_gen_params, convention)}, {"rng", offsetof(sd_gen_params, rng)},
        {"sampler_rng", offsetof(sd_gen_params, sampler_rng)}, {"timestep_spacing", offsetof(sd_gen_params, timestep_spacing)},
        {"hires_upscaler", offsetof(sd_gen_params, hires_upscaler)},
    };
    const char *s;
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        if ((s = jstr(j, strs[i].key))) *(const char **)((char *)p + strs[i].off) = keep(st, s);
    sd_status rc = SD_OK;
    for (size_t i = 0; i < sizeof k_fields / sizeof *k_fields && rc == SD_OK; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k_fields[i].json);
        if (v && !cJSON_IsNull(v)) rc = field_from_json(src, &k_fields[i], v, p);
    }
    const cJSON *loras = cJSON_GetObjectItemCaseSensitive(j, "loras"), *l;
    int n = cJSON_IsArray(loras) ? cJSON_GetArraySize(loras) : 0;
    sd_lora *v = n && rc == SD_OK ? keep_bytes(st, (size_t)n * sizeof *v) : NULL;
    if (v) {
        cJSON_ArrayForEach(l, loras) {
            const char *path = jstr(l, "path");
            float te = 1, unet = 1;
            if (!path) continue;
            /* strengths as A1111 takes them: any finite number; the bound only keeps the float conversion defined */
            if ((rc = num_json_float(src, l, "te", -1000, 1000, &te)) != SD_OK) break;
            if ((rc = num_json_float(src, l, "unet", -1000, 1000, &unet)) != SD_OK) break;
            v[p->lora_count++] = (sd_lora){keep(st, path), te, unet};
        }
        p->loras = v;
    }
    /* our JSON has "strength" only for an init image (the hires pass's is "hires_denoise"), "mask_blur" for a mask */
    png_inputs *in = stored_inputs(st);
    if (rc == SD_OK && cJSON_GetObjectItemCaseSensitive(j, "strength")) in->init = 1, in->strength = p->strength;
    in->masked = in->init && cJSON_GetObjectItemCaseSensitive(j, "mask_blur") != NULL;
    p->control_count = control_text_from_json(j, stored_controls(st), SD_MAX_CONTROLS, keep_cb, st, &p->control_guess_mode);
    if (p->control_count) p->controls = stored_controls(st);
    cJSON_Delete(j);
    return rc;
}

/* A "WIDTHxHEIGHT" value of key: each side a whole number from lo to 8192. */
static sd_status wxh(const char *src, const char *key, const char *val, int lo, int *w, int *h) {
    const char *x = strchr(val, 'x');
    char ws[32];
    if (!x || (size_t)(x - val) >= sizeof ws) return err_fail(SD_ERR_FORMAT, "%s: \"%s\" must be WIDTHxHEIGHT", src, key);
    snprintf(ws, sizeof ws, "%.*s", (int)(x - val), val);
    if (num_parse_int(ws, lo, 8192, w) || num_parse_int(x + 1, lo, 8192, h))
        return err_fail(SD_ERR_FORMAT, "%s: \"%s\" must be WIDTHxHEIGHT, each a whole number from %d to 8192", src, key, lo);
    return SD_OK;
}

/* What A1111's keys say beyond the fields of sd_gen_params, settled once the whole line is read. */
typedef struct a1111_seen {
    const char *file;          /* the PNG, for warnings */
    const char *name_schedule; /* the schedule a pre-1.9 sampler name carried ("... Karras"), or NULL */
    const char *schedule_text; /* "Schedule type" as written, or NULL */
    const char *sampler_text;  /* "Sampler" as written, or NULL */
    float eta, eta_ddim;       /* "Eta" (ancestral samplers) and "Eta DDIM" (timestep samplers); 0: not given */
} a1111_seen;

/* A1111 keys that change the picture and that we cannot honour, with the value that changes nothing (NULL: every
 * value changes it); one is read with a warning, not refused: a PNG cannot be edited by a flag, and most of these
 * leave the picture close (the server, whose client can change its request, refuses its fields instead). */
static const struct { const char *key, *noop; } k_unsupported[] = {
    {"Seed resize from", "-1x-1"}, {"ENSD", "0"}, {"Face restoration", NULL}, {"Image CFG scale", NULL},
    {"Conditional mask weight", "1.0"}, {"Token merging ratio", "0"}, {"Token merging ratio hr", "0"}, {"Tiling", "False"},
    {"Emphasis", "Original"}, {"Pad conds", "False"}, {"Discard penultimate sigma", "False"}, {"NGMS", "0"},
    {"Skip Early CFG", "0"}, {"Refiner", NULL}, {"Refiner switch at", NULL}, {"Hires sampler", NULL},
    {"Hires schedule type", NULL}, {"Hires prompt", NULL}, {"Hires negative prompt", NULL}, {"Hires CFG Scale", NULL},
    {"Hires checkpoint", NULL}, {"Schedule max sigma", NULL}, {"Schedule min sigma", NULL}, {"Schedule rho", NULL},
    {"Beta schedule alpha", NULL}, {"Beta schedule beta", NULL}, {"Noise multiplier", "1"}, {"SGM noise multiplier", NULL},
    {"Sigma churn", "0"}, {"Sigma tmin", "0"}, {"Sigma tmax", NULL}, {"Sigma noise", "1"}, {"Downcast alphas_cumprod", NULL},
};

static void a1111_ignored(const char *file, const char *key, const char *val, const char *why) {
    fprintf(stderr, "warning: %s: ignoring '%s: %s' (%s)\n", file, key, val, why);
}

/* A key of A1111's we do not read: a warning when it changes the picture (keys of other tools are not ours to judge). */
static void a1111_other(const char *file, const char *key, const char *val) {
    for (size_t i = 0; i < sizeof k_unsupported / sizeof *k_unsupported; i++)
        if (!strcmp(key, k_unsupported[i].key)) {
            if (!k_unsupported[i].noop || strcmp(val, k_unsupported[i].noop)) a1111_ignored(file, key, val, "not supported");
            return;
        }
}

/* Our schedule for A1111's "Schedule type" ("Automatic": the sampler's discrete one); NULL if we have none. */
static const char *schedule_from_a1111(const char *val) {
    for (int i = 0; i < sd_scheduler_count(); i++) {
        const char *ours = sd_scheduler_name(i, NULL), *a = sd_scheduler_a1111(ours);
        if (a && !strcmp(a, val)) return ours;
    }
    return NULL;
}

/* "Eta" / "Eta DDIM": a number from 0 to 1, kept until the sampler is known. */
static sd_status a1111_eta(const char *src, const char *key, const char *val, float *to) {
    double d;
    if (num_parse_double(val, 0, 1, &d)) return err_fail(SD_ERR_FORMAT, "%s: \"%s\" must be a number from 0 to 1", src, key);
    *to = (float)d;
    return SD_OK;
}

/* One "Key: value" of A1111's last line. */
static sd_status a1111_pair(const char *src, const char *key, const char *val, sd_gen_params *p, strstore *st, a1111_seen *a) {
    for (size_t i = 0; i < sizeof k_fields / sizeof *k_fields; i++)
        if (k_fields[i].a1111 && !strcmp(key, k_fields[i].a1111)) return field_from_text(src, &k_fields[i], key, val, p);
    if (!strcmp(key, "Eta") || !strcmp(key, "Eta DDIM")) return a1111_eta(src, key, val, key[3] ? &a->eta_ddim : &a->eta);
    if (!strcmp(key, "Size")) { /* "512x768" */
        return wxh(src, key, val, 8, &p->width, &p->height);
    } else if (!strcmp(key, "Sampler")) {
        a->sampler_text = keep(st, val);
        const char *ours = sd_sampler_from_a1111(val, &a->name_schedule);
        p->sampler = keep(st, ours ? ours : val);
    } else if (!strcmp(key, "Schedule type")) { /* one we lack is kept by name: refused when run, --scheduler replaces it */
        a->schedule_text = keep(st, val);
        const char *ours = schedule_from_a1111(val);
        p->scheduler = ours ? ours : a->schedule_text;
    } else if (!strcmp(key, "RNG")) {
        p->rng = !strcmp(val, "CPU") ? "cpu" : "cuda";
    } else if (!strcmp(key, "Hires resize")) { /* "1024x0": 0 keeps that side in proportion */
        return wxh(src, key, val, 0, &p->hires_width, &p->hires_height);
    } else if (!strcmp(key, "Hires upscaler")) {
        const char *ours = upscaler_name(val, 0);
        p->hires_upscaler = keep(st, ours ? ours : val); /* another upscaler (ESRGAN ...): refused by name when run */
    } else {
        a1111_other(a->file, key, val);
    }
    return SD_OK;
}

/* A1111's layout: prompt lines, an optional "Negative prompt: " line, and last "Key: value, Key: \"quoted, value\", ..." */
static sd_status from_a1111(const char *src, const char *file, const char *text, sd_gen_params *p, strstore *st) {
    const char *last = strrchr(text, '\n');
    const char *params = last ? last + 1 : text;
    size_t plen = last ? (size_t)(last - text) : 0;
    if (!strstr(params, "Steps: ")) { params = ""; plen = strlen(text); } /* no parameter line at all */
    /* the prompt part: text[0, plen), split at the negative prompt's line */
    static const char neg_tag[] = "Negative prompt: ";
    const size_t tag = sizeof neg_tag - 1;
    size_t prompt_len = plen;
    const char *neg = NULL;
    if (plen >= tag && !strncmp(text, neg_tag, tag)) {
        prompt_len = 0;
        neg = text + tag;
    } else {
        for (const char *q = text; q < text + plen; q++) {
            const char *nl = memchr(q, '\n', (size_t)(text + plen - q));
            if (!nl) break;
            if ((size_t)(text + plen - (nl + 1)) >= tag && !strncmp(nl + 1, neg_tag, tag)) {
                prompt_len = (size_t)(nl - text);
                neg = nl + 1 + tag;
                break;
            }
            q = nl;
        }
    }
    p->prompt = keep_n(st, text, prompt_len);
    if (neg) p->negative_prompt = keep_n(st, neg, (size_t)(text + plen - neg));
    const char *q = params;
    int denoise = 0, masked = 0; /* "Denoising strength" / a mask key seen */
    a1111_seen seen = {file, NULL, NULL, NULL, 0, 0};
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
            cJSON *j = cJSON_ParseWithLength(v, (size_t)(e - v) + (*e ? 1 : 0));
            snprintf(val, sizeof val, "%s", cJSON_IsString(j) ? j->valuestring : "");
            cJSON_Delete(j);
            q = *e ? e + 1 : e;
        } else {
            const char *e = strchr(v, ',');
            if (!e) e = v + strlen(v);
            snprintf(val, sizeof val, "%.*s", (int)(e - v < 4095 ? e - v : 4095), v);
            q = e;
        }
        if (control_text_from_a1111(key, val, stored_controls(st), SD_MAX_CONTROLS, keep_cb, st, &p->control_count, &p->control_guess_mode)) {
            p->controls = stored_controls(st);
            continue;
        }
        sd_status rc = a1111_pair(src, key, val, p, st, &seen);
        if (rc != SD_OK) return rc;
        denoise |= !strcmp(key, "Denoising strength");
        masked |= !strcmp(key, "Mask blur") || !strcmp(key, "Inpaint area") || !strcmp(key, "Masked content");
    }
    if (!p->scheduler && seen.name_schedule) p->scheduler = seen.name_schedule; /* an explicit "Schedule type" wins */
    p->eta = timestep_sampler(p->sampler) ? seen.eta_ddim : seen.eta; /* the other key does nothing in A1111 */
    if (timestep_sampler(p->sampler) && p->scheduler) { /* A1111 ignores the schedule of these: Automatic's picture */
        if (strcmp(p->scheduler, "discrete"))
            a1111_ignored(file, seen.schedule_text ? "Schedule type" : "Sampler", seen.schedule_text ? seen.schedule_text : seen.sampler_text,
                          "AUTOMATIC1111's timestep samplers ignore the schedule type: Automatic used");
        p->scheduler = "discrete";
    }
    if (hires_on(p)) { /* "Denoising strength" was the hires pass's (a txt2img has no init image) */
        p->hires_denoise = p->strength;
        p->strength = 0.75f;
    } else if (denoise) { /* img2img or inpainting */
        png_inputs *in = stored_inputs(st);
        in->init = 1;
        in->strength = p->strength;
        in->masked = masked;
    }
    if (!p->rng) p->rng = "cuda"; /* A1111: a missing RNG key means GPU */
    /* A1111 samplers are k-diffusion's */
    p->convention = "kdiffusion";
    return SD_OK;
}

sd_status infotext_params_from_text(const char *src, const char *json, const char *a1111, sd_gen_params *p, void **storage) {
    *storage = NULL;
    sd_gen_params_init(p);
    size_t total = (json ? strlen(json) : 0) + (a1111 ? strlen(a1111) : 0);
    /* one block: the sd_control array the settings may name, then the strings and the sd_lora array of a JSON "loras" */
    size_t head = INPUTS_AT + sizeof(png_inputs);
    strstore s = {malloc(head + 3 * total + 256), head, head + 3 * total + 256};
    if (!s.buf) return err_fail(SD_ERR_MEMORY, "%s: out of memory", src);
    *stored_inputs(&s) = (png_inputs){0, 0, 0};
    char where[1200];
    snprintf(where, sizeof where, "%s (the \"%s\" text chunk)", src, json ? "sd" : "parameters");
    sd_status st = json ? from_json(where, json, p, &s) : a1111 ? from_a1111(where, src, a1111, p, &s)
                        : err_fail(SD_ERR_FORMAT, "%s: no generation parameters", src);
    if (st != SD_OK) {
        free(s.buf);
        sd_gen_params_init(p); /* no pointers into the freed block */
        return st;
    }
    *storage = s.buf;
    return SD_OK;
}

sd_status sd_params_from_png(const char *path, sd_gen_params *p, void **storage) {
    *storage = NULL;
    image_text *t;
    int n;
    sd_status st = image_read_png_text(path, &t, &n);
    if (st != SD_OK) return st;
    const char *json = NULL, *a1111 = NULL;
    for (int i = 0; i < n; i++) {
        if (!strcmp(t[i].key, "sd")) json = t[i].value;
        if (!strcmp(t[i].key, "parameters")) a1111 = t[i].value;
    }
    if (!json && !a1111) st = err_fail(SD_ERR_FORMAT, "%s: no generation parameters in this PNG (no \"sd\" or \"parameters\" text chunk)", path);
    else st = infotext_params_from_text(path, json, a1111, p, storage);
    image_text_free(t, n);
    return st;
}

int sd_params_png_init(const void *storage, float *strength, int *masked) {
    png_inputs in = {0, 0, 0};
    if (storage) memcpy(&in, (const char *)storage + INPUTS_AT, sizeof in);
    if (strength) *strength = in.strength;
    if (masked) *masked = in.masked;
    return in.init;
}
