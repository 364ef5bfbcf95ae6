/*
 * The per-request jansson arena (admission_int.h). jansson's allocator hooks are process-wide,
 * so they are installed once and dispatch per thread: with no arena scope open on the calling
 * thread they are plain malloc and free.
 */
#include "pkg/admission/admission_int.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_DISABLED 1
#endif
#endif

#ifdef ARENA_DISABLED
void fmw_arena_begin(void)
{
}
void fmw_arena_stop_allocating(void)
{
}
void fmw_arena_end(void)
{
}
bool fmw_arena_holds_all(void)
{
    return false;
}
#else

#define ALIGN      16u
#define CHUNK_MIN  ((size_t)64 << 10)
#define CHUNK_KEEP ((size_t)1 << 20)  /* the largest block a thread keeps between requests */
#define ARENA_MAX  ((size_t)64 << 20) /* past this, a request's parse allocates from malloc */

struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(ALIGN) unsigned char data[];
};

struct arena {
    struct chunk *head; /* newest (and largest) first */
    size_t total;
    bool in_scope, allocating;
    bool fell_back;   /* an allocation of this scope came from malloc */
    uintptr_t lo, hi; /* bounds of all chunks, a quick "not ours" for free */
};

static _Thread_local struct arena tl_arena;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;

static void *arena_alloc(struct arena *a, size_t n)
{
    if (n > ARENA_MAX)
        return NULL;
    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    struct chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = c ? c->size * 2 : CHUNK_MIN;
        while (size < n)
            size *= 2;
        if (a->total + size > ARENA_MAX)
            return NULL;
        c = malloc(sizeof *c + size);
        if (!c)
            return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->total += size;
        uintptr_t lo = (uintptr_t)c->data, hi = lo + size;
        if (!a->lo || lo < a->lo)
            a->lo = lo;
        if (hi > a->hi)
            a->hi = hi;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static bool arena_owns(const struct arena *a, const void *p)
{
    uintptr_t u = (uintptr_t)p;
    if (u < a->lo || u >= a->hi)
        return false;
    for (const struct chunk *c = a->head; c; c = c->next)
        if (u >= (uintptr_t)c->data && u < (uintptr_t)c->data + c->size)
            return true;
    return false;
}

/* Keeps the newest chunk when it is small enough, emptied; frees the rest. */
static void arena_reset(struct arena *a, bool keep)
{
    struct chunk *c = a->head, *kept = NULL;
    if (keep && c && c->size <= CHUNK_KEEP) {
        kept = c;
        c = c->next;
    }
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = kept;
    a->total = kept ? kept->size : 0;
    a->lo = kept ? (uintptr_t)kept->data : 0;
    a->hi = kept ? (uintptr_t)kept->data + kept->size : 0;
    if (kept) {
        kept->used = 0;
        kept->next = NULL;
    }
}

static void *hook_malloc(size_t n)
{
    struct arena *a = &tl_arena;
    if (a->allocating) {
        void *p = arena_alloc(a, n ? n : 1);
        if (p)
            return p;
        a->fell_back = true;
    }
    return malloc(n ? n : 1); /* a pointer unlike any other, as the arena gives */
}

static void hook_free(void *p)
{
    struct arena *a = &tl_arena;
    if (a->in_scope && arena_owns(a, p))
        return; /* taken back all at once by fmw_arena_end() */
    free(p);
}

/* A thread that ends gives its chunks back. */
static void on_thread_exit(void *arg)
{
    arena_reset(arg, false);
}

static void install(void)
{
    pthread_key_create(&exit_key, on_thread_exit);
    json_set_alloc_funcs(hook_malloc, hook_free);
}

void fmw_arena_begin(void)
{
    pthread_once(&once, install);
    struct arena *a = &tl_arena;
    if (!a->head)
        pthread_setspecific(exit_key, a);
    a->in_scope = true;
    a->allocating = true;
    a->fell_back = false;
}

bool fmw_arena_holds_all(void)
{
    const struct arena *a = &tl_arena;
    return a->in_scope && !a->fell_back;
}

void fmw_arena_stop_allocating(void)
{
    tl_arena.allocating = false;
}

void fmw_arena_end(void)
{
    struct arena *a = &tl_arena;
    a->allocating = false;
    a->in_scope = false;
    arena_reset(a, true);
}
#endif
