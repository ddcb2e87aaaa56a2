/* describe_adapter.c — `sd info` for the files that change a model rather than being one: LoRA / LyCORIS adapters
 * (layout, methods, ranks, alphas, the layers they target, the family they were made for) and textual-inversion
 * embeddings (vectors, widths, family). */
#include <stdio.h>
#include <string.h>

#include "../core/error.h"
#include "lora.h"

static int has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static const char *layout_of(const ad_file *a) {
    int kohya = 0, diffusers = 0;
    for (int i = 0; i < a->n; i++) {
        const char *n = a->mod[i].name;
        kohya += has_prefix(n, "lora_unet_") || has_prefix(n, "lora_te");
        diffusers += has_prefix(n, "unet.") || has_prefix(n, "text_encoder");
    }
    if (kohya && !diffusers) return "kohya-ss / AUTOMATIC1111 layout";
    if (diffusers && !kohya) return "diffusers / PEFT layout";
    return kohya ? "mixed kohya-ss and diffusers names" : "unknown layout";
}

/* What kind of layer a module changes, from the words of its name. */
static const char *layer_kind(const char *n) {
    if (strstr(n, "attn") || strstr(n, "to_q") || strstr(n, "to_k") || strstr(n, "to_v") || strstr(n, "to_out")) return "attention";
    if (strstr(n, "ff_net") || strstr(n, "ff.net") || strstr(n, "mlp")) return "feed-forward";
    if (strstr(n, "proj_in") || strstr(n, "proj_out")) return "projection";
    if (strstr(n, "conv") || strstr(n, "in_layers") || strstr(n, "out_layers") || strstr(n, "skip") || strstr(n, "_op")) return "convolution";
    return "other";
}

static void describe_lora(const char *path, const ad_file *a, FILE *out) {
    static const char *const kinds[] = {"attention", "feed-forward", "projection", "convolution", "other"};
    static const char *const parts[] = {"UNet", "text encoder", "text encoder 2", "unknown part"};
    int count[4][5] = {{0}}, types[8] = {0}, rmin = 1 << 30, rmax = 0, nalpha = 0, scales_differ = 0;
    float amin = 1e30f, amax = -1e30f, scale0 = a->n ? a->mod[0].scale : 1;
    const char *type_names[8];
    int ntypes = 0;
    for (int i = 0; i < a->n; i++) {
        const ad_module *m = &a->mod[i];
        const char *n = m->name;
        int p = has_prefix(n, "lora_unet_") || has_prefix(n, "unet.") ? 0
              : has_prefix(n, "lora_te2_") || has_prefix(n, "text_encoder_2.") ? 2
              : has_prefix(n, "lora_te") || has_prefix(n, "text_encoder.") ? 1 : 3;
        const char *k = layer_kind(n);
        for (int j = 0; j < 5; j++)
            if (!strcmp(k, kinds[j])) count[p][j]++;
        const char *t = ad_type_name(m);
        int j = 0;
        while (j < ntypes && strcmp(type_names[j], t)) j++;
        if (j == ntypes && ntypes < 8) type_names[ntypes++] = t;
        if (j < 8) types[j]++;
        if (m->rank) rmin = m->rank < rmin ? m->rank : rmin, rmax = m->rank > rmax ? m->rank : rmax;
        if (m->has_alpha) nalpha++, amin = m->alpha < amin ? m->alpha : amin, amax = m->alpha > amax ? m->alpha : amax;
        scales_differ |= m->scale != scale0;
    }
    int64_t params = 0;
    for (int i = 0; i < st_count(a->f); i++) params += st_at(a->f, i)->numel;
    fprintf(out, "%s: LoRA adapter (%s), %d modules, %d tensors, %.2f M parameters\n", path, layout_of(a), a->n, st_count(a->f), params / 1e6);
    fprintf(out, "  methods         ");
    for (int j = 0; j < ntypes; j++) fprintf(out, "%s%s ×%d", j ? ", " : "", type_names[j], types[j]);
    fprintf(out, "\n");
    if (rmax == rmin) fprintf(out, "  rank            %d\n", rmax);
    else if (rmax) fprintf(out, "  rank            %d to %d\n", rmin, rmax);
    char alpha[64];
    if (amin == amax) snprintf(alpha, sizeof alpha, "%g", amin);
    else snprintf(alpha, sizeof alpha, "%g to %g", amin, amax);
    if (nalpha) fprintf(out, "  alpha           %s (scale alpha / rank %s)\n", alpha, scales_differ ? "differs by module" : "the same everywhere");
    else fprintf(out, "  alpha           none (scale 1)\n");
    for (int p = 0; p < 4; p++) {
        int tot = 0;
        for (int j = 0; j < 5; j++) tot += count[p][j];
        if (!tot) continue;
        fprintf(out, "  %-15s %d layers:", parts[p], tot);
        for (int j = 0, first = 1; j < 5; j++)
            if (count[p][j]) fprintf(out, "%s %s %d", first ? "" : ",", kinds[j], count[p][j]), first = 0;
        fprintf(out, "\n");
    }
    char why[256];
    model_family fam = lora_family(a, why, sizeof why);
    fprintf(out, "  family          %s (%s)\n", fam ? model_family_name(fam) : "unknown", why);
    if (a->nstray) fprintf(out, "  left out        %d tensors of no supported module (e.g. \"%s\")\n", a->nstray, a->stray[0]);
}

static int describe_embedding(const char *path, const st_file *f, FILE *out) {
    const st_tensor *l = st_find(f, "clip_l"), *g = st_find(f, "clip_g"), *t = st_count(f) == 1 ? st_at(f, 0) : NULL;
    const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path, *dot = strrchr(b, '.');
    int nl = dot ? (int)(dot - b) : (int)strlen(b);
    if (l && g && l->ndim >= 1 && l->ndim <= 2 && g->ndim >= 1 && g->ndim <= 2) {
        fprintf(out, "%s: textual-inversion embedding, used where \"%.*s\" appears in a prompt\n", path, nl, b);
        fprintf(out, "  vectors         %lld (clip_l %lld wide, clip_g %lld wide)\n  family        SDXL\n", (long long)(l->ndim == 2 ? l->shape[0] : 1),
                (long long)l->shape[l->ndim - 1], (long long)g->shape[g->ndim - 1]);
        return 1;
    }
    if (!t || t->ndim < 1 || t->ndim > 2 || !st_dtype_is_float(t->dtype)) return 0;
    int64_t w = t->shape[t->ndim - 1];
    fprintf(out, "%s: textual-inversion embedding, used where \"%.*s\" appears in a prompt\n", path, nl, b);
    fprintf(out, "  vectors         %lld × %lld (tensor \"%s\")\n", (long long)(t->ndim == 2 ? t->shape[0] : 1), (long long)w, t->name);
    fprintf(out, "  family          %s\n", w == 768 ? "SD 1.x" : w == 1024 ? "SD 2.x" : "unknown (768 wide: SD 1.x, 1024: SD 2.x)");
    return 1;
}

int describe_adapter(const char *path, FILE *out, sd_status *st) {
    size_t l = strlen(path);
    if (l < 12 || strcmp(path + l - 12, ".safetensors")) return 0;
    ad_file *a;
    if (ad_open(path, &a) != SD_OK) return 0; /* not even a readable adapter: the model path says why */
    int done = 0;
    if (a->n && a->nstray < a->n) {
        describe_lora(path, a, out);
        done = 1;
    } else if (!a->n) {
        done = describe_embedding(path, a->f, out);
    }
    ad_close(a);
    if (done) *st = SD_OK;
    return done;
}
