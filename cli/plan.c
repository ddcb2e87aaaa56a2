/* plan.c — the batch image list: prompt expansion, output names, collisions, shards, per-image keys. */
#include "plan.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../sd.h"
#include "expand.h"

/* ---- names ---- */

void plan_slug(const char *text, size_t max, char *out, size_t cap) {
    size_t n = 0, lim = max && max < cap - 1 ? max : cap - 1;
    int dash = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n < lim; p++) {
        if (isalnum(*p) && *p < 128) {
            if (dash && n) { out[n++] = '-'; if (n == lim) break; }
            out[n++] = (char)tolower(*p);
            dash = 0;
        } else {
            dash = 1;
        }
    }
    while (n && out[n - 1] == '-') n--;
    out[n] = 0;
    if (!n) snprintf(out, cap, "prompt");
}

static int var_number(const plan_vars *v, const char *name, long long *out, int *unset) {
    const plan_image *im = v->im;
    *unset = 0;
    if (!strcmp(name, "index")) *out = im->index;
    else if (!strcmp(name, "job")) *out = v->job_number;
    else if (!strcmp(name, "line")) *out = v->job ? v->job->line : 0;
    else if (!strcmp(name, "n")) *out = im->n;
    else if (!strcmp(name, "variation")) *out = im->variation;
    else if (!strcmp(name, "steps") || !strcmp(name, "width") || !strcmp(name, "height")) {
        double d = v->job ? jobs_num(v->job, name, -1) : -1;
        *unset = d < 0;
        *out = (long long)d;
    } else return -1;
    return 0;
}

static int var_text(const plan_vars *v, const char *name, size_t cut, char *out, size_t cap) {
    const jobs_job *job = v->job;
    if (!strcmp(name, "prompt_slug")) {
        plan_slug(v->prompt, cut, out, cap);
        return 0;
    }
    const char *s = NULL;
    char tmp[64];
    if (!strcmp(name, "name")) {
        if (job && job->name) s = job->name;
        else { snprintf(tmp, sizeof tmp, "job%03d", v->job_number); s = tmp; }
    } else if (!strcmp(name, "sampler") || !strcmp(name, "scheduler")) {
        s = job ? jobs_str(job, name, "default") : "default";
    } else if (!strcmp(name, "cfg")) {
        double c = job ? jobs_num(job, "cfg", -1) : -1;
        if (c < 0) s = "default";
        else { snprintf(tmp, sizeof tmp, "%g", c); s = tmp; }
    } else return -1;
    size_t len = strlen(s);
    if (cut && len > cut) len = cut;
    if (len >= cap) len = cap - 1;
    memcpy(out, s, len);
    out[len] = 0;
    return 0;
}

static int check_path(const char *name, char *err, size_t errlen) {
    if (!*name) { snprintf(err, errlen, "the name is empty"); return -1; }
    if (name[0] == '/') { snprintf(err, errlen, "\"%s\" is an absolute path", name); return -1; }
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 32 || *p == '\\') { snprintf(err, errlen, "\"%s\" holds a control character or backslash", name); return -1; }
    const char *c = name;
    for (;;) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (len == 0) { snprintf(err, errlen, "\"%s\" has an empty folder name", name); return -1; }
        if (c[0] == '.') { snprintf(err, errlen, "\"%s\": names may not start with '.'", name); return -1; }
        if (len > 255) { snprintf(err, errlen, "\"%.60s...\": a name part is over 255 bytes", name); return -1; }
        if (!e) break;
        c = e + 1;
    }
    return 0;
}

int plan_format_name(const char *tmpl, const plan_vars *v, char *out, size_t cap, char *err, size_t errlen) {
    size_t n = 0;
    char piece[512];
    for (const char *p = tmpl; *p;) {
        size_t plen;
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            piece[0] = p[0];
            plen = 1;
            p += 2;
        } else if (*p == '}') {
            snprintf(err, errlen, "template \"%s\": '}' without '{' (write }} for a literal brace)", tmpl);
            return -1;
        } else if (*p == '{') {
            const char *close = strchr(p, '}');
            if (!close || close - p > 40) {
                snprintf(err, errlen, "template \"%s\": '{' is not closed", tmpl);
                return -1;
            }
            char name[48], *spec;
            snprintf(name, sizeof name, "%.*s", (int)(close - p - 1), p + 1);
            int width = 0;
            if ((spec = strchr(name, ':'))) {
                *spec++ = 0;
                char *end;
                long w = strtol(spec, &end, 10);
                if (!*spec || *end || w < 1 || w > 200) {
                    snprintf(err, errlen, "template \"%s\": \"{%s:%s}\" needs a width from 1 to 200", tmpl, name, spec);
                    return -1;
                }
                width = (int)w;
            }
            long long num;
            int unset;
            if (!strcmp(name, "seed") || !strcmp(name, "vseed")) {
                uint64_t s = !strcmp(name, "seed") ? v->im->seed : v->im->vseed;
                if (v->job && !strcmp(name, "vseed") && !v->job->nvseeds) snprintf(piece, sizeof piece, "none");
                else snprintf(piece, sizeof piece, "%0*" PRIu64, width, s);
            } else if (var_number(v, name, &num, &unset) == 0) {
                if (unset) snprintf(piece, sizeof piece, "default");
                else snprintf(piece, sizeof piece, "%0*lld", width, num);
            } else if (var_text(v, name, (size_t)width, piece, sizeof piece) != 0) {
                snprintf(err, errlen,
                         "template \"%s\": unknown placeholder {%s} (known: index job line n variation seed vseed "
                         "steps width height name prompt_slug sampler scheduler cfg)", tmpl, name);
                return -1;
            }
            plen = strlen(piece);
            p = close + 1;
        } else {
            const char *q = p;
            while (*q && *q != '{' && *q != '}') q++;
            plen = (size_t)(q - p) < sizeof piece ? (size_t)(q - p) : sizeof piece - 1;
            memcpy(piece, p, plen);
            p = q;
        }
        if (n + plen + 5 >= cap) { snprintf(err, errlen, "template \"%s\": the name is too long", tmpl); return -1; }
        memcpy(out + n, piece, plen);
        n += plen;
    }
    out[n] = 0;
    if (n < 4 || strcmp(out + n - 4, ".png")) strcpy(out + n, ".png");
    return check_path(out, err, errlen);
}

/* ---- the list ---- */

void plan_free(plan *p) {
    for (int i = 0; i < p->count; i++) free(p->images[i].file);
    free(p->images);
    for (int j = 0; p->prompts && j < p->jobs->count; j++) expand_tmpl_free(p->prompts[j]);
    for (int j = 0; p->controls && j < p->jobs->count; j++) expand_tmpl_free(p->controls[j]);
    free(p->prompts);
    free(p->controls);
    memset(p, 0, sizeof *p);
}

/* Variation a of a job: prompt expansion a % prompts, control image a / prompts. */
char *plan_prompt(const plan *p, const plan_image *im) {
    return expand_nth(p->prompts[im->job], im->variation % expand_count(p->prompts[im->job]));
}

char *plan_control_image(const plan *p, const plan_image *im) {
    if (!p->controls || !p->controls[im->job]) return NULL;
    return expand_nth(p->controls[im->job], im->variation / expand_count(p->prompts[im->job]));
}

static const plan_image *g_sort_images; /* qsort has no context argument in C11 */
static int by_file(const void *a, const void *b) {
    const plan_image *x = &g_sort_images[*(const int *)a], *y = &g_sort_images[*(const int *)b];
    int c = strcmp(x->file, y->file);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Names the images of variation `a` of job j (one prompt, every variation seed and seed). Returns 0 or -1. */
static int add_variation(plan *out, int j, int a, const char *prompt, int *n, const char *source, jobs_errors *errs) {
    const jobs_job *job = &out->jobs->jobs[j];
    const char *tmpl = job->output ? job->output : PLAN_DEFAULT_TEMPLATE;
    int nv = job->nvseeds ? job->nvseeds : 1;
    char err[512];
    for (int b = 0; b < nv; b++)
        for (int s = 0; s < job->nseeds; s++) {
            plan_image *im = &out->images[out->count];
            memset(im, 0, sizeof *im);
            im->index = out->count;
            im->job = j;
            im->variation = a;
            im->n = (*n)++;
            im->seed = job->seeds[s];
            im->vseed = job->nvseeds ? job->vseeds[b] : 0;
            char name[1100];
            plan_vars v = {job, j + 1, im, prompt};
            if (plan_format_name(tmpl, &v, name, sizeof name, err, sizeof err) != 0) {
                jobs_error_add(errs, "%s:%d: output %s", source, job->line, err);
                return -1;
            }
            if (!(im->file = strdup(name))) {
                jobs_error_add(errs, "%s: out of memory", source);
                return -1;
            }
            out->count++;
        }
    return 0;
}

int plan_build(const jobs_list *jobs, const char *source, plan *out, jobs_errors *errs) {
    memset(out, 0, sizeof *out);
    out->jobs = jobs;
    int errors0 = errs->total, cap = 0;
    if (jobs->count && (!(out->prompts = calloc((size_t)jobs->count, sizeof *out->prompts)) ||
                        !(out->controls = calloc((size_t)jobs->count, sizeof *out->controls)))) {
        jobs_error_add(errs, "%s: out of memory", source);
        return 1;
    }
    for (int j = 0; j < jobs->count; j++) {
        const jobs_job *job = &jobs->jobs[j];
        char err[512];
        if (expand_parse(job->prompt, PLAN_MAX_IMAGES, &out->prompts[j], err, sizeof err) != 0) {
            jobs_error_add(errs, "%s:%d: prompt: %s", source, job->line, err);
            continue;
        }
        const char *ctl = jobs_str(job, "control_image", NULL);
        if (ctl && expand_parse(ctl, PLAN_MAX_IMAGES, &out->controls[j], err, sizeof err) != 0) {
            jobs_error_add(errs, "%s:%d: control_image: %s", source, job->line, err);
            continue;
        }
        int nprompts = expand_count(out->prompts[j]), ncontrols = ctl ? expand_count(out->controls[j]) : 1;
        if ((long long)nprompts * ncontrols > PLAN_MAX_IMAGES) {
            jobs_error_add(errs, "%s:%d: the batch passes %d images", source, job->line, PLAN_MAX_IMAGES);
            break;
        }
        for (int k = 0; ctl && k < ncontrols; k++) { /* every control image must be readable before anything renders */
            char *path = expand_nth(out->controls[j], k);
            if (!path || access(path, R_OK) != 0)
                jobs_error_add(errs, "%s:%d: control_image \"%s\" cannot be read", source, job->line, path ? path : "?");
            free(path);
        }
        int nvars = nprompts * ncontrols, nv = job->nvseeds ? job->nvseeds : 1;
        long long add = (long long)nvars * nv * job->nseeds;
        if (out->count + add > PLAN_MAX_IMAGES) {
            jobs_error_add(errs, "%s:%d: the batch passes %d images", source, job->line, PLAN_MAX_IMAGES);
            break;
        }
        if (out->count + add > cap) {
            cap = (int)(out->count + add) * 2;
            if (cap > PLAN_MAX_IMAGES) cap = PLAN_MAX_IMAGES;
            plan_image *g = realloc(out->images, (size_t)cap * sizeof *g);
            if (!g) { jobs_error_add(errs, "%s: out of memory", source); break; }
            out->images = g;
        }
        /* one expansion at a time: only the names are kept */
        int n = 0;
        for (int a = 0; a < nvars; a++) {
            char *prompt = expand_nth(out->prompts[j], a % nprompts);
            int rc = -1;
            if (!prompt) jobs_error_add(errs, "%s: out of memory", source);
            else if (strlen(prompt) > SD_PROMPT_MAX_BYTES)
                jobs_error_add(errs, "%s:%d: prompt%s is %zu bytes long: at most %d are accepted", source, job->line,
                               nvars > 1 ? (snprintf(err, sizeof err, " %d", a + 1), err) : "", strlen(prompt), SD_PROMPT_MAX_BYTES);
            else rc = add_variation(out, j, a, prompt, &n, source, errs);
            free(prompt);
            if (rc != 0) break;
        }
    }
    if (errs->total > errors0) return errs->total - errors0;

    /* two images, one file: refuse before anything renders */
    int *order = malloc((size_t)(out->count ? out->count : 1) * sizeof *order);
    if (!order) { jobs_error_add(errs, "%s: out of memory", source); return 1; }
    for (int i = 0; i < out->count; i++) order[i] = i;
    g_sort_images = out->images;
    qsort(order, (size_t)out->count, sizeof *order, by_file);
    for (int i = 1, first = 0; i < out->count; i++) {
        const plan_image *a = &out->images[order[first]], *b = &out->images[order[i]];
        if (strcmp(a->file, b->file)) { first = i; continue; } /* compare each with the first of its name */
        int la = jobs->jobs[a->job].line, lb = jobs->jobs[b->job].line;
        if (la == lb)
            jobs_error_add(errs, "%s:%d: images %d and %d would both be written to \"%s\" (add {seed} or {index} to "
                           "\"output\")", source, la, a->index, b->index, a->file);
        else
            jobs_error_add(errs, "%s:%d: image %d would be written to \"%s\", like image %d of line %d (make "
                           "\"output\" unique, e.g. with {index})", source, lb, b->index, b->file, a->index, la);
    }
    free(order);
    return errs->total - errors0;
}

/* ---- shards ---- */

static int env_int(const char *name, long *out) {
    const char *s = getenv(name);
    char *end;
    if (!s || !*s) return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < -1000000000 || v > 1000000000) return -1; /* so (id - min) / step cannot overflow */
    *out = v;
    return 0;
}

/* --shard auto: the index the scheduler gives this process. Slurm exports the array's task id, first id, step
 * and count; a Kubernetes Indexed Job exports only JOB_COMPLETION_INDEX, so its count comes from --shard-count.
 * When both name an index (a Slurm job inside a pod, or a leaked variable) they must agree. */
static int shard_auto(int want_count, long *i, long *n, char *err, size_t errlen) {
    long id, lo = 0, step = 1, si = -1, sn = 0, ki = -1;
    int slurm = getenv("SLURM_ARRAY_TASK_ID") != NULL, k8s = getenv("JOB_COMPLETION_INDEX") != NULL;
    if (!slurm && !k8s) {
        snprintf(err, errlen, "--shard auto: no scheduler index in the environment (neither Slurm's SLURM_ARRAY_TASK_ID "
                              "nor Kubernetes' JOB_COMPLETION_INDEX is set); outside a scheduler write --shard I/N");
        return -1;
    }
    if (slurm) {
        if (env_int("SLURM_ARRAY_TASK_ID", &id) != 0 || env_int("SLURM_ARRAY_TASK_COUNT", &sn) != 0) {
            snprintf(err, errlen, "--shard auto: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT must both be whole numbers "
                                  "(\"%s\", \"%s\")", getenv("SLURM_ARRAY_TASK_ID"),
                     getenv("SLURM_ARRAY_TASK_COUNT") ? getenv("SLURM_ARRAY_TASK_COUNT") : "unset");
            return -1;
        }
        env_int("SLURM_ARRAY_TASK_MIN", &lo);
        env_int("SLURM_ARRAY_TASK_STEP", &step);
        if (step < 1) step = 1;
        si = (id - lo) / step;
        if (want_count && want_count != sn) {
            snprintf(err, errlen, "--shard auto: --shard-count %d, but the Slurm array has %ld tasks "
                                  "(SLURM_ARRAY_TASK_COUNT)", want_count, sn);
            return -1;
        }
    }
    if (k8s) {
        if (env_int("JOB_COMPLETION_INDEX", &ki) != 0 || ki < 0) {
            snprintf(err, errlen, "--shard auto: JOB_COMPLETION_INDEX \"%s\" is not an index (0, 1, ...)",
                     getenv("JOB_COMPLETION_INDEX"));
            return -1;
        }
        if (slurm && ki != si) {
            snprintf(err, errlen, "--shard auto: Slurm says shard %ld of %ld but JOB_COMPLETION_INDEX says %ld; "
                                  "write --shard I/N", si, sn, ki);
            return -1;
        }
        if (!slurm && !want_count) {
            snprintf(err, errlen, "--shard auto: JOB_COMPLETION_INDEX is %ld, but Kubernetes does not export the count: "
                                  "add --shard-count N (the Job's completions)", ki);
            return -1;
        }
    }
    *i = slurm ? si : ki;
    *n = slurm ? sn : want_count;
    return 0;
}

int plan_parse_shard(const char *spec, int want_count, int *index, int *count, char *err, size_t errlen) {
    long i, n;
    if (!strcmp(spec, "auto")) {
        if (shard_auto(want_count, &i, &n, err, errlen) != 0) return -1;
        if (i >= n && n >= 1) {
            snprintf(err, errlen, "--shard auto: the scheduler's index %ld is not below the shard count %ld (shards "
                                  "count from 0: --array=0-%ld, or completions: %ld with --shard-count %ld)",
                     i, n, n - 1, i + 1, i + 1);
            return -1;
        }
    } else {
        char *end;
        i = strtol(spec, &end, 10);
        if (end == spec || *end != '/') goto syntax;
        const char *ns = end + 1;
        n = strtol(ns, &end, 10);
        if (end == ns || *end) goto syntax;
        if (want_count && want_count != n) {
            snprintf(err, errlen, "--shard %s with --shard-count %d: the counts disagree", spec, want_count);
            return -1;
        }
    }
    if (n < 1 || n > 1000000) { snprintf(err, errlen, "--shard %s: the shard count must be from 1 to 1000000", spec); return -1; }
    if (i < 0 || i >= n) {
        snprintf(err, errlen, "--shard %s: the index must be 0..%ld (shards count from 0, like SLURM_ARRAY_TASK_ID "
                              "with --array=0-%ld)", spec, n - 1, n - 1);
        return -1;
    }
    *index = (int)i;
    *count = (int)n;
    return 0;
syntax:
    snprintf(err, errlen, "--shard \"%s\" is not I/N (e.g. 0/4) or auto", spec);
    return -1;
}

void plan_shard_range(int total, int index, int count, int *begin, int *end) {
    *begin = (int)((long long)total * index / count);
    *end = (int)((long long)total * (index + 1) / count);
}

/* ---- identity ---- */

static void add_seed(cJSON *o, const char *key, uint64_t s) {
    if (s <= 9007199254740992ull) {
        cJSON_AddNumberToObject(o, key, (double)s);
    } else {
        char buf[24];
        snprintf(buf, sizeof buf, "%" PRIu64, s);
        cJSON_AddStringToObject(o, key, buf);
    }
}

cJSON *plan_image_params(const plan *p, const plan_image *im) {
    const jobs_job *job = &p->jobs->jobs[im->job];
    char *prompt = plan_prompt(p, im);
    cJSON *o = prompt ? cJSON_Duplicate(job->obj, 1) : NULL, *ps = o ? cJSON_CreateString(prompt) : NULL;
    free(prompt);
    if (!ps) { cJSON_Delete(o); return NULL; }
    cJSON_ReplaceItemInObjectCaseSensitive(o, "prompt", ps);
    char *ctl = plan_control_image(p, im);
    if (ctl) { /* the image's own control picture, not the job's group */
        cJSON *cs = cJSON_CreateString(ctl);
        free(ctl);
        if (!cs) { cJSON_Delete(o); return NULL; }
        cJSON_ReplaceItemInObjectCaseSensitive(o, "control_image", cs);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, "output");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "name");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "batch_size");
    add_seed(o, "seed", im->seed);
    if (job->nvseeds) add_seed(o, "variation_seed", im->vseed);
    return o;
}

int plan_image_key(const plan *p, const plan_image *im, const char *model, char hex[65]) {
    cJSON *o = plan_image_params(p, im);
    if (o && model && !cJSON_AddStringToObject(o, "model", model)) { cJSON_Delete(o); o = NULL; }
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) return -1;
    sd_sha256_string(s, strlen(s), hex);
    free(s);
    return 0;
}
