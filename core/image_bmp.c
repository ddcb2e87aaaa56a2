/* image_bmp.c — reading BMP files: no maintained BMP library is packaged, so stb_image decodes them, compiled with
 * its BMP decoder alone (STBI_ONLY_BMP). Its other decoders (JPEG, PNG, GIF, PNM ...) are not built in: PNG and JPEG
 * go through libpng and libjpeg-turbo, the rest is refused. The header is checked here first, so a small file
 * whose header promises a huge picture is refused before stb allocates and fills it. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "image_codec.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_BMP
#define STBI_NO_STDIO /* the file is read by file_read, with its size limit and regular-file check */
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_FAILURE_USERMSG
#define STBI_MAX_DIMENSIONS IMAGE_MAX_SIDE
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }

/* The layout the header promises: refuses what stb would not read, and pixel data past the end of the file. */
static sd_status check_header(const char *name, const uint8_t *d, size_t len, long *w, long *h) {
    if (len < 26) return err_fail(SD_ERR_FORMAT, "%s: truncated BMP header", name);
    uint32_t off = le32(d + 10), hsz = le32(d + 14), bpp, comp = 0;
    if (hsz == 12) { /* OS/2 BITMAPCOREHEADER: 16-bit sides */
        *w = (long)le16(d + 18);
        *h = (long)le16(d + 20);
        bpp = le16(d + 24);
    } else if (hsz == 40 || hsz == 56 || hsz == 108 || hsz == 124) {
        if (len < 14 + (size_t)hsz) return err_fail(SD_ERR_FORMAT, "%s: truncated BMP header", name);
        *w = (long)(int32_t)le32(d + 18);
        *h = (long)(int32_t)le32(d + 22); /* negative: rows stored top-down */
        if (*h < 0) *h = -*h;
        bpp = le16(d + 28);
        comp = le32(d + 30);
    } else {
        return err_fail(SD_ERR_UNSUPPORTED, "%s: BMP with a %u-byte header is not supported", name, hsz);
    }
    if (comp != 0 && comp != 3) return err_fail(SD_ERR_UNSUPPORTED, "%s: compressed (RLE/JPEG/PNG) BMP images are not supported", name);
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
        return err_fail(SD_ERR_UNSUPPORTED, "%s: BMP with %u bits per pixel is not supported", name, bpp);
    sd_image probe; /* the size rules of every format, without allocating */
    if (*w < 1 || *h < 1 || *w > IMAGE_MAX_SIDE || *h > IMAGE_MAX_SIDE) return image_alloc(name, "BMP", *w, *h, 3, &probe);
    uint64_t row = ((uint64_t)*w * bpp + 31) / 32 * 4;
    if (off > len || row * (uint64_t)*h > len - off)
        return err_fail(SD_ERR_FORMAT, "%s: truncated BMP: %ldx%ld pixels need %llu bytes after offset %u, the file has %zu", name, *w, *h,
                       (unsigned long long)(row * (uint64_t)*h), off, len);
    return SD_OK;
}

sd_status image_decode_bmp(const char *name, const uint8_t *data, size_t len, int channels, sd_image *out) {
    memset(out, 0, sizeof *out);
    long w = 0, h = 0;
    sd_status st = check_header(name, data, len, &w, &h);
    if (st != SD_OK) return st;
    sd_image img;
    if ((st = image_alloc(name, "BMP", w, h, channels, &img)) != SD_OK) return st;
    int sw, sh, sc;
    stbi_uc *px = len <= INT_MAX ? stbi_load_from_memory(data, (int)len, &sw, &sh, &sc, 0) : NULL;
    if (!px || sw != w || sh != h || sc < 1 || sc > 4) {
        st = err_fail(SD_ERR_FORMAT, "%s: unreadable BMP: %s", name, px ? "unexpected layout" : stbi_failure_reason());
        stbi_image_free(px);
        sd_image_free(&img);
        return st;
    }
    for (long y = 0; y < h; y++) image_convert_row(px + (size_t)y * w * sc, sc, img.data + (size_t)y * w * channels, channels, (int)w);
    stbi_image_free(px);
    *out = img;
    return SD_OK;
}
