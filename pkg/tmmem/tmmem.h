/*
 * pkg/tmmem: Flink's TaskExecutor (TaskManager) memory model, every line from 1.11 to 2.x, as
 * BashJavaUtils' GET_TM_RESOURCE_PARAMS computes it: the legacy heap translation (1.x), the
 * three derivation branches of the six Flink memory components, network memory from its range
 * and fraction or from the legacy number of buffers (1.x), managed memory, JVM Metaspace and
 * Overhead (shared with the JobManager through pkg/procmem), the CPU cores, slots and external
 * resources of the dynamic configs, Flink's exact error texts and log lines, the JVM memory
 * flags, the dynamic-configs line and the "Final TaskExecutor Memory configuration" block. It
 * takes a configuration and returns sizes or an error: no files, no environment, no Kubernetes.
 */
#ifndef FMW_TMMEM_H
#define FMW_TMMEM_H

#include "pkg/base/base.h"
#include "pkg/flinkconf/flinkconf.h"
#include "pkg/procmem/procmem.h"

/* The Flink options of the TaskManager memory model (TaskManagerOptions,
 * NettyShuffleEnvironmentOptions, ExternalResourceOptions). */
#define FMW_TM_PROCESS            "taskmanager.memory.process.size"
#define FMW_TM_FLINK              "taskmanager.memory.flink.size"
#define FMW_TM_FRAMEWORK_HEAP     "taskmanager.memory.framework.heap.size"
#define FMW_TM_FRAMEWORK_OFF_HEAP "taskmanager.memory.framework.off-heap.size"
#define FMW_TM_TASK_HEAP          "taskmanager.memory.task.heap.size"
#define FMW_TM_TASK_OFF_HEAP      "taskmanager.memory.task.off-heap.size"
#define FMW_TM_MANAGED            "taskmanager.memory.managed.size"
#define FMW_TM_MANAGED_FRACTION   "taskmanager.memory.managed.fraction"
#define FMW_TM_NETWORK_MIN        "taskmanager.memory.network.min"
#define FMW_TM_NETWORK_MAX        "taskmanager.memory.network.max"
#define FMW_TM_NETWORK_FRACTION   "taskmanager.memory.network.fraction"
#define FMW_TM_METASPACE          "taskmanager.memory.jvm-metaspace.size"
#define FMW_TM_OVERHEAD_MIN       "taskmanager.memory.jvm-overhead.min"
#define FMW_TM_OVERHEAD_MAX       "taskmanager.memory.jvm-overhead.max"
#define FMW_TM_OVERHEAD_FRACTION  "taskmanager.memory.jvm-overhead.fraction"
#define FMW_TM_SEGMENT_SIZE       "taskmanager.memory.segment-size"
#define FMW_TM_CPU_CORES          "taskmanager.cpu.cores"
#define FMW_TM_SLOTS              "taskmanager.numberOfTaskSlots"
#define FMW_TM_EXTERNAL_RESOURCES "external-resources"
/* Deprecated keys: the managed size's, the network range's (read as fallbacks in every line). */
#define FMW_TM_LEGACY_MANAGED          "taskmanager.memory.size"
#define FMW_TM_LEGACY_NETWORK_MIN      "taskmanager.network.memory.min"
#define FMW_TM_LEGACY_NETWORK_MAX      "taskmanager.network.memory.max"
#define FMW_TM_LEGACY_NETWORK_FRACTION "taskmanager.network.memory.fraction"
/* Read in 1.x only. */
#define FMW_TM_LEGACY_NETWORK_BUFFERS "taskmanager.network.numberOfBuffers"
#define FMW_TM_LEGACY_HEAP            "taskmanager.heap.size"
#define FMW_TM_LEGACY_HEAP_MB         "taskmanager.heap.mb"
#define FMW_TM_LEGACY_ENV             "FLINK_TM_HEAP"
/* KubernetesConfigOptions.TASK_MANAGER_MEMORY_LIMIT_FACTOR: the TaskManager container's memory
 * limit as a multiple of its process size, from the JobManager's FMW_JM_LIMIT_FACTOR_SINCE on,
 * by the same KubernetesUtils.getResourceRequirements (fmw_jm_kubernetes_memory). */
#define FMW_TM_LIMIT_FACTOR_KEY "kubernetes.taskmanager.memory.limit-factor"

/*
 * How the deprecated taskmanager.heap.size / taskmanager.heap.mb / FLINK_TM_HEAP are read in 1.x
 * (TaskExecutorProcessUtils.getConfigurationMapLegacyTaskManagerHeapSizeToConfigOption): as
 * total Flink memory (BashJavaUtils, i.e. every script-started TaskManager), as total process
 * memory (ActiveResourceManagerFactory: TaskManagers that Flink's YARN or Kubernetes resource
 * manager starts), or not at all (the resolver called directly; always so in 2.x, which has no
 * such options).
 */
enum fmw_tm_legacy { FMW_TM_LEGACY_NONE, FMW_TM_LEGACY_FLINK, FMW_TM_LEGACY_PROCESS };

struct fmw_tm_input {
    const struct fmw_conf *conf;
    struct fmw_flink_version version;
    enum fmw_tm_legacy legacy;
    const char *env_tm_heap; /* FLINK_TM_HEAP, NULL when unset ("" is set) */
    /* The configuration was read from config.yaml: in 1.19 and 1.20 Flink then reads a list
     * option's text as YAML first (2.x always does). Only external-resources is such a list. */
    bool standard_yaml;
};

/* An external resource with a positive amount (1.13+): ExternalResource. */
struct fmw_tm_resource {
    char *name;
    /* The amount as the dynamic configs print it: the configured long through a double and
     * BigDecimal, as Flink's ExternalResource holds it. */
    int64_t amount;
};

/* Caps: the external resources one configuration may name, and the dynamic-configs line. */
#define FMW_TM_RESOURCES_MAX 256
#define FMW_TM_DYNAMIC_MAX   (1u << 20)

struct fmw_tm_spec {
    uint64_t framework_heap;
    uint64_t framework_off_heap;
    uint64_t task_heap;
    uint64_t task_off_heap;
    uint64_t network;
    uint64_t managed;
    uint64_t total_flink;
    uint64_t metaspace;
    uint64_t overhead;
    uint64_t total_process;
    uint64_t jvm_heap;   /* framework + task heap: -Xmx, -Xms */
    uint64_t jvm_direct; /* framework + task off-heap + network: -XX:MaxDirectMemorySize */
    /* CPUResource's value as a double (1.14+: cut to 8 decimal places), and as the dynamic
     * configs print it (Double.toString). */
    double cpu_cores;
    char cpu_cores_text[64];
    /* taskmanager.numberOfTaskSlots as read (1.13+; not checked by Flink there); 0 before. */
    int32_t slots;
};

#define FMW_TM_ARGS_MAX 512

struct fmw_tm_result {
    struct fmw_tm_spec spec;
    /* "-Xmx… -Xms… -XX:MaxDirectMemorySize=… -XX:MaxMetaspaceSize=…" exactly as Flink. */
    char jvm_args[FMW_TM_ARGS_MAX];
    /* The "-D key=value" pairs of TaskExecutorProcessUtils.generateDynamicConfigsStr, in Flink's
     * (HashMap) order; 1.11 ends every pair with a space, later lines join them with one. */
    struct fmw_buf dynamic_configs;
    /* External resources in the order Flink holds them (1.13+; none before). Owned. */
    struct fmw_tm_resource *resources;
    size_t n_resources;
    /* Flink's INFO/WARN lines of this resolution, one per line as "INFO <text>". */
    struct fmw_buf log;
    /* After a failure with one of Flink's errors: the simple name of the Java exception Flink
     * throws (static text); NULL otherwise. */
    const char *exception;
};

void fmw_tm_result_init(struct fmw_tm_result *r);
void fmw_tm_result_cleanup(struct fmw_tm_result *r);

/*
 * Resolves the TaskManager memory as Flink's GET_TM_RESOURCE_PARAMS does (with `in->legacy`
 * FMW_TM_LEGACY_FLINK in 1.x). On failure `d` holds Flink's message (getMessage() of what
 * Flink throws), byte for byte, `r->exception` its class, and the code the kind: FMW_ECONFIG
 * (IllegalConfigurationException), FMW_EINVAL (IllegalArgumentException and its subclass
 * NumberFormatException), FMW_EOVERFLOW (ArithmeticException "long overflow"). FMW_ENOMEM and
 * FMW_ETOOBIG (a cap above) are ours. `r` must be initialised; its log is filled even on error.
 */
FMW_NODISCARD enum fmw_err fmw_tmmem_resolve(const struct fmw_tm_input *in, struct fmw_tm_result *r,
                                             struct fmw_diag *d);

/*
 * What the TaskManager process itself checks at start (TaskManagerRunner, through
 * TaskExecutorResourceUtils.resourceSpecFromConfig, the same in every line), on the configuration
 * it runs with: the file, its -D arguments and, under the scripts, BashJavaUtils' dynamic
 * configs. taskmanager.cpu.cores, taskmanager.memory.task.heap.size and
 * taskmanager.memory.managed.size (or its deprecated key) must be set, in that order, and the
 * network memory's min and max (their defaults when unset; the max's is the line's) equal.
 * Flink throws "Failed to create TaskExecutorResourceSpec" caused by the finding; `d` gets both
 * texts joined by ": " (FMW_ECONFIG), or a value that does not parse (FMW_EINVAL).
 */
FMW_NODISCARD enum fmw_err fmw_tmmem_check_runner(const struct fmw_conf *conf,
                                                  struct fmw_flink_version version,
                                                  struct fmw_diag *d);

/* Appends the fourteen lines of BashJavaUtils' "Final TaskExecutor Memory configuration:" block
 * (newline-terminated), the same in every line. */
FMW_NODISCARD enum fmw_err fmw_tmmem_format_block(const struct fmw_tm_spec *spec,
                                                  struct fmw_buf *out);

#endif
