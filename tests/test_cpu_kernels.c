/* test_cpu_kernels.c: every SIMD kernel variant this CPU runs agrees with the portable scalar
 * one on seeded random input (odd lengths included, to reach the tails); the decode
 * matrix-vector kernels of every set agree with a double-precision reference. */
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

static float bf16_to_float(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }

/* gemv_bf16 (and gemv_bf16_x16 where the set has it) against a double-precision sum of the same
 * products: row counts around the kernels' rows per pass, widths around their step (tails),
 * a row stride wider than K whose padding is NaN (a kernel reading past K fails), and a
 * sentinel after the last output (a kernel writing past nrows fails). */
static void compare_gemv(const rosa__kernels *k) {
    ck_assert_ptr_nonnull(k->gemv_bf16);
    srand(11);
    const int widths[] = {1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257, 1024, 1027};
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
        for (int nrows = 1; nrows <= 11; nrows++) {
            int K = widths[wi];
            size_t ldw = (size_t)K + 5;
            uint16_t *W = malloc((size_t)nrows * ldw * 2), *x16 = malloc((size_t)K * 2);
            float *x = malloc((size_t)K * sizeof *x), *y = malloc((size_t)(nrows + 1) * sizeof *y);
            for (size_t i = 0; i < (size_t)nrows * ldw; i++)
                W[i] = i % ldw < (size_t)K ? bf16((float)rand() / RAND_MAX * 4 - 2) : 0x7fc0; /* NaN pad */
            for (int i = 0; i < K; i++) {
                x[i] = (float)rand() / RAND_MAX * 4 - 2;
                x16[i] = bf16(x[i]);
            }
            for (int pass = 0; pass < 2; pass++) {
                if (pass == 1 && !k->gemv_bf16_x16) break;
                y[nrows] = 12345.0f;
                if (pass == 0) k->gemv_bf16(W, ldw, nrows, K, x, y);
                else k->gemv_bf16_x16(W, ldw, nrows, K, x16, y);
                for (int r = 0; r < nrows; r++) {
                    double ref = 0, mag = 0;
                    for (int j = 0; j < K; j++) {
                        double p = (double)bf16_to_float(W[(size_t)r * ldw + j]) * (pass ? bf16_to_float(x16[j]) : x[j]);
                        ref += p;
                        mag += fabs(p);
                    }
                    ck_assert_msg(fabs(y[r] - ref) <= 1e-6 * mag + 1e-6, "%s gemv%s K=%d nrows=%d row %d: %g vs %g", k->name,
                                  pass ? "_x16" : "", K, nrows, r, (double)y[r], ref);
                }
                ck_assert_float_eq(y[nrows], 12345.0f);
            }
            free(W); free(x16); free(x); free(y);
        }
}

START_TEST(gemv_matches_reference) {
    compare_gemv(rosa__kernels_scalar());
    if (rosa__kernels_avx2()) compare_gemv(rosa__kernels_avx2());
    else printf("NOTICE: no AVX2 on this CPU; avx2 gemv not compared\n");
    const rosa__kernels *k5 = rosa__kernels_avx512();
    if (!k5) { printf("NOTICE: no AVX-512 on this CPU; avx512 gemv not compared\n"); return; }
    compare_gemv(k5);
    if (!k5->gemv_bf16_x16) printf("NOTICE: no AVX512_BF16 on this CPU; gemv_bf16_x16 not compared\n");
    /* the switch that reaches bf16 mode's float32 fallback on any CPU */
    setenv("ROSA_NO_AVX512BF16", "1", 1);
    ck_assert_ptr_null(rosa__kernels_avx512()->gemv_bf16_x16);
    ck_assert_ptr_nonnull(rosa__kernels_avx512()->gemv_bf16);
    unsetenv("ROSA_NO_AVX512BF16");
    ck_assert(!rosa__kernels_scalar()->gemv_bf16_x16 && !(rosa__kernels_avx2() && rosa__kernels_avx2()->gemv_bf16_x16));
}
END_TEST

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
    tcase_add_test(tc, gemv_matches_reference);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
