/* grid.h — labelled image grids (the `sd compare` grid, the `sd batch` contact sheet).
 *
 *   title
 *                 col label 0    col label 1
 *   row label 0   [cell 0,0]     [cell 0,1]
 *                 caption 0,0    caption 0,1
 *   row label 1   [cell 1,0]     [cell 1,1]
 *
 * Each image is fitted into a cell_w × cell_h box keeping its aspect ratio (centred); an image of exactly the
 * cell size is copied pixel for pixel, so a cell can be cut out of the grid and compared with a single render.
 * The picture is at least as wide as the title. */
#ifndef CLI_GRID_H
#define CLI_GRID_H

#include "../sd.h"

typedef struct grid_spec {
    int rows, cols;
    const sd_image *const *cells;      /* rows*cols, row-major; NULL entries stay blank */
    int cell_w, cell_h;
    const char *title;                 /* NULL: none */
    const char *const *row_labels;     /* `rows` strings ('\n' allowed), or NULL */
    const char *const *col_labels;     /* `cols` strings, or NULL */
    const char *const *captions;       /* rows*cols strings under the cells, or NULL */
    int text_scale;                    /* font scale, 0: 2 */
} grid_spec;

typedef struct grid_layout {
    int w, h;                          /* the whole picture */
    int left, top;                     /* origin of cell 0,0 */
    int pitch_x, pitch_y;              /* distance between cell origins */
    int pad, line_h, label_w, caption_h, title_h, header_h;
} grid_layout;

void grid_layout_of(const grid_spec *g, grid_layout *l);
/* Top-left pixel of cell (r, c)'s box. */
void grid_cell_origin(const grid_layout *l, int r, int c, int *x, int *y);

/* Draws the grid into a new image (free with sd_image_free or free(out->data)). Returns 0, or -1 if too big. */
int grid_render(const grid_spec *g, sd_image *out, grid_layout *layout_out);

#endif
