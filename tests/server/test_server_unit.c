/* test_server_unit.c — the server's pieces without HTTP: base64 against RFC 4648's vectors, typed JSON fields and
 * their messages, model and LoRA names (paths refused, A1111 titles found), A1111 sampler and scheduler names, and
 * the inpainting mask's threshold and invert (its blur is the library's, tested against OpenCV there). */
#include "../test.h"
#include "../../cli/serve/a1111.h"
#include "../../cli/serve/a1111_names.h"
#include "../../cli/serve/b64.h"
#include "../../cli/serve/jfield.h"
#include "../../cli/serve/mask.h"
#include "../../cli/serve/models.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(server_b64_rfc4648_vectors) {
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *e = b64_encode((const uint8_t *)plain[i], strlen(plain[i]));
        CHECK_MSG(e && !strcmp(e, coded[i]), "encode \"%s\": %s", plain[i], e ? e : "NULL");
        free(e);
        size_t n;
        int bad;
        uint8_t *d = b64_decode(coded[i], strlen(coded[i]), &n, &bad);
        CHECK_MSG(d && n == strlen(plain[i]) && !memcmp(d, plain[i], n), "decode %s", coded[i]);
        free(d);
    }
    size_t n;
    int bad;
    const char *url = "data:image/png;base64,Zm9v\nYmFy"; /* a data URL, a line break */
    uint8_t *d = b64_decode(url, strlen(url), &n, &bad);
    CHECK(d && n == 6 && !memcmp(d, "foobar", 6));
    free(d);
    d = b64_decode("Zm9vYmFy", 8, &n, &bad); /* unpadded is fine */
    free(d);
    static const char *junk[] = {"Zm9v!", "Zm9=v", "Z", "Zm9vY===", "data:text/plain,Zm9v", "data:;base64"};
    for (int i = 0; i < 6; i++) {
        d = b64_decode(junk[i], strlen(junk[i]), &n, &bad);
        CHECK_MSG(!d && bad, "\"%s\" was taken for base64", junk[i]);
        free(d);
    }
}

TEST(server_jfield_types_ranges_and_messages) {
    cJSON *o = cJSON_Parse("{\"steps\": 1e300, \"w\": 64, \"f\": 2.5, \"s\": \"x\", \"b\": true, \"n\": null, \"neg\": -3,"
                           "\"bad\": \"\\u00ff\", \"num\": 0.5}");
    REQUIRE(o);
    jfield_err e;
    long long v;
    double d;
    const char *s;
    int b;
    CHECK(jfield_int(o, "steps", 1, 150, 50, &v, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "steps: ");
    CHECK(!strcmp(e.field, "steps"));
    CHECK(jfield_int(o, "w", 8, 2048, 512, &v, &e) == 0 && v == 64);
    CHECK(jfield_int(o, "f", 0, 10, 0, &v, &e) != 0 && !strcmp(e.field, "f"));
    CHECK(jfield_int(o, "s", 0, 10, 0, &v, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "not a string");
    CHECK(jfield_int(o, "n", 0, 10, 7, &v, &e) == 0 && v == 7);     /* null: the default */
    CHECK(jfield_int(o, "absent", 0, 10, 3, &v, &e) == 0 && v == 3);
    CHECK(jfield_int(o, "absent", 1, 10, 50, &v, &e) != 0);         /* a default over this server's limit */
    CHECK_STR_CONTAINS(e.msg, "not given");
    CHECK(jfield_int(o, "neg", -1, 10, 0, &v, &e) != 0);
    CHECK(jfield_num(o, "num", 0, 1, 0, &d, &e) == 0 && d == 0.5);
    CHECK(jfield_num(o, "b", 0, 1, 0, &d, &e) != 0);
    CHECK(jfield_bool(o, "b", 0, &b, &e) == 0 && b == 1);
    CHECK(jfield_bool(o, "w", 0, &b, &e) != 0);
    CHECK(jfield_str(o, "s", 10, NULL, &s, &e) == 0 && !strcmp(s, "x"));
    CHECK(jfield_str(o, "s", 0, NULL, &s, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "bytes long");
    CHECK(jfield_str(o, "bad", 10, NULL, &s, &e) == 0); /* \u00ff is valid once cJSON made it UTF-8 */
    CHECK(jfield_utf8_ok("\xc3\xa9", 2) && !jfield_utf8_ok("\xc3", 1) && !jfield_utf8_ok("\xed\xa0\x80", 3) &&
          !jfield_utf8_ok("\xc0\xaf", 2) && !jfield_utf8_ok("a\0b", 3));
    cJSON_Delete(o);
}

/* Error fields and messages go back in JSON, which is UTF-8: a client's key may be any bytes, and a quoted name cut at
 * 80 bytes may end mid-character (found by tests/fuzz/fuzz_server_request; its inputs corpus/server_request/utf8-*). */
TEST(server_error_text_is_utf8) {
    char s[] = "ok \xc3\xa9 \xe9 \xed\xa0\x80 \xf0\x9f\x98\x80 \xc3";
    jfield_utf8_fix(s);
    CHECK_MSG(!strcmp(s, "ok \xc3\xa9 ? ??? \xf0\x9f\x98\x80 ?"), "%s", s); /* valid characters kept, each stray byte '?' */
    jfield_err e;
    jfield_fail(&e, "caf\xe9", "%.4s|", "a\xc3\xa9\xc3\xa9");                /* a key of Latin-1; a cut character */
    CHECK(!strcmp(e.field, "caf?") && !strcmp(e.msg, "caf?: a\xc3\xa9?|"));
    /* through the routes' parsers, as `sd serve` starts (the demo model, no --models-dir) */
    server_opts o;
    server_opts_init(&o);
    srv *sv = calloc(1, sizeof *sv);
    REQUIRE(sv);
    srv_init(sv, &o);
    model_list l;
    char err[256];
    REQUIRE(models_scan(NULL, NULL, &l, err, sizeof err) == 0 && l.n == 1);
    sv->def_model = l.e[0];
    models_free(&l);
    char name[220] = "a"; /* "a" and 100 x U+00E9: the message quotes its first 80 bytes, half a character at the end */
    for (int i = 0; i < 100; i++) strcat(name, "\xc3\xa9");
    static const char *const bodies[] = {"{\"caf\xe9\": 1}", "{\"sd_model_checkpoint\": \"%s\"}"};
    for (int k = 0; k < 2; k++) {
        char text[400];
        snprintf(text, sizeof text, bodies[k], name);
        cJSON *b = cJSON_Parse(text);
        REQUIRE(b);
        a1111_options opts;
        unsigned status;
        memset(&e, 0, sizeof e);
        CHECK(a1111_options_parse(sv, b, &opts, &e, &status) != 0 && status == 422);
        CHECK_MSG(jfield_utf8_ok(e.field, strlen(e.field)) && jfield_utf8_ok(e.msg, strlen(e.msg)), "%s / %s", e.field, e.msg);
        CHECK_STR_CONTAINS(e.msg, k ? "no model \"a\xc3\xa9" : "caf?: not an option");
        job *j = job_new(JOB_GENERATE);
        REQUIRE(j);
        memset(&e, 0, sizeof e);
        CHECK(openai_parse(sv, b, j, &e, &status) != 0 && status == 400); /* OpenAI's unknown field is refused too */
        CHECK_MSG(jfield_utf8_ok(e.field, strlen(e.field)) && jfield_utf8_ok(e.msg, strlen(e.msg)), "%s / %s", e.field, e.msg);
        job_release(sv, j);
        cJSON_Delete(b);
    }
    pthread_mutex_destroy(&sv->mu);
    pthread_cond_destroy(&sv->wake);
    pthread_cond_destroy(&sv->idle);
    free(sv);
}

TEST(server_model_names_never_paths) {
    static const char *paths[] = {"../x", "/etc/passwd", "a/b", "a\\b", ".hidden", "..", ".", "", "a\nb"};
    for (int i = 0; i < 9; i++) CHECK_MSG(models_name_is_path(paths[i]), "\"%s\"", paths[i]);
    CHECK(!models_name_is_path("v1-5-pruned-emaonly.safetensors") && !models_name_is_path("shapes [d290451ee8]"));
    /* a folder with two models, a stray file and a hidden one */
    const char *dir = test_tmpdir();
    char p[600];
    snprintf(p, sizeof p, "%s/b-model.safetensors", dir);
    fclose(fopen(p, "w"));
    snprintf(p, sizeof p, "%s/.hidden.safetensors", dir);
    fclose(fopen(p, "w"));
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    fclose(fopen(p, "w"));
    snprintf(p, sizeof p, "%s/a-folder", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/a-folder/model_index.json", dir);
    fclose(fopen(p, "w"));
    snprintf(p, sizeof p, "%s/empty-folder", dir);
    mkdir(p, 0755);
    model_list l;
    char err[256];
    REQUIRE(models_scan(dir, NULL, &l, err, sizeof err) == 0);
    REQUIRE(l.n == 2);
    CHECK(!strcmp(l.e[0].file, "a-folder") && !strcmp(l.e[1].file, "b-model.safetensors") && !strcmp(l.e[1].name, "b-model"));
    CHECK(models_find(&l, "b-model") == 1 && models_find(&l, "b-model.safetensors") == 1 &&
          models_find(&l, "b-model.safetensors [0123456789]") == 1 && models_find(&l, "a-folder") == 0 && models_find(&l, "c") < 0);
    models_free(&l);
    /* -m outside the folder comes first; no folder, no -m: the demo model */
    REQUIRE(models_scan(dir, "/somewhere/else/x.safetensors", &l, err, sizeof err) == 0);
    CHECK(l.n == 3 && !strcmp(l.e[0].name, "x") && !strcmp(l.e[0].path, "/somewhere/else/x.safetensors"));
    models_free(&l);
    REQUIRE(models_scan(NULL, NULL, &l, err, sizeof err) == 0);
    CHECK(l.n == 1 && !strcmp(l.e[0].name, "shapes") && l.e[0].path[0] == 0);
    models_free(&l);
    CHECK(models_scan("/nonexistent/dir", NULL, &l, err, sizeof err) != 0);
    CHECK_STR_CONTAINS(err, "/nonexistent/dir");
    char **names;
    int n;
    REQUIRE(models_scan_loras(dir, &names, &n, err, sizeof err) == 0);
    CHECK(n == 1 && !strcmp(names[0], "b-model"));
    models_free_names(names, n);
}

TEST(server_a1111_sampler_and_scheduler_names) {
    const char *sched = NULL;
    CHECK(!strcmp(a1111_sampler("Euler a", &sched), "euler_a") && sched == NULL);
    CHECK(!strcmp(a1111_sampler("euler_a", &sched), "euler_a"));
    CHECK(!strcmp(a1111_sampler("k_euler_ancestral", &sched), "euler_a"));
    CHECK(!strcmp(a1111_sampler("k_dpmpp_2m", &sched), "dpm++2m"));
    CHECK(!strcmp(a1111_sampler("DPM++ 2M Karras", &sched), "dpm++2m") && sched && !strcmp(sched, "karras"));
    CHECK(a1111_sampler("Euler z", &sched) == NULL);
    int ok;
    CHECK(a1111_scheduler("Automatic", &ok) == NULL && ok);
    CHECK(a1111_scheduler("automatic", &ok) == NULL && ok);
    CHECK(!strcmp(a1111_scheduler("Karras", &ok), "karras") && ok);
    CHECK(!strcmp(a1111_scheduler("sgm_uniform", &ok), "sgm_uniform") && ok);
    a1111_scheduler("Polyexponential", &ok);
    CHECK(!ok);
    cJSON *s = a1111_samplers_json();
    int plms = 0;
    for (cJSON *it = s->child; it; it = it->next) plms += !strcmp(cJSON_GetObjectItem(it, "name")->valuestring, "PLMS");
    CHECK_MSG(plms == 1, "PLMS listed %d times", plms);
    cJSON_Delete(s);
}

/* A1111's create_binary_mask(round) then ImageOps.invert, pixel by pixel: 128 stays black, 129 turns white. */
TEST(server_mask_round_and_invert_as_a1111) {
    uint8_t px[6] = {0, 1, 128, 129, 200, 255};
    sd_image m = {6, 1, 1, px};
    CHECK(mask_prepare(&m, 1, 0) == 3);
    CHECK(px[0] == 0 && px[1] == 0 && px[2] == 0 && px[3] == 255 && px[4] == 255 && px[5] == 255);
    CHECK(mask_prepare(&m, 1, 1) == 3); /* rounded again (no change), then inverted */
    CHECK(px[0] == 255 && px[2] == 255 && px[3] == 0 && px[5] == 0);
    uint8_t soft[3] = {0, 100, 255};
    sd_image s2 = {3, 1, 1, soft};
    CHECK(mask_prepare(&s2, 0, 1) == 2); /* mask_round false: the grey level kept, inverted */
    CHECK(soft[0] == 255 && soft[1] == 155 && soft[2] == 0);
    uint8_t dark[2] = {128, 40};
    sd_image s3 = {2, 1, 1, dark};
    CHECK(mask_prepare(&s3, 1, 0) == 0); /* nothing to repaint: the caller refuses inpaint_full_res on it */
}
