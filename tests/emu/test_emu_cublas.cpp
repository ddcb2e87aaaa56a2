// test_emu_cublas.cpp — the cuBLAS shim on its own, so a shared misreading of the column-major conventions
// cannot hide: against a naive column-major GEMM written here and against OpenBLAS, for every transpose
// pair, ragged sizes, padded leading dimensions, batch strides, f32/f16/bf16 storage, alpha/beta with C
// poisoned when beta = 0, and the argument checks.
#include <cblas.h>
#include <cublas_v2.h>

#include "kernels/cuda/cuda_portable.h"
#include "tests/emu/emu_test_util.h"

/* C[i + j ldc] = alpha sum_p opA(i, p) opB(p, j) + beta C, column-major, in double */
static void ref_gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double *A, int lda, const double *B, int ldb,
                     double beta, double *C, int ldc) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int p = 0; p < k; p++) s += (ta ? A[p + (size_t)i * lda] : A[i + (size_t)p * lda]) * (tb ? B[j + (size_t)p * ldb] : B[p + (size_t)j * ldb]);
            C[i + (size_t)j * ldc] = alpha * s + (beta != 0 ? beta * C[i + (size_t)j * ldc] : 0.0);
        }
}

/* storage helpers: values are generated as doubles, stored in the type, and read back for the reference */
static size_t tsize(cudaDataType t) { return t == CUDA_R_32F ? 4 : 2; }
static void put(std::vector<unsigned char> &buf, cudaDataType t, size_t i, double v) {
    if (t == CUDA_R_32F) { float f = (float)v; memcpy(&buf[i * 4], &f, 4); }
    else if (t == CUDA_R_16F) { __half h = __double2half(v); memcpy(&buf[i * 2], &h, 2); }
    else { __nv_bfloat16 h = __double2bfloat16(v); memcpy(&buf[i * 2], &h, 2); }
}
static double get(const std::vector<unsigned char> &buf, cudaDataType t, size_t i) {
    if (t == CUDA_R_32F) { float f; memcpy(&f, &buf[i * 4], 4); return f; }
    if (t == CUDA_R_16F) { __half h; memcpy(&h, &buf[i * 2], 2); return __half2float(h); }
    __nv_bfloat16 h;
    memcpy(&h, &buf[i * 2], 2);
    return __bfloat162float(h);
}

enum Api { SGEMM, SGEMM_STRIDED, GEMM_EX, GEMM_STRIDED_EX, GEMM_BATCHED_EX, SGEMM_BATCHED };
struct Variant { Api api; cudaDataType ab, c; cublasComputeType_t compute; const char *name; };

/* One configuration: run the shim, compare every element of every batch, and check the padding of C. */
static int run_case(cublasHandle_t h, const Variant &v, bool ta, bool tb, int m, int n, int k, int pad, int batch, double alpha,
                    double beta, double *worst_rel) {
    const int arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k, bcols = tb ? k : n;
    const int lda = (arows > 1 ? arows : 1) + pad, ldb = (brows > 1 ? brows : 1) + pad, ldc = (m > 1 ? m : 1) + pad;
    const long long sa = (long long)lda * acols + 3, sb = (long long)ldb * bcols + 5, sc = (long long)ldc * n + 7;
    const size_t na = (size_t)sa * batch, nb = (size_t)sb * batch, nc = (size_t)sc * batch;
    std::vector<unsigned char> A(na * tsize(v.ab)), B(nb * tsize(v.ab)), C(nc * tsize(v.c));
    std::vector<float> ra = emu_rand(na, 21), rb = emu_rand(nb, 22), rc = emu_rand(nc, 23, -2.0f, 2.0f);
    for (size_t i = 0; i < na; i++) put(A, v.ab, i, ra[i]);
    for (size_t i = 0; i < nb; i++) put(B, v.ab, i, rb[i]);
    void *dA, *dB, *dC;
    if (cudaMalloc(&dA, A.size()) || cudaMalloc(&dB, B.size()) || cudaMalloc(&dC, C.size())) return 1;
    cudaMemcpy(dA, A.data(), A.size(), cudaMemcpyHostToDevice);
    cudaMemcpy(dB, B.data(), B.size(), cudaMemcpyHostToDevice);
    if (beta != 0) { /* beta == 0: C keeps cudaMalloc's poison (NaN), which must not leak */
        for (size_t i = 0; i < nc; i++) put(C, v.c, i, rc[i]);
        cudaMemcpy(dC, C.data(), C.size(), cudaMemcpyHostToDevice);
    } else {
        cudaMemcpy(C.data(), dC, C.size(), cudaMemcpyDeviceToHost);
    }
    const std::vector<unsigned char> C0 = C;
    const cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const float fa = (float)alpha, fb = (float)beta;
    const __half ha = __double2half(alpha), hb = __double2half(beta);
    const void *pa = v.compute == CUBLAS_COMPUTE_16F ? (const void *)&ha : (const void *)&fa;
    const void *pb = v.compute == CUBLAS_COMPUTE_16F ? (const void *)&hb : (const void *)&fb;
    const char *A8 = (const char *)dA, *B8 = (const char *)dB;
    char *C8 = (char *)dC;
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    void **ptrs = NULL;
    switch (v.api) {
    case SGEMM: case GEMM_EX:
        for (int b = 0; b < batch && !st; b++) {
            const void *a = A8 + (size_t)sa * b * tsize(v.ab), *bb = B8 + (size_t)sb * b * tsize(v.ab);
            void *c = C8 + (size_t)sc * b * tsize(v.c);
            st = v.api == SGEMM ? cublasSgemm(h, oa, ob, m, n, k, &fa, (const float *)a, lda, (const float *)bb, ldb, &fb, (float *)c, ldc)
                                : cublasGemmEx(h, oa, ob, m, n, k, pa, a, v.ab, lda, bb, v.ab, ldb, pb, c, v.c, ldc, v.compute, CUBLAS_GEMM_DEFAULT);
        }
        break;
    case SGEMM_STRIDED:
        st = cublasSgemmStridedBatched(h, oa, ob, m, n, k, &fa, (const float *)dA, lda, sa, (const float *)dB, ldb, sb, &fb, (float *)dC, ldc, sc, batch);
        break;
    case GEMM_STRIDED_EX:
        st = cublasGemmStridedBatchedEx(h, oa, ob, m, n, k, pa, dA, v.ab, lda, sa, dB, v.ab, ldb, sb, pb, dC, v.c, ldc, sc, batch, v.compute,
                                        CUBLAS_GEMM_DEFAULT_TENSOR_OP);
        break;
    case GEMM_BATCHED_EX: case SGEMM_BATCHED: {
        std::vector<void *> hp(3 * batch);
        for (int b = 0; b < batch; b++) {
            hp[b] = (void *)(A8 + (size_t)sa * b * tsize(v.ab));
            hp[batch + b] = (void *)(B8 + (size_t)sb * b * tsize(v.ab));
            hp[2 * batch + b] = C8 + (size_t)sc * b * tsize(v.c);
        }
        cudaMalloc(&ptrs, hp.size() * sizeof(void *));
        cudaMemcpy(ptrs, hp.data(), hp.size() * sizeof(void *), cudaMemcpyHostToDevice);
        st = v.api == SGEMM_BATCHED ? cublasSgemmBatched(h, oa, ob, m, n, k, &fa, (const float *const *)ptrs, lda, (const float *const *)(ptrs + batch),
                                                         ldb, &fb, (float *const *)(ptrs + 2 * batch), ldc, batch)
                                    : cublasGemmBatchedEx(h, oa, ob, m, n, k, pa, (const void *const *)ptrs, v.ab, lda, (const void *const *)(ptrs + batch),
                                                          v.ab, ldb, pb, (void *const *)(ptrs + 2 * batch), v.c, ldc, batch, v.compute, CUBLAS_GEMM_DEFAULT);
        break;
    }
    }
    int bad = st != CUBLAS_STATUS_SUCCESS;
    if (bad) test_fail(__FILE__, __LINE__, "%s returned %s", v.name, cublasGetStatusName(st));
    cudaMemcpy(C.data(), dC, C.size(), cudaMemcpyDeviceToHost);
    /* the reference, from the stored (rounded) inputs */
    std::vector<double> dA2(na), dB2(nb), dC2(nc);
    for (size_t i = 0; i < na; i++) dA2[i] = get(A, v.ab, i);
    for (size_t i = 0; i < nb; i++) dB2[i] = get(B, v.ab, i);
    for (size_t i = 0; i < nc; i++) dC2[i] = beta != 0 ? get(C0, v.c, i) : 0.0;
    /* one rounding to the output type: within an ulp, or the subnormal spacing near zero */
    const double ulp = v.c == CUDA_R_32F ? ldexp(1.0, -23) : v.c == CUDA_R_16F ? ldexp(1.0, -10) : ldexp(1.0, -7);
    const double quantum = v.c == CUDA_R_32F ? ldexp(1.0, -149) : v.c == CUDA_R_16F ? ldexp(1.0, -24) : ldexp(1.0, -133);
    for (int b = 0; b < batch && !bad; b++) {
        ref_gemm(ta, tb, m, n, k, (double)(v.compute == CUBLAS_COMPUTE_16F ? __half2float(ha) : fa), &dA2[(size_t)sa * b], lda, &dB2[(size_t)sb * b], ldb,
                 (double)(v.compute == CUBLAS_COMPUTE_16F ? __half2float(hb) : fb), &dC2[(size_t)sc * b], ldc);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < ldc; i++) {
                const size_t at = (size_t)sc * b + i + (size_t)j * ldc;
                if (i >= m) { /* padding of C is never touched */
                    if (memcmp(&C[at * tsize(v.c)], &C0[at * tsize(v.c)], tsize(v.c)) && bad++ < 3)
                        test_fail(__FILE__, __LINE__, "%s wrote C padding at (%d,%d) batch %d", v.name, i, j, b);
                    continue;
                }
                const double got = get(C, v.c, at), want = dC2[at], err = fabs(got - want);
                if (!(err <= ulp * fabs(want) + quantum) && bad++ < 3)
                    test_fail(__FILE__, __LINE__, "%s %c%c m%d n%d k%d alpha %g beta %g batch %d: C(%d,%d) = %.9g, want %.9g", v.name,
                              ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, beta, b, i, j, got, want);
                if (fabs(want) > 1e-3) *worst_rel = fmax(*worst_rel, err / fabs(want));
            }
    }
    /* f32: OpenBLAS as a second, independent reference for the first batch */
    if (v.c == CUDA_R_32F && v.ab == CUDA_R_32F && !bad && m && n) {
        std::vector<float> cb(ldc * (size_t)n);
        for (size_t i = 0; i < cb.size(); i++) cb[i] = beta != 0 ? (float)get(C0, v.c, i) : 0.0f;
        std::vector<float> fa2(na), fb2(nb);
        for (size_t i = 0; i < na; i++) fa2[i] = (float)dA2[i];
        for (size_t i = 0; i < nb; i++) fb2[i] = (float)dB2[i];
        cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, fa, fa2.data(), lda, fb2.data(), ldb,
                    fb, cb.data(), ldc);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                const double got = get(C, v.c, i + (size_t)j * ldc), want = cb[i + (size_t)j * ldc];
                if (!(fabs(got - want) <= 1e-5 * (1 + fabs(want))) && bad++ < 3)
                    test_fail(__FILE__, __LINE__, "%s vs OpenBLAS: C(%d,%d) = %.9g, OpenBLAS %.9g", v.name, i, j, got, want);
            }
    }
    cudaFree(dA); cudaFree(dB); cudaFree(dC);
    if (ptrs) cudaFree(ptrs);
    return bad;
}

TEST(emu_cublas_gemm_against_naive_and_openblas) {
    cublasHandle_t h;
    REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    const Variant variants[] = {
        {SGEMM, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, "cublasSgemm"},
        {SGEMM_STRIDED, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, "cublasSgemmStridedBatched"},
        {SGEMM_BATCHED, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, "cublasSgemmBatched"},
        {GEMM_EX, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, "cublasGemmEx f32"},
        {GEMM_EX, CUDA_R_16F, CUDA_R_32F, CUBLAS_COMPUTE_32F, "cublasGemmEx f16->f32"},
        {GEMM_STRIDED_EX, CUDA_R_16F, CUDA_R_16F, CUBLAS_COMPUTE_32F, "cublasGemmStridedBatchedEx f16"},
        {GEMM_STRIDED_EX, CUDA_R_16F, CUDA_R_16F, CUBLAS_COMPUTE_16F, "cublasGemmStridedBatchedEx f16 compute16F"},
        {GEMM_STRIDED_EX, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F, "cublasGemmStridedBatchedEx bf16->f32"},
        {GEMM_BATCHED_EX, CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_32F, "cublasGemmBatchedEx bf16"},
    };
    const int shapes[][4] = {{7, 5, 3, 2}, {33, 17, 29, 5}, {1, 1, 1, 0}, {16, 1, 40, 1}, {5, 9, 0, 3}}; /* m n k pad */
    const double ab[][2] = {{1.0, 0.0}, {0.75, -0.5}};
    int bad = 0, runs = 0;
    double worst[3] = {0, 0, 0};
    for (const Variant &v : variants)
        for (int t = 0; t < 4; t++)
            for (auto &s : shapes)
                for (auto &x : ab) {
                    const int batch = v.api == SGEMM || v.api == GEMM_EX ? 2 : 3;
                    bad += run_case(h, v, t & 1, t >> 1, s[0], s[1], s[2], s[3], batch, x[0], x[1],
                                    &worst[v.c == CUDA_R_32F ? 0 : v.c == CUDA_R_16F ? 1 : 2]);
                    runs++;
                }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(cuda_emu_violation_count(), 0);
    test_note("%d GEMM configurations; worst relative error to the double reference (|C| > 1e-3): f32 out %.2g, f16 out %.2g, bf16 out %.2g", runs,
              worst[0], worst[1], worst[2]);
    cublasDestroy(h);
}

TEST(emu_cublas_device_pointer_mode) {
    cublasHandle_t h;
    REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    float *A = dev_upload(std::vector<float>{1, 2, 3, 4}), *C = dev_alloc<float>(4), *alpha = dev_upload(std::vector<float>{2.0f}),
          *beta = dev_upload(std::vector<float>{0.0f});
    REQUIRE(A && C && alpha && beta);
    CHECK_EQ_INT(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE), CUBLAS_STATUS_SUCCESS);
    CHECK_EQ_INT(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, alpha, A, 2, A, 2, beta, C, 2), CUBLAS_STATUS_SUCCESS);
    /* A = [1 3; 2 4] column-major; 2 A A = [14 30; 20 44] */
    CHECK(dev_download(C, 4) == (std::vector<float>{14, 20, 30, 44}));
    cublasDestroy(h);
    cudaFree(A); cudaFree(C); cudaFree(alpha); cudaFree(beta);
}

TEST(emu_cublas_argument_checks) {
    emu_negative neg;
    cublasHandle_t h;
    REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    const float one = 1.0f, zero = 0.0f;
    float *A = dev_alloc<float>(64), *C = dev_alloc<float>(64);
    REQUIRE(A && C);
    CHECK_EQ_INT(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, A, 7, A, 8, &zero, C, 8), CUBLAS_STATUS_INVALID_VALUE); /* lda < m */
    CHECK_EQ_INT(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, 8, 8, 4, &one, A, 3, A, 8, &zero, C, 8), CUBLAS_STATUS_INVALID_VALUE); /* lda < k */
    CHECK_EQ_INT(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, -1, 8, 8, &one, A, 8, A, 8, &zero, C, 8), CUBLAS_STATUS_INVALID_VALUE);
    CHECK_EQ_INT(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, A, CUDA_R_16F, 8, A, CUDA_R_32F, 8, &zero, C, CUDA_R_32F, 8,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT), CUBLAS_STATUS_NOT_SUPPORTED);
    CHECK_EQ_INT(cuda_emu_violation_count(), 4);
    CHECK_EQ_INT(cudaGetLastError(), cudaSuccess); /* argument errors are not launch failures */
    /* B's extent (ldb 16 x 8 columns) runs past its 64-float allocation: on a GPU the kernel would fault */
    CHECK_EQ_INT(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, A, 8, A, 16, &zero, C, 8), CUBLAS_STATUS_EXECUTION_FAILED);
    CHECK_STR_CONTAINS(cuda_emu_last_violation(), "matrix B");
    CHECK_EQ_INT(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
    std::vector<float> host(64);
    CHECK_EQ_INT(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, host.data(), 8, A, 8, &zero, C, 8), CUBLAS_STATUS_EXECUTION_FAILED);
    cublasDestroy(h);
}

static sd_status checked_gemm(cublasHandle_t h, const float *A, float *C, int lda) {
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, A, lda, A, 4, &zero, C, 4));
    return SD_OK;
}

TEST(emu_cublas_check_macro) {
    cublasHandle_t h;
    REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    float *A = dev_alloc<float>(16), *C = dev_alloc<float>(16);
    REQUIRE(A && C);
    CHECK_EQ_INT(cudaMemset(A, 0, 64), cudaSuccess);
    CHECK_EQ_INT(checked_gemm(h, A, C, 4), SD_OK);
    cuda_emu_set_quiet(1);
    CHECK_EQ_INT(checked_gemm(h, A, C, 2), SD_ERR_BACKEND);
    cuda_emu_set_quiet(0);
    cuda_emu_clear_log();
    CHECK_STR_CONTAINS(sd_last_error(), "test_emu_cublas.cpp:");
    CHECK_STR_CONTAINS(sd_last_error(), "CUBLAS_STATUS_INVALID_VALUE");
    cublasDestroy(h);
    cudaFree(A);
    cudaFree(C);
}
