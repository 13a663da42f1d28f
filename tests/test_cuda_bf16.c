/* test_cuda_bf16.c: the default bf16 CUDA precision against the float32 CPU backend on the
 * golden cases.  bf16 activations flip ROSA bits whose pre-activation is near zero (the golden
 * cases' margins are ~5e-5), and in these tiny models one different retrieval moves every later
 * layer, so this measures agreement instead of demanding identity: per case it prints the
 * fraction of identical ROSA destinations per layer, top-1 agreement and max |logit difference|
 * and enforces the thresholds of tests/util/bf16_agree.c, which come from the CPU's emulation of
 * this very rounding (test_bf16_emulation: a correct device meets them, a wrong kernel does
 * not).  Exits 77 without ../shared or a CUDA device. */
#include <check.h>
#include <stdio.h>

#include "bf16_agree.h"
#include "testutil.h"

START_TEST(bf16_agrees_with_cpu) {
    const tu_bf16_limits *lim = &tu_bf16_cases[_i];
    tu_agree a;
    tu_bf16_agreement(lim->name, "cuda", &a);
    tu_bf16_check(lim, &a);
}
END_TEST

int main(void) {
    tu_require_shared("test_cuda_bf16");
    if (rosa_device_count("cuda") < 1) {
        printf("test_cuda_bf16: no CUDA device: skipped\n");
        return 77;
    }
    Suite *s = suite_create("cuda_bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, bf16_agrees_with_cpu, 0, 3);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
