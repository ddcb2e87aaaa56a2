/* fileio.h — whole-file reads and crash-safe writes (temp file in the same folder, fsync, rename). */
#ifndef CORE_FILEIO_H
#define CORE_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

typedef struct file_writer {
    FILE *fp;
    char path[4096], tmp[4096];
    int failed;       /* a write failed; commit will report it */
    int no_replace;   /* commit fails if `path` exists (set before writing) */
} file_writer;

/* Start writing `path` through a temporary file beside it; nothing appears at `path` until commit. */
sd_status file_begin(file_writer *w, const char *path);
void file_write(file_writer *w, const void *data, size_t n);
/* Flush, fsync and rename into place (or remove the temp file and fail). */
sd_status file_commit(file_writer *w);
void file_abort(file_writer *w);

/* Opens `path` for reading only if it is a regular file; every reader of a file a user names goes through it.
 * The open itself does not block (O_NONBLOCK), so a FIFO, a device or a directory is refused by fstat
 * ("PATH: not a regular file") before any read could wait forever. *fd is left in blocking mode; *size (may be
 * NULL) gets the file's size. */
sd_status file_open_regular(const char *path, int *fd, uint64_t *size);

/* Read a whole regular file (at most max_bytes) into a malloc'd buffer with a terminating NUL. */
sd_status file_read(const char *path, size_t max_bytes, char **data, size_t *len);
int file_exists(const char *path);
int file_is_dir(const char *path);

#endif
