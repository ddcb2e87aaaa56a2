/* jobs.h — `sd batch` job files: JSON Lines or one prompt per line, command-line defaults, validation.
 *
 * A job file is read whole and checked whole before anything renders: every bad line is reported as
 * "FILE:LINE: problem". Blank lines and lines starting with '#' are skipped in both formats.
 *
 *   {"prompt": "a {red|blue} circle", "seeds": "100:103", "steps": 20, "sampler": "euler_a", "size": "128x128"}
 *   a large green star on a black background          (plain form: the line is the prompt)
 *
 * Command-line flags (--steps 20, --sampler euler ...) set defaults that a job line overrides key by key.
 * Seeds: a job's "seeds" or "seed_range" list replaces the command line's; otherwise seed (job, else command
 * line, else the library's default) and count (job, else command line, else 1) give seed, seed+1, ... seed+count-1. Batch seeds
 * are never random, so re-running a command resumes it. */
#ifndef CLI_JOBS_H
#define CLI_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../sd.h"

typedef enum jobs_format { JOBS_AUTO = 0, JOBS_JSONL, JOBS_TEXT } jobs_format;

typedef struct jobs_job {
    int line;               /* 1-based line in the job file */
    cJSON *obj;             /* the validated parameters (job line over command-line defaults), canonical key
                             * names in a fixed order; the seed keys are resolved into seeds/vseeds below */
    const char *prompt;     /* as written (may hold {a|b} groups); points into obj */
    const char *name;       /* "name", or NULL */
    const char *output;     /* "output" name template, or NULL for the default */
    uint64_t *seeds;        /* nseeds >= 1 */
    int nseeds;
    uint64_t *vseeds;       /* variation seeds, nvseeds = 0 when unused */
    int nvseeds;
} jobs_job;

typedef struct jobs_list {
    jobs_job *jobs;
    int count;
    jobs_format format;     /* the format the file was read as */
} jobs_list;

/* Error messages, each "SOURCE:LINE: problem"; `total` counts all, `msg` keeps the first JOBS_MAX_ERRORS. */
#define JOBS_MAX_ERRORS 50
typedef struct jobs_errors {
    char *msg[JOBS_MAX_ERRORS];
    int n, total;
} jobs_errors;

void jobs_error_add(jobs_errors *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jobs_errors_free(jobs_errors *e);

/* What the library accepts: sampler and scheduler names (NULL lists: any name), and the seed of jobs that
 * name none (sd_gen_params_init's, so `sd batch` and `sd -p` agree). */
typedef struct jobs_rules {
    const char *const *samplers;
    int nsamplers;
    const char *const *schedulers;
    int nschedulers;
    uint64_t default_seed;
} jobs_rules;

/* Name comparison as the library does it: case, spaces, '_' and '-' ignored ("Euler a" = "euler_a").
 * Checked names are stored in the canonical spelling of the list. */
int jobs_name_equal(const char *a, const char *b);

/* Limits on what one job may ask for. */
#define JOBS_MAX_SEEDS 100000

/* ---- command-line values ---- */

/* A command-line value for job key `key`: converted to the key's JSON type (numbers strictly: "12abc", "nan",
 * "inf", "1e999" are not numbers) and checked exactly as the key on a job line is. Returns a new item to store
 * (names in their canonical spelling), or NULL with the problem in err (without the key's name). */
cJSON *jobs_flag_value(const char *key, const char *value, const jobs_rules *rules, char *err, size_t errlen);

/* The sampler and scheduler names and the default seed of the library. */
const jobs_rules *jobs_library_rules(void);

/* "WxH" (digits only) into *w, *h. Returns 0 or -1. */
int jobs_parse_size(const char *s, int *w, int *h);

/* ---- parsing ---- */

/* Parses `text` (the job file, `source` naming it in messages). Every line is checked against `defaults`
 * (may be NULL) and `names`. Returns the number of errors (all also in errs); out is filled either way with
 * the good jobs. */
int jobs_parse(const char *text, size_t len, const char *source, jobs_format fmt, const cJSON *defaults,
               const jobs_rules *rules, jobs_list *out, jobs_errors *errs);
void jobs_list_free(jobs_list *l);

/* Sets the fields of `p` that the job gives (prompt excepted; seeds are per image). Strings point into the job. */
void jobs_apply(const jobs_job *job, sd_gen_params *p);
/* The same from an object of checked values under canonical keys (a job's, or the command line's). */
void jobs_apply_object(const cJSON *obj, sd_gen_params *p);

/* The "lora" list of a job's (or the command line's) checked object as a malloc'd sd_lora array (paths point into
 * obj): returns the count (0 for an empty list), -1 when obj names none (keep what p has: --from-png's), -2 when out
 * of memory. The caller frees *out. */
int jobs_loras(const cJSON *obj, sd_lora **out);

/* Integer / number / string value of a key of the job (def when absent). */
double jobs_num(const jobs_job *job, const char *key, double def);
const char *jobs_str(const jobs_job *job, const char *key, const char *def);

#endif
