/* Private declarations shared by the files of pkg/kube. */
#ifndef FMW_KUBE_INT_H
#define FMW_KUBE_INT_H

#include "pkg/kube/kube.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* transport.c: where the API server is, from its URL ("https://host:port/base"). */
struct kube_endpoint {
    bool tls;        /* https (else plain http, for a local proxy) */
    char *host;      /* name or address, without IPv6 brackets */
    char *port;      /* decimal; 443 or 80 when the URL has none */
    char *authority; /* host[:port] as the URL has it */
    char *base_path; /* "" or "/prefix" (no trailing slash) put before request paths */
    bool host_is_ip; /* an address literal */
};

/* FMW_EINVAL for a URL that is not http(s)://host[:port][/path]. */
enum fmw_err kube_endpoint_parse(const char *url, struct kube_endpoint *ep, struct fmw_diag *d);
void kube_endpoint_cleanup(struct kube_endpoint *ep);

/*
 * Checks the TLS material as a client would use it: at least one certificate in the PEM CAs
 * `ca` (when given), and a client certificate chain with its unencrypted key (when given).
 * FMW_EINVAL with the reason otherwise.
 */
enum fmw_err kube_tls_check(const struct fmw_buf *ca, const struct fmw_buf *cert,
                            const struct fmw_buf *key, struct fmw_diag *d);

/* GETs to one API server through libcurl. */
struct kube_http;

/*
 * A transport to `server` (checked here, as is the TLS material): peers verified against `ca`
 * (the system's when empty) unless `insecure`, with the client certificate and key when given.
 * `ca`, `cert` and `key` are borrowed and must outlive the transport.
 */
enum fmw_err kube_http_new(const char *server, const struct fmw_buf *ca, const struct fmw_buf *cert,
                           const struct fmw_buf *key, bool insecure, struct kube_http **out,
                           struct fmw_diag *d);
void kube_http_free(struct kube_http *h);
/* "HTTP/2", "HTTP/1.1" or "HTTP/1.0": what the last answer came in; "" before any. */
const char *kube_http_protocol(const struct kube_http *h);

/*
 * GET base_path + `path` with `token` as a bearer token (NULL: none), answering by the
 * CLOCK_MONOTONIC `deadline`. The status goes to *status and the body is appended to `body`.
 * FMW_ETIMEDOUT, FMW_EIO (connection, TLS, a refused answer) and FMW_ETOOBIG (past the body's
 * cap) carry their reason in `d`. Thread-safe.
 */
enum fmw_err kube_http_get(struct kube_http *h, const char *path, const char *token,
                           uint64_t deadline, long *status, struct fmw_buf *body,
                           struct fmw_diag *d);

#endif
