/* image_png.c — reading PNG files through libpng: the pixels (image_decode_png) and the text chunks
 * (image_png_text_decode). Both read from memory; every error longjmps back to a handler that frees what it holds. */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "image_codec.h"

/* Text chunks carry prompts (kilobytes): a compressed chunk may inflate to at most a megabyte, and at most 64
 * ancillary chunks are kept, so a 50 KB file of zTXt bombs cannot ask for gigabytes. */
#define PNG_TEXT_CHUNK_MAX (1u << 20)
#define PNG_CHUNKS_KEPT 64
#define PNG_FILE_MAX (512u << 20)

typedef struct png_src {
    const char *name;
    const uint8_t *data;
    size_t len, pos;
    volatile sd_status *status; /* set before a longjmp; volatile so the handler may read it after one */
} png_src;

static void src_read(png_structp p, png_bytep out, png_size_t n) {
    png_src *s = png_get_io_ptr(p);
    if (n > s->len - s->pos) png_error(p, "unexpected end of file");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

static void on_error(png_structp p, png_const_charp msg) {
    png_src *s = png_get_error_ptr(p);
    *s->status = err_fail(SD_ERR_FORMAT, "%s: unreadable PNG: %s", s->name, msg);
    png_longjmp(p, 1);
}

static void out_of_memory(png_structp p) {
    png_src *s = png_get_error_ptr(p);
    *s->status = err_fail(SD_ERR_MEMORY, "%s: out of memory", s->name);
    png_longjmp(p, 1);
}

static void on_warning(png_structp p, png_const_charp msg) { (void)p; (void)msg; }

/* libpng allocates a buffer of a chunk's declared length (up to 2 GB) before reading the chunk: found by fuzzing, a
 * 300-byte file asked for 1.5 GB. The file is in memory, so every chunk is checked to lie inside it first. */
static sd_status chunks_inside(const char *name, const uint8_t *d, size_t len) {
    size_t at = 8;
    while (len - at >= 12) {
        uint32_t n = (uint32_t)d[at] << 24 | (uint32_t)d[at + 1] << 16 | (uint32_t)d[at + 2] << 8 | d[at + 3];
        if (n > len - at - 12)
            return err_fail(SD_ERR_FORMAT, "%s: unreadable PNG: a chunk of %u bytes at offset %zu runs past the end of the file (truncated?)",
                            name, n, at);
        if (!memcmp(d + at + 4, "IEND", 4)) break;
        at += 12 + (size_t)n;
    }
    return SD_OK; /* a missing IEND or a cut inside a chunk header is libpng's to report */
}

/* A read struct on `s` with the limits every reader wants; NULL when out of memory. */
static png_structp reader_new(png_src *s) {
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, on_error, on_warning);
    if (!p) return NULL;
    png_set_read_fn(p, s, src_read);
    png_set_user_limits(p, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
    png_set_chunk_malloc_max(p, PNG_TEXT_CHUNK_MAX);
    png_set_chunk_cache_max(p, PNG_CHUNKS_KEPT);
    return p;
}

sd_status image_decode_png(const char *name, const uint8_t *data, size_t len, int channels, sd_image *out) {
    memset(out, 0, sizeof *out);
    sd_status checked = len >= 8 ? chunks_inside(name, data, len) : SD_OK;
    if (checked != SD_OK) return checked;
    volatile sd_status failed = SD_ERR_FORMAT;
    png_src src = {name, data, len, 0, &failed};
    png_structp p = reader_new(&src);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    if (!info) {
        png_destroy_read_struct(&p, NULL, NULL);
        return err_fail(SD_ERR_MEMORY, "%s: out of memory", name);
    }
    /* what a longjmp out of libpng leaves to free */
    uint8_t *volatile pixels = NULL, *volatile wide = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_read_struct(&p, &info, NULL);
        free(pixels);
        free(wide);
        free(rows);
        return failed; /* on_error or out_of_memory worded it */
    }
    /* the pixels need none of the chunks that carry text, profiles or palettes of suggestions: skipped unread */
    static const png_byte skipped[] = "tEXt\0zTXt\0iTXt\0iCCP\0sPLT\0eXIf\0";
    png_set_keep_unknown_chunks(p, PNG_HANDLE_CHUNK_NEVER, skipped, (int)(sizeof skipped / 5));
    png_read_info(p, info);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(p, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    /* to 8-bit grey or RGB: 16-bit keeps its high byte (as Pillow and stb_image do), palettes and 1/2/4-bit grey
     * are expanded, alpha and transparency are dropped */
    if (depth == 16) png_set_strip_16(p);
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(p);
    png_set_strip_alpha(p);
    if (channels == 3 && !(ctype & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
    int got = png_get_channels(p, info);
    if ((got != 1 && got != 3) || png_get_bit_depth(p, info) != 8 || png_get_rowbytes(p, info) != (size_t)w * (size_t)got)
        png_error(p, "unexpected row layout after conversion");
    sd_image img;
    sd_status st = image_alloc(name, "PNG", (long)w, (long)h, channels, &img);
    if (st != SD_OK) {
        png_destroy_read_struct(&p, &info, NULL);
        return st;
    }
    pixels = img.data;
    uint8_t *dst = pixels;
    if (got != channels) { /* colour read for a grey request: RGB first, converted below */
        dst = wide = malloc((size_t)w * h * 3);
        if (!wide) out_of_memory(p);
    }
    rows = malloc(h * sizeof *rows);
    if (!rows) out_of_memory(p);
    for (png_uint_32 y = 0; y < h; y++) rows[y] = dst + (size_t)y * w * got;
    png_read_image(p, rows);
    png_destroy_read_struct(&p, &info, NULL);
    if (wide)
        for (png_uint_32 y = 0; y < h; y++) image_convert_row(wide + (size_t)y * w * 3, 3, pixels + (size_t)y * w, 1, (int)w);
    free(wide);
    free(rows);
    *out = img;
    return SD_OK;
}

/* ---- text chunks ---- */

static char *latin1_to_utf8(const char *s, size_t n) {
    char *o = malloc(2 * n + 1), *q = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) *q++ = (char)c;
        else { *q++ = (char)(0xC0 | (c >> 6)); *q++ = (char)(0x80 | (c & 0x3F)); }
    }
    *q = 0;
    return o;
}

sd_status image_png_text_decode(const char *name, const uint8_t *data, size_t len, image_text **text, int *n) {
    *text = NULL;
    *n = 0;
    if (len < 8 || png_sig_cmp(data, 0, 8)) return err_fail(SD_ERR_FORMAT, "%s: not a PNG file", name);
    sd_status checked = chunks_inside(name, data, len);
    if (checked != SD_OK) return checked;
    volatile sd_status failed = SD_ERR_FORMAT;
    png_src src = {name, data, len, 0, &failed};
    png_structp p = reader_new(&src);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    png_infop end = info ? png_create_info_struct(p) : NULL;
    if (!end) {
        png_destroy_read_struct(&p, &info, NULL);
        return err_fail(SD_ERR_MEMORY, "%s: out of memory", name);
    }
    image_text *volatile kv = NULL;
    volatile int cnt = 0;
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_read_struct(&p, &info, &end);
        image_text_free(kv, cnt);
        return failed;
    }
    png_read_info(p, info);
    /* text may follow the image data too: png_read_end skips the pixels (inflating them into a scratch buffer
     * of libpng's, so nothing of ours is held while libpng may longjmp) and reads what comes after */
    png_read_update_info(p, info);
    png_read_end(p, end);
    png_textp t1 = NULL, t2 = NULL;
    int n1 = png_get_text(p, info, &t1, NULL), n2 = png_get_text(p, end, &t2, NULL);
    kv = calloc((size_t)n1 + (size_t)n2 + 1, sizeof *kv);
    if (!kv) out_of_memory(p);
    for (int k = 0; k < n1 + n2; k++) {
        png_textp t = k < n1 ? &t1[k] : &t2[k - n1];
        int utf8 = t->compression == PNG_ITXT_COMPRESSION_NONE || t->compression == PNG_ITXT_COMPRESSION_zTXt;
        const char *v = t->text ? t->text : "";
        kv[k].key = strdup(t->key);
        kv[k].value = utf8 ? strdup(v) : latin1_to_utf8(v, strlen(v));
        cnt = k + 1;
        if (!kv[k].key || !kv[k].value) out_of_memory(p);
    }
    png_destroy_read_struct(&p, &info, &end);
    *text = kv;
    *n = cnt;
    return SD_OK;
}

sd_status image_read_png_text(const char *path, image_text **text, int *n) {
    *text = NULL;
    *n = 0;
    char *buf;
    size_t len;
    sd_status st = file_read(path, PNG_FILE_MAX, &buf, &len);
    if (st != SD_OK) return st;
    st = image_png_text_decode(path, (const uint8_t *)buf, len, text, n);
    free(buf);
    return st;
}

void image_text_free(image_text *text, int n) {
    if (!text) return;
    for (int i = 0; i < n; i++) {
        free((char *)text[i].key);
        free((char *)text[i].value);
    }
    free(text);
}
