// test_emu_speed.cpp — how fast the emulator runs kernels, printed as notes (no timing is asserted): context
// switches per second, and the time of a softmax and an SGEMM (thread CPU time). CUDA_EMU_BENCH=1 uses the larger sizes
// quoted in the documentation (softmax 4096x64, SGEMM 256^3).
#include <time.h>

#include "tests/emu/emu_kernels.h"
#include "tests/emu/emu_test_util.h"

/* CPU time of this thread: the machine is shared, so wall time would measure the neighbours */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

TEST(emu_speed) {
    const bool big = getenv("CUDA_EMU_BENCH") != NULL;
    /* context switches: one block of 256 threads through many barriers */
    const int iters = big ? 2000 : 200, threads = 256;
    int *d = dev_alloc<int>(threads);
    REQUIRE(d);
    cuda_emu_stats s0, s1;
    cuda_emu_get_stats(&s0);
    double t = now_s();
    CHECK_EQ_INT(emu_probe_barriers(d, 1, threads, iters), cudaSuccess);
    t = now_s() - t;
    cuda_emu_get_stats(&s1);
    std::vector<int> h = dev_download(d, threads);
    for (int v : h) CHECK_EQ_INT(v, iters);
    const double sw = (double)(s1.switches - s0.switches);
    test_note("%s schedule: %.0f context switches in %.3f s = %.1f M switches/s", cuda_emu_schedule_name(), sw, t, sw / t * 1e-6);
    cudaFree(d);

    /* softmax rows x 64, 128 threads per row */
    const int rows = big ? 4096 : 512, cols = 64;
    std::vector<float> x = emu_rand((size_t)rows * cols, 31, -4, 4);
    float *dx = dev_upload(x), *dy = dev_alloc<float>(x.size());
    REQUIRE(dx && dy);
    t = now_s();
    CHECK_EQ_INT(emu_softmax_rows(dx, dy, rows, cols, 128), cudaSuccess);
    t = now_s() - t;
    std::vector<float> y = dev_download(dy, x.size());
    double row0 = 0;
    for (int c = 0; c < cols; c++) row0 += y[c];
    CHECK_NEAR(row0, 1.0, 1e-5);
    test_note("softmax %dx%d (%d blocks x 128 threads): %.3f s, %.2f us per block", rows, cols, rows, t, t / rows * 1e6);
    cudaFree(dx);
    cudaFree(dy);

    /* SGEMM n^3 with 32x32 = 1024-thread blocks */
    const int n = big ? 256 : 128;
    std::vector<float> A = emu_rand((size_t)n * n, 32), B = emu_rand((size_t)n * n, 33);
    float *dA = dev_upload(A), *dB = dev_upload(B), *dC = dev_alloc<float>((size_t)n * n);
    REQUIRE(dA && dB && dC);
    t = now_s();
    CHECK_EQ_INT(emu_sgemm_tiled(dA, dB, dC, n, n, n), cudaSuccess);
    t = now_s() - t;
    const float c00 = dev_download(dC, 1)[0];
    double want = 0;
    for (int p = 0; p < n; p++) want += (double)A[p] * B[(size_t)p * n];
    CHECK_NEAR(c00, want, 1e-4);
    test_note("sgemm %d^3 (tiled, 1024-thread blocks): %.3f s = %.1f MFLOP/s", n, t, 2.0 * n * n * n / t * 1e-6);
    cudaFree(dA); cudaFree(dB); cudaFree(dC);
}
