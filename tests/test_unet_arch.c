/* test_unet_arch.c — full-size UNet architectures without weights: the loader must ask for exactly the
 * tensors (names and shapes) of SD 1.5 (fact sheet list, original names), SD 2.x, SDXL base (both
 * namings) and SDXL refiner (lists diffusers builds, tools/goldens_unet.py), configs inferred from those
 * names must equal the models' config.json, and bad checkpoints and configs get errors naming the problem. */
#include "test.h"
#include "../core/error.h"
#include "../unet/unet.h"

#include <stdlib.h>
#include <zlib.h>

typedef struct keylist {
    int n;
    char **name;
    int ndim[4096];
    int64_t shape[4096][4];
} keylist;

/* Reads "name<TAB>d0,d1,..." lines (plain or gzip'd; '#' lines are comments). */
static keylist *keys_read(const char *rel) {
    gzFile g = gzopen(test_path(rel), "rb");
    REQUIRE_MSG(g, "cannot open %s", rel);
    keylist *k = calloc(1, sizeof *k);
    k->name = calloc(4096, sizeof(char *));
    char line[1024];
    while (gzgets(g, line, sizeof line)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char *tab = strchr(line, '\t');
        REQUIRE_MSG(tab && k->n < 4096, "%s: bad line %s", rel, line);
        *tab = 0;
        k->name[k->n] = strdup(line);
        char *s = tab + 1, *e;
        int d = 0;
        while (d < 4) {
            k->shape[k->n][d++] = strtoll(s, &e, 10);
            if (*e != ',') break;
            s = e + 1;
        }
        k->ndim[k->n] = d;
        k->n++;
    }
    gzclose(g);
    return k;
}

static void keys_free(keylist *k) {
    for (int i = 0; i < k->n; i++) free(k->name[i]);
    free(k->name);
    free(k);
}

static double keys_params(const keylist *k) {
    double total = 0;
    for (int i = 0; i < k->n; i++) {
        double p = 1;
        for (int d = 0; d < k->ndim[i]; d++) p *= (double)k->shape[i][d];
        total += p;
    }
    return total;
}

/* Virtual wmap of a list under canonical names (LDM names mapped like unet_add_tensors does). */
static wmap *keys_map(const keylist *k, const char *ldm_prefix) {
    wmap *m = wmap_new();
    int lpb = 0;
    if (ldm_prefix) REQUIRE_MSG(unet_ldm_layers_per_block((const char *const *)k->name, k->n, ldm_prefix, &lpb) == SD_OK, "%s", sd_last_error());
    for (int i = 0; i < k->n; i++) {
        char canon[512];
        const char *name = k->name[i];
        if (ldm_prefix) {
            size_t pl = strlen(ldm_prefix);
            REQUIRE(!strncmp(name, ldm_prefix, pl));
            if (!unet_ldm_to_diffusers(name + pl, lpb, canon, sizeof canon)) snprintf(canon, sizeof canon, "%s", name + pl);
            name = canon;
        }
        REQUIRE_MSG(wmap_add_virtual(m, name, ST_F16, k->ndim[i], k->shape[i]) == SD_OK, "%s", sd_last_error());
    }
    return m;
}

/* Loads cfg against m in measure mode; returns the status (message in sd_last_error). */
static sd_status load_check(wmap *m, const unet_config *cfg) {
    be *b = be_cpu_new(1);
    REQUIRE(b);
    be_measure_begin(b);
    unet_model *u = NULL;
    sd_status st = unet_load(b, m, cfg, &u);
    be_measure_end(b);
    unet_free(b, u);
    be_free(b);
    return st;
}

static void config_file(const char *rel, unet_config *cfg) {
    REQUIRE_MSG(unet_config_from_file(test_path(rel), cfg) == SD_OK, "%s", sd_last_error());
}

static int cfg_equal(const unet_config *a, const unet_config *b) {
    unet_config x = *a, y = *b;
    x.sample_size = y.sample_size = 0; /* only config.json knows it */
    if (!memcmp(&x, &y, sizeof x)) return 1;
    /* say where they differ */
    const int *p = (const int *)&x, *q = (const int *)&y;
    for (size_t i = 0; i < sizeof x / sizeof(int); i++)
        if (p[i] != q[i]) test_note("config differs at int #%zu: %d vs %d", i, p[i], q[i]);
    return 0;
}

/* Inference from the list equals config.json, and the loader takes the list exactly. */
static void arch_case(const char *list, const char *ldm_prefix, const char *json, double params, unet_config *out) {
    keylist *k = keys_read(list);
    wmap *m = keys_map(k, ldm_prefix);
    unet_config ci, cj;
    REQUIRE_MSG(unet_config_infer(m, &ci) == SD_OK, "%s", sd_last_error());
    config_file(json, &cj);
    CHECK_MSG(cfg_equal(&ci, &cj), "%s: inferred config differs from %s", list, json);
    sd_status st = load_check(m, &ci);
    CHECK_MSG(st == SD_OK, "%s: %s", list, sd_last_error());
    if (params > 0) CHECK_MSG(keys_params(k) == params, "%s: %.0f parameters, expected %.0f", list, keys_params(k), params);
    test_note("%s: %d tensors, %.0f parameters: loader expects exactly these; inferred config = %s", list, k->n, keys_params(k), json);
    *out = ci;
    wmap_free(m);
    keys_free(k);
}

TEST(unet_arch_sd15_original_names) {
    unet_config c;
    arch_case("data/sd15-unet-keys.tsv", "model.diffusion_model.", "data/unet-config-sd15.json", 859520964, &c);
    CHECK_EQ_INT(c.levels, 4);
    CHECK_EQ_INT(c.block_out[3], 1280);
    CHECK_EQ_INT(c.layers[0], 2);
    CHECK_EQ_INT(c.heads[0], 8);
    CHECK_EQ_INT(c.heads[2], 8);
    CHECK_EQ_INT(c.mid_heads, 8);
    CHECK_EQ_INT(c.down_depth[0][1], 1);
    CHECK_EQ_INT(c.down_depth[3][0], 0);
    CHECK_EQ_INT(c.up_depth[3][2], 0);
    CHECK_EQ_INT(c.up_depth[0][2], 1);
    CHECK_EQ_INT(c.ctx_dim, 768);
    CHECK_EQ_INT(c.linear_proj, 0);
    CHECK_EQ_INT(c.temb_dim, 1280);
    CHECK_EQ_INT(c.add_embed, 0);
}

TEST(unet_arch_sd15_inpainting) {
    keylist *k = keys_read("data/sd15-unet-keys.tsv");
    int found = 0;
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->name[i], "model.diffusion_model.input_blocks.0.0.weight")) {
            k->shape[i][1] = 9;
            found = 1;
        }
    REQUIRE(found);
    wmap *m = keys_map(k, "model.diffusion_model.");
    unet_config c;
    REQUIRE_MSG(unet_config_infer(m, &c) == SD_OK, "%s", sd_last_error());
    CHECK_EQ_INT(c.in_channels, 9);
    CHECK_EQ_INT(c.out_channels, 4);
    CHECK_MSG(load_check(m, &c) == SD_OK, "%s", sd_last_error());
    wmap_free(m);
    keys_free(k);
}

TEST(unet_arch_sd2) {
    unet_config c;
    arch_case("data/unet-keys-sd2.tsv.gz", NULL, "data/unet-config-sd2.json", 865910724, &c);
    CHECK_EQ_INT(c.linear_proj, 1);
    CHECK_EQ_INT(c.heads[0], 5);
    CHECK_EQ_INT(c.heads[1], 10);
    CHECK_EQ_INT(c.heads[2], 20);
    CHECK_EQ_INT(c.mid_heads, 20);
    CHECK_EQ_INT(c.ctx_dim, 1024);
}

TEST(unet_arch_sdxl_both_namings) {
    unet_config c, cl;
    arch_case("data/unet-keys-sdxl.tsv.gz", NULL, "data/unet-config-sdxl.json", 2567463684, &c);
    arch_case("data/unet-keys-sdxl-ldm.tsv.gz", "model.diffusion_model.", "data/unet-config-sdxl.json", 2567463684, &cl);
    CHECK_EQ_INT(c.levels, 3);
    CHECK_EQ_INT(c.down_depth[0][0], 0);
    CHECK_EQ_INT(c.down_depth[1][1], 2);
    CHECK_EQ_INT(c.down_depth[2][0], 10);
    CHECK_EQ_INT(c.up_depth[2][2], 10);
    CHECK_EQ_INT(c.up_depth[0][0], 0);
    CHECK_EQ_INT(c.mid_depth, 10);
    CHECK_EQ_INT(c.heads[2], 20);
    CHECK_EQ_INT(c.ctx_dim, 2048);
    CHECK_EQ_INT(c.add_embed, 1);
    CHECK_EQ_INT(c.add_in_dim, 2816);
    CHECK_EQ_INT(unet_config_n_time_ids(&c, 1280), 6);
}

TEST(unet_arch_sdxl_refiner) {
    unet_config c;
    arch_case("data/unet-keys-sdxl-refiner.tsv.gz", NULL, "data/unet-config-sdxl-refiner.json", 0, &c);
    CHECK_EQ_INT(c.levels, 4);
    CHECK_EQ_INT(c.block_out[0], 384);
    CHECK_EQ_INT(c.down_depth[0][0], 0);
    CHECK_EQ_INT(c.down_depth[1][0], 4);
    CHECK_EQ_INT(c.down_depth[3][0], 0);
    CHECK_EQ_INT(c.mid_depth, 4);
    CHECK_EQ_INT(c.heads[1], 12);
    CHECK_EQ_INT(c.ctx_dim, 1280);
    CHECK_EQ_INT(unet_config_n_time_ids(&c, 1280), 5);
}

/* One altered SD 1.5 list -> the load error must name the tensor. */
static void bad_case(const char *drop, const char *reshape, int dim, int64_t to, const char *retype, const char *extra, const char *want1,
                     const char *want2) {
    keylist *k = keys_read("data/sd15-unet-keys.tsv");
    wmap *m = wmap_new();
    const char *P = "model.diffusion_model.";
    int lpb;
    REQUIRE(unet_ldm_layers_per_block((const char *const *)k->name, k->n, P, &lpb) == SD_OK);
    for (int i = 0; i < k->n; i++) {
        char canon[512];
        const char *n = k->name[i] + strlen(P);
        if (!unet_ldm_to_diffusers(n, lpb, canon, sizeof canon)) snprintf(canon, sizeof canon, "%s", n);
        if (drop && !strcmp(n, drop)) continue;
        int64_t shape[4];
        memcpy(shape, k->shape[i], sizeof shape);
        if (reshape && !strcmp(n, reshape)) shape[dim] = to;
        st_dtype dt = retype && !strcmp(n, retype) ? ST_I32 : ST_F16;
        REQUIRE(wmap_add_virtual(m, canon, dt, k->ndim[i], shape) == SD_OK);
    }
    if (extra) {
        char canon[512];
        int64_t s[1] = {320};
        if (!unet_ldm_to_diffusers(extra, lpb, canon, sizeof canon)) snprintf(canon, sizeof canon, "%s", extra);
        REQUIRE(wmap_add_virtual(m, canon, ST_F16, 1, s) == SD_OK);
    }
    unet_config c;
    config_file("data/unet-config-sd15.json", &c);
    sd_status st = load_check(m, &c);
    CHECK(st == SD_ERR_MODEL);
    CHECK_STR_CONTAINS(sd_last_error(), want1);
    CHECK_STR_CONTAINS(sd_last_error(), want2);
    test_note("%s", sd_last_error());
    wmap_free(m);
    keys_free(k);
}

TEST(unet_load_errors_name_the_tensor) {
    bad_case("input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", NULL, 0, 0, NULL, NULL,
             "missing tensor", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight");
    bad_case(NULL, "output_blocks.8.0.skip_connection.weight", 1, 1280, NULL, NULL, "up_blocks.2.resnets.2.conv_shortcut.weight", "expected [640, 960]");
    bad_case(NULL, "middle_block.1.proj_in.weight", 0, 640, NULL, NULL, "mid_block.attentions.0.proj_in.weight", "shape [640, 1280, 1, 1]");
    bad_case(NULL, NULL, 0, 0, "out.2.bias", NULL, "conv_out.bias", "dtype I32");
    bad_case(NULL, NULL, 0, 0, NULL, "input_blocks.1.0.in_layers.1.weight", "unexpected tensor", "input_blocks.1.0.in_layers.1.weight");
    bad_case(NULL, NULL, 0, 0, NULL, "input_blocks.2.1.transformer_blocks.1.norm1.weight", "1 unexpected tensor",
             "down_blocks.0.attentions.1.transformer_blocks.1.norm1.weight");
}

/* Inference on a broken list names what is missing instead of guessing. */
TEST(unet_infer_errors) {
    keylist *k = keys_read("data/sd15-unet-keys.tsv");
    wmap *m = wmap_new();
    for (int i = 0; i < k->n; i++) {
        char canon[512];
        const char *n = k->name[i] + strlen("model.diffusion_model.");
        REQUIRE(unet_ldm_to_diffusers(n, 2, canon, sizeof canon));
        if (!strcmp(canon, "up_blocks.1.resnets.2.conv1.weight")) continue;
        REQUIRE(wmap_add_virtual(m, canon, ST_F16, k->ndim[i], k->shape[i]) == SD_OK);
    }
    unet_config c;
    CHECK(unet_config_infer(m, &c) == SD_ERR_MODEL);
    CHECK_STR_CONTAINS(sd_last_error(), "up_blocks.1.resnets.2.conv1.weight");
    int64_t s[2] = {10, 320};
    REQUIRE(wmap_add_virtual(m, "class_embedding.linear_1.weight", ST_F16, 2, s) == SD_OK);
    CHECK(unet_config_infer(m, &c) == SD_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(sd_last_error(), "class_embedding");
    wmap_free(m);
    keys_free(k);
}

/* config.json quirks and refusals */
TEST(unet_config_json) {
    unet_config c;
    /* the SD naming quirk: attention_head_dim = heads; num_attention_heads wins when given */
    REQUIRE(unet_config_from_json("{\"attention_head_dim\": [5, 10, 20, 20]}", &c) == SD_OK);
    CHECK_EQ_INT(c.heads[1], 10);
    CHECK_EQ_INT(c.mid_heads, 20);
    REQUIRE(unet_config_from_json("{\"attention_head_dim\": 8, \"num_attention_heads\": 4}", &c) == SD_OK);
    CHECK_EQ_INT(c.heads[0], 4);
    /* defaults are diffusers' SD 1.x values */
    CHECK_EQ_INT(c.levels, 4);
    CHECK_EQ_INT(c.layers[3], 2);
    CHECK_EQ_INT(c.ctx_dim, 1280);
    CHECK_EQ_INT(c.down_depth[2][1], 1);
    CHECK_EQ_INT(c.down_depth[3][0], 0);
    CHECK_EQ_INT(c.up_depth[0][2], 1);
    CHECK_EQ_INT(c.up_depth[3][0], 0);
    CHECK_EQ_INT(c.temb_dim, 1280);
    /* per-layer transformer depths with their mirrored list (diffusers up_blocks order) */
    REQUIRE_MSG(unet_config_from_json("{\"block_out_channels\": [64, 128], \"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\"],"
                                      "\"up_block_types\": [\"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\"], \"layers_per_block\": [1, 2],"
                                      "\"transformer_layers_per_block\": [[1], [2, 3]], \"reverse_transformer_layers_per_block\": [[4, 5, 6], [7, 8]],"
                                      "\"attention_head_dim\": 2, \"time_cond_proj_dim\": 256, \"time_embedding_dim\": 96}",
                                      &c) == SD_OK,
                "%s", sd_last_error());
    CHECK_EQ_INT(c.layers[1], 2);
    CHECK_EQ_INT(c.down_depth[1][1], 3);
    CHECK_EQ_INT(c.up_depth[1][0], 4);
    CHECK_EQ_INT(c.up_depth[1][2], 6);
    CHECK_EQ_INT(c.up_depth[0][1], 8);
    CHECK_EQ_INT(c.mid_depth, 2);
    CHECK_EQ_INT(c.time_cond_dim, 256);
    CHECK_EQ_INT(c.temb_dim, 96);
    /* refusals name the option */
    static const struct { const char *json, *word; sd_status st; } bad[] = {
        {"{\"class_embed_type\": \"timestep\"}", "class_embed_type", SD_ERR_UNSUPPORTED},
        {"{\"num_class_embeds\": 10}", "num_class_embeds", SD_ERR_UNSUPPORTED},
        {"{\"only_cross_attention\": true}", "only_cross_attention", SD_ERR_UNSUPPORTED},
        {"{\"only_cross_attention\": [false, true, false, false]}", "only_cross_attention", SD_ERR_UNSUPPORTED},
        {"{\"addition_embed_type\": \"text\"}", "addition_embed_type", SD_ERR_UNSUPPORTED},
        {"{\"mid_block_type\": null}", "mid_block_type", SD_ERR_UNSUPPORTED},
        {"{\"mid_block_type\": \"UNetMidBlock2DSimpleCrossAttn\"}", "UNetMidBlock2DSimpleCrossAttn", SD_ERR_UNSUPPORTED},
        {"{\"up_block_types\": [\"UpBlock2D\", \"AttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\"]}", "AttnUpBlock2D", SD_ERR_UNSUPPORTED},
        {"{\"time_embedding_type\": \"fourier\"}", "time_embedding_type", SD_ERR_UNSUPPORTED},
        {"{\"resnet_time_scale_shift\": \"scale_shift\"}", "resnet_time_scale_shift", SD_ERR_UNSUPPORTED},
        {"{\"conv_in_kernel\": 7}", "conv_in_kernel", SD_ERR_UNSUPPORTED},
        {"{\"encoder_hid_dim\": 1024}", "encoder_hid_dim", SD_ERR_UNSUPPORTED},
        {"{\"_class_name\": \"UNet2DModel\"}", "UNet2DModel", SD_ERR_UNSUPPORTED},
        {"{\"addition_embed_type\": \"text_time\"}", "projection_class_embeddings_input_dim", SD_ERR_FORMAT},
        {"{\"block_out_channels\": \"wide\"}", "block_out_channels", SD_ERR_FORMAT},
        {"{\"block_out_channels\": [320, 640]}", "2 block_out_channels", SD_ERR_FORMAT},
        {"{\"attention_head_dim\": 7}", "7 attention heads", SD_ERR_FORMAT},
        {"{\"transformer_layers_per_block\": [[1, 1], [1, 1], [1, 1], [1, 1]]}", "reverse_transformer_layers_per_block", SD_ERR_FORMAT},
        {"{\"norm_num_groups\": 24}", "norm_num_groups 24", SD_ERR_FORMAT},
        {"[1, 2]", "not a JSON object", SD_ERR_FORMAT},
        {"{\"in_channels\": ", "not valid JSON", SD_ERR_FORMAT},
        /* numbers range-checked before conversion (999999999 * 8 overflowed in `sd info`; 1e300 to float is UB) */
        {"{\"sample_size\": 999999999}", "\"sample_size\" must be a whole number from 1 to 2048", SD_ERR_FORMAT},
        {"{\"norm_eps\": 1e300}", "\"norm_eps\" must be a number", SD_ERR_FORMAT},
        {"{\"freq_shift\": -1e40}", "\"freq_shift\"", SD_ERR_FORMAT},
        {"{\"block_out_channels\": [1e111, 640, 1280, 1280]}", "\"block_out_channels[0]\" must be a whole number", SD_ERR_FORMAT},
        {"{\"layers_per_block\": -2147483649}", "\"layers_per_block\"", SD_ERR_FORMAT},
        {"{\"transformer_layers_per_block\": [1, 1, 1e20, 1]}", "\"transformer_layers_per_block[2]\"", SD_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sd_status st = unet_config_from_json(bad[i].json, &c);
        CHECK_MSG(st == bad[i].st, "%s: status %d, expected %d (%s)", bad[i].json, st, bad[i].st, sd_last_error());
        CHECK_STR_CONTAINS(sd_last_error(), bad[i].word);
    }
}
