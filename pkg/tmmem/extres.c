/*
 * External resources (1.13+), as the TaskManager's dynamic configs carry them: Flink's
 * ExternalResourceUtils.getExternalResourceAmountMap, the list option's conversion
 * (ConfigurationUtils.convertToList, StructuredOptionsSplitter) and ExternalResource's value.
 */
#include "pkg/tmmem/tmmem_int.h"

#include "pkg/memsize/memsize.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct fmw_pm_option OPT_EXTERNAL_RESOURCES = {
    FMW_TM_EXTERNAL_RESOURCES, {NULL}, "[]", 0, 0};

/* A list of names being read (each a heap string), capped at FMW_TM_RESOURCES_MAX. */
struct names {
    char **items;
    size_t len;
};

static void names_free(struct names *n)
{
    for (size_t i = 0; i < n->len; i++)
        free(n->items[i]);
    free(n->items);
    n->items = NULL;
    n->len = 0;
}

static enum fmw_err names_add(struct names *n, const char *s, size_t len)
{
    if (n->len >= FMW_TM_RESOURCES_MAX)
        return FMW_ETOOBIG;
    if (!n->items) {
        n->items = fmw_calloc(FMW_TM_RESOURCES_MAX, sizeof *n->items);
        if (!n->items)
            return FMW_ENOMEM;
    }
    char *copy = fmw_str_dup((struct fmw_str){s, len});
    if (!copy)
        return FMW_ENOMEM;
    n->items[n->len++] = copy;
    return FMW_OK;
}

/* The code point at p (UTF-8; a byte that is none counts alone), and its length in bytes. */
static uint32_t code_point(const unsigned char *p, const unsigned char *end, size_t *len)
{
    size_t n = *p < 0x80 ? 1 : fmw_utf8_seq(p, (size_t)(end - p));
    if (n <= 1) {
        *len = 1;
        return *p < 0x80 ? *p : 0xFFFD;
    }
    *len = n;
    if (n == 2)
        return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    if (n == 3)
        return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
           ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

/* Character.isWhitespace: Unicode space separators other than the no-break ones, and the
 * ASCII controls \t \n \v \f \r and U+001C..U+001F. */
static bool java_whitespace(uint32_t c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x2006) || (c >= 0x2008 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x205F || c == 0x3000;
}

enum token_type { T_DOUBLE_QUOTED, T_SINGLE_QUOTED, T_UNQUOTED, T_DELIMITER };

/*
 * StructuredOptionsSplitter.splitEscaped(text, ';'): tokens are quoted strings ('' or "" inside
 * stands for the quote), unquoted runs up to the next ';' (trimmed), and delimiters; two
 * delimiters in a row make an empty item; a quoted token must be followed by a delimiter.
 * A failure is an IllegalArgumentException (an unclosed quote, or a quoted token followed by
 * something else) that Flink wraps into "Could not parse value ...": FMW_EINVAL, without text.
 */
static enum fmw_err split_escaped(const char *text, struct names *out)
{
    const char *end = text + strlen(text);
    enum token_type prev = T_DELIMITER;
    bool have_prev = false;
    struct fmw_buf tok;
    fmw_buf_init(&tok, FMW_CONF_MAX_TEXT);
    enum fmw_err err = FMW_OK;
    /* processTokens looks one token ahead; it is run here as each token arrives. */
    const char *p = text;
    while (p < end && !err) {
        enum token_type type;
        fmw_buf_reset(&tok);
        if (*p == '\'' || *p == '"') {
            char quote = *p++;
            bool closed = false;
            while (p < end && !err) {
                if (*p == quote) {
                    if (p + 1 < end && p[1] == quote) {
                        err = fmw_buf_addc(&tok, quote);
                        p += 2;
                        continue;
                    }
                    p++;
                    closed = true;
                    break;
                }
                err = fmw_buf_addc(&tok, *p++);
            }
            if (!err && !closed)
                err = FMW_EINVAL; /* "Quoting was not closed properly." */
            type = quote == '"' ? T_DOUBLE_QUOTED : T_SINGLE_QUOTED;
        } else if (*p == ';') {
            type = T_DELIMITER;
            p++;
        } else {
            size_t len;
            uint32_t c = code_point((const unsigned char *)p, (const unsigned char *)end, &len);
            if (java_whitespace(c)) {
                p += len;
                continue;
            }
            const char *start = p;
            while (p < end && *p != ';')
                p++;
            struct fmw_str run = fmw_str_trim_java((struct fmw_str){start, (size_t)(p - start)});
            err = fmw_buf_add(&tok, run.ptr, run.len);
            type = T_UNQUOTED;
        }
        if (err)
            break;
        /* The previous token, now that the next one is known. */
        if (have_prev && (prev == T_DOUBLE_QUOTED || prev == T_SINGLE_QUOTED) &&
            type != T_DELIMITER) {
            err = FMW_EINVAL; /* "Illegal quoting at position: <n>" */
            break;
        }
        if (have_prev && prev == T_DELIMITER && type == T_DELIMITER)
            err = names_add(out, "", 0);
        if (!err && type != T_DELIMITER)
            err = names_add(out, fmw_buf_cstr(&tok), tok.len);
        prev = type;
        have_prev = true;
    }
    fmw_buf_free(&tok);
    return err;
}

/* A YAML 1.2 core-schema null, which a list item may not be here: Flink's conversion of the
 * item throws and the legacy splitter reads the text instead. */
static bool yaml_null(struct fmw_str s)
{
    return s.len == 0 || fmw_str_eq_c(s, "~") || fmw_str_eq_c(s, "null") ||
           fmw_str_eq_c(s, "Null") || fmw_str_eq_c(s, "NULL");
}

/*
 * A collection inside the list, "[fpga, 'q;r']" or "{a: 1}", from `*p` (its opening bracket) to
 * its closing one; a quote opens a quoted scalar only where a scalar starts (a plain one may hold
 * quotes: it's). False when it is not closed on this text.
 */
static bool skip_flow_collection(const char **p, const char *end)
{
    int depth = 0;
    bool scalar_start = true;
    while (*p < end) {
        char c = *(*p)++;
        if (c == '[' || c == '{') {
            depth++;
            scalar_start = true;
        } else if (c == ']' || c == '}') {
            if (--depth == 0)
                return true;
            scalar_start = false;
        } else if (c == ',' || (c == ':' && (*p == end || **p == ' ' || **p == '\t'))) {
            scalar_start = true;
        } else if (c == '\'' && scalar_start) {
            while (*p < end && !(**p == '\'' && (*p + 1 >= end || (*p)[1] != '\'')))
                *p += **p == '\'' ? 2 : 1;
            if (*p >= end)
                return false;
            (*p)++;
            scalar_start = false;
        } else if (c == '"' && scalar_start) {
            while (*p < end && **p != '"')
                *p += **p == '\\' && *p + 1 < end ? 2 : 1;
            if (*p >= end)
                return false;
            (*p)++;
            scalar_start = false;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            scalar_start = false;
        }
    }
    return false;
}

/*
 * YamlParserUtils.convertToObject(text, List.class), the first step of
 * ConfigurationUtils.convertToList for standard YAML: the text as a YAML document, which must be a
 * list ("[gpu, fpga]", "- gpu", "[gpu, [fpga]]  # c"). Our YAML reader is pkg/flinkconf's, which
 * takes documents whose root is a mapping: the text is read as the value of one key, each of its
 * lines indented under it, and the list comes back as the flow text Flink's emitter writes
 * (snakeyaml's dump: "[gpu, fpga]", "[gpu, [fpga]]", "[a'b, 'x;y']"). False when the text is not
 * YAML or not a list: Flink then reads it with the legacy splitter. (A text with document markers,
 * "--- [a]", is not modelled: indented they are content.)
 */
static bool yaml_list_text(const char *text, struct fmw_buf *flow, enum fmw_err *err)
{
    struct fmw_buf doc;
    fmw_buf_init(&doc, FMW_CONF_MAX_TEXT);
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    struct fmw_diag d = FMW_DIAG_INIT;
    *err = fmw_buf_adds(&doc, "v:\n");
    for (const char *line = text; !*err && line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        *err = fmw_buf_adds(&doc, "  ");
        if (!*err)
            *err = fmw_buf_add(&doc, line, len);
        if (!*err)
            *err = fmw_buf_addc(&doc, '\n');
        line = nl ? nl + 1 : NULL;
    }
    bool list = false;
    if (!*err && fmw_conf_parse_yaml(&conf, fmw_buf_cstr(&doc), doc.len, &d, NULL) == FMW_OK) {
        const struct fmw_conf_entry *e = fmw_conf_get(&conf, "v");
        list = e && e->type == FMW_CONF_LIST;
        if (list)
            *err = fmw_buf_adds(flow, e->text);
    }
    if (*err == FMW_ETOOBIG) /* a text past the reader's caps: not modelled, the legacy way */
        *err = FMW_OK;
    fmw_diag_cleanup(&d);
    fmw_conf_cleanup(&conf);
    fmw_buf_free(&doc);
    return list && !*err;
}

/*
 * The items of a list in the flow text yaml_list_text gives: plain and quoted scalars as their
 * text, and a collection inside the list as its own flow text, "[fpga]" or "{a: 1}" (what
 * ConfigurationUtils.convertToString makes of a list or a map: YamlParserUtils.toYAMLString).
 * False when the text is not such a list.
 */
static bool yaml_flow_list(const char *text, struct names *out, enum fmw_err *err)
{
    const char *p = text;
    const char *end = text + strlen(text);
#define SKIP_BLANKS()                                                                              \
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))                       \
    p++
    *err = FMW_OK;
    SKIP_BLANKS();
    if (p == end || *p != '[')
        return false;
    p++;
    struct fmw_buf item;
    fmw_buf_init(&item, FMW_CONF_MAX_TEXT);
    bool ok = false;
    for (;;) {
        SKIP_BLANKS();
        if (p < end && *p == ']') {
            p++;
            ok = true;
            break;
        }
        fmw_buf_reset(&item);
        if (p < end && (*p == '[' || *p == '{')) {
            const char *start = p;
            if (!skip_flow_collection(&p, end))
                break;
            *err = fmw_buf_add(&item, start, (size_t)(p - start));
            if (*err)
                break;
        } else if (p < end && (*p == '\'' || *p == '"')) {
            char quote = *p++;
            bool closed = false;
            while (p < end && !*err) {
                if (*p == quote && quote == '\'' && p + 1 < end && p[1] == '\'') {
                    *err = fmw_buf_addc(&item, '\'');
                    p += 2;
                } else if (*p == quote) {
                    p++;
                    closed = true;
                    break;
                } else if (quote == '"' && *p == '\\') {
                    /* The escapes the emitter writes (pkg/flinkconf's emit_string). */
                    char c = p + 1 < end ? p[1] : '\0';
                    unsigned hex;
                    if (c == '\\' || c == '"') {
                        *err = fmw_buf_addc(&item, c);
                        p += 2;
                    } else if (c == 'n' || c == 't' || c == 'r') {
                        *err = fmw_buf_addc(&item, c == 'n' ? '\n' : c == 't' ? '\t' : '\r');
                        p += 2;
                    } else if (c == 'x' && end - p >= 4 && sscanf(p + 2, "%2x", &hex) == 1 &&
                               isxdigit((unsigned char)p[2]) && isxdigit((unsigned char)p[3])) {
                        *err = fmw_buf_addc(&item, (char)hex);
                        p += 4;
                    } else {
                        break;
                    }
                } else if (*p == '\n' || *p == '\r') {
                    break;
                } else {
                    *err = fmw_buf_addc(&item, *p++);
                }
            }
            if (!closed || *err)
                break;
        } else {
            const char *start = p;
            while (p < end && *p != ',' && *p != ']' && *p != '\n')
                p++;
            struct fmw_str plain = {start, (size_t)(p - start)};
            while (plain.len &&
                   (plain.ptr[plain.len - 1] == ' ' || plain.ptr[plain.len - 1] == '\t'))
                plain.len--;
            /* Indicators and the forms a flow scalar cannot have without quotes ('-', '?' and
             * ':' may start one when a character other than a blank follows). */
            bool indicator = plain.len && strchr("[]{}#&*!|>'\"%@`,", plain.ptr[0]);
            if (plain.len && strchr("?:-", plain.ptr[0]))
                indicator = plain.len == 1 || plain.ptr[1] == ' ' || plain.ptr[1] == '\t';
            if (yaml_null(plain) || indicator || memmem(plain.ptr, plain.len, ": ", 2) ||
                memmem(plain.ptr, plain.len, " #", 2) || (plain.ptr[plain.len - 1] == ':'))
                break;
            *err = fmw_buf_add(&item, plain.ptr, plain.len);
            if (*err)
                break;
        }
        *err = names_add(out, fmw_buf_cstr(&item), item.len);
        if (*err)
            break;
        SKIP_BLANKS();
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == ']') {
            p++;
            ok = true;
            break;
        }
        break;
    }
    fmw_buf_free(&item);
    SKIP_BLANKS();
#undef SKIP_BLANKS
    if (*err)
        return true;
    if (!ok || p != end) {
        names_free(out);
        return false;
    }
    return true;
}

int64_t fmw_tm_resource_amount(int64_t amount)
{
    /* ExternalResource(name, (double) amount): BigDecimal.valueOf, i.e. the digits of
     * Double.toString, and longValue() keeps the low 64 bits of that integer. */
    char text[FMW_MEMSIZE_STRLEN];
    fmw_java_double_str((double)amount, text);
    const char *p = text;
    bool neg = *p == '-';
    if (neg)
        p++;
    __extension__ unsigned __int128 v = 0;
    int frac_digits = -1, exp10 = 0;
    for (; *p && *p != 'E'; p++) {
        if (*p == '.') {
            frac_digits = 0;
            continue;
        }
        v = v * 10 + (unsigned)(*p - '0');
        if (frac_digits >= 0)
            frac_digits++;
    }
    if (*p == 'E')
        exp10 = atoi(p + 1);
    int scale = exp10 - (frac_digits < 0 ? 0 : frac_digits);
    for (; scale > 0; scale--)
        v *= 10;
    for (; scale < 0; scale++)
        v /= 10;
    uint64_t low = (uint64_t)v;
    return neg ? (int64_t)(0 - low) : (int64_t)low;
}

enum fmw_err fmw_tm_external_resources(struct fmw_pm *pm, bool yaml_lists, struct fmw_tm_result *r)
{
    /* getExternalResourceSet: Configuration.getValue (the text, "[]" when unset) against "none",
     * then Configuration.get of the list. */
    const char *text = fmw_pm_get_text(pm, &OPT_EXTERNAL_RESOURCES);
    if (!text || strcmp(text, "none") == 0)
        return FMW_OK;
    struct names list = {NULL, 0};
    enum fmw_err err = FMW_OK;
    struct fmw_buf flow;
    fmw_buf_init(&flow, FMW_CONF_MAX_TEXT);
    bool done = yaml_lists && yaml_list_text(text, &flow, &err) &&
                yaml_flow_list(fmw_buf_cstr(&flow), &list, &err);
    fmw_buf_free(&flow);
    if (!err && !done)
        err = split_escaped(text, &list);
    if (err == FMW_EINVAL)
        err = fmw_diag_set(pm->d, FMW_EINVAL,
                           "Could not parse value '%s' for key '" FMW_TM_EXTERNAL_RESOURCES "'.",
                           text);
    else if (err == FMW_ETOOBIG)
        err = fmw_diag_set(pm->d, err, "more than %d external resources", FMW_TM_RESOURCES_MAX);
    else if (err)
        err = fmw_diag_set(pm->d, err, "out of memory");
    size_t n = list.len;
    size_t *order = fmw_calloc(n ? n : 1, sizeof *order);
    const char **unique = fmw_calloc(n ? n : 1, sizeof *unique);
    if (err)
        goto out;
    if (!order || !unique) {
        err = fmw_diag_set(pm->d, FMW_ENOMEM, "out of memory");
        goto out;
    }

    /* new HashSet<>(list): duplicates keep their first place; the table is sized for the list
     * (JDK 17: max(size / .75f + 1, 16)). */
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < nu && !seen; j++)
            seen = strcmp(unique[j], list.items[i]) == 0;
        if (!seen)
            unique[nu++] = list.items[i];
    }
    size_t capacity = (size_t)((float)n / 0.75f) + 1;
    (void)fmw_java_hashmap_order(unique, nu, capacity < 16 ? 16 : capacity, order);

    /* The amounts, in the set's order; the map of those kept is a new HashMap<>() again. */
    const char **kept = fmw_calloc(nu ? nu : 1, sizeof *kept);
    int64_t *amounts = fmw_calloc(nu ? nu : 1, sizeof *amounts);
    size_t nk = 0;
    if (!kept || !amounts) {
        err = fmw_diag_set(pm->d, FMW_ENOMEM, "out of memory");
        goto out_kept;
    }
    for (size_t i = 0; i < nu && !err; i++) {
        const char *name = unique[order[i]];
        char *key = NULL;
        if (asprintf(&key, "external-resource.%s.amount", name) < 0) {
            err = fmw_diag_set(pm->d, FMW_ENOMEM, "out of memory");
            break;
        }
        const struct fmw_pm_option amount_opt = {key, {NULL}, "null", 0, 0};
        int64_t amount;
        bool present;
        err = fmw_pm_get_long(pm, &amount_opt, &amount, &present);
        free(key);
        if (err)
            break;
        if (!present)
            fmw_pm_logf(pm, "WARN",
                        "The amount of the %s should be configured. Will ignore that resource.",
                        name);
        else if (amount <= 0)
            fmw_pm_logf(pm, "WARN",
                        "The amount of the %" PRId64
                        " should be positive while finding %s. Will ignore that resource.",
                        amount, name);
        else {
            kept[nk] = name;
            amounts[nk++] = amount;
        }
    }
    if (!err && nk) {
        r->resources = fmw_calloc(nk, sizeof *r->resources);
        if (!r->resources) {
            err = fmw_diag_set(pm->d, FMW_ENOMEM, "out of memory");
            goto out_kept;
        }
        (void)fmw_java_hashmap_order(kept, nk, 0, order);
        for (size_t i = 0; i < nk && !err; i++) {
            char *name = fmw_strdup(kept[order[i]]);
            if (!name) {
                err = fmw_diag_set(pm->d, FMW_ENOMEM, "out of memory");
                break;
            }
            r->resources[r->n_resources].name = name;
            r->resources[r->n_resources++].amount = fmw_tm_resource_amount(amounts[order[i]]);
        }
    }
out_kept:
    free(kept);
    free(amounts);
out:
    free(order);
    free(unique);
    names_free(&list);
    return err;
}
