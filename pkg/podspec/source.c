/*
 * Which configuration file the JobManager or TaskManager reads, and what the entrypoint does to
 * it first.
 * The conf dir is FLINK_CONF_DIR or /opt/flink/conf; the file in it is chosen by the version
 * (flink-conf.yaml up to 1.18; in 1.19/1.20 flink-conf.yaml when present, else config.yaml;
 * config.yaml only from 2.0). A ConfigMap mounted there is read-only, so the entrypoint's
 * FLINK_PROPERTIES edits fail and the mounted file is used as is; without a mount the image's
 * own file (jobmanager.memory.process.size: 1600m, taskmanager.memory.process.size: 1728m in
 * every line's conf/flink-conf.yaml and conf/config.yaml) is edited.
 */
#include "pkg/podspec/podspec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONF_DIR "/opt/flink/conf"
#define LEGACY_FILE      "flink-conf.yaml"
#define STANDARD_FILE    "config.yaml"
#define MAX_CMS          8
#define READ_ONLY_MOUNT  "the conf file is a read-only ConfigMap mount"

/* The image's shipped configuration, as far as memory goes (the conf file of Flink's distribution
 * for its line): the process size of each role. */
static const char *image_default_key(const struct source_in *in)
{
    return in->role == FMW_ROLE_TASKMANAGER ? "taskmanager.memory.process.size"
                                            : "jobmanager.memory.process.size";
}

static const char *image_default_value(const struct source_in *in)
{
    return in->role == FMW_ROLE_TASKMANAGER ? "1728m" : "1600m";
}

struct cm_cache {
    char *name[MAX_CMS];
    json_t *data[MAX_CMS]; /* NULL when absent */
    size_t n;
};

struct gather {
    const struct source_in *in;
    struct fmw_diag *msg;
    json_t *notes;
    struct cm_cache cms;
    bool properties_applied; /* FLINK_PROPERTIES edited the file */
    bool opaque;             /* the conf file comes from a volume whose content is unknown here */
    bool yaml;               /* the file read is standard YAML (config.yaml) */
};

static enum fmw_plan_status unreadable(struct gather *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static enum fmw_plan_status unreadable(struct gather *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fmw_diag_vset(g->msg, FMW_ENOTFOUND, fmt, ap);
    va_end(ap);
    return FMW_PLAN_UNREADABLE;
}

static void note(struct gather *g, const char *text)
{
    json_array_append_new(g->notes, fmw_json_text(text));
}

/* Fetches a ConfigMap once per plan. FMW_OK with *data NULL when it does not exist. */
static enum fmw_err get_cm(struct gather *g, const char *name, json_t **data)
{
    for (size_t i = 0; i < g->cms.n; i++) {
        if (strcmp(g->cms.name[i], name) == 0) {
            *data = g->cms.data[i];
            return FMW_OK;
        }
    }
    if (g->cms.n == MAX_CMS)
        return fmw_diag_set(g->msg, FMW_ETOOBIG, "more than %d ConfigMaps in the conf dir",
                            MAX_CMS);
    json_t *d = NULL;
    struct fmw_diag err = FMW_DIAG_INIT;
    enum fmw_err rc = g->in->src && g->in->src->get
                          ? g->in->src->get(g->in->src->ctx, g->in->ns, name, &d, &err)
                          : fmw_diag_set(&err, FMW_EIO, "no ConfigMap source");
    if (rc == FMW_ENOTFOUND) {
        d = NULL;
        rc = FMW_OK;
    }
    if (rc) {
        fmw_diag_set(g->msg, rc, "ConfigMap %s/%s cannot be read: %s", g->in->ns, name,
                     fmw_diag_msg(&err));
        fmw_diag_cleanup(&err);
        return rc;
    }
    fmw_diag_cleanup(&err);
    char *copy = fmw_strdup(name);
    if (!copy) {
        json_decref(d);
        return fmw_diag_set(g->msg, FMW_ENOMEM, "out of memory");
    }
    g->cms.name[g->cms.n] = copy;
    g->cms.data[g->cms.n++] = d; /* takes the reference */
    *data = d;
    return FMW_OK;
}

static void cms_cleanup(struct cm_cache *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->name[i]);
        json_decref(c->data[i]);
    }
    c->n = 0;
}

/* A file found in a volume: its text (borrowed from the cached ConfigMap) and where. */
struct found {
    const char *text;
    size_t len;
    char where[FMW_PLAN_TEXT];
};

/* Looks for `path` in one configMap source (of a configMap volume or a projected one). */
static enum fmw_err find_in_configmap(struct gather *g, json_t *src, const char *path,
                                      struct found *f)
{
    const char *name = json_string_value(json_object_get(src, "name"));
    if (!name)
        return FMW_OK;
    json_t *items = json_object_get(src, "items");
    const char *key = NULL;
    if (json_is_array(items) && json_array_size(items) > 0) {
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            const char *p = json_string_value(json_object_get(it, "path"));
            if (p && strcmp(p, path) == 0)
                key = json_string_value(json_object_get(it, "key"));
        }
        if (!key)
            return FMW_OK;
    } else {
        key = path;
    }
    json_t *data = NULL;
    enum fmw_err err = get_cm(g, name, &data);
    if (err)
        return err;
    if (!data) {
        if (json_is_true(json_object_get(src, "optional")))
            return FMW_OK;
        return fmw_diag_set(g->msg, FMW_ENOTFOUND, "ConfigMap %s/%s does not exist", g->in->ns,
                            name);
    }
    json_t *text = json_object_get(data, key);
    if (json_is_string(text)) {
        f->text = json_string_value(text);
        f->len = json_string_length(text);
        snprintf(f->where, sizeof f->where, "ConfigMap %s key %s", name, key);
    }
    return FMW_OK;
}

/* Does a projected source that the webhook cannot read (secret, downwardAPI, a token, ...) put
 * a file at `path`? Only what it names can be known: a whole Secret is its keys, unknown here. */
static bool source_names_path(json_t *src, const char *path)
{
    const char *p = json_string_value(json_object_get(src, "path"));
    if (p && strcmp(p, path) == 0)
        return true;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(src, "items"), i, it)
    {
        p = json_string_value(json_object_get(it, "path"));
        if (p && strcmp(p, path) == 0)
            return true;
    }
    return false;
}

/*
 * Looks for `path` (a file name relative to the volume root) in the configMap or projected
 * volume `vol`. Returns FMW_OK with f->text NULL when the volume has no such file. In a projected
 * volume every source counts, in order, and a later one's file replaces an earlier one's (the
 * kubelet writes them into one payload map).
 */
static enum fmw_err find_in_volume(struct gather *g, json_t *vol, const char *path, struct found *f)
{
    f->text = NULL;
    json_t *cm = json_object_get(vol, "configMap");
    if (json_is_object(cm))
        return find_in_configmap(g, cm, path, f);
    json_t *projected = json_object_get(vol, "projected");
    if (!json_is_object(projected))
        return FMW_OK;
    const char *secret = NULL; /* a whole Secret after the file's source */
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(projected, "sources"), i, s)
    {
        const char *key;
        json_t *c = json_object_get(s, "configMap");
        if (json_is_object(c)) {
            struct found here = {NULL, 0, ""};
            enum fmw_err err = find_in_configmap(g, c, path, &here);
            if (err)
                return err;
            if (here.text) {
                *f = here;
                secret = NULL;
            }
            continue;
        }
        json_object_foreach(s, key, c)
        {
            if (!json_is_object(c))
                continue;
            if (source_names_path(c, path))
                return fmw_diag_set(g->msg, FMW_ENOTFOUND, "%s is from a projected %s", path, key);
            if (strcmp(key, "secret") == 0 && f->text &&
                !json_is_array(json_object_get(c, "items")))
                secret = json_string_value(json_object_get(c, "name"));
        }
    }
    if (secret) {
        char text[384];
        snprintf(text, sizeof text, "Secret %.253s is projected later; a key %s in it would win",
                 secret, path);
        note(g, text);
    }
    return FMW_OK;
}

static json_t *find_volume(json_t *spec, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(spec, "volumes"), i, v)
    {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && strcmp(n, name) == 0)
            return v;
    }
    return NULL;
}

/* Why a volume's content cannot be known before the pod runs, or NULL when it can. */
static const char *opaque_volume(json_t *vol)
{
    if (json_is_object(json_object_get(vol, "configMap")) ||
        json_is_object(json_object_get(vol, "projected")))
        return NULL;
    if (json_is_object(json_object_get(vol, "secret")))
        return "a Secret volume (the webhook does not read Secrets)";
    if (json_is_object(json_object_get(vol, "emptyDir")))
        return "an emptyDir volume (filled at run time)";
    return "a volume whose content is not known before the pod runs";
}

/* Strips trailing slashes (but keeps "/"). */
/* An absolute path as the kernel walks it, lexically: "//" and "/./" dropped, ".." taken back,
 * no trailing slash ("/opt/flink//bin/../conf/" is /opt/flink/conf). A relative path is only
 * stripped of trailing slashes. */
static void normalise_path(char *p)
{
    size_t n = strlen(p);
    if (p[0] == '/') {
        size_t out = 0; /* p[0..out) is the result so far, without its leading '/' */
        for (size_t i = 1; i <= n;) {
            size_t e = i;
            while (e < n && p[e] != '/')
                e++;
            size_t len = e - i;
            if (len == 2 && p[i] == '.' && p[i + 1] == '.') {
                if (out > 0)
                    out--;
                while (out > 0 && p[out] != '/')
                    out--;
            } else if (len > 0 && !(len == 1 && p[i] == '.')) {
                p[out] = '/';
                memmove(p + out + 1, p + i, len);
                out += len + 1;
            }
            i = e + 1;
        }
        if (out == 0)
            out = 1; /* "/" */
        p[0] = '/';
        p[out] = '\0';
        return;
    }
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
}

static bool line_at_least(struct fmw_flink_version v, int major, int minor)
{
    return fmw_flink_version_cmp(v, FMW_FLINK_LINE(major, minor)) >= 0;
}

/* Parses a configuration file text into conf: Flink's file format by file name and version. */
static enum fmw_plan_status parse_file(struct gather *g, struct fmw_conf *conf, const char *name,
                                       const char *text, size_t len)
{
    bool yaml = !fmw_flink_reads_legacy_file(g->in->version) ||
                (fmw_flink_reads_standard_file(g->in->version) && strcmp(name, STANDARD_FILE) == 0);
    g->yaml = yaml;
    struct fmw_buf detail;
    fmw_buf_init(&detail, 1024);
    enum fmw_err err = yaml ? fmw_conf_parse_yaml(conf, text, len, g->msg, &detail)
                            : fmw_conf_parse_legacy(conf, text, len, g->msg);
    enum fmw_plan_status st = FMW_PLAN_RESOLVED;
    if (err == FMW_EINVAL) {
        char n[FMW_PLAN_TEXT];
        snprintf(n, sizeof n, "%s: %s", name, fmw_buf_cstr(&detail));
        note(g, n);
        st = FMW_PLAN_INVALID;
    } else if (err) {
        st = unreadable(g, "%s: %s", name, fmw_diag_msg(g->msg));
    }
    fmw_buf_free(&detail);
    return st;
}

/* Could a line of a conf file with this key change the process's memory or JVM flags? Keys
 * of a nested YAML line are their last part, so the test is by words. */
bool fmw_memory_key(const char *key, size_t n)
{
    static const char *const WORDS[] = {"memory",       "heap", "java.opts",
                                        "limit-factor", "size", "numberOfBuffers"};
    for (size_t i = 0; i < sizeof WORDS / sizeof WORDS[0]; i++) {
        size_t w = strlen(WORDS[i]);
        for (size_t k = 0; k + w <= n; k++) {
            if (memcmp(key + k, WORDS[i], w) == 0)
                return true;
        }
    }
    return false;
}

/*
 * The first variable that a line of `text` setting a memory key (memory_key) refers to as
 * $NAME or ${NAME} while its value is not known here (valueFrom): envsubst would put the
 * container's value there, which decides the size. NULL when there is none.
 */
static const char *unknown_in_memory_lines(const char *text, const struct env_var *env, size_t nenv)
{
    const char *line = text;
    while (*line) {
        size_t n = strcspn(line, "\n");
        const char *colon = memchr(line, ':', n);
        if (colon && memchr(line, '$', n) && fmw_memory_key(line, (size_t)(colon - line))) {
            char *one = fmw_str_dup((struct fmw_str){line, n});
            const char *unknown = NULL;
            char *done = one ? fmw_envsubst(one, env, nenv, &unknown) : NULL;
            free(done);
            free(one);
            if (unknown)
                return unknown;
        }
        line += n + (line[n] ? 1 : 0);
    }
    return NULL;
}

/* FLINK_PROPERTIES' value without the webhook's own line (fmw_own_properties_line), which the
 * webhook's sizing gives, as it does its -D: a new string, NULL when out of memory. */
static char *user_properties(const struct source_in *in, const char *value)
{
    char own[FMW_OWN_LINE_MAX];
    fmw_own_properties_line(in->role, own);
    bool had;
    return fmw_without_line(value, own, &had);
}

/* FLINK_PROPERTIES' text (without the webhook's own line) as the entrypoint applies it. */
static enum fmw_plan_status apply_properties_text(struct gather *g, struct fmw_conf *conf,
                                                  const char *fp_value)
{
    const char *unknown = unknown_in_memory_lines(fp_value, g->in->env, g->in->nenv);
    if (unknown)
        return unreadable(g, "FLINK_PROPERTIES sets memory from $%.64s, which comes from valueFrom",
                          unknown);
    if (!line_at_least(g->in->version, 1, 19)) {
        /* ≤1.18: appended to flink-conf.yaml, then envsubst over the file; last key wins. */
        char *text = fmw_envsubst(fp_value, g->in->env, g->in->nenv, NULL);
        if (!text)
            return unreadable(g, "out of memory");
        enum fmw_err err = fmw_conf_parse_legacy(conf, text, strlen(text), g->msg);
        free(text);
        g->properties_applied = err == FMW_OK;
        return err ? unreadable(g, "FLINK_PROPERTIES: %s", fmw_diag_msg(g->msg))
                   : FMW_PLAN_RESOLVED;
    }
    /* 1.19+: per line, all white space deleted, split at the first ':', value envsubst'ed. */
    const char *p = fp_value;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        struct fmw_buf line;
        fmw_buf_init(&line, 1 << 20);
        enum fmw_err err = fmw_buf_add(&line, "", 0);
        for (size_t i = 0; i < n && !err; i++) {
            if (!strchr(" \t\r\v\f", p[i]))
                err = fmw_buf_addc(&line, p[i]);
        }
        const char *colon = strchr(fmw_buf_cstr(&line), ':');
        if (!err && colon && colon != line.data) {
            char *value = fmw_envsubst(colon + 1, g->in->env, g->in->nenv, NULL);
            err = value
                      ? fmw_conf_set(conf, (struct fmw_str){line.data, (size_t)(colon - line.data)},
                                     fmw_str_c(value), FMW_CONF_STRING, 0)
                      : FMW_ENOMEM;
            free(value);
        }
        fmw_buf_free(&line);
        if (err)
            return unreadable(g, "FLINK_PROPERTIES: %s", fmw_strerror(err));
        p += n + (nl ? 1 : 0);
    }
    g->properties_applied = true;
    return FMW_PLAN_RESOLVED;
}

/* docker-entrypoint.sh's FLINK_PROPERTIES, applied to the conf file read where the entrypoint
 * writes it (flink-docker's docker-entrypoint.sh); `unwritten` says why it does not, or NULL. */
static enum fmw_plan_status apply_flink_properties(struct gather *g, struct fmw_conf *conf,
                                                   const char *unwritten)
{
    const struct env_var *fp = fmw_env_find(g->in->env, g->in->nenv, "FLINK_PROPERTIES");
    /* flink-docker's entrypoint of 1.11 and 1.12 edits the file only for its start commands
     * (prepare_job_manager_start and the taskmanager branch); from 1.13 for every command. */
    bool entry_edits = g->in->launch->via_entrypoint &&
                       (line_at_least(g->in->version, 1, 13) || g->in->launch->kind == L_ENTRY_JM ||
                        g->in->launch->kind == L_ENTRY_SAJ || g->in->launch->kind == L_ENTRY_TM);
    if (g->in->properties_write_out)
        *g->in->properties_write_out = entry_edits && !unwritten;
    if (!fp)
        return FMW_PLAN_RESOLVED;
    if (!entry_edits || unwritten) {
        char text[FMW_PLAN_TEXT];
        snprintf(text, sizeof text, "FLINK_PROPERTIES is not applied: %s",
                 !entry_edits ? "docker-entrypoint.sh does not start this container" : unwritten);
        note(g, text);
        return FMW_PLAN_RESOLVED;
    }
    if (!fp->value)
        return unreadable(g,
                          "FLINK_PROPERTIES comes from valueFrom: what it sets is not known here");
    char *value = user_properties(g->in, fp->value);
    if (!value)
        return unreadable(g, "out of memory");
    /* Empty, or only the webhook's line: nothing of the user's edits the file (the entrypoint
     * appends FLINK_PROPERTIES only when it is not empty: [ -n "${FLINK_PROPERTIES}" ]). */
    enum fmw_plan_status st = !*value ? FMW_PLAN_RESOLVED : apply_properties_text(g, conf, value);
    free(value);
    return st;
}

/*
 * Why docker-entrypoint.sh does not write the image's own conf file that Flink reads, or NULL
 * where it does: it edits /opt/flink/conf (owned by flink, uid 9999, in flink-docker's images)
 * in place, which fails on a read-only root filesystem or for another uid than root's or flink's
 * (OpenShift's, say), and config.sh reads FLINK_CONF_DIR, which may be elsewhere.
 */
static const char *image_conf_unwritten(const struct source_in *in, const char *conf_dir,
                                        char buf[96])
{
    json_t *ctx = json_object_get(in->container, "securityContext");
    json_t *uid = json_object_get(ctx, "runAsUser");
    if (!uid)
        uid = json_object_get(json_object_get(in->spec, "securityContext"), "runAsUser");
    if (strcmp(conf_dir, DEFAULT_CONF_DIR) != 0)
        return "Flink reads FLINK_CONF_DIR, not the conf dir the entrypoint edits";
    if (json_is_true(json_object_get(ctx, "readOnlyRootFilesystem")))
        return "the root filesystem is read-only";
    if (uid && json_integer_value(uid) != 0 && json_integer_value(uid) != 9999) {
        snprintf(buf, 96, "uid %" JSON_INTEGER_FORMAT " cannot write the image's conf dir",
                 json_integer_value(uid));
        return buf;
    }
    return NULL;
}

static enum fmw_plan_status image_default(struct gather *g, struct fmw_conf *conf,
                                          const char *conf_dir, char source[FMW_PLAN_TEXT])
{
    const char *file = fmw_flink_reads_standard_file(g->in->version) ? STANDARD_FILE : LEGACY_FILE;
    const char *key = image_default_key(g->in), *value = image_default_value(g->in);
    snprintf(source, FMW_PLAN_TEXT, "the image's %s (%s: %s)", file, key, value);
    if (fmw_conf_set(conf, fmw_str_c(key), fmw_str_c(value), FMW_CONF_STRING, 0))
        return unreadable(g, "out of memory");
    char buf[96];
    return apply_flink_properties(g, conf, image_conf_unwritten(g->in, conf_dir, buf));
}

/* The annotation flink-memory-webhook/configmap: NAME[/KEY]. */
static enum fmw_plan_status from_annotation(struct gather *g, struct fmw_conf *conf,
                                            char source[FMW_PLAN_TEXT])
{
    char name[254];
    const char *ann = g->in->configmap_annotation;
    const char *slash = strchr(ann, '/');
    size_t n = slash ? (size_t)(slash - ann) : strlen(ann);
    if (n == 0 || n >= sizeof name)
        return unreadable(g, "annotation " FMW_ANN_CONFIGMAP " is not NAME[/KEY]: '%.64s'", ann);
    memcpy(name, ann, n);
    name[n] = '\0';
    json_t *data;
    if (get_cm(g, name, &data))
        return FMW_PLAN_UNREADABLE;
    if (!data)
        return unreadable(g, "ConfigMap %s/%s (annotation) does not exist", g->in->ns, name);
    const char *key = slash ? slash + 1 : NULL;
    if (!key) {
        /* The version's choice: flink-conf.yaml up to 1.18; in 1.19/1.20 when present. */
        key = fmw_flink_uses_legacy_file(g->in->version, json_object_get(data, LEGACY_FILE))
                  ? LEGACY_FILE
                  : STANDARD_FILE;
    }
    json_t *text = json_object_get(data, key);
    if (!json_is_string(text))
        return unreadable(g, "ConfigMap %s has no key %s", name, key);
    snprintf(source, FMW_PLAN_TEXT, "ConfigMap %s key %s (annotation)", name, key);
    const char *file =
        (!fmw_flink_reads_legacy_file(g->in->version) || strcmp(key, STANDARD_FILE) == 0)
            ? STANDARD_FILE
            : LEGACY_FILE;
    return parse_file(g, conf, file, json_string_value(text), json_string_length(text));
}

/* ---- Bitnami's image (bitnami/containers bitnami/flink rootfs/opt/bitnami/scripts) ---- */

#define BITNAMI_CONF_DIR "/opt/bitnami/flink/conf"
#define CFG_PREFIX       "FLINK_CFG_"

/* libflink.sh flink_configure_from_environment_variables: FLINK_CFG_ stripped, "__" → "-",
 * "_" → ".", lower case; FLINK_CFG_HIGH__AVAILABILITY_STORAGE_DIR is spelled out. */
static void bitnami_key(const char *var, char *key, size_t size)
{
    if (strcmp(var, "FLINK_CFG_HIGH__AVAILABILITY_STORAGE_DIR") == 0) {
        snprintf(key, size, "high-availability.storageDir");
        return;
    }
    size_t k = 0;
    for (const char *p = var + strlen(CFG_PREFIX); *p && k + 1 < size; p++) {
        if (p[0] == '_' && p[1] == '_') {
            key[k++] = '-';
            p++;
        } else if (*p == '_') {
            key[k++] = '.';
        } else {
            key[k++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        }
    }
    key[k] = '\0';
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * libflink.sh flink_set_config_option: when a line starts with "KEY:", every line holding
 * "KEY:" has it and the rest of the line replaced by "KEY: VALUE" (sed, '&' standing for what
 * matched); otherwise "KEY: VALUE" is appended.
 */
static enum fmw_err bitnami_set(struct fmw_buf *file, const char *key, const char *value)
{
    size_t kl = strlen(key);
    /* Each call reads the whole file, as grep and sed do: charged to the pod's budget. */
    enum fmw_err err = fmw_expand_charge(0, file->len + 1);
    if (err)
        return err;
    const char *text = fmw_buf_cstr(file);
    bool at_start = false;
    for (const char *line = text; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            at_start = true;
    }
    if (!at_start)
        return fmw_buf_addf(file, "%s: %s\n", key, value);
    err = fmw_expand_charge(0, file->len + 1);
    struct fmw_buf out;
    fmw_buf_init(&out, FMW_CONF_MAX_TEXT);
    if (!err)
        err = fmw_buf_add(&out, "", 0);
    const char *line = text;
    while (*line && !err) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        const char *hit = NULL;
        for (size_t i = 0; i + kl < n && !hit; i++) {
            if (strncmp(line + i, key, kl) == 0 && line[i + kl] == ':')
                hit = line + i;
        }
        if (!hit) {
            err = fmw_buf_add(&out, line, n);
        } else {
            err = fmw_buf_add(&out, line, (size_t)(hit - line));
            if (!err)
                err = fmw_buf_addf(&out, "%s: ", key);
            for (const char *r = value; *r && !err; r++) {
                if (*r == '&')
                    err = fmw_buf_add(&out, hit, (size_t)(line + n - hit));
                else if (*r == '\\' && (r[1] == '&' || r[1] == '\\'))
                    err = fmw_buf_addc(&out, *++r);
                else if (*r == '\\')
                    err = FMW_EINVAL; /* GNU sed's \n, \t, \U, \1 ...: not modelled */
                else
                    err = fmw_buf_addc(&out, *r);
            }
        }
        if (!err && nl)
            err = fmw_buf_addc(&out, '\n');
        line += n + (nl ? 1 : 0);
    }
    if (err) {
        fmw_buf_free(&out);
        return err;
    }
    fmw_buf_free(file);
    *file = out;
    return FMW_OK;
}

/* Is `path` the directory `dir`, inside it, or above it (both normalised)? */
static bool path_touches(const char *path, const char *dir)
{
    size_t pl = strlen(path), dl = strlen(dir);
    if (pl >= dl)
        return strncmp(path, dir, dl) == 0 && (path[dl] == '\0' || path[dl] == '/');
    return strncmp(dir, path, pl) == 0 && (dir[pl] == '/' || strcmp(path, "/") == 0);
}

/*
 * Bitnami's entrypoint copies conf.default into the conf dir (an emptyDir in Bitnami's chart),
 * then libflink.sh flink_prepare_configuration edits it: FLINK_PROPERTIES appended as written,
 * each FLINK_CFG_* set in name order, and envsubst over the whole file. The JobManager reads
 * config.yaml from 1.19 (flink-conf.yaml before). What conf.default holds is not published
 * beside the scripts: it is taken to be Flink's distribution file, and said so where it
 * decides the size.
 */
static enum fmw_plan_status bitnami_config(struct gather *g, struct fmw_conf *conf,
                                           char source[FMW_PLAN_TEXT])
{
    const struct source_in *in = g->in;
    bool standard = line_at_least(in->version, 1, 19);
    const char *file = standard ? STANDARD_FILE : LEGACY_FILE;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(in->container, "volumeMounts"), i, m)
    {
        const char *mp = json_string_value(json_object_get(m, "mountPath"));
        const char *vn = json_string_value(json_object_get(m, "name"));
        if (!mp || !vn)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s", mp);
        normalise_path(path);
        json_t *vol = find_volume(in->spec, vn);
        /* The conf dir, and conf.default that the entrypoint copies into it: a mount at, in or
         * above either puts files there that the webhook would have to guess at. */
        bool touches =
            path_touches(path, BITNAMI_CONF_DIR) || path_touches(path, BITNAMI_CONF_DIR ".default");
        if (!vol || !touches || json_object_get(vol, "emptyDir"))
            continue;
        return unreadable(g,
                          "Bitnami's setup copies conf.default into %s and edits it, and volume "
                          "%s is mounted at %s: not modelled",
                          BITNAMI_CONF_DIR, vn, path);
    }
    struct fmw_buf text;
    fmw_buf_init(&text, FMW_CONF_MAX_TEXT);
    bool tm = in->role == FMW_ROLE_TASKMANAGER;
    const char *dkey = image_default_key(in), *dvalue = image_default_value(in);
    enum fmw_err err = standard
                           ? fmw_buf_addf(&text, "%s:\n  memory:\n    process:\n      size: %s\n",
                                          tm ? "taskmanager" : "jobmanager", dvalue)
                           : fmw_buf_addf(&text, "%s: %s\n", dkey, dvalue);
    const struct env_var *fp = fmw_env_find(in->env, in->nenv, "FLINK_PROPERTIES");
    bool edited = false;
    if (!err && fp && !fp->value) {
        fmw_buf_free(&text);
        return unreadable(g,
                          "FLINK_PROPERTIES comes from valueFrom: what it sets is not known here");
    } else if (!err && fp && *fp->value) {
        char *value = user_properties(in, fp->value);
        if (!value)
            err = FMW_ENOMEM;
        else if (*value) {
            err = fmw_buf_addf(&text, "%s\n", value); /* echo "${FLINK_PROPERTIES}" >> file */
            edited = true;
        }
        free(value);
    }
    /* ${!FLINK_CFG_@}: the names, sorted, each once (the last definition is the value). */
    const char **names = calloc(in->nenv ? in->nenv : 1, sizeof *names);
    size_t nn = 0;
    if (!names)
        err = FMW_ENOMEM;
    for (i = 0; i < in->nenv && !err; i++) {
        /* bash lists only names that are identifiers: others never reach the script. */
        const char *name = in->env[i].name;
        if (strncmp(name, CFG_PREFIX, strlen(CFG_PREFIX)) == 0 &&
            strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
                strlen(name))
            names[nn++] = name;
    }
    if (!err)
        qsort(names, nn, sizeof *names, by_name);
    size_t unique = 0;
    for (i = 0; i < nn; i++) {
        if (unique == 0 || strcmp(names[unique - 1], names[i]) != 0)
            names[unique++] = names[i];
    }
    nn = unique;
    /* A variable that stops the model leaves `refused` set, with the reason said. */
    bool refused = false;
    for (i = 0; i < nn && !err && !refused; i++) {
        const struct env_var *v = fmw_env_find(in->env, in->nenv, names[i]);
        char key[512], text_note[640];
        bitnami_key(names[i], key, sizeof key);
        bool from_value_from = !v->value || v->opaque_ref;
        if (from_value_from && fmw_memory_key(key, strlen(key))) {
            unreadable(g, "%.256s comes from valueFrom: the %.256s it sets is not known here",
                       names[i], key);
            refused = true;
        } else if (from_value_from) {
            snprintf(text_note, sizeof text_note, "%.256s comes from valueFrom and was not read",
                     names[i]);
            note(g, text_note);
        } else {
            err = bitnami_set(&text, key, v->value);
            edited = true;
            if (err == FMW_EINVAL) {
                unreadable(g,
                           "%.256s: sed would read a backslash escape in its value, which is "
                           "not modelled",
                           names[i]);
                refused = true;
            }
        }
    }
    free(names);
    const char *unknown =
        err || refused ? NULL : unknown_in_memory_lines(fmw_buf_cstr(&text), in->env, in->nenv);
    if (unknown) {
        unreadable(g, "Bitnami's %s sets memory from $%.64s, which comes from valueFrom", file,
                   unknown);
        refused = true;
    }
    if (refused) {
        fmw_buf_free(&text);
        return FMW_PLAN_UNREADABLE;
    }
    char *final = err ? NULL : fmw_envsubst(fmw_buf_cstr(&text), in->env, in->nenv, NULL);
    fmw_buf_free(&text);
    if (!final && err == FMW_ETOOBIG) /* past the pod's budget, or FMW_CONF_MAX_TEXT */
        return unreadable(g, "Bitnami's edits of %s are more than one pod is read for", file);
    if (!final)
        return unreadable(g, "%s: out of memory", file);
    enum fmw_plan_status st = parse_file(g, conf, file, final, strlen(final));
    free(final);
    /* Whether the assumed default still decides the size. It does whenever it is the process
     * size Flink reads: with a total Flink memory, a heap or task heap and managed memory given,
     * Flink still checks them against the process size and takes the overhead from it
     * (JobManagerProcessUtils, TaskExecutorProcessUtils). Only a process size of the user's
     * (another value, FLINK_CFG_<ROLE>_MEMORY_PROCESS_SIZE, or FLINK_PROPERTIES naming it)
     * makes the default irrelevant. */
    const struct fmw_conf_entry *ps = fmw_conf_get(conf, dkey);
    bool sized = ps && strcmp(ps->text, dvalue) != 0;
    sized = sized || fmw_env_find(in->env, in->nenv,
                                  tm ? "FLINK_CFG_TASKMANAGER_MEMORY_PROCESS_SIZE"
                                     : "FLINK_CFG_JOBMANAGER_MEMORY_PROCESS_SIZE");
    sized = sized || (fp && fp->value && strstr(fp->value, "process"));
    snprintf(source, FMW_PLAN_TEXT, "Bitnami's %s/%s%s%s%s%s", BITNAMI_CONF_DIR, file,
             sized ? "" : " (conf.default taken as Flink's: ", sized ? "" : dkey,
             sized ? ""
             : tm  ? " 1728m)"
                   : " 1600m)",
             edited ? ", edited by FLINK_PROPERTIES and FLINK_CFG_*" : "");
    if (st == FMW_PLAN_RESOLVED && !sized) {
        char text_note[256];
        snprintf(text_note, sizeof text_note,
                 "the size comes from Bitnami's conf.default, taken to be Flink's default (%s): "
                 "set FLINK_CFG_%s_MEMORY_PROCESS_SIZE to make it certain",
                 dvalue, tm ? "TASKMANAGER" : "JOBMANAGER");
        note(g, text_note);
    }
    return st;
}

/* What the JobManager reads through its mounts: the conf dir, files in it, or the image's own. */
static enum fmw_plan_status from_mounts(struct gather *g, struct fmw_conf *conf,
                                        char source[FMW_PLAN_TEXT])
{
    enum fmw_plan_status st;
    char conf_dir[1024];
    const struct env_var *cd = fmw_env_find(g->in->env, g->in->nenv, "FLINK_CONF_DIR");
    /* config.sh: an empty FLINK_CONF_DIR is the default one (`if [ -z "$FLINK_CONF_DIR" ]`). */
    snprintf(conf_dir, sizeof conf_dir, "%s",
             cd && cd->value && *cd->value ? cd->value : DEFAULT_CONF_DIR);
    normalise_path(conf_dir);
    size_t dir_len = strlen(conf_dir);

    /* The mounts that matter: at the conf dir, at a file inside it, or above it. */
    json_t *dir_vol = NULL;
    json_t *file_vol[2] = {NULL, NULL};
    const char *file_sub[2] = {NULL, NULL};
    static const char *const FILES[2] = {LEGACY_FILE, STANDARD_FILE};
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(g->in->container, "volumeMounts"), i, m)
    {
        const char *mp = json_string_value(json_object_get(m, "mountPath"));
        const char *vn = json_string_value(json_object_get(m, "name"));
        const char *sub = json_string_value(json_object_get(m, "subPath"));
        if (!mp || !vn)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s", mp);
        normalise_path(path);
        json_t *vol = find_volume(g->in->spec, vn);
        if (!vol)
            continue;
        size_t pl = strlen(path);
        if (strcmp(path, conf_dir) == 0) {
            if (sub && *sub) {
                st = unreadable(g, "the conf dir %s is a subPath of volume %s", conf_dir, vn);
                goto done;
            }
            dir_vol = vol;
        } else if (pl > dir_len && strncmp(path, conf_dir, dir_len) == 0 && path[dir_len] == '/') {
            for (int k = 0; k < 2; k++) {
                if (strcmp(path + dir_len + 1, FILES[k]) == 0) {
                    file_vol[k] = vol;
                    file_sub[k] = sub && *sub ? sub : NULL;
                }
            }
        } else if ((pl < dir_len && strncmp(conf_dir, path, pl) == 0 && conf_dir[pl] == '/') ||
                   strcmp(path, "/") == 0) {
            st = unreadable(g, "the conf dir %s lies inside volume %s mounted at %s", conf_dir, vn,
                            path);
            goto done;
        }
    }

    struct found f;
    if (dir_vol) {
        const char *why = opaque_volume(dir_vol);
        if (why) {
            g->opaque = true;
            st = unreadable(g, "the conf dir %s is %s", conf_dir, why);
            goto done;
        }
        /* Every file of the mount, chosen as the version's GlobalConfiguration does. */
        struct found legacy, standard;
        legacy.text = standard.text = NULL;
        if (fmw_flink_reads_legacy_file(g->in->version) &&
            find_in_volume(g, dir_vol, LEGACY_FILE, &legacy)) {
            st = FMW_PLAN_UNREADABLE;
            goto done;
        }
        if (fmw_flink_reads_standard_file(g->in->version) &&
            find_in_volume(g, dir_vol, STANDARD_FILE, &standard)) {
            st = FMW_PLAN_UNREADABLE;
            goto done;
        }
        bool use_legacy = fmw_flink_uses_legacy_file(g->in->version, legacy.text != NULL);
        struct found *chosen = use_legacy ? &legacy : &standard;
        const char *file = use_legacy ? LEGACY_FILE : STANDARD_FILE;
        if (!chosen->text) {
            st = unreadable(g, "Flink %d.%d reads %s/%s, which the mounted volume does not hold",
                            g->in->version.major, g->in->version.minor, conf_dir, file);
            goto done;
        }
        snprintf(source, FMW_PLAN_TEXT, "%s", chosen->where);
        st = parse_file(g, conf, file, chosen->text, chosen->len);
        if (st == FMW_PLAN_RESOLVED)
            st = apply_flink_properties(g, conf, READ_ONLY_MOUNT);
        goto done;
    }

    /* The image's conf dir, possibly with single files mounted over its own. */
    int k = -1;
    if (fmw_flink_reads_legacy_file(g->in->version) && file_vol[0])
        k = 0; /* a mounted flink-conf.yaml is read by every 1.x line */
    else if (fmw_flink_reads_standard_file(g->in->version) && file_vol[1])
        k = 1;
    for (int j = 0; j < 2; j++) {
        if (file_vol[j] && j != k)
            note(g, j == 0 ? "the mounted flink-conf.yaml is ignored by this Flink version"
                           : "the mounted config.yaml is ignored by this Flink version");
    }
    if (k < 0) {
        st = image_default(g, conf, conf_dir, source);
        goto done;
    }
    const char *why = opaque_volume(file_vol[k]);
    if (why) {
        g->opaque = true;
        st = unreadable(g, "%s/%s comes from %s", conf_dir, FILES[k], why);
        goto done;
    }
    if (!file_sub[k]) {
        st = unreadable(g, "%s/%s is a directory mount", conf_dir, FILES[k]);
        goto done;
    }
    if (find_in_volume(g, file_vol[k], file_sub[k], &f)) {
        st = FMW_PLAN_UNREADABLE;
        goto done;
    }
    if (!f.text) {
        st = unreadable(g, "volume %s has no %s",
                        json_string_value(json_object_get(file_vol[k], "name")), file_sub[k]);
        goto done;
    }
    snprintf(source, FMW_PLAN_TEXT, "%s", f.where);
    st = parse_file(g, conf, FILES[k], f.text, f.len);
    if (st == FMW_PLAN_RESOLVED)
        st = apply_flink_properties(g, conf, READ_ONLY_MOUNT);
done:
    return st;
}

/* Does a volume of the pod (any container's, an init container's too) carry ConfigMap `name`? */
static bool pod_has_configmap(json_t *spec, const char *name, size_t n)
{
    size_t i, j;
    json_t *v, *src;
    json_array_foreach(json_object_get(spec, "volumes"), i, v)
    {
        const char *cm =
            json_string_value(json_object_get(json_object_get(v, "configMap"), "name"));
        if (cm && strlen(cm) == n && strncmp(cm, name, n) == 0)
            return true;
        json_array_foreach(json_object_get(json_object_get(v, "projected"), "sources"), j, src)
        {
            cm = json_string_value(json_object_get(json_object_get(src, "configMap"), "name"));
            if (cm && strlen(cm) == n && strncmp(cm, name, n) == 0)
                return true;
        }
    }
    return false;
}

enum fmw_plan_status fmw_source_gather(const struct source_in *in, struct fmw_conf *conf,
                                       char source[FMW_PLAN_TEXT], struct fmw_diag *msg,
                                       json_t *notes)
{
    struct gather g = {in, msg, notes, {{NULL}, {NULL}, 0}, false, false, false};
    enum fmw_plan_status st;
    source[0] = '\0';
    const char *ann = in->configmap_annotation;
    if (ann && (in->runs_script || pod_has_configmap(in->spec, ann, strcspn(ann, "/")))) {
        st = from_annotation(&g, conf, source);
        goto out;
    }
    /*
     * A script of the container's may write the conf dir from anything (a Secret, a download):
     * the annotation is what it says. Otherwise, when the annotation names a ConfigMap the pod
     * does not carry, it is believed only where the
     * JobManager's conf file comes from a volume whose content cannot be known here (an
     * emptyDir filled at start, say); where the JobManager reads a file the webhook can see,
     * that file is what it gets.
     */
    size_t nnotes = json_array_size(notes);
    st = in->launch->bitnami ? bitnami_config(&g, conf, source) : from_mounts(&g, conf, source);
    if (ann && st == FMW_PLAN_UNREADABLE && g.opaque) {
        while (json_array_size(notes) > nnotes)
            json_array_remove(notes, nnotes);
        fmw_conf_cleanup(conf);
        fmw_conf_init(conf);
        g.properties_applied = false;
        source[0] = '\0';
        st = from_annotation(&g, conf, source);
    } else if (ann && st == FMW_PLAN_RESOLVED) {
        char text[FMW_PLAN_TEXT * 2];
        snprintf(text, sizeof text,
                 "annotation " FMW_ANN_CONFIGMAP " is not followed: the pod does not carry "
                 "ConfigMap %.*s, and the %s reads %s",
                 (int)strcspn(ann, "/"), ann,
                 in->role == FMW_ROLE_TASKMANAGER ? "TaskManager" : "JobManager", source);
        note(&g, text);
    }
out:
    if (st == FMW_PLAN_RESOLVED && g.properties_applied) {
        size_t n = strlen(source);
        snprintf(source + n, FMW_PLAN_TEXT - n, ", edited by FLINK_PROPERTIES");
    }
    if (in->yaml_out)
        *in->yaml_out = g.yaml;
    cms_cleanup(&g.cms);
    return st;
}
