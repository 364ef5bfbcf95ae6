/*
 * pkg/memsize: Flink's MemorySize (parse, both text forms, exact arithmetic), the few Java
 * number conversions Flink's memory code depends on (Double.toString, Float.parseFloat, the
 * "%.3f" of toHumanReadableString), and Kubernetes resource quantities.
 *
 * Sizes are bytes in a uint64_t that never exceeds FMW_MEMSIZE_MAX (Java's Long.MAX_VALUE).
 */
#ifndef FMW_MEMSIZE_H
#define FMW_MEMSIZE_H

#include "pkg/base/base.h"

#define FMW_MEMSIZE_MAX ((uint64_t)INT64_MAX)
#define FMW_KIB         ((uint64_t)1 << 10)
#define FMW_MIB         ((uint64_t)1 << 20)
#define FMW_GIB         ((uint64_t)1 << 30)
#define FMW_TIB         ((uint64_t)1 << 40)

/* Large enough for every formatted size, double or quantity this package writes. */
#define FMW_MEMSIZE_STRLEN 64

/*
 * MemorySize.parseBytes: `text` as Flink reads it (trimmed like Java, digits, then a unit).
 * Fails with FMW_EINVAL and Flink's exact message in `d`.
 */
FMW_NODISCARD enum fmw_err fmw_memsize_parse(struct fmw_str text, uint64_t *bytes,
                                             struct fmw_diag *d);

/* MemorySize.toHumanReadableString: "1.563gb (1677721600 bytes)", "1024 bytes". */
void fmw_memsize_human(uint64_t bytes, char out[FMW_MEMSIZE_STRLEN]);

/* MemorySize.toString: "1600 mb", "1025 bytes" (re-parseable by fmw_memsize_parse). */
void fmw_memsize_flink(uint64_t bytes, char out[FMW_MEMSIZE_STRLEN]);

/* Math.addExact on sizes: FMW_EOVERFLOW ("long overflow") past FMW_MEMSIZE_MAX. */
FMW_NODISCARD enum fmw_err fmw_memsize_add(uint64_t a, uint64_t b, uint64_t *sum);

/*
 * MemorySize.multiply(double): bytes x BigDecimal.valueOf(m), truncated toward zero, computed
 * exactly on the decimal digits of Double.toString(m) as Flink does. FMW_EINVAL when m < 0 or
 * NaN ("multiplier must be >= 0"), FMW_EOVERFLOW when the product exceeds FMW_MEMSIZE_MAX.
 */
FMW_NODISCARD enum fmw_err fmw_memsize_mul(uint64_t bytes, double m, uint64_t *product);

/* Java Double.toString(d) as JDK 8 to 18 write it (FloatingDecimal): "0.10000000149011612", "1.0",
 * "1.0E-5", "NaN", "-Infinity", "9.999999999999999E22" (1e23). */
void fmw_java_double_str(double d, char out[FMW_MEMSIZE_STRLEN]);

/*
 * Java Float.parseFloat: accepts what Java accepts (surrounding whitespace, sign, decimal and
 * hexadecimal floating literals, exponents, an f/F/d/D suffix, NaN, Infinity), correctly rounded
 * to float. Returns false when Java would throw NumberFormatException.
 */
bool fmw_java_parse_float(struct fmw_str text, float *out);
/* Java Double.parseDouble: the same grammar, rounded to double. */
bool fmw_java_parse_double(struct fmw_str text, double *out);

/* Java Integer.parseInt (optional sign, ASCII digits, int range). */
bool fmw_java_parse_int(struct fmw_str text, int32_t *out);

/*
 * A Kubernetes resource quantity as bytes ("1600Mi", "2G", "1.5Gi", "129e6", "0.5" → 1): every
 * binary and decimal suffix and decimal exponents; fractions of a byte round up as Kubernetes
 * does. Negative values and values past FMW_MEMSIZE_MAX fail with FMW_EINVAL and a message.
 */
FMW_NODISCARD enum fmw_err fmw_quantity_parse(struct fmw_str text, uint64_t *bytes,
                                              struct fmw_diag *d);

/* The quantity for a memory size: "<n>Mi" when it is a whole number of MiB, else "<bytes>". */
void fmw_quantity_format(uint64_t bytes, char out[FMW_MEMSIZE_STRLEN]);

#endif
