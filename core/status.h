/* status.h — what every floor of the engine shares with the public API (sd.h includes it): status codes, the
 * message of the last error, and the 8-bit image type. Lower floors include this, not sd.h. */
#ifndef CORE_STATUS_H
#define CORE_STATUS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sd_status {
    SD_OK = 0,
    SD_ERR_IO,          /* a file could not be read or written */
    SD_ERR_FORMAT,      /* a file is malformed (safetensors, image, job file, config) */
    SD_ERR_MODEL,       /* tensors missing, mis-shaped or of an unsupported kind */
    SD_ERR_ARG,         /* an invalid parameter (size, steps, sampler name ...) */
    SD_ERR_MEMORY,      /* an allocation failed or a size would overflow */
    SD_ERR_BACKEND,     /* the compute backend failed (CUDA error ...) */
    SD_ERR_UNSUPPORTED, /* a valid input this engine does not handle */
    SD_ERR_CANCELLED    /* the progress callback asked to stop */
} sd_status;

/* The message of the last error on this thread ("" if none). Valid until the next failing call. */
const char *sd_last_error(void);

/* An 8-bit image, row-major, channels interleaved (c = 3 RGB, or 1 for masks). */
typedef struct sd_image {
    int w, h, c;
    uint8_t *data;
} sd_image;

#ifdef __cplusplus
}
#endif

#endif
