/* Flink's MemorySize: parsing, its two text forms and its arithmetic, byte for byte. */
#include "pkg/memsize/memsize_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char UNITS_TEXT[] = "(b | bytes) / (k | kb | kibibytes) / (m | mb | mebibytes) / "
                                 "(g | gb | gibibytes) / (t | tb | tebibytes)";

static const struct {
    const char *names[3];
    uint64_t multiplier;
} UNITS[] = {
    {{"b", "bytes", NULL}, 1},           {{"k", "kb", "kibibytes"}, FMW_KIB},
    {{"m", "mb", "mebibytes"}, FMW_MIB}, {{"g", "gb", "gibibytes"}, FMW_GIB},
    {{"t", "tb", "tebibytes"}, FMW_TIB},
};

enum fmw_err fmw_memsize_parse(struct fmw_str text, uint64_t *bytes, struct fmw_diag *d)
{
    struct fmw_str trimmed = fmw_str_trim_java(text);
    if (trimmed.len == 0)
        return fmw_diag_set(d, FMW_EINVAL, "argument is an empty- or whitespace-only string");
    size_t pos = 0;
    while (pos < trimmed.len && trimmed.ptr[pos] >= '0' && trimmed.ptr[pos] <= '9')
        pos++;
    struct fmw_str number = {trimmed.ptr, pos};
    struct fmw_str unit = fmw_str_trim_java((struct fmw_str){trimmed.ptr + pos, trimmed.len - pos});
    if (number.len == 0)
        return fmw_diag_set(d, FMW_EINVAL, "text does not start with a number");

    uint64_t value = 0;
    for (size_t i = 0; i < number.len; i++) {
        unsigned digit = (unsigned)(number.ptr[i] - '0');
        if (value > (FMW_MEMSIZE_MAX - digit) / 10)
            return fmw_diag_set(d, FMW_EINVAL,
                                "The value '%.*s' cannot be re represented as 64bit number "
                                "(numeric overflow).",
                                (int)number.len, number.ptr);
        value = value * 10 + digit;
    }

    /* Locale.US lower-casing; only ASCII letters can spell a unit, so only they matter for the
     * match. Non-ASCII text is echoed unchanged in the error. */
    uint64_t multiplier = 1;
    if (unit.len) {
        char lower[32];
        bool found = false;
        if (unit.len < sizeof lower) {
            for (size_t i = 0; i < unit.len; i++)
                lower[i] = (char)tolower((unsigned char)unit.ptr[i]);
            lower[unit.len] = '\0';
            for (size_t u = 0; u < sizeof UNITS / sizeof UNITS[0] && !found; u++) {
                for (size_t k = 0; k < 3 && UNITS[u].names[k] && !found; k++) {
                    if (strcmp(lower, UNITS[u].names[k]) == 0) {
                        multiplier = UNITS[u].multiplier;
                        found = true;
                    }
                }
            }
        }
        if (!found) {
            struct fmw_buf msg;
            fmw_buf_init(&msg, FMW_DIAG_MAX);
            /* Flink's message; the diag's cap bounds it anyway, so a cut is not an error. */
            (void)fmw_buf_adds(&msg, "Memory size unit '");
            for (size_t i = 0; i < unit.len; i++) {
                unsigned char c = (unsigned char)unit.ptr[i];
                (void)fmw_buf_addc(&msg, (char)(c < 0x80 ? tolower(c) : c));
            }
            (void)fmw_buf_addf(&msg, "' does not match any of the recognized units: %s",
                               UNITS_TEXT);
            fmw_diag_set(d, FMW_EINVAL, "%s", fmw_buf_cstr(&msg));
            fmw_buf_free(&msg);
            return FMW_EINVAL;
        }
    }
    if (value > FMW_MEMSIZE_MAX / multiplier)
        return fmw_diag_set(d, FMW_EINVAL,
                            "The value '%.*s' cannot be re represented as 64bit number of bytes "
                            "(numeric overflow).",
                            (int)text.len, text.ptr);
    *bytes = value * multiplier;
    return FMW_OK;
}

void fmw_memsize_human(uint64_t bytes, char out[FMW_MEMSIZE_STRLEN])
{
    static const struct {
        uint64_t size;
        const char *name;
    } HR_UNITS[] = {{FMW_TIB, "tb"}, {FMW_GIB, "gb"}, {FMW_MIB, "mb"}, {FMW_KIB, "kb"}};
    for (size_t i = 0; i < sizeof HR_UNITS / sizeof HR_UNITS[0]; i++) {
        if (bytes > HR_UNITS[i].size) {
            char x[FMW_MEMSIZE_STRLEN];
            fmw_java_format_3f((double)bytes / (double)HR_UNITS[i].size, x);
            if (snprintf(out, FMW_MEMSIZE_STRLEN, "%s%s (%" PRIu64 " bytes)", x, HR_UNITS[i].name,
                         bytes) >= FMW_MEMSIZE_STRLEN)
                out[FMW_MEMSIZE_STRLEN - 1] = '\0'; /* cannot happen: x has at most 11 chars */
            return;
        }
    }
    snprintf(out, FMW_MEMSIZE_STRLEN, "%" PRIu64 " bytes", bytes);
}

void fmw_memsize_flink(uint64_t bytes, char out[FMW_MEMSIZE_STRLEN])
{
    /* The largest unit that divides the size, except that every unit dividing it (0, or a
     * multiple of 1 TiB) falls back to plain bytes: Flink's own quirk, kept for fidelity. */
    static const struct {
        uint64_t size;
        const char *name;
    } TS_UNITS[] = {
        {1, "bytes"}, {FMW_KIB, "kb"}, {FMW_MIB, "mb"}, {FMW_GIB, "gb"}, {FMW_TIB, "tb"}};
    size_t n = sizeof TS_UNITS / sizeof TS_UNITS[0];
    for (size_t i = 1; i < n; i++) {
        if (bytes % TS_UNITS[i].size != 0) {
            snprintf(out, FMW_MEMSIZE_STRLEN, "%" PRIu64 " %s", bytes / TS_UNITS[i - 1].size,
                     TS_UNITS[i - 1].name);
            return;
        }
    }
    snprintf(out, FMW_MEMSIZE_STRLEN, "%" PRIu64 " bytes", bytes);
}

enum fmw_err fmw_memsize_add(uint64_t a, uint64_t b, uint64_t *sum)
{
    if (a > FMW_MEMSIZE_MAX || b > FMW_MEMSIZE_MAX - a)
        return FMW_EOVERFLOW;
    *sum = a + b;
    return FMW_OK;
}

enum fmw_err fmw_memsize_mul(uint64_t bytes, double m, uint64_t *product)
{
    if (!(m >= 0))
        return FMW_EINVAL;
    if (isinf(m))
        return FMW_EINVAL; /* BigDecimal.valueOf(Infinity) throws NumberFormatException */
    if (m == 0 || bytes == 0) {
        *product = 0;
        return FMW_OK;
    }
    /* m's decimal digits D × 10^(e - (n-1)) as Double.toString writes them (BigDecimal.valueOf);
     * the product bytes × D fits in 128 bits (D has at most 18 digits: 2^63 × 10^18 < 2^123),
     * then the power of ten is applied exactly, truncating. */
    char digits[FMW_DIGITS_MAX + 1];
    int e;
    int n = fmw_java_digits(m, true, digits, &e);
    fmw_u128 mant = 0;
    for (int i = 0; i < n; i++)
        mant = mant * 10 + (unsigned)(digits[i] - '0');
    fmw_u128 p = mant * bytes;
    int scale = e - (n - 1);
    for (; scale > 0; scale--) {
        if (p > FMW_MEMSIZE_MAX)
            return FMW_EOVERFLOW;
        p *= 10;
    }
    for (; scale < 0 && p; scale++)
        p /= 10;
    if (p > FMW_MEMSIZE_MAX)
        return FMW_EOVERFLOW;
    *product = (uint64_t)p;
    return FMW_OK;
}
