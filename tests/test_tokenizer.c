/* test_tokenizer.c — the CLIP BPE tokenizer against Hugging Face CLIPTokenizer, transformers 4's slow tokenizer
 * (ftfy) and OpenCLIP ids made by tools/goldens_tokenizer.py, plus published vectors, loading and bad input. */
#include "test.h"
#include "../core/error.h"
#include "../core/safetensors.h"
#include "../text_encoder/prompt.h"
#include "../text_encoder/tokenizer.h"
#include "../text_encoder/unicode.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

/* An int32 golden tensor as a malloc'ed array (the data may be unaligned in the file). */
static int32_t *load_i32(const st_file *f, const char *name, int64_t *n) {
    const st_tensor *t = st_find(f, name);
    if (!t || t->dtype != ST_I32) return NULL;
    int32_t *v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *v);
    if (t->numel) memcpy(v, t->data, (size_t)t->numel * sizeof *v);
    *n = t->numel;
    return v;
}

static char *unhex(const char *hex, size_t *len) {
    size_t n = strlen(hex) / 2;
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        s[i] = (char)v;
    }
    s[n] = 0;
    *len = n;
    return s;
}

static void print_ids(const char *what, const int32_t *v, int n) {
    char line[400];
    int k = snprintf(line, sizeof line, "%s:", what);
    for (int i = 0; i < n && i < 24 && k < (int)sizeof line - 12; i++) k += snprintf(line + k, sizeof line - (size_t)k, " %d", v[i]);
    test_note("%s%s", line, n > 24 ? " ..." : "");
}

/* facts.md §3.1: the vocabulary layout and the published test vectors. */
TEST(tok_vocab_layout_and_facts_vectors) {
    const clip_tokenizer *t = clip_tokenizer_default();
    REQUIRE_MSG(t, "%s", sd_last_error());
    CHECK_EQ_INT(clip_vocab_size(t), 49408);
    CHECK(!strcmp(clip_token_str(t, 0), "!"));
    CHECK(!strcmp(clip_token_str(t, 1), "\""));
    CHECK(!strcmp(clip_token_str(t, 187), "\xC3\xBF"));      /* ÿ */
    CHECK(!strcmp(clip_token_str(t, 188), "\xC4\x80"));      /* U+0100 for byte 0 */
    CHECK(!strcmp(clip_token_str(t, 220), "\xC4\xA0"));      /* Ġ, the space byte */
    CHECK(!strcmp(clip_token_str(t, 256), "!</w>"));
    CHECK(!strcmp(clip_token_str(t, 476), "\xC4\xA0</w>"));
    CHECK(!strcmp(clip_token_str(t, 512), "in"));
    CHECK(!strcmp(clip_token_str(t, 49405), "jekyll</w>"));
    CHECK(!strcmp(clip_token_str(t, 49406), "<|startoftext|>"));
    CHECK(!strcmp(clip_token_str(t, 49407), "<|endoftext|>"));
    CHECK(clip_token_str(t, 49408) == NULL && clip_token_str(t, -1) == NULL);
    CHECK_EQ_INT(clip_token_id(t, ",</w>"), 267);
    CHECK_EQ_INT(clip_token_id(t, "no such token"), -1);

    static const struct { const char *text; int n; int32_t ids[16]; } V[] = {
        {"a photo of an astronaut riding a horse on mars", 10, {320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496}},
        {"", 0, {0}},
        {"A cat, (masterpiece:1.2), 4k photo!!", 14, {320, 2368, 267, 263, 12066, 281, 272, 269, 273, 2361, 275, 330, 1125, 748}},
        {"hello world", 2, {3306, 1002}},
        {"don't stop", 3, {847, 713, 1691}},
    };
    for (size_t k = 0; k < sizeof V / sizeof *V; k++) {
        int32_t ids[64];
        int n = clip_encode(t, V[k].text, CLIP_TOK_HF, ids, 64);
        CHECK_MSG(n == V[k].n && !memcmp(ids, V[k].ids, (size_t)n * sizeof *ids), "\"%s\": %d ids", V[k].text, n);
    }
    /* the capacity contract: the full count comes back, only cap ids are written */
    int32_t two[3] = {-7, -7, -7};
    CHECK_EQ_INT(clip_encode(t, V[0].text, 0, two, 2), 10);
    CHECK(two[0] == 320 && two[1] == 1125 && two[2] == -7);
}

static void *default_in_thread(void *arg) {
    (void)arg;
    return (void *)clip_tokenizer_default();
}

TEST(tok_default_build_time_and_threads) {
    /* the shared tokenizer exists already in this process: time a private build of the same data */
    struct timespec a, b;
    clip_tokenizer *own;
    clock_gettime(CLOCK_MONOTONIC, &a);
    REQUIRE(clip_tokenizer_embedded(&own) == SD_OK);
    clock_gettime(CLOCK_MONOTONIC, &b);
    test_note("building the embedded tokenizer: %.1f ms (inflate 0.5 MB, 49408 strings, 48894 merges)",
              (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
    int32_t x[8], y[8];
    CHECK(clip_encode(own, "hello world", 0, x, 8) == 2 && clip_encode(clip_tokenizer_default(), "hello world", 0, y, 8) == 2);
    CHECK(x[0] == y[0] && x[1] == y[1]);
    clip_tokenizer_free(own);

    const clip_tokenizer *t = clip_tokenizer_default();
    REQUIRE(t);
    pthread_t th[4];
    void *got[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, default_in_thread, NULL);
    for (int i = 0; i < 4; i++) pthread_join(th[i], &got[i]);
    for (int i = 0; i < 4; i++) CHECK(got[i] == (void *)t);
    clip_tokenizer_free((clip_tokenizer *)t); /* a no-op for the shared one */
    CHECK(clip_tokenizer_default() == t && clip_token_id(t, "in") == 512);
}

/* Levenshtein distance between two id lists: how far a waived case is from the reference. */
static int id_distance(const int32_t *a, int na, const int32_t *b, int nb) {
    int *row = malloc((size_t)(nb + 1) * sizeof *row);
    for (int j = 0; j <= nb; j++) row[j] = j;
    for (int i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= nb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    int d = row[nb];
    free(row);
    return d;
}

/* The only differences from the reference we accept (our ftfy/html subset; the golden script documents the reason),
 * each with the edit distance of our ids from the reference's as measured: a new difference, a waived case that
 * drifts further, or a waiver that is no longer needed fails the test. */
static const struct { const char *name, *variant; int max_distance; } WAIVED[] = {
    {"html_html5_only", "ftfy", 4}, {"html_html5_only", "orig", 4}, /* &checkmark;: 1 id for us 4 */
    {"mojibake", "ftfy", 8},        {"mojibake", "orig", 8},        /* no fix_encoding: 10 ids for 4 */
};
#define NWAIVED (int)(sizeof WAIVED / sizeof *WAIVED)

/* Every golden case in every variant. The waived differences above are reported (not failed), with both id lists,
 * so they stay visible. */
TEST(tok_golden_cases) {
    st_file *f;
    REQUIRE_MSG(st_open(test_path("golden/tokenizer/cases.safetensors"), &f) == SD_OK, "%s", sd_last_error());
    cJSON *cases = cJSON_Parse(st_meta(f, "cases"));
    REQUIRE(cJSON_IsArray(cases));
    const clip_tokenizer *t = clip_tokenizer_default();
    static const struct { const char *key; unsigned flags; } VAR[] = {
        {"hf", CLIP_TOK_HF}, {"bang", CLIP_TOK_BANG_PAD}, {"ftfy", CLIP_TOK_FTFY}, {"orig", CLIP_TOK_ORIGINAL},
    };
    int ncases = cJSON_GetArraySize(cases), match[4] = {0}, known[4] = {0}, waiver_used[NWAIVED] = {0};
    for (int i = 0; i < ncases; i++) {
        cJSON *c = cJSON_GetArrayItem(cases, i);
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        size_t len;
        char *text = unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &len);
        for (int v = 0; v < 4; v++) {
            char key[64];
            snprintf(key, sizeof key, "%s.%d", VAR[v].key, i);
            int64_t n;
            int32_t *want = load_i32(f, key, &n);
            REQUIRE_MSG(want, "missing %s", key);
            clip_ids got;
            REQUIRE(clip_tokenize(t, text, len, VAR[v].flags, &got) == SD_OK);
            int same = got.n == n && !memcmp(got.ids, want, (size_t)n * sizeof *want);
            cJSON *reason = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "known"), VAR[v].key);
            int w = 0;
            while (w < NWAIVED && (strcmp(WAIVED[w].name, name) || strcmp(WAIVED[w].variant, VAR[v].key))) w++;
            if (w < NWAIVED) waiver_used[w] = 1;
            if (same) match[v]++;
            if (w < NWAIVED) CHECK_MSG(!same, "case %s, variant %s now matches the reference: remove its waiver", name, VAR[v].key);
            if (!same && w < NWAIVED) {
                int d = id_distance(got.ids, got.n, want, (int)n);
                known[v]++;
                test_note("waived difference, %s / %s: %s; edit distance %d (bar %d)", name, VAR[v].key,
                          reason ? reason->valuestring : "(the golden gives no reason)", d, WAIVED[w].max_distance);
                CHECK_MSG(reason, "case %s, variant %s: waived here but not documented by tools/goldens_tokenizer.py", name, VAR[v].key);
                CHECK_MSG(d <= WAIVED[w].max_distance, "case %s, variant %s: %d edits from the reference, waived up to %d",
                          name, VAR[v].key, d, WAIVED[w].max_distance);
                print_ids("  reference", want, (int)n);
                print_ids("  ours     ", got.ids, got.n);
            } else if (!same) {
                CHECK_MSG(0, "case %s, variant %s: %d ids, reference %d", name, VAR[v].key, got.n, (int)n);
                print_ids("  reference", want, (int)n);
                print_ids("  ours     ", got.ids, got.n);
            }
            clip_ids_free(&got);
            free(want);
        }
        /* diffusers' 77-token windows: SD 1.x (EOS padding) and SD 2.x / SDXL tokenizer_2 ("!" is pad, id 0) */
        for (int v = 0; v < 2; v++) {
            char key[64];
            snprintf(key, sizeof key, "%s.%d", v ? "bang77" : "hf77", i);
            int64_t n;
            int32_t *want = load_i32(f, key, &n);
            REQUIRE(want && n == CLIP_CONTEXT);
            clip_prompt_opts o = {v ? CLIP_TOK_BANG_PAD : CLIP_TOK_HF, v, 1, 0, NULL, 0};
            clip_chunks ch;
            REQUIRE(clip_prompt_chunks(t, text, &o, &ch) == SD_OK);
            CHECK_MSG(ch.n == 1 && !memcmp(ch.ids, want, CLIP_CONTEXT * sizeof *want), "case %s, %s window", name, key);
            clip_chunks_free(&ch);
            free(want);
        }
        free(text);
    }
    for (int v = 0; v < 4; v++)
        test_note("%-4s: %d of %d cases identical to the reference, %d waived differences", VAR[v].key, match[v],
                  ncases, known[v]);
    for (int w = 0; w < NWAIVED; w++)
        CHECK_MSG(waiver_used[w], "waiver %s / %s names no golden case", WAIVED[w].name, WAIVED[w].variant);
    CHECK(ncases >= 40);
    cJSON_Delete(cases);
    st_close(f);
}

TEST(tok_invalid_utf8_replaced) {
    const clip_tokenizer *t = clip_tokenizer_default();
    clip_ids a, b;
    /* one U+FFFD per maximal ill-formed subsequence, as Python's decode(errors="replace") */
    REQUIRE(clip_tokenize(t, "x\xC3 y\xE2\x82 z\xF0\x9F\x98", 11, 0, &a) == SD_OK);
    REQUIRE(clip_tokenize(t, "x\xEF\xBF\xBD y\xEF\xBF\xBD z\xEF\xBF\xBD", 14, 0, &b) == SD_OK);
    CHECK_EQ_INT(a.replaced, 3);
    CHECK_EQ_INT(b.replaced, 0);
    CHECK(a.n == b.n && !memcmp(a.ids, b.ids, (size_t)a.n * sizeof *a.ids));
    clip_ids_free(&a);
    clip_ids_free(&b);
    /* decoder details: overlong, surrogate, beyond U+10FFFF, truncated */
    clip_u32s s = {0};
    CHECK_EQ_INT(clip_utf8_decode("\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80\xE0\x80", 11, &s), 11);
    CHECK_EQ_INT((long)s.n, 11);
    clip_u32s_free(&s);
    CHECK_EQ_INT(clip_utf8_decode("\xE2\x82\xAC\xF0\x9F\x90\xB1", 7, &s), 0);
    CHECK(s.n == 2 && s.cp[0] == 0x20AC && s.cp[1] == 0x1F431);
    clip_u32s_free(&s);
}

/* Random bytes, random syntax: never a crash (run under ASan by `make asan-test`), ids always in the vocabulary. */
TEST(tok_fuzz_no_crash) {
    const clip_tokenizer *t = clip_tokenizer_default();
    static const char *atoms[] = {"(", ")", "[", "]", ":", "1.5", ":0.", "\\", "BREAK", " ", ",", "!", "a", "cat",
                                  "\xC3", "\xA9", "\xF0\x9F", "\xE2\x80\x9C", "&amp;", "&#", "<|endoftext|>", "\x1B[", "\xCC\x81"};
    uint32_t seed = 12345;
    int bad = 0;
    for (int iter = 0; iter < 1500; iter++) {
        char buf[200];
        size_t n = 0;
        seed = seed * 1664525u + 1013904223u;
        int parts = (int)(seed >> 26);
        for (int k = 0; k < parts; k++) {
            seed = seed * 1664525u + 1013904223u;
            if (seed & 1) {
                const char *a = atoms[(seed >> 8) % (sizeof atoms / sizeof *atoms)];
                size_t l = strlen(a);
                if (n + l < sizeof buf - 1) { memcpy(buf + n, a, l); n += l; }
            } else if (n < sizeof buf - 1) {
                buf[n++] = (char)(1 + (seed >> 9) % 255); /* any byte but NUL */
            }
        }
        buf[n] = 0;
        unsigned flags = (unsigned)iter & 7;
        clip_ids ids;
        REQUIRE(clip_tokenize(t, buf, n, flags, &ids) == SD_OK);
        for (int i = 0; i < ids.n; i++) bad += ids.ids[i] < 0 || ids.ids[i] >= CLIP_VOCAB_SIZE;
        clip_ids_free(&ids);
        clip_prompt_opts o = {flags, iter & 1, (iter >> 3) & 1, 20, NULL, 0};
        clip_chunks ch;
        sd_status st = clip_prompt_chunks(t, buf, &o, &ch);
        if (st == SD_OK) {
            for (int i = 0; i < ch.n * CLIP_CONTEXT; i++) bad += ch.ids[i] < 0 || ch.ids[i] >= CLIP_VOCAB_SIZE;
            clip_chunks_free(&ch);
        } else {
            CHECK_MSG(st == SD_ERR_ARG && strstr(sd_last_error(), "weight"), "unexpected failure: %s", sd_last_error());
        }
    }
    CHECK_EQ_INT(bad, 0);
}

/* NFC against Python's unicodedata on random mixes of bases, precomposed letters, combining marks and jamo. */
TEST(tok_nfc_random_strings) {
    st_file *f;
    REQUIRE(st_open(test_path("golden/tokenizer/nfc.safetensors"), &f) == SD_OK);
    int64_t ni, no;
    int32_t *in = load_i32(f, "in", &ni), *out = load_i32(f, "out", &no);
    REQUIRE(in && out);
    int count = atoi(st_meta(f, "count")), pi = count, po = count, ok = 0;
    for (int k = 0; k < count; k++) {
        clip_u32s s = {0};
        for (int i = 0; i < in[k]; i++) clip_u32s_push(&s, (uint32_t)in[pi + i]);
        REQUIRE(clip_uni_nfc(&s) == 0);
        int same = (int)s.n == out[k];
        for (int i = 0; same && i < out[k]; i++) same = s.cp[i] == (uint32_t)out[po + i];
        ok += same;
        CHECK_MSG(same, "string %d: NFC differs", k);
        pi += in[k];
        po += out[k];
        clip_u32s_free(&s);
    }
    test_note("NFC: %d of %d random strings identical to unicodedata.normalize", ok, count);
    free(in);
    free(out);
    st_close(f);
}

/* A diffusers tokenizer folder (vocab.json + merges.txt, ids permuted, 600 merges) read with cJSON, against HF. */
TEST(tok_load_folder) {
    clip_tokenizer *t;
    char vocab[1400], merges[1400];
    snprintf(vocab, sizeof vocab, "%s", test_path("golden/tokenizer/tiny/vocab.json"));
    snprintf(merges, sizeof merges, "%s", test_path("golden/tokenizer/tiny/merges.txt"));
    REQUIRE_MSG(clip_tokenizer_load(vocab, merges, &t) == SD_OK, "%s", sd_last_error());
    st_file *f;
    REQUIRE(st_open(test_path("golden/tokenizer/tiny.safetensors"), &f) == SD_OK);
    cJSON *texts = cJSON_Parse(st_meta(f, "texts"));
    REQUIRE(cJSON_IsArray(texts));
    for (int i = 0; i < cJSON_GetArraySize(texts); i++) {
        char key[32];
        snprintf(key, sizeof key, "ids.%d", i);
        int64_t n;
        int32_t *want = load_i32(f, key, &n);
        const char *text = cJSON_GetArrayItem(texts, i)->valuestring;
        clip_ids got;
        REQUIRE(clip_tokenize(t, text, strlen(text), 0, &got) == SD_OK);
        CHECK_MSG(got.n == n && !memcmp(got.ids, want, (size_t)n * sizeof *want), "\"%s\": %d ids, HF %d", text, got.n, (int)n);
        clip_ids_free(&got);
        free(want);
    }
    cJSON_Delete(texts);
    st_close(f);
    clip_tokenizer_free(t);
}

static void write_text(const char *path, const char *s) {
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp);
    fputs(s, fp);
    fclose(fp);
}

TEST(tok_load_errors) {
    const char *dir = test_tmpdir();
    char v[600], m[600], missing[600];
    snprintf(v, sizeof v, "%s/vocab.json", dir);
    snprintf(m, sizeof m, "%s/merges.txt", dir);
    snprintf(missing, sizeof missing, "%s/nope.json", dir);
    clip_tokenizer *t = (clip_tokenizer *)1;
    static const struct { const char *vocab, *merges, *expect; } C[] = {
        {"[1, 2]", "#version: 0.2\n", "not a JSON object"},
        {"{\"a\": 1, ", "#version: 0.2\n", "not a JSON object"},
        {"{\"a\": \"x\"}", "#version: 0.2\n", "entry 0"},
        {"{\"a\": -1}", "#version: 0.2\n", "entry 0"},
        {"{\"a\": 99999999}", "#version: 0.2\n", "entry 0"},
        {"{\"a\": 0, \"b\": 0}", "#version: 0.2\n", "id 0 is used twice"},
        {"{\"a\": 0, \"b\": 1}", "#version: 0.2\n", "no <|startoftext|>"},
        {"{\"a\": 0, \"b\": 1, \"<|startoftext|>\": 2, \"<|endoftext|>\": 3}", "#version: 0.2\na b\n", "line 2: merge \"a b\""},
        {"{\"a\": 0, \"b\": 1, \"ab\": 4, \"<|startoftext|>\": 2, \"<|endoftext|>\": 3}", "#version: 0.2\nab\n", "line 2 is not"},
        {"{\"a\": 0, \"b\": 1, \"ab\": 4, \"<|startoftext|>\": 2, \"<|endoftext|>\": 3}", "#version: 0.2\na b c\n", "line 2 is not"},
    };
    for (size_t k = 0; k < sizeof C / sizeof *C; k++) {
        write_text(v, C[k].vocab);
        write_text(m, C[k].merges);
        sd_status st = clip_tokenizer_load(v, m, &t);
        CHECK_MSG(st != SD_OK && t == NULL, "case %zu loaded", k);
        CHECK_STR_CONTAINS(sd_last_error(), C[k].expect);
    }
    CHECK(clip_tokenizer_load(missing, m, &t) == SD_ERR_IO);
    CHECK_STR_CONTAINS(sd_last_error(), "nope.json: cannot open");
    /* a FIFO is refused before anything waits on it (a reader would block until a writer came) */
    REQUIRE(mkfifo(missing, 0600) == 0);
    CHECK(clip_tokenizer_load(v, missing, &t) == SD_ERR_IO && t == NULL);
    CHECK_STR_CONTAINS(sd_last_error(), "nope.json: not a regular file");
    /* a well-formed folder of this size works */
    write_text(v, "{\"a\": 0, \"b\": 1, \"ab</w>\": 4, \"b</w>\": 5, \"<|startoftext|>\": 2, \"<|endoftext|>\": 3}");
    write_text(m, "#version: 0.2\r\na b</w>\r\n");
    REQUIRE_MSG(clip_tokenizer_load(v, m, &t) == SD_OK, "%s", sd_last_error());
    int32_t ids[8];
    CHECK_EQ_INT(clip_encode(t, "ab b", 0, ids, 8), 2);
    CHECK(ids[0] == 4 && ids[1] == 5);
    CHECK_EQ_INT(clip_encode(t, "c", 0, ids, 8), 1); /* no symbol for "c</w>": the unknown token */
    CHECK_EQ_INT(ids[0], 3);
    clip_tokenizer_free(t);
}
