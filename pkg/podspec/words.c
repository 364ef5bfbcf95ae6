/*
 * A container's command line as words. Kubernetes expands $(VAR) in command and args; a
 * `sh -c` / `bash -c` script is split the way the shell splits it (quotes, escapes, $VAR), and
 * every word remembers its raw span so a flag inside a script can be rewritten in place.
 */
#include "pkg/podspec/podspec_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Caps: a pod spec is user input. */
#define MAX_ELEMS 4096
#define MAX_WORDS 16384

const struct env_var *fmw_env_find(const struct env_var *env, size_t nenv, const char *name)
{
    for (size_t i = nenv; i-- > 0;) {
        if (strcmp(env[i].name, name) == 0)
            return &env[i];
    }
    return NULL;
}

/*
 * What expanding one pod may cost, all expansions together (fmw_expand_budget_begin). Each
 * expanded item is capped on its own (1 MiB), but a pod of a few kilobytes can name a 1 MiB
 * variable thousands of times, or make thousands of look-ups over thousands of entries: the
 * budget bounds the sum. One review runs on one thread, so the budget is the thread's.
 */
static _Thread_local struct {
    bool active;
    enum fmw_expand_exhausted exhausted;
    size_t bytes_left;  /* bytes substituted for references */
    size_t scans_left;  /* env entries compared by look-ups */
    uint64_t deadline;  /* CLOCK_MONOTONIC ns, 0: none */
    size_t since_clock; /* work since the clock was last read */
} budget;

/* The clock is read once per this much work (bytes and scans): about 0.1 ms of it. */
#define CLOCK_EVERY ((size_t)1 << 16)

void fmw_expand_budget_begin(size_t bytes, size_t scans, uint64_t deadline_ns)
{
    budget.active = true;
    budget.exhausted = FMW_EXPAND_WITHIN;
    budget.bytes_left = bytes;
    budget.scans_left = scans;
    budget.deadline = deadline_ns;
    budget.since_clock = 0;
}

void fmw_expand_budget_save(struct fmw_expand_saved *s)
{
    *s = (struct fmw_expand_saved){budget.active,     budget.exhausted,   budget.bytes_left,
                                   budget.scans_left, budget.since_clock, budget.deadline};
}

void fmw_expand_budget_restore(const struct fmw_expand_saved *s)
{
    budget.active = s->active;
    budget.exhausted = s->exhausted;
    budget.bytes_left = s->bytes_left;
    budget.scans_left = s->scans_left;
    budget.since_clock = s->since_clock;
    budget.deadline = s->deadline;
}

uint64_t fmw_expand_budget_deadline(void)
{
    return budget.active ? budget.deadline : 0;
}

static bool past_deadline(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec > budget.deadline;
}

enum fmw_expand_exhausted fmw_expand_budget_end(void)
{
    enum fmw_expand_exhausted e = budget.exhausted;
    budget.active = false;
    budget.exhausted = FMW_EXPAND_WITHIN;
    return e;
}

/* Takes `bytes` and `scans` from the budget; FMW_ETOOBIG once either is spent (and from then on).
 */
static enum fmw_err charge(size_t bytes, size_t scans)
{
    if (!budget.active)
        return FMW_OK;
    if (!budget.exhausted && bytes > budget.bytes_left)
        budget.exhausted = FMW_EXPAND_OVER_BYTES;
    if (!budget.exhausted && scans > budget.scans_left)
        budget.exhausted = FMW_EXPAND_OVER_SCANS;
    if (!budget.exhausted && budget.deadline) {
        budget.since_clock += bytes + scans;
        if (budget.since_clock >= CLOCK_EVERY) {
            budget.since_clock = 0;
            if (past_deadline())
                budget.exhausted = FMW_EXPAND_OVER_TIME;
        }
    }
    if (budget.exhausted)
        return FMW_ETOOBIG;
    budget.bytes_left -= bytes;
    budget.scans_left -= scans;
    return FMW_OK;
}

enum fmw_err fmw_expand_charge(size_t bytes, size_t scans)
{
    return charge(bytes, scans);
}

/* The last definition of `name` in *var (NULL when there is none; its value is NULL when it
 * comes from valueFrom). Charged to the budget: the entries it may compare. */
static enum fmw_err env_lookup(const struct env_var *env, size_t nenv, struct fmw_str name,
                               const struct env_var **var)
{
    *var = NULL;
    enum fmw_err err = charge(0, nenv);
    for (size_t i = nenv; !err && i-- > 0;) {
        if (fmw_str_eq_c(name, env[i].name)) {
            *var = &env[i];
            break;
        }
    }
    return err;
}

/* Appends a variable's value, charged to the budget. */
static enum fmw_err add_value(struct fmw_buf *out, const char *v)
{
    size_t n = strlen(v);
    enum fmw_err err = charge(n, 0);
    return err ? err : fmw_buf_add(out, v, n);
}

static bool is_name_char(int c)
{
    return isalnum(c) || c == '_';
}

char *fmw_envsubst(const char *text, const struct env_var *env, size_t nenv, const char **unknown)
{
    if (unknown)
        *unknown = NULL;
    struct fmw_buf out;
    fmw_buf_init(&out, 1 << 22);
    enum fmw_err err = fmw_buf_add(&out, "", 0);
    for (const char *p = text; *p && !err; p++) {
        if (*p == '$' && (p[1] == '{' || isalpha((unsigned char)p[1]) || p[1] == '_')) {
            bool braced = p[1] == '{';
            const char *n = p + (braced ? 2 : 1);
            const char *e = n;
            while (is_name_char((unsigned char)*e))
                e++;
            if (e > n && (!braced || *e == '}')) {
                const struct env_var *var;
                err = env_lookup(env, nenv, (struct fmw_str){n, (size_t)(e - n)}, &var);
                /* valueFrom, or a value that names one: not what the container gets. */
                if (!err && var && unknown && !*unknown && (!var->value || var->opaque_ref))
                    *unknown = var->name;
                if (!err && var && var->value)
                    err = add_value(&out, var->value);
                p = braced ? e : e - 1;
                continue;
            }
        }
        err = fmw_buf_addc(&out, *p);
    }
    if (err) {
        fmw_buf_free(&out);
        return NULL;
    }
    return fmw_buf_take(&out);
}

/* Kubernetes' $(VAR) expansion of command, args and env values: defined variables are replaced,
 * $$ escapes, unknown references stay as written. *opaque (when given) is set by a reference to a
 * variable from valueFrom. */
static enum fmw_err k8s_expand_ex(struct fmw_buf *out, struct fmw_str s, const struct env_var *env,
                                  size_t nenv, bool *opaque, bool *opaque_word)
{
    enum fmw_err err = FMW_OK;
    for (size_t i = 0; i < s.len && !err; i++) {
        if (s.ptr[i] == '$' && i + 1 < s.len && s.ptr[i + 1] == '$') {
            err = fmw_buf_addc(out, '$');
            i++;
            continue;
        }
        if (s.ptr[i] == '$' && i + 1 < s.len && s.ptr[i + 1] == '(') {
            const char *close = memchr(s.ptr + i + 2, ')', s.len - i - 2);
            if (close) {
                struct fmw_str name = {s.ptr + i + 2, (size_t)(close - s.ptr - i - 2)};
                const struct env_var *var;
                err = env_lookup(env, nenv, name, &var);
                if (err)
                    break;
                const char *v = var ? var->value : NULL;
                if (var && !v && opaque) {
                    *opaque = true;
                    if (i == 0 || isspace((unsigned char)s.ptr[i - 1]))
                        *opaque_word = true;
                }
                if (v) {
                    err = add_value(out, v);
                    i = (size_t)(close - s.ptr);
                    continue;
                }
            }
        }
        err = fmw_buf_addc(out, s.ptr[i]);
    }
    return err;
}

static enum fmw_err k8s_expand(struct fmw_buf *out, struct fmw_str s, const struct env_var *env,
                               size_t nenv)
{
    return k8s_expand_ex(out, s, env, nenv, NULL, NULL);
}

enum fmw_err fmw_env_expand(const char *raw, const struct env_var *env, size_t nenv, char **out,
                            bool *opaque, bool *opaque_word)
{
    *out = NULL;
    if (!strchr(raw, '$'))
        return FMW_OK;
    struct fmw_buf b;
    fmw_buf_init(&b, 1 << 20);
    enum fmw_err err = fmw_buf_add(&b, "", 0);
    if (!err)
        err = k8s_expand_ex(&b, fmw_str_c(raw), env, nenv, opaque, opaque_word);
    if (!err && strcmp(fmw_buf_cstr(&b), raw) != 0) {
        *out = fmw_buf_take(&b);
        if (!*out)
            err = FMW_ENOMEM;
    }
    fmw_buf_free(&b);
    return err;
}

void fmw_env_free(struct env_var *env, size_t nenv)
{
    for (size_t i = 0; env && i < nenv; i++)
        free(env[i].owned);
    free(env);
}

static enum fmw_err add_word(struct cmdline *cl, size_t elem, size_t start, size_t end,
                             struct fmw_buf *text, bool op)
{
    if (cl->nwords >= MAX_WORDS)
        return FMW_ETOOBIG;
    if (cl->nwords == cl->alloc_words) {
        size_t alloc = cl->alloc_words ? cl->alloc_words * 2 : 16;
        struct word *p = realloc(cl->words, alloc * sizeof *p);
        if (!p)
            return FMW_ENOMEM;
        cl->words = p;
        cl->alloc_words = alloc;
    }
    char *t = fmw_buf_take(text);
    if (!t)
        t = fmw_strdup("");
    if (!t)
        return FMW_ENOMEM;
    cl->words[cl->nwords++] = (struct word){elem, start, end, t, op, false, false};
    return FMW_OK;
}

/* The shell's field splitting: an unquoted $VAR whose value has white space makes several words,
 * marked (FIELD_SEP) where split_script built the text. Each gets the raw span of the whole. */
#define FIELD_SEP '\x01'

static enum fmw_err add_fields(struct cmdline *cl, size_t elem, size_t start, size_t end,
                               struct fmw_buf *text)
{
    const char *t = fmw_buf_cstr(text);
    enum fmw_err err = FMW_OK;
    struct fmw_buf one;
    fmw_buf_init(&one, text->max);
    while (*t && !err) {
        const char *e = strchr(t, FIELD_SEP);
        size_t len = e ? (size_t)(e - t) : strlen(t);
        if (len) {
            fmw_buf_reset(&one);
            err = fmw_buf_add(&one, t, len);
            if (!err)
                err = add_word(cl, elem, start, end, &one, false);
            if (!err)
                cl->words[cl->nwords - 1].split = true;
        }
        t += len + (e ? 1 : 0);
    }
    fmw_buf_free(&one);
    return err;
}

/* Splits a shell script into words: quotes, backslashes, $VAR/${VAR}, and operators. */
static enum fmw_err split_script(struct cmdline *cl, size_t elem, const char *s,
                                 const struct env_var *env, size_t nenv)
{
    size_t n = strlen(s), i = 0;
    bool first = true;
    struct fmw_buf w;
    fmw_buf_init(&w, 1 << 20);
    enum fmw_err err = FMW_OK;
    while (i < n && !err) {
        while (i < n && isspace((unsigned char)s[i]))
            i++;
        if (i >= n)
            break;
        size_t start = i;
        if (strchr(";&|", s[i])) {
            size_t len = (i + 1 < n && (s[i + 1] == '&' || s[i + 1] == '|') && s[i] != ';') ? 2 : 1;
            err = fmw_buf_add(&w, s + i, len);
            i += len;
            if (!err)
                err = add_word(cl, elem, start, i, &w, true);
            continue;
        }
        fmw_buf_reset(&w);
        err = fmw_buf_add(&w, "", 0);
        char quote = 0;
        bool split = false;
        while (i < n && !err) {
            char c = s[i];
            if (!quote && (isspace((unsigned char)c) || strchr(";&|", c)))
                break;
            if (quote == '\'') {
                if (c == '\'')
                    quote = 0;
                else
                    err = fmw_buf_addc(&w, c);
                i++;
            } else if (c == '\\' && i + 1 < n && (!quote || strchr("\"\\$`", s[i + 1]))) {
                err = fmw_buf_addc(&w, s[i + 1]);
                i += 2;
            } else if (c == '\'' && !quote) {
                quote = '\'';
                i++;
            } else if (c == '"') {
                quote = quote ? 0 : '"';
                i++;
            } else if (c == '$' &&
                       (s[i + 1] == '{' || isalpha((unsigned char)s[i + 1]) || s[i + 1] == '_')) {
                bool braced = s[i + 1] == '{';
                size_t a = i + (braced ? 2 : 1), e = a;
                while (e < n && is_name_char((unsigned char)s[e]))
                    e++;
                if (e > a && (!braced || (e < n && s[e] == '}'))) {
                    const struct env_var *var;
                    err = env_lookup(env, nenv, (struct fmw_str){s + a, e - a}, &var);
                    const char *v = var ? var->value : NULL;
                    if (!err && v)
                        err = charge(strlen(v), 0);
                    for (; !err && v && *v; v++) {
                        bool sep = !quote && (*v == ' ' || *v == '\t' || *v == '\n');
                        split = split || sep;
                        err = fmw_buf_addc(&w, sep ? FIELD_SEP : *v);
                    }
                    i = braced ? e + 1 : e;
                } else {
                    err = fmw_buf_addc(&w, c);
                    i++;
                }
            } else {
                err = fmw_buf_addc(&w, c);
                i++;
            }
        }
        size_t before = cl->nwords;
        if (!err)
            err = split ? add_fields(cl, elem, start, i, &w)
                        : add_word(cl, elem, start, i, &w, false);
        if (!err && first && cl->nwords > before) {
            cl->words[before].first = true;
            first = false;
        }
    }
    fmw_buf_free(&w);
    return err;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static bool is_shell(const char *word)
{
    const char *b = base_name(word);
    static const char *const SHELLS[] = {"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh"};
    for (size_t i = 0; i < sizeof SHELLS / sizeof SHELLS[0]; i++) {
        if (strcmp(b, SHELLS[i]) == 0)
            return true;
    }
    return false;
}

/* A shell's options, as sh(1) and bash(1) take them before the first operand: clusters of
 * letters after - or + ("-c", "-ec", "-lc", "+x"), "-o name" / "-O name" (o or O last in the
 * cluster takes the next word), bash's long options (--rcfile and --init-file take a file), and
 * "--" or "-" to end them. With -c among them, the first operand is the script. */
struct shell_opts {
    bool active;   /* the words after a shell, before its first operand */
    bool c;        /* -c seen */
    bool want_arg; /* the next word is an option's value */
    bool ended;    /* "--" seen: the next word is the first operand, dash or not */
};

static const char *base_name_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* One word after the shell; true when it is the script. */
static bool shell_opts_feed(struct shell_opts *o, const char *w)
{
    if (o->want_arg) {
        o->want_arg = false;
        return false;
    }
    if (!o->ended && (strcmp(w, "--") == 0 || strcmp(w, "-") == 0)) {
        o->ended = true;
        return false;
    }
    if (!o->ended && (w[0] == '-' || w[0] == '+') && w[1]) {
        if (w[0] == '-' && w[1] == '-') {
            o->want_arg = strcmp(w, "--rcfile") == 0 || strcmp(w, "--init-file") == 0;
            return false;
        }
        if (w[0] == '-' && strchr(w + 1, 'c'))
            o->c = true;
        char last = w[strlen(w) - 1];
        o->want_arg = last == 'o' || last == 'O';
        return false;
    }
    o->active = false;
    return o->c;
}

enum fmw_err fmw_cmdline_build(json_t *container, const struct env_var *env, size_t nenv,
                               struct cmdline *cl)
{
    memset(cl, 0, sizeof *cl);
    json_t *command = json_object_get(container, "command"); /* borrowed */
    json_t *args = json_object_get(container, "args");
    size_t nc = json_is_array(command) ? json_array_size(command) : 0;
    size_t na = json_is_array(args) ? json_array_size(args) : 0;
    cl->has_command = nc > 0;
    if (nc + na > MAX_ELEMS)
        return FMW_ETOOBIG;
    cl->elems = fmw_calloc(nc + na, sizeof *cl->elems);
    if (!cl->elems)
        return FMW_ENOMEM;
    for (size_t i = 0; i < nc + na; i++) {
        json_t *a = i < nc ? json_array_get(command, i) : json_array_get(args, i - nc);
        cl->elems[cl->nelems++] =
            (struct elem){i < nc ? "command" : "args", (int)(i < nc ? i : i - nc),
                          json_is_string(a) ? json_string_value(a) : "", false};
    }
    enum fmw_err err = FMW_OK;
    struct fmw_buf w;
    fmw_buf_init(&w, 1 << 20);
    struct shell_opts sh = {false, false, false, false};
    for (size_t i = 0; i < cl->nelems && !err; i++) {
        fmw_buf_reset(&w);
        err = k8s_expand(&w, fmw_str_c(cl->elems[i].str), env, nenv);
        if (err)
            break;
        const char *text = fmw_buf_cstr(&w);
        if (sh.active && shell_opts_feed(&sh, text)) {
            /* The script may use $(VAR) too: Kubernetes expanded it before the shell runs. */
            char *expanded = fmw_buf_take(&w);
            cl->elems[i].expanded = strcmp(expanded ? expanded : "", cl->elems[i].str) != 0;
            cl->has_script = true;
            err = split_script(cl, i, expanded ? expanded : "", env, nenv);
            free(expanded);
            continue;
        }
        if (!sh.active && is_shell(text))
            sh = (struct shell_opts){true, false, false, false};
        /* flink-docker's docker-entrypoint.sh native-k8s (Flink 1.12.0's native mode): the next
         * argument is run by `bash -c`. */
        if (!sh.active && strcmp(text, "native-k8s") == 0 &&
            (i == 0 ? !cl->has_command
                    : strcmp(base_name_of(cl->elems[i - 1].str), "docker-entrypoint.sh") == 0))
            sh = (struct shell_opts){true, true, false, false};
        err = add_word(cl, i, 0, strlen(cl->elems[i].str), &w, false);
    }
    fmw_buf_free(&w);
    return err;
}

void fmw_cmdline_cleanup(struct cmdline *cl)
{
    for (size_t i = 0; i < cl->nwords; i++)
        free(cl->words[i].text);
    free(cl->words);
    free(cl->elems);
    memset(cl, 0, sizeof *cl);
}
