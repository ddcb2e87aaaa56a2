/* inpaint.c — inpainting and img2img in pixel space: the init image and the mask brought to the generation size
 * (mask blur, "inpaint only masked" crop with padding, masked-content fill), the latent-grid masks, and the final
 * picture laid back over the original. Two rule sets (README "Inpainting"):
 *   diffusers   StableDiffusionInpaintPipeline: VaeImageProcessor's Lanczos resizes, a mask binarized at 0.5 and
 *               brought to the latent grid with `interpolate` (the top-left pixel of each cell), Pillow's
 *               GaussianBlur for --mask-blur, padding_mask_crop's crop and apply_overlay;
 *   kdiffusion  AUTOMATIC1111's img2img: OpenCV's blur in x then y, the latent mask a bicubic resize rounded, the
 *               9-channel mask rounded at full size, masked content "fill" (its blur-and-composite fill), and the
 *               original always laid back over the result through the mask (doubled, saturated).
 * The pixel arithmetic is Pillow's and OpenCV's own (core/pixels.c). */
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/pixels.h"
#include "gen.h"

/* ---- geometry ---- */

/* Bounding box of the non-zero mask pixels grown by pad, then grown to the aspect ratio W:H inside the picture
 * (diffusers' get_crop_region = A1111's get_crop_region + expand_crop_region). -1 for an all-black mask. */
static int crop_region(const uint8_t *m, int w, int h, int W, int H, int pad, int r[4]) {
    int left = w, right = -1, top = h, bottom = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (m[(size_t)y * w + x]) {
                left = x < left ? x : left;
                right = x > right ? x : right;
                top = y < top ? y : top;
                bottom = y > bottom ? y : bottom;
            }
    if (right < 0) return -1;
    int x1 = left - pad > 0 ? left - pad : 0, y1 = top - pad > 0 ? top - pad : 0;
    int x2 = right + 1 + pad < w ? right + 1 + pad : w, y2 = bottom + 1 + pad < h ? bottom + 1 + pad : h;
    double ratio_crop = (double)(x2 - x1) / (y2 - y1), ratio = (double)W / H;
    if (ratio_crop > ratio) {
        int diff = (int)((x2 - x1) / ratio - (y2 - y1));
        y1 -= diff / 2;
        y2 += diff - diff / 2;
        if (y2 >= h) { y1 -= y2 - h; y2 = h; }
        if (y1 < 0) { y2 -= y1; y1 = 0; }
        if (y2 >= h) y2 = h;
    } else {
        int diff = (int)((y2 - y1) * ratio - (x2 - x1));
        x1 -= diff / 2;
        x2 += diff - diff / 2;
        if (x2 >= w) { x1 -= x2 - w; x2 = w; }
        if (x1 < 0) { x2 -= x1; x1 = 0; }
        if (x2 >= w) x2 = w;
    }
    r[0] = x1; r[1] = y1; r[2] = x2; r[3] = y2;
    return 0;
}

/* Image.crop: the region [x1, x2) x [y1, y2), zeros outside the picture. */
static void crop_copy(const uint8_t *src, int sw, int sh, int c, const int r[4], uint8_t *out) {
    int cw = r[2] - r[0], ch = r[3] - r[1];
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            int sx = x + r[0], sy = y + r[1], in = sx >= 0 && sy >= 0 && sx < sw && sy < sh;
            for (int b = 0; b < c; b++) out[((size_t)y * cw + x) * c + b] = in ? src[((size_t)sy * sw + sx) * c + b] : 0;
        }
}

/* Image.paste of a w x h picture at (dx, dy) into a W x H one, clipped. */
static void paste(uint8_t *dst, int W, int H, const uint8_t *src, int w, int h, int c, int dx, int dy) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int X = x + dx, Y = y + dy;
            if (X >= 0 && Y >= 0 && X < W && Y < H) memcpy(dst + ((size_t)Y * W + X) * c, src + ((size_t)y * w + x) * c, c);
        }
}

/* The scaled side of a very narrow crop (1x300 brought to 128 high is 0 wide) at least one latent pixel (8 px) and
 * at most the generation's side: diffusers' and A1111's formula would ask Pillow for a zero-size resize, which it
 * refuses; one latent cell keeps the crop's own pixels in the generation, the fill bands do the rest. */
static int scaled_side(int v, int limit) {
    int floor_px = limit < 8 ? limit : 8;
    return v < floor_px ? floor_px : v > limit ? limit : v;
}

/* "Resize and fill" (diffusers' _resize_and_fill, A1111's resize mode 2): keep the aspect ratio, centre, and fill
 * the bands left over with the edge rows or columns stretched (a zero-height source box, bicubic). */
static sd_status resize_fill(const uint8_t *src, int sw, int sh, int c, int W, int H, uint8_t *out) {
    double ratio = (double)W / H, src_ratio = (double)sw / sh;
    int rw = ratio < src_ratio ? W : scaled_side((int)((int64_t)sw * H / sh), W);
    int rh = ratio >= src_ratio ? H : scaled_side((int)((int64_t)sh * W / sw), H);
    uint8_t *rs = malloc((size_t)rw * rh * c), *band = malloc((size_t)W * H * c);
    sd_status st = rs && band ? px_resize(src, sw, sh, c, NULL, rw, rh, PX_LANCZOS, rs) : err_fail(SD_ERR_MEMORY, "out of memory");
    if (st == SD_OK) {
        memset(out, 0, (size_t)W * H * c);
        paste(out, W, H, rs, rw, rh, c, W / 2 - rw / 2, H / 2 - rh / 2);
        if (ratio < src_ratio && H / 2 - rh / 2 > 0) {
            int fh = H / 2 - rh / 2;
            float top[4] = {0, 0, (float)W, 0}, bottom[4] = {0, (float)rh, (float)W, (float)rh};
            if ((st = px_resize(rs, rw, rh, c, top, W, fh, PX_BICUBIC, band)) == SD_OK) paste(out, W, H, band, W, fh, c, 0, 0);
            if (st == SD_OK && (st = px_resize(rs, rw, rh, c, bottom, W, fh, PX_BICUBIC, band)) == SD_OK)
                paste(out, W, H, band, W, fh, c, 0, fh + rh);
        } else if (ratio > src_ratio && W / 2 - rw / 2 > 0) {
            int fw = W / 2 - rw / 2;
            float left[4] = {0, 0, 0, (float)H}, right[4] = {(float)rw, 0, (float)rw, (float)H};
            if ((st = px_resize(rs, rw, rh, c, left, fw, H, PX_BICUBIC, band)) == SD_OK) paste(out, W, H, band, fw, H, c, 0, 0);
            if (st == SD_OK && (st = px_resize(rs, rw, rh, c, right, fw, H, PX_BICUBIC, band)) == SD_OK)
                paste(out, W, H, band, fw, H, c, fw + rw, 0);
        }
    }
    free(rs);
    free(band);
    return st;
}

/* "Crop and resize" (diffusers' _resize_and_crop, A1111's resize mode 1): cover W x H keeping the aspect ratio,
 * centred, the overhang cut off. */
static sd_status resize_crop(const uint8_t *src, int sw, int sh, int c, int W, int H, uint8_t *out) {
    double ratio = (double)W / H, src_ratio = (double)sw / sh;
    int rw = ratio > src_ratio ? W : sw * H / sh, rh = ratio <= src_ratio ? H : sh * W / sw;
    uint8_t *rs = malloc((size_t)rw * rh * c);
    if (!rs) return err_fail(SD_ERR_MEMORY, "out of memory");
    sd_status st = px_resize(src, sw, sh, c, NULL, rw, rh, PX_LANCZOS, rs);
    if (st == SD_OK) {
        memset(out, 0, (size_t)W * H * c);
        paste(out, W, H, rs, rw, rh, c, W / 2 - rw / 2, H / 2 - rh / 2);
    }
    free(rs);
    return st;
}

/* Plain resize to W x H (a copy when the size is already right, as Pillow's). */
static sd_status resize_to(const uint8_t *src, int sw, int sh, int c, int W, int H, uint8_t *out) {
    if (sw == W && sh == H) {
        memcpy(out, src, (size_t)W * H * c);
        return SD_OK;
    }
    return px_resize(src, sw, sh, c, NULL, W, H, PX_LANCZOS, out);
}

/* ---- AUTOMATIC1111's masked content "fill" ---- */

/* The picture with the masked area replaced by colours from around it: the unmasked part (premultiplied) blurred
 * ever less and composited, radius 256 once, 64 once, 16 twice, 4 four times, 2 twice, then the sharp original. */
static sd_status a1111_fill(uint8_t *rgb, const uint8_t *mask, int W, int H) {
    size_t n = (size_t)W * H;
    static const int radius[6] = {256, 64, 16, 4, 2, 0}, repeats[6] = {1, 1, 2, 4, 2, 1};
    uint8_t *masked = calloc(n, 4), *src = malloc(n * 4), *acc = calloc(n, 4), *keep = malloc(n);
    sd_status st = masked && src && acc && keep ? SD_OK : err_fail(SD_ERR_MEMORY, "out of memory for the masked-content fill");
    for (size_t i = 0; i < n && st == SD_OK; i++) {
        uint8_t px[4] = {rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2], 255};
        keep[i] = (uint8_t)(255 - mask[i]);
        memcpy(src + i * 4, px, 4);
    }
    if (st == SD_OK) px_paste_masked(masked, src, keep, n, 4); /* RGB -> RGBA -> RGBa is exact at alpha 255 */
    for (int k = 0; k < 6 && st == SD_OK; k++) {
        memcpy(src, masked, n * 4);
        if ((st = px_gaussian_blur(src, W, H, 4, (float)radius[k])) != SD_OK) break;
        px_unpremultiply(src, n);
        for (int r = 0; r < repeats[k]; r++) px_alpha_composite(acc, src, n);
    }
    if (st == SD_OK)
        for (size_t i = 0; i < n; i++) memcpy(rgb + i * 3, acc + i * 4, 3);
    free(masked);
    free(src);
    free(acc);
    free(keep);
    return st;
}

/* ---- the plan ---- */

sd_status inpaint_fill_from_name(const char *name, inpaint_fill *out) {
    static const char *names[4] = {"original", "fill", "latent noise", "latent nothing"};
    static const char *alt[4] = {"original", "fill", "latent_noise", "latent_nothing"};
    if (!name) {
        *out = FILL_ORIGINAL;
        return SD_OK;
    }
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i]) || !strcmp(name, alt[i])) {
            *out = (inpaint_fill)i;
            return SD_OK;
        }
    return err_fail(SD_ERR_ARG, "unknown masked content \"%s\" (valid: original, fill, latent noise, latent nothing)", name);
}

void inpaint_plan_free(inpaint_plan *ip) {
    free(ip->image);
    free(ip->masked);
    free(ip->lat_mask);
    free(ip->cond_mask);
    free(ip->orig);
    free(ip->over);
    memset(ip, 0, sizeof *ip);
}

static uint8_t *to_rgb(const sd_image *im) {
    uint8_t *o = malloc((size_t)im->w * im->h * 3);
    if (o)
        for (size_t i = 0; i < (size_t)im->w * im->h; i++)
            for (int b = 0; b < 3; b++) o[i * 3 + b] = im->data[i * im->c + (im->c >= 3 ? b : 0)];
    return o;
}

static uint8_t *to_grey(const sd_image *im) {
    uint8_t *o = malloc((size_t)im->w * im->h);
    if (o)
        for (size_t i = 0; i < (size_t)im->w * im->h; i++) o[i] = im->data[i * im->c];
    return o;
}

/* The mask at generation size (gm, W x H) and, for the overlay, at the original size (bm): blurred, cropped. */
static sd_status prepare_mask(gen *g, inpaint_plan *ip, const uint8_t *init, uint8_t *bm, uint8_t *gm, uint8_t *gimg) {
    const sd_gen_params *p = g->p;
    int kd = ip->kdiff, W = g->W, H = g->H, w0 = p->init_image->w, h0 = p->init_image->h;
    sd_status st = SD_OK;
    if (p->mask_blur > 0) {
        if (kd) { /* A1111: OpenCV, x then y, kernel 2·int(2.5σ + 0.5) + 1 */
            int k = 2 * (int)(2.5 * p->mask_blur + 0.5) + 1;
            st = px_cv_gaussian_blur(bm, w0, h0, 1, k, 1, p->mask_blur);
            if (st == SD_OK) st = px_cv_gaussian_blur(bm, w0, h0, 1, 1, k, p->mask_blur);
        } else { /* diffusers: VaeImageProcessor.blur = Pillow's GaussianBlur */
            st = px_gaussian_blur(bm, w0, h0, 1, (float)p->mask_blur);
        }
    }
    if (st != SD_OK) return st;
    if (p->inpaint_only_masked) {
        if (crop_region(bm, w0, h0, W, H, p->inpaint_padding, ip->crop))
            return err_fail(SD_ERR_ARG, "the mask is empty: nothing to inpaint (inpaint only masked)");
        int cw = ip->crop[2] - ip->crop[0], ch = ip->crop[3] - ip->crop[1];
        uint8_t *tmp = malloc((size_t)cw * ch * 3);
        if (!tmp) return err_fail(SD_ERR_MEMORY, "out of memory for the inpainting crop");
        crop_copy(bm, w0, h0, 1, ip->crop, tmp);
        st = resize_fill(tmp, cw, ch, 1, W, H, gm);
        crop_copy(init, w0, h0, 3, ip->crop, tmp);
        if (st == SD_OK) st = resize_fill(tmp, cw, ch, 3, W, H, gimg);
        free(tmp);
        ip->cropped = 1;
    } else {
        st = resize_to(bm, w0, h0, 1, W, H, gm);
        if (st == SD_OK) st = resize_to(init, w0, h0, 3, W, H, gimg);
    }
    return st;
}

/* Latent-grid masks (h x w): the blend mask and the 9-channel mask input. */
static sd_status latent_masks(gen *g, inpaint_plan *ip, const uint8_t *gm) {
    int W = g->W, H = g->H, h = g->h, w = g->w, f = W / w;
    ip->lat_mask = malloc((size_t)h * w * sizeof *ip->lat_mask);
    ip->cond_mask = malloc((size_t)h * w * sizeof *ip->cond_mask);
    if (!ip->lat_mask || !ip->cond_mask) return err_fail(SD_ERR_MEMORY, "out of memory for the latent mask");
    /* interpolate(mode="nearest"): the top-left pixel of each f x f cell; values >= 128 are 1 (0.5 binarized or
     * rounded: the same threshold) */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) ip->cond_mask[(size_t)y * w + x] = gm[(size_t)y * f * W + (size_t)x * f] >= 128;
    if (!ip->kdiff) {
        memcpy(ip->lat_mask, ip->cond_mask, (size_t)h * w * sizeof *ip->lat_mask);
        return SD_OK;
    }
    uint8_t *small = malloc((size_t)h * w); /* A1111: Image.resize to the latent size (bicubic), rounded */
    if (!small) return err_fail(SD_ERR_MEMORY, "out of memory for the latent mask");
    sd_status st = px_resize(gm, W, H, 1, NULL, w, h, PX_BICUBIC, small);
    for (size_t i = 0; i < (size_t)h * w && st == SD_OK; i++) ip->lat_mask[i] = small[i] >= 128;
    free(small);
    return st;
}

sd_status inpaint_plan_make(gen *g, inpaint_plan *ip) {
    const sd_gen_params *p = g->p;
    memset(ip, 0, sizeof *ip);
    ip->kdiff = g->sc.convention == SCHED_CONV_KDIFFUSION;
    sd_status st = inpaint_fill_from_name(p->inpaint_fill, &ip->fill);
    if (st != SD_OK) return st;
    int W = g->W, H = g->H, w0 = p->init_image->w, h0 = p->init_image->h, nine = unet_get_config(g->c->unet)->in_channels != g->lc;
    size_t n = (size_t)W * H;
    uint8_t *init = to_rgb(p->init_image), *bm = p->mask ? to_grey(p->mask) : NULL, *gimg = malloc(n * 3), *gm = malloc(n);
    ip->image = malloc(n * 3 * sizeof *ip->image);
    if (!init || (p->mask && !bm) || !gimg || !gm || !ip->image) st = err_fail(SD_ERR_MEMORY, "out of memory for the init image");
    if (st == SD_OK && p->mask) st = prepare_mask(g, ip, init, bm, gm, gimg);
    else if (st == SD_OK) st = resize_to(init, w0, h0, 3, W, H, gimg);
    if (st == SD_OK && p->mask) {
        /* the picture to lay the generation back over: diffusers only for a crop (apply_overlay), A1111 always */
        if (ip->cropped || ip->kdiff) {
            ip->ow = ip->cropped ? w0 : W;
            ip->oh = ip->cropped ? h0 : H;
            size_t on = (size_t)ip->ow * ip->oh;
            ip->orig = malloc(on * 3);
            ip->over = malloc(on);
            if (!ip->orig || !ip->over) st = err_fail(SD_ERR_MEMORY, "out of memory for the overlay");
            else if (ip->cropped) {
                memcpy(ip->orig, init, on * 3);
                memcpy(ip->over, bm, on);
            } else { /* A1111 without a crop: the resized picture, the mask doubled (saturating) */
                memcpy(ip->orig, gimg, on * 3);
                for (size_t i = 0; i < on; i++) ip->over[i] = (uint8_t)(gm[i] > 127 ? 255 : 2 * gm[i]);
            }
        }
        if (st == SD_OK && ip->kdiff && ip->fill != FILL_ORIGINAL) st = a1111_fill(gimg, gm, W, H); /* A1111: any non-original */
        if (st == SD_OK && !ip->kdiff && ip->fill == FILL_FILL) st = a1111_fill(gimg, gm, W, H);
        if (st == SD_OK) st = latent_masks(g, ip, gm);
    }
    if (st == SD_OK) vae_image_from_u8(gimg, n * 3, ip->image);
    if (st == SD_OK && nine) { /* 9-channel input: the image with the repainted area at 0; no mask: all repainted */
        ip->masked = malloc(n * 3 * sizeof *ip->masked);
        if (!ip->masked) st = err_fail(SD_ERR_MEMORY, "out of memory for the masked image");
        for (size_t i = 0; i < n * 3 && st == SD_OK; i++) ip->masked[i] = p->mask && gm[i / 3] < 128 ? ip->image[i] : 0.0f;
        if (st == SD_OK && !p->mask) {
            ip->cond_mask = malloc((size_t)g->h * g->w * sizeof *ip->cond_mask);
            if (!ip->cond_mask) st = err_fail(SD_ERR_MEMORY, "out of memory for the latent mask");
            for (size_t i = 0; i < (size_t)g->h * g->w && st == SD_OK; i++) ip->cond_mask[i] = 1.0f;
        }
    }
    free(init);
    free(bm);
    free(gimg);
    free(gm);
    if (st != SD_OK) inpaint_plan_free(ip);
    return st;
}

sd_status inpaint_compose(const inpaint_plan *ip, sd_image *img) {
    if (!ip->orig) return SD_OK;
    size_t on = (size_t)ip->ow * ip->oh;
    uint8_t *gen = ip->cropped ? calloc(on, 3) : img->data, *out = malloc(on * 3);
    sd_status st = gen && out ? SD_OK : err_fail(SD_ERR_MEMORY, "out of memory for the overlay");
    if (st == SD_OK && ip->cropped) { /* the generation resized into the crop ("crop and resize"), black elsewhere */
        int cw = ip->crop[2] - ip->crop[0], ch = ip->crop[3] - ip->crop[1];
        uint8_t *part = malloc((size_t)cw * ch * 3);
        st = part ? resize_crop(img->data, img->w, img->h, 3, cw, ch, part) : err_fail(SD_ERR_MEMORY, "out of memory for the overlay");
        if (st == SD_OK) paste(gen, ip->ow, ip->oh, part, cw, ch, 3, ip->crop[0], ip->crop[1]);
        free(part);
    }
    for (size_t i = 0; i < on * 3 && st == SD_OK; i++) out[i] = px_overlay(ip->orig[i], ip->over[i / 3], gen[i]);
    if (gen != img->data) free(gen);
    if (st != SD_OK) {
        free(out);
        return st;
    }
    free(img->data);
    img->data = out;
    img->w = ip->ow;
    img->h = ip->oh;
    img->c = 3;
    return SD_OK;
}
