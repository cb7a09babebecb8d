/* SPDX-License-Identifier: MIT */
/*
 * The thread pool; see pool.h.
 *
 * A run publishes (fn, arg), bumps a generation counter and wakes the
 * workers; each does its part and decrements `pending`; the caller does
 * part 0 and waits for pending to reach 0. Products come every few
 * microseconds during generation, so both sides poll the counters a while
 * before sleeping on a condition variable: a sleep/wake pair per product
 * would cost as much as a small product itself. The mutex only orders the
 * sleeps against the wakes (no lost wake-up): the counters are atomics.
 */
#include "runtime/pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct worker {
    rt_pool *pool;
} worker;

struct rt_pool {
    rt_parallel par; /* what the engine sees; ctx = this pool */
    unsigned n;      /* threads, the caller's included */
    pthread_t *th;   /* [n - 1] */
    worker *w;       /* [n - 1] */
    unsigned started;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    atomic_uint gen;     /* bumped once per run */
    atomic_uint pending; /* workers still in this run */
    atomic_uint next;    /* the next part to hand out */
    atomic_bool stop;
    rt_task_fn fn; /* the current run's task, written before gen */
    void *arg;
};

unsigned
rt_threads_online(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > RT_THREADS_MAX ? RT_THREADS_MAX : (unsigned)n;
}

/* Waits until the generation moves past seen (or stop); returns the new
 * one. */
static unsigned
wait_run(rt_pool *p, unsigned seen)
{
    for (unsigned i = 0; i < RT_POOL_SPIN; i++) {
        unsigned g = atomic_load(&p->gen);
        if (g != seen || atomic_load(&p->stop))
            return g;
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->go, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return atomic_load(&p->gen);
}

/* Runs parts of the current run until none is left. Parts go to whoever
 * asks first: a thread the OS preempts (a shared machine) leaves its
 * share to the others instead of holding up the product's barrier. */
static void
take_parts(rt_pool *p)
{
    unsigned n_parts = p->par.n_parts;
    for (;;) {
        unsigned i = atomic_fetch_add(&p->next, 1);
        if (i >= n_parts)
            return;
        p->fn(p->arg, i, n_parts);
    }
}

static void *
worker_main(void *arg)
{
    worker *w = arg;
    rt_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_run(p, seen);
        if (atomic_load(&p->stop))
            break;
        take_parts(p);
        if (atomic_fetch_sub(&p->pending, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

static void
pool_run(void *ctx, rt_task_fn fn, void *arg)
{
    rt_pool *p = ctx;
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->next, 0);
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1); /* publishes fn and arg (seq_cst) */
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    take_parts(p);
    for (unsigned i = 0; i < RT_POOL_SPIN; i++)
        if (atomic_load(&p->pending) == 0)
            return;
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending) != 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int
rt_pool_new(unsigned n_threads, rt_pool **ret)
{
    if (!ret || n_threads > RT_THREADS_MAX)
        return -EINVAL;
    unsigned n = n_threads == RT_THREADS_AUTO ? rt_threads_online() : n_threads;
    rt_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->n = n;
    p->par = (rt_parallel){ .n_parts = n > 1 ? n * RT_POOL_PARTS : 1, .run = pool_run, .ctx = p };
    atomic_init(&p->gen, 0);
    atomic_init(&p->next, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, false);
    int r = -ENOMEM;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return -ENOMEM;
    }
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n > 1) {
        p->th = calloc(n - 1, sizeof(*p->th));
        p->w = calloc(n - 1, sizeof(*p->w));
        if (!p->th || !p->w)
            goto fail;
        for (unsigned i = 0; i < n - 1; i++) {
            p->w[i] = (worker){ .pool = p };
            int e = pthread_create(&p->th[i], NULL, worker_main, &p->w[i]);
            if (e != 0) {
                r = -e;
                goto fail;
            }
            p->started++;
        }
    }
    *ret = p;
    return 0;
fail:
    rt_pool_free(p);
    return r;
}

unsigned
rt_pool_threads(const rt_pool *p)
{
    return p ? p->n : 1;
}

const rt_parallel *
rt_pool_parallel(const rt_pool *p)
{
    return p ? &p->par : NULL;
}

void
rt_pool_free(rt_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->started; i++)
        pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->go);
    pthread_mutex_destroy(&p->mu);
    free(p->w);
    free(p->th);
    free(p);
}
