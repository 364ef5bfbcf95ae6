/*
 * A minimal Kubernetes API client: GET requests with a deadline (transport.c), authenticated as the
 * pod's service account (token re-read as kubelet rotates it, cluster CA) or from a kubeconfig
 * (client certificate, token or token file, CA file or data).
 */
#include "pkg/kube/kube_int.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SA_DIR          "/var/run/secrets/kubernetes.io/serviceaccount"
#define TOKEN_MAX       (64 * 1024)
#define TOKEN_RECHECK_S 30

struct fmw_kube_client {
    char *server; /* https://host:port, no trailing slash */
    /* TLS material as PEM blobs (files are read once; Kubernetes rotates the token only). */
    struct fmw_buf ca, cert, key;
    bool insecure;
    /* Bearer token: fixed, or re-read from token_file when it changes. */
    pthread_mutex_t mu;
    char *token;
    char *token_file;
    uint64_t token_checked_s; /* CLOCK_MONOTONIC seconds: a wall clock set back must not stall
                                 re-reads */
    bool token_read;
    struct timespec token_mtime;
    struct kube_http *http;
};

static enum fmw_err read_whole(const char *path, struct fmw_buf *out, size_t max,
                               struct fmw_diag *d)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fmw_diag_set(d, FMW_EIO, "cannot read %s: %s", path, strerror(errno));
    struct fmw_buf b;
    fmw_buf_init(&b, max);
    char chunk[8192];
    size_t n;
    enum fmw_err err = FMW_OK;
    while (!err && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        err = fmw_buf_add(&b, chunk, n);
    fclose(f);
    if (err) {
        fmw_buf_free(&b);
        return fmw_diag_set(d, err, "cannot read %s: %s", path, fmw_strerror(err));
    }
    fmw_buf_free(out);
    *out = b;
    return FMW_OK;
}

/* base64 decoding of kubeconfig "*-data" fields. */
static enum fmw_err b64_decode(const char *in, struct fmw_buf *out, struct fmw_diag *d,
                               const char *what)
{
    static const char ALPHA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned acc = 0;
    int bits = 0;
    enum fmw_err err = FMW_OK;
    for (const char *p = in; *p && !err; p++) {
        if (*p == '=' || *p == '\n' || *p == '\r' || *p == ' ')
            continue;
        const char *pos = strchr(ALPHA, *p);
        if (!pos)
            return fmw_diag_set(d, FMW_EINVAL, "%s is not base64", what);
        acc = (acc << 6) | (unsigned)(pos - ALPHA);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            err = fmw_buf_addc(out, (char)((acc >> bits) & 0xFF));
        }
    }
    return err;
}

/* True when `s` may go into an HTTP header: no control characters (a CR or LF in a token or
 * server name would start a header line of its own). */
static bool header_safe(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static char *trimmed_copy(const char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    return fmw_str_dup((struct fmw_str){s, n});
}

static struct fmw_kube_client *client_alloc(void)
{
    struct fmw_kube_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    fmw_buf_init(&c->ca, 1 << 20);
    fmw_buf_init(&c->cert, 1 << 20);
    fmw_buf_init(&c->key, 1 << 20);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void fmw_kube_client_free(struct fmw_kube_client *c)
{
    if (!c)
        return;
    kube_http_free(c->http);
    free(c->server);
    free(c->token);
    free(c->token_file);
    fmw_buf_free(&c->ca);
    fmw_buf_free(&c->cert);
    fmw_buf_free(&c->key);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static enum fmw_err in_cluster(struct fmw_kube_client *c, struct fmw_diag *d)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port)
        return fmw_diag_set(d, FMW_EUSAGE,
                            "not running in a cluster (KUBERNETES_SERVICE_HOST "
                            "unset) and no --kubeconfig given");
    char server[512];
    snprintf(server, sizeof server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
             port);
    c->server = fmw_strdup(server);
    c->token_file = fmw_strdup(SA_DIR "/token");
    if (!c->server || !c->token_file)
        return FMW_ENOMEM;
    return read_whole(SA_DIR "/ca.crt", &c->ca, 1 << 20, d);
}

/* Resolves a kubeconfig file path relative to the kubeconfig's directory. */
static void relative_to(const char *kubeconfig, const char *path, char out[PATH_MAX])
{
    if (path[0] == '/') {
        snprintf(out, PATH_MAX, "%s", path);
        return;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", kubeconfig);
    snprintf(out, PATH_MAX, "%s/%s", dirname(dir), path);
}

static json_t *named(json_t *list, const char *name, const char *field)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && name && strcmp(n, name) == 0)
            return json_object_get(e, field);
    }
    return NULL;
}

/* Either "<field>-data" (base64) or "<field>" (a file) of `obj` into `out`. */
static enum fmw_err pem_of(const char *kubeconfig, json_t *obj, const char *field,
                           struct fmw_buf *out, struct fmw_diag *d)
{
    char key[128];
    snprintf(key, sizeof key, "%s-data", field);
    const char *data = json_string_value(json_object_get(obj, key));
    if (data)
        return b64_decode(data, out, d, key);
    const char *file = json_string_value(json_object_get(obj, field));
    if (!file)
        return FMW_OK;
    char path[PATH_MAX];
    relative_to(kubeconfig, file, path);
    return read_whole(path, out, 1 << 20, d);
}

static enum fmw_err from_kubeconfig(struct fmw_kube_client *c, const char *path, struct fmw_diag *d)
{
    struct fmw_buf text;
    fmw_buf_init(&text, 4 << 20);
    json_t *docs = NULL;
    enum fmw_err err = read_whole(path, &text, 4 << 20, d);
    if (!err)
        err = fmw_kube_yaml_load(text.data ? text.data : "", text.len, &docs, d);
    fmw_buf_free(&text);
    if (err)
        return err;
    json_t *cfg = json_array_get(docs, 0);
    const char *current = json_string_value(json_object_get(cfg, "current-context"));
    json_t *ctx = named(json_object_get(cfg, "contexts"), current, "context");
    const char *cluster_name = json_string_value(json_object_get(ctx, "cluster"));
    const char *user_name = json_string_value(json_object_get(ctx, "user"));
    json_t *cluster = named(json_object_get(cfg, "clusters"), cluster_name, "cluster");
    json_t *user = named(json_object_get(cfg, "users"), user_name, "user");
    const char *server = json_string_value(json_object_get(cluster, "server"));
    if (!server) {
        err = fmw_diag_set(d, FMW_EINVAL, "%s: no server for the current context '%s'", path,
                           current ? current : "");
        goto out;
    }
    c->server = trimmed_copy(server);
    if (!c->server) {
        err = FMW_ENOMEM;
        goto out;
    }
    if (!header_safe(c->server)) {
        err = fmw_diag_set(d, FMW_EINVAL, "%s: the server URL holds control characters", path);
        goto out;
    }
    size_t n = strlen(c->server);
    while (n && c->server[n - 1] == '/')
        c->server[--n] = '\0';
    c->insecure = json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
    err = pem_of(path, cluster, "certificate-authority", &c->ca, d);
    if (!err)
        err = pem_of(path, user, "client-certificate", &c->cert, d);
    if (!err)
        err = pem_of(path, user, "client-key", &c->key, d);
    const char *token = json_string_value(json_object_get(user, "token"));
    const char *token_file = json_string_value(json_object_get(user, "tokenFile"));
    if (!err && token) {
        c->token = trimmed_copy(token);
        if (!c->token)
            err = FMW_ENOMEM;
        else if (!header_safe(c->token))
            err =
                fmw_diag_set(d, FMW_EINVAL, "%s: the user's token holds control characters", path);
    }
    if (!err && token_file) {
        char p[PATH_MAX];
        relative_to(path, token_file, p);
        c->token_file = fmw_strdup(p);
    }
out:
    json_decref(docs);
    return err;
}

enum fmw_err fmw_kube_client_new(const char *kubeconfig, struct fmw_kube_client **out,
                                 struct fmw_diag *d)
{
    struct fmw_kube_client *c = client_alloc();
    if (!c)
        return FMW_ENOMEM;
    enum fmw_err err = kubeconfig ? from_kubeconfig(c, kubeconfig, d) : in_cluster(c, d);
    /* The transport checks the server URL and the TLS material: a bad one shows at start. */
    if (!err)
        err = kube_http_new(c->server, &c->ca, &c->cert, &c->key, c->insecure, &c->http, d);
    if (err) {
        fmw_kube_client_free(c);
        return err;
    }
    *out = c;
    return FMW_OK;
}

static uint64_t monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

/* The bearer token, re-read from its file when the file changed (kubelet rotates it). */
static char *current_token(struct fmw_kube_client *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t now = monotonic_s();
    if (c->token_file &&
        (!c->token || !c->token_read || now - c->token_checked_s >= TOKEN_RECHECK_S)) {
        struct stat st;
        c->token_checked_s = now;
        c->token_read = true;
        if (stat(c->token_file, &st) == 0 &&
            (!c->token || st.st_mtim.tv_sec != c->token_mtime.tv_sec ||
             st.st_mtim.tv_nsec != c->token_mtime.tv_nsec)) {
            struct fmw_buf b;
            fmw_buf_init(&b, TOKEN_MAX);
            if (read_whole(c->token_file, &b, TOKEN_MAX, NULL) == FMW_OK) {
                char *t = trimmed_copy(fmw_buf_cstr(&b));
                if (t && !header_safe(t)) {
                    free(t); /* keep the previous token: this one cannot be sent */
                    t = NULL;
                }
                if (t) {
                    free(c->token);
                    c->token = t;
                    c->token_mtime = st.st_mtim;
                }
            }
            fmw_buf_free(&b);
        }
    }
    char *copy = c->token ? fmw_strdup(c->token) : NULL;
    pthread_mutex_unlock(&c->mu);
    return copy;
}

enum fmw_err fmw_kube_get(struct fmw_kube_client *c, const char *path, long timeout_ms,
                          long *status, struct fmw_buf *body, struct fmw_diag *d)
{
    uint64_t deadline = fmw_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1) * 1000000u;
    char *token = current_token(c);
    enum fmw_err err = kube_http_get(c->http, path, token, deadline, status, body, d);
    free(token);
    return err;
}

const char *fmw_kube_client_server(const struct fmw_kube_client *c)
{
    return c->server;
}

const char *fmw_kube_client_protocol(const struct fmw_kube_client *c)
{
    return kube_http_protocol(c->http);
}
