/* pkg/http1/request.c: request heads. */
#include "pkg/http1/http1.h"

#include <criterion/criterion.h>
#include <string.h>

static int parse(const char *text, struct fmw_http1_head *h)
{
    return fmw_http1_parse_head(text, strlen(text), h);
}

Test(http, a_review_request)
{
    struct fmw_http1_head h;
    const char *text = "POST /mutate?timeout=10s HTTP/1.1\r\nHost: 10.0.0.1:8443\r\n"
                       "Content-Type: application/json\r\nAccept: application/json, */*\r\n"
                       "Content-Length: 4647\r\nAccept-Encoding: gzip\r\n"
                       "User-Agent: kube-apiserver-admission\r\n\r\n";
    cr_assert_eq(parse(text, &h), 0);
    cr_expect_eq(h.method, FMW_HTTP1_POST);
    cr_expect_eq(h.target.len, strlen("/mutate?timeout=10s"));
    cr_expect(memcmp(h.target.ptr, "/mutate?timeout=10s", h.target.len) == 0);
    cr_expect(h.http11 && h.keep_alive && h.has_length && !h.chunked && !h.expect_continue);
    cr_expect_eq(h.length, 4647);
    cr_expect(h.has_content_type && h.content_type.len == strlen("application/json"));
}

Test(http, keep_alive_by_version_and_connection)
{
    struct fmw_http1_head h;
    cr_assert_eq(parse("GET / HTTP/1.0\r\n\r\n", &h), 0);
    cr_expect(!h.http11 && !h.keep_alive);
    cr_assert_eq(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h), 0);
    cr_expect(h.keep_alive);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n", &h), 0);
    cr_expect(!h.keep_alive);
    /* Bare LF line ends, and a method of our list that routes answer 405 to. */
    cr_assert_eq(parse("DELETE /x HTTP/1.1\nHost: y\n\n", &h), 0);
    cr_expect_eq(h.method, FMW_HTTP1_DELETE);
}

Test(http, framing_chunked_expect)
{
    struct fmw_http1_head h;
    cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", &h), 0);
    cr_expect(h.chunked && !h.has_length);
    cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n"
                       "Content-Length: 0\r\n\r\n",
                       &h),
                 0);
    cr_expect(h.expect_continue && h.has_length && h.length == 0);
}

/* RFC 9112 2.3, RFC 9110 10.1.1, RFC 9112 6.1: the version edge cases. */
Test(http, versions_as_the_rfcs_say)
{
    struct fmw_http1_head h;
    /* HTTP/1.2 (or 1.9) is read as 1.1, not refused with 505. */
    cr_assert_eq(parse("POST /mutate HTTP/1.2\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &h), 0);
    cr_expect(h.http11 && h.keep_alive);
    cr_assert_eq(parse("GET / HTTP/1.9\r\nHost: x\r\n\r\n", &h), 0);
    cr_expect(h.http11);
    /* An HTTP/1.0 client gets no 100 Continue. */
    cr_assert_eq(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", &h),
                 0);
    cr_expect(!h.expect_continue);
    /* A chunked HTTP/1.0 request is answered, then the connection closed, keep-alive or not. */
    cr_assert_eq(parse("POST / HTTP/1.0\r\nConnection: keep-alive\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n",
                       &h),
                 0);
    cr_expect(h.chunked && !h.keep_alive);
    cr_assert_eq(
        parse("POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", &h), 0);
    cr_expect(h.keep_alive);
}

/* Each line: the head, and the status it must be refused with. */
static const struct {
    const char *head;
    int status;
} REFUSED[] = {
    {"GARBAGE\r\n\r\n", 400},
    {"GET\r\n\r\n", 400},
    {"GET /healthz\r\n\r\n", 400},
    {"GET  /x HTTP/1.1\r\n\r\n", 400},
    {"GET /a b HTTP/1.1\r\n\r\n", 400},
    {"GET /x HTTP/2.0\r\n\r\n", 505},
    {"GET /x HTTP/9.9\r\n\r\n", 505},
    {"GET /x http/1.1\r\n\r\n", 400},
    {"BREW /x HTTP/1.1\r\n\r\n", 501},
    {"G(T /x HTTP/1.1\r\n\r\n", 400},
    {"GET http://evil/x HTTP/1.1\r\n\r\n", 400},
    {"OPTIONS * HTTP/1.1\r\n\r\n", 400},
    {"GET /x\x7f HTTP/1.1\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     400},
    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-banana\r\n\r\n", 417},
    {"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nX : space-before-colon\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01"
     "b\r\n\r\n",
     400},
    {"GET / HTTP/1.1\r\nHost: x\r\nX: unterminated", 400},
    {"GET / HTTP/1.1\r\n\r\n", 400},                       /* HTTP/1.1 without Host */
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400}, /* two of them */
    {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
};

Test(http, refused_heads)
{
    for (size_t i = 0; i < sizeof REFUSED / sizeof REFUSED[0]; i++) {
        struct fmw_http1_head h;
        cr_expect_eq(parse(REFUSED[i].head, &h), REFUSED[i].status, "%zu: %s", i, REFUSED[i].head);
    }
    /* A NUL inside the head is refused, wherever it is. */
    static const char nul_head[] = "GET /x HTTP/1.1\r\nX: a\0b\r\n\r\n";
    struct fmw_http1_head h;
    cr_expect_eq(fmw_http1_parse_head(nul_head, sizeof nul_head - 1, &h), 400);
    static const char nul_target[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    cr_expect_eq(fmw_http1_parse_head(nul_target, sizeof nul_target - 1, &h), 400);
}

Test(http, obs_text_in_values_is_taken)
{
    struct fmw_http1_head h;
    cr_expect_eq(
        parse("GET /mu\xfftate HTTP/1.1\r\nHost: x\r\nX-Name: \xff\xfe\xc3\x28\r\n\r\n", &h), 0);
}
