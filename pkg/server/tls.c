/*
 * TLS contexts and certificate hot reload.
 *
 * Every check reads the certificate, key and client-CA files whole, hashes what it read, and
 * builds a complete new SSL_CTX only when the content changed. The new context replaces the old
 * one only when everything loaded and the key matches the certificate; otherwise the old one
 * stays and the failure is counted once for that content. Connections keep the context they
 * started with (each SSL object holds a reference), so a swap never disturbs them.
 *
 * Changes are noticed by inotify on the files' directories — Kubernetes updates a Secret volume
 * by swapping the `..data` symlink, so watching the files themselves would miss it — and by a
 * periodic check, for filesystems where inotify says nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pkg/obs/obs.h"
#include "pkg/server/server_int.h"

/* Largest certificate, key or CA file read (a chain of a few certificates is a few KiB). */
#define TLS_FILE_MAX (1024 * 1024)
/* Delay between an inotify event and the check, so a writer can finish both files. */
#define TLS_DEBOUNCE_MS 200

/* TLS 1.2 suites: forward-secret AEAD only (what Go's client, and so the API server, offers). */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* Refuses keys with a passphrase instead of prompting on a terminal (OpenSSL's default). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

/* Picks http/1.1 from the client's ALPN list; a client offering only other protocols (h2) gets
 * the no_application_protocol alert (RFC 7301), since we could not speak what it expects. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *selected = NULL;
    (void)ssl, (void)arg;
    if (SSL_select_next_proto(&selected, outlen, http11, sizeof(http11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

/* Counts handshakes that we end with a fatal alert (bad version, no shared cipher, bad client
 * certificate, unknown ALPN): a rising count points at a misconfigured client. */
static void info_callback(const SSL *ssl, int where, int ret)
{
    if (!(where & SSL_CB_ALERT) || !(where & SSL_CB_WRITE) || (ret >> 8) != SSL3_AL_FATAL)
        return;
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    struct fmw_server *srv = SSL_CTX_get_app_data(ctx);
    if (srv)
        fmw_obs_inc(srv->m.handshake_errors);
}

/* A context with everything but the certificate. */
static SSL_CTX *ctx_base(struct fmw_server *srv)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    static const unsigned char sid_ctx[] = "flink-memory-webhook";
    SSL_CTX_set_min_proto_version(ctx, srv->cfg.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* Idle keep-alive connections give their record buffers (about 34 KiB each) back; the
     * cost is an allocation per record, small next to the cryptography. Writes may complete
     * in parts, from a buffer that moves between retries (conn.c keeps it in a growing buffer).
     * Reading ahead takes a record in one read(2), not two (header, then body); conn.c asks
     * SSL_has_pending() for what OpenSSL then holds. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    SSL_CTX_set_app_data(ctx, srv);
    SSL_CTX_set_info_callback(ctx, info_callback);
    return ctx;
}

/* Reads a whole file (at most TLS_FILE_MAX bytes) into a fresh buffer. */
static enum fmw_err read_file(const char *path, struct fmw_buf *out, struct fmw_diag *diag)
{
    enum fmw_err err = FMW_OK;
    /* Non-blocking, then only a regular file is read: a FIFO (or a device) at the path would
     * otherwise block the event loop, which reloads on SIGHUP. Symbolic links are followed, as
     * Kubernetes mounts a Secret's files through them. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return fmw_diag_set(diag, FMW_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fmw_diag_set(diag, FMW_EIO, "%s is not a regular file", path);
    }
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = fmw_diag_set(diag, FMW_EIO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        err = fmw_buf_add(out, chunk, (size_t)n);
        if (err != FMW_OK) {
            fmw_diag_set(diag, err, "%s: %s", path,
                         err == FMW_ETOOBIG ? "file too large" : "out of memory");
            goto out;
        }
    }
out:
    close(fd);
    return err;
}

/* The first OpenSSL error as text, for diagnostics; clears the queue. */
static const char *ssl_error_text(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, size, "unknown error");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

/* Loads the chain (leaf first) from PEM text; returns the leaf's notAfter in *not_after. */
static enum fmw_err load_chain(SSL_CTX *ctx, const struct fmw_buf *pem, const char *path,
                               time_t *not_after, struct fmw_diag *diag)
{
    enum fmw_err err = FMW_OK;
    char ebuf[256];
    X509 *leaf = NULL;
    BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    if (!bio)
        return fmw_diag_set(diag, FMW_ENOMEM, "out of memory");
    leaf = PEM_read_bio_X509_AUX(bio, NULL, no_passphrase, NULL);
    if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1) {
        err = fmw_diag_set(diag, FMW_EINVAL, "%s: no usable certificate: %s", path,
                           ssl_error_text(ebuf, sizeof(ebuf)));
        goto out;
    }
    for (;;) {
        X509 *extra = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
        if (!extra)
            break;
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            err = fmw_diag_set(diag, FMW_EINVAL, "%s: bad chain certificate: %s", path,
                               ssl_error_text(ebuf, sizeof(ebuf)));
            goto out;
        }
    }
    ERR_clear_error(); /* the end of the PEM text shows up as an error */

    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) == 1)
        *not_after = timegm(&tm);
out:
    X509_free(leaf);
    BIO_free(bio);
    return err;
}

static enum fmw_err load_key(SSL_CTX *ctx, const struct fmw_buf *pem, const char *path,
                             struct fmw_diag *diag)
{
    enum fmw_err err = FMW_OK;
    char ebuf[256];
    EVP_PKEY *key = NULL;
    BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    if (!bio)
        return fmw_diag_set(diag, FMW_ENOMEM, "out of memory");
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (!key || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        err = fmw_diag_set(diag, FMW_EINVAL, "%s: no usable private key: %s", path,
                           ssl_error_text(ebuf, sizeof(ebuf)));
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        err = fmw_diag_set(diag, FMW_EINVAL, "%s does not match the certificate", path);
        goto out;
    }
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    return err;
}

/* Trusts the CAs in `pem` for client certificates and requires clients to present one. */
static enum fmw_err load_client_ca(SSL_CTX *ctx, const struct fmw_buf *pem, const char *path,
                                   struct fmw_diag *diag)
{
    enum fmw_err err = FMW_OK;
    int n_certs = 0;
    BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    STACK_OF(X509_INFO) *infos = NULL;
    if (!bio)
        return fmw_diag_set(diag, FMW_ENOMEM, "out of memory");
    infos = PEM_X509_INFO_read_bio(bio, NULL, no_passphrase, NULL);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);
        if (!info->x509)
            continue;
        if (X509_STORE_add_cert(store, info->x509) != 1 ||
            SSL_CTX_add_client_CA(ctx, info->x509) != 1) {
            err = fmw_diag_set(diag, FMW_EINVAL, "%s: cannot use CA certificate", path);
            goto out;
        }
        n_certs++;
    }
    if (n_certs == 0) {
        err = fmw_diag_set(diag, FMW_EINVAL, "%s: no CA certificate", path);
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
out:
    ERR_clear_error();
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    return err;
}

/* SHA-256 over the three files' content (length-prefixed, so boundaries count). */
static void digest_files(const struct fmw_buf *files, size_t n, unsigned char out[SRV_DIGEST_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 0;
    memset(out, 0, SRV_DIGEST_LEN);
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        goto out;
    for (size_t i = 0; i < n; i++) {
        uint64_t size = files[i].len;
        EVP_DigestUpdate(md, &size, sizeof(size));
        if (files[i].len)
            EVP_DigestUpdate(md, files[i].data, files[i].len);
    }
    EVP_DigestFinal_ex(md, out, &len);
out:
    EVP_MD_CTX_free(md);
}

void srv_tls_check(struct fmw_server *srv, const char *why)
{
    struct fmw_diag diag = FMW_DIAG_INIT;
    struct fmw_buf files[3];
    const char *paths[3] = {srv->cfg.cert_file, srv->cfg.key_file, srv->cfg.client_ca_file};
    size_t n_files = srv->cfg.client_ca_file ? 3 : 2;
    unsigned char digest[SRV_DIGEST_LEN];
    SSL_CTX *ctx = NULL;
    time_t not_after = 0;
    enum fmw_err err = FMW_OK;
    bool counted = srv->first_load_done; /* the load at start is not a reload */

    for (size_t i = 0; i < 3; i++)
        fmw_buf_init(&files[i], TLS_FILE_MAX);
    for (size_t i = 0; i < n_files && err == FMW_OK; i++)
        err = read_file(paths[i], &files[i], &diag);
    srv->first_load_done = true;
    if (err != FMW_OK) {
        /* Unreadable files are often a swap in progress; the next event or tick retries. Not a
         * failed reload, and logged once per episode rather than on every tick. */
        if (!srv->read_failed) {
            struct fmw_log_line line;
            fmw_log_begin(&line, FMW_LOG_WARN,
                          srv->cert_loaded ? "certificate files unreadable, keeping the current one"
                                           : "certificate files unreadable, not ready");
            fmw_log_str(&line, "reason", fmw_diag_msg(&diag));
            fmw_log_str(&line, "trigger", why);
            fmw_log_end(&line);
        }
        srv->read_failed = true;
        goto out;
    }
    srv->read_failed = false;
    digest_files(files, n_files, digest);
    if (srv->cert_loaded && memcmp(digest, srv->loaded_digest, SRV_DIGEST_LEN) == 0)
        goto out; /* nothing changed */
    if (srv->have_failed_digest && memcmp(digest, srv->failed_digest, SRV_DIGEST_LEN) == 0)
        goto out; /* the same bad content as last time: already counted and logged */

    ctx = ctx_base(srv);
    if (!ctx) {
        err = fmw_diag_set(&diag, FMW_ENOMEM, "cannot create TLS context");
    } else {
        err = load_chain(ctx, &files[0], paths[0], &not_after, &diag);
        if (err == FMW_OK)
            err = load_key(ctx, &files[1], paths[1], &diag);
        if (err == FMW_OK && n_files == 3)
            err = load_client_ca(ctx, &files[2], paths[2], &diag);
    }
    if (err != FMW_OK) {
        memcpy(srv->failed_digest, digest, SRV_DIGEST_LEN);
        srv->have_failed_digest = true;
        if (counted)
            fmw_obs_inc(srv->m.reload_failed);
        struct fmw_log_line line;
        fmw_log_begin(&line, FMW_LOG_WARN,
                      srv->cert_loaded ? "certificate reload failed, keeping the current one"
                                       : "certificate not loaded, not ready");
        fmw_log_str(&line, "reason", fmw_diag_msg(&diag));
        fmw_log_str(&line, "trigger", why);
        fmw_log_end(&line);
        goto out;
    }

    SSL_CTX_free(srv->ctx);
    srv->ctx = ctx;
    ctx = NULL;
    srv->cert_loaded = true;
    memcpy(srv->loaded_digest, digest, SRV_DIGEST_LEN);
    srv->have_failed_digest = false;
    if (counted)
        fmw_obs_inc(srv->m.reload_ok);
    fmw_obs_gauge_set(srv->m.cert_not_after, (int64_t)not_after);
    fmw_obs_gauge_set(srv->m.ready, fmw_server_ready(srv) ? 1 : 0);
    struct fmw_log_line line;
    fmw_log_begin(&line, FMW_LOG_INFO, counted ? "certificate reloaded" : "certificate loaded");
    fmw_log_str(&line, "cert_file", paths[0]);
    fmw_log_int(&line, "not_after", (int64_t)not_after);
    fmw_log_str(&line, "trigger", why);
    fmw_log_end(&line);
out:
    SSL_CTX_free(ctx);
    for (size_t i = 0; i < 3; i++)
        fmw_buf_free(&files[i]);
    fmw_diag_cleanup(&diag);
}

SSL *srv_tls_new_ssl(struct fmw_server *srv, int fd)
{
    SSL *ssl = SSL_new(srv->ctx);
    if (!ssl)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

static void inotify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fmw_server *srv = arg;
    char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    (void)what;
    /* Only "something changed" matters; the events themselves are drained and dropped. */
    while (read(fd, events, sizeof(events)) > 0)
        ;
    if (!evtimer_pending(&srv->debounce_timer, NULL)) {
        struct timeval tv = {0, TLS_DEBOUNCE_MS * 1000};
        evtimer_add(&srv->debounce_timer, &tv);
    }
}

/* Watches the directory holding `path` (once per directory). */
static void watch_dir_of(struct fmw_server *srv, const char *path, char dirs[][PATH_MAX],
                         size_t *n_dirs, bool quiet)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", path);
    const char *dir = dirname(copy);
    for (size_t i = 0; i < *n_dirs; i++)
        if (strcmp(dirs[i], dir) == 0)
            return;
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                          IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
    if (inotify_add_watch(srv->inotify_fd, dir, mask) < 0) {
        if (quiet)
            return;
        struct fmw_log_line line;
        fmw_log_begin(&line, FMW_LOG_WARN, "cannot watch certificate directory");
        fmw_log_str(&line, "dir", dir);
        fmw_log_str(&line, "reason", strerror(errno));
        fmw_log_end(&line);
        return;
    }
    snprintf(dirs[*n_dirs], PATH_MAX, "%s", dir);
    (*n_dirs)++;
}

/*
 * (Re)watches the directories of the configured files. Called before every check too: a
 * directory removed and made again (or mounted after start) loses or lacks its watch, and adding
 * a watch that exists only refreshes it. `quiet` keeps those repeats out of the log.
 */
static void watch_dirs(struct fmw_server *srv, bool quiet)
{
    char dirs[SRV_MAX_WATCHES][PATH_MAX];
    size_t n_dirs = 0;
    if (srv->inotify_fd < 0)
        return;
    watch_dir_of(srv, srv->cfg.cert_file, dirs, &n_dirs, quiet);
    watch_dir_of(srv, srv->cfg.key_file, dirs, &n_dirs, quiet);
    if (srv->cfg.client_ca_file)
        watch_dir_of(srv, srv->cfg.client_ca_file, dirs, &n_dirs, quiet);
}

static void debounce_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    watch_dirs(arg, true);
    srv_tls_check(arg, "inotify");
}

static void reload_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    watch_dirs(arg, true);
    srv_tls_check(arg, "periodic");
}

enum fmw_err srv_tls_init(struct fmw_server *srv, struct fmw_diag *diag)
{
    srv->ctx = ctx_base(srv);
    if (!srv->ctx)
        return fmw_diag_set(diag, FMW_ENOMEM, "cannot create TLS context");

    evtimer_assign(&srv->debounce_timer, srv->base, debounce_cb, srv);
    evtimer_assign(&srv->reload_timer, srv->base, reload_timer_cb, srv);
    event_assign(&srv->inotify_ev, srv->base, -1, 0, inotify_cb, srv);
    srv->tls_inited = true;

    srv->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (srv->inotify_fd < 0) {
        /* Not fatal: the periodic check still notices changes, only later. */
        fmw_logf(FMW_LOG_WARN, "inotify unavailable (%s), relying on the periodic check",
                 strerror(errno));
    } else {
        watch_dirs(srv, false);
        event_assign(&srv->inotify_ev, srv->base, srv->inotify_fd, EV_READ | EV_PERSIST, inotify_cb,
                     srv);
        event_add(&srv->inotify_ev, NULL);
    }
    if (srv->cfg.reload_interval_ms > 0) {
        struct timeval tv = {srv->cfg.reload_interval_ms / 1000,
                             (srv->cfg.reload_interval_ms % 1000) * 1000};
        event_assign(&srv->reload_timer, srv->base, -1, EV_PERSIST, reload_timer_cb, srv);
        event_add(&srv->reload_timer, &tv);
    }
    srv_tls_check(srv, "start");
    return FMW_OK;
}

void srv_tls_cleanup(struct fmw_server *srv)
{
    if (srv->tls_inited) {
        event_del(&srv->debounce_timer);
        event_del(&srv->reload_timer);
        event_del(&srv->inotify_ev);
    }
    if (srv->inotify_fd >= 0)
        close(srv->inotify_fd);
    srv->inotify_fd = -1;
    SSL_CTX_free(srv->ctx);
    srv->ctx = NULL;
}
