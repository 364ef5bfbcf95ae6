/*
 * HTTP/1.1 request heads (RFC 9112) and chunked bodies, parsed strictly. Anything two parties
 * could read differently is refused rather than guessed at: several Content-Length fields, a
 * Transfer-Encoding other than a lone "chunked", both framings at once, obs-fold lines, white
 * space before a colon, control characters. The parser is a pure function of the bytes, so the
 * unit tests and the fuzzer drive it directly.
 */
#include <string.h>
#include <strings.h>

#include "pkg/http1/http1.h"

/* tchar of RFC 9110 5.6.2: what method and field names are made of. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value may hold visible characters, spaces, tabs and obs-text (bytes >= 0x80). */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool eq_ci(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

static const struct {
    const char *name;
    enum fmw_http1_method method;
} METHODS[] = {
    {"GET", FMW_HTTP1_GET},     {"HEAD", FMW_HTTP1_HEAD},     {"POST", FMW_HTTP1_POST},
    {"PUT", FMW_HTTP1_PUT},     {"DELETE", FMW_HTTP1_DELETE}, {"OPTIONS", FMW_HTTP1_OPTIONS},
    {"TRACE", FMW_HTTP1_TRACE}, {"PATCH", FMW_HTTP1_PATCH},   {"CONNECT", FMW_HTTP1_CONNECT}};

/* The end of the line starting at p (at the LF), or NULL; *next is the start of the next one.
 * A bare LF ends a line too (RFC 9112 2.2 lets a recipient accept it). */
static const char *line_end(const char *p, const char *end, const char **next)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf)
        return NULL;
    *next = lf + 1;
    return lf > p && lf[-1] == '\r' ? lf - 1 : lf;
}

int fmw_http1_parse_head(const char *p, size_t len, struct fmw_http1_head *h)
{
    memset(h, 0, sizeof *h);
    const char *end = p + len, *next = NULL;
    const char *eol = line_end(p, end, &next);
    if (!eol)
        return 400;

    /* request-line = method SP request-target SP HTTP-version */
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    if (!sp1 || sp1 == p)
        return 400;
    for (const char *q = p; q < sp1; q++)
        if (!is_tchar((unsigned char)*q))
            return 400;
    const char *sp2 = NULL;
    for (const char *q = eol; q > sp1; q--) {
        if (q[-1] == ' ') {
            sp2 = q - 1;
            break;
        }
    }
    if (!sp2 || sp2 == sp1 || sp2 == sp1 + 1)
        return 400;
    h->target = (struct fmw_str){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
    for (size_t i = 0; i < h->target.len; i++) {
        unsigned char c = (unsigned char)h->target.ptr[i];
        if (c <= 0x20 || c == 0x7f)
            return 400;
    }
    const char *ver = sp2 + 1;
    size_t ver_len = (size_t)(eol - ver);
    if (ver_len == 8 && memcmp(ver, "HTTP/1.1", 8) == 0) {
        h->http11 = true;
    } else if (ver_len == 8 && memcmp(ver, "HTTP/1.0", 8) == 0) {
        h->http11 = false;
    } else if (ver_len == 8 && memcmp(ver, "HTTP/1.", 7) == 0 && ver[7] >= '2' && ver[7] <= '9') {
        /* RFC 9112 2.3: a higher minor version of a major version we speak is read as the
         * highest we speak, 1.1. */
        h->http11 = true;
    } else if (ver_len == 8 && memcmp(ver, "HTTP/", 5) == 0 && ver[5] >= '0' && ver[5] <= '9' &&
               ver[6] == '.' && ver[7] >= '0' && ver[7] <= '9') {
        return 505;
    } else {
        return 400;
    }
    h->method = FMW_HTTP1_OTHER;
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++) {
        if (strlen(METHODS[i].name) == (size_t)(sp1 - p) &&
            memcmp(METHODS[i].name, p, (size_t)(sp1 - p)) == 0) {
            h->method = METHODS[i].method;
            break;
        }
    }
    if (h->method == FMW_HTTP1_OTHER)
        return 501;
    /* Only the origin form ("/path?query") names something here; absolute and authority forms
     * are for proxies. */
    if (h->target.ptr[0] != '/')
        return 400;
    h->keep_alive = h->http11;

    /* field-line = field-name ":" OWS field-value OWS */
    int te_fields = 0, cl_fields = 0, host_fields = 0;
    bool close = false, keep_alive = false;
    for (p = next; p < end; p = next) {
        eol = line_end(p, end, &next);
        if (!eol)
            return 400;
        if (eol == p)
            break; /* the empty line: end of the head */
        if (*p == ' ' || *p == '\t')
            return 400; /* obs-fold */
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return 400;
        for (const char *q = p; q < colon; q++)
            if (!is_tchar((unsigned char)*q))
                return 400; /* includes white space before the colon */
        const char *v = colon + 1, *v_end = eol;
        for (const char *q = v; q < v_end; q++)
            if (!is_value_char((unsigned char)*q))
                return 400;
        while (v < v_end && (*v == ' ' || *v == '\t'))
            v++;
        while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
            v_end--;
        size_t name_len = (size_t)(colon - p), vlen = (size_t)(v_end - v);
        if (eq_ci(p, name_len, "content-length")) {
            if (++cl_fields > 1 || vlen == 0)
                return 400;
            uint64_t n = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return 400;
                if (n > (UINT64_MAX - 9) / 10)
                    return 413; /* past every cap anyway */
                n = n * 10 + (uint64_t)(v[i] - '0');
            }
            h->has_length = true;
            h->length = n;
        } else if (eq_ci(p, name_len, "transfer-encoding")) {
            if (++te_fields > 1 || !eq_ci(v, vlen, "chunked"))
                return 400;
            h->chunked = true;
        } else if (eq_ci(p, name_len, "connection")) {
            close = close || fmw_http_list_has(v, vlen, "close");
            keep_alive = keep_alive || fmw_http_list_has(v, vlen, "keep-alive");
        } else if (eq_ci(p, name_len, "expect")) {
            if (!eq_ci(v, vlen, "100-continue"))
                return 417;
            h->expect_continue = true;
        } else if (eq_ci(p, name_len, "host")) {
            host_fields++;
        } else if (eq_ci(p, name_len, "content-type")) {
            h->content_type = (struct fmw_str){v, vlen};
            h->has_content_type = true;
        }
    }
    if (h->chunked && h->has_length)
        return 400; /* RFC 9112 6.3: a sender must not, and a request that does is suspect */
    if (host_fields > 1 || (h->http11 && host_fields == 0))
        return 400; /* RFC 9112 3.2: exactly one Host in HTTP/1.1 */
    if (close)
        h->keep_alive = false;
    else if (keep_alive && !h->http11)
        h->keep_alive = true;
    if (!h->http11) {
        /* RFC 9110 10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored (no 1xx
         * answer is sent to a 1.0 client). RFC 9112 6.1: a Transfer-Encoding in an HTTP/1.0
         * message means faulty framing: the request is read as chunked, and the connection is
         * closed after the answer. */
        h->expect_continue = false;
        if (h->chunked)
            h->keep_alive = false;
    }
    return 0;
}
