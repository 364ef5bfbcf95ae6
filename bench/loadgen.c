/*
 * bench/loadgen: the benchmark's load generator, over TLS on loopback.
 *
 *   loadgen rate      open-loop constant rate: request i is due at start + i/rate whatever
 *                     happened before it; its latency is measured from that scheduled time, not
 *                     from when a connection was free to send it, so a stalled server is charged
 *                     for the whole queue it caused (no coordinated omission). Keep-alive
 *                     connections, one request in flight on each, as the API server calls webhooks.
 *   loadgen handshake sequential new connections (full handshakes, or resumed with the session
 *                     of the previous one), one request each; client-side handshake latency.
 *   loadgen ready     starts a server (pinned to a CPU), measures exec to the first 200 answer to
 *                     a real request, prints it, and stops the server when stdin closes.
 *
 * Results are one JSON object on stdout. Every loop is bounded: by request count and a deadline.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE_CAP (8u << 20)

struct opts {
    const char *host;
    int port;
    const char *ca;
    const char *body_file;
    const char *path;
    double rate;
    double duration_s;
    double warmup_s;
    unsigned connections;
    unsigned timeout_ms;
    unsigned count;
    bool resume;
    int cpu;
    char **cmd;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s\n", what);
    exit(2);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open the body file");
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || st.st_size > (64 << 20))
        die("body file is empty or too big");
    char *buf = malloc((size_t)st.st_size);
    if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        die("cannot read the body file");
    fclose(f);
    *len = (size_t)st.st_size;
    return buf;
}

/* The whole HTTP request, headers and body, sent as is on every request. */
static char *build_request(const struct opts *o, size_t *len)
{
    size_t body_len;
    char *body = read_file(o->body_file, &body_len);
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                     "Accept: application/json\r\nContent-Length: %zu\r\n\r\n",
                     o->path, o->host, o->port, body_len);
    char *req = malloc((size_t)n + body_len);
    if (!req)
        die("out of memory");
    memcpy(req, head, (size_t)n);
    memcpy(req + n, body, body_len);
    free(body);
    *len = (size_t)n + body_len;
    return req;
}

static SSL_CTX *client_ctx(const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (ca) {
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
            die("cannot load the CA file");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

static int tcp_connect(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        die("--host must be an IPv4 loopback address");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A blocking TLS connection; NULL when it cannot be made. `session` (may be NULL) is offered. */
static SSL *tls_connect(SSL_CTX *ctx, const struct opts *o, SSL_SESSION *session, int *fd_out)
{
    int fd = tcp_connect(o->host, o->port);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, o->host);
    if (session)
        SSL_set_session(ssl, session);
    if (SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    *fd_out = fd;
    return ssl;
}

/* ---- HTTP response parsing (just what our two servers send) ---- */

struct response {
    char *buf;
    size_t len, cap;
    size_t head_len; /* 0 until the header block is complete */
    size_t content_length;
    int status;
};

/* Appends; returns 1 when a whole response is in, 0 when more is needed, -1 on a bad one. */
static int response_feed(struct response *r, const char *data, size_t n)
{
    if (r->len + n > RESPONSE_CAP)
        return -1;
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + n)
            cap *= 2;
        char *b = realloc(r->buf, cap);
        if (!b)
            return -1;
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    if (!r->head_len) {
        char *end = memmem(r->buf, r->len, "\r\n\r\n", 4);
        if (!end)
            return 0;
        r->head_len = (size_t)(end - r->buf) + 4;
        if (r->len < 12 || memcmp(r->buf, "HTTP/1.1 ", 9) != 0)
            return -1;
        r->status = atoi(r->buf + 9);
        r->content_length = 0;
        bool have_length = false;
        for (char *p = r->buf; p < end; p++) {
            if ((p == r->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
                r->content_length = strtoul(p + 15, NULL, 10);
                have_length = true;
            }
        }
        if (!have_length)
            return -1;
    }
    return r->len >= r->head_len + r->content_length ? 1 : 0;
}

/* True when the body is an AdmissionReview answer that allows the object. */
static bool response_ok(const struct response *r)
{
    return r->status == 200 &&
           memmem(r->buf + r->head_len, r->content_length, "\"allowed\":true", 14) != NULL;
}

static void response_reset(struct response *r)
{
    r->len = r->head_len = r->content_length = 0;
    r->status = 0;
}

/* One request on a blocking connection: true on an allowed answer. */
static bool blocking_exchange(SSL *ssl, const char *req, size_t req_len, struct response *r)
{
    response_reset(r);
    size_t off = 0;
    while (off < req_len) {
        int n = SSL_write(ssl, req + off, (int)(req_len - off));
        if (n <= 0)
            return false;
        off += (size_t)n;
    }
    char buf[16384];
    for (;;) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0)
            return false;
        int done = response_feed(r, buf, (size_t)n);
        if (done < 0)
            return false;
        if (done)
            return response_ok(r);
    }
}

/* ---- open-loop constant rate ---- */

struct conn {
    int fd;
    SSL *ssl;
    bool busy;
    uint64_t scheduled_ns; /* of the request in flight */
    size_t written;
    bool want_write;
    struct response resp;
};

struct run {
    const struct opts *o;
    SSL_CTX *ctx;
    int ep;
    struct conn *conns;
    const char *req;
    size_t req_len;
    uint64_t *lat; /* latencies of recorded requests, ns */
    size_t n_lat;
    uint64_t start_ns, warm_ns;
    uint64_t ok, errors, timeouts, reconnects;
};

static void conn_close(struct run *r, struct conn *c)
{
    if (c->ssl) {
        epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
        SSL_free(c->ssl);
        close(c->fd);
    }
    c->ssl = NULL;
    c->fd = -1;
    c->busy = false;
}

static bool conn_open(struct run *r, struct conn *c)
{
    c->ssl = tls_connect(r->ctx, r->o, NULL, &c->fd);
    if (!c->ssl)
        return false;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->busy = false;
    c->want_write = false;
    return true;
}

static void record(struct run *r, struct conn *c, bool ok)
{
    uint64_t lat = now_ns() - c->scheduled_ns;
    bool timed_out = lat > (uint64_t)r->o->timeout_ms * 1000000u;
    if (ok && !timed_out)
        r->ok++;
    else if (timed_out)
        r->timeouts++;
    else
        r->errors++;
    if (c->scheduled_ns >= r->warm_ns)
        r->lat[r->n_lat++] = lat;
    c->busy = false;
}

/* A failed connection: the request in flight is an error, and the connection is made anew. */
static void conn_fail(struct run *r, struct conn *c)
{
    if (c->busy)
        record(r, c, false);
    conn_close(r, c);
    r->reconnects++;
    conn_open(r, c);
}

static void set_write_interest(struct run *r, struct conn *c, bool on)
{
    if (c->want_write == on)
        return;
    c->want_write = on;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_write(struct run *r, struct conn *c)
{
    while (c->written < r->req_len) {
        int n = SSL_write(c->ssl, r->req + c->written, (int)(r->req_len - c->written));
        if (n > 0) {
            c->written += (size_t)n;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            set_write_interest(r, c, true);
            return;
        }
        conn_fail(r, c);
        return;
    }
    set_write_interest(r, c, false);
}

static void conn_read(struct run *r, struct conn *c)
{
    char buf[65536];
    for (;;) {
        int n = SSL_read(c->ssl, buf, sizeof buf);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return;
            conn_fail(r, c);
            return;
        }
        if (!c->busy) { /* bytes nobody asked for */
            conn_fail(r, c);
            return;
        }
        int done = response_feed(&c->resp, buf, (size_t)n);
        if (done < 0) {
            conn_fail(r, c);
            return;
        }
        if (done) {
            record(r, c, response_ok(&c->resp));
            response_reset(&c->resp);
        }
    }
}

static void send_on(struct run *r, struct conn *c, uint64_t scheduled)
{
    c->busy = true;
    c->scheduled_ns = scheduled;
    c->written = 0;
    response_reset(&c->resp);
    conn_write(r, c);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1e6;
}

static int cmd_rate(const struct opts *o)
{
    if (o->rate <= 0 || o->duration_s <= 0 || o->connections == 0)
        die("rate needs --rate, --duration and --connections > 0");
    double total_s = o->warmup_s + o->duration_s;
    uint64_t total = (uint64_t)(o->rate * total_s);
    if (total == 0 || total > 50000000u)
        die("rate x duration out of range");
    struct run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.ctx = client_ctx(o->ca);
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    r.req = build_request(o, &r.req_len);
    r.lat = malloc(sizeof *r.lat * total);
    r.conns = calloc(o->connections, sizeof *r.conns);
    if (!r.lat || !r.conns)
        die("out of memory");
    for (unsigned i = 0; i < o->connections; i++) {
        r.conns[i].fd = -1;
        if (!conn_open(&r, &r.conns[i]))
            die("cannot connect");
    }
    double interval_ns = 1e9 / o->rate;
    r.start_ns = now_ns() + 1000000u;
    r.warm_ns = r.start_ns + (uint64_t)(o->warmup_s * 1e9);
    uint64_t next = 0;        /* requests scheduled so far */
    uint64_t queued_from = 0; /* first scheduled request not yet sent */
    /* Outstanding requests are given the timeout, then the run ends (bounded). */
    uint64_t hard_end =
        r.start_ns + (uint64_t)(total_s * 1e9) + (uint64_t)o->timeout_ms * 1000000u + 1000000000u;
    unsigned rr = 0;
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_ns();
        while (next < total && r.start_ns + (uint64_t)((double)next * interval_ns) <= now)
            next++;
        /* Send what is due on idle connections, oldest first. */
        for (unsigned k = 0; k < o->connections && queued_from < next; k++) {
            struct conn *c = &r.conns[(rr + k) % o->connections];
            if (!c->busy && c->ssl) {
                send_on(&r, c, r.start_ns + (uint64_t)((double)queued_from * interval_ns));
                queued_from++;
            }
        }
        rr++;
        bool busy = false;
        for (unsigned k = 0; k < o->connections; k++)
            busy |= r.conns[k].busy;
        if (queued_from >= total && !busy)
            break;
        if (now > hard_end)
            break;
        /* Sleep until the next request is due, or I/O. */
        struct timespec ts = {0, 0};
        if (next < total && queued_from == next) {
            uint64_t due = r.start_ns + (uint64_t)((double)next * interval_ns);
            uint64_t wait = due > now ? due - now : 0;
            ts.tv_sec = (time_t)(wait / 1000000000u);
            ts.tv_nsec = (long)(wait % 1000000000u);
        } else if (queued_from < next) {
            ts.tv_nsec = 1000000; /* a backlog: wait for a connection to be free */
        } else {
            ts.tv_nsec = 10000000;
        }
        int n = epoll_pwait2(r.ep, evs, 256, &ts, NULL);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c->ssl)
                continue;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                conn_fail(&r, c);
                continue;
            }
            if (c->busy && c->written < r.req_len)
                conn_write(&r, c);
            if (c->ssl)
                conn_read(&r, c);
        }
    }
    uint64_t end_ns = now_ns();
    uint64_t unanswered = 0;
    for (unsigned k = 0; k < o->connections; k++)
        unanswered += r.conns[k].busy;
    unanswered += total - queued_from;
    qsort(r.lat, r.n_lat, sizeof *r.lat, cmp_u64);
    double measured_s = (double)(end_ns - r.warm_ns) / 1e9;
    printf("{\"rate\":%.1f,\"scheduled\":%llu,\"ok\":%llu,\"errors\":%llu,\"timeouts\":%llu,"
           "\"unanswered\":%llu,\"reconnects\":%llu,\"recorded\":%zu,\"achieved_rps\":%.1f,"
           "\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"p999_ms\":%.4f,\"max_ms\":%.4f,"
           "\"connections\":%u,\"duration_s\":%.3f}\n",
           o->rate, (unsigned long long)total, (unsigned long long)r.ok,
           (unsigned long long)r.errors, (unsigned long long)r.timeouts,
           (unsigned long long)unanswered, (unsigned long long)r.reconnects, r.n_lat,
           measured_s > 0 ? (double)r.n_lat / measured_s : 0, pct_ms(r.lat, r.n_lat, 0.50),
           pct_ms(r.lat, r.n_lat, 0.90), pct_ms(r.lat, r.n_lat, 0.99),
           pct_ms(r.lat, r.n_lat, 0.999), r.n_lat ? (double)r.lat[r.n_lat - 1] / 1e6 : 0,
           o->connections, measured_s);
    for (unsigned k = 0; k < o->connections; k++) {
        conn_close(&r, &r.conns[k]);
        free(r.conns[k].resp.buf);
    }
    free(r.conns);
    free(r.lat);
    free((void *)r.req);
    SSL_CTX_free(r.ctx);
    close(r.ep);
    return 0;
}

/* ---- handshakes ---- */

static int cmd_handshake(const struct opts *o)
{
    if (o->count == 0 || o->count > 100000)
        die("handshake needs --count 1..100000");
    SSL_CTX *ctx = client_ctx(o->ca);
    size_t req_len;
    char *req = build_request(o, &req_len);
    uint64_t *hs = calloc(o->count, sizeof *hs);
    struct response resp = {0};
    SSL_SESSION *session = NULL;
    unsigned resumed = 0, failed = 0;
    uint64_t deadline = now_ns() + 120ull * 1000000000u;
    for (unsigned i = 0; i < o->count && now_ns() < deadline; i++) {
        int fd;
        uint64_t t0 = now_ns();
        SSL *ssl = tls_connect(ctx, o, o->resume ? session : NULL, &fd);
        uint64_t t1 = now_ns();
        if (!ssl) {
            failed++;
            continue;
        }
        hs[i] = t1 - t0;
        resumed += SSL_session_reused(ssl) ? 1u : 0u;
        /* A request, so that TLS 1.3 session tickets arrive and the server does real work. */
        if (!blocking_exchange(ssl, req, req_len, &resp))
            failed++;
        if (o->resume) {
            SSL_SESSION_free(session);
            session = SSL_get1_session(ssl);
        }
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
    }
    qsort(hs, o->count, sizeof *hs, cmp_u64);
    double sum = 0;
    for (unsigned i = 0; i < o->count; i++)
        sum += (double)hs[i];
    printf("{\"count\":%u,\"resume\":%s,\"resumed\":%u,\"failed\":%u,\"mean_us\":%.1f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
           o->count, o->resume ? "true" : "false", resumed, failed, sum / o->count / 1e3,
           pct_ms(hs, o->count, 0.5) * 1e3, pct_ms(hs, o->count, 0.99) * 1e3);
    SSL_SESSION_free(session);
    free(resp.buf);
    free(hs);
    free(req);
    SSL_CTX_free(ctx);
    return failed ? 1 : 0;
}

/* ---- exec to ready ---- */

static int cmd_ready(const struct opts *o)
{
    if (!o->cmd || !o->cmd[0])
        die("ready needs -- COMMAND...");
    SSL_CTX *ctx = client_ctx(o->ca);
    size_t req_len;
    char *req = build_request(o, &req_len);
    struct response resp = {0};
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        if (o->cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(o->cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        execvp(o->cmd[0], o->cmd);
        _exit(127);
    }
    uint64_t deadline = t0 + (uint64_t)o->timeout_ms * 1000000u;
    double ready_ms = -1;
    unsigned attempts = 0;
    while (now_ns() < deadline) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "loadgen: the server exited before it was ready\n");
            return 1;
        }
        attempts++;
        int fd;
        SSL *ssl = tls_connect(ctx, o, NULL, &fd);
        if (ssl) {
            bool ok = blocking_exchange(ssl, req, req_len, &resp);
            uint64_t t1 = now_ns();
            SSL_free(ssl);
            close(fd);
            if (ok) {
                ready_ms = (double)(t1 - t0) / 1e6;
                break;
            }
        }
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    printf("{\"pid\":%d,\"ready_ms\":%.3f,\"attempts\":%u}\n", (int)pid, ready_ms, attempts);
    fflush(stdout);
    free(resp.buf);
    free(req);
    SSL_CTX_free(ctx);
    if (ready_ms >= 0) {
        /* Serve until the harness closes our stdin (bounded by a day). */
        char c;
        while (read(0, &c, 1) > 0)
            ;
    }
    kill(pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 300; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return ready_ms >= 0 ? 0 : 1;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return 1;
}

static const char USAGE[] =
    "usage: loadgen rate|handshake|ready --port N --body FILE [options] [-- COMMAND...]\n"
    "  --host IP (127.0.0.1)  --ca FILE  --path P (/mutate?timeout=10s)\n"
    "  rate:      --rate R --duration S [--warmup S] [--connections N (32)] [--timeout-ms T "
    "(1000)]\n"
    "  handshake: --count N [--resume]\n"
    "  ready:     [--cpu C] [--timeout-ms T] -- COMMAND...\n";

int main(int argc, char **argv)
{
    struct opts o = {.host = "127.0.0.1",
                     .path = "/mutate?timeout=10s",
                     .connections = 32,
                     .timeout_ms = 1000,
                     .cpu = -1};
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            o.cmd = argv + i + 1;
            break;
        }
        if (strcmp(a, "--resume") == 0) {
            o.resume = true;
            continue;
        }
        if (!v) {
            fputs(USAGE, stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--host") == 0)
            o.host = v;
        else if (strcmp(a, "--port") == 0)
            o.port = atoi(v);
        else if (strcmp(a, "--ca") == 0)
            o.ca = v;
        else if (strcmp(a, "--body") == 0)
            o.body_file = v;
        else if (strcmp(a, "--path") == 0)
            o.path = v;
        else if (strcmp(a, "--rate") == 0)
            o.rate = atof(v);
        else if (strcmp(a, "--duration") == 0)
            o.duration_s = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            o.warmup_s = atof(v);
        else if (strcmp(a, "--connections") == 0)
            o.connections = (unsigned)atoi(v);
        else if (strcmp(a, "--timeout-ms") == 0)
            o.timeout_ms = (unsigned)atoi(v);
        else if (strcmp(a, "--count") == 0)
            o.count = (unsigned)atoi(v);
        else if (strcmp(a, "--cpu") == 0)
            o.cpu = atoi(v);
        else {
            fputs(USAGE, stderr);
            return 2;
        }
    }
    if (o.port <= 0 || !o.body_file) {
        fputs(USAGE, stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "rate") == 0)
        return cmd_rate(&o);
    if (strcmp(mode, "handshake") == 0)
        return cmd_handshake(&o);
    if (strcmp(mode, "ready") == 0) {
        if (o.timeout_ms == 1000)
            o.timeout_ms = 10000;
        return cmd_ready(&o);
    }
    fputs(USAGE, stderr);
    return 2;
}
