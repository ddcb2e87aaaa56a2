/* img2img.c — img2img and inpainting latents: the init picture encoded, the start noise, a 9-channel UNet's extra
 * input and what the sampler keeps of the init latent (sched_mask), from the call's pixel-space plan (inpaint.c).
 *
 * Each image's generator is drawn in diffusers' order (StableDiffusionImg2ImgPipeline, and
 * StableDiffusionInpaintPipeline with either UNet): the init picture's posterior sample (skipped by a 9-channel UNet
 * at strength 1, which starts from pure noise and never encodes the picture), the start noise, then with a mask the
 * masked picture's posterior sample (drawn by a 4-channel UNet too, which does not use it); the sampler's noise
 * follows. AUTOMATIC1111 samples the posterior with an unseeded generator, so the kdiffusion convention takes its
 * mean and the first draw is the start noise; a TAESD (no posterior) is encoded the same way in both conventions. */
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "gen.h"

static int nine_channel(const gen *g) { return unet_get_config(g->c->unet)->in_channels != g->lc; }

/* Masked content in latent space (A1111): the repainted area of x0 replaced by the start noise, or zeroed. */
static void latent_fill(const gen *g, float *x0, const float *noise) {
    const inpaint_plan *ip = &g->ip;
    if (!ip->lat_mask || (ip->fill != FILL_LATENT_NOISE && ip->fill != FILL_LATENT_NOTHING)) return;
    size_t hw = (size_t)g->h * g->w;
    for (size_t q = 0; q < hw; q++)
        for (int ch = 0; ch < g->lc; ch++) {
            size_t i = q * g->lc + ch;
            float m = ip->lat_mask[q], v = ip->fill == FILL_LATENT_NOISE ? noise[i] : 0.0f;
            x0[i] = x0[i] * (1.0f - m) + v * m;
        }
}

/* One picture's latent without sampling: the VAE posterior's mean (A1111), or the TAESD's latent, which has no
 * posterior (diffusers' retrieve_latents draws nothing for it: each image's first draw is its start noise). */
static sd_status encode(sd_ctx *c, const float *img, int H, int W, float *latent) {
    return tiny_encodes(c) ? tiny_encode(c, img, H, W, latent) : vae_encode(c->vb, c->vae, img, 1, H, W, NULL, latent);
}

sd_status img2img_prepare(gen *g, float *x) {
    sd_ctx *c = g->c;
    const inpaint_plan *ip = &g->ip;
    int B = g->B, H = g->H, W = g->W, nine = nine_channel(g), kd = ip->kdiff, tiny = tiny_encodes(c);
    int masked = ip->lat_mask != NULL || nine; /* the inpainting pipeline rather than img2img */
    size_t hw = (size_t)g->h * g->w, per = hw * g->lc, n = B * per;
    g->from_noise = !kd && masked && g->p->strength == 1.0f;
    int need_x0 = !(nine && g->from_noise); /* a 9-channel UNet at strength 1 never looks at the init latent */
    float *x0 = malloc(n * sizeof *x0), *noise = malloc(n * sizeof *noise), *mlat = nine ? malloc(n * sizeof *mlat) : NULL;
    float *scratch = malloc(per * sizeof *scratch);
    sd_status st = x0 && noise && scratch && (mlat || !nine) ? SD_OK : err_fail(SD_ERR_MEMORY, "out of memory for the init latents");
    for (int i = 0; i < B && st == SD_OK; i++) {
        float *xi = x + i * per, *x0i = x0 + i * per, *ni = noise + i * per;
        if (kd || tiny) {
            if (i == 0) st = encode(c, ip->image, H, W, scratch); /* the same for every image */
            memcpy(x0i, scratch, per * sizeof *x0i);
            memcpy(ni, xi, per * sizeof *ni);
            if (st == SD_OK && nine) {
                if (i == 0) st = encode(c, ip->masked, H, W, mlat);
                else memcpy(mlat + i * per, mlat, per * sizeof *mlat);
            }
        } else {
            if (need_x0) {
                st = vae_encode(c->vb, c->vae, ip->image, 1, H, W, xi, x0i);
                gen_randn_nhwc(g, &g->img[i], ni);
            } else {
                memcpy(ni, xi, per * sizeof *ni);
            }
            if (st == SD_OK && masked) {
                gen_randn_nhwc(g, &g->img[i], scratch);
                if (nine) st = vae_encode(c->vb, c->vae, ip->masked, 1, H, W, scratch, mlat + i * per);
            }
        }
        if (st == SD_OK && need_x0) latent_fill(g, x0i, ni);
    }
    if (st == SD_OK) {
        if (g->from_noise) memcpy(x, noise, n * sizeof *x);
        else st = sched_img2img_prepare(&g->sc, g->steps, g->start_step, x0, noise, x, n);
    }
    if (st == SD_OK && nine) { /* mask ‖ masked-picture latent, per latent pixel */
        int ex = unet_get_config(c->unet)->in_channels - g->lc;
        g->inpaint_extra = malloc((size_t)B * hw * ex * sizeof *g->inpaint_extra);
        if (!g->inpaint_extra) st = err_fail(SD_ERR_MEMORY, "out of memory for the inpainting input");
        for (int i = 0; i < B && st == SD_OK; i++)
            for (size_t q = 0; q < hw; q++) {
                float *d = g->inpaint_extra + ((size_t)i * hw + q) * ex;
                d[0] = ip->cond_mask[q];
                memcpy(d + 1, mlat + i * per + q * g->lc, g->lc * sizeof(float));
            }
    }
    /* the sampler keeps the known area: diffusers for 4-channel UNets, A1111 for every UNet */
    if (st == SD_OK && ip->lat_mask && (kd || !nine)) {
        g->known_mask = malloc(n * sizeof *g->known_mask);
        if (!g->known_mask) st = err_fail(SD_ERR_MEMORY, "out of memory for the inpainting mask");
        for (size_t i = 0; i < n && st == SD_OK; i++) g->known_mask[i] = ip->lat_mask[(i % per) / g->lc];
        if (st == SD_OK) {
            g->known_x0 = x0;
            g->known_noise = noise;
            x0 = noise = NULL;
            g->known = (sched_mask){g->known_mask, g->known_x0, g->known_noise};
            g->has_known = 1;
        }
    }
    free(x0);
    free(noise);
    free(mlat);
    free(scratch);
    return st;
}

void img2img_release(gen *g) {
    free(g->inpaint_extra);
    free(g->known_x0);
    free(g->known_noise);
    free(g->known_mask);
    g->inpaint_extra = g->known_x0 = g->known_noise = g->known_mask = NULL;
    g->has_known = 0;
}
