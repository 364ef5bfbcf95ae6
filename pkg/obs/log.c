/*
 * Structured logs: one JSON object per line. Lines are built in a fixed buffer on the caller's
 * stack (no allocation, so logging works when memory is short) and written with one write(2),
 * which keeps lines from different threads whole.
 */
#include "pkg/obs/obs.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "pkg/obs/obs_int.h"

static _Atomic int g_min_level = FMW_LOG_INFO;
static _Atomic int g_fd = 2;

/* Room kept free for what fmw_log_end() must still write: ,"truncated":true, the closing braces
 * of every open object and the newline. */
#define LOG_RESERVE 32
/* Deepest nesting; deeper fmw_log_object_begin() calls are ignored (and their fields dropped). */
#define LOG_MAX_DEPTH 4

void fmw_log_setup(enum fmw_log_level min_level, int fd)
{
    atomic_store(&g_min_level, (int)min_level);
    atomic_store(&g_fd, fd);
}

enum fmw_err fmw_log_level_parse(const char *text, enum fmw_log_level *out)
{
    static const struct {
        const char *name;
        enum fmw_log_level level;
    } names[] = {{"debug", FMW_LOG_DEBUG},
                 {"info", FMW_LOG_INFO},
                 {"warn", FMW_LOG_WARN},
                 {"warning", FMW_LOG_WARN},
                 {"error", FMW_LOG_ERROR}};
    for (size_t i = 0; text && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(text, names[i].name) == 0) {
            *out = names[i].level;
            return FMW_OK;
        }
    }
    return FMW_EINVAL;
}

const char *fmw_log_level_name(enum fmw_log_level level)
{
    switch (level) {
    case FMW_LOG_DEBUG:
        return "debug";
    case FMW_LOG_INFO:
        return "info";
    case FMW_LOG_WARN:
        return "warn";
    case FMW_LOG_ERROR:
        return "error";
    }
    return "info";
}

bool fmw_log_enabled(enum fmw_log_level level)
{
    return (int)level >= atomic_load_explicit(&g_min_level, memory_order_relaxed);
}

/* Appends raw bytes; false (and nothing written) when they would eat into the reserve. */
static bool put(struct fmw_log_line *l, const char *p, size_t n)
{
    if (n > FMW_LOG_LINE_MAX - LOG_RESERVE - l->len)
        return false;
    memcpy(l->buf + l->len, p, n);
    l->len += n;
    return true;
}

static bool putc_(struct fmw_log_line *l, char c)
{
    return put(l, &c, 1);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when it is not valid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    return p[0] < 0x80 ? 1 : fmw_utf8_seq(p, n);
}

/* Appends a JSON string literal. */
static bool put_json_string(struct fmw_log_line *l, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (!putc_(l, '"'))
        return false;
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        char esc[8];
        const char *rep = NULL;
        size_t rep_len = 0;
        size_t adv = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rep = esc;
            rep_len = 2;
        } else if (c < 0x20 || c == 0x7F) {
            const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (named) {
                rep = named;
                rep_len = 2;
            } else {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                rep = esc;
                rep_len = 6;
            }
        } else if (c >= 0x80) {
            adv = utf8_len(p + i, n - i);
            if (adv == 0) {
                rep = "\\ufffd";
                rep_len = 6;
                adv = 1;
            }
        }
        if (rep ? !put(l, rep, rep_len) : !put(l, s + i, adv))
            return false;
        i += adv;
    }
    return putc_(l, '"');
}

/* Keys whose values are never written: credentials must not reach logs even by mistake. */
static bool secret_key(const char *key)
{
    static const char *const words[] = {"token", "passw", "secret", "authoriz", "cookie"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(key, words[i]))
            return true;
    return false;
}

/*
 * Writes the separator and "key": of a field. On failure the line is rolled back to `mark` by
 * the caller, and the line is marked truncated.
 */
static bool put_key(struct fmw_log_line *l, const char *key)
{
    if (l->need_sep && !putc_(l, ','))
        return false;
    if (!put_json_string(l, key ? key : "", key ? strlen(key) : 0))
        return false;
    return putc_(l, ':');
}

/* Common frame of every field: checks the line is live, writes the key, lets `value` write the
 * value, and rolls the whole field back when it does not fit. */
static bool field_begin(struct fmw_log_line *l, const char *key, size_t *mark)
{
    if (!l->active || l->truncated)
        return false;
    *mark = l->len;
    if (!put_key(l, key)) {
        l->len = *mark;
        l->truncated = true;
        return false;
    }
    return true;
}

static void field_end(struct fmw_log_line *l, size_t mark, bool ok)
{
    if (ok) {
        l->need_sep = true;
    } else {
        l->len = mark;
        l->truncated = true;
    }
}

bool fmw_log_begin(struct fmw_log_line *l, enum fmw_log_level level, const char *msg)
{
    l->len = 0;
    l->depth = 0;
    l->need_sep = false;
    l->truncated = false;
    l->level = level;
    l->active = fmw_log_enabled(level);
    if (!l->active)
        return false;

    /* The date and time to the second are formatted once a second per thread. */
    static _Thread_local time_t tl_second = -1;
    static _Thread_local char tl_prefix[32];
    static _Thread_local size_t tl_prefix_len;
    struct timespec now;
    char ts[48];
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != tl_second) {
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        tl_prefix_len = strftime(tl_prefix, sizeof(tl_prefix), "%Y-%m-%dT%H:%M:%S", &tm);
        tl_second = now.tv_sec;
    }
    memcpy(ts, tl_prefix, tl_prefix_len);
    unsigned ms = (unsigned)(now.tv_nsec / 1000000L);
    char *t = ts + tl_prefix_len;
    t[0] = '.';
    t[1] = (char)('0' + ms / 100);
    t[2] = (char)('0' + ms / 10 % 10);
    t[3] = (char)('0' + ms % 10);
    t[4] = 'Z';
    t[5] = '\0';

    putc_(l, '{');
    fmw_log_str(l, "ts", ts);
    fmw_log_str(l, "level", fmw_log_level_name(level));
    fmw_log_str(l, "msg", msg ? msg : "");
    return true;
}

void fmw_log_strn(struct fmw_log_line *l, const char *key, struct fmw_str value)
{
    size_t mark;
    if (!field_begin(l, key, &mark))
        return;
    bool ok;
    if (secret_key(key ? key : ""))
        ok = put_json_string(l, "[redacted]", 10);
    else if (!value.ptr)
        ok = put(l, "null", 4);
    else
        ok = put_json_string(l, value.ptr, value.len);
    field_end(l, mark, ok);
}

void fmw_log_str(struct fmw_log_line *l, const char *key, const char *value)
{
    fmw_log_strn(l, key, (struct fmw_str){value, value ? strlen(value) : 0});
}

/* Numbers are written as text already formatted; secrets are redacted like strings. */
static void put_number(struct fmw_log_line *l, const char *key, const char *text)
{
    size_t mark;
    if (!field_begin(l, key, &mark))
        return;
    bool ok = secret_key(key ? key : "") ? put_json_string(l, "[redacted]", 10)
                                         : put(l, text, strlen(text));
    field_end(l, mark, ok);
}

void fmw_log_int(struct fmw_log_line *l, const char *key, int64_t value)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRId64, value);
    put_number(l, key, text);
}

void fmw_log_uint(struct fmw_log_line *l, const char *key, uint64_t value)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRIu64, value);
    put_number(l, key, text);
}

void fmw_log_double(struct fmw_log_line *l, const char *key, double value)
{
    char text[FMW_OBS_DOUBLE_MAX];
    /* JSON has no NaN or infinities. */
    if (!isfinite(value))
        snprintf(text, sizeof(text), "null");
    else
        fmw_obs_fmt_double(text, value);
    put_number(l, key, text);
}

void fmw_log_fixed(struct fmw_log_line *l, const char *key, int64_t value, unsigned decimals)
{
    char text[32], *p = text + sizeof(text);
    if (decimals < 1 || decimals > 9)
        decimals = 3;
    bool negative = value < 0;
    uint64_t v = negative ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    *--p = '\0';
    for (unsigned i = 0; i < decimals; i++, v /= 10)
        *--p = (char)('0' + v % 10);
    *--p = '.';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (negative)
        *--p = '-';
    put_number(l, key, p);
}

void fmw_log_bool(struct fmw_log_line *l, const char *key, bool value)
{
    put_number(l, key, value ? "true" : "false");
}

void fmw_log_object_begin(struct fmw_log_line *l, const char *key)
{
    size_t mark;
    if (l->depth >= LOG_MAX_DEPTH) {
        l->truncated = true;
        return;
    }
    if (!field_begin(l, key, &mark))
        return;
    /* The reserve holds one closing brace per open object, so opening one must fit it too. */
    if (!putc_(l, '{') || l->len + (size_t)l->depth + 2 > FMW_LOG_LINE_MAX - LOG_RESERVE) {
        l->len = mark;
        l->truncated = true;
        return;
    }
    l->depth++;
    l->need_sep = false;
}

void fmw_log_object_end(struct fmw_log_line *l)
{
    if (!l->active || l->depth == 0)
        return;
    /* Closing always fits: the reserve holds a brace for each open object. */
    l->buf[l->len++] = '}';
    l->depth--;
    l->need_sep = true;
}

void fmw_log_end(struct fmw_log_line *l)
{
    if (!l->active)
        return;
    if (l->truncated) {
        /* Fields at the innermost level were cut; the marker goes to the top level. */
        while (l->depth > 0) {
            l->buf[l->len++] = '}';
            l->depth--;
        }
        static const char mark[] = ",\"truncated\":true";
        memcpy(l->buf + l->len, mark, sizeof(mark) - 1);
        l->len += sizeof(mark) - 1;
    }
    while (l->depth > 0) {
        l->buf[l->len++] = '}';
        l->depth--;
    }
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    l->active = false;

    int fd = atomic_load_explicit(&g_fd, memory_order_relaxed);
    const char *p = l->buf;
    size_t left = l->len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* nowhere to report a failed log write; drop the line */
        p += n;
        left -= (size_t)n;
    }
}

void fmw_logf(enum fmw_log_level level, const char *fmt, ...)
{
    if (!fmw_log_enabled(level))
        return;
    char msg[FMW_LOG_LINE_MAX - 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct fmw_log_line line;
    fmw_log_begin(&line, level, msg);
    fmw_log_end(&line);
}
