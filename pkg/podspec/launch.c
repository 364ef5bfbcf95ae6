/*
 * How a container starts Flink, and which "-D" arguments really reach the memory calculation.
 * The rules are the start scripts' (flink-docker's docker-entrypoint.sh; Flink's bin/jobmanager.sh,
 * standalone-job.sh, kubernetes-jobmanager.sh, taskmanager.sh and kubernetes-taskmanager.sh):
 * docker-entrypoint.sh dispatches `jobmanager` / `standalone-job` / `taskmanager`; jobmanager.sh
 * forwards dynamic properties only from 1.16.3 / 1.17.2 / 1.18.0 and only when they start right
 * after its optional host and port; the others forward every -D (taskmanager.sh passes all its
 * arguments after start|start-foreground to BashJavaUtils GET_TM_RESOURCE_PARAMS in every line).
 */
#include "pkg/podspec/podspec_int.h"

#include <string.h>

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static bool is(const char *word, const char *name)
{
    return strcmp(base_name(word), name) == 0;
}

static bool is_start_word(const char *w)
{
    return strcmp(w, "start-foreground") == 0 || strcmp(w, "start") == 0;
}

/* Flink's JobManager entry points, for java command lines written by hand or by the native
 * Kubernetes client of 1.11/1.12. */
static bool is_jm_class(const char *cls)
{
    const char *b = strrchr(cls, '.');
    b = b ? b + 1 : cls;
    return strstr(b, "ClusterEntrypoint") || strstr(b, "ClusterEntryPoint");
}

/* Flink's TaskManager entry points: org.apache.flink.runtime.taskexecutor.TaskManagerRunner,
 * org.apache.flink.kubernetes.taskmanager.KubernetesTaskExecutorRunner (the java command of
 * 1.11/1.12 native Kubernetes TaskManagers), org.apache.flink.yarn.YarnTaskExecutorRunner. */
static bool is_tm_class(const char *cls)
{
    const char *b = strrchr(cls, '.');
    b = b ? b + 1 : cls;
    size_t n = strlen(b);
    static const char *const ENDS[] = {"TaskManagerRunner", "TaskExecutorRunner"};
    for (size_t i = 0; i < sizeof ENDS / sizeof ENDS[0]; i++) {
        size_t e = strlen(ENDS[i]);
        if (n >= e && strcmp(b + n - e, ENDS[i]) == 0)
            return true;
    }
    return false;
}

static enum launcher java_kind(const char *cls)
{
    return is_jm_class(cls) ? L_JAVA : is_tm_class(cls) ? L_JAVA_TM : L_OTHER;
}

/* The java launcher's options whose value is the next word (`java --help`, `--help-extra`);
 * their `--opt=value` spellings are one word. */
static bool java_option_has_value(const char *a)
{
    static const char *const WITH_VALUE[] = {
        "-cp",
        "-classpath",
        "--class-path",
        "-jar",
        "-p",
        "--module-path",
        "--upgrade-module-path",
        "--add-modules",
        "--enable-native-access",
        "--add-reads",
        "--add-exports",
        "--add-opens",
        "--limit-modules",
        "--patch-module",
        "--source",
    };
    for (size_t i = 0; i < sizeof WITH_VALUE / sizeof WITH_VALUE[0]; i++) {
        if (strcmp(a, WITH_VALUE[i]) == 0)
            return true;
    }
    return false;
}

static size_t skip_start(const struct cmdline *cl, size_t i, size_t end)
{
    return (i < end && is_start_word(cl->words[i].text)) ? i + 1 : i;
}

void fmw_launch_detect(const struct cmdline *cl, struct launch *l)
{
    memset(l, 0, sizeof *l);
    l->kind = L_NONE;
    /* Without `command` the image's ENTRYPOINT, docker-entrypoint.sh, receives the args. */
    bool entry = !cl->has_command;
    l->via_entrypoint = entry;
    for (size_t i = 0; i < cl->nwords; i++) {
        const struct word *w = &cl->words[i];
        if (w->op) {
            entry = false;
            continue;
        }
        size_t end = i;
        while (end < cl->nwords && !cl->words[end].op)
            end++;
        l->end = end;
        const char *t = w->text;
        if (is(t, "docker-entrypoint.sh")) {
            entry = true;
            l->via_entrypoint = true;
            continue;
        }
        if (entry) {
            entry = false;
            if (strcmp(t, "jobmanager") == 0 || strcmp(t, "standalone-job") == 0) {
                l->kind = t[0] == 'j' ? L_ENTRY_JM : L_ENTRY_SAJ;
                l->rest = i + 1;
                return;
            }
            if (strcmp(t, "taskmanager") == 0) {
                l->kind = L_ENTRY_TM;
                l->rest = i + 1;
                return;
            }
            if (strcmp(t, "history-server") == 0) {
                l->kind = L_OTHER;
                return;
            }
            /* Anything else is exec'ed as is: keep looking at what it runs. */
        }
        if (is(t, "jobmanager.sh") || is(t, "standalone-job.sh")) {
            l->kind = is(t, "jobmanager.sh") ? L_SCRIPT_JM : L_SCRIPT_SAJ;
            l->rest = skip_start(cl, i + 1, end);
            return;
        }
        if (is(t, "kubernetes-jobmanager.sh")) {
            l->kind = L_K8S_JM;
            l->rest = i + 2 <= end ? i + 2 : end; /* after kubernetes-session|-application */
            return;
        }
        if (is(t, "taskmanager.sh")) {
            l->kind = L_SCRIPT_TM;
            l->rest = skip_start(cl, i + 1, end);
            return;
        }
        if (is(t, "kubernetes-taskmanager.sh")) {
            l->kind = L_K8S_TM;
            l->rest = i + 1;
            return;
        }
        if (is(t, "historyserver.sh") || is(t, "sql-gateway.sh")) {
            l->kind = L_OTHER;
            return;
        }
        if (is(t, "java")) {
            l->java = i;
            /* The main class: the first word that is neither an option nor an option's value;
             * or a module's, `-m module/class`. */
            for (size_t k = i + 1; k < end; k++) {
                const char *a = cl->words[k].text;
                if (!a)
                    continue;
                const char *module = strcmp(a, "-m") == 0 || strcmp(a, "--module") == 0
                                         ? (k + 1 < end ? cl->words[k + 1].text : "")
                                     : strncmp(a, "--module=", 9) == 0 ? a + 9
                                                                       : NULL;
                if (module) {
                    const char *cls = strchr(module, '/');
                    l->main_class = k;
                    l->rest = module == a + 9 ? k + 1 : k + 2;
                    l->kind = cls ? java_kind(cls + 1) : L_OTHER;
                    return;
                }
                if (java_option_has_value(a)) {
                    k++;
                    continue;
                }
                if (a[0] == '-')
                    continue;
                l->main_class = k;
                l->rest = k + 1;
                l->kind = java_kind(a);
                return;
            }
            /* No class (`java -version && exec java ...`): the next command may start Flink. */
            i = end > i ? end - 1 : i;
            continue;
        }
    }
}

/* The image's ENTRYPOINT is [entrypoint.sh, run.sh] with no CMD, so a pod's args (without a
 * command) always follow run.sh: the setup runs and run.sh starts the process FLINK_MODE names,
 * with the args after start-foreground (bitnami/containers bitnami/flink Dockerfile). */
void fmw_launch_bitnami(const struct cmdline *cl, const char *mode, struct launch *l)
{
    memset(l, 0, sizeof *l);
    l->bitnami = true;
    l->end = cl->nwords;                                    /* the args, no shell between */
    if (!mode || !*mode || strcmp(mode, "jobmanager") == 0) /* ${FLINK_MODE:-jobmanager} */
        l->kind = L_SCRIPT_JM;
    else if (strcmp(mode, "standalone-job") == 0)
        l->kind = L_SCRIPT_SAJ;
    else if (strcmp(mode, "taskmanager") == 0)
        l->kind = L_SCRIPT_TM; /* taskmanager.sh start-foreground */
    else
        l->kind = L_OTHER; /* history-server; anything else fails to start */
}

bool fmw_launch_bitnami_image(const char *image)
{
    if (!image)
        return false;
    /* [registry[:port]/]ORG/flink[:tag][@digest] with ORG bitnami, bitnamilegacy,
     * bitnamisecure: the name is what follows the last '/' before any '@'. */
    size_t n = strcspn(image, "@");
    const char *slash = NULL;
    for (const char *p = image; p < image + n; p++) {
        if (*p == '/')
            slash = p;
    }
    if (!slash)
        return false;
    size_t name = strcspn(slash + 1, ":@");
    if (name != 5 || strncmp(slash + 1, "flink", 5) != 0)
        return false;
    const char *org = slash;
    while (org > image && org[-1] != '/')
        org--;
    return strncmp(org, "bitnami", 7) == 0;
}

unsigned fmw_launch_role(const struct launch *l)
{
    switch (l->kind) {
    case L_ENTRY_JM:
    case L_ENTRY_SAJ:
    case L_SCRIPT_JM:
    case L_SCRIPT_SAJ:
    case L_K8S_JM:
    case L_JAVA:
        return FMW_ROLE_JOBMANAGER;
    case L_ENTRY_TM:
    case L_SCRIPT_TM:
    case L_K8S_TM:
    case L_JAVA_TM:
        return FMW_ROLE_TASKMANAGER;
    case L_NONE:
    case L_OTHER:
        break;
    }
    return 0;
}

bool fmw_launch_scripted(const struct launch *l)
{
    return l->kind != L_JAVA && l->kind != L_JAVA_TM && l->kind != L_K8S_TM;
}

/* jobmanager.sh [host] [webui-port] -D … (1.15+): where the properties start, a bare -D in one
 * of the first three positions; `end` when there is none (everything is host and port then). */
static size_t jm_dynamic_start(const struct cmdline *cl, const struct launch *l)
{
    for (size_t k = l->rest; k < l->end && k < l->rest + 3; k++) {
        if (strcmp(cl->words[k].text, "-D") == 0)
            return k;
    }
    return l->end;
}

bool fmw_launch_jm_args_fatal(const struct cmdline *cl, const struct launch *l,
                              struct fmw_flink_version v, char *msg, size_t size)
{
    if (l->kind != L_ENTRY_JM && l->kind != L_SCRIPT_JM)
        return false;
    size_t r = l->rest;
    bool bare_d = fmw_flink_version_cmp(v, FMW_FLINK_LINE(1, 15)) >= 0;
    /* 1.15+: the words before the properties; before: HOST=$2 WEBUIPORT=$3, whatever they are */
    size_t positional_end = bare_d ? jm_dynamic_start(cl, l) : l->end;
    const char *host = r < positional_end ? cl->words[r].text : NULL;
    const char *port = r + 1 < positional_end ? cl->words[r + 1].text : NULL;
    const char *bad = host && strncmp(host, "-D", 2) == 0   ? host
                      : port && strncmp(port, "-D", 2) == 0 ? port
                                                            : NULL;
    if (!bad)
        return false;
    snprintf(
        msg, size,
        "Failed to parse the command line arguments: Missing argument for option: %c "
        "(jobmanager.sh passes %.128s as the %s, --%s %.128s; the JobManager does not start%s)",
        bad == host ? 'h' : 'r', bad, bad == host ? "host" : "web UI port",
        bad == host ? "host" : "webui-port", bad,
        bare_d ? ": write -D key=value, a bare -D first" : "");
    return true;
}

/* jobmanager.sh forwards its -D arguments to BashJavaUtils from 1.16.3, 1.17.2 and 1.18
 * (FLINK-32909; 1.15 accepts them after a bare -D and drops them). An unknown patch is the
 * line's newest, which forwards them from 1.16 on. */
static bool jm_script_forwards(struct fmw_flink_version v)
{
    return fmw_flink_version_cmp(v, FMW_FLINK_LINE(1, 18)) >= 0 ||
           (v.major == 1 && v.minor == 17 && (v.patch < 0 || v.patch >= 2)) ||
           (v.major == 1 && v.minor == 16 && (v.patch < 0 || v.patch >= 3));
}

bool fmw_launch_follow_at(const struct cmdline *cl, const struct launch *l,
                          struct fmw_flink_version v, size_t *at)
{
    switch (l->kind) {
    case L_ENTRY_JM:
    case L_SCRIPT_JM:
        /* Appended: it must be where jobmanager.sh looks for a bare -D (one of the three words
         * after start-foreground, or after an earlier bare -D there). */
        *at = l->end;
        return jm_script_forwards(v) && (jm_dynamic_start(cl, l) < l->end || l->end - l->rest < 3);
    case L_ENTRY_TM:
    case L_SCRIPT_TM:
        *at = l->end; /* taskmanager.sh passes every argument to BashJavaUtils, in order */
        return true;
    case L_ENTRY_SAJ:
    case L_SCRIPT_SAJ:
        /* Before the entry point's options: appended, it would be one of the job's program
         * arguments (they come last, and the parser stops at the first one). */
        *at = l->rest;
        return true;
    default:
        return false;
    }
}

/* FlinkConfigLoader.filterCmdArgs: "-D k=v" (two words) and "-Dk=v" (one word) are kept. */
static enum fmw_err filter_dynamic(const struct cmdline *cl, size_t from, size_t end, json_t *props)
{
    for (size_t i = from; i < end; i++) {
        const char *t = cl->words[i].text;
        const char *prop = NULL;
        if (strcmp(t, "-D") == 0 && i + 1 < end)
            prop = cl->words[++i].text;
        else if (strncmp(t, "-D", 2) == 0 && t[2])
            prop = t + 2;
        else if ((strcmp(t, "--configDir") == 0 || strcmp(t, "-c") == 0) && i + 1 < end)
            i++;
        if (prop && json_array_append_new(props, fmw_json_text(prop)) != 0)
            return FMW_ENOMEM;
    }
    return FMW_OK;
}

static bool has_dynamic(const struct cmdline *cl, size_t from, size_t end)
{
    for (size_t i = from; i < end; i++) {
        if (strncmp(cl->words[i].text, "-D", 2) == 0)
            return true;
    }
    return false;
}

static enum fmw_err note(json_t *notes, const char *text)
{
    return json_array_append_new(notes, fmw_json_text(text)) ? FMW_ENOMEM : FMW_OK;
}

enum fmw_err fmw_launch_dynamic_props(const struct cmdline *cl, const struct launch *l,
                                      struct fmw_flink_version v, json_t *props, json_t *notes)
{
    size_t end = l->end;
    switch (l->kind) {
    case L_ENTRY_SAJ:
    case L_SCRIPT_SAJ:
    case L_JAVA:
    case L_ENTRY_TM:
    case L_SCRIPT_TM:
    case L_K8S_TM:
    case L_JAVA_TM:
        return filter_dynamic(cl, l->rest, end, props);
    case L_K8S_JM:
        if (fmw_flink_version_cmp(v, FMW_FLINK_LINE(1, 13)) < 0)
            return FMW_OK;
        return filter_dynamic(cl, l->rest, end, props);
    case L_ENTRY_JM:
    case L_SCRIPT_JM: {
        if (!has_dynamic(cl, l->rest, end))
            return FMW_OK;
        size_t start = jm_dynamic_start(cl, l);
        bool accepted = fmw_flink_version_cmp(v, FMW_FLINK_LINE(1, 15)) >= 0 && start < end;
        bool forwarded = accepted && jm_script_forwards(v);
        if (!accepted)
            return note(notes,
                        "jobmanager.sh ignores these -D args (it wants a bare -D, Flink 1.15+)");
        if (!forwarded)
            return note(notes, "-D args reach memory sizing only from 1.16.3/1.17.2 (FLINK-32909)");
        return filter_dynamic(cl, start, end, props);
    }
    case L_NONE:
    case L_OTHER:
        break;
    }
    return FMW_OK;
}
