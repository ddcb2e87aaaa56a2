/* generate.c — sd_generate: conditioning, per-image seeded noise, the sampler loop with classifier-free
 * guidance around the UNet, img2img / inpainting, VAE decode, and the settings text of each image. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/error.h"
#include "../scheduler/guidance.h"
#include "../scheduler/rng.h"
#include "../scheduler/sampler.h"
#include "infotext.h"
#include "pipeline.h"

#define MAX_GROUP 64
#define VAE_MEM_LIMIT ((size_t)2 << 30) /* decode activations above this are tiled (automatic mode) */
/* On the CPU a generation's peak RSS is the weights plus the larger of the UNet's and the decode's activations,
 * and the untiled SD 1.5 decode at 512² needs 1 GiB. So there a decode whose whole-image need is small runs
 * whole (as at 256²: 257 MiB, 13% faster than in bands), and a larger one in exact bands within 128 MiB (512²:
 * bands of 12 latent rows, 6% slower than whole, ~450 MiB less peak RSS). */
#define VAE_WHOLE_CPU ((size_t)320 << 20)
#define VAE_BANDS_CPU ((size_t)128 << 20)

void sd_vae_decode_opts(const sd_ctx *c, int vae_tiling, int h, int w, vae_decode_opts *o, double *flops) {
    vae_decode_opts d = {vae_tiling > 0 ? VAE_TILING_ON : vae_tiling < 0 ? VAE_TILING_OFF : VAE_TILING_AUTO, VAE_MEM_LIMIT, 0, 0};
    vae_decode_opts whole = {VAE_TILING_OFF, 0, 0, 0};
    double f = c->vb->flops; /* a measure pass of the untiled decoder: counts FLOPs that are not run */
    size_t need = vae_decode_arena_bytes(c->vb, c->vae, h, w, &whole);
    if (flops) *flops = c->vb->flops - f;
    c->vb->flops = f;
    if (!strcmp(c->vb->ops->name, "cpu")) d.mem_limit = need && need <= VAE_WHOLE_CPU ? VAE_WHOLE_CPU : VAE_BANDS_CPU;
    *o = d;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Everything one sd_generate call resolves once. */
typedef struct gen {
    sd_ctx *c;
    const sd_gen_params *p;
    sd_progress_fn progress;
    void *user;
    int W, H, h, w, lc;             /* image size, latent size and channels (4) */
    int steps;
    float cfg;
    int use_cfg;
    const char *sampler, *scheduler;
    sched_config sc;
    rng_kind rng, srng;
    int separate_srng;
    sd_cond cond, uncond;
    int uncond_zero;                /* SDXL with an empty negative prompt: zero conditioning */
    /* the current group of images */
    int B, first, total;
    rng img[MAX_GROUP], smp[MAX_GROUP];
    be_tensor ctx_t, pooled_t, tcond_t;
    float *time_ids;
    float *x_in_host, *eps_host, *nchw;
    float *inpaint_extra;           /* 9-channel UNets: [B, h, w, 5] mask ‖ masked-image latent */
    float *blend_x0, *blend_mask;   /* 4-channel inpainting: the init latent and the latent mask */
    float *blend_noise;
    int start_step;
    int step_in_image;
    double t0, t_sample;
    sd_status cb_err;
} gen;

/* torch fills NCHW; our latents are NHWC */
static void nchw_to_nhwc(const float *src, int c, int h, int w, float *dst) {
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h * w; i++) dst[(size_t)i * c + ch] = src[(size_t)ch * h * w + i];
}

/* AUTOMATIC1111's slerp of the variation noise into the base noise (torch.norm over dim 1 of [C, H, W]). */
static void slerp_variation(float val, float *base, const float *var, int C, int H, int W) {
    /* arrays are NCHW here; norms per (c, w) over h, as A1111's `dim=1` on a 3-D tensor */
    int n = C * W;
    double *dot = malloc(n * sizeof *dot), mean = 0;
    for (int c = 0; c < C; c++)
        for (int x = 0; x < W; x++) {
            double nl = 0, nh = 0, d = 0;
            for (int y = 0; y < H; y++) {
                double a = base[((size_t)c * H + y) * W + x], b = var[((size_t)c * H + y) * W + x];
                nl += a * a; nh += b * b; d += a * b;
            }
            dot[c * W + x] = d / (sqrt(nl) * sqrt(nh));
            mean += dot[c * W + x];
        }
    mean /= n;
    for (int c = 0; c < C; c++)
        for (int x = 0; x < W; x++) {
            double om = acos(dot[c * W + x]), so = sin(om);
            for (int y = 0; y < H; y++) {
                size_t i = ((size_t)c * H + y) * W + x;
                if (mean > 0.9995) base[i] = (float)(base[i] * val + var[i] * (1 - val)); /* A1111's fallback, as written */
                else base[i] = (float)(sin((1.0 - val) * om) / so * base[i] + sin(val * om) / so * var[i]);
            }
        }
    free(dot);
}

static sd_status noise_cb(void *user, float *out) {
    gen *g = user;
    size_t per = (size_t)g->lc * g->h * g->w;
    for (int i = 0; i < g->B; i++) {
        rng_randn(g->separate_srng ? &g->smp[i] : &g->img[i], g->nchw, per);
        nchw_to_nhwc(g->nchw, g->lc, g->h, g->w, out + i * per);
    }
    return SD_OK;
}

/* The guided model output for x_in [B, h, w, 4] at timestep t: UNet on [uncond; cond], CFG, rescale. */
static sd_status model_cb(void *user, const float *x_in, float t, float *out) {
    gen *g = user;
    sd_ctx *c = g->c;
    be *b = c->b;
    const unet_config *uc = unet_get_config(c->unet);
    int B = g->B, N = g->use_cfg ? 2 * B : B, cin = uc->in_channels;
    size_t hw = (size_t)g->h * g->w, per = hw * g->lc;
    /* host input: [uncond images; cond images], each x_in (‖ inpainting channels) */
    for (int k = 0; k < N; k++) {
        int i = k % B;
        float *dst = g->x_in_host + (size_t)k * hw * cin;
        if (cin == g->lc) {
            memcpy(dst, x_in + i * per, per * sizeof(float));
        } else {
            for (size_t p = 0; p < hw; p++) {
                memcpy(dst + p * cin, x_in + i * per + p * g->lc, g->lc * sizeof(float));
                memcpy(dst + p * cin + g->lc, g->inpaint_extra + (i * hw + p) * (cin - g->lc), (cin - g->lc) * sizeof(float));
            }
        }
    }
    float ts[2 * MAX_GROUP];
    for (int k = 0; k < N; k++) ts[k] = t;
    size_t mark = be_mark(b);
    be_tensor x = be_new(b, N, g->h, g->w, cin), e = be_new(b, N, g->h, g->w, uc->out_channels);
    be_upload(b, &x, g->x_in_host);
    be_tensor ctx = be_view(g->ctx_t, N, 1, g->ctx_t.w, g->ctx_t.c), pooled = be_view(g->pooled_t, N, 1, 1, g->pooled_t.c);
    be_tensor tc = be_view(g->tcond_t, N, 1, 1, g->tcond_t.c);
    unet_cond cond = {&ctx, g->pooled_t.data ? &pooled : NULL, g->time_ids, g->tcond_t.data ? &tc : NULL};
    unet_forward(b, c->unet, &x, ts, &cond, &e);
    be_download(b, &e, g->eps_host);
    be_release(b, mark);
    sd_status st = be_status(b);
    if (st != SD_OK) return st;
    if (!g->use_cfg) {
        memcpy(out, g->eps_host, B * per * sizeof(float));
        return SD_OK;
    }
    const float *un = g->eps_host, *co = g->eps_host + B * per;
    sched_cfg_combine(un, co, g->cfg, B * per, out);
    if (g->p->guidance_rescale > 0) return sched_guidance_rescale(out, co, B, per, g->p->guidance_rescale);
    return SD_OK;
}

static void step_cb(void *user, int step, int total, const float *x) {
    gen *g = user;
    /* 4-channel inpainting: keep the unmasked area on the init image's trajectory (diffusers' blend) */
    if (g->blend_x0) {
        size_t n = (size_t)g->B * g->h * g->w * g->lc;
        float *xm = (float *)x; /* the sampler's own state: blending it is the point */
        float *known = malloc(n * sizeof(float));
        if (step < total) sched_img2img_prepare(&g->sc, g->steps, g->start_step + step, g->blend_x0, g->blend_noise, known, n);
        else memcpy(known, g->blend_x0, n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            float m = g->blend_mask[i];
            xm[i] = m * xm[i] + (1 - m) * known[i];
        }
        free(known);
    }
    if (g->progress && !g->cb_err) {
        sd_progress pr = {"sample", g->first, g->total, step, total, now() - g->t0, x, g->w, g->h};
        if (g->progress(g->user, &pr)) g->cb_err = SD_ERR_CANCELLED;
    }
}

/* Bilinear resize of an RGB8 image to W x H, mapped to [-1, 1] NHWC as diffusers' image processor does. */
static float *image_to_input(const sd_image *img, int W, int H) {
    float *out = malloc((size_t)W * H * 3 * sizeof(float));
    uint8_t *rs = malloc((size_t)W * H * 3);
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

static sd_status ensure_arena(be *b, size_t bytes) {
    if (bytes <= b->arena.size) return SD_OK;
    return be_arena_reserve(b, bytes + (bytes >> 4));
}

/* Persistent per-group tensors (contexts, pooled, LCM embedding) at the bottom of the arena. */
static void group_tensors(gen *g, int B) {
    sd_ctx *c = g->c;
    be *b = c->b;
    int N = g->use_cfg ? 2 * B : B;
    const unet_config *uc = unet_get_config(c->unet);
    g->ctx_t = be_new(b, N, 1, g->cond.tokens, g->cond.ctx_dim);
    g->pooled_t = (be_tensor){0};
    g->tcond_t = (be_tensor){0};
    if (g->cond.pooled) g->pooled_t = be_new(b, N, 1, 1, g->cond.pooled_dim);
    if (uc->time_cond_dim) g->tcond_t = be_new(b, N, 1, 1, uc->time_cond_dim);
}

static void upload_group(gen *g, int B) {
    be *b = g->c->b;
    int N = g->use_cfg ? 2 * B : B;
    size_t cs = (size_t)g->cond.tokens * g->cond.ctx_dim;
    float *host = malloc(N * cs * sizeof(float));
    for (int k = 0; k < N; k++) {
        const sd_cond *src = g->use_cfg && k < B ? &g->uncond : &g->cond;
        if (g->use_cfg && k < B && g->uncond_zero) memset(host + k * cs, 0, cs * sizeof(float));
        else memcpy(host + k * cs, src->ctx, cs * sizeof(float));
    }
    be_upload(b, &g->ctx_t, host);
    if (g->cond.pooled) {
        int P = g->cond.pooled_dim;
        for (int k = 0; k < N; k++) {
            const sd_cond *src = g->use_cfg && k < B ? &g->uncond : &g->cond;
            if (g->use_cfg && k < B && g->uncond_zero) memset(host + (size_t)k * P, 0, P * sizeof(float));
            else memcpy(host + (size_t)k * P, src->pooled, P * sizeof(float));
        }
        be_upload(b, &g->pooled_t, host);
    }
    if (g->tcond_t.data) { /* LCM guidance embedding: w = (g - 1) * 1000, sin first (diffusers) */
        int D = g->tcond_t.c, half = D / 2;
        for (int k = 0; k < N; k++)
            for (int j = 0; j < half; j++) {
                float f = expf(-logf(10000.0f) * j / (float)(half - 1)), a = (g->cfg - 1.0f) * 1000.0f * f;
                host[(size_t)k * D + j] = sinf(a);
                host[(size_t)k * D + half + j] = cosf(a);
            }
        be_upload(b, &g->tcond_t, host);
    }
    free(host);
}

static sd_status resolve(gen *g) {
    sd_ctx *c = g->c;
    const sd_gen_params *p = g->p;
    const sd_model_info *mi = &c->info;
    g->W = p->width ? p->width : mi->default_width;
    g->H = p->height ? p->height : mi->default_height;
    sd_status st = sd_params_validate(p, g->W, g->H);
    if (st != SD_OK) return st;
    int f = vae_factor(c->vae);
    if (g->W % f || g->H % f) return sd_fail(SD_ERR_ARG, "size %dx%d: must be a multiple of %d for this model", g->W, g->H, f);
    g->h = g->H / f;
    g->w = g->W / f;
    g->lc = unet_get_config(c->unet)->out_channels;
    g->steps = p->steps ? p->steps : mi->default_steps;
    g->cfg = p->cfg_scale >= 0 ? p->cfg_scale : mi->default_cfg;
    g->sampler = p->sampler ? p->sampler : mi->default_sampler;
    g->scheduler = p->scheduler ? p->scheduler : mi->default_scheduler;
    sched_config_default(&g->sc);
    if ((st = sched_sampler_from_name(g->sampler, &g->sc.sampler)) != SD_OK) return st;
    if ((st = sched_schedule_from_name(g->scheduler, &g->sc.schedule)) != SD_OK) return st;
    if (p->convention && (st = sched_convention_from_name(p->convention, &g->sc.convention)) != SD_OK) return st;
    g->sampler = sched_sampler_name(g->sc.sampler);
    g->scheduler = sched_schedule_name(g->sc.schedule);
    g->sc.prediction = c->prediction == SD_PRED_V ? SCHED_PRED_V : SCHED_PRED_EPS;
    g->sc.spacing = (sched_spacing)c->sched_spacing;
    g->sc.steps_offset = c->steps_offset;
    if (p->eta > 0) g->sc.eta = p->eta;
    if ((st = sched_config_check(&g->sc, g->steps)) != SD_OK) return st;
    if ((st = rng_kind_from_name(p->rng ? p->rng : "cuda", &g->rng)) != SD_OK) return st;
    g->separate_srng = p->sampler_rng != NULL;
    if ((st = rng_kind_from_name(p->sampler_rng ? p->sampler_rng : (p->rng ? p->rng : "cuda"), &g->srng)) != SD_OK) return st;
    const unet_config *uc = unet_get_config(c->unet);
    /* CFG needs a second UNet batch; LCM-distilled UNets take the guidance as an embedding instead */
    g->use_cfg = g->cfg > 1.0f && !uc->time_cond_dim;
    if (p->mask && uc->in_channels != 9 && !p->init_image) return sd_fail(SD_ERR_ARG, "a mask needs an init image");
    if (uc->in_channels == 9 && !p->init_image) return sd_fail(SD_ERR_ARG, "%s is an inpainting model: give an init image and a mask", c->name);
    if (p->init_image) {
        st = sched_img2img_start(&g->sc, g->steps, p->strength, &g->start_step);
        if (st != SD_OK) return st;
    }
    return SD_OK;
}

sd_status sd_check_params(const sd_ctx *ctx, const sd_gen_params *p) {
    gen *g = calloc(1, sizeof *g); /* large (per-image generator states): not on the stack */
    if (!g) return sd_fail(SD_ERR_MEMORY, "out of memory");
    g->c = (sd_ctx *)ctx;
    g->p = p;
    sd_status st = resolve(g);
    free(g);
    return st;
}

/* Runs images [first, first + B) of the call into rgb8 outputs. */
static sd_status run_group(gen *g, int first, int B, sd_result *r) {
    sd_ctx *c = g->c;
    be *b = c->b;
    const sd_gen_params *p = g->p;
    size_t per = (size_t)g->lc * g->h * g->w, n = B * per;
    g->B = B;
    g->first = first;
    float *x = malloc(n * sizeof(float)), *var = malloc(per * sizeof(float));
    for (int i = 0; i < B; i++) {
        uint64_t seed = p->seed + (uint64_t)(first + i);
        rng_init(&g->img[i], g->rng, seed);
        rng_init(&g->smp[i], g->srng, seed);
        rng_randn(&g->img[i], g->nchw, per);
        if (p->variation_strength > 0) {
            rng vr;
            rng_init(&vr, g->rng, p->variation_seed + (uint64_t)(first + i));
            rng_randn(&vr, var, per);
            slerp_variation(p->variation_strength, g->nchw, var, g->lc, g->h, g->w);
        }
        nchw_to_nhwc(g->nchw, g->lc, g->h, g->w, x + i * per);
    }
    free(var);
    sd_status st = SD_OK;
    size_t mark = be_mark(b);
    group_tensors(g, B);
    upload_group(g, B);
    if (p->init_image) { /* img2img / inpainting: start from the encoded init image, noised to the start step */
        int H = g->H, W = g->W;
        float *img = image_to_input(p->init_image, W, H), *x0 = malloc(n * sizeof(float));
        float *lmask = NULL;
        const unet_config *uc = unet_get_config(c->unet);
        if (p->mask) {
            lmask = malloc((size_t)g->h * g->w * sizeof(float));
            mask_to_latent(p->mask, g->h, g->w, lmask);
        }
        /* diffusers samples the posterior with each image's generator (its first draw, already in x) and then
         * draws the img2img noise; A1111's posterior sample is not seeded, so the kdiffusion convention takes
         * the mean and the first draw as the noise */
        int diffusers = g->sc.convention == SCHED_CONV_DIFFUSERS;
        float *noise = malloc(n * sizeof(float));
        for (int i = 0; i < B && st == SD_OK; i++) {
            st = vae_encode(c->vb, c->vae, img, 1, H, W, diffusers ? x + i * per : NULL, x0 + i * per);
            if (diffusers) {
                rng_randn(&g->img[i], g->nchw, per);
                nchw_to_nhwc(g->nchw, g->lc, g->h, g->w, noise + i * per);
            } else {
                memcpy(noise + i * per, x + i * per, per * sizeof(float));
            }
        }
        if (st == SD_OK && uc->in_channels == 9) { /* mask ‖ latent of the image with the repainted area blanked */
            int ex = uc->in_channels - g->lc;
            float *masked = malloc((size_t)W * H * 3 * sizeof(float)), *mlat = malloc(per * sizeof(float));
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    int sy = y * p->mask->h / H, sx = xx * p->mask->w / W;
                    int keep = !p->mask || p->mask->data[((size_t)sy * p->mask->w + sx) * p->mask->c] < 128;
                    for (int ch = 0; ch < 3; ch++) masked[((size_t)y * W + xx) * 3 + ch] = keep ? img[((size_t)y * W + xx) * 3 + ch] : 0.0f;
                }
            st = vae_encode(c->vb, c->vae, masked, 1, H, W, NULL, mlat);
            g->inpaint_extra = malloc((size_t)B * g->h * g->w * ex * sizeof(float));
            for (int i = 0; i < B; i++)
                for (size_t q = 0; q < (size_t)g->h * g->w; q++) {
                    float *d = g->inpaint_extra + ((size_t)i * g->h * g->w + q) * ex;
                    d[0] = lmask ? lmask[q] : 1.0f;
                    memcpy(d + 1, mlat + q * g->lc, g->lc * sizeof(float));
                }
            free(masked);
            free(mlat);
        }
        if (st == SD_OK) st = sched_img2img_prepare(&g->sc, g->steps, g->start_step, x0, noise, x, n);
        if (st == SD_OK && lmask && uc->in_channels == g->lc) { /* ordinary model: blend the known area each step */
            g->blend_x0 = x0;
            g->blend_noise = noise;
            g->blend_mask = malloc(n * sizeof(float));
            for (int i = 0; i < B; i++)
                for (size_t q = 0; q < (size_t)g->h * g->w; q++)
                    for (int ch = 0; ch < g->lc; ch++) g->blend_mask[i * per + q * g->lc + ch] = lmask[q];
            x0 = noise = NULL;
        }
        free(x0);
        free(noise);
        free(lmask);
        free(img);
    }
    double ts = now(), f0 = b->flops; /* the backend counts the FLOPs of the ops it is given */
    if (st == SD_OK)
        st = p->init_image ? sched_sample_from(&g->sc, g->steps, g->start_step, x, n, model_cb, noise_cb, step_cb, g)
                           : sched_sample(&g->sc, g->steps, x, n, model_cb, noise_cb, step_cb, g);
    if (st == SD_OK && g->cb_err) st = sd_fail(SD_ERR_CANCELLED, "cancelled");
    g->t_sample += now() - ts;
    r->timings.sample_flops += b->flops - f0;
    be_release(b, mark);
    be_arena_trim(b); /* the UNet's activations are dead: the decode's peak need not stack on theirs */
    free(g->inpaint_extra);
    free(g->blend_x0);
    free(g->blend_noise);
    free(g->blend_mask);
    g->inpaint_extra = g->blend_x0 = g->blend_noise = g->blend_mask = NULL;
    if (st != SD_OK) { free(x); return st; }

    /* decode */
    if (g->progress) {
        sd_progress pr = {"decode", first, g->total, 0, 0, now() - g->t0, NULL, 0, 0};
        if (g->progress(g->user, &pr)) { free(x); return sd_fail(SD_ERR_CANCELLED, "cancelled"); }
    }
    double td = now();
    vae_decode_opts vo;
    double fd;
    sd_vae_decode_opts(c, p->vae_tiling, g->h, g->w, &vo, &fd);
    r->timings.decode_flops += fd * B;
    size_t need = vae_decode_arena_bytes(c->vb, c->vae, g->h, g->w, &vo);
    if (need > r->timings.peak_activation_bytes) r->timings.peak_activation_bytes = need;
    st = ensure_arena(c->vb, need);
    float *rgb = malloc((size_t)B * g->W * g->H * 3 * sizeof(float));
    if (st == SD_OK) st = vae_decode(c->vb, c->vae, x, B, g->h, g->w, &vo, rgb);
    for (int i = 0; i < B && st == SD_OK; i++) {
        sd_image *im = &r->images[first + i];
        im->w = g->W;
        im->h = g->H;
        im->c = 3;
        im->data = malloc((size_t)g->W * g->H * 3);
        vae_image_to_u8(rgb + (size_t)i * g->W * g->H * 3, (size_t)g->W * g->H * 3, im->data);
    }
    r->timings.decode += now() - td;
    free(rgb);
    free(x);
    return st;
}

sd_status sd_generate(sd_ctx *c, const sd_gen_params *p, sd_progress_fn progress, void *user, sd_result *r) {
    memset(r, 0, sizeof *r);
    gen *g = calloc(1, sizeof *g);
    g->c = c;
    g->p = p;
    g->progress = progress;
    g->user = user;
    g->t0 = now();
    be_clear_error(c->b);
    be_clear_error(c->vb);
    sd_status st = resolve(g);
    if (st != SD_OK) { free(g); return st; }
    int total = p->batch_count, bs = p->batch_size < MAX_GROUP ? p->batch_size : MAX_GROUP;
    g->total = total;
    r->count = total;
    r->images = calloc(total, sizeof *r->images);
    r->seeds = calloc(total, sizeof *r->seeds);
    r->infotext = calloc(total, sizeof *r->infotext);
    r->json = calloc(total, sizeof *r->json);
    if (progress) {
        sd_progress pr = {"encode", 0, total, 0, 0, 0, NULL, 0, 0};
        progress(user, &pr);
    }
    /* text conditioning, once for the whole call (cond and uncond get the same number of windows) */
    double te = now();
    const char *neg = p->negative_prompt ? p->negative_prompt : "";
    int k = sd_prompt_chunk_count(c, p->prompt), kn = k < 0 ? 0 : sd_prompt_chunk_count(c, neg);
    if (k < 0 || kn < 0) st = SD_ERR_ARG; /* the tokenizer left the message */
    int kk = k > kn ? k : kn;
    if (st == SD_OK) st = sd_encode_prompt(c, p->prompt, p->clip_skip, kk, &g->cond);
    /* diffusers' SDXL force_zeros_for_empty_prompt: no negative prompt at all means zero conditioning */
    g->uncond_zero = c->files.family == SD_FAMILY_SDXL && !p->negative_prompt;
    if (st == SD_OK && g->use_cfg && !g->uncond_zero) st = sd_encode_prompt(c, neg, p->clip_skip, kk, &g->uncond);
    r->timings.text_encode = now() - te;

    if (st == SD_OK) { /* size the arena for the largest group: contexts + one UNet evaluation, or the VAE encoder */
        int B = bs < total ? bs : total, N = g->use_cfg ? 2 * B : B;
        const unet_config *uc = unet_get_config(c->unet);
        be *b = c->b;
        be_measure_begin(b);
        group_tensors(g, B);
        be_tensor x = be_new(b, N, g->h, g->w, uc->in_channels), e = be_new(b, N, g->h, g->w, uc->out_channels);
        be_tensor ctx = g->ctx_t, pooled = g->pooled_t, tc = g->tcond_t;
        float *dummy_ids = calloc((size_t)N * 8, sizeof(float)), ts[2 * MAX_GROUP] = {0};
        unet_cond cond = {&ctx, g->cond.pooled ? &pooled : NULL, dummy_ids, uc->time_cond_dim ? &tc : NULL};
        unet_forward(b, c->unet, &x, ts, &cond, &e);
        size_t need = be_measure_end(b);
        free(dummy_ids);
        size_t vneed = 0; /* the encoder's arena when the VAE has its own backend (SDXL on CUDA) */
        if (p->init_image) {
            size_t enc = vae_encode_arena_bytes(c->vb, c->vae, g->H, g->W);
            if (c->vb == b) need += enc;
            else vneed = enc;
        }
        if (need > r->timings.peak_activation_bytes) r->timings.peak_activation_bytes = need;
        st = ensure_arena(b, need);
        if (st == SD_OK && vneed) st = ensure_arena(c->vb, vneed);
        if (st == SD_OK && (st = be_status(b)) != SD_OK) be_clear_error(b);
        size_t per = (size_t)g->lc * g->h * g->w;
        g->x_in_host = malloc((size_t)N * g->h * g->w * uc->in_channels * sizeof(float));
        g->eps_host = malloc((size_t)N * per * sizeof(float));
        g->nchw = malloc(per * sizeof(float));
        if (c->files.family == SD_FAMILY_SDXL) { /* micro-conditioning: original size, crop (0, 0), target size */
            g->time_ids = malloc((size_t)N * 6 * sizeof(float));
            for (int i = 0; i < N; i++) {
                float* t6 = g->time_ids + i * 6;
                t6[0] = (float)g->H; t6[1] = (float)g->W; t6[2] = 0; t6[3] = 0; t6[4] = (float)g->H; t6[5] = (float)g->W;
            }
        }
    }
    for (int first = 0; first < total && st == SD_OK; first += bs) {
        int B = total - first < bs ? total - first : bs;
        st = run_group(g, first, B, r);
    }
    if (st == SD_OK) {
        sd_infotext_ctx ic = {c->name, sd_model_hash(c), g->sampler, g->scheduler, g->W, g->H, g->steps, g->cfg};
        for (int i = 0; i < total; i++) {
            r->seeds[i] = p->seed + (uint64_t)i;
            r->infotext[i] = sd_infotext_a1111(p, &ic, r->seeds[i]);
            r->json[i] = sd_infotext_json(p, &ic, r->seeds[i]);
        }
        int evals = sched_model_evals(&g->sc, g->steps, p->init_image ? g->start_step : 0);
        r->timings.sample = g->t_sample;
        r->timings.per_step = evals > 0 ? g->t_sample / ((double)evals * ((total + bs - 1) / bs)) : 0;
    }
    r->timings.total = now() - g->t0;
    sd_cond_free(&g->cond);
    sd_cond_free(&g->uncond);
    free(g->x_in_host);
    free(g->eps_host);
    free(g->nchw);
    free(g->time_ids);
    free(g);
    if (st != SD_OK) sd_result_free(r);
    return st;
}

void sd_result_free(sd_result *r) {
    for (int i = 0; i < r->count; i++) {
        if (r->images) free(r->images[i].data);
        if (r->infotext) free(r->infotext[i]);
        if (r->json) free(r->json[i]);
    }
    free(r->images);
    free(r->seeds);
    free(r->infotext);
    free(r->json);
    memset(r, 0, sizeof *r);
}
