/* MemorySize, Java number conversions and Kubernetes quantities. */
#include "pkg/memsize/memsize.h"
#include "tests/unit/support.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

Test(memsize, flink_vectors)
{
    json_t *cases = fmw_test_load_json("flink-cases.json");
    size_t i, checked = 0;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        json_t *parse = json_object_get(c, "parse"); /* borrowed */
        json_t *hr = json_object_get(c, "format_human_readable");
        json_t *ts = json_object_get(c, "format_to_string");
        const char *src = json_string_value(json_object_get(c, "source"));
        if (parse) {
            const char *text = json_string_value(parse);
            uint64_t bytes = 0;
            struct fmw_diag d = FMW_DIAG_INIT;
            enum fmw_err err = fmw_memsize_parse(fmw_str_c(text), &bytes, &d);
            if (json_is_true(json_object_get(c, "error"))) {
                cr_expect_eq(err, FMW_EINVAL, "[%s] '%s' must fail", src, text);
                const char *want = json_string_value(json_object_get(c, "error_message"));
                if (want)
                    cr_expect_str_eq(fmw_diag_msg(&d), want, "[%s] '%s'", src, text);
            } else {
                cr_expect_eq(err, FMW_OK, "[%s] '%s': %s", src, text, fmw_diag_msg(&d));
                cr_expect_eq(bytes,
                             (uint64_t)json_integer_value(json_object_get(c, "expect_bytes")),
                             "[%s] '%s'", src, text);
            }
            fmw_diag_cleanup(&d);
            checked++;
        } else if (hr || ts) {
            char out[FMW_MEMSIZE_STRLEN];
            uint64_t bytes = (uint64_t)json_integer_value(hr ? hr : ts);
            if (hr)
                fmw_memsize_human(bytes, out);
            else
                fmw_memsize_flink(bytes, out);
            cr_expect_str_eq(out, json_string_value(json_object_get(c, "expect")), "[%s]", src);
            checked++;
        }
    }
    cr_expect_gt(checked, 50, "the vectors hold MemorySize cases");
    json_decref(cases);
}

Test(memsize, parse_units_and_errors)
{
    struct {
        const char *text;
        uint64_t bytes;
        const char *error;
    } cases[] = {
        {"1600m", 1600 * FMW_MIB, NULL},
        {" 1 GB ", FMW_GIB, NULL},
        {"1024 mebibytes", FMW_GIB, NULL},
        {"\t2\tg\t", 2 * FMW_GIB, NULL},
        {"007k", 7 * FMW_KIB, NULL},
        {"9223372036854775807", FMW_MEMSIZE_MAX, NULL},
        {"8388607t", 8388607 * FMW_TIB, NULL},
        {"1.5g", 0,
         "Memory size unit '.5g' does not match any of the recognized units: (b | bytes) / (k | "
         "kb | kibibytes) / (m | mb | mebibytes) / (g | gb | gibibytes) / (t | tb | tebibytes)"},
        {"2Gi", 0,
         "Memory size unit 'gi' does not match any of the recognized units: (b | bytes) / (k | "
         "kb | kibibytes) / (m | mb | mebibytes) / (g | gb | gibibytes) / (t | tb | tebibytes)"},
        {"-1g", 0, "text does not start with a number"},
        {"'1600m'", 0, "text does not start with a number"},
        {"   ", 0, "argument is an empty- or whitespace-only string"},
        {"9223372036854775808", 0,
         "The value '9223372036854775808' cannot be re represented as 64bit number (numeric "
         "overflow)."},
        {" 8388608t", 0,
         "The value ' 8388608t' cannot be re represented as 64bit number of bytes (numeric "
         "overflow)."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t bytes = 0;
        struct fmw_diag d = FMW_DIAG_INIT;
        enum fmw_err err = fmw_memsize_parse(fmw_str_c(cases[i].text), &bytes, &d);
        if (cases[i].error) {
            cr_expect_eq(err, FMW_EINVAL, "'%s'", cases[i].text);
            cr_expect_str_eq(fmw_diag_msg(&d), cases[i].error);
        } else {
            cr_expect_eq(err, FMW_OK, "'%s': %s", cases[i].text, fmw_diag_msg(&d));
            cr_expect_eq(bytes, cases[i].bytes, "'%s'", cases[i].text);
        }
        fmw_diag_cleanup(&d);
    }
}

Test(memsize, human_readable_rounds_half_up_like_java)
{
    /* 1600 bytes = 1.5625 kb: Java prints 1.563, C's printf would print 1.562. */
    struct {
        uint64_t bytes;
        const char *text;
    } cases[] = {
        {1600, "1.563kb (1600 bytes)"},
        {1000000, "976.563kb (1000000 bytes)"},
        {1024, "1024 bytes"},
        {1025, "1.001kb (1025 bytes)"},
        {FMW_GIB, "1024.000mb (1073741824 bytes)"},
        {FMW_GIB + 1, "1.000gb (1073741825 bytes)"},
        {1677721600, "1.563gb (1677721600 bytes)"},
        {FMW_MEMSIZE_MAX, "8388608.000tb (9223372036854775807 bytes)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[FMW_MEMSIZE_STRLEN];
        fmw_memsize_human(cases[i].bytes, out);
        cr_expect_str_eq(out, cases[i].text);
    }
}

Test(memsize, multiply_uses_decimal_digits_of_the_double)
{
    uint64_t out;
    /* 0.01f widened: 0.009999999776482582; exact binary would give 5368709. */
    cr_expect_eq(fmw_memsize_mul(512 * FMW_MIB, (double)0.01f, &out), FMW_OK);
    cr_expect_eq(out, 5368708);
    cr_expect_eq(fmw_memsize_mul(1677721600, (double)0.1f, &out), FMW_OK);
    cr_expect_eq(out, 167772162);
    cr_expect_eq(fmw_memsize_mul(FMW_MEMSIZE_MAX, 1.5, &out), FMW_EOVERFLOW);
    cr_expect_eq(fmw_memsize_mul(10, -0.5, &out), FMW_EINVAL);
    cr_expect_eq(fmw_memsize_mul(10, NAN, &out), FMW_EINVAL);
    /* BigDecimal.valueOf(2^62) is 4.6116860184273879E18 on JDK 17 (FloatingDecimal's digits). */
    cr_expect_eq(fmw_memsize_mul(1, 4611686018427387904.0, &out), FMW_OK);
    cr_expect_eq(out, 4611686018427387900u);
    cr_expect_eq(fmw_memsize_mul(FMW_MEMSIZE_MAX, 1.0, &out), FMW_OK);
    cr_expect_eq(out, FMW_MEMSIZE_MAX);
}

Test(memsize, add_detects_long_overflow)
{
    uint64_t out;
    cr_expect_eq(fmw_memsize_add(FMW_MEMSIZE_MAX, 0, &out), FMW_OK);
    cr_expect_eq(fmw_memsize_add(FMW_MEMSIZE_MAX, 1, &out), FMW_EOVERFLOW);
}

Test(memsize, java_double_to_string)
{
    struct {
        double d;
        const char *text;
    } cases[] = {
        {(double)0.1f, "0.10000000149011612"},
        {(double)0.1f / (1 - (double)0.1f), "0.11111111295076065"},
        {1.0, "1.0"},
        {0.25, "0.25"},
        {-0.1, "-0.1"},
        {1e-5, "1.0E-5"},
        {1e7, "1.0E7"},
        {1234567.0, "1234567.0"},
        {0.001, "0.001"},
        {1000.0, "1000.0"},
        {-0.0, "-0.0"},
        {NAN, "NaN"},
        {-INFINITY, "-Infinity"},
        {(double)-0.1f, "-0.10000000149011612"},
        /* Where JDK 8 to 18's FloatingDecimal (Flink's JVMs, and the oracle's JDK 17) is not the
         * shortest decimal: integers below 2^63 keep the digits their 53 bits make significant,
         * the symmetric stopping test, subnormals, a carry at the last digit. */
        {4611686018427387904.0, "4.6116860184273879E18"},
        {282879384806159008.0, "2.82879384806159008E17"},
        {1e23, "9.999999999999999E22"},
        {8.41e21, "8.409999999999999E21"},
        {5.684341886080802e-14, "5.6843418860808015E-14"},
        {4.9e-324, "4.9E-324"},
        {32 * 4.9e-324, "1.58E-322"},
        {9007199254740993.0, "9.007199254740992E15"},
        {9223372036854775807.0, "9.223372036854776E18"},
        {1.7976931348623157e308, "1.7976931348623157E308"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[FMW_MEMSIZE_STRLEN];
        fmw_java_double_str(cases[i].d, out);
        cr_expect_str_eq(out, cases[i].text);
    }
}

Test(memsize, java_parse_float)
{
    struct {
        const char *text;
        bool ok;
        float value;
    } cases[] = {
        {"0.1", true, 0.1f}, {" 0.2 ", true, 0.2f}, {"0.1f", true, 0.1f},   {"1e-1", true, 0.1f},
        {"+.5", true, 0.5f}, {"5.", true, 5.0f},    {"0x1p-1", true, 0.5f}, {"-0.1D", true, -0.1f},
        {"0x1", false, 0},   {"", false, 0},        {"0.1.2", false, 0},    {"1e", false, 0},
        {"abc", false, 0},   {"0,1", false, 0},     {"NaNf", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float v = -1;
        bool ok = fmw_java_parse_float(fmw_str_c(cases[i].text), &v);
        cr_expect_eq(ok, cases[i].ok, "'%s'", cases[i].text);
        if (ok && cases[i].ok)
            cr_expect_eq(v, cases[i].value, "'%s'", cases[i].text);
    }
    float v;
    cr_expect(fmw_java_parse_float(fmw_str_c("NaN"), &v) && isnan(v));
    cr_expect(fmw_java_parse_float(fmw_str_c("-Infinity"), &v) && isinf(v) && v < 0);
}

Test(memsize, java_parse_double)
{
    double d;
    cr_expect(fmw_java_parse_double(fmw_str_c(" 1.5 "), &d) && d == 1.5);
    cr_expect(fmw_java_parse_double(fmw_str_c("2d"), &d) && d == 2.0);
    cr_expect(fmw_java_parse_double(fmw_str_c("0x1.8p1"), &d) && d == 3.0);
    cr_expect(fmw_java_parse_double(fmw_str_c("0.1"), &d) && d == 0.1, "rounded to double");
    cr_expect(fmw_java_parse_double(fmw_str_c("NaN"), &d) && d != d);
    cr_expect_not(fmw_java_parse_double(fmw_str_c("1,5"), &d));
    cr_expect_not(fmw_java_parse_double(fmw_str_c(""), &d));
}

Test(memsize, quantities)
{
    struct {
        const char *text;
        bool ok;
        uint64_t bytes;
    } cases[] = {
        {"1600Mi", true, 1600 * FMW_MIB},
        {"2G", true, 2000000000},
        {"1.5Gi", true, 1610612736},
        {"129e6", true, 129000000},
        {"128974848", true, 128974848},
        {"0.5", true, 1},
        {"1500m", true, 2},
        {"+1Ki", true, 1024},
        {"0", true, 0},
        {"-1Gi", false, 0},
        {"1Gb", false, 0},
        {"", false, 0},
        {"8Ei", false, 0},
        {"1e400", false, 0},
        {"Mi", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t bytes = 0;
        enum fmw_err err = fmw_quantity_parse(fmw_str_c(cases[i].text), &bytes, NULL);
        cr_expect_eq(err == FMW_OK, cases[i].ok, "'%s'", cases[i].text);
        if (cases[i].ok)
            cr_expect_eq(bytes, cases[i].bytes, "'%s'", cases[i].text);
    }
    char out[FMW_MEMSIZE_STRLEN];
    fmw_quantity_format(1600 * FMW_MIB, out);
    cr_expect_str_eq(out, "1600Mi");
    fmw_quantity_format(1600 * FMW_MIB + 1, out);
    cr_expect_str_eq(out, "1677721601");
}
