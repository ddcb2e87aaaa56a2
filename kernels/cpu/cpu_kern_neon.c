/* cpu_kern_neon.c — the neon level's kernels (AArch64 Advanced SIMD): cpu_kern_body.h compiled for AArch64. */
#if defined(__aarch64__)
#define CPU_VEC_NEON
#define ATT_NV 4 /* 32 q registers: 6 x 4 accumulators, 4 keys, 1 query */
#define CPU_KERN_TABLE cpu_kern_neon
#include "cpu_kern_body.h"
#endif
