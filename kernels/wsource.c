/* wsource.c — the registry of loaded matrices and their checkpoint sources (see wsource.h). */
#include "wsource.h"

#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/half.h"

struct wsrc_set {
    wsrc *v;
    int n, cap;
};

wsrc_set *wsrc_set_new(void) { return calloc(1, sizeof(wsrc_set)); }

void wsrc_set_free(wsrc_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->v[i].name);
    free(s->v);
    free(s);
}

sd_status wsrc_add(wsrc_set *s, const char *name, be *b, be_weight *w, const st_file *f, const st_tensor *t, int64_t row0, be_dtype type) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        wsrc *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return err_fail(SD_ERR_MEMORY, "out of memory");
        s->v = v;
        s->cap = cap;
    }
    wsrc *x = &s->v[s->n];
    memset(x, 0, sizeof *x);
    if (!(x->name = strdup(name))) return err_fail(SD_ERR_MEMORY, "out of memory");
    x->b = b;
    x->w = w;
    x->file = f;
    x->t = *t;
    x->row0 = row0;
    x->type = type;
    s->n++;
    return SD_OK;
}

int wsrc_count(const wsrc_set *s) { return s ? s->n : 0; }
wsrc *wsrc_at(wsrc_set *s, int i) { return &s->v[i]; }

wsrc *wsrc_find(wsrc_set *s, const char *name) {
    for (int i = 0; s && i < s->n; i++)
        if (!strcmp(s->v[i].name, name)) return &s->v[i];
    return NULL;
}

size_t wsrc_numel(const wsrc *x) { return (size_t)x->w->out * x->w->in * x->w->kh * x->w->kw; }

#define CHUNK 65536 /* elements per OpenMP task of the conversions: a merge converts hundreds of millions */

/* The tensor's elements [first, first + n) as f32. */
static void widen(const st_tensor *t, size_t first, size_t n, float *dst) {
    size_t es = st_dtype_size(t->dtype);
    const unsigned char *base = (const unsigned char *)t->data + first * es;
#pragma omp parallel for schedule(static) if (n > CHUNK)
    for (size_t c = 0; c < n; c += CHUNK) {
        size_t end = n - c < CHUNK ? n : c + CHUNK;
        const unsigned char *p = base + c * es;
        for (size_t i = c; i < end; i++, p += es) { /* file data may be unaligned: read through memcpy */
            if (t->dtype == ST_F32) {
                memcpy(&dst[i], p, 4);
            } else {
                uint16_t h;
                memcpy(&h, p, 2);
                dst[i] = t->dtype == ST_F16 ? f16_to_f32(h) : bf16_to_f32(h);
            }
        }
    }
}

static void narrow(const float *src, be_dtype type, uint16_t *dst, size_t n) {
#pragma omp parallel for schedule(static) if (n > CHUNK)
    for (size_t c = 0; c < n; c += CHUNK) {
        size_t k = n - c < CHUNK ? n - c : CHUNK;
        if (type == BE_F16) f32_to_f16_array(src + c, dst + c, k);
        else f32_to_bf16_array(src + c, dst + c, k);
    }
}

sd_status wsrc_read(const wsrc *x, float *dst) {
    size_t n = wsrc_numel(x), per_row = x->w->out ? n / x->w->out : 0;
    if (x->t.dtype != ST_F32 && x->t.dtype != ST_F16 && x->t.dtype != ST_BF16)
        return err_fail(SD_ERR_MODEL, "%s: tensor \"%s\" has dtype %s", st_path(x->file), x->t.name, st_dtype_name(x->t.dtype));
    if ((size_t)x->t.numel < (size_t)x->row0 * per_row + n)
        return err_fail(SD_ERR_MODEL, "%s: tensor \"%s\" is smaller than the weight \"%s\"", st_path(x->file), x->t.name, x->name);
    widen(&x->t, (size_t)x->row0 * per_row, n, dst);
    st_release(x->file, &x->t); /* copied: the file's pages need not stay in the process's RSS */
    return SD_OK;
}

static sd_status replace(wsrc *x, be_dtype type, const void *src) {
    be_weight nw;
    const be_weight *o = x->w;
    sd_status st = be_weight_upload(x->b, &nw, o->kind, o->out, o->in, o->kh, o->kw, type, src);
    if (st != SD_OK) {
        err_prefix("weight \"%s\"", x->name);
        return st;
    }
    be_weight_free(x->b, x->w);
    *x->w = nw;
    return SD_OK;
}

sd_status wsrc_upload(wsrc *x, const float *data) {
    size_t n = wsrc_numel(x);
    sd_status st;
    int same_as_file = x->row0 == 0 && (size_t)x->t.numel == n && x->type == (x->t.dtype == ST_F32 ? BE_F32 : x->t.dtype == ST_F16 ? BE_F16 : BE_BF16);
    if (!data && same_as_file) { /* exactly what wmap_load handed over: the file's bytes */
        size_t bytes = x->t.nbytes;
        void *copy = malloc(bytes ? bytes : 1); /* aligned for the backend's vector loads */
        if (!copy) return err_fail(SD_ERR_MEMORY, "out of memory restoring \"%s\"", x->name);
        memcpy(copy, x->t.data, bytes);
        st = replace(x, x->type, copy);
        free(copy);
        st_release(x->file, &x->t);
        if (st == SD_OK) x->modified = 0;
        return st;
    }
    float *f = NULL;
    if (!data) { /* a reworked tensor (a row slice widened to f32): rebuild it the same way */
        if (!(f = malloc(n * sizeof *f))) return err_fail(SD_ERR_MEMORY, "out of memory restoring \"%s\"", x->name);
        if ((st = wsrc_read(x, f)) != SD_OK) { free(f); return st; }
        data = f;
    }
    if (x->type == BE_F32) {
        st = replace(x, BE_F32, data);
    } else {
        uint16_t *h = malloc(n * sizeof *h);
        if (!h) st = err_fail(SD_ERR_MEMORY, "out of memory for \"%s\"", x->name);
        else {
            narrow(data, x->type, h, n);
            st = replace(x, x->type, h);
        }
        free(h);
    }
    if (st == SD_OK) x->modified = f == NULL;
    free(f);
    return st;
}
