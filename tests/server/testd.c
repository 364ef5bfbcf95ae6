/*
 * server-testd: pkg/server with test handlers, driven by tests/server/test_server.py.
 *
 * Routes (all POST + application/json, on the TLS listener):
 *   /echo    answers the request body as it came
 *   /mutate  answers {"len":N,"budget_ms":M,"query":"…"}: what the handler saw, including the
 *            deadline budget derived from ?timeout=
 *   /slow    sleeps (?delay_ms=N, default --slow-ms) and answers {"slept_ms":N}
 *   /fail    returns an error code: the server must answer 500
 *   /big     answers a body of ?bytes=N bytes (the response cap applies)
 *   /inline  an inline_first route: answers {"on_loop":B,"len":N}; with ?wait=1 an attempt on
 *            the loop thread writes partial output and answers FMW_EAGAIN (a lookup that would
 *            wait), so the request must be answered from a worker, without that output
 *
 * SIGTERM/SIGINT start the drain, SIGHUP asks for a certificate check. Exit status: 0 drained,
 * 3 grace period exceeded, 1 start-up error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pkg/obs/obs.h"
#include "pkg/server/server.h"

static struct fmw_server *g_server;
static unsigned g_slow_ms = 500;
static struct fmw_obs_metric *g_handled;

static void on_signal(int sig)
{
    if (!g_server)
        return;
    if (sig == SIGHUP)
        fmw_server_reload(g_server);
    else
        fmw_server_shutdown(g_server);
}

/* The unsigned value of `name=` in a query string, or `dflt`. */
static unsigned long query_num(struct fmw_str query, const char *name, unsigned long dflt)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < query.len) {
        size_t end = i;
        while (end < query.len && query.ptr[end] != '&')
            end++;
        if (end - i > nlen && memcmp(query.ptr + i, name, nlen) == 0 &&
            query.ptr[i + nlen] == '=') {
            unsigned long v = 0;
            for (size_t k = i + nlen + 1; k < end && query.ptr[k] >= '0' && query.ptr[k] <= '9';
                 k++)
                v = v * 10 + (unsigned long)(query.ptr[k] - '0');
            return v;
        }
        i = end + 1;
    }
    return dflt;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static enum fmw_err echo(void *ctx, const struct fmw_server_request *req,
                         struct fmw_server_response *resp)
{
    (void)ctx;
    fmw_obs_inc(fmw_obs_series1(g_handled, "echo"));
    return fmw_buf_add(&resp->body, req->body.ptr, req->body.len);
}

static enum fmw_err mutate(void *ctx, const struct fmw_server_request *req,
                           struct fmw_server_response *resp)
{
    (void)ctx;
    fmw_obs_inc(fmw_obs_series1(g_handled, "mutate"));
    uint64_t now = now_ns();
    uint64_t budget = req->deadline_ns > now ? (req->deadline_ns - now) / 1000000u : 0;
    struct fmw_log_line line;
    fmw_log_begin(&line, FMW_LOG_INFO, "decision");
    fmw_log_uint(&line, "request_id", req->id);
    fmw_log_str(&line, "remote", req->remote);
    fmw_log_uint(&line, "len", req->body.len);
    fmw_log_str(&line, "token", "must-not-appear");
    fmw_log_end(&line);
    return fmw_buf_addf(&resp->body, "{\"len\":%zu,\"budget_ms\":%llu,\"query\":\"%.*s\"}",
                        req->body.len, (unsigned long long)budget, (int)req->query.len,
                        req->query.ptr);
}

static enum fmw_err slow(void *ctx, const struct fmw_server_request *req,
                         struct fmw_server_response *resp)
{
    (void)ctx;
    fmw_obs_inc(fmw_obs_series1(g_handled, "slow"));
    unsigned long ms = query_num(req->query, "delay_ms", g_slow_ms);
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return fmw_buf_addf(&resp->body, "{\"slept_ms\":%lu}", ms);
}

static enum fmw_err fail(void *ctx, const struct fmw_server_request *req,
                         struct fmw_server_response *resp)
{
    (void)ctx, (void)req;
    fmw_obs_inc(fmw_obs_series1(g_handled, "fail"));
    (void)fmw_buf_adds(&resp->body, "partial output that must not be sent");
    return FMW_EINTERNAL;
}

static enum fmw_err big(void *ctx, const struct fmw_server_request *req,
                        struct fmw_server_response *resp)
{
    (void)ctx;
    fmw_obs_inc(fmw_obs_series1(g_handled, "big"));
    unsigned long n = query_num(req->query, "bytes", 1024);
    resp->content_type = "application/octet-stream";
    char chunk[4096];
    memset(chunk, 'x', sizeof(chunk));
    while (n > 0) {
        size_t k = n < sizeof(chunk) ? n : sizeof(chunk);
        enum fmw_err err = fmw_buf_add(&resp->body, chunk, k);
        if (err != FMW_OK)
            return err;
        n -= k;
    }
    return FMW_OK;
}

static enum fmw_err inline_route(void *ctx, const struct fmw_server_request *req,
                                 struct fmw_server_response *resp)
{
    (void)ctx;
    if (!req->may_block && query_num(req->query, "wait", 0)) {
        fmw_obs_inc(fmw_obs_series1(g_handled, "inline-deferred"));
        (void)fmw_buf_adds(&resp->body, "partial output of the loop attempt");
        resp->status = 299;
        return FMW_EAGAIN;
    }
    fmw_obs_inc(fmw_obs_series1(g_handled, req->may_block ? "inline-worker" : "inline-loop"));
    return fmw_buf_addf(&resp->body, "{\"on_loop\":%s,\"len\":%zu}",
                        req->may_block ? "false" : "true", req->body.len);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: server-testd --cert F --key F [--client-ca F] [--port N] [--plain-port N]\n"
            "  [--port-file F] [--tls13-only] [--workers N] [--max-connections N]\n"
            "  [--max-body N] [--request-timeout-ms N] [--idle-timeout-ms N]\n"
            "  [--handler-timeout-ms N] [--reload-ms N] [--drain-delay-ms N] [--grace-ms N]\n"
            "  [--slow-ms N] [--inline-max-body N] [--log-level L]\n");
    return 1;
}

int main(int argc, char **argv)
{
    struct fmw_server_config cfg;
    fmw_server_config_defaults(&cfg);
    cfg.tls_host = "127.0.0.1";
    cfg.plain_host = "127.0.0.1";
    cfg.tls_port = 0;
    const char *port_file = NULL;
    enum fmw_log_level level = FMW_LOG_INFO;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--tls13-only") == 0) {
            cfg.tls13_only = true;
            takes = false;
        } else if (!v) {
            return usage();
        } else if (strcmp(a, "--cert") == 0) {
            cfg.cert_file = v;
        } else if (strcmp(a, "--key") == 0) {
            cfg.key_file = v;
        } else if (strcmp(a, "--client-ca") == 0) {
            cfg.client_ca_file = v;
        } else if (strcmp(a, "--port") == 0) {
            cfg.tls_port = atoi(v);
        } else if (strcmp(a, "--plain-port") == 0) {
            cfg.plain_port = atoi(v);
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = v;
        } else if (strcmp(a, "--workers") == 0) {
            cfg.workers = (unsigned)atoi(v);
        } else if (strcmp(a, "--max-connections") == 0) {
            cfg.max_connections = (unsigned)atoi(v);
        } else if (strcmp(a, "--max-body") == 0) {
            cfg.max_body = (size_t)atol(v);
        } else if (strcmp(a, "--request-timeout-ms") == 0) {
            cfg.request_timeout_ms = (unsigned)atoi(v);
        } else if (strcmp(a, "--idle-timeout-ms") == 0) {
            cfg.idle_timeout_ms = (unsigned)atoi(v);
        } else if (strcmp(a, "--handler-timeout-ms") == 0) {
            cfg.handler_timeout_ms = (unsigned)atoi(v);
        } else if (strcmp(a, "--reload-ms") == 0) {
            cfg.reload_interval_ms = (unsigned)atoi(v);
        } else if (strcmp(a, "--drain-delay-ms") == 0) {
            cfg.drain_delay_ms = (unsigned)atoi(v);
        } else if (strcmp(a, "--grace-ms") == 0) {
            cfg.grace_ms = (unsigned)atoi(v);
        } else if (strcmp(a, "--inline-max-body") == 0) {
            cfg.inline_max_body = (size_t)atol(v);
        } else if (strcmp(a, "--slow-ms") == 0) {
            g_slow_ms = (unsigned)atoi(v);
        } else if (strcmp(a, "--log-level") == 0) {
            if (fmw_log_level_parse(v, &level) != FMW_OK)
                return usage();
        } else {
            return usage();
        }
        if (takes)
            i++;
    }
    fmw_log_setup(level, 2);

    struct fmw_obs_registry *reg = fmw_obs_registry_new();
    struct fmw_obs_desc desc = {.name = "flink_memory_webhook_testd_handled_total",
                                .help = "Requests the test handlers ran, by handler.",
                                .labels = "handler",
                                .kind = FMW_OBS_COUNTER};
    if (!reg || fmw_obs_register(reg, &desc, &g_handled) != FMW_OK) {
        fprintf(stderr, "server-testd: cannot set up metrics\n");
        fmw_obs_registry_free(reg);
        return 1;
    }
    static const struct fmw_server_route routes[] = {
        {"/echo", echo, NULL, false}, {"/mutate", mutate, NULL, false},
        {"/slow", slow, NULL, false}, {"/fail", fail, NULL, false},
        {"/big", big, NULL, false},   {"/inline", inline_route, NULL, true},
    };
    cfg.routes = routes;
    cfg.n_routes = sizeof(routes) / sizeof(routes[0]);
    cfg.metrics = reg;

    struct fmw_diag diag = FMW_DIAG_INIT;
    struct fmw_server *srv = NULL;
    enum fmw_err err = fmw_server_new(&cfg, &srv, &diag);
    if (err != FMW_OK) {
        fprintf(stderr, "server-testd: %s: %s\n", fmw_strerror(err), fmw_diag_msg(&diag));
        fmw_diag_cleanup(&diag);
        fmw_obs_registry_free(reg);
        return 1;
    }
    g_server = srv;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    if (port_file) {
        /* Written whole under a temporary name, then renamed, so a reader never sees half. */
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%d %d\n", fmw_server_tls_port(srv), fmw_server_plain_port(srv));
            fclose(f);
            rename(tmp, port_file);
        }
    }

    err = fmw_server_run(srv);
    /* Past the grace period a handler may still be running, and fmw_server_free() would wait
     * for it: a daemon told to stop now exits now, leaving the memory to the kernel. */
    if (err == FMW_ETIMEDOUT)
        _exit(3);
    g_server = NULL;
    fmw_server_free(srv);
    fmw_obs_registry_free(reg);
    return err == FMW_OK ? 0 : err == FMW_ETIMEDOUT ? 3 : 1;
}
