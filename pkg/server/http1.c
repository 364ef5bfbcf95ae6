/*
 * HTTP/1.1 on a connection (conn.c is the transport beneath: sockets, TLS, reads, writes,
 * timers): finding and parsing each request head (pkg/http1), framing its body (Content-Length
 * or chunked, 100-continue), handing complete requests to the router one after the other
 * (pipelining), writing each answer's head, and keep-alive or close after it. The split follows
 * h2o's, whose socket layer knows nothing of HTTP and whose HTTP/1 handler nothing of sockets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkg/obs/obs.h"
#include "pkg/server/server_int.h"

static void next_request(struct srv_conn *c);

/* ---- requests ---- */

void srv_conn_respond_error(struct srv_conn *c, const struct srv_route *route, int status,
                            const char *message, const char *extra, uint64_t t0)
{
    /* The message is one of ours, without quotes; cut at 100 bytes the JSON stays whole. */
    char body[128];
    int n = snprintf(body, sizeof body, "{\"error\":\"%.100s\"}\n", message);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof body ? (size_t)n : sizeof body - 1;
    srv_conn_respond(c, route, status, "application/json", extra, body, len, t0);
}

/* A request that cannot be read on: refused, and the connection closes after the answer. */
static void respond_error(struct srv_conn *c, int status, const char *message)
{
    c->close_after = true;
    srv_conn_respond_error(c, &c->srv->unmatched, status, message, NULL, fmw_now_ns());
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
    srv_conn_write(c);
}

/* Parses what c->in holds and runs the requests that are complete, one after the other
 * (pipelining); answers written at once come back to this loop rather than recursing. */
void srv_h1_process(struct srv_conn *c)
{
    struct fmw_server *srv = c->srv;
    if (c->processing)
        return;
    c->processing = true;
    while (c->state == SRV_C_READING) {
        if (c->may_have_pending && !c->peer_eof && !srv_conn_read_more(c))
            break;
        if (!c->request_started && c->in.len > 0) {
            c->request_started = true;
            srv_conn_arm_timer(c, srv->cfg.request_timeout_ms);
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
            if (c->body.len > SRV_BODY_FREE && !srv_conn_reserve_body(c, c->body.alloc)) {
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
                    srv_conn_stop_timer(c);
                    c->close_after = true;
                    c->state = SRV_C_HANDLING;
                    srv_dispatch(c, "", 0, fmw_now_ns());
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
        srv_conn_stop_timer(c);
        if (!c->head.chunked) {
            c->body_terminator = c->in.data + c->head_len + body_len;
            c->body_saved = *c->body_terminator;
            *c->body_terminator = '\0';
        }
        point_head(c);
        if (!c->head.keep_alive || srv->closing)
            c->close_after = true;
        c->state = SRV_C_HANDLING;
        srv_dispatch(c, body, body_len, fmw_now_ns());
        if (c->state == SRV_C_HANDLING)
            srv_conn_pause_reading(c); /* a worker has it: no reading (nor growing `in`) */
    }
    if (c->state == SRV_C_READING) {
        if (c->peer_eof) {
            srv_conn_close(c); /* the client closed its side: nothing more can complete */
        } else if (!c->request_started && c->in.len == 0) {
            srv_conn_give_buffers(c); /* most connections wait far longer than they work */
            srv_conn_arm_timer(c, srv->cfg.idle_timeout_ms);
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
    srv_conn_release_body(c);
    c->continue_sent = false;
    memset(&c->head, 0, sizeof c->head);
    c->state = SRV_C_READING;
    srv_conn_resume_reading(c);
}

/* ---- answers ---- */

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
    fmw_obs_observe(route->duration, fmw_now_ns() - t0);
    if (!srv_conn_usable(c))
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
    srv_conn_write(c);
}

/* ---- after a response is written ---- */

void srv_h1_sent(struct srv_conn *c)
{
    struct fmw_server *srv = c->srv;
    if (c->writing_interim) {
        /* The 100 Continue is out: back to reading the body, under the request deadline. */
        c->writing_interim = false;
        fmw_buf_reset(&c->out);
        c->out_off = 0;
        c->state = SRV_C_READING;
        srv_conn_arm_timer(c, srv->cfg.request_timeout_ms);
        srv_conn_resume_reading(c);
        srv_h1_process(c);
        return;
    }
    if (c->close_after) {
        srv_conn_linger(c);
        return;
    }
    next_request(c);
    if (c->out.alloc > SRV_POOL_BUF_MAX)
        fmw_buf_free(&c->out);
    srv_h1_process(c); /* returns at once when called from its own loop, which carries on */
}

size_t srv_h1_want(const struct srv_conn *c)
{
    if (c->head_len && c->head.chunked)
        return c->in.len + SRV_IN_FIRST; /* decoded after each read */
    return c->head_len ? c->head_len + (c->head.has_length ? c->head.length : 0)
                       : c->skip + c->srv->cfg.max_headers + 1;
}
