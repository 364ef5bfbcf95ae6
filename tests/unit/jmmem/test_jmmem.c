/* The JobManager memory model against the cases taken from Flink's own tests. */
#include "pkg/jmmem/jmmem.h"
#include "pkg/memsize/memsize.h"
#include "tests/unit/support.h"

#include <criterion/criterion.h>

/* A step that must succeed for the test to mean anything. */
#define OK(x) cr_assert_eq((x), FMW_OK)
#include <string.h>

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static enum fmw_legacy_heap legacy_of(json_t *v)
{
    const char *s = json_string_value(v);
    if (!s)
        return FMW_LEGACY_NONE;
    return strcmp(s, "heap") == 0 ? FMW_LEGACY_HEAP : FMW_LEGACY_PROCESS;
}

static void check_case(json_t *c, struct fmw_flink_version version)
{
    const char *src = json_string_value(json_object_get(c, "source"));
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(c, "config"), key, v)
    {
        cr_assert(json_is_string(v), "[%s] config values are strings", src);
        OK(fmw_conf_set(&conf, fmw_str_c(key), fmw_str_c(json_string_value(v)), FMW_CONF_STRING,
                        0));
    }
    struct fmw_jm_input in = {
        &conf, version, legacy_of(json_object_get(c, "legacy_interpretation")),
        json_string_value(json_object_get(json_object_get(c, "env"), FMW_JM_LEGACY_ENV))};
    struct fmw_jm_result r;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_jm_result_init(&r);
    enum fmw_err err = fmw_jmmem_resolve(&in, &r, &d);
    json_t *expect = json_object_get(c, "expect");
    const char *want_error = json_string_value(json_object_get(expect, "error"));
    char ver[16];
    snprintf(ver, sizeof ver, "%d.%d", version.major, version.minor);
    if (want_error) {
        const char *cls = json_string_value(json_object_get(expect, "error_class"));
        cr_expect_neq(err, FMW_OK, "[%s @%s] must fail", src, ver);
        cr_expect_str_eq(fmw_diag_msg(&d), want_error, "[%s @%s]", src, ver);
        if (cls && strcmp(cls, "IllegalConfigurationException") == 0)
            cr_expect_eq(err, FMW_ECONFIG, "[%s @%s]", src, ver);
        else if (cls && strcmp(cls, "IllegalArgumentException") == 0)
            cr_expect_eq(err, FMW_EINVAL, "[%s @%s]", src, ver);
    } else {
        cr_assert_eq(err, FMW_OK, "[%s @%s] %s", src, ver, fmw_diag_msg(&d));
        const struct {
            const char *name;
            uint64_t got;
        } sizes[] = {{"total_process", r.spec.total_process},
                     {"total_flink", r.spec.total_flink},
                     {"heap", r.spec.heap},
                     {"off_heap", r.spec.off_heap},
                     {"metaspace", r.spec.metaspace},
                     {"overhead", r.spec.overhead}};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            json_t *want = json_object_get(expect, sizes[i].name);
            if (want)
                cr_expect_eq(sizes[i].got, (uint64_t)json_integer_value(want), "[%s @%s] %s", src,
                             ver, sizes[i].name);
        }
        json_t *jvm = json_object_get(c, "jvm_args");
        if (jvm)
            cr_expect_str_eq(r.jvm_args, json_string_value(jvm), "[%s @%s]", src, ver);
        json_t *dyn = json_object_get(c, "dynamic_configs");
        if (dyn)
            cr_expect_str_eq(r.dynamic_configs, json_string_value(dyn), "[%s @%s]", src, ver);
        json_t *block = json_object_get(c, "final_master_memory_log");
        if (block) {
            struct fmw_buf want, got;
            fmw_buf_init(&want, 1 << 16);
            fmw_buf_init(&got, 1 << 16);
            size_t i;
            json_t *l;
            json_array_foreach(block, i, l)
            {
                OK(fmw_buf_adds(&want, json_string_value(l)));
                OK(fmw_buf_addc(&want, '\n'));
            }
            OK(fmw_jmmem_format_block(&r.spec, &got));
            cr_expect_str_eq(fmw_buf_cstr(&got), fmw_buf_cstr(&want), "[%s @%s]", src, ver);
            fmw_buf_free(&want);
            fmw_buf_free(&got);
        }
        json_t *mib = json_object_get(c, "k8s_container_memory_mib");
        if (mib)
            cr_expect_eq(r.spec.total_process >> 20, (uint64_t)json_integer_value(mib), "[%s @%s]",
                         src, ver);
    }
    json_t *logs = json_object_get(c, "logs");
    if (logs) {
        struct fmw_buf want;
        fmw_buf_init(&want, 1 << 16);
        size_t i;
        json_t *l;
        json_array_foreach(logs, i, l)
        {
            OK(fmw_buf_addf(&want, "%s %s\n", json_string_value(json_object_get(l, "level")),
                            json_string_value(json_object_get(l, "message"))));
        }
        cr_expect_str_eq(fmw_buf_cstr(&r.log), fmw_buf_cstr(&want), "[%s @%s] logs", src, ver);
        fmw_buf_free(&want);
    }
    fmw_diag_cleanup(&d);
    fmw_jm_result_cleanup(&r);
    fmw_conf_cleanup(&conf);
}

Test(jmmem, flink_vectors_on_every_line_they_cover)
{
    json_t *cases = fmw_test_load_json("flink-cases.json");
    size_t i, checked = 0;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        if (!json_object_get(c, "config"))
            continue;
        const char *versions = json_string_value(json_object_get(c, "versions"));
        bool legacy = json_is_string(json_object_get(c, "legacy_interpretation")) ||
                      json_object_get(c, "env");
        /* Vectors without a version range hold for every line; legacy ones only for 1.x. */
        static const struct fmw_flink_version lines[] = {
            {1, 11, -1}, {1, 16, -1}, {1, 20, -1}, {2, 0, -1}, {2, 2, -1}};
        for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++) {
            if (lines[k].major >= 2 && (legacy || (versions && strstr(versions, "1.20 ("))))
                continue;
            /* The log wording "OVerhead" differs before 1.16; vectors carry the newer text. */
            if (lines[k].minor < 16 && lines[k].major == 1 && json_object_get(c, "logs"))
                continue;
            /* 1.11 has no dynamic-configs line. */
            if (lines[k].minor == 11 && json_object_get(c, "dynamic_configs"))
                continue;
            check_case(c, lines[k]);
            checked++;
        }
    }
    cr_expect_gt(checked, 100, "vector runs: %zu", checked);
    json_decref(cases);
}

Test(jmmem, shipped_default_and_prefix_by_line)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    struct fmw_jm_result r;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_jm_result_init(&r);
    /* No memory option at all: 1.x scripts prefix the message, 2.x does not. */
    struct fmw_jm_input in = {&conf, FMW_FLINK_LINE(1, 18), FMW_LEGACY_HEAP, NULL};
    cr_expect_eq(fmw_jmmem_resolve(&in, &r, &d), FMW_ECONFIG);
    cr_expect(starts_with(fmw_diag_msg(&d), "JobManager memory configuration failed: Either"), "%s",
              fmw_diag_msg(&d));
    in.version = FMW_FLINK_LINE(2, 1);
    cr_expect_eq(fmw_jmmem_resolve(&in, &r, &d), FMW_ECONFIG);
    cr_expect(starts_with(fmw_diag_msg(&d), "Either required"), "%s", fmw_diag_msg(&d));

    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_PROCESS "=1600m")));
    cr_assert_eq(fmw_jmmem_resolve(&in, &r, &d), FMW_OK);
    cr_expect_eq(r.spec.heap, 1073741824);
    cr_expect_str_eq(r.jvm_args, "-Xmx1073741824 -Xms1073741824 -XX:MaxMetaspaceSize=268435456");

    /* The legacy heap key wins over process size only where it is read as heap (1.x scripts). */
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_LEGACY_HEAP "=2g")));
    cr_expect_eq(fmw_jmmem_resolve(&in, &r, &d), FMW_OK, "2.x ignores legacy keys");
    in.version = FMW_FLINK_LINE(1, 20);
    cr_expect_eq(fmw_jmmem_resolve(&in, &r, &d), FMW_ECONFIG);
    cr_expect(strstr(fmw_diag_msg(&d), "The configured Total Process Memory size (1.563gb") != NULL,
              "%s", fmw_diag_msg(&d));
    in.legacy = FMW_LEGACY_PROCESS;
    cr_expect_eq(fmw_jmmem_resolve(&in, &r, &d), FMW_OK, "%s", fmw_diag_msg(&d));
    cr_expect_eq(r.spec.total_process, 1677721600);

    /* 1.11 has no dynamic-configs line; the direct-memory flag comes with the switch. */
    in.version = FMW_FLINK_LINE(1, 11);
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_DIRECT_LIMIT "=TRUE")));
    cr_assert_eq(fmw_jmmem_resolve(&in, &r, &d), FMW_OK);
    cr_expect_str_eq(r.dynamic_configs, "");
    cr_expect(strstr(r.jvm_args, " -XX:MaxDirectMemorySize=134217728 ") != NULL, "%s", r.jvm_args);
    fmw_diag_cleanup(&d);
    fmw_jm_result_cleanup(&r);
    fmw_conf_cleanup(&conf);
}

Test(jmmem, bad_fraction_and_boolean_are_not_prefixed)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_PROCESS "=1g")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_OVERHEAD_FRACTION "=lots")));
    struct fmw_jm_result r;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_jm_result_init(&r);
    struct fmw_jm_input in = {&conf, FMW_FLINK_LINE(1, 17), FMW_LEGACY_HEAP, NULL};
    cr_expect_eq(fmw_jmmem_resolve(&in, &r, &d), FMW_EINVAL);
    cr_expect_str_eq(fmw_diag_msg(&d), "Could not parse value 'lots' for key "
                                       "'jobmanager.memory.jvm-overhead.fraction'.");
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_OVERHEAD_FRACTION "=1")));
    cr_expect_eq(fmw_jmmem_resolve(&in, &r, &d), FMW_ECONFIG);
    cr_expect_str_eq(fmw_diag_msg(&d),
                     "JobManager memory configuration failed: Inconsistently configured Key: "
                     "'jobmanager.memory.jvm-overhead.fraction' , default: 0.1 (fallback keys: []) "
                     "(1.0) and its min (192.000mb (201326592 bytes)), max (1024.000mb "
                     "(1073741824 bytes)) value");
    fmw_diag_cleanup(&d);
    fmw_jm_result_cleanup(&r);
    fmw_conf_cleanup(&conf);
}

Test(jmmem, version_parsing)
{
    struct fmw_flink_version v;
    cr_expect(fmw_flink_version_parse("1.17.2", &v) && v.major == 1 && v.minor == 17);
    cr_expect(fmw_flink_version_parse("2.0-preview1", &v) && v.major == 2 && v.minor == 0);
    cr_expect(fmw_flink_version_parse("1.20", &v));
    cr_expect_not(fmw_flink_version_parse("1.10", &v));
    cr_expect_not(fmw_flink_version_parse("3.0", &v));
    cr_expect_not(fmw_flink_version_parse("latest", &v));
    cr_expect_not(fmw_flink_version_parse("1.x", &v));
}

/* Flink's KubernetesUtils.getResourceRequirements, with Java's int and double arithmetic. */
Test(jmmem, kubernetes_memory_truncates_like_java)
{
    uint64_t req, lim;
    const uint64_t MIB = (uint64_t)1 << 20;
    cr_assert(fmw_jm_kubernetes_memory(1600 * MIB + 12345, 1.5, &req, &lim));
    cr_expect_eq(req, 1600 * MIB, "getMebiBytes floors");
    cr_expect_eq(lim, 2400 * MIB);
    cr_assert(fmw_jm_kubernetes_memory(1601 * MIB, 1.3, &req, &lim));
    cr_expect_eq(lim, 2081 * MIB, "(int) (1601 * 1.3) = (int) 2081.3");
    cr_assert(fmw_jm_kubernetes_memory(1000 * MIB, 1.0 / 3.0 * 3.0, &req, &lim));
    cr_expect_eq(lim, 1000 * MIB);
    cr_assert(fmw_jm_kubernetes_memory(2048 * MIB, 1e300, &req, &lim));
    cr_expect_eq(lim, (uint64_t)INT32_MAX * MIB, "the cast saturates");
    cr_expect_not(fmw_jm_kubernetes_memory((uint64_t)1 << 52, 1.5, &req, &lim),
                  "more MiB than an int holds");
}

/* ProcessMemoryUtils.sanityCheckJvmOverhead's INFO line: before 1.16 Flink misspells the last
 * "Overhead" ("OVerhead"), not the first. The configuration is ProcessMemoryUtilsTestBase's
 * testConfigJvmOverheadDeriveFromProcessAndFlinkMemorySize. */
Test(jmmem, overhead_fraction_mismatch_line_by_line)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_PROCESS "=1000m")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_FLINK "=800m")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_METASPACE "=100m")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_OVERHEAD_MIN "=50m")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_OVERHEAD_MAX "=200m")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c(FMW_JM_OVERHEAD_FRACTION "=0.5")));
    static const char *const want[] = {
        "INFO The derived JVM Overhead size (100.000mb (104857600 bytes)) does not match the "
        "configured or default JVM Overhead fraction (0.5) from the configured Total Process "
        "Memory size (1000.000mb (1048576000 bytes)). The derived JVM OVerhead size will be "
        "used.\n",
        "INFO The derived JVM Overhead size (100.000mb (104857600 bytes)) does not match the "
        "configured or default JVM Overhead fraction (0.5) from the configured Total Process "
        "Memory size (1000.000mb (1048576000 bytes)). The derived JVM Overhead size will be "
        "used.\n"};
    static const struct fmw_flink_version lines[] = {{1, 15, -1}, {1, 16, -1}};
    for (size_t i = 0; i < 2; i++) {
        struct fmw_jm_result r;
        struct fmw_diag d = FMW_DIAG_INIT;
        fmw_jm_result_init(&r);
        struct fmw_jm_input in = {&conf, lines[i], FMW_LEGACY_NONE, NULL};
        cr_assert_eq(fmw_jmmem_resolve(&in, &r, &d), FMW_OK, "%s", fmw_diag_msg(&d));
        cr_expect_eq(r.spec.overhead, 100 * (uint64_t)1 << 20);
        /* The heap is 800m - 128m, above the minimum: this INFO line is the only one. */
        cr_expect_str_eq(fmw_buf_cstr(&r.log), want[i]);
        fmw_diag_cleanup(&d);
        fmw_jm_result_cleanup(&r);
    }
    fmw_conf_cleanup(&conf);
}

/* GlobalConfiguration.loadConfiguration's texts for a conf dir without the file it reads (the
 * directory in 1.11 and 1.12, the file from 1.13) and for a conf dir that does not exist; their
 * form checked against what Flink's jars throw (1.11.6, 1.12.7, 1.13.6, 1.19.3, 2.1.3). */
Test(jmmem, missing_conf_dir_and_file_texts_by_line)
{
    struct {
        const char *line, *file, *want;
    } cases[] = {
        {"1.11", "conf/flink-conf.yaml",
         "The Flink config file 'conf/flink-conf.yaml' (/opt/flink/conf) does not exist."},
        {"1.12.7", "conf/flink-conf.yaml",
         "The Flink config file 'conf/flink-conf.yaml' (/opt/flink/conf) does not exist."},
        {"1.13", "conf/flink-conf.yaml",
         "The Flink config file 'conf/flink-conf.yaml' (/opt/flink/conf/flink-conf.yaml) does not "
         "exist."},
        {"1.19", "conf/config.yaml",
         "The Flink config file 'conf/config.yaml' (/opt/flink/conf/config.yaml) does not exist."},
        {"2.1", "conf/config.yaml",
         "The Flink config file 'conf/config.yaml' (/opt/flink/conf/config.yaml) does not exist."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fmw_flink_version v;
        cr_assert(fmw_flink_version_parse(cases[i].line, &v));
        char file_abs[256];
        snprintf(file_abs, sizeof file_abs, "/opt/flink/%s", cases[i].file);
        struct fmw_diag d = FMW_DIAG_INIT;
        fmw_flink_missing_conf_file(v, cases[i].file, "/opt/flink/conf", file_abs, &d);
        cr_expect_str_eq(fmw_diag_msg(&d), cases[i].want, "%s", cases[i].line);
        fmw_diag_cleanup(&d);
    }
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_flink_missing_conf_dir("conf/", "/opt/flink/conf", &d);
    cr_expect_str_eq(fmw_diag_msg(&d), "The given configuration directory name 'conf/' "
                                       "(/opt/flink/conf) does not describe an existing "
                                       "directory.");
    fmw_diag_cleanup(&d);
}
