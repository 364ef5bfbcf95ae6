/*
 * pkg/http1: the pieces of HTTP/1.1 (RFC 9112) that pkg/server reads requests with (the API
 * client's answers are read by libcurl). Only wire format here: no sockets, no TLS, nothing of
 * Kubernetes.
 */
#ifndef FMW_HTTP1_H
#define FMW_HTTP1_H

#include "pkg/base/base.h"

/*
 * The chunked transfer coding of HTTP/1.1 (RFC 9112 7.1), decoded as bytes arrive: the request
 * bodies pkg/server reads. Chunk extensions are skipped, trailer fields read and dropped
 * (FMW_CHUNKED_TRAILERS_MAX bytes of them at most).
 */
#define FMW_CHUNKED_TRAILERS_MAX (64u * 1024u)

enum fmw_chunked_state { FMW_CH_SIZE, FMW_CH_DATA, FMW_CH_DATA_END, FMW_CH_TRAILER, FMW_CH_DONE };

struct fmw_chunked {
    enum fmw_chunked_state state;
    uint64_t left;        /* data bytes left in the current chunk */
    size_t trailer_bytes; /* read so far */
    char line[256];       /* a chunk-size line with its extensions, or a trailer line */
    size_t line_len;
};

/* Feeds `n` bytes (start from a zeroed struct), appending the chunks' data to `body`, whose cap
 * is the body cap. *used is how many bytes were consumed: all of them, or fewer once the body
 * ended (state FMW_CH_DONE; the rest belongs to what follows). FMW_OK, FMW_EINVAL (malformed:
 * not a hex size, data longer than its size, a line too long, trailers past their cap) or
 * FMW_ETOOBIG (past the body's cap, or a size past 64 bits). */
FMW_NODISCARD enum fmw_err fmw_chunked_feed(struct fmw_chunked *c, const char *p, size_t n,
                                            struct fmw_buf *body, size_t *used);

/* True when the HTTP field value v[0..n) — a comma-separated list, as Connection's — holds
 * `token` (ASCII case-insensitive, white space around elements ignored). */
bool fmw_http_list_has(const char *v, size_t n, const char *token);

/* ---- request heads (request.c) ---- */

enum fmw_http1_method {
    FMW_HTTP1_OTHER,
    FMW_HTTP1_GET,
    FMW_HTTP1_HEAD,
    FMW_HTTP1_POST,
    FMW_HTTP1_PUT,
    FMW_HTTP1_DELETE,
    FMW_HTTP1_OPTIONS,
    FMW_HTTP1_TRACE,
    FMW_HTTP1_PATCH,
    FMW_HTTP1_CONNECT
};

/* What a request head says; slices point into the parsed bytes. */
struct fmw_http1_head {
    enum fmw_http1_method method;
    struct fmw_str target; /* origin form: path and query */
    bool http11;
    bool keep_alive; /* by version and Connection */
    bool chunked;
    bool has_length;
    uint64_t length;
    bool expect_continue;
    bool has_content_type;
    struct fmw_str content_type;
};

/*
 * Parses a request head: the request line and the field lines up to the empty line (CRLF or bare
 * LF line ends), `len` bytes in all. 0 when it can be served, else the status to answer before
 * closing: 400 (malformed or ambiguous framing), 413 (a length past any cap), 417 (an
 * expectation other than 100-continue), 501 (unknown method), 505 (HTTP version other than 1.x).
 */
int fmw_http1_parse_head(const char *p, size_t len, struct fmw_http1_head *h);

#endif
