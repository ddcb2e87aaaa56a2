/* test_clip_encoder.c — CLIP / OpenCLIP text encoders against transformers goldens (tests/golden/clip, made by
 * tools/goldens_clip.py): hidden states, clip skip, pooled / projected output, SDXL's pair, both name layouts;
 * the SD 1.5 / OpenCLIP-H / OpenCLIP-bigG architectures by name and shape; malformed weights and inputs. */
#include "test.h"
#include "../core/error.h"
#include "../text_encoder/clip_model.h"

#include <stdlib.h>

#define T 77

static be *mk(void) {
    be *b = be_cpu_new(0);
    REQUIRE(b);
    REQUIRE(be_arena_reserve(b, 16u << 20) == SD_OK);
    return b;
}

static st_file *open_golden(const char *name) {
    st_file *f;
    REQUIRE_MSG(st_open(test_path(name), &f) == SD_OK, "%s", sd_last_error());
    return f;
}

static float *load(st_file *f, const char *name, int64_t want) {
    int64_t n;
    float *d = st_load_f32(f, name, &n);
    REQUIRE_MSG(d, "%s", sd_last_error());
    REQUIRE_MSG(n == want, "%s: %lld values, expected %lld", name, (long long)n, (long long)want);
    return d;
}

static void load_ids(st_file *f, const char *name, int32_t *ids) {
    float *d = load(f, name, 2 * T);
    for (int i = 0; i < 2 * T; i++) ids[i] = (int32_t)d[i];
    free(d);
}

/* Against transformers in f32 the encoders measure at most 5.1e-6 (clip_g hidden_states[-2]); every output is held to
 * about twice that. */
#define CLIP_TOL 1e-5

/* Downloads `got` and compares it with golden `name` (max abs error, tolerance tol); returns the host copy. */
static float *expect(be *b, st_file *io, const char *name, const be_tensor *got, double tol, const char *what) {
    REQUIRE_MSG(be_status(b) == SD_OK, "%s: %s", what, sd_last_error());
    float *want = load(io, name, (int64_t)be_numel(got)), *g = malloc(be_numel(got) * sizeof(float));
    be_download(b, got, g);
    double worst = 0;
    for (size_t i = 0; i < be_numel(got); i++) worst = fmax(worst, fabs(g[i] - want[i]));
    test_note("%s: max abs err %.2e (tol %.2g)", what, worst, tol);
    CHECK_MAXERR(g, want, (long)be_numel(got), tol);
    free(want);
    return g;
}

typedef struct model {
    st_file *f;
    wmap *m;
    clip_model c;
} model;

/* Loads a model from a golden weights file under `prefix`, with the config of `config_json`. */
static void open_model(be *b, model *md, const char *file, const char *prefix, const char *config_json) {
    md->f = open_golden(file);
    md->m = wmap_new();
    REQUIRE_MSG(clip_add_file(md->m, md->f, prefix, CLIP_LAYOUT_AUTO) == SD_OK, "%s", sd_last_error());
    clip_config cfg;
    REQUIRE_MSG(clip_config_from_json(test_path(config_json), &cfg) == SD_OK, "%s", sd_last_error());
    REQUIRE_MSG(clip_load(b, md->m, &cfg, &md->c) == SD_OK, "%s", sd_last_error());
    char unused[512];
    CHECK_MSG(wmap_unused(md->m, unused, sizeof unused) == 0, "%s%s: unused tensors: %s", file, prefix, unused);
}

static void close_model(be *b, model *md) {
    clip_free(b, &md->c);
    wmap_free(md->m);
    st_close(md->f);
}

TEST(clip_config_json_and_inference_agree) {
    static const char *const files[2][2] = {{"golden/clip/clip_l.safetensors", "golden/clip/clip_l_config.json"},
                                            {"golden/clip/clip_g.safetensors", "golden/clip/clip_g_config.json"}};
    for (int i = 0; i < 2; i++) {
        clip_config js, in;
        REQUIRE_MSG(clip_config_from_json(test_path(files[i][1]), &js) == SD_OK, "%s", sd_last_error());
        st_file *f = open_golden(files[i][0]);
        wmap *m = wmap_new();
        REQUIRE(clip_add_file(m, f, "", CLIP_LAYOUT_AUTO) == SD_OK);
        REQUIRE_MSG(clip_config_infer(m, &in) == SD_OK, "%s", sd_last_error());
        CHECK_EQ_INT(js.vocab, 256);
        CHECK_EQ_INT(js.heads, 4);
        CHECK_EQ_INT(js.max_pos, 77);
        CHECK_NEAR(js.ln_eps, 1e-5, 1e-12);
        CHECK_EQ_INT(js.width, i ? 40 : 32);
        CHECK_EQ_INT(js.layers, i ? 3 : 2);
        CHECK_EQ_INT(js.inter, i ? 80 : 64);
        CHECK_EQ_INT(js.act, i ? CLIP_ACT_GELU : CLIP_ACT_QUICK_GELU);
        CHECK_EQ_INT(js.proj_dim, i ? 24 : 0);   /* clip_l's config says projection_dim 32 but has no layer */
        CHECK_EQ_INT(js.pool, i ? CLIP_POOL_FIRST_EOS : CLIP_POOL_ARGMAX);
        if (i) CHECK_EQ_INT(js.eos_id, 200);
        CHECK_EQ_INT(in.vocab, js.vocab);
        CHECK_EQ_INT(in.width, js.width);
        CHECK_EQ_INT(in.layers, js.layers);
        CHECK_EQ_INT(in.inter, js.inter);
        CHECK_EQ_INT(in.max_pos, js.max_pos);
        CHECK_EQ_INT(in.proj_dim, js.proj_dim);
        CHECK_EQ_INT(in.act, CLIP_ACT_QUICK_GELU); /* transformers names: CLIP-L's activation by convention */
        CHECK_EQ_INT(in.heads, 0);                 /* width not a multiple of 64: heads unknown */
        wmap_free(m);
        st_close(f);
    }
}

/* clip_l (quick_gelu, no projection, argmax pooling): every output SD 1.x / SDXL encoder 1 reads. */
TEST(clip_golden_clip_l) {
    be *b = mk();
    st_file *io = open_golden("golden/clip/io.safetensors");
    model md;
    open_model(b, &md, "golden/clip/clip_l.safetensors", "", "golden/clip/clip_l_config.json");
    int32_t ids[2 * T];
    load_ids(io, "l.ids", ids);
    be_tensor h = be_new(b, 2, 1, T, 32), p = be_new(b, 2, 1, 1, 32);
    clip_forward(b, &md.c, ids, 2, T, -1, 1, &h, NULL);
    free(expect(b, io, "l.last", &h, CLIP_TOL, "clip_l last_hidden_state (SD 1.x)"));
    clip_forward(b, &md.c, ids, 2, T, 1, 0, &h, NULL);
    free(expect(b, io, "l.hs1", &h, CLIP_TOL, "clip_l hidden_states[1]"));
    clip_forward(b, &md.c, ids, 2, T, -2, 1, &h, NULL);
    free(expect(b, io, "l.ln_hs1", &h, CLIP_TOL, "clip_l final_LN(hidden_states[-2]) (clip skip 1)"));
    clip_forward(b, &md.c, ids, 2, T, -2, 0, &h, &p); /* stream snapshot + pooled in one pass */
    free(expect(b, io, "l.hs1", &h, CLIP_TOL, "clip_l hidden_states[-2] with pooling"));
    free(expect(b, io, "l.pooled", &p, CLIP_TOL, "clip_l pooled (argmax rule)"));
    /* the eos here (255) is the largest id: first-eos pooling must land on the same rows */
    md.c.cfg.pool = CLIP_POOL_FIRST_EOS;
    md.c.cfg.eos_id = 255;
    clip_forward(b, &md.c, ids, 2, T, -1, 0, NULL, &p);
    free(expect(b, io, "l.pooled", &p, CLIP_TOL, "clip_l pooled (first-eos rule, eos = max id)"));
    close_model(b, &md);
    st_close(io);
    be_free(b);
}

/* clip_g (gelu, projection, first-eos pooling where argmax would differ): SD 2.x / SDXL encoder 2 outputs. */
TEST(clip_golden_clip_g) {
    be *b = mk();
    st_file *io = open_golden("golden/clip/io.safetensors");
    model md;
    open_model(b, &md, "golden/clip/clip_g.safetensors", "", "golden/clip/clip_g_config.json");
    int32_t ids[2 * T];
    load_ids(io, "g.ids", ids);
    for (int r = 0; r < 2; r++) {
        clip_config am = md.c.cfg;
        am.pool = CLIP_POOL_ARGMAX;
        CHECK(clip_pool_position(&md.c.cfg, ids + r * T, T) != clip_pool_position(&am, ids + r * T, T));
    }
    be_tensor h = be_new(b, 2, 1, T, 40), e = be_new(b, 2, 1, 1, 24), p = be_new(b, 2, 1, 1, 40);
    clip_forward(b, &md.c, ids, 2, T, 3, 1, &h, &e);
    free(expect(b, io, "g.last", &h, CLIP_TOL, "clip_g last_hidden_state"));
    free(expect(b, io, "g.embeds", &e, CLIP_TOL, "clip_g text_embeds (pooled + projection)"));
    clip_forward(b, &md.c, ids, 2, T, -2, 0, &h, NULL);
    free(expect(b, io, "g.hs2", &h, CLIP_TOL, "clip_g hidden_states[-2] (SDXL)"));
    clip_forward(b, &md.c, ids, 2, T, -2, 1, &h, NULL);
    free(expect(b, io, "g.ln_hs2", &h, CLIP_TOL, "clip_g final_LN(hidden_states[-2]) (SD 2 penultimate)"));
    close_model(b, &md);

    /* without its projection (and with the last block dropped, as SD 2 loads OpenCLIP-H) */
    md.f = open_golden("golden/clip/clip_g.safetensors");
    md.m = wmap_new();
    REQUIRE(clip_add_file(md.m, md.f, "", CLIP_LAYOUT_HF) == SD_OK);
    clip_config cfg;
    REQUIRE(clip_config_from_json(test_path("golden/clip/clip_g_config.json"), &cfg) == SD_OK);
    cfg.proj_dim = 0;
    REQUIRE_MSG(clip_load(b, md.m, &cfg, &md.c) == SD_OK, "%s", sd_last_error());
    clip_forward(b, &md.c, ids, 2, T, -1, 0, NULL, &p);
    free(expect(b, io, "g.pooled", &p, CLIP_TOL, "clip_g pooler_output (no projection)"));
    clip_free(b, &md.c);
    wmap_free(md.m);
    md.m = wmap_new(); /* fresh "used" marks */
    REQUIRE(clip_add_file(md.m, md.f, "", CLIP_LAYOUT_HF) == SD_OK);
    cfg.layers = 2;
    REQUIRE_MSG(clip_load(b, md.m, &cfg, &md.c) == SD_OK, "%s", sd_last_error());
    char unused[256];
    CHECK_MSG(wmap_unused(md.m, unused, sizeof unused) == 0, "unused: %s", unused);
    clip_forward(b, &md.c, ids, 2, T, -1, 1, &h, NULL);
    free(expect(b, io, "g.ln_hs2", &h, CLIP_TOL, "clip_g cut to 2 blocks, last + final LN"));
    close_model(b, &md);
    st_close(io);
    be_free(b);
}

/* The same weights under original single-file names (SDXL: CLIP with text_model. prefix and a position_ids
 * buffer; OpenCLIP with fused in_proj, transposed projection, logit_scale) give identical outputs. */
TEST(clip_layouts_identical) {
    be *b = mk();
    st_file *io = open_golden("golden/clip/io.safetensors");
    static const struct { const char *hf, *prefix, *config, *ids, *name; int C, P; } cs[2] = {
        {"golden/clip/clip_l.safetensors", "conditioner.embedders.0.transformer.", "golden/clip/clip_l_config.json", "l.ids", "clip_l", 32, 32},
        {"golden/clip/clip_g.safetensors", "conditioner.embedders.1.model.", "golden/clip/clip_g_config.json", "g.ids", "clip_g", 40, 24}};
    for (int i = 0; i < 2; i++) {
        model a, o;
        open_model(b, &a, cs[i].hf, "", cs[i].config);
        open_model(b, &o, "golden/clip/sdxl_ldm.safetensors", cs[i].prefix, cs[i].config);
        clip_config in;
        REQUIRE_MSG(clip_config_infer(o.m, &in) == SD_OK, "%s", sd_last_error());
        CHECK_EQ_INT(in.act, a.c.cfg.act); /* OpenCLIP layout -> gelu, CLIP names -> quick_gelu */
        CHECK_EQ_INT(in.proj_dim, a.c.cfg.proj_dim);
        CHECK_EQ_INT(in.layers, a.c.cfg.layers);
        int32_t ids[2 * T];
        load_ids(io, cs[i].ids, ids);
        size_t nh = 2 * T * cs[i].C, np = 2 * cs[i].P;
        float *out[2][2];
        size_t mark = be_mark(b);
        for (int k = 0; k < 2; k++) {
            be_tensor h = be_new(b, 2, 1, T, cs[i].C), p = be_new(b, 2, 1, 1, cs[i].P);
            clip_forward(b, k ? &o.c : &a.c, ids, 2, T, -2, 0, &h, &p);
            REQUIRE_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
            out[k][0] = malloc(nh * sizeof(float));
            out[k][1] = malloc(np * sizeof(float));
            be_download(b, &h, out[k][0]);
            be_download(b, &p, out[k][1]);
            be_release(b, mark);
        }
        CHECK_MSG(!memcmp(out[0][0], out[1][0], nh * sizeof(float)), "%s: hidden states differ between layouts", cs[i].name);
        CHECK_MSG(!memcmp(out[0][1], out[1][1], np * sizeof(float)), "%s: pooled outputs differ between layouts", cs[i].name);
        for (int k = 0; k < 2; k++) { free(out[k][0]); free(out[k][1]); }
        close_model(b, &a);
        close_model(b, &o);
    }
    st_close(io);
    be_free(b);
}

/* SDXL: context = concat(CLIP-L hidden_states[-2], bigG hidden_states[-2]) and bigG's projected pooled vector. */
TEST(clip_golden_sdxl_pair) {
    be *b = mk();
    st_file *io = open_golden("golden/clip/io.safetensors");
    model l, g;
    open_model(b, &l, "golden/clip/sdxl_ldm.safetensors", "conditioner.embedders.0.transformer.", "golden/clip/clip_l_config.json");
    open_model(b, &g, "golden/clip/sdxl_ldm.safetensors", "conditioner.embedders.1.model.", "golden/clip/clip_g_config.json");
    int32_t il[2 * T], ig[2 * T];
    load_ids(io, "l.ids", il);
    load_ids(io, "g.ids", ig);
    be_tensor ctx = be_new(b, 2, 1, T, 72), p = be_new(b, 2, 1, 1, 24);
    clip_sdxl_forward(b, &l.c, &g.c, il, ig, 2, T, 0, &ctx, &p);
    REQUIRE_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
    float *hl = load(io, "l.hs1", 2 * T * 32), *hg = load(io, "g.hs2", 2 * T * 40), *want = malloc(2 * T * 72 * sizeof(float));
    for (int r = 0; r < 2 * T; r++) {
        memcpy(want + r * 72, hl + r * 32, 32 * sizeof(float));
        memcpy(want + r * 72 + 32, hg + r * 40, 40 * sizeof(float));
    }
    float *got = malloc(2 * T * 72 * sizeof(float));
    be_download(b, &ctx, got);
    double worst = 0;
    for (int i = 0; i < 2 * T * 72; i++) worst = fmax(worst, fabs(got[i] - want[i]));
    test_note("SDXL context [2, 77, 72]: max abs err %.2e (tol %.2g)", worst, CLIP_TOL);
    CHECK_MAXERR(got, want, 2 * T * 72, CLIP_TOL);
    free(expect(b, io, "g.embeds", &p, CLIP_TOL, "SDXL pooled text_embeds"));
    free(got); free(want); free(hl); free(hg);
    close_model(b, &l);
    close_model(b, &g);
    st_close(io);
    be_free(b);
}

TEST(clip_pool_position_rules) {
    clip_config c = {.pool = CLIP_POOL_ARGMAX, .eos_id = 7};
    int32_t a[6] = {5, 9, 7, 9, 7, 0}, none[4] = {1, 2, 3, 4};
    CHECK_EQ_INT(clip_pool_position(&c, a, 6), 1);    /* first occurrence of the maximum */
    c.pool = CLIP_POOL_FIRST_EOS;
    CHECK_EQ_INT(clip_pool_position(&c, a, 6), 2);    /* first eos, although 9 is larger */
    CHECK_EQ_INT(clip_pool_position(&c, none, 4), 0); /* no eos: position 0, as transformers */
}

/* ---- architectures by name and shape (virtual weights, measure mode) ---- */

/* Adds name<TAB>shape[<TAB>dtype] lines (names starting with `prefix`, which is removed) through `rename`. */
static int add_tsv(wmap *m, const char *path, const char *prefix, wmap_rename_fn rename, const char *bad_name, int64_t bad_dim0) {
    FILE *fp = fopen(test_path(path), "r");
    REQUIRE_MSG(fp, "cannot open %s", path);
    char line[512], canon[512];
    int count = 0;
    while (fgets(line, sizeof line, fp)) {
        char *tab = strchr(line, '\t');
        if (!tab || strncmp(line, prefix, strlen(prefix))) continue;
        *tab = 0;
        int64_t shape[8];
        int nd = 0;
        char *s = tab + 1;
        while (*s && *s != '\t' && *s != '\n' && nd < 8) {
            shape[nd++] = strtoll(s, &s, 10);
            if (*s == ',') s++;
        }
        st_dtype dt = strstr(s, "I64") ? ST_I64 : ST_F16;
        count++;
        if (!rename(line + strlen(prefix), canon, sizeof canon, NULL)) continue;
        if (bad_name && !strcmp(canon, bad_name)) shape[0] = bad_dim0;
        REQUIRE_MSG(wmap_add_virtual(m, canon, dt, nd, shape) == SD_OK, "%s", sd_last_error());
    }
    fclose(fp);
    return count;
}

static void check_arch(be *b, wmap *m, const clip_config *want, clip_model *c) {
    clip_config got;
    REQUIRE_MSG(clip_config_infer(m, &got) == SD_OK, "%s", sd_last_error());
    CHECK_EQ_INT(got.vocab, want->vocab);
    CHECK_EQ_INT(got.width, want->width);
    CHECK_EQ_INT(got.layers, want->layers);
    CHECK_EQ_INT(got.heads, want->heads);
    CHECK_EQ_INT(got.inter, want->inter);
    CHECK_EQ_INT(got.act, want->act);
    CHECK_EQ_INT(got.max_pos, want->max_pos);
    CHECK_EQ_INT(got.proj_dim, want->proj_dim);
    CHECK_EQ_INT(got.pool, CLIP_POOL_ARGMAX);
    REQUIRE_MSG(clip_load(b, m, &got, c) == SD_OK, "%s", sd_last_error());
    char unused[512];
    CHECK_MSG(wmap_unused(m, unused, sizeof unused) == 0, "unexpected tensors: %s", unused);
}

TEST(clip_sd15_sd2_sdxl_architectures) {
    be *b = mk();
    /* SD 1.5: the 196 tensors of cond_stage_model (+ its position_ids buffer) are exactly what the loader wants */
    wmap *l = wmap_new();
    CHECK_EQ_INT(add_tsv(l, "data/sd15_clip_keys.tsv", "cond_stage_model.transformer.", clip_rename_hf, NULL, 0), 197);
    CHECK_EQ_INT(wmap_count(l), 196);
    clip_model cl, ch, ch23, cg;
    be_measure_begin(b);
    check_arch(b, l, &(clip_config){49408, 768, 12, 12, 3072, CLIP_ACT_QUICK_GELU, 77, 1e-5f, 0, 0, 0}, &cl);
    int32_t ids[2 * T] = {49406, 320, 1125, 49407};
    be_tensor ctx = be_new(b, 2, 1, T, 768);
    clip_forward(b, &cl, ids, 2, T, -1, 1, &ctx, NULL);
    size_t peak = be_measure_end(b);
    CHECK_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
    test_note("SD 1.5 text encoder: 196 tensors, forward arena peak %.2f MiB for 2 x 77 tokens", peak / 1048576.0);

    /* SD 2.x: OpenCLIP ViT-H/14 as in cond_stage_model.model.*; all 24 blocks, then 23 without the projection */
    wmap *h = wmap_new();
    add_tsv(h, "golden/clip/openclip_h14_keys.tsv", "", clip_rename_openclip, NULL, 0);
    be_measure_begin(b);
    clip_config hcfg = {49408, 1024, 24, 16, 4096, CLIP_ACT_GELU, 77, 1e-5f, 1024, 0, 0};
    check_arch(b, h, &hcfg, &ch);
    hcfg.layers = 23;
    hcfg.proj_dim = 0;
    wmap_free(h);
    h = wmap_new();
    add_tsv(h, "golden/clip/openclip_h14_keys.tsv", "", clip_rename_openclip, NULL, 0);
    REQUIRE_MSG(clip_load(b, h, &hcfg, &ch23) == SD_OK, "%s", sd_last_error());
    char unused[256];
    CHECK_MSG(wmap_unused(h, unused, sizeof unused) == 0, "SD 2 (23 blocks): unexpected %s", unused);
    be_tensor c2 = be_new(b, 2, 1, T, 1024);
    clip_forward(b, &ch, ids, 2, T, -2, 1, &c2, NULL);
    clip_forward(b, &ch23, ids, 2, T, -1, 1, &c2, NULL);

    /* SDXL: CLIP-L + OpenCLIP ViT-bigG/14 */
    wmap *g = wmap_new();
    add_tsv(g, "golden/clip/openclip_bigg14_keys.tsv", "", clip_rename_openclip, NULL, 0);
    check_arch(b, g, &(clip_config){49408, 1280, 32, 20, 5120, CLIP_ACT_GELU, 77, 1e-5f, 1280, 0, 0}, &cg);
    be_tensor xl = be_new(b, 2, 1, T, 2048), pooled = be_new(b, 2, 1, 1, 1280);
    clip_sdxl_forward(b, &cl, &cg, ids, ids, 2, T, 0, &xl, &pooled);
    peak = be_measure_end(b);
    CHECK_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
    test_note("SD 2 + SDXL encoders (virtual): forward arena peak %.2f MiB", peak / 1048576.0);
    clip_free(b, &cl); clip_free(b, &ch); clip_free(b, &ch23); clip_free(b, &cg);
    wmap_free(l); wmap_free(h); wmap_free(g);
    be_free(b);
}

/* ---- malformed input ---- */

static const char *drop_name;
static int drop_hf(const char *src, char *dst, size_t cap, void *user) {
    return clip_rename_hf(src, dst, cap, user) && strcmp(dst, drop_name);
}
static int drop_oc(const char *src, char *dst, size_t cap, void *user) {
    return clip_rename_openclip(src, dst, cap, user) && strcmp(dst, drop_name);
}

static void expect_load_error(be *b, wmap *m, const clip_config *cfg, const char *what, const char *needle) {
    clip_model c;
    sd_status st = clip_load(b, m, cfg, &c);
    CHECK_MSG(st == SD_ERR_MODEL || st == SD_ERR_ARG, "%s: clip_load returned %d", what, st);
    CHECK_STR_CONTAINS(sd_last_error(), needle);
    test_note("%s: %s", what, sd_last_error());
    if (st == SD_OK) clip_free(b, &c);
}

TEST(clip_malformed_weights_named) {
    be *b = mk();
    clip_config lcfg, gcfg;
    REQUIRE(clip_config_from_json(test_path("golden/clip/clip_l_config.json"), &lcfg) == SD_OK);
    REQUIRE(clip_config_from_json(test_path("golden/clip/clip_g_config.json"), &gcfg) == SD_OK);
    st_file *f = open_golden("golden/clip/sdxl_ldm.safetensors"), *fg = open_golden("golden/clip/clip_g.safetensors");
    static const char *const missing_hf[] = {"text_model.encoder.layers.1.mlp.fc2.weight", "text_model.final_layer_norm.bias",
                                             "text_model.embeddings.position_embedding.weight", "text_projection.weight",
                                             "text_model.encoder.layers.0.self_attn.k_proj.bias"};
    for (size_t i = 0; i < sizeof missing_hf / sizeof *missing_hf; i++) {
        wmap *m = wmap_new();
        drop_name = missing_hf[i];
        REQUIRE(wmap_add_file(m, fg, "", drop_hf, NULL) == SD_OK);
        expect_load_error(b, m, &gcfg, "missing", missing_hf[i]);
        wmap_free(m);
    }
    static const char *const missing_oc[] = {"text_model.encoder.layers.2.self_attn.in_proj_bias", "text_projection"};
    for (size_t i = 0; i < 2; i++) {
        wmap *m = wmap_new();
        drop_name = missing_oc[i];
        REQUIRE(wmap_add_file(m, f, "conditioner.embedders.1.model.", drop_oc, NULL) == SD_OK);
        /* a lone in_proj_weight without its bias, or a missing projection (asked for as text_projection.weight) */
        expect_load_error(b, m, &gcfg, "missing (OpenCLIP)", i ? "text_projection.weight" : missing_oc[0]);
        wmap_free(m);
    }
    /* a model config that does not fit the file: every mismatch names the tensor and both shapes */
    wmap *m = wmap_new();
    REQUIRE(clip_add_file(m, f, "conditioner.embedders.1.model.", CLIP_LAYOUT_AUTO) == SD_OK);
    clip_config bad = gcfg;
    bad.width = 48; bad.heads = 4;
    expect_load_error(b, m, &bad, "wrong width", "token_embedding.weight\" (text_model.embeddings.token_embedding.weight) has shape [256, 40], expected [256, 48]");
    bad = gcfg;
    bad.proj_dim = 40;
    expect_load_error(b, m, &bad, "wrong projection", "text_projection\" (text_projection) has shape [40, 24], expected [40, 40]");
    bad = gcfg;
    bad.inter = 64;
    expect_load_error(b, m, &bad, "wrong MLP width", "text_model.encoder.layers.0.mlp.fc1.weight");
    bad = gcfg;
    bad.heads = 3;
    expect_load_error(b, m, &bad, "heads", "3 heads do not divide width 40");
    bad = gcfg;
    bad.layers = 4;
    expect_load_error(b, m, &bad, "too many layers", "missing tensor \"text_model.encoder.layers.3.layer_norm1.weight\"");
    wmap_free(m);

    /* mis-shaped tensors in an architecture list: a fused in_proj, an MLP, a non-float dtype */
    static const struct { const char *file, *name; int64_t dim0; const char *needle; } shaped[] = {
        {"golden/clip/openclip_h14_keys.tsv", "text_model.encoder.layers.7.self_attn.in_proj_weight", 3071,
         "\"text_model.encoder.layers.7.self_attn.in_proj_weight\" has shape [3071, 1024], expected [3072, 1024]"},
        {"golden/clip/openclip_h14_keys.tsv", "text_model.encoder.layers.7.self_attn.in_proj_bias", 1024, "expected [3072]"},
        {"data/sd15_clip_keys.tsv", "text_model.encoder.layers.5.mlp.fc2.weight", 767,
         "text_model.encoder.layers.5.mlp.fc2.weight\" has shape [767, 3072], expected [768, 3072]"},
    };
    for (size_t i = 0; i < sizeof shaped / sizeof *shaped; i++) {
        wmap *v = wmap_new();
        int oc = strstr(shaped[i].file, "openclip") != NULL;
        add_tsv(v, shaped[i].file, oc ? "" : "cond_stage_model.transformer.", oc ? clip_rename_openclip : clip_rename_hf, shaped[i].name,
                shaped[i].dim0);
        clip_config c;
        REQUIRE_MSG(clip_config_infer(v, &c) == SD_OK, "%s", sd_last_error());
        expect_load_error(b, v, &c, "mis-shaped", shaped[i].needle);
        wmap_free(v);
    }
    wmap *v = wmap_new();
    REQUIRE(wmap_add_virtual(v, "text_model.embeddings.token_embedding.weight", ST_F32, 2, (int64_t[]){256, 40}) == SD_OK);
    REQUIRE(wmap_add_virtual(v, "text_model.embeddings.position_embedding.weight", ST_F32, 2, (int64_t[]){77, 40}) == SD_OK);
    REQUIRE(wmap_add_virtual(v, "text_model.encoder.layers.0.self_attn.in_proj_weight", ST_I32, 2, (int64_t[]){120, 40}) == SD_OK);
    REQUIRE(wmap_add_virtual(v, "text_model.encoder.layers.0.layer_norm1.weight", ST_F32, 1, (int64_t[]){40}) == SD_OK);
    REQUIRE(wmap_add_virtual(v, "text_model.encoder.layers.0.layer_norm1.bias", ST_F32, 1, (int64_t[]){40}) == SD_OK);
    clip_config one = gcfg;
    one.layers = 1;
    expect_load_error(b, v, &one, "integer weight", "in_proj_weight\" has dtype I32");
    clip_config c;
    CHECK(clip_config_infer(v, &c) != SD_OK); /* no fc1: the MLP width is unknown */
    CHECK_STR_CONTAINS(sd_last_error(), "text_model.encoder.layers.0.mlp.fc1.weight");
    wmap_free(v);
    v = wmap_new();
    CHECK(clip_config_infer(v, &c) == SD_ERR_MODEL);
    CHECK_STR_CONTAINS(sd_last_error(), "missing tensor \"text_model.embeddings.token_embedding.weight\"");
    wmap_free(v);
    st_close(fg);
    st_close(f);
    be_free(b);
}

TEST(clip_bad_config_json) {
    clip_config c;
    static const struct { const char *json, *needle; sd_status st; } cs[] = {
        {"[1, 2]", "not a JSON object", SD_ERR_FORMAT},
        {"{\"hidden_size\": 768,", "not a JSON object", SD_ERR_FORMAT},
        {"{\"hidden_act\": \"relu\"}", "hidden_act relu is not supported", SD_ERR_UNSUPPORTED},
        {"{\"hidden_size\": -3}", "\"hidden_size\" must be a whole number from 0 to", SD_ERR_FORMAT},
        {"{\"num_hidden_layers\": 2.5}", "\"num_hidden_layers\"", SD_ERR_FORMAT},
        {"{\"layer_norm_eps\": \"small\"}", "layer_norm_eps", SD_ERR_FORMAT},
        {"{\"eos_token_id\": [49407, 2]}", "eos_token_id", SD_ERR_UNSUPPORTED},
        {"{\"hidden_size\": 1e111}", "\"hidden_size\" must be a whole number", SD_ERR_FORMAT}, /* (int)1e111 is undefined */
        {"{\"eos_token_id\": 1e111}", "\"eos_token_id\"", SD_ERR_FORMAT},
        {"{\"layer_norm_eps\": 1e-320}", "\"layer_norm_eps\"", SD_ERR_FORMAT},
        /* sizes no model can have: refused here, where the file is known, not first in clip_load */
        {"{\"num_attention_heads\": 3}", "cfg.json: CLIP config: 3 heads do not divide width 512", SD_ERR_ARG},
        {"{\"num_hidden_layers\": 0}", "cfg.json: CLIP config: vocab 49408, width 512, layers 0", SD_ERR_ARG},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        CHECK_EQ_INT(clip_config_from_json_text(cs[i].json, strlen(cs[i].json), "cfg.json", &c), cs[i].st);
        CHECK_STR_CONTAINS(sd_last_error(), cs[i].needle);
        CHECK_STR_CONTAINS(sd_last_error(), "cfg.json");
    }
    /* a full CLIPConfig: the text part is read from text_config; defaults are transformers' */
    const char *full = "{\"architectures\": [\"CLIPModel\"], \"text_config\": {\"hidden_size\": 768, \"num_attention_heads\": 12,"
                       " \"projection_dim\": 768, \"eos_token_id\": 2}}";
    REQUIRE_MSG(clip_config_from_json_text(full, strlen(full), "full", &c) == SD_OK, "%s", sd_last_error());
    CHECK_EQ_INT(c.width, 768);
    CHECK_EQ_INT(c.heads, 12);
    CHECK_EQ_INT(c.layers, 12);
    CHECK_EQ_INT(c.inter, 2048);
    CHECK_EQ_INT(c.proj_dim, 768);
    CHECK_EQ_INT(c.pool, CLIP_POOL_ARGMAX);
    CHECK(clip_config_from_json(test_path("golden/clip/no_such_config.json"), &c) != SD_OK);
}

TEST(clip_bad_forward_arguments) {
    be *b = mk();
    model md;
    open_model(b, &md, "golden/clip/clip_l.safetensors", "", "golden/clip/clip_l_config.json");
    int32_t ids[2 * 78] = {0};
    be_tensor h = be_new(b, 2, 1, T, 32), h78 = be_new(b, 2, 1, 78, 32), p = be_new(b, 2, 1, 1, 40);
    ids[100] = 256;
    clip_forward(b, &md.c, ids, 2, T, -1, 1, &h, NULL);
    CHECK(be_status(b) == SD_ERR_ARG);
    CHECK_STR_CONTAINS(sd_last_error(), "id 256 out of range [0, 256)");
    be_clear_error(b);
    ids[100] = 3;
    clip_forward(b, &md.c, ids, 2, 78, -1, 1, &h78, NULL);
    CHECK_STR_CONTAINS((be_status(b), sd_last_error()), "tokens (1..77)");
    be_clear_error(b);
    clip_forward(b, &md.c, ids, 2, T, 3, 1, &h, NULL);
    CHECK_STR_CONTAINS((be_status(b), sd_last_error()), "hidden state 3 of 0..2");
    be_clear_error(b);
    clip_forward(b, &md.c, ids, 2, T, -4, 1, &h, NULL);
    CHECK(be_status(b) == SD_ERR_ARG);
    be_clear_error(b);
    clip_forward(b, &md.c, ids, 2, T, -1, 1, NULL, &p);
    CHECK_STR_CONTAINS((be_status(b), sd_last_error()), "pooled output [2,1,1,40], expected [2,1,1,32]");
    be_clear_error(b);
    clip_forward(b, &md.c, ids, 2, T, -1, 1, &h, NULL);
    CHECK(be_status(b) == SD_OK);
    close_model(b, &md);
    be_free(b);
}
