/* test_cuda_graph.c — one CUDA graph per step: a whole generation (the SDXL-like golden case, 4 guided steps) on the
 * CUDA backend with graphs (the default: steps 1-2 eager, 3 captured, 4 replayed) and without ($SD_CUDA_GRAPH=0)
 * gives bit-identical latents and pictures, and the graph path did run. On the emulator capture and replay are
 * emulated too (kernels/cuda/emu/emu_graph.cpp). */
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
