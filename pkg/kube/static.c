/* ConfigMaps from manifest files: the CLI's stand-in for the API server. */
#include "pkg/kube/kube.h"

#include <stdlib.h>
#include <string.h>

struct fmw_cm_static {
    json_t *configmaps; /* array of ConfigMap objects (owned) */
};

struct fmw_cm_static *fmw_cm_static_new(void)
{
    struct fmw_cm_static *s = calloc(1, sizeof *s);
    if (s)
        s->configmaps = json_array();
    if (s && !s->configmaps) {
        free(s);
        return NULL;
    }
    return s;
}

void fmw_cm_static_free(struct fmw_cm_static *s)
{
    if (!s)
        return;
    json_decref(s->configmaps);
    free(s);
}

static enum fmw_err add_one(struct fmw_cm_static *s, json_t *obj, struct fmw_diag *d, int depth)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    if (!kind)
        return FMW_OK;
    if (strcmp(kind, "List") == 0 || strcmp(kind, "ConfigMapList") == 0) {
        if (depth > 4)
            return FMW_OK;
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(obj, "items"), i, item)
        {
            enum fmw_err err = add_one(s, item, d, depth + 1);
            if (err)
                return err;
        }
        return FMW_OK;
    }
    if (strcmp(kind, "ConfigMap") != 0)
        return FMW_OK;
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_string_value(json_object_get(meta, "name")))
        return fmw_diag_set(d, FMW_EINVAL, "a ConfigMap without metadata.name");
    json_t *data = json_object_get(obj, "data");
    /* A list or a scalar is no ConfigMap data (kubectl refuses it too); the source must hand out
     * objects only. */
    if (data && !json_is_object(data) && !json_is_null(data))
        return fmw_diag_set(d, FMW_EINVAL, "ConfigMap %s: data is not a mapping",
                            json_string_value(json_object_get(meta, "name")));
    const char *key;
    json_t *v;
    json_object_foreach(data, key, v)
    {
        if (!json_is_string(v))
            return fmw_diag_set(d, FMW_EINVAL, "ConfigMap %s: data.%s is not a string",
                                json_string_value(json_object_get(meta, "name")), key);
    }
    return json_array_append(s->configmaps, obj) ? FMW_ENOMEM : FMW_OK;
}

enum fmw_err fmw_cm_static_add(struct fmw_cm_static *s, json_t *docs, struct fmw_diag *d)
{
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        enum fmw_err err = add_one(s, doc, d, 0);
        if (err)
            return err;
    }
    return FMW_OK;
}

static enum fmw_err static_get(void *ctx, const char *ns, const char *name, json_t **data,
                               struct fmw_diag *d)
{
    (void)d;
    struct fmw_cm_static *s = ctx;
    size_t i;
    json_t *cm;
    json_t *found = NULL;
    json_array_foreach(s->configmaps, i, cm)
    {
        json_t *meta = json_object_get(cm, "metadata");
        const char *n = json_string_value(json_object_get(meta, "name"));
        const char *cns = json_string_value(json_object_get(meta, "namespace"));
        if (strcmp(n, name) == 0 && (!cns || !ns || strcmp(cns, ns) == 0))
            found = cm; /* the last definition wins, as with kubectl apply */
    }
    if (!found)
        return FMW_ENOTFOUND;
    json_t *dt = json_object_get(found, "data");
    *data = json_is_object(dt) ? json_incref(dt) : json_object();
    return *data ? FMW_OK : FMW_ENOMEM;
}

void fmw_cm_static_source(struct fmw_cm_static *s, struct fmw_cm_source *out)
{
    out->get = static_get;
    out->ctx = s;
    out->light = false;
    out->too_heavy = NULL;
    out->deadline_ns = 0;
}
