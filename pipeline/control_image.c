/* control_image.c — a control image brought to the picture's size (AUTOMATIC1111's resize modes), preprocessed
 * (Canny edges), as the [0, 1] floats a ControlNet reads (diffusers' control image processor does not normalise). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "control.h"

void sd_control_init(sd_control *c) {
    memset(c, 0, sizeof *c);
    c->strength = 1.0f;
    c->start = 0.0f;
    c->end = 1.0f;
    c->canny_low = 100.0f;
    c->canny_high = 200.0f;
}

sd_status control_validate(const sd_control *sc, int i) {
    if (!sc->model || !*sc->model) return err_fail(SD_ERR_ARG, "ControlNet %d: no model given", i);
    if (!sc->image || !sc->image->data || sc->image->w < 1 || sc->image->h < 1)
        return err_fail(SD_ERR_ARG, "ControlNet %d (%s): no control image given", i, sc->model);
    if (sc->image->c != 1 && sc->image->c != 3) return err_fail(SD_ERR_ARG, "ControlNet %d: the control image has %d channels (1 or 3)", i, sc->image->c);
    if (!(sc->strength >= 0 && sc->strength <= 10)) return err_fail(SD_ERR_ARG, "ControlNet %d: strength %g: must be between 0 and 10", i, sc->strength);
    if (!(sc->start >= 0 && sc->start <= 1 && sc->end >= 0 && sc->end <= 1 && sc->start <= sc->end))
        return err_fail(SD_ERR_ARG, "ControlNet %d: start %g and end %g: must satisfy 0 <= start <= end <= 1", i, sc->start, sc->end);
    if (sc->preprocess && strcmp(sc->preprocess, "none") && strcmp(sc->preprocess, "canny"))
        return err_fail(SD_ERR_ARG, "ControlNet %d: unknown preprocessor \"%s\" (valid: none, canny)", i, sc->preprocess);
    if (!(sc->canny_low >= 0 && sc->canny_high >= 0 && sc->canny_low <= 2040 && sc->canny_high <= 2040))
        return err_fail(SD_ERR_ARG, "ControlNet %d: Canny thresholds %g, %g: must be between 0 and 2040", i, sc->canny_low, sc->canny_high);
    if (sc->resize && strcmp(sc->resize, "crop") && strcmp(sc->resize, "just-resize") && strcmp(sc->resize, "fill"))
        return err_fail(SD_ERR_ARG, "ControlNet %d: unknown resize mode \"%s\" (valid: crop, just-resize, fill)", i, sc->resize);
    return SD_OK;
}

/* One output pixel's value from the source rectangle [x0, x1) x [y0, y1) (source pixel units): the area average
 * when the rectangle spans more than a pixel, else bilinear at its centre. */
static float sample(const sd_image *im, int c, double x0, double x1, double y0, double y1) {
    if (x1 - x0 <= 1.0 && y1 - y0 <= 1.0) {
        double sx = (x0 + x1) / 2 - 0.5, sy = (y0 + y1) / 2 - 0.5;
        int ix = (int)floor(sx), iy = (int)floor(sy);
        double fx = sx - ix, fy = sy - iy, acc = 0;
        for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++) {
                int xx = ix + dx < 0 ? 0 : ix + dx >= im->w ? im->w - 1 : ix + dx;
                int yy = iy + dy < 0 ? 0 : iy + dy >= im->h ? im->h - 1 : iy + dy;
                acc += (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy) * im->data[((size_t)yy * im->w + xx) * im->c + c];
            }
        return (float)acc;
    }
    double acc = 0, area = 0;
    for (int y = (int)floor(y0); y < (int)ceil(y1); y++) {
        double wy = fmin(y1, y + 1.0) - fmax(y0, (double)y);
        if (wy <= 0 || y < 0 || y >= im->h) continue;
        for (int x = (int)floor(x0); x < (int)ceil(x1); x++) {
            double wx = fmin(x1, x + 1.0) - fmax(x0, (double)x);
            if (wx <= 0 || x < 0 || x >= im->w) continue;
            acc += wx * wy * im->data[((size_t)y * im->w + x) * im->c + c];
            area += wx * wy;
        }
    }
    return area > 0 ? (float)(acc / area) : 0.0f;
}

sd_status control_resize(const sd_image *img, const char *mode, int W, int H, uint8_t *out) {
    int C = img->c;
    if (!mode) mode = "crop";
    /* the source rectangle that lands on the region [ox, ox + rw) x [oy, oy + rh) of the output */
    double sx0 = 0, sy0 = 0, sw = img->w, sh = img->h;
    int ox = 0, oy = 0, rw = W, rh = H;
    if (!strcmp(mode, "crop")) { /* cover W x H, cut the overhang equally on both sides */
        double k = fmax((double)W / img->w, (double)H / img->h);
        sw = W / k;
        sh = H / k;
        sx0 = (img->w - sw) / 2;
        sy0 = (img->h - sh) / 2;
    } else if (!strcmp(mode, "fill")) { /* fit inside W x H, centred */
        double k = fmin((double)W / img->w, (double)H / img->h);
        rw = (int)lround(img->w * k);
        rh = (int)lround(img->h * k);
        if (rw < 1) rw = 1;
        if (rh < 1) rh = 1;
        if (rw > W) rw = W;
        if (rh > H) rh = H;
        ox = (W - rw) / 2;
        oy = (H - rh) / 2;
    }
    memset(out, 0, (size_t)W * H * C);
    double kx = sw / rw, ky = sh / rh;
    for (int y = 0; y < rh; y++)
        for (int x = 0; x < rw; x++)
            for (int c = 0; c < C; c++) {
                float v = sample(img, c, sx0 + x * kx, sx0 + (x + 1) * kx, sy0 + y * ky, sy0 + (y + 1) * ky);
                long r = lrintf(v);
                out[((size_t)(y + oy) * W + x + ox) * C + c] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
            }
    return SD_OK;
}

sd_status control_image_prepare(const sd_control *sc, int W, int H, int bgr, float **out) {
    *out = NULL;
    const sd_image *im = sc->image;
    size_t n = (size_t)W * H;
    uint8_t *fit = malloc(n * im->c), *edges = NULL;
    float *f = malloc(n * 3 * sizeof *f);
    if (!fit || !f) {
        free(fit);
        free(f);
        return err_fail(SD_ERR_MEMORY, "out of memory for the control image");
    }
    /* an image of the picture's size is used as it is */
    if (im->w == W && im->h == H) memcpy(fit, im->data, n * im->c);
    else control_resize(im, sc->resize, W, H, fit);
    const uint8_t *src = fit;
    int C = im->c;
    if (sc->preprocess && !strcmp(sc->preprocess, "canny")) {
        edges = malloc(n);
        sd_status st = edges ? canny_u8(fit, W, H, C, sc->canny_low, sc->canny_high, edges) : err_fail(SD_ERR_MEMORY, "out of memory");
        if (st != SD_OK) {
            free(fit);
            free(f);
            free(edges);
            return st;
        }
        src = edges;
        C = 1;
    }
    for (size_t p = 0; p < n; p++)
        for (int c = 0; c < 3; c++) {
            int sc_ = C == 1 ? 0 : bgr ? 2 - c : c;
            f[p * 3 + c] = src[p * C + sc_] / 255.0f;
        }
    free(fit);
    free(edges);
    *out = f;
    return SD_OK;
}
