/* cmd_tokenize.c — `sd tokenize [-m MODEL] [--verbose] TEXT`: how a prompt is cut into 77-token windows. */
#include <stdio.h>
#include <string.h>

#include "../sd.h"
#include "cli.h"

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) verbose = 1;
        else if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: sd tokenize [-m MODEL] [--verbose] TEXT\n"
                   "prints the CLIP token ids of each 77-token window (BOS ... EOS); --verbose adds each token and its weight\n");
            return 0;
        } else if (!text) text = argv[i];
        else { fprintf(stderr, "error: unexpected argument \"%s\"\n", argv[i]); return 1; }
    }
    if (!text) { fprintf(stderr, "error: no text to tokenize (usage: sd tokenize [--verbose] TEXT)\n"); return 1; }
    if (sd_tokenize(model, text, verbose, stdout) != SD_OK) {
        fprintf(stderr, "error: %s\n", sd_last_error());
        return 1;
    }
    return 0;
}
