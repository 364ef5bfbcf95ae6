/*
 * The JobManager memory model. The order of reads and checks follows Flink's
 * ProcessMemoryUtils / JobManagerFlinkMemoryUtils exactly, because when several things are wrong
 * Flink reports the first one it meets, and users compare our message with Flink's.
 */
#include "pkg/jmmem/jmmem.h"

#include "pkg/memsize/memsize.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct fmw_flink_version FMW_FLINK_OLDEST = {1, 11, -1};
const struct fmw_flink_version FMW_FLINK_NEWEST = {2, 99, -1};
const struct fmw_flink_version FMW_FLINK_DEFAULT = {1, 20, -1};
const struct fmw_flink_version FMW_FLINK_LATEST = {2, 3, -1};
const struct fmw_flink_version FMW_JM_LIMIT_FACTOR_SINCE = {1, 15, -1};

#define DEFAULT_OFF_HEAP          (128 * FMW_MIB)
#define DEFAULT_METASPACE         (256 * FMW_MIB)
#define DEFAULT_OVERHEAD_MIN      (192 * FMW_MIB)
#define DEFAULT_OVERHEAD_MAX      (1 * FMW_GIB)
#define DEFAULT_OVERHEAD_FRACTION 0.1f
#define MIN_JVM_HEAP              (128 * FMW_MIB)

static const char PREFIX_1X[] = "JobManager memory configuration failed: ";
static const char LONG_OVERFLOW[] = "long overflow";

int fmw_flink_version_cmp(struct fmw_flink_version a, struct fmw_flink_version b)
{
    if (a.major != b.major)
        return a.major < b.major ? -1 : 1;
    return a.minor < b.minor ? -1 : a.minor > b.minor;
}

bool fmw_flink_version_parse(const char *text, struct fmw_flink_version *v)
{
    char *end;
    if (!text || text[0] < '0' || text[0] > '9')
        return false;
    long major = strtol(text, &end, 10);
    if (*end != '.' || end[1] < '0' || end[1] > '9')
        return false;
    long minor = strtol(end + 1, &end, 10);
    long patch = -1;
    /* Anything after the minor must be a patch ("." digits) or a qualifier ("-preview1"). */
    if (*end == '.' && end[1] >= '0' && end[1] <= '9')
        patch = strtol(end + 1, &end, 10);
    if (*end && *end != '-' && *end != '_')
        return false;
    if (major < 0 || major > 99 || minor < 0 || minor > 99 || patch > 999)
        return false;
    struct fmw_flink_version parsed = {(int)major, (int)minor, (int)patch};
    if (fmw_flink_version_cmp(parsed, FMW_FLINK_OLDEST) < 0 ||
        fmw_flink_version_cmp(parsed, FMW_FLINK_NEWEST) > 0)
        return false;
    *v = parsed;
    return true;
}

bool fmw_flink_reads_legacy_file(struct fmw_flink_version v)
{
    return v.major < 2;
}

bool fmw_flink_reads_standard_file(struct fmw_flink_version v)
{
    return fmw_flink_version_cmp(v, FMW_FLINK_LINE(1, 19)) >= 0;
}

bool fmw_flink_uses_legacy_file(struct fmw_flink_version v, bool legacy_exists)
{
    return fmw_flink_reads_legacy_file(v) && (!fmw_flink_reads_standard_file(v) || legacy_exists);
}

void fmw_jm_result_init(struct fmw_jm_result *r)
{
    memset(&r->spec, 0, sizeof r->spec);
    r->jvm_args[0] = '\0';
    r->dynamic_configs[0] = '\0';
    fmw_buf_init(&r->log, 64 * 1024);
}

void fmw_jm_result_cleanup(struct fmw_jm_result *r)
{
    fmw_buf_free(&r->log);
}

/* One resolution in progress. */
struct resolver {
    const struct fmw_conf *conf;
    struct fmw_flink_version version;
    struct fmw_jm_result *r;
    struct fmw_diag *d;
};

static void logf_(struct resolver *rs, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(struct resolver *rs, const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Flink's log lines, for explain: a cap reached drops the rest, it is not an error. */
    (void)fmw_buf_addf(&rs->r->log, "%s ", level);
    (void)fmw_buf_vaddf(&rs->r->log, fmt, ap);
    (void)fmw_buf_addc(&rs->r->log, '\n');
    va_end(ap);
}

/* ProcessMemoryUtils.getMemorySizeFromConfig. */
static enum fmw_err get_size(struct resolver *rs, const char *key, uint64_t dflt, uint64_t *out)
{
    return fmw_conf_get_memsize(rs->conf, key, dflt, out, NULL, rs->d, NULL);
}

static enum fmw_err overflow(struct resolver *rs)
{
    return fmw_diag_set(rs->d, FMW_EOVERFLOW, "%s", LONG_OVERFLOW);
}

static enum fmw_err add(struct resolver *rs, uint64_t a, uint64_t b, uint64_t *sum)
{
    return fmw_memsize_add(a, b, sum) ? overflow(rs) : FMW_OK;
}

#define HR(name, bytes)                                                                            \
    char name[FMW_MEMSIZE_STRLEN];                                                                 \
    fmw_memsize_human((bytes), name)

struct range {
    uint64_t min, max;
    float fraction;
};

/* ProcessMemoryUtils.getJvmOverheadRangeFraction → RangeFraction. */
static enum fmw_err get_range(struct resolver *rs, struct range *rg)
{
    enum fmw_err err = get_size(rs, FMW_JM_OVERHEAD_MIN, DEFAULT_OVERHEAD_MIN, &rg->min);
    if (!err)
        err = get_size(rs, FMW_JM_OVERHEAD_MAX, DEFAULT_OVERHEAD_MAX, &rg->max);
    if (!err)
        err = fmw_conf_get_float(rs->conf, FMW_JM_OVERHEAD_FRACTION, DEFAULT_OVERHEAD_FRACTION,
                                 &rg->fraction, NULL, rs->d);
    if (err)
        return err;
    double f = rg->fraction;
    if (rg->min <= rg->max && f >= 0 && f < 1)
        return FMW_OK;
    char fs[FMW_MEMSIZE_STRLEN];
    fmw_java_double_str(f, fs);
    HR(min, rg->min);
    HR(max, rg->max);
    return fmw_diag_set(rs->d, FMW_ECONFIG,
                        "Inconsistently configured Key: '" FMW_JM_OVERHEAD_FRACTION
                        "' , default: 0.1 (fallback keys: []) (%s) and its min (%s), max (%s) "
                        "value",
                        fs, min, max);
}

/* ProcessMemoryUtils.capToMinMax with its INFO lines. */
static uint64_t cap_to_min_max(struct resolver *rs, uint64_t raw, const struct range *rg)
{
    /* Sizes are formatted only for the log line that needs them: formatting costs more than the
     * whole derivation, and an overhead within its range (the usual case) logs nothing. */
    if (raw > rg->max) {
        HR(raw_hr, raw);
        HR(max, rg->max);
        logf_(rs, "INFO",
              "The derived from fraction jvm overhead memory (%s) is greater than its max value "
              "%s, max value will be used instead",
              raw_hr, max);
        return rg->max;
    }
    if (raw < rg->min) {
        HR(raw_hr, raw);
        HR(min, rg->min);
        logf_(rs, "INFO",
              "The derived from fraction jvm overhead memory (%s) is less than its min value %s, "
              "min value will be used instead",
              raw_hr, min);
        return rg->min;
    }
    return raw;
}

static enum fmw_err mul(struct resolver *rs, uint64_t bytes, double m, uint64_t *out)
{
    enum fmw_err err = fmw_memsize_mul(bytes, m, out);
    if (err == FMW_EOVERFLOW)
        return overflow(rs);
    if (err)
        return fmw_diag_set(rs->d, FMW_EINVAL, "multiplier must be >= 0");
    return FMW_OK;
}

static void verify_heap(struct resolver *rs, uint64_t heap)
{
    if (heap < MIN_JVM_HEAP) {
        HR(h, heap);
        HR(m, MIN_JVM_HEAP);
        logf_(rs, "WARN",
              "The configured or derived JVM heap memory size (%s) is less than its recommended "
              "minimum value (%s)",
              h, m);
    }
}

/* JobManagerFlinkMemoryUtils.deriveFromTotalFlinkMemory. */
static enum fmw_err flink_from_total(struct resolver *rs, uint64_t total_flink,
                                     struct fmw_jm_spec *s)
{
    enum fmw_err err = get_size(rs, FMW_JM_OFF_HEAP, DEFAULT_OFF_HEAP, &s->off_heap);
    if (err)
        return err;
    if (total_flink <= s->off_heap) {
        HR(f, total_flink);
        HR(o, s->off_heap);
        return fmw_diag_set(rs->d, FMW_ECONFIG,
                            "The configured Total Flink Memory (%s) is less than the configured "
                            "Off-heap Memory (%s).",
                            f, o);
    }
    s->heap = total_flink - s->off_heap;
    verify_heap(rs, s->heap);
    return FMW_OK;
}

/* JobManagerFlinkMemoryUtils.deriveFromRequiredFineGrainedOptions. */
static enum fmw_err flink_from_heap(struct resolver *rs, struct fmw_jm_spec *s)
{
    enum fmw_err err = get_size(rs, FMW_JM_HEAP, 0, &s->heap);
    if (!err)
        err = get_size(rs, FMW_JM_OFF_HEAP, DEFAULT_OFF_HEAP, &s->off_heap);
    if (err)
        return err;
    if (fmw_conf_has(rs->conf, FMW_JM_FLINK)) {
        uint64_t total_flink;
        err = get_size(rs, FMW_JM_FLINK, 0, &total_flink);
        if (err)
            return err;
        HR(heap_hr, s->heap);
        HR(flink_hr, total_flink);
        if (fmw_conf_has(rs->conf, FMW_JM_OFF_HEAP)) {
            uint64_t sum;
            err = add(rs, s->heap, s->off_heap, &sum);
            if (err)
                return err;
            if (sum != total_flink) {
                HR(off_hr, s->off_heap);
                return fmw_diag_set(
                    rs->d, FMW_ECONFIG,
                    "Sum of the configured JVM Heap Memory (%s) and the configured Off-heap Memory "
                    "(%s) does not match the configured Total Flink Memory (%s). Please, make the "
                    "configuration consistent or configure only one option: either JVM Heap or "
                    "Total Flink Memory.",
                    heap_hr, off_hr, flink_hr);
            }
        } else {
            if (total_flink < s->heap)
                return fmw_diag_set(
                    rs->d, FMW_ECONFIG,
                    "The configured JVM Heap Memory (%s) exceeds the configured Total Flink Memory "
                    "(%s). Please, make the configuration consistent or configure only one option: "
                    "either JVM Heap or Total Flink Memory.",
                    heap_hr, flink_hr);
            uint64_t dflt_off = s->off_heap;
            s->off_heap = total_flink - s->heap;
            if (s->off_heap != dflt_off) {
                HR(off_hr, s->off_heap);
                HR(dflt_hr, dflt_off);
                logf_(rs, "INFO",
                      "The Off-Heap Memory size (%s) is derived the configured Total Flink Memory "
                      "size (%s) minus the configured JVM Heap Memory size (%s). The default "
                      "Off-Heap Memory size (%s) is ignored.",
                      off_hr, flink_hr, heap_hr, dflt_hr);
            }
        }
    }
    verify_heap(rs, s->heap);
    return FMW_OK;
}

/* ProcessMemoryUtils.deriveJvmMetaspaceAndOverheadWithTotalFlinkMemory (branches A and B). */
static enum fmw_err jvm_from_total_flink(struct resolver *rs, uint64_t total_flink,
                                         struct fmw_jm_spec *s)
{
    uint64_t flink_and_meta;
    enum fmw_err err = get_size(rs, FMW_JM_METASPACE, DEFAULT_METASPACE, &s->metaspace);
    if (!err)
        err = add(rs, total_flink, s->metaspace, &flink_and_meta);
    if (err)
        return err;
    struct range rg;
    if (fmw_conf_has(rs->conf, FMW_JM_PROCESS)) {
        uint64_t process;
        err = get_size(rs, FMW_JM_PROCESS, 0, &process);
        if (!err)
            err = get_size(rs, FMW_JM_METASPACE, DEFAULT_METASPACE, &s->metaspace);
        if (err)
            return err;
        if (process < flink_and_meta) {
            HR(p, process);
            HR(f, total_flink);
            HR(m, s->metaspace);
            return fmw_diag_set(rs->d, FMW_ECONFIG,
                                "The configured Total Process Memory size (%s) is less than the "
                                "sum of the derived Total Flink Memory size (%s) and the "
                                "configured or default JVM Metaspace size  (%s).",
                                p, f, m);
        }
        s->overhead = process - flink_and_meta;
        err = get_range(rs, &rg);
        if (err)
            return err;
        if (s->overhead > rg.max || s->overhead < rg.min) {
            HR(o, s->overhead);
            HR(mn, rg.min);
            HR(mx, rg.max);
            return fmw_diag_set(rs->d, FMW_ECONFIG,
                                "Derived JVM Overhead size (%s) is not in configured JVM Overhead "
                                "range [%s, %s].",
                                o, mn, mx);
        }
        if (fmw_conf_has(rs->conf, FMW_JM_OVERHEAD_FRACTION)) {
            uint64_t by_fraction;
            err = mul(rs, process, rg.fraction, &by_fraction);
            if (err)
                return err;
            if (by_fraction != s->overhead) {
                HR(o, s->overhead);
                HR(p, process);
                char fs[FMW_MEMSIZE_STRLEN];
                fmw_java_double_str(rg.fraction, fs);
                logf_(rs, "INFO",
                      "The derived JVM %s size (%s) does not match the configured or default JVM "
                      "Overhead fraction (%s) from the configured Total Process Memory size (%s). "
                      "The derived JVM Overhead size will be used.",
                      fmw_flink_version_cmp(rs->version, FMW_FLINK_LINE(1, 16)) < 0 ? "OVerhead"
                                                                                    : "Overhead",
                      o, fs, p);
            }
        }
        s->total_process = process;
        return FMW_OK;
    }
    err = get_range(rs, &rg);
    if (err)
        return err;
    double f = rg.fraction;
    uint64_t raw;
    err = mul(rs, flink_and_meta, f / (1 - f), &raw);
    if (err)
        return err;
    s->overhead = cap_to_min_max(rs, raw, &rg);
    return add(rs, flink_and_meta, s->overhead, &s->total_process);
}

/* ProcessMemoryUtils.memoryProcessSpecFromConfig. */
static enum fmw_err derive(struct resolver *rs, struct fmw_jm_spec *s)
{
    enum fmw_err err;
    if (fmw_conf_has(rs->conf, FMW_JM_HEAP)) {
        err = flink_from_heap(rs, s);
        if (!err)
            err = add(rs, s->heap, s->off_heap, &s->total_flink);
        if (!err)
            err = jvm_from_total_flink(rs, s->total_flink, s);
        return err;
    }
    if (fmw_conf_has(rs->conf, FMW_JM_FLINK)) {
        err = get_size(rs, FMW_JM_FLINK, 0, &s->total_flink);
        if (!err)
            err = flink_from_total(rs, s->total_flink, s);
        if (!err)
            err = jvm_from_total_flink(rs, s->total_flink, s);
        return err;
    }
    if (fmw_conf_has(rs->conf, FMW_JM_PROCESS)) {
        struct range rg = {0, 0, 0};
        uint64_t meta_and_overhead;
        err = get_size(rs, FMW_JM_PROCESS, 0, &s->total_process);
        if (!err)
            err = get_size(rs, FMW_JM_METASPACE, DEFAULT_METASPACE, &s->metaspace);
        if (!err)
            err = get_range(rs, &rg);
        uint64_t raw = 0;
        if (!err)
            err = mul(rs, s->total_process, rg.fraction, &raw);
        if (err)
            return err;
        s->overhead = cap_to_min_max(rs, raw, &rg);
        err = add(rs, s->metaspace, s->overhead, &meta_and_overhead);
        if (err)
            return err;
        if (meta_and_overhead > s->total_process) {
            HR(m, s->metaspace);
            HR(o, s->overhead);
            HR(p, s->total_process);
            return fmw_diag_set(rs->d, FMW_ECONFIG,
                                "Sum of configured JVM Metaspace (%s) and JVM Overhead (%s) exceed "
                                "configured Total Process Memory (%s).",
                                m, o, p);
        }
        s->total_flink = s->total_process - meta_and_overhead;
        return flink_from_total(rs, s->total_flink, s);
    }
    return fmw_diag_set(
        rs->d, FMW_ECONFIG,
        "Either required fine-grained memory (" FMW_JM_HEAP "), or Total Flink Memory size (Key: "
        "'" FMW_JM_FLINK "' , default: null (fallback keys: [])), or Total Process Memory size "
        "(Key: '" FMW_JM_PROCESS "' , default: null (fallback keys: [])) need to be configured "
        "explicitly.");
}

/*
 * MemoryBackwardsCompatibilityUtils: when the target option is absent, a legacy heap value
 * (FLINK_JM_HEAP, then jobmanager.heap.size, then jobmanager.heap.mb) is copied into it.
 * `*found` tells whether `value` holds one.
 */
static enum fmw_err legacy_heap(struct resolver *rs, const char *env, uint64_t *value, bool *found)
{
    *found = false;
    if (env) {
        if (fmw_memsize_parse(fmw_str_c(env), value, NULL) != FMW_OK)
            return fmw_diag_set(rs->d, FMW_ECONFIG,
                                "Cannot read total process memory size from environment variable "
                                "value %s.",
                                env);
        *found = true;
        return FMW_OK;
    }
    if (fmw_conf_has(rs->conf, FMW_JM_LEGACY_HEAP)) {
        enum fmw_err err = get_size(rs, FMW_JM_LEGACY_HEAP, 0, value);
        *found = err == FMW_OK;
        return err;
    }
    if (fmw_conf_has(rs->conf, FMW_JM_LEGACY_HEAP_MB)) {
        int32_t mb;
        enum fmw_err err = fmw_conf_get_int(rs->conf, FMW_JM_LEGACY_HEAP_MB, 0, &mb, NULL, rs->d);
        if (err)
            return err;
        if (mb < 0)
            return fmw_diag_set(rs->d, FMW_ECONFIG,
                                "Configured total process memory size (%" PRId32
                                "MB) must not be less than 0.",
                                mb);
        *value = (uint64_t)mb << 20;
        *found = true;
    }
    return FMW_OK;
}

static void format_outputs(struct resolver *rs, const struct fmw_jm_spec *s)
{
    struct fmw_jm_result *r = rs->r;
    char direct[64] = "";
    if (s->direct_memory_limit)
        snprintf(direct, sizeof direct, " -XX:MaxDirectMemorySize=%" PRIu64, s->off_heap);
    snprintf(r->jvm_args, sizeof r->jvm_args,
             "-Xmx%" PRIu64 " -Xms%" PRIu64 "%s -XX:MaxMetaspaceSize=%" PRIu64, s->heap, s->heap,
             direct, s->metaspace);
    r->dynamic_configs[0] = '\0';
    if (fmw_flink_version_cmp(rs->version, FMW_FLINK_LINE(1, 12)) >= 0)
        snprintf(r->dynamic_configs, sizeof r->dynamic_configs,
                 "-D " FMW_JM_OFF_HEAP "=%" PRIu64 "b -D " FMW_JM_OVERHEAD_MIN "=%" PRIu64
                 "b -D " FMW_JM_METASPACE "=%" PRIu64 "b -D " FMW_JM_HEAP "=%" PRIu64
                 "b -D " FMW_JM_OVERHEAD_MAX "=%" PRIu64 "b",
                 s->off_heap, s->overhead, s->metaspace, s->heap, s->overhead);
}

enum fmw_err fmw_jmmem_resolve(const struct fmw_jm_input *in, struct fmw_jm_result *r,
                               struct fmw_diag *d)
{
    struct resolver rs = {in->conf, in->version, r, d};
    struct fmw_jm_spec s;
    memset(&s, 0, sizeof s);
    struct fmw_conf translated;
    fmw_conf_init(&translated);
    bool legacy_step = in->version.major < 2 && in->legacy != FMW_LEGACY_NONE;
    enum fmw_err err = FMW_OK;

    if (legacy_step) {
        const char *target = in->legacy == FMW_LEGACY_HEAP ? FMW_JM_HEAP : FMW_JM_PROCESS;
        if (!fmw_conf_has(in->conf, target)) {
            uint64_t value;
            bool found;
            err = legacy_heap(&rs, in->env_jm_heap, &value, &found);
            if (err)
                goto out;
            if (found) {
                char text[32];
                snprintf(text, sizeof text, "%" PRIu64, value);
                err = fmw_conf_copy(&translated, in->conf);
                if (!err)
                    err = fmw_conf_set(&translated, fmw_str_c(target), fmw_str_c(text),
                                       FMW_CONF_STRING, 0);
                if (err) {
                    err = fmw_diag_set(d, err, "out of memory");
                    goto out;
                }
                rs.conf = &translated;
                HR(v, value);
                logf_(&rs, "INFO",
                      "'%s' is not specified, use the configured deprecated task manager heap "
                      "value (%s) for it.",
                      target, v);
            }
        }
    }
    err = derive(&rs, &s);
    if (err)
        goto out;
    err = add(&rs, s.heap, s.off_heap, &s.total_flink);
    if (err)
        goto out;
    /* The direct-memory switch is read only when the flags are generated, after the sizes. */
    err = fmw_conf_get_bool(rs.conf, FMW_JM_DIRECT_LIMIT, false, &s.direct_memory_limit, NULL, d);
    if (err)
        goto out;
    r->spec = s;
    format_outputs(&rs, &s);
out:
    if (err == FMW_ECONFIG && legacy_step)
        (void)fmw_diag_prefix(d, PREFIX_1X); /* out of memory keeps the message unprefixed */
    fmw_conf_cleanup(&translated);
    return err;
}

enum fmw_err fmw_jmmem_format_block(const struct fmw_jm_spec *s, struct fmw_buf *out)
{
    HR(p, s->total_process);
    HR(f, s->total_flink);
    HR(h, s->heap);
    HR(o, s->off_heap);
    HR(m, s->metaspace);
    HR(v, s->overhead);
    return fmw_buf_addf(out,
                        "Final Master Memory configuration:\n"
                        "  Total Process Memory: %s\n"
                        "    Total Flink Memory: %s\n"
                        "      JVM Heap:         %s\n"
                        "      Off-heap:         %s\n"
                        "    JVM Metaspace:      %s\n"
                        "    JVM Overhead:       %s\n",
                        p, f, h, o, m, v);
}

/* Java's (int) of a double (JLS 5.1.3): NaN is 0, the rest truncated toward zero and saturated. */
static int32_t java_d2i(double v)
{
    if (v != v)
        return 0;
    if (v >= 2147483647.0)
        return INT32_MAX;
    if (v <= -2147483648.0)
        return INT32_MIN;
    return (int32_t)v;
}

bool fmw_jm_kubernetes_memory(uint64_t total_process, double factor, uint64_t *request,
                              uint64_t *limit)
{
    uint64_t mib = total_process >> 20;
    if (mib > INT32_MAX)
        return false;
    int32_t lim = java_d2i((double)(int32_t)mib * factor);
    if (lim < 0)
        return false;
    *request = mib << 20;
    *limit = (uint64_t)lim << 20;
    return true;
}
