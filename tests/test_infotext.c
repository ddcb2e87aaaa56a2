/* test_infotext.c — A1111 "parameters" text and our JSON chunk: format, and settings read back from PNGs. */
#include "test.h"
#include "../core/error.h"
#include "../core/fileio.h"
#include "../core/image.h"
#include "../pipeline/infotext.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static infotext_ctx ictx(void) {
    infotext_ctx c = {"v1-5-pruned-emaonly", "6ce0161689", "euler_a", "karras", 512, 768, 20, 7.0f, NULL, NULL, NULL};
    return c;
}

TEST(infotext_a1111_layout) {
    sd_gen_params p;
    sd_gen_params_init(&p);
    p.prompt = "a cat, sitting";
    p.negative_prompt = "blurry";
    infotext_ctx c = ictx();
    char *t = infotext_a1111(&p, &c, 1234);
    /* the layout A1111 writes (facts §6.2): prompt, negative line, then comma-separated key: value pairs */
    CHECK_MSG(!strcmp(t, "a cat, sitting\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Schedule type: Karras, "
                         "CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
                         "Version: sd " SD_VERSION), "%s", t);
    free(t);
    p.negative_prompt = "";
    p.rng = "cpu";
    p.clip_skip = 2;
    c.model_name = "name, with: comma";
    t = infotext_a1111(&p, &c, 5);
    CHECK_STR_CONTAINS(t, "a cat, sitting\nSteps: 20,");            /* no negative line when empty */
    CHECK_STR_CONTAINS(t, "Model: \"name, with: comma\"");           /* quoted like json.dumps */
    CHECK_STR_CONTAINS(t, "Clip skip: 2");
    CHECK_STR_CONTAINS(t, "RNG: CPU");
    free(t);
}

TEST(png_settings_roundtrip) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/img.png", dir);
    uint8_t px[3 * 4 * 4] = {0};
    sd_image img = {4, 4, 3, px};
    sd_gen_params p;
    sd_gen_params_init(&p);
    p.prompt = "a red star, \"quoted\"\nsecond line";
    p.negative_prompt = "ugly";
    p.rng = "cpu";
    p.guidance_rescale = 0.7f;
    p.variation_strength = 0.25f;
    p.variation_seed = 18446744073709551615ull;
    infotext_ctx c = ictx();
    char *a = infotext_a1111(&p, &c, 9876543210ull), *j = infotext_json(&p, &c, 9876543210ull);
    REQUIRE(sd_save_png(path, &img, a, j, 0) == SD_OK);
    sd_gen_params q;
    void *store;
    REQUIRE_MSG(sd_params_from_png(path, &q, &store) == SD_OK, "%s", sd_last_error());
    CHECK(!strcmp(q.prompt, p.prompt));
    CHECK(!strcmp(q.negative_prompt, "ugly"));
    CHECK(q.seed == 9876543210ull && q.width == 512 && q.height == 768 && q.steps == 20);
    CHECK(q.cfg_scale == 7.0f && !strcmp(q.sampler, "euler_a") && !strcmp(q.scheduler, "karras"));
    CHECK(!strcmp(q.rng, "cpu") && q.guidance_rescale == 0.7f);
    CHECK(q.variation_seed == 18446744073709551615ull && q.variation_strength == 0.25f);
    free(store);
    /* only an A1111 chunk (as another UI writes it): parsed from the text */
    snprintf(path, sizeof path, "%s/a1111.png", dir);
    REQUIRE(sd_save_png(path, &img, a, NULL, 0) == SD_OK);
    REQUIRE_MSG(sd_params_from_png(path, &q, &store) == SD_OK, "%s", sd_last_error());
    CHECK_MSG(!strcmp(q.prompt, p.prompt), "prompt \"%s\"", q.prompt);
    CHECK(!strcmp(q.negative_prompt, "ugly"));
    CHECK(q.seed == 9876543210ull && q.width == 512 && q.height == 768 && q.steps == 20 && q.cfg_scale == 7.0f);
    CHECK(!strcmp(q.sampler, "euler_a") && !strcmp(q.scheduler, "karras") && !strcmp(q.rng, "cpu"));
    CHECK(!strcmp(q.convention, "kdiffusion"));
    free(store);
    free(a);
    free(j);
    /* a PNG without settings */
    snprintf(path, sizeof path, "%s/plain.png", dir);
    REQUIRE(sd_save_png(path, &img, NULL, NULL, 0) == SD_OK);
    CHECK(sd_params_from_png(path, &q, &store) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "no generation parameters");
}

TEST(infotext_parses_a1111_example) {
    /* an infotext as AUTOMATIC1111 itself writes it (facts §6.2 example layout) */
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/x.png", dir);
    uint8_t px[3] = {0};
    sd_image img = {1, 1, 3, px};
    const char *txt = "a cat\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Automatic, CFG scale: 7.5, "
                      "Seed: 1234, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1";
    REQUIRE(sd_save_png(path, &img, txt, NULL, 0) == SD_OK);
    sd_gen_params q;
    void *store;
    REQUIRE(sd_params_from_png(path, &q, &store) == SD_OK);
    CHECK(!strcmp(q.prompt, "a cat") && !strcmp(q.negative_prompt, "blurry"));
    CHECK(!strcmp(q.sampler, "dpm++2m") && !strcmp(q.scheduler, "discrete"));
    CHECK(q.cfg_scale == 7.5f && q.seed == 1234 && q.steps == 20 && q.width == 512 && !strcmp(q.rng, "cuda"));
    free(store);
}

/* Numbers out of range are refused naming the file and key, before any conversion (a huge double cast to int or
 * float is undefined behaviour: 1e+30 became width -2147483648). */
TEST(infotext_refuses_numbers_out_of_range) {
    sd_gen_params q;
    void *store;
    char *clip;
    size_t len;
    REQUIRE(file_read(test_path("data/hostile/infotext-json-clip-skip-1e111.json"), 1 << 16, &clip, &len) == SD_OK);
    static const struct { const char *json, *a1111, *word; } cs[] = {
        {NULL, NULL, "\"clip_skip\" must be a whole number from 0 to 12"}, /* the fuzzer's find, read from the file above */
        {"{\"width\": 1e+30, \"height\": 64}", NULL, "\"width\" must be a whole number from 8 to 8192"},
        {"{\"steps\": 1e300}", NULL, "\"steps\""},
        {"{\"steps\": 2.5}", NULL, "\"steps\" must be a whole number"},
        {"{\"cfg_scale\": 1e+40}", NULL, "\"cfg_scale\" must be a number from 0 to 100"},
        {"{\"cfg_scale\": -5}", NULL, "\"cfg_scale\""},
        {"{\"strength\": \"high\"}", NULL, "\"strength\""},
        {"{\"seed\": \"-1\"}", NULL, "\"seed\" must be a whole number from 0 to 18446744073709551615"},
        {"{\"seed\": \"99999999999999999999\"}", NULL, "\"seed\""},
        {"[1]", NULL, "not a JSON object"},
        {NULL, "x\nSteps: 1e999, Seed: 1", "\"Steps\" must be a whole number from 1 to 1000"},
        {NULL, "x\nSteps: 20, Size: 99999999999x64", "\"Size\""},
        {NULL, "x\nSteps: 20, Size: 64", "\"Size\" must be WIDTHxHEIGHT"},
        {NULL, "x\nSteps: 20, Clip skip: 1e111", "\"Clip skip\""},
        {NULL, "x\nSteps: 20, CFG scale: nan", "\"CFG scale\""},
        {NULL, "x\nSteps: 20, Seed: -1", "\"Seed\""},
        {NULL, "x\nSteps: 20, Denoising strength: 7", "\"Denoising strength\" must be a number from 0 to 1"},
        {NULL, "x\nSteps: 20, Hires upscale: 9", "\"Hires upscale\" must be a number from 0 to 8"},
        {NULL, "x\nSteps: 20, Hires resize: 1024x-8", "\"Hires resize\" must be WIDTHxHEIGHT"},
        {"{\"hires_steps\": 5000}", NULL, "\"hires_steps\""},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        const char *json = i == 0 ? clip : cs[i].json;
        CHECK_MSG(infotext_params_from_text("img.png", json, cs[i].a1111, &q, &store) == SD_ERR_FORMAT, "case %zu accepted", i);
        CHECK(store == NULL && q.prompt == NULL);
        CHECK_STR_CONTAINS(sd_last_error(), cs[i].word);
        CHECK_STR_CONTAINS(sd_last_error(), "img.png");
    }
    free(clip);
    /* the edges of each range are accepted, and unknown keys of other tools are not ours to refuse */
    REQUIRE_MSG(infotext_params_from_text("img.png", NULL, "a\nSteps: 1000, Size: 8x8192, Clip skip: 12, CFG scale: 0, Seed: 18446744073709551615, "
                                    "ADetailer confidence: 1e999", &q, &store) == SD_OK, "%s", sd_last_error());
    CHECK(q.steps == 1000 && q.width == 8 && q.height == 8192 && q.clip_skip == 12 && q.cfg_scale == 0 && q.seed == UINT64_MAX);
    free(store);
}

/* A PNG made from an init image does not hold it: sd_params_png_init says so (strength, mask), from either text,
 * and not for the hires fix, whose "Denoising strength" is its second pass's. */
TEST(infotext_init_image_recorded) {
    static const struct { const char *json, *a1111; int init, masked; float strength; } cs[] = {
        {"{\"prompt\": \"a\", \"strength\": 0.6}", NULL, 1, 0, 0.6f},
        {"{\"prompt\": \"a\", \"strength\": 0.75, \"mask_blur\": 4}", NULL, 1, 1, 0.75f},
        {"{\"prompt\": \"a\", \"hires_scale\": 2, \"hires_denoise\": 0.5}", NULL, 0, 0, 0},
        {"{\"prompt\": \"a\"}", NULL, 0, 0, 0},
        {NULL, "a\nSteps: 20, Denoising strength: 0.4", 1, 0, 0.4f},
        {NULL, "a\nSteps: 20, Denoising strength: 0.4, Mask blur: 4", 1, 1, 0.4f},
        {NULL, "a\nSteps: 20, Denoising strength: 0.4, Hires upscale: 2", 0, 0, 0},
        {NULL, "a\nSteps: 20", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        sd_gen_params q;
        void *store;
        REQUIRE_MSG(infotext_params_from_text("img.png", cs[i].json, cs[i].a1111, &q, &store) == SD_OK, "%s", sd_last_error());
        float s = -1;
        int m = -1;
        CHECK_MSG(sd_params_png_init(store, &s, &m) == cs[i].init, "case %zu", i);
        if (cs[i].init) CHECK_MSG(s == cs[i].strength && m == cs[i].masked, "case %zu: strength %g, masked %d", i, s, m);
        free(store);
    }
    CHECK(sd_params_png_init(NULL, NULL, NULL) == 0);
}

/* Settings read from an A1111 text alone (no "sd" JSON); *store to be freed. */
static sd_gen_params a1111_read(const char *txt, void **store) {
    sd_gen_params q;
    if (infotext_params_from_text("t.png", NULL, txt, &q, store) != SD_OK) {
        fprintf(stderr, "%s\n", sd_last_error());
        sd_gen_params_init(&q);
    }
    return q;
}

/* A1111 before 1.9 wrote the schedule into the sampler's name and no "Schedule type" (facts §6.2). */
TEST(infotext_a1111_combined_sampler_names) {
    static const struct { const char *a1111, *sampler, *scheduler; } cases[] = {
        {"DPM++ 2M Karras", "dpm++2m", "karras"},       {"DPM++ 2M SDE Exponential", "dpm++2m_sde", "exponential"},
        {"Euler a SGM Uniform", "euler_a", "sgm_uniform"}, {"DPM2 a Karras", "dpm2_a", "karras"},
        {"LMS Karras", "lms", "karras"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char txt[256];
        snprintf(txt, sizeof txt, "a cat\nSteps: 4, Sampler: %s, CFG scale: 3, Seed: 5, Size: 64x64", cases[i].a1111);
        void *store;
        sd_gen_params q = a1111_read(txt, &store);
        CHECK_MSG(q.sampler && !strcmp(q.sampler, cases[i].sampler), "%s: %s", cases[i].a1111, q.sampler ? q.sampler : "-");
        CHECK_MSG(q.scheduler && !strcmp(q.scheduler, cases[i].scheduler), "%s: %s", cases[i].a1111, q.scheduler ? q.scheduler : "-");
        free(store);
    }
    /* an explicit "Schedule type" is the newer layout's and wins */
    void *store;
    sd_gen_params q = a1111_read("a\nSteps: 4, Sampler: DPM++ 2M Karras, Schedule type: Exponential, Seed: 5, Size: 64x64", &store);
    CHECK(q.scheduler && !strcmp(q.scheduler, "exponential") && !strcmp(q.sampler, "dpm++2m"));
    free(store);
    const char *sch = "unchanged";
    CHECK(sd_sampler_from_a1111("Nonsense Karras", &sch) == NULL && !strcmp(sch, "unchanged"));
    CHECK(sd_sampler_from_a1111("Euler a", &sch) && !strcmp(sch, "unchanged"));
}

/* A1111 keeps the timestep samplers' eta (DDIM, PLMS, UniPC) under "Eta DDIM" and the ancestral ones' under "Eta";
 * each sampler reads only its own key. */
TEST(infotext_eta_ddim_key) {
    sd_gen_params p;
    sd_gen_params_init(&p);
    p.prompt = "a cat";
    p.eta = 0.5f;
    infotext_ctx c = ictx();
    c.sampler = "ddim";
    c.scheduler = "discrete";
    char *t = infotext_a1111(&p, &c, 5);
    CHECK_STR_CONTAINS(t, ", Eta DDIM: 0.5,");
    void *store;
    sd_gen_params q = a1111_read(t, &store); /* and back, from the text alone */
    CHECK_MSG(q.eta == 0.5f && !strcmp(q.sampler, "ddim"), "eta %g", q.eta);
    free(store);
    free(t);
    c.sampler = "euler_a";
    t = infotext_a1111(&p, &c, 5);
    CHECK_STR_CONTAINS(t, ", Eta: 0.5,");
    CHECK(!strstr(t, "Eta DDIM"));
    free(t);
    q = a1111_read("a\nSteps: 4, Sampler: DDIM, Seed: 5, Size: 64x64, Eta DDIM: 0.25", &store);
    CHECK_MSG(q.eta == 0.25f, "DDIM with Eta DDIM: eta %g", q.eta);
    free(store);
    q = a1111_read("a\nSteps: 4, Sampler: UniPC, Seed: 5, Size: 64x64, Eta DDIM: 0.25, Eta: 0.75", &store);
    CHECK_MSG(q.eta == 0.25f, "UniPC: eta %g", q.eta);
    free(store);
    q = a1111_read("a\nSteps: 4, Sampler: DDIM, Seed: 5, Size: 64x64, Eta: 0.5", &store); /* eta_ancestral: not DDIM's */
    CHECK_MSG(q.eta == 0, "DDIM with Eta: eta %g", q.eta);
    free(store);
    q = a1111_read("a\nSteps: 4, Sampler: Euler a, Seed: 5, Size: 64x64, Eta DDIM: 0.25, Eta: 0.75", &store);
    CHECK_MSG(q.eta == 0.75f, "Euler a: eta %g", q.eta);
    free(store);
    CHECK(infotext_params_from_text("t.png", NULL, "a\nSteps: 4, Sampler: DDIM, Eta DDIM: 2, Seed: 1", &q, &store) == SD_ERR_FORMAT);
    CHECK_STR_CONTAINS(sd_last_error(), "\"Eta DDIM\" must be a number from 0 to 1");
}

/* a1111_read with what it writes to stderr (the reader's warnings) captured: a malloc'd string. */
static char *a1111_read_warned(const char *txt, sd_gen_params *q, void **store) {
    char path[512];
    snprintf(path, sizeof path, "%s/stderr.txt", test_tmpdir());
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    *q = a1111_read(txt, store);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *out = NULL;
    if (file_read(path, 1 << 20, &out, NULL) != SD_OK) out = NULL;
    return out;
}

/* A1111's timestep samplers (UniPC, DDIM, PLMS) ignore the schedule type: every one gives Automatic's picture. */
TEST(infotext_a1111_timestep_sampler_schedule) {
    sd_gen_params q;
    void *store;
    char *w = a1111_read_warned("a\nSteps: 4, Sampler: UniPC, Schedule type: Karras, Seed: 5, Size: 64x64", &q, &store);
    CHECK_MSG(q.scheduler && !strcmp(q.scheduler, "discrete") && !strcmp(q.sampler, "unipc"), "%s", q.scheduler ? q.scheduler : "-");
    CHECK_STR_CONTAINS(w, "warning: t.png: ignoring 'Schedule type: Karras' (AUTOMATIC1111's timestep samplers ignore");
    free(w);
    free(store);
    w = a1111_read_warned("a\nSteps: 4, Sampler: UniPC, Schedule type: Automatic, Seed: 5, Size: 64x64", &q, &store);
    CHECK(!strcmp(q.scheduler, "discrete") && w && !*w); /* nothing to say */
    free(w);
    free(store);
    w = a1111_read_warned("a\nSteps: 4, Sampler: DDIM, Schedule type: Uniform, Seed: 5, Size: 64x64", &q, &store);
    CHECK(!strcmp(q.scheduler, "discrete"));
    CHECK_STR_CONTAINS(w, "ignoring 'Schedule type: Uniform'");
    free(w);
    free(store);
    /* our own JSON is what we ran: its schedule stays */
    REQUIRE(infotext_params_from_text("t.png", "{\"prompt\":\"a\",\"sampler\":\"unipc\",\"scheduler\":\"karras\"}", NULL, &q, &store) == SD_OK);
    CHECK(!strcmp(q.scheduler, "karras"));
    free(store);
    /* a schedule we lack, on a sampler that uses it, is kept by name (refused when run, --scheduler replaces it) */
    q = a1111_read("a\nSteps: 4, Sampler: Euler, Schedule type: Polyexponential, Seed: 5, Size: 64x64", &store);
    CHECK(q.scheduler && !strcmp(q.scheduler, "Polyexponential"));
    free(store);
}

/* A1111 keys that change the picture and that we cannot honour: one warning each, naming the file and the key. */
TEST(infotext_a1111_unsupported_keys_warned) {
    sd_gen_params q;
    void *store;
    char *w = a1111_read_warned("a\nSteps: 4, Sampler: Euler a, Seed: 5, Size: 64x64, Seed resize from: 128x128, ENSD: 31337, "
                                "Tiling: True, Model hash: 0123456789, Version: v1.10.1", &q, &store);
    CHECK(q.steps == 4 && q.seed == 5);
    CHECK_STR_CONTAINS(w, "warning: t.png: ignoring 'Seed resize from: 128x128' (not supported)\n");
    CHECK_STR_CONTAINS(w, "warning: t.png: ignoring 'ENSD: 31337' (not supported)\n");
    CHECK_STR_CONTAINS(w, "warning: t.png: ignoring 'Tiling: True' (not supported)\n");
    CHECK_MSG(w && !strstr(w, "Model hash") && !strstr(w, "Version"), "%s", w); /* not picture-changing */
    free(w);
    free(store);
    w = a1111_read_warned("a\nSteps: 4, Sampler: Euler a, Seed: 5, Size: 64x64, ENSD: 0, Emphasis: Original", &q, &store);
    CHECK_MSG(w && !*w, "do-nothing values: %s", w);
    free(w);
    free(store);
}
