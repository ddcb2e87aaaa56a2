/* preview.c — live previews. The picture of a step is the model's current estimate of the clean image (what
 * AUTOMATIC1111 shows), not the sampler's noisy latent: after each guided model call the clean latent x0 of the
 * group's first image is recovered from the model input x_t (DDPM space for every sampler) and the output, and every
 * preview_interval steps it is turned into RGB by a linear map (latent2rgb), the TAESD or the full VAE. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../vae/latent2rgb.h"
#include "gen.h"

enum { PV_LATENT2RGB, PV_TAESD, PV_FULL };

struct gen_preview {
    int method, interval;
    sched_table tb;             /* timestep -> σ, as the sampler's convention maps them */
    vae_latent_rgb factors;     /* latent2rgb */
    vae_decode_opts vo;         /* full: the decode policy of the call */
    float *x0;                  /* [h, w, lc] the clean-latent estimate of the last model call */
    int have;
    float *rgb;                 /* [H, W, 3] a decoded picture in [-1, 1] */
    sd_image img;
};

void preview_free(gen *g) {
    gen_preview *pv = g->pv;
    if (!pv) return;
    free(pv->x0);
    free(pv->rgb);
    free(pv->img.data);
    free(pv);
    g->pv = NULL;
}

/* The latent2rgb factors of the model: its VAE config's own ("_sd_latent_rgb"), else its family's table. */
static sd_status pick_factors(gen *g, vae_latent_rgb *out) {
    sd_ctx *c = g->c;
    const model_component *vc = &c->files.vae;
    int rc = vae_latent_rgb_from_json(vc->config, vc->dir[0] ? vc->dir : c->files.path, g->lc, out);
    if (rc < 0) return SD_ERR_FORMAT;
    if (rc > 0) return SD_OK;
    const vae_latent_rgb *t = vae_latent_rgb_table(c->files.family == MODEL_FAMILY_SDXL ? "sdxl" : "sd");
    if (!t || t->channels != g->lc) return err_fail(SD_ERR_UNSUPPORTED, "preview method latent2rgb: no factors for %d latent channels", g->lc);
    *out = *t;
    return SD_OK;
}

sd_status preview_resolve(gen *g) {
    const sd_gen_params *p = g->p;
    const char *m = p->preview_method;
    preview_free(g);
    if (p->preview_interval < 0) return err_fail(SD_ERR_ARG, "preview interval %d: must be at least 1 (0: every step)", p->preview_interval);
    if (!m || !*m || !strcmp(m, "none")) return SD_OK;
    int method = !strcmp(m, "latent2rgb") ? PV_LATENT2RGB : !strcmp(m, "taesd") ? PV_TAESD : !strcmp(m, "full") ? PV_FULL : -1;
    if (method < 0) return err_fail(SD_ERR_ARG, "unknown preview method \"%s\" (valid: latent2rgb, taesd, full, none)", m);
    /* worded for the user of `sd` (its flag), as the model loader's "pass one with --vae" is: the API's field name
     * means nothing on a command line or to a web client */
    if (method == PV_TAESD && !g->c->taesd)
        return err_fail(SD_ERR_ARG, "preview method taesd needs a TAESD decoder (--taesd FILE)");
    if (method == PV_TAESD && !(taesd_parts(g->c->taesd) & TAESD_DECODER))
        return err_fail(SD_ERR_ARG, "preview method taesd needs a TAESD decoder; the TAESD loaded has only an encoder");
    gen_preview *pv = calloc(1, sizeof *pv);
    if (!pv) return err_fail(SD_ERR_MEMORY, "out of memory for the previews");
    g->pv = pv;
    pv->method = method;
    pv->interval = p->preview_interval ? p->preview_interval : 1;
    sd_status st = sched_table_init(&pv->tb, g->sc.train_steps, g->sc.beta_start, g->sc.beta_end, g->sc.beta_schedule,
                                    g->sc.convention == SCHED_CONV_KDIFFUSION);
    if (st == SD_OK && method == PV_LATENT2RGB) st = pick_factors(g, &pv->factors);
    int small = method == PV_LATENT2RGB;
    pv->img.w = small ? g->w : g->W;
    pv->img.h = small ? g->h : g->H;
    pv->img.c = 3;
    size_t npix = (size_t)pv->img.w * pv->img.h * 3;
    pv->x0 = malloc((size_t)g->h * g->w * g->lc * sizeof(float));
    pv->img.data = malloc(npix);
    pv->rgb = small ? NULL : malloc(npix * sizeof(float));
    if (st == SD_OK && (!pv->x0 || !pv->img.data || (!small && !pv->rgb))) st = err_fail(SD_ERR_MEMORY, "out of memory for the previews");
    if (st != SD_OK) preview_free(g);
    return st;
}

sd_status preview_prepare(gen *g, size_t guided_need) {
    gen_preview *pv = g->pv;
    sd_ctx *c = g->c;
    /* a preview decodes while the sampler's conditioning tensors still sit at the bottom of the arena */
    if (pv->method == PV_TAESD) {
        size_t need = taesd_decode_arena_bytes(c->b, c->taesd, g->h, g->w, tiny_mem_limit(c->b));
        return need ? gen_arena_ensure(c->b, guided_need + need) : SD_ERR_MEMORY;
    }
    if (pv->method == PV_FULL) {
        decode_opts(c, g->p->vae_tiling, g->h, g->w, &pv->vo, NULL);
        size_t need = vae_decode_arena_bytes(c->vb, c->vae, g->h, g->w, &pv->vo);
        if (!need) return SD_ERR_MEMORY;
        return gen_arena_ensure(c->vb, c->vb == c->b ? guided_need + need : need);
    }
    return SD_OK;
}

sd_status preview_model(void *user, const float *x_in, float t, float *out) {
    gen *g = user;
    sd_status st = guided_model(user, x_in, t, out);
    gen_preview *pv = g->pv;
    if (st != SD_OK) return st;
    /* x_in = sqrt(ᾱ)·x0 + sqrt(1-ᾱ)·ε for every sampler (σ-space ones scale their latent by 1/sqrt(σ²+1) first) */
    double s = g->sc.convention == SCHED_CONV_KDIFFUSION ? sched_t_to_sigma_f32(&pv->tb, t) : sched_sigma_interp(&pv->tb, t);
    float a = (float)(1.0 / sqrt(s * s + 1.0)), sg = (float)(s * a);
    size_t n = (size_t)g->h * g->w * g->lc;
    if (g->sc.prediction == SCHED_PRED_V)
        for (size_t i = 0; i < n; i++) pv->x0[i] = a * x_in[i] - sg * out[i];
    else
        for (size_t i = 0; i < n; i++) pv->x0[i] = (x_in[i] - sg * out[i]) / a;
    pv->have = 1;
    return SD_OK;
}

const sd_image *preview_after_step(gen *g, int step, int total) {
    gen_preview *pv = g->pv;
    (void)total;
    if (!pv->have || step % pv->interval) return NULL;
    sd_ctx *c = g->c;
    size_t npix = (size_t)pv->img.w * pv->img.h * 3;
    sd_status st = SD_OK;
    switch (pv->method) {
    case PV_LATENT2RGB: vae_latent_to_rgb(&pv->factors, pv->x0, (size_t)g->h * g->w, pv->img.data); return &pv->img;
    case PV_TAESD: st = tiny_decode(c, pv->x0, 1, g->h, g->w, pv->rgb); break;
    default: st = vae_decode(c->vb, c->vae, pv->x0, 1, g->h, g->w, &pv->vo, pv->rgb); break;
    }
    if (st != SD_OK) {
        err_prefix("preview");
        g->cb_err = st;
        return NULL;
    }
    vae_image_to_u8(pv->rgb, npix, pv->img.data);
    return &pv->img;
}
