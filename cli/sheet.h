/* sheet.h — the contact sheet of `sd batch` and `sd batch merge`. */
#ifndef CLI_SHEET_H
#define CLI_SHEET_H

#include "plan.h"

typedef struct sheet_opts {
    const char *path;   /* --contact-sheet F; NULL: no sheet */
    int cols, size;     /* --sheet-cols (0: about square), --sheet-size (0: the images' own size, at most 256) */
} sheet_opts;

/* If argv[*i] is --contact-sheet, --sheet-cols or --sheet-size, checks and stores it (advancing *i past the value).
 * Returns 1 when taken, 0 when it is another argument, -1 after printing one "error: ..." line. */
int sheet_flag(int argc, char **argv, int *i, sheet_opts *s);

/* Refuses an output path `path` (the contact sheet, `what` naming its flag) that is, or lies on the way to, a file the
 * batch writes into `dir`: an image of the plan (any shard's) or, with `manifests`, a manifest*.jsonl or
 * merged.jsonl. Spellings are compared after making both absolute and resolving the symbolic links of the part that
 * exists, so "out/./x.png" and "/abs/out/x.png" are the same file even before it exists. Checked even with
 * --overwrite: replacing one of the batch's own files breaks its manifest. Returns 0, or -1 after printing one line. */
int sheet_check_clash(const char *path, const char *what, const char *dir, const plan *pl, int manifests);

/* Writes a grid of images [lo, hi) of the plan (at most the first 400), read from `dir`, captioned with index,
 * seed and prompt, to s->path. An image that cannot be read leaves its cell blank. Returns 0, or -1 after printing
 * the error. */
int sheet_write(const sheet_opts *s, const char *dir, const plan *pl, int lo, int hi, int overwrite);

#endif
