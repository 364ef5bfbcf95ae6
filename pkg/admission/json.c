/*
 * A JSON parser that builds a jansson tree, for the request body. jansson's own json_loadb reads
 * through a character stream (a callback, UTF-8 bookkeeping and a one-byte buffer append per
 * character) and spends ~180 instructions a byte; this one scans the buffer in place and calls
 * jansson only to make the values, about four times fewer. It accepts exactly what
 * json_loadb(JSON_REJECT_DUPLICATES) accepts — an object or array at the top, strict UTF-8, no
 * control characters or \u0000 in strings, paired surrogates, 64-bit integers, finite reals,
 * no duplicate keys, nesting to 2048 — and builds an equal tree. The writer at the end is
 * json_dumps(JSON_COMPACT) byte for byte, into the caller's buffer.
 * tests/unit/admission/test_json.c compares both with jansson's on chosen and on randomly broken
 * documents.
 */
#include "pkg/admission/admission_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH JSON_PARSER_MAX_DEPTH /* 2048, as json_loadb */

struct parser {
    const unsigned char *p, *end, *start;
    struct fmw_json_error *err;
    char *scratch; /* decoded strings with escapes */
    size_t scratch_cap;
    int depth;
    size_t values; /* values begun so far (FMW_JSON_MAX_VALUES) */
};

static json_t *fail(struct parser *ps, const unsigned char *at, const char *msg)
{
    struct fmw_json_error *e = ps->err;
    if (e && !e->text[0]) {
        int line = 1, column = 1;
        for (const unsigned char *q = ps->start; q < at && q < ps->end; q++) {
            if (*q == '\n') {
                line++;
                column = 1;
            } else {
                column++;
            }
        }
        e->line = line;
        e->column = column;
        e->position = (size_t)(at - ps->start);
        snprintf(e->text, sizeof e->text, "%s", msg);
    }
    return NULL;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static int hex4(const unsigned char *p, const unsigned char *end, uint32_t *out)
{
    if (end - p < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

static bool scratch_reserve(struct parser *ps, size_t need)
{
    if (need <= ps->scratch_cap)
        return true;
    size_t cap = ps->scratch_cap ? ps->scratch_cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    char *s = realloc(ps->scratch, cap);
    if (!s)
        return false;
    ps->scratch = s;
    ps->scratch_cap = cap;
    return true;
}

/*
 * A string whose opening quote is at ps->p. On success *out and *len give its bytes (into the
 * input when it has no escapes, else into ps->scratch) and ps->p is past the closing quote.
 */
static bool scan_string(struct parser *ps, const char **out, size_t *len)
{
    const unsigned char *s = ++ps->p, *p = s, *end = ps->end;
    /* Fast path: no escapes. */
    for (;;) {
        while (end - p >= 8 && fmw_json_plain8(p))
            p += 8;
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80)
            p++;
        if (p >= end) {
            fail(ps, p, "premature end of input in a string");
            return false;
        }
        if (*p == '"') {
            *out = (const char *)s;
            *len = (size_t)(p - s);
            ps->p = p + 1;
            return true;
        }
        if (*p == '\\')
            break;
        if (*p < 0x20) {
            fail(ps, p, "control character in a string");
            return false;
        }
        size_t n = fmw_utf8_seq(p, (size_t)(end - p));
        if (!n) {
            fail(ps, p, "invalid UTF-8 in a string");
            return false;
        }
        p += n;
    }
    /* With escapes: decode into scratch (never longer than the source). */
    size_t used = (size_t)(p - s);
    if (!scratch_reserve(ps, used + (size_t)(end - p) + 1)) {
        fail(ps, p, "out of memory");
        return false;
    }
    char *d = ps->scratch;
    memcpy(d, s, used);
    while (p < end && *p != '"') {
        unsigned c = *p;
        if (c < 0x20) {
            fail(ps, p, "control character in a string");
            return false;
        }
        if (c >= 0x80) {
            size_t n = fmw_utf8_seq(p, (size_t)(end - p));
            if (!n) {
                fail(ps, p, "invalid UTF-8 in a string");
                return false;
            }
            memcpy(d + used, p, n);
            used += n;
            p += n;
            continue;
        }
        if (c != '\\') {
            d[used++] = (char)c;
            p++;
            continue;
        }
        if (end - p < 2) {
            fail(ps, p, "premature end of input in a string");
            return false;
        }
        unsigned e = p[1];
        p += 2;
        switch (e) {
        case '"':
            d[used++] = '"';
            continue;
        case '\\':
            d[used++] = '\\';
            continue;
        case '/':
            d[used++] = '/';
            continue;
        case 'b':
            d[used++] = '\b';
            continue;
        case 'f':
            d[used++] = '\f';
            continue;
        case 'n':
            d[used++] = '\n';
            continue;
        case 'r':
            d[used++] = '\r';
            continue;
        case 't':
            d[used++] = '\t';
            continue;
        case 'u':
            break;
        default:
            fail(ps, p - 2, "invalid escape in a string");
            return false;
        }
        uint32_t cp;
        if (hex4(p, end, &cp) != 0) {
            fail(ps, p - 2, "invalid \\u escape in a string");
            return false;
        }
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) != 0 ||
                lo < 0xDC00 || lo > 0xDFFF) {
                fail(ps, p - 6, "invalid Unicode surrogate pair in a string");
                return false;
            }
            p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail(ps, p - 6, "invalid Unicode low surrogate in a string");
            return false;
        } else if (cp == 0) {
            fail(ps, p - 6, "\\u0000 is not allowed in a string");
            return false;
        }
        /* UTF-8 of cp: at most 4 bytes, never more than the 6 or 12 escape bytes it replaces. */
        if (cp < 0x80) {
            d[used++] = (char)cp;
        } else if (cp < 0x800) {
            d[used++] = (char)(0xC0 | (cp >> 6));
            d[used++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            d[used++] = (char)(0xE0 | (cp >> 12));
            d[used++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            d[used++] = (char)(0x80 | (cp & 0x3F));
        } else {
            d[used++] = (char)(0xF0 | (cp >> 18));
            d[used++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            d[used++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            d[used++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    if (p >= end) {
        fail(ps, p, "premature end of input in a string");
        return false;
    }
    ps->p = p + 1;
    *out = d;
    *len = used;
    return true;
}

/* Not inlined: its buffer would otherwise sit in every level of the parse_value recursion. */
__attribute__((noinline)) static json_t *parse_number(struct parser *ps)
{
    const unsigned char *s = ps->p, *p = s, *end = ps->end;
    bool neg = false, is_real = false;
    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return fail(ps, s, "invalid number");
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9')
            return fail(ps, s, "invalid number: a leading zero");
    } else {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && *p == '.') {
        is_real = true;
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return fail(ps, s, "invalid number: no digit after '.'");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_real = true;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return fail(ps, s, "invalid number: no digit in the exponent");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    ps->p = p;
    if (!is_real) {
        /* Accumulate negatively so that INT64_MIN fits; overflow is jansson's "too big". */
        const unsigned char *q = s + (neg ? 1 : 0);
        json_int_t v = 0;
        for (; q < p; q++) {
            int digit = *q - '0';
            if (v < (INT64_MIN + digit) / 10)
                return fail(ps, s, neg ? "too big negative integer" : "too big integer");
            v = v * 10 - digit;
        }
        if (!neg) {
            if (v == INT64_MIN)
                return fail(ps, s, "too big integer");
            v = -v;
        }
        json_t *j = json_integer(v);
        return j ? j : fail(ps, s, "out of memory");
    }
    char small[128];
    size_t n = (size_t)(p - s);
    char *text = n < sizeof small ? small : malloc(n + 1);
    if (!text)
        return fail(ps, s, "out of memory");
    memcpy(text, s, n);
    text[n] = '\0';
    errno = 0;
    double d = strtod(text, NULL);
    int overflow = errno == ERANGE && (d > 1.0 || d < -1.0);
    if (text != small)
        free(text);
    if (overflow)
        return fail(ps, s, "real number overflow");
    json_t *j = json_real(d);
    return j ? j : fail(ps, s, "out of memory");
}

static json_t *parse_value(struct parser *ps);

static json_t *parse_object(struct parser *ps)
{
    json_t *obj = json_object();
    if (!obj)
        return fail(ps, ps->p, "out of memory");
    ps->p++; /* '{' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return obj;
    }
    for (;;) {
        if (ps->p >= ps->end || *ps->p != '"')
            goto bad;
        const unsigned char *key_at = ps->p;
        const char *k;
        size_t klen;
        if (!scan_string(ps, &k, &klen))
            goto bad;
        /* A key with escapes sits in scratch, which the value's strings reuse: copy it aside
         * (on the heap, not the stack: this frame repeats once per nesting level). */
        char *key = (char *)k;
        if (k == ps->scratch) {
            key = malloc(klen + 1);
            if (!key) {
                fail(ps, key_at, "out of memory");
                goto bad;
            }
            memcpy(key, k, klen);
        }
        skip_ws(ps);
        json_t *value = NULL;
        if (ps->p < ps->end && *ps->p == ':') {
            ps->p++;
            skip_ws(ps);
            value = parse_value(ps);
        } else {
            fail(ps, ps->p, "':' expected");
        }
        size_t before = json_object_size(obj);
        int rc = value ? json_object_setn_new_nocheck(obj, key, klen, value) : -1;
        if (key != k)
            free(key);
        if (rc != 0) {
            fail(ps, key_at, "out of memory");
            goto bad;
        }
        if (json_object_size(obj) == before) {
            fail(ps, key_at, "duplicate object key");
            goto bad;
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return obj;
        }
        fail(ps, ps->p, "'}' or ',' expected");
        goto bad;
    }
bad:
    fail(ps, ps->p, "string or '}' expected");
    json_decref(obj);
    return NULL;
}

static json_t *parse_array(struct parser *ps)
{
    json_t *arr = json_array();
    if (!arr)
        return fail(ps, ps->p, "out of memory");
    ps->p++; /* '[' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return arr;
    }
    for (;;) {
        json_t *v = parse_value(ps);
        if (!v || json_array_append_new(arr, v) != 0) {
            fail(ps, ps->p, "out of memory");
            json_decref(arr);
            return NULL;
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return arr;
        }
        fail(ps, ps->p, "']' or ',' expected");
        json_decref(arr);
        return NULL;
    }
}

static bool literal(struct parser *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return false;
    ps->p += n;
    return true;
}

static json_t *parse_value(struct parser *ps)
{
    if (ps->p >= ps->end)
        return fail(ps, ps->p, "premature end of input");
    if (++ps->values > FMW_JSON_MAX_VALUES) {
        if (ps->err && !ps->err->text[0])
            ps->err->too_many_values = true;
        return fail(ps, ps->p, "more JSON values than any Kubernetes object holds");
    }
    json_t *v;
    switch (*ps->p) {
    case '{':
    case '[':
        if (++ps->depth > MAX_DEPTH)
            return fail(ps, ps->p, "maximum parsing depth reached");
        v = *ps->p == '{' ? parse_object(ps) : parse_array(ps);
        ps->depth--;
        return v;
    case '"': {
        const unsigned char *at = ps->p;
        const char *s;
        size_t len;
        if (!scan_string(ps, &s, &len))
            return NULL;
        v = json_stringn_nocheck(s, len);
        return v ? v : fail(ps, at, "out of memory");
    }
    case 't':
        if (literal(ps, "true", 4))
            return json_true();
        break;
    case 'f':
        if (literal(ps, "false", 5))
            return json_false();
        break;
    case 'n':
        if (literal(ps, "null", 4))
            return json_null();
        break;
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps);
        break;
    }
    return fail(ps, ps->p, "invalid token");
}

json_t *fmw_json_loadb(const char *text, size_t len, struct fmw_json_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
    struct parser ps = {(const unsigned char *)text,
                        (const unsigned char *)text + len,
                        (const unsigned char *)text,
                        err,
                        NULL,
                        0,
                        0,
                        0};
    skip_ws(&ps);
    json_t *root = NULL;
    if (ps.p >= ps.end || (*ps.p != '{' && *ps.p != '['))
        fail(&ps, ps.p, "'[' or '{' expected");
    else
        root = parse_value(&ps);
    if (root) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            fail(&ps, ps.p, "end of file expected");
            json_decref(root);
            root = NULL;
        }
    }
    free(ps.scratch);
    return root;
}

/* ---- compact serialisation, byte for byte json_dumps(JSON_COMPACT) ---- */

static enum fmw_err dump_string(const char *s, size_t len, struct fmw_buf *out)
{
    return fmw_buf_add_json_string(out, s, len);
}

static enum fmw_err dump_value(const json_t *j, struct fmw_buf *out, int depth)
{
    if (depth > MAX_DEPTH)
        return FMW_ETOOBIG;
    enum fmw_err err = FMW_OK;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        size_t key_len;
        json_t *v;
        bool first = true;
        err = fmw_buf_addc(out, '{');
        /* Insertion order, as json_dumps without JSON_SORT_KEYS. */
        json_object_keylen_foreach((json_t *)j, key, key_len, v)
        {
            if (!first && !err)
                err = fmw_buf_addc(out, ',');
            first = false;
            if (!err)
                err = dump_string(key, key_len, out);
            if (!err)
                err = fmw_buf_addc(out, ':');
            if (!err)
                err = dump_value(v, out, depth + 1);
            if (err)
                return err;
        }
        return fmw_buf_addc(out, '}');
    }
    case JSON_ARRAY: {
        err = fmw_buf_addc(out, '[');
        for (size_t i = 0; i < json_array_size(j) && !err; i++) {
            if (i)
                err = fmw_buf_addc(out, ',');
            if (!err)
                err = dump_value(json_array_get(j, i), out, depth + 1);
        }
        return err ? err : fmw_buf_addc(out, ']');
    }
    case JSON_STRING:
        return dump_string(json_string_value(j), json_string_length(j), out);
    case JSON_INTEGER:
        return fmw_buf_addf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    case JSON_TRUE:
        return fmw_buf_add(out, "true", 4);
    case JSON_FALSE:
        return fmw_buf_add(out, "false", 5);
    case JSON_NULL:
        return fmw_buf_add(out, "null", 4);
    case JSON_REAL: {
        /* Rare in a review: jansson's own formatting, to stay byte for byte. */
        char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        err = text ? fmw_buf_adds(out, text) : FMW_ENOMEM;
        free(text);
        return err;
    }
    }
    return FMW_EINTERNAL;
}

enum fmw_err fmw_json_dump(const json_t *j, struct fmw_buf *out)
{
    return j ? dump_value(j, out, 0) : FMW_EINVAL;
}
