/* tiny_model.c — materialises tests/data/tiny-sd/ as a loadable model folder with seeded random weights. */
#include "tiny_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/fileio.h"
#include "random_ckpt.h"
#include "test.h"

static int copy_file(const char *from, const char *to) {
    char *data;
    size_t len;
    if (file_read(from, 1 << 20, &data, &len) != SD_OK) return -1;
    file_writer w;
    int rc = -1;
    if (file_begin(&w, to) == SD_OK) {
        file_write(&w, data, len);
        rc = file_commit(&w) == SD_OK ? 0 : -1;
    }
    free(data);
    return rc;
}

const char *tiny_model_dir(void) {
    static char dir[512];
    const char *cache = getenv("SD_TEST_CACHE") ? getenv("SD_TEST_CACHE") : "build/cache";
    mkdir("build", 0755);
    mkdir(cache, 0755);
    snprintf(dir, sizeof dir, "%s/tiny-sd", cache);
    char done[600];
    snprintf(done, sizeof done, "%s/.complete", dir); /* written last: a half-made folder is made again */
    if (file_exists(done)) return dir;
    static const struct { const char *sub, *weights; } parts[] = {
        {"unet", "diffusion_pytorch_model.safetensors"},
        {"vae", "diffusion_pytorch_model.safetensors"},
        {"text_encoder", "model.safetensors"},
    };
    char from[700], to[700];
    mkdir(dir, 0755);
    snprintf(to, sizeof to, "%s/scheduler", dir);
    mkdir(to, 0755);
    snprintf(to, sizeof to, "%s/model_index.json", dir);
    if (copy_file(test_path("data/tiny-sd/model_index.json"), to) != 0) return NULL;
    snprintf(to, sizeof to, "%s/scheduler/scheduler_config.json", dir);
    if (copy_file(test_path("data/tiny-sd/scheduler/scheduler_config.json"), to) != 0) return NULL;
    for (int i = 0; i < 3; i++) {
        snprintf(to, sizeof to, "%s/%s", dir, parts[i].sub);
        mkdir(to, 0755);
        snprintf(from, sizeof from, "data/tiny-sd/%s/config.json", parts[i].sub);
        snprintf(to, sizeof to, "%s/%s/config.json", dir, parts[i].sub);
        if (copy_file(test_path(from), to) != 0) return NULL;
        snprintf(from, sizeof from, "data/tiny-sd/%s/keys.tsv", parts[i].sub);
        snprintf(to, sizeof to, "%s/%s/%s", dir, parts[i].sub, parts[i].weights);
        if (random_ckpt_write(test_path(from), to, 1000 + (uint64_t)i, ST_F16) != SD_OK) return NULL;
    }
    FILE *fp = fopen(done, "w");
    if (!fp) return NULL;
    fclose(fp);
    return dir;
}
