/*
 * The Java number conversions that Flink's memory model leans on. Flink's numbers reach users in
 * Java's spelling (Double.toString, String.format("%.3f")), and fractions enter the arithmetic
 * through BigDecimal.valueOf(double), so we reproduce those conversions rather than C's.
 */
#include "pkg/memsize/memsize_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The last few answers of this thread: the same fractions (Flink's defaults, 0.1 above all)
 * come back in every review, and working one out costs a handful of printf calls. */
#define MEMO_SLOTS 4
struct memo {
    uint64_t bits;
    bool used;
    int n, exp10;
    char digits[FMW_DIGITS_MAX + 1];
};
static _Thread_local struct memo tl_memo[MEMO_SLOTS];
static _Thread_local unsigned tl_memo_next;

static int shortest_digits_uncached(double d, char digits[FMW_DIGITS_MAX + 1], int *exp10);

int fmw_shortest_digits(double d, char digits[FMW_DIGITS_MAX + 1], int *exp10)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    for (unsigned i = 0; i < MEMO_SLOTS; i++) {
        const struct memo *m = &tl_memo[i];
        if (m->used && m->bits == bits) {
            memcpy(digits, m->digits, (size_t)m->n + 1);
            *exp10 = m->exp10;
            return m->n;
        }
    }
    int n = shortest_digits_uncached(d, digits, exp10);
    struct memo *m = &tl_memo[tl_memo_next++ % MEMO_SLOTS];
    m->bits = bits;
    m->used = true;
    m->n = n;
    m->exp10 = *exp10;
    memcpy(m->digits, digits, (size_t)n + 1);
    return n;
}

static int shortest_digits_uncached(double d, char digits[FMW_DIGITS_MAX + 1], int *exp10)
{
    /* The fewest significant digits whose correctly rounded value reads back as d: what Java's
     * Double.toString (JDK 19+, and for realistic values earlier ones) and Python's repr pick. */
    char buf[40];
    /* Round trip is monotonic in the precision (the correctly rounded p-digit value is also a
     * (p+1)-digit candidate, so the (p+1)-digit one is at least as close): binary search for the
     * fewest digits instead of trying all 17, since printing a double is costly. 17 always reads
     * back. */
    int lo = 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(buf, sizeof buf, "%.*e", mid - 1, d);
        if (strtod(buf, NULL) == d)
            hi = mid;
        else
            lo = mid + 1;
    }
    snprintf(buf, sizeof buf, "%.*e", lo - 1, d);
    /* buf is "d[.ddd]e[+-]xx". */
    int n = 0;
    const char *p = buf;
    for (; *p && *p != 'e'; p++) {
        if (isdigit((unsigned char)*p))
            digits[n++] = *p;
    }
    *exp10 = (*p == 'e') ? atoi(p + 1) : 0;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    return n;
}

void fmw_java_double_str(double d, char out[FMW_MEMSIZE_STRLEN])
{
    if (isnan(d)) {
        memcpy(out, "NaN", sizeof "NaN");
        return;
    }
    if (isinf(d)) {
        const char *inf = d < 0 ? "-Infinity" : "Infinity";
        memcpy(out, inf, strlen(inf) + 1);
        return;
    }
    char *o = out;
    if (signbit(d)) {
        *o++ = '-';
        d = -d;
    }
    if (d == 0) {
        memcpy(o, "0.0", sizeof "0.0");
        return;
    }
    char digits[FMW_DIGITS_MAX + 1];
    int e;
    int n = fmw_shortest_digits(d, digits, &e);
    if (d >= 1e-3 && d < 1e7) {
        /* Plain notation: integer part, '.', at least one fractional digit. */
        if (e < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = -1; i > e; i--)
                *o++ = '0';
            memcpy(o, digits, (size_t)n);
            o += n;
        } else {
            for (int i = 0; i <= e; i++)
                *o++ = i < n ? digits[i] : '0';
            *o++ = '.';
            if (n > e + 1) {
                memcpy(o, digits + e + 1, (size_t)(n - e - 1));
                o += n - e - 1;
            } else {
                *o++ = '0';
            }
        }
        *o = '\0';
        return;
    }
    /* Computerized scientific notation: d.dddE<exp>. */
    *o++ = digits[0];
    *o++ = '.';
    if (n > 1) {
        memcpy(o, digits + 1, (size_t)(n - 1));
        o += n - 1;
    } else {
        *o++ = '0';
    }
    sprintf(o, "E%d", e);
}

void fmw_java_format_3f(double x, char out[FMW_MEMSIZE_STRLEN])
{
    /* String.format(Locale.ROOT, "%.3f", x) for 0 < x < 2^63: Java rounds HALF_UP on the
     * shortest decimal digits of x, where C's printf rounds the binary value half-even. */
    char digits[FMW_DIGITS_MAX + 1];
    int e;
    int n = fmw_shortest_digits(x, digits, &e);
    /* Lay the value out as a fixed-point digit string with 4 fractional digits (one to round). */
    char fixed[FMW_MEMSIZE_STRLEN] = {0};
    int int_digits = e >= 0 ? e + 1 : 1;
    int len = 0;
    for (int pos = int_digits - 1; pos >= -4; pos--) {
        /* pos is the power of ten of this output digit; digit k of `digits` has power e - k. */
        int k = e - pos;
        fixed[len++] = (k >= 0 && k < n) ? digits[k] : '0';
    }
    bool round_up = fixed[len - 1] >= '5';
    len--; /* drop the rounding digit */
    if (round_up) {
        int i = len - 1;
        while (i >= 0 && fixed[i] == '9') {
            fixed[i] = '0';
            i--;
        }
        if (i >= 0) {
            fixed[i]++;
        } else {
            memmove(fixed + 1, fixed, (size_t)len);
            fixed[0] = '1';
            len++;
            int_digits++;
        }
    }
    /* Strip leading zeros of the integer part, keeping one. */
    int skip = 0;
    while (skip < int_digits - 1 && fixed[skip] == '0')
        skip++;
    int o = 0;
    for (int i = skip; i < int_digits; i++)
        out[o++] = fixed[i];
    out[o++] = '.';
    for (int i = int_digits; i < len; i++)
        out[o++] = fixed[i];
    out[o] = '\0';
}

static bool all_hex(const char *p, const char *end)
{
    for (; p < end; p++) {
        if (!isxdigit((unsigned char)*p))
            return false;
    }
    return true;
}

/* Float.parseFloat (to_double false) or Double.parseDouble: the same grammar, rounded once to
 * the target type. */
static bool java_parse_floating(struct fmw_str text, bool to_double, float *out, double *dout)
{
    struct fmw_str s = fmw_str_trim_java(text);
    if (s.len == 0 || s.len > 4096)
        return false; /* empty: Java throws; absurdly long: not a fraction anyone means */
    const char *p = s.ptr;
    const char *end = s.ptr + s.len;
    bool neg = false;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    size_t rest = (size_t)(end - p);
    if (rest == 3 && memcmp(p, "NaN", 3) == 0) {
        if (to_double)
            *dout = NAN;
        else
            *out = NAN;
        return true;
    }
    if (rest == 8 && memcmp(p, "Infinity", 8) == 0) {
        if (to_double)
            *dout = neg ? -INFINITY : INFINITY;
        else
            *out = neg ? -INFINITY : INFINITY;
        return true;
    }
    /* A type suffix may close any finite literal. */
    if (end > p && strchr("fFdD", end[-1]))
        end--;
    bool ok = false;
    if (end - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        /* Hex float: 0x<hex>[.<hex>]p<exp>; the binary exponent is mandatory in Java. */
        const char *m = p + 2;
        const char *pp = m;
        while (pp < end && *pp != 'p' && *pp != 'P')
            pp++;
        if (pp == end)
            return false;
        const char *dot = memchr(m, '.', (size_t)(pp - m));
        size_t mant_digits = (size_t)(pp - m) - (dot ? 1 : 0);
        if (mant_digits == 0)
            return false;
        if (dot ? !(all_hex(m, dot) && all_hex(dot + 1, pp)) : !all_hex(m, pp))
            return false;
        const char *x = pp + 1;
        if (x < end && (*x == '+' || *x == '-'))
            x++;
        if (x == end)
            return false;
        for (const char *q = x; q < end; q++) {
            if (!isdigit((unsigned char)*q))
                return false;
        }
        ok = true;
    } else {
        const char *q = p;
        size_t ndig = 0;
        while (q < end && isdigit((unsigned char)*q)) {
            q++;
            ndig++;
        }
        if (q < end && *q == '.') {
            q++;
            while (q < end && isdigit((unsigned char)*q)) {
                q++;
                ndig++;
            }
        }
        if (ndig == 0)
            return false;
        if (q < end && (*q == 'e' || *q == 'E')) {
            q++;
            if (q < end && (*q == '+' || *q == '-'))
                q++;
            if (q == end || !isdigit((unsigned char)*q))
                return false;
            while (q < end && isdigit((unsigned char)*q))
                q++;
        }
        ok = q == end;
    }
    if (!ok)
        return false;
    /* strtof/strtod round correctly from the decimal (or hex) text straight to the type, as
     * Java does. */
    char *num = fmw_str_dup((struct fmw_str){p, (size_t)(end - p)});
    if (!num)
        return false;
    if (to_double) {
        double v = strtod(num, NULL);
        *dout = neg ? -v : v;
    } else {
        float v = strtof(num, NULL);
        *out = neg ? -v : v;
    }
    free(num);
    return true;
}

bool fmw_java_parse_float(struct fmw_str text, float *out)
{
    return java_parse_floating(text, false, out, NULL);
}

bool fmw_java_parse_double(struct fmw_str text, double *out)
{
    return java_parse_floating(text, true, NULL, out);
}

bool fmw_java_parse_int(struct fmw_str text, int32_t *out)
{
    const char *p = text.ptr;
    const char *end = text.ptr + text.len;
    bool neg = false;
    if (p < end && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    if (p == end)
        return false;
    int64_t v = 0;
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        v = v * 10 + (*p - '0');
        if (v > (int64_t)INT32_MAX + 1)
            return false;
    }
    if (neg)
        v = -v;
    if (v > INT32_MAX || v < INT32_MIN)
        return false;
    *out = (int32_t)v;
    return true;
}
