/* tokenizer.c — CLIP byte-level BPE: vocabulary built from the embedded merges (or read from vocab.json +
 * merges.txt), text cleaning, the pre-tokenizer pattern, and merges by rank. Facts: reference/facts.md §3.1–3.2. */
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../core/error.h"
#include "../core/fileio.h"
#include "unicode.h"

/* The open_clip merges file, embedded by merges_blob.c. */
extern const unsigned char clip_merges_gz[], clip_merges_gz_end[];

#define NO_STR UINT32_MAX
#define CLIP_MERGES 48894 /* lines 1..48894 of the file: 49152 - 256 byte tokens - 2 specials */

struct clip_tokenizer {
    int n;               /* vocabulary size (max id + 1) */
    uint32_t *off;       /* [n] offset of each string in pool, NO_STR for a gap */
    char *pool;
    size_t pool_len, pool_cap;
    int32_t *str_slot;   /* string -> id: open addressing, -1 empty */
    uint32_t str_mask;
    uint64_t *pair_key;  /* (left id, right id) -> rank, merged id */
    int32_t *pair_rank, *pair_res;
    uint32_t pair_mask;
    int nmerges;
    int32_t byte_id[256], byte_end_id[256]; /* initial BPE symbols: the byte's character, and with "</w>" */
    int32_t bos, eos, bang;
    int is_default;
};

/* ---------------------------------------------------------------- byte <-> character table (facts §3.1) */

static int printable_byte(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

/* Bytes that are printable Latin-1 stand for themselves; the other 68 take U+0100, U+0101, ... in byte order. */
static uint32_t byte_char(int b) {
    if (printable_byte(b)) return (uint32_t)b;
    uint32_t n = 0;
    for (int i = 0; i < b; i++) n += !printable_byte(i);
    return 256 + n;
}

static int char_byte(uint32_t c) { /* inverse of byte_char, -1 if c is not one of the 256 characters */
    if (c < 256) return printable_byte((int)c) ? (int)c : -1;
    for (int b = 0; b < 256; b++)
        if (byte_char(b) == c) return b;
    return -1;
}

/* ---------------------------------------------------------------- construction */

static uint32_t hash_str(const char *s, size_t len) { /* FNV-1a */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static uint32_t hash_pair(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (uint32_t)k;
}

static uint32_t pow2_at_least(size_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

static clip_tokenizer *tok_new(int n) {
    clip_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n = n;
    t->off = malloc((size_t)n * sizeof *t->off);
    if (!t->off) { free(t); return NULL; }
    for (int i = 0; i < n; i++) t->off[i] = NO_STR;
    return t;
}

void clip_tokenizer_free(clip_tokenizer *t) {
    if (!t || t->is_default) return;
    free(t->off);
    free(t->pool);
    free(t->str_slot);
    free(t->pair_key);
    free(t->pair_rank);
    free(t->pair_res);
    free(t);
}

/* Stores the string of `id` (NUL-terminated in the pool). */
static int tok_set(clip_tokenizer *t, int id, const char *s, size_t len) {
    if (t->pool_len + len + 1 > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 1 << 16;
        while (t->pool_len + len + 1 > cap) cap *= 2;
        char *p = realloc(t->pool, cap);
        if (!p) return -1;
        t->pool = p;
        t->pool_cap = cap;
    }
    if (t->pool_len > UINT32_MAX - len - 1) return -1;
    memcpy(t->pool + t->pool_len, s, len);
    t->pool[t->pool_len + len] = 0;
    t->off[id] = (uint32_t)t->pool_len;
    t->pool_len += len + 1;
    return 0;
}

static int lookup(const clip_tokenizer *t, const char *s, size_t len) {
    for (uint32_t h = hash_str(s, len) & t->str_mask;; h = (h + 1) & t->str_mask) {
        int32_t id = t->str_slot[h];
        if (id < 0) return -1;
        const char *v = t->pool + t->off[id];
        if (!strncmp(v, s, len) && v[len] == 0) return id;
    }
}

/* Builds the string -> id index (a later id wins for a repeated string, as in a Python dict) and the byte
 * symbols, and checks the special tokens exist. */
static sd_status tok_index(clip_tokenizer *t, const char *what) {
    t->str_mask = pow2_at_least((size_t)t->n * 2) - 1;
    t->str_slot = malloc(((size_t)t->str_mask + 1) * sizeof *t->str_slot);
    if (!t->str_slot) return err_fail(SD_ERR_MEMORY, "%s: out of memory", what);
    memset(t->str_slot, 0xff, ((size_t)t->str_mask + 1) * sizeof *t->str_slot);
    for (int id = 0; id < t->n; id++) {
        if (t->off[id] == NO_STR) continue;
        const char *s = t->pool + t->off[id];
        size_t len = strlen(s);
        uint32_t h = hash_str(s, len) & t->str_mask;
        while (t->str_slot[h] >= 0 && strcmp(t->pool + t->off[t->str_slot[h]], s)) h = (h + 1) & t->str_mask;
        t->str_slot[h] = id;
    }
    for (int b = 0; b < 256; b++) {
        char buf[12];
        int k = clip_utf8_put(byte_char(b), buf);
        t->byte_id[b] = lookup(t, buf, (size_t)k);
        memcpy(buf + k, "</w>", 4);
        t->byte_end_id[b] = lookup(t, buf, (size_t)k + 4);
    }
    t->bos = lookup(t, "<|startoftext|>", 15);
    t->eos = lookup(t, "<|endoftext|>", 13);
    t->bang = lookup(t, "!", 1);
    if (t->bos < 0 || t->eos < 0)
        return err_fail(SD_ERR_FORMAT, "%s: the vocabulary has no <|startoftext|> / <|endoftext|> token", what);
    return SD_OK;
}

static int merge_slot(const clip_tokenizer *t, uint64_t key) {
    for (uint32_t h = hash_pair(key) & t->pair_mask;; h = (h + 1) & t->pair_mask) {
        if (t->pair_rank[h] < 0 || t->pair_key[h] == key) return (int)h;
    }
}

static sd_status merges_alloc(clip_tokenizer *t, int nmerges) {
    t->pair_mask = pow2_at_least((size_t)nmerges * 2) - 1;
    size_t cap = (size_t)t->pair_mask + 1;
    t->pair_key = malloc(cap * sizeof *t->pair_key);
    t->pair_rank = malloc(cap * sizeof *t->pair_rank);
    t->pair_res = malloc(cap * sizeof *t->pair_res);
    if (!t->pair_key || !t->pair_rank || !t->pair_res) return err_fail(SD_ERR_MEMORY, "tokenizer: out of memory");
    memset(t->pair_rank, 0xff, cap * sizeof *t->pair_rank);
    return SD_OK;
}

/* Adds merge "left right" (one line of the merges file) with the next rank. The first occurrence of a pair
 * keeps its rank. */
static sd_status merge_add(clip_tokenizer *t, const char *line, size_t len, const char *what, int lineno) {
    const char *sp = memchr(line, ' ', len);
    if (!sp || sp == line || sp + 1 == line + len || memchr(sp + 1, ' ', (size_t)(line + len - sp - 1)))
        return err_fail(SD_ERR_FORMAT, "%s: line %d is not \"left right\"", what, lineno);
    size_t la = (size_t)(sp - line), lb = len - la - 1;
    int a = lookup(t, line, la), b = lookup(t, sp + 1, lb);
    char stack[256], *joined = la + lb <= sizeof stack ? stack : malloc(la + lb);
    if (!joined) return err_fail(SD_ERR_MEMORY, "%s: out of memory", what);
    memcpy(joined, line, la);
    memcpy(joined + la, sp + 1, lb);
    int r = lookup(t, joined, la + lb);
    if (joined != stack) free(joined);
    if (a < 0 || b < 0 || r < 0)
        return err_fail(SD_ERR_FORMAT, "%s: line %d: merge \"%.*s\" uses a token missing from the vocabulary", what,
                       lineno, (int)(len > 80 ? 80 : len), line);
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    int h = merge_slot(t, key);
    if (t->pair_rank[h] < 0) {
        t->pair_key[h] = key;
        t->pair_rank[h] = t->nmerges;
        t->pair_res[h] = r;
    }
    t->nmerges++;
    return SD_OK;
}

/* Inflates the start of the embedded .gz until `lines` newlines are in (the file holds 262k lines; we need 49k). */
static sd_status inflate_lines(int lines, char **out, size_t *out_len) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return err_fail(SD_ERR_MEMORY, "tokenizer: zlib init failed");
    size_t cap = 600000, len = 0;
    char *buf = malloc(cap);
    if (!buf) { inflateEnd(&z); return err_fail(SD_ERR_MEMORY, "tokenizer: out of memory"); }
    z.next_in = (unsigned char *)clip_merges_gz;
    z.avail_in = (unsigned)(clip_merges_gz_end - clip_merges_gz);
    int seen = 0, rc = Z_OK;
    while (seen < lines && rc != Z_STREAM_END) {
        if (len + 65536 > cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) { free(buf); inflateEnd(&z); return err_fail(SD_ERR_MEMORY, "tokenizer: out of memory"); }
            buf = p;
            cap *= 2;
        }
        z.next_out = (unsigned char *)buf + len;
        z.avail_out = 65536;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            free(buf);
            inflateEnd(&z);
            return err_fail(SD_ERR_FORMAT, "tokenizer: embedded merges are corrupt (zlib error %d)", rc);
        }
        size_t got = 65536 - z.avail_out;
        for (size_t i = len; i < len + got; i++) seen += buf[i] == '\n';
        len += got;
    }
    inflateEnd(&z);
    *out = buf;
    *out_len = len;
    return SD_OK;
}

sd_status clip_tokenizer_embedded(clip_tokenizer **out) {
    char *text = NULL;
    size_t len = 0;
    clip_tokenizer *t = NULL;
    sd_status st = inflate_lines(CLIP_MERGES + 1, &text, &len);
    if (st) goto fail;
    st = SD_ERR_MEMORY;
    if (!(t = tok_new(CLIP_VOCAB_SIZE))) goto fail;
    /* ids 0..255: the byte characters in table order (printable bytes first); 256..511 the same + "</w>". */
    int id = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            if (printable_byte(b) != (pass == 0)) continue;
            char buf[12];
            int k = clip_utf8_put(byte_char(b), buf);
            memcpy(buf + k, "</w>", 4);
            if (tok_set(t, id, buf, (size_t)k) || tok_set(t, id + 256, buf, (size_t)k + 4)) goto fail;
            id++;
        }
    /* ids 512..49405: each merge's concatenation, in file order (line 0 is a header). Two passes over the
     * lines: strings first, then (with the string index built) the merge table. */
    for (int pass = 0; pass < 2; pass++) {
        const char *p = memchr(text, '\n', len), *end = text + len;
        for (int i = 0; i < CLIP_MERGES; i++) {
            if (!p || p + 1 >= end) { st = err_fail(SD_ERR_FORMAT, "tokenizer: embedded merges are truncated"); goto fail; }
            const char *s = p + 1;
            p = memchr(s, '\n', (size_t)(end - s));
            size_t l = (size_t)((p ? p : end) - s);
            if (pass == 1) {
                if ((st = merge_add(t, s, l, "embedded merges", i + 1))) goto fail;
                continue;
            }
            const char *sp = memchr(s, ' ', l);
            char joined[128];
            if (!sp || l > sizeof joined) { st = err_fail(SD_ERR_FORMAT, "tokenizer: embedded merges line %d is malformed", i + 1); goto fail; }
            size_t la = (size_t)(sp - s);
            memcpy(joined, s, la);
            memcpy(joined + la, sp + 1, l - la - 1);
            if (tok_set(t, 512 + i, joined, l - 1)) goto fail;
        }
        if (pass == 0) {
            if (tok_set(t, CLIP_BOS, "<|startoftext|>", 15) || tok_set(t, CLIP_EOS, "<|endoftext|>", 13)) goto fail;
            if ((st = tok_index(t, "tokenizer")) || (st = merges_alloc(t, CLIP_MERGES))) goto fail;
        }
    }
    free(text);
    *out = t;
    return SD_OK;
fail:
    if (st == SD_ERR_MEMORY && !strstr(sd_last_error(), "memory")) err_fail(st, "tokenizer: out of memory");
    free(text);
    clip_tokenizer_free(t);
    *out = NULL;
    return st;
}

static clip_tokenizer *g_default;
static char g_default_err[512];

static void build_default(void) {
    if (clip_tokenizer_embedded(&g_default)) snprintf(g_default_err, sizeof g_default_err, "%s", sd_last_error());
    else g_default->is_default = 1;
}

const clip_tokenizer *clip_tokenizer_default(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, build_default);
    if (!g_default) err_fail(SD_ERR_MEMORY, "%s", g_default_err);
    return g_default;
}

/* vocab.json and merges.txt of CLIP are about 1 MB and 0.5 MB; anything far larger is not a tokenizer */
#define TOKENIZER_FILE_MAX (64u << 20)

sd_status clip_tokenizer_from_text(const char *vocab_json, const char *vtext, size_t vlen, const char *merges_txt,
                                   const char *m, size_t mlen, clip_tokenizer **out) {
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(vtext, vlen);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_fail(SD_ERR_FORMAT, "%s: not a JSON object of token -> id", vocab_json);
    }
    int maxid = -1, count = 0;
    for (cJSON *e = root->child; e; e = e->next, count++) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!(v >= 0 && v <= 1 << 20) || v != (int)v || !e->string || !e->string[0]) {
            cJSON_Delete(root);
            return err_fail(SD_ERR_FORMAT, "%s: entry %d is not \"token\": id with 0 <= id <= 2^20", vocab_json, count);
        }
        if ((int)v > maxid) maxid = (int)v;
    }
    clip_tokenizer *t = tok_new(maxid + 1);
    sd_status st = SD_OK;
    if (!t) { cJSON_Delete(root); return err_fail(SD_ERR_MEMORY, "%s: out of memory", vocab_json); }
    for (cJSON *e = root->child; e; e = e->next) {
        int id = (int)e->valuedouble;
        if (t->off[id] != NO_STR) { st = err_fail(SD_ERR_FORMAT, "%s: id %d is used twice", vocab_json, id); break; }
        if (tok_set(t, id, e->string, strlen(e->string))) { st = err_fail(SD_ERR_MEMORY, "%s: out of memory", vocab_json); break; }
    }
    cJSON_Delete(root);
    if (!st) st = tok_index(t, vocab_json);
    if (st) { clip_tokenizer_free(t); return st; }

    int nlines = 1;
    for (size_t i = 0; i < mlen; i++) nlines += m[i] == '\n';
    if (!(st = merges_alloc(t, nlines))) {
        int lineno = 0;
        for (const char *s = m; s < m + mlen && !st;) {
            const char *nl = memchr(s, '\n', (size_t)(m + mlen - s));
            size_t l = (size_t)((nl ? nl : m + mlen) - s);
            lineno++;
            if (l && s[l - 1] == '\r') l--;
            if (l && !(lineno == 1 && l >= 8 && !strncmp(s, "#version", 8))) st = merge_add(t, s, l, merges_txt, lineno);
            s = nl ? nl + 1 : m + mlen;
        }
    }
    if (st) { clip_tokenizer_free(t); return st; }
    *out = t;
    return SD_OK;
}

sd_status clip_tokenizer_load(const char *vocab_json, const char *merges_txt, clip_tokenizer **out) {
    *out = NULL;
    char *v, *m;
    size_t vlen, mlen;
    sd_status st = file_read(vocab_json, TOKENIZER_FILE_MAX, &v, &vlen);
    if (st != SD_OK) return st;
    if ((st = file_read(merges_txt, TOKENIZER_FILE_MAX, &m, &mlen)) != SD_OK) { free(v); return st; }
    st = clip_tokenizer_from_text(vocab_json, v, vlen, merges_txt, m, mlen, out);
    free(v);
    free(m);
    return st;
}

/* ---------------------------------------------------------------- lookups */

int clip_vocab_size(const clip_tokenizer *t) { return t->n; }

const char *clip_token_str(const clip_tokenizer *t, int id) {
    return id >= 0 && id < t->n && t->off[id] != NO_STR ? t->pool + t->off[id] : NULL;
}

int clip_token_id(const clip_tokenizer *t, const char *s) { return lookup(t, s, strlen(s)); }

int clip_token_bytes(const clip_tokenizer *t, int id, char *buf, int cap, int *word_end) {
    const char *s = clip_token_str(t, id);
    *word_end = 0;
    if (!s) return 0;
    size_t len = strlen(s);
    if (len >= 4 && !strcmp(s + len - 4, "</w>")) { *word_end = 1; len -= 4; }
    clip_u32s cps = {0};
    if (clip_utf8_decode(s, len, &cps) < 0) return 0;
    int n = 0;
    for (size_t i = 0; i < cps.n; i++) {
        int b = char_byte(cps.cp[i]);
        char tmp[4];
        int k = b >= 0 ? (tmp[0] = (char)b, 1) : clip_utf8_put(cps.cp[i], tmp); /* specials are plain text */
        for (int j = 0; j < k; j++, n++)
            if (n < cap) buf[n] = tmp[j];
    }
    clip_u32s_free(&cps);
    return n;
}

/* ---------------------------------------------------------------- BPE */

typedef struct { int32_t *v; int n, cap; } ivec;

static int ivec_push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 64;
        int32_t *p = realloc(a->v, (size_t)cap * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

static int pair_rank(const clip_tokenizer *t, int32_t a, int32_t b, int32_t *res) {
    if (a < 0 || b < 0) return INT_MAX;
    int h = merge_slot(t, (uint64_t)(uint32_t)a << 32 | (uint32_t)b);
    if (t->pair_rank[h] < 0) return INT_MAX;
    *res = t->pair_res[h];
    return t->pair_rank[h];
}

/* Merge candidates: the pair starting at symbol `pos`, whose right symbol was `right` when it was queued. */
typedef struct { int32_t rank, pos, right; } cand;

static int cand_less(cand a, cand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(cand *h, int *n, cand c) {
    int i = (*n)++;
    while (i > 0 && cand_less(c, h[(i - 1) / 2])) { h[i] = h[(i - 1) / 2]; i = (i - 1) / 2; }
    h[i] = c;
}

static cand heap_pop(cand *h, int *n) {
    cand top = h[0], last = h[--*n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(h[c + 1], h[c])) c++;
        if (!cand_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* One pre-token (UTF-8 bytes) -> ids: start from one symbol per byte, "</w>" on the last, then merge the
 * lowest-ranked adjacent pair, leftmost first, until none is in the table. A heap of candidate pairs keeps long
 * words (a pasted blob without spaces) at n log n instead of n^2. */
static int bpe_word(const clip_tokenizer *t, const unsigned char *b, int n, ivec *out) {
    enum { SMALL = 64 };
    int32_t s_sym[SMALL], s_next[SMALL], s_prev[SMALL];
    cand s_heap[3 * SMALL];
    int32_t *sym = s_sym, *next = s_next, *prev = s_prev;
    cand *heap = s_heap;
    if (n > SMALL) {
        sym = malloc((size_t)n * sizeof *sym);
        next = malloc((size_t)n * sizeof *next);
        prev = malloc((size_t)n * sizeof *prev);
        heap = malloc((size_t)n * 3 * sizeof *heap);
        if (!sym || !next || !prev || !heap) { free(sym); free(next); free(prev); free(heap); return -1; }
    }
    int nh = 0;
    int32_t res;
    for (int i = 0; i < n; i++) {
        sym[i] = i == n - 1 ? t->byte_end_id[b[i]] : t->byte_id[b[i]];
        next[i] = i + 1 < n ? i + 1 : -1;
        prev[i] = i - 1;
    }
    for (int i = 0; i + 1 < n; i++) {
        int r = pair_rank(t, sym[i], sym[i + 1], &res);
        if (r != INT_MAX) heap_push(heap, &nh, (cand){r, i, i + 1});
    }
    while (nh) {
        cand c = heap_pop(heap, &nh);
        int r2 = c.pos >= 0 && sym[c.pos] >= -1 && next[c.pos] == c.right ? pair_rank(t, sym[c.pos], sym[c.right], &res) : INT_MAX;
        if (r2 != c.rank) continue; /* stale: one of its symbols has merged since */
        sym[c.pos] = res;
        int gone = c.right;
        next[c.pos] = next[gone];
        if (next[gone] >= 0) prev[next[gone]] = c.pos;
        sym[gone] = INT32_MIN; /* dead */
        next[gone] = -2;
        if (prev[c.pos] >= 0 && (r2 = pair_rank(t, sym[prev[c.pos]], sym[c.pos], &res)) != INT_MAX)
            heap_push(heap, &nh, (cand){r2, prev[c.pos], c.pos});
        if (next[c.pos] >= 0 && (r2 = pair_rank(t, sym[c.pos], sym[next[c.pos]], &res)) != INT_MAX)
            heap_push(heap, &nh, (cand){r2, c.pos, next[c.pos]});
    }
    int rc = 0;
    for (int i = n ? 0 : -1; i >= 0 && !rc; i = next[i]) rc = ivec_push(out, sym[i] >= 0 ? sym[i] : t->eos); /* unknown -> unk */
    if (sym != s_sym) { free(sym); free(next); free(prev); free(heap); }
    return rc;
}

/* ---------------------------------------------------------------- cleaning and pre-tokenizing */

/* Python str.lower()'s final-sigma rule, approximated: letters stand for "cased", apostrophes, periods, colons,
 * middle dot and combining marks for "case-ignorable". Only used by the FTFY variants. */
static int sigma_is_final(const clip_u32s *s, size_t i) {
#define IGNORABLE(c) ((c) == '\'' || (c) == '.' || (c) == ':' || (c) == 0xB7 || (c) == 0x2019 || ((c) >= 0x300 && (c) <= 0x36F))
    size_t j = i;
    while (j > 0 && IGNORABLE(s->cp[j - 1])) j--;
    if (j == 0 || clip_uni_class(s->cp[j - 1]) != CLIP_UNI_LETTER) return 0;
    j = i + 1;
    while (j < s->n && IGNORABLE(s->cp[j])) j++;
    return j == s->n || clip_uni_class(s->cp[j]) != CLIP_UNI_LETTER;
#undef IGNORABLE
}

/* Cleans one text segment in place. Whitespace runs are not collapsed: the pre-tokenizer treats every
 * whitespace character as a separator, so collapsing (and stripping) cannot change the pieces. */
static int clean(clip_u32s *s, unsigned flags) {
    if (flags & CLIP_TOK_FTFY) {
        if (clip_uni_ftfy(s)) return -1;
        if ((flags & CLIP_TOK_HTML) && (clip_uni_html_unescape(s) || clip_uni_html_unescape(s))) return -1;
    } else if (clip_uni_nfc(s)) {
        return -1;
    }
    clip_u32s o = {0};
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->cp[i];
        int rc;
        if (c == 0x130) rc = clip_u32s_push(&o, 'i') || clip_u32s_push(&o, 0x307);
        else if (c == 0x3A3 && (flags & CLIP_TOK_FTFY) && sigma_is_final(s, i)) rc = clip_u32s_push(&o, 0x3C2);
        else rc = clip_u32s_push(&o, clip_uni_lower(c));
        if (rc) { clip_u32s_free(&o); return -1; }
    }
    clip_u32s_free(s);
    *s = o;
    return 0;
}

static int match_at(const clip_u32s *s, size_t i, const char *lit) {
    for (size_t k = 0; lit[k]; k++)
        if (i + k >= s->n || s->cp[i + k] != (unsigned char)lit[k]) return 0;
    return 1;
}

enum { SPECIAL_HF, SPECIAL_SLOW, SPECIAL_OPENCLIP };

/* Splits cleaned text with the CLIP pattern
 *   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * and BPE-encodes each piece. The special pieces become their ids in transformers 4's slow tokenizer (its BPE cache
 * is seeded with them); OpenCLIP's pattern names <start_of_text> / <end_of_text> instead. */
static int encode_clean(const clip_tokenizer *t, const clip_u32s *s, int mode, ivec *out) {
    static const char *CONTRACTIONS[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    unsigned char stack[256], *bytes = stack;
    size_t bcap = sizeof stack;
    int rc = 0;
    size_t i = 0;
    while (i < s->n && !rc) {
        size_t j = i;
        int special = -1;
        if (s->cp[i] == '<' && mode != SPECIAL_OPENCLIP) {
            if (match_at(s, i, "<|startoftext|>")) { j = i + 15; special = t->bos; }
            else if (match_at(s, i, "<|endoftext|>")) { j = i + 13; special = t->eos; }
        } else if (s->cp[i] == '<') {
            if (match_at(s, i, "<start_of_text>")) { j = i + 15; special = t->bos; }
            else if (match_at(s, i, "<end_of_text>")) { j = i + 13; special = t->eos; }
        } else if (s->cp[i] == '\'') {
            for (int k = 0; k < 7 && j == i; k++)
                if (match_at(s, i, CONTRACTIONS[k])) j = i + strlen(CONTRACTIONS[k]);
        }
        if (j == i) {
            int cls = clip_uni_class(s->cp[i]);
            if (cls == CLIP_UNI_SPACE) { i++; continue; }
            j = i + 1;
            if (cls == CLIP_UNI_LETTER || cls == CLIP_UNI_OTHER)
                while (j < s->n && clip_uni_class(s->cp[j]) == cls) j++;
        }
        if (special >= 0 && mode != SPECIAL_HF) {
            rc = ivec_push(out, special);
        } else if (special >= 0) {
            /* Hugging Face's ByteLevel step re-splits pieces with the GPT-2 pattern, which cuts the special piece
             * into "<|", the name, "|>" (the only CLIP piece it changes). */
            rc = bpe_word(t, (const unsigned char *)"<|", 2, out) ||
                 bpe_word(t, special == t->bos ? (const unsigned char *)"startoftext" : (const unsigned char *)"endoftext",
                          special == t->bos ? 11 : 9, out) ||
                 bpe_word(t, (const unsigned char *)"|>", 2, out);
        } else {
            size_t nb = 0;
            for (size_t k = i; k < j; k++) {
                if (nb + 4 > bcap) {
                    size_t cap = bcap * 2;
                    unsigned char *p = bytes == stack ? malloc(cap) : realloc(bytes, cap);
                    if (!p) { rc = -1; break; }
                    if (bytes == stack) memcpy(p, stack, nb);
                    bytes = p;
                    bcap = cap;
                }
                nb += (size_t)clip_utf8_put(s->cp[k], (char *)bytes + nb);
            }
            if (!rc) rc = nb > INT_MAX ? -1 : bpe_word(t, bytes, (int)nb, out);
        }
        i = j;
    }
    if (bytes != stack) free(bytes);
    return rc;
}

/* Cleans and encodes code points [from, to) of `all`. */
static int encode_segment(const clip_tokenizer *t, const clip_u32s *all, size_t from, size_t to, unsigned flags, ivec *out) {
    if (from == to) return 0;
    clip_u32s seg = {0};
    int rc = 0;
    for (size_t i = from; i < to && !rc; i++) rc = clip_u32s_push(&seg, all->cp[i]);
    if (!rc) rc = clean(&seg, flags);
    int mode = (flags & CLIP_TOK_HTML) ? SPECIAL_OPENCLIP : (flags & CLIP_TOK_FTFY) ? SPECIAL_SLOW : SPECIAL_HF;
    if (!rc) rc = encode_clean(t, &seg, mode, out);
    clip_u32s_free(&seg);
    return rc;
}

sd_status clip_tokenize(const clip_tokenizer *t, const char *text, size_t len, unsigned flags, clip_ids *out) {
    memset(out, 0, sizeof *out);
    clip_u32s cps = {0};
    ivec ids = {0};
    long bad = clip_utf8_decode(text ? text : "", text ? len : 0, &cps);
    int rc = bad < 0;
    if (!rc && (flags & CLIP_TOK_HTML)) {
        rc = encode_segment(t, &cps, 0, cps.n, flags, &ids);
    } else if (!rc) {
        /* Special tokens typed in the prompt are split off the raw text before any cleaning, as Hugging Face's
         * added-token matching does; with BANG_PAD "!" is one of them. */
        size_t seg = 0, i = 0;
        while (i < cps.n && !rc) {
            int id = -1;
            size_t len_sp = 0;
            if (cps.cp[i] == '<' && match_at(&cps, i, "<|startoftext|>")) { id = t->bos; len_sp = 15; }
            else if (cps.cp[i] == '<' && match_at(&cps, i, "<|endoftext|>")) { id = t->eos; len_sp = 13; }
            else if (cps.cp[i] == '!' && (flags & CLIP_TOK_BANG_PAD) && t->bang >= 0) { id = t->bang; len_sp = 1; }
            if (id < 0) { i++; continue; }
            rc = encode_segment(t, &cps, seg, i, flags, &ids) || ivec_push(&ids, id);
            i += len_sp;
            seg = i;
        }
        if (!rc) rc = encode_segment(t, &cps, seg, cps.n, flags, &ids);
    }
    clip_u32s_free(&cps);
    if (!rc && !ids.v) { /* never NULL, even when empty */
        rc = ivec_push(&ids, 0);
        ids.n = 0;
    }
    if (rc) {
        free(ids.v);
        return err_fail(SD_ERR_MEMORY, "tokenizer: out of memory");
    }
    out->ids = ids.v;
    out->n = ids.n;
    out->replaced = (int)bad;
    return SD_OK;
}

void clip_ids_free(clip_ids *ids) {
    free(ids->ids);
    memset(ids, 0, sizeof *ids);
}

int clip_encode(const clip_tokenizer *t, const char *text, unsigned flags, int32_t *ids, int cap) {
    clip_ids r;
    if (clip_tokenize(t, text, text ? strlen(text) : 0, flags, &r)) return -1;
    for (int i = 0; i < r.n && i < cap; i++) ids[i] = r.ids[i];
    int n = r.n;
    clip_ids_free(&r);
    return n;
}
