/* lora_names.c — which layer of the loaded model an adapter module changes, and which family a file was made for.
 *
 * Every layout names the layer it changes after the model's own module path; they differ in the part's prefix and
 * the spelling: kohya-ss / AUTOMATIC1111 "lora_unet_down_blocks_0_..._to_q" ('_' for '.', SDXL files after the LDM
 * blocks: "lora_unet_input_blocks_4_1_..."), "lora_te_" / "lora_te1_" / "lora_te2_" for the text encoders;
 * diffusers / PEFT "unet.down_blocks.0....to_q", "text_encoder." / "text_encoder_2.". Spelling both sides with '_'
 * makes them comparable (no two layers of an SD model differ only there). */
#include <stdlib.h>
#include <string.h>

#include "lora.h"

struct lora_index {
    char **key;
    wsrc **val;
    int nslots;
};

static uint64_t hash_key(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static void underscored(const char *src, size_t n, char *dst) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i] == '.' ? '_' : src[i];
    dst[n] = 0;
}

void lora_index_free(lora_index *x) {
    if (!x) return;
    for (int i = 0; i < x->nslots; i++) free(x->key[i]);
    free(x->key);
    free(x->val);
    free(x);
}

static lora_index *index_build(wsrc_set *s) {
    lora_index *x = calloc(1, sizeof *x);
    int n = wsrc_count(s);
    if (!x) return NULL;
    x->nslots = 64;
    while (x->nslots < 2 * n) x->nslots *= 2;
    x->key = calloc(x->nslots, sizeof *x->key);
    x->val = calloc(x->nslots, sizeof *x->val);
    if (!x->key || !x->val) { lora_index_free(x); return NULL; }
    for (int i = 0; i < n; i++) {
        wsrc *w = wsrc_at(s, i);
        size_t l = strlen(w->name);
        if (l > 7 && !strcmp(w->name + l - 7, ".weight")) l -= 7;
        char *k = malloc(l + 1);
        if (!k) { lora_index_free(x); return NULL; }
        underscored(w->name, l, k);
        uint64_t h = hash_key(k) & (x->nslots - 1);
        while (x->key[h] && strcmp(x->key[h], k)) h = (h + 1) & (x->nslots - 1);
        if (x->key[h]) { free(k); continue; } /* cannot happen in an SD model; the first one stays */
        x->key[h] = k;
        x->val[h] = w;
    }
    return x;
}

static wsrc *index_find(const lora_index *x, const char *k) {
    if (!x) return NULL;
    for (uint64_t h = hash_key(k) & (x->nslots - 1); x->key[h]; h = (h + 1) & (x->nslots - 1))
        if (!strcmp(x->key[h], k)) return x->val[h];
    return NULL;
}

static int starts(const char *s, const char *p, const char **rest) {
    size_t n = strlen(p);
    if (strncmp(s, p, n)) return 0;
    *rest = s + n;
    return 1;
}

/* Older diffusers spellings of a dotted layer path: "attn1.processor.to_q_lora" (attention processors),
 * "...q_proj.lora_linear_layer", "...to_q.lora" -> the layer itself. */
static void legacy_diffusers(char *s) {
    char *p;
    while ((p = strstr(s, ".processor."))) memmove(p, p + 10, strlen(p + 10) + 1);
    size_t l = strlen(s);
    static const char *const tails[] = {".lora_linear_layer", ".lora"};
    for (int i = 0; i < 2; i++) {
        size_t t = strlen(tails[i]);
        if (l > t && !strcmp(s + l - t, tails[i])) s[l -= t] = 0;
    }
    if (l > 11 && !strcmp(s + l - 11, "to_out_lora")) strcpy(s + l - 11, "to_out.0");
    else if (l > 5 && !strcmp(s + l - 5, "_lora")) s[l - 5] = 0;
}

wsrc *lora_target(lora_state *s, const char *module, int lpb, int *part) {
    static const struct { const char *prefix; int part, dotted; } parts[] = {
        {"lora_unet_", LORA_UNET, 0}, {"lora_te1_", LORA_TE, 0}, {"lora_te2_", LORA_TE2, 0}, {"lora_te_", LORA_TE, 0},
        {"unet.", LORA_UNET, 1},      {"text_encoder_2.", LORA_TE2, 1}, {"text_encoder.", LORA_TE, 1},
    };
    const char *rest = NULL;
    int p = -1, dotted = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts && p < 0; i++)
        if (starts(module, parts[i].prefix, &rest)) p = parts[i].part, dotted = parts[i].dotted;
    if (p < 0) return NULL;
    *part = p;
    if (!s->src[p] || !wsrc_count(s->src[p])) return NULL;
    if (!s->index[p] && !(s->index[p] = index_build(s->src[p]))) return NULL;
    size_t n = strlen(rest);
    char key[1024], alt[1100];
    if (n >= sizeof key) return NULL;
    memcpy(key, rest, n + 1);
    if (dotted) legacy_diffusers(key);
    underscored(key, strlen(key), key);
    wsrc *w = index_find(s->index[p], key);
    if (!w && p == LORA_UNET && unet_ldm_layer_to_diffusers(key, lpb, alt, sizeof alt)) w = index_find(s->index[p], alt);
    if (!w && p != LORA_UNET && strncmp(key, "text_model_", 11)) { /* a bare CLIPTextModel spelling */
        snprintf(alt, sizeof alt, "text_model_%s", key);
        w = index_find(s->index[p], alt);
    }
    return w;
}

/* In-features of the first module whose name ends with `tail` (its down factor's columns), or 0. */
static int64_t in_dim_of(const ad_file *a, const char *tail) {
    size_t tl = strlen(tail);
    for (int i = 0; i < a->n; i++) {
        const ad_module *m = &a->mod[i];
        size_t l = strlen(m->name);
        if (l < tl || strcmp(m->name + l - tl, tail)) continue;
        if (m->type == AD_LORA && m->down->ndim >= 2) return m->down->shape[1];
        if (m->type == AD_LOHA && !m->t1) return m->w1b->shape[1];
    }
    return 0;
}

model_family lora_family(const ad_file *a, char *why, size_t cap) {
    const char *v;
    if ((v = st_meta(a->f, "ss_base_model_version"))) { /* kohya-ss: sd_v1, sd_v2, sdxl_base_v1-0 ... */
        model_family f = !strncmp(v, "sdxl", 4) ? MODEL_FAMILY_SDXL : !strncmp(v, "sd_v2", 5) ? MODEL_FAMILY_SD2 : !strncmp(v, "sd_v1", 5) ? MODEL_FAMILY_SD1 : 0;
        if (f) {
            snprintf(why, cap, "its metadata says ss_base_model_version %s", v);
            return f;
        }
    }
    if ((v = st_meta(a->f, "ss_v2")) && !strcmp(v, "True")) {
        snprintf(why, cap, "its metadata says ss_v2");
        return MODEL_FAMILY_SD2;
    }
    if ((v = st_meta(a->f, "modelspec.architecture"))) {
        model_family f = strstr(v, "-xl") ? MODEL_FAMILY_SDXL : strstr(v, "-v2") ? MODEL_FAMILY_SD2 : strstr(v, "-v1") ? MODEL_FAMILY_SD1 : 0;
        if (f) {
            snprintf(why, cap, "its metadata says modelspec.architecture %s", v);
            return f;
        }
    }
    for (int i = 0; i < a->n; i++)
        if (!strncmp(a->mod[i].name, "lora_te2_", 9) || !strncmp(a->mod[i].name, "lora_te1_", 9) || !strncmp(a->mod[i].name, "text_encoder_2.", 15)) {
            snprintf(why, cap, "it has modules for two text encoders (%s)", a->mod[i].name);
            return MODEL_FAMILY_SDXL;
        }
    static const char *const xattn[] = {"attn2_to_k", "attn2.to_k", "attn2.processor.to_k_lora"};
    for (int k = 0; k < 3; k++) {
        int64_t d = in_dim_of(a, xattn[k]);
        if (!d) continue;
        snprintf(why, cap, "its cross-attention reads %lld-wide text states", (long long)d);
        return d == 768 ? MODEL_FAMILY_SD1 : d == 1024 ? MODEL_FAMILY_SD2 : d == 2048 ? MODEL_FAMILY_SDXL : MODEL_FAMILY_UNKNOWN;
    }
    static const char *const q[] = {"self_attn_q_proj", "self_attn.q_proj"};
    for (int k = 0; k < 2; k++) {
        int64_t d = in_dim_of(a, q[k]);
        if (!d) continue;
        snprintf(why, cap, "its text encoder is %lld wide", (long long)d);
        return d == 768 ? MODEL_FAMILY_SD1 : d == 1024 ? MODEL_FAMILY_SD2 : d == 1280 ? MODEL_FAMILY_SDXL : MODEL_FAMILY_UNKNOWN;
    }
    snprintf(why, cap, "nothing in it names a family");
    return MODEL_FAMILY_UNKNOWN;
}
