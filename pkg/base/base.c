#include "pkg/base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t fmw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *fmw_strerror(enum fmw_err err)
{
    switch (err) {
    case FMW_OK:
        return "OK";
    case FMW_ENOMEM:
        return "ENOMEM";
    case FMW_EINVAL:
        return "EINVAL";
    case FMW_ECONFIG:
        return "ECONFIG";
    case FMW_EOVERFLOW:
        return "EOVERFLOW";
    case FMW_ETOOBIG:
        return "ETOOBIG";
    case FMW_EIO:
        return "EIO";
    case FMW_ENOTFOUND:
        return "ENOTFOUND";
    case FMW_ETIMEDOUT:
        return "ETIMEDOUT";
    case FMW_EUSAGE:
        return "EUSAGE";
    case FMW_EINTERNAL:
        return "EINTERNAL";
    case FMW_EAGAIN:
        return "EAGAIN";
    }
    return "EUNKNOWN";
}

enum fmw_err fmw_diag_vset(struct fmw_diag *d, enum fmw_err err, const char *fmt, va_list ap)
{
    if (!d)
        return err;
    char *msg = NULL;
    int n = vasprintf(&msg, fmt, ap);
    free(d->msg);
    d->msg = NULL;
    if (n < 0)
        return err; /* out of memory: the code still tells what happened */
    if ((size_t)n >= FMW_DIAG_MAX)
        msg[FMW_DIAG_MAX - 1] = '\0';
    d->msg = msg;
    return err;
}

enum fmw_err fmw_diag_set(struct fmw_diag *d, enum fmw_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fmw_diag_vset(d, err, fmt, ap);
    va_end(ap);
    return err;
}

enum fmw_err fmw_diag_prefix(struct fmw_diag *d, const char *prefix)
{
    if (!d)
        return FMW_OK;
    char *old = d->msg;
    d->msg = NULL;
    fmw_diag_set(d, FMW_OK, "%s%s", prefix, old ? old : "");
    if (!d->msg) {
        d->msg = old; /* keep the unprefixed text rather than nothing */
        return FMW_ENOMEM;
    }
    free(old);
    return FMW_OK;
}

const char *fmw_diag_msg(const struct fmw_diag *d)
{
    return d && d->msg ? d->msg : "";
}

void fmw_diag_cleanup(struct fmw_diag *d)
{
    if (!d)
        return;
    free(d->msg);
    d->msg = NULL;
    d->line = 0;
    d->column = 0;
}

void fmw_buf_init(struct fmw_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->max = max;
}

static enum fmw_err buf_reserve(struct fmw_buf *b, size_t extra)
{
    /* Room for the content, the new bytes and the terminating NUL, within the cap. */
    if (extra > b->max || b->len > b->max - extra)
        return FMW_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->alloc)
        return FMW_OK;
    size_t alloc = b->alloc ? b->alloc : 64;
    while (alloc < need)
        alloc = alloc > SIZE_MAX / 2 ? need : alloc * 2;
    return fmw_buf_resize(b, alloc > b->max + 1 ? b->max + 1 : alloc);
}

enum fmw_err fmw_buf_add(struct fmw_buf *b, const void *p, size_t n)
{
    /* Room already there (the common case of a writer appending small pieces). */
    if (n < b->alloc - b->len && n <= b->max - b->len) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return FMW_OK;
    }
    enum fmw_err err = buf_reserve(b, n);
    if (err)
        return err;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return FMW_OK;
}

enum fmw_err fmw_buf_adds(struct fmw_buf *b, const char *s)
{
    return fmw_buf_add(b, s, strlen(s));
}

enum fmw_err fmw_buf_addc(struct fmw_buf *b, char c)
{
    if (b->len + 1 < b->alloc && b->len < b->max) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return FMW_OK;
    }
    return fmw_buf_add(b, &c, 1);
}

enum fmw_err fmw_buf_vaddf(struct fmw_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return FMW_EINVAL;
    enum fmw_err err = buf_reserve(b, (size_t)n);
    if (err)
        return err;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return FMW_OK;
}

enum fmw_err fmw_buf_addf(struct fmw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum fmw_err err = fmw_buf_vaddf(b, fmt, ap);
    va_end(ap);
    return err;
}

const char *fmw_buf_cstr(const struct fmw_buf *b)
{
    return b->data ? b->data : "";
}

enum fmw_err fmw_buf_resize(struct fmw_buf *b, size_t size)
{
    if (size == 0 || size > b->max + 1)
        return FMW_ETOOBIG;
    char *p = realloc(b->data, size);
    if (!p)
        return FMW_ENOMEM;
    if (!b->data)
        b->len = 0;
    if (b->len > size - 1)
        b->len = size - 1;
    p[b->len] = '\0';
    b->data = p;
    b->alloc = size;
    return FMW_OK;
}

void fmw_buf_adopt(struct fmw_buf *b, char *data, size_t size)
{
    b->data = data;
    b->alloc = size;
    b->len = 0;
    data[0] = '\0';
}

char *fmw_buf_release(struct fmw_buf *b, size_t *size)
{
    *size = b->alloc;
    return fmw_buf_take(b);
}

char *fmw_buf_spare(struct fmw_buf *b, size_t *room)
{
    *room = b->data && b->alloc > b->len + 1 ? b->alloc - b->len - 1 : 0;
    return b->data ? b->data + b->len : NULL;
}

void fmw_buf_commit(struct fmw_buf *b, size_t n)
{
    if (n == 0 || !b->data || n > b->alloc - b->len - 1)
        return; /* nothing written, or more than fmw_buf_spare() offered: not counted */
    b->len += n;
    b->data[b->len] = '\0';
}

void fmw_buf_truncate(struct fmw_buf *b, size_t n)
{
    if (n >= b->len)
        return;
    b->len = n;
    b->data[n] = '\0';
}

void fmw_buf_consume(struct fmw_buf *b, size_t n)
{
    if (n >= b->len) {
        fmw_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void fmw_buf_reset(struct fmw_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *fmw_buf_take(struct fmw_buf *b)
{
    char *p = b->data;
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    return p;
}

void fmw_buf_free(struct fmw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

struct fmw_str fmw_str_c(const char *s)
{
    struct fmw_str r = {s, s ? strlen(s) : 0};
    return r;
}

bool fmw_str_eq(struct fmw_str a, struct fmw_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool fmw_str_eq_c(struct fmw_str a, const char *s)
{
    return fmw_str_eq(a, fmw_str_c(s));
}

bool fmw_str_starts_with(struct fmw_str a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.len >= n && memcmp(a.ptr, prefix, n) == 0;
}

struct fmw_str fmw_str_trim_java(struct fmw_str s)
{
    /* UTF-8 continuation and lead bytes are >= 0x80, so a byte-wise test equals Java's. */
    while (s.len && (unsigned char)s.ptr[0] <= 0x20) {
        s.ptr++;
        s.len--;
    }
    while (s.len && (unsigned char)s.ptr[s.len - 1] <= 0x20)
        s.len--;
    return s;
}

char *fmw_str_dup(struct fmw_str s)
{
    char *p = malloc(s.len + 1);
    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

enum fmw_err fmw_buf_add_json_string(struct fmw_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    enum fmw_err err = fmw_buf_addc(out, '"');
    size_t run = 0; /* bytes copied as they are, flushed in one go */
    for (size_t i = 0; i < len && !err; i++) {
        /* Bytes >= 0x80 go out as they are too: only those under 0x20, '"' and '\\' are
         * escaped. Eight plain bytes at a time while there are. */
        while (len - i >= 8 && fmw_json_plain8((const unsigned char *)s + i)) {
            i += 8;
            run += 8;
        }
        if (i >= len)
            break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        err = fmw_buf_add(out, s + i - run, run);
        run = 0;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
            break;
        }
        if (!err)
            err = fmw_buf_add(out, esc, n);
    }
    if (!err)
        err = fmw_buf_add(out, s + len - run, run);
    return err ? err : fmw_buf_addc(out, '"');
}

size_t fmw_utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned c = *p;
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool fmw_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        if (end - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            if ((v & 0x8080808080808080ull) == 0) {
                p += 8;
                continue;
            }
        }
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t len = fmw_utf8_seq(p, (size_t)(end - p));
        if (!len)
            return false;
        p += len;
    }
    return true;
}

void fmw_utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t left = strlen(s);
    while (left > 0) {
        size_t len = *p < 0x80 ? 1 : fmw_utf8_seq(p, left);
        if (!len) {
            *p = '?';
            len = 1;
        }
        p += len;
        left -= len;
    }
}

void *fmw_calloc(size_t n, size_t size)
{
    if (n == 0 || size == 0)
        n = size = 1;
    return calloc(n, size);
}

char *fmw_strdup(const char *s)
{
    return fmw_str_dup(fmw_str_c(s));
}
