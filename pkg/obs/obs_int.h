/* pkg/obs private declarations shared between its files. */
#ifndef FMW_OBS_INT_H
#define FMW_OBS_INT_H

#include <stddef.h>

/* Longest text fmw_obs_fmt_double() writes, NUL included. */
#define FMW_OBS_DOUBLE_MAX 32

/*
 * Writes the shortest decimal form of `v` that reads back as the same double ("0.0001", not
 * "0.00010000000000000000479"), or "+Inf", "-Inf", "NaN". Returns the length written.
 */
size_t fmw_obs_fmt_double(char out[FMW_OBS_DOUBLE_MAX], double v);

#endif
