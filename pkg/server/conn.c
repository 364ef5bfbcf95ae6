/*
 * Connections, the transport: TLS (or plain, on the health listener) on non-blocking sockets,
 * driven by libevent events on the loop thread: accepting, reading into the connection's
 * buffer, writing its answer, timers, lingering and closing. What the bytes mean is http1.c's.
 *
 * The read event stays registered for the life of a connection, so a keep-alive request costs
 * no epoll_ctl; a response goes out with one SSL_write as soon as it is ready, and the write
 * event is used only when the socket is full. OpenSSL reads ahead (one read(2) per request
 * rather than two), so after reading stops early the connection remembers that OpenSSL may hold
 * bytes epoll cannot see, and reads again before waiting.
 *
 * Deadlines: the first bytes of a request (or, for a new connection, the accept) start the
 * request timeout, which only the complete request stops; between requests the idle timeout
 * runs, and a response that cannot be written for that long without progress closes the
 * connection too.
 *
 * Closing is deferred: srv_conn_close() ends the socket at once and frees the memory after the
 * current callbacks (srv_conn_reap), so code on the stack only looks at c->state after a call
 * that may close.
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

/* Read buffers start at SRV_IN_FIRST and grow to what the request needs (its head, then its
 * declared body); an idle connection keeps none. */
#define READ_MIN 4096u
/* How long a connection closed after its response keeps reading (and dropping) what the client
 * still sends, so that closing does not reset the connection under the response. */
#define LINGER_NS (2ull * 1000000000ull)
/* During the drain, how long a new connection has for its first request. */
#define DRAIN_FIRST_REQUEST_MS 1000u

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void conn_on_timer(evutil_socket_t fd, short what, void *arg);

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

void srv_conn_arm_timer(struct srv_conn *c, unsigned ms)
{
    struct timeval tv = ms_tv(ms);
    evtimer_add(&c->timer, &tv);
}

void srv_conn_stop_timer(struct srv_conn *c)
{
    event_del(&c->timer);
}

void srv_conn_pause_reading(struct srv_conn *c)
{
    if (!c->read_paused) {
        event_del(&c->rev);
        c->read_paused = true;
    }
}

void srv_conn_resume_reading(struct srv_conn *c)
{
    if (c->read_paused) {
        event_add(&c->rev, NULL);
        c->read_paused = false;
        c->may_have_pending = srv_conn_tls_pending(c); /* arrived while reading was off */
    }
}

/* True while the connection can still be answered. */
bool srv_conn_usable(const struct srv_conn *c)
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
void srv_conn_give_buffers(struct srv_conn *c)
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
bool srv_conn_reserve_body(struct srv_conn *c, size_t size)
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

void srv_conn_release_body(struct srv_conn *c)
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
        srv_conn_give_buffers(c);
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
    srv_conn_release_body(c);
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
void srv_conn_linger(struct srv_conn *c)
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
    srv_conn_give_buffers(c);
    srv_conn_release_body(c);
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
        srv_conn_arm_timer(c, DRAIN_FIRST_REQUEST_MS < c->srv->cfg.request_timeout_ms
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
    srv_conn_arm_timer(c, tls ? srv->cfg.request_timeout_ms : srv->cfg.idle_timeout_ms);
}

/* ---- reading ---- */

enum io_result { IO_OK, IO_AGAIN, IO_EOF, IO_ERROR };

/* Bytes OpenSSL holds that epoll cannot see (it reads ahead). */
bool srv_conn_tls_pending(const struct srv_conn *c)
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
        size_t want = srv_h1_want(c);
        if (want > c->in.max - 1)
            want = c->in.max - 1;
        if (c->in.len >= want) {
            c->may_have_pending = srv_conn_tls_pending(c);
            return IO_OK;
        }
        /* Grow by doubling as bytes arrive, never to a declared length up front (a client
         * could declare 7 MiB on each connection and send nothing). */
        if (!c->in.data)
            srv_buf_take(srv, &c->in, SRV_IN_FIRST);
        if (c->in.alloc < c->in.len + READ_MIN + 1 && c->in.alloc < want + 1) {
            size_t target = c->in.alloc ? c->in.alloc * 2 : SRV_IN_FIRST;
            if (target < c->in.len + READ_MIN + 1)
                target = c->in.len + READ_MIN + 1;
            if (target > want + 1)
                target = want + 1;
            /* Past SRV_BODY_FREE the buffer takes its share of max_bodies as it grows: what is
             * charged is what was received, never a declared length. No share: nothing more is
             * read, and srv_h1_process answers 503. */
            if (!srv_conn_reserve_body(c, target)) {
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
                if (srv_conn_tls_pending(c))
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
bool srv_conn_read_more(struct srv_conn *c)
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
    if (srv_conn_read_more(c))
        srv_h1_process(c);
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
            srv_conn_write(c);
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

/* ---- writing ---- */

/* What of the answers the client has not taken yet: the part not written, and what the kernel
 * still holds of what was (SIOCOUTQ; nothing when it cannot say). */
static size_t answer_left(const struct srv_conn *c)
{
    size_t unwritten = c->state == SRV_C_WRITING ? c->out.len - c->out_off : 0;
    int unsent = 0;
    if (ioctl(c->fd, SIOCOUTQ, &unsent) != 0 || unsent < 0)
        unsent = 0;
    return unwritten + (size_t)unsent;
}

/* Progress in an idle timeout: a quarter of what was left, or 256 KiB, taken. A client whose
 * kernel only fills its receive window, or that reads a trickle, is not reading. */
#define DRAIN_MIN ((size_t)256 * 1024)

/*
 * At an idle timeout while an answer is being written, or with one still leaving the kernel:
 * true when the client took enough of it since the last look (DRAIN_MIN), and the connection gets
 * another idle timeout. A socket buffer holds megabytes and epoll reports it writable only once a
 * good part has drained, so a reader that is slow but steady can leave the socket "full" for
 * longer than the idle timeout; one that takes too little in a whole idle timeout is closed (and
 * an idle connection is not closed under its last answer's tail, which the kernel might drop).
 * What is left shrinks by a quarter or 256 KiB each time, so the extensions are bounded.
 */
static bool still_sending(struct srv_conn *c)
{
    size_t left = c->request_started ? 0 : answer_left(c);
    size_t need = c->left / 4 < DRAIN_MIN ? c->left / 4 : DRAIN_MIN;
    bool progress = left > 0 && c->left > left && c->left - left >= (need ? need : 1);
    c->left = left;
    return progress;
}

/* The socket is full: wait until it drains, at most the idle timeout without progress. Reading
 * stops meanwhile (epoll is level-triggered: unread pipelined bytes would wake the loop again and
 * again). */
static void wait_writable(struct srv_conn *c)
{
    event_add(&c->wev, NULL);
    /* One look per idle timeout, however often the socket drains a little and fills again:
     * the timer is armed (with what is left as the baseline) only when it is not running. */
    if (!evtimer_pending(&c->timer, NULL)) {
        c->left = answer_left(c);
        srv_conn_arm_timer(c, c->srv->cfg.idle_timeout_ms);
    }
    srv_conn_pause_reading(c);
}

void srv_conn_write(struct srv_conn *c)
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
                c->left = answer_left(c); /* the baseline for this timeout */
                srv_conn_arm_timer(c, srv->cfg.idle_timeout_ms);
                srv_conn_resume_reading(c);
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
    /* Written: what comes next is HTTP's to say. What the kernel still holds is the baseline of
     * the next idle timeout. */
    event_del(&c->timer);
    c->left = answer_left(c);
    srv_h1_sent(c);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    (void)fd, (void)what;
    if (c->state == SRV_C_WRITING) {
        srv_conn_write(c);
    } else if (c->state == SRV_C_READING && c->read_wants_write) {
        c->read_wants_write = false;
        read_and_process(c);
    }
}

/* ---- deadlines ---- */

/* Closes a connection whose client does not take its answer with a reset (SO_LINGER 0): the
 * kernel drops what it still holds of the answer at once, rather than trickling it on to that
 * client for hours from an orphaned socket charged to this process's memory (nginx's
 * reset_timedout_connection). */
static void close_abortive(struct srv_conn *c)
{
    struct linger reset = {1, 0};
    (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    srv_conn_close(c);
}

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    (void)fd, (void)what;
    switch (c->state) {
    case SRV_C_READING:
        if (still_sending(c)) {
            srv_conn_arm_timer(c, c->srv->cfg.idle_timeout_ms);
            break;
        }
        if (c->request_started) {
            fmw_obs_inc(c->srv->m.deadline_closes);
            if (fmw_log_enabled(FMW_LOG_DEBUG))
                fmw_logf(FMW_LOG_DEBUG, "request not complete within %u ms, closing connection",
                         c->srv->cfg.request_timeout_ms);
        }
        if (c->left > 0)
            close_abortive(c); /* its last answer's tail, not taken */
        else
            srv_conn_close(c);
        break;
    case SRV_C_WRITING: /* the client stopped reading, or reads slowly */
        if (still_sending(c)) {
            srv_conn_arm_timer(c, c->srv->cfg.idle_timeout_ms);
            break;
        }
        close_abortive(c);
        break;
    case SRV_C_LINGER:
        srv_conn_close(c);
        break;
    case SRV_C_HANDLING:
    case SRV_C_CLOSED:
        break;
    }
}
