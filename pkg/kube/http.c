/*
 * The HTTP/1.1 client under pkg/kube: one GET at a time per connection, over TLS (or plain HTTP,
 * for a local proxy), with a deadline on every step: name lookup, connect, handshake, write and
 * read. Idle keep-alive connections are pooled; a request on a pooled connection that the server
 * closed meanwhile is retried once on a new one (GET is idempotent).
 *
 * It speaks only what the API server's answers to a GET need: a status line, headers, and a
 * body framed by Content-Length, chunked transfer coding, or the end of the connection.
 * Everything blocks the calling thread; the caller's deadline bounds how long.
 */
#include "pkg/kube/kube_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define POOL_MAX    8
#define IDLE_MAX_NS (60ull * 1000000000ull) /* below the API server's own idle timeout */
#define HEAD_MAX    (64u * 1024u)           /* status line and headers */
#define READ_CHUNK  (16u * 1024u)
#define MAX_INTERIM 8 /* 1xx heads before the answer */

struct kconn {
    int fd;
    SSL *ssl; /* NULL for plain HTTP */
    uint64_t idle_since_ns;
    struct kconn *next;
    char why[160]; /* what ended the last failed read or write, for the message */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the endpoint ---- */

static bool is_ip_literal(const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

enum fmw_err kube_endpoint_parse(const char *url, struct kube_endpoint *ep, struct fmw_diag *d)
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
    ep->host_is_ip = is_ip_literal(ep->host);
    return FMW_OK;
}

void kube_endpoint_cleanup(struct kube_endpoint *ep)
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

enum fmw_err kube_tls_context(const struct fmw_buf *ca, const struct fmw_buf *cert,
                              const struct fmw_buf *key, bool insecure, SSL_CTX **out,
                              struct fmw_diag *d)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    enum fmw_err err = FMW_OK;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return fmw_diag_set(d, FMW_ENOMEM, "cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A server closing without close_notify ends the stream (as most clients take it); a body
     * framed by a length or chunks that ends early is still noticed. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        /* Without a CA of its own the system's are used: loaded at the first connection
         * (kube_http_init notes it), since reading the whole bundle takes ~20 ms. */
        if (ca->len)
            err = add_ca_pem(ctx, ca, d);
    }
    if (!err && (cert->len || key->len)) {
        if (!cert->len || !key->len)
            err = fmw_diag_set(d, FMW_EINVAL,
                               "a client certificate needs its key, and a key "
                               "its certificate");
        else
            err = use_client_pair(ctx, cert, key, d);
    }
    if (err) {
        SSL_CTX_free(ctx);
        return err;
    }
    *out = ctx;
    return FMW_OK;
}

/* ---- waiting ---- */

/* Waits until `fd` is ready for `events`, at most until `deadline`. */
static enum fmw_err wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline)
            return FMW_ETIMEDOUT;
        uint64_t left_ms = (deadline - now + 999999u) / 1000000u;
        struct pollfd p = {fd, events, 0};
        int rc = poll(&p, 1, left_ms > 60000 ? 60000 : (int)left_ms);
        if (rc > 0)
            return FMW_OK; /* errors and hang-ups show in the next read or write */
        if (rc < 0 && errno != EINTR)
            return FMW_EIO;
    }
}

/* After an SSL call returned `rc`: wait for what it wants and return FMW_OK to retry, or the
 * failure. `*closed` is set for a clean end of the connection. */
static enum fmw_err ssl_wait(struct kconn *k, int rc, uint64_t deadline, bool *closed)
{
    int saved_errno = errno;
    switch (SSL_get_error(k->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return wait_fd(k->fd, POLLIN, deadline);
    case SSL_ERROR_WANT_WRITE:
        return wait_fd(k->fd, POLLOUT, deadline);
    case SSL_ERROR_ZERO_RETURN:
        *closed = true;
        return FMW_EIO;
    case SSL_ERROR_SYSCALL:
        snprintf(k->why, sizeof k->why, "%s",
                 saved_errno ? strerror(saved_errno) : "connection closed");
        ERR_clear_error();
        return FMW_EIO;
    default:
        ssl_reason(k->why, sizeof k->why, "TLS error");
        return FMW_EIO;
    }
}

/* ---- connections ---- */

static void kconn_close(struct kconn *k)
{
    if (!k)
        return;
    SSL_free(k->ssl); /* no close_notify: the server's idle timeout or our error ends it */
    if (k->fd >= 0)
        close(k->fd);
    free(k);
}

/* Name lookup bounded by the deadline: getaddrinfo_a runs it on glibc's helper thread. A lookup
 * that cannot be cancelled in time is left to finish; its request block is freed later. */
struct lookup {
    struct gaicb cb;
    struct addrinfo hints;
    char name[256], service[8]; /* the lookup's own copies: it may outlive the endpoint */
    struct lookup *next;
};
static pthread_mutex_t g_orphans_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lookup *g_orphans;

static void reap_orphans(void)
{
    pthread_mutex_lock(&g_orphans_mu);
    for (struct lookup **pp = &g_orphans; *pp;) {
        struct lookup *l = *pp;
        if (gai_error(&l->cb) != EAI_INPROGRESS) {
            *pp = l->next;
            if (l->cb.ar_result)
                freeaddrinfo(l->cb.ar_result);
            free(l);
        } else {
            pp = &l->next;
        }
    }
    pthread_mutex_unlock(&g_orphans_mu);
}

static enum fmw_err resolve(const struct kube_endpoint *ep, uint64_t deadline,
                            struct addrinfo **out, struct fmw_diag *d)
{
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (ep->host_is_ip) {
        hints.ai_flags |= AI_NUMERICHOST;
        int rc = getaddrinfo(ep->host, ep->port, &hints, out);
        return rc == 0 ? FMW_OK : fmw_diag_set(d, FMW_EIO, "%s: %s", ep->host, gai_strerror(rc));
    }
    reap_orphans();
    struct lookup *l = calloc(1, sizeof *l);
    if (!l)
        return FMW_ENOMEM;
    l->hints = hints;
    snprintf(l->name, sizeof l->name, "%s", ep->host);
    snprintf(l->service, sizeof l->service, "%s", ep->port);
    l->cb.ar_name = l->name;
    l->cb.ar_service = l->service;
    l->cb.ar_request = &l->hints;
    struct gaicb *list[1] = {&l->cb};
    if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) {
        free(l);
        return fmw_diag_set(d, FMW_EIO, "%s: cannot start the name lookup", ep->host);
    }
    int rc;
    while ((rc = gai_error(&l->cb)) == EAI_INPROGRESS) {
        uint64_t now = now_ns();
        if (now >= deadline)
            break;
        uint64_t left = deadline - now;
        struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
        const struct gaicb *wait[1] = {&l->cb};
        gai_suspend(wait, 1, &ts);
    }
    if (rc == EAI_INPROGRESS && gai_cancel(&l->cb) != EAI_CANCELED) {
        /* Still running on glibc's thread, which writes into `l`: keep it until it is done. */
        pthread_mutex_lock(&g_orphans_mu);
        l->next = g_orphans;
        g_orphans = l;
        pthread_mutex_unlock(&g_orphans_mu);
        return fmw_diag_set(d, FMW_ETIMEDOUT, "looking up %s took too long", ep->host);
    }
    if (rc == EAI_INPROGRESS || rc == EAI_CANCELED) {
        if (l->cb.ar_result)
            freeaddrinfo(l->cb.ar_result);
        free(l);
        return fmw_diag_set(d, FMW_ETIMEDOUT, "looking up %s took too long", ep->host);
    }
    *out = l->cb.ar_result;
    free(l);
    if (rc != 0)
        return fmw_diag_set(d, FMW_EIO, "%s: %s", ep->host, gai_strerror(rc));
    return FMW_OK;
}

static enum fmw_err connect_one(const struct addrinfo *ai, uint64_t deadline, int *out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return FMW_EIO;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    enum fmw_err err = FMW_OK;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            err = FMW_EIO;
        } else {
            err = wait_fd(fd, POLLOUT, deadline);
            int so_error = 0;
            socklen_t len = sizeof so_error;
            if (!err && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 || so_error)) {
                errno = so_error ? so_error : errno;
                err = FMW_EIO;
            }
        }
    }
    if (err) {
        int saved = errno;
        close(fd);
        errno = saved;
        return err;
    }
    *out = fd;
    return FMW_OK;
}

/* The system's CAs, once, for a client configured without its own. */
static enum fmw_err load_system_cas(struct kube_http *h, struct fmw_diag *d)
{
    enum fmw_err err = FMW_OK;
    pthread_mutex_lock(&h->ca_mu); /* not the pool's: this takes ~20 ms */
    if (atomic_load(&h->system_cas_pending)) {
        SSL_CTX_set_default_verify_paths(h->ctx);
        ERR_clear_error();
        /* It succeeds without any bundle: whether one was found shows in the store. */
        STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(h->ctx));
        if (sk_X509_OBJECT_num(objs) > 0)
            atomic_store(&h->system_cas_pending, false);
        else
            err = fmw_diag_set(d, FMW_EIO, "no certificate authority given and none installed");
    }
    pthread_mutex_unlock(&h->ca_mu);
    return err;
}

static enum fmw_err handshake(struct kube_http *h, struct kconn *k, uint64_t deadline,
                              struct fmw_diag *d)
{
    char why[256];
    if (atomic_load(&h->system_cas_pending)) {
        enum fmw_err err = load_system_cas(h, d);
        if (err)
            return err;
    }
    k->ssl = SSL_new(h->ctx);
    if (!k->ssl || SSL_set_fd(k->ssl, k->fd) != 1)
        return fmw_diag_set(d, FMW_ENOMEM, "cannot create a TLS connection");
    const struct kube_endpoint *ep = &h->ep;
    if (!ep->host_is_ip)
        SSL_set_tlsext_host_name(k->ssl, ep->host);
    if (!h->insecure) {
        X509_VERIFY_PARAM *param = SSL_get0_param(k->ssl);
        int ok = ep->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, ep->host)
                                : X509_VERIFY_PARAM_set1_host(param, ep->host, 0);
        if (ok != 1)
            return fmw_diag_set(d, FMW_EINVAL, "cannot verify the name %s", ep->host);
    }
    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(k->ssl);
        if (rc == 1)
            return FMW_OK;
        bool closed = false;
        enum fmw_err err = ssl_wait(k, rc, deadline, &closed);
        if (err == FMW_ETIMEDOUT)
            return fmw_diag_set(d, err, "TLS handshake with %s did not finish in time",
                                ep->authority);
        if (err) {
            long verify = SSL_get_verify_result(k->ssl);
            if (verify != X509_V_OK)
                return fmw_diag_set(d, FMW_EIO, "TLS handshake with %s failed: %s", ep->authority,
                                    X509_verify_cert_error_string(verify));
            return fmw_diag_set(d, FMW_EIO, "TLS handshake with %s failed: %s", ep->authority,
                                k->why[0] ? k->why
                                          : ssl_reason(why, sizeof why, "connection closed"));
        }
    }
}

static enum fmw_err dial(struct kube_http *h, uint64_t deadline, struct kconn **out,
                         struct fmw_diag *d)
{
    struct addrinfo *list = NULL;
    enum fmw_err err = resolve(&h->ep, deadline, &list, d);
    if (err)
        return err;
    int fd = -1, last_errno = 0;
    unsigned left = 0;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next)
        left++;
    err = FMW_EIO;
    /* Each address gets an equal share of the time left (the last one all of it), so one that
     * drops SYNs (an AAAA record where IPv6 goes nowhere) does not starve the others. */
    for (const struct addrinfo *ai = list; ai && err; ai = ai->ai_next, left--) {
        uint64_t now = now_ns();
        uint64_t until = now >= deadline ? deadline : now + (deadline - now) / left;
        err = connect_one(ai, until, &fd);
        if (err == FMW_ETIMEDOUT && now_ns() >= deadline)
            break;
        if (err)
            last_errno = err == FMW_ETIMEDOUT ? ETIMEDOUT : errno;
    }
    freeaddrinfo(list);
    if (err == FMW_ETIMEDOUT)
        return fmw_diag_set(d, err, "connecting to %s took too long", h->ep.authority);
    if (err)
        return fmw_diag_set(d, err, "cannot connect to %s: %s", h->ep.authority,
                            strerror(last_errno ? last_errno : ECONNREFUSED));
    struct kconn *k = calloc(1, sizeof *k);
    if (!k) {
        close(fd);
        return FMW_ENOMEM;
    }
    k->fd = fd;
    if (h->ep.tls) {
        err = handshake(h, k, deadline, d);
        if (err) {
            kconn_close(k);
            return err;
        }
    }
    *out = k;
    return FMW_OK;
}

/* An idle connection still worth using: young enough, and nothing to read (a readable idle
 * connection was closed by the server, or holds bytes nobody asked for). */
static bool still_usable(const struct kconn *k, uint64_t now)
{
    if (now > k->idle_since_ns && now - k->idle_since_ns > IDLE_MAX_NS)
        return false;
    struct pollfd p = {k->fd, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}

static struct kconn *take_idle(struct kube_http *h)
{
    for (;;) {
        pthread_mutex_lock(&h->mu);
        struct kconn *k = h->idle;
        if (k) {
            h->idle = k->next;
            h->n_idle--;
        }
        pthread_mutex_unlock(&h->mu);
        if (!k || still_usable(k, now_ns()))
            return k;
        kconn_close(k);
    }
}

static void give_idle(struct kube_http *h, struct kconn *k)
{
    k->idle_since_ns = now_ns();
    pthread_mutex_lock(&h->mu);
    if (h->n_idle < POOL_MAX) {
        k->next = h->idle;
        h->idle = k;
        h->n_idle++;
        k = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    kconn_close(k);
}

/* ---- I/O ---- */

static enum fmw_err write_all(struct kconn *k, const char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        if (k->ssl) {
            ERR_clear_error();
            int rc = SSL_write(k->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            if (rc > 0) {
                p += rc;
                n -= (size_t)rc;
                continue;
            }
            bool closed = false;
            enum fmw_err err = ssl_wait(k, rc, deadline, &closed);
            if (err)
                return err;
        } else {
            ssize_t rc = send(k->fd, p, n, MSG_NOSIGNAL);
            if (rc > 0) {
                p += rc;
                n -= (size_t)rc;
            } else if (rc < 0 && (errno == EAGAIN || errno == EINTR)) {
                enum fmw_err err = wait_fd(k->fd, POLLOUT, deadline);
                if (err)
                    return err;
            } else {
                snprintf(k->why, sizeof k->why, "%s", strerror(errno));
                return FMW_EIO;
            }
        }
    }
    return FMW_OK;
}

/* Reads what is there (at least one byte): *got bytes, 0 at the end of the connection. */
static enum fmw_err read_some(struct kconn *k, char *buf, size_t cap, uint64_t deadline,
                              size_t *got)
{
    for (;;) {
        /* Checked before every read, not only when one would block: a server that never
         * stops sending must not hold the caller past its deadline either. */
        if (now_ns() >= deadline)
            return FMW_ETIMEDOUT;
        if (k->ssl) {
            ERR_clear_error();
            int rc = SSL_read(k->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
            if (rc > 0) {
                *got = (size_t)rc;
                return FMW_OK;
            }
            bool closed = false;
            enum fmw_err err = ssl_wait(k, rc, deadline, &closed);
            if (closed) {
                *got = 0;
                return FMW_OK;
            }
            if (err)
                return err;
        } else {
            ssize_t rc = recv(k->fd, buf, cap, 0);
            if (rc >= 0) {
                *got = (size_t)rc;
                return FMW_OK;
            }
            if (errno != EAGAIN && errno != EINTR) {
                snprintf(k->why, sizeof k->why, "%s", strerror(errno));
                return FMW_EIO;
            }
            enum fmw_err err = wait_fd(k->fd, POLLIN, deadline);
            if (err)
                return err;
        }
    }
}

/* ---- responses ---- */

enum body_framing { FRAME_LENGTH, FRAME_CHUNKED, FRAME_CLOSE, FRAME_NONE };

struct response {
    int status;
    enum body_framing framing;
    uint64_t length;
    bool keep_alive;
};

/* Parses a response head (status line and headers, CRLF-terminated lines; bare LF taken too).
 * FMW_EIO for what no HTTP/1.1 server sends. */
static enum fmw_err parse_head(const char *head, size_t len, struct response *r)
{
    memset(r, 0, sizeof *r);
    if (len < 12 || memcmp(head, "HTTP/1.", 7) != 0 || (head[7] != '0' && head[7] != '1') ||
        head[8] != ' ')
        return FMW_EIO;
    bool http11 = head[7] == '1';
    for (int i = 9; i < 12; i++) {
        if (head[i] < '0' || head[i] > '9')
            return FMW_EIO;
        r->status = r->status * 10 + (head[i] - '0');
    }
    if (r->status < 100 || (len > 12 && head[12] != ' ' && head[12] != '\r' && head[12] != '\n'))
        return FMW_EIO;
    r->keep_alive = http11;
    bool have_length = false, chunked = false;
    const char *p = memchr(head, '\n', len);
    const char *end = head + len;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        size_t n = (size_t)(eol - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        const char *colon = memchr(p, ':', n);
        if (!colon || colon == p)
            return FMW_EIO;
        size_t name_len = (size_t)(colon - p);
        const char *v = colon + 1;
        size_t vlen = n - name_len - 1;
        while (vlen && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (name_len == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
            uint64_t value = 0;
            if (vlen == 0 || vlen > 18)
                return FMW_EIO;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return FMW_EIO;
                value = value * 10 + (uint64_t)(v[i] - '0');
            }
            if (have_length && value != r->length)
                return FMW_EIO; /* two different lengths: no framing to trust */
            have_length = true;
            r->length = value;
        } else if (name_len == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            /* Chunked alone: we decode no other coding, and the API server applies none. */
            if (chunked || vlen != 7 || strncasecmp(v, "chunked", 7) != 0)
                return FMW_EIO;
            chunked = true;
        } else if (name_len == 10 && strncasecmp(p, "Connection", 10) == 0) {
            if (fmw_http_list_has(v, vlen, "close"))
                r->keep_alive = false;
            else if (fmw_http_list_has(v, vlen, "keep-alive"))
                r->keep_alive = true;
        }
        p = eol;
    }
    if (chunked && have_length)
        r->keep_alive = false; /* chunked wins (RFC 9112 6.3), but such a sender is not trusted */
    if (r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200))
        r->framing = FRAME_NONE;
    else if (chunked)
        r->framing = FRAME_CHUNKED;
    else if (have_length)
        r->framing = FRAME_LENGTH;
    else {
        r->framing = FRAME_CLOSE;
        r->keep_alive = false;
    }
    return FMW_OK;
}

/* Reads one response. *started tells whether any byte of it arrived (a pooled connection the
 * server had closed sends none, and the request may then be retried). */
static enum fmw_err read_response(struct kconn *k, uint64_t deadline, long *status,
                                  struct fmw_buf *body, bool *keep, bool *started)
{
    char *buf = malloc(READ_CHUNK);
    struct fmw_buf head;
    fmw_buf_init(&head, HEAD_MAX + READ_CHUNK);
    struct fmw_chunked ch;
    memset(&ch, 0, sizeof ch);
    struct response r = {0};
    enum fmw_err err = FMW_OK;
    *keep = false;
    *started = false;
    if (!buf)
        return FMW_ENOMEM;

    /* The head: up to the empty line. A few 1xx heads are skipped; a server sending them
     * without end is cut off. The search resumes where a terminator could still start. */
    size_t head_end = 0, searched = 0;
    int interim = 0;
    for (;;) {
        size_t from = searched > 3 ? searched - 3 : 0;
        char *end =
            head.len > from ? memmem(head.data + from, head.len - from, "\r\n\r\n", 4) : NULL;
        char *lf_end =
            head.len > from ? memmem(head.data + from, head.len - from, "\n\n", 2) : NULL;
        searched = head.len;
        if (lf_end && (!end || lf_end < end))
            head_end = (size_t)(lf_end - head.data) + 2;
        else if (end)
            head_end = (size_t)(end - head.data) + 4;
        else
            head_end = 0;
        if (head_end > HEAD_MAX || (!head_end && head.len > HEAD_MAX)) {
            err = FMW_EIO;
            goto out;
        }
        if (head_end) {
            err = parse_head(head.data, head_end, &r);
            if (err)
                goto out;
            if (r.status >= 200 || r.status == 101)
                break;
            /* An interim answer: drop it and read on. */
            if (++interim > MAX_INTERIM) {
                err = FMW_EIO;
                goto out;
            }
            size_t rest = head.len - head_end;
            memmove(head.data, head.data + head_end, rest);
            head.len = rest;
            head.data[rest] = '\0';
            searched = 0;
            continue;
        }
        size_t got = 0;
        err = read_some(k, buf, READ_CHUNK, deadline, &got);
        if (err)
            goto out;
        if (got == 0) {
            err = FMW_EIO;
            goto out;
        }
        *started = true;
        if (fmw_buf_add(&head, buf, got) != FMW_OK) {
            err = FMW_EIO;
            goto out;
        }
    }
    if (r.status == 101) {
        err = FMW_EIO;
        goto out;
    }
    *status = r.status;

    /* The body: what came with the head, then more. */
    const char *extra = head.data + head_end;
    size_t extra_len = head.len - head_end;
    uint64_t want = r.framing == FRAME_LENGTH ? r.length : 0;
    for (;;) {
        if (r.framing == FRAME_NONE) {
            break;
        } else if (r.framing == FRAME_LENGTH) {
            size_t take = extra_len < want ? extra_len : (size_t)want;
            if (take && fmw_buf_add(body, extra, take) != FMW_OK) {
                err = FMW_ETOOBIG;
                goto out;
            }
            want -= take;
            extra_len -= take;
            if (want == 0)
                break;
        } else if (r.framing == FRAME_CHUNKED) {
            size_t used = 0;
            err = fmw_chunked_feed(&ch, extra, extra_len, body, &used);
            if (err) {
                err = err == FMW_ETOOBIG ? FMW_ETOOBIG : FMW_EIO;
                goto out;
            }
            extra_len -= used;
            if (ch.state == FMW_CH_DONE)
                break;
        } else if (extra_len && fmw_buf_add(body, extra, extra_len) != FMW_OK) {
            err = FMW_ETOOBIG;
            goto out;
        }
        size_t got = 0;
        err = read_some(k, buf, READ_CHUNK, deadline, &got);
        if (err)
            goto out;
        if (got == 0) {
            if (r.framing != FRAME_CLOSE)
                err = FMW_EIO; /* cut short */
            break;
        }
        extra = buf;
        extra_len = got;
    }
    /* Bytes past the answer would be read as the next one: such a connection is not reused. */
    *keep = r.keep_alive && r.framing != FRAME_CLOSE && extra_len == 0 &&
            (!k->ssl || SSL_pending(k->ssl) == 0);
out:
    free(buf);
    fmw_buf_free(&head);
    return err;
}

enum fmw_err kube_http_read_fd(int fd, uint64_t deadline, long *status, struct fmw_buf *body,
                               bool *keep)
{
    struct kconn k = {.fd = fd};
    bool started = false;
    return read_response(&k, deadline, status, body, keep, &started);
}

/* ---- the request ---- */

enum fmw_err kube_http_init(struct kube_http *h, const char *server, SSL_CTX *ctx, bool insecure,
                            struct fmw_diag *d)
{
    memset(h, 0, sizeof *h);
    enum fmw_err err = kube_endpoint_parse(server, &h->ep, d);
    if (err)
        return err;
    h->ctx = ctx;
    h->insecure = insecure;
    if (ctx && !insecure) {
        STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
        atomic_init(&h->system_cas_pending, sk_X509_OBJECT_num(objs) == 0);
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->ca_mu, NULL);
    return FMW_OK;
}

void kube_http_cleanup(struct kube_http *h)
{
    while (h->idle) {
        struct kconn *next = h->idle->next;
        kconn_close(h->idle);
        h->idle = next;
    }
    kube_endpoint_cleanup(&h->ep);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->ca_mu);
    SSL_CTX_free(h->ctx);
    h->ctx = NULL;
}

/* SIGPIPE stays away from this thread while it writes: the server ignores it process-wide, but
 * a program using this client need not. A SIGPIPE this call raised is consumed. */
struct sigpipe_guard {
    sigset_t old;
    bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

enum fmw_err kube_http_get(struct kube_http *h, const char *path, const char *token,
                           uint64_t deadline, long *status, struct fmw_buf *body,
                           struct fmw_diag *d)
{
    struct fmw_buf req;
    fmw_buf_init(&req, 128 * 1024);
    enum fmw_err err = fmw_buf_addf(&req,
                                    "GET %s%s HTTP/1.1\r\nHost: %s\r\n"
                                    "User-Agent: flink-memory-webhook/" FMW_VERSION "\r\n"
                                    "Accept: application/json\r\n",
                                    h->ep.base_path, path, h->ep.authority);
    if (!err && token)
        err = fmw_buf_addf(&req, "Authorization: Bearer %s\r\n", token);
    if (!err)
        err = fmw_buf_adds(&req, "\r\n");
    if (err) {
        fmw_buf_free(&req);
        return fmw_diag_set(d, err, "request too large");
    }

    struct sigpipe_guard guard;
    sigpipe_block(&guard);
    size_t body_start = body->len;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct kconn *k = attempt == 0 ? take_idle(h) : NULL;
        bool reused = k != NULL;
        if (!k) {
            err = dial(h, deadline, &k, d);
            if (err)
                break;
        }
        bool keep = false, started = false;
        err = write_all(k, req.data, req.len, deadline);
        if (!err)
            err = read_response(k, deadline, status, body, &keep, &started);
        if (!err && keep) {
            give_idle(h, k);
            break;
        }
        char why[sizeof k->why];
        snprintf(why, sizeof why, "%s",
                 k->why[0] ? k->why
                 : started ? "malformed or cut short"
                           : "connection closed");
        kconn_close(k);
        if (!err)
            break;
        /* A pooled connection the server closed meanwhile: once more on a fresh one. */
        if (reused && !started && err == FMW_EIO && now_ns() < deadline) {
            body->len = body_start;
            if (body->data)
                body->data[body_start] = '\0';
            continue;
        }
        if (err == FMW_ETIMEDOUT)
            err = fmw_diag_set(d, err, "the API server did not answer in time");
        else if (err == FMW_ETOOBIG)
            err = fmw_diag_set(d, err, "the API server's answer is too large");
        else if (err == FMW_EIO)
            err = fmw_diag_set(d, err, "reading the API server's answer failed: %s", why);
        break;
    }
    sigpipe_restore(&guard);
    ERR_clear_error();
    fmw_buf_free(&req);
    return err;
}
