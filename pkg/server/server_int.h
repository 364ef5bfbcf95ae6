/*
 * pkg/server private declarations: the server object and the pieces shared by server.c (event
 * loop, listeners, routing, drain), conn.c (connections: TLS and HTTP/1.1 I/O), http.c (request
 * heads and chunked bodies), tls.c (contexts, certificate reload) and pool.c (worker threads).
 * Only the loop thread touches libevent and OpenSSL objects; workers see jobs only.
 */
#ifndef FMW_SERVER_INT_H
#define FMW_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "pkg/http1/http1.h"
#include "pkg/server/server.h"

#define SRV_DIGEST_LEN   32            /* SHA-256 of the certificate files' content */
#define SRV_MAX_WATCHES  3             /* directories of cert, key, client CA */
#define SRV_POOL_BUFS    16            /* connection buffers kept for reuse */
#define SRV_POOL_BUF_MAX (64u * 1024u) /* larger ones go back to malloc */
#define SRV_POOL_BUF_MIN (16u * 1024u) /* and smaller ones: a read buffer needs this much */
/* Connections of the plain (health) listener: the kubelet's probes and a metrics scraper need a
 * few; past it the idle ones make room (srv_conn_accept). */
#define SRV_MAX_PLAIN_CONNS 32
/* A request buffer up to this size needs no share of max_bodies: an API server's review is a few
 * KiB, and max_connections of them are bounded anyway. Past it a buffer takes its share as it
 * grows (conn.c, read_input). */
#define SRV_BODY_FREE (64u * 1024u)
/* accept(2) failing for want of descriptors or memory: the listeners rest this long, doubling
 * up to the maximum, instead of being woken again at once by the connection still waiting. */
#define SRV_ACCEPT_BACKOFF_MIN_MS 10
#define SRV_ACCEPT_BACKOFF_MAX_MS 1000

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

/* Request heads are parsed by pkg/http1 (fmw_http1_parse_head). */

/* ---- conn.c ---- */

enum srv_conn_state {
    SRV_C_READING,  /* handshake, or waiting for / reading a request */
    SRV_C_HANDLING, /* a complete request is with a handler (inline or on a worker) */
    SRV_C_WRITING,  /* a response is being written */
    SRV_C_LINGER,   /* response sent, write side shut: draining what the client still sends */
    SRV_C_CLOSED
};

/*
 * One connection, TLS (the handler listener) or plain (the health listener). The loop thread
 * owns it; a job on a worker holds it (job_holds), so the memory outlives an early close.
 */
struct srv_conn {
    struct fmw_server *srv;
    int fd;
    SSL *ssl; /* NULL on the plain listener */
    struct event rev, wev, timer;
    struct srv_conn *prev, *next; /* srv->conns while open; srv->closed once closed */
    enum srv_conn_state state;
    bool job_holds;       /* a worker's job points at it: freed only once the job is answered */
    bool request_started; /* bytes of a request (or the handshake) arrived: deadline armed */
    bool handshake_done;
    bool read_paused;                        /* rev removed while a worker has the request */
    bool read_wants_write, write_wants_read; /* TLS asked for the other direction */
    bool may_have_pending; /* reading stopped early: OpenSSL may hold decrypted bytes */
    bool peer_eof;
    bool close_after; /* the response in progress is the last */
    bool counted;     /* counts against max_connections (TLS listener) */
    size_t reserved;  /* this request's share of max_bodies (srv->bodies_reserved) */
    bool over_budget; /* `in` could not grow for want of a share: the request gets a 503 */

    /* The request being read: raw bytes from `in`'s start, its head once complete. */
    struct fmw_buf in;
    size_t scan_from;     /* where the search for the end of the head resumes */
    size_t skip;          /* empty lines before the request line */
    bool skipped;         /* the request line has begun: no more empty lines to skip */
    bool writing_interim; /* the response being written is a 100 Continue */
    size_t head_len;      /* 0 until the head is complete */
    size_t consumed;      /* bytes of `in` the request used, head and body */
    struct fmw_http1_head head;
    size_t target_off, ctype_off; /* where head.target and head.content_type start in `in` */
    struct fmw_chunked chunks;
    struct fmw_buf body; /* decoded chunked body */
    bool continue_sent;
    bool processing;       /* conn_process() is on the stack: answers return to its loop */
    char *body_terminator; /* the byte after a Content-Length body, NUL while it is handled */
    char body_saved;

    struct fmw_buf out; /* the response being written, from out_off */
    size_t out_off;
    size_t left; /* bytes of the answers not yet taken by the client at the last look */
    char remote[64];
};

/* The listener's callback for a new connection. */
void srv_conn_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                     int addrlen, void *arg);
/* Gives freed heap back to the kernel a second from now (once, however often it is asked). */
void srv_schedule_trim(struct fmw_server *srv);
/* The listener's callback when accept(2) fails (srv->accept_timer backs it off). */
void srv_conn_accept_error(struct evconnlistener *l, void *arg);
/* The connection of one listener to close so that a new one from `remote` (NULL: any) fits:
 * the oldest reclaimable one of that address, else the oldest of all; NULL when none (conn.c). */
struct srv_conn *srv_conn_victim(struct fmw_server *srv, bool tls, const char *remote);
/* ---- conn.c: the transport under HTTP/1 ---- */

#define SRV_IN_FIRST (16u * 1024u) /* a read buffer's first size */

/* (Re)starts the connection's one timer; srv_conn_stop_timer() stops it. */
void srv_conn_arm_timer(struct srv_conn *c, unsigned ms);
void srv_conn_stop_timer(struct srv_conn *c);
/* Reading off while a worker has the request or an answer waits for the socket; on again (and
 * whatever OpenSSL holds looked at). */
void srv_conn_pause_reading(struct srv_conn *c);
void srv_conn_resume_reading(struct srv_conn *c);
/* Reads what arrived into c->in (as much as srv_h1_want() says); false when that closed the
 * connection. */
bool srv_conn_read_more(struct srv_conn *c);
/* Bytes OpenSSL holds that epoll cannot see (it reads ahead). */
bool srv_conn_tls_pending(const struct srv_conn *c);
/* Writes c->out from out_off; when it is all out, srv_h1_sent(). */
void srv_conn_write(struct srv_conn *c);
/* True while the connection can still be answered. */
bool srv_conn_usable(const struct srv_conn *c);
/* After the last answer: close_notify, the write side shut, the client's rest read and dropped. */
void srv_conn_linger(struct srv_conn *c);
/* The connection's buffers go back to the pool; `in` only when it holds nothing unread. */
void srv_conn_give_buffers(struct srv_conn *c);
/* This request's share of max_bodies made at least `size`; false when the budget has no room. */
bool srv_conn_reserve_body(struct srv_conn *c, size_t size);
void srv_conn_release_body(struct srv_conn *c);

/* ---- http1.c: HTTP/1.1 on a connection ---- */

/* Parses what c->in holds and runs the requests that are complete, one after the other. */
void srv_h1_process(struct srv_conn *c);
/* How many bytes of `in` the request being read needs at most now. */
size_t srv_h1_want(const struct srv_conn *c);
/* The answer in c->out is written: reading the body on (after 100 Continue), the next request,
 * or the end of the connection. */
void srv_h1_sent(struct srv_conn *c);

/*
 * Answers the connection's current request (status line, Content-Type, Content-Length, the
 * `extra` header lines ("Allow: POST\r\n"), Connection: close when it is the last) and writes
 * it. `route` is counted in the metrics with the status; `t0` is when the request was complete.
 * A HEAD request gets the headers only.
 */
void srv_conn_respond(struct srv_conn *c, const struct srv_route *route, int status,
                      const char *content_type, const char *extra, const char *body, size_t len,
                      uint64_t t0);
/* srv_conn_respond() with the body {"error":"<message>"}. */
void srv_conn_respond_error(struct srv_conn *c, const struct srv_route *route, int status,
                            const char *message, const char *extra, uint64_t t0);
/*
 * Closes a connection at once (no response): its socket, TLS and events go now; its memory
 * later (deferred close), when the loop has left every callback that may still hold it, so
 * code on the stack only looks at c->state after a call that may close. Nothing counts
 * references: a job answered by a worker holds it with job_holds.
 */
void srv_conn_close(struct srv_conn *c);
/* Closes the connection now if it is idle between requests (drain). */
void srv_conn_close_if_idle(struct srv_conn *c);
/* Frees the closed connections no job holds (all of them with `all`, at teardown). */
void srv_conn_reap(struct fmw_server *srv, bool all);
/* Has srv_conn_reap() run once the current callbacks return. */
void srv_conn_reap_soon(struct fmw_server *srv);
/* An empty buffer `b` gets storage from the pool (at least `want` bytes) when there is some. */
void srv_buf_take(struct fmw_server *srv, struct fmw_buf *b, size_t want);
/* `b`'s storage goes back to the pool (or to free()); `b` is left empty, its cap kept. */
void srv_buf_give(struct fmw_server *srv, struct fmw_buf *b);
/* Frees what the pool holds. */
void srv_bufpool_drain(struct fmw_server *srv);

/* A request handed to a worker, and its response on the way back. */
struct srv_job {
    struct srv_job *next;
    struct srv_conn *conn;
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
    struct evconnlistener *tls_listener;
    struct evconnlistener *plain_listener; /* optional */
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

    /* Buffers of connections between requests (loop thread): reused by the next request on any
     * connection instead of going back to malloc (a 16 KiB malloc also consolidates every small
     * free chunk first). Emptied when no connection is left. */
    struct {
        char *data[SRV_POOL_BUFS];
        size_t size[SRV_POOL_BUFS];
        unsigned n;
    } bufpool;

    /* Connections (loop thread), newest first. n_conns counts every open one, n_tls those
     * against max_connections, n_plain those of the health listener (SRV_MAX_PLAIN_CONNS). */
    struct srv_conn *conns;
    struct srv_conn *closed; /* closed, not yet freed (srv_conn_close) */
    struct event reap_ev;    /* made active to free them after the current callbacks */
    unsigned n_conns;
    unsigned n_tls;
    unsigned n_plain;
    size_t bodies_reserved; /* sum of the connections' `reserved` */
    bool listeners_paused;
    /* accept(2) errors, per listener ([0] health, [1] TLS): the listener is off until its timer,
     * the rest doubling while the errors last. */
    struct srv_rest {
        struct fmw_server *srv;
        bool tls;
        struct event timer;
        unsigned backoff_ms;
        uint64_t error_ns; /* the last error, fmw_now_ns() */
        bool resting;
    } rest[2];

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
/* A new SSL object for an accepted connection on `fd`, in accept state; NULL on failure. */
SSL *srv_tls_new_ssl(struct fmw_server *srv, int fd);

/* pool.c */
enum fmw_err srv_pool_start(struct fmw_server *srv, struct fmw_diag *diag);
/* Stops and joins the workers; jobs still queued are run first (handlers are bounded). */
void srv_pool_stop(struct fmw_server *srv);
struct srv_job *srv_job_get(struct fmw_server *srv);
void srv_job_put(struct fmw_server *srv, struct srv_job *job);
void srv_pool_submit(struct fmw_server *srv, struct srv_job *job);
/* Runs a job's handler on the calling thread (a worker, or the loop for an inline attempt). */
void srv_job_run(struct srv_job *job);
/* Gives a job the preset response (200, JSON, an empty body with the configured cap): when it
 * is handed out, and again after an inline attempt answered FMW_EAGAIN. */
void srv_job_reset_response(struct fmw_server *srv, struct srv_job *job);
/* Takes every finished job (loop thread). */
struct srv_job *srv_pool_take_done(struct fmw_server *srv);
void srv_wake(struct fmw_server *srv);

/* server.c */
/* A complete request on `c` (its head in c->head, its body contiguous and NUL-terminated): routes
 * it, answers built-in routes and errors, hands handler routes to their handler. */
void srv_dispatch(struct srv_conn *c, const char *body, size_t body_len, uint64_t t0);
/* Bookkeeping when a connection goes: counts, the listener cap, the drain. */
void srv_conn_gone(struct fmw_server *srv, struct srv_conn *c);
/* True when the request whose head `c` holds (slices pointing into `in`) will be refused
 * whatever its body (404, 405, 415): answered before the body is read, a client that sent
 * Expect: 100-continue need not send it. */
bool srv_refused_early(const struct srv_conn *c);
void srv_set_listeners_paused(struct fmw_server *srv, bool pause);

#endif
