/*
 * pkg/obs: observability — a metrics registry rendered in the Prometheus text format (0.0.4), and
 * structured JSON log lines, one line per event, on stderr.
 *
 * Metrics. A registry holds metrics (counters, gauges, histograms), each with a fixed list of label
 * names; a metric holds series, one per combination of label values. Registering and looking up a
 * series may allocate and take a mutex the first time; updating a series is one relaxed atomic
 * operation and never allocates, so the hot path keeps the series pointers it looked up. Every
 * update function accepts NULL and then does nothing: a failed lookup (series cap reached, out of
 * memory) costs a metric, never a crash. Metric names used by this project start with
 * "flink_memory_webhook_".
 *
 * Logs. One JSON object per line: {"ts":"…","level":"info","msg":"…", fields…}. A line is built on
 * the caller's stack and written with a single write(2), so lines from several threads never
 * interleave. Values of keys that look like secrets (token, password, secret, authorization) are
 * replaced by "[redacted]"; callers still must not log objects whole.
 */
#ifndef FMW_OBS_H
#define FMW_OBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pkg/base/base.h"

/* ---- metrics ---- */

/* The Content-Type of fmw_obs_render() output. */
#define FMW_OBS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Most label names a metric can have, and most series one metric keeps (a cardinality guard). */
#define FMW_OBS_MAX_LABELS 4
#define FMW_OBS_MAX_SERIES 256
/* Most histogram buckets (upper bounds, +Inf not counted). */
#define FMW_OBS_MAX_BUCKETS 32

enum fmw_obs_kind { FMW_OBS_COUNTER, FMW_OBS_GAUGE, FMW_OBS_HISTOGRAM };

/* Latency buckets in seconds shared by the project's histograms, so they can be compared and
 * aggregated: sub-millisecond resolution where an admission should land (100 µs, 250 µs, 500 µs,
 * 1 ms …) up to 30 s, past the API server's longest webhook timeout. */
extern const double fmw_obs_latency_buckets[];
extern const size_t fmw_obs_n_latency_buckets;

struct fmw_obs_registry;
struct fmw_obs_metric;
struct fmw_obs_series;

/* What fmw_obs_register() needs to know about a metric. */
struct fmw_obs_desc {
    const char *name;   /* [a-zA-Z_:][a-zA-Z0-9_:]*; counters should end in _total */
    const char *help;   /* one line of text */
    const char *labels; /* comma-separated label names ("route,code"), or NULL for none */
    enum fmw_obs_kind kind;
    /* Histograms only: bucket upper bounds in exposition units (seconds for latencies), strictly
     * ascending, at most FMW_OBS_MAX_BUCKETS; +Inf is implied. */
    const double *buckets;
    size_t n_buckets;
    /* Histograms only: observed units per exposition unit, e.g. 1e9 when observations are in
     * nanoseconds and the metric is in seconds. 0 means 1. Observations are integers so that
     * recording stays a lock-free integer add. */
    double unit;
};

/* A new, empty registry. NULL when out of memory. Free with fmw_obs_registry_free(). */
struct fmw_obs_registry *fmw_obs_registry_new(void);

/* Frees the registry and every metric and series in it; all their pointers become invalid. Must
 * not race with updates or lookups (stop the threads that update first). NULL is fine. */
void fmw_obs_registry_free(struct fmw_obs_registry *reg);

/*
 * Adds a metric to the registry and sets *out to it (owned by the registry). The strings are
 * copied. Registering the same name again with the same kind and labels returns the existing
 * metric, so independent packages can share one. A metric without labels gets its only series at
 * once, so it is rendered (as 0) before its first update.
 * Errors: FMW_EINVAL (bad name or label, bad buckets, same name with another shape; *out is NULL),
 * FMW_ENOMEM.
 */
FMW_NODISCARD enum fmw_err fmw_obs_register(struct fmw_obs_registry *reg,
                                            const struct fmw_obs_desc *desc,
                                            struct fmw_obs_metric **out);

/*
 * The series of `m` for the `n` label values `values`, one per label name and in the same order
 * (0 and NULL for a metric without labels; a NULL value counts as ""). Created on first use.
 * Lookups of existing series take no lock. Returns NULL when `m` is NULL, when `n` is not the
 * metric's number of labels, when the metric already has FMW_OBS_MAX_SERIES series, or when
 * memory runs out. The pointer stays valid until the registry is freed. Thread-safe.
 */
struct fmw_obs_series *fmw_obs_series(struct fmw_obs_metric *m, size_t n,
                                      const char *const *values);

/* Shorthands for metrics with no, one and two labels. */
struct fmw_obs_series *fmw_obs_series0(struct fmw_obs_metric *m);
struct fmw_obs_series *fmw_obs_series1(struct fmw_obs_metric *m, const char *v1);
struct fmw_obs_series *fmw_obs_series2(struct fmw_obs_metric *m, const char *v1, const char *v2);

/* Counter: adds n (fmw_obs_inc adds 1). No-op for NULL or a series of another kind. */
void fmw_obs_add(struct fmw_obs_series *s, uint64_t n);
void fmw_obs_inc(struct fmw_obs_series *s);

/* Gauge: sets, or adds a (possibly negative) delta. No-op for NULL or another kind. */
void fmw_obs_gauge_set(struct fmw_obs_series *s, int64_t v);
void fmw_obs_gauge_add(struct fmw_obs_series *s, int64_t delta);

/* Histogram: records one observation, in the metric's observed units (see fmw_obs_desc.unit).
 * No-op for NULL or another kind. */
void fmw_obs_observe(struct fmw_obs_series *s, uint64_t value);

/* The current value of a counter or gauge series (0 for NULL); for a histogram, its count. Meant
 * for tests and for the owner's own decisions (e.g. how many connections are open). */
int64_t fmw_obs_value(const struct fmw_obs_series *s);

/*
 * Appends the whole registry in the Prometheus text format to `out` (families in registration
 * order, series in creation order). Thread-safe against updates and registrations; values of
 * different series are read one by one, not as a snapshot.
 * Errors: FMW_ETOOBIG when `out` reaches its cap (its content is then incomplete), FMW_ENOMEM.
 */
FMW_NODISCARD enum fmw_err fmw_obs_render(struct fmw_obs_registry *reg, struct fmw_buf *out);

/* ---- logs ---- */

enum fmw_log_level { FMW_LOG_DEBUG = 0, FMW_LOG_INFO = 1, FMW_LOG_WARN = 2, FMW_LOG_ERROR = 3 };

/* Longest line, newline included. PIPE_BUF on Linux, so a line written to a pipe is atomic. */
#define FMW_LOG_LINE_MAX 4096

/*
 * Process-wide settings: lines below `min_level` are dropped; lines go to `fd` (2 by default).
 * Thread-safe, may be called at any time.
 */
void fmw_log_setup(enum fmw_log_level min_level, int fd);

/* Parses "debug", "info", "warn"/"warning", "error" (any case). Errors: FMW_EINVAL. */
FMW_NODISCARD enum fmw_err fmw_log_level_parse(const char *text, enum fmw_log_level *out);

/* The lower-case name of a level ("info"). */
const char *fmw_log_level_name(enum fmw_log_level level);

/* True when a line at `level` would be written: lets callers skip building expensive fields. */
bool fmw_log_enabled(enum fmw_log_level level);

/*
 * A log line being built. Lives on the caller's stack; no allocation. When a field does not fit,
 * it and every later field are dropped and the line ends with "truncated":true.
 */
struct fmw_log_line {
    char buf[FMW_LOG_LINE_MAX];
    size_t len;
    int depth;     /* open nested objects */
    bool active;   /* false: filtered out, every call is a no-op */
    bool need_sep; /* a field was written at this depth, the next one needs a comma */
    bool truncated;
    enum fmw_log_level level;
};

/*
 * Starts a line with ts, level and msg (msg is escaped like any string). Returns false, and makes
 * every later call on the line a no-op, when the level is filtered out.
 */
bool fmw_log_begin(struct fmw_log_line *l, enum fmw_log_level level, const char *msg);

/* Fields. Keys are written as given (use plain ASCII names); values are JSON-escaped, with
 * invalid UTF-8 replaced by U+FFFD. A NULL string value is written as null. */
void fmw_log_str(struct fmw_log_line *l, const char *key, const char *value);
void fmw_log_strn(struct fmw_log_line *l, const char *key, struct fmw_str value);
void fmw_log_int(struct fmw_log_line *l, const char *key, int64_t value);
void fmw_log_uint(struct fmw_log_line *l, const char *key, uint64_t value);
void fmw_log_double(struct fmw_log_line *l, const char *key, double value);
/* `value` / 10^decimals as a JSON number with exactly `decimals` (1..9) digits after the point:
 * 1234, 3 -> 1.234. Cheaper than a double: latencies are logged so on every decision. */
void fmw_log_fixed(struct fmw_log_line *l, const char *key, int64_t value, unsigned decimals);
void fmw_log_bool(struct fmw_log_line *l, const char *key, bool value);

/* Opens a nested object under `key` ("sizes":{…}) and closes it. fmw_log_end() closes any left
 * open. */
void fmw_log_object_begin(struct fmw_log_line *l, const char *key);
void fmw_log_object_end(struct fmw_log_line *l);

/* Finishes the line and writes it with one write(2). The line is inactive afterwards. */
void fmw_log_end(struct fmw_log_line *l);

/* A line with only a message, formatted like printf (cut at the line size). */
void fmw_logf(enum fmw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
