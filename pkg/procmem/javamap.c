/*
 * The iteration order of java.util.HashMap (and HashSet, which is one), because Flink prints the
 * dynamic-configs line by walking a HashMap: the order of the "-D" pairs is the map's, and users
 * compare our line with Flink's. JDK 8 to 25 share the layout modelled here: String.hashCode,
 * spread by (h ^ h >>> 16), a power-of-two table that doubles past 3/4 full, nodes appended to
 * their bucket's list and split in order when the table grows.
 */
#include "pkg/procmem/procmem.h"

#include <stdlib.h>

int32_t fmw_java_string_hash(const char *s, size_t len)
{
    /* Over UTF-16 code units, with Java's int arithmetic (wrapping). */
    uint32_t h = 0;
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + len;
    while (p < end) {
        uint32_t cp;
        size_t n = *p < 0x80 ? 1 : fmw_utf8_seq(p, (size_t)(end - p));
        if (n == 0) {
            cp = 0xFFFD;
            n = 1;
        } else if (n == 1) {
            cp = *p;
        } else if (n == 2) {
            cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
        } else if (n == 3) {
            cp = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        } else {
            cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
                 ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
        }
        p += n;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = 31 * h + (0xD800 + (cp >> 10));
            h = 31 * h + (0xDC00 + (cp & 0x3FF));
        } else {
            h = 31 * h + cp;
        }
    }
    return (int32_t)h;
}

/* HashMap.tableSizeFor: the power of two at or above `cap` (1 for 0). */
static size_t table_size_for(size_t cap)
{
    size_t n = 1;
    while (n < cap)
        n <<= 1;
    return n;
}

struct slot {
    uint32_t hash;
    size_t index;
};

static int by_bucket(const void *a, const void *b, size_t mask)
{
    const struct slot *x = a, *y = b;
    size_t bx = x->hash & mask, by = y->hash & mask;
    if (bx != by)
        return bx < by ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

bool fmw_java_hashmap_order(const char *const *keys, size_t n, size_t capacity, size_t *order)
{
    struct slot *slots = calloc(n ? n : 1, sizeof *slots);
    if (!slots) {
        /* Insertion order; the caller's allocation-free fallback. */
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        return false;
    }
    /* new HashMap<>(): table 16 on the first put; new HashMap<>(cap): tableSizeFor(cap). Either
     * way the threshold is 3/4 of the table. */
    size_t table = capacity ? table_size_for(capacity) : 16;
    bool modelled = true;
    for (size_t i = 0; i < n; i++) {
        const char *k = keys[i];
        uint32_t h = (uint32_t)fmw_java_string_hash(k, __builtin_strlen(k));
        slots[i].hash = h ^ (h >> 16);
        slots[i].index = i;
        /* putVal: a bucket that already held 8 nodes is treeified, or the table grows instead
         * while it is under 64 (treeifyBin). */
        size_t in_bucket = 0;
        for (size_t j = 0; j < i; j++)
            in_bucket += (slots[j].hash & (table - 1)) == (slots[i].hash & (table - 1));
        if (in_bucket >= 8) {
            if (table < 64)
                table <<= 1;
            else
                modelled = false;
        }
        if (i + 1 > table / 4 * 3)
            table <<= 1;
    }
    size_t mask = table - 1;
    /* Insertion sort by bucket, stable: n is small (the dynamic configs and resource names). */
    for (size_t i = 1; i < n; i++) {
        struct slot cur = slots[i];
        size_t j = i;
        while (j > 0 && by_bucket(&slots[j - 1], &cur, mask) > 0) {
            slots[j] = slots[j - 1];
            j--;
        }
        slots[j] = cur;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = slots[i].index;
    free(slots);
    return modelled;
}
