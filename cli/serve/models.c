/* models.c — listing --models-dir and --lora-model-dir, and finding an entry by the name a client sent. */
#include "models.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../sd.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

static int by_name(const void *a, const void *b) { return strcmp(((const model_entry *)a)->file, ((const model_entry *)b)->file); }

static int add(model_list *l, const char *file, const char *path) {
    if (l->n == MODELS_MAX) return 0; /* a folder of thousands: the first ones are served */
    model_entry *g = realloc(l->e, (size_t)(l->n + 1) * sizeof *g);
    if (!g) return -1;
    l->e = g;
    model_entry *m = &l->e[l->n++];
    snprintf(m->file, sizeof m->file, "%s", file);
    snprintf(m->path, sizeof m->path, "%s", path ? path : "");
    sd_model_name(path, m->name, sizeof m->name);
    return 0;
}

int models_scan(const char *dir, const char *extra, model_list *out, char *err, size_t errlen) {
    out->e = NULL;
    out->n = 0;
    if (dir) {
        DIR *d = opendir(dir);
        if (!d) {
            snprintf(err, errlen, "%s: cannot list the models folder: %s", dir, strerror(errno));
            return -1;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
            const char *f = de->d_name;
            if (f[0] == '.' || strlen(f) > 255) continue;
            char path[4096], idx[4200];
            snprintf(path, sizeof path, "%s/%s", dir, f);
            struct stat sb;
            if (stat(path, &sb) != 0) continue; /* a dangling link */
            int ok = S_ISREG(sb.st_mode) ? ends_with(f, ".safetensors") || ends_with(f, ".sft") : 0;
            if (S_ISDIR(sb.st_mode)) {
                snprintf(idx, sizeof idx, "%s/model_index.json", path);
                ok = stat(idx, &sb) == 0 && S_ISREG(sb.st_mode);
            }
            if (ok && add(out, f, path) != 0) { closedir(d); goto oom; }
        }
        closedir(d);
        if (out->n) qsort(out->e, (size_t)out->n, sizeof *out->e, by_name);
    }
    if (extra) {
        char real[4096], *r = realpath(extra, NULL);
        snprintf(real, sizeof real, "%s", r ? r : extra);
        free(r);
        for (int i = 0; i < out->n; i++) {
            char *ri = realpath(out->e[i].path, NULL);
            int same = ri && !strcmp(ri, real);
            free(ri);
            if (same) { /* -m names a file of the folder: first, so it is the default */
                model_entry t = out->e[i];
                memmove(out->e + 1, out->e, (size_t)i * sizeof *out->e);
                out->e[0] = t;
                return 0;
            }
        }
        char file[4096];
        snprintf(file, sizeof file, "%s", extra);
        size_t l = strlen(file);
        while (l > 1 && file[l - 1] == '/') file[--l] = 0;
        const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
        if (add(out, base, extra) != 0) goto oom;
        model_entry t = out->e[out->n - 1];
        memmove(out->e + 1, out->e, (size_t)(out->n - 1) * sizeof *out->e);
        out->e[0] = t;
    } else if (!dir) {
        char name[256];
        sd_model_name(NULL, name, sizeof name);
        if (add(out, name, NULL) != 0) goto oom;
    }
    return 0;
oom:
    models_free(out);
    snprintf(err, errlen, "out of memory listing models");
    return -1;
}

void models_free(model_list *l) {
    free(l->e);
    l->e = NULL;
    l->n = 0;
}

int models_name_is_path(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 255 || name[0] == '.' || strchr(name, '/') || strchr(name, '\\')) return 1;
    for (const unsigned char *u = (const unsigned char *)name; *u; u++)
        if (*u < 0x20 || *u == 0x7F) return 1;
    return 0;
}

int models_find(const model_list *l, const char *name) {
    char key[300];
    snprintf(key, sizeof key, "%s", name);
    size_t n = strlen(key);
    /* an A1111 title: "v1-5-pruned-emaonly.safetensors [6ce0161689]" */
    if (n > 3 && key[n - 1] == ']') {
        char *open = strrchr(key, '[');
        if (open && open > key && open[-1] == ' ') open[-1] = 0;
    }
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->e[i].file, key)) return i;
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->e[i].name, key)) return i;
    return -1;
}

static int by_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int models_scan_loras(const char *dir, char ***names, int *n, char *err, size_t errlen) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot list the LoRA folder: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) && *n < MODELS_MAX) {
        const char *f = de->d_name;
        if (f[0] == '.' || !ends_with(f, ".safetensors") || strlen(f) > 255) continue;
        char path[4400];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, f);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        char **g = realloc(*names, (size_t)(*n + 1) * sizeof *g);
        char *s = g ? strndup(f, strlen(f) - strlen(".safetensors")) : NULL;
        if (!s) {
            if (g) *names = g;
            closedir(d);
            models_free_names(*names, *n);
            *names = NULL;
            *n = 0;
            snprintf(err, errlen, "out of memory listing LoRAs");
            return -1;
        }
        *names = g;
        (*names)[(*n)++] = s;
    }
    closedir(d);
    if (*n) qsort(*names, (size_t)*n, sizeof **names, by_str);
    return 0;
}

void models_free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}
