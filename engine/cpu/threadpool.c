/* threadpool.c: parallel-for over a fixed set of pthreads (see threadpool.h).
 * Tasks are claimed with an atomic counter, so uneven task costs balance themselves.  A decode
 * step runs a few hundred short parallel regions (the matrix products, and per ROSA layer the
 * automata, which with a GPU backend come between kernels on the GPU), so workers and the
 * caller spin on the job counter for up to SPIN_NS of wall time before sleeping on the
 * condition variable: the fork-join cost between back-to-back regions stays around a
 * microsecond (`rosa-cli bench rosa-step` prints it) while an idle pool still sleeps.  The spin
 * is bounded by time, not by a count of pause instructions, whose cost differs 10x between
 * CPUs; it never yields the core (measured on an oversubscribed host: a waiting thread that
 * called sched_yield lost its core for whole time slices, 3x the wall time of sleeping). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cpu/threadpool.h"

struct rosa__pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    atomic_ulong gen;       /* incremented per job */
    atomic_int stop;
    atomic_int hot;         /* workers spin between jobs without a limit (rosa__pool_hot) */
    rosa__pool_fn fn;
    void *ctx;
    int ntasks;
    atomic_int next;
    atomic_int active;      /* workers still inside the current job */
};

typedef struct { rosa__pool *p; int id; } worker_arg;

#define SPIN_NS 100000L /* 0.1 ms: longer than most gaps between the regions of a step */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Spin until a new job (gen moves away from seen) or stop, or, with gen NULL, until no worker
 * is active; at most SPIN_NS. */
static void spin_wait(const atomic_ulong *gen, unsigned long seen, const atomic_int *stop,
                      const atomic_int *active) {
    long t0 = now_ns();
    for (;;) {
        if (gen ? atomic_load(gen) != seen || atomic_load(stop) : atomic_load(active) <= 0) return;
        if (now_ns() - t0 > SPIN_NS) return;
        cpu_relax();
    }
}

static void run_tasks(rosa__pool *p, int thread) {
    for (;;) {
        int t = atomic_fetch_add(&p->next, 1);
        if (t >= p->ntasks) break;
        p->fn(p->ctx, t, thread);
    }
}

static void *worker(void *a) {
    worker_arg wa = *(worker_arg *)a;
    free(a);
    rosa__pool *p = wa.p;
    unsigned long seen = 0;
    for (;;) {
        /* a hot pool (rosa__pool_hot) keeps spinning past SPIN_NS until the next job */
        do spin_wait(&p->gen, seen, &p->stop, NULL);
        while (atomic_load(&p->hot) && atomic_load(&p->gen) == seen && !atomic_load(&p->stop));
        pthread_mutex_lock(&p->mu);
        while (!atomic_load(&p->stop) && atomic_load(&p->gen) == seen) pthread_cond_wait(&p->cv_work, &p->mu);
        if (atomic_load(&p->stop)) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        seen = atomic_load(&p->gen);
        pthread_mutex_unlock(&p->mu);
        run_tasks(p, wa.id);
        if (atomic_fetch_sub(&p->active, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

rosa__pool *rosa__pool_new(int nthreads) {
    if (nthreads < 1) nthreads = 1;
    rosa__pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    p->th = calloc((size_t)nthreads, sizeof *p->th);
    if (!p->th) { free(p); return NULL; }
    for (int i = 1; i < nthreads; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) { p->n = i; break; }
        a->p = p;
        a->id = i;
        if (pthread_create(&p->th[i], NULL, worker, a) != 0) { free(a); p->n = i; break; }
    }
    return p;
}

void rosa__pool_free(rosa__pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p->th);
    free(p);
}

int rosa__pool_size(const rosa__pool *p) { return p ? p->n : 1; }

void rosa__pool_hot(rosa__pool *p, int on) {
    if (p) atomic_store(&p->hot, on);
}

void rosa__pool_run(rosa__pool *p, int ntasks, rosa__pool_fn fn, void *ctx) {
    if (ntasks <= 0) return;
    if (!p || p->n == 1 || ntasks == 1) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    atomic_store(&p->next, 0);
    atomic_store(&p->active, p->n - 1);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    spin_wait(NULL, 0, NULL, &p->active);
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->active) > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
