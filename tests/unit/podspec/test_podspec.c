/* pkg/podspec internals: command-line words, launchers, JVM flags, images, JSON Pointers. */
#include "pkg/podspec/podspec_int.h"

#include <criterion/criterion.h>

/* A step that must succeed for the test to mean anything. */
#define OK(x) cr_assert_eq((x), FMW_OK)
#include <string.h>
#include <time.h>

static json_t *container_of(const char *json)
{
    json_error_t e;
    json_t *c = json_loads(json, 0, &e);
    cr_assert_not_null(c, "%s", e.text);
    return c;
}

struct parsed {
    json_t *container;
    struct cmdline cl;
    struct launch l;
};

static void parse(struct parsed *p, const char *json, const struct env_var *env, size_t nenv)
{
    p->container = container_of(json);
    cr_assert_eq(fmw_cmdline_build(p->container, env, nenv, &p->cl), FMW_OK);
    fmw_launch_detect(&p->cl, &p->l);
}

static void done(struct parsed *p)
{
    fmw_cmdline_cleanup(&p->cl);
    json_decref(p->container);
}

Test(podspec, shell_scripts_are_split_like_the_shell)
{
    struct env_var env[] = {{"HEAP", "2g", 0, NULL, false}};
    struct parsed p;
    parse(&p,
          "{\"command\":[\"/bin/bash\",\"-ec\"],\"args\":[\"echo hi; exec java \\\"-Xmx$HEAP\\\" "
          "'-Dx=a b' -cp /l "
          "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint\"]}",
          env, 1);
    cr_assert_eq(p.l.kind, L_JAVA);
    cr_expect_str_eq(p.cl.words[p.l.java].text, "java");
    cr_expect_str_eq(p.cl.words[p.l.java + 1].text, "-Xmx2g");
    cr_expect_str_eq(p.cl.words[p.l.java + 2].text, "-Dx=a b");
    /* The raw span of the quoted word covers its quotes. */
    const struct word *w = &p.cl.words[p.l.java + 1];
    cr_expect_eq(strncmp(p.cl.elems[w->elem].str + w->start, "\"-Xmx$HEAP\"", w->end - w->start),
                 0);
    done(&p);
}

Test(podspec, kubernetes_expands_dollar_parens)
{
    struct env_var env[] = {{"SIZE", "4g", 0, NULL, false}};
    struct parsed p;
    parse(
        &p,
        "{\"args\":[\"standalone-job\",\"-Djobmanager.memory.process.size=$(SIZE)\",\"$$(SIZE)\"]}",
        env, 1);
    cr_assert_eq(p.l.kind, L_ENTRY_SAJ);
    cr_expect_str_eq(p.cl.words[1].text, "-Djobmanager.memory.process.size=4g");
    cr_expect_str_eq(p.cl.words[2].text, "$(SIZE)");
    done(&p);
}

Test(podspec, launchers)
{
    static const struct {
        const char *json;
        enum launcher kind;
        bool entry;
    } cases[] = {
        {"{\"args\":[\"jobmanager\"]}", L_ENTRY_JM, true},
        {"{\"command\":[\"/docker-entrypoint.sh\"],\"args\":[\"standalone-job\"]}", L_ENTRY_SAJ,
         true},
        {"{\"args\":[\"taskmanager\"]}", L_ENTRY_TM, true},
        {"{\"args\":[\"history-server\"]}", L_OTHER, true},
        {"{\"command\":[\"/opt/flink/bin/taskmanager.sh\",\"start-foreground\"]}", L_SCRIPT_TM,
         false},
        {"{\"command\":[\"/opt/flink/bin/historyserver.sh\",\"start-foreground\"]}", L_OTHER,
         false},
        {"{\"command\":[\"/opt/flink/bin/jobmanager.sh\",\"start-foreground\"]}", L_SCRIPT_JM,
         false},
        {"{\"command\":[\"bash\",\"-c\",\"$FLINK_HOME/bin/kubernetes-jobmanager.sh "
         "kubernetes-application\"]}",
         L_K8S_JM, false},
        {"{\"command\":[\"/"
         "docker-entrypoint.sh\"],\"args\":[\"bash\",\"-c\",\"kubernetes-taskmanager.sh\"]}",
         L_K8S_TM, true},
        {"{\"command\":[\"java\",\"-cp\",\"x\",\"org.apache.flink.runtime.taskexecutor."
         "TaskManagerRunner\"]}",
         L_JAVA_TM, false},
        {"{\"command\":[\"java\",\"-cp\",\"x\",\"org.apache.flink.kubernetes.taskmanager."
         "KubernetesTaskExecutorRunner\"]}",
         L_JAVA_TM, false},
        {"{\"command\":[\"java\",\"-cp\",\"x\",\"org.apache.flink.runtime.webmonitor.history."
         "HistoryServer\"]}",
         L_OTHER, false},
        {"{\"command\":[\"sleep\",\"infinity\"]}", L_NONE, false},
        {"{}", L_NONE, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct parsed p;
        parse(&p, cases[i].json, NULL, 0);
        cr_expect_eq(p.l.kind, cases[i].kind, "%s", cases[i].json);
        cr_expect_eq(p.l.via_entrypoint, cases[i].entry, "%s", cases[i].json);
        done(&p);
    }
}

static size_t props_of(const char *json, struct fmw_flink_version v, json_t **props, json_t **notes)
{
    struct parsed p;
    parse(&p, json, NULL, 0);
    *props = json_array();
    *notes = json_array();
    cr_assert_eq(fmw_launch_dynamic_props(&p.cl, &p.l, v, *props, *notes), FMW_OK);
    done(&p);
    return json_array_size(*props);
}

Test(podspec, dynamic_properties_follow_the_scripts)
{
    json_t *props, *notes;
    struct fmw_flink_version v118 = {1, 18, 1}, v1162 = {1, 16, 2}, v114 = {1, 14, -1};
    cr_expect_eq(
        props_of("{\"args\":[\"jobmanager\",\"-D\",\"a=1\",\"-Db=2\"]}", v118, &props, &notes), 2);
    cr_expect_str_eq(json_string_value(json_array_get(props, 1)), "b=2");
    json_decref(props);
    json_decref(notes);
    /* host and port before the bare -D */
    cr_expect_eq(
        props_of("{\"args\":[\"jobmanager\",\"h\",\"8081\",\"-D\",\"a=1\"]}", v118, &props, &notes),
        1);
    json_decref(props);
    json_decref(notes);
    /* -Dk=v first: taken as the host */
    cr_expect_eq(props_of("{\"args\":[\"jobmanager\",\"-Da=1\"]}", v118, &props, &notes), 0);
    cr_expect_eq(json_array_size(notes), 1);
    json_decref(props);
    json_decref(notes);
    /* not forwarded before 1.16.3 */
    cr_expect_eq(props_of("{\"args\":[\"jobmanager\",\"-D\",\"a=1\"]}", v1162, &props, &notes), 0);
    json_decref(props);
    json_decref(notes);
    /* standalone-job forwards both forms in every version */
    cr_expect_eq(
        props_of(
            "{\"args\":[\"standalone-job\",\"--job-classname\",\"x\",\"-Da=1\",\"-D\",\"b=2\"]}",
            v114, &props, &notes),
        2);
    json_decref(props);
    json_decref(notes);
}

Test(podspec, jvm_flags)
{
    uint64_t b;
    cr_expect(fmw_podspec_jvm_size(fmw_str_c("2g"), &b) && b == 2147483648u);
    cr_expect(fmw_podspec_jvm_size(fmw_str_c("512M"), &b) && b == 512u << 20);
    cr_expect(fmw_podspec_jvm_size(fmw_str_c("1073741824"), &b) && b == 1073741824u);
    cr_expect_not(fmw_podspec_jvm_size(fmw_str_c("1.5g"), &b));
    cr_expect_not(fmw_podspec_jvm_size(fmw_str_c("g"), &b));
    cr_expect_not(fmw_podspec_jvm_size(fmw_str_c("99999999999t"), &b));

    bool found[FLAG_COUNT];
    uint64_t bytes[FLAG_COUNT];
    fmw_jvm_scan("-Xmx1g -XX:+UseG1GC -XX:MaxHeapSize=2g -Xmsfoo", found, bytes);
    cr_expect(found[FLAG_XMX] && bytes[FLAG_XMX] == 2147483648u, "the last occurrence wins");
    cr_expect(found[FLAG_XMS] && bytes[FLAG_XMS] == UINT64_MAX);
    cr_expect_not(found[FLAG_METASPACE]);

    uint64_t want[FLAG_COUNT] = {100, 100, 200, 300};
    bool set[FLAG_COUNT] = {true, false, true, true};
    char *out = fmw_jvm_rewrite("  -Xmx1g\t-Xms1g -XX:MaxMetaspaceSize=1g -Dx=-Xmx9g ", want, set);
    cr_expect_str_eq(out, "  -Xmx100\t-Xms1g -XX:MaxMetaspaceSize=200 -Dx=-Xmx9g ");
    free(out);

    /* Removal (a pod that follows its size): the word goes with the blanks before it, or after
     * it when it is first; other words and a flag inside another word stay. */
    const uint64_t gone[FLAG_COUNT] = {FMW_JVM_REMOVE, FMW_JVM_REMOVE, FMW_JVM_REMOVE,
                                       FMW_JVM_REMOVE};
    const bool all[FLAG_COUNT] = {true, true, true, true};
    const struct {
        const char *in, *out;
    } cases[] = {
        {"-Xmx1g", ""},
        {"-Xmx1g -Dfoo=bar", "-Dfoo=bar"},
        {"-Dfoo=bar -Xmx1g", "-Dfoo=bar"},
        {"-Da=1  -Xms1g\t-Xmx2g -Db=2 ", "-Da=1 -Db=2 "},
        {"  -XX:MaxDirectMemorySize=1g -XX:+UseG1GC -XX:MaxMetaspaceSize=256m", "-XX:+UseG1GC"},
        {"-Dx=-Xmx9g -Xmx1g", "-Dx=-Xmx9g"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        out = fmw_jvm_rewrite(cases[i].in, gone, all);
        cr_expect_str_eq(out, cases[i].out, "removing from '%s'", cases[i].in);
        free(out);
    }
}

Test(podspec, image_versions)
{
    struct fmw_flink_version v;
    cr_expect(fmw_podspec_image_version("flink:1.17.2-scala_2.12-java11", &v) && v.minor == 17 &&
              v.patch == 2);
    cr_expect(fmw_podspec_image_version("docker.io/apache/flink:2.0.0-java17", &v) && v.major == 2);
    cr_expect(fmw_podspec_image_version("registry:5000/team/flink-custom:1.18", &v) &&
              v.minor == 18);
    cr_expect_not(fmw_podspec_image_version("flink:latest", &v));
    cr_expect_not(fmw_podspec_image_version("flink@sha256:abc", &v));
    cr_expect_not(fmw_podspec_image_version("nginx:1.25", &v));
    cr_expect_not(fmw_podspec_image_version("flink", &v));
    /* A version anywhere among the tag's tokens, in an image of Flink or after a "flink" token. */
    cr_expect(fmw_podspec_image_version("bitnami/flink:1.20.1-debian-12-r5", &v) && v.minor == 20);
    cr_expect(fmw_podspec_image_version("jobs/streaming:flink-1.16.1-custom", &v) &&
              v.minor == 16 && v.patch == 1);
    cr_expect(fmw_podspec_image_version("flink:v1.17.0", &v) && v.minor == 17);
    cr_expect(fmw_podspec_image_version("flink:1.17.2@sha256:0123", &v) && v.minor == 17,
              "a digest with its tag kept beside it");
    cr_expect(fmw_podspec_image_version("team/flink-app:build-7-1.19.1", &v) && v.minor == 19);
    /* Scala's version is not Flink's; nor is another image's. */
    cr_expect_not(fmw_podspec_image_version("flink:scala_2.12-java11", &v));
    cr_expect_not(fmw_podspec_image_version("flink:java17", &v));
    cr_expect_not(fmw_podspec_image_version("jobs/streaming:1.16.1", &v));
    cr_expect_not(fmw_podspec_image_version("flink:1.17rc1", &v));
    /* The token after "flink" is Flink's, ahead of the image's own version. */
    cr_expect(fmw_podspec_image_version("myorg/flink-jobs:2.5.0-flink-1.17.2", &v) &&
              v.major == 1 && v.minor == 17);
    cr_expect(fmw_podspec_image_version("jobs:flink1.18", &v) && v.minor == 18);
    cr_expect_not(fmw_podspec_image_version("apache/flink-kubernetes-operator:1.12.0", &v),
                  "an operator's image carries the operator's version");
    cr_expect(fmw_podspec_image_version("localhost:5000/flink:1.18.1", &v) && v.minor == 18);
}

Test(podspec, json_pointer_escapes)
{
    struct fmw_buf b;
    fmw_buf_init(&b, 256);
    OK(fmw_json_pointer_append(&b, "metadata"));
    OK(fmw_json_pointer_append(&b, "flink-memory-webhook/resolved"));
    OK(fmw_json_pointer_append(&b, "a~b"));
    cr_expect_str_eq(fmw_buf_cstr(&b), "/metadata/flink-memory-webhook~1resolved/a~0b");
    fmw_buf_free(&b);
}

Test(podspec, envsubst)
{
    struct env_var env[] = {{"A", "1", 0, NULL, false}, {"B", "x", 1, NULL, false}};
    const char *unknown = "unset";
    char *s = fmw_envsubst("$A ${B} $C ${ $ $1", env, 2, &unknown);
    cr_expect_str_eq(s, "1 x  ${ $ $1");
    cr_expect_null(unknown, "every variable is known or unset");
    free(s);
    /* A variable from valueFrom (NULL value), or one whose value names such a variable, is
     * not known here: said by name, substituted as empty. */
    struct env_var refs[] = {
        {"S", NULL, 0, NULL, false}, {"T", "$(S)", 1, NULL, true}, {"A", "1", 2, NULL, false}};
    s = fmw_envsubst("$A-${S}-$T", refs, 3, &unknown);
    cr_expect_str_eq(unknown, "S");
    free(s);
    s = fmw_envsubst("$A $T", refs, 3, &unknown);
    cr_expect_str_eq(unknown, "T");
    free(s);
}

/* All expansions of one pod share one budget: bytes substituted and entries compared. */
Test(podspec, expansion_budget_bounds_the_sum)
{
    struct env_var env[] = {{"A", "0123456789", 0, NULL, false}, {"B", "x", 1, NULL, false}};
    char *out = NULL;
    bool opaque = false, word = false;

    /* 25 bytes allowed: two expansions of 10 fit, the third does not, nor anything after it. */
    fmw_expand_budget_begin(25, 1000, 0);
    cr_assert_eq(fmw_env_expand("$(A)", env, 2, &out, &opaque, &word), FMW_OK);
    cr_assert_str_eq(out, "0123456789");
    free(out);
    cr_assert_eq(fmw_env_expand("-$(A)-", env, 2, &out, &opaque, &word), FMW_OK);
    free(out);
    cr_assert_eq(fmw_env_expand("$(A)", env, 2, &out, &opaque, &word), FMW_ETOOBIG);
    cr_assert_null(out);
    cr_assert_eq(fmw_env_expand("$(B)", env, 2, &out, &opaque, &word), FMW_ETOOBIG);
    cr_assert_null(fmw_envsubst("$B", env, 2, NULL));
    cr_assert_eq(fmw_expand_budget_end(), FMW_EXPAND_OVER_BYTES);

    /* Each look-up is charged the entries it may compare (2 here): 3 look-ups in 5. */
    fmw_expand_budget_begin(1000, 5, 0);
    cr_assert_eq(fmw_env_expand("$(B)$(B)", env, 2, &out, &opaque, &word), FMW_OK);
    free(out);
    cr_assert_eq(fmw_env_expand("$(NONE)", env, 2, &out, &opaque, &word), FMW_ETOOBIG);
    cr_assert_eq(fmw_expand_budget_end(), FMW_EXPAND_OVER_SCANS);

    /* Outside a budget nothing is charged, and a new budget starts afresh. */
    cr_assert_eq(fmw_env_expand("$(A)$(A)$(A)", env, 2, &out, &opaque, &word), FMW_OK);
    free(out);
    fmw_expand_budget_begin(10, 2, 0);
    char *s = fmw_envsubst("${A}", env, 2, NULL);
    cr_assert_str_eq(s, "0123456789");
    free(s);
    cr_assert_eq(fmw_expand_budget_end(), FMW_EXPAND_WITHIN);
}

/* A deadline in the past stops the expansion once enough work is done to read the clock. */
Test(podspec, expansion_stops_at_the_deadline)
{
    static char big[200001];
    memset(big, 'y', sizeof big - 1);
    struct env_var env[] = {{"BIG", big, 0, NULL, false}};
    char *out = NULL;
    bool opaque = false, word = false;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t past = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec - 1;
    fmw_expand_budget_begin(FMW_EXPAND_MAX_BYTES, FMW_EXPAND_MAX_SCANS, past);
    cr_assert_eq(fmw_env_expand("$(BIG)", env, 1, &out, &opaque, &word), FMW_ETOOBIG);
    cr_assert_null(out);
    cr_assert_eq(fmw_expand_budget_end(), FMW_EXPAND_OVER_TIME);
    /* A deadline far ahead changes nothing. */
    fmw_expand_budget_begin(FMW_EXPAND_MAX_BYTES, FMW_EXPAND_MAX_SCANS, past + 60000000000u);
    cr_assert_eq(fmw_env_expand("$(BIG)", env, 1, &out, &opaque, &word), FMW_OK);
    cr_assert_eq(strlen(out), sizeof big - 1);
    free(out);
    cr_assert_eq(fmw_expand_budget_end(), FMW_EXPAND_WITHIN);
}

/* The webhook's own FLINK_PROPERTIES line leaves the rest of the text as the user wrote it
 * (plan.c's set_own_line appends it after a line break it adds where there is none). In the
 * cases, '@' stands for the webhook's line. */
Test(podspec, own_properties_line_comes_out_cleanly)
{
    char own[FMW_OWN_LINE_MAX];
    fmw_own_properties_line(FMW_ROLE_JOBMANAGER, own);
    cr_assert_str_eq(own, "jobmanager.memory.process.size: ${FLINK_MEMORY_WEBHOOK_SIZE}b");
    static const struct {
        const char *in, *out;
        bool had;
    } cases[] = {
        {"@", "", true},
        {"a: 1\n@", "a: 1", true},
        {"a: 1\n@\n", "a: 1\n", true},
        {"@\na: 1", "a: 1", true},
        {"a: 1\n@\nb: 2", "a: 1\nb: 2", true},
        {"@\n@", "", true},
        {"a: 1\n\n@", "a: 1\n", true},
        {"x@", NULL, false}, /* not the whole line */
        {"a: 1\nb: 2", NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256] = "";
        for (const char *p = cases[i].in; *p; p++) {
            size_t n = strlen(text);
            if (*p == '@')
                snprintf(text + n, sizeof text - n, "%s", own);
            else
                snprintf(text + n, sizeof text - n, "%c", *p);
        }
        bool had;
        char *out = fmw_without_line(text, own, &had);
        cr_assert_not_null(out);
        cr_assert_eq(had, cases[i].had, "%s", text);
        cr_assert_str_eq(out, cases[i].out ? cases[i].out : text, "%s", text);
        free(out);
    }
}
