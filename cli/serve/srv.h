/* srv.h — what the server's parts share: the server state, jobs and the queue the worker thread drains. */
#ifndef SERVER_SRV_H
#define SERVER_SRV_H

#include <pthread.h>
#include <stdint.h>

#include "../../sd.h"
#include "models.h"
#include "server.h"

typedef enum { JOB_GENERATE, JOB_LOAD } job_kind;
typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state;

/* One request's work. The HTTP side fills the first part and submits it; the worker fills the results; both hold
 * a reference and the last to let go frees it. Strings of gp point into the job. */
typedef struct job {
    job_kind kind;
    model_entry model;          /* the model it needs (LOAD: the model to make the default) */
    sd_gen_params gp;           /* gp.batch_count images per sd_generate call */
    int iterations;             /* calls, seeds following on (A1111 n_iter; its batch_size is gp.batch_count) */
    char *prompt, *negative;
    sd_image init, mask;
    char task_id[64];
    int fd;                     /* the client's socket: when it hangs up, the job is dropped */
    /* results, written by the worker */
    job_state state;
    sd_status status;
    char error[768];
    int count;
    sd_image *images;
    uint64_t *seeds;
    char **infotext, **json;
    int interrupted;            /* stopped early by /interrupt or shutdown: the images made so far */
    int client_gone;
    char model_name[256], model_hash[16];
    double t_submit, t_start, t_end;
    double t_generate;          /* seconds inside sd_generate */
    /* completion: called by the worker once the job is done, outside every lock */
    void (*on_done)(struct job *j, void *user);
    void *user;
    int refs;
} job;

/* What /sdapi/v1/progress reports of the job running now. */
typedef struct progress {
    int active;
    char task_id[64];
    int job_no, job_count;      /* the sd_generate call of the job, and how many */
    int step, steps;
    double t_start;             /* of the job */
    char timestamp[20];         /* A1111 job_timestamp, YYYYmmddHHMMSS */
    int interrupted;
    sd_image preview;           /* the latest preview (owned), or w == 0 */
    int preview_seq;
} progress;

typedef struct srv {
    server_opts o;
    pthread_mutex_t mu;         /* everything below */
    pthread_cond_t wake;        /* the worker: a job arrived, or stop */
    pthread_cond_t idle;        /* the worker went idle */
    job **q;                    /* FIFO of queued jobs (q[0] runs next) */
    int qn, qcap;
    job *running;
    int draining;               /* SIGTERM: no new work; the queued jobs get 503 */
    int stop;                   /* the worker exits once idle */
    int hard_stop;              /* a second signal: cancel the job in flight too */
    int interrupt;              /* /interrupt: stop the running job */
    progress prog;
    /* the default model (A1111 sd_model_checkpoint) and the one loaded */
    model_entry def_model;
    model_entry loaded;         /* path/name of the model in memory; name[0] == 0: none */
    char loaded_hash[16];
    char loaded_family[32];     /* the loaded model's family and defaults (copies: the worker may free the context) */
    int loaded_w, loaded_h, loaded_steps;
    float loaded_cfg;
    char loaded_sampler[32];
    /* A1111 options that requests use */
    int opt_clip_skip;          /* CLIP_stop_at_last_layers */
    int opt_rng_cpu;            /* randn_source "CPU" */
    double opt_eta_ddim, opt_eta_ancestral;
    double job_seconds;         /* running mean of a job's time, for Retry-After */
    int active_requests;        /* HTTP requests not yet completed (shutdown waits for them) */
    size_t body_bytes;          /* memory held by request bodies being received */
    sd_ctx *ctx;                /* the worker's only */
    pthread_t worker;
    char *openapi;              /* the OpenAPI document, with this server's limits */
    size_t openapi_len;
    int bound_loopback;
} srv;

/* server.c: the state as `sd serve` starts, before any model (s is overwritten; calloc'd or static) */
void srv_init(srv *s, const server_opts *o);

/* queue.c */
job *job_new(job_kind kind);
void job_release(srv *s, job *j);             /* drops one reference (takes s->mu) */
/* Queues j (taking a reference for the worker). Returns 0, or -1 when the queue is full or the server is shutting
 * down (*retry_after: seconds a client should wait). */
int queue_submit(srv *s, job *j, int *retry_after);
int queue_position(srv *s, const char *task_id);  /* 0-based among the waiting, -1 if not waiting (takes s->mu) */
int queue_start(srv *s);                      /* starts the worker thread: 0 or -1 */
void queue_shutdown(srv *s, int hard);        /* no new work; queued jobs end with SD_ERR_CANCELLED */
void queue_join(srv *s);                      /* waits for the worker to finish and exit */
/* Makes ctx, the model m, the one in memory (takes s->mu). */
void queue_set_loaded(srv *s, sd_ctx *ctx, const model_entry *m);


/* openapi.c */
int openapi_build(srv *s);

#endif
