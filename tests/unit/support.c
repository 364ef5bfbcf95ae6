#include "tests/unit/support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

json_t *fmw_test_load_json(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "tests/data/%s", name);
    json_error_t error;
    json_t *j = json_load_file(path, 0, &error);
    if (!j)
        cr_assert_fail("cannot load %s: %s (line %d)", path, error.text, error.line);
    return j;
}

char *fmw_test_read_file(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "tests/data/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        cr_assert_fail("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        cr_assert_fail("cannot read %s", path);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}
