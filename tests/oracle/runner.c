/*
 * The C side of the differential test: replays cases that Flink's own jars resolved (JSON Lines
 * written by the Java harness beside this file) through our resolvers — JobManager cases through
 * pkg/jmmem, TaskManager cases ("role":"taskmanager") through pkg/tmmem — and compares every
 * field; a case of pkg/tmmem's unit-test data also has the data's own expectation checked against
 * the jars. Prints the seed and the first mismatch of each file in full (ORACLE_SHOW=N: the first
 * N); exits 1 on any mismatch.
 *
 * With ORACLE_CLI=PATH (the flink-memory binary) a share of the cases also runs through it
 * (cli.h): every other curated and unit-test-data case (seed 0, even ids), one random case in
 * ORACLE_CLI_SHARE (default 100), and every case whose conf dir holds both files
 * ("second_file"), which only the binary can replay: the library is given one text, and choosing
 * it is the CLI's work. Each run of the binary costs about 8 ms (its start), so the share is
 * what keeps make oracle's time.
 */
#include "pkg/flinkconf/flinkconf.h"
#include "pkg/jmmem/jmmem.h"
#include "pkg/tmmem/tmmem.h"
#include "tests/oracle/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct outcome {
    bool ok;
    struct fmw_jm_result r;
    struct fmw_diag d;
};

/*
 * The configuration of a case as the harness gave it to Flink: its file (none: the empty file
 * the harness writes, config.yaml in 2.x), then its -D properties. `standard_yaml` tells whether
 * that file is config.yaml. FMW_EUSAGE for a case the runner cannot read; a file Flink's loader
 * would reject fails with flinkconf's error.
 */
static enum fmw_err load_conf(json_t *c, struct fmw_conf *conf, struct fmw_flink_version *version,
                              bool *standard_yaml, struct fmw_diag *d)
{
    if (!fmw_flink_version_parse(json_string_value(json_object_get(c, "line")), version))
        return fmw_diag_set(d, FMW_EUSAGE, "runner: bad line");
    json_t *file = json_object_get(c, "file"); /* borrowed */
    const char *name =
        json_is_object(file) ? json_string_value(json_object_get(file, "name")) : NULL;
    *standard_yaml = name ? strcmp(name, "config.yaml") == 0 : version->major >= 2;
    if (json_is_object(file)) {
        json_t *text = json_object_get(file, "text");
        const char *t = json_string_value(text);
        size_t len = json_string_length(text);
        enum fmw_err err = name && strcmp(name, "config.yaml") == 0
                               ? fmw_conf_parse_yaml(conf, t, len, d, NULL)
                               : fmw_conf_parse_legacy(conf, t, len, d);
        if (err)
            return err;
    }
    size_t i;
    json_t *kv;
    json_array_foreach(json_object_get(c, "dynamic"), i, kv)
    {
        /* Set directly: the harness already split "key=value" as commons-cli does. */
        json_t *k = json_array_get(kv, 0), *v = json_array_get(kv, 1);
        enum fmw_err set_err = fmw_conf_set(
            conf, (struct fmw_str){json_string_value(k), json_string_length(k)},
            (struct fmw_str){json_string_value(v), json_string_length(v)}, FMW_CONF_STRING, 0);
        if (set_err != FMW_OK)
            return fmw_diag_set(d, FMW_EUSAGE, "runner: cannot set a dynamic property: %s",
                                fmw_strerror(set_err));
    }
    return FMW_OK;
}

static void run_case(json_t *c, struct outcome *o)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    fmw_jm_result_init(&o->r);
    o->d = (struct fmw_diag)FMW_DIAG_INIT;
    o->ok = false;

    struct fmw_flink_version version;
    bool standard_yaml;
    if (load_conf(c, &conf, &version, &standard_yaml, &o->d) != FMW_OK)
        goto out;
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

struct tm_outcome {
    bool ok;
    /* Where a failure came from: the configuration file (Flink's loader throws a
     * RuntimeException), the runner itself (no Java class), or pkg/tmmem (r.exception). */
    enum { TM_FAILED_CONF, TM_FAILED_RUNNER, TM_FAILED_RESOLVE } failed;
    struct fmw_tm_result r;
    struct fmw_diag d;
};

static void run_tm_case(json_t *c, struct tm_outcome *o)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    fmw_tm_result_init(&o->r);
    o->d = (struct fmw_diag)FMW_DIAG_INIT;
    o->ok = false;
    o->failed = TM_FAILED_RUNNER;

    struct fmw_flink_version version;
    bool standard_yaml;
    enum fmw_err err = load_conf(c, &conf, &version, &standard_yaml, &o->d);
    if (err) {
        o->failed = err == FMW_EUSAGE ? TM_FAILED_RUNNER : TM_FAILED_CONF;
        goto out;
    }
    const char *target = json_string_value(json_object_get(c, "legacy_target"));
    enum fmw_tm_legacy legacy;
    if (!target || strcmp(target, "flink") == 0) {
        legacy = FMW_TM_LEGACY_FLINK;
    } else if (strcmp(target, "process") == 0) {
        legacy = FMW_TM_LEGACY_PROCESS;
    } else if (strcmp(target, "none") == 0) {
        legacy = FMW_TM_LEGACY_NONE;
    } else {
        fmw_diag_set(&o->d, FMW_EUSAGE, "runner: unknown legacy_target %s", target);
        goto out;
    }
    struct fmw_tm_input in = {
        &conf, version, legacy,
        json_string_value(json_object_get(json_object_get(c, "env"), FMW_TM_LEGACY_ENV)),
        standard_yaml};
    o->failed = TM_FAILED_RESOLVE;
    o->ok = fmw_tmmem_resolve(&in, &o->r, &o->d) == FMW_OK;
out:
    fmw_conf_cleanup(&conf);
}

/* The simple name of the Java exception our failure stands for, or "(none)". */
static const char *tm_exception(const struct tm_outcome *o)
{
    if (o->failed == TM_FAILED_CONF)
        return "RuntimeException"; /* GlobalConfiguration: "Error parsing YAML configuration." */
    if (o->failed == TM_FAILED_RESOLVE && o->r.exception)
        return o->r.exception;
    return "(none)";
}

/* Compares one TaskManager case; on a mismatch appends a description to `why`. */
static bool same_tm(json_t *c, const struct tm_outcome *o, struct fmw_buf *why)
{
    json_t *res = json_object_get(c, "result");
    const char *want_error = json_string_value(json_object_get(res, "error"));
    if (want_error) {
        const char *want_class = json_string_value(json_object_get(res, "exception"));
        if (o->ok) {
            (void)fmw_buf_addf(why, "Flink failed with %s \"%s\", we resolved (jvm_args %s)",
                               want_class ? want_class : "?", want_error, o->r.jvm_args);
            return false;
        }
        if (strcmp(want_error, fmw_diag_msg(&o->d)) != 0 ||
            strcmp(want_class ? want_class : "", tm_exception(o)) != 0) {
            (void)fmw_buf_addf(why, "error differs:\n  flink: %s: %s\n  ours:  %s: %s",
                               want_class ? want_class : "?", want_error, tm_exception(o),
                               fmw_diag_msg(&o->d));
            return false;
        }
        return true;
    }
    if (!o->ok) {
        (void)fmw_buf_addf(why, "Flink resolved, we failed (%s): %s", tm_exception(o),
                           fmw_diag_msg(&o->d));
        return false;
    }
    const struct fmw_tm_spec *s = &o->r.spec;
    const struct {
        const char *name;
        uint64_t ours;
    } sizes[] = {{"framework_heap", s->framework_heap},
                 {"framework_off_heap", s->framework_off_heap},
                 {"task_heap", s->task_heap},
                 {"task_off_heap", s->task_off_heap},
                 {"network", s->network},
                 {"managed", s->managed},
                 {"total_flink", s->total_flink},
                 {"metaspace", s->metaspace},
                 {"overhead", s->overhead},
                 {"total_process", s->total_process},
                 {"jvm_heap", s->jvm_heap},
                 {"jvm_direct", s->jvm_direct}};
    bool ok = true;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        json_t *want = json_object_get(res, sizes[i].name);
        if (!json_is_integer(want) || (uint64_t)json_integer_value(want) != sizes[i].ours) {
            (void)fmw_buf_addf(why, "%s: flink %lld, ours %llu\n", sizes[i].name,
                               (long long)json_integer_value(want),
                               (unsigned long long)sizes[i].ours);
            ok = false;
        }
    }
    const char *cpu = json_string_value(json_object_get(res, "cpu_cores"));
    if (!cpu || strcmp(cpu, s->cpu_cores_text) != 0) {
        (void)fmw_buf_addf(why, "cpu_cores: flink %s, ours %s\n", cpu ? cpu : "(null)",
                           s->cpu_cores_text);
        ok = false;
    }
    /* Slots and external resources are in the spec from 1.13; the harness omits them before. */
    json_t *slots = json_object_get(res, "slots");
    if (slots && json_integer_value(slots) != s->slots) {
        (void)fmw_buf_addf(why, "slots: flink %lld, ours %d\n",
                           (long long)json_integer_value(slots), (int)s->slots);
        ok = false;
    }
    json_t *resources = json_object_get(res, "resources");
    if (resources) {
        bool same_resources = json_array_size(resources) == o->r.n_resources;
        for (size_t i = 0; same_resources && i < o->r.n_resources; i++) {
            json_t *pair = json_array_get(resources, i);
            const char *name = json_string_value(json_array_get(pair, 0));
            same_resources =
                name && strcmp(name, o->r.resources[i].name) == 0 &&
                json_integer_value(json_array_get(pair, 1)) == o->r.resources[i].amount;
        }
        if (!same_resources) {
            char *want = json_dumps(resources, JSON_COMPACT);
            (void)fmw_buf_addf(why, "resources: flink %s, ours", want ? want : "?");
            for (size_t i = 0; i < o->r.n_resources; i++)
                (void)fmw_buf_addf(why, " %s=%lld", o->r.resources[i].name,
                                   (long long)o->r.resources[i].amount);
            (void)fmw_buf_addf(why, "\n");
            free(want);
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
    const char *ours_dyn = fmw_buf_cstr(&o->r.dynamic_configs);
    if (!dyn || strcmp(dyn, ours_dyn) != 0) {
        (void)fmw_buf_addf(why, "dynamic_configs:\n  flink: %s\n  ours:  %s\n",
                           dyn ? dyn : "(null)", ours_dyn);
        ok = false;
    }
    return ok;
}

/*
 * A case of pkg/tmmem's unit-test data (tests/data/tmmem-*.json) carries what the data expects on
 * its line ("expect"): that must be what Flink's jars gave, field by field, so that a wrong
 * expected value in the data is found here and not only where our model happens to differ.
 */
static bool same_data_expectation(json_t *c, struct fmw_buf *why)
{
    json_t *expect = json_object_get(c, "expect");
    json_t *res = json_object_get(c, "result");
    const char *want_error = json_string_value(json_object_get(expect, "error"));
    const char *flink_error = json_string_value(json_object_get(res, "error"));
    if (want_error || flink_error) {
        const char *want_class = json_string_value(json_object_get(expect, "error_class"));
        const char *flink_class = json_string_value(json_object_get(res, "exception"));
        if (want_error && flink_error && strcmp(want_error, flink_error) == 0 && want_class &&
            flink_class && strcmp(want_class, flink_class) == 0)
            return true;
        (void)fmw_buf_addf(why, "the data expects %s: %s\n  Flink gives %s: %s\n",
                           want_class ? want_class : "(no error)", want_error ? want_error : "",
                           flink_class ? flink_class : "(no error)",
                           flink_error ? flink_error : "");
        return false;
    }
    bool ok = true;
    const char *key;
    json_t *want;
    json_object_foreach(expect, key, want)
    {
        json_t *got = json_object_get(res, key);
        if (strcmp(key, "resources") == 0) {
            /* The data lists {"name","amount"} objects; the harness [name, amount] pairs. */
            bool same_list = json_array_size(want) == json_array_size(got);
            for (size_t i = 0; same_list && i < json_array_size(want); i++) {
                json_t *w = json_array_get(want, i), *g = json_array_get(got, i);
                same_list = json_equal(json_object_get(w, "name"), json_array_get(g, 0)) &&
                            json_equal(json_object_get(w, "amount"), json_array_get(g, 1));
            }
            if (same_list)
                continue;
        } else if (got && json_equal(want, got)) {
            continue;
        }
        oracle_json_differs(why, "", key, "the data expects", want, "Flink gives", got);
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

/* Cases and mismatches per kind of case: JobManager, TaskManager, Kubernetes sizing. */
static struct role_count {
    const char *name;
    size_t cases;
    size_t mismatches;
} counts[] = {{"jobmanager", 0, 0},
              {"taskmanager", 0, 0},
              {"kubernetes-memory", 0, 0},
              {"taskmanager unit-test data vs Flink", 0, 0},
              {"through flink-memory resolve", 0, 0}};

/* The binary's replay (ORACLE_CLI; cli.path is NULL without it), and the share of the random
 * cases it takes. */
static struct oracle_cli cli;
static json_int_t cli_share = 100;
/* Two-file cases left out for want of ORACLE_CLI: said at the end, never counted as passed. */
static size_t unreplayed;

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
        const char *kind = json_string_value(json_object_get(c, "kind"));
        const char *role = json_string_value(json_object_get(c, "role"));
        bool kube = kind && strcmp(kind, "kubernetes-memory") == 0;
        bool tm = role && strcmp(role, "taskmanager") == 0;
        struct fmw_buf why;
        fmw_buf_init(&why, 1 << 20);
        bool agrees;
        bool two_files = json_object_get(c, "second_file") != NULL;
        json_int_t id = json_integer_value(json_object_get(c, "id"));
        bool via_cli = cli.path && !kube && (id % (seed == 0 ? 2 : cli_share) == 0 || two_files);
        if (kube) {
            agrees = same_kubernetes(c, &why);
        } else if (two_files && !cli.path) {
            unreplayed++; /* only the binary can replay it */
            fmw_buf_free(&why);
            json_decref(c);
            continue;
        } else if (two_files) {
            agrees = true; /* the binary's alone, below */
        } else if (tm) {
            struct tm_outcome o;
            run_tm_case(c, &o);
            agrees = same_tm(c, &o, &why);
            fmw_diag_cleanup(&o.d);
            fmw_tm_result_cleanup(&o.r);
            if (json_object_get(c, "expect")) {
                bool data_agrees = same_data_expectation(c, &why);
                counts[3].cases++;
                if (!data_agrees)
                    counts[3].mismatches++;
                agrees = agrees && data_agrees;
            }
        } else {
            struct outcome o;
            run_case(c, &o);
            agrees = same(c, &o, &why);
            fmw_diag_cleanup(&o.d);
            fmw_jm_result_cleanup(&o.r);
        }
        if (via_cli) {
            bool cli_agrees = oracle_cli_same(&cli, c, &why);
            counts[4].cases++;
            if (!cli_agrees)
                counts[4].mismatches++;
            agrees = agrees && cli_agrees;
        }
        struct role_count *count = &counts[kube ? 2 : tm ? 1 : 0];
        count->cases++;
        if (!agrees) {
            count->mismatches++;
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
    const char *env_cli = getenv("ORACLE_CLI");
    if (env_cli && *env_cli) {
        if (!oracle_cli_init(&cli, env_cli))
            return 2;
        const char *env_share = getenv("ORACLE_CLI_SHARE");
        if (env_share && strtoll(env_share, NULL, 10) > 0)
            cli_share = strtoll(env_share, NULL, 10);
    }
    for (int i = 1; i < argc; i++) {
        if (replay(argv[i], &total, &mismatches) != 0)
            failed_files++;
    }
    if (cli.path) {
        printf("oracle: %s ran %zu cases (one random case in %lld, every other curated one, every "
               "two-file case); %zu skipped (a NUL byte in an argument)\n",
               cli.path, cli.run, (long long)cli_share, cli.skipped);
        oracle_cli_cleanup(&cli);
    } else if (unreplayed) {
        printf("oracle: %zu cases whose conf dir holds both files were not replayed: they need "
               "the binary (ORACLE_CLI=build/bin/flink-memory)\n",
               unreplayed);
    }
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        if (counts[i].cases)
            printf("oracle: %s: %zu cases, %zu mismatches\n", counts[i].name, counts[i].cases,
                   counts[i].mismatches);
    }
    printf("oracle: %zu passed, %zu failed\n", total - mismatches,
           mismatches + (size_t)failed_files);
    return mismatches || failed_files ? 1 : 0;
}
