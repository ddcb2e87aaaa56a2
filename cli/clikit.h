/* clikit.h — small command-line helpers shared by the `sd` subcommands: option values, numbers, comma lists,
 * input paths, whole-file reads and writes. Each prints its own "error: ..." line on failure. */
#ifndef CLI_CLIKIT_H
#define CLI_CLIKIT_H

#include <stddef.h>

#include "../sd.h"

/* If argv[*i] is the option `short_name` or `long_name` ("-o V", "--output V", "--output=V"), returns its
 * value (advancing *i past it); NULL if it is another option. A missing value prints an error and makes
 * clikit_failed() return 1. */
const char *clikit_value(int argc, char **argv, int *i, const char *short_name, const char *long_name);
int clikit_failed(void); /* 1 once after a missing value; resets */

int clikit_int(const char *s, long lo, long hi, int *out, const char *what);

/* Levenshtein distance ignoring case (99 for strings over 63 bytes): how near a mistyped name is to a real one. */
int clikit_edit_distance(const char *a, const char *b);
int clikit_backend(const char *s, sd_backend_kind *out);

/* A path that will be handed to a reader which opens it (the library: models, images, PNG settings): refused when
 * it exists but is not a regular file (or, with folders_ok, a folder), since opening a FIFO blocks until someone
 * writes to it. Uses stat, never open. A missing path passes: its reader names it. Returns 0 or -1 (printed). */
int clikit_input_path(const char *path, int folders_ok);

/* Splits "a,b,c" into at most `max` trimmed non-empty items (pointers into the malloc'd *storage). Returns
 * the count, or -1 after an error naming `what`. */
int clikit_split(const char *s, char **items, int max, char **storage, const char *what);

/* Reads a whole text file ("-": standard input) of at most `limit` bytes; NUL-terminated. Anything but a regular
 * file (a FIFO, a device) is refused before a blocking read. Returns 0 or -1 (error printed). */
int clikit_read_text(const char *path, size_t limit, char **text, size_t *len);

/* Creates the folders on the way to the file `path` (like mkdir -p of its folder). Returns 0 or -1 (errno set). */
int clikit_mkdirs_for(const char *path);

/* Writes a whole file atomically (temp file in the same folder, fsync, rename). Returns 0 or -1 (error printed). */
int clikit_write_file(const char *path, const void *data, size_t len);

/* The name of a model in batch image keys and manifests, before it is loaded: sd_model_name()'s (the library's
 * own rule), and "(bundled)" for the demo model used without -m. */
void clikit_model_name(const char *path, char *out, size_t cap);

#endif
