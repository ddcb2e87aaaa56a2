/* random_model.c — `build/sd-random-model sd15|sdxl`: makes (once) the random-weight full-size f16 checkpoint that
 * make bench uses, under build/cache/ (tests/random_ckpt.c), and prints its path, for make hires-memory. */
#include <stdio.h>
#include <string.h>

#include "../../core/error.h"
#include "../random_ckpt.h"

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "sd15") && strcmp(argv[1], "sdxl"))) {
        fprintf(stderr, "usage: sd-random-model sd15|sdxl   (run from the repository root: it reads tests/data/)\n"
                        "  writes a full-size random-weight f16 checkpoint once (SD 1.5: 2.1 GB, SDXL: 6.9 GB) under\n"
                        "  build/cache/ and prints its path (make bench and make hires-memory use it)\n");
        return 2;
    }
    const char *path = !strcmp(argv[1], "sd15") ? random_ckpt_sd15("tests/data/sd15-ldm-keys.tsv") : random_ckpt_sdxl("tests/data");
    if (!path) {
        fprintf(stderr, "error: %s\n", sd_last_error());
        return 1;
    }
    printf("%s\n", path);
    return 0;
}
