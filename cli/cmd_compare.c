/* cmd_compare.c — `sd compare`: one prompt and seed through several samplers, schedulers, step counts and CFG
 * scales; a labelled grid, a CSV/JSON table of time and error against a high-step reference, and a chart. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "../sd.h"
#include "chart.h"
#include "cli.h"
#include "clikit.h"
#include "common_flags.h"
#include "expand.h"
#include "control_flags.h"
#include "grid.h"
#include "jobs.h"
#include "metrics.h"
#include "outfiles.h"

#define MAXL 16 /* items per list */

typedef struct cmp_opts {
    cf_opts cf;             /* the shared flags: model, output, overwrite, quiet, generation parameters (cf.params) */
    const char *prompt, *negative, *out, *csv, *json, *chart, *cells_dir, *reference;
    char *prompts[MAXL];    /* the prompt's {a|b} variants (one when it has none): an outer row axis */
    char *variant_labels[MAXL];
    int nprompts;
    char *samplers[MAXL], *schedulers[MAXL], *steps_s[MAXL], *cfg_s[MAXL];
    int nsamplers, nschedulers, nsteps, ncfg;
    int steps[MAXL];
    float cfg[MAXL];
    int cell_size, log_y, quiet;
    uint64_t seed;
    char *storage[4];
    cli_controls ctl;       /* ControlNets steering every cell (the same flags as sd generate's) */
} cmp_opts;

typedef struct cmp_cell {
    int variant;                     /* which of the prompt's variants */
    const char *sampler, *scheduler; /* NULL scheduler: the model's default */
    float cfg;                       /* < 0: the model's default */
    int steps;
    double seconds, rmse, psnr;      /* NAN when refused */
    sd_image img;
    char *refused;                   /* the library's reason when it refuses the combination, else NULL */
} cmp_cell;

static void usage(FILE *out) {
    fprintf(out,
            "usage: sd compare -p PROMPT [--samplers A,B] [--steps 10,20,30] [--schedulers X,Y] [--cfg 5,7]\n"
            "                  [-s SEED] [-m MODEL] [-o grid.png]\n"
            "\n"
            "Renders the prompt with every combination (same seed, so every cell starts from the same noise) and writes\n"
            "  grid.png        rows: sampler / scheduler / cfg, columns: steps; each cell captioned with time and PSNR\n"
            "                  (a prompt with {a|b} variants, e.g. {<lora:x:0.8>|<lora:y:0.8>}, repeats the rows per variant)\n"
            "                  (a combination the library refuses, such as ddim with karras, stays blank: n/a)\n"
            "  grid.csv/.json  per cell: seconds, RMSE and PSNR against a reference render (--reference)\n"
            "  grid-chart.png  RMSE against steps, one line per row of the grid\n"
            "\n"
            "      --samplers LIST            default euler,euler_a,dpm++2m,ddim\n"
            "      --schedulers LIST          default: the model's\n"
            "      --steps LIST               default 10,20,30 (each 1..1000)\n"
            "      --cfg LIST                 default: the model's (each 0..100)\n"
            "      --reference S:N[:X]        the converged image: sampler S, N steps, scheduler X (default dpm++2m:100,\n"
            "                                 scheduler: the first of --schedulers); one reference per cfg value\n"
            "      --csv F, --json F, --chart F   the table and chart files (default: beside the grid)\n"
            "      --cells DIR                also save every cell and the references as PNGs with their settings\n"
            "      --cell-size N              cell width in the grid (default: the image width, grown to 128+ or shrunk to 256)\n"
            "      --log-y                    logarithmic error axis in the chart\n");
    cf_help(out, CF_COMPARE);
    fprintf(out, "\n");
    cli_controls_help(out);
}

/* A comma list of numbers, each checked as the job key `key` (the same rule as the single-valued flag). */
static int number_list(const char *flag, const char *list, const char *key, char **items, int n, double *out) {
    for (int i = 0; i < n; i++) {
        char err[512];
        cJSON *v = jobs_flag_value(key, items[i], NULL, err, sizeof err);
        if (!v) { fprintf(stderr, "error: %s \"%s\": item \"%s\": %s\n", flag, list, items[i], err); return -1; }
        out[i] = v->valuedouble;
        cJSON_Delete(v);
    }
    return 0;
}

/* The prompt's {a|b} variants (a LoRA or a word per row group) and a short label for each: the part where they
 * differ. */
static int prompt_variants(cmp_opts *o) {
    expand_tmpl *t;
    char err[512];
    if (expand_parse(o->prompt, MAXL, &t, err, sizeof err) != 0) {
        fprintf(stderr, "error: --prompt: %s (at most %d variants)\n", err, MAXL);
        return -1;
    }
    o->nprompts = expand_count(t);
    for (int i = 0; i < o->nprompts; i++)
        if (!(o->prompts[i] = expand_nth(t, i))) { expand_tmpl_free(t); fprintf(stderr, "error: out of memory\n"); return -1; }
    expand_tmpl_free(t);
    size_t pre = strlen(o->prompts[0]), suf = pre;
    for (int i = 1; i < o->nprompts; i++) {
        const char *a = o->prompts[0], *b = o->prompts[i];
        size_t la = strlen(a), lb = strlen(b), k = 0;
        while (k < pre && k < lb && a[k] == b[k]) k++;
        pre = k;
        for (k = 0; k < suf && k < la && k < lb && a[la - 1 - k] == b[lb - 1 - k];) k++;
        suf = k;
    }
    for (int i = 0; i < o->nprompts; i++) {
        const char *v = o->prompts[i];
        size_t l = strlen(v), a = pre < l ? pre : l, b = suf < l - a ? l - suf : a;
        while (a > 0 && (v[a - 1] & 0xC0) == 0x80) a--; /* whole UTF-8 characters */
        while (b < l && (v[b] & 0xC0) == 0x80) b++;
        while (a < b && v[a] == ' ') a++;
        while (b > a && v[b - 1] == ' ') b--;
        char buf[64];
        snprintf(buf, sizeof buf, "%.*s", b - a > 40 ? 40 : (int)(b - a), v + a);
        if (!buf[strspn(buf, " ")]) snprintf(buf, sizeof buf, "(none)");
        if (!(o->variant_labels[i] = strdup(buf))) { fprintf(stderr, "error: out of memory\n"); return -1; }
    }
    return 0;
}

static int parse_args(int argc, char **argv, cmp_opts *o) {
    memset(o, 0, sizeof *o);
    cli_controls_init(&o->ctl);
    if (cf_init(&o->cf) != 0) return 1;
    o->reference = "dpm++2m:100";
    const char *samplers = "euler,euler_a,dpm++2m,ddim", *schedulers = NULL, *steps = "10,20,30", *cfg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 2; }
        if (!strcmp(a, "--log-y")) o->log_y = 1;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--csv"))) o->csv = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--json"))) o->json = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--chart"))) o->chart = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--cells"))) o->cells_dir = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--reference"))) o->reference = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--samplers"))) samplers = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--schedulers"))) schedulers = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--steps"))) steps = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--cfg"))) cfg = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--cell-size"))) {
            if (clikit_int(v, 16, 4096, &o->cell_size, "--cell-size") != 0) return 1;
        } else if ((r = cli_control_parse(argc, argv, &i, &o->ctl)) != 0) {
            if (r < 0) return 1;
        } else if (clikit_failed() || (r = cf_parse(argc, argv, &i, CF_COMPARE, &o->cf)) < 0) {
            return 1;
        } else if (r == 0) {
            static const char *const own[] = {"--samplers", "--schedulers", "--steps", "--cfg", "--reference", "--csv", "--json",
                                              "--chart", "--cells", "--cell-size", "--log-y", "--help", NULL};
            char hint[128];
            cf_suggest(a, CF_COMPARE, own, hint, sizeof hint);
            fprintf(stderr, "error: unknown option \"%s\"%s\n", a, *hint ? hint : " (see sd compare --help)");
            return 1;
        }
        if (clikit_failed()) return 1;
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o->cf.params, "prompt");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o->cf.params, "negative");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o->cf.params, "seed");
    if (!p) { fprintf(stderr, "error: no prompt (sd compare -p PROMPT ...)\n"); return 1; }
    o->prompt = p->valuestring;
    o->negative = n ? n->valuestring : NULL;
    if (prompt_variants(o) != 0) return 1;
    o->out = o->cf.output ? o->cf.output : "compare.png";
    sd_gen_params tmp;
    sd_gen_params_init(&tmp);
    if (cli_controls_finish(&o->ctl, &tmp) != 0) return 1; /* control images read once, for every cell */
    o->quiet = o->cf.quiet;
    if (s) expand_parse_u64(s->valuestring, &o->seed); /* checked by the flag */
    else o->seed = jobs_library_rules()->default_seed; /* stated in the title and the table */
    double d[MAXL];
    if ((o->nsamplers = clikit_split(samplers, o->samplers, MAXL, &o->storage[0], "--samplers")) < 0) return 1;
    if (schedulers && (o->nschedulers = clikit_split(schedulers, o->schedulers, MAXL, &o->storage[1], "--schedulers")) < 0) return 1;
    if ((o->nsteps = clikit_split(steps, o->steps_s, MAXL, &o->storage[2], "--steps")) < 0) return 1;
    if (number_list("--steps", steps, "steps", o->steps_s, o->nsteps, d) != 0) return 1;
    for (int i = 0; i < o->nsteps; i++) o->steps[i] = (int)d[i];
    if (cfg && (o->ncfg = clikit_split(cfg, o->cfg_s, MAXL, &o->storage[3], "--cfg")) < 0) return 1;
    if (number_list("--cfg", cfg, "cfg", o->cfg_s, o->ncfg, d) != 0) return 1;
    for (int i = 0; i < o->ncfg; i++) o->cfg[i] = (float)d[i];
    return 0;
}

/* Each name must be one the library knows. */
static int check_names(char **items, int n, int (*count)(void), const char *(*name)(int, const char **), const char *what) {
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int k = 0; k < count() && !found; k++)
            if (jobs_name_equal(name(k, NULL), items[i])) {
                found = 1;
                items[i] = (char *)name(k, NULL); /* the canonical spelling, for labels and tables */
            }
        if (!found) {
            char all[512] = "";
            for (int k = 0; k < count(); k++) {
                size_t l = strlen(all);
                snprintf(all + l, sizeof all - l, "%s%s", k ? ", " : "", name(k, NULL));
            }
            fprintf(stderr, "error: %s: \"%s\" is not one of: %s\n", what, items[i], all);
            return -1;
        }
    }
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One render of the compare settings; the image is moved into *img. */
/* Returns 0, -1 after an error, or 1 when the library refuses this combination (ddim with karras ...): then
 * *refusal is its message and nothing was rendered. */
static int render(sd_ctx *ctx, const cmp_opts *o, const char *prompt, const char *sampler, const char *scheduler, float cfg, int steps,
                  sd_image *img, double *seconds, const char *save_as, char **refusal) {
    sd_gen_params gp;
    sd_gen_params_init(&gp);
    jobs_apply_object(o->cf.params, &gp); /* size, negative prompt, rng, convention ... from the command line */
    sd_lora *loras = NULL;                /* --lora files */
    int nl = jobs_loras(o->cf.params, &loras), rc = 0;
    if (nl == -2) { fprintf(stderr, "error: out of memory\n"); return -1; }
    if (nl > 0) gp.loras = loras, gp.lora_count = nl;
    gp.prompt = prompt;
    gp.seed = o->seed;
    gp.sampler = sampler;
    gp.scheduler = scheduler;
    if (cfg >= 0) gp.cfg_scale = cfg;
    gp.steps = steps;
    gp.controls = o->ctl.loaded ? o->ctl.c : NULL;
    gp.control_count = o->ctl.loaded;
    gp.control_guess_mode = o->ctl.guess;
    if (refusal && sd_check_params(ctx, &gp) != SD_OK) {
        if (!(*refusal = strdup(sd_last_error()))) { fprintf(stderr, "error: out of memory\n"); return -1; }
        return 1;
    }
    sd_result r;
    memset(&r, 0, sizeof r);
    if (refusal && sd_check_params(ctx, &gp) != SD_OK) {
        rc = (*refusal = strdup(sd_last_error())) ? 1 : -1;
        if (rc < 0) fprintf(stderr, "error: out of memory\n");
    } else {
        double t0 = now_s();
        if (sd_generate(ctx, &gp, NULL, NULL, &r) != SD_OK) {
            fprintf(stderr, "error: %s, %d steps: %s\n", sampler, steps, sd_last_error());
            rc = -1;
        } else {
            *seconds = now_s() - t0;
            if (save_as && sd_save_png(save_as, &r.images[0], r.infotext[0], r.json[0], 1) != SD_OK) {
                fprintf(stderr, "error: %s\n", sd_last_error());
                rc = -1;
            }
            *img = r.images[0];
            r.images[0].data = NULL;
        }
    }
    sd_result_free(&r);
    free(loras);
    return rc;
}

static char *path_with(const char *out, const char *suffix) {
    size_t n = strlen(out);
    const char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
    if (dot && (!slash || dot > slash)) n = (size_t)(dot - out);
    char *p = malloc(n + strlen(suffix) + 1);
    if (p) { memcpy(p, out, n); strcpy(p + n, suffix); }
    return p;
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

/* Everything one comparison holds. */
typedef struct cmp_run {
    const cmp_opts *o;
    const sd_model_info *mi;
    char ref_sampler[64], ref_sched[64];   /* ref_sched "": the model's default */
    int ref_steps;
    int nsch, ncfg, nvar, rows, cols, ncells;
    cmp_cell *cells;                       /* rows x cols */
    sd_image *refs;                        /* one per prompt variant and cfg value: [variant * ncfg + k] */
    double *ref_secs;
    char **row_labels;                     /* "[variant\n]sampler[\nscheduler][\ncfg X]" */
    int cell_w, cell_h;
    grid_layout layout;
    int grid_w, grid_h;
} cmp_run;

static int parse_reference(const char *spec, cmp_run *run) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    char *c1 = strchr(buf, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1) { fprintf(stderr, "error: --reference \"%s\" is not SAMPLER:STEPS[:SCHEDULER]\n", spec); return -1; }
    *c1 = 0;
    if (c2) *c2 = 0;
    snprintf(run->ref_sampler, sizeof run->ref_sampler, "%s", buf);
    snprintf(run->ref_sched, sizeof run->ref_sched, "%s", c2 ? c2 + 1 : "");
    return clikit_int(c1 + 1, 1, 10000, &run->ref_steps, "--reference steps");
}

static const char *cell_scheduler(const cmp_run *run, const cmp_cell *c) {
    return c->scheduler ? c->scheduler : run->mi->default_scheduler;
}
static double cell_cfg(const cmp_run *run, const cmp_cell *c) { return c->cfg >= 0 ? c->cfg : run->mi->default_cfg; }

/* --cells: the file of the reference of prompt variant v and cfg value k, and of a cell ("-pN" only with variants) */
static void ref_file(const cmp_opts *o, int v, int k, char *buf, size_t cap) {
    char var[16] = "";
    if (o->nprompts > 1) snprintf(var, sizeof var, "-p%d", v + 1);
    snprintf(buf, cap, "%s/reference%s-cfg%s.png", o->cells_dir, var, o->ncfg ? o->cfg_s[k] : "default");
}
static void cell_file(const cmp_opts *o, int v, int k, const char *sampler, const char *scheduler, int steps, char *buf, size_t cap) {
    char var[16] = "";
    if (o->nprompts > 1) snprintf(var, sizeof var, "p%d-", v + 1);
    snprintf(buf, cap, "%s/%s%s-%s-cfg%s-%03d.png", o->cells_dir, var, sampler, scheduler ? scheduler : "default",
             o->ncfg ? o->cfg_s[k] : "default", steps);
}

/* The references, then every cell; progress on stderr. */
static int render_all(sd_ctx *ctx, cmp_run *run) {
    const cmp_opts *o = run->o;
    char save[4096];
    int total = run->ncells + run->nvar * run->ncfg, done = 0;
    const char *rsch = run->ref_sched[0] ? run->ref_sched : NULL;
    for (int v = 0; v < run->nvar; v++)
        for (int k = 0; k < run->ncfg; k++) {
            float cfg = o->ncfg ? o->cfg[k] : -1;
            int ri = v * run->ncfg + k;
            if (o->cells_dir) ref_file(o, v, k, save, sizeof save);
            if (render(ctx, o, o->prompts[v], run->ref_sampler, rsch, cfg, run->ref_steps, &run->refs[ri], &run->ref_secs[ri],
                       o->cells_dir ? save : NULL, NULL))
                return -1;
            if (!o->quiet)
                fprintf(stderr, "[%d/%d] reference %s, %d steps: %.2f s\n", ++done, total, run->ref_sampler, run->ref_steps, run->ref_secs[ri]);
        }
    int per_var = run->ncfg * o->nsamplers * run->nsch;
    for (int r = 0; r < run->rows; r++)
        for (int c = 0; c < run->cols; c++) {
            cmp_cell *cell = &run->cells[r * run->cols + c];
            int v = r / per_var, k = (r % per_var) / (o->nsamplers * run->nsch);
            cell->variant = v;
            cell->cfg = o->ncfg ? o->cfg[k] : -1;
            cell->sampler = o->samplers[(r / run->nsch) % o->nsamplers];
            cell->scheduler = o->nschedulers ? o->schedulers[r % run->nsch] : NULL;
            cell->steps = o->steps[c];
            if (o->cells_dir) cell_file(o, v, k, cell->sampler, cell->scheduler, cell->steps, save, sizeof save);
            int rc = render(ctx, o, o->prompts[v], cell->sampler, cell->scheduler, cell->cfg, cell->steps, &cell->img, &cell->seconds,
                            o->cells_dir ? save : NULL, &cell->refused);
            if (rc < 0) return -1;
            if (rc > 0) { /* a blank cell: the grid still shows every other combination */
                cell->seconds = cell->rmse = cell->psnr = NAN;
                if (!o->quiet) fprintf(stderr, "[%d/%d] skipped: %s\n", ++done, total, cell->refused);
                continue;
            }
            cell->rmse = metrics_rmse(&cell->img, &run->refs[v * run->ncfg + k]);
            cell->psnr = metrics_psnr(cell->rmse);
            if (!o->quiet)
                fprintf(stderr, "[%d/%d] %s %s cfg %g, %d steps: %.2f s, RMSE %.3f, PSNR %.2f dB\n", ++done, total,
                        cell->sampler, cell_scheduler(run, cell), cell_cfg(run, cell), cell->steps, cell->seconds,
                        cell->rmse, cell->psnr);
        }
    return 0;
}

static int write_grid(cmp_run *run) {
    const cmp_opts *o = run->o;
    int rows = run->rows, cols = run->cols, n = run->ncells, rc = -1;
    const sd_image **gcells = calloc((size_t)n, sizeof *gcells);
    char **col_labels = calloc((size_t)cols, sizeof *col_labels), **caps = calloc((size_t)n, sizeof *caps);
    char title[1200];
    snprintf(title, sizeof title, "%s\nseed %" PRIu64 ", %dx%d; error against %s, %d steps", o->prompt,
             o->seed, run->cells[0].img.w, run->cells[0].img.h, run->ref_sampler, run->ref_steps);
    int ok = gcells && col_labels && caps;
    if (ok) {
        for (int c = 0; c < cols && ok; c++) {
            char buf[32];
            snprintf(buf, sizeof buf, "%d steps", o->steps[c]);
            ok = (col_labels[c] = strdup(buf)) != NULL;
        }
        for (int i = 0; i < n && ok; i++) {
            char buf[64];
            if (run->cells[i].refused) snprintf(buf, sizeof buf, "n/a");
            else if (isfinite(run->cells[i].psnr)) snprintf(buf, sizeof buf, "%.2f s\n%.1f dB", run->cells[i].seconds, run->cells[i].psnr);
            else snprintf(buf, sizeof buf, "%.2f s\nidentical", run->cells[i].seconds);
            ok = (caps[i] = strdup(buf)) != NULL;
            gcells[i] = run->cells[i].refused ? NULL : &run->cells[i].img;
        }
    }
    if (!ok) {
        fprintf(stderr, "error: out of memory\n");
    } else {
        grid_spec g = {rows, cols, gcells, run->cell_w, run->cell_h, title, (const char *const *)run->row_labels,
                       (const char *const *)col_labels, (const char *const *)caps, run->cell_w >= 128 ? 2 : 1};
        sd_image img;
        if (grid_render(&g, &img, &run->layout) != 0) {
            fprintf(stderr, "error: %s: the grid would be too large\n", o->out);
        } else {
            if (sd_save_png(o->out, &img, NULL, NULL, 1) == SD_OK) rc = 0;
            else fprintf(stderr, "error: %s\n", sd_last_error());
            run->grid_w = img.w;
            run->grid_h = img.h;
            free(img.data);
        }
    }
    for (int c = 0; col_labels && c < cols; c++) free(col_labels[c]);
    for (int i = 0; caps && i < n; i++) free(caps[i]);
    free(col_labels);
    free(caps);
    free(gcells);
    return rc;
}

static int write_tables(const cmp_run *run, const char *csv_path, const char *json_path, const char *chart_path) {
    const cmp_opts *o = run->o;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "prompt", o->prompt);
    cJSON_AddStringToObject(root, "negative", o->negative ? o->negative : "");
    cJSON_AddNumberToObject(root, "seed", (double)o->seed);
    cJSON_AddNumberToObject(root, "width", run->cells[0].img.w);
    cJSON_AddNumberToObject(root, "height", run->cells[0].img.h);
    cJSON_AddStringToObject(root, "model", run->mi->name);
    cJSON *ref = cJSON_AddObjectToObject(root, "reference");
    cJSON_AddStringToObject(ref, "sampler", run->ref_sampler);
    cJSON_AddStringToObject(ref, "scheduler", run->ref_sched[0] ? run->ref_sched : run->mi->default_scheduler);
    cJSON_AddNumberToObject(ref, "steps", run->ref_steps);
    cJSON *rsecs = cJSON_AddArrayToObject(ref, "seconds"); /* one per prompt variant and cfg value */
    for (int k = 0; k < run->nvar * run->ncfg; k++) cJSON_AddItemToArray(rsecs, cJSON_CreateNumber(run->ref_secs[k]));
    if (o->nprompts > 1) {
        cJSON *pv = cJSON_AddArrayToObject(root, "prompts");
        for (int v = 0; v < o->nprompts; v++) cJSON_AddItemToArray(pv, cJSON_CreateString(o->prompts[v]));
    }
    cJSON *gj = cJSON_AddObjectToObject(root, "grid");
    cJSON_AddStringToObject(gj, "file", o->out);
    cJSON_AddNumberToObject(gj, "width", run->grid_w);
    cJSON_AddNumberToObject(gj, "height", run->grid_h);
    cJSON_AddNumberToObject(gj, "rows", run->rows);
    cJSON_AddNumberToObject(gj, "cols", run->cols);
    cJSON_AddStringToObject(root, "csv", csv_path);
    cJSON_AddStringToObject(root, "chart", chart_path);
    cJSON *arr = cJSON_AddArrayToObject(root, "cells");
    size_t cap = 256 + (size_t)run->ncells * 200, n = 0;
    char *csv = malloc(cap);
    if (csv) n = (size_t)snprintf(csv, cap, "%ssampler,scheduler,cfg,steps,seconds,rmse,psnr_db\n", o->nprompts > 1 ? "prompt," : "");
    for (int i = 0; i < run->ncells; i++) {
        const cmp_cell *cl = &run->cells[i];
        int x, y;
        grid_cell_origin(&run->layout, i / run->cols, i % run->cols, &x, &y);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "row", i / run->cols);
        cJSON_AddNumberToObject(e, "col", i % run->cols);
        if (o->nprompts > 1) cJSON_AddNumberToObject(e, "prompt", cl->variant); /* index into "prompts" */
        cJSON_AddStringToObject(e, "sampler", cl->sampler);
        cJSON_AddStringToObject(e, "scheduler", cell_scheduler(run, cl));
        if (csv && o->nprompts > 1) n += (size_t)snprintf(csv + n, cap - n, "%d,", cl->variant + 1);
        cJSON_AddNumberToObject(e, "cfg", cell_cfg(run, cl));
        cJSON_AddNumberToObject(e, "steps", cl->steps);
        cJSON_AddItemToObject(e, "seconds", num_or_null(cl->seconds));
        cJSON_AddItemToObject(e, "rmse", num_or_null(cl->rmse));
        cJSON_AddItemToObject(e, "psnr_db", num_or_null(cl->psnr)); /* null: identical to the reference (or refused) */
        if (cl->refused) cJSON_AddStringToObject(e, "refused", cl->refused);
        cJSON_AddNumberToObject(e, "x", x);                         /* where the cell sits in the grid */
        cJSON_AddNumberToObject(e, "y", y);
        cJSON_AddNumberToObject(e, "w", run->cell_w);
        cJSON_AddNumberToObject(e, "h", run->cell_h);
        cJSON_AddItemToArray(arr, e);
        if (csv && cl->refused) /* empty fields: not rendered */
            n += (size_t)snprintf(csv + n, cap - n, "%s,%s,%g,%d,,,\n", cl->sampler, cell_scheduler(run, cl),
                                  cell_cfg(run, cl), cl->steps);
        else if (csv)
            n += (size_t)snprintf(csv + n, cap - n, "%s,%s,%g,%d,%.6f,%.6f,%.6f\n", cl->sampler, cell_scheduler(run, cl),
                                  cell_cfg(run, cl), cl->steps, cl->seconds, cl->rmse, cl->psnr);
    }
    char *js = cJSON_Print(root);
    int rc = csv && js && clikit_write_file(csv_path, csv, n) == 0 && clikit_write_file(json_path, js, strlen(js)) == 0 ? 0 : -1;
    free(csv);
    free(js);
    cJSON_Delete(root);
    return rc;
}

static int write_chart(const cmp_run *run, const char *path) {
    int rows = run->rows, cols = run->cols, rc = -1;
    chart_series *series = calloc((size_t)rows, sizeof *series);
    double *xs = calloc((size_t)run->ncells, sizeof *xs), *ys = calloc((size_t)run->ncells, sizeof *ys);
    char **labels = calloc((size_t)rows, sizeof *labels);
    int ok = series && xs && ys && labels;
    for (int r = 0; r < rows && ok; r++) {
        int any = 0;
        for (int c = 0; c < cols; c++) any |= !run->cells[r * cols + c].refused;
        char buf[300];
        snprintf(buf, sizeof buf, "%s%s", run->row_labels[r], any ? "" : " (n/a)");
        if (!(ok = (labels[r] = strdup(buf)) != NULL)) break;
        for (char *p = labels[r]; *p; p++)
            if (*p == '\n') *p = '/';
        for (int c = 0; c < cols; c++) {
            xs[r * cols + c] = run->cells[r * cols + c].steps;
            ys[r * cols + c] = run->cells[r * cols + c].rmse;
        }
        series[r] = (chart_series){labels[r], cols, xs + r * cols, ys + r * cols};
    }
    if (!ok) {
        fprintf(stderr, "error: out of memory\n");
    } else {
        char title[256];
        snprintf(title, sizeof title, "RMSE against %s, %d steps (lower is better)", run->ref_sampler, run->ref_steps);
        chart_spec cs = {0, 0, title, "steps", "RMSE (0-255)", run->o->log_y, series, rows};
        sd_image img;
        if (chart_render(&cs, &img, NULL) != 0) {
            fprintf(stderr, "error: %s: cannot draw the chart\n", path);
        } else {
            if (sd_save_png(path, &img, NULL, NULL, 1) == SD_OK) rc = 0;
            else fprintf(stderr, "error: %s\n", sd_last_error());
            free(img.data);
        }
    }
    for (int r = 0; labels && r < rows; r++) free(labels[r]);
    free(series);
    free(xs);
    free(ys);
    free(labels);
    return rc;
}

/* Outputs that are one path: the later write would replace the earlier (a grid written over by its table) or fail
 * after the whole render (a --cells folder made where the grid goes, or the grid where a cell goes). `names` are
 * the cells' files (n of them). Returns 0 or -1 (printed). */
static int check_clashes(const cmp_opts *o, const char *const *tables, char **names, int n) {
    static const char *const flags[4] = {"-o", "--csv", "--json", "--chart"};
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < i; j++)
            if (outfiles_same_file(tables[i], tables[j])) {
                fprintf(stderr, "error: %s %s is the same file as %s %s: name them apart\n", flags[i], tables[i], flags[j], tables[j]);
                return -1;
            }
        if (!o->cells_dir) continue;
        if (outfiles_within(o->cells_dir, tables[i])) {
            fprintf(stderr, "error: --cells %s: the cells folder would be made where %s %s goes\n", o->cells_dir, flags[i], tables[i]);
            return -1;
        }
        if (!outfiles_within(tables[i], o->cells_dir)) continue;
        for (int k = 0; k < n; k++)
            if (names[k] && outfiles_same_file(tables[i], names[k])) {
                fprintf(stderr, "error: %s %s is also a cell's file in --cells %s\n", flags[i], tables[i], o->cells_dir);
                return -1;
            }
    }
    return 0;
}

/* Every file the comparison will write, checked before the model loads (existing ones need --overwrite); temp
 * files of an interrupted earlier run into these names are removed. Returns 0 or -1 (printed). */
static int check_outputs(const cmp_opts *o, const char *const *tables, int ntables) {
    int ncfg = o->ncfg ? o->ncfg : 1, nsch = o->nschedulers ? o->nschedulers : 1, rc = 0;
    int cap = ntables + o->nprompts * ncfg * (1 + o->nsamplers * nsch * o->nsteps), n = 0;
    char **names = calloc((size_t)cap, sizeof *names), buf[4096];
    if (!names) { fprintf(stderr, "error: out of memory\n"); return -1; }
    for (int i = 0; i < ntables; i++) names[n++] = strdup(tables[i]);
    if (o->cells_dir) {
        if (outfiles_check_dir(o->cells_dir) != 0) rc = -1;
        for (int v = 0; v < o->nprompts; v++)
            for (int k = 0; k < ncfg; k++) {
                ref_file(o, v, k, buf, sizeof buf);
                names[n++] = strdup(buf);
                for (int s = 0; s < o->nsamplers; s++)
                    for (int h = 0; h < nsch; h++)
                        for (int c = 0; c < o->nsteps; c++) {
                            cell_file(o, v, k, o->samplers[s], o->nschedulers ? o->schedulers[h] : NULL, o->steps[c], buf, sizeof buf);
                            names[n++] = strdup(buf);
                        }
            }
    }
    if (rc == 0 && check_clashes(o, tables, names + ntables, n - ntables) != 0) rc = -1;
    for (int i = 0; i < n && rc == 0; i++) {
        if (!names[i]) { fprintf(stderr, "error: out of memory\n"); rc = -1; }
        else if (outfiles_check_file(names[i], o->cf.overwrite, 1) != 0) rc = -1;
    }
    if (rc == 0) outfiles_clean_temps("", names, n);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int cmd_compare(int argc, char **argv) {
    cmp_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        for (int i = 0; i < 4; i++) free(o.storage[i]);
        for (int i = 0; i < MAXL; i++) free(o.prompts[i]), free(o.variant_labels[i]);
        cf_free(&o.cf);
        cli_controls_free(&o.ctl);
        return rc == 2 ? 0 : 1;
    }
    rc = 1;
    sd_ctx *ctx = NULL;
    cmp_run run;
    memset(&run, 0, sizeof run);
    run.o = &o;
    char *csv_path = NULL, *json_path = NULL, *chart_path = NULL;
    if (parse_reference(o.reference, &run) != 0) goto out;
    char *rs = run.ref_sampler, *rsch = run.ref_sched;
    if (check_names(o.samplers, o.nsamplers, sd_sampler_count, sd_sampler_name, "--samplers") ||
        check_names(&rs, 1, sd_sampler_count, sd_sampler_name, "--reference") ||
        check_names(o.schedulers, o.nschedulers, sd_scheduler_count, sd_scheduler_name, "--schedulers") ||
        (rsch[0] && check_names(&rsch, 1, sd_scheduler_count, sd_scheduler_name, "--reference")))
        goto out;
    if (!run.ref_sched[0] && o.nschedulers) snprintf(run.ref_sched, sizeof run.ref_sched, "%s", o.schedulers[0]);
    csv_path = o.csv ? strdup(o.csv) : path_with(o.out, ".csv");
    json_path = o.json ? strdup(o.json) : path_with(o.out, ".json");
    chart_path = o.chart ? strdup(o.chart) : path_with(o.out, "-chart.png");
    if (!csv_path || !json_path || !chart_path) { fprintf(stderr, "error: out of memory\n"); goto out; }
    const char *tables[4] = {o.out, csv_path, json_path, chart_path};
    if (check_outputs(&o, tables, 4) != 0 || outfiles_check_png(o.out, "-o") != 0 || outfiles_check_png(chart_path, "--chart") != 0)
        goto out;

    if (sd_load(&o.cf.load, &ctx) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); goto out; }
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/x", o.cells_dir ? o.cells_dir : ".");
    for (int i = 0; i < 4; i++)
        if (clikit_mkdirs_for(tables[i]) != 0) { fprintf(stderr, "error: %s: cannot create its folder: %s\n", tables[i], strerror(errno)); goto out; }
    if (clikit_mkdirs_for(probe) != 0) { fprintf(stderr, "error: %s: cannot create: %s\n", o.cells_dir, strerror(errno)); goto out; }
    run.mi = sd_model(ctx);

    /* rows: prompt variant (outer) x cfg x sampler x scheduler; columns: steps */
    run.nsch = o.nschedulers ? o.nschedulers : 1;
    run.ncfg = o.ncfg ? o.ncfg : 1;
    run.nvar = o.nprompts;
    run.rows = run.nvar * run.ncfg * o.nsamplers * run.nsch;
    run.cols = o.nsteps;
    run.ncells = run.rows * run.cols;
    run.cells = calloc((size_t)run.ncells, sizeof *run.cells);
    run.refs = calloc((size_t)(run.nvar * run.ncfg), sizeof *run.refs);
    run.ref_secs = calloc((size_t)(run.nvar * run.ncfg), sizeof *run.ref_secs);
    run.row_labels = calloc((size_t)run.rows, sizeof *run.row_labels);
    if (!run.cells || !run.refs || !run.ref_secs || !run.row_labels) { fprintf(stderr, "error: out of memory\n"); goto out; }
    if (render_all(ctx, &run) != 0) goto out;

    for (int r = 0; r < run.rows; r++) {
        const cmp_cell *cl = &run.cells[r * run.cols];
        char buf[256];
        int n = 0;
        if (o.nprompts > 1) n = snprintf(buf, sizeof buf, "%s\n", o.variant_labels[cl->variant]);
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s", cl->sampler);
        if (o.nschedulers) n += snprintf(buf + n, sizeof buf - (size_t)n, "\n%s", cl->scheduler);
        if (o.ncfg) snprintf(buf + n, sizeof buf - (size_t)n, "\ncfg %g", cl->cfg);
        if (!(run.row_labels[r] = strdup(buf))) { fprintf(stderr, "error: out of memory\n"); goto out; }
    }
    int iw = run.cells[0].img.w, ih = run.cells[0].img.h;
    /* default cell: the image itself, shrunk to 256 or grown by a whole factor to 128 or more (crisp, readable) */
    run.cell_w = o.cell_size ? o.cell_size : iw > 256 ? 256 : iw < 128 ? iw * ((127 + iw) / iw) : iw;
    run.cell_h = (int)((long long)run.cell_w * ih / iw);
    if (write_grid(&run) != 0 || write_tables(&run, csv_path, json_path, chart_path) != 0 || write_chart(&run, chart_path) != 0)
        goto out;
    if (!o.quiet) fprintf(stderr, "wrote %s, %s, %s, %s\n", o.out, csv_path, json_path, chart_path);
    rc = 0;
out:
    for (int i = 0; run.cells && i < run.ncells; i++) {
        free(run.cells[i].img.data);
        free(run.cells[i].refused);
    }
    for (int k = 0; run.refs && k < run.nvar * run.ncfg; k++) free(run.refs[k].data);
    for (int r = 0; run.row_labels && r < run.rows; r++) free(run.row_labels[r]);
    free(run.cells);
    free(run.refs);
    free(run.ref_secs);
    free(run.row_labels);
    free(csv_path);
    free(json_path);
    free(chart_path);
    if (ctx) sd_free(ctx);
    for (int i = 0; i < 4; i++) free(o.storage[i]);
    for (int i = 0; i < MAXL; i++) free(o.prompts[i]), free(o.variant_labels[i]);
    cf_free(&o.cf);
    cli_controls_free(&o.ctl);
    return rc;
}
