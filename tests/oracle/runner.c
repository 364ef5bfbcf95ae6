/*
 * The C side of the differential test: replays cases that Flink's own jars resolved (JSON Lines
 * written by the Java harness beside this file) through our resolver and compares every field.
 * Prints the seed and the first mismatch of each file in full; exits 1 on any mismatch.
 */
#include "pkg/flinkconf/flinkconf.h"
#include "pkg/jmmem/jmmem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct outcome {
    bool ok;
    struct fmw_jm_result r;
    struct fmw_diag d;
};

static void run_case(json_t *c, struct outcome *o)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    fmw_jm_result_init(&o->r);
    o->d = (struct fmw_diag)FMW_DIAG_INIT;
    o->ok = false;

    struct fmw_flink_version version;
    if (!fmw_flink_version_parse(json_string_value(json_object_get(c, "line")), &version)) {
        fmw_diag_set(&o->d, FMW_EUSAGE, "runner: bad line");
        goto out;
    }
    json_t *file = json_object_get(c, "file"); /* borrowed */
    if (json_is_object(file)) {
        const char *name = json_string_value(json_object_get(file, "name"));
        json_t *text = json_object_get(file, "text");
        const char *t = json_string_value(text);
        size_t len = json_string_length(text);
        enum fmw_err err = name && strcmp(name, "config.yaml") == 0
                               ? fmw_conf_parse_yaml(&conf, t, len, &o->d, NULL)
                               : fmw_conf_parse_legacy(&conf, t, len, &o->d);
        if (err)
            goto out;
    }
    size_t i;
    json_t *kv;
    json_array_foreach(json_object_get(c, "dynamic"), i, kv)
    {
        /* Set directly: the harness already split "key=value" as commons-cli does. */
        json_t *k = json_array_get(kv, 0), *v = json_array_get(kv, 1);
        enum fmw_err set_err = fmw_conf_set(
            &conf, (struct fmw_str){json_string_value(k), json_string_length(k)},
            (struct fmw_str){json_string_value(v), json_string_length(v)}, FMW_CONF_STRING, 0);
        if (set_err != FMW_OK) {
            fmw_diag_set(&o->d, set_err, "runner: cannot set a dynamic property: %s",
                         fmw_strerror(set_err));
            goto out;
        }
    }
    const char *target = json_string_value(json_object_get(c, "legacy_target"));
    struct fmw_jm_input in = {
        &conf, version,
        !target || strcmp(target, "none") == 0 ? FMW_LEGACY_NONE
        : strcmp(target, "heap") == 0          ? FMW_LEGACY_HEAP
                                               : FMW_LEGACY_PROCESS,
        json_string_value(json_object_get(json_object_get(c, "env"), "FLINK_JM_HEAP"))};
    o->ok = fmw_jmmem_resolve(&in, &o->r, &o->d) == FMW_OK;
out:
    fmw_conf_cleanup(&conf);
}

/* Compares one case; on a mismatch appends a description to `why`. */
static bool same(json_t *c, const struct outcome *o, struct fmw_buf *why)
{
    json_t *res = json_object_get(c, "result");
    const char *want_error = json_string_value(json_object_get(res, "error"));
    if (want_error) {
        if (o->ok) {
            (void)fmw_buf_addf(why, "Flink failed with \"%s\", we resolved (jvm_args %s)",
                               want_error, o->r.jvm_args);
            return false;
        }
        if (strcmp(want_error, fmw_diag_msg(&o->d)) != 0) {
            (void)fmw_buf_addf(why, "error text differs:\n  flink: %s\n  ours:  %s", want_error,
                               fmw_diag_msg(&o->d));
            return false;
        }
        return true;
    }
    if (!o->ok) {
        (void)fmw_buf_addf(why, "Flink resolved, we failed: %s", fmw_diag_msg(&o->d));
        return false;
    }
    const struct fmw_jm_spec *s = &o->r.spec;
    const struct {
        const char *name;
        uint64_t ours;
    } sizes[] = {{"total_process", s->total_process},
                 {"total_flink", s->total_flink},
                 {"heap", s->heap},
                 {"off_heap", s->off_heap},
                 {"metaspace", s->metaspace},
                 {"overhead", s->overhead}};
    bool ok = true;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        json_int_t want = json_integer_value(json_object_get(res, sizes[i].name));
        if ((uint64_t)want != sizes[i].ours) {
            (void)fmw_buf_addf(why, "%s: flink %lld, ours %llu\n", sizes[i].name, (long long)want,
                               (unsigned long long)sizes[i].ours);
            ok = false;
        }
    }
    const char *jvm = json_string_value(json_object_get(res, "jvm_args"));
    if (!jvm || strcmp(jvm, o->r.jvm_args) != 0) {
        (void)fmw_buf_addf(why, "jvm_args:\n  flink: %s\n  ours:  %s\n", jvm ? jvm : "(null)",
                           o->r.jvm_args);
        ok = false;
    }
    const char *dyn = json_string_value(json_object_get(res, "dynamic_configs"));
    if (strcmp(dyn ? dyn : "", o->r.dynamic_configs) != 0) {
        (void)fmw_buf_addf(why, "dynamic_configs:\n  flink: %s\n  ours:  %s\n",
                           dyn ? dyn : "(null)", o->r.dynamic_configs);
        ok = false;
    }
    return ok;
}

/* A case of Flink's KubernetesUtils.getResourceRequirements (Kube.java): the request and limit
 * for a process size and a limit factor, against fmw_jm_kubernetes_memory. */
static bool same_kubernetes(json_t *c, struct fmw_buf *why)
{
    uint64_t total = (uint64_t)json_integer_value(json_object_get(c, "total"));
    long long bits = strtoll(json_string_value(json_object_get(c, "factor_bits")), NULL, 10);
    double factor;
    memcpy(&factor, &bits, sizeof factor);
    uint64_t request = 0, limit = 0;
    bool ok = fmw_jm_kubernetes_memory(total, factor, &request, &limit);
    uint64_t want_req = (uint64_t)json_integer_value(json_object_get(c, "request"));
    uint64_t want_lim = (uint64_t)json_integer_value(json_object_get(c, "limit"));
    if (ok && request == want_req && limit == want_lim)
        return true;
    (void)fmw_buf_addf(why, "request: flink %llu, ours %llu; limit: flink %llu, ours %llu%s\n",
                       (unsigned long long)want_req, (unsigned long long)request,
                       (unsigned long long)want_lim, (unsigned long long)limit,
                       ok ? "" : " (ours refused the size)");
    return false;
}

/* How many mismatches per file are printed in full: ORACLE_SHOW (default 1, the first). */
static size_t show = 1;

static int replay(const char *path, size_t *total, size_t *mismatches)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "oracle-runner: cannot open %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, cases = 0, bad = 0;
    ssize_t n;
    json_int_t seed = -1;
    const char *flink = "?";
    json_t *first = NULL;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *c = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &jerr);
        if (!c) {
            fprintf(stderr, "oracle-runner: %s:%zu: %s\n", path, cases + 1, jerr.text);
            bad++;
            continue;
        }
        if (!first) {
            first = json_incref(c);
            seed = json_integer_value(json_object_get(c, "seed"));
            flink = json_string_value(json_object_get(c, "flink"));
        }
        struct outcome o;
        const char *kind = json_string_value(json_object_get(c, "kind"));
        bool kube = kind && strcmp(kind, "kubernetes-memory") == 0;
        if (kube) {
            fmw_jm_result_init(&o.r);
            o.d = (struct fmw_diag)FMW_DIAG_INIT;
        } else {
            run_case(c, &o);
        }
        struct fmw_buf why;
        fmw_buf_init(&why, 1 << 20);
        if (kube ? !same_kubernetes(c, &why) : !same(c, &o, &why)) {
            if (bad < show) {
                char *input = json_dumps(c, JSON_COMPACT);
                printf("MISMATCH in %s (seed %lld, case %lld):\n%s\n%s\n", path, (long long)seed,
                       (long long)json_integer_value(json_object_get(c, "id")), input ? input : "",
                       fmw_buf_cstr(&why));
                free(input);
            }
            bad++;
        }
        fmw_buf_free(&why);
        fmw_diag_cleanup(&o.d);
        fmw_jm_result_cleanup(&o.r);
        json_decref(c);
        cases++;
    }
    printf("oracle %-28s flink %-8s seed %-20lld %6zu cases, %zu mismatches\n", path,
           flink ? flink : "?", (long long)seed, cases, bad);
    json_decref(first);
    free(line);
    fclose(f);
    *total += cases;
    *mismatches += bad;
    return cases == 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: oracle-runner FILE.jsonl...\n");
        return 2;
    }
    size_t total = 0, mismatches = 0;
    int failed_files = 0;
    const char *env_show = getenv("ORACLE_SHOW");
    if (env_show)
        show = (size_t)strtoul(env_show, NULL, 10);
    for (int i = 1; i < argc; i++) {
        if (replay(argv[i], &total, &mismatches) != 0)
            failed_files++;
    }
    printf("oracle: %zu passed, %zu failed\n", total - mismatches,
           mismatches + (size_t)failed_files);
    return mismatches || failed_files ? 1 : 0;
}
