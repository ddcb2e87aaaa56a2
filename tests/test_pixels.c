/* test_pixels.c — core/pixels.c against Pillow and OpenCV (tests/golden/pixels, tools/goldens_pixels.py):
 * resizes with three filters and source boxes, Gaussian blurs, and the overlay composition, level for level. */
#include "test.h"
#include "../core/pixels.h"
#include "../core/safetensors.h"

#include <stdlib.h>

static uint8_t *load_u8(st_file *f, const char *name, int64_t *n) {
    float *v = st_load_f32(f, name, n);
    if (!v) return NULL;
    uint8_t *u = malloc((size_t)*n);
    for (int64_t i = 0; i < *n; i++) u[i] = (uint8_t)v[i];
    free(v);
    return u;
}

static int max_diff(const uint8_t *a, const uint8_t *b, int64_t n) {
    int d = 0;
    for (int64_t i = 0; i < n; i++) d = abs(a[i] - b[i]) > d ? abs(a[i] - b[i]) : d;
    return d;
}

#define W 37
#define H 23

static st_file *open_pixels(void) {
    st_file *f = NULL;
    if (st_open(test_path("golden/pixels/pixels.safetensors"), &f) != SD_OK) test_note("%s", sd_last_error());
    return f;
}

TEST(pixels_resize_matches_pillow) {
    st_file *f = open_pixels();
    REQUIRE(f);
    int64_t n;
    uint8_t *rgb = load_u8(f, "src/rgb", &n), *grey = load_u8(f, "src/grey", &n);
    REQUIRE(rgb && grey);
    const char *names[3] = {"lanczos", "bicubic", "bilinear"};
    px_filter filt[3] = {PX_LANCZOS, PX_BICUBIC, PX_BILINEAR};
    int sizes[4][2] = {{48, 32}, {16, 9}, {37, 40}, {5, 23}}, cases = 0, worst = 0;
    for (int fi = 0; fi < 3; fi++)
        for (int s = 0; s < 4; s++)
            for (int g = 0; g < 2; g++) {
                if (g && fi == 2) continue;
                int w = sizes[s][0], h = sizes[s][1], c = g ? 1 : 3;
                char key[96];
                snprintf(key, sizeof key, "resize/%s/%dx%d%s", names[fi], w, h, g ? "/grey" : "");
                uint8_t *want = load_u8(f, key, &n), *got = malloc((size_t)w * h * c);
                REQUIRE_MSG(want && n == (int64_t)w * h * c, "%s", key);
                REQUIRE(px_resize(g ? grey : rgb, W, H, c, NULL, w, h, filt[fi], got) == SD_OK);
                int d = max_diff(got, want, n);
                CHECK_MSG(d == 0, "%s: off by %d levels", key, d);
                worst = d > worst ? d : worst;
                cases++;
                free(want);
                free(got);
            }
    const char *boxes[4] = {"crop", "top", "bottom", "left"};
    for (int fi = 0; fi < 3; fi++)
        for (int b = 0; b < 4; b++) {
            char key[96];
            snprintf(key, sizeof key, "box/%s/%s/shape", names[fi], boxes[b]);
            float *shape = st_load_f32(f, key, &n);
            REQUIRE(shape && n == 6);
            int w = (int)shape[4], h = (int)shape[5];
            snprintf(key, sizeof key, "box/%s/%s", names[fi], boxes[b]);
            uint8_t *want = load_u8(f, key, &n), *got = malloc((size_t)w * h * 3);
            REQUIRE(want && n == (int64_t)w * h * 3);
            REQUIRE(px_resize(rgb, W, H, 3, shape, w, h, filt[fi], got) == SD_OK);
            int d = max_diff(got, want, n);
            CHECK_MSG(d == 0, "%s: off by %d levels", key, d);
            worst = d > worst ? d : worst;
            cases++;
            free(shape);
            free(want);
            free(got);
        }
    test_note("%d resizes (Lanczos, bicubic, bilinear; up, down, boxes): max difference %d levels", cases, worst);
    free(rgb);
    free(grey);
    st_close(f);
}

TEST(pixels_blurs_match_pillow_and_opencv) {
    st_file *f = open_pixels();
    REQUIRE(f);
    int64_t n, nm;
    uint8_t *rgb = load_u8(f, "src/rgb", &n), *mask = load_u8(f, "src/mask", &nm);
    REQUIRE(rgb && mask && n == W * H * 3 && nm == W * H);
    const char *radii[5] = {"1", "2.5", "4", "9", "33"};
    float rv[5] = {1, 2.5f, 4, 9, 33};
    int worst = 0;
    uint8_t *buf = malloc(W * H * 3);
    for (int i = 0; i < 5; i++)
        for (int rgbmode = 0; rgbmode < 2; rgbmode++) {
            char key[64];
            snprintf(key, sizeof key, "gblur/%s/r%s", rgbmode ? "RGB" : "L", radii[i]);
            int c = rgbmode ? 3 : 1;
            memcpy(buf, rgbmode ? rgb : mask, (size_t)W * H * c);
            REQUIRE(px_gaussian_blur(buf, W, H, c, rv[i]) == SD_OK);
            uint8_t *want = load_u8(f, key, &n);
            REQUIRE(want && n == (int64_t)W * H * c);
            int d = max_diff(buf, want, n);
            CHECK_MSG(d == 0, "%s: off by %d levels", key, d);
            worst = d > worst ? d : worst;
            free(want);
        }
    int cv_worst = 0;
    for (int s = 1; s <= 7; s += 3)
        for (int axis = 0; axis < 2; axis++) {
            char key[64];
            snprintf(key, sizeof key, "cvblur/%s/s%d", axis ? "y" : "x", s);
            int k = 2 * (int)(2.5 * s + 0.5) + 1;
            memcpy(buf, mask, W * H);
            REQUIRE(px_cv_gaussian_blur(buf, W, H, 1, axis ? 1 : k, axis ? k : 1, s) == SD_OK);
            uint8_t *want = load_u8(f, key, &n);
            REQUIRE(want && n == W * H);
            int d = max_diff(buf, want, n);
            CHECK_MSG(d == 0, "%s: off by %d levels", key, d);
            cv_worst = d > cv_worst ? d : cv_worst;
            free(want);
        }
    test_note("Pillow GaussianBlur (L and RGB, radius 1..33): max difference %d levels; OpenCV GaussianBlur: %d", worst, cv_worst);
    free(buf);
    free(rgb);
    free(mask);
    st_close(f);
}

TEST(pixels_overlay_matches_diffusers_apply_overlay) {
    st_file *f = open_pixels();
    REQUIRE(f);
    int64_t n, nm;
    uint8_t *rgb = load_u8(f, "src/rgb", &n), *soft = load_u8(f, "src/soft", &nm), *gen = load_u8(f, "src/gen", &n);
    uint8_t *want = load_u8(f, "overlay", &n);
    REQUIRE(rgb && soft && gen && want && n == W * H * 3 && nm == W * H);
    int d = 0, partial = 0;
    for (int64_t i = 0; i < n; i++) {
        uint8_t m = soft[i / 3];
        partial += m > 0 && m < 255;
        int e = abs(px_overlay(rgb[i], m, gen[i]) - want[i]);
        d = e > d ? e : d;
    }
    test_note("overlay through a soft mask (%d partially masked channel values): max difference %d levels", partial, d);
    CHECK(partial > 30);
    CHECK_EQ_INT(d, 0);
    free(rgb); free(soft); free(gen); free(want);
    st_close(f);
}
