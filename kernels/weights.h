/* weights.h — a model loader's view of a checkpoint: canonical tensor names -> safetensors tensors,
 * with shape/dtype checks and upload to a backend.
 *
 * Each model folder maps the names of the formats it reads (original single-file, diffusers) onto one
 * canonical spelling (the diffusers one), by a rename callback given to wmap_add_file. The model then
 * loads by canonical name; anything missing, mis-shaped or of a non-float dtype is reported by name, and
 * wmap_unused() lists tensors nobody asked for (unexpected tensors). */
#ifndef KERNELS_WEIGHTS_H
#define KERNELS_WEIGHTS_H

#include <stddef.h>

#include "../core/safetensors.h"
#include "backend.h"
#include "wsource.h"

typedef struct wmap wmap;

/* Writes the canonical name of `src` (the file's name with the prefix removed) into dst; returns 0 to skip it. */
typedef int (*wmap_rename_fn)(const char *src, char *dst, size_t cap, void *user);

wmap *wmap_new(void);
void wmap_free(wmap *m);

/* Adds the tensors of f whose names start with `prefix` ("" for all), renamed by fn (NULL: keep).
 * A canonical name given twice is an error (two formats mixed in one file). */
sd_status wmap_add_file(wmap *m, const st_file *f, const char *prefix, wmap_rename_fn fn, void *user);
/* Adds a name and shape with no data (architecture checks: load into a backend in measure mode). */
sd_status wmap_add_virtual(wmap *m, const char *name, st_dtype dtype, int ndim, const int64_t *shape);

int wmap_count(const wmap *m);
const char *wmap_name(const wmap *m, int i);           /* canonical name of entry i */
const st_tensor *wmap_find(const wmap *m, const char *name); /* does not mark it used */
int wmap_has(const wmap *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Finds the canonical name (printf-formatted), checks the dtype is a float type and the shape is
 * VEC [out]; LINEAR [out, in] (or [out, in, 1, 1]); CONV [out, in, kh, kw]; EMBED [out, in],
 * uploads it and marks it used. In measure mode only the checks run. Errors name the tensor.
 * Zero-copy: a backend that computes from the mapped file in place (the CPU) borrows the tensor's pages and
 * holds a reference to its st_file (st_ref) until the weight is freed, so the file may be closed first. */
sd_status wmap_load(be *b, wmap *m, be_weight *w, be_wkind kind, int out, int in, int kh, int kw, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));
/* Shorthands */
sd_status wmap_vec(be *b, wmap *m, be_weight *w, int len, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
sd_status wmap_linear(be *b, wmap *m, be_weight *w, int out, int in, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Reads a float tensor to host f32 (for small parameters a loader uses on the host); marks it used. */
float *wmap_read_f32(wmap *m, const char *name, int64_t *numel);

/* From now on wmap_load notes each matrix (LINEAR, CONV) it uploads in s (see wsource.h); NULL stops it. */
void wmap_record(wmap *m, wsrc_set *s);
/* For a loader that uploads a matrix itself: notes that w, named `name`, holds rows [row0, row0 + w->out) of the
 * tensor that m knows as `src`, uploaded as `type`. Does nothing unless m records (or in measure mode). */
sd_status wmap_note_source(wmap *m, const char *name, be *b, be_weight *w, const char *src, int64_t row0, be_dtype type);

/* Number of tensors never loaded; writes up to `cap` bytes of their names (comma-separated) into buf. */
int wmap_unused(const wmap *m, char *buf, size_t cap);
void wmap_mark_used(wmap *m, const char *name);

#endif
