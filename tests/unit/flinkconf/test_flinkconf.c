/* The legacy line parser, the standard YAML loader, dynamic properties and typed getters. */
#include "pkg/flinkconf/flinkconf.h"
#include "tests/unit/support.h"

#include <criterion/criterion.h>

/* A step that must succeed for the test to mean anything. */
#define OK(x) cr_assert_eq((x), FMW_OK)
#include <string.h>

static char *join_lines(json_t *lines)
{
    struct fmw_buf b;
    fmw_buf_init(&b, 1 << 20);
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l)
    {
        OK(fmw_buf_adds(&b, json_string_value(l)));
        OK(fmw_buf_addc(&b, '\n'));
    }
    return fmw_buf_take(&b);
}

static const char *text_of(const struct fmw_conf *c, const char *key)
{
    const struct fmw_conf_entry *e = fmw_conf_get(c, key);
    return e ? e->text : NULL;
}

Test(flinkconf, flink_vectors)
{
    json_t *cases = fmw_test_load_json("flink-cases.json");
    size_t i, checked = 0;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *parser = json_string_value(json_object_get(c, "parser"));
        if (!parser)
            continue;
        const char *src = json_string_value(json_object_get(c, "source"));
        char *text = join_lines(json_object_get(c, "file_lines"));
        struct fmw_conf conf;
        struct fmw_diag d = FMW_DIAG_INIT;
        fmw_conf_init(&conf);
        enum fmw_err err = strcmp(parser, "legacy") == 0
                               ? fmw_conf_parse_legacy(&conf, text, strlen(text), &d)
                               : fmw_conf_parse_yaml(&conf, text, strlen(text), &d, NULL);
        json_t *expect = json_object_get(c, "expect_config");
        json_t *typed = json_object_get(c, "expect_config_typed");
        json_t *count = json_object_get(c, "expect_key_count");
        if (expect || typed) {
            cr_expect_eq(err, FMW_OK, "[%s] %s", src, fmw_diag_msg(&d));
            const char *key;
            json_t *v;
            json_object_foreach(expect ? expect : typed, key, v)
            {
                const struct fmw_conf_entry *e = fmw_conf_get(&conf, key);
                cr_expect_not_null(e, "[%s] key %s", src, key);
                if (!e)
                    continue;
                if (json_is_string(v)) {
                    cr_expect_str_eq(e->text, json_string_value(v), "[%s] %s", src, key);
                    if (typed)
                        cr_expect_eq(e->type, FMW_CONF_STRING, "[%s] %s is a string", src, key);
                } else if (json_is_integer(v)) {
                    cr_expect_eq(e->type, FMW_CONF_INT, "[%s] %s", src, key);
                } else if (json_is_boolean(v)) {
                    cr_expect_eq(e->type, FMW_CONF_BOOL, "[%s] %s", src, key);
                }
            }
            if (count)
                cr_expect_eq(conf.len, (size_t)json_integer_value(count), "[%s] key count", src);
            checked++;
        } else if (json_object_get(c, "expect")) {
            checked++; /* described in prose only; covered by the tests below */
        }
        fmw_diag_cleanup(&d);
        fmw_conf_cleanup(&conf);
        free(text);
    }
    cr_expect_geq(checked, 3);
    json_decref(cases);
}

Test(flinkconf, legacy_keeps_quotes_cuts_comments_last_wins)
{
    const char *text = "a: 'quoted' # comment\r\n"
                       "b: x#y\n"
                       "c:\tno-space\n"
                       "d: first\r"
                       "d: second\n"
                       "e: \"url: http://h\" \n";
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    cr_assert_eq(fmw_conf_parse_legacy(&conf, text, strlen(text), NULL), FMW_OK);
    cr_expect_str_eq(text_of(&conf, "a"), "'quoted'");
    cr_expect_str_eq(text_of(&conf, "b"), "x");
    cr_expect_null(text_of(&conf, "c"));
    cr_expect_str_eq(text_of(&conf, "d"), "second");
    cr_expect_str_eq(text_of(&conf, "e"), "\"url: http://h\"");
    cr_expect_neq(conf.warnings.len, 0, "the skipped line is noted");
    fmw_conf_cleanup(&conf);
}

Test(flinkconf, yaml_core_schema_values_read_as_java_prints_them)
{
    const char *text = "jobmanager:\n"
                       "  memory:\n"
                       "    process.size: 0x10\n"
                       "    flink:\n"
                       "      size: 1e3\n"
                       "    heap.size: '1600m'\n"
                       "    off-heap.size: +0012\n"
                       "    jvm-overhead.fraction: .5\n"
                       "    enable-jvm-direct-memory-limit: TRUE\n"
                       "    jvm-metaspace.size: 0o17\n"
                       "big: 0xFFFFFFFFFFFFFFFFFFFF\n"
                       "list: [1, 'a', true]\n"
                       "inf: -.inf\n";
    struct fmw_conf conf;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_conf_init(&conf);
    cr_assert_eq(fmw_conf_parse_yaml(&conf, text, strlen(text), &d, NULL), FMW_OK, "%s",
                 fmw_diag_msg(&d));
    cr_expect_str_eq(text_of(&conf, "jobmanager.memory.process.size"), "16");
    cr_expect_str_eq(text_of(&conf, "jobmanager.memory.flink.size"), "1000.0");
    cr_expect_str_eq(text_of(&conf, "jobmanager.memory.heap.size"), "1600m");
    cr_expect_str_eq(text_of(&conf, "jobmanager.memory.off-heap.size"), "12");
    cr_expect_str_eq(text_of(&conf, "jobmanager.memory.jvm-overhead.fraction"), "0.5");
    cr_expect_str_eq(text_of(&conf, "jobmanager.memory.enable-jvm-direct-memory-limit"), "true");
    cr_expect_str_eq(text_of(&conf, "jobmanager.memory.jvm-metaspace.size"), "15");
    cr_expect_str_eq(text_of(&conf, "big"), "1208925819614629174706175");
    cr_expect_str_eq(text_of(&conf, "list"), "[1, a, true]");
    cr_expect_str_eq(text_of(&conf, "inf"), "-Infinity");
    fmw_diag_cleanup(&d);
    fmw_conf_cleanup(&conf);
}

Test(flinkconf, yaml_rejections_use_flinks_text)
{
    const char *bad[] = {
        "a: 1\na: 2\n",             /* duplicate key */
        "a:\n  b: 1\na:\n  c: 2\n", /* duplicate nested key */
        "a: 1\n---\nb: 2\n",        /* two documents */
        "- a\n- b\n",               /* not a mapping */
        "a: [1, 2\n",               /* syntax */
        "a:\n",                     /* null value */
        "a: ~\n",                   /* null value */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fmw_conf conf;
        struct fmw_diag d = FMW_DIAG_INIT;
        struct fmw_buf detail;
        fmw_buf_init(&detail, 4096);
        fmw_conf_init(&conf);
        cr_expect_eq(fmw_conf_parse_yaml(&conf, bad[i], strlen(bad[i]), &d, &detail), FMW_EINVAL,
                     "%s", bad[i]);
        cr_expect_str_eq(fmw_diag_msg(&d), "Error parsing YAML configuration.");
        cr_expect_neq(detail.len, 0, "a human detail for %s", bad[i]);
        fmw_buf_free(&detail);
        fmw_diag_cleanup(&d);
        fmw_conf_cleanup(&conf);
    }
}

/* tests/data/flinkconf-yaml-edges.json: config.yaml texts with what Flink's jars made of them. */
Test(flinkconf, yaml_edges_read_as_flink_reads_them)
{
    json_t *data = fmw_test_load_json("flinkconf-yaml-edges.json");
    json_t *cases = json_object_get(data, "cases");
    cr_assert(json_array_size(cases) > 0);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *text = json_object_get(c, "text");
        json_t *config = json_object_get(c, "config");
        struct fmw_conf conf;
        struct fmw_diag d = FMW_DIAG_INIT;
        struct fmw_buf detail;
        fmw_buf_init(&detail, 4096);
        fmw_conf_init(&conf);
        enum fmw_err err = fmw_conf_parse_yaml(&conf, json_string_value(text),
                                               json_string_length(text), &d, &detail);
        if (config) {
            cr_expect_eq(err, FMW_OK, "[%s] %s: %s", name, fmw_diag_msg(&d), fmw_buf_cstr(&detail));
            cr_expect_eq(conf.len, json_object_size(config), "[%s] key count", name);
            const char *key;
            json_t *v;
            json_object_foreach(config, key, v)
            {
                const char *got = text_of(&conf, key);
                cr_expect_not_null(got, "[%s] key %s", name, key);
                if (got)
                    cr_expect_str_eq(got, json_string_value(v), "[%s] %s", name, key);
            }
        } else {
            cr_expect_eq(err, FMW_EINVAL, "[%s] is rejected", name);
            cr_expect_str_eq(fmw_diag_msg(&d), json_string_value(json_object_get(c, "error")),
                             "[%s]", name);
            cr_expect_neq(detail.len, 0, "[%s] a human detail", name);
        }
        fmw_buf_free(&detail);
        fmw_diag_cleanup(&d);
        fmw_conf_cleanup(&conf);
    }
    json_decref(data);
}

/* A 0-byte file's text may be no buffer at all (an empty fmw_buf has none): libyaml asserts a
 * non-NULL input, which aborted the CLI; both formats read it as an empty configuration. */
Test(flinkconf, no_text_is_an_empty_configuration)
{
    struct fmw_conf conf;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_conf_init(&conf);
    cr_expect_eq(fmw_conf_parse_yaml(&conf, NULL, 0, &d, NULL), FMW_OK, "%s", fmw_diag_msg(&d));
    cr_expect_eq(conf.len, 0);
    cr_expect_eq(fmw_conf_parse_legacy(&conf, NULL, 0, &d), FMW_OK, "%s", fmw_diag_msg(&d));
    cr_expect_eq(conf.len, 0);
    cr_expect_eq(conf.warnings.len, 0);
    fmw_diag_cleanup(&d);
    fmw_conf_cleanup(&conf);
}

Test(flinkconf, yaml_null_fails_only_as_the_final_value)
{
    /* Flink flattens first: a later entry for the same flat key replaces the null. */
    const char *ok = "jobmanager.memory.process.size: ~\njobmanager:\n  memory.process.size: 2g\n";
    const char *bad = "jobmanager.memory.process.size: 2g\njobmanager:\n  memory.process.size:\n";
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    cr_expect_eq(fmw_conf_parse_yaml(&conf, ok, strlen(ok), NULL, NULL), FMW_OK);
    cr_expect_str_eq(text_of(&conf, "jobmanager.memory.process.size"), "2g");
    fmw_conf_cleanup(&conf);
    fmw_conf_init(&conf);
    cr_expect_eq(fmw_conf_parse_yaml(&conf, bad, strlen(bad), NULL, NULL), FMW_EINVAL);
    fmw_conf_cleanup(&conf);
}

Test(flinkconf, yaml_explicit_tags_after_non_ascii_text)
{
    /* libyaml's marks count characters: the tag must still be found after multi-byte text. */
    const char *text = "a: \xef\xbc\x91g\nb: !!float 1\nc: !!str 12\nd: 12\n";
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    cr_assert_eq(fmw_conf_parse_yaml(&conf, text, strlen(text), NULL, NULL), FMW_OK);
    cr_expect_str_eq(text_of(&conf, "b"), "1.0");
    cr_expect_eq(fmw_conf_get(&conf, "b")->type, FMW_CONF_FLOAT);
    cr_expect_eq(fmw_conf_get(&conf, "c")->type, FMW_CONF_STRING);
    cr_expect_eq(fmw_conf_get(&conf, "d")->type, FMW_CONF_INT);
    fmw_conf_cleanup(&conf);
}

Test(flinkconf, yaml_dotted_and_nested_later_wins)
{
    const char *text = "jobmanager.memory.process.size: 1g\n"
                       "jobmanager:\n  memory:\n    process.size: 2g\n";
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    cr_assert_eq(fmw_conf_parse_yaml(&conf, text, strlen(text), NULL, NULL), FMW_OK);
    cr_expect_str_eq(text_of(&conf, "jobmanager.memory.process.size"), "2g");
    cr_expect_eq(conf.len, 1);
    fmw_conf_cleanup(&conf);
}

Test(flinkconf, yaml_alias_bomb_is_bounded)
{
    struct fmw_buf b;
    fmw_buf_init(&b, 1 << 20);
    OK(fmw_buf_adds(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"));
    for (int i = 1; i < 12; i++)
        OK(fmw_buf_addf(
            &b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i,
            i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1));
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    cr_expect_eq(fmw_conf_parse_yaml(&conf, b.data, b.len, NULL, NULL), FMW_EINVAL);
    fmw_conf_cleanup(&conf);
    fmw_buf_free(&b);
}

Test(flinkconf, dynamic_properties_split_at_first_equals)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    cr_assert_eq(fmw_conf_apply_dynamic(&conf, fmw_str_c("env.java.opts=-Da=b")), FMW_OK);
    cr_assert_eq(fmw_conf_apply_dynamic(&conf, fmw_str_c("flag")), FMW_OK);
    cr_expect_str_eq(text_of(&conf, "env.java.opts"), "-Da=b");
    cr_expect_str_eq(text_of(&conf, "flag"), "true");
    fmw_conf_cleanup(&conf);
}

Test(flinkconf, typed_getters_fail_with_flinks_texts)
{
    struct fmw_conf conf;
    fmw_conf_init(&conf);
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c("size=12 parsecs")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c("fraction=ten percent")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c("flag=yes")));
    OK(fmw_conf_apply_dynamic(&conf, fmw_str_c("mb=1.5")));
    struct fmw_diag d = FMW_DIAG_INIT, cause = FMW_DIAG_INIT;
    uint64_t size;
    bool present;
    cr_expect_eq(fmw_conf_get_memsize(&conf, "size", 0, &size, &present, &d, &cause), FMW_ECONFIG);
    cr_expect_str_eq(fmw_diag_msg(&d), "Cannot read memory size from config option 'size'.");
    cr_expect(strstr(fmw_diag_msg(&cause), "'parsecs'") != NULL);
    float f;
    cr_expect_eq(fmw_conf_get_float(&conf, "fraction", 0.1f, &f, NULL, &d), FMW_EINVAL);
    cr_expect_str_eq(fmw_diag_msg(&d), "Could not parse value 'ten percent' for key 'fraction'.");
    bool flag;
    cr_expect_eq(fmw_conf_get_bool(&conf, "flag", false, &flag, NULL, &d), FMW_EINVAL);
    cr_expect_str_eq(fmw_diag_msg(&d), "Could not parse value 'yes' for key 'flag'.");
    int32_t mb;
    cr_expect_eq(fmw_conf_get_int(&conf, "mb", 0, &mb, NULL, &d), FMW_EINVAL);
    cr_expect_eq(fmw_conf_get_memsize(&conf, "absent", 42, &size, &present, &d, NULL), FMW_OK);
    cr_expect_eq(size, 42);
    cr_expect_not(present);
    fmw_diag_cleanup(&d);
    fmw_diag_cleanup(&cause);
    fmw_conf_cleanup(&conf);
}
