/* canny.c — Canny edge detection as OpenCV's cv2.Canny(image, low, high) computes it (aperture 3, L1 gradient), the
 * preprocessor AUTOMATIC1111's ControlNet extension runs on the RGB picture: 3x3 Sobel with replicated borders, per
 * pixel the channel with the largest |dx| + |dy|, non-maximum suppression along the gradient's direction quantised
 * to 0/45/90/135 degrees in OpenCV's integer arithmetic, then hysteresis over 8-connected neighbours. */
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "control.h"

#define SHIFT 15
#define TG22 13573 /* tan(22.5°) · 2^15, rounded */

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

sd_status canny_u8(const uint8_t *img, int w, int h, int ch, float low_t, float high_t, uint8_t *out) {
    if (low_t > high_t) { float t = low_t; low_t = high_t; high_t = t; }
    int low = (int)low_t, high = (int)high_t; /* cvFloor of non-negative thresholds */
    if (low_t < 0) low = -1;
    size_t n = (size_t)w * h;
    /* magnitudes with a zero border of one pixel, so neighbours outside the picture never win */
    int W2 = w + 2;
    int *mag = calloc((size_t)W2 * (h + 2), sizeof *mag);
    int *dxs = malloc(n * sizeof *dxs), *dys = malloc(n * sizeof *dys);
    uint8_t *map = malloc((size_t)W2 * (h + 2));
    size_t *stack = malloc(n * sizeof *stack);
    if (!mag || !dxs || !dys || !map || !stack) {
        free(mag); free(dxs); free(dys); free(map); free(stack);
        return err_fail(SD_ERR_MEMORY, "out of memory for edge detection");
    }
    for (int y = 0; y < h; y++) {
        int ym = clampi(y - 1, 0, h - 1), yp = clampi(y + 1, 0, h - 1);
        for (int x = 0; x < w; x++) {
            int xm = clampi(x - 1, 0, w - 1), xp = clampi(x + 1, 0, w - 1);
            int best = -1, bdx = 0, bdy = 0;
            for (int c = 0; c < ch; c++) {
#define P(yy, xx) ((int)img[((size_t)(yy) * w + (xx)) * ch + c])
                int dx = (P(ym, xp) - P(ym, xm)) + 2 * (P(y, xp) - P(y, xm)) + (P(yp, xp) - P(yp, xm));
                int dy = (P(yp, xm) - P(ym, xm)) + 2 * (P(yp, x) - P(ym, x)) + (P(yp, xp) - P(ym, xp));
#undef P
                int m = abs(dx) + abs(dy);
                if (m > best) { best = m; bdx = dx; bdy = dy; } /* the first channel wins a tie, as in OpenCV */
            }
            mag[(size_t)(y + 1) * W2 + x + 1] = best;
            dxs[(size_t)y * w + x] = bdx;
            dys[(size_t)y * w + x] = bdy;
        }
    }
    /* map: 1 = not an edge (also the border), 0 = candidate, 2 = edge */
    memset(map, 1, (size_t)W2 * (h + 2));
    size_t top = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t j = (size_t)(y + 1) * W2 + x + 1;
            int m = mag[j];
            if (m <= low) continue;
            int xs = dxs[(size_t)y * w + x], ys = dys[(size_t)y * w + x];
            int ax = abs(xs), ay = abs(ys) << SHIFT;
            int tg22x = ax * TG22, keep;
            if (ay < tg22x) {
                keep = m > mag[j - 1] && m >= mag[j + 1];
            } else {
                int tg67x = tg22x + (ax << (SHIFT + 1));
                if (ay > tg67x) {
                    keep = m > mag[j - W2] && m >= mag[j + W2];
                } else {
                    int s = (xs ^ ys) < 0 ? -1 : 1;
                    keep = m > mag[j - W2 - s] && m > mag[j + W2 + s];
                }
            }
            if (!keep) continue;
            if (m > high) {
                map[j] = 2;
                stack[top++] = j;
            } else {
                map[j] = 0;
            }
        }
    /* hysteresis: candidates 8-connected to an edge become edges */
    while (top) {
        size_t j = stack[--top];
        const long nb[8] = {-W2 - 1, -W2, -W2 + 1, -1, 1, W2 - 1, W2, W2 + 1};
        for (int k = 0; k < 8; k++) {
            size_t q = (size_t)((long)j + nb[k]);
            if (!map[q]) {
                map[q] = 2;
                stack[top++] = q;
            }
        }
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) out[(size_t)y * w + x] = map[(size_t)(y + 1) * W2 + x + 1] == 2 ? 255 : 0;
    free(mag); free(dxs); free(dys); free(map); free(stack);
    return SD_OK;
}
