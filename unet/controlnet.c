/* controlnet.c — ControlNet: its weight names, configuration, loading and forward, on unet.c's encoder half. */
#include "controlnet.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/fileio.h"

#define TRY(x) do { sd_status st_ = (x); if (st_ != SD_OK) return st_; } while (0)

struct controlnet {
    controlnet_config cfg;
    unet_model *enc;                                     /* conv_in, time/add embedding, down and mid blocks */
    be_weight emb_in_w, emb_in_b, emb_out_w, emb_out_b;  /* controlnet_cond_embedding.{conv_in, conv_out} */
    be_weight emb_w[2 * CONTROLNET_MAX_EMBED], emb_b[2 * CONTROLNET_MAX_EMBED]; /* .blocks.K: 3x3, stride 1 then 2 */
    be_weight zero_w[CONTROLNET_MAX_SKIPS], zero_b[CONTROLNET_MAX_SKIPS];       /* controlnet_down_blocks.K (1x1) */
    be_weight zmid_w, zmid_b;                                                    /* controlnet_mid_block (1x1) */
    int nskip;
};

const controlnet_config *controlnet_get_config(const controlnet *cn) { return &cn->cfg; }
int controlnet_hint_bgr(const controlnet *cn) { return cn->cfg.bgr; }

/* ---- names ---- */

typedef struct ldm_names {
    int lpb;        /* layers per block of the UNet copy */
    int hint_last;  /* index of the last input_hint_block conv (conv_out) */
} ldm_names;

static int parse_index(const char *s, const char *head, int *k, const char **rest) {
    size_t n = strlen(head);
    if (strncmp(s, head, n)) return 0;
    char *e;
    long v = strtol(s + n, &e, 10);
    if (e == s + n || *e != '.' || v < 0 || v > 10000) return 0;
    *k = (int)v;
    *rest = e + 1;
    return 1;
}

/* lllyasviel's layout: input_hint_block is a Sequential of convs with SiLUs between (convs at even indices:
 * conv_in, then the blocks, the last is conv_out), zero_convs.K.0 and middle_block_out.0 the 1x1 zero convs. */
static int rename_ldm(const char *src, char *dst, size_t cap, void *user) {
    const ldm_names *ln = user;
    const char *rest;
    int k;
    if (parse_index(src, "input_hint_block.", &k, &rest) && k % 2 == 0) {
        if (k == 0) return snprintf(dst, cap, "controlnet_cond_embedding.conv_in.%s", rest) < (int)cap;
        if (k == ln->hint_last) return snprintf(dst, cap, "controlnet_cond_embedding.conv_out.%s", rest) < (int)cap;
        return snprintf(dst, cap, "controlnet_cond_embedding.blocks.%d.%s", k / 2 - 1, rest) < (int)cap;
    }
    if (parse_index(src, "zero_convs.", &k, &rest) && !strncmp(rest, "0.", 2))
        return snprintf(dst, cap, "controlnet_down_blocks.%d.%s", k, rest + 2) < (int)cap;
    if (!strncmp(src, "middle_block_out.0.", 19)) return snprintf(dst, cap, "controlnet_mid_block.%s", src + 19) < (int)cap;
    if (!unet_ldm_to_diffusers(src, ln->lpb, dst, cap)) snprintf(dst, cap, "%s", src); /* kept: reported as unexpected */
    return 1;
}

sd_status controlnet_add_tensors(wmap *m, const st_file *f) {
    if (st_find(f, "controlnet_cond_embedding.conv_in.weight")) return wmap_add_file(m, f, "", NULL, NULL);
    const char *prefix = st_find(f, "control_model.input_hint_block.0.weight") ? "control_model."
                         : st_find(f, "input_hint_block.0.weight")               ? ""
                                                                                 : NULL;
    if (!prefix)
        return err_fail(SD_ERR_MODEL, "%s: not a ControlNet (no \"controlnet_cond_embedding.conv_in.weight\" or "
                                      "\"control_model.input_hint_block.0.weight\")", st_path(f));
    int n = st_count(f);
    const char **list = malloc((n ? n : 1) * sizeof *list);
    if (!list) return err_fail(SD_ERR_MEMORY, "out of memory");
    ldm_names ln = {2, 0};
    size_t pl = strlen(prefix);
    for (int i = 0; i < n; i++) {
        list[i] = st_at(f, i)->name;
        const char *rest;
        int k;
        if (!strncmp(list[i], prefix, pl) && parse_index(list[i] + pl, "input_hint_block.", &k, &rest) && k > ln.hint_last) ln.hint_last = k;
    }
    sd_status st = unet_ldm_layers_per_block(list, n, prefix, &ln.lpb);
    free(list);
    if (st != SD_OK) {
        err_prefix("%s", st_path(f));
        return st;
    }
    return wmap_add_file(m, f, prefix, rename_ldm, &ln);
}

/* ---- configuration ---- */

static sd_status check_embed(const controlnet_config *c, const char *what) {
    if (c->cond_channels < 1 || c->cond_channels > 16) return err_fail(SD_ERR_FORMAT, "%s: %d conditioning channels", what, c->cond_channels);
    if (c->n_embed < 1 || c->n_embed > CONTROLNET_MAX_EMBED)
        return err_fail(SD_ERR_UNSUPPORTED, "%s: %d conditioning embedding levels (1..%d supported)", what, c->n_embed, CONTROLNET_MAX_EMBED);
    for (int i = 0; i < c->n_embed; i++)
        if (c->embed[i] < 1) return err_fail(SD_ERR_FORMAT, "%s: conditioning_embedding_out_channels[%d] = %d", what, i, c->embed[i]);
    return SD_OK;
}

/* The UNet config parser reads a ControlNetModel's config once it looks like a UNet's: same class name, and an
 * up path (not used) mirroring the down path without attention, so nothing about it is checked. */
static sd_status parse_json(cJSON *root, controlnet_config *cfg) {
    if (!cJSON_IsObject(root)) return err_fail(SD_ERR_FORMAT, "config.json: not a JSON object");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(root, "_class_name");
    if (cls && (!cJSON_IsString(cls) || strcmp(cls->valuestring, "ControlNetModel")))
        return err_fail(SD_ERR_UNSUPPORTED, "config.json: _class_name %s is not supported (only \"ControlNetModel\")",
                        cJSON_IsString(cls) ? cls->valuestring : "(not a string)");
    const cJSON *gp = cJSON_GetObjectItemCaseSensitive(root, "global_pool_conditions");
    if (cJSON_IsTrue(gp)) return err_fail(SD_ERR_UNSUPPORTED, "config.json: global_pool_conditions (shuffle ControlNets) is not supported");
    cfg->cond_channels = 3;
    const cJSON *cc = cJSON_GetObjectItemCaseSensitive(root, "conditioning_channels");
    if (cc && !cJSON_IsNull(cc)) {
        if (!cJSON_IsNumber(cc)) return err_fail(SD_ERR_FORMAT, "config.json: \"conditioning_channels\" is not a number");
        cfg->cond_channels = cc->valueint;
    }
    static const int def[4] = {16, 32, 96, 256};
    memcpy(cfg->embed, def, sizeof def);
    cfg->n_embed = 4;
    const cJSON *eo = cJSON_GetObjectItemCaseSensitive(root, "conditioning_embedding_out_channels");
    if (eo && !cJSON_IsNull(eo)) {
        if (!cJSON_IsArray(eo) || cJSON_GetArraySize(eo) < 1 || cJSON_GetArraySize(eo) > CONTROLNET_MAX_EMBED)
            return err_fail(SD_ERR_FORMAT, "config.json: \"conditioning_embedding_out_channels\" must be a list of 1..%d integers", CONTROLNET_MAX_EMBED);
        cfg->n_embed = cJSON_GetArraySize(eo);
        for (int i = 0; i < cfg->n_embed; i++) {
            const cJSON *e = cJSON_GetArrayItem(eo, i);
            if (!cJSON_IsNumber(e)) return err_fail(SD_ERR_FORMAT, "config.json: \"conditioning_embedding_out_channels\"[%d] is not a number", i);
            cfg->embed[i] = e->valueint;
        }
    }
    const cJSON *order = cJSON_GetObjectItemCaseSensitive(root, "controlnet_conditioning_channel_order");
    if (order && !cJSON_IsNull(order)) {
        if (!cJSON_IsString(order) || (strcmp(order->valuestring, "rgb") && strcmp(order->valuestring, "bgr")))
            return err_fail(SD_ERR_FORMAT, "config.json: controlnet_conditioning_channel_order must be \"rgb\" or \"bgr\"");
        cfg->bgr = !strcmp(order->valuestring, "bgr");
    }
    TRY(check_embed(cfg, "config.json"));

    /* as a UNet */
    cJSON_ReplaceItemInObjectCaseSensitive(root, "_class_name", cJSON_CreateString("UNet2DConditionModel"));
    const cJSON *down = cJSON_GetObjectItemCaseSensitive(root, "down_block_types");
    int nd = cJSON_IsArray(down) ? cJSON_GetArraySize(down) : 4;
    cJSON *up = cJSON_CreateArray();
    for (int i = 0; i < nd; i++) cJSON_AddItemToArray(up, cJSON_CreateString("UpBlock2D"));
    cJSON_DeleteItemFromObjectCaseSensitive(root, "up_block_types");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "reverse_transformer_layers_per_block");
    cJSON_AddItemToObject(root, "up_block_types", up);
    char *text = cJSON_PrintUnformatted(root);
    if (!text) return err_fail(SD_ERR_MEMORY, "out of memory");
    sd_status st = unet_config_from_json(text, &cfg->unet);
    free(text);
    return st;
}

sd_status controlnet_config_from_json(const char *json, controlnet_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_Parse(json);
    if (!root) return err_fail(SD_ERR_FORMAT, "config.json: not valid JSON");
    sd_status st = parse_json(root, cfg);
    cJSON_Delete(root);
    return st;
}

sd_status controlnet_config_from_file(const char *path, controlnet_config *cfg) {
    char *text;
    size_t len;
    TRY(file_read(path, 1 << 20, &text, &len));
    sd_status st = controlnet_config_from_json(text, cfg);
    if (st != SD_OK) err_prefix("%s", path);
    free(text);
    return st;
}

sd_status controlnet_config_infer(const wmap *m, controlnet_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    TRY(unet_config_infer_encoder(m, &cfg->unet));
    const st_tensor *t = wmap_find(m, "controlnet_cond_embedding.conv_in.weight");
    if (!t || t->ndim != 4) return err_fail(SD_ERR_MODEL, "ControlNet: missing tensor \"controlnet_cond_embedding.conv_in.weight\"");
    cfg->cond_channels = (int)t->shape[1];
    cfg->embed[0] = (int)t->shape[0];
    int nb = 0;
    char name[128];
    for (;;) {
        snprintf(name, sizeof name, "controlnet_cond_embedding.blocks.%d.weight", nb);
        const st_tensor *bt = wmap_find(m, name);
        if (!bt) break;
        if (bt->ndim != 4) return err_fail(SD_ERR_MODEL, "ControlNet: tensor \"%s\" has %d dimensions, expected 4", name, bt->ndim);
        if (nb % 2 && (nb + 1) / 2 < CONTROLNET_MAX_EMBED) cfg->embed[(nb + 1) / 2] = (int)bt->shape[0];
        nb++;
    }
    if (nb % 2) return err_fail(SD_ERR_MODEL, "ControlNet: %d conditioning embedding blocks (pairs expected)", nb);
    cfg->n_embed = nb / 2 + 1;
    cfg->unet.sample_size = 0;
    return check_embed(cfg, "ControlNet");
}

/* ---- loading ---- */

static sd_status load_conv(be *b, wmap *m, be_weight *w, be_weight *bias, int out, int in, int k, const char *p) {
    if (k == 1) TRY(wmap_linear(b, m, w, out, in, "%s.weight", p));
    else TRY(wmap_load(b, m, w, BE_W_CONV, out, in, k, k, "%s.weight", p));
    return wmap_vec(b, m, bias, out, "%s.bias", p);
}

static sd_status load_rest(be *b, wmap *m, controlnet *cn) {
    const controlnet_config *c = &cn->cfg;
    const unet_config *u = &c->unet;
    char p[128];
    TRY(load_conv(b, m, &cn->emb_in_w, &cn->emb_in_b, c->embed[0], c->cond_channels, 3, "controlnet_cond_embedding.conv_in"));
    for (int i = 0; i + 1 < c->n_embed; i++) {
        snprintf(p, sizeof p, "controlnet_cond_embedding.blocks.%d", 2 * i);
        TRY(load_conv(b, m, &cn->emb_w[2 * i], &cn->emb_b[2 * i], c->embed[i], c->embed[i], 3, p));
        snprintf(p, sizeof p, "controlnet_cond_embedding.blocks.%d", 2 * i + 1);
        TRY(load_conv(b, m, &cn->emb_w[2 * i + 1], &cn->emb_b[2 * i + 1], c->embed[i + 1], c->embed[i], 3, p));
    }
    TRY(load_conv(b, m, &cn->emb_out_w, &cn->emb_out_b, u->block_out[0], c->embed[c->n_embed - 1], 3, "controlnet_cond_embedding.conv_out"));
    cn->nskip = unet_skip_count(u);
    for (int i = 0; i < cn->nskip; i++) {
        int sh, sw, sc;
        unet_skip_shape(u, i, 8, 8, &sh, &sw, &sc);
        snprintf(p, sizeof p, "controlnet_down_blocks.%d", i);
        TRY(load_conv(b, m, &cn->zero_w[i], &cn->zero_b[i], sc, sc, 1, p));
    }
    int top = u->block_out[u->levels - 1];
    TRY(load_conv(b, m, &cn->zmid_w, &cn->zmid_b, top, top, 1, "controlnet_mid_block"));
    char names[1024];
    int extra = wmap_unused(m, names, sizeof names);
    if (extra) {
        if (strlen(names) >= sizeof names - 1) strcpy(names + sizeof names - 5, "...");
        return err_fail(SD_ERR_MODEL, "%d unexpected tensor%s for this ControlNet configuration: %s", extra, extra > 1 ? "s" : "", names);
    }
    return SD_OK;
}

sd_status controlnet_load(be *b, wmap *m, const controlnet_config *cfg, controlnet **out) {
    *out = NULL;
    if (unet_skip_count(&cfg->unet) > CONTROLNET_MAX_SKIPS) return err_fail(SD_ERR_UNSUPPORTED, "ControlNet: too many skip connections");
    controlnet *cn = calloc(1, sizeof *cn);
    if (!cn) return err_fail(SD_ERR_MEMORY, "out of memory");
    cn->cfg = *cfg;
    sd_status st = unet_load_encoder(b, m, &cfg->unet, &cn->enc);
    if (st == SD_OK) {
        st = load_rest(b, m, cn);
        if (st != SD_OK) err_prefix("ControlNet");
    }
    if (st != SD_OK) {
        controlnet_free(b, cn);
        return st;
    }
    *out = cn;
    return SD_OK;
}

void controlnet_free(be *b, controlnet *cn) {
    if (!cn) return;
    unet_free(b, cn->enc);
    be_weight *ws[] = {&cn->emb_in_w, &cn->emb_in_b, &cn->emb_out_w, &cn->emb_out_b, &cn->zmid_w, &cn->zmid_b};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) be_weight_free(b, ws[i]);
    for (int i = 0; i < 2 * CONTROLNET_MAX_EMBED; i++) {
        be_weight_free(b, &cn->emb_w[i]);
        be_weight_free(b, &cn->emb_b[i]);
    }
    for (int i = 0; i < CONTROLNET_MAX_SKIPS; i++) {
        be_weight_free(b, &cn->zero_w[i]);
        be_weight_free(b, &cn->zero_b[i]);
    }
    free(cn);
}

/* ---- forward ---- */

/* The control image's embedding: conv_in, SiLU, then per level a 3x3 conv, SiLU, a stride-2 3x3 conv, SiLU, and
 * the (zero-initialised) conv_out, down to the latent's size: hint [N, H, W, cond] -> out [N, h, w, block_out[0]]. */
static void embed_hint(be *b, const controlnet *cn, const be_tensor *hint, be_tensor *out) {
    const controlnet_config *c = &cn->cfg;
    size_t mark = be_mark(b);
    be_tensor h = be_new(b, hint->n, hint->h, hint->w, c->embed[0]);
    be_conv2d(b, hint, &cn->emb_in_w, &cn->emb_in_b, 1, 1, 1, &h);
    be_act_fn(b, BE_ACT_SILU, &h, &h);
    for (int i = 0; i + 1 < c->n_embed; i++) {
        be_tensor a = be_new(b, h.n, h.h, h.w, c->embed[i]);
        be_conv2d(b, &h, &cn->emb_w[2 * i], &cn->emb_b[2 * i], 1, 1, 1, &a);
        be_act_fn(b, BE_ACT_SILU, &a, &a);
        be_tensor d = be_new(b, h.n, (h.h + 1) / 2, (h.w + 1) / 2, c->embed[i + 1]);
        be_conv2d(b, &a, &cn->emb_w[2 * i + 1], &cn->emb_b[2 * i + 1], 2, 1, 1, &d);
        be_act_fn(b, BE_ACT_SILU, &d, &d);
        h = d;
    }
    be_conv2d(b, &h, &cn->emb_out_w, &cn->emb_out_b, 1, 1, 1, out);
    be_release(b, mark);
}

/* out (=|+=) scale · zero_conv(x) */
static void zero_conv(be *b, const be_weight *w, const be_weight *bias, const be_tensor *x, float scale, int accumulate, const be_tensor *out) {
    be_tensor o = *out;
    if (!accumulate) {
        be_linear(b, x, w, bias, BE_ACT_NONE, &o);
        if (scale != 1.0f) be_add(b, &o, &o, scale - 1.0f, &o); /* o + (s - 1) o: the backend contract has no scale op */
        return;
    }
    size_t mark = be_mark(b);
    be_tensor t = be_new(b, x->n, x->h, x->w, out->c);
    be_linear(b, x, w, bias, BE_ACT_NONE, &t);
    be_add(b, &o, &t, scale, &o);
    be_release(b, mark);
}

void controlnet_forward(be *b, const controlnet *cn, const be_tensor *x, const float *ts, const unet_cond *c, const be_tensor *hint,
                        const float *scales, int accumulate, const unet_control *out) {
    if (!be_ok(b)) return;
    const unet_config *u = &cn->cfg.unet;
    int down = 1 << (cn->cfg.n_embed - 1);
    if (!x || !hint || !out || !scales || out->count != cn->nskip || !out->down || !out->mid) {
        be_set_error(b, SD_ERR_ARG, "controlnet_forward: missing input or %d residuals for %d skips", out ? out->count : 0, cn->nskip);
        return;
    }
    if (hint->n != x->n || hint->c != cn->cfg.cond_channels || (hint->h + down - 1) / down != x->h || (hint->w + down - 1) / down != x->w) {
        be_set_error(b, SD_ERR_ARG, "controlnet_forward: control image [%d,%d,%d,%d] for latents [%d,%d,%d,%d] (%d channels, %dx smaller)", hint->n,
                     hint->h, hint->w, hint->c, x->n, x->h, x->w, x->c, cn->cfg.cond_channels, down);
        return;
    }
    for (int i = 0; i <= cn->nskip; i++) {
        const be_tensor *r = i < cn->nskip ? &out->down[i] : out->mid;
        int sh, sw, sc;
        if (i < cn->nskip) unet_skip_shape(u, i, x->h, x->w, &sh, &sw, &sc);
        else unet_skip_shape(u, cn->nskip - 1, x->h, x->w, &sh, &sw, &sc), sc = u->block_out[u->levels - 1];
        if (r->n != x->n || r->h != sh || r->w != sw || r->c != sc) {
            be_set_error(b, SD_ERR_ARG, "controlnet_forward: residual %d is [%d,%d,%d,%d], expected [%d,%d,%d,%d]", i, r->n, r->h, r->w, r->c,
                         x->n, sh, sw, sc);
            return;
        }
    }
    size_t mark = be_mark(b);
    be_tensor emb = be_new(b, x->n, x->h, x->w, u->block_out[0]);
    embed_hint(b, cn, hint, &emb);
    be_tensor skips[CONTROLNET_MAX_SKIPS], mid;
    unet_cond cc = *c;
    cc.control = NULL;
    unet_encode(b, cn->enc, x, ts, &cc, &emb, skips, &mid);
    for (int i = 0; i < cn->nskip; i++) zero_conv(b, &cn->zero_w[i], &cn->zero_b[i], &skips[i], scales[i], accumulate, &out->down[i]);
    zero_conv(b, &cn->zmid_w, &cn->zmid_b, &mid, scales[cn->nskip], accumulate, out->mid);
    be_release(b, mark);
}
