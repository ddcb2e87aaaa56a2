/* img2img.c — img2img and inpainting preparation: the init image and the mask brought to the latent grid, the
 * starting latent noised to the first step, a 9-channel UNet's extra input, and the 4-channel blend per step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "gen.h"

/* Bilinear resize of an RGB8 image to W x H, mapped to [-1, 1] NHWC as diffusers' image processor does. */
static float *image_to_input(const sd_image *img, int W, int H) {
    float *out = malloc((size_t)W * H * 3 * sizeof(float));
    uint8_t *rs = malloc((size_t)W * H * 3);
    if (!out || !rs) {
        free(out);
        free(rs);
        return NULL;
    }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float sy = ((float)y + 0.5f) * img->h / H - 0.5f, sx = ((float)x + 0.5f) * img->w / W - 0.5f;
            int y0 = (int)floorf(sy), x0 = (int)floorf(sx);
            float fy = sy - y0, fx = sx - x0;
            for (int ch = 0; ch < 3; ch++) {
                float acc = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        int yy = y0 + dy < 0 ? 0 : y0 + dy >= img->h ? img->h - 1 : y0 + dy;
                        int xx = x0 + dx < 0 ? 0 : x0 + dx >= img->w ? img->w - 1 : x0 + dx;
                        float wgt = (dy ? fy : 1 - fy) * (dx ? fx : 1 - fx);
                        acc += wgt * img->data[((size_t)yy * img->w + xx) * img->c + (img->c == 3 ? ch : 0)];
                    }
                int v = (int)lrintf(acc);
                rs[((size_t)y * W + x) * 3 + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    vae_image_from_u8(rs, (size_t)W * H * 3, out);
    free(rs);
    return out;
}

/* Mask (grey, white = repaint) resized to the latent grid: 1 where the latent pixel is repainted. */
static void mask_to_latent(const sd_image *m, int h, int w, float *out) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int sy = (int)((y + 0.5) * m->h / h), sx = (int)((x + 0.5) * m->w / w);
            out[(size_t)y * w + x] = m->data[((size_t)sy * m->w + sx) * m->c] >= 128 ? 1.0f : 0.0f;
        }
}

/* A 9-channel UNet's extra input of every image: mask ‖ latent of the init image with the repainted area blanked.
 * Without a mask the whole image is repainted (AUTOMATIC1111's img2img with an inpainting model): mask 1 and a
 * blank image. */
static sd_status inpaint_extra(gen *g, const float *img, const float *lmask) {
    sd_ctx *c = g->c;
    const sd_image *mk = g->p->mask;
    int H = g->H, W = g->W, ex = unet_get_config(c->unet)->in_channels - g->lc;
    size_t hw = (size_t)g->h * g->w;
    float *masked = malloc((size_t)W * H * 3 * sizeof(float)), *mlat = malloc(hw * g->lc * sizeof(float));
    g->inpaint_extra = malloc((size_t)g->B * hw * ex * sizeof(float));
    sd_status st = masked && mlat && g->inpaint_extra ? SD_OK : err_fail(SD_ERR_MEMORY, "out of memory for the inpainting input");
    if (st == SD_OK) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sy = mk ? y * mk->h / H : 0, sx = mk ? x * mk->w / W : 0;
                int keep = mk && mk->data[((size_t)sy * mk->w + sx) * mk->c] < 128;
                for (int ch = 0; ch < 3; ch++) masked[((size_t)y * W + x) * 3 + ch] = keep ? img[((size_t)y * W + x) * 3 + ch] : 0.0f;
            }
        st = vae_encode(c->vb, c->vae, masked, 1, H, W, NULL, mlat);
    }
    if (st == SD_OK)
        for (int i = 0; i < g->B; i++)
            for (size_t q = 0; q < hw; q++) {
                float *d = g->inpaint_extra + ((size_t)i * hw + q) * ex;
                d[0] = lmask ? lmask[q] : 1.0f;
                memcpy(d + 1, mlat + q * g->lc, g->lc * sizeof(float));
            }
    free(masked);
    free(mlat);
    return st;
}

sd_status img2img_prepare(gen *g, float *x) {
    sd_ctx *c = g->c;
    const sd_gen_params *p = g->p;
    int B = g->B, H = g->H, W = g->W;
    size_t hw = (size_t)g->h * g->w, per = hw * g->lc, n = B * per;
    int nine = unet_get_config(c->unet)->in_channels != g->lc;
    float *img = image_to_input(p->init_image, W, H), *x0 = malloc(n * sizeof(float)), *noise = malloc(n * sizeof(float));
    float *lmask = p->mask ? malloc(hw * sizeof(float)) : NULL;
    sd_status st = img && x0 && noise && (lmask || !p->mask) ? SD_OK : err_fail(SD_ERR_MEMORY, "out of memory for the init image");
    if (st == SD_OK && lmask) mask_to_latent(p->mask, g->h, g->w, lmask);
    /* diffusers samples the posterior with each image's generator (its first draw, already in x) and then
     * draws the img2img noise; A1111's posterior sample is not seeded, so the kdiffusion convention takes
     * the mean and the first draw as the noise */
    int diffusers = g->sc.convention == SCHED_CONV_DIFFUSERS;
    for (int i = 0; i < B && st == SD_OK; i++) {
        st = vae_encode(c->vb, c->vae, img, 1, H, W, diffusers ? x + i * per : NULL, x0 + i * per);
        if (diffusers) gen_randn_nhwc(g, &g->img[i], noise + i * per);
        else memcpy(noise + i * per, x + i * per, per * sizeof(float));
    }
    if (st == SD_OK && nine) st = inpaint_extra(g, img, lmask);
    if (st == SD_OK) st = sched_img2img_prepare(&g->sc, g->steps, g->start_step, x0, noise, x, n);
    if (st == SD_OK && lmask && !nine) { /* ordinary model: blend the known area each step */
        g->blend_mask = malloc(n * sizeof(float));
        g->blend_known = malloc(n * sizeof(float));
        if (!g->blend_mask || !g->blend_known) st = err_fail(SD_ERR_MEMORY, "out of memory for the inpainting blend");
        else {
            for (int i = 0; i < B; i++)
                for (size_t q = 0; q < hw; q++)
                    for (int ch = 0; ch < g->lc; ch++) g->blend_mask[i * per + q * g->lc + ch] = lmask[q];
            g->blend_x0 = x0;
            g->blend_noise = noise;
            x0 = noise = NULL;
        }
    }
    free(x0);
    free(noise);
    free(lmask);
    free(img);
    return st;
}

void img2img_blend(gen *g, int step, int total, float *x) {
    if (!g->blend_x0) return;
    size_t n = (size_t)g->B * g->h * g->w * g->lc;
    float *known = g->blend_known;
    if (step < total) sched_img2img_prepare(&g->sc, g->steps, g->start_step + step, g->blend_x0, g->blend_noise, known, n);
    else memcpy(known, g->blend_x0, n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float m = g->blend_mask[i];
        x[i] = m * x[i] + (1 - m) * known[i];
    }
}

void img2img_release(gen *g) {
    free(g->inpaint_extra);
    free(g->blend_x0);
    free(g->blend_noise);
    free(g->blend_mask);
    free(g->blend_known);
    g->inpaint_extra = g->blend_x0 = g->blend_noise = g->blend_mask = g->blend_known = NULL;
}
