/* cpu_kern_avx2.c — the avx2 level's kernels (AVX2 + FMA + F16C): cpu_kern_body.h compiled for that target. */
#if defined(__x86_64__)
#pragma GCC target("avx2,fma,f16c")
#define CPU_VEC_AVX2
#define ATT_NV 2 /* 16 ymm registers: 6 x 2 accumulators, 2 keys, 1 query */
#define CPU_KERN_TABLE cpu_kern_avx2
#include "cpu_kern_body.h"
#endif
