/* grid.c — composing images into a labelled grid with captions in the embedded bitmap font. */
#include "grid.h"

#include <stdlib.h>
#include <string.h>

#include "canvas.h"

#define GRID_MAX_LABEL_W 360   /* row labels longer than this (pixels) are cut */

static const canvas_rgb BG = {255, 255, 255}, INK = {20, 20, 20}, SOFT = {90, 90, 90}, BLANK = {235, 235, 235};

static int max_lines(const char *const *t, int n) {
    int m = 0;
    for (int i = 0; t && i < n; i++)
        if (t[i] && canvas_text_lines(t[i]) > m) m = canvas_text_lines(t[i]);
    return m;
}

void grid_layout_of(const grid_spec *g, grid_layout *l) {
    int s = g->text_scale > 0 ? g->text_scale : 2;
    memset(l, 0, sizeof *l);
    l->pad = 4 * s;
    l->line_h = CANVAS_LINE_H * s;
    if (g->row_labels) {
        int w = 0;
        for (int r = 0; r < g->rows; r++)
            if (g->row_labels[r] && canvas_text_width(g->row_labels[r], s) > w) w = canvas_text_width(g->row_labels[r], s);
        l->label_w = (w < GRID_MAX_LABEL_W ? w : GRID_MAX_LABEL_W) + l->pad;
    }
    l->title_h = g->title ? canvas_text_lines(g->title) * l->line_h + l->pad : 0;
    l->header_h = g->col_labels ? max_lines(g->col_labels, g->cols) * l->line_h + l->pad / 2 : 0;
    l->caption_h = g->captions ? max_lines(g->captions, g->rows * g->cols) * l->line_h + l->pad / 2 : 0;
    l->left = l->pad + l->label_w;
    l->top = l->pad + l->title_h + l->header_h;
    l->pitch_x = g->cell_w + l->pad;
    l->pitch_y = g->cell_h + l->caption_h + l->pad;
    l->w = l->left + g->cols * l->pitch_x;
    if (g->title && l->w < 2 * l->pad + canvas_text_width(g->title, s)) l->w = 2 * l->pad + canvas_text_width(g->title, s);
    l->h = l->top + g->rows * l->pitch_y;
}

void grid_cell_origin(const grid_layout *l, int r, int c, int *x, int *y) {
    *x = l->left + c * l->pitch_x;
    *y = l->top + r * l->pitch_y;
}

int grid_render(const grid_spec *g, sd_image *out, grid_layout *layout_out) {
    int s = g->text_scale > 0 ? g->text_scale : 2;
    grid_layout l;
    grid_layout_of(g, &l);
    if (layout_out) *layout_out = l;
    if (g->rows < 1 || g->cols < 1 || g->cell_w < 1 || g->cell_h < 1) return -1;
    if (canvas_init(out, l.w, l.h, BG) != 0) return -1;
    char buf[2048];
    if (g->title) canvas_text(out, l.pad, l.pad, g->title, s, INK);
    for (int c = 0; g->col_labels && c < g->cols; c++) {
        if (!g->col_labels[c]) continue;
        int x, y;
        grid_cell_origin(&l, 0, c, &x, &y);
        canvas_text_fit(g->col_labels[c], s, g->cell_w, buf, sizeof buf);
        int tw = canvas_text_width(buf, s);
        canvas_text(out, x + (g->cell_w - tw) / 2, l.pad + l.title_h, buf, s, INK);
    }
    for (int r = 0; r < g->rows; r++) {
        if (g->row_labels && g->row_labels[r]) {
            int x, y;
            grid_cell_origin(&l, r, 0, &x, &y);
            canvas_text_fit(g->row_labels[r], s, l.label_w - l.pad, buf, sizeof buf);
            int th = canvas_text_lines(buf) * l.line_h;
            canvas_text(out, l.pad, y + (g->cell_h - th) / 2, buf, s, INK);
        }
        for (int c = 0; c < g->cols; c++) {
            int x, y;
            grid_cell_origin(&l, r, c, &x, &y);
            const sd_image *im = g->cells ? g->cells[r * g->cols + c] : NULL;
            if (!im || !im->data) {
                canvas_fill_rect(out, x, y, g->cell_w, g->cell_h, BLANK);
            } else {
                /* fit keeping the aspect ratio */
                int w = g->cell_w, h = (int)((long long)im->h * g->cell_w / im->w);
                if (h > g->cell_h) { h = g->cell_h; w = (int)((long long)im->w * g->cell_h / im->h); }
                if (w < 1) w = 1;
                if (h < 1) h = 1;
                if (w != g->cell_w || h != g->cell_h) canvas_fill_rect(out, x, y, g->cell_w, g->cell_h, BLANK);
                canvas_blit(out, x + (g->cell_w - w) / 2, y + (g->cell_h - h) / 2, w, h, im);
            }
            if (g->captions && g->captions[r * g->cols + c]) {
                canvas_text_fit(g->captions[r * g->cols + c], s, g->cell_w, buf, sizeof buf);
                canvas_text(out, x, y + g->cell_h + l.pad / 4, buf, s, SOFT);
            }
        }
    }
    return 0;
}
