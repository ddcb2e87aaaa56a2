/* models.h — the models a server offers: the checkpoints and diffusers folders of --models-dir, the -m model, or
 * the bundled demo model; found by the names clients send (A1111 titles, file names, model names), never by path. */
#ifndef SERVER_MODELS_H
#define SERVER_MODELS_H

#include <stddef.h>

typedef struct model_entry {
    char name[256];     /* sd_model_name(): "v1-5-pruned-emaonly", "shapes" */
    char file[256];     /* the file or folder name ("v1-5-pruned-emaonly.safetensors"), A1111's title */
    char path[4096];    /* what sd_load opens; "" for the bundled demo model */
} model_entry;

typedef struct model_list {
    model_entry *e;
    int n;
} model_list;

#define MODELS_MAX 4096

/* Lists dir's .safetensors / .sft files and diffusers folders (a model_index.json inside), by name; adds
 * `extra` (the -m path) when it is not among them, or the demo model when dir is NULL and extra is NULL.
 * Returns 0, or -1 with a message in err. */
int models_scan(const char *dir, const char *extra, model_list *out, char *err, size_t errlen);
void models_free(model_list *l);

/* 1 if a name a client sent could reach outside the folder it names a file of: '/', '\', a leading '.', control
 * characters, or longer than 255 bytes. */
int models_name_is_path(const char *name);

/* The entry a client's name means: its file name, its name, or an A1111 title "file [hash]". -1 if none. */
int models_find(const model_list *l, const char *name);

/* The files NAME.safetensors of a LoRA folder, sorted (names in a malloc'd array of malloc'd strings). */
int models_scan_loras(const char *dir, char ***names, int *n, char *err, size_t errlen);
void models_free_names(char **names, int n);

#endif
