/* cmd_serve.c — `sd serve`: the flags of the HTTP server (cli/serve/), then server_run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "serve/server.h"
#include "cli.h"
#include "clikit.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sd serve [-m MODEL] [--host 127.0.0.1] [--port 7860] [options]\n"
            "\n"
            "An HTTP server over one model in memory: AUTOMATIC1111's API (/sdapi/v1/txt2img, img2img, progress,\n"
            "interrupt, samplers, schedulers, sd-models, loras, options), OpenAI's Images API (/v1/images/generations),\n"
            "a web page at / and its OpenAPI description at /openapi.json. Requests wait their turn in one queue.\n"
            "SIGTERM or Ctrl-C finishes the image in flight, answers the waiting requests 503 and exits.\n"
            "\n"
            "  -m, --model PATH           the model served first (default: the first of --models-dir, else the demo model)\n"
            "      --models-dir DIR       .safetensors files and diffusers folders clients may switch among (by name)\n"
            "      --lora-model-dir DIR   LoRA files (NAME.safetensors) prompts may name as <lora:NAME:W>\n"
            "      --vae PATH             replace the model's VAE\n"
            "      --backend NAME         auto, cpu or cuda\n"
            "  -t, --threads N            CPU threads, 0..4096 (0: all cores)\n"
            "      --prediction P         auto, eps or v\n"
            "      --host ADDR            address to listen on (default 127.0.0.1); any other needs --api-auth or --api-key\n"
            "      --port N               port (default 7860; 0: any free port)\n"
            "      --port-file PATH       write the port there once listening\n"
            "      --api-auth USER:PASS   HTTP Basic auth on every API route (or $SD_API_AUTH, which ps does not show)\n"
            "      --api-key KEY          accept \"Authorization: Bearer KEY\" (or $SD_API_KEY)\n"
            "      --max-body MB          largest request body in MiB, 1..4096 (default 50)\n"
            "      --max-size N           largest width and height, 8..8192 (default 2048)\n"
            "      --max-steps N          most steps, 1..1000 (default 150)\n"
            "      --max-images N         most images a request, 1..1000 (default 16)\n"
            "      --queue N              requests waiting or running, 1..100000 (default 32); more get 503 + Retry-After\n"
            "      --timeout S            seconds a client may stay silent mid-request, 1..3600 (default 30)\n"
            "      --max-connections N    open connections, 1..10000 (default 64)\n"
            "      --http-threads N       threads answering HTTP, 1..64 (default 4)\n"
            "  -q, --quiet                no request log\n"
            "  -v, --verbose              model loading details\n");
}

int cmd_serve(int argc, char **argv) {
    server_opts o;
    server_opts_init(&o);
    o.api_auth = getenv("SD_API_AUTH");
    o.api_key = getenv("SD_API_KEY");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { o.quiet = 1; continue; }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { o.load.verbose = 1; continue; }
        if ((v = clikit_value(argc, argv, &i, "-m", "--model"))) {
            if (!*v || clikit_input_path(v, 1) != 0) { if (!*v) fprintf(stderr, "error: --model: empty path\n"); return 1; }
            o.load.model_path = v;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--vae"))) {
            if (!*v || clikit_input_path(v, 0) != 0) { if (!*v) fprintf(stderr, "error: --vae: empty path\n"); return 1; }
            o.load.vae_path = v;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--backend"))) {
            if (clikit_backend(v, &o.load.backend) != 0) return 1;
        } else if ((v = clikit_value(argc, argv, &i, "-t", "--threads"))) {
            if (clikit_int(v, 0, 4096, &o.load.threads, "--threads") != 0) return 1;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--prediction"))) {
            if (strcmp(v, "auto") && strcmp(v, "eps") && strcmp(v, "v")) {
                fprintf(stderr, "error: --prediction \"%s\" is not auto, eps or v\n", v);
                return 1;
            }
            o.load.prediction = v;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--models-dir"))) {
            o.models_dir = v;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--lora-model-dir"))) {
            o.lora_dir = v;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--host"))) {
            o.host = v;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--port"))) {
            if (clikit_int(v, 0, 65535, &o.port, "--port") != 0) return 1;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--port-file"))) {
            o.port_file = v;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--api-auth"))) {
            o.api_auth = v;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--api-key"))) {
            o.api_key = v;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--max-body"))) {
            if (clikit_int(v, 1, 4096, &n, "--max-body") != 0) return 1;
            o.max_body = (size_t)n << 20;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--max-size"))) {
            if (clikit_int(v, 8, 8192, &o.max_side, "--max-size") != 0) return 1;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--max-steps"))) {
            if (clikit_int(v, 1, 1000, &o.max_steps, "--max-steps") != 0) return 1;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--max-images"))) {
            if (clikit_int(v, 1, 1000, &o.max_images, "--max-images") != 0) return 1;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--queue"))) {
            if (clikit_int(v, 1, 100000, &o.queue_limit, "--queue") != 0) return 1;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--timeout"))) {
            if (clikit_int(v, 1, 3600, &o.timeout, "--timeout") != 0) return 1;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--max-connections"))) {
            if (clikit_int(v, 1, 10000, &o.max_connections, "--max-connections") != 0) return 1;
        } else if ((v = clikit_value(argc, argv, &i, NULL, "--http-threads"))) {
            if (clikit_int(v, 1, 64, &o.threads, "--http-threads") != 0) return 1;
        } else if (clikit_failed()) {
            return 1;
        } else {
            fprintf(stderr, "error: %s \"%s\" (try sd serve --help)\n", a[0] == '-' ? "unknown option" : "unexpected argument", a);
            return 1;
        }
    }
    if (o.models_dir && clikit_input_path(o.models_dir, 1) != 0) return 1;
    /* the server answers out-of-memory per request; the CLI's cJSON hooks would end the process instead */
    cJSON_InitHooks(NULL);
    return server_run(&o);
}
