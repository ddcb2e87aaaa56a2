/* plan.h — the deterministic image list of a batch (job × prompt variation × variation seed × seed), output
 * file names from templates, name collisions, and --shard slicing.
 *
 * Order: jobs in file order; for each job its prompt expansions in order (expand.h); for each, its variation
 * seeds; for each, its seeds (innermost, so consecutive seeds of one job can share a UNet call). Image
 * `index` counts from 0 over the whole list, whatever the shard, so names and manifests agree across shards.
 *
 * Output name templates ("output" key / --name-template), placeholders in braces:
 *   {index} {job} {line} {n} {variation} {seed} {vseed} {steps} {width} {height}   numbers; {x:05} zero-pads
 *   {name} {prompt_slug} {sampler} {scheduler} {cfg}                            text; {x:30} cuts to 30 chars
 * {{ and }} are literal braces. Unset parameters read "default". ".png" is added when missing; names may make
 * sub-folders ("{name}/{seed}.png") but may not be absolute, contain "..", or start a file name with '.'. */
#ifndef CLI_PLAN_H
#define CLI_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "expand.h"
#include "jobs.h"

#define PLAN_DEFAULT_TEMPLATE "{index:05}-{seed}-{prompt_slug:40}.png"
#define PLAN_MAX_IMAGES 1000000

typedef struct plan_image {
    int index;              /* position in the whole list, from 0 */
    int job;                /* index into the jobs_list */
    int variation;          /* which expansion of the job's prompt */
    int n;                  /* position within the job, from 0 */
    uint64_t seed;
    uint64_t vseed;         /* variation seed, when the job has them */
    char *file;             /* output path relative to the output folder */
} plan_image;

typedef struct plan {
    plan_image *images;
    int count;
    const jobs_list *jobs;  /* the jobs it was built from (they must outlive it) */
    expand_tmpl **prompts;  /* per job: its prompt, parsed; expansions are made when asked for (plan_prompt) */
    expand_tmpl **controls; /* per job: its "control_image" ({a.png|b.png} groups), or NULL; a job's variations are
                               its prompt expansions for each control image (plan_control_image) */
} plan;

/* Expands every job (at most PLAN_MAX_IMAGES prompts a line); names every image; reports template errors and name collisions ("SOURCE:LINE: ...").
 * Returns the number of errors. */
int plan_build(const jobs_list *jobs, const char *source, plan *out, jobs_errors *errs);
void plan_free(plan *p);

/* The values a template can use (job may be NULL in tests: job-level values then read "default"). */
typedef struct plan_vars {
    const jobs_job *job;
    int job_number;         /* 1-based */
    const plan_image *im;
    const char *prompt;     /* the image's expanded prompt */
} plan_vars;

/* Formats a name template. Returns 0, or -1 with the problem in err. */
int plan_format_name(const char *tmpl, const plan_vars *v, char *out, size_t cap, char *err, size_t errlen);

/* Lowercase ASCII letters and digits, other runs turned into one '-', at most `max` characters ("prompt" if empty). */
void plan_slug(const char *text, size_t max, char *out, size_t cap);

/* --shard: "I/N" with 0 <= I < N (I counts from 0 like SLURM_ARRAY_TASK_ID with --array=0-(N-1) and
 * Kubernetes' JOB_COMPLETION_INDEX), or "auto": Slurm's SLURM_ARRAY_TASK_ID / _MIN / _STEP / _COUNT, or a
 * Kubernetes Indexed Job's JOB_COMPLETION_INDEX with the count from want_count (--shard-count; 0 when not
 * given), which must agree with Slurm's count and with "I/N" when those are given too. Returns 0, or -1 with err. */
int plan_parse_shard(const char *spec, int want_count, int *index, int *count, char *err, size_t errlen);

/* Images [*begin, *end) of shard `index` of `count`: contiguous slices whose sizes differ by at most one. */
void plan_shard_range(int total, int index, int count, int *begin, int *end);

/* The expanded prompt of an image, as a new string (free it); NULL when out of memory. */
char *plan_prompt(const plan *p, const plan_image *im);
/* The control image of an image (a new string), NULL when its job has none (or out of memory). */
char *plan_control_image(const plan *p, const plan_image *im);

/* The rendering parameters of one image as a new JSON object: the job's keys with the expanded prompt, the
 * seed and the variation seed; file naming keys ("output", "name", "batch_size") left out. NULL: out of memory. */
cJSON *plan_image_params(const plan *p, const plan_image *im);

/* Identity of an image for resume: SHA-256 of its parameters (above) and the model name. Returns 0, -1 when out
 * of memory. */
int plan_image_key(const plan *p, const plan_image *im, const char *model, char hex[65]);

#endif
