/* model_files.c — locate the components of a checkpoint or diffusers folder and detect its family. */
#include "model_files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/numparse.h"
#include "../unet/unet.h"

const char *model_family_name(model_family f) {
    switch (f) {
    case MODEL_FAMILY_SD1: return "SD 1.x";
    case MODEL_FAMILY_SD2: return "SD 2.x";
    case MODEL_FAMILY_SDXL: return "SDXL";
    case MODEL_FAMILY_SDXL_REFINER: return "SDXL refiner";
    default: return "unknown";
    }
}

static int has(const st_file *f, const char *name) { return st_find(f, name) != NULL; }

static int has_prefix(const st_file *f, const char *prefix) {
    size_t n = strlen(prefix);
    for (int i = 0; i < st_count(f); i++)
        if (!strncmp(st_at(f, i)->name, prefix, n)) return 1;
    return 0;
}

model_family model_family_detect(const st_file *f, int *in_channels, char *reason, size_t cap) {
    const st_tensor *ci = st_find(f, "model.diffusion_model.input_blocks.0.0.weight");
    if (in_channels) *in_channels = ci && ci->ndim == 4 ? (int)ci->shape[1] : 4;
    if (has(f, "conditioner.embedders.1.model.ln_final.weight") || has_prefix(f, "conditioner.embedders.1.model.transformer.")) {
        snprintf(reason, cap, "conditioner.embedders.1 (OpenCLIP bigG) present");
        return MODEL_FAMILY_SDXL;
    }
    if (has(f, "conditioner.embedders.0.model.ln_final.weight") || has_prefix(f, "conditioner.embedders.0.model.transformer.")) {
        snprintf(reason, cap, "conditioner.embedders.0 is OpenCLIP (refiner layout)");
        return MODEL_FAMILY_SDXL_REFINER;
    }
    const st_tensor *k = st_find(f, "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight");
    if (k && k->ndim == 2 && k->shape[1] == 1024) {
        snprintf(reason, cap, "cross-attention context width 1024");
        return MODEL_FAMILY_SD2;
    }
    if (has_prefix(f, "cond_stage_model.model.")) {
        snprintf(reason, cap, "cond_stage_model is OpenCLIP");
        return MODEL_FAMILY_SD2;
    }
    if (ci) {
        snprintf(reason, cap, "original UNet with a CLIP-L context");
        return MODEL_FAMILY_SD1;
    }
    return MODEL_FAMILY_UNKNOWN;
}

/* Names the unsupported architectures we can recognise, so the refusal says what the file is. */
static const char *unsupported_kind(const st_file *f) {
    if (has_prefix(f, "model.diffusion_model.joint_blocks.") || has_prefix(f, "joint_blocks.")) return "Stable Diffusion 3 (MMDiT)";
    if (has_prefix(f, "double_blocks.") || has_prefix(f, "model.diffusion_model.double_blocks.")) return "Flux";
    if (has_prefix(f, "lora_unet_") || has_prefix(f, "lora_te_")) return "a LoRA (not a full model)";
    if (has_prefix(f, "model.diffusion_model.x_embedder.") || has_prefix(f, "pos_embed")) return "a DiT / PixArt transformer";
    return NULL;
}

int model_files_is_pickle(const char *path) {
    const char *dot = strrchr(path, '.');
    if (dot && (!strcmp(dot, ".ckpt") || !strcmp(dot, ".pt") || !strcmp(dot, ".pth") || !strcmp(dot, ".bin"))) return 1;
    int fd;
    if (file_open_regular(path, &fd, NULL) != SD_OK) return 0; /* the loader that follows says what is wrong */
    unsigned char m[4] = {0};
    ssize_t n = read(fd, m, 4);
    close(fd);
    return n >= 2 && ((m[0] == 'P' && m[1] == 'K') || (m[0] == 0x80 && m[1] <= 5)); /* zip archive or raw pickle */
}

sd_status model_files_refuse_pickle(const char *path) {
    return err_fail(SD_ERR_UNSUPPORTED,
                   "%s: PyTorch pickle checkpoints (.ckpt/.pt/.bin) can execute arbitrary code when loaded and are "
                   "not read; convert it to .safetensors first, e.g. with python: "
                   "`from safetensors.torch import save_file; import torch; "
                   "sd = torch.load(\"model.ckpt\", weights_only=True)[\"state_dict\"]; save_file(sd, \"model.safetensors\")`",
                   path);
}

/* Python's json module writes Infinity, -Infinity and NaN (diffusers saves DPM-Solver's lambda_min_clipped as
 * -Infinity); JSON has no such numbers, so they are read as null (the key's "not set"). */
static void python_numbers_to_null(char *t) {
    static const char *words[3] = {"-Infinity", "Infinity", "NaN"};
    int in_str = 0;
    for (char *c = t; *c; c++) {
        if (in_str) {
            if (*c == '\\' && c[1]) c++;
            else if (*c == '"') in_str = 0;
            continue;
        }
        if (*c == '"') {
            in_str = 1;
            continue;
        }
        for (int w = 0; w < 3; w++) {
            size_t n = strlen(words[w]);
            if (!strncmp(c, words[w], n)) {
                memset(c, ' ', n);
                memcpy(c, "null", 4);
                c += n - 1;
                break;
            }
        }
    }
}

static cJSON *read_json(const char *path, sd_status *st) {
    char *txt;
    *st = file_read(path, 16u << 20, &txt, NULL);
    if (*st != SD_OK) return NULL;
    python_numbers_to_null(txt);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        *st = err_fail(SD_ERR_FORMAT, "%s: not a JSON object", path);
        return NULL;
    }
    return j;
}

/* Opens a diffusers component folder: its weights file (plain or .fp16 variant) and config.json. */
static sd_status open_component(const char *root, const char *sub, const char *weights, const char *config, model_component *c, int required) {
    char dir[4096], p[4200];
    snprintf(dir, sizeof dir, "%s/%s", root, sub);
    memset(c, 0, sizeof *c);
    c->prefix = "";
    if (!file_is_dir(dir)) {
        if (required) return err_fail(SD_ERR_MODEL, "%s: missing component folder %s/", root, sub);
        return SD_OK;
    }
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    const char *variants[2] = {"safetensors", "fp16.safetensors"};
    sd_status st = SD_ERR_IO;
    for (int i = 0; i < 2 && st != SD_OK; i++) {
        snprintf(p, sizeof p, "%s/%s.%s", dir, weights, variants[i]);
        if (!file_exists(p)) continue;
        if ((st = st_open(p, &c->file)) != SD_OK) return st; /* present but unreadable: say why */
    }
    if (st != SD_OK) {
        snprintf(p, sizeof p, "%s/%s.safetensors.index.json", dir, weights);
        if (file_exists(p)) return err_fail(SD_ERR_UNSUPPORTED, "%s: sharded weights are not supported yet; merge the shards into one .safetensors", p);
        snprintf(p, sizeof p, "%s/%s.bin", dir, weights);
        if (file_exists(p)) return model_files_refuse_pickle(p);
        return err_fail(SD_ERR_MODEL, "%s: no %s.safetensors in the component folder", dir, weights);
    }
    snprintf(p, sizeof p, "%s/%s", dir, config);
    if (file_exists(p)) {
        c->config = read_json(p, &st);
        if (!c->config) return st;
    }
    return SD_OK;
}

static sd_status open_vae_override(const char *path, model_component *c) {
    if (model_files_is_pickle(path)) return model_files_refuse_pickle(path);
    memset(c, 0, sizeof *c);
    sd_status st = st_open(path, &c->file);
    if (st != SD_OK) return st;
    if (has(c->file, "first_stage_model.decoder.conv_in.weight")) { c->prefix = "first_stage_model."; c->original_names = 1; }
    else if (has(c->file, "decoder.up.0.block.0.conv1.weight")) { c->prefix = ""; c->original_names = 1; }
    else if (has(c->file, "decoder.up_blocks.0.resnets.0.conv1.weight")) { c->prefix = ""; c->original_names = 0; }
    else return err_fail(SD_ERR_MODEL, "%s: no VAE decoder tensors found (expected decoder.* or first_stage_model.decoder.*)", path);
    return SD_OK;
}

/* "_sd_defaults" in model_index.json: the guidance scale and step count a model is meant to be sampled with (the
 * bundled demo model draws its shapes best at a low guidance). The leading underscore keeps diffusers from taking
 * the key for a pipeline component. Optional; a present but unusable value is an error, not silently ignored. */
static sd_status read_defaults(const char *file, const cJSON *idx, model_files *m) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(idx, "_sd_defaults");
    if (!d) return SD_OK;
    if (!cJSON_IsObject(d)) return err_fail(SD_ERR_MODEL, "%s: \"_sd_defaults\" must be an object", file);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(d, "guidance_scale");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(d, "num_inference_steps");
    if (g && !(cJSON_IsNumber(g) && g->valuedouble >= 1.0 && g->valuedouble <= 30.0))
        return err_fail(SD_ERR_MODEL, "%s: \"_sd_defaults\".guidance_scale must be a number from 1 to 30", file);
    if (n && !(cJSON_IsNumber(n) && n->valuedouble >= 1 && n->valuedouble <= 1000 && n->valuedouble == (double)(int)n->valuedouble))
        return err_fail(SD_ERR_MODEL, "%s: \"_sd_defaults\".num_inference_steps must be a whole number from 1 to 1000", file);
    if (g) m->default_cfg = (float)g->valuedouble;
    if (n) m->default_steps = (int)n->valuedouble;
    return SD_OK;
}

sd_status model_files_index_parse(const char *file, const char *json, size_t len, const char *folder, model_files *m) {
    cJSON *idx = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(idx)) {
        cJSON_Delete(idx);
        return err_fail(SD_ERR_FORMAT, "%s: not a JSON object", file);
    }
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(idx, "_class_name");
    char cname[128] = "";
    if (cJSON_IsString(cls)) snprintf(cname, sizeof cname, "%s", cls->valuestring);
    sd_status st = read_defaults(file, idx, m);
    cJSON_Delete(idx);
    if (st != SD_OK) return st;
    if (strncmp(cname, "StableDiffusion", 15) || strstr(cname, "StableDiffusion3") || strstr(cname, "Upscale") ||
        strstr(cname, "Cascade") || strstr(cname, "Video"))
        return err_fail(SD_ERR_UNSUPPORTED, "%s: %s models are not supported (SD 1.x, 2.x and SDXL pipelines are)", folder,
                       cname[0] ? cname : "unnamed");
    return SD_OK;
}

static sd_status open_folder(const char *path, model_files *m) {
    char p[4200];
    sd_status st;
    snprintf(p, sizeof p, "%s/model_index.json", path);
    if (!file_exists(p)) return err_fail(SD_ERR_MODEL, "%s: a folder without model_index.json is not a diffusers model", path);
    char *idx;
    size_t len;
    if ((st = file_read(p, 16u << 20, &idx, &len)) != SD_OK) return st;
    st = model_files_index_parse(p, idx, len, path, m);
    free(idx);
    if (st != SD_OK) return st;
    if ((st = open_component(path, "unet", "diffusion_pytorch_model", "config.json", &m->unet, 1)) != SD_OK) return st;
    if ((st = open_component(path, "vae", "diffusion_pytorch_model", "config.json", &m->vae, 1)) != SD_OK) return st;
    if ((st = open_component(path, "text_encoder", "model", "config.json", &m->te, 0)) != SD_OK) return st;
    if ((st = open_component(path, "text_encoder_2", "model", "config.json", &m->te2, 0)) != SD_OK) return st;
    if (!m->te.file && !m->te2.file) return err_fail(SD_ERR_MODEL, "%s: no text_encoder/ folder", path);
    snprintf(p, sizeof p, "%s/scheduler/scheduler_config.json", path);
    if (file_exists(p) && !(m->scheduler_config = read_json(p, &st))) return st;
    snprintf(p, sizeof p, "%s/tokenizer", path);
    if (file_is_dir(p)) snprintf(m->tokenizer_dir, sizeof m->tokenizer_dir, "%s", p);
    snprintf(p, sizeof p, "%s/tokenizer_2", path);
    if (file_is_dir(p)) snprintf(m->tokenizer2_dir, sizeof m->tokenizer2_dir, "%s", p);

    /* the few UNet settings needed before the UNet is built (unet_config.c reads them all, with the same ranges) */
    const cJSON *uc = m->unet.config;
    const cJSON *ctx = uc ? cJSON_GetObjectItemCaseSensitive(uc, "cross_attention_dim") : NULL;
    int cdim = 0;
    m->in_channels = 4;
    snprintf(p, sizeof p, "%s/config.json", m->unet.dir);
    if ((st = num_json_int(p, uc, "in_channels", 1, 1 << 20, &m->in_channels)) != SD_OK) return st;
    if ((st = num_json_int(p, uc, "sample_size", 1, UNET_MAX_SAMPLE_SIZE, &m->sample_size)) != SD_OK) return st;
    if (cJSON_IsNumber(ctx) && (st = num_json_int(p, uc, "cross_attention_dim", 1, 1 << 20, &cdim)) != SD_OK) return st;
    if (m->te2.file && m->te.file) { m->family = MODEL_FAMILY_SDXL; snprintf(m->family_reason, sizeof m->family_reason, "text_encoder_2/ present"); }
    else if (m->te2.file) { m->family = MODEL_FAMILY_SDXL_REFINER; snprintf(m->family_reason, sizeof m->family_reason, "only text_encoder_2/"); }
    else if (cdim == 1024) { m->family = MODEL_FAMILY_SD2; snprintf(m->family_reason, sizeof m->family_reason, "unet cross_attention_dim 1024"); }
    else { m->family = MODEL_FAMILY_SD1; snprintf(m->family_reason, sizeof m->family_reason, "unet cross_attention_dim %d", cdim ? cdim : 768); }
    const cJSON *pt = m->scheduler_config ? cJSON_GetObjectItemCaseSensitive(m->scheduler_config, "prediction_type") : NULL;
    if (cJSON_IsString(pt)) m->prediction = !strcmp(pt->valuestring, "v_prediction") ? MODEL_PRED_V : MODEL_PRED_EPS;
    return SD_OK;
}

static sd_status open_single(const char *path, model_files *m) {
    sd_status st = st_open(path, &m->single);
    if (st != SD_OK) return st;
    const st_file *f = m->single;
    const char *kind = unsupported_kind(f);
    if (kind) return err_fail(SD_ERR_UNSUPPORTED, "%s: this is %s; only Stable Diffusion 1.x, 2.x and SDXL checkpoints are supported", path, kind);
    m->family = model_family_detect(f, &m->in_channels, m->family_reason, sizeof m->family_reason);
    if (m->family == MODEL_FAMILY_UNKNOWN) {
        if (has(f, "decoder.conv_in.weight") || has(f, "decoder.up_blocks.0.resnets.0.conv1.weight"))
            return err_fail(SD_ERR_MODEL, "%s: this is a VAE alone; pass it with --vae next to a full model", path);
        return err_fail(SD_ERR_MODEL, "%s: not a Stable Diffusion checkpoint (no model.diffusion_model.* UNet tensors)", path);
    }
    model_component *cs[4] = {&m->unet, &m->vae, &m->te, &m->te2};
    for (int i = 0; i < 4; i++) { memset(cs[i], 0, sizeof *cs[i]); cs[i]->original_names = 1; }
    m->unet.file = m->single; m->unet.prefix = "model.diffusion_model.";
    m->vae.file = m->single; m->vae.prefix = "first_stage_model.";
    switch (m->family) {
    case MODEL_FAMILY_SD1:
        m->te.file = m->single;
        /* very old SD1 files lack the "text_model." level; the encoder's name map handles both under this prefix */
        m->te.prefix = "cond_stage_model.transformer.";
        break;
    case MODEL_FAMILY_SD2:
        m->te.file = m->single; m->te.prefix = "cond_stage_model.model.";
        break;
    case MODEL_FAMILY_SDXL:
        m->te.file = m->single; m->te.prefix = "conditioner.embedders.0.transformer.";
        m->te2.file = m->single; m->te2.prefix = "conditioner.embedders.1.model.";
        break;
    case MODEL_FAMILY_SDXL_REFINER:
        m->te2.file = m->single; m->te2.prefix = "conditioner.embedders.0.model.";
        break;
    default: break;
    }
    if (!has_prefix(f, "first_stage_model.")) m->vae.file = NULL; /* UNet-only files need --vae */
    if (has(f, "v_pred")) m->prediction = MODEL_PRED_V;
    const char *pt = st_meta(f, "modelspec.prediction_type");
    if (pt) m->prediction = !strcmp(pt, "v") || strstr(pt, "v_pred") ? MODEL_PRED_V : MODEL_PRED_EPS;
    return SD_OK;
}

sd_status model_files_open(const char *path, const char *vae_override, model_files *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    sd_status st;
    if (file_is_dir(path)) {
        m->is_folder = 1;
        st = open_folder(path, m);
    } else if (!file_exists(path)) {
        st = err_fail(SD_ERR_IO, "%s: no such file or folder", path);
    } else if (model_files_is_pickle(path)) {
        st = model_files_refuse_pickle(path);
    } else {
        st = open_single(path, m);
    }
    if (st == SD_OK && vae_override) {
        if (m->vae.file && m->vae.file != m->single) st_close(m->vae.file);
        cJSON_Delete(m->vae.config);
        memset(&m->vae, 0, sizeof m->vae); /* closed: a failed override must not leave it to be closed again */
        st = open_vae_override(vae_override, &m->vae);
    }
    if (st == SD_OK && !m->vae.file) st = err_fail(SD_ERR_MODEL, "%s: the checkpoint has no VAE (first_stage_model.*); pass one with --vae", path);
    if (st != SD_OK) model_files_close(m);
    return st;
}

void model_files_close(model_files *m) {
    model_component *cs[4] = {&m->unet, &m->vae, &m->te, &m->te2};
    for (int i = 0; i < 4; i++) {
        if (cs[i]->file && cs[i]->file != m->single) st_close(cs[i]->file);
        cJSON_Delete(cs[i]->config);
        cs[i]->file = NULL;
        cs[i]->config = NULL;
    }
    if (m->single) st_close(m->single);
    m->single = NULL;
    cJSON_Delete(m->scheduler_config);
    m->scheduler_config = NULL;
}

int model_files_default_steps(const model_files *m) { return m->default_steps ? m->default_steps : 20; }

float model_files_default_cfg(const model_files *m) {
    return m->default_cfg ? m->default_cfg : m->family == MODEL_FAMILY_SDXL ? 5.0f : 7.0f;
}
