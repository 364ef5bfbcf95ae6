/* Structured logs: every line is one valid JSON object, escaped, redacted, filtered, capped. */
#include "pkg/obs/obs.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

static int fds[2];

static void setup(void)
{
    cr_assert_eq(pipe2(fds, O_NONBLOCK), 0);
    fmw_log_setup(FMW_LOG_DEBUG, fds[1]);
}

static void teardown(void)
{
    fmw_log_setup(FMW_LOG_INFO, 2);
    close(fds[0]);
    close(fds[1]);
}

/* Everything written so far, as text (static buffer). */
static const char *drain(size_t *len)
{
    static char buf[65536];
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    n = n < 0 ? 0 : n;
    buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    return buf;
}

/* Reads one line and parses it; the caller owns the reference. */
static json_t *one_line(void)
{
    size_t len;
    const char *text = drain(&len);
    cr_assert_gt(len, 0, "nothing was written");
    cr_assert_eq(text[len - 1], '\n', "a line ends with a newline");
    cr_assert_null(memchr(text, '\n', len - 1), "exactly one line: %s", text);
    json_error_t err;
    json_t *j = json_loadb(text, len, JSON_ALLOW_NUL, &err);
    cr_assert_not_null(j, "not JSON (%s): %s", err.text, text);
    return j;
}

TestSuite(obs_log, .init = setup, .fini = teardown);

Test(obs_log, fields_and_types)
{
    struct fmw_log_line l;
    cr_assert(fmw_log_begin(&l, FMW_LOG_INFO, "decision"));
    fmw_log_str(&l, "uid", "705ab4f5-6393-11e8-b7cc-42010a800002");
    fmw_log_int(&l, "delta", -5);
    fmw_log_uint(&l, "bytes", 1677721600ull);
    fmw_log_double(&l, "latency_ms", 0.25);
    fmw_log_fixed(&l, "took_ms", 1234, 3);
    fmw_log_fixed(&l, "tiny_ms", 7, 3);
    fmw_log_fixed(&l, "below_zero", -5, 2);
    fmw_log_double(&l, "nan", NAN);
    fmw_log_bool(&l, "patched", true);
    fmw_log_str(&l, "none", NULL);
    fmw_log_object_begin(&l, "sizes");
    fmw_log_uint(&l, "heap", 1);
    fmw_log_object_begin(&l, "inner");
    fmw_log_str(&l, "a", "b");
    fmw_log_object_end(&l);
    fmw_log_object_end(&l);
    fmw_log_strn(&l, "slice", (struct fmw_str){"abcdef", 3});
    fmw_log_end(&l);

    json_t *j = one_line();
    cr_expect_str_eq(json_string_value(json_object_get(j, "level")), "info");
    cr_expect_str_eq(json_string_value(json_object_get(j, "msg")), "decision");
    const char *ts = json_string_value(json_object_get(j, "ts"));
    cr_assert_not_null(ts);
    cr_expect_eq(strlen(ts), 24, "RFC 3339 UTC with milliseconds: %s", ts);
    cr_expect_eq(ts[23], 'Z');
    cr_expect_eq(json_integer_value(json_object_get(j, "delta")), -5);
    cr_expect_eq(json_integer_value(json_object_get(j, "bytes")), 1677721600);
    cr_expect(fabs(json_real_value(json_object_get(j, "latency_ms")) - 0.25) < 1e-12);
    cr_expect(fabs(json_real_value(json_object_get(j, "took_ms")) - 1.234) < 1e-12);
    cr_expect(fabs(json_real_value(json_object_get(j, "tiny_ms")) - 0.007) < 1e-12);
    cr_expect(fabs(json_real_value(json_object_get(j, "below_zero")) + 0.05) < 1e-12);
    cr_expect(json_is_null(json_object_get(j, "nan")));
    cr_expect(json_is_true(json_object_get(j, "patched")));
    cr_expect(json_is_null(json_object_get(j, "none")));
    json_t *sizes = json_object_get(j, "sizes");
    cr_expect_eq(json_integer_value(json_object_get(sizes, "heap")), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(sizes, "inner"), "a")), "b");
    cr_expect_str_eq(json_string_value(json_object_get(j, "slice")), "abc");
    json_decref(j);
}

Test(obs_log, escaping_and_utf8)
{
    struct fmw_log_line l;
    fmw_log_begin(&l, FMW_LOG_WARN, "quote \" backslash \\ newline \n tab \t nul-free \x01");
    fmw_log_str(&l, "utf8", "größe 1.5 GiB \xe2\x9c\x93");
    fmw_log_str(&l, "bad",
                "a\xff"
                "b\xc3"
                "c\xed\xa0\x80"
                "d"); /* stray, cut, surrogate */
    fmw_log_strn(&l, "nul", (struct fmw_str){"x\0y", 3});
    fmw_log_end(&l);
    json_t *j = one_line();
    cr_expect_str_eq(json_string_value(json_object_get(j, "msg")),
                     "quote \" backslash \\ newline \n tab \t nul-free \x01");
    cr_expect_str_eq(json_string_value(json_object_get(j, "utf8")), "größe 1.5 GiB \xe2\x9c\x93");
    cr_expect_str_eq(json_string_value(json_object_get(j, "bad")),
                     "a\xef\xbf\xbd"
                     "b\xef\xbf\xbd"
                     "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                     "d");
    json_decref(j);
}

Test(obs_log, secrets_are_redacted)
{
    struct fmw_log_line l;
    fmw_log_begin(&l, FMW_LOG_INFO, "m");
    fmw_log_str(&l, "token", "eyJhbGciOi");
    fmw_log_str(&l, "Authorization", "Bearer abc");
    fmw_log_str(&l, "client_secret", "s3cr3t");
    fmw_log_int(&l, "password_len", 12);
    fmw_log_str(&l, "namespace", "flink");
    fmw_log_end(&l);
    size_t len;
    const char *text = drain(&len);
    cr_expect_null(strstr(text, "eyJ"));
    cr_expect_null(strstr(text, "Bearer"));
    cr_expect_null(strstr(text, "s3cr3t"));
    /* Not a bare "12": the timestamp may hold those digits. */
    cr_expect_null(strstr(text, "\"password_len\":12"));
    cr_expect_not_null(strstr(text, "\"password_len\":\"[redacted]\""), "%s", text);
    cr_expect_not_null(strstr(text, "\"namespace\":\"flink\""));
    cr_expect_not_null(strstr(text, "\"token\":\"[redacted]\""));
}

Test(obs_log, level_filter)
{
    fmw_log_setup(FMW_LOG_WARN, fds[1]);
    struct fmw_log_line l;
    cr_expect_not(fmw_log_begin(&l, FMW_LOG_INFO, "dropped"));
    fmw_log_str(&l, "k", "v");
    fmw_log_end(&l);
    fmw_logf(FMW_LOG_DEBUG, "dropped %d", 1);
    size_t len;
    drain(&len);
    cr_expect_eq(len, 0);
    cr_expect_not(fmw_log_enabled(FMW_LOG_INFO));
    cr_expect(fmw_log_enabled(FMW_LOG_ERROR));
    fmw_logf(FMW_LOG_ERROR, "kept %d", 2);
    json_t *j = one_line();
    cr_expect_str_eq(json_string_value(json_object_get(j, "msg")), "kept 2");
    cr_expect_str_eq(json_string_value(json_object_get(j, "level")), "error");
    json_decref(j);
}

Test(obs_log, long_lines_are_cut_but_valid)
{
    char big[1000];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct fmw_log_line l;
    fmw_log_begin(&l, FMW_LOG_INFO, "big");
    fmw_log_object_begin(&l, "nested");
    for (int i = 0; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof(key), "f%d", i);
        fmw_log_str(&l, key, big);
    }
    fmw_log_str(&l, "after", "x"); /* dropped: fields after a cut one are dropped too */
    fmw_log_end(&l);
    size_t len;
    const char *text = drain(&len);
    cr_expect_leq(len, FMW_LOG_LINE_MAX);
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    cr_assert_not_null(j, "%s: %s", err.text, text);
    cr_expect(json_is_true(json_object_get(j, "truncated")));
    json_t *nested = json_object_get(j, "nested");
    cr_expect(json_object_size(nested) >= 3 && json_object_size(nested) < 10);
    cr_expect_null(json_object_get(nested, "after"));
    json_decref(j);
}

Test(obs_log, level_names)
{
    enum fmw_log_level lv;
    cr_expect_eq(fmw_log_level_parse("DEBUG", &lv), FMW_OK);
    cr_expect_eq(lv, FMW_LOG_DEBUG);
    cr_expect_eq(fmw_log_level_parse("warning", &lv), FMW_OK);
    cr_expect_eq(lv, FMW_LOG_WARN);
    cr_expect_eq(fmw_log_level_parse("verbose", &lv), FMW_EINVAL);
    cr_expect_eq(fmw_log_level_parse(NULL, &lv), FMW_EINVAL);
    cr_expect_str_eq(fmw_log_level_name(FMW_LOG_ERROR), "error");
}
