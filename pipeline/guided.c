/* guided.c — the guided model call: the group's conditioning tensors, the UNet on [uncond; cond] in one batch,
 * classifier-free guidance and guidance rescale. The arena is sized once per call for the largest group. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../scheduler/guidance.h"
#include "control.h"
#include "gen.h"

static int batch_of(const gen *g, int B) { return g->use_cfg ? 2 * B : B; }

static sd_status ensure_arena(be *b, size_t bytes) {
    if (bytes <= b->arena.size) return SD_OK;
    return be_arena_reserve(b, bytes + (bytes >> 4));
}

/* Persistent per-group tensors (contexts, pooled, LCM embedding) at the bottom of the arena. */
static void group_tensors(gen *g, int B) {
    be *b = g->c->b;
    int N = batch_of(g, B);
    const unet_config *uc = unet_get_config(g->c->unet);
    g->ctx_t = be_new(b, N, 1, g->cond.tokens, g->cond.ctx_dim);
    g->pooled_t = (be_tensor){0};
    g->tcond_t = (be_tensor){0};
    if (g->cond.pooled) g->pooled_t = be_new(b, N, 1, 1, g->cond.pooled_dim);
    if (uc->time_cond_dim) g->tcond_t = be_new(b, N, 1, 1, uc->time_cond_dim);
}

sd_status guided_prepare(gen *g, int B, size_t *peak) {
    sd_ctx *c = g->c;
    be *b = c->b;
    const unet_config *uc = unet_get_config(c->unet);
    int N = batch_of(g, B);
    size_t hw = (size_t)g->h * g->w;
    g->x_in_host = malloc((size_t)N * hw * uc->in_channels * sizeof(float));
    g->eps_host = malloc((size_t)N * hw * g->lc * sizeof(float));
    if (c->files.family == MODEL_FAMILY_SDXL) g->time_ids = malloc((size_t)N * 6 * sizeof(float));
    if (!g->x_in_host || !g->eps_host || (c->files.family == MODEL_FAMILY_SDXL && !g->time_ids))
        return err_fail(SD_ERR_MEMORY, "out of memory for the model input");
    if (g->time_ids) /* SDXL micro-conditioning: original size, crop (0, 0), target size */
        for (int i = 0; i < N; i++) {
            float *t6 = g->time_ids + i * 6;
            t6[0] = (float)g->H; t6[1] = (float)g->W; t6[2] = 0; t6[3] = 0; t6[4] = (float)g->H; t6[5] = (float)g->W;
        }

    /* measure: contexts + one UNet evaluation of the largest group */
    be_measure_begin(b);
    group_tensors(g, B);
    control_group_tensors(g, B);
    be_tensor x = be_new(b, N, g->h, g->w, uc->in_channels), e = be_new(b, N, g->h, g->w, uc->out_channels);
    be_tensor ctx = g->ctx_t, pooled = g->pooled_t, tc = g->tcond_t;
    float ts[2 * GEN_MAX_GROUP] = {0};
    unet_cond cond = {&ctx, g->cond.pooled ? &pooled : NULL, g->time_ids, uc->time_cond_dim ? &tc : NULL, NULL, 0};
    control_apply(g, &x, NULL, ts, &cond);
    unet_forward(b, c->unet, &x, ts, &cond, &e);
    size_t need = be_measure_end(b);
    size_t vneed = 0; /* the encoder's arena when the VAE has its own backend (SDXL on CUDA) */
    if (g->init_kind == GEN_INIT_IMAGE) {
        size_t enc = vae_encode_arena_bytes(c->vb, c->vae, g->H, g->W);
        if (c->vb == b) need += enc;
        else vneed = enc;
    }
    if (need > *peak) *peak = need;
    sd_status st = ensure_arena(b, need);
    if (st == SD_OK && vneed) st = ensure_arena(c->vb, vneed);
    if (st == SD_OK && (st = be_status(b)) != SD_OK) be_clear_error(b);
    return st;
}

sd_status guided_upload(gen *g) {
    be *b = g->c->b;
    int B = g->B, N = batch_of(g, B);
    group_tensors(g, B);
    control_group_tensors(g, B);
    size_t cs = (size_t)g->cond.tokens * g->cond.ctx_dim;
    float *host = malloc(N * cs * sizeof(float));
    if (!host) return err_fail(SD_ERR_MEMORY, "out of memory for the text context");
    /* rows [0, B) the negative prompt (or zeros), [B, 2B) the prompt; without CFG only the prompt */
    for (int k = 0; k < N; k++) {
        const text_cond *src = g->use_cfg && k < B ? &g->uncond : &g->cond;
        if (g->use_cfg && k < B && g->uncond_zero) memset(host + k * cs, 0, cs * sizeof(float));
        else memcpy(host + k * cs, src->ctx, cs * sizeof(float));
    }
    be_upload(b, &g->ctx_t, host);
    g->ctx_id = unet_context_id(g->c->unet);
    if (g->cond.pooled) {
        int P = g->cond.pooled_dim;
        for (int k = 0; k < N; k++) {
            const text_cond *src = g->use_cfg && k < B ? &g->uncond : &g->cond;
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
    sd_status st = control_upload(g);
    return st != SD_OK ? st : be_status(b);
}

sd_status guided_model(void *user, const float *x_in, float t, float *out) {
    gen *g = user;
    /* the progress callback asked to stop (or a preview failed, with its own message): the sampler ends at its next
     * evaluation, not after its last step */
    if (g->cb_err) return g->cb_err == SD_ERR_CANCELLED ? err_fail(g->cb_err, "cancelled") : g->cb_err;
    sd_ctx *c = g->c;
    be *b = c->b;
    const unet_config *uc = unet_get_config(c->unet);
    int B = g->B, N = batch_of(g, B), cin = uc->in_channels;
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
    float ts[2 * GEN_MAX_GROUP];
    for (int k = 0; k < N; k++) ts[k] = t;
    size_t mark = be_mark(b);
    be_tensor x = be_new(b, N, g->h, g->w, cin), e = be_new(b, N, g->h, g->w, uc->out_channels);
    be_upload(b, &x, g->x_in_host);
    be_tensor ctx = be_view(g->ctx_t, N, 1, g->ctx_t.w, g->ctx_t.c), pooled = be_view(g->pooled_t, N, 1, 1, g->pooled_t.c);
    be_tensor tc = be_view(g->tcond_t, N, 1, 1, g->tcond_t.c);
    unet_cond cond = {&ctx, g->pooled_t.data ? &pooled : NULL, g->time_ids, g->tcond_t.data ? &tc : NULL, NULL, g->ctx_id};
    control_apply(g, &x, x_in, ts, &cond); /* ControlNet residuals, when the call has ControlNets */
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

void guided_release(gen *g) {
    free(g->x_in_host);
    free(g->eps_host);
    free(g->time_ids);
    g->x_in_host = g->eps_host = g->time_ids = NULL;
}
