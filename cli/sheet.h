/* sheet.h — the contact sheet of `sd batch` and `sd batch merge`. */
#ifndef CLI_SHEET_H
#define CLI_SHEET_H

#include "plan.h"

/* Writes a grid of images [lo, hi) of the plan (at most the first 400), read from `dir`, captioned with index,
 * seed and prompt, to `path`. cols <= 0: about square; size 0: the images' own size, at most 256. An image that
 * cannot be read leaves its cell blank. Returns 0, or -1 after printing the error. */
int sheet_write(const char *path, const char *dir, const plan *pl, int lo, int hi, int cols, int size, int overwrite);

#endif
