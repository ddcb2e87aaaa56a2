/* test_sched_config.c — a model's scheduler config, key by key: generations against diffusers with each honoured key
 * set (tests/golden/sched_config, tools/goldens_sched_config.py: the config goes into a copy of the tiny model
 * folder), clip skip on the negative prompt, and the keys refused by name (only for the samplers that read them). */
#include "test.h"
#include "golden_result.h"
#include "latent_capture.h"
#include "load_model.h"
#include "../core/error.h"
#include "../core/fileio.h"
#include "../scheduler/schedule.h"
#include "../sd.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static const char *g_tmp; /* the running test's temporary folder */

/* A copy of golden/pipeline/<model> under the test's temporary folder with `config` as its scheduler config. */
static void model_with_config(const char *model, const char *config, char *dir, size_t cap) {
    static int serial;
    snprintf(dir, cap, "%s/m%d", g_tmp, serial++);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -r %s %s", test_path(model), dir);
    if (system(cmd) != 0) test_note("copy failed: %s", cmd);
    char path[1024];
    snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(config, f);
        fclose(f);
    }
}

TEST(sched_config_keys_match_diffusers) {
    g_tmp = test_tmpdir();
    char *txt;
    REQUIRE(file_read(test_path("golden/sched_config/cases.json"), 1 << 20, &txt, NULL) == SD_OK);
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    REQUIRE(root);
    double worst_rel = 0;
    int worst_px = 0, ncases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        char *config = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "config")), dir[512], model[128];
        snprintf(model, sizeof model, "golden/pipeline/%s", cJSON_GetObjectItem(c, "model")->valuestring);
        model_with_config(model, config, dir, sizeof dir);
        free(config);
        sd_ctx *ctx = test_load_model(dir);
        sd_gen_params p;
        sd_gen_params_init(&p);
        p.prompt = cJSON_GetObjectItem(c, "prompt")->valuestring;
        p.negative_prompt = cJSON_GetObjectItem(c, "negative_prompt")->valuestring;
        p.sampler = cJSON_GetObjectItem(c, "sampler")->valuestring;
        p.steps = cJSON_GetObjectItem(c, "steps")->valueint;
        p.cfg_scale = (float)cJSON_GetObjectItem(c, "cfg")->valuedouble;
        p.seed = (uint64_t)cJSON_GetObjectItem(c, "seed")->valuedouble;
        p.width = cJSON_GetObjectItem(c, "width")->valueint;
        p.height = cJSON_GetObjectItem(c, "height")->valueint;
        p.guidance_rescale = (float)cJSON_GetObjectItem(c, "guidance_rescale")->valuedouble;
        p.clip_skip = cJSON_GetObjectItem(c, "clip_skip")->valueint;
        const cJSON *ts = cJSON_GetObjectItem(c, "timestep_spacing");
        p.timestep_spacing = cJSON_IsString(ts) ? ts->valuestring : NULL;
        p.rng = "cpu";
        latent_capture cap = {0};
        sd_result r;
        sd_status st = sd_generate(ctx, &p, latent_capture_fn, &cap, &r);
        CHECK_MSG(st == SD_OK, "%s: %s", name, sd_last_error());
        if (st == SD_OK) {
            golden_diff d;
            REQUIRE(golden_result_compare("golden/sched_config", name, &cap, &r.images[0], &d) == 0 && d.size_ok);
            /* about twice what is measured: 3e-7 of the latent's scale for most, 4.0e-5 for zero-SNR Euler (its first
             * step starts at σ = 4096 and cancels ~12 bits of float32 in x + d·dt, so the operation order of float32
             * arithmetic shows); pictures 1/255 */
            CHECK_MSG(d.rel <= 1e-4, "%s: latent max abs err %.3g (%.3g relative to the latent scale)", name, d.abs, d.rel);
            CHECK_MSG(d.px <= 1, "%s: picture differs by %d/255", name, d.px);
            worst_rel = fmax(worst_rel, d.rel);
            worst_px = d.px > worst_px ? d.px : worst_px;
            ncases++;
            sd_result_free(&r);
        }
        free(cap.latent);
        sd_free(ctx);
    }
    test_note("%d generations under scheduler configs: latent max err %.3g relative to its scale, picture max diff %d/255",
              ncases, worst_rel, worst_px);
    CHECK(ncases == cJSON_GetArraySize(cJSON_GetObjectItem(root, "cases")) && ncases >= 40);
    cJSON_Delete(root);
}

/* Loads golden/pipeline/sd1 with `config` and runs 2 steps of `sampler`: the status, message in *msg. */
static sd_status try_config(const char *config, const char *sampler, const char *convention, char *msg, size_t cap) {
    char dir[512];
    model_with_config("golden/pipeline/sd1", config, dir, sizeof dir);
    sd_load_params lp;
    sd_load_params_init(&lp);
    lp.model_path = dir;
    sd_ctx *ctx = NULL;
    sd_status st = sd_load(&lp, &ctx);
    if (st == SD_OK && sampler) {
        sd_gen_params p;
        sd_gen_params_init(&p);
        p.prompt = "x";
        p.sampler = sampler;
        p.convention = convention;
        p.steps = 2;
        p.width = 16;
        p.height = 16;
        st = sd_check_params(ctx, &p);
    }
    snprintf(msg, cap, "%s", st == SD_OK ? "" : sd_last_error());
    sd_free(ctx);
    return st;
}

TEST(sched_config_refuses_by_name) {
    g_tmp = test_tmpdir();
    char msg[1024];
    static const struct { const char *config, *sampler, *want; } bad[] = {
        /* values no sampler can run: the load stops, naming the file and the key */
        {"{\"num_train_timesteps\": 2000}", NULL, "num_train_timesteps 2000"},
        {"{\"beta_schedule\": \"sigmoid\"}", NULL, "beta_schedule \"sigmoid\""},
        {"{\"trained_betas\": [0.1, 0.2]}", NULL, "trained_betas"},
        {"{\"prediction_type\": \"sample\"}", NULL, "prediction_type \"sample\""},
        {"{\"timestep_spacing\": \"uniform\"}", NULL, "timestep_spacing \"uniform\""},
        {"{\"use_karras_sigmas\": true, \"use_beta_sigmas\": true}", NULL, "only one of use_karras_sigmas"},
        {"{\"steps_offset\": \"one\"}", NULL, "\"steps_offset\" must be a number"},
        /* values the engine does not implement, refused for the samplers whose class reads the key */
        {"{\"thresholding\": true}", "ddim", "thresholding true is not supported with sampler ddim"},
        {"{\"solver_order\": 3}", "dpm++2m", "solver_order 3 is not supported with sampler dpm++2m"},
        {"{\"solver_type\": \"heun\"}", "dpm++2m", "solver_type heun"},
        {"{\"solver_type\": \"bh1\"}", "unipc", "solver_type bh1"},
        {"{\"skip_prk_steps\": false}", "pndm", "skip_prk_steps false"},
        {"{\"steps_offset\": 1}", "pndm", "skip_prk_steps false"}, /* PNDM's default when the key is absent */
        {"{\"final_sigmas_type\": \"sigma_min\"}", "euler", "final_sigmas_type sigma_min"},
        {"{\"interpolation_type\": \"log_linear\"}", "euler", "interpolation_type log_linear"},
        {"{\"timestep_type\": \"continuous\"}", "euler", "timestep_type continuous"},
        {"{\"algorithm_type\": \"dpmsolver\"}", "dpm++2m", "algorithm_type dpmsolver"},
        {"{\"use_lu_lambdas\": true}", "dpm++2m_sde", "use_lu_lambdas"},
        {"{\"lower_order_final\": false}", "unipc", "lower_order_final"},
        {"{\"variance_type\": \"fixed_large\"}", "ddpm", "variance_type fixed_large"},
        {"{\"lambda_min_clipped\": -5.1}", "dpm++2m", "lambda_min_clipped"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sd_status st = try_config(bad[i].config, bad[i].sampler, NULL, msg, sizeof msg);
        CHECK_MSG(st != SD_OK && strstr(msg, bad[i].want) && strstr(msg, "scheduler_config.json"), "%s with %s: got \"%s\"",
                  bad[i].config, bad[i].sampler ? bad[i].sampler : "(load)", msg);
    }
    /* the same keys are no concern of samplers whose class does not read them */
    static const struct { const char *config, *sampler; } fine[] = {
        {"{\"thresholding\": true, \"skip_prk_steps\": true}", "euler"},
        {"{\"solver_order\": 3, \"skip_prk_steps\": true}", "ddim"},
        {"{\"skip_prk_steps\": false}", "euler_a"},
        {"{\"final_sigmas_type\": \"sigma_min\"}", "ddim"},
        {"{\"lambda_min_clipped\": -Infinity, \"variance_type\": null, \"solver_type\": \"midpoint\"}", "dpm++2m"},
        {"{\"solver_type\": \"midpoint\"}", "unipc"}, /* UniPC maps DPM-Solver's names to bh2 */
        {"{\"use_karras_sigmas\": true, \"skip_prk_steps\": true}", "pndm"},
        {"{\"use_karras_sigmas\": true}", "ddim"},
    };
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++)
        for (int kd = 0; kd < 2; kd++) { /* AUTOMATIC1111 reads no diffusers config: nothing is refused there either */
            sd_status st = try_config(fine[i].config, fine[i].sampler, kd ? "kdiffusion" : NULL, msg, sizeof msg);
            CHECK_MSG(st == SD_OK, "%s with %s (%s): %s", fine[i].config, fine[i].sampler, kd ? "kdiffusion" : "diffusers", msg);
        }
    for (size_t i = 7; i < sizeof bad / sizeof bad[0]; i++) { /* the per-sampler refusals are diffusers' */
        sd_status st = try_config(bad[i].config, bad[i].sampler, "kdiffusion", msg, sizeof msg);
        CHECK_MSG(st == SD_OK, "%s with %s (kdiffusion): %s", bad[i].config, bad[i].sampler, msg);
    }
    /* betas out of order, in both conventions, name the file (the schedule's own message did not); a class's default
     * beta_end (DDIM's 0.02) counts */
    static const struct { const char *config, *sampler, *want; } betas[] = {
        {"{\"beta_start\": 0.5, \"beta_end\": 0.012}", "euler", "beta range 0.5..0.012 is invalid"},
        {"{\"beta_start\": 0.05}", "ddim", "beta range 0.05..0.02 is invalid"},
    };
    for (size_t i = 0; i < sizeof betas / sizeof betas[0]; i++)
        for (int kd = 0; kd < 2; kd++) {
            sd_status st = try_config(betas[i].config, betas[i].sampler, kd ? "kdiffusion" : NULL, msg, sizeof msg);
            CHECK_MSG(st != SD_OK && strstr(msg, betas[i].want) && strstr(msg, "/scheduler/scheduler_config.json: beta range"),
                      "%s with %s (%s): got \"%s\"", betas[i].config, betas[i].sampler, kd ? "kdiffusion" : "diffusers", msg);
        }
}

TEST(sched_config_shown_by_info) {
    g_tmp = test_tmpdir();
    char dir[512], path[700], *txt;
    model_with_config("golden/pipeline/sd1",
                      "{\"beta_schedule\": \"squaredcos_cap_v2\", \"rescale_betas_zero_snr\": true, \"prediction_type\": "
                      "\"v_prediction\", \"timestep_spacing\": \"trailing\", \"use_karras_sigmas\": true, \"solver_order\": 3}",
                      dir, sizeof dir);
    snprintf(path, sizeof path, "%s/info.txt", g_tmp);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    REQUIRE(sd_describe(dir, f) == SD_OK);
    fclose(f);
    REQUIRE(file_read(path, 1 << 20, &txt, NULL) == SD_OK);
    CHECK_STR_CONTAINS(txt, "squaredcos_cap_v2");
    CHECK_STR_CONTAINS(txt, "zero terminal SNR");
    CHECK_STR_CONTAINS(txt, "v prediction");
    CHECK_STR_CONTAINS(txt, "timestep spacing trailing");
    CHECK_STR_CONTAINS(txt, "karras sigmas");
    CHECK_STR_CONTAINS(txt, "refused: solver_order 3 (with dpm++2m, dpm++2m_sde, unipc)");
    free(txt);
}

TEST(sched_beta_ppf_matches_scipy) {
    /* scipy.stats.beta.ppf(p, 0.6, 0.6), scipy 1.17.1 */
    static const double p[] = {0.0, 1e-6, 0.05, 0.25, 0.5, 0.8, 0.999999, 1.0};
    static const double want[] = {0.0, 1.8558824624053043e-10, 0.012554456873611399, 0.17568037865269498, 0.5000000000000001,
                                  0.8770782495416671, 0.9999999998144118, 1.0};
    double worst = 0;
    for (int i = 0; i < 8; i++) {
        double got = sched_beta_ppf(p[i], 0.6, 0.6), e = fabs(got - want[i]) / fmax(want[i], 1e-300);
        worst = fmax(worst, want[i] ? e : fabs(got));
    }
    test_note("Beta(0.6, 0.6) quantiles: max relative error %.3g against scipy", worst);
    CHECK(worst < 1e-12);
}
