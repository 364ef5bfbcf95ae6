/*
 * HTTP request framing as far as our code does it: the real pkg/server (libevent and OpenSSL
 * underneath, uninstrumented) runs in this process on loopback, and each input is sent as the raw
 * bytes of one connection — over TLS to the webhook listener, or in plain text to the probe
 * listener — followed by a half-close. All of it is our code above the TLS library: the transport
 * (pkg/server/conn.c), HTTP/1.1 (pkg/server/http1.c, pkg/http1), routing, the query string and its
 * ?timeout= duration, Content-Type, duplicate Content-Length / Transfer-Encoding checks,
 * body hand-off to workers, AdmissionReview handling on /mutate, connection lifetimes and drains.
 *
 * Input: first byte bit 0 set → TLS listener, else the plain one; the rest is sent as it is.
 * After every input the server must still accept a connection; every 256 inputs it must also
 * answer /healthz. Anything else aborts.
 */
#include "tests/fuzz/fuzz.h"

#include "pkg/admission/admission.h"
#include "pkg/server/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct fmw_server *g_srv;
static int g_tls_port, g_plain_port;
static SSL_CTX *g_client;
static SSL_SESSION *g_session;
static unsigned long g_count;

static enum fmw_err no_cm(void *ctx, const char *ns, const char *name, json_t **data,
                          struct fmw_diag *d)
{
    (void)ctx, (void)ns, (void)name, (void)data, (void)d;
    return FMW_ENOTFOUND;
}

/* The daemon's /mutate handler in short: the admission pipeline, 400 for a bad review. */
static enum fmw_err mutate(void *ctx, const struct fmw_server_request *req,
                           struct fmw_server_response *resp)
{
    (void)ctx;
    struct fmw_admission_config cfg;
    fmw_admission_config_defaults(&cfg);
    struct fmw_cm_source src = {no_cm, NULL};
    struct fmw_decision dec;
    struct fmw_diag d = FMW_DIAG_INIT;
    FUZZ_CHECK(req->deadline_ns >= req->received_ns);
    FUZZ_CHECK(req->body.ptr[req->body.len] == '\0');
    enum fmw_err err =
        fmw_admission_review(&cfg, &src, req->body.ptr, req->body.len, &resp->body, &dec, &d);
    if (err == FMW_EINVAL) {
        resp->status = 400;
        fmw_buf_reset(&resp->body);
        err = fmw_buf_adds(&resp->body, "{\"error\":\"bad request\"}");
    }
    fmw_diag_cleanup(&d);
    return err;
}

static enum fmw_err echo(void *ctx, const struct fmw_server_request *req,
                         struct fmw_server_response *resp)
{
    (void)ctx;
    return fmw_buf_add(&resp->body, req->body.ptr, req->body.len);
}

static void *run_server(void *arg)
{
    (void)arg;
    (void)fmw_server_run(g_srv);
    return NULL;
}

/* A throw-away self-signed P-256 certificate for 127.0.0.1, written to `dir`. */
static void make_cert(const char *dir, char *cert_path, char *key_path, size_t n)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FUZZ_CHECK(key && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 30);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    FUZZ_CHECK(X509_sign(x, key, EVP_sha256()) > 0);
    snprintf(cert_path, n, "%s/tls.crt", dir);
    snprintf(key_path, n, "%s/tls.key", dir);
    FILE *f = fopen(cert_path, "w");
    FUZZ_CHECK(f && PEM_write_X509(f, x));
    fclose(f);
    f = fopen(key_path, "w");
    FUZZ_CHECK(f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static char dir[] = "/tmp/fmw-fuzz-http-XXXXXX";
    static char cert[256], key[256];
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    make_cert(dir, cert, key, sizeof cert);

    /* /mutate is tried on the loop thread first, /echo always runs on a worker. */
    static const struct fmw_server_route routes[] = {{"/mutate", mutate, NULL, true},
                                                     {"/echo", echo, NULL, false}};
    struct fmw_server_config cfg;
    fmw_server_config_defaults(&cfg);
    cfg.tls_host = "127.0.0.1";
    cfg.tls_port = 0;
    cfg.plain_host = "127.0.0.1";
    cfg.plain_port = 0;
    cfg.cert_file = cert;
    cfg.key_file = key;
    cfg.routes = routes;
    cfg.n_routes = 2;
    cfg.workers = 2;
    cfg.max_body = 256 * 1024;
    cfg.max_headers = 8 * 1024;
    cfg.request_timeout_ms = 2000;
    cfg.idle_timeout_ms = 2000;
    cfg.reload_interval_ms = 0;
    struct fmw_diag d = FMW_DIAG_INIT;
    if (fmw_server_new(&cfg, &g_srv, &d) != FMW_OK) {
        fprintf(stderr, "fuzz_http: server: %s\n", fmw_diag_msg(&d));
        abort();
    }
    /* The certificate files are read at start-up; nothing needs them afterwards. */
    unlink(cert);
    unlink(key);
    rmdir(dir);
    g_tls_port = fmw_server_tls_port(g_srv);
    g_plain_port = fmw_server_plain_port(g_srv);
    pthread_t t;
    FUZZ_CHECK(pthread_create(&t, NULL, run_server, NULL) == 0);
    pthread_detach(t);

    g_client = SSL_CTX_new(TLS_client_method());
    FUZZ_CHECK(g_client != NULL);
    /* TLS 1.2 with session resumption keeps a handshake cheap (no public-key operation). */
    SSL_CTX_set_max_proto_version(g_client, TLS1_2_VERSION);
    SSL_CTX_set_verify(g_client, SSL_VERIFY_NONE, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int connect_to(int port)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        FUZZ_CHECK(fd >= 0);
        struct timeval tv = {2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        close(fd);
        usleep(10000); /* the listener may pause at the connection cap for a moment */
    }
    fprintf(stderr, "fuzz_http: the server stopped accepting connections\n");
    abort();
}

/* Reads until EOF or the receive timeout; returns the bytes read (capped count). */
static size_t drain_plain(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + (got < cap ? got : 0), got < cap ? cap - got : cap, 0);
        if (r <= 0)
            return got;
        got += (size_t)r;
    }
}

static void send_plain(const uint8_t *data, size_t size)
{
    int fd = connect_to(g_plain_port);
    size_t off = 0;
    while (off < size) {
        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char buf[4096];
    drain_plain(fd, buf, sizeof buf);
    close(fd);
}

static void send_tls(const uint8_t *data, size_t size)
{
    int fd = connect_to(g_tls_port);
    SSL *ssl = SSL_new(g_client);
    FUZZ_CHECK(ssl != NULL);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "127.0.0.1");
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_set_alpn_protos(ssl, alpn, sizeof alpn - 1);
    if (g_session)
        SSL_set_session(ssl, g_session);
    if (SSL_connect(ssl) == 1) {
        if (!SSL_session_reused(ssl)) {
            SSL_SESSION_free(g_session);
            g_session = SSL_get1_session(ssl);
        }
        size_t off = 0;
        while (off < size) {
            int w = SSL_write(ssl, data + off, (int)(size - off > 16384 ? 16384 : size - off));
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        SSL_shutdown(ssl); /* close_notify: the server sees the end of the stream */
        char buf[4096];
        while (SSL_read(ssl, buf, sizeof buf) > 0)
            ;
    }
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
}

static void check_alive(void)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int fd = connect_to(g_plain_port);
    FUZZ_CHECK(send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1));
    char buf[1024] = {0};
    size_t got = drain_plain(fd, buf, sizeof buf - 1);
    close(fd);
    if (got < 12 || memcmp(buf, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "fuzz_http: /healthz did not answer 200 (%zu bytes)\n", got);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 512 * 1024)
        return 0;
    if (data[0] & 1)
        send_tls(data + 1, size - 1);
    else
        send_plain(data + 1, size - 1);
    if (++g_count % 256 == 0)
        check_alive();
    return 0;
}
