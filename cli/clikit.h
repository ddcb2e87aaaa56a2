/* clikit.h — small command-line helpers shared by `sd batch` and `sd compare`: option values, numbers,
 * comma lists, whole-file reads. Each prints its own "error: ..." line on failure. */
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
int clikit_backend(const char *s, sd_backend_kind *out);

/* Splits "a,b,c" into at most `max` trimmed non-empty items (pointers into the malloc'd *storage). Returns
 * the count, or -1 after an error naming `what`. */
int clikit_split(const char *s, char **items, int max, char **storage, const char *what);

/* Reads a whole text file ("-": standard input) of at most `limit` bytes; NUL-terminated. Returns 0 or -1. */
int clikit_read_text(const char *path, size_t limit, char **text, size_t *len);

/* Creates the folders on the way to the file `path` (like mkdir -p of its folder). Returns 0 or -1 (errno set). */
int clikit_mkdirs_for(const char *path);

/* Writes a whole file atomically (temp file in the same folder, fsync, rename). Returns 0 or -1 (error printed). */
int clikit_write_file(const char *path, const void *data, size_t len);

#endif
