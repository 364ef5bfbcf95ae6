/* Flink lines: what a version string names, and how two lines compare. */
#include "pkg/procmem/procmem.h"

#include <stdlib.h>

const struct fmw_flink_version FMW_FLINK_OLDEST = {1, 11, -1};
const struct fmw_flink_version FMW_FLINK_NEWEST = {2, 99, -1};
const struct fmw_flink_version FMW_FLINK_DEFAULT = {1, 20, -1};
const struct fmw_flink_version FMW_FLINK_LATEST = {2, 3, -1};

int fmw_flink_version_cmp(struct fmw_flink_version a, struct fmw_flink_version b)
{
    if (a.major != b.major)
        return a.major < b.major ? -1 : 1;
    return a.minor < b.minor ? -1 : a.minor > b.minor;
}

bool fmw_flink_version_parse(const char *text, struct fmw_flink_version *v)
{
    char *end;
    if (!text || text[0] < '0' || text[0] > '9')
        return false;
    long major = strtol(text, &end, 10);
    if (*end != '.' || end[1] < '0' || end[1] > '9')
        return false;
    long minor = strtol(end + 1, &end, 10);
    long patch = -1;
    /* Anything after the minor must be a patch ("." digits) or a qualifier ("-preview1"). */
    if (*end == '.' && end[1] >= '0' && end[1] <= '9')
        patch = strtol(end + 1, &end, 10);
    if (*end && *end != '-' && *end != '_')
        return false;
    if (major < 0 || major > 99 || minor < 0 || minor > 99 || patch > 999)
        return false;
    struct fmw_flink_version parsed = {(int)major, (int)minor, (int)patch};
    if (fmw_flink_version_cmp(parsed, FMW_FLINK_OLDEST) < 0 ||
        fmw_flink_version_cmp(parsed, FMW_FLINK_NEWEST) > 0)
        return false;
    *v = parsed;
    return true;
}
