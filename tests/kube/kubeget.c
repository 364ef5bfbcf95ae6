/*
 * kube-get: pkg/kube's API client on its own, for tests/kube/test_client.py.
 *
 *   kube-get --kubeconfig FILE [--path P] [--timeout-ms N] [--repeat N] [--pause-ms N]
 *            [--max-body N]
 *
 * Makes `repeat` GETs of `path` with one client (so keep-alive connections are reused between
 * them) and prints one JSON object per request: {"err":"OK"|"EIO"|…, "status":N, "body":"…",
 * "msg":"…", "ms":elapsed}. When the client cannot be made it prints {"new_err":…, "msg":…}.
 * Exit status 0 once everything is printed, 2 on bad usage.
 */
#include <jansson.h>
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

int main(int argc, char **argv)
{
    const char *kubeconfig = NULL, *path = "/api/v1/namespaces/default/configmaps/x";
    long timeout_ms = 2000, repeat = 1, pause_ms = 0, max_body = 1 << 20;
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
    for (long i = 0; i < repeat; i++) {
        if (i && pause_ms) {
            struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        struct fmw_buf body;
        fmw_buf_init(&body, (size_t)max_body);
        long status = 0;
        double t0 = now_ms();
        err = fmw_kube_get(c, path, timeout_ms, &status, &body, &d);
        double took = now_ms() - t0;
        print(json_pack("{s:s,s:i,s:s%,s:s,s:f}", "err", fmw_strerror(err), "status",
                        (json_int_t)status, "body", body.data ? body.data : "", body.len, "msg",
                        err ? fmw_diag_msg(&d) : "", "ms", took));
        fmw_buf_free(&body);
    }
    fmw_kube_client_free(c);
    fmw_diag_cleanup(&d);
    return 0;
}
