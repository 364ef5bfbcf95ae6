/* pkg/admission json.c: the request body parser accepts what json_loadb(JSON_REJECT_DUPLICATES)
 * accepts and builds an equal tree, and the writer is json_dumps(JSON_COMPACT) byte for byte — on
 * chosen edge cases and on seeded random mutations. */
#include "pkg/admission/admission_int.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when both parsers agree on `text` (both reject, or equal trees), else 0. */
static int agree(const char *text, size_t len, int *accepted)
{
    json_error_t jerr;
    struct fmw_json_error ferr;
    json_t *want = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *got = fmw_json_loadb(text, len, &ferr);
    int ok = (!want && !got) || (want && got && json_equal(want, got));
    /* json_equal compares reals by value and ignores key order; compare the dumps too, and
     * json.c's writer with jansson's. */
    if (ok && want) {
        char *a = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        char *b = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        struct fmw_buf c;
        fmw_buf_init(&c, 1 << 20);
        ok = a && b && strcmp(a, b) == 0 && fmw_json_dump(got, &c) == FMW_OK &&
             strcmp(a, fmw_buf_cstr(&c)) == 0;
        free(a);
        free(b);
        fmw_buf_free(&c);
    }
    if (!ok)
        fprintf(stderr, "disagree on %.*s: jansson %s, ours %s\n", (int)(len > 200 ? 200 : len),
                text, want ? "accepts" : jerr.text, got ? "accepts" : ferr.text);
    if (accepted)
        *accepted = want != NULL;
    json_decref(want);
    json_decref(got);
    return ok;
}

Test(json, valid_documents_give_equal_trees)
{
    static const char *const docs[] = {
        "{}",
        "[]",
        " \t\r\n{ } ",
        "[1,-1,0,-0,1.5,-2.5e3,1E2,1e-2,0.0]",
        "{\"a\":{\"b\":[true,false,null,\"x\"]},\"c\":\"\"}",
        "[9223372036854775807,-9223372036854775808]",
        "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"]",
        "[\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\",\"\x7f\"]",
        "{\"k\\u00e9y\":1,\"k\\n\":{\"k\\t\":[{\"\\u0041\":2}]}}",
        "[1e-400,123456789012345678901234567890.5]",
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"u\",\"object\":null}}",
        "{\"\\u0001\\u001f\":\"\\u0002\\u007f\\u0080 \\\"q\\\" \\\\ \\/ \\u2028\",\"e\":[[],{}]}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        int accepted = 0;
        cr_expect(agree(docs[i], strlen(docs[i]), &accepted), "%s", docs[i]);
        cr_expect(accepted, "%s", docs[i]);
    }
}

Test(json, invalid_documents_are_rejected_by_both)
{
    static const char *const docs[] = {
        "",
        " ",
        "1",
        "\"s\"",
        "null",
        "{",
        "[",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\"}",
        "{\"a\" 1}",
        "{a:1}",
        "[01]",
        "[1.]",
        "[.5]",
        "[1e]",
        "[-]",
        "[+1]",
        "[tru]",
        "[nul]",
        "[True]",
        "{} x",
        "{}{}",
        "[\"\\u0000\"]",
        "[\"\\ud800\"]",
        "[\"\\udc00\"]",
        "[\"\\ud800\\u0041\"]",
        "[\"\\x\"]",
        "[\"\\u12\"]",
        "[\"a\nb\"]",
        "[\"\xc0\xaf\"]",
        "[\"\xed\xa0\x80\"]",
        "[\"\xf4\x90\x80\x80\"]",
        "[\"\xff\"]",
        "[\"\xe2\x82\"]",
        "[9223372036854775808]",
        "[-9223372036854775809]",
        "[1e400]",
        "[-1e400]",
        "{\"a\":1,\"a\":2}",
        "{\"uid\":\"a\",\"uid\":\"b\"}",
        "{\"\\u0061\":1,\"a\":2}",
        "\xef\xbb\xbf{}",
        "[\"abc",
        "[1 2]",
        "{\"a\":1 \"b\":2}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        int accepted = 1;
        cr_expect(agree(docs[i], strlen(docs[i]), &accepted), "%s", docs[i]);
        cr_expect(!accepted, "%s", docs[i]);
    }
    /* Embedded NUL bytes, which strlen would hide. */
    cr_expect(agree("{\"a\":\"x\0y\"}", 11, NULL));
    cr_expect(agree("{}\0", 3, NULL));
}

Test(json, nesting_limit_is_jansons)
{
    size_t n = JSON_PARSER_MAX_DEPTH + 1;
    char *deep = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        deep[i] = '[';
        deep[2 * n - 1 - i] = ']';
    }
    cr_expect(agree(deep, 2 * n, NULL));         /* one too deep: both reject */
    cr_expect(agree(deep + 1, 2 * n - 2, NULL)); /* at the limit: both accept */
    free(deep);
}

/* xorshift64*: a fixed sequence, so failures repeat. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717u;
}

Test(json, random_mutations_agree)
{
    static const char seed[] =
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":"
        "\"705ab4f5-6393-11e8-b7cc-42010a800002\",\"operation\":\"CREATE\",\"dryRun\":false,"
        "\"object\":{\"metadata\":{\"name\":\"jm\",\"labels\":{\"component\":\"jobmanager\"},"
        "\"annotations\":{\"a/"
        "b\":\"\\u00e9\\n\"}},\"spec\":{\"containers\":[{\"name\":\"jobmanager\","
        "\"image\":\"flink:1.18.1\",\"args\":[\"jobmanager\"],\"env\":[{\"name\":\"FLINK_"
        "PROPERTIES\","
        "\"value\":\"jobmanager.memory.process.size: "
        "2g\\n\"}],\"resources\":{\"limits\":{\"memory\":"
        "\"2Gi\",\"cpu\":1.5},\"requests\":{\"memory\":\"1Gi\"}},\"ports\":[{\"containerPort\":"
        "6123}]}],"
        "\"priority\":-7,\"enableServiceLinks\":true,\"x\":null,\"y\":[1e3,-0.25,[],{}]}}}}";
    static const char pieces[] = "{}[]\",:\\0123456789-+.eEtfnu \t\n\xc3\xa9\xed\xff\x01";
    size_t n = sizeof seed - 1;
    char *buf = malloc(n + 16);
    unsigned accepted = 0, total = 0, bad = 0;
    for (int i = 0; i < 40000; i++) {
        memcpy(buf, seed, n);
        size_t len = n;
        int edits = 1 + (int)(rnd() % 3);
        for (int e = 0; e < edits && len > 1; e++) {
            size_t at = (size_t)(rnd() % len);
            switch (rnd() % 4) {
            case 0: /* replace a byte */
                buf[at] = pieces[rnd() % (sizeof pieces - 1)];
                break;
            case 1: /* delete a byte */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            case 2: /* insert a byte */
                if (len < n + 8) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = pieces[rnd() % (sizeof pieces - 1)];
                    len++;
                }
                break;
            default: /* truncate */
                len = at + 1;
                break;
            }
        }
        int acc = 0;
        if (!agree(buf, len, &acc))
            bad++;
        accepted += (unsigned)acc;
        total++;
    }
    free(buf);
    cr_expect_eq(bad, 0u, "%u of %u mutated documents parsed differently", bad, total);
    cr_expect_gt(accepted, 100u, "the mutations should leave some documents valid");
}
