/* test_threadpool.c: the engine's parallel-for (engine/cpu/threadpool.c): every task of a
 * region runs exactly once and the region returns only after all have finished, for regions
 * back to back (workers still spinning), after pauses longer than the spin (workers asleep),
 * with fewer tasks than threads, one task, none, and on a pool of one thread. */
#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cpu/threadpool.h"
#include "testutil.h"

typedef struct {
    atomic_int *runs;    /* [ntasks] times each task ran */
    atomic_int threads;  /* bit per thread id seen */
    int nthreads;
} ctx_t;

static void task(void *vc, int t, int thread) {
    ctx_t *c = vc;
    ck_assert_int_ge(thread, 0);
    ck_assert_int_lt(thread, c->nthreads);
    atomic_fetch_or(&c->threads, 1 << thread);
    /* a little work, so that the caller's wait for the workers is exercised */
    volatile unsigned x = 0;
    for (int i = 0; i < 200 * (t % 7); i++) x += (unsigned)i;
    atomic_fetch_add(&c->runs[t], 1);
}

static void check_region(rosa__pool *p, int ntasks) {
    ctx_t c = {.runs = calloc((size_t)ntasks + 1, sizeof(atomic_int)), .nthreads = rosa__pool_size(p)};
    ck_assert_ptr_nonnull(c.runs);
    rosa__pool_run(p, ntasks, task, &c);
    for (int t = 0; t < ntasks; t++) ck_assert_int_eq(atomic_load(&c.runs[t]), 1);
    free(c.runs);
}

START_TEST(every_task_once) {
    for (int n = 1; n <= 4; n++) {
        rosa__pool *p = rosa__pool_new(n);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(rosa__pool_size(p), n);
        check_region(p, 0);
        for (int rep = 0; rep < 600; rep++) check_region(p, 1 + rep % 37); /* back to back */
        for (int rep = 0; rep < 5; rep++) { /* after the workers went to sleep */
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
            check_region(p, 1 + rep);
            check_region(p, 200);
        }
        rosa__pool_free(p);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("threadpool");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, every_task_once);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
