/* cuda_test.h — what the CUDA backend tests share: the platform hooks (emulator or GPU) and small helpers.
 * The test files are plain C against the backend contract; they link either with the emulated backend
 * (hooks_emu.cpp, `make test`) or with the real one (hooks_gpu.c, `make cuda-test-bin`). */
#ifndef TESTS_CUDA_CUDA_TEST_H
#define TESTS_CUDA_CUDA_TEST_H

#include <stddef.h>

/* "emulator (schedule random, seed 1)" or "GPU". */
const char *cuda_test_platform(void);
/* 1 if the platform saw no misuse since the last call (emulator: no violation and no warning logged);
 * otherwise 0 and the last message in msg. Clears the log. */
int cuda_test_clean(char *msg, size_t cap);
/* A kernel fault provoked on purpose (emulator only): begin silences the violation log and returns 1, or returns 0
 * on a GPU, where a kernel that traps ends the process's CUDA context (the test is then skipped); end logs again and
 * clears the sticky error and the log. */
int cuda_test_fault_begin(void);
void cuda_test_fault_end(void);
/* Kernel launches so far (emulator), or -1 where they are not counted (GPU). */
long long cuda_test_launches(void);
/* Counters so far (emulator; 0 and -1 everywhere on a GPU): kernels run, cudaGraphLaunch calls, allocations
 * (device and pinned host), host waits (stream/device/event synchronisation, synchronous copies). */
typedef struct cuda_test_counts { long long kernels, graphs, mallocs, syncs; } cuda_test_counts;
int cuda_test_counters(cuda_test_counts *c);
/* Launches per kernel name since the last reset (emulator; 0 on a GPU): see cuda_emu_launch_counts. */
int cuda_test_launch_counts(const char **names, unsigned long long *counts, int cap, int reset);

#endif
