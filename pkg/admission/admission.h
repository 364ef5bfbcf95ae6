/*
 * pkg/admission: one AdmissionReview (admission.k8s.io/v1) in, one out. Decides by kind,
 * operation and mode, asks pkg/podspec for the plan, and answers with a JSON Patch, warnings and
 * audit annotations — or a denial with Flink's message when Flink itself would reject the
 * configuration. The server and `flink-memory review` run exactly this code.
 */
#ifndef FMW_ADMISSION_H
#define FMW_ADMISSION_H

#include "pkg/base/base.h"
#include "pkg/podspec/podspec.h"

enum fmw_mode {
    FMW_MODE_ENFORCE, /* patch pods */
    FMW_MODE_DRY_RUN, /* report only: warnings and audit annotations say what would change */
    FMW_MODE_OFF      /* do nothing */
};

enum fmw_on_invalid {
    FMW_ON_INVALID_DENY, /* a configuration Flink rejects: deny the pod with Flink's message */
    FMW_ON_INVALID_WARN  /* allow it unchanged, with a warning */
};

enum fmw_workloads {
    FMW_WORKLOADS_WARN,  /* workloads get warnings that say what their pods will receive */
    FMW_WORKLOADS_PATCH, /* and their pod templates are patched too */
    FMW_WORKLOADS_OFF
};

struct fmw_admission_config {
    enum fmw_mode mode;
    enum fmw_on_invalid on_invalid;
    enum fmw_workloads workloads;
    struct fmw_podspec_options podspec;
};

/* Defaults: enforce, deny invalid configs, warn on workloads, the newest line checked against
 * Flink's jars (FMW_FLINK_LATEST) when a pod names none, requests = limits, deliberate headroom
 * kept. */
void fmw_admission_config_defaults(struct fmw_admission_config *cfg);

/* Parsers for flag and annotation values; false for an unknown word. */
bool fmw_mode_parse(const char *text, enum fmw_mode *mode);
bool fmw_on_invalid_parse(const char *text, enum fmw_on_invalid *v);
bool fmw_workloads_parse(const char *text, enum fmw_workloads *v);
bool fmw_requests_policy_parse(const char *text, enum fmw_requests_policy *v);

/* What was decided, for the log line and the metrics. */
struct fmw_decision {
    const char *outcome; /* patched, unchanged, skipped, denied, dry-run, warned, unreadable,
                            too-large (the patch would pass the response cap), too-many-values
                            (the request was refused with FMW_ETOOBIG before its tree was
                            built) */
    char uid[64];
    char namespace_[64];
    char name[128]; /* name, or generateName */
    char kind[32];
    char operation[16];
    char container[64];
    char role[16]; /* "jobmanager", "taskmanager"; "" when no Flink container was found */
    char flink_version[16];
    uint64_t total_process; /* 0 unless resolved */
    size_t changes;
    bool dry_run; /* the request itself was a dry run (kubectl --dry-run=server) */
    /* Why the configuration was not read, or Flink's message when it is rejected; "" otherwise.
     * The log line and the audit annotation "reason" carry it whole. */
    char reason[2048];
};

/* Each warning is at most this many bytes (Kubernetes may truncate longer ones); a longer remark
 * is split into several. FMW_WARNING_TEXT_MAX bounds one remark before it is split. */
#define FMW_WARNING_MAX      256
#define FMW_WARNING_TEXT_MAX 4096

/*
 * Handles one request body. On FMW_OK `out` holds the response AdmissionReview (allow, patch or
 * deny — a denial is a valid answer). FMW_EINVAL when the body is not an AdmissionReview we can
 * answer (no uid, wrong apiVersion/kind, not JSON): the caller replies HTTP 400 with `d`.
 * FMW_ENOMEM / FMW_ETOOBIG when the response cannot be built.
 */
FMW_NODISCARD enum fmw_err fmw_admission_review(const struct fmw_admission_config *cfg,
                                                const struct fmw_cm_source *src, const char *body,
                                                size_t len, struct fmw_buf *out,
                                                struct fmw_decision *dec, struct fmw_diag *d);

#endif
