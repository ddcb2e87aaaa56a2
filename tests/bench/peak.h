/* peak.h — what `make bench` states about the machine: CPU model, and its f32 multiply-add peak, measured. */
#ifndef TESTS_BENCH_PEAK_H
#define TESTS_BENCH_PEAK_H

#include <stddef.h>

/* The processor's name (/proc/cpuinfo), or "unknown". */
void bench_cpu_model(char *buf, size_t cap);

/* The f32 FMA peak of `threads` threads in GFLOP/s, each thread timed in its own CPU time (so other processes
 * on a shared machine do not lower it), with the widest vectors this CPU has; *vec_name names them. */
double bench_fma_peak(int threads, const char **vec_name);

#endif
