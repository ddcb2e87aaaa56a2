/* peak.h — what `make bench` states about the machine: CPU model, and its f32 multiply-add peak, measured. */
#ifndef TESTS_BENCH_PEAK_H
#define TESTS_BENCH_PEAK_H

#include <stddef.h>

/* The processor's name (/proc/cpuinfo), or "unknown". */
void bench_cpu_model(char *buf, size_t cap);

/* The clock /proc/cpuinfo states ("cpu MHz": the nominal clock in a VM, boost not included), GHz; 0 if unknown. */
double bench_cpu_ghz(void);

/* The f32 FMA peak of `threads` threads in GFLOP/s, each thread timed in its own CPU time (so other processes
 * on a shared machine do not lower it), with the widest vectors both this CPU and the kernel level (be_cpu_level();
 * NULL or "generic": the CPU's best) have: a level's "% of peak" is against what its own instructions can do.
 * *vec_name names them. */
double bench_fma_peak(int threads, const char *level, const char **vec_name);

#endif
