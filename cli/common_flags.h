/* common_flags.h — the flags `sd generate`, `sd batch` and `sd compare` share, in one table: their names (with
 * the other spellings the commands accept), how each value is checked, and their help lines.
 *
 * The generation parameters among them (--steps, --cfg-scale, --sampler ...) are stored under the job key they
 * set (jobs.h) and checked exactly as that key on a job line: "--cfg-scale -5", "--steps 1e999", "--eta nan"
 * are refused with the flag's name, in every command. A later flag replaces an earlier one; --size sets the
 * width and the height. */
#ifndef CLI_COMMON_FLAGS_H
#define CLI_COMMON_FLAGS_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "../sd.h"

/* The largest width or height the library renders (a side over it is refused by every flag that sets one). */
#define CF_MAX_SIDE 8192

/* The commands, as a bit mask of those that take a flag. */
enum { CF_GENERATE = 1, CF_BATCH = 2, CF_COMPARE = 4 };

typedef struct cf_opts {
    sd_load_params load;    /* -m --vae --backend -t --prediction -v */
    const char *output;     /* -o; NULL: the command's default */
    int overwrite, quiet;
    cJSON *params;          /* the generation parameters given, checked, under their job keys ("cfg": 7 ...) */
    const char *preview;    /* --preview: the PNG rewritten with each preview; NULL: none */
    const char *preview_method; /* --preview-method (NULL: latent2rgb) */
    int preview_interval;   /* --preview-interval (0: every step) */
} cf_opts;

/* Returns 0, or -1 when out of memory (printed). */
int cf_init(cf_opts *o);
void cf_free(cf_opts *o);

/* If argv[*i] is a shared flag that `cmd` takes ("--steps 20", "--steps=20", "-s 5"; "--cfg_scale" for "--cfg-scale"), checks it and its value
 * and stores it (advancing *i past the value). Returns 1 when taken, 0 when argv[*i] is no such flag, -1 after
 * printing one "error: ..." line. */
int cf_parse(int argc, char **argv, int *i, unsigned cmd, cf_opts *o);

/* For an unknown "--flag" (or "--flag=value"): " (did you mean --scheduler?)" when it is a slip away from a flag
 * `cmd` takes or one of `own` (the command's other flags, NULL-terminated; may be NULL), else "". */
void cf_suggest(const char *arg, unsigned cmd, const char *const *own, char *out, size_t cap);

/* Stores a generation parameter as `flag` (a long, short or other spelling) given `value` would (NULL for a
 * switch). Returns 0, or -1 with "FLAG: problem" in err. */
int cf_param(cJSON *params, const char *flag, const char *value, char *err, size_t errlen);

/* The help lines of the shared flags `cmd` takes. */
void cf_help(FILE *out, unsigned cmd);

#endif
