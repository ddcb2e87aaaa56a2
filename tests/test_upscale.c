/* test_upscale.c — the hires fix's resamplers against what AUTOMATIC1111 calls (tests/golden/hires, made by
 * tools/goldens_hires.py): torch's F.interpolate on latents (bilinear, bicubic, nearest-exact) within float
 * rounding, PIL's LANCZOS resize of 8-bit pictures bit for bit. */
#include "test.h"
#include "be_test.h"
#include "../core/error.h"
#include "../core/safetensors.h"
#include "../pipeline/gen.h"

#include <stdlib.h>

TEST(upscale_latent_matches_torch_interpolate) {
    st_file *f;
    REQUIRE(st_open(test_path("golden/hires/upscale.safetensors"), &f) == SD_OK);
    float *x = test_golden_f32(f, "latent.x", 5 * 7 * 4);
    static const struct { const char *name; int mode; } modes[] = {
        {"bilinear", UPSCALE_BILINEAR}, {"bicubic", UPSCALE_BICUBIC}, {"nearest-exact", UPSCALE_NEAREST_EXACT}};
    static const int sizes[][2] = {{10, 14}, {7, 10}, {8, 11}, {5, 9}};
    for (int m = 0; m < 3; m++)
        for (int s = 0; s < 4; s++) {
            int h2 = sizes[s][0], w2 = sizes[s][1];
            size_t n = (size_t)h2 * w2 * 4;
            char name[64];
            snprintf(name, sizeof name, "latent.%s.%dx%d", modes[m].name, h2, w2);
            float *want = test_golden_f32(f, name, (int64_t)n), *got = malloc(n * sizeof(float));
            upscale_latent(modes[m].mode, x, 5, 7, 4, h2, w2, got);
            /* nearest copies values; bilinear sums 2 float products per axis as torch does; bicubic's 4 taps agree to
             * ~1e-6 relative (torch forms its cubic weights in another order) */
            double tol = modes[m].mode == UPSCALE_NEAREST_EXACT ? 0 : modes[m].mode == UPSCALE_BILINEAR ? 2e-6 : 1e-5;
            double e = 0;
            for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)got[i] - want[i]));
            test_note("%s 5x7 -> %dx%d: max abs err %.2e (tol %.0e)", modes[m].name, h2, w2, e, tol);
            CHECK_MAXERR(got, want, (long)n, tol);
            free(want);
            free(got);
        }
    free(x);
    st_close(f);
}

TEST(upscale_lanczos_matches_pil_bit_for_bit) {
    st_file *f;
    REQUIRE(st_open(test_path("golden/hires/upscale.safetensors"), &f) == SD_OK);
    float *xf = test_golden_f32(f, "picture.x", 20 * 24 * 3);
    sd_image in = {24, 20, 3, malloc(20 * 24 * 3)};
    for (int i = 0; i < 20 * 24 * 3; i++) in.data[i] = (uint8_t)xf[i];
    static const int sizes[][2] = {{48, 40}, {37, 29}, {13, 11}, {24, 45}, {61, 20}};
    for (int s = 0; s < 5; s++) {
        int W = sizes[s][0], H = sizes[s][1];
        char name[64];
        snprintf(name, sizeof name, "picture.%dx%d", W, H);
        float *want = test_golden_f32(f, name, (int64_t)W * H * 3);
        sd_image out;
        REQUIRE(upscale_lanczos(&in, W, H, &out) == SD_OK);
        REQUIRE(out.w == W && out.h == H && out.c == 3);
        int diff = 0, worst = 0;
        for (int i = 0; i < W * H * 3; i++) {
            int d = abs((int)out.data[i] - (int)want[i]);
            diff += d != 0;
            worst = d > worst ? d : worst;
        }
        test_note("Lanczos 24x20 -> %dx%d: %d of %d values differ from PIL (worst %d)", W, H, diff, W * H * 3, worst);
        CHECK_EQ_INT(diff, 0);
        free(out.data);
        free(want);
    }
    free(in.data);
    free(xf);
    st_close(f);
}
