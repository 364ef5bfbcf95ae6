/*
 * kube-get: pkg/kube's API client on its own, for tests/kube/test_client.py.
 *
 *   kube-get --kubeconfig FILE [--path P] [--timeout-ms N] [--repeat N] [--pause-ms N]
 *            [--max-body N]
 *
 * Makes `repeat` GETs of `path` with one client (so keep-alive connections are reused between
 * them) and prints one JSON object per request: {"err":"OK"|"EIO"|…, "status":N, "body":"…",
 * "msg":"…", "ms":elapsed, "proto":"HTTP/2"|"HTTP/1.1"|…}. When the client cannot be made it prints
 * {"new_err":…, "msg":…}. Exit status 0 once everything is printed, 2 on bad usage.
 *
 *   kube-get --kubeconfig FILE --configmap NS/NAME --starts-ms A,B,… [--ttl-ms N]
 *
 * One ConfigMap cache (pkg/kube/cache.c, default settings but the TTL) and one thread per start
 * time: each looks NS/NAME up that many milliseconds after the first, and prints
 * {"thread":i,"err":…,"data":{…},"msg":…} in thread order once all have answered.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pkg/kube/kube.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void print(json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    puts(text ? text : "{}");
    fflush(stdout);
    free(text);
    json_decref(j);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct lookup {
    pthread_t thread;
    struct fmw_cm_cache *cache;
    char ns[128];
    const char *name;
    long start_ms;
    enum fmw_err err;
    json_t *data;
    char msg[256];
};

static void *lookup_run(void *arg)
{
    struct lookup *l = arg;
    sleep_ms(l->start_ms);
    struct fmw_diag d = FMW_DIAG_INIT;
    l->err = fmw_cm_cache_get(l->cache, l->ns, l->name, 0, &l->data, &d);
    snprintf(l->msg, sizeof l->msg, "%s", l->err ? fmw_diag_msg(&d) : "");
    fmw_diag_cleanup(&d);
    return NULL;
}

static int cache_lookups(struct fmw_kube_client *c, const char *ns_name, const char *starts,
                         long ttl_ms)
{
    const char *slash = strchr(ns_name, '/');
    struct lookup l[16];
    size_t n = 0;
    if (!slash || (size_t)(slash - ns_name) >= sizeof l[0].ns)
        return 2;
    struct fmw_cm_cache_config cfg;
    fmw_cm_cache_config_defaults(&cfg);
    cfg.ttl_ms = cfg.negative_ttl_ms = (unsigned)ttl_ms;
    struct fmw_cm_cache *cache = NULL;
    if (fmw_cm_cache_new(c, &cfg, NULL, &cache) != FMW_OK)
        return 1;
    for (const char *p = starts; *p && n < sizeof l / sizeof l[0]; n++) {
        char *end;
        memset(&l[n], 0, sizeof l[n]);
        l[n].cache = cache;
        memcpy(l[n].ns, ns_name, (size_t)(slash - ns_name));
        l[n].name = slash + 1;
        l[n].start_ms = strtol(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
    for (size_t i = 0; i < n; i++)
        pthread_create(&l[i].thread, NULL, lookup_run, &l[i]);
    for (size_t i = 0; i < n; i++)
        pthread_join(l[i].thread, NULL);
    for (size_t i = 0; i < n; i++) {
        print(json_pack("{s:i,s:s,s:o,s:s}", "thread", (json_int_t)i, "err", fmw_strerror(l[i].err),
                        "data", l[i].data ? l[i].data : json_null(), "msg", l[i].msg));
    }
    fmw_cm_cache_free(cache);
    return 0;
}

int main(int argc, char **argv)
{
    const char *kubeconfig = NULL, *path = "/api/v1/namespaces/default/configmaps/x";
    const char *configmap = NULL, *starts = "0";
    long timeout_ms = 2000, repeat = 1, pause_ms = 0, max_body = 1 << 20, ttl_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--kubeconfig") == 0)
            kubeconfig = v;
        else if (strcmp(a, "--path") == 0)
            path = v;
        else if (strcmp(a, "--timeout-ms") == 0)
            timeout_ms = atol(v);
        else if (strcmp(a, "--repeat") == 0)
            repeat = atol(v);
        else if (strcmp(a, "--pause-ms") == 0)
            pause_ms = atol(v);
        else if (strcmp(a, "--max-body") == 0)
            max_body = atol(v);
        else if (strcmp(a, "--configmap") == 0)
            configmap = v;
        else if (strcmp(a, "--starts-ms") == 0)
            starts = v;
        else if (strcmp(a, "--ttl-ms") == 0)
            ttl_ms = atol(v);
        else
            return 2;
    }
    if (!kubeconfig || argc % 2 == 0)
        return 2;
    struct fmw_kube_client *c = NULL;
    struct fmw_diag d = FMW_DIAG_INIT;
    enum fmw_err err = fmw_kube_client_new(kubeconfig, &c, &d);
    if (err) {
        print(json_pack("{s:s,s:s}", "new_err", fmw_strerror(err), "msg", fmw_diag_msg(&d)));
        fmw_diag_cleanup(&d);
        return 0;
    }
    if (configmap) {
        int rc = cache_lookups(c, configmap, starts, ttl_ms);
        fmw_kube_client_free(c);
        return rc;
    }
    for (long i = 0; i < repeat; i++) {
        if (i && pause_ms)
            sleep_ms(pause_ms);
        struct fmw_buf body;
        fmw_buf_init(&body, (size_t)max_body);
        long status = 0;
        double t0 = now_ms();
        err = fmw_kube_get(c, path, timeout_ms, &status, &body, &d);
        double took = now_ms() - t0;
        print(json_pack("{s:s,s:i,s:s%,s:s,s:f,s:s}", "err", fmw_strerror(err), "status",
                        (json_int_t)status, "body", body.data ? body.data : "", body.len, "msg",
                        err ? fmw_diag_msg(&d) : "", "ms", took, "proto",
                        fmw_kube_client_protocol(c)));
        fmw_buf_free(&body);
    }
    fmw_kube_client_free(c);
    fmw_diag_cleanup(&d);
    return 0;
}
