// test_emu_kernels.cpp — the correct test kernels (softmax, GroupNorm, tiled SGEMM, wmma GEMM) run in the
// emulator under the schedule of this run and compared with naive double-precision C references.
#include "tests/emu/emu_kernels.h"
#include "tests/emu/emu_test_util.h"

static void softmax_ref(const std::vector<float> &x, std::vector<float> &y, int rows, int cols) {
    y.resize(x.size());
    for (int r = 0; r < rows; r++) {
        double m = -INFINITY, s = 0;
        for (int c = 0; c < cols; c++) m = fmax(m, x[(size_t)r * cols + c]);
        for (int c = 0; c < cols; c++) s += exp(x[(size_t)r * cols + c] - m);
        for (int c = 0; c < cols; c++) y[(size_t)r * cols + c] = (float)(exp(x[(size_t)r * cols + c] - m) / s);
    }
}

static void check_clean(void) {
    CHECK_MSG(cuda_emu_violation_count() == 0, "violation: %s", cuda_emu_last_violation());
    CHECK_MSG(cuda_emu_warning_count() == 0, "warning: %s", cuda_emu_last_warning());
    CHECK_EQ_INT(cudaDeviceSynchronize(), cudaSuccess);
}

TEST(emu_softmax_rows) {
    const int shapes[][3] = {{37, 300, 128}, {5, 64, 32}, {3, 1000, 256}, {8, 7, 64}};
    for (auto &s : shapes) {
        const int rows = s[0], cols = s[1];
        std::vector<float> x = emu_rand((size_t)rows * cols, 1, -8.0f, 8.0f), want, got;
        softmax_ref(x, want, rows, cols);
        float *dx = dev_upload(x), *dy = dev_alloc<float>(x.size());
        REQUIRE(dx && dy);
        CHECK_EQ_INT(emu_softmax_rows(dx, dy, rows, cols, s[2]), cudaSuccess);
        got = dev_download(dy, x.size());
        CHECK_MAXERR(got.data(), want.data(), (long)x.size(), 2e-7);
        double worst = 0;
        for (size_t i = 0; i < x.size(); i++) worst = fmax(worst, fabs(got[i] - want[i]));
        test_note("softmax %dx%d (%d threads): max abs err %.2g", rows, cols, s[2], worst);
        cudaFree(dx);
        cudaFree(dy);
    }
    check_clean();
}

TEST(emu_group_norm_nhwc) {
    const int cases[][4] = {{2, 35, 64, 32}, {1, 9, 96, 8}, {3, 1, 32, 32}};  // n, hw, c, groups
    for (auto &cs : cases) {
        const int n = cs[0], hw = cs[1], c = cs[2], groups = cs[3], cg = c / groups;
        const float eps = 1e-5f;
        std::vector<float> x = emu_rand((size_t)n * hw * c, 2, -2.0f, 3.0f), gamma = emu_rand(c, 3), beta = emu_rand(c, 4), want(x.size());
        for (int b = 0; b < n; b++)
            for (int g = 0; g < groups; g++) {
                double s = 0, q = 0;
                for (int p = 0; p < hw; p++)
                    for (int j = 0; j < cg; j++) s += x[((size_t)b * hw + p) * c + g * cg + j];
                const double mean = s / (hw * cg);
                for (int p = 0; p < hw; p++)
                    for (int j = 0; j < cg; j++) q += pow(x[((size_t)b * hw + p) * c + g * cg + j] - mean, 2);
                const double rstd = 1.0 / sqrt(q / (hw * cg) + eps);
                for (int p = 0; p < hw; p++)
                    for (int j = 0; j < cg; j++) {
                        const size_t at = ((size_t)b * hw + p) * c + g * cg + j;
                        want[at] = (float)((x[at] - mean) * rstd * gamma[g * cg + j] + beta[g * cg + j]);
                    }
            }
        float *dx = dev_upload(x), *dg = dev_upload(gamma), *db = dev_upload(beta), *dy = dev_alloc<float>(x.size());
        REQUIRE(dx && dg && db && dy);
        CHECK_EQ_INT(emu_group_norm(dx, dg, db, dy, n, hw, c, groups, eps), cudaSuccess);
        std::vector<float> got = dev_download(dy, x.size());
        CHECK_MAXERR(got.data(), want.data(), (long)x.size(), 2e-5);
        double worst = 0;
        for (size_t i = 0; i < x.size(); i++) worst = fmax(worst, fabs(got[i] - want[i]));
        test_note("group norm n%d hw%d c%d g%d: max abs err %.2g", n, hw, c, groups, worst);
        cudaFree(dx); cudaFree(dg); cudaFree(db); cudaFree(dy);
    }
    check_clean();
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

TEST(emu_sgemm_tiled) {
    const int shapes[][3] = {{67, 45, 71}, {32, 32, 32}, {1, 70, 3}, {40, 1, 65}};
    for (auto &s : shapes) {
        const int m = s[0], n = s[1], k = s[2];
        std::vector<float> A = emu_rand((size_t)m * k, 5), B = emu_rand((size_t)k * n, 6), want;
        gemm_ref(A, B, want, m, n, k);
        float *dA = dev_upload(A), *dB = dev_upload(B), *dC = dev_alloc<float>((size_t)m * n);
        REQUIRE(dA && dB && dC);
        CHECK_EQ_INT(emu_sgemm_tiled(dA, dB, dC, m, n, k), cudaSuccess);
        std::vector<float> got = dev_download(dC, (size_t)m * n);
        CHECK_MAXERR(got.data(), want.data(), (long)got.size(), 1e-5);
        double worst = 0;
        for (size_t i = 0; i < got.size(); i++) worst = fmax(worst, fabs(got[i] - want[i]));
        test_note("sgemm %dx%dx%d: max abs err %.2g", m, n, k, worst);
        cudaFree(dA); cudaFree(dB); cudaFree(dC);
    }
    check_clean();
}

TEST(emu_wmma_gemm) {
    const int m = 48, n = 80, k = 64;
    std::vector<float> A = emu_rand((size_t)m * k, 7), B = emu_rand((size_t)k * n, 8), C0 = emu_rand((size_t)m * n, 9), want;
    std::vector<__half> hA(A.size()), hAt(A.size()), hB(B.size()), hBt(B.size());
    for (int i = 0; i < m; i++)
        for (int p = 0; p < k; p++) {
            hA[(size_t)i * k + p] = hAt[(size_t)p * m + i] = __float2half(A[(size_t)i * k + p]);
            A[(size_t)i * k + p] = __half2float(hA[(size_t)i * k + p]);
        }
    for (int p = 0; p < k; p++)
        for (int j = 0; j < n; j++) {
            hB[(size_t)p * n + j] = hBt[(size_t)j * k + p] = __float2half(B[(size_t)p * n + j]);
            B[(size_t)p * n + j] = __half2float(hB[(size_t)p * n + j]);
        }
    std::vector<float> C0cm((size_t)m * n); /* C0 as the column-major [n, m] the kernel loads */
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) C0cm[(size_t)j * m + i] = C0[(size_t)i * n + j];
    gemm_ref(A, B, want, m, n, k);
    __half *dA = dev_upload(hA), *dAt = dev_upload(hAt), *dB = dev_upload(hB), *dBt = dev_upload(hBt);
    float *dC0 = dev_upload(C0cm), *dC = dev_alloc<float>((size_t)m * n);
    REQUIRE(dA && dAt && dB && dBt && dC0 && dC);
    for (int v = 0; v < 8; v++) {
        const int acol = v & 1, bcol = v >> 1 & 1, with_c = v >> 2;
        CHECK_EQ_INT(emu_wmma_gemm(acol ? (const void *)dAt : dA, bcol ? (const void *)dBt : dB, with_c ? dC0 : NULL, dC, m, n, k, acol, bcol),
                     cudaSuccess);
        std::vector<float> got = dev_download(dC, (size_t)m * n), w = want;
        if (with_c)
            for (size_t i = 0; i < w.size(); i++) w[i] += C0[i];
        CHECK_MAXERR(got.data(), w.data(), (long)got.size(), 1e-5);
        double worst = 0;
        for (size_t i = 0; i < got.size(); i++) worst = fmax(worst, fabs(got[i] - w[i]));
        test_note("wmma gemm %dx%dx%d, A %s-major, B %s-major%s: max abs err %.2g", m, n, k, acol ? "col" : "row", bcol ? "col" : "row",
                  with_c ? ", C loaded col-major" : "", worst);
    }
    cudaFree(dA); cudaFree(dAt); cudaFree(dB); cudaFree(dBt); cudaFree(dC0); cudaFree(dC);
    check_clean();
}
