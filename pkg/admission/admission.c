/* AdmissionReview handling: decode, decide, answer. */
#include "pkg/admission/admission.h"
#include "pkg/admission/admission_int.h"

#include "pkg/memsize/memsize.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WARN_PREFIX "flink-memory-webhook: "

void fmw_admission_config_defaults(struct fmw_admission_config *cfg)
{
    cfg->mode = FMW_MODE_ENFORCE;
    cfg->on_invalid = FMW_ON_INVALID_DENY;
    cfg->workloads = FMW_WORKLOADS_WARN;
    cfg->podspec.default_version = FMW_FLINK_LATEST;
    cfg->podspec.requests = FMW_REQUESTS_EQUAL;
    cfg->podspec.headroom = FMW_HEADROOM_DELIBERATE;
    cfg->podspec.roles = FMW_ROLES_ALL;
}

bool fmw_mode_parse(const char *text, enum fmw_mode *mode)
{
    if (!text)
        return false;
    if (strcmp(text, "enforce") == 0)
        *mode = FMW_MODE_ENFORCE;
    else if (strcmp(text, "dry-run") == 0)
        *mode = FMW_MODE_DRY_RUN;
    else if (strcmp(text, "off") == 0)
        *mode = FMW_MODE_OFF;
    else
        return false;
    return true;
}

bool fmw_on_invalid_parse(const char *text, enum fmw_on_invalid *v)
{
    if (text && strcmp(text, "deny") == 0)
        *v = FMW_ON_INVALID_DENY;
    else if (text && strcmp(text, "warn") == 0)
        *v = FMW_ON_INVALID_WARN;
    else
        return false;
    return true;
}

bool fmw_workloads_parse(const char *text, enum fmw_workloads *v)
{
    if (text && strcmp(text, "warn") == 0)
        *v = FMW_WORKLOADS_WARN;
    else if (text && strcmp(text, "patch") == 0)
        *v = FMW_WORKLOADS_PATCH;
    else if (text && strcmp(text, "off") == 0)
        *v = FMW_WORKLOADS_OFF;
    else
        return false;
    return true;
}

bool fmw_requests_policy_parse(const char *text, enum fmw_requests_policy *v)
{
    if (text && strcmp(text, "equal") == 0)
        *v = FMW_REQUESTS_EQUAL;
    else if (text && strcmp(text, "keep-lower") == 0)
        *v = FMW_REQUESTS_KEEP_LOWER;
    else
        return false;
    return true;
}

/* The kinds we look at, and where their pod template is. */
static const struct {
    const char *group, *kind, *template_path;
} WORKLOADS[] = {
    {"apps", "Deployment", "/spec/template"},
    {"apps", "StatefulSet", "/spec/template"},
    {"apps", "ReplicaSet", "/spec/template"},
    {"batch", "Job", "/spec/template"},
    {"batch", "CronJob", "/spec/jobTemplate/spec/template"},
};

/* Follows a JSON Pointer made of plain segments ("/spec/template"). */
static json_t *at_path(json_t *root, const char *path)
{
    char seg[64];
    json_t *cur = root;
    while (*path == '/' && cur) {
        path++;
        size_t n = strcspn(path, "/");
        if (n >= sizeof seg)
            return NULL;
        memcpy(seg, path, n);
        seg[n] = '\0';
        cur = json_object_get(cur, seg);
        path += n;
    }
    return cur;
}

/* Copies what fits; these fields only feed log lines and metrics. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Appends prefix + lead + piece + trail as one warning (the caller keeps it within
 * FMW_WARNING_MAX). Copied, not formatted: reviews make several. */
static void emit_warning(json_t *warnings, const char *prefix, const char *lead, const char *piece,
                         size_t n, const char *trail)
{
    char text[FMW_WARNING_MAX + 1];
    size_t len = 0;
    const struct fmw_str parts[] = {
        fmw_str_c(prefix), fmw_str_c(lead), {piece, n}, fmw_str_c(trail)};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t k = parts[i].len < FMW_WARNING_MAX - len ? parts[i].len : FMW_WARNING_MAX - len;
        memcpy(text + len, parts[i].ptr, k);
        len += k;
    }
    text[len] = '\0';
    json_array_append_new(warnings, fmw_json_text(text));
}

/*
 * One remark, as warnings of at most FMW_WARNING_MAX bytes each: prefixed, control characters
 * flattened, and a text too long for one split between words into several ("... " marks where
 * one goes on) rather than cut: the diagnosis is usually at the end. Kubernetes asks for 120
 * characters where possible and may truncate past 256 (apiserver/pkg/warning).
 */
static void add_warning(json_t *warnings, const char *container, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_warning(json_t *warnings, const char *container, const char *fmt, ...)
{
    char body[FMW_WARNING_TEXT_MAX], prefix[128];
    va_list ap;
    va_start(ap, fmt);
    int whole = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (whole >= (int)sizeof body) {
        /* Longer than any remark of ours: the end says it was cut, on a character boundary. */
        static const char CUT[] = " ... (cut)";
        size_t at = sizeof body - sizeof CUT;
        while (at > 0 && ((unsigned char)body[at] & 0xC0) == 0x80)
            at--;
        memcpy(body + at, CUT, sizeof CUT);
    }
    /* Container names are DNS labels (63 bytes); the bound keeps room for the text anyway. */
    size_t cn = container ? strnlen(container, 63) : 0;
    memcpy(prefix, WARN_PREFIX, sizeof WARN_PREFIX - 1);
    memcpy(prefix + sizeof WARN_PREFIX - 1, container ? container : "", cn);
    memcpy(prefix + sizeof WARN_PREFIX - 1 + cn, cn ? ": " : "", cn ? 3 : 1);
    /* Bytes that are not UTF-8 (user text cut by a "%.Ns") become '?', since a warning must be
     * a valid JSON string; control characters become spaces. */
    fmw_utf8_scrub(body);
    fmw_utf8_scrub(prefix);
    for (unsigned char *p = (unsigned char *)body; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
    }
    for (unsigned char *p = (unsigned char *)prefix; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
    }
    static const char MORE[] = " ...", CONT[] = "... ";
    const char *rest = body;
    size_t left = strlen(body);
    bool first = true;
    for (;;) {
        const char *lead = first ? "" : CONT;
        size_t room = FMW_WARNING_MAX - strlen(prefix) - strlen(lead);
        if (left <= room) {
            emit_warning(warnings, prefix, lead, rest, left, "");
            return;
        }
        room -= strlen(MORE);
        /* Split at the last space that leaves at least half a warning, else mid-word on a
         * UTF-8 boundary. */
        size_t cut = room;
        while (cut > room / 2 && rest[cut] != ' ')
            cut--;
        if (rest[cut] != ' ') {
            cut = room;
            while (cut > 0 && ((unsigned char)rest[cut] & 0xC0) == 0x80)
                cut--;
        }
        emit_warning(warnings, prefix, lead, rest, cut, MORE);
        rest += cut;
        left -= cut;
        while (*rest == ' ') {
            rest++;
            left--;
        }
        first = false;
        if (!left)
            return;
    }
}

struct answer {
    json_t *response; /* the "response" object */
    json_t *warnings;
    json_t *audit;
};

static enum fmw_err finish(json_t *review, struct answer *a, struct fmw_buf *out)
{
    if (json_array_size(a->warnings) > 0)
        json_object_set(a->response, "warnings", a->warnings);
    if (json_object_size(a->audit) > 0)
        json_object_set(a->response, "auditAnnotations", a->audit);
    return fmw_json_dump(review, out);
}

static enum fmw_err set_patch(json_t *response, json_t *patch)
{
    struct fmw_buf text;
    fmw_buf_init(&text, (size_t)64 << 20); /* as large as the CLI's output */
    enum fmw_err err = fmw_json_dump(patch, &text);
    if (err) {
        fmw_buf_free(&text);
        return err;
    }
    size_t n = text.len;
    size_t enc_len = 4 * ((n + 2) / 3) + 1;
    unsigned char *enc = malloc(enc_len);
    if (!enc) {
        fmw_buf_free(&text);
        return FMW_ENOMEM;
    }
    EVP_EncodeBlock(enc, (const unsigned char *)fmw_buf_cstr(&text), (int)n);
    fmw_buf_free(&text);
    json_object_set_new(response, "patchType", fmw_json_text("JSONPatch"));
    json_object_set_new(response, "patch", fmw_json_text((const char *)enc));
    free(enc);
    return FMW_OK;
}

static const char *mode_name(enum fmw_mode m)
{
    return m == FMW_MODE_ENFORCE ? "enforce" : m == FMW_MODE_DRY_RUN ? "dry-run" : "off";
}

/* Applies the plan of one pod or pod template to the answer. */
static enum fmw_err answer_plan(const struct fmw_admission_config *cfg, enum fmw_mode mode,
                                bool workload, struct fmw_plan *plan, struct answer *a,
                                struct fmw_decision *dec)
{
    const char *ctr = plan->container;
    copy_text(dec->container, sizeof dec->container, ctr);
    if (plan->status != FMW_PLAN_SKIP) {
        copy_text(dec->role, sizeof dec->role, fmw_role_name(plan->role));
        json_object_set_new(a->audit, "role", fmw_json_text(dec->role));
        snprintf(dec->flink_version, sizeof dec->flink_version, "%d.%d", plan->version.major,
                 plan->version.minor);
    }
    size_t i;
    json_t *n;
    json_array_foreach(plan->notes, i, n)
    {
        add_warning(a->warnings, ctr, "%s", json_string_value(n));
    }
    if (plan->version_assumed && plan->status != FMW_PLAN_RESOLVED && plan->status != FMW_PLAN_SKIP)
        add_warning(a->warnings, ctr,
                    "Flink %d.%d is assumed: the image tag names no version "
                    "(annotation " FMW_ANN_FLINK_VERSION " names it)",
                    plan->version.major, plan->version.minor);
    switch (plan->status) {
    case FMW_PLAN_SKIP:
        dec->outcome = "skipped";
        return FMW_OK;
    case FMW_PLAN_UNREADABLE:
        dec->outcome = "unreadable";
        copy_text(dec->reason, sizeof dec->reason, fmw_diag_msg(&plan->message));
        add_warning(a->warnings, ctr, "config not read, pod unchanged: %s",
                    fmw_diag_msg(&plan->message));
        json_object_set_new(a->audit, "decision", fmw_json_text("unreadable"));
        char *reason = fmw_strdup(fmw_diag_msg(&plan->message));
        if (reason) {
            fmw_utf8_scrub(reason);
            json_object_set_new(a->audit, "reason", fmw_json_text(reason));
            free(reason);
        }
        return FMW_OK;
    case FMW_PLAN_INVALID: {
        char msg[4096];
        copy_text(dec->reason, sizeof dec->reason, fmw_diag_msg(&plan->message));
        snprintf(msg, sizeof msg, "%s: %s", ctr, fmw_diag_msg(&plan->message));
        json_object_set_new(a->audit, "flink-error", fmw_json_text(fmw_diag_msg(&plan->message)));
        if (workload || cfg->on_invalid == FMW_ON_INVALID_WARN || mode == FMW_MODE_DRY_RUN) {
            dec->outcome = "warned";
            add_warning(a->warnings, ctr, "%sFlink rejects this configuration: %s",
                        workload ? "pods will be denied: "
                        : mode == FMW_MODE_DRY_RUN && cfg->on_invalid == FMW_ON_INVALID_DENY
                            ? "would deny: "
                            : "",
                        fmw_diag_msg(&plan->message));
            json_object_set_new(a->audit, "decision", fmw_json_text("warned"));
            return FMW_OK;
        }
        dec->outcome = "denied";
        json_object_set_new(a->response, "allowed", json_false());
        json_object_set_new(
            a->response, "status",
            json_pack("{s:i,s:s,s:s}", "code", 403, "reason", "Forbidden", "message", msg));
        json_object_set_new(a->audit, "decision", fmw_json_text("denied"));
        return FMW_OK;
    }
    case FMW_PLAN_RESOLVED:
        break;
    }
    char q[FMW_MEMSIZE_STRLEN];
    fmw_quantity_format(fmw_plan_total_process(plan), q);
    dec->total_process = fmw_plan_total_process(plan);
    dec->changes = json_array_size(plan->changes);
    json_object_set_new(a->audit, "total-process-memory", fmw_json_text(q));
    json_object_set_new(a->audit, "jvm-args", fmw_json_text(fmw_plan_jvm_args(plan)));
    if (plan->annotation[0])
        json_object_set_new(a->audit, "resolved", fmw_json_text(plan->annotation));
    bool patch = mode == FMW_MODE_ENFORCE && (!workload || cfg->workloads == FMW_WORKLOADS_PATCH);
    if (dec->changes == 0) {
        /* Nothing to change but the resolved annotation of a pod, when it is not there yet. */
        dec->outcome = "unchanged";
        json_object_set_new(a->audit, "decision", fmw_json_text("unchanged"));
        return patch && json_array_size(plan->patch) > 0 ? set_patch(a->response, plan->patch)
                                                         : FMW_OK;
    }
    const char *lead = patch ? "" : workload ? "pods will get " : "would set ";
    json_array_foreach(plan->changes, i, n)
    {
        add_warning(a->warnings, ctr, "%s%s (Flink %d.%d%s)", lead, json_string_value(n),
                    plan->version.major, plan->version.minor,
                    plan->version_assumed ? ", assumed" : "");
    }
    if (!patch) {
        dec->outcome = mode == FMW_MODE_DRY_RUN ? "dry-run" : "warned";
        json_object_set_new(a->audit, "decision", fmw_json_text(dec->outcome));
        return FMW_OK;
    }
    dec->outcome = "patched";
    json_object_set_new(a->audit, "decision", fmw_json_text("patched"));
    return set_patch(a->response, plan->patch);
}

enum fmw_err fmw_admission_review(const struct fmw_admission_config *cfg,
                                  const struct fmw_cm_source *src, const char *body, size_t len,
                                  struct fmw_buf *out, struct fmw_decision *dec, struct fmw_diag *d)
{
    memset(dec, 0, sizeof *dec);
    dec->outcome = "skipped";
    struct fmw_json_error jerr;
    /* The parse tree lives in a per-request arena (admission_int.h): dropped all at once at the
     * end, since it is most of a review's allocations. Parsed by json.c: jansson's json_loadb,
     * with the same acceptance, costs four times as much. */
    fmw_arena_begin();
    json_t *in = fmw_json_loadb(body, len, &jerr);
    fmw_arena_stop_allocating();
    if (!in) {
        fmw_arena_end();
        if (jerr.too_many_values) {
            dec->outcome = "too-many-values"; /* the one ETOOBIG that is the request's fault */
            return fmw_diag_set(d, FMW_ETOOBIG,
                                "request body holds more than %d JSON values (no Kubernetes "
                                "object needs that many); not parsed further",
                                FMW_JSON_MAX_VALUES);
        }
        return fmw_diag_set(d, FMW_EINVAL, "request body is not JSON: %s (line %d, column %d)",
                            jerr.text, jerr.line, jerr.column);
    }
    enum fmw_err err = FMW_OK;
    json_t *review = NULL;
    struct answer a = {NULL, json_array(), json_object()};
    struct fmw_plan plan;
    fmw_plan_init(&plan);

    const char *api = json_string_value(json_object_get(in, "apiVersion"));
    const char *kind = json_string_value(json_object_get(in, "kind"));
    json_t *req = json_object_get(in, "request");
    const char *uid = json_string_value(json_object_get(req, "uid"));
    if (!json_is_object(in) || !api ||
        (strcmp(api, "admission.k8s.io/v1") != 0 && strcmp(api, "admission.k8s.io/v1beta1") != 0)) {
        err = fmw_diag_set(d, FMW_EINVAL,
                           "not an AdmissionReview: apiVersion must be "
                           "admission.k8s.io/v1");
        goto out;
    }
    if (!kind || strcmp(kind, "AdmissionReview") != 0 || !json_is_object(req) || !uid || !*uid) {
        err = fmw_diag_set(d, FMW_EINVAL,
                           "not an AdmissionReview: kind AdmissionReview with a "
                           "request and a request.uid is required");
        goto out;
    }
    copy_text(dec->uid, sizeof dec->uid, uid);
    a.response = json_pack("{s:s,s:b}", "uid", uid, "allowed", 1);
    review = json_pack("{s:s,s:s,s:o}", "apiVersion", api, "kind", "AdmissionReview", "response",
                       a.response);
    if (!a.response || !review || !a.warnings || !a.audit) {
        err = FMW_ENOMEM;
        goto out;
    }

    json_t *rkind = json_object_get(req, "kind");
    const char *group = json_string_value(json_object_get(rkind, "group"));
    const char *k = json_string_value(json_object_get(rkind, "kind"));
    const char *operation = json_string_value(json_object_get(req, "operation"));
    const char *sub = json_string_value(json_object_get(req, "subResource"));
    json_t *object = json_object_get(req, "object");
    const char *ns = json_string_value(json_object_get(req, "namespace"));
    json_t *meta = json_object_get(object, "metadata");
    if (!ns)
        ns = json_string_value(json_object_get(meta, "namespace"));
    copy_text(dec->kind, sizeof dec->kind, k);
    copy_text(dec->operation, sizeof dec->operation, operation);
    copy_text(dec->namespace_, sizeof dec->namespace_, ns);
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name || !*name)
        name = json_string_value(json_object_get(meta, "generateName"));
    copy_text(dec->name, sizeof dec->name, name);
    dec->dry_run = json_is_true(json_object_get(req, "dryRun"));

    /* What is left alone: subresources, objects that are no pod, and everything in mode off. */
    if (!k || !operation || (sub && *sub) || !json_is_object(object) || cfg->mode == FMW_MODE_OFF)
        goto answer;
    bool is_pod = strcmp(k, "Pod") == 0 && (!group || !*group);
    const char *template_path = NULL;
    for (size_t i = 0; i < sizeof WORKLOADS / sizeof WORKLOADS[0] && !is_pod; i++) {
        if (group && strcmp(group, WORKLOADS[i].group) == 0 && strcmp(k, WORKLOADS[i].kind) == 0)
            template_path = WORKLOADS[i].template_path;
    }
    if (!is_pod && !template_path)
        goto answer;
    if (is_pod ? strcmp(operation, "CREATE") != 0
               : (strcmp(operation, "CREATE") != 0 && strcmp(operation, "UPDATE") != 0) ||
                     cfg->workloads == FMW_WORKLOADS_OFF)
        goto answer;
    json_t *pod = is_pod ? object : at_path(object, template_path);
    if (!json_is_object(pod))
        goto answer;
    json_t *ann = json_object_get(json_object_get(pod, "metadata"), "annotations");
    if (is_pod && json_object_get(ann, "kubernetes.io/config.mirror"))
        goto answer;

    /* The mode: the pod's (or template's, or workload's) annotation, else the global one. */
    enum fmw_mode mode = cfg->mode;
    const char *m = json_string_value(json_object_get(ann, FMW_ANN_MODE));
    if (!m && !is_pod)
        m = json_string_value(json_object_get(json_object_get(meta, "annotations"), FMW_ANN_MODE));
    if (m && !fmw_mode_parse(m, &mode))
        add_warning(a.warnings, NULL,
                    "annotation " FMW_ANN_MODE " '%.32s' is not enforce, "
                    "dry-run or off; using %s",
                    m, mode_name(cfg->mode));
    if (mode == FMW_MODE_OFF)
        goto answer;

    err = fmw_podspec_plan(pod, ns, is_pod ? "" : template_path, &cfg->podspec, src, &plan);
    if (!err)
        err = answer_plan(cfg, mode, !is_pod, &plan, &a, dec);
    if (!err && mode == FMW_MODE_DRY_RUN && plan.status != FMW_PLAN_SKIP)
        json_object_set_new(a.audit, "mode", fmw_json_text("dry-run"));
answer:
    if (!err) {
        err = finish(review, &a, out);
        if (err == FMW_ETOOBIG && json_object_get(a.response, "patch")) {
            /* The answer with its patch would pass the response cap (`out`'s): without it, the
             * pod is admitted as written and the warning says why, rather than an error the
             * API server could only meet with failurePolicy. */
            json_object_del(a.response, "patch");
            json_object_del(a.response, "patchType");
            /* The warnings said what the patch changes: none of it happens now. */
            json_array_clear(a.warnings);
            add_warning(a.warnings, NULL,
                        "the patch would make the answer larger than the %zu KiB response cap; "
                        "pod unchanged",
                        out->max >> 10);
            json_object_set_new(a.audit, "decision", fmw_json_text("too-large"));
            json_object_del(a.audit, "resolved");
            dec->outcome = "too-large";
            dec->changes = 0;
            fmw_buf_reset(out);
            err = finish(review, &a, out);
        }
    }
out:
    if (err && err != FMW_EINVAL && d && !d->msg)
        fmw_diag_set(d, err, "cannot build the response: %s", fmw_strerror(err));
    fmw_plan_cleanup(&plan);
    json_decref(a.warnings);
    json_decref(a.audit);
    json_decref(review);
    if (!fmw_arena_holds_all())
        json_decref(in);
    fmw_arena_end();
    return err;
}
