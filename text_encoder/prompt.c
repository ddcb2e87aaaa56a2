/* prompt.c — A1111 emphasis parsing, 75-token chunking with comma backtrack and BREAK, padding, the emphasis
 * step, and the `sd tokenize` printer. Facts: reference/facts.md §3.4. */
#include "prompt.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "unicode.h"

/* ---------------------------------------------------------------- segments */

static int seg_push(clip_segments *s, int *cap, const char *text, size_t len, int is_break) {
    if (s->n == *cap) {
        int c = *cap ? *cap * 2 : 16;
        clip_segment *v = realloc(s->v, (size_t)c * sizeof *v);
        if (!v) return -1;
        s->v = v;
        *cap = c;
    }
    char *t = malloc(len + 1);
    if (!t) return -1;
    memcpy(t, text, len);
    t[len] = 0;
    s->v[s->n++] = (clip_segment){t, 1.0, is_break};
    return 0;
}

void clip_segments_free(clip_segments *s) {
    for (int i = 0; i < s->n; i++) free(s->v[i].text);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static uint32_t cp_at(const char *p, size_t len, size_t i, size_t *n) {
    uint32_t c = clip_utf8_next(p + i, len - i, n);
    return c == CLIP_UTF8_BAD ? 0xFFFD : c;
}

static size_t prev_start(const char *p, size_t i) { /* start of the character before byte i (i > 0) */
    size_t b = i - 1;
    for (int k = 0; k < 3 && b > 0 && ((unsigned char)p[b] & 0xC0) == 0x80; k++) b--;
    return b;
}

/* Python's str.isspace() (what \s means in A1111's `re` patterns): White_Space plus U+001C..U+001F. */
static size_t py_space(const char *p, size_t len, size_t i) {
    size_t n;
    if (i >= len) return 0;
    uint32_t c = cp_at(p, len, i, &n);
    return clip_uni_class(c) == CLIP_UNI_SPACE || (c >= 0x1C && c <= 0x1F) ? n : 0;
}

static int is_word_char(uint32_t c) { /* Python's \w: letters, numbers, '_' */
    int k = clip_uni_class(c);
    return c == '_' || k == CLIP_UNI_LETTER || k == CLIP_UNI_NUMBER;
}

/* Appends plain text, split at each \s*\bBREAK\b\s* into text, marker, text, ... (as re.split would). */
static int push_plain(clip_segments *s, int *cap, const char *p, size_t len) {
    size_t part = 0, i = 0;
    while (i + 5 <= len) {
        if (memcmp(p + i, "BREAK", 5)) { i++; continue; }
        size_t n;
        int before = i == 0 || !is_word_char(cp_at(p, len, prev_start(p, i), &n));
        int after = i + 5 == len || !is_word_char(cp_at(p, len, i + 5, &n));
        if (!before || !after) { i++; continue; }
        /* the match starts where the whitespace run before BREAK starts (not before the previous match's end) */
        size_t start = i;
        while (start > part) {
            size_t b = prev_start(p, start);
            if (py_space(p, len, b) != start - b) break;
            start = b;
        }
        size_t end = i + 5, k;
        while ((k = py_space(p, len, end))) end += k;
        if (seg_push(s, cap, p + part, start - part, 0) || seg_push(s, cap, "BREAK", 5, 1)) return -1;
        part = i = end;
    }
    return seg_push(s, cap, p + part, len - part, 0);
}

static locale_t g_c_locale;
static void init_c_locale(void) { g_c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

/* Python float() of text already matching [+-]?[.\d]+: fails for "1.2.3", "." and the like. strtod in the C
 * locale (a program may have set another) converts; stopping early means float() would have raised. */
double clip_parse_number(const char *p, size_t len, int *ok) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    char *buf = malloc(len + 1);
    *ok = 0;
    if (!buf || len == 0) { free(buf); return 0; }
    memcpy(buf, p, len);
    buf[len] = 0;
    pthread_once(&once, init_c_locale);
    char *end;
    double v = g_c_locale ? strtod_l(buf, &end, g_c_locale) : strtod(buf, &end);
    *ok = end == buf + len;
    free(buf);
    return v;
}

static void multiply(clip_segments *s, int from, double factor) {
    for (int i = from; i < s->n; i++) s->v[i].weight *= factor;
}

/* The weights reach the text encoder as floats: one past FLT_MAX (or a product of nested ones) would scale the
 * embedding to inf and the sampler to NaN, a black picture with no word of why. */
static int fits_float(double w) { return isfinite(w) && fabs(w) <= FLT_MAX; }

/* "prompt: "WEIGHT" WHAT in "(...WEIGHT)"": the weight quoted with its bracket (the last 80 bytes of it). */
static void weight_error(const char *p, size_t open, size_t num, size_t num_end, size_t close, const char *what) {
    size_t from = open, span = close + 1 - from;
    if (span > 80) { from = close + 1 - 80; span = 80; }
    err_fail(SD_ERR_ARG, "prompt: \"%.*s\" %s in \"%s%.*s\"", (int)(num_end - num), p + num, what,
             from > open ? "..." : "", (int)span, p + from);
}

sd_status clip_parse_attention(const char *prompt, clip_segments *out) {
    out->v = NULL;
    out->n = 0;
    int cap = 0, rc = 0;
    size_t len = prompt ? strlen(prompt) : 0;
    const char *p = prompt;
    int *round = malloc((len + 1) * sizeof *round), *square = malloc((len + 1) * sizeof *square);
    size_t *round_at = malloc((len + 1) * sizeof *round_at); /* byte offset of each open '(' (for messages) */
    int nround = 0, nsquare = 0;
    if (!round || !square || !round_at) rc = -1;
    size_t i = 0;
    while (i < len && !rc) {
        char c = p[i];
        if (c == '\\') {
            int esc = i + 1 < len && strchr("()[]\\", p[i + 1]);
            rc = seg_push(out, &cap, p + i + 1, esc ? 1 : 0, 0); /* a lone backslash vanishes */
            i += esc ? 2 : 1;
        } else if (c == '(') {
            round_at[nround] = i;
            round[nround++] = out->n;
            i++;
        } else if (c == '[') {
            square[nsquare++] = out->n;
            i++;
        } else if (c == ':') {
            /* ":\s*([+-]?[.\d]+)\s*\)" closes a round bracket with that weight */
            size_t j = i + 1, k;
            while ((k = py_space(p, len, j))) j += k;
            size_t num = j;
            if (j < len && (p[j] == '+' || p[j] == '-')) j++;
            size_t digits = j;
            while (j < len && (p[j] == '.' || (p[j] >= '0' && p[j] <= '9'))) j++;
            size_t num_end = j;
            while ((k = py_space(p, len, j))) j += k;
            if (num_end > digits && j < len && p[j] == ')') {
                if (nround) {
                    int ok;
                    double w = clip_parse_number(p + num, num_end - num, &ok);
                    if (!ok || !fits_float(w)) {
                        weight_error(p, round_at[nround - 1], num, num_end, j,
                                     ok ? "is too large a weight (beyond a float's 3.4e38)" : "is not a valid weight");
                        rc = -2;
                        break;
                    }
                    multiply(out, round[--nround], w);
                } else {
                    rc = push_plain(out, &cap, p + i, j + 1 - i);
                }
                i = j + 1;
            } else {
                rc = push_plain(out, &cap, p + i, 1);
                i++;
            }
        } else if (c == ')' && nround) {
            multiply(out, round[--nround], 1.1);
            i++;
        } else if (c == ']' && nsquare) {
            multiply(out, square[--nsquare], 1 / 1.1);
            i++;
        } else if (c == ')' || c == ']') {
            rc = push_plain(out, &cap, p + i, 1);
            i++;
        } else {
            size_t j = i;
            while (j < len && !strchr("\\()[]:", p[j])) j++;
            rc = push_plain(out, &cap, p + i, j - i);
            i = j;
        }
    }
    if (!rc) {
        for (int k = 0; k < nround; k++) multiply(out, round[k], 1.1);
        for (int k = 0; k < nsquare; k++) multiply(out, square[k], 1 / 1.1);
        if (out->n == 0) rc = seg_push(out, &cap, "", 0, 0);
    }
    for (int k = 0; k < out->n && !rc; k++)
        if (!out->v[k].is_break && out->v[k].text[0] && !fits_float(out->v[k].weight)) { /* empty text: no token */
            rc = -2;
            err_fail(SD_ERR_ARG, "prompt: the weight of \"%.40s%s\" is too large (%g: nested weights multiply past 3.4e38)",
                     out->v[k].text, strlen(out->v[k].text) > 40 ? "..." : "", out->v[k].weight);
        }
    free(round);
    free(square);
    free(round_at);
    if (rc) {
        clip_segments_free(out);
        return rc == -2 ? SD_ERR_ARG : err_fail(SD_ERR_MEMORY, "prompt: out of memory");
    }
    /* merge neighbours of equal weight (BREAK markers stay apart) */
    int w = 0;
    for (int k = 0; k < out->n; k++) {
        clip_segment *prev = w ? &out->v[w - 1] : NULL, *cur = &out->v[k];
        if (prev && !prev->is_break && !cur->is_break && prev->weight == cur->weight) {
            size_t a = strlen(prev->text), b = strlen(cur->text);
            char *t = realloc(prev->text, a + b + 1);
            if (!t) { /* slots [0, w) and [k, n) own their texts; the rest were moved or freed */
                for (int m = k; m < out->n; m++) free(out->v[m].text);
                out->n = w;
                clip_segments_free(out);
                return err_fail(SD_ERR_MEMORY, "prompt: out of memory");
            }
            memcpy(t + a, cur->text, b + 1);
            prev->text = t;
            free(cur->text);
            cur->text = NULL;
        } else {
            out->v[w++] = *cur;
        }
    }
    out->n = w;
    return SD_OK;
}

/* ---------------------------------------------------------------- windows */

typedef struct {
    int32_t *ids;
    float *w;
    int n, cap;     /* windows */
    int32_t cur[CLIP_CONTEXT];
    float curw[CLIP_CONTEXT];
    int len;        /* tokens in the current window (at most 75) */
    int last_comma; /* index in cur of the last comma, -1 if none since the window began */
    int *lens;      /* [cap] prompt tokens per window */
    int bos, eos, pad_zero, literal;
} builder;

/* Closes the current window: EOS padding to 75, BOS ... EOS around it; SD2 style zeroes after the first EOS. */
static int flush(builder *b) {
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 4;
        int32_t *ids = realloc(b->ids, (size_t)cap * CLIP_CONTEXT * sizeof *ids);
        if (!ids) return -1;
        b->ids = ids;
        float *w = realloc(b->w, (size_t)cap * CLIP_CONTEXT * sizeof *w);
        if (!w) return -1;
        b->w = w;
        int *lens = realloc(b->lens, (size_t)cap * sizeof *lens);
        if (!lens) return -1;
        b->lens = lens;
        b->cap = cap;
    }
    int32_t *ids = b->ids + (size_t)b->n * CLIP_CONTEXT;
    float *w = b->w + (size_t)b->n * CLIP_CONTEXT;
    ids[0] = b->bos;
    w[0] = 1;
    for (int i = 0; i < CLIP_CONTEXT - 2; i++) {
        ids[1 + i] = i < b->len ? b->cur[i] : b->eos;
        w[1 + i] = i < b->len ? b->curw[i] : 1;
    }
    ids[CLIP_CONTEXT - 1] = b->eos;
    w[CLIP_CONTEXT - 1] = 1;
    if (b->pad_zero) {
        /* A1111 zeroes after the first EOS of the window (an EOS typed in the prompt counts); diffusers pads
         * after the closing one */
        int first = b->literal ? b->len + 1 : 0;
        while (ids[first] != b->eos) first++;
        for (int i = first + 1; i < CLIP_CONTEXT; i++) ids[i] = 0;
    }
    b->lens[b->n] = b->len;
    b->n++;
    b->len = 0;
    b->last_comma = -1;
    return 0;
}

/* A1111's tokenize_line loop for one token: what happens before it is placed (a comma noted, or words moved to the
 * next window when this one is full and a comma is near, or the full window closed). */
static int before_token(builder *b, int32_t tok, int comma, int backtrack) {
    enum { FULL = CLIP_CONTEXT - 2 };
    if (tok == comma) {
        b->last_comma = b->len;
    } else if (backtrack && b->len == FULL && b->last_comma != -1 && FULL - b->last_comma <= backtrack) {
        /* the window is full and a comma is near: the words after it move to the next window */
        int keep = b->last_comma + 1, moved = FULL - keep;
        int32_t ids[FULL];
        float ws[FULL];
        memcpy(ids, b->cur + keep, (size_t)moved * sizeof *ids);
        memcpy(ws, b->curw + keep, (size_t)moved * sizeof *ws);
        b->len = keep;
        if (flush(b)) return -1;
        memcpy(b->cur, ids, (size_t)moved * sizeof *ids);
        memcpy(b->curw, ws, (size_t)moved * sizeof *ws);
        b->len = moved;
    }
    if (b->len == FULL && flush(b)) return -1;
    return 0;
}

static int add_token(builder *b, int32_t tok, float w, int comma, int backtrack) {
    if (before_token(b, tok, comma, backtrack)) return -1;
    b->cur[b->len] = tok;
    b->curw[b->len] = w;
    b->len++;
    return 0;
}

/* The longest embedding whose name's ids start ids[0 .. n), or NULL. */
static clip_embedding *embedding_at(const clip_prompt_opts *o, const int32_t *ids, int n) {
    clip_embedding *best = NULL;
    for (int k = 0; k < o->n_emb; k++) {
        clip_embedding *e = &o->emb[k];
        if (e->n_ids > 0 && e->n_ids <= n && (!best || e->n_ids > best->n_ids) && !memcmp(e->ids, ids, (size_t)e->n_ids * sizeof *ids)) best = e;
    }
    return best;
}

/* An embedding's vectors in place of its name: a new window first when they do not fit in this one (A1111). */
static int add_embedding(builder *b, const clip_embedding *e, int32_t first_tok, float w, int comma, int backtrack) {
    if (before_token(b, first_tok, comma, backtrack)) return -1;
    if (b->len + e->vectors > CLIP_CONTEXT - 2 && flush(b)) return -1;
    for (int v = 0; v < e->vectors; v++) {
        b->cur[b->len] = e->first + v;
        b->curw[b->len] = w;
        b->len++;
    }
    return 0;
}

sd_status clip_prompt_chunks(const clip_tokenizer *tok, const char *prompt, const clip_prompt_opts *opts, clip_chunks *out) {
    static const clip_prompt_opts defaults = CLIP_PROMPT_OPTS_DEFAULT;
    if (!opts) opts = &defaults;
    memset(out, 0, sizeof *out);
    if (!tok) return err_fail(SD_ERR_ARG, "prompt: no tokenizer");
    if (!prompt) prompt = "";
    builder b = {0};
    b.bos = clip_token_id(tok, "<|startoftext|>");
    b.eos = clip_token_id(tok, "<|endoftext|>");
    b.last_comma = -1;
    b.pad_zero = opts->pad_zero;
    b.literal = opts->literal;
    int comma = clip_token_id(tok, ",</w>");
    sd_status st = SD_OK;
    int oom = 0;

    if (opts->literal) {
        /* diffusers: tokenizer(prompt, padding="max_length", max_length=77, truncation=True) */
        clip_ids ids;
        if ((st = clip_tokenize(tok, prompt, strlen(prompt), opts->tok_flags, &ids))) return st;
        int keep = ids.n < CLIP_CONTEXT - 2 ? ids.n : CLIP_CONTEXT - 2;
        for (int i = 0; i < keep; i++) { b.cur[i] = ids.ids[i]; b.curw[i] = 1; }
        b.len = keep;
        out->tokens = keep;
        out->dropped = ids.n - keep;
        out->replaced = ids.replaced;
        clip_ids_free(&ids);
        oom = flush(&b);
    } else {
        clip_segments segs;
        if ((st = clip_parse_attention(prompt, &segs))) return st;
        for (int s = 0; s < segs.n && !st && !oom; s++) {
            if (segs.v[s].is_break) { oom = flush(&b); continue; }
            if (!segs.v[s].text[0]) continue;
            clip_ids ids;
            if ((st = clip_tokenize(tok, segs.v[s].text, strlen(segs.v[s].text), opts->tok_flags, &ids))) break;
            out->tokens += ids.n;
            out->replaced += ids.replaced;
            for (int i = 0; i < ids.n && !oom;) {
                clip_embedding *e = embedding_at(opts, ids.ids + i, ids.n - i);
                if (!e) {
                    oom = add_token(&b, ids.ids[i++], (float)segs.v[s].weight, comma, opts->comma_backtrack);
                    continue;
                }
                if (e->vectors < 1 || e->vectors > CLIP_CONTEXT - 2) {
                    st = err_fail(SD_ERR_ARG, "prompt: an embedding of %d vectors cannot fit in a %d-token window", e->vectors, CLIP_CONTEXT - 2);
                    break;
                }
                oom = add_embedding(&b, e, ids.ids[i], (float)segs.v[s].weight, comma, opts->comma_backtrack);
                e->used = 1;
                i += e->n_ids;
            }
            clip_ids_free(&ids);
        }
        clip_segments_free(&segs);
        if (!st && !oom && (b.len || b.n == 0)) oom = flush(&b);
    }
    if (st || oom) {
        free(b.ids);
        free(b.w);
        free(b.lens);
        return st ? st : err_fail(SD_ERR_MEMORY, "prompt: out of memory");
    }
    out->n = b.n;
    out->ids = b.ids;
    out->weights = b.w;
    out->lens = b.lens;
    return SD_OK;
}

void clip_chunks_free(clip_chunks *c) {
    free(c->ids);
    free(c->weights);
    free(c->lens);
    memset(c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- emphasis */

void clip_apply_emphasis(float *h, int tokens, int C, const float *w, int restore_mean) {
    size_t n = (size_t)tokens * (size_t)C;
    if (n == 0) return;
    double s0 = 0, s1 = 0;
    for (size_t i = 0; i < n; i++) s0 += h[i];
    for (int t = 0; t < tokens; t++)
        for (int c = 0; c < C; c++) {
            float *x = &h[(size_t)t * C + c];
            *x *= w[t];
            s1 += *x;
        }
    if (!restore_mean || s1 == 0) return;
    /* torch computes each mean as a float32 and their ratio in float32 */
    float ratio = (float)(s0 / (double)n) / (float)(s1 / (double)n);
    for (size_t i = 0; i < n; i++) h[i] *= ratio;
}

/* ---------------------------------------------------------------- `sd tokenize` */

/* The token's text: its bytes, with bytes that do not form UTF-8 shown as \xNN, and "</w>" at a word end. */
static void put_token(FILE *f, const clip_tokenizer *tok, int id) {
    char buf[256];
    int end;
    int n = clip_token_bytes(tok, id, buf, sizeof buf, &end);
    if (n > (int)sizeof buf) n = sizeof buf;
    for (size_t i = 0; i < (size_t)n;) {
        size_t adv;
        uint32_t c = clip_utf8_next(buf + i, (size_t)n - i, &adv);
        if (c == CLIP_UTF8_BAD || c < 0x20 || c == 0x7F) {
            for (size_t k = 0; k < adv; k++) fprintf(f, "\\x%02X", (unsigned char)buf[i + k]);
        } else {
            fwrite(buf + i, 1, adv, f);
        }
        i += adv;
    }
    if (end) fputs("</w>", f);
}

sd_status clip_print_tokens(FILE *f, const clip_tokenizer *tok, const char *prompt, const clip_prompt_opts *opts, int verbose) {
    clip_chunks c;
    sd_status st = clip_prompt_chunks(tok, prompt, opts, &c);
    if (st) return st;
    if (c.replaced)
        fprintf(f, "# warning: %d invalid UTF-8 sequence%s replaced with U+FFFD\n", c.replaced, c.replaced > 1 ? "s" : "");
    if (verbose)
        fprintf(f, "# %d token%s in %d window%s of %d\n", c.tokens, c.tokens == 1 ? "" : "s", c.n, c.n == 1 ? "" : "s",
                CLIP_CONTEXT);
    for (int k = 0; k < c.n; k++) {
        const int32_t *ids = c.ids + (size_t)k * CLIP_CONTEXT;
        const float *w = c.weights + (size_t)k * CLIP_CONTEXT;
        int last = c.lens[k] + 1; /* the window's closing EOS */
        if (!verbose) {
            if (c.n > 1) fprintf(f, "# window %d of %d\n", k + 1, c.n);
            for (int i = 0; i <= last; i++) fprintf(f, "%s%d", i ? " " : "", ids[i]);
            fputc('\n', f);
            continue;
        }
        fprintf(f, "window %d of %d\n  pos     id  weight  token\n", k + 1, c.n);
        for (int i = 0; i <= last; i++) {
            fprintf(f, "  %3d  %5d  %6.4g  ", i, ids[i], w[i]);
            put_token(f, tok, ids[i]);
            fputc('\n', f);
        }
        if (last < CLIP_CONTEXT - 1)
            fprintf(f, "  (%d padding tokens, id %d)\n", CLIP_CONTEXT - 1 - last, ids[CLIP_CONTEXT - 1]);
    }
    if (c.dropped)
        fprintf(f, "# %d token%s past the 75-token limit %s dropped\n", c.dropped, c.dropped > 1 ? "s" : "",
                c.dropped > 1 ? "were" : "was");
    clip_chunks_free(&c);
    return ferror(f) ? err_fail(SD_ERR_IO, "tokenize: cannot write the output") : SD_OK;
}
