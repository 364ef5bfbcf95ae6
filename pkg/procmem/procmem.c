/*
 * The process memory model both roles share, after Flink's ProcessMemoryUtils,
 * MemoryBackwardsCompatibilityUtils and Configuration's option look-up. The order of reads and
 * checks follows Flink exactly: when several things are wrong Flink reports the first one it
 * meets, and it logs each use of a deprecated key as it meets it.
 */
#include "pkg/procmem/procmem.h"

#include "pkg/memsize/memsize.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char LONG_OVERFLOW[] = "long overflow";

#define HR(name, bytes)                                                                            \
    char name[FMW_MEMSIZE_STRLEN];                                                                 \
    fmw_memsize_human((bytes), name)

void fmw_pm_logf(struct fmw_pm *pm, const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Flink's log lines, for explain: a cap reached drops the rest, it is not an error. */
    (void)fmw_buf_addf(pm->log, "%s ", level);
    (void)fmw_buf_vaddf(pm->log, fmt, ap);
    (void)fmw_buf_addc(pm->log, '\n');
    va_end(ap);
}

void fmw_pm_option_str(const struct fmw_pm_option *opt, char *out)
{
    /* ConfigOption.toString with Arrays.toString of its FallbackKeys; every fallback key of the
     * options modelled is a deprecated key. */
    struct fmw_buf b;
    fmw_buf_init(&b, FMW_PM_OPTION_STRLEN - 1);
    (void)fmw_buf_addf(&b, "Key: '%s' , default: %s (fallback keys: [", opt->key,
                       opt->default_text ? opt->default_text : "null");
    for (size_t i = 0; i < FMW_PM_DEPRECATED_MAX && opt->deprecated[i]; i++)
        (void)fmw_buf_addf(&b, "%s{key=%s, isDeprecated=true}", i ? ", " : "", opt->deprecated[i]);
    (void)fmw_buf_adds(&b, "])");
    snprintf(out, FMW_PM_OPTION_STRLEN, "%s", fmw_buf_cstr(&b));
    fmw_buf_free(&b);
}

/*
 * Configuration.getRawValueFromOption / applyWithOption: the entry under the option's key, else
 * under its first deprecated key that is set, with the WARN of Configuration.loggingFallback.
 */
static const struct fmw_conf_entry *raw_entry(struct fmw_pm *pm, const struct fmw_pm_option *opt)
{
    const struct fmw_conf_entry *e = fmw_conf_get(pm->conf, opt->key);
    if (e)
        return e;
    for (size_t i = 0; i < FMW_PM_DEPRECATED_MAX && opt->deprecated[i]; i++) {
        e = fmw_conf_get(pm->conf, opt->deprecated[i]);
        if (e) {
            fmw_pm_logf(pm, "WARN",
                        "Config uses deprecated configuration key '%s' instead of proper key '%s'",
                        opt->deprecated[i], opt->key);
            return e;
        }
    }
    return NULL;
}

bool fmw_pm_contains(struct fmw_pm *pm, const struct fmw_pm_option *opt)
{
    return raw_entry(pm, opt) != NULL;
}

const char *fmw_pm_get_text(struct fmw_pm *pm, const struct fmw_pm_option *opt)
{
    const struct fmw_conf_entry *e = raw_entry(pm, opt);
    return e ? e->text : NULL;
}

/*
 * Where the getters of pkg/flinkconf find the option's value under the option's own key: the
 * configuration itself, or, when the value came from a deprecated key, `one`, which receives that
 * value alone (Flink converts it and names the option's key in its messages). *conf is NULL when
 * no key is set; FMW_ENOMEM when `one` cannot be filled.
 */
static enum fmw_err value_under_key(struct fmw_pm *pm, const struct fmw_pm_option *opt,
                                    struct fmw_conf *one, const struct fmw_conf **conf)
{
    const struct fmw_conf_entry *e = raw_entry(pm, opt);
    *conf = NULL;
    if (!e)
        return FMW_OK;
    if (strcmp(e->key, opt->key) == 0) {
        *conf = pm->conf;
        return FMW_OK;
    }
    enum fmw_err err =
        fmw_conf_set(one, fmw_str_c(opt->key), fmw_str_c(e->text), e->type, e->number);
    if (err)
        return fmw_diag_set(pm->d, err, "out of memory");
    *conf = one;
    return FMW_OK;
}

enum fmw_err fmw_pm_get_size(struct fmw_pm *pm, const struct fmw_pm_option *opt, uint64_t *out)
{
    struct fmw_conf one;
    const struct fmw_conf *conf;
    fmw_conf_init(&one);
    enum fmw_err err = value_under_key(pm, opt, &one, &conf);
    if (!err && !conf)
        *out = opt->default_size;
    else if (!err)
        err = fmw_conf_get_memsize(conf, opt->key, opt->default_size, out, NULL, pm->d, NULL);
    fmw_conf_cleanup(&one);
    return err;
}

enum fmw_err fmw_pm_get_size_raw(struct fmw_pm *pm, const struct fmw_pm_option *opt, uint64_t *out)
{
    const struct fmw_conf_entry *e = raw_entry(pm, opt);
    if (!e) {
        *out = opt->default_size;
        return FMW_OK;
    }
    if (fmw_memsize_parse(fmw_str_c(e->text), out, NULL) != FMW_OK)
        return fmw_diag_set(pm->d, FMW_EINVAL, "Could not parse value '%s' for key '%s'.", e->text,
                            opt->key);
    return FMW_OK;
}

enum fmw_err fmw_pm_get_float(struct fmw_pm *pm, const struct fmw_pm_option *opt, float *out)
{
    struct fmw_conf one;
    const struct fmw_conf *conf;
    fmw_conf_init(&one);
    enum fmw_err err = value_under_key(pm, opt, &one, &conf);
    if (!err && !conf)
        *out = opt->default_fraction;
    else if (!err)
        err = fmw_conf_get_float(conf, opt->key, opt->default_fraction, out, NULL, pm->d);
    fmw_conf_cleanup(&one);
    return err;
}

enum fmw_err fmw_pm_get_double(struct fmw_pm *pm, const struct fmw_pm_option *opt, double dflt,
                               double *out, bool *present)
{
    struct fmw_conf one;
    const struct fmw_conf *conf;
    fmw_conf_init(&one);
    enum fmw_err err = value_under_key(pm, opt, &one, &conf);
    if (present)
        *present = conf != NULL;
    if (!err && !conf)
        *out = dflt;
    else if (!err)
        err = fmw_conf_get_double(conf, opt->key, dflt, out, NULL, pm->d);
    fmw_conf_cleanup(&one);
    return err;
}

enum fmw_err fmw_pm_get_int(struct fmw_pm *pm, const struct fmw_pm_option *opt, int32_t dflt,
                            int32_t *out, bool *present)
{
    struct fmw_conf one;
    const struct fmw_conf *conf;
    fmw_conf_init(&one);
    enum fmw_err err = value_under_key(pm, opt, &one, &conf);
    if (present)
        *present = conf != NULL;
    if (!err && !conf)
        *out = dflt;
    else if (!err)
        err = fmw_conf_get_int(conf, opt->key, dflt, out, NULL, pm->d);
    fmw_conf_cleanup(&one);
    return err;
}

/* Long.parseLong: an optional sign, then ASCII digits, within the long range (as pkg/memsize's
 * Integer.parseInt, which the int options use). */
static bool java_parse_long(const char *s, int64_t *out)
{
    bool neg = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!*s)
        return false;
    uint64_t v = 0;
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned digit = (unsigned)(*s - '0');
        if (v > (limit - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

enum fmw_err fmw_pm_get_long(struct fmw_pm *pm, const struct fmw_pm_option *opt, int64_t *out,
                             bool *present)
{
    /* ConfigurationUtils.convertToLong: a YAML Long or Integer is itself, which its text says;
     * anything else goes through Long.parseLong of its text. */
    const struct fmw_conf_entry *e = raw_entry(pm, opt);
    if (present)
        *present = e != NULL;
    if (!e) {
        *out = 0;
        return FMW_OK;
    }
    if (!java_parse_long(e->text, out))
        return fmw_diag_set(pm->d, FMW_EINVAL, "Could not parse value '%s' for key '%s'.", e->text,
                            opt->key);
    return FMW_OK;
}

static enum fmw_err overflow(struct fmw_pm *pm)
{
    return fmw_diag_set(pm->d, FMW_EOVERFLOW, "%s", LONG_OVERFLOW);
}

enum fmw_err fmw_pm_add(struct fmw_pm *pm, uint64_t a, uint64_t b, uint64_t *sum)
{
    return fmw_memsize_add(a, b, sum) ? overflow(pm) : FMW_OK;
}

enum fmw_err fmw_pm_mul(struct fmw_pm *pm, uint64_t bytes, double m, uint64_t *out)
{
    enum fmw_err err = fmw_memsize_mul(bytes, m, out);
    if (err == FMW_EOVERFLOW)
        return overflow(pm);
    if (err)
        return fmw_diag_set(pm->d, FMW_EINVAL, "multiplier must be >= 0");
    return FMW_OK;
}

enum fmw_err fmw_pm_range_fraction(struct fmw_pm *pm, uint64_t min, uint64_t max,
                                   const struct fmw_pm_option *fraction_opt,
                                   struct fmw_pm_range *range)
{
    float fraction;
    enum fmw_err err = fmw_pm_get_float(pm, fraction_opt, &fraction);
    if (err)
        return err;
    /* RangeFraction's checks: min <= max, then 0 <= fraction < 1 (on the double). */
    double f = fraction;
    range->min = min;
    range->max = max;
    range->fraction = f;
    if (min <= max && f >= 0 && f < 1)
        return FMW_OK;
    char opt_text[FMW_PM_OPTION_STRLEN];
    char fs[FMW_MEMSIZE_STRLEN];
    fmw_pm_option_str(fraction_opt, opt_text);
    fmw_java_double_str(f, fs);
    HR(min_hr, min);
    HR(max_hr, max);
    return fmw_diag_set(pm->d, FMW_ECONFIG,
                        "Inconsistently configured %s (%s) and its min (%s), max (%s) value",
                        opt_text, fs, min_hr, max_hr);
}

/* ProcessMemoryUtils.getJvmOverheadRangeFraction. */
static enum fmw_err overhead_range(struct fmw_pm *pm, const struct fmw_pm_options *o,
                                   struct fmw_pm_range *range)
{
    uint64_t min, max;
    enum fmw_err err = fmw_pm_get_size(pm, o->overhead_min, &min);
    if (!err)
        err = fmw_pm_get_size(pm, o->overhead_max, &max);
    if (!err)
        err = fmw_pm_range_fraction(pm, min, max, o->overhead_fraction, range);
    return err;
}

/* ProcessMemoryUtils.capToMinMax with its INFO lines. */
static uint64_t cap_to_min_max(struct fmw_pm *pm, const char *what, uint64_t raw,
                               const struct fmw_pm_range *range)
{
    /* Sizes are formatted only for the log line that needs them: formatting costs more than the
     * whole derivation, and a size within its range (the usual case) logs nothing. */
    if (raw > range->max) {
        HR(raw_hr, raw);
        HR(max, range->max);
        fmw_pm_logf(pm, "INFO",
                    "The derived from fraction %s (%s) is greater than its max value %s, max "
                    "value will be used instead",
                    what, raw_hr, max);
        return range->max;
    }
    if (raw < range->min) {
        HR(raw_hr, raw);
        HR(min, range->min);
        fmw_pm_logf(pm, "INFO",
                    "The derived from fraction %s (%s) is less than its min value %s, min value "
                    "will be used instead",
                    what, raw_hr, min);
        return range->min;
    }
    return raw;
}

enum fmw_err fmw_pm_derive_with_fraction(struct fmw_pm *pm, const char *what, uint64_t base,
                                         const struct fmw_pm_range *range, uint64_t *out)
{
    uint64_t raw;
    enum fmw_err err = fmw_pm_mul(pm, base, range->fraction, &raw);
    if (!err)
        *out = cap_to_min_max(pm, what, raw, range);
    return err;
}

enum fmw_err fmw_pm_derive_with_inverse_fraction(struct fmw_pm *pm, const char *what, uint64_t base,
                                                 const struct fmw_pm_range *range, uint64_t *out)
{
    /* checkArgument(fraction < 1) holds: the range was checked when it was read. */
    double f = range->fraction;
    uint64_t raw;
    enum fmw_err err = fmw_pm_mul(pm, base, f / (1 - f), &raw);
    if (!err)
        *out = cap_to_min_max(pm, what, raw, range);
    return err;
}

/* ProcessMemoryUtils.deriveJvmOverheadFromTotalFlinkMemoryAndOtherComponents with
 * sanityCheckJvmOverhead: total process memory is set, so the overhead is what is left. */
static enum fmw_err overhead_from_process(struct fmw_pm *pm, const struct fmw_pm_options *o,
                                          uint64_t total_flink, struct fmw_pm_spec *s)
{
    uint64_t process, flink_and_meta;
    enum fmw_err err = fmw_pm_get_size(pm, o->total_process, &process);
    if (!err)
        err = fmw_pm_get_size(pm, o->metaspace, &s->metaspace);
    if (!err)
        err = fmw_pm_add(pm, total_flink, s->metaspace, &flink_and_meta);
    if (err)
        return err;
    if (process < flink_and_meta) {
        HR(p, process);
        HR(f, total_flink);
        HR(m, s->metaspace);
        return fmw_diag_set(pm->d, FMW_ECONFIG,
                            "The configured Total Process Memory size (%s) is less than the sum of "
                            "the derived Total Flink Memory size (%s) and the configured or "
                            "default JVM Metaspace size  (%s).",
                            p, f, m);
    }
    s->overhead = process - flink_and_meta;
    struct fmw_pm_range rg;
    err = overhead_range(pm, o, &rg);
    if (err)
        return err;
    if (s->overhead > rg.max || s->overhead < rg.min) {
        HR(v, s->overhead);
        HR(mn, rg.min);
        HR(mx, rg.max);
        return fmw_diag_set(pm->d, FMW_ECONFIG,
                            "Derived JVM Overhead size (%s) is not in configured JVM Overhead "
                            "range [%s, %s].",
                            v, mn, mx);
    }
    if (fmw_pm_contains(pm, o->overhead_fraction)) {
        uint64_t by_fraction;
        err = fmw_pm_mul(pm, process, rg.fraction, &by_fraction);
        if (err)
            return err;
        if (by_fraction != s->overhead) {
            HR(v, s->overhead);
            HR(p, process);
            char fs[FMW_MEMSIZE_STRLEN];
            fmw_java_double_str(rg.fraction, fs);
            fmw_pm_logf(pm, "INFO",
                        "The derived JVM Overhead size (%s) does not match the configured or "
                        "default JVM Overhead fraction (%s) from the configured Total Process "
                        "Memory size (%s). The derived JVM %s size will be used.",
                        v, fs, p,
                        /* The misspelling is Flink's, fixed in 1.16. */
                        fmw_flink_version_cmp(pm->version, FMW_FLINK_LINE(1, 16)) < 0 ? "OVerhead"
                                                                                      : "Overhead");
        }
    }
    s->total_process = process;
    return FMW_OK;
}

enum fmw_err fmw_pm_jvm_from_total_flink(struct fmw_pm *pm, const struct fmw_pm_options *o,
                                         struct fmw_pm_spec *s)
{
    uint64_t flink_and_meta;
    enum fmw_err err = fmw_pm_get_size(pm, o->metaspace, &s->metaspace);
    if (!err)
        err = fmw_pm_add(pm, s->total_flink, s->metaspace, &flink_and_meta);
    if (err)
        return err;
    if (fmw_pm_contains(pm, o->total_process))
        return overhead_from_process(pm, o, s->total_flink, s);
    /* Without total process memory, sanityCheckTotalProcessMemory has nothing to compare. */
    struct fmw_pm_range rg;
    err = overhead_range(pm, o, &rg);
    if (!err)
        err = fmw_pm_derive_with_inverse_fraction(pm, "jvm overhead memory", flink_and_meta, &rg,
                                                  &s->overhead);
    if (!err)
        err = fmw_pm_add(pm, flink_and_meta, s->overhead, &s->total_process);
    return err;
}

/* ProcessMemoryUtils.deriveProcessSpecWithTotalProcessMemory. */
static enum fmw_err from_total_process(struct fmw_pm *pm, const struct fmw_pm_role *role,
                                       struct fmw_pm_spec *s)
{
    const struct fmw_pm_options *o = role->options;
    struct fmw_pm_range rg;
    uint64_t meta_and_overhead;
    enum fmw_err err = fmw_pm_get_size(pm, o->total_process, &s->total_process);
    if (!err)
        err = fmw_pm_get_size(pm, o->metaspace, &s->metaspace);
    if (!err)
        err = overhead_range(pm, o, &rg);
    if (!err)
        err = fmw_pm_derive_with_fraction(pm, "jvm overhead memory", s->total_process, &rg,
                                          &s->overhead);
    if (!err)
        err = fmw_pm_add(pm, s->metaspace, s->overhead, &meta_and_overhead);
    if (err)
        return err;
    if (meta_and_overhead > s->total_process) {
        HR(m, s->metaspace);
        HR(v, s->overhead);
        HR(p, s->total_process);
        return fmw_diag_set(pm->d, FMW_ECONFIG,
                            "Sum of configured JVM Metaspace (%s) and JVM Overhead (%s) exceed "
                            "configured Total Process Memory (%s).",
                            m, v, p);
    }
    s->total_flink = s->total_process - meta_and_overhead;
    return role->from_total_flink(pm, s->total_flink, role->flink);
}

enum fmw_err fmw_pm_resolve(struct fmw_pm *pm, const struct fmw_pm_role *role,
                            struct fmw_pm_spec *s)
{
    const struct fmw_pm_options *o = role->options;
    enum fmw_err err;
    /* allMatch(config::contains) stops at the first option that is not set. */
    bool fine_grained = true;
    for (size_t i = 0; i < o->n_fine_grained && fine_grained; i++)
        fine_grained = fmw_pm_contains(pm, o->fine_grained[i]);
    if (fine_grained) {
        err = role->from_fine_grained(pm, role->flink, &s->total_flink);
        if (!err)
            err = fmw_pm_jvm_from_total_flink(pm, o, s);
        return err;
    }
    if (fmw_pm_contains(pm, o->total_flink)) {
        err = fmw_pm_get_size(pm, o->total_flink, &s->total_flink);
        if (!err)
            err = role->from_total_flink(pm, s->total_flink, role->flink);
        if (!err)
            err = fmw_pm_jvm_from_total_flink(pm, o, s);
        return err;
    }
    if (fmw_pm_contains(pm, o->total_process))
        return from_total_process(pm, role, s);

    struct fmw_buf keys;
    fmw_buf_init(&keys, 4096);
    for (size_t i = 0; i < o->n_fine_grained; i++)
        (void)fmw_buf_addf(&keys, "%s%s", i ? " and " : "", o->fine_grained[i]->key);
    char flink_text[FMW_PM_OPTION_STRLEN], process_text[FMW_PM_OPTION_STRLEN];
    fmw_pm_option_str(o->total_flink, flink_text);
    fmw_pm_option_str(o->total_process, process_text);
    err = fmw_diag_set(pm->d, FMW_ECONFIG,
                       "Either required fine-grained memory (%s), or Total Flink Memory size (%s), "
                       "or Total Process Memory size (%s) need to be configured explicitly.",
                       fmw_buf_cstr(&keys), flink_text, process_text);
    fmw_buf_free(&keys);
    return err;
}

/* MemoryBackwardsCompatibilityUtils.getLegacyHeapMemoryIfExplicitlyConfigured: the environment
 * variable, then the heap key, then the heap-in-MB key. `*found` tells whether `value` holds one.
 */
static enum fmw_err legacy_heap_value(struct fmw_pm *pm, const struct fmw_pm_legacy *legacy,
                                      const char *env, uint64_t *value, bool *found)
{
    *found = false;
    if (env) {
        if (fmw_memsize_parse(fmw_str_c(env), value, NULL) != FMW_OK)
            return fmw_diag_set(pm->d, FMW_ECONFIG,
                                "Cannot read total process memory size from environment variable "
                                "value %s.",
                                env);
        *found = true;
        return FMW_OK;
    }
    if (fmw_pm_contains(pm, legacy->heap)) {
        enum fmw_err err = fmw_pm_get_size(pm, legacy->heap, value);
        *found = err == FMW_OK;
        return err;
    }
    if (fmw_pm_contains(pm, legacy->heap_mb)) {
        int32_t mb;
        enum fmw_err err = fmw_pm_get_int(pm, legacy->heap_mb, 0, &mb, NULL);
        if (err)
            return err;
        if (mb < 0)
            return fmw_diag_set(pm->d, FMW_ECONFIG,
                                "Configured total process memory size (%" PRId32
                                "MB) must not be less than 0.",
                                mb);
        *value = (uint64_t)mb << 20;
        *found = true;
    }
    return FMW_OK;
}

enum fmw_err fmw_pm_map_legacy_heap(struct fmw_pm *pm, const struct fmw_pm_legacy *legacy,
                                    const char *env, const struct fmw_pm_option *target,
                                    struct fmw_conf *translated)
{
    if (fmw_pm_contains(pm, target))
        return FMW_OK;
    uint64_t value;
    bool found;
    enum fmw_err err = legacy_heap_value(pm, legacy, env, &value, &found);
    if (err || !found)
        return err;
    /* Flink sets a MemorySize; its bytes read back as the same size. */
    char text[32];
    snprintf(text, sizeof text, "%" PRIu64, value);
    err = fmw_conf_copy(translated, pm->conf);
    if (!err)
        err = fmw_conf_set(translated, fmw_str_c(target->key), fmw_str_c(text), FMW_CONF_STRING, 0);
    if (err)
        return fmw_diag_set(pm->d, err, "out of memory");
    pm->conf = translated;
    HR(v, value);
    fmw_pm_logf(pm, "INFO",
                "'%s' is not specified, use the configured deprecated task manager heap value (%s) "
                "for it.",
                target->key, v);
    return FMW_OK;
}

void fmw_pm_jvm_args(uint64_t heap, uint64_t direct, bool direct_limit, uint64_t metaspace,
                     char *out, size_t size)
{
    char direct_flag[64] = "";
    if (direct_limit)
        snprintf(direct_flag, sizeof direct_flag, " -XX:MaxDirectMemorySize=%" PRIu64, direct);
    snprintf(out, size, "-Xmx%" PRIu64 " -Xms%" PRIu64 "%s -XX:MaxMetaspaceSize=%" PRIu64, heap,
             heap, direct_flag, metaspace);
}
