// test_emu_runtime.cpp — the emulated CUDA runtime: built-in indices, atomics, poisoned allocations, copy
// direction and bounds checks, error semantics (last vs sticky errors), launch limits, dynamic shared
// memory limits, streams and events, cuda_portable.h's error macros.
#include "kernels/cuda/cuda_portable.h"
#include "tests/emu/emu_kernels.h"
#include "tests/emu/emu_test_util.h"

TEST(emu_builtin_indices_3d) {
    const dim3 grid(3, 2, 2), block(4, 3, 2);
    const int nb = 12, nt = 24;
    unsigned *d = dev_alloc<unsigned>((size_t)nb * nt * 4);
    REQUIRE(d);
    CHECK_EQ_INT(emu_probe_indices(d, grid, block), cudaSuccess);
    std::vector<unsigned> h = dev_download(d, (size_t)nb * nt * 4);
    int bad = 0;
    for (int bz = 0; bz < 2; bz++)
        for (int by = 0; by < 2; by++)
            for (int bx = 0; bx < 3; bx++)
                for (int tz = 0; tz < 2; tz++)
                    for (int ty = 0; ty < 3; ty++)
                        for (int tx = 0; tx < 4; tx++) {
                            const unsigned *o = &h[((size_t)(bx + 3 * (by + 2 * bz)) * nt + (tx + 4 * (ty + 3 * tz))) * 4];
                            bad += o[0] != (unsigned)(tx | ty << 10 | tz << 20) || o[1] != (unsigned)(bx | by << 10 | bz << 20) ||
                                   o[2] != (4u | 3u << 10 | 2u << 20) || o[3] != (3u | 2u << 10 | 2u << 20);
                        }
    CHECK_EQ_INT(bad, 0);
    cudaFree(d);
}

TEST(emu_atomics_over_a_grid) {
    unsigned *d = dev_alloc<unsigned>(2);
    REQUIRE(d);
    CHECK_EQ_INT(cudaMemset(d, 0, 2 * sizeof(unsigned)), cudaSuccess);
    CHECK_EQ_INT(emu_probe_atomics(d, 7, 96), cudaSuccess);
    std::vector<unsigned> h = dev_download(d, 2);
    CHECK_EQ_INT(h[0], 7 * 96);
    CHECK_EQ_INT(h[1], 7 * 96 - 1);
    cudaFree(d);
}

TEST(emu_constant_and_device_symbols) {
    const float coeffs[4] = {0.5f, -1.0f, 2.0f, 4.0f};
    float *d = dev_alloc<float>(40);
    REQUIRE(d);
    unsigned count = 0;
    CHECK_EQ_INT(emu_probe_symbols(coeffs, d, 40, &count), cudaSuccess);
    std::vector<float> h = dev_download(d, 40);
    for (int t = 0; t < 40; t++) CHECK_NEAR(h[t], coeffs[t % 4] * t, 0);
    CHECK_EQ_INT(count, 40);
    cudaFree(d);
}

TEST(emu_malloc_is_poisoned_and_copies_round_trip) {
    unsigned char *d = dev_alloc<unsigned char>(1000);
    REQUIRE(d);
    std::vector<unsigned char> h = dev_download(d, 1000);
    int poisoned = 0;
    for (unsigned char c : h) poisoned += c == 0xff;
    CHECK_EQ_INT(poisoned, 1000);
    CHECK(((uintptr_t)d & 255) == 0);  /* cudaMalloc's alignment */
    std::vector<unsigned char> src(1000);
    for (int i = 0; i < 1000; i++) src[i] = (unsigned char)(i * 7);
    CHECK_EQ_INT(cudaMemcpy(d, src.data(), 1000, cudaMemcpyHostToDevice), cudaSuccess);
    unsigned char *d2 = dev_alloc<unsigned char>(1000);
    REQUIRE(d2);
    CHECK_EQ_INT(cudaMemcpy(d2, d, 1000, cudaMemcpyDeviceToDevice), cudaSuccess);
    CHECK_EQ_INT(cudaMemset(d2 + 10, 3, 5), cudaSuccess);
    h = dev_download(d2, 1000);
    src[10] = src[11] = src[12] = src[13] = src[14] = 3;
    CHECK(h == src);
    CHECK_EQ_INT(cudaMemcpy(h.data(), d2, 1000, cudaMemcpyDefault), cudaSuccess);
    CHECK(cuda_emu_is_device_ptr(d, 1000) && !cuda_emu_is_device_ptr(d, 1001) && !cuda_emu_is_device_ptr(h.data(), 1));
    cudaFree(d);
    cudaFree(d2);
    CHECK_EQ_INT(cuda_emu_violation_count(), 0);
}

TEST(emu_copy_direction_and_bounds_checks) {
    emu_negative neg;
    std::vector<float> host(16, 1.0f);
    float *d = dev_alloc<float>(16);
    REQUIRE(d);
    CHECK_EQ_INT(cudaMemcpy(host.data(), host.data() + 8, 16, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "cudaMemcpyHostToDevice");
    CHECK_EQ_INT(cudaMemcpy(d, host.data(), 16, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    CHECK_EQ_INT(cudaMemcpy(host.data(), d + 12, 32, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "overrun the source");
    CHECK_EQ_INT(cudaMemset(d + 15, 0, 8), cudaErrorInvalidValue);
    CHECK_EQ_INT(cudaMemset(host.data(), 0, 8), cudaErrorInvalidValue);
    CHECK_EQ_INT(cudaMemcpy(d, host.data(), 4, (cudaMemcpyKind)7), cudaErrorInvalidMemcpyDirection);
    CHECK_EQ_INT(cudaFree(host.data()), cudaErrorInvalidValue);
    CHECK_EQ_INT(cudaFree(d + 1), cudaErrorInvalidValue);
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "not the start of an allocation");
    CHECK_EQ_INT(cudaFree(d), cudaSuccess);
    CHECK_EQ_INT(cudaFree(d), cudaErrorInvalidValue);
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "double free");
    CHECK_EQ_INT(cudaMemcpy(d, host.data(), 4, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "freed");
    CHECK_EQ_INT(cuda_emu_violation_count(), 10);
    /* none of these is sticky: the next call works and the last error is cleared by reading it */
    CHECK_EQ_INT(cudaGetLastError(), cudaErrorInvalidValue);
    CHECK_EQ_INT(cudaGetLastError(), cudaSuccess);
    CHECK_EQ_INT(cudaDeviceSynchronize(), cudaSuccess);
}

TEST(emu_launch_limits) {
    emu_negative neg;
    const struct { dim3 grid, block; size_t smem; } bad[] = {
        {dim3(1), dim3(1025), 0}, {dim3(1), dim3(32, 33), 0}, {dim3(1), dim3(1, 1, 65), 0}, {dim3(1, 65536), dim3(32), 0},
        {dim3(0), dim3(32), 0},   {dim3(1), dim3(32), 48 * 1024 + 1}};
    for (auto &b : bad) {
        CHECK_EQ_INT(emu_probe_launch(b.grid, b.block, b.smem), cudaErrorInvalidConfiguration);
        CHECK_EQ_INT(cudaGetLastError(), cudaSuccess); /* not sticky */
    }
    CHECK_EQ_INT(cuda_emu_violation_count(), 6);
    CHECK_EQ_INT(emu_probe_launch(dim3(1), dim3(1024), 48 * 1024), cudaSuccess);
    CHECK_EQ_INT(emu_probe_launch(dim3(1, 65535), dim3(1), 0), cudaSuccess);
    CHECK_EQ_INT(emu_probe_launch(dim3(1), dim3(1, 1, 64), 0), cudaSuccess);
}

TEST(emu_dynamic_shared_memory_opt_in) {
    float *d = dev_alloc<float>(1);
    REQUIRE(d);
    for (size_t bytes : {(size_t)1024, (size_t)100 * 1024, (size_t)232448}) {
        CHECK_EQ_INT(emu_probe_dyn_smem(d, 256, bytes, 0), cudaSuccess);
        CHECK_NEAR(dev_download(d, 1)[0], (double)(bytes / 4), 0);
    }
    cuda_emu_set_quiet(1);
    CHECK_EQ_INT(emu_probe_dyn_smem(d, 256, 232448 + 16, 0), cudaErrorInvalidValue); /* beyond the sm_90 opt-in */
    CHECK_EQ_INT(cudaGetLastError(), cudaErrorInvalidValue);
    cuda_emu_set_quiet(0);
    cuda_emu_clear_log();
    cudaFree(d);
}

TEST(emu_stack_use_within_limits) {
    int *d = dev_alloc<int>(1);
    REQUIRE(d);
    CHECK_EQ_INT(emu_probe_stack(d, 8), cudaSuccess);  /* 8 frames of ~1 KiB */
    CHECK_EQ_INT(cudaDeviceSynchronize(), cudaSuccess);
    CHECK_EQ_INT(cuda_emu_violation_count(), 0);
    cudaFree(d);
}

TEST(emu_sticky_error_until_reset) {
    emu_negative neg;
    std::vector<float> host(4, 1.0f);
    float *dout = dev_alloc<float>(1);
    REQUIRE(dout);
    CHECK_EQ_INT(emu_probe_sum(host.data(), 4, dout), cudaErrorIllegalAddress);
    CHECK_EQ_INT(cudaGetLastError(), cudaErrorIllegalAddress);
    CHECK_EQ_INT(cudaGetLastError(), cudaErrorIllegalAddress);
    CHECK_EQ_INT(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
    CHECK_EQ_INT(cudaMemcpy(host.data(), dout, 4, cudaMemcpyDeviceToHost), cudaErrorIllegalAddress);
    CHECK_EQ_INT(emu_probe_launch(dim3(1), dim3(1), 0), cudaErrorIllegalAddress); /* a launch does not run */
    CHECK_EQ_INT(cudaDeviceReset(), cudaSuccess);
    CHECK_EQ_INT(cudaGetLastError(), cudaSuccess);
    float *p = NULL;
    CHECK_EQ_INT(cudaMalloc(&p, 64), cudaSuccess);
    CHECK_EQ_INT(emu_probe_launch(dim3(1), dim3(1), 0), cudaSuccess);
    CHECK_STR_CONTAINS(cudaGetErrorString(cudaErrorIllegalAddress), "illegal memory access");
    CHECK_STR_CONTAINS(cudaGetErrorName(cudaErrorLaunchFailure), "cudaErrorLaunchFailure");
}

TEST(emu_streams_and_events) {
    cudaStream_t s;
    cudaEvent_t a, b;
    CHECK_EQ_INT(cudaStreamCreate(&s), cudaSuccess);
    CHECK_EQ_INT(cudaEventCreate(&a), cudaSuccess);
    CHECK_EQ_INT(cudaEventCreate(&b), cudaSuccess);
    float *d = dev_alloc<float>(4);
    std::vector<float> h = {1, 2, 3, 4};
    REQUIRE(d);
    CHECK_EQ_INT(cudaEventRecord(a, s), cudaSuccess);
    CHECK_EQ_INT(cudaMemcpyAsync(d, h.data(), 16, cudaMemcpyHostToDevice, s), cudaSuccess);
    CHECK_EQ_INT(cudaEventRecord(b, s), cudaSuccess);
    CHECK_EQ_INT(cudaStreamSynchronize(s), cudaSuccess);
    CHECK_EQ_INT(cudaEventSynchronize(b), cudaSuccess);
    float ms = -1;
    CHECK_EQ_INT(cudaEventElapsedTime(&ms, a, b), cudaSuccess);
    CHECK(ms >= 0 && ms < 1000);
    CHECK(dev_download(d, 4) == h);
    CHECK_EQ_INT(cudaStreamWaitEvent(s, b, 0), cudaSuccess);
    float *da = NULL;
    CHECK_EQ_INT(cudaMallocAsync(&da, 64, s), cudaSuccess);
    CHECK(cuda_emu_is_device_ptr(da, 64));
    CHECK_EQ_INT(cudaFreeAsync(da, s), cudaSuccess);
    CHECK_EQ_INT(cudaStreamDestroy(s), cudaSuccess);
    cuda_emu_set_quiet(1);
    CHECK_EQ_INT(cudaStreamSynchronize(s), cudaErrorInvalidResourceHandle);
    CHECK_EQ_INT(cudaMemcpyAsync(d, h.data(), 16, cudaMemcpyHostToDevice, s), cudaErrorInvalidResourceHandle);
    cuda_emu_set_quiet(0);
    cuda_emu_clear_log();
    cudaGetLastError();
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaFree(d);
    cudaDeviceProp p;
    CHECK_EQ_INT(cudaGetDeviceProperties(&p, 0), cudaSuccess);
    CHECK(p.major == 9 && p.warpSize == 32 && p.maxThreadsPerBlock == 1024);
    int v = 0;
    CHECK_EQ_INT(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0), cudaSuccess);
    CHECK_EQ_INT(v, 232448);
}

static sd_status checked_copy(float *d, const float *h, size_t n) {
    CUDA_CHECK(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice));
    return SD_OK;
}

TEST(emu_cuda_check_macro_reports_file_line_and_error) {
    float h[8] = {0};
    float *d = dev_alloc<float>(4);
    REQUIRE(d);
    CHECK_EQ_INT(checked_copy(d, h, 4), SD_OK);
    cuda_emu_set_quiet(1);
    CHECK_EQ_INT(checked_copy(d, h, 8), SD_ERR_BACKEND);
    cuda_emu_set_quiet(0);
    cuda_emu_clear_log();
    cudaGetLastError();
    CHECK_STR_CONTAINS(sd_last_error(), "test_emu_runtime.cpp:");
    CHECK_STR_CONTAINS(sd_last_error(), "cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice): invalid argument");
    cudaFree(d);
}
