/* test_smoke.c: the error table and load refusals that need no files beside the repo. */
#include <check.h>
#include <string.h>

#include "rosa.h"
#include "testutil.h"

START_TEST(strerror_covers_codes) {
    for (int e = 0; e >= -7; e--) ck_assert_str_ne(rosa_strerror(e), "unknown error");
    ck_assert_str_eq(rosa_strerror(-1000), "unknown error");
}
END_TEST

int main(void) {
    Suite *s = suite_create("smoke");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, strerror_covers_codes);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
