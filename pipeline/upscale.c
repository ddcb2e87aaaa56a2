/* upscale.c — the resamplers of the hires fix, each the arithmetic of what AUTOMATIC1111 calls: torch's
 * F.interpolate on latents (bilinear, bicubic, nearest-exact; align_corners=False, no antialias, an output size
 * given) and PIL's Image.resize(LANCZOS) on 8-bit pictures (core/pixels.c's px_resize). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/pixels.h"
#include "gen.h"

/* ---- latents (NHWC, one sample) ---- */

/* torch's area_pixel_compute_source_index: where output index i samples the input (float arithmetic). */
static float source_index(float scale, int i, int cubic) {
    float s = scale * ((float)i + 0.5f) - 0.5f;
    return !cubic && s < 0 ? 0.0f : s;
}

/* Bilinear taps along one axis: indices i0, i1 and weights. */
static void linear_taps(int in, int out, int i, int *i0, int *i1, float *w0, float *w1) {
    float scale = (float)in / (float)out, src = source_index(scale, i, 0);
    int k = (int)floorf(src);
    if (k > in - 1) k = in - 1;
    float l = src - (float)k;
    l = l < 0 ? 0 : l > 1 ? 1 : l;
    *i0 = k;
    *i1 = k + (k < in - 1 ? 1 : 0);
    *w1 = l;
    *w0 = 1.0f - l;
}

static float cubic1(float x, float A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }         /* |x| <= 1 */
static float cubic2(float x, float A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }  /* 1 < |x| < 2 */

/* Bicubic taps (A = -0.75, indices clamped to the edge). */
static void cubic_taps(int in, int out, int i, int idx[4], float w[4]) {
    float scale = (float)in / (float)out, src = source_index(scale, i, 1);
    int k = (int)floorf(src);
    float t = src - (float)k, A = -0.75f;
    w[0] = cubic2(t + 1.0f, A);
    w[1] = cubic1(t, A);
    w[2] = cubic1(1.0f - t, A);
    w[3] = cubic2(2.0f - t, A);
    for (int j = 0; j < 4; j++) {
        int v = k - 1 + j;
        idx[j] = v < 0 ? 0 : v > in - 1 ? in - 1 : v;
    }
}

/* nearest-exact: floor((i + 0.5) · in / out), clamped. */
static int nearest_exact(int in, int out, int i) {
    float scale = (float)in / (float)out;
    int k = (int)floorf(((float)i + 0.5f) * scale);
    return k < in - 1 ? k : in - 1;
}

void upscale_latent(int mode, const float *x, int h, int w, int c, int h2, int w2, float *out) {
    for (int oy = 0; oy < h2; oy++)
        for (int ox = 0; ox < w2; ox++) {
            float *o = out + ((size_t)oy * w2 + ox) * c;
            if (mode == UPSCALE_NEAREST_EXACT) {
                memcpy(o, x + ((size_t)nearest_exact(h, h2, oy) * w + nearest_exact(w, w2, ox)) * c, c * sizeof(float));
            } else if (mode == UPSCALE_BILINEAR) {
                int y0, y1, x0, x1;
                float wy0, wy1, wx0, wx1;
                linear_taps(h, h2, oy, &y0, &y1, &wy0, &wy1);
                linear_taps(w, w2, ox, &x0, &x1, &wx0, &wx1);
                const float *a = x + ((size_t)y0 * w) * c, *b = x + ((size_t)y1 * w) * c;
                for (int k = 0; k < c; k++) /* torch nests the last axis innermost */
                    o[k] = (a[x0 * c + k] * wx0 + a[x1 * c + k] * wx1) * wy0 + (b[x0 * c + k] * wx0 + b[x1 * c + k] * wx1) * wy1;
            } else {
                int yi[4], xi[4];
                float wy[4], wx[4];
                cubic_taps(h, h2, oy, yi, wy);
                cubic_taps(w, w2, ox, xi, wx);
                for (int k = 0; k < c; k++) {
                    float acc = 0;
                    for (int j = 0; j < 4; j++) {
                        const float *row = x + (size_t)yi[j] * w * c;
                        float r = row[xi[0] * c + k] * wx[0];
                        for (int i = 1; i < 4; i++) r += row[xi[i] * c + k] * wx[i];
                        acc = j ? acc + r * wy[j] : r * wy[j];
                    }
                    o[k] = acc;
                }
            }
        }
}

/* ---- pictures: PIL's LANCZOS (core/pixels.c computes Pillow's resize exactly) ---- */

sd_status upscale_lanczos(const sd_image *in, int W, int H, sd_image *out) {
    memset(out, 0, sizeof *out);
    if (W < 1 || H < 1 || in->w < 1 || in->h < 1) return err_fail(SD_ERR_ARG, "Lanczos resize %dx%d -> %dx%d", in->w, in->h, W, H);
    uint8_t *dst = malloc((size_t)W * H * in->c);
    if (!dst) return err_fail(SD_ERR_MEMORY, "out of memory for the Lanczos resize");
    sd_status st = px_resize(in->data, in->w, in->h, in->c, NULL, W, H, PX_LANCZOS, dst);
    if (st != SD_OK) {
        free(dst);
        return st;
    }
    *out = (sd_image){W, H, in->c, dst};
    return SD_OK;
}
