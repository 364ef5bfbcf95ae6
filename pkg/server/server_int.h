/*
 * pkg/server private declarations: the server object and the pieces shared by server.c (event
 * loop, connections, routing, drain), tls.c (contexts, certificate reload) and pool.c (worker
 * threads). Only the loop thread touches libevent and OpenSSL objects; workers see jobs only.
 */
#ifndef FMW_SERVER_INT_H
#define FMW_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "pkg/server/server.h"

#define SRV_DIGEST_LEN  32 /* SHA-256 of the certificate files' content */
#define SRV_MAX_WATCHES 3  /* directories of cert, key, client CA */

/* Metric series the server updates; looked up once so the hot path only adds. */
struct srv_metrics {
    struct fmw_obs_registry *reg;
    struct fmw_obs_metric *requests;  /* counter {route,code} */
    struct fmw_obs_metric *duration;  /* histogram {route} */
    struct fmw_obs_series *in_flight; /* requests read and not yet answered */
    struct fmw_obs_series *connections;
    struct fmw_obs_series *connections_total;
    struct fmw_obs_series *deadline_closes;
    struct fmw_obs_series *queue_depth;
    struct fmw_obs_series *handshake_errors;
    struct fmw_obs_series *reload_ok;
    struct fmw_obs_series *reload_failed;
    struct fmw_obs_series *cert_not_after;
    struct fmw_obs_series *ready;
};

/* A route: a handler route from the configuration, or a built-in one (fn == NULL). */
enum srv_builtin { SRV_HANDLER, SRV_HEALTHZ, SRV_READYZ, SRV_METRICS };

struct srv_route {
    char *path;
    size_t path_len;
    enum srv_builtin builtin;
    fmw_server_handler_fn *fn;
    void *ctx;
    bool inline_first;
    struct fmw_obs_series *duration; /* this route's latency series */
};

/*
 * One TLS connection. Created when the listener accepts; freed when OpenSSL frees the SSL object
 * (the bufferevent dies with its evhttp connection) and no job refers to it any more.
 */
struct srv_conn {
    struct fmw_server *srv;
    struct bufferevent *bev;
    struct event deadline; /* request deadline timer */
    struct srv_conn *prev, *next;
    int refs;     /* the SSL object's reference, plus one per job */
    bool alive;   /* the SSL object (and so the connection) still exists */
    bool reading; /* a request (or the handshake) is under way: deadline armed */
    bool busy;    /* a request is with a handler or being answered */
};

/* A request handed to a worker, and its response on the way back. */
struct srv_job {
    struct srv_job *next;
    struct srv_conn *conn;
    struct evhttp_request *evreq;
    const struct srv_route *route;
    struct fmw_server_request req;
    struct fmw_server_response resp;
    enum fmw_err handler_err;
    char remote[64];
};

struct fmw_server {
    struct fmw_server_config cfg; /* strings below are our copies */
    struct srv_route *routes;
    size_t n_routes;
    struct srv_route builtins[3];
    struct srv_route unmatched; /* for metrics of 404s, so paths cannot grow label cardinality */

    struct event_base *base;
    struct evhttp *http;  /* TLS listener */
    struct evhttp *plain; /* optional plain listener */
    struct evhttp_bound_socket *tls_sock;
    struct evhttp_bound_socket *plain_sock;
    int tls_port;
    int plain_port;

    /* TLS state (loop thread). `ctx` is always usable: a context without a certificate until the
     * first pair loads, so handshakes simply fail then. */
    SSL_CTX *ctx;
    bool cert_loaded;
    unsigned char loaded_digest[SRV_DIGEST_LEN];
    unsigned char failed_digest[SRV_DIGEST_LEN];
    bool have_failed_digest;
    bool first_load_done;
    bool read_failed; /* the last check could not read the files */
    bool tls_inited;  /* the events below are assigned */
    int inotify_fd;
    struct event inotify_ev;
    struct event reload_timer;   /* periodic check */
    struct event debounce_timer; /* coalesces bursts of inotify events */

    /* Connections (loop thread). */
    struct srv_conn *conns;
    unsigned n_conns;
    bool listeners_paused;

    /* Worker pool. */
    pthread_t *threads;
    unsigned n_threads;
    pthread_mutex_t queue_mu;
    pthread_cond_t queue_cond;
    struct srv_job *queue_head, *queue_tail;
    bool stopping; /* guarded by queue_mu */
    pthread_mutex_t done_mu;
    struct srv_job *done_head, *done_tail;
    struct srv_job *free_jobs; /* loop thread only */
    unsigned n_free_jobs;
    unsigned jobs_active; /* handed out and not yet answered (loop thread) */

    /* Cross-thread and signal wake-up: workers, fmw_server_shutdown() and fmw_server_reload()
     * write to the eventfd; the loop reads it. */
    int wake_fd;
    struct event wake_ev;
    _Atomic int shutdown_requested;
    _Atomic int reload_requested;
    _Atomic int draining; /* readiness fails */
    bool closing;         /* drain delay over: Connection: close, idle sockets closed */
    bool forced;          /* the grace period ran out */
    struct event drain_timer;
    struct event grace_timer;
    struct event trim_timer; /* gives freed heap back to the kernel once traffic stops */

    bool events_inited; /* wake_ev and the drain timers are assigned */
    bool tearing_down;  /* fmw_server_free() runs: connections die without bookkeeping */

    uint64_t next_request_id;
    struct srv_metrics m;
    struct fmw_obs_registry *own_registry; /* when the configuration gave none */
};

/* tls.c */
enum fmw_err srv_tls_init(struct fmw_server *srv, struct fmw_diag *diag);
void srv_tls_cleanup(struct fmw_server *srv);
/* Checks the certificate files and takes a new valid pair; `why` is logged. */
void srv_tls_check(struct fmw_server *srv, const char *why);
/* A new SSL object for an accepted connection, carrying `conn` (freed with it); NULL on failure. */
SSL *srv_tls_new_ssl(struct fmw_server *srv, struct srv_conn *conn);
/* The connection an SSL object of ours carries, or NULL. */
struct srv_conn *srv_tls_conn_of(SSL *ssl);
/* Called when OpenSSL frees a connection's SSL object. */
void srv_conn_ssl_freed(struct srv_conn *conn);

/* pool.c */
enum fmw_err srv_pool_start(struct fmw_server *srv, struct fmw_diag *diag);
/* Stops and joins the workers; jobs still queued are run first (handlers are bounded). */
void srv_pool_stop(struct fmw_server *srv);
struct srv_job *srv_job_get(struct fmw_server *srv);
void srv_job_put(struct fmw_server *srv, struct srv_job *job);
void srv_pool_submit(struct fmw_server *srv, struct srv_job *job);
/* Runs a job's handler on the calling thread (a worker, or the loop for an inline attempt). */
void srv_job_run(struct srv_job *job);
/* Gives a job the preset response again, after an inline attempt answered FMW_EAGAIN. */
void srv_job_reset_response(struct fmw_server *srv, struct srv_job *job);
/* Takes every finished job (loop thread). */
struct srv_job *srv_pool_take_done(struct fmw_server *srv);
void srv_wake(struct fmw_server *srv);

/* server.c */
uint64_t srv_now_ns(void);

#endif
