/*
 * The API client's response reader (pkg/kube/http.c): status line, headers, Content-Length,
 * chunked transfer coding, close-delimited bodies, interim 1xx answers, caps. The input is what
 * the server sends; it goes through a socket pair whose far end is then shut, so the reader sees
 * exactly these bytes and then the end of the connection.
 */
#include "tests/fuzz/fuzz.h"

#include "pkg/kube/kube_int.h"

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BODY_CAP (16u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 100 * 1024)
        return 0; /* more than the socket buffer takes without a reader */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    int sndbuf = 256 * 1024;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(sv[1], data + off, size - off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);

    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t deadline = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + 2000000000u;
    struct fmw_buf body;
    fmw_buf_init(&body, BODY_CAP);
    long status = 0;
    bool keep = true;
    enum fmw_err err = kube_http_read_fd(sv[0], deadline, &status, &body, &keep);
    FUZZ_CHECK(err == FMW_OK || err == FMW_EIO || err == FMW_ETOOBIG);
    FUZZ_CHECK(body.len <= BODY_CAP && body.len <= size);
    if (err == FMW_OK) {
        FUZZ_CHECK(status >= 100 && status <= 999);
        FUZZ_CHECK(memcmp(data, "HTTP/1.", 7) == 0);
    }
    fmw_buf_free(&body);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
