/* test_lora.c — LoRA / LyCORIS adapters and textual-inversion embeddings on the tiny SD1 and SDXL models
 * (tests/golden/lora, made by tools/goldens_lora.py):
 *   - whole generations against diffusers (load_lora_weights + set_adapters strengths per part, load_textual_inversion),
 *     kohya and PEFT layouts, several adapters, negative and split strengths: latents within 1e-6 of their scale,
 *     pictures within 1/255;
 *   - LoHa, LoKr, DoRA, LoCon's Tucker core against NumPy's formulas, alone and merged into the model;
 *   - switching adapters between calls gives the bits of a fresh process;
 *   - files that fit no layer, or another family, pickles, bad tags: one clear error, the model left at its base. */
#include "test.h"
#include "latent_capture.h"
#include "load_model.h"
#include "model_copy.h"
#include "pipeline_case.h"
#include "../core/error.h"
#include "../core/sha256.h"
#include "../kernels/adapter.h"
#include "../pipeline/lora.h"
#include "../sd.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static cJSON *cases_json(void) {
    char *txt;
    REQUIRE(file_read(test_path("golden/lora/cases.json"), 1 << 20, &txt, NULL) == SD_OK);
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    REQUIRE(root);
    return root;
}

/* The tiny model of tests/golden/pipeline with its UNet and text encoders in F32 (as diffusers ran it), in dir. */
static sd_ctx *f32_model(const char *name, const char *dir, const st_file *replace) {
    static const char *const parts[] = {"unet", "text_encoder", "text_encoder_2", NULL};
    char src[1024];
    snprintf(src, sizeof src, "golden/pipeline/%s", name);
    REQUIRE(model_copy_f32(test_path(src), dir, parts, replace) == 0);
    return test_load_model(dir);
}

typedef struct run_out {
    float *latent;
    size_t n;
    sd_image img;
    char *info;
} run_out;

static void run_free(run_out *o) {
    free(o->latent);
    sd_image_free(&o->img);
    free(o->info);
    memset(o, 0, sizeof *o);
}

static sd_status run(sd_ctx *ctx, const sd_gen_params *p, run_out *o) {
    latent_capture cap = {0};
    sd_result r;
    memset(o, 0, sizeof *o);
    sd_status st = sd_generate(ctx, p, latent_capture_fn, &cap, &r);
    if (st != SD_OK) {
        free(cap.latent);
        return st;
    }
    o->latent = cap.latent;
    o->n = cap.n;
    o->img = r.images[0];
    r.images[0].data = NULL;
    o->info = strdup(r.infotext[0]);
    sd_result_free(&r);
    return SD_OK;
}

/* max |got - want| / max(1, max |want|) and the largest pixel difference against the case's golden files */
static void compare_golden(const char *name, const run_out *o, double *rel, int *px) {
    char path[512];
    snprintf(path, sizeof path, "golden/lora/%s.safetensors", name);
    int64_t n;
    float *want = latent_golden(path, &n);
    REQUIRE(want && (size_t)n == o->n);
    double err = 0, scale = 1;
    for (int64_t i = 0; i < n; i++) {
        err = fmax(err, fabs(o->latent[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    free(want);
    *rel = err / scale;
    snprintf(path, sizeof path, "golden/lora/%s.png", name);
    sd_image ref;
    REQUIRE(sd_image_load(test_path(path), 3, &ref) == SD_OK);
    REQUIRE(ref.w == o->img.w && ref.h == o->img.h);
    *px = 0;
    for (size_t i = 0; i < (size_t)ref.w * ref.h * 3; i++) *px = abs(ref.data[i] - o->img.data[i]) > *px ? abs(ref.data[i] - o->img.data[i]) : *px;
    sd_image_free(&ref);
}

/* A1111's LoRA hash of a file: SHA-256 of what follows the safetensors header, 12 hex digits. */
static void addnet_hash(const char *path, char out[13]) {
    char *data;
    size_t n;
    REQUIRE(file_read(path, 1 << 26, &data, &n) == SD_OK && n > 8);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | (unsigned char)data[i];
    char hex[65];
    sd_sha256_string(data + 8 + h, n - 8 - h, hex);
    snprintf(out, 13, "%.12s", hex);
    free(data);
}

TEST(lora_pipeline_matches_diffusers) {
    cJSON *root = cases_json();
    const char *tmp = test_tmpdir();
    char d1[1024], d2[1024];
    snprintf(d1, sizeof d1, "%s/sd1", tmp);
    snprintf(d2, sizeof d2, "%s/sdxl", tmp);
    sd_ctx *models[2] = {f32_model("sd1", d1, NULL), f32_model("sdxl", d2, NULL)};
    double worst = 0;
    int worst_px = 0, ncases = 0, nti = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        int xl = !strcmp(cJSON_GetObjectItem(c, "model")->valuestring, "sdxl");
        sd_gen_params p;
        pipeline_case_params(c, &p);
        char loras[1024], emb[1024];
        snprintf(loras, sizeof loras, "%s", test_path("golden/lora/loras"));
        snprintf(emb, sizeof emb, "%s", test_path(xl ? "golden/lora/emb_xl" : "golden/lora/emb"));
        p.lora_dir = loras;
        if (cJSON_GetObjectItem(c, "embeddings")) p.embedding_dir = emb, nti++;
        run_out o;
        sd_status st = run(models[xl], &p, &o);
        CHECK_MSG(st == SD_OK, "%s: %s", name, sd_last_error());
        if (st != SD_OK) continue;
        double rel;
        int px;
        compare_golden(name, &o, &rel, &px);
        /* gated at about twice the worst measured (3.6e-7 of the scale, 1/255); the issue asked 1e-4 and 2/255 */
        CHECK_MSG(rel <= 1e-6, "%s: latent error %.3g of its scale", name, rel);
        CHECK_MSG(px <= 1, "%s: image differs by %d/255", name, px);
        worst = fmax(worst, rel);
        worst_px = px > worst_px ? px : worst_px;
        /* the infotext keeps the tags and names each file with A1111's hash */
        CHECK_STR_CONTAINS(o.info, p.prompt);
        if (!strcmp(name, "sd1_two")) {
            char h1[13], h2[13], want[128];
            addnet_hash(test_path("golden/lora/loras/sd1_kohya.safetensors"), h1);
            addnet_hash(test_path("golden/lora/loras/sd1_peft.safetensors"), h2);
            snprintf(want, sizeof want, "Lora hashes: \"sd1_kohya: %s, sd1_peft: %s\"", h1, h2);
            CHECK_STR_CONTAINS(o.info, want);
        }
        if (!strcmp(name, "sd1_ti")) {
            char hex[65], want[64];
            REQUIRE(sd_sha256_file(test_path("golden/lora/emb/hexstyle.safetensors"), hex) == SD_OK);
            snprintf(want, sizeof want, "hexstyle: %.12s", hex);
            CHECK_STR_CONTAINS(o.info, "TI hashes: ");
            CHECK_STR_CONTAINS(o.info, want);
            CHECK_STR_CONTAINS(o.info, "neg1: ");
        }
        run_free(&o);
        ncases++;
    }
    test_note("%d cases (%d with embeddings): latent error %.3g of its scale at most, images within %d/255", ncases, nti, worst, worst_px);
    CHECK(ncases == 8 && nti == 2);
    sd_free(models[0]);
    sd_free(models[1]);
    cJSON_Delete(root);
}

static int same_bits(const run_out *a, const run_out *b) {
    return a->n == b->n && !memcmp(a->latent, b->latent, a->n * sizeof(float)) && a->img.w == b->img.w &&
           !memcmp(a->img.data, b->img.data, (size_t)a->img.w * a->img.h * 3);
}

static void lora_params(sd_gen_params *p, const char *prompt, uint64_t seed) {
    sd_gen_params_init(p);
    p->prompt = prompt;
    p->negative_prompt = "blurry";
    p->steps = 3;
    p->cfg_scale = 5.0f;
    p->width = 48;
    p->height = 32;
    p->seed = seed;
    p->sampler = "euler_a";
    p->rng = "cpu";
    p->lora_dir = test_path("golden/lora/loras");
}

/* The f16 model (merged weights go back to f16 as the checkpoint stores them): any sequence of adapter sets gives,
 * for each call, the bits a fresh context gives. */
TEST(lora_switching_matches_a_fresh_process) {
    char loras[1024];
    snprintf(loras, sizeof loras, "%s", test_path("golden/lora/loras"));
    const char *prompts[4] = {"a red circle <lora:sd1_kohya:0.9>", "a red circle <lora:sd1_peft:-1.2> <lora:sd1_kohya:0.3:0.7>",
                              "a red circle", "a red circle <lora:sd1_lycoris>"};
    sd_ctx *ctx = test_load_model(test_path("golden/pipeline/sd1"));
    run_out seq[6];
    int order[6] = {0, 1, 2, 3, 0, 2};
    for (int i = 0; i < 6; i++) {
        sd_gen_params p;
        lora_params(&p, prompts[order[i]], 77);
        p.lora_dir = loras;
        REQUIRE_MSG(run(ctx, &p, &seq[i]) == SD_OK, "%s", sd_last_error());
    }
    sd_free(ctx);
    for (int k = 0; k < 4; k++) {
        sd_ctx *fresh = test_load_model(test_path("golden/pipeline/sd1"));
        sd_gen_params p;
        lora_params(&p, prompts[k], 77);
        p.lora_dir = loras;
        run_out f;
        REQUIRE_MSG(run(fresh, &p, &f) == SD_OK, "%s", sd_last_error());
        for (int i = 0; i < 6; i++)
            if (order[i] == k) CHECK_MSG(same_bits(&seq[i], &f), "call %d (\"%s\") differs from a fresh process", i + 1, prompts[k]);
        run_free(&f);
        sd_free(fresh);
    }
    CHECK_MSG(!same_bits(&seq[0], &seq[2]) && !same_bits(&seq[1], &seq[2]) && !same_bits(&seq[3], &seq[2]), "a LoRA changed nothing");
    for (int i = 0; i < 6; i++) run_free(&seq[i]);
}

/* LoHa, LoKr (full, factored, Tucker), DoRA (per output row, LyCORIS' per-input layout, PEFT's vector), LoCon with
 * a Tucker core: W + λ·update against NumPy (tools/goldens_lora.py lycoris_cases). */
TEST(lora_lycoris_formulas_match_numpy) {
    cJSON *root = cases_json();
    ad_file *a;
    REQUIRE_MSG(ad_open(test_path("golden/lora/adapters.safetensors"), &a) == SD_OK, "%s", sd_last_error());
    double worst = 0;
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "lycoris")) {
        const char *name = cJSON_GetObjectItem(c, "module")->valuestring;
        const cJSON *sh = cJSON_GetObjectItem(c, "shape");
        int d[4];
        for (int i = 0; i < 4; i++) d[i] = cJSON_GetArrayItem(sh, i)->valueint;
        const ad_module *m = NULL;
        for (int i = 0; i < a->n; i++)
            if (!strcmp(a->mod[i].name, name)) m = &a->mod[i];
        REQUIRE_MSG(m, "module %s not found", name);
        char key[128];
        int64_t nb, ne;
        snprintf(key, sizeof key, "base.%s", name);
        float *base = st_load_f32(a->f, key, &nb);
        snprintf(key, sizeof key, "expect.%s", name);
        float *want = st_load_f32(a->f, key, &ne);
        REQUIRE(base && want && nb == ne && nb == (int64_t)d[0] * d[1] * d[2] * d[3]);
        float *acc = malloc(nb * sizeof *acc);
        memcpy(acc, base, nb * sizeof *acc);
        sd_status st = ad_apply(a, m, base, d[0], d[1], d[2], d[3], (float)cJSON_GetObjectItem(c, "strength")->valuedouble, acc, NULL);
        CHECK_MSG(st == SD_OK, "%s: %s", name, sd_last_error());
        double err = 0, scale = 1e-6;
        for (int64_t i = 0; i < nb; i++) {
            err = fmax(err, fabs(acc[i] - want[i]));
            scale = fmax(scale, fabs(want[i]));
        }
        CHECK_MSG(err / scale <= 4e-7, "%s (%s): error %.3g of the weight's scale %.3g", name, ad_type_name(m), err / scale, scale); /* measured 1.8e-7 */
        worst = fmax(worst, err / scale);
        n++;
        free(base), free(want), free(acc);
    }
    test_note("%d modules (LoRA, LoCon, LoHa, LoKr, DoRA): merged weights within %.2g of their scale", n, worst);
    CHECK(n == 14);
    ad_close(a);
    cJSON_Delete(root);
}

/* A LoHa + LoKr + DoRA file on the SD1 model against the same model whose weights NumPy merged. */
TEST(lora_lycoris_on_the_model_matches_numpy_merge) {
    const char *tmp = test_tmpdir();
    char da[1024], db[1024];
    snprintf(da, sizeof da, "%s/base", tmp);
    snprintf(db, sizeof db, "%s/merged", tmp);
    st_file *merged;
    REQUIRE(st_open(test_path("golden/lora/merged_sd1_lycoris.safetensors"), &merged) == SD_OK);
    sd_ctx *base = f32_model("sd1", da, NULL), *ref = f32_model("sd1", db, merged);
    st_close(merged);
    sd_gen_params p;
    lora_params(&p, "a red circle on a blue background <lora:sd1_lycoris>", 5);
    run_out a, b;
    REQUIRE_MSG(run(base, &p, &a) == SD_OK, "%s", sd_last_error());
    p.prompt = "a red circle on a blue background";
    REQUIRE_MSG(run(ref, &p, &b) == SD_OK, "%s", sd_last_error());
    double err = 0, scale = 1;
    for (size_t i = 0; i < a.n; i++) err = fmax(err, fabs(a.latent[i] - b.latent[i])), scale = fmax(scale, fabs(b.latent[i]));
    test_note("LoHa + LoKr + DoRA merged by the engine vs by NumPy: latent error %.3g of its scale", err / scale);
    CHECK(err / scale <= 5e-7); /* measured 2.1e-7 */
    run_out c;
    p.prompt = "a red circle on a blue background";
    REQUIRE(run(base, &p, &c) == SD_OK);
    double d = 0;
    for (size_t i = 0; i < a.n; i++) d = fmax(d, fabs(a.latent[i] - c.latent[i]));
    CHECK_MSG(d > 100 * err, "the adapters barely changed the latent (%.3g)", d);
    run_free(&a), run_free(&b), run_free(&c);
    sd_free(base);
    sd_free(ref);
}

/* Bad adapters and tags: one clear error naming the file (and the family it fits), and the model left at its base. */
TEST(lora_errors_name_the_file_and_leave_the_base) {
    const char *tmp = test_tmpdir();
    char loras[1024], path[1200];
    snprintf(loras, sizeof loras, "%s", test_path("golden/lora/loras"));
    sd_ctx *ctx = test_load_model(test_path("golden/pipeline/sd1"));
    sd_gen_params p;
    lora_params(&p, "a red circle", 9);
    run_out base, o;
    REQUIRE(run(ctx, &p, &base) == SD_OK);
    struct { const char *prompt, *want1, *want2; } bad[] = {
        {"a red circle <lora:sdxl_kohya:1>", "sdxl_kohya.safetensors: a LoRA for SDXL", "the model is SD 1.x"},
        {"a red circle <lora:sdxl_peft>", "sdxl_peft.safetensors: ", "SDXL"},
        {"a red circle <lora:nope:1>", "<lora:nope:1>: no nope.safetensors in", "/loras"},
        {"a red circle <lora:../loras/sd1_peft>", "is a file name inside", ""},
        {"a red circle <lora:sd1_peft:x>", "\"x\" is not a number", ""},
        {"a red circle <lora:sd1_peft:1:2:3>", "at most two strengths", ""},
        /* finite as a double, inf as a float: merged inf into the weights (a black picture, exit 0) */
        {"a red circle <lora:sd1_peft:1e40>", "<lora:sd1_peft:1e40>: \"1e40\" is too large a strength", ""},
        {"a red circle <lora:sd1_peft:1:unet=-1e39>", "\"unet=-1e39\" is too large a strength", ""},
        {"a red circle <lora:sd1_peft:foo=1>", "te=NUMBER or unet=NUMBER", ""},
        {"a red circle <hypernet:thing:1>", "<hypernet:thing:1>: only <lora:...> extra networks are supported", ""},
        {"a red circle <lora:pickled>", "pickled.pt: PyTorch pickle", "safetensors"},
        {"a red circle <lora:notalora>", "notalora.safetensors: no LoRA, LyCORIS or DoRA modules in it", ""},
        /* one NaN in an up factor made the merged layer NaN: a black picture, exit 0 */
        {"a red circle <lora:nanlora>", "nanlora.safetensors: tensor \"text_encoder.encoder.layers.0.mlp.fc2.lora_B.weight\"",
         "holds NaN at element 1"},
    };
    /* a pickle and a safetensors file that is no adapter, beside copies of the real ones */
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/loras", tmp);
    REQUIRE(mkdir(dir, 0755) == 0);
    const char *names[] = {"sd1_peft", "sdxl_kohya", "sdxl_peft"};
    for (int i = 0; i < 3; i++) {
        char s[1200], d[1200];
        snprintf(s, sizeof s, "%s/%s.safetensors", loras, names[i]);
        snprintf(d, sizeof d, "%s/%s.safetensors", dir, names[i]);
        REQUIRE(model_copy_file(s, d) == 0);
    }
    snprintf(path, sizeof path, "%s/pickled.pt", dir);
    REQUIRE(model_write_text(path, "PK\x03\x04 not really") == 0);
    snprintf(path, sizeof path, "%s/notalora.safetensors", dir);
    REQUIRE(model_copy_file(test_path("golden/lora/emb/hexstyle.safetensors"), path) == 0);
    snprintf(path, sizeof path, "%s/nanlora.safetensors", dir);
    REQUIRE(model_copy_with_nan(test_path("golden/lora/loras/sd1_peft.safetensors"), path, "fc2.lora_B.weight", 1) == 0);
    p.lora_dir = dir;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p.prompt = bad[i].prompt;
        sd_status st = run(ctx, &p, &o);
        CHECK_MSG(st != SD_OK, "\"%s\" was accepted", bad[i].prompt);
        if (st == SD_OK) { run_free(&o); continue; }
        CHECK_STR_CONTAINS(sd_last_error(), bad[i].want1);
        CHECK_STR_CONTAINS(sd_last_error(), bad[i].want2);
    }
    /* tags in the negative prompt, and a LoRA file that does not exist */
    p.prompt = "a red circle";
    p.negative_prompt = "blurry <lora:sd1_peft:1>";
    CHECK(run(ctx, &p, &o) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "LoRA tags belong in the prompt");
    p.negative_prompt = "blurry";
    sd_lora l = {"/nonexistent/x.safetensors", 1, 1};
    p.loras = &l;
    p.lora_count = 1;
    CHECK(sd_check_params(ctx, &p) != SD_OK);
    CHECK_STR_CONTAINS(sd_last_error(), "/nonexistent/x.safetensors: no such LoRA file");
    p.loras = NULL;
    p.lora_count = 0;
    /* after all that the model is its base again: a failure half-way through a merge left nothing behind */
    p.prompt = "a red circle <lora:sd1_peft> <lora:sdxl_kohya>";
    CHECK(run(ctx, &p, &o) != SD_OK);
    p.prompt = "a red circle";
    REQUIRE(run(ctx, &p, &o) == SD_OK);
    CHECK_MSG(same_bits(&o, &base), "the base model changed after failed LoRA calls");
    run_free(&o);
    run_free(&base);
    sd_free(ctx);
}

/* Malformed modules are named with what is wrong with them: a rank-0 (empty) factor said "down 2D and up 2D
 * factors, expected 2D or 4D", which are the dimensions it has. */
TEST(lora_file_errors_say_what_is_wrong) {
    static const float zero[64];
    static const struct { const char *names[4]; int64_t shapes[4][3]; const char *want; } bad[] = {
        {{"m.lora_down.weight", "m.lora_up.weight"}, {{2, 0, 8}, {2, 8, 0}}, "module \"m\": rank 0 (the down factor \"m.lora_down.weight\" is empty)"},
        {{"m.lora_down.weight", "m.lora_up.weight"}, {{3, 2, 2}, {2, 8, 2}}, "module \"m\": down 3D and up 2D factors, expected 2D (linear) or 4D"},
        {{"m.hada_w1_a", "m.hada_w1_b", "m.hada_w2_a", "m.hada_w2_b"}, {{2, 8, 0}, {2, 0, 8}, {2, 8, 0}, {2, 0, 8}},
         "module \"m\": rank 0 (the LoHa factor \"m.hada_w1_b\" is empty)"},
    };
    char path[1024];
    snprintf(path, sizeof path, "%s/bad.safetensors", test_tmpdir());
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        st_writer *w = st_writer_new();
        for (int k = 0; k < 4 && bad[i].names[k]; k++) {
            int64_t shape[2] = {bad[i].shapes[k][1], bad[i].shapes[k][2]}, dims3[3] = {2, 2, 2};
            int nd = (int)bad[i].shapes[k][0];
            REQUIRE(st_writer_add(w, bad[i].names[k], ST_F32, nd, nd == 3 ? dims3 : shape, zero) == SD_OK);
        }
        REQUIRE(st_writer_save(w, path) == SD_OK);
        st_writer_free(w);
        ad_file *a = NULL;
        CHECK_MSG(ad_open(path, &a) != SD_OK, "case %zu accepted", i);
        CHECK_STR_CONTAINS(sd_last_error(), bad[i].want);
        CHECK_STR_CONTAINS(sd_last_error(), "bad.safetensors: ");
        ad_close(a);
    }
}

/* Which layer each spelling of a module names: kohya (diffusers and LDM paths, with and without "text_model"),
 * diffusers / PEFT, older diffusers attention processors. */
TEST(lora_module_names_find_their_layers) {
    char out[256];
    CHECK(unet_ldm_layer_to_diffusers("input_blocks_4_1_transformer_blocks_0_attn1_to_q", 2, out, sizeof out));
    CHECK(!strcmp(out, "down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"));
    CHECK(unet_ldm_layer_to_diffusers("output_blocks_3_0_skip_connection", 2, out, sizeof out));
    CHECK(!strcmp(out, "up_blocks_1_resnets_0_conv_shortcut"));
    CHECK(unet_ldm_layer_to_diffusers("middle_block_1_proj_in", 2, out, sizeof out) && !strcmp(out, "mid_block_attentions_0_proj_in"));
    CHECK(unet_ldm_layer_to_diffusers("middle_block_2_in_layers_2", 2, out, sizeof out) && !strcmp(out, "mid_block_resnets_1_conv1"));
    CHECK(unet_ldm_layer_to_diffusers("input_blocks_3_0_op", 2, out, sizeof out) && !strcmp(out, "down_blocks_0_downsamplers_0_conv"));
    CHECK(unet_ldm_layer_to_diffusers("output_blocks_2_1_conv", 2, out, sizeof out) && !strcmp(out, "up_blocks_0_upsamplers_0_conv"));
    CHECK(unet_ldm_layer_to_diffusers("label_emb_0_0", 2, out, sizeof out) && !strcmp(out, "add_embedding_linear_1"));
    CHECK(!unet_ldm_layer_to_diffusers("down_blocks_0_resnets_0_conv1", 2, out, sizeof out));

    sd_ctx *ctx = test_load_model(test_path("golden/pipeline/sd1"));
    lora_state *s = ctx->lora;
    int lpb = unet_get_config(ctx->unet)->layers[0], part;
    const char *q = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight";
    struct { const char *module, *want; int part; } names[] = {
        {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", q, LORA_UNET},
        {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", q, LORA_UNET},
        {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora", q, LORA_UNET},
        {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora",
         "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.weight", LORA_UNET},
        {"lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q", q, LORA_UNET}, /* LDM names, 1 layer per block */
        {"lora_unet_input_blocks_1_0_in_layers_2", "down_blocks.0.resnets.0.conv1.weight", LORA_UNET},
        {"lora_te_text_model_encoder_layers_1_self_attn_k_proj", "text_model.encoder.layers.1.self_attn.k_proj.weight", LORA_TE},
        {"lora_te_encoder_layers_1_self_attn_k_proj", "text_model.encoder.layers.1.self_attn.k_proj.weight", LORA_TE},
        {"text_encoder.text_model.encoder.layers.0.mlp.fc2", "text_model.encoder.layers.0.mlp.fc2.weight", LORA_TE},
        {"text_encoder.encoder.layers.0.mlp.fc1.lora_linear_layer", "text_model.encoder.layers.0.mlp.fc1.weight", LORA_TE},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        wsrc *w = lora_target(s, names[i].module, lpb, &part);
        CHECK_MSG(w && !strcmp(w->name, names[i].want) && part == names[i].part, "%s -> %s", names[i].module, w ? w->name : "nothing");
    }
    CHECK(!lora_target(s, "lora_unet_down_blocks_9_attentions_0_proj_in", lpb, &part));
    CHECK(!lora_target(s, "lora_te2_text_model_encoder_layers_0_mlp_fc1", lpb, &part)); /* no second encoder in SD 1.x */
    CHECK(!lora_target(s, "something_else", lpb, &part));
    sd_free(ctx);
}

/* <lora:...> tags: cut out of the encoder's text, strengths as AUTOMATIC1111 reads them, --lora specs. */
TEST(lora_tags_and_specs) {
    sd_gen_params p;
    sd_gen_params_init(&p);
    p.lora_dir = test_path("golden/lora/loras");
    p.prompt = "a <lora:sd1_kohya:0.5> red circle<lora:sd1_peft:0.2:-1.5> <lyco:sd1_lycoris:te=0.3:unet=0.9>, <lora:sd1_kohya>";
    lora_call lc;
    REQUIRE_MSG(lora_resolve(&p, &lc) == SD_OK, "%s", sd_last_error());
    CHECK(!strcmp(lc.prompt, "a  red circle , "));
    REQUIRE(lc.n == 4);
    float want[4][2] = {{0.5f, 0.5f}, {0.2f, -1.5f}, {0.3f, 0.9f}, {1, 1}};
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(lc.v[i].te, want[i][0], 1e-7);
        CHECK_NEAR(lc.v[i].unet, want[i][1], 1e-7);
        CHECK(lc.v[i].from_prompt);
    }
    CHECK(!strcmp(lc.v[1].name, "sd1_peft") && strstr(lc.v[1].path, "loras/sd1_peft.safetensors"));
    lora_call_free(&lc);
    p.prompt = "a <b> c <d:> e <x:y"; /* not tags: stays text */
    REQUIRE(lora_resolve(&p, &lc) == SD_OK);
    CHECK(!strcmp(lc.prompt, p.prompt) && lc.n == 0);
    lora_call_free(&lc);
    char spec[3][64] = {"dir/a.safetensors", "dir/a:b.safetensors:0.7", "x.safetensors:0.25:-2"};
    sd_lora l;
    REQUIRE(sd_lora_parse(spec[0], &l) == SD_OK);
    CHECK(!strcmp(l.path, "dir/a.safetensors") && l.te_weight == 1 && l.unet_weight == 1);
    REQUIRE(sd_lora_parse(spec[1], &l) == SD_OK);
    CHECK(!strcmp(l.path, "dir/a:b.safetensors") && l.te_weight == 0.7f && l.unet_weight == 0.7f);
    REQUIRE(sd_lora_parse(spec[2], &l) == SD_OK);
    CHECK(!strcmp(l.path, "x.safetensors") && l.te_weight == 0.25f && l.unet_weight == -2.0f);
}

/* The PNG keeps what the images need: the tags in the prompt, the --lora files in our JSON, A1111's hash lists;
 * --from-png (sd_params_from_png) resolves them again to the same picture. */
TEST(lora_png_settings_round_trip) {
    sd_ctx *ctx = test_load_model(test_path("golden/pipeline/sd1"));
    char lpath[1024], emb[1024];
    snprintf(lpath, sizeof lpath, "%s", test_path("golden/lora/loras/sd1_peft.safetensors"));
    snprintf(emb, sizeof emb, "%s", test_path("golden/lora/emb"));
    sd_lora l = {lpath, 0.6f, -0.4f};
    sd_gen_params p;
    lora_params(&p, "a hexstyle circle <lora:sd1_kohya:0.7>", 11);
    p.loras = &l;
    p.lora_count = 1;
    p.embedding_dir = emb;
    sd_result r;
    REQUIRE_MSG(sd_generate(ctx, &p, NULL, NULL, &r) == SD_OK, "%s", sd_last_error());
    CHECK_STR_CONTAINS(r.infotext[0], "a hexstyle circle <lora:sd1_kohya:0.7>\n");
    CHECK_STR_CONTAINS(r.infotext[0], "Lora hashes: \"sd1_peft: ");
    CHECK_STR_CONTAINS(r.infotext[0], ", sd1_kohya: ");
    CHECK_STR_CONTAINS(r.infotext[0], "TI hashes: \"hexstyle: ");
    char png[1100];
    snprintf(png, sizeof png, "%s/a.png", test_tmpdir());
    REQUIRE(sd_save_png(png, &r.images[0], r.infotext[0], r.json[0], 0) == SD_OK);
    sd_gen_params q;
    void *store;
    REQUIRE_MSG(sd_params_from_png(png, &q, &store) == SD_OK, "%s", sd_last_error());
    CHECK(!strcmp(q.prompt, p.prompt));
    REQUIRE(q.lora_count == 1);
    CHECK(!strcmp(q.loras[0].path, lpath) && q.loras[0].te_weight == 0.6f && q.loras[0].unet_weight == -0.4f);
    q.lora_dir = p.lora_dir; /* the folders come from the command line again, as in AUTOMATIC1111 */
    q.embedding_dir = emb;
    sd_result r2;
    REQUIRE_MSG(sd_generate(ctx, &q, NULL, NULL, &r2) == SD_OK, "%s", sd_last_error());
    CHECK(!memcmp(r.images[0].data, r2.images[0].data, (size_t)r.images[0].w * r.images[0].h * 3));
    free(store);
    sd_result_free(&r);
    sd_result_free(&r2);
    sd_free(ctx);
}
