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

/* The HTTP status and message of a failed job (shared with the OpenAI route). */
unsigned a1111_job_status(const job *j, const char **field);

/* The response of a finished generation. */
enum MHD_Result a1111_finish_generate(req *r);

#endif
