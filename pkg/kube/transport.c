/*
 * The API server's transport: GET requests through libcurl (with OpenSSL, and HTTP/2 where the
 * API server offers it), one easy handle per request taken from a small pool so that its
 * connection stays open for the next one, and name lookups and TLS sessions shared between the
 * handles. Every request has a deadline that covers all of it: lookup, connect, handshake and
 * answer. The server URL and the TLS material are checked when the client is made (OpenSSL parses
 * the PEM blobs once), so a bad kubeconfig shows at start and not at the first admission.
 *
 * libcurl reads the HTTP; what this file adds is what an API server's answer to a GET may be: a
 * head (interim answers and trailers included) of at most HEAD_MAX bytes, one Content-Length,
 * no transfer coding but chunked and no content coding (none is asked for), and a body within
 * the caller's cap.
 */
#include "pkg/kube/kube_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#define IDLE_MAX       4 /* easy handles (each with its connection) kept between requests */
#define HEAD_MAX       (64u * 1024u) /* status lines and fields of one answer, 1xx and trailers too */
#define CONN_MAX_AGE_S 60            /* below the API server's own idle timeout */

/* ---- the endpoint ---- */

/* Where the API server is, from its URL ("https://host:port/base"). */
struct kube_endpoint {
    bool tls;        /* https (else plain http, for a local proxy) */
    char *host;      /* name or address, without IPv6 brackets */
    char *port;      /* decimal; 443 or 80 when the URL has none */
    char *authority; /* host[:port] as the URL has it */
    char *base_path; /* "" or "/prefix" (no trailing slash) put before request paths */
};

static void kube_endpoint_cleanup(struct kube_endpoint *ep);

/* FMW_EINVAL for a URL that is not http(s)://host[:port][/path]. */
static enum fmw_err kube_endpoint_parse(const char *url, struct kube_endpoint *ep,
                                        struct fmw_diag *d)
{
    memset(ep, 0, sizeof *ep);
    const char *rest;
    if (strncasecmp(url, "https://", 8) == 0) {
        ep->tls = true;
        rest = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else {
        return fmw_diag_set(d, FMW_EINVAL, "server '%.200s': the URL must start with https://",
                            url);
    }
    size_t auth_len = strcspn(rest, "/?#");
    const char *path = rest + auth_len;
    if (*path == '?' || *path == '#')
        return fmw_diag_set(d, FMW_EINVAL, "server '%.200s': a query or fragment is not allowed",
                            url);
    const char *host = rest, *port = NULL;
    size_t host_len;
    if (*rest == '[') {
        const char *close = memchr(rest, ']', auth_len);
        if (!close)
            return fmw_diag_set(d, FMW_EINVAL, "server '%.200s': unclosed [ in the host", url);
        host = rest + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < rest + auth_len) {
            if (close[1] != ':')
                return fmw_diag_set(d, FMW_EINVAL, "server '%.200s': bad port", url);
            port = close + 2;
        }
    } else {
        const char *colon = memchr(rest, ':', auth_len);
        host_len = colon ? (size_t)(colon - rest) : auth_len;
        port = colon ? colon + 1 : NULL;
    }
    size_t port_len = port ? (size_t)(rest + auth_len - port) : 0;
    if (host_len == 0 || host_len > 253 || memchr(host, '@', host_len))
        return fmw_diag_set(d, FMW_EINVAL, "server '%.200s': bad host", url);
    unsigned long port_number = ep->tls ? 443 : 80;
    if (port) {
        port_number = 0;
        for (size_t i = 0; i < port_len && port_number <= 65535; i++) {
            if (port[i] < '0' || port[i] > '9')
                return fmw_diag_set(d, FMW_EINVAL, "server '%.200s': bad port", url);
            port_number = port_number * 10 + (unsigned long)(port[i] - '0');
        }
        if (port_len == 0 || port_number == 0 || port_number > 65535)
            return fmw_diag_set(d, FMW_EINVAL, "server '%.200s': bad port", url);
    }
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%lu", port_number); /* "00443" is port 443 */
    ep->host = fmw_str_dup((struct fmw_str){host, host_len});
    ep->port = fmw_strdup(port_text);
    ep->authority = fmw_str_dup((struct fmw_str){rest, auth_len});
    /* The base path keeps no trailing slash: request paths start with one. */
    size_t path_len = strlen(path);
    while (path_len && path[path_len - 1] == '/')
        path_len--;
    ep->base_path = fmw_str_dup((struct fmw_str){path, path_len});
    if (!ep->host || !ep->port || !ep->authority || !ep->base_path) {
        kube_endpoint_cleanup(ep);
        return FMW_ENOMEM;
    }
    return FMW_OK;
}

static void kube_endpoint_cleanup(struct kube_endpoint *ep)
{
    free(ep->host);
    free(ep->port);
    free(ep->authority);
    free(ep->base_path);
    memset(ep, 0, sizeof *ep);
}

/* ---- TLS context ---- */

/* The first OpenSSL error of this thread as text (and the queue emptied), or `dflt`. */
static const char *ssl_reason(char *buf, size_t cap, const char *dflt)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e)
        return dflt;
    ERR_error_string_n(e, buf, cap);
    return buf;
}

static enum fmw_err add_ca_pem(SSL_CTX *ctx, const struct fmw_buf *pem, struct fmw_diag *d)
{
    BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    if (!bio)
        return FMW_ENOMEM;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int added = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, x) == 1)
            added++;
        X509_free(x);
    }
    ERR_clear_error(); /* the read that ends the loop leaves "no start line" */
    BIO_free(bio);
    if (added == 0)
        return fmw_diag_set(d, FMW_EINVAL, "the certificate authority holds no PEM certificate");
    return FMW_OK;
}

/* An encrypted key is refused rather than prompted for on a terminal (OpenSSL's default). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static enum fmw_err use_client_pair(SSL_CTX *ctx, const struct fmw_buf *cert,
                                    const struct fmw_buf *key, struct fmw_diag *d)
{
    char why[256];
    enum fmw_err err = FMW_OK;
    BIO *bio = BIO_new_mem_buf(cert->data, (int)cert->len);
    X509 *leaf = bio ? PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL) : NULL;
    if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1) {
        err = fmw_diag_set(d, FMW_EINVAL, "client certificate: %s",
                           ssl_reason(why, sizeof why, "no PEM certificate"));
        goto out;
    }
    X509 *extra;
    while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            err = fmw_diag_set(d, FMW_EINVAL, "client certificate chain: %s",
                               ssl_reason(why, sizeof why, "unusable"));
            goto out;
        }
    }
    ERR_clear_error();
    BIO_free(bio);
    bio = BIO_new_mem_buf(key->data, (int)key->len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    if (!pkey || SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        err = fmw_diag_set(d, FMW_EINVAL, "client key: %s",
                           ssl_reason(why, sizeof why, "no PEM private key"));
    EVP_PKEY_free(pkey);
out:
    X509_free(leaf);
    BIO_free(bio);
    return err;
}

/*
 * Checks the TLS material as a client would use it: at least one certificate in the PEM CAs
 * `ca` (when given), and a client certificate chain with its unencrypted key (when given).
 * FMW_EINVAL with the reason otherwise.
 */
static enum fmw_err kube_tls_check(const struct fmw_buf *ca, const struct fmw_buf *cert,
                                   const struct fmw_buf *key, struct fmw_diag *d)
{
    enum fmw_err err = FMW_OK;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return fmw_diag_set(d, FMW_ENOMEM, "cannot create a TLS context");
    if (ca->len)
        err = add_ca_pem(ctx, ca, d);
    if (!err && (cert->len || key->len)) {
        if (!cert->len || !key->len)
            err = fmw_diag_set(d, FMW_EINVAL,
                               "a client certificate needs its key, and a key "
                               "its certificate");
        else
            err = use_client_pair(ctx, cert, key, d);
    }
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return err;
}

/* ---- requests through libcurl ---- */

struct handle {
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
};

struct kube_http {
    char *base; /* the server URL without trailing slashes: request paths start with one */
    char *authority;
    bool tls;
    struct curl_blob ca, cert, key; /* borrowed from the client, which outlives this */
    bool insecure;
    CURLSH *share; /* name lookups and TLS sessions */
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    _Atomic(const char *) protocol; /* the HTTP version of the last answer (NULL before any) */
    pthread_mutex_t mu;             /* the idle handles */
    struct handle *idle[IDLE_MAX];
    size_t n_idle;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init;

static void curl_init_once(void)
{
    g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *easy, curl_lock_data data, curl_lock_access access, void *arg)
{
    (void)easy, (void)access;
    struct kube_http *h = arg;
    pthread_mutex_lock(&h->share_mu[data]);
}

static void share_unlock(CURL *easy, curl_lock_data data, void *arg)
{
    (void)easy;
    struct kube_http *h = arg;
    pthread_mutex_unlock(&h->share_mu[data]);
}

static struct curl_blob blob_of(const struct fmw_buf *b)
{
    return (struct curl_blob){b->data, b->len, CURL_BLOB_NOCOPY};
}

enum fmw_err kube_http_new(const char *server, const struct fmw_buf *ca, const struct fmw_buf *cert,
                           const struct fmw_buf *key, bool insecure, struct kube_http **out,
                           struct fmw_diag *d)
{
    struct kube_endpoint ep;
    enum fmw_err err = kube_endpoint_parse(server, &ep, d);
    if (err)
        return err;
    if (ep.tls)
        err = kube_tls_check(ca, cert, key, d);
    if (!err) {
        pthread_once(&g_curl_once, curl_init_once);
        if (g_curl_init != CURLE_OK)
            err = fmw_diag_set(d, FMW_EIO, "libcurl: %s", curl_easy_strerror(g_curl_init));
    }
    struct kube_http *h = err ? NULL : calloc(1, sizeof *h);
    if (!err && !h)
        err = FMW_ENOMEM;
    if (err) {
        kube_endpoint_cleanup(&ep);
        return err;
    }
    /* The URL as the endpoint read it: scheme, authority, base path; "00443" is port 443. */
    struct fmw_buf url;
    fmw_buf_init(&url, 4096);
    bool v6 = ep.host && strchr(ep.host, ':'); /* an IPv6 literal goes in brackets */
    err = fmw_buf_addf(&url, "%s://%s%s%s:%s%s", ep.tls ? "https" : "http", v6 ? "[" : "",
                       ep.host ? ep.host : "", v6 ? "]" : "", ep.port ? ep.port : "",
                       ep.base_path ? ep.base_path : "");
    h->base = err ? NULL : fmw_strdup(fmw_buf_cstr(&url));
    h->authority = fmw_strdup(ep.authority);
    h->tls = ep.tls;
    fmw_buf_free(&url);
    kube_endpoint_cleanup(&ep);
    h->ca = blob_of(ca);
    h->cert = blob_of(cert);
    h->key = blob_of(key);
    h->insecure = insecure;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&h->share_mu[i], NULL);
    pthread_mutex_init(&h->mu, NULL);
    h->share = curl_share_init();
    if (!h->base || !h->authority || !h->share) {
        kube_http_free(h);
        return FMW_ENOMEM;
    }
    curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *out = h;
    return FMW_OK;
}

static void handle_free(struct handle *k)
{
    if (!k)
        return;
    curl_easy_cleanup(k->easy);
    free(k);
}

const char *kube_http_protocol(struct kube_http *h)
{
    const char *p = atomic_load(&h->protocol);
    return p ? p : "";
}

void kube_http_free(struct kube_http *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_idle; i++)
        handle_free(h->idle[i]);
    if (h->share)
        curl_share_cleanup(h->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&h->share_mu[i]);
    pthread_mutex_destroy(&h->mu);
    free(h->base);
    free(h->authority);
    free(h);
}

/* What one request gathers from libcurl's callbacks. */
struct exchange {
    struct fmw_buf *body;
    bool too_big;
    size_t head_bytes;
    int lengths;       /* Content-Length fields in the current head */
    char refused[160]; /* why the head was refused, when it was */
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct exchange *x = arg;
    if (fmw_buf_add(x->body, p, n) != FMW_OK) {
        x->too_big = true;
        return 0; /* ends the transfer */
    }
    (void)size; /* always 1 */
    return n;
}

/* `field` is "name:" (lower case); the line's value, trimmed, or NULL when it is another field. */
static bool field_value(const char *line, size_t len, const char *field, struct fmw_str *value)
{
    size_t n = strlen(field);
    if (len < n || strncasecmp(line, field, n) != 0)
        return false;
    const char *v = line + n, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *value = (struct fmw_str){v, (size_t)(end - v)};
    return true;
}

static size_t on_head(char *p, size_t size, size_t n, void *arg)
{
    struct exchange *x = arg;
    struct fmw_str v;
    (void)size; /* always 1 */
    x->head_bytes += n;
    if (x->head_bytes > HEAD_MAX) {
        snprintf(x->refused, sizeof x->refused,
                 "its head (with interim answers and trailers) "
                 "is larger than %u KiB",
                 HEAD_MAX >> 10);
        return 0;
    }
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        x->lengths = 0; /* a new head: an interim answer's fields are its own */
    } else if (field_value(p, n, "content-length:", &v)) {
        if (++x->lengths > 1) {
            snprintf(x->refused, sizeof x->refused, "it has two Content-Length fields");
            return 0;
        }
    } else if (field_value(p, n, "transfer-encoding:", &v)) {
        if (v.len != 7 || strncasecmp(v.ptr, "chunked", 7) != 0) {
            snprintf(x->refused, sizeof x->refused, "transfer coding '%.*s' (only chunked is read)",
                     (int)(v.len > 60 ? 60 : v.len), v.ptr);
            return 0;
        }
    } else if (field_value(p, n, "content-encoding:", &v)) {
        if (v.len && (v.len != 8 || strncasecmp(v.ptr, "identity", 8) != 0)) {
            snprintf(x->refused, sizeof x->refused, "content coding '%.*s' (none was asked for)",
                     (int)(v.len > 60 ? 60 : v.len), v.ptr);
            return 0;
        }
    }
    return n;
}

static struct handle *handle_take(struct kube_http *h)
{
    pthread_mutex_lock(&h->mu);
    struct handle *k = h->n_idle ? h->idle[--h->n_idle] : NULL;
    pthread_mutex_unlock(&h->mu);
    if (k)
        return k;
    k = calloc(1, sizeof *k);
    if (!k || !(k->easy = curl_easy_init())) {
        free(k);
        return NULL;
    }
    CURL *e = k->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for lookups */
    /* A name lookup still running at the deadline is left to finish on its thread instead of
     * being waited for: the deadline covers the lookup too. */
    curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, k->errbuf);
    curl_easy_setopt(e, CURLOPT_SHARE, h->share);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "flink-memory-webhook/" FMW_VERSION);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)CONN_MAX_AGE_S);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_head);
    if (h->tls) {
        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, h->insecure ? 0L : 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, h->insecure ? 0L : 2L);
        /* The cluster's CA alone when one is given: the blob replaces only the default bundle
         * file, so the default CA directory (the system's certificates) is turned off too.
         * Without a CA of its own, the system's are used. */
        if (h->ca.len) {
            curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &h->ca);
            curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
            curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        }
        if (h->cert.len) {
            curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &h->cert);
            curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
            curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &h->key);
            curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
        }
    }
    return k;
}

static void handle_give(struct kube_http *h, struct handle *k)
{
    pthread_mutex_lock(&h->mu);
    if (h->n_idle < IDLE_MAX) {
        h->idle[h->n_idle++] = k;
        k = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    handle_free(k);
}

/* The failure of a transfer as the caller's error and message. */
static enum fmw_err failure(struct kube_http *h, struct handle *k, CURLcode rc,
                            const struct exchange *x, long timeout_ms, struct fmw_diag *d)
{
    const char *why = k->errbuf[0] ? k->errbuf : curl_easy_strerror(rc);
    if (x->too_big)
        return fmw_diag_set(d, FMW_ETOOBIG, "the API server's answer is too large (over %zu bytes)",
                            x->body->max);
    if (x->refused[0])
        return fmw_diag_set(d, FMW_EIO, "the API server's answer was refused: %s", x->refused);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        /* A local port is known once the TCP connection is up; the handshake time once TLS
         * is (libcurl records its connect time only when both are done). */
        long connected = 0;
        curl_off_t handshaken = 0;
        curl_easy_getinfo(k->easy, CURLINFO_LOCAL_PORT, &connected);
        curl_easy_getinfo(k->easy, CURLINFO_APPCONNECT_TIME_T, &handshaken);
        const char *step = !connected              ? "no connection to the API server"
                           : h->tls && !handshaken ? "no TLS handshake with the API server"
                                                   : "the API server did not answer";
        return fmw_diag_set(d, FMW_ETIMEDOUT, "%s within %ld ms", step, timeout_ms);
    }
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        return fmw_diag_set(d, FMW_EIO, "cannot look up the API server's name: %s", why);
    case CURLE_COULDNT_CONNECT: {
        long os_errno = 0;
        curl_easy_getinfo(k->easy, CURLINFO_OS_ERRNO, &os_errno);
        return fmw_diag_set(d, FMW_EIO, "cannot connect to the API server at %s: %s", h->authority,
                            os_errno ? strerror((int)os_errno) : why);
    }
    case CURLE_PEER_FAILED_VERIFICATION:
        return fmw_diag_set(d, FMW_EIO,
                            "TLS handshake with the API server failed, its certificate "
                            "was refused: %s",
                            why);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        return fmw_diag_set(d, FMW_EIO, "TLS handshake with the API server failed: %s", why);
    default:
        return fmw_diag_set(d, FMW_EIO, "reading the API server's answer failed: %s", why);
    }
}

enum fmw_err kube_http_get(struct kube_http *h, const char *path, const char *token,
                           uint64_t deadline, long *status, struct fmw_buf *body,
                           struct fmw_diag *d)
{
    uint64_t now = fmw_now_ns();
    long timeout_ms = deadline > now ? (long)((deadline - now + 999999u) / 1000000u) : 0;
    if (timeout_ms <= 0)
        return fmw_diag_set(d, FMW_ETIMEDOUT, "no time left to ask the API server");
    struct fmw_buf url, auth;
    fmw_buf_init(&url, 64 * 1024);
    fmw_buf_init(&auth, 80 * 1024);
    enum fmw_err err = fmw_buf_addf(&url, "%s%s", h->base, path);
    if (!err && token)
        err = fmw_buf_addf(&auth, "Authorization: Bearer %s", token);
    struct curl_slist *headers = NULL, *more;
    if (!err && !(headers = curl_slist_append(NULL, "Accept: application/json")))
        err = FMW_ENOMEM;
    if (!err && token) {
        if ((more = curl_slist_append(headers, fmw_buf_cstr(&auth))) != NULL)
            headers = more;
        else
            err = FMW_ENOMEM;
    }
    struct handle *k = err ? NULL : handle_take(h);
    if (!err && !k)
        err = FMW_ENOMEM;
    if (err) {
        curl_slist_free_all(headers);
        fmw_buf_free(&url);
        fmw_buf_free(&auth);
        return fmw_diag_set(d, err, "cannot make the request: %s", fmw_strerror(err));
    }
    struct exchange x = {.body = body};
    CURL *e = k->easy;
    k->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, fmw_buf_cstr(&url));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    if (rc == CURLE_OK) {
        long version = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
        curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
        atomic_store(&h->protocol, version == CURL_HTTP_VERSION_2_0   ? "HTTP/2"
                                   : version == CURL_HTTP_VERSION_1_1 ? "HTTP/1.1"
                                                                      : "HTTP/1.0");
        err = FMW_OK;
    } else {
        err = failure(h, k, rc, &x, timeout_ms, d);
    }
    ERR_clear_error(); /* OpenSSL's queue is per thread: leave nothing for the next user */
    handle_give(h, k);
    curl_slist_free_all(headers);
    fmw_buf_free(&url);
    fmw_buf_free(&auth);
    return err;
}
