/* a1111.h — what the AUTOMATIC1111 routes share (a1111_gen.c parses, a1111_resp.c answers, a1111_info.c lists). */
#ifndef SERVER_A1111_H
#define SERVER_A1111_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "http.h"
#include "jfield.h"

/* A generation request's own data, kept in req.data until the response is built. */
typedef struct a1111_data {
    cJSON *params;              /* the request's fields over A1111's defaults: the response's "parameters" */
    int send_images, img2img;
    uint64_t seed, subseed;     /* resolved (-1: drawn at random) */
    double subseed_strength, denoising;
} a1111_data;

void a1111_data_free(void *d);

/* A1111's request fields with their defaults (txt2img, or img2img's). */
cJSON *a1111_defaults(int img2img);

/* The model a client named (a title, file or model name of sd-models): 0, or -1 with e set (*status 422). */
int a1111_find_model(srv *s, const char *name, model_entry *out, jfield_err *e, unsigned *status);

/* <lora:NAME:...> tags of a prompt: names that are paths or not in --lora-model-dir are refused (and any tag, while
 * the library has no LoRA). 0 or -1 with e set. */
int a1111_check_loras(srv *s, const char *field, const char *prompt, jfield_err *e);

/* The routes' request parsers without HTTP: each reads a parsed body into a job (or the options), checking every
 * field, and returns 0, or -1 with e set and *status (the HTTP status of the refusal). They are the routes' own code,
 * not static only so that tests/fuzz/fuzz_server_request.c can feed them untrusted bodies without a connection.
 * a1111_parse (txt2img, img2img): d and j filled (the caller frees them: a1111_data_free, job_release). */
int a1111_parse(srv *s, const cJSON *b, int img2img, a1111_data *d, job *j, jfield_err *e, unsigned *status);
/* openai_parse (/v1/images/generations): j filled. */
int openai_parse(srv *s, const cJSON *b, job *j, jfield_err *e, unsigned *status);
/* POST /sdapi/v1/options: what to set (0 / -1 / NULL: leave as it is); strings point into b. */
typedef struct a1111_options {
    long long clip_skip;
    double eta_ddim, eta_ancestral;
    const char *rng, *checkpoint;
    model_entry model;          /* the checkpoint's entry, when checkpoint is set */
} a1111_options;
int a1111_options_parse(srv *s, const cJSON *b, a1111_options *out, jfield_err *e, unsigned *status);

/* The HTTP status and message of a failed job (shared with the OpenAI route). */
unsigned a1111_job_status(const job *j, const char **field);

/* The response of a finished generation. */
enum MHD_Result a1111_finish_generate(req *r);

#endif
