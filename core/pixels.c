/* pixels.c — Pillow's resampling, Gaussian blur and overlay arithmetic, and OpenCV's Gaussian blur (pixels.h).
 * The integer details (22-bit filter coefficients, 24-bit box-blur weights, rounding shifts) are Pillow's: they
 * decide which side of a threshold a mask pixel falls. */
#include "pixels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* ---- resampling (Pillow libImaging/Resample.c semantics) ---- */

#define PREC 22 /* 32 - 8 - 2: room for negative lobes and overshoot */

static double sinc(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double filter_at(px_filter f, double x) {
    switch (f) {
    case PX_BILINEAR:
        if (x < 0.0) x = -x;
        return x < 1.0 ? 1.0 - x : 0.0;
    case PX_BICUBIC: /* a = -0.5 */
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((-0.5 + 2.0) * x - (-0.5 + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * -0.5;
        return 0.0;
    default: /* Lanczos-3: truncated sinc */
        return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
    }
}

static double filter_support(px_filter f) { return f == PX_BILINEAR ? 1.0 : f == PX_BICUBIC ? 2.0 : 3.0; }

/* Per output pixel: first source index, count, and `ksize` fixed-point weights. */
typedef struct coeffs { int ksize, *bounds; int32_t *k; } coeffs;

static sd_status coeffs_make(int in_size, float in0, float in1, int out_size, px_filter f, coeffs *c) {
    double scale = (double)(in1 - in0) / out_size, fs = scale < 1.0 ? 1.0 : scale;
    double support = filter_support(f) * fs;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = malloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->k = malloc((size_t)out_size * c->ksize * sizeof *c->k);
    double *w = malloc((size_t)c->ksize * sizeof *w);
    if (!c->bounds || !c->k || !w) {
        free(c->bounds);
        free(c->k);
        free(w);
        return err_fail(SD_ERR_MEMORY, "out of memory resizing an image");
    }
    double inv = 1.0 / fs;
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = filter_at(f, (x + xmin - center + 0.5) * inv);
            ww += w[x];
        }
        int32_t *k = c->k + (size_t)xx * c->ksize;
        for (int x = 0; x < c->ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PREC)) : (int32_t)(0.5 + v * (1 << PREC));
        }
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(w);
    return SD_OK;
}

static void coeffs_free(coeffs *c) {
    free(c->bounds);
    free(c->k);
}

static uint8_t clip8(int32_t ss) {
    int32_t v = ss >> PREC; /* arithmetic shift, as Pillow's lookup table index */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

sd_status px_resize(const uint8_t *in, int w, int h, int c, const float box_in[4], int ow, int oh, px_filter f, uint8_t *out) {
    if (w < 1 || h < 1 || ow < 1 || oh < 1 || c < 1 || c > 4) return err_fail(SD_ERR_ARG, "resize %dx%d -> %dx%d: bad size", w, h, ow, oh);
    float box[4] = {0, 0, (float)w, (float)h};
    if (box_in) memcpy(box, box_in, sizeof box);
    int need_h = ow != w || box[0] != 0 || box[2] != ow, need_v = oh != h || box[1] != 0 || box[3] != oh;
    coeffs cv = {0}, ch = {0};
    sd_status st = coeffs_make(h, box[1], box[3], oh, f, &cv);
    if (st) return st;
    int yfirst = cv.bounds[0], ylast = cv.bounds[2 * oh - 2] + cv.bounds[2 * oh - 1];
    const uint8_t *src = in;
    int sw = w;
    uint8_t *tmp = NULL;
    if (need_h) {
        if ((st = coeffs_make(w, box[0], box[2], ow, f, &ch))) {
            coeffs_free(&cv);
            return st;
        }
        for (int i = 0; i < oh; i++) cv.bounds[2 * i] -= yfirst;
        tmp = malloc((size_t)(ylast - yfirst) * ow * c + 1);
        if (!tmp) {
            coeffs_free(&cv);
            coeffs_free(&ch);
            return err_fail(SD_ERR_MEMORY, "out of memory resizing an image");
        }
        for (int yy = 0; yy < ylast - yfirst; yy++) {
            const uint8_t *line = in + (size_t)(yy + yfirst) * w * c;
            for (int xx = 0; xx < ow; xx++) {
                int xmin = ch.bounds[2 * xx], xmax = ch.bounds[2 * xx + 1];
                const int32_t *k = ch.k + (size_t)xx * ch.ksize;
                for (int b = 0; b < c; b++) {
                    int32_t ss = 1 << (PREC - 1);
                    for (int x = 0; x < xmax; x++) ss += line[(x + xmin) * c + b] * k[x];
                    tmp[((size_t)yy * ow + xx) * c + b] = clip8(ss);
                }
            }
        }
        coeffs_free(&ch);
        src = tmp;
        sw = ow;
    }
    if (need_v) {
        for (int yy = 0; yy < oh; yy++) {
            int ymin = cv.bounds[2 * yy], ymax = cv.bounds[2 * yy + 1];
            const int32_t *k = cv.k + (size_t)yy * cv.ksize;
            for (int xx = 0; xx < sw; xx++)
                for (int b = 0; b < c; b++) {
                    int32_t ss = 1 << (PREC - 1);
                    for (int y = 0; y < ymax; y++) ss += src[((size_t)(y + ymin) * sw + xx) * c + b] * k[y];
                    out[((size_t)yy * sw + xx) * c + b] = clip8(ss);
                }
        }
    } else {
        memcpy(out, src, (size_t)oh * sw * c);
    }
    coeffs_free(&cv);
    free(tmp);
    return SD_OK;
}

/* ---- Gaussian blur (Pillow libImaging/BoxBlur.c) ---- */

/* One extended box blur of a line of n values (stride apart), weights in 24-bit fixed point. */
static void box_line(uint8_t *out, const uint8_t *in, int n, int radius, int edge_a, int edge_b, uint32_t ww, uint32_t fw) {
    int last = n - 1;
    uint32_t acc = in[0] * (radius + 1), bulk;
#define MOVE(sub, add) acc += in[add] - in[sub]
#define FAR(left, right) bulk = acc * ww + (in[left] + in[right]) * fw
#define SAVE(x) out[x] = (uint8_t)((bulk + (1 << 23)) >> 24)
    for (int x = 0; x < edge_a - 1; x++) acc += in[x];
    acc += in[last] * (radius - edge_a + 1);
    if (edge_a <= edge_b) {
        for (int x = 0; x < edge_a; x++) { MOVE(0, x + radius); FAR(0, x + radius + 1); SAVE(x); }
        for (int x = edge_a; x < edge_b; x++) { MOVE(x - radius - 1, x + radius); FAR(x - radius - 1, x + radius + 1); SAVE(x); }
        for (int x = edge_b; x <= last; x++) { MOVE(x - radius - 1, last); FAR(x - radius - 1, last); SAVE(x); }
    } else {
        for (int x = 0; x < edge_b; x++) { MOVE(0, x + radius); FAR(0, x + radius + 1); SAVE(x); }
        for (int x = edge_b; x < edge_a; x++) { MOVE(0, last); FAR(0, last); SAVE(x); }
        for (int x = edge_a; x <= last; x++) { MOVE(x - radius - 1, last); FAR(x - radius - 1, last); SAVE(x); }
    }
#undef MOVE
#undef FAR
#undef SAVE
}

/* The box radius (integer part + fraction) whose `passes` repetitions approximate a Gaussian of that σ; float
 * arithmetic where Pillow's is float. */
static float gaussian_box_radius(float radius, int passes) {
    float sigma2 = radius * radius / passes;
    float L = (float)sqrt(12.0 * sigma2 + 1.0);
    float l = (float)floor((L - 1.0) / 2.0);
    float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
    a /= 6 * (sigma2 - (l + 1) * (l + 1));
    return l + a;
}

/* `passes` blurs of every line: n lines of len values, values `step` apart, lines `lstride` apart. */
static void blur_lines(uint8_t *img, int nlines, int len, size_t step, size_t lstride, float fr, int passes, uint8_t *a, uint8_t *b) {
    int radius = (int)fr;
    uint32_t ww = (uint32_t)((uint32_t)(1 << 24) / (fr * 2 + 1));
    uint32_t fw = ((1 << 24) - (radius * 2 + 1) * ww) / 2;
    int edge_a = radius + 1 < len ? radius + 1 : len, edge_b = len - radius - 1 > 0 ? len - radius - 1 : 0;
    for (int l = 0; l < nlines; l++) {
        uint8_t *p = img + l * lstride;
        for (int i = 0; i < len; i++) a[i] = p[i * step];
        for (int q = 0; q < passes; q++) {
            box_line(b, a, len, radius, edge_a, edge_b, ww, fw);
            memcpy(a, b, len);
        }
        for (int i = 0; i < len; i++) p[i * step] = a[i];
    }
}

sd_status px_gaussian_blur(uint8_t *img, int w, int h, int c, float radius) {
    if (!(radius > 0)) return SD_OK;
    int n = w > h ? w : h;
    uint8_t *a = malloc(2 * (size_t)n);
    if (!a) return err_fail(SD_ERR_MEMORY, "out of memory blurring an image");
    float r = gaussian_box_radius(radius, 3);
    for (int b = 0; b < c; b++) {
        if (r != 0) blur_lines(img + b, h, w, (size_t)c, (size_t)w * c, r, 3, a, a + n); /* rows */
        if (r != 0) blur_lines(img + b, w, h, (size_t)w * c, (size_t)c, r, 3, a, a + n); /* columns */
    }
    free(a);
    return SD_OK;
}

/* ---- OpenCV GaussianBlur (8-bit: its bit-exact fixed-point path) ---- */

static int reflect101(int p, int len) {
    if (len == 1) return 0;
    while ((unsigned)p >= (unsigned)len) p = p < 0 ? -p : 2 * len - 2 - p;
    return p;
}

/* getGaussianKernelBitExact, then getGaussianKernelFixedPoint_ED: 8 fraction bits with the rounding error carried
 * from each tap to the next and the centre tap taking what is left, so the taps sum to exactly 256. */
static void cv_kernel_q8(int n, double sigma, int32_t *q) {
    if (!(sigma > 0)) sigma = n * 0.15 + 0.35;
    double scale2 = -0.125 / (sigma * sigma), sum = 0, v[PX_MAX_KERNEL];
    int half = (n - 1) / 2;
    for (int i = 0, x = 1 - n; i < half; i++, x += 2) {
        v[i] = exp((double)(x * x) * scale2);
        sum += v[i];
    }
    sum = sum * 2 + 1;
    double mul = 1.0 / sum, err = 0;
    int64_t acc = 0;
    for (int i = 0; i < half; i++) {
        double adj = v[i] * mul * 256.0 + err;
        long r = lrint(adj);
        err = adj - (double)r;
        q[i] = q[n - 1 - i] = (int32_t)r;
        acc += r;
    }
    q[half] = (int32_t)(256 - 2 * acc);
}

static void cv_axis(uint8_t *img, int nlines, int len, size_t step, size_t lstride, const int32_t *q, int k, uint8_t *line) {
    int r = k / 2;
    for (int l = 0; l < nlines; l++) {
        uint8_t *p = img + l * lstride;
        for (int i = 0; i < len; i++) {
            int32_t acc = 128;
            for (int j = 0; j < k; j++) acc += q[j] * p[reflect101(i + j - r, len) * step];
            acc >>= 8;
            line[i] = (uint8_t)(acc < 0 ? 0 : acc > 255 ? 255 : acc);
        }
        for (int i = 0; i < len; i++) p[i * step] = line[i];
    }
}

sd_status px_cv_gaussian_blur(uint8_t *img, int w, int h, int c, int kw, int kh, double sigma) {
    if (kw < 1 || kh < 1 || !(kw & 1) || !(kh & 1) || kw > PX_MAX_KERNEL || kh > PX_MAX_KERNEL)
        return err_fail(SD_ERR_ARG, "Gaussian kernel %dx%d: sizes must be odd and at most %d", kw, kh, PX_MAX_KERNEL);
    int32_t qx[PX_MAX_KERNEL], qy[PX_MAX_KERNEL];
    cv_kernel_q8(kw, sigma, qx);
    cv_kernel_q8(kh, sigma, qy);
    uint8_t *line = malloc((size_t)(w > h ? w : h));
    if (!line) return err_fail(SD_ERR_MEMORY, "out of memory blurring an image");
    for (int b = 0; b < c; b++) {
        if (kw > 1) cv_axis(img + b, h, w, (size_t)c, (size_t)w * c, qx, kw, line);
        if (kh > 1) cv_axis(img + b, w, h, (size_t)w * c, (size_t)c, qy, kh, line);
    }
    free(line);
    return SD_OK;
}

/* ---- compositing (Pillow's Paste.c, AlphaComposite.c and RGBA <-> RGBa conversions) ---- */

static uint32_t div255(uint32_t v) { /* Pillow's DIV255: (v + 128) / 255 rounded, by shifts */
    v += 128;
    return ((v >> 8) + v) >> 8;
}

void px_alpha_composite(uint8_t *dst, const uint8_t *src, size_t n) {
    for (size_t i = 0; i < n; i++, dst += 4, src += 4) {
        if (src[3] == 0) continue;
        uint32_t blend = (uint32_t)dst[3] * (255 - src[3]), outa255 = (uint32_t)src[3] * 255 + blend;
        uint32_t coef1 = (uint32_t)src[3] * 255 * 255 * 128 / outa255, coef2 = 255 * 128 - coef1;
        for (int b = 0; b < 3; b++) {
            uint32_t t = src[b] * coef1 + dst[b] * coef2 + (0x80 << 7);
            dst[b] = (uint8_t)((((t >> 8) + t) >> 8) >> 7);
        }
        dst[3] = (uint8_t)div255(outa255);
    }
}

void px_premultiply(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++, p += 4)
        for (int b = 0; b < 3; b++) p[b] = (uint8_t)div255((uint32_t)p[b] * p[3]);
}

void px_unpremultiply(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++, p += 4)
        if (p[3] != 255 && p[3] != 0)
            for (int b = 0; b < 3; b++) {
                uint32_t v = 255u * p[b] / p[3];
                p[b] = (uint8_t)(v > 255 ? 255 : v);
            }
}

void px_paste_masked(uint8_t *dst, const uint8_t *src, const uint8_t *a, size_t n, int c) {
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < c; b++) dst[i * c + b] = (uint8_t)div255((uint32_t)dst[i * c + b] * (255u - a[i]) + (uint32_t)src[i * c + b] * a[i]);
}

uint8_t px_overlay(uint8_t orig, uint8_t m, uint8_t g) {
    uint32_t a = 255u - m;                      /* alpha of the pasted original */
    if (a == 0) return g;                       /* alpha_composite copies the destination */
    uint32_t pre = div255((uint32_t)orig * a);  /* paste through an L mask into clear RGBa: premultiplied */
    uint32_t un = a == 255 ? pre : (255 * pre) / a; /* RGBa -> RGBA (at most 255: pre <= a) */
    uint32_t coef1 = a * 255 * 255 * 128 / (a * 255 + 255 * (255 - a)), coef2 = 255 * 128 - coef1;
    uint32_t t = un * coef1 + (uint32_t)g * coef2 + (0x80 << 7);
    return (uint8_t)((((t >> 8) + t) >> 8) >> 7);
}
