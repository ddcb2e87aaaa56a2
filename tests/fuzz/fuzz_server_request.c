/* fuzz_server_request.c — `sd serve` request bodies (cli/serve/): the first byte picks the route (0: POST
 * /sdapi/v1/txt2img, 1: img2img, with init_images and mask as base64 images, 2: POST /sdapi/v1/options, 3: OpenAI's
 * /v1/images/generations), the rest is the body. It goes through the server's own code as a request does after
 * HTTP: http_parse_object (NUL bytes, JSON, an object), then the route's parser (a1111_parse, a1111_options_parse,
 * openai_parse: every field's type and range, the model and LoRA names, base64 and image decoding, the mask). The
 * server is set up as `sd serve` starts (server_opts_init's limits, no --models-dir or --lora-model-dir, the bundled
 * demo model as the default) but with no model loaded: nothing is queued or generated.
 *
 * What must hold besides no crash, leak or undefined behaviour:
 *   - a refused body has a 4xx/5xx status and a message, and the message and the field it names are valid UTF-8
 *     (both are sent back in a JSON response);
 *   - an accepted generation passes the library's own check of its parameters (params_validate), within this
 *     server's limits: what the server takes, the worker never refuses as malformed. */
#include "fuzz.h"

#include <math.h>
#include <stdio.h>

#include "../../cli/serve/a1111.h"
#include "../../cli/serve/http.h"
#include "../../pipeline/pipeline.h"

static srv S;
static int verbose; /* FUZZ_VERBOSE=1: each input's outcome on stderr (to check the seeds) */

static void setup(void) {
    server_opts o;
    server_opts_init(&o);
    srv_init(&S, &o);
    model_list l;
    char err[512];
    if (models_scan(o.models_dir, o.load.model_path, &l, err, sizeof err) != 0 || l.n < 1) {
        fprintf(stderr, "fuzz_server_request: %s\n", err);
        abort();
    }
    S.def_model = l.e[0]; /* as server_run: the first model, here the bundled demo model */
    models_free(&l);
    verbose = getenv("FUZZ_VERBOSE") != NULL;
}

static void report(int route, int rc, unsigned status, const char *msg) {
    static const char *const NAMES[4] = {"txt2img", "img2img", "options", "openai"};
    if (verbose) fprintf(stderr, "%s: %s %u %s\n", NAMES[route], rc ? "refused" : "accepted", rc ? status : 200, rc ? msg : "");
}

static void check_refusal(const jfield_err *e, unsigned status) {
    if (!e->msg[0] || status < 400 || status > 599) abort(); /* the field may be "", a client's key */
    if (!jfield_utf8_ok(e->field, strlen(e->field)) || !jfield_utf8_ok(e->msg, strlen(e->msg))) abort();
}

static void check_job(const job *j, int route) {
    const server_opts *o = &S.o;
    const sd_gen_params *p = &j->gp;
    if (!p->prompt || strlen(p->prompt) > SD_PROMPT_MAX_BYTES || !jfield_utf8_ok(p->prompt, strlen(p->prompt))) abort();
    if (p->width > o->max_side || p->height > o->max_side || p->steps > o->max_steps) abort();
    if ((long long)p->batch_count * j->iterations > o->max_images || j->iterations < 1) abort();
    if (route == 1 && (!p->init_image || p->init_image->w > 2 * o->max_side || p->init_image->h > 2 * o->max_side)) abort();
    /* OpenAI's size "auto" leaves 0: the model's default (512 for the demo model) */
    if (params_validate(p, p->width ? p->width : 512, p->height ? p->height : 512) != SD_OK) {
        fprintf(stderr, "accepted, but the library refuses it: %s\n", sd_last_error());
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1) return 0;
    int route = data[0] % 4;
    char *body = fuzz_text(data + 1, size - 1);
    if (!body) return 0;
    unsigned status;
    char msg[128];
    cJSON *b = http_parse_object(body, size - 1, route == 3 ? 400 : 422, &status, msg, sizeof msg);
    if (!b) {
        report(route, -1, status, msg);
        if (!msg[0] || (status != 400 && status != 422)) abort();
    } else if (route == 2) {
        a1111_options opts;
        jfield_err e = {{0}, {0}};
        int rc = a1111_options_parse(&S, b, &opts, &e, &status);
        report(route, rc, status, e.msg);
        if (rc != 0) check_refusal(&e, status);
        else if (opts.checkpoint && !opts.model.name[0]) abort();
    } else {
        job *j = job_new(JOB_GENERATE);
        a1111_data *d = calloc(1, sizeof *d);
        if (j && d) {
            jfield_err e = {{0}, {0}};
            int rc = route == 3 ? openai_parse(&S, b, j, &e, &status) : a1111_parse(&S, b, route, d, j, &e, &status);
            report(route, rc, status, e.msg);
            if (rc != 0) check_refusal(&e, status);
            else check_job(j, route);
        }
        a1111_data_free(d);
        job_release(&S, j);
    }
    cJSON_Delete(b);
    free(body);
    return 0;
}
