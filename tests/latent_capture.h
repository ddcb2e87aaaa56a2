/* latent_capture.h — a progress callback for sd_generate that keeps a copy of the final latent (the sampler's
 * last step, [lh, lw, 4] channels-last), for tests that compare it with a reference implementation's.
 *
 *   latent_capture cap = {0};
 *   sd_generate(ctx, &p, latent_capture_fn, &cap, &r);   ...   free(cap.latent); */
#ifndef TESTS_LATENT_CAPTURE_H
#define TESTS_LATENT_CAPTURE_H

#include <stdlib.h>
#include <string.h>

#include "../core/safetensors.h"
#include "../sd.h"
#include "test.h"

typedef struct {
    float *latent; /* malloc'd; the caller frees it */
    size_t n;      /* floats */
} latent_capture;

static inline int latent_capture_fn(void *user, const sd_progress *p) {
    latent_capture *c = user;
    if (!strcmp(p->stage, "sample") && p->latent && p->step == p->steps) {
        c->n = (size_t)p->lw * p->lh * 4;
        free(c->latent);
        c->latent = malloc(c->n * sizeof(float));
        if (c->latent) memcpy(c->latent, p->latent, c->n * sizeof(float));
    }
    return 0;
}

/* The "latent" tensor of a golden file (tests/ relative path) as f32, malloc'd; NULL (and a test failure) if absent. */
static inline float *latent_golden(const char *rel, int64_t *n) {
    st_file *f;
    if (st_open(test_path(rel), &f) != SD_OK) return NULL;
    float *want = st_load_f32(f, "latent", n);
    st_close(f);
    return want;
}

#endif
