/* server.h — `sd serve`: an HTTP server (libmicrohttpd) speaking AUTOMATIC1111's API, OpenAI's Images API and a web
 * page, over one model in memory and one FIFO queue of generations. cli/cmd_serve.c parses the flags into
 * server_opts and calls server_run. */
#ifndef SERVER_SERVER_H
#define SERVER_SERVER_H

#include <stddef.h>

#include "../../sd.h"

typedef struct server_opts {
    sd_load_params load;        /* -m (model_path; NULL: the first of --models-dir, else the demo model), backend ... */
    const char *host;           /* "127.0.0.1"; another address needs api_auth or api_key */
    int port;                   /* 7860; 0: any free port (printed) */
    const char *models_dir;     /* checkpoints clients may switch among (NULL: only the -m / demo model) */
    const char *lora_dir;       /* LoRA files clients may name */
    const char *api_auth;       /* "USER:PASS" for HTTP Basic auth, or NULL */
    const char *api_key;        /* key for "Authorization: Bearer KEY", or NULL */
    size_t max_body;            /* request bytes (50 MB) */
    int max_side;               /* width and height (2048) */
    int max_steps;              /* steps (150) */
    int max_images;             /* images per request (16) */
    int queue_limit;            /* requests waiting or running (32); more get 503 + Retry-After */
    int timeout;                /* seconds a client may stay silent mid-request (30) */
    int max_connections;        /* open connections (64) */
    int threads;                /* HTTP threads (4) */
    int quiet;                  /* no request log */
    const char *port_file;      /* write the bound port here once listening (tests use --port 0) */
} server_opts;

void server_opts_init(server_opts *o);

/* Runs until SIGTERM or SIGINT: finishes the image in flight, answers the waiting requests 503, exits.
 * Returns the exit status (0, or 1 after printing "error: ..." when it cannot start). */
int server_run(const server_opts *o);

#endif
