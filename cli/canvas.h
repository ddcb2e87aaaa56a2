/* canvas.h — drawing on RGB8 images (sd_image, c = 3) for contact sheets, compare grids and charts: rectangles,
 * scaled copies, thick lines, and text in stb_easy_font's embedded bitmap font (ASCII, rasterised here).
 *
 * Text: a line is CANVAS_LINE_H * scale pixels high; `scale` 2 is the readable size. Bytes outside printable
 * ASCII (UTF-8 prompts) are drawn as one '?' per character. Everything clips to the image. */
#ifndef CLI_CANVAS_H
#define CLI_CANVAS_H

#include <stddef.h>
#include <stdint.h>

#include "../sd.h"

#define CANVAS_LINE_H 12   /* font units per text line (glyphs are up to 10 high, descenders included) */

typedef struct canvas_rgb { uint8_t r, g, b; } canvas_rgb;

/* A w×h RGB image filled with `bg`. Returns 0, or -1 when out of memory or the size is not 1..32768. */
int canvas_init(sd_image *img, int w, int h, canvas_rgb bg);

void canvas_fill_rect(sd_image *img, int x, int y, int w, int h, canvas_rgb c);
void canvas_put(sd_image *img, int x, int y, canvas_rgb c);

/* Copies src (RGB, or grey with c = 1) into dst at (x, y), resampled to w×h: an area average when shrinking,
 * nearest pixel when growing; w×h equal to src's size is an exact copy. */
void canvas_blit(sd_image *dst, int x, int y, int w, int h, const sd_image *src);

/* A line of the given thickness (pixels) from (x0, y0) to (x1, y1), drawn as overlapping squares. */
void canvas_line(sd_image *img, double x0, double y0, double x1, double y1, int thickness, canvas_rgb c);

/* Text (may hold '\n') with its top-left corner at (x, y). Returns the width drawn in pixels. */
int canvas_text(sd_image *img, int x, int y, const char *text, int scale, canvas_rgb c);
int canvas_text_width(const char *text, int scale);   /* of the widest line */
int canvas_text_lines(const char *text);              /* number of lines */

/* Copies text into out, cut (with "..") so each line is at most max_w pixels wide at `scale`. */
void canvas_text_fit(const char *text, int scale, int max_w, char *out, size_t cap);

#endif
