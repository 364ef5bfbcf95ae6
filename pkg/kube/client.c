/*
 * A minimal Kubernetes API client over libcurl: GET requests with a deadline, authenticated as
 * the pod's service account (token re-read as kubelet rotates it, cluster CA) or from a
 * kubeconfig (client certificate, token or token file, CA file or data). Easy handles are pooled
 * so keep-alive connections are reused across lookups.
 */
#include "pkg/kube/kube_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define POOL_MAX 8
#define TOKEN_MAX (64 * 1024)
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
    time_t token_checked;
    struct timespec token_mtime;
    CURL *pool[POOL_MAX];
    size_t npool;
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
    for (size_t i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
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
        return fmw_diag_set(d, FMW_EUSAGE, "not running in a cluster (KUBERNETES_SERVICE_HOST "
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

static enum fmw_err from_kubeconfig(struct fmw_kube_client *c, const char *path,
                                    struct fmw_diag *d)
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
    size_t n = c->server ? strlen(c->server) : 0;
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
    if (!err && token)
        c->token = trimmed_copy(token);
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
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fmw_kube_global_init);
    struct fmw_kube_client *c = client_alloc();
    if (!c)
        return FMW_ENOMEM;
    enum fmw_err err = kubeconfig ? from_kubeconfig(c, kubeconfig, d) : in_cluster(c, d);
    if (err) {
        fmw_kube_client_free(c);
        return err;
    }
    *out = c;
    return FMW_OK;
}

void fmw_kube_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The bearer token, re-read from its file when the file changed (kubelet rotates it). */
static char *current_token(struct fmw_kube_client *c)
{
    pthread_mutex_lock(&c->mu);
    time_t now = time(NULL);
    if (c->token_file && (!c->token || now - c->token_checked >= TOKEN_RECHECK_S)) {
        struct stat st;
        c->token_checked = now;
        if (stat(c->token_file, &st) == 0 &&
            (!c->token || st.st_mtim.tv_sec != c->token_mtime.tv_sec ||
             st.st_mtim.tv_nsec != c->token_mtime.tv_nsec)) {
            struct fmw_buf b;
            fmw_buf_init(&b, TOKEN_MAX);
            if (read_whole(c->token_file, &b, TOKEN_MAX, NULL) == FMW_OK) {
                char *t = trimmed_copy(fmw_buf_cstr(&b));
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

static CURL *take_handle(struct fmw_kube_client *c)
{
    pthread_mutex_lock(&c->mu);
    CURL *h = c->npool ? c->pool[--c->npool] : NULL;
    pthread_mutex_unlock(&c->mu);
    return h ? h : curl_easy_init();
}

static void give_handle(struct fmw_kube_client *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    if (c->npool < POOL_MAX) {
        c->pool[c->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_cleanup(h);
}

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
    struct fmw_buf *b = arg;
    return fmw_buf_add(b, ptr, size * n) == FMW_OK ? size * n : 0;
}

static void blob(CURL *h, CURLoption opt, const struct fmw_buf *b)
{
    if (b->len == 0)
        return;
    struct curl_blob cb = {b->data, b->len, CURL_BLOB_COPY};
    curl_easy_setopt(h, opt, &cb);
}

enum fmw_err fmw_kube_get(struct fmw_kube_client *c, const char *path, long timeout_ms,
                          long *status, struct fmw_buf *body, struct fmw_diag *d)
{
    CURL *h = take_handle(c);
    if (!h)
        return fmw_diag_set(d, FMW_ENOMEM, "curl_easy_init failed");
    char url[2048];
    snprintf(url, sizeof url, "%s%s", c->server, path);
    char *token = current_token(c);
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    char auth[TOKEN_MAX + 32];
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    free(token);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "flink-memory-webhook");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
    blob(h, CURLOPT_CAINFO_BLOB, &c->ca);
    blob(h, CURLOPT_SSLCERT_BLOB, &c->cert);
    blob(h, CURLOPT_SSLKEY_BLOB, &c->key);
    if (c->cert.len)
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    enum fmw_err err = FMW_OK;
    if (rc == CURLE_OPERATION_TIMEDOUT)
        err = fmw_diag_set(d, FMW_ETIMEDOUT, "the API server did not answer within %ld ms",
                           timeout_ms);
    else if (rc == CURLE_WRITE_ERROR)
        err = fmw_diag_set(d, FMW_ETOOBIG, "the API server's answer is too large");
    else if (rc != CURLE_OK)
        err = fmw_diag_set(d, FMW_EIO, "API request failed: %s", curl_easy_strerror(rc));
    else
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    /* A handle that failed may hold a broken connection: do not reuse it. */
    if (err) {
        curl_easy_cleanup(h);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        give_handle(c, h);
    }
    return err;
}

const char *fmw_kube_client_server(const struct fmw_kube_client *c)
{
    return c->server;
}
