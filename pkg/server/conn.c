/*
 * Connections: TLS (or plain, on the health listener) and HTTP/1.1 on non-blocking sockets,
 * driven by libevent events on the loop thread.
 *
 * The read event stays registered for the life of a connection, so a keep-alive request costs
 * no epoll_ctl; a response goes out with one SSL_write as soon as it is ready, and the write
 * event is used only when the socket is full. OpenSSL reads ahead (one read(2) per request
 * rather than two), so after reading stops early the connection remembers that OpenSSL may hold
 * bytes epoll cannot see, and reads again before waiting.
 *
 * Deadlines: the first bytes of a request (or, for a new connection, the accept) start the
 * request timeout, which only the complete request stops; between requests the idle timeout
 * runs, and a response that cannot be written for that long closes the connection too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "pkg/obs/obs.h"
#include "pkg/server/server_int.h"

/* Read buffers start small and grow to what the request needs (its head, then its declared
 * body); an idle connection keeps none. */
#define IN_FIRST (16u * 1024u)
#define READ_MIN 4096u
/* How long a connection closed after its response keeps reading (and dropping) what the client
 * still sends, so that closing does not reset the connection under the response. */
#define LINGER_NS (2ull * 1000000000ull)
/* During the drain, how long a new connection has for its first request. */
#define DRAIN_FIRST_REQUEST_MS 1000u

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void conn_on_timer(evutil_socket_t fd, short what, void *arg);
static void conn_process(struct srv_conn *c);
static void conn_write(struct srv_conn *c);

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static void arm_timer(struct srv_conn *c, unsigned ms)
{
    struct timeval tv = ms_tv(ms);
    evtimer_add(&c->timer, &tv);
}

/* True while the connection can still be answered. */
static bool conn_usable(const struct srv_conn *c)
{
    return c && c->state != SRV_C_CLOSED && c->state != SRV_C_LINGER;
}

void srv_buf_take(struct fmw_server *srv, struct fmw_buf *b, size_t want)
{
    if (b->data)
        return;
    for (unsigned i = srv->bufpool.n; i-- > 0;) {
        if (srv->bufpool.size[i] < want || srv->bufpool.size[i] > b->max + 1)
            continue;
        fmw_buf_adopt(b, srv->bufpool.data[i], srv->bufpool.size[i]);
        srv->bufpool.n--;
        srv->bufpool.data[i] = srv->bufpool.data[srv->bufpool.n];
        srv->bufpool.size[i] = srv->bufpool.size[srv->bufpool.n];
        return;
    }
}

void srv_buf_give(struct fmw_server *srv, struct fmw_buf *b)
{
    size_t size;
    char *data = fmw_buf_release(b, &size);
    if (data && size >= SRV_POOL_BUF_MIN && size <= SRV_POOL_BUF_MAX &&
        srv->bufpool.n < SRV_POOL_BUFS && !srv->tearing_down) {
        srv->bufpool.data[srv->bufpool.n] = data;
        srv->bufpool.size[srv->bufpool.n] = size;
        srv->bufpool.n++;
    } else {
        free(data);
    }
}

void srv_bufpool_drain(struct fmw_server *srv)
{
    while (srv->bufpool.n > 0)
        free(srv->bufpool.data[--srv->bufpool.n]);
}

/* The connection's buffers go back to the pool; `in` only when it holds nothing unread. */
static void give_buffers(struct srv_conn *c)
{
    if (c->in.len == 0)
        srv_buf_give(c->srv, &c->in);
    srv_buf_give(c->srv, &c->body);
    srv_buf_give(c->srv, &c->out);
    c->out_off = 0;
}

/* ---- the shared budget of large bodies ---- */

/* Makes this request's share of max_bodies at least `size` (bodies up to SRV_BODY_FREE need
 * none); false when the budget has no room, and nothing changes. */
static bool reserve_body(struct srv_conn *c, size_t size)
{
    struct fmw_server *srv = c->srv;
    if (size <= SRV_BODY_FREE || size <= c->reserved)
        return true;
    size_t more = size - c->reserved;
    if (srv->bodies_reserved + more > srv->cfg.max_bodies)
        return false;
    srv->bodies_reserved += more;
    c->reserved = size;
    return true;
}

static void release_body(struct srv_conn *c)
{
    if (c->reserved)
        srv_schedule_trim(c->srv); /* a large body's buffer goes back to the kernel */
    c->srv->bodies_reserved -= c->reserved;
    c->reserved = 0;
}

void srv_conn_reap_soon(struct fmw_server *srv)
{
    if (srv->events_inited && !srv->tearing_down)
        event_active(&srv->reap_ev, 0, 0);
}

void srv_conn_reap(struct fmw_server *srv, bool all)
{
    struct srv_conn **pp = &srv->closed;
    while (*pp) {
        struct srv_conn *c = *pp;
        if (c->job_holds && !all) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        fmw_buf_reset(&c->in);
        give_buffers(c);
        free(c);
    }
}

void srv_conn_close(struct srv_conn *c)
{
    if (c->state == SRV_C_CLOSED)
        return;
    struct fmw_server *srv = c->srv;
    c->state = SRV_C_CLOSED;
    event_del(&c->rev);
    event_del(&c->wev);
    event_del(&c->timer);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    c->fd = -1;
    ERR_clear_error();
    release_body(c);
    srv_conn_gone(srv, c);
    c->next = srv->closed;
    srv->closed = c;
    srv_conn_reap_soon(srv);
}

/*
 * The end after a response: close_notify, the write side shut, and then what the client still
 * sends is read and dropped until it closes too or LINGER_NS pass. Closing at once while its
 * bytes are unread would send a reset, which can destroy the response before the client reads it.
 */
static void conn_linger(struct srv_conn *c)
{
    if (c->ssl && c->handshake_done) {
        ERR_clear_error();
        SSL_shutdown(c->ssl); /* one attempt; a full socket just loses the alert */
    }
    if (c->peer_eof || c->srv->tearing_down) {
        srv_conn_close(c);
        return;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = SRV_C_LINGER;
    event_del(&c->wev);
    if (c->read_paused) {
        event_add(&c->rev, NULL);
        c->read_paused = false;
    }
    c->body_terminator = NULL;
    fmw_buf_reset(&c->in); /* nothing of it is read any more */
    give_buffers(c);
    release_body(c);
    struct timeval tv = {(time_t)(LINGER_NS / 1000000000u), 0};
    evtimer_add(&c->timer, &tv);
}

void srv_conn_close_if_idle(struct srv_conn *c)
{
    if (c->state != SRV_C_READING || c->in.len != 0 || c->may_have_pending)
        return;
    if (!c->request_started) {
        srv_conn_close(c); /* between requests */
    } else if (c->handshake_done) {
        /* Connected, no byte of a request yet: a client opens a connection to send one, so it
         * gets a moment for it (and its answer says Connection: close) rather than the whole
         * request timeout, which would hold up the drain. */
        arm_timer(c, DRAIN_FIRST_REQUEST_MS < c->srv->cfg.request_timeout_ms
                         ? DRAIN_FIRST_REQUEST_MS
                         : c->srv->cfg.request_timeout_ms);
    }
}

/* ---- accepting ---- */

/* Idle: waiting for a request with no byte of it read, whether between keep-alive requests, after
 * the handshake, or before it (silent). */
static bool conn_idle(const struct srv_conn *c)
{
    return c->state == SRV_C_READING && c->in.len == 0 && !c->may_have_pending && !c->processing;
}

/* Whether the connection may be closed to make room on its listener. TLS: only when idle. The
 * health listener's requests are one short line, answered at once: any of its connections not
 * being answered may go, so slow or stalled clients cannot hold the probes' slots. */
static bool conn_reclaimable(const struct srv_conn *c)
{
    if (c->ssl)
        return conn_idle(c);
    return c->state != SRV_C_HANDLING && c->state != SRV_C_CLOSED && !c->processing;
}

struct srv_conn *srv_conn_victim(struct fmw_server *srv, bool tls, const char *remote)
{
    /* One pass over the list, newest first, so the last match is the oldest. The new
     * connection's own address gives first: a flood from one address reclaims its own
     * connections before anyone else's, the API server's among them. */
    struct srv_conn *own = NULL, *any = NULL;
    for (struct srv_conn *c = srv->conns; c; c = c->next) {
        if ((c->ssl != NULL) != tls || !conn_reclaimable(c))
            continue;
        any = c;
        if (remote && strcmp(c->remote, remote) == 0)
            own = c;
    }
    return own ? own : any;
}

void srv_conn_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                     int addrlen, void *arg)
{
    struct fmw_server *srv = arg;
    bool tls = l == srv->tls_listener;
    (void)addrlen;
    char remote[64] = "";
    if (addr && addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)addr)->sin_addr, remote, sizeof remote);
    else if (addr && addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)addr)->sin6_addr, remote, sizeof remote);
    /* A full listener makes room by closing a connection it may reclaim. With none (every one
     * is mid-request), a TLS connection is taken over the cap and the listener pauses, so that
     * the next ones wait in the kernel's backlog; the health listener refuses it instead. */
    if (tls ? srv->n_tls >= srv->cfg.max_connections : srv->n_plain >= SRV_MAX_PLAIN_CONNS) {
        struct srv_conn *victim = srv_conn_victim(srv, tls, remote);
        if (victim) {
            srv_conn_close(victim);
        } else if (tls) {
            srv_set_listeners_paused(srv, true);
        } else {
            close(fd);
            return;
        }
    }
    struct srv_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->srv = srv;
    c->fd = fd;
    c->state = SRV_C_READING;
    fmw_buf_init(&c->in, srv->cfg.max_headers + srv->cfg.max_body + 1);
    fmw_buf_init(&c->body, srv->cfg.max_body);
    fmw_buf_init(&c->out, srv->cfg.max_response + 64 * 1024);
    memcpy(c->remote, remote, sizeof c->remote);
    if (tls) {
        c->ssl = srv_tls_new_ssl(srv, fd);
        if (!c->ssl) {
            close(fd);
            free(c);
            return;
        }
        c->counted = true;
    } else {
        c->handshake_done = true;
    }
    event_assign(&c->rev, srv->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
    event_assign(&c->wev, srv->base, fd, EV_WRITE, conn_on_write, c);
    evtimer_assign(&c->timer, srv->base, conn_on_timer, c);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    if (c->counted) {
        srv->n_tls++;
        fmw_obs_gauge_add(srv->m.connections, 1);
        fmw_obs_inc(srv->m.connections_total);
    } else {
        srv->n_plain++;
    }
    event_add(&c->rev, NULL);
    /* TLS: the first deadline covers the handshake and the first request. */
    c->request_started = tls;
    arm_timer(c, tls ? srv->cfg.request_timeout_ms : srv->cfg.idle_timeout_ms);
}

/* ---- reading ---- */

enum io_result { IO_OK, IO_AGAIN, IO_EOF, IO_ERROR };

/* Bytes OpenSSL holds that epoll cannot see (it reads ahead). */
static bool tls_pending(const struct srv_conn *c)
{
    return c->ssl && SSL_has_pending(c->ssl);
}

/*
 * Reads into c->in, growing it up to what the request may need: the head cap until the head is
 * known, then the head and its declared body (or more chunks). One read(2) when a request comes
 * in one piece: reading stops when OpenSSL holds nothing more, and if the socket has more,
 * level-triggered epoll says so at once.
 */
static enum io_result read_input(struct srv_conn *c)
{
    struct fmw_server *srv = c->srv;
    c->may_have_pending = false;
    for (;;) {
        size_t want = c->head_len ? c->head_len + (c->head.has_length ? c->head.length : 0)
                                  : c->skip + srv->cfg.max_headers + 1;
        if (c->head_len && c->head.chunked)
            want = c->in.len + IN_FIRST;
        if (want > c->in.max - 1)
            want = c->in.max - 1;
        if (c->in.len >= want) {
            c->may_have_pending = tls_pending(c);
            return IO_OK;
        }
        /* Grow by doubling as bytes arrive, never to a declared length up front (a client
         * could declare 7 MiB on each connection and send nothing). */
        if (!c->in.data)
            srv_buf_take(srv, &c->in, IN_FIRST);
        if (c->in.alloc < c->in.len + READ_MIN + 1 && c->in.alloc < want + 1) {
            size_t target = c->in.alloc ? c->in.alloc * 2 : IN_FIRST;
            if (target < c->in.len + READ_MIN + 1)
                target = c->in.len + READ_MIN + 1;
            if (target > want + 1)
                target = want + 1;
            /* Past SRV_BODY_FREE the buffer takes its share of max_bodies as it grows: what is
             * charged is what was received, never a declared length. No share: nothing more is
             * read, and conn_process answers 503. */
            if (!reserve_body(c, target)) {
                c->over_budget = true;
                return IO_OK;
            }
            if (fmw_buf_resize(&c->in, target) != FMW_OK)
                return IO_ERROR;
        }
        size_t room;
        char *spare = fmw_buf_spare(&c->in, &room);
        if (!spare || room == 0)
            return IO_ERROR; /* cannot be: the block above gave it room */
        size_t n = room < want - c->in.len ? room : want - c->in.len;
        if (n > (size_t)INT32_MAX)
            n = INT32_MAX;
        if (c->ssl) {
            ERR_clear_error();
            int rc = SSL_read(c->ssl, spare, (int)n);
            if (rc > 0) {
                c->handshake_done = true;
                fmw_buf_commit(&c->in, (size_t)rc);
                /* A chunked body is decoded after each read, so `in` holds a read's worth. */
                if (c->head_len && c->head.chunked) {
                    c->may_have_pending = true;
                    return IO_OK;
                }
                if (tls_pending(c))
                    continue;
                return IO_OK;
            }
            int e = SSL_get_error(c->ssl, rc);
            if (SSL_is_init_finished(c->ssl))
                c->handshake_done = true;
            if (e == SSL_ERROR_WANT_READ)
                return IO_AGAIN;
            if (e == SSL_ERROR_WANT_WRITE) {
                c->read_wants_write = true;
                event_add(&c->wev, NULL);
                return IO_AGAIN;
            }
            if (e == SSL_ERROR_ZERO_RETURN)
                return IO_EOF;
            return IO_ERROR;
        }
        ssize_t rc = recv(c->fd, spare, n, 0);
        if (rc > 0) {
            fmw_buf_commit(&c->in, (size_t)rc);
            if (c->head_len && c->head.chunked) {
                c->may_have_pending = true;
                return IO_OK;
            }
            if ((size_t)rc == n)
                continue; /* filled what was asked: there may be more */
            return IO_OK;
        }
        if (rc == 0)
            return IO_EOF;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return IO_AGAIN;
        if (errno == EINTR)
            continue;
        return IO_ERROR;
    }
}

/* Reads what arrived; false when that closed the connection. */
static bool read_more(struct srv_conn *c)
{
    enum io_result r = read_input(c);
    if (r == IO_ERROR) {
        srv_conn_close(c);
        return false;
    }
    if (r == IO_EOF)
        c->peer_eof = true;
    return true;
}

/* Reads what arrived and runs what it completes. */
static void read_and_process(struct srv_conn *c)
{
    if (read_more(c))
        conn_process(c);
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    (void)fd, (void)what;
    if (c->state == SRV_C_LINGER) {
        char drop[4096];
        ssize_t n;
        while ((n = recv(c->fd, drop, sizeof drop, 0)) > 0)
            ;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            srv_conn_close(c);
        return;
    }
    if (c->state != SRV_C_READING) {
        /* Writing: only TLS asking to read for a write gets here. */
        if (c->write_wants_read) {
            c->write_wants_read = false;
            conn_write(c);
        }
        return;
    }
    bool was_idle = conn_idle(c);
    read_and_process(c);
    /* A full TLS listener stays on only while an idle connection could make room (srv_conn_gone
     * and a connection becoming idle start it again). Looked at when this one stops being idle
     * while full: one pass over the list per request at the cap, nothing otherwise. */
    struct fmw_server *srv = c->srv;
    if (was_idle && c->ssl && !conn_idle(c) && srv->n_tls >= srv->cfg.max_connections &&
        !srv->listeners_paused && !srv->closing && !srv_conn_victim(srv, true, NULL))
        srv_set_listeners_paused(srv, true);
}

/* ---- requests ---- */

void srv_conn_respond_error(struct srv_conn *c, const struct srv_route *route, int status,
                            const char *message, const char *extra, uint64_t t0)
{
    char body[128];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", message);
    srv_conn_respond(c, route, status, "application/json", extra, body, (size_t)n, t0);
}

/* A request that cannot be read on: refused, and the connection closes after the answer. */
static void respond_error(struct srv_conn *c, int status, const char *message)
{
    c->close_after = true;
    srv_conn_respond_error(c, &c->srv->unmatched, status, message, NULL, srv_now_ns());
}

static const char *error_text(int status)
{
    switch (status) {
    case 400:
        return "bad request";
    case 413:
        return "request body too large";
    case 417:
        return "expectation not supported";
    case 501:
        return "method not implemented";
    case 505:
        return "HTTP version not supported";
    case 503:
        return "busy: large request bodies in flight use the whole budget";
    default:
        return "bad request";
    }
}

/* Finds the end of the head in c->in (after empty lines before the request line). */
static bool find_head(struct srv_conn *c)
{
    const char *p = c->in.data;
    size_t n = c->in.len;
    /* RFC 9112 2.2: empty lines before a request line are ignored (bounded by the head cap). */
    while (!c->skipped && c->skip < n && (p[c->skip] == '\r' || p[c->skip] == '\n'))
        c->skip++;
    if (c->skip < n)
        c->skipped = true;
    size_t from = c->scan_from > c->skip ? c->scan_from : c->skip;
    for (size_t i = from; i < n; i++) {
        if (p[i] != '\n')
            continue;
        /* "\n\n" or "\n\r\n" ends the head. */
        if (i + 1 < n && p[i + 1] == '\n') {
            c->head_len = i + 2;
            return true;
        }
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
            c->head_len = i + 3;
            return true;
        }
    }
    /* Resume where a terminator could still start. */
    c->scan_from = n > from + 2 ? n - 2 : from;
    if (c->scan_from < c->skip)
        c->scan_from = c->skip;
    return false;
}

/* Points the head's slices at `in` again: it may have moved as the body arrived. */
static void point_head(struct srv_conn *c)
{
    c->head.target.ptr = c->in.data + c->target_off;
    if (c->head.has_content_type)
        c->head.content_type.ptr = c->in.data + c->ctype_off;
}

/* "100 Continue", written like a response (a write that does not complete at once is carried
 * on by the write event); reading resumes once it is out. */
static void send_continue(struct srv_conn *c)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    c->continue_sent = true;
    srv_buf_take(c->srv, &c->out, sizeof line);
    fmw_buf_reset(&c->out);
    c->out_off = 0;
    if (fmw_buf_add(&c->out, line, sizeof line - 1) != FMW_OK) {
        srv_conn_close(c);
        return;
    }
    c->writing_interim = true;
    c->state = SRV_C_WRITING;
    conn_write(c);
}

/* Parses what c->in holds and runs the requests that are complete, one after the other
 * (pipelining); answers written at once come back to this loop rather than recursing. */
static void conn_process(struct srv_conn *c)
{
    struct fmw_server *srv = c->srv;
    if (c->processing)
        return;
    c->processing = true;
    while (c->state == SRV_C_READING) {
        if (c->may_have_pending && !c->peer_eof && !read_more(c))
            break;
        if (!c->request_started && c->in.len > 0) {
            c->request_started = true;
            arm_timer(c, srv->cfg.request_timeout_ms);
        }
        if (c->head_len == 0) {
            if (!find_head(c)) {
                if (c->in.len - c->skip > srv->cfg.max_headers || c->skip > srv->cfg.max_headers) {
                    respond_error(c, 400, "request head too large");
                    break;
                }
                if (c->may_have_pending && !c->peer_eof)
                    continue; /* OpenSSL holds more of it */
                break;
            }
            if (c->head_len - c->skip > srv->cfg.max_headers) {
                respond_error(c, 400, "request head too large");
                break;
            }
            int status =
                fmw_http1_parse_head(c->in.data + c->skip, c->head_len - c->skip, &c->head);
            if (status == 0 && c->head.has_length && c->head.length > srv->cfg.max_body)
                status = 413;
            if (status) {
                respond_error(c, status, error_text(status));
                break;
            }
            /* The head's slices point into `in`, which may move as the body arrives. */
            c->target_off = (size_t)(c->head.target.ptr - c->in.data);
            c->ctype_off =
                c->head.has_content_type ? (size_t)(c->head.content_type.ptr - c->in.data) : 0;
            fmw_buf_reset(&c->body);
            memset(&c->chunks, 0, sizeof c->chunks);
            c->consumed = c->head_len;
        }
        const char *body;
        size_t body_len;
        bool complete;
        if (c->head.chunked) {
            size_t used = 0;
            enum fmw_err cerr = fmw_chunked_feed(&c->chunks, c->in.data + c->consumed,
                                                 c->in.len - c->consumed, &c->body, &used);
            if (cerr) {
                int status = cerr == FMW_ETOOBIG ? 413 : 400;
                respond_error(c, status, error_text(status));
                break;
            }
            c->consumed += used;
            complete = c->chunks.state == FMW_CH_DONE;
            /* A chunked body reserves as it grows, in doublings (by what this request decoded:
             * a buffer kept from an earlier one is not charged to a small new one). */
            if (c->body.len > SRV_BODY_FREE && !reserve_body(c, c->body.alloc)) {
                respond_error(c, 503, error_text(503));
                break;
            }
            /* Decoded bytes need not stay in `in`: it does not grow with the body. */
            if (!complete) {
                fmw_buf_truncate(&c->in, c->head_len);
                c->consumed = c->head_len;
            }
            if (complete && fmw_buf_add(&c->body, "", 0) != FMW_OK) {
                srv_conn_close(c);
                break;
            }
            body = c->body.data ? c->body.data : "";
            body_len = c->body.len;
        } else {
            uint64_t len = c->head.has_length ? c->head.length : 0;
            complete = c->in.len - c->head_len >= len;
            c->consumed = c->head_len + (size_t)len;
            body = c->in.data + c->head_len;
            body_len = (size_t)len;
        }
        if (!complete && c->over_budget) {
            respond_error(c, 503, error_text(503));
            break;
        }
        if (!complete) {
            if (c->head.expect_continue && !c->continue_sent) {
                point_head(c);
                if (srv_refused_early(c)) {
                    /* Refused whatever the body: answered now, so the client need not send
                     * it, and the connection closes (its body would follow). */
                    c->request_started = false;
                    event_del(&c->timer);
                    c->close_after = true;
                    c->state = SRV_C_HANDLING;
                    srv_dispatch(c, "", 0, srv_now_ns());
                    break;
                }
                send_continue(c);
                if (c->state != SRV_C_READING)
                    break; /* the line is still being written */
            }
            if (c->may_have_pending && !c->peer_eof && c->in.len < c->in.max - 1)
                continue; /* more of the body waits in OpenSSL (it reads ahead) */
            break;
        }
        /* A complete request: the deadline stops; the handler gets its body NUL-terminated. */
        c->request_started = false;
        event_del(&c->timer);
        if (!c->head.chunked) {
            c->body_terminator = c->in.data + c->head_len + body_len;
            c->body_saved = *c->body_terminator;
            *c->body_terminator = '\0';
        }
        point_head(c);
        if (!c->head.keep_alive || srv->closing)
            c->close_after = true;
        c->state = SRV_C_HANDLING;
        srv_dispatch(c, body, body_len, srv_now_ns());
        if (c->state == SRV_C_HANDLING && !c->read_paused) {
            /* A worker has it: no reading (nor growing `in`) until it is answered. */
            event_del(&c->rev);
            c->read_paused = true;
        }
    }
    if (c->state == SRV_C_READING) {
        if (c->peer_eof) {
            srv_conn_close(c); /* the client closed its side: nothing more can complete */
        } else if (!c->request_started && c->in.len == 0) {
            give_buffers(c); /* most connections wait far longer than they work */
            arm_timer(c, srv->cfg.idle_timeout_ms);
            /* Idle now: a full listener can make room again by closing one. */
            if (c->ssl && srv->listeners_paused && !srv->closing)
                srv_set_listeners_paused(srv, false);
        }
    }
    c->processing = false;
}

/* The request is answered: its bytes go, the next one (pipelined) moves to the front. */
static void next_request(struct srv_conn *c)
{
    if (c->body_terminator) {
        *c->body_terminator = c->body_saved;
        c->body_terminator = NULL;
    }
    if (c->in.data)
        fmw_buf_consume(&c->in, c->consumed);
    c->consumed = c->head_len = c->scan_from = c->skip = 0;
    c->skipped = false;
    c->over_budget = false;
    release_body(c);
    c->continue_sent = false;
    memset(&c->head, 0, sizeof c->head);
    c->state = SRV_C_READING;
    if (c->read_paused) {
        event_add(&c->rev, NULL);
        c->read_paused = false;
        c->may_have_pending = tls_pending(c); /* arrived while reading was off */
    }
}

/* ---- writing ---- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

void srv_conn_respond(struct srv_conn *c, const struct srv_route *route, int status,
                      const char *content_type, const char *extra, const char *body, size_t len,
                      uint64_t t0)
{
    struct fmw_server *srv = c->srv;
    char code[16];
    snprintf(code, sizeof code, "%d", status);
    fmw_obs_inc(fmw_obs_series2(srv->m.requests, route->path, code));
    fmw_obs_observe(route->duration, srv_now_ns() - t0);
    if (!conn_usable(c))
        return; /* the client left while a handler ran */
    if (srv->closing)
        c->close_after = true;
    /* No body for HEAD, and none (nor a length) for 204 and 304. */
    bool no_length = status == 204 || status == 304;
    bool head_only = c->head.method == FMW_HTTP1_HEAD || no_length;
    fmw_buf_reset(&c->out);
    c->out_off = 0;
    /* Room for the whole response at once: growing by doubling is a realloc each time. */
    size_t need = 256 + (extra ? strlen(extra) : 0) + (head_only ? 0 : len);
    srv_buf_take(srv, &c->out, need);
    if (c->out.alloc < need + 1 && need <= c->out.max) {
        /* At least the pool's size, so that it can go back to the pool. */
        size_t size = need + 1 < SRV_POOL_BUF_MIN ? SRV_POOL_BUF_MIN : need + 1;
        if (fmw_buf_resize(&c->out, size) != FMW_OK) {
            srv_conn_close(c);
            return;
        }
    }
    char length[40] = "";
    if (!no_length)
        snprintf(length, sizeof length, "Content-Length: %zu\r\n", len);
    /* HTTP/1.0 keeps a connection only when told so. */
    const char *connection = c->close_after    ? "Connection: close\r\n"
                             : !c->head.http11 ? "Connection: keep-alive\r\n"
                                               : "";
    enum fmw_err err =
        fmw_buf_addf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s%s\r\n", status,
                     reason_of(status), content_type, length, extra ? extra : "", connection);
    if (!err && !head_only && len)
        err = fmw_buf_add(&c->out, body, len);
    if (err) {
        srv_conn_close(c);
        return;
    }
    c->state = SRV_C_WRITING;
    conn_write(c);
}

/* Bytes of written answers the kernel has not sent yet (0 when it cannot say). */
static int kernel_unsent(const struct srv_conn *c)
{
    int unsent = 0;
    return ioctl(c->fd, SIOCOUTQ, &unsent) == 0 && unsent > 0 ? unsent : 0;
}

/*
 * At an idle timeout while an answer is being written, or with one still leaving the kernel:
 * true when the client took some of it since the last look, and the connection gets another
 * idle timeout. A socket buffer holds megabytes and epoll reports it writable only once a good
 * part has drained, so a reader that is slow but steady can leave the socket "full" for longer
 * than the idle timeout; only one that takes nothing for a whole idle timeout is closed (and an
 * idle connection is not closed under its last answer's tail, which the kernel might drop).
 */
static bool still_sending(struct srv_conn *c)
{
    int unsent = c->request_started ? 0 : kernel_unsent(c);
    bool progress = unsent > 0 && (c->unsent == 0 || unsent < c->unsent);
    c->unsent = unsent;
    return progress;
}

/* The socket is full: wait until it drains, at most the idle timeout without progress. Reading
 * stops meanwhile (epoll is level-triggered: unread pipelined bytes would wake the loop again and
 * again). */
static void wait_writable(struct srv_conn *c)
{
    c->unsent = kernel_unsent(c); /* what the client's progress is measured from */
    event_add(&c->wev, NULL);
    arm_timer(c, c->srv->cfg.idle_timeout_ms);
    if (!c->read_paused) {
        event_del(&c->rev);
        c->read_paused = true;
    }
}

static void conn_write(struct srv_conn *c)
{
    struct fmw_server *srv = c->srv;
    while (c->out_off < c->out.len) {
        size_t n = c->out.len - c->out_off;
        if (n > (size_t)INT32_MAX)
            n = INT32_MAX;
        if (c->ssl) {
            ERR_clear_error();
            int rc = SSL_write(c->ssl, c->out.data + c->out_off, (int)n);
            if (rc > 0) {
                c->out_off += (size_t)rc;
                continue;
            }
            int e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_WRITE) {
                wait_writable(c);
                return;
            }
            if (e == SSL_ERROR_WANT_READ) {
                c->write_wants_read = true;
                arm_timer(c, srv->cfg.idle_timeout_ms);
                if (c->read_paused) {
                    event_add(&c->rev, NULL);
                    c->read_paused = false;
                }
                return;
            }
            srv_conn_close(c);
            return;
        }
        ssize_t rc = send(c->fd, c->out.data + c->out_off, n, MSG_NOSIGNAL);
        if (rc > 0) {
            c->out_off += (size_t)rc;
            continue;
        }
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wait_writable(c);
            return;
        }
        srv_conn_close(c);
        return;
    }
    /* Written. */
    event_del(&c->timer);
    c->unsent = 0;
    if (c->writing_interim) {
        /* The 100 Continue is out: back to reading the body, under the request deadline. */
        c->writing_interim = false;
        fmw_buf_reset(&c->out);
        c->out_off = 0;
        c->state = SRV_C_READING;
        arm_timer(c, srv->cfg.request_timeout_ms);
        if (c->read_paused) {
            event_add(&c->rev, NULL);
            c->read_paused = false;
            c->may_have_pending = tls_pending(c);
        }
        conn_process(c);
        return;
    }
    if (c->close_after) {
        conn_linger(c);
        return;
    }
    next_request(c);
    if (c->out.alloc > SRV_POOL_BUF_MAX)
        fmw_buf_free(&c->out);
    conn_process(c); /* returns at once when called from its own loop, which carries on */
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    (void)fd, (void)what;
    if (c->state == SRV_C_WRITING) {
        conn_write(c);
    } else if (c->state == SRV_C_READING && c->read_wants_write) {
        c->read_wants_write = false;
        read_and_process(c);
    }
}

/* ---- deadlines ---- */

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    (void)fd, (void)what;
    switch (c->state) {
    case SRV_C_READING:
        if (still_sending(c)) {
            arm_timer(c, c->srv->cfg.idle_timeout_ms);
            break;
        }
        if (c->request_started) {
            fmw_obs_inc(c->srv->m.deadline_closes);
            if (fmw_log_enabled(FMW_LOG_DEBUG))
                fmw_logf(FMW_LOG_DEBUG, "request not complete within %u ms, closing connection",
                         c->srv->cfg.request_timeout_ms);
        }
        srv_conn_close(c);
        break;
    case SRV_C_WRITING: /* the client stopped reading, or reads slowly */
        if (still_sending(c)) {
            arm_timer(c, c->srv->cfg.idle_timeout_ms);
            break;
        }
        srv_conn_close(c);
        break;
    case SRV_C_LINGER:
        srv_conn_close(c);
        break;
    case SRV_C_HANDLING:
    case SRV_C_CLOSED:
        break;
    }
}
