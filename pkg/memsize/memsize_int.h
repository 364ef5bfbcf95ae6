/* Private declarations shared by the files of pkg/memsize. */
#ifndef FMW_MEMSIZE_INT_H
#define FMW_MEMSIZE_INT_H

#include "pkg/memsize/memsize.h"

/* Java's FloatingDecimal develops at most 19 digits (its buffer holds 20). */
#define FMW_DIGITS_MAX 20

/* 128-bit integers (a GCC/Clang extension) keep exact products of 64-bit sizes and decimals. */
__extension__ typedef unsigned __int128 fmw_u128;

/* Java's decimal digits of d > 0 (finite), as FloatingDecimal develops them in JDK 8 to 18:
 * d ≈ digits[0].digits[1..] × 10^exp10. `compatible`: Double.toString's (and
 * BigDecimal.valueOf's) form; false: Formatter's ("%f"). Returns the digit count. */
int fmw_java_digits(double d, bool compatible, char digits[FMW_DIGITS_MAX + 1], int *exp10);

/* Java String.format(Locale.ROOT, "%.3f", x) for 0 < x < 2^63. */
void fmw_java_format_3f(double x, char out[FMW_MEMSIZE_STRLEN]);

#endif
