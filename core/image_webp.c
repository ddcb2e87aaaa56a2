/* image_webp.c — reading still WebP files (lossy, lossless, with or without alpha) through libwebp. */
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>

#include "error.h"
#include "image_codec.h"

static const char *webp_status(VP8StatusCode s) {
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated file";
    default: return "decoding failed";
    }
}

sd_status image_decode_webp(const char *name, const uint8_t *data, size_t len, int channels, sd_image *out) {
    memset(out, 0, sizeof *out);
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(data, len, &f);
    if (vs != VP8_STATUS_OK) return err_fail(SD_ERR_FORMAT, "%s: unreadable WebP: %s", name, webp_status(vs));
    if (f.has_animation) return err_fail(SD_ERR_UNSUPPORTED, "%s: animated WebP images are not supported (still ones are)", name);
    sd_image img;
    sd_status st = image_alloc(name, "WebP", f.width, f.height, channels, &img);
    if (st != SD_OK) return st;
    /* RGB straight into the image, or into a scratch image that becomes grey; alpha is dropped, not blended */
    size_t stride = (size_t)img.w * 3, size = stride * (size_t)img.h;
    uint8_t *rgb = channels == 3 ? img.data : malloc(size);
    if (!rgb) {
        sd_image_free(&img);
        return err_fail(SD_ERR_MEMORY, "%s: out of memory", name);
    }
    if (!WebPDecodeRGBInto(data, len, rgb, size, (int)stride)) {
        if (rgb != img.data) free(rgb);
        sd_image_free(&img);
        return err_fail(SD_ERR_FORMAT, "%s: unreadable WebP: corrupt or truncated image data", name);
    }
    if (rgb != img.data) {
        for (int y = 0; y < img.h; y++) image_convert_row(rgb + (size_t)y * stride, 3, img.data + (size_t)y * img.w, 1, img.w);
        free(rgb);
    }
    *out = img;
    return SD_OK;
}
