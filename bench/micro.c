/*
 * bench/micro: the admission pipeline in process — fmw_admission_review(), exactly what the
 * server's handler and `flink-memory review` run: decode the review, plan, resolve, encode the
 * answer with its JSON Patch.
 *
 *   micro [--rounds R] [--iterations N] [--configmap FILE] FIXTURE.json...
 *       ns per review: per fixture, a warm-up, then R rounds of N reviews; median, min, max.
 *   micro --callgrind N FIXTURE.json
 *       one warm-up review, then N reviews inside measured_reviews() for
 *       `valgrind --tool=callgrind --toggle-collect=measured_reviews` (instructions / N).
 *   micro --cm-kubeconfig FILE --cm-name NS/NAME [--cm-hold N] [--rounds R] [--iterations N]
 *         FIXTURE.json
 *       the ConfigMap lookup against a real API server, through pkg/kube's cache: a read per
 *       lookup (the default, TTL 0: every lookup is a GET) and a copy held in memory (a TTL of an
 *       hour, as a watch would hold it), alone and inside a whole review. With --cm-hold, the
 *       RSS that holding NS/NAME-0 … NS/NAME-(N-1) costs: what a watch's store would keep.
 *
 * Output: one JSON object on stdout.
 */
#include "pkg/admission/admission.h"
#include "pkg/kube/kube.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FIXTURES 16

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct fmw_buf b;
    fmw_buf_init(&b, 64u << 20);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (fmw_buf_add(&b, chunk, n) != FMW_OK)
            break;
    fclose(f);
    *len = b.len;
    return fmw_buf_take(&b);
}

struct bench {
    struct fmw_admission_config cfg;
    struct fmw_cm_source src;
    struct fmw_buf out;
    const char *body;
    size_t len;
    unsigned failures;
};

static void one_review(struct bench *b)
{
    struct fmw_decision dec;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_buf_reset(&b->out);
    if (fmw_admission_review(&b->cfg, &b->src, b->body, b->len, &b->out, &dec, &d) != FMW_OK)
        b->failures++;
    fmw_diag_cleanup(&d);
}

/* The loop callgrind counts (its name is the --toggle-collect pattern). */
__attribute__((noinline)) void measured_reviews(struct bench *b, unsigned n);
__attribute__((noinline)) void measured_reviews(struct bench *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        one_review(b);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* R rounds of N calls of fn(arg): per-call ns, sorted into `per_op`. */
static void rounds(void (*fn)(void *), void *arg, unsigned r, unsigned n, double *per_op)
{
    for (unsigned i = 0; i < n / 4 + 1; i++) /* warm-up */
        fn(arg);
    for (unsigned k = 0; k < r; k++) {
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < n; i++)
            fn(arg);
        per_op[k] = (double)(now_ns() - t0) / n;
    }
    qsort(per_op, r, sizeof *per_op, cmp_double);
}

static void review_fn(void *arg)
{
    one_review(arg);
}

static void print_stats(const char *name, const double *per_op, unsigned r)
{
    printf("\"%s\":{\"ns_per_op\":%.0f,\"min\":%.0f,\"max\":%.0f}", name, per_op[r / 2], per_op[0],
           per_op[r - 1]);
}

/* ---- the ConfigMap lookup against an API server ---- */

struct cm_get {
    struct fmw_cm_cache *cache;
    const char *ns, *name;
    unsigned failures;
};

static void cm_get_fn(void *arg)
{
    struct cm_get *g = arg;
    json_t *data = NULL;
    struct fmw_diag d = FMW_DIAG_INIT;
    if (fmw_cm_cache_get(g->cache, g->ns, g->name, 0, &data, &d) != FMW_OK)
        g->failures++;
    json_decref(data);
    fmw_diag_cleanup(&d);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* RSS of `count` ConfigMaps ns/prefix-i held in a cache that keeps them all. */
static int cm_hold(struct fmw_kube_client *client, const char *ns, const char *prefix,
                   unsigned count)
{
    struct fmw_cm_cache_config cc;
    fmw_cm_cache_config_defaults(&cc);
    cc.ttl_ms = cc.negative_ttl_ms = 3600000;
    cc.max_entries = count + 1;
    cc.max_bytes = (size_t)1 << 40;
    struct fmw_cm_cache *cache = NULL;
    if (fmw_cm_cache_new(client, &cc, NULL, &cache) != FMW_OK)
        return 1;
    unsigned failures = 0;
    long before = rss_kib();
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < count; i++) {
        char name[300];
        snprintf(name, sizeof name, "%s-%u", prefix, i);
        json_t *data = NULL;
        struct fmw_diag d = FMW_DIAG_INIT;
        if (fmw_cm_cache_get(cache, ns, name, 0, &data, &d) != FMW_OK) {
            if (!failures)
                fprintf(stderr, "micro: %s/%s: %s\n", ns, name, fmw_diag_msg(&d));
            failures++;
        }
        json_decref(data);
        fmw_diag_cleanup(&d);
    }
    double took_ms = (double)(now_ns() - t0) / 1e6;
    long after = rss_kib();
    printf(",\"hold\":{\"configmaps\":%u,\"rss_kib_before\":%ld,\"rss_kib_after\":%ld,"
           "\"load_ms\":%.1f}",
           count, before, after, took_ms);
    fmw_cm_cache_free(cache);
    if (failures)
        fprintf(stderr, "micro: %u of %u held lookups failed\n", failures, count);
    return failures ? 1 : 0;
}

static int cm_bench(struct bench *b, const char *kubeconfig, const char *ns_name, unsigned r,
                    unsigned n, unsigned hold)
{
    char ns[128];
    const char *slash = strchr(ns_name, '/');
    if (!slash || (size_t)(slash - ns_name) >= sizeof ns) {
        fprintf(stderr, "micro: --cm-name takes NAMESPACE/NAME\n");
        return 2;
    }
    memcpy(ns, ns_name, (size_t)(slash - ns_name));
    ns[slash - ns_name] = '\0';
    struct fmw_kube_client *client = NULL;
    struct fmw_diag d = FMW_DIAG_INIT;
    if (fmw_kube_client_new(kubeconfig, &client, &d) != FMW_OK) {
        fprintf(stderr, "micro: %s\n", fmw_diag_msg(&d));
        fmw_diag_cleanup(&d);
        return 1;
    }
    double *per_op = calloc(r, sizeof *per_op);
    printf("{");
    const char *sep = "";
    int rc = 0;
    for (int miss = 0; miss <= 1; miss++) {
        struct fmw_cm_cache_config cc;
        fmw_cm_cache_config_defaults(&cc); /* TTL 0: every lookup asks the API server */
        if (!miss)
            cc.ttl_ms = 3600000; /* a copy held, as a watch would hold it */
        struct fmw_cm_cache *cache = NULL;
        if (fmw_cm_cache_new(client, &cc, NULL, &cache) != FMW_OK) {
            rc = 1;
            break;
        }
        struct cm_get g = {cache, ns, slash + 1, 0};
        unsigned iters = miss ? n / 10 + 1 : n; /* a miss is a network round trip */
        rounds(cm_get_fn, &g, r, iters, per_op);
        printf("%s", sep);
        print_stats(miss ? "lookup_miss" : "lookup_hit", per_op, r);
        struct fmw_cm_cache_source cs = {cache, 0, false, false, 0, 0};
        fmw_cm_cache_source(&cs, &b->src);
        b->failures = 0;
        rounds(review_fn, b, r, iters, per_op);
        printf(",");
        print_stats(miss ? "review_miss" : "review_hit", per_op, r);
        sep = ",";
        /* The review must have read the ConfigMap: only then does it patch. */
        if (!strstr(fmw_buf_cstr(&b->out), "\"patch\":"))
            b->failures++;
        if (g.failures || b->failures) {
            fprintf(stderr, "micro: %u lookups and %u reviews failed\n", g.failures, b->failures);
            rc = 1;
        }
        fmw_cm_cache_free(cache);
    }
    if (hold && !rc)
        rc = cm_hold(client, ns, slash + 1, hold);
    printf("}\n");
    free(per_op);
    fmw_kube_client_free(client);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned r = 15, n = 2000, callgrind = 0, hold = 0;
    const char *configmap = NULL, *kubeconfig = NULL, *cm_name = NULL;
    const char *files[MAX_FIXTURES];
    unsigned n_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--rounds") == 0 && v)
            r = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--iterations") == 0 && v)
            n = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--callgrind") == 0 && v)
            callgrind = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--configmap") == 0 && v)
            configmap = argv[++i];
        else if (strcmp(argv[i], "--cm-kubeconfig") == 0 && v)
            kubeconfig = argv[++i];
        else if (strcmp(argv[i], "--cm-name") == 0 && v)
            cm_name = argv[++i];
        else if (strcmp(argv[i], "--cm-hold") == 0 && v)
            hold = (unsigned)atoi(argv[++i]);
        else if (argv[i][0] != '-' && n_files < MAX_FIXTURES)
            files[n_files++] = argv[i];
        else {
            fprintf(stderr, "usage: see bench/micro.c\n");
            return 2;
        }
    }
    if (!n_files || r == 0 || r > 1000 || n == 0 || n > 10000000 || callgrind > 100000) {
        fprintf(stderr, "micro: give fixtures, and rounds/iterations in range\n");
        return 2;
    }
    struct bench b;
    memset(&b, 0, sizeof b);
    fmw_admission_config_defaults(&b.cfg);
    fmw_buf_init(&b.out, 64u << 20);
    struct fmw_cm_static *cms = fmw_cm_static_new();
    if (configmap) {
        size_t len;
        char *text = read_file(configmap, &len);
        json_t *docs = NULL;
        struct fmw_diag d = FMW_DIAG_INIT;
        if (!text || fmw_kube_yaml_load(text, len, &docs, &d) != FMW_OK ||
            fmw_cm_static_add(cms, docs, &d) != FMW_OK) {
            fprintf(stderr, "micro: %s: %s\n", configmap, fmw_diag_msg(&d));
            return 1;
        }
        json_decref(docs);
        free(text);
        fmw_diag_cleanup(&d);
    }
    fmw_cm_static_source(cms, &b.src);

    int rc = 0;
    double *per_op = calloc(r, sizeof *per_op);
    if (!kubeconfig && !callgrind)
        printf("{");
    for (unsigned f = 0; f < n_files; f++) {
        char *body = read_file(files[f], &b.len);
        if (!body) {
            fprintf(stderr, "micro: cannot read %s\n", files[f]);
            return 1;
        }
        b.body = body;
        b.failures = 0;
        if (kubeconfig) {
            rc = cm_bench(&b, kubeconfig, cm_name ? cm_name : "", r, n, hold);
        } else if (callgrind) {
            one_review(&b); /* first-use costs (one-time initialisation) stay outside */
            measured_reviews(&b, callgrind);
            printf("{\"iterations\":%u,\"response_bytes\":%zu}\n", callgrind, b.out.len);
        } else {
            rounds(review_fn, &b, r, n, per_op);
            const char *base = strrchr(files[f], '/');
            base = base ? base + 1 : files[f];
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(strcspn(base, ".")), base);
            printf("%s", f ? "," : "");
            print_stats(name, per_op, r);
            printf("\n");
        }
        if (b.failures) {
            fprintf(stderr, "micro: %s: %u reviews failed\n", files[f], b.failures);
            rc = 1;
        }
        free(body);
        if (kubeconfig || callgrind)
            break;
    }
    if (!kubeconfig && !callgrind)
        printf("}\n");
    free(per_op);
    fmw_buf_free(&b.out);
    fmw_cm_static_free(cms);
    return rc;
}
