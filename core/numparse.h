/* numparse.h — numbers from untrusted JSON and text, range-checked before any conversion: a double outside the
 * range of an int or a float converts with undefined behaviour, so nothing read from a file is cast unchecked.
 *
 *   TRY(num_json_int(path, root, "sample_size", 1, 2048, &c->sample_size));   // absent or null: left as it was
 *
 * Messages name the file and the key: "PATH: \"sample_size\" must be a whole number from 1 to 2048". */
#ifndef CORE_NUMPARSE_H
#define CORE_NUMPARSE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "status.h"

/* obj[key] when present and not null: a whole number in [lo, hi] into *out. Absent or null: SD_OK, *out untouched. */
sd_status num_json_int(const char *file, const cJSON *obj, const char *key, int lo, int hi, int *out);
/* obj[key] when present and not null: a finite number in [lo, hi] (double or float out). */
sd_status num_json_double(const char *file, const cJSON *obj, const char *key, double lo, double hi, double *out);
sd_status num_json_float(const char *file, const cJSON *obj, const char *key, double lo, double hi, float *out);

/* One JSON value (an array element, a key looked up already); `what` names it in the message. */
sd_status num_int_value(const char *file, const cJSON *j, const char *what, int lo, int hi, int *out);
sd_status num_double_value(const char *file, const cJSON *j, const char *what, double lo, double hi, double *out);

/* Text: all of s (spaces around allowed) is a decimal integer in [lo, hi] / a finite number in [lo, hi].
 * Returns 0, or -1 (out untouched): the caller words the message. */
int num_parse_int(const char *s, int lo, int hi, int *out);
int num_parse_double(const char *s, double lo, double hi, double *out);
/* All of s is an unsigned decimal 0 .. 2^64-1 (no sign: strtoull would take "-1" as 2^64-1). */
int num_parse_u64(const char *s, uint64_t *out);

#endif
