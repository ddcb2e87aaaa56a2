/* control_models.c — the ControlNets a context has loaded: opened on first use (a .safetensors file with original
 * or diffusers names, or a diffusers folder), checked against the model's family, kept while calls name them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "control.h"
#include "pipeline.h"

/* "SD 1.x" and so on, by the layout of the UNet a ControlNet was copied from: SDXL's add embedding, else SD 2.x's
 * linear attention projections, else SD 1.x's 1x1 convolutions. */
static const char *family_of(const unet_config *u) {
    return u->add_embed ? "SDXL" : u->linear_proj ? "SD 2.x" : "SD 1.x";
}

/* The ControlNet must be a copy of this UNet's encoder: same context, add embedding and skip shapes. */
static sd_status check_fits(const sd_ctx *c, const controlnet_config *k, const char *path) {
    const unet_config *u = unet_get_config(c->unet), *v = &k->unet;
    int fits = u->ctx_dim == v->ctx_dim && u->add_embed == v->add_embed && (!u->add_embed || u->add_in_dim == v->add_in_dim) &&
               u->levels == v->levels && u->temb_dim == v->temb_dim;
    for (int l = 0; fits && l < u->levels; l++) fits = u->block_out[l] == v->block_out[l] && u->layers[l] == v->layers[l];
    if (fits) return SD_OK;
    const char *fk = family_of(v), *fm = family_of(u);
    if (strcmp(fk, fm))
        return err_fail(SD_ERR_MODEL, "%s: an %s ControlNet cannot steer %s, an %s model", path, fk, c->name, c->info.family);
    return err_fail(SD_ERR_MODEL, "%s: this ControlNet's layers (%d levels, %d channels first) do not match %s's UNet (%d levels, %d channels first)",
                    path, v->levels, v->block_out[0], c->name, u->levels, u->block_out[0]);
}

/* Weights file and config of a ControlNet path: a file, or a diffusers folder. */
static sd_status locate(const char *path, char *weights, size_t cap, char *config, size_t ccap) {
    config[0] = 0;
    if (!file_is_dir(path)) {
        if (!file_exists(path)) return err_fail(SD_ERR_IO, "%s: no such ControlNet file or folder", path);
        const char *dot = strrchr(path, '.');
        if (dot && (!strcmp(dot, ".pth") || !strcmp(dot, ".ckpt") || !strcmp(dot, ".bin") || !strcmp(dot, ".pt")))
            return err_fail(SD_ERR_UNSUPPORTED, "%s: pickle files are not read (they can run code); use the .safetensors version", path);
        snprintf(weights, cap, "%s", path);
        return SD_OK;
    }
    static const char *const names[] = {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(weights, cap, "%s/%s", path, names[i]);
        if (file_exists(weights)) {
            snprintf(config, ccap, "%s/config.json", path);
            if (!file_exists(config)) config[0] = 0;
            return SD_OK;
        }
    }
    return err_fail(SD_ERR_MODEL, "%s: a folder without diffusion_pytorch_model.safetensors is not a ControlNet", path);
}

static sd_status load(sd_ctx *c, const char *path, control_model *m) {
    char weights[4400], config[4400];
    sd_status st = locate(path, weights, sizeof weights, config, sizeof config);
    if (st != SD_OK) return st;
    st_file *f;
    if ((st = st_open(weights, &f)) != SD_OK) return st;
    wmap *w = wmap_new();
    controlnet_config cfg;
    st = w ? controlnet_add_tensors(w, f) : err_fail(SD_ERR_MEMORY, "out of memory");
    if (st == SD_OK) st = config[0] ? controlnet_config_from_file(config, &cfg) : controlnet_config_infer(w, &cfg);
    if (st == SD_OK) st = check_fits(c, &cfg, path);
    if (st == SD_OK) {
        st = controlnet_load(c->b, w, &cfg, &m->cn);
        if (st != SD_OK) err_prefix("%s", weights);
    }
    wmap_free(w);
    st_close(f);
    if (st != SD_OK) return st;
    snprintf(m->path, sizeof m->path, "%s", path);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    size_t l = strlen(tmp);
    while (l > 1 && tmp[l - 1] == '/') tmp[--l] = 0;
    const char *base = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp;
    snprintf(m->name, sizeof m->name, "%s", base);
    char *dot = strrchr(m->name, '.');
    if (dot && !strcmp(dot, ".safetensors")) *dot = 0;
    if (c->verbose) fprintf(stderr, "ControlNet: %s (%s names)\n", path, config[0] ? "diffusers" : "file's");
    return SD_OK;
}

static void drop(sd_ctx *c, int i) {
    control_model *m = c->controlnets[i];
    if (!m) return;
    controlnet_free(c->b, m->cn);
    free(m);
    c->controlnets[i] = NULL;
}

sd_status control_model_get(sd_ctx *c, const char *path, const sd_control *keep, int nkeep, control_model **out) {
    *out = NULL;
    int freeslot = -1;
    for (int i = 0; i < SD_MAX_CONTROLS; i++) {
        control_model *m = c->controlnets[i];
        if (m && !strcmp(m->path, path)) {
            *out = m;
            return SD_OK;
        }
    }
    /* make room: models no control of this call names go first */
    for (int i = 0; i < SD_MAX_CONTROLS; i++) {
        control_model *m = c->controlnets[i];
        int named = 0;
        for (int k = 0; m && k < nkeep; k++) named |= !strcmp(keep[k].model, m->path);
        if (m && !named) drop(c, i);
        if (!c->controlnets[i] && freeslot < 0) freeslot = i;
    }
    if (freeslot < 0) return err_fail(SD_ERR_ARG, "more than %d ControlNets", SD_MAX_CONTROLS);
    control_model *m = calloc(1, sizeof *m);
    if (!m) return err_fail(SD_ERR_MEMORY, "out of memory");
    sd_status st = load(c, path, m);
    if (st != SD_OK) {
        free(m);
        return st;
    }
    c->controlnets[freeslot] = m;
    *out = m;
    return SD_OK;
}

const char *control_model_hash(control_model *m) {
    if (!m->hash[0]) {
        char weights[4400], config[4400], hex[65];
        if (locate(m->path, weights, sizeof weights, config, sizeof config) == SD_OK && sd_sha256_file(weights, hex) == SD_OK)
            snprintf(m->hash, sizeof m->hash, "%.8s", hex);
        else
            snprintf(m->hash, sizeof m->hash, "-");
    }
    return strcmp(m->hash, "-") ? m->hash : NULL;
}

void control_models_free(sd_ctx *c) {
    for (int i = 0; i < SD_MAX_CONTROLS; i++) drop(c, i);
}
