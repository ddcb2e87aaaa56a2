/* canvas.c — RGB8 drawing: rectangles, resampled copies, thick lines and bitmap-font text. */
#include "canvas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* stb_easy_font (public domain / MIT, Debian libstb-dev) builds glyphs from axis-aligned quads; we fill the
 * quads into pixels ourselves. Its functions are static: silence "unused" for the ones we do not call. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

int canvas_init(sd_image *img, int w, int h, canvas_rgb bg) {
    memset(img, 0, sizeof *img);
    if (w < 1 || h < 1 || w > 32768 || h > 32768) return -1;
    img->data = malloc((size_t)w * h * 3);
    if (!img->data) return -1;
    img->w = w;
    img->h = h;
    img->c = 3;
    canvas_fill_rect(img, 0, 0, w, h, bg);
    return 0;
}

void canvas_put(sd_image *img, int x, int y, canvas_rgb c) {
    if (x < 0 || y < 0 || x >= img->w || y >= img->h) return;
    uint8_t *p = img->data + ((size_t)y * img->w + x) * 3;
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
}

void canvas_fill_rect(sd_image *img, int x, int y, int w, int h, canvas_rgb c) {
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + w > img->w ? img->w : x + w, y1 = y + h > img->h ? img->h : y + h;
    for (int j = y0; j < y1; j++)
        for (int i = x0; i < x1; i++) {
            uint8_t *p = img->data + ((size_t)j * img->w + i) * 3;
            p[0] = c.r;
            p[1] = c.g;
            p[2] = c.b;
        }
}

static void src_px(const sd_image *s, int x, int y, int out[3]) {
    const uint8_t *p = s->data + ((size_t)y * s->w + x) * s->c;
    for (int k = 0; k < 3; k++) out[k] = p[s->c == 1 ? 0 : k];
}

void canvas_blit(sd_image *dst, int x, int y, int w, int h, const sd_image *src) {
    if (w < 1 || h < 1 || src->w < 1 || src->h < 1 || (src->c != 3 && src->c != 1)) return;
    for (int j = 0; j < h; j++) {
        int dy = y + j;
        if (dy < 0 || dy >= dst->h) continue;
        /* source rows [sy0, sy1) map onto this destination row */
        int sy0 = (int)((long long)j * src->h / h), sy1 = (int)((long long)(j + 1) * src->h / h);
        if (sy1 <= sy0) sy1 = sy0 + 1;
        for (int i = 0; i < w; i++) {
            int dx = x + i;
            if (dx < 0 || dx >= dst->w) continue;
            int sx0 = (int)((long long)i * src->w / w), sx1 = (int)((long long)(i + 1) * src->w / w);
            if (sx1 <= sx0) sx1 = sx0 + 1;
            long sum[3] = {0, 0, 0};
            int px[3];
            for (int sy = sy0; sy < sy1; sy++)
                for (int sx = sx0; sx < sx1; sx++) {
                    src_px(src, sx, sy, px);
                    for (int k = 0; k < 3; k++) sum[k] += px[k];
                }
            long n = (long)(sy1 - sy0) * (sx1 - sx0);
            uint8_t *p = dst->data + ((size_t)dy * dst->w + dx) * 3;
            for (int k = 0; k < 3; k++) p[k] = (uint8_t)((sum[k] + n / 2) / n);
        }
    }
}

void canvas_line(sd_image *img, double x0, double y0, double x1, double y1, int thickness, canvas_rgb c) {
    double dx = x1 - x0, dy = y1 - y0;
    double len = fabs(dx) > fabs(dy) ? fabs(dx) : fabs(dy);
    int steps = (int)ceil(len * 2) + 1;
    if (steps > 100000) steps = 100000;
    int half = thickness / 2;
    for (int s = 0; s <= steps; s++) {
        double t = (double)s / steps;
        int px = (int)lround(x0 + dx * t), py = (int)lround(y0 + dy * t);
        canvas_fill_rect(img, px - half, py - half, thickness, thickness, c);
    }
}

/* Printable ASCII copy of text: each UTF-8 sequence (or other byte outside 32..126) becomes one '?'. */
static char *ascii_copy(const char *text) {
    size_t n = strlen(text);
    char *out = malloc(n + 1), *w = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '\n' || (*p >= 32 && *p < 127)) *w++ = (char)*p;
        else if (*p < 0x80 || *p >= 0xC0) *w++ = '?'; /* skip UTF-8 continuation bytes */
    }
    *w = 0;
    return out;
}

int canvas_text_width(const char *text, int scale) {
    char *t = ascii_copy(text);
    if (!t) return 0;
    int w = stb_easy_font_width(t) * scale;
    free(t);
    return w;
}

int canvas_text_lines(const char *text) {
    int n = 1;
    for (; *text; text++) n += *text == '\n';
    return n;
}

int canvas_text(sd_image *img, int x, int y, const char *text, int scale, canvas_rgb c) {
    char *t = ascii_copy(text);
    if (!t) return 0;
    size_t len = strlen(t);
    if (len > 8192) t[len = 8192] = 0; /* more never fits a picture; and the buffer size below stays an int */
    int cap = (int)((len * 300 + 64) * 4 * 16); /* ~270 bytes per character by stb's estimate, with room */
    float *v = malloc((size_t)cap);
    int w = 0;
    if (v) {
        int quads = stb_easy_font_print(0, 0, t, NULL, v, cap);
        for (int q = 0; q < quads; q++) {
            const float *a = (const float *)((const char *)v + (size_t)q * 64);
            const float *b = (const float *)((const char *)v + (size_t)q * 64 + 32); /* vertex 2: far corner */
            int qx0 = (int)lroundf(a[0]), qy0 = (int)lroundf(a[1]), qx1 = (int)lroundf(b[0]), qy1 = (int)lroundf(b[1]);
            canvas_fill_rect(img, x + qx0 * scale, y + qy0 * scale, (qx1 - qx0) * scale, (qy1 - qy0) * scale, c);
        }
        w = stb_easy_font_width(t) * scale;
        free(v);
    }
    free(t);
    return w;
}

void canvas_text_fit(const char *text, int scale, int max_w, char *out, size_t cap) {
    char *t = ascii_copy(text);
    size_t n = 0;
    int first = 1;
    if (!t || cap < 4) { if (cap) out[0] = 0; free(t); return; }
    for (char *line = t; line; first = 0) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        size_t len = strlen(line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", line);
        if (stb_easy_font_width(buf) * scale > max_w) {
            /* shorten until "text.." fits */
            while (len > 0) {
                len--;
                snprintf(buf, sizeof buf, "%.*s..", (int)len, line);
                if (stb_easy_font_width(buf) * scale <= max_w) break;
            }
            if (len == 0) buf[0] = 0;
        }
        int k = snprintf(out + n, cap - n, "%s%s", first ? "" : "\n", buf);
        if (k < 0 || (size_t)k >= cap - n) { out[cap - 1] = 0; break; }
        n += (size_t)k;
        line = nl ? nl + 1 : NULL;
    }
    free(t);
}
