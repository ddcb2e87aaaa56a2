/* pixels.h — 8-bit image operations computed exactly as Pillow computes them (Image.resize with a filter and a
 * source box, ImageFilter.GaussianBlur, the masked paste + alpha_composite that pipelines use to lay the original
 * picture back over an inpainted one), plus OpenCV's GaussianBlur in floating point. Inpainting preparation in
 * diffusers and AUTOMATIC1111 is written with these calls; reproducing their integer arithmetic is what makes a
 * resized or blurred mask land on the same pixels.
 *
 * Images are row-major, interleaved: [h][w][c] with c = 1 (grey) or 3 (RGB). */
#ifndef CORE_PIXELS_H
#define CORE_PIXELS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef enum px_filter { PX_BILINEAR, PX_BICUBIC, PX_LANCZOS } px_filter;

/* Image.resize((ow, oh), filter, box): box = (x0, y0, x1, y1), the source region in pixels (NULL: the whole
 * image; a zero-height or zero-width box is legal and samples around that edge, as Pillow does). */
sd_status px_resize(const uint8_t *in, int w, int h, int c, const float box[4], int ow, int oh, px_filter f, uint8_t *out);

/* ImageFilter.GaussianBlur(radius) in place: three extended box blurs per axis (Gwosdek et al.), Pillow's
 * fixed-point rounding. radius <= 0 leaves the image unchanged. */
sd_status px_gaussian_blur(uint8_t *img, int w, int h, int c, float radius);

#define PX_MAX_KERNEL 1025 /* largest OpenCV kernel size accepted (AUTOMATIC1111: 2·int(2.5σ+0.5)+1) */

/* cv2.GaussianBlur(img, (kw, kh), sigma) on 8-bit data: OpenCV's bit-exact path (kernel in 8-bit fixed point with
 * error diffusion, BORDER_REFLECT_101, one rounding). Used one axis at a time (kw or kh = 1), as AUTOMATIC1111
 * does; with both > 1 this rounds after each axis, which OpenCV does not. Sizes must be odd. */
sd_status px_cv_gaussian_blur(uint8_t *img, int w, int h, int c, int kw, int kh, double sigma);

/* Pillow's Image.alpha_composite of n RGBA pixels: src over dst, into dst. */
void px_alpha_composite(uint8_t *dst, const uint8_t *src, size_t n);
/* RGBA -> RGBa (premultiply) and RGBa -> RGBA, n pixels in place, with Pillow's rounding. */
void px_premultiply(uint8_t *rgba, size_t n);
void px_unpremultiply(uint8_t *rgba, size_t n);
/* Pillow's paste through an L mask: dst = dst·(255 - a)/255 + src·a/255 per channel, rounded; c channels. */
void px_paste_masked(uint8_t *dst, const uint8_t *src, const uint8_t *a, size_t n, int c);

/* One pixel channel of Pillow's overlay of an original picture on a generated one, as diffusers'
 * VaeImageProcessor.apply_overlay and AUTOMATIC1111's apply_overlay build it: the original, pasted into a clear
 * RGBa image through the inverted mask m (255 = repainted), converted to RGBA and alpha-composited over the
 * generated value g. */
uint8_t px_overlay(uint8_t orig, uint8_t m, uint8_t g);

#endif
