/* fileio.h — whole-file reads and crash-safe writes (temp file in the same folder, fsync, rename). */
#ifndef CORE_FILEIO_H
#define CORE_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

typedef struct sd_file_writer {
    FILE *fp;
    char path[4096], tmp[4096];
    int failed;       /* a write failed; commit will report it */
    int no_replace;   /* commit fails if `path` exists (set before writing) */
} sd_file_writer;

/* Start writing `path` through a temporary file beside it; nothing appears at `path` until commit. */
sd_status sd_file_begin(sd_file_writer *w, const char *path);
void sd_file_write(sd_file_writer *w, const void *data, size_t n);
/* Flush, fsync and rename into place (or remove the temp file and fail). */
sd_status sd_file_commit(sd_file_writer *w);
void sd_file_abort(sd_file_writer *w);

/* Read a whole file (at most max_bytes) into a malloc'd buffer with a terminating NUL. */
sd_status sd_read_file(const char *path, size_t max_bytes, char **data, size_t *len);
int sd_file_exists(const char *path);
int sd_is_dir(const char *path);

#endif
