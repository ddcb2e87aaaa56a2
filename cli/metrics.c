/* metrics.c — RMSE and PSNR between two 8-bit images. */
#include "metrics.h"

#include <math.h>

double metrics_rmse(const sd_image *a, const sd_image *b) {
    if (!a->data || !b->data || a->w != b->w || a->h != b->h || a->c != b->c || a->w < 1 || a->h < 1) return -1;
    size_t n = (size_t)a->w * a->h * a->c;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a->data[i] - (double)b->data[i];
        sum += d * d;
    }
    return sqrt(sum / (double)n);
}

double metrics_psnr(double rmse) { return rmse > 0 ? 20.0 * log10(255.0 / rmse) : INFINITY; }
