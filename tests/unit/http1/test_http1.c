/* pkg/http1: chunked bodies (fed in every piece size) and field-value lists. */
#include "pkg/http1/http1.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* Feeds `text` to a chunked decoder `step` bytes at a time. */
static int dechunk(const char *text, size_t step, struct fmw_buf *body, size_t *rest)
{
    struct fmw_chunked c;
    memset(&c, 0, sizeof c);
    size_t n = strlen(text), off = 0;
    while (off < n && c.state != FMW_CH_DONE) {
        size_t take = n - off < step ? n - off : step, used = 0;
        enum fmw_err err = fmw_chunked_feed(&c, text + off, take, body, &used);
        if (err)
            return err == FMW_ETOOBIG ? 413 : 400; /* as the server answers them */
        off += used;
    }
    *rest = n - off;
    return c.state == FMW_CH_DONE ? 0 : -1;
}

Test(http1, chunked_bodies)
{
    const char *text = "5;name=value\r\nhello\r\nA\r\n, chunked!\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    for (size_t step = 1; step <= strlen(text); step++) {
        struct fmw_buf body;
        fmw_buf_init(&body, 1024);
        size_t rest = 0;
        cr_assert_eq(dechunk(text, step, &body, &rest), 0, "step %zu", step);
        cr_expect_str_eq(fmw_buf_cstr(&body), "hello, chunked!", "step %zu", step);
        cr_expect_eq(rest, 4, "the next request's bytes are left (step %zu)", step);
        fmw_buf_free(&body);
    }
}

Test(http1, chunked_trailers_are_capped)
{
    /* Trailer fields are dropped, but not read for ever. */
    size_t n = FMW_CHUNKED_TRAILERS_MAX + 64;
    char *text = malloc(n + 16);
    cr_assert_not_null(text);
    strcpy(text, "0\r\n");
    size_t len = strlen(text);
    while (len < n) {
        memcpy(text + len, "X-T: trailer\r\n", 14);
        len += 14;
    }
    text[len] = '\0';
    struct fmw_buf body;
    fmw_buf_init(&body, 1024);
    size_t rest = 0;
    cr_expect_eq(dechunk(text, 4096, &body, &rest), 400);
    fmw_buf_free(&body);
    free(text);
}

Test(http1, chunked_refusals)
{
    static const struct {
        const char *text;
        int status;
    } BAD[] = {
        {"zz\r\n{}\r\n0\r\n\r\n", 400},        /* not hex */
        {"2\r\n{}xx\r\n0\r\n\r\n", 400},       /* data longer than its size */
        {"2 x\r\n{}\r\n0\r\n\r\n", 400},       /* junk after the size */
        {"ffffffffffffffffff\r\n{}\r\n", 413}, /* past 64 bits */
        {"401\r\n", 413},                      /* past the body cap (1024) */
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        struct fmw_buf body;
        fmw_buf_init(&body, 1024);
        size_t rest = 0;
        cr_expect_eq(dechunk(BAD[i].text, 3, &body, &rest), BAD[i].status, "%s", BAD[i].text);
        fmw_buf_free(&body);
    }
}

Test(http1, list_tokens)
{
    static const char v[] = " Keep-Alive ,\tUpgrade,close ";
    cr_expect(fmw_http_list_has(v, strlen(v), "keep-alive"));
    cr_expect(fmw_http_list_has(v, strlen(v), "close"));
    cr_expect(fmw_http_list_has(v, strlen(v), "upgrade"));
    cr_expect(!fmw_http_list_has(v, strlen(v), "clos"));
    cr_expect(!fmw_http_list_has("closed", 6, "close"));
    cr_expect(!fmw_http_list_has("", 0, "close"));
}
