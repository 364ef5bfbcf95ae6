/*
 * ConfigMap reads that are never staler than the lookup: an answer serves a lookup only when the
 * API call that fetched it was sent no earlier than `ttl` before the lookup began. With the
 * default TTL of 0 that is a call sent after the lookup began, so a pod is never sized from data
 * older than what the API server held when its review arrived (docs/ARCHITECTURE.md, "Fresh
 * ConfigMaps"). Concurrent lookups of one key share one call when it was sent late enough for
 * all of them; one that arrives while an older call is in flight waits for it to end and then
 * sends the next, so a burst costs one call at a time per key. Lookups wait on a condition
 * variable, never past their deadline. A failed call is never papered over with an older copy:
 * the caller admits the pod unchanged with a warning. A hash table with an LRU list bounds what
 * a TTL above 0 keeps; with a TTL of 0 nothing outlives the lookups that wait on it.
 */
#include "pkg/kube/kube_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 1024
/* Less time than this left, no API call is sent (it could not be answered). */
#define CALL_MIN_NS 1000000u

/* What a ConfigMap costs as a jansson tree, measured with this Debian's jansson 2.14 and glibc's
 * malloc (70,000 members each): 160 bytes a member of a flat object of strings (a ConfigMap's
 * data) besides its key and value, 304 an empty object (the costliest value). The cache counts
 * entries by this cost, not by their JSON: 1 MiB of JSON of empty keys is 11 MB of tree. */
#define MEMBER_COST    160
#define VALUE_COST_MAX 304

struct entry {
    char *ns, *name;
    json_t *data; /* NULL while unknown or when the ConfigMap does not exist */
    bool exists;
    bool valid; /* data/exists hold a real answer */
    bool fetching;
    int waiters;           /* threads waiting on this entry: it must not be freed under them */
    uint64_t data_sent_ns; /* when the call that brought data/exists was sent */
    size_t bytes;
    enum fmw_err failed; /* the last call's failure (sent at failed_sent_ns), for its waiters */
    uint64_t failed_sent_ns;
    char failure[160];
    struct entry *hnext;
    struct entry *prev, *next; /* LRU: head is the most recently used */
};

struct fmw_cm_cache {
    struct fmw_kube_client *client;
    struct fmw_cm_cache_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct entry *table[BUCKETS];
    struct entry *head, *tail;
    size_t entries, bytes;
    struct fmw_obs_series *hit, *miss, *notfound, *error, *wait;
    struct fmw_obs_series *latency, *size_entries;
};

void fmw_cm_cache_config_defaults(struct fmw_cm_cache_config *cfg)
{
    cfg->ttl_ms = 0;
    cfg->negative_ttl_ms = 0;
    cfg->lookup_timeout_ms = 2000;
    cfg->max_entries = 1024;
    cfg->max_bytes = 16u << 20;
    cfg->max_object = 4u << 20;
}

static void obs_inc(struct fmw_obs_series *s)
{
    if (s)
        fmw_obs_inc(s);
}

enum fmw_err fmw_cm_cache_new(struct fmw_kube_client *client, const struct fmw_cm_cache_config *cfg,
                              struct fmw_obs_registry *metrics, struct fmw_cm_cache **out)
{
    struct fmw_cm_cache *c = calloc(1, sizeof *c);
    if (!c)
        return FMW_ENOMEM;
    c->client = client;
    c->cfg = *cfg;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (metrics) {
        static const double BUCKETS_S[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05,   0.1,   0.25,   0.5,   1,    2.5};
        const struct fmw_obs_desc lookups = {
            "flink_memory_webhook_configmap_lookups_total",
            "ConfigMap lookups by result, one each: miss (answered by an API read of its own), "
            "wait (by a read sent after it began), hit (by a copy within the TTL), notfound, "
            "error",
            "result",
            FMW_OBS_COUNTER,
            NULL,
            0,
            0};
        const struct fmw_obs_desc latency = {"flink_memory_webhook_configmap_api_seconds",
                                             "Latency of ConfigMap reads from the API server",
                                             NULL,
                                             FMW_OBS_HISTOGRAM,
                                             BUCKETS_S,
                                             sizeof BUCKETS_S / sizeof BUCKETS_S[0],
                                             1e9};
        const struct fmw_obs_desc size = {"flink_memory_webhook_configmap_cache_entries",
                                          "ConfigMaps held in the cache",
                                          NULL,
                                          FMW_OBS_GAUGE,
                                          NULL,
                                          0,
                                          0};
        struct fmw_obs_metric *m = NULL, *l = NULL, *s = NULL;
        if (fmw_obs_register(metrics, &lookups, &m) == FMW_OK) {
            c->hit = fmw_obs_series1(m, "hit");
            c->miss = fmw_obs_series1(m, "miss");
            c->notfound = fmw_obs_series1(m, "notfound");
            c->error = fmw_obs_series1(m, "error");
            c->wait = fmw_obs_series1(m, "wait");
        }
        if (fmw_obs_register(metrics, &latency, &l) == FMW_OK)
            c->latency = fmw_obs_series0(l);
        if (fmw_obs_register(metrics, &size, &s) == FMW_OK)
            c->size_entries = fmw_obs_series0(s);
    }
    *out = c;
    return FMW_OK;
}

static void entry_free(struct entry *e)
{
    json_decref(e->data);
    free(e->ns);
    free(e->name);
    free(e);
}

void fmw_cm_cache_free(struct fmw_cm_cache *c)
{
    if (!c)
        return;
    for (struct entry *e = c->head; e;) {
        struct entry *next = e->next;
        entry_free(e);
        e = next;
    }
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static size_t bucket_of(const char *ns, const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = ns; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ '/') * 1099511628211ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (size_t)(h % BUCKETS);
}

static struct entry *find(struct fmw_cm_cache *c, const char *ns, const char *name)
{
    for (struct entry *e = c->table[bucket_of(ns, name)]; e; e = e->hnext) {
        if (strcmp(e->ns, ns) == 0 && strcmp(e->name, name) == 0)
            return e;
    }
    return NULL;
}

static void lru_unlink(struct fmw_cm_cache *c, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(struct fmw_cm_cache *c, struct entry *e)
{
    if (c->head == e)
        return;
    if (e->prev || e->next || c->tail == e)
        lru_unlink(c, e);
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* Unlinks an entry (under the lock) and hands it to `*graveyard`, to be freed once the lock is
 * released: freeing a ConfigMap of megabytes must not hold up the event loop's cache peeks. */
static void unlink_entry(struct fmw_cm_cache *c, struct entry *e, struct entry **graveyard)
{
    struct entry **pp = &c->table[bucket_of(e->ns, e->name)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(c, e);
    c->entries--;
    c->bytes -= e->bytes;
    e->hnext = *graveyard;
    *graveyard = e;
}

static void bury(struct entry *graveyard)
{
    while (graveyard) {
        struct entry *next = graveyard->hnext;
        entry_free(graveyard);
        graveyard = next;
    }
}

static uint64_t ttl_ns(const struct fmw_cm_cache *c, const struct entry *e)
{
    return (uint64_t)(e->exists ? c->cfg.ttl_ms : c->cfg.negative_ttl_ms) * 1000000u;
}

/* The entry's answer may serve a lookup that began at `begun`. */
static bool fresh(const struct fmw_cm_cache *c, const struct entry *e, uint64_t begun)
{
    return e->valid && e->data_sent_ns + ttl_ns(c, e) >= begun;
}

/* No lookup beginning from `now` on can use the entry, and no one holds it. */
static bool spent(const struct fmw_cm_cache *c, const struct entry *e, uint64_t now)
{
    return !e->fetching && e->waiters == 0 && (!e->valid || e->data_sent_ns + ttl_ns(c, e) < now);
}

/* Drops entries no later lookup can use, from the least recently used end, and then least
 * recently used ones (never one being fetched or waited on) until within the caps. */
static void evict(struct fmw_cm_cache *c, struct entry **graveyard)
{
    uint64_t now = fmw_now_ns();
    struct entry *e = c->tail;
    while (e) {
        struct entry *prev = e->prev;
        bool over = c->entries > c->cfg.max_entries || c->bytes > c->cfg.max_bytes;
        if (spent(c, e, now) || (over && !e->fetching && e->waiters == 0))
            unlink_entry(c, e, graveyard);
        else if (!over)
            break;
        e = prev;
    }
    if (c->size_entries)
        fmw_obs_gauge_set(c->size_entries, (int64_t)c->entries);
}

/* Hands out the entry's answer. */
static enum fmw_err answer(const struct entry *e, json_t **data)
{
    if (!e->exists)
        return FMW_ENOTFOUND;
    *data = json_incref(e->data);
    return FMW_OK;
}

static bool is_alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* A DNS-1123 subdomain (what Kubernetes allows for names and namespaces): dot-separated labels
 * of [a-z0-9-] that start and end with [a-z0-9]. This also keeps the API path free of dot
 * segments: HTTP clients and proxies resolve them (libcurl, which this client once was, did), so
 * "." read the namespace's ConfigMap list and ".." the Namespace object. */
static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.' || c == '-') {
            /* A label never starts or ends with '-' or '.', so neither may touch a dot. */
            if (i == 0 || i == n - 1 || (c == '.' && !is_alnum_lower(s[i - 1])) ||
                (c == '.' && !is_alnum_lower(s[i + 1])) ||
                (c == '-' && (s[i - 1] == '.' || s[i + 1] == '.')))
                return false;
        } else if (!is_alnum_lower(c)) {
            return false;
        }
    }
    return true;
}

/* At most what the JSON text costs as a jansson tree, counted before it is built: each object
 * or array at VALUE_COST_MAX, each object member (a ':' outside strings) at MEMBER_COST, each
 * further array element at ELEMENT_COST, and the text itself. A real ConfigMap answer carries
 * every data key again in managedFields ("f:key": {}): about 624 bytes a key all told. */
#define ELEMENT_COST 64
static size_t json_tree_cost_bound(const char *p, size_t n)
{
    size_t opens = 0, colons = 0, commas = 0;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '{' || ch == '[') {
            opens++;
        } else if (ch == ':') {
            colons++;
        } else if (ch == ',') {
            commas++;
        }
    }
    size_t elements = commas > colons ? commas - colons : 0;
    return n + opens * VALUE_COST_MAX + colons * MEMBER_COST + elements * ELEMENT_COST;
}

/* What the cache holds for a ConfigMap's data: its keys and values and MEMBER_COST each. */
static size_t data_cost(json_t *data)
{
    size_t cost = 0;
    const char *key;
    json_t *v;
    json_object_foreach(data, key, v)
    {
        cost += strlen(key) + MEMBER_COST;
        if (json_is_string(v))
            cost += json_string_length(v);
    }
    return cost;
}

/* One API read, outside the lock. */
static enum fmw_err fetch(struct fmw_cm_cache *c, const char *ns, const char *name, long timeout_ms,
                          json_t **data, size_t *bytes, struct fmw_diag *d)
{
    char path[600];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/%s", ns, name);
    struct fmw_buf body;
    fmw_buf_init(&body, c->cfg.max_object);
    long status = 0;
    uint64_t start = fmw_now_ns();
    enum fmw_err err = fmw_kube_get(c->client, path, timeout_ms, &status, &body, d);
    if (c->latency)
        fmw_obs_observe(c->latency, fmw_now_ns() - start);
    *data = NULL;
    *bytes = body.len;
    if (err)
        goto out;
    if (status == 404) {
        err = FMW_ENOTFOUND;
        goto out;
    }
    if (status == 401 || status == 403) {
        err = fmw_diag_set(d, FMW_EIO,
                           "the API server refused the read (HTTP %ld): check the "
                           "webhook's RBAC for ConfigMaps in %s",
                           status, ns);
        goto out;
    }
    if (status != 200) {
        err = fmw_diag_set(d, FMW_EIO, "the API server answered HTTP %ld", status);
        goto out;
    }
    /* Refused before the tree is built when it could pass the per-object cap (a ConfigMap of
     * thousands of keys with their managedFields: about 6,700). */
    size_t cost = json_tree_cost_bound(body.data ? body.data : "", body.len);
    if (cost > c->cfg.max_object) {
        err = fmw_diag_set(d, FMW_ETOOBIG,
                           "about %zu KiB as a tree, more than the %zu KiB the webhook parses of "
                           "one ConfigMap",
                           cost >> 10, c->cfg.max_object >> 10);
        goto out;
    }
    json_error_t jerr;
    json_t *obj = json_loadb(body.data ? body.data : "", body.len, 0, &jerr);
    json_t *dt = json_object_get(obj, "data");
    *data = json_is_object(dt) ? json_incref(dt) : json_object();
    json_decref(obj);
    if (!obj || !*data) {
        json_decref(*data);
        *data = NULL;
        err = fmw_diag_set(d, FMW_EIO, "the API server's answer is not a ConfigMap");
    } else {
        *bytes = data_cost(*data);
    }
out:
    fmw_buf_free(&body);
    return err;
}

enum fmw_err fmw_cm_cache_get(struct fmw_cm_cache *c, const char *ns, const char *name,
                              uint64_t deadline_ns, json_t **data, struct fmw_diag *d)
{
    if (!valid_name(ns) || !valid_name(name))
        return fmw_diag_set(d, FMW_EINVAL, "'%.64s/%.64s' is not a valid ConfigMap name", ns, name);
    uint64_t begun = fmw_now_ns();
    uint64_t limit = begun + (uint64_t)c->cfg.lookup_timeout_ms * 1000000u;
    if (deadline_ns && deadline_ns < limit)
        limit = deadline_ns;
    struct timespec until = {(time_t)(limit / 1000000000u), (long)(limit % 1000000000u)};
    enum fmw_err err;
    struct entry *graveyard = NULL;
    bool waited = false;
    pthread_mutex_lock(&c->mu);
    struct entry *e;
    for (;;) {
        e = find(c, ns, name);
        if (e && fresh(c, e, begun)) {
            lru_front(c, e);
            err = answer(e, data);
            if (spent(c, e, fmw_now_ns()))
                unlink_entry(c, e, &graveyard); /* the last lookup that could use it */
            pthread_mutex_unlock(&c->mu);
            bury(graveyard);
            obs_inc(err == FMW_ENOTFOUND ? c->notfound : waited ? c->wait : c->hit);
            return err;
        }
        if (e && !e->fetching && e->failed && e->failed_sent_ns >= begun &&
            !(e->failed == FMW_ETIMEDOUT && limit > fmw_now_ns() + CALL_MIN_NS)) {
            /* A call sent after this lookup began failed while it waited: say why (a call that
             * ran out of its sender's time is sent again by one that has time left). */
            err = fmw_diag_set(d, e->failed, "%s", e->failure);
            goto fail;
        }
        if (!e || !e->fetching)
            break;
        /* A call is in flight: the answer it brings serves this lookup when it was sent late
         * enough; otherwise its end is when the next call may be sent. Either way, wait. */
        e->waiters++;
        int rc = 0;
        while (e->fetching && rc == 0)
            rc = pthread_cond_timedwait(&c->cond, &c->mu, &until);
        e->waiters--;
        waited = true;
        if (e->fetching) {
            err = fmw_diag_set(d, FMW_ETIMEDOUT, "the API server did not answer in time");
            goto fail;
        }
    }
    if (!e) {
        e = calloc(1, sizeof *e);
        if (e) {
            e->ns = fmw_strdup(ns);
            e->name = fmw_strdup(name);
        }
        if (!e || !e->ns || !e->name) {
            if (e)
                entry_free(e);
            e = NULL;
            err = FMW_ENOMEM;
            goto fail;
        }
        size_t b = bucket_of(ns, name);
        e->hnext = c->table[b];
        c->table[b] = e;
        c->entries++;
    }
    uint64_t sent = fmw_now_ns();
    if (limit < sent + CALL_MIN_NS) {
        /* No time for a call: sending one would only make those who wait on it fail too. */
        err = fmw_diag_set(d, FMW_ETIMEDOUT, "no time left to ask the API server");
        goto fail;
    }
    e->fetching = true;
    lru_front(c, e);
    pthread_mutex_unlock(&c->mu);

    long timeout_ms = (long)((limit > sent ? limit - sent : 0) / 1000000u);
    json_t *fetched = NULL;
    size_t bytes = 0;
    struct fmw_diag why = FMW_DIAG_INIT;
    err = fetch(c, ns, name, timeout_ms, &fetched, &bytes, &why);

    pthread_mutex_lock(&c->mu);
    e->fetching = false;
    json_t *replaced = NULL;
    if (err == FMW_OK || err == FMW_ENOTFOUND) {
        replaced = e->data; /* released after the lock */
        c->bytes -= e->bytes;
        e->data = fetched;
        e->exists = err == FMW_OK;
        e->valid = true;
        e->data_sent_ns = sent;
        e->failed = FMW_OK;
        e->bytes = err == FMW_OK ? bytes : 0;
        c->bytes += e->bytes;
        err = answer(e, data);
        obs_inc(err == FMW_ENOTFOUND ? c->notfound : c->miss);
    } else {
        /* What an earlier call brought is older than this failed one: no longer worth keeping. */
        replaced = e->data;
        c->bytes -= e->bytes;
        e->data = NULL;
        e->bytes = 0;
        e->valid = false;
        obs_inc(c->error);
        fmw_diag_set(d, err, "%s", fmw_diag_msg(&why));
        e->failed = err;
        e->failed_sent_ns = sent;
        snprintf(e->failure, sizeof e->failure, "%s", fmw_diag_msg(&why));
    }
    pthread_cond_broadcast(&c->cond);
    if (e->waiters == 0 && spent(c, e, fmw_now_ns()))
        unlink_entry(c, e, &graveyard); /* no one can use it: not kept */
    evict(c, &graveyard);
    pthread_mutex_unlock(&c->mu);
    json_decref(replaced);
    bury(graveyard);
    fmw_diag_cleanup(&why);
    return err;

fail:
    obs_inc(c->error);
    if (e && spent(c, e, fmw_now_ns()))
        unlink_entry(c, e, &graveyard);
    evict(c, &graveyard);
    pthread_mutex_unlock(&c->mu);
    bury(graveyard);
    return err;
}

enum fmw_err fmw_cm_cache_peek(struct fmw_cm_cache *c, const char *ns, const char *name,
                               size_t max_bytes, json_t **data, struct fmw_diag *d)
{
    if (!valid_name(ns) || !valid_name(name))
        return fmw_diag_set(d, FMW_EINVAL, "'%.64s/%.64s' is not a valid ConfigMap name", ns, name);
    enum fmw_err err = FMW_EAGAIN;
    pthread_mutex_lock(&c->mu);
    struct entry *e = find(c, ns, name);
    if (e && fresh(c, e, fmw_now_ns()) && e->bytes <= max_bytes) {
        lru_front(c, e);
        err = answer(e, data);
    }
    pthread_mutex_unlock(&c->mu);
    if (err == FMW_EAGAIN)
        return fmw_diag_set(d, FMW_EAGAIN, "ConfigMap %s/%s is not in the cache", ns, name);
    return err;
}

void fmw_cm_cache_count(struct fmw_cm_cache *c, unsigned hits, unsigned notfound)
{
    if (c->hit && hits)
        fmw_obs_add(c->hit, hits);
    if (c->notfound && notfound)
        fmw_obs_add(c->notfound, notfound);
}

static enum fmw_err source_get(void *ctx, const char *ns, const char *name, json_t **data,
                               struct fmw_diag *d)
{
    struct fmw_cm_cache_source *s = ctx;
    if (!s->cached_only)
        return fmw_cm_cache_get(s->cache, ns, name, s->deadline_ns, data, d);
    enum fmw_err err = fmw_cm_cache_peek(s->cache, ns, name, FMW_CM_CACHED_ONLY_MAX, data, d);
    if (err == FMW_EAGAIN)
        s->would_wait = true;
    else if (err == FMW_OK)
        s->hits++;
    else if (err == FMW_ENOTFOUND)
        s->notfound++;
    return err;
}

void fmw_cm_cache_source_commit(struct fmw_cm_cache_source *s)
{
    if (s->cached_only && !s->would_wait)
        fmw_cm_cache_count(s->cache, s->hits, s->notfound);
    s->hits = s->notfound = 0;
}

static void source_too_heavy(void *ctx)
{
    struct fmw_cm_cache_source *s = ctx;
    s->would_wait = true;
}

void fmw_cm_cache_source(struct fmw_cm_cache_source *ctx, struct fmw_cm_source *out)
{
    out->get = source_get;
    out->ctx = ctx;
    /* Cached-only is the event loop's mode: work that would take long is moved to a worker the
     * way a lookup that would wait is. */
    out->light = ctx->cached_only;
    out->too_heavy = source_too_heavy;
    out->deadline_ns = ctx->deadline_ns;
}
