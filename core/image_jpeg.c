/* image_jpeg.c — reading JPEG files through libjpeg-turbo: grey, YCbCr/RGB and CMYK/YCCK, baseline or
 * progressive. A truncated file is refused (as Pillow does), and hostile files are bounded in memory and scans. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "error.h"
#include "image_codec.h"

/* Each progressive scan passes over the whole coefficient buffer: a file of thousands of tiny scans costs minutes.
 * Real encoders write about ten (libjpeg-turbo's own decoder guidance: stop at a few hundred). */
#define JPEG_MAX_SCANS 500
#define JPEG_MAX_MEMORY (1u << 30) /* libjpeg's working memory: an 8192x8192 progressive colour image needs 400 MB */

typedef struct jpeg_failure {
    struct jpeg_error_mgr mgr; /* first: libjpeg hands our callbacks a pointer to it */
    jmp_buf jump;
    const char *name;
    volatile sd_status status; /* set before each longjmp; volatile so the handler reads what was set */
} jpeg_failure;

_Noreturn static void fail(jpeg_failure *f, sd_status st) {
    f->status = st;
    longjmp(f->jump, 1);
}

static void fail_with_message(j_common_ptr c) {
    jpeg_failure *f = (jpeg_failure *)c->err;
    char msg[JMSG_LENGTH_MAX];
    c->err->format_message(c, msg);
    fail(f, err_fail(c->err->msg_code == JERR_OUT_OF_MEMORY ? SD_ERR_MEMORY : SD_ERR_FORMAT, "%s: unreadable JPEG: %s", f->name, msg));
}

/* Warnings are corrupt data libjpeg works around; running out of data is not worked around but refused, so a
 * truncated file fails at once instead of decoding megapixels of grey. */
static void on_message(j_common_ptr c, int level) {
    if (level < 0 && (c->err->msg_code == JWRN_JPEG_EOF || c->err->msg_code == JWRN_HIT_MARKER)) fail_with_message(c);
}

static void on_progress(j_common_ptr c) {
    if (c->is_decompressor && ((j_decompress_ptr)c)->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_failure *f = (jpeg_failure *)c->err;
        fail(f, err_fail(SD_ERR_FORMAT, "%s: JPEG with more than %d scans (corrupt or hostile)", f->name, JPEG_MAX_SCANS));
    }
}

/* Pillow's CMYK -> RGB: each of R, G, B is (255 - C)(255 - K) / 255 rounded; Adobe files store the inks inverted,
 * 255 - C, which libjpeg hands over as stored. */
static uint8_t mul255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)((t + (t >> 8)) >> 8);
}

static void cmyk_to_rgb(const uint8_t *in, uint8_t *out, int n, int inverted) {
    for (int i = 0; i < n; i++, in += 4, out += 3) {
        unsigned k = inverted ? in[3] : 255u - in[3];
        for (int j = 0; j < 3; j++) out[j] = mul255(inverted ? in[j] : 255u - in[j], k);
    }
}

sd_status image_decode_jpeg(const char *name, const uint8_t *data, size_t len, int channels, sd_image *out) {
    memset(out, 0, sizeof *out);
    struct jpeg_decompress_struct c;
    jpeg_failure jf;
    struct jpeg_progress_mgr progress = {.progress_monitor = on_progress};
    c.err = jpeg_std_error(&jf.mgr);
    jf.mgr.error_exit = fail_with_message;
    jf.mgr.emit_message = on_message;
    jf.name = name;
    jf.status = SD_ERR_FORMAT;
    /* what a longjmp out of libjpeg leaves to free */
    uint8_t *volatile pixels = NULL, *volatile row = NULL;
    volatile int created = 0;
    if (setjmp(jf.jump)) {
        if (created) jpeg_destroy_decompress(&c);
        free(pixels);
        free(row);
        return jf.status;
    }
    jpeg_create_decompress(&c);
    created = 1;
    c.progress = &progress;
    c.mem->max_memory_to_use = JPEG_MAX_MEMORY;
    jpeg_mem_src(&c, data, (unsigned long)len);
    jpeg_read_header(&c, TRUE);
    int comps;
    switch (c.jpeg_color_space) {
    case JCS_GRAYSCALE: c.out_color_space = JCS_GRAYSCALE; comps = 1; break;
    case JCS_YCbCr: case JCS_RGB: c.out_color_space = JCS_RGB; comps = 3; break;
    case JCS_CMYK: case JCS_YCCK: c.out_color_space = JCS_CMYK; comps = 4; break;
    default:
        fail(&jf, err_fail(SD_ERR_UNSUPPORTED, "%s: JPEG with %d colour components of an unknown colour space is not supported", name,
                          c.num_components));
    }
    sd_image img;
    sd_status st = image_alloc(name, "JPEG", (long)c.image_width, (long)c.image_height, channels, &img);
    if (st != SD_OK) {
        jpeg_destroy_decompress(&c);
        return st;
    }
    pixels = img.data;
    jpeg_start_decompress(&c);
    if ((int)c.output_components != comps || c.output_width != (JDIMENSION)img.w || c.output_height != (JDIMENSION)img.h) {
        fail(&jf, err_fail(SD_ERR_FORMAT, "%s: unexpected JPEG output layout", name));
    }
    row = malloc((size_t)img.w * 4);
    if (!row) fail(&jf, err_fail(SD_ERR_MEMORY, "%s: out of memory", name));
    int inverted = c.saw_Adobe_marker; /* Adobe CMYK is stored inverted */
    while (c.output_scanline < c.output_height) {
        int y = (int)c.output_scanline;
        JSAMPROW r = row;
        if (jpeg_read_scanlines(&c, &r, 1) != 1) fail(&jf, err_fail(SD_ERR_FORMAT, "%s: unreadable JPEG: no data for row %d", name, y));
        uint8_t *dst = pixels + (size_t)y * img.w * channels;
        if (comps == 4) {
            cmyk_to_rgb(row, row, img.w, inverted); /* in place: 3 of every 4 bytes, front to back */
            image_convert_row(row, 3, dst, channels, img.w);
        } else {
            image_convert_row(row, comps, dst, channels, img.w);
        }
    }
    jpeg_finish_decompress(&c);
    jpeg_destroy_decompress(&c);
    free(row);
    *out = img;
    return SD_OK;
}
