/* Private declarations shared by the files of pkg/kube. */
#ifndef FMW_KUBE_INT_H
#define FMW_KUBE_INT_H

#include "pkg/kube/kube.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

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
const char *kube_http_protocol(struct kube_http *h);

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
