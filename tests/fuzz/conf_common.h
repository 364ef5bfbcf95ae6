/*
 * What the configuration drivers do with a parsed configuration: every typed getter of the
 * JobManager memory options, and the resolver of several Flink lines and legacy-heap readings,
 * as the webhook would after reading a ConfigMap.
 */
#ifndef FMW_FUZZ_CONF_COMMON_H
#define FMW_FUZZ_CONF_COMMON_H

#include "tests/fuzz/fuzz.h"

#include "pkg/flinkconf/flinkconf.h"
#include "pkg/jmmem/jmmem.h"
#include "pkg/memsize/memsize.h"

static const char *const FUZZ_SIZE_KEYS[] = {
    FMW_JM_PROCESS,   FMW_JM_FLINK,        FMW_JM_HEAP,         FMW_JM_OFF_HEAP,
    FMW_JM_METASPACE, FMW_JM_OVERHEAD_MIN, FMW_JM_OVERHEAD_MAX, FMW_JM_LEGACY_HEAP,
};

static inline void fuzz_exercise_conf(const struct fmw_conf *conf, unsigned variant)
{
    for (size_t i = 0; i < sizeof FUZZ_SIZE_KEYS / sizeof FUZZ_SIZE_KEYS[0]; i++) {
        struct fmw_diag d = FMW_DIAG_INIT, cause = FMW_DIAG_INIT;
        uint64_t v = 0;
        bool present = false;
        if (fmw_conf_get_memsize(conf, FUZZ_SIZE_KEYS[i], 0, &v, &present, &d, &cause) == FMW_OK)
            FUZZ_CHECK(v <= FMW_MEMSIZE_MAX);
        else
            FUZZ_CHECK(fmw_diag_msg(&d)[0] != '\0');
        fmw_diag_cleanup(&d);
        fmw_diag_cleanup(&cause);
    }
    struct fmw_diag d = FMW_DIAG_INIT;
    float f;
    bool b, present;
    int32_t i32;
    (void)fmw_conf_get_float(conf, FMW_JM_OVERHEAD_FRACTION, 0.1f, &f, &present, &d);
    fmw_diag_cleanup(&d);
    (void)fmw_conf_get_bool(conf, FMW_JM_DIRECT_LIMIT, false, &b, &present, &d);
    fmw_diag_cleanup(&d);
    (void)fmw_conf_get_int(conf, FMW_JM_LEGACY_HEAP_MB, 0, &i32, &present, &d);
    fmw_diag_cleanup(&d);

    static const struct fmw_flink_version lines[] = {
        {1, 11, -1}, {1, 17, 2}, {1, 20, -1}, {2, 0, -1}};
    static const enum fmw_legacy_heap legacy[] = {FMW_LEGACY_HEAP, FMW_LEGACY_PROCESS,
                                                  FMW_LEGACY_NONE};
    struct fmw_jm_input in = {conf, lines[variant % 4], legacy[(variant / 4) % 3],
                              (variant / 12) % 2 ? "1g" : NULL};
    struct fmw_jm_result r;
    fmw_jm_result_init(&r);
    enum fmw_err err = fmw_jmmem_resolve(&in, &r, &d);
    if (err == FMW_OK) {
        /* Flink's invariant: the parts add up to the total process memory. */
        const struct fmw_jm_spec *s = &r.spec;
        FUZZ_CHECK(s->heap + s->off_heap == s->total_flink);
        FUZZ_CHECK(s->total_flink + s->metaspace + s->overhead == s->total_process);
        struct fmw_buf block;
        fmw_buf_init(&block, 1 << 16);
        FUZZ_CHECK(fmw_jmmem_format_block(s, &block) == FMW_OK);
        fmw_buf_free(&block);
    } else {
        FUZZ_CHECK(err == FMW_ECONFIG || err == FMW_EINVAL || err == FMW_EOVERFLOW);
        FUZZ_CHECK(fmw_diag_msg(&d)[0] != '\0');
    }
    fmw_diag_cleanup(&d);
    fmw_jm_result_cleanup(&r);
}

/* A small number from the input's bytes, to vary the Flink line and legacy mode. */
static inline unsigned fuzz_variant(const uint8_t *data, size_t size)
{
    unsigned h = 0;
    for (size_t i = 0; i < size && i < 64; i++)
        h = h * 31 + data[i];
    return h % 24;
}

#endif
