/* test_tokenizer_corpus.c: the Qwen3 and demo copy-model tokenizers from ../shared against
 * Hugging Face `tokenizers` on the stored corpora (qwen3_cases.jsonl: 2,272 strings;
 * demo_cases.jsonl).  What is checked per case: tests/util/tokenizer_cases.h. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa_tokenizer.h"
#include "testutil.h"
#include "tokenizer_cases.h"

static rosa_tokenizer *load_shared(const char *rel) {
    char *p = tu_path("%s/%s", tu_shared_dir(), rel);
    char err[512] = "";
    rosa_tokenizer *tk = NULL;
    int rc = rosa_tokenizer_load(p, &tk, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    free(p);
    return tk;
}

START_TEST(qwen3_matches_hf) {
    rosa_tokenizer *tk = load_shared("tokenizer/qwen3/tokenizer.json");
    tally t = {0};
    run_file(tk, "qwen3_cases.jsonl", NULL, &t);
    printf("qwen3: %d of %d cases agree with Hugging Face (ids both ways, round trip, streaming)\n", t.agree,
           t.cases);
    ck_assert_int_ge(t.cases, 2000);
    ck_assert_int_eq(t.agree, t.cases);
    rosa_tokenizer_free(tk);
}
END_TEST

START_TEST(demo_matches_hf) {
    rosa_tokenizer *tk = load_shared("demo/copy-model/model/tokenizer.json");
    tally t = {0};
    run_file(tk, "demo_cases.jsonl", NULL, &t);
    printf("demo copy-model: %d of %d cases agree\n", t.agree, t.cases);
    ck_assert_int_eq(t.agree, t.cases);
    rosa_tokenizer_free(tk);
}
END_TEST

int main(void) {
    tu_require_shared("test_tokenizer_corpus");
    Suite *s = suite_create("tokenizer_corpus");
    TCase *tc = tcase_create("hf");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, qwen3_matches_hf);
    tcase_add_test(tc, demo_matches_hf);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
