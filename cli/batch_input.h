/* batch_input.h — the job file of `sd batch` and `sd batch merge`, read, checked and expanded into its plan. */
#ifndef CLI_BATCH_INPUT_H
#define CLI_BATCH_INPUT_H

#include <cjson/cJSON.h>

#include "jobs.h"
#include "plan.h"

typedef struct batch_input {
    const char *source;     /* the path, or "(stdin)" for "-" */
    char *text;
    jobs_list jobs;
    plan pl;
    jobs_errors errs;
} batch_input;

/* Reads the job file `path` ("-": standard input) in `format` (NULL or "auto", "jsonl", "text") with the
 * generation defaults `params` (flags: a job line overrides each) and builds its plan. Prints every problem with
 * its line, then "N problems in FILE" when more than one. Returns 0, or -1 (zero it first; free it either way). */
int batch_input_load(const char *path, const char *format, const cJSON *params, batch_input *in);
void batch_input_free(batch_input *in);

#endif
