/* safetensors.c — validating mmap reader and atomic writer for .safetensors files. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "half.h"

/* The reference implementation refuses headers over 100 MB; so do we (it also bounds our allocation). */
#define ST_MAX_HEADER 100000000ull

struct st_file {
    char *path;
    const uint8_t *map;
    size_t map_size;
    st_tensor *tensors;
    int count;
    char **meta_keys, **meta_vals;
    int meta_count;
    int *sorted; /* indices sorted by name, for st_find */
    int mapped;  /* map is our mmap of the file (else the caller's buffer, st_open_memory) */
    int refs;    /* st_open's reference + one per st_ref (zero-copy weights keep the mapping alive) */
};

static const struct { const char *name; size_t size; } k_dtypes[ST_DTYPE_COUNT] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1}, [ST_U16] = {"U16", 2}, [ST_U32] = {"U32", 4}, [ST_U64] = {"U64", 8},
    [ST_BOOL] = {"BOOL", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *st_dtype_name(st_dtype d) { return (unsigned)d < ST_DTYPE_COUNT ? k_dtypes[d].name : "?"; }
size_t st_dtype_size(st_dtype d) { return (unsigned)d < ST_DTYPE_COUNT ? k_dtypes[d].size : 0; }
int st_dtype_is_float(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64; }

static int dtype_parse(const char *s, st_dtype *out) {
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (!strcmp(s, k_dtypes[i].name)) { *out = (st_dtype)i; return 1; }
    return 0;
}

/* A JSON number that is an exact non-negative integer up to 2^53 (what offsets and dims must be): 1; 0 for
 * anything else; JSON_UINT_HUGE for a whole number past 2^53, so the message can say "too large", not "not an
 * integer" (cJSON holds numbers as doubles: past 2^53 not every integer is one, so none is trusted). */
enum { JSON_UINT_HUGE = -1 };
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double v = j->valuedouble;
    if (v > 9007199254740992.0) return JSON_UINT_HUGE; /* doubles this large are whole numbers (or inf: 1e400) */
    if (!(v >= 0 && v <= 9007199254740992.0) || v != (double)(uint64_t)v) return 0;
    *out = (uint64_t)v;
    return 1;
}

static int cmp_name(const void *a, const void *b, void *ctx) {
    const st_tensor *t = ctx;
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}
static int cmp_span(const void *a, const void *b, void *ctx) {
    const st_tensor *t = ctx;
    const st_tensor *x = &t[*(const int *)a], *y = &t[*(const int *)b];
    const uint8_t *px = x->data, *py = y->data;
    return px < py ? -1 : px > py ? 1 : (x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes);
}

void st_release(const st_file *f, const st_tensor *t) {
    if (!f || !t || !t->nbytes) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo = (uintptr_t)t->data, hi = lo + t->nbytes;
    uintptr_t mlo = (uintptr_t)f->map, mhi = mlo + f->map_size;
    if (!f->mapped || lo < mlo || hi > mhi) return;
    lo &= ~(page - 1); /* whole pages; a neighbour's page dropped too is simply read back when used */
    hi = (hi + page - 1) & ~(page - 1);
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int st_mapped(const st_file *f) { return f && f->mapped; }

st_file *st_ref(const st_file *f) {
    st_file *m = (st_file *)f;
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void st_unref(void *f) { st_close(f); }

void st_close(st_file *f) {
    if (!f) return;
    if (f->refs > 0 && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    if (f->map && f->mapped) munmap((void *)f->map, f->map_size);
    for (int i = 0; i < f->count; i++) free((char *)f->tensors[i].name);
    for (int i = 0; i < f->meta_count; i++) { free(f->meta_keys[i]); free(f->meta_vals[i]); }
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->tensors);
    free(f->sorted);
    free(f->path);
    free(f);
}

static sd_status parse_header(st_file *f, const char *hdr, size_t hlen, const uint8_t *data, uint64_t data_len) {
    const char *path = f->path;
    cJSON *root = cJSON_ParseWithLength(hdr, hlen);
    if (!root) return err_fail(SD_ERR_FORMAT, "%s: header is not valid JSON", path);
    sd_status st = SD_OK;
    if (!cJSON_IsObject(root)) { st = err_fail(SD_ERR_FORMAT, "%s: header is not a JSON object", path); goto done; }
    int n = cJSON_GetArraySize(root);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors) { st = err_fail(SD_ERR_MEMORY, "%s: out of memory", path); goto done; }
    for (cJSON *e = root->child; e; e = e->next) {
        const char *name = e->string;
        if (!strcmp(name, "__metadata__")) {
            if (!cJSON_IsObject(e)) { st = err_fail(SD_ERR_FORMAT, "%s: __metadata__ is not an object", path); goto done; }
            /* cJSON keeps duplicate keys; a second block would overrun the arrays sized for the first */
            if (f->meta_keys) { st = err_fail(SD_ERR_FORMAT, "%s: __metadata__ appears twice in the header", path); goto done; }
            int m = cJSON_GetArraySize(e);
            f->meta_keys = calloc(m ? m : 1, sizeof(char *));
            f->meta_vals = calloc(m ? m : 1, sizeof(char *));
            if (!f->meta_keys || !f->meta_vals) { st = err_fail(SD_ERR_MEMORY, "%s: out of memory", path); goto done; }
            for (cJSON *kv = e->child; kv; kv = kv->next) {
                if (!cJSON_IsString(kv)) { st = err_fail(SD_ERR_FORMAT, "%s: __metadata__ value of \"%s\" is not a string", path, kv->string); goto done; }
                f->meta_keys[f->meta_count] = strdup(kv->string);
                f->meta_vals[f->meta_count] = strdup(kv->valuestring);
                f->meta_count++;
                if (!f->meta_keys[f->meta_count - 1] || !f->meta_vals[f->meta_count - 1]) { st = err_fail(SD_ERR_MEMORY, "%s: out of memory", path); goto done; }
            }
            continue;
        }
        st_tensor *t = &f->tensors[f->count];
        if (!cJSON_IsObject(e)) { st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": entry is not an object", path, name); goto done; }
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(jd)) { st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": missing dtype", path, name); goto done; }
        if (!dtype_parse(jd->valuestring, &t->dtype)) { st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%s\"", path, name, jd->valuestring); goto done; }
        if (!cJSON_IsArray(js)) { st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": missing shape", path, name); goto done; }
        int nd = cJSON_GetArraySize(js);
        if (nd > ST_MAX_DIMS) { st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": %d dimensions (at most %d)", path, name, nd, ST_MAX_DIMS); goto done; }
        uint64_t numel = 1;
        int overflow = 0;
        for (int d = 0; d < nd; d++) {
            uint64_t dim;
            int ok = json_uint(cJSON_GetArrayItem(js, d), &dim);
            if (ok == JSON_UINT_HUGE) {
                double v = cJSON_GetArrayItem(js, d)->valuedouble;
                char val[48] = "";
                if (isfinite(v)) snprintf(val, sizeof val, " (%.0f)", v);
                st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": shape entry %d%s is too large (at most 2^53)", path, name, d, val);
                goto done;
            }
            if (!ok) { st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": shape entry %d is not a non-negative integer", path, name, d); goto done; }
            t->shape[d] = (int64_t)dim;
            if (dim && numel > UINT64_MAX / dim) overflow = 1;
            numel *= dim;
        }
        size_t isz = k_dtypes[t->dtype].size;
        if (overflow || numel > UINT64_MAX / isz || numel > (uint64_t)INT64_MAX) { st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": shape element count overflows", path, name); goto done; }
        uint64_t b, en;
        if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || json_uint(cJSON_GetArrayItem(jo, 0), &b) != 1 || json_uint(cJSON_GetArrayItem(jo, 1), &en) != 1) {
            st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": data_offsets must be two non-negative integers", path, name); goto done;
        }
        if (en < b) { st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": data_offsets end %llu before begin %llu", path, name, (unsigned long long)en, (unsigned long long)b); goto done; }
        if (en > data_len) { st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu) past the end of the data section (%llu bytes; file truncated?)", path, name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_len); goto done; }
        if (en - b != numel * isz) { st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\": shape needs %llu bytes but data_offsets span %llu", path, name, (unsigned long long)(numel * isz), (unsigned long long)(en - b)); goto done; }
        t->ndim = nd;
        t->numel = (int64_t)numel;
        t->nbytes = (size_t)(en - b);
        t->data = data + b;
        t->name = strdup(name);
        if (!t->name) { st = err_fail(SD_ERR_MEMORY, "%s: out of memory", path); goto done; }
        f->count++;
    }
    /* duplicates and overlaps: sort by name, then by span */
    f->sorted = malloc((f->count ? f->count : 1) * sizeof(int));
    int *by_span = malloc((f->count ? f->count : 1) * sizeof(int));
    if (!f->sorted || !by_span) { free(by_span); st = err_fail(SD_ERR_MEMORY, "%s: out of memory", path); goto done; }
    for (int i = 0; i < f->count; i++) f->sorted[i] = by_span[i] = i;
    qsort_r(f->sorted, f->count, sizeof(int), cmp_name, f->tensors);
    qsort_r(by_span, f->count, sizeof(int), cmp_span, f->tensors);
    for (int i = 1; i < f->count && st == SD_OK; i++) {
        if (!strcmp(f->tensors[f->sorted[i]].name, f->tensors[f->sorted[i - 1]].name))
            st = err_fail(SD_ERR_FORMAT, "%s: tensor \"%s\" appears twice in the header", path, f->tensors[f->sorted[i]].name);
        const st_tensor *p = &f->tensors[by_span[i - 1]], *q = &f->tensors[by_span[i]];
        if (st == SD_OK && p->nbytes && q->nbytes && (const uint8_t *)p->data + p->nbytes > (const uint8_t *)q->data)
            st = err_fail(SD_ERR_FORMAT, "%s: tensors \"%s\" and \"%s\" overlap in the data section", path, p->name, q->name);
    }
    free(by_span);
done:
    cJSON_Delete(root);
    return st;
}

/* Checks the 8-byte length and the JSON header of f->map (f->map_size bytes) and indexes the tensors. */
static sd_status parse_file(st_file *f) {
    const char *path = f->path;
    size_t size = f->map_size;
    if (size < 8) return err_fail(SD_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file (needs an 8-byte header length)", path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->map[i];
    if (hlen > ST_MAX_HEADER) return err_fail(SD_ERR_FORMAT, "%s: header length %llu is over the 100 MB limit (not a safetensors file?)", path, (unsigned long long)hlen);
    if (hlen > size - 8) return err_fail(SD_ERR_FORMAT, "%s: header length %llu is past the end of the %zu-byte file (truncated?)", path, (unsigned long long)hlen, size);
    if (hlen < 2 || f->map[8] != '{') return err_fail(SD_ERR_FORMAT, "%s: header is not a JSON object", path);
    return parse_header(f, (const char *)f->map + 8, (size_t)hlen, f->map + 8 + hlen, size - 8 - hlen);
}

static st_file *file_new(const char *path) {
    st_file *f = calloc(1, sizeof *f);
    if (f && !(f->path = strdup(path))) { free(f); f = NULL; }
    if (!f) err_fail(SD_ERR_MEMORY, "%s: out of memory", path);
    else f->refs = 1;
    return f;
}

sd_status st_open(const char *path, st_file **out) {
    *out = NULL;
    int fd;
    uint64_t size;
    sd_status st = file_open_regular(path, &fd, &size);
    if (st != SD_OK) return st;
    st_file *f = file_new(path);
    if (!f) { close(fd); return SD_ERR_MEMORY; }
    if (size < 8) { /* nothing worth mapping: parse_file words the refusal */
        close(fd);
        f->map = (const uint8_t *)"";
        f->map_size = (size_t)size;
        st = parse_file(f);
        st_close(f);
        return st;
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { st_close(f); return err_fail(SD_ERR_IO, "%s: cannot map: %s", path, strerror(errno)); }
    f->map = map;
    f->map_size = (size_t)size;
    f->mapped = 1;
    if ((st = parse_file(f)) != SD_OK) { st_close(f); return st; }
    *out = f;
    return SD_OK;
}

sd_status st_open_memory(const char *name, const void *data, size_t size, st_file **out) {
    *out = NULL;
    st_file *f = file_new(name);
    if (!f) return SD_ERR_MEMORY;
    f->map = data;
    f->map_size = size;
    sd_status st = parse_file(f);
    if (st != SD_OK) { st_close(f); return st; }
    *out = f;
    return SD_OK;
}

const char *st_path(const st_file *f) { return f->path; }
int st_count(const st_file *f) { return f->count; }
const st_tensor *st_at(const st_file *f, int i) { return i >= 0 && i < f->count ? &f->tensors[i] : NULL; }

const st_tensor *st_find(const st_file *f, const char *name) {
    int lo = 0, hi = f->count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(f->tensors[f->sorted[mid]].name, name);
        if (!c) return &f->tensors[f->sorted[mid]];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->meta_count; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_vals[i];
    return NULL;
}

sd_status st_read_f32(const st_file *f, const st_tensor *t, float *dst) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case ST_F32: memcpy(dst, p, t->nbytes); break;
    case ST_F16:
    case ST_BF16:
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == ST_F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
        break;
    case ST_F64:
        for (int64_t i = 0; i < t->numel; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    default:
        return err_fail(SD_ERR_MODEL, "%s: tensor \"%s\" has dtype %s, expected a float type", f->path, t->name, st_dtype_name(t->dtype));
    }
    return SD_OK;
}

/* "NaN", "inf", "-inf" for an element whose exponent bits are all ones (or an F64 past FLT_MAX), NULL if finite. */
static const char *nonfinite_at(const st_tensor *t, int64_t i) {
    const uint8_t *p = t->data;
    uint16_t h;
    uint32_t u;
    double d;
    switch (t->dtype) {
    case ST_F32: memcpy(&u, p + 4 * i, 4); break;
    case ST_F16: memcpy(&h, p + 2 * i, 2); u = (h & 0x7c00u) == 0x7c00u ? (uint32_t)(h & 0x8000u) << 16 | 0x7f800000u | (h & 0x3ffu) : 0; break;
    case ST_BF16: memcpy(&h, p + 2 * i, 2); u = (uint32_t)h << 16; break;
    case ST_F64:
        memcpy(&d, p + 8 * i, 8);
        if (isnan(d)) return "NaN";
        return fabs(d) > FLT_MAX ? (isinf(d) ? (d < 0 ? "-inf" : "inf") : "a value past a float's range") : NULL;
    default: return NULL;
    }
    if ((u & 0x7f800000u) != 0x7f800000u) return NULL;
    return u & 0x7fffffu ? "NaN" : u >> 31 ? "-inf" : "inf";
}

sd_status st_check_finite(const st_file *f, const st_tensor *t) {
    if (!st_dtype_is_float(t->dtype)) return SD_OK;
    for (int64_t i = 0; i < t->numel; i++) {
        const char *what = nonfinite_at(t, i);
        if (what) return err_fail(SD_ERR_MODEL, "%s: tensor \"%s\" holds %s at element %lld", f->path, t->name, what, (long long)i);
    }
    return SD_OK;
}

float *st_load_f32(const st_file *f, const char *name, int64_t *numel) {
    const st_tensor *t = st_find(f, name);
    if (!t) { err_fail(SD_ERR_MODEL, "%s: tensor \"%s\" not found", f->path, name); return NULL; }
    float *d = malloc((t->numel ? t->numel : 1) * sizeof(float));
    if (!d) { err_fail(SD_ERR_MEMORY, "%s: out of memory for \"%s\"", f->path, name); return NULL; }
    if (st_read_f32(f, t, d) != SD_OK) { free(d); return NULL; }
    if (numel) *numel = t->numel;
    return d;
}

/* ---- writer ---- */

struct st_writer {
    struct { char *name; st_dtype dtype; int ndim; int64_t shape[ST_MAX_DIMS]; void *data; size_t nbytes; } *t;
    int count, cap;
    char **mk, **mv;
    int mcount;
};

st_writer *st_writer_new(void) { return calloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->count; i++) { free(w->t[i].name); free(w->t[i].data); }
    for (int i = 0; i < w->mcount; i++) { free(w->mk[i]); free(w->mv[i]); }
    free(w->t);
    free(w->mk);
    free(w->mv);
    free(w);
}

sd_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape, const void *data) {
    if (ndim < 0 || ndim > ST_MAX_DIMS || (unsigned)dtype >= ST_DTYPE_COUNT) return err_fail(SD_ERR_ARG, "safetensors writer: bad tensor \"%s\"", name);
    if (w->count == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        void *t = realloc(w->t, cap * sizeof *w->t);
        if (!t) return err_fail(SD_ERR_MEMORY, "safetensors writer: out of memory");
        w->t = t;
        w->cap = cap;
    }
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)shape[d];
    size_t nbytes = numel * k_dtypes[dtype].size;
    void *copy = malloc(nbytes ? nbytes : 1);
    char *nm = strdup(name);
    if (!copy || !nm) { free(copy); free(nm); return err_fail(SD_ERR_MEMORY, "safetensors writer: out of memory"); }
    memcpy(copy, data, nbytes);
    w->t[w->count].name = nm;
    w->t[w->count].dtype = dtype;
    w->t[w->count].ndim = ndim;
    for (int d = 0; d < ndim; d++) w->t[w->count].shape[d] = shape[d];
    w->t[w->count].data = copy;
    w->t[w->count].nbytes = nbytes;
    w->count++;
    return SD_OK;
}

sd_status st_writer_add_f32(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape, const float *data) {
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)shape[d];
    if (dtype == ST_F32) return st_writer_add(w, name, dtype, ndim, shape, data);
    if (dtype != ST_F16 && dtype != ST_BF16) return err_fail(SD_ERR_ARG, "safetensors writer: cannot convert to %s", st_dtype_name(dtype));
    uint16_t *h = malloc((numel ? numel : 1) * 2);
    if (!h) return err_fail(SD_ERR_MEMORY, "safetensors writer: out of memory");
    if (dtype == ST_F16) f32_to_f16_array(data, h, numel); else f32_to_bf16_array(data, h, numel);
    sd_status st = st_writer_add(w, name, dtype, ndim, shape, h);
    free(h);
    return st;
}

sd_status st_writer_meta(st_writer *w, const char *key, const char *value) {
    char **mk = realloc(w->mk, (w->mcount + 1) * sizeof(char *)), **mv;
    if (!mk) return err_fail(SD_ERR_MEMORY, "safetensors writer: out of memory");
    w->mk = mk;
    mv = realloc(w->mv, (w->mcount + 1) * sizeof(char *));
    if (!mv) return err_fail(SD_ERR_MEMORY, "safetensors writer: out of memory");
    w->mv = mv;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) { free(k); free(v); return err_fail(SD_ERR_MEMORY, "safetensors writer: out of memory"); }
    w->mk[w->mcount] = k;
    w->mv[w->mcount] = v;
    w->mcount++;
    return SD_OK;
}

sd_status st_writer_save(st_writer *w, const char *path) {
    cJSON *root = cJSON_CreateObject();
    if (w->mcount) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < w->mcount; i++) cJSON_AddStringToObject(m, w->mk[i], w->mv[i]);
    }
    uint64_t off = 0;
    for (int i = 0; i < w->count; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, w->t[i].name);
        cJSON_AddStringToObject(e, "dtype", k_dtypes[w->t[i].dtype].name);
        cJSON *s = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < w->t[i].ndim; d++) cJSON_AddItemToArray(s, cJSON_CreateNumber((double)w->t[i].shape[d]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        off += w->t[i].nbytes;
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return err_fail(SD_ERR_MEMORY, "%s: out of memory", path);
    size_t jl = strlen(json), padded = (jl + 7) & ~(size_t)7; /* data starts 8-byte aligned */
    file_writer fw;
    sd_status st = file_begin(&fw, path);
    if (st != SD_OK) { free(json); return st; }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    file_write(&fw, len8, 8);
    file_write(&fw, json, jl);
    for (size_t i = jl; i < padded; i++) file_write(&fw, " ", 1);
    for (int i = 0; i < w->count; i++) file_write(&fw, w->t[i].data, w->t[i].nbytes);
    free(json);
    return file_commit(&fw);
}
