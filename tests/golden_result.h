/* golden_result.h — a generation compared with a reference one stored as tests/golden/<dir>/<name>.safetensors
 * (its final latent, "latent", NHWC F32) and <name>.png (its picture), for the whole-pipeline golden tests.
 *
 *   golden_diff d;
 *   if (golden_result_compare("golden/inpaint", name, &cap, &r.images[0], &d) == 0)
 *       CHECK_MSG(d.rel <= 1e-4 && d.px <= 2, ...);                                  */
#ifndef TESTS_GOLDEN_RESULT_H
#define TESTS_GOLDEN_RESULT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../sd.h"
#include "latent_capture.h"
#include "test.h"

typedef struct golden_diff {
    double abs, rel; /* max |latent - reference|, and that over max(1, max |reference|) */
    int px;          /* max 8-bit picture difference */
    int size_ok;     /* the pictures have the same size (px is only computed then) */
} golden_diff;

/* Returns 0 when both reference files were read and the latent sizes agree; -1 (with a note) otherwise. */
static inline int golden_result_compare(const char *dir, const char *name, const latent_capture *cap, const sd_image *img,
                                        golden_diff *d) {
    char path[512];
    d->abs = d->rel = 0;
    d->px = 0;
    d->size_ok = 0;
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    int64_t n;
    float *want = latent_golden(path, &n);
    if (!want) {
        test_note("%s", sd_last_error());
        return -1;
    }
    if (!cap->latent || (size_t)n != cap->n) {
        test_note("%s: latent missing or of another size", name);
        free(want);
        return -1;
    }
    double scale = 1;
    for (int64_t i = 0; i < n; i++) {
        d->abs = fmax(d->abs, fabs(cap->latent[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    d->rel = d->abs / scale;
    free(want);
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    sd_image ref;
    if (sd_image_load(test_path(path), 3, &ref) != SD_OK) {
        test_note("%s", sd_last_error());
        return -1;
    }
    d->size_ok = ref.w == img->w && ref.h == img->h;
    for (size_t i = 0; d->size_ok && i < (size_t)ref.w * ref.h * 3; i++) {
        int e = abs(ref.data[i] - img->data[i]);
        d->px = e > d->px ? e : d->px;
    }
    sd_image_free(&ref);
    return 0;
}

#endif
