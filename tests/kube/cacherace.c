/*
 * kube-cache-race: pkg/kube/cache.c with a scripted API read in place of the client, driving one
 * interleaving that plain timing cannot: a lookup (L2) that begins while an old read (R0) is in
 * flight, and reaches the cache's lock only after the next read (R1) was sent. L2 must be
 * answered by R1 (sent after it began), never by R0's data.
 *
 *   R0 sent (lookup L0) … W1 begins and waits … L2 begins, held before its lock … R0 answers
 *   "0"; W1 finds it too old and sends R1 … L2 takes the lock … R1 answers "1".
 *
 * Prints what each lookup got; exit status 0 when L0 got "0" and W1 and L2 got "1", 1 otherwise.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* L2's first lock of the cache's mutex waits until R1 is in flight. */
static __thread int held_before_lock;
static sem_t l2_began, r0_answer, r1_sent, r1_answer;
static int hooked_lock(pthread_mutex_t *m)
{
    if (held_before_lock) { /* L2 has taken its start time: the lock is the next step */
        held_before_lock = 0;
        sem_post(&l2_began);
        sem_wait(&r1_sent);
    }
    return pthread_mutex_lock(m);
}
#define pthread_mutex_lock(m) hooked_lock(m)
#include "pkg/kube/cache.c"
#undef pthread_mutex_lock

static int calls;

/* The API read: read n answers {"data":{"v":"n"}}; R0 and R1 are held until the script says. */
enum fmw_err fmw_kube_get(struct fmw_kube_client *cl, const char *path, long timeout_ms,
                          long *status, struct fmw_buf *body, struct fmw_diag *d)
{
    (void)cl, (void)path, (void)timeout_ms, (void)d;
    int n = __atomic_fetch_add(&calls, 1, __ATOMIC_SEQ_CST);
    if (n == 0)
        sem_wait(&r0_answer);
    if (n == 1) {
        sem_post(&r1_sent);
        sem_wait(&r1_answer);
    }
    char b[64];
    snprintf(b, sizeof b, "{\"data\":{\"v\":\"%d\"}}", n);
    *status = 200;
    return fmw_buf_add(body, b, strlen(b));
}

static struct fmw_cm_cache *g_cache;

struct lookup {
    int hold;
    enum fmw_err err;
    char v[16];
    int done;
};

static void *run_lookup(void *arg)
{
    struct lookup *l = arg;
    held_before_lock = l->hold;
    json_t *data = NULL;
    struct fmw_diag d = FMW_DIAG_INIT;
    l->err = fmw_cm_cache_get(g_cache, "ns", "cm", 0, &data, &d);
    const char *v = json_string_value(json_object_get(data, "v"));
    snprintf(l->v, sizeof l->v, "%s", l->err == FMW_OK && v ? v : "-");
    json_decref(data);
    fmw_diag_cleanup(&d);
    __atomic_store_n(&l->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int waiters(void)
{
    pthread_mutex_lock(&g_cache->mu);
    int w = g_cache->head ? g_cache->head->waiters : 0;
    pthread_mutex_unlock(&g_cache->mu);
    return w;
}

int main(void)
{
    sem_init(&l2_began, 0, 0);
    sem_init(&r0_answer, 0, 0);
    sem_init(&r1_sent, 0, 0);
    sem_init(&r1_answer, 0, 0);
    struct fmw_cm_cache_config cfg;
    fmw_cm_cache_config_defaults(&cfg); /* TTL 0 */
    cfg.lookup_timeout_ms = 10000;
    if (fmw_cm_cache_new(NULL, &cfg, NULL, &g_cache) != FMW_OK)
        return 1;
    struct lookup l0 = {0}, w1 = {0}, l2 = {.hold = 1};
    pthread_t t0, t1, t2;
    pthread_create(&t0, NULL, run_lookup, &l0);
    while (__atomic_load_n(&calls, __ATOMIC_SEQ_CST) < 1) /* R0 sent */
        usleep(1000);
    usleep(2000);
    pthread_create(&t1, NULL, run_lookup, &w1);
    while (waiters() < 1) /* W1 waits on R0 */
        usleep(1000);
    usleep(2000);
    pthread_create(&t2, NULL, run_lookup, &l2); /* L2 begins, held before its lock */
    sem_wait(&l2_began);
    sem_post(&r0_answer); /* R0 answers; W1 sends R1, which lets L2 take the lock */
    /* R1 sent (W1 is its sender, no longer a waiter); then L2 waits on it, or an answer from
     * R0's data returns at once instead. */
    while (__atomic_load_n(&calls, __ATOMIC_SEQ_CST) < 2)
        usleep(1000);
    while (waiters() < 1 && !__atomic_load_n(&l2.done, __ATOMIC_SEQ_CST))
        usleep(1000);
    sem_post(&r1_answer);
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    printf("{\"L0\":\"%s\",\"W1\":\"%s\",\"L2\":\"%s\",\"reads\":%d}\n", l0.v, w1.v, l2.v, calls);
    fmw_cm_cache_free(g_cache);
    return strcmp(l0.v, "0") == 0 && strcmp(w1.v, "1") == 0 && strcmp(l2.v, "1") == 0 ? 0 : 1;
}
