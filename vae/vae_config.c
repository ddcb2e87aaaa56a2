/* vae_config.c — AutoencoderKL config (diffusers config.json or inferred from shapes) and the mapping of
 * original (LDM) and diffusers tensor names onto one canonical (diffusers) spelling. */
#include "vae.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/numparse.h"

void vae_config_default(vae_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = c->out_channels = 3;
    c->latent_channels = 4;
    c->levels = 4;
    c->block_out[0] = 128; c->block_out[1] = 256; c->block_out[2] = 512; c->block_out[3] = 512;
    c->layers_per_block = 2;
    c->groups = 32;
    c->mid_attention = c->quant_conv = c->post_quant_conv = 1;
    c->scaling_factor = VAE_SCALING_SD1;
}

sd_status vae_config_check(const vae_config *c) {
    if (c->levels < 1 || c->levels > VAE_MAX_LEVELS) return err_fail(SD_ERR_UNSUPPORTED, "VAE with %d levels (1..%d supported)", c->levels, VAE_MAX_LEVELS);
    if (c->latent_channels < 1 || c->latent_channels > VAE_MAX_LATENT)
        return err_fail(SD_ERR_UNSUPPORTED, "VAE with %d latent channels (1..%d supported)", c->latent_channels, VAE_MAX_LATENT);
    if (c->in_channels < 1 || c->out_channels < 1 || c->in_channels > 64 || c->out_channels > 64)
        return err_fail(SD_ERR_FORMAT, "VAE image channels in %d, out %d", c->in_channels, c->out_channels);
    if (c->layers_per_block < 1 || c->layers_per_block > 16) return err_fail(SD_ERR_FORMAT, "VAE layers_per_block %d", c->layers_per_block);
    if (c->groups < 1) return err_fail(SD_ERR_FORMAT, "VAE norm_num_groups %d", c->groups);
    for (int l = 0; l < c->levels; l++) {
        if (c->block_out[l] < 1 || c->block_out[l] > 65536) return err_fail(SD_ERR_FORMAT, "VAE block_out_channels[%d] = %d", l, c->block_out[l]);
        if (c->block_out[l] % c->groups)
            return err_fail(SD_ERR_FORMAT, "VAE block_out_channels[%d] = %d is not divisible by norm_num_groups %d", l, c->block_out[l], c->groups);
    }
    if (!(c->scaling_factor > 0) || c->scaling_factor > 1e6f) return err_fail(SD_ERR_FORMAT, "VAE scaling_factor %g", c->scaling_factor);
    if (c->has_latents_mean_std)
        for (int i = 0; i < c->latent_channels; i++)
            if (!(c->latents_std[i] > 0)) return err_fail(SD_ERR_FORMAT, "VAE latents_std[%d] = %g", i, c->latents_std[i]);
    return SD_OK;
}

/* ---- config.json ---- */

static int json_bool(const cJSON *o, const char *key, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) return 1;
    if (!cJSON_IsBool(j)) return 0;
    *out = cJSON_IsTrue(j);
    return 1;
}

/* An array of at most cap numbers in [lo, hi] (null/absent: *count = 0). */
static sd_status json_floats(const char *what, const cJSON *o, const char *key, double lo, double hi, float *out, int cap, int *count) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key), *e;
    *count = 0;
    if (!j || cJSON_IsNull(j)) return SD_OK;
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) > cap)
        return err_fail(SD_ERR_FORMAT, "%s: \"%s\" must be a list of at most %d numbers", what, key, cap);
    cJSON_ArrayForEach(e, j) {
        char name[96];
        double v;
        snprintf(name, sizeof name, "%s[%d]", key, *count);
        sd_status st = num_double_value(what, e, name, lo, hi, &v);
        if (st != SD_OK) return st;
        out[(*count)++] = (float)v;
    }
    return SD_OK;
}

/* Every entry of the array `key` (if present) must equal `want`. */
static int json_all_str(const cJSON *o, const char *key, const char *want, int *count) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key), *e;
    *count = -1;
    if (!j) return 1;
    if (!cJSON_IsArray(j)) return 0;
    *count = 0;
    cJSON_ArrayForEach(e, j) {
        if (!cJSON_IsString(e) || strcmp(e->valuestring, want)) return 0;
        (*count)++;
    }
    return 1;
}

sd_status vae_config_from_json_text(const char *text, size_t len, const char *what, vae_config *c) {
    cJSON *o = cJSON_ParseWithLength(text, len);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return err_fail(SD_ERR_FORMAT, "%s: not a JSON object", what);
    }
    sd_status st = SD_OK;
    /* diffusers' AutoencoderKL defaults for keys a config leaves out */
    memset(c, 0, sizeof *c);
    c->in_channels = c->out_channels = 3;
    c->latent_channels = 4;
    c->levels = 1;
    c->block_out[0] = 64;
    c->layers_per_block = 1;
    c->groups = 32;
    c->mid_attention = c->quant_conv = c->post_quant_conv = 1;
    c->scaling_factor = 0.18215f;
    c->force_upcast = 1;
    const char *bad = NULL;
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(o, "_class_name");
    if (cls && (!cJSON_IsString(cls) || strcmp(cls->valuestring, "AutoencoderKL"))) {
        st = err_fail(SD_ERR_UNSUPPORTED, "%s: class \"%s\" is not AutoencoderKL", what, cJSON_IsString(cls) ? cls->valuestring : "?");
        goto done;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(o, "act_fn");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu"))) {
        st = err_fail(SD_ERR_UNSUPPORTED, "%s: act_fn \"%s\" (only silu)", what, cJSON_IsString(act) ? act->valuestring : "?");
        goto done;
    }
    float boc[VAE_MAX_LEVELS + 1];
    int nboc = 0, ndown, nup, has_shift = 0;
    if ((st = num_json_int(what, o, "in_channels", 1, 64, &c->in_channels)) != SD_OK ||
        (st = num_json_int(what, o, "out_channels", 1, 64, &c->out_channels)) != SD_OK ||
        (st = num_json_int(what, o, "latent_channels", 1, VAE_MAX_LATENT, &c->latent_channels)) != SD_OK ||
        (st = num_json_int(what, o, "layers_per_block", 1, 16, &c->layers_per_block)) != SD_OK ||
        (st = num_json_int(what, o, "norm_num_groups", 1, 65536, &c->groups)) != SD_OK ||
        (st = num_json_float(what, o, "scaling_factor", 1e-6, 1e6, &c->scaling_factor)) != SD_OK ||
        (st = json_floats(what, o, "block_out_channels", 1, 65536, boc, VAE_MAX_LEVELS + 1, &nboc)) != SD_OK)
        goto done;
    const cJSON *shift = cJSON_GetObjectItemCaseSensitive(o, "shift_factor");
    if (shift && !cJSON_IsNull(shift)) {
        if ((st = num_json_float(what, o, "shift_factor", -1e6, 1e6, &c->shift_factor)) != SD_OK) goto done;
        has_shift = 1;
    }
    if (!json_bool(o, "mid_block_add_attention", &c->mid_attention)) bad = "mid_block_add_attention";
    else if (!json_bool(o, "use_quant_conv", &c->quant_conv)) bad = "use_quant_conv";
    else if (!json_bool(o, "use_post_quant_conv", &c->post_quant_conv)) bad = "use_post_quant_conv";
    else if (!json_bool(o, "force_upcast", &c->force_upcast)) bad = "force_upcast";
    if (bad) { st = err_fail(SD_ERR_FORMAT, "%s: bad value for \"%s\"", what, bad); goto done; }
    if (nboc) {
        if (nboc > VAE_MAX_LEVELS) { st = err_fail(SD_ERR_UNSUPPORTED, "%s: %d levels (at most %d)", what, nboc, VAE_MAX_LEVELS); goto done; }
        c->levels = nboc;
        for (int i = 0; i < nboc; i++) {
            c->block_out[i] = (int)boc[i]; /* in [1, 65536]: exact in a float */
            if ((float)c->block_out[i] != boc[i]) { st = err_fail(SD_ERR_FORMAT, "%s: block_out_channels[%d] is not an integer", what, i); goto done; }
        }
    }
    if (!json_all_str(o, "down_block_types", "DownEncoderBlock2D", &ndown) || !json_all_str(o, "up_block_types", "UpDecoderBlock2D", &nup)) {
        st = err_fail(SD_ERR_UNSUPPORTED, "%s: block types other than DownEncoderBlock2D / UpDecoderBlock2D", what);
        goto done;
    }
    if ((ndown >= 0 && ndown != c->levels) || (nup >= 0 && nup != c->levels)) {
        st = err_fail(SD_ERR_FORMAT, "%s: %d down and %d up block types for %d block_out_channels", what, ndown, nup, c->levels);
        goto done;
    }
    if (!has_shift) c->shift_factor = 0;
    int nmean, nstd;
    if ((st = json_floats(what, o, "latents_mean", -1e6, 1e6, c->latents_mean, VAE_MAX_LATENT, &nmean)) != SD_OK ||
        (st = json_floats(what, o, "latents_std", -1e6, 1e6, c->latents_std, VAE_MAX_LATENT, &nstd)) != SD_OK)
        goto done;
    if (nmean || nstd) {
        if (nmean != c->latent_channels || nstd != c->latent_channels) {
            st = err_fail(SD_ERR_FORMAT, "%s: latents_mean has %d and latents_std %d entries for %d latent channels", what, nmean, nstd, c->latent_channels);
            goto done;
        }
        c->has_latents_mean_std = 1;
    }
    st = vae_config_check(c);
    if (st != SD_OK) err_prefix("%s", what);
done:
    cJSON_Delete(o);
    return st;
}

sd_status vae_config_from_json(const char *path, vae_config *c) {
    char *text;
    size_t len;
    sd_status st = file_read(path, 1 << 20, &text, &len);
    if (st != SD_OK) return st;
    st = vae_config_from_json_text(text, len, path, c);
    free(text);
    return st;
}

/* ---- inference from shapes ---- */

static const st_tensor *shape_of(const wmap *m, const char *name, int ndim_min) {
    const st_tensor *t = wmap_find(m, name);
    return t && t->ndim >= ndim_min ? t : NULL;
}

sd_status vae_config_infer(const wmap *m, vae_config *c) {
    vae_config_default(c);
    const st_tensor *t;
    int dec = wmap_has(m, "decoder.conv_in.weight"), enc = wmap_has(m, "encoder.conv_in.weight");
    if (!dec && !enc) return err_fail(SD_ERR_MODEL, "no VAE tensors (decoder.conv_in.weight / encoder.conv_in.weight)");
    char name[128];
    int L = 0;
    const char *part = dec ? "decoder.up_blocks" : "encoder.down_blocks";
    while (L < VAE_MAX_LEVELS + 1 && (snprintf(name, sizeof name, "%s.%d.resnets.0.conv2.weight", part, L), wmap_has(m, "%s", name))) L++;
    if (L == 0 || L > VAE_MAX_LEVELS) return err_fail(SD_ERR_MODEL, "VAE: cannot count the levels (%s.N.resnets.0.conv2.weight: %d found)", part, L);
    c->levels = L;
    memset(c->block_out, 0, sizeof c->block_out);
    for (int i = 0; i < L; i++) {
        snprintf(name, sizeof name, "%s.%d.resnets.0.conv2.weight", part, i);
        if (!(t = shape_of(m, name, 1))) return err_fail(SD_ERR_MODEL, "VAE: tensor \"%s\" has no shape", name);
        c->block_out[dec ? L - 1 - i : i] = (int)t->shape[0];
    }
    int nres = 0;
    while (nres < 64 && wmap_has(m, "%s.0.resnets.%d.conv1.weight", part, nres)) nres++;
    c->layers_per_block = dec ? nres - 1 : nres;
    if (dec) {
        if (!(t = shape_of(m, "decoder.conv_in.weight", 2))) return err_fail(SD_ERR_MODEL, "VAE: decoder.conv_in.weight is not a conv weight");
        c->latent_channels = (int)t->shape[1];
        if ((t = shape_of(m, "decoder.conv_out.weight", 1))) c->out_channels = (int)t->shape[0];
        c->mid_attention = wmap_has(m, "decoder.mid_block.attentions.0.to_q.weight");
        c->post_quant_conv = wmap_has(m, "post_quant_conv.weight");
    }
    if (enc) {
        if (!(t = shape_of(m, "encoder.conv_in.weight", 2))) return err_fail(SD_ERR_MODEL, "VAE: encoder.conv_in.weight is not a conv weight");
        c->in_channels = (int)t->shape[1];
        if (!dec) {
            if (!(t = shape_of(m, "encoder.conv_out.weight", 1))) return err_fail(SD_ERR_MODEL, "VAE: missing encoder.conv_out.weight");
            c->latent_channels = (int)t->shape[0] / 2;
            c->mid_attention = wmap_has(m, "encoder.mid_block.attentions.0.to_q.weight");
        }
        c->quant_conv = wmap_has(m, "quant_conv.weight");
    }
    /* not vae_config_check: the assumed group count may not suit a small model; vae_load checks */
    return SD_OK;
}

/* ---- names ---- */

/* "<a>.<int>.<rest>" at s: parses the int after the literal a, returns rest or NULL. */
static const char *eat_index(const char *s, const char *a, int *idx) {
    size_t n = strlen(a);
    if (strncmp(s, a, n)) return NULL;
    s += n;
    if (*s < '0' || *s > '9') return NULL;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end != '.' || v > 1000) return NULL;
    *idx = (int)v;
    return end + 1;
}

static int is_vae_root(const char *s) {
    return !strncmp(s, "encoder.", 8) || !strncmp(s, "decoder.", 8) || !strncmp(s, "quant_conv.", 11) || !strncmp(s, "post_quant_conv.", 16);
}

/* A resnet's inner name: nin_shortcut -> conv_shortcut, the rest is the same. */
static int put_resnet(char *dst, size_t cap, const char *head, const char *rest) {
    if (!strncmp(rest, "nin_shortcut.", 13)) return snprintf(dst, cap, "%sconv_shortcut.%s", head, rest + 13) < (int)cap;
    return snprintf(dst, cap, "%s%s", head, rest) < (int)cap;
}

int vae_ldm_rename(const char *src, int levels, char *dst, size_t cap) {
    if (!is_vae_root(src)) return 0;
    if (strncmp(src, "encoder.", 8) && strncmp(src, "decoder.", 8)) return snprintf(dst, cap, "%s", src) < (int)cap;
    char part[9];
    memcpy(part, src, 8);
    part[8] = 0;
    const char *s = src + 8, *r;
    char head[128];
    int l, j;
    if ((r = eat_index(s, "down.", &l))) {
        const char *q = eat_index(r, "block.", &j);
        if (q) {
            snprintf(head, sizeof head, "%sdown_blocks.%d.resnets.%d.", part, l, j);
            return put_resnet(dst, cap, head, q);
        }
        if (!strncmp(r, "downsample.", 11)) return snprintf(dst, cap, "%sdown_blocks.%d.downsamplers.0.%s", part, l, r + 11) < (int)cap;
    } else if ((r = eat_index(s, "up.", &l)) && l < levels) {
        int i = levels - 1 - l; /* LDM numbers decoder levels from the image side */
        const char *q = eat_index(r, "block.", &j);
        if (q) {
            snprintf(head, sizeof head, "%sup_blocks.%d.resnets.%d.", part, i, j);
            return put_resnet(dst, cap, head, q);
        }
        if (!strncmp(r, "upsample.", 9)) return snprintf(dst, cap, "%sup_blocks.%d.upsamplers.0.%s", part, i, r + 9) < (int)cap;
    } else if (!strncmp(s, "mid.block_", 10) && (s[10] == '1' || s[10] == '2') && s[11] == '.') {
        snprintf(head, sizeof head, "%smid_block.resnets.%d.", part, s[10] - '1');
        return put_resnet(dst, cap, head, s + 12);
    } else if (!strncmp(s, "mid.attn_1.", 11)) {
        static const char *const from[] = {"norm.", "q.", "k.", "v.", "proj_out."};
        static const char *const to[] = {"group_norm.", "to_q.", "to_k.", "to_v.", "to_out.0."};
        for (int k = 0; k < 5; k++)
            if (!strncmp(s + 11, from[k], strlen(from[k])))
                return snprintf(dst, cap, "%smid_block.attentions.0.%s%s", part, to[k], s + 11 + strlen(from[k])) < (int)cap;
    } else if (!strncmp(s, "norm_out.", 9)) {
        return snprintf(dst, cap, "%sconv_norm_out.%s", part, s + 9) < (int)cap;
    }
    return snprintf(dst, cap, "%s", src) < (int)cap; /* conv_in, conv_out, or unknown: kept, reported unused */
}

static int ldm_rename_cb(const char *src, char *dst, size_t cap, void *user) {
    return vae_ldm_rename(src, *(const int *)user, dst, cap);
}

/* diffusers names are canonical, except the attention names of files saved before diffusers 0.14. */
static int diffusers_rename_cb(const char *src, char *dst, size_t cap, void *user) {
    (void)user;
    if (!is_vae_root(src)) return 0;
    const char *a = strstr(src, ".mid_block.attentions.0.");
    if (a) {
        static const char *const from[] = {"query.", "key.", "value.", "proj_attn."};
        static const char *const to[] = {"to_q.", "to_k.", "to_v.", "to_out.0."};
        const char *s = a + 24;
        for (int k = 0; k < 4; k++)
            if (!strncmp(s, from[k], strlen(from[k])))
                return snprintf(dst, cap, "%.*s%s%s", (int)(s - src), src, to[k], s + strlen(from[k])) < (int)cap;
    }
    return snprintf(dst, cap, "%s", src) < (int)cap;
}

vae_layout vae_detect_layout(const st_file *f, const char *prefix) {
    size_t pl = strlen(prefix);
    for (int i = 0; i < st_count(f); i++) {
        const char *n = st_at(f, i)->name;
        if (strncmp(n, prefix, pl)) continue;
        n += pl;
        if (!strncmp(n, "decoder.up.", 11) || !strncmp(n, "encoder.down.", 13) || !strncmp(n, "decoder.mid.", 12) || !strncmp(n, "encoder.mid.", 12))
            return VAE_LAYOUT_LDM;
    }
    return VAE_LAYOUT_DIFFUSERS;
}

sd_status vae_add_weights(wmap *m, const st_file *f, const char *prefix, vae_layout layout) {
    if (layout == VAE_LAYOUT_AUTO) layout = vae_detect_layout(f, prefix);
    if (layout == VAE_LAYOUT_DIFFUSERS) return wmap_add_file(m, f, prefix, diffusers_rename_cb, NULL);
    /* LDM numbers decoder levels bottom-up, so the mapping needs the level count first */
    size_t pl = strlen(prefix);
    int levels = 0, l;
    for (int i = 0; i < st_count(f); i++) {
        const char *n = st_at(f, i)->name;
        if (!strncmp(n, prefix, pl) && eat_index(n + pl, "decoder.up.", &l) && l + 1 > levels) levels = l + 1;
    }
    return wmap_add_file(m, f, prefix, ldm_rename_cb, &levels);
}
