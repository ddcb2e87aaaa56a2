/* cmd_batch_merge.c — `sd batch merge DIR [JOBS]`: after a sharded run (a Slurm array, a Kubernetes Indexed Job,
 * N processes), checks that every image is in DIR exactly as its manifest line says, names the shard to run again
 * when one is not, and writes one manifest of the whole run.
 *
 * With the job file (and the flags the batch ran with, which shape the image list) every image of the plan is
 * checked: it needs a manifest line with its file and key (plan_image_key) and a file whose SHA-256 is that
 * line's. Without it only what the manifests list can be checked, plus the shard manifests that are absent. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../sd.h"
#include "batch_input.h"
#include "cli.h"
#include "clikit.h"
#include "common_flags.h"
#include "jobs.h"
#include "manifest.h"
#include "outfiles.h"
#include "plan.h"
#include "sheet.h"

#define SHOW_MAX 20 /* problem lines printed one by one; the rest are counted */

typedef struct merge_opts {
    const char *dir, *jobs_path, *format, *out;
    int shard_count;
    sheet_opts sheet;
    cf_opts cf;
} merge_opts;

static void usage(FILE *out) {
    fprintf(out,
            "usage: sd batch merge DIR [JOBS] [-m MODEL] [generation defaults] [options]\n"
            "\n"
            "Checks a batch's output folder after its shards ran: every image needs a manifest line and a file with\n"
            "that line's SHA-256. Reports missing, corrupt (changed or truncated) and duplicate images and the shard\n"
            "that must run again, then writes one manifest of the whole run. Exit 1 when an image is missing or\n"
            "corrupt (nothing is written then). Give JOBS and the -m and generation flags the batch ran with, so\n"
            "images that never started are found too; without JOBS only the images the manifests list are checked.\n"
            "\n"
            "      --manifest F               the merged manifest (default DIR/merged.jsonl; --overwrite to replace)\n"
            "      --shard-count N            the shard count of the run (default: read from the manifest names)\n"
            "      --contact-sheet F          also write a grid of every image with captions to F\n"
            "      --sheet-cols N, --sheet-size N, --format F   as for sd batch\n"
            "      --overwrite                replace existing output files\n");
}

static int parse_args(int argc, char **argv, merge_opts *o) {
    memset(o, 0, sizeof *o);
    if (cf_init(&o->cf) != 0) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 2; }
        if (a[0] != '-' || !strcmp(a, "-")) {
            if (!o->dir) o->dir = a;
            else if (!o->jobs_path) o->jobs_path = a;
            else { fprintf(stderr, "error: \"%s\": sd batch merge takes one folder and one job file\n", a); return 1; }
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--manifest"))) o->out = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--format"))) o->format = v;
        else if ((v = clikit_value(argc, argv, &i, NULL, "--shard-count"))) {
            if (clikit_int(v, 1, 1000000, &o->shard_count, "--shard-count") != 0) return 1;
        } else if ((r = sheet_flag(argc, argv, &i, &o->sheet)) != 0) {
            if (r < 0) return 1;
        } else if (clikit_failed() || (r = cf_parse(argc, argv, &i, CF_BATCH, &o->cf)) < 0) {
            return 1;
        } else if (r == 0) {
            fprintf(stderr, "error: unknown option \"%s\" (see sd batch merge --help)\n", a);
            return 1;
        }
        if (clikit_failed()) return 1;
    }
    if (!o->dir) { fprintf(stderr, "error: no folder (usage: sd batch merge DIR [JOBS] ...)\n"); return 1; }
    if (o->cf.output) {
        fprintf(stderr, "error: -o: sd batch merge reads the folder given first; name the merged manifest with --manifest\n");
        return 1;
    }
    if (o->sheet.path && !o->jobs_path) { fprintf(stderr, "error: --contact-sheet needs the job file (its captions)\n"); return 1; }
    return 0;
}

/* ---- what the folder holds ---- */

typedef struct folder {
    char **names;      /* manifest files, sorted */
    int n;
    int *shard;        /* per manifest: its shard index, -1 for manifest.jsonl or another name */
    int count;         /* the shard count the names agree on; 1 for manifest.jsonl alone; 0 when unknown */
    manifest m;        /* every line, with its manifest (src) and text */
} folder;

static void folder_free(folder *f) {
    for (int i = 0; i < f->n; i++) free(f->names[i]);
    free(f->names);
    free(f->shard);
    manifest_free(&f->m);
}

static int read_folder(const merge_opts *o, folder *f) {
    char err[1024];
    memset(f, 0, sizeof *f);
    struct stat st;
    if (stat(o->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "error: %s: %s\n", o->dir, errno == ENOENT ? "no such folder" : "not a folder");
        return -1;
    }
    /* a merged manifest given a manifest* name in DIR must not be read back as one more shard */
    struct stat out_st;
    int out_exists = o->out && stat(o->out, &out_st) == 0;
    int n = manifest_list_dir(o->dir, &f->names, err, sizeof err);
    if (n < 0) { fprintf(stderr, "error: %s\n", err); return -1; }
    f->n = n;
    f->shard = calloc((size_t)n + 1, sizeof *f->shard);
    int *name_of = calloc((size_t)n + 1, sizeof *name_of); /* manifest_load_file's numbering -> names */
    if (!f->shard || !name_of) { free(name_of); fprintf(stderr, "error: out of memory\n"); return -1; }
    f->m.keep_lines = 1;
    int plain = 0, counts = 0;
    for (int i = 0; i < n; i++) {
        char path[8192];
        int si, sn, used = 0;
        snprintf(path, sizeof path, "%s/%s", o->dir, f->names[i]);
        f->shard[i] = -1;
        if (out_exists && stat(path, &st) == 0 && st.st_dev == out_st.st_dev && st.st_ino == out_st.st_ino) continue;
        name_of[f->m.files] = i;
        if (manifest_load_file(path, &f->m, err, sizeof err) != 0) {
            fprintf(stderr, "error: %s\n", err);
            free(name_of);
            return -1;
        }
        if (sscanf(f->names[i], "manifest.shard-%d-of-%d.jsonl%n", &si, &sn, &used) == 2 && !f->names[i][used] &&
            sn >= 1 && si >= 0 && si < sn) {
            f->shard[i] = si;
            if (!counts++) f->count = sn;
            else if (f->count != sn) f->count = -1; /* shards of different counts: no single plan of shards */
        } else if (!strcmp(f->names[i], "manifest.jsonl")) {
            plain = 1;
        }
    }
    for (int e = 0; e < f->m.n; e++) f->m.e[e].src = name_of[f->m.e[e].src];
    free(name_of);
    manifest_finish(&f->m);
    if (f->count < 0 || (plain && counts)) f->count = 0;
    else if (plain) f->count = 1;
    if (o->shard_count) f->count = o->shard_count;
    if (f->m.bad_lines && !o->cf.quiet)
        fprintf(stderr, "note: %s: %d torn last manifest lines skipped (a run killed mid-line leaves one)\n", o->dir,
                f->m.bad_lines);
    return 0;
}

/* The "model" of a manifest line; NULL when it has none. */
static char *line_model(const char *line) {
    cJSON *o = cJSON_Parse(line);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");
    char *s = cJSON_IsString(m) ? strdup(m->valuestring) : NULL;
    cJSON_Delete(o);
    return s;
}

/* The model name the keys were made with: -m's, or the one every manifest line names. Returns 0 or -1 (printed). */
static int pick_model(const merge_opts *o, const folder *f, char *mid, size_t cap) {
    if (o->cf.load.model_path || f->m.n == 0) { clikit_model_name(o->cf.load.model_path, mid, cap); return 0; }
    char *first = NULL;
    int rc = 0;
    for (int i = 0; i < f->m.n && rc == 0; i++) {
        char *s = line_model(f->m.e[i].line);
        if (!s) continue;
        if (!first) first = s;
        else {
            if (strcmp(first, s)) {
                fprintf(stderr, "error: %s: the manifests name more than one model (\"%s\", \"%s\"); give the batch's -m\n",
                        o->dir, first, s);
                rc = -1;
            }
            free(s);
        }
    }
    snprintf(mid, cap, "%s", first ? first : "(bundled)");
    free(first);
    return rc;
}

/* ---- the check ---- */

enum { IMG_OK, IMG_MISSING, IMG_NO_FILE, IMG_CORRUPT };

typedef struct tally {
    int ok, missing, corrupt, dup, shown;
    int *bad_in_shard; /* per shard of f->count: images missing or corrupt */
} tally;

static void report(const merge_opts *o, tally *t, int kind, int index, const char *file, const char *extra) {
    if (kind == IMG_OK) { t->ok++; return; }
    if (kind == IMG_CORRUPT) t->corrupt++;
    else t->missing++;
    if (t->shown++ >= SHOW_MAX) return;
    static const char *what[] = {"", "missing (no manifest line)", "missing (the manifest lists it, the file is gone)",
                                 "corrupt (the file's SHA-256 is not the manifest's)"};
    if (index >= 0) fprintf(stderr, "error: %s/%s: image %d %s%s\n", o->dir, file, index, what[kind], extra);
    else fprintf(stderr, "error: %s/%s: %s%s\n", o->dir, file, what[kind], extra);
}

/* Checks one image against the entries [lo, hi) of the merged list that may describe it; *pick gets the entry
 * whose SHA-256 the file has. Counts duplicates (more than one such line). */
static int check_image(const merge_opts *o, const folder *f, const char *file, const int *cand, int nc, int *pick,
                       tally *t) {
    *pick = -1;
    if (nc == 0) return IMG_MISSING;
    char path[8192], hex[65];
    snprintf(path, sizeof path, "%s/%s", o->dir, file);
    struct stat st;
    if (lstat(path, &st) != 0) return IMG_NO_FILE;
    if (!S_ISREG(st.st_mode) || sd_sha256_file(path, hex) != SD_OK) return IMG_CORRUPT;
    int same = 0;
    for (int k = 0; k < nc; k++)
        if (!strcmp(f->m.e[cand[k]].sha256, hex)) {
            if (*pick < 0) *pick = cand[k];
            same++;
        }
    if (*pick < 0) return IMG_CORRUPT;
    if (same > 1) {
        t->dup++;
        {
            fprintf(stderr, "note: %s/%s is listed %d times:", o->dir, file, same);
            for (int k = 0; k < nc; k++)
                if (!strcmp(f->m.e[cand[k]].sha256, hex)) fprintf(stderr, " %s", f->names[f->m.e[cand[k]].src]);
            fprintf(stderr, " (rendered more than once)\n");
        }
    }
    return IMG_OK;
}

/* Entries of `file` (with `key` unless NULL), in reading order. Returns their count. */
static int entries_of(const manifest *m, const char *file, const char *key, int *out, int cap) {
    int n = 0;
    for (int i = manifest_first(m, file); i < m->n && !strcmp(m->e[i].file, file); i++)
        if ((!key || !strcmp(m->e[i].key, key)) && n < cap) out[n++] = i;
    return n;
}

static void shard_of_index(int total, int count, int index, int *shard) {
    int lo, hi;
    for (int s = 0; s < count; s++) {
        plan_shard_range(total, s, count, &lo, &hi);
        if (index >= lo && index < hi) { *shard = s; return; }
    }
    *shard = -1;
}

int cmd_batch_merge(int argc, char **argv) {
    merge_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) { cf_free(&o.cf); return rc == 2 ? 0 : 1; }
    rc = 1;
    char outbuf[8192], mid[512], err[1024];
    batch_input in = {0};
    folder f = {0};
    tally t = {0};
    int *picks = NULL, npicks = 0, cand[256];
    const char *outp = o.out;
    if (!outp) { snprintf(outbuf, sizeof outbuf, "%s/merged.jsonl", o.dir); outp = outbuf; }
    if (o.jobs_path && batch_input_load(o.jobs_path, o.format, o.cf.params, &in) != 0) goto out;
    if (read_folder(&o, &f) != 0 || pick_model(&o, &f, mid, sizeof mid) != 0) goto out;
    /* checked before anything is read at length, so a merge that cannot write fails first; neither output may
     * replace one of the run's images (nor the sheet a manifest) */
    if ((o.sheet.path && sheet_check_clash(o.sheet.path, "--contact-sheet", o.dir, &in.pl, 1) != 0) ||
        (o.jobs_path && sheet_check_clash(outp, "--manifest", o.dir, &in.pl, 0) != 0))
        goto out;
    if (outfiles_check_file(outp, o.cf.overwrite, 0) != 0 || (o.sheet.path && outfiles_check_file(o.sheet.path, o.cf.overwrite, 1) != 0))
        goto out;
    int nshards = f.count > 0 ? f.count : 0;
    t.bad_in_shard = calloc((size_t)nshards + 1, sizeof *t.bad_in_shard);
    picks = calloc((size_t)(o.jobs_path ? in.pl.count : f.m.n) + 1, sizeof *picks);
    if (!t.bad_in_shard || !picks) { fprintf(stderr, "error: out of memory\n"); goto out; }
    if (o.jobs_path) {
        for (int i = 0; i < in.pl.count; i++) {
            const plan_image *im = &in.pl.images[i];
            char key[65];
            if (plan_image_key(&in.pl, im, mid, key) != 0) { fprintf(stderr, "error: out of memory\n"); goto out; }
            int nc = entries_of(&f.m, im->file, key, cand, 256), pick;
            int kind = check_image(&o, &f, im->file, cand, nc, &pick, &t);
            int s;
            shard_of_index(in.pl.count, nshards, i, &s);
            char extra[64] = "";
            if (kind != IMG_OK && s >= 0) {
                snprintf(extra, sizeof extra, ", shard %d/%d", s, nshards);
                t.bad_in_shard[s]++;
            }
            report(&o, &t, kind, im->index, im->file, extra);
            if (kind == IMG_OK) picks[npicks++] = pick;
        }
    } else {
        /* every file the manifests list, each once; its shard is the manifest that lists it */
        for (int i = 0; i < f.m.n;) {
            int nc = entries_of(&f.m, f.m.e[i].file, NULL, cand, 256), pick, next = i;
            while (next < f.m.n && !strcmp(f.m.e[next].file, f.m.e[i].file)) next++;
            int kind = check_image(&o, &f, f.m.e[i].file, cand, nc, &pick, &t);
            int s = f.shard[f.m.e[i].src];
            char extra[64] = "";
            if (kind != IMG_OK && s >= 0 && s < nshards) {
                snprintf(extra, sizeof extra, ", shard %d/%d", s, nshards);
                t.bad_in_shard[s]++;
            }
            report(&o, &t, kind, -1, f.m.e[i].file, extra);
            if (kind == IMG_OK) picks[npicks++] = pick;
            i = next;
        }
        /* a shard that never wrote a line left no manifest at all */
        for (int s = 0; s < nshards && nshards > 1; s++) {
            int seen = 0;
            for (int k = 0; k < f.n; k++) seen |= f.shard[k] == s;
            if (!seen) {
                fprintf(stderr, "error: %s: no manifest.shard-%d-of-%d.jsonl (shard %d never finished an image; give JOBS to list its images)\n",
                        o.dir, s, nshards, s);
                t.bad_in_shard[s]++;
                t.missing++;
            }
        }
    }
    if (t.shown > SHOW_MAX) fprintf(stderr, "error: ... and %d more\n", t.shown - SHOW_MAX);
    if (t.missing || t.corrupt) {
        for (int s = 0; s < nshards; s++)
            if (t.bad_in_shard[s])
                fprintf(stderr, "error: shard %d/%d must run again (--shard %d/%d): %d images missing or corrupt\n", s,
                        nshards, s, nshards, t.bad_in_shard[s]);
        if (!nshards) fprintf(stderr, "error: the shard count is not known (give --shard-count N): run the batch again without --shard, it renders only what is missing\n");
        if (t.corrupt) fprintf(stderr, "error: a corrupt image is not sd's own any more: move it away (or add --overwrite) before the rerun\n");
        fprintf(stderr, "error: %s: incomplete: %d images ok, %d missing, %d corrupt; nothing written\n", o.dir, t.ok,
                t.missing, t.corrupt);
        goto out;
    }
    /* one manifest: the lines in the order of the plan (or of file names), each image once */
    size_t cap = 1, used = 0;
    for (int i = 0; i < npicks; i++) cap += strlen(f.m.e[picks[i]].line) + 1;
    char *buf = malloc(cap);
    if (!buf) { fprintf(stderr, "error: out of memory\n"); goto out; }
    for (int i = 0; i < npicks; i++) {
        size_t l = strlen(f.m.e[picks[i]].line);
        memcpy(buf + used, f.m.e[picks[i]].line, l);
        used += l;
        buf[used++] = '\n';
    }
    int wrc = clikit_write_file(outp, buf, used);
    free(buf);
    if (wrc != 0) goto out;
    if (o.sheet.path && sheet_write(&o.sheet, o.dir, &in.pl, 0, in.pl.count, o.cf.overwrite) != 0) goto out;
    printf("%s: complete: %d images from %d manifests%s -> %s%s%s\n", o.dir, npicks, f.m.files,
               t.dup ? (snprintf(err, sizeof err, ", %d listed more than once", t.dup), err) : "", outp,
               o.sheet.path ? ", " : "", o.sheet.path ? o.sheet.path : "");
    rc = 0;
out:
    free(picks);
    free(t.bad_in_shard);
    folder_free(&f);
    batch_input_free(&in);
    cf_free(&o.cf);
    return rc;
}
