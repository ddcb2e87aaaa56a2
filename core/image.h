/* image.h — 8-bit images: reading PNG, JPEG, WebP and BMP files (maintained decoders, checked sizes), PNG writing
 * with text chunks (crash-safe), and reading those text chunks back. */
#ifndef CORE_IMAGE_H
#define CORE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct image_text {
    const char *key;  /* Latin-1 keyword, 1..79 bytes */
    const char *value; /* UTF-8 */
} image_text;

#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS (1 << 26) /* 64 megapixels (8192 x 8192): bounds what a small hostile header can ask for */

/* Reads a file and decodes it as image_decode does; non-regular files (FIFOs, devices) are refused before any
 * read. Public: sd.h declares both too. */
sd_status sd_image_load(const char *path, int channels, sd_image *out);
void sd_image_free(sd_image *img);
/* image_decode for sd.h: bytes in memory (an upload), `what` naming them in messages; sides over max_side (0: the
 * IMAGE_MAX_SIDE of files) are refused from the header, before the pixels are allocated. */
sd_status sd_image_decode(const void *data, size_t len, int channels, int max_side, const char *what, sd_image *out);

/* Decodes the image file in data[0, len) into `channels` (3 = RGB, 1 = grey) 8-bit pixels (free with
 * sd_image_free). The format comes from the first bytes: PNG (libpng; 16-bit keeps the high byte, palettes are
 * expanded, transparency dropped), JPEG (libjpeg-turbo; grey, YCbCr, CMYK), WebP (libwebp; still images) and BMP
 * (stb_image, the BMP decoder only). GIF, TIFF, PNM, PSD, HDR, AVIF ... are refused naming the format; so are sides
 * over IMAGE_MAX_SIDE and truncated or corrupt files. Every message starts with `name`. */
sd_status image_decode(const char *name, const uint8_t *data, size_t len, int channels, sd_image *out);

/* Write an RGB (or grey) PNG with text chunks (tEXt when the value is Latin-1, else iTXt, as Pillow does).
 * The file appears atomically; with no_replace an existing file is an error and is left untouched. */
sd_status image_write_png(const char *path, const sd_image *img, const image_text *text, int ntext, int no_replace);
/* The same PNG in a malloc'd buffer of *len bytes. */
sd_status image_encode_png(const sd_image *img, const image_text *text, int ntext, uint8_t **png, size_t *len);

/* Read the text chunks of a PNG (values converted to UTF-8). Returns a malloc'd array of n pairs
 * whose strings are malloc'd; free with image_text_free. */
sd_status image_read_png_text(const char *path, image_text **text, int *n);
/* The same for a PNG file in memory (`name` for messages). */
sd_status image_png_text_decode(const char *name, const uint8_t *data, size_t len, image_text **text, int *n);
void image_text_free(image_text *text, int n);

#endif
