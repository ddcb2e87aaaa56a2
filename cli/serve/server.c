/* server.c — server_run: checks the options, loads the default model, starts the worker and the HTTP daemon, then
 * waits for SIGTERM/SIGINT: new work is refused (503), the image in flight is finished, the answers are sent, exit.
 * A second signal cancels the image in flight too. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "srv.h"

void server_opts_init(server_opts *o) {
    memset(o, 0, sizeof *o);
    sd_load_params_init(&o->load);
    o->host = "127.0.0.1";
    o->port = 7860;
    o->max_body = 50u << 20;
    o->max_side = 2048;
    o->max_steps = 150;
    o->max_images = 16;
    o->queue_limit = 32;
    o->timeout = 30;
    o->max_connections = 64;
    o->threads = 4;
}

static int is_loopback(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (!strcmp(host, "localhost")) return 1;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

static int write_port_file(const char *path, int port) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp) return -1;
    fprintf(fp, "%d\n", port);
    if (fclose(fp) != 0) return -1;
    return rename(tmp, path);
}

static void wait_deadline(struct timespec *ts, double seconds) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)seconds;
    ts->tv_nsec += (long)((seconds - (time_t)seconds) * 1e9);
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

/* The self-pipe of SIGTERM/SIGINT: the handler may run on any thread; write() is async-signal-safe. */
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig) {
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    if (write(sig_pipe[1], &c, 1) < 0) {} /* a full pipe already holds a signal to act on */
    errno = saved;
}

static int signal_pipe_open(void) {
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) return -1;
    return 0;
}

/* The next signal received (SIGTERM, SIGINT), waiting at most timeout_ms (-1: for ever); 0 when none came. */
static int signal_next(int timeout_ms) {
    struct pollfd pf = {sig_pipe[0], POLLIN, 0};
    for (;;) {
        int n = poll(&pf, 1, timeout_ms);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        unsigned char c;
        if (read(sig_pipe[0], &c, 1) == 1) return c;
        if (timeout_ms >= 0) return 0;
    }
}

void srv_init(srv *s, const server_opts *opts) {
    memset(s, 0, sizeof *s);
    s->o = *opts;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->opt_clip_skip = 1;       /* A1111's options as it starts: CLIP_stop_at_last_layers 1, eta_ancestral 1 */
    s->opt_eta_ancestral = 1.0;
}

int server_run(const server_opts *opts) {
    srv *s = calloc(1, sizeof *s);
    if (!s) { fprintf(stderr, "error: out of memory\n"); return 1; }
    srv_init(s, opts);
    const server_opts *o = &s->o;
    int rc = 1;
    struct MHD_Daemon *d = NULL;
    int worker = 0;

    /* SIGTERM/SIGINT: a handler that only writes the signal into a pipe this thread reads (below). Blocking them and
     * sigwait would not do: threads that exist before this code (OpenBLAS starts its pool when the library loads)
     * do not block them, and a signal delivered to one of those would kill the process. */
    if (signal_pipe_open() != 0) {
        fprintf(stderr, "error: cannot set up the signal handlers: %s\n", strerror(errno));
        goto done;
    }
    signal(SIGPIPE, SIG_IGN);

    if (!is_loopback(o->host) && !o->api_auth && !o->api_key) {
        fprintf(stderr, "error: --host %s: refusing to serve beyond this machine without --api-auth USER:PASS or --api-key KEY\n", o->host);
        goto done;
    }
    if (o->api_auth && (!strchr(o->api_auth, ':') || o->api_auth[0] == ':')) {
        fprintf(stderr, "error: --api-auth: give USER:PASS\n");
        goto done;
    }
    if (o->api_key && !o->api_key[0]) {
        fprintf(stderr, "error: --api-key: empty key\n");
        goto done;
    }
    model_list l;
    char err[1024];
    if (models_scan(o->models_dir, o->load.model_path, &l, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    if (!l.n) {
        fprintf(stderr, "error: %s: no models here (.safetensors files or diffusers folders); or give -m MODEL\n", o->models_dir);
        models_free(&l);
        goto done;
    }
    s->def_model = l.e[0];
    models_free(&l);
    if (openapi_build(s) != 0) {
        fprintf(stderr, "error: cli/serve/web/openapi.json: not a valid template\n");
        goto done;
    }

    /* the default model is loaded before listening: a model that does not load stops the server at once */
    sd_load_params lp = o->load;
    lp.model_path = s->def_model.path[0] ? s->def_model.path : NULL;
    sd_ctx *ctx;
    if (sd_load(&lp, &ctx) != SD_OK) {
        fprintf(stderr, "error: %s\n", sd_last_error());
        goto done;
    }
    queue_set_loaded(s, ctx, &s->def_model);

    if (queue_start(s) != 0) {
        fprintf(stderr, "error: cannot start the worker thread\n");
        goto done;
    }
    worker = 1;
    int port;
    if (!(d = http_start(s, err, sizeof err, &port))) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    if (o->port_file && write_port_file(o->port_file, port) != 0) {
        fprintf(stderr, "error: %s: cannot write the port: %s\n", o->port_file, strerror(errno));
        goto done;
    }
    fprintf(stderr, "serve: model %s (%s); listening on http://%s%s%s:%d/ (the web page; APIs under /sdapi/v1 and /v1)\n",
            s->def_model.file, s->loaded_family, strchr(o->host, ':') ? "[" : "", o->host, strchr(o->host, ':') ? "]" : "", port);

    int sig = signal_next(-1);
    fprintf(stderr, "serve: %s: finishing the image in flight, refusing new work\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    queue_shutdown(s, 0);
    /* wait for the worker; a second signal stops the image in flight too */
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int busy = s->running || s->qn;
        pthread_mutex_unlock(&s->mu);
        if (!busy) break;
        if (signal_next(200) > 0) {
            fprintf(stderr, "serve: second signal: stopping the image in flight\n");
            queue_shutdown(s, 1);
        }
    }
    queue_join(s);
    worker = 0;
    /* the answers of the last jobs go out; no new connections; then the daemon stops */
    MHD_socket listener = MHD_quiesce_daemon(d);
    if (listener != MHD_INVALID_SOCKET) close(listener);
    struct timespec until;
    wait_deadline(&until, o->timeout);
    pthread_mutex_lock(&s->mu);
    while (s->active_requests > 0 && pthread_cond_timedwait(&s->idle, &s->mu, &until) != ETIMEDOUT) {}
    pthread_mutex_unlock(&s->mu);
    rc = 0;
    fprintf(stderr, "serve: stopped\n");
done:
    if (worker) {
        queue_shutdown(s, 1);
        queue_join(s);
    }
    if (d) MHD_stop_daemon(d);
    if (s->ctx) sd_free(s->ctx);
    free(s->prog.preview.data);
    free(s->q);
    free(s->openapi);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->idle);
    free(s);
    return rc;
}
