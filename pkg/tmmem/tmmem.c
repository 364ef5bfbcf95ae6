/*
 * The TaskManager memory model, after Flink's TaskExecutorFlinkMemoryUtils,
 * TaskExecutorProcessUtils, ConfigurationParserUtils.getPageSize and BashJavaUtils
 * .getTmResourceParams. The order of reads and checks is Flink's: when several things are wrong
 * Flink reports the first one it meets, and it logs a deprecated key each time it reads one.
 */
#include "pkg/tmmem/tmmem_int.h"

#include "pkg/memsize/memsize.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char PREFIX_CONFIG[] = "TaskManager memory configuration failed: ";
static const char PREFIX_LEGACY[] =
    "TaskManager failed to map legacy JVM heap option to the new one: ";

/* MemoryManager.MIN_PAGE_SIZE. */
#define MIN_PAGE_SIZE 4096

/* TaskManagerOptions. Defaults and deprecated keys are the same in every line but the network
 * maximum's default: 1g up to 1.16, MemorySize.MAX_VALUE from 1.17. */
static const struct fmw_pm_option OPT_PROCESS = {FMW_TM_PROCESS, {NULL}, "null", 0, 0};
static const struct fmw_pm_option OPT_FLINK = {FMW_TM_FLINK, {NULL}, "null", 0, 0};
static const struct fmw_pm_option OPT_FRAMEWORK_HEAP = {
    FMW_TM_FRAMEWORK_HEAP, {NULL}, "128 mb", 128 * FMW_MIB, 0};
static const struct fmw_pm_option OPT_FRAMEWORK_OFF_HEAP = {
    FMW_TM_FRAMEWORK_OFF_HEAP, {NULL}, "128 mb", 128 * FMW_MIB, 0};
static const struct fmw_pm_option OPT_TASK_HEAP = {FMW_TM_TASK_HEAP, {NULL}, "null", 0, 0};
static const struct fmw_pm_option OPT_TASK_OFF_HEAP = {
    FMW_TM_TASK_OFF_HEAP, {NULL}, "0 bytes", 0, 0};
static const struct fmw_pm_option OPT_MANAGED = {
    FMW_TM_MANAGED, {FMW_TM_LEGACY_MANAGED, NULL}, "null", 0, 0};
static const struct fmw_pm_option OPT_MANAGED_FRACTION = {
    FMW_TM_MANAGED_FRACTION, {NULL}, "0.4", 0, 0.4f};
static const struct fmw_pm_option OPT_NETWORK_MIN = {
    FMW_TM_NETWORK_MIN, {FMW_TM_LEGACY_NETWORK_MIN, NULL}, "64 mb", 64 * FMW_MIB, 0};
static const struct fmw_pm_option OPT_NETWORK_MAX_1G = {
    FMW_TM_NETWORK_MAX, {FMW_TM_LEGACY_NETWORK_MAX, NULL}, "1 gb", FMW_GIB, 0};
static const struct fmw_pm_option OPT_NETWORK_MAX_UNBOUNDED = {FMW_TM_NETWORK_MAX,
                                                               {FMW_TM_LEGACY_NETWORK_MAX, NULL},
                                                               "9223372036854775807 bytes",
                                                               FMW_MEMSIZE_MAX,
                                                               0};
static const struct fmw_pm_option OPT_NETWORK_FRACTION = {
    FMW_TM_NETWORK_FRACTION, {FMW_TM_LEGACY_NETWORK_FRACTION, NULL}, "0.1", 0, 0.1f};
static const struct fmw_pm_option OPT_METASPACE = {
    FMW_TM_METASPACE, {NULL}, "256 mb", 256 * FMW_MIB, 0};
static const struct fmw_pm_option OPT_OVERHEAD_MIN = {
    FMW_TM_OVERHEAD_MIN, {NULL}, "192 mb", 192 * FMW_MIB, 0};
static const struct fmw_pm_option OPT_OVERHEAD_MAX = {
    FMW_TM_OVERHEAD_MAX, {NULL}, "1 gb", FMW_GIB, 0};
static const struct fmw_pm_option OPT_OVERHEAD_FRACTION = {
    FMW_TM_OVERHEAD_FRACTION, {NULL}, "0.1", 0, 0.1f};
static const struct fmw_pm_option OPT_SEGMENT_SIZE = {
    FMW_TM_SEGMENT_SIZE, {NULL}, "32 kb", 32 * FMW_KIB, 0};
static const struct fmw_pm_option OPT_NETWORK_BUFFERS = {
    FMW_TM_LEGACY_NETWORK_BUFFERS, {NULL}, "2048", 0, 0};
static const struct fmw_pm_option OPT_CPU_CORES = {FMW_TM_CPU_CORES, {NULL}, "null", 0, 0};
static const struct fmw_pm_option OPT_SLOTS = {FMW_TM_SLOTS, {NULL}, "1", 0, 0};
static const struct fmw_pm_option OPT_LEGACY_HEAP = {FMW_TM_LEGACY_HEAP, {NULL}, "null", 0, 0};
static const struct fmw_pm_option OPT_LEGACY_HEAP_MB = {
    FMW_TM_LEGACY_HEAP_MB, {NULL}, "null", 0, 0};

/* TaskExecutorProcessUtils.TM_PROCESS_MEMORY_OPTIONS and TM_LEGACY_HEAP_OPTIONS. */
static const struct fmw_pm_option *const FINE_GRAINED[] = {&OPT_TASK_HEAP, &OPT_MANAGED};
static const struct fmw_pm_options OPTIONS = {.fine_grained = FINE_GRAINED,
                                              .n_fine_grained = 2,
                                              .total_flink = &OPT_FLINK,
                                              .total_process = &OPT_PROCESS,
                                              .metaspace = &OPT_METASPACE,
                                              .overhead_min = &OPT_OVERHEAD_MIN,
                                              .overhead_max = &OPT_OVERHEAD_MAX,
                                              .overhead_fraction = &OPT_OVERHEAD_FRACTION};
static const struct fmw_pm_legacy LEGACY = {FMW_TM_LEGACY_ENV, &OPT_LEGACY_HEAP,
                                            &OPT_LEGACY_HEAP_MB};

#define HR(name, bytes)                                                                            \
    char name[FMW_MEMSIZE_STRLEN];                                                                 \
    fmw_memsize_human((bytes), name)

/* The TaskManager's part of one resolution: the spec being filled and what the line reads. */
struct tm {
    struct fmw_tm_spec *s;
    const struct fmw_pm_option *network_max;
    bool legacy_network; /* 1.x reads taskmanager.network.numberOfBuffers */
};

void fmw_tm_result_init(struct fmw_tm_result *r)
{
    memset(&r->spec, 0, sizeof r->spec);
    r->jvm_args[0] = '\0';
    fmw_buf_init(&r->dynamic_configs, FMW_TM_DYNAMIC_MAX);
    r->resources = NULL;
    r->n_resources = 0;
    fmw_buf_init(&r->log, 64 * 1024);
    r->exception = NULL;
}

static void free_resources(struct fmw_tm_result *r)
{
    for (size_t i = 0; i < r->n_resources; i++)
        free(r->resources[i].name);
    free(r->resources);
    r->resources = NULL;
    r->n_resources = 0;
}

void fmw_tm_result_cleanup(struct fmw_tm_result *r)
{
    free_resources(r);
    fmw_buf_free(&r->dynamic_configs);
    fmw_buf_free(&r->log);
}

/* A sum of sizes with Math.addExact, in Flink's order: "long overflow" past Long.MAX_VALUE. */
static enum fmw_err sum(struct fmw_pm *pm, const uint64_t *parts, size_t n, uint64_t *total)
{
    uint64_t t = parts[0];
    for (size_t i = 1; i < n; i++) {
        enum fmw_err err = fmw_pm_add(pm, t, parts[i], &t);
        if (err)
            return err;
    }
    *total = t;
    return FMW_OK;
}

/* ConfigurationParserUtils.getPageSize with checkConfigParameter's message. */
static enum fmw_err page_size(struct fmw_pm *pm, int32_t *out)
{
    uint64_t bytes;
    enum fmw_err err = fmw_pm_get_size_raw(pm, &OPT_SEGMENT_SIZE, &bytes);
    if (err)
        return err;
    /* MathUtils.checkedDownCast. */
    if (bytes > INT32_MAX)
        return fmw_diag_set(pm->d, FMW_EINVAL, "Cannot downcast long value %" PRIu64 " to integer.",
                            bytes);
    int32_t size = (int32_t)bytes;
    if (size < MIN_PAGE_SIZE)
        return fmw_diag_set(pm->d, FMW_ECONFIG,
                            "Invalid configuration value for " FMW_TM_SEGMENT_SIZE " : %" PRId32
                            " - Minimum memory segment size is %d",
                            size, MIN_PAGE_SIZE);
    if ((size & (size - 1)) != 0)
        return fmw_diag_set(pm->d, FMW_ECONFIG,
                            "Invalid configuration value for " FMW_TM_SEGMENT_SIZE " : %" PRId32
                            " - Memory segment size must be a power of 2.",
                            size);
    *out = size;
    return FMW_OK;
}

/* TaskExecutorFlinkMemoryUtils.isUsingLegacyNetworkConfigs: the number of buffers is used only
 * when it is set and none of the network range options is (1.x; 2.x has no such option). */
static bool using_legacy_network(struct fmw_pm *pm, const struct tm *tm)
{
    if (!tm->legacy_network)
        return false;
    bool any_network = fmw_pm_contains(pm, &OPT_NETWORK_MIN) ||
                       fmw_pm_contains(pm, tm->network_max) ||
                       fmw_pm_contains(pm, &OPT_NETWORK_FRACTION);
    bool legacy = fmw_pm_contains(pm, &OPT_NETWORK_BUFFERS);
    return !any_network && legacy;
}

/* TaskExecutorFlinkMemoryUtils.getNetworkMemorySizeWithLegacyConfig: buffers × page size. */
static enum fmw_err legacy_network_size(struct fmw_pm *pm, const struct tm *tm, uint64_t *out)
{
    (void)using_legacy_network(pm, tm); /* its checkArgument reads the options again (and logs) */
    int32_t buffers = 0, page = 0;
    enum fmw_err err = fmw_pm_get_int(pm, &OPT_NETWORK_BUFFERS, 2048, &buffers, NULL);
    if (!err)
        err = page_size(pm, &page);
    if (err)
        return err;
    /* A long product of two ints cannot overflow; a negative one is not a MemorySize. */
    int64_t bytes = (int64_t)buffers * page;
    if (bytes < 0)
        return fmw_diag_set(pm->d, FMW_EINVAL, "bytes must be >= 0");
    *out = (uint64_t)bytes;
    return FMW_OK;
}

/* TaskExecutorFlinkMemoryUtils.getNetworkMemoryRangeFraction. */
static enum fmw_err network_range(struct fmw_pm *pm, const struct tm *tm, struct fmw_pm_range *rg)
{
    uint64_t min, max;
    enum fmw_err err = fmw_pm_get_size(pm, &OPT_NETWORK_MIN, &min);
    if (!err)
        err = fmw_pm_get_size(pm, tm->network_max, &max);
    if (!err)
        err = fmw_pm_range_fraction(pm, min, max, &OPT_NETWORK_FRACTION, rg);
    return err;
}

/* TaskExecutorFlinkMemoryUtils.sanityCheckNetworkMemory. */
static enum fmw_err check_network(struct fmw_pm *pm, const struct tm *tm, uint64_t network,
                                  uint64_t total_flink)
{
    enum fmw_err err;
    if (using_legacy_network(pm, tm)) {
        uint64_t configured = 0;
        err = legacy_network_size(pm, tm, &configured);
        if (err)
            return err;
        if (configured != network) {
            HR(derived_hr, network);
            HR(configured_hr, configured);
            return fmw_diag_set(pm->d, FMW_ECONFIG,
                                "Derived Network Memory size (%s) does not match configured "
                                "Network Memory size (%s).",
                                derived_hr, configured_hr);
        }
        return FMW_OK;
    }
    struct fmw_pm_range rg;
    err = network_range(pm, tm, &rg);
    if (err)
        return err;
    if (network > rg.max || network < rg.min) {
        HR(derived_hr, network);
        HR(min_hr, rg.min);
        HR(max_hr, rg.max);
        return fmw_diag_set(pm->d, FMW_ECONFIG,
                            "Derived Network Memory size (%s) is not in configured Network Memory "
                            "range [%s, %s].",
                            derived_hr, min_hr, max_hr);
    }
    if (fmw_pm_contains(pm, &OPT_NETWORK_FRACTION)) {
        uint64_t by_fraction;
        err = fmw_pm_mul(pm, total_flink, rg.fraction, &by_fraction);
        if (err)
            return err;
        if (by_fraction != network) {
            HR(derived_hr, network);
            HR(total_hr, total_flink);
            char fs[FMW_MEMSIZE_STRLEN];
            fmw_java_double_str(rg.fraction, fs);
            fmw_pm_logf(pm, "INFO",
                        "The derived Network Memory size (%s) does not match the configured "
                        "Network Memory fraction (%s) from the configured Total Flink Memory size "
                        "(%s). The derived Network Memory size will be used.",
                        derived_hr, fs, total_hr);
        }
    }
    return FMW_OK;
}

/* TaskExecutorFlinkMemoryUtils.sanityCheckNetworkMemoryWithExplicitlySetTotalFlinkAndHeapMemory:
 * an IllegalConfigurationException of the check is replaced by this one (its message alone is
 * what getMessage() gives); other exceptions pass. */
static enum fmw_err check_network_explicit(struct fmw_pm *pm, const struct tm *tm, uint64_t network,
                                           uint64_t total_flink)
{
    enum fmw_err err = check_network(pm, tm, network, total_flink);
    if (err != FMW_ECONFIG)
        return err;
    return fmw_diag_set(
        pm->d, FMW_ECONFIG,
        "If Total Flink, Task Heap and (or) Managed Memory sizes are explicitly configured then "
        "the "
        "Network Memory size is the rest of the Total Flink memory after subtracting all other "
        "configured types of memory, but the derived Network Memory is inconsistent with its "
        "configuration.");
}

static enum fmw_err exceeds_total_excluding_network(struct fmw_pm *pm, const struct fmw_tm_spec *s,
                                                    uint64_t total_flink)
{
    HR(fh, s->framework_heap);
    HR(fo, s->framework_off_heap);
    HR(th, s->task_heap);
    HR(to, s->task_off_heap);
    HR(m, s->managed);
    HR(t, total_flink);
    return fmw_diag_set(pm->d, FMW_ECONFIG,
                        "Sum of configured Framework Heap Memory (%s), Framework Off-Heap Memory "
                        "(%s), Task Heap Memory (%s), Task Off-Heap Memory (%s) and Managed Memory "
                        "(%s) exceed configured Total Flink Memory (%s).",
                        fh, fo, th, to, m, t);
}

/* TaskExecutorFlinkMemory.getTotalFlinkMemorySize: the six components, added in Flink's order. */
static enum fmw_err flink_total(struct fmw_pm *pm, const struct fmw_tm_spec *s, uint64_t *total)
{
    const uint64_t parts[] = {s->framework_heap, s->framework_off_heap,
                              s->task_heap,      s->task_off_heap,
                              s->network,        s->managed};
    return sum(pm, parts, 6, total);
}

/* TaskExecutorFlinkMemoryUtils.sanityCheckTotalFlinkMemory. */
static enum fmw_err check_total_flink(struct fmw_pm *pm, const struct fmw_tm_spec *s)
{
    if (!fmw_pm_contains(pm, &OPT_FLINK))
        return FMW_OK;
    uint64_t configured = 0, derived = 0;
    enum fmw_err err = fmw_pm_get_size(pm, &OPT_FLINK, &configured);
    if (!err)
        err = flink_total(pm, s, &derived);
    if (err || configured == derived)
        return err;
    HR(d, derived);
    HR(c, configured);
    HR(fh, s->framework_heap);
    HR(fo, s->framework_off_heap);
    HR(th, s->task_heap);
    HR(to, s->task_off_heap);
    HR(n, s->network);
    HR(m, s->managed);
    return fmw_diag_set(pm->d, FMW_ECONFIG,
                        "Configured and Derived Flink internal memory sizes (total %s) do not add "
                        "up to the configured Total Flink Memory size (%s). Configured and Derived "
                        "Flink internal memory sizes are: Framework Heap Memory (%s), Framework "
                        "Off-Heap Memory (%s), Task Heap Memory (%s), Task Off-Heap Memory (%s), "
                        "Network Memory (%s), Managed Memory (%s).",
                        d, c, fh, fo, th, to, n, m);
}

/* getTaskHeapMemorySize / getManagedMemorySize / getTotalFlinkMemorySize: checkArgument(contains)
 * reads the option once more (and logs a deprecated key once more) before the value. */
static enum fmw_err get_checked(struct fmw_pm *pm, const struct fmw_pm_option *opt, uint64_t *out)
{
    (void)fmw_pm_contains(pm, opt);
    return fmw_pm_get_size(pm, opt, out);
}

/* TaskExecutorFlinkMemoryUtils.deriveManagedMemoryAbsoluteOrWithFraction. */
static enum fmw_err managed_of(struct fmw_pm *pm, uint64_t base, uint64_t *out)
{
    if (fmw_pm_contains(pm, &OPT_MANAGED))
        return get_checked(pm, &OPT_MANAGED, out);
    struct fmw_pm_range rg;
    enum fmw_err err = fmw_pm_range_fraction(pm, 0, FMW_MEMSIZE_MAX, &OPT_MANAGED_FRACTION, &rg);
    if (!err)
        err = fmw_pm_derive_with_fraction(pm, "managed memory", base, &rg, out);
    return err;
}

/* TaskExecutorFlinkMemoryUtils.deriveFromRequiredFineGrainedOptions: task heap and managed memory
 * are set; network memory is what total Flink memory leaves, or derived from its own options. */
static enum fmw_err from_fine_grained(struct fmw_pm *pm, void *role, uint64_t *total)
{
    struct tm *tm = role;
    struct fmw_tm_spec *s = tm->s;
    enum fmw_err err = get_checked(pm, &OPT_TASK_HEAP, &s->task_heap);
    if (!err)
        err = get_checked(pm, &OPT_MANAGED, &s->managed);
    if (!err)
        err = fmw_pm_get_size(pm, &OPT_FRAMEWORK_HEAP, &s->framework_heap);
    if (!err)
        err = fmw_pm_get_size(pm, &OPT_FRAMEWORK_OFF_HEAP, &s->framework_off_heap);
    if (!err)
        err = fmw_pm_get_size(pm, &OPT_TASK_OFF_HEAP, &s->task_off_heap);
    uint64_t excluding_network = 0;
    if (!err) {
        const uint64_t parts[] = {s->framework_heap, s->framework_off_heap, s->task_heap,
                                  s->task_off_heap, s->managed};
        err = sum(pm, parts, 5, &excluding_network);
    }
    if (err)
        return err;
    if (fmw_pm_contains(pm, &OPT_FLINK)) {
        uint64_t total_flink;
        err = get_checked(pm, &OPT_FLINK, &total_flink);
        if (err)
            return err;
        if (excluding_network > total_flink)
            return exceeds_total_excluding_network(pm, s, total_flink);
        s->network = total_flink - excluding_network;
        err = check_network_explicit(pm, tm, s->network, total_flink);
    } else if (using_legacy_network(pm, tm)) {
        err = legacy_network_size(pm, tm, &s->network);
    } else {
        struct fmw_pm_range rg;
        err = network_range(pm, tm, &rg);
        if (!err)
            err = fmw_pm_derive_with_inverse_fraction(pm, "network memory", excluding_network, &rg,
                                                      &s->network);
    }
    if (!err)
        err = check_total_flink(pm, s);
    if (!err)
        err = flink_total(pm, s, total);
    return err;
}

/* TaskExecutorFlinkMemoryUtils.deriveFromTotalFlinkMemory. */
static enum fmw_err from_total_flink(struct fmw_pm *pm, uint64_t total_flink, void *role)
{
    struct tm *tm = role;
    struct fmw_tm_spec *s = tm->s;
    enum fmw_err err = fmw_pm_get_size(pm, &OPT_FRAMEWORK_HEAP, &s->framework_heap);
    if (!err)
        err = fmw_pm_get_size(pm, &OPT_FRAMEWORK_OFF_HEAP, &s->framework_off_heap);
    if (!err)
        err = fmw_pm_get_size(pm, &OPT_TASK_OFF_HEAP, &s->task_off_heap);
    if (err)
        return err;
    if (fmw_pm_contains(pm, &OPT_TASK_HEAP)) {
        /* Task heap set: managed memory first, network memory is what is left. */
        uint64_t excluding_network;
        err = get_checked(pm, &OPT_TASK_HEAP, &s->task_heap);
        if (!err)
            err = managed_of(pm, total_flink, &s->managed);
        if (!err) {
            const uint64_t parts[] = {s->framework_heap, s->framework_off_heap, s->task_heap,
                                      s->task_off_heap, s->managed};
            err = sum(pm, parts, 5, &excluding_network);
        }
        if (err)
            return err;
        if (excluding_network > total_flink)
            return exceeds_total_excluding_network(pm, s, total_flink);
        s->network = total_flink - excluding_network;
        err = check_network_explicit(pm, tm, s->network, total_flink);
    } else {
        /* Managed and network memory derived, task heap is what is left. */
        uint64_t excluding_task_heap;
        err = managed_of(pm, total_flink, &s->managed);
        if (!err && using_legacy_network(pm, tm)) {
            err = legacy_network_size(pm, tm, &s->network);
        } else if (!err) {
            struct fmw_pm_range rg;
            err = network_range(pm, tm, &rg);
            if (!err)
                err = fmw_pm_derive_with_fraction(pm, "network memory", total_flink, &rg,
                                                  &s->network);
        }
        if (!err) {
            const uint64_t parts[] = {s->framework_heap, s->framework_off_heap, s->task_off_heap,
                                      s->managed, s->network};
            err = sum(pm, parts, 5, &excluding_task_heap);
        }
        if (err)
            return err;
        if (excluding_task_heap > total_flink) {
            HR(fh, s->framework_heap);
            HR(fo, s->framework_off_heap);
            HR(to, s->task_off_heap);
            HR(m, s->managed);
            HR(n, s->network);
            HR(t, total_flink);
            return fmw_diag_set(pm->d, FMW_ECONFIG,
                                "Sum of configured Framework Heap Memory (%s), Framework Off-Heap "
                                "Memory (%s), Task Off-Heap Memory (%s), Managed Memory (%s) and "
                                "Network Memory (%s) exceed configured Total Flink Memory (%s).",
                                fh, fo, to, m, n, t);
        }
        s->task_heap = total_flink - excluding_task_heap;
    }
    if (!err)
        err = check_total_flink(pm, s);
    return err;
}

/*
 * BigDecimal.valueOf(d) for finite d >= 0, cut to 8 decimal places (RoundingMode.DOWN) and
 * turned back into a double: what Resource (1.14+) keeps of a CPU value. BigDecimal.valueOf
 * takes the digits of Double.toString; doubleValue rounds the decimal correctly, as strtod does.
 */
static double resource_value_8(double d)
{
    char text[FMW_MEMSIZE_STRLEN];
    fmw_java_double_str(d, text);
    /* text is "123.456" or "1.2345E-7" / "1.0E10". Build digits and a decimal exponent. */
    char digits[40];
    size_t n = 0;
    int point = -1;
    int exp10 = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '.')
            point = (int)n;
        else if (*p == 'E') {
            exp10 = atoi(p + 1);
            break;
        } else if (n + 1 < sizeof digits)
            digits[n++] = *p;
    }
    if (point < 0)
        point = (int)n;
    /* Value = 0.digits × 10^(point + exp10); keep the digits above 10^-8. */
    long keep = (long)point + exp10 + 8;
    if (keep <= 0)
        return 0.0;
    if ((size_t)keep < n)
        n = (size_t)keep;
    digits[n] = '\0';
    char buf[96];
    snprintf(buf, sizeof buf, "0.%se%d", digits, point + exp10);
    return strtod(buf, NULL);
}

/* TaskExecutorProcessUtils.getCpuCoresWithFallback(config, -1.0), then new CPUResource.
 * `exception` receives the class of the one error that is not its code's usual class. */
static enum fmw_err cpu_cores(struct fmw_pm *pm, struct fmw_tm_spec *s, const char **exception)
{
    double cpu;
    bool set;
    enum fmw_err err = fmw_pm_get_double(pm, &OPT_CPU_CORES, 0, &cpu, &set);
    if (!err && !set) {
        int32_t slots;
        err = fmw_pm_get_int(pm, &OPT_SLOTS, 1, &slots, NULL);
        cpu = slots;
    }
    if (err)
        return err;
    if (cpu <= 0)
        return fmw_diag_set(pm->d, FMW_ECONFIG,
                            "TaskExecutors need to be started with a positive number of CPU cores. "
                            "Please configure " FMW_TM_CPU_CORES " accordingly.");
    /* BigDecimal.valueOf(NaN or Infinity) is new BigDecimal("NaN" / "Infinity"): its first
     * character is refused (JDK 11 and 17; JDK 21+ says "Infinite or NaN"). */
    if (!isfinite(cpu)) {
        *exception = "NumberFormatException";
        return fmw_diag_set(pm->d, FMW_EINVAL,
                            "Character %c is neither a decimal digit number, decimal point, nor "
                            "\"e\" notation exponential mark.",
                            isnan(cpu) ? 'N' : 'I');
    }
    s->cpu_cores = fmw_flink_version_cmp(pm->version, FMW_FLINK_LINE(1, 14)) >= 0
                       ? resource_value_8(cpu)
                       : cpu;
    fmw_java_double_str(s->cpu_cores, s->cpu_cores_text);
    return FMW_OK;
}

/* TaskExecutorProcessUtils.createMemoryProcessSpec after the memory: the CPU cores, then (1.13+)
 * the slots and the external resources. */
static enum fmw_err process_resources(struct fmw_pm *pm, const struct fmw_tm_input *in,
                                      struct fmw_tm_result *r)
{
    enum fmw_err err = cpu_cores(pm, &r->spec, &r->exception);
    if (err || fmw_flink_version_cmp(in->version, FMW_FLINK_LINE(1, 13)) < 0)
        return err;
    err = fmw_pm_get_int(pm, &OPT_SLOTS, 1, &r->spec.slots, NULL);
    if (err)
        return err;
    bool yaml_lists =
        in->version.major >= 2 ||
        (fmw_flink_version_cmp(in->version, FMW_FLINK_LINE(1, 19)) >= 0 && in->standard_yaml);
    return fmw_tm_external_resources(pm, yaml_lists, r);
}

/* TaskExecutorProcessUtils.generateDynamicConfigsStr and ConfigurationUtils
 * .assembleDynamicConfigsStr (1.11 has its own, which ends every pair with a space). */
static enum fmw_err dynamic_configs(const struct fmw_tm_input *in, struct fmw_tm_result *r)
{
    const struct fmw_tm_spec *s = &r->spec;
    bool v12 = fmw_flink_version_cmp(in->version, FMW_FLINK_LINE(1, 12)) >= 0;
    bool v13 = fmw_flink_version_cmp(in->version, FMW_FLINK_LINE(1, 13)) >= 0;
    bool v15 = fmw_flink_version_cmp(in->version, FMW_FLINK_LINE(1, 15)) >= 0;
    size_t n = 8 + (v12 ? 3 : 0) + (v13 ? 2 + r->n_resources : 0);
    const char **keys = fmw_calloc(n, sizeof *keys);
    char **values = fmw_calloc(n, sizeof *values);
    size_t *order = fmw_calloc(n, sizeof *order);
    struct fmw_buf names;
    fmw_buf_init(&names, FMW_TM_DYNAMIC_MAX);
    enum fmw_err err = keys && values && order ? FMW_OK : FMW_ENOMEM;
    size_t k = 0;
#define PUT(key, ...)                                                                              \
    do {                                                                                           \
        if (!err) {                                                                                \
            keys[k] = (key);                                                                       \
            if (asprintf(&values[k++], __VA_ARGS__) < 0) {                                         \
                values[k - 1] = NULL;                                                              \
                err = FMW_ENOMEM;                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)
    PUT(FMW_TM_CPU_CORES, "%s", s->cpu_cores_text);
    PUT(FMW_TM_FRAMEWORK_HEAP, "%" PRIu64 "b", s->framework_heap);
    PUT(FMW_TM_FRAMEWORK_OFF_HEAP, "%" PRIu64 "b", s->framework_off_heap);
    PUT(FMW_TM_TASK_HEAP, "%" PRIu64 "b", s->task_heap);
    PUT(FMW_TM_TASK_OFF_HEAP, "%" PRIu64 "b", s->task_off_heap);
    PUT(FMW_TM_NETWORK_MIN, "%" PRIu64 "b", s->network);
    PUT(FMW_TM_NETWORK_MAX, "%" PRIu64 "b", s->network);
    PUT(FMW_TM_MANAGED, "%" PRIu64 "b", s->managed);
    if (v12) {
        PUT(FMW_TM_METASPACE, "%" PRIu64 "b", s->metaspace);
        PUT(FMW_TM_OVERHEAD_MIN, "%" PRIu64 "b", s->overhead);
        PUT(FMW_TM_OVERHEAD_MAX, "%" PRIu64 "b", s->overhead);
    }
    if (v13) {
        PUT(FMW_TM_SLOTS, "%" PRId32, s->slots);
        for (size_t i = 0; i < r->n_resources && !err; i++)
            err = fmw_buf_addf(&names, "%s%s", i ? ";" : "", r->resources[i].name);
        if (r->n_resources == 0)
            PUT(FMW_TM_EXTERNAL_RESOURCES, "none");
        else if (v15) /* 1.15+ quotes the list */
            PUT(FMW_TM_EXTERNAL_RESOURCES, "\"%s\"", fmw_buf_cstr(&names));
        else
            PUT(FMW_TM_EXTERNAL_RESOURCES, "%s", fmw_buf_cstr(&names));
        for (size_t i = 0; i < r->n_resources && !err; i++) {
            /* ExternalResourceOptions.getAmountConfigOptionForResource: a key of its own. */
            char *key = NULL;
            if (asprintf(&key, "external-resource.%s.amount", r->resources[i].name) < 0) {
                err = FMW_ENOMEM;
                break;
            }
            keys[k] = key;
            if (asprintf(&values[k++], "%" PRId64, r->resources[i].amount) < 0) {
                values[k - 1] = NULL;
                err = FMW_ENOMEM;
            }
        }
    }
#undef PUT
    if (!err) {
        /* A key repeated in a HashMap keeps its first place (an external resource named so that
         * its amount key is another key cannot happen: they all end in ".amount"). */
        (void)fmw_java_hashmap_order(keys, k, 0, order);
        for (size_t i = 0; i < k && !err; i++) {
            const char *sep = v12 ? (i ? " " : "") : "";
            err = fmw_buf_addf(&r->dynamic_configs, "%s-D %s=%s%s", sep, keys[order[i]],
                               values[order[i]], v12 ? "" : " ");
        }
    }
    for (size_t i = 0; i < k; i++) {
        free(values[i]);
        if (v13 && i >= 13)
            free((char *)keys[i]);
    }
    free(keys);
    free(values);
    free(order);
    fmw_buf_free(&names);
    return err;
}

enum fmw_err fmw_tmmem_resolve(const struct fmw_tm_input *in, struct fmw_tm_result *r,
                               struct fmw_diag *d)
{
    struct fmw_pm pm = {in->conf, in->version, &r->log, d};
    struct fmw_tm_spec s;
    memset(&s, 0, sizeof s);
    struct tm tm = {&s,
                    fmw_flink_version_cmp(in->version, FMW_FLINK_LINE(1, 17)) >= 0
                        ? &OPT_NETWORK_MAX_UNBOUNDED
                        : &OPT_NETWORK_MAX_1G,
                    in->version.major < 2};
    struct fmw_pm_spec ps;
    memset(&ps, 0, sizeof ps);
    struct fmw_conf translated;
    fmw_conf_init(&translated);
    enum fmw_err err = FMW_OK;
    free_resources(r);
    r->jvm_args[0] = '\0';
    fmw_buf_reset(&r->dynamic_configs);
    r->exception = NULL;

    /* BashJavaUtils (1.x): the legacy heap options map to total Flink memory first. */
    if (in->version.major < 2 && in->legacy != FMW_TM_LEGACY_NONE) {
        err = fmw_pm_map_legacy_heap(&pm, &LEGACY, in->env_tm_heap,
                                     in->legacy == FMW_TM_LEGACY_FLINK ? &OPT_FLINK : &OPT_PROCESS,
                                     &translated);
        if (err == FMW_ECONFIG)
            (void)fmw_diag_prefix(d, PREFIX_LEGACY); /* out of memory keeps it unprefixed */
        if (err)
            goto out;
    }
    /* TaskExecutorProcessUtils.processSpecFromConfig: an IllegalConfigurationException of the
     * memory or the CPU cores is prefixed; other exceptions pass as they are. */
    const struct fmw_pm_role role = {&OPTIONS, from_fine_grained, from_total_flink, &tm};
    err = fmw_pm_resolve(&pm, &role, &ps);
    if (!err) {
        s.total_flink = ps.total_flink;
        s.metaspace = ps.metaspace;
        s.overhead = ps.overhead;
        s.total_process = ps.total_process;
        /* Within the total, which did not overflow. */
        s.jvm_heap = s.framework_heap + s.task_heap;
        s.jvm_direct = s.framework_off_heap + s.task_off_heap + s.network;
        r->spec = s;
        err = process_resources(&pm, in, r);
    }
    if (err == FMW_ECONFIG)
        (void)fmw_diag_prefix(d, PREFIX_CONFIG);
    if (err)
        goto out;
    fmw_pm_jvm_args(r->spec.jvm_heap, r->spec.jvm_direct, true, r->spec.metaspace, r->jvm_args,
                    sizeof r->jvm_args);
    err = dynamic_configs(in, r);
    if (err == FMW_ETOOBIG)
        err = fmw_diag_set(d, err, "dynamic configs longer than %u bytes", FMW_TM_DYNAMIC_MAX);
    else if (err)
        err = fmw_diag_set(d, err, "out of memory");
out:
    if (err && !r->exception)
        r->exception = err == FMW_ECONFIG     ? "IllegalConfigurationException"
                       : err == FMW_EINVAL    ? "IllegalArgumentException"
                       : err == FMW_EOVERFLOW ? "ArithmeticException"
                                              : NULL;
    if (err) { /* a failed resolution leaves no half of a result */
        memset(&r->spec, 0, sizeof r->spec);
        r->jvm_args[0] = '\0';
        fmw_buf_reset(&r->dynamic_configs);
        free_resources(r);
    }
    fmw_conf_cleanup(&translated);
    return err;
}

enum fmw_err fmw_tmmem_check_runner(const struct fmw_conf *conf, struct fmw_flink_version version,
                                    struct fmw_diag *d)
{
    static const char FAILED[] = "Failed to create TaskExecutorResourceSpec: ";
    static const struct fmw_pm_option *const REQUIRED[] = {&OPT_CPU_CORES, &OPT_TASK_HEAP,
                                                           &OPT_MANAGED};
    struct fmw_buf log; /* contains() logs deprecated keys; nobody reads them here */
    fmw_buf_init(&log, 4096);
    struct fmw_pm pm = {conf, version, &log, d};
    enum fmw_err err = FMW_OK;
    for (size_t i = 0; i < sizeof REQUIRED / sizeof REQUIRED[0] && !err; i++) {
        if (fmw_pm_contains(&pm, REQUIRED[i]))
            continue;
        char opt[FMW_PM_OPTION_STRLEN];
        fmw_pm_option_str(REQUIRED[i], opt);
        err = fmw_diag_set(d, FMW_ECONFIG, "%sThe required configuration option %s is not set",
                           FAILED, opt);
    }
    uint64_t min = 0, max = 0;
    const struct fmw_pm_option *network_max =
        fmw_flink_version_cmp(version, FMW_FLINK_LINE(1, 17)) >= 0 ? &OPT_NETWORK_MAX_UNBOUNDED
                                                                   : &OPT_NETWORK_MAX_1G;
    if (!err)
        err = fmw_pm_get_size_raw(&pm, &OPT_NETWORK_MIN, &min);
    if (!err)
        err = fmw_pm_get_size_raw(&pm, network_max, &max);
    if (!err && min != max) {
        char a[FMW_MEMSIZE_STRLEN], b[FMW_MEMSIZE_STRLEN];
        fmw_memsize_flink(min, a);
        fmw_memsize_flink(max, b);
        err =
            fmw_diag_set(d, FMW_ECONFIG,
                         "%sThe network memory min (%s) and max (%s) mismatch, the network memory "
                         "has to be resolved and set to a fixed value before task executor starts",
                         FAILED, a, b);
    }
    fmw_buf_free(&log);
    return err;
}

enum fmw_err fmw_tmmem_format_block(const struct fmw_tm_spec *s, struct fmw_buf *out)
{
    HR(p, s->total_process);
    HR(f, s->total_flink);
    HR(h, s->jvm_heap);
    HR(fh, s->framework_heap);
    HR(th, s->task_heap);
    /* managed + direct <= total Flink memory: no overflow. */
    HR(off, s->managed + s->jvm_direct);
    HR(m, s->managed);
    HR(dm, s->jvm_direct);
    HR(fo, s->framework_off_heap);
    HR(to, s->task_off_heap);
    HR(n, s->network);
    HR(ms, s->metaspace);
    HR(o, s->overhead);
    return fmw_buf_addf(out,
                        "Final TaskExecutor Memory configuration:\n"
                        "  Total Process Memory:          %s\n"
                        "    Total Flink Memory:          %s\n"
                        "      Total JVM Heap Memory:     %s\n"
                        "        Framework:               %s\n"
                        "        Task:                    %s\n"
                        "      Total Off-heap Memory:     %s\n"
                        "        Managed:                 %s\n"
                        "        Total JVM Direct Memory: %s\n"
                        "          Framework:             %s\n"
                        "          Task:                  %s\n"
                        "          Network:               %s\n"
                        "    JVM Metaspace:               %s\n"
                        "    JVM Overhead:                %s\n",
                        p, f, h, fh, th, off, m, dm, fo, to, n, ms, o);
}
