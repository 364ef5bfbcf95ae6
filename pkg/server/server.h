/*
 * pkg/server: the webhook's HTTPS server. TLS 1.2+ (or 1.3 only), ALPN http/1.1, HTTP/1.1
 * keep-alive; exact-path routing that ignores the query string (the API server calls
 * /mutate?timeout=10s); POST + application/json for handler routes; a body cap, a deadline from
 * the first byte of a request to its last, an idle timeout and a connection cap; certificate hot
 * reload; /healthz, /readyz, /metrics; a SIGTERM drain.
 *
 * Threads: fmw_server_run() runs the event loop on the calling thread, which does all network I/O
 * and TLS. Handlers run on a small pool of worker threads, so a slow handler (a ConfigMap lookup
 * on a cache miss) never stalls other connections; their responses go back to the loop thread to
 * be written. A route may ask to be tried on the loop thread first, where a handler that would
 * have to wait says so and is handed to a worker instead. The engine underneath (libevent's loop,
 * OpenSSL, our own HTTP/1.1 parser) is not visible in this header.
 */
#ifndef FMW_SERVER_H
#define FMW_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pkg/base/base.h"
#include "pkg/obs/obs.h"

/* What a handler gets. Everything is borrowed and valid only during the handler call. */
struct fmw_server_request {
    struct fmw_str path;  /* the route's path, without the query string */
    struct fmw_str query; /* the raw query string after '?', "" when none */
    struct fmw_str body;  /* the whole body, contiguous; ptr is NUL-terminated for convenience */
    const char *remote;   /* peer IP address, for logs */
    uint64_t id;          /* request number in this process, for logs */
    /* CLOCK_MONOTONIC nanoseconds: when the request was fully read, and by when the response
     * should be ready (the server's handler timeout, shortened by a ?timeout=Ns the API server
     * sends). A handler bounds its own slow work (lookups) by `deadline_ns`. */
    uint64_t received_ns;
    uint64_t deadline_ns;
    /* False when the handler runs on the event-loop thread (see `inline_first`): it must then
     * not wait for anything (I/O, locks held across I/O) and returns FMW_EAGAIN instead, with
     * nothing done that shows outside (no log line, no metric), to be called again on a worker
     * with `may_block` true. */
    bool may_block;
};

/*
 * What a handler fills in. The server presets status 200, content type "application/json" and an
 * empty body whose cap is the configured response cap. `content_type` must point at storage that
 * outlives the response (a string literal).
 */
struct fmw_server_response {
    int status;
    const char *content_type;
    struct fmw_buf body;
};

/*
 * A route handler. Runs on a worker thread, or first on the loop thread for an `inline_first`
 * route, possibly concurrently with itself: `ctx` must be thread-safe. FMW_OK sends the
 * response as filled in (a status of 200 to 599); any other code sends a 500 with a generic
 * JSON error (the body is discarded) and logs the code. A request whose deadline passed while it
 * waited for a worker is answered 503 {"error":"overloaded"} without calling the handler.
 */
typedef enum fmw_err fmw_server_handler_fn(void *ctx, const struct fmw_server_request *req,
                                           struct fmw_server_response *resp);

/*
 * A handler route: exact `path` ("/mutate"), POST only, Content-Type application/json only.
 * `inline_first`: a request whose body is at most the server's inline_max_body is first handled
 * on the loop thread with `may_block` false, and goes to a worker only when the handler answers
 * FMW_EAGAIN. That spares the two thread hand-offs (four context switches when the threads
 * share a core) that otherwise cost more than a small handler itself.
 */
struct fmw_server_route {
    const char *path;
    fmw_server_handler_fn *fn;
    void *ctx;
    bool inline_first;
};

/* Configuration. Start from fmw_server_config_defaults() and set what differs. Strings are
 * copied by fmw_server_new(). */
struct fmw_server_config {
    const char *tls_host; /* bind address of the TLS listener; default "0.0.0.0" */
    int tls_port;         /* default 8443; 0 picks a free port (see fmw_server_tls_port()) */
    /* A plain-HTTP listener serving only /healthz, /readyz and /metrics (never handler routes),
     * for probes and scrapes that should not depend on the certificate. -1 (default) disables.
     * It has the idle timeout and the request deadline but not the connection cap of the TLS
     * listener: bind it to an address only the kubelet and Prometheus reach. */
    const char *plain_host; /* default "0.0.0.0" */
    int plain_port;

    const char *cert_file; /* PEM certificate chain, leaf first; required */
    const char *key_file;  /* PEM private key; required */
    const char
        *client_ca_file; /* PEM CAs; when set, clients must present a certificate they sign */
    bool tls13_only;     /* refuse TLS 1.2 too */

    const struct fmw_server_route *routes; /* copied; ctx pointers are borrowed */
    size_t n_routes;

    unsigned workers;            /* handler threads; default 2 */
    unsigned max_connections;    /* open connections; past it the listener pauses; default 256 */
    size_t max_body;             /* request body cap (413); default 7 MiB */
    size_t max_bodies;           /* request buffers past SRV_BODY_FREE (64 KiB), all
                                    connections together, charged as they grow with what was
                                    received; past it the request is answered 503; default
                                    24 MiB */
    size_t max_headers;          /* request line + headers cap (400); default 16 KiB */
    size_t max_response;         /* response body cap for handlers; default 7 MiB */
    size_t inline_max_body;      /* largest body an inline_first route handles on the loop
                                    thread (the loop serves no other connection meanwhile);
                                    default 256 KiB; 0: always on a worker */
    unsigned request_timeout_ms; /* first byte (or accept, with the handshake) to the full
                                    request; past it the connection is closed; default 10000 */
    unsigned idle_timeout_ms;    /* keep-alive idle time and write stall limit; default 120000 */
    unsigned handler_timeout_ms; /* deadline handed to handlers; default 10000 */
    unsigned reload_interval_ms; /* periodic certificate check besides inotify; default 60000;
                                    0 disables the periodic check */
    unsigned drain_delay_ms;     /* after shutdown starts: time serving normally with /readyz
                                    failing, before connections are closed; default 5000 */
    unsigned grace_ms;           /* after shutdown starts: hard limit to finish; default 25000 */

    /* Where the server registers its metrics and which /metrics renders. Borrowed; must outlive
     * the server. NULL: the server makes its own. Names, all prefixed flink_memory_webhook_:
     * http_requests_total{route,code} (route is the configured path, a built-in one, or
     * "unmatched"), http_request_duration_seconds{route} (complete request to response queued),
     * http_requests_in_flight, http_connections, http_connections_accepted_total,
     * http_request_deadline_closes_total, worker_queue_depth, tls_handshake_errors_total,
     * cert_reloads_total{result="success"|"failure"}, cert_not_after_timestamp_seconds, ready.
     * Requests refused before routing (400 malformed, 413 too large, 417, 501, 505) count under
     * route "unmatched". */
    struct fmw_obs_registry *metrics;
};

struct fmw_server;

/* Fills `cfg` with the defaults above (no certificate, no routes). */
void fmw_server_config_defaults(struct fmw_server_config *cfg);

/*
 * Creates a server: validates the configuration, binds the listeners (so "address in use" shows
 * here), starts the worker threads and loads the certificate. A certificate that cannot be loaded
 * is not an error: the server starts not ready, logs why, and takes the pair as soon as a valid
 * one appears (inotify and the periodic check). Ignores SIGPIPE for the process, since a peer that
 * goes away must not kill it. *out is set only on success; free it with fmw_server_free().
 * Errors: FMW_EUSAGE (bad configuration), FMW_EIO (bind, inotify, thread), FMW_ENOMEM; `diag`
 * (may be NULL) says which.
 */
FMW_NODISCARD enum fmw_err fmw_server_new(const struct fmw_server_config *cfg,
                                          struct fmw_server **out, struct fmw_diag *diag);

/* The ports the listeners are bound to (useful with port 0); the plain one is -1 when disabled. */
int fmw_server_tls_port(const struct fmw_server *srv);
int fmw_server_plain_port(const struct fmw_server *srv);

/*
 * Runs the event loop on the calling thread until a shutdown has drained: /readyz fails at once,
 * requests are served normally for drain_delay_ms, then listeners close, responses carry
 * `Connection: close`, idle keep-alive connections are closed and in-flight requests finish. It
 * returns when no connection is left, or at grace_ms. Call once.
 * Errors: FMW_ETIMEDOUT when the grace period ended with requests still open (they were dropped),
 * FMW_EIO when the loop failed.
 */
FMW_NODISCARD enum fmw_err fmw_server_run(struct fmw_server *srv);

/* Starts the drain. Async-signal-safe (meant for a SIGTERM handler) and thread-safe; repeated
 * calls do nothing more. */
void fmw_server_shutdown(struct fmw_server *srv);

/* Asks for a certificate check now (for SIGHUP). Async-signal-safe and thread-safe. */
void fmw_server_reload(struct fmw_server *srv);

/* True while a certificate is loaded and no shutdown has started (what /readyz says). */
bool fmw_server_ready(const struct fmw_server *srv);

/*
 * Stops the workers (a handler still running is waited for, so after FMW_ETIMEDOUT a process
 * that must stop now should rather exit), closes every connection and frees the server. Call
 * after fmw_server_run() returned, or instead of it. NULL is fine.
 */
void fmw_server_free(struct fmw_server *srv);

#endif
