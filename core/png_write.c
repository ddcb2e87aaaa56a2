/* png_write.c — writing PNGs through libpng, to a file (through a temporary file renamed into place) or to memory,
 * with text chunks stored as Pillow stores them (tEXt when Latin-1 suffices, else iTXt). */
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "image.h"

static void png_write_cb(png_structp p, png_bytep data, png_size_t n) { file_write(png_get_io_ptr(p), data, n); }
static void png_flush_cb(png_structp p) { (void)p; }
static void png_err_cb(png_structp p, png_const_charp msg) {
    err_fail(SD_ERR_IO, "libpng: %s", msg);
    png_longjmp(p, 1);
}
static void png_warn_cb(png_structp p, png_const_charp msg) { (void)p; (void)msg; }

/* UTF-8 -> Latin-1 if every code point is below 256; returns NULL otherwise (or when out of memory: the text is
 * then stored as iTXt, which holds it just as well). */
static char *utf8_to_latin1(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n + 1), *q = o;
    if (!o) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        if (u[0] < 0x80) *q++ = (char)*u++;
        else if ((u[0] & 0xE0) == 0xC0 && (u[1] & 0xC0) == 0x80 && u[0] <= 0xC3) {
            *q++ = (char)(((u[0] & 0x1F) << 6) | (u[1] & 0x3F));
            u += 2;
        } else { free(o); return NULL; }
    }
    *q = 0;
    return o;
}

/* Encodes img with its text chunks through write_cb(io, ...): the one encoder of files and of PNGs in memory, so both
 * are the same bytes. Errors name `what`. */
static sd_status png_encode(const sd_image *img, const image_text *text, int ntext, png_rw_ptr write_cb, void *io, const char *what) {
    if (img->c != 3 && img->c != 1) return err_fail(SD_ERR_ARG, "%s: PNG writer takes 1 or 3 channels, not %d", what, img->c);
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_err_cb, png_warn_cb);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    png_text *pt = calloc(ntext ? ntext : 1, sizeof *pt);
    char **conv = calloc(ntext ? ntext : 1, sizeof *conv);
    if (!p || !info || !pt || !conv) {
        png_destroy_write_struct(&p, &info);
        free(pt); free(conv);
        return err_fail(SD_ERR_MEMORY, "%s: out of memory", what);
    }
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_write_struct(&p, &info);
        for (int i = 0; i < ntext; i++) free(conv[i]);
        free(pt); free(conv);
        err_prefix("%s", what);
        return SD_ERR_IO;
    }
    png_set_write_fn(p, io, write_cb, png_flush_cb);
    png_set_IHDR(p, info, img->w, img->h, 8, img->c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    for (int i = 0; i < ntext; i++) {
        pt[i].key = (char *)text[i].key;
        conv[i] = utf8_to_latin1(text[i].value);
        if (conv[i]) { /* Latin-1 fits a tEXt chunk */
            pt[i].compression = PNG_TEXT_COMPRESSION_NONE;
            pt[i].text = conv[i];
        } else {       /* otherwise an uncompressed iTXt chunk in UTF-8 */
            pt[i].compression = PNG_ITXT_COMPRESSION_NONE;
            pt[i].text = (char *)text[i].value;
            pt[i].lang = (char *)"";
            pt[i].lang_key = (char *)"";
        }
    }
    if (ntext) png_set_text(p, info, pt, ntext);
    png_write_info(p, info);
    for (int y = 0; y < img->h; y++) png_write_row(p, img->data + (size_t)y * img->w * img->c);
    png_write_end(p, info);
    png_destroy_write_struct(&p, &info);
    for (int i = 0; i < ntext; i++) free(conv[i]);
    free(pt);
    free(conv);
    return SD_OK;
}

sd_status image_write_png(const char *path, const sd_image *img, const image_text *text, int ntext, int no_replace) {
    if (img->c != 3 && img->c != 1) return err_fail(SD_ERR_ARG, "%s: PNG writer takes 1 or 3 channels, not %d", path, img->c);
    file_writer fw;
    sd_status st = file_begin(&fw, path);
    if (st != SD_OK) return st;
    fw.no_replace = no_replace;
    st = png_encode(img, text, ntext, png_write_cb, &fw, path);
    if (st != SD_OK) {
        file_abort(&fw);
        return st;
    }
    return file_commit(&fw);
}

typedef struct { uint8_t *data; size_t n, cap; } png_membuf;

static void png_mem_cb(png_structp p, png_bytep data, png_size_t n) {
    png_membuf *m = png_get_io_ptr(p);
    if (n > m->cap - m->n) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap - m->n < n) {
            if (cap > SIZE_MAX / 2) png_error(p, "out of memory");
            cap *= 2;
        }
        uint8_t *g = realloc(m->data, cap);
        if (!g) png_error(p, "out of memory");
        m->data = g;
        m->cap = cap;
    }
    memcpy(m->data + m->n, data, n);
    m->n += n;
}

sd_status image_encode_png(const sd_image *img, const image_text *text, int ntext, uint8_t **png, size_t *len) {
    png_membuf m = {0};
    *png = NULL;
    *len = 0;
    sd_status st = png_encode(img, text, ntext, png_mem_cb, &m, "PNG in memory");
    if (st != SD_OK) {
        free(m.data);
        return st;
    }
    *png = m.data;
    *len = m.n;
    return SD_OK;
}
