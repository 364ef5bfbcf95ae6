/* Private declarations shared by the files of pkg/memsize. */
#ifndef FMW_MEMSIZE_INT_H
#define FMW_MEMSIZE_INT_H

#include "pkg/memsize/memsize.h"

#define FMW_DIGITS_MAX 17

/* 128-bit integers (a GCC/Clang extension) keep exact products of 64-bit sizes and decimals. */
__extension__ typedef unsigned __int128 fmw_u128;

/* Shortest round-trip significant digits of d > 0 (finite): d = 0.<digits>... more precisely
 * d ≈ digits[0].digits[1..] × 10^exp10. Returns the digit count (1..17). */
int fmw_shortest_digits(double d, char digits[FMW_DIGITS_MAX + 1], int *exp10);

/* Java String.format(Locale.ROOT, "%.3f", x) for 0 < x < 2^63. */
void fmw_java_format_3f(double x, char out[FMW_MEMSIZE_STRLEN]);

#endif
