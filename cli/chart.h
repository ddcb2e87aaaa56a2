/* chart.h — a line chart PNG for `sd compare`: error against steps, one coloured polyline (with square
 * markers) per series, axes with ticks and numbers, light grid lines, a legend right of the plot, optional
 * log-scale y. */
#ifndef CLI_CHART_H
#define CLI_CHART_H

#include "../sd.h"
#include "canvas.h"

typedef struct chart_series {
    const char *label;
    int n;
    const double *x, *y;   /* points; non-finite y (and y <= 0 on a log axis) are left out */
} chart_series;

typedef struct chart_spec {
    int width, height;     /* 0: 900 x 560 */
    const char *title, *xlabel, *ylabel;
    int log_y;
    const chart_series *series;
    int nseries;
} chart_spec;

/* Where the data lands: the plot rectangle and the axis ranges (y range in log10 units when log_y). */
typedef struct chart_frame {
    int x0, y0, x1, y1;    /* plot area, pixels (y0 top) */
    double xlo, xhi, ylo, yhi;
    int log_y;
} chart_frame;

int chart_render(const chart_spec *c, sd_image *out, chart_frame *frame_out);

/* The pixel of data point (x, y); returns 0, or -1 if y cannot be shown (log axis, y <= 0). */
int chart_map(const chart_frame *f, double x, double y, double *px, double *py);

/* The colour of series i. */
canvas_rgb chart_color(int i);

/* "Nice" tick values (1, 2 or 5 × 10^k apart) covering [lo, hi], at most max_ticks; returns the count. */
int chart_ticks(double lo, double hi, int max_ticks, double *ticks, double *step);

#endif
