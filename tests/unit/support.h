/* Shared helpers of the unit tests. */
#ifndef FMW_TEST_SUPPORT_H
#define FMW_TEST_SUPPORT_H

#include <jansson.h>

/* Loads a JSON file from tests/data (tests run from the repository root); aborts the test with a
 * clear message when it cannot. The caller owns the reference. */
json_t *fmw_test_load_json(const char *name);

/* Reads a whole file from tests/data into a NUL-terminated heap string (free() it). */
char *fmw_test_read_file(const char *name, size_t *len);

#endif
