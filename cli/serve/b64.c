/* b64.c — base64 both ways, checked: any character outside the alphabet refuses the whole text. */
#include "b64.h"

#include <stdlib.h>
#include <string.h>

#include "../../sd.h"

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const uint8_t *d, size_t n) {
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = ALPHABET[v >> 18];
        *o++ = ALPHABET[(v >> 12) & 63];
        *o++ = ALPHABET[(v >> 6) & 63];
        *o++ = ALPHABET[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *o++ = ALPHABET[v >> 18];
        *o++ = ALPHABET[(v >> 12) & 63];
        *o++ = i + 1 < n ? ALPHABET[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

static int value_of(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

uint8_t *b64_decode(const char *text, size_t len, size_t *n, int *bad) {
    *n = 0;
    *bad = 0;
    if (len >= 5 && !strncmp(text, "data:", 5)) { /* a data URL: the payload follows ";base64," */
        const char *comma = memchr(text, ',', len);
        if (!comma || comma - text < 7 || strncmp(comma - 7, ";base64", 7)) { *bad = 1; return NULL; }
        len -= (size_t)(comma + 1 - text);
        text = comma + 1;
    }
    uint8_t *out = malloc(len / 4 * 3 + 3);
    if (!out) return NULL;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') { pad++; continue; }
        int v = value_of(c);
        if (v < 0 || pad) { free(out); *bad = 1; return NULL; } /* data after padding is no base64 */
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (uint8_t)(acc >> bits);
        }
    }
    /* a lone trailing character (6 bits) cannot be a byte; more than two '=' is no base64 either */
    if (bits >= 6 || pad > 2) { free(out); *bad = 1; return NULL; }
    *n = k;
    return out;
}

char *b64_png(const sd_image *img, const char *infotext, const char *json) {
    uint8_t *png;
    size_t len;
    if (sd_png_encode(img, infotext, json, &png, &len) != SD_OK) return NULL;
    char *b = b64_encode(png, len);
    free(png);
    return b;
}
