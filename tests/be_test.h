/* be_test.h — the few lines every backend test needs: a CPU backend with an arena, host <-> backend copies. */
#ifndef TESTS_BE_TEST_H
#define TESTS_BE_TEST_H

#include <stdlib.h>

#include "test.h"
#include "../kernels/backend.h"

/* A CPU backend (threads 0: all cores) with a 256 MiB arena; the test stops if it cannot be made. */
static inline be *test_cpu_backend(int threads) {
    be *b = be_cpu_new(threads);
    REQUIRE(b);
    REQUIRE(be_arena_reserve(b, 256u << 20) == SD_OK);
    return b;
}

/* A new backend tensor holding the host f32 NHWC values h. */
static inline be_tensor test_upload(be *b, const float *h, int n, int hh, int w, int c) {
    be_tensor t = be_new(b, n, hh, w, c);
    be_upload(b, &t, h);
    return t;
}

/* A malloc'd host copy of a backend tensor (the caller frees it). */
static inline float *test_download(be *b, const be_tensor *t) {
    float *h = malloc(be_numel(t) * sizeof(float));
    be_download(b, t, h);
    return h;
}

#endif
