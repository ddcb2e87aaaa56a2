/* numparse.c — range-checked numbers from JSON and text (see numparse.h). */
#include "numparse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "error.h"

static const cJSON *present(const cJSON *obj, const char *key) {
    const cJSON *j = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsNull(j) ? NULL : j;
}

sd_status num_int_value(const char *file, const cJSON *j, const char *what, int lo, int hi, int *out) {
    /* the range test comes first: only then is the cast to int defined */
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi) || j->valuedouble != (double)(int)j->valuedouble)
        return err_fail(SD_ERR_FORMAT, "%s: \"%s\" must be a whole number from %d to %d", file, what, lo, hi);
    *out = (int)j->valuedouble;
    return SD_OK;
}

sd_status num_double_value(const char *file, const cJSON *j, const char *what, double lo, double hi, double *out) {
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi)) /* NaN fails too */
        return err_fail(SD_ERR_FORMAT, "%s: \"%s\" must be a number from %g to %g", file, what, lo, hi);
    *out = j->valuedouble;
    return SD_OK;
}

sd_status num_json_int(const char *file, const cJSON *obj, const char *key, int lo, int hi, int *out) {
    const cJSON *j = present(obj, key);
    return j ? num_int_value(file, j, key, lo, hi, out) : SD_OK;
}

sd_status num_json_double(const char *file, const cJSON *obj, const char *key, double lo, double hi, double *out) {
    const cJSON *j = present(obj, key);
    return j ? num_double_value(file, j, key, lo, hi, out) : SD_OK;
}

sd_status num_json_float(const char *file, const cJSON *obj, const char *key, double lo, double hi, float *out) {
    double d = 0;
    const cJSON *j = present(obj, key);
    if (!j) return SD_OK;
    sd_status st = num_double_value(file, j, key, lo, hi, &d);
    if (st == SD_OK) *out = (float)d; /* callers' ranges lie inside a float's */
    return st;
}

/* The rest of s after a number: only spaces allowed. */
static int only_spaces(const char *e) {
    while (isspace((unsigned char)*e)) e++;
    return *e == 0;
}

int num_parse_int(const char *s, int lo, int hi, int *out) {
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (e == s || errno || !only_spaces(e) || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int num_parse_double(const char *s, double lo, double hi, double *out) {
    char *e;
    double v = strtod(s, &e);
    if (e == s || !only_spaces(e) || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

int num_parse_u64(const char *s, uint64_t *out) {
    while (isspace((unsigned char)*s)) s++;
    if (!isdigit((unsigned char)*s)) return -1;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || !only_spaces(e)) return -1;
    *out = (uint64_t)v;
    return 0;
}
