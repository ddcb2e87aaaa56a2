/* test_vae_tiling.c — tiled VAE decoding on the golden models (tests/golden/vae): exact row bands must
 * equal the untiled decode, blended tiles must be the ramp-weighted mean of independently decoded tiles,
 * and the automatic plan must fit the memory it reports. */
#include "test.h"
#include "../core/error.h"
#include "../vae/vae.h"
#include "../kernels/cpu/cpu_simd.h"

#include <stdlib.h>

typedef struct model {
    st_file *f;
    wmap *m;
    vae_model *v;
} model;

static void open_model(be *b, model *md, const char *tag) {
    char p[128];
    vae_config c;
    memset(md, 0, sizeof *md);
    md->m = wmap_new();
    if (!strcmp(tag, "b")) { /* LDM names, config inferred (4 groups) */
        REQUIRE(st_open(test_path("golden/vae/b_ldm.safetensors"), &md->f) == SD_OK);
        REQUIRE(vae_add_weights(md->m, md->f, "first_stage_model.", VAE_LAYOUT_AUTO) == SD_OK);
        REQUIRE(vae_config_infer(md->m, &c) == SD_OK);
        c.groups = 4;
    } else {
        snprintf(p, sizeof p, "golden/vae/%s_config.json", tag);
        REQUIRE_MSG(vae_config_from_json(test_path(p), &c) == SD_OK, "%s", sd_last_error());
        snprintf(p, sizeof p, "golden/vae/%s_diffusers.safetensors", tag);
        REQUIRE(st_open(test_path(p), &md->f) == SD_OK);
        REQUIRE(vae_add_weights(md->m, md->f, "", VAE_LAYOUT_AUTO) == SD_OK);
    }
    REQUIRE_MSG(vae_load(b, md->m, &c, VAE_DECODER, &md->v) == SD_OK, "%s", sd_last_error());
}

static void close_model(model *md) {
    vae_free(md->v);
    wmap_free(md->m);
    st_close(md->f);
}

/* A latent with structure (a smooth pattern plus noise), so tiles see different statistics. */
static float *make_latent(int h, int w, int lc, unsigned seed) {
    float *z = malloc(sizeof(float) * h * w * lc);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < lc; k++) {
                seed = seed * 1664525u + 1013904223u;
                float u = (float)(seed >> 8) / 16777216.0f - 0.5f;
                z[((size_t)y * w + x) * lc + k] = 2.0f * u + 1.5f * sinf(0.35f * x + k) * cosf(0.25f * y - 0.5f * k);
            }
    return z;
}

/* max |a-b| in pixel units: the images are [-1, 1], pixels (x/2 + 0.5)·255 */
static double max_px(const float *a, const float *b, size_t n, int *u8max) {
    double m = 0;
    *u8max = 0;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs((double)a[i] - b[i]) * 127.5);
        uint8_t ua, ub;
        vae_image_to_u8(&a[i], 1, &ua);
        vae_image_to_u8(&b[i], 1, &ub);
        if (abs(ua - ub) > *u8max) *u8max = abs(ua - ub);
    }
    return m;
}

/* Decodes the cases whole and in exact bands under the CPU's convolution mode `mode`; with `ref_mode` >= 0 also
 * whole under ref_mode, and checks both against that reference within tol_ref (else the bands against the whole
 * within tol). */
static void bands_vs_whole(int mode, int ref_mode, double tol, double tol_ref) {
    /* the last case has the latent shape of a 1024² SD 1.5 / SDXL decode, in bands of 12 rows */
    static const struct { const char *tag; int h, w, band; } cs[] = {{"a", 20, 28, 3}, {"a", 20, 28, 1}, {"b", 13, 11, 2}, {"c", 17, 24, 5}, {"c", 128, 128, 12}};
    int saved = cpu_conv_mode_set(mode);
    be *b = be_cpu_new(0);
    REQUIRE(b && be_arena_reserve(b, 128u << 20) == SD_OK);
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        model md;
        open_model(b, &md, cs[i].tag);
        const vae_config *c = vae_get_config(md.v);
        int f = vae_factor(md.v), h = cs[i].h, w = cs[i].w;
        size_t ni = (size_t)h * f * w * f * 3;
        float *z = make_latent(h, w, c->latent_channels, 7 + i), *whole = malloc(ni * sizeof(float)), *tiled = malloc(ni * sizeof(float));
        float *ref = malloc(ni * sizeof(float));
        vae_decode_opts off = {VAE_TILING_OFF, 0, 0, 0}, on = {VAE_TILING_ON, 0, cs[i].band, 0};
        REQUIRE_MSG(vae_decode_z(b, md.v, z, 1, h, w, &off, whole) == SD_OK, "%s", sd_last_error());
        REQUIRE_MSG(vae_decode_z(b, md.v, z, 1, h, w, &on, tiled) == SD_OK, "%s", sd_last_error());
        int u8;
        double px = max_px(tiled, whole, ni, &u8);
        test_note("model %s, %dx%d latent, bands of %d latent rows: max diff %.2e px (%.2e in [-1,1]), uint8 max diff %d", cs[i].tag, h, w, cs[i].band,
                  px, px / 127.5, u8);
        if (ref_mode < 0) {
            CHECK_MAXERR(tiled, whole, (long)ni, tol);
            CHECK(u8 <= 1);
        } else {
            cpu_conv_mode_set(ref_mode);
            REQUIRE_MSG(vae_decode_z(b, md.v, z, 1, h, w, &off, ref) == SD_OK, "%s", sd_last_error());
            cpu_conv_mode_set(mode);
            double pw = max_px(whole, ref, ni, &u8), pt = max_px(tiled, ref, ni, &u8);
            test_note("    whole and bands against the reference mode's whole: %.2e and %.2e in [-1,1]", pw / 127.5, pt / 127.5);
            CHECK_MAXERR(whole, ref, (long)ni, tol_ref);
            CHECK_MAXERR(tiled, ref, (long)ni, tol_ref);
            CHECK(u8 <= 1);
        }
        free(z); free(whole); free(tiled); free(ref);
        close_model(&md);
    }
    be_free(b);
    cpu_conv_mode_set(saved);
}

TEST(vae_tiling_exact_bands_match_untiled) {
    /* The band mechanics (halos, whole-image GroupNorm statistics) with the direct convolution, whose rounding is
     * the smallest: exact bands change only the summation order: measured at most 1.25e-6 of the [-1, 1] range
     * (1.6e-4 of an 8-bit level), held to about twice that; the 8-bit picture may differ by a rounding flip. */
    bands_vs_whole(CPU_CONV_DIRECT, -1, 3e-6, 0);
}

TEST(vae_tiling_exact_bands_winograd) {
    /* The default decode takes Winograd where the rule says (cpu_winograd.c): bands and whole then differ by its
     * rounding (a changed summation order upstream changes every rounding after it), so both are held to the
     * direct whole decode instead, within the Winograd decode's own error: measured at most 1.29e-5 of the [-1, 1]
     * range (F(6x6) on the 128x128 latent; 1.6e-3 of an 8-bit level), held to three times that. */
    bands_vs_whole(CPU_CONV_DEFAULT, CPU_CONV_DIRECT, 0, 4e-5);
}

/* The blend rule, written out independently: tiles of T latent pixels at evenly spread starts, linear
 * ramps over each overlap, normalised sum. */
static void starts_of(int n, int T, int O, int *s, int *cnt) {
    if (T >= n) { s[0] = 0; *cnt = 1; return; }
    int k = 1;
    while (T + k * (T - O) < n) k++; /* k + 1 tiles at stride T - O reach the end */
    *cnt = k + 1;
    for (int i = 0; i <= k; i++) s[i] = (int)floor((double)i * (n - T) / k);
}

static double ramp(const int *s, int cnt, int i, int T, int f, int d) {
    double wgt = 1;
    if (i > 0) {
        int ov = (s[i - 1] + T - s[i]) * f;
        if (d < ov) wgt *= (d + 0.5) / ov;
    }
    if (i + 1 < cnt) {
        int ov = (s[i] + T - s[i + 1]) * f;
        if (d >= T * f - ov) wgt *= (T * f - d - 0.5) / ov;
    }
    return wgt;
}

TEST(vae_tiling_blend_is_weighted_mean_of_tiles) {
    be *b = be_cpu_new(0);
    REQUIRE(b && be_arena_reserve(b, 64u << 20) == SD_OK);
    model md;
    open_model(b, &md, "a");
    int h = 20, w = 28, T = 12, O = 4, f = vae_factor(md.v), lc = 4, H = h * f, W = w * f;
    size_t ni = (size_t)H * W * 3;
    float *z = make_latent(h, w, lc, 3), *got = malloc(ni * sizeof(float)), *whole = malloc(ni * sizeof(float));
    vae_decode_opts blend = {VAE_TILING_BLEND, 0, T, O}, off = {VAE_TILING_OFF, 0, 0, 0};
    REQUIRE_MSG(vae_decode_z(b, md.v, z, 1, h, w, &blend, got) == SD_OK, "%s", sd_last_error());
    REQUIRE(vae_decode_z(b, md.v, z, 1, h, w, &off, whole) == SD_OK);
    int ys[8], xs[8], ny, nx;
    starts_of(h, T, O, ys, &ny);
    starts_of(w, T, O, xs, &nx);
    CHECK(ny == 2 && nx == 3);
    double *acc = calloc(ni, sizeof(double)), *wsum = calloc((size_t)H * W, sizeof(double));
    float *zt = malloc(sizeof(float) * T * T * lc), *pt = malloc(sizeof(float) * T * f * T * f * 3);
    for (int iy = 0; iy < ny; iy++)
        for (int ix = 0; ix < nx; ix++) {
            for (int y = 0; y < T; y++) memcpy(zt + (size_t)y * T * lc, z + ((size_t)(ys[iy] + y) * w + xs[ix]) * lc, sizeof(float) * T * lc);
            REQUIRE(vae_decode_z(b, md.v, zt, 1, T, T, &off, pt) == SD_OK);
            for (int y = 0; y < T * f; y++)
                for (int x = 0; x < T * f; x++) {
                    double wt = ramp(ys, ny, iy, T, f, y) * ramp(xs, nx, ix, T, f, x);
                    size_t o = (size_t)(ys[iy] * f + y) * W + xs[ix] * f + x;
                    for (int k = 0; k < 3; k++) acc[o * 3 + k] += wt * pt[((size_t)y * T * f + x) * 3 + k];
                    wsum[o] += wt;
                }
        }
    float *want = malloc(ni * sizeof(float));
    for (size_t i = 0; i < ni; i++) want[i] = (float)(acc[i] / wsum[i / 3]);
    CHECK_MAXERR(got, want, (long)ni, 5e-7); /* the same float sums in another order: measured 2.4e-7 */
    int u8;
    double px = max_px(got, whole, ni, &u8);
    test_note("blended %dx%d tiles (overlap %d) vs untiled on model a (random weights): max diff %.1f px, uint8 max diff %d", T, T, O, px, u8);
    /* one tile covering the latent is the untiled decode */
    vae_decode_opts one = {VAE_TILING_BLEND, 0, 32, 8};
    REQUIRE(vae_decode_z(b, md.v, z, 1, h, w, &one, got) == SD_OK);
    CHECK_MAXERR(got, whole, (long)ni, 0);
    free(z); free(got); free(whole); free(acc); free(wsum); free(zt); free(pt); free(want);
    close_model(&md);
    be_free(b);
}

TEST(vae_tiling_auto_fits_reported_memory) {
    be *b = be_cpu_new(0);
    REQUIRE(b && be_arena_reserve(b, 64u << 20) == SD_OK);
    model md;
    open_model(b, &md, "a");
    int h = 24, w = 20, f = vae_factor(md.v);
    size_t ni = (size_t)h * f * w * f * 3;
    float *z = make_latent(h, w, 4, 11), *whole = malloc(ni * sizeof(float)), *got = malloc(ni * sizeof(float));
    vae_decode_opts off = {VAE_TILING_OFF, 0, 0, 0};
    size_t full = vae_decode_arena_bytes(b, md.v, h, w, &off);
    REQUIRE(vae_decode_z(b, md.v, z, 1, h, w, &off, whole) == SD_OK);
    /* a budget below the untiled need: exact bands, then run in an arena of exactly the reported size */
    vae_decode_opts aut = {VAE_TILING_AUTO, full - 1, 0, 0};
    vae_plan pl;
    REQUIRE_MSG(vae_decode_plan(b, md.v, h, w, &aut, &pl) == SD_OK, "%s", sd_last_error());
    test_note("untiled %zu bytes; with a limit 1 byte lower: mode %d, band %d rows, %zu bytes", full, (int)pl.mode, pl.tile, pl.arena_bytes);
    CHECK(pl.mode == VAE_TILING_ON && pl.arena_bytes <= aut.mem_limit && vae_decode_arena_bytes(b, md.v, h, w, &aut) == pl.arena_bytes);
    be *b2 = be_cpu_new(0);
    REQUIRE(b2 && be_arena_reserve(b2, pl.arena_bytes) == SD_OK);
    model m2;
    open_model(b2, &m2, "a");
    aut.mem_limit = 0; /* vae_decode reads the arena's free space: the same plan */
    REQUIRE_MSG(vae_decode_z(b2, m2.v, z, 1, h, w, &aut, got) == SD_OK, "%s", sd_last_error());
    CHECK_MAXERR(got, whole, (long)ni, 3e-6); /* exact bands, as above: measured 9.5e-7 */
    /* an arena one byte too small for an untiled decode reports exhaustion, not a crash */
    vae_decode_opts forced = {VAE_TILING_OFF, 0, 0, 0};
    CHECK(vae_decode_z(b2, m2.v, z, 1, h, w, &forced, got) == SD_ERR_MEMORY);
    CHECK_STR_CONTAINS(sd_last_error(), "activation memory exhausted");
    close_model(&m2);
    be_free(b2);
    /* ON without a band: the largest band below the latent height that fits the free arena; bad options are refused */
    vae_decode_opts on = {VAE_TILING_ON, 0, 0, 0};
    REQUIRE(vae_decode_plan(b, md.v, h, w, &on, &pl) == SD_OK);
    CHECK(pl.mode == VAE_TILING_ON && pl.tile == 16);
    vae_decode_opts bad = {VAE_TILING_BLEND, 0, 8, 8};
    CHECK(vae_decode_z(b, md.v, z, 1, h, w, &bad, got) == SD_ERR_ARG);
    CHECK(vae_decode_z(b, md.v, z, 1, 0, w, NULL, got) == SD_ERR_ARG);
    free(z); free(whole); free(got);
    close_model(&md);
    be_free(b);
}
