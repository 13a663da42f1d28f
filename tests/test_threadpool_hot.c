/* test_threadpool_hot.c: the CPU worker pool (engine/cpu/threadpool.c): every task of a job runs
 * exactly once, over many back-to-back jobs, with the pool sleeping between jobs and held hot
 * (rosa__pool_hot: spinning, as during a GPU forward pass); a pool freed while hot still
 * joins its workers (the test would hang otherwise). */
#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "cpu/threadpool.h"
#include "testutil.h"

typedef struct {
    atomic_int *hits;
} job;

static void task(void *vctx, int t, int thread) {
    job *j = vctx;
    (void)thread;
    atomic_fetch_add(&j->hits[t], 1);
}

static void run_jobs(rosa__pool *p, int njobs) {
    enum { NT = 97 };
    atomic_int hits[NT];
    for (int k = 0; k < njobs; k++) {
        job j = {.hits = hits};
        for (int i = 0; i < NT; i++) atomic_init(&hits[i], 0);
        rosa__pool_run(p, NT, task, &j);
        for (int i = 0; i < NT; i++) ck_assert_int_eq(atomic_load(&hits[i]), 1);
    }
}

START_TEST(tasks_run_once_sleeping_and_hot) {
    rosa__pool *p = rosa__pool_new(4);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(rosa__pool_size(p), 4);
    run_jobs(p, 200);
    usleep(20000); /* long enough for the workers to fall asleep */
    run_jobs(p, 20);
    rosa__pool_hot(p, 1);
    run_jobs(p, 200);
    usleep(20000); /* hot: the workers keep spinning, the next job still runs */
    run_jobs(p, 20);
    rosa__pool_hot(p, 0);
    usleep(20000);
    run_jobs(p, 20);
    rosa__pool_hot(p, 1);
    rosa__pool_free(p); /* joins spinning workers */
}
END_TEST

int main(void) {
    Suite *s = suite_create("threadpool_hot");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tasks_run_once_sleeping_and_hot);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
