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

/*
 * Java's decimal digits of a double, as FloatingDecimal.BinaryToASCIIBuffer.dtoa writes them in
 * JDK 8 to 18 (Flink's images run 11 and 17): Double.toString, BigDecimal.valueOf(double) and
 * Formatter's "%f" all start from them. They are not always the shortest digits that read back
 * (JDK 19's Double.toString is): an integer below 2^63 keeps every digit the double's 53 bits
 * make significant (2^62 is 4.6116860184273879E18), the digit loop stops on a symmetric half-ULP
 * test (1.0E23 prints as 9.999999999999999E22), and subnormals keep more digits than they hold
 * (Double.MIN_VALUE is 4.9E-324). dtoa's three ways (int, long and big-integer arithmetic) are
 * kept with their widths, wrap-around and comparisons, so that the digits are the same.
 */

/* 5^n for n <= 26, the powers FDBigInteger.LONG_5_POW holds (its int table is the first 14). */
static int64_t pow5(int n)
{
    int64_t p = 1;
    while (n-- > 0)
        p *= 5;
    return p;
}

/* About ceil(log2(5^i)), as dtoa estimates the bits of its numbers. */
static const int N_5_BITS[27] = {0,  3,  5,  7,  10, 12, 14, 17, 19, 21, 24, 26, 28, 31,
                                 33, 35, 38, 40, 42, 45, 47, 49, 52, 54, 56, 59, 61};

/* insignificantDigitsForPow2: how many decimal digits 2^p2 has beyond the first. */
static int insignificant_digits_pow2(int p2)
{
    static const int table[] = {0,  0,  0,  0,  1,  1,  1,  2,  2,  2,  3,  3,  3,  3,  4,  4,
                                4,  5,  5,  5,  6,  6,  6,  6,  7,  7,  7,  8,  8,  8,  9,  9,
                                9,  9,  10, 10, 10, 11, 11, 11, 12, 12, 12, 12, 13, 13, 13, 14,
                                14, 14, 15, 15, 15, 15, 16, 16, 16, 17, 17, 17, 18, 18, 18, 19};
    return p2 > 1 && p2 < (int)(sizeof table / sizeof table[0]) ? table[p2] : 0;
}

/* Java's int and long arithmetic: two's complement, wrapping. */
static int32_t i32_mul(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a * (uint32_t)b);
}
static int32_t i32_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}
static int32_t i32_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}
static int32_t i32_shl(int32_t a, int n)
{
    return (int32_t)((uint32_t)a << (n & 31));
}
static int64_t i64_mul(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a * (uint64_t)b);
}
static int64_t i64_add(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}
static int64_t i64_sub(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}
static int64_t i64_shl(int64_t a, int n)
{
    return (int64_t)((uint64_t)a << (n & 63));
}

/* A non-negative big integer for dtoa's third way (FDBigInteger): 32-bit words, least
 * significant first. dtoa's numbers take at most 27 words for any double (checked over every
 * exponent); 64 leave room. */
#define BIG_WORDS 64
struct big {
    uint32_t w[BIG_WORDS];
    int n; /* words in use; no leading zero word */
};

static void big_trim(struct big *b)
{
    while (b->n > 0 && b->w[b->n - 1] == 0)
        b->n--;
}

static void big_set(struct big *b, uint64_t v)
{
    b->w[0] = (uint32_t)v;
    b->w[1] = (uint32_t)(v >> 32);
    b->n = 2;
    big_trim(b);
}

static void big_mul_small(struct big *b, uint32_t m)
{
    uint64_t carry = 0;
    for (int i = 0; i < b->n; i++) {
        uint64_t t = (uint64_t)b->w[i] * m + carry;
        b->w[i] = (uint32_t)t;
        carry = t >> 32;
    }
    if (carry && b->n < BIG_WORDS)
        b->w[b->n++] = (uint32_t)carry;
}

static void big_shl(struct big *b, int bits)
{
    if (b->n == 0 || bits <= 0)
        return;
    int words = bits / 32, rest = bits % 32;
    int n = b->n + words + 1;
    if (n > BIG_WORDS)
        n = BIG_WORDS;
    for (int i = n - 1; i >= 0; i--) {
        int src = i - words;
        uint32_t hi = src >= 0 && src < b->n ? b->w[src] : 0;
        uint32_t lo = src - 1 >= 0 && src - 1 < b->n ? b->w[src - 1] : 0;
        b->w[i] = rest ? (hi << rest) | (lo >> (32 - rest)) : hi;
    }
    b->n = n;
    big_trim(b);
}

/* b = v × 5^p5 × 2^p2 (FDBigInteger.valueOfMulPow52). */
static void big_pow52(struct big *b, uint64_t v, int p5, int p2)
{
    big_set(b, v);
    for (; p5 >= 13; p5 -= 13)
        big_mul_small(b, 1220703125u); /* 5^13 */
    if (p5 > 0)
        big_mul_small(b, (uint32_t)pow5(p5));
    big_shl(b, p2);
}

static int big_cmp(const struct big *a, const struct big *b)
{
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    for (int i = a->n - 1; i >= 0; i--) {
        if (a->w[i] != b->w[i])
            return a->w[i] < b->w[i] ? -1 : 1;
    }
    return 0;
}

static void big_add(struct big *r, const struct big *a, const struct big *b)
{
    uint64_t carry = 0;
    int n = a->n > b->n ? a->n : b->n;
    for (int i = 0; i < n; i++) {
        uint64_t t = carry + (i < a->n ? a->w[i] : 0) + (i < b->n ? b->w[i] : 0);
        r->w[i] = (uint32_t)t;
        carry = t >> 32;
    }
    r->n = n;
    if (carry && n < BIG_WORDS)
        r->w[r->n++] = (uint32_t)carry;
}

/* a -= b, where a >= b. */
static void big_sub(struct big *a, const struct big *b)
{
    int64_t borrow = 0;
    for (int i = 0; i < a->n; i++) {
        int64_t t = (int64_t)a->w[i] - (i < b->n ? b->w[i] : 0) - borrow;
        borrow = t < 0;
        a->w[i] = (uint32_t)(t + (borrow ? ((int64_t)1 << 32) : 0));
    }
    big_trim(a);
}

/* FDBigInteger.quoRemIteration: the digit b / s (below 10), then b = (b mod s) × 10. */
static int big_quo_rem(struct big *b, const struct big *s)
{
    int q = 0;
    while (big_cmp(b, s) >= 0) {
        big_sub(b, s);
        q++;
    }
    big_mul_small(b, 10);
    return q;
}

/* The digits dtoa leaves in its buffer, and its decExponent (value = 0.digits × 10^dec_exp). */
struct java_digits {
    char d[FMW_DIGITS_MAX + 1];
    int n;
    int dec_exp;
};

/* BinaryToASCIIBuffer.developLongDigits: the digits of a long, low-order zeros dropped. */
static void develop_long_digits(struct java_digits *out, int dec_exp, int64_t lvalue,
                                int insignificant)
{
    if (insignificant != 0) {
        int64_t pow10 = pow5(insignificant) << insignificant;
        int64_t residue = lvalue % pow10;
        lvalue /= pow10;
        dec_exp += insignificant;
        if (residue >= (pow10 >> 1))
            lvalue++;
    }
    char rev[FMW_DIGITS_MAX + 1];
    int n = 0;
    int c = (int)(lvalue % 10);
    lvalue /= 10;
    while (c == 0) {
        dec_exp++;
        c = (int)(lvalue % 10);
        lvalue /= 10;
    }
    while (lvalue != 0 && n < FMW_DIGITS_MAX) {
        rev[n++] = (char)('0' + c);
        dec_exp++;
        c = (int)(lvalue % 10);
        lvalue /= 10;
    }
    rev[n++] = (char)('0' + c);
    for (int i = 0; i < n; i++)
        out->d[i] = rev[n - 1 - i];
    out->n = n;
    out->dec_exp = dec_exp + 1;
}

/* BinaryToASCIIBuffer.roundup: one more in the last digit; a carry out of "99..." leaves
 * "10..." with the same count of digits and one more in the exponent. */
static void round_up(struct java_digits *out)
{
    int i = out->n - 1;
    char q = out->d[i];
    if (q == '9') {
        while (q == '9' && i > 0) {
            out->d[i] = '0';
            q = out->d[--i];
        }
        if (q == '9') {
            out->dec_exp += 1;
            out->d[0] = '1';
            return;
        }
    }
    out->d[i] = (char)(q + 1);
}

/* BinaryToASCIIBuffer.estimateDecExp: floor(log10(d)), estimated as Java does. */
static int estimate_dec_exp(uint64_t fract_bits, int bin_exp)
{
    uint64_t bits = ((uint64_t)1023 << 52) | (fract_bits & (((uint64_t)1 << 52) - 1));
    double d2;
    memcpy(&d2, &bits, sizeof d2);
    double d = (d2 - 1.5) * 0.289529654;
    d = d + 0.176091259;
    double e = (double)bin_exp * 0.301029995663981;
    d = d + e;
    return (int)floor(d);
}

/* BinaryToASCIIBuffer.dtoa for d > 0, finite; `compatible` is Double.toString's form (false:
 * Formatter's, which always develops a second digit). */
static void java_dtoa(double d, bool compatible, struct java_digits *out)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    uint64_t fract_bits = bits & (((uint64_t)1 << 52) - 1);
    int bin_exp = (int)((bits >> 52) & 0x7FF);
    int n_significant_bits;
    if (bin_exp == 0) { /* subnormal: normalised, with the bits it really has */
        int leading_zeros = __builtin_clzll(fract_bits);
        int shift = leading_zeros - (63 - 52);
        fract_bits <<= shift;
        bin_exp = 1 - shift;
        n_significant_bits = 64 - leading_zeros;
    } else {
        fract_bits |= (uint64_t)1 << 52;
        n_significant_bits = 53;
    }
    bin_exp -= 1023;

    int tail_zeros = __builtin_ctzll(fract_bits);
    int n_fract_bits = 53 - tail_zeros;
    int n_tiny_bits = n_fract_bits - bin_exp - 1 > 0 ? n_fract_bits - bin_exp - 1 : 0;
    /* dtoa's easy case (binExp in [-21, 62], and the value times 10^nTinyBits fits a long) is
     * taken only without bits right of the point: then binExp >= nFractBits - 1 >= 0, and what
     * is left of its test is binExp <= 62. */
    if (n_tiny_bits == 0 && bin_exp <= 62) {
        /* An integer that fits a long: its digits, rounded to the double's precision. */
        int insignificant = bin_exp > n_significant_bits
                                ? insignificant_digits_pow2(bin_exp - n_significant_bits - 1)
                                : 0;
        uint64_t lvalue =
            bin_exp >= 52 ? fract_bits << (bin_exp - 52) : fract_bits >> (52 - bin_exp);
        develop_long_digits(out, 0, (int64_t)lvalue, insignificant);
        return;
    }

    int dec_exp = estimate_dec_exp(fract_bits, bin_exp);
    int b5 = dec_exp < 0 ? -dec_exp : 0;
    int b2 = b5 + n_tiny_bits + bin_exp;
    int s5 = dec_exp > 0 ? dec_exp : 0;
    int s2 = s5 + n_tiny_bits;
    int m5 = b5;
    int m2 = b2 - n_significant_bits;
    fract_bits >>= tail_zeros;
    b2 -= n_fract_bits - 1;
    int common2 = b2 < s2 ? b2 : s2;
    b2 -= common2;
    s2 -= common2;
    m2 -= common2;
    if (n_fract_bits == 1) /* below a power of two the next double is half as far */
        m2 -= 1;
    if (m2 < 0) {
        b2 -= m2;
        s2 -= m2;
        m2 = 0;
    }
    int b_bits = n_fract_bits + b2 + (b5 < 27 ? N_5_BITS[b5] : b5 * 3);
    int ten_s_bits = s2 + 1 + (s5 + 1 < 27 ? N_5_BITS[s5 + 1] : (s5 + 1) * 3);
    int n = 0, q;
    bool low, high;
    int64_t low_digit_difference;
    if (b_bits < 64 && ten_s_bits < 64 && b_bits < 32 && ten_s_bits < 32) {
        int32_t b = i32_shl(i32_mul((int32_t)fract_bits, (int32_t)pow5(b5)), b2);
        int32_t s = i32_shl((int32_t)pow5(s5), s2);
        int32_t m = i32_shl((int32_t)pow5(m5), m2);
        int32_t tens = i32_mul(s, 10);
        q = b / s;
        b = i32_mul(10, b % s);
        m = i32_mul(m, 10);
        low = b < m;
        high = i32_add(b, m) > tens;
        if (q == 0 && !high)
            dec_exp--;
        else
            out->d[n++] = (char)('0' + q);
        if (!compatible || dec_exp < -3 || dec_exp >= 8)
            high = low = false;
        while (!low && !high && n < FMW_DIGITS_MAX) {
            q = b / s;
            b = i32_mul(10, b % s);
            m = i32_mul(m, 10);
            if (m > 0) {
                low = b < m;
                high = i32_add(b, m) > tens;
            } else { /* m overflowed: certainly past b, and b + m past tens */
                low = high = true;
            }
            out->d[n++] = (char)('0' + q);
        }
        low_digit_difference = i32_sub(i32_shl(b, 1), tens);
    } else if (b_bits < 64 && ten_s_bits < 64) {
        int64_t b = i64_shl(i64_mul((int64_t)fract_bits, pow5(b5)), b2);
        int64_t s = i64_shl(pow5(s5), s2);
        int64_t m = i64_shl(pow5(m5), m2);
        int64_t tens = i64_mul(s, 10);
        q = (int)(b / s);
        b = i64_mul(10, b % s);
        m = i64_mul(m, 10);
        low = b < m;
        high = i64_add(b, m) > tens;
        if (q == 0 && !high)
            dec_exp--;
        else
            out->d[n++] = (char)('0' + q);
        if (!compatible || dec_exp < -3 || dec_exp >= 8)
            high = low = false;
        while (!low && !high && n < FMW_DIGITS_MAX) {
            q = (int)(b / s);
            b = i64_mul(10, b % s);
            m = i64_mul(m, 10);
            if (m > 0) {
                low = b < m;
                high = i64_add(b, m) > tens;
            } else {
                low = high = true;
            }
            out->d[n++] = (char)('0' + q);
        }
        low_digit_difference = i64_sub(i64_shl(b, 1), tens);
    } else {
        /* Big integers: the same loop; "high" is B + M >= 10S here, not >. */
        struct big b = {{0}, 0}, s = {{0}, 0}, m = {{0}, 0}, ten_s = {{0}, 0}, sum = {{0}, 0};
        big_pow52(&s, 1, s5, s2);
        big_pow52(&b, fract_bits, b5, b2);
        big_pow52(&m, 1, m5 + 1, m2 + 1);
        big_pow52(&ten_s, 1, s5 + 1, s2 + 1);
        q = big_quo_rem(&b, &s);
        low = big_cmp(&b, &m) < 0;
        big_add(&sum, &b, &m);
        high = big_cmp(&ten_s, &sum) <= 0;
        if (q == 0 && !high)
            dec_exp--;
        else
            out->d[n++] = (char)('0' + q);
        if (!compatible || dec_exp < -3 || dec_exp >= 8)
            high = low = false;
        while (!low && !high && n < FMW_DIGITS_MAX) {
            q = big_quo_rem(&b, &s);
            big_mul_small(&m, 10);
            low = big_cmp(&b, &m) < 0;
            big_add(&sum, &b, &m);
            high = big_cmp(&ten_s, &sum) <= 0;
            out->d[n++] = (char)('0' + q);
        }
        if (high && low) {
            big_shl(&b, 1);
            low_digit_difference = big_cmp(&b, &ten_s);
        } else {
            low_digit_difference = 0;
        }
    }
    out->n = n;
    out->dec_exp = dec_exp + 1;
    /* The last digit is rounded by the way the loop stopped. */
    if (high) {
        if (low) {
            if (low_digit_difference == 0) {
                if ((out->d[n - 1] & 1) != 0)
                    round_up(out);
            } else if (low_digit_difference > 0) {
                round_up(out);
            }
        } else {
            round_up(out);
        }
    }
}

/* The last few answers of this thread: the same fractions (Flink's defaults, 0.1 above all)
 * come back in every review, and working one out costs big-integer arithmetic. */
#define MEMO_SLOTS 4
struct memo {
    uint64_t bits;
    bool used, compatible;
    struct java_digits digits;
};
static _Thread_local struct memo tl_memo[MEMO_SLOTS];
static _Thread_local unsigned tl_memo_next;

static void java_digits_of(double d, bool compatible, struct java_digits *out)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    for (unsigned i = 0; i < MEMO_SLOTS; i++) {
        const struct memo *m = &tl_memo[i];
        if (m->used && m->bits == bits && m->compatible == compatible) {
            *out = m->digits;
            return;
        }
    }
    java_dtoa(d, compatible, out);
    out->d[out->n] = '\0';
    struct memo *m = &tl_memo[tl_memo_next++ % MEMO_SLOTS];
    m->bits = bits;
    m->used = true;
    m->compatible = compatible;
    m->digits = *out;
}

int fmw_java_digits(double d, bool compatible, char digits[FMW_DIGITS_MAX + 1], int *exp10)
{
    struct java_digits jd;
    java_digits_of(d, compatible, &jd);
    memcpy(digits, jd.d, (size_t)jd.n + 1);
    *exp10 = jd.dec_exp - 1;
    return jd.n;
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
    /* BinaryToASCIIBuffer.getChars: plain from 10^-3 up to 10^7, else d.dddE<exp>, with at
     * least one digit after the point and every digit dtoa developed. */
    struct java_digits jd;
    java_digits_of(d, true, &jd);
    int e = jd.dec_exp, n = jd.n;
    if (e > 0 && e < 8) {
        int whole = n < e ? n : e;
        memcpy(o, jd.d, (size_t)whole);
        o += whole;
        if (whole < e) {
            for (int i = whole; i < e; i++)
                *o++ = '0';
            *o++ = '.';
            *o++ = '0';
        } else {
            *o++ = '.';
            if (whole < n) {
                memcpy(o, jd.d + whole, (size_t)(n - whole));
                o += n - whole;
            } else {
                *o++ = '0';
            }
        }
        *o = '\0';
        return;
    }
    if (e <= 0 && e > -3) {
        *o++ = '0';
        *o++ = '.';
        for (int i = e; i < 0; i++)
            *o++ = '0';
        memcpy(o, jd.d, (size_t)n);
        o[n] = '\0';
        return;
    }
    *o++ = jd.d[0];
    *o++ = '.';
    if (n > 1) {
        memcpy(o, jd.d + 1, (size_t)(n - 1));
        o += n - 1;
    } else {
        *o++ = '0';
    }
    sprintf(o, "E%d", e - 1);
}

void fmw_java_format_3f(double x, char out[FMW_MEMSIZE_STRLEN])
{
    /* String.format(Locale.ROOT, "%.3f", x) for 0 < x < 2^63: Java (FormattedFloatingDecimal)
     * rounds HALF_UP on dtoa's digits of x in its non-compatible form, where C's printf rounds
     * the binary value half-even. */
    char digits[FMW_DIGITS_MAX + 1];
    int e;
    int n = fmw_java_digits(x, false, digits, &e);
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
