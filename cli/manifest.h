/* manifest.h — the batch manifest: one JSON line per finished image, appended (and fsync'ed) once the PNG is
 * written, read back tolerantly on resume.
 *
 * (The line is appended while the PNG still has its temp name, then the PNG is renamed into place: so every
 * file a batch put in the folder has a line with its SHA-256, which is how sd tells its own files from others'.)
 *
 * An unsharded run writes manifest.jsonl; shard I of N writes manifest.shard-I-of-N.jsonl, so processes on
 * several machines never share a file. A resume reads every manifest*.jsonl of the output folder: an image
 * counts as done when some line names its file with its key (plan_image_key) and the file's SHA-256 matches.
 * A torn last line (no newline: a run killed mid-append) is skipped, and before appending, a torn tail of the run's
 * own manifest is cut off, so a new line never glues onto it. Any other line that is not a manifest line is an error
 * naming file:line, and a manifest that is not a regular file (a symbolic link, a FIFO) is refused unopened. */
#ifndef CLI_MANIFEST_H
#define CLI_MANIFEST_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct manifest_entry {
    char *file;         /* relative to the output folder */
    char key[65];
    char sha256[65];
    int seq;            /* order of reading */
    int src;            /* which manifest file it came from: 0 for the first read (manifest_load_file) */
    char *line;         /* the whole JSON line, when the manifest keeps lines (sd batch merge copies them) */
} manifest_entry;

typedef struct manifest {
    manifest_entry *e;  /* sorted by file, then seq */
    int n, cap;
    int bad_lines;      /* torn last lines skipped */
    int files;          /* manifest files read */
    int keep_lines;     /* set before reading: keep each entry's line */
} manifest;

/* The manifest file name of a shard ("manifest.jsonl" when count <= 1). */
void manifest_name(int shard_index, int shard_count, char *out, size_t cap);

/* 1 when a file name (no folder) is one a resume reads as a manifest: manifest*.jsonl. */
int manifest_is_name(const char *name);

/* Reads every manifest*.jsonl of `dir` (a missing folder is an empty manifest). Returns 0, or -1 + err. */
int manifest_load_dir(const char *dir, manifest *m, char *err, size_t errlen);
/* The manifest*.jsonl files of `dir`, sorted by name, as new strings (free each and the array); a missing folder
 * has none. Returns the count, or -1 + err. */
int manifest_list_dir(const char *dir, char ***names, char *err, size_t errlen);
/* Reads one manifest file into m (call manifest_finish after the last). Returns 0, or -1 + err (one line naming the
 * file, and the line when one is not a manifest line) when it cannot be read, is not a regular file, or holds a
 * complete line that is not a manifest line. */
int manifest_load_file(const char *path, manifest *m, char *err, size_t errlen);
/* Opens `path` with `flags` (O_RDONLY, or O_RDWR|O_CREAT|O_APPEND) only if it is a regular file and not a symbolic
 * link, without blocking on a FIFO. Returns the fd (blocking mode), or -1 + err naming the file. */
int manifest_open_regular(const char *path, int flags, char *err, size_t errlen);
void manifest_finish(manifest *m);
void manifest_free(manifest *m);

/* The index of the first entry of `file` (entries are sorted by file; m->n when it has none). */
int manifest_first(const manifest *m, const char *file);

/* 1 when `file` (relative to dir) has an entry with this key and the file on disk has that entry's SHA-256. */
int manifest_done(const manifest *m, const char *dir, const char *file, const char *key);

/* 1 when sd wrote the file on disk: some entry names `file` with its present SHA-256, whatever the key. A batch
 * appends an image's line before the image takes its name, so every file it put there has one; a file anyone
 * else put there (or changed since) has none. */
int manifest_owns(const manifest *m, const char *dir, const char *file);

/* 1 when an entry says exactly this (file, key, SHA-256). */
int manifest_has(const manifest *m, const char *file, const char *key, const char *sha256);

typedef struct manifest_writer {
    int fd;
    char path[4096];
} manifest_writer;

/* Opens (creating) a manifest for appending; cuts a torn last line. Returns 0, or -1 + err. */
int manifest_open(manifest_writer *w, const char *path, char *err, size_t errlen);
/* Appends `entry` as one line with a single write, then fsync; on a short write the file is cut back so no
 * partial line stays. Returns 0, or -1 + err. */
int manifest_append(manifest_writer *w, const cJSON *entry, char *err, size_t errlen);
void manifest_close(manifest_writer *w);

/* fsync of a folder, so a rename into it survives a power cut. Returns 0 or -1. */
int manifest_sync_dir(const char *dir);

#endif
