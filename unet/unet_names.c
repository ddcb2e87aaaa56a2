/* unet_names.c — original single-file (LDM) UNet tensor names -> diffusers names (facts §5.2). */
#include "unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

/* "in_layers.0.weight" -> "norm1.weight" and so on; NULL when `rest` is no resnet parameter. */
static const char *resnet_sub(const char *rest, const char **tail) {
    static const char *const map[][2] = {
        {"in_layers.0.", "norm1."},        {"in_layers.2.", "conv1."},  {"emb_layers.1.", "time_emb_proj."},
        {"out_layers.0.", "norm2."},       {"out_layers.3.", "conv2."}, {"skip_connection.", "conv_shortcut."},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        size_t n = strlen(map[i][0]);
        if (!strncmp(rest, map[i][0], n)) {
            *tail = rest + n;
            return map[i][1];
        }
    }
    return NULL;
}

/* Parses "<N>.<M>.<rest>" (both non-negative integers); returns rest or NULL. */
static const char *two_ints(const char *s, int *a, int *b) {
    char *e;
    long x = strtol(s, &e, 10);
    if (e == s || *e != '.' || x < 0 || x > 10000) return NULL;
    s = e + 1;
    long y = strtol(s, &e, 10);
    if (e == s || *e != '.' || y < 0 || y > 10000) return NULL;
    *a = (int)x;
    *b = (int)y;
    return e + 1;
}

static int starts(const char *s, const char *p, const char **rest) {
    size_t n = strlen(p);
    if (strncmp(s, p, n)) return 0;
    *rest = s + n;
    return 1;
}

/* Writes the diffusers name of one LDM UNet name (prefix removed); 0 if it does not map. */
static int ldm_to_diffusers(const char *src, char *dst, size_t cap, int lpb) {
    static const char *const fixed[][2] = {
        {"time_embed.0.", "time_embedding.linear_1."}, {"time_embed.2.", "time_embedding.linear_2."},
        {"label_emb.0.0.", "add_embedding.linear_1."}, {"label_emb.0.2.", "add_embedding.linear_2."},
        {"input_blocks.0.0.", "conv_in."},             {"out.0.", "conv_norm_out."},
        {"out.2.", "conv_out."},
    };
    const char *rest, *tail, *sub;
    int i, k;
    for (size_t f = 0; f < sizeof fixed / sizeof *fixed; f++)
        if (starts(src, fixed[f][0], &rest)) return snprintf(dst, cap, "%s%s", fixed[f][1], rest) < (int)cap;
    int per = lpb + 1; /* index entries per level: lpb resnets (+ attention) and one down/upsampler */
    if (starts(src, "input_blocks.", &rest) && (rest = two_ints(rest, &i, &k)) && i >= 1) {
        if (k == 0 && starts(rest, "op.", &tail)) {
            if (i % per) return 0;
            return snprintf(dst, cap, "down_blocks.%d.downsamplers.0.conv.%s", i / per - 1, tail) < (int)cap;
        }
        if ((i - 1) % per == lpb) return 0; /* a downsampler slot holds nothing else */
        int blk = (i - 1) / per, layer = (i - 1) % per;
        if (k == 0 && (sub = resnet_sub(rest, &tail)))
            return snprintf(dst, cap, "down_blocks.%d.resnets.%d.%s%s", blk, layer, sub, tail) < (int)cap;
        if (k == 1) return snprintf(dst, cap, "down_blocks.%d.attentions.%d.%s", blk, layer, rest) < (int)cap;
        return 0;
    }
    if (starts(src, "middle_block.", &rest)) {
        char *e;
        long j = strtol(rest, &e, 10);
        if (e == rest || *e != '.') return 0;
        rest = e + 1;
        if ((j == 0 || j == 2) && (sub = resnet_sub(rest, &tail)))
            return snprintf(dst, cap, "mid_block.resnets.%ld.%s%s", j / 2, sub, tail) < (int)cap;
        if (j == 1) return snprintf(dst, cap, "mid_block.attentions.0.%s", rest) < (int)cap;
        return 0;
    }
    if (starts(src, "output_blocks.", &rest) && (rest = two_ints(rest, &i, &k))) {
        int blk = i / per, layer = i % per;
        if (k == 0 && (sub = resnet_sub(rest, &tail)))
            return snprintf(dst, cap, "up_blocks.%d.resnets.%d.%s%s", blk, layer, sub, tail) < (int)cap;
        /* the upsampler follows the resnet (index 1) or resnet + attention (index 2) of a level's last slot */
        if ((k == 1 || k == 2) && starts(rest, "conv.", &tail)) {
            if (layer != lpb) return 0;
            return snprintf(dst, cap, "up_blocks.%d.upsamplers.0.conv.%s", blk, tail) < (int)cap;
        }
        if (k == 1) return snprintf(dst, cap, "up_blocks.%d.attentions.%d.%s", blk, layer, rest) < (int)cap;
        return 0;
    }
    return 0;
}

static int rename_ldm(const char *src, char *dst, size_t cap, void *user) {
    int lpb = *(const int *)user;
    if (!ldm_to_diffusers(src, dst, cap, lpb)) snprintf(dst, cap, "%s", src); /* kept: reported as unexpected */
    return 1;
}

/* layers-per-block from the index layout: with L levels, L-1 downsamplers ("input_blocks.K.0.op")
 * and input_blocks 1..max, max = L*lpb + (L-1); the downsamplers sit at K = (l+1)*(lpb+1). */
sd_status unet_ldm_layers_per_block(const char *const *names, int count, const char *prefix, int *lpb) {
    size_t pl = strlen(prefix);
    int max_in = 0, ops = 0, op_at[64];
    for (int n = 0; n < count; n++) {
        const char *rest;
        int i, k;
        if (strncmp(names[n], prefix, pl) || !starts(names[n] + pl, "input_blocks.", &rest) || !(rest = two_ints(rest, &i, &k))) continue;
        if (i > max_in) max_in = i;
        if (k == 0 && !strcmp(rest, "op.weight")) {
            if (ops == 64) return err_fail(SD_ERR_UNSUPPORTED, "too many UNet downsamplers");
            op_at[ops++] = i;
        }
    }
    if (!max_in) { /* no UNet blocks under this prefix: loading will report what is missing */
        *lpb = 2;
        return SD_OK;
    }
    int levels = ops + 1;
    if ((max_in - ops) % levels || (max_in - ops) / levels < 1)
        return err_fail(SD_ERR_MODEL, "UNet input_blocks 1..%d with %d downsamplers do not form equal levels", max_in, ops);
    *lpb = (max_in - ops) / levels;
    for (int a = 0; a < ops; a++) {
        int ok = 0;
        for (int l = 0; l < ops; l++) ok |= op_at[a] == (l + 1) * (*lpb + 1);
        if (!ok) return err_fail(SD_ERR_MODEL, "UNet downsampler at input_blocks.%d does not fit %d layers per block", op_at[a], *lpb);
    }
    return SD_OK;
}

int unet_ldm_to_diffusers(const char *name, int layers_per_block, char *dst, size_t cap) {
    return ldm_to_diffusers(name, dst, cap, layers_per_block);
}

/* The dotted start of a kohya LDM layer name: the block indices and, for a resnet, its sub-layer (the attention
 * layers inside a block keep their own names, which are the same in both layouts). */
static int ldm_dotted(const char *s, char *dst, size_t cap) {
    static const char *const subs[][2] = {
        {"in_layers_0", "in_layers.0"},   {"in_layers_2", "in_layers.2"}, {"emb_layers_1", "emb_layers.1"},
        {"out_layers_0", "out_layers.0"}, {"out_layers_3", "out_layers.3"}, {"skip_connection", "skip_connection"},
    };
    static const char *const whole[][2] = {
        {"time_embed_0", "time_embed.0"}, {"time_embed_2", "time_embed.2"}, {"label_emb_0_0", "label_emb.0.0"},
        {"label_emb_0_2", "label_emb.0.2"}, {"input_blocks_0_0", "input_blocks.0.0"}, {"out_0", "out.0"}, {"out_2", "out.2"},
    };
    for (size_t i = 0; i < sizeof whole / sizeof *whole; i++)
        if (!strcmp(s, whole[i][0])) return snprintf(dst, cap, "%s.weight", whole[i][1]) < (int)cap;
    const char *rest;
    char head[64];
    int i, k = 0;
    char *e;
    if (starts(s, "input_blocks_", &rest) || starts(s, "output_blocks_", &rest)) {
        i = (int)strtol(rest, &e, 10);
        if (e == rest || *e != '_') return 0;
        k = (int)strtol(e + 1, &e, 10);
        if (*e != '_') return 0;
        snprintf(head, sizeof head, "%s.%d.%d.", s[0] == 'i' ? "input_blocks" : "output_blocks", i, k);
    } else if (starts(s, "middle_block_", &rest)) {
        i = (int)strtol(rest, &e, 10);
        if (e == rest || *e != '_') return 0;
        snprintf(head, sizeof head, "middle_block.%d.", i);
    } else {
        return 0;
    }
    rest = e + 1;
    for (size_t j = 0; j < sizeof subs / sizeof *subs; j++)
        if (!strcmp(rest, subs[j][0])) return snprintf(dst, cap, "%s%s.weight", head, subs[j][1]) < (int)cap;
    return snprintf(dst, cap, "%s%s.weight", head, rest) < (int)cap;
}

int unet_ldm_layer_to_diffusers(const char *name, int layers_per_block, char *dst, size_t cap) {
    char dotted[512], mapped[512];
    if (!ldm_dotted(name, dotted, sizeof dotted) || !ldm_to_diffusers(dotted, mapped, sizeof mapped, layers_per_block)) return 0;
    size_t n = strlen(mapped) - strlen(".weight"); /* both spellings end in ".weight" */
    if (n + 1 > cap) return 0;
    for (size_t j = 0; j < n; j++) dst[j] = mapped[j] == '.' ? '_' : mapped[j];
    dst[n] = 0;
    return 1;
}

sd_status unet_add_tensors(wmap *m, const st_file *f, unet_names names, const char *prefix) {
    if (names == UNET_NAMES_DIFFUSERS) return wmap_add_file(m, f, prefix, NULL, NULL);
    int n = st_count(f), lpb;
    const char **list = malloc((n ? n : 1) * sizeof *list);
    if (!list) return err_fail(SD_ERR_MEMORY, "out of memory");
    for (int i = 0; i < n; i++) list[i] = st_at(f, i)->name;
    sd_status st = unet_ldm_layers_per_block(list, n, prefix, &lpb);
    free(list);
    if (st != SD_OK) {
        err_prefix("%s", st_path(f));
        return st;
    }
    return wmap_add_file(m, f, prefix, rename_ldm, &lpb);
}
