/* batch_input.c — reading a job file into its plan, for sd batch and sd batch merge. */
#include "batch_input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clikit.h"

#define JOBS_FILE_LIMIT (64u << 20)

int batch_input_load(const char *path, const char *format, const cJSON *params, batch_input *in) {
    jobs_format fmt = JOBS_AUTO;
    if (format && strcmp(format, "auto")) {
        if (!strcmp(format, "jsonl")) fmt = JOBS_JSONL;
        else if (!strcmp(format, "text")) fmt = JOBS_TEXT;
        else { fprintf(stderr, "error: --format \"%s\" is not auto, jsonl or text\n", format); return -1; }
    }
    size_t len = 0;
    if (clikit_read_text(path, JOBS_FILE_LIMIT, &in->text, &len) != 0) return -1;
    in->source = strcmp(path, "-") ? path : "(stdin)";
    if (jobs_parse(in->text, len, in->source, fmt, params, jobs_library_rules(), &in->jobs, &in->errs) ||
        plan_build(&in->jobs, in->source, &in->pl, &in->errs)) {
        jobs_errors *e = &in->errs;
        for (int i = 0; i < e->n; i++) fprintf(stderr, "error: %s\n", e->msg[i]);
        if (e->total > e->n) fprintf(stderr, "error: ... and %d more problems\n", e->total - e->n);
        if (e->total > 1) fprintf(stderr, "error: %d problems in %s\n", e->total, in->source);
        return -1;
    }
    return 0;
}

void batch_input_free(batch_input *in) {
    plan_free(&in->pl);
    jobs_list_free(&in->jobs);
    jobs_errors_free(&in->errs);
    free(in->text);
    memset(in, 0, sizeof *in);
}
