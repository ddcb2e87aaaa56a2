/* lora_apply.c — merges a call's adapters into the loaded model: every module placed on its layer (errors for
 * files that fit no layer or another family), then each touched weight rebuilt as base + Σ updates from the
 * checkpoint's own tensor, in the order of the call, and weights no adapter touches any more put back as loaded.
 * The set merged now is remembered, so a call with the same adapters costs nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/error.h"
#include "../core/sha256.h"
#include "gen.h"
#include "lora.h"

lora_state *lora_state_new(void) {
    lora_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    for (int p = 0; p < LORA_PARTS; p++)
        if (!(s->src[p] = wsrc_set_new())) {
            lora_state_free(s);
            return NULL;
        }
    return s;
}

static void forget_applied(lora_state *s) {
    for (int i = 0; i < s->napplied; i++) {
        free(s->applied[i].name);
        free(s->applied[i].path);
    }
    free(s->applied);
    free(s->applied_id);
    free(s->hashes);
    s->applied = NULL;
    s->applied_id = NULL;
    s->hashes = NULL;
    s->napplied = 0;
}

void lora_state_free(lora_state *s) {
    if (!s) return;
    forget_applied(s);
    for (int p = 0; p < LORA_PARTS; p++) {
        wsrc_set_free(s->src[p]);
        lora_index_free(s->index[p]);
    }
    free(s);
}

wsrc_set *lora_sources(lora_state *s, int part) { return s ? s->src[part] : NULL; }

/* A file's identity: size and modification time (a file rewritten in place is merged again). */
static sd_status identify(const char *path, long long id[3]) {
    struct stat sb;
    if (stat(path, &sb) != 0) return err_fail(SD_ERR_IO, "%s: cannot read the LoRA file", path);
    id[0] = (long long)sb.st_size, id[1] = (long long)sb.st_mtim.tv_sec, id[2] = (long long)sb.st_mtim.tv_nsec;
    return SD_OK;
}

static int same_set(const lora_state *s, const lora_call *lc, const long long *id) {
    if (s->napplied != lc->n) return 0;
    for (int i = 0; i < lc->n; i++) {
        const lora_use *a = &s->applied[i], *b = &lc->v[i];
        if (strcmp(a->path, b->path) || a->te != b->te || a->unet != b->unet || memcmp(s->applied_id + 3 * i, id + 3 * i, 3 * sizeof *id))
            return 0;
    }
    return 1;
}

typedef struct contrib {
    int part;
    wsrc *target;
    int file, module;
    float strength;
} contrib;

/* Puts every weight that holds a merge back as loaded. */
static sd_status restore_all(lora_state *s) {
    sd_status first = SD_OK;
    for (int p = 0; p < LORA_PARTS; p++)
        for (int i = 0; i < wsrc_count(s->src[p]); i++) {
            wsrc *w = wsrc_at(s->src[p], i);
            if (!w->modified) continue;
            sd_status st = wsrc_upload(w, NULL);
            if (st != SD_OK && first == SD_OK) first = st;
        }
    return first;
}

/* Places the modules of file f on the model's layers: appends to *cv, reports what found no layer. */
static sd_status place(sd_ctx *c, const lora_use *u, const ad_file *a, int f, contrib **cv, int *nc) {
    lora_state *s = c->lora;
    int lpb = unet_get_config(c->unet)->layers[0], placed = 0, unplaced = 0;
    char why[256];
    if (!a->n) {
        return err_fail(SD_ERR_MODEL, "%s: no LoRA, LyCORIS or DoRA modules in it (%d tensors, e.g. \"%s\")", u->path, st_count(a->f),
                        st_count(a->f) ? st_at(a->f, 0)->name : "none");
    }
    for (int i = 0; i < a->n; i++) {
        const ad_module *m = &a->mod[i];
        int part = -1;
        wsrc *w = lora_target(s, m->name, lpb, &part);
        if (!w) {
            if (c->verbose) fprintf(stderr, "lora %s: module \"%s\" matches no layer of this model\n", u->name, m->name);
            unplaced++;
            continue;
        }
        if (ad_check(a, m, w->w->out, w->w->in, w->w->kh, w->w->kw) != SD_OK) {
            model_family fam = lora_family(a, why, sizeof why);
            if (!fam || fam == c->files.family) return SD_ERR_MODEL;
            char detail[1024];
            const char *e = sd_last_error();
            size_t pl = strlen(u->path);
            snprintf(detail, sizeof detail, "%s", !strncmp(e, u->path, pl) && e[pl] == ':' ? e + pl + 2 : e);
            return err_fail(SD_ERR_MODEL, "%s: a LoRA for %s (%s); the model is %s (%s)", u->path, model_family_name(fam), why,
                            model_family_name(c->files.family), detail);
        }
        contrib *v = realloc(*cv, (size_t)(*nc + 1) * sizeof *v);
        if (!v) return err_fail(SD_ERR_MEMORY, "out of memory");
        *cv = v;
        v[(*nc)++] = (contrib){part, w, f, i, part == LORA_UNET ? u->unet : u->te};
        placed++;
    }
    if (!placed) {
        model_family fam = lora_family(a, why, sizeof why);
        if (fam && fam != c->files.family)
            return err_fail(SD_ERR_MODEL, "%s: a LoRA for %s (%s); the model is %s", u->path, model_family_name(fam), why, model_family_name(c->files.family));
        return err_fail(SD_ERR_MODEL, "%s: none of its %d modules matches a layer of this %s model (e.g. \"%s\"; %s)", u->path, a->n,
                        model_family_name(c->files.family), a->mod[0].name, why);
    }
    for (int i = 0; i < a->nstray && c->verbose; i++) fprintf(stderr, "lora %s: tensor \"%s\" belongs to no module this engine applies\n", u->name, a->stray[i]);
    if (unplaced + a->nstray)
        fprintf(stderr, "warning: lora %s: %d module%s matching no layer of the model and %d tensor%s of no supported module left out%s\n", u->name,
                unplaced, unplaced == 1 ? "" : "s", a->nstray, a->nstray == 1 ? "" : "s", c->verbose ? "" : " (-v lists them)");
    return SD_OK;
}

static int by_target(const void *x, const void *y) {
    const contrib *a = x, *b = y; /* by part, then by place in the part's registry: the order merge() walks them */
    if (a->part != b->part) return a->part - b->part;
    if (a->target != b->target) return a->target < b->target ? -1 : 1;
    return a->file != b->file ? a->file - b->file : a->module - b->module; /* the call's order */
}

/* Every weight touched by cv (sorted by target) becomes base + its updates; every other merged one goes back. */
static sd_status merge(lora_state *s, ad_file **files, const contrib *cv, int nc) {
    sd_status st = SD_OK;
    size_t cap = 0;
    float *base = NULL, *acc = NULL, *scratch = NULL;
    int k = 0;
    for (int p = 0; p < LORA_PARTS && st == SD_OK; p++)
        for (int i = 0; i < wsrc_count(s->src[p]) && st == SD_OK; i++) {
            wsrc *w = wsrc_at(s->src[p], i);
            while (k < nc && (cv[k].part < p || (cv[k].part == p && cv[k].target < w))) k++;
            if (k >= nc || cv[k].part != p || cv[k].target != w) {
                if (w->modified) st = wsrc_upload(w, NULL);
                continue;
            }
            size_t n = wsrc_numel(w);
            if (n > cap) {
                free(base), free(acc), free(scratch);
                base = malloc(n * sizeof *base), acc = malloc(n * sizeof *acc), scratch = malloc(n * sizeof *scratch);
                cap = n;
                if (!base || !acc || !scratch) {
                    st = err_fail(SD_ERR_MEMORY, "out of memory merging \"%s\"", w->name);
                    cap = 0;
                    break;
                }
            }
            st = wsrc_read(w, acc);
            int dora = 0; /* only DoRA reads the original beside the running sum */
            for (int j = k; j < nc && cv[j].part == p && cv[j].target == w; j++) dora |= files[cv[j].file]->mod[cv[j].module].dora != NULL;
            if (st == SD_OK && dora) memcpy(base, acc, n * sizeof *acc);
            for (; k < nc && cv[k].part == p && cv[k].target == w && st == SD_OK; k++) {
                const be_weight *bw = w->w;
                st = ad_apply(files[cv[k].file], &files[cv[k].file]->mod[cv[k].module], base, bw->out, bw->in, bw->kh, bw->kw,
                              cv[k].strength, acc, scratch);
            }
            if (st == SD_OK) st = wsrc_upload(w, acc);
        }
    free(base), free(acc), free(scratch);
    return st;
}

/* Every value of an adapter file before any is merged: a NaN in one factor makes the whole layer NaN and the
 * picture black (exit 0). LoRA files are small, so reading them all once per change of LoRA set costs little. */
static sd_status all_finite(const ad_file *a) {
    sd_status st = SD_OK;
    for (int i = 0; i < st_count(a->f) && st == SD_OK; i++) st = st_check_finite(a->f, st_at(a->f, i));
    return st;
}

sd_status lora_apply(sd_ctx *c, const lora_call *lc) {
    lora_state *s = c->lora;
    long long *id = calloc((size_t)(lc->n ? lc->n : 1) * 3, sizeof *id);
    if (!id) return err_fail(SD_ERR_MEMORY, "out of memory");
    sd_status st = SD_OK;
    for (int i = 0; i < lc->n && st == SD_OK; i++) st = identify(lc->v[i].path, id + 3 * i);
    if (st != SD_OK || same_set(s, lc, id)) {
        free(id);
        return st;
    }
    double t0 = gen_now();
    ad_file **files = calloc(lc->n ? lc->n : 1, sizeof *files);
    contrib *cv = NULL;
    int nc = 0;
    if (!files) st = err_fail(SD_ERR_MEMORY, "out of memory");
    for (int i = 0; i < lc->n && st == SD_OK; i++) {
        st = ad_open(lc->v[i].path, &files[i]);
        if (st == SD_OK) st = all_finite(files[i]);
        if (st == SD_OK) st = place(c, &lc->v[i], files[i], i, &cv, &nc);
    }
    if (st == SD_OK) {
        if (nc) qsort(cv, (size_t)nc, sizeof *cv, by_target); /* qsort must not get NULL, even for no elements */
        st = merge(s, files, cv, nc);
    }
    forget_applied(s);
    if (st != SD_OK) {
        restore_all(s); /* the model is its base again: a failed call leaves nothing half merged */
    } else if (lc->n) {
        s->applied = calloc(lc->n, sizeof *s->applied);
        if (!s->applied) {
            st = err_fail(SD_ERR_MEMORY, "out of memory");
            restore_all(s);
        } else {
            for (int i = 0; i < lc->n; i++) {
                s->applied[i] = lc->v[i];
                s->applied[i].name = strdup(lc->v[i].name);
                s->applied[i].path = strdup(lc->v[i].path);
            }
            s->napplied = lc->n;
            s->applied_id = id;
            id = NULL;
        }
    }
    if (st == SD_OK && c->verbose)
        fprintf(stderr, "lora: %d file%s, %d module%s merged in %.2f s\n", lc->n, lc->n == 1 ? "" : "s", nc, nc == 1 ? "" : "s", gen_now() - t0);
    for (int i = 0; i < lc->n && files; i++) ad_close(files[i]);
    free(files);
    free(cv);
    free(id);
    return st;
}

/* AUTOMATIC1111's LoRA hash: SHA-256 of the file after its safetensors header (sd-scripts' "addnet" hash), first
 * 12 hex digits; remembered in the hash cache by path, size and time. */
static sd_status addnet_hash(const char *path, const long long id[3], char out[13]) {
    char key[4400], real[4096], hex[65];
    int keyed = realpath(path, real) != NULL;
    if (keyed) snprintf(key, sizeof key, "addnet:%s\t%lld\t%lld", real, id[0], id[1]);
    if (keyed && hash_cache_get(key, hex)) {
        snprintf(out, 13, "%.12s", hex);
        return SD_OK;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_fail(SD_ERR_IO, "%s: cannot open", path);
    unsigned char h8[8];
    uint64_t n = 0;
    sd_status st = fread(h8, 1, 8, fp) == 8 ? SD_OK : err_fail(SD_ERR_FORMAT, "%s: shorter than a safetensors header", path);
    for (int i = 7; i >= 0; i--) n = n << 8 | h8[i];
    if (st == SD_OK && fseeko(fp, (off_t)n, SEEK_CUR) != 0) st = err_fail(SD_ERR_IO, "%s: cannot seek", path);
    unsigned char *buf = st == SD_OK ? malloc(1 << 20) : NULL;
    if (st == SD_OK && !buf) st = err_fail(SD_ERR_MEMORY, "out of memory");
    if (st == SD_OK) {
        sha256_ctx h;
        sha256_init(&h);
        size_t r;
        while ((r = fread(buf, 1, 1 << 20, fp)) > 0) sha256_update(&h, buf, r);
        uint8_t d[32];
        sha256_final(&h, d);
        sha256_hex(d, hex);
        snprintf(out, 13, "%.12s", hex);
        if (keyed) hash_cache_put(key, hex);
    }
    free(buf);
    fclose(fp);
    return st;
}

const char *lora_hashes(sd_ctx *c) {
    lora_state *s = c->lora;
    if (!s->napplied) return NULL;
    if (s->hashes) return s->hashes;
    size_t cap = 64, o = 0;
    for (int i = 0; i < s->napplied; i++) cap += strlen(s->applied[i].name) + 20;
    char *t = malloc(cap);
    if (!t) return NULL;
    t[0] = 0;
    for (int i = 0; i < s->napplied; i++) {
        char h[13];
        if (addnet_hash(s->applied[i].path, s->applied_id + 3 * i, h) != SD_OK) continue;
        /* A1111 drops ':' and ',' from the name, which would break its own list syntax */
        o += snprintf(t + o, cap - o, "%s", o ? ", " : "");
        for (const char *p = s->applied[i].name; *p; p++)
            if (*p != ':' && *p != ',') t[o++] = *p;
        o += snprintf(t + o, cap - o, ": %s", h);
    }
    s->hashes = t;
    return t;
}
