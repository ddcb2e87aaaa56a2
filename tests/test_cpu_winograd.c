/* test_cpu_winograd.c — the Winograd F(2x2, 3x3), F(4x4, 3x3) and F(6x6, 3x3) convolutions against a direct convolution in
 * double written here, at every CPU level the machine has, on ragged shapes: sides that are not multiples of the
 * tile, a side smaller than one tile, channel counts that are not multiples of any vector width, one and several
 * output-channel blocks, one and two threads, 16-bit weights. Error bounds are per shape and tile size: max abs
 * error over max |y| (weights ±1/sqrt(9C), inputs in [-1, 1), so |y| is of order 1). */
#include "test.h"
#include "be_test.h"
#include "../core/half.h"
#include "../kernels/cpu/cpu_simd.h"

static uint32_t g_rs = 99;
static float frand(void) {
    g_rs = g_rs * 1664525u + 1013904223u;
    return (float)((g_rs >> 8) * (1.0 / 8388608.0)) - 1.0f;
}

TEST(cpu_winograd_against_direct_per_level) {
    static const struct {
        int N, H, W, C, O, threads, f16;
        double bound2, bound4, bound6; /* max |err| / max |y| allowed for F(2x2), F(4x4) and F(6x6) */
    } cs[] = {
        /* bounds: about 2.5x the largest error seen over the levels (generic, avx2, avx512) when this was written;
         * the error grows with C (the products sum transformed values up to ~100x the inputs, which cancel in Aᵀ;
         * F(2x2)'s transforms only add and halve: 7x less error than F(4x4)) */
        {1, 9, 11, 8, 8, 0, 0, 5e-7, 2.5e-6, 1e-5},      /* ragged sides: partial tiles on the right and bottom */
        {2, 3, 2, 17, 5, 0, 0, 5e-7, 2.5e-6, 5e-6},      /* a side smaller than one tile, ragged channels */
        {1, 16, 16, 64, 40, 1, 0, 1e-6, 3e-6, 1.5e-5},   /* one thread */
        {2, 13, 20, 33, 71, 0, 0, 7e-7, 5e-6, 1.5e-5},   /* several tile chunks per thread, ragged channels */
        {1, 8, 8, 512, 600, 0, 0, 1.5e-6, 4e-6, 2e-5},     /* > 8 Mi transformed weights: two output-channel blocks */
        {1, 24, 24, 320, 320, 0, 1, 1.7e-6, 1.5e-5, 8e-5}, /* f16 weights (widened, then transformed) */
    };
    cpu_level was = cpu_level_get();
    int mode = cpu_conv_mode();
    for (int l = 0; l < CPU_LEVEL_COUNT; l++) {
        if (!cpu_level_supported((cpu_level)l)) continue;
        cpu_level_set((cpu_level)l);
        double worst[3] = {0, 0, 0};
        for (size_t t = 0; t < sizeof cs / sizeof *cs; t++) {
            int N = cs[t].N, H = cs[t].H, W = cs[t].W, C = cs[t].C, O = cs[t].O;
            size_t nx = (size_t)N * H * W * C, ny = (size_t)N * H * W * O;
            float *x = malloc(nx * sizeof(float)), *w = malloc((size_t)O * C * 9 * sizeof(float)), *bias = malloc(O * sizeof(float));
            uint16_t *w16 = malloc((size_t)O * C * 9 * 2);
            double *ref = malloc(ny * sizeof(double)), ymax = 0;
            for (size_t i = 0; i < nx; i++) x[i] = frand();
            for (size_t i = 0; i < (size_t)O * C * 9; i++) {
                w[i] = frand() / sqrtf(9.0f * C);
                if (cs[t].f16) { w16[i] = f32_to_f16(w[i]); w[i] = f16_to_f32(w16[i]); }
            }
            for (int i = 0; i < O; i++) bias[i] = 0.1f * frand();
            test_conv3x3_ref(x, N, H, W, C, w, bias, O, ref);
            for (size_t i = 0; i < ny; i++) ymax = fmax(ymax, fabs(ref[i]));
            be *b = test_cpu_backend(cs[t].threads);
            be_weight Wt, B;
            REQUIRE(be_weight_upload(b, &Wt, BE_W_CONV, O, C, 3, 3, cs[t].f16 ? BE_F16 : BE_F32, cs[t].f16 ? (void *)w16 : (void *)w) == SD_OK);
            REQUIRE(be_weight_upload(b, &B, BE_W_VEC, O, 1, 1, 1, BE_F32, bias) == SD_OK);
            for (int mi = 0; mi < 3; mi++) {
                static const int modes[3] = {CPU_CONV_WINO2, CPU_CONV_WINO4, CPU_CONV_WINO6};
                int m = 2 + 2 * mi;
                cpu_conv_mode_set(modes[mi]);
                size_t mk = be_mark(b);
                be_tensor tx = test_upload(b, x, N, H, W, C), ty = be_new(b, N, H, W, O);
                be_conv2d(b, &tx, &Wt, &B, 1, 1, 1, &ty);
                REQUIRE_MSG(be_status(b) == SD_OK, "%s", sd_last_error());
                float *got = test_download(b, &ty);
                double err = 0;
                for (size_t i = 0; i < ny; i++) err = fmax(err, fabs(got[i] - ref[i]));
                err /= ymax;
                double bound = mi == 0 ? cs[t].bound2 : mi == 1 ? cs[t].bound4 : cs[t].bound6;
                CHECK_MSG(err <= bound, "%s F(%dx%d) on [%d,%d,%d,%d] -> %d: error %.2e of max |y| %.2f, bound %.0e", cpu_level_name((cpu_level)l),
                          m, m, N, H, W, C, O, err, ymax, bound);
                if (err > worst[mi]) worst[mi] = err;
                free(got);
                be_release(b, mk);
            }
            be_weight_free(b, &Wt);
            be_weight_free(b, &B);
            be_free(b);
            free(x); free(w); free(bias); free(w16); free(ref);
        }
        test_note("%s: Winograd vs direct (double), 6 shapes: max error / max |y|: F(2x2) %.1e, F(4x4) %.1e, F(6x6) %.1e",
                  cpu_level_name((cpu_level)l), worst[0], worst[1], worst[2]);
    }
    cpu_conv_mode_set(mode);
    cpu_level_set(was);
}
