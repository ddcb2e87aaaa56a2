// test_emu_graph.cpp — CUDA graphs in the emulator: a capture records copies from pinned memory, kernel launches, a
// memset and a cuBLAS GEMM without running them; each cudaGraphLaunch runs them with the data of that moment, bit
// for bit like the same calls made eagerly; and the capture rules of CUDA hold (a pageable copy, a synchronisation
// of the capturing stream, an allocation in global mode invalidate the capture).
#include <cublas_v2.h>

#include "tests/emu/emu_graph_kernels.h"
#include "tests/emu/emu_test_util.h"

static void check_clean(void) {
    CHECK_MSG(cuda_emu_violation_count() == 0, "violation: %s", cuda_emu_last_violation());
    CHECK_MSG(cuda_emu_warning_count() == 0, "warning: %s", cuda_emu_last_warning());
}

/* pinned in -> x; y = 3x + 1; z = 0; z = yᵀ-GEMM (4 x 4 from y) ; out <- z, y */
static void work(float *hin, float *hout, float *x, float *y, float *z, cublasHandle_t h, cudaStream_t s) {
    const int n = 64;
    const float one = 1.0f, zero = 0.0f;
    cudaMemcpyAsync(x, hin, n * sizeof(float), cudaMemcpyHostToDevice, s);
    emu_graph_axpb(x, y, 3.0f, 1.0f, n, s);
    cudaMemsetAsync(z, 0, 16 * sizeof(float), s);
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, 4, 4, 16, &one, y, 4, y, 4, &zero, z, 4);
    emu_graph_axpb(z, z, 0.5f, -2.0f, 16, s);
    cudaMemcpyAsync(hout, z, 16 * sizeof(float), cudaMemcpyDeviceToHost, s);
    cudaMemcpyAsync(hout + 16, y, n * sizeof(float), cudaMemcpyDeviceToHost, s);
}

TEST(emu_graph_capture_and_replay) {
    cudaStream_t s;
    REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
    cublasHandle_t h;
    REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    cublasSetStream(h, s);
    float *hin, *hout, *x = dev_alloc<float>(64), *y = dev_alloc<float>(64), *z = dev_alloc<float>(16);
    REQUIRE(cudaMallocHost(&hin, 64 * sizeof(float)) == cudaSuccess && cudaMallocHost(&hout, 80 * sizeof(float)) == cudaSuccess);
    std::vector<float> a = emu_rand(64, 61), b = emu_rand(64, 62), eager_a(80), eager_b(80);
    /* eager */
    memcpy(hin, a.data(), 256);
    work(hin, hout, x, y, z, h, s);
    cudaStreamSynchronize(s);
    memcpy(eager_a.data(), hout, 320);
    memcpy(hin, b.data(), 256);
    work(hin, hout, x, y, z, h, s);
    cudaStreamSynchronize(s);
    memcpy(eager_b.data(), hout, 320);
    /* captured: nothing runs until the graph is launched */
    struct cuda_emu_stats s0, s1;
    cuda_emu_get_stats(&s0);
    memset(hout, 0, 320);
    REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
    work(hin, hout, x, y, z, h, s);
    cudaGraph_t g;
    REQUIRE(cudaStreamEndCapture(s, &g) == cudaSuccess);
    cudaGraphExec_t e;
    REQUIRE(cudaGraphInstantiate(&e, g, 0) == cudaSuccess);
    cuda_emu_get_stats(&s1);
    CHECK_EQ_INT(s1.launches - s0.launches, 0);
    CHECK_EQ_INT(cuda_emu_graph_nodes(e), 7);
    CHECK(hout[0] == 0.0f && hout[79] == 0.0f);
    /* each launch reads the pinned input as it is then */
    memcpy(hin, a.data(), 256);
    REQUIRE(cudaGraphLaunch(e, s) == cudaSuccess);
    cudaStreamSynchronize(s);
    CHECK(!memcmp(hout, eager_a.data(), 320));
    memcpy(hin, b.data(), 256);
    REQUIRE(cudaGraphLaunch(e, s) == cudaSuccess);
    cudaStreamSynchronize(s);
    CHECK(!memcmp(hout, eager_b.data(), 320));
    cuda_emu_get_stats(&s1);
    CHECK_EQ_INT(s1.graph_launches - s0.graph_launches, 2);
    CHECK_EQ_INT(s1.launches - s0.launches, 4);
    test_note("7 nodes (a copy in, 2 kernels, a memset, a cuBLAS GEMM, 2 copies out); 2 replays equal the eager runs bit for bit");
    cudaGraphExecDestroy(e);
    cudaGraphDestroy(g);
    cublasDestroy(h);
    cudaFreeHost(hin);
    cudaFreeHost(hout);
    cudaFree(x); cudaFree(y); cudaFree(z);
    cudaStreamDestroy(s);
    check_clean();
}

TEST(emu_graph_capture_rules) {
    static const char *what[3] = {"copy from pageable host memory", "synchronising the capturing stream", "cudaMalloc in global mode"};
    for (int k = 0; k < 3; k++) {
        cudaStream_t s;
        REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
        float *x = dev_alloc<float>(64), pageable[64] = {0};
        cuda_emu_set_quiet(1);
        REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
        cudaError_t call;
        if (k == 0) call = cudaMemcpyAsync(x, pageable, sizeof pageable, cudaMemcpyHostToDevice, s);
        else if (k == 1) call = cudaStreamSynchronize(s);
        else {
            void *p = NULL;
            call = cudaMalloc(&p, 256);
        }
        cudaGraph_t g = NULL;
        cudaError_t end = cudaStreamEndCapture(s, &g);
        cuda_emu_set_quiet(0);
        test_note("%s: the call returns %s, the capture ends with %s", what[k], cudaGetErrorName(call), cudaGetErrorName(end));
        CHECK_EQ_INT(call, cudaErrorStreamCaptureUnsupported);
        CHECK_EQ_INT(end, cudaErrorStreamCaptureInvalidated);
        CHECK(g == NULL);
        CHECK(cuda_emu_warning_count() > 0);
        cuda_emu_clear_log();
        cudaGetLastError();
        cudaFree(x);
        cudaStreamDestroy(s);
    }
}
