/* test_batch_jobs.c — `sd batch` planning: {a|b} expansion, seed lists, job-file checks with line numbers,
 * name templates and collisions, --shard slices (their union is the whole list, without overlap). */
#include <stdlib.h>
#include <string.h>

#include "../cli/common_flags.h"
#include "../cli/expand.h"
#include "../cli/jobs.h"
#include "../cli/plan.h"
#include "test.h"

/* ---- expansion ---- */

typedef struct want_list {
    const char *text;
    const char *const *want;
    int nwant, n;
} want_list;

/* expand_each's callback: each streamed expansion against the expected list, in order */
static int check_one(void *user, int k, const char *s) {
    want_list *w = user;
    CHECK_EQ_INT(k, w->n);
    if (w->n < w->nwant)
        CHECK_MSG(!strcmp(s, w->want[w->n]), "\"%s\" [%d]: \"%s\", expected \"%s\"", w->text, w->n, s, w->want[w->n]);
    w->n++;
    return 0;
}

static void check_expand(const char *text, const char *const *want, int nwant) {
    char err[256];
    want_list w = {text, want, nwant, 0};
    REQUIRE_MSG(expand_each(text, 1000, check_one, &w, err, sizeof err) == 0, "expand \"%s\": %s", text, err);
    CHECK_MSG(w.n == nwant, "\"%s\": %d expansions, expected %d", text, w.n, nwant);
    /* the template makes the same strings one at a time, in any order */
    expand_tmpl *t;
    REQUIRE(expand_parse(text, 1000, &t, err, sizeof err) == 0);
    CHECK_EQ_INT(expand_count(t), nwant);
    for (int i = nwant - 1; i >= 0; i--) {
        char *s = expand_nth(t, i);
        CHECK_MSG(s && !strcmp(s, want[i]), "\"%s\" nth(%d): \"%s\"", text, i, s ? s : "(null)");
        free(s);
    }
    CHECK(expand_nth(t, nwant) == NULL && expand_nth(t, -1) == NULL);
    expand_tmpl_free(t);
}

static void check_expand_error(const char *text, const char *needle) {
    char err[256] = "";
    want_list w = {text, NULL, 0, 0};
    CHECK_MSG(expand_each(text, 1000, check_one, &w, err, sizeof err) == -1, "\"%s\" should fail", text);
    CHECK_EQ_INT(w.n, 0);
    CHECK_STR_CONTAINS(err, needle);
}

TEST(batch_expand_choices) {
    check_expand("{red|blue|green} car", (const char *[]){"red car", "blue car", "green car"}, 3);
    check_expand("a plain prompt,  kept  as is", (const char *[]){"a plain prompt,  kept  as is"}, 1);
}

TEST(batch_expand_product_order) {
    /* the first group varies slowest, like nested loops read left to right */
    check_expand("{a|b} {x|y|z}", (const char *[]){"a x", "a y", "a z", "b x", "b y", "b z"}, 6);
}

TEST(batch_expand_nested_and_empty) {
    check_expand("{a {big|small}|no} car", (const char *[]){"a big car", "a small car", "no car"}, 3);
    check_expand("{|red } car", (const char *[]){"car", "red car"}, 2);
    check_expand("x{}y", (const char *[]){"xy"}, 1);
}

TEST(batch_expand_escapes) {
    check_expand("\\{x\\} {a|b}", (const char *[]){"{x} a", "{x} b"}, 2);
    check_expand("{a\\|b|c}", (const char *[]){"a|b", "c"}, 2);
    /* a bar outside braces and other backslashes (prompt-weighting escapes) stay as written */
    check_expand("cat|dog \\(big\\)", (const char *[]){"cat|dog \\(big\\)"}, 1);
}

TEST(batch_expand_errors) {
    check_expand_error("{a|b", "column 1 is never closed");
    check_expand_error("x {a|{b}", "column 3 is never closed");
    check_expand_error("a}b", "'}' at column 2");
    /* 2^10 = 1024 > 1000 */
    check_expand_error("{a|b}{a|b}{a|b}{a|b}{a|b}{a|b}{a|b}{a|b}{a|b}{a|b}", "more than 1000 prompts");
    /* a group whose choices add up past the limit: 600 + 600 */
    char wide[4096] = "{", *w = wide + 1;
    for (int i = 0; i < 1200; i++) *w++ = i == 1199 ? '}' : '|';
    *w = 0;
    check_expand_error(wide, "group at column 1 makes more than 1000 prompts");
}

TEST(batch_expand_nesting_limit) {
    /* EXPAND_MAX_DEPTH groups inside each other are fine, one more is refused naming its column */
    char ok[2 * EXPAND_MAX_DEPTH + 4], deep[2 * EXPAND_MAX_DEPTH + 6];
    int n = 0;
    for (int i = 0; i < EXPAND_MAX_DEPTH; i++) ok[n++] = '{';
    ok[n++] = 'x';
    for (int i = 0; i < EXPAND_MAX_DEPTH; i++) ok[n++] = '}';
    ok[n] = 0;
    check_expand(ok, (const char *[]){"x"}, 1);
    snprintf(deep, sizeof deep, "{%s}", ok);
    char want[64];
    snprintf(want, sizeof want, "group at column %d nests more than %d groups deep", EXPAND_MAX_DEPTH + 1, EXPAND_MAX_DEPTH);
    check_expand_error(deep, want);
    /* 20 000 unclosed braces (hostile-repro expand-deep-braces.txt overflowed the stack) */
    char *many = malloc(20001);
    REQUIRE(many);
    memset(many, '{', 20000);
    many[20000] = 0;
    check_expand_error(many, "nests more than");
    free(many);
}

TEST(batch_expand_counts_without_listing) {
    /* nested groups: the choices of a group add up, groups in a row multiply */
    check_expand("{a {b|c} {d|e}|f}", (const char *[]){"a b d", "a b e", "a c d", "a c e", "f"}, 5);
    /* 2^19 expansions are counted, and any one is made on demand, without making the others */
    char text[128] = "";
    for (int i = 0; i < 19; i++) strcat(text, "{a|b}");
    expand_tmpl *t;
    char err[256];
    REQUIRE(expand_parse(text, 1 << 20, &t, err, sizeof err) == 0);
    CHECK_EQ_INT(expand_count(t), 1 << 19);
    char *last = expand_nth(t, (1 << 19) - 1), *mid = expand_nth(t, 5); /* 5 = 101 in binary: the last three groups */
    CHECK(last && !strcmp(last, "bbbbbbbbbbbbbbbbbbb"));
    CHECK(mid && !strcmp(mid, "aaaaaaaaaaaaaaaabab"));
    free(last);
    free(mid);
    expand_tmpl_free(t);
}

TEST(batch_seed_lists) {
    uint64_t *s;
    int n;
    char err[256];
    REQUIRE(expand_seeds("100:115", 1000, &s, &n, err, sizeof err) == 0);
    CHECK_EQ_INT(n, 16); /* inclusive at both ends */
    for (int i = 0; i < n; i++) CHECK_EQ_INT(s[i], 100 + i);
    free(s);
    REQUIRE(expand_seeds(" 1, 5 ,9:11", 1000, &s, &n, err, sizeof err) == 0);
    uint64_t want[] = {1, 5, 9, 10, 11};
    CHECK_EQ_INT(n, 5);
    for (int i = 0; i < n && i < 5; i++) CHECK(s[i] == want[i]);
    free(s);
    REQUIRE(expand_seeds("18446744073709551614:18446744073709551615", 1000, &s, &n, err, sizeof err) == 0);
    CHECK(n == 2 && s[1] == UINT64_MAX);
    free(s);
    const char *bad[] = {"18446744073709551616", "5:3", "abc", "", "1,,2", "-1", "0:99999999", "1:2:3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(expand_seeds(bad[i], 1000, &s, &n, err, sizeof err) == -1, "\"%s\" accepted", bad[i]);
}

/* ---- job files ---- */

static const char *SAMPLERS[] = {"euler", "euler_a", "dpm++2m", "ddim"};
static const char *SCHEDULERS[] = {"discrete", "karras"};
static const jobs_rules NAMES = {SAMPLERS, 4, SCHEDULERS, 2, 0};

static int parse(const char *text, const char *source, const cJSON *defaults, jobs_list *l, jobs_errors *e) {
    memset(e, 0, sizeof *e);
    return jobs_parse(text, strlen(text), source, JOBS_AUTO, defaults, &NAMES, l, e);
}

static int has_error(const jobs_errors *e, const char *prefix, const char *needle) {
    for (int i = 0; i < e->n; i++)
        if (!strncmp(e->msg[i], prefix, strlen(prefix)) && strstr(e->msg[i], needle)) return 1;
    return 0;
}

TEST(batch_jobs_jsonl_good) {
    const char *text =
        "# a comment\n"
        "{\"prompt\": \"a {red|blue} circle\", \"seeds\": \"100:103\", \"steps\": 12, \"sampler\": \"euler_a\","
        " \"size\": \"128x64\", \"cfg_scale\": 5.5, \"negative_prompt\": \"blurry\", \"output\": \"{seed}.png\"}\n"
        "\n"
        "{\"prompt\": \"a star\", \"sampler\": \"Euler A\", \"seed\": \"18446744073709551615\", \"variation_seed\": [1, 2],"
        " \"variation_strength\": 0.25, \"vae_tiling\": true}\r\n";
    jobs_list l;
    jobs_errors e;
    int bad = parse(text, "jobs.jsonl", NULL, &l, &e);
    for (int i = 0; i < e.n; i++) test_note("%s", e.msg[i]);
    REQUIRE(bad == 0);
    REQUIRE(l.count == 2);
    CHECK(l.format == JOBS_JSONL);
    const jobs_job *a = &l.jobs[0], *b = &l.jobs[1];
    CHECK_EQ_INT(a->line, 2);
    CHECK(!strcmp(a->prompt, "a {red|blue} circle"));
    CHECK_EQ_INT(a->nseeds, 4);
    CHECK(a->seeds[0] == 100 && a->seeds[3] == 103);
    CHECK_EQ_INT(jobs_num(a, "width", 0), 128);
    CHECK_EQ_INT(jobs_num(a, "height", 0), 64);
    CHECK_NEAR(jobs_num(a, "cfg", 0), 5.5, 0);
    CHECK(!strcmp(jobs_str(a, "negative", ""), "blurry"));
    CHECK(!strcmp(a->output, "{seed}.png"));
    sd_gen_params p;
    memset(&p, 0, sizeof p);
    p.cfg_scale = -1;
    jobs_apply(a, &p);
    CHECK(p.steps == 12 && p.width == 128 && p.height == 64 && !strcmp(p.sampler, "euler_a"));
    CHECK_NEAR(p.cfg_scale, 5.5, 0);
    CHECK(!strcmp(p.negative_prompt, "blurry"));
    CHECK_EQ_INT(b->line, 4);
    CHECK(jobs_name_equal("Euler a", "euler_a") && jobs_name_equal("DPM++ 2M", "dpm++2m") && !jobs_name_equal("euler", "euler_a"));
    CHECK(b->nseeds == 1 && b->seeds[0] == UINT64_MAX);
    CHECK(b->nvseeds == 2 && b->vseeds[1] == 2);
    CHECK_EQ_INT(jobs_num(b, "vae_tiling", 0), 1);
    CHECK(!strcmp(jobs_str(b, "sampler", ""), "euler_a")); /* stored in the canonical spelling */
    jobs_list_free(&l);
    jobs_errors_free(&e);
}

/* cJSON ends a string at \u0000, so "a\u0000b" would render as "a": refused, naming the line and the key. An escaped
 * backslash before "u0000" is plain text, and a line without the escape parses as before. */
TEST(batch_jobs_nul_escape_refused) {
    const char *text =
        "{\"prompt\": \"a\\u0000b\", \"steps\": 1}\n"                  /* 1 */
        "{\"prompt\": \"ok\", \"negative_prompt\": \"x\\\\u0000\"}\n"  /* 2: a backslash, then u0000 */
        "{\"seeds\": [1, 2], \"name\": \"n\\\"\\u0000\", \"prompt\": \"z\"}\n" /* 3: after an escaped quote */
        "{\"pro\\u0000mpt\": \"q\"}\n";                                  /* 4: in a key */
    jobs_list l;
    jobs_errors e;
    int bad = parse(text, "jobs.jsonl", NULL, &l, &e);
    for (int i = 0; i < e.n; i++) test_note("%s", e.msg[i]);
    CHECK_EQ_INT(bad, 3);
    CHECK_EQ_INT(l.count, 1);
    CHECK(has_error(&e, "jobs.jsonl:1:", "\"prompt\": a string holds \\u0000"));
    CHECK(has_error(&e, "jobs.jsonl:3:", "\"name\": a string holds \\u0000"));
    CHECK(has_error(&e, "jobs.jsonl:4:", "the key starting \"pro\" holds \\u0000"));
    CHECK(l.count == 1 && !strcmp(jobs_str(&l.jobs[0], "negative", ""), "x\\u0000"));
    jobs_list_free(&l);
    jobs_errors_free(&e);
}

TEST(batch_jobs_bad_lines_reported_with_numbers) {
    const char *text =
        "{\"prompt\": \"fine\"}\n"                                   /* 1 */
        "{\"prompt\": \"broken\", \"steps\": }\n"                    /* 2 */
        "{\"prompt\": \"fine\", \"steps\": 5}\n"                     /* 3 */
        "{\"prompt\": \"x\", \"stpes\": 20}\n"                       /* 4 */
        "{\"prompt\": \"x\", \"steps\": 0}\n"                        /* 5 */
        "{\"prompt\": \"x\", \"width\": 100}\n"                      /* 6 */
        "{\"prompt\": \"x\", \"sampler\": \"eulr\"}\n"               /* 7 */
        "[1, 2]\n"                                                   /* 8 */
        "{\"steps\": 20}\n"                                          /* 9 */
        "{\"prompt\": \"x\", \"seed\": -1}\n"                        /* 10 */
        "{\"prompt\": \"x\", \"cfg\": 7, \"cfg_scale\": 7}\n"        /* 11 */
        "{\"prompt\": \"x\", \"seeds\": \"1:4\", \"count\": 2}\n"    /* 12 */
        "{\"prompt\": \"x\", \"steps\": \"20\"}\n"                   /* 13 */
        "{\"prompt\": \"x\", \"variation_seed\": 3}\n"               /* 14 */
        "{\"prompt\": \"x\", \"size\": \"512\"}\n"                   /* 15 */
        "{\"prompt\": \"x\", \"seed\": 1e300}\n"                     /* 16 */
        "{\"prompt\": \"   \"}\n"                                    /* 17 */
        "{\"prompt\": \"x\"} trailing\n";                            /* 18 */
    jobs_list l;
    jobs_errors e;
    int bad = parse(text, "jobs.jsonl", NULL, &l, &e);
    for (int i = 0; i < e.n; i++) test_note("%s", e.msg[i]);
    CHECK_EQ_INT(bad, 16);
    CHECK_EQ_INT(l.count, 2); /* lines 1 and 3 */
    CHECK(has_error(&e, "jobs.jsonl:2:", "invalid JSON at column 31"));
    CHECK(has_error(&e, "jobs.jsonl:4:", "unknown key \"stpes\" (did you mean \"steps\"?)"));
    CHECK(has_error(&e, "jobs.jsonl:5:", "\"steps\" 0 is out of range 1..1000"));
    CHECK(has_error(&e, "jobs.jsonl:6:", "multiple of 8"));
    CHECK(has_error(&e, "jobs.jsonl:7:", "(did you mean \"euler\"?)"));
    CHECK(has_error(&e, "jobs.jsonl:8:", "must be a JSON object"));
    CHECK(has_error(&e, "jobs.jsonl:9:", "no \"prompt\""));
    CHECK(has_error(&e, "jobs.jsonl:10:", "not a seed"));
    CHECK(has_error(&e, "jobs.jsonl:11:", "given twice"));
    CHECK(has_error(&e, "jobs.jsonl:12:", "cannot be combined"));
    CHECK(has_error(&e, "jobs.jsonl:13:", "must be a number, not a string"));
    CHECK(has_error(&e, "jobs.jsonl:14:", "needs \"variation_strength\""));
    CHECK(has_error(&e, "jobs.jsonl:15:", "WIDTHxHEIGHT"));
    CHECK(has_error(&e, "jobs.jsonl:16:", "write the seed as a string"));
    CHECK(has_error(&e, "jobs.jsonl:17:", "\"prompt\" is empty"));
    CHECK(has_error(&e, "jobs.jsonl:18:", "invalid JSON"));
    jobs_list_free(&l);
    jobs_errors_free(&e);
}

TEST(batch_jobs_text_form_with_defaults) {
    cJSON *d = cJSON_CreateObject();
    char err[256];
    REQUIRE(cf_param(d, "--steps", "8", err, sizeof err) == 0);
    REQUIRE(cf_param(d, "--sampler", "ddim", err, sizeof err) == 0);
    REQUIRE(cf_param(d, "--count", "3", err, sizeof err) == 0);
    REQUIRE(cf_param(d, "-s", "40", err, sizeof err) == 0);
    REQUIRE(cf_param(d, "--size", "64x64", err, sizeof err) == 0);
    const char *text = "# prompts\n{red|blue} car\n\n  a green star  \n";
    jobs_list l;
    jobs_errors e;
    REQUIRE(parse(text, "prompts", d, &l, &e) == 0);
    CHECK(l.format == JOBS_TEXT); /* "{red|blue} car" is not JSON */
    REQUIRE(l.count == 2);
    CHECK(!strcmp(l.jobs[0].prompt, "{red|blue} car"));
    CHECK(!strcmp(l.jobs[1].prompt, "a green star"));
    CHECK_EQ_INT(l.jobs[1].line, 4);
    CHECK(l.jobs[0].nseeds == 3 && l.jobs[0].seeds[0] == 40 && l.jobs[0].seeds[2] == 42);
    CHECK_EQ_INT(jobs_num(&l.jobs[0], "steps", 0), 8);
    CHECK_EQ_INT(jobs_num(&l.jobs[0], "width", 0), 64);
    CHECK(!strcmp(jobs_str(&l.jobs[1], "sampler", ""), "ddim"));
    jobs_list_free(&l);
    cJSON_Delete(d);
}

TEST(batch_jobs_seed_layers) {
    /* command line: --count 2 --seed 40; the line's seed keys win key by key, a list replaces both */
    cJSON *d = cJSON_CreateObject();
    char err[256];
    cf_param(d, "--count", "2", err, sizeof err);
    cf_param(d, "--seed", "40", err, sizeof err);
    const char *text = "{\"prompt\": \"a\", \"seed\": 7}\n{\"prompt\": \"b\", \"count\": 3}\n"
                       "{\"prompt\": \"c\", \"seeds\": [5, \"9:10\"]}\n{\"prompt\": \"d\", \"size\": \"64x32\", \"width\": 16}\n";
    jobs_list l;
    jobs_errors e;
    int bad = parse(text, "j.jsonl", d, &l, &e);
    CHECK_EQ_INT(bad, 1);
    CHECK(has_error(&e, "j.jsonl:4:", "not both"));
    REQUIRE(l.count == 3);
    CHECK(l.jobs[0].nseeds == 2 && l.jobs[0].seeds[0] == 7 && l.jobs[0].seeds[1] == 8);
    CHECK(l.jobs[1].nseeds == 3 && l.jobs[1].seeds[0] == 40 && l.jobs[1].seeds[2] == 42);
    CHECK(l.jobs[2].nseeds == 3 && l.jobs[2].seeds[0] == 5 && l.jobs[2].seeds[1] == 9 && l.jobs[2].seeds[2] == 10);
    jobs_list_free(&l);
    jobs_errors_free(&e);

    /* a command-line range applies to lines without seed keys */
    cJSON *d2 = cJSON_CreateObject();
    cf_param(d2, "--seed-range", "100:115", err, sizeof err);
    REQUIRE(parse("x\ny\n", "p.txt", d2, &l, &e) == 0);
    CHECK(l.count == 2 && l.jobs[1].nseeds == 16 && l.jobs[1].seeds[15] == 115);
    jobs_list_free(&l);
    /* ... and clashes with --count */
    cf_param(d2, "--count", "2", err, sizeof err);
    CHECK_EQ_INT(parse("x\n", "p.txt", d2, &l, &e), 1);
    CHECK(has_error(&e, "command line:", "--seed-range cannot be combined"));
    jobs_list_free(&l);
    jobs_errors_free(&e);
    cJSON_Delete(d);
    cJSON_Delete(d2);
}

TEST(batch_jobs_bad_flags) {
    cJSON *d = cJSON_CreateObject();
    char err[256];
    /* a flag's value is checked as its job key is, when the flag is read, under the spelling given */
    CHECK(cf_param(d, "--steps", "ten", err, sizeof err) == -1);
    CHECK_STR_CONTAINS(err, "--steps: \"ten\" is not a number");
    CHECK(cf_param(d, "--cfg", "-3", err, sizeof err) == -1);
    CHECK_STR_CONTAINS(err, "--cfg: -3 is out of range 0..100");
    CHECK(cf_param(d, "--scheduler", "karas", err, sizeof err) == -1);
    CHECK_STR_CONTAINS(err, "did you mean \"karras\"");
    CHECK(cf_param(d, "--no-such-flag", "1", err, sizeof err) == -1);
    CHECK(cf_param(d, "--cfg-scale", "5.5", err, sizeof err) == 0); /* sd generate's spelling of the same key */
    CHECK(cf_param(d, "--sampler", "Euler A", err, sizeof err) == 0);
    CHECK_NEAR(cJSON_GetObjectItem(d, "cfg")->valuedouble, 5.5, 0);
    CHECK(!strcmp(cJSON_GetObjectItem(d, "sampler")->valuestring, "euler_a")); /* the canonical spelling */
    CHECK(cJSON_GetArraySize(d) == 2);
    /* what the flag parser refuses: not finite, not whole, out of range, trailing text; every numeric key */
    const char *bad[][2] = {{"--cfg-scale", "-5"}, {"--cfg-scale", "-inf"}, {"--cfg-scale", "nan"}, {"--cfg-scale", "1e999"},
                            {"--steps", "0"}, {"--steps", "2.5"}, {"--steps", "1e999"}, {"--eta", "inf"}, {"--width", "500"},
                            {"--height", "0x10"}, {"--size", "99999999999x8"}, {"--size", "-8x8"}, {"--strength", "1.5"},
                            {"--guidance-rescale", "-0.1"}, {"--clip-skip", "13"}, {"--batch-size", "65"}, {"--count", "0"},
                            {"--variation-strength", "NaN"}, {"--seed", "-1"}, {"--seed", "18446744073709551616"},
                            {"--seed-range", "5:3"}, {"--steps", "20abc"}, {"--cfg", ""}, {"--rng", "gpu"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(cf_param(d, bad[i][0], bad[i][1], err, sizeof err) == -1, "%s %s accepted", bad[i][0], bad[i][1]);
    CHECK(cJSON_GetArraySize(d) == 2); /* and nothing was stored */
    cJSON_Delete(d);
}

/* ---- the plan ---- */

static int build(const char *text, jobs_list *l, plan *p, jobs_errors *e) {
    REQUIRE(parse(text, "j.jsonl", NULL, l, e) == 0);
    return plan_build(l, "j.jsonl", p, e);
}

TEST(batch_plan_order_and_names) {
    jobs_list l;
    plan p;
    jobs_errors e;
    const char *text =
        "{\"prompt\": \"a {red|blue} car\", \"seeds\": \"7:8\", \"output\": \"{job}_{variation}_{seed}\"}\n"
        "{\"prompt\": \"Big   Star!\", \"seed\": 3, \"name\": \"stars\", \"steps\": 9, \"cfg\": 7.5,"
        " \"output\": \"{name}/{index:04}-{prompt_slug}-{steps}-{cfg}-{sampler}-{{x}}.png\"}\n";
    REQUIRE(build(text, &l, &p, &e) == 0);
    REQUIRE(p.count == 5);
    const char *files[] = {"1_0_7.png", "1_0_8.png", "1_1_7.png", "1_1_8.png", "stars/0004-big-star-9-7.5-default-{x}.png"};
    const char *prompts[] = {"a red car", "a red car", "a blue car", "a blue car", "Big   Star!"};
    uint64_t seeds[] = {7, 8, 7, 8, 3};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(p.images[i].index, i);
        CHECK_MSG(!strcmp(p.images[i].file, files[i]), "[%d] %s", i, p.images[i].file);
        char *prompt = plan_prompt(&p, &p.images[i]);
        CHECK_MSG(prompt && !strcmp(prompt, prompts[i]), "[%d] %s", i, prompt);
        free(prompt);
        CHECK(p.images[i].seed == seeds[i]);
    }
    CHECK_EQ_INT(p.images[3].n, 3);
    CHECK_EQ_INT(p.images[4].job, 1);
    plan_free(&p);
    jobs_list_free(&l);
}

TEST(batch_plan_default_names_unique) {
    jobs_list l;
    plan p;
    jobs_errors e;
    REQUIRE(build("{\"prompt\": \"a {red|blue} car\", \"count\": 3}\n{\"prompt\": \"a red car\"}\n", &l, &p, &e) == 0);
    REQUIRE(p.count == 7);
    CHECK(!strcmp(p.images[0].file, "00000-0-a-red-car.png"));
    CHECK(!strcmp(p.images[6].file, "00006-0-a-red-car.png"));
    plan_free(&p);
    jobs_list_free(&l);
}

TEST(batch_plan_template_errors_and_collisions) {
    jobs_list l;
    plan p;
    jobs_errors e;
    const char *text =
        "{\"prompt\": \"a\", \"output\": \"{nope}.png\"}\n"          /* 1 unknown placeholder */
        "{\"prompt\": \"a\", \"output\": \"../up.png\"}\n"           /* 2 escapes the folder */
        "{\"prompt\": \"a\", \"output\": \".hidden\"}\n"             /* 3 */
        "{\"prompt\": \"a\", \"output\": \"/abs.png\"}\n"            /* 4 */
        "{\"prompt\": \"a\", \"output\": \"x{seed\"}\n"              /* 5 */
        "{\"prompt\": \"a\", \"output\": \"{seed:0}\"}\n";           /* 6 */
    CHECK_EQ_INT(build(text, &l, &p, &e), 6);
    for (int i = 0; i < e.n; i++) test_note("%s", e.msg[i]);
    CHECK(has_error(&e, "j.jsonl:1:", "unknown placeholder {nope}"));
    CHECK(has_error(&e, "j.jsonl:2:", "may not start with '.'"));
    CHECK(has_error(&e, "j.jsonl:3:", "may not start with '.'"));
    CHECK(has_error(&e, "j.jsonl:4:", "absolute path"));
    CHECK(has_error(&e, "j.jsonl:5:", "not closed"));
    CHECK(has_error(&e, "j.jsonl:6:", "width from 1 to 200"));
    plan_free(&p);
    jobs_list_free(&l);
    jobs_errors_free(&e);

    const char *clash =
        "{\"prompt\": \"a\", \"count\": 2, \"output\": \"same.png\"}\n"
        "{\"prompt\": \"b\"}\n"
        "{\"prompt\": \"c\", \"output\": \"same\"}\n";
    CHECK_EQ_INT(build(clash, &l, &p, &e), 2);
    for (int i = 0; i < e.n; i++) test_note("%s", e.msg[i]);
    CHECK(has_error(&e, "j.jsonl:1:", "images 0 and 1 would both be written to \"same.png\""));
    CHECK(has_error(&e, "j.jsonl:3:", "like image 0 of line 1"));
    plan_free(&p);
    jobs_list_free(&l);
    jobs_errors_free(&e);
}

TEST(batch_plan_slug) {
    char s[64];
    plan_slug("A Red  Car, on the (beach)!", 0, s, sizeof s);
    CHECK(!strcmp(s, "a-red-car-on-the-beach"));
    plan_slug("A Red  Car, on the (beach)!", 9, s, sizeof s);
    CHECK(!strcmp(s, "a-red-car"));
    plan_slug("A Red  Car", 6, s, sizeof s); /* no dangling dash */
    CHECK(!strcmp(s, "a-red"));
    plan_slug("日本", 0, s, sizeof s);
    CHECK(!strcmp(s, "prompt"));
}

/* ---- shards ---- */

TEST(batch_shard_parse) {
    int i, n;
    char err[256];
    CHECK(plan_parse_shard("0/4", 0, &i, &n, err, sizeof err) == 0 && i == 0 && n == 4);
    CHECK(plan_parse_shard("3/4", 0, &i, &n, err, sizeof err) == 0 && i == 3);
    CHECK(plan_parse_shard("4/4", 0, &i, &n, err, sizeof err) == -1);
    CHECK_STR_CONTAINS(err, "must be 0..3");
    const char *bad[] = {"1/0", "x", "1/", "/4", "-1/4", "1/4x", "1 / 4"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        CHECK_MSG(plan_parse_shard(bad[k], 0, &i, &n, err, sizeof err) == -1, "\"%s\" accepted", bad[k]);
    /* Slurm: --array=5-12:1 -> task 7 is the third shard (index 2) of 8 */
    setenv("SLURM_ARRAY_TASK_ID", "7", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "5", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "8", 1);
    CHECK(plan_parse_shard("auto", 0, &i, &n, err, sizeof err) == 0 && i == 2 && n == 8);
    CHECK(plan_parse_shard("auto", 8, &i, &n, err, sizeof err) == 0 && i == 2 && n == 8);
    CHECK(plan_parse_shard("auto", 4, &i, &n, err, sizeof err) == -1);
    CHECK_STR_CONTAINS(err, "--shard-count 4, but the Slurm array has 8 tasks");
    /* Slurm and Kubernetes both set: they must name the same shard */
    setenv("JOB_COMPLETION_INDEX", "2", 1);
    CHECK(plan_parse_shard("auto", 0, &i, &n, err, sizeof err) == 0 && i == 2 && n == 8);
    setenv("JOB_COMPLETION_INDEX", "3", 1);
    CHECK(plan_parse_shard("auto", 0, &i, &n, err, sizeof err) == -1);
    CHECK_STR_CONTAINS(err, "Slurm says shard 2 of 8 but JOB_COMPLETION_INDEX says 3");
    unsetenv("SLURM_ARRAY_TASK_ID");
    unsetenv("SLURM_ARRAY_TASK_MIN");
    unsetenv("SLURM_ARRAY_TASK_COUNT");
    /* Kubernetes alone: the count from --shard-count */
    CHECK(plan_parse_shard("auto", 4, &i, &n, err, sizeof err) == 0 && i == 3 && n == 4);
    CHECK(plan_parse_shard("auto", 0, &i, &n, err, sizeof err) == -1);
    CHECK_STR_CONTAINS(err, "add --shard-count N");
    CHECK(plan_parse_shard("auto", 3, &i, &n, err, sizeof err) == -1);
    CHECK_STR_CONTAINS(err, "index 3 is not below the shard count 3");
    const char *bad_index[] = {"", "x", "-1", "1.5"};
    for (size_t k = 0; k < sizeof bad_index / sizeof *bad_index; k++) {
        setenv("JOB_COMPLETION_INDEX", bad_index[k], 1);
        CHECK_MSG(plan_parse_shard("auto", 4, &i, &n, err, sizeof err) == -1, "index \"%s\" accepted", bad_index[k]);
    }
    unsetenv("JOB_COMPLETION_INDEX");
    CHECK(plan_parse_shard("auto", 4, &i, &n, err, sizeof err) == -1);
    CHECK_STR_CONTAINS(err, "no scheduler index in the environment");
    CHECK(plan_parse_shard("1/4", 3, &i, &n, err, sizeof err) == -1);
    CHECK(plan_parse_shard("1/4", 4, &i, &n, err, sizeof err) == 0 && i == 1 && n == 4);
}

TEST(batch_shards_cover_exactly_once) {
    int totals[] = {0, 1, 2, 7, 100, 101, 1000};
    int counts[] = {1, 2, 3, 7, 16, 200};
    for (size_t a = 0; a < sizeof totals / sizeof *totals; a++)
        for (size_t b = 0; b < sizeof counts / sizeof *counts; b++) {
            int total = totals[a], n = counts[b];
            int *hits = calloc((size_t)total + 1, sizeof *hits);
            int minsz = 1 << 30, maxsz = 0, prev_end = 0;
            for (int i = 0; i < n; i++) {
                int lo, hi;
                plan_shard_range(total, i, n, &lo, &hi);
                CHECK_MSG(lo == prev_end, "total %d, %d shards: shard %d starts at %d, not %d", total, n, i, lo, prev_end);
                prev_end = hi;
                for (int k = lo; k < hi; k++)
                    if (k >= 0 && k < total) hits[k]++;
                if (hi - lo < minsz) minsz = hi - lo;
                if (hi - lo > maxsz) maxsz = hi - lo;
            }
            for (int k = 0; k < total; k++) CHECK_MSG(hits[k] == 1, "total %d, %d shards: image %d in %d shards", total, n, k, hits[k]);
            CHECK(maxsz - minsz <= 1);
            free(hits);
        }
}

TEST(batch_shards_of_a_real_plan) {
    /* the same job file planned N times, each keeping its slice: the union of the files is the whole list */
    jobs_list l;
    plan p;
    jobs_errors e;
    const char *text = "{\"prompt\": \"{a|b|c} x\", \"seeds\": \"1:5\"}\n{\"prompt\": \"y\", \"count\": 4}\n";
    REQUIRE(build(text, &l, &p, &e) == 0);
    REQUIRE(p.count == 19);
    int seen[19] = {0};
    for (int i = 0; i < 4; i++) {
        jobs_list l2;
        plan p2;
        REQUIRE(build(text, &l2, &p2, &e) == 0); /* a separate process would re-plan from scratch */
        int lo, hi;
        plan_shard_range(p2.count, i, 4, &lo, &hi);
        for (int k = lo; k < hi; k++) {
            CHECK(!strcmp(p2.images[k].file, p.images[k].file));
            seen[p2.images[k].index]++;
        }
        plan_free(&p2);
        jobs_list_free(&l2);
    }
    for (int k = 0; k < 19; k++) CHECK_EQ_INT(seen[k], 1);
    plan_free(&p);
    jobs_list_free(&l);
}

TEST(batch_image_keys) {
    jobs_list l;
    plan p;
    jobs_errors e;
    const char *text = "{\"prompt\": \"a\", \"seeds\": \"1:2\", \"steps\": 5}\n"
                       "{\"prompt\": \"a\", \"seed\": 1, \"steps\": 5, \"output\": \"other.png\", \"name\": \"n\"}\n"
                       "{\"prompt\": \"a\", \"seed\": 1, \"steps\": 6}\n";
    REQUIRE(build(text, &l, &p, &e) == 0);
    char k0[65], k1[65], k2[65], k3[65], k0m[65];
    REQUIRE(plan_image_key(&p, &p.images[0], "shapes", k0) == 0);
    REQUIRE(plan_image_key(&p, &p.images[1], "shapes", k1) == 0);
    REQUIRE(plan_image_key(&p, &p.images[2], "shapes", k2) == 0);
    REQUIRE(plan_image_key(&p, &p.images[3], "shapes", k3) == 0);
    REQUIRE(plan_image_key(&p, &p.images[0], "other", k0m) == 0);
    CHECK(strcmp(k0, k1) != 0);  /* seed */
    CHECK(strcmp(k0, k2) == 0);  /* same rendering, other file name: same key */
    CHECK(strcmp(k0, k3) != 0);  /* steps */
    CHECK(strcmp(k0, k0m) != 0); /* model */
    /* the seed keys are not parameters: "count": 2 and "count": 3 give image 0 the same key */
    jobs_list l2;
    plan p2;
    REQUIRE(build("{\"prompt\": \"a\", \"seed\": 1, \"count\": 3, \"steps\": 5}\n", &l2, &p2, &e) == 0);
    char k20[65];
    REQUIRE(plan_image_key(&p2, &p2.images[0], "shapes", k20) == 0);
    CHECK(strcmp(k0, k20) == 0);
    plan_free(&p2);
    jobs_list_free(&l2);
    cJSON *o = plan_image_params(&p, &p.images[1]);
    CHECK_EQ_INT(cJSON_GetObjectItem(o, "seed")->valuedouble, 2);
    CHECK(!cJSON_GetObjectItem(o, "output") && !cJSON_GetObjectItem(o, "name"));
    cJSON_Delete(o);
    plan_free(&p);
    jobs_list_free(&l);
}
