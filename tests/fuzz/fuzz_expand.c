/*
 * The whole analysis of one JobManager pod (fmw_podspec_plan) on env, command and args the fuzzer
 * writes, with its memory watched: Kubernetes' $(VAR) expansion of env values, command and args,
 * the shell's $VAR expansion of scripts, FLINK_PROPERTIES. However the references nest or repeat,
 * one pod must stay within the expansion budget (pkg/podspec/podspec_int.h): the heap allocated
 * while it is analysed may never pass PEAK_MAX, and nothing may stay allocated afterwards.
 *
 * Input: NUL-separated fields. Up to the first "--": env entries NAME=VALUE (a field without '='
 * is a valueFrom entry of that name); then command elements up to the next "--"; then args.
 */
#include "tests/fuzz/fuzz.h"

#include "pkg/podspec/podspec.h"

#include <jansson.h>
#include <sanitizer/allocator_interface.h>

/* The budget lets 4 MiB be substituted and every expanded item be 1 MiB; words, env values and
 * the patch each hold a copy at most, with their doublings: 48 MiB is far above what a pod in
 * the budget can reach, and far below what one past it did (gigabytes). */
#define PEAK_MAX ((size_t)48 << 20)

static size_t current, peak;

static void on_malloc(const volatile void *ptr, size_t size)
{
    (void)ptr;
    current += size;
    if (current > peak)
        peak = current;
}

static void on_free(const volatile void *ptr)
{
    if (!ptr)
        return;
    size_t size = __sanitizer_get_allocated_size((const void *)ptr);
    current = current > size ? current - size : 0;
}

static enum fmw_err no_configmaps(void *ctx, const char *ns, const char *name, json_t **data,
                                  struct fmw_diag *d)
{
    (void)ctx, (void)ns, (void)name, (void)data, (void)d;
    return FMW_ENOTFOUND;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    json_t *env = json_array(), *command = json_array(), *args = json_array();
    int part = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\0')
            continue;
        const char *f = (const char *)data + start;
        size_t n = i - start;
        start = i + 1;
        if (n == 2 && memcmp(f, "--", 2) == 0 && part < 2) {
            part++;
            continue;
        }
        if (part == 0) {
            const char *eq = memchr(f, '=', n);
            json_t *e = json_object();
            json_object_set_new(e, "name", json_stringn(f, eq ? (size_t)(eq - f) : n));
            if (eq)
                json_object_set_new(e, "value", json_stringn(eq + 1, n - (size_t)(eq - f) - 1));
            else
                json_object_set_new(
                    e, "valueFrom",
                    json_pack("{s:{s:s}}", "fieldRef", "fieldPath", "metadata.name"));
            json_array_append_new(env, e);
        } else {
            json_array_append_new(part == 1 ? command : args, json_stringn(f, n));
        }
    }
    json_t *pod = json_pack("{s:{s:{s:s}},s:{s:[{s:s,s:s,s:o,s:o,s:o,s:{s:{s:s}}}]}}", "metadata",
                            "labels", "component", "jobmanager", "spec", "containers", "name",
                            "jobmanager", "image", "flink:1.18.1", "env", env, "command", command,
                            "args", args, "resources", "limits", "memory", "4Gi");
    FUZZ_CHECK(pod != NULL);

    struct fmw_podspec_options opt = {{1, 20, -1}, FMW_REQUESTS_EQUAL};
    struct fmw_cm_source src = {no_configmaps, NULL, false, NULL, 0};
    size_t before = current;
    peak = current;
    struct fmw_plan plan;
    fmw_plan_init(&plan);
    enum fmw_err err = fmw_podspec_plan(pod, "ns", "", &opt, &src, &plan);
    FUZZ_CHECK(err == FMW_OK || err == FMW_ENOMEM);
    fmw_plan_cleanup(&plan);
    if (peak - before > PEAK_MAX) {
        fprintf(stderr, "one pod's analysis allocated %zu bytes at its peak\n", peak - before);
        abort();
    }
    json_decref(pod);
    return 0;
}
