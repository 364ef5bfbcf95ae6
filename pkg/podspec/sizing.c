/*
 * Sizing from the pod (podspec.h, enum fmw_sizing): the words, the process size set as the
 * webhook's -D sets it, and the process sizes Flink accepts for a configuration, which the
 * webhook and `flink-memory resolve --from-limit` add to Flink's message when the pod's size is
 * refused.
 */
#include "pkg/podspec/podspec_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool fmw_sizing_parse(const char *text, enum fmw_sizing *v)
{
    if (text && strcmp(text, "from-config") == 0)
        *v = FMW_SIZING_CONFIG;
    else if (text && strcmp(text, "from-limit") == 0)
        *v = FMW_SIZING_LIMIT;
    else if (text && strcmp(text, "from-request") == 0)
        *v = FMW_SIZING_REQUEST;
    else
        return false;
    return true;
}

const char *fmw_sizing_name(enum fmw_sizing v)
{
    return v == FMW_SIZING_LIMIT     ? "from-limit"
           : v == FMW_SIZING_REQUEST ? "from-request"
                                     : "from-config";
}

const char *fmw_process_key(enum fmw_role role)
{
    return role == FMW_ROLE_TASKMANAGER ? FMW_TM_PROCESS : FMW_JM_PROCESS;
}

void fmw_own_properties_line(enum fmw_role role, char out[FMW_OWN_LINE_MAX])
{
    snprintf(out, FMW_OWN_LINE_MAX, "%s: ${" FMW_SIZE_ENV "}b", fmw_process_key(role));
}

char *fmw_without_line(const char *value, const char *line, bool *had)
{
    size_t len = strlen(line);
    char *out = malloc(strlen(value) + 1);
    if (!out)
        return NULL;
    *had = false;
    size_t w = 0; /* every line kept is copied with the break after it */
    for (const char *p = value; *p;) {
        size_t k = strcspn(p, "\n");
        bool brk = p[k] == '\n';
        if (k == len && strncmp(p, line, len) == 0) {
            *had = true;
            if (w > 0)
                w--; /* the break before it; the one after it stays */
            else
                k += brk; /* the first line: the break after it */
        } else {
            memcpy(out + w, p, k + brk);
            w += k + brk;
            k += brk;
        }
        p += k;
    }
    out[w] = '\0';
    return out;
}

enum fmw_err fmw_set_process_size(struct fmw_conf *conf, enum fmw_role role, uint64_t bytes)
{
    char value[32];
    snprintf(value, sizeof value, "%" PRIu64 "b", bytes);
    return fmw_conf_set(conf, fmw_str_c(fmw_process_key(role)), fmw_str_c(value), FMW_CONF_STRING,
                        0);
}

/* Does Flink accept the probe's configuration with its process size at `bytes`? Resolved
 * with `total` set to the total process memory; false also when out of memory. */
static bool accepts(const struct fmw_size_probe *probe, struct fmw_conf *scratch, uint64_t bytes,
                    bool set, uint64_t *total)
{
    if (set && fmw_set_process_size(scratch, probe->role, bytes) != FMW_OK)
        return false;
    struct fmw_diag d = FMW_DIAG_INIT;
    bool ok;
    if (probe->role == FMW_ROLE_TASKMANAGER) {
        struct fmw_tm_input in = probe->tm;
        struct fmw_tm_result r;
        in.conf = scratch;
        fmw_tm_result_init(&r);
        ok = fmw_tmmem_resolve(&in, &r, &d) == FMW_OK;
        *total = r.spec.total_process;
        fmw_tm_result_cleanup(&r);
    } else {
        struct fmw_jm_input in = probe->jm;
        struct fmw_jm_result r;
        in.conf = scratch;
        fmw_jm_result_init(&r);
        ok = fmw_jmmem_resolve(&in, &r, &d) == FMW_OK;
        *total = r.spec.total_process;
        fmw_jm_result_cleanup(&r);
    }
    fmw_diag_cleanup(&d);
    return ok;
}

/*
 * Flink's sizes are linear in the process size between fixed bounds (the overhead and the
 * network memory clamped to their ranges, fixed components below), so the sizes it accepts form
 * one interval: from some smallest size up, or a window where fixed sizes (Total Flink Memory,
 * heap, task heap and managed memory) leave the overhead only its range. One size that works:
 * the configuration's own where it fixes one (fine-grained sizes or Total Flink Memory, without a
 * process size), else 1 TiB. The low end lies below it, and the high end, where the refused size
 * lies above it, between the two; each is found by bisection (about 40 resolutions, microseconds).
 */
enum fmw_err fmw_accepted_process_sizes(const struct fmw_size_probe *probe, uint64_t refused,
                                        uint64_t *min, uint64_t *max)
{
    *min = *max = 0;
    const char *key = fmw_process_key(probe->role);
    const struct fmw_conf *conf =
        probe->role == FMW_ROLE_TASKMANAGER ? probe->tm.conf : probe->jm.conf;
    struct fmw_conf scratch;
    fmw_conf_init(&scratch);
    enum fmw_err err = fmw_conf_copy(&scratch, conf);
    uint64_t works = 0, total = 0;
    if (!err && !fmw_conf_has(conf, key) && accepts(probe, &scratch, 0, false, &total))
        works = total;
    if (!err && !(works && accepts(probe, &scratch, works, true, &total)))
        works = accepts(probe, &scratch, (uint64_t)1 << 40, true, &total) ? (uint64_t)1 << 40 : 0;
    if (!err && works) {
        uint64_t lo = 0, hi = works; /* lo refused (or 0), hi accepted */
        while (hi - lo > 1) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (accepts(probe, &scratch, mid, true, &total))
                hi = mid;
            else
                lo = mid;
        }
        *min = hi;
        if (refused > works) {
            lo = works;   /* accepted */
            hi = refused; /* refused */
            while (hi - lo > 1) {
                uint64_t mid = lo + (hi - lo) / 2;
                if (accepts(probe, &scratch, mid, true, &total))
                    lo = mid;
                else
                    hi = mid;
            }
            *max = lo;
        }
    }
    fmw_conf_cleanup(&scratch);
    return err;
}
