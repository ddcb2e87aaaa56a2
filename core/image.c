/* image.c — reading an image file: the format is told by its first bytes and decoded by a maintained library
 * (libpng, libjpeg-turbo, libwebp; stb_image for BMP only), other formats are refused by name. */
#include "image.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "image_codec.h"

#define MAX_IMAGE_FILE (512u << 20)

/* The side limit of the decode running on this thread (sd_image_decode's max_side; 0: IMAGE_MAX_SIDE). Every decoder
 * asks image_alloc for its pixels once it has read the header, so the limit holds before anything is allocated. */
static _Thread_local int decode_max_side;

sd_status image_alloc(const char *name, const char *format, long w, long h, int channels, sd_image *out) {
    memset(out, 0, sizeof *out);
    if (decode_max_side && (w > decode_max_side || h > decode_max_side))
        return err_fail(SD_ERR_FORMAT, "%s: %s image of %ldx%ld pixels is too large (at most %d per side)", name, format, w, h, decode_max_side);
    if (w < 1 || h < 1 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || w * h > IMAGE_MAX_PIXELS)
        return err_fail(SD_ERR_FORMAT, "%s: %s image of %ldx%ld pixels is not supported (at most %d per side, %d megapixels)", name,
                       format, w, h, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS >> 20);
    /* both sides are at most 2^14 and channels at most 3: the product fits a size_t without overflow */
    out->data = malloc((size_t)w * (size_t)h * (size_t)channels);
    if (!out->data) return err_fail(SD_ERR_MEMORY, "%s: out of memory for a %ldx%ld image", name, w, h);
    out->w = (int)w;
    out->h = (int)h;
    out->c = channels;
    return SD_OK;
}

void image_convert_row(const uint8_t *src, int src_c, uint8_t *dst, int dst_c, int n) {
    for (int i = 0; i < n; i++, src += src_c, dst += dst_c) {
        uint8_t r = src[0], g = src_c >= 3 ? src[1] : r, b = src_c >= 3 ? src[2] : r;
        if (dst_c == 3) {
            dst[0] = r; dst[1] = g; dst[2] = b;
        } else {
            /* Pillow's L24: 0.299 R + 0.587 G + 0.114 B in 16-bit fixed point, rounded */
            dst[0] = src_c >= 3 ? (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16) : r;
        }
    }
}

/* Formats recognised by their signature only to refuse them by name. */
static const char *refused_format(const uint8_t *d, size_t n) {
    static const struct { const char *magic; size_t len, at; const char *name; } sigs[] = {
        {"GIF87a", 6, 0, "GIF"}, {"GIF89a", 6, 0, "GIF"}, {"8BPS", 4, 0, "Photoshop (PSD)"},
        {"#?RADIANCE", 10, 0, "Radiance HDR"}, {"#?RGBE", 6, 0, "Radiance HDR"}, {"\x53\x80\xF6\x34", 4, 0, "Softimage PIC"},
        {"II*\0", 4, 0, "TIFF"}, {"MM\0*", 4, 0, "TIFF"}, {"ftypavif", 8, 4, "AVIF"}, {"ftypheic", 8, 4, "HEIC"},
        {"ftypmif1", 8, 4, "HEIF"}, {"qoif", 4, 0, "QOI"}, {"\xFF\x0A", 2, 0, "JPEG XL"},
        {"\0\0\0\x0CJXL \r\n\x87\n", 12, 0, "JPEG XL"}, {"\0\0\1\0", 4, 0, "ICO"},
    };
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        if (n >= sigs[i].at + sigs[i].len && !memcmp(d + sigs[i].at, sigs[i].magic, sigs[i].len)) return sigs[i].name;
    /* PNM: "P1".."P7" then whitespace */
    if (n >= 3 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7' && (d[2] == ' ' || d[2] == '\n' || d[2] == '\r' || d[2] == '\t'))
        return "PNM (PBM/PGM/PPM/PAM)";
    return NULL;
}

sd_status image_decode(const char *name, const uint8_t *d, size_t n, int channels, sd_image *out) {
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3) return err_fail(SD_ERR_ARG, "%s: images decode to 1 or 3 channels, not %d", name, channels);
    if (n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8)) return image_decode_png(name, d, n, channels, out);
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return image_decode_jpeg(name, d, n, channels, out);
    if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4)) return image_decode_webp(name, d, n, channels, out);
    if (n >= 2 && d[0] == 'B' && d[1] == 'M') return image_decode_bmp(name, d, n, channels, out);
    const char *fmt = refused_format(d, n);
    if (fmt) return err_fail(SD_ERR_UNSUPPORTED, "%s: %s images are not supported (PNG, JPEG, WebP and BMP are); convert it to PNG", name, fmt);
    return err_fail(SD_ERR_FORMAT, "%s: not a readable image (PNG, JPEG, WebP or BMP)", name);
}

sd_status sd_image_load(const char *path, int channels, sd_image *out) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    sd_status st = file_read(path, MAX_IMAGE_FILE, &buf, &len);
    if (st != SD_OK) return st;
    st = image_decode(path, (const uint8_t *)buf, len, channels, out);
    free(buf);
    return st;
}

void sd_image_free(sd_image *img) {
    free(img->data);
    img->data = NULL;
}

sd_status sd_image_decode(const void *data, size_t len, int channels, int max_side, const char *what, sd_image *out) {
    decode_max_side = max_side > 0 && max_side < IMAGE_MAX_SIDE ? max_side : 0;
    sd_status st = image_decode(what, (const uint8_t *)data, len, channels, out);
    decode_max_side = 0;
    return st;
}
