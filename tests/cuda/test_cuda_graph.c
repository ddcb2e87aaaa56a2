/* test_cuda_graph.c — one CUDA graph per step: a whole generation (the SDXL-like golden case, 4 guided steps) on the
 * CUDA backend with graphs (the default: steps 1-2 eager, 3 captured, 4 replayed) and without ($SD_CUDA_GRAPH=0)
 * gives bit-identical latents and pictures, and the graph path did run. On the emulator capture and replay are
 * emulated too (kernels/cuda/emu/emu_graph.cpp). */
#include "cuda_op_util.h"
#include "cuda_pipeline.h"
#include "cuda_test.h"

TEST(cuda_model_graph_replay_equals_eager) {
    sd_image img[2];
    latent_capture cap[2];
    cuda_test_counts c0, c1;
    cuda_test_counters(&c0);
    generate("sdxl_euler_a_neg_txt2img", SD_BACKEND_CUDA, &img[0], &cap[0]);
    cuda_test_counters(&c1);
    setenv("SD_CUDA_GRAPH", "0", 1);
    generate("sdxl_euler_a_neg_txt2img", SD_BACKEND_CUDA, &img[1], &cap[1]);
    unsetenv("SD_CUDA_GRAPH");
    REQUIRE(cap[0].n == cap[1].n && img[0].w == img[1].w && img[0].h == img[1].h);
    const int same_latent = !memcmp(cap[0].latent, cap[1].latent, cap[0].n * sizeof(float));
    const int same_image = !memcmp(img[0].data, img[1].data, (size_t)img[0].w * img[0].h * 3);
    test_note("4 guided steps with graphs (%lld graph launches) and without: latents %s, pictures %s", c1.graphs - c0.graphs,
              same_latent ? "bit-identical" : "DIFFER", same_image ? "identical" : "DIFFER");
    CHECK(same_latent);
    CHECK(same_image);
    if (c1.graphs >= 0) CHECK_MSG(c1.graphs - c0.graphs >= 2, "%lld graph launches (steps 3 and 4 should replay)", c1.graphs - c0.graphs);
    char msg[512] = "";
    CHECK_MSG(cuda_test_clean(msg, sizeof msg), "%s", msg);
    for (int i = 0; i < 2; i++) {
        free(cap[i].latent);
        sd_image_free(&img[i]);
    }
}

/* $SD_CUDA_PROFILE=1 (`make bench-cuda`'s per-op table) runs the recorded ops one by one between CUDA events: the
 * results are those of eager execution bit for bit, and the table names each op with its call count. */
static float *profile_run(int profile, char **table) {
    setenv(profile ? "SD_CUDA_PROFILE" : "SD_CUDA_GRAPH", profile ? "1" : "0", 1);
    be *b = mk_gpu(BE_F16);
    unsetenv("SD_CUDA_PROFILE");
    unsetenv("SD_CUDA_GRAPH");
    g_rs = 777;
    float *wh = rnd(24 * 40, 0.2f, 0, BE_F16), *bh = rnd(24, 0.5f, 0, BE_F32), *xh = rnd(3 * 5 * 40, 1, 0, BE_F16);
    be_weight w, bias;
    REQUIRE(be_weight_upload(b, &w, BE_W_LINEAR, 24, 40, 1, 1, BE_F32, wh) == SD_OK);
    REQUIRE(be_weight_upload(b, &bias, BE_W_VEC, 24, 1, 1, 1, BE_F32, bh) == SD_OK);
    be_tensor x = put(b, xh, 1, 3, 5, 40), y = be_new(b, 1, 3, 5, 24), z = be_new(b, 1, 3, 5, 24), u = be_new(b, 1, 3, 5, 24);
    be_linear(b, &x, &w, &bias, BE_ACT_SILU, &y);
    be_add(b, &y, &y, 0.5f, &z);
    be_add(b, &z, &y, -1.0f, &u);
    float *out = get(b, &u);
    CHECK_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
    size_t len = 0;
    FILE *f = open_memstream(table, &len);
    REQUIRE(f);
    be_cuda_profile_print(b, f, 100, 1000);
    fclose(f);
    be_weight_free(b, &w);
    be_weight_free(b, &bias);
    be_free(b);
    free(wh);
    free(bh);
    free(xh);
    return out;
}

TEST(cuda_op_profile_equals_eager) {
    char *t0 = NULL, *t1 = NULL;
    float *eager = profile_run(0, &t0), *prof = profile_run(1, &t1);
    CHECK_MSG(!memcmp(eager, prof, 3 * 5 * 24 * sizeof(float)), "profiled ops differ from eager execution");
    CHECK_MSG(t0 && !*t0, "no profile without $SD_CUDA_PROFILE, got: %s", t0);
    CHECK_MSG(t1 && strstr(t1, "| linear | 1 |") && strstr(t1, "| add | 2 |") && strstr(t1, "| upload (host f32 -> device) | 1 |") &&
                  strstr(t1, "**total**"),
              "profile table: %s", t1);
    int lines = 0;
    for (const char *c = t1; c && *c; c++) lines += *c == '\n';
    test_note("profiled = eager bit for bit; the table has %d lines", lines);
    char msg[512] = "";
    CHECK_MSG(cuda_test_clean(msg, sizeof msg), "%s", msg);
    free(eager);
    free(prof);
    free(t0);
    free(t1);
}
