/*
 * The plan for one pod: find the JobManager or TaskManager container, its Flink version and
 * configuration, resolve it, and write the smallest JSON Patch that makes the container memory
 * equal Flink's total process memory and the winning JVM memory flags equal Flink's.
 */
#include "pkg/podspec/podspec_int.h"

#include "pkg/memsize/memsize.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ENV 4096

static const char *const FLAG_LABEL[FLAG_COUNT] = {"-Xmx", "-Xms", "-XX:MaxMetaspaceSize",
                                                   "-XX:MaxDirectMemorySize"};

void fmw_plan_init(struct fmw_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->status = FMW_PLAN_SKIP;
    plan->container_index = -1;
    plan->role = FMW_ROLE_JOBMANAGER;
    fmw_jm_result_init(&plan->jm);
    fmw_tm_result_init(&plan->tm);
    plan->patch = json_array();
    plan->changes = json_array();
    plan->notes = json_array();
}

void fmw_plan_cleanup(struct fmw_plan *plan)
{
    fmw_jm_result_cleanup(&plan->jm);
    fmw_tm_result_cleanup(&plan->tm);
    fmw_diag_cleanup(&plan->message);
    json_decref(plan->patch);
    json_decref(plan->changes);
    json_decref(plan->notes);
    plan->patch = plan->changes = plan->notes = NULL;
}

uint64_t fmw_plan_total_process(const struct fmw_plan *plan)
{
    return plan->role == FMW_ROLE_TASKMANAGER ? plan->tm.spec.total_process
                                              : plan->jm.spec.total_process;
}

const char *fmw_plan_jvm_args(const struct fmw_plan *plan)
{
    return plan->role == FMW_ROLE_TASKMANAGER ? plan->tm.jvm_args : plan->jm.jvm_args;
}

enum fmw_err fmw_plan_format_block(const struct fmw_plan *plan, struct fmw_buf *out)
{
    return plan->role == FMW_ROLE_TASKMANAGER ? fmw_tmmem_format_block(&plan->tm.spec, out)
                                              : fmw_jmmem_format_block(&plan->jm.spec, out);
}

const char *fmw_role_name(enum fmw_role role)
{
    return role == FMW_ROLE_TASKMANAGER ? "taskmanager" : "jobmanager";
}

bool fmw_roles_parse(const char *text, unsigned *roles)
{
    unsigned v = 0;
    const char *p = text ? text : "";
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 10 && strncmp(p, "jobmanager", n) == 0)
            v |= FMW_ROLE_JOBMANAGER;
        else if (n == 11 && strncmp(p, "taskmanager", n) == 0)
            v |= FMW_ROLE_TASKMANAGER;
        else
            return false;
        p += n + (p[n] ? 1 : 0);
    }
    if (!v)
        return false;
    *roles = v;
    return true;
}

enum fmw_err fmw_json_pointer_append(struct fmw_buf *pointer, const char *segment)
{
    enum fmw_err err = fmw_buf_addc(pointer, '/');
    for (const char *p = segment; *p && !err; p++) {
        if (*p == '~')
            err = fmw_buf_adds(pointer, "~0");
        else if (*p == '/')
            err = fmw_buf_adds(pointer, "~1");
        else
            err = fmw_buf_addc(pointer, *p);
    }
    return err;
}

json_t *fmw_json_text(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    return fmw_utf8_valid(s, n) ? json_stringn_nocheck(s, n) : NULL;
}

/* A version token of a tag ("1.16.1", "v1.17", "2.0.0"), as fmw_flink_version_parse reads it. */
static bool version_token(const char *tok, size_t n, struct fmw_flink_version *v)
{
    char t[32];
    if (n > 0 && (tok[0] == 'v' || tok[0] == 'V')) {
        tok++;
        n--;
    }
    if (n == 0 || n >= sizeof t)
        return false;
    memcpy(t, tok, n);
    t[n] = '\0';
    /* The whole token: "1.16.1" yes, "1.16.1rc" or "2.12x" no. */
    for (size_t i = 0; i < n; i++) {
        if (!(t[i] == '.' || (t[i] >= '0' && t[i] <= '9')))
            return false;
    }
    return fmw_flink_version_parse(t, v);
}

bool fmw_podspec_image_version(const char *image, struct fmw_flink_version *v)
{
    if (!image)
        return false;
    /* name[:tag][@digest]: the digest names bytes, the tag (when kept beside it) the version. */
    char ref[512];
    snprintf(ref, sizeof ref, "%s", image);
    char *at = strchr(ref, '@');
    if (at)
        *at = '\0';
    const char *slash = strrchr(ref, '/');
    const char *repo = slash ? slash + 1 : ref;
    const char *colon = strchr(repo, ':');
    if (!colon)
        return false;
    size_t name_len = (size_t)(colon - repo);
    bool flink_image = false, operator_image = false;
    for (size_t i = 0; i + 5 <= name_len; i++)
        flink_image = flink_image || strncasecmp(repo + i, "flink", 5) == 0;
    for (size_t i = 0; i + 8 <= name_len; i++)
        operator_image = operator_image || strncasecmp(repo + i, "operator", 8) == 0;
    /*
     * The tag's tokens between '-' and '_'. Flink's version is the token right after a "flink"
     * token, or the rest of a "flinkX.Y" token ("jobs:2.5.0-flink-1.17.2", "app:flink1.18"),
     * in any image; else, in an image of Flink, the first token that is a version
     * ("1.16.1-scala_2.12-java11", "1.18.1-debian-12-r0"). A version tag of some other image
     * says nothing about Flink (an operator's image has the operator's version), nor does the
     * Scala version after "scala" ("scala_2.12-java11" is the newest Flink built for 2.12).
     */
    struct fmw_flink_version first = {0, 0, -1};
    bool have_first = false, after_flink = false, after_scala = false;
    for (const char *tag = colon + 1; *tag;) {
        size_t n = strcspn(tag, "-_");
        struct fmw_flink_version t;
        if (after_flink && version_token(tag, n, v))
            return true;
        if (n > 5 && strncasecmp(tag, "flink", 5) == 0 && version_token(tag + 5, n - 5, v))
            return true;
        if (!have_first && flink_image && !operator_image && !after_scala &&
            version_token(tag, n, &t)) {
            first = t;
            have_first = true;
        }
        after_flink = n == 5 && strncasecmp(tag, "flink", 5) == 0;
        after_scala = n == 5 && strncasecmp(tag, "scala", 5) == 0;
        tag += n;
        if (*tag)
            tag++;
    }
    if (have_first)
        *v = first;
    return have_first;
}

bool fmw_headroom_policy_parse(const char *text, enum fmw_headroom_policy *v)
{
    if (text && strcmp(text, "deliberate") == 0)
        *v = FMW_HEADROOM_DELIBERATE;
    else if (text && strcmp(text, "keep") == 0)
        *v = FMW_HEADROOM_KEEP;
    else if (text && strcmp(text, "remove") == 0)
        *v = FMW_HEADROOM_REMOVE;
    else
        return false;
    return true;
}

/* Everything one plan works with. */
struct ctx {
    json_t *pod, *spec, *container, *annotations;
    const char *ns, *prefix;
    const struct fmw_podspec_options *opt;
    const struct fmw_cm_source *src;
    struct fmw_plan *plan;
    struct env_var *env;
    size_t nenv;
    json_t *env_from; /* holds the names and values of variables from envFrom ConfigMaps */
    bool env_array_exists;
    struct cmdline cl;
    struct launch launch;
    struct fmw_conf file_conf;   /* the conf file as the scripts read it */
    const struct fmw_conf *conf; /* what BashJavaUtils reads: the file and the -D that reach it */
    struct fmw_buf base;         /* JSON Pointer of the container */
    bool standard_yaml;          /* the conf file read is config.yaml, standard YAML */
    uint64_t pod_size;           /* sized from the pod: the container's limit or request in bytes */
    /* Sized from the pod, but the container has no such size yet: the configuration's size is
     * given to it first, and the pod follows it from then on. */
    enum fmw_sizing sizing_later;
    /* Why the pod cannot follow its size although its launcher could pass it on, or NULL. */
    const char *follow_blocked;
    /* The word index of the "-D" of the webhook's own pair in the command, or -1. */
    long own_at;
    /* docker-entrypoint.sh writes FLINK_PROPERTIES into the file read at start (the image's own).
     */
    bool properties_write;
    /* The pod (or the webhook's setting) asks for sizing from the pod, applied or not. */
    bool sizing_asked;
};

static enum fmw_err change(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static enum fmw_err change(struct ctx *c, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return json_array_append_new(c->plan->changes, fmw_json_text(text)) ? FMW_ENOMEM : FMW_OK;
}

static enum fmw_err note(struct ctx *c, const char *text)
{
    return json_array_append_new(c->plan->notes, fmw_json_text(text)) ? FMW_ENOMEM : FMW_OK;
}

/* Appends {"op": op, "path": base + suffix, "value": value}; `value` is stolen (may be NULL). */
static enum fmw_err op(struct ctx *c, const char *kind, const char *suffix, json_t *value)
{
    char path[2048];
    snprintf(path, sizeof path, "%s%s", fmw_buf_cstr(&c->base), suffix);
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "op", fmw_json_text(kind)) != 0 ||
        json_object_set_new(o, "path", fmw_json_text(path)) != 0 ||
        (value && json_object_set_new(o, "value", value) != 0) ||
        json_array_append_new(c->plan->patch, o) != 0) {
        if (!o)
            json_decref(value);
        return FMW_ENOMEM;
    }
    return FMW_OK;
}

/* Sets e's value to `raw` as the container gets it, expanded over the `n` entries `before` it
 * (what e owned before is freed). A valueFrom variable standing as a word could be a JVM flag:
 * the value is then as unknown as that one's. Inside a word (-Dlog.file=/logs/$(POD_NAME).log)
 * it is kept as written. */
static enum fmw_err expand_entry(struct env_var *e, const char *raw, const struct env_var *before,
                                 size_t n)
{
    char *owned = NULL;
    bool opaque = false, opaque_word = false;
    enum fmw_err err = fmw_env_expand(raw, before, n, &owned, &opaque, &opaque_word);
    if (err)
        return err;
    free(e->owned);
    e->owned = owned;
    e->opaque_ref = opaque;
    e->value = opaque_word ? NULL : owned ? owned : raw;
    return FMW_OK;
}

static bool quantity_of(json_t *v, uint64_t *bytes)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *bytes = (uint64_t)json_integer_value(v);
        return true;
    }
    return json_is_string(v) &&
           fmw_quantity_parse(fmw_str_c(json_string_value(v)), bytes, NULL) == FMW_OK;
}

/*
 * The value the kubelet gives a variable whose valueFrom is a resourceFieldRef of `resource`
 * (limits.memory or requests.memory) of this container: ceil(bytes / divisor), divisor 1 by
 * default (k8s.io/kubernetes pkg/api/v1/resource ExtractContainerResourceValue,
 * convertResourceMemoryToString, in float64 as there). False for any other reference. Used to
 * tell whether the webhook's own FMW_SIZE_ENV entry says what the sizing needs.
 */
static bool resource_field_bytes(json_t *container, json_t *value_from, const char *resource,
                                 uint64_t *out)
{
    json_t *ref = json_object_get(value_from, "resourceFieldRef");
    const char *r = json_string_value(json_object_get(ref, "resource"));
    const char *name = json_string_value(json_object_get(ref, "containerName"));
    const char *own = json_string_value(json_object_get(container, "name"));
    if (!resource || !r || strcmp(r, resource) != 0 || (name && *name && own && strcmp(name, own)))
        return false;
    const char *section = strncmp(resource, "limits.", 7) == 0 ? "limits" : "requests";
    json_t *q = json_object_get(json_object_get(json_object_get(container, "resources"), section),
                                "memory");
    json_t *div = json_object_get(ref, "divisor");
    uint64_t bytes, divisor = 1;
    if (!quantity_of(q, &bytes) || (div && (!quantity_of(div, &divisor) || divisor == 0)))
        return false;
    *out = (uint64_t)ceil((double)bytes / (double)divisor);
    return true;
}

static enum fmw_err build_env(json_t *container, struct env_var **out, size_t *n)
{
    json_t *env = json_object_get(container, "env");
    size_t count = json_is_array(env) ? json_array_size(env) : 0;
    if (count > MAX_ENV)
        return FMW_ETOOBIG;
    *out = fmw_calloc(count, sizeof **out);
    if (!*out)
        return FMW_ENOMEM;
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_array_get(env, i);
        const char *name = json_string_value(json_object_get(e, "name"));
        if (!name)
            continue;
        json_t *value = json_object_get(e, "value");
        const char *v = json_is_string(value) ? json_string_value(value) : NULL;
        if (!v && !json_object_get(e, "valueFrom"))
            v = ""; /* an env var without value is the empty string */
        struct env_var *var = &(*out)[*n];
        *var = (struct env_var){name, v, (int)i, NULL, false};
        enum fmw_err err = v ? expand_entry(var, v, *out, *n) : FMW_OK;
        if (err)
            return err;
        (*n)++;
    }
    return FMW_OK;
}

/* The env entries again, over the envFrom variables before them (the kubelet's order): `env`
 * holds n_from envFrom variables, then the container's entries. */
static enum fmw_err expand_env_again(struct env_var *env, size_t n_from, size_t n,
                                     json_t *container)
{
    json_t *array = json_object_get(container, "env");
    for (size_t k = n_from; k < n; k++) {
        json_t *value = json_object_get(json_array_get(array, (size_t)env[k].index), "value");
        enum fmw_err err = json_is_string(value)
                               ? expand_entry(&env[k], json_string_value(value), env, k)
                               : FMW_OK;
        if (err)
            return err;
    }
    return FMW_OK;
}

/* The webhook's own -D: "<role>.memory.process.size=$(FMW_SIZE_ENV)b". */
static void own_prop(const struct ctx *c, char out[128])
{
    snprintf(out, 128, "%s=$(" FMW_SIZE_ENV ")b", fmw_process_key(c->plan->role));
}

/* The resource a pod sized from itself reads its size from (its FMW_SIZE_ENV's), else NULL. */
static const char *size_resource(const struct ctx *c)
{
    return c->plan->sizing == FMW_SIZING_LIMIT     ? "limits.memory"
           : c->plan->sizing == FMW_SIZING_REQUEST ? "requests.memory"
                                                   : NULL;
}

static const char *annotation(json_t *annotations, const char *key)
{
    return json_string_value(json_object_get(annotations, key));
}

/* Loads env, words and launcher of container `idx` into c. */
static enum fmw_err load_container(struct ctx *c, size_t idx)
{
    fmw_cmdline_cleanup(&c->cl);
    fmw_env_free(c->env, c->nenv);
    c->env = NULL;
    c->nenv = 0;
    c->container = json_array_get(json_object_get(c->spec, "containers"), idx);
    c->env_array_exists = json_is_array(json_object_get(c->container, "env"));
    enum fmw_err err = build_env(c->container, &c->env, &c->nenv);
    if (!err)
        err = fmw_cmdline_build(c->container, c->env, c->nenv, &c->cl);
    if (!err)
        fmw_launch_detect(&c->cl, &c->launch);
    const char *image = json_string_value(json_object_get(c->container, "image"));
    if (!err && !c->cl.has_command && fmw_launch_bitnami_image(image)) {
        const struct env_var *mode = fmw_env_find(c->env, c->nenv, "FLINK_MODE");
        if (mode && !mode->value)
            err = note(c, "FLINK_MODE comes from valueFrom: which process Bitnami's image "
                          "starts is not known here");
        else
            fmw_launch_bitnami(&c->cl, mode ? mode->value : NULL, &c->launch);
    }
    return err;
}

/*
 * envFrom of the chosen container: each ConfigMap's keys become variables (with the source's
 * prefix), later sources over earlier ones, and `env` over them all, as the kubelet does. They
 * come before the env entries, with index -1, so a fix of one adds an `env` entry. A Secret's
 * keys are not read, which is said. A ConfigMap that cannot be read makes the plan UNREADABLE.
 * Then the words and the launcher are made again, since $(VAR) may name these variables.
 */
static enum fmw_err add_env_from(struct ctx *c)
{
    json_t *from = json_object_get(c->container, "envFrom");
    if (!json_is_array(from) || json_array_size(from) == 0)
        return FMW_OK;
    c->env_from = json_array(); /* [{"names": [...], "data": {...}}, ...] in order */
    if (!c->env_from)
        return FMW_ENOMEM;
    size_t total = 0, i;
    json_t *src;
    json_array_foreach(from, i, src)
    {
        json_t *secret = json_object_get(src, "secretRef");
        if (json_is_object(secret)) {
            const char *sn = json_string_value(json_object_get(secret, "name"));
            char text[320];
            snprintf(text, sizeof text, "envFrom Secret %.253s is not read", sn ? sn : "?");
            enum fmw_err err = note(c, text);
            if (err)
                return err;
            continue;
        }
        json_t *ref = json_object_get(src, "configMapRef");
        const char *name = json_string_value(json_object_get(ref, "name"));
        if (!name)
            continue;
        json_t *data = NULL;
        struct fmw_diag d = FMW_DIAG_INIT;
        enum fmw_err rc = c->src && c->src->get ? c->src->get(c->src->ctx, c->ns, name, &data, &d)
                                                : fmw_diag_set(&d, FMW_EIO, "no ConfigMap source");
        if (rc == FMW_ENOTFOUND && json_is_true(json_object_get(ref, "optional"))) {
            fmw_diag_cleanup(&d);
            continue;
        }
        if (rc) {
            c->plan->status = FMW_PLAN_UNREADABLE;
            fmw_diag_set(&c->plan->message, rc, "envFrom ConfigMap %s/%s: %s", c->ns, name,
                         rc == FMW_ENOTFOUND ? "does not exist" : fmw_diag_msg(&d));
            fmw_diag_cleanup(&d);
            return FMW_OK;
        }
        fmw_diag_cleanup(&d);
        const char *prefix = json_string_value(json_object_get(src, "prefix"));
        json_t *names = json_array();
        json_t *entry = json_pack("{s:o,s:o}", "names", names, "data", data);
        if (!entry || json_array_append_new(c->env_from, entry))
            return FMW_ENOMEM;
        const char *key;
        json_t *v;
        json_object_foreach(data, key, v)
        {
            if (!json_is_string(v))
                continue;
            json_t *full = prefix ? json_sprintf("%s%s", prefix, key) : fmw_json_text(key);
            if (!full || json_array_append_new(names, full))
                return FMW_ENOMEM;
            total++;
        }
    }
    if (total == 0)
        return FMW_OK;
    if (total + c->nenv > MAX_ENV)
        return FMW_ETOOBIG;
    struct env_var *env = fmw_calloc(total + c->nenv, sizeof *env);
    if (!env)
        return FMW_ENOMEM;
    size_t n = 0;
    json_t *entry;
    json_array_foreach(c->env_from, i, entry)
    {
        json_t *names = json_object_get(entry, "names");
        size_t k = 0;
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(entry, "data"), key, v)
        {
            if (!json_is_string(v))
                continue;
            env[n++] = (struct env_var){json_string_value(json_array_get(names, k++)),
                                        json_string_value(v), -1, NULL, false};
        }
    }
    memcpy(env + n, c->env, c->nenv * sizeof *env);
    free(c->env); /* the entries (and what they own) moved */
    c->env = env;
    c->nenv += n;
    enum fmw_err err = expand_env_again(c->env, n, c->nenv, c->container);
    fmw_cmdline_cleanup(&c->cl);
    if (!err)
        err = fmw_cmdline_build(c->container, c->env, c->nenv, &c->cl);
    if (!err)
        fmw_launch_detect(&c->cl, &c->launch);
    return err;
}

static const char *label(struct ctx *c, const char *key)
{
    json_t *v =
        json_object_get(json_object_get(json_object_get(c->pod, "metadata"), "labels"), key);
    return json_string_value(v);
}

/*
 * The role of a container whose command does not say (it is started some way the webhook does
 * not model): its conventional name, else the pod's component label, which Flink's native
 * Kubernetes pods (KubernetesTaskManagerFactory: component=taskmanager), the Flink Kubernetes
 * Operator's and the flink-on-k8s-operator's carry; else a JobManager, as before TaskManagers
 * were sized.
 */
static enum fmw_role unmodelled_role(struct ctx *c, const char *name)
{
    if (strcmp(name, "taskmanager") == 0)
        return FMW_ROLE_TASKMANAGER;
    if (strcmp(name, "jobmanager") == 0)
        return FMW_ROLE_JOBMANAGER;
    const char *component = label(c, "component");
    return component && strcmp(component, "taskmanager") == 0 ? FMW_ROLE_TASKMANAGER
                                                              : FMW_ROLE_JOBMANAGER;
}

/*
 * Which container: the annotation, then a conventional name (flink-docker's and Flink's docs'
 * jobmanager and taskmanager, native Kubernetes' flink-main-container), then a command line that
 * starts a JobManager or a TaskManager. Its role comes from how it starts. Only roles the webhook
 * sizes are looked for; where a pod runs both, its JobManager is the one sized (one container
 * per plan, as before TaskManagers were sized).
 */
static enum fmw_err choose_container(struct ctx *c, bool *found)
{
    json_t *containers = json_object_get(c->spec, "containers");
    size_t n = json_is_array(containers) ? json_array_size(containers) : 0;
    const char *wanted = annotation(c->annotations, FMW_ANN_CONTAINER);
    unsigned roles = c->opt->roles ? c->opt->roles : FMW_ROLES_ALL;
    enum fmw_err err = FMW_OK;
    *found = false;
    for (int pass = 0; pass < 3 && !*found && !err; pass++) {
        /* The first container of each role in this pass (SIZE_MAX: none). */
        size_t first_jm = SIZE_MAX, first_tm = SIZE_MAX, loaded = SIZE_MAX;
        for (size_t i = 0; i < n && !err; i++) {
            const char *name =
                json_string_value(json_object_get(json_array_get(containers, i), "name"));
            if (!name)
                continue;
            if (pass == 0 && !(wanted && strcmp(name, wanted) == 0))
                continue;
            if (pass == 1 && strcmp(name, "jobmanager") != 0 && strcmp(name, "taskmanager") != 0 &&
                strcmp(name, "flink-main-container") != 0)
                continue;
            err = load_container(c, i);
            if (err)
                break;
            loaded = i;
            unsigned launched = fmw_launch_role(&c->launch);
            if (pass > 0 && (pass == 1 ? c->launch.kind == L_OTHER : launched == 0))
                continue;
            enum fmw_role role = launched ? (enum fmw_role)launched : unmodelled_role(c, name);
            if (pass == 0) {
                /* The annotation names one container, of whichever role. */
                *found = true;
                c->plan->role = role;
                c->plan->container_index = (int)i;
                snprintf(c->plan->container, sizeof c->plan->container, "%s", name);
                break;
            }
            if (!(roles & role))
                continue;
            if (role == FMW_ROLE_JOBMANAGER && first_jm == SIZE_MAX)
                first_jm = i;
            else if (role == FMW_ROLE_TASKMANAGER && first_tm == SIZE_MAX)
                first_tm = i;
            if (first_jm != SIZE_MAX)
                break; /* a JobManager comes first whatever follows */
        }
        size_t pick = first_jm != SIZE_MAX ? first_jm : first_tm;
        if (!err && pass > 0 && pick != SIZE_MAX) {
            if (loaded != pick)
                err = load_container(c, pick); /* the last one loaded was another */
            if (!err) {
                unsigned launched = fmw_launch_role(&c->launch);
                const char *name =
                    json_string_value(json_object_get(json_array_get(containers, pick), "name"));
                *found = true;
                c->plan->role = launched ? (enum fmw_role)launched : unmodelled_role(c, name);
                c->plan->container_index = (int)pick;
                snprintf(c->plan->container, sizeof c->plan->container, "%s", name);
            }
        }
        if (pass == 0 && wanted && !*found && !err)
            err = note(c, "annotation " FMW_ANN_CONTAINER " names no container of this pod");
    }
    return err;
}

static void choose_version(struct ctx *c)
{
    struct fmw_plan *p = c->plan;
    const char *ann = annotation(c->annotations, FMW_ANN_FLINK_VERSION);
    if (ann) {
        if (fmw_flink_version_parse(ann, &p->version)) {
            snprintf(p->version_source, sizeof p->version_source, "annotation");
            return;
        }
        note(c, "annotation " FMW_ANN_FLINK_VERSION " is not a Flink version from 1.11 to 2.x");
    }
    const char *image = json_string_value(json_object_get(c->container, "image"));
    if (fmw_podspec_image_version(image, &p->version)) {
        snprintf(p->version_source, sizeof p->version_source, "image tag");
        return;
    }
    /* latest, no tag, a digest alone, a tag without a version: a guess, and said to be one. */
    p->version = c->opt->default_version;
    p->version_assumed = true;
    snprintf(p->version_source, sizeof p->version_source, "assumed");
}

/*
 * An assumed line decides which file the JobManager reads when another line would read another
 * one (flink-conf.yaml alone up to 1.18, flink-conf.yaml first in 1.19/1.20, config.yaml alone
 * from 2.0). The configuration is gathered again as each other kind of line would, and a
 * difference is said.
 */
static enum fmw_err check_assumed_source(struct ctx *c, const struct source_in *in)
{
    static const struct fmw_flink_version OTHERS[] = {{1, 18, -1}, {1, 20, -1}, {2, 0, -1}};
    struct fmw_plan *p = c->plan;
    enum fmw_err err = FMW_OK;
    bool said = false;
    /* Only a remark: it gets a light budget of its own and leaves the pod's untouched. */
    struct fmw_expand_saved saved;
    fmw_expand_budget_save(&saved);
    fmw_expand_budget_begin(FMW_EXPAND_LIGHT_BYTES, FMW_EXPAND_LIGHT_SCANS,
                            fmw_expand_budget_deadline());
    for (size_t i = 0; i < sizeof OTHERS / sizeof OTHERS[0] && !err && !said; i++) {
        struct fmw_flink_version alt = OTHERS[i];
        bool same_kind =
            fmw_flink_reads_legacy_file(alt) == fmw_flink_reads_legacy_file(p->version) &&
            fmw_flink_reads_standard_file(alt) == fmw_flink_reads_standard_file(p->version);
        if (same_kind)
            continue;
        struct source_in other = *in;
        other.version = alt;
        other.yaml_out = NULL; /* the pod's own reading stands */
        other.properties_write_out = NULL;
        struct fmw_conf scratch;
        fmw_conf_init(&scratch);
        struct fmw_diag msg = FMW_DIAG_INIT;
        json_t *notes = json_array();
        char source[FMW_PLAN_TEXT];
        enum fmw_plan_status st =
            notes ? fmw_source_gather(&other, &scratch, source, &msg, notes) : FMW_PLAN_UNREADABLE;
        if (!notes)
            err = FMW_ENOMEM;
        else if (st == FMW_PLAN_RESOLVED && strcmp(source, p->source) != 0) {
            char text[FMW_PLAN_TEXT * 3];
            snprintf(text, sizeof text,
                     "Flink %d.%d is assumed (the image tag names no version; set "
                     "annotation " FMW_ANN_FLINK_VERSION
                     ") and decides the file: %d.%d reads %s, %d.%d would "
                     "read %s",
                     p->version.major, p->version.minor, p->version.major, p->version.minor,
                     p->source, alt.major, alt.minor, source);
            err = note(c, text);
            said = true;
        }
        json_decref(notes);
        fmw_diag_cleanup(&msg);
        fmw_conf_cleanup(&scratch);
    }
    fmw_expand_budget_end();
    fmw_expand_budget_restore(&saved);
    return err;
}

/* resources.<section>.memory ("limits", "requests") in bytes; false (and 0) when unset or not a
 * quantity. */
static bool memory_of(json_t *resources, const char *section, uint64_t *bytes)
{
    *bytes = 0;
    return quantity_of(json_object_get(json_object_get(resources, section), "memory"), bytes);
}

/* limits.memory and requests.memory: set `key` of resources to `q` when it differs. */
static enum fmw_err set_resource(struct ctx *c, json_t *resources, const char *key, const char *q,
                                 const char *what)
{
    json_t *section = json_object_get(resources, key);
    json_t *cur = json_object_get(section, "memory");
    char suffix[64];
    const char *was = json_is_string(cur) ? json_string_value(cur) : "unset";
    enum fmw_err err;
    if (!json_is_object(section)) {
        snprintf(suffix, sizeof suffix, "/resources/%s", key);
        err = op(c, "add", suffix, json_pack("{s:s}", "memory", q));
    } else {
        snprintf(suffix, sizeof suffix, "/resources/%s/memory", key);
        err = op(c, cur ? "replace" : "add", suffix, fmw_json_text(q));
    }
    return err ? err : change(c, "%s %.64s -> %s", what, was, q);
}

/* A container's memory request as the scheduler counts it: the request, else the limit. */
static uint64_t memory_request_of(json_t *container)
{
    json_t *resources = json_object_get(container, "resources");
    uint64_t v = 0;
    if (quantity_of(json_object_get(json_object_get(resources, "requests"), "memory"), &v) ||
        quantity_of(json_object_get(json_object_get(resources, "limits"), "memory"), &v))
        return v;
    return 0;
}

/*
 * Pod-level resources (spec.resources, PodLevelResources): the API server refuses a container
 * limit above the pod's limit and a pod request below the containers' requests together (the
 * regular containers' sum, or the largest init container's if more). Would the new limit and
 * request of the JobManager container break either? Then the pod is left as it is and the
 * plan says why: the pod-level budget is the user's to raise.
 */
/* The plan UNREADABLE: "pod memory WHAT <as written> < WHOSE <size needed>". */
static bool pod_budget_short(struct ctx *c, const char *what, json_t *given, uint64_t have,
                             const char *whose, uint64_t want)
{
    char want_q[FMW_MEMSIZE_STRLEN], have_q[FMW_MEMSIZE_STRLEN];
    fmw_quantity_format(want, want_q);
    fmw_quantity_format(have, have_q);
    c->plan->status = FMW_PLAN_UNREADABLE;
    fmw_diag_set(&c->plan->message, FMW_EINVAL, "pod memory %s %.32s < %s %s", what,
                 json_is_string(given) ? json_string_value(given) : have_q, whose, want_q);
    return false;
}

static bool pod_level_fits(struct ctx *c, uint64_t new_limit, uint64_t new_request)
{
    json_t *pod_res = json_object_get(c->spec, "resources");
    json_t *lim = json_object_get(json_object_get(pod_res, "limits"), "memory");
    json_t *req = json_object_get(json_object_get(pod_res, "requests"), "memory");
    uint64_t pod_limit, pod_request;
    if (quantity_of(lim, &pod_limit) && new_limit > pod_limit)
        return pod_budget_short(c, "limit", lim, pod_limit, "Flink's", new_limit);
    if (!quantity_of(req, &pod_request))
        return true;
    uint64_t sum = 0, init_max = 0;
    size_t i;
    json_t *ct;
    json_array_foreach(json_object_get(c->spec, "containers"), i, ct)
    {
        sum += (int)i == c->plan->container_index ? new_request : memory_request_of(ct);
    }
    json_array_foreach(json_object_get(c->spec, "initContainers"), i, ct)
    {
        const char *rp = json_string_value(json_object_get(ct, "restartPolicy"));
        uint64_t r = memory_request_of(ct);
        if (rp && strcmp(rp, "Always") == 0)
            sum += r; /* a sidecar runs beside the others */
        else if (r > init_max)
            init_max = r;
    }
    uint64_t need = sum > init_max ? sum : init_max;
    return need <= pod_request ||
           pod_budget_short(c, "request", req, pod_request, "containers'", need);
}

/*
 * Headroom a known operator leaves below the limit on purpose: why, or NULL.
 *  - The Spotify/GCP flink-on-k8s-operator (FlinkCluster) labels its pods app=flink,
 *    cluster=NAME, component=jobmanager|taskmanager and writes jobmanager.memory.process.size
 *    and taskmanager.memory.process.size as memoryProcessRatio (default 80) percent of the
 *    container's limit (controllers/flinkcluster/flinkcluster_converter.go,
 *    calProcessMemorySize).
 *  - Lyft's flinkk8soperator (FlinkApplication) labels them with the application's name
 *    (flink-app=NAME or App=NAME, pkg/controller/k8s GetAppLabel, by release), flink-app-hash and
 * flink-deployment-type=jobmanager|taskmanager, and sizes Flink from the request less
 * systemMemoryFraction (default 0.2) (pkg/controller/flink/config.go). Flink's native mode and the
 * Flink Kubernetes Operator ask for headroom through kubernetes.<role>.memory.limit-factor instead,
 * which is Flink's limit itself.
 */
static const char *deliberate_headroom(struct ctx *c)
{
    const char *role = fmw_role_name(c->plan->role);
    const char *app = label(c, "app"), *cluster = label(c, "cluster");
    const char *component = label(c, "component");
    if (app && strcmp(app, "flink") == 0 && cluster && component && strcmp(component, role) == 0)
        return "the flink-on-k8s-operator (labels app=flink, cluster) sizes Flink at a share of "
               "the limit on purpose";
    const char *type = label(c, "flink-deployment-type");
    bool lyft_app = label(c, "flink-app") || label(c, "App") || label(c, "flink-app-hash");
    if (lyft_app && type && strcmp(type, role) == 0)
        return "Lyft's flinkk8soperator (label flink-deployment-type) sizes Flink below its "
               "request on purpose";
    return NULL;
}

/* The headroom policy of this pod: its annotation, else the webhook's. */
static enum fmw_headroom_policy headroom_policy(struct ctx *c)
{
    enum fmw_headroom_policy v = c->opt->headroom;
    const char *ann = annotation(c->annotations, FMW_ANN_HEADROOM);
    if (ann && !fmw_headroom_policy_parse(ann, &v))
        note(c, "annotation " FMW_ANN_HEADROOM " is not deliberate, keep or remove: ignored");
    return v;
}

/*
 * Flink's own limit: kubernetes.jobmanager.memory.limit-factor (JobManagers) or
 * kubernetes.taskmanager.memory.limit-factor (TaskManagers) in the configuration the process
 * reads (Flink's native mode and the Flink Kubernetes Operator write it there, the operator from
 * a FlinkDeployment's limits and requests) makes the limit that many times the process size and
 * leaves the request at the process size; both roles by KubernetesUtils.getResourceRequirements.
 * Sets p->limit_factor when it applies.
 */
static enum fmw_err flink_limit(struct ctx *c, uint64_t *limit, uint64_t *flink_request)
{
    struct fmw_plan *p = c->plan;
    uint64_t total = fmw_plan_total_process(p);
    const char *key =
        p->role == FMW_ROLE_TASKMANAGER ? FMW_TM_LIMIT_FACTOR_KEY : FMW_JM_LIMIT_FACTOR_KEY;
    *limit = total;
    *flink_request = total;
    if (fmw_flink_version_cmp(p->version, FMW_JM_LIMIT_FACTOR_SINCE) < 0 ||
        !fmw_conf_has(c->conf, key))
        return FMW_OK;
    double factor;
    struct fmw_diag d = FMW_DIAG_INIT;
    char text[FMW_PLAN_TEXT];
    enum fmw_err err = FMW_OK;
    if (fmw_conf_get_double(c->conf, key, 1.0, &factor, NULL, &d) != FMW_OK) {
        snprintf(text, sizeof text, "%s not applied: %s", key, fmw_diag_msg(&d));
        err = note(c, text);
    } else if (!(factor >= 1.0)) {
        /* KubernetesJobManagerParameters.getJobManagerMemoryLimitFactor and
         * KubernetesTaskManagerParameters.getMemoryLimitFactor: checkArgument >= 1. */
        char num[FMW_MEMSIZE_STRLEN];
        fmw_java_double_str(factor, num);
        snprintf(text, sizeof text, "%s %s is below 1, which Flink refuses: not applied", key, num);
        err = note(c, text);
    } else {
        uint64_t req, lim;
        if (fmw_jm_kubernetes_memory(total, factor, &req, &lim) && lim > total) {
            *limit = lim;
            *flink_request = req;
            p->limit_factor = factor;
        }
    }
    fmw_diag_cleanup(&d);
    return err;
}

/*
 * Sized from the pod: the size it was sized from stays as written. From its limit, the request
 * is the pod's too (a person's, a chart's or the VerticalPodAutoscaler's: raising it to the
 * limit would fight the autoscaler), set to the limit only where there is none; from its
 * request, a limit the pod sets is the headroom it asks for, and one it lacks is Flink's (the
 * request times Flink's limit factor where the configuration sets one).
 */
static enum fmw_err plan_resources_from_pod(struct ctx *c)
{
    struct fmw_plan *p = c->plan;
    json_t *resources = json_object_get(c->container, "resources");
    uint64_t limit, request;
    bool has_limit = memory_of(resources, "limits", &limit);
    bool has_request = memory_of(resources, "requests", &request);
    bool fix_limit = false, fix_request = false;
    enum fmw_err err = FMW_OK;
    if (p->sizing == FMW_SIZING_LIMIT) {
        p->limit = limit;
        fix_request = !has_request || request > limit;
        p->request = fix_request ? limit : request;
    } else {
        uint64_t flink_lim, flink_req;
        err = flink_limit(c, &flink_lim, &flink_req);
        fix_request = !has_request; /* a template's: its pods' request is its limit */
        p->request = c->pod_size;
        fix_limit = !has_limit;
        p->limit = has_limit ? limit : flink_lim;
    }
    if (err || ((fix_limit || fix_request) && !pod_level_fits(c, p->limit, p->request)))
        return err; /* UNREADABLE, said */
    char lq[FMW_MEMSIZE_STRLEN], rq[FMW_MEMSIZE_STRLEN];
    fmw_quantity_format(p->limit, lq);
    fmw_quantity_format(p->request, rq);
    if (fix_limit)
        err = set_resource(c, resources, "limits", lq, "memory limit");
    if (!err && fix_request)
        err = set_resource(c, resources, "requests", rq, "memory request");
    return err;
}

/* Whether the VerticalPodAutoscaler's admission controller set container `index`'s memory.
 * It says what it set in the pod's annotation vpaUpdates: "Pod resources updated by <vpa>:
 * container 0: memory request, memory limit; container 1: cpu request", each container's part
 * its notes and "<resource> request|limit" joined by ", " (getContainerPatch in
 * resource_updates.go of k8s.io/autoscaler/vertical-pod-autoscaler's admission controller; a
 * note such as "memory: limit NOT set since ..." is not a change). */
static bool vpa_set_memory(const char *updates, int index)
{
    char key[32];
    snprintf(key, sizeof key, "container %d: ", index);
    const char *at = updates && index >= 0 ? strstr(updates, key) : NULL;
    if (!at)
        return false;
    at += strlen(key);
    const char *end = at + strcspn(at, ";");
    while (at < end) {
        const char *comma = strstr(at, ", ");
        size_t n = (size_t)((comma && comma < end ? comma : end) - at);
        if ((n == strlen("memory request") && strncmp(at, "memory request", n) == 0) ||
            (n == strlen("memory limit") && strncmp(at, "memory limit", n) == 0))
            return true;
        at += n + (at + n < end ? 2 : 0);
    }
    return false;
}

static enum fmw_err plan_resources(struct ctx *c)
{
    struct fmw_plan *p = c->plan;
    if (p->sizing != FMW_SIZING_CONFIG)
        return plan_resources_from_pod(c);
    uint64_t total = fmw_plan_total_process(p);
    uint64_t flink_lim = total, flink_req = total;
    /* A pod to be sized from its limit from now on gets the process size as its limit: its
     * next start gives Flink the whole limit (size_from_config). */
    enum fmw_err err =
        c->sizing_later == FMW_SIZING_LIMIT ? FMW_OK : flink_limit(c, &flink_lim, &flink_req);
    if (err)
        return err;
    json_t *resources = json_object_get(c->container, "resources");
    uint64_t limit, request;
    bool has_limit = memory_of(resources, "limits", &limit);
    bool has_request = memory_of(resources, "requests", &request);
    bool equal = c->opt->requests == FMW_REQUESTS_EQUAL;

    /* A limit above Flink's: kept where the policy or a known operator says so. */
    uint64_t want_limit = flink_lim;
    if (has_limit && limit > flink_lim) {
        enum fmw_headroom_policy policy = headroom_policy(c);
        const char *why = NULL;
        if (policy == FMW_HEADROOM_KEEP)
            why = "headroom policy keep";
        else if (policy == FMW_HEADROOM_DELIBERATE)
            why = deliberate_headroom(c);
        if (why) {
            snprintf(p->headroom_kept, sizeof p->headroom_kept, "%s", why);
            want_limit = limit;
        }
    }
    bool kept = p->headroom_kept[0] != '\0';
    uint64_t want_request;
    bool fix_request;
    if (kept) {
        /* The limit is the user's or the operator's; so is a request that covers Flink. */
        want_request = total;
        fix_request = equal && has_request && request < total;
    } else if (p->limit_factor > 0) {
        /* Flink's shape: request = process size (in whole MiB when Flink wrote it). */
        want_request = total;
        fix_request = equal ? !has_request || (request != total && request != flink_req)
                            : !has_request || request > want_limit;
    } else {
        want_request = want_limit;
        fix_request =
            equal ? !has_request || request != want_limit : !has_request || request > want_limit;
    }
    bool fix_limit = !has_limit || limit != want_limit;
    p->limit = want_limit;
    p->request = fix_request ? want_request : has_request ? request : want_limit;
    if (kept) {
        char have[FMW_MEMSIZE_STRLEN], flink[FMW_MEMSIZE_STRLEN], text[FMW_PLAN_TEXT];
        fmw_quantity_format(limit, have);
        fmw_quantity_format(flink_lim, flink);
        snprintf(text, sizeof text, "memory limit %s kept above Flink's %s: %s", have, flink,
                 p->headroom_kept);
        err = note(c, text);
        if (err)
            return err;
    }
    if ((fix_limit || fix_request) &&
        !pod_level_fits(c, want_limit, fix_request ? want_request : request))
        return FMW_OK; /* UNREADABLE, said */
    if (fix_limit || fix_request) {
        /* On the reinvocation after the VerticalPodAutoscaler's admission controller, the
         * memory it set gives way here: said, with the way to let it size Flink. */
        if (vpa_set_memory(annotation(c->annotations, "vpaUpdates"), p->container_index)) {
            /* Where the pod asked to be sized from itself, choose_sizing said why it is not. */
            err = note(c, c->sizing_asked
                              ? "the VerticalPodAutoscaler's memory (annotation vpaUpdates) gives "
                                "way to Flink's configured size"
                              : "the VerticalPodAutoscaler's memory (annotation vpaUpdates) gives "
                                "way to Flink's configured size; to let it size Flink, "
                                "annotate " FMW_ANN_SIZING ": from-limit or from-request");
            if (err)
                return err;
        }
    }

    /* Beside the figures: where Flink's limit comes from. (How to keep headroom the webhook
     * removes is in the README and the resolved annotation's limit; a warning more on every such
     * pod cost 3-6% of a review's instructions.) */
    if (fix_limit && p->limit_factor > 0) {
        char num[FMW_MEMSIZE_STRLEN], base[FMW_MEMSIZE_STRLEN], text[FMW_PLAN_TEXT];
        fmw_java_double_str(p->limit_factor, num);
        fmw_quantity_format(flink_req, base);
        snprintf(text, sizeof text, "Flink's limit: %s x %s %s", base,
                 p->role == FMW_ROLE_TASKMANAGER ? FMW_TM_LIMIT_FACTOR_KEY
                                                 : FMW_JM_LIMIT_FACTOR_KEY,
                 num);
        err = note(c, text);
        if (err)
            return err;
    }
    char lq[FMW_MEMSIZE_STRLEN], rq[FMW_MEMSIZE_STRLEN];
    fmw_quantity_format(want_limit, lq);
    fmw_quantity_format(want_request, rq);
    if (!json_is_object(resources) && (fix_limit || fix_request)) {
        json_t *v = json_pack("{s:{s:s}}", "limits", "memory", lq);
        if (v && fix_request)
            json_object_set_new(v, "requests", json_pack("{s:s}", "memory", rq));
        err = op(c, "add", "/resources", v);
        if (!err)
            err = change(c, "memory limit unset -> %s", lq);
        if (!err && fix_request)
            err = change(c, "memory request unset -> %s", rq);
        return err;
    }
    if (fix_limit)
        err = set_resource(c, resources, "limits", lq, "memory limit");
    if (!err && fix_request)
        err = set_resource(c, resources, "requests", rq, "memory request");
    return err;
}

/* ---- JVM memory flags ---- */

static char *strip_quotes(const char *s)
{
    /* config.sh strips one leading and one trailing double quote. */
    size_t n = strlen(s);
    size_t a = (n && s[0] == '"') ? 1 : 0;
    size_t b = (n > a && s[n - 1] == '"') ? n - 1 : n;
    return fmw_str_dup((struct fmw_str){s + a, b - a});
}

static const char *conf_text(const struct fmw_conf *conf, const char *key)
{
    const struct fmw_conf_entry *e = fmw_conf_get(conf, key);
    return e ? e->text : "";
}

static char *join2(const char *a, const char *b)
{
    struct fmw_buf out;
    fmw_buf_init(&out, 1 << 22);
    enum fmw_err err = fmw_buf_adds(&out, a);
    if (!err && *a && *b)
        err = fmw_buf_addc(&out, ' ');
    if (!err)
        err = fmw_buf_adds(&out, b);
    if (!err)
        err = fmw_buf_add(&out, "", 0);
    if (err) {
        fmw_buf_free(&out);
        return NULL;
    }
    return fmw_buf_take(&out);
}

/* config.sh: up to 1.18 the key's value with one pair of quotes stripped; from 1.19
 * "<default-opts> <opts>" joined first, then stripped (Flink's bin/config.sh). */
static char *script_opts(const struct fmw_conf *conf, struct fmw_flink_version v,
                         const char *default_key, const char *opts)
{
    if (fmw_flink_version_cmp(v, FMW_FLINK_LINE(1, 19)) < 0)
        return strip_quotes(opts);
    char *joined = join2(conf_text(conf, default_key), opts);
    char *stripped = joined ? strip_quotes(joined) : NULL;
    free(joined);
    return stripped;
}

/* The options config.sh takes from the conf file for all processes. */
static char *config_all_opts(const struct fmw_conf *conf, struct fmw_flink_version v)
{
    const char *opts = conf_text(conf, "env.java.opts");
    if (fmw_flink_version_cmp(v, FMW_FLINK_LINE(1, 17)) >= 0 &&
        *conf_text(conf, "env.java.opts.all"))
        opts = conf_text(conf, "env.java.opts.all");
    return script_opts(conf, v, "env.java.default-opts.all", opts);
}

/* The JobManager's own options from the conf file. */
static char *config_jm_opts(const struct fmw_conf *conf, struct fmw_flink_version v)
{
    return script_opts(conf, v, "env.java.default-opts.jobmanager",
                       conf_text(conf, "env.java.opts.jobmanager"));
}

/* The TaskManager's own options from the conf file (config.sh, FLINK_ENV_JAVA_OPTS_TM). */
static char *config_tm_opts(const struct fmw_conf *conf, struct fmw_flink_version v)
{
    return script_opts(conf, v, "env.java.default-opts.taskmanager",
                       conf_text(conf, "env.java.opts.taskmanager"));
}

/* An option source: its text, and the env var of that name (set, maybe empty). */
struct opts_source {
    char *text;
    const struct env_var *env;
    bool from_env; /* the text is the env var's: the scripts read the conf only when it is empty */
    bool found[FLAG_COUNT];
    uint64_t bytes[FLAG_COUNT];
};

static enum fmw_err load_source(struct ctx *c, struct opts_source *s, const char *env_name,
                                char *(*from_config)(const struct fmw_conf *,
                                                     struct fmw_flink_version))
{
    memset(s, 0, sizeof *s);
    s->env = env_name ? fmw_env_find(c->env, c->nenv, env_name) : NULL;
    if (s->env && !s->env->value) {
        char text[160];
        snprintf(text, sizeof text, "%s comes from valueFrom; JVM flags in it were not checked",
                 env_name);
        s->text = fmw_strdup("");
        return s->text ? note(c, text) : FMW_ENOMEM;
    }
    /* config.sh: `if [ -z "${FLINK_ENV_JAVA_OPTS_JM}" ]` reads env.java.opts.jobmanager. An
     * empty variable stays in s->env, so that a fix replaces it rather than adding another. */
    s->from_env = s->env && (*s->env->value || !from_config);
    s->text = s->from_env   ? fmw_strdup(s->env->value)
              : from_config ? from_config(&c->file_conf, c->plan->version)
                            : fmw_strdup("");
    if (!s->text)
        return FMW_ENOMEM;
    fmw_jvm_scan(s->text, s->found, s->bytes);
    return FMW_OK;
}

/* The container's own env entry of `var`, or NULL (none, or one from envFrom). */
static json_t *env_entry(const struct ctx *c, const struct env_var *var)
{
    return var && var->index >= 0
               ? json_array_get(json_object_get(c->container, "env"), (size_t)var->index)
               : NULL;
}

/* Appends `entry` (stolen) to the container's env, making the array where there is none. */
static enum fmw_err add_env_entry(struct ctx *c, json_t *entry)
{
    if (!c->env_array_exists) {
        c->env_array_exists = true;
        return op(c, "add", "/env", json_pack("[o]", entry));
    }
    return op(c, "add", "/env/-", entry);
}

static enum fmw_err set_env(struct ctx *c, const struct env_var *var, const char *name,
                            const char *value)
{
    char suffix[64];
    json_t *entry = env_entry(c, var);
    if (entry) {
        snprintf(suffix, sizeof suffix, "/env/%d/value", var->index);
        if (!var->owned)
            return op(c, json_object_get(entry, "value") ? "replace" : "add", suffix,
                      fmw_json_text(value));
        /* `value` is made from the expanded text: written back, its every $ is escaped ($$) so
         * that the kubelet gives the container exactly it. A reference to a valueFrom variable,
         * kept as $(NAME), would then not be expanded: such a value cannot be rewritten. */
        if (var->opaque_ref) {
            c->plan->status = FMW_PLAN_UNREADABLE;
            fmw_diag_set(&c->plan->message, FMW_EINVAL,
                         "%s uses $(VAR) of valueFrom: cannot rewrite", name);
            return FMW_OK;
        }
        struct fmw_buf esc;
        fmw_buf_init(&esc, 1 << 22);
        enum fmw_err err = fmw_buf_add(&esc, "", 0);
        for (const char *p = value; *p && !err; p++)
            err = *p == '$' ? fmw_buf_adds(&esc, "$$") : fmw_buf_addc(&esc, *p);
        if (!err)
            err = op(c, "replace", suffix, fmw_json_text(fmw_buf_cstr(&esc)));
        fmw_buf_free(&esc);
        return err;
    }
    return add_env_entry(c, json_pack("{s:s,s:s}", "name", name, "value", value));
}

static void flag_value_text(uint64_t bytes, char out[32])
{
    if (bytes == UINT64_MAX)
        snprintf(out, 32, "?");
    else
        snprintf(out, 32, "%" PRIu64, bytes);
}

/*
 * Sets env var `name` (the source `s`) to its text with the flags of `fix` rewritten to `want`,
 * then each flag of `add` that the text lacks appended, as fmw_jvm_flag_format spells it.
 */
static enum fmw_err set_rewritten(struct ctx *c, const struct opts_source *s, const char *name,
                                  const uint64_t want[FLAG_COUNT], const bool fix[FLAG_COUNT],
                                  const bool add[FLAG_COUNT])
{
    char *v = fmw_jvm_rewrite(s->text, want, fix);
    struct fmw_buf out;
    fmw_buf_init(&out, 1 << 22);
    enum fmw_err err = v ? fmw_buf_adds(&out, v) : FMW_ENOMEM;
    for (int f = 0; f < FLAG_COUNT && !err; f++) {
        if (add[f] && !s->found[f]) {
            char flag[64];
            fmw_jvm_flag_format((enum jvm_flag)f, want[f], flag);
            err = fmw_buf_addf(&out, "%s%s", out.len ? " " : "", flag);
        }
    }
    if (!err)
        err = set_env(c, s->env, name, fmw_buf_cstr(&out));
    fmw_buf_free(&out);
    free(v);
    return err;
}

/*
 * Scripts: java $JVM_ARGS <Flink's flags> $FLINK_ENV_JAVA_OPTS $FLINK_ENV_JAVA_OPTS_JM (or _TM),
 * then _JAVA_OPTIONS, which the JVM reads after the command line (flink-console.sh). Flink's
 * flags are BashJavaUtils' and always right, except under kubernetes-taskmanager.sh, which puts
 * $FLINK_TM_JVM_MEM_OPTS there: the flags Flink's resource manager wrote into the pod
 * (InitTaskManagerDecorator). That variable is checked like the others, and a flag it lacks is
 * one the JVM would size from the container.
 */
static enum fmw_err plan_script_flags(struct ctx *c, const uint64_t want[FLAG_COUNT],
                                      const bool set[FLAG_COUNT])
{
    bool tm = c->plan->role == FMW_ROLE_TASKMANAGER;
    const char *role_env = tm ? "FLINK_ENV_JAVA_OPTS_TM" : "FLINK_ENV_JAVA_OPTS_JM";
    const char *role_key = tm ? "env.java.opts.taskmanager" : "env.java.opts.jobmanager";
    bool k8s_tm = c->launch.kind == L_K8S_TM;
    bool pin = c->plan->sizing != FMW_SIZING_CONFIG; /* sized from the pod, not following */
    struct opts_source all, jm, jo, mem;
    memset(&jm, 0, sizeof jm); /* freed below even when an earlier load failed */
    memset(&jo, 0, sizeof jo);
    memset(&mem, 0, sizeof mem);
    enum fmw_err err = load_source(c, &all, "FLINK_ENV_JAVA_OPTS", config_all_opts);
    if (!err)
        err = load_source(c, &jm, role_env, tm ? config_tm_opts : config_jm_opts);
    if (!err)
        err = load_source(c, &jo, "_JAVA_OPTIONS", NULL);
    if (!err && k8s_tm)
        err = load_source(c, &mem, "FLINK_TM_JVM_MEM_OPTS", NULL);
    bool fix_jo[FLAG_COUNT] = {false}, fix_jm[FLAG_COUNT] = {false}, fix_all[FLAG_COUNT] = {false};
    bool fix_mem[FLAG_COUNT] = {false};
    bool any_jo = false, any_jm = false, any_all = false, any_mem = false;
    for (int f = 0; f < FLAG_COUNT && !err; f++) {
        if (!set[f])
            continue;
        struct opts_source *winner = jo.found[f]    ? &jo
                                     : jm.found[f]  ? &jm
                                     : all.found[f] ? &all
                                     : mem.found[f] ? &mem
                                                    : NULL;
        if (!winner && k8s_tm) {
            any_mem = fix_mem[f] = true;
            err = change(c, "%s added to FLINK_TM_JVM_MEM_OPTS: %" PRIu64, FLAG_LABEL[f], want[f]);
            continue;
        }
        if (!winner && pin) {
            /* Sized once from the pod: BashJavaUtils sizes the JVM from the file, so the pod's
             * flags go after its own, in the role's variable. */
            any_jm = fix_jm[f] = true;
            err = change(c, "%s added to %s: %" PRIu64, FLAG_LABEL[f], role_env, want[f]);
            continue;
        }
        if (!winner || winner->bytes[f] == want[f])
            continue;
        char was[32];
        flag_value_text(winner->bytes[f], was);
        const char *where = winner == &jo    ? "_JAVA_OPTIONS"
                            : winner == &mem ? "FLINK_TM_JVM_MEM_OPTS"
                            : winner == &jm  ? (jm.from_env ? role_env : role_key)
                            : all.from_env   ? "FLINK_ENV_JAVA_OPTS"
                                             : "env.java.opts.all";
        err = change(c, "%s in %s %s -> %" PRIu64, FLAG_LABEL[f], where, was, want[f]);
        if (winner == &jo)
            any_jo = fix_jo[f] = true;
        else if (winner == &mem)
            any_mem = fix_mem[f] = true;
        else if (winner == &jm)
            any_jm = fix_jm[f] = true;
        else
            any_all = fix_all[f] = true;
    }
    /* FLINK_TM_JVM_MEM_OPTS: its flags rewritten, the missing ones added. One from valueFrom
     * cannot be rewritten (an env entry holds a value or a valueFrom, not both). */
    if (!err && any_mem && mem.env && !mem.env->value) {
        c->plan->status = FMW_PLAN_UNREADABLE;
        fmw_diag_set(&c->plan->message, FMW_EINVAL,
                     "FLINK_TM_JVM_MEM_OPTS comes from valueFrom: cannot rewrite");
    } else if (!err && any_mem && !mem.found[FLAG_XMX] && !mem.found[FLAG_XMS] &&
               !mem.found[FLAG_METASPACE] && !mem.found[FLAG_DIRECT] &&
               strspn(mem.text, " \t\n") == strlen(mem.text)) {
        /* Unset or blank: Flink's own text, as the resource manager writes it. */
        err = set_env(c, mem.env, "FLINK_TM_JVM_MEM_OPTS", fmw_plan_jvm_args(c->plan));
    } else if (!err && any_mem) {
        err = set_rewritten(c, &mem, "FLINK_TM_JVM_MEM_OPTS", want, fix_mem, fix_mem);
    }
    /* _JAVA_OPTIONS and a FLINK_ENV_JAVA_OPTS of the user's are fixed where they stand. */
    if (!err && any_jo && jo.from_env) {
        char *v = fmw_jvm_rewrite(jo.text, want, fix_jo);
        err = v ? set_env(c, jo.env, "_JAVA_OPTIONS", v) : FMW_ENOMEM;
        free(v);
    }
    if (!err && any_all && all.from_env) {
        char *v = fmw_jvm_rewrite(all.text, want, fix_all);
        err = v ? set_env(c, all.env, "FLINK_ENV_JAVA_OPTS", v) : FMW_ENOMEM;
        free(v);
        any_all = false;
        memset(fix_all, 0, sizeof fix_all);
    }
    /* Flags from the conf file are overridden through FLINK_ENV_JAVA_OPTS_JM (_TM), which the
     * scripts use instead of env.java.opts.jobmanager (.taskmanager) and put after every other
     * source: its value keeps all the role's options, rewritten, plus the flags that
     * env.java.opts.all got wrong. */
    bool add_jm[FLAG_COUNT];
    for (int f = 0; f < FLAG_COUNT; f++)
        add_jm[f] = fix_all[f] || (pin && fix_jm[f]);
    if (!err && (any_jm || any_all) && !(jm.env && !jm.env->value)) {
        err = set_rewritten(c, &jm, role_env, want, fix_jm, add_jm);
    } else if (!err && pin && any_jm) {
        /* Sized once, the pod's flags go into the role's variable; one from valueFrom cannot be
         * written, and without them the JVM keeps the file's sizes. */
        c->plan->status = FMW_PLAN_UNREADABLE;
        fmw_diag_set(&c->plan->message, FMW_EINVAL, "%s comes from valueFrom: cannot rewrite",
                     role_env);
    }
    free(all.text);
    free(jm.text);
    free(jo.text);
    free(mem.text);
    return err;
}

/* One edit of a command-line element: replace [start, end) with text. */
struct edit {
    size_t elem, start, end;
    size_t seq;    /* order of making: the tie-break between edits at one position */
    bool split;    /* the flag came out of an unquoted $VAR: its span is the whole $VAR */
    char text[72]; /* a flag (fmw_jvm_flag_format: under 64 bytes) and a space */
};

static int edit_order(const void *a, const void *b)
{
    const struct edit *x = a, *y = b;
    if (x->elem != y->elem)
        return x->elem < y->elem ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The first edit of element `elem` in edits sorted by edit_order, or n. */
static size_t first_edit(const struct edit *edits, size_t n, size_t elem)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (edits[mid].elem < elem)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A java command line of the user's: its own flags, then _JAVA_OPTIONS. Missing flags are
 * inserted after `java`, since without them the JVM sizes its heap from the container. */
static enum fmw_err plan_java_flags(struct ctx *c, const uint64_t want[FLAG_COUNT],
                                    const bool set[FLAG_COUNT])
{
    struct opts_source jo;
    enum fmw_err err = load_source(c, &jo, "_JAVA_OPTIONS", NULL);
    bool fix_jo[FLAG_COUNT] = {false}, any_jo = false;
    const struct cmdline *cl = &c->cl;
    /* A word is one flag, so it makes at most one edit; each flag inserted after `java` is one
     * more. Every occurrence is rewritten, however many: the last one is what the JVM uses. */
    struct edit *edits = malloc((cl->nwords + FLAG_COUNT) * sizeof *edits);
    size_t nedits = 0;
    if (!edits) {
        free(jo.text);
        return FMW_ENOMEM;
    }
    const struct word *java = &cl->words[c->launch.java];
    bool java_whole = java->start == 0 && java->end == strlen(cl->elems[java->elem].str);
    char inserts[FLAG_COUNT][64];
    size_t ninserts = 0;
    for (int f = 0; f < FLAG_COUNT && !err; f++) {
        if (!set[f])
            continue;
        if (jo.found[f]) {
            if (jo.bytes[f] != want[f]) {
                char was[32];
                flag_value_text(jo.bytes[f], was);
                fix_jo[f] = any_jo = true;
                err = change(c, "%s in _JAVA_OPTIONS %s -> %" PRIu64, FLAG_LABEL[f], was, want[f]);
            }
            continue;
        }
        /* The last inline occurrence wins; every occurrence is rewritten so none disagrees. */
        bool seen = false, changed = false;
        char was[32] = "?";
        for (size_t k = c->launch.java + 1; k < c->launch.main_class && !err; k++) {
            enum jvm_flag flag;
            size_t at;
            const struct word *w = &cl->words[k];
            if (!fmw_jvm_flag_of(w->text, &flag, &at) || (int)flag != f)
                continue;
            seen = true;
            uint64_t bytes;
            bool sized = fmw_podspec_jvm_size(fmw_str_c(w->text + at), &bytes);
            if (sized && bytes == want[f])
                continue;
            flag_value_text(sized ? bytes : UINT64_MAX, was);
            struct edit *e = &edits[nedits];
            e->elem = w->elem;
            e->start = w->start;
            e->end = w->end;
            e->split = w->split;
            e->seq = nedits++;
            snprintf(e->text, sizeof e->text, "%.*s%" PRIu64, (int)at, w->text, want[f]);
            changed = true;
        }
        if (changed)
            err = change(c, "%s in the java command %s -> %" PRIu64, FLAG_LABEL[f], was, want[f]);
        if (!seen && !err) {
            fmw_jvm_flag_format((enum jvm_flag)f, want[f], inserts[ninserts++]);
            err = change(c, "%s added to the java command: %" PRIu64, FLAG_LABEL[f], want[f]);
        }
    }
    if (!err && any_jo && jo.from_env) {
        char *v = fmw_jvm_rewrite(jo.text, want, fix_jo);
        err = v ? set_env(c, jo.env, "_JAVA_OPTIONS", v) : FMW_ENOMEM;
        free(v);
    }
    for (size_t i = 0; !err && !java_whole && i < ninserts; i++) {
        /* java inside a script: the flags go right after the word, one edit each, in order. */
        struct edit *e = &edits[nedits];
        e->elem = java->elem;
        e->start = e->end = java->end;
        e->split = false;
        e->seq = nedits++;
        snprintf(e->text, sizeof e->text, " %.63s", inserts[i]);
    }
    /* Spans inside a script that $(VAR) expansion changed are positions in the expanded text:
     * applied to the element as written they cut the wrong bytes or read past its end. Such a
     * command cannot be rewritten; a patch of the limit alone would leave the old -Xmx to win,
     * so the pod is left as it is, with a warning. */
    /* The same for a flag among the words of an unquoted $VAR: rewriting its span would drop
     * the variable's other words. */
    for (size_t k = 0; k < nedits && !err; k++) {
        if (cl->elems[edits[k].elem].expanded || edits[k].split) {
            c->plan->status = FMW_PLAN_UNREADABLE;
            fmw_diag_set(&c->plan->message, FMW_EINVAL,
                         edits[k].split ? "JVM flags from a $VAR in a script: cannot rewrite"
                                        : "JVM flags in a script using $(VAR): cannot rewrite");
            nedits = ninserts = 0;
        }
    }
    qsort(edits, nedits, sizeof *edits, edit_order);
    /* Rebuild the arrays that changed, each as one "replace" of the whole array. */
    static const char *const ARRAYS[2] = {"command", "args"};
    for (int a = 0; a < 2 && !err && (nedits || ninserts); a++) {
        bool touched = false;
        json_t *arr = json_array();
        for (size_t i = 0; i < cl->nelems && arr && !err; i++) {
            if (strcmp(cl->elems[i].array, ARRAYS[a]) != 0)
                continue;
            const char *s = cl->elems[i].str;
            struct fmw_buf out;
            fmw_buf_init(&out, 1 << 22);
            size_t pos = 0;
            err = fmw_buf_add(&out, "", 0);
            /* Edits of one element, in order of position. */
            for (size_t k = first_edit(edits, nedits, i); k < nedits && edits[k].elem == i && !err;
                 k++) {
                const struct edit *e = &edits[k];
                if (e->start < pos)
                    continue; /* overlaps the previous edit */
                err = fmw_buf_add(&out, s + pos, e->start - pos);
                if (!err)
                    err = fmw_buf_adds(&out, e->text);
                pos = e->end > e->start ? e->end : e->start;
                touched = true;
            }
            if (!err)
                err = fmw_buf_adds(&out, s + pos);
            if (!err && json_array_append_new(arr, fmw_json_text(fmw_buf_cstr(&out))))
                err = FMW_ENOMEM;
            fmw_buf_free(&out);
            if (!err && java_whole && i == java->elem) {
                for (size_t k = 0; k < ninserts && !err; k++) {
                    if (json_array_append_new(arr, fmw_json_text(inserts[k])))
                        err = FMW_ENOMEM;
                }
                touched = touched || ninserts > 0;
            }
        }
        if (!arr)
            err = FMW_ENOMEM;
        char suffix[16];
        snprintf(suffix, sizeof suffix, "/%s", ARRAYS[a]);
        if (!err && touched) {
            err = op(c, "replace", suffix, arr);
            arr = NULL;
        }
        json_decref(arr);
    }
    free(edits);
    free(jo.text);
    return err;
}

/* Does any word of the command (scripts included) set a JVM memory flag? */
static bool command_sets_jvm_memory(const struct cmdline *cl)
{
    for (size_t i = 0; i < cl->nwords; i++) {
        enum jvm_flag flag;
        size_t at;
        if (fmw_jvm_flag_of(cl->words[i].text, &flag, &at))
            return true;
    }
    return false;
}

/* The first variable the webhook reads that the command itself assigns (`export X=...` in a
 * script, `env X=... cmd`), or NULL: what the JVM gets is then not what the pod spec says. */
static const char *command_assigns(const struct cmdline *cl, enum fmw_role role)
{
    static const char *const READ_JM[] = {"FLINK_ENV_JAVA_OPTS_JM",
                                          "FLINK_ENV_JAVA_OPTS",
                                          "_JAVA_OPTIONS",
                                          "FLINK_CONF_DIR",
                                          "FLINK_PROPERTIES",
                                          FMW_JM_LEGACY_ENV,
                                          NULL};
    static const char *const READ_TM[] = {
        "FLINK_ENV_JAVA_OPTS_TM", "FLINK_ENV_JAVA_OPTS", "_JAVA_OPTIONS",         "FLINK_CONF_DIR",
        "FLINK_PROPERTIES",       FMW_TM_LEGACY_ENV,     "FLINK_TM_JVM_MEM_OPTS", NULL};
    const char *const *read = role == FMW_ROLE_TASKMANAGER ? READ_TM : READ_JM;
    /* Assignments stand where a command starts (after an operator), before the command's name
     * or after export, readonly, declare, typeset, local or env; elsewhere NAME=... is an
     * argument (echo "FLINK_CONF_DIR=$FLINK_CONF_DIR"). */
    static const char *const ASSIGNERS[] = {"export",  "readonly", "declare",
                                            "typeset", "local",    "env"};
    bool at_start = true;
    for (size_t i = 0; i < cl->nwords; i++) {
        const char *t = cl->words[i].text;
        if (cl->words[i].op) {
            at_start = true;
            continue;
        }
        if (cl->words[i].first)
            at_start = true;
        if (!at_start)
            continue;
        const char *eq = strchr(t, '=');
        if (eq && eq > t) {
            for (const char *const *k = read; *k; k++) {
                if ((size_t)(eq - t) == strlen(*k) && strncmp(t, *k, (size_t)(eq - t)) == 0)
                    return *k;
            }
            continue; /* another assignment: still before the command */
        }
        bool assigner = false;
        for (size_t k = 0; k < sizeof ASSIGNERS / sizeof ASSIGNERS[0]; k++)
            assigner = assigner || strcmp(t, ASSIGNERS[k]) == 0;
        at_start = assigner;
    }
    return NULL;
}

/*
 * A pod that follows its container's size: Flink's scripts compute the JVM flags from the size at
 * each start, so a hard memory flag in _JAVA_OPTIONS, FLINK_ENV_JAVA_OPTS or the role's
 * FLINK_ENV_JAVA_OPTS_JM/_TM (or the conf file's env.java.opts.*, which those variables replace
 * in config.sh when set) would pin the JVM to one size. Each is removed where it stands; a conf
 * file's options are written into the variable without them. A variable left empty would send
 * config.sh back to the conf file, so an emptied one says what was removed instead.
 */
static enum fmw_err plan_follow_flags(struct ctx *c)
{
    bool tm = c->plan->role == FMW_ROLE_TASKMANAGER;
    const char *role_env = tm ? "FLINK_ENV_JAVA_OPTS_TM" : "FLINK_ENV_JAVA_OPTS_JM";
    const char *role_key = tm ? "env.java.opts.taskmanager" : "env.java.opts.jobmanager";
    struct opts_source src[3];
    const char *names[3] = {"_JAVA_OPTIONS", "FLINK_ENV_JAVA_OPTS", role_env};
    memset(src, 0, sizeof src);
    enum fmw_err err = load_source(c, &src[0], names[0], NULL);
    if (!err)
        err = load_source(c, &src[1], names[1], config_all_opts);
    if (!err)
        err = load_source(c, &src[2], names[2], tm ? config_tm_opts : config_jm_opts);
    const uint64_t gone[FLAG_COUNT] = {FMW_JVM_REMOVE, FMW_JVM_REMOVE, FMW_JVM_REMOVE,
                                       FMW_JVM_REMOVE};
    for (int k = 0; k < 3 && !err; k++) {
        struct opts_source *o = &src[k];
        bool any = false;
        for (int f = 0; f < FLAG_COUNT && !err; f++) {
            if (!o->found[f])
                continue;
            any = true;
            const char *where = o->from_env || k == 0 ? names[k]
                                : k == 1              ? "env.java.opts.all"
                                                      : role_key;
            err = change(c, "%s removed from %s: Flink's scripts size the JVM at each start",
                         FLAG_LABEL[f], where);
        }
        if (err || !any)
            continue;
        char *v = fmw_jvm_rewrite(o->text, gone, o->found);
        if (!v) {
            err = FMW_ENOMEM;
            break;
        }
        bool blank = strspn(v, " \t\n") == strlen(v);
        err = set_env(c, o->env, names[k],
                      blank && k > 0 ? "-Dflink-memory-webhook.removed=jvm-memory-flags" : v);
        free(v);
    }
    for (int k = 0; k < 3; k++)
        free(src[k].text);
    return err;
}

static bool layout_follows(const struct ctx *c, size_t *at);

/* The container's array ("/command" or "/args") and index that hold command word `w`; false
 * when the word is not one element of its own (a script's). */
static bool word_element(const struct ctx *c, size_t w, const char **array, int *index)
{
    if (w >= c->cl.nwords)
        return false;
    const struct elem *e = &c->cl.elems[c->cl.words[w].elem];
    if (e->expanded || (w > 0 && c->cl.words[w - 1].elem == c->cl.words[w].elem))
        return false;
    *array = strcmp(e->array, "command") == 0 ? "/command" : "/args";
    *index = e->index;
    return true;
}

/* Removes the webhook's own "-D" pair (c->own_at) from the container's command or args. */
static enum fmw_err remove_own_pair(struct ctx *c)
{
    const char *array;
    int index;
    if (c->own_at < 0 || !word_element(c, (size_t)c->own_at, &array, &index))
        return FMW_OK;
    char suffix[48];
    snprintf(suffix, sizeof suffix, "%s/%d", array, index);
    enum fmw_err err = op(c, "remove", suffix, NULL);
    if (!err)
        err = op(c, "remove", suffix, NULL); /* the property, now at the same index */
    return err;
}

/*
 * The webhook's own line in FLINK_PROPERTIES: wanted, it is the last line (a later line of the
 * process size would win in the appended file), added, moved there or kept; not wanted, it is
 * taken out, and a FLINK_PROPERTIES that held nothing else goes. Only the container's own env
 * entry is edited (properties_follow), its text as written (references to other variables stay).
 */
static enum fmw_err set_own_line(struct ctx *c, bool want)
{
    char own[FMW_OWN_LINE_MAX];
    fmw_own_properties_line(c->plan->role, own);
    const struct env_var *fp = fmw_env_find(c->env, c->nenv, "FLINK_PROPERTIES");
    json_t *entry = env_entry(c, fp);
    const char *text = json_string_value(json_object_get(entry, "value"));
    if (!entry) {
        if (!want)
            return FMW_OK;
        enum fmw_err err =
            add_env_entry(c, json_pack("{s:s,s:s}", "name", "FLINK_PROPERTIES", "value", own));
        return err ? err : change(c, "FLINK_PROPERTIES added: %s", own);
    }
    bool had;
    bool valued = text != NULL;
    if (!text)
        text = ""; /* an empty FLINK_PROPERTIES: the entry has no value field */
    char *rest = fmw_without_line(text, own, &had);
    if (!rest)
        return FMW_ENOMEM;
    size_t n = strlen(rest);
    struct fmw_buf value;
    fmw_buf_init(&value, 1 << 22);
    enum fmw_err err = fmw_buf_add(&value, rest, n);
    if (!err && want && n > 0 && rest[n - 1] != '\n')
        err = fmw_buf_addc(&value, '\n');
    if (!err && want)
        err = fmw_buf_adds(&value, own);
    char path[48];
    snprintf(path, sizeof path, "/env/%d", fp->index);
    if (err || strcmp(fmw_buf_cstr(&value), text) == 0) {
        /* as it should be */
    } else if (!want && n == 0) {
        err = op(c, "remove", path, NULL);
        if (!err)
            err = change(c, "FLINK_PROPERTIES removed: it held only the webhook's line");
    } else {
        snprintf(path, sizeof path, "/env/%d/value", fp->index);
        err = op(c, valued ? "replace" : "add", path, fmw_json_text(fmw_buf_cstr(&value)));
        if (!err)
            err = want ? change(c, "FLINK_PROPERTIES: %s %s", own, had ? "moved last" : "added")
                       : change(c, "FLINK_PROPERTIES: the webhook's line removed");
    }
    fmw_buf_free(&value);
    free(rest);
    return err;
}

/*
 * The size at every start: FMW_SIZE_ENV from the downward API (the container's own limit or
 * request, divisor 1: bytes) and "-D <role>.memory.process.size=$(FMW_SIZE_ENV)b" where the
 * launcher passes it to BashJavaUtils after every other -D (fmw_launch_follow_at: appended, or for
 * standalone-job before the entry point's options), which the kubelet expands when it starts the
 * container. A pod that has both, as they should be, gets no patch; an entry of that name saying
 * something else is replaced, and a pair elsewhere moved.
 */
static enum fmw_err plan_follow(struct ctx *c)
{
    const char *resource = size_resource(c);
    const char *name = json_string_value(json_object_get(c->container, "name"));
    json_t *want = json_pack("{s:s,s:{s:{s:s,s:s,s:s}}}", "name", FMW_SIZE_ENV, "valueFrom",
                             "resourceFieldRef", "containerName", name ? name : "", "resource",
                             resource, "divisor", "1");
    if (!want)
        return FMW_ENOMEM;
    json_t *env = json_object_get(c->container, "env");
    size_t i;
    json_t *e;
    enum fmw_err err = FMW_OK;
    bool found = false;
    json_array_foreach(env, i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (err || !n || strcmp(n, FMW_SIZE_ENV) != 0)
            continue;
        found = true;
        uint64_t bytes;
        if (!json_object_get(e, "value") &&
            resource_field_bytes(c->container, json_object_get(e, "valueFrom"), resource, &bytes) &&
            bytes == c->pod_size)
            continue;
        char suffix[32];
        snprintf(suffix, sizeof suffix, "/env/%zu", i);
        err = op(c, "replace", suffix, json_incref(want));
        if (!err)
            err = change(c, FMW_SIZE_ENV " -> the container's %s", resource);
    }
    if (!err && !found) {
        err = add_env_entry(c, json_incref(want));
        if (!err)
            err = change(c, FMW_SIZE_ENV " added: the container's %s in bytes", resource);
    }
    json_decref(want);
    if (err)
        return err;

    /* The size through FLINK_PROPERTIES (properties_follow), or through the -D pair. */
    size_t at;
    bool by_args = layout_follows(c, &at);
    err = set_own_line(c, !by_args);
    if (err || !by_args)
        return err ? err : remove_own_pair(c);

    /* The pair: where it is right, kept; elsewhere, moved there (the launcher's place for it is
     * never before the launcher's own words, so the removal does not shift the insertion). */
    bool appended = at >= c->launch.end;
    if (c->own_at >= 0 &&
        (appended ? (size_t)c->own_at + 2 == c->launch.end : (size_t)c->own_at == at))
        return FMW_OK;
    err = remove_own_pair(c);
    char prop[128];
    own_prop(c, prop);
    const char *array;
    int index;
    char first[48], second[48];
    if (appended || !word_element(c, at, &array, &index)) {
        array = json_is_array(json_object_get(c->container, "args")) ? "/args" : "/command";
        snprintf(first, sizeof first, "%s/-", array);
        snprintf(second, sizeof second, "%s/-", array);
    } else {
        snprintf(first, sizeof first, "%s/%d", array, index);
        snprintf(second, sizeof second, "%s/%d", array, index + 1);
    }
    if (!err)
        err = op(c, "add", first, fmw_json_text("-D"));
    if (!err)
        err = op(c, "add", second, fmw_json_text(prop));
    if (!err)
        err = change(c, "-D %s added to %s", prop, array + 1);
    return err;
}

/*
 * A pod that does not follow its size (sized from the configuration, or once) but carries the
 * webhook's variable and -D from an earlier review (the annotation or the namespace's label
 * changed, the container can no longer pass it on): both go, so that what the process reads is
 * what this plan resolved. Last in the patch, after every operation on the env entries' indexes.
 */
static enum fmw_err plan_unfollow(struct ctx *c)
{
    json_t *env = json_object_get(c->container, "env");
    bool any = c->own_at >= 0;
    enum fmw_err err = remove_own_pair(c);
    const struct env_var *fp = fmw_env_find(c->env, c->nenv, "FLINK_PROPERTIES");
    for (size_t i = json_array_size(env); !err && i-- > 0;) {
        const char *n = json_string_value(json_object_get(json_array_get(env, i), "name"));
        /* From the last entry back, so that a removal shifts no index still to be used. */
        if (fp && fp->index == (int)i)
            err = set_own_line(c, false);
        if (!err && n && strcmp(n, FMW_SIZE_ENV) == 0) {
            char suffix[32];
            snprintf(suffix, sizeof suffix, "/env/%zu", i);
            err = op(c, "remove", suffix, NULL);
            any = true;
        }
    }
    return !err && any ? change(c, FMW_SIZE_ENV " and its -D removed: not sized from the pod")
                       : err;
}

static enum fmw_err plan_flags(struct ctx *c)
{
    const char *assigned = command_assigns(&c->cl, c->plan->role);
    if (assigned) {
        c->plan->status = FMW_PLAN_UNREADABLE;
        fmw_diag_set(&c->plan->message, FMW_EINVAL, "the command sets %s itself", assigned);
        return FMW_OK;
    }
    if (c->launch.kind == L_NONE && command_sets_jvm_memory(&c->cl)) {
        /* A container chosen by its name, started in a way the webhook does not model: a new
         * limit with the command's own -Xmx left in place could be the OOMKill it is here to
         * prevent, so the pod is left as it is, with a warning. */
        c->plan->status = FMW_PLAN_UNREADABLE;
        fmw_diag_set(&c->plan->message, FMW_EINVAL,
                     "JVM memory flags in a start command not modelled");
        return FMW_OK;
    }
    uint64_t want[FLAG_COUNT];
    bool set[FLAG_COUNT] = {true, true, true, true};
    if (c->plan->role == FMW_ROLE_TASKMANAGER) {
        /* TaskExecutorProcessUtils: -Xmx = -Xms = framework + task heap, direct memory =
         * framework + task off-heap + network, always limited. */
        const struct fmw_tm_spec *t = &c->plan->tm.spec;
        want[FLAG_XMX] = want[FLAG_XMS] = t->jvm_heap;
        want[FLAG_METASPACE] = t->metaspace;
        want[FLAG_DIRECT] = t->jvm_direct;
    } else {
        const struct fmw_jm_spec *s = &c->plan->jm.spec;
        want[FLAG_XMX] = want[FLAG_XMS] = s->heap;
        want[FLAG_METASPACE] = s->metaspace;
        want[FLAG_DIRECT] = s->off_heap;
        set[FLAG_DIRECT] = s->direct_memory_limit;
    }
    if (c->plan->follows) {
        enum fmw_err err = plan_follow_flags(c);
        return err || c->plan->status != FMW_PLAN_RESOLVED ? err : plan_follow(c);
    }
    return c->launch.kind == L_JAVA || c->launch.kind == L_JAVA_TM
               ? plan_java_flags(c, want, set)
               : plan_script_flags(c, want, set);
}

static enum fmw_err plan_annotation(struct ctx *c)
{
    struct fmw_plan *p = c->plan;
    const struct fmw_jm_spec *s = &p->jm.spec;
    const struct fmw_tm_spec *t = &p->tm.spec;
    bool tm = p->role == FMW_ROLE_TASKMANAGER;
    char q[FMW_MEMSIZE_STRLEN];
    fmw_quantity_format(fmw_plan_total_process(p), q);
    /* Written out directly (it is one flat object): what json_dumps(JSON_COMPACT) would make of
     * it, at a fraction of the cost of building a tree and dumping it. */
    char ver[16];
    snprintf(ver, sizeof ver, "%d.%d", p->version.major, p->version.minor);
    struct fmw_buf text;
    fmw_buf_init(&text, 64 * 1024);
    char lq[FMW_MEMSIZE_STRLEN], rq[FMW_MEMSIZE_STRLEN];
    fmw_quantity_format(p->limit, lq);
    fmw_quantity_format(p->request, rq);
    enum fmw_err werr = fmw_buf_adds(&text, "{\"flinkVersion\":");
    if (!werr)
        werr = fmw_buf_add_json_string(&text, ver, strlen(ver));
    if (!werr && p->version_assumed)
        werr = fmw_buf_adds(&text, ",\"flinkVersionAssumed\":true");
    /* A JobManager's fields are as they were before TaskManagers were sized; a TaskManager's
     * say so first and carry its components. */
    if (!werr && tm)
        werr = fmw_buf_addf(
            &text,
            ",\"role\":\"taskmanager\",\"totalProcess\":\"%s\""
            ",\"frameworkHeap\":%" PRIu64 ",\"taskHeap\":%" PRIu64 ",\"frameworkOffHeap\":%" PRIu64
            ",\"taskOffHeap\":%" PRIu64 ",\"network\":%" PRIu64 ",\"managed\":%" PRIu64
            ",\"metaspace\":%" PRIu64 ",\"overhead\":%" PRIu64
            ",\"limit\":\"%s\",\"request\":\"%s\"",
            q, t->framework_heap, t->task_heap, t->framework_off_heap, t->task_off_heap, t->network,
            t->managed, t->metaspace, t->overhead, lq, rq);
    else if (!werr)
        werr = fmw_buf_addf(&text,
                            ",\"totalProcess\":\"%s\",\"heap\":%" PRIu64 ",\"offHeap\":%" PRIu64
                            ",\"metaspace\":%" PRIu64 ",\"overhead\":%" PRIu64
                            ",\"limit\":\"%s\",\"request\":\"%s\"",
                            q, s->heap, s->off_heap, s->metaspace, s->overhead, lq, rq);
    if (!werr && p->limit_factor > 0) {
        char num[FMW_MEMSIZE_STRLEN];
        fmw_java_double_str(p->limit_factor, num);
        werr = fmw_buf_addf(&text, ",\"limitFactor\":\"%s\"", num);
    }
    if (!werr && p->sizing != FMW_SIZING_CONFIG)
        werr = fmw_buf_addf(&text, ",\"sizing\":\"%s\",\"follows\":%s", fmw_sizing_name(p->sizing),
                            p->follows ? "true" : "false");
    if (!werr && p->headroom_kept[0]) {
        werr = fmw_buf_adds(&text, ",\"headroomKept\":");
        if (!werr)
            werr = fmw_buf_add_json_string(&text, p->headroom_kept, strlen(p->headroom_kept));
    }
    if (!werr)
        werr = fmw_buf_adds(&text, ",\"jvmArgs\":");
    if (!werr)
        werr = fmw_buf_add_json_string(&text, fmw_plan_jvm_args(p), strlen(fmw_plan_jvm_args(p)));
    if (!werr)
        werr = fmw_buf_adds(&text, ",\"source\":");
    char source[sizeof p->source];
    snprintf(source, sizeof source, "%s", p->source);
    fmw_utf8_scrub(source);
    if (!werr)
        werr = fmw_buf_add_json_string(&text, source, strlen(source));
    if (!werr)
        werr = fmw_buf_addc(&text, '}');
    if (werr) {
        fmw_buf_free(&text);
        return werr;
    }
    snprintf(p->annotation, sizeof p->annotation, "%s", fmw_buf_cstr(&text));
    fmw_buf_free(&text);

    /* Paths relative to the pod object, not the container. */
    struct fmw_buf saved = c->base;
    fmw_buf_init(&c->base, 4096);
    enum fmw_err err = fmw_buf_adds(&c->base, c->prefix);
    json_t *metadata = json_object_get(c->pod, "metadata");
    if (!err && !json_is_object(metadata)) {
        err = op(c, "add", "/metadata",
                 json_pack("{s:{s:s}}", "annotations", FMW_ANN_RESOLVED, p->annotation));
    } else if (!err && !json_is_object(c->annotations)) {
        err = op(c, "add", "/metadata/annotations",
                 json_pack("{s:s}", FMW_ANN_RESOLVED, p->annotation));
    } else if (!err) {
        const char *cur = annotation(c->annotations, FMW_ANN_RESOLVED);
        if (!cur || strcmp(cur, p->annotation) != 0) {
            struct fmw_buf path;
            fmw_buf_init(&path, 4096);
            err = fmw_buf_adds(&path, "/metadata/annotations");
            if (!err)
                err = fmw_json_pointer_append(&path, FMW_ANN_RESOLVED);
            if (!err)
                err = op(c, cur ? "replace" : "add", fmw_buf_cstr(&path),
                         fmw_json_text(p->annotation));
            fmw_buf_free(&path);
        }
    }
    fmw_buf_free(&c->base);
    c->base = saved;
    return err;
}

/*
 * A -D property of a memory key whose value names $(VAR) of a variable from valueFrom: the
 * kubelet puts the variable's value there, which is not known here, so the size is not either
 * (read as written it would be a size Flink cannot parse, and a false denial). True, with the
 * plan UNREADABLE and the reason said, for such a property.
 */
static bool opaque_memory_prop(struct ctx *c, json_t *props)
{
    size_t i;
    json_t *prop;
    json_array_foreach(props, i, prop)
    {
        const char *text = json_string_value(prop);
        const char *eq = text ? strchr(text, '=') : NULL;
        if (!eq || !fmw_memory_key(text, (size_t)(eq - text)))
            continue;
        for (const char *r = strstr(eq, "$("); r; r = strstr(r + 2, "$(")) {
            size_t n = strcspn(r + 2, ")");
            if (r[2 + n] != ')')
                break;
            for (size_t k = 0; k < c->nenv; k++) {
                const struct env_var *e = &c->env[k];
                if (strlen(e->name) != n || strncmp(e->name, r + 2, n) != 0)
                    continue;
                const struct env_var *last = fmw_env_find(c->env, c->nenv, e->name);
                if (last->value && !last->opaque_ref)
                    break;
                c->plan->status = FMW_PLAN_UNREADABLE;
                fmw_diag_set(&c->plan->message, FMW_EINVAL,
                             "-D %.*s takes $(%.*s), which comes from valueFrom: the size is not "
                             "known here",
                             (int)(eq - text), text, (int)n, r + 2);
                return true;
            }
        }
    }
    return false;
}

/*
 * The configuration the TaskManager process runs with, for TaskManagerRunner's own check
 * (fmw_tmmem_check_runner): what BashJavaUtils read (`conf`, the file and the -D arguments), then
 * its dynamic configs, then the -D arguments again, which taskmanager.sh puts after them from
 * 1.12 on (1.11 puts the dynamic configs last, and they always agree).
 */
static enum fmw_err runner_conf(const struct fmw_conf *conf, const struct fmw_tm_result *r,
                                json_t *props, struct fmw_conf *out)
{
    enum fmw_err err = fmw_conf_copy(out, conf);
    const char *p = fmw_buf_cstr(&r->dynamic_configs);
    while (!err && *p) {
        /* "-D key=value" pairs, separated by spaces; values hold none. */
        p += strspn(p, " ");
        if (strncmp(p, "-D ", 3) != 0)
            break;
        p += 3;
        size_t n = strcspn(p, " ");
        err = fmw_conf_apply_dynamic(out, (struct fmw_str){p, n});
        p += n;
    }
    size_t i;
    json_t *prop;
    json_array_foreach(props, i, prop)
    {
        if (!err)
            err = fmw_conf_apply_dynamic(out, fmw_str_c(json_string_value(prop)));
    }
    return err;
}

/* Does a -D property set taskmanager.memory.network.min or .max? */
static bool sets_network_range(json_t *props)
{
    size_t i;
    json_t *prop;
    json_array_foreach(props, i, prop)
    {
        const char *t = json_string_value(prop);
        if (t && (strncmp(t, FMW_TM_NETWORK_MIN "=", strlen(FMW_TM_NETWORK_MIN) + 1) == 0 ||
                  strncmp(t, FMW_TM_NETWORK_MAX "=", strlen(FMW_TM_NETWORK_MAX) + 1) == 0))
            return true;
    }
    return false;
}

/* What pkg/tmmem is given for this TaskManager: 1.x's legacy heap read as this layout's Flink
 * reads it (resolve_tm), and whether list options are read as YAML. */
static void tm_input(struct ctx *c, const struct fmw_conf *conf, struct fmw_tm_input *tin)
{
    struct fmw_plan *p = c->plan;
    const struct env_var *tm_heap = fmw_env_find(c->env, c->nenv, FMW_TM_LEGACY_ENV);
    enum fmw_tm_legacy legacy = p->version.major >= 2             ? FMW_TM_LEGACY_NONE
                                : fmw_launch_scripted(&c->launch) ? FMW_TM_LEGACY_FLINK
                                                                  : FMW_TM_LEGACY_PROCESS;
    /* config.yaml (1.19 on): Flink reads the external-resources list as YAML first. */
    *tin = (struct fmw_tm_input){conf, p->version, legacy,
                                 tm_heap && legacy == FMW_TM_LEGACY_FLINK ? tm_heap->value : NULL,
                                 c->standard_yaml || !fmw_flink_reads_legacy_file(p->version)};
}

/* What pkg/jmmem is given for this JobManager: 1.x's legacy heap read as JVM heap (every
 * script-started JobManager; 2.x has none). */
static void jm_input(struct ctx *c, const struct fmw_conf *conf, struct fmw_jm_input *jin)
{
    const struct env_var *jm_heap = fmw_env_find(c->env, c->nenv, FMW_JM_LEGACY_ENV);
    *jin = (struct fmw_jm_input){conf, c->plan->version,
                                 c->plan->version.major < 2 ? FMW_LEGACY_HEAP : FMW_LEGACY_NONE,
                                 jm_heap ? jm_heap->value : NULL};
}

/*
 * A TaskManager's memory as Flink computes it for this layout. Through the scripts
 * (taskmanager.sh, the entrypoint, Bitnami's run.sh) BashJavaUtils reads 1.x's legacy heap
 * options as total Flink memory; a TaskManager that Flink's resource manager started
 * (kubernetes-taskmanager.sh, or the java command of 1.11/1.12 native Kubernetes) was sized by
 * the resource manager, which reads them as total process memory
 * (ActiveResourceManagerFactory) and writes every component into the -D arguments. Then what
 * the TaskManager checks itself at start: a configuration it refuses is Flink's to reject, as
 * BashJavaUtils' is.
 */
static enum fmw_err resolve_tm(struct ctx *c, const struct fmw_conf *conf, json_t *props)
{
    struct fmw_plan *p = c->plan;
    const struct env_var *tm_heap = fmw_env_find(c->env, c->nenv, FMW_TM_LEGACY_ENV);
    enum fmw_err err = FMW_OK;
    if (tm_heap && !tm_heap->value)
        err = note(c, FMW_TM_LEGACY_ENV " comes from valueFrom and was not read");
    bool scripted = fmw_launch_scripted(&c->launch);
    struct fmw_tm_input tin;
    tm_input(c, conf, &tin);
    if (err)
        return err;
    struct fmw_diag d = FMW_DIAG_INIT;
    enum fmw_err rc = fmw_tmmem_resolve(&tin, &p->tm, &d);
    if (rc == FMW_OK && !scripted) {
        rc = fmw_tmmem_check_runner(conf, p->version, &d);
    } else if (rc == FMW_OK && fmw_flink_version_cmp(p->version, FMW_FLINK_LINE(1, 12)) >= 0 &&
               sets_network_range(props)) {
        /* BashJavaUtils' dynamic configs set every option the check reads; only a -D of the
         * network range after them can undo min = max (the check is skipped otherwise: it cost
         * a review a copy of the configuration). */
        struct fmw_conf run;
        fmw_conf_init(&run);
        rc = runner_conf(conf, &p->tm, props, &run);
        if (rc == FMW_OK)
            rc = fmw_tmmem_check_runner(&run, p->version, &d);
        else if (rc != FMW_ENOMEM) /* ours, not Flink's: the pod is not read, never denied */
            rc = fmw_diag_set(&d, FMW_ETOOBIG, "the TaskManager's dynamic configs: %s",
                              fmw_strerror(rc));
        fmw_conf_cleanup(&run);
    }
    if (rc == FMW_ENOMEM) {
        err = rc;
    } else if (rc == FMW_ETOOBIG) {
        p->status = FMW_PLAN_UNREADABLE;
        fmw_diag_set(&p->message, rc, "%s", fmw_diag_msg(&d));
    } else if (rc != FMW_OK) {
        p->status = FMW_PLAN_INVALID;
        fmw_diag_set(&p->message, rc, "%s", fmw_diag_msg(&d));
    }
    fmw_diag_cleanup(&d);
    return err;
}

/* ---- Sizing from the pod (from-limit, from-request) ---- */

/* The sizing the pod asks for: its FMW_ANN_SIZING, else the webhook's. */
static enum fmw_sizing wanted_sizing(struct ctx *c, bool *bad_annotation)
{
    enum fmw_sizing v = c->opt->sizing;
    const char *ann = annotation(c->annotations, FMW_ANN_SIZING);
    *bad_annotation = ann && !fmw_sizing_parse(ann, &v);
    return v;
}

/*
 * Can this layout be given its size at every start? The start scripts (through the image's
 * entrypoint or called directly) pass the -D arguments after their first word to BashJavaUtils,
 * which computes the JVM flags and the dynamic configs from them (launch.c), so a
 * "-D <role>.memory.process.size=$(FMW_SIZE_ENV)b" appended to the container's arguments is read
 * at each start, with the variable the kubelet computes from the container's memory then. A
 * shell script of the user's (`sh -c`) or Bitnami's run.sh would not pass it on, nor would
 * jobmanager.sh before 1.16.3/1.17.2 (fmw_launch_follow_at). *at: where the pair goes.
 */
static bool layout_follows(const struct ctx *c, size_t *at)
{
    size_t where;
    bool ok = !c->cl.has_script && !c->launch.bitnami && c->cl.nelems > 0 && !c->follow_blocked &&
              fmw_launch_follow_at(&c->cl, &c->launch, c->plan->version, &where);
    if (at)
        *at = where;
    return ok;
}

/*
 * Where the -D cannot reach BashJavaUtils (jobmanager.sh before 1.16.3, 1.17.0-1.17.1:
 * FLINK-32909) but docker-entrypoint.sh writes FLINK_PROPERTIES into the conf file Flink reads
 * (source.c says where it does) and runs envsubst over it at start (flink-docker's
 * docker-entrypoint.sh up to 1.18), the size reaches Flink through the webhook's line there: a
 * JobManager whose FLINK_PROPERTIES is absent or a value of its own env entry (one from envFrom
 * or valueFrom could not be extended here).
 */
static bool properties_follow(const struct ctx *c)
{
    if (c->plan->role != FMW_ROLE_JOBMANAGER || !c->properties_write || c->follow_blocked ||
        c->cl.has_script || c->launch.bitnami || layout_follows(c, NULL) ||
        fmw_flink_version_cmp(c->plan->version, FMW_FLINK_LINE(1, 19)) >= 0)
        return false;
    const struct env_var *fp = fmw_env_find(c->env, c->nenv, "FLINK_PROPERTIES");
    json_t *entry = env_entry(c, fp);
    /* An empty value is dropped by the API server: the entry then has neither field. */
    return !fp || (entry && fp->value && !json_object_get(entry, "valueFrom"));
}

/* The size reaches Flink at every start: through the -D, or through FLINK_PROPERTIES. */
static bool can_follow(const struct ctx *c)
{
    return layout_follows(c, NULL) || properties_follow(c);
}

/* "<sizing> not applied: <why>; sized from the configuration" */
static enum fmw_err not_applied(struct ctx *c, enum fmw_sizing want, const char *why)
{
    char text[FMW_PLAN_TEXT];
    snprintf(text, sizeof text, "%s not applied: %s; sized from the configuration",
             fmw_sizing_name(want), why);
    return note(c, text);
}

/*
 * Decides whether the pod is sized from its container's memory, once its launcher and Flink line
 * are known. Where it cannot be, the plan goes on from the configuration and says why.
 */
static enum fmw_err choose_sizing(struct ctx *c)
{
    struct fmw_plan *p = c->plan;
    bool bad;
    enum fmw_sizing want = wanted_sizing(c, &bad);
    enum fmw_err err = bad ? note(c, "annotation " FMW_ANN_SIZING
                                     " is not from-config, from-limit or from-request: ignored")
                           : FMW_OK;
    if (err || want == FMW_SIZING_CONFIG)
        return err;
    c->sizing_asked = true;
    bool asked_by_pod = !bad && annotation(c->annotations, FMW_ANN_SIZING);
    const char *operator_share = deliberate_headroom(c);
    if (c->launch.kind == L_K8S_JM || c->launch.kind == L_K8S_TM)
        return not_applied(c, want, "Flink's resource manager sized this pod");
    if (c->launch.kind == L_NONE)
        /* Chosen by its name: nothing shows which variables its command reads. */
        return not_applied(c, want, "the start command is not one the webhook models");
    if (operator_share && !asked_by_pod)
        /* The operator's own sizing of Flink against the limit, unless the pod itself asks. */
        return not_applied(c, want, operator_share);
    if (p->role == FMW_ROLE_TASKMANAGER && !layout_follows(c, NULL))
        /* A TaskManager reads its sizes again at start (TaskManagerRunner): flags set here
         * would disagree with them. */
        return not_applied(c, want,
                           "this TaskManager's start command does not pass the size to "
                           "Flink's scripts");
    json_t *resources = json_object_get(c->container, "resources");
    uint64_t bytes;
    bool has =
        memory_of(resources, want == FMW_SIZING_LIMIT ? "limits" : "requests", &bytes) && bytes > 0;
    /* A pod's request defaults to its limit (the API server, before admission); a template's
     * pods get the same, so its missing request is its limit too. */
    if (!has && want == FMW_SIZING_REQUEST)
        has = memory_of(resources, "limits", &bytes) && bytes > 0;
    if (!has) {
        /* Nothing to size from yet: the configuration sizes the container, whose new limit (or
         * request) the pod then follows (size_from_config). */
        c->sizing_later = want;
        return err;
    }
    p->sizing = want;
    c->pod_size = bytes;
    p->follows = layout_follows(c, NULL);
    return err;
}

/*
 * The webhook's own "-D <key>=$(FMW_SIZE_ENV)b" in the command: its property is taken out of
 * what BashJavaUtils reads here (the size it gives is the pod's, applied by apply_pod_size where
 * the pod is sized from itself, and nothing where it is not: plan_unfollow then removes the pair),
 * and where it stands is kept for plan_follow.
 */
static void drop_own_prop(struct ctx *c, json_t *props)
{
    char own[128];
    own_prop(c, own);
    c->own_at = -1;
    for (size_t i = 0; i + 1 < c->cl.nwords; i++) {
        if (strcmp(c->cl.words[i].text, "-D") == 0 && strcmp(c->cl.words[i + 1].text, own) == 0) {
            c->own_at = (long)i;
            break;
        }
    }
    for (size_t i = json_array_size(props); i-- > 0;) {
        const char *t = json_string_value(json_array_get(props, i));
        if (t && strcmp(t, own) == 0)
            json_array_remove(props, i);
    }
}

/*
 * What the launcher alone does not show: where a -D of the process size in the command would come
 * after the webhook's (standalone-job's goes first), or where env.java.opts.all in the conf file
 * sets JVM memory flags that only FLINK_ENV_JAVA_OPTS replaces (config.sh then adds flags of its
 * own, by Java version, that a written variable would lose), the pod cannot follow. A JobManager
 * is then sized once, a TaskManager from its configuration.
 */
static enum fmw_err check_follow(struct ctx *c, json_t *props)
{
    struct fmw_plan *p = c->plan;
    enum fmw_sizing want = p->sizing != FMW_SIZING_CONFIG ? p->sizing : c->sizing_later;
    if (p->sizing != FMW_SIZING_CONFIG)
        p->follows = can_follow(c); /* choose_sizing knew the launcher, not yet the file */
    if (want == FMW_SIZING_CONFIG || !can_follow(c))
        return FMW_OK;
    const char *key = fmw_process_key(c->plan->role);
    size_t n = strlen(key);
    if (c->launch.kind == L_ENTRY_SAJ || c->launch.kind == L_SCRIPT_SAJ) {
        size_t i;
        json_t *prop;
        json_array_foreach(props, i, prop)
        {
            const char *t = json_string_value(prop);
            if (t && strncmp(t, key, n) == 0 && t[n] == '=')
                c->follow_blocked = "a -D of the process size in the command would come after the "
                                    "webhook's and win";
        }
    }
    const struct env_var *all = fmw_env_find(c->env, c->nenv, "FLINK_ENV_JAVA_OPTS");
    if (!c->follow_blocked && !(all && (!all->value || *all->value))) {
        char *text = config_all_opts(&c->file_conf, p->version);
        if (!text)
            return FMW_ENOMEM;
        bool found[FLAG_COUNT];
        uint64_t bytes[FLAG_COUNT];
        fmw_jvm_scan(text, found, bytes);
        free(text);
        for (int f = 0; f < FLAG_COUNT; f++) {
            if (found[f])
                c->follow_blocked = "env.java.opts.all in the configuration sets JVM memory flags, "
                                    "which only FLINK_ENV_JAVA_OPTS would replace, without what "
                                    "config.sh adds to it";
        }
    }
    if (!c->follow_blocked)
        return FMW_OK;
    p->follows = false;
    if (p->role != FMW_ROLE_TASKMANAGER)
        return FMW_OK; /* sized once: said with the rest (say_sized_once) */
    p->sizing = FMW_SIZING_CONFIG;
    c->sizing_later = FMW_SIZING_CONFIG;
    return not_applied(c, want, c->follow_blocked);
}

/* A JobManager sized from its container once, at admission: why it will not follow. */
static enum fmw_err say_sized_once(struct ctx *c)
{
    char text[FMW_PLAN_TEXT];
    snprintf(text, sizeof text,
             "sized from the container's memory once, at admission (%s): a later resize is not "
             "followed",
             c->follow_blocked ? c->follow_blocked
                               : "this start command does not pass the size to Flink's scripts");
    return note(c, text);
}

/*
 * A pod to be sized from its container's limit (request) that has none: plan_resources gave it
 * the configuration's size, which is from now on the size the pod follows, as it would be on
 * the next review of the patched pod. Said, since the limit came from the configuration.
 */
static enum fmw_err size_from_config(struct ctx *c)
{
    struct fmw_plan *p = c->plan;
    p->sizing = c->sizing_later;
    c->pod_size = p->sizing == FMW_SIZING_LIMIT ? p->limit : p->request;
    p->follows = can_follow(c);
    char text[FMW_PLAN_TEXT], size[FMW_MEMSIZE_STRLEN];
    fmw_quantity_format(c->pod_size, size);
    snprintf(text, sizeof text,
             "%s: the container had no memory %s; it gets the configuration's %s, %s",
             fmw_sizing_name(p->sizing), p->sizing == FMW_SIZING_LIMIT ? "limit" : "request", size,
             p->follows ? "which Flink then follows at every start" : "sized once");
    return note(c, text);
}

/*
 * The pod's size becomes Flink's total process memory: set last, as the -D the webhook adds is
 * (after the file and every other -D). A different process size in the configuration is
 * overridden, which is what the pod asked for, and said.
 */
static enum fmw_err apply_pod_size(struct ctx *c, struct fmw_conf *conf)
{
    const char *key = fmw_process_key(c->plan->role);
    uint64_t had = 0;
    struct fmw_diag d = FMW_DIAG_INIT;
    enum fmw_err err = FMW_OK;
    if (fmw_conf_has(conf, key) &&
        (fmw_conf_get_memsize(conf, key, 0, &had, NULL, &d, NULL) != FMW_OK ||
         had != c->pod_size)) {
        char text[FMW_PLAN_TEXT], size[FMW_MEMSIZE_STRLEN];
        fmw_quantity_format(c->pod_size, size);
        snprintf(text, sizeof text,
                 "%s %.64s in the configuration gives way to the container's %s %s", key,
                 fmw_conf_get(conf, key)->text,
                 c->plan->sizing == FMW_SIZING_LIMIT ? "limit" : "request", size);
        err = note(c, text);
    }
    fmw_diag_cleanup(&d);
    return err ? err : fmw_set_process_size(conf, c->plan->role, c->pod_size);
}

/*
 * Flink refused the configuration at the pod's size: its message, then the sizes Flink accepts
 * for it (`own`: the configuration without the pod's size), where there are any.
 */
static enum fmw_err say_accepted_sizes(struct ctx *c, const struct fmw_conf *own)
{
    struct fmw_plan *p = c->plan;
    struct fmw_size_probe probe = {.role = p->role};
    jm_input(c, own, &probe.jm);
    tm_input(c, own, &probe.tm);
    uint64_t min, max;
    enum fmw_err err = fmw_accepted_process_sizes(&probe, c->pod_size, &min, &max);
    if (err || !min)
        return err;
    char *flink = fmw_strdup(fmw_diag_msg(&p->message));
    if (!flink)
        return FMW_ENOMEM;
    const char *what = p->sizing == FMW_SIZING_LIMIT ? "limit" : "request";
    if (max)
        fmw_diag_set(&p->message, FMW_ECONFIG,
                     "%s (the container's memory %s is Flink's process size here; Flink accepts "
                     "%" PRIu64 " to %" PRIu64 " bytes, %" PRIu64 "Mi to %" PRIu64 "Mi)",
                     flink, what, min, max, (min + FMW_MIB - 1) / FMW_MIB, max / FMW_MIB);
    else
        fmw_diag_set(&p->message, FMW_ECONFIG,
                     "%s (the container's memory %s is Flink's process size here; the smallest "
                     "that Flink accepts is %" PRIu64 " bytes, %" PRIu64 "Mi rounded up)",
                     flink, what, min, (min + FMW_MIB - 1) / FMW_MIB);
    free(flink);
    return FMW_OK;
}

enum fmw_err fmw_podspec_plan(json_t *pod, const char *ns, const char *prefix,
                              const struct fmw_podspec_options *opt,
                              const struct fmw_cm_source *src, struct fmw_plan *plan)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.own_at = -1;
    c.pod = pod;
    c.spec = json_object_get(pod, "spec");
    c.annotations = json_object_get(json_object_get(pod, "metadata"), "annotations");
    c.ns = ns ? ns : "default";
    c.prefix = prefix ? prefix : "";
    c.opt = opt;
    c.src = src;
    c.plan = plan;
    fmw_conf_init(&c.file_conf);
    fmw_buf_init(&c.base, 4096);
    bool light = src && src->light && src->too_heavy;
    fmw_expand_budget_begin(light ? FMW_EXPAND_LIGHT_BYTES : FMW_EXPAND_MAX_BYTES,
                            light ? FMW_EXPAND_LIGHT_SCANS : FMW_EXPAND_MAX_SCANS,
                            src ? src->deadline_ns : 0);
    struct fmw_conf conf, own;
    fmw_conf_init(&conf);
    fmw_conf_init(&own);
    json_t *props = json_array();
    enum fmw_err err = plan->patch && plan->changes && plan->notes && props ? FMW_OK : FMW_ENOMEM;
    bool found = false;

    if (!err && json_is_object(c.spec))
        err = choose_container(&c, &found);
    if (err == FMW_ETOOBIG) {
        plan->status = FMW_PLAN_UNREADABLE;
        fmw_diag_set(&plan->message, err, "the pod spec is too large to analyse");
        err = FMW_OK;
        goto out;
    }
    if (err || !found)
        goto out; /* SKIP */
    if (!((opt->roles ? opt->roles : FMW_ROLES_ALL) & plan->role)) {
        plan->container_index = -1; /* a role the webhook is not asked to size */
        plan->container[0] = '\0';
        json_array_clear(plan->notes);
        goto out;
    }
    choose_version(&c);
    char fatal[FMW_PLAN_TEXT];
    if (fmw_launch_jm_args_fatal(&c.cl, &c.launch, plan->version, fatal, sizeof fatal)) {
        /* Flink's own entrypoint refuses the command line, as it would a configuration. */
        plan->status = FMW_PLAN_INVALID;
        fmw_diag_set(&plan->message, FMW_EINVAL, "%s", fatal);
        goto out;
    }
    err = add_env_from(&c);
    if (err == FMW_ETOOBIG) {
        plan->status = FMW_PLAN_UNREADABLE;
        fmw_diag_set(&plan->message, err, "the pod spec is too large to analyse");
        err = FMW_OK;
        goto out;
    }
    if (!err && plan->status != FMW_PLAN_UNREADABLE)
        err = choose_sizing(&c);
    if (err || plan->status == FMW_PLAN_UNREADABLE)
        goto out;

    struct source_in in = {c.spec,
                           c.container,
                           c.env,
                           c.nenv,
                           &c.launch,
                           plan->version,
                           c.ns,
                           annotation(c.annotations, FMW_ANN_CONFIGMAP),
                           src,
                           c.cl.has_script,
                           plan->role,
                           &c.standard_yaml,
                           &c.properties_write};
    plan->status = fmw_source_gather(&in, &c.file_conf, plan->source, &plan->message, plan->notes);
    if (plan->status != FMW_PLAN_RESOLVED)
        goto out;
    if (plan->version_assumed) {
        err = check_assumed_source(&c, &in);
        if (err)
            goto out;
    }

    /* What BashJavaUtils sees: the file, then the -D arguments that reach it. */
    err = fmw_conf_copy(&conf, &c.file_conf);
    if (!err)
        err = fmw_launch_dynamic_props(&c.cl, &c.launch, plan->version, props, plan->notes);
    if (!err)
        drop_own_prop(&c, props);
    if (!err && opaque_memory_prop(&c, props))
        goto out; /* UNREADABLE, said */
    size_t i;
    json_t *prop;
    json_array_foreach(props, i, prop)
    {
        if (!err)
            err = fmw_conf_apply_dynamic(&conf, fmw_str_c(json_string_value(prop)));
    }
    if (!err)
        err = check_follow(&c, props);
    if (!err && plan->sizing != FMW_SIZING_CONFIG) {
        err = fmw_conf_copy(&own, &conf);
        if (!err)
            err = apply_pod_size(&c, &conf);
        if (!err && !plan->follows)
            err = say_sized_once(&c);
    }
    if (err)
        goto out;
    if (!err && plan->role == FMW_ROLE_TASKMANAGER) {
        err = resolve_tm(&c, &conf, props);
    } else if (!err) {
        const struct env_var *jm_heap = fmw_env_find(c.env, c.nenv, FMW_JM_LEGACY_ENV);
        if (jm_heap && !jm_heap->value)
            err = note(&c, FMW_JM_LEGACY_ENV " comes from valueFrom and was not read");
        struct fmw_jm_input jin;
        jm_input(&c, &conf, &jin);
        if (!err && fmw_jmmem_resolve(&jin, &plan->jm, &plan->message) != FMW_OK)
            plan->status = FMW_PLAN_INVALID;
    }
    if (!err && plan->status == FMW_PLAN_INVALID && plan->sizing != FMW_SIZING_CONFIG)
        err = say_accepted_sizes(&c, &own);
    if (err || plan->status != FMW_PLAN_RESOLVED)
        goto out;

    c.conf = &conf;
    err = fmw_buf_adds(&c.base, c.prefix);
    if (!err)
        err = fmw_buf_addf(&c.base, "/spec/containers/%d", plan->container_index);
    if (!err)
        err = plan_resources(&c);
    if (!err && plan->status == FMW_PLAN_RESOLVED && c.sizing_later != FMW_SIZING_CONFIG)
        err = size_from_config(&c);
    if (!err && plan->status == FMW_PLAN_RESOLVED)
        err = plan_flags(&c);
    if (!err && plan->status == FMW_PLAN_RESOLVED && !plan->follows)
        err = plan_unfollow(&c);
    /* Every JobManager pod says what was checked, changed or not; a workload's template only
     * with a change, since any edit of a template rolls its pods. */
    if (!err && plan->status == FMW_PLAN_RESOLVED &&
        (c.prefix[0] == '\0' || json_array_size(plan->patch) > 0))
        err = plan_annotation(&c);
out:;
    enum fmw_expand_exhausted budget = fmw_expand_budget_end();
    switch (budget) {
    case FMW_EXPAND_WITHIN:
        break;
    case FMW_EXPAND_OVER_BYTES:
    case FMW_EXPAND_OVER_SCANS:
    case FMW_EXPAND_OVER_TIME:
        /* Whatever failed on the way, the reason is the budget; nothing planned is kept. The
         * text is short enough to survive the warning's cut (FMW_WARNING_MAX). On the event
         * loop, the review is only too heavy for it: the caller moves it to a worker. */
        plan->status = FMW_PLAN_UNREADABLE;
        json_array_clear(plan->patch);
        json_array_clear(plan->changes);
        if (light && budget != FMW_EXPAND_OVER_TIME)
            src->too_heavy(src->ctx);
        if (budget == FMW_EXPAND_OVER_TIME)
            fmw_diag_set(&plan->message, FMW_ETOOBIG,
                         "expanding $(VAR)/$VAR ran past the deadline");
        else if (budget == FMW_EXPAND_OVER_BYTES)
            fmw_diag_set(&plan->message, FMW_ETOOBIG,
                         "$(VAR)/$VAR expansion exceeds the %zu MiB pod budget",
                         FMW_EXPAND_MAX_BYTES >> 20);
        else
            fmw_diag_set(&plan->message, FMW_ETOOBIG,
                         "$(VAR)/$VAR look-ups and conf-file edits exceed the per-pod budget");
        err = FMW_OK;
        break;
    }
    json_decref(props);
    fmw_conf_cleanup(&conf);
    fmw_conf_cleanup(&own);
    fmw_conf_cleanup(&c.file_conf);
    fmw_cmdline_cleanup(&c.cl);
    fmw_env_free(c.env, c.nenv);
    json_decref(c.env_from);
    fmw_buf_free(&c.base);
    return err;
}
