/* image.h — 8-bit RGB images: PNG writing with text chunks (crash-safe), reading PNG/JPEG/BMP/... via stb_image. */
#ifndef CORE_IMAGE_H
#define CORE_IMAGE_H

#include <stdint.h>

#include "status.h"

typedef struct image_text {
    const char *key;  /* Latin-1 keyword, 1..79 bytes */
    const char *value; /* UTF-8 */
} image_text;

#define IMAGE_MAX_SIDE 16384

/* Decodes into `channels` (3 = RGB, 1 = grey) 8-bit data and rejects unreadable files, unknown formats and sides
 * over IMAGE_MAX_SIDE with a message naming the file. Public: sd.h declares both too. */
sd_status sd_image_load(const char *path, int channels, sd_image *out);
void sd_image_free(sd_image *img);

/* Write an RGB (or grey) PNG with text chunks (tEXt when the value is Latin-1, else iTXt, as Pillow does).
 * The file appears atomically; with no_replace an existing file is an error and is left untouched. */
sd_status image_write_png(const char *path, const sd_image *img, const image_text *text, int ntext, int no_replace);

/* Read the text chunks of a PNG (values converted to UTF-8). Returns a malloc'd array of n pairs
 * whose strings are malloc'd; free with image_text_free. */
sd_status image_read_png_text(const char *path, image_text **text, int *n);
void image_text_free(image_text *text, int n);

#endif
