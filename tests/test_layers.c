/* test_layers.c — norms, attention and the shared layers against PyTorch / diffusers goldens
 * (tests/golden/ops, made by tools/goldens_ops.py), and the weight map's checks. */
#include "test.h"
#include "be_test.h"
#include "../core/error.h"
#include "../kernels/layers.h"

#include <stdlib.h>

/* Against PyTorch in f32, measured: norms at most 1.07e-6 (GroupNorm+SiLU), attention 8.3e-7 (cross), the ResNet and
 * Transformer2D blocks 1.31e-6 (ResNet); each held to about twice its worst. */
#define NORM_TOL 2.5e-6
#define ATTN_TOL 2e-6
#define BLOCK_TOL 3e-6

static be *mk(void) {
    be *b = be_cpu_new(0);
    REQUIRE(b);
    REQUIRE(be_arena_reserve(b, 64u << 20) == SD_OK);
    return b;
}

static st_file *open_golden(const char *name) {
    st_file *f;
    REQUIRE_MSG(st_open(test_path(name), &f) == SD_OK, "%s", sd_last_error());
    return f;
}

static void expect(be *b, st_file *f, const char *name, const be_tensor *got, double tol, const char *what) {
    int64_t cnt;
    float *want = st_load_f32(f, name, &cnt);
    REQUIRE(want && cnt == (int64_t)be_numel(got));
    float *g = malloc(cnt * sizeof(float));
    be_download(b, got, g);
    REQUIRE_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
    double worst = 0;
    for (int64_t i = 0; i < cnt; i++) worst = fmax(worst, fabs(g[i] - want[i]));
    test_note("%s: max abs err %.2e (tol %.2g)", what, worst, tol);
    CHECK_MAXERR(g, want, cnt, tol);
    free(g);
    free(want);
}

static wmap *map_of(st_file *f, const char *prefix) {
    wmap *m = wmap_new();
    REQUIRE(wmap_add_file(m, f, prefix, NULL, NULL) == SD_OK);
    return m;
}

TEST(golden_group_norm_layer_norm) {
    be *b = mk();
    st_file *f = open_golden("golden/ops/norms.safetensors");
    wmap *m = map_of(f, "");
    be_weight gw, gb, lw, lb;
    REQUIRE(wmap_vec(b, m, &gw, 12, "gn.weight") == SD_OK && wmap_vec(b, m, &gb, 12, "gn.bias") == SD_OK);
    REQUIRE(wmap_vec(b, m, &lw, 20, "ln.weight") == SD_OK && wmap_vec(b, m, &lb, 20, "ln.bias") == SD_OK);
    be_tensor x = test_golden_upload(b, f, "gn.x", 2, 5, 7, 12), y = be_new(b, 2, 5, 7, 12);
    be_group_norm(b, &x, &gw, &gb, 4, 1e-6f, 0, &y);
    expect(b, f, "gn.y", &y, NORM_TOL, "GroupNorm");
    be_group_norm(b, &x, &gw, &gb, 4, 1e-6f, 1, &y);
    expect(b, f, "gn.y_silu", &y, NORM_TOL, "GroupNorm+SiLU");
    be_tensor lx = test_golden_upload(b, f, "ln.x", 3, 1, 11, 20), ly = be_new(b, 3, 1, 11, 20);
    be_layer_norm(b, &lx, &lw, &lb, 1e-5f, &ly);
    expect(b, f, "ln.y", &ly, NORM_TOL, "LayerNorm");
    be_weight *ws[] = {&gw, &gb, &lw, &lb};
    for (int i = 0; i < 4; i++) be_weight_free(b, ws[i]);
    wmap_free(m);
    st_close(f);
    be_free(b);
}

TEST(golden_attention) {
    be *b = mk();
    st_file *f = open_golden("golden/ops/attention.safetensors");
    static const struct { const char *name; int n, tq, tk, c, heads, causal; } cs[] = {
        {"self", 2, 19, 19, 40, 5, 0}, {"causal", 2, 77, 77, 24, 3, 1}, {"cross", 2, 33, 7, 80, 1, 0}, {"hd40", 1, 70, 77, 80, 2, 0}};
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        char nq[64], nk[64], nv[64], ny[64];
        snprintf(nq, 64, "%s.q", cs[i].name); snprintf(nk, 64, "%s.k", cs[i].name);
        snprintf(nv, 64, "%s.v", cs[i].name); snprintf(ny, 64, "%s.y", cs[i].name);
        size_t mark = be_mark(b);
        be_tensor q = test_golden_upload(b, f, nq, cs[i].n, 1, cs[i].tq, cs[i].c), k = test_golden_upload(b, f, nk, cs[i].n, 1, cs[i].tk, cs[i].c);
        be_tensor v = test_golden_upload(b, f, nv, cs[i].n, 1, cs[i].tk, cs[i].c), y = be_new(b, cs[i].n, 1, cs[i].tq, cs[i].c);
        be_attention(b, &q, &k, &v, cs[i].heads, cs[i].causal, &y);
        expect(b, f, ny, &y, ATTN_TOL, cs[i].name);
        be_release(b, mark);
    }
    st_close(f);
    be_free(b);
}

TEST(golden_resnet_block) {
    be *b = mk();
    st_file *f = open_golden("golden/ops/resnet.safetensors");
    wmap *m = map_of(f, "");
    layer_resnet r;
    REQUIRE_MSG(layer_resnet_load(b, m, &r, "resnet", 24, 40, 48, 8, 1e-5f) == SD_OK, "%s", sd_last_error());
    be_tensor x = test_golden_upload(b, f, "x", 2, 5, 7, 24), temb = test_golden_upload(b, f, "temb", 2, 1, 1, 48), y = be_new(b, 2, 5, 7, 40);
    be_act_fn(b, BE_ACT_SILU, &temb, &temb);
    layer_resnet_forward(b, &r, &x, &temb, &y);
    expect(b, f, "y", &y, BLOCK_TOL, "ResnetBlock2D");
    char unused[256];
    CHECK_MSG(wmap_unused(m, unused, sizeof unused) == 3, "unused: %s", unused); /* only the inputs and output */
    layer_resnet_free(b, &r);
    wmap_free(m);
    st_close(f);
    be_free(b);
}

TEST(golden_transformer2d) {
    const char *files[2] = {"golden/ops/transformer2d_conv.safetensors", "golden/ops/transformer2d_linear.safetensors"};
    for (int i = 0; i < 2; i++) {
        be *b = mk();
        st_file *f = open_golden(files[i]);
        wmap *m = map_of(f, "");
        layer_t2d t;
        REQUIRE_MSG(layer_t2d_load(b, m, &t, "t2d", 32, 24, 2, 2, 32) == SD_OK, "%s", sd_last_error());
        char unused[512];
        CHECK_MSG(wmap_unused(m, unused, sizeof unused) == 3, "unused: %s", unused); /* x, ctx, y */
        be_tensor x = test_golden_upload(b, f, "x", 2, 3, 5, 32), ctx = test_golden_upload(b, f, "ctx", 2, 1, 7, 24), y = be_new(b, 2, 3, 5, 32);
        layer_t2d_forward(b, &t, &x, &ctx, &y);
        expect(b, f, "y", &y, BLOCK_TOL, i ? "Transformer2D (linear proj)" : "Transformer2D (1x1 conv proj)");
        layer_t2d_free(b, &t);
        wmap_free(m);
        st_close(f);
        be_free(b);
    }
}

static int drop_prefix_rename(const char *src, char *dst, size_t cap, void *user) {
    (void)user;
    if (!strncmp(src, "skip.", 5)) return 0;
    snprintf(dst, cap, "canon.%s", src);
    return 1;
}

TEST(weight_map_checks) {
    be *b = mk();
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    float d[64] = {0};
    int64_t s44[2] = {4, 4}, s4[1] = {4}, sconv[4] = {4, 4, 1, 1};
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "m.lin.weight", ST_F16, 2, s44, d);
    st_writer_add_f32(w, "m.vec", ST_F32, 1, s4, d);
    st_writer_add_f32(w, "m.conv1x1.weight", ST_BF16, 4, sconv, d);
    st_writer_add(w, "m.ints", ST_I32, 1, s4, d);
    st_writer_add_f32(w, "m.skip.x", ST_F32, 1, s4, d);
    st_writer_add_f32(w, "other.x", ST_F32, 1, s4, d);
    REQUIRE(st_writer_save(w, path) == SD_OK);
    st_writer_free(w);
    st_file *f;
    REQUIRE(st_open(path, &f) == SD_OK);
    wmap *m = wmap_new();
    REQUIRE(wmap_add_file(m, f, "m.", drop_prefix_rename, NULL) == SD_OK);
    CHECK_EQ_INT(wmap_count(m), 4);
    CHECK(wmap_has(m, "canon.%s", "vec") && !wmap_has(m, "canon.skip.x") && !wmap_has(m, "other.x"));
    be_weight x;
    CHECK(wmap_linear(b, m, &x, 4, 4, "canon.lin.weight") == SD_OK);
    be_weight_free(b, &x);
    CHECK(wmap_linear(b, m, &x, 4, 4, "canon.conv1x1.weight") == SD_OK); /* 1x1 conv accepted as linear */
    be_weight_free(b, &x);
    CHECK(wmap_linear(b, m, &x, 4, 5, "canon.lin.weight") != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "\"m.lin.weight\" (canon.lin.weight) has shape [4, 4], expected [4, 5]");
    CHECK(wmap_vec(b, m, &x, 4, "canon.missing") != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "missing tensor \"canon.missing\"");
    CHECK(wmap_vec(b, m, &x, 4, "canon.ints") != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "dtype I32");
    char unused[128];
    CHECK_EQ_INT(wmap_unused(m, unused, sizeof unused), 2); /* vec and ints were never loaded successfully */
    /* the same canonical name from two places is an error */
    CHECK(wmap_add_file(m, f, "m.", drop_prefix_rename, NULL) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "both map to");
    wmap_free(m);
    /* virtual entries: shape checks in measure mode, no data */
    m = wmap_new();
    int64_t s[4] = {8, 3, 3, 3};
    REQUIRE(wmap_add_virtual(m, "c.weight", ST_F16, 4, s) == SD_OK);
    be_measure_begin(b);
    CHECK(wmap_load(b, m, &x, BE_W_CONV, 8, 3, 3, 3, "c.weight") == SD_OK);
    CHECK(wmap_load(b, m, &x, BE_W_CONV, 8, 4, 3, 3, "c.weight") != SD_OK);
    be_measure_end(b);
    wmap_free(m);
    st_close(f);
    be_free(b);
}
