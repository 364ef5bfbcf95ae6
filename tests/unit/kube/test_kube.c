/* pkg/kube: manifests as JSON, ConfigMaps from manifests. */
#include "pkg/kube/kube.h"

#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

Test(kube, yaml_documents_typed_like_kubernetes)
{
    const char *text = "a: 1\nb: 'x'\nc: true\nd: ~\ne: [1.5, no]\n---\n# empty\n---\nf: {g: h}\n";
    json_t *docs;
    struct fmw_diag d = FMW_DIAG_INIT;
    cr_assert_eq(fmw_kube_yaml_load(text, strlen(text), &docs, &d), FMW_OK, "%s", fmw_diag_msg(&d));
    cr_assert_eq(json_array_size(docs), 2);
    char *s = json_dumps(json_array_get(docs, 0), JSON_COMPACT | JSON_SORT_KEYS);
    cr_expect_str_eq(s, "{\"a\":1,\"b\":\"x\",\"c\":true,\"d\":null,\"e\":[1.5,false]}");
    free(s);
    json_decref(docs);
    fmw_diag_cleanup(&d);
}

Test(kube, yaml_errors_have_positions)
{
    const char *text = "a: [1,\nb: 2\n";
    json_t *docs;
    struct fmw_diag d = FMW_DIAG_INIT;
    cr_expect_eq(fmw_kube_yaml_load(text, strlen(text), &docs, &d), FMW_EINVAL);
    cr_expect_gt(d.line, 0);
    fmw_diag_cleanup(&d);
}

Test(kube, static_configmaps_by_namespace)
{
    const char *text = "kind: List\nitems:\n- {kind: ConfigMap, metadata: {name: a, namespace: x}, "
                       "data: {k: '1'}}\n"
                       "---\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: '2'}\n"
                       "---\nkind: Secret\nmetadata: {name: c}\n";
    json_t *docs;
    cr_assert_eq(fmw_kube_yaml_load(text, strlen(text), &docs, NULL), FMW_OK);
    struct fmw_cm_static *s = fmw_cm_static_new();
    cr_assert_eq(fmw_cm_static_add(s, docs, NULL), FMW_OK);
    struct fmw_cm_source src;
    fmw_cm_static_source(s, &src);
    json_t *data;
    cr_expect_eq(src.get(src.ctx, "x", "a", &data, NULL), FMW_OK);
    cr_expect_str_eq(json_string_value(json_object_get(data, "k")), "1");
    json_decref(data);
    cr_expect_eq(src.get(src.ctx, "y", "a", &data, NULL), FMW_ENOTFOUND, "other namespace");
    cr_expect_eq(src.get(src.ctx, "any", "b", &data, NULL), FMW_OK, "no namespace matches all");
    json_decref(data);
    cr_expect_eq(src.get(src.ctx, "x", "c", &data, NULL), FMW_ENOTFOUND,
                 "Secrets are not ConfigMaps");
    fmw_cm_static_free(s);
    json_decref(docs);
}

Test(kube, static_rejects_non_string_data)
{
    const char *text = "kind: ConfigMap\nmetadata: {name: a}\ndata: {k: 1}\n";
    json_t *docs;
    struct fmw_diag d = FMW_DIAG_INIT;
    cr_assert_eq(fmw_kube_yaml_load(text, strlen(text), &docs, NULL), FMW_OK);
    struct fmw_cm_static *s = fmw_cm_static_new();
    cr_expect_eq(fmw_cm_static_add(s, docs, &d), FMW_EINVAL);
    cr_expect(strstr(fmw_diag_msg(&d), "data.k") != NULL);
    fmw_cm_static_free(s);
    json_decref(docs);
    fmw_diag_cleanup(&d);
}

Test(kube, kubeconfig_without_server_is_refused)
{
    char path[] = "/tmp/fmw-kubeconfig-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *text = "apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts: []\n";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct fmw_kube_client *c = NULL;
    struct fmw_diag d = FMW_DIAG_INIT;
    cr_expect_eq(fmw_kube_client_new(path, &c, &d), FMW_EINVAL);
    cr_expect(strstr(fmw_diag_msg(&d), "no server") != NULL, "%s", fmw_diag_msg(&d));
    unlink(path);
    fmw_diag_cleanup(&d);
}

/* A client whose API server refuses at once (nothing listens on port 1). */
static struct fmw_kube_client *refusing_client(void)
{
    char path[] = "/tmp/fmw-kubeconfig-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *text = "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
                       "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                       "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
                       "users: [{name: u, user: {token: t}}]\n";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct fmw_kube_client *c = NULL;
    struct fmw_diag d = FMW_DIAG_INIT;
    cr_assert_eq(fmw_kube_client_new(path, &c, &d), FMW_OK, "%s", fmw_diag_msg(&d));
    unlink(path);
    fmw_diag_cleanup(&d);
    return c;
}

Test(kube, cached_only_source_never_calls_the_api)
{
    struct fmw_kube_client *client = refusing_client();
    struct fmw_cm_cache_config cfg;
    fmw_cm_cache_config_defaults(&cfg);
    struct fmw_cm_cache *cache = NULL;
    cr_assert_eq(fmw_cm_cache_new(client, &cfg, NULL, &cache), FMW_OK);
    json_t *data = NULL;
    struct fmw_diag d = FMW_DIAG_INIT;

    /* Nothing cached: a peek says it would have to wait; a source that may wait reaches the
     * API (which refuses). */
    cr_expect_eq(fmw_cm_cache_peek(cache, "ns", "cm", FMW_CM_CACHED_ONLY_MAX, &data, &d),
                 FMW_EAGAIN);
    struct fmw_cm_cache_source cs = {cache, 0, true, false, 0, 0};
    struct fmw_cm_source src;
    fmw_cm_cache_source(&cs, &src);
    cr_expect_eq(src.get(src.ctx, "ns", "cm", &data, &d), FMW_EAGAIN);
    cr_expect(cs.would_wait);
    cs.cached_only = false;
    cs.would_wait = false;
    cr_expect_eq(src.get(src.ctx, "ns", "cm", &data, &d), FMW_EIO, "%s", fmw_diag_msg(&d));
    cr_expect(!cs.would_wait);
    /* A name that is never valid is refused alike, without waiting for anything. */
    cs.cached_only = true;
    cr_expect_eq(src.get(src.ctx, "ns", "..", &data, &d), FMW_EINVAL);
    cr_expect(!cs.would_wait);
    cr_expect_null(data);

    fmw_diag_cleanup(&d);
    fmw_cm_cache_free(cache);
    fmw_kube_client_free(client);
}
