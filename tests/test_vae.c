/* test_vae.c — the AutoencoderKL decoder/encoder against diffusers goldens (tests/golden/vae, made by
 * tools/goldens_vae.py): three tiny random-weight models in diffusers and original (LDM) names, config
 * parsing and inference, the SD 1.5 key list, and diffusers' image conversions bit for bit. */
#include "test.h"
#include "../core/error.h"
#include "../vae/vae.h"

#include <stdlib.h>

static be *mk(size_t arena) {
    be *b = be_cpu_new(0);
    REQUIRE(b);
    REQUIRE(be_arena_reserve(b, arena) == SD_OK);
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

static double maxabs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Against diffusers in f32 the three VAEs measure at most 2.2e-6 (decodes of |y| ~ 3); held to about twice that. */
#define VAE_TOL 5e-6

static void compare(const char *what, const float *got, const float *want, size_t n, double tol) {
    test_note("%s: max abs err %.2e (tol %.2g)", what, maxabs(got, want, n), tol);
    CHECK_MAXERR(got, want, (long)n, tol);
}

/* A model and its golden inputs/outputs. */
typedef struct golden {
    st_file *w, *io;
    wmap *m;
    vae_config cfg;
    vae_model *v;
} golden;

static void golden_close(golden *g) {
    vae_free(g->v);
    wmap_free(g->m);
    st_close(g->w);
    st_close(g->io);
}

/* Runs decode (raw z and UNet-space), encode (mean and sample) of a golden model and compares. */
static void check_model(be *b, golden *g, const char *tag, int n, int h, int w) {
    const vae_config *c = &g->cfg;
    int f = vae_factor(g->v), lc = c->latent_channels, H = h * f, W = w * f;
    size_t nz = (size_t)n * h * w * lc, ni = (size_t)n * H * W * 3;
    float *z = load(g->io, "dec.z", nz), *want = load(g->io, "dec.img", ni), *got = malloc(ni * sizeof(float));
    char what[128];
    REQUIRE_MSG(vae_decode_z(b, g->v, z, n, h, w, NULL, got) == SD_OK, "%s", sd_last_error());
    snprintf(what, sizeof what, "%s decode %dx%d x%d", tag, h, w, n);
    compare(what, got, want, ni, VAE_TOL);
    /* the backend-level forward on the whole batch at once */
    size_t mark = be_mark(b);
    be_tensor zt = be_new(b, n, h, w, lc), it = be_new(b, n, H, W, 3);
    be_upload(b, &zt, z);
    vae_decoder_forward(b, g->v, &zt, &it);
    be_download(b, &it, got);
    be_release(b, mark);
    REQUIRE_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
    snprintf(what, sizeof what, "%s decoder forward (batch %d at once)", tag, n);
    compare(what, got, want, ni, VAE_TOL);
    free(got);
    free(want);
    free(z);

    float *img = load(g->io, "enc.img", ni), *mean = load(g->io, "enc.mean", nz), *noise = load(g->io, "enc.noise", nz);
    float *sample = load(g->io, "enc.sample", nz), *lat = malloc(nz * sizeof(float));
    /* the UNet-space latent is the config's scaling applied to diffusers' posterior */
    vae_latent_to_unet(c, mean, (size_t)n * h * w);
    vae_latent_to_unet(c, sample, (size_t)n * h * w);
    REQUIRE_MSG(vae_encode(b, g->v, img, n, H, W, NULL, lat) == SD_OK, "%s", sd_last_error());
    snprintf(what, sizeof what, "%s encode mean (scaled)", tag);
    compare(what, lat, mean, nz, VAE_TOL);
    REQUIRE_MSG(vae_encode(b, g->v, img, n, H, W, noise, lat) == SD_OK, "%s", sd_last_error());
    snprintf(what, sizeof what, "%s encode sample (scaled)", tag);
    compare(what, lat, sample, nz, VAE_TOL);
    free(img); free(mean); free(noise); free(sample); free(lat);
}

static void open_diffusers(golden *g, const char *tag) {
    char p[128];
    memset(g, 0, sizeof *g);
    snprintf(p, sizeof p, "golden/vae/%s_config.json", tag);
    REQUIRE_MSG(vae_config_from_json(test_path(p), &g->cfg) == SD_OK, "%s", sd_last_error());
    snprintf(p, sizeof p, "golden/vae/%s_diffusers.safetensors", tag);
    g->w = open_golden(p);
    snprintf(p, sizeof p, "golden/vae/%s_io.safetensors", tag);
    g->io = open_golden(p);
    g->m = wmap_new();
    CHECK(vae_detect_layout(g->w, "") == VAE_LAYOUT_DIFFUSERS);
    REQUIRE_MSG(vae_add_weights(g->m, g->w, "", VAE_LAYOUT_AUTO) == SD_OK, "%s", sd_last_error());
}

TEST(vae_golden_diffusers_a) {
    be *b = mk(64u << 20);
    golden g;
    open_diffusers(&g, "a");
    const vae_config *c = &g.cfg;
    CHECK(c->levels == 2 && c->block_out[0] == 8 && c->block_out[1] == 16 && c->layers_per_block == 2 && c->groups == 2);
    CHECK(c->latent_channels == 4 && c->mid_attention && c->quant_conv && c->post_quant_conv && c->shift_factor == 0);
    CHECK(c->scaling_factor == 0.18215f && !c->has_latents_mean_std);
    /* shapes say the same as config.json, except the group count, which they cannot tell */
    vae_config inf;
    REQUIRE_MSG(vae_config_infer(g.m, &inf) == SD_OK, "%s", sd_last_error());
    inf.groups = c->groups;
    CHECK(!memcmp(&inf.block_out, &c->block_out, sizeof c->block_out) && inf.levels == c->levels && inf.layers_per_block == c->layers_per_block);
    CHECK(inf.latent_channels == c->latent_channels && inf.quant_conv == c->quant_conv && inf.mid_attention == c->mid_attention);
    REQUIRE_MSG(vae_load(b, g.m, c, VAE_DECODER | VAE_ENCODER, &g.v) == SD_OK, "%s", sd_last_error());
    char unused[256];
    CHECK_MSG(wmap_unused(g.m, unused, sizeof unused) == 0, "unused: %s", unused);
    check_model(b, &g, "a", 2, 5, 7);
    golden_close(&g);
    be_free(b);
}

TEST(vae_golden_ldm_b) {
    be *b = mk(64u << 20);
    golden g;
    memset(&g, 0, sizeof g);
    g.w = open_golden("golden/vae/b_ldm.safetensors");
    g.io = open_golden("golden/vae/b_io.safetensors");
    g.m = wmap_new();
    CHECK(vae_detect_layout(g.w, "first_stage_model.") == VAE_LAYOUT_LDM);
    REQUIRE_MSG(vae_add_weights(g.m, g.w, "first_stage_model.", VAE_LAYOUT_AUTO) == SD_OK, "%s", sd_last_error());
    CHECK(wmap_has(g.m, "decoder.up_blocks.0.upsamplers.0.conv.weight") && wmap_has(g.m, "decoder.up_blocks.2.resnets.0.conv_shortcut.weight"));
    CHECK(wmap_has(g.m, "encoder.mid_block.attentions.0.to_out.0.bias") && wmap_has(g.m, "decoder.conv_norm_out.weight"));
    REQUIRE_MSG(vae_config_infer(g.m, &g.cfg) == SD_OK, "%s", sd_last_error());
    const vae_config *c = &g.cfg;
    CHECK(c->levels == 3 && c->block_out[0] == 8 && c->block_out[1] == 16 && c->block_out[2] == 16 && c->layers_per_block == 1);
    CHECK(c->latent_channels == 4 && c->in_channels == 3 && c->out_channels == 3 && c->mid_attention && c->quant_conv && c->post_quant_conv);
    CHECK(c->groups == 32 && c->scaling_factor == VAE_SCALING_SD1);
    CHECK(vae_load(b, g.m, c, VAE_DECODER, &g.v) != SD_OK); /* 8 channels cannot make 32 groups */
    CHECK_STR_CONTAINS(sd_last_error(), "not divisible by norm_num_groups 32");
    g.cfg.groups = 4; /* what the model was made with */
    REQUIRE_MSG(vae_load(b, g.m, c, VAE_DECODER | VAE_ENCODER, &g.v) == SD_OK, "%s", sd_last_error());
    char unused[256];
    CHECK_MSG(wmap_unused(g.m, unused, sizeof unused) == 0, "unused: %s", unused);
    check_model(b, &g, "b (LDM names)", 1, 5, 7);
    /* odd image size: the downsample pads right/bottom only, 19x27 -> 9x13 -> 4x6 */
    int h, w;
    vae_latent_size(g.v, 19, 27, &h, &w);
    CHECK(h == 4 && w == 6);
    float *img = load(g.io, "odd.img", 19 * 27 * 3), *mean = load(g.io, "odd.mean", h * w * 4), *lat = malloc(h * w * 4 * sizeof(float));
    vae_latent_to_unet(c, mean, h * w);
    REQUIRE_MSG(vae_encode(b, g.v, img, 1, 19, 27, NULL, lat) == SD_OK, "%s", sd_last_error());
    compare("b encode 19x27 image", lat, mean, h * w * 4, VAE_TOL);
    free(img); free(mean); free(lat);
    golden_close(&g);
    be_free(b);
}

TEST(vae_golden_switches_c) {
    /* no quant convs, no mid attention, 6 latent channels, shift_factor */
    be *b = mk(64u << 20);
    golden g;
    open_diffusers(&g, "c");
    const vae_config *c = &g.cfg;
    CHECK(c->latent_channels == 6 && !c->quant_conv && !c->post_quant_conv && !c->mid_attention);
    CHECK(c->scaling_factor == 0.3611f && c->shift_factor == 0.1159f);
    vae_config inf;
    REQUIRE_MSG(vae_config_infer(g.m, &inf) == SD_OK, "%s", sd_last_error());
    CHECK(inf.latent_channels == 6 && !inf.quant_conv && !inf.post_quant_conv && !inf.mid_attention && inf.levels == 2);
    REQUIRE_MSG(vae_load(b, g.m, c, VAE_DECODER | VAE_ENCODER, &g.v) == SD_OK, "%s", sd_last_error());
    char unused[256];
    CHECK_MSG(wmap_unused(g.m, unused, sizeof unused) == 0, "unused: %s", unused);
    check_model(b, &g, "c", 1, 5, 7);
    golden_close(&g);
    be_free(b);
}

TEST(vae_decode_unet_space_latent) {
    /* vae_decode divides by scaling_factor (and adds the shift) before decoding, as the pipelines do */
    be *b = mk(64u << 20);
    golden g;
    open_diffusers(&g, "c");
    REQUIRE_MSG(vae_load(b, g.m, &g.cfg, VAE_DECODER, &g.v) == SD_OK, "%s", sd_last_error());
    size_t nz = 5 * 7 * 6, ni = 10 * 14 * 3;
    float *z = load(g.io, "dec.z", nz), *want = load(g.io, "dec.img", ni), *got = malloc(ni * sizeof(float)), *u = malloc(nz * sizeof(float));
    for (size_t i = 0; i < nz; i++) u[i] = (float)(((double)z[i] - 0.1159) * 0.3611);
    REQUIRE_MSG(vae_decode(b, g.v, u, 1, 5, 7, NULL, got) == SD_OK, "%s", sd_last_error());
    compare("c decode from UNet-space latent", got, want, ni, VAE_TOL);
    char unused[256];
    CHECK_MSG(wmap_unused(g.m, unused, sizeof unused) == 0, "unused: %s", unused); /* encoder tensors: expected, not loaded */
    CHECK(vae_encode(b, g.v, want, 1, 10, 14, NULL, u) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "encoder was not loaded");
    free(z); free(want); free(got); free(u);
    golden_close(&g);
    be_free(b);
}

TEST(vae_latent_scaling) {
    vae_config c;
    vae_config_default(&c);
    float z[8] = {1.0f, -2.0f, 0.5f, 3.0f, 0.0f, -0.25f, 7.0f, -1.5f}, x[8];
    memcpy(x, z, sizeof z);
    vae_latent_to_unet(&c, x, 2);
    for (int i = 0; i < 8; i++) CHECK(x[i] == z[i] * 0.18215f);
    vae_latent_from_unet(&c, x, 2);
    for (int i = 0; i < 8; i++) CHECK_NEAR(x[i], z[i], 1e-6);
    /* per-channel latents_mean / latents_std (SDXL pipeline convention): (z - mean)·s / std */
    c.has_latents_mean_std = 1;
    c.scaling_factor = 0.5f;
    for (int k = 0; k < 4; k++) { c.latents_mean[k] = 0.1f * k - 0.2f; c.latents_std[k] = 1.0f + 0.5f * k; }
    memcpy(x, z, sizeof z);
    vae_latent_to_unet(&c, x, 2);
    for (int i = 0; i < 8; i++) CHECK_NEAR(x[i], ((double)z[i] - (0.1 * (i % 4) - 0.2)) * 0.5 / (1.0 + 0.5 * (i % 4)), 1e-6);
    vae_latent_from_unet(&c, x, 2);
    for (int i = 0; i < 8; i++) CHECK_NEAR(x[i], z[i], 1e-6);
}

TEST(vae_posterior_clamps_logvar) {
    /* moments [mean | logvar] for 3 positions of 2 channels; logvar outside [-30, 20] is clamped */
    float m[12] = {0.5f, -1.0f, 25.0f, 2.0f, 0.0f, 0.0f, -40.0f, -30.0f, 1.0f, 1.0f, 19.0f, 0.3f};
    float noise[6] = {1.0f, -0.5f, 2.0f, 1.5f, -1.0f, 0.25f}, out[6];
    vae_posterior(m, 2, 3, NULL, out);
    CHECK(out[0] == 0.5f && out[1] == -1.0f && out[2] == 0.0f && out[3] == 0.0f && out[4] == 1.0f && out[5] == 1.0f);
    vae_posterior(m, 2, 3, noise, out);
    const double lv[6] = {20, 2, -30, -30, 19, 0.3}, mu[6] = {0.5, -1, 0, 0, 1, 1};
    for (int i = 0; i < 6; i++) {
        double want = mu[i] + exp(0.5 * lv[i]) * noise[i];
        CHECK_NEAR(out[i], want, 1e-6 * fabs(want) + 1e-6);
    }
}

TEST(vae_image_conversions_match_diffusers) {
    st_file *f = open_golden("golden/vae/image.safetensors");
    int64_t n, n2;
    float *x = st_load_f32(f, "to_u8.x", &n), *want = st_load_f32(f, "to_u8.u8", &n2);
    REQUIRE(x && want && n == n2);
    uint8_t *u = malloc(n);
    vae_image_to_u8(x, n, u);
    int bad = 0, halves = 0;
    for (int64_t i = 0; i < n; i++) {
        if (u[i] != (uint8_t)want[i] && bad++ < 5) test_fail(__FILE__, __LINE__, "x = %.9g -> %d, numpy %d", x[i], u[i], (int)want[i]);
        float t = x[i] * 0.5f + 0.5f, p = t * 255.0f;
        halves += t > 0 && t < 1 && p - floorf(p) == 0.5f;
    }
    test_note("%lld values (%d exactly on a .5 boundary): %d differ from numpy", (long long)n, halves, bad);
    CHECK(halves > 100);
    float nan = NAN;
    vae_image_to_u8(&nan, 1, u);
    CHECK(u[0] == 0);
    free(u);
    free(x);
    free(want);
    /* uint8 -> [-1, 1], bit for bit */
    float *ref = st_load_f32(f, "from_u8.x", &n), got[256];
    REQUIRE(ref && n == 256);
    uint8_t all[256];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    vae_image_from_u8(all, 256, got);
    CHECK(!memcmp(got, ref, sizeof got));
    CHECK(got[0] == -1.0f && got[255] == 1.0f);
    free(ref);
    st_close(f);
}

TEST(vae_ldm_rename_table) {
    static const char *const pairs[][2] = {
        {"encoder.down.0.block.1.nin_shortcut.weight", "encoder.down_blocks.0.resnets.1.conv_shortcut.weight"},
        {"encoder.down.2.downsample.conv.bias", "encoder.down_blocks.2.downsamplers.0.conv.bias"},
        {"encoder.mid.block_1.norm1.weight", "encoder.mid_block.resnets.0.norm1.weight"},
        {"decoder.mid.block_2.conv2.bias", "decoder.mid_block.resnets.1.conv2.bias"},
        {"decoder.mid.attn_1.norm.bias", "decoder.mid_block.attentions.0.group_norm.bias"},
        {"decoder.mid.attn_1.proj_out.weight", "decoder.mid_block.attentions.0.to_out.0.weight"},
        {"encoder.mid.attn_1.k.weight", "encoder.mid_block.attentions.0.to_k.weight"},
        {"decoder.up.3.block.0.conv1.weight", "decoder.up_blocks.0.resnets.0.conv1.weight"},
        {"decoder.up.0.block.2.norm2.weight", "decoder.up_blocks.3.resnets.2.norm2.weight"},
        {"decoder.up.1.upsample.conv.weight", "decoder.up_blocks.2.upsamplers.0.conv.weight"},
        {"decoder.norm_out.weight", "decoder.conv_norm_out.weight"},
        {"encoder.conv_out.bias", "encoder.conv_out.bias"},
        {"post_quant_conv.weight", "post_quant_conv.weight"},
    };
    char dst[256];
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        CHECK(vae_ldm_rename(pairs[i][0], 4, dst, sizeof dst));
        CHECK_MSG(!strcmp(dst, pairs[i][1]), "%s -> %s, expected %s", pairs[i][0], dst, pairs[i][1]);
    }
    CHECK(!vae_ldm_rename("loss.discriminator.main.0.weight", 4, dst, sizeof dst));
    CHECK(!vae_ldm_rename("model_ema.decay", 4, dst, sizeof dst));
}

TEST(vae_weight_files_standalone_and_old_names) {
    /* a standalone LDM VAE file (no prefix, with training leftovers) and an old diffusers file */
    const char *dir = test_tmpdir();
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/ldm_vae.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/old_diffusers.safetensors", dir);
    float d[16] = {0};
    int64_t s1[1] = {4};
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "encoder.conv_in.bias", ST_F32, 1, s1, d);
    st_writer_add_f32(w, "decoder.up.1.block.0.nin_shortcut.bias", ST_F32, 1, s1, d);
    st_writer_add_f32(w, "decoder.up.0.upsample.conv.bias", ST_F32, 1, s1, d);
    st_writer_add_f32(w, "loss.logvar", ST_F32, 1, s1, d);
    st_writer_add_f32(w, "model_ema.decay", ST_F32, 1, s1, d);
    REQUIRE(st_writer_save(w, p1) == SD_OK);
    st_writer_free(w);
    w = st_writer_new();
    st_writer_add_f32(w, "decoder.mid_block.attentions.0.query.weight", ST_F32, 1, s1, d);
    st_writer_add_f32(w, "decoder.mid_block.attentions.0.proj_attn.bias", ST_F32, 1, s1, d);
    st_writer_add_f32(w, "encoder.mid_block.attentions.0.group_norm.bias", ST_F32, 1, s1, d);
    REQUIRE(st_writer_save(w, p2) == SD_OK);
    st_writer_free(w);
    st_file *f1, *f2;
    REQUIRE(st_open(p1, &f1) == SD_OK && st_open(p2, &f2) == SD_OK);
    CHECK(vae_detect_layout(f1, "") == VAE_LAYOUT_LDM && vae_detect_layout(f2, "") == VAE_LAYOUT_DIFFUSERS);
    wmap *m = wmap_new();
    REQUIRE(vae_add_weights(m, f1, "", VAE_LAYOUT_AUTO) == SD_OK);
    CHECK_EQ_INT(wmap_count(m), 3); /* loss.* and model_ema.* are not the VAE's */
    CHECK(wmap_has(m, "encoder.conv_in.bias") && wmap_has(m, "decoder.up_blocks.0.resnets.0.conv_shortcut.bias"));
    CHECK(wmap_has(m, "decoder.up_blocks.1.upsamplers.0.conv.bias"));
    wmap_free(m);
    m = wmap_new();
    REQUIRE(vae_add_weights(m, f2, "", VAE_LAYOUT_AUTO) == SD_OK);
    CHECK(wmap_has(m, "decoder.mid_block.attentions.0.to_q.weight") && wmap_has(m, "decoder.mid_block.attentions.0.to_out.0.bias"));
    CHECK(wmap_has(m, "encoder.mid_block.attentions.0.group_norm.bias"));
    /* both spellings in one file collide on the canonical name */
    REQUIRE(vae_add_weights(m, f2, "", VAE_LAYOUT_DIFFUSERS) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "both map to");
    wmap_free(m);
    st_close(f1);
    st_close(f2);
}

/* The SD 1.5 VAE (248 tensors, original names) with virtual weights. */
static wmap *sd15_virtual(void) {
    FILE *fp = fopen(test_path("data/sd15-vae-keys.tsv"), "r");
    REQUIRE(fp);
    wmap *m = wmap_new();
    char line[512], name[256], canon[256];
    int count = 0;
    while (fgets(line, sizeof line, fp)) {
        char *tab = strchr(line, '\t');
        REQUIRE(tab && !strncmp(line, "first_stage_model.", 18));
        *tab = 0;
        snprintf(name, sizeof name, "%s", line + 18);
        int64_t shape[4];
        int nd = 0;
        for (char *s = tab + 1; nd < 4 && *s && *s != '\n'; nd++) {
            shape[nd] = strtoll(s, &s, 10);
            if (*s == ',') s++;
        }
        REQUIRE(vae_ldm_rename(name, 4, canon, sizeof canon));
        REQUIRE_MSG(wmap_add_virtual(m, canon, ST_F16, nd, shape) == SD_OK, "%s", sd_last_error());
        count++;
    }
    fclose(fp);
    CHECK_EQ_INT(count, 248);
    return m;
}

TEST(vae_sd15_names_and_shapes) {
    be *b = mk(1u << 20);
    wmap *m = sd15_virtual();
    vae_config c, def;
    REQUIRE_MSG(vae_config_infer(m, &c) == SD_OK, "%s", sd_last_error());
    vae_config_default(&def);
    CHECK(!memcmp(&c, &def, sizeof c)); /* inferred == the SD 1.x VAE */
    vae_model *v;
    be_measure_begin(b);
    sd_status st = vae_load(b, m, &c, VAE_DECODER | VAE_ENCODER, &v);
    be_measure_end(b);
    REQUIRE_MSG(st == SD_OK, "%s", sd_last_error());
    char unused[1024];
    CHECK_MSG(wmap_unused(m, unused, sizeof unused) == 0, "unused: %s", unused);
    /* a missing or mis-shaped tensor is named */
    wmap *m2 = wmap_new();
    int64_t s[4] = {4, 4, 1, 1};
    wmap_add_virtual(m2, "post_quant_conv.weight", ST_F16, 4, s);
    wmap_add_virtual(m2, "post_quant_conv.bias", ST_F16, 1, s);
    vae_model *v2;
    be_measure_begin(b);
    CHECK(vae_load(b, m2, &c, VAE_DECODER, &v2) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "missing tensor \"decoder.conv_in.weight\"");
    s[0] = 512; s[1] = 4; s[2] = 3; s[3] = 3;
    wmap_add_virtual(m2, "decoder.conv_in.weight", ST_F16, 4, s);
    s[0] = 511;
    wmap_add_virtual(m2, "decoder.conv_in.bias", ST_F16, 1, s);
    CHECK(vae_load(b, m2, &c, VAE_DECODER, &v2) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "decoder.conv_in.bias\" has shape [511], expected [512]");
    be_measure_end(b);
    wmap_free(m2);

    /* activation memory (arena peak, measure mode, f32) of SD 1.5 decodes and encodes */
    vae_decode_opts off = {VAE_TILING_OFF, 0, 0, 0}, on = {VAE_TILING_ON, 0, 8, 0}, blend = {VAE_TILING_BLEND, 0, 32, 8};
    size_t d512 = vae_decode_arena_bytes(b, v, 64, 64, &off), s512 = vae_decode_arena_bytes(b, v, 64, 64, &on);
    size_t t512 = vae_decode_arena_bytes(b, v, 64, 64, &blend), d2048 = vae_decode_arena_bytes(b, v, 256, 256, &off);
    size_t s2048 = vae_decode_arena_bytes(b, v, 256, 256, &on), t2048 = vae_decode_arena_bytes(b, v, 256, 256, &blend);
    size_t e512 = vae_encode_arena_bytes(b, v, 512, 512);
    test_note("SD1.5 decode 512x512: %.1f MiB untiled, %.1f MiB exact bands of 8 latent rows, %.1f MiB blended 32x32 tiles", d512 / 1048576.0,
              s512 / 1048576.0, t512 / 1048576.0);
    test_note("SD1.5 decode 2048x2048: %.1f MiB untiled, %.1f MiB exact bands of 8 latent rows, %.1f MiB blended 32x32 tiles", d2048 / 1048576.0,
              s2048 / 1048576.0, t2048 / 1048576.0);
    test_note("SD1.5 encode 512x512: %.1f MiB", e512 / 1048576.0);
    CHECK(d512 > 0 && s512 > 0 && t512 > 0 && s512 < d512 / 3 && t512 < d512 / 3 && t2048 == t512 && d2048 > 15 * d512 && s2048 < d2048 / 8);
    /* vae_decode itself in measure mode uses what vae_decode_arena_bytes reports */
    float *z = calloc(64 * 64 * 4, sizeof(float)), *rgb = malloc(sizeof(float) * 512 * 512 * 3);
    vae_decode_opts *modes[3] = {&off, &on, &blend};
    size_t want[3] = {d512, s512, t512};
    for (int i = 0; i < 3; i++) {
        be_measure_begin(b);
        CHECK(vae_decode(b, v, z, 1, 64, 64, modes[i], rgb) == SD_OK);
        size_t got = be_measure_end(b);
        CHECK_MSG(got == want[i], "mode %d: measured decode %zu bytes, vae_decode_arena_bytes %zu", (int)modes[i]->tiling, got, want[i]);
    }
    free(z);
    free(rgb);
    /* automatic: a 2 GiB budget decodes 2048^2 in the largest exact bands that fit it */
    vae_decode_opts aut = {VAE_TILING_AUTO, (size_t)2 << 30, 0, 0};
    vae_plan pl;
    REQUIRE_MSG(vae_decode_plan(b, v, 256, 256, &aut, &pl) == SD_OK, "%s", sd_last_error());
    test_note("SD1.5 2048x2048 with a 2 GiB budget: bands of %d latent rows, %.1f MiB", pl.tile, pl.arena_bytes / 1048576.0);
    CHECK(pl.mode == VAE_TILING_ON && pl.tile >= 8 && pl.tile < 256 && pl.arena_bytes <= aut.mem_limit);
    CHECK(vae_decode_arena_bytes(b, v, 256, 256, &aut) == pl.arena_bytes);
    REQUIRE_MSG(vae_decode_plan(b, v, 64, 64, &aut, &pl) == SD_OK, "%s", sd_last_error());
    CHECK(pl.mode == VAE_TILING_OFF && pl.arena_bytes == d512); /* 512^2 fits: untiled */
    /* a budget below the trunk (the mid-block attention is whole) falls back to blended tiles */
    aut.mem_limit = 200u << 20;
    REQUIRE_MSG(vae_decode_plan(b, v, 256, 256, &aut, &pl) == SD_OK, "%s", sd_last_error());
    test_note("SD1.5 2048x2048 with a 200 MiB budget: blended %dx%d tiles, overlap %d, %.1f MiB", pl.tile, pl.tile, pl.overlap, pl.arena_bytes / 1048576.0);
    CHECK(pl.mode == VAE_TILING_BLEND && pl.arena_bytes <= aut.mem_limit);
    aut.mem_limit = 1 << 20;
    CHECK(vae_decode_arena_bytes(b, v, 256, 256, &aut) == 0);
    CHECK_STR_CONTAINS(sd_last_error(), "the limit is 1.0 MiB");
    vae_free(v);
    wmap_free(m);
    be_free(b);
}

TEST(vae_config_json_errors) {
    vae_config c;
    static const struct { const char *json, *msg; } cs[] = {
        {"[1]", "not a JSON object"},
        {"{\"_class_name\": \"AutoencoderTiny\"}", "is not AutoencoderKL"},
        {"{\"act_fn\": \"relu\"}", "act_fn \"relu\""},
        {"{\"block_out_channels\": [32, 48], \"norm_num_groups\": 32}", "not divisible by norm_num_groups"},
        {"{\"block_out_channels\": [32, 64], \"up_block_types\": [\"UpDecoderBlock2D\"]}", "up block types"},
        {"{\"down_block_types\": [\"CrossAttnDownBlock2D\"]}", "block types other than"},
        {"{\"layers_per_block\": 1.5}", "\"layers_per_block\""},
        {"{\"scaling_factor\": \"x\"}", "\"scaling_factor\""},
        {"{\"latents_mean\": [0, 0, 0, 0], \"latents_std\": [1, 1, 1]}", "latents_std 3 entries"},
        {"{\"latents_mean\": [0, 0, 0, 0], \"latents_std\": [1, 1, 0, 1]}", "latents_std[2]"},
        {"{\"scaling_factor\": 1e300}", "\"scaling_factor\" must be a number"}, /* to float: undefined */
        {"{\"block_out_channels\": [1e40, 64]}", "\"block_out_channels[0]\""},
        {"{\"latents_mean\": [0, 0, -1e300, 0], \"latents_std\": [1, 1, 1, 1]}", "\"latents_mean[2]\""},
        {"{\"latent_channels\": 1e111}", "\"latent_channels\" must be a whole number"},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        CHECK_MSG(vae_config_from_json_text(cs[i].json, strlen(cs[i].json), "cfg.json", &c) != SD_OK, "accepted %s", cs[i].json);
        CHECK_STR_CONTAINS(sd_last_error(), cs[i].msg);
    }
    const char *ok = "{\"latent_channels\": 4, \"latents_mean\": [0.1, 0.2, 0.3, 0.4], \"latents_std\": [1, 2, 3, 4], \"shift_factor\": null,"
                     " \"block_out_channels\": [128, 256, 512, 512], \"layers_per_block\": 2, \"scaling_factor\": 0.13025}";
    REQUIRE_MSG(vae_config_from_json_text(ok, strlen(ok), "cfg.json", &c) == SD_OK, "%s", sd_last_error());
    CHECK(c.has_latents_mean_std && c.latents_std[3] == 4.0f && c.latents_mean[0] == 0.1f && c.shift_factor == 0 && c.scaling_factor == 0.13025f);
    CHECK(vae_config_from_json(test_path("golden/vae/missing.json"), &c) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "missing.json");
}
