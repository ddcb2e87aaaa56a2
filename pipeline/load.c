/* load.c — sd_load / sd_free: open the files, pick the backend, load text encoders, UNet and VAE. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/sha256.h"
#include "../scheduler/sampler.h"
#include "embeddings.h"
#include "lora.h"
#include "control.h"
#include "pipeline.h"

#ifndef SD_SOURCE_DIR
#define SD_SOURCE_DIR "."
#endif

#define TRY(x) do { sd_status st_ = (x); if (st_ != SD_OK) return st_; } while (0)

/* The bundled demo model: $SD_MODEL, else next to the executable, else in the source tree it was built from. */
static const char *default_model(char *buf, size_t cap) {
    const char *env = getenv("SD_MODEL");
    if (env && *env) return env;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        const char *dir = dirname(exe);
        const char *rel[] = {"samples/models/shapes", "../samples/models/shapes", "../share/sd/models/shapes"};
        for (int i = 0; i < 3; i++) {
            snprintf(buf, cap, "%s/%s", dir, rel[i]);
            if (file_is_dir(buf)) return buf;
        }
    }
    snprintf(buf, cap, "%s/samples/models/shapes", SD_SOURCE_DIR);
    return buf;
}

void sd_model_name(const char *path, char *out, size_t cap) {
    char dm[4096], tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path ? path : default_model(dm, sizeof dm));
    size_t l = strlen(tmp);
    while (l > 1 && tmp[l - 1] == '/') tmp[--l] = 0;
    const char *base = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp;
    snprintf(out, cap, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && (!strcmp(dot, ".safetensors") || !strcmp(dot, ".sft"))) *dot = 0;
}

static sd_status component_config_path(const model_component *c, const char *file, char *buf, size_t cap) {
    if (!c->dir[0]) return SD_ERR_IO;
    snprintf(buf, cap, "%s/%s", c->dir, file);
    return file_exists(buf) ? SD_OK : SD_ERR_IO;
}

/* Reports tensors of a component that no loader asked for. */
static sd_status check_unused(const wmap *m, const char *what, const char *path) {
    char names[512];
    int n = wmap_unused(m, names, sizeof names);
    if (n) return err_fail(SD_ERR_MODEL, "%s: %d unexpected %s tensor%s: %s", path, n, what, n > 1 ? "s" : "", names);
    return SD_OK;
}

/* The model folders' loaders name tensors, not files (they read a weight map, not a path): a failure there gets
 * the weights file in front, unless the message names it already (a dtype error from the file reader). */
static sd_status in_file(sd_status st, const st_file *f) {
    if (st != SD_OK && st != SD_ERR_MEMORY && !strstr(sd_last_error(), st_path(f))) err_prefix("%s", st_path(f));
    return st;
}

static sd_status load_text_encoder(sd_ctx *ctx, const model_component *c, clip_model *out, int sd2, int with_projection, int part) {
    wmap *m = wmap_new();
    if (m) wmap_record(m, lora_sources(ctx->lora, part)); /* what LoRAs merge into */
    sd_status st = clip_add_file(m, c->file, c->prefix, CLIP_LAYOUT_AUTO);
    clip_config cfg;
    char cp[4200];
    if (st == SD_OK)
        st = component_config_path(c, "config.json", cp, sizeof cp) == SD_OK ? clip_config_from_json(cp, &cfg) : in_file(clip_config_infer(m, &cfg), c->file);
    if (st == SD_OK && sd2 && cfg.layers == 24) { /* original OpenCLIP-H: SD 2 uses the penultimate block's output */
        cfg.layers = 23;
        cfg.proj_dim = 0;
    }
    if (st == SD_OK && !with_projection) cfg.proj_dim = 0;
    if (st == SD_OK) st = in_file(clip_load(ctx->b, m, &cfg, out), c->file);
    if (st == SD_OK) st = check_unused(m, "text encoder", st_path(c->file));
    wmap_free(m);
    return st;
}

static sd_status load_tokenizer(const char *dir, clip_tokenizer **out) {
    *out = NULL;
    if (!dir[0]) return SD_OK;
    char v[4200], mg[4200];
    snprintf(v, sizeof v, "%s/vocab.json", dir);
    snprintf(mg, sizeof mg, "%s/merges.txt", dir);
    if (!file_exists(v) || !file_exists(mg)) return SD_OK; /* use the embedded CLIP vocabulary */
    return clip_tokenizer_load(v, mg, out);
}

static sd_status load_unet(sd_ctx *ctx) {
    const model_component *c = &ctx->files.unet;
    wmap *m = wmap_new();
    if (m) wmap_record(m, lora_sources(ctx->lora, LORA_UNET));
    sd_status st = unet_add_tensors(m, c->file, c->original_names ? UNET_NAMES_LDM : UNET_NAMES_DIFFUSERS, c->prefix);
    unet_config cfg;
    char cp[4200];
    if (st == SD_OK)
        st = component_config_path(c, "config.json", cp, sizeof cp) == SD_OK ? unet_config_from_file(cp, &cfg) : in_file(unet_config_infer(m, &cfg), c->file);
    if (st == SD_OK) st = in_file(unet_load(ctx->b, m, &cfg, &ctx->unet), c->file);
    wmap_free(m);
    return st;
}

static sd_status load_vae(sd_ctx *ctx) {
    const model_component *c = &ctx->files.vae;
    wmap *m = wmap_new();
    sd_status st = vae_add_weights(m, c->file, c->prefix, VAE_LAYOUT_AUTO);
    vae_config cfg;
    char cp[4200];
    if (st == SD_OK) {
        if (component_config_path(c, "config.json", cp, sizeof cp) == SD_OK) {
            st = vae_config_from_json(cp, &cfg);
        } else {
            st = in_file(vae_config_infer(m, &cfg), c->file);
            if (ctx->files.family == MODEL_FAMILY_SDXL || ctx->files.family == MODEL_FAMILY_SDXL_REFINER) cfg.scaling_factor = VAE_SCALING_SDXL;
        }
    }
    if (st == SD_OK) st = in_file(vae_load(ctx->vb, m, &cfg, VAE_DECODER | VAE_ENCODER, &ctx->vae), c->file);
    if (st == SD_OK) st = check_unused(m, "VAE", st_path(c->file));
    wmap_free(m);
    return st;
}

/* The model's scheduler config (each sampler reads it as its diffusers class would: scheduler/sched_model.h);
 * without one, SD's schedule, and "leading" spacing for SDXL as diffusers' single-file loader gives it. */
static sd_status read_scheduler_config(sd_ctx *ctx) {
    const model_files *f = &ctx->files;
    if (!f->scheduler_config) {
        sched_model_default(&ctx->sched, f->family == MODEL_FAMILY_SDXL);
        return SD_OK;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", f->path);
    return sched_model_parse(f->scheduler_config, path, &ctx->sched);
}

static sd_status load_all(sd_ctx *ctx, const sd_load_params *p) {
    model_files *f = &ctx->files;
    model_family fam = f->family;
    TRY(read_scheduler_config(ctx));
    if (fam == MODEL_FAMILY_SDXL_REFINER) return err_fail(SD_ERR_UNSUPPORTED, "%s: SDXL refiner checkpoints are not supported yet (use an SDXL base model)", f->path);
    if (p->prediction && strcmp(p->prediction, "auto")) {
        if (!strcmp(p->prediction, "eps")) ctx->prediction = MODEL_PRED_EPS;
        else if (!strcmp(p->prediction, "v")) ctx->prediction = MODEL_PRED_V;
        else return err_fail(SD_ERR_ARG, "unknown prediction type \"%s\" (valid: auto, eps, v)", p->prediction);
    } else {
        ctx->prediction = f->prediction == MODEL_PRED_V ? MODEL_PRED_V : MODEL_PRED_EPS;
    }
    TRY(load_tokenizer(f->tokenizer_dir, &ctx->tok));
    TRY(load_tokenizer(f->tokenizer2_dir, &ctx->tok2));
    ctx->pad_zero = fam == MODEL_FAMILY_SD2;
    if (f->te.file) {
        TRY(load_text_encoder(ctx, &f->te, &ctx->te, fam == MODEL_FAMILY_SD2, 0, LORA_TE));
        ctx->has_te = 1;
    }
    if (f->te2.file) {
        TRY(load_text_encoder(ctx, &f->te2, &ctx->te2, 0, 1, LORA_TE2));
        ctx->has_te2 = 1;
    }
    TRY(load_unet(ctx));
    TRY(load_vae(ctx));
    /* the text context must be what the UNet's cross-attention reads */
    const unet_config *uc = unet_get_config(ctx->unet);
    int ctx_dim = (ctx->has_te ? ctx->te.cfg.width : 0) + (fam == MODEL_FAMILY_SDXL ? ctx->te2.cfg.width : 0);
    if (ctx_dim != uc->ctx_dim)
        return err_fail(SD_ERR_MODEL, "%s: the text encoder gives %d-wide states but the UNet's cross-attention reads %d", f->path, ctx_dim, uc->ctx_dim);
    if (uc->in_channels != 4 && uc->in_channels != 9)
        return err_fail(SD_ERR_UNSUPPORTED, "%s: UNets with %d input channels are not supported (4, or 9 for inpainting)", f->path, uc->in_channels);
    return SD_OK;
}

/* CUDA when asked for, or by default when a GPU is present (f16 activations); the CPU otherwise. The SDXL VAE
 * overflows f16 (diffusers' force_upcast), so on CUDA it gets a second backend instance on the same device
 * with f32 storage. Verbose mode names the backend on stderr. */
static sd_status pick_backend(sd_ctx *ctx, const sd_load_params *p) {
    if (p->backend == SD_BACKEND_CUDA || (p->backend == SD_BACKEND_AUTO && be_cuda_available())) {
        ctx->b = be_cuda_new(0, BE_F16);
        if (!ctx->b && p->backend == SD_BACKEND_CUDA) {
            err_prefix("--backend cuda");
            return SD_ERR_UNSUPPORTED;
        }
        if (!ctx->b && p->verbose) fprintf(stderr, "backend: CUDA device unusable (%s), using the CPU\n", sd_last_error());
    }
    if (ctx->b && (ctx->files.family == MODEL_FAMILY_SDXL || ctx->files.family == MODEL_FAMILY_SDXL_REFINER)) {
        ctx->vb = be_cuda_new(0, BE_F32);
        if (!ctx->vb) return SD_ERR_BACKEND;
    }
    if (!ctx->b) ctx->b = be_cpu_new(p->threads);
    if (!ctx->b) return SD_ERR_MEMORY;
    if (!ctx->vb) ctx->vb = ctx->b;
    if (p->verbose) {
        const char *gpu = be_cuda_device_name(ctx->b);
        if (!gpu && !strcmp(ctx->b->ops->name, "cpu")) fprintf(stderr, "backend: cpu (%s kernels)\n", be_cpu_level());
        else if (!gpu) fprintf(stderr, "backend: %s\n", ctx->b->ops->name);
        else fprintf(stderr, "backend: cuda (%s), f16 activations%s\n", gpu, ctx->vb != ctx->b ? ", VAE in f32" : "");
    }
    return SD_OK;
}

sd_status sd_load(const sd_load_params *p, sd_ctx **out) {
    *out = NULL;
    char dm[4096];
    const char *path = p->model_path ? p->model_path : default_model(dm, sizeof dm);
    sd_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return err_fail(SD_ERR_MEMORY, "out of memory");
    ctx->verbose = p->verbose;
    if (!(ctx->lora = lora_state_new())) { free(ctx); return err_fail(SD_ERR_MEMORY, "out of memory"); }
    sd_status st = model_files_open(path, p->vae_path, &ctx->files);
    if (st != SD_OK) { lora_state_free(ctx->lora); free(ctx); return st; }
    if ((st = pick_backend(ctx, p)) != SD_OK) { sd_free(ctx); return st; }
    if ((st = load_all(ctx, p)) != SD_OK) { sd_free(ctx); return st; }
    if (p->taesd_path && (st = tiny_load(ctx, p->taesd_path, p->taesd_preview_only)) != SD_OK) { sd_free(ctx); return st; }

    sd_model_name(path, ctx->name, sizeof ctx->name);
    sd_model_info *i = &ctx->info;
    i->name = ctx->name;
    i->family = model_family_name(ctx->files.family);
    i->prediction = ctx->prediction == MODEL_PRED_V ? "v" : "epsilon";
    i->backend = ctx->b->ops->name;
    i->inpainting = unet_get_config(ctx->unet)->in_channels == 9;
    int sample = unet_get_config(ctx->unet)->sample_size;
    int factor = vae_factor(ctx->vae);
    int size = ctx->files.family == MODEL_FAMILY_SDXL ? 1024 : ctx->files.family == MODEL_FAMILY_SD2 && ctx->prediction == MODEL_PRED_V ? 768 : 512;
    if (sample > 0) size = sample * factor;
    i->default_width = i->default_height = size;
    i->default_steps = model_files_default_steps(&ctx->files);
    i->default_cfg = model_files_default_cfg(&ctx->files);
    i->default_sampler = "euler_a";
    i->default_scheduler = "discrete";
    i->taesd = ctx->taesd ? ctx->taesd_name : NULL;
    i->taesd_decodes = ctx->taesd_decodes;
    if (p->verbose)
        fprintf(stderr, "model: %s (%s, %s prediction, %dx%d), weights %.1f MiB on %s\n", i->name, i->family, i->prediction, size,
                size, (ctx->b->weight_bytes + (ctx->vb != ctx->b ? ctx->vb->weight_bytes : 0)) / 1048576.0, i->backend);
    *out = ctx;
    return SD_OK;
}

void sd_free(sd_ctx *ctx) {
    if (!ctx) return;
    if (ctx->b) {
        control_models_free(ctx);
        if (ctx->has_te) clip_free(ctx->b, &ctx->te);
        if (ctx->has_te2) clip_free(ctx->b, &ctx->te2);
        if (ctx->unet) unet_free(ctx->b, ctx->unet);
        if (ctx->vae) vae_free(ctx->vae);
        taesd_free(ctx->taesd);
        if (ctx->vb && ctx->vb != ctx->b) be_free(ctx->vb);
        be_free(ctx->b);
    }
    clip_tokenizer_free(ctx->tok);
    clip_tokenizer_free(ctx->tok2);
    lora_state_free(ctx->lora);
    emb_state_free(ctx->emb);
    model_files_close(&ctx->files);
    free(ctx);
}

const sd_model_info *sd_model(const sd_ctx *ctx) { return &ctx->info; }

/* Hashing a multi-gigabyte checkpoint takes seconds, so hashes are remembered per (path, size, mtime) in
 * $XDG_CACHE_HOME/sd/hashes.tsv (~/.cache/sd), as AUTOMATIC1111 keeps its cache.json. */
static void hash_cache_path(char *buf, size_t cap) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(buf, cap, "%s/sd", xdg);
    else if (home && *home) snprintf(buf, cap, "%s/.cache/sd", home);
    else buf[0] = 0;
}

int hash_cache_get(const char *key, char hex[65]) {
    char dir[4096], path[4200], line[8192];
    hash_cache_path(dir, sizeof dir);
    if (!dir[0]) return 0;
    snprintf(path, sizeof path, "%s/hashes.tsv", dir);
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    int found = 0;
    size_t kl = strlen(key);
    while (!found && fgets(line, sizeof line, fp))
        if (!strncmp(line, key, kl) && line[kl] == '\t' && strlen(line + kl + 1) >= 64) {
            memcpy(hex, line + kl + 1, 64);
            hex[64] = 0;
            found = 1;
        }
    fclose(fp);
    return found;
}

void hash_cache_put(const char *key, const char hex[65]) {
    char dir[4096], path[4200];
    hash_cache_path(dir, sizeof dir);
    if (!dir[0]) return;
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    mkdir(dirname(parent), 0755);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/hashes.tsv", dir);
    FILE *fp = fopen(path, "a"); /* one short line per append: concurrent writers do not tear it */
    if (!fp) return;
    fprintf(fp, "%s\t%s\n", key, hex);
    fclose(fp);
}

const char *sd_model_hash(sd_ctx *ctx) {
    if (!ctx->hash_done) {
        ctx->hash_done = 1;
        char hex[65], key[4400], real[4096];
        /* A1111 hashes the checkpoint file; a diffusers folder has none, so hash its UNet weights */
        const char *file = ctx->files.single ? st_path(ctx->files.single) : st_path(ctx->files.unet.file);
        struct stat sb;
        int keyed = realpath(file, real) && stat(real, &sb) == 0;
        if (keyed) snprintf(key, sizeof key, "%s\t%lld\t%lld", real, (long long)sb.st_size, (long long)sb.st_mtime);
        if (keyed && hash_cache_get(key, hex)) {
            snprintf(ctx->hash, sizeof ctx->hash, "%.10s", hex);
        } else if (sd_sha256_file(file, hex) == SD_OK) {
            snprintf(ctx->hash, sizeof ctx->hash, "%.10s", hex);
            if (keyed) hash_cache_put(key, hex);
        } else {
            ctx->hash[0] = 0;
        }
    }
    return ctx->hash[0] ? ctx->hash : NULL;
}
