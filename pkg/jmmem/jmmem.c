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

const struct fmw_flink_version FMW_JM_LIMIT_FACTOR_SINCE = {1, 15, -1};

static const char PREFIX_1X[] = "JobManager memory configuration failed: ";

#define MIN_JVM_HEAP (128 * FMW_MIB)

/* JobManagerOptions: the memory options, all without deprecated keys. */
static const struct fmw_pm_option OPT_PROCESS = {FMW_JM_PROCESS, {NULL}, "null", 0, 0};
static const struct fmw_pm_option OPT_FLINK = {FMW_JM_FLINK, {NULL}, "null", 0, 0};
static const struct fmw_pm_option OPT_HEAP = {FMW_JM_HEAP, {NULL}, "null", 0, 0};
static const struct fmw_pm_option OPT_OFF_HEAP = {
    FMW_JM_OFF_HEAP, {NULL}, "128 mb", 128 * FMW_MIB, 0};
static const struct fmw_pm_option OPT_METASPACE = {
    FMW_JM_METASPACE, {NULL}, "256 mb", 256 * FMW_MIB, 0};
static const struct fmw_pm_option OPT_OVERHEAD_MIN = {
    FMW_JM_OVERHEAD_MIN, {NULL}, "192 mb", 192 * FMW_MIB, 0};
static const struct fmw_pm_option OPT_OVERHEAD_MAX = {
    FMW_JM_OVERHEAD_MAX, {NULL}, "1 gb", FMW_GIB, 0};
static const struct fmw_pm_option OPT_OVERHEAD_FRACTION = {
    FMW_JM_OVERHEAD_FRACTION, {NULL}, "0.1", 0, 0.1f};
static const struct fmw_pm_option OPT_LEGACY_HEAP = {FMW_JM_LEGACY_HEAP, {NULL}, "null", 0, 0};
static const struct fmw_pm_option OPT_LEGACY_HEAP_MB = {
    FMW_JM_LEGACY_HEAP_MB, {NULL}, "null", 0, 0};

/* JobManagerProcessUtils.JM_PROCESS_MEMORY_OPTIONS and JM_LEGACY_HEAP_OPTIONS. */
static const struct fmw_pm_option *const FINE_GRAINED[] = {&OPT_HEAP};
static const struct fmw_pm_options OPTIONS = {.fine_grained = FINE_GRAINED,
                                              .n_fine_grained = 1,
                                              .total_flink = &OPT_FLINK,
                                              .total_process = &OPT_PROCESS,
                                              .metaspace = &OPT_METASPACE,
                                              .overhead_min = &OPT_OVERHEAD_MIN,
                                              .overhead_max = &OPT_OVERHEAD_MAX,
                                              .overhead_fraction = &OPT_OVERHEAD_FRACTION};
static const struct fmw_pm_legacy LEGACY = {FMW_JM_LEGACY_ENV, &OPT_LEGACY_HEAP,
                                            &OPT_LEGACY_HEAP_MB};

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

/* GlobalConfiguration.loadConfiguration(String, Configuration), every line from 1.11 to 2.3. */
void fmw_flink_missing_conf_dir(const char *given, const char *dir_abs, struct fmw_diag *d)
{
    fmw_diag_set(d, FMW_ENOTFOUND,
                 "The given configuration directory name '%s' (%s) does not describe an existing "
                 "directory.",
                 given, dir_abs);
}

/* The same method: confDirFile.getAbsolutePath() in 1.11 and 1.12, yamlConfigFile's from 1.13. */
void fmw_flink_missing_conf_file(struct fmw_flink_version v, const char *file, const char *dir_abs,
                                 const char *file_abs, struct fmw_diag *d)
{
    bool names_dir = fmw_flink_version_cmp(v, FMW_FLINK_LINE(1, 13)) < 0;
    fmw_diag_set(d, FMW_ENOTFOUND, "The Flink config file '%s' (%s) does not exist.", file,
                 names_dir ? dir_abs : file_abs);
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

#define HR(name, bytes)                                                                            \
    char name[FMW_MEMSIZE_STRLEN];                                                                 \
    fmw_memsize_human((bytes), name)

static void verify_heap(struct fmw_pm *pm, uint64_t heap)
{
    if (heap < MIN_JVM_HEAP) {
        HR(h, heap);
        HR(m, MIN_JVM_HEAP);
        fmw_pm_logf(pm, "WARN",
                    "The configured or derived JVM heap memory size (%s) is less than its "
                    "recommended minimum value (%s)",
                    h, m);
    }
}

/* JobManagerFlinkMemoryUtils.deriveFromTotalFlinkMemory. */
static enum fmw_err flink_from_total(struct fmw_pm *pm, uint64_t total_flink, void *flink)
{
    struct fmw_jm_spec *s = flink;
    enum fmw_err err = fmw_pm_get_size(pm, &OPT_OFF_HEAP, &s->off_heap);
    if (err)
        return err;
    if (total_flink <= s->off_heap) {
        HR(f, total_flink);
        HR(o, s->off_heap);
        return fmw_diag_set(pm->d, FMW_ECONFIG,
                            "The configured Total Flink Memory (%s) is less than the configured "
                            "Off-heap Memory (%s).",
                            f, o);
    }
    s->heap = total_flink - s->off_heap;
    verify_heap(pm, s->heap);
    return FMW_OK;
}

/* JobManagerFlinkMemoryUtils.deriveFromRequiredFineGrainedOptions, and the total of the
 * JobManagerFlinkMemory it makes (heap + off-heap). */
static enum fmw_err flink_from_heap(struct fmw_pm *pm, void *flink, uint64_t *total)
{
    struct fmw_jm_spec *s = flink;
    enum fmw_err err = fmw_pm_get_size(pm, &OPT_HEAP, &s->heap);
    if (!err)
        err = fmw_pm_get_size(pm, &OPT_OFF_HEAP, &s->off_heap);
    if (err)
        return err;
    if (fmw_pm_contains(pm, &OPT_FLINK)) {
        uint64_t total_flink;
        err = fmw_pm_get_size(pm, &OPT_FLINK, &total_flink);
        if (err)
            return err;
        HR(heap_hr, s->heap);
        HR(flink_hr, total_flink);
        if (fmw_pm_contains(pm, &OPT_OFF_HEAP)) {
            uint64_t sum;
            err = fmw_pm_add(pm, s->heap, s->off_heap, &sum);
            if (err)
                return err;
            if (sum != total_flink) {
                HR(off_hr, s->off_heap);
                return fmw_diag_set(
                    pm->d, FMW_ECONFIG,
                    "Sum of the configured JVM Heap Memory (%s) and the configured Off-heap Memory "
                    "(%s) does not match the configured Total Flink Memory (%s). Please, make the "
                    "configuration consistent or configure only one option: either JVM Heap or "
                    "Total Flink Memory.",
                    heap_hr, off_hr, flink_hr);
            }
        } else {
            if (total_flink < s->heap)
                return fmw_diag_set(
                    pm->d, FMW_ECONFIG,
                    "The configured JVM Heap Memory (%s) exceeds the configured Total Flink Memory "
                    "(%s). Please, make the configuration consistent or configure only one option: "
                    "either JVM Heap or Total Flink Memory.",
                    heap_hr, flink_hr);
            uint64_t dflt_off = s->off_heap;
            s->off_heap = total_flink - s->heap;
            if (s->off_heap != dflt_off) {
                HR(off_hr, s->off_heap);
                HR(dflt_hr, dflt_off);
                fmw_pm_logf(pm, "INFO",
                            "The Off-Heap Memory size (%s) is derived the configured Total Flink "
                            "Memory size (%s) minus the configured JVM Heap Memory size (%s). The "
                            "default Off-Heap Memory size (%s) is ignored.",
                            off_hr, flink_hr, heap_hr, dflt_hr);
            }
        }
    }
    verify_heap(pm, s->heap);
    return fmw_pm_add(pm, s->heap, s->off_heap, total);
}

static void format_outputs(struct fmw_flink_version version, const struct fmw_jm_spec *s,
                           struct fmw_jm_result *r)
{
    fmw_pm_jvm_args(s->heap, s->off_heap, s->direct_memory_limit, s->metaspace, r->jvm_args,
                    sizeof r->jvm_args);
    r->dynamic_configs[0] = '\0';
    if (fmw_flink_version_cmp(version, FMW_FLINK_LINE(1, 12)) >= 0)
        snprintf(r->dynamic_configs, sizeof r->dynamic_configs,
                 "-D " FMW_JM_OFF_HEAP "=%" PRIu64 "b -D " FMW_JM_OVERHEAD_MIN "=%" PRIu64
                 "b -D " FMW_JM_METASPACE "=%" PRIu64 "b -D " FMW_JM_HEAP "=%" PRIu64
                 "b -D " FMW_JM_OVERHEAD_MAX "=%" PRIu64 "b",
                 s->off_heap, s->overhead, s->metaspace, s->heap, s->overhead);
}

enum fmw_err fmw_jmmem_resolve(const struct fmw_jm_input *in, struct fmw_jm_result *r,
                               struct fmw_diag *d)
{
    struct fmw_pm pm = {in->conf, in->version, &r->log, d};
    struct fmw_jm_spec s;
    memset(&s, 0, sizeof s);
    struct fmw_pm_spec ps;
    memset(&ps, 0, sizeof ps);
    struct fmw_conf translated;
    fmw_conf_init(&translated);
    bool legacy_step = in->version.major < 2 && in->legacy != FMW_LEGACY_NONE;
    enum fmw_err err = FMW_OK;

    if (legacy_step) {
        err = fmw_pm_map_legacy_heap(&pm, &LEGACY, in->env_jm_heap,
                                     in->legacy == FMW_LEGACY_HEAP ? &OPT_HEAP : &OPT_PROCESS,
                                     &translated);
        if (err)
            goto out;
    }
    const struct fmw_pm_role role = {&OPTIONS, flink_from_heap, flink_from_total, &s};
    err = fmw_pm_resolve(&pm, &role, &ps);
    if (err)
        goto out;
    s.total_flink = ps.total_flink;
    s.metaspace = ps.metaspace;
    s.overhead = ps.overhead;
    s.total_process = ps.total_process;
    err = fmw_pm_add(&pm, s.heap, s.off_heap, &s.total_flink);
    if (err)
        goto out;
    /* The direct-memory switch is read only when the flags are generated, after the sizes. */
    err = fmw_conf_get_bool(pm.conf, FMW_JM_DIRECT_LIMIT, false, &s.direct_memory_limit, NULL, d);
    if (err)
        goto out;
    r->spec = s;
    format_outputs(in->version, &s, r);
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
