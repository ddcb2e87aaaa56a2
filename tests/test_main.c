/* test_main.c — runs the registered TEST() cases of one test binary and prints its tally. */
#include "test.h"
#include "../kernels/backend.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 4096

static struct { const char *name, *file; test_fn fn; } g_tests[MAX_TESTS];
static int g_ntests;
static int g_cur_failed;
static jmp_buf g_abort;
static char g_tmp[4][256];
static int g_ntmp;

void test_register(const char *name, test_fn fn, const char *file) {
    if (g_ntests == MAX_TESTS) { fprintf(stderr, "too many tests\n"); exit(2); }
    g_tests[g_ntests].name = name;
    g_tests[g_ntests].fn = fn;
    g_tests[g_ntests].file = file;
    g_ntests++;
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    if (g_cur_failed < 20) {
        fprintf(stdout, "    %s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
    } else if (g_cur_failed == 20) {
        fprintf(stdout, "    (further failures of this case not shown)\n");
    }
    g_cur_failed++;
}

void test_abort(void) { longjmp(g_abort, 1); }

void test_note(const char *fmt, ...) {
    va_list ap;
    fputs("    note: ", stdout);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

int test_u8_maxdiff(const unsigned char *a, const unsigned char *b, size_t n) {
    int worst = 0;
    for (size_t i = 0; i < n; i++) worst = abs(a[i] - b[i]) > worst ? abs(a[i] - b[i]) : worst;
    return worst;
}

int test_maxerr(const char *file, int line, const char *what, const float *got, const float *want, long n, double tol) {
    double worst = 0;
    long wi = -1;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (d != d) { worst = INFINITY; wi = i; break; } /* NaN anywhere fails */
        if (d > worst) { worst = d; wi = i; }
    }
    if (worst <= tol) return 1;
    test_fail(file, line, "%s: max abs err %.3g > %.3g at [%ld] (got %.9g, want %.9g) of %ld", what, worst, tol, wi,
              wi >= 0 ? got[wi] : 0.0, wi >= 0 ? want[wi] : 0.0, n);
    return 0;
}

static char g_data_root[1024];

static void find_data_root(const char *argv0) {
    const char *env = getenv("TEST_DATA");
    if (env) { snprintf(g_data_root, sizeof g_data_root, "%s", env); return; }
    /* tests run from the project root; fall back to parents for runs from the build folder */
    const char *cands[] = {"tests", "../tests", "../../tests"};
    for (size_t i = 0; i < 3; i++) {
        char p[1100];
        struct stat st;
        snprintf(p, sizeof p, "%s/test.h", cands[i]);
        if (stat(p, &st) == 0) { snprintf(g_data_root, sizeof g_data_root, "%s", cands[i]); return; }
    }
    (void)argv0;
    snprintf(g_data_root, sizeof g_data_root, "tests");
}

const char *test_path(const char *rel) {
    static _Thread_local char buf[8][1400];
    static _Thread_local int k;
    k = (k + 1) & 7;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_data_root, rel);
    return buf[k];
}

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w) {
    (void)s; (void)f; (void)w;
    return remove(p);
}

static void cleanup_tmp(void) {
    if (getenv("TEST_KEEP")) return;
    for (int i = 0; i < g_ntmp; i++) nftw(g_tmp[i], rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    g_ntmp = 0;
}

const char *test_tmpdir(void) {
    if (g_ntmp == 4) { fprintf(stderr, "test_tmpdir: at most 4 per case\n"); exit(2); }
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp[g_ntmp], sizeof g_tmp[0], "%s/sdtest.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(g_tmp[g_ntmp])) { perror("mkdtemp"); exit(2); }
    return g_tmp[g_ntmp++];
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    const char *label = getenv("TEST_LABEL") ? getenv("TEST_LABEL") : prog;
    volatile int passed = 0, failed = 0;
    find_data_root(argv[0]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* a run with a forced CPU level says which level ran (a level the CPU lacks falls back to its best) */
    if (getenv("SD_CPU_LEVEL")) printf("CPU kernel level %s (SD_CPU_LEVEL=%s)\n", be_cpu_level(), getenv("SD_CPU_LEVEL"));
    for (int i = 0; i < g_ntests; i++) {
        if (filter && !strstr(g_tests[i].name, filter)) continue;
        g_cur_failed = 0;
        double t0 = now();
        if (setjmp(g_abort) == 0) g_tests[i].fn();
        double dt = now() - t0;
        cleanup_tmp();
        if (g_cur_failed) {
            failed++;
            printf("FAIL %s (%s, %.2fs)\n", g_tests[i].name, g_tests[i].file, dt);
        } else {
            passed++;
            printf("ok   %s (%.2fs)\n", g_tests[i].name, dt);
        }
    }
    printf("%s: %d passed, %d failed\n", label, passed, failed);
    return failed ? 1 : 0;
}
