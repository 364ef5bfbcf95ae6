/* The configuration map, the legacy line format, dynamic properties and the typed getters. */
#include "pkg/flinkconf/flinkconf.h"

#include "pkg/memsize/memsize.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void fmw_conf_init(struct fmw_conf *conf)
{
    conf->entries = NULL;
    conf->len = 0;
    conf->alloc = 0;
    conf->slots = NULL;
    conf->nslots = 0;
    fmw_buf_init(&conf->warnings, 64 * 1024);
}

void fmw_conf_cleanup(struct fmw_conf *conf)
{
    for (size_t i = 0; i < conf->len; i++) {
        free(conf->entries[i].key);
        free(conf->entries[i].text);
    }
    free(conf->entries);
    conf->entries = NULL;
    conf->len = conf->alloc = 0;
    free(conf->slots);
    conf->slots = NULL;
    conf->nslots = 0;
    fmw_buf_free(&conf->warnings);
}

enum fmw_err fmw_conf_copy(struct fmw_conf *dst, const struct fmw_conf *src)
{
    for (size_t i = 0; i < src->len; i++) {
        const struct fmw_conf_entry *e = &src->entries[i];
        enum fmw_err err =
            fmw_conf_set(dst, fmw_str_c(e->key), fmw_str_c(e->text), e->type, e->number);
        if (err)
            return err;
    }
    return FMW_OK;
}

/* FNV-1a of a key, as far as its C string goes (keys are kept as C strings). */
static size_t key_hash(struct fmw_str key)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < key.len && key.ptr[i]; i++)
        h = (h ^ (unsigned char)key.ptr[i]) * 1099511628211u;
    return (size_t)h;
}

/* The slot of `key` in the index: where it is, or the empty slot where it would go. */
static size_t slot_of(const struct fmw_conf *conf, struct fmw_str key)
{
    size_t mask = conf->nslots - 1;
    size_t i = key_hash(key) & mask;
    while (conf->slots[i] && !fmw_str_eq_c(key, conf->entries[conf->slots[i] - 1].key))
        i = (i + 1) & mask;
    return i;
}

/* Keeps the index at most half full: rebuilt at twice the size when an entry is to be added. */
static enum fmw_err index_reserve(struct fmw_conf *conf)
{
    if (conf->nslots && (conf->len + 1) * 2 <= conf->nslots)
        return FMW_OK;
    size_t nslots = conf->nslots ? conf->nslots * 2 : 64;
    size_t *slots = fmw_calloc(nslots, sizeof *slots);
    if (!slots)
        return FMW_ENOMEM;
    free(conf->slots);
    conf->slots = slots;
    conf->nslots = nslots;
    for (size_t e = 0; e < conf->len; e++)
        conf->slots[slot_of(conf, fmw_str_c(conf->entries[e].key))] = e + 1;
    return FMW_OK;
}

static struct fmw_conf_entry *find(const struct fmw_conf *conf, struct fmw_str key)
{
    if (!conf->nslots)
        return NULL;
    size_t i = slot_of(conf, key);
    return conf->slots[i] ? &conf->entries[conf->slots[i] - 1] : NULL;
}

enum fmw_err fmw_conf_set(struct fmw_conf *conf, struct fmw_str key, struct fmw_str text,
                          enum fmw_conf_type type, double number)
{
    if (text.len > FMW_CONF_MAX_TEXT || key.len > FMW_CONF_MAX_TEXT)
        return FMW_ETOOBIG;
    char *t = fmw_str_dup(text);
    if (!t)
        return FMW_ENOMEM;
    struct fmw_conf_entry *e = find(conf, key);
    if (e) {
        free(e->text);
        e->text = t;
        e->type = type;
        e->number = number;
        return FMW_OK;
    }
    if (conf->len >= FMW_CONF_MAX_ENTRIES) {
        free(t);
        return FMW_ETOOBIG;
    }
    if (conf->len == conf->alloc) {
        size_t alloc = conf->alloc ? conf->alloc * 2 : 32;
        struct fmw_conf_entry *p = realloc(conf->entries, alloc * sizeof *p);
        if (!p) {
            free(t);
            return FMW_ENOMEM;
        }
        conf->entries = p;
        conf->alloc = alloc;
    }
    char *k = fmw_str_dup(key);
    if (!k || index_reserve(conf) != FMW_OK) {
        free(k);
        free(t);
        return FMW_ENOMEM;
    }
    conf->slots[slot_of(conf, key)] = conf->len + 1;
    conf->entries[conf->len++] = (struct fmw_conf_entry){k, t, type, number};
    return FMW_OK;
}

const struct fmw_conf_entry *fmw_conf_get(const struct fmw_conf *conf, const char *key)
{
    return find(conf, fmw_str_c(key));
}

bool fmw_conf_has(const struct fmw_conf *conf, const char *key)
{
    return find(conf, fmw_str_c(key)) != NULL;
}

static void legacy_warn(struct fmw_conf *conf, int line_no, const char *why, struct fmw_str line)
{
    /* Remarks for explain: past the buffer's cap they are dropped, not an error. */
    (void)fmw_buf_addf(&conf->warnings, "line %d: %s: %.*s\n", line_no, why,
                       (int)(line.len > 200 ? 200 : line.len), line.ptr);
}

enum fmw_err fmw_conf_parse_legacy(struct fmw_conf *conf, const char *text, size_t len,
                                   struct fmw_diag *d)
{
    if (len > FMW_CONF_MAX_TEXT)
        return fmw_diag_set(d, FMW_ETOOBIG, "configuration file larger than %u bytes",
                            FMW_CONF_MAX_TEXT);
    if (!text) /* an empty file's text: NULL + 0 is not a pointer C allows */
        return FMW_OK;
    const char *p = text;
    const char *end = text + len;
    int line_no = 0;
    while (p < end) {
        /* BufferedReader.readLine: a line ends at \n, \r or \r\n. */
        const char *eol = p;
        while (eol < end && *eol != '\n' && *eol != '\r')
            eol++;
        struct fmw_str line = {p, (size_t)(eol - p)};
        p = eol;
        if (p < end && *p == '\r')
            p++;
        if (eol < end && *eol == '\r' && p < end && *p == '\n')
            p++;
        else if (eol < end && *eol == '\n')
            p = eol + 1;
        line_no++;

        const char *hash = memchr(line.ptr, '#', line.len);
        struct fmw_str conf_part = {line.ptr, hash ? (size_t)(hash - line.ptr) : line.len};
        conf_part = fmw_str_trim_java(conf_part);
        if (conf_part.len == 0)
            continue;
        const char *sep = NULL;
        for (size_t i = 0; i + 1 < conf_part.len; i++) {
            if (conf_part.ptr[i] == ':' && conf_part.ptr[i + 1] == ' ') {
                sep = conf_part.ptr + i;
                break;
            }
        }
        if (!sep) {
            legacy_warn(conf, line_no, "not a key-value pair (missing space after ':'?)", line);
            continue;
        }
        struct fmw_str key =
            fmw_str_trim_java((struct fmw_str){conf_part.ptr, (size_t)(sep - conf_part.ptr)});
        const char *vstart = sep + 2;
        struct fmw_str value = fmw_str_trim_java(
            (struct fmw_str){vstart, (size_t)(conf_part.ptr + conf_part.len - vstart)});
        if (key.len == 0 || value.len == 0) {
            legacy_warn(conf, line_no, "key or value was empty", line);
            continue;
        }
        enum fmw_err err = fmw_conf_set(conf, key, value, FMW_CONF_STRING, 0);
        if (err)
            return fmw_diag_set(d, err, "configuration too large (more than %d keys)",
                                FMW_CONF_MAX_ENTRIES);
    }
    return FMW_OK;
}

enum fmw_err fmw_conf_apply_dynamic(struct fmw_conf *conf, struct fmw_str property)
{
    const char *eq = memchr(property.ptr, '=', property.len);
    if (!eq)
        return fmw_conf_set(conf, property, FMW_STR_LIT("true"), FMW_CONF_STRING, 0);
    struct fmw_str key = {property.ptr, (size_t)(eq - property.ptr)};
    struct fmw_str value = {eq + 1, (size_t)(property.ptr + property.len - eq - 1)};
    return fmw_conf_set(conf, key, value, FMW_CONF_STRING, 0);
}

static enum fmw_err could_not_parse(struct fmw_diag *d, const struct fmw_conf_entry *e)
{
    return fmw_diag_set(d, FMW_EINVAL, "Could not parse value '%s' for key '%s'.", e->text, e->key);
}

enum fmw_err fmw_conf_get_memsize(const struct fmw_conf *conf, const char *key, uint64_t dflt,
                                  uint64_t *out, bool *present, struct fmw_diag *d,
                                  struct fmw_diag *cause)
{
    const struct fmw_conf_entry *e = fmw_conf_get(conf, key);
    if (present)
        *present = e != NULL;
    if (!e) {
        *out = dflt;
        return FMW_OK;
    }
    if (fmw_memsize_parse(fmw_str_c(e->text), out, cause) != FMW_OK)
        return fmw_diag_set(d, FMW_ECONFIG, "Cannot read memory size from config option '%s'.",
                            key);
    return FMW_OK;
}

enum fmw_err fmw_conf_get_float(const struct fmw_conf *conf, const char *key, float dflt,
                                float *out, bool *present, struct fmw_diag *d)
{
    const struct fmw_conf_entry *e = fmw_conf_get(conf, key);
    if (present)
        *present = e != NULL;
    if (!e) {
        *out = dflt;
        return FMW_OK;
    }
    if (e->type == FMW_CONF_FLOAT) {
        /* ConfigurationUtils.convertToFloat: a Double must fit the float range (NaN and the
         * infinities do not), then it is narrowed. */
        double v = e->number;
        double a = fabs(v);
        if (v == 0.0 || (a >= 0x1p-149 && a <= 0x1.fffffep127)) {
            *out = (float)v;
            return FMW_OK;
        }
        return could_not_parse(d, e);
    }
    if (!fmw_java_parse_float(fmw_str_c(e->text), out))
        return could_not_parse(d, e);
    return FMW_OK;
}

enum fmw_err fmw_conf_get_double(const struct fmw_conf *conf, const char *key, double dflt,
                                 double *out, bool *present, struct fmw_diag *d)
{
    const struct fmw_conf_entry *e = fmw_conf_get(conf, key);
    if (present)
        *present = e != NULL;
    if (!e) {
        *out = dflt;
        return FMW_OK;
    }
    if (e->type == FMW_CONF_FLOAT) { /* ConfigurationUtils.convertToDouble: a Double as it is */
        *out = e->number;
        return FMW_OK;
    }
    if (!fmw_java_parse_double(fmw_str_c(e->text), out))
        return could_not_parse(d, e);
    return FMW_OK;
}

enum fmw_err fmw_conf_get_bool(const struct fmw_conf *conf, const char *key, bool dflt, bool *out,
                               bool *present, struct fmw_diag *d)
{
    const struct fmw_conf_entry *e = fmw_conf_get(conf, key);
    if (present)
        *present = e != NULL;
    if (!e) {
        *out = dflt;
        return FMW_OK;
    }
    if (strcasecmp(e->text, "true") == 0) {
        *out = true;
        return FMW_OK;
    }
    if (strcasecmp(e->text, "false") == 0) {
        *out = false;
        return FMW_OK;
    }
    return could_not_parse(d, e);
}

enum fmw_err fmw_conf_get_int(const struct fmw_conf *conf, const char *key, int32_t dflt,
                              int32_t *out, bool *present, struct fmw_diag *d)
{
    const struct fmw_conf_entry *e = fmw_conf_get(conf, key);
    if (present)
        *present = e != NULL;
    if (!e) {
        *out = dflt;
        return FMW_OK;
    }
    if (!fmw_java_parse_int(fmw_str_c(e->text), out))
        return could_not_parse(d, e);
    return FMW_OK;
}
