/*
 * The server's event loop: listeners, connections and their deadlines, routing, the hand-off to
 * workers and back, built-in endpoints, and the drain.
 *
 * libevent's evhttp parses HTTP/1.1 and keeps connections alive; it has no notion of "a request
 * has started", so a client sending one header byte every few seconds would never trip its idle
 * timeout. We watch each connection's decrypted input buffer instead: the first bytes of a
 * request arm a per-connection deadline that only the complete request disarms. The evhttp idle
 * timeout then covers only the quiet time between requests and stalled writes.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "pkg/obs/obs.h"
#include "pkg/server/server_int.h"

#define MIB (1024u * 1024u)
/* Cap of a /metrics page; the registry caps series, so this is generous. */
#define METRICS_PAGE_MAX (4 * MIB)

uint64_t srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

void fmw_server_config_defaults(struct fmw_server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->tls_host = "0.0.0.0";
    cfg->tls_port = 8443;
    cfg->plain_host = "0.0.0.0";
    cfg->plain_port = -1;
    cfg->workers = 2;
    cfg->max_connections = 256;
    cfg->max_body = 7 * MIB;
    cfg->max_headers = 16 * 1024;
    cfg->max_response = 7 * MIB;
    cfg->inline_max_body = 256 * 1024;
    cfg->request_timeout_ms = 10000;
    cfg->idle_timeout_ms = 120000;
    cfg->handler_timeout_ms = 10000;
    cfg->reload_interval_ms = 60000;
    cfg->drain_delay_ms = 5000;
    cfg->grace_ms = 25000;
}

/* ---- metrics ---- */

static enum fmw_err register_metric(struct fmw_obs_registry *reg, const char *name,
                                    const char *help, enum fmw_obs_kind kind, const char *labels,
                                    struct fmw_obs_metric **out)
{
    struct fmw_obs_desc desc = {.name = name, .help = help, .labels = labels, .kind = kind};
    if (kind == FMW_OBS_HISTOGRAM) {
        desc.buckets = fmw_obs_latency_buckets;
        desc.n_buckets = fmw_obs_n_latency_buckets;
        desc.unit = 1e9; /* observed in nanoseconds */
    }
    return fmw_obs_register(reg, &desc, out);
}

static enum fmw_err metrics_init(struct fmw_server *srv)
{
    struct srv_metrics *m = &srv->m;
    struct fmw_obs_metric *x = NULL;
    enum fmw_err err = FMW_OK;

#define P "flink_memory_webhook_"
    err = register_metric(m->reg, P "http_requests_total",
                          "HTTP requests answered, by route and status code.", FMW_OBS_COUNTER,
                          "route,code", &m->requests);
    if (err == FMW_OK)
        err = register_metric(m->reg, P "http_request_duration_seconds",
                              "Time from a complete request to its response, by route.",
                              FMW_OBS_HISTOGRAM, "route", &m->duration);
#define GAUGE_OR_COUNTER(field, name, help, kind)                                                  \
    if (err == FMW_OK) {                                                                           \
        err = register_metric(m->reg, P name, help, kind, NULL, &x);                               \
        m->field = fmw_obs_series0(x);                                                             \
    }
    GAUGE_OR_COUNTER(in_flight, "http_requests_in_flight", "Requests read and not yet answered.",
                     FMW_OBS_GAUGE)
    GAUGE_OR_COUNTER(connections, "http_connections", "Open TLS connections.", FMW_OBS_GAUGE)
    GAUGE_OR_COUNTER(connections_total, "http_connections_accepted_total",
                     "TLS connections accepted.", FMW_OBS_COUNTER)
    GAUGE_OR_COUNTER(deadline_closes, "http_request_deadline_closes_total",
                     "Connections closed because a request was not complete within the request "
                     "timeout (slow or stuck clients).",
                     FMW_OBS_COUNTER)
    GAUGE_OR_COUNTER(queue_depth, "worker_queue_depth", "Requests waiting for a worker thread.",
                     FMW_OBS_GAUGE)
    GAUGE_OR_COUNTER(handshake_errors, "tls_handshake_errors_total",
                     "TLS handshakes the server ended with a fatal alert.", FMW_OBS_COUNTER)
    GAUGE_OR_COUNTER(cert_not_after, "cert_not_after_timestamp_seconds",
                     "Expiry (notAfter, Unix time) of the serving certificate.", FMW_OBS_GAUGE)
    GAUGE_OR_COUNTER(ready, "ready", "1 when /readyz answers 200.", FMW_OBS_GAUGE)
#undef GAUGE_OR_COUNTER
    if (err == FMW_OK)
        err = register_metric(m->reg, P "cert_reloads_total",
                              "Certificate reloads after start, by result; a failed one keeps "
                              "the previous certificate.",
                              FMW_OBS_COUNTER, "result", &x);
#undef P
    if (err == FMW_OK) {
        m->reload_ok = fmw_obs_series1(x, "success");
        m->reload_failed = fmw_obs_series1(x, "failure");
    }
    return err;
}

/* ---- connections ---- */

static void conn_release(struct srv_conn *c)
{
    if (--c->refs == 0)
        free(c);
}

/*
 * True while evhttp still runs a connection on this bufferevent. evhttp frees a connection with
 * bufferevent_free(), which clears the callbacks at once but releases the memory (and the SSL
 * object, and so calls srv_conn_ssl_freed()) only in a later pass of the loop. In between, the
 * bufferevent must not be used: triggering an event on it would free it twice.
 */
static bool conn_usable(const struct srv_conn *c)
{
    if (!c || !c->alive || !c->bev)
        return false;
    bufferevent_event_cb eventcb = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, &eventcb, NULL);
    return eventcb != NULL;
}

static void arm_deadline(struct fmw_server *srv, struct srv_conn *c)
{
    struct timeval tv = ms_tv(srv->cfg.request_timeout_ms);
    c->reading = true;
    evtimer_add(&c->deadline, &tv);
}

/* Makes evhttp drop the connection as if the peer had closed it: evhttp owns the connection
 * object, so it must be the one to free it. The bufferevent holds a reference while its callback
 * runs, so nothing is freed under our feet. */
static void conn_close(struct srv_conn *c)
{
    bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_EOF, 0);
}

static void set_listeners_paused(struct fmw_server *srv, bool pause)
{
    if (srv->listeners_paused == pause || !srv->tls_sock)
        return;
    struct evconnlistener *l = evhttp_bound_socket_get_listener(srv->tls_sock);
    if (pause)
        evconnlistener_disable(l);
    else
        evconnlistener_enable(l);
    srv->listeners_paused = pause;
}

static void maybe_finish_drain(struct fmw_server *srv)
{
    if (srv->closing && srv->n_conns == 0 && srv->jobs_active == 0)
        event_base_loopbreak(srv->base);
}

/* The allocator keeps memory freed by a burst of connections; an idle webhook should be small
 * again (malloc_trim is glibc's, which is what Debian has). */
static void trim_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fmw_server *srv = arg;
    (void)fd, (void)what;
    if (srv->n_conns == 0)
        malloc_trim(0);
}

void srv_conn_ssl_freed(struct srv_conn *c)
{
    struct fmw_server *srv = c->srv;
    c->alive = false;
    c->bev = NULL;
    if (!srv->tearing_down)
        event_del(&c->deadline);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    srv->n_conns--;
    fmw_obs_gauge_add(srv->m.connections, -1);
    if (!srv->tearing_down) {
        if (srv->n_conns < srv->cfg.max_connections && !srv->closing)
            set_listeners_paused(srv, false);
        if (srv->n_conns == 0 && !evtimer_pending(&srv->trim_timer, NULL)) {
            struct timeval tv = {1, 0};
            evtimer_add(&srv->trim_timer, &tv);
        }
        maybe_finish_drain(srv);
    }
    conn_release(c);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct srv_conn *c = arg;
    (void)fd, (void)what;
    if (c->busy || !c->reading || !conn_usable(c))
        return;
    fmw_obs_inc(c->srv->m.deadline_closes);
    if (fmw_log_enabled(FMW_LOG_DEBUG))
        fmw_logf(FMW_LOG_DEBUG, "request not complete within %u ms, closing connection",
                 c->srv->cfg.request_timeout_ms);
    conn_close(c);
}

/* Bytes were added to (or taken from) a connection's decrypted input: the first bytes of a new
 * request start its deadline. */
static void input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct srv_conn *c = arg;
    (void)buf;
    if (info->n_added == 0 || c->reading || c->busy || !c->alive)
        return;
    arm_deadline(c->srv, c);
}

/* evhttp asks for a bufferevent for each accepted TLS connection. Returning NULL makes evhttp
 * use a plain one; tls_request_cb() refuses requests arriving on such a connection. */
static struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
    struct fmw_server *srv = arg;
    struct srv_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = srv;
    c->refs = 1;
    c->alive = true;
    evtimer_assign(&c->deadline, base, deadline_cb, c);
    SSL *ssl = srv_tls_new_ssl(srv, c);
    if (!ssl) {
        free(c);
        return NULL;
    }
    /* Linked before the bufferevent exists: if it cannot be made, freeing the SSL object runs
     * srv_conn_ssl_freed(), which unlinks and frees the connection. */
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    fmw_obs_gauge_add(srv->m.connections, 1);
    fmw_obs_inc(srv->m.connections_total);

    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    /* Clients that close without close_notify are common and harmless for a server. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    c->bev = bev;
    evbuffer_add_cb(bufferevent_get_input(bev), input_cb, c);
    /* The first deadline covers the handshake and the first request. */
    arm_deadline(srv, c);
    if (srv->n_conns >= srv->cfg.max_connections)
        set_listeners_paused(srv, true);
    return bev;
}

/* ---- responses ---- */

static void respond(struct fmw_server *srv, struct srv_conn *c, struct evhttp_request *evreq,
                    const struct srv_route *route, int status, const char *content_type,
                    const char *body, size_t len, uint64_t t0)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(evreq);
    evhttp_add_header(headers, "Content-Type", content_type);
    if (srv->closing && !evhttp_find_header(headers, "Connection"))
        evhttp_add_header(headers, "Connection", "close");
    if (len > 0)
        evbuffer_add(evhttp_request_get_output_buffer(evreq), body, len);

    char code[16];
    snprintf(code, sizeof(code), "%d", status);
    fmw_obs_inc(fmw_obs_series2(srv->m.requests, route->path, code));
    fmw_obs_observe(route->duration, srv_now_ns() - t0);

    if (c)
        c->busy = false;
    /* A request outlives its connection when the client left while a handler ran. */
    bool live = evhttp_request_get_connection(evreq) && conn_usable(c);
    /* Frees evreq once written (or at once when its connection is gone). */
    evhttp_send_reply(evreq, status, NULL, NULL);
    /* A pipelined request that arrived meanwhile starts its deadline now. */
    if (live && !c->reading && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        arm_deadline(srv, c);
}

static void respond_json_error(struct fmw_server *srv, struct srv_conn *c,
                               struct evhttp_request *evreq, const struct srv_route *route,
                               int status, const char *message, uint64_t t0)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", message);
    respond(srv, c, evreq, route, status, "application/json", body, (size_t)n, t0);
}

static void finish_job(struct fmw_server *srv, struct srv_job *job)
{
    srv->jobs_active--;
    fmw_obs_gauge_add(srv->m.in_flight, -1);
    if (job->handler_err != FMW_OK) {
        struct fmw_log_line line;
        fmw_log_begin(&line, FMW_LOG_ERROR, "handler failed");
        fmw_log_str(&line, "route", job->route->path);
        fmw_log_uint(&line, "request_id", job->req.id);
        fmw_log_str(&line, "error", fmw_strerror(job->handler_err));
        fmw_log_end(&line);
        respond_json_error(srv, job->conn, job->evreq, job->route, 500, "internal error",
                           job->req.received_ns);
    } else {
        const struct fmw_buf *b = &job->resp.body;
        int status = job->resp.status >= 100 && job->resp.status <= 599 ? job->resp.status : 500;
        const char *ctype = job->resp.content_type ? job->resp.content_type : "application/json";
        respond(srv, job->conn, job->evreq, job->route, status, ctype, b->data ? b->data : "",
                b->data ? b->len : 0, job->req.received_ns);
    }
    job->evreq = NULL;
    conn_release(job->conn);
    job->conn = NULL;
    srv_job_put(srv, job);
}

/* ---- drain ---- */

static void begin_closing(struct fmw_server *srv)
{
    if (srv->closing)
        return;
    srv->closing = true;
    fmw_logf(FMW_LOG_INFO, "drain delay over: closing listeners and idle connections");
    if (srv->tls_sock)
        evhttp_del_accept_socket(srv->http, srv->tls_sock);
    srv->tls_sock = NULL;
    if (srv->plain_sock)
        evhttp_del_accept_socket(srv->plain, srv->plain_sock);
    srv->plain_sock = NULL;
    /* Idle: between requests, nothing buffered either way. Busy and half-read connections
     * finish their request, whose response then carries Connection: close. Closing one only
     * schedules its release, so the list stays intact while we walk it. */
    for (struct srv_conn *c = srv->conns; c; c = c->next) {
        if (c->busy || c->reading || !conn_usable(c))
            continue;
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 ||
            evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
            continue;
        conn_close(c);
    }
    maybe_finish_drain(srv);
}

static void drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    begin_closing(arg);
}

static void grace_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fmw_server *srv = arg;
    (void)fd, (void)what;
    srv->forced = true;
    struct fmw_log_line line;
    fmw_log_begin(&line, FMW_LOG_WARN, "grace period over, stopping with work left");
    fmw_log_uint(&line, "connections", srv->n_conns);
    fmw_log_uint(&line, "requests_in_flight", srv->jobs_active);
    fmw_log_end(&line);
    event_base_loopbreak(srv->base);
}

static void start_drain(struct fmw_server *srv)
{
    atomic_store(&srv->draining, 1);
    fmw_obs_gauge_set(srv->m.ready, 0);
    struct fmw_log_line line;
    fmw_log_begin(&line, FMW_LOG_INFO, "shutdown requested: not ready, draining");
    fmw_log_uint(&line, "drain_delay_ms", srv->cfg.drain_delay_ms);
    fmw_log_uint(&line, "grace_ms", srv->cfg.grace_ms);
    fmw_log_end(&line);
    struct timeval grace = ms_tv(srv->cfg.grace_ms);
    evtimer_add(&srv->grace_timer, &grace);
    if (srv->cfg.drain_delay_ms == 0) {
        begin_closing(srv);
    } else {
        struct timeval delay = ms_tv(srv->cfg.drain_delay_ms);
        evtimer_add(&srv->drain_timer, &delay);
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fmw_server *srv = arg;
    uint64_t count;
    (void)what;
    while (read(fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    if (atomic_exchange(&srv->reload_requested, 0))
        srv_tls_check(srv, "request");
    if (atomic_load(&srv->shutdown_requested) && !atomic_load(&srv->draining))
        start_drain(srv);
    struct srv_job *job = srv_pool_take_done(srv);
    while (job) {
        struct srv_job *next = job->next;
        finish_job(srv, job);
        job = next;
    }
    maybe_finish_drain(srv);
}

/* ---- routing ---- */

static bool is_json_content_type(const char *ct)
{
    static const char want[] = "application/json";
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return false;
    const char *rest = ct + sizeof(want) - 1;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

/* Parses the subset of Go's time.Duration syntax the API server uses in ?timeout= ("10s",
 * "1m30s", "500ms", "1.5s"). Returns false when `s` is not such a duration. */
static bool parse_go_duration(const char *s, size_t n, uint64_t *out_ns)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    double total = 0;
    size_t i = 0;
    if (n == 0)
        return false;
    while (i < n) {
        double value = 0, scale = 1;
        bool digits = false, fraction = false;
        for (; i < n && ((s[i] >= '0' && s[i] <= '9') || (s[i] == '.' && !fraction)); i++) {
            if (s[i] == '.') {
                fraction = true;
                continue;
            }
            digits = true;
            if (fraction)
                value += (s[i] - '0') * (scale /= 10);
            else
                value = value * 10 + (s[i] - '0');
        }
        if (!digits)
            return false;
        size_t best = 0;
        double unit_ns = 0;
        for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            size_t ul = strlen(units[u].unit);
            if (ul > best && ul <= n - i && memcmp(s + i, units[u].unit, ul) == 0) {
                best = ul;
                unit_ns = units[u].ns;
            }
        }
        if (best == 0)
            return false;
        i += best;
        total += value * unit_ns;
        if (total > 3600e9 * 24)
            return false;
    }
    *out_ns = (uint64_t)total;
    return true;
}

/* The ?timeout= value of a query string, in nanoseconds, or 0 when absent or unreadable. */
static uint64_t query_timeout_ns(struct fmw_str query)
{
    size_t i = 0;
    while (i < query.len) {
        size_t end = i;
        while (end < query.len && query.ptr[end] != '&')
            end++;
        static const char key[] = "timeout=";
        size_t klen = sizeof(key) - 1;
        uint64_t ns = 0;
        if (end - i > klen && memcmp(query.ptr + i, key, klen) == 0 &&
            parse_go_duration(query.ptr + i + klen, end - i - klen, &ns))
            return ns;
        i = end + 1;
    }
    return 0;
}

static const struct srv_route *find_route(const struct fmw_server *srv, const char *path,
                                          size_t len, bool tls)
{
    for (size_t i = 0; i < sizeof(srv->builtins) / sizeof(srv->builtins[0]); i++)
        if (srv->builtins[i].path_len == len && memcmp(srv->builtins[i].path, path, len) == 0)
            return &srv->builtins[i];
    /* Handler routes exist only on the TLS listener: the plain one is for probes. */
    for (size_t i = 0; tls && i < srv->n_routes; i++)
        if (srv->routes[i].path_len == len && memcmp(srv->routes[i].path, path, len) == 0)
            return &srv->routes[i];
    return NULL;
}

static void serve_builtin(struct fmw_server *srv, struct srv_conn *c, struct evhttp_request *evreq,
                          const struct srv_route *route, uint64_t t0)
{
    enum evhttp_cmd_type method = evhttp_request_get_command(evreq);
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(evreq), "Allow", "GET, HEAD");
        respond_json_error(srv, c, evreq, route, 405, "method not allowed", t0);
        return;
    }
    switch (route->builtin) {
    case SRV_HEALTHZ:
        respond(srv, c, evreq, route, 200, "text/plain; charset=utf-8", "ok\n", 3, t0);
        return;
    case SRV_READYZ:
        if (fmw_server_ready(srv))
            respond(srv, c, evreq, route, 200, "text/plain; charset=utf-8", "ok\n", 3, t0);
        else
            respond(srv, c, evreq, route, 503, "text/plain; charset=utf-8",
                    atomic_load(&srv->draining) ? "draining\n" : "no certificate\n",
                    atomic_load(&srv->draining) ? 9 : 15, t0);
        return;
    case SRV_METRICS: {
        struct fmw_buf page;
        fmw_buf_init(&page, METRICS_PAGE_MAX);
        if (fmw_obs_render(srv->m.reg, &page) != FMW_OK)
            respond_json_error(srv, c, evreq, route, 500, "metrics unavailable", t0);
        else
            respond(srv, c, evreq, route, 200, FMW_OBS_CONTENT_TYPE, fmw_buf_cstr(&page), page.len,
                    t0);
        fmw_buf_free(&page);
        return;
    }
    case SRV_HANDLER:
        break;
    }
    respond_json_error(srv, c, evreq, route, 500, "internal error", t0);
}

static void submit_handler(struct fmw_server *srv, struct srv_conn *c, struct evhttp_request *evreq,
                           const struct srv_route *route, struct fmw_str path, struct fmw_str query,
                           uint64_t t0)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(evreq);
    size_t len = evbuffer_get_length(in);
    struct srv_job *job = srv_job_get(srv);
    if (!job) {
        respond_json_error(srv, c, evreq, route, 503, "out of memory", t0);
        return;
    }
    /* One contiguous copy at most (none when the body arrived in one piece), NUL-terminated. */
    unsigned char *body = NULL;
    if (evbuffer_add(in, "", 1) == 0)
        body = evbuffer_pullup(in, -1);
    if (!body) {
        srv_job_put(srv, job);
        respond_json_error(srv, c, evreq, route, 503, "out of memory", t0);
        return;
    }
    job->conn = c;
    c->refs++;
    job->evreq = evreq;
    job->route = route;
    job->req.path = path;
    job->req.query = query;
    job->req.body = (struct fmw_str){(const char *)body, len};
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(evreq), &addr, &port);
    snprintf(job->remote, sizeof(job->remote), "%s", addr ? addr : "");
    job->req.remote = job->remote;
    job->req.id = ++srv->next_request_id;
    job->req.received_ns = t0;
    uint64_t budget = (uint64_t)srv->cfg.handler_timeout_ms * 1000000u;
    uint64_t asked = query_timeout_ns(query);
    if (asked > 0 && asked < budget)
        budget = asked;
    job->req.deadline_ns = t0 + budget;
    srv->jobs_active++;
    fmw_obs_gauge_add(srv->m.in_flight, 1);
    if (route->inline_first && len <= srv->cfg.inline_max_body) {
        job->req.may_block = false;
        srv_job_run(job);
        if (job->handler_err != FMW_EAGAIN) {
            finish_job(srv, job);
            return;
        }
        srv_job_reset_response(srv, job);
    }
    job->req.may_block = true;
    srv_pool_submit(srv, job);
}

/*
 * Rejects bodies whose length two parties could read differently: several Content-Length
 * headers, or a Transfer-Encoding other than chunked (evhttp would ignore it and read the body as
 * the next request). Such a connection is closed after the 400, so nothing left in it is parsed.
 */
static bool ambiguous_framing(struct evhttp_request *evreq)
{
    const struct evkeyvalq *headers = evhttp_request_get_input_headers(evreq);
    int content_lengths = 0;
    for (const struct evkeyval *h = headers->tqh_first; h; h = h->next.tqe_next) {
        if (strcasecmp(h->key, "Content-Length") == 0)
            content_lengths++;
        else if (strcasecmp(h->key, "Transfer-Encoding") == 0 &&
                 strcasecmp(h->value, "chunked") != 0)
            return true;
    }
    return content_lengths > 1;
}

static void dispatch(struct fmw_server *srv, struct srv_conn *c, struct evhttp_request *evreq,
                     bool tls)
{
    uint64_t t0 = srv_now_ns();
    const char *uri = evhttp_request_get_uri(evreq);
    size_t path_len = strcspn(uri, "?#");
    struct fmw_str path = {uri, path_len};
    struct fmw_str query = {"", 0};
    if (uri[path_len] == '?') {
        query.ptr = uri + path_len + 1;
        query.len = strcspn(query.ptr, "#");
    }
    const struct srv_route *route = find_route(srv, uri, path_len, tls);
    if (ambiguous_framing(evreq)) {
        evhttp_add_header(evhttp_request_get_output_headers(evreq), "Connection", "close");
        respond_json_error(srv, c, evreq, route ? route : &srv->unmatched, 400,
                           "ambiguous message framing", t0);
        return;
    }
    if (!route) {
        respond_json_error(srv, c, evreq, &srv->unmatched, 404, "not found", t0);
        return;
    }
    if (route->builtin != SRV_HANDLER) {
        serve_builtin(srv, c, evreq, route, t0);
        return;
    }
    if (evhttp_request_get_command(evreq) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(evreq), "Allow", "POST");
        respond_json_error(srv, c, evreq, route, 405, "method not allowed", t0);
        return;
    }
    const char *ctype = evhttp_find_header(evhttp_request_get_input_headers(evreq), "Content-Type");
    if (!is_json_content_type(ctype)) {
        respond_json_error(srv, c, evreq, route, 415, "content type must be application/json", t0);
        return;
    }
    submit_handler(srv, c, evreq, route, path, query, t0);
}

static void tls_request_cb(struct evhttp_request *evreq, void *arg)
{
    struct fmw_server *srv = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    struct srv_conn *c = ssl ? srv_tls_conn_of(ssl) : NULL;
    if (!c) {
        /* A connection that could not get TLS (out of memory at accept): never serve it. */
        evhttp_send_error(evreq, 503, NULL);
        return;
    }
    evtimer_del(&c->deadline);
    c->reading = false;
    c->busy = true;
    /* A reference for the duration: a response can complete synchronously. */
    c->refs++;
    dispatch(srv, c, evreq, true);
    conn_release(c);
}

static void plain_request_cb(struct evhttp_request *evreq, void *arg)
{
    dispatch(arg, NULL, evreq, false);
}

/* ---- lifecycle ---- */

static enum fmw_err copy_config(struct fmw_server *srv, const struct fmw_server_config *cfg,
                                struct fmw_diag *diag)
{
    static const struct {
        const char *path;
        enum srv_builtin builtin;
    } builtins[] = {{"/healthz", SRV_HEALTHZ}, {"/readyz", SRV_READYZ}, {"/metrics", SRV_METRICS}};

    if (!cfg->cert_file || !cfg->key_file)
        return fmw_diag_set(diag, FMW_EUSAGE, "a certificate file and a key file are required");
    if (cfg->workers == 0 || cfg->workers > 64)
        return fmw_diag_set(diag, FMW_EUSAGE, "workers must be 1..64");
    if (cfg->max_connections == 0 || cfg->max_body == 0 || cfg->max_headers < 256 ||
        cfg->request_timeout_ms == 0 || cfg->idle_timeout_ms == 0 || cfg->handler_timeout_ms == 0 ||
        cfg->grace_ms == 0)
        return fmw_diag_set(diag, FMW_EUSAGE, "limits and timeouts must be positive");
    if (cfg->max_body > (size_t)INT32_MAX || cfg->max_response > (size_t)INT32_MAX)
        return fmw_diag_set(diag, FMW_EUSAGE, "body caps must be below 2 GiB");
    if (cfg->tls_port < 0 || cfg->tls_port > 65535 || cfg->plain_port > 65535)
        return fmw_diag_set(diag, FMW_EUSAGE, "bad port");

    srv->cfg = *cfg;
    srv->cfg.tls_host = fmw_strdup(cfg->tls_host ? cfg->tls_host : "0.0.0.0");
    srv->cfg.plain_host = fmw_strdup(cfg->plain_host ? cfg->plain_host : "0.0.0.0");
    srv->cfg.cert_file = fmw_strdup(cfg->cert_file);
    srv->cfg.key_file = fmw_strdup(cfg->key_file);
    srv->cfg.client_ca_file = cfg->client_ca_file ? fmw_strdup(cfg->client_ca_file) : NULL;
    srv->cfg.routes = NULL;
    if (!srv->cfg.tls_host || !srv->cfg.plain_host || !srv->cfg.cert_file || !srv->cfg.key_file ||
        (cfg->client_ca_file && !srv->cfg.client_ca_file))
        return fmw_diag_set(diag, FMW_ENOMEM, "out of memory");

    for (size_t i = 0; i < 3; i++) {
        srv->builtins[i].path = fmw_strdup(builtins[i].path);
        if (!srv->builtins[i].path)
            return fmw_diag_set(diag, FMW_ENOMEM, "out of memory");
        srv->builtins[i].path_len = strlen(builtins[i].path);
        srv->builtins[i].builtin = builtins[i].builtin;
    }
    srv->unmatched.path = fmw_strdup("unmatched");
    if (!srv->unmatched.path)
        return fmw_diag_set(diag, FMW_ENOMEM, "out of memory");

    srv->routes = fmw_calloc(cfg->n_routes, sizeof(*srv->routes));
    if (!srv->routes)
        return fmw_diag_set(diag, FMW_ENOMEM, "out of memory");
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct fmw_server_route *r = &cfg->routes[i];
        if (!r->path || r->path[0] != '/' || !r->fn || strpbrk(r->path, "?#"))
            return fmw_diag_set(diag, FMW_EUSAGE,
                                "route %zu: a path starting with / and a "
                                "handler are required",
                                i);
        size_t len = strlen(r->path);
        if (find_route(srv, r->path, len, true))
            return fmw_diag_set(diag, FMW_EUSAGE, "route %s is defined twice", r->path);
        srv->routes[i].path = fmw_strdup(r->path);
        if (!srv->routes[i].path)
            return fmw_diag_set(diag, FMW_ENOMEM, "out of memory");
        srv->routes[i].path_len = len;
        srv->routes[i].builtin = SRV_HANDLER;
        srv->routes[i].fn = r->fn;
        srv->routes[i].ctx = r->ctx;
        srv->routes[i].inline_first = r->inline_first;
        srv->n_routes++;
    }
    return FMW_OK;
}

static enum fmw_err listen_on(struct fmw_server *srv, struct evhttp *http, const char *host,
                              int port, struct evhttp_bound_socket **sock, int *bound_port,
                              struct fmw_diag *diag)
{
    *sock = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)port);
    if (!*sock)
        return fmw_diag_set(diag, FMW_EIO, "cannot listen on %s:%d: %s", host, port,
                            strerror(errno));
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(*sock);
    /* Accepted sockets inherit TCP_NODELAY on Linux. Without it, a response written as two TLS
     * records waits for the client's delayed ACK: 40 ms per request. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return fmw_diag_set(diag, FMW_EIO, "getsockname: %s", strerror(errno));
    *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    (void)srv;
    return FMW_OK;
}

static struct evhttp *http_new(struct fmw_server *srv)
{
    struct evhttp *http = evhttp_new(srv->base);
    if (!http)
        return NULL;
    struct timeval idle = ms_tv(srv->cfg.idle_timeout_ms);
    evhttp_set_timeout_tv(http, &idle);
    evhttp_set_max_body_size(http, (ev_ssize_t)srv->cfg.max_body);
    evhttp_set_max_headers_size(http, (ev_ssize_t)srv->cfg.max_headers);
    /* Every method but CONNECT reaches our routing, so a wrong one gets 405 rather than 501. */
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                         EVHTTP_REQ_TRACE | EVHTTP_REQ_PATCH);
    return http;
}

enum fmw_err fmw_server_new(const struct fmw_server_config *cfg, struct fmw_server **out,
                            struct fmw_diag *diag)
{
    enum fmw_err err = FMW_OK;
    struct fmw_server *srv = calloc(1, sizeof(*srv));
    *out = NULL;
    if (!srv)
        return fmw_diag_set(diag, FMW_ENOMEM, "out of memory");
    srv->inotify_fd = -1;
    srv->wake_fd = -1;
    srv->tls_port = -1;
    srv->plain_port = -1;
    pthread_mutex_init(&srv->queue_mu, NULL);
    pthread_cond_init(&srv->queue_cond, NULL);
    pthread_mutex_init(&srv->done_mu, NULL);
    atomic_init(&srv->shutdown_requested, 0);
    atomic_init(&srv->reload_requested, 0);
    atomic_init(&srv->draining, 0);

    err = copy_config(srv, cfg, diag);
    if (err != FMW_OK)
        goto out;

    /* A peer that disappears mid-write must cost a connection, not the process. */
    signal(SIGPIPE, SIG_IGN);

    srv->m.reg = cfg->metrics;
    if (!srv->m.reg) {
        srv->m.reg = srv->own_registry = fmw_obs_registry_new();
        if (!srv->m.reg) {
            err = fmw_diag_set(diag, FMW_ENOMEM, "out of memory");
            goto out;
        }
    }
    err = metrics_init(srv);
    if (err != FMW_OK) {
        fmw_diag_set(diag, err, "cannot register server metrics");
        goto out;
    }
    for (size_t i = 0; i < 3; i++)
        srv->builtins[i].duration = fmw_obs_series1(srv->m.duration, srv->builtins[i].path);
    for (size_t i = 0; i < srv->n_routes; i++)
        srv->routes[i].duration = fmw_obs_series1(srv->m.duration, srv->routes[i].path);
    srv->unmatched.duration = fmw_obs_series1(srv->m.duration, srv->unmatched.path);

    srv->base = event_base_new();
    if (!srv->base) {
        err = fmw_diag_set(diag, FMW_ENOMEM, "cannot create event base");
        goto out;
    }
    srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->wake_fd < 0) {
        err = fmw_diag_set(diag, FMW_EIO, "eventfd: %s", strerror(errno));
        goto out;
    }
    event_assign(&srv->wake_ev, srv->base, srv->wake_fd, EV_READ | EV_PERSIST, wake_cb, srv);
    event_add(&srv->wake_ev, NULL);
    evtimer_assign(&srv->drain_timer, srv->base, drain_timer_cb, srv);
    evtimer_assign(&srv->grace_timer, srv->base, grace_timer_cb, srv);
    evtimer_assign(&srv->trim_timer, srv->base, trim_timer_cb, srv);
    srv->events_inited = true;

    err = srv_tls_init(srv, diag);
    if (err != FMW_OK)
        goto out;

    srv->http = http_new(srv);
    if (!srv->http) {
        err = fmw_diag_set(diag, FMW_ENOMEM, "cannot create HTTP server");
        goto out;
    }
    evhttp_set_bevcb(srv->http, tls_bevcb, srv);
    evhttp_set_gencb(srv->http, tls_request_cb, srv);
    err = listen_on(srv, srv->http, srv->cfg.tls_host, srv->cfg.tls_port, &srv->tls_sock,
                    &srv->tls_port, diag);
    if (err != FMW_OK)
        goto out;

    if (srv->cfg.plain_port >= 0) {
        srv->plain = http_new(srv);
        if (!srv->plain) {
            err = fmw_diag_set(diag, FMW_ENOMEM, "cannot create HTTP server");
            goto out;
        }
        evhttp_set_gencb(srv->plain, plain_request_cb, srv);
        err = listen_on(srv, srv->plain, srv->cfg.plain_host, srv->cfg.plain_port, &srv->plain_sock,
                        &srv->plain_port, diag);
        if (err != FMW_OK)
            goto out;
    }
    fmw_obs_gauge_set(srv->m.ready, fmw_server_ready(srv) ? 1 : 0);

    err = srv_pool_start(srv, diag);
    if (err != FMW_OK)
        goto out;

    *out = srv;
    srv = NULL;
out:
    fmw_server_free(srv);
    return err;
}

int fmw_server_tls_port(const struct fmw_server *srv)
{
    return srv->tls_port;
}

int fmw_server_plain_port(const struct fmw_server *srv)
{
    return srv->plain ? srv->plain_port : -1;
}

bool fmw_server_ready(const struct fmw_server *srv)
{
    return srv->cert_loaded && !atomic_load(&srv->draining);
}

void fmw_server_shutdown(struct fmw_server *srv)
{
    atomic_store(&srv->shutdown_requested, 1);
    srv_wake(srv);
}

void fmw_server_reload(struct fmw_server *srv)
{
    atomic_store(&srv->reload_requested, 1);
    srv_wake(srv);
}

enum fmw_err fmw_server_run(struct fmw_server *srv)
{
    struct fmw_log_line line;
    fmw_log_begin(&line, FMW_LOG_INFO, "serving");
    fmw_log_int(&line, "tls_port", srv->tls_port);
    fmw_log_int(&line, "plain_port", fmw_server_plain_port(srv));
    fmw_log_uint(&line, "workers", srv->cfg.workers);
    fmw_log_bool(&line, "ready", fmw_server_ready(srv));
    fmw_log_end(&line);

    int rc = event_base_dispatch(srv->base);
    if (rc < 0)
        return FMW_EIO;
    if (srv->forced)
        return FMW_ETIMEDOUT;
    fmw_logf(FMW_LOG_INFO, "drained, stopping");
    return FMW_OK;
}

void fmw_server_free(struct fmw_server *srv)
{
    if (!srv)
        return;
    if (srv->threads)
        srv_pool_stop(srv);
    /* Finished jobs: a request whose connection is gone belongs to nobody else and is freed
     * here; one whose connection lives is freed with it by evhttp_free(). */
    struct srv_job *job = srv_pool_take_done(srv);
    while (job) {
        struct srv_job *next = job->next;
        if (job->evreq && !evhttp_request_get_connection(job->evreq))
            evhttp_request_free(job->evreq);
        if (job->conn)
            conn_release(job->conn);
        fmw_buf_free(&job->resp.body);
        free(job);
        job = next;
    }
    while (srv->free_jobs) {
        struct srv_job *next = srv->free_jobs->next;
        fmw_buf_free(&srv->free_jobs->resp.body);
        free(srv->free_jobs);
        srv->free_jobs = next;
    }
    /* From here connections die without the bookkeeping a live server needs. */
    srv->tearing_down = true;
    for (struct srv_conn *c = srv->conns; c; c = c->next)
        event_del(&c->deadline);
    if (srv->http)
        evhttp_free(srv->http);
    if (srv->plain)
        evhttp_free(srv->plain);
    srv_tls_cleanup(srv);
    if (srv->events_inited) {
        event_del(&srv->wake_ev);
        event_del(&srv->drain_timer);
        event_del(&srv->grace_timer);
        event_del(&srv->trim_timer);
    }
    /* Runs the pending finalizers, which free the remaining connections' SSL objects. */
    if (srv->base)
        event_base_free(srv->base);
    if (srv->wake_fd >= 0)
        close(srv->wake_fd);
    for (size_t i = 0; i < srv->n_routes; i++)
        free(srv->routes[i].path);
    free(srv->routes);
    for (size_t i = 0; i < 3; i++)
        free(srv->builtins[i].path);
    free(srv->unmatched.path);
    free((char *)srv->cfg.tls_host);
    free((char *)srv->cfg.plain_host);
    free((char *)srv->cfg.cert_file);
    free((char *)srv->cfg.key_file);
    free((char *)srv->cfg.client_ca_file);
    fmw_obs_registry_free(srv->own_registry);
    pthread_mutex_destroy(&srv->queue_mu);
    pthread_cond_destroy(&srv->queue_cond);
    pthread_mutex_destroy(&srv->done_mu);
    free(srv);
}
