/* image.c — PNG writing through libpng (temp file + rename) and decoding through stb_image. */
#include "image.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO /* we read the file ourselves, with a size limit */
#define STBI_FAILURE_USERMSG
#define STBI_MAX_DIMENSIONS IMAGE_MAX_SIDE
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

#define MAX_IMAGE_FILE (512u << 20)

sd_status sd_image_load(const char *path, int channels, sd_image *out) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    sd_status st = file_read(path, MAX_IMAGE_FILE, &buf, &len);
    if (st != SD_OK) return st;
    int w, h, c;
    if (len > INT32_MAX || !stbi_info_from_memory((const stbi_uc *)buf, (int)len, &w, &h, &c)) {
        free(buf);
        return err_fail(SD_ERR_FORMAT, "%s: not a readable image (%s)", path, stbi_failure_reason());
    }
    if (w <= 0 || h <= 0 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE) {
        free(buf);
        return err_fail(SD_ERR_FORMAT, "%s: image of %dx%d pixels is too large (at most %d per side)", path, w, h, IMAGE_MAX_SIDE);
    }
    uint8_t *d = stbi_load_from_memory((const stbi_uc *)buf, (int)len, &w, &h, &c, channels);
    free(buf);
    if (!d) return err_fail(SD_ERR_FORMAT, "%s: cannot decode image (%s)", path, stbi_failure_reason());
    out->w = w;
    out->h = h;
    out->c = channels;
    out->data = d;
    return SD_OK;
}

void sd_image_free(sd_image *img) {
    if (img->data) stbi_image_free(img->data);
    img->data = NULL;
}

/* ---- PNG writing ---- */

static void png_write_cb(png_structp p, png_bytep data, png_size_t n) { file_write(png_get_io_ptr(p), data, n); }
static void png_flush_cb(png_structp p) { (void)p; }
static void png_err_cb(png_structp p, png_const_charp msg) {
    err_fail(SD_ERR_IO, "libpng: %s", msg);
    png_longjmp(p, 1);
}
static void png_warn_cb(png_structp p, png_const_charp msg) { (void)p; (void)msg; }

/* UTF-8 -> Latin-1 if every code point is below 256; returns NULL otherwise. */
static char *utf8_to_latin1(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n + 1), *q = o;
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

static char *latin1_to_utf8(const char *s, size_t n) {
    char *o = malloc(2 * n + 1), *q = o;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) *q++ = (char)c;
        else { *q++ = (char)(0xC0 | (c >> 6)); *q++ = (char)(0x80 | (c & 0x3F)); }
    }
    *q = 0;
    return o;
}

sd_status image_write_png(const char *path, const sd_image *img, const image_text *text, int ntext, int no_replace) {
    if (img->c != 3 && img->c != 1) return err_fail(SD_ERR_ARG, "%s: PNG writer takes 1 or 3 channels, not %d", path, img->c);
    file_writer fw;
    sd_status st = file_begin(&fw, path);
    if (st != SD_OK) return st;
    fw.no_replace = no_replace;
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_err_cb, png_warn_cb);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    png_text *pt = calloc(ntext ? ntext : 1, sizeof *pt);
    char **conv = calloc(ntext ? ntext : 1, sizeof *conv);
    if (!p || !info || !pt || !conv) {
        png_destroy_write_struct(&p, &info);
        free(pt); free(conv);
        file_abort(&fw);
        return err_fail(SD_ERR_MEMORY, "%s: out of memory", path);
    }
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_write_struct(&p, &info);
        for (int i = 0; i < ntext; i++) free(conv[i]);
        free(pt); free(conv);
        file_abort(&fw);
        err_prefix("%s", path);
        return SD_ERR_IO;
    }
    png_set_write_fn(p, &fw, png_write_cb, png_flush_cb);
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
    return file_commit(&fw);
}

/* ---- PNG text reading ---- */

static void png_read_cb(png_structp p, png_bytep data, png_size_t n) {
    FILE *fp = png_get_io_ptr(p);
    if (fread(data, 1, n, fp) != n) png_error(p, "unexpected end of file");
}

sd_status image_read_png_text(const char *path, image_text **text, int *n) {
    *text = NULL;
    *n = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_fail(SD_ERR_IO, "%s: cannot open", path);
    unsigned char sig[8];
    if (fread(sig, 1, 8, fp) != 8 || png_sig_cmp(sig, 0, 8)) {
        fclose(fp);
        return err_fail(SD_ERR_FORMAT, "%s: not a PNG file", path);
    }
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, png_err_cb, png_warn_cb);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    png_infop end = p ? png_create_info_struct(p) : NULL;
    image_text *volatile out = NULL;
    volatile int cnt = 0;
    if (!p || !info || !end) {
        png_destroy_read_struct(&p, &info, &end);
        fclose(fp);
        return err_fail(SD_ERR_MEMORY, "out of memory");
    }
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_read_struct(&p, &info, &end);
        fclose(fp);
        image_text_free(out, cnt);
        err_prefix("%s", path);
        return SD_ERR_FORMAT;
    }
    png_set_read_fn(p, fp, png_read_cb);
    png_set_sig_bytes(p, 8);
    png_read_info(p, info);
    /* text after the image data is legal too: skip the pixels without decoding them fully */
    png_set_user_limits(p, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
    int h = (int)png_get_image_height(p, info);
    png_size_t rb = png_get_rowbytes(p, info);
    png_bytep row = malloc(rb ? rb : 1);
    int passes = png_set_interlace_handling(p);
    png_read_update_info(p, info);
    for (int ps = 0; ps < passes; ps++)
        for (int y = 0; y < h; y++) png_read_row(p, row, NULL);
    free(row);
    png_read_end(p, end);
    png_textp t1 = NULL, t2 = NULL;
    int n1 = png_get_text(p, info, &t1, NULL), n2 = png_get_text(p, end, &t2, NULL);
    out = calloc(n1 + n2 + 1, sizeof *out);
    for (int k = 0; k < n1 + n2; k++) {
        png_textp t = k < n1 ? &t1[k] : &t2[k - n1];
        out[k].key = strdup(t->key);
        if (t->compression == PNG_ITXT_COMPRESSION_NONE || t->compression == PNG_ITXT_COMPRESSION_zTXt)
            out[k].value = strdup(t->text ? t->text : "");
        else
            out[k].value = latin1_to_utf8(t->text ? t->text : "", t->text_length);
        cnt = k + 1;
    }
    png_destroy_read_struct(&p, &info, &end);
    fclose(fp);
    *text = out;
    *n = cnt;
    return SD_OK;
}

void image_text_free(image_text *text, int n) {
    if (!text) return;
    for (int i = 0; i < n; i++) {
        free((char *)text[i].key);
        free((char *)text[i].value);
    }
    free(text);
}
