/* peak.c — the machine's f32 multiply-add peak, measured: each thread runs independent chains of vector FMAs
 * (more chains than FMA latency x pipes, so the pipes stay full) and times itself in thread CPU time. */
#include "peak.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#define CHAINS 12
#define ITERS 20000000L

static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void bench_cpu_model(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        const char *keys[] = {"model name", "Model", "CPU part"};
        for (int k = 0; k < 3; k++)
            if (!strncmp(line, keys[k], strlen(keys[k])) && strchr(line, ':')) {
                const char *v = strchr(line, ':') + 1;
                while (*v == ' ' || *v == '\t') v++;
                snprintf(buf, cap, "%.*s", (int)strcspn(v, "\n"), v);
                fclose(f);
                return;
            }
    }
    fclose(f);
}

double bench_cpu_ghz(void) {
    double mhz = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "cpu MHz", 7) && strchr(line, ':') && sscanf(strchr(line, ':') + 1, "%lf", &mhz) == 1) break;
    fclose(f);
    return mhz / 1000;
}

/* Each returns the FLOPs done (2 per lane per FMA); the result feeds a volatile sink so nothing is optimised out. */
static volatile float g_sink;

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double loop512(long n) {
    __m512 a[CHAINS], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    for (int i = 1; i < CHAINS; i++) a[0] = _mm512_add_ps(a[0], a[i]);
    g_sink = _mm512_reduce_add_ps(a[0]);
    return 2.0 * 16 * CHAINS * n;
}

__attribute__((target("avx2,fma"))) static double loop256(long n) {
    __m256 a[CHAINS], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    float o[8];
    for (int i = 1; i < CHAINS; i++) a[0] = _mm256_add_ps(a[0], a[i]);
    _mm256_storeu_ps(o, a[0]);
    g_sink = o[0];
    return 2.0 * 8 * CHAINS * n;
}
#elif defined(__aarch64__)
static double loopneon(long n) {
    float32x4_t a[CHAINS], m = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-7f);
    for (int i = 0; i < CHAINS; i++) a[i] = vdupq_n_f32((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = vfmaq_f32(c, a[i], m);
    for (int i = 1; i < CHAINS; i++) a[0] = vaddq_f32(a[0], a[i]);
    g_sink = vaddvq_f32(a[0]);
    return 2.0 * 4 * CHAINS * n;
}
#endif

static double loop_scalar(long n) {
    float a[CHAINS];
    for (int i = 0; i < CHAINS; i++) a[i] = (float)i;
    for (long k = 0; k < n; k++)
        for (int i = 0; i < CHAINS; i++) a[i] = a[i] * 0.999999f + 1e-7f;
    g_sink = a[0];
    return 2.0 * CHAINS * n;
}

double bench_fma_peak(int threads, const char *level, const char **vec_name) {
    double (*fn)(long) = loop_scalar;
    long n = ITERS / 8;
    *vec_name = "scalar";
#if defined(__x86_64__)
    __builtin_cpu_init();
    /* the generic level's GEMMs are still OpenBLAS's vector kernels: its peak is the CPU's */
    int lv512 = !level || !strcmp(level, "avx512") || !strcmp(level, "generic"), lv256 = lv512 || !strcmp(level, "avx2");
    if (lv512 && __builtin_cpu_supports("avx512f")) { fn = loop512; n = ITERS / 16; *vec_name = "avx512 (zmm)"; }
    else if (lv256 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { fn = loop256; n = ITERS / 8; *vec_name = "avx2 (ymm)"; }
#elif defined(__aarch64__)
    fn = loopneon;
    n = ITERS / 4;
    *vec_name = "neon (q)";
#endif
    double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        fn(n / 10); /* warm up (clock ramp) */
        double t0 = thread_cpu(), fl = fn(n), t = thread_cpu() - t0;
        total += fl / t / 1e9;
    }
    return total;
}
