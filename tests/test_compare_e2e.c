/* test_compare_e2e.c — `sd compare` on a tiny model: the grid has one cell per setting, each cell is the very
 * image a separate single render with those settings gives, and the table's RMSE/PSNR are those of that render
 * against a separate reference render (computed here, independently). Also writes the tiny model that
 * tests/batch_test.sh uses (make test runs the unit tests first). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../cli/cli.h"
#include "../sd.h"
#include "test.h"
#include "load_model.h"
#include "tiny_model.h"


static char *slurp(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) { free(buf); buf = NULL; }
    if (buf) buf[n] = 0;
    fclose(fp);
    return buf;
}

enum { S = 64 }; /* image side (8x8 latents): small, so the test takes a second */

static sd_image single(sd_ctx *ctx, const char *prompt, const char *sampler, int steps, uint64_t seed) {
    sd_gen_params gp;
    sd_gen_params_init(&gp);
    gp.prompt = prompt;
    gp.sampler = sampler;
    gp.steps = steps;
    gp.seed = seed;
    gp.width = S;
    gp.height = S;
    sd_result r;
    sd_image im = {0};
    if (sd_generate(ctx, &gp, NULL, NULL, &r) != SD_OK) { test_fail(__FILE__, __LINE__, "%s", sd_last_error()); return im; }
    im = r.images[0];
    r.images[0].data = NULL;
    sd_result_free(&r);
    return im;
}

TEST(compare_end_to_end_matches_single_renders) {
    const char *model = tiny_model_dir();
    REQUIRE_MSG(model, "cannot write the tiny test model");
    const char *dir = test_tmpdir();
    char grid[512], csvp[512], jsonp[512], chartp[512];
    snprintf(grid, sizeof grid, "%s/sub/grid.png", dir);
    snprintf(csvp, sizeof csvp, "%s/sub/grid.csv", dir);
    snprintf(jsonp, sizeof jsonp, "%s/sub/grid.json", dir);
    snprintf(chartp, sizeof chartp, "%s/sub/grid-chart.png", dir);
    const char *prompt = "a large red circle on a blue background";
    char *argv[] = {"compare", "-m", (char *)model, "-p", (char *)prompt, "--samplers", "euler,dpm++2m", "--steps", "2,4",
                    "--reference", "dpm++2m:8", "-s", "7", "--size", "64x64", "--cell-size", "64", "-o", grid, "-q"};
    REQUIRE(cmd_compare((int)(sizeof argv / sizeof *argv), argv) == 0);

    sd_image g;
    REQUIRE(sd_image_load(grid, 3, &g) == SD_OK);
    char *js = slurp(jsonp), *csv = slurp(csvp);
    REQUIRE(js && csv);
    cJSON *root = cJSON_Parse(js);
    REQUIRE(root);
    const cJSON *gj = cJSON_GetObjectItem(root, "grid"), *cells = cJSON_GetObjectItem(root, "cells");
    CHECK_EQ_INT(cJSON_GetObjectItem(gj, "width")->valueint, g.w);
    CHECK_EQ_INT(cJSON_GetObjectItem(gj, "height")->valueint, g.h);
    CHECK_EQ_INT(cJSON_GetObjectItem(gj, "rows")->valueint, 2);
    CHECK_EQ_INT(cJSON_GetObjectItem(gj, "cols")->valueint, 2);
    REQUIRE(cJSON_GetArraySize(cells) == 4);
    sd_image chart;
    CHECK(sd_image_load(chartp, 3, &chart) == SD_OK && chart.w > 0);
    sd_image_free(&chart);

    sd_ctx *ctx = test_load_model(model);
    sd_image ref = single(ctx, prompt, "dpm++2m", 8, 7);
    REQUIRE(ref.data);
    const char *want_sampler[4] = {"euler", "euler", "dpm++2m", "dpm++2m"};
    int want_steps[4] = {2, 4, 2, 4};
    char *line = strchr(csv, '\n'); /* skip the header */
    int last_x = -1, last_y = -1;
    for (int i = 0; i < 4; i++) {
        const cJSON *c = cJSON_GetArrayItem(cells, i);
        CHECK(!strcmp(cJSON_GetObjectItem(c, "sampler")->valuestring, want_sampler[i]));
        CHECK_EQ_INT(cJSON_GetObjectItem(c, "steps")->valueint, want_steps[i]);
        int x = cJSON_GetObjectItem(c, "x")->valueint, y = cJSON_GetObjectItem(c, "y")->valueint;
        int w = cJSON_GetObjectItem(c, "w")->valueint, h = cJSON_GetObjectItem(c, "h")->valueint;
        CHECK(w == S && h == S && x + w <= g.w && y + h <= g.h);
        CHECK(i % 2 == 0 || (x >= last_x + S && y == last_y)); /* columns side by side */
        CHECK(i != 2 || y >= last_y + S);                      /* rows one under the other */
        last_x = x;
        last_y = y;

        sd_image im = single(ctx, prompt, want_sampler[i], want_steps[i], 7);
        REQUIRE(im.data);
        int diff = 0;
        REQUIRE(im.w == S && im.h == S);
        for (int yy = 0; yy < S; yy++) diff += memcmp(g.data + ((size_t)(y + yy) * g.w + x) * 3, im.data + (size_t)yy * S * 3, S * 3) != 0;
        CHECK_MSG(diff == 0, "cell %d: %d rows differ from the single render", i, diff);

        double se = 0;
        for (int k = 0; k < S * S * 3; k++) se += ((double)im.data[k] - ref.data[k]) * ((double)im.data[k] - ref.data[k]);
        double rmse = sqrt(se / (S * S * 3)), psnr = rmse > 0 ? 10 * log10(255.0 * 255.0 * S * S * 3 / se) : INFINITY;
        CHECK_NEAR(cJSON_GetObjectItem(c, "rmse")->valuedouble, rmse, 1e-9 * (1 + rmse));
        const cJSON *pj = cJSON_GetObjectItem(c, "psnr_db");
        if (isfinite(psnr)) CHECK_NEAR(pj->valuedouble, psnr, 1e-9 * psnr);
        else CHECK(cJSON_IsNull(pj));
        CHECK(cJSON_GetObjectItem(c, "seconds")->valuedouble > 0);
        /* the CSV row says the same, to its 6 decimals */
        REQUIRE(line && line[1]);
        char s_name[32], sch[32];
        double cfg, secs, crmse, cpsnr;
        int steps;
        CHECK(sscanf(line + 1, "%31[^,],%31[^,],%lf,%d,%lf,%lf,%lf", s_name, sch, &cfg, &steps, &secs, &crmse, &cpsnr) == 7);
        CHECK(!strcmp(s_name, want_sampler[i]) && steps == want_steps[i]);
        CHECK_NEAR(crmse, rmse, 1e-6);
        if (isfinite(psnr)) CHECK_NEAR(cpsnr, psnr, 1e-6);
        test_note("%s %d steps: RMSE %.3f, PSNR %.2f dB against dpm++2m 8 steps", want_sampler[i], want_steps[i], rmse, psnr);
        line = strchr(line + 1, '\n');
        sd_image_free(&im);
    }
    sd_image_free(&ref);
    sd_image_free(&g);
    sd_free(ctx);
    cJSON_Delete(root);
    free(js);
    free(csv);
}

TEST(compare_rejects_bad_lists_before_loading) {
    const char *dir = test_tmpdir();
    char grid[512];
    snprintf(grid, sizeof grid, "%s/g.png", dir);
    char *a1[] = {"compare", "-p", "x", "--samplers", "euler,nope", "-o", grid, "-q"};
    CHECK(cmd_compare(8, a1) == 1);
    char *a2[] = {"compare", "-p", "x", "--steps", "10,,20", "-o", grid, "-q"};
    CHECK(cmd_compare(8, a2) == 1);
    char *a3[] = {"compare", "-p", "x", "--reference", "dpm++2m", "-o", grid, "-q"};
    CHECK(cmd_compare(8, a3) == 1);
    char *a4[] = {"compare", "--steps", "10", "-o", grid};
    CHECK(cmd_compare(5, a4) == 1);
    CHECK(access(grid, F_OK) != 0);
}

TEST(compare_refused_combination_leaves_a_blank_cell) {
    const char *model = tiny_model_dir();
    REQUIRE(model);
    const char *dir = test_tmpdir();
    char grid[512], csvp[512], jsonp[512];
    snprintf(grid, sizeof grid, "%s/g.png", dir);
    snprintf(csvp, sizeof csvp, "%s/g.csv", dir);
    snprintf(jsonp, sizeof jsonp, "%s/g.json", dir);
    /* ddim walks integer timesteps: the library refuses the karras schedule for it */
    char *argv[] = {"compare", "-m", (char *)model, "-p", "a circle", "--samplers", "ddim", "--schedulers", "discrete,karras",
                    "--steps", "2", "--reference", "ddim:4", "--size", "64x64", "--cell-size", "64", "-o", grid, "-q"};
    REQUIRE(cmd_compare((int)(sizeof argv / sizeof *argv), argv) == 0);
    char *csv = slurp(csvp), *js = slurp(jsonp);
    REQUIRE(csv && js);
    CHECK_STR_CONTAINS(csv, "ddim,karras,7,2,,,\n");
    /* the rendered cell: its seconds (any number: on a loaded machine a cell may take more than one), RMSE and PSNR */
    const char *row = strstr(csv, "ddim,discrete,7,2,"), *end = row ? strchr(row, '\n') : NULL;
    REQUIRE(row && end);
    CHECK(row[18] >= '0' && row[18] <= '9');
    CHECK(!memmem(row, (size_t)(end - row), ",,", 2));
    cJSON *root = cJSON_Parse(js);
    REQUIRE(root);
    const cJSON *cells = cJSON_GetObjectItem(root, "cells"), *c1 = cJSON_GetArrayItem(cells, 1);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(c1, "refused")) && cJSON_IsNull(cJSON_GetObjectItem(c1, "rmse")));
    CHECK(!cJSON_GetObjectItem(cJSON_GetArrayItem(cells, 0), "refused"));
    sd_image g;
    REQUIRE(sd_image_load(grid, 3, &g) == SD_OK);
    int x = cJSON_GetObjectItem(c1, "x")->valueint, y = cJSON_GetObjectItem(c1, "y")->valueint, other = 0;
    for (int yy = 0; yy < S; yy++)
        for (int xx = 0; xx < S; xx++) {
            const uint8_t *p = g.data + ((size_t)(y + yy) * g.w + x + xx) * 3;
            other += !(p[0] == 235 && p[1] == 235 && p[2] == 235);
        }
    CHECK_MSG(other == 0, "the refused cell is not blank (%d pixels)", other);
    sd_image_free(&g);
    cJSON_Delete(root);
    free(csv);
    free(js);
}
