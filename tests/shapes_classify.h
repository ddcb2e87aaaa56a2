/* shapes_classify.h — tells what a demo-model picture shows: foreground colour, background colour, shape,
 * position and size, in the vocabulary of the demo model's captions (tools/shapes.py).
 *
 *   shapes_result r;
 *   shapes_classify(rgb, w, h, &r);       // rgb: w*h*3 bytes, row-major, top row first
 *   if (r.shape && strcmp(r.shape, "star") == 0) ...
 *
 * How: the background is the per-channel median of a 3-pixel border frame. The foreground is the largest
 * 4-connected region farther than 60 (RGB distance) from it, then re-thresholded at half the 90th percentile of
 * those distances (the halfway level between background and shape colour, i.e. the true edge of a blurred shape)
 * and again reduced to its largest region. The colour is the majority vote of the region's interior (eroded
 * twice) pixels, each named by hue and lightness. Shape: enclosed background of more than 8% of the filled area
 * is a ring; otherwise the corner count of the radial profile (farthest boundary distance from the centroid per
 * angle) decides: 0-2 circle, 3 triangle, 4 square (or a cross: the plus sign the demo LoRA teaches, when it
 * fills under 72% of its bounding box; a square fills ~95%), 5 or more star. Position from the centroid (±14 px of the
 * middle at 128² is centre), size from the bounding box. tools/shapes.py classify() is the Python twin, used to
 * evaluate diffusers renders; keep the two in step. */
#ifndef TESTS_SHAPES_CLASSIFY_H
#define TESTS_SHAPES_CLASSIFY_H

#include <stdio.h>

typedef struct {
    const char *colour;      /* foreground colour name; NULL when no shape was found (so are the next four) */
    const char *background;  /* always set */
    const char *shape;       /* circle, square, triangle, star, ring; cross (tools/shapes.py EXTRA_SHAPES) */
    const char *position;    /* "top left", "top", ..., "centre", ..., "bottom right" */
    const char *size;        /* small, large */
    int corners;             /* rises of the radial profile (0 for a flat, circular one) */
    float amplitude;         /* (max - min) / mean of the radial profile */
    int area, hole;          /* mask pixels; enclosed background pixels */
    int bbox[4];             /* x, y, w, h */
} shapes_result;

/* Classifies an RGB8 picture. Returns 0, or -1 (and a zeroed result) for a NULL image or a size under 16×16. */
int shapes_classify(const unsigned char *rgb, int w, int h, shapes_result *out);

/* The attributes a full demo caption asks for ("a small red star on a blue background, top left"). */
typedef struct {
    char size[16], colour[16], shape[16], background[16], position[16];
} shapes_scene;

/* Parses a caption of the fixed grammar (tools/shapes.py caption()); returns 0, or -1 if it is not one. */
int shapes_parse_caption(const char *text, shapes_scene *out);

/* Next line of a "first<TAB>caption" list written by tools/shapes.py (captions.txt: picture name; e2e_prompts.txt:
 * seed), '#' comment lines skipped. Splits `line` in place: returns 1 with *first and *caption set, 0 at the end
 * of the file, -1 on a line without a tab (left in `line` for the message). */
int shapes_list_next(FILE *f, char *line, int cap, char **first, char **caption);

/* Hue/lightness name of one colour among the foreground names (fg=1) or the background names (fg=0). */
const char *shapes_colour_name(const float rgb[3], int fg);

#endif
