/* pkg/admission private declarations: the per-request arena for jansson (arena.c) and the
 * request body parser and response writer (json.c). */
#ifndef FMW_ADMISSION_INT_H
#define FMW_ADMISSION_INT_H

#include "pkg/base/base.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The request body's parse tree is most of a review's allocations, and jansson spends much of its
 * parse and delete time in malloc and free. Between fmw_arena_begin() and fmw_arena_end(), on the
 * calling thread, jansson allocations come from a bump arena; between begin and end the arena's
 * blocks are never passed to free(), and fmw_arena_end() takes them all back at once. Other
 * threads, and this thread outside the scope, use malloc and free as before.
 *
 * Only the parse allocates from the arena (fmw_arena_begin .. fmw_arena_stop_allocating), so
 * what the rest of the review creates — patch operations, json_dumps() text that callers free()
 * themselves, ConfigMap data the cache keeps — is ordinary heap memory. Every reference into the
 * parse tree must be dropped before fmw_arena_end(). Builds with AddressSanitizer skip the arena,
 * so that the sanitizers keep seeing every allocation.
 */
void fmw_arena_begin(void);
void fmw_arena_stop_allocating(void);
void fmw_arena_end(void);
/*
 * True when every allocation of the scope so far came from the arena (none fell back to malloc
 * past the arena's cap, and the arena is on). A parse tree built then owns no other memory, so
 * fmw_arena_end() alone disposes of it: walking it with json_decref() first only to reach no-op
 * frees was a quarter of a review. That holds while nothing allocated outside the arena is put
 * into the parse tree — the review only reads it.
 */
bool fmw_arena_holds_all(void);

/* Where a body failed to parse: a message, and the line, column and byte offset. */
struct fmw_json_error {
    char text[96];
    int line, column;
    size_t position;
    bool too_many_values; /* refused for FMW_JSON_MAX_VALUES, not for its syntax */
};

/* The most values (objects, arrays, strings, numbers, literals) one request may hold. The
 * largest review in the test data holds 1,767. An env entry is 3 values, 7 with its
 * managedFields entry: a pod of about 2,500 env entries besides its other fields fits. 7 MiB of
 * "{}" holds 2.4 million, which as a tree took 552 MB. Past the cap the parse stops, so at most
 * this many values are ever built: 6 MB of the costliest kind ("{}", 304 bytes each with
 * jansson 2.14), 18 MB for the three reviews that can run at once with the chart's two workers
 * (SECURITY.md, "Budgets"); the request is answered 413. */
#define FMW_JSON_MAX_VALUES 20000

/*
 * Parses `len` bytes of JSON into a NEW jansson tree: accepts exactly what
 * json_loadb(JSON_REJECT_DUPLICATES) accepts (json.c says what that is) and builds an equal tree,
 * faster. NULL with `err` (may be NULL) filled on invalid input or when out of memory.
 */
json_t *fmw_json_loadb(const char *text, size_t len, struct fmw_json_error *err);

/*
 * Appends `j` to `out` exactly as json_dumps(j, JSON_COMPACT) writes it (keys in insertion
 * order), without the intermediate string. FMW_ETOOBIG past the buffer's cap or 2048 levels.
 */
FMW_NODISCARD enum fmw_err fmw_json_dump(const json_t *j, struct fmw_buf *out);

#endif
