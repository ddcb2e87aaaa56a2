/* tiny.c — TAESD in the pipeline: finding its files (one file, the original decoder + encoder pair, or a diffusers
 * folder), loading it beside the model, describing it for `sd info`, and decoding / encoding with it within the
 * activation budget. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "gen.h"

/* Activation memory a TAESD decode or encode may use before it runs in row bands: on the CPU the activations are
 * the process's RAM (a 1024² decode runs whole in ~0.8 GiB, 2048² in bands); a GPU gets more room. */
#define TINY_MEM_CPU ((size_t)1 << 30)
#define TINY_MEM_GPU ((size_t)2 << 30)

size_t tiny_mem_limit(const be *b) { return b->ops->host_memory ? TINY_MEM_CPU : TINY_MEM_GPU; }

sd_status gen_arena_ensure(be *b, size_t bytes) {
    if (bytes <= b->arena.size) return SD_OK;
    return be_arena_reserve(b, bytes + (bytes >> 4));
}

/* The files of a TAESD at `path`. */
typedef struct tiny_files {
    st_file *f[2];
    taesd_names names[2];
    int n, parts;
    float scaling, shift;
    char label[4096];      /* what to call it in messages: the file or folder given */
} tiny_files;

static void files_close(tiny_files *t) {
    for (int i = 0; i < t->n; i++) st_close(t->f[i]);
    t->n = 0;
}

static sd_status add_file(tiny_files *t, const char *path) {
    st_file *f;
    sd_status st = st_open(path, &f);
    if (st != SD_OK) return st;
    int parts;
    taesd_names names = taesd_detect(f, &parts);
    if (names == TAESD_NOT) {
        st_close(f);
        return err_fail(SD_ERR_MODEL, "%s: not a TAESD (no decoder.layers.*, encoder.layers.* or taesd.py layer names)", path);
    }
    t->f[t->n] = f;
    t->names[t->n++] = names;
    t->parts |= parts;
    return SD_OK;
}

/* The original taesd.py files come as a pair: given one ("taesd_decoder.safetensors"), the other beside it. */
static void add_sibling(tiny_files *t, const char *path) {
    const char *from = t->names[0] == TAESD_NAMES_DECODER ? "decoder" : t->names[0] == TAESD_NAMES_ENCODER ? "encoder" : NULL;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path, *at = from ? strstr(base, from) : NULL;
    if (!at) return;
    char other[4200];
    snprintf(other, sizeof other, "%.*s%s%s", (int)(at - path), path, t->names[0] == TAESD_NAMES_DECODER ? "encoder" : "decoder", at + 7);
    if (!file_exists(other) || file_is_dir(other)) return;
    if (add_file(t, other) != SD_OK || t->names[1] == t->names[0]) { /* not the other half: ignore it */
        if (t->n == 2) { st_close(t->f[1]); t->n = 1; }
        t->parts = t->names[0] == TAESD_NAMES_DECODER ? TAESD_DECODER : TAESD_ENCODER;
        err_clear();
    }
}

static sd_status read_config(tiny_files *t, const char *path) {
    char *txt;
    sd_status st = file_read(path, 1 << 20, &txt, NULL);
    if (st != SD_OK) return st;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    if (!cJSON_IsObject(j)) { cJSON_Delete(j); return err_fail(SD_ERR_FORMAT, "%s: not a JSON object", path); }
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(j, "_class_name");
    const cJSON *sf = cJSON_GetObjectItemCaseSensitive(j, "scaling_factor"), *sh = cJSON_GetObjectItemCaseSensitive(j, "shift_factor");
    if (cJSON_IsString(cls) && strcmp(cls->valuestring, "AutoencoderTiny"))
        st = err_fail(SD_ERR_MODEL, "%s: a %s, not an AutoencoderTiny (TAESD)", path, cls->valuestring);
    if (cJSON_IsNumber(sf)) t->scaling = (float)sf->valuedouble;
    if (cJSON_IsNumber(sh)) t->shift = (float)sh->valuedouble;
    cJSON_Delete(j);
    return st;
}

static sd_status files_open(const char *path, tiny_files *t) {
    memset(t, 0, sizeof *t);
    t->scaling = 1.0f;
    snprintf(t->label, sizeof t->label, "%s", path);
    if (!file_exists(path)) return err_fail(SD_ERR_IO, "%s: no such file or folder", path);
    sd_status st;
    if (file_is_dir(path)) { /* a diffusers AutoencoderTiny folder (the vae/ of a pipeline, or madebyollin/taesd) */
        char p[4200];
        const char *names[2] = {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"};
        int found = 0;
        for (int i = 0; i < 2 && !found; i++) {
            snprintf(p, sizeof p, "%s/%s", path, names[i]);
            found = file_exists(p);
        }
        if (!found) return err_fail(SD_ERR_MODEL, "%s: no diffusion_pytorch_model.safetensors in the folder", path);
        if ((st = add_file(t, p)) != SD_OK) return st;
        snprintf(p, sizeof p, "%s/config.json", path);
        if (file_exists(p) && (st = read_config(t, p)) != SD_OK) { files_close(t); return st; }
        return SD_OK;
    }
    if ((st = add_file(t, path)) != SD_OK) return st;
    add_sibling(t, path);
    return SD_OK;
}

/* "taesdxl" in the file or folder name: the names and shapes of the SD and SDXL TAESDs are the same. */
static const char *family_hint(const char *path) {
    char low[4096];
    size_t i = 0;
    for (; path[i] && i + 1 < sizeof low; i++) low[i] = (char)tolower((unsigned char)path[i]);
    low[i] = 0;
    if (strstr(low, "taesdxl") || strstr(low, "taesd_xl") || strstr(low, "taesd-xl")) return "SDXL";
    if (strstr(low, "taesd3") || strstr(low, "taef1")) return "SD3 / Flux (16 latent channels)";
    if (strstr(low, "taesd")) return "SD 1.x / 2.x";
    return NULL;
}

sd_status tiny_load(sd_ctx *c, const char *path, int preview_only) {
    tiny_files t;
    sd_status st = files_open(path, &t);
    if (st != SD_OK) return st;
    wmap *m = wmap_new();
    if (!m) st = err_fail(SD_ERR_MEMORY, "out of memory");
    for (int i = 0; i < t.n && st == SD_OK; i++) st = taesd_add_weights(m, t.f[i], t.names[i]);
    if (st == SD_OK) st = taesd_load(c->b, m, t.scaling, t.shift, &c->taesd);
    char unused[512];
    int nu = st == SD_OK ? wmap_unused(m, unused, sizeof unused) : 0;
    if (nu) st = err_fail(SD_ERR_MODEL, "%d unexpected tensor%s: %s", nu, nu > 1 ? "s" : "", unused);
    int lc = unet_get_config(c->unet)->out_channels;
    if (st == SD_OK && taesd_latent_channels(c->taesd) != lc)
        st = err_fail(SD_ERR_MODEL, "it works on %d latent channels but the model's latents have %d (a TAESD for another family)",
                      taesd_latent_channels(c->taesd), lc);
    if (st == SD_OK && taesd_factor(c->taesd) != vae_factor(c->vae))
        st = err_fail(SD_ERR_MODEL, "it scales by %d but the model's VAE by %d", taesd_factor(c->taesd), vae_factor(c->vae));
    if (st == SD_OK && !preview_only && !(taesd_parts(c->taesd) & TAESD_DECODER))
        st = err_fail(SD_ERR_MODEL, "it has no decoder (an encoder file alone decodes nothing)");
    wmap_free(m);
    files_close(&t);
    if (st != SD_OK) {
        err_prefix("%s", path);
        taesd_free(c->taesd);
        c->taesd = NULL;
        return st;
    }
    c->taesd_decodes = !preview_only;
    const char *base = strrchr(path, '/') && strrchr(path, '/')[1] ? strrchr(path, '/') + 1 : path;
    snprintf(c->taesd_name, sizeof c->taesd_name, "%s", base);
    char *dot = strrchr(c->taesd_name, '.');
    if (dot && !strcmp(dot, ".safetensors")) *dot = 0;
    const char *hint = family_hint(path);
    if (c->verbose && hint && strcmp(hint, c->files.family == MODEL_FAMILY_SDXL ? "SDXL" : "SD 1.x / 2.x"))
        fprintf(stderr, "warning: %s looks like a TAESD for %s by its name, but the model is %s\n", path, hint, model_family_name(c->files.family));
    return SD_OK;
}

int tiny_detect(const char *path) {
    tiny_files t;
    if (files_open(path, &t) != SD_OK) {
        err_clear();
        return 0;
    }
    files_close(&t);
    return 1;
}

sd_status tiny_describe(const char *path, FILE *out) {
    tiny_files t;
    sd_status st = files_open(path, &t);
    if (st != SD_OK) return st;
    wmap *m = wmap_new();
    be *b = be_cpu_new(1);
    taesd_model *tm = NULL;
    if (!m || !b) st = err_fail(SD_ERR_MEMORY, "out of memory");
    for (int i = 0; i < t.n && st == SD_OK; i++) st = taesd_add_weights(m, t.f[i], t.names[i]);
    if (st == SD_OK) st = taesd_load(b, m, t.scaling, t.shift, &tm);
    if (st == SD_OK) {
        static const char *const naming[] = {"", "diffusers (AutoencoderTiny)", "original taesd.py decoder", "original taesd.py encoder",
                                             "ComfyUI combined"};
        int64_t params = 0;
        for (int i = 0; i < t.n; i++)
            for (int k = 0; k < st_count(t.f[i]); k++) params += st_at(t.f[i], k)->numel;
        char d[512];
        taesd_describe(tm, d, sizeof d);
        const char *hint = family_hint(path);
        fprintf(out, "%s: TAESD tiny autoencoder (%s names%s)\n", path, naming[t.names[0]], t.n > 1 ? ", decoder and encoder files" : "");
        fprintf(out, "  parts         %s\n", taesd_parts(tm) == (TAESD_DECODER | TAESD_ENCODER) ? "decoder and encoder"
                                         : taesd_parts(tm) & TAESD_DECODER ? "decoder only" : "encoder only");
        fprintf(out, "  latents       %d channels, %dx smaller than the picture, scaling factor %g\n", taesd_latent_channels(tm), taesd_factor(tm),
                (double)t.scaling);
        fprintf(out, "  layers        %s\n", d);
        fprintf(out, "  parameters    %.2f M\n", params / 1e6);
        fprintf(out, "  family        %s\n", hint ? hint : "not in its name (taesd: SD 1.x / 2.x; taesdxl: SDXL; the weights cannot tell)");
        fprintf(out, "  use           sd --taesd %s (decoder; encoder for img2img) or --preview-method taesd\n", path);
    }
    taesd_free(tm);
    be_free(b);
    wmap_free(m);
    files_close(&t);
    return st;
}

int tiny_encodes(const sd_ctx *c) { return c->taesd && c->taesd_decodes && (taesd_parts(c->taesd) & TAESD_ENCODER); }

sd_status tiny_prepare(gen *g, size_t guided_need) {
    sd_ctx *c = g->c;
    if (g->init_kind != GEN_INIT_IMAGE || !tiny_encodes(c)) return SD_OK;
    size_t enc = taesd_encode_arena_bytes(c->b, c->taesd, g->H, g->W, tiny_mem_limit(c->b));
    return enc ? gen_arena_ensure(c->b, guided_need + enc) : SD_ERR_ARG;
}

sd_status tiny_decode(sd_ctx *c, const float *x, int n, int h, int w, float *rgb) {
    size_t lim = tiny_mem_limit(c->b);
    size_t need = taesd_decode_arena_bytes(c->b, c->taesd, h, w, lim);
    if (!need) return SD_ERR_MEMORY;
    sd_status st = gen_arena_ensure(c->b, c->b->arena.used + need);
    return st == SD_OK ? taesd_decode(c->b, c->taesd, x, n, h, w, lim, rgb) : st;
}

sd_status tiny_encode(sd_ctx *c, const float *img, int H, int W, float *latent) {
    size_t lim = tiny_mem_limit(c->b);
    size_t need = taesd_encode_arena_bytes(c->b, c->taesd, H, W, lim);
    if (!need) return SD_ERR_ARG;
    sd_status st = gen_arena_ensure(c->b, c->b->arena.used + need);
    return st == SD_OK ? taesd_encode(c->b, c->taesd, img, 1, H, W, lim, latent) : st;
}
