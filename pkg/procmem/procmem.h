/*
 * pkg/procmem: one model of process memory, two roles. What Flink's ProcessMemoryUtils does for
 * the JobManager and the TaskManager alike: options read with their deprecated keys (and the WARN
 * Flink logs for each such read), memory sizes as getMemorySizeFromConfig reads them, range
 * fractions, capToMinMax, deriveWithFraction / deriveWithInverseFraction, the JVM Metaspace and
 * Overhead derivations, the three branches of memoryProcessSpecFromConfig and their error texts,
 * the legacy heap options (MemoryBackwardsCompatibilityUtils), the JVM memory flags, and the Java
 * HashMap order the dynamic-configs line is printed in. pkg/jmmem and pkg/tmmem supply the role:
 * its options and its FlinkMemoryUtils.
 */
#ifndef FMW_PROCMEM_H
#define FMW_PROCMEM_H

#include "pkg/base/base.h"
#include "pkg/flinkconf/flinkconf.h"

/* A Flink release, e.g. {1, 17, 2}; `patch` is -1 when only the line is known. The memory model
 * depends on the line only; the patch matters for a few start-script details. */
struct fmw_flink_version {
    int major;
    int minor;
    int patch;
};

/* A line with an unknown patch, e.g. FMW_FLINK_LINE(1, 19). */
#define FMW_FLINK_LINE(major, minor) ((struct fmw_flink_version){(major), (minor), -1})

/* Parses "1.17", "1.17.2" or "2.0-preview1" (patch and suffix ignored); false for text that is
 * not a version or a line we do not model (before 1.11, after 2.x). */
bool fmw_flink_version_parse(const char *text, struct fmw_flink_version *v);
/* The oldest and newest lines modelled, and the one assumed when nothing says otherwise. */
extern const struct fmw_flink_version FMW_FLINK_OLDEST, FMW_FLINK_NEWEST, FMW_FLINK_DEFAULT;
/* The newest line checked against Flink's jars (tests/oracle): what a pod whose image names no
 * version (flink:latest, no tag, a digest alone) is assumed to run, unless configured. */
extern const struct fmw_flink_version FMW_FLINK_LATEST;
/* <0, 0, >0 like strcmp, on the line (major.minor) only. */
int fmw_flink_version_cmp(struct fmw_flink_version a, struct fmw_flink_version b);

/*
 * A ConfigOption as the memory model reads it. `deprecated` lists the option's deprecated keys in
 * the order Flink tries them (withDeprecatedKeys), NULL-terminated. `default_text` is the
 * default's Java toString ("null" when there is none): Flink prints the option in some messages
 * as ConfigOption.toString. `default_size` / `default_fraction` are the default of a memory /
 * float option.
 */
#define FMW_PM_DEPRECATED_MAX 2
struct fmw_pm_option {
    const char *key;
    const char *deprecated[FMW_PM_DEPRECATED_MAX + 1];
    const char *default_text;
    uint64_t default_size;
    float default_fraction;
};

/* ConfigOption.toString: "Key: 'k' , default: d (fallback keys: [{key=o, isDeprecated=true}])".
 * `out` has at least FMW_PM_OPTION_STRLEN bytes. */
#define FMW_PM_OPTION_STRLEN 512
void fmw_pm_option_str(const struct fmw_pm_option *opt, char *out);

/* ProcessMemoryOptions of a role: the options that together fix its Flink memory
 * ("required fine-grained"), total Flink and total process memory, and the JVM options. */
struct fmw_pm_options {
    const struct fmw_pm_option *const *fine_grained;
    size_t n_fine_grained;
    const struct fmw_pm_option *total_flink;
    const struct fmw_pm_option *total_process;
    const struct fmw_pm_option *metaspace;
    const struct fmw_pm_option *overhead_min;
    const struct fmw_pm_option *overhead_max;
    const struct fmw_pm_option *overhead_fraction;
};

/* One resolution in progress: the configuration it reads, the line, where Flink's log lines go
 * ("INFO <text>\n", "WARN <text>\n"; a full buffer drops lines, it is not an error) and where
 * Flink's error goes. */
struct fmw_pm {
    const struct fmw_conf *conf;
    struct fmw_flink_version version;
    struct fmw_buf *log;
    struct fmw_diag *d;
};

void fmw_pm_logf(struct fmw_pm *pm, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Configuration.contains: the key, else the first deprecated key present. Flink logs "Config
 * uses deprecated configuration key ..." each time a deprecated key answers, in contains() as in
 * get(), so callers make these calls exactly where and as often as Flink does.
 */
bool fmw_pm_contains(struct fmw_pm *pm, const struct fmw_pm_option *opt);

/* ProcessMemoryUtils.getMemorySizeFromConfig: the option's size, or its default when unset.
 * FMW_ECONFIG "Cannot read memory size from config option '<key>'." when it does not parse. */
FMW_NODISCARD enum fmw_err fmw_pm_get_size(struct fmw_pm *pm, const struct fmw_pm_option *opt,
                                           uint64_t *out);
/* Configuration.get of a memory option without that wrapper (ConfigurationParserUtils reads the
 * page size so): FMW_EINVAL "Could not parse value '<raw>' for key '<key>'." */
FMW_NODISCARD enum fmw_err fmw_pm_get_size_raw(struct fmw_pm *pm, const struct fmw_pm_option *opt,
                                               uint64_t *out);
/* Configuration.get of a float, double, int or long option; the default when unset (`dflt` for
 * options without one in pkg/procmem's struct), `*present` (may be NULL) whether a key was set.
 * FMW_EINVAL "Could not parse value '<raw>' for key '<key>'." — the option's own key even when the
 * value came from a deprecated one. */
FMW_NODISCARD enum fmw_err fmw_pm_get_float(struct fmw_pm *pm, const struct fmw_pm_option *opt,
                                            float *out);
FMW_NODISCARD enum fmw_err fmw_pm_get_double(struct fmw_pm *pm, const struct fmw_pm_option *opt,
                                             double dflt, double *out, bool *present);
FMW_NODISCARD enum fmw_err fmw_pm_get_int(struct fmw_pm *pm, const struct fmw_pm_option *opt,
                                          int32_t dflt, int32_t *out, bool *present);
FMW_NODISCARD enum fmw_err fmw_pm_get_long(struct fmw_pm *pm, const struct fmw_pm_option *opt,
                                           int64_t *out, bool *present);
/* The raw text of the option (its key, else a deprecated key; Flink logs that use), NULL when
 * unset: Configuration.getValue without the default. */
const char *fmw_pm_get_text(struct fmw_pm *pm, const struct fmw_pm_option *opt);

/* Math.addExact / MemorySize.multiply on sizes, with Flink's errors: FMW_EOVERFLOW "long
 * overflow", FMW_EINVAL "multiplier must be >= 0". */
FMW_NODISCARD enum fmw_err fmw_pm_add(struct fmw_pm *pm, uint64_t a, uint64_t b, uint64_t *sum);
FMW_NODISCARD enum fmw_err fmw_pm_mul(struct fmw_pm *pm, uint64_t bytes, double m, uint64_t *out);

/* RangeFraction: a min and max size and a fraction in [0, 1) (Flink keeps it as a double read
 * from a float option). */
struct fmw_pm_range {
    uint64_t min;
    uint64_t max;
    double fraction;
};

/* ProcessMemoryUtils.getRangeFraction: reads the fraction option and checks the range;
 * FMW_ECONFIG "Inconsistently configured <option> (<fraction>) and its min (..), max (..) value".
 */
FMW_NODISCARD enum fmw_err fmw_pm_range_fraction(struct fmw_pm *pm, uint64_t min, uint64_t max,
                                                 const struct fmw_pm_option *fraction,
                                                 struct fmw_pm_range *range);
/* ProcessMemoryUtils.deriveWithFraction (base × fraction) and deriveWithInverseFraction
 * (base × fraction / (1 − fraction)), capped to the range with Flink's INFO lines, which name
 * `what` ("jvm overhead memory", "network memory", "managed memory"). */
FMW_NODISCARD enum fmw_err fmw_pm_derive_with_fraction(struct fmw_pm *pm, const char *what,
                                                       uint64_t base,
                                                       const struct fmw_pm_range *range,
                                                       uint64_t *out);
FMW_NODISCARD enum fmw_err fmw_pm_derive_with_inverse_fraction(struct fmw_pm *pm, const char *what,
                                                               uint64_t base,
                                                               const struct fmw_pm_range *range,
                                                               uint64_t *out);

/* The sizes every process has: CommonProcessMemorySpec without the role's Flink memory. */
struct fmw_pm_spec {
    uint64_t total_flink;
    uint64_t metaspace;
    uint64_t overhead;
    uint64_t total_process;
};

/*
 * A role's FlinkMemoryUtils: `from_fine_grained` derives the role's Flink memory when all of its
 * required fine-grained options are set and returns its total (FlinkMemory
 * .getTotalFlinkMemorySize); `from_total_flink` derives it from a total Flink memory. `flink`
 * is the role's own struct, passed to both.
 */
struct fmw_pm_role {
    const struct fmw_pm_options *options;
    enum fmw_err (*from_fine_grained)(struct fmw_pm *pm, void *flink, uint64_t *total_flink);
    enum fmw_err (*from_total_flink)(struct fmw_pm *pm, uint64_t total_flink, void *flink);
    void *flink;
};

/*
 * ProcessMemoryUtils.memoryProcessSpecFromConfig: the role's Flink memory (through its
 * callbacks) and the JVM Metaspace and Overhead, from whichever of fine-grained options, total
 * Flink memory or total process memory is set, in that order. Errors carry Flink's text; the
 * caller adds the role's prefix.
 */
FMW_NODISCARD enum fmw_err fmw_pm_resolve(struct fmw_pm *pm, const struct fmw_pm_role *role,
                                          struct fmw_pm_spec *spec);

/* ProcessMemoryUtils.deriveJvmMetaspaceAndOverheadFromTotalFlinkMemory: metaspace, overhead and
 * total process memory of `spec` for its total_flink. */
FMW_NODISCARD enum fmw_err fmw_pm_jvm_from_total_flink(struct fmw_pm *pm,
                                                       const struct fmw_pm_options *options,
                                                       struct fmw_pm_spec *spec);

/*
 * MemoryBackwardsCompatibilityUtils.getConfWithLegacyHeapSizeMappedToNewConfigOption: when
 * `target` is not set, a legacy heap value (the environment variable's value `env`, NULL when
 * unset; then the heap key; then the heap-in-MB key) is set as `target` in `translated` (an
 * initialised, empty configuration that receives a copy of pm->conf) and pm->conf is pointed at
 * it, with Flink's INFO line. Errors are Flink's, unprefixed.
 */
struct fmw_pm_legacy {
    const char *env_name;
    const struct fmw_pm_option *heap;
    const struct fmw_pm_option *heap_mb;
};
FMW_NODISCARD enum fmw_err
fmw_pm_map_legacy_heap(struct fmw_pm *pm, const struct fmw_pm_legacy *legacy, const char *env,
                       const struct fmw_pm_option *target, struct fmw_conf *translated);

/* ProcessMemoryUtils.generateJvmParametersStr: "-Xmx<heap> -Xms<heap>[ -XX:MaxDirectMemorySize=
 * <direct>] -XX:MaxMetaspaceSize=<metaspace>" into `out` of `size` bytes. */
void fmw_pm_jvm_args(uint64_t heap, uint64_t direct, bool direct_limit, uint64_t metaspace,
                     char *out, size_t size);

/* Java's String.hashCode of UTF-8 text (over its UTF-16 code units; a byte that is not part of
 * well-formed UTF-8 counts as U+FFFD, as Java's decoder reads it). */
int32_t fmw_java_string_hash(const char *s, size_t len);

/*
 * The order a java.util.HashMap iterates `n` distinct keys put in this order: by bucket in the
 * final table, then by insertion within a bucket. `capacity` is the constructor's initial
 * capacity, 0 for new HashMap<>(). The table grows as Java's does, also when a bucket reaches the
 * treeify threshold in a table under 64. `order` receives the key indices. Returns false (the
 * order then is bucket order regardless) when a bucket would be made a tree: Java then moves the
 * tree's root first, which is not modelled (it takes nine keys of one bucket in a table of 64).
 */
bool fmw_java_hashmap_order(const char *const *keys, size_t n, size_t capacity, size_t *order);

#endif
