/* Private declarations shared by the files of pkg/podspec. */
#ifndef FMW_PODSPEC_INT_H
#define FMW_PODSPEC_INT_H

#include "pkg/flinkconf/flinkconf.h"
#include "pkg/podspec/podspec.h"

/* ---- words: the command line of a container as the shell and the scripts see it ---- */

/* One element of the container's command line: command[i] or args[i]. */
struct elem {
    const char *array; /* "command" or "args" */
    int index;
    const char *str;
    /* A `sh -c` script that Kubernetes' $(VAR) expansion changed: its words' spans are positions
     * in the expanded script and do not map onto `str`. */
    bool expanded;
};

/* One word; `start`/`end` is its raw span in elems[elem].str (whole element unless the element
 * is a `sh -c` script), `text` is the word after quote removal and variable expansion. */
struct word {
    size_t elem;
    size_t start, end;
    char *text;
    bool op;    /* a shell operator (; && || | &): ends a command */
    bool split; /* one of the fields an unquoted $VAR split into: its span is the whole word */
    bool first; /* the first word of a script: a command starts there */
};

/* The container's environment as literal values; `value` NULL when it comes from valueFrom. */
struct env_var {
    const char *name;
    const char *value; /* after Kubernetes' $(VAR) expansion over the entries before it */
    int index;         /* position in the env array, for patches; -1 from envFrom */
    char *owned;       /* value, when expansion changed it */
    bool opaque_ref;   /* the value names a valueFrom variable, kept as $(NAME) in `value` */
};

/*
 * The budget of all $(VAR) and $VAR expansions of one pod (words.c): the bytes substituted for
 * references and the env entries compared by look-ups, summed over env values, command, args,
 * scripts and FLINK_PROPERTIES. Between begin and end an expansion that would exceed it fails
 * with FMW_ETOOBIG (fmw_envsubst with NULL); end says whether that happened. Outside a budget
 * nothing is charged.
 */
#define FMW_EXPAND_MAX_BYTES ((size_t)4 << 20)
#define FMW_EXPAND_MAX_SCANS ((size_t)1 << 24)
/* What a review on the event loop may spend (fmw_cm_source.light): about a millisecond. */
#define FMW_EXPAND_LIGHT_BYTES ((size_t)256 << 10)
#define FMW_EXPAND_LIGHT_SCANS ((size_t)1 << 18)
enum fmw_expand_exhausted {
    FMW_EXPAND_WITHIN,
    FMW_EXPAND_OVER_BYTES,
    FMW_EXPAND_OVER_SCANS,
    FMW_EXPAND_OVER_TIME /* past deadline_ns */
};
/* deadline_ns: CLOCK_MONOTONIC, checked as the work goes (0: none). */
void fmw_expand_budget_begin(size_t bytes, size_t scans, uint64_t deadline_ns);
enum fmw_expand_exhausted fmw_expand_budget_end(void);
/* Work that must not spend the pod's budget (a check that only adds a remark) runs between
 * save and restore under a budget of its own. */
struct fmw_expand_saved {
    bool active;
    enum fmw_expand_exhausted exhausted;
    size_t bytes_left, scans_left, since_clock;
    uint64_t deadline;
};
void fmw_expand_budget_save(struct fmw_expand_saved *s);
void fmw_expand_budget_restore(const struct fmw_expand_saved *s);
/* The deadline of the budget in force (0: none). */
uint64_t fmw_expand_budget_deadline(void);
/* Charges other work of the same kind to the budget (text scanned as `scans`); FMW_ETOOBIG once
 * it is spent. */
FMW_NODISCARD enum fmw_err fmw_expand_charge(size_t bytes, size_t scans);

/* The value of an env entry as the container sees it: $(VAR) of an earlier entry replaced, $$ an
 * escaped $, unknown references kept. *out is NULL when nothing changed. A reference to an entry
 * from valueFrom (its value is not known here) sets *opaque, and *opaque_word too when it starts
 * a word (it could be a JVM flag). */
FMW_NODISCARD enum fmw_err fmw_env_expand(const char *raw, const struct env_var *env, size_t nenv,
                                          char **out, bool *opaque, bool *opaque_word);
void fmw_env_free(struct env_var *env, size_t nenv);

struct cmdline {
    struct elem *elems;
    size_t nelems;
    struct word *words;
    size_t nwords;
    size_t alloc_words;
    bool has_command; /* the container sets `command` (the image ENTRYPOINT does not run) */
    bool has_script;  /* a shell runs a script of the container's (`sh -c`, native-k8s) */
};

/* Builds the words of `container`; `env` expands $(VAR) and, inside scripts, $VAR. */
FMW_NODISCARD enum fmw_err fmw_cmdline_build(json_t *container, const struct env_var *env,
                                             size_t nenv, struct cmdline *cl);
void fmw_cmdline_cleanup(struct cmdline *cl);

/* Last definition of `name`, or NULL. */
const struct env_var *fmw_env_find(const struct env_var *env, size_t nenv, const char *name);

/* envsubst: $NAME and ${NAME} replaced by literal env values (unset → empty). Heap string.
 * `unknown` (may be NULL) is set to the name of the first variable referenced whose value is
 * not known here (valueFrom, or a value naming one), NULL when there is none. */
char *fmw_envsubst(const char *text, const struct env_var *env, size_t nenv, const char **unknown);

/* ---- launchers: how the Flink process is started ---- */

enum launcher {
    L_NONE,
    L_ENTRY_JM, /* docker-entrypoint.sh jobmanager … → jobmanager.sh start-foreground … */
    L_ENTRY_SAJ, /* docker-entrypoint.sh standalone-job … → standalone-job.sh start-foreground … */
    L_SCRIPT_JM,  /* bin/jobmanager.sh start-foreground … */
    L_SCRIPT_SAJ, /* bin/standalone-job.sh start-foreground … */
    L_K8S_JM,     /* kubernetes-jobmanager.sh kubernetes-session|kubernetes-application … */
    L_JAVA,       /* a java command line of the user's starting a JobManager entry point */
    L_ENTRY_TM,   /* docker-entrypoint.sh taskmanager … → taskmanager.sh start-foreground … */
    L_SCRIPT_TM,  /* bin/taskmanager.sh start-foreground … */
    L_K8S_TM,     /* kubernetes-taskmanager.sh … (Flink's native Kubernetes TaskManagers) */
    L_JAVA_TM,    /* a java command line starting a TaskManager runner class */
    L_OTHER       /* clearly another Flink process (history server, SQL gateway) or program */
};

struct launch {
    enum launcher kind;
    bool via_entrypoint; /* docker-entrypoint.sh runs first (it edits the conf file) */
    bool bitnami;        /* Bitnami's image: its entrypoint and run.sh start the script */
    size_t rest;         /* first word after the launcher words */
    size_t end;          /* end of this command's words (a shell operator or the end) */
    size_t java;         /* L_JAVA, L_JAVA_TM: the java word */
    size_t main_class;   /* L_JAVA, L_JAVA_TM: the entry-point class word */
};

void fmw_launch_detect(const struct cmdline *cl, struct launch *l);
/*
 * Bitnami's Flink image without `command`: its ENTRYPOINT (entrypoint.sh run.sh) picks the
 * process by FLINK_MODE (`mode`, default jobmanager) and runs `jobmanager.sh start-foreground`
 * or `standalone-job.sh start-foreground` with the container's args
 * (bitnami/containers bitnami/flink rootfs/opt/bitnami/scripts/flink/run.sh).
 */
void fmw_launch_bitnami(const struct cmdline *cl, const char *mode, struct launch *l);
/* An image of Bitnami's Flink (bitnami/flink, bitnamilegacy/flink, bitnamisecure/flink, any
 * registry). */
bool fmw_launch_bitnami_image(const char *image);
/* The role of the process the launcher starts; 0 for L_NONE and L_OTHER. */
unsigned fmw_launch_role(const struct launch *l);
/* A launcher of the given role that starts through Flink's scripts (BashJavaUtils sizes the JVM
 * from the conf file), not a java command line or kubernetes-taskmanager.sh. */
bool fmw_launch_scripted(const struct launch *l);

/*
 * jobmanager.sh's optional host and web UI port (its arguments after start): one that begins
 * with -D is passed on as `--host -D…` or `--webui-port -D…`, which Flink's parser (commons-cli)
 * reads as an option, so the entrypoint fails with "Missing argument for option: h" (or r) and
 * the JobManager never starts. True, with the reason in `msg`, for such a command line.
 */
bool fmw_launch_jm_args_fatal(const struct cmdline *cl, const struct launch *l,
                              struct fmw_flink_version v, char *msg, size_t size);

/*
 * The "-D key=value" properties that reach the memory calculation (BashJavaUtils) for this
 * launcher and version, in order, appended to `props` as "key=value" strings. Properties given
 * but not forwarded are described in `notes`.
 */
/*
 * Where a "-D" "key=value" pair the webhook adds to the command reaches BashJavaUtils after every
 * other -D (sizing from the pod): *at is the word it goes before (l->end: appended). False where
 * this launcher and line would not pass it on: jobmanager.sh before 1.16.3/1.17.2 (FLINK-32909),
 * or with host and port words that leave no room for a bare -D; other launchers.
 */
bool fmw_launch_follow_at(const struct cmdline *cl, const struct launch *l,
                          struct fmw_flink_version v, size_t *at);

FMW_NODISCARD enum fmw_err fmw_launch_dynamic_props(const struct cmdline *cl,
                                                    const struct launch *l,
                                                    struct fmw_flink_version v, json_t *props,
                                                    json_t *notes);

/* ---- JVM memory flags ---- */

enum jvm_flag { FLAG_XMX, FLAG_XMS, FLAG_METASPACE, FLAG_DIRECT, FLAG_COUNT };

/* Which memory flag a JVM option sets, with the span of its value; false for other options. */
bool fmw_jvm_flag_of(const char *word, enum jvm_flag *flag, size_t *value_at);

/* Canonical spelling of a flag with a byte value, e.g. "-Xmx1073741824". */
void fmw_jvm_flag_format(enum jvm_flag flag, uint64_t bytes, char out[64]);

/* Java's option text of one source with each memory flag rewritten to `want[flag]` (flags whose
 * `set[flag]` is false are left alone), or removed with the blank before it where `want[flag]`
 * is FMW_JVM_REMOVE. Words are split on white space as the scripts do. */
#define FMW_JVM_REMOVE UINT64_MAX
char *fmw_jvm_rewrite(const char *opts, const uint64_t want[FLAG_COUNT],
                      const bool set[FLAG_COUNT]);

/* Finds the last occurrence of each memory flag in `opts`: found[flag], bytes[flag] (bytes is
 * UINT64_MAX when the value is not a size). */
void fmw_jvm_scan(const char *opts, bool found[FLAG_COUNT], uint64_t bytes[FLAG_COUNT]);

#endif

/* Could a line of a conf file, or a -D property, with this key change the process's memory or
 * JVM flags? (Keys of a nested YAML line are their last part: the test is by words.) */
bool fmw_memory_key(const char *key, size_t n);

/* ---- configuration sources ---- */

/*
 * The webhook's own line in FLINK_PROPERTIES, for a JobManager whose jobmanager.sh does not pass
 * -D on but whose docker-entrypoint.sh appends FLINK_PROPERTIES to the image's own conf file and
 * runs envsubst over it at start: "<process key>: ${FLINK_MEMORY_WEBHOOK_SIZE}b". Written into
 * `out` (FMW_OWN_LINE_MAX bytes).
 */
#define FMW_OWN_LINE_MAX 96
void fmw_own_properties_line(enum fmw_role role, char out[FMW_OWN_LINE_MAX]);

/*
 * `value` without every line that is exactly `line` (and the line break before it, or after it
 * when it is the first line); a new string, or NULL when out of memory. *had says whether there
 * was one. The webhook's line is taken out of what is resolved, as its -D is.
 */
char *fmw_without_line(const char *value, const char *line, bool *had);

struct source_in {
    json_t *spec;      /* the pod spec */
    json_t *container; /* the JobManager container */
    const struct env_var *env;
    size_t nenv;
    const struct launch *launch;
    struct fmw_flink_version version;
    const char *ns;
    const char *configmap_annotation; /* "NAME[/KEY]" or NULL */
    const struct fmw_cm_source *src;
    bool runs_script; /* the container runs a script of its own, which may write the conf dir */
    enum fmw_role role;
    bool *yaml_out; /* when not NULL: set to whether the file read is standard YAML */
    /* When not NULL: set to whether docker-entrypoint.sh writes FLINK_PROPERTIES into the file
     * read at start (the image's own, writable). The webhook's own line there
     * (fmw_own_properties_line) is always left out of what is read. */
    bool *properties_write_out;
};

/*
 * Builds the configuration file the JobManager will read, after the entrypoint's edits
 * (FLINK_PROPERTIES where the conf dir is writable), into `conf`. Returns FMW_PLAN_RESOLVED when
 * it has one (the caller resolves it), FMW_PLAN_INVALID when Flink would reject the file itself
 * (`msg` is Flink's text), FMW_PLAN_UNREADABLE when it cannot be known (`msg` says why).
 * `source` describes where it came from; remarks go to `notes`. ENOMEM is reported as
 * UNREADABLE with that reason.
 */
enum fmw_plan_status fmw_source_gather(const struct source_in *in, struct fmw_conf *conf,
                                       char source[FMW_PLAN_TEXT], struct fmw_diag *msg,
                                       json_t *notes);
