/* control.c — the ControlNet job of a generation, as diffusers' ControlNet pipelines run it: each ControlNet sees the
 * UNet's input, timestep and conditioning and its control image; its residuals, scaled by its strength while the
 * model evaluation lies within its [start, end] share of the schedule, are summed over the ControlNets and handed
 * to the UNet (unet_cond.control). Guess mode: the ControlNets see only the prompt's half of a guided batch, and
 * their residuals ramp from 0.1 (first skip) to 1 (mid block) of the strength. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "control.h"
#include "gen.h"

typedef struct gen_control {
    int n;
    control_model *m[SD_MAX_CONTROLS];
    float *img[SD_MAX_CONTROLS];       /* prepared control maps [H, W, 3] */
    be_tensor hint[SD_MAX_CONTROLS];   /* the group's [rows, H, W, 3] copies */
    int rows, row0;                    /* the UNet batch rows the ControlNets run on */
    int evals, call;                   /* model evaluations per group, and the index of the next one */
    float *xhost;                      /* [rows, h, w, lc] when the UNet's input has more channels (inpainting) */
    be_tensor res[CONTROLNET_MAX_SKIPS], mid;
    unet_control out;
} gen_control;

sd_status control_resolve(gen *g) {
    const sd_gen_params *p = g->p;
    if (p->control_count <= 0) return SD_OK;
    gen_control *k = calloc(1, sizeof *k);
    if (!k) return err_fail(SD_ERR_MEMORY, "out of memory");
    g->ctl = k;
    k->n = p->control_count;
    for (int i = 0; i < k->n; i++) {
        sd_status st = control_model_get(g->c, p->controls[i].model, p->controls, p->control_count, &k->m[i]);
        if (st != SD_OK) return st;
        const controlnet_config *cc = controlnet_get_config(k->m[i]->cn);
        if (cc->cond_channels != 3)
            return err_fail(SD_ERR_UNSUPPORTED, "%s: ControlNets with %d conditioning channels are not supported (3)", p->controls[i].model, cc->cond_channels);
        int down = 1 << (cc->n_embed - 1);
        if ((g->H + down - 1) / down != g->h || (g->W + down - 1) / down != g->w)
            return err_fail(SD_ERR_MODEL, "%s: its control embedding shrinks %dx, the model's latents are %dx smaller", p->controls[i].model, down, g->H / g->h);
        if ((st = control_image_prepare(&p->controls[i], g->W, g->H, controlnet_hint_bgr(k->m[i]->cn), &k->img[i])) != SD_OK) return st;
    }
    k->evals = sched_model_evals(&g->sc, g->steps, g->init_kind ? g->start_step : 0); /* an image or given latents */
    return SD_OK;
}

static int guess(const gen *g) { return g->p->control_guess_mode && g->use_cfg; }

void control_group_tensors(gen *g, int B) {
    gen_control *k = g->ctl;
    if (!k) return;
    k->rows = g->use_cfg && !guess(g) ? 2 * B : B;
    k->row0 = guess(g) ? B : 0;
    for (int i = 0; i < k->n; i++) k->hint[i] = be_new(g->c->b, k->rows, g->H, g->W, 3);
}

sd_status control_upload(gen *g) {
    gen_control *k = g->ctl;
    if (!k) return SD_OK;
    k->call = 0;
    size_t per = (size_t)g->H * g->W * 3;
    float *host = malloc(k->rows * per * sizeof *host);
    free(k->xhost);
    k->xhost = malloc((size_t)k->rows * g->h * g->w * g->lc * sizeof(float));
    if (!host || !k->xhost) {
        free(host);
        return err_fail(SD_ERR_MEMORY, "out of memory for the control images");
    }
    for (int i = 0; i < k->n; i++) {
        for (int r = 0; r < k->rows; r++) memcpy(host + r * per, k->img[i], per * sizeof *host);
        be_upload(g->c->b, &k->hint[i], host);
    }
    free(host);
    return be_status(g->c->b);
}

/* Rows [r0, r0 + n) of t, as a tensor of its own (same memory). */
static be_tensor rows_of(const be *b, be_tensor t, int r0, int n) {
    be_tensor v = be_view(t, n, t.h, t.w, t.c);
    if (t.data) v.data = (char *)t.data + (size_t)r0 * t.h * t.w * t.c * b->elem_size;
    return v;
}

void control_apply(gen *g, const be_tensor *x, const float *x_lat, const float *ts, unet_cond *cond) {
    gen_control *k = g->ctl;
    if (!k) return;
    be *b = g->c->b;
    const sd_gen_params *p = g->p;
    int i = b->measuring ? 0 : k->call++;
    float strength[SD_MAX_CONTROLS];
    int active = 0;
    for (int j = 0; j < k->n; j++) {
        const sd_control *sc = &p->controls[j];
        /* diffusers' controlnet_keep: off before `start` and after `end` of the model evaluations */
        int keep = !((double)i / k->evals < sc->start || (double)(i + 1) / k->evals > sc->end);
        strength[j] = b->measuring ? 1.0f : keep ? sc->strength : 0.0f;
        active += strength[j] != 0.0f;
    }
    if (!active) return;
    const unet_config *uc = &controlnet_get_config(k->m[0]->cn)->unet; /* every one fits the same UNet */
    int nskip = unet_skip_count(uc), R = k->rows, r0 = k->row0;
    for (int s = 0; s < nskip; s++) {
        int sh, sw, sch;
        unet_skip_shape(uc, s, g->h, g->w, &sh, &sw, &sch);
        k->res[s] = be_new(b, R, sh, sw, sch);
    }
    k->mid = be_new(b, R, (int)k->res[nskip - 1].h, k->res[nskip - 1].w, uc->block_out[uc->levels - 1]);
    /* the ControlNet reads the latents alone (an inpainting UNet's mask channels are the UNet's) */
    be_tensor xv;
    if (x->c == g->lc) {
        xv = rows_of(b, *x, r0, R);
    } else {
        xv = be_new(b, R, g->h, g->w, g->lc);
        if (!b->measuring) {
            size_t per = (size_t)g->h * g->w * g->lc;
            for (int r = 0; r < R; r++) memcpy(k->xhost + r * per, x_lat + (size_t)((r0 + r) % g->B) * per, per * sizeof(float));
            be_upload(b, &xv, k->xhost);
        }
    }
    be_tensor ctx = rows_of(b, *cond->ctx, r0, R), pooled;
    unet_cond cc = {&ctx, NULL, cond->time_ids ? cond->time_ids + (size_t)r0 * 6 : NULL, NULL, NULL, 0}; /* no ctx_id: rows of the context */
    if (cond->text_embeds) {
        pooled = rows_of(b, *cond->text_embeds, r0, R);
        cc.text_embeds = &pooled;
    }
    int first = 1;
    for (int j = 0; j < k->n; j++) {
        if (strength[j] == 0.0f) continue;
        float scales[CONTROLNET_MAX_SKIPS + 1];
        for (int s = 0; s <= nskip; s++)
            scales[s] = p->control_guess_mode ? (float)pow(10.0, -1.0 + (double)s / nskip) * strength[j] : strength[j];
        k->out = (unet_control){nskip, k->res, &k->mid, r0};
        controlnet_forward(b, k->m[j]->cn, &xv, ts + r0, &cc, &k->hint[j], scales, !first, &k->out);
        first = 0;
    }
    cond->control = &k->out;
}

void control_label(gen *g, int i, char *buf, size_t cap) {
    control_model *m = g->ctl && i < g->ctl->n ? g->ctl->m[i] : NULL;
    if (!m) {
        snprintf(buf, cap, "%s", g->p->controls[i].model);
        return;
    }
    const char *h = control_model_hash(m);
    if (h) snprintf(buf, cap, "%s [%s]", m->name, h);
    else snprintf(buf, cap, "%s", m->name);
}

void control_release(gen *g) {
    gen_control *k = g->ctl;
    if (!k) return;
    for (int i = 0; i < SD_MAX_CONTROLS; i++) free(k->img[i]);
    free(k->xhost);
    free(k);
    g->ctl = NULL;
}
