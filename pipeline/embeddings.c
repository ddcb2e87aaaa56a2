/* embeddings.c — the textual-inversion embeddings of a folder: their names tokenized for the prompt chunker, ids
 * beyond the vocabulary for their vectors, the vectors read when a prompt first uses them (see embeddings.h). */
#include "embeddings.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/error.h"
#include "../core/sha256.h"

typedef struct emb_entry {
    char *name, *path;
    int pickle;
    int foreign;           /* a safetensors file that is no embedding at all (a LoRA ...): skipped, as A1111 does */
    int vectors;           /* from the header (1 for files that cannot be used: they still need an id) */
    int offset;            /* of its first vector among the folder's */
    char *bad;             /* why it is no embedding, or NULL */
    int xl;                /* clip_l + clip_g */
    int width, width_g;
    float *vec, *vec_g;    /* read when first used */
    char hash[13];
} emb_entry;

struct emb_state {
    char *dir;
    long long dir_mtime;
    emb_entry *v;
    int n, total;
    clip_embedding *list[2];   /* per tokenizer, one per entry */
    const float **rows[2];     /* [total] vectors by id - first, NULL until read */
    clip_extra extra[2];
    char *hashes;
};

static void clear(emb_state *s) {
    for (int i = 0; i < s->n; i++) {
        emb_entry *e = &s->v[i];
        free(e->name), free(e->path), free(e->bad), free(e->vec), free(e->vec_g);
    }
    for (int k = 0; k < 2; k++) {
        for (int i = 0; s->list[k] && i < s->n; i++) free((void *)s->list[k][i].ids);
        free(s->list[k]);
        free(s->rows[k]);
        s->list[k] = NULL;
        s->rows[k] = NULL;
    }
    free(s->v);
    free(s->dir);
    free(s->hashes);
    s->v = NULL, s->dir = NULL, s->hashes = NULL;
    s->n = s->total = 0;
}

void emb_state_free(emb_state *s) {
    if (!s) return;
    clear(s);
    free(s);
}

static int ends(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a > b && !strcmp(s + a - b, tail);
}

/* Every .safetensors and pickle below dir (AUTOMATIC1111 walks subfolders too). */
static sd_status walk(const char *dir, int depth, char ***paths, int *n) {
    DIR *d = opendir(dir);
    if (!d) return err_fail(SD_ERR_IO, "%s: cannot read the embeddings folder", dir);
    struct dirent *de;
    sd_status st = SD_OK;
    while (st == SD_OK && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        size_t l = strlen(dir) + strlen(de->d_name) + 2;
        char *p = malloc(l);
        if (!p) { st = err_fail(SD_ERR_MEMORY, "out of memory"); break; }
        snprintf(p, l, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode) && depth < 8) {
            st = walk(p, depth + 1, paths, n);
            free(p);
        } else if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) &&
                   (ends(p, ".safetensors") || ends(p, ".pt") || ends(p, ".bin") || ends(p, ".pth") || ends(p, ".ckpt"))) {
            char **v = realloc(*paths, (size_t)(*n + 1) * sizeof *v);
            if (!v) { free(p); st = err_fail(SD_ERR_MEMORY, "out of memory"); break; }
            *paths = v;
            v[(*n)++] = p;
        } else {
            free(p);
        }
    }
    closedir(d);
    return st;
}

static int by_path(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Shape of an embedding file from its header: the vectors, their width(s), or why it is none. */
static void inspect(emb_entry *e) {
    e->vectors = 1;
    if (e->pickle) return;
    st_file *f;
    if (st_open(e->path, &f) != SD_OK) {
        e->bad = strdup(sd_last_error());
        return;
    }
    const st_tensor *l = st_find(f, "clip_l"), *g = st_find(f, "clip_g"), *t = st_count(f) == 1 ? st_at(f, 0) : NULL;
    char why[256] = "";
    if (l && g) {
        e->xl = 1;
        if (l->ndim < 1 || l->ndim > 2 || g->ndim < 1 || g->ndim > 2 || (l->ndim == 2 ? l->shape[0] : 1) != (g->ndim == 2 ? g->shape[0] : 1))
            snprintf(why, sizeof why, "clip_l and clip_g do not hold the same number of vectors");
        else {
            e->vectors = l->ndim == 2 ? (int)l->shape[0] : 1;
            e->width = (int)l->shape[l->ndim - 1], e->width_g = (int)g->shape[g->ndim - 1];
        }
        if (!st_dtype_is_float(l->dtype) || !st_dtype_is_float(g->dtype)) snprintf(why, sizeof why, "its vectors are not floats");
    } else if (t) {
        if (t->ndim < 1 || t->ndim > 2 || !st_dtype_is_float(t->dtype))
            snprintf(why, sizeof why, "\"%s\" is a %dD %s tensor, not vectors", t->name, t->ndim, st_dtype_name(t->dtype));
        else {
            e->vectors = t->ndim == 2 ? (int)t->shape[0] : 1;
            e->width = (int)t->shape[t->ndim - 1];
        }
    } else {
        snprintf(why, sizeof why, "not a textual-inversion embedding (%d tensors; expected one, or clip_l and clip_g)", st_count(f));
        e->foreign = 1;
    }
    if (!why[0] && (e->vectors < 1 || e->vectors > 75)) snprintf(why, sizeof why, "%d vectors (1 to 75 fit in a prompt window)", e->vectors);
    if (why[0]) {
        e->bad = strdup(why);
        e->vectors = 1;
    }
    st_close(f);
}

static const clip_tokenizer *tokenizer(const sd_ctx *c, int k) {
    const clip_tokenizer *t = k ? c->tok2 : c->tok;
    return t ? t : clip_tokenizer_default();
}

static sd_status scan(sd_ctx *c, emb_state *s, const char *dir) {
    char **paths = NULL;
    int n = 0;
    sd_status st = walk(dir, 0, &paths, &n);
    if (st == SD_OK && n) qsort(paths, n, sizeof *paths, by_path);
    s->v = calloc(n ? n : 1, sizeof *s->v);
    s->dir = strdup(dir);
    int parts = c->has_te2 ? 2 : 1;
    for (int k = 0; k < parts && st == SD_OK; k++) s->list[k] = calloc(n ? n : 1, sizeof *s->list[k]);
    if (st == SD_OK && (!s->v || !s->dir || !s->list[0] || (parts == 2 && !s->list[1]))) st = err_fail(SD_ERR_MEMORY, "out of memory");
    for (int i = 0; i < n && st == SD_OK; i++) {
        emb_entry *e = &s->v[s->n++];
        e->path = paths[i];
        paths[i] = NULL;
        const char *b = strrchr(e->path, '/') + 1, *dot = strrchr(b, '.');
        e->name = strndup(b, (size_t)(dot - b));
        e->pickle = !ends(e->path, ".safetensors");
        if (!e->name) { st = err_fail(SD_ERR_MEMORY, "out of memory"); break; }
        inspect(e);
        if (e->foreign) { /* A1111 logs and skips it; its name must not replace the prompt's words either */
            fprintf(stderr, "warning: %s: %s: skipped\n", e->path, e->bad);
            free(e->name), free(e->path), free(e->bad);
            *e = (emb_entry){0};
            s->n--;
            continue;
        }
        e->offset = s->total;
        s->total += e->vectors;
        for (int k = 0; k < parts && st == SD_OK; k++) {
            clip_ids ids;
            if ((st = clip_tokenize(tokenizer(c, k), e->name, strlen(e->name), 0, &ids)) != SD_OK) break;
            clip_embedding *x = &s->list[k][s->n - 1]; /* entries skipped above leave no gap */
            x->ids = ids.ids; /* ownership moves to the list */
            x->n_ids = ids.n;
            x->vectors = e->vectors;
            x->first = (k ? c->te2.cfg.vocab : c->te.cfg.vocab) + e->offset;
        }
    }
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    for (int k = 0; k < parts && st == SD_OK; k++) {
        s->rows[k] = calloc(s->total ? s->total : 1, sizeof *s->rows[k]);
        if (!s->rows[k]) st = err_fail(SD_ERR_MEMORY, "out of memory");
        s->extra[k] = (clip_extra){(k ? c->te2.cfg.vocab : c->te.cfg.vocab), s->total, s->rows[k]};
    }
    return st;
}

sd_status emb_begin(sd_ctx *c, const char *dir) {
    if (!c->emb && !(c->emb = calloc(1, sizeof *c->emb))) return err_fail(SD_ERR_MEMORY, "out of memory");
    emb_state *s = c->emb;
    free(s->hashes);
    s->hashes = NULL;
    if (!dir) {
        clear(s);
        return SD_OK;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return err_fail(SD_ERR_IO, "%s: no such embeddings folder", dir);
    long long mt = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
    if (!s->dir || strcmp(s->dir, dir) || s->dir_mtime != mt) {
        clear(s);
        sd_status st = scan(c, s, dir);
        if (st != SD_OK) {
            clear(s);
            return st;
        }
        s->dir_mtime = mt;
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; s->list[k] && i < s->n; i++) s->list[k][i].used = 0;
    c->te.extra = s->list[0] ? &s->extra[0] : NULL;
    if (c->has_te2) c->te2.extra = s->list[1] ? &s->extra[1] : NULL;
    return SD_OK;
}

clip_embedding *emb_list(sd_ctx *c, int second, int *n) {
    emb_state *s = c->emb;
    *n = s && s->list[second] ? s->n : 0;
    return *n ? s->list[second] : NULL;
}

static const char *family_of_width(int w) { return w == 768 ? "SD 1.x" : w == 1024 ? "SD 2.x" : NULL; }

/* Reads e's vectors after checking they fit the model's encoder(s). */
static sd_status load_entry(sd_ctx *c, emb_state *s, emb_entry *e) {
    if (e->pickle) return model_files_refuse_pickle(e->path);
    if (e->bad) return err_fail(SD_ERR_MODEL, "%s: %s", e->path, e->bad);
    int xl_model = c->files.family == MODEL_FAMILY_SDXL;
    const char *model = model_family_name(c->files.family);
    if (xl_model && !e->xl) {
        const char *fam = family_of_width(e->width);
        return err_fail(SD_ERR_MODEL, "%s: an embedding for %s (one %d-wide vector set, no clip_l + clip_g); the model is %s", e->path,
                        fam ? fam : "a single text encoder", e->width, model);
    }
    if (!xl_model && e->xl) return err_fail(SD_ERR_MODEL, "%s: an SDXL embedding (clip_l + clip_g); the model is %s", e->path, model);
    if (e->xl && (e->width != c->te.cfg.width || e->width_g != c->te2.cfg.width))
        return err_fail(SD_ERR_MODEL, "%s: its vectors are %d and %d wide, the model's text encoders %d and %d (%s)", e->path, e->width, e->width_g,
                        c->te.cfg.width, c->te2.cfg.width, model);
    if (!e->xl && e->width != c->te.cfg.width) {
        const char *fam = family_of_width(e->width);
        return err_fail(SD_ERR_MODEL, "%s: its vectors are %d wide%s%s, the model's text encoder is %d wide (%s)", e->path, e->width,
                        fam ? ": an embedding for " : "", fam ? fam : "", c->te.cfg.width, model);
    }
    st_file *f;
    sd_status st = st_open(e->path, &f);
    if (st != SD_OK) return st;
    const st_tensor *a = e->xl ? st_find(f, "clip_l") : st_at(f, 0), *g = e->xl ? st_find(f, "clip_g") : NULL;
    e->vec = malloc((size_t)e->vectors * e->width * sizeof *e->vec);
    if (g) e->vec_g = malloc((size_t)e->vectors * e->width_g * sizeof *e->vec_g);
    if (!a || !e->vec || (g && !e->vec_g) || a->numel != (int64_t)e->vectors * e->width || (g && g->numel != (int64_t)e->vectors * e->width_g))
        st = err_fail(SD_ERR_MODEL, "%s: changed while in use", e->path);
    /* a NaN vector would make the whole prompt's conditioning NaN: a black picture with no word of why */
    if (st == SD_OK) st = st_check_finite(f, a);
    if (st == SD_OK && g) st = st_check_finite(f, g);
    if (st == SD_OK) st = st_read_f32(f, a, e->vec);
    if (st == SD_OK && g) st = st_read_f32(f, g, e->vec_g);
    st_close(f);
    char hex[65];
    if (st == SD_OK) st = sd_sha256_file(e->path, hex);
    if (st != SD_OK) {
        free(e->vec), free(e->vec_g);
        e->vec = e->vec_g = NULL;
        return st;
    }
    snprintf(e->hash, sizeof e->hash, "%.12s", hex);
    for (int v = 0; v < e->vectors; v++) {
        s->rows[0][e->offset + v] = e->vec + (size_t)v * e->width;
        if (g) s->rows[1][e->offset + v] = e->vec_g + (size_t)v * e->width_g;
    }
    return SD_OK;
}

static int used(const emb_state *s, int i) { return (s->list[0] && s->list[0][i].used) || (s->list[1] && s->list[1][i].used); }

sd_status emb_load_used(sd_ctx *c) {
    emb_state *s = c->emb;
    for (int i = 0; s && i < s->n; i++) {
        if (!used(s, i) || s->v[i].vec) continue;
        sd_status st = load_entry(c, s, &s->v[i]);
        if (st != SD_OK) return st;
    }
    return SD_OK;
}

const char *emb_hashes(sd_ctx *c) {
    emb_state *s = c->emb;
    if (!s) return NULL;
    free(s->hashes);
    s->hashes = NULL;
    size_t cap = 1, o = 0;
    for (int i = 0; i < s->n; i++)
        if (used(s, i) && s->v[i].vec) cap += strlen(s->v[i].name) + 20;
    if (cap == 1 || !(s->hashes = malloc(cap))) return NULL;
    for (int i = 0; i < s->n; i++) {
        if (!used(s, i) || !s->v[i].vec) continue;
        if (o) o += snprintf(s->hashes + o, cap - o, ", ");
        for (const char *p = s->v[i].name; *p; p++) /* A1111 drops ':' and ',' from the name */
            if (*p != ':' && *p != ',') s->hashes[o++] = *p;
        o += snprintf(s->hashes + o, cap - o, ": %s", s->v[i].hash);
    }
    return s->hashes;
}

void emb_end(sd_ctx *c) {
    c->te.extra = NULL;
    c->te2.extra = NULL;
}
