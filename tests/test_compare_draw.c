/* test_compare_draw.c — pictures of `sd compare` / `sd batch`: RMSE/PSNR, resampled copies, bitmap-font text
 * (against an independent point-in-quad rasteriser of stb_easy_font's quads), grids, the error chart. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/canvas.h"
#include "../cli/chart.h"
#include "../cli/grid.h"
#include "../cli/metrics.h"
#include "test.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

static sd_image make(int w, int h, int seed) {
    sd_image im = {w, h, 3, malloc((size_t)w * h * 3)};
    for (int i = 0; i < w * h * 3; i++) im.data[i] = (uint8_t)((i * 7 + seed * 31 + (i / 3) * seed) & 255);
    return im;
}

static const uint8_t *px(const sd_image *im, int x, int y) { return im->data + ((size_t)y * im->w + x) * 3; }
static int is_rgb(const sd_image *im, int x, int y, canvas_rgb c) {
    const uint8_t *p = px(im, x, y);
    return p[0] == c.r && p[1] == c.g && p[2] == c.b;
}

TEST(compare_rmse_psnr) {
    sd_image a = make(4, 3, 0), b = make(4, 3, 0);
    for (int i = 0; i < 36; i++) { a.data[i] = 10; b.data[i] = 13; }
    CHECK_NEAR(metrics_rmse(&a, &b), 3.0, 1e-12);
    CHECK_NEAR(metrics_psnr(3.0), 20 * log10(85.0), 1e-12); /* 38.5884 dB */
    b.data[0] = 10 + 3 + 12;                                 /* one error of 15 among 35 of 3 */
    CHECK_NEAR(metrics_rmse(&a, &b), sqrt((35 * 9.0 + 225.0) / 36), 1e-12);
    CHECK(isinf(metrics_psnr(metrics_rmse(&a, &a))));
    sd_image c = make(3, 4, 0);
    CHECK(metrics_rmse(&a, &c) < 0);
    free(a.data);
    free(b.data);
    free(c.data);
}

TEST(compare_blit_resampling) {
    sd_image src = make(8, 6, 3), dst;
    REQUIRE(canvas_init(&dst, 20, 20, (canvas_rgb){0, 0, 0}) == 0);
    canvas_blit(&dst, 2, 3, 8, 6, &src); /* same size: exact */
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 8; x++) CHECK(!memcmp(px(&dst, x + 2, y + 3), px(&src, x, y), 3));
    canvas_blit(&dst, 12, 0, 4, 3, &src); /* half size: 2x2 means, rounded */
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++)
            for (int k = 0; k < 3; k++) {
                int s = px(&src, 2 * x, 2 * y)[k] + px(&src, 2 * x + 1, 2 * y)[k] + px(&src, 2 * x, 2 * y + 1)[k] +
                        px(&src, 2 * x + 1, 2 * y + 1)[k];
                CHECK_EQ_INT(px(&dst, 12 + x, y)[k], (s + 2) / 4);
            }
    canvas_blit(&dst, 0, 10, 16, 12, &src); /* double size: nearest; clipped at the bottom edge */
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 16; x++) CHECK(!memcmp(px(&dst, x, 10 + y), px(&src, x / 2, y / 2), 3));
    free(src.data);
    free(dst.data);
}

/* Independent rasteriser: a pixel is ink iff its top-left corner lies in some quad (scaled). */
static void check_text(const char *text, const char *as_ascii, int scale) {
    sd_image im;
    REQUIRE(canvas_init(&im, 400, 80, (canvas_rgb){255, 255, 255}) == 0);
    int w = canvas_text(&im, 5, 7, text, scale, (canvas_rgb){0, 0, 0});
    static char vbuf[200000];
    char t[256];
    snprintf(t, sizeof t, "%s", as_ascii);
    int quads = stb_easy_font_print(0, 0, t, NULL, vbuf, sizeof vbuf);
    CHECK_EQ_INT(w, stb_easy_font_width(t) * scale);
    int wrong = 0, ink = 0;
    for (int y = 0; y < im.h; y++)
        for (int x = 0; x < im.w; x++) {
            double fx = (double)(x - 5) / scale, fy = (double)(y - 7) / scale;
            int want = 0;
            for (int q = 0; q < quads && !want; q++) {
                const float *v0 = (const float *)(vbuf + q * 64), *v2 = (const float *)(vbuf + q * 64 + 32);
                want = fx >= v0[0] && fx < v2[0] && fy >= v0[1] && fy < v2[1];
            }
            int got = px(&im, x, y)[0] == 0;
            ink += got;
            wrong += got != want;
        }
    CHECK_MSG(wrong == 0, "\"%s\": %d pixels differ from the reference rasteriser", as_ascii, wrong);
    CHECK(ink > 0);
    free(im.data);
}

TEST(compare_text_matches_font_quads) {
    check_text("Hello, dpm++2m 30dB!", "Hello, dpm++2m 30dB!", 2);
    check_text("gjpqy {|} 0.123", "gjpqy {|} 0.123", 1);
    check_text("caf\xc3\xa9 \xe6\x97\xa5", "caf? ?", 2); /* UTF-8: one '?' per character */
    CHECK_EQ_INT(canvas_text_lines("a\nb\nc"), 3);
}

TEST(compare_text_fit) {
    char out[128], want[64];
    canvas_text_fit("short", 2, 1000, out, sizeof out);
    CHECK(!strcmp(out, "short"));
    snprintf(want, sizeof want, "abcd..");
    int w = stb_easy_font_width(want) * 2;
    canvas_text_fit("abcdefghij\nab", 2, w, out, sizeof out);
    CHECK_MSG(!strcmp(out, "abcd..\nab"), "got \"%s\"", out);
}

TEST(compare_grid_cells_are_exact) {
    enum { R = 2, C = 3, W = 24, H = 16 };
    sd_image imgs[R * C];
    const sd_image *cells[R * C];
    const char *caps[R * C];
    for (int i = 0; i < R * C; i++) {
        imgs[i] = make(W, H, i + 1);
        cells[i] = &imgs[i];
        caps[i] = "1.2s 30dB";
    }
    cells[4] = NULL; /* a missing cell stays blank */
    sd_image tall = make(W / 2, H, 9);
    cells[5] = &tall; /* other aspect: fitted, centred */
    const char *rows[R] = {"euler\nkarras", "ddim"}, *cols[C] = {"10 steps", "20 steps", "30 steps"};
    grid_spec g = {R, C, cells, W, H, "title", rows, cols, caps, 2};
    sd_image out;
    grid_layout l;
    REQUIRE(grid_render(&g, &out, &l) == 0);
    CHECK_EQ_INT(out.w, l.w);
    CHECK_EQ_INT(out.h, l.h);
    /* room for the row labels, column labels and captions; cells inside the picture and apart */
    CHECK(l.left >= canvas_text_width("karras", 2));
    CHECK(l.top >= 2 * CANVAS_LINE_H * 2);
    CHECK(l.pitch_x >= W && l.pitch_y >= H + CANVAS_LINE_H * 2);
    int x, y;
    grid_cell_origin(&l, R - 1, C - 1, &x, &y);
    CHECK(x + W <= out.w && y + H <= out.h);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            grid_cell_origin(&l, r, c, &x, &y);
            int i = r * C + c, diff = 0;
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < W; xx++) {
                    const uint8_t *p = px(&out, x + xx, y + yy);
                    if (i == 4) diff += !(p[0] == 235 && p[1] == 235 && p[2] == 235);
                    else if (i == 5) diff += xx >= W / 4 && xx < W / 4 + W / 2 && memcmp(p, px(&tall, xx - W / 4, yy), 3);
                    else diff += memcmp(p, px(&imgs[i], xx, yy), 3) != 0;
                }
            CHECK_MSG(diff == 0, "cell %d,%d: %d pixels differ", r, c, diff);
            /* caption ink below the cell */
            int ink = 0;
            for (int yy = y + H; yy < y + l.pitch_y - l.pad; yy++)
                for (int xx = x; xx < x + W; xx++) ink += px(&out, xx, yy)[0] < 128;
            CHECK(ink > 0);
        }
    /* row label ink left of the first column, column label ink above the first row */
    int ink_row = 0, ink_col = 0;
    grid_cell_origin(&l, 0, 0, &x, &y);
    for (int yy = y; yy < y + H; yy++)
        for (int xx = 0; xx < l.left - 1; xx++) ink_row += px(&out, xx, yy)[0] < 128;
    for (int yy = l.pad + l.title_h; yy < y; yy++)
        for (int xx = x; xx < x + W; xx++) ink_col += px(&out, xx, yy)[0] < 128;
    CHECK(ink_row > 0 && ink_col > 0);
    for (int i = 0; i < R * C; i++) free(imgs[i].data);
    free(tall.data);
    free(out.data);
}

TEST(compare_chart_ticks) {
    double t[32], step;
    int n = chart_ticks(0, 1, 6, t, &step);
    CHECK_EQ_INT(n, 6);
    CHECK_NEAR(step, 0.2, 1e-12);
    for (int i = 0; i < n; i++) CHECK_NEAR(t[i], 0.2 * i, 1e-12);
    n = chart_ticks(3, 37, 5, t, &step);
    CHECK_NEAR(step, 10, 0);
    CHECK(n == 3 && t[0] == 10 && t[2] == 30);
    n = chart_ticks(0.0012, 0.0049, 4, t, &step); /* 0.002 0.003 0.004 fit in four */
    CHECK_NEAR(step, 0.001, 1e-15);
    CHECK(n == 3 && fabs(t[0] - 0.002) < 1e-12 && fabs(t[2] - 0.004) < 1e-12);
    n = chart_ticks(0.0012, 0.0049, 2, t, &step);  /* 0.002 0.004 */
    CHECK_NEAR(step, 0.002, 1e-15);
    CHECK_EQ_INT(n, 2);
}

TEST(compare_chart_points_and_axes) {
    double x[] = {10, 20, 30}, y1[] = {40, 20, 5}, y2[] = {30, 12, 2};
    chart_series s[2] = {{"euler", 3, x, y1}, {"dpm++2m", 3, x, y2}};
    for (int log_y = 0; log_y < 2; log_y++) {
        chart_spec c = {700, 420, "RMSE against the reference", "steps", "RMSE", log_y, s, 2};
        sd_image im;
        chart_frame f;
        REQUIRE(chart_render(&c, &im, &f) == 0);
        CHECK(im.w == 700 && im.h == 420);
        /* every data point carries its series' marker colour */
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < 3; i++) {
                double pxf, pyf;
                REQUIRE(chart_map(&f, x[i], s[k].y[i], &pxf, &pyf) == 0);
                CHECK(pxf > f.x0 && pxf < f.x1 && pyf > f.y0 && pyf < f.y1);
                CHECK_MSG(is_rgb(&im, (int)lround(pxf), (int)lround(pyf), chart_color(k)), "log %d: series %d point %d", log_y, k, i);
            }
        /* the line between two points is drawn: its midpoint has the colour */
        double ax, ay, bx, by;
        chart_map(&f, x[0], y1[0], &ax, &ay);
        chart_map(&f, x[1], y1[1], &bx, &by);
        if (!log_y) CHECK(is_rgb(&im, (int)lround((ax + bx) / 2), (int)lround((ay + by) / 2), chart_color(0)));
        /* axes: dark pixels along the left and bottom of the plot */
        canvas_rgb ink = {20, 20, 20};
        CHECK(is_rgb(&im, f.x0, (f.y0 + f.y1) / 2, ink) && is_rgb(&im, (f.x0 + f.x1) / 2, f.y1, ink));
        /* the axis range holds every value, from zero on a linear axis, on whole decades on a log axis */
        if (log_y) CHECK(f.ylo == 0 && f.yhi == 2);
        else CHECK(f.ylo == 0 && f.yhi > 40);
        free(im.data);
    }
}
