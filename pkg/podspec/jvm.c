/*
 * JVM memory flags in option strings. HotSpot takes the last occurrence of each flag, so the
 * scripts' order of option sources decides which value wins (Flink's bin/config.sh and
 * bin/jobmanager.sh).
 */
#include "pkg/podspec/podspec_int.h"

#include "pkg/memsize/memsize.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *prefix;
    enum jvm_flag flag;
} FLAG_SPELLINGS[] = {
    {"-Xmx", FLAG_XMX},
    {"-XX:MaxHeapSize=", FLAG_XMX},
    {"-Xms", FLAG_XMS},
    {"-XX:InitialHeapSize=", FLAG_XMS},
    {"-XX:MaxMetaspaceSize=", FLAG_METASPACE},
    {"-XX:MaxDirectMemorySize=", FLAG_DIRECT},
};

static const char *const CANONICAL[FLAG_COUNT] = {
    "-Xmx", "-Xms", "-XX:MaxMetaspaceSize=", "-XX:MaxDirectMemorySize="};

bool fmw_podspec_jvm_size(struct fmw_str text, uint64_t *bytes)
{
    size_t i = 0;
    uint64_t v = 0;
    if (text.len == 0)
        return false;
    for (; i < text.len && isdigit((unsigned char)text.ptr[i]); i++) {
        unsigned d = (unsigned)(text.ptr[i] - '0');
        if (v > (FMW_MEMSIZE_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (i == 0)
        return false;
    uint64_t mult = 1;
    if (i < text.len) {
        if (i + 1 != text.len)
            return false;
        switch (tolower((unsigned char)text.ptr[i])) {
        case 'k':
            mult = FMW_KIB;
            break;
        case 'm':
            mult = FMW_MIB;
            break;
        case 'g':
            mult = FMW_GIB;
            break;
        case 't':
            mult = FMW_TIB;
            break;
        default:
            return false;
        }
    }
    if (v > FMW_MEMSIZE_MAX / mult)
        return false;
    *bytes = v * mult;
    return true;
}

bool fmw_jvm_flag_of(const char *word, enum jvm_flag *flag, size_t *value_at)
{
    for (size_t i = 0; i < sizeof FLAG_SPELLINGS / sizeof FLAG_SPELLINGS[0]; i++) {
        size_t n = strlen(FLAG_SPELLINGS[i].prefix);
        if (strncmp(word, FLAG_SPELLINGS[i].prefix, n) == 0) {
            *flag = FLAG_SPELLINGS[i].flag;
            *value_at = n;
            return true;
        }
    }
    return false;
}

void fmw_jvm_flag_format(enum jvm_flag flag, uint64_t bytes, char out[64])
{
    snprintf(out, 64, "%s%" PRIu64, CANONICAL[flag], bytes);
}

/* Calls `fn` for every white-space separated word of `opts`. */
static void each_word(const char *opts, void (*fn)(void *, const char *, size_t, size_t), void *arg)
{
    size_t i = 0, n = strlen(opts);
    while (i < n) {
        while (i < n && isspace((unsigned char)opts[i]))
            i++;
        size_t start = i;
        while (i < n && !isspace((unsigned char)opts[i]))
            i++;
        if (i > start)
            fn(arg, opts, start, i);
    }
}

/* The first size-1 bytes of a word, NUL-terminated: enough to tell which flag it is, since a
 * flag is known by its prefix. True when the word fits whole. */
static bool word_prefix(char *word, size_t size, const char *text, size_t len)
{
    bool whole = len < size;
    if (!whole)
        len = size - 1;
    memcpy(word, text, len);
    word[len] = '\0';
    return whole;
}

struct scan {
    bool *found;
    uint64_t *bytes;
};

static void scan_word(void *arg, const char *opts, size_t start, size_t end)
{
    struct scan *s = arg;
    char word[256];
    bool whole = word_prefix(word, sizeof word, opts + start, end - start);
    enum jvm_flag flag;
    size_t at;
    if (!fmw_jvm_flag_of(word, &flag, &at))
        return;
    s->found[flag] = true;
    /* A value too long to hold (leading zeros, say) is one to rewrite, never one to skip. */
    if (!whole || !fmw_podspec_jvm_size(fmw_str_c(word + at), &s->bytes[flag]))
        s->bytes[flag] = UINT64_MAX;
}

void fmw_jvm_scan(const char *opts, bool found[FLAG_COUNT], uint64_t bytes[FLAG_COUNT])
{
    for (int f = 0; f < FLAG_COUNT; f++) {
        found[f] = false;
        bytes[f] = UINT64_MAX;
    }
    struct scan s = {found, bytes};
    each_word(opts, scan_word, &s);
}

struct rewrite {
    const uint64_t *want;
    const bool *set;
    struct fmw_buf *out;
    size_t copied; /* bytes of opts already copied to out */
    enum fmw_err err;
};

static void rewrite_word(void *arg, const char *opts, size_t start, size_t end)
{
    struct rewrite *r = arg;
    char word[256];
    if (r->err)
        return;
    word_prefix(word, sizeof word, opts + start, end - start);
    enum jvm_flag flag;
    size_t at;
    if (!fmw_jvm_flag_of(word, &flag, &at) || !r->set[flag])
        return;
    if (r->want[flag] == FMW_JVM_REMOVE) {
        /* The word goes with the blanks before it (or, first in the text, after it). */
        size_t keep = start;
        while (keep > r->copied && isspace((unsigned char)opts[keep - 1]))
            keep--;
        r->err = fmw_buf_add(r->out, opts + r->copied, keep - r->copied);
        r->copied = end;
        if (r->out->len == 0)
            while (isspace((unsigned char)opts[r->copied]))
                r->copied++;
        return;
    }
    /* Keep the user's spelling of the option, write the value in bytes as Flink does. */
    r->err = fmw_buf_add(r->out, opts + r->copied, start + at - r->copied);
    if (!r->err)
        r->err = fmw_buf_addf(r->out, "%" PRIu64, r->want[flag]);
    r->copied = end;
}

char *fmw_jvm_rewrite(const char *opts, const uint64_t want[FLAG_COUNT], const bool set[FLAG_COUNT])
{
    struct fmw_buf out;
    fmw_buf_init(&out, 1 << 22);
    struct rewrite r = {want, set, &out, 0, fmw_buf_add(&out, "", 0)};
    each_word(opts, rewrite_word, &r);
    if (!r.err)
        r.err = fmw_buf_adds(&out, opts + r.copied);
    if (r.err) {
        fmw_buf_free(&out);
        return NULL;
    }
    return fmw_buf_take(&out);
}
