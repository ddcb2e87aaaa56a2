/* unet_config.c — UNet configuration from a diffusers config.json, or inferred from tensor names and shapes. */
#include "unet.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/numparse.h"

#define TRY(x) do { sd_status st_ = (x); if (st_ != SD_OK) return st_; } while (0)

/* Defaults every loader starts from: the SD 1.x values diffusers uses when a key is absent. */
static void config_defaults(unet_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = 4;
    c->out_channels = 4;
    c->norm_groups = 32;
    c->norm_eps = 1e-5f;
    c->flip_sin_to_cos = 1;
    c->freq_shift = 0;
    c->add_time_dim = 256;
}

/* Heads only mean something where there is attention: zero elsewhere, so configs compare equal
 * whichever way they were made. */
static void config_normalize(unet_config *c) {
    for (int l = 0; l < c->levels; l++) {
        int attn = 0;
        for (int j = 0; j < c->layers[l]; j++) attn |= c->down_depth[l][j] > 0;
        for (int j = 0; j <= c->layers[l]; j++) attn |= c->up_depth[l][j] > 0;
        if (!attn) c->heads[l] = 0;
    }
}

/* Checks what every config must satisfy before a model is built from it. */
static sd_status config_check(unet_config *c, const char *what) {
    config_normalize(c);
    if (c->levels < 1 || c->levels > UNET_MAX_LEVELS)
        return err_fail(SD_ERR_UNSUPPORTED, "%s: %d UNet levels (1..%d supported)", what, c->levels, UNET_MAX_LEVELS);
    if (c->in_channels < 1 || c->out_channels < 1) return err_fail(SD_ERR_FORMAT, "%s: bad in/out channels", what);
    if (c->norm_groups < 1) return err_fail(SD_ERR_FORMAT, "%s: norm_num_groups %d", what, c->norm_groups);
    for (int l = 0; l < c->levels; l++) {
        int ch = c->block_out[l];
        if (ch < 1 || ch % c->norm_groups)
            return err_fail(SD_ERR_FORMAT, "%s: block_out_channels[%d] = %d is not a multiple of norm_num_groups %d", what, l, ch, c->norm_groups);
        if (c->layers[l] < 1 || c->layers[l] > UNET_MAX_LAYERS)
            return err_fail(SD_ERR_UNSUPPORTED, "%s: %d layers at level %d (1..%d supported)", what, c->layers[l], l, UNET_MAX_LAYERS);
        int attn = 0;
        for (int j = 0; j < c->layers[l]; j++) attn |= c->down_depth[l][j] > 0;
        for (int j = 0; j <= c->layers[l]; j++) attn |= c->up_depth[l][j] > 0;
        if (attn && (c->heads[l] < 1 || ch % c->heads[l]))
            return err_fail(SD_ERR_FORMAT, "%s: %d attention heads do not divide the %d channels of level %d", what, c->heads[l], ch, l);
    }
    int top = c->block_out[c->levels - 1];
    if (c->mid_depth < 1) return err_fail(SD_ERR_UNSUPPORTED, "%s: a mid block without cross-attention is not supported", what);
    if (c->mid_heads < 1 || top % c->mid_heads)
        return err_fail(SD_ERR_FORMAT, "%s: %d attention heads do not divide the %d mid-block channels", what, c->mid_heads, top);
    if (c->ctx_dim < 1) return err_fail(SD_ERR_FORMAT, "%s: cross_attention_dim %d", what, c->ctx_dim);
    if (c->temb_dim < 1) return err_fail(SD_ERR_FORMAT, "%s: time embedding width %d", what, c->temb_dim);
    if (c->block_out[0] % 2) return err_fail(SD_ERR_UNSUPPORTED, "%s: odd timestep embedding width %d", what, c->block_out[0]);
    if (c->add_embed && (c->add_time_dim < 2 || c->add_time_dim % 2 || c->add_in_dim <= c->add_time_dim))
        return err_fail(SD_ERR_FORMAT, "%s: add embedding input %d with %d-wide time ids", what, c->add_in_dim, c->add_time_dim);
    return SD_OK;
}

int unet_config_n_time_ids(const unet_config *cfg, int pooled_dim) {
    if (!cfg->add_embed || cfg->add_time_dim <= 0) return 0;
    int rest = cfg->add_in_dim - pooled_dim;
    return rest > 0 && rest % cfg->add_time_dim == 0 ? rest / cfg->add_time_dim : -1;
}

/* ---- config.json ---- */

static const cJSON *get(const cJSON *root, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsNull(j) ? NULL : j;
}

/* Every whole number of a UNet config lies far inside these bounds; the narrower rules are config_check's. */
#define CFG_INT_MAX (1 << 20)
#define CFG_FILE "config.json" /* messages name the file; unet_config_from_file adds its path */

static sd_status json_int(const cJSON *root, const char *key, int lo, int *out) {
    return num_json_int(CFG_FILE, root, key, lo, CFG_INT_MAX, out);
}

/* A whole number of `key` (in the message as key[i] or key[i][k]) in [lo, CFG_INT_MAX]. */
static sd_status int_at(const cJSON *j, const char *key, int i, int k, int lo, int *out) {
    char what[160];
    if (i < 0) snprintf(what, sizeof what, "%s", key);
    else if (k < 0) snprintf(what, sizeof what, "%s[%d]", key, i);
    else snprintf(what, sizeof what, "%s[%d][%d]", key, i, k);
    return num_int_value(CFG_FILE, j, what, lo, CFG_INT_MAX, out);
}

/* An int or a list of `n` ints (per level) -> out[n]. */
static sd_status json_per_level(const cJSON *root, const char *key, int n, int lo, int *out) {
    const cJSON *j = get(root, key);
    if (!j) return SD_OK;
    if (cJSON_IsNumber(j)) {
        int v;
        TRY(int_at(j, key, -1, -1, lo, &v));
        for (int i = 0; i < n; i++) out[i] = v;
        return SD_OK;
    }
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != n)
        return err_fail(SD_ERR_FORMAT, "config.json: \"%s\" must be an integer or a list of %d integers", key, n);
    for (int i = 0; i < n; i++) TRY(int_at(cJSON_GetArrayItem(j, i), key, i, -1, lo, &out[i]));
    return SD_OK;
}

/* Refuses a key whose value is neither absent/null nor the one value this engine implements. */
static sd_status want_bool(const cJSON *root, const char *key, int supported) {
    const cJSON *j = get(root, key);
    if (!j) return SD_OK;
    if (cJSON_IsBool(j)) {
        if (cJSON_IsTrue(j) == supported) return SD_OK;
    } else if (cJSON_IsArray(j)) { /* only_cross_attention may be per level */
        int ok = 1;
        for (const cJSON *e = j->child; e; e = e->next) ok &= cJSON_IsBool(e) && cJSON_IsTrue(e) == supported;
        if (ok) return SD_OK;
    }
    return err_fail(SD_ERR_UNSUPPORTED, "config.json: \"%s\" other than %s is not supported", key, supported ? "true" : "false");
}
static sd_status want_null(const cJSON *root, const char *key) {
    if (!get(root, key)) return SD_OK;
    return err_fail(SD_ERR_UNSUPPORTED, "config.json: \"%s\" is not supported (must be null)", key);
}
static sd_status want_str(const cJSON *root, const char *key, const char *value) {
    const cJSON *j = get(root, key);
    if (!j || (cJSON_IsString(j) && !strcmp(j->valuestring, value))) return SD_OK;
    if (cJSON_IsString(j)) return err_fail(SD_ERR_UNSUPPORTED, "config.json: %s \"%s\" is not supported (only \"%s\")", key, j->valuestring, value);
    return err_fail(SD_ERR_FORMAT, "config.json: \"%s\" is not a string", key);
}
static sd_status want_num(const cJSON *root, const char *key, double value) {
    const cJSON *j = get(root, key);
    if (!j || (cJSON_IsNumber(j) && j->valuedouble == value)) return SD_OK;
    return err_fail(SD_ERR_UNSUPPORTED, "config.json: \"%s\" other than %g is not supported", key, value);
}

/* Block type list -> has-attention flags; `n` out: the list length. */
static sd_status block_types(const cJSON *root, const char *key, const char *attn_name, const char *plain_name, int *flags, int *n) {
    const cJSON *j = get(root, key);
    if (!j) return SD_OK; /* keep the defaults */
    if (!cJSON_IsArray(j)) return err_fail(SD_ERR_FORMAT, "config.json: \"%s\" is not a list", key);
    int cnt = cJSON_GetArraySize(j);
    if (cnt < 1 || cnt > UNET_MAX_LEVELS) return err_fail(SD_ERR_UNSUPPORTED, "config.json: %d entries in \"%s\"", cnt, key);
    for (int i = 0; i < cnt; i++) {
        const cJSON *e = cJSON_GetArrayItem(j, i);
        if (!cJSON_IsString(e)) return err_fail(SD_ERR_FORMAT, "config.json: \"%s\"[%d] is not a string", key, i);
        if (!strcmp(e->valuestring, attn_name)) flags[i] = 1;
        else if (!strcmp(e->valuestring, plain_name)) flags[i] = 0;
        else return err_fail(SD_ERR_UNSUPPORTED, "config.json: %s \"%s\" is not supported (%s or %s)", key, e->valuestring, attn_name, plain_name);
    }
    *n = cnt;
    return SD_OK;
}

/* transformer_layers_per_block: int, per-level list, or per-level list of per-layer lists. */
static sd_status json_depths(const cJSON *j, const char *key, int levels, const int *layers, int (*out)[UNET_MAX_LAYERS + 1], int *scalar) {
    if (cJSON_IsNumber(j)) {
        TRY(int_at(j, key, -1, -1, 0, scalar));
        for (int l = 0; l < levels; l++)
            for (int k = 0; k <= UNET_MAX_LAYERS; k++) out[l][k] = *scalar;
        return SD_OK;
    }
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != levels)
        return err_fail(SD_ERR_FORMAT, "config.json: \"%s\" must be an integer or a list of %d entries", key, levels);
    for (int l = 0; l < levels; l++) {
        const cJSON *e = cJSON_GetArrayItem(j, l);
        if (cJSON_IsNumber(e)) {
            int v;
            TRY(int_at(e, key, l, -1, 0, &v));
            for (int k = 0; k <= UNET_MAX_LAYERS; k++) out[l][k] = v;
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == layers[l]) {
            for (int k = 0; k < layers[l]; k++) TRY(int_at(cJSON_GetArrayItem(e, k), key, l, k, 0, &out[l][k]));
        } else {
            return err_fail(SD_ERR_FORMAT, "config.json: \"%s\"[%d] must be an integer or a list of %d integers", key, l, layers[l]);
        }
    }
    return SD_OK;
}

static sd_status parse(const cJSON *root, unet_config *c) {
    if (!cJSON_IsObject(root)) return err_fail(SD_ERR_FORMAT, "config.json: not a JSON object");
    TRY(want_str(root, "_class_name", "UNet2DConditionModel"));
    /* options this engine does not implement: refused by name rather than silently ignored */
    TRY(want_bool(root, "only_cross_attention", 0));
    TRY(want_bool(root, "mid_block_only_cross_attention", 0));
    TRY(want_bool(root, "dual_cross_attention", 0));
    TRY(want_bool(root, "center_input_sample", 0));
    TRY(want_bool(root, "resnet_skip_time_act", 0));
    TRY(want_bool(root, "class_embeddings_concat", 0));
    TRY(want_null(root, "class_embed_type"));
    TRY(want_null(root, "num_class_embeds"));
    TRY(want_null(root, "encoder_hid_dim"));
    TRY(want_null(root, "encoder_hid_dim_type"));
    TRY(want_null(root, "time_embedding_act_fn"));
    TRY(want_null(root, "timestep_post_act"));
    TRY(want_null(root, "cross_attention_norm"));
    TRY(want_str(root, "mid_block_type", "UNetMidBlock2DCrossAttn"));
    TRY(want_str(root, "act_fn", "silu"));
    TRY(want_str(root, "time_embedding_type", "positional"));
    TRY(want_str(root, "resnet_time_scale_shift", "default"));
    TRY(want_str(root, "attention_type", "default"));
    TRY(want_num(root, "conv_in_kernel", 3));
    TRY(want_num(root, "conv_out_kernel", 3));
    TRY(want_num(root, "downsample_padding", 1));
    TRY(want_num(root, "mid_block_scale_factor", 1));
    TRY(want_num(root, "resnet_out_scale_factor", 1));
    const cJSON *mbt = cJSON_GetObjectItemCaseSensitive(root, "mid_block_type");
    if (mbt && cJSON_IsNull(mbt)) return err_fail(SD_ERR_UNSUPPORTED, "config.json: a UNet without mid block (mid_block_type null) is not supported");
    const cJSON *ng = cJSON_GetObjectItemCaseSensitive(root, "norm_num_groups");
    if (ng && cJSON_IsNull(ng)) return err_fail(SD_ERR_UNSUPPORTED, "config.json: norm_num_groups null (no output norm) is not supported");
    const cJSON *aet = get(root, "addition_embed_type");
    if (aet) {
        if (!cJSON_IsString(aet) || strcmp(aet->valuestring, "text_time"))
            return err_fail(SD_ERR_UNSUPPORTED, "config.json: addition_embed_type %s is not supported (only \"text_time\")",
                           cJSON_IsString(aet) ? aet->valuestring : "(not a string)");
        c->add_embed = 1;
    }

    /* levels: SD 1.x defaults when absent */
    static const int def_out[4] = {320, 640, 1280, 1280};
    int down_attn[UNET_MAX_LEVELS] = {1, 1, 1, 0}, up_attn_rev[UNET_MAX_LEVELS] = {0, 1, 1, 1};
    int nd = 4, nu = 4, nb = 4;
    TRY(block_types(root, "down_block_types", "CrossAttnDownBlock2D", "DownBlock2D", down_attn, &nd));
    TRY(block_types(root, "up_block_types", "CrossAttnUpBlock2D", "UpBlock2D", up_attn_rev, &nu));
    memcpy(c->block_out, def_out, sizeof def_out);
    const cJSON *bo = get(root, "block_out_channels");
    if (bo) {
        if (!cJSON_IsArray(bo) || cJSON_GetArraySize(bo) < 1 || cJSON_GetArraySize(bo) > UNET_MAX_LEVELS)
            return err_fail(SD_ERR_FORMAT, "config.json: \"block_out_channels\" must be a list of 1..%d integers", UNET_MAX_LEVELS);
        nb = cJSON_GetArraySize(bo);
        for (int i = 0; i < nb; i++) TRY(int_at(cJSON_GetArrayItem(bo, i), "block_out_channels", i, -1, 1, &c->block_out[i]));
    }
    if (nd != nb || nu != nb)
        return err_fail(SD_ERR_FORMAT, "config.json: %d down blocks, %d up blocks and %d block_out_channels", nd, nu, nb);
    int L = c->levels = nb;
    for (int l = L; l < UNET_MAX_LEVELS; l++) c->block_out[l] = 0;

    TRY(json_int(root, "in_channels", 1, &c->in_channels));
    TRY(json_int(root, "out_channels", 1, &c->out_channels));
    TRY(num_json_int(CFG_FILE, root, "sample_size", 1, UNET_MAX_SAMPLE_SIZE, &c->sample_size));
    for (int l = 0; l < L; l++) c->layers[l] = 2;
    TRY(json_per_level(root, "layers_per_block", L, 1, c->layers));
    for (int l = 0; l < L; l++)
        if (c->layers[l] < 1 || c->layers[l] > UNET_MAX_LAYERS)
            return err_fail(SD_ERR_UNSUPPORTED, "config.json: layers_per_block %d at level %d (1..%d supported)", c->layers[l], l, UNET_MAX_LAYERS);

    /* heads: "attention_head_dim" holds the head COUNT in SD configs (diffusers naming quirk);
     * "num_attention_heads", where given, is the same thing under its right name and wins */
    int heads[UNET_MAX_LEVELS];
    for (int l = 0; l < L; l++) heads[l] = 8;
    TRY(json_per_level(root, "attention_head_dim", L, 1, heads));
    TRY(json_per_level(root, "num_attention_heads", L, 1, heads));
    for (int l = 0; l < L; l++) c->heads[l] = heads[l];
    c->mid_heads = heads[L - 1];

    int ctx[UNET_MAX_LEVELS];
    for (int l = 0; l < L; l++) ctx[l] = 1280;
    TRY(json_per_level(root, "cross_attention_dim", L, 1, ctx));
    for (int l = 1; l < L; l++)
        if (ctx[l] != ctx[0]) return err_fail(SD_ERR_UNSUPPORTED, "config.json: per-level cross_attention_dim values differ");
    c->ctx_dim = ctx[0];

    /* transformer depth per level (and per layer); the up path mirrors it unless
     * reverse_transformer_layers_per_block says otherwise (diffusers up_blocks order, deepest first) */
    int down_d[UNET_MAX_LEVELS][UNET_MAX_LAYERS + 1], up_d[UNET_MAX_LEVELS][UNET_MAX_LAYERS + 1];
    int scalar = -1;
    for (int l = 0; l < L; l++)
        for (int k = 0; k <= UNET_MAX_LAYERS; k++) down_d[l][k] = 1;
    const cJSON *tl = get(root, "transformer_layers_per_block");
    if (tl) TRY(json_depths(tl, "transformer_layers_per_block", L, c->layers, down_d, &scalar));
    const cJSON *rtl = get(root, "reverse_transformer_layers_per_block");
    if (rtl) {
        int rev_layers[UNET_MAX_LEVELS], rev[UNET_MAX_LEVELS][UNET_MAX_LAYERS + 1], s2 = -1;
        for (int i = 0; i < L; i++) rev_layers[i] = c->layers[L - 1 - i] + 1;
        TRY(json_depths(rtl, "reverse_transformer_layers_per_block", L, rev_layers, rev, &s2));
        for (int l = 0; l < L; l++) memcpy(up_d[l], rev[L - 1 - l], sizeof up_d[l]);
    } else {
        if (tl && cJSON_IsArray(tl))
            for (int l = 0; l < L; l++)
                if (cJSON_IsArray(cJSON_GetArrayItem(tl, l)))
                    return err_fail(SD_ERR_FORMAT, "config.json: per-layer transformer_layers_per_block needs reverse_transformer_layers_per_block");
        for (int l = 0; l < L; l++)
            for (int k = 0; k <= UNET_MAX_LAYERS; k++) up_d[l][k] = down_d[l][0];
    }
    for (int l = 0; l < L; l++) {
        int up_has = up_attn_rev[L - 1 - l];
        for (int k = 0; k < c->layers[l]; k++) c->down_depth[l][k] = down_attn[l] ? down_d[l][k] : 0;
        for (int k = 0; k <= c->layers[l]; k++) c->up_depth[l][k] = up_has ? up_d[l][k] : 0;
        for (int k = 0; k < c->layers[l]; k++)
            if (down_attn[l] && c->down_depth[l][k] < 1) return err_fail(SD_ERR_FORMAT, "config.json: transformer depth %d", c->down_depth[l][k]);
        for (int k = 0; k <= c->layers[l]; k++)
            if (up_has && c->up_depth[l][k] < 1) return err_fail(SD_ERR_FORMAT, "config.json: transformer depth %d", c->up_depth[l][k]);
    }
    /* mid block: the last level's depth (diffusers passes transformer_layers_per_block[-1]; a per-layer
     * list there means its first entry, as UNetMidBlock2DCrossAttn has one attention) */
    c->mid_depth = scalar > 0 ? scalar : down_d[L - 1][0];

    int use_lin = 0;
    const cJSON *ulp = get(root, "use_linear_projection");
    if (ulp) {
        if (!cJSON_IsBool(ulp)) return err_fail(SD_ERR_FORMAT, "config.json: \"use_linear_projection\" is not a boolean");
        use_lin = cJSON_IsTrue(ulp);
    }
    c->linear_proj = use_lin;
    TRY(json_int(root, "norm_num_groups", 1, &c->norm_groups));
    TRY(num_json_float(CFG_FILE, root, "norm_eps", 1e-12, 1, &c->norm_eps));
    const cJSON *flip = get(root, "flip_sin_to_cos");
    if (flip) {
        if (!cJSON_IsBool(flip)) return err_fail(SD_ERR_FORMAT, "config.json: \"flip_sin_to_cos\" is not a boolean");
        c->flip_sin_to_cos = cJSON_IsTrue(flip);
    }
    TRY(num_json_float(CFG_FILE, root, "freq_shift", -1e6, 1e6, &c->freq_shift));
    c->temb_dim = 4 * c->block_out[0];
    TRY(json_int(root, "time_embedding_dim", 1, &c->temb_dim));
    TRY(json_int(root, "time_cond_proj_dim", 0, &c->time_cond_dim));
    if (c->add_embed) {
        c->add_time_dim = 0;
        TRY(json_int(root, "addition_time_embed_dim", 1, &c->add_time_dim));
        TRY(json_int(root, "projection_class_embeddings_input_dim", 1, &c->add_in_dim));
        if (!c->add_time_dim || !c->add_in_dim)
            return err_fail(SD_ERR_FORMAT, "config.json: text_time needs addition_time_embed_dim and projection_class_embeddings_input_dim");
    }
    return config_check(c, "config.json");
}

sd_status unet_config_from_json(const char *json, unet_config *cfg) {
    config_defaults(cfg);
    cJSON *root = cJSON_Parse(json);
    if (!root) return err_fail(SD_ERR_FORMAT, "config.json: not valid JSON");
    sd_status st = parse(root, cfg);
    cJSON_Delete(root);
    return st;
}

sd_status unet_config_from_file(const char *path, unet_config *cfg) {
    char *text;
    size_t len;
    TRY(file_read(path, 1 << 20, &text, &len));
    sd_status st = unet_config_from_json(text, cfg);
    if (st != SD_OK) err_prefix("%s", path);
    free(text);
    return st;
}

/* ---- inference from tensor names and shapes ---- */

static const st_tensor *findf(const wmap *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const st_tensor *findf(const wmap *m, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return wmap_find(m, name);
}

static sd_status need(const st_tensor *t, const char *name, int ndim) {
    if (!t) return err_fail(SD_ERR_MODEL, "UNet: missing tensor \"%s\"", name);
    if (t->ndim != ndim) return err_fail(SD_ERR_MODEL, "UNet: tensor \"%s\" has %d dimensions, expected %d", name, t->ndim, ndim);
    return SD_OK;
}

/* Transformer depth of the attention at `prefix` (counted blocks), 0 when there is none. */
static int depth_at(const wmap *m, const char *prefix) {
    int d = 0;
    while (findf(m, "%s.transformer_blocks.%d.norm1.weight", prefix, d)) d++;
    return d;
}

/* Family rule for the head count when no config says it (facts §4.4): SD 1.x (1x1-conv projections)
 * uses 8 heads everywhere; SD 2.x and SDXL (linear projections) use 64-wide heads. */
static sd_status infer_heads(int linear, int ch, const char *where, int *heads) {
    int width = linear ? 64 : 8; /* head width, or for SD 1.x the head count: both must divide ch */
    if (ch % width)
        return err_fail(SD_ERR_MODEL, "UNet: cannot infer the attention heads of %s (%d channels, not a multiple of %d): give the model's config.json",
                       where, ch, width);
    *heads = linear ? ch / 64 : 8;
    return SD_OK;
}

static sd_status infer(const wmap *m, unet_config *c, int encoder_only) {
    config_defaults(c);
    for (int i = 0; i < wmap_count(m); i++) {
        const char *n = wmap_name(m, i);
        static const char *const refused[] = {"class_embedding.", "encoder_hid_proj.", "position_net."};
        for (size_t k = 0; k < sizeof refused / sizeof *refused; k++)
            if (!strncmp(n, refused[k], strlen(refused[k])))
                return err_fail(SD_ERR_UNSUPPORTED, "UNet: tensor \"%s\": %.*s is not supported", n, (int)strlen(refused[k]) - 1, refused[k]);
    }
    const st_tensor *t = wmap_find(m, "conv_in.weight");
    TRY(need(t, "conv_in.weight", 4));
    if (t->shape[2] != 3 || t->shape[3] != 3)
        return err_fail(SD_ERR_UNSUPPORTED, "UNet: conv_in kernel %lldx%lld (only 3x3)", (long long)t->shape[2], (long long)t->shape[3]);
    c->in_channels = (int)t->shape[1];
    c->out_channels = c->in_channels; /* an encoder half has no conv_out */
    if (!encoder_only) {
        t = wmap_find(m, "conv_out.weight");
        TRY(need(t, "conv_out.weight", 4));
        c->out_channels = (int)t->shape[0];
    }

    int L = 0;
    while (L < UNET_MAX_LEVELS + 1 && findf(m, "down_blocks.%d.resnets.0.conv1.weight", L)) L++;
    if (L == 0) return err_fail(SD_ERR_MODEL, "UNet: missing tensor \"down_blocks.0.resnets.0.conv1.weight\"");
    if (L > UNET_MAX_LEVELS) return err_fail(SD_ERR_UNSUPPORTED, "UNet: more than %d levels", UNET_MAX_LEVELS);
    c->levels = L;
    char p[256];
    int first_attn = 0;
    char attn_prefix[256] = "";
    for (int l = 0; l < L; l++) {
        t = findf(m, "down_blocks.%d.resnets.0.conv1.weight", l);
        snprintf(p, sizeof p, "down_blocks.%d.resnets.0.conv1.weight", l);
        TRY(need(t, p, 4));
        c->block_out[l] = (int)t->shape[0];
        int n = 0;
        while (n <= UNET_MAX_LAYERS && findf(m, "down_blocks.%d.resnets.%d.conv1.weight", l, n)) n++;
        if (n > UNET_MAX_LAYERS) return err_fail(SD_ERR_UNSUPPORTED, "UNet: more than %d resnets at level %d", UNET_MAX_LAYERS, l);
        c->layers[l] = n;
        for (int j = 0; j < n; j++) {
            snprintf(p, sizeof p, "down_blocks.%d.attentions.%d", l, j);
            c->down_depth[l][j] = depth_at(m, p);
            if (c->down_depth[l][j] && !first_attn) { first_attn = 1; snprintf(attn_prefix, sizeof attn_prefix, "%s", p); }
        }
        if (encoder_only) { /* no up path: mirror the down path so the per-level checks see the same attention */
            for (int j = 0; j <= n; j++) c->up_depth[l][j] = c->down_depth[l][j < n ? j : n - 1];
            continue;
        }
        int up = L - 1 - l, un = 0;
        while (un <= UNET_MAX_LAYERS + 1 && findf(m, "up_blocks.%d.resnets.%d.conv1.weight", up, un)) un++;
        if (un != n + 1) {
            snprintf(p, sizeof p, "up_blocks.%d.resnets.%d.conv1.weight", up, un < n + 1 ? un : n + 1);
            return un < n + 1 ? err_fail(SD_ERR_MODEL, "UNet: missing tensor \"%s\"", p)
                              : err_fail(SD_ERR_MODEL, "UNet: unexpected tensor \"%s\" (level %d has %d resnets going down)", p, l, n);
        }
        for (int j = 0; j <= n; j++) {
            snprintf(p, sizeof p, "up_blocks.%d.attentions.%d", up, j);
            c->up_depth[l][j] = depth_at(m, p);
            if (c->up_depth[l][j] && !first_attn) { first_attn = 1; snprintf(attn_prefix, sizeof attn_prefix, "%s", p); }
        }
    }
    if (!findf(m, "mid_block.resnets.0.conv1.weight")) return err_fail(SD_ERR_MODEL, "UNet: missing tensor \"mid_block.resnets.0.conv1.weight\"");
    c->mid_depth = depth_at(m, "mid_block.attentions.0");
    if (!c->mid_depth) return err_fail(SD_ERR_UNSUPPORTED, "UNet: a mid block without cross-attention is not supported");
    if (!first_attn) snprintf(attn_prefix, sizeof attn_prefix, "mid_block.attentions.0");

    /* attention geometry from the first attention site */
    snprintf(p, sizeof p, "%s.proj_in.weight", attn_prefix);
    t = wmap_find(m, p);
    if (!t) return err_fail(SD_ERR_MODEL, "UNet: missing tensor \"%s\"", p);
    c->linear_proj = t->ndim == 2;
    snprintf(p, sizeof p, "%s.transformer_blocks.0.attn2.to_k.weight", attn_prefix);
    t = wmap_find(m, p);
    TRY(need(t, p, 2));
    c->ctx_dim = (int)t->shape[1];
    for (int l = 0; l < L; l++) {
        snprintf(p, sizeof p, "level %d", l);
        int attn = 0;
        for (int j = 0; j <= c->layers[l]; j++) attn |= (j < c->layers[l] && c->down_depth[l][j]) || c->up_depth[l][j];
        if (attn) TRY(infer_heads(c->linear_proj, c->block_out[l], p, &c->heads[l]));
    }
    TRY(infer_heads(c->linear_proj, c->block_out[L - 1], "the mid block", &c->mid_heads));

    /* time embedding (+ LCM guidance projection), SDXL add embedding */
    t = wmap_find(m, "time_embedding.linear_1.weight");
    TRY(need(t, "time_embedding.linear_1.weight", 2));
    c->temb_dim = (int)t->shape[0];
    if (t->shape[1] != c->block_out[0])
        return err_fail(SD_ERR_MODEL, "UNet: tensor \"time_embedding.linear_1.weight\" takes %lld inputs, expected %d (block_out_channels[0])",
                       (long long)t->shape[1], c->block_out[0]);
    t = wmap_find(m, "time_embedding.cond_proj.weight");
    if (t) {
        TRY(need(t, "time_embedding.cond_proj.weight", 2));
        c->time_cond_dim = (int)t->shape[1];
    }
    t = wmap_find(m, "add_embedding.linear_1.weight");
    if (t) {
        TRY(need(t, "add_embedding.linear_1.weight", 2));
        c->add_embed = 1;
        c->add_in_dim = (int)t->shape[1];
        c->add_time_dim = 256; /* SDXL base and refiner: not visible in the shapes */
    }
    for (int l = 0; l < L; l++)
        if (c->block_out[l] % c->norm_groups)
            return err_fail(SD_ERR_MODEL, "UNet: cannot infer the GroupNorm groups (%d channels at level %d, not a multiple of %d): "
                           "give the model's config.json", c->block_out[l], l, c->norm_groups);
    return config_check(c, "UNet");
}

sd_status unet_config_infer(const wmap *m, unet_config *c) { return infer(m, c, 0); }
sd_status unet_config_infer_encoder(const wmap *m, unet_config *c) { return infer(m, c, 1); }
