/* pkg/admission: decoding, skipping, warnings. The realistic corpus is in tests/admission. */
#include "pkg/admission/admission.h"

#include <criterion/criterion.h>
#include <string.h>

static json_t *review(const char *body, const struct fmw_admission_config *cfg, enum fmw_err *err)
{
    struct fmw_buf out;
    struct fmw_decision dec;
    struct fmw_diag d = FMW_DIAG_INIT;
    fmw_buf_init(&out, 1 << 20);
    *err = fmw_admission_review(cfg, NULL, body, strlen(body), &out, &dec, &d);
    json_t *j = *err ? NULL : json_loads(fmw_buf_cstr(&out), 0, NULL);
    fmw_buf_free(&out);
    fmw_diag_cleanup(&d);
    return j;
}

/* Strict UTF-8 check (the cut must not split a multi-byte character). */
static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xE0) == 0xC0 ? 1
                : (*p & 0xF0) == 0xE0 ? 2
                : (*p & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (n < 0)
            return false;
        p++;
        for (int i = 0; i < n; i++, p++) {
            if ((*p & 0xC0) != 0x80)
                return false;
        }
    }
    return true;
}

#define POD_REVIEW(obj)                                                                            \
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":"   \
    "\"u1\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},\"namespace\":\"n\","    \
    "\"operation\":\"CREATE\",\"object\":" obj "}}"

Test(admission, echoes_uid_and_allows_what_it_skips)
{
    struct fmw_admission_config cfg;
    fmw_admission_config_defaults(&cfg);
    enum fmw_err err;
    json_t *r = review(POD_REVIEW("{\"metadata\":{},\"spec\":{\"containers\":[{\"name\":\"web\","
                                  "\"image\":\"nginx\"}]}}"),
                       &cfg, &err);
    cr_assert_eq(err, FMW_OK);
    json_t *resp = json_object_get(r, "response");
    cr_expect_str_eq(json_string_value(json_object_get(resp, "uid")), "u1");
    cr_expect(json_is_true(json_object_get(resp, "allowed")));
    cr_expect_null(json_object_get(resp, "patch"));
    cr_expect_null(json_object_get(resp, "warnings"));
    json_decref(r);
}

Test(admission, off_mode_does_nothing)
{
    struct fmw_admission_config cfg;
    fmw_admission_config_defaults(&cfg);
    cfg.mode = FMW_MODE_OFF;
    enum fmw_err err;
    json_t *r =
        review(POD_REVIEW("{\"metadata\":{},\"spec\":{\"containers\":[{\"name\":\"jobmanager\","
                          "\"image\":\"flink:1.18.1\",\"args\":[\"jobmanager\"]}]}}"),
               &cfg, &err);
    cr_assert_eq(err, FMW_OK);
    cr_expect_null(json_object_get(json_object_get(r, "response"), "patch"));
    json_decref(r);
}

Test(admission, long_warnings_are_split_between_words_and_lose_nothing)
{
    struct fmw_admission_config cfg;
    fmw_admission_config_defaults(&cfg);
    enum fmw_err err;
    /* An unknown mode value is quoted (up to 32 bytes, which splits a 3-byte euro sign) in a
     * warning; a ConfigMap name of 253 bytes (the longest Kubernetes allows) in the "config not
     * read" one, which cannot fit one warning. */
    char name[254];
    for (size_t i = 0; i < 253; i++)
        name[i] = i % 10 == 9 ? '-' : (char)('a' + i % 10);
    name[253] = '\0';
    char body[4096];
    snprintf(body, sizeof body,
             POD_REVIEW("{\"metadata\":{\"annotations\":{\"flink-memory-webhook/mode\":"
                        "\"\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\"
                        "u20ac\\u20ac\\u20ac\\u20ac\"}},"
                        "\"spec\":{\"containers\":[{\"name\":\"jobmanager\","
                        "\"image\":\"flink:1.18.1\",\"args\":[\"jobmanager\"],"
                        "\"volumeMounts\":[{\"name\":\"v\",\"mountPath\":\"/opt/flink/conf\"}]}],"
                        "\"volumes\":[{\"name\":\"v\",\"configMap\":{\"name\":\"%s\"}}]}}"),
             name);
    json_t *r = review(body, &cfg, &err);
    cr_assert_eq(err, FMW_OK);
    json_t *warnings = json_object_get(json_object_get(r, "response"), "warnings");
    cr_assert_geq(json_array_size(warnings), 3);
    size_t i;
    json_t *w;
    char joined[8192] = "";
    static const char PREFIX[] = "flink-memory-webhook: jobmanager: ";
    json_array_foreach(warnings, i, w)
    {
        const char *s = json_string_value(w);
        cr_expect_leq(strlen(s), FMW_WARNING_MAX, "%s", s);
        cr_expect(utf8_valid(s), "cut on a character boundary: %s", s);
        cr_assert(strncmp(s, PREFIX, 22) == 0, "%s", s);
        if (strncmp(s, PREFIX, strlen(PREFIX)) != 0)
            continue; /* the mode's warning, not the container's */
        /* Pieces after the first start with "... ", pieces before the last end with " ...". */
        const char *t = s + strlen(PREFIX);
        if (strncmp(t, "... ", 4) == 0) {
            t += 4;
            strcat(joined, " ");
        } else if (i > 0) {
            strcat(joined, "\n");
        }
        size_t n = strlen(t);
        if (n >= 4 && strcmp(t + n - 4, " ...") == 0)
            n -= 4;
        strncat(joined, t, n);
    }
    /* The name has no space to split at: it is cut inside, where the join put a space. */
    char squeezed[8192];
    size_t k = 0;
    for (const char *p = joined; *p; p++) {
        if (*p != ' ')
            squeezed[k++] = *p;
    }
    squeezed[k] = '\0';
    cr_expect(strstr(squeezed, name) != NULL, "the whole name survives the split: %s", joined);
    cr_expect(strstr(joined, "cannot be read") != NULL, "%s", joined);
    json_decref(r);
}

Test(admission, malformed_reviews_are_einval)
{
    struct fmw_admission_config cfg;
    fmw_admission_config_defaults(&cfg);
    const char *bad[] = {
        "",
        "null",
        "[]",
        "{\"apiVersion\":\"admission.k8s.io/v1\"}",
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{}}",
        "{\"apiVersion\":\"admission.k8s.io/"
        "v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":5}}",
        "{\"apiVersion\":\"admission.k8s.io/"
        "v2\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"x\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum fmw_err err;
        json_t *r = review(bad[i], &cfg, &err);
        cr_expect_eq(err, FMW_EINVAL, "%s", bad[i]);
        json_decref(r);
    }
}

Test(admission, option_words)
{
    enum fmw_mode m;
    enum fmw_on_invalid o;
    enum fmw_workloads w;
    enum fmw_requests_policy p;
    cr_expect(fmw_mode_parse("dry-run", &m) && m == FMW_MODE_DRY_RUN);
    cr_expect_not(fmw_mode_parse("Enforce", &m));
    cr_expect(fmw_on_invalid_parse("warn", &o) && o == FMW_ON_INVALID_WARN);
    cr_expect(fmw_workloads_parse("patch", &w) && w == FMW_WORKLOADS_PATCH);
    cr_expect(fmw_requests_policy_parse("keep-lower", &p) && p == FMW_REQUESTS_KEEP_LOWER);
    cr_expect_not(fmw_requests_policy_parse(NULL, &p));
}

/* A patch that would pass the response cap (the output buffer's) leaves the pod as written,
 * with a warning, instead of failing the review. */
Test(admission, a_patch_past_the_response_cap_is_dropped_with_a_warning)
{
    struct fmw_admission_config cfg;
    fmw_admission_config_defaults(&cfg);
    static char body[200000];
    char filler[100001];
    memset(filler, 'x', sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    snprintf(body, sizeof body,
             POD_REVIEW("{\"metadata\":{\"labels\":{\"component\":\"jobmanager\"}},\"spec\":{"
                        "\"containers\":[{\"name\":\"jobmanager\",\"image\":\"flink:1.18.1\","
                        "\"args\":[\"jobmanager\"],\"env\":[{\"name\":\"_JAVA_OPTIONS\","
                        "\"value\":\"-Xmx4g -Dpad=%s\"}],"
                        "\"resources\":{\"limits\":{\"memory\":\"4Gi\"}}}]}}"),
             filler);
    struct fmw_decision dec;
    struct fmw_diag d = FMW_DIAG_INIT;
    struct fmw_buf out;
    for (size_t cap = 1 << 20; cap >= (64u << 10); cap >>= 4) {
        fmw_buf_init(&out, cap);
        cr_assert_eq(fmw_admission_review(&cfg, NULL, body, strlen(body), &out, &dec, &d), FMW_OK);
        json_t *r = json_loads(fmw_buf_cstr(&out), 0, NULL);
        json_t *resp = json_object_get(r, "response");
        cr_assert(json_is_true(json_object_get(resp, "allowed")));
        if (cap == 1 << 20) {
            /* Room enough: the patch rewrites the 100 KB _JAVA_OPTIONS. */
            cr_expect_not_null(json_object_get(resp, "patch"));
            cr_expect_str_eq(dec.outcome, "patched");
        } else {
            cr_expect_null(json_object_get(resp, "patch"));
            cr_expect_null(json_object_get(resp, "patchType"));
            cr_expect_str_eq(dec.outcome, "too-large");
            /* Only the one warning, and the audit says what happened: no change claimed. */
            json_t *w = json_object_get(resp, "warnings");
            cr_expect_eq(json_array_size(w), 1);
            const char *only = json_string_value(json_array_get(w, 0));
            cr_expect(only && strstr(only, "64 KiB response cap"), "%s", only ? only : "(none)");
            json_t *audit = json_object_get(resp, "auditAnnotations");
            cr_expect_str_eq(json_string_value(json_object_get(audit, "decision")), "too-large");
            cr_expect_null(json_object_get(audit, "resolved"));
            cr_expect_eq(dec.changes, 0);
        }
        json_decref(r);
        fmw_buf_free(&out);
    }
    fmw_diag_cleanup(&d);
}
