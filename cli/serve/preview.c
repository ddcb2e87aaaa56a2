/* preview.c — a picture of a latent for /progress: each latent channel mixed into RGB by a fixed 4x3 matrix (the
 * "latent to RGB" approximation previews commonly use; SDXL has its own). One pixel per latent cell: 1/8 of the
 * image's sides. To be replaced by the library's own previews (sd_progress.preview) when sd.h has them. */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

/* rows: latent channels 0..3; columns: R, G, B (fitted on SD VAEs; published with ComfyUI and others) */
static const float SD1_RGB[4][3] = {{0.3512f, 0.2297f, 0.3227f}, {0.3250f, 0.4974f, 0.2350f}, {-0.2829f, 0.1762f, 0.2721f}, {-0.2120f, -0.2616f, -0.7177f}};
static const float SDXL_RGB[4][3] = {{0.3651f, 0.4232f, 0.4341f}, {-0.2533f, -0.0042f, 0.1068f}, {0.1076f, 0.1111f, -0.0362f}, {-0.3165f, -0.2492f, -0.2188f}};
static const float SDXL_BIAS[3] = {0.1084f, -0.0175f, -0.0011f};

int preview_from_latent(const sd_progress *p, const char *family, sd_image *out) {
    memset(out, 0, sizeof *out);
    if (!p->latent || p->lw <= 0 || p->lh <= 0 || p->lw > 4096 || p->lh > 4096) return -1;
    int xl = family && !strcmp(family, "SDXL");
    const float (*m)[3] = xl ? SDXL_RGB : SD1_RGB;
    uint8_t *d = malloc((size_t)p->lw * p->lh * 3);
    if (!d) return -1;
    for (size_t i = 0; i < (size_t)p->lw * p->lh; i++) {
        const float *z = p->latent + i * 4;
        for (int c = 0; c < 3; c++) {
            float v = xl ? SDXL_BIAS[c] : 0.0f;
            for (int k = 0; k < 4; k++) v += z[k] * m[k][c];
            v = (v + 1.0f) * 127.5f; /* [-1, 1] -> [0, 255] */
            d[i * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
        }
    }
    out->w = p->lw;
    out->h = p->lh;
    out->c = 3;
    out->data = d;
    return 0;
}
