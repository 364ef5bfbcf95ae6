/*
 * The metrics registry. Writers (registration, first lookup of a series) serialise on the
 * registry mutex; readers on the hot path never take it: series lists are append-only singly
 * linked lists whose links are published with release stores, so a lookup walks them with acquire
 * loads while another thread appends. Nothing is removed before the registry is freed, so a
 * pointer handed out never dangles.
 */
#include "pkg/obs/obs.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkg/obs/obs_int.h"

struct fmw_obs_series {
    const struct fmw_obs_metric *metric;
    struct fmw_obs_series *_Atomic next;
    char *values[FMW_OBS_MAX_LABELS]; /* raw label values, for lookups */
    char *label_text;                 /* rendered `a="x",b="y"` (escaped); "" without labels */
    _Atomic int64_t gauge;
    /* Counter: counts[0]. Histogram: n_buckets + 1 bucket counts (the last is +Inf, none are
     * cumulative), then the sum of observations. */
    _Atomic uint64_t counts[];
};

struct fmw_obs_metric {
    struct fmw_obs_registry *reg;
    struct fmw_obs_metric *next; /* registry order; guarded by reg->mu */
    enum fmw_obs_kind kind;
    char *name;
    char *help;
    size_t n_labels;
    char *label_names[FMW_OBS_MAX_LABELS];
    size_t n_buckets;
    double buckets[FMW_OBS_MAX_BUCKETS];
    /* An observation v falls in bucket i when v <= thresholds[i]: the bound in observed units. */
    uint64_t thresholds[FMW_OBS_MAX_BUCKETS];
    double unit;
    struct fmw_obs_series *_Atomic head;
    struct fmw_obs_series *tail; /* guarded by reg->mu */
    size_t n_series;             /* guarded by reg->mu */
};

struct fmw_obs_registry {
    pthread_mutex_t mu;
    struct fmw_obs_metric *head;
    struct fmw_obs_metric *tail;
};

const double fmw_obs_latency_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                          0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                          1,      2.5,     5,      10,    30};
const size_t fmw_obs_n_latency_buckets =
    sizeof(fmw_obs_latency_buckets) / sizeof(fmw_obs_latency_buckets[0]);

size_t fmw_obs_fmt_double(char out[FMW_OBS_DOUBLE_MAX], double v)
{
    if (isnan(v))
        return (size_t)snprintf(out, FMW_OBS_DOUBLE_MAX, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, FMW_OBS_DOUBLE_MAX, v > 0 ? "+Inf" : "-Inf");
    /* Whole numbers as integers ("10", where %g would say "1e+01"). */
    if (v == floor(v) && fabs(v) < 1e15)
        return (size_t)snprintf(out, FMW_OBS_DOUBLE_MAX, "%.0f", v);
    /* Otherwise the smallest precision that round-trips is the shortest faithful form. Any
     * precision above a round-tripping one round-trips too, so a binary search finds it in four
     * or five tries instead of up to seventeen (log lines format a latency per admission). */
    int lo = 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(out, FMW_OBS_DOUBLE_MAX, "%.*g", mid, v);
        if (strtod(out, NULL) == v)
            hi = mid;
        else
            lo = mid + 1;
    }
    int n = snprintf(out, FMW_OBS_DOUBLE_MAX, "%.*g", lo, v);
    return n < 0 ? 0 : (size_t)n;
}

static bool valid_name(const char *s, bool allow_colon)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Appends `s` escaped for a label value (backslash, double quote and newline, as the text format
 * requires) or for HELP text (backslash and newline only). */
static enum fmw_err add_escaped(struct fmw_buf *b, const char *s, bool quote)
{
    enum fmw_err err = FMW_OK;
    const char *run = s;
    for (const char *p = s; *p && err == FMW_OK; p++) {
        const char *rep = NULL;
        if (*p == '\\')
            rep = "\\\\";
        else if (*p == '\n')
            rep = "\\n";
        else if (quote && *p == '"')
            rep = "\\\"";
        if (!rep)
            continue;
        err = fmw_buf_add(b, run, (size_t)(p - run));
        if (err == FMW_OK)
            err = fmw_buf_adds(b, rep);
        run = p + 1;
    }
    if (err == FMW_OK)
        err = fmw_buf_adds(b, run);
    return err;
}

struct fmw_obs_registry *fmw_obs_registry_new(void)
{
    struct fmw_obs_registry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return NULL;
    if (pthread_mutex_init(&reg->mu, NULL) != 0) {
        free(reg);
        return NULL;
    }
    return reg;
}

static void series_free(struct fmw_obs_series *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < FMW_OBS_MAX_LABELS; i++)
        free(s->values[i]);
    free(s->label_text);
    free(s);
}

static void metric_free(struct fmw_obs_metric *m)
{
    if (!m)
        return;
    struct fmw_obs_series *s = atomic_load_explicit(&m->head, memory_order_acquire);
    while (s) {
        struct fmw_obs_series *next = atomic_load_explicit(&s->next, memory_order_relaxed);
        series_free(s);
        s = next;
    }
    for (size_t i = 0; i < FMW_OBS_MAX_LABELS; i++)
        free(m->label_names[i]);
    free(m->name);
    free(m->help);
    free(m);
}

void fmw_obs_registry_free(struct fmw_obs_registry *reg)
{
    if (!reg)
        return;
    struct fmw_obs_metric *m = reg->head;
    while (m) {
        struct fmw_obs_metric *next = m->next;
        metric_free(m);
        m = next;
    }
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

/* Splits "a,b" into m->label_names. */
static enum fmw_err parse_labels(struct fmw_obs_metric *m, const char *labels)
{
    if (!labels || !*labels)
        return FMW_OK;
    const char *p = labels;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (m->n_labels == FMW_OBS_MAX_LABELS)
            return FMW_EINVAL;
        char *name = fmw_str_dup((struct fmw_str){p, n});
        if (!name)
            return FMW_ENOMEM;
        m->label_names[m->n_labels++] = name;
        bool reserved = strncmp(name, "__", 2) == 0 ||
                        (m->kind == FMW_OBS_HISTOGRAM && strcmp(name, "le") == 0);
        if (!valid_name(name, false) || reserved)
            return FMW_EINVAL;
        for (size_t i = 0; i + 1 < m->n_labels; i++)
            if (strcmp(m->label_names[i], name) == 0)
                return FMW_EINVAL;
        if (p[n] == '\0')
            return FMW_OK;
        p += n + 1;
    }
}

static enum fmw_err set_buckets(struct fmw_obs_metric *m, const struct fmw_obs_desc *desc)
{
    if (desc->n_buckets > FMW_OBS_MAX_BUCKETS || (desc->n_buckets > 0 && !desc->buckets))
        return FMW_EINVAL;
    m->unit = desc->unit > 0 ? desc->unit : 1.0;
    m->n_buckets = desc->n_buckets;
    for (size_t i = 0; i < desc->n_buckets; i++) {
        double b = desc->buckets[i];
        if (!isfinite(b) || b < 0 || (i > 0 && b <= desc->buckets[i - 1]))
            return FMW_EINVAL;
        m->buckets[i] = b;
        /* The tiny upward nudge keeps bounds like 0.0003 s from landing one nanosecond short
         * (0.0003 * 1e9 is 299999.99999999994 in binary floating point). */
        double t = floor(b * m->unit * (1.0 + 1e-12));
        m->thresholds[i] = t >= 18446744073709549568.0 ? UINT64_MAX : (uint64_t)t;
    }
    return FMW_OK;
}

static bool same_shape(const struct fmw_obs_metric *a, const struct fmw_obs_metric *b)
{
    if (a->kind != b->kind || a->n_labels != b->n_labels || a->n_buckets != b->n_buckets)
        return false;
    for (size_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->label_names[i], b->label_names[i]) != 0)
            return false;
    for (size_t i = 0; i < a->n_buckets; i++)
        if (a->thresholds[i] != b->thresholds[i])
            return false;
    return true;
}

enum fmw_err fmw_obs_register(struct fmw_obs_registry *reg, const struct fmw_obs_desc *desc,
                              struct fmw_obs_metric **out)
{
    enum fmw_err err = FMW_OK;
    struct fmw_obs_metric *m = NULL;
    bool locked = false;

    *out = NULL;
    if (!reg || !desc || !valid_name(desc->name, true) ||
        (desc->kind != FMW_OBS_COUNTER && desc->kind != FMW_OBS_GAUGE &&
         desc->kind != FMW_OBS_HISTOGRAM)) {
        err = FMW_EINVAL;
        goto out;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        err = FMW_ENOMEM;
        goto out;
    }
    m->reg = reg;
    m->kind = desc->kind;
    m->name = fmw_strdup(desc->name);
    m->help = fmw_strdup(desc->help ? desc->help : "");
    if (!m->name || !m->help) {
        err = FMW_ENOMEM;
        goto out;
    }
    err = parse_labels(m, desc->labels);
    if (err == FMW_OK && m->kind == FMW_OBS_HISTOGRAM)
        err = set_buckets(m, desc);
    if (err != FMW_OK)
        goto out;

    pthread_mutex_lock(&reg->mu);
    locked = true;
    for (struct fmw_obs_metric *it = reg->head; it; it = it->next) {
        if (strcmp(it->name, m->name) != 0)
            continue;
        if (!same_shape(it, m)) {
            err = FMW_EINVAL;
            goto out;
        }
        *out = it;
        goto out; /* m is freed below: the existing metric wins */
    }
    if (reg->tail)
        reg->tail->next = m;
    else
        reg->head = m;
    reg->tail = m;
    *out = m;
    m = NULL;

out:
    if (locked)
        pthread_mutex_unlock(&reg->mu);
    metric_free(m);
    /* A metric without labels has exactly one series: create it now so it renders as 0. */
    if (*out && (*out)->n_labels == 0 && !fmw_obs_series0(*out))
        err = FMW_ENOMEM;
    return err;
}

static bool series_matches(const struct fmw_obs_series *s, size_t n, const char *const *values)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = values[i] ? values[i] : "";
        if (strcmp(s->values[i], v) != 0)
            return false;
    }
    return true;
}

/* `n` is m->n_labels, checked by the caller: `values` has that many. */
static struct fmw_obs_series *find_series(struct fmw_obs_metric *m, size_t n,
                                          const char *const *values)
{
    struct fmw_obs_series *s = atomic_load_explicit(&m->head, memory_order_acquire);
    for (; s; s = atomic_load_explicit(&s->next, memory_order_acquire))
        if (series_matches(s, n, values))
            return s;
    return NULL;
}

static struct fmw_obs_series *series_new(const struct fmw_obs_metric *m, size_t n,
                                         const char *const *values)
{
    size_t n_counts = m->kind == FMW_OBS_HISTOGRAM ? m->n_buckets + 2 : 1;
    struct fmw_obs_series *s = calloc(1, sizeof(*s) + n_counts * sizeof(s->counts[0]));
    struct fmw_buf text;
    fmw_buf_init(&text, 64 * 1024);
    if (!s)
        goto fail;
    s->metric = m;
    atomic_init(&s->next, NULL);
    atomic_init(&s->gauge, 0);
    for (size_t i = 0; i < n_counts; i++)
        atomic_init(&s->counts[i], 0);
    for (size_t i = 0; i < n; i++) {
        s->values[i] = fmw_strdup(values[i] ? values[i] : "");
        if (!s->values[i])
            goto fail;
        if ((i > 0 && fmw_buf_addc(&text, ',') != FMW_OK) ||
            fmw_buf_adds(&text, m->label_names[i]) != FMW_OK ||
            fmw_buf_adds(&text, "=\"") != FMW_OK ||
            add_escaped(&text, s->values[i], true) != FMW_OK || fmw_buf_addc(&text, '"') != FMW_OK)
            goto fail;
    }
    s->label_text = fmw_strdup(fmw_buf_cstr(&text));
    if (!s->label_text)
        goto fail;
    fmw_buf_free(&text);
    return s;
fail:
    fmw_buf_free(&text);
    series_free(s);
    return NULL;
}

struct fmw_obs_series *fmw_obs_series(struct fmw_obs_metric *m, size_t n, const char *const *values)
{
    if (!m || n != m->n_labels || (n && !values))
        return NULL; /* one value per label, no more and no fewer (0 reads none) */
    struct fmw_obs_series *s = find_series(m, n, values);
    if (s)
        return s;

    pthread_mutex_lock(&m->reg->mu);
    /* Another thread may have created it between the lock-free look and the lock. */
    s = find_series(m, n, values);
    if (!s && m->n_series < FMW_OBS_MAX_SERIES) {
        s = series_new(m, n, values);
        if (s) {
            /* Fully built before it is published: the release store pairs with the acquire
             * loads of find_series(). */
            if (m->tail)
                atomic_store_explicit(&m->tail->next, s, memory_order_release);
            else
                atomic_store_explicit(&m->head, s, memory_order_release);
            m->tail = s;
            m->n_series++;
        }
    }
    pthread_mutex_unlock(&m->reg->mu);
    return s;
}

struct fmw_obs_series *fmw_obs_series0(struct fmw_obs_metric *m)
{
    return fmw_obs_series(m, 0, NULL);
}

struct fmw_obs_series *fmw_obs_series1(struct fmw_obs_metric *m, const char *v1)
{
    const char *values[1] = {v1};
    return fmw_obs_series(m, 1, values);
}

struct fmw_obs_series *fmw_obs_series2(struct fmw_obs_metric *m, const char *v1, const char *v2)
{
    const char *values[2] = {v1, v2};
    return fmw_obs_series(m, 2, values);
}

void fmw_obs_add(struct fmw_obs_series *s, uint64_t n)
{
    if (s && s->metric->kind == FMW_OBS_COUNTER)
        atomic_fetch_add_explicit(&s->counts[0], n, memory_order_relaxed);
}

void fmw_obs_inc(struct fmw_obs_series *s)
{
    fmw_obs_add(s, 1);
}

void fmw_obs_gauge_set(struct fmw_obs_series *s, int64_t v)
{
    if (s && s->metric->kind == FMW_OBS_GAUGE)
        atomic_store_explicit(&s->gauge, v, memory_order_relaxed);
}

void fmw_obs_gauge_add(struct fmw_obs_series *s, int64_t delta)
{
    if (s && s->metric->kind == FMW_OBS_GAUGE)
        atomic_fetch_add_explicit(&s->gauge, delta, memory_order_relaxed);
}

void fmw_obs_observe(struct fmw_obs_series *s, uint64_t value)
{
    if (!s || s->metric->kind != FMW_OBS_HISTOGRAM)
        return;
    const struct fmw_obs_metric *m = s->metric;
    size_t i = 0;
    while (i < m->n_buckets && value > m->thresholds[i])
        i++;
    atomic_fetch_add_explicit(&s->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->counts[m->n_buckets + 1], value, memory_order_relaxed);
}

int64_t fmw_obs_value(const struct fmw_obs_series *s)
{
    if (!s)
        return 0;
    switch (s->metric->kind) {
    case FMW_OBS_COUNTER:
        return (int64_t)atomic_load_explicit(&s->counts[0], memory_order_relaxed);
    case FMW_OBS_GAUGE:
        return atomic_load_explicit(&s->gauge, memory_order_relaxed);
    case FMW_OBS_HISTOGRAM: {
        uint64_t total = 0;
        for (size_t i = 0; i <= s->metric->n_buckets; i++)
            total += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
        return (int64_t)total;
    }
    }
    return 0;
}

static const char *kind_name(enum fmw_obs_kind kind)
{
    switch (kind) {
    case FMW_OBS_COUNTER:
        return "counter";
    case FMW_OBS_GAUGE:
        return "gauge";
    case FMW_OBS_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

/* One sample line: name{labels[,extra]} value. */
static enum fmw_err add_sample(struct fmw_buf *out, const char *name, const char *suffix,
                               const char *labels, const char *extra, const char *value)
{
    bool any = labels[0] || extra;
    return fmw_buf_addf(out, "%s%s%s%s%s%s%s %s\n", name, suffix, any ? "{" : "", labels,
                        labels[0] && extra ? "," : "", extra ? extra : "", any ? "}" : "", value);
}

static enum fmw_err render_histogram(struct fmw_buf *out, const struct fmw_obs_metric *m,
                                     const struct fmw_obs_series *s)
{
    enum fmw_err err = FMW_OK;
    char num[FMW_OBS_DOUBLE_MAX];
    char le[FMW_OBS_DOUBLE_MAX + 8];
    char value[32];
    uint64_t cumulative = 0;

    for (size_t i = 0; i <= m->n_buckets && err == FMW_OK; i++) {
        cumulative += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
        if (i < m->n_buckets)
            fmw_obs_fmt_double(num, m->buckets[i]);
        snprintf(le, sizeof(le), "le=\"%s\"", i < m->n_buckets ? num : "+Inf");
        snprintf(value, sizeof(value), "%llu", (unsigned long long)cumulative);
        err = add_sample(out, m->name, "_bucket", s->label_text, le, value);
    }
    uint64_t sum = atomic_load_explicit(&s->counts[m->n_buckets + 1], memory_order_relaxed);
    fmw_obs_fmt_double(num, (double)sum / m->unit);
    if (err == FMW_OK)
        err = add_sample(out, m->name, "_sum", s->label_text, NULL, num);
    snprintf(value, sizeof(value), "%llu", (unsigned long long)cumulative);
    if (err == FMW_OK)
        err = add_sample(out, m->name, "_count", s->label_text, NULL, value);
    return err;
}

enum fmw_err fmw_obs_render(struct fmw_obs_registry *reg, struct fmw_buf *out)
{
    enum fmw_err err = FMW_OK;
    if (!reg || !out)
        return FMW_EINVAL;
    /* The lock keeps the metric list steady; updates to values go on meanwhile. */
    pthread_mutex_lock(&reg->mu);
    for (const struct fmw_obs_metric *m = reg->head; m && err == FMW_OK; m = m->next) {
        err = fmw_buf_addf(out, "# HELP %s ", m->name);
        if (err == FMW_OK)
            err = add_escaped(out, m->help, false);
        if (err == FMW_OK)
            err = fmw_buf_addf(out, "\n# TYPE %s %s\n", m->name, kind_name(m->kind));
        const struct fmw_obs_series *s = atomic_load_explicit(&m->head, memory_order_acquire);
        for (; s && err == FMW_OK; s = atomic_load_explicit(&s->next, memory_order_acquire)) {
            char value[32];
            switch (m->kind) {
            case FMW_OBS_COUNTER:
                snprintf(
                    value, sizeof(value), "%llu",
                    (unsigned long long)atomic_load_explicit(&s->counts[0], memory_order_relaxed));
                err = add_sample(out, m->name, "", s->label_text, NULL, value);
                break;
            case FMW_OBS_GAUGE:
                snprintf(value, sizeof(value), "%lld",
                         (long long)atomic_load_explicit(&s->gauge, memory_order_relaxed));
                err = add_sample(out, m->name, "", s->label_text, NULL, value);
                break;
            case FMW_OBS_HISTOGRAM:
                err = render_histogram(out, m, s);
                break;
            }
        }
    }
    pthread_mutex_unlock(&reg->mu);
    return err;
}
