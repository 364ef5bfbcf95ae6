/* Kubernetes resource quantities for memory: parsing any spelling, and the form we write. */
#include "pkg/memsize/memsize_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Caps that keep every intermediate value inside 128 bits. */
#define MAX_SIG_DIGITS 30
#define MAX_EXP10      40

static enum fmw_err bad(struct fmw_diag *d, struct fmw_str text, const char *why)
{
    return fmw_diag_set(d, FMW_EINVAL, "'%.*s' is not a valid Kubernetes memory quantity: %s",
                        (int)(text.len > 256 ? 256 : text.len), text.ptr, why);
}

enum fmw_err fmw_quantity_parse(struct fmw_str text, uint64_t *bytes, struct fmw_diag *d)
{
    const char *p = text.ptr;
    const char *end = text.ptr + text.len;
    if (p == end)
        return bad(d, text, "empty");
    if (*p == '+')
        p++;
    else if (*p == '-')
        return bad(d, text, "negative");

    /* Mantissa: digits [. digits] — kept as an integer with a count of fractional digits. */
    fmw_u128 num = 0;
    int sig = 0, frac = 0, ndig = 0;
    bool seen_dot = false;
    for (; p < end && (isdigit((unsigned char)*p) || (*p == '.' && !seen_dot)); p++) {
        if (*p == '.') {
            seen_dot = true;
            continue;
        }
        ndig++;
        if (num == 0 && *p == '0') {
            if (seen_dot)
                frac++;
            continue;
        }
        if (++sig > MAX_SIG_DIGITS)
            return bad(d, text, "too many digits");
        num = num * 10 + (unsigned)(*p - '0');
        if (seen_dot)
            frac++;
    }
    if (ndig == 0)
        return bad(d, text, "no number");

    /* Suffix: binary SI, decimal SI, or a decimal exponent. */
    int exp2 = 0, exp10 = 0;
    struct fmw_str suf = {p, (size_t)(end - p)};
    static const struct {
        const char *name;
        int exp2, exp10;
    } SUFFIXES[] = {{"Ki", 10, 0}, {"Mi", 20, 0}, {"Gi", 30, 0}, {"Ti", 40, 0},
                    {"Pi", 50, 0}, {"Ei", 60, 0}, {"n", 0, -9},  {"u", 0, -6},
                    {"m", 0, -3},  {"", 0, 0},    {"k", 0, 3},   {"M", 0, 6},
                    {"G", 0, 9},   {"T", 0, 12},  {"P", 0, 15},  {"E", 0, 18}};
    bool matched = false;
    for (size_t i = 0; i < sizeof SUFFIXES / sizeof SUFFIXES[0]; i++) {
        if (fmw_str_eq_c(suf, SUFFIXES[i].name)) {
            exp2 = SUFFIXES[i].exp2;
            exp10 = SUFFIXES[i].exp10;
            matched = true;
            break;
        }
    }
    if (!matched) {
        if (suf.len < 2 || (suf.ptr[0] != 'e' && suf.ptr[0] != 'E'))
            return bad(d, text, "unknown suffix");
        const char *q = suf.ptr + 1;
        bool neg = false;
        if (*q == '+' || *q == '-') {
            neg = *q == '-';
            q++;
        }
        if (q == end)
            return bad(d, text, "bad exponent");
        for (; q < end; q++) {
            if (!isdigit((unsigned char)*q))
                return bad(d, text, "bad exponent");
            if (exp10 < 1000)
                exp10 = exp10 * 10 + (*q - '0');
        }
        if (neg)
            exp10 = -exp10;
    }

    if (num == 0) {
        *bytes = 0;
        return FMW_OK;
    }
    int scale = exp10 - frac;
    if (scale > MAX_EXP10)
        return bad(d, text, "too large");
    for (int i = 0; i < exp2; i++) {
        num <<= 1;
        if (num > ((fmw_u128)FMW_MEMSIZE_MAX << 64))
            return bad(d, text, "too large");
    }
    for (; scale > 0; scale--) {
        num *= 10;
        if (num > ((fmw_u128)FMW_MEMSIZE_MAX << 64))
            return bad(d, text, "too large");
    }
    /* Fractions of a byte round up, as Quantity.Value() does; ceil(ceil(a/10)/10) = ceil(a/100). */
    for (; scale < 0 && num > 1; scale++)
        num = (num + 9) / 10;
    if (num > FMW_MEMSIZE_MAX)
        return bad(d, text, "too large");
    *bytes = (uint64_t)num;
    return FMW_OK;
}

void fmw_quantity_format(uint64_t bytes, char out[FMW_MEMSIZE_STRLEN])
{
    if (bytes % FMW_MIB == 0)
        snprintf(out, FMW_MEMSIZE_STRLEN, "%" PRIu64 "Mi", bytes / FMW_MIB);
    else
        snprintf(out, FMW_MEMSIZE_STRLEN, "%" PRIu64, bytes);
}
