/* jobs.c — reading and checking `sd batch` job files (JSON Lines or plain prompts) over command-line defaults. */
#include "jobs.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clikit.h"
#include "expand.h"

/* ---- the keys a job may have ---- */

typedef enum ktype {
    KT_STR,       /* any string */
    KT_PROMPT,    /* string, non-empty (its expansions are held to SD_PROMPT_MAX_BYTES by plan.c) */
    KT_TEXT,      /* string of at most SD_PROMPT_MAX_BYTES */
    KT_INT,       /* whole number in [lo, hi] */
    KT_INT8,      /* whole number in [lo, hi], multiple of 8 */
    KT_NUM,       /* finite number in [lo, hi] */
    KT_SEED,      /* one seed: number or decimal string */
    KT_SEEDS,     /* seed list: number, "A:B,C" string, or array of those */
    KT_SIZE,      /* "WxH" */
    KT_ENUM,      /* one of `choices` */
    KT_SAMPLER,
    KT_SCHEDULER,
    KT_PATH,      /* a readable file */
    KT_TILING,    /* -1, 0, 1 or a boolean */
    KT_BOOL,      /* 0, 1 or a boolean */
    KT_DIR,       /* a readable folder */
    KT_LORAS      /* LoRA files: "PATH[:W[:UNET_W]]" or {"path", "te", "unet"}, one or an array (stored as objects) */
} ktype;

typedef struct keydef {
    const char *key, *alias;
    ktype type;
    double lo, hi;
    const char *choices; /* KT_ENUM: comma-separated */
} keydef;

/* The order here is the order of keys in a job's canonical object (and so in manifest lines). */
static const keydef KEYS[] = {
    {"prompt", NULL, KT_PROMPT, 0, 0, NULL},
    {"negative", "negative_prompt", KT_TEXT, 0, 0, NULL},
    {"name", NULL, KT_STR, 0, 0, NULL},
    {"output", NULL, KT_STR, 0, 0, NULL},
    {"seed", NULL, KT_SEED, 0, 0, NULL},
    {"seeds", NULL, KT_SEEDS, 0, 0, NULL},
    {"seed_range", NULL, KT_SEEDS, 0, 0, NULL},
    {"count", NULL, KT_INT, 1, JOBS_MAX_SEEDS, NULL},
    {"size", NULL, KT_SIZE, 0, 0, NULL},
    {"width", NULL, KT_INT8, 8, 8192, NULL},
    {"height", NULL, KT_INT8, 8, 8192, NULL},
    {"steps", NULL, KT_INT, 1, 1000, NULL},
    {"cfg", "cfg_scale", KT_NUM, 0, 100, NULL},
    {"guidance_rescale", NULL, KT_NUM, 0, 1, NULL},
    {"sampler", NULL, KT_SAMPLER, 0, 0, NULL},
    {"scheduler", NULL, KT_SCHEDULER, 0, 0, NULL},
    {"convention", NULL, KT_ENUM, 0, 0, "diffusers,kdiffusion"},
    {"eta", NULL, KT_NUM, 0, 1, NULL},
    {"rng", NULL, KT_ENUM, 0, 0, "cuda,cpu"},
    {"sampler_rng", NULL, KT_ENUM, 0, 0, "cuda,cpu"},
    {"clip_skip", NULL, KT_INT, 0, 12, NULL},
    {"vae_tiling", NULL, KT_TILING, -1, 1, NULL},
    {"variation_seed", NULL, KT_SEEDS, 0, 0, NULL},
    {"variation_strength", NULL, KT_NUM, 0, 1, NULL},
    {"init_image", NULL, KT_PATH, 0, 0, NULL},
    {"strength", NULL, KT_NUM, 0, 1, NULL},
    {"mask", NULL, KT_PATH, 0, 0, NULL},
    {"mask_blur", NULL, KT_INT, 0, 128, NULL},
    {"inpaint_only_masked", NULL, KT_BOOL, 0, 1, NULL},
    {"inpaint_padding", NULL, KT_INT, 0, 8192, NULL},
    {"inpaint_fill", "masked_content", KT_ENUM, 0, 0, "original,fill,latent noise,latent nothing"},
    {"timestep_spacing", NULL, KT_ENUM, 0, 0, "leading,linspace,trailing"},
    {"clip_skip_negative", NULL, KT_INT, 0, 12, NULL},
    {"lora", "loras", KT_LORAS, 0, 0, NULL},
    {"lora_dir", NULL, KT_DIR, 0, 0, NULL},
    {"embedding_dir", "embd_dir", KT_DIR, 0, 0, NULL},
    {"batch_size", NULL, KT_INT, 1, 64, NULL},
    /* ControlNet: a folder or file (checked when it loads); the image may be a {a.png|b.png} variation group */
    {"control_net", NULL, KT_STR, 0, 0, NULL},
    {"control_image", NULL, KT_STR, 0, 0, NULL},
    {"control_strength", NULL, KT_NUM, 0, 10, NULL},
    {"control_preprocess", NULL, KT_ENUM, 0, 0, "none,canny"},
    {"hires_scale", NULL, KT_NUM, 1, 8, NULL},
    {"hires_width", NULL, KT_INT8, 8, 8192, NULL},
    {"hires_height", NULL, KT_INT8, 8, 8192, NULL},
    {"hires_steps", NULL, KT_INT, 0, 1000, NULL},
    {"hires_denoise", NULL, KT_NUM, 0, 1, NULL},
    {"hires_upscaler", NULL, KT_ENUM, 0, 0, "latent,latent-bicubic,latent-nearest-exact,lanczos,none"},
};
#define NKEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

static int key_index(const char *name) {
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(KEYS[i].key, name) || (KEYS[i].alias && !strcmp(KEYS[i].alias, name))) return i;
    return -1;
}
#define K(name) key_index(name)

/* ---- errors ---- */

void jobs_error_add(jobs_errors *e, const char *fmt, ...) {
    e->total++;
    if (e->n == JOBS_MAX_ERRORS) return;
    va_list ap;
    va_start(ap, fmt);
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    e->msg[e->n] = strdup(buf);
    if (e->msg[e->n]) e->n++;
}

void jobs_errors_free(jobs_errors *e) {
    for (int i = 0; i < e->n; i++) free(e->msg[i]);
    memset(e, 0, sizeof *e);
}

/* ---- value checks ---- */

int jobs_name_equal(const char *a, const char *b) {
    for (;;) {
        while (*a == ' ' || *a == '_' || *a == '-') a++;
        while (*b == ' ' || *b == '_' || *b == '-') b++;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
        if (!*a) return 1;
        a++;
        b++;
    }
}

/* " (did you mean \"steps\"?)" or "" */
static void suggest(char *out, size_t cap, const char *got, const char *const *names, int n) {
    int best = 3;
    const char *pick = NULL;
    for (int i = 0; i < n; i++) {
        int d = clikit_edit_distance(got, names[i]);
        if (d < best) { best = d; pick = names[i]; }
    }
    if (pick) snprintf(out, cap, " (did you mean \"%s\"?)", pick);
    else out[0] = 0;
}

static const char *json_type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    return "an object";
}

/* One seed from a number (exact integers up to 2^53) or a decimal string. */
static int seed_value(const cJSON *v, uint64_t *out, char *err, size_t cap) {
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!(d >= 0) || d != floor(d)) { snprintf(err, cap, "%g is not a seed (a whole number >= 0)", d); return -1; }
        if (d > 9007199254740992.0) {
            snprintf(err, cap, "%.17g is too large for a JSON number to hold exactly; write the seed as a string", d);
            return -1;
        }
        *out = (uint64_t)d;
        return 0;
    }
    if (cJSON_IsString(v)) {
        if (expand_parse_u64(v->valuestring, out) != 0) {
            snprintf(err, cap, "\"%.60s\" is not a seed (a whole number 0..2^64-1)", v->valuestring);
            return -1;
        }
        return 0;
    }
    snprintf(err, cap, "a seed must be a number or a string of digits, not %s", json_type_name(v));
    return -1;
}

/* A seed list: number, "A:B,C" string, or an array of numbers and such strings. */
static int seeds_value(const cJSON *v, uint64_t **out, int *n, char *err, size_t cap) {
    *out = NULL;
    *n = 0;
    if (cJSON_IsString(v)) return expand_seeds(v->valuestring, JOBS_MAX_SEEDS, out, n, err, cap);
    if (cJSON_IsNumber(v)) {
        uint64_t s;
        if (seed_value(v, &s, err, cap) != 0) return -1;
        if (!(*out = malloc(sizeof **out))) { snprintf(err, cap, "out of memory"); return -1; }
        **out = s;
        *n = 1;
        return 0;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0) {
        snprintf(err, cap, "must be a seed, a list like \"100:115\" or a non-empty array of seeds, not %s",
                 cJSON_IsArray(v) ? "an empty array" : json_type_name(v));
        return -1;
    }
    uint64_t *all = NULL;
    int total = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        uint64_t *part;
        int np;
        if (seeds_value(it, &part, &np, err, cap) != 0 || cJSON_IsArray(it)) {
            if (cJSON_IsArray(it)) { free(part); snprintf(err, cap, "seed arrays do not nest"); }
            free(all);
            return -1;
        }
        if (total + np > JOBS_MAX_SEEDS) {
            free(part);
            free(all);
            snprintf(err, cap, "more than %d seeds", JOBS_MAX_SEEDS);
            return -1;
        }
        uint64_t *grown = realloc(all, (size_t)(total + np) * sizeof *all);
        if (!grown) { free(part); free(all); snprintf(err, cap, "out of memory"); return -1; }
        all = grown;
        memcpy(all + total, part, (size_t)np * sizeof *all);
        total += np;
        free(part);
    }
    *out = all;
    *n = total;
    return 0;
}

/* One side of "WxH": digits only, at most 6 of them (the checks that follow allow up to 8192). */
static int size_side(const char **s, int *out) {
    int v = 0, n = 0;
    for (; **s >= '0' && **s <= '9'; (*s)++)
        if (++n > 6) return -1;
        else v = v * 10 + (**s - '0');
    *out = v;
    return n ? 0 : -1;
}

int jobs_parse_size(const char *s, int *w, int *h) {
    if (size_side(&s, w) != 0 || (*s != 'x' && *s != 'X')) return -1;
    s++;
    return size_side(&s, h) == 0 && !*s ? 0 : -1;
}

static int check_dim(int v, char *err, size_t cap, const char *what) {
    if (v < 8 || v > 8192 || v % 8) { /* (8192: the library's limit, sd_check_params; checked here before any model loads) */
        snprintf(err, cap, "%s%d is not a multiple of 8 from 8 to 8192", what, v);
        return -1;
    }
    return 0;
}

/* stat, never open: opening a FIFO blocks until someone writes to it */
static int readable(const char *path, int folder, char *err, size_t cap) {
    struct stat sb;
    if (stat(path, &sb) == 0 && (folder ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode))) {
        snprintf(err, cap, "\"%s\" is not a %s", path, folder ? "folder" : "regular file");
        return -1;
    }
    if (stat(path, &sb) != 0 || access(path, folder ? R_OK | X_OK : R_OK) != 0) {
        snprintf(err, cap, "%s \"%s\" cannot be read", folder ? "folder" : "file", path);
        return -1;
    }
    return 0;
}

/* One LoRA of a "lora" value, as the object {"path", "te", "unet"} (a new item), or NULL with err. */
static cJSON *lora_entry(const cJSON *v, char *err, size_t cap) {
    sd_lora l = {NULL, 1.0f, 1.0f};
    char *copy = NULL;
    if (cJSON_IsString(v)) {
        if (!(copy = strdup(v->valuestring))) { snprintf(err, cap, "out of memory"); return NULL; }
        if (sd_lora_parse(copy, &l) != SD_OK) { snprintf(err, cap, "\"%.60s\": no file given", v->valuestring); free(copy); return NULL; }
    } else if (cJSON_IsObject(v)) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, "path"), *te = cJSON_GetObjectItemCaseSensitive(v, "te"),
                    *un = cJSON_GetObjectItemCaseSensitive(v, "unet");
        if (!cJSON_IsString(p) || (te && !cJSON_IsNumber(te)) || (un && !cJSON_IsNumber(un))) {
            snprintf(err, cap, "a LoRA object needs \"path\" (a string) and may have numbers \"te\" and \"unet\"");
            return NULL;
        }
        l.path = p->valuestring;
        if (te) l.te_weight = l.unet_weight = (float)te->valuedouble;
        if (un) l.unet_weight = (float)un->valuedouble;
    } else {
        snprintf(err, cap, "a LoRA is \"PATH[:WEIGHT[:UNET_WEIGHT]]\" or an object, not %s", json_type_name(v));
        return NULL;
    }
    cJSON *o = NULL;
    if (!isfinite(l.te_weight) || !isfinite(l.unet_weight) || fabsf(l.te_weight) > 1e4f || fabsf(l.unet_weight) > 1e4f)
        snprintf(err, cap, "\"%s\": the strengths must be numbers within +-10000", l.path);
    else if (readable(l.path, 0, err, cap) != 0) {
        struct stat sb; /* "file:1:nan": a file with strengths that are no numbers */
        for (char *c; copy && (c = strrchr(copy, ':'));) {
            *c = 0;
            if (stat(copy, &sb) == 0) {
                snprintf(err, cap, "\"%s\": \"%s\" is not WEIGHT[:UNET_WEIGHT] (numbers)", copy, v->valuestring + (c - copy) + 1);
                break;
            }
        }
    } else if ((o = cJSON_CreateObject())) {
        cJSON_AddStringToObject(o, "path", l.path);
        cJSON_AddNumberToObject(o, "te", l.te_weight);
        cJSON_AddNumberToObject(o, "unet", l.unet_weight);
    }
    free(copy);
    return o;
}

/* Checks one value against its key; on success the (possibly converted) value to store is returned in *store
 * (a new item), or NULL for keys resolved elsewhere (seeds, size). */
static int check_value(const keydef *k, const cJSON *v, const jobs_rules *rules, cJSON **store, char *err, size_t cap) {
    *store = NULL;
    switch (k->type) {
    case KT_STR:
    case KT_PROMPT:
    case KT_TEXT:
    case KT_PATH:
        if (!cJSON_IsString(v)) { snprintf(err, cap, "must be a string, not %s", json_type_name(v)); return -1; }
        if (k->type == KT_TEXT && strlen(v->valuestring) > SD_PROMPT_MAX_BYTES) {
            snprintf(err, cap, "is %zu bytes long: at most %d are accepted", strlen(v->valuestring), SD_PROMPT_MAX_BYTES);
            return -1;
        }
        if (k->type == KT_PROMPT) {
            const char *s = v->valuestring;
            while (isspace((unsigned char)*s)) s++;
            if (!*s) { snprintf(err, cap, "is empty"); return -1; }
        }
        if (k->type == KT_PATH && readable(v->valuestring, 0, err, cap) != 0) return -1;
        *store = cJSON_CreateString(v->valuestring);
        return 0;
    case KT_DIR:
        if (!cJSON_IsString(v)) { snprintf(err, cap, "must be a string, not %s", json_type_name(v)); return -1; }
        if (readable(v->valuestring, 1, err, cap) != 0) return -1;
        *store = cJSON_CreateString(v->valuestring);
        return 0;
    case KT_LORAS: {
        cJSON *all = cJSON_CreateArray();
        if (!all) { snprintf(err, cap, "out of memory"); return -1; }
        const cJSON *it;
        if (cJSON_IsArray(v)) {
            cJSON_ArrayForEach(it, v) {
                cJSON *e = lora_entry(it, err, cap);
                if (!e) { cJSON_Delete(all); return -1; }
                cJSON_AddItemToArray(all, e);
            }
        } else {
            cJSON *e = lora_entry(v, err, cap);
            if (!e) { cJSON_Delete(all); return -1; }
            cJSON_AddItemToArray(all, e);
        }
        *store = all;
        return 0;
    }
    case KT_INT:
    case KT_INT8:
    case KT_NUM:
    case KT_TILING:
    case KT_BOOL: {
        double d;
        if (k->type == KT_TILING && cJSON_IsBool(v)) d = cJSON_IsTrue(v) ? 1 : -1;
        else if (k->type == KT_BOOL && cJSON_IsBool(v)) d = cJSON_IsTrue(v);
        else if (!cJSON_IsNumber(v)) { snprintf(err, cap, "must be a number, not %s", json_type_name(v)); return -1; }
        else d = v->valuedouble;
        if (k->type != KT_NUM && d != floor(d)) { snprintf(err, cap, "must be a whole number, not %g", d); return -1; }
        if (!(d >= k->lo && d <= k->hi)) { snprintf(err, cap, "%g is out of range %g..%g", d, k->lo, k->hi); return -1; }
        if (k->type == KT_INT8 && check_dim((int)d, err, cap, "") != 0) return -1;
        *store = cJSON_CreateNumber(d);
        return 0;
    }
    case KT_SEED: {
        uint64_t s;
        return seed_value(v, &s, err, cap);
    }
    case KT_SEEDS: {
        uint64_t *s;
        int n;
        int rc = seeds_value(v, &s, &n, err, cap);
        free(s);
        return rc;
    }
    case KT_SIZE: {
        int w, h;
        if (!cJSON_IsString(v) || jobs_parse_size(v->valuestring, &w, &h) != 0) {
            snprintf(err, cap, "must be a string \"WIDTHxHEIGHT\" such as \"512x768\"");
            return -1;
        }
        if (check_dim(w, err, cap, "width ") != 0 || check_dim(h, err, cap, "height ") != 0) return -1;
        return 0;
    }
    case KT_ENUM:
    case KT_SAMPLER:
    case KT_SCHEDULER: {
        if (!cJSON_IsString(v)) { snprintf(err, cap, "must be a string, not %s", json_type_name(v)); return -1; }
        const char *const *list = NULL;
        int n = 0;
        const char *enum_names[8];
        char buf[128];
        if (k->type == KT_ENUM) {
            snprintf(buf, sizeof buf, "%s", k->choices);
            char *save = NULL;
            for (char *t = strtok_r(buf, ",", &save); t && n < 8; t = strtok_r(NULL, ",", &save)) enum_names[n++] = t;
            list = enum_names;
        } else if (rules && k->type == KT_SAMPLER) {
            list = rules->samplers;
            n = rules->nsamplers;
        } else if (rules) {
            list = rules->schedulers;
            n = rules->nschedulers;
        }
        const char *canon = v->valuestring;
        if (list) {
            int found = 0;
            for (int i = 0; i < n && !found; i++)
                if (jobs_name_equal(list[i], v->valuestring)) { found = 1; canon = list[i]; }
            if (!found) {
                char hint[96], all[512] = "";
                suggest(hint, sizeof hint, v->valuestring, list, n);
                for (int i = 0; i < n; i++) {
                    size_t l = strlen(all);
                    snprintf(all + l, sizeof all - l, "%s%s", i ? ", " : "", list[i]);
                }
                snprintf(err, cap, "\"%.40s\" is not one of: %s%s", v->valuestring, all, hint);
                return -1;
            }
        }
        *store = cJSON_CreateString(canon); /* the canonical spelling, so image keys do not depend on it */
        return 0;
    }
    }
    return -1;
}

/* ---- one job: line values over defaults ---- */

static void job_free(jobs_job *j) {
    cJSON_Delete(j->obj);
    free(j->seeds);
    free(j->vseeds);
    memset(j, 0, sizeof *j);
}

/* Gathers the values of `obj` by key index; reports unknown and repeated keys. Returns the error count. */
static int gather(const cJSON *obj, const cJSON **vals, const char *where, jobs_errors *errs) {
    int bad = 0;
    for (int i = 0; i < NKEYS; i++) vals[i] = NULL;
    if (!obj) return 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        int k = key_index(it->string);
        if (k < 0) {
            const char *names[NKEYS];
            for (int i = 0; i < NKEYS; i++) names[i] = KEYS[i].key;
            char hint[96];
            suggest(hint, sizeof hint, it->string, names, NKEYS);
            jobs_error_add(errs, "%s: unknown key \"%.60s\"%s", where, it->string, hint);
            bad++;
        } else if (vals[k]) {
            jobs_error_add(errs, "%s: \"%s\" is given twice%s", where, KEYS[k].key,
                           strcmp(it->string, KEYS[k].key) ? " (under two names)" : "");
            bad++;
        } else {
            vals[k] = it;
        }
    }
    return bad;
}

/* Builds and checks the job from line values L over defaults D. `line` 0 checks the defaults alone. */
static int build_job(const cJSON **L, const cJSON **D, int line, const char *where, const jobs_rules *rules,
                     jobs_job *job, jobs_errors *errs) {
    char err[768];
    int bad = 0;
    memset(job, 0, sizeof *job);
    job->line = line;
    job->obj = cJSON_CreateObject();
    if (!job->obj) { jobs_error_add(errs, "%s: out of memory", where); return 1; }

    /* every value, from the line or else the defaults, checked and stored in table order */
    const cJSON *V[NKEYS];
    for (int i = 0; i < NKEYS; i++) {
        V[i] = L[i] ? L[i] : D[i];
        if (!V[i]) continue;
        cJSON *store;
        if (check_value(&KEYS[i], V[i], rules, &store, err, sizeof err) != 0) {
            jobs_error_add(errs, "%s: \"%s\" %s", where, KEYS[i].key, err);
            bad++;
            continue;
        }
        if (store && (!strcmp(KEYS[i].key, "width") || !strcmp(KEYS[i].key, "height") || !strcmp(KEYS[i].key, "count"))) {
            cJSON_Delete(store); /* resolved below: the size, and the seeds (each image has its own) */
            store = NULL;
        }
        if (store) cJSON_AddItemToObject(job->obj, KEYS[i].key, store);
    }

    /* size: "size" and width/height of the same layer clash; a line's either overrides the defaults' */
    for (int layer = 0; layer < 2; layer++) {
        const cJSON **X = layer ? D : L;
        if (X[K("size")] && (X[K("width")] || X[K("height")])) {
            jobs_error_add(errs, "%s: give \"size\" or \"width\"/\"height\", not both", where);
            bad++;
        }
    }
    if (!bad) {
        int w = 0, h = 0;
        const cJSON *size = L[K("size")] ? L[K("size")] : D[K("size")];
        if (size) jobs_parse_size(size->valuestring, &w, &h);
        if (L[K("width")]) w = (int)L[K("width")]->valuedouble;
        else if (!L[K("size")] && D[K("width")]) w = (int)D[K("width")]->valuedouble;
        if (L[K("height")]) h = (int)L[K("height")]->valuedouble;
        else if (!L[K("size")] && D[K("height")]) h = (int)D[K("height")]->valuedouble;
        if (w) cJSON_AddNumberToObject(job->obj, "width", w);
        if (h) cJSON_AddNumberToObject(job->obj, "height", h);
    }

    /* seeds */
    if (!bad) {
        const cJSON *list = NULL;
        int ls = !!L[K("seeds")] + !!L[K("seed_range")], ds = !!D[K("seeds")] + !!D[K("seed_range")];
        if (ls > 1 || ds > 1) {
            jobs_error_add(errs, "%s: give \"seeds\" or \"seed_range\", not both", where);
            bad++;
        } else if (ls && (L[K("seed")] || L[K("count")])) {
            if (line)
                jobs_error_add(errs, "%s: \"%s\" cannot be combined with \"seed\" or \"count\"", where,
                               L[K("seeds")] ? "seeds" : "seed_range");
            else /* the command line's own values, checked alone */
                jobs_error_add(errs, "%s: --seed-range cannot be combined with --seed or --count", where);
            bad++;
        } else {
            if (ls) list = L[K("seeds")] ? L[K("seeds")] : L[K("seed_range")];
            else if (!L[K("seed")] && !L[K("count")] && ds) list = D[K("seeds")] ? D[K("seeds")] : D[K("seed_range")];
            if (list) {
                if (seeds_value(list, &job->seeds, &job->nseeds, err, sizeof err) != 0) {
                    jobs_error_add(errs, "%s: seeds %s", where, err);
                    bad++;
                }
            } else {
                uint64_t seed = rules ? rules->default_seed : 0;
                const cJSON *sv = L[K("seed")] ? L[K("seed")] : D[K("seed")];
                if (sv) seed_value(sv, &seed, err, sizeof err);
                const cJSON *cv = L[K("count")] ? L[K("count")] : D[K("count")];
                int count = cv ? (int)cv->valuedouble : 1;
                if (seed > UINT64_MAX - (uint64_t)(count - 1)) {
                    jobs_error_add(errs, "%s: seed + count passes 2^64-1", where);
                    bad++;
                } else if (!(job->seeds = malloc((size_t)count * sizeof *job->seeds))) {
                    jobs_error_add(errs, "%s: out of memory", where);
                    bad++;
                } else {
                    for (int i = 0; i < count; i++) job->seeds[i] = seed + (uint64_t)i;
                    job->nseeds = count;
                }
            }
        }
        const cJSON *vs = V[K("variation_seed")];
        if (!bad && vs && seeds_value(vs, &job->vseeds, &job->nvseeds, err, sizeof err) != 0) {
            jobs_error_add(errs, "%s: \"variation_seed\" %s", where, err);
            bad++;
        }
        if (!bad && (long long)job->nseeds * (job->nvseeds ? job->nvseeds : 1) > JOBS_MAX_SEEDS) {
            jobs_error_add(errs, "%s: seeds x variation seeds makes more than %d images", where, JOBS_MAX_SEEDS);
            bad++;
        }
    }

    /* parameters that only make sense together (a line may complete what the command line starts) */
    if (!bad && line) {
        const cJSON *vstr = V[K("variation_strength")];
        int has_vs = V[K("variation_seed")] != NULL, has_str = vstr && vstr->valuedouble > 0;
        if (has_vs != has_str) {
            jobs_error_add(errs, "%s: %s", where,
                           has_vs ? "\"variation_seed\" needs \"variation_strength\" > 0"
                                  : "\"variation_strength\" needs \"variation_seed\"");
            bad++;
        }
        if (V[K("mask")] && !V[K("init_image")]) {
            jobs_error_add(errs, "%s: \"mask\" needs \"init_image\"", where);
            bad++;
        }
        if (!V[K("control_net")] != !V[K("control_image")]) {
            jobs_error_add(errs, "%s: \"control_net\" and \"control_image\" go together", where);
            bad++;
        }
        if (V[K("strength")] && !V[K("init_image")]) {
            jobs_error_add(errs, "%s: \"strength\" needs \"init_image\"", where);
            bad++;
        }
        static const char *need_mask[4] = {"mask_blur", "inpaint_only_masked", "inpaint_padding", "inpaint_fill"};
        for (int q = 0; q < 4; q++)
            if (V[K(need_mask[q])] && !V[K("mask")]) {
                jobs_error_add(errs, "%s: \"%s\" needs \"mask\"", where, need_mask[q]);
                bad++;
            }
        int hires = V[K("hires_scale")] || V[K("hires_width")] || V[K("hires_height")];
        const char *hires_keys[] = {"hires_steps", "hires_denoise", "hires_upscaler"};
        for (int i = 0; i < 3 && !hires && !bad; i++)
            if (V[K(hires_keys[i])]) {
                jobs_error_add(errs, "%s: \"%s\" needs \"hires_scale\" or \"hires_width\"/\"hires_height\"", where, hires_keys[i]);
                bad++;
            }
        if (hires && V[K("init_image")]) {
            jobs_error_add(errs, "%s: the hires fix (\"hires_*\") is for txt2img: not with \"init_image\"", where);
            bad++;
        }
        if (hires && V[K("control_net")]) {
            jobs_error_add(errs, "%s: the hires fix (\"hires_*\") with \"control_net\" is not supported yet", where);
            bad++;
        }
    }
    if (line && !V[K("prompt")] && !bad) {
        jobs_error_add(errs, "%s: no \"prompt\"", where);
        bad++;
    }
    if (bad) { job_free(job); return bad; }
    job->prompt = jobs_str(job, "prompt", NULL);
    job->name = jobs_str(job, "name", NULL);
    job->output = jobs_str(job, "output", NULL);
    return 0;
}

/* ---- files ---- */

static jobs_format detect_format(const char *source, const char *text, size_t len) {
    const char *dot = strrchr(source, '.');
    if (dot && (!strcmp(dot, ".jsonl") || !strcmp(dot, ".ndjson") || !strcmp(dot, ".json"))) return JOBS_JSONL;
    if (dot && !strcmp(dot, ".txt")) return JOBS_TEXT;
    /* otherwise: JSON Lines if the first content line is a JSON object */
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        size_t b = i;
        while (b < e && isspace((unsigned char)text[b])) b++;
        if (b < e && text[b] != '#') {
            char *l = strndup(text + b, e - b);
            cJSON *j = l ? cJSON_Parse(l) : NULL;
            int obj = cJSON_IsObject(j);
            cJSON_Delete(j);
            free(l);
            return obj ? JOBS_JSONL : JOBS_TEXT;
        }
        i = e + 1;
    }
    return JOBS_TEXT;
}

/* Finds the escape \u0000 in a string of the valid JSON text `j`: cJSON ends its C strings at that NUL, so
 * "a\u0000b" would silently become "a". Returns 0 when there is none; else 1 with the top-level key it is under (its
 * raw text, cut to cap) in key, and *in_key set when it is in that key itself. */
static int find_nul_escape(const char *j, char *key, size_t cap, int *in_key) {
    int depth = 0, expect_key = 0;
    const char *kb = "", *ke = kb; /* the last top-level key's raw text */
    for (const char *p = j; *p; p++) {
        if (*p == '"') {
            const char *b = ++p;
            for (; *p && *p != '"'; p++) {
                if (*p != '\\') continue;
                if (p[1] == 'u' && !strncmp(p + 2, "0000", 4)) {
                    *in_key = depth == 1 && expect_key;
                    if (*in_key) kb = b, ke = p; /* the key up to the escape */
                    snprintf(key, cap, "%.*s", (int)(ke - kb), kb);
                    return 1;
                }
                if (p[1]) p++; /* the escaped character, which may be a quote */
            }
            if (!*p) return 0;
            if (depth == 1 && expect_key) kb = b, ke = p;
        } else if (*p == '{' || *p == '[') {
            depth++;
            expect_key = depth == 1 && *p == '{';
        } else if (*p == '}' || *p == ']') {
            depth--;
        } else if (depth == 1 && (*p == ',' || *p == ':')) {
            expect_key = *p == ',';
        }
    }
    return 0;
}

int jobs_parse(const char *text, size_t len, const char *source, jobs_format fmt, const cJSON *defaults,
               const jobs_rules *rules, jobs_list *out, jobs_errors *errs) {
    memset(out, 0, sizeof *out);
    int errors0 = errs->total;
    const cJSON *D[NKEYS], *L[NKEYS];

    /* the defaults alone first, so a bad flag is reported once, not on every line */
    if (gather(defaults, D, "command line", errs) == 0) {
        jobs_job probe;
        if (build_job(D, (const cJSON *[NKEYS]){0}, 0, "command line", rules, &probe, errs) == 0) job_free(&probe);
    }
    if (errs->total > errors0) return errs->total - errors0;

    out->format = fmt == JOBS_AUTO ? detect_format(source, text, len) : fmt;
    int cap = 0, lineno = 0;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        lineno++;
        size_t line_start = i, b = i, t = e;
        i = e + 1;
        while (b < t && isspace((unsigned char)text[b])) b++;
        while (t > b && isspace((unsigned char)text[t - 1])) t--;
        if (b == t || text[b] == '#') continue;
        char where[600];
        snprintf(where, sizeof where, "%s:%d", source, lineno);
        if (memchr(text + b, 0, t - b)) { jobs_error_add(errs, "%s: NUL byte in line", where); continue; }
        char *l = strndup(text + b, t - b);
        if (!l) { jobs_error_add(errs, "%s: out of memory", where); break; }
        cJSON *obj = NULL;
        if (out->format == JOBS_JSONL) {
            const char *end = NULL;
            obj = cJSON_ParseWithOpts(l, &end, 1);
            if (!obj) {
                size_t col = (b - line_start) + (end ? (size_t)(end - l) : 0) + 1;
                jobs_error_add(errs, "%s: invalid JSON at column %zu", where, col);
                free(l);
                continue;
            }
            if (!cJSON_IsObject(obj)) {
                jobs_error_add(errs, "%s: a job must be a JSON object {...}, not %s", where, json_type_name(obj));
                cJSON_Delete(obj);
                free(l);
                continue;
            }
            char key[64];
            int in_key;
            if (find_nul_escape(l, key, sizeof key, &in_key)) {
                if (in_key) jobs_error_add(errs, "%s: the key starting \"%s\" holds \\u0000 (a NUL character, which would cut it short)", where, key);
                else jobs_error_add(errs, "%s: \"%s\": a string holds \\u0000 (a NUL character, which would cut it short)", where, key);
                cJSON_Delete(obj);
                free(l);
                continue;
            }
        } else {
            obj = cJSON_CreateObject();
            if (obj) cJSON_AddStringToObject(obj, "prompt", l);
        }
        free(l);
        jobs_job job;
        if (gather(obj, L, where, errs) == 0 && build_job(L, D, lineno, where, rules, &job, errs) == 0) {
            if (out->count == cap) {
                cap = cap ? cap * 2 : 16;
                jobs_job *grown = realloc(out->jobs, (size_t)cap * sizeof *grown);
                if (!grown) { job_free(&job); cJSON_Delete(obj); jobs_error_add(errs, "%s: out of memory", where); break; }
                out->jobs = grown;
            }
            out->jobs[out->count++] = job;
        }
        cJSON_Delete(obj);
    }
    if (out->count == 0 && errs->total == errors0) jobs_error_add(errs, "%s: no jobs (only blank or # lines)", source);
    return errs->total - errors0;
}

void jobs_list_free(jobs_list *l) {
    for (int i = 0; i < l->count; i++) job_free(&l->jobs[i]);
    free(l->jobs);
    memset(l, 0, sizeof *l);
}

/* ---- reading a job ---- */

double jobs_num(const jobs_job *job, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(job->obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

const char *jobs_str(const jobs_job *job, const char *key, const char *def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(job->obj, key);
    return cJSON_IsString(v) ? v->valuestring : def;
}

void jobs_apply(const jobs_job *job, sd_gen_params *p) { jobs_apply_object(job->obj, p); }

void jobs_apply_object(const cJSON *obj, sd_gen_params *p) {
    const jobs_job view = {.obj = (cJSON *)obj}; /* read-only: the accessors take a job */
    const jobs_job *job = &view;
    p->negative_prompt = jobs_str(job, "negative", p->negative_prompt);
    p->width = (int)jobs_num(job, "width", p->width);
    p->height = (int)jobs_num(job, "height", p->height);
    p->steps = (int)jobs_num(job, "steps", p->steps);
    p->cfg_scale = (float)jobs_num(job, "cfg", p->cfg_scale);
    p->guidance_rescale = (float)jobs_num(job, "guidance_rescale", p->guidance_rescale);
    p->sampler = jobs_str(job, "sampler", p->sampler);
    p->scheduler = jobs_str(job, "scheduler", p->scheduler);
    p->convention = jobs_str(job, "convention", p->convention);
    p->eta = (float)jobs_num(job, "eta", p->eta);
    p->rng = jobs_str(job, "rng", p->rng);
    p->sampler_rng = jobs_str(job, "sampler_rng", p->sampler_rng);
    p->clip_skip = (int)jobs_num(job, "clip_skip", p->clip_skip);
    p->vae_tiling = (int)jobs_num(job, "vae_tiling", p->vae_tiling);
    p->variation_strength = (float)jobs_num(job, "variation_strength", p->variation_strength);
    p->strength = (float)jobs_num(job, "strength", p->strength);
    p->mask_blur = (int)jobs_num(job, "mask_blur", p->mask_blur);
    p->inpaint_only_masked = (int)jobs_num(job, "inpaint_only_masked", p->inpaint_only_masked);
    p->inpaint_padding = (int)jobs_num(job, "inpaint_padding", p->inpaint_padding);
    p->inpaint_fill = jobs_str(job, "inpaint_fill", p->inpaint_fill);
    p->timestep_spacing = jobs_str(job, "timestep_spacing", p->timestep_spacing);
    p->clip_skip_negative = (int)jobs_num(job, "clip_skip_negative", p->clip_skip_negative);
    p->lora_dir = jobs_str(job, "lora_dir", p->lora_dir);
    p->embedding_dir = jobs_str(job, "embedding_dir", p->embedding_dir);
    p->hires_scale = (float)jobs_num(job, "hires_scale", p->hires_scale);
    p->hires_width = (int)jobs_num(job, "hires_width", p->hires_width);
    p->hires_height = (int)jobs_num(job, "hires_height", p->hires_height);
    p->hires_steps = (int)jobs_num(job, "hires_steps", p->hires_steps);
    p->hires_denoise = (float)jobs_num(job, "hires_denoise", p->hires_denoise);
    p->hires_upscaler = jobs_str(job, "hires_upscaler", p->hires_upscaler);
}

int jobs_loras(const cJSON *obj, sd_lora **out) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "lora"), *it;
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0, k = 0;
    *out = NULL;
    if (!n) return cJSON_IsArray(a) ? 0 : -1;
    if (!(*out = calloc((size_t)n, sizeof **out))) return -2;
    cJSON_ArrayForEach(it, a) { /* checked objects: path, te, unet */
        (*out)[k].path = cJSON_GetObjectItemCaseSensitive(it, "path")->valuestring;
        (*out)[k].te_weight = (float)cJSON_GetObjectItemCaseSensitive(it, "te")->valuedouble;
        (*out)[k].unet_weight = (float)cJSON_GetObjectItemCaseSensitive(it, "unet")->valuedouble;
        k++;
    }
    return k;
}

/* ---- command-line values ---- */

cJSON *jobs_flag_value(const char *key, const char *value, const jobs_rules *rules, char *err, size_t errlen) {
    int k = key_index(key);
    if (k < 0) { snprintf(err, errlen, "\"%s\" is not a job key", key); return NULL; }
    cJSON *v;
    switch (KEYS[k].type) {
    case KT_INT:
    case KT_INT8:
    case KT_NUM:
    case KT_TILING:
    case KT_BOOL: {
        /* the whole string, decimal and finite: "12abc", "0x10", "nan", "inf", "1e999" (strtod: inf) are refused */
        char *end;
        double d = strtod(value, &end);
        if (end == value || *end || !isfinite(d) || value[strspn(value, "0123456789+-.eE")]) { /* decimal only, no 0x */
            snprintf(err, errlen, "\"%.60s\" is not a number", value);
            return NULL;
        }
        v = cJSON_CreateNumber(d);
        break;
    }
    default:
        v = cJSON_CreateString(value);
    }
    if (!v) { snprintf(err, errlen, "out of memory"); return NULL; }
    cJSON *store = NULL;
    if (check_value(&KEYS[k], v, rules, &store, err, errlen) != 0) { cJSON_Delete(v); return NULL; }
    if (!store) return v; /* seeds, size: checked, kept as given */
    cJSON_Delete(v);
    return store;
}

const jobs_rules *jobs_library_rules(void) {
    static const char *samplers[64], *schedulers[64];
    static jobs_rules r;
    if (!r.samplers) {
        sd_gen_params defaults;
        sd_gen_params_init(&defaults);
        r.default_seed = defaults.seed;
        for (int i = 0; i < sd_sampler_count() && i < 64; i++) samplers[r.nsamplers++] = sd_sampler_name(i, NULL);
        for (int i = 0; i < sd_scheduler_count() && i < 64; i++) schedulers[r.nschedulers++] = sd_scheduler_name(i, NULL);
        r.samplers = samplers;
        r.schedulers = schedulers;
    }
    return &r;
}
