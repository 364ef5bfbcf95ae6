/* The oracle through the built CLI (cli.h). */
#include "tests/oracle/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the child prints is small; a case whose output passes this is a mismatch of its own. */
#define CLI_OUTPUT_MAX (1u << 20)

bool oracle_cli_init(struct oracle_cli *cli, const char *path)
{
    *cli = (struct oracle_cli){.path = path};
    const char *tmp = getenv("TMPDIR");
    int n =
        snprintf(cli->dir, sizeof cli->dir, "%s/fmw-oracle-cli-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (n < 0 || (size_t)n >= sizeof cli->dir || !mkdtemp(cli->dir)) {
        fprintf(stderr, "oracle-runner: cannot make a scratch directory: %s\n", strerror(errno));
        return false;
    }
    char conf[300];
    snprintf(conf, sizeof conf, "%s/conf", cli->dir);
    if (mkdir(conf, 0700) != 0) {
        fprintf(stderr, "oracle-runner: cannot make %s: %s\n", conf, strerror(errno));
        return false;
    }
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "oracle-runner: %s is not an executable: %s\n", path, strerror(errno));
        return false;
    }
    return true;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void oracle_cli_cleanup(struct oracle_cli *cli)
{
    if (cli->dir[0])
        (void)nftw(cli->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Writes `len` bytes of `text` as conf/`name`; false with errno on failure. */
static bool write_conf_file(const struct oracle_cli *cli, const char *name, const char *text,
                            size_t len)
{
    char path[400];
    snprintf(path, sizeof path, "%s/conf/%s", cli->dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(text, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* A JSON string with no NUL byte inside (one that can be an argument), or NULL. */
static const char *arg_string(json_t *s)
{
    const char *v = json_string_value(s);
    return v && strlen(v) == json_string_length(s) ? v : NULL;
}

/* The argument vector, each string our own copy (freed by free_args). */
struct args {
    char *v[512];
    size_t n;
    bool full;
};

static void add_arg(struct args *a, char *s)
{
    if (!s || a->n + 1 >= sizeof a->v / sizeof a->v[0]) {
        free(s);
        a->full = true;
        return;
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static char *joined(const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *s = malloc(la + ls + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, sep, ls);
        memcpy(s + la + ls, b, lb + 1);
    }
    return s;
}

static void free_args(struct args *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
}

/*
 * The command line for `c`, as a user would type it. The case id picks between the two -D
 * spellings and between a conf dir with and without a trailing '/', so both are exercised.
 * False when the case holds a NUL byte in an argument (no command line can carry it).
 */
static bool build_args(const struct oracle_cli *cli, json_t *c, struct args *a)
{
    json_int_t id = json_integer_value(json_object_get(c, "id"));
    const char *role = json_string_value(json_object_get(c, "role"));
    const char *target = json_string_value(json_object_get(c, "legacy_target"));
    add_arg(a, strdup(cli->path));
    add_arg(a, strdup("resolve"));
    add_arg(a, strdup("--conf-dir"));
    add_arg(a, joined(cli->dir, "/conf", id % 2 ? "/" : ""));
    add_arg(a, strdup("--flink-version"));
    add_arg(a, strdup(json_string_value(json_object_get(c, "line"))));
    add_arg(a, strdup("--role"));
    add_arg(a, strdup(role ? role : "jobmanager"));
    if (target) {
        add_arg(a, strdup("--legacy-heap-as"));
        add_arg(a, strdup(target));
    }
    size_t i;
    json_t *kv;
    json_array_foreach(json_object_get(c, "dynamic"), i, kv)
    {
        const char *k = arg_string(json_array_get(kv, 0));
        const char *v = arg_string(json_array_get(kv, 1));
        if (!k || !v)
            return false;
        char *pair = joined(k, "=", v);
        if (pair && (id + (json_int_t)i) % 3 == 0) {
            add_arg(a, joined("-D", pair, "")); /* -Dk=v, one argument */
            free(pair);
        } else {
            add_arg(a, strdup("-D"));
            add_arg(a, pair);
        }
    }
    const char *name;
    json_t *value;
    json_object_foreach(json_object_get(c, "env"), name, value)
    {
        const char *v = arg_string(value);
        if (!v)
            return false;
        add_arg(a, strdup("--env"));
        add_arg(a, joined(name, "=", v));
    }
    add_arg(a, strdup("--output"));
    add_arg(a, strdup("json"));
    return true;
}

/* Writes the case's conf dir: its own file (none: the empty one the harness writes) and the
 * second file when it has one; the other name is removed. */
static bool write_conf_dir(const struct oracle_cli *cli, json_t *c, struct fmw_buf *why)
{
    char path[400];
    const char *names[] = {"flink-conf.yaml", "config.yaml"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/conf/%s", cli->dir, names[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            goto fail;
    }
    const char *line = json_string_value(json_object_get(c, "line"));
    json_t *file = json_object_get(c, "file");
    bool ok;
    if (json_is_object(file)) {
        json_t *text = json_object_get(file, "text");
        ok = write_conf_file(cli, json_string_value(json_object_get(file, "name")),
                             json_string_value(text), json_string_length(text));
    } else {
        /* As the harness: an empty flink-conf.yaml in 1.x, an empty config.yaml in 2.x. */
        ok =
            write_conf_file(cli, line && line[0] >= '2' ? "config.yaml" : "flink-conf.yaml", "", 0);
    }
    json_t *second = json_object_get(c, "second_file");
    if (ok && json_is_object(second)) {
        json_t *text = json_object_get(second, "text");
        ok = write_conf_file(cli, json_string_value(json_object_get(second, "name")),
                             json_string_value(text), json_string_length(text));
    }
    if (ok)
        return true;
fail:
    (void)fmw_buf_addf(why, "cli: cannot write the conf dir: %s\n", strerror(errno));
    return false;
}

/* Runs the command; its stdout into `out`, its stderr into the scratch dir. -1: not run. */
static int run(const struct oracle_cli *cli, char *const argv[], struct fmw_buf *out,
               struct fmw_buf *why)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        (void)fmw_buf_addf(why, "cli: pipe: %s\n", strerror(errno));
        return -1;
    }
    char err_path[400];
    snprintf(err_path, sizeof err_path, "%s/stderr", cli->dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    /* The CLI is given everything on its command line; nothing comes from our environment. */
    static char path_var[] = "PATH=/usr/bin:/bin";
    char *envp[] = {path_var, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        (void)fmw_buf_addf(why, "cli: cannot start %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    char chunk[8192];
    ssize_t n;
    bool too_big = false;
    while ((n = read(fds[0], chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR)) {
        if (n > 0 && fmw_buf_add(out, chunk, (size_t)n) != FMW_OK)
            too_big = true;
    }
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (too_big)
        (void)fmw_buf_addf(why, "cli: more than %u bytes on stdout\n", CLI_OUTPUT_MAX);
    if (!WIFEXITED(status)) {
        (void)fmw_buf_addf(why, "cli: killed by signal %d\n", WTERMSIG(status));
        return -1;
    }
    return too_big ? -1 : WEXITSTATUS(status);
}

/* The child's stderr, for a mismatch's report (at most 2 KB). */
static void add_stderr(const struct oracle_cli *cli, struct fmw_buf *why)
{
    char path[400], text[2048];
    snprintf(path, sizeof path, "%s/stderr", cli->dir);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    if (n)
        (void)fmw_buf_addf(why, "  stderr: %s\n", text);
}

void oracle_json_differs(struct fmw_buf *why, const char *prefix, const char *key,
                         const char *a_label, json_t *a, const char *b_label, json_t *b)
{
    char *as = a ? json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *bs = b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    (void)fmw_buf_addf(why, "%s%s: %s %s, %s %s\n", prefix, key, a_label, as ? as : "(absent)",
                       b_label, bs ? bs : "(absent)");
    free(as);
    free(bs);
}

/* Flink's result against the CLI's JSON: every field both have; the fields only the harness
 * writes (the exception's class, CPU cores, slots and resources, which the CLI prints inside
 * the dynamic configs) are left to the in-process comparison. */
static bool same_fields(json_t *want, json_t *got, struct fmw_buf *why)
{
    static const char *const harness_only[] = {"exception", "cpu_cores", "slots", "resources"};
    bool ok = true;
    const char *key;
    json_t *w;
    json_object_foreach(want, key, w)
    {
        bool skip = false;
        for (size_t i = 0; i < sizeof harness_only / sizeof harness_only[0]; i++)
            skip = skip || strcmp(key, harness_only[i]) == 0;
        json_t *g = json_object_get(got, key);
        if (skip || (json_is_null(w) && (!g || json_is_null(g))) || (g && json_equal(w, g)))
            continue;
        oracle_json_differs(why, "cli: ", key, "flink", w, "cli", g);
        ok = false;
    }
    return ok;
}

bool oracle_cli_same(struct oracle_cli *cli, json_t *c, struct fmw_buf *why)
{
    struct args a = {.n = 0};
    if (!build_args(cli, c, &a)) {
        free_args(&a);
        cli->skipped++;
        return true;
    }
    bool ok = false;
    struct fmw_buf out;
    fmw_buf_init(&out, CLI_OUTPUT_MAX);
    json_t *got = NULL;
    if (a.full) {
        (void)fmw_buf_addf(why, "cli: cannot build the command line\n");
        goto done;
    }
    if (!write_conf_dir(cli, c, why))
        goto done;
    cli->run++;
    int status = run(cli, a.v, &out, why);
    if (status < 0)
        goto done;
    json_error_t jerr;
    got = json_loadb(out.data ? out.data : "", out.len, 0, &jerr);
    json_t *want = json_object_get(c, "result");
    const char *want_error = json_string_value(json_object_get(want, "error"));
    if (!json_is_object(got)) {
        (void)fmw_buf_addf(why, "cli: exit %d, stdout is not a JSON object (%s): %s\n", status,
                           jerr.text, fmw_buf_cstr(&out));
    } else if (want_error) {
        const char *got_error = json_string_value(json_object_get(got, "error"));
        ok = status == 1 && got_error && strcmp(got_error, want_error) == 0;
        if (!ok)
            (void)fmw_buf_addf(why, "cli: Flink failed with \"%s\"\n  cli exit %d: %s\n",
                               want_error, status, fmw_buf_cstr(&out));
    } else if (status != 0) {
        (void)fmw_buf_addf(why, "cli: Flink resolved, the cli exit %d: %s\n", status,
                           fmw_buf_cstr(&out));
    } else {
        ok = same_fields(want, got, why);
    }
    if (!ok) {
        (void)fmw_buf_addf(why, "  command:");
        for (size_t i = 0; i < a.n; i++)
            (void)fmw_buf_addf(why, " '%s'", a.v[i]);
        (void)fmw_buf_addf(why, "\n");
        add_stderr(cli, why);
    }
done:
    json_decref(got);
    fmw_buf_free(&out);
    free_args(&a);
    return ok;
}
