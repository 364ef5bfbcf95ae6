/*
 * pkg/base: the few things every package shares — one result code, diagnostics, capped growable
 * buffers and (pointer, length) string slices. Nothing here knows about Flink or Kubernetes.
 */
#ifndef FMW_BASE_H
#define FMW_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results that must be looked at: ignoring one is a bug unless cast to void on purpose. Clang
 * takes the cast as that purpose and GCC does not, so the attribute is given to clang, and
 * `make lint` compiles pkg/ and cmd/ with clang and -Werror=unused-result. */
#if defined(__clang__)
#define FMW_NODISCARD __attribute__((warn_unused_result))
#else
#define FMW_NODISCARD
#endif

/*
 * Result codes: 0 is success, every failure is negative (libuv's convention). The three "config"
 * codes mirror the Java exception classes Flink throws, because whether Flink prefixes a message
 * ("JobManager memory configuration failed: ") depends on that class.
 */
enum fmw_err {
    FMW_OK = 0,
    FMW_ENOMEM = -1,     /* allocation failed */
    FMW_EINVAL = -2,     /* bad input: Java IllegalArgumentException and plain parse errors */
    FMW_ECONFIG = -3,    /* configuration rejected: Java IllegalConfigurationException */
    FMW_EOVERFLOW = -4,  /* arithmetic overflow: Java ArithmeticException("long overflow") */
    FMW_ETOOBIG = -5,    /* a cap was reached (buffer, body, nesting) */
    FMW_EIO = -6,        /* file or network I/O failed */
    FMW_ENOTFOUND = -7,  /* the thing looked up does not exist */
    FMW_ETIMEDOUT = -8,  /* a deadline passed */
    FMW_EUSAGE = -9,     /* the caller used an interface wrongly (bad flag, bad argument) */
    FMW_EINTERNAL = -10, /* a bug of ours; never caused by input alone */
    FMW_EAGAIN = -11     /* the work would have to wait (I/O) where waiting is not allowed */
};

/* A short stable name for a code, e.g. "EINVAL"; never NULL. */
const char *fmw_strerror(enum fmw_err err);

/* CLOCK_MONOTONIC, in nanoseconds: deadlines and durations (a wall clock set back moves none). */
uint64_t fmw_now_ns(void);

/*
 * Details of a failure. `msg` is owned by the diag (NULL when nothing was said); parsers also set
 * `line`/`column` (1-based, 0 when unknown). A diag must be released with fmw_diag_cleanup().
 * Functions taking `struct fmw_diag *` accept NULL when the caller wants no details.
 */
struct fmw_diag {
    char *msg;
    int line;
    int column;
};

#define FMW_DIAG_INIT                                                                              \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Longest message a diag keeps; longer texts are cut (user-controlled text can be huge). */
#define FMW_DIAG_MAX 65536

/* Replaces the diag's message with the formatted text and returns `err`, so callers can write
 * `return fmw_diag_set(d, FMW_EINVAL, "...", ...)`. A NULL diag only returns `err`. */
enum fmw_err fmw_diag_set(struct fmw_diag *d, enum fmw_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum fmw_err fmw_diag_vset(struct fmw_diag *d, enum fmw_err err, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Puts `prefix` in front of the current message (e.g. a container name). */
FMW_NODISCARD enum fmw_err fmw_diag_prefix(struct fmw_diag *d, const char *prefix);
/* The message, or "" when none was set. Borrowed: valid until the diag changes. */
const char *fmw_diag_msg(const struct fmw_diag *d);
void fmw_diag_cleanup(struct fmw_diag *d);

/*
 * A growable byte buffer with a hard cap set at init (curl's dynbuf). The content is always
 * NUL-terminated so it can be used as a C string. Appending past the cap fails with FMW_ETOOBIG
 * and leaves the buffer as it was.
 */
struct fmw_buf {
    char *data;
    size_t len;
    size_t alloc;
    size_t max;
};

void fmw_buf_init(struct fmw_buf *b, size_t max);
FMW_NODISCARD enum fmw_err fmw_buf_add(struct fmw_buf *b, const void *p, size_t n);
FMW_NODISCARD enum fmw_err fmw_buf_adds(struct fmw_buf *b, const char *s);
FMW_NODISCARD enum fmw_err fmw_buf_addc(struct fmw_buf *b, char c);
FMW_NODISCARD enum fmw_err fmw_buf_addf(struct fmw_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
FMW_NODISCARD enum fmw_err fmw_buf_vaddf(struct fmw_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* The content as a C string; "" for an empty buffer. Borrowed. */
const char *fmw_buf_cstr(const struct fmw_buf *b);
/* Empties the buffer and keeps its memory. */
void fmw_buf_reset(struct fmw_buf *b);
/* Hands the content over to the caller (free() it); the buffer is left empty. NULL when empty. */
char *fmw_buf_take(struct fmw_buf *b);
void fmw_buf_free(struct fmw_buf *b);

/*
 * Storage managed by the caller (pkg/server's pool of connection buffers, a read into the free
 * room): no other code writes a buffer's fields.
 */
/* Storage of exactly `size` bytes (realloc; the content is kept, and cut when it no longer
 * fits with its NUL). FMW_ETOOBIG past max + 1 bytes, FMW_ENOMEM. */
FMW_NODISCARD enum fmw_err fmw_buf_resize(struct fmw_buf *b, size_t size);
/* An empty buffer without storage takes `data` (from malloc, `size` > 0 bytes) as its own. */
void fmw_buf_adopt(struct fmw_buf *b, char *data, size_t size);
/* Gives the storage up (its size in *size); the buffer is left empty, without storage. */
char *fmw_buf_release(struct fmw_buf *b, size_t *size);
/* Where bytes may be written after the content, and how many (*room; the NUL keeps its byte). */
char *fmw_buf_spare(struct fmw_buf *b, size_t *room);
/* Counts `n` bytes written at fmw_buf_spare() as content (n <= its room). */
void fmw_buf_commit(struct fmw_buf *b, size_t n);
/* Cuts the content to its first `n` bytes (no-op when it is not longer). */
void fmw_buf_truncate(struct fmw_buf *b, size_t n);
/* Drops the first `n` bytes of the content; the rest moves to the front. */
void fmw_buf_consume(struct fmw_buf *b, size_t n);

/* A borrowed (pointer, length) slice of text; not NUL-terminated. */
struct fmw_str {
    const char *ptr;
    size_t len;
};

#define FMW_STR_LIT(s) ((struct fmw_str){(s), sizeof(s) - 1})

struct fmw_str fmw_str_c(const char *s);
bool fmw_str_eq(struct fmw_str a, struct fmw_str b);
bool fmw_str_eq_c(struct fmw_str a, const char *s);
bool fmw_str_starts_with(struct fmw_str a, const char *prefix);
/* Java String.trim(): drops leading and trailing characters <= U+0020. */
struct fmw_str fmw_str_trim_java(struct fmw_str s);
/* A NUL-terminated heap copy (free() it), or NULL when out of memory. */
char *fmw_str_dup(struct fmw_str s);

/*
 * True when none of the 8 bytes at p needs a second look in a JSON string: each is printable
 * ASCII (0x20..0x7F) other than '"' and '\\'. Word-at-a-time (SWAR): a byte's high bit in the
 * mask marks one that is >= 0x80, < 0x20 (borrow of the subtraction), or equal to '"' or '\\'
 * (zero after the XOR). The "any" answer is exact; which byte it was, a byte loop finds. Inline:
 * the JSON scanner and writer call it in their innermost loops.
 */
static inline bool fmw_json_plain8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
    uint64_t quote = v ^ (ones * '"'), backslash = v ^ (ones * '\\');
    uint64_t special = v | ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) |
                       ((backslash - ones) & ~backslash);
    return (special & highs) == 0;
}

/* Length of the well-formed UTF-8 sequence that starts with the non-ASCII byte at p (at most
 * `avail` bytes there): 2 to 4, or 0 when there is none (overlong forms, surrogates and code
 * points past U+10FFFF are not well-formed). */
size_t fmw_utf8_seq(const unsigned char *p, size_t avail);

/* Appends s[0..len) as a JSON string, quotes included, escaped as jansson's json_dumps does
 * without flags: '"', '\\' and control characters (\b \f \n \r \t, else \u00XX); other bytes
 * as they are. */
FMW_NODISCARD enum fmw_err fmw_buf_add_json_string(struct fmw_buf *out, const char *s, size_t len);

/* True when the n bytes at s are well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF). ASCII runs are checked eight bytes at a time. */
bool fmw_utf8_valid(const char *s, size_t n);

/* Replaces, in the NUL-terminated `s`, every byte that is not part of well-formed UTF-8 with
 * '?' (user text cut by a "%.Ns" can end in half a character). */
void fmw_utf8_scrub(char *s);

/* Allocation helpers that never return NULL for a zero size and check multiplication. */
void *fmw_calloc(size_t n, size_t size);
char *fmw_strdup(const char *s);

#endif
