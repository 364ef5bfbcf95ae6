/*
 * flink-memory audit: the JobManager and TaskManager pods that are running (or were admitted
 * while the webhook was off), each next to what Flink resolves for it. The pods and their
 * ConfigMaps come from the API server through the kubeconfig; each pod goes through the webhook's
 * own analysis (pkg/podspec), so "differs" means exactly what the webhook would change at
 * admission.
 */
#include "cmd/flink-memory/cli.h"

#include "pkg/kube/kube.h"
#include "pkg/memsize/memsize.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define PAGE           500
#define PAGE_MAX_BYTES ((size_t)256 << 20)

static const char AUDIT_USAGE[] =
    "usage: flink-memory audit [-n NAMESPACE | -A] [--kubeconfig FILE] [--output table|json]\n"
    "                          [--roles jobmanager,taskmanager]\n"
    "                          [--default-flink-version X.Y] [--requests equal|keep-lower]\n"
    "                          [--headroom deliberate|keep|remove] [--timeout-ms N]\n"
    "\n"
    "Lists every JobManager and TaskManager pod (all namespaces, or -n NAMESPACE; --roles\n"
    "jobmanager or --roles taskmanager for one role, as the webhook's --roles) with its role,\n"
    "its memory limit and request next to Flink's, and marks the pods whose limit, request or\n"
    "winning JVM memory flags disagree with what Flink resolves from the configuration the pod\n"
    "really gets (what the webhook would change if the pod were created now, with the same\n"
    "settings).\n"
    "The kubeconfig is --kubeconfig, else the first file of $KUBECONFIG, else ~/.kube/config,\n"
    "else the pod's service account.\n"
    "\n"
    "exit status: 0 every pod listed agrees (or its configuration cannot be read: status\n"
    "unknown), 1 at least one differs or has a configuration Flink rejects, 2 bad usage or the\n"
    "API server could not be asked\n";

#define audit_error(...) fmw_cli_error("audit", NULL, __VA_ARGS__)

/* --kubeconfig, else the first file of $KUBECONFIG (kubectl merges them; the first is where the
 * current context usually lives), else ~/.kube/config when it exists, else NULL (in-cluster). */
static const char *kubeconfig_path(const char *flag, char *buf, size_t size)
{
    if (flag)
        return flag;
    const char *env = getenv("KUBECONFIG");
    if (env && *env) {
        snprintf(buf, size, "%.*s", (int)strcspn(env, ":"), env);
        return buf;
    }
    const char *home = getenv("HOME");
    struct stat st;
    if (home && *home) {
        snprintf(buf, size, "%s/.kube/config", home);
        if (stat(buf, &st) == 0)
            return buf;
    }
    return NULL;
}

/* RFC 3986 unreserved characters kept, everything else %XX: a continue token in a query. */
static enum fmw_err url_escape(const char *s, struct fmw_buf *out)
{
    static const char HEX[] = "0123456789ABCDEF";
    enum fmw_err err = FMW_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p && !err; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            err = fmw_buf_addc(out, (char)*p);
        } else {
            char esc[4] = {'%', HEX[*p >> 4], HEX[*p & 15], '\0'};
            err = fmw_buf_adds(out, esc);
        }
    }
    return err;
}

static const char *memory_of(json_t *container, const char *section)
{
    json_t *m = json_object_get(json_object_get(json_object_get(container, "resources"), section),
                                "memory");
    return json_is_string(m) ? json_string_value(m) : "-";
}

/* Joins the strings of `arr` with "; " into a new JSON string. */
static json_t *joined(json_t *arr)
{
    struct fmw_buf b;
    fmw_buf_init(&b, 1 << 20);
    size_t i;
    json_t *s;
    enum fmw_err err = fmw_buf_add(&b, "", 0);
    json_array_foreach(arr, i, s)
    {
        if (!err && i)
            err = fmw_buf_adds(&b, "; ");
        if (!err)
            err = fmw_buf_adds(&b, json_string_value(s));
    }
    json_t *out = err ? NULL : fmw_json_text(fmw_buf_cstr(&b));
    fmw_buf_free(&b);
    return out;
}

/* One pod's row, for its JobManager or TaskManager container; NULL for a pod without one of
 * the roles asked for. */
static json_t *audit_pod(json_t *pod, const struct fmw_podspec_options *opt,
                         struct fmw_cm_cache *cache, long timeout_ms, bool *disagrees, bool *failed)
{
    json_t *meta = json_object_get(pod, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    struct fmw_cm_cache_source cs = {
        cache, fmw_now_ns() + (uint64_t)timeout_ms * 1000000u, false, false, 0, 0};
    struct fmw_cm_source src;
    fmw_cm_cache_source(&cs, &src);
    struct fmw_plan plan;
    fmw_plan_init(&plan);
    json_t *row = NULL;
    if (fmw_podspec_plan(pod, ns, "", opt, &src, &plan) != FMW_OK) {
        *failed = true; /* out of memory: the audit cannot be trusted to be whole */
        goto out;
    }
    if (plan.status == FMW_PLAN_SKIP)
        goto out;
    json_t *container = json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"),
                                       (size_t)plan.container_index);
    char version[32];
    snprintf(version, sizeof version, "%d.%d%s", plan.version.major, plan.version.minor,
             plan.version_assumed ? " (assumed)" : "");
    const char *status;
    json_t *why;
    switch (plan.status) {
    case FMW_PLAN_RESOLVED:
        status = json_array_size(plan.changes) ? "differs" : "ok";
        why = joined(plan.changes);
        break;
    case FMW_PLAN_INVALID:
        status = "invalid";
        why = fmw_json_text(fmw_diag_msg(&plan.message));
        break;
    default:
        status = "unknown";
        why = fmw_json_text(fmw_diag_msg(&plan.message));
        break;
    }
    *disagrees = *disagrees || strcmp(status, "differs") == 0 || strcmp(status, "invalid") == 0;
    row = json_pack("{s:s?,s:s?,s:s,s:s,s:s,s:s,s:s,s:s,s:o?,s:O}", "namespace", ns, "pod", name,
                    "role", fmw_role_name(plan.role), "container", plan.container, "flinkVersion",
                    version, "limit", memory_of(container, "limits"), "request",
                    memory_of(container, "requests"), "status", status, "why", why, "notes",
                    plan.notes);
    if (row && plan.status == FMW_PLAN_RESOLVED) {
        char lq[FMW_MEMSIZE_STRLEN], rq[FMW_MEMSIZE_STRLEN], tq[FMW_MEMSIZE_STRLEN];
        fmw_quantity_format(plan.limit, lq);
        fmw_quantity_format(plan.request, rq);
        fmw_quantity_format(fmw_plan_total_process(&plan), tq);
        json_object_set_new(row, "flinkLimit", fmw_json_text(lq));
        json_object_set_new(row, "flinkRequest", fmw_json_text(rq));
        json_object_set_new(row, "totalProcess", fmw_json_text(tq));
        json_object_set_new(row, "flinkJvmArgs", fmw_json_text(fmw_plan_jvm_args(&plan)));
        json_object_set_new(row, "source", fmw_json_text(plan.source));
    }
out:
    fmw_plan_cleanup(&plan);
    return row;
}

static void print_table(json_t *rows)
{
    static const char *const COLS[] = {"namespace",    "pod",    "role",    "container",
                                       "flinkVersion", "limit",  "request", "flinkLimit",
                                       "flinkRequest", "status", "why"};
    static const char *const HEAD[] = {"NAMESPACE",     "POD",    "ROLE",    "CONTAINER",
                                       "FLINK",         "LIMIT",  "REQUEST", "FLINK-LIMIT",
                                       "FLINK-REQUEST", "STATUS", "WHY"};
    enum { N = sizeof COLS / sizeof COLS[0] };
    size_t width[N];
    for (size_t c = 0; c < N; c++)
        width[c] = strlen(HEAD[c]);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        for (size_t c = 0; c + 1 < N; c++) {
            const char *v = json_string_value(json_object_get(r, COLS[c]));
            size_t n = v ? strlen(v) : 1;
            if (n > width[c])
                width[c] = n;
        }
    }
    for (size_t c = 0; c + 1 < N; c++)
        printf("%-*s  ", (int)width[c], HEAD[c]);
    printf("%s\n", HEAD[N - 1]);
    json_array_foreach(rows, i, r)
    {
        for (size_t c = 0; c < N; c++) {
            const char *v = json_string_value(json_object_get(r, COLS[c]));
            if (c + 1 < N)
                printf("%-*s  ", (int)width[c], v && *v ? v : "-");
            else
                printf("%s\n", v && *v ? v : "-");
        }
    }
}

int fmw_cli_audit(int argc, char **argv)
{
    enum { O_KUBECONFIG = 256, O_OUTPUT, O_VERSION, O_REQUESTS, O_HEADROOM, O_ROLES, O_TIMEOUT };
    static const struct option LONG[] = {
        {"namespace", required_argument, NULL, 'n'},
        {"all-namespaces", no_argument, NULL, 'A'},
        {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
        {"output", required_argument, NULL, 'o'},
        {"default-flink-version", required_argument, NULL, O_VERSION},
        {"requests", required_argument, NULL, O_REQUESTS},
        {"headroom", required_argument, NULL, O_HEADROOM},
        {"roles", required_argument, NULL, O_ROLES},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fmw_admission_config cfg;
    fmw_admission_config_defaults(&cfg);
    const char *ns = NULL, *kubeconfig = NULL, *output = "table";
    long timeout_ms = 10000;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:Ao:h", LONG, NULL)) != -1) {
        switch (c) {
        case 'n':
            ns = optarg;
            break;
        case 'A':
            ns = NULL;
            break;
        case O_KUBECONFIG:
            kubeconfig = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case O_VERSION:
            if (!fmw_flink_version_parse(optarg, &cfg.podspec.default_version))
                return audit_error("--default-flink-version: '%s' is not a Flink line from 1.11 "
                                   "to 2.x",
                                   optarg);
            break;
        case O_REQUESTS:
            if (!fmw_requests_policy_parse(optarg, &cfg.podspec.requests))
                return audit_error("--requests takes equal or keep-lower, not '%s'", optarg);
            break;
        case O_HEADROOM:
            if (!fmw_headroom_policy_parse(optarg, &cfg.podspec.headroom))
                return audit_error("--headroom takes deliberate, keep or remove, not '%s'", optarg);
            break;
        case O_ROLES:
            if (!fmw_roles_parse(optarg, &cfg.podspec.roles))
                return audit_error("--roles takes jobmanager, taskmanager or both "
                                   "(comma-separated), not '%s'",
                                   optarg);
            break;
        case O_TIMEOUT: {
            char *end;
            timeout_ms = strtol(optarg, &end, 10);
            if (*end || timeout_ms < 1 || timeout_ms > 600000)
                return audit_error("--timeout-ms takes 1 to 600000, not '%s'", optarg);
            break;
        }
        case 'h':
            fputs(AUDIT_USAGE, stdout);
            return 0;
        default:
            return FMW_CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return audit_error("unexpected argument '%s'", argv[optind]);
    bool json = strcmp(output, "json") == 0;
    if (!json && strcmp(output, "table") != 0)
        return audit_error("--output takes table or json, not '%s'", output);
    /* A namespace is a DNS label: it goes into the path as it is. */
    if (ns && (!*ns || strlen(ns) > 63 ||
               strspn(ns, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(ns)))
        return audit_error("'%s' is not a namespace name", ns);

    char pathbuf[4096];
    struct fmw_diag d = FMW_DIAG_INIT;
    struct fmw_kube_client *client = NULL;
    struct fmw_cm_cache *cache = NULL;
    json_t *rows = json_array();
    int rc = 0;
    if (fmw_kube_client_new(kubeconfig_path(kubeconfig, pathbuf, sizeof pathbuf), &client, &d)) {
        rc = audit_error("%s", fmw_diag_msg(&d));
        goto done;
    }
    struct fmw_cm_cache_config ccfg;
    fmw_cm_cache_config_defaults(&ccfg);
    ccfg.lookup_timeout_ms = (unsigned)timeout_ms;
    if (!rows || fmw_cm_cache_new(client, &ccfg, NULL, &cache) != FMW_OK) {
        rc = audit_error("out of memory");
        goto done;
    }
    bool disagrees = false, failed = false;
    char *cont = NULL, *last = NULL;
    do {
        struct fmw_buf path, body;
        fmw_buf_init(&path, 64 * 1024);
        fmw_buf_init(&body, PAGE_MAX_BYTES);
        enum fmw_err err = ns ? fmw_buf_addf(&path, "/api/v1/namespaces/%s/pods?limit=%d", ns, PAGE)
                              : fmw_buf_addf(&path, "/api/v1/pods?limit=%d", PAGE);
        if (!err && cont)
            err = fmw_buf_adds(&path, "&continue=");
        if (!err && cont)
            err = url_escape(cont, &path);
        free(cont);
        cont = NULL;
        long status = 0;
        if (err)
            fmw_diag_set(&d, err, "a continue token longer than a request path may be");
        else
            err = fmw_kube_get(client, fmw_buf_cstr(&path), timeout_ms, &status, &body, &d);
        json_t *list = NULL;
        if (err) {
            rc = audit_error("listing pods at %s: %s", fmw_kube_client_server(client),
                             fmw_diag_msg(&d));
        } else if (status != 200) {
            json_t *st = json_loadb(body.data, body.len, 0, NULL);
            const char *msg = json_string_value(json_object_get(st, "message"));
            rc = audit_error("listing pods: HTTP %ld%s%s", status, msg ? ": " : "", msg ? msg : "");
            json_decref(st);
        } else if (!(list = json_loadb(body.data, body.len, 0, NULL))) {
            rc = audit_error("listing pods: the answer is not JSON");
        }
        fmw_buf_free(&path);
        fmw_buf_free(&body);
        if (rc)
            break;
        size_t i;
        json_t *pod;
        json_array_foreach(json_object_get(list, "items"), i, pod)
        {
            json_t *row = audit_pod(pod, &cfg.podspec, cache, timeout_ms, &disagrees, &failed);
            if (row)
                json_array_append_new(rows, row);
        }
        const char *next =
            json_string_value(json_object_get(json_object_get(list, "metadata"), "continue"));
        if (next && *next && !(last && strcmp(next, last) == 0))
            cont = fmw_strdup(next);
        else if (next && *next)
            rc = audit_error("listing pods: the API server gave the same continue token twice");
        free(last);
        last = cont ? fmw_strdup(cont) : NULL;
        json_decref(list);
    } while (cont && !rc);
    free(cont);
    free(last);
    if (!rc && failed)
        rc = audit_error("out of memory while analysing pods");
    if (rc)
        goto done;
    if (json) {
        char *s = json_dumps(rows, JSON_INDENT(2));
        if (s)
            puts(s);
        free(s);
    } else if (json_array_size(rows) == 0) {
        unsigned roles = cfg.podspec.roles ? cfg.podspec.roles : FMW_ROLES_ALL;
        printf("No %s pods found%s%s.\n",
               roles == FMW_ROLE_JOBMANAGER    ? "JobManager"
               : roles == FMW_ROLE_TASKMANAGER ? "TaskManager"
                                               : "JobManager or TaskManager",
               ns ? " in namespace " : "", ns ? ns : "");
    } else {
        print_table(rows);
    }
    rc = disagrees ? FMW_CLI_EXIT_REJECTED : 0;
done:
    json_decref(rows);
    fmw_cm_cache_free(cache);
    fmw_kube_client_free(client);
    fmw_diag_cleanup(&d);
    return rc;
}
