/* The metrics registry: registration rules, updates, the exact text format, caps, threads. */
#include "pkg/obs/obs.h"
#include "pkg/obs/obs_int.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static struct fmw_obs_metric *reg_metric(struct fmw_obs_registry *reg, const char *name,
                                         enum fmw_obs_kind kind, const char *labels)
{
    struct fmw_obs_desc d = {.name = name, .help = "h", .labels = labels, .kind = kind};
    struct fmw_obs_metric *m = NULL;
    cr_assert_eq(fmw_obs_register(reg, &d, &m), FMW_OK, "register %s", name);
    cr_assert_not_null(m);
    return m;
}

static char *render(struct fmw_obs_registry *reg)
{
    struct fmw_buf b;
    fmw_buf_init(&b, 1 << 20);
    cr_assert_eq(fmw_obs_render(reg, &b), FMW_OK);
    char *text = fmw_buf_take(&b);
    return text ? text : strdup("");
}

Test(obs_metrics, render_exact_text)
{
    struct fmw_obs_registry *reg = fmw_obs_registry_new();
    struct fmw_obs_desc dc = {.name = "fmw_requests_total",
                              .help = "Requests\\done\nby route.",
                              .labels = "route,code",
                              .kind = FMW_OBS_COUNTER};
    struct fmw_obs_metric *c = NULL;
    cr_assert_eq(fmw_obs_register(reg, &dc, &c), FMW_OK);
    struct fmw_obs_metric *g = reg_metric(reg, "fmw_in_flight", FMW_OBS_GAUGE, NULL);
    static const double bounds[] = {0.0001, 0.0003, 0.001, 10};
    struct fmw_obs_desc dh = {.name = "fmw_latency_seconds",
                              .help = "Latency.",
                              .labels = "route",
                              .kind = FMW_OBS_HISTOGRAM,
                              .buckets = bounds,
                              .n_buckets = 4,
                              .unit = 1e9};
    struct fmw_obs_metric *h = NULL;
    cr_assert_eq(fmw_obs_register(reg, &dh, &h), FMW_OK);

    fmw_obs_add(fmw_obs_series2(c, "/mutate", "200"), 41);
    fmw_obs_inc(fmw_obs_series2(c, "/mutate", "200"));
    fmw_obs_inc(fmw_obs_series2(c, "a\"b\\c\nd", "500"));
    fmw_obs_gauge_add(fmw_obs_series0(g), 5);
    fmw_obs_gauge_add(fmw_obs_series0(g), -7);
    struct fmw_obs_series *hs = fmw_obs_series1(h, "/mutate");
    fmw_obs_observe(hs, 50000);       /* 50 µs */
    fmw_obs_observe(hs, 300000);      /* exactly 0.3 ms: in the 0.0003 bucket */
    fmw_obs_observe(hs, 300001);      /* just past it */
    fmw_obs_observe(hs, 20000000000); /* 20 s: only +Inf */

    char *text = render(reg);
    const char *want = "# HELP fmw_requests_total Requests\\\\done\\nby route.\n"
                       "# TYPE fmw_requests_total counter\n"
                       "fmw_requests_total{route=\"/mutate\",code=\"200\"} 42\n"
                       "fmw_requests_total{route=\"a\\\"b\\\\c\\nd\",code=\"500\"} 1\n"
                       "# HELP fmw_in_flight h\n"
                       "# TYPE fmw_in_flight gauge\n"
                       "fmw_in_flight -2\n"
                       "# HELP fmw_latency_seconds Latency.\n"
                       "# TYPE fmw_latency_seconds histogram\n"
                       "fmw_latency_seconds_bucket{route=\"/mutate\",le=\"0.0001\"} 1\n"
                       "fmw_latency_seconds_bucket{route=\"/mutate\",le=\"0.0003\"} 2\n"
                       "fmw_latency_seconds_bucket{route=\"/mutate\",le=\"0.001\"} 3\n"
                       "fmw_latency_seconds_bucket{route=\"/mutate\",le=\"10\"} 3\n"
                       "fmw_latency_seconds_bucket{route=\"/mutate\",le=\"+Inf\"} 4\n"
                       "fmw_latency_seconds_sum{route=\"/mutate\"} 20.000650001\n"
                       "fmw_latency_seconds_count{route=\"/mutate\"} 4\n";
    cr_expect_str_eq(text, want);
    cr_expect_eq(fmw_obs_value(hs), 4);
    cr_expect_eq(fmw_obs_value(fmw_obs_series0(g)), -2);
    free(text);
    fmw_obs_registry_free(reg);
}

Test(obs_metrics, unlabelled_metrics_render_zero_before_use)
{
    struct fmw_obs_registry *reg = fmw_obs_registry_new();
    reg_metric(reg, "fmw_x_total", FMW_OBS_COUNTER, NULL);
    reg_metric(reg, "fmw_y", FMW_OBS_GAUGE, "");
    reg_metric(reg, "fmw_z_total", FMW_OBS_COUNTER, "kind");
    char *text = render(reg);
    cr_expect_str_eq(text, "# HELP fmw_x_total h\n# TYPE fmw_x_total counter\nfmw_x_total 0\n"
                           "# HELP fmw_y h\n# TYPE fmw_y gauge\nfmw_y 0\n"
                           "# HELP fmw_z_total h\n# TYPE fmw_z_total counter\n");
    free(text);
    fmw_obs_registry_free(reg);
}

Test(obs_metrics, registration_rules)
{
    struct fmw_obs_registry *reg = fmw_obs_registry_new();
    struct fmw_obs_metric *m = NULL;
    static const char *const bad_names[] = {"", "1abc", "a-b", "a b", "é"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        struct fmw_obs_desc d = {.name = bad_names[i], .kind = FMW_OBS_COUNTER};
        cr_expect_eq(fmw_obs_register(reg, &d, &m), FMW_EINVAL, "name '%s'", bad_names[i]);
        cr_expect_null(m);
    }
    static const char *const bad_labels[] = {"a,a", "a,", ",a", "__x", "a:b", "1a", "a,b,c,d,e"};
    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
        struct fmw_obs_desc d = {
            .name = "fmw_ok", .labels = bad_labels[i], .kind = FMW_OBS_COUNTER};
        cr_expect_eq(fmw_obs_register(reg, &d, &m), FMW_EINVAL, "labels '%s'", bad_labels[i]);
    }
    struct fmw_obs_desc le = {.name = "fmw_h", .labels = "le", .kind = FMW_OBS_HISTOGRAM};
    cr_expect_eq(fmw_obs_register(reg, &le, &m), FMW_EINVAL, "le is reserved for histograms");
    static const double unsorted[] = {1, 0.5};
    struct fmw_obs_desc hb = {
        .name = "fmw_h", .kind = FMW_OBS_HISTOGRAM, .buckets = unsorted, .n_buckets = 2};
    cr_expect_eq(fmw_obs_register(reg, &hb, &m), FMW_EINVAL, "buckets must ascend");

    /* The same shape twice is the same metric; another shape under the name is refused. */
    struct fmw_obs_metric *a = reg_metric(reg, "fmw_shared_total", FMW_OBS_COUNTER, "x");
    struct fmw_obs_metric *b = reg_metric(reg, "fmw_shared_total", FMW_OBS_COUNTER, "x");
    cr_expect_eq(a, b);
    struct fmw_obs_desc other = {
        .name = "fmw_shared_total", .labels = "y", .kind = FMW_OBS_COUNTER};
    cr_expect_eq(fmw_obs_register(reg, &other, &m), FMW_EINVAL);
    other.labels = "x";
    other.kind = FMW_OBS_GAUGE;
    cr_expect_eq(fmw_obs_register(reg, &other, &m), FMW_EINVAL);
    fmw_obs_registry_free(reg);
}

Test(obs_metrics, null_and_wrong_kind_are_noops)
{
    fmw_obs_inc(NULL);
    fmw_obs_add(NULL, 3);
    fmw_obs_gauge_set(NULL, 1);
    fmw_obs_gauge_add(NULL, 1);
    fmw_obs_observe(NULL, 1);
    cr_expect_eq(fmw_obs_value(NULL), 0);
    cr_expect_null(fmw_obs_series0(NULL));

    struct fmw_obs_registry *reg = fmw_obs_registry_new();
    struct fmw_obs_series *c =
        fmw_obs_series0(reg_metric(reg, "fmw_c_total", FMW_OBS_COUNTER, NULL));
    fmw_obs_gauge_set(c, 9);
    fmw_obs_observe(c, 9);
    cr_expect_eq(fmw_obs_value(c), 0);
    /* A labelled metric needs its values, as many as it has labels. */
    struct fmw_obs_metric *l = reg_metric(reg, "fmw_l_total", FMW_OBS_COUNTER, "a");
    const char *two[2] = {"x", "y"};
    cr_expect_null(fmw_obs_series(l, 1, NULL));
    cr_expect_null(fmw_obs_series(l, 0, NULL));
    cr_expect_null(fmw_obs_series(l, 2, two));
    cr_expect_null(fmw_obs_series2(l, "x", "y"));
    cr_expect_not_null(fmw_obs_series(l, 1, two));
    fmw_obs_registry_free(reg);
}

Test(obs_metrics, series_cap)
{
    struct fmw_obs_registry *reg = fmw_obs_registry_new();
    struct fmw_obs_metric *m = reg_metric(reg, "fmw_capped_total", FMW_OBS_COUNTER, "id");
    char id[32];
    for (int i = 0; i < FMW_OBS_MAX_SERIES; i++) {
        snprintf(id, sizeof(id), "%d", i);
        cr_assert_not_null(fmw_obs_series1(m, id));
    }
    cr_expect_null(fmw_obs_series1(m, "one-too-many"));
    cr_expect_not_null(fmw_obs_series1(m, "7"), "existing series still found");
    fmw_obs_registry_free(reg);
}

Test(obs_metrics, render_respects_buffer_cap)
{
    struct fmw_obs_registry *reg = fmw_obs_registry_new();
    reg_metric(reg, "fmw_some_long_metric_name_total", FMW_OBS_COUNTER, NULL);
    struct fmw_buf b;
    fmw_buf_init(&b, 16);
    cr_expect_eq(fmw_obs_render(reg, &b), FMW_ETOOBIG);
    fmw_buf_free(&b);
    fmw_obs_registry_free(reg);
}

Test(obs_metrics, double_formatting)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {{0.0001, "0.0001"}, {0.00025, "0.00025"},
                 {10, "10"},         {2.5, "2.5"},
                 {0, "0"},           {-3, "-3"},
                 {1e-9, "1e-09"},    {0.1 + 0.2, "0.30000000000000004"},
                 {1e300, "1e+300"}};
    char out[FMW_OBS_DOUBLE_MAX];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fmw_obs_fmt_double(out, cases[i].v);
        cr_expect_str_eq(out, cases[i].text);
    }
}

Test(obs_metrics, shared_latency_buckets)
{
    cr_assert_gt(fmw_obs_n_latency_buckets, 4);
    cr_expect_lt(fmw_obs_latency_buckets[0], 0.001, "sub-millisecond resolution");
    for (size_t i = 1; i < fmw_obs_n_latency_buckets; i++)
        cr_expect_gt(fmw_obs_latency_buckets[i], fmw_obs_latency_buckets[i - 1]);
    cr_expect_geq(fmw_obs_latency_buckets[fmw_obs_n_latency_buckets - 1], 10.0);
}

struct hammer_arg {
    struct fmw_obs_metric *counter;
    struct fmw_obs_metric *hist;
    int index;
};

#define HAMMER_THREADS 4
#define HAMMER_ITERS   100000

static void *hammer(void *p)
{
    struct hammer_arg *a = p;
    struct fmw_obs_series *shared = fmw_obs_series1(a->counter, "shared");
    struct fmw_obs_series *h = fmw_obs_series0(a->hist);
    char label[16];
    for (int i = 0; i < HAMMER_ITERS; i++) {
        fmw_obs_inc(shared);
        fmw_obs_observe(h, (uint64_t)(i % 3));
        /* Lookups that create series race with lookups that find them. */
        if (i % 1000 == 0) {
            snprintf(label, sizeof(label), "s%d", (i / 1000) % 50);
            fmw_obs_inc(fmw_obs_series1(a->counter, label));
        }
    }
    return NULL;
}

Test(obs_metrics, concurrent_updates_and_lookups)
{
    struct fmw_obs_registry *reg = fmw_obs_registry_new();
    static const double bounds[] = {0, 1};
    struct fmw_obs_desc dh = {
        .name = "fmw_hist", .kind = FMW_OBS_HISTOGRAM, .buckets = bounds, .n_buckets = 2};
    struct fmw_obs_metric *h = NULL;
    cr_assert_eq(fmw_obs_register(reg, &dh, &h), FMW_OK);
    struct hammer_arg args[HAMMER_THREADS];
    pthread_t threads[HAMMER_THREADS];
    for (int i = 0; i < HAMMER_THREADS; i++) {
        args[i] =
            (struct hammer_arg){reg_metric(reg, "fmw_hammer_total", FMW_OBS_COUNTER, "s"), h, i};
        pthread_create(&threads[i], NULL, hammer, &args[i]);
    }
    /* Rendering meanwhile must be safe too. */
    for (int i = 0; i < 20; i++)
        free(render(reg));
    for (int i = 0; i < HAMMER_THREADS; i++)
        pthread_join(threads[i], NULL);
    struct fmw_obs_metric *c = args[0].counter;
    cr_expect_eq(fmw_obs_value(fmw_obs_series1(c, "shared")), HAMMER_THREADS * HAMMER_ITERS);
    int64_t spread = 0;
    char label[16];
    for (int k = 0; k < 50; k++) {
        snprintf(label, sizeof(label), "s%d", k);
        spread += fmw_obs_value(fmw_obs_series1(c, label));
    }
    cr_expect_eq(spread, HAMMER_THREADS * (HAMMER_ITERS / 1000));
    cr_expect_eq(fmw_obs_value(fmw_obs_series0(h)), HAMMER_THREADS * HAMMER_ITERS);
    fmw_obs_registry_free(reg);
}
