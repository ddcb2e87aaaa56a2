/* http.h — the HTTP side: one req per request, the routes, and the responses (JSON, errors in the shape of the
 * API asked: AUTOMATIC1111's or OpenAI's). libmicrohttpd parses HTTP; this only routes and answers. */
#ifndef SERVER_HTTP_H
#define SERVER_HTTP_H

#include <microhttpd.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "srv.h"

typedef enum { API_A1111, API_OPENAI, API_PAGE } api_kind;

typedef struct req req;
/* Answers a request (a response is queued), or submits a job and returns after http_wait() ; returns MHD_YES or
 * MHD_NO (drop the connection). */
typedef enum MHD_Result (*route_fn)(req *r);

struct req {
    srv *s;
    struct MHD_Connection *conn;
    const char *method, *url;
    api_kind api;
    int http11;                 /* an HTTP/1.1 request (which must carry a Host header) */
    char *body;                 /* the request body, NUL-terminated */
    size_t len, cap;
    int too_big;                /* the body passed max_body: answered 413 */
    size_t dropped;             /* bytes of such a body read and dropped */
    int answered;               /* a response was queued */
    int counted;                /* in s->active_requests */
    cJSON *json;                /* the parsed body, if the route parsed it */
    job *job;                   /* a submitted job */
    route_fn finish;            /* builds the response once the job is done */
    void *data;                 /* the route's own (freed with free_data) */
    void (*free_data)(void *);
    double t0;
    unsigned status;
    char allow[64];             /* the methods of the path, for a 405 */
};

/* Responses. Each queues the response and returns MHD_YES (or MHD_NO when it could not). */
enum MHD_Result http_json(req *r, unsigned status, cJSON *body);     /* takes body (NULL: out of memory -> 500) */
enum MHD_Result http_text(req *r, unsigned status, const char *content_type, const void *data, size_t len, int copy);
/* An error in the shape of r's API, naming field (may be NULL): A1111 {"error", "detail", "field"}; OpenAI
 * {"error": {"message", "type", "param", "code"}}. */
enum MHD_Result http_error(req *r, unsigned status, const char *field, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* 503 with Retry-After */
enum MHD_Result http_busy(req *r, int retry_after, const char *why);

/* The parsed JSON body (an object), or NULL after answering 400/415/422. */
cJSON *http_body_object(req *r);
/* Its checks of the body itself, without a connection (tests/fuzz/fuzz_server_request.c feeds it untrusted bodies):
 * the object body (len bytes, NUL-terminated), or NULL with *status (400, or `invalid` for an empty body or one that is
 * no object) and msg ("body: ..."). */
cJSON *http_parse_object(const char *body, size_t len, unsigned invalid, unsigned *status, char *msg, size_t msglen);

/* Submits j for r: on success the connection waits (suspended) and r->finish answers when j is done; a full queue
 * is answered 503. Takes j. */
enum MHD_Result http_submit(req *r, job *j, route_fn finish);

/* The value of a query argument, or NULL. */
const char *http_query(req *r, const char *key);

/* MHD glue (http.c) */
struct MHD_Daemon *http_start(srv *s, char *err, size_t errlen, int *port);

/* the routes (api_*.c) */
enum MHD_Result a1111_txt2img(req *r);
enum MHD_Result a1111_img2img(req *r);
enum MHD_Result a1111_progress(req *r);
enum MHD_Result a1111_interrupt(req *r);
enum MHD_Result a1111_samplers(req *r);
enum MHD_Result a1111_schedulers(req *r);
enum MHD_Result a1111_sd_models(req *r);
enum MHD_Result a1111_loras(req *r);
enum MHD_Result a1111_options_get(req *r);
enum MHD_Result a1111_options_post(req *r);
enum MHD_Result a1111_scripts(req *r);
enum MHD_Result a1111_refresh(req *r);
enum MHD_Result openai_images(req *r);
enum MHD_Result openai_models(req *r);
enum MHD_Result page_asset(req *r);
enum MHD_Result page_openapi(req *r);

#endif
