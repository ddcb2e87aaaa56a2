/* test_batch_e2e.c — `sd batch` in-process on the tiny model: packing consecutive seeds into one call
 * (--batch-size) renders the same pictures as one call per image, each with its own seed; model names in keys
 * are the library's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../cli/cli.h"
#include "../cli/clikit.h"
#include "../sd.h"
#include "load_model.h"
#include "test.h"
#include "tiny_model.h"

static int run_batch(const char *jobs, const char *out, const char *batch_size) {
    const char *model = tiny_model_dir();
    char *argv[] = {"batch", (char *)jobs, "-o", (char *)out, "-m", (char *)model, "--size", "64x64",
                    "--steps", "2", "--batch-size", (char *)batch_size, "-q"};
    return cmd_batch((int)(sizeof argv / sizeof *argv), argv);
}

TEST(batch_packed_calls_match_single_calls) {
    REQUIRE(tiny_model_dir());
    const char *dir = test_tmpdir();
    char jobs[512], a[512], b[512], path[1024];
    snprintf(jobs, sizeof jobs, "%s/jobs.jsonl", dir);
    snprintf(a, sizeof a, "%s/one", dir);
    snprintf(b, sizeof b, "%s/packed", dir);
    FILE *fp = fopen(jobs, "w");
    REQUIRE(fp);
    fputs("{\"prompt\": \"a {red|blue} circle\", \"seeds\": \"10:13\", \"output\": \"{variation}-{seed}\"}\n", fp);
    fclose(fp);
    REQUIRE(run_batch(jobs, a, "1") == 0);
    REQUIRE(run_batch(jobs, b, "3") == 0); /* seeds 10-12 in one call, 13 alone, per variation */

    /* the manifest: how the images were made */
    snprintf(path, sizeof path, "%s/manifest.jsonl", b);
    fp = fopen(path, "r");
    REQUIRE(fp);
    char line[8192];
    int in_call[8] = {0}, n = 0;
    while (fgets(line, sizeof line, fp) && n < 8) {
        cJSON *o = cJSON_Parse(line);
        REQUIRE(o);
        in_call[n++] = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "timings"), "images_in_call")->valueint;
        cJSON_Delete(o);
    }
    fclose(fp);
    CHECK_EQ_INT(n, 8);
    int want_call[8] = {3, 3, 3, 1, 3, 3, 3, 1};
    for (int i = 0; i < 8; i++) CHECK_EQ_INT(in_call[i], want_call[i]);

    /* sd.h promises the same images either way; a wrong seed or prompt would differ everywhere */
    int worst = 0, ndiff = 0;
    for (int v = 0; v < 2; v++)
        for (int s = 10; s <= 13; s++) {
            sd_image x, y;
            snprintf(path, sizeof path, "%s/%d-%d.png", a, v, s);
            REQUIRE(sd_image_load(path, 3, &x) == SD_OK);
            snprintf(path, sizeof path, "%s/%d-%d.png", b, v, s);
            REQUIRE(sd_image_load(path, 3, &y) == SD_OK);
            REQUIRE(x.w == y.w && x.h == y.h);
            for (int k = 0; k < x.w * x.h * 3; k++) {
                int d = abs((int)x.data[k] - (int)y.data[k]);
                if (d > worst) worst = d;
                ndiff += d != 0;
            }
            sd_image_free(&x);
            sd_image_free(&y);
        }
    test_note("packed vs one image per call: %d of %d values differ, by at most %d/255", ndiff, 8 * 64 * 64 * 3, worst);
    CHECK_MSG(worst <= 1, "packed images differ by up to %d/255 from single calls", worst);
}

/* One rule for model names: the name in batch keys and manifests (known before the model loads) is the library's
 * own (sd_model_info.name), for a folder called "sd-1.5" (the CLI once cut it to "sd-1") and with a trailing '/'. */
TEST(batch_model_name_is_the_library_s) {
    char *target = realpath(tiny_model_dir(), NULL);
    REQUIRE(target);
    const char *dir = test_tmpdir();
    const char *names[] = {"sd-1.5", "v2.1.final", "plain"};
    for (int i = 0; i < 3; i++) {
        char link[1024], mine[512];
        snprintf(link, sizeof link, "%s/%s", dir, names[i]);
        REQUIRE(symlink(target, link) == 0);
        sd_ctx *ctx = test_load_model(link);
        clikit_model_name(link, mine, sizeof mine);
        CHECK_MSG(!strcmp(mine, sd_model(ctx)->name), "\"%s\": the CLI says \"%s\", the library \"%s\"", link, mine,
                  sd_model(ctx)->name);
        strcat(link, "/");
        clikit_model_name(link, mine, sizeof mine);
        CHECK_MSG(!strcmp(mine, names[i]), "\"%s\": \"%s\"", link, mine);
        sd_free(ctx);
    }
    free(target);
    /* single files: the extensions the library takes off, and only those */
    const char *files[][2] = {{"m/v1-5-pruned-emaonly.safetensors", "v1-5-pruned-emaonly"}, {"x.sft", "x"},
                              {"dir/sd-1.5.safetensors", "sd-1.5"}, {"model.ckpt", "model.ckpt"}};
    for (int i = 0; i < 4; i++) {
        char mine[512];
        clikit_model_name(files[i][0], mine, sizeof mine);
        CHECK_MSG(!strcmp(mine, files[i][1]), "\"%s\": \"%s\", expected \"%s\"", files[i][0], mine, files[i][1]);
    }
}
