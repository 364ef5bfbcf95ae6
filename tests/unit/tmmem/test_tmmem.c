/*
 * The TaskManager memory model against Flink's own unit tests (tests/data/tmmem-flink-cases.json)
 * and the edges beyond them (tests/data/tmmem-edges.json), on every Flink line each applies to.
 */
#include "pkg/memsize/memsize.h"
#include "pkg/tmmem/tmmem.h"
#include "tests/unit/support.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A step that must succeed for the test to mean anything. */
#define OK(x) cr_assert_eq((x), FMW_OK)

/* The lines modelled, oldest first: each case names a range of them. */
static const char *const LINES[] = {"1.11", "1.12", "1.13", "1.14", "1.15", "1.16", "1.17",
                                    "1.18", "1.19", "1.20", "2.0",  "2.1",  "2.2",  "2.3"};
#define N_LINES (sizeof LINES / sizeof LINES[0])

static struct fmw_flink_version line_of(const char *text)
{
    struct fmw_flink_version v;
    cr_assert(fmw_flink_version_parse(text, &v), "line %s", text);
    return v;
}

/* "1.11-2.3" or "1.17": the first and last index into LINES. */
static void range_of(const char *range, size_t *first, size_t *last)
{
    char from[16], to[16];
    const char *dash = strchr(range, '-');
    snprintf(from, sizeof from, "%.*s", dash ? (int)(dash - range) : (int)strlen(range), range);
    snprintf(to, sizeof to, "%s", dash ? dash + 1 : range);
    *first = *last = N_LINES;
    for (size_t i = 0; i < N_LINES; i++) {
        if (strcmp(LINES[i], from) == 0)
            *first = i;
        if (strcmp(LINES[i], to) == 0)
            *last = i;
    }
    cr_assert(*first < N_LINES && *last < N_LINES && *first <= *last, "range %s", range);
}

/* One resolution of a case's configuration on a line. */
struct run {
    struct fmw_conf conf;
    struct fmw_tm_result r;
    struct fmw_diag d;
    enum fmw_err err;
};

static void run_case(json_t *c, const char *line, struct run *run)
{
    fmw_conf_init(&run->conf);
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(c, "config"), key, v)
    {
        OK(fmw_conf_set(&run->conf, fmw_str_c(key), fmw_str_c(json_string_value(v)),
                        FMW_CONF_STRING, 0));
    }
    const char *legacy = json_string_value(json_object_get(c, "legacy"));
    struct fmw_tm_input in = {
        &run->conf, line_of(line),
        !legacy                          ? FMW_TM_LEGACY_NONE
        : strcmp(legacy, "flink") == 0   ? FMW_TM_LEGACY_FLINK
        : strcmp(legacy, "process") == 0 ? FMW_TM_LEGACY_PROCESS
                                         : FMW_TM_LEGACY_NONE,
        json_string_value(json_object_get(json_object_get(c, "env"), FMW_TM_LEGACY_ENV)),
        json_is_true(json_object_get(c, "standard_yaml"))};
    fmw_tm_result_init(&run->r);
    run->d = (struct fmw_diag)FMW_DIAG_INIT;
    run->err = fmw_tmmem_resolve(&in, &run->r, &run->d);
}

static void run_cleanup(struct run *run)
{
    fmw_diag_cleanup(&run->d);
    fmw_tm_result_cleanup(&run->r);
    fmw_conf_cleanup(&run->conf);
}

static uint64_t field(const struct fmw_tm_spec *s, const char *name)
{
    static const struct {
        const char *name;
        size_t offset;
    } FIELDS[] = {
        {"framework_heap", offsetof(struct fmw_tm_spec, framework_heap)},
        {"framework_off_heap", offsetof(struct fmw_tm_spec, framework_off_heap)},
        {"task_heap", offsetof(struct fmw_tm_spec, task_heap)},
        {"task_off_heap", offsetof(struct fmw_tm_spec, task_off_heap)},
        {"network", offsetof(struct fmw_tm_spec, network)},
        {"managed", offsetof(struct fmw_tm_spec, managed)},
        {"total_flink", offsetof(struct fmw_tm_spec, total_flink)},
        {"metaspace", offsetof(struct fmw_tm_spec, metaspace)},
        {"overhead", offsetof(struct fmw_tm_spec, overhead)},
        {"total_process", offsetof(struct fmw_tm_spec, total_process)},
    };
    for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
        if (strcmp(FIELDS[i].name, name) == 0)
            return *(const uint64_t *)((const char *)s + FIELDS[i].offset);
    }
    cr_assert_fail("unknown field %s", name);
    return 0;
}

static const char *const SIZE_FIELDS[] = {
    "framework_heap", "framework_off_heap", "task_heap", "task_off_heap", "network",
    "managed",        "total_flink",        "metaspace", "overhead",      "total_process"};

static enum fmw_err class_code(const char *cls)
{
    if (strcmp(cls, "IllegalConfigurationException") == 0)
        return FMW_ECONFIG;
    if (strcmp(cls, "IllegalArgumentException") == 0 || strcmp(cls, "NumberFormatException") == 0)
        return FMW_EINVAL;
    cr_assert_str_eq(cls, "ArithmeticException");
    return FMW_EOVERFLOW;
}

/* The Flink test's own assertions on one result. */
static void check_flink_asserts(json_t *c, const struct run *run, const char *where)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(c, "flink_asserts"), i, a)
    {
        const char *op = json_string_value(json_object_get(a, "op"));
        if (strcmp(op, "fails") == 0) {
            cr_expect_eq(run->err, FMW_ECONFIG, "%s: Flink's test expects a failure", where);
            continue;
        }
        cr_assert_eq(run->err, FMW_OK, "%s: %s", where, fmw_diag_msg(&run->d));
        const char *name = json_string_value(json_object_get(a, "field"));
        json_t *value = json_object_get(a, "value");
        if (strcmp(name, "cpu_cores") == 0) {
            cr_expect_str_eq(run->r.spec.cpu_cores_text, json_string_value(value), "%s", where);
            continue;
        }
        uint64_t got = field(&run->r.spec, name);
        if (strcmp(op, "eq") == 0) {
            cr_expect_eq(got, (uint64_t)json_integer_value(value), "%s: %s", where, name);
        } else if (strcmp(op, "ge") == 0) {
            cr_expect_geq(got, (uint64_t)json_integer_value(value), "%s: %s", where, name);
        } else if (strcmp(op, "le") == 0) {
            cr_expect_leq(got, (uint64_t)json_integer_value(value), "%s: %s", where, name);
        } else {
            /* MemorySize.multiply(float) of the total named by the op. */
            bool process = strcmp(op, "eq_fraction_of_total_process") == 0;
            cr_assert(process || strcmp(op, "eq_fraction_of_total_flink") == 0, "op %s", op);
            float f;
            cr_assert(fmw_java_parse_float(fmw_str_c(json_string_value(value)), &f));
            uint64_t want;
            OK(fmw_memsize_mul(process ? run->r.spec.total_process : run->r.spec.total_flink, f,
                               &want));
            cr_expect_eq(got, want, "%s: %s", where, name);
        }
    }
}

/* The dynamic configs of `line`: the entry of the newest line at or before it. */
static const char *dynamic_for(json_t *by_line_dyn, size_t line_index)
{
    const char *best = NULL;
    for (size_t i = 0; i <= line_index; i++) {
        json_t *d = json_object_get(by_line_dyn, LINES[i]);
        if (d)
            best = json_string_value(d);
    }
    return best;
}

static void check_group(json_t *c, json_t *g, size_t line_index, const struct run *run,
                        const char *where)
{
    json_t *expect = json_object_get(g, "expect");
    const char *error = json_string_value(json_object_get(expect, "error"));
    if (error) {
        const char *cls = json_string_value(json_object_get(expect, "error_class"));
        cr_expect_str_eq(fmw_diag_msg(&run->d), error, "%s", where);
        cr_expect_eq(run->err, class_code(cls), "%s", where);
        cr_expect_str_eq(run->r.exception ? run->r.exception : "(none)", cls, "%s", where);
    } else {
        cr_assert_eq(run->err, FMW_OK, "%s: %s", where, fmw_diag_msg(&run->d));
        for (size_t i = 0; i < sizeof SIZE_FIELDS / sizeof SIZE_FIELDS[0]; i++)
            cr_expect_eq(field(&run->r.spec, SIZE_FIELDS[i]),
                         (uint64_t)json_integer_value(json_object_get(expect, SIZE_FIELDS[i])),
                         "%s: %s", where, SIZE_FIELDS[i]);
        cr_expect_str_eq(run->r.spec.cpu_cores_text,
                         json_string_value(json_object_get(expect, "cpu_cores")), "%s", where);
        json_t *resources = json_object_get(expect, "resources");
        cr_expect_eq(run->r.n_resources, json_array_size(resources), "%s: resources", where);
        for (size_t i = 0; i < run->r.n_resources && i < json_array_size(resources); i++) {
            json_t *res = json_array_get(resources, i);
            cr_expect_str_eq(run->r.resources[i].name,
                             json_string_value(json_object_get(res, "name")), "%s", where);
            cr_expect_eq(run->r.resources[i].amount,
                         (int64_t)json_integer_value(json_object_get(res, "amount")), "%s", where);
        }
        cr_expect_str_eq(run->r.jvm_args, json_string_value(json_object_get(g, "jvm_args")), "%s",
                         where);
        const char *dyn = dynamic_for(json_object_get(g, "dynamic_configs"), line_index);
        cr_assert(dyn != NULL, "%s: no dynamic configs for the line", where);
        cr_expect_str_eq(fmw_buf_cstr(&run->r.dynamic_configs), dyn, "%s", where);
        struct fmw_buf want, got;
        fmw_buf_init(&want, 1 << 16);
        fmw_buf_init(&got, 1 << 16);
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(g, "final_block"), i, l)
        {
            OK(fmw_buf_addf(&want, "%s\n", json_string_value(l)));
        }
        OK(fmw_tmmem_format_block(&run->r.spec, &got));
        cr_expect_str_eq(fmw_buf_cstr(&got), fmw_buf_cstr(&want), "%s", where);
        fmw_buf_free(&want);
        fmw_buf_free(&got);
    }
    struct fmw_buf logs;
    fmw_buf_init(&logs, 1 << 16);
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(g, "logs"), i, l)
    {
        OK(fmw_buf_addf(&logs, "%s %s\n", json_string_value(json_object_get(l, "level")),
                        json_string_value(json_object_get(l, "message"))));
    }
    cr_expect_str_eq(fmw_buf_cstr(&run->r.log), fmw_buf_cstr(&logs), "%s: logs", where);
    fmw_buf_free(&logs);
    (void)c;
}

/* Every case of a data file on every line it names; returns the number of resolutions. */
static size_t check_file(const char *name)
{
    json_t *root = fmw_test_load_json(name);
    size_t runs = 0, i;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c)
    {
        const char *src = json_string_value(json_object_get(c, "source"));
        size_t j;
        json_t *g;
        json_array_foreach(json_object_get(c, "by_line"), j, g)
        {
            size_t first, last;
            range_of(json_string_value(json_object_get(g, "lines")), &first, &last);
            for (size_t k = first; k <= last; k++) {
                char where[512];
                snprintf(where, sizeof where, "[%s @%s]", src, LINES[k]);
                struct run run;
                run_case(c, LINES[k], &run);
                check_group(c, g, k, &run, where);
                check_flink_asserts(c, &run, where);
                run_cleanup(&run);
                runs++;
            }
        }
    }
    json_decref(root);
    return runs;
}

Test(tmmem, flink_tests_on_every_line)
{
    size_t runs = check_file("tmmem-flink-cases.json");
    cr_expect_gt(runs, 1500, "resolutions: %zu", runs);
}

Test(tmmem, edges_on_every_line)
{
    size_t runs = check_file("tmmem-edges.json");
    cr_expect_gt(runs, 400, "resolutions: %zu", runs);
}

/* What Flink itself printed for some of the edge cases' configurations. */
Test(tmmem, what_flink_printed)
{
    json_t *root = fmw_test_load_json("tmmem-edges.json");
    size_t checked = 0, i;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c)
    {
        size_t j;
        json_t *o;
        json_array_foreach(json_object_get(c, "observed"), j, o)
        {
            /* 1.10 printed the flags 1.11 computes the same way. */
            const char *line = json_string_value(json_object_get(o, "line"));
            struct run run;
            run_case(c, line ? line : "1.11", &run);
            cr_assert_eq(run.err, FMW_OK, "%s", fmw_diag_msg(&run.d));
            json_t *jvm = json_object_get(o, "jvm_args");
            if (jvm)
                cr_expect_str_eq(run.r.jvm_args, json_string_value(jvm));
            json_t *dyn = json_object_get(o, "dynamic_configs");
            if (dyn)
                cr_expect_str_eq(fmw_buf_cstr(&run.r.dynamic_configs), json_string_value(dyn));
            run_cleanup(&run);
            checked++;
        }
    }
    cr_expect_eq(checked, 4);
    json_decref(root);
}

/* Java's HashMap order, checked on the JobManager's dynamic configs, whose order the oracle has
 * confirmed on every line (keys put heap, off-heap, metaspace, overhead min, overhead max). */
Test(tmmem, java_hashmap_order)
{
    const char *keys[] = {"jobmanager.memory.heap.size", "jobmanager.memory.off-heap.size",
                          "jobmanager.memory.jvm-metaspace.size",
                          "jobmanager.memory.jvm-overhead.min",
                          "jobmanager.memory.jvm-overhead.max"};
    size_t order[5];
    cr_assert(fmw_java_hashmap_order(keys, 5, 0, order));
    const size_t want[] = {1, 3, 2, 0, 4};
    for (size_t i = 0; i < 5; i++)
        cr_expect_eq(order[i], want[i], "position %zu", i);
    /* String.hashCode over UTF-16: "é" is one unit (0xE9), U+1F600 two (a surrogate pair). */
    cr_expect_eq(fmw_java_string_hash("a", 1), 97);
    cr_expect_eq(fmw_java_string_hash("\xc3\xa9", 2), 0xE9);
    cr_expect_eq(fmw_java_string_hash("\xf0\x9f\x98\x80", 4), 0xD83D * 31 + 0xDE00);
    cr_expect_eq(fmw_java_string_hash("\xff", 1), 0xFFFD);
}

/* The line format of the dynamic configs: 1.11 ends every pair with a space. */
Test(tmmem, dynamic_configs_form_by_line)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_TM_PROCESS "=1728m")));
    struct fmw_tm_result r;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_tm_result_init(&r);
    struct fmw_tm_input in = {&conf, FMW_FLINK_LINE(1, 11), FMW_TM_LEGACY_FLINK, NULL, false};
    cr_assert_eq(fmw_tmmem_resolve(&in, &r, &d), FMW_OK, "%s", fmw_diag_msg(&d));
    const char *dyn = fmw_buf_cstr(&r.dynamic_configs);
    cr_expect(dyn[strlen(dyn) - 1] == ' ', "[%s]", dyn);
    in.version = FMW_FLINK_LINE(1, 12);
    cr_assert_eq(fmw_tmmem_resolve(&in, &r, &d), FMW_OK);
    dyn = fmw_buf_cstr(&r.dynamic_configs);
    cr_expect(dyn[strlen(dyn) - 1] != ' ', "[%s]", dyn);
    cr_expect(strstr(dyn, FMW_TM_METASPACE "=268435456b") != NULL, "%s", dyn);
    cr_expect(strstr(dyn, FMW_TM_SLOTS) == NULL, "%s", dyn);
    /* A resolution again into the same result replaces what the last one left. */
    in.version = FMW_FLINK_LINE(1, 13);
    cr_assert_eq(fmw_tmmem_resolve(&in, &r, &d), FMW_OK);
    cr_expect(strstr(fmw_buf_cstr(&r.dynamic_configs), "-D external-resources=none") != NULL);
    cr_expect(strstr(fmw_buf_cstr(&r.dynamic_configs), "-D " FMW_TM_SLOTS "=1") != NULL);
    fmw_diag_cleanup(&d);
    fmw_tm_result_cleanup(&r);
    fmw_conf_cleanup(&conf);
}

/* A YAML list in config.yaml (1.19+) is read as YAML; the same text from flink-conf.yaml in 1.19
 * and 1.20 goes to the legacy splitter, quotes and empty items included. */
Test(tmmem, external_resource_lists)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_TM_PROCESS "=2g")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c("external-resource.gpu.amount=1")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c("external-resource.a;b.amount=2")));
    OK(fmw_conf_set(&conf, FMW_STR_LIT(FMW_TM_EXTERNAL_RESOURCES), FMW_STR_LIT("[gpu, 'a;b']"),
                    FMW_CONF_LIST, 0));
    struct fmw_tm_result r;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_tm_result_init(&r);
    struct fmw_tm_input in = {&conf, FMW_FLINK_LINE(1, 19), FMW_TM_LEGACY_NONE, NULL, true};
    cr_assert_eq(fmw_tmmem_resolve(&in, &r, &d), FMW_OK, "%s", fmw_diag_msg(&d));
    cr_expect_eq(r.n_resources, 2);
    in.standard_yaml = false;
    cr_assert_eq(fmw_tmmem_resolve(&in, &r, &d), FMW_OK, "%s", fmw_diag_msg(&d));
    cr_expect_eq(r.n_resources, 0, "the legacy splitter gives '[gpu, 'a' and 'b']'");
    /* Legacy splitting: quotes keep the delimiter, two delimiters make an empty name. */
    OK(fmw_conf_set(&conf, FMW_STR_LIT(FMW_TM_EXTERNAL_RESOURCES), FMW_STR_LIT("'a;b';;gpu"),
                    FMW_CONF_STRING, 0));
    cr_assert_eq(fmw_tmmem_resolve(&in, &r, &d), FMW_OK, "%s", fmw_diag_msg(&d));
    cr_expect_eq(r.n_resources, 2);
    cr_expect(strstr(fmw_buf_cstr(&r.log),
                     "WARN The amount of the  should be configured. Will ignore that resource.") !=
                  NULL,
              "%s", fmw_buf_cstr(&r.log));
    OK(fmw_conf_set(&conf, FMW_STR_LIT(FMW_TM_EXTERNAL_RESOURCES), FMW_STR_LIT("'gpu'x"),
                    FMW_CONF_STRING, 0));
    cr_expect_eq(fmw_tmmem_resolve(&in, &r, &d), FMW_EINVAL);
    cr_expect_str_eq(fmw_diag_msg(&d),
                     "Could not parse value ''gpu'x' for key 'external-resources'.");
    OK(fmw_conf_set(&conf, FMW_STR_LIT(FMW_TM_EXTERNAL_RESOURCES), FMW_STR_LIT("gpu;\"fpga"),
                    FMW_CONF_STRING, 0));
    cr_expect_eq(fmw_tmmem_resolve(&in, &r, &d), FMW_EINVAL);
    fmw_diag_cleanup(&d);
    fmw_tm_result_cleanup(&r);
    fmw_conf_cleanup(&conf);
}

/* ExternalResource keeps the amount through a double: Double.toString's digits, as a long. */
Test(tmmem, resource_amount_through_a_double)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_TM_PROCESS "=2g")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_TM_EXTERNAL_RESOURCES "=gpu")));
    static const struct {
        const char *amount;
        int64_t held;
    } CASES[] = {
        {"3", 3},
        {"9007199254740993", 9007199254740992},
        {"12345678901234567", 12345678901234568},
        /* 2^63 - 1 is the double 2^63, whose shortest digits 9.223372036854776E18 do not fit a
         * long: BigDecimal.longValue keeps the low 64 bits. */
        {"9223372036854775807", (int64_t)(9223372036854776000ull)},
    };
    struct fmw_tm_result r;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_tm_result_init(&r);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        char prop[64];
        snprintf(prop, sizeof prop, "external-resource.gpu.amount=%s", CASES[i].amount);
        OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(prop)));
        struct fmw_tm_input in = {&conf, FMW_FLINK_LINE(2, 1), FMW_TM_LEGACY_NONE, NULL, false};
        cr_assert_eq(fmw_tmmem_resolve(&in, &r, &d), FMW_OK, "%s", fmw_diag_msg(&d));
        cr_assert_eq(r.n_resources, 1);
        cr_expect_eq(r.resources[0].amount, CASES[i].held, "%s: %" PRId64, CASES[i].amount,
                     r.resources[0].amount);
    }
    fmw_diag_cleanup(&d);
    fmw_tm_result_cleanup(&r);
    fmw_conf_cleanup(&conf);
}

/* Sums past Long.MAX_VALUE are Java's ArithmeticException, not prefixed. */
Test(tmmem, long_overflow)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_TM_TASK_HEAP "=9223372036854775807b")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_TM_MANAGED "=1b")));
    struct fmw_tm_result r;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_tm_result_init(&r);
    struct fmw_tm_input in = {&conf, FMW_FLINK_LINE(1, 18), FMW_TM_LEGACY_FLINK, NULL, false};
    cr_expect_eq(fmw_tmmem_resolve(&in, &r, &d), FMW_EOVERFLOW);
    cr_expect_str_eq(fmw_diag_msg(&d), "long overflow");
    fmw_diag_cleanup(&d);
    fmw_tm_result_cleanup(&r);
    fmw_conf_cleanup(&conf);
}

/* TaskManagerRunner's own check at start, against what Flink's jars said for each configuration
 * (tests/data/tmmem-runner-cases.json). */
Test(tmmem, runner_check_as_flink)
{
    json_t *root = fmw_test_load_json("tmmem-runner-cases.json");
    size_t checked = 0, i;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c)
    {
        struct fmw_conf conf;
        fmw_conf_init(&conf);
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(c, "config"), key, v)
        {
            OK(fmw_conf_set(&conf, fmw_str_c(key), fmw_str_c(json_string_value(v)), FMW_CONF_STRING,
                            0));
        }
        const char *expect = json_string_value(json_object_get(c, "expect"));
        size_t j;
        json_t *line;
        json_array_foreach(json_object_get(c, "lines"), j, line)
        {
            struct fmw_diag d = FMW_DIAG_INIT;
            enum fmw_err err = fmw_tmmem_check_runner(&conf, line_of(json_string_value(line)), &d);
            const char *name = json_string_value(json_object_get(c, "name"));
            if (strcmp(expect, "OK") == 0) {
                cr_expect_eq(err, FMW_OK, "%s on %s: %s", name, json_string_value(line),
                             fmw_diag_msg(&d));
            } else {
                cr_expect_eq(err, FMW_ECONFIG, "%s on %s", name, json_string_value(line));
                cr_expect_str_eq(fmw_diag_msg(&d), expect, "%s on %s", name,
                                 json_string_value(line));
            }
            fmw_diag_cleanup(&d);
            checked++;
        }
        fmw_conf_cleanup(&conf);
    }
    cr_expect_gt(checked, 100, "checked: %zu", checked);
    json_decref(root);
}
