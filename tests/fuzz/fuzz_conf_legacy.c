/*
 * The legacy flink-conf.yaml line parser (GlobalConfiguration's), then every getter and the
 * resolver on what it read. Each line is also applied as a "-D" dynamic property.
 *
 * The text stops at the first NUL byte: every caller hands over a C string (ConfigMap data comes
 * through jansson, which refuses \u0000), and keys are kept as C strings.
 */
#include "tests/fuzz/conf_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    if (nul)
        size = (size_t)(nul - data);
    struct fmw_conf conf;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_conf_init(&conf);
    enum fmw_err err = fmw_conf_parse_legacy(&conf, (const char *)data, size, &d);
    /* The legacy format never fails on content, only at the caps. */
    FUZZ_CHECK(err == FMW_OK || err == FMW_ETOOBIG);
    fmw_diag_cleanup(&d);
    if (err == FMW_OK) {
        struct fmw_conf copy;
        fmw_conf_init(&copy);
        FUZZ_CHECK(fmw_conf_copy(&copy, &conf) == FMW_OK);
        FUZZ_CHECK(copy.len == conf.len);
        fmw_conf_cleanup(&copy);
        /* The same lines as dynamic properties on top, as "-D" arguments would be. */
        size_t start = 0;
        for (size_t i = 0; i <= size && conf.len < 1000; i++) {
            if (i == size || data[i] == '\n') {
                (void)fmw_conf_apply_dynamic(
                    &conf, (struct fmw_str){(const char *)data + start, i - start});
                start = i + 1;
            }
        }
        fuzz_exercise_conf(&conf, fuzz_variant(data, size));
    }
    fmw_conf_cleanup(&conf);
    return 0;
}
