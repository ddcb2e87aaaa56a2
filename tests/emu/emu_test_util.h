/* emu_test_util.h — helpers shared by the emulator tests: device buffers, test data, the schedule being
 * run, and the bookkeeping of negative tests (which schedules must catch which bug). */
#ifndef TESTS_EMU_TEST_UTIL_H
#define TESTS_EMU_TEST_UTIL_H

#include <stdlib.h>

#include <string>
#include <vector>

#include "tests/test.h"

/* Deterministic test data in [lo, hi). */
static inline std::vector<float> emu_rand(size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(n);
    uint64_t s = 0x853c49e6748fea9bull + seed * 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
    }
    return v;
}

template <typename T> static inline T *dev_upload(const std::vector<T> &h) {
    T *d = NULL;
    if (cudaMalloc(&d, h.size() * sizeof(T)) != cudaSuccess) return NULL;
    if (cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess) return NULL;
    return d;
}
template <typename T> static inline T *dev_alloc(size_t n) {
    T *d = NULL;
    return cudaMalloc(&d, n * sizeof(T)) == cudaSuccess ? d : NULL;
}
template <typename T> static inline std::vector<T> dev_download(const T *d, size_t n) {
    std::vector<T> h(n);
    if (cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost) != cudaSuccess) h.assign(n, T());
    return h;
}

/* The schedule of this run, as a bit for the expectation masks of negative tests. */
enum { EMU_IN = 1, EMU_REV = 2, EMU_RAND1 = 4, EMU_RAND2 = 8, EMU_RAND_OTHER = 16, EMU_RAND = 4 | 8 | 16, EMU_ALL = 31, EMU_GREEDY = 32 };
static inline int emu_sched_bit(void) {
    switch (cuda_emu_schedule()) {
    case CUDA_EMU_INORDER: return EMU_IN;
    case CUDA_EMU_REVERSE: return EMU_REV;
    case CUDA_EMU_GREEDY: return EMU_GREEDY;
    default: return cuda_emu_seed() == 1 ? EMU_RAND1 : cuda_emu_seed() == 2 ? EMU_RAND2 : EMU_RAND_OTHER;
    }
}

/* A negative test: quiet the emulator, run the bug, then decide whether it was caught. */
struct emu_negative {
    emu_negative() { cuda_emu_set_quiet(1); cuda_emu_clear_log(); }
    ~emu_negative() { cudaDeviceReset(); cuda_emu_clear_log(); cuda_emu_set_quiet(0); }
    /* caught: violation logged, or the caller's own evidence (NaN / wrong result). Must be caught under
     * the schedules in `expect`; elsewhere it is only noted. */
    void verdict(const char *file, int line, int expect, bool wrong, const char *evidence) {
        const bool viol = cuda_emu_violation_count() > 0;
        const bool caught = viol || wrong;
        const int me = emu_sched_bit();
        std::string how = viol ? std::string("violation: ") + cuda_emu_last_violation() : std::string(evidence);
        if (cuda_emu_warning_count()) how += std::string(" [warning: ") + cuda_emu_last_warning() + "]";
        if (caught) test_note("caught under %s: %s", cuda_emu_schedule_name(), how.c_str());
        else if (expect & me) test_fail(file, line, "bug not detected under schedule %s (seed %u)", cuda_emu_schedule_name(), cuda_emu_seed());
        else test_note("not detected under %s (expected: another schedule of make test catches it)", cuda_emu_schedule_name());
    }
};
#define EMU_VERDICT(neg, expect, wrong, evidence) (neg).verdict(__FILE__, __LINE__, (expect), (wrong), (evidence))

static inline bool emu_any_nan(const std::vector<float> &v) {
    for (float x : v) if (x != x) return true;
    return false;
}

#endif
