/* lora_tags.c — a call's adapters: its sd_lora files, then the prompt's <lora:NAME:...> tags, each resolved to a
 * file. The tag syntax is AUTOMATIC1111's extra-network one, `<lora:NAME[:TE[:UNET]]>` with te=/unet= as named
 * alternatives (the first number is the text encoders' strength and the UNet's unless a second one is given);
 * the tags are cut out of the text the encoder sees and stay in the prompt that is recorded. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "lora.h"

void lora_call_free(lora_call *lc) {
    for (int i = 0; i < lc->n; i++) {
        free(lc->v[i].name);
        free(lc->v[i].path);
    }
    free(lc->v);
    free(lc->prompt);
    memset(lc, 0, sizeof *lc);
}

static int word_char(unsigned char c) { return c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') || c >= 0x80; }

/* Length of an extra-network tag at s ("<type:args>", AUTOMATIC1111's <(\w+):([^>]+)>), 0 if none starts there. */
static size_t tag_len(const char *s, size_t *type_len) {
    if (*s != '<') return 0;
    size_t i = 1;
    while (word_char((unsigned char)s[i])) i++;
    if (i == 1 || s[i] != ':' || !s[i + 1] || s[i + 1] == '>') return 0;
    *type_len = i - 1;
    const char *end = strchr(s + i + 1, '>');
    return end ? (size_t)(end - s) + 1 : 0;
}

static int parse_float(const char *s, size_t n, float *out) {
    int ok;
    double v = clip_parse_number(s, n, &ok);
    if (!ok || !isfinite(v)) return 0;
    *out = (float)v;
    return 1;
}

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

/* A strength that is a finite double but inf as a float (<lora:x:1e40>) would merge inf into the weights: a black
 * picture with exit 0. */
static sd_status too_strong(const char *tag, const char *item, size_t len) {
    return err_fail(SD_ERR_ARG, "prompt: %s: \"%.*s\" is too large a strength (beyond a float's 3.4e38)", tag, (int)len, item);
}

/* "NAME[:TE[:UNET]]" with te=, unet= allowed among the numbers. */
static sd_status tag_args(const char *tag, const char *a, size_t n, char **name, float *te, float *unet) {
    const char *item[8];
    size_t len[8];
    int k = 0;
    for (const char *p = a, *end = a + n; k < 8;) {
        const char *c = memchr(p, ':', (size_t)(end - p));
        item[k] = p, len[k] = c ? (size_t)(c - p) : (size_t)(end - p);
        trim(&item[k], &len[k]);
        k++;
        if (!c) break;
        p = c + 1;
    }
    if (!len[0]) return err_fail(SD_ERR_ARG, "prompt: %s: no LoRA name", tag);
    int have_te = 0, have_unet = 0, positional = 0;
    for (int i = 1; i < k; i++) {
        const char *eq = memchr(item[i], '=', len[i]);
        float v;
        if (eq) {
            size_t kl = (size_t)(eq - item[i]);
            int is_te = kl == 2 && !strncmp(item[i], "te", 2), is_unet = kl == 4 && !strncmp(item[i], "unet", 4);
            if ((!is_te && !is_unet) || !parse_float(eq + 1, len[i] - kl - 1, &v))
                return err_fail(SD_ERR_ARG, "prompt: %s: \"%.*s\" is not te=NUMBER or unet=NUMBER", tag, (int)len[i], item[i]);
            if (!isfinite(v)) return too_strong(tag, item[i], len[i]);
            if (is_te) *te = v, have_te = 1;
            else *unet = v, have_unet = 1;
            continue;
        }
        if (++positional > 2)
            return err_fail(SD_ERR_ARG, "prompt: %s: at most two strengths (text encoder, UNet); dynamic rank is not supported", tag);
        if (!parse_float(item[i], len[i], &v)) return err_fail(SD_ERR_ARG, "prompt: %s: \"%.*s\" is not a number", tag, (int)len[i], item[i]);
        if (!isfinite(v)) return too_strong(tag, item[i], len[i]);
        if (positional == 1 && !have_te) *te = v, have_te = 1;
        else if (positional == 2 && !have_unet) *unet = v, have_unet = 1;
    }
    if (have_te && !have_unet) *unet = *te; /* A1111: the UNet's strength defaults to the text encoders' */
    if (!(*name = strndup(item[0], len[0]))) return err_fail(SD_ERR_MEMORY, "out of memory");
    return SD_OK;
}

static sd_status push(lora_call *lc, char *name, char *path, float te, float unet, int from_prompt) {
    lora_use *v = realloc(lc->v, (size_t)(lc->n + 1) * sizeof *v);
    if (!v || !name || !path) {
        free(name), free(path);
        if (v) lc->v = v;
        return err_fail(SD_ERR_MEMORY, "out of memory");
    }
    lc->v = v;
    lc->v[lc->n++] = (lora_use){name, path, te, unet, from_prompt};
    return SD_OK;
}

/* dir/NAME.safetensors; a NAME that climbs out of dir, or a pickle in its place, is refused. */
static sd_status find_file(const char *tag, const char *dir, const char *name, char **path) {
    *path = NULL;
    if (!dir) return err_fail(SD_ERR_ARG, "prompt: %s: no LoRA folder given (--lora-model-dir)", tag);
    if (name[0] == '/' || !strcmp(name, "..") || !strncmp(name, "../", 3) || strstr(name, "/../") ||
        (strlen(name) >= 3 && !strcmp(name + strlen(name) - 3, "/..")))
        return err_fail(SD_ERR_ARG, "prompt: %s: a LoRA name is a file name inside %s", tag, dir);
    size_t cap = strlen(dir) + strlen(name) + 32;
    char *p = malloc(cap);
    if (!p) return err_fail(SD_ERR_MEMORY, "out of memory");
    snprintf(p, cap, "%s/%s.safetensors", dir, name);
    if (file_exists(p) && !file_is_dir(p)) {
        *path = p;
        return SD_OK;
    }
    static const char *const pickles[] = {"pt", "ckpt", "pth", "bin"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, cap, "%s/%s.%s", dir, name, pickles[i]);
        if (file_exists(p)) {
            sd_status st = model_files_refuse_pickle(p);
            free(p);
            return st;
        }
    }
    free(p);
    return err_fail(SD_ERR_IO, "prompt: %s: no %s.safetensors in %s", tag, name, dir);
}

static char *stem(const char *path) {
    const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *dot = strrchr(b, '.');
    return strndup(b, dot && dot > b ? (size_t)(dot - b) : strlen(b));
}

sd_status lora_resolve(const sd_gen_params *p, lora_call *out) {
    memset(out, 0, sizeof *out);
    sd_status st = SD_OK;
    for (int i = 0; i < p->lora_count && st == SD_OK; i++) {
        const sd_lora *l = &p->loras[i];
        if (!l->path || !*l->path) st = err_fail(SD_ERR_ARG, "LoRA %d: no file given", i + 1);
        else if (!isfinite(l->te_weight) || !isfinite(l->unet_weight)) st = err_fail(SD_ERR_ARG, "%s: the strengths must be finite numbers", l->path);
        else if (!file_exists(l->path) || file_is_dir(l->path)) st = err_fail(SD_ERR_IO, "%s: no such LoRA file", l->path);
        else if (model_files_is_pickle(l->path)) st = model_files_refuse_pickle(l->path);
        else st = push(out, stem(l->path), strdup(l->path), l->te_weight, l->unet_weight, 0);
    }
    const char *neg = p->negative_prompt ? p->negative_prompt : "", *s = p->prompt ? p->prompt : "";
    for (const char *q = neg; *q && st == SD_OK; q++) {
        size_t tl, n = tag_len(q, &tl);
        if (n && ((tl == 4 && !strncmp(q + 1, "lora", 4)) || (tl == 4 && !strncmp(q + 1, "lyco", 4))))
            st = err_fail(SD_ERR_ARG, "negative prompt: %.*s: LoRA tags belong in the prompt", (int)n, q);
    }
    size_t len = strlen(s), o = 0;
    char *text = malloc(len + 1);
    if (!text && st == SD_OK) st = err_fail(SD_ERR_MEMORY, "out of memory");
    for (size_t i = 0; i < len && st == SD_OK;) {
        size_t tl, n = tag_len(s + i, &tl);
        if (!n) {
            text[o++] = s[i++];
            continue;
        }
        char tag[200];
        snprintf(tag, sizeof tag, "%.*s%s", n > 180 ? 180 : (int)n, s + i, n > 180 ? "..." : "");
        if (!(tl == 4 && (!strncmp(s + i + 1, "lora", 4) || !strncmp(s + i + 1, "lyco", 4)))) {
            st = err_fail(SD_ERR_UNSUPPORTED, "prompt: %s: only <lora:...> extra networks are supported", tag);
            break;
        }
        char *name = NULL, *path = NULL;
        float te = 1.0f, unet = 1.0f;
        st = tag_args(tag, s + i + 6, n - 7, &name, &te, &unet);
        if (st == SD_OK) st = find_file(tag, p->lora_dir, name, &path);
        if (st == SD_OK) st = push(out, name, path, te, unet, 1);
        else free(name);
        i += n;
    }
    if (text) text[o] = 0;
    out->prompt = text;
    if (st != SD_OK) lora_call_free(out);
    return st;
}

sd_status sd_lora_parse(char *spec, sd_lora *out) {
    out->path = spec;
    out->te_weight = out->unet_weight = 1.0f;
    float w[2];
    int k = 0;
    char *c;
    /* numbers from the right: "a:b.safetensors:0.8:0.5" keeps any ':' of the path */
    while (k < 2 && (c = strrchr(spec, ':')) && c > spec && parse_float(c + 1, strlen(c + 1), &w[k])) {
        *c = 0;
        k++;
    }
    if (k == 1) out->te_weight = out->unet_weight = w[0];
    if (k == 2) out->te_weight = w[1], out->unet_weight = w[0];
    if (!*spec) return err_fail(SD_ERR_ARG, "--lora: no file given");
    return SD_OK;
}
