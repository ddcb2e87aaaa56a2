/* fuzz.h — shared by the libFuzzer harnesses in tests/fuzz/ (one per parser of untrusted input). Each harness
 * defines LLVMFuzzerTestOneInput; `make fuzz` links it with libFuzzer (clang), `make fuzz-replay` with replay.c
 * (gcc, ASan + UBSan) to run the committed corpus as a regression test. */
#ifndef TESTS_FUZZ_H
#define TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a NUL-terminated string (text parsers take C strings); NULL only when out of memory. */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (s) {
        if (size) memcpy(s, data, size);
        s[size] = 0;
    }
    return s;
}

#endif
