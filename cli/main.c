/* main.c — the `sd` command (placeholder until the pipeline lands). */
#include "../sd.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) {
        printf("sd %s\n", SD_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: sd --version\n");
    return 1;
}
