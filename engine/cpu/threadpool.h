/* threadpool.h: a fixed pool of worker threads running one parallel-for at a time.
 * The calling thread takes part, so a pool of n threads uses n-1 workers. */
#ifndef ROSA_THREADPOOL_H
#define ROSA_THREADPOOL_H

typedef struct rosa__pool rosa__pool;
/* fn(ctx, task, thread): task in [0, ntasks), thread in [0, nthreads) unique per running thread */
typedef void (*rosa__pool_fn)(void *ctx, int task, int thread);

rosa__pool *rosa__pool_new(int nthreads);   /* NULL on failure */
void rosa__pool_free(rosa__pool *p);
int rosa__pool_size(const rosa__pool *p);
void rosa__pool_run(rosa__pool *p, int ntasks, rosa__pool_fn fn, void *ctx);
/* on = 1: between jobs the workers spin instead of sleeping, until on = 0 (a GPU forward pass
 * holds them hot so that each ROSA layer's automata step starts without a wake-up) */
void rosa__pool_hot(rosa__pool *p, int on);
#endif
