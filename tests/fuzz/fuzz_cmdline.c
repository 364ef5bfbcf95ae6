/*
 * Container command lines as the webhook reads them (pkg/podspec/words.c, launch.c, jvm.c):
 * $(VAR) expansion, `sh -c` scripts split into words (quotes, backslashes, $VAR, operators),
 * launcher detection, the "-D" properties that reach Flink, and JVM memory flags scanned and
 * rewritten.
 *
 * Input: the elements of command and args separated by NUL bytes; an element "--" ends command.
 */
#include "tests/fuzz/fuzz.h"

#include "pkg/podspec/podspec_int.h"

#include <jansson.h>

static const struct env_var ENV[] = {
    {"FLINK_PROPERTIES", "jobmanager.memory.process.size: 2g", 0},
    {"JVM_ARGS", "-Xmx1g -XX:MaxMetaspaceSize=256m", 1},
    {"NESTED", "$(JVM_ARGS) $HOME", 2},
    {"FROM_SECRET", NULL, 3},
};
#define NENV (sizeof ENV / sizeof ENV[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    json_t *container = json_object();
    json_t *command = json_array(), *args = json_array();
    json_t *target = command;
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\0')
            continue;
        size_t n = i - start;
        if (n == 2 && memcmp(data + start, "--", 2) == 0)
            target = args;
        else
            json_array_append_new(target, json_stringn((const char *)data + start, n));
        start = i + 1;
    }
    json_object_set_new(container, "command", command); /* stolen */
    json_object_set_new(container, "args", args);

    struct cmdline cl;
    enum fmw_err err = fmw_cmdline_build(container, ENV, NENV, &cl);
    if (err == FMW_OK) {
        for (size_t i = 0; i < cl.nwords; i++) {
            FUZZ_CHECK(cl.words[i].text != NULL);
            FUZZ_CHECK(cl.words[i].elem < cl.nelems);
            FUZZ_CHECK(cl.words[i].start <= cl.words[i].end);
            if (!cl.elems[cl.words[i].elem].expanded)
                FUZZ_CHECK(cl.words[i].end <= strlen(cl.elems[cl.words[i].elem].str));
        }
        struct launch l;
        fmw_launch_detect(&cl, &l);
        FUZZ_CHECK(l.end <= cl.nwords);
        if (fmw_launch_role(&l) != 0) {
            static const struct fmw_flink_version lines[] = {{1, 12, -1}, {1, 15, 0},  {1, 16, 2},
                                                             {1, 17, 2},  {1, 20, -1}, {2, 1, -1}};
            for (size_t v = 0; v < sizeof lines / sizeof lines[0]; v++) {
                json_t *props = json_array(), *notes = json_array();
                FUZZ_CHECK(fmw_launch_dynamic_props(&cl, &l, lines[v], props, notes) == FMW_OK);
                json_decref(props);
                json_decref(notes);
            }
        }
    } else {
        FUZZ_CHECK(err == FMW_ETOOBIG || err == FMW_ENOMEM);
    }
    fmw_cmdline_cleanup(&cl);
    json_decref(container);

    /* The whole input as one JVM options text (e.g. _JAVA_OPTIONS). */
    char *opts = fuzz_cstr(data, size);
    bool found[FLAG_COUNT];
    uint64_t bytes[FLAG_COUNT];
    fmw_jvm_scan(opts, found, bytes);
    static const uint64_t want[FLAG_COUNT] = {1073741824u, 1073741824u, 268435456u, 134217728u};
    static const bool set[FLAG_COUNT] = {true, true, true, false};
    char *rewritten = fmw_jvm_rewrite(opts, want, set);
    if (rewritten) {
        /* After the rewrite, the flags we set win with the values we asked for. */
        fmw_jvm_scan(rewritten, found, bytes);
        for (int f = 0; f < FLAG_COUNT; f++) {
            if (set[f] && found[f])
                FUZZ_CHECK(bytes[f] == want[f]);
        }
        free(rewritten);
    }
    char *subst = fmw_envsubst(opts, ENV, NENV, NULL);
    free(subst);
    free(opts);
    return 0;
}
