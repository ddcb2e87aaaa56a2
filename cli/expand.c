/* expand.c — prompt variation syntax and seed lists for `sd batch` (see expand.h for the rules). */
#include "expand.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growable list of malloc'd strings ---- */

typedef struct strlist {
    char **v;
    int n, cap;
} strlist;

static void sl_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int sl_push(strlist *l, char *s) {
    if (!s) return -1;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) { free(s); return -1; }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

static char *cat2(const char *a, const char *b, size_t blen) {
    size_t alen = strlen(a);
    char *s = malloc(alen + blen + 1);
    if (!s) return NULL;
    memcpy(s, a, alen);
    memcpy(s + alen, b, blen);
    s[alen + blen] = 0;
    return s;
}

/* ---- the parser: seq := (text | '{' seq ('|' seq)* '}')* ---- */

typedef struct parser {
    const char *s;
    size_t pos;
    int max_out;
    int groups;      /* groups seen, to decide on whitespace clean-up */
    char *err;
    size_t errlen;
} parser;

static int fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Appends a literal run to every string of `acc`. */
static int acc_append(strlist *acc, const char *lit, size_t len) {
    if (!len) return 0;
    for (int i = 0; i < acc->n; i++) {
        char *s = cat2(acc->v[i], lit, len);
        if (!s) return -1;
        free(acc->v[i]);
        acc->v[i] = s;
    }
    return 0;
}

/* acc := acc × choices (acc's order outermost). */
static int acc_product(parser *p, strlist *acc, const strlist *choices, size_t col) {
    if ((long long)acc->n * choices->n > p->max_out)
        return fail(p, "the group at column %zu makes more than %d prompts", col, p->max_out);
    strlist out = {0};
    for (int i = 0; i < acc->n; i++)
        for (int j = 0; j < choices->n; j++)
            if (sl_push(&out, cat2(acc->v[i], choices->v[j], strlen(choices->v[j]))) != 0) {
                sl_free(&out);
                snprintf(p->err, p->errlen, "out of memory");
                return -1;
            }
    sl_free(acc);
    *acc = out;
    return 0;
}

static int parse_seq(parser *p, int in_group, strlist *out);

static int parse_group(parser *p, strlist *choices) {
    size_t open_col = p->pos + 1;
    p->pos++; /* '{' */
    p->groups++;
    for (;;) {
        strlist alt = {0};
        if (parse_seq(p, 1, &alt) != 0) { sl_free(&alt); return -1; }
        if (choices->n + alt.n > p->max_out) {
            sl_free(&alt);
            return fail(p, "the group at column %zu makes more than %d prompts", open_col, p->max_out);
        }
        for (int i = 0; i < alt.n; i++) sl_push(choices, alt.v[i]);
        free(alt.v);
        char c = p->s[p->pos];
        if (c == '|') { p->pos++; continue; }
        if (c == '}') { p->pos++; return 0; }
        return fail(p, "'{' at column %zu is never closed", open_col);
    }
}

static int parse_seq(parser *p, int in_group, strlist *out) {
    if (sl_push(out, strdup("")) != 0) { snprintf(p->err, p->errlen, "out of memory"); return -1; }
    char lit[1024];
    size_t nlit = 0;
    for (;;) {
        char c = p->s[p->pos];
        int special = c == 0 || c == '{' || c == '}' || (in_group && c == '|');
        if (special || nlit == sizeof lit) {
            if (acc_append(out, lit, nlit) != 0) { snprintf(p->err, p->errlen, "out of memory"); return -1; }
            nlit = 0;
        }
        if (c == 0) return 0;
        if (c == '{') {
            size_t col = p->pos + 1;
            strlist choices = {0};
            int rc = parse_group(p, &choices);
            if (rc == 0) rc = acc_product(p, out, &choices, col);
            sl_free(&choices);
            if (rc != 0) return -1;
            continue;
        }
        if (c == '}') {
            if (in_group) return 0;
            return fail(p, "'}' at column %zu has no matching '{' (write \\} for a literal brace)", p->pos + 1);
        }
        if (in_group && c == '|') return 0;
        if (c == '\\' && (p->s[p->pos + 1] == '{' || p->s[p->pos + 1] == '}' || p->s[p->pos + 1] == '|')) {
            lit[nlit++] = p->s[p->pos + 1];
            p->pos += 2;
            continue;
        }
        lit[nlit++] = c;
        p->pos++;
    }
}

/* Collapses runs of blanks to one space and trims both ends, in place. */
static void clean_spaces(char *s) {
    char *w = s;
    int pending = 0;
    for (const char *r = s; *r; r++) {
        if (*r == ' ' || *r == '\t') { pending = 1; continue; }
        if (pending && w != s) *w++ = ' ';
        pending = 0;
        *w++ = *r;
    }
    *w = 0;
}

int expand_prompt(const char *text, int max_out, char ***out, int *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    parser p = {.s = text, .max_out = max_out, .err = err, .errlen = errlen};
    strlist res = {0};
    if (parse_seq(&p, 0, &res) != 0) { sl_free(&res); return -1; }
    if (p.groups)
        for (int i = 0; i < res.n; i++) clean_spaces(res.v[i]);
    *out = res.v;
    *n = res.n;
    return 0;
}

void expand_free(char **v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* ---- seeds ---- */

int expand_parse_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static void trim_copy(char *dst, size_t cap, const char *a, size_t len) {
    while (len && (*a == ' ' || *a == '\t')) { a++; len--; }
    while (len && (a[len - 1] == ' ' || a[len - 1] == '\t')) len--;
    if (len >= cap) len = cap - 1;
    memcpy(dst, a, len);
    dst[len] = 0;
}

int expand_seeds(const char *spec, int max_out, uint64_t **out, int *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    uint64_t *v = NULL;
    int cnt = 0, cap = 0;
    const char *item = spec;
    for (;;) {
        const char *end = strchr(item, ',');
        size_t len = end ? (size_t)(end - item) : strlen(item);
        char buf[64], a[64], b[64];
        if (len >= sizeof buf) { snprintf(err, errlen, "\"%.40s...\" is not a seed or a range A:B", item); goto bad; }
        trim_copy(buf, sizeof buf, item, len);
        uint64_t lo, hi;
        char *colon = strchr(buf, ':');
        if (colon) {
            trim_copy(a, sizeof a, buf, (size_t)(colon - buf));
            trim_copy(b, sizeof b, colon + 1, strlen(colon + 1));
            if (expand_parse_u64(a, &lo) || expand_parse_u64(b, &hi)) {
                snprintf(err, errlen, "\"%s\" is not a seed range A:B of whole numbers 0..2^64-1", buf);
                goto bad;
            }
            if (hi < lo) { snprintf(err, errlen, "seed range \"%s\" ends before it starts", buf); goto bad; }
        } else {
            if (expand_parse_u64(buf, &lo)) {
                snprintf(err, errlen, "\"%s\" is not a seed (a whole number 0..2^64-1) or a range A:B", buf);
                goto bad;
            }
            hi = lo;
        }
        if (hi - lo >= (uint64_t)(max_out - cnt)) {
            snprintf(err, errlen, "seed list \"%s\" has more than %d seeds", spec, max_out);
            goto bad;
        }
        int add = (int)(hi - lo + 1);
        if (cnt + add > cap) {
            cap = (cnt + add) * 2;
            uint64_t *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) { snprintf(err, errlen, "out of memory"); goto bad; }
            v = nv;
        }
        for (int i = 0; i < add; i++) v[cnt++] = lo + (uint64_t)i;
        if (!end) break;
        item = end + 1;
    }
    *out = v;
    *n = cnt;
    return 0;
bad:
    free(v);
    return -1;
}
