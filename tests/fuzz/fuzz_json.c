/*
 * The admission request parser and response writer (pkg/admission/json.c), differentially:
 * fmw_json_loadb must accept exactly what json_loadb(JSON_REJECT_DUPLICATES) accepts and build an
 * equal tree, and fmw_json_dump must write what json_dumps(JSON_COMPACT) writes, byte for byte.
 * jansson is the oracle (uninstrumented); json.c is ours.
 *
 * One known difference is left out: jansson skips a raw NUL byte right after a number ("[1\0]"
 * parses as [1]), json.c refuses it. No HTTP client sends raw NULs inside JSON, and refusing is
 * the stricter answer, so inputs holding a raw NUL are only checked for memory safety. The other:
 * json.c refuses more than FMW_JSON_MAX_VALUES values, by design.
 */
#include "tests/fuzz/fuzz.h"

#include "pkg/admission/admission_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    struct fmw_json_error err;
    json_t *got = fmw_json_loadb((const char *)data, size, &err);
    /* Past FMW_JSON_MAX_VALUES json.c stops on purpose (jansson would go on). */
    if (memchr(data, '\0', size) || (!got && err.too_many_values)) {
        json_decref(got);
        return 0;
    }
    json_t *want = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!want != !got) {
        fprintf(stderr, "jansson %s (%s), json.c %s (%s)\n", want ? "accepts" : "rejects",
                want ? "" : jerr.text, got ? "accepts" : "rejects", got ? "" : err.text);
        abort();
    }
    if (want) {
        FUZZ_CHECK(json_equal(want, got));
        char *text = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        struct fmw_buf out;
        fmw_buf_init(&out, 64u << 20);
        enum fmw_err e = fmw_json_dump(got, &out);
        if (text && e == FMW_OK) {
            FUZZ_CHECK(out.len == strlen(text));
            FUZZ_CHECK(memcmp(out.data ? out.data : "", text, out.len) == 0);
        }
        free(text);
        fmw_buf_free(&out);
    }
    json_decref(want);
    json_decref(got);
    return 0;
}
