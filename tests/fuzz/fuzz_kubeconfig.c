/*
 * YAML read as Kubernetes reads it (pkg/kube/yaml.c: libyaml events, uninstrumented, turned into
 * JSON by our code with Kubernetes' scalar typing, anchors and aliases bounded), then used twice:
 * as a kubeconfig (current context, cluster, user, base64 "-data" fields, file references) and as
 * manifests holding ConfigMaps (the CLI's --configmap files), which are then looked up.
 *
 * The kubeconfig is read from a memfd, since the client takes a path. Paths named inside it are
 * read as the daemon would; standard input is /dev/null so that none can block.
 */
#include "tests/fuzz/fuzz.h"

#include "pkg/kube/kube.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

static int g_fd = -1;
static char g_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
        dup2(null, 0);
        close(null);
    }
    g_fd = memfd_create("fuzz-kubeconfig", 0);
    if (g_fd < 0)
        abort();
    snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* As a kubeconfig file. */
    if (ftruncate(g_fd, 0) != 0 || pwrite(g_fd, data, size, 0) != (ssize_t)size)
        abort();
    struct fmw_kube_client *client = NULL;
    struct fmw_diag d = FMW_DIAG_INIT;
    enum fmw_err err = fmw_kube_client_new(g_path, &client, &d);
    if (err == FMW_OK) {
        const char *server = fmw_kube_client_server(client);
        FUZZ_CHECK(server != NULL);
        size_t n = strlen(server);
        FUZZ_CHECK(n == 0 || server[n - 1] != '/');
        fmw_kube_client_free(client);
    } else {
        FUZZ_CHECK(client == NULL);
    }
    fmw_diag_cleanup(&d);

    /* As manifests with ConfigMaps. */
    json_t *docs = NULL;
    err = fmw_kube_yaml_load((const char *)data, size, &docs, &d);
    if (err == FMW_OK) {
        FUZZ_CHECK(json_is_array(docs));
        /* What we produce must be valid JSON for the rest of the pipeline. */
        char *text = json_dumps(docs, JSON_COMPACT | JSON_ENCODE_ANY);
        FUZZ_CHECK(text != NULL);
        json_error_t jerr;
        json_t *back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        FUZZ_CHECK(back != NULL);
        json_decref(back);
        free(text);
        struct fmw_cm_static *cms = fmw_cm_static_new();
        FUZZ_CHECK(cms != NULL);
        if (fmw_cm_static_add(cms, docs, &d) == FMW_OK) {
            struct fmw_cm_source src;
            fmw_cm_static_source(cms, &src);
            static const char *const names[] = {"flink-config", "", "a"};
            for (size_t i = 0; i < 3; i++) {
                json_t *cm = NULL;
                struct fmw_diag d2 = FMW_DIAG_INIT;
                if (src.get(src.ctx, i ? "flink" : NULL, names[i], &cm, &d2) == FMW_OK) {
                    FUZZ_CHECK(json_is_object(cm));
                    json_decref(cm);
                }
                fmw_diag_cleanup(&d2);
            }
        }
        fmw_cm_static_free(cms);
    } else {
        FUZZ_CHECK(docs == NULL || json_is_array(docs));
    }
    json_decref(docs);
    fmw_diag_cleanup(&d);
    return 0;
}
