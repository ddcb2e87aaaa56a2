/* jfield.c — typed, range-checked reads of JSON fields with messages that name the field. */
#include "jfield.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int jfield_fail(jfield_err *err, const char *field, const char *fmt, ...) {
    snprintf(err->field, sizeof err->field, "%s", field);
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err->msg, sizeof err->msg, "%s: %s", field, what);
    /* both go back in a JSON response: a client's key is any bytes, and a %.80s or the buffer's end may cut a character */
    jfield_utf8_fix(err->field);
    jfield_utf8_fix(err->msg);
    return -1;
}

const cJSON *jfield_get(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static const char *type_name(const cJSON *v) {
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "null";
}

int jfield_int(const cJSON *obj, const char *key, long long lo, long long hi, long long def, long long *out, jfield_err *err) {
    const cJSON *v = jfield_get(obj, key);
    if (!v && (def < lo || def > hi)) /* a default past this server's limits (A1111's 50 steps over --max-steps 20) */
        return jfield_fail(err, key, "not given, and its default %lld is not from %lld to %lld here", def, lo, hi);
    if (!v) { *out = def; return 0; }
    if (!cJSON_IsNumber(v)) return jfield_fail(err, key, "must be a whole number, not %s", type_name(v));
    double d = v->valuedouble;
    /* the range is checked on the double: a 1e300 or a fraction never reaches an integer conversion */
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return jfield_fail(err, key, "%.17g is not a whole number from %lld to %lld", d, lo, hi);
    *out = (long long)d;
    return 0;
}

int jfield_num(const cJSON *obj, const char *key, double lo, double hi, double def, double *out, jfield_err *err) {
    const cJSON *v = jfield_get(obj, key);
    if (!v) { *out = def; return 0; }
    if (!cJSON_IsNumber(v)) return jfield_fail(err, key, "must be a number, not %s", type_name(v));
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi) return jfield_fail(err, key, "%.17g is not a number from %g to %g", d, lo, hi);
    *out = d;
    return 0;
}

int jfield_bool(const cJSON *obj, const char *key, int def, int *out, jfield_err *err) {
    const cJSON *v = jfield_get(obj, key);
    if (!v) { *out = def; return 0; }
    if (!cJSON_IsBool(v)) return jfield_fail(err, key, "must be true or false, not %s", type_name(v));
    *out = cJSON_IsTrue(v);
    return 0;
}

/* The length of the valid UTF-8 character (not NUL) at s[0], of at most n bytes; 0 if there is none. */
static int utf8_char(const unsigned char *u, size_t n) {
    unsigned c = u[0];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || (len == 1 && c == 0) || (len == 2 && c < 0xC2) || (size_t)len > n) return 0;
    unsigned cp = len == 1 ? c : c & (0x7F >> len);
    for (int k = 1; k < len; k++) {
        if ((u[k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (u[k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

int jfield_utf8_ok(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int len = utf8_char(u + i, n - i);
        if (!len) return 0;
        i += len;
    }
    return 1;
}

void jfield_utf8_fix(char *s) {
    unsigned char *u = (unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        int len = utf8_char(u + i, n - i);
        if (len) i += len;
        else u[i++] = '?';
    }
}

int jfield_str(const cJSON *obj, const char *key, size_t max_bytes, const char *def, const char **out, jfield_err *err) {
    const cJSON *v = jfield_get(obj, key);
    if (!v) { *out = def; return 0; }
    if (!cJSON_IsString(v) || !v->valuestring) return jfield_fail(err, key, "must be a string, not %s", type_name(v));
    size_t n = strlen(v->valuestring);
    if (n > max_bytes) return jfield_fail(err, key, "is %zu bytes long: at most %zu are accepted", n, max_bytes);
    if (!jfield_utf8_ok(v->valuestring, n)) return jfield_fail(err, key, "is not valid UTF-8");
    *out = v->valuestring;
    return 0;
}

int jfield_type(const cJSON *obj, const char *key, int type, const char *what, jfield_err *err) {
    const cJSON *v = jfield_get(obj, key);
    if (v && (v->type & 0xFF) != type) return jfield_fail(err, key, "must be %s, not %s", what, type_name(v));
    return 0;
}
