/* test_shapes_classify.c — the demo-model picture classifier (tests/shapes_classify.c) on pictures of the
 * training renderer itself (tests/golden/shapes/, written by tools/shapes.py --golden), whose captions are the
 * truth: every attribute must be right on at least 98% of them, so the end-to-end test can trust it. */
#include "test.h"
#include "shapes_classify.h"

#include "sd.h"

#include <stdlib.h>

/* The renderer's pictures listed in `list` (captions.txt: the base model's five shapes; captions_extra.txt: the
 * cross the demo LoRA teaches): every attribute right on at least 98% of them. */
static void renderer_pictures(const char *list, int min_count) {
    char path[1024];
    snprintf(path, sizeof path, "%s", test_path(list));
    FILE *f = fopen(path, "r");
    REQUIRE_MSG(f != NULL, "cannot open %s", path);
    static const char *names[5] = {"size", "colour", "shape", "background", "position"};
    int n = 0, right[5] = {0};
    char line[512], *name, *caption;
    int rc;
    while ((rc = shapes_list_next(f, line, sizeof line, &name, &caption)) > 0) {
        shapes_scene sc;
        REQUIRE_MSG(shapes_parse_caption(caption, &sc) == 0, "bad caption for %s", name);
        const char *want[5] = {sc.size, sc.colour, sc.shape, sc.background, sc.position};
        char img_path[1024];
        snprintf(img_path, sizeof img_path, "%s/%s", test_path("golden/shapes"), name);
        sd_image im;
        REQUIRE_MSG(sd_image_load(img_path, 3, &im) == SD_OK, "%s", sd_last_error());
        shapes_result r;
        CHECK(shapes_classify(im.data, im.w, im.h, &r) == 0);
        sd_image_free(&im);
        const char *got[5] = {r.size, r.colour, r.shape, r.background, r.position};
        for (int k = 0; k < 5; k++) {
            if (got[k] && strcmp(got[k], want[k]) == 0) right[k]++;
            else test_note("%s: %s is %s, classified %s (corners %d, amplitude %.3f, hole %d)", name, names[k],
                           want[k], got[k] ? got[k] : "(none)", r.corners, r.amplitude, r.hole);
        }
        n++;
    }
    fclose(f);
    REQUIRE_MSG(rc == 0, "bad line in %s: %s", list, line);
    REQUIRE_MSG(n >= min_count, "only %d pictures in %s", n, list);
    for (int k = 0; k < 5; k++) {
        test_note("%s: %s accuracy %.1f%% (%d/%d)", list, names[k], 100.0 * right[k] / n, right[k], n);
        CHECK_MSG(right[k] >= 0.98 * n, "%s accuracy %d/%d under 98%%", names[k], right[k], n);
    }
}

TEST(shapes_classify_renderer_pictures) { renderer_pictures("golden/shapes/captions.txt", 60); }
TEST(shapes_classify_renderer_crosses) { renderer_pictures("golden/shapes/captions_extra.txt", 18); }

/* Hand-made pictures with a known answer, independent of the renderer: a filled square, a disc with a hole, an
 * empty picture; and the colour naming of the palette itself. */
TEST(shapes_classify_drawn_by_hand) {
    enum { W = 128, H = 128 };
    static unsigned char img[W * H * 3];
    for (int i = 0; i < W * H; i++) img[3 * i] = 15, img[3 * i + 1] = 15, img[3 * i + 2] = 15;
    shapes_result r;
    REQUIRE(shapes_classify(img, W, H, &r) == 0);
    CHECK(r.shape == NULL && r.colour == NULL);
    CHECK(r.background && strcmp(r.background, "black") == 0);
    /* a 60×60 yellow square centred at (92, 36): top right, large */
    for (int y = 6; y < 66; y++)
        for (int x = 62; x < 122; x++) img[3 * (y * W + x)] = 240, img[3 * (y * W + x) + 1] = 220, img[3 * (y * W + x) + 2] = 30;
    REQUIRE(shapes_classify(img, W, H, &r) == 0);
    REQUIRE(r.shape != NULL);
    CHECK(strcmp(r.shape, "square") == 0);
    CHECK(strcmp(r.colour, "yellow") == 0);
    CHECK(strcmp(r.position, "top right") == 0);
    CHECK(strcmp(r.size, "large") == 0);
    CHECK_EQ_INT(r.area, 3600);
    CHECK_EQ_INT(r.corners, 4);
    /* a ring: radius 20 disc minus radius 10 disc, red on white, centred at (36, 92): bottom left, small */
    for (int i = 0; i < W * H * 3; i++) img[i] = 245;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float dx = x + 0.5f - 36, dy = y + 0.5f - 92, d2 = dx * dx + dy * dy;
            if (d2 <= 400 && d2 > 100) img[3 * (y * W + x)] = 220, img[3 * (y * W + x) + 1] = 30, img[3 * (y * W + x) + 2] = 30;
        }
    REQUIRE(shapes_classify(img, W, H, &r) == 0);
    REQUIRE(r.shape != NULL);
    CHECK(strcmp(r.shape, "ring") == 0);
    CHECK(strcmp(r.colour, "red") == 0);
    CHECK(strcmp(r.background, "white") == 0);
    CHECK(strcmp(r.position, "bottom left") == 0);
    CHECK(strcmp(r.size, "small") == 0);
    CHECK(r.hole > 250 && r.hole < 380); /* ≈ π·10² = 314 */
    /* pale/dark variants keep their hue's name; greys go by lightness */
    static const struct { float rgb[3]; int fg; const char *want; } cases[] = {
        {{255, 80, 80}, 1, "red"},   {{120, 10, 10}, 1, "red"},     {{200, 110, 30}, 1, "orange"},
        {{60, 120, 255}, 1, "blue"}, {{120, 60, 160}, 1, "purple"}, {{230, 230, 240}, 1, "white"},
        {{90, 90, 90}, 0, "gray"},   {{0, 0, 0}, 0, "black"},       {{40, 80, 200}, 0, "blue"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = shapes_colour_name(cases[i].rgb, cases[i].fg);
        CHECK_MSG(strcmp(got, cases[i].want) == 0, "colour (%g,%g,%g) named %s, expected %s", cases[i].rgb[0],
                  cases[i].rgb[1], cases[i].rgb[2], got, cases[i].want);
    }
    CHECK(shapes_classify(NULL, W, H, &r) == -1);
    shapes_scene sc;
    CHECK(shapes_parse_caption("a large cyan ring on a gray background, bottom right", &sc) == 0);
    CHECK(strcmp(sc.size, "large") == 0 && strcmp(sc.colour, "cyan") == 0 && strcmp(sc.shape, "ring") == 0);
    CHECK(strcmp(sc.background, "gray") == 0 && strcmp(sc.position, "bottom right") == 0);
    CHECK(shapes_parse_caption("a red star", &sc) == -1);
    CHECK(shapes_parse_caption("a small red star on a blue background", &sc) == -1);
    CHECK(shapes_classify(img, 8, 8, &r) == -1);
}

/* The end-to-end prompt list (tests/golden/shapes/e2e_prompts.txt) is well formed: ≥ 24 "seed<TAB>caption"
 * lines of the caption grammar, every shape and foreground colour asked for at least once. */
TEST(shapes_e2e_prompt_list) {
    FILE *f = fopen(test_path("golden/shapes/e2e_prompts.txt"), "r");
    REQUIRE_MSG(f != NULL, "cannot open golden/shapes/e2e_prompts.txt");
    char line[512], seen[512] = "", *seed_s, *caption, *end;
    int n = 0, rc;
    while ((rc = shapes_list_next(f, line, sizeof line, &seed_s, &caption)) > 0) {
        long seed = strtol(seed_s, &end, 10);
        CHECK(end > seed_s && *end == 0 && seed >= 0);
        shapes_scene sc;
        CHECK_MSG(shapes_parse_caption(caption, &sc) == 0, "bad caption: %s", caption);
        if (strlen(seen) + 40 < sizeof seen) strcat(strcat(strcat(strcat(seen, sc.shape), " "), sc.colour), " ");
        n++;
    }
    fclose(f);
    REQUIRE_MSG(rc == 0, "bad line: %s", line);
    CHECK_MSG(n >= 24, "only %d prompts", n);
    static const char *want[] = {"circle", "square", "triangle", "star", "ring", "red", "orange", "yellow",
                                 "green", "cyan", "blue", "purple", "white"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) CHECK_STR_CONTAINS(seen, want[i]);
}
