/* cpu_kern_avx512.c — the avx512 level's kernels (AVX-512 F/BW/DQ/VL): cpu_kern_body.h compiled for that target. */
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")
#define CPU_VEC_AVX512
#define ATT_NV 4 /* 32 zmm registers: 6 x 4 accumulators, 4 keys, 1 query */
#define CPU_KERN_TABLE cpu_kern_avx512
#include "cpu_kern_body.h"
#endif
