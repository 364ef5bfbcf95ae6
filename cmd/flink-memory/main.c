/*
 * flink-memory: the offline CLI, also installed as the kubectl plugin kubectl-flink_memory.
 * It only parses flags, reads files and wires the packages together; every rule lives below.
 *
 * Exit codes (cli.h): 0 success; 1 Flink rejects the configuration or the size (Flink's
 * message), or audit found a JobManager that disagrees; 2 bad usage, an unreadable file, or an
 * API server that could not be asked.
 */
#include "cmd/flink-memory/cli.h"
#include "pkg/admission/admission.h"
#include "pkg/base/base.h"
#include "pkg/flinkconf/flinkconf.h"
#include "pkg/kube/kube.h"
#include "pkg/jmmem/jmmem.h"
#include "pkg/memsize/memsize.h"
#include "pkg/podspec/podspec.h"
#include "pkg/tmmem/tmmem.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_REJECTED FMW_CLI_EXIT_REJECTED
#define EXIT_USAGE    FMW_CLI_EXIT_USAGE
#define MAX_FILE      (4u << 20)

static const char USAGE[] =
    "usage: flink-memory <command> [options]\n"
    "\n"
    "Resolves Apache Flink JobManager and TaskManager memory exactly as Flink does, offline.\n"
    "\n"
    "commands:\n"
    "  resolve   resolve a configuration: Flink's memory table, JVM flags, Kubernetes size\n"
    "  explain   the same as 'resolve --output text', with the lines Flink would log;\n"
    "            with -f, what the webhook would do to a pod or workload manifest\n"
    "  review    answer an AdmissionReview read from stdin, exactly as the webhook does\n"
    "  size      convert one size between Flink and Kubernetes spellings\n"
    "  audit     list the cluster's JobManager pods whose memory disagrees with Flink\n"
    "            (flink-memory audit --help)\n"
    "  version   print the version of this tool\n"
    "\n"
    "resolve / explain options:\n"
    "  --config FILE          the configuration file; 'config.yaml' is read as standard YAML,\n"
    "                         any other name with the legacy flink-conf.yaml line parser\n"
    "  --conf-dir DIR         a Flink conf directory; the file is chosen as the Flink version\n"
    "                         does (flink-conf.yaml up to 1.18, either in 1.19/1.20,\n"
    "                         config.yaml from 2.0)\n"
    "  --format legacy|yaml   override the format chosen from the file name\n"
    "  -D key=value, -Dkey=value\n"
    "                         a dynamic property on top of the file (repeatable); without any\n"
    "                         file the configuration comes from -D alone\n"
    "  --flink-version X.Y    the Flink line to model, 1.11 to 2.x (default 1.20)\n"
    "  --role jobmanager|taskmanager\n"
    "                         the process to size (default jobmanager)\n"
    "  --from-limit Q, --from-request Q\n"
    "                         a pod's memory limit or request (a Kubernetes quantity) is the\n"
    "                         process size, as the webhook's sizing from-limit/from-request\n"
    "                         gives it (after the file and every -D); a size Flink refuses\n"
    "                         also gets the sizes Flink accepts\n"
    "  --legacy-heap-as none|heap|process      (jobmanager)\n"
    "                         how jobmanager.heap.size, jobmanager.heap.mb and FLINK_JM_HEAP are\n"
    "                         read: as JVM heap (default for 1.x, a script-started JobManager),\n"
    "                         as total process memory (the Kubernetes/YARN client), or ignored\n"
    "                         (2.x, which removed them)\n"
    "  --legacy-heap-as none|flink|process     (taskmanager)\n"
    "                         how taskmanager.heap.size, taskmanager.heap.mb and FLINK_TM_HEAP\n"
    "                         are read: as total Flink memory (default for 1.x, a script-started\n"
    "                         TaskManager), as total process memory (a TaskManager Flink's\n"
    "                         Kubernetes/YARN resource manager starts), or ignored (2.x)\n"
    "  --env NAME=VALUE       an environment variable of the process (FLINK_JM_HEAP for a\n"
    "                         JobManager, FLINK_TM_HEAP for a TaskManager)\n"
    "  --output text|json     output format (default text)\n"
    "\n"
    "explain -f options (offline, nothing is sent anywhere):\n"
    "  -f FILE                a Pod, Deployment, StatefulSet, ReplicaSet, Job or CronJob\n"
    "                         manifest (ConfigMaps in the same file are used too)\n"
    "  --configmap FILE       ConfigMap manifests (YAML or JSON; repeatable)\n"
    "  --namespace NS         the namespace of the lookups (default: the manifest's)\n"
    "  --default-flink-version X.Y, --requests equal|keep-lower,\n"
    "  --headroom deliberate|keep|remove, --roles jobmanager,taskmanager,\n"
    "  --sizing from-config|from-limit|from-request\n"
    "                         the webhook's settings, as for review\n"
    "\n";
/* In two parts: one string literal longer than 4095 bytes is beyond what C requires. */
static const char USAGE_MORE[] =
    "review options:\n"
    "  --configmap FILE       ConfigMap manifests standing in for the API server (repeatable)\n"
    "  --mode enforce|dry-run|off, --on-invalid deny|warn, --workloads warn|patch|off,\n"
    "  --default-flink-version X.Y, --requests equal|keep-lower,\n"
    "  --headroom deliberate|keep|remove, --roles jobmanager,taskmanager,\n"
    "  --sizing from-config|from-limit|from-request\n"
    "                         the webhook's settings (defaults: enforce, deny, warn, 2.3, equal,\n"
    "                         deliberate, both roles, from-config)\n"
    "\n"
    "size options:\n"
    "  flink-memory size TEXT [--output text|json]\n"
    "                         TEXT is a Flink size (1600m, 2 gb) or a Kubernetes quantity\n"
    "                         (1600Mi, 2G); Flink's syntax is tried first\n"
    "\n"
    "exit status: 0 ok (for explain -f: the manifest was read and explained, whatever the\n"
    "webhook would do, including a configuration it cannot read), 1 Flink rejects the\n"
    "configuration or a pod's (Flink's message), 2 bad usage or an unreadable file\n";

int fmw_cli_error(const char *cmd, const char *help, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "flink-memory%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    if (help)
        fprintf(stderr, "(see '%s')\n", help);
    va_end(ap);
    return EXIT_USAGE;
}

#define usage_error(...) fmw_cli_error(NULL, "flink-memory --help", __VA_ARGS__)

/* Reads a whole file (at most MAX_FILE bytes) into `out`. */
static enum fmw_err read_file(const char *path, struct fmw_buf *out, struct fmw_diag *d)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fmw_diag_set(d, FMW_EIO, "cannot read '%s': %s", path, strerror(errno));
    char chunk[65536];
    size_t n;
    enum fmw_err err = FMW_OK;
    while (!err && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        err = fmw_buf_add(out, chunk, n);
    if (!err && ferror(f))
        err = fmw_diag_set(d, FMW_EIO, "cannot read '%s': %s", path, strerror(errno));
    else if (err == FMW_ETOOBIG)
        fmw_diag_set(d, err, "'%s' is larger than %u bytes", path, MAX_FILE);
    else if (err)
        fmw_diag_set(d, err, "out of memory reading '%s'", path);
    fclose(f);
    return err;
}

static bool file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

enum format { FORMAT_AUTO, FORMAT_LEGACY, FORMAT_YAML };

struct resolve_opts {
    const char *config;
    const char *conf_dir;
    enum format format;
    struct fmw_flink_version version;
    bool taskmanager; /* --role taskmanager */
    /* --legacy-heap-as as given (NULL: the role's default), checked against the role. */
    const char *legacy_as;
    enum fmw_legacy_heap legacy;
    enum fmw_tm_legacy tm_legacy;
    const char *env_jm_heap;
    const char *env_tm_heap;
    bool json;
    bool explain;
    /* --from-limit or --from-request: the pod's size in bytes (0: not given). */
    uint64_t pod_size;
    /* -D properties in order. */
    const char **dynamic;
    size_t ndynamic;
};

static void version_str(struct fmw_flink_version v, char out[16])
{
    snprintf(out, 16, "%d.%d", v.major, v.minor);
}

/*
 * Paths as java.io.File makes them, since Flink's messages about the conf dir print File
 * objects. java_path: UnixFileSystem.normalize (runs of '/' as one, no trailing '/' but in
 * "/"); java_child: new File(parent, child).getPath() of a normalised parent
 * (UnixFileSystem.resolve); java_absolute: getAbsolutePath(), an absolute path as it is, else
 * joined to user.dir, the working directory as getcwd gives it (the path's own ".", ".." and
 * links stay as written). Each is malloc'd, NULL without memory.
 */
static char *java_path(const char *path)
{
    char *out = fmw_strdup(path);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; path[i]; i++) {
        if (path[i] == '/' && k > 0 && out[k - 1] == '/')
            continue;
        out[k++] = path[i];
    }
    if (k > 1 && out[k - 1] == '/')
        k--;
    out[k] = '\0';
    return out;
}

static char *java_child(const char *parent, const char *child)
{
    size_t n = strlen(parent) + strlen(child) + 2;
    char *out = malloc(n);
    if (!out)
        return NULL;
    bool root = parent[0] == '\0' || strcmp(parent, "/") == 0; /* "": File's default parent */
    snprintf(out, n, "%s/%s", root ? "" : parent, child);
    return out;
}

static char *java_absolute(const char *path)
{
    char cwd[PATH_MAX];
    if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
        return fmw_strdup(path);
    return path[0] ? java_child(cwd, path) : fmw_strdup(cwd);
}

/*
 * The file a JobManager or TaskManager of `o->version` reads from `o->conf_dir`, as
 * GlobalConfiguration.loadConfiguration chooses it (flink-conf.yaml up to 1.18; in 1.19 and
 * 1.20 flink-conf.yaml when it exists, else config.yaml; config.yaml in 2.x), or Flink's text
 * when the dir or that file does not exist. 0 with `*path` (malloc'd), or an exit code.
 */
static int choose_in_conf_dir(const struct resolve_opts *o, char **path, bool *use_legacy)
{
    char *dir = java_path(o->conf_dir);
    char *dir_abs = dir ? java_absolute(dir) : NULL;
    char *legacy = dir ? java_child(dir, "flink-conf.yaml") : NULL;
    char *standard = dir ? java_child(dir, "config.yaml") : NULL;
    char *file_abs = NULL;
    struct fmw_diag d = FMW_DIAG_INIT;
    int rc = 0;
    *path = NULL;
    *use_legacy = false;
    if (!dir_abs || !legacy || !standard) {
        rc = usage_error("out of memory");
        goto out;
    }
    if (!file_exists(dir)) { /* new File(configDir).exists() */
        fmw_flink_missing_conf_dir(o->conf_dir, dir_abs, &d);
        fprintf(stderr, "flink-memory: %s\n", fmw_diag_msg(&d));
        rc = EXIT_USAGE;
        goto out;
    }
    *use_legacy = fmw_flink_uses_legacy_file(o->version, file_exists(legacy));
    const char *file = *use_legacy ? legacy : standard;
    if (!file_exists(file)) {
        file_abs = java_absolute(file);
        if (!file_abs) {
            rc = usage_error("out of memory");
            goto out;
        }
        fmw_flink_missing_conf_file(o->version, file, dir_abs, file_abs, &d);
        fprintf(stderr, "flink-memory: %s\n", fmw_diag_msg(&d));
        rc = EXIT_USAGE;
        goto out;
    }
    *path = *use_legacy ? legacy : standard;
    if (*use_legacy)
        legacy = NULL;
    else
        standard = NULL;
out:
    free(dir);
    free(dir_abs);
    free(legacy);
    free(standard);
    free(file_abs);
    fmw_diag_cleanup(&d);
    return rc;
}

/* Picks the file and format Flink `o->version` would read (both roles alike); 0 or an exit
 * code. */
static int choose_file(const struct resolve_opts *o, char **path, enum format *format)
{
    char ver[16];
    version_str(o->version, ver);
    bool yaml_capable = fmw_flink_reads_standard_file(o->version);
    bool legacy_capable = fmw_flink_reads_legacy_file(o->version);
    *path = NULL;
    *format = o->format;
    if (o->config) {
        *path = fmw_strdup(o->config);
        if (*format == FORMAT_AUTO) {
            const char *base = strrchr(o->config, '/');
            base = base ? base + 1 : o->config;
            *format = strcmp(base, "config.yaml") == 0 ? FORMAT_YAML : FORMAT_LEGACY;
        }
    } else if (o->conf_dir) {
        bool use_legacy;
        int rc = choose_in_conf_dir(o, path, &use_legacy);
        if (rc)
            return rc;
        if (*format == FORMAT_AUTO)
            *format = use_legacy ? FORMAT_LEGACY : FORMAT_YAML;
    } else {
        return 0; /* configuration from -D alone */
    }
    if (*format == FORMAT_YAML && !yaml_capable) {
        free(*path);
        *path = NULL;
        return usage_error("Flink %s reads only flink-conf.yaml; the standard config.yaml needs "
                           "Flink 1.19 or newer (--format legacy reads it with the line parser)",
                           ver);
    }
    if (*format == FORMAT_LEGACY && !legacy_capable) {
        free(*path);
        *path = NULL;
        return usage_error("Flink %s ignores flink-conf.yaml and reads only config.yaml "
                           "(--format yaml reads this file as standard YAML)",
                           ver);
    }
    return 0;
}

/* The process the options size. */
static enum fmw_role role_of(const struct resolve_opts *o)
{
    return o->taskmanager ? FMW_ROLE_TASKMANAGER : FMW_ROLE_JOBMANAGER;
}

/* The process sizes Flink accepts where it refused the pod's (--from-limit, --from-request):
 * min 0 when not asked or none; max the largest where the pod's size lies above them all. */
struct accepted {
    uint64_t min, max;
};

/*
 * Flink's message for a configuration it rejects: {"error": …} in JSON, with "exception" (the
 * simple name of the Java class Flink throws) where it is known, else on stderr. `detail` is
 * ours (where in the file), on stderr. Returns EXIT_REJECTED.
 */
static int print_rejected(const struct resolve_opts *o, const char *msg, const char *exception,
                          const char *detail, struct accepted sizes)
{
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "error", json_string(msg)); /* steals the new string */
        if (exception)
            json_object_set_new(j, "exception", json_string(exception)); /* steals */
        if (sizes.min)
            json_object_set_new(j, "smallest_process_size", json_integer((json_int_t)sizes.min));
        if (sizes.max)
            json_object_set_new(j, "largest_process_size", json_integer((json_int_t)sizes.max));
        char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (s)
            puts(s);
        free(s);
        json_decref(j);
    } else if (exception) {
        fprintf(stderr, "flink-memory: Flink rejects this configuration (%s):\n%s\n", exception,
                msg);
    } else {
        fprintf(stderr, "flink-memory: Flink rejects this configuration:\n%s\n", msg);
    }
    if (detail && *detail)
        fprintf(stderr, "flink-memory: %s\n", detail);
    const char *key = fmw_process_key(role_of(o));
    if (sizes.max && !o->json)
        fprintf(stderr,
                "flink-memory: Flink accepts a %s from %" PRIu64 " to %" PRIu64
                " bytes here (%" PRIu64 "Mi to %" PRIu64 "Mi)\n",
                key, sizes.min, sizes.max, (sizes.min + FMW_MIB - 1) / FMW_MIB,
                sizes.max / FMW_MIB);
    else if (sizes.min && !o->json)
        fprintf(stderr,
                "flink-memory: the smallest %s Flink accepts here is %" PRIu64 " bytes (%" PRIu64
                "Mi rounded up)\n",
                key, sizes.min, (sizes.min + FMW_MIB - 1) / FMW_MIB);
    return EXIT_REJECTED;
}

/* explain: Flink's log lines of the resolution ("INFO <text>", one a line), indented. */
static void print_log(const struct fmw_buf *log)
{
    if (!log->len)
        return;
    printf("\nWhat Flink logs while resolving:\n");
    const char *p = fmw_buf_cstr(log);
    while (*p) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        printf("  %.*s\n", n, p);
        p += n + (nl ? 1 : 0);
    }
}

/* Prints one JSON object on a line and frees it; 0 or an exit code. */
static int print_json(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return usage_error("out of memory");
    puts(text);
    free(text);
    return 0;
}

static int print_jm_result(const struct resolve_opts *o, const struct fmw_jm_result *r)
{
    const struct fmw_jm_spec *s = &r->spec;
    char quantity[FMW_MEMSIZE_STRLEN];
    char ver[16];
    fmw_quantity_format(s->total_process, quantity);
    version_str(o->version, ver);
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "total_process", json_integer((json_int_t)s->total_process));
        json_object_set_new(j, "total_flink", json_integer((json_int_t)s->total_flink));
        json_object_set_new(j, "heap", json_integer((json_int_t)s->heap));
        json_object_set_new(j, "off_heap", json_integer((json_int_t)s->off_heap));
        json_object_set_new(j, "metaspace", json_integer((json_int_t)s->metaspace));
        json_object_set_new(j, "overhead", json_integer((json_int_t)s->overhead));
        json_object_set_new(j, "jvm_args", json_string(r->jvm_args));
        json_object_set_new(j, "dynamic_configs",
                            r->dynamic_configs[0] ? json_string(r->dynamic_configs) : json_null());
        json_object_set_new(j, "kubernetes_memory", json_string(quantity));
        json_object_set_new(j, "flink_version", json_string(ver));
        return print_json(j);
    }
    struct fmw_buf out;
    fmw_buf_init(&out, 1 << 20);
    if (fmw_jmmem_format_block(s, &out) != FMW_OK) {
        fmw_buf_free(&out);
        return usage_error("out of memory");
    }
    fputs(fmw_buf_cstr(&out), stdout);
    fmw_buf_free(&out);
    printf("\nJVM memory flags:   %s\n", r->jvm_args);
    if (r->dynamic_configs[0])
        printf("Dynamic configs:    %s\n", r->dynamic_configs);
    printf("Kubernetes memory:  %s (limits.memory = requests.memory = total process memory)\n",
           quantity);
    printf("Flink version:      %s\n", ver);
    if (o->explain)
        print_log(&r->log);
    return 0;
}

/*
 * The container memory Flink's native mode asks for a TaskManager of `total` bytes
 * (KubernetesUtils.getResourceRequirements from KubernetesTaskManagerParameters): request = the
 * process size in whole MiB, limit = request × kubernetes.taskmanager.memory.limit-factor where
 * the configuration sets one (from FMW_JM_LIMIT_FACTOR_SINCE). A factor that cannot be read, or
 * one below 1 (KubernetesTaskManagerParameters.getTaskManagerMemoryLimitFactor's checkArgument),
 * is not applied and is said on stderr, as the webhook notes it (pkg/podspec plan.c
 * flink_limit). `factor` is the one applied, 0 for none; `sized` is false when the size does
 * not fit Flink's int of MiB.
 */
struct tm_kubernetes {
    bool sized;
    uint64_t request;
    uint64_t limit;
    double factor;
};

static void tm_kubernetes_memory(const struct resolve_opts *o, const struct fmw_conf *conf,
                                 uint64_t total, struct tm_kubernetes *k)
{
    const char *key = FMW_TM_LIMIT_FACTOR_KEY;
    double factor = 1.0;
    k->factor = 0;
    if (fmw_flink_version_cmp(o->version, FMW_JM_LIMIT_FACTOR_SINCE) >= 0 &&
        fmw_conf_has(conf, key)) {
        struct fmw_diag d = FMW_DIAG_INIT;
        double given = 1.0;
        if (fmw_conf_get_double(conf, key, 1.0, &given, NULL, &d) != FMW_OK) {
            fprintf(stderr, "flink-memory: %s not applied: %s\n", key, fmw_diag_msg(&d));
        } else if (!(given >= 1.0)) {
            char num[FMW_MEMSIZE_STRLEN];
            fmw_java_double_str(given, num);
            fprintf(stderr, "flink-memory: %s %s is below 1, which Flink refuses: not applied\n",
                    key, num);
        } else {
            factor = given;
            k->factor = given;
        }
        fmw_diag_cleanup(&d);
    }
    k->sized = fmw_jm_kubernetes_memory(total, factor, &k->request, &k->limit);
}

static int print_tm_result(const struct resolve_opts *o, const struct fmw_conf *conf,
                           const struct fmw_tm_result *r)
{
    const struct fmw_tm_spec *s = &r->spec;
    const char *dynamic = fmw_buf_cstr(&r->dynamic_configs);
    struct tm_kubernetes k;
    char request[FMW_MEMSIZE_STRLEN], limit[FMW_MEMSIZE_STRLEN];
    char ver[16];
    tm_kubernetes_memory(o, conf, s->total_process, &k);
    if (k.sized) {
        fmw_quantity_format(k.request, request);
        fmw_quantity_format(k.limit, limit);
    }
    version_str(o->version, ver);
    if (o->json) {
        json_t *j = json_object();
        /* json_object_set_new steals each new value. */
        json_object_set_new(j, "role", json_string("taskmanager"));
        json_object_set_new(j, "total_process", json_integer((json_int_t)s->total_process));
        json_object_set_new(j, "total_flink", json_integer((json_int_t)s->total_flink));
        json_object_set_new(j, "framework_heap", json_integer((json_int_t)s->framework_heap));
        json_object_set_new(j, "task_heap", json_integer((json_int_t)s->task_heap));
        json_object_set_new(j, "framework_off_heap",
                            json_integer((json_int_t)s->framework_off_heap));
        json_object_set_new(j, "task_off_heap", json_integer((json_int_t)s->task_off_heap));
        json_object_set_new(j, "network", json_integer((json_int_t)s->network));
        json_object_set_new(j, "managed", json_integer((json_int_t)s->managed));
        json_object_set_new(j, "metaspace", json_integer((json_int_t)s->metaspace));
        json_object_set_new(j, "overhead", json_integer((json_int_t)s->overhead));
        json_object_set_new(j, "jvm_heap", json_integer((json_int_t)s->jvm_heap));
        json_object_set_new(j, "jvm_direct", json_integer((json_int_t)s->jvm_direct));
        json_object_set_new(j, "jvm_args", json_string(r->jvm_args));
        json_object_set_new(j, "dynamic_configs", dynamic[0] ? json_string(dynamic) : json_null());
        json_object_set_new(j, "kubernetes_request", k.sized ? json_string(request) : json_null());
        json_object_set_new(j, "kubernetes_limit", k.sized ? json_string(limit) : json_null());
        json_object_set_new(j, "flink_version", json_string(ver));
        return print_json(j);
    }
    struct fmw_buf out;
    fmw_buf_init(&out, 1 << 20);
    if (fmw_tmmem_format_block(s, &out) != FMW_OK) {
        fmw_buf_free(&out);
        return usage_error("out of memory");
    }
    fputs(fmw_buf_cstr(&out), stdout);
    fmw_buf_free(&out);
    printf("\nJVM memory flags:   %s\n", r->jvm_args);
    if (dynamic[0])
        printf("Dynamic configs:    %s\n", dynamic);
    if (!k.sized) {
        printf("Kubernetes memory:  none: the process size does not fit Flink's int of MiB\n");
    } else if (k.factor > 0) {
        char num[FMW_MEMSIZE_STRLEN];
        fmw_java_double_str(k.factor, num);
        printf("Kubernetes memory:  limit %s, request %s (Flink's native mode: the process size "
               "in MiB, the limit x %s %s)\n",
               limit, request, FMW_TM_LIMIT_FACTOR_KEY, num);
    } else {
        printf("Kubernetes memory:  limit %s, request %s (Flink's native mode: the process size "
               "in MiB)\n",
               limit, request);
    }
    printf("Flink version:      %s\n", ver);
    if (o->explain)
        print_log(&r->log);
    return 0;
}

/*
 * Reads the configuration `o` names into `conf`: the file the process reads, if any, then the
 * -D properties. `*standard_yaml` says the file was read as config.yaml (standard YAML). 0, or
 * an exit code after saying why (Flink's text where Flink cannot parse the file).
 */
static int load_conf(const struct resolve_opts *o, struct fmw_conf *conf, bool *standard_yaml)
{
    struct fmw_buf file, detail;
    struct fmw_diag d = FMW_DIAG_INIT;
    char *path = NULL;
    enum format format;
    int rc;
    fmw_buf_init(&file, MAX_FILE);
    fmw_buf_init(&detail, 4096);
    *standard_yaml = false;

    rc = choose_file(o, &path, &format);
    if (rc)
        goto out;
    if (path) {
        if (read_file(path, &file, &d) != FMW_OK) {
            rc = usage_error("%s", fmw_diag_msg(&d));
            goto out;
        }
        *standard_yaml = format == FORMAT_YAML;
        enum fmw_err err = format == FORMAT_YAML
                               ? fmw_conf_parse_yaml(conf, file.data, file.len, &d, &detail)
                               : fmw_conf_parse_legacy(conf, file.data, file.len, &d);
        if (err == FMW_EINVAL) {
            char where[PATH_MAX + 64];
            snprintf(where, sizeof where, "%s: %s", path, fmw_buf_cstr(&detail));
            rc = print_rejected(o, fmw_diag_msg(&d), NULL, where, (struct accepted){0, 0});
            goto out;
        }
        if (err) {
            rc = usage_error("%s: %s", path, fmw_diag_msg(&d));
            goto out;
        }
    }
    for (size_t i = 0; i < o->ndynamic; i++) {
        if (fmw_conf_apply_dynamic(conf, fmw_str_c(o->dynamic[i])) != FMW_OK) {
            rc = usage_error("cannot apply -D %s", o->dynamic[i]);
            goto out;
        }
    }
out:
    free(path);
    fmw_diag_cleanup(&d);
    fmw_buf_free(&detail);
    fmw_buf_free(&file);
    return rc;
}

/*
 * With --from-limit or --from-request, the process sizes Flink accepts for the configuration
 * without that size (`own`), for a refusal's message: r->min 0 when none or not asked, r->max
 * the largest where the pod's size lies above them all.
 */
static struct accepted accepted_sizes(const struct resolve_opts *o, const struct fmw_conf *own,
                                      const struct fmw_jm_input *jm, const struct fmw_tm_input *tm)
{
    struct accepted r = {0, 0};
    if (!o->pod_size)
        return r;
    struct fmw_size_probe probe = {role_of(o), *jm, *tm};
    probe.jm.conf = own;
    probe.tm.conf = own;
    if (fmw_accepted_process_sizes(&probe, o->pod_size, &r.min, &r.max) != FMW_OK)
        r.min = r.max = 0;
    return r;
}

/* A JobManager, as GET_JM_RESOURCE_PARAMS resolves it; 0 or an exit code. */
static int resolve_jm(const struct resolve_opts *o, const struct fmw_conf *conf,
                      const struct fmw_conf *own)
{
    struct fmw_diag d = FMW_DIAG_INIT;
    struct fmw_jm_result r;
    int rc;
    fmw_jm_result_init(&r);
    struct fmw_jm_input in = {conf, o->version, o->legacy, o->env_jm_heap};
    if (!o->legacy_as)
        in.legacy = o->version.major >= 2 ? FMW_LEGACY_NONE : FMW_LEGACY_HEAP;
    if (fmw_jmmem_resolve(&in, &r, &d) != FMW_OK)
        rc = print_rejected(o, fmw_diag_msg(&d), NULL, NULL,
                            accepted_sizes(o, own, &in, &(struct fmw_tm_input){0}));
    else
        rc = print_jm_result(o, &r);
    fmw_jm_result_cleanup(&r);
    fmw_diag_cleanup(&d);
    return rc;
}

/*
 * A TaskManager, as GET_TM_RESOURCE_PARAMS resolves it (legacy heap options as total Flink
 * memory in 1.x unless --legacy-heap-as says otherwise); 0 or an exit code. A failure without
 * a Java class is ours (memory, a cap), a usage error.
 */
static int resolve_tm(const struct resolve_opts *o, const struct fmw_conf *conf,
                      const struct fmw_conf *own, bool standard_yaml)
{
    struct fmw_diag d = FMW_DIAG_INIT;
    struct fmw_tm_result r;
    int rc;
    fmw_tm_result_init(&r);
    struct fmw_tm_input in = {conf, o->version, o->tm_legacy, o->env_tm_heap, standard_yaml};
    if (!o->legacy_as)
        in.legacy = o->version.major >= 2 ? FMW_TM_LEGACY_NONE : FMW_TM_LEGACY_FLINK;
    if (fmw_tmmem_resolve(&in, &r, &d) == FMW_OK)
        rc = print_tm_result(o, conf, &r);
    else if (r.exception)
        rc = print_rejected(o, fmw_diag_msg(&d), r.exception, NULL,
                            accepted_sizes(o, own, &(struct fmw_jm_input){0}, &in));
    else
        rc = usage_error("%s", fmw_diag_msg(&d));
    fmw_tm_result_cleanup(&r);
    fmw_diag_cleanup(&d);
    return rc;
}

/*
 * --from-limit Q or --from-request Q: the pod's size is Flink's total process memory, set last
 * as the webhook's -D is (after the file and every -D). `own` keeps the configuration without
 * it. 0 or an exit code.
 */
static int apply_pod_size(const struct resolve_opts *o, struct fmw_conf *conf, struct fmw_conf *own)
{
    if (!o->pod_size)
        return 0;
    if (fmw_conf_copy(own, conf) != FMW_OK ||
        fmw_set_process_size(conf, role_of(o), o->pod_size) != FMW_OK)
        return usage_error("out of memory");
    return 0;
}

static int run_resolve(const struct resolve_opts *o)
{
    struct fmw_conf conf, own;
    bool standard_yaml;
    fmw_conf_init(&conf);
    fmw_conf_init(&own);
    int rc = load_conf(o, &conf, &standard_yaml);
    if (rc == 0)
        rc = apply_pod_size(o, &conf, &own);
    if (rc == 0)
        rc =
            o->taskmanager ? resolve_tm(o, &conf, &own, standard_yaml) : resolve_jm(o, &conf, &own);
    fmw_conf_cleanup(&own);
    fmw_conf_cleanup(&conf);
    return rc;
}

static int parse_output(const char *arg, bool *json)
{
    if (strcmp(arg, "json") == 0)
        *json = true;
    else if (strcmp(arg, "text") == 0)
        *json = false;
    else
        return usage_error("--output takes text or json, not '%s'", arg);
    return 0;
}

/*
 * --legacy-heap-as for the chosen role: none|heap|process for a JobManager (FMW_LEGACY_*),
 * none|flink|process for a TaskManager (FMW_TM_LEGACY_*); the other role's value is a usage
 * error. 0 or an exit code.
 */
static int parse_legacy_as(struct resolve_opts *o)
{
    const char *as = o->legacy_as;
    if (!as)
        return 0;
    if (strcmp(as, "none") == 0) {
        o->legacy = FMW_LEGACY_NONE;
        o->tm_legacy = FMW_TM_LEGACY_NONE;
        return 0;
    }
    if (strcmp(as, "process") == 0) {
        o->legacy = FMW_LEGACY_PROCESS;
        o->tm_legacy = FMW_TM_LEGACY_PROCESS;
        return 0;
    }
    if (o->taskmanager && strcmp(as, "flink") == 0) {
        o->tm_legacy = FMW_TM_LEGACY_FLINK;
        return 0;
    }
    if (!o->taskmanager && strcmp(as, "heap") == 0) {
        o->legacy = FMW_LEGACY_HEAP;
        return 0;
    }
    if (o->taskmanager)
        return usage_error("--legacy-heap-as takes none, flink or process for a TaskManager, "
                           "not '%s'%s",
                           as,
                           strcmp(as, "heap") == 0 ? " (heap is the JobManager's; a script-started "
                                                     "TaskManager reads its legacy heap as total "
                                                     "Flink memory: flink)"
                                                   : "");
    return usage_error("--legacy-heap-as takes none, heap or process for a JobManager, not "
                       "'%s'%s",
                       as,
                       strcmp(as, "flink") == 0 ? " (flink is the TaskManager's: add --role "
                                                  "taskmanager)"
                                                : "");
}

static int cmd_resolve(int argc, char **argv, bool explain)
{
    enum {
        OPT_CONFIG = 256,
        OPT_CONF_DIR,
        OPT_FORMAT,
        OPT_VERSION,
        OPT_ROLE,
        OPT_LEGACY,
        OPT_ENV,
        OPT_OUTPUT,
        OPT_FROM_LIMIT,
        OPT_FROM_REQUEST
    };
    static const struct option LONG[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"conf-dir", required_argument, NULL, OPT_CONF_DIR},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"flink-version", required_argument, NULL, OPT_VERSION},
        {"role", required_argument, NULL, OPT_ROLE},
        {"legacy-heap-as", required_argument, NULL, OPT_LEGACY},
        {"env", required_argument, NULL, OPT_ENV},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"from-limit", required_argument, NULL, OPT_FROM_LIMIT},
        {"from-request", required_argument, NULL, OPT_FROM_REQUEST},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct resolve_opts o;
    memset(&o, 0, sizeof o);
    o.version = FMW_FLINK_DEFAULT;
    o.explain = explain;
    o.dynamic = calloc((size_t)argc + 1, sizeof *o.dynamic);
    if (!o.dynamic)
        return usage_error("out of memory");
    int rc = 0, c;
    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "+D:h", LONG, NULL)) != -1) {
        switch (c) {
        case 'D':
            o.dynamic[o.ndynamic++] = optarg;
            break;
        case OPT_CONFIG:
            o.config = optarg;
            break;
        case OPT_CONF_DIR:
            o.conf_dir = optarg;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "legacy") == 0)
                o.format = FORMAT_LEGACY;
            else if (strcmp(optarg, "yaml") == 0)
                o.format = FORMAT_YAML;
            else
                rc = usage_error("--format takes legacy or yaml, not '%s'", optarg);
            break;
        case OPT_VERSION:
            if (!fmw_flink_version_parse(optarg, &o.version))
                rc = usage_error("--flink-version: '%s' is not a Flink line from 1.11 to 2.x",
                                 optarg);
            break;
        case OPT_ROLE:
            if (strcmp(optarg, "jobmanager") == 0)
                o.taskmanager = false;
            else if (strcmp(optarg, "taskmanager") == 0)
                o.taskmanager = true;
            else
                rc = usage_error("--role takes jobmanager or taskmanager, not '%s'", optarg);
            break;
        case OPT_LEGACY:
            o.legacy_as = optarg; /* checked once the role is known */
            break;
        case OPT_ENV: {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                rc = usage_error("--env takes NAME=VALUE, not '%s'", optarg);
            else if (strncmp(optarg, FMW_JM_LEGACY_ENV "=", sizeof FMW_JM_LEGACY_ENV) == 0)
                o.env_jm_heap = eq + 1;
            else if (strncmp(optarg, FMW_TM_LEGACY_ENV "=", sizeof FMW_TM_LEGACY_ENV) == 0)
                o.env_tm_heap = eq + 1;
            /* Other variables do not reach the memory model; they are accepted and unused. */
            break;
        }
        case OPT_OUTPUT:
            rc = parse_output(optarg, &o.json);
            break;
        case OPT_FROM_LIMIT:
        case OPT_FROM_REQUEST:
            if (o.pod_size)
                rc = usage_error("--from-limit and --from-request: one of them, once");
            else if (fmw_quantity_parse(fmw_str_c(optarg), &o.pod_size, NULL) != FMW_OK ||
                     !o.pod_size)
                rc = usage_error("--%s takes a Kubernetes memory quantity (4Gi, 3000M), not '%s'",
                                 c == OPT_FROM_LIMIT ? "from-limit" : "from-request", optarg);
            break;
        case 'h':
            fputs(USAGE, stdout);
            fputs(USAGE_MORE, stdout);
            free(o.dynamic);
            return 0;
        default:
            rc = EXIT_USAGE;
        }
    }
    if (rc == 0 && optind < argc)
        rc = usage_error("unexpected argument '%s'", argv[optind]);
    if (rc == 0 && o.config && o.conf_dir)
        rc = usage_error("--config and --conf-dir exclude each other");
    if (rc == 0)
        rc = parse_legacy_as(&o);
    if (rc == 0 && explain && o.json)
        rc = usage_error("explain prints text; use 'resolve --output json' for JSON");
    if (rc == 0)
        rc = run_resolve(&o);
    free(o.dynamic);
    return rc;
}

/* ---- the webhook's own pipeline, offline: review and explain -f ---- */

struct webhook_opts {
    struct fmw_admission_config cfg;
    struct fmw_cm_static *cms;
    const char *file;
    const char *ns;
};

/* Loads a YAML or JSON manifest file into an array of documents; 0 or an exit code. */
static int load_manifests(const char *path, json_t **docs)
{
    struct fmw_buf text;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_buf_init(&text, MAX_FILE);
    int rc = 0;
    if (read_file(path, &text, &d) != FMW_OK ||
        fmw_kube_yaml_load(text.data ? text.data : "", text.len, docs, &d) != FMW_OK)
        rc = usage_error("%s: %s", path, fmw_diag_msg(&d));
    fmw_diag_cleanup(&d);
    fmw_buf_free(&text);
    return rc;
}

static int add_configmaps(struct webhook_opts *o, const char *path)
{
    json_t *docs = NULL;
    int rc = load_manifests(path, &docs);
    struct fmw_diag d = FMW_DIAG_INIT;
    if (!rc && fmw_cm_static_add(o->cms, docs, &d) != FMW_OK)
        rc = usage_error("%s: %s", path, fmw_diag_msg(&d));
    fmw_diag_cleanup(&d);
    json_decref(docs);
    return rc;
}

enum {
    OPT_CONFIGMAP = 300,
    OPT_MODE,
    OPT_ON_INVALID,
    OPT_WORKLOADS,
    OPT_DEFAULT_VERSION,
    OPT_REQUESTS,
    OPT_HEADROOM,
    OPT_ROLES,
    OPT_SIZING,
    OPT_NAMESPACE
};

static const struct option WEBHOOK_LONG[] = {
    {"configmap", required_argument, NULL, OPT_CONFIGMAP},
    {"mode", required_argument, NULL, OPT_MODE},
    {"on-invalid", required_argument, NULL, OPT_ON_INVALID},
    {"workloads", required_argument, NULL, OPT_WORKLOADS},
    {"default-flink-version", required_argument, NULL, OPT_DEFAULT_VERSION},
    {"requests", required_argument, NULL, OPT_REQUESTS},
    {"headroom", required_argument, NULL, OPT_HEADROOM},
    {"roles", required_argument, NULL, OPT_ROLES},
    {"sizing", required_argument, NULL, OPT_SIZING},
    {"namespace", required_argument, NULL, OPT_NAMESPACE},
    {"filename", required_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Parses the options shared by review and explain -f; 0, -1 after --help, or an exit code. */
static int parse_webhook_opts(int argc, char **argv, struct webhook_opts *o, bool want_file)
{
    fmw_admission_config_defaults(&o->cfg);
    o->cms = fmw_cm_static_new();
    if (!o->cms)
        return usage_error("out of memory");
    int c, rc = 0;
    optind = 1;
    while (rc == 0 &&
           (c = getopt_long(argc, argv, want_file ? "f:h" : "h", WEBHOOK_LONG, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIGMAP:
            rc = add_configmaps(o, optarg);
            break;
        case OPT_MODE:
            if (!fmw_mode_parse(optarg, &o->cfg.mode))
                rc = usage_error("--mode takes enforce, dry-run or off, not '%s'", optarg);
            break;
        case OPT_ON_INVALID:
            if (!fmw_on_invalid_parse(optarg, &o->cfg.on_invalid))
                rc = usage_error("--on-invalid takes deny or warn, not '%s'", optarg);
            break;
        case OPT_WORKLOADS:
            if (!fmw_workloads_parse(optarg, &o->cfg.workloads))
                rc = usage_error("--workloads takes warn, patch or off, not '%s'", optarg);
            break;
        case OPT_DEFAULT_VERSION:
            if (!fmw_flink_version_parse(optarg, &o->cfg.podspec.default_version))
                rc = usage_error("--default-flink-version: '%s' is not a Flink line from 1.11 "
                                 "to 2.x",
                                 optarg);
            break;
        case OPT_REQUESTS:
            if (!fmw_requests_policy_parse(optarg, &o->cfg.podspec.requests))
                rc = usage_error("--requests takes equal or keep-lower, not '%s'", optarg);
            break;
        case OPT_HEADROOM:
            if (!fmw_headroom_policy_parse(optarg, &o->cfg.podspec.headroom))
                rc = usage_error("--headroom takes deliberate, keep or remove, not '%s'", optarg);
            break;
        case OPT_ROLES:
            if (!fmw_roles_parse(optarg, &o->cfg.podspec.roles))
                rc = usage_error("--roles takes jobmanager, taskmanager or both "
                                 "(comma-separated), not '%s'",
                                 optarg);
            break;
        case OPT_SIZING:
            if (!fmw_sizing_parse(optarg, &o->cfg.podspec.sizing))
                rc = usage_error("--sizing takes from-config, from-limit or from-request, not '%s'",
                                 optarg);
            break;
        case OPT_NAMESPACE:
            o->ns = optarg;
            break;
        case 'f':
            o->file = optarg;
            break;
        case 'h':
            fputs(USAGE, stdout);
            fputs(USAGE_MORE, stdout);
            return -1;
        default:
            rc = EXIT_USAGE;
        }
    }
    if (rc == 0 && optind < argc)
        rc = usage_error("unexpected argument '%s'", argv[optind]);
    if (rc == 0 && want_file && !o->file)
        rc = usage_error("explain needs -f FILE for a manifest");
    return rc;
}

static int cmd_review(int argc, char **argv)
{
    struct webhook_opts o;
    memset(&o, 0, sizeof o);
    int rc = parse_webhook_opts(argc, argv, &o, false);
    struct fmw_buf in, out;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_buf_init(&in, 7u << 20); /* the server's body cap */
    fmw_buf_init(&out, 64u << 20);
    if (rc == 0) {
        char chunk[65536];
        size_t n;
        enum fmw_err err = FMW_OK;
        while (!err && (n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
            err = fmw_buf_add(&in, chunk, n);
        if (err)
            rc = usage_error("stdin: %s",
                             err == FMW_ETOOBIG ? "larger than 7 MiB" : fmw_strerror(err));
    }
    if (rc == 0) {
        struct fmw_cm_source src;
        struct fmw_decision dec;
        fmw_cm_static_source(o.cms, &src);
        if (fmw_admission_review(&o.cfg, &src, in.data ? in.data : "", in.len, &out, &dec, &d) !=
            FMW_OK)
            rc = usage_error("%s", fmw_diag_msg(&d));
        else
            puts(fmw_buf_cstr(&out));
    }
    fmw_diag_cleanup(&d);
    fmw_buf_free(&in);
    fmw_buf_free(&out);
    fmw_cm_static_free(o.cms);
    return rc < 0 ? 0 : rc;
}

/* Finds the pod or pod template of a manifest object, with the JSON Pointer prefix. */
static json_t *pod_of(json_t *obj, const char **prefix)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    if (!kind)
        return NULL;
    if (strcmp(kind, "Pod") == 0) {
        *prefix = "";
        return obj;
    }
    if (strcmp(kind, "CronJob") == 0) {
        *prefix = "/spec/jobTemplate/spec/template";
        return json_object_get(
            json_object_get(json_object_get(json_object_get(obj, "spec"), "jobTemplate"), "spec"),
            "template");
    }
    if (strcmp(kind, "Deployment") == 0 || strcmp(kind, "StatefulSet") == 0 ||
        strcmp(kind, "ReplicaSet") == 0 || strcmp(kind, "Job") == 0) {
        *prefix = "/spec/template";
        return json_object_get(json_object_get(obj, "spec"), "template");
    }
    return NULL;
}

static void explain_plan(json_t *obj, const char *ns, const struct fmw_plan *plan,
                         const struct webhook_opts *o)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name)
        name = json_string_value(json_object_get(meta, "generateName"));
    printf("%s %s/%s", kind, ns, name ? name : "(unnamed)");
    if (plan->status == FMW_PLAN_SKIP) {
        printf(": no JobManager or TaskManager container, the webhook leaves it alone\n");
        return;
    }
    printf(", container %s (%s)\n", plan->container,
           plan->role == FMW_ROLE_TASKMANAGER ? "TaskManager" : "JobManager");
    printf("Flink %d.%d (%s), configuration from %s\n", plan->version.major, plan->version.minor,
           plan->version_source, plan->source[0] ? plan->source : "(not read)");
    size_t i;
    json_t *n;
    json_array_foreach(plan->notes, i, n)
    {
        printf("note: %s\n", json_string_value(n));
    }
    if (plan->status == FMW_PLAN_UNREADABLE) {
        printf("\nThe configuration cannot be read: %s\nThe webhook allows the pod unchanged, "
               "with a warning.\n",
               fmw_diag_msg(&plan->message));
        return;
    }
    if (plan->status == FMW_PLAN_INVALID) {
        printf("\nFlink rejects this configuration:\n  %s\nThe webhook %s.\n",
               fmw_diag_msg(&plan->message),
               o->cfg.on_invalid == FMW_ON_INVALID_DENY
                   ? "denies the pod with this message (onInvalidConfig: deny)"
                   : "allows the pod unchanged, with a warning (onInvalidConfig: warn)");
        return;
    }
    struct fmw_buf block;
    fmw_buf_init(&block, 1 << 16);
    if (fmw_plan_format_block(plan, &block) != FMW_OK)
        fmw_buf_reset(&block); /* out of memory: the table is left out, the rest still says it */
    char lq[FMW_MEMSIZE_STRLEN], rq[FMW_MEMSIZE_STRLEN];
    fmw_quantity_format(plan->limit, lq);
    fmw_quantity_format(plan->request, rq);
    printf("\n%sJVM memory flags:   %s\nKubernetes memory:  limit %s, request %s\n",
           fmw_buf_cstr(&block), fmw_plan_jvm_args(plan), lq, rq);
    fmw_buf_free(&block);
    if (json_array_size(plan->changes) == 0) {
        printf("\nNo change: the pod already matches Flink.\n");
        return;
    }
    printf("\nChanges the webhook makes:\n");
    json_array_foreach(plan->changes, i, n)
    {
        printf("  ~ %s\n", json_string_value(n));
    }
    if (strcmp(kind, "Pod") != 0)
        printf("\nThe %s itself is left as written unless the webhook runs with --workloads patch;"
               "\nits pods get this change when they are created (kubectl shows it as warnings).\n",
               kind);
    printf("\nJSON Patch:\n");
    json_t *opv;
    json_array_foreach(plan->patch, i, opv)
    {
        char *v = json_dumps(json_object_get(opv, "value"), JSON_COMPACT | JSON_ENCODE_ANY);
        printf("  %-7s %s %s\n", json_string_value(json_object_get(opv, "op")),
               json_string_value(json_object_get(opv, "path")), v ? v : "");
        free(v);
    }
}

static int cmd_explain_file(int argc, char **argv)
{
    struct webhook_opts o;
    memset(&o, 0, sizeof o);
    int rc = parse_webhook_opts(argc, argv, &o, true);
    json_t *docs = NULL;
    if (rc == 0)
        rc = load_manifests(o.file, &docs);
    struct fmw_diag d = FMW_DIAG_INIT;
    if (rc == 0 && fmw_cm_static_add(o.cms, docs, &d) != FMW_OK)
        rc = usage_error("%s: %s", o.file, fmw_diag_msg(&d));
    fmw_diag_cleanup(&d);
    size_t i, shown = 0;
    json_t *obj;
    int worst = 0;
    if (rc == 0) {
        struct fmw_cm_source src;
        fmw_cm_static_source(o.cms, &src);
        json_array_foreach(docs, i, obj)
        {
            const char *prefix;
            json_t *pod = pod_of(obj, &prefix);
            if (!json_is_object(pod))
                continue;
            const char *ns = o.ns;
            if (!ns)
                ns = json_string_value(
                    json_object_get(json_object_get(obj, "metadata"), "namespace"));
            if (!ns)
                ns = "default";
            struct fmw_plan plan;
            fmw_plan_init(&plan);
            if (fmw_podspec_plan(pod, ns, prefix, &o.cfg.podspec, &src, &plan) != FMW_OK) {
                fmw_plan_cleanup(&plan);
                rc = usage_error("out of memory");
                break;
            }
            if (shown++)
                printf("\n---\n");
            explain_plan(obj, ns, &plan, &o);
            if (plan.status == FMW_PLAN_INVALID && worst < EXIT_REJECTED)
                worst = EXIT_REJECTED;
            fmw_plan_cleanup(&plan);
        }
        if (rc == 0 && shown == 0)
            rc = usage_error("%s holds no Pod, Deployment, StatefulSet, ReplicaSet, Job or "
                             "CronJob",
                             o.file);
    }
    json_decref(docs);
    fmw_cm_static_free(o.cms);
    if (rc < 0)
        return 0;
    return rc ? rc : worst;
}

static int cmd_size(int argc, char **argv)
{
    static const struct option LONG[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    int rc = 0, c;
    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "h", LONG, NULL)) != -1) {
        if (c == 'o')
            rc = parse_output(optarg, &json);
        else if (c == 'h') {
            fputs(USAGE, stdout);
            fputs(USAGE_MORE, stdout);
            return 0;
        } else
            rc = EXIT_USAGE;
    }
    if (rc)
        return rc;
    if (optind + 1 != argc)
        return usage_error("size takes exactly one TEXT");
    const char *text = argv[optind];

    /* Flink's syntax first, as Flink's Kubernetes operator reads sizes; then a quantity. */
    struct fmw_diag flink_err = FMW_DIAG_INIT;
    uint64_t bytes;
    if (fmw_memsize_parse(fmw_str_c(text), &bytes, &flink_err) != FMW_OK &&
        fmw_quantity_parse(fmw_str_c(text), &bytes, NULL) != FMW_OK) {
        if (json) {
            json_t *j = json_pack("{s:s}", "error", fmw_diag_msg(&flink_err));
            char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
            if (s)
                puts(s);
            free(s);
            json_decref(j);
        } else {
            fprintf(stderr, "flink-memory: %s\n", fmw_diag_msg(&flink_err));
        }
        fmw_diag_cleanup(&flink_err);
        return EXIT_REJECTED;
    }
    fmw_diag_cleanup(&flink_err);
    char human[FMW_MEMSIZE_STRLEN], flink[FMW_MEMSIZE_STRLEN], quantity[FMW_MEMSIZE_STRLEN];
    fmw_memsize_human(bytes, human);
    fmw_memsize_flink(bytes, flink);
    fmw_quantity_format(bytes, quantity);
    if (json) {
        json_t *j = json_pack("{s:I,s:s,s:s,s:s}", "bytes", (json_int_t)bytes, "human", human,
                              "flink", flink, "kubernetes", quantity);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!s) {
            json_decref(j);
            return usage_error("out of memory");
        }
        puts(s);
        free(s);
        json_decref(j);
    } else {
        printf("bytes:       %llu\nhuman:       %s\nflink:       %s\nkubernetes:  %s\n",
               (unsigned long long)bytes, human, flink, quantity);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("a command is required");
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(USAGE, stdout);
        fputs(USAGE_MORE, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("flink-memory %s\n", FMW_VERSION);
        return 0;
    }
    if (strcmp(cmd, "resolve") == 0)
        return cmd_resolve(argc - 1, argv + 1, false);
    if (strcmp(cmd, "explain") == 0) {
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "-f") == 0 || strncmp(argv[i], "--filename", 10) == 0)
                return cmd_explain_file(argc - 1, argv + 1);
        }
        return cmd_resolve(argc - 1, argv + 1, true);
    }
    if (strcmp(cmd, "review") == 0)
        return cmd_review(argc - 1, argv + 1);
    if (strcmp(cmd, "size") == 0)
        return cmd_size(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0)
        return fmw_cli_audit(argc - 1, argv + 1);
    return usage_error("unknown command '%s'", cmd);
}
