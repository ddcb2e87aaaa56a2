/* test_image_decode.c — the image decoders against Pillow: every PNG variant (1..16-bit, grey, alpha, palette,
 * interlaced), JPEG (4:2:0, 4:4:4, progressive, grey, CMYK), WebP (lossless, lossy, alpha) and BMP, as RGB and as
 * grey, compared pixel for pixel with tests/golden/images/expected.safetensors (tools/goldens_images.py). */
#include "test.h"
#include "../core/error.h"
#include "../core/image.h"
#include "../core/safetensors.h"

#include <stdlib.h>

/* Largest |got - want| over n bytes, and where. */
static int max_diff(const uint8_t *got, const uint8_t *want, size_t n, size_t *at) {
    int worst = 0;
    *at = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)got[i] - (int)want[i]);
        if (d > worst) { worst = d; *at = i; }
    }
    return worst;
}

TEST(image_decoders_match_pillow) {
    st_file *f;
    REQUIRE_MSG(st_open(test_path("golden/images/expected.safetensors"), &f) == SD_OK, "%s", sd_last_error());
    static const char *const exts[] = {"png", "jpg", "webp", "bmp"};
    int images = 0;
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        size_t nl = strlen(t->name);
        if (nl < 5 || strcmp(t->name + nl - 4, ".rgb")) continue;
        char name[128], key[160], path[300];
        snprintf(name, sizeof name, "%.*s", (int)(nl - 4), t->name);
        const char *file = NULL;
        for (size_t e = 0; e < sizeof exts / sizeof *exts && !file; e++) {
            snprintf(key, sizeof key, "golden/images/%s.%s", name, exts[e]);
            snprintf(path, sizeof path, "%s", test_path(key));
            FILE *fp = fopen(path, "rb");
            if (fp) { fclose(fp); file = path; }
        }
        REQUIRE_MSG(file, "%s: no image file", name);
        snprintf(key, sizeof key, "%s.grey", name);
        const st_tensor *g = st_find(f, key);
        REQUIRE_MSG(g && t->ndim == 3 && t->dtype == ST_U8 && g->dtype == ST_U8, "%s: golden tensors", name);
        /* Lossless formats must match exactly. The lossy ones too: Pillow's bundled libjpeg-turbo / libwebp and the
         * system's run the same integer decoders (islow IDCT, fancy upsampling); measured 0 here. */
        for (int ch = 1; ch <= 3; ch += 2) {
            sd_image img;
            REQUIRE_MSG(sd_image_load(file, ch, &img) == SD_OK, "%s: %s", name, sd_last_error());
            const st_tensor *want = ch == 3 ? t : g;
            CHECK_MSG(img.w == want->shape[1] && img.h == want->shape[0] && img.c == ch, "%s: %dx%dx%d, expected %lldx%lldx%d", name,
                      img.w, img.h, img.c, (long long)want->shape[1], (long long)want->shape[0], ch);
            if (img.w == want->shape[1] && img.h == want->shape[0]) {
                size_t at, n = (size_t)img.w * img.h * ch;
                int d = max_diff(img.data, want->data, n, &at);
                CHECK_MSG(d == 0, "%s as %s: max diff %d at byte %zu (got %d, want %d)", name, ch == 3 ? "RGB" : "grey", d, at,
                          img.data[at], ((const uint8_t *)want->data)[at]);
            }
            sd_image_free(&img);
        }
        images++;
    }
    CHECK_MSG(images >= 22, "only %d golden images", images);
    st_close(f);
}

/* Truncations of every golden file are refused cleanly (or, for a cut inside trailing bytes, decode in full). */
TEST(image_decoders_refuse_truncated_files) {
    static const char *const files[] = {"png_rgb8.png", "png_interlaced.png", "jpeg_420.jpg", "jpeg_progressive.jpg",
                                        "webp_lossy.webp", "webp_lossless.webp", "bmp_rgb24.bmp", "bmp_palette8.bmp"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "golden/images/%s", files[i]);
        FILE *fp = fopen(test_path(rel), "rb");
        REQUIRE(fp);
        uint8_t buf[4096];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        int refused = 0;
        for (size_t cut = 0; cut < n; cut++) {
            sd_image img;
            sd_status st = image_decode(files[i], buf, cut, 3, &img);
            if (st != SD_OK) {
                refused++;
                CHECK_MSG(img.data == NULL, "%s cut at %zu: data left on failure", files[i], cut);
                CHECK_MSG(!strncmp(sd_last_error(), files[i], strlen(files[i])), "%s cut at %zu: \"%s\"", files[i], cut, sd_last_error());
            }
            sd_image_free(&img);
        }
        CHECK_MSG(refused >= (int)n - 16, "%s: only %d of %zu truncations refused", files[i], refused, n);
    }
}

TEST(image_formats_refused_by_name) {
    static const struct { const char *bytes; size_t len; const char *word; } cs[] = {
        {"GIF89a\x01\x00\x01\x00", 10, "GIF images are not supported"},
        {"P5\n1 1\n255\n\x00", 12, "PNM"},
        {"8BPS\x00\x01", 6, "Photoshop"},
        {"II*\x00\x08\x00\x00\x00", 8, "TIFF"},
        {"\x00\x00\x00\x1c" "ftypavif", 12, "AVIF"},
        {"hello, world", 12, "not a readable image"},
        {"", 0, "not a readable image"},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        sd_image img;
        CHECK_MSG(image_decode("x.img", (const uint8_t *)cs[i].bytes, cs[i].len, 3, &img) != SD_OK, "case %zu accepted", i);
        CHECK_STR_CONTAINS(sd_last_error(), cs[i].word);
        CHECK_STR_CONTAINS(sd_last_error(), "x.img");
    }
    /* BMP headers checked before stb_image sees them */
    static const struct { int32_t w, h; uint16_t bpp; uint32_t comp; const char *word; } bmp[] = {
        {16384, 16384, 24, 0, "truncated BMP"}, /* 1 GB of pixels promised in 54 bytes: refused before stb allocates */
        {1, INT32_MIN, 24, 0, "not supported"}, /* stb would take abs(INT_MIN) */
        {1, 1, 8, 1, "compressed"},             /* RLE */
        {1, 1, 7, 0, "7 bits per pixel"},
        {20000, 1, 24, 0, "not supported"},
    };
    for (size_t i = 0; i < sizeof bmp / sizeof *bmp; i++) {
        uint8_t h[54] = {'B', 'M', [10] = 54, [14] = 40, [26] = 1};
        for (int k = 0; k < 4; k++) {
            h[18 + k] = (uint8_t)((uint32_t)bmp[i].w >> (8 * k));
            h[22 + k] = (uint8_t)((uint32_t)bmp[i].h >> (8 * k));
            h[30 + k] = (uint8_t)(bmp[i].comp >> (8 * k));
        }
        h[28] = (uint8_t)bmp[i].bpp;
        sd_image img;
        CHECK_MSG(image_decode("x.bmp", h, sizeof h, 3, &img) != SD_OK, "BMP case %zu accepted", i);
        CHECK_STR_CONTAINS(sd_last_error(), bmp[i].word);
    }
}
