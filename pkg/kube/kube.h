/*
 * pkg/kube: what the webhook needs of Kubernetes — manifests read from YAML, ConfigMaps from
 * manifest files (the CLI) or from the API server through a cache (the server), and the API
 * client behind that (in-cluster service account or kubeconfig; libcurl with OpenSSL).
 */
#ifndef FMW_KUBE_H
#define FMW_KUBE_H

#include "pkg/base/base.h"
#include "pkg/obs/obs.h"
#include "pkg/podspec/podspec.h"

#include <jansson.h>

/*
 * Loads every document of a YAML (or JSON) text into `*docs`, a new JSON array. Scalars are typed
 * as Kubernetes' YAML reader types them (quoted → string; plain true/false, numbers, null).
 * FMW_EINVAL with line and column in `d` for text that is not YAML; FMW_ETOOBIG past the caps.
 */
FMW_NODISCARD enum fmw_err fmw_kube_yaml_load(const char *text, size_t len, json_t **docs,
                                              struct fmw_diag *d);

/* ConfigMaps held in memory, e.g. from --configmap files of `flink-memory review`. */
struct fmw_cm_static;

struct fmw_cm_static *fmw_cm_static_new(void);
void fmw_cm_static_free(struct fmw_cm_static *s);
/*
 * Adds the ConfigMaps among `docs` (an array of objects; a kind "List" is looked into). Objects
 * of other kinds are ignored. A ConfigMap without a namespace matches every namespace.
 * FMW_EINVAL when a ConfigMap has no name or non-string data.
 */
FMW_NODISCARD enum fmw_err fmw_cm_static_add(struct fmw_cm_static *s, json_t *docs,
                                             struct fmw_diag *d);
/* A source that reads from `s` (which must outlive it). */
void fmw_cm_static_source(struct fmw_cm_static *s, struct fmw_cm_source *out);

/* ---- the API server ---- */

struct fmw_kube_client;

/*
 * A client for the API server: from the kubeconfig file at `kubeconfig` (its current context:
 * server, CA file or data, client certificate and key, token or tokenFile), or, when NULL, the
 * pod's service account (KUBERNETES_SERVICE_HOST/PORT, the mounted token — re-read when kubelet
 * rotates it — and CA). FMW_EUSAGE when neither is available.
 */
FMW_NODISCARD enum fmw_err fmw_kube_client_new(const char *kubeconfig, struct fmw_kube_client **out,
                                               struct fmw_diag *d);
void fmw_kube_client_free(struct fmw_kube_client *c);
/* The server URL, for logs. */
const char *fmw_kube_client_server(const struct fmw_kube_client *c);
/* The HTTP version of the API server's last answer ("HTTP/2", "HTTP/1.1"; "" before any). */
const char *fmw_kube_client_protocol(const struct fmw_kube_client *c);

/*
 * GET `path` ("/api/v1/…") within `timeout_ms`: the HTTP status in *status and the body appended
 * to `body` (whose cap bounds it). FMW_ETIMEDOUT past the deadline, FMW_EIO when the request
 * failed (connection, TLS), FMW_ETOOBIG past the body cap. Thread-safe.
 */
FMW_NODISCARD enum fmw_err fmw_kube_get(struct fmw_kube_client *c, const char *path,
                                        long timeout_ms, long *status, struct fmw_buf *body,
                                        struct fmw_diag *d);

/* ---- the ConfigMap cache ---- */

struct fmw_cm_cache_config {
    /* A lookup may be answered by a read sent this long before it began; 0 (the default): only
     * by a read sent after it began, so nothing older than what the API server held then. */
    unsigned ttl_ms;
    unsigned negative_ttl_ms;   /* the same for "does not exist"; 0 */
    unsigned lookup_timeout_ms; /* one lookup at most, waiting included; 2000 */
    size_t max_entries;         /* answers kept (within their TTL, or while lookups wait); 1024 */
    size_t max_bytes;           /* ConfigMap data kept, by what its tree costs; 16 MiB */
    size_t max_object;          /* one ConfigMap's JSON, and the most its tree may cost; 4 MiB */
};

void fmw_cm_cache_config_defaults(struct fmw_cm_cache_config *cfg);

struct fmw_cm_cache;

/*
 * ConfigMap reads in front of `client` (borrowed; must outlive the cache). Lookups of one key
 * that arrive while a read is in flight wait for it and share the next one: one API call at a
 * time per key. Memory is bounded (LRU). Metrics go to `metrics` (may be NULL).
 */
FMW_NODISCARD enum fmw_err fmw_cm_cache_new(struct fmw_kube_client *client,
                                            const struct fmw_cm_cache_config *cfg,
                                            struct fmw_obs_registry *metrics,
                                            struct fmw_cm_cache **out);
void fmw_cm_cache_free(struct fmw_cm_cache *c);

/*
 * The data of ConfigMap ns/name, a NEW reference in *data, answering by CLOCK_MONOTONIC
 * `deadline_ns` at the latest (0: the lookup timeout alone), from a read sent after the lookup
 * began (or within the TTL before). FMW_ENOTFOUND when it does not exist; FMW_ETIMEDOUT or
 * FMW_EIO (with the reason) when the API could not answer: no older copy stands in. Thread-safe.
 */
FMW_NODISCARD enum fmw_err fmw_cm_cache_get(struct fmw_cm_cache *c, const char *ns,
                                            const char *name, uint64_t deadline_ns, json_t **data,
                                            struct fmw_diag *d);

/*
 * The data of ConfigMap ns/name when the cache can answer at once, without an API call and
 * without waiting for one: a fresh entry (or a fresh "does not exist") of at most `max_bytes`.
 * FMW_EAGAIN otherwise (a miss, an expired entry, a call in flight, a larger ConfigMap). Nothing
 * is counted in the metrics: a caller whose work may still be redone counts with
 * fmw_cm_cache_count() once it is kept. Thread-safe; waits for nothing but the cache's lock,
 * which no one holds across I/O or across freeing ConfigMap data.
 */
FMW_NODISCARD enum fmw_err fmw_cm_cache_peek(struct fmw_cm_cache *c, const char *ns,
                                             const char *name, size_t max_bytes, json_t **data,
                                             struct fmw_diag *d);
/* Adds hits and not-found answers to the lookup metrics. */
void fmw_cm_cache_count(struct fmw_cm_cache *c, unsigned hits, unsigned notfound);

/* Largest ConfigMap a cached-only source hands out (see below). */
#define FMW_CM_CACHED_ONLY_MAX (256u * 1024u)

/*
 * A ConfigMap source for one admission: the cache with that request's deadline. With
 * `cached_only`, lookups only peek (at most FMW_CM_CACHED_ONLY_MAX bytes, so the work stays
 * small too) and one that would have to wait fails with FMW_EAGAIN and sets `would_wait`: the
 * whole admission must then be done again with a source that may wait. Its hits are counted by
 * fmw_cm_cache_source_commit(), once the admission it served is kept.
 */
struct fmw_cm_cache_source {
    struct fmw_cm_cache *cache;
    uint64_t deadline_ns;
    bool cached_only;
    bool would_wait;
    unsigned hits, notfound; /* cached-only answers not yet counted */
};
void fmw_cm_cache_source_commit(struct fmw_cm_cache_source *s);
void fmw_cm_cache_source(struct fmw_cm_cache_source *ctx, struct fmw_cm_source *out);

#endif
