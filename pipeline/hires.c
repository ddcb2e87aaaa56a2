/* hires.c — the hires fix as AUTOMATIC1111 does it (modules/processing.py, StableDiffusionProcessingTxt2Img):
 * the first pass is a txt2img at width x height; its latents are resized (latent upscalers: torch's interpolate),
 * or its pictures decoded, resized with Lanczos and encoded again; then an img2img pass at the large size with the
 * same conditioning, seeds and sampler runs hires_steps steps of a hires_steps / denoise step schedule. The second
 * pass is a second resolved `gen` (its own size, buffers and previews) sharing the first one's text conditioning.
 * A picture-upscaled pass runs image by image through the ordinary img2img path, so it is exactly an explicit
 * "upscale, then sd -i" of the first pass's PNG. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "gen.h"

enum { HR_LATENT, HR_PICTURE };

struct gen_hires {
    int kind, mode;             /* HR_LATENT with an UPSCALE_* mode, or HR_PICTURE (Lanczos) */
    int Wu, Hu;                 /* the upscaled size (A1111's hr_upscale_to_x/y) */
    int cx, cy;                 /* latent pixels cropped at the left/top when a given size has another aspect */
    int N, S;                   /* steps run, of a schedule of S */
    sd_gen_params p2;           /* the second pass's parameters */
    gen *g2;
    float *x_up, *x_full, *x2;  /* latent path: the group upscaled and cropped, one uncropped, the second pass's */
    sd_image up;                /* picture path: one upscaled picture */
    int runs;                   /* second-pass sampler runs so far */
};

static const struct { const char *name; int kind, mode; } k_upscalers[] = {
    {"latent", HR_LATENT, UPSCALE_BILINEAR},
    {"latent-bicubic", HR_LATENT, UPSCALE_BICUBIC},
    {"latent-nearest-exact", HR_LATENT, UPSCALE_NEAREST_EXACT},
    {"lanczos", HR_PICTURE, 0},
    {"none", HR_PICTURE, 0}, /* A1111's "None" upscaler changes nothing, and its resize falls back to Lanczos */
};

/* The double a user typed for a float parameter ("0.3", not 0.30000001192...): A1111 computes with Python floats. */
static double typed(float v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", v);
    return strtod(buf, NULL);
}

void hires_free(gen *g) {
    gen_hires *h = g->hires;
    if (!h) return;
    if (h->g2) {
        preview_free(h->g2);
        inpaint_plan_free(&h->g2->ip);
        guided_release(h->g2);
        free(h->g2->nchw);
        free(h->g2);
    }
    free(h->x_up);
    free(h->x_full);
    free(h->x2);
    free(h->up.data);
    free(h);
    g->hires = NULL;
}

/* The sizes of A1111's calculate_target_resolution, then multiples of the latent factor. */
static sd_status sizes(gen *g, gen_hires *h) {
    const sd_gen_params *p = g->p;
    int W = g->W, H = g->H, f = g->W / g->w, rx = p->hires_width, ry = p->hires_height;
    int tx = 0, ty = 0; /* latent pixels to cut (A1111's truncate_x/y) */
    if (!rx && !ry) {
        double s = typed(p->hires_scale);
        h->Wu = (int)(W * s);
        h->Hu = (int)(H * s);
    } else if (!ry) {
        h->Wu = rx;
        h->Hu = rx * H / W;
    } else if (!rx) {
        h->Wu = ry * W / H;
        h->Hu = ry;
    } else { /* both: cover the target keeping the aspect, then cut the latent's overhang evenly */
        if ((double)W / H < (double)rx / ry) { h->Wu = rx; h->Hu = rx * H / W; }
        else { h->Wu = ry * W / H; h->Hu = ry; }
        tx = (h->Wu - rx) / f;
        ty = (h->Hu - ry) / f;
    }
    h->cx = tx / 2;
    h->cy = ty / 2;
    int w2 = h->Wu / f - tx, h2 = h->Hu / f - ty;
    if (w2 < 1 || h2 < 1 || w2 * f > 8192 || h2 * f > 8192)
        return err_fail(SD_ERR_ARG, "hires fix: %dx%d upscaled to %dx%d is outside 8..8192 pixels a side", W, H, w2 * f, h2 * f);
    h->p2.width = w2 * f;
    h->p2.height = h2 * f;
    return SD_OK;
}

sd_status hires_resolve(gen *g) {
    const sd_gen_params *p = g->p;
    hires_free(g);
    if (p->hires_scale == 0 && !p->hires_width && !p->hires_height) return SD_OK;
    if (p->init_image) return err_fail(SD_ERR_ARG, "the hires fix is for txt2img: give no init image");
    if (p->control_count) return err_fail(SD_ERR_ARG, "the hires fix with ControlNets is not supported yet: give one or the other");
    if (!p->hires_width && !p->hires_height && !(p->hires_scale >= 1 && p->hires_scale <= 8))
        return err_fail(SD_ERR_ARG, "hires scale %g: must be between 1 and 8", p->hires_scale);
    if (p->hires_width < 0 || p->hires_height < 0 || p->hires_width > 8192 || p->hires_height > 8192)
        return err_fail(SD_ERR_ARG, "hires size %dx%d: each side 0 (in proportion) to 8192", p->hires_width, p->hires_height);
    if (p->hires_steps < 0 || p->hires_steps > 1000) return err_fail(SD_ERR_ARG, "hires steps %d: must be between 0 (the steps) and 1000", p->hires_steps);
    if (!(p->hires_denoise > 0 && p->hires_denoise <= 1)) return err_fail(SD_ERR_ARG, "hires denoising strength %g: must be above 0 and at most 1", p->hires_denoise);
    const char *name = p->hires_upscaler ? p->hires_upscaler : "latent";
    int u = -1;
    for (size_t i = 0; i < sizeof k_upscalers / sizeof *k_upscalers; i++)
        if (!strcmp(k_upscalers[i].name, name)) u = (int)i;
    if (u < 0) return err_fail(SD_ERR_ARG, "unknown hires upscaler \"%s\" (valid: latent, latent-bicubic, latent-nearest-exact, lanczos, none)", name);
    gen_hires *h = calloc(1, sizeof *h);
    if (!h) return err_fail(SD_ERR_MEMORY, "out of memory");
    g->hires = h;
    h->kind = k_upscalers[u].kind;
    h->mode = k_upscalers[u].mode;
    h->p2 = *p;
    sd_status st = sizes(g, h);
    if (st != SD_OK) { hires_free(g); return st; }
    /* A1111's setup_img2img_steps with explicit steps: a schedule of int(N / min(denoise, 0.999)) steps of which the
     * last N run */
    h->N = p->hires_steps ? p->hires_steps : g->steps;
    double S = floor(h->N / fmin(typed(p->hires_denoise), 0.999));
    if (S > SCHED_MAX_TRAIN) {
        int N = h->N; /* h goes with hires_free */
        hires_free(g);
        return err_fail(SD_ERR_ARG, "hires fix: %d steps at denoising strength %g need a schedule of %.0f steps (at most %d)", N,
                        p->hires_denoise, S, SCHED_MAX_TRAIN);
    }
    h->S = (int)S;
    h->p2.steps = h->S;
    h->p2.hires_scale = 0;
    h->p2.hires_width = h->p2.hires_height = 0;
    h->p2.init_image = NULL;
    h->p2.strength = (float)h->N / h->S;
    g->passes = 2;
    return SD_OK;
}

sd_status hires_prepare(gen *g, int B, size_t *peak) {
    gen_hires *h = g->hires;
    gen *g2 = calloc(1, sizeof *g2);
    if (!g2) return err_fail(SD_ERR_MEMORY, "out of memory");
    h->g2 = g2;
    g2->c = g->c;
    g2->p = &h->p2;
    g2->progress = g->progress;
    g2->user = g->user;
    g2->t0 = g->t0;
    g2->total = g->total;
    g2->pass = g2->passes = 2;
    sd_status st = gen_resolve(g2);
    if (st != SD_OK) return st;
    g2->start_step = h->S - h->N;
    g2->init_kind = h->kind == HR_LATENT ? GEN_INIT_LATENT : GEN_INIT_IMAGE;
    g2->cond = g->cond; /* shared, freed with g */
    g2->uncond = g->uncond;
    g2->uncond_zero = g->uncond_zero;
    int B2 = h->kind == HR_LATENT ? B : 1; /* pictures go through img2img one at a time */
    size_t per = (size_t)g2->h * g2->w * g2->lc, need = 0;
    g2->nchw = malloc(per * sizeof(float));
    h->x2 = malloc(B2 * per * sizeof(float));
    if (h->kind == HR_LATENT) {
        int f = g->W / g->w;
        h->x_up = malloc(B * per * sizeof(float));
        h->x_full = malloc((size_t)(h->Hu / f) * (h->Wu / f) * g->lc * sizeof(float));
    } else {
        h->up = (sd_image){g2->W, g2->H, 3, malloc((size_t)g2->W * g2->H * 3)};
        h->p2.init_image = &h->up; /* for the arena sizing; each image's picture replaces its pixels */
    }
    if (!g2->nchw || !h->x2 || (h->kind == HR_LATENT ? !h->x_up || !h->x_full : !h->up.data)) return err_fail(SD_ERR_MEMORY, "out of memory for the hires fix");
    if ((st = guided_prepare(g2, B2, &need)) != SD_OK) return st;
    if (need > *peak) *peak = need;
    if (g2->pv) st = preview_prepare(g2, need);
    return st == SD_OK ? tiny_prepare(g2, need) : st;
}

int hires_model_evals(const gen *g) {
    const gen_hires *h = g->hires;
    return h && h->g2 ? h->runs * sched_model_evals(&h->g2->sc, h->S, h->S - h->N) : 0;
}

/* Adds the second pass's sampling time and work to the first's (the call's timings). */
static void account(gen *g, gen *g2, double t0, double f0) {
    g->t_sample += g2->t_sample - t0;
    g->sample_flops += g2->sample_flops - f0;
}

static sd_status latent_pass(gen *g, gen_hires *h, const float *x, sd_result *r) {
    gen *g2 = h->g2;
    int f = g->W / g->w, lw = h->Wu / f, lh = h->Hu / f, lc = g->lc;
    size_t per1 = (size_t)g->h * g->w * lc, per2 = (size_t)g2->h * g2->w * lc;
    for (int i = 0; i < g->B; i++) {
        upscale_latent(h->mode, x + i * per1, g->h, g->w, lc, lh, lw, h->x_full);
        for (int y = 0; y < g2->h; y++) /* A1111's truncation of the overhang (none unless a size of another aspect) */
            memcpy(h->x_up + i * per2 + (size_t)y * g2->w * lc, h->x_full + ((size_t)(y + h->cy) * lw + h->cx) * lc, (size_t)g2->w * lc * sizeof(float));
    }
    g2->B = g->B;
    g2->first = g->first;
    g2->init_latent = h->x_up;
    double t0 = g2->t_sample, f0 = g2->sample_flops;
    sd_status st = gen_sample(g2, h->x2);
    account(g, g2, t0, f0);
    h->runs++;
    if (st == SD_OK && gen_report(g2, "decode")) st = err_fail(SD_ERR_CANCELLED, "cancelled");
    return st == SD_OK ? decode_group(g2, h->x2, r) : st;
}

static sd_status picture_pass(gen *g, gen_hires *h, const float *x, sd_result *r) {
    gen *g2 = h->g2;
    /* the first pass's pictures, as a txt2img would save them (decoded by the call's decoder, rounded to 8 bits) */
    sd_image pics[GEN_MAX_GROUP] = {{0}};
    sd_result tmp = {.images = pics};
    int first = g->first;
    g->first = 0;
    sd_status st = gen_report(g, "decode") ? err_fail(SD_ERR_CANCELLED, "cancelled") : decode_group(g, x, &tmp);
    g->first = first;
    r->timings.decode += tmp.timings.decode;
    r->timings.decode_flops += tmp.timings.decode_flops;
    int f = g->W / g->w;
    for (int i = 0; i < g->B && st == SD_OK; i++) {
        sd_image big;
        if (gen_report(g, "upscale")) st = err_fail(SD_ERR_CANCELLED, "cancelled");
        if (st == SD_OK) st = upscale_lanczos(&pics[i], h->Wu, h->Hu, &big);
        if (st != SD_OK) break;
        for (int y = 0; y < g2->H; y++) /* the overhang cut, in picture rows and columns */
            memcpy(h->up.data + (size_t)y * g2->W * 3, big.data + ((size_t)(y + h->cy * f) * big.w + h->cx * f) * 3, (size_t)g2->W * 3);
        free(big.data);
        inpaint_plan_free(&g2->ip); /* the picture as img2img takes it: [-1, 1] at the pass's size */
        if (st == SD_OK) st = inpaint_plan_make(g2, &g2->ip);
        if (st != SD_OK) break;
        g2->B = 1;
        g2->first = first + i;
        double t0 = g2->t_sample, f0 = g2->sample_flops;
        st = gen_sample(g2, h->x2);
        account(g, g2, t0, f0);
        h->runs++;
        if (st == SD_OK && gen_report(g2, "decode")) st = err_fail(SD_ERR_CANCELLED, "cancelled");
        if (st == SD_OK) st = decode_group(g2, h->x2, r);
    }
    for (int i = 0; i < g->B; i++) free(pics[i].data);
    return st;
}

sd_status hires_group(gen *g, const float *x, sd_result *r) {
    gen_hires *h = g->hires;
    if (h->kind == HR_LATENT) {
        if (gen_report(g, "upscale")) return err_fail(SD_ERR_CANCELLED, "cancelled");
        return latent_pass(g, h, x, r);
    }
    return picture_pass(g, h, x, r);
}
