/* safetensors.h — a validating reader (mmap) and a writer for the .safetensors format.
 *
 *   st_file *f;
 *   if (st_open("model.safetensors", &f) != SD_OK) puts(sd_last_error());
 *   const st_tensor *t = st_find(f, "decoder.conv_in.weight");   // NULL if absent
 *   float *w = malloc(t->numel * sizeof *w);
 *   st_read_f32(f, t, w);                                          // widens F16/BF16/F64 to f32
 *   st_close(f);
 *
 * Every size and offset in the header is checked before use: the 8-byte length, JSON shape, dtypes,
 * shape x itemsize == byte span (no overflow), offsets inside the data section, no overlaps, string metadata. */
#ifndef CORE_SAFETENSORS_H
#define CORE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define ST_MAX_DIMS 8

typedef enum st_dtype {
    ST_F32, ST_F16, ST_BF16, ST_F64, /* float types: convertible to f32 */
    ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_U16, ST_U32, ST_U64, ST_BOOL, ST_F8_E4M3, ST_F8_E5M2,
    ST_DTYPE_COUNT
} st_dtype;

typedef struct st_tensor {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;   /* points into the mapped file; may be unaligned */
    size_t nbytes;
} st_tensor;

typedef struct st_file st_file;

sd_status st_open(const char *path, st_file **out);
/* The same checks on a file already in memory (`name` for messages); data must outlive the st_file. */
sd_status st_open_memory(const char *name, const void *data, size_t size, st_file **out);
void st_close(st_file *f);
/* Zero-copy users of the mapped data: st_ref takes another reference to f (its mapping and tensors stay valid
 * until every reference is closed: st_open's by st_close, each st_ref's by st_close or st_unref). */
st_file *st_ref(const st_file *f);
void st_unref(void *f); /* st_close for a release callback */
/* 1 when f's data is our read-only mmap of the file (not st_open_memory's buffer): only such pages may be borrowed,
 * since dropping them from the process (madvise) reads them back from the file. */
int st_mapped(const st_file *f);

const char *st_path(const st_file *f);
int st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, int i);            /* in file order of the header */
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta(const st_file *f, const char *key);     /* __metadata__ value or NULL */

const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);
int st_dtype_is_float(st_dtype d);                           /* F32/F16/BF16/F64 */

/* Drops the mapped pages of t's data from this process (they stay in the page cache and are read back if
 * touched again): a loader that copied a tensor calls it so the file's pages stop counting in its RSS. */
void st_release(const st_file *f, const st_tensor *t);

/* Convert a float tensor to f32 into dst (numel floats). Fails for non-float dtypes. */
sd_status st_read_f32(const st_file *f, const st_tensor *t, float *dst);
/* Find `name`, check it is a float tensor, malloc and return its f32 copy (NULL + error if absent). */
float *st_load_f32(const st_file *f, const char *name, int64_t *numel);
/* Small untrusted files whose values go straight into the weights (adapters, embeddings): one NaN or infinity
 * turns every picture black with no word of why. Fails for a float tensor holding NaN, an infinity, or (F64) a
 * value past a float's range, naming the file, the tensor and the element: "PATH: tensor "T" holds NaN at element
 * 3". Other dtypes pass. Reads every element: not for whole checkpoints. */
sd_status st_check_finite(const st_file *f, const st_tensor *t);

/* Writer: collects tensors (data is copied), then writes atomically (temp file + rename). */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
sd_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape, const void *data);
/* Convenience: store f32 data as `dtype` (F32, F16 or BF16), converting. */
sd_status st_writer_add_f32(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape, const float *data);
sd_status st_writer_meta(st_writer *w, const char *key, const char *value);
sd_status st_writer_save(st_writer *w, const char *path);
void st_writer_free(st_writer *w);

#endif
