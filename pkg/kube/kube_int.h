/* Private declarations shared by the files of pkg/kube. */
#ifndef FMW_KUBE_INT_H
#define FMW_KUBE_INT_H

#include "pkg/http1/http1.h"
#include "pkg/kube/kube.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* http.c: where the API server is, from its URL ("https://host:port/base"). */
struct kube_endpoint {
    bool tls;        /* https (else plain http, for a local proxy) */
    char *host;      /* name or address, without IPv6 brackets */
    char *port;      /* decimal; 443 or 80 when the URL has none */
    char *authority; /* host[:port] as the URL has it: the Host header */
    char *base_path; /* "" or "/prefix" (no trailing slash) put before request paths */
    bool host_is_ip; /* an address literal: verified as an IP SAN, no SNI */
};

/* FMW_EINVAL for a URL that is not http(s)://host[:port][/path]. */
enum fmw_err kube_endpoint_parse(const char *url, struct kube_endpoint *ep, struct fmw_diag *d);
void kube_endpoint_cleanup(struct kube_endpoint *ep);

/*
 * A client TLS context: peers verified against the PEM CAs in `ca` (the system's when empty)
 * unless `insecure`, a client certificate chain and key when given. FMW_EINVAL when a PEM blob
 * holds nothing usable.
 */
enum fmw_err kube_tls_context(const struct fmw_buf *ca, const struct fmw_buf *cert,
                              const struct fmw_buf *key, bool insecure, SSL_CTX **out,
                              struct fmw_diag *d);

struct kconn;

/* HTTP/1.1 GETs to one endpoint, with a pool of idle keep-alive connections. */
struct kube_http {
    struct kube_endpoint ep;
    SSL_CTX *ctx; /* owned; NULL for plain http */
    bool insecure;
    _Atomic bool system_cas_pending; /* no CA configured: the system's load at the first dial */
    pthread_mutex_t mu;              /* the pool */
    pthread_mutex_t ca_mu;           /* the one load of the system's CAs */
    struct kconn *idle;
    size_t n_idle;
};

/* Takes ownership of `ctx` only on success. */
enum fmw_err kube_http_init(struct kube_http *h, const char *server, SSL_CTX *ctx, bool insecure,
                            struct fmw_diag *d);
void kube_http_cleanup(struct kube_http *h);

/*
 * GET base_path + `path` with `token` as a bearer token (NULL: none), answering by the
 * CLOCK_MONOTONIC `deadline`. The status goes to *status and the body is appended to `body`.
 * FMW_ETIMEDOUT, FMW_EIO (connection, TLS, a malformed answer) and FMW_ETOOBIG (past the body's
 * cap) carry their reason in `d`. Thread-safe.
 */
enum fmw_err kube_http_get(struct kube_http *h, const char *path, const char *token,
                           uint64_t deadline, long *status, struct fmw_buf *body,
                           struct fmw_diag *d);

/* Reads one response from the plain (non-blocking) socket `fd`, as a request would: for the
 * fuzzer. *keep tells whether the connection could carry another request. */
enum fmw_err kube_http_read_fd(int fd, uint64_t deadline, long *status, struct fmw_buf *body,
                               bool *keep);

#endif
