/*
 * pkg/jmmem: Flink's JobManager ("Master") memory model, every line from 1.11 to 2.x: legacy heap
 * translation, the three derivation branches, capped fractional JVM overhead, Flink's exact error
 * texts, the JVM memory flags, the dynamic-configs line and the "Final Master Memory
 * configuration" log block. It takes a configuration and returns sizes or an error: no files,
 * no environment, no Kubernetes.
 */
#ifndef FMW_JMMEM_H
#define FMW_JMMEM_H

#include "pkg/base/base.h"
#include "pkg/flinkconf/flinkconf.h"
#include "pkg/procmem/procmem.h"

/* The Flink options of the JobManager memory model. */
#define FMW_JM_PROCESS           "jobmanager.memory.process.size"
#define FMW_JM_FLINK             "jobmanager.memory.flink.size"
#define FMW_JM_HEAP              "jobmanager.memory.heap.size"
#define FMW_JM_OFF_HEAP          "jobmanager.memory.off-heap.size"
#define FMW_JM_DIRECT_LIMIT      "jobmanager.memory.enable-jvm-direct-memory-limit"
#define FMW_JM_METASPACE         "jobmanager.memory.jvm-metaspace.size"
#define FMW_JM_OVERHEAD_MIN      "jobmanager.memory.jvm-overhead.min"
#define FMW_JM_OVERHEAD_MAX      "jobmanager.memory.jvm-overhead.max"
#define FMW_JM_OVERHEAD_FRACTION "jobmanager.memory.jvm-overhead.fraction"
#define FMW_JM_LEGACY_HEAP       "jobmanager.heap.size"
#define FMW_JM_LEGACY_HEAP_MB    "jobmanager.heap.mb"
#define FMW_JM_LEGACY_ENV        "FLINK_JM_HEAP"

/*
 * Which configuration file a JobManager of line `v` reads from its conf dir (Flink's
 * GlobalConfiguration.loadConfiguration): the legacy flink-conf.yaml is read up to 1.20, the
 * standard config.yaml from 1.19; where both can be read (1.19, 1.20) flink-conf.yaml wins when
 * it exists. The CLI and the pod analysis both ask here.
 */
bool fmw_flink_reads_legacy_file(struct fmw_flink_version v);
bool fmw_flink_reads_standard_file(struct fmw_flink_version v);
/* True when the JobManager reads flink-conf.yaml, given whether the conf dir holds one. */
bool fmw_flink_uses_legacy_file(struct fmw_flink_version v, bool legacy_exists);

/*
 * Flink's texts (IllegalConfigurationException) when loadConfiguration finds no conf dir, or
 * not the file it chose there. `given` is the conf dir as passed, `dir_abs` its absolute path,
 * `file` the chosen file's path and `file_abs` its absolute path, each as java.io.File prints
 * them; 1.11 and 1.12 put the directory where later lines put the file. The text goes to `d`.
 */
void fmw_flink_missing_conf_dir(const char *given, const char *dir_abs, struct fmw_diag *d);
void fmw_flink_missing_conf_file(struct fmw_flink_version v, const char *file, const char *dir_abs,
                                 const char *file_abs, struct fmw_diag *d);

/*
 * How the deprecated jobmanager.heap.size / jobmanager.heap.mb / FLINK_JM_HEAP are read in 1.x
 * (Flink's JobManagerProcessUtils.processSpecFromConfigWithNewOptionToInterpretLegacyHeap): as
 * JVM heap (every script-started JobManager), as total process memory (the YARN/Kubernetes
 * client), or not at all (the resolver called directly; always so in 2.x, which
 * also drops the "JobManager memory configuration failed: " prefix).
 */
enum fmw_legacy_heap { FMW_LEGACY_NONE, FMW_LEGACY_HEAP, FMW_LEGACY_PROCESS };

struct fmw_jm_input {
    const struct fmw_conf *conf;
    struct fmw_flink_version version;
    enum fmw_legacy_heap legacy;
    const char *env_jm_heap; /* FLINK_JM_HEAP, NULL when unset ("" is set) */
};

struct fmw_jm_spec {
    uint64_t total_process;
    uint64_t total_flink;
    uint64_t heap;
    uint64_t off_heap;
    uint64_t metaspace;
    uint64_t overhead;
    bool direct_memory_limit;
};

#define FMW_JM_ARGS_MAX 512

struct fmw_jm_result {
    struct fmw_jm_spec spec;
    /* "-Xmx… -Xms…[ -XX:MaxDirectMemorySize=…] -XX:MaxMetaspaceSize=…" exactly as Flink. */
    char jvm_args[FMW_JM_ARGS_MAX];
    /* The five "-D key=<bytes>b" pairs (1.12+); "" for 1.11, which has no such line. */
    char dynamic_configs[FMW_JM_ARGS_MAX];
    /* Flink's INFO/WARN lines of this resolution, one per line as "INFO <text>". */
    struct fmw_buf log;
};

void fmw_jm_result_init(struct fmw_jm_result *r);
void fmw_jm_result_cleanup(struct fmw_jm_result *r);

/*
 * Resolves the JobManager memory as Flink's GET_JM_RESOURCE_PARAMS does. On failure `d` holds
 * Flink's message, byte for byte, and the code tells the Java class: FMW_ECONFIG
 * (IllegalConfigurationException), FMW_EINVAL (IllegalArgumentException) or FMW_EOVERFLOW
 * (ArithmeticException "long overflow"). `r` must be initialised; its log is filled even on error.
 */
FMW_NODISCARD enum fmw_err fmw_jmmem_resolve(const struct fmw_jm_input *in, struct fmw_jm_result *r,
                                             struct fmw_diag *d);

/* Appends Flink's seven-line "Final Master Memory configuration:" block (newline-terminated). */
/*
 * The container memory Flink's Kubernetes integration asks for a JobManager of
 * `total_process` bytes (flink-kubernetes KubernetesUtils.getResourceRequirements, with the
 * MiB figure of ClusterSpecification.getMasterMemoryMB): request = the total in whole MiB
 * (MemorySize.getMebiBytes truncates), limit = (int) (request MiB × factor) MiB, the factor
 * being kubernetes.jobmanager.memory.limit-factor (FMW_JM_LIMIT_FACTOR_KEY, from Flink
 * FMW_JM_LIMIT_FACTOR_SINCE). Java's double arithmetic and (int) cast, exactly. False when the
 * total does not fit Flink's int of MiB (Flink could not size it either).
 */
#define FMW_JM_LIMIT_FACTOR_KEY "kubernetes.jobmanager.memory.limit-factor"
extern const struct fmw_flink_version FMW_JM_LIMIT_FACTOR_SINCE;
bool fmw_jm_kubernetes_memory(uint64_t total_process, double factor, uint64_t *request,
                              uint64_t *limit);

FMW_NODISCARD enum fmw_err fmw_jmmem_format_block(const struct fmw_jm_spec *spec,
                                                  struct fmw_buf *out);

#endif
