/* test.h — the tiny test harness: TEST() registers a case, CHECK*() record failures with file:line.
 *
 *   TEST(safetensors_roundtrip) {
 *       CHECK(x == 3);                      // non-fatal: records and continues
 *       CHECK_NEAR(got, want, 1e-5);        // |got - want| <= tol
 *       REQUIRE(p != NULL);                 // fatal: ends this test case
 *       CHECK_MAXERR(got, want, n, 1e-4);   // max abs error over arrays, prints where it diverged
 *   }
 *
 * Each test binary runs every case (or those whose name contains argv[1]) and ends with one line
 * "<binary>: N passed, M failed"; tests/run.sh adds the binaries up. Usable from C and C++. */
#ifndef TESTS_TEST_H
#define TESTS_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn, const char *file);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void test_abort(void) __attribute__((noreturn));
/* Max |a-b| over n floats; on failure prints the index and values of the worst element. Returns 1 if ok. */
int test_maxerr(const char *file, int line, const char *what, const float *got, const float *want, long n, double tol);
/* Max |a-b| over n bytes (8-bit pictures). */
int test_u8_maxdiff(const unsigned char *a, const unsigned char *b, size_t n);
/* Path of a data file under tests/ (the harness finds the tests/ folder from the binary or TEST_DATA). */
const char *test_path(const char *rel);
/* A fresh empty temporary directory for this test case (removed at exit unless TEST_KEEP is set). */
const char *test_tmpdir(void);
/* Log a measured figure (error, timing) so it shows in the output: "  note: <name>: <text>". */
void test_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#define TEST_CTOR_ __attribute__((constructor))
#else
#define TEST_CTOR_ __attribute__((constructor))
#endif

#define TEST(name)                                                                            \
    static void test_##name(void);                                                            \
    TEST_CTOR_ static void test_register_##name(void) { test_register(#name, test_##name, __FILE__); } \
    static void test_##name(void)

#define CHECK(cond)                                                                           \
    do { if (!(cond)) test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); } while (0)
#define CHECK_MSG(cond, ...)                                                                  \
    do { if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define REQUIRE(cond)                                                                         \
    do { if (!(cond)) { test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond); test_abort(); } } while (0)
#define REQUIRE_MSG(cond, ...)                                                                \
    do { if (!(cond)) { test_fail(__FILE__, __LINE__, __VA_ARGS__); test_abort(); } } while (0)
#define CHECK_EQ_INT(got, want)                                                               \
    do { long long g_ = (long long)(got), w_ = (long long)(want);                             \
         if (g_ != w_) test_fail(__FILE__, __LINE__, "%s == %lld, expected %lld", #got, g_, w_); } while (0)
#define CHECK_NEAR(got, want, tol)                                                            \
    do { double g_ = (double)(got), w_ = (double)(want);                                      \
         if (!(fabs(g_ - w_) <= (tol))) test_fail(__FILE__, __LINE__, "%s = %.9g, expected %.9g (tol %g)", #got, g_, w_, (double)(tol)); } while (0)
#define CHECK_MAXERR(got, want, n, tol) test_maxerr(__FILE__, __LINE__, #got, (got), (want), (n), (tol))
#define CHECK_STR_CONTAINS(hay, needle)                                                       \
    do { const char *h_ = (hay), *n_ = (needle);                                              \
         if (!h_ || !strstr(h_, n_)) test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); } while (0)

#endif
