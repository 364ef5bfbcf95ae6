/*
 * Small parsers of ours on one line of text: Flink MemorySize, Kubernetes quantities, Java's
 * Float.parseFloat / Integer.parseInt, JVM sizes (-Xmx values), image tags and Flink versions.
 * Properties checked besides memory safety: what parses formats back to the same value.
 */
#include "tests/fuzz/fuzz.h"

#include "pkg/jmmem/jmmem.h"
#include "pkg/memsize/memsize.h"
#include "pkg/podspec/podspec.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fmw_str text = {(const char *)data, size};
    struct fmw_diag d = FMW_DIAG_INIT;
    char out[FMW_MEMSIZE_STRLEN];
    uint64_t bytes = 0, again = 0;

    if (fmw_memsize_parse(text, &bytes, &d) == FMW_OK) {
        FUZZ_CHECK(bytes <= FMW_MEMSIZE_MAX);
        /* MemorySize.toString() is re-parseable and names the same size. */
        fmw_memsize_flink(bytes, out);
        FUZZ_CHECK(fmw_memsize_parse(fmw_str_c(out), &again, NULL) == FMW_OK);
        FUZZ_CHECK(again == bytes);
        fmw_memsize_human(bytes, out);
        FUZZ_CHECK(strlen(out) < FMW_MEMSIZE_STRLEN);
        uint64_t sum = 0;
        (void)fmw_memsize_add(bytes, bytes, &sum);
    } else {
        FUZZ_CHECK(fmw_diag_msg(&d)[0] != '\0');
    }
    fmw_diag_cleanup(&d);

    if (fmw_quantity_parse(text, &bytes, &d) == FMW_OK) {
        FUZZ_CHECK(bytes <= FMW_MEMSIZE_MAX);
        /* The quantity we write reads back as the same number of bytes. */
        fmw_quantity_format(bytes, out);
        FUZZ_CHECK(fmw_quantity_parse(fmw_str_c(out), &again, NULL) == FMW_OK);
        FUZZ_CHECK(again == bytes);
    } else {
        FUZZ_CHECK(fmw_diag_msg(&d)[0] != '\0');
    }
    fmw_diag_cleanup(&d);

    float f = 0;
    if (fmw_java_parse_float(text, &f)) {
        fmw_java_double_str((double)f, out);
        FUZZ_CHECK(strlen(out) < FMW_MEMSIZE_STRLEN);
        uint64_t product = 0;
        enum fmw_err err = fmw_memsize_mul(1677721600u, (double)f, &product);
        if (err == FMW_OK)
            FUZZ_CHECK(product <= FMW_MEMSIZE_MAX);
        else
            FUZZ_CHECK(err == FMW_EINVAL || err == FMW_EOVERFLOW);
        /* Java's Double.toString of the float re-parses to the same float (shortest digits). */
        if (isfinite(f)) {
            float back = 0;
            FUZZ_CHECK(fmw_java_parse_float(fmw_str_c(out), &back));
            FUZZ_CHECK(back == f);
        }
    }
    int32_t i32 = 0;
    (void)fmw_java_parse_int(text, &i32);

    if (fmw_podspec_jvm_size(text, &bytes))
        FUZZ_CHECK(bytes <= FMW_MEMSIZE_MAX);

    /* The image and version parsers take C strings: stop at the first NUL as callers do. */
    char *s = fuzz_cstr(data, size);
    struct fmw_flink_version v;
    if (fmw_podspec_image_version(s, &v))
        FUZZ_CHECK(v.major >= 0 && v.minor >= 0);
    if (fmw_flink_version_parse(s, &v)) {
        FUZZ_CHECK(fmw_flink_version_cmp(v, FMW_FLINK_OLDEST) >= 0);
        FUZZ_CHECK(fmw_flink_version_cmp(v, FMW_FLINK_NEWEST) <= 0);
    }
    free(s);
    return 0;
}
