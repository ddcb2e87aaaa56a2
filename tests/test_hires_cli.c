/* test_hires_cli.c — the hires fix and TAESD on the command line: batch job keys named as the flags (checked like
 * every key, with the combinations that make no sense refused by line), the shared flags storing them, and
 * `sd info` of a TAESD (each naming scheme, the original decoder + encoder pair found together). */
#include <stdlib.h>
#include <string.h>

#include "../cli/common_flags.h"
#include "../cli/jobs.h"
#include "../sd.h"
#include "test.h"

static int parse(const char *text, jobs_list *l, jobs_errors *e) {
    memset(e, 0, sizeof *e);
    return jobs_parse(text, strlen(text), "jobs.jsonl", JOBS_JSONL, NULL, jobs_library_rules(), l, e);
}

TEST(hires_job_keys) {
    jobs_list l;
    jobs_errors e;
    REQUIRE(parse("{\"prompt\": \"a cat\", \"hires_scale\": 2, \"hires_steps\": 10, \"hires_denoise\": 0.45, \"hires_upscaler\": \"lanczos\"}\n"
                  "{\"prompt\": \"a dog\", \"hires_width\": 1024}\n",
                  &l, &e) == 0);
    REQUIRE(l.count == 2);
    sd_gen_params p;
    sd_gen_params_init(&p);
    jobs_apply(&l.jobs[0], &p);
    CHECK_NEAR(p.hires_scale, 2, 0);
    CHECK_EQ_INT(p.hires_steps, 10);
    CHECK_NEAR(p.hires_denoise, 0.45, 1e-6);
    CHECK(p.hires_upscaler && !strcmp(p.hires_upscaler, "lanczos"));
    sd_gen_params_init(&p);
    jobs_apply(&l.jobs[1], &p);
    CHECK(p.hires_width == 1024 && p.hires_height == 0 && p.hires_scale == 0);
    CHECK_NEAR(p.hires_denoise, 0.7, 1e-6); /* A1111's default */
    jobs_list_free(&l);
    jobs_errors_free(&e);

    static const struct { const char *line, *msg; } bad[] = {
        {"{\"prompt\": \"x\", \"hires_steps\": 10}", "jobs.jsonl:1: \"hires_steps\" needs \"hires_scale\" or \"hires_width\"/\"hires_height\""},
        {"{\"prompt\": \"x\", \"hires_scale\": 9}", "\"hires_scale\" 9 is out of range 1..8"},
        {"{\"prompt\": \"x\", \"hires_scale\": 2, \"hires_upscaler\": \"ESRGAN\"}", "\"hires_upscaler\" \"ESRGAN\" is not one of: latent, latent-bicubic"},
        {"{\"prompt\": \"x\", \"hires_width\": 1004}", "\"hires_width\" 1004 is not a multiple of 8"},
        {"{\"prompt\": \"x\", \"hires_scale\": 2, \"init_image\": \"tests/golden/hires/upscale.safetensors\"}", "is for txt2img"},
        {"{\"prompt\": \"x\", \"hires_scale\": 2, \"control_net\": \"cn\", \"control_image\": \"c.png\"}", "with \"control_net\" is not supported yet"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[512];
        snprintf(text, sizeof text, "%s\n", bad[i].line);
        char *fixed = strstr(text, "tests/golden");
        if (fixed) { /* the init image must exist for the key check to pass first */
            char tail[256];
            snprintf(tail, sizeof tail, "%s", fixed + strlen("tests/golden/hires/upscale.safetensors"));
            snprintf(fixed, sizeof text - (fixed - text), "%s%s", test_path("golden/hires/upscale.safetensors"), tail);
        }
        CHECK_MSG(parse(text, &l, &e) > 0, "accepted: %s", bad[i].line);
        CHECK_MSG(e.n && strstr(e.msg[0], bad[i].msg), "%s: \"%s\", expected \"%s\"", bad[i].line, e.n ? e.msg[0] : "", bad[i].msg);
        jobs_list_free(&l);
        jobs_errors_free(&e);
    }
}

TEST(hires_and_taesd_flags) {
    cf_opts o;
    REQUIRE(cf_init(&o) == 0);
    char *argv[] = {"generate", "--hires-scale", "1.5", "--hires-upscaler=latent-bicubic", "--taesd", (char *)test_path("golden/taesd/a"),
                    "--preview", "p.png", "--preview-method", "taesd", "--preview-interval", "4"};
    int argc = (int)(sizeof argv / sizeof *argv);
    for (int i = 1; i < argc; i++) CHECK_EQ_INT(cf_parse(argc, argv, &i, CF_GENERATE, &o), 1);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o.params, "hires_scale");
    CHECK(cJSON_IsNumber(v) && v->valuedouble == 1.5);
    v = cJSON_GetObjectItemCaseSensitive(o.params, "hires_upscaler");
    CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "latent-bicubic"));
    CHECK(o.load.taesd_path && !strcmp(o.preview, "p.png") && !strcmp(o.preview_method, "taesd") && o.preview_interval == 4);
    char *bad[][2] = {{"--hires-denoise", "1.5"}, {"--preview-method", "vae"}, {"--preview-interval", "0"}, {"--hires-upscaler", "x4"}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char *a[] = {"generate", bad[k][0], bad[k][1]};
        int i = 1;
        CHECK_MSG(cf_parse(3, a, &i, CF_GENERATE, &o) == -1, "%s %s accepted", bad[k][0], bad[k][1]);
    }
    cf_free(&o);
}

static char *describe(const char *path) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    sd_status st = sd_describe(path, f);
    fclose(f);
    CHECK_MSG(st == SD_OK, "sd info %s: %s", path, sd_last_error());
    return buf;
}

TEST(taesd_sd_info) {
    char *s = describe(test_path("golden/taesd/a"));
    CHECK_STR_CONTAINS(s, "TAESD tiny autoencoder (diffusers (AutoencoderTiny) names)");
    CHECK_STR_CONTAINS(s, "parts         decoder and encoder");
    CHECK_STR_CONTAINS(s, "latents       4 channels, 8x smaller than the picture, scaling factor 1");
    CHECK_STR_CONTAINS(s, "decoder: 8 channels, blocks 2-1-2-1 (4 levels)");
    free(s);
    s = describe(test_path("golden/taesd/a_taesd_decoder.safetensors"));
    CHECK_STR_CONTAINS(s, "original taesd.py decoder names, decoder and encoder files");
    free(s);
    s = describe(test_path("golden/taesd/b_taesd_decoder.safetensors"));
    CHECK_STR_CONTAINS(s, "decoder only");
    CHECK_STR_CONTAINS(s, "6 channels, 4x smaller");
    free(s);
    s = describe(test_path("golden/taesd/a_comfy.safetensors"));
    CHECK_STR_CONTAINS(s, "ComfyUI combined names");
    free(s);
}
