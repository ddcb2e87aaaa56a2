/* expand.c — prompt variation syntax and seed lists for `sd batch` (see expand.h for the rules). */
#include "expand.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the template: a tree of sequences, groups and literal runs in one node array ---- */

enum { N_LIT, N_SEQ, N_GROUP };

typedef struct enode {
    int kind;
    int child, next;        /* first child and next sibling, -1 for none */
    long long count;        /* expansions of this node */
    long long stride;       /* in its parent sequence: expansions of the items after it (mixed radix) */
    size_t off, len;        /* N_LIT: its text in lit */
} enode;

struct expand_tmpl {
    enode *n;
    int nn, cap;
    char *lit;              /* every literal run, escapes resolved; an expansion is never longer */
    size_t nlit, litcap;
    int root;               /* an N_SEQ */
    int groups;             /* any group: expansions get their spaces cleaned up */
};

typedef struct parser {
    const char *s;
    size_t pos;
    int max_out;
    expand_tmpl *t;
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

static int new_node(parser *p, int kind) {
    expand_tmpl *t = p->t;
    if (t->nn == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        enode *g = realloc(t->n, (size_t)cap * sizeof *g);
        if (!g) return fail(p, "out of memory");
        t->n = g;
        t->cap = cap;
    }
    t->n[t->nn] = (enode){kind, -1, -1, 1, 1, 0, 0};
    return t->nn++;
}

static int lit_char(parser *p, char c) {
    expand_tmpl *t = p->t;
    if (t->nlit + 1 >= t->litcap) {
        size_t cap = t->litcap ? t->litcap * 2 : 64;
        char *g = realloc(t->lit, cap);
        if (!g) return fail(p, "out of memory");
        t->lit = g;
        t->litcap = cap;
    }
    t->lit[t->nlit++] = c;
    return 0;
}

/* Appends child to parent's list (last = the current last child, updated). */
static void link_child(expand_tmpl *t, int parent, int *last, int child) {
    if (*last < 0) t->n[parent].child = child;
    else t->n[*last].next = child;
    *last = child;
}

static int parse_group(parser *p, int depth, int *out);

/* seq := (text | group)*, ending at the end of the text or, inside a group (depth > 0), at '|' or '}'.
 * The count of the sequence is the product of its groups' counts, checked as each group closes. */
static int parse_seq(parser *p, int depth, int *out) {
    expand_tmpl *t = p->t;
    int seq = new_node(p, N_SEQ), last = -1;
    if (seq < 0) return -1;
    long long count = 1;
    size_t lit_start = t->nlit;
    for (;;) {
        char c = p->s[p->pos];
        int ends = c == 0 || c == '}' || (depth > 0 && c == '|');
        if ((ends || c == '{') && t->nlit > lit_start) { /* close the literal run so far */
            int l = new_node(p, N_LIT);
            if (l < 0) return -1;
            t->n[l].off = lit_start;
            t->n[l].len = t->nlit - lit_start;
            link_child(t, seq, &last, l);
        }
        if (c == '}' && depth == 0)
            return fail(p, "'}' at column %zu has no matching '{' (write \\} for a literal brace)", p->pos + 1);
        if (ends) break;
        if (c == '{') {
            size_t col = p->pos + 1;
            if (depth == EXPAND_MAX_DEPTH)
                return fail(p, "the group at column %zu nests more than %d groups deep", col, EXPAND_MAX_DEPTH);
            int g = -1;
            if (parse_group(p, depth + 1, &g) != 0) return -1;
            link_child(t, seq, &last, g);
            count *= t->n[g].count; /* both <= max_out <= INT_MAX: no overflow */
            if (count > p->max_out) return fail(p, "the group at column %zu makes more than %d prompts", col, p->max_out);
            lit_start = t->nlit;
            continue;
        }
        if (c == '\\' && (p->s[p->pos + 1] == '{' || p->s[p->pos + 1] == '}' || p->s[p->pos + 1] == '|')) p->pos++;
        if (lit_char(p, p->s[p->pos]) != 0) return -1;
        p->pos++;
    }
    t->n[seq].count = count;
    long long rest = count; /* the last item varies fastest */
    for (int c = t->n[seq].child; c >= 0; c = t->n[c].next) {
        rest /= t->n[c].count;
        t->n[c].stride = rest;
    }
    *out = seq;
    return 0;
}

static int parse_group(parser *p, int depth, int *out) {
    expand_tmpl *t = p->t;
    size_t open_col = p->pos + 1;
    p->pos++; /* '{' */
    t->groups++;
    int g = new_node(p, N_GROUP), last = -1;
    if (g < 0) return -1;
    long long count = 0;
    for (;;) {
        int alt = -1;
        if (parse_seq(p, depth, &alt) != 0) return -1;
        link_child(t, g, &last, alt);
        count += t->n[alt].count;
        if (count > p->max_out) return fail(p, "the group at column %zu makes more than %d prompts", open_col, p->max_out);
        char c = p->s[p->pos];
        if (c == '|') { p->pos++; continue; }
        if (c == '}') { p->pos++; break; }
        return fail(p, "'{' at column %zu is never closed", open_col);
    }
    t->n[g].count = count;
    *out = g;
    return 0;
}

void expand_tmpl_free(expand_tmpl *t) {
    if (!t) return;
    free(t->n);
    free(t->lit);
    free(t);
}

int expand_parse(const char *text, int max_out, expand_tmpl **out, char *err, size_t errlen) {
    *out = NULL;
    expand_tmpl *t = calloc(1, sizeof *t);
    if (!t) { snprintf(err, errlen, "out of memory"); return -1; }
    parser p = {.s = text, .max_out = max_out < 1 ? 1 : max_out, .t = t, .err = err, .errlen = errlen};
    if (parse_seq(&p, 0, &t->root) != 0) { expand_tmpl_free(t); return -1; }
    *out = t;
    return 0;
}

int expand_count(const expand_tmpl *t) { return (int)t->n[t->root].count; }

/* Writes expansion k of node i at buf + *n. Recursion is as deep as the groups nest (bounded). */
static void gen(const expand_tmpl *t, int i, long long k, char *buf, size_t *n) {
    const enode *e = &t->n[i];
    if (e->kind == N_LIT) {
        memcpy(buf + *n, t->lit + e->off, e->len);
        *n += e->len;
    } else if (e->kind == N_SEQ) {
        for (int c = e->child; c >= 0; c = t->n[c].next) gen(t, c, (k / t->n[c].stride) % t->n[c].count, buf, n);
    } else {
        int c = e->child;
        while (k >= t->n[c].count) {
            k -= t->n[c].count;
            c = t->n[c].next;
        }
        gen(t, c, k, buf, n);
    }
}

/* Collapses runs of blanks to one space and trims both ends, in place. */
static void clean_spaces(char *s) {
    char *w = s;
    const char *r = s + strspn(s, " \t");
    while (*r) {
        size_t word = strcspn(r, " \t"); /* whole runs at a time: prompts can be kilobytes, expansions many */
        if (w != s) *w++ = ' ';
        memmove(w, r, word);
        w += word;
        r += word;
        r += strspn(r, " \t");
    }
    *w = 0;
}

/* buf holds t->nlit + 1 bytes: an expansion uses each literal run at most once. */
static void nth_into(const expand_tmpl *t, int k, char *buf) {
    size_t n = 0;
    gen(t, t->root, k, buf, &n);
    buf[n] = 0;
    if (t->groups) clean_spaces(buf);
}

char *expand_nth(const expand_tmpl *t, int k) {
    if (k < 0 || k >= expand_count(t)) return NULL;
    char *buf = malloc(t->nlit + 1);
    if (buf) nth_into(t, k, buf);
    return buf;
}

int expand_each(const char *text, int max_out, int (*fn)(void *user, int k, const char *s), void *user, char *err,
                size_t errlen) {
    expand_tmpl *t;
    if (expand_parse(text, max_out, &t, err, errlen) != 0) return -1;
    char *buf = malloc(t->nlit + 1);
    int rc = 0;
    if (!buf) { snprintf(err, errlen, "out of memory"); rc = -1; }
    for (int k = 0; buf && k < expand_count(t) && rc == 0; k++) {
        nth_into(t, k, buf);
        rc = fn(user, k, buf);
    }
    free(buf);
    expand_tmpl_free(t);
    return rc;
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
