/* test_cli_golden.c: `rosa-cli logits` and `rosa-cli generate` reproduce the golden files, run
 * as a user would run them (a real process, files on disk), and bad command lines fail cleanly. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

static int run(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run-option flags for a case, as its case.json says. */
static char *case_flags(const cJSON *c) {
    const cJSON *run_ = cJSON_GetObjectItem(c, "run");
    const cJSON *w = cJSON_GetObjectItem(run_, "window"), *g = cJSON_GetObjectItem(run_, "global_layers");
    const cJSON *b = cJSON_GetObjectItem(run_, "bits_per_route"), *m = cJSON_GetObjectItem(run_, "inject_mode");
    char buf[512] = "";
    size_t n = 0;
    if (cJSON_IsNumber(w)) n += (size_t)snprintf(buf + n, sizeof buf - n, " --window %d", (int)w->valuedouble);
    if (cJSON_IsNumber(w) && cJSON_IsNumber(g)) n += (size_t)snprintf(buf + n, sizeof buf - n, " --global-layers %d", (int)g->valuedouble);
    if (cJSON_IsNumber(b)) n += (size_t)snprintf(buf + n, sizeof buf - n, " --rosa-bits %d", (int)b->valuedouble);
    if (cJSON_IsString(m)) n += (size_t)snprintf(buf + n, sizeof buf - n, " --rosa-mode %s", m->valuestring);
    return strdup(buf);
}

static const char *CASES[] = {"tiny-post-m4", "tiny-pre-m2", "tiny-base-full"};

START_TEST(cli_logits_and_generate_match_golden) {
    const char *name = CASES[_i];
    char *dir = tu_path("%s/golden/%s", tu_shared_dir(), name);
    char *cj = tu_path("%s/case.json", dir);
    char *text = tu_read_file(cj, NULL);
    cJSON *c = cJSON_Parse(text);
    char *tmp = tu_tmpdir();
    char *ids = tu_path("%s/prompt.json", tmp);
    char *pj = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "prompt"));
    tu_write_file(ids, pj, strlen(pj));
    char *flags = case_flags(c);
    char *adapter = tu_path("%s/adapter/rosa_adapters.pt", dir);
    FILE *af = fopen(adapter, "rb");
    char *aflag = af ? tu_path(" --adapter %s", adapter) : strdup("");
    if (af) fclose(af);
    char *out = tu_path("%s/logits.f32", tmp), *dout = tu_path("%s/dest.i32", tmp);
    char *cmd = tu_path("%s/clients/rosa-cli logits --model %s/model%s%s --prompt-ids %s --out %s --dest-out %s",
                        tu_binary_dir(), dir, aflag, flags, ids, out, dout);
    ck_assert_int_eq(run(cmd), 0);
    size_t la, lb;
    float *a = tu_read_file(out, &la);
    char *gl = tu_path("%s/logits.f32", dir);
    float *b = tu_read_file(gl, &lb);
    ck_assert_uint_eq(la, lb);
    double worst = 0;
    for (size_t i = 0; i < la / 4; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
    ck_assert_msg(worst <= 1e-3, "%s: rosa-cli logits differ by %g", name, worst);
    char *gd = tu_path("%s/dest.i32", dir);
    size_t lgd;
    char *g = tu_read_file(gd, &lgd);
    if (g) {
        size_t ld;
        char *d = tu_read_file(dout, &ld);
        ck_assert_uint_eq(ld, lgd);
        ck_assert_mem_eq(d, g, ld);
        free(d);
        free(g);
    }
    /* greedy continuation printed by generate equals case.json's greedy */
    const cJSON *gr = cJSON_GetObjectItem(c, "greedy");
    char *gen = tu_path("%s/gen.txt", tmp);
    char *cmd2 = tu_path("%s/clients/rosa-cli generate --model %s/model%s%s --prompt-ids %s -n %d > %s",
                         tu_binary_dir(), dir, aflag, flags, ids, cJSON_GetArraySize(gr), gen);
    ck_assert_int_eq(run(cmd2), 0);
    char *got = tu_read_file(gen, NULL);
    char want[8192] = "";
    size_t n = 0;
    for (const cJSON *e = gr->child; e; e = e->next)
        n += (size_t)snprintf(want + n, sizeof want - n, "%s%d", n ? " " : "", (int)e->valuedouble);
    snprintf(want + n, sizeof want - n, "\n");
    ck_assert_str_eq(got, want);
    free(got); free(gen); free(cmd2); free(gd); free(gl); free(a); free(b); free(cmd); free(out); free(dout);
    free(aflag); free(adapter); free(flags); cJSON_free(pj); free(ids); free(tmp); cJSON_Delete(c); free(text);
    free(cj); free(dir);
}
END_TEST

START_TEST(cli_refuses_bad_arguments) {
    char *tmp = tu_tmpdir();
    char *bad = tu_path("%s/bad.json", tmp);
    tu_write_file(bad, "[1, 2, \"x\"]", 11);
    const char *fmts[] = {
        "%s/clients/rosa-cli logits --model %s/golden/tiny-post-m4/model --prompt-ids %s --out /dev/null 2>/dev/null",
        "%s/clients/rosa-cli logits --model %s/golden/tiny-post-m4/model --window -3 --prompt-ids %s --out /dev/null 2>/dev/null",
        "%s/clients/rosa-cli logits --model %s/golden/nonexistent --prompt-ids %s --out /dev/null 2>/dev/null",
        "%s/clients/rosa-cli frobnicate %s %s 2>/dev/null",
    };
    for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
        char *cmd = tu_path(fmts[i], tu_binary_dir(), tu_shared_dir(), bad);
        int rc = run(cmd);
        ck_assert_msg(rc == 1 || rc == 2, "'%s' exited %d", cmd, rc);
        free(cmd);
    }
    /* a token id out of the vocabulary is refused, not read out of bounds */
    tu_write_file(bad, "[1, 99999]", 10);
    char *cmd = tu_path("%s/clients/rosa-cli logits --model %s/golden/tiny-post-m4/model --prompt-ids %s --out %s/o 2>/dev/null",
                        tu_binary_dir(), tu_shared_dir(), bad, tmp);
    ck_assert_int_eq(run(cmd), 1);
    free(cmd);
    free(bad);
    free(tmp);
}
END_TEST

int main(void) {
    tu_require_shared("test_cli_golden");
    Suite *s = suite_create("cli_golden");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, cli_logits_and_generate_match_golden, 0, 3);
    tcase_add_test(tc, cli_refuses_bad_arguments);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
