/*
 * flink-memory-webhook: the admission webhook daemon. Flags and environment, signals, wiring:
 * pkg/server receives AdmissionReviews, pkg/admission answers them with ConfigMaps read through
 * pkg/kube's cache, pkg/obs logs one line per decision and counts them.
 *
 * Exit status: 0 after a clean drain, 1 when it cannot start, 2 on bad usage, 3 when the grace
 * period ran out with requests still open.
 */
#include "pkg/admission/admission.h"
#include "pkg/kube/kube.h"
#include "pkg/obs/obs.h"
#include "pkg/server/server.h"

#include <errno.h>
#include <malloc.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Time kept back from the API server's deadline for encoding and sending the answer. */
#define ANSWER_MARGIN_NS 250000000u

static const char USAGE[] =
    "usage: flink-memory-webhook [options]\n"
    "\n"
    "A Kubernetes mutating admission webhook that sizes Apache Flink JobManager and TaskManager\n"
    "pods the way Flink does: container memory limit = request = Flink's total process memory,\n"
    "and the JVM memory flags that win on the java command line = Flink's.\n"
    "\n"
    "Every option can also be given as an environment variable, named in brackets; a flag wins\n"
    "over the variable.\n"
    "\n"
    "TLS and listeners:\n"
    "  --tls-cert-file FILE      PEM certificate chain [FMW_TLS_CERT_FILE] (required)\n"
    "  --tls-key-file FILE       PEM private key [FMW_TLS_KEY_FILE] (required); both are\n"
    "                            reloaded when they change (Secret rotation), a bad pair is\n"
    "                            refused and the old one kept\n"
    "  --client-ca-file FILE     require client certificates signed by these CAs (the API\n"
    "                            server's) [FMW_CLIENT_CA_FILE]\n"
    "  --tls13-only              refuse TLS 1.2 [FMW_TLS13_ONLY=true]\n"
    "  --listen-address ADDR     TLS listener address (default 0.0.0.0) [FMW_LISTEN_ADDRESS]\n"
    "  --port N                  TLS port (default 8443; 0 picks one) [FMW_PORT]\n"
    "  --health-port N           plain-HTTP port for /healthz, /readyz, /metrics only\n"
    "                            (default 8080; -1 disables) [FMW_HEALTH_PORT]\n"
    "\n"
    "Behaviour:\n"
    "  --mode enforce|dry-run|off   patch pods, only report what would change (warnings and\n"
    "                            audit annotations), or do nothing (default enforce) [FMW_MODE];\n"
    "                            a pod's annotation flink-memory-webhook/mode overrides it\n"
    "  --on-invalid deny|warn    a configuration Flink rejects: deny the pod with Flink's\n"
    "                            message, or allow it unchanged with a warning (default deny)\n"
    "                            [FMW_ON_INVALID]\n"
    "  --workloads warn|patch|off  Deployments, StatefulSets, ReplicaSets, Jobs, CronJobs: warn\n"
    "                            what their pods will get, also patch their templates, or skip\n"
    "                            (default warn) [FMW_WORKLOADS]\n"
    "  --default-flink-version X.Y  the line assumed when neither annotation nor image tag\n"
    "                            names one, said as assumed (default 2.3, the newest checked\n"
    "                            against Flink's jars) [FMW_DEFAULT_FLINK_VERSION]\n"
    "  --requests equal|keep-lower  requests.memory = limits.memory, or keep a lower request\n"
    "                            (default equal) [FMW_REQUESTS]\n"
    "  --headroom deliberate|keep|remove  a memory limit above Flink's: keep it where a known\n"
    "                            operator leaves it on purpose, keep it always, or lower it to\n"
    "                            Flink's (default deliberate) [FMW_HEADROOM]; a pod's annotation\n"
    "                            flink-memory-webhook/headroom overrides it\n"
    "  --roles jobmanager,taskmanager  the Flink processes sized (default both) [FMW_ROLES]\n"
    "  --sizing from-config|from-limit|from-request  which way sizes go: the container's memory\n"
    "                            from Flink's configuration, or Flink's process size from the\n"
    "                            container's limit or request at every start (default\n"
    "                            from-config) [FMW_SIZING]; a pod's annotation\n"
    "                            flink-memory-webhook/sizing overrides it\n"
    "\n";
/* In two parts: one string literal longer than 4095 bytes is beyond what C requires. */
static const char USAGE_MORE[] =
    "Kubernetes API (ConfigMap reads):\n"
    "  --kubeconfig FILE         use this kubeconfig instead of the pod's service account\n"
    "                            [FMW_KUBECONFIG]\n"
    "  --lookup-timeout-ms N     one ConfigMap read at most (default 2000)\n"
    "                            [FMW_LOOKUP_TIMEOUT_MS]\n"
    "  --cache-ttl-ms N          a ConfigMap read this long before a lookup may serve it\n"
    "                            (default 0: every lookup reads the API server's current\n"
    "                            data; above 0, pods may be sized from data this old)\n"
    "                            [FMW_CACHE_TTL_MS]\n"
    "\n"
    "Server:\n"
    "  --workers N               handler threads (default 2) [FMW_WORKERS]\n"
    "  --max-connections N       open connections (default 256) [FMW_MAX_CONNECTIONS]\n"
    "  --drain-delay-ms N        after SIGTERM, serve this long with /readyz failing (default\n"
    "                            5000) [FMW_DRAIN_DELAY_MS]\n"
    "  --grace-ms N              after SIGTERM, exit within this (default 25000) [FMW_GRACE_MS]\n"
    "  --log-level debug|info|warn|error  (default info) [FMW_LOG_LEVEL]\n"
    "  --help, --version\n"
    "\n"
    "Endpoints: POST /mutate (AdmissionReview v1; /mutate/from-limit and /mutate/from-request\n"
    "size from the pod by default, for namespaces labelled so), /healthz, /readyz, /metrics.\n"
    "Signals: SIGTERM/SIGINT drain and exit, SIGHUP re-checks the certificate.\n";

struct app {
    struct fmw_admission_config cfg;
    struct fmw_cm_cache *cache;
    struct fmw_obs_metric *decisions;
};

static struct fmw_server *g_server;

static void on_signal(int sig)
{
    if (!g_server)
        return;
    if (sig == SIGHUP)
        fmw_server_reload(g_server);
    else
        fmw_server_shutdown(g_server);
}

static void log_decision(const struct fmw_server_request *req, const struct fmw_decision *dec,
                         uint64_t took_ns)
{
    struct fmw_log_line l;
    if (!fmw_log_begin(&l, FMW_LOG_INFO, "admission"))
        return;
    fmw_log_str(&l, "uid", dec->uid);
    fmw_log_str(&l, "namespace", dec->namespace_);
    fmw_log_str(&l, "name", dec->name);
    fmw_log_str(&l, "kind", dec->kind);
    fmw_log_str(&l, "operation", dec->operation);
    fmw_log_str(&l, "decision", dec->outcome);
    if (dec->container[0])
        fmw_log_str(&l, "container", dec->container);
    if (dec->role[0])
        fmw_log_str(&l, "role", dec->role);
    if (dec->flink_version[0])
        fmw_log_str(&l, "flink", dec->flink_version);
    if (dec->total_process)
        fmw_log_uint(&l, "total_process", dec->total_process);
    fmw_log_uint(&l, "changes", dec->changes);
    fmw_log_bool(&l, "dry_run", dec->dry_run);
    if (dec->reason[0])
        fmw_log_str(&l, "reason", dec->reason);
    fmw_log_uint(&l, "request", req->id);
    fmw_log_fixed(&l, "latency_ms", (int64_t)(took_ns / 1000u), 3);
    fmw_log_end(&l);
}

/* The kind label of the decisions metric: the kinds we act on, else "other". The kind comes from
 * the request, so anyone who reaches /mutate could otherwise fill the metric's series cap with
 * made-up kinds and leave no series for real ones. */
static const char *kind_label(const char *kind)
{
    static const char *const KNOWN[] = {"Pod",        "Deployment", "StatefulSet",
                                        "ReplicaSet", "Job",        "CronJob"};
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++) {
        if (strcmp(kind, KNOWN[i]) == 0)
            return KNOWN[i];
    }
    return kind[0] ? "other" : "";
}

/* POST /mutate: one AdmissionReview. */
static enum fmw_err mutate(void *ctx, const struct fmw_server_request *req,
                           struct fmw_server_response *resp)
{
    struct app *a = ctx;
    uint64_t start = fmw_now_ns();
    /* On the loop thread only what the cache holds is read; a lookup that would wait sends the
     * whole review to a worker (FMW_EAGAIN), before anything is logged or counted. */
    struct fmw_cm_cache_source cs = {a->cache, 0, !req->may_block, false, 0, 0};
    if (req->deadline_ns > start + ANSWER_MARGIN_NS)
        cs.deadline_ns = req->deadline_ns - ANSWER_MARGIN_NS;
    else
        cs.deadline_ns = start + 1; /* no time left: lookups answer at once */
    struct fmw_cm_source src;
    fmw_cm_cache_source(&cs, &src);
    struct fmw_decision dec;
    struct fmw_diag d = FMW_DIAG_INIT;
    enum fmw_err err =
        fmw_admission_review(&a->cfg, &src, req->body.ptr, req->body.len, &resp->body, &dec, &d);
    if (cs.would_wait) {
        fmw_diag_cleanup(&d);
        return FMW_EAGAIN;
    }
    fmw_cm_cache_source_commit(&cs);
    bool too_many =
        err == FMW_ETOOBIG && dec.outcome && strcmp(dec.outcome, "too-many-values") == 0;
    if (err == FMW_EINVAL || too_many) {
        /* Not an AdmissionReview we can answer: the caller gets a 400 (or 413 for a body past
         * the value cap) that says why, and the API server applies failurePolicy. Any other
         * failure stays an error of ours (500). */
        resp->status = too_many ? 413 : 400;
        fmw_buf_reset(&resp->body);
        json_t *j = json_pack("{s:s}", "error", fmw_diag_msg(&d));
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        /* A body that does not fit is cut: the status says enough. */
        (void)fmw_buf_adds(&resp->body, text ? text : "{\"error\":\"bad request\"}");
        free(text);
        json_decref(j);
        fmw_logf(FMW_LOG_WARN, "request %llu: bad AdmissionReview: %s", (unsigned long long)req->id,
                 fmw_diag_msg(&d));
        fmw_obs_inc(fmw_obs_series2(a->decisions, "invalid-request", ""));
        err = FMW_OK;
    } else if (err) {
        fmw_logf(FMW_LOG_ERROR, "request %llu: %s", (unsigned long long)req->id, fmw_diag_msg(&d));
        fmw_obs_inc(fmw_obs_series2(a->decisions, "error", ""));
    } else {
        log_decision(req, &dec, fmw_now_ns() - start);
        fmw_obs_inc(fmw_obs_series2(a->decisions, dec.outcome, kind_label(dec.kind)));
    }
    fmw_diag_cleanup(&d);
    return err;
}

/* Option values: a flag, else the environment variable, else the default. */
struct opts {
    const char *cert, *key, *client_ca, *address, *kubeconfig, *log_level;
    const char *mode, *on_invalid, *workloads, *default_version, *requests, *headroom, *roles,
        *sizing;
    long port, health_port, workers, max_conn, drain_ms, grace_ms, lookup_ms, ttl_ms;
    bool tls13;
};

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static bool number(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "flink-memory-webhook: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see flink-memory-webhook --help)\n");
    va_end(ap);
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    enum {
        O_CERT = 256,
        O_KEY,
        O_CA,
        O_TLS13,
        O_ADDR,
        O_PORT,
        O_HEALTH,
        O_MODE,
        O_INVALID,
        O_WORKLOADS,
        O_VERSION,
        O_REQUESTS,
        O_HEADROOM,
        O_ROLES,
        O_SIZING,
        O_KUBECONFIG,
        O_LOOKUP,
        O_TTL,
        O_WORKERS,
        O_MAXCONN,
        O_DRAIN,
        O_GRACE,
        O_LOG,
        O_HELP,
        O_VERSION_INFO
    };
    static const struct option LONG[] = {
        {"tls-cert-file", required_argument, NULL, O_CERT},
        {"tls-key-file", required_argument, NULL, O_KEY},
        {"client-ca-file", required_argument, NULL, O_CA},
        {"tls13-only", no_argument, NULL, O_TLS13},
        {"listen-address", required_argument, NULL, O_ADDR},
        {"port", required_argument, NULL, O_PORT},
        {"health-port", required_argument, NULL, O_HEALTH},
        {"mode", required_argument, NULL, O_MODE},
        {"on-invalid", required_argument, NULL, O_INVALID},
        {"workloads", required_argument, NULL, O_WORKLOADS},
        {"default-flink-version", required_argument, NULL, O_VERSION},
        {"requests", required_argument, NULL, O_REQUESTS},
        {"headroom", required_argument, NULL, O_HEADROOM},
        {"roles", required_argument, NULL, O_ROLES},
        {"sizing", required_argument, NULL, O_SIZING},
        {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
        {"lookup-timeout-ms", required_argument, NULL, O_LOOKUP},
        {"cache-ttl-ms", required_argument, NULL, O_TTL},
        {"workers", required_argument, NULL, O_WORKERS},
        {"max-connections", required_argument, NULL, O_MAXCONN},
        {"drain-delay-ms", required_argument, NULL, O_DRAIN},
        {"grace-ms", required_argument, NULL, O_GRACE},
        {"log-level", required_argument, NULL, O_LOG},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION_INFO},
        {NULL, 0, NULL, 0},
    };
    o->cert = env_or("FMW_TLS_CERT_FILE", NULL);
    o->key = env_or("FMW_TLS_KEY_FILE", NULL);
    o->client_ca = env_or("FMW_CLIENT_CA_FILE", NULL);
    o->tls13 = strcmp(env_or("FMW_TLS13_ONLY", "false"), "true") == 0;
    o->address = env_or("FMW_LISTEN_ADDRESS", "0.0.0.0");
    o->kubeconfig = env_or("FMW_KUBECONFIG", NULL);
    o->log_level = env_or("FMW_LOG_LEVEL", "info");
    o->mode = env_or("FMW_MODE", "enforce");
    o->on_invalid = env_or("FMW_ON_INVALID", "deny");
    o->workloads = env_or("FMW_WORKLOADS", "warn");
    o->default_version = env_or("FMW_DEFAULT_FLINK_VERSION", "2.3");
    o->requests = env_or("FMW_REQUESTS", "equal");
    o->headroom = env_or("FMW_HEADROOM", "deliberate");
    o->roles = env_or("FMW_ROLES", "jobmanager,taskmanager");
    o->sizing = env_or("FMW_SIZING", "from-config");
    struct {
        const char *env;
        long *dst;
        long dflt, min, max;
    } nums[] = {
        {"FMW_PORT", &o->port, 8443, 0, 65535},
        {"FMW_HEALTH_PORT", &o->health_port, 8080, -1, 65535},
        {"FMW_WORKERS", &o->workers, 2, 1, 64},
        {"FMW_MAX_CONNECTIONS", &o->max_conn, 256, 1, 100000},
        {"FMW_DRAIN_DELAY_MS", &o->drain_ms, 5000, 0, 600000},
        {"FMW_GRACE_MS", &o->grace_ms, 25000, 0, 3600000},
        {"FMW_LOOKUP_TIMEOUT_MS", &o->lookup_ms, 2000, 1, 30000},
        {"FMW_CACHE_TTL_MS", &o->ttl_ms, 0, 0, 3600000},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        const char *v = env_or(nums[i].env, NULL);
        *nums[i].dst = nums[i].dflt;
        if (v && !number(v, nums[i].min, nums[i].max, nums[i].dst))
            return usage_error("bad number in %s", nums[i].env);
    }
    int c;
    while ((c = getopt_long(argc, argv, "", LONG, NULL)) != -1) {
        long *num = NULL, min = 0, max = 0;
        switch (c) {
        case O_CERT:
            o->cert = optarg;
            break;
        case O_KEY:
            o->key = optarg;
            break;
        case O_CA:
            o->client_ca = optarg;
            break;
        case O_TLS13:
            o->tls13 = true;
            break;
        case O_ADDR:
            o->address = optarg;
            break;
        case O_MODE:
            o->mode = optarg;
            break;
        case O_INVALID:
            o->on_invalid = optarg;
            break;
        case O_WORKLOADS:
            o->workloads = optarg;
            break;
        case O_VERSION:
            o->default_version = optarg;
            break;
        case O_REQUESTS:
            o->requests = optarg;
            break;
        case O_HEADROOM:
            o->headroom = optarg;
            break;
        case O_ROLES:
            o->roles = optarg;
            break;
        case O_SIZING:
            o->sizing = optarg;
            break;
        case O_KUBECONFIG:
            o->kubeconfig = optarg;
            break;
        case O_LOG:
            o->log_level = optarg;
            break;
        case O_PORT:
            num = &o->port;
            max = 65535;
            break;
        case O_HEALTH:
            num = &o->health_port;
            min = -1;
            max = 65535;
            break;
        case O_WORKERS:
            num = &o->workers;
            min = 1;
            max = 64;
            break;
        case O_MAXCONN:
            num = &o->max_conn;
            min = 1;
            max = 100000;
            break;
        case O_DRAIN:
            num = &o->drain_ms;
            max = 600000;
            break;
        case O_GRACE:
            num = &o->grace_ms;
            max = 3600000;
            break;
        case O_LOOKUP:
            num = &o->lookup_ms;
            min = 1;
            max = 30000;
            break;
        case O_TTL:
            num = &o->ttl_ms;
            max = 3600000;
            break;
        case O_HELP:
            fputs(USAGE, stdout);
            fputs(USAGE_MORE, stdout);
            return -1;
        case O_VERSION_INFO:
            printf("flink-memory-webhook %s\n", FMW_VERSION);
            return -1;
        default:
            return 2;
        }
        if (num && !number(optarg, min, max, num))
            return usage_error("'%s' is not a number in range", optarg);
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->cert || !o->key)
        return usage_error("%s", "--tls-cert-file and --tls-key-file are required");
    return 0;
}

int main(int argc, char **argv)
{
    /* Allocations of 128 KiB and more (request buffers, expanded values, large trees' blocks)
     * get their own mappings, returned to the kernel when freed. glibc would otherwise raise
     * this threshold after each such free, up to 32 MiB, and serve them from arenas that a
     * spike leaves fragmented: RSS stayed several MB above its rest after hostile reviews. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    struct opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;

    enum fmw_log_level level;
    if (fmw_log_level_parse(o.log_level, &level) != FMW_OK)
        return usage_error("--log-level takes debug, info, warn or error, not '%s'", o.log_level);
    fmw_log_setup(level, 2);

    struct app app;
    memset(&app, 0, sizeof app);
    fmw_admission_config_defaults(&app.cfg);
    if (!fmw_mode_parse(o.mode, &app.cfg.mode))
        return usage_error("--mode takes enforce, dry-run or off, not '%s'", o.mode);
    if (!fmw_on_invalid_parse(o.on_invalid, &app.cfg.on_invalid))
        return usage_error("--on-invalid takes deny or warn, not '%s'", o.on_invalid);
    if (!fmw_workloads_parse(o.workloads, &app.cfg.workloads))
        return usage_error("--workloads takes warn, patch or off, not '%s'", o.workloads);
    if (!fmw_flink_version_parse(o.default_version, &app.cfg.podspec.default_version))
        return usage_error("--default-flink-version: '%s' is not a Flink line 1.11 to 2.x",
                           o.default_version);
    if (!fmw_requests_policy_parse(o.requests, &app.cfg.podspec.requests))
        return usage_error("--requests takes equal or keep-lower, not '%s'", o.requests);
    if (!fmw_headroom_policy_parse(o.headroom, &app.cfg.podspec.headroom))
        return usage_error("--headroom takes deliberate, keep or remove, not '%s'", o.headroom);
    if (!fmw_sizing_parse(o.sizing, &app.cfg.podspec.sizing))
        return usage_error("--sizing takes from-config, from-limit or from-request, not '%s'",
                           o.sizing);
    if (!fmw_roles_parse(o.roles, &app.cfg.podspec.roles))
        return usage_error("--roles takes jobmanager, taskmanager or both (comma-separated), "
                           "not '%s'",
                           o.roles);

    struct fmw_diag d = FMW_DIAG_INIT;
    struct fmw_obs_registry *metrics = fmw_obs_registry_new();
    struct fmw_kube_client *client = NULL;
    struct fmw_server *srv = NULL;
    rc = 1;
    if (!metrics)
        goto out;
    const struct fmw_obs_desc decisions = {
        "flink_memory_webhook_admissions_total",
        "Admission decisions by outcome (patched, unchanged, skipped, denied, dry-run, warned, "
        "unreadable, invalid-request, error) and kind",
        "outcome,kind",
        FMW_OBS_COUNTER,
        NULL,
        0,
        0};
    if (fmw_obs_register(metrics, &decisions, &app.decisions) != FMW_OK)
        goto out;
    if (fmw_kube_client_new(o.kubeconfig, &client, &d) != FMW_OK) {
        fmw_logf(FMW_LOG_ERROR, "Kubernetes API: %s", fmw_diag_msg(&d));
        goto out;
    }
    struct fmw_cm_cache_config cc;
    fmw_cm_cache_config_defaults(&cc);
    cc.lookup_timeout_ms = (unsigned)o.lookup_ms;
    cc.ttl_ms = cc.negative_ttl_ms = (unsigned)o.ttl_ms;
    if (fmw_cm_cache_new(client, &cc, metrics, &app.cache) != FMW_OK)
        goto out;

    /* A namespace's sizing: the chart sends the pods of namespaces labelled
     * flink-memory-webhook/sizing=from-limit (from-request) to these paths (a pod's annotation
     * still wins). Same cache, metrics and settings, another default sizing. */
    struct app from_limit = app, from_request = app;
    from_limit.cfg.podspec.sizing = FMW_SIZING_LIMIT;
    from_request.cfg.podspec.sizing = FMW_SIZING_REQUEST;
    struct fmw_server_route routes[] = {{"/mutate", mutate, &app, true},
                                        {"/mutate/from-limit", mutate, &from_limit, true},
                                        {"/mutate/from-request", mutate, &from_request, true}};
    struct fmw_server_config sc;
    fmw_server_config_defaults(&sc);
    sc.tls_host = o.address;
    sc.tls_port = (int)o.port;
    sc.plain_port = (int)o.health_port;
    sc.cert_file = o.cert;
    sc.key_file = o.key;
    sc.client_ca_file = o.client_ca;
    sc.tls13_only = o.tls13;
    sc.routes = routes;
    sc.n_routes = sizeof routes / sizeof routes[0];
    sc.workers = (unsigned)o.workers;
    sc.max_connections = (unsigned)o.max_conn;
    sc.drain_delay_ms = (unsigned)o.drain_ms;
    sc.grace_ms = (unsigned)o.grace_ms;
    sc.metrics = metrics;
    if (fmw_server_new(&sc, &srv, &d) != FMW_OK) {
        fmw_logf(FMW_LOG_ERROR, "cannot start: %s", fmw_diag_msg(&d));
        goto out;
    }
    g_server = srv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    struct fmw_log_line l;
    if (fmw_log_begin(&l, FMW_LOG_INFO, "listening")) {
        fmw_log_int(&l, "port", fmw_server_tls_port(srv));
        fmw_log_int(&l, "health_port", fmw_server_plain_port(srv));
        fmw_log_str(&l, "api_server", fmw_kube_client_server(client));
        fmw_log_str(&l, "mode", o.mode);
        fmw_log_str(&l, "version", FMW_VERSION);
        fmw_log_end(&l);
    }
    enum fmw_err err = fmw_server_run(srv);
    rc = err == FMW_ETIMEDOUT ? 3 : err ? 1 : 0;
    fmw_logf(rc ? FMW_LOG_WARN : FMW_LOG_INFO, "stopped (%s)", fmw_strerror(err));
out:
    g_server = NULL;
    fmw_server_free(srv);
    fmw_cm_cache_free(app.cache);
    fmw_kube_client_free(client);
    fmw_obs_registry_free(metrics);
    fmw_diag_cleanup(&d);
    return rc;
}
