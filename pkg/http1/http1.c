/* pkg/http1: chunked bodies and field-value lists. */
#include "pkg/http1/http1.h"

#include <string.h>
#include <strings.h>

enum fmw_err fmw_chunked_feed(struct fmw_chunked *c, const char *p, size_t n, struct fmw_buf *body,
                              size_t *used)
{
    size_t i = 0;
    while (i < n && c->state != FMW_CH_DONE) {
        if (c->state == FMW_CH_DATA) {
            size_t take = n - i < c->left ? n - i : (size_t)c->left;
            if (fmw_buf_add(body, p + i, take) != FMW_OK)
                return FMW_ETOOBIG;
            i += take;
            c->left -= take;
            if (c->left == 0)
                c->state = FMW_CH_DATA_END;
            continue;
        }
        char ch = p[i++];
        if (c->state == FMW_CH_TRAILER && ++c->trailer_bytes > FMW_CHUNKED_TRAILERS_MAX)
            return FMW_EINVAL;
        if (ch != '\n') {
            if (c->line_len + 1 >= sizeof c->line)
                return FMW_EINVAL;
            c->line[c->line_len++] = ch;
            continue;
        }
        size_t len = c->line_len;
        if (len && c->line[len - 1] == '\r')
            len--;
        c->line_len = 0;
        if (c->state == FMW_CH_DATA_END) {
            if (len != 0)
                return FMW_EINVAL;
            c->state = FMW_CH_SIZE;
        } else if (c->state == FMW_CH_SIZE) {
            uint64_t size = 0;
            size_t k = 0;
            for (; k < len; k++) {
                char x = c->line[k];
                int v = x >= '0' && x <= '9'   ? x - '0'
                        : x >= 'a' && x <= 'f' ? x - 'a' + 10
                        : x >= 'A' && x <= 'F' ? x - 'A' + 10
                                               : -1;
                if (v < 0)
                    break;
                if (size > (UINT64_MAX >> 4))
                    return FMW_ETOOBIG;
                size = size * 16 + (uint64_t)v;
            }
            /* chunk-ext after ';' (white space allowed before it) is ignored */
            size_t e = k;
            while (e < len && (c->line[e] == ' ' || c->line[e] == '\t'))
                e++;
            if (k == 0 || (e < len && c->line[e] != ';'))
                return FMW_EINVAL;
            if (size > body->max - body->len)
                return FMW_ETOOBIG;
            c->left = size;
            c->state = size ? FMW_CH_DATA : FMW_CH_TRAILER;
        } else if (c->state == FMW_CH_TRAILER) {
            if (len == 0)
                c->state = FMW_CH_DONE; /* trailer fields are read and dropped */
        }
    }
    *used = i;
    return FMW_OK;
}

bool fmw_http_list_has(const char *value, size_t len, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(value + start, token, tl) == 0)
            return true;
    }
    return false;
}
