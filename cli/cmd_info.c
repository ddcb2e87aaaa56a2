/* cmd_info.c — `sd info PATH...`: describe models, safetensors files and generated PNGs. */
#include <stdio.h>
#include <string.h>

#include "../sd.h"
#include "cli.h"

int cmd_info(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: sd info PATH...   (model file or folder, .safetensors, or .png)\n");
        return argc < 2 ? 1 : 0;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        if (sd_describe(argv[i], stdout) != SD_OK) {
            fprintf(stderr, "error: %s\n", sd_last_error());
            rc = 1;
        }
    }
    return rc;
}
