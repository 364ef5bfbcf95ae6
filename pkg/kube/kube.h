/*
 * pkg/kube: what the webhook needs of Kubernetes — manifests read from YAML, ConfigMaps from
 * manifest files (the CLI) or from the API server through a cache (the server), and the API
 * client behind that (in-cluster service account or kubeconfig, over libcurl).
 */
#ifndef FMW_KUBE_H
#define FMW_KUBE_H

#include "pkg/base/base.h"
#include "pkg/podspec/podspec.h"

#include <jansson.h>

/*
 * Loads every document of a YAML (or JSON) text into `*docs`, a new JSON array. Scalars are typed
 * as Kubernetes' YAML reader types them (quoted → string; plain true/false, numbers, null).
 * FMW_EINVAL with line and column in `d` for text that is not YAML; FMW_ETOOBIG past the caps.
 */
enum fmw_err fmw_kube_yaml_load(const char *text, size_t len, json_t **docs, struct fmw_diag *d);

/* ConfigMaps held in memory, e.g. from --configmap files of `flink-memory review`. */
struct fmw_cm_static;

struct fmw_cm_static *fmw_cm_static_new(void);
void fmw_cm_static_free(struct fmw_cm_static *s);
/*
 * Adds the ConfigMaps among `docs` (an array of objects; a kind "List" is looked into). Objects
 * of other kinds are ignored. A ConfigMap without a namespace matches every namespace.
 * FMW_EINVAL when a ConfigMap has no name or non-string data.
 */
enum fmw_err fmw_cm_static_add(struct fmw_cm_static *s, json_t *docs, struct fmw_diag *d);
/* A source that reads from `s` (which must outlive it). */
void fmw_cm_static_source(struct fmw_cm_static *s, struct fmw_cm_source *out);

#endif
