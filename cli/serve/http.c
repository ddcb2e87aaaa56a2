/* http.c — libmicrohttpd glue: the access handler (body up to a limit, auth, Host and content-type checks, routing),
 * suspending a connection while its job waits in the queue, responses, and the request log. */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assets.h"
#include "jfield.h"

typedef struct route {
    const char *method, *path;
    api_kind api;
    route_fn fn;
    int open;       /* served without auth: the page's own files and the API description */
} route;

static const route ROUTES[] = {
    {"GET", "/openapi.json", API_PAGE, page_openapi, 1},
    {"POST", "/sdapi/v1/txt2img", API_A1111, a1111_txt2img, 0},
    {"POST", "/sdapi/v1/img2img", API_A1111, a1111_img2img, 0},
    {"GET", "/sdapi/v1/progress", API_A1111, a1111_progress, 0},
    {"POST", "/sdapi/v1/interrupt", API_A1111, a1111_interrupt, 0},
    {"GET", "/sdapi/v1/samplers", API_A1111, a1111_samplers, 0},
    {"GET", "/sdapi/v1/schedulers", API_A1111, a1111_schedulers, 0},
    {"GET", "/sdapi/v1/sd-models", API_A1111, a1111_sd_models, 0},
    {"GET", "/sdapi/v1/loras", API_A1111, a1111_loras, 0},
    {"GET", "/sdapi/v1/options", API_A1111, a1111_options_get, 0},
    {"POST", "/sdapi/v1/options", API_A1111, a1111_options_post, 0},
    {"GET", "/sdapi/v1/scripts", API_A1111, a1111_scripts, 0},
    {"POST", "/sdapi/v1/refresh-checkpoints", API_A1111, a1111_refresh, 0},
    {"POST", "/sdapi/v1/refresh-loras", API_A1111, a1111_refresh, 0},
    {"POST", "/v1/images/generations", API_OPENAI, openai_images, 0},
    {"GET", "/v1/models", API_OPENAI, openai_models, 0},
};
#define NROUTES ((int)(sizeof ROUTES / sizeof *ROUTES))

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- responses ---- */

static enum MHD_Result queue(req *r, unsigned status, struct MHD_Response *resp) {
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->s->draining) MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ok = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES) {
        r->answered = 1;
        r->status = status;
    }
    return ok;
}

enum MHD_Result http_text(req *r, unsigned status, const char *content_type, const void *data, size_t len, int copy) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (resp) MHD_add_response_header(resp, "Content-Type", content_type);
    return queue(r, status, resp);
}

enum MHD_Result http_json(req *r, unsigned status, cJSON *body) {
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text) {
        static const char oom[] = "{\"error\":\"out_of_memory\",\"detail\":\"out of memory\",\"field\":null}";
        return http_text(r, 500, "application/json", oom, sizeof oom - 1, 0);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    return queue(r, status, resp);
}

static const char *openai_type(unsigned status) {
    return status == 401 ? "authentication_error" : status == 404 ? "not_found_error" : status >= 500 ? "server_error"
                                                                                                      : "invalid_request_error";
}

static enum MHD_Result error_response(req *r, unsigned status, const char *field_in, const char *msg_in, int retry_after) {
    /* JSON is UTF-8: a message may quote a client's bytes, or a text cut at a length limit mid-character */
    char msg[1024], f[128];
    const char *field = field_in ? f : NULL;
    snprintf(msg, sizeof msg, "%s", msg_in);
    jfield_utf8_fix(msg);
    if (field_in) {
        snprintf(f, sizeof f, "%s", field_in);
        jfield_utf8_fix(f);
    }
    cJSON *o = cJSON_CreateObject();
    if (r->api == API_OPENAI) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddStringToObject(e, "type", openai_type(status));
        if (field) cJSON_AddStringToObject(e, "param", field);
        else cJSON_AddNullToObject(e, "param");
        cJSON_AddNullToObject(e, "code");
    } else {
        cJSON_AddStringToObject(o, "error", MHD_get_reason_phrase_for(status));
        cJSON_AddStringToObject(o, "detail", msg);
        if (field) cJSON_AddStringToObject(o, "field", field);
        else cJSON_AddNullToObject(o, "field");
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) return http_json(r, 500, NULL);
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    char ra[16];
    if (retry_after > 0) {
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (status == 405 && r->allow[0]) MHD_add_response_header(resp, "Allow", r->allow);
    if (status == 401 && r->s->o.api_auth) MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"sd\", charset=\"UTF-8\"");
    else if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    return queue(r, status, resp);
}

enum MHD_Result http_error(req *r, unsigned status, const char *field, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return error_response(r, status, field, msg, 0);
}

enum MHD_Result http_busy(req *r, int retry_after, const char *why) { return error_response(r, 503, NULL, why, retry_after); }

/* ---- request helpers ---- */

const char *http_query(req *r, const char *key) { return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key); }

cJSON *http_body_object(req *r) {
    if (r->json) return r->json;
    unsigned invalid = r->api == API_OPENAI ? 400 : 422; /* OpenAI answers 400 where FastAPI (A1111) answers 422 */
    if (!r->len) {
        http_error(r, invalid, "body", "body: a JSON object is required");
        return NULL;
    }
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    /* JSON only: a browser can send text/plain or a form to this address from any page without asking first */
    if (!ct || strncasecmp(ct, "application/json", 16) || (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
        http_error(r, 415, "Content-Type", "Content-Type: the body must be application/json, not %s", ct ? ct : "unspecified");
        return NULL;
    }
    unsigned status;
    char msg[128];
    cJSON *j = http_parse_object(r->body, r->len, invalid, &status, msg, sizeof msg);
    if (!j) {
        http_error(r, status, "body", "%s", msg);
        return NULL;
    }
    r->json = j;
    return j;
}

cJSON *http_parse_object(const char *body, size_t len, unsigned invalid, unsigned *status, char *msg, size_t msglen) {
    *status = invalid;
    if (!len) {
        snprintf(msg, msglen, "body: a JSON object is required");
        return NULL;
    }
    *status = 400;
    if (strlen(body) != len) {
        snprintf(msg, msglen, "body: a NUL byte at %zu is no JSON", strlen(body));
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(body, &end, 1); /* 1: nothing but space may follow the value */
    if (!j) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        snprintf(msg, msglen, "body: malformed JSON near byte %zu", at);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        *status = invalid;
        snprintf(msg, msglen, "body: must be a JSON object");
        return NULL;
    }
    return j;
}

static void resume_cb(job *j, void *user) {
    (void)j;
    MHD_resume_connection(user);
}

enum MHD_Result http_submit(req *r, job *j, route_fn finish) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    j->fd = ci ? ci->connect_fd : -1;
    j->on_done = resume_cb;
    j->user = r->conn;
    r->job = j;
    r->finish = finish;
    int retry = 0;
    /* suspended first (at once, in this thread): the worker may finish and resume the connection any time after
     * the submit; a refused submit resumes it again and queues the 503 (allowed on a suspended connection) */
    MHD_suspend_connection(r->conn);
    if (queue_submit(r->s, j, &retry) != 0) {
        r->job = NULL;
        job_release(r->s, j);
        enum MHD_Result ok = http_busy(r, retry, r->s->draining ? "the server is shutting down" : "the queue is full: try again later");
        MHD_resume_connection(r->conn);
        return ok;
    }
    return MHD_YES;
}

/* ---- checks before routing ---- */

static int consttime_eq(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++) d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return d == 0;
}

static int authorized(req *r) {
    const server_opts *o = &r->s->o;
    if (!o->api_auth && !o->api_key) return 1;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (o->api_key && h && !strncasecmp(h, "Bearer ", 7) && consttime_eq(h + 7, o->api_key)) return 1;
    if (o->api_auth) {
        char *pass = NULL, *user = MHD_basic_auth_get_username_password(r->conn, &pass);
        char both[1024];
        snprintf(both, sizeof both, "%s:%s", user ? user : "", pass ? pass : "");
        int ok = user && pass && consttime_eq(both, o->api_auth);
        MHD_free(user);
        MHD_free(pass);
        if (ok) return 1;
    }
    return 0;
}

/* Bound to a loopback address, only loopback Host names are served: a web page elsewhere cannot point its own
 * domain at 127.0.0.1 (DNS rebinding) and so reach this server as "same origin". */
static int host_ok(req *r) {
    if (!r->s->bound_loopback) return 1;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!h) return 1; /* HTTP/1.0 (an HTTP/1.1 request without one was refused already) */
    char name[300];
    snprintf(name, sizeof name, "%s", h);
    char *colon = name[0] == '[' ? strchr(name, ']') : strrchr(name, ':');
    if (colon && name[0] == '[') colon = colon[1] == ':' ? colon + 1 : NULL;
    if (colon) *colon = 0;
    return !strcasecmp(name, "localhost") || !strcmp(name, "[::1]") || !strncmp(name, "127.", 4);
}

static enum MHD_Result dispatch(req *r) {
    const char *m = !strcmp(r->method, "HEAD") ? "GET" : r->method;
    const route *found = NULL;
    char allow[64] = "";
    for (int i = 0; i < NROUTES; i++) {
        if (strcmp(ROUTES[i].path, r->url)) continue;
        snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s%s", allow[0] ? ", " : "", ROUTES[i].method,
                 strcmp(ROUTES[i].method, "GET") ? "" : ", HEAD");
        if (!strcmp(ROUTES[i].method, m)) found = &ROUTES[i];
    }
    if (assets_find(r->url, NULL, NULL, NULL)) snprintf(allow, sizeof allow, "GET, HEAD");
    int asset = !found && !strcmp(m, "GET") && assets_find(r->url, NULL, NULL, NULL);
    r->api = found ? found->api : !strncmp(r->url, "/v1/", 4) ? API_OPENAI : strncmp(r->url, "/sdapi/", 7) ? API_PAGE : API_A1111;
    if (r->http11 && !MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)) /* RFC 9112 3.2 */
        return http_error(r, 400, "Host", "Host: an HTTP/1.1 request must have a Host header");
    if (!host_ok(r)) return http_error(r, 403, "Host", "Host: this server answers to localhost only (it is bound to %s)", r->s->o.host);
    if (!found && !asset) {
        if (allow[0]) {
            snprintf(r->allow, sizeof r->allow, "%s", allow);
            return http_error(r, 405, NULL, "%s %s: allowed: %s", r->method, r->url, allow);
        }
        return http_error(r, 404, NULL, "%s: no such page or API", r->url);
    }
    if (asset) return page_asset(r);
    if (!found->open && !authorized(r)) return http_error(r, 401, "Authorization", "Authorization: missing or wrong credentials");
    return found->fn(r);
}

static void log_request(req *r) {
    if (r->s->o.quiet || (r->status == 200 && !strcmp(r->url, "/sdapi/v1/progress"))) return; /* the page polls it */
    fprintf(stderr, "serve: %s %s %u %.3fs\n", r->method, r->url, r->status, now_s() - r->t0);
}

static void body_budget(srv *s, size_t delta) {
    pthread_mutex_lock(&s->mu);
    s->body_bytes += delta;
    pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
    srv *s = cls;
    req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->s = s;
        r->conn = c;
        r->method = method;
        r->url = url;
        r->t0 = now_s();
        r->http11 = version && !strcmp(version, MHD_HTTP_VERSION_1_1);
        r->api = !strncmp(url, "/v1/", 4) ? API_OPENAI : strncmp(url, "/sdapi/", 7) ? API_PAGE : API_A1111;
        *con_cls = r;
        pthread_mutex_lock(&s->mu);
        s->active_requests++;
        r->counted = 1;
        pthread_mutex_unlock(&s->mu);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body) {
            r->too_big = 1;
            return http_error(r, 413, "body", "body: %s bytes is over the limit of %zu", cl, s->o.max_body);
        }
        pthread_mutex_lock(&s->mu);
        int full = cl && s->body_bytes + strtoull(cl, NULL, 10) > 4 * s->o.max_body;
        pthread_mutex_unlock(&s->mu);
        if (full) {
            r->too_big = 1;
            return http_busy(r, 5, "too many large uploads at once: try again shortly");
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->answered) return MHD_YES; /* the rest of a body refused early (413 on its Content-Length) is dropped */
        if (r->too_big || n > s->o.max_body - r->len) {
            /* a body without Content-Length that grows past the limit: read and dropped (up to as much again, then
             * the connection is closed), and answered 413 once it ends, when libmicrohttpd takes a response */
            if (!r->too_big) {
                free(r->body);
                body_budget(s, (size_t)0 - r->cap);
                r->body = NULL;
                r->cap = r->len = 0;
                r->too_big = 1;
            }
            r->dropped += n;
            return r->dropped > s->o.max_body ? MHD_NO : MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1) cap *= 2;
            /* all bodies being received share a budget (4 x --max-body): many large uploads at once wait their turn */
            pthread_mutex_lock(&s->mu);
            int over = s->body_bytes + (cap - r->cap) > 4 * s->o.max_body;
            if (!over) s->body_bytes += cap - r->cap;
            pthread_mutex_unlock(&s->mu);
            char *g = over ? NULL : realloc(r->body, cap);
            if (!g) {
                if (!over) body_budget(s, r->cap - cap); /* give back what was booked */
                return MHD_NO;                          /* libmicrohttpd answers nothing mid-body: the connection closes */
            }
            r->body = g;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    if (r->answered) return MHD_YES;
    if (r->too_big) return http_error(r, 413, "body", "body: over the limit of %zu bytes", s->o.max_body);
    if (r->job) return r->job->state == JOB_DONE ? r->finish(r) : MHD_YES;
    return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
    (void)c;
    srv *s = cls;
    req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (r->status || why != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->status) r->status = 0;
        log_request(r);
    }
    job_release(s, r->job);
    if (r->cap) body_budget(s, (size_t)0 - r->cap);
    cJSON_Delete(r->json);
    if (r->free_data) r->free_data(r->data);
    free(r->body);
    if (r->counted) {
        pthread_mutex_lock(&s->mu);
        s->active_requests--;
        pthread_cond_broadcast(&s->idle);
        pthread_mutex_unlock(&s->mu);
    }
    free(r);
}

struct MHD_Daemon *http_start(srv *s, char *err, size_t errlen, int *port) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME;
    const char *host = !strcmp(s->o.host, "localhost") ? "127.0.0.1" : s->o.host;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)s->o.port);
        s->bound_loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)s->o.port);
        s->bound_loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "--host \"%s\" is not an IPv4 or IPv6 address (or localhost)", s->o.host);
        return NULL;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)s->o.port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->o.timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_connections, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.threads,
        MHD_OPTION_END);
    if (!d) {
        snprintf(err, errlen, "cannot listen on %s port %d (in use, or not an address of this machine)", s->o.host, s->o.port);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = di ? di->port : s->o.port;
    return d;
}
