/* adapter_file.c — reads a LoRA-family adapter file into modules (see adapter.h): tensors grouped by the name
 * before their role suffix, each module's method told from its roles, ranks and alphas checked. */
#include "adapter.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

enum { R_DOWN, R_UP, R_MID, R_ALPHA, R_DORA, R_MAG, R_H1A, R_H1B, R_H2A, R_H2B, R_HT1, R_HT2,
       R_K1, R_K1A, R_K1B, R_K2, R_K2A, R_K2B, R_KT2, R_COUNT };

/* Exact suffixes; a key matches the one that ends it (none of them ends another). */
static const struct { const char *suffix; int role; } k_roles[] = {
    {".lora_down.weight", R_DOWN}, {".lora_up.weight", R_UP}, {".lora_mid.weight", R_MID},
    {".lora_A.weight", R_DOWN}, {".lora_B.weight", R_UP},
    {".down.weight", R_DOWN}, {".up.weight", R_UP}, /* older diffusers: "<layer>.lora.down.weight", "<layer>_lora.down.weight" */
    {".alpha", R_ALPHA}, {".dora_scale", R_DORA},
    {".lora_magnitude_vector", R_MAG}, {".lora_magnitude_vector.weight", R_MAG},
    {".hada_w1_a", R_H1A}, {".hada_w1_b", R_H1B}, {".hada_w2_a", R_H2A}, {".hada_w2_b", R_H2B},
    {".hada_t1", R_HT1}, {".hada_t2", R_HT2},
    {".lokr_w1", R_K1}, {".lokr_w1_a", R_K1A}, {".lokr_w1_b", R_K1B},
    {".lokr_w2", R_K2}, {".lokr_w2_a", R_K2A}, {".lokr_w2_b", R_K2B}, {".lokr_t2", R_KT2},
};

typedef struct group {
    char *name;
    const st_tensor *t[R_COUNT];
    const st_tensor *first; /* for the stray list, in file order */
} group;

static int role_of(const char *key, size_t *name_len) {
    size_t kl = strlen(key);
    for (size_t i = 0; i < sizeof k_roles / sizeof *k_roles; i++) {
        size_t sl = strlen(k_roles[i].suffix);
        if (kl > sl && !strcmp(key + kl - sl, k_roles[i].suffix)) {
            *name_len = kl - sl;
            return k_roles[i].role;
        }
    }
    return -1;
}

void ad_close(ad_file *a) {
    if (!a) return;
    for (int i = 0; i < a->n; i++) free(a->mod[i].name);
    free(a->mod);
    free(a->stray);
    st_close(a->f);
    free(a);
}

const char *ad_type_name(const ad_module *m) {
    static const char *const names[2][4] = {{"LoRA", "LoCon", "LoHa", "LoKr"}, {"LoRA DoRA", "LoCon DoRA", "LoHa DoRA", "LoKr DoRA"}};
    int k = m->type == AD_LOHA ? 2 : m->type == AD_LOKR ? 3 : (m->down->ndim == 4 && (m->down->shape[2] > 1 || m->mid)) ? 1 : 0;
    return names[m->dora != NULL][k];
}

static int is_float(const st_tensor *t) { return st_dtype_is_float(t->dtype); }
static int64_t rows(const st_tensor *t) { return t->ndim ? t->shape[0] : 1; }
static int64_t cols(const st_tensor *t) { return t->ndim > 1 ? t->shape[1] : 1; }

/* A scalar alpha stored as any float or integer type. */
static sd_status read_alpha(const st_file *f, const st_tensor *t, float *out) {
    if (t->numel != 1) return err_fail(SD_ERR_FORMAT, "%s: \"%s\" holds %lld numbers, expected one", st_path(f), t->name, (long long)t->numel);
    if (is_float(t)) return st_read_f32(f, t, out);
    int64_t v = 0;
    switch (t->dtype) {
    case ST_I64: { int64_t x; memcpy(&x, t->data, 8); v = x; break; }
    case ST_I32: { int32_t x; memcpy(&x, t->data, 4); v = x; break; }
    case ST_I16: { int16_t x; memcpy(&x, t->data, 2); v = x; break; }
    case ST_I8: { int8_t x; memcpy(&x, t->data, 1); v = x; break; }
    case ST_U8: { uint8_t x; memcpy(&x, t->data, 1); v = x; break; }
    default: return err_fail(SD_ERR_FORMAT, "%s: \"%s\" has dtype %s, expected a number", st_path(f), t->name, st_dtype_name(t->dtype));
    }
    *out = (float)v;
    return SD_OK;
}

/* PEFT files keep alpha in the adapter config; diffusers writes it into the "lora_adapter_metadata" JSON, keyed
 * "<component>.lora_alpha" (and .alpha_pattern, .rank_pattern, .use_rslora). Finds the alpha of a module named
 * "<component>.<layer>" there; returns 0 when the metadata says nothing. */
static int peft_alpha(const cJSON *meta, const char *module, float *alpha, int *rslora) {
    if (!meta) return 0;
    const char *dot = strchr(module, '.');
    char key[256];
    const char *prefixes[2] = {NULL, ""};
    char comp[128] = "";
    if (dot && (size_t)(dot - module) < sizeof comp) {
        snprintf(comp, sizeof comp, "%.*s.", (int)(dot - module), module);
        prefixes[0] = comp;
    }
    for (int p = 0; p < 2; p++) {
        if (!prefixes[p]) continue;
        const char *layer = p == 0 ? dot + 1 : module;
        snprintf(key, sizeof key, "%slora_alpha", prefixes[p]);
        const cJSON *base = cJSON_GetObjectItemCaseSensitive(meta, key);
        if (!cJSON_IsNumber(base)) continue;
        *alpha = (float)base->valuedouble;
        snprintf(key, sizeof key, "%suse_rslora", prefixes[p]);
        *rslora = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(meta, key));
        snprintf(key, sizeof key, "%salpha_pattern", prefixes[p]);
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(meta, key), *e;
        size_t ll = strlen(layer);
        cJSON_ArrayForEach(e, pat) { /* PEFT: a pattern names the layer or a dotted tail of its name */
            size_t kl = strlen(e->string);
            if (cJSON_IsNumber(e) && kl <= ll && !strcmp(layer + ll - kl, e->string) && (kl == ll || layer[ll - kl - 1] == '.')) {
                *alpha = (float)e->valuedouble;
                break;
            }
        }
        return 1;
    }
    return 0;
}

#define BAD(...) return err_fail(SD_ERR_FORMAT, __VA_ARGS__)

/* Tells the method from the roles present and checks the factors agree with each other. Returns 0 (and leaves m
 * unset) for a group that is no complete module. */
static sd_status make_module(const st_file *f, group *g, ad_module *m, int *complete) {
    const st_tensor *const *t = g->t;
    const char *path = st_path(f), *n = g->name;
    int lora = t[R_DOWN] || t[R_UP] || t[R_MID], loha = t[R_H1A] || t[R_H1B] || t[R_H2A] || t[R_H2B] || t[R_HT1] || t[R_HT2];
    int lokr = t[R_K1] || t[R_K1A] || t[R_K1B] || t[R_K2] || t[R_K2A] || t[R_K2B] || t[R_KT2];
    *complete = 0;
    memset(m, 0, sizeof *m);
    if (lora + loha + lokr > 1) BAD("%s: module \"%s\" mixes the tensors of several methods (LoRA, LoHa, LoKr)", path, n);
    for (int r = 0; r < R_COUNT; r++)
        if (t[r] && r != R_ALPHA && !is_float(t[r])) BAD("%s: \"%s\" has dtype %s, expected a float type", path, t[r]->name, st_dtype_name(t[r]->dtype));
    if (lora) {
        if (!t[R_DOWN] || !t[R_UP]) return SD_OK;
        const st_tensor *d = t[R_DOWN], *u = t[R_UP], *mid = t[R_MID];
        if ((d->ndim != 2 && d->ndim != 4) || (u->ndim != 2 && u->ndim != 4))
            BAD("%s: module \"%s\": down %dD and up %dD factors, expected 2D (linear) or 4D (convolution)", path, n, d->ndim, u->ndim);
        if (rows(d) < 1) /* a shape like [0, 768]: the dimensions are right, the factor is empty */
            BAD("%s: module \"%s\": rank 0 (the down factor \"%s\" is empty)", path, n, d->name);
        m->type = AD_LORA;
        m->rank = (int)rows(d);
        if (cols(u) != m->rank || (u->ndim == 4 && u->shape[2] * u->shape[3] != 1))
            BAD("%s: module \"%s\": up factor [%lld, %lld, ...] does not take the down factor's %d rows", path, n, (long long)rows(u),
                (long long)cols(u), m->rank);
        if (mid && (mid->ndim != 4 || rows(mid) != m->rank || cols(mid) != m->rank || (d->ndim == 4 && d->shape[2] * d->shape[3] != 1)))
            BAD("%s: module \"%s\": Tucker core \"%s\" does not fit rank %d", path, n, mid->name, m->rank);
        m->down = d, m->up = u, m->mid = mid;
    } else if (loha) {
        if (!t[R_H1A] || !t[R_H1B] || !t[R_H2A] || !t[R_H2B] || !t[R_HT1] != !t[R_HT2]) return SD_OK;
        m->type = AD_LOHA;
        m->w1a = t[R_H1A], m->w1b = t[R_H1B], m->w2a = t[R_H2A], m->w2b = t[R_H2B], m->t1 = t[R_HT1], m->t2 = t[R_HT2];
        m->rank = (int)rows(m->w1b);
        for (int k = 0; k < 2; k++) {
            const st_tensor *a = k ? m->w2a : m->w1a, *b = k ? m->w2b : m->w1b, *c = k ? m->t2 : m->t1;
            if (b->ndim >= 2 && rows(b) < 1) BAD("%s: module \"%s\": rank 0 (the LoHa factor \"%s\" is empty)", path, n, b->name);
            int ok = a->ndim == 2 && b->ndim >= 2;
            if (ok && c) ok = c->ndim == 4 && b->ndim == 2 && rows(c) == rows(a) && cols(c) == rows(b);
            else if (ok) ok = cols(a) == rows(b);
            if (!ok) BAD("%s: module \"%s\": LoHa factors %d do not fit together", path, n, k + 1);
        }
    } else if (lokr) {
        int has1 = t[R_K1] || (t[R_K1A] && t[R_K1B]), has2 = t[R_K2] || (t[R_K2A] && t[R_K2B]);
        if (!has1 || !has2 || (t[R_KT2] && t[R_K2])) return SD_OK;
        m->type = AD_LOKR;
        m->w1 = t[R_K1], m->w1a = t[R_K1A], m->w1b = t[R_K1B], m->w2 = t[R_K2], m->w2a = t[R_K2A], m->w2b = t[R_K2B], m->t2 = t[R_KT2];
        if (m->w1 ? m->w1->ndim != 2 : (m->w1a->ndim != 2 || m->w1b->ndim != 2 || cols(m->w1a) != rows(m->w1b)))
            BAD("%s: module \"%s\": LoKr first factor is not a matrix (or its halves do not fit)", path, n);
        if (!m->w2 && (m->w2a->ndim != 2 || m->w2b->ndim < 2 ||
                       (m->t2 ? (m->t2->ndim != 4 || rows(m->t2) != rows(m->w2a) || cols(m->t2) != rows(m->w2b)) : cols(m->w2a) != rows(m->w2b))))
            BAD("%s: module \"%s\": LoKr second factor halves do not fit together", path, n);
        if (m->w2 && m->w2->ndim != 2 && m->w2->ndim != 4) BAD("%s: module \"%s\": LoKr second factor is %dD", path, n, m->w2->ndim);
        /* AUTOMATIC1111's rank: the factored side's (the second's when both are) */
        m->rank = m->w2b ? (int)rows(m->w2b) : m->w1b ? (int)rows(m->w1b) : 0;
    } else {
        return SD_OK; /* an alpha or magnitude without factors */
    }
    if (t[R_DORA] && t[R_MAG]) BAD("%s: module \"%s\" has both a dora_scale and a lora_magnitude_vector", path, n);
    m->dora = t[R_DORA] ? t[R_DORA] : t[R_MAG];
    m->dora_peft = t[R_MAG] != NULL;
    m->scale = 1.0f;
    if (t[R_ALPHA]) {
        sd_status st = read_alpha(f, t[R_ALPHA], &m->alpha);
        if (st != SD_OK) return st;
        if (!isfinite(m->alpha)) BAD("%s: \"%s\" is not a finite number", path, t[R_ALPHA]->name);
        m->has_alpha = 1;
        if (m->rank) m->scale = m->alpha / (float)m->rank;
    }
    *complete = 1;
    return SD_OK;
}

/* Module name -> group index (open addressing over a power-of-two table). */
static uint64_t hash_name(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static sd_status build(ad_file *a) {
    st_file *f = a->f;
    int nt = st_count(f), ng = 0, cap = 16;
    while (cap < 2 * nt) cap *= 2;
    int *slot = malloc(cap * sizeof *slot);
    group *g = calloc(nt ? nt : 1, sizeof *g);
    int *role = malloc((nt ? nt : 1) * sizeof *role), *owner = malloc((nt ? nt : 1) * sizeof *owner);
    a->mod = calloc(nt ? nt : 1, sizeof *a->mod);
    a->stray = calloc(nt ? nt : 1, sizeof *a->stray);
    sd_status st = slot && g && role && owner && a->mod && a->stray ? SD_OK : err_fail(SD_ERR_MEMORY, "out of memory");
    for (int i = 0; i < cap && st == SD_OK; i++) slot[i] = -1;
    for (int i = 0; i < nt && st == SD_OK; i++) {
        const st_tensor *t = st_at(f, i);
        size_t nl;
        role[i] = role_of(t->name, &nl);
        owner[i] = -1;
        if (role[i] < 0) continue;
        uint64_t h = hash_name(t->name, nl) & (cap - 1);
        while (slot[h] >= 0 && (strlen(g[slot[h]].name) != nl || strncmp(g[slot[h]].name, t->name, nl))) h = (h + 1) & (cap - 1);
        if (slot[h] < 0) {
            if (!(g[ng].name = strndup(t->name, nl))) { st = err_fail(SD_ERR_MEMORY, "out of memory"); break; }
            g[ng].first = t;
            slot[h] = ng++;
        }
        group *x = &g[slot[h]];
        if (x->t[role[i]]) st = err_fail(SD_ERR_FORMAT, "%s: \"%s\" and \"%s\" are the same factor of one module", st_path(f), x->t[role[i]]->name, t->name);
        x->t[role[i]] = t;
        owner[i] = slot[h];
    }
    cJSON *meta = NULL;
    const char *mj = st_meta(f, "lora_adapter_metadata");
    if (mj) meta = cJSON_Parse(mj); /* malformed metadata is ignored, as diffusers' loader would fail on it only later */
    int *module_of = calloc(ng ? ng : 1, sizeof *module_of);
    if (st == SD_OK && !module_of) st = err_fail(SD_ERR_MEMORY, "out of memory");
    for (int k = 0; k < ng && st == SD_OK; k++) {
        int complete;
        ad_module *m = &a->mod[a->n];
        st = make_module(f, &g[k], m, &complete);
        module_of[k] = -1;
        if (st != SD_OK || !complete) continue;
        float alpha;
        int rslora = 0;
        if (!m->has_alpha && m->rank && peft_alpha(meta, g[k].name, &alpha, &rslora)) {
            m->has_alpha = 1;
            m->alpha = alpha;
            m->scale = alpha / (rslora ? sqrtf((float)m->rank) : (float)m->rank);
        }
        m->name = g[k].name;
        g[k].name = NULL;
        module_of[k] = a->n++;
    }
    for (int i = 0; i < nt && st == SD_OK; i++) /* what no module took, in file order */
        if (owner[i] < 0 || module_of[owner[i]] < 0) a->stray[a->nstray++] = st_at(f, i)->name;
    cJSON_Delete(meta);
    for (int k = 0; k < ng; k++) free(g[k].name);
    free(module_of);
    free(g);
    free(slot);
    free(role);
    free(owner);
    return st;
}

sd_status ad_open(const char *path, ad_file **out) {
    *out = NULL;
    ad_file *a = calloc(1, sizeof *a);
    if (!a) return err_fail(SD_ERR_MEMORY, "out of memory");
    sd_status st = st_open(path, &a->f);
    if (st == SD_OK) st = build(a);
    if (st != SD_OK) {
        ad_close(a);
        return st;
    }
    *out = a;
    return SD_OK;
}
