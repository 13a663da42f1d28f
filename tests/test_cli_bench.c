/* test_cli_bench.c: `rosa-cli bench rosa-step` as a user runs it (a real process): a small run
 * prints its one machine-readable line with every field, consistent with each other (per-step
 * time = per-token time x batch, the thread count asked for, a plausible memory per k-run);
 * with --horizon H a second line gives the undo logs' bytes and the time to go back H steps;
 * bad arguments exit with status 2 and a message, never a crash or a run. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

static int run(const char *args) {
    char *cmd = tu_path("%s/clients/rosa-cli %s >/dev/null 2>&1", tu_binary_dir(), args);
    int st = system(cmd);
    free(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The value of key= in line, or -1 when absent. */
static double field(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(line, pat);
    return p ? atof(p + strlen(pat)) : -1;
}

START_TEST(rosa_step_prints_one_line) {
    char *cmd = tu_path("%s/clients/rosa-cli bench rosa-step --layers 3 --routes 40 --batch 2 --context 700 "
                        "--tokens 5 --threads 2 --repeat 3 --chunk 128 --dist low",
                        tu_binary_dir());
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024] = "", extra[16];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_null(fgets(extra, sizeof extra, f)); /* one line */
    ck_assert_int_eq(pclose(f), 0);
    free(cmd);
    ck_assert_msg(!strncmp(line, "bench rosa-step ", 16), "got: %s", line);
    const char *keys[] = {"ns_per_route_token", "ms_per_token", "ms_per_step", "bytes_per_session",
                          "bytes_per_krun", "threads", "cpu_ns_per_route_token", "fork_join_us",
                          "best_ns_per_route_token"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        ck_assert_msg(field(line, keys[i]) >= 0, "no %s in: %s", keys[i], line);
    ck_assert_int_eq((int)field(line, "threads"), 2);
    ck_assert_int_eq((int)field(line, "batch"), 2);
    ck_assert_int_eq((int)field(line, "layers"), 3);
    ck_assert_int_eq((int)field(line, "routes"), 40);
    double tok = field(line, "ms_per_token"), step = field(line, "ms_per_step");
    ck_assert_msg(step > 0 && step > 1.9 * tok && step < 2.1 * tok, "per step %f, per token %f", step, tok);
    /* 2 sessions x 120 routes of 700 low-entropy tokens: some thousands of bytes per route */
    double bk = field(line, "bytes_per_krun"), bs = field(line, "bytes_per_session");
    ck_assert_msg(bk > 8 && bk < 400, "bytes_per_krun %f", bk);
    ck_assert_msg(bs > 120 * 1000 && bs < 120 * 200000.0, "bytes_per_session %f", bs);
    ck_assert(field(line, "best_ns_per_route_token") <= field(line, "ns_per_route_token") + 1e-6);
}
END_TEST

/* --horizon H: a second line with the undo logs' bytes and the time of going back H steps. */
START_TEST(rosa_step_horizon_line) {
    char *cmd = tu_path("%s/clients/rosa-cli bench rosa-step --layers 2 --routes 20 --context 300 "
                        "--tokens 5 --horizon 64",
                        tu_binary_dir());
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024] = "", line2[1024] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_nonnull(fgets(line2, sizeof line2, f));
    ck_assert_int_eq(pclose(f), 0);
    free(cmd);
    ck_assert_msg(!strncmp(line2, "bench rosa-step horizon=64 ", 27), "got: %s", line2);
    ck_assert_msg(field(line2, "undo_bytes_per_session") > 0, "got: %s", line2);
    ck_assert_msg(field(line2, "undo_bytes_per_session") < field(line, "bytes_per_session"), "got: %s", line2);
    ck_assert_int_eq((int)field(line2, "truncate_steps"), 64);
    ck_assert_msg(field(line2, "truncate_ms") >= 0, "got: %s", line2);
}
END_TEST

START_TEST(bad_arguments_exit_2) {
    const char *bad[] = {
        "bench rosa-step --shape 2b",      "bench rosa-step --batch 0",
        "bench rosa-step --context -1",    "bench rosa-step --dist zipf",
        "bench rosa-step --tokens x",      "bench rosa-step --threads",
        "bench rosa-step --frobnicate 1",  "bench rosa-step --repeat 0",
        "bench rosa --routes 0 --tokens 5", "bench rosa --routes 4",
        "bench rosa-step --horizon -1",    "bench rosa --routes 2 --tokens 5 --horizon x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(run(bad[i]) == 2, "'rosa-cli %s' did not exit 2", bad[i]);
    ck_assert_int_eq(run("bench rosa-step --help"), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli_bench");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, rosa_step_prints_one_line);
    tcase_add_test(tc, rosa_step_horizon_line);
    tcase_add_test(tc, bad_arguments_exit_2);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
