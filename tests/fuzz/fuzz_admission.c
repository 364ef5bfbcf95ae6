/*
 * AdmissionReview handling end to end, exactly as the server and `flink-memory review` run it:
 * request JSON in, response AdmissionReview out, through pod analysis, configuration gathering
 * (both file formats), the resolver and the patch planner.
 *
 * Input: the review JSON, optionally followed by a line "#fmw-configmap" and the text every
 * ConfigMap lookup returns as both flink-conf.yaml and config.yaml (no such line: every ConfigMap
 * is missing; a text starting with "!" makes the lookup fail like an API error).
 *
 * Checked: FMW_OK answers are JSON AdmissionReviews with our uid, a boolean "allowed", a patch
 * that is base64 of a JSON array, and warnings no longer than FMW_WARNING_MAX bytes.
 */
#include "tests/fuzz/fuzz.h"

#include "pkg/admission/admission.h"

#include <jansson.h>
#include <openssl/evp.h>

struct cm_text {
    const char *text;
    size_t len;
    int present;
};

static enum fmw_err get_cm(void *ctx, const char *ns, const char *name, json_t **data,
                           struct fmw_diag *d)
{
    const struct cm_text *cm = ctx;
    FUZZ_CHECK(name != NULL);
    (void)ns;
    if (!cm->present)
        return FMW_ENOTFOUND;
    if (cm->len > 0 && cm->text[0] == '!')
        return fmw_diag_set(d, FMW_ETIMEDOUT, "fuzz: the API did not answer");
    json_t *obj = json_object();
    json_t *s = json_stringn(cm->text, cm->len); /* NULL for text that is not UTF-8 */
    if (s) {
        json_object_set(obj, "flink-conf.yaml", s);
        json_object_set_new(obj, "config.yaml", s);
    }
    *data = obj;
    return FMW_OK;
}

static void check_answer(const char *text, size_t len)
{
    json_error_t jerr;
    json_t *review = json_loadb(text, len, 0, &jerr);
    FUZZ_CHECK(json_is_object(review));
    json_t *resp = json_object_get(review, "response");
    FUZZ_CHECK(json_is_object(resp));
    FUZZ_CHECK(json_is_string(json_object_get(resp, "uid")));
    FUZZ_CHECK(json_is_boolean(json_object_get(resp, "allowed")));
    json_t *patch = json_object_get(resp, "patch");
    if (patch) {
        const char *b64 = json_string_value(patch);
        FUZZ_CHECK(b64);
        size_t n = strlen(b64);
        unsigned char *raw = malloc(n / 4 * 3 + 1);
        FUZZ_CHECK(raw);
        int got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
        FUZZ_CHECK(got >= 0);
        while (got > 0 && raw[got - 1] == '\0')
            got--; /* EVP_DecodeBlock counts the padding */
        json_t *ops = json_loadb((const char *)raw, (size_t)got, 0, &jerr);
        FUZZ_CHECK(json_is_array(ops) && json_array_size(ops) > 0);
        json_decref(ops);
        free(raw);
    }
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(resp, "warnings"), i, w)
    {
        FUZZ_CHECK(json_is_string(w));
        FUZZ_CHECK(strlen(json_string_value(w)) <= FMW_WARNING_MAX);
    }
    json_decref(review);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t review_len;
    struct cm_text cm = {NULL, 0, 0};
    const uint8_t *rest;
    cm.present = fuzz_split(data, size, "\n#fmw-configmap\n", &review_len, &rest, &cm.len);
    cm.text = (const char *)rest;
    struct fmw_cm_source src = {get_cm, &cm};

    struct fmw_admission_config cfg;
    fmw_admission_config_defaults(&cfg);
    unsigned variant = size ? data[size - 1] : 0;
    cfg.mode = variant % 5 == 1 ? FMW_MODE_DRY_RUN : FMW_MODE_ENFORCE;
    cfg.on_invalid = variant % 3 == 1 ? FMW_ON_INVALID_WARN : FMW_ON_INVALID_DENY;
    cfg.workloads = variant % 2 ? FMW_WORKLOADS_PATCH : FMW_WORKLOADS_WARN;
    cfg.podspec.requests = variant % 7 == 3 ? FMW_REQUESTS_KEEP_LOWER : FMW_REQUESTS_EQUAL;

    struct fmw_buf out;
    fmw_buf_init(&out, 7u << 20);
    struct fmw_decision dec;
    struct fmw_diag d = FMW_DIAG_INIT;
    enum fmw_err err =
        fmw_admission_review(&cfg, &src, (const char *)data, review_len, &out, &dec, &d);
    if (err == FMW_OK) {
        check_answer(out.data, out.len);
        FUZZ_CHECK(dec.outcome != NULL);
    } else {
        FUZZ_CHECK(err == FMW_EINVAL || err == FMW_ETOOBIG || err == FMW_ENOMEM);
        FUZZ_CHECK(fmw_diag_msg(&d)[0] != '\0');
    }
    fmw_diag_cleanup(&d);
    fmw_buf_free(&out);
    return 0;
}
