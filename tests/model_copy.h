/* model_copy.h — a copy of a diffusers model folder for tests: every file copied, the weights of the components
 * named in f32_parts rewritten as F32 (so an adapter merged into them is base + update without f16 rounding, as
 * diffusers computes it in float32), and tensors optionally replaced from a file whose keys are
 * "<component>/<tensor name>". Returns 0, or -1 with a test failure recorded. */
#ifndef TESTS_MODEL_COPY_H
#define TESTS_MODEL_COPY_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/fileio.h"
#include "../core/safetensors.h"
#include "test.h"

static inline int model_copy_file(const char *src, const char *dst) {
    char *data;
    size_t n;
    if (file_read(src, (size_t)1 << 30, &data, &n) != SD_OK) return -1;
    FILE *f = fopen(dst, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    if (f) ok &= fclose(f) == 0;
    free(data);
    return ok ? 0 : -1;
}

/* A small file with this text (a fake pickle, a broken file). */
static inline int model_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* A copy of the safetensors file src with element `at` of the first tensor whose name ends in `suffix` set to NaN
 * in that tensor's own float type (the bytes a broken trainer would write); everything else byte for byte. */
static inline int model_copy_with_nan(const char *src, const char *dst, const char *suffix, int64_t at) {
    char *data;
    size_t n;
    st_file *f;
    if (file_read(src, (size_t)1 << 30, &data, &n) != SD_OK) return -1;
    int rc = st_open_memory(src, data, n, &f) == SD_OK ? -1 : -2;
    for (int i = 0; rc == -1 && i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        size_t tl = strlen(t->name), sl = strlen(suffix), esz = st_dtype_size(t->dtype);
        if (tl < sl || strcmp(t->name + tl - sl, suffix) || !st_dtype_is_float(t->dtype) || at >= t->numel) continue;
        static const uint8_t nan_f32[4] = {0, 0, 0xc0, 0x7f}, nan_16[2][2] = {{0, 0x7e}, {0xc0, 0x7f}}, nan_f64[8] = {0, 0, 0, 0, 0, 0, 0xf8, 0x7f};
        const uint8_t *bits = t->dtype == ST_F32 ? nan_f32 : t->dtype == ST_F16 ? nan_16[0] : t->dtype == ST_BF16 ? nan_16[1] : nan_f64;
        memcpy(data + ((const char *)t->data - data) + (size_t)at * esz, bits, esz); /* data is the file in memory */
        rc = 0;
    }
    if (rc != -2) st_close(f);
    FILE *o = rc ? NULL : fopen(dst, "wb");
    if (o) {
        int ok = fwrite(data, 1, n, o) == n;
        ok &= fclose(o) == 0;
        rc = ok ? 0 : -1;
    } else {
        rc = -1;
    }
    free(data);
    return rc;
}

/* component: the folder name ("unet"); replace may be NULL. */
static inline int model_copy_weights(const char *src, const char *dst, const char *component, const st_file *replace) {
    st_file *f;
    if (st_open(src, &f) != SD_OK) return -1;
    st_writer *w = st_writer_new();
    int rc = w ? 0 : -1;
    for (int i = 0; i < st_count(f) && !rc; i++) {
        const st_tensor *t = st_at(f, i);
        char key[512];
        snprintf(key, sizeof key, "%s/%s", component, t->name);
        const st_tensor *r = replace ? st_find(replace, key) : NULL;
        const st_file *from = r ? replace : f;
        const st_tensor *x = r ? r : t;
        if (!st_dtype_is_float(x->dtype)) {
            rc = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) == SD_OK ? 0 : -1;
            continue;
        }
        float *v = malloc((x->numel ? x->numel : 1) * sizeof *v);
        rc = v && x->numel == t->numel && st_read_f32(from, x, v) == SD_OK ? 0 : -1;
        if (!rc) rc = st_writer_add_f32(w, t->name, ST_F32, t->ndim, t->shape, v) == SD_OK ? 0 : -1;
        free(v);
    }
    if (!rc) rc = st_writer_save(w, dst) == SD_OK ? 0 : -1;
    st_writer_free(w);
    st_close(f);
    return rc;
}

static inline int model_copy_f32(const char *src, const char *dst, const char *const *f32_parts, const st_file *replace) {
    DIR *d = opendir(src);
    if (!d || (mkdir(dst, 0755) && !file_is_dir(dst))) {
        if (d) closedir(d);
        test_fail(__FILE__, __LINE__, "cannot copy %s to %s", src, dst);
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char s[4096], t[4096];
        snprintf(s, sizeof s, "%s/%s", src, de->d_name);
        snprintf(t, sizeof t, "%s/%s", dst, de->d_name);
        if (file_is_dir(s)) {
            rc = model_copy_f32(s, t, f32_parts, replace);
            continue;
        }
        int convert = 0;
        size_t l = strlen(de->d_name);
        for (int k = 0; f32_parts && f32_parts[k]; k++)
            convert |= l > 12 && !strcmp(de->d_name + l - 12, ".safetensors") && !strcmp(base, f32_parts[k]);
        rc = convert ? model_copy_weights(s, t, base, replace) : model_copy_file(s, t);
        if (rc) test_fail(__FILE__, __LINE__, "cannot copy %s", s);
    }
    closedir(d);
    return rc;
}

#endif
