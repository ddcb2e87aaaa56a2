// test_emu_negative.cpp — the deliberately buggy kernels (emu_buggy.cu) and misuses of the runtime. Each test
// passes when the bug is caught (a violation, NaN from poison, or a wrong result) under the schedules it
// lists; under the others it only notes the outcome, so every run is deterministic and `make test`, which
// runs all four schedules, proves each bug is caught by at least one.
#include "tests/emu/emu_kernels.h"
#include "tests/emu/emu_test_util.h"

static bool far_from(const std::vector<float> &got, const std::vector<float> &want, double tol) {
    for (size_t i = 0; i < got.size(); i++)
        if (!(fabs((double)got[i] - want[i]) <= tol)) return true;
    return false;
}

static void gemm_ref(const std::vector<float> &A, const std::vector<float> &B, std::vector<float> &C, int m, int n, int k) {
    C.assign((size_t)m * n, 0.0f);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) s += (double)A[(size_t)i * k + p] * B[(size_t)p * n + j];
            C[(size_t)i * n + j] = (float)s;
        }
}

typedef cudaError_t (*gemm_fn)(const float *, const float *, float *, int, int, int);

static void run_buggy_gemm(gemm_fn fn, int expect) {
    emu_negative neg;
    const int m = 67, n = 45, k = 71;
    std::vector<float> A = emu_rand((size_t)m * k, 11), B = emu_rand((size_t)k * n, 12), want;
    gemm_ref(A, B, want, m, n, k);
    float *dA = dev_upload(A), *dB = dev_upload(B), *dC = dev_alloc<float>((size_t)m * n);
    REQUIRE(dA && dB && dC);
    fn(dA, dB, dC, m, n, k);
    std::vector<float> got = dev_download(dC, (size_t)m * n);
    const bool nan = emu_any_nan(got), wrong = nan || far_from(got, want, 1e-4);
    EMU_VERDICT(neg, expect, wrong, nan ? "NaN in the output (a poisoned tile entry was read)" : "wrong result");
}

TEST(emu_bug_missing_barrier_after_tile_load) { run_buggy_gemm(emu_bug_sgemm_no_barrier_after_load, EMU_ALL); }

TEST(emu_bug_missing_barrier_after_compute) { run_buggy_gemm(emu_bug_sgemm_no_barrier_after_compute, EMU_ALL); }

TEST(emu_bug_barrier_after_early_return) {
    emu_negative neg;
    const int n = 300;
    float *dx = dev_upload(emu_rand(n, 13)), *dy = dev_alloc<float>(2);
    REQUIRE(dx && dy);
    const cudaError_t launch = emu_bug_barrier_after_return(dx, dy, n);
    const cudaError_t sync = cudaDeviceSynchronize();
    CHECK(cuda_emu_violation_count() == 0 || (launch == cudaErrorLaunchFailure && sync == cudaErrorLaunchFailure));
    EMU_VERDICT(neg, EMU_ALL, false, "");
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "exited");
}

TEST(emu_bug_shuffle_after_lanes_exited) {
    emu_negative neg;
    const int n = 20;
    std::vector<float> x = emu_rand(32, 14);
    float *dx = dev_upload(x), *dy = dev_alloc<float>(1);
    REQUIRE(dx && dy);
    CHECK_EQ_INT(emu_bug_shuffle_after_exit(dx, dy, n), cudaSuccess);
    const float got = dev_download(dy, 1)[0];
    double want = 0;
    for (int i = 0; i < n; i++) want += x[i];
    EMU_VERDICT(neg, EMU_ALL, !(fabs(got - want) < 1e-4), got != got ? "NaN: lanes read exited lanes and got poison" : "wrong sum");
    CHECK(cuda_emu_warning_count() > 0);
}

TEST(emu_bug_full_mask_shuffle_in_divergent_code) {
    emu_negative neg;
    float *dx = dev_upload(emu_rand(64, 15)), *dy = dev_alloc<float>(64);
    REQUIRE(dx && dy);
    emu_bug_divergent_shuffle(dx, dy);
    EMU_VERDICT(neg, EMU_ALL, false, "");
    CHECK_EQ_INT(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
}

TEST(emu_bug_shuffle_mask_mismatch) {
    emu_negative neg;
    float *dx = dev_upload(emu_rand(32, 19)), *dy = dev_alloc<float>(32);
    REQUIRE(dx && dy);
    emu_bug_shuffle_mask_mismatch(dx, dy);
    /* in order, the lower half finishes and exits before the upper half's shuffle starts, which a GPU
     * could also do; reverse order makes the lower half arrive while the full-mask shuffle waits */
    EMU_VERDICT(neg, EMU_REV | EMU_RAND, false, "");
}

TEST(emu_bug_divergent_barriers) {
    emu_negative neg;
    float *dy = dev_alloc<float>(32);
    REQUIRE(dy);
    emu_bug_divergent_barrier(dy);
    EMU_VERDICT(neg, EMU_ALL, false, "");
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "different barriers");
}

TEST(emu_bug_out_of_bounds_write_next_to_end) {
    emu_negative neg;
    const int n = 100;
    float *dx = dev_upload(emu_rand(n, 16)), *dy = dev_alloc<float>(n);
    REQUIRE(dx && dy);
    emu_bug_oob_write(dx, dy, n, 0);
    EMU_VERDICT(neg, EMU_ALL, false, "");
    /* lands in the poisoned slack before the guard page (found after the launch) or on the guard itself */
    CHECK_MSG(strstr(cuda_emu_last_violation(), "wrote past the end") || strstr(cuda_emu_last_violation(), "past its end"),
              "unexpected message: %s", cuda_emu_last_violation());
    CHECK_EQ_INT(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
}

TEST(emu_bug_out_of_bounds_write_far) {
    emu_negative neg;
    const int n = 100;
    float *dx = dev_upload(emu_rand(n, 16)), *dy = dev_alloc<float>(n);
    REQUIRE(dx && dy);
    emu_bug_oob_write(dx, dy, n, 1);
    EMU_VERDICT(neg, EMU_ALL, false, "");
    /* the SIGSEGV handler names kernel, block and thread (thread 100 is block 0, thread (100,0,0)) */
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "kernel bug_oob_write_kernel");
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "block (0,0,0), thread (100,0,0)");
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "(256 bytes past its end)"); /* on the guard page */
    CHECK_EQ_INT(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
    CHECK_EQ_INT(cudaGetLastError(), cudaErrorIllegalAddress); /* sticky until cudaDeviceReset */
    float *p = NULL;
    CHECK_EQ_INT(cudaMalloc(&p, 16), cudaErrorIllegalAddress);
}

TEST(emu_bug_uninitialised_shared_memory) {
    emu_negative neg;
    const int n = 1000;
    std::vector<float> x = emu_rand(n, 17);
    float *dx = dev_upload(x), *dy = dev_alloc<float>(1);
    REQUIRE(dx && dy);
    CHECK_EQ_INT(emu_bug_uninit_shared(dx, dy, n, 128), cudaSuccess);
    const float got = dev_download(dy, 1)[0];
    EMU_VERDICT(neg, EMU_ALL, got != got, "NaN: unwritten shared memory was read");
}

TEST(emu_bug_warp_synchronous_reduction_without_syncwarp) {
    emu_negative neg;
    std::vector<float> x = emu_rand(64, 18, 0.5f, 1.5f);
    float *dx = dev_upload(x), *dy = dev_alloc<float>(1);
    REQUIRE(dx && dy);
    CHECK_EQ_INT(emu_bug_warp_sync_reduce(dx, dy), cudaSuccess);
    const float got = dev_download(dy, 1)[0];
    double want = 0;
    for (float v : x) want += v;
    EMU_VERDICT(neg, EMU_ALL, !(fabs(got - want) < 1e-3), "wrong sum (a lane read a partial sum before it was written)");
}

TEST(emu_bug_host_pointer_to_kernel) {
    emu_negative neg;
    std::vector<float> host(10, 1.0f);
    float *dout = dev_alloc<float>(1);
    REQUIRE(dout);
    CHECK_EQ_INT(emu_probe_sum(host.data(), 10, dout), cudaErrorIllegalAddress);
    EMU_VERDICT(neg, EMU_ALL, false, "");
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "argument 0 is the host pointer");
}

TEST(emu_bug_freed_pointer_to_kernel) {
    emu_negative neg;
    float *dp = dev_upload(std::vector<float>(10, 1.0f)), *dout = dev_alloc<float>(1);
    REQUIRE(dp && dout);
    CHECK_EQ_INT(cudaFree(dp), cudaSuccess);
    CHECK_EQ_INT(emu_probe_sum(dp, 10, dout), cudaErrorIllegalAddress);
    EMU_VERDICT(neg, EMU_ALL, false, "");
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "freed");
}

TEST(emu_bug_oversized_memcpy) {
    emu_negative neg;
    std::vector<float> host(64, 1.0f);
    float *d = dev_alloc<float>(60);
    REQUIRE(d);
    CHECK_EQ_INT(cudaMemcpy(d, host.data(), 64 * sizeof(float), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
    EMU_VERDICT(neg, EMU_ALL, false, "");
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "overrun the destination");
    CHECK_EQ_INT(cudaGetLastError(), cudaErrorInvalidValue);
    CHECK_EQ_INT(cudaGetLastError(), cudaSuccess); /* not sticky */
}

TEST(emu_bug_stack_overflow) {
    emu_negative neg;
    int *d = dev_alloc<int>(1);
    REQUIRE(d);
    emu_probe_stack(d, 400); /* ~400 KiB of frames on a 64 KiB fiber stack */
    EMU_VERDICT(neg, EMU_ALL, false, "");
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "stack overflow");
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "thread (0,0,0)");
}

TEST(emu_bug_dynamic_shared_memory_overrun) {
    emu_negative neg;
    float *d = dev_alloc<float>(1);
    REQUIRE(d);
    emu_probe_dyn_smem(d, 64, 4096, 1);
    EMU_VERDICT(neg, EMU_ALL, false, "");
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "dynamic shared memory overrun: byte 4096 of a 4096-byte");
}
