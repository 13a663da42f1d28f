/* test_gpu_budget.c: the CUDA backend's device-memory arithmetic (kernels/cu_budget.c), which
 * is plain C and so tested on every machine: weight arena bytes (a tied lm_head counted once,
 * ROSA and pre_attn extras), KV page size and how many pages a --gpu-memory budget leaves. */
#include <check.h>
#include <stdlib.h>

#include "core/errors.h"
#include "cu_budget.h"
#include "testutil.h"

/* A model struct with only what the arithmetic reads: Qwen3-0.6B's shape (tied embeddings). */
static rosa_model *shape_06b(int rosa_layers, int window, int tied) {
    rosa_model *m = calloc(1, sizeof *m);
    m->C = 1024; m->L = 28; m->Hq = 16; m->Hkv = 8; m->D = 128; m->F = 3072; m->V = 151936;
    m->layer = calloc((size_t)m->L, sizeof *m->layer);
    m->layer_window = calloc((size_t)m->L, sizeof *m->layer_window);
    for (int l = 0; l < m->L; l++) {
        m->layer[l].rosa = l < rosa_layers ? l : -1;
        m->layer_window[l] = l == 0 ? 0 : window;   /* layer 0 global */
    }
    static const char table[2];
    m->embed.w = &table[0];
    m->lm_head.w = tied ? &table[0] : &table[1];
    return m;
}

static void shape_free(rosa_model *m) {
    free(m->layer);
    free(m->layer_window);
    free(m);
}

START_TEST(tied_lm_head_is_counted_once) {
    rosa_model *tied = shape_06b(0, 2048, 1), *untied = shape_06b(0, 2048, 0);
    size_t t = rosa__cu_weights_bytes(tied, 2), u = rosa__cu_weights_bytes(untied, 2);
    /* Qwen3-0.6B has about 0.6e9 parameters with the embedding once: ~1.2 GB in bf16 */
    ck_assert_msg(t > 1150000000u && t < 1250000000u, "0.6B tied in bf16: %zu bytes", t);
    ck_assert_uint_eq(u - t, rosa__cu_align((size_t)151936 * 1024 * 2));
    /* f32 doubles every matrix */
    size_t t32 = rosa__cu_weights_bytes(tied, 4);
    ck_assert_msg(t32 > 2 * t - 2 * 1000000 && t32 < 2 * t, "f32 %zu vs bf16 %zu", t32, t);
    /* the budget: a tied model's pool gets the table's worth of pages more */
    rosa__cu_plan pt, pu;
    size_t budget = (size_t)16 << 30;
    ck_assert_int_eq(rosa__cu_plan_pool(tied, 2, budget, &pt), 0);
    ck_assert_int_eq(rosa__cu_plan_pool(untied, 2, budget, &pu), 0);
    ck_assert_uint_eq(pt.page_bytes, (size_t)CU_PAGE_TOKENS * 8 * 128 * 2);
    ck_assert_uint_eq(pt.npages, (budget - pt.weights - CU_SCRATCH_RESERVE) / (2 * pt.page_bytes));
    ck_assert_uint_ge(pt.npages - pu.npages, (u - t) / (2 * pt.page_bytes));
    ck_assert_uint_le(pt.npages - pu.npages, (u - t) / (2 * pt.page_bytes) + 1);
    shape_free(tied);
    shape_free(untied);
}
END_TEST

START_TEST(rosa_layers_add_four_matrices_and_vectors) {
    rosa_model *plain = shape_06b(0, 2048, 1), *rosa = shape_06b(27, 2048, 1);
    size_t per = rosa__cu_align((size_t)1024 * 1024 * 2) * 4 + rosa__cu_align(1024 * 4) * 2; /* rq rk rv rout, e0 e1 */
    size_t p = rosa__cu_weights_bytes(plain, 2), r = rosa__cu_weights_bytes(rosa, 2);
    ck_assert_uint_eq(r - p, 27 * per);
    rosa->inject_mode = ROSA_INJECT_PRE_ATTN; /* + alpha per ROSA layer */
    ck_assert_uint_eq(rosa__cu_weights_bytes(rosa, 2) - r, 27 * rosa__cu_align(1024 * 4));
    shape_free(plain);
    shape_free(rosa);
}
END_TEST

START_TEST(min_pages_and_too_small_budget) {
    rosa_model *m = shape_06b(27, 2048, 1);
    rosa__cu_plan p;
    /* 27 windowed layers of 2048 / 16 = 128 pages, one global layer starts with 1 */
    ck_assert_int_eq(rosa__cu_plan_pool(m, 2, (size_t)16 << 30, &p), 0);
    ck_assert_uint_eq(p.min_pages, 27 * 128 + 1);
    size_t just = p.weights + CU_SCRATCH_RESERVE + p.min_pages * 2 * p.page_bytes;
    ck_assert_int_eq(rosa__cu_plan_pool(m, 2, just, &p), 0);
    ck_assert_uint_eq(p.npages, p.min_pages);
    ck_assert_int_eq(rosa__cu_plan_pool(m, 2, just - 1, &p), ROSA_ERR_LIMIT);
    ck_assert_int_eq(rosa__cu_plan_pool(m, 2, p.weights, &p), ROSA_ERR_LIMIT); /* no room for the reserve */
    ck_assert_uint_eq(p.npages, 0);
    m->layer_window[5] = 20; /* a window that is not a multiple of the page: rounded up */
    ck_assert_int_eq(rosa__cu_plan_pool(m, 2, (size_t)16 << 30, &p), 0);
    ck_assert_uint_eq(p.min_pages, 26 * 128 + 2 + 1);
    shape_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("gpu_budget");
    TCase *tc = tcase_create("budget");
    tcase_add_test(tc, tied_lm_head_is_counted_once);
    tcase_add_test(tc, rosa_layers_add_four_matrices_and_vectors);
    tcase_add_test(tc, min_pages_and_too_small_budget);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
