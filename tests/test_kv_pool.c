/* test_kv_pool.c: the host bookkeeping of the GPU KV cache (kernels/kv_pool.c), which needs
 * no GPU: page tables of windowed and global layers, all-or-nothing growth, reservations
 * (admission control) and giving pages back. */
#include <check.h>
#include <stdlib.h>

#include "kv_pool.h"
#include "rosa.h"
#include "testutil.h"

static const int WIN[3] = {0, 40, 40}; /* layer 0 global, layers 1-2 windowed, W = 40 */

START_TEST(tables_grow_and_cap) {
    rosa__kvpool p;
    ck_assert_int_eq(rosa__kvpool_init(&p, 100), 0);
    rosa__kvtable t;
    ck_assert_int_eq(rosa__kvtable_init(&t, 3, 16, WIN, 1000), 0);
    ck_assert_int_eq(t.maxp[0], 63);  /* ceil(1000 / 16) */
    ck_assert_int_eq(t.maxp[1], 3);   /* ceil(40 / 16) */
    ck_assert_int_eq(rosa__kvtable_need(&t, WIN, 1), 3);
    int64_t lo, hi;
    ck_assert_int_eq(rosa__kvtable_grow(&t, &p, WIN, 17, &lo, &hi), 0);
    ck_assert_int_eq(rosa__kvtable_pages(&t), 6);  /* 2 pages per layer */
    ck_assert_int_eq(p.nfree, 94);
    ck_assert_int_ge(lo, 0);
    ck_assert_int_ge(hi, lo);
    /* windowed layers stop at ceil(W/P) pages; the global layer keeps growing */
    ck_assert_int_eq(rosa__kvtable_grow(&t, &p, WIN, 500, NULL, NULL), 0);
    ck_assert_int_eq(t.have[0], 32);
    ck_assert_int_eq(t.have[1], 3);
    ck_assert_int_eq(t.have[2], 3);
    /* all page ids distinct and in range */
    int seen[100] = {0};
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < t.have[l]; i++) {
            int32_t id = t.ids[t.off[l] + i];
            ck_assert(id >= 0 && id < 100);
            ck_assert_int_eq(seen[id]++, 0);
        }
    /* beyond the table capacity (63 pages = 1008 slots): refused, nothing changes */
    ck_assert_int_eq(rosa__kvtable_need(&t, WIN, 1009), -1);
    ck_assert_int_eq(rosa__kvtable_grow(&t, &p, WIN, 1009, NULL, NULL), ROSA_ERR_LIMIT);
    ck_assert_int_eq(t.have[0], 32);
    rosa__kvtable_free(&t, &p);
    ck_assert_int_eq(p.nfree, 100);
    rosa__kvpool_free(&p);
}
END_TEST

START_TEST(admission_all_or_nothing) {
    rosa__kvpool p;
    ck_assert_int_eq(rosa__kvpool_init(&p, 10), 0);
    rosa__kvtable a, b;
    ck_assert_int_eq(rosa__kvtable_init(&a, 3, 16, WIN, 1 << 20), 0);
    ck_assert_int_eq(rosa__kvtable_init(&b, 3, 16, WIN, 1 << 20), 0);
    /* a reserves room for 64 tokens: 4 + 3 + 3 = 10 pages, the whole pool */
    ck_assert_int_eq(rosa__kvtable_reserve(&a, &p, WIN, 64), 0);
    ck_assert_int_eq(rosa__kvpool_available(&p), 0);
    /* b cannot take even its first pages; its table is untouched */
    ck_assert_int_eq(rosa__kvtable_grow(&b, &p, WIN, 1, NULL, NULL), ROSA_ERR_LIMIT);
    ck_assert_int_eq(rosa__kvtable_pages(&b), 0);
    ck_assert_int_eq(rosa__kvtable_reserve(&b, &p, WIN, 1), ROSA_ERR_LIMIT);
    /* a grows inside its reservation, to the end */
    ck_assert_int_eq(rosa__kvtable_grow(&a, &p, WIN, 20, NULL, NULL), 0);
    ck_assert_int_eq(rosa__kvtable_grow(&a, &p, WIN, 64, NULL, NULL), 0);
    ck_assert_int_eq(a.reserved, 0);
    ck_assert_int_eq(p.nfree, 0);
    ck_assert_int_eq(rosa__kvtable_grow(&a, &p, WIN, 65, NULL, NULL), ROSA_ERR_LIMIT);
    /* freeing a lets b in */
    rosa__kvtable_free(&a, &p);
    ck_assert_int_eq(p.nfree, 10);
    ck_assert_int_eq(p.reserved, 0);
    ck_assert_int_eq(rosa__kvtable_grow(&b, &p, WIN, 48, NULL, NULL), 0);
    ck_assert_int_eq(rosa__kvtable_pages(&b), 9);
    /* freeing a table that still holds a reservation returns it too */
    ck_assert_int_eq(rosa__kvtable_reserve(&b, &p, WIN, 64), 0);
    ck_assert_int_eq(p.reserved, 1);
    rosa__kvtable_free(&b, &p);
    ck_assert_int_eq(p.reserved, 0);
    ck_assert_int_eq(p.nfree, 10);
    rosa__kvpool_free(&p);
}
END_TEST

START_TEST(device_selection) {
    /* "cuda" is refused with a message when the build or the machine has no CUDA device */
    ck_assert_int_eq(rosa_device_count("cpu"), 1);
    ck_assert_int_ge(rosa_device_count("cuda"), 0);
    ck_assert_int_eq(rosa_device_count("tpu"), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("kv_pool");
    TCase *tc = tcase_create("kv_pool");
    tcase_add_test(tc, tables_grow_and_cap);
    tcase_add_test(tc, admission_all_or_nothing);
    tcase_add_test(tc, device_selection);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
