/* hooks_gpu.c — cuda_test.h for the real CUDA build: misuse shows as CUDA errors, which the backend reports. */
#include "cuda_test.h"

const char *cuda_test_platform(void) { return "GPU"; }

int cuda_test_clean(char *msg, size_t cap) {
    (void)msg;
    (void)cap;
    return 1;
}

int cuda_test_fault_begin(void) { return 0; }

void cuda_test_fault_end(void) {}

long long cuda_test_launches(void) { return -1; }

int cuda_test_launch_counts(const char **names, unsigned long long *counts, int cap, int reset) {
    (void)names;
    (void)counts;
    (void)cap;
    (void)reset;
    return 0;
}

int cuda_test_counters(cuda_test_counts *c) {
    c->kernels = c->graphs = c->mallocs = c->syncs = -1;
    return 0;
}
