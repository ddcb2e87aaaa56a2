/* random_ckpt.c — random-weight checkpoints with real layouts, streamed to a safetensors file. */
#include "random_ckpt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/half.h"

typedef struct { char name[256]; int nd; int64_t shape[8]; } key;

static sd_status read_keys(const char *path, key **out, int *n) {
    char *txt;
    sd_status st = file_read(path, 16u << 20, &txt, NULL);
    if (st != SD_OK) return st;
    int cap = 2048, cnt = 0;
    key *k = malloc(cap * sizeof *k);
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        if (cnt == cap) k = realloc(k, (cap *= 2) * sizeof *k);
        snprintf(k[cnt].name, sizeof k[cnt].name, "%.*s", (int)(tab - line), line);
        k[cnt].nd = 0;
        for (char *d = tab + 1; *d && *d != '\t' && k[cnt].nd < 8;) {
            k[cnt].shape[k[cnt].nd++] = strtoll(d, &d, 10);
            if (*d == ',') d++;
        }
        cnt++;
    }
    free(txt);
    *out = k;
    *n = cnt;
    return SD_OK;
}

static uint64_t g_s;
static inline float uni(void) { /* xorshift64*, uniform in [-1, 1) */
    g_s ^= g_s >> 12; g_s ^= g_s << 25; g_s ^= g_s >> 27;
    return (float)((g_s * 2685821657736338717ull) >> 40) * (1.0f / 8388608.0f) - 1.0f;
}

sd_status random_ckpt_write(const char *keys_tsv, const char *out_path, uint64_t seed, st_dtype dtype) {
    key *k;
    int n;
    sd_status st = read_keys(keys_tsv, &k, &n);
    if (st != SD_OK) return st;
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
    if ((st = file_begin(&w, out_path)) != SD_OK) { free(json); free(k); return st; }
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
        int is_bias = ln > 5 && !strcmp(nm + ln - 5, ".bias");
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
    free(k);
    return file_commit(&w);
}

const char *random_ckpt_sd15(const char *keys_tsv) {
    static char path[512];
    const char *dir = getenv("SD_TEST_CACHE") ? getenv("SD_TEST_CACHE") : "build/cache";
    mkdir("build", 0755);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/random-sd15-f16-seed1.safetensors", dir);
    if (file_exists(path)) return path;
    if (random_ckpt_write(keys_tsv, path, 1, ST_F16) != SD_OK) return NULL;
    return path;
}
