/* jfield.h — typed reads of a request's JSON fields. A missing field or null takes the default (as AUTOMATIC1111's
 * optional fields do); anything else must have the right type and range, or the read fails with a message that
 * names the field ("steps: 1e+300 is not a whole number from 1 to 150"). */
#ifndef SERVER_JFIELD_H
#define SERVER_JFIELD_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef struct jfield_err {
    char field[96];   /* the field at fault ("steps", "init_images[0]") */
    char msg[512];    /* "steps: ..." */
} jfield_err;

/* Sets err and returns -1 (for the caller's one-line checks). */
int jfield_fail(jfield_err *err, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The field, or NULL when absent or null. */
const cJSON *jfield_get(const cJSON *obj, const char *key);

int jfield_int(const cJSON *obj, const char *key, long long lo, long long hi, long long def, long long *out, jfield_err *err);
int jfield_num(const cJSON *obj, const char *key, double lo, double hi, double def, double *out, jfield_err *err);
int jfield_bool(const cJSON *obj, const char *key, int def, int *out, jfield_err *err);
/* A string of at most max_bytes bytes of valid UTF-8 without NUL; *out points into obj. */
int jfield_str(const cJSON *obj, const char *key, size_t max_bytes, const char *def, const char **out, jfield_err *err);
/* The field must be absent, null, or of the given cJSON type (cJSON_Array, cJSON_Object ...). */
int jfield_type(const cJSON *obj, const char *key, int type, const char *what, jfield_err *err);

/* 1 if s (n bytes) is valid UTF-8 without NUL bytes. */
int jfield_utf8_ok(const char *s, size_t n);
/* Makes the string s valid UTF-8 in place: each byte that does not begin a valid character becomes '?' (a client's
 * bytes, or a character cut by a length limit, before the text goes into a JSON response). */
void jfield_utf8_fix(char *s);

#endif
