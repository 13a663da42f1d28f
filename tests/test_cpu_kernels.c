/* test_cpu_kernels.c: every SIMD kernel variant this CPU runs agrees with the portable scalar
 * one on seeded random input (odd lengths included, to reach the tails). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_kernels.h"
#include "testutil.h"

static uint16_t bf16(float f) { uint32_t u; memcpy(&u, &f, 4); return (uint16_t)(u >> 16); }

static uint16_t f16(float f) {
    /* round-to-zero conversion, enough for test data in [-2, 2] */
    uint32_t u; memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int e = (int)((u >> 23) & 255) - 127 + 15;
    if (e <= 0) return (uint16_t)sign;
    return (uint16_t)(sign | (uint32_t)e << 10 | ((u >> 13) & 1023));
}

static void compare(const rosa__kernels *k) {
    const rosa__kernels *s = rosa__kernels_scalar();
    srand(7);
    for (int rep = 0; rep < 200; rep++) {
        int n = 1 + rand() % 700;
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *o1 = malloc(n * sizeof *o1), *o2 = malloc(n * sizeof *o2);
        uint16_t *wb = malloc(n * 2), *wh = malloc(n * 2);
        for (int i = 0; i < n; i++) {
            a[i] = (float)rand() / RAND_MAX * 4 - 2;
            b[i] = (float)rand() / RAND_MAX * 4 - 2;
            wb[i] = bf16(a[i]);
            wh[i] = f16(a[i]);
        }
        double tol = 1e-4 * n;
        ck_assert_double_eq_tol(k->dot_f32(a, b, n), s->dot_f32(a, b, n), tol);
        ck_assert_double_eq_tol(k->dot_bf16(wb, b, n), s->dot_bf16(wb, b, n), tol);
        ck_assert_double_eq_tol(k->dot_f16(wh, b, n), s->dot_f16(wh, b, n), tol);
        k->bf16_to_f32(wb, o1, n);
        s->bf16_to_f32(wb, o2, n);
        ck_assert_mem_eq(o1, o2, n * sizeof *o1);
        k->f16_to_f32(wh, o1, n);
        s->f16_to_f32(wh, o2, n);
        ck_assert_mem_eq(o1, o2, n * sizeof *o1);
        free(a); free(b); free(o1); free(o2); free(wb); free(wh);
    }
}

START_TEST(half_conversion_special_values) {
    ck_assert_float_eq(rosa__half_to_float(0x3c00), 1.0f);
    ck_assert_float_eq(rosa__half_to_float(0xc000), -2.0f);
    ck_assert_float_eq(rosa__half_to_float(0x0001), 5.9604644775390625e-08f); /* smallest subnormal */
    ck_assert_float_eq(rosa__half_to_float(0x7bff), 65504.0f);
    ck_assert(isinf(rosa__half_to_float(0x7c00)));
    ck_assert(isnan(rosa__half_to_float(0x7e00)));
    ck_assert(signbit(rosa__half_to_float(0x8000)));
}
END_TEST

START_TEST(avx2_matches_scalar) {
    const rosa__kernels *k = rosa__kernels_avx2();
    if (!k) { printf("NOTICE: no AVX2 on this CPU; avx2 kernels not compared\n"); return; }
    compare(k);
}
END_TEST

START_TEST(avx512_matches_scalar) {
    const rosa__kernels *k = rosa__kernels_avx512();
    if (!k) { printf("NOTICE: no AVX-512 on this CPU; avx512 kernels not compared\n"); return; }
    compare(k);
}
END_TEST

START_TEST(env_forces_scalar) {
    setenv("ROSA_KERNELS", "scalar", 1);
    ck_assert_str_eq(rosa__kernels_get()->name, "scalar");
    unsetenv("ROSA_KERNELS");
    ck_assert_ptr_nonnull(rosa__kernels_get());
}
END_TEST

int main(void) {
    Suite *s = suite_create("cpu_kernels");
    TCase *tc = tcase_create("kernels");
    tcase_add_test(tc, half_conversion_special_values);
    tcase_add_test(tc, avx2_matches_scalar);
    tcase_add_test(tc, avx512_matches_scalar);
    tcase_add_test(tc, env_forces_scalar);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
