/* weights.c — canonical-name tensor map for model loaders (open-addressing hash table). */
#include "weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

typedef struct wentry {
    char *name;              /* canonical */
    const st_file *file;     /* NULL for virtual entries */
    st_tensor t;             /* copy; t.name is the name in the file */
    int used;
} wentry;

struct wmap {
    wentry *e;
    int count, cap;
    int *slots; /* hash slots -> entry index, -1 empty */
    int nslots;
    wsrc_set *rec; /* where uploads are noted (wmap_record), or NULL */
};

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

wmap *wmap_new(void) { return calloc(1, sizeof(wmap)); }

void wmap_free(wmap *m) {
    if (!m) return;
    for (int i = 0; i < m->count; i++) {
        free(m->e[i].name);
        if (!m->e[i].file) free((char *)m->e[i].t.name);
    }
    free(m->e);
    free(m->slots);
    free(m);
}

static int find_index(const wmap *m, const char *name) {
    if (!m->nslots) return -1;
    for (uint64_t h = hash_str(name) & (m->nslots - 1);; h = (h + 1) & (m->nslots - 1)) {
        int i = m->slots[h];
        if (i < 0) return -1;
        if (!strcmp(m->e[i].name, name)) return i;
    }
}

static sd_status rehash(wmap *m, int nslots) {
    int *s = malloc(nslots * sizeof(int));
    if (!s) return err_fail(SD_ERR_MEMORY, "out of memory");
    for (int i = 0; i < nslots; i++) s[i] = -1;
    for (int i = 0; i < m->count; i++) {
        uint64_t h = hash_str(m->e[i].name) & (nslots - 1);
        while (s[h] >= 0) h = (h + 1) & (nslots - 1);
        s[h] = i;
    }
    free(m->slots);
    m->slots = s;
    m->nslots = nslots;
    return SD_OK;
}

static sd_status add_entry(wmap *m, const char *name, const st_file *f, const st_tensor *t) {
    if (find_index(m, name) >= 0) {
        const wentry *o = &m->e[find_index(m, name)];
        return err_fail(SD_ERR_MODEL, "%s: tensors \"%s\" and \"%s\" both map to \"%s\"", f ? st_path(f) : "model", o->t.name, t->name, name);
    }
    if (m->count == m->cap) {
        int cap = m->cap ? 2 * m->cap : 256;
        wentry *e = realloc(m->e, cap * sizeof *e);
        if (!e) return err_fail(SD_ERR_MEMORY, "out of memory");
        m->e = e;
        m->cap = cap;
    }
    wentry *e = &m->e[m->count];
    e->name = strdup(name);
    e->file = f;
    e->t = *t;
    e->used = 0;
    m->count++;
    if (2 * m->count > m->nslots) return rehash(m, m->nslots ? 2 * m->nslots : 512);
    uint64_t h = hash_str(name) & (m->nslots - 1);
    while (m->slots[h] >= 0) h = (h + 1) & (m->nslots - 1);
    m->slots[h] = m->count - 1;
    return SD_OK;
}

sd_status wmap_add_file(wmap *m, const st_file *f, const char *prefix, wmap_rename_fn fn, void *user) {
    size_t pl = strlen(prefix);
    char buf[512];
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (strncmp(t->name, prefix, pl)) continue;
        const char *rest = t->name + pl;
        if (fn) {
            if (!fn(rest, buf, sizeof buf, user)) continue;
            rest = buf;
        }
        sd_status st = add_entry(m, rest, f, t);
        if (st != SD_OK) return st;
    }
    return SD_OK;
}

sd_status wmap_add_virtual(wmap *m, const char *name, st_dtype dtype, int ndim, const int64_t *shape) {
    st_tensor t = {0};
    t.name = strdup(name);
    t.dtype = dtype;
    t.ndim = ndim;
    t.numel = 1;
    for (int d = 0; d < ndim; d++) { t.shape[d] = shape[d]; t.numel *= shape[d]; }
    t.nbytes = (size_t)t.numel * st_dtype_size(dtype);
    sd_status st = add_entry(m, name, NULL, &t);
    if (st != SD_OK) free((char *)t.name);
    return st;
}

int wmap_count(const wmap *m) { return m->count; }
const char *wmap_name(const wmap *m, int i) { return m->e[i].name; }

const st_tensor *wmap_find(const wmap *m, const char *name) {
    int i = find_index(m, name);
    return i < 0 ? NULL : &m->e[i].t;
}

int wmap_has(const wmap *m, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return find_index(m, name) >= 0;
}

void wmap_mark_used(wmap *m, const char *name) {
    int i = find_index(m, name);
    if (i >= 0) m->e[i].used = 1;
}

static const char *where(const wentry *e) { return e->file ? st_path(e->file) : "model"; }

static void shape_str(const int64_t *s, int nd, char *buf, size_t cap) {
    size_t o = 0;
    o += snprintf(buf + o, cap - o, "[");
    for (int d = 0; d < nd && o < cap; d++) o += snprintf(buf + o, cap - o, d ? ", %lld" : "%lld", (long long)s[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

static sd_status vload(be *b, wmap *m, be_weight *w, be_wkind kind, int out, int in, int kh, int kw, const char *fmt, va_list ap) {
    char name[512];
    vsnprintf(name, sizeof name, fmt, ap);
    memset(w, 0, sizeof *w);
    int i = find_index(m, name);
    if (i < 0) return err_fail(SD_ERR_MODEL, "missing tensor \"%s\"", name);
    wentry *e = &m->e[i];
    const st_tensor *t = &e->t;
    int64_t want[4];
    int nd;
    switch (kind) {
    case BE_W_VEC: want[0] = out; nd = 1; break;
    case BE_W_CONV: want[0] = out; want[1] = in; want[2] = kh; want[3] = kw; nd = 4; break;
    default: want[0] = out; want[1] = in; nd = 2; break;
    }
    int ok = t->ndim == nd;
    for (int d = 0; ok && d < nd; d++) ok = t->shape[d] == want[d];
    /* a linear layer stored as a 1x1 conv (LDM proj_in/proj_out, VAE attention q/k/v) */
    if (!ok && kind == BE_W_LINEAR && t->ndim == 4 && t->shape[0] == out && t->shape[1] == in && t->shape[2] == 1 && t->shape[3] == 1) ok = 1;
    if (!ok) {
        char got[128], exp[128];
        shape_str(t->shape, t->ndim, got, sizeof got);
        shape_str(want, nd, exp, sizeof exp);
        if (!strcmp(t->name, name)) return err_fail(SD_ERR_MODEL, "%s: tensor \"%s\" has shape %s, expected %s", where(e), name, got, exp);
        return err_fail(SD_ERR_MODEL, "%s: tensor \"%s\" (%s) has shape %s, expected %s", where(e), t->name, name, got, exp);
    }
    if (!st_dtype_is_float(t->dtype) || t->dtype == ST_F64)
        return err_fail(SD_ERR_MODEL, "%s: tensor \"%s\" has dtype %s, expected F32, F16 or BF16", where(e), t->name, st_dtype_name(t->dtype));
    e->used = 1;
    if (b->measuring || !e->file) { /* architecture check only */
        w->kind = kind; w->out = out; w->in = kind == BE_W_VEC ? 1 : in;
        w->kh = kind == BE_W_CONV ? kh : 1; w->kw = kind == BE_W_CONV ? kw : 1;
        return SD_OK;
    }
    be_dtype dt = t->dtype == ST_F32 ? BE_F32 : t->dtype == ST_F16 ? BE_F16 : BE_BF16;
    const void *src = t->data;
    void *aligned = NULL;
    sd_status st;
    int borrowed = 0;
    if ((uintptr_t)src % st_dtype_size(t->dtype)) { /* backends may use vector loads: give them aligned data */
        aligned = malloc(t->nbytes);
        if (!aligned) return err_fail(SD_ERR_MEMORY, "out of memory loading \"%s\"", name);
        memcpy(aligned, src, t->nbytes);
        st = be_weight_upload(b, w, kind, out, in, kh, kw, dt, aligned);
        free(aligned);
    } else if (st_mapped(e->file)) { /* zero-copy where the backend can compute from the mapped file: it keeps the mapping alive */
        st_file *keep = st_ref(e->file);
        st = be_weight_upload_borrowed(b, w, kind, out, in, kh, kw, dt, src, st_unref, keep, &borrowed);
        if (!borrowed) st_close(keep);
    } else {
        st = be_weight_upload(b, w, kind, out, in, kh, kw, dt, src);
    }
    if (st == SD_OK && m->rec && (kind == BE_W_LINEAR || kind == BE_W_CONV)) st = wsrc_add(m->rec, name, b, w, e->file, t, 0, dt);
    if (!borrowed) st_release(e->file, t); /* the backend holds its own copy now: the file's pages need not stay in our RSS */
    if (st != SD_OK) err_prefix("tensor \"%s\"", name);
    return st;
}

sd_status wmap_load(be *b, wmap *m, be_weight *w, be_wkind kind, int out, int in, int kh, int kw, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_status st = vload(b, m, w, kind, out, in, kh, kw, fmt, ap);
    va_end(ap);
    return st;
}

sd_status wmap_vec(be *b, wmap *m, be_weight *w, int len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_status st = vload(b, m, w, BE_W_VEC, len, 1, 1, 1, fmt, ap);
    va_end(ap);
    return st;
}

sd_status wmap_linear(be *b, wmap *m, be_weight *w, int out, int in, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_status st = vload(b, m, w, BE_W_LINEAR, out, in, 1, 1, fmt, ap);
    va_end(ap);
    return st;
}

float *wmap_read_f32(wmap *m, const char *name, int64_t *numel) {
    int i = find_index(m, name);
    if (i < 0) { err_fail(SD_ERR_MODEL, "missing tensor \"%s\"", name); return NULL; }
    wentry *e = &m->e[i];
    if (!e->file) { err_fail(SD_ERR_MODEL, "tensor \"%s\" has no data", name); return NULL; }
    float *d = malloc((e->t.numel ? e->t.numel : 1) * sizeof(float));
    if (!d) { err_fail(SD_ERR_MEMORY, "out of memory"); return NULL; }
    if (st_read_f32(e->file, &e->t, d) != SD_OK) { free(d); return NULL; }
    st_release(e->file, &e->t);
    e->used = 1;
    if (numel) *numel = e->t.numel;
    return d;
}

void wmap_record(wmap *m, wsrc_set *s) { m->rec = s; }

sd_status wmap_note_source(wmap *m, const char *name, be *b, be_weight *w, const char *src, int64_t row0, be_dtype type) {
    if (!m->rec || b->measuring) return SD_OK;
    int i = find_index(m, src);
    if (i < 0 || !m->e[i].file) return err_fail(SD_ERR_MODEL, "no tensor \"%s\" to note as the source of \"%s\"", src, name);
    return wsrc_add(m->rec, name, b, w, m->e[i].file, &m->e[i].t, row0, type);
}

int wmap_unused(const wmap *m, char *buf, size_t cap) {
    int n = 0;
    size_t o = 0;
    if (cap) buf[0] = 0;
    for (int i = 0; i < m->count; i++) {
        if (m->e[i].used) continue;
        if (cap && o < cap) o += snprintf(buf + o, cap - o, n ? ", %s" : "%s", m->e[i].name);
        n++;
    }
    return n;
}
