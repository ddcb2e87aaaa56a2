/* test_tok_prompt.c — prompt weighting (A1111's published doctest examples and hand-derived cases), 77-token
 * windows against tools/goldens_tokenizer.py, the emphasis step against torch, and the `sd tokenize` printer. */
#include "test.h"
#include "../core/error.h"
#include "../core/safetensors.h"
#include "../text_encoder/prompt.h"
#include "../text_encoder/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct { const char *text; const char *weight; int is_break; } seg_want; /* weight as Python prints it */

static void check_parse(const char *prompt, const seg_want *want, int n) {
    clip_segments s;
    sd_status st = clip_parse_attention(prompt, &s);
    CHECK_MSG(st == SD_OK, "\"%s\": %s", prompt, sd_last_error());
    if (st) return;
    CHECK_MSG(s.n == n, "\"%s\": %d segments, expected %d", prompt, s.n, n);
    for (int i = 0; i < n && i < s.n; i++) {
        CHECK_MSG(!strcmp(s.v[i].text, want[i].text), "\"%s\" segment %d: \"%s\", expected \"%s\"", prompt, i, s.v[i].text, want[i].text);
        CHECK_MSG(s.v[i].is_break == want[i].is_break, "\"%s\" segment %d: break flag", prompt, i);
        /* exact: the same products in the same order as Python gives the same double */
        if (!want[i].is_break)
            CHECK_MSG(s.v[i].weight == strtod(want[i].weight, NULL), "\"%s\" segment %d: weight %.17g, expected %s",
                      prompt, i, s.v[i].weight, want[i].weight);
    }
    clip_segments_free(&s);
}

#define PARSE(prompt, ...)                                                     \
    do {                                                                       \
        static const seg_want w_[] = {__VA_ARGS__};                            \
        check_parse(prompt, w_, (int)(sizeof w_ / sizeof *w_));                \
    } while (0)

/* The examples in the docstring of A1111's modules/prompt_parser.py parse_prompt_attention (facts.md §3.4). */
TEST(prompt_parse_a1111_doc_examples) {
    PARSE("normal text", {"normal text", "1.0", 0});
    PARSE("an (important) word", {"an ", "1.0", 0}, {"important", "1.1", 0}, {" word", "1.0", 0});
    PARSE("(unbalanced", {"unbalanced", "1.1", 0});
    PARSE("\\(literal\\]", {"(literal]", "1.0", 0});
    PARSE("(unnecessary)(parens)", {"unnecessaryparens", "1.1", 0});
    PARSE("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
          {"a ", "1.0", 0}, {"house", "1.5730000000000004", 0}, {" ", "1.1", 0}, {"on", "1.0", 0},
          {" a ", "1.1", 0}, {"hill", "0.55", 0}, {", sun, ", "1.1", 0}, {"sky", "1.4641000000000006", 0},
          {".", "1.1", 0});
}

/* Cases derived by hand from the syntax (weights written as Python evaluates the same products). */
TEST(prompt_parse_rules) {
    PARSE("", {"", "1.0", 0});
    PARSE("[a]", {"a", "0.9090909090909091", 0});                       /* 1 * (1 / 1.1) */
    PARSE("((a))", {"a", "1.2100000000000002", 0});                     /* 1 * 1.1 * 1.1 */
    PARSE("[[a]] b", {"a", "0.8264462809917354", 0}, {" b", "1.0", 0});
    PARSE("( a : 1.5 )", {" a ", "1.5", 0});                            /* spaces around the number */
    PARSE("(a:-1) (b:+.5) (c:2.)", {"a", "-1.0", 0}, {" ", "1.0", 0}, {"b", "0.5", 0}, {" ", "1.0", 0}, {"c", "2.0", 0});
    PARSE("a:1.5) b", {"a:1.5) b", "1.0", 0});                          /* no open bracket: plain text */
    PARSE("[a:1.5) b]", {"a:1.5) b", "0.9090909090909091", 0});         /* ":1.5)" closes round brackets only */
    PARSE("a) b] c", {"a) b] c", "1.0", 0});
    PARSE("((a) b", {"a", "1.2100000000000002", 0}, {" b", "1.1", 0});  /* unclosed: closed at the end with 1.1 */
    PARSE("(a [b", {"a ", "1.1", 0}, {"b", "1.0", 0});                  /* 1.1 then / 1.1 = 1.0 exactly */
    PARSE("a\\b \\\\ c", {"ab \\ c", "1.0", 0});                        /* a lone backslash vanishes; \\ is one */
    PARSE("x: y", {"x: y", "1.0", 0});
    PARSE("a BREAK b", {"a", "1.0", 0}, {"BREAK", "", 1}, {"b", "1.0", 0});
    PARSE("a\n BREAK\tb", {"a", "1.0", 0}, {"BREAK", "", 1}, {"b", "1.0", 0});
    PARSE("aBREAK b BREAKx BREAK_ break", {"aBREAK b BREAKx BREAK_ break", "1.0", 0});
    PARSE("BREAK", {"", "1.0", 0}, {"BREAK", "", 1}, {"", "1.0", 0});
    PARSE("a BREAK BREAK b", {"a", "1.0", 0}, {"BREAK", "", 1}, {"", "1.0", 0}, {"BREAK", "", 1}, {"b", "1.0", 0});
    PARSE("(x)BREAK", {"x", "1.1", 0}, {"", "1.0", 0}, {"BREAK", "", 1}, {"", "1.0", 0});
    /* our deliberate difference: BREAK inside brackets still breaks */
    PARSE("(a BREAK b)", {"a", "1.1", 0}, {"BREAK", "", 1}, {"b", "1.1", 0});
    PARSE("caf\xC3\xA9 BREAK \xE6\x97\xA5", {"caf\xC3\xA9", "1.0", 0}, {"BREAK", "", 1}, {"\xE6\x97\xA5", "1.0", 0});
    PARSE("\xC3\xA9" "BREAK x", {"\xC3\xA9" "BREAK x", "1.0", 0});     /* é is a word character: no boundary */

    static const char *bad[] = {"(a:1.2.3)", "(a:.)", "(a:+.)", "(a:1..)"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        clip_segments s;
        CHECK_MSG(clip_parse_attention(bad[k], &s) == SD_ERR_ARG, "\"%s\" accepted", bad[k]);
        CHECK_STR_CONTAINS(sd_last_error(), "is not a valid weight");
    }
    /* weights past a float's range became inf in the embedding (a black picture, exit 0): refused, quoted; a product
     * of nested weights too, and of a thousand nested brackets (1.1^1000) */
    char huge[128], nested[128], deep[2100];
    snprintf(huge, sizeof huge, "(a:1%040d)", 0);
    snprintf(nested, sizeof nested, "((a:1%030d):1%030d)", 0, 0);
    memset(deep, '(', 1000);
    deep[1000] = 'a';
    memset(deep + 1001, ')', 1000);
    deep[2001] = 0;
    const struct { const char *prompt, *want; } over[] = {
        {huge, "prompt: \"10000000000000000000000000000000000000000\" is too large a weight (beyond a float's 3.4e38) in "
               "\"(a:10000000000000000000000000000000000000000)\""},
        {"(a:-999999999999999999999999999999999999999)", "\"-999999999999999999999999999999999999999\" is too large a weight"},
        {nested, "prompt: the weight of \"a\" is too large (1e+60: nested weights multiply past 3.4e38)"},
        {deep, "prompt: the weight of \"a\" is too large"},
    };
    for (size_t k = 0; k < sizeof over / sizeof *over; k++) {
        clip_segments s;
        CHECK_MSG(clip_parse_attention(over[k].prompt, &s) == SD_ERR_ARG, "case %zu accepted", k);
        CHECK_STR_CONTAINS(sd_last_error(), over[k].want);
    }
    clip_segments s; /* the largest float still parses */
    REQUIRE(clip_parse_attention("(a:340000000000000000000000000000000000000)", &s) == SD_OK);
    CHECK(s.n == 1 && (float)s.v[0].weight == 3.4e38f);
    clip_segments_free(&s);
}

/* Windows of A1111 prompts (weights, BREAK, comma backtrack, SD2 zero padding) against the golden model. */
TEST(prompt_windows_golden) {
    st_file *f;
    REQUIRE(st_open(test_path("golden/tokenizer/prompts.safetensors"), &f) == SD_OK);
    cJSON *prompts = cJSON_Parse(st_meta(f, "prompts"));
    REQUIRE(cJSON_IsArray(prompts));
    const clip_tokenizer *t = clip_tokenizer_default();
    int n = cJSON_GetArraySize(prompts), windows = 0;
    for (int i = 0; i < n; i++) {
        const char *name = cJSON_GetObjectItem(cJSON_GetArrayItem(prompts, i), "name")->valuestring;
        const char *prompt = cJSON_GetObjectItem(cJSON_GetArrayItem(prompts, i), "prompt")->valuestring;
        for (int pz = 0; pz < 2; pz++) {
            char ki[32], kw[32];
            snprintf(ki, sizeof ki, "ids%d.%d", pz, i);
            snprintf(kw, sizeof kw, "w%d.%d", pz, i);
            const st_tensor *ti = st_find(f, ki), *tw = st_find(f, kw);
            REQUIRE(ti && tw && ti->ndim == 2 && ti->shape[1] == CLIP_CONTEXT);
            int64_t nw;
            float *w = st_load_f32(f, kw, &nw);
            int32_t *ids = malloc((size_t)ti->numel * sizeof *ids);
            memcpy(ids, ti->data, (size_t)ti->numel * sizeof *ids);
            clip_prompt_opts o = {CLIP_TOK_HF, pz, 0, CLIP_COMMA_BACKTRACK, NULL, 0};
            clip_chunks c;
            REQUIRE_MSG(clip_prompt_chunks(t, prompt, &o, &c) == SD_OK, "%s: %s", name, sd_last_error());
            CHECK_MSG(c.n == ti->shape[0], "%s (pad_zero %d): %d windows, golden %d", name, pz, c.n, (int)ti->shape[0]);
            if (c.n == ti->shape[0]) {
                CHECK_MSG(!memcmp(c.ids, ids, (size_t)ti->numel * sizeof *ids), "%s (pad_zero %d): ids differ", name, pz);
                CHECK_MSG(!memcmp(c.weights, w, (size_t)nw * sizeof *w), "%s (pad_zero %d): weights differ", name, pz);
            }
            windows += c.n;
            clip_chunks_free(&c);
            free(ids);
            free(w);
        }
    }
    test_note("%d prompts, %d windows identical to the reference (ids and f32 weights bit for bit)", n, windows);
    cJSON_Delete(prompts);
    st_close(f);
}

/* The comma backtrack and BREAK, checked structurally with ids from clip_encode (independent of the goldens). */
TEST(prompt_backtrack_and_break_structure) {
    const clip_tokenizer *t = clip_tokenizer_default();
    char prompt[2048] = "";
    for (int i = 0; i < 12; i++) strcat(prompt, "a big red house on hill, "); /* 7 tokens each, comma last */
    clip_chunks c;
    REQUIRE(clip_prompt_chunks(t, prompt, NULL, &c) == SD_OK);
    REQUIRE(c.n == 2);
    /* 75 tokens would end inside the 11th phrase; the 5 tokens after the 10th comma move to window 2 */
    CHECK_EQ_INT(c.lens[0], 70);
    CHECK_EQ_INT(c.ids[70], 267);
    CHECK_EQ_INT(c.ids[71], CLIP_EOS);
    int32_t phrase[8];
    REQUIRE(clip_encode(t, "a big red house on hill,", 0, phrase, 8) == 7);
    for (int i = 0; i < 7; i++) CHECK(c.ids[CLIP_CONTEXT + 1 + i] == phrase[i]);
    CHECK_EQ_INT(c.lens[1], 84 - 70);
    clip_chunks_free(&c);

    clip_prompt_opts nob = {0, 0, 0, 0, NULL, 0}; /* backtrack off: a hard cut at 75 */
    REQUIRE(clip_prompt_chunks(t, prompt, &nob, &c) == SD_OK);
    CHECK(c.n == 2 && c.lens[0] == 75 && c.lens[1] == 9);
    clip_chunks_free(&c);

    REQUIRE(clip_prompt_chunks(t, "a cat BREAK a dog", NULL, &c) == SD_OK);
    int32_t dog[4];
    REQUIRE(clip_encode(t, "a dog", 0, dog, 4) == 2);
    CHECK(c.n == 2 && c.lens[0] == 2 && c.lens[1] == 2 && c.ids[CLIP_CONTEXT + 1] == dog[0] && c.ids[CLIP_CONTEXT + 2] == dog[1]);
    CHECK(c.ids[CLIP_CONTEXT] == CLIP_BOS && c.ids[2 * CLIP_CONTEXT - 1] == CLIP_EOS);
    clip_chunks_free(&c);

    /* literal (diffusers) mode: syntax is text, one window, the rest dropped */
    clip_prompt_opts lit = {0, 0, 1, 0, NULL, 0};
    REQUIRE(clip_prompt_chunks(t, prompt, &lit, &c) == SD_OK);
    CHECK(c.n == 1 && c.lens[0] == 75 && c.dropped == 9 && c.tokens == 75);
    clip_chunks_free(&c);
}

/* A1111 "Original" emphasis against torch float32 (random hidden states and weights). */
TEST(prompt_emphasis_vs_torch) {
    st_file *f;
    REQUIRE(st_open(test_path("golden/tokenizer/emphasis.safetensors"), &f) == SD_OK);
    for (int k = 0; k < 3; k++) {
        char name[32];
        int64_t nz, nw, no;
        snprintf(name, sizeof name, "z.%d", k);
        const st_tensor *tz = st_find(f, name);
        REQUIRE(tz && tz->ndim == 2);
        float *z = st_load_f32(f, name, &nz), *z2 = st_load_f32(f, name, &nz);
        snprintf(name, sizeof name, "w.%d", k);
        float *w = st_load_f32(f, name, &nw);
        snprintf(name, sizeof name, "out.%d", k);
        float *want = st_load_f32(f, name, &no);
        snprintf(name, sizeof name, "nonorm.%d", k);
        float *want2 = st_load_f32(f, name, &no);
        int tokens = (int)tz->shape[0], C = (int)tz->shape[1];
        clip_apply_emphasis(z, tokens, C, w, 1);
        clip_apply_emphasis(z2, tokens, C, w, 0);
        double worst = 0;
        for (int64_t i = 0; i < nz; i++) worst = fmax(worst, fabs((double)z[i] - want[i]));
        test_note("emphasis [%d, %d]: max |ours - torch| = %.3g", tokens, C, worst);
        CHECK_MAXERR(z, want, nz, 1e-6);
        CHECK_MAXERR(z2, want2, nz, 0); /* one float multiply: exact */
        free(z); free(z2); free(w); free(want); free(want2);
    }
    st_close(f);
    float zero[4] = {1, -1, 2, -2}, ws[2] = {1, 1};
    clip_apply_emphasis(zero, 2, 2, ws, 1); /* weighted mean 0: no division by zero */
    CHECK(zero[0] == 1 && zero[3] == -2);
}

static char *print_to_string(const char *prompt, const clip_prompt_opts *o, int verbose, sd_status *st) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *st = clip_print_tokens(f, clip_tokenizer_default(), prompt, o, verbose);
    fclose(f);
    return buf;
}

TEST(prompt_print_tokens) {
    sd_status st;
    char *s = print_to_string("a photo of a cat", NULL, 0, &st);
    CHECK(st == SD_OK && !strcmp(s, "49406 320 1125 539 320 2368 49407\n"));
    free(s);
    s = print_to_string("a photo of a (cat:1.3)", NULL, 1, &st);
    CHECK(st == SD_OK);
    CHECK_STR_CONTAINS(s, "# 5 tokens in 1 window of 77");
    CHECK_STR_CONTAINS(s, "    2   1125       1  photo</w>");
    CHECK_STR_CONTAINS(s, "    5   2368     1.3  cat</w>");
    CHECK_STR_CONTAINS(s, "    6  49407       1  <|endoftext|>");
    CHECK_STR_CONTAINS(s, "(70 padding tokens, id 49407)");
    free(s);
    clip_prompt_opts sd2 = {CLIP_TOK_BANG_PAD, 1, 1, 0, NULL, 0};
    s = print_to_string("caf\xC3\xA9!", &sd2, 1, &st); /* HF: caf\xC3\xA9</w> is one token; "!" is the pad id 0 */
    CHECK_STR_CONTAINS(s, "    1  15304       1  caf\xC3\xA9</w>");
    CHECK_STR_CONTAINS(s, "    2      0       1  !\n");
    CHECK_STR_CONTAINS(s, "(73 padding tokens, id 0)");
    free(s);
    /* U+1D4A5 is two tokens in HF, F0 9D 92 and A5</w>: bytes that are no character alone print as \xNN */
    s = print_to_string("\xF0\x9D\x92\xA5 x\xFF", NULL, 1, &st);
    CHECK_STR_CONTAINS(s, "# warning: 1 invalid UTF-8 sequence replaced with U+FFFD");
    CHECK_STR_CONTAINS(s, "  \\xF0\\x9D\\x92\n");
    CHECK_STR_CONTAINS(s, "  \\xA5</w>\n");
    CHECK_STR_CONTAINS(s, "  \xEF\xBF\xBD</w>\n");
    free(s);
    char long_prompt[4000] = "";
    for (int i = 0; i < 90; i++) strcat(long_prompt, "cat ");
    s = print_to_string(long_prompt, NULL, 0, &st);
    CHECK_STR_CONTAINS(s, "# window 2 of 2\n49406 2368");
    free(s);
    clip_prompt_opts lit = {0, 0, 1, 0, NULL, 0};
    s = print_to_string(long_prompt, &lit, 0, &st);
    CHECK_STR_CONTAINS(s, "# 15 tokens past the 75-token limit were dropped");
    free(s);
    s = print_to_string("(x:1.2.3)", NULL, 0, &st);
    CHECK(st == SD_ERR_ARG);
    CHECK_STR_CONTAINS(sd_last_error(), "\"1.2.3\" is not a valid weight in \"(x:1.2.3)\"");
    free(s);
}

/* Pathological syntax: deep nesting, thousands of brackets and breaks — finishes, no crash. */
TEST(prompt_pathological_syntax) {
    const clip_tokenizer *t = clip_tokenizer_default();
    size_t n = 60000;
    char *p = malloc(n + 1);
    /* 3750 brackets left open, each closed at the end with 1.1: the first words weigh 1.1^3750, inf as a float */
    for (size_t i = 0; i < n; i++) p[i] = "((a)[b]:\\ BREAK,"[i % 16];
    p[n] = 0;
    clip_chunks c;
    CHECK(clip_prompt_chunks(t, p, NULL, &c) == SD_ERR_ARG);
    CHECK_STR_CONTAINS(sd_last_error(), "nested weights multiply past 3.4e38");
    for (size_t i = 0; i < n; i++) p[i] = "((a)[b]):\\ BREAK,"[i % 17]; /* the same, closed */
    sd_status st = clip_prompt_chunks(t, p, NULL, &c);
    CHECK_MSG(st == SD_OK, "%s", sd_last_error());
    if (st == SD_OK) {
        CHECK(c.n > 100);
        clip_chunks_free(&c);
    }
    for (size_t i = 0; i < n; i++) p[i] = i < n / 2 ? '(' : ')';
    REQUIRE(clip_prompt_chunks(t, p, NULL, &c) == SD_OK);
    CHECK(c.n == 1 && c.lens[0] == 0);
    clip_chunks_free(&c);
    free(p);
}
