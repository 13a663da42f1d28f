/* test_pt_golden.c: the real torch.save adapters in ../shared.  Each golden case's
 * rosa_adapters.pt must hold exactly the tensors of its rosa_adapter.safetensors, byte for byte;
 * the demo adapter (no twin) must load with the ROSA tensor names and shapes of the spec. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "tensor_compare.h"
#include "model/tensors.h"
#include "testutil.h"

static void check_case(const char *c, int expect_n) {
    char *pt = tu_path("%s/golden/%s/adapter/rosa_adapters.pt", tu_shared_dir(), c);
    char *st = tu_path("%s/golden/%s/adapter/rosa_adapter.safetensors", tu_shared_dir(), c);
    rosa__tensor_set a, b;
    rosa__tset_init(&a);
    rosa__tset_init(&b);
    char err[512] = "", why[512] = "";
    ck_assert_msg(rosa__pt_load(&a, pt, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(rosa__safetensors_load(&b, st, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.n, expect_n);
    ck_assert_msg(tc_sets_equal(&a, &b, why, sizeof why) == 0, "%s: %s", c, why);
    rosa__tset_free(&a);
    rosa__tset_free(&b);
    free(pt);
    free(st);
}

START_TEST(tiny_post_m4) { check_case("tiny-post-m4", 21); }
END_TEST

START_TEST(tiny_pre_m2) { check_case("tiny-pre-m2", 14); }
END_TEST

START_TEST(demo_copy_model) {
    char *pt = tu_path("%s/demo/copy-model/adapter/rosa_adapters.pt", tu_shared_dir());
    rosa__tensor_set s;
    rosa__tset_init(&s);
    char err[512] = "";
    ck_assert_msg(rosa__pt_load(&s, pt, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(s.n, 7);
    const rosa__tensor *q = rosa__tset_find(&s, "model.layers.1.rosa_q_proj.weight");
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(q->dtype, ROSA_DT_BF16);
    ck_assert_int_eq(q->ndim, 2);
    ck_assert_int_eq(q->shape[0], 136);
    ck_assert_int_eq(q->shape[1], 136);
    ck_assert_uint_eq(q->nbytes, 136 * 136 * 2);
    for (int i = 0; i < s.n; i++) {
        ck_assert_int_eq(s.t[i].dtype, ROSA_DT_BF16);
        ck_assert(s.t[i].ndim == 1 || s.t[i].ndim == 2);
    }
    rosa__tset_free(&s);
    free(pt);
}
END_TEST

int main(void) {
    tu_require_shared("test_pt_golden");
    Suite *s = suite_create("pt_golden");
    TCase *tc = tcase_create("golden");
    tcase_add_test(tc, tiny_post_m4);
    tcase_add_test(tc, tiny_pre_m2);
    tcase_add_test(tc, demo_copy_model);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
