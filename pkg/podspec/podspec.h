/*
 * pkg/podspec: what a JobManager or TaskManager pod will really run, and the smallest change that
 * makes its container memory equal Flink's total process memory.
 *
 * Given a pod (or a workload's pod template) it finds the Flink container and its role, the
 * Flink version, the configuration the process will read (the ConfigMap mounted at its conf dir,
 * or the image's default) with the overlays that really reach it for that version and layout
 * (FLINK_PROPERTIES, "-D" arguments, FLINK_JM_HEAP / FLINK_TM_HEAP), resolves it with pkg/jmmem
 * or pkg/tmmem, finds the JVM memory flags that win on the java command line, and plans an
 * RFC 6902 JSON Patch.
 *
 * It knows nothing of HTTP or AdmissionReview; ConfigMaps come through `struct fmw_cm_source`.
 */
#ifndef FMW_PODSPEC_H
#define FMW_PODSPEC_H

#include "pkg/base/base.h"
#include "pkg/jmmem/jmmem.h"
#include "pkg/tmmem/tmmem.h"

#include <jansson.h>

/* Annotations users put on pods (or pod templates) to steer the webhook, and the one it writes. */
#define FMW_ANNOTATION_PREFIX "flink-memory-webhook/"
#define FMW_ANN_MODE          FMW_ANNOTATION_PREFIX "mode"
#define FMW_ANN_CONTAINER     FMW_ANNOTATION_PREFIX "container"
#define FMW_ANN_FLINK_VERSION FMW_ANNOTATION_PREFIX "flink-version"
#define FMW_ANN_CONFIGMAP     FMW_ANNOTATION_PREFIX "configmap"
#define FMW_ANN_RESOLVED      FMW_ANNOTATION_PREFIX "resolved"
#define FMW_ANN_HEADROOM      FMW_ANNOTATION_PREFIX "headroom"
#define FMW_ANN_SIZING        FMW_ANNOTATION_PREFIX "sizing"

/*
 * The variable the webhook gives a container that is sized from its own memory (from-limit,
 * from-request): the limit's or the request's bytes through the downward API (resourceFieldRef,
 * divisor 1), so that the process size follows the container at every start.
 */
#define FMW_SIZE_ENV "FLINK_MEMORY_WEBHOOK_SIZE"

/* Where ConfigMaps come from: the Kubernetes API behind a cache in the server, manifest files in
 * the CLI. */
struct fmw_cm_source {
    /*
     * Looks up ConfigMap `name` in namespace `ns`. On success `*data` is a NEW reference to a JSON
     * object of the ConfigMap's data (key → string). FMW_ENOTFOUND when it does not exist; any
     * other failure (FMW_ETIMEDOUT, FMW_EIO, …) with a message in `d`. Must be thread-safe when
     * the server calls it from several workers.
     */
    enum fmw_err (*get)(void *ctx, const char *ns, const char *name, json_t **data,
                        struct fmw_diag *d);
    void *ctx;
    /*
     * The review runs where it must stay short (the server's event loop): the plan keeps its
     * expansions to FMW_EXPAND_LIGHT_BYTES and FMW_EXPAND_LIGHT_SCANS and, past them, stops and
     * calls too_heavy(ctx); the caller then runs the review again where it may take the whole
     * budget (a worker). Otherwise the whole budget applies from the start.
     */
    bool light;
    void (*too_heavy)(void *ctx);
    /* CLOCK_MONOTONIC nanoseconds past which the plan stops expanding and the pod is left as
     * written with a warning; 0: no deadline. */
    uint64_t deadline_ns;
};

enum fmw_requests_policy {
    FMW_REQUESTS_EQUAL,     /* requests.memory = limits.memory (Flink's native Kubernetes mode) */
    FMW_REQUESTS_KEEP_LOWER /* keep a lower request the user set; never above the limit */
};

/*
 * A memory limit above Flink's own (the total process memory, times
 * kubernetes.jobmanager.memory.limit-factor or kubernetes.taskmanager.memory.limit-factor where
 * that is set): headroom. Raising a limit below
 * Flink's is never a question; lowering one above it is.
 */
enum fmw_headroom_policy {
    FMW_HEADROOM_DELIBERATE, /* keep it where a known operator leaves it on purpose; else lower */
    FMW_HEADROOM_KEEP,       /* never lower a limit */
    FMW_HEADROOM_REMOVE      /* limit = Flink's, always */
};

/*
 * Which way the sizes go. From the configuration (the default): Flink's total process memory is
 * what the configuration says, and the container's limit is made to match. From the pod (opt-in):
 * the container's memory limit (from-limit) or request (from-request) is Flink's total process
 * memory, given to Flink as <role>.memory.process.size, and the JVM flags follow.
 */
enum fmw_sizing { FMW_SIZING_CONFIG, FMW_SIZING_LIMIT, FMW_SIZING_REQUEST };

/* "from-config", "from-limit", "from-request"; false for another word. */
bool fmw_sizing_parse(const char *text, enum fmw_sizing *v);
const char *fmw_sizing_name(enum fmw_sizing v);

/* The Flink processes the webhook sizes (a set of bits). */
enum fmw_role {
    FMW_ROLE_JOBMANAGER = 1,
    FMW_ROLE_TASKMANAGER = 2,
    FMW_ROLES_ALL = FMW_ROLE_JOBMANAGER | FMW_ROLE_TASKMANAGER
};

/* "jobmanager", "taskmanager" (one role). */
const char *fmw_role_name(enum fmw_role role);
/* A comma-separated list of role names ("jobmanager,taskmanager"); false for another word or an
 * empty list. */
bool fmw_roles_parse(const char *text, unsigned *roles);

/* <role>.memory.process.size, and that key of `conf` set to `bytes` as the webhook's -D sets it
 * ("<bytes>b"), replacing any value. */
const char *fmw_process_key(enum fmw_role role);

FMW_NODISCARD enum fmw_err fmw_set_process_size(struct fmw_conf *conf, enum fmw_role role,
                                                uint64_t bytes);

/*
 * The process sizes Flink accepts for a configuration when the role's
 * <role>.memory.process.size is set to them (the configuration's other sizes, legacy options and
 * environment as in the role's input, whose conf is read and not changed): *min the smallest,
 * and *max the largest where `refused` lies above all of them (else 0). *min is 0 when none is
 * accepted. Fails only when out of memory.
 */
struct fmw_size_probe {
    enum fmw_role role;
    struct fmw_jm_input jm; /* JobManager */
    struct fmw_tm_input tm; /* TaskManager */
};
FMW_NODISCARD enum fmw_err fmw_accepted_process_sizes(const struct fmw_size_probe *probe,
                                                      uint64_t refused, uint64_t *min,
                                                      uint64_t *max);

struct fmw_podspec_options {
    struct fmw_flink_version default_version; /* when neither annotation nor image tag says */
    enum fmw_requests_policy requests;
    enum fmw_headroom_policy headroom;
    unsigned roles;         /* the roles sized (enum fmw_role bits); 0 is FMW_ROLES_ALL */
    enum fmw_sizing sizing; /* a pod's FMW_ANN_SIZING overrides it */
};

/* "deliberate", "keep", "remove"; false for another word. */
bool fmw_headroom_policy_parse(const char *text, enum fmw_headroom_policy *v);

enum fmw_plan_status {
    FMW_PLAN_SKIP,      /* no Flink container of a role sized: nothing to do */
    FMW_PLAN_RESOLVED,  /* resolved; `patch` holds the change, possibly empty */
    FMW_PLAN_INVALID,   /* Flink rejects the configuration: `message` has Flink's text */
    FMW_PLAN_UNREADABLE /* the configuration cannot be read: `message` says why */
};

#define FMW_PLAN_TEXT 512

struct fmw_plan {
    enum fmw_plan_status status;
    enum fmw_role role;            /* the process the container starts (not SKIP) */
    char container[FMW_PLAN_TEXT]; /* the Flink container's name */
    int container_index;
    struct fmw_flink_version version;
    char version_source[64];    /* "annotation", "image tag", "assumed" */
    bool version_assumed;       /* neither the annotation nor the image tag names the line */
    char source[FMW_PLAN_TEXT]; /* where the configuration came from, for humans */
    struct fmw_jm_result jm;    /* the resolution of a JobManager (status RESOLVED) */
    struct fmw_tm_result tm;    /* the resolution of a TaskManager (status RESOLVED) */
    uint64_t limit, request;    /* the container's memory after the plan (RESOLVED) */
    double limit_factor;        /* kubernetes.<role>.memory.limit-factor applied, else 0 */
    char headroom_kept[128];    /* why a limit above Flink's stays, else "" */
    enum fmw_sizing sizing;  /* how this pod was sized (FMW_SIZING_CONFIG when from-* fell back) */
    bool follows;            /* sized from the pod through FMW_SIZE_ENV: follows every start */
    struct fmw_diag message; /* INVALID: Flink's message; UNREADABLE: the reason */
    json_t *patch;           /* array of RFC 6902 operations; owned */
    json_t *changes;         /* array of one-line descriptions, one per change; owned */
    json_t *notes;           /* array of other one-line remarks worth a warning; owned */
    char annotation[FMW_PLAN_TEXT * 3]; /* the value written to FMW_ANN_RESOLVED */
};

void fmw_plan_init(struct fmw_plan *plan);
void fmw_plan_cleanup(struct fmw_plan *plan);

/* Of a RESOLVED plan, whichever the role: Flink's total process memory, Flink's JVM memory
 * flags, and BashJavaUtils' "Final ... Memory configuration" block appended to `out`. */
uint64_t fmw_plan_total_process(const struct fmw_plan *plan);
const char *fmw_plan_jvm_args(const struct fmw_plan *plan);
FMW_NODISCARD enum fmw_err fmw_plan_format_block(const struct fmw_plan *plan, struct fmw_buf *out);

/*
 * Plans the change for `pod`, a JSON object with "metadata" and "spec" (a Pod, or the "template"
 * of a workload). `ns` is the namespace for ConfigMap lookups; `prefix` is the JSON Pointer of
 * `pod` inside the reviewed object ("" for a Pod, "/spec/template" for a Deployment). `plan` must
 * be initialised. Returns FMW_OK whatever the pod holds (the status tells what was found) and
 * fails only when out of memory.
 */
FMW_NODISCARD enum fmw_err fmw_podspec_plan(json_t *pod, const char *ns, const char *prefix,
                                            const struct fmw_podspec_options *opt,
                                            const struct fmw_cm_source *src, struct fmw_plan *plan);

/* RFC 6901: appends `segment` to `pointer` with '~' → "~0" and '/' → "~1". */
FMW_NODISCARD enum fmw_err fmw_json_pointer_append(struct fmw_buf *pointer, const char *segment);

/* The Flink version an image reference names ("flink:1.17.2-scala_2.12-java11" → 1.17.2);
 * false when its tag does not start with a version (latest, digests, other images). */
bool fmw_podspec_image_version(const char *image, struct fmw_flink_version *v);

/* A JVM size ("2g", "512M", "1073741824") in bytes; false when not a JVM size. */
bool fmw_podspec_jvm_size(struct fmw_str text, uint64_t *bytes);

/* A new JSON string holding `s`, as json_string(s) makes it (NULL for text that is not UTF-8,
 * or out of memory), with a faster UTF-8 check than jansson's: reviews make dozens. */
json_t *fmw_json_text(const char *s);

#endif
