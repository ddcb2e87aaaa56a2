/* queue.c — the FIFO of jobs and the one worker thread that owns the model: it loads the model a job needs
 * (one model in memory), runs its sd_generate calls, keeps /progress up to date, and stops early when asked
 * (/interrupt, a client that hung up, a shutdown). */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srv.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

job *job_new(job_kind kind) {
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->kind = kind;
    j->fd = -1;
    j->refs = 1;
    j->iterations = 1;
    sd_gen_params_init(&j->gp);
    return j;
}

static void job_free(job *j) {
    for (int i = 0; i < j->count; i++) {
        free(j->images[i].data);
        free(j->infotext[i]);
        free(j->json[i]);
    }
    free(j->images);
    free(j->seeds);
    free(j->infotext);
    free(j->json);
    free(j->prompt);
    free(j->negative);
    sd_image_free(&j->init);
    sd_image_free(&j->mask);
    free(j);
}

void job_release(srv *s, job *j) {
    if (!j) return;
    pthread_mutex_lock(&s->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (last) job_free(j);
}

/* Seconds until a new request would start: the queue ahead of it at the mean job time. */
static int retry_after_locked(srv *s) {
    double per = s->job_seconds > 0 ? s->job_seconds : 5;
    double t = per * (s->qn + (s->running != NULL));
    return t < 1 ? 1 : t > 3600 ? 3600 : (int)(t + 0.999);
}

int queue_submit(srv *s, job *j, int *retry_after) {
    pthread_mutex_lock(&s->mu);
    int busy = s->qn + (s->running != NULL);
    if (s->draining || busy >= s->o.queue_limit) {
        *retry_after = s->draining ? 30 : retry_after_locked(s);
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    if (s->qn == s->qcap) {
        int cap = s->qcap ? 2 * s->qcap : 16;
        job **g = realloc(s->q, (size_t)cap * sizeof *g);
        if (!g) {
            pthread_mutex_unlock(&s->mu);
            *retry_after = 5;
            return -1;
        }
        s->q = g;
        s->qcap = cap;
    }
    j->refs++;
    j->state = JOB_QUEUED;
    j->t_submit = now_s();
    s->q[s->qn++] = j;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int queue_position(srv *s, const char *task_id) {
    int pos = -1;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->qn && pos < 0; i++)
        if (task_id[0] && !strcmp(s->q[i]->task_id, task_id)) pos = i;
    pthread_mutex_unlock(&s->mu);
    return pos;
}

/* 1 when the client closed its end of the connection (a hang-up, not more data). */
static int client_gone(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void finish(srv *s, job *j) {
    pthread_mutex_lock(&s->mu);
    j->state = JOB_DONE;
    j->t_end = now_s();
    pthread_mutex_unlock(&s->mu);
    if (j->on_done) j->on_done(j, j->user);
    job_release(s, j);
}

/* ---- the worker ---- */

typedef struct run_ctx {
    srv *s;
    job *j;
} run_ctx;

static int on_progress(void *user, const sd_progress *p) {
    run_ctx *rc = user;
    srv *s = rc->s;
    job *j = rc->j;
    int gone = client_gone(j->fd);
    sd_image pv = {0};
    if (p->preview && (pv.data = malloc((size_t)p->preview->w * p->preview->h * p->preview->c))) { /* valid during the call only */
        memcpy(pv.data, p->preview->data, (size_t)p->preview->w * p->preview->h * p->preview->c);
        pv.w = p->preview->w;
        pv.h = p->preview->h;
        pv.c = p->preview->c;
    }
    pthread_mutex_lock(&s->mu);
    if (gone) j->client_gone = 1;
    if (!strcmp(p->stage, "sample")) {
        s->prog.step = p->step;
        s->prog.steps = p->steps;
    }
    if (pv.data) {
        free(s->prog.preview.data);
        s->prog.preview = pv;
        s->prog.preview_seq++;
    }
    int cancel = s->interrupt || s->hard_stop || j->client_gone;
    pthread_mutex_unlock(&s->mu);
    return cancel;
}

static void fail(job *j, sd_status st, const char *msg) {
    j->status = st;
    snprintf(j->error, sizeof j->error, "%s", msg && *msg ? msg : "failed");
}

/* Loads the job's model unless it is the one in memory (one model at a time: the old one goes first). */
static int ensure_model(srv *s, job *j) {
    if (s->ctx && !strcmp(s->loaded.path, j->model.path) && !strcmp(s->loaded.name, j->model.name)) return 0;
    if (s->ctx) {
        sd_free(s->ctx);
        s->ctx = NULL;
        pthread_mutex_lock(&s->mu);
        s->loaded.name[0] = 0;
        s->loaded_hash[0] = 0;
        pthread_mutex_unlock(&s->mu);
    }
    sd_load_params lp = s->o.load;
    lp.model_path = j->model.path[0] ? j->model.path : NULL;
    if (!s->o.quiet) fprintf(stderr, "serve: loading model %s\n", j->model.file);
    sd_ctx *ctx;
    if (sd_load(&lp, &ctx) != SD_OK) {
        fail(j, SD_ERR_MODEL, sd_last_error());
        return -1;
    }
    queue_set_loaded(s, ctx, &j->model);
    return 0;
}

void queue_set_loaded(srv *s, sd_ctx *ctx, const model_entry *m) {
    const sd_model_info *mi = sd_model(ctx);
    const char *a = sd_sampler_a1111(mi->default_sampler);
    const char *hash = sd_model_hash(ctx); /* A1111 shows it once a model is loaded (and it goes in every infotext) */
    pthread_mutex_lock(&s->mu);
    snprintf(s->loaded_hash, sizeof s->loaded_hash, "%s", hash ? hash : "");
    s->ctx = ctx;
    s->loaded = *m;
    snprintf(s->loaded_family, sizeof s->loaded_family, "%s", mi->family);
    snprintf(s->loaded_sampler, sizeof s->loaded_sampler, "%s", a ? a : mi->default_sampler);
    s->loaded_w = mi->default_width;
    s->loaded_h = mi->default_height;
    s->loaded_steps = mi->default_steps;
    s->loaded_cfg = mi->default_cfg;
    pthread_mutex_unlock(&s->mu);
}

/* Moves the images of r onto the end of j's results. */
static int take_images(job *j, sd_result *r) {
    int n = j->count + r->count;
    sd_image *im = realloc(j->images, (size_t)n * sizeof *im);
    if (im) j->images = im;
    uint64_t *se = im ? realloc(j->seeds, (size_t)n * sizeof *se) : NULL;
    if (se) j->seeds = se;
    char **it = se ? realloc(j->infotext, (size_t)n * sizeof *it) : NULL;
    if (it) j->infotext = it;
    char **js = it ? realloc(j->json, (size_t)n * sizeof *js) : NULL;
    if (js) j->json = js;
    if (!js) return -1;
    for (int i = 0; i < r->count; i++) {
        j->images[j->count] = r->images[i];
        j->seeds[j->count] = r->seeds[i];
        j->infotext[j->count] = r->infotext[i];
        j->json[j->count] = r->json[i];
        r->images[i].data = NULL;
        r->infotext[i] = r->json[i] = NULL;
        j->count++;
    }
    return 0;
}

static void run_generate(srv *s, job *j) {
    if (ensure_model(s, j) != 0) return;
    snprintf(j->model_name, sizeof j->model_name, "%s", sd_model(s->ctx)->name);
    /* the model's defaults count against this server's limits too (OpenAI's size "auto", no steps given) */
    const sd_model_info *mi = sd_model(s->ctx);
    int w = j->gp.width ? j->gp.width : mi->default_width, h = j->gp.height ? j->gp.height : mi->default_height;
    int steps = j->gp.steps ? j->gp.steps : mi->default_steps;
    char why[200] = "";
    if (w > s->o.max_side || h > s->o.max_side)
        snprintf(why, sizeof why, "size %dx%d (the model's default) is over this server's limit of %d", w, h, s->o.max_side);
    else if (steps > s->o.max_steps)
        snprintf(why, sizeof why, "steps %d (the model's default) is over this server's limit of %d", steps, s->o.max_steps);
    if (why[0]) {
        fail(j, SD_ERR_ARG, why);
        return;
    }
    /* /progress's current_image: the library's latent2rgb preview (the clean-image estimate, its factors per family) */
    if (!j->gp.preview_method) {
        j->gp.preview_method = "latent2rgb";
        j->gp.preview_interval = 1;
    }
    if (sd_check_params(s->ctx, &j->gp) != SD_OK) {
        fail(j, SD_ERR_ARG, sd_last_error());
        return;
    }
    run_ctx rc = {s, j};
    uint64_t seed0 = j->gp.seed, var0 = j->gp.variation_seed;
    int batch = j->gp.batch_count, calls = j->iterations;
    /* A1111 with a variation strength keeps the seed for every image and counts the variation seed up (all_seeds
     * seed + 0, all_subseeds subseed + i), through batch_size and n_iter alike; the library's batch counts the seed
     * up under one variation seed instead, so each image is a call of its own */
    int per_image = j->gp.variation_strength > 0;
    if (per_image) {
        calls = j->iterations * batch;
        j->gp.batch_count = 1;
        if (j->gp.batch_size > 1) j->gp.batch_size = 1;
        pthread_mutex_lock(&s->mu);
        s->prog.job_count = calls;
        pthread_mutex_unlock(&s->mu);
    }
    for (int it = 0; it < calls; it++) {
        pthread_mutex_lock(&s->mu);
        s->prog.job_no = it;
        s->prog.step = 0;
        int stop = s->draining && it > 0; /* SIGTERM: the images in flight are finished, no more begun */
        pthread_mutex_unlock(&s->mu);
        if (stop) { j->interrupted = 1; break; }
        j->gp.seed = per_image ? seed0 : seed0 + (uint64_t)it * (uint64_t)batch;
        if (per_image) j->gp.variation_seed = var0 + (uint64_t)it;
        sd_result r = {0};
        double t0 = now_s();
        sd_status st = sd_generate(s->ctx, &j->gp, on_progress, &rc, &r);
        j->t_generate += now_s() - t0;
        if (st == SD_ERR_CANCELLED) {
            sd_result_free(&r);
            j->interrupted = 1;
            break;
        }
        if (st != SD_OK) {
            fail(j, st, sd_last_error());
            sd_result_free(&r);
            break;
        }
        int bad = take_images(j, &r);
        sd_result_free(&r);
        if (bad) { fail(j, SD_ERR_MEMORY, "out of memory for the images"); break; }
    }
    j->gp.seed = seed0;
    j->gp.variation_seed = var0;
    j->gp.batch_count = batch; /* the response's batch_size */
    const char *hash = sd_model_hash(s->ctx);
    snprintf(j->model_hash, sizeof j->model_hash, "%s", hash ? hash : "");
    pthread_mutex_lock(&s->mu);
    snprintf(s->loaded_hash, sizeof s->loaded_hash, "%s", j->model_hash);
    if (j->client_gone && !j->status) fail(j, SD_ERR_CANCELLED, "the client hung up");
    pthread_mutex_unlock(&s->mu);
}

/* A1111's model switch: the new default once it is loaded (requests queued before it keep the model they got). */
static void run_load(srv *s, job *j) {
    if (ensure_model(s, j) != 0) return;
    pthread_mutex_lock(&s->mu);
    s->def_model = j->model;
    pthread_mutex_unlock(&s->mu);
}

static void *worker_main(void *arg) {
    srv *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->qn && !s->stop) pthread_cond_wait(&s->wake, &s->mu);
        if (!s->qn) break;
        job *j = s->q[0];
        memmove(s->q, s->q + 1, (size_t)(s->qn - 1) * sizeof *s->q);
        s->qn--;
        if (s->draining) { /* shutting down: what waits is answered, not begun */
            pthread_mutex_unlock(&s->mu);
            fail(j, SD_ERR_CANCELLED, "the server is shutting down");
            finish(s, j);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        s->running = j;
        s->interrupt = 0;
        j->state = JOB_RUNNING;
        j->t_start = now_s();
        free(s->prog.preview.data);
        memset(&s->prog, 0, sizeof s->prog);
        s->prog.active = j->kind == JOB_GENERATE;
        s->prog.job_count = j->iterations;
        s->prog.t_start = j->t_start;
        snprintf(s->prog.task_id, sizeof s->prog.task_id, "%s", j->task_id);
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(s->prog.timestamp, sizeof s->prog.timestamp, "%Y%m%d%H%M%S", &tm);
        pthread_mutex_unlock(&s->mu);

        if (client_gone(j->fd)) {
            j->client_gone = 1;
            fail(j, SD_ERR_CANCELLED, "the client hung up");
        } else if (j->kind == JOB_LOAD) {
            run_load(s, j);
        } else {
            run_generate(s, j);
        }

        pthread_mutex_lock(&s->mu);
        double took = now_s() - j->t_start;
        if (j->kind == JOB_GENERATE && !j->status)
            s->job_seconds = s->job_seconds > 0 ? 0.8 * s->job_seconds + 0.2 * took : took;
        if (!s->o.quiet && j->client_gone) fprintf(stderr, "serve: a client hung up: its job was dropped\n");
        s->prog.interrupted = j->interrupted;
        s->prog.active = 0;
        s->running = NULL;
        pthread_mutex_unlock(&s->mu);
        finish(s, j);
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->mu);
    if (s->ctx) sd_free(s->ctx);
    s->ctx = NULL;
    return NULL;
}

int queue_start(srv *s) { return pthread_create(&s->worker, NULL, worker_main, s) == 0 ? 0 : -1; }

void queue_shutdown(srv *s, int hard) {
    pthread_mutex_lock(&s->mu);
    s->draining = 1;
    s->stop = 1;
    if (hard) s->hard_stop = 1;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

void queue_join(srv *s) { pthread_join(s->worker, NULL); }
