/* sd.h — the public C API of the engine: load a model, generate images, free. */
#ifndef SD_H
#define SD_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#define SD_VERSION "0.1.0"

typedef enum sd_status {
    SD_OK = 0,
    SD_ERR_IO,          /* a file could not be read or written */
    SD_ERR_FORMAT,      /* a file is malformed (safetensors, image, job file, config) */
    SD_ERR_MODEL,       /* tensors missing, mis-shaped or of an unsupported kind */
    SD_ERR_ARG,         /* an invalid parameter (size, steps, sampler name ...) */
    SD_ERR_MEMORY,      /* an allocation failed or a size would overflow */
    SD_ERR_BACKEND,     /* the compute backend failed (CUDA error ...) */
    SD_ERR_UNSUPPORTED  /* a valid input this engine does not handle */
} sd_status;

/* The message of the last error on this thread ("" if none). Valid until the next failing call. */
const char *sd_last_error(void);

/* `sd info`: print what `path` is — a model (family, prediction type, component sizes, default
 * resolution), a safetensors file (tensor count, dtypes, parameters) or a PNG (its generation text). */
sd_status sd_describe(const char *path, FILE *out);

#endif
