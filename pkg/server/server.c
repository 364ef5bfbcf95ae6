/*
 * The server's event loop: listeners, routing, built-in endpoints, the hand-off to workers and
 * back, and the drain. Connections themselves (TLS, HTTP/1.1, deadlines) are conn.c's.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include <event2/listener.h>

#include "pkg/obs/obs.h"
#include "pkg/server/server_int.h"

#define MIB (1024u * 1024u)
/* Cap of a /metrics page; the registry caps series, so this is generous. */
#define METRICS_PAGE_MAX (4 * MIB)

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
    cfg->max_bodies = 24 * MIB;
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

void srv_set_listeners_paused(struct fmw_server *srv, bool pause)
{
    if (srv->listeners_paused == pause || !srv->tls_listener)
        return;
    srv->listeners_paused = pause;
    if (srv->rest[1].resting)
        return; /* accept_timer_cb enables it, or not, when the rest is over */
    if (pause)
        evconnlistener_disable(srv->tls_listener);
    else
        evconnlistener_enable(srv->tls_listener);
}

/* A listener's rest after accept(2) errors is over: it listens again (the TLS listener unless it
 * is full). */
static void accept_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct srv_rest *r = arg;
    struct fmw_server *srv = r->srv;
    (void)fd, (void)what;
    r->resting = false;
    if (r->tls && srv->tls_listener && !srv->listeners_paused)
        evconnlistener_enable(srv->tls_listener);
    if (!r->tls && srv->plain_listener)
        evconnlistener_enable(srv->plain_listener);
}

/*
 * accept(2) failed. Out of descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM), the waiting
 * connection keeps the listener readable, and libevent would call accept again at once, for
 * ever: that listener rests instead, 10 ms doubling to 1 s while its errors last (a successful
 * accept in between or not: the descriptor a closed connection gives back is taken at once;
 * after 5 s without one it starts over), with one log line per rest. A reclaimable connection,
 * a TLS one first (where floods come from), is closed to give a descriptor back. The other
 * listener goes on: a flood of the admission port must not starve the probes. Other errors (the
 * client gave up: ECONNABORTED) are the kernel's business and need nothing.
 */
void srv_conn_accept_error(struct evconnlistener *l, void *arg)
{
    struct fmw_server *srv = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM)
        return;
    struct srv_rest *r = &srv->rest[l == srv->tls_listener];
    if (r->resting)
        return;
    struct srv_conn *victim = srv_conn_victim(srv, true, NULL);
    if (!victim)
        victim = srv_conn_victim(srv, false, NULL);
    if (victim)
        srv_conn_close(victim);
    uint64_t now = fmw_now_ns();
    bool recent = r->backoff_ms && now - r->error_ns < 5000000000u;
    r->error_ns = now;
    r->backoff_ms = recent ? r->backoff_ms * 2 : SRV_ACCEPT_BACKOFF_MIN_MS;
    if (r->backoff_ms > SRV_ACCEPT_BACKOFF_MAX_MS)
        r->backoff_ms = SRV_ACCEPT_BACKOFF_MAX_MS;
    fmw_logf(FMW_LOG_WARN, "accept on the %s port: %s; it rests %u ms%s",
             r->tls ? "admission" : "health", strerror(e), r->backoff_ms,
             victim ? " (a connection closed to free a descriptor)" : "");
    r->resting = true;
    evconnlistener_disable(l);
    struct timeval tv = {(time_t)(r->backoff_ms / 1000),
                         (suseconds_t)(r->backoff_ms % 1000) * 1000};
    evtimer_add(&r->timer, &tv);
}

static void maybe_finish_drain(struct fmw_server *srv)
{
    if (srv->closing && srv->n_conns == 0 && srv->jobs_active == 0)
        event_base_loopbreak(srv->base);
}

/* The allocator keeps memory freed by a burst of connections or by a heavy review (a worker's
 * arena, a large body); an idle webhook should be small again. The buffer pool goes only once no
 * connection is left; the heap is trimmed (malloc_trim is glibc's, which is what Debian has) a
 * second after the last connection closed or after a worker's review, at most once a second. */
static void trim_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fmw_server *srv = arg;
    (void)fd, (void)what;
    if (srv->n_conns == 0)
        srv_bufpool_drain(srv);
    malloc_trim(0);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    srv_conn_reap(arg, false);
}

void srv_schedule_trim(struct fmw_server *srv)
{
    if (srv->tearing_down || !srv->events_inited || evtimer_pending(&srv->trim_timer, NULL))
        return;
    struct timeval tv = {1, 0};
    evtimer_add(&srv->trim_timer, &tv);
}

void srv_conn_gone(struct fmw_server *srv, struct srv_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    srv->n_conns--;
    if (c->counted) {
        srv->n_tls--;
        fmw_obs_gauge_add(srv->m.connections, -1);
    } else {
        srv->n_plain--;
    }
    if (srv->tearing_down)
        return;
    if (srv->n_tls < srv->cfg.max_connections && !srv->closing)
        srv_set_listeners_paused(srv, false);
    if (srv->n_conns == 0)
        srv_schedule_trim(srv);
    maybe_finish_drain(srv);
}

/* ---- responses ---- */

static void finish_job(struct fmw_server *srv, struct srv_job *job)
{
    struct srv_conn *c = job->conn;
    /* Released first: answering may run the next pipelined request, whose job holds it anew
     * (the memory stays until the reaper, which runs after this callback). */
    c->job_holds = false;
    srv->jobs_active--;
    fmw_obs_gauge_add(srv->m.in_flight, -1);
    srv_schedule_trim(srv); /* what the review allocated is free now */
    if (job->handler_err != FMW_OK) {
        struct fmw_log_line line;
        fmw_log_begin(&line, FMW_LOG_ERROR, "handler failed");
        fmw_log_str(&line, "route", job->route->path);
        fmw_log_uint(&line, "request_id", job->req.id);
        fmw_log_str(&line, "error", fmw_strerror(job->handler_err));
        fmw_log_end(&line);
        srv_conn_respond_error(c, job->route, 500, "internal error", NULL, job->req.received_ns);
    } else {
        const struct fmw_buf *b = &job->resp.body;
        /* A final status: an interim one (1xx) would leave the client waiting for another. */
        int status = job->resp.status >= 200 && job->resp.status <= 599 ? job->resp.status : 500;
        const char *ctype = job->resp.content_type ? job->resp.content_type : "application/json";
        srv_conn_respond(c, job->route, status, ctype, NULL, b->data ? b->data : "",
                         b->data ? b->len : 0, job->req.received_ns);
    }
    job->conn = NULL;
    srv_job_put(srv, job);
    if (c->state == SRV_C_CLOSED)
        srv_conn_reap_soon(srv); /* the client left while the worker had it */
}

/* ---- drain ---- */

static void begin_closing(struct fmw_server *srv)
{
    if (srv->closing)
        return;
    srv->closing = true;
    fmw_logf(FMW_LOG_INFO, "drain delay over: closing listeners and idle connections");
    if (srv->tls_listener)
        evconnlistener_free(srv->tls_listener);
    srv->tls_listener = NULL;
    if (srv->plain_listener)
        evconnlistener_free(srv->plain_listener);
    srv->plain_listener = NULL;
    /* Idle: between requests, nothing buffered. Busy and half-read connections finish their
     * request, whose response then carries Connection: close. */
    for (struct srv_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        srv_conn_close_if_idle(c);
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

static bool is_json_content_type(const struct fmw_http1_head *h)
{
    static const char want[] = "application/json";
    if (!h->has_content_type)
        return false;
    const char *ct = h->content_type.ptr, *end = ct + h->content_type.len;
    while (ct < end && (*ct == ' ' || *ct == '\t'))
        ct++;
    if ((size_t)(end - ct) < sizeof(want) - 1 || strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return false;
    const char *rest = ct + sizeof(want) - 1;
    while (rest < end && (*rest == ' ' || *rest == '\t'))
        rest++;
    return rest == end || *rest == ';';
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

static void serve_builtin(struct fmw_server *srv, struct srv_conn *c, const struct srv_route *route,
                          uint64_t t0)
{
    static const char TEXT[] = "text/plain; charset=utf-8";
    switch (route->builtin) {
    case SRV_HEALTHZ:
        srv_conn_respond(c, route, 200, TEXT, NULL, "ok\n", 3, t0);
        return;
    case SRV_READYZ:
        if (fmw_server_ready(srv))
            srv_conn_respond(c, route, 200, TEXT, NULL, "ok\n", 3, t0);
        else if (atomic_load(&srv->draining))
            srv_conn_respond(c, route, 503, TEXT, NULL, "draining\n", 9, t0);
        else
            srv_conn_respond(c, route, 503, TEXT, NULL, "no certificate\n", 15, t0);
        return;
    case SRV_METRICS: {
        struct fmw_buf page;
        fmw_buf_init(&page, METRICS_PAGE_MAX);
        if (fmw_obs_render(srv->m.reg, &page) != FMW_OK)
            srv_conn_respond_error(c, route, 500, "metrics unavailable", NULL, t0);
        else
            srv_conn_respond(c, route, 200, FMW_OBS_CONTENT_TYPE, NULL, fmw_buf_cstr(&page),
                             page.len, t0);
        fmw_buf_free(&page);
        return;
    }
    case SRV_HANDLER:
        break;
    }
    srv_conn_respond_error(c, route, 500, "internal error", NULL, t0);
}

static void submit_handler(struct fmw_server *srv, struct srv_conn *c,
                           const struct srv_route *route, struct fmw_str path, struct fmw_str query,
                           const char *body, size_t len, uint64_t t0)
{
    struct srv_job *job = srv_job_get(srv);
    if (!job) {
        srv_conn_respond_error(c, route, 503, "out of memory", NULL, t0);
        return;
    }
    job->conn = c;
    c->job_holds = true;
    job->route = route;
    job->req.path = path;
    job->req.query = query;
    job->req.body = (struct fmw_str){body, len};
    snprintf(job->remote, sizeof(job->remote), "%s", c->remote);
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

/* Where a request goes, as its head says: the route (the "unmatched" one when none), path and
 * query, and the status it is refused with before anything runs (0: served), with its reason
 * and the header lines that go with it. */
struct routing {
    const struct srv_route *route;
    struct fmw_str path, query;
    int refuse;
    const char *why, *extra;
};

static void route_request(const struct srv_conn *c, struct routing *r)
{
    const struct fmw_server *srv = c->srv;
    const char *uri = c->head.target.ptr;
    size_t uri_len = c->head.target.len;
    size_t path_len = 0;
    while (path_len < uri_len && uri[path_len] != '?' && uri[path_len] != '#')
        path_len++;
    memset(r, 0, sizeof *r);
    r->path = (struct fmw_str){uri, path_len};
    r->query = (struct fmw_str){"", 0};
    if (path_len < uri_len && uri[path_len] == '?') {
        r->query.ptr = uri + path_len + 1;
        while (path_len + 1 + r->query.len < uri_len && r->query.ptr[r->query.len] != '#')
            r->query.len++;
    }
    r->route = find_route(srv, uri, path_len, c->ssl != NULL);
    enum fmw_http1_method m = c->head.method;
    if (!r->route) {
        r->route = &srv->unmatched;
        r->refuse = 404;
        r->why = "not found";
    } else if (r->route->builtin != SRV_HANDLER ? m != FMW_HTTP1_GET && m != FMW_HTTP1_HEAD
                                                : m != FMW_HTTP1_POST) {
        r->refuse = 405;
        r->why = "method not allowed";
        r->extra = r->route->builtin != SRV_HANDLER ? "Allow: GET, HEAD\r\n" : "Allow: POST\r\n";
    } else if (r->route->builtin == SRV_HANDLER && !is_json_content_type(&c->head)) {
        r->refuse = 415;
        r->why = "content type must be application/json";
    }
}

bool srv_refused_early(const struct srv_conn *c)
{
    struct routing r;
    route_request(c, &r);
    return r.refuse != 0;
}

void srv_dispatch(struct srv_conn *c, const char *body, size_t body_len, uint64_t t0)
{
    struct routing r;
    route_request(c, &r);
    if (r.refuse)
        srv_conn_respond_error(c, r.route, r.refuse, r.why, r.extra, t0);
    else if (r.route->builtin != SRV_HANDLER)
        serve_builtin(c->srv, c, r.route, t0);
    else
        submit_handler(c->srv, c, r.route, r.path, r.query, body, body_len, t0);
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
    if (cfg->max_connections == 0 || cfg->max_body == 0 || cfg->max_bodies < cfg->max_body ||
        cfg->max_headers < 256 || cfg->request_timeout_ms == 0 || cfg->idle_timeout_ms == 0 ||
        cfg->handler_timeout_ms == 0 || cfg->grace_ms == 0)
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

/* A listening socket on host:port (numeric or a name), non-blocking, with TCP_NODELAY for the
 * connections it accepts, wrapped in a libevent listener. */
static enum fmw_err listen_on(struct fmw_server *srv, const char *host, int port,
                              struct evconnlistener **out, int *bound_port, struct fmw_diag *diag)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0)
        return fmw_diag_set(diag, FMW_EIO, "cannot listen on %s:%d: %s", host, port,
                            gai_strerror(rc));
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* Accepted sockets inherit TCP_NODELAY on Linux. Without it, a response written after
         * the 100-continue line waits for the client's delayed ACK. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return fmw_diag_set(diag, FMW_EIO, "cannot listen on %s:%d: %s", host, port,
                            strerror(saved));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        close(fd);
        return fmw_diag_set(diag, FMW_EIO, "getsockname: %s", strerror(errno));
    }
    *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    /* Backlog 0: the socket already listens. */
    *out = evconnlistener_new(srv->base, srv_conn_accept, srv,
                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!*out) {
        close(fd);
        return fmw_diag_set(diag, FMW_ENOMEM, "cannot create a listener");
    }
    evconnlistener_set_error_cb(*out, srv_conn_accept_error);
    return FMW_OK;
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
    event_assign(&srv->reap_ev, srv->base, -1, 0, reap_cb, srv);
    for (int i = 0; i < 2; i++) {
        srv->rest[i].srv = srv;
        srv->rest[i].tls = i == 1;
        evtimer_assign(&srv->rest[i].timer, srv->base, accept_timer_cb, &srv->rest[i]);
    }
    srv->events_inited = true;

    err = srv_tls_init(srv, diag);
    if (err != FMW_OK)
        goto out;

    err = listen_on(srv, srv->cfg.tls_host, srv->cfg.tls_port, &srv->tls_listener, &srv->tls_port,
                    diag);
    if (err != FMW_OK)
        goto out;

    if (srv->cfg.plain_port >= 0) {
        err = listen_on(srv, srv->cfg.plain_host, srv->cfg.plain_port, &srv->plain_listener,
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
    return srv->cfg.plain_port >= 0 ? srv->plain_port : -1;
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
    /* Finished jobs that were never answered: their connections are freed with the rest. */
    struct srv_job *job = srv_pool_take_done(srv);
    while (job) {
        struct srv_job *next = job->next;
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
    while (srv->conns)
        srv_conn_close(srv->conns);
    srv_conn_reap(srv, true);
    if (srv->tls_listener)
        evconnlistener_free(srv->tls_listener);
    if (srv->plain_listener)
        evconnlistener_free(srv->plain_listener);
    srv_bufpool_drain(srv);
    srv_tls_cleanup(srv);
    if (srv->events_inited) {
        event_del(&srv->wake_ev);
        event_del(&srv->drain_timer);
        event_del(&srv->grace_timer);
        event_del(&srv->trim_timer);
        event_del(&srv->reap_ev);
        event_del(&srv->rest[0].timer);
        event_del(&srv->rest[1].timer);
    }
    /* Frees the base and its events (the connections are gone: srv_conn_reap above). */
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
