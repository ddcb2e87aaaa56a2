/* main.c — the `sd` command: dispatches to generate (default), info, tokenize, batch, compare and serve. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../sd.h"
#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "sd %s — Stable Diffusion in C\n"
            "\n"
            "usage: sd [generate] -p PROMPT [options]   render images (see `sd generate --help`)\n"
            "       sd info PATH...                      describe a model, a .safetensors file or an image\n"
            "       sd tokenize [-m MODEL] [--verbose] TEXT  show how a prompt is cut into CLIP tokens\n"
            "       sd batch JOBS [-o DIR] [options]     render a job file (resumable, shardable; sd batch --help)\n"
            "       sd batch merge DIR [JOBS] [options]  check a sharded run's images, write one manifest\n"
            "       sd compare -p PROMPT --samplers ...  sampler/scheduler/steps grid with timings and errors\n"
            "       sd serve [-m MODEL] [--port 7860]    HTTP server: AUTOMATIC1111 and OpenAI APIs, a web page (sd serve --help)\n"
            "       sd --version\n",
            SD_VERSION);
}

/* cJSON's allocations (job files, manifests, tables: hundreds of calls) end the program with one clear line when
 * memory runs out, instead of a NULL checked at each call or, worse, a half-built manifest line written to disk.
 * Temp files left behind are removed by the next run into the same outputs. */
static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fputs("error: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

int main(int argc, char **argv) {
    cJSON_Hooks hooks = {xmalloc, free};
    cJSON_InitHooks(&hooks);
    if (argc < 2) { usage(stderr); return 1; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) { printf("sd %s\n", SD_VERSION); return 0; }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) { usage(stdout); return 0; }
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "batch")) return cmd_batch(argc - 1, argv + 1);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 1, argv + 1);
    if (cmd[0] == '-') return cmd_generate(argc, argv); /* `sd -p ...` */
    fprintf(stderr, "error: unknown command \"%s\" (try sd --help)\n", cmd);
    return 1;
}
