/* random_ckpt.c — random-weight checkpoints with real layouts, streamed to a safetensors file. */
#include "random_ckpt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/half.h"

typedef struct { char name[256]; int nd; int64_t shape[8]; } key;
typedef struct { key *k; int n, cap; } keylist;

static key *push(keylist *l) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 2048;
        key *k = realloc(l->k, l->cap * sizeof *k);
        if (!k) return NULL;
        l->k = k;
    }
    memset(&l->k[l->n], 0, sizeof(key));
    return &l->k[l->n++];
}

/* Appends the keys of a "name<TAB>d0,d1,..." list (plain or gzip; '#' lines are comments) whose names start with
 * `from`, renamed to start with `to` instead. */
static sd_status read_keys(const char *path, const char *from, const char *to, keylist *l) {
    gzFile f = gzopen(path, "rb");
    if (!f) return err_fail(SD_ERR_IO, "%s: cannot open", path);
    char line[1024];
    size_t fl = strlen(from);
    while (gzgets(f, line, sizeof line)) {
        char *tab = strchr(line, '\t');
        if (line[0] == '#' || !tab || strncmp(line, from, fl)) continue;
        key *k = push(l);
        if (!k) { gzclose(f); return err_fail(SD_ERR_MEMORY, "out of memory"); }
        snprintf(k->name, sizeof k->name, "%s%.*s", to, (int)(tab - line - fl), line + fl);
        for (char *d = tab + 1; *d && *d != '\t' && *d != '\n' && k->nd < 8;) {
            k->shape[k->nd++] = strtoll(d, &d, 10);
            if (*d == ',') d++;
        }
    }
    gzclose(f);
    return SD_OK;
}

static uint64_t g_s;
static inline float uni(void) { /* xorshift64*, uniform in [-1, 1) */
    g_s ^= g_s >> 12; g_s ^= g_s << 25; g_s ^= g_s >> 27;
    return (float)((g_s * 2685821657736338717ull) >> 40) * (1.0f / 8388608.0f) - 1.0f;
}

static sd_status write_keys(const key *k, int n, const char *out_path, uint64_t seed, st_dtype dtype) {
    sd_status st;
    size_t es = st_dtype_size(dtype);
    cJSON *h = cJSON_CreateObject();
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, k[i].name);
        cJSON_AddStringToObject(e, "dtype", st_dtype_name(dtype));
        cJSON *s = cJSON_AddArrayToObject(e, "shape");
        uint64_t numel = 1;
        for (int d = 0; d < k[i].nd; d++) { cJSON_AddItemToArray(s, cJSON_CreateNumber((double)k[i].shape[d])); numel *= k[i].shape[d]; }
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        off += numel * es;
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
    }
    char *json = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t jl = strlen(json), padded = (jl + 7) & ~(size_t)7;
    file_writer w;
    if ((st = file_begin(&w, out_path)) != SD_OK) { free(json); return st; }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    file_write(&w, len8, 8);
    file_write(&w, json, jl);
    for (size_t i = jl; i < padded; i++) file_write(&w, " ", 1);
    free(json);
    g_s = seed * 0x9E3779B97F4A7C15ull + 1;
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap * es);
    for (int i = 0; i < n; i++) {
        uint64_t numel = 1, fan_in = 1;
        for (int d = 0; d < k[i].nd; d++) numel *= k[i].shape[d];
        for (int d = 1; d < k[i].nd; d++) fan_in *= k[i].shape[d];
        const char *nm = k[i].name;
        size_t ln = strlen(nm);
        int is_bias = ln > 4 && !strcmp(nm + ln - 4, "bias"); /* ".bias", and OpenCLIP's "in_proj_bias" */
        float scale, offset = 0;
        if (strstr(nm, "embedding")) scale = 0.03f;
        else if (k[i].nd >= 2) scale = 1.0f / sqrtf((float)fan_in);
        else if (is_bias) scale = 0.02f;
        else { scale = 0.0f; offset = 1.0f; } /* norm scales */
        for (uint64_t done = 0; done < numel;) {
            size_t m = numel - done < cap ? (size_t)(numel - done) : cap;
            for (size_t j = 0; j < m; j++) {
                float v = offset + scale * uni();
                if (dtype == ST_F16) { uint16_t hv = f32_to_f16(v); memcpy(buf + 2 * j, &hv, 2); }
                else if (dtype == ST_BF16) { uint16_t hv = f32_to_bf16(v); memcpy(buf + 2 * j, &hv, 2); }
                else memcpy(buf + 4 * j, &v, 4);
            }
            file_write(&w, buf, m * es);
            done += m;
        }
    }
    free(buf);
    return file_commit(&w);
}

sd_status random_ckpt_write(const char *keys_tsv, const char *out_path, uint64_t seed, st_dtype dtype) {
    keylist l = {0};
    sd_status st = read_keys(keys_tsv, "", "", &l);
    if (st == SD_OK) st = write_keys(l.k, l.n, out_path, seed, dtype);
    free(l.k);
    return st;
}

static const char *cache_path(const char *name, char *path, size_t cap) {
    const char *dir = getenv("SD_TEST_CACHE") ? getenv("SD_TEST_CACHE") : "build/cache";
    mkdir("build", 0755);
    mkdir(dir, 0755);
    snprintf(path, cap, "%s/%s", dir, name);
    return path;
}

const char *random_ckpt_sd15(const char *keys_tsv) {
    static char path[512];
    cache_path("random-sd15-f16-seed1.safetensors", path, sizeof path);
    if (file_exists(path)) return path;
    if (random_ckpt_write(keys_tsv, path, 1, ST_F16) != SD_OK) return NULL;
    return path;
}

/* OpenCLIP ViT-bigG/14's text tower under the names of SDXL base's single file (conditioner.embedders.1.model.). */
static sd_status openclip_g_keys(keylist *l) {
    enum { W = 1280, L = 32, MLP = 5120, VOCAB = 49408, CTX = 77 };
    static const char *const P = "conditioner.embedders.1.model.";
    static const struct { const char *n; int nd; int64_t s[2]; } top[] = {
        {"positional_embedding", 2, {CTX, W}}, {"text_projection", 2, {W, W}}, {"token_embedding.weight", 2, {VOCAB, W}},
        {"ln_final.weight", 1, {W}}, {"ln_final.bias", 1, {W}}, {"logit_scale", 0, {0}},
    };
    static const struct { const char *n; int nd; int64_t s[2]; } blk[] = {
        {"ln_1.weight", 1, {W}}, {"ln_1.bias", 1, {W}}, {"attn.in_proj_weight", 2, {3 * W, W}}, {"attn.in_proj_bias", 1, {3 * W}},
        {"attn.out_proj.weight", 2, {W, W}}, {"attn.out_proj.bias", 1, {W}}, {"ln_2.weight", 1, {W}}, {"ln_2.bias", 1, {W}},
        {"mlp.c_fc.weight", 2, {MLP, W}}, {"mlp.c_fc.bias", 1, {MLP}}, {"mlp.c_proj.weight", 2, {W, MLP}}, {"mlp.c_proj.bias", 1, {W}},
    };
    for (size_t i = 0; i < sizeof top / sizeof *top; i++) {
        key *k = push(l);
        if (!k) return err_fail(SD_ERR_MEMORY, "out of memory");
        snprintf(k->name, sizeof k->name, "%s%s", P, top[i].n);
        k->nd = top[i].nd;
        memcpy(k->shape, top[i].s, sizeof top[i].s);
    }
    for (int b = 0; b < L; b++)
        for (size_t i = 0; i < sizeof blk / sizeof *blk; i++) {
            key *k = push(l);
            if (!k) return err_fail(SD_ERR_MEMORY, "out of memory");
            snprintf(k->name, sizeof k->name, "%stransformer.resblocks.%d.%s", P, b, blk[i].n);
            k->nd = blk[i].nd;
            memcpy(k->shape, blk[i].s, sizeof blk[i].s);
        }
    return SD_OK;
}

const char *random_ckpt_sdxl(const char *data_dir) {
    static char path[512];
    cache_path("random-sdxl-f16-seed1.safetensors", path, sizeof path);
    if (file_exists(path)) return path;
    char unet[600], sd15[600];
    snprintf(unet, sizeof unet, "%s/unet-keys-sdxl-ldm.tsv.gz", data_dir);
    snprintf(sd15, sizeof sd15, "%s/sd15-ldm-keys.tsv", data_dir);
    keylist l = {0};
    sd_status st = read_keys(unet, "model.diffusion_model.", "model.diffusion_model.", &l);
    if (st == SD_OK) st = read_keys(sd15, "cond_stage_model.transformer.", "conditioner.embedders.0.transformer.", &l);
    if (st == SD_OK) st = openclip_g_keys(&l);
    if (st == SD_OK) st = read_keys(sd15, "first_stage_model.", "first_stage_model.", &l); /* SDXL's VAE has SD's architecture */
    if (st == SD_OK) st = write_keys(l.k, l.n, path, 1, ST_F16);
    free(l.k);
    return st == SD_OK ? path : NULL;
}
