/* b64.h — base64 (RFC 4648, standard alphabet) for the images the HTTP APIs carry in JSON. */
#ifndef SERVER_B64_H
#define SERVER_B64_H

#include <stddef.h>
#include <stdint.h>

/* Encodes n bytes into a malloc'd NUL-terminated string (NULL when out of memory). */
char *b64_encode(const uint8_t *data, size_t n);

/* Decodes `text` (len bytes): padding optional, whitespace and a leading "data:...;base64," (as browsers and the
 * webuiapi client send images) skipped. Returns a malloc'd buffer of *n bytes, or NULL for text that is not base64
 * or when out of memory (*bad tells which: 1 = not base64). */
uint8_t *b64_decode(const char *text, size_t len, size_t *n, int *bad);

/* An image as a base64 PNG with its text chunks (sd_png_encode): malloc'd, or NULL (the message in sd_last_error()). */
struct sd_image;
char *b64_png(const struct sd_image *img, const char *infotext, const char *json);

#endif
