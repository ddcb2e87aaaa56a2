// test_emu_tc.cpp — the tensor-core helpers (kernels/cuda/tc.h) in the emulator: each lane's ldmatrix registers
// against the PTX ISA's layout table written out here, one mma against a double-precision product, a cp.async +
// ldmatrix + mma GEMM on ragged shapes in f16 and bf16 (both B layouts), 128-bit copies, and the misuses the
// emulated twins must catch (stage read before its wait, copies never waited for, refill without a barrier,
// mma in divergent code, ldmatrix from global memory, misaligned 128-bit access).
#include <stdlib.h>

#include "core/half.h"
#include "tests/emu/emu_tc_kernels.h"
#include "tests/emu/emu_test_util.h"

static void check_clean(void) {
    CHECK_MSG(cuda_emu_violation_count() == 0, "violation: %s", cuda_emu_last_violation());
    CHECK_MSG(cuda_emu_warning_count() == 0, "warning: %s", cuda_emu_last_warning());
    CHECK_EQ_INT(cudaDeviceSynchronize(), cudaSuccess);
}

static uint16_t to16(float v, int bf) { return bf ? f32_to_bf16(v) : f32_to_f16(v); }
static float from16(uint16_t v, int bf) { return bf ? bf16_to_f32(v) : f16_to_f32(v); }

TEST(emu_tc_ldmatrix_layouts) {
    std::vector<unsigned short> M(256);
    for (int i = 0; i < 256; i++) M[i] = (unsigned short)(i + 1000); // element (r, c) is r * 16 + c + 1000
    unsigned short *dm = dev_upload(M);
    unsigned *dout = dev_alloc<unsigned>(32 * 12);
    REQUIRE(dm && dout);
    CHECK_EQ_INT(emu_tc_probe_ldmatrix(dm, dout), cudaSuccess);
    std::vector<unsigned> out = dev_download(dout, 32 * 12);
    // lane l addressed row (l % 8) + 8 ((l / 8) % 2), column 8 (l / 16): matrix i = rows 8 (i % 2).., columns 8 (i / 2)..
    auto elem = [](int i, int r, int c) { return (unsigned)((8 * (i & 1) + r) * 16 + 8 * (i >> 1) + c + 1000); };
    int bad = 0;
    for (int l = 0; l < 32; l++) {
        const unsigned *o = out.data() + l * 12;
        const int g = l / 4, t = l % 4;
        for (int i = 0; i < 4; i++) {
            // PTX: without .trans, lane l holds row l/4, columns 2(l%4), 2(l%4)+1 of matrix i (low half first)
            bad += o[i] != (elem(i, g, 2 * t) | elem(i, g, 2 * t + 1) << 16);
            // with .trans: rows 2(l%4), 2(l%4)+1 of column l/4
            bad += o[4 + i] != (elem(i, 2 * t, g) | elem(i, 2 * t + 1, g) << 16);
        }
        for (int i = 0; i < 2; i++) { // x2: matrices 0 and 1 from lanes 0-15's addresses
            bad += o[8 + i] != (elem(i, g, 2 * t) | elem(i, g, 2 * t + 1) << 16);
            bad += o[10 + i] != (elem(i, 2 * t, g) | elem(i, 2 * t + 1, g) << 16);
        }
    }
    CHECK_MSG(bad == 0, "%d of 384 ldmatrix registers differ from the PTX layout", bad);
    cudaFree(dm);
    cudaFree(dout);
    check_clean();
}

TEST(emu_tc_mma_against_reference) {
    for (int bf = 0; bf < 2; bf++) {
        std::vector<float> a = emu_rand(256, 11 + bf), b = emu_rand(128, 12 + bf), c = emu_rand(128, 13 + bf, -4, 4);
        std::vector<unsigned short> A(256), B(128);
        for (int i = 0; i < 256; i++) A[i] = to16(a[i], bf), a[i] = from16(A[i], bf);
        for (int i = 0; i < 128; i++) B[i] = to16(b[i], bf), b[i] = from16(B[i], bf);
        unsigned short *dA = dev_upload(A), *dB = dev_upload(B);
        float *dC = dev_upload(c), *dD = dev_alloc<float>(128);
        REQUIRE(dA && dB && dC && dD);
        CHECK_EQ_INT(emu_tc_probe_mma(bf, dA, dB, dC, dD), cudaSuccess);
        std::vector<float> got = dev_download(dD, 128), want(128);
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++) {
                double s = c[i * 8 + j];
                for (int k = 0; k < 16; k++) s += (double)a[i * 16 + k] * b[k * 8 + j];
                want[i * 8 + j] = (float)s;
            }
        // exact products, 16 f32 additions of values below 8: a few f32 ulps of 8
        CHECK_MAXERR(got.data(), want.data(), 128, 8 * 16 * 0x1p-24);
        double worst = 0;
        for (int i = 0; i < 128; i++) worst = fmax(worst, fabs(got[i] - want[i]));
        test_note("mma m16n8k16 %s: max abs err %.2g vs double", bf ? "bf16" : "f16", worst);
        cudaFree(dA); cudaFree(dB); cudaFree(dC); cudaFree(dD);
    }
    check_clean();
}

TEST(emu_tc_gemm_cp_async_ldmatrix_mma) {
    const int cases[][4] = {{37, 21, 40, 0}, {37, 24, 40, 1}, {16, 16, 16, 0}, {5, 8, 72, 1}, {50, 30, 8, 0}}; // m, n, k, B [k][n]
    for (int bf = 0; bf < 2; bf++)
        for (auto &cs : cases) {
            const int m = cs[0], n = cs[1], k = cs[2], kn = cs[3];
            std::vector<float> a = emu_rand((size_t)m * k, 21, -2, 2), b = emu_rand((size_t)n * k, 22, -2, 2);
            std::vector<unsigned short> A(a.size()), B(b.size());
            for (size_t i = 0; i < a.size(); i++) A[i] = to16(a[i], bf), a[i] = from16(A[i], bf);
            for (size_t i = 0; i < b.size(); i++) B[i] = to16(b[i], bf), b[i] = from16(B[i], bf);
            unsigned short *dA = dev_upload(A), *dB = dev_upload(B);
            float *dC = dev_alloc<float>((size_t)m * n);
            REQUIRE(dA && dB && dC);
            CHECK_EQ_INT(emu_tc_gemm(bf, dA, dB, dC, m, n, k, kn, 0), cudaSuccess);
            std::vector<float> got = dev_download(dC, (size_t)m * n), want((size_t)m * n);
            double mag = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double s = 0, sa = 0;
                    for (int q = 0; q < k; q++) {
                        const double bv = kn ? b[(size_t)q * n + j] : b[(size_t)j * k + q];
                        s += a[(size_t)i * k + q] * bv;
                        sa += fabs(a[(size_t)i * k + q] * bv);
                    }
                    want[(size_t)i * n + j] = (float)s;
                    mag = fmax(mag, sa);
                }
            // f32 accumulation of exact products: k roundings of at most 2^-24 of the running |sum|
            const double tol = k * 0x1p-24 * mag;
            CHECK_MAXERR(got.data(), want.data(), (long)got.size(), tol);
            double worst = 0;
            for (size_t i = 0; i < got.size(); i++) worst = fmax(worst, fabs(got[i] - want[i]));
            test_note("gemm %dx%dx%d %s, B %s: max abs err %.2g (tol %.2g)", m, n, k, bf ? "bf16" : "f16", kn ? "[k][n] (ldmatrix.trans)" : "[n][k]", worst, tol);
            cudaFree(dA); cudaFree(dB); cudaFree(dC);
        }
    check_clean();
}

TEST(emu_tc_copy128) {
    const int n = 300;
    std::vector<float> x = emu_rand(4 * n + 8, 31);
    float *dx = dev_upload(x), *dy = dev_alloc<float>(x.size());
    REQUIRE(dx && dy);
    CHECK_EQ_INT(emu_tc_copy128(dx, dy, n, 0), cudaSuccess);
    std::vector<float> got = dev_download(dy, 4 * n);
    CHECK(!memcmp(got.data(), x.data(), 16 * n));
    cudaFree(dx);
    cudaFree(dy);
    check_clean();
}

TEST(emu_tc_catches_cp_async_misuse) {
    std::vector<float> x = emu_rand(4 * 128 * 4, 41);
    { // the correct pipeline first: sums of what thread 127 - i staged
        float *dx = dev_upload(x), *dy = dev_alloc<float>(128);
        REQUIRE(dx && dy);
        CHECK_EQ_INT(emu_tc_cp_async_bug(dx, dy, 9), cudaSuccess);
        std::vector<float> got = dev_download(dy, 128), want(128);
        for (int i = 0; i < 128; i++) {
            double s = 0;
            for (int st = 0; st < 4; st++)
                for (int j = 0; j < 4; j++) s += x[512 * st + 4 * (127 - i) + j];
            want[i] = (float)s;
        }
        CHECK_MAXERR(got.data(), want.data(), 128, 1e-5);
        check_clean();
        cudaFree(dx);
        cudaFree(dy);
    }
    static const char *what[3] = {"stage read before cp.async.wait_group", "copies never waited for", "refill without a barrier"};
    for (int bug = 0; bug < 3; bug++) {
        emu_negative neg; /* resets the device at the end of the scope: allocate inside it */
        float *dx = dev_upload(x), *dy = dev_alloc<float>(128);
        REQUIRE(dx && dy);
        cudaError_t e = emu_tc_cp_async_bug(dx, dy, bug);
        std::vector<float> got = dev_download(dy, 128);
        const bool wrong = emu_any_nan(got) || cuda_emu_warning_count() > 0 || e != cudaSuccess;
        test_note("%s:", what[bug]);
        EMU_VERDICT(neg, EMU_ALL, wrong, emu_any_nan(got) ? "NaN read" : "warning");
    }
}

TEST(emu_tc_catches_warp_misuse) {
    static const char *what[3] = {"mma in divergent code", "ldmatrix from global memory", "misaligned 128-bit access"};
    static const char *name[3] = {"mma", "ldmatrix", "128-bit"};
    for (int which = 0; which < 3; which++) {
        emu_negative neg;
        std::vector<unsigned short> x(256, 0);
        unsigned short *dx = dev_upload(x);
        float *dy = dev_alloc<float>(64);
        REQUIRE(dx && dy);
        if (which < 2) emu_tc_misuse(which, dx, dy);
        else emu_tc_copy128(dx, dy, 4, 8); /* 8 bytes off */
        test_note("%s:", what[which]);
        EMU_VERDICT(neg, EMU_ALL, false, "");
        CHECK_MSG(cuda_emu_violation_count() == 0 || strstr(cuda_emu_last_violation(), name[which]), "%s", cuda_emu_last_violation());
    }
}

/* Warps that meet at every mma and ldmatrix stay within one collective of each other under the round-robin
 * schedules, so a stage refilled without the barrier after its use goes unseen there; the greedy schedule lets
 * warp 0 run ahead to the next barrier, and the refill poisons what warp 1 has yet to read. */
TEST(emu_tc_greedy_schedule_finds_missing_stage_barrier) {
    const int m = 32, n = 16, k = 64;
    std::vector<float> a = emu_rand((size_t)m * k, 51), b = emu_rand((size_t)n * k, 52);
    std::vector<unsigned short> A(a.size()), B(b.size());
    for (size_t i = 0; i < a.size(); i++) A[i] = to16(a[i], 0);
    for (size_t i = 0; i < b.size(); i++) B[i] = to16(b[i], 0);
    const enum cuda_emu_sched mode = cuda_emu_schedule();
    const unsigned seed = cuda_emu_seed();
    for (int greedy = 0; greedy < 2; greedy++) {
        if (greedy) cuda_emu_set_schedule(CUDA_EMU_GREEDY, 0);
        unsigned short *dA = dev_upload(A), *dB = dev_upload(B);
        float *dC = dev_alloc<float>((size_t)m * n);
        REQUIRE(dA && dB && dC);
        CHECK_EQ_INT(emu_tc_gemm(0, dA, dB, dC, m, n, k, 0, 1), cudaSuccess);
        std::vector<float> got = dev_download(dC, (size_t)m * n);
        test_note("stage refilled without a barrier, %s schedule: %s", cuda_emu_schedule_name(), emu_any_nan(got) ? "NaN read (caught)" : "not seen");
        if (greedy) CHECK_MSG(emu_any_nan(got), "the greedy schedule did not expose the missing barrier");
        cudaFree(dA); cudaFree(dB); cudaFree(dC);
        cuda_emu_set_schedule(mode, seed);
    }
    check_clean();
}
