/* cmd_batch.c — `sd batch JOBS`: every image of a job file through one loaded model; resumable, shardable. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../sd.h"
#include "cli.h"
#include "clikit.h"
#include "batch_input.h"
#include "common_flags.h"
#include "grid.h"
#include "jobs.h"
#include "manifest.h"
#include "outfiles.h"
#include "plan.h"
#include "sheet.h"


typedef struct batch_opts {
    const char *jobs_path, *out_dir, *shard, *format;
    int check, list, shard_count;
    sheet_opts sheet;
    cf_opts cf;             /* the shared flags: model, output, overwrite, quiet, generation defaults (cf.params) */
} batch_opts;

static void usage(FILE *out) {
    fprintf(out,
            "usage: sd batch JOBS [-o DIR] [-m MODEL] [options] [generation defaults]\n"
            "\n"
            "Renders every image of a job file with one loaded model. JOBS is JSON Lines (one job object a line)\n"
            "or plain text (one prompt a line); '-' reads standard input. Re-running the same command resumes:\n"
            "images already in the manifest with an intact file are skipped.\n"
            "\n"
            "      --format F                 auto (default), jsonl or text\n"
            "      --check                    check the job file (and, with -m, every job against the model); render nothing\n"
            "      --list                     print this shard's images (index, file, seed, prompt) and exit\n"
            "      --shard I/N                render only slice I of N (I from 0); \"auto\": the scheduler's index\n"
            "                                 (Slurm's array variables, or Kubernetes' JOB_COMPLETION_INDEX with --shard-count)\n"
            "      --shard-count N            the shard count, for --shard auto under Kubernetes (which does not export it)\n"
            "      --contact-sheet F          also write a grid of this shard's images with captions to F\n"
            "      --sheet-cols N             columns of the contact sheet (default: about square)\n"
            "      --sheet-size N             thumbnail size in pixels (default: the images' size, at most 256)\n"
            "\n"
            "Model, output and generation defaults (a job line overrides each):\n");
    cf_help(out, CF_BATCH);
    fprintf(out, "\nAfter a sharded run, sd batch merge DIR JOBS [same flags] checks that every image is there (sd batch merge --help).\n"
                 "\nJob keys: the flag names without dashes (steps, sampler, seed_range ...), plus prompt, seeds,\n"
                 "name and output. Output names: %s by default; see the README for placeholders.\n",
            PLAN_DEFAULT_TEMPLATE);
}

/* ---- signals ---- */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    if (g_stop) { signal(sig, SIG_DFL); raise(sig); } /* a second Ctrl-C stops at once */
    g_stop = sig;
}

/* ---- small helpers ---- */

static void dir_of(const char *path, char *out, size_t cap) {
    snprintf(out, cap, "%s", path);
    char *s = strrchr(out, '/');
    if (s) *s = 0;
    else snprintf(out, cap, ".");
}

static void iso_now(char *buf, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- progress ---- */

typedef struct progress_state {
    int tty, quiet;
    int pos, total;        /* images finished in this shard before the current call, and the shard's total */
} progress_state;

static int on_progress(void *user, const sd_progress *p) {
    progress_state *ps = user;
    if (ps->tty && !ps->quiet && p->steps > 0 && !strcmp(p->stage, "sample")) {
        char bar[21];
        int fill = p->step * 20 / p->steps;
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
        bar[20] = 0;
        fprintf(stderr, "\r[%d/%d] step %d/%d [%s]\033[K", ps->pos + p->image + 1, ps->total, p->step, p->steps, bar);
    }
    return g_stop != 0;
}

/* ---- test hook: SD_BATCH_TEST_KILL=after-save:N, torn-manifest:N or before-rename:N kills this process with
 * SIGKILL at the N-th image of the run: just after its PNG is written under its temp name, after half of its
 * manifest line is written, or after the whole line but before the PNG takes its name. stop-after:N stops it
 * (SIGSTOP) once the N-th image is complete, so that a test can cancel or requeue it mid-run under a scheduler
 * at a known point (scancel sends SIGCONT with SIGTERM). ---- */

static int fault_at(const char *what, int nth) {
    const char *s = getenv("SD_BATCH_TEST_KILL");
    size_t l = strlen(what);
    return s && !strncmp(s, what, l) && s[l] == ':' && atoi(s + l + 1) == nth;
}

/* ---- rendering ---- */

typedef struct batch_run {
    const batch_opts *o;
    const jobs_list *jobs;
    const plan *pl;
    const char *model;
    char shard_label[32];
    const manifest *known;  /* the manifests read at the start */
    manifest_writer mw;
    progress_state ps;
    int rendered, failed;
    double t_start, busy;
} batch_run;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static cJSON *make_entry(batch_run *b, const plan_image *im, const char *sha, const char *key,
                             const sd_result *r, int k, double seconds) {
    const jobs_job *job = &b->jobs->jobs[im->job];
    cJSON *e = cJSON_CreateObject(), *params = e ? plan_image_params(b->pl, im) : NULL;
    if (!params) { cJSON_Delete(e); return NULL; }
    char when[32];
    iso_now(when, sizeof when);
    cJSON_AddNumberToObject(e, "index", im->index);
    cJSON_AddStringToObject(e, "file", im->file);
    cJSON_AddStringToObject(e, "sha256", sha);
    cJSON_AddStringToObject(e, "key", key);
    cJSON_AddNumberToObject(e, "job", im->job + 1);
    cJSON_AddNumberToObject(e, "line", job->line);
    cJSON_AddNumberToObject(e, "variation", im->variation);
    cJSON_AddItemToObject(e, "params", params);
    cJSON *sd = r->json && r->json[k] ? cJSON_Parse(r->json[k]) : NULL;
    if (sd) cJSON_AddItemToObject(e, "settings", sd);
    cJSON_AddStringToObject(e, "model", b->model);
    cJSON *t = cJSON_AddObjectToObject(e, "timings");
    double n = r->count > 0 ? r->count : 1;
    cJSON_AddNumberToObject(t, "seconds", seconds);
    cJSON_AddNumberToObject(t, "text_encode", r->timings.text_encode / n);
    cJSON_AddNumberToObject(t, "sample", r->timings.sample / n);
    cJSON_AddNumberToObject(t, "decode", r->timings.decode / n);
    cJSON_AddNumberToObject(t, "per_step", r->timings.per_step);
    cJSON_AddNumberToObject(t, "images_in_call", r->count);
    cJSON_AddStringToObject(e, "shard", b->shard_label);
    cJSON_AddStringToObject(e, "written", when);
    return e;
}

/* Saves image k of a call under a temp name, records it, then gives it its name: so every file a batch puts in
 * the folder has its manifest line (manifest_owns), and a kill at any moment leaves a temp file (removed by the
 * next run) or a recorded image, never an unrecorded one. Returns 0, or -1 after printing the error. */
static int finish_image(batch_run *b, const plan_image *im, const sd_result *r, int k, double seconds) {
    const jobs_job *job = &b->jobs->jobs[im->job];
    char path[8192], stage[8300], dir[8192], sha[65], key[65], err[512];
    snprintf(path, sizeof path, "%s/%s", b->o->out_dir, im->file);
    if (clikit_mkdirs_for(path) != 0) { fprintf(stderr, "error: %s: cannot create its folder: %s\n", path, strerror(errno)); return -1; }
    dir_of(path, dir, sizeof dir);
    const char *base = strrchr(path, '/') + 1;
    snprintf(stage, sizeof stage, "%s/.%s.XXXXXX", dir, base);
    int fd = mkstemp(stage);
    if (fd < 0) { fprintf(stderr, "error: %s: cannot create: %s\n", path, strerror(errno)); return -1; }
    close(fd);
    if (sd_save_png(stage, &r->images[k], r->infotext ? r->infotext[k] : NULL, r->json ? r->json[k] : NULL, 1) != SD_OK) {
        fprintf(stderr, "error: %s\n", sd_last_error());
        unlink(stage);
        return -1;
    }
    if (fault_at("after-save", b->rendered + 1)) raise(SIGKILL);
    if (sd_sha256_file(stage, sha) != SD_OK) {
        fprintf(stderr, "error: %s: cannot read back: %s\n", path, strerror(errno));
        unlink(stage);
        return -1;
    }
    cJSON *e = plan_image_key(b->pl, im, b->model, key) == 0 ? make_entry(b, im, sha, key, r, k, seconds) : NULL;
    if (!e) { fprintf(stderr, "error: out of memory\n"); unlink(stage); return -1; }
    if (fault_at("torn-manifest", b->rendered + 1)) {
        char *s = cJSON_PrintUnformatted(e);
        if (s && write(b->mw.fd, s, strlen(s) / 2) < 0) perror("write");
        raise(SIGKILL);
    }
    /* a line left by a run killed before its rename already says this (renders are deterministic) */
    int rc = manifest_has(b->known, im->file, key, sha) ? 0 : manifest_append(&b->mw, e, err, sizeof err);
    cJSON_Delete(e);
    if (rc != 0) { fprintf(stderr, "error: %s\n", err); unlink(stage); return -1; }
    if (fault_at("before-rename", b->rendered + 1)) raise(SIGKILL);
    if (rename(stage, path) != 0) {
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
        unlink(stage);
        return -1;
    }
    manifest_sync_dir(dir);
    b->rendered++;
    if (fault_at("stop-after", b->rendered) && !g_stop) raise(SIGSTOP);
    b->ps.pos++;
    if (!b->o->cf.quiet) {
        double per = b->busy / (b->rendered ? b->rendered : 1);
        int left = b->ps.total - b->ps.pos;
        fprintf(stderr, "%s[%d/%d] %s  seed %" PRIu64 "  %.2f s  line %d%s", b->ps.tty ? "\r\033[K" : "", b->ps.pos,
                b->ps.total, im->file, im->seed, seconds, job->line, left ? "" : "\n");
        if (left) fprintf(stderr, "  eta %.0f s\n", per * left);
    }
    return 0;
}

/* One sd_generate call for images first..first+n-1 of `todo` (consecutive seeds of one job variation). */
static int render_group(batch_run *b, sd_ctx *ctx, const plan_image *const *todo, int n) {
    const plan_image *im = todo[0];
    const jobs_job *job = &b->jobs->jobs[im->job];
    sd_gen_params gp;
    sd_gen_params_init(&gp);
    jobs_apply(job, &gp);
    sd_lora *loras = NULL;
    int nl = jobs_loras(job->obj, &loras);
    if (nl > 0) gp.loras = loras, gp.lora_count = nl;
    char *prompt = nl == -2 ? NULL : plan_prompt(b->pl, im);
    if (!prompt) { free(loras); fprintf(stderr, "error: out of memory\n"); return -1; }
    gp.prompt = prompt;
    gp.seed = im->seed;
    gp.batch_count = n;
    gp.batch_size = n;
    if (job->nvseeds) gp.variation_seed = im->vseed;
    sd_image init = {0}, mask = {0}, cimg = {0};
    const char *init_path = jobs_str(job, "init_image", NULL), *mask_path = jobs_str(job, "mask", NULL);
    char *ctl_path = plan_control_image(b->pl, im);
    sd_control ctl;
    sd_status st = SD_OK;
    if (init_path && (st = sd_image_load(init_path, 3, &init)) == SD_OK) gp.init_image = &init;
    if (st == SD_OK && mask_path && (st = sd_image_load(mask_path, 1, &mask)) == SD_OK) gp.mask = &mask;
    if (st == SD_OK && ctl_path && (st = sd_image_load(ctl_path, 3, &cimg)) == SD_OK) { /* this variation's control image */
        sd_control_init(&ctl);
        ctl.model = jobs_str(job, "control_net", NULL);
        ctl.image = &cimg;
        ctl.image_name = ctl_path;
        ctl.strength = (float)jobs_num(job, "control_strength", 1.0);
        ctl.preprocess = jobs_str(job, "control_preprocess", NULL);
        gp.controls = &ctl;
        gp.control_count = 1;
    }
    sd_result r;
    memset(&r, 0, sizeof r);
    double t0 = now_s();
    if (st == SD_OK) st = sd_generate(ctx, &gp, on_progress, &b->ps, &r);
    double dt = now_s() - t0;
    sd_image_free(&init);
    sd_image_free(&mask);
    sd_image_free(&cimg);
    free(ctl_path);
    free(prompt);
    free(loras);
    if (b->ps.tty && !b->o->cf.quiet) fprintf(stderr, "\r\033[K");
    if (st == SD_ERR_CANCELLED) return 1;
    if (st != SD_OK) {
        fprintf(stderr, "error: %s:%d: image %d (%s): %s\n", b->o->jobs_path, job->line, im->index, im->file, sd_last_error());
        b->failed += n;
        b->ps.pos += n;
        /* a job's own problem (bad image, bad value) spares the others; a broken model or device does not */
        return st == SD_ERR_ARG || st == SD_ERR_FORMAT || st == SD_ERR_IO || st == SD_ERR_UNSUPPORTED ? 0 : -1;
    }
    b->busy += dt;
    int rc = 0;
    for (int k = 0; k < n && k < r.count && rc == 0; k++) {
        if (r.seeds && r.seeds[k] != todo[k]->seed) {
            fprintf(stderr, "error: image %d: rendered with seed %" PRIu64 ", expected %" PRIu64 "\n", todo[k]->index,
                    r.seeds[k], todo[k]->seed);
            rc = -1;
        } else if (finish_image(b, todo[k], &r, k, dt / n) != 0) {
            rc = -1;
        }
    }
    sd_result_free(&r);
    return rc;
}

/* ---- the command ---- */

static int parse_args(int argc, char **argv, batch_opts *o) {
    memset(o, 0, sizeof *o);
    if (cf_init(&o->cf) != 0) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 2; }
        if (a[0] != '-' || !strcmp(a, "-")) {
            if (o->jobs_path) { fprintf(stderr, "error: more than one job file (\"%s\", \"%s\")\n", o->jobs_path, a); return 1; }
            o->jobs_path = a;
        } else if (!strcmp(a, "--check")) o->check = 1;
        else if (!strcmp(a, "--list")) o->list = 1;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--format"))) o->format = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--shard"))) o->shard = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--shard-count"))) {
            if (clikit_int(v, 1, 1000000, &o->shard_count, "--shard-count") != 0) return 1;
        } else if ((r = sheet_flag(argc, argv, &i, &o->sheet)) != 0) {
            if (r < 0) return 1;
        } else if (clikit_failed() || (r = cf_parse(argc, argv, &i, CF_BATCH, &o->cf)) < 0) {
            return 1;
        } else if (r == 0) {
            static const char *const own[] = {"--check", "--list", "--format", "--shard", "--shard-count", "--contact-sheet", "--sheet-cols",
                                              "--sheet-size", "--help", NULL};
            char hint[128];
            cf_suggest(a, CF_BATCH, own, hint, sizeof hint);
            fprintf(stderr, "error: unknown option \"%s\"%s\n", a, *hint ? hint : " (see sd batch --help)");
            return 1;
        }
        if (clikit_failed()) return 1;
    }
    if (!o->jobs_path) { fprintf(stderr, "error: no job file (usage: sd batch JOBS [-o DIR] ...)\n"); return 1; }
    if (o->shard_count && !o->shard) { fprintf(stderr, "error: --shard-count goes with --shard auto (or --shard I/N)\n"); return 1; }
    o->out_dir = o->cf.output ? o->cf.output : "out";
    return 0;
}

static int load_model(const batch_opts *o, sd_ctx **ctx) {
    if (sd_load(&o->cf.load, ctx) != SD_OK) { fprintf(stderr, "error: %s\n", sd_last_error()); return -1; }
    return 0;
}

/* An image a job names, decoded for the check and kept while the next jobs name the same file. */
typedef struct checked_image {
    char *path;
    sd_image img;
} checked_image;

/* Loads `path` into c unless it holds it already. Returns 0, or -1 with sd_last_error(). */
static int check_image_load(checked_image *c, const char *path, int channels) {
    if (c->path && !strcmp(c->path, path)) return 0;
    sd_image_free(&c->img);
    free(c->path);
    c->path = NULL;
    if (sd_image_load(path, channels, &c->img) != SD_OK) return -1;
    c->path = strdup(path);
    return 0;
}

/* The job's init image and mask, read before anything renders: one that cannot be read, or a mask whose size is not
 * the init image's, would otherwise fail the run at that job. Sets gp's images (owned by the caches). Returns 0, or
 * -1 after printing the job's line. */
static int check_job_images(const char *source, const jobs_job *job, checked_image *init, checked_image *mask,
                            sd_gen_params *gp) {
    const char *ip = jobs_str(job, "init_image", NULL), *mp = jobs_str(job, "mask", NULL);
    if ((ip && check_image_load(init, ip, 3) != 0) || (mp && check_image_load(mask, mp, 1) != 0)) {
        fprintf(stderr, "error: %s:%d: %s\n", source, job->line, sd_last_error());
        return -1;
    }
    if (ip && mp && (mask->img.w != init->img.w || mask->img.h != init->img.h)) {
        fprintf(stderr, "error: %s:%d: mask \"%s\" is %dx%d but init_image \"%s\" is %dx%d: they must be the same size\n",
                source, job->line, mp, mask->img.w, mask->img.h, ip, init->img.w, init->img.h);
        return -1;
    }
    if (ip) gp->init_image = &init->img;
    if (mp) gp->mask = &mask->img;
    return 0;
}

/* Every job of images [lo, hi) as the pipeline sees it (sizes the model cannot take, samplers and schedules
 * that do not go together ...), each problem with its line; without a model (ctx NULL) only the jobs' images are
 * checked. Returns the number of bad jobs. */
static int check_jobs(sd_ctx *ctx, const char *source, const jobs_list *jobs, const plan *pl, int lo, int hi) {
    int bad = 0;
    checked_image init = {0}, mask = {0};
    for (int i = lo, last_job = -1; i < hi; i++) {
        if (pl->images[i].job == last_job) continue;
        last_job = pl->images[i].job;
        const jobs_job *job = &jobs->jobs[last_job];
        sd_gen_params gp;
        sd_gen_params_init(&gp);
        jobs_apply(job, &gp);
        if (check_job_images(source, job, &init, &mask, &gp) != 0) {
            bad++;
            continue;
        }
        if (!ctx) continue;
        sd_lora *loras = NULL;
        int nl = jobs_loras(job->obj, &loras);
        if (nl > 0) gp.loras = loras, gp.lora_count = nl;
        char *prompt = nl == -2 ? NULL : plan_prompt(pl, &pl->images[i]);
        gp.prompt = prompt;
        if (!prompt) {
            fprintf(stderr, "error: out of memory\n");
            bad++;
        } else if (sd_check_params(ctx, &gp) != SD_OK) {
            fprintf(stderr, "error: %s:%d: %s\n", source, job->line, sd_last_error());
            bad++;
        }
        free(prompt);
        free(loras);
    }
    sd_image_free(&init.img);
    sd_image_free(&mask.img);
    free(init.path);
    free(mask.path);
    return bad;
}

int cmd_batch(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "merge")) return cmd_batch_merge(argc - 1, argv + 1); /* a job file "merge": ./merge */
    batch_opts o;
    g_stop = 0;
    int rc = parse_args(argc, argv, &o);
    if (rc) { cf_free(&o.cf); return rc == 2 ? 0 : 1; }

    /* the whole job file is checked before anything renders */
    batch_input in = {0};
    manifest m = {0};
    sd_ctx *ctx = NULL;
    const plan_image **todo = NULL;
    char **pending_names = NULL;
    batch_run b = {0};
    b.mw.fd = -1;
    rc = 1;
    int si = 0, sn = 1;
    char err[1024];
    if (o.shard && plan_parse_shard(o.shard, o.shard_count, &si, &sn, err, sizeof err) != 0) { fprintf(stderr, "error: %s\n", err); goto out; }
    if (batch_input_load(o.jobs_path, o.format, o.cf.params, &in) != 0) goto out;
    int lo, hi;
    plan_shard_range(in.pl.count, si, sn, &lo, &hi);
    if (o.check) {
        rc = 0;
        /* the jobs' images first: a bad one costs no model load */
        if (check_jobs(NULL, in.source, &in.jobs, &in.pl, lo, hi) ||
            (o.cf.load.model_path && (load_model(&o, &ctx) != 0 || check_jobs(ctx, in.source, &in.jobs, &in.pl, lo, hi))))
            rc = 1;
        if (rc == 0)
            printf("%s: %d jobs, %d images%s%s; ok\n", in.source, in.jobs.count, in.pl.count, sn > 1 ? ", this shard " : "",
                   sn > 1 ? (snprintf(err, sizeof err, "%d/%d: %d", si, sn, hi - lo), err) : "");
        goto out;
    }
    if (o.list) {
        rc = 0;
        for (int i = lo; i < hi && rc == 0; i++) {
            char *prompt = plan_prompt(&in.pl, &in.pl.images[i]);
            if (!prompt) { fprintf(stderr, "error: out of memory\n"); rc = 1; }
            else printf("%d\t%s\t%" PRIu64 "\t%s\n", in.pl.images[i].index, in.pl.images[i].file, in.pl.images[i].seed, prompt);
            free(prompt);
        }
        goto out;
    }

    /* where the images go, checked before the model loads */
    if (o.sheet.path && sheet_check_clash(o.sheet.path, "--contact-sheet", o.out_dir, &in.pl, 1) != 0) goto out;
    if (outfiles_check_dir(o.out_dir) != 0 || (o.sheet.path && outfiles_check_file(o.sheet.path, o.cf.overwrite, 1) != 0)) goto out;

    /* what is already done */
    char mid[512];
    clikit_model_name(o.cf.load.model_path, mid, sizeof mid);
    if (manifest_load_dir(o.out_dir, &m, err, sizeof err) != 0) { fprintf(stderr, "error: %s\n", err); goto out; }
    todo = calloc((size_t)(hi - lo) + 1, sizeof *todo);
    pending_names = calloc((size_t)(hi - lo) + 2, sizeof *pending_names);
    if (!todo || !pending_names) { fprintf(stderr, "error: out of memory\n"); goto out; }
    int ntodo = 0, bad_existing = 0;
    for (int i = lo; i < hi; i++) {
        char key[65], path[8192];
        if (plan_image_key(&in.pl, &in.pl.images[i], mid, key) != 0) { fprintf(stderr, "error: out of memory\n"); goto out; }
        if (manifest_done(&m, o.out_dir, in.pl.images[i].file, key)) continue;
        snprintf(path, sizeof path, "%s/%s", o.out_dir, in.pl.images[i].file);
        struct stat st;
        if (lstat(path, &st) == 0) {
            /* sd's own file (a manifest line has its SHA-256) may be replaced; anyone else's only when asked to */
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
                fprintf(stderr, "error: %s: is in the way and is not a regular file\n", path);
                bad_existing++;
            } else if (!o.cf.overwrite && !manifest_owns(&m, o.out_dir, in.pl.images[i].file)) {
                fprintf(stderr, "error: %s exists and was not written by sd (or was changed since); move it away, choose "
                                "another -o, or add --overwrite\n", path);
                bad_existing++;
            }
        }
        pending_names[ntodo] = in.pl.images[i].file;
        todo[ntodo++] = &in.pl.images[i];
    }
    if (bad_existing) goto out;
    int done_before = (hi - lo) - ntodo;
    char mname[128];
    manifest_name(si, sn, mname, sizeof mname);
    snprintf(b.shard_label, sizeof b.shard_label, "%d/%d", si, sn);
    if (!o.cf.quiet)
        fprintf(stderr, "sd batch: %d images%s, %d already done, %d to render -> %s/\n", hi - lo,
                sn > 1 ? (snprintf(err, sizeof err, " in shard %d/%d", si, sn), err) : "", done_before, ntodo, o.out_dir);

    if (ntodo) {
        char mpath[8192];
        snprintf(mpath, sizeof mpath, "%s/%s", o.out_dir, mname);
        if (check_jobs(NULL, in.source, &in.jobs, &in.pl, lo, hi)) goto out; /* the jobs' images: a bad one costs no model load */
        if (load_model(&o, &ctx) != 0) goto out; /* first, so a bad model leaves no empty output folder */
        if (check_jobs(ctx, in.source, &in.jobs, &in.pl, lo, hi)) {
            fprintf(stderr, "error: %s: nothing rendered\n", in.source);
            goto out;
        }
        if (clikit_mkdirs_for(mpath) != 0) { fprintf(stderr, "error: %s: cannot create: %s\n", o.out_dir, strerror(errno)); goto out; }
        outfiles_clean_temps(o.out_dir, pending_names, ntodo);
        if (manifest_open(&b.mw, mpath, err, sizeof err) != 0) { fprintf(stderr, "error: %s\n", err); goto out; }
        b.o = &o;
        b.known = &m;
        b.jobs = &in.jobs;
        b.pl = &in.pl;
        b.model = mid;
        b.ps.tty = isatty(2);
        b.ps.quiet = o.cf.quiet;
        b.ps.pos = done_before;
        b.ps.total = hi - lo;
        b.t_start = now_s();
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        int stop = 0;
        for (int i = 0; i < ntodo && !stop && !g_stop;) {
            /* pack consecutive seeds of one job variation, up to the job's batch size */
            const plan_image *a = todo[i];
            int bs = (int)jobs_num(&in.jobs.jobs[a->job], "batch_size", 1), n = 1;
            while (i + n < ntodo && n < bs && todo[i + n]->job == a->job && todo[i + n]->variation == a->variation &&
                   todo[i + n]->vseed == a->vseed && todo[i + n]->seed == a->seed + (uint64_t)n)
                n++;
            int r = render_group(&b, ctx, todo + i, n);
            if (r != 0) stop = r;
            i += n;
        }
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (g_stop || stop == 1) {
            fprintf(stderr, "interrupted: %d images rendered; run the same command again to resume\n", b.rendered);
            rc = 130;
            goto out;
        }
        if (stop < 0) goto out;
    }
    if (o.sheet.path && sheet_write(&o.sheet, o.out_dir, &in.pl, lo, hi, o.cf.overwrite) != 0) goto out;
    if (!o.cf.quiet)
        fprintf(stderr, "done: %d rendered, %d already done%s%s in %.1f s\n", b.rendered, done_before,
                b.failed ? (snprintf(err, sizeof err, ", %d FAILED", b.failed), err) : "",
                o.sheet.path ? (snprintf(mid, sizeof mid, ", contact sheet %s", o.sheet.path), mid) : "",
                ntodo ? now_s() - b.t_start : 0.0);
    rc = b.failed ? 1 : 0;
out:
    manifest_close(&b.mw);
    if (ctx) sd_free(ctx);
    free(todo);
    free(pending_names);
    manifest_free(&m);
    batch_input_free(&in);
    cf_free(&o.cf);
    return rc;
}
