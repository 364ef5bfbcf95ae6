/*
 * The worker pool: a FIFO of jobs under one mutex, a condition variable to wake a worker, and a
 * list of finished jobs that the loop thread collects when the eventfd says there is something.
 * The queue needs no cap of its own: a connection carries one request at a time, so jobs never
 * outnumber connections, which are capped.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pkg/obs/obs.h"
#include "pkg/server/server_int.h"

/* Jobs kept for reuse, and the largest response buffer kept with one; beyond these, memory goes
 * back to the allocator so an idle server stays small. */
#define POOL_MAX_FREE_JOBS 16
#define POOL_KEEP_BODY     (16 * 1024)

void srv_wake(struct fmw_server *srv)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake anyway. */
    while (write(srv->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

void srv_job_run(struct srv_job *job)
{
    const struct srv_route *route = job->route;
    /* A request that waited past its deadline for a worker is answered at once: the client has
     * given up or is about to, and running it would only delay the requests behind it. */
    if (fmw_now_ns() >= job->req.deadline_ns) {
        job->resp.status = 503;
        job->resp.content_type = "application/json";
        fmw_buf_reset(&job->resp.body);
        job->handler_err = fmw_buf_adds(&job->resp.body, "{\"error\":\"overloaded\"}\n");
        return;
    }
    job->handler_err = route->fn(route->ctx, &job->req, &job->resp);
}

static void *worker_main(void *arg)
{
    struct fmw_server *srv = arg;
    for (;;) {
        pthread_mutex_lock(&srv->queue_mu);
        while (!srv->queue_head && !srv->stopping)
            pthread_cond_wait(&srv->queue_cond, &srv->queue_mu);
        struct srv_job *job = srv->queue_head;
        if (!job) {
            pthread_mutex_unlock(&srv->queue_mu);
            break; /* stopping and nothing left */
        }
        srv->queue_head = job->next;
        if (!srv->queue_head)
            srv->queue_tail = NULL;
        pthread_mutex_unlock(&srv->queue_mu);
        fmw_obs_gauge_add(srv->m.queue_depth, -1);

        job->next = NULL;
        srv_job_run(job);

        pthread_mutex_lock(&srv->done_mu);
        bool was_empty = srv->done_head == NULL;
        if (srv->done_tail)
            srv->done_tail->next = job;
        else
            srv->done_head = job;
        srv->done_tail = job;
        pthread_mutex_unlock(&srv->done_mu);
        /* One wake-up per batch: the loop takes the whole list each time. */
        if (was_empty)
            srv_wake(srv);
    }
    return NULL;
}

enum fmw_err srv_pool_start(struct fmw_server *srv, struct fmw_diag *diag)
{
    enum fmw_err err = FMW_OK;
    sigset_t all, old;
    srv->threads = fmw_calloc(srv->cfg.workers, sizeof(*srv->threads));
    if (!srv->threads)
        return fmw_diag_set(diag, FMW_ENOMEM, "out of memory");
    /* Workers inherit a mask blocking every signal, so SIGTERM and friends reach the thread
     * that runs the loop (and the program's handlers) and never interrupt a handler. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < srv->cfg.workers; i++) {
        int rc = pthread_create(&srv->threads[i], NULL, worker_main, srv);
        if (rc != 0) {
            err = fmw_diag_set(diag, FMW_EIO, "cannot start worker thread: %s", strerror(rc));
            break;
        }
        srv->n_threads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

void srv_pool_stop(struct fmw_server *srv)
{
    pthread_mutex_lock(&srv->queue_mu);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->queue_cond);
    pthread_mutex_unlock(&srv->queue_mu);
    for (unsigned i = 0; i < srv->n_threads; i++)
        pthread_join(srv->threads[i], NULL);
    srv->n_threads = 0;
    free(srv->threads);
    srv->threads = NULL;
}

struct srv_job *srv_job_get(struct fmw_server *srv)
{
    struct srv_job *job = srv->free_jobs;
    if (job) {
        srv->free_jobs = job->next;
        srv->n_free_jobs--;
    } else {
        job = calloc(1, sizeof(*job));
        if (!job)
            return NULL;
        fmw_buf_init(&job->resp.body, srv->cfg.max_response);
    }
    job->next = NULL;
    job->conn = NULL;
    job->route = NULL;
    memset(&job->req, 0, sizeof(job->req));
    job->remote[0] = '\0';
    srv_job_reset_response(srv, job);
    return job;
}

void srv_job_reset_response(struct fmw_server *srv, struct srv_job *job)
{
    fmw_buf_reset(&job->resp.body);
    job->resp.body.max = srv->cfg.max_response; /* a handler may have changed it */
    job->resp.status = 200;
    job->resp.content_type = "application/json";
    job->handler_err = FMW_OK;
}

void srv_job_put(struct fmw_server *srv, struct srv_job *job)
{
    if (!job)
        return;
    if (srv->n_free_jobs >= POOL_MAX_FREE_JOBS) {
        fmw_buf_free(&job->resp.body);
        free(job);
        return;
    }
    if (job->resp.body.alloc > POOL_KEEP_BODY) {
        fmw_buf_free(&job->resp.body);
        fmw_buf_init(&job->resp.body, srv->cfg.max_response);
    }
    job->next = srv->free_jobs;
    srv->free_jobs = job;
    srv->n_free_jobs++;
}

void srv_pool_submit(struct fmw_server *srv, struct srv_job *job)
{
    job->next = NULL;
    fmw_obs_gauge_add(srv->m.queue_depth, 1);
    pthread_mutex_lock(&srv->queue_mu);
    if (srv->queue_tail)
        srv->queue_tail->next = job;
    else
        srv->queue_head = job;
    srv->queue_tail = job;
    pthread_mutex_unlock(&srv->queue_mu);
    /* Signalled after unlocking: a worker woken while we still hold the mutex would only block
     * on it again, two more context switches when all threads share a core. */
    pthread_cond_signal(&srv->queue_cond);
}

struct srv_job *srv_pool_take_done(struct fmw_server *srv)
{
    pthread_mutex_lock(&srv->done_mu);
    struct srv_job *list = srv->done_head;
    srv->done_head = srv->done_tail = NULL;
    pthread_mutex_unlock(&srv->done_mu);
    return list;
}
