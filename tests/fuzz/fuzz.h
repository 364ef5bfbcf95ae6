/*
 * Shared bits of the libFuzzer drivers in tests/fuzz/. Each driver is one file with
 * LLVMFuzzerTestOneInput; the Makefile fragment mk/fuzz.mk links it against our packages built
 * with coverage and ASan+UBSan (the Debian libraries underneath stay uninstrumented).
 *
 * A driver aborts (so libFuzzer records a crash) when an invariant of ours does not hold, not only
 * on memory errors: FUZZ_CHECK states the property next to the call it checks.
 */
#ifndef FMW_FUZZ_H
#define FMW_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkg/base/base.h"

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated heap copy of the input (free() it). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Splits the input at the first occurrence of `sep`: [0, *first_len) and the rest after `sep`.
 * Returns false (rest empty) when `sep` does not occur. */
static inline int fuzz_split(const uint8_t *data, size_t size, const char *sep, size_t *first_len,
                             const uint8_t **rest, size_t *rest_len)
{
    size_t n = strlen(sep);
    for (size_t i = 0; n <= size && i <= size - n; i++) {
        if (memcmp(data + i, sep, n) == 0) {
            *first_len = i;
            *rest = data + i + n;
            *rest_len = size - i - n;
            return 1;
        }
    }
    *first_len = size;
    *rest = data + size;
    *rest_len = 0;
    return 0;
}

#endif
