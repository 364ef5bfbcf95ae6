/*
 * The standard config.yaml reader: libyaml events (uninstrumented) flattened by our code, with
 * duplicate keys, nesting and the Core schema typing; then every getter and the resolver.
 */
#include "tests/fuzz/conf_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fmw_conf conf;
    struct fmw_diag d = FMW_DIAG_INIT;
    struct fmw_buf detail;
    fmw_conf_init(&conf);
    fmw_buf_init(&detail, 1 << 16);
    enum fmw_err err = fmw_conf_parse_yaml(&conf, (const char *)data, size, &d, &detail);
    if (err == FMW_OK) {
        FUZZ_CHECK(conf.len <= FMW_CONF_MAX_ENTRIES);
        for (size_t i = 0; i < conf.len; i++)
            FUZZ_CHECK(conf.entries[i].key && conf.entries[i].text);
        fuzz_exercise_conf(&conf, fuzz_variant(data, size));
    } else {
        FUZZ_CHECK(err == FMW_EINVAL || err == FMW_ETOOBIG || err == FMW_ENOMEM);
        FUZZ_CHECK(err != FMW_EINVAL || fmw_diag_msg(&d)[0] != '\0');
    }
    fmw_diag_cleanup(&d);
    fmw_buf_free(&detail);
    fmw_conf_cleanup(&conf);
    return 0;
}
