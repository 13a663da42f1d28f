/* test_bf16_emulation.c: the CPU backend's emulation of the CUDA backend's bf16 rounding
 * against its own float32 run, on the golden cases: what agreement bf16 rounding alone allows.
 * Prints the numbers (docs/CUDA.md, "bf16 thresholds", records them) and asserts that
 *  - the emulation rounds at all (its logits differ from f32, or a bf16 path that silently
 *    computed in f32 would pass test_cuda_bf16 for the wrong reason), and
 *  - it meets the thresholds test_cuda_bf16 enforces on a device (tests/util/bf16_agree.c):
 *    thresholds that bf16 rounding itself cannot meet would fail a correct GPU.
 * Needs ../shared; exits 77 without it. */
#include <check.h>
#include <stdio.h>

#include "bf16_agree.h"
#include "testutil.h"

START_TEST(emulated_bf16_meets_the_device_thresholds) {
    const tu_bf16_limits *lim = &tu_bf16_cases[_i];
    tu_agree a;
    tu_bf16_agreement(lim->name, "cpu", &a);
    ck_assert_msg(a.max_logit_diff > 1e-4, "%s: the bf16 emulation changed nothing (max diff %g)", lim->name,
                  a.max_logit_diff);
    tu_bf16_check(lim, &a);
}
END_TEST

int main(void) {
    tu_require_shared("test_bf16_emulation");
    Suite *s = suite_create("bf16_emulation");
    TCase *tc = tcase_create("emulation");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, emulated_bf16_meets_the_device_thresholds, 0, 3);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
