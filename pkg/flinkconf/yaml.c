/*
 * Standard config.yaml: libyaml builds the node graph, we type scalars by the YAML 1.2 Core
 * schema (as Flink's snakeyaml-engine loader does) and flatten mappings into dotted keys.
 */
#include "pkg/flinkconf/flinkconf.h"

#include "pkg/memsize/memsize.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static const char PARSE_ERROR[] = "Error parsing YAML configuration.";

/* A scalar typed by the Core schema, with the Java toString() text of its value. */
struct scalar {
    enum fmw_conf_type type;
    bool is_null;
    double number;
    struct fmw_buf text;
};

static bool match_all(struct fmw_str s, bool (*ok)(int c), size_t from)
{
    if (s.len <= from)
        return false;
    for (size_t i = from; i < s.len; i++) {
        if (!ok((unsigned char)s.ptr[i]))
            return false;
    }
    return true;
}

static bool is_dec(int c)
{
    return c >= '0' && c <= '9';
}
static bool is_oct(int c)
{
    return c >= '0' && c <= '7';
}
static bool is_hex(int c)
{
    return isxdigit(c) != 0;
}

/* Appends the decimal digits of the unsigned number written in `digits` in `base` (Java's
 * BigInteger.toString of a YAML int that may exceed 64 bits). */
static enum fmw_err radix_to_decimal(struct fmw_str digits, unsigned base, bool neg,
                                     struct fmw_buf *out)
{
    if (digits.len > 4096)
        return FMW_ETOOBIG;
    /* Little-endian base-10^9 limbs. */
    size_t cap = digits.len + 2;
    uint32_t *limb = calloc(cap, sizeof *limb);
    if (!limb)
        return FMW_ENOMEM;
    size_t n = 1;
    for (size_t i = 0; i < digits.len; i++) {
        int c = (unsigned char)digits.ptr[i];
        unsigned v = isdigit(c) ? (unsigned)(c - '0') : (unsigned)(tolower(c) - 'a' + 10);
        uint64_t carry = v;
        for (size_t k = 0; k < n; k++) {
            uint64_t x = (uint64_t)limb[k] * base + carry;
            limb[k] = (uint32_t)(x % 1000000000u);
            carry = x / 1000000000u;
        }
        while (carry) {
            limb[n++] = (uint32_t)(carry % 1000000000u);
            carry /= 1000000000u;
        }
    }
    enum fmw_err err = FMW_OK;
    bool zero = n == 1 && limb[0] == 0;
    if (neg && !zero)
        err = fmw_buf_addc(out, '-');
    if (!err)
        err = fmw_buf_addf(out, "%u", limb[n - 1]);
    for (size_t k = n - 1; k-- > 0 && !err;)
        err = fmw_buf_addf(out, "%09u", limb[k]);
    free(limb);
    return err;
}

static bool is_float_text(struct fmw_str s)
{
    /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
    size_t i = 0;
    if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-'))
        i++;
    size_t int_digits = 0, frac_digits = 0;
    while (i < s.len && is_dec((unsigned char)s.ptr[i])) {
        i++;
        int_digits++;
    }
    if (i < s.len && s.ptr[i] == '.') {
        i++;
        while (i < s.len && is_dec((unsigned char)s.ptr[i])) {
            i++;
            frac_digits++;
        }
        if (int_digits == 0 && frac_digits == 0)
            return false;
    } else if (int_digits == 0) {
        return false;
    }
    if (i < s.len && (s.ptr[i] == 'e' || s.ptr[i] == 'E')) {
        i++;
        if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-'))
            i++;
        size_t exp_digits = 0;
        while (i < s.len && is_dec((unsigned char)s.ptr[i])) {
            i++;
            exp_digits++;
        }
        if (exp_digits == 0)
            return false;
    }
    return i == s.len;
}

static bool one_of(struct fmw_str s, const char *const *words)
{
    for (; *words; words++) {
        if (fmw_str_eq_c(s, *words))
            return true;
    }
    return false;
}

/* Types a plain scalar's text by the YAML 1.2 Core schema. */
static enum fmw_err type_plain(struct fmw_str s, struct scalar *out)
{
    out->type = FMW_CONF_STRING;
    out->is_null = false;
    out->number = 0;
    static const char *const NULLS[] = {"", "null", "Null", "NULL", "~", NULL};
    static const char *const TRUES[] = {"true", "True", "TRUE", NULL};
    static const char *const FALSES[] = {"false", "False", "FALSE", NULL};
    static const char *const INFS[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const NINFS[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const NANS[] = {".nan", ".NaN", ".NAN", NULL};

    if (one_of(s, NULLS)) {
        out->is_null = true;
        return FMW_OK;
    }
    if (one_of(s, TRUES) || one_of(s, FALSES)) {
        out->type = FMW_CONF_BOOL;
        return fmw_buf_adds(&out->text, one_of(s, TRUES) ? "true" : "false");
    }
    /* Ints: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+ — Java prints them in decimal. */
    bool sign = s.len && (s.ptr[0] == '+' || s.ptr[0] == '-');
    if (match_all(s, is_dec, sign ? 1 : 0)) {
        out->type = FMW_CONF_INT;
        return radix_to_decimal((struct fmw_str){s.ptr + sign, s.len - sign}, 10,
                                sign && s.ptr[0] == '-', &out->text);
    }
    if (s.len > 2 && s.ptr[0] == '0' && s.ptr[1] == 'o' && match_all(s, is_oct, 2)) {
        out->type = FMW_CONF_INT;
        return radix_to_decimal((struct fmw_str){s.ptr + 2, s.len - 2}, 8, false, &out->text);
    }
    if (s.len > 2 && s.ptr[0] == '0' && s.ptr[1] == 'x' && match_all(s, is_hex, 2)) {
        out->type = FMW_CONF_INT;
        return radix_to_decimal((struct fmw_str){s.ptr + 2, s.len - 2}, 16, false, &out->text);
    }
    bool special = true;
    if (one_of(s, INFS))
        out->number = 1.0 / 0.0;
    else if (one_of(s, NINFS))
        out->number = -1.0 / 0.0;
    else if (one_of(s, NANS))
        out->number = 0.0 / 0.0;
    else
        special = false;
    if (special || (is_float_text(s) && s.len < 512)) {
        out->type = FMW_CONF_FLOAT;
        if (!special) {
            char *t = fmw_str_dup(s);
            if (!t)
                return FMW_ENOMEM;
            out->number = strtod(t, NULL);
            free(t);
        }
        char text[FMW_MEMSIZE_STRLEN];
        fmw_java_double_str(out->number, text);
        return fmw_buf_adds(&out->text, text);
    }
    return fmw_buf_add(&out->text, s.ptr, s.len);
}

/* The source text, to see what libyaml's document loader hides: whether a tag was written. */
struct source {
    const char *text;
    size_t len;
    /* libyaml's marks count characters, not bytes: a cursor converts them, amortised over a
     * document walked (mostly) in order. */
    size_t cur_char, cur_byte;
};

/* The byte offset of character `index` in the UTF-8 source. */
static size_t byte_offset(struct source *src, size_t index)
{
    if (index < src->cur_char) {
        src->cur_char = 0;
        src->cur_byte = 0;
    }
    while (src->cur_char < index && src->cur_byte < src->len) {
        src->cur_byte++;
        while (src->cur_byte < src->len && ((unsigned char)src->text[src->cur_byte] & 0xC0) == 0x80)
            src->cur_byte++;
        src->cur_char++;
    }
    return src->cur_byte;
}

/* True when the node's properties (written before it: an anchor and/or a tag) hold a tag. */
static bool has_explicit_tag(struct source *src, const yaml_node_t *node)
{
    size_t i = byte_offset(src, node->start_mark.index);
    for (int props = 0; props < 2 && i < src->len; props++) {
        if (src->text[i] == '!')
            return true;
        if (src->text[i] != '&')
            break;
        while (i < src->len && !strchr(" \t\r\n", src->text[i]))
            i++;
        while (i < src->len && strchr(" \t", src->text[i]))
            i++;
    }
    return false;
}

/* An explicitly tagged scalar, constructed as snakeyaml-engine's Core schema constructors do;
 * FMW_EINVAL when its text does not fit the tag (the whole load fails then, as in Flink). */
static enum fmw_err construct_tagged(const char *tag, struct fmw_str s, struct scalar *out)
{
    struct scalar plain;
    fmw_buf_init(&plain.text, FMW_CONF_MAX_TEXT);
    enum fmw_err err = type_plain(s, &plain);
    enum fmw_err rc = FMW_EINVAL;
    out->is_null = false;
    out->number = 0;
    if (err) {
        rc = err;
    } else if (strcmp(tag, YAML_STR_TAG) == 0) {
        out->type = FMW_CONF_STRING;
        rc = fmw_buf_add(&out->text, s.ptr, s.len);
    } else if (strcmp(tag, YAML_INT_TAG) == 0 && plain.type == FMW_CONF_INT) {
        out->type = FMW_CONF_INT;
        rc = fmw_buf_adds(&out->text, fmw_buf_cstr(&plain.text));
    } else if (strcmp(tag, YAML_FLOAT_TAG) == 0 &&
               (plain.type == FMW_CONF_FLOAT || plain.type == FMW_CONF_INT)) {
        /* !!float 1 is the Double 1.0; an int's text is read as a double. */
        out->type = FMW_CONF_FLOAT;
        out->number =
            plain.type == FMW_CONF_FLOAT ? plain.number : strtod(fmw_buf_cstr(&plain.text), NULL);
        char text[FMW_MEMSIZE_STRLEN];
        fmw_java_double_str(out->number, text);
        rc = fmw_buf_adds(&out->text, text);
    } else if (strcmp(tag, YAML_BOOL_TAG) == 0 && plain.type == FMW_CONF_BOOL) {
        out->type = FMW_CONF_BOOL;
        rc = fmw_buf_adds(&out->text, fmw_buf_cstr(&plain.text));
    } else if (strcmp(tag, YAML_NULL_TAG) == 0 && plain.is_null) {
        out->is_null = true;
        rc = FMW_OK;
    }
    fmw_buf_free(&plain.text);
    return rc;
}

static bool resolves_as_other_type(struct fmw_str s);

static enum fmw_err type_scalar(struct source *src, const yaml_node_t *node, struct scalar *out)
{
    struct fmw_str s = {(const char *)node->data.scalar.value, node->data.scalar.length};
    /* libyaml gives every untagged scalar the str tag: any other tag was written. A written
     * !!str matters only on a plain scalar that would otherwise be typed, so only then is the
     * source looked at. */
    const char *tag = (const char *)node->tag;
    bool default_tag = !tag || strcmp(tag, YAML_DEFAULT_SCALAR_TAG) == 0;
    if (!default_tag)
        return construct_tagged(tag, s, out);
    if (src && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && resolves_as_other_type(s) &&
        has_explicit_tag(src, node))
        return construct_tagged(tag, s, out);
    /* Quoted and block scalars are strings; plain ones are typed by their text. */
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        out->type = FMW_CONF_STRING;
        out->is_null = false;
        out->number = 0;
        return fmw_buf_add(&out->text, s.ptr, s.len);
    }
    return type_plain(s, out);
}

/* Would this string read back as something else than a string if written plain? */
static bool resolves_as_other_type(struct fmw_str s)
{
    struct scalar sc;
    fmw_buf_init(&sc.text, FMW_CONF_MAX_TEXT);
    bool other = type_plain(s, &sc) != FMW_OK || sc.is_null || sc.type != FMW_CONF_STRING;
    fmw_buf_free(&sc.text);
    return other;
}

/* May `s` be written as a plain scalar inside a flow collection (snakeyaml's analyzeScalar)? */
static bool plain_in_flow(struct fmw_str s)
{
    if (s.len == 0 || s.ptr[0] == ' ' || s.ptr[s.len - 1] == ' ')
        return false;
    if (strchr("#,[]{}&*!|>'\"%@`?:", s.ptr[0]))
        return false;
    if (s.ptr[0] == '-' && (s.len == 1 || s.ptr[1] == ' '))
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (strchr(",?[]{}:", c) && i > 0)
            return false;
        if (c == '#' && s.ptr[i - 1] == ' ')
            return false;
    }
    return true;
}

/* How snakeyaml's emitter writes a string in a flow collection: plain when it reads back as the
 * same string, single-quoted otherwise, double-quoted when it has line breaks or other
 * non-printable characters (Flink shows list values in this form, tests/oracle/SPEC-NOTES.md,
 * "Disagreements and gaps"). */
static enum fmw_err emit_string(struct fmw_str s, struct fmw_buf *out)
{
    bool printable = true;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x20 || c == 0x7f)
            printable = false;
    }
    enum fmw_err err = FMW_OK;
    if (!printable) {
        err = fmw_buf_addc(out, '"');
        for (size_t i = 0; i < s.len && !err; i++) {
            unsigned char c = (unsigned char)s.ptr[i];
            if (c == '"' || c == '\\')
                err = fmw_buf_addf(out, "\\%c", c);
            else if (c == '\n')
                err = fmw_buf_adds(out, "\\n");
            else if (c == '\t')
                err = fmw_buf_adds(out, "\\t");
            else if (c == '\r')
                err = fmw_buf_adds(out, "\\r");
            else if (c < 0x20 || c == 0x7f)
                err = fmw_buf_addf(out, "\\x%02X", c);
            else
                err = fmw_buf_addc(out, (char)c);
        }
        return err ? err : fmw_buf_addc(out, '"');
    }
    if (plain_in_flow(s) && !resolves_as_other_type(s))
        return fmw_buf_add(out, s.ptr, s.len);
    err = fmw_buf_addc(out, '\'');
    for (size_t i = 0; i < s.len && !err; i++)
        err = s.ptr[i] == '\'' ? fmw_buf_adds(out, "''") : fmw_buf_addc(out, s.ptr[i]);
    return err ? err : fmw_buf_addc(out, '\'');
}

/* A flat key whose latest value is null, and where that null was written. */
struct null_key {
    char *key; /* may hold NUL bytes: key_len says how long it is */
    size_t key_len;
    yaml_node_t *node;
};

struct flattener {
    struct source src;
    yaml_document_t *doc;
    struct fmw_conf *conf;
    struct fmw_diag *d;
    struct fmw_buf *detail;
    size_t visited; /* nodes walked, bounds alias expansion ("billion laughs") */
    /* Flink flattens the whole document first and rejects a null only when it is the final
     * value of its key (a later entry for the same flat key replaces it), so nulls wait here. */
    struct null_key *nulls;
    size_t nnulls;
};

static void null_forget(struct flattener *f, const struct fmw_buf *key)
{
    for (size_t i = 0; i < f->nnulls; i++) {
        if (f->nulls[i].key_len == key->len &&
            (key->len == 0 || memcmp(f->nulls[i].key, key->data, key->len) == 0)) {
            free(f->nulls[i].key);
            f->nulls[i] = f->nulls[--f->nnulls];
            return;
        }
    }
}

static enum fmw_err null_remember(struct flattener *f, const struct fmw_buf *key, yaml_node_t *node)
{
    null_forget(f, key);
    if (f->nnulls >= FMW_CONF_MAX_ENTRIES)
        return FMW_ETOOBIG;
    struct null_key *p = realloc(f->nulls, (f->nnulls + 1) * sizeof *p);
    if (!p)
        return FMW_ENOMEM;
    f->nulls = p;
    p[f->nnulls].key = fmw_str_dup((struct fmw_str){fmw_buf_cstr(key), key->len});
    if (!p[f->nnulls].key)
        return FMW_ENOMEM;
    p[f->nnulls].key_len = key->len;
    p[f->nnulls++].node = node;
    return FMW_OK;
}

#define MAX_VISITS 200000

/* Fails the load with Flink's text; `line` and `column` count from 1 (0: no place). */
static enum fmw_err fail_at(struct flattener *f, int line, int column, const char *why)
{
    if (f->d) {
        f->d->line = line;
        f->d->column = column;
    }
    if (f->detail) /* a human detail, best effort */
        (void)fmw_buf_addf(f->detail, "line %d, column %d: %s", line, column, why);
    return fmw_diag_set(f->d, FMW_EINVAL, "%s", PARSE_ERROR);
}

static enum fmw_err fail(struct flattener *f, const yaml_node_t *node, const char *why)
{
    return fail_at(f, node ? (int)node->start_mark.line + 1 : 0,
                   node ? (int)node->start_mark.column + 1 : 0, why);
}

/* A sequence or mapping node as snakeyaml dumps it in flow style: Flink's text of a list value. */
static enum fmw_err node_text(struct flattener *f, yaml_node_t *node, struct fmw_buf *out,
                              int depth)
{
    if (++f->visited > MAX_VISITS || depth > FMW_CONF_MAX_DEPTH)
        return fail(f, node, "document too large or too deeply nested");
    enum fmw_err err = FMW_OK;
    if (node->type == YAML_SCALAR_NODE) {
        struct scalar sc;
        fmw_buf_init(&sc.text, FMW_CONF_MAX_TEXT);
        err = type_scalar(&f->src, node, &sc);
        if (err == FMW_EINVAL)
            err = fail(f, node, "a value that does not fit its tag");
        if (err) {
            /* nothing */
        } else if (sc.is_null) {
            err = fmw_buf_adds(out, "null");
        } else if (sc.type == FMW_CONF_STRING) {
            err = emit_string((struct fmw_str){fmw_buf_cstr(&sc.text), sc.text.len}, out);
        } else if (sc.type == FMW_CONF_FLOAT && (isinf(sc.number) || isnan(sc.number))) {
            err = fmw_buf_adds(out, isnan(sc.number) ? ".nan" : sc.number > 0 ? ".inf" : "-.inf");
        } else {
            err = fmw_buf_adds(out, fmw_buf_cstr(&sc.text));
        }
        fmw_buf_free(&sc.text);
        return err;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        err = fmw_buf_addc(out, '[');
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             !err && it < node->data.sequence.items.top; it++) {
            if (it != node->data.sequence.items.start)
                err = fmw_buf_adds(out, ", ");
            if (!err)
                err = node_text(f, yaml_document_get_node(f->doc, *it), out, depth + 1);
        }
        return err ? err : fmw_buf_addc(out, ']');
    }
    err = fmw_buf_addc(out, '{');
    for (yaml_node_pair_t *pr = node->data.mapping.pairs.start;
         !err && pr < node->data.mapping.pairs.top; pr++) {
        if (pr != node->data.mapping.pairs.start)
            err = fmw_buf_adds(out, ", ");
        if (!err)
            err = node_text(f, yaml_document_get_node(f->doc, pr->key), out, depth + 1);
        if (!err)
            err = fmw_buf_adds(out, ": ");
        if (!err)
            err = node_text(f, yaml_document_get_node(f->doc, pr->value), out, depth + 1);
    }
    return err ? err : fmw_buf_addc(out, '}');
}

/* FNV-1a of a text of `n` bytes (NUL bytes included). */
static size_t text_hash(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return (size_t)h;
}

static bool same_text(const struct fmw_buf *a, const struct fmw_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/*
 * A NUL byte in a value (only a quoted scalar's escape, "\0" or "\x00", can make one) as a
 * character Java treats the same way. Flink keeps it in the Java string, and every parser it
 * applies to an option's text meets it only through String.trim() (which drops characters up
 * to U+0020 at both ends: "2g\0" is 2g, and MemorySize's unit "\0g" trims to "g") or as a
 * character that is not a digit, a letter or white space to Character.isWhitespace. U+0001
 * behaves the same in all of them, and keeps our C strings whole. Checked against Flink's jars
 * (tests/oracle/probes.jsonl, "NUL").
 */
static void nul_as_control(struct fmw_buf *text)
{
    for (size_t i = 0; i < text->len; i++) {
        if (text->data[i] == '\0')
            text->data[i] = '\x01';
    }
}

static enum fmw_err flatten(struct flattener *f, yaml_node_t *map, struct fmw_buf *prefix,
                            int depth)
{
    if (depth > FMW_CONF_MAX_DEPTH)
        return fail(f, map, "mapping nested too deeply");
    enum fmw_err err = FMW_OK;
    size_t keys_len = 0;
    struct fmw_buf *keys = NULL; /* typed key texts of this mapping, to reject duplicates */
    size_t npairs = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    /* A hash set over `keys` (index + 1, 0 = empty, at most half full): comparing each key with
     * every earlier one made a mapping of 40000 keys cost many seconds of CPU. */
    size_t nslots = 16;
    while (nslots < 2 * npairs)
        nslots *= 2;
    size_t *slots = fmw_calloc(nslots, sizeof *slots);
    keys = calloc(npairs ? npairs : 1, sizeof *keys);
    if (!keys || !slots) {
        free(keys);
        free(slots);
        return FMW_ENOMEM;
    }

    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        if (++f->visited > MAX_VISITS) {
            err = fail(f, map, "document too large");
            goto out;
        }
        yaml_node_t *key = yaml_document_get_node(f->doc, pr->key);
        yaml_node_t *value = yaml_document_get_node(f->doc, pr->value);
        struct fmw_buf *kt = &keys[keys_len];
        fmw_buf_init(kt, FMW_CONF_MAX_TEXT);
        keys_len++;
        /* The key's identity: its Core-schema type and value (1 and 0x1 collide, as in Java). */
        if (key->type == YAML_SCALAR_NODE) {
            struct scalar sc;
            fmw_buf_init(&sc.text, FMW_CONF_MAX_TEXT);
            err = type_scalar(&f->src, key, &sc);
            if (err == FMW_EINVAL)
                err = fail(f, key, "a value that does not fit its tag");
            if (!err)
                err = fmw_buf_addf(kt, "%d:", sc.is_null ? -1 : (int)sc.type);
            if (!err)
                err = sc.is_null ? fmw_buf_adds(kt, "null")
                                 : fmw_buf_add(kt, fmw_buf_cstr(&sc.text), sc.text.len);
            fmw_buf_free(&sc.text);
        } else {
            err = fmw_buf_adds(kt, "c:");
            if (!err)
                err = node_text(f, key, kt, depth + 1);
        }
        if (err)
            goto out;
        size_t h = text_hash(fmw_buf_cstr(kt), kt->len) & (nslots - 1);
        while (slots[h] && !same_text(&keys[slots[h] - 1], kt))
            h = (h + 1) & (nslots - 1);
        if (slots[h]) {
            err = fail(f, key, "found duplicate key");
            goto out;
        }
        slots[h] = keys_len;
        /* The flat key: prefix + "." + the key's Java toString text, NUL bytes included. */
        size_t mark = prefix->len;
        if (mark)
            err = fmw_buf_addc(prefix, '.');
        const char *colon = memchr(kt->data, ':', kt->len);
        if (!err)
            err = fmw_buf_add(prefix, colon + 1, kt->len - (size_t)(colon + 1 - kt->data));
        if (err)
            goto out;
        /* A key with a NUL byte in it (a quoted key's escape) names no Flink option: Flink keeps
         * it as written and nothing reads it. Its value is still parsed (Flink would fail on it
         * the same way), but not kept. */
        bool named = memchr(prefix->data, '\0', prefix->len) == NULL;
        if (value->type == YAML_MAPPING_NODE) {
            err = flatten(f, value, prefix, depth + 1);
        } else if (value->type == YAML_SEQUENCE_NODE) {
            struct fmw_buf text;
            fmw_buf_init(&text, FMW_CONF_MAX_TEXT);
            err = node_text(f, value, &text, depth + 1);
            if (!err && named) {
                nul_as_control(&text);
                err =
                    fmw_conf_set(f->conf, (struct fmw_str){prefix->data, prefix->len},
                                 (struct fmw_str){fmw_buf_cstr(&text), text.len}, FMW_CONF_LIST, 0);
            }
            if (!err)
                null_forget(f, prefix);
            fmw_buf_free(&text);
        } else {
            struct scalar sc;
            fmw_buf_init(&sc.text, FMW_CONF_MAX_TEXT);
            err = type_scalar(&f->src, value, &sc);
            if (err == FMW_EINVAL)
                err = fail(f, value, "a value that does not fit its tag");
            /* A null is remembered under any key, named or not: Flink refuses a file with a null
             * value whatever its key (the last value of a key wins, so a later one forgets it). */
            if (!err && sc.is_null) {
                err = null_remember(f, prefix, value);
            } else if (!err) {
                nul_as_control(&sc.text);
                if (named)
                    err = fmw_conf_set(f->conf, (struct fmw_str){prefix->data, prefix->len},
                                       (struct fmw_str){fmw_buf_cstr(&sc.text), sc.text.len},
                                       sc.type, sc.number);
                if (!err)
                    null_forget(f, prefix);
            }
            fmw_buf_free(&sc.text);
        }
        if (err)
            goto out;
        fmw_buf_truncate(prefix, mark);
    }
out:
    for (size_t i = 0; i < keys_len; i++)
        fmw_buf_free(&keys[i]);
    free(keys);
    free(slots);
    if (err == FMW_ETOOBIG || err == FMW_ENOMEM)
        fail(f, map, err == FMW_ETOOBIG ? "configuration too large" : "out of memory");
    return err;
}

/*
 * Tabs as Flink's YAML parser reads them. snakeyaml-engine (2.6 in every Flink line that reads
 * config.yaml, 1.19 to 2.3) skips only spaces, comments and line breaks between two tokens
 * (ScannerImpl.scanToNextToken), so a tab there fails the load ("found character '\t(TAB)' that
 * cannot start any token"). libyaml skips a tab there too inside a flow collection and after a
 * token no simple key may follow ("key:", a tag, an anchor, an alias, a quoted scalar, "---"),
 * and takes tabs in a plain scalar's continuation lines and a block scalar's header: a file
 * with a tab after "key:" loaded here and not in Flink. The scan below finds each such tab in
 * libyaml's tokens. Tabs stay where both parsers take them: in comments, quoted scalars, block
 * scalar content, inside a plain scalar's line and after it up to the line break
 * (ScannerImpl.scanPlainSpaces takes spaces and tabs there, then only spaces after a break).
 * Checked against Flink's jars: tests/data/flinkconf-yaml-edges.json.
 */

#define NO_TAB SIZE_MAX
static const char TAB_WHY[] =
    "a tab where Flink's YAML parser (snakeyaml-engine) takes only spaces: found character "
    "'\\t(TAB)' that cannot start any token";

static bool is_break(char c)
{
    return c == '\n' || c == '\r';
}

/* The first tab of the bytes [from, to) between two tokens that scanToNextToken would stop
 * at; after a plain scalar, the blanks up to its line's end are the scalar's own. */
static size_t tab_between_tokens(const char *text, size_t from, size_t to, bool after_plain)
{
    bool plain_line = after_plain;
    for (size_t i = from; i < to; i++) {
        if (text[i] == '#') { /* a comment, to the line's end */
            while (i + 1 < to && !is_break(text[i + 1]))
                i++;
        } else if (is_break(text[i])) {
            plain_line = false;
        } else if (text[i] == '\t' && !plain_line) {
            return i;
        }
    }
    return NO_TAB;
}

/* The first tab that follows only spaces on a continuation line of a plain scalar: after a
 * line break scanPlainSpaces takes spaces alone, the scalar ends and the tab is between
 * tokens. */
static size_t tab_in_plain_scalar(const char *text, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (!is_break(text[i]))
            continue;
        size_t j = i + 1;
        while (j < to && text[j] == ' ')
            j++;
        if (j < to && text[j] == '\t')
            return j;
    }
    return NO_TAB;
}

/* A tab on a block scalar's header line before its comment: scanBlockScalarIndicators wants a
 * space or a line break after the indicators, scanBlockScalarIgnoredLine skips only spaces. */
static size_t tab_in_block_header(const char *text, size_t from, size_t to)
{
    for (size_t i = from; i < to && !is_break(text[i]) && text[i] != '#'; i++) {
        if (text[i] == '\t')
            return i;
    }
    return NO_TAB;
}

/* A tab anywhere in a %YAML or %TAG directive: scanDirectiveName and the directives' value
 * scanners take spaces only. */
static size_t tab_in(const char *text, size_t from, size_t to)
{
    const char *tab = memchr(text + from, '\t', to - from);
    return tab ? (size_t)(tab - text) : NO_TAB;
}

/* The source byte where snakeyaml-engine would fail on a tab that libyaml takes, or NO_TAB.
 * A text libyaml cannot scan is left to the loader, which fails on it the same way. */
static enum fmw_err find_rejected_tab(const struct source *in, size_t *where)
{
    *where = NO_TAB;
    if (!memchr(in->text, '\t', in->len))
        return FMW_OK;
    struct source src = {in->text, in->len, 0, 0};
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return FMW_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)src.text, src.len);
    size_t last_end = 0;      /* where the token that ends last ends */
    bool after_plain = false; /* and whether it is a plain scalar */
    bool done = false;
    while (!done && *where == NO_TAB) {
        yaml_token_t token;
        if (!yaml_parser_scan(&parser, &token))
            break;
        size_t start = byte_offset(&src, token.start_mark.index);
        size_t end = byte_offset(&src, token.end_mark.index);
        bool plain = false;
        if (start > last_end)
            *where = tab_between_tokens(src.text, last_end, start, after_plain);
        if (*where != NO_TAB) {
            /* found between the tokens */
        } else if (token.type == YAML_SCALAR_TOKEN) {
            yaml_scalar_style_t style = token.data.scalar.style;
            plain = style == YAML_PLAIN_SCALAR_STYLE;
            if (plain)
                *where = tab_in_plain_scalar(src.text, start, end);
            else if (style == YAML_LITERAL_SCALAR_STYLE || style == YAML_FOLDED_SCALAR_STYLE)
                *where = tab_in_block_header(src.text, start, end);
        } else if (token.type == YAML_VERSION_DIRECTIVE_TOKEN ||
                   token.type == YAML_TAG_DIRECTIVE_TOKEN) {
            *where = tab_in(src.text, start, end);
        }
        /* Tokens of no width (a simple key's KEY, BLOCK-END) sit where another token starts. */
        if (end > last_end) {
            last_end = end;
            after_plain = plain;
        }
        done = token.type == YAML_STREAM_END_TOKEN;
        yaml_token_delete(&token);
    }
    yaml_parser_delete(&parser);
    return FMW_OK;
}

/* Fails the load at source byte `offset`, its line and column counted as libyaml counts them
 * (characters; a line ends at \n, \r\n or \r). */
static enum fmw_err fail_at_byte(struct flattener *f, size_t offset, const char *why)
{
    int line = 1, column = 1;
    for (size_t i = 0; i < offset && i < f->src.len; i++) {
        char c = f->src.text[i];
        if (c == '\n' || (c == '\r' && (i + 1 >= f->src.len || f->src.text[i + 1] != '\n'))) {
            line++;
            column = 1;
        } else if (c != '\r' && ((unsigned char)c & 0xC0) != 0x80) {
            column++;
        }
    }
    return fail_at(f, line, column, why);
}

/*
 * A block scalar whose first lines hold a tab after their indentation spaces: libyaml refuses
 * the tab while it detects the indentation ("found a tab character where an indentation space
 * is expected"), snakeyaml-engine counts the spaces and keeps the tab as content
 * (ScannerImpl.scanBlockScalarIndentation, then scanBlockScalar). Both detect the same
 * indentation, max(the most spaces on those lines, the parent's indentation + 1, 1), and read
 * an explicit indicator the same way (the parent's indentation + the digit), where libyaml
 * checks tabs only against the indentation it was given. So the text is copied with the
 * indentation Flink detects written after the '|' or '>': a new text in `*out` (malloc'd),
 * left NULL when the error is another or the header already has a digit.
 */
#define MAX_INDENT_REWRITES 8

static enum fmw_err write_block_indent(const yaml_parser_t *parser, struct source *src, char **out)
{
    static const char TAB_PROBLEM[] = "found a tab character where an indentation space is "
                                      "expected";
    *out = NULL;
    if (parser->error != YAML_SCANNER_ERROR || !parser->problem || !parser->context ||
        strcmp(parser->problem, TAB_PROBLEM) != 0 ||
        strcmp(parser->context, "while scanning a block scalar") != 0)
        return FMW_OK;
    size_t header = byte_offset(src, parser->context_mark.index);
    size_t tab = byte_offset(src, parser->problem_mark.index);
    const char *text = src->text;
    if (header >= tab || tab >= src->len || text[tab] != '\t' ||
        (text[header] != '|' && text[header] != '>'))
        return FMW_OK;
    size_t i = header + 1;
    for (int k = 0; k < 2 && i < tab && strchr("+-123456789", text[i]); k++, i++) {
        if (text[i] >= '1' && text[i] <= '9')
            return FMW_OK; /* given: libyaml checked the tab against it, as Flink does */
    }
    while (i < tab && !is_break(text[i])) /* the rest of the header line */
        i++;
    /* Then blank lines (spaces and a break) and the tab's line (spaces and the tab). */
    int most = 0, spaces = 0;
    for (; i < tab; i++) {
        if (text[i] == ' ')
            spaces++;
        else if (is_break(text[i]))
            spaces = 0;
        else
            return FMW_OK;
        if (spaces > most)
            most = spaces;
    }
    int parent = parser->indent;
    int indent = most;
    if (indent < parent + 1)
        indent = parent + 1;
    if (indent < 1)
        indent = 1;
    int digit = parent >= 0 ? indent - parent : indent;
    if (digit < 1 || digit > 9)
        return FMW_OK;
    char *copy = malloc(src->len + 2);
    if (!copy)
        return FMW_ENOMEM;
    memcpy(copy, text, header + 1);
    copy[header + 1] = (char)('0' + digit);
    memcpy(copy + header + 2, text + header + 1, src->len - header - 1);
    copy[src->len + 1] = '\0';
    *out = copy;
    return FMW_OK;
}

enum fmw_err fmw_conf_parse_yaml(struct fmw_conf *conf, const char *text, size_t len,
                                 struct fmw_diag *d, struct fmw_buf *detail)
{
    if (!text) { /* an empty file's text; libyaml asserts a non-NULL input */
        text = "";
        len = 0;
    }
    /* libyaml's marks do not count a byte order mark, the source's offsets must not either (an
     * explicit tag was missed on a file that began with one); snakeyaml-engine skips it too. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    struct flattener f = {{text, len, 0, 0}, NULL, conf, d, detail, 0, NULL, 0};
    if (len > FMW_CONF_MAX_TEXT)
        return fail(&f, NULL, "file too large");
    yaml_parser_t parser;
    yaml_document_t doc;
    char *rewritten = NULL; /* the text with block indentation written (write_block_indent) */
    enum fmw_err err = FMW_OK;
    bool have_doc = false;
    for (int rewrites = 0;; rewrites++) {
        if (!yaml_parser_initialize(&parser)) {
            free(rewritten);
            return FMW_ENOMEM;
        }
        yaml_parser_set_input_string(&parser, (const unsigned char *)f.src.text, f.src.len);
        if (yaml_parser_load(&parser, &doc))
            break;
        char *next = NULL;
        if (rewrites < MAX_INDENT_REWRITES &&
            write_block_indent(&parser, &f.src, &next) != FMW_OK) {
            err = FMW_ENOMEM;
            goto out;
        }
        if (next) {
            yaml_parser_delete(&parser);
            free(rewritten);
            rewritten = next;
            f.src = (struct source){rewritten, f.src.len + 1, 0, 0};
            continue;
        }
        if (d) {
            d->line = (int)parser.problem_mark.line + 1;
            d->column = (int)parser.problem_mark.column + 1;
        }
        if (detail)
            (void)fmw_buf_addf(detail, "line %d, column %d: %s", /* best effort, as above */
                               (int)parser.problem_mark.line + 1,
                               (int)parser.problem_mark.column + 1,
                               parser.problem ? parser.problem : "invalid YAML");
        err = fmw_diag_set(d, FMW_EINVAL, "%s", PARSE_ERROR);
        goto out;
    }
    have_doc = true;
    size_t tab;
    if (find_rejected_tab(&f.src, &tab) != FMW_OK) {
        err = FMW_ENOMEM;
        goto out;
    }
    if (tab != NO_TAB) {
        err = fail_at_byte(&f, tab, TAB_WHY);
        goto out;
    }
    f.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        goto out; /* an empty file is an empty configuration */

    /* Flink loads exactly one document. */
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        err = fail(&f, root, "invalid YAML after the first document");
        goto out;
    }
    bool more = yaml_document_get_root_node(&extra) != NULL;
    yaml_document_delete(&extra);
    if (more) {
        err = fail(&f, root, "expected a single document");
        goto out;
    }
    if (root->type == YAML_SCALAR_NODE && root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (root->data.scalar.length == 0 ||
         fmw_str_eq_c(
             (struct fmw_str){(const char *)root->data.scalar.value, root->data.scalar.length},
             "null") ||
         fmw_str_eq_c(
             (struct fmw_str){(const char *)root->data.scalar.value, root->data.scalar.length},
             "~")))
        goto out; /* a null document is an empty configuration */
    if (root->type != YAML_MAPPING_NODE) {
        err = fail(&f, root, "the document is not a mapping");
        goto out;
    }
    struct fmw_buf prefix;
    fmw_buf_init(&prefix, FMW_CONF_MAX_TEXT);
    err = fmw_buf_add(&prefix, "", 0);
    if (!err)
        err = flatten(&f, root, &prefix, 0);
    if (!err && f.nnulls > 0)
        err = fail(&f, f.nulls[0].node, "null value");
    fmw_buf_free(&prefix);
out:
    for (size_t i = 0; i < f.nnulls; i++)
        free(f.nulls[i].key);
    free(f.nulls);
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    free(rewritten);
    return err;
}
