/* chart.c — drawing the error-against-steps line chart of `sd compare`. */
#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define S 2   /* text scale */

static const canvas_rgb BG = {255, 255, 255}, INK = {20, 20, 20}, GRIDC = {225, 225, 225};

canvas_rgb chart_color(int i) {
    /* ten well-separated colours (the usual categorical palette of plotting tools) */
    static const canvas_rgb pal[10] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                       {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                       {188, 189, 34}, {23, 190, 207}};
    return pal[(i % 10 + 10) % 10];
}

int chart_ticks(double lo, double hi, int max_ticks, double *ticks, double *step_out) {
    if (!(hi > lo)) hi = lo + 1;
    if (max_ticks < 2) max_ticks = 2;
    /* the smallest step of 1, 2 or 5 x 10^k that puts at most max_ticks ticks in [lo, hi] */
    double step = pow(10, floor(log10((hi - lo) / max_ticks)) - 1);
    static const double mant[3] = {1, 2, 5};
    for (int k = 0;; k = (k + 1) % 3) {
        double s = step * mant[k];
        if (floor(hi / s + 1e-9) - ceil(lo / s - 1e-9) + 1 <= max_ticks) { step = s; break; }
        if (k == 2) step *= 10;
    }
    int n = 0;
    for (double t = ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9 && n < max_ticks; t += step)
        ticks[n++] = fabs(t) < step * 1e-9 ? 0 : t;
    if (step_out) *step_out = step;
    return n;
}

int chart_map(const chart_frame *f, double x, double y, double *px, double *py) {
    if (f->log_y) {
        if (!(y > 0)) return -1;
        y = log10(y);
    }
    if (!isfinite(y) || !isfinite(x)) return -1;
    *px = f->x0 + (x - f->xlo) / (f->xhi - f->xlo) * (f->x1 - f->x0);
    *py = f->y1 - (y - f->ylo) / (f->yhi - f->ylo) * (f->y1 - f->y0);
    return 0;
}

static void fmt_num(char *buf, size_t cap, double v) { snprintf(buf, cap, "%g", v); }

int chart_render(const chart_spec *c, sd_image *out, chart_frame *frame_out) {
    int W = c->width > 0 ? c->width : 900, H = c->height > 0 ? c->height : 560;
    int lh = CANVAS_LINE_H * S, pad = 10;

    /* data ranges */
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    double xs[64];
    int nxs = 0;
    for (int s = 0; s < c->nseries; s++)
        for (int i = 0; i < c->series[s].n; i++) {
            double x = c->series[s].x[i], y = c->series[s].y[i];
            if (!isfinite(x) || !isfinite(y) || (c->log_y && y <= 0)) continue;
            double ty = c->log_y ? log10(y) : y;
            if (x < xlo) xlo = x;
            if (x > xhi) xhi = x;
            if (ty < ylo) ylo = ty;
            if (ty > yhi) yhi = ty;
            int seen = 0;
            for (int k = 0; k < nxs; k++) seen |= xs[k] == x;
            if (!seen && nxs < 64) xs[nxs++] = x;
        }
    if (!isfinite(xlo)) { xlo = 0; xhi = 1; ylo = c->log_y ? -1 : 0; yhi = c->log_y ? 0 : 1; }
    if (xhi == xlo) { xlo -= 1; xhi += 1; }

    chart_frame f = {0};
    f.log_y = c->log_y;
    double yt[32], ystep;
    int nyt;
    if (c->log_y) {
        f.ylo = floor(ylo - 0.02); /* whole decades, with a little room at both ends */
        f.yhi = ceil(yhi + 0.02);
        if (f.yhi == f.ylo) f.yhi += 1;
        nyt = 0;
        for (double d = f.ylo; d <= f.yhi + 1e-9 && nyt < 30; d += 1) {
            yt[nyt++] = d;
            if (f.yhi - f.ylo <= 3 && d < f.yhi - 0.5) { /* few decades: 2 and 5 between them too */
                yt[nyt++] = d + log10(2.0);
                yt[nyt++] = d + log10(5.0);
            }
        }
    } else {
        if (ylo > 0) ylo = 0; /* errors: start the axis at zero */
        if (yhi <= ylo) yhi = ylo + 1;
        yhi += (yhi - ylo) * 0.04; /* room above the highest point */
        chart_ticks(ylo, yhi, 7, yt, &ystep);
        f.ylo = floor(ylo / ystep + 1e-9) * ystep;
        f.yhi = ceil(yhi / ystep - 1e-9) * ystep; /* the axis ends on a tick */
        nyt = 0;
        for (int k = 0; nyt < 32 && f.ylo + k * ystep <= f.yhi + ystep * 1e-9; k++) yt[nyt++] = f.ylo + k * ystep;
    }
    /* x: a little room on both sides so end markers are not cut */
    double xm = (xhi - xlo) * 0.04;
    f.xlo = xlo - xm;
    f.xhi = xhi + xm;

    /* margins from the tick label widths */
    int ylab_w = 0;
    char buf[256];
    for (int i = 0; i < nyt; i++) {
        if (c->log_y) fmt_num(buf, sizeof buf, pow(10, yt[i]));
        else fmt_num(buf, sizeof buf, yt[i]);
        int w = canvas_text_width(buf, S);
        if (w > ylab_w) ylab_w = w;
    }
    /* the legend goes right of the plot, where it can hide no data */
    int lw = 0;
    for (int s = 0; s < c->nseries; s++) {
        int w = canvas_text_width(c->series[s].label ? c->series[s].label : "", S);
        if (w > lw) lw = w;
    }
    int legend_w = c->nseries ? lw + 3 * pad + 24 : 0;
    f.x0 = pad + ylab_w + pad;
    f.x1 = W - 2 * pad - (legend_w ? legend_w + pad : 0);
    f.y0 = pad + (c->title ? lh + pad : 0) + (c->ylabel ? lh : 0) + pad;
    f.y1 = H - pad - (c->xlabel ? lh + pad : 0) - lh - pad;
    if (f.x1 - f.x0 < 40 || f.y1 - f.y0 < 40) return -1;
    if (canvas_init(out, W, H, BG) != 0) return -1;

    if (c->title) canvas_text(out, (W - canvas_text_width(c->title, S)) / 2, pad, c->title, S, INK);
    if (c->ylabel) canvas_text(out, pad, f.y0 - lh - pad / 2, c->ylabel, S, INK);
    if (c->xlabel) canvas_text(out, f.x0 + (f.x1 - f.x0 - canvas_text_width(c->xlabel, S)) / 2, H - pad - lh, c->xlabel, S, INK);

    /* y ticks, grid lines, labels */
    for (int i = 0; i < nyt; i++) {
        double px, py;
        chart_map(&f, f.xlo, c->log_y ? pow(10, yt[i]) : yt[i], &px, &py);
        int y = (int)lround(py);
        canvas_fill_rect(out, f.x0 + 1, y, f.x1 - f.x0, 1, GRIDC);
        canvas_fill_rect(out, f.x0 - 5, y, 5, 1, INK);
        if (c->log_y) fmt_num(buf, sizeof buf, pow(10, yt[i]));
        else fmt_num(buf, sizeof buf, yt[i]);
        canvas_text(out, f.x0 - pad - canvas_text_width(buf, S), y - lh / 2 + 2, buf, S, INK);
    }
    /* x ticks: at the data's x values when there are few, else nice steps */
    double xt[64];
    int nxt = nxs;
    if (nxs >= 1 && nxs <= 12) memcpy(xt, xs, (size_t)nxs * sizeof *xt);
    else nxt = chart_ticks(xlo, xhi, 10, xt, NULL);
    for (int i = 0; i < nxt; i++) {
        double px, py;
        chart_map(&f, xt[i], c->log_y ? pow(10, f.ylo) : f.ylo, &px, &py);
        int x = (int)lround(px);
        canvas_fill_rect(out, x, f.y0, 1, f.y1 - f.y0, GRIDC);
        canvas_fill_rect(out, x, f.y1, 1, 5, INK);
        fmt_num(buf, sizeof buf, xt[i]);
        canvas_text(out, x - canvas_text_width(buf, S) / 2, f.y1 + 8, buf, S, INK);
    }
    /* axes */
    canvas_fill_rect(out, f.x0, f.y0, 2, f.y1 - f.y0 + 1, INK);
    canvas_fill_rect(out, f.x0, f.y1, f.x1 - f.x0, 2, INK);

    /* series: polyline through the points in x order, then markers */
    for (int s = 0; s < c->nseries; s++) {
        const chart_series *sr = &c->series[s];
        canvas_rgb col = chart_color(s);
        int idx[256], m = 0;
        for (int i = 0; i < sr->n && m < 256; i++) {
            double px, py;
            if (chart_map(&f, sr->x[i], sr->y[i], &px, &py) == 0) idx[m++] = i;
        }
        for (int a = 1; a < m; a++) /* insertion sort by x */
            for (int b = a; b > 0 && sr->x[idx[b]] < sr->x[idx[b - 1]]; b--) { int t = idx[b]; idx[b] = idx[b - 1]; idx[b - 1] = t; }
        double lx = 0, ly = 0;
        for (int k = 0; k < m; k++) {
            double px, py;
            chart_map(&f, sr->x[idx[k]], sr->y[idx[k]], &px, &py);
            if (k) canvas_line(out, lx, ly, px, py, 3, col);
            lx = px;
            ly = py;
        }
        for (int k = 0; k < m; k++) {
            double px, py;
            chart_map(&f, sr->x[idx[k]], sr->y[idx[k]], &px, &py);
            canvas_fill_rect(out, (int)lround(px) - 4, (int)lround(py) - 4, 9, 9, col);
        }
    }

    /* legend */
    if (c->nseries) {
        int bw = legend_w, bh = c->nseries * lh + pad;
        int bx = W - pad - bw, by = f.y0;
        canvas_fill_rect(out, bx - 1, by - 1, bw + 2, bh + 2, INK);
        canvas_fill_rect(out, bx, by, bw, bh, BG);
        for (int s = 0; s < c->nseries; s++) {
            int y = by + pad / 2 + s * lh;
            canvas_fill_rect(out, bx + pad, y + lh / 2 - 3, 24, 6, chart_color(s));
            canvas_text(out, bx + 2 * pad + 24, y + 2, c->series[s].label ? c->series[s].label : "", S, INK);
        }
    }
    if (frame_out) *frame_out = f;
    return 0;
}
