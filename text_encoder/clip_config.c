/* clip_config.c — CLIP text encoder weight names (transformers / OpenCLIP -> canonical) and its config
 * (from a transformers config.json, or inferred from tensor names and shapes). */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/numparse.h"
#include "clip_model.h"

#define LAYERS_PREFIX "text_model.encoder.layers."

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

/* ---- names ---- */

int clip_rename_hf(const char *src, char *dst, size_t cap, void *user) {
    (void)user;
    size_t n = strlen(src);
    /* a buffer, not a parameter; some merged checkpoints carry float or corrupted copies (facts §4.1) */
    if (n >= 12 && !strcmp(src + n - 12, "position_ids")) return 0;
    /* transformers 5 saves a bare CLIPTextModel without "text_model."; so did very old SD 1.x files */
    if (starts(src, "embeddings.") || starts(src, "encoder.") || starts(src, "final_layer_norm."))
        snprintf(dst, cap, "text_model.%s", src);
    else
        snprintf(dst, cap, "%s", src);
    return 1;
}

int clip_rename_openclip(const char *src, char *dst, size_t cap, void *user) {
    (void)user;
    static const char *const top[][2] = {
        {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
        {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
        {"ln_final.weight", "text_model.final_layer_norm.weight"},
        {"ln_final.bias", "text_model.final_layer_norm.bias"},
    };
    static const char *const block[][2] = {
        {"ln_1.", "layer_norm1."}, {"ln_2.", "layer_norm2."}, {"attn.in_proj_", "self_attn.in_proj_"},
        {"attn.out_proj.", "self_attn.out_proj."}, {"mlp.c_fc.", "mlp.fc1."}, {"mlp.c_proj.", "mlp.fc2."},
    };
    if (!strcmp(src, "logit_scale") || !strcmp(src, "attn_mask")) return 0; /* contrastive scale; a buffer */
    for (size_t i = 0; i < sizeof top / sizeof *top; i++)
        if (!strcmp(src, top[i][0])) { snprintf(dst, cap, "%s", top[i][1]); return 1; }
    if (starts(src, "transformer.resblocks.")) {
        const char *p = src + strlen("transformer.resblocks.");
        char *end;
        long l = strtol(p, &end, 10);
        if (end != p && *end == '.' && l >= 0 && l < 100000)
            for (size_t i = 0; i < sizeof block / sizeof *block; i++)
                if (starts(end + 1, block[i][0])) {
                    snprintf(dst, cap, LAYERS_PREFIX "%ld.%s%s", l, block[i][1], end + 1 + strlen(block[i][0]));
                    return 1;
                }
    }
    snprintf(dst, cap, "%s", src); /* "text_projection" stays itself (it is [C, P]); unknown names get reported */
    return 1;
}

sd_status clip_add_file(wmap *m, const st_file *f, const char *prefix, clip_layout layout) {
    if (layout == CLIP_LAYOUT_AUTO) {
        size_t pl = strlen(prefix);
        layout = CLIP_LAYOUT_HF;
        for (int i = 0; i < st_count(f); i++) {
            const char *n = st_at(f, i)->name;
            if (strncmp(n, prefix, pl)) continue;
            if (starts(n + pl, "transformer.resblocks.") || starts(n + pl, "token_embedding.") || !strcmp(n + pl, "positional_embedding") ||
                starts(n + pl, "ln_final.")) {
                layout = CLIP_LAYOUT_OPENCLIP;
                break;
            }
        }
    }
    return wmap_add_file(m, f, prefix, layout == CLIP_LAYOUT_OPENCLIP ? clip_rename_openclip : clip_rename_hf, NULL);
}

/* ---- config from config.json ---- */

sd_status clip_config_from_json_text(const char *text, size_t len, const char *what, clip_config *cfg) {
    /* transformers' CLIPTextConfig defaults */
    clip_config c = {.vocab = 49408, .width = 512, .layers = 12, .heads = 8, .inter = 2048, .act = CLIP_ACT_QUICK_GELU,
                     .max_pos = 77, .ln_eps = 1e-5f, .proj_dim = 512, .pool = CLIP_POOL_FIRST_EOS, .eos_id = 49407};
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_fail(SD_ERR_FORMAT, "%s: not a JSON object", what);
    }
    const cJSON *o = root, *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    if (cJSON_IsObject(tc)) o = tc; /* a full CLIPConfig */
    sd_status st = SD_OK;
    static const struct { const char *key; size_t off; } ints[] = {
        {"vocab_size", offsetof(clip_config, vocab)}, {"hidden_size", offsetof(clip_config, width)},
        {"num_hidden_layers", offsetof(clip_config, layers)}, {"num_attention_heads", offsetof(clip_config, heads)},
        {"intermediate_size", offsetof(clip_config, inter)}, {"max_position_embeddings", offsetof(clip_config, max_pos)},
        {"projection_dim", offsetof(clip_config, proj_dim)},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints && st == SD_OK; i++)
        st = num_json_int(what, o, ints[i].key, 0, 100000000, (int *)((char *)&c + ints[i].off)); /* absent: transformers' default */
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, "hidden_act");
    if (st == SD_OK && j) {
        if (cJSON_IsString(j) && !strcmp(j->valuestring, "quick_gelu")) c.act = CLIP_ACT_QUICK_GELU;
        else if (cJSON_IsString(j) && !strcmp(j->valuestring, "gelu")) c.act = CLIP_ACT_GELU;
        else st = err_fail(SD_ERR_UNSUPPORTED, "%s: hidden_act %s is not supported (quick_gelu, gelu)",
                          what, cJSON_IsString(j) ? j->valuestring : "(not a string)");
    }
    if (st == SD_OK) st = num_json_float(what, o, "layer_norm_eps", 1e-12, 0.5, &c.ln_eps);
    j = cJSON_GetObjectItemCaseSensitive(o, "eos_token_id");
    if (st == SD_OK && j && !cJSON_IsNull(j)) {
        if (!cJSON_IsNumber(j)) st = err_fail(SD_ERR_UNSUPPORTED, "%s: eos_token_id must be one integer", what);
        else st = num_int_value(what, j, "eos_token_id", 0, 100000000, &c.eos_id);
    }
    /* transformers pools at argmax(ids) when eos_token_id is 2: configs written before the fix of PR #24773,
     * which include the SD 1.x and SDXL text encoders */
    c.pool = c.eos_id == 2 ? CLIP_POOL_ARGMAX : CLIP_POOL_FIRST_EOS;
    /* projection_dim is written for every CLIPTextConfig; only these models have the layer */
    int with_proj = 0;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures"), *a;
    cJSON_ArrayForEach(a, arch) if (cJSON_IsString(a) && (strstr(a->valuestring, "WithProjection") || !strcmp(a->valuestring, "CLIPModel"))) with_proj = 1;
    if (!with_proj) c.proj_dim = 0;
    cJSON_Delete(root);
    if (st == SD_OK && (st = clip_config_check(&c)) != SD_OK) err_prefix("%s", what); /* "PATH: CLIP config: ..." */
    if (st == SD_OK) *cfg = c;
    return st;
}

sd_status clip_config_from_json(const char *path, clip_config *cfg) {
    char *text;
    size_t len;
    sd_status st = file_read(path, 1 << 20, &text, &len);
    if (st != SD_OK) return st;
    st = clip_config_from_json_text(text, len, path, cfg);
    free(text);
    return st;
}

/* ---- config from names and shapes ---- */

static sd_status need2(const wmap *m, const char *name, const st_tensor **t) {
    *t = wmap_find(m, name);
    if (!*t) return err_fail(SD_ERR_MODEL, "missing tensor \"%s\"", name);
    if ((*t)->ndim != 2 || (*t)->shape[0] <= 0 || (*t)->shape[1] <= 0 || (*t)->shape[0] > 1 << 24 || (*t)->shape[1] > 1 << 20)
        return err_fail(SD_ERR_MODEL, "tensor \"%s\" (%s) is not a matrix of sensible size", (*t)->name, name);
    return SD_OK;
}

sd_status clip_config_infer(const wmap *m, clip_config *cfg) {
    const st_tensor *tok, *pos, *fc1, *pr;
    sd_status st;
    if ((st = need2(m, "text_model.embeddings.token_embedding.weight", &tok)) != SD_OK) return st;
    if ((st = need2(m, "text_model.embeddings.position_embedding.weight", &pos)) != SD_OK) return st;
    clip_config c = {.vocab = (int)tok->shape[0], .width = (int)tok->shape[1], .max_pos = (int)pos->shape[0], .ln_eps = 1e-5f,
                     .pool = CLIP_POOL_ARGMAX};
    c.eos_id = c.vocab - 1;
    for (int i = 0; i < wmap_count(m); i++) {
        const char *n = wmap_name(m, i);
        if (!starts(n, LAYERS_PREFIX)) continue;
        char *end;
        long l = strtol(n + strlen(LAYERS_PREFIX), &end, 10);
        if (end != n + strlen(LAYERS_PREFIX) && *end == '.' && l >= 0 && l < 10000 && l + 1 > c.layers) c.layers = (int)l + 1;
    }
    if (!c.layers) return err_fail(SD_ERR_MODEL, "no \"" LAYERS_PREFIX "N.*\" tensors: not a CLIP text encoder");
    if ((st = need2(m, LAYERS_PREFIX "0.mlp.fc1.weight", &fc1)) != SD_OK) return st;
    c.inter = (int)fc1->shape[0];
    c.heads = c.width % 64 ? 0 : c.width / 64;
    /* original files do not name their activation: OpenAI CLIP-L uses quick_gelu, OpenCLIP H / bigG gelu */
    int openclip = wmap_has(m, LAYERS_PREFIX "0.self_attn.in_proj_weight") || wmap_has(m, "text_projection");
    c.act = openclip ? CLIP_ACT_GELU : CLIP_ACT_QUICK_GELU;
    if (wmap_has(m, "text_projection.weight")) {
        if ((st = need2(m, "text_projection.weight", &pr)) != SD_OK) return st;
        c.proj_dim = (int)pr->shape[0];
    } else if (wmap_has(m, "text_projection")) {
        if ((st = need2(m, "text_projection", &pr)) != SD_OK) return st;
        c.proj_dim = (int)pr->shape[1];
    }
    *cfg = c;
    return SD_OK;
}
