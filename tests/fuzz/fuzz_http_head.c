/*
 * pkg/http1 on its own: a request head (the input up to its first empty line, as the
 * connection code cuts it) and, when the head says chunked, the rest as a chunked body fed in
 * pieces whose size the first byte picks. Millions of runs a minute, where the in-process
 * server target (fuzz_http) manages thousands.
 */
#include "tests/fuzz/fuzz.h"

#include "pkg/server/server_int.h"

#define BODY_CAP 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 64) + 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    /* The head ends at the first "\n\n" or "\n\r\n", as conn.c finds it. */
    size_t head_len = 0;
    for (size_t i = 0; i + 1 < len && !head_len; i++) {
        if (text[i] == '\n' && text[i + 1] == '\n')
            head_len = i + 2;
        else if (text[i] == '\n' && i + 2 < len && text[i + 1] == '\r' && text[i + 2] == '\n')
            head_len = i + 3;
    }
    if (!head_len)
        head_len = len;
    struct fmw_http1_head h;
    int status = fmw_http1_parse_head(text, head_len, &h);
    FUZZ_CHECK(status == 0 || status == 400 || status == 413 || status == 417 || status == 501 ||
               status == 505);
    if (status != 0)
        return 0;
    FUZZ_CHECK(h.target.len > 0 && h.target.ptr[0] == '/');
    FUZZ_CHECK(h.target.ptr >= text && h.target.ptr + h.target.len <= text + head_len);
    FUZZ_CHECK(!(h.chunked && h.has_length));
    if (h.has_content_type)
        FUZZ_CHECK(h.content_type.ptr >= text &&
                   h.content_type.ptr + h.content_type.len <= text + head_len);
    if (!h.chunked)
        return 0;
    struct fmw_chunked c;
    memset(&c, 0, sizeof c);
    struct fmw_buf body;
    fmw_buf_init(&body, BODY_CAP);
    size_t off = head_len;
    while (off < len && c.state != FMW_CH_DONE) {
        size_t take = len - off < step ? len - off : step, used = 0;
        if (fmw_chunked_feed(&c, text + off, take, &body, &used) != FMW_OK)
            break;
        FUZZ_CHECK(used <= take);
        FUZZ_CHECK(used == take || c.state == FMW_CH_DONE);
        off += used;
    }
    FUZZ_CHECK(body.len <= BODY_CAP && body.len <= len);
    fmw_buf_free(&body);
    return 0;
}
