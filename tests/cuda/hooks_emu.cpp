// hooks_emu.cpp — cuda_test.h for the emulated build: the emulator's schedule and its violation/warning log.
#include <stdio.h>

extern "C" {
#include "tests/cuda/cuda_test.h"
}

extern "C" const char *cuda_test_platform(void) {
    static char buf[96];
    snprintf(buf, sizeof buf, "emulator (schedule %s, seed %u)", cuda_emu_schedule_name(), cuda_emu_seed());
    return buf;
}

extern "C" int cuda_test_clean(char *msg, size_t cap) {
    int ok = cuda_emu_violation_count() == 0 && cuda_emu_warning_count() == 0;
    if (!ok) snprintf(msg, cap, "%s%s", cuda_emu_last_violation(), cuda_emu_violation_count() ? "" : cuda_emu_last_warning());
    cuda_emu_clear_log();
    return ok;
}

extern "C" int cuda_test_fault_begin(void) {
    cuda_emu_set_quiet(1);
    return 1;
}

extern "C" void cuda_test_fault_end(void) {
    cuda_emu_set_quiet(0);
    cuda_emu_clear_error();
    cuda_emu_clear_log();
}

extern "C" long long cuda_test_launches(void) {
    struct cuda_emu_stats st;
    cuda_emu_get_stats(&st);
    return (long long)st.launches;
}

extern "C" int cuda_test_launch_counts(const char **names, unsigned long long *counts, int cap, int reset) {
    return cuda_emu_launch_counts(names, counts, cap, reset);
}

extern "C" int cuda_test_counters(cuda_test_counts *c) {
    struct cuda_emu_stats st;
    cuda_emu_get_stats(&st);
    c->kernels = (long long)st.launches;
    c->graphs = (long long)st.graph_launches;
    c->mallocs = (long long)st.mallocs;
    c->syncs = (long long)st.syncs;
    return 1;
}
