/* test_taesd.c — TAESD (diffusers AutoencoderTiny) against diffusers on tiny random-weight models of the real
 * architecture (tests/golden/taesd, tools/goldens_taesd.py): the issue asks for 1e-4 and 2/255; gated here at about
 * twice what is measured (decode 5.7e-6 -> 1.2e-5, encode 1.8e-7 -> 4e-7, encode + decode 2.4e-6 -> 5e-6, pictures
 * 0 -> 1/255, bands vs whole 6.2e-6 / 5.4e-7 -> 1.3e-5 / 1.1e-6);
 * the three naming schemes give the same model; banded runs equal whole ones; a full-size random-weight TAESD runs
 * at 512x512 with finite outputs; malformed files are refused by name. */
#include "test.h"
#include "be_test.h"
#include "random_ckpt.h"
#include "../core/error.h"
#include "../vae/taesd.h"
#include "../vae/vae.h"

#include <stdlib.h>

static double maxabs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void compare(const char *what, const float *got, const float *want, size_t n, double tol) {
    test_note("%s: max abs err %.2e (tol %.1e)", what, maxabs(got, want, n), tol);
    CHECK_MAXERR(got, want, (long)n, tol);
}

/* The 8-bit pictures of two decodes (diffusers' rounding) differ by at most `tol` levels. */
static void compare_pictures(const char *what, const float *got, const float *want, size_t n, int tol) {
    uint8_t *a = malloc(n), *b = malloc(n);
    vae_image_to_u8(got, n, a);
    vae_image_to_u8(want, n, b);
    int worst = test_u8_maxdiff(a, b, n);
    test_note("%s: pictures differ by at most %d/255 (tol %d)", what, worst, tol);
    CHECK(worst <= tol);
    free(a);
    free(b);
}

/* Loads one or two files (a pair of original decoder + encoder files) into a model. */
static taesd_model *open_model(be *b, const char *p1, const char *p2, int want_parts) {
    st_file *f[2] = {NULL, NULL};
    wmap *m = wmap_new();
    const char *paths[2] = {p1, p2};
    int parts_all = 0;
    for (int i = 0; i < 2 && paths[i]; i++) {
        REQUIRE_MSG(st_open(test_path(paths[i]), &f[i]) == SD_OK, "%s", sd_last_error());
        int parts;
        taesd_names names = taesd_detect(f[i], &parts);
        REQUIRE_MSG(names != TAESD_NOT, "%s: not detected as TAESD", paths[i]);
        parts_all |= parts;
        REQUIRE_MSG(taesd_add_weights(m, f[i], names) == SD_OK, "%s", sd_last_error());
    }
    CHECK_EQ_INT(parts_all, want_parts);
    taesd_model *t;
    REQUIRE_MSG(taesd_load(b, m, 1.0f, 0.0f, &t) == SD_OK, "%s", sd_last_error());
    char unused[256];
    CHECK_EQ_INT(wmap_unused(m, unused, sizeof unused), 0);
    CHECK_EQ_INT(taesd_parts(t), want_parts);
    wmap_free(m);
    for (int i = 0; i < 2; i++) if (f[i]) st_close(f[i]);
    return t;
}

/* Model a: decode (batch 2), encode (batch 2), and the round trip, against diffusers. */
static void check_a(be *b, taesd_model *t, const char *tag) {
    st_file *io;
    REQUIRE(st_open(test_path("golden/taesd/a_io.safetensors"), &io) == SD_OK);
    const int n = 2, h = 5, w = 7, H = 40, W = 56;
    size_t nz = (size_t)n * h * w * 4, ni = (size_t)n * H * W * 3;
    char what[128];
    if (taesd_parts(t) & TAESD_DECODER) {
        float *z = test_golden_f32(io, "dec.z", nz), *want = test_golden_f32(io, "dec.img", ni), *got = malloc(ni * sizeof(float));
        REQUIRE_MSG(taesd_decode(b, t, z, n, h, w, 0, got) == SD_OK, "%s", sd_last_error());
        snprintf(what, sizeof what, "%s: decode 5x7 x2", tag);
        compare(what, got, want, ni, 1.2e-5);
        compare_pictures(what, got, want, ni, 1);
        free(z); free(want); free(got);
    }
    if (taesd_parts(t) & TAESD_ENCODER) {
        float *img = test_golden_f32(io, "enc.img", ni), *want = test_golden_f32(io, "enc.z", nz), *got = malloc(nz * sizeof(float));
        REQUIRE_MSG(taesd_encode(b, t, img, n, H, W, 0, got) == SD_OK, "%s", sd_last_error());
        snprintf(what, sizeof what, "%s: encode 40x56 x2", tag);
        compare(what, got, want, nz, 4e-7);
        if (taesd_parts(t) & TAESD_DECODER) { /* encode then decode the first picture */
            float *rt = malloc(ni / 2 * sizeof(float)), *rwant = test_golden_f32(io, "roundtrip.img", ni / 2);
            REQUIRE(taesd_decode(b, t, got, 1, h, w, 0, rt) == SD_OK);
            snprintf(what, sizeof what, "%s: encode + decode", tag);
            compare(what, rt, rwant, ni / 2, 5e-6);
            free(rt); free(rwant);
        }
        free(img); free(want); free(got);
    }
    st_close(io);
}

TEST(taesd_golden_diffusers_folder) {
    be *b = test_cpu_backend(0);
    taesd_model *t = open_model(b, "golden/taesd/a/diffusion_pytorch_model.safetensors", NULL, TAESD_DECODER | TAESD_ENCODER);
    CHECK_EQ_INT(taesd_latent_channels(t), 4);
    CHECK_EQ_INT(taesd_factor(t), 8);
    char d[256];
    taesd_describe(t, d, sizeof d);
    CHECK_STR_CONTAINS(d, "decoder: 8 channels, blocks 2-1-2-1 (4 levels)");
    CHECK_STR_CONTAINS(d, "encoder: 8 channels, blocks 1-2-1-2 (4 levels)");
    check_a(b, t, "diffusers names");
    /* the backend-level forward takes the whole batch at once (no host clamp: values inside the soft clamp's range
     * matter less than the shapes here) */
    size_t mark = be_mark(b);
    be_tensor z = be_new(b, 2, 3, 4, 4), img = be_new(b, 2, 24, 32, 3), bad = be_new(b, 2, 24, 31, 3);
    taesd_decoder_forward(b, t, &z, &bad);
    CHECK(be_status(b) == SD_ERR_ARG);
    be_clear_error(b);
    be_release(b, mark);
    (void)img;
    taesd_free(t);
    be_free(b);
}

TEST(taesd_golden_original_and_comfy_names) {
    be *b = test_cpu_backend(0);
    taesd_model *t = open_model(b, "golden/taesd/a_taesd_decoder.safetensors", "golden/taesd/a_taesd_encoder.safetensors",
                                TAESD_DECODER | TAESD_ENCODER);
    check_a(b, t, "original taesd.py names (two files)");
    taesd_free(t);
    t = open_model(b, "golden/taesd/a_taesd_decoder.safetensors", NULL, TAESD_DECODER);
    check_a(b, t, "original decoder file alone");
    taesd_free(t);
    t = open_model(b, "golden/taesd/a_comfy.safetensors", NULL, TAESD_DECODER | TAESD_ENCODER);
    check_a(b, t, "ComfyUI combined names");
    taesd_free(t);
    be_free(b);
}

/* A decoder-only golden (b: 3 levels, 6 latent channels; c: a block with a skip conv). */
static void check_decoder_only(const char *tag, int lc, int f) {
    be *b = test_cpu_backend(0);
    char p[96];
    snprintf(p, sizeof p, "golden/taesd/%s_taesd_decoder.safetensors", tag);
    taesd_model *t = open_model(b, p, NULL, TAESD_DECODER);
    CHECK_EQ_INT(taesd_latent_channels(t), lc);
    CHECK_EQ_INT(taesd_factor(t), f);
    snprintf(p, sizeof p, "golden/taesd/%s_io.safetensors", tag);
    st_file *io;
    REQUIRE(st_open(test_path(p), &io) == SD_OK);
    size_t nz = (size_t)5 * 7 * lc, ni = (size_t)5 * f * 7 * f * 3;
    float *z = test_golden_f32(io, "dec.z", nz), *want = test_golden_f32(io, "dec.img", ni), *got = malloc(ni * sizeof(float));
    REQUIRE_MSG(taesd_decode(b, t, z, 1, 5, 7, 0, got) == SD_OK, "%s", sd_last_error());
    snprintf(p, sizeof p, "model %s: decode", tag);
    compare(p, got, want, ni, 1.2e-5);
    compare_pictures(p, got, want, ni, 1);
    float lat[4];
    CHECK(taesd_encode(b, t, got, 1, 5 * f, 7 * f, 0, lat) == SD_ERR_ARG); /* no encoder in the file */
    CHECK_STR_CONTAINS(sd_last_error(), "encoder was not loaded");
    free(z); free(want); free(got);
    st_close(io);
    taesd_free(t);
    be_free(b);
}

TEST(taesd_golden_three_levels_six_channels) { check_decoder_only("b", 6, 4); }
TEST(taesd_golden_skip_conv_block) { check_decoder_only("c", 4, 2); }

TEST(taesd_bands_equal_whole) {
    be *b = test_cpu_backend(0);
    taesd_model *t = open_model(b, "golden/taesd/a/diffusion_pytorch_model.safetensors", NULL, TAESD_DECODER | TAESD_ENCODER);
    const int h = 96, w = 6, H = h * 8, W = w * 8;
    size_t nz = (size_t)h * w * 4, ni = (size_t)H * W * 3;
    float *z = malloc(nz * sizeof(float)), *whole = malloc(ni * sizeof(float)), *banded = malloc(ni * sizeof(float));
    for (size_t i = 0; i < nz; i++) z[i] = (float)sin(0.37 * i) * 2.0f;
    size_t need = taesd_decode_arena_bytes(b, t, h, w, 0), limit = need / 2;
    int band = taesd_decode_band(b, t, h, w, limit);
    test_note("decode %dx%d latent: whole %.2f MiB; with a limit of %.2f MiB, bands of %d rows (%.2f MiB)", w, h, need / 1048576.0,
              limit / 1048576.0, band, taesd_decode_arena_bytes(b, t, h, w, limit) / 1048576.0);
    CHECK(band > 0 && band < h);
    CHECK(taesd_decode_arena_bytes(b, t, h, w, limit) <= limit);
    REQUIRE(taesd_decode(b, t, z, 1, h, w, 0, whole) == SD_OK);
    REQUIRE_MSG(taesd_decode(b, t, z, 1, h, w, limit, banded) == SD_OK, "%s", sd_last_error());
    /* float rounding only (GEMMs over a different number of rows): a row of context missing would be O(0.1) */
    compare("decode in bands vs whole", banded, whole, ni, 1.3e-5);
    /* the encoder, on the decoded picture */
    float *zw = malloc(nz * sizeof(float)), *zb = malloc(nz * sizeof(float));
    size_t eneed = taesd_encode_arena_bytes(b, t, H, W, 0);
    int eband = taesd_encode_band(b, t, H, W, eneed / 2);
    test_note("encode %dx%d picture: whole %.2f MiB, bands of %d latent rows within %.2f MiB", W, H, eneed / 1048576.0, eband, eneed / 2 / 1048576.0);
    CHECK(eband > 0 && eband < h);
    REQUIRE(taesd_encode(b, t, whole, 1, H, W, 0, zw) == SD_OK);
    REQUIRE_MSG(taesd_encode(b, t, whole, 1, H, W, eneed / 2, zb) == SD_OK, "%s", sd_last_error());
    compare("encode in bands vs whole", zb, zw, nz, 1.1e-6);
    /* a limit nothing fits is an error, not a crash */
    CHECK(taesd_decode(b, t, z, 1, h, w, 1024, banded) == SD_ERR_MEMORY);
    CHECK_STR_CONTAINS(sd_last_error(), "one latent row");
    CHECK(taesd_encode(b, t, whole, 1, H - 4, W, 0, zb) == SD_ERR_ARG);
    CHECK_STR_CONTAINS(sd_last_error(), "multiples of 8");
    free(z); free(whole); free(banded); free(zw); free(zb);
    taesd_free(t);
    be_free(b);
}

TEST(taesd_full_size_random_weights) {
    /* the real architecture (AutoencoderTiny defaults: 64 channels, blocks 1-3-3-3 / 3-3-3-1) at 512x512 */
    char path[4200];
    snprintf(path, sizeof path, "%s/taesd.safetensors", test_tmpdir());
    REQUIRE_MSG(random_ckpt_write(test_path("data/taesd-keys.tsv"), path, 7, ST_F16) == SD_OK, "%s", sd_last_error());
    st_file *f;
    REQUIRE(st_open(path, &f) == SD_OK);
    int parts;
    REQUIRE(taesd_detect(f, &parts) == TAESD_NAMES_DIFFUSERS && parts == (TAESD_DECODER | TAESD_ENCODER));
    wmap *m = wmap_new();
    REQUIRE(taesd_add_weights(m, f, TAESD_NAMES_DIFFUSERS) == SD_OK);
    be *b = be_cpu_new(0);
    taesd_model *t;
    REQUIRE_MSG(taesd_load(b, m, 1.0f, 0.0f, &t) == SD_OK, "%s", sd_last_error());
    char d[256];
    taesd_describe(t, d, sizeof d);
    CHECK_STR_CONTAINS(d, "decoder: 64 channels, blocks 3-3-3-1 (4 levels); encoder: 64 channels, blocks 1-3-3-3 (4 levels)");
    size_t need = taesd_decode_arena_bytes(b, t, 64, 64, 0);
    test_note("512x512 decode: %.1f MiB of activations, %.2f M parameters on the backend (held or mapped)", need / 1048576.0,
              (b->weight_bytes + b->weight_mapped) / 4e6);
    REQUIRE(be_arena_reserve(b, need) == SD_OK);
    const int h = 64, w = 64;
    size_t nz = (size_t)h * w * 4, ni = (size_t)512 * 512 * 3;
    float *z = malloc(nz * sizeof(float)), *img = malloc(ni * sizeof(float)), *z2 = malloc(nz * sizeof(float));
    for (size_t i = 0; i < nz; i++) z[i] = (float)cos(0.11 * i);
    REQUIRE_MSG(taesd_decode(b, t, z, 1, h, w, need, img) == SD_OK, "%s", sd_last_error());
    int bad = 0;
    for (size_t i = 0; i < ni; i++) bad += !isfinite(img[i]);
    CHECK_EQ_INT(bad, 0);
    for (size_t i = 0; i < ni; i++) img[i] = img[i] > 1 ? 1 : img[i] < -1 ? -1 : img[i];
    REQUIRE_MSG(taesd_encode(b, t, img, 1, 512, 512, need, z2) == SD_OK, "%s", sd_last_error());
    for (size_t i = 0; i < nz; i++) bad += !isfinite(z2[i]);
    CHECK_EQ_INT(bad, 0);
    free(z); free(img); free(z2);
    taesd_free(t);
    be_free(b);
    wmap_free(m);
    st_close(f);
}

/* A copy of golden a's diffusers file with one tensor renamed or reshaped. */
static sd_status load_altered(const char *drop, const char *rename_to, int reshape, char *msg, size_t cap) {
    st_file *src;
    REQUIRE(st_open(test_path("golden/taesd/a/diffusion_pytorch_model.safetensors"), &src) == SD_OK);
    st_writer *w = st_writer_new();
    for (int i = 0; i < st_count(src); i++) {
        const st_tensor *t = st_at(src, i);
        int64_t numel;
        float *d = st_load_f32(src, t->name, &numel);
        int64_t shape[ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        const char *name = t->name;
        if (!strcmp(name, drop)) {
            if (!rename_to && !reshape) { free(d); continue; }
            if (rename_to) name = rename_to;
            if (reshape) { shape[0] = t->shape[1]; shape[1] = t->shape[0]; shape[2] = 1; shape[3] = t->shape[2] * t->shape[3]; }
        }
        REQUIRE(st_writer_add_f32(w, name, ST_F32, t->ndim, shape, d) == SD_OK);
        free(d);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/bad.safetensors", test_tmpdir());
    REQUIRE(st_writer_save(w, path) == SD_OK);
    st_writer_free(w);
    st_close(src);
    st_file *f;
    REQUIRE(st_open(path, &f) == SD_OK);
    wmap *m = wmap_new();
    be *b = be_cpu_new(1);
    taesd_model *t = NULL;
    int parts;
    sd_status st = taesd_add_weights(m, f, taesd_detect(f, &parts));
    if (st == SD_OK) st = taesd_load(b, m, 1.0f, 0.0f, &t);
    snprintf(msg, cap, "%s", sd_last_error());
    taesd_free(t);
    be_free(b);
    wmap_free(m);
    st_close(f);
    return st;
}

TEST(taesd_malformed_files_are_refused) {
    char msg[512];
    CHECK(load_altered("decoder.layers.6.conv.2.weight", NULL, 0, msg, sizeof msg) == SD_ERR_MODEL);
    CHECK_STR_CONTAINS(msg, "decoder.layers.6.conv.2.weight");
    CHECK(load_altered("encoder.layers.2.weight", NULL, 1, msg, sizeof msg) == SD_ERR_MODEL);
    CHECK_STR_CONTAINS(msg, "encoder.layers.2.weight");
    CHECK(load_altered("decoder.layers.12.weight", "decoder.layers.12.conv.9.weight", 0, msg, sizeof msg) == SD_ERR_MODEL);
    CHECK_STR_CONTAINS(msg, "decoder.layers.12.conv.9.weight");
    /* a file with none of TAESD's names */
    st_file *f;
    REQUIRE(st_open(test_path("golden/vae/a_diffusers.safetensors"), &f) == SD_OK);
    int parts = -1;
    CHECK(taesd_detect(f, &parts) == TAESD_NOT && parts == 0);
    st_close(f);
}
