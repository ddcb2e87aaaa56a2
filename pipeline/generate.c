/* generate.c — sd_generate: resolve the parameters once, encode the prompts, then per group of images: starting
 * noise, img2img preparation, the sampler loop around the guided model, decode (or the hires fix's second pass);
 * and each image's settings text. The jobs themselves live in their own files (gen.h lists them). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../core/error.h"
#include "embeddings.h"
#include "control.h"
#include "gen.h"
#include "infotext.h"

double gen_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

sd_status gen_resolve(gen *g) {
    sd_ctx *c = g->c;
    const sd_gen_params *p = g->p;
    const sd_model_info *mi = &c->info;
    g->W = p->width ? p->width : mi->default_width;
    g->H = p->height ? p->height : mi->default_height;
    sd_status st = params_validate(p, g->W, g->H);
    if (st != SD_OK) return st;
    int f = vae_factor(c->vae);
    if (g->W % f || g->H % f) return err_fail(SD_ERR_ARG, "size %dx%d: must be a multiple of %d for this model", g->W, g->H, f);
    g->h = g->H / f;
    g->w = g->W / f;
    g->lc = unet_get_config(c->unet)->out_channels;
    g->steps = p->steps ? p->steps : mi->default_steps;
    g->cfg = p->cfg_scale >= 0 ? p->cfg_scale : mi->default_cfg;
    g->sampler = p->sampler ? p->sampler : mi->default_sampler;
    sched_config_default(&g->sc);
    if ((st = sched_sampler_from_name(g->sampler, &g->sc.sampler)) != SD_OK) return st;
    if (p->convention && (st = sched_convention_from_name(p->convention, &g->sc.convention)) != SD_OK) return st;
    /* the model's scheduler config as this sampler reads it, then what the call asks for */
    if ((st = sched_model_apply(&c->sched, &g->sc)) != SD_OK) return st;
    if (p->scheduler && (st = sched_schedule_from_name(p->scheduler, &g->sc.schedule)) != SD_OK) return st;
    g->sampler = sched_sampler_name(g->sc.sampler);
    g->scheduler = sched_schedule_name(g->sc.schedule);
    g->sc.prediction = c->prediction == MODEL_PRED_V ? SCHED_PRED_V : SCHED_PRED_EPS;
    if (p->timestep_spacing && (st = sched_spacing_from_name(p->timestep_spacing, &g->sc.spacing)) != SD_OK) return st;
    if (p->eta > 0) g->sc.eta = p->eta;
    if ((st = sched_config_check(&g->sc, g->steps)) != SD_OK) return st;
    if ((st = rng_kind_from_name(p->rng ? p->rng : "cuda", &g->rng)) != SD_OK) return st;
    g->separate_srng = p->sampler_rng != NULL;
    if ((st = rng_kind_from_name(p->sampler_rng ? p->sampler_rng : (p->rng ? p->rng : "cuda"), &g->srng)) != SD_OK) return st;
    const unet_config *uc = unet_get_config(c->unet);
    /* CFG needs a second UNet batch; LCM-distilled UNets take the guidance as an embedding instead */
    g->use_cfg = g->cfg > 1.0f && !uc->time_cond_dim;
    if (uc->in_channels == 9 && !p->init_image) return err_fail(SD_ERR_ARG, "%s is an inpainting model: give an init image (and a mask)", c->name);
    if (p->init_image) {
        st = sched_img2img_start(&g->sc, g->steps, p->strength, &g->start_step);
        if (st != SD_OK) return st;
        g->init_kind = GEN_INIT_IMAGE;
    }
    if (p->control_count < 0 || p->control_count > SD_MAX_CONTROLS || (p->control_count && !p->controls))
        return err_fail(SD_ERR_ARG, "%d ControlNets: at most %d", p->control_count, SD_MAX_CONTROLS);
    for (int i = 0; i < p->control_count; i++)
        if ((st = control_validate(&p->controls[i], i)) != SD_OK) return st;
    if ((st = preview_resolve(g)) != SD_OK) return st;
    return g->pass > 1 ? SD_OK : hires_resolve(g);
}

sd_status sd_check_params(const sd_ctx *ctx, const sd_gen_params *p) {
    gen *g = calloc(1, sizeof *g); /* large (per-image generator states): not on the stack */
    if (!g) return err_fail(SD_ERR_MEMORY, "out of memory");
    g->c = (sd_ctx *)ctx;
    g->p = p;
    g->pass = g->passes = 1;
    sd_status st = gen_resolve(g);
    if (st == SD_OK) st = lora_resolve(p, &g->loras); /* tags and files (merging waits for sd_generate) */
    struct stat sb;
    if (st == SD_OK && p->embedding_dir && (stat(p->embedding_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        st = err_fail(SD_ERR_IO, "%s: no such embeddings folder", p->embedding_dir);
    lora_call_free(&g->loras);
    preview_free(g);
    hires_free(g);
    free(g);
    return st;
}

static int report(gen *g, const char *stage, int step, int total, const float *x, const sd_image *preview) {
    if (!g->progress) return 0;
    sd_progress pr = {.stage = stage, .image = g->first, .images = g->total, .step = step, .steps = total, .elapsed = gen_now() - g->t0,
                      .latent = x, .lw = x ? g->w : 0, .lh = x ? g->h : 0, .preview = preview, .pass = g->pass, .passes = g->passes};
    return g->progress(g->user, &pr);
}

int gen_report(gen *g, const char *stage) { return report(g, stage, 0, 0, NULL, NULL); }

static void after_step(void *user, int step, int total, const float *x) {
    gen *g = user;
    const sd_image *pv = g->pv && !g->cb_err ? preview_after_step(g, step, total) : NULL;
    if (!g->cb_err && report(g, "sample", step, total, x, pv)) g->cb_err = SD_ERR_CANCELLED;
}

sd_status gen_sample(gen *g, float *x) {
    be *b = g->c->b;
    size_t n = (size_t)g->B * g->lc * g->h * g->w;
    sd_status st = gen_noise_init(g, x);
    size_t mark = be_mark(b);
    if (st == SD_OK) st = guided_upload(g);
    if (st == SD_OK && g->init_kind == GEN_INIT_IMAGE) st = img2img_prepare(g, x);
    if (st == SD_OK && g->init_kind == GEN_INIT_LATENT) /* the given latents noised to the start step, with the first draw */
        st = sched_img2img_prepare(&g->sc, g->steps, g->start_step, g->init_latent, x, x, n);
    double ts = gen_now(), f0 = b->flops; /* the backend counts the FLOPs of the ops it is given */
    sched_model_fn model = g->pv ? preview_model : guided_model;
    if (st == SD_OK && g->init_kind == GEN_INIT_IMAGE)
        st = sched_sample_masked(&g->sc, g->steps, g->from_noise ? 0 : g->start_step, g->from_noise, x, n, g->has_known ? &g->known : NULL,
                                 model, gen_noise_draw, after_step, g);
    else if (st == SD_OK)
        st = g->init_kind ? sched_sample_from(&g->sc, g->steps, g->start_step, x, n, model, gen_noise_draw, after_step, g)
                          : sched_sample(&g->sc, g->steps, x, n, model, gen_noise_draw, after_step, g);
    if (st == SD_OK && g->cb_err) st = g->cb_err == SD_ERR_CANCELLED ? err_fail(SD_ERR_CANCELLED, "cancelled") : g->cb_err;
    g->t_sample += gen_now() - ts;
    g->sample_flops += b->flops - f0;
    be_release(b, mark);
    be_arena_trim(b); /* the UNet's activations are dead: the decode's peak need not stack on theirs */
    img2img_release(g);
    return st;
}

/* Runs images [first, first + B) of the call into r->images. */
static sd_status run_group(gen *g, int first, int B, sd_result *r) {
    size_t n = (size_t)B * g->lc * g->h * g->w;
    g->B = B;
    g->first = first;
    if (g->init_latents) g->init_latent = g->init_latents + (size_t)first * g->lc * g->h * g->w;
    float *x = malloc(n * sizeof(float));
    if (!x) return err_fail(SD_ERR_MEMORY, "out of memory for the latents");
    sd_status st = gen_sample(g, x);
    if (st == SD_OK && g->hires) {
        st = hires_group(g, x, r);
    } else if (st == SD_OK) {
        if (gen_report(g, "decode")) st = err_fail(SD_ERR_CANCELLED, "cancelled");
        if (st == SD_OK) st = decode_group(g, x, r);
    }
    for (int i = 0; i < B && st == SD_OK && g->init_kind == GEN_INIT_IMAGE; i++) st = inpaint_compose(&g->ip, &r->images[first + i]);
    free(x);
    return st;
}

static sd_status result_alloc(sd_result *r, int total) {
    r->count = total;
    r->images = calloc(total, sizeof *r->images);
    r->seeds = calloc(total, sizeof *r->seeds);
    r->infotext = calloc(total, sizeof *r->infotext);
    r->json = calloc(total, sizeof *r->json);
    if (!r->images || !r->seeds || !r->infotext || !r->json) return err_fail(SD_ERR_MEMORY, "out of memory for %d images", total);
    return SD_OK;
}

/* Clip skip of the negative prompt: as asked, else diffusers' pipelines encode it without clip skip and
 * AUTOMATIC1111 with the prompt's. */
static int negative_clip_skip(const gen *g) {
    const sd_gen_params *p = g->p;
    if (p->clip_skip_negative > 0) return p->clip_skip_negative;
    return g->sc.convention == SCHED_CONV_KDIFFUSION ? p->clip_skip : 0;
}

/* Text conditioning, once for the whole call (cond and uncond get the same number of windows). */
static sd_status encode_prompts(gen *g) {
    sd_ctx *c = g->c;
    const sd_gen_params *p = g->p;
    const char *neg = p->negative_prompt ? p->negative_prompt : "", *pos = g->loras.prompt;
    int k = text_cond_windows(c, pos), kn = k < 0 ? 0 : text_cond_windows(c, neg);
    if (k < 0 || kn < 0) return SD_ERR_ARG; /* the tokenizer left the message */
    int kk = k > kn ? k : kn;
    sd_status st = text_cond_encode(c, pos, p->clip_skip, kk, &g->cond);
    /* diffusers' SDXL force_zeros_for_empty_prompt: no negative prompt at all means zero conditioning */
    g->uncond_zero = c->files.family == MODEL_FAMILY_SDXL && !p->negative_prompt;
    if (st == SD_OK && g->use_cfg && !g->uncond_zero) st = text_cond_encode(c, neg, negative_clip_skip(g), kk, &g->uncond);
    return st;
}

static sd_status settings_text(gen *g, sd_result *r) {
    sd_ctx *c = g->c;
    const sd_gen_params *p = g->p;
    char labels[SD_MAX_CONTROLS][300];
    const char *lp[SD_MAX_CONTROLS];
    for (int i = 0; i < p->control_count && i < SD_MAX_CONTROLS; i++) {
        control_label(g, i, labels[i], sizeof labels[i]);
        lp[i] = labels[i];
    }
    infotext_ctx ic = {c->name, sd_model_hash(c), g->sampler, g->scheduler, g->W, g->H, g->steps, g->cfg, lora_hashes(c), emb_hashes(c), lp};
    for (int i = 0; i < g->total; i++) {
        r->seeds[i] = p->seed + (uint64_t)i;
        r->infotext[i] = infotext_a1111(p, &ic, r->seeds[i]);
        r->json[i] = infotext_json(p, &ic, r->seeds[i]);
        if (!r->infotext[i] || !r->json[i]) return err_fail(SD_ERR_MEMORY, "out of memory for the settings text");
    }
    return SD_OK;
}

sd_status sd_generate(sd_ctx *c, const sd_gen_params *p, sd_progress_fn progress, void *user, sd_result *r) {
    return gen_generate(c, p, NULL, progress, user, r);
}

sd_status gen_generate(sd_ctx *c, const sd_gen_params *p, const float *init_latents, sd_progress_fn progress, void *user, sd_result *r) {
    memset(r, 0, sizeof *r);
    gen *g = calloc(1, sizeof *g); /* large (per-image generator states): not on the stack */
    if (!g) return err_fail(SD_ERR_MEMORY, "out of memory");
    g->c = c;
    g->p = p;
    g->progress = progress;
    g->user = user;
    g->t0 = gen_now();
    g->pass = g->passes = 1;
    be_clear_error(c->b);
    be_clear_error(c->vb);
    sd_status st = gen_resolve(g);
    if (st == SD_OK && init_latents) { /* img2img from given latents: the image's strength rule, no encoder */
        if (p->init_image || g->hires) st = err_fail(SD_ERR_ARG, "starting latents exclude an init image and the hires fix");
        else st = sched_img2img_start(&g->sc, g->steps, p->strength, &g->start_step);
        g->init_kind = GEN_INIT_LATENT;
        g->init_latents = init_latents;
    }
    int total = p->batch_count, bs = p->batch_size < GEN_MAX_GROUP ? p->batch_size : GEN_MAX_GROUP;
    g->total = total;
    if (st == SD_OK) st = result_alloc(r, total);
    if (st == SD_OK && gen_report(g, "encode")) st = err_fail(SD_ERR_CANCELLED, "cancelled");
    if (st == SD_OK) st = lora_resolve(p, &g->loras);
    if (st == SD_OK) st = lora_apply(c, &g->loras); /* the weights this call's images need, from the base ones */
    if (st == SD_OK) st = emb_begin(c, p->embedding_dir);
    double te = gen_now();
    if (st == SD_OK) st = encode_prompts(g);
    if (st == SD_OK) be_arena_trim(c->b); /* sampling does not read the text encoders: their zero-copy pages leave the RSS */
    r->timings.text_encode = gen_now() - te;
    if (st == SD_OK && g->init_kind == GEN_INIT_IMAGE) st = inpaint_plan_make(g, &g->ip);
    if (st == SD_OK) st = control_resolve(g);
    size_t need = 0;
    if (st == SD_OK) {
        g->nchw = malloc((size_t)g->lc * g->h * g->w * sizeof(float));
        st = g->nchw ? guided_prepare(g, bs < total ? bs : total, &need) : err_fail(SD_ERR_MEMORY, "out of memory for the noise");
        r->timings.peak_activation_bytes = need;
    }
    if (st == SD_OK && g->pv) st = preview_prepare(g, need);
    if (st == SD_OK) st = tiny_prepare(g, need);
    if (st == SD_OK && g->hires) st = hires_prepare(g, bs < total ? bs : total, &r->timings.peak_activation_bytes);
    for (int first = 0; first < total && st == SD_OK; first += bs)
        st = run_group(g, first, total - first < bs ? total - first : bs, r);
    if (st == SD_OK) st = settings_text(g, r);
    if (st == SD_OK) {
        int evals = sched_model_evals(&g->sc, g->steps, g->init_kind && !g->from_noise ? g->start_step : 0) * ((total + bs - 1) / bs) +
                    hires_model_evals(g);
        r->timings.sample = g->t_sample;
        r->timings.sample_flops = g->sample_flops;
        r->timings.per_step = evals > 0 ? g->t_sample / evals : 0;
    }
    r->timings.total = gen_now() - g->t0;
    text_cond_free(&g->cond);
    text_cond_free(&g->uncond);
    lora_call_free(&g->loras);
    emb_end(c);
    guided_release(g);
    inpaint_plan_free(&g->ip);
    control_release(g);
    preview_free(g);
    hires_free(g);
    free(g->nchw);
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
