/* mask.c — threshold, invert and Gaussian blur of an 8-bit mask. The kernel is OpenCV's for a given sigma (size
 * 2*int(2.5*sigma+0.5)+1, edges mirrored without repeating the edge pixel), which is what A1111 calls. */
#include "mask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int mirror(int i, int n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
    return i;
}

/* One pass along x (dx = 1) or y. */
static int blur(sd_image *m, double sigma, int along_x) {
    int r = (int)(2.5 * sigma + 0.5), n = 2 * r + 1;
    float *k = malloc((size_t)n * sizeof *k);
    uint8_t *out = malloc((size_t)m->w * m->h);
    if (!k || !out) { free(k); free(out); return -1; }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += k[i] = (float)exp(-(double)(i - r) * (i - r) / (2 * sigma * sigma));
    for (int i = 0; i < n; i++) k[i] = (float)(k[i] / sum);
    for (int y = 0; y < m->h; y++)
        for (int x = 0; x < m->w; x++) {
            float v = 0;
            for (int i = 0; i < n; i++) {
                int xx = along_x ? mirror(x + i - r, m->w) : x, yy = along_x ? y : mirror(y + i - r, m->h);
                v += k[i] * m->data[(size_t)yy * m->w + xx];
            }
            out[(size_t)y * m->w + x] = (uint8_t)(v > 255 ? 255 : v + 0.5f);
        }
    memcpy(m->data, out, (size_t)m->w * m->h);
    free(out);
    free(k);
    return 0;
}

int mask_prepare(sd_image *m, int round, int invert, double blur_x, double blur_y) {
    size_t n = (size_t)m->w * m->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t v = m->data[i];
        if (round) v = v > 128 ? 255 : 0;
        m->data[i] = invert ? (uint8_t)(255 - v) : v;
    }
    if (blur_x > 0 && blur(m, blur_x, 1) != 0) return -1;
    if (blur_y > 0 && blur(m, blur_y, 0) != 0) return -1;
    return 0;
}
