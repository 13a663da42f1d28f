/* test_tokenizer_synthetic.c: a small byte-level BPE trained by tools/gen_tokenizer_cases.py
 * (tests/data/tokenizer/synthetic/tokenizer.json) whose pipeline uses what Qwen3's does not:
 * NFKC, the GPT-2 ByteLevel regex with add_prefix_space, ignore_merges, lstrip / rstrip /
 * single_word / normalized added tokens, and, in six variants, every Split behaviour and invert.
 * Checked against Hugging Face's ids (synthetic_cases.jsonl); needs nothing from ../shared. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa_tokenizer.h"
#include "testutil.h"
#include "tokenizer_cases.h"

/* The synthetic tokenizer with its Split step replaced by each variant's (as the generator did). */
START_TEST(synthetic_variants_match_hf) {
    static const struct { const char *name, *split; } variants[] = {
        {"isolated", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\d{1,3}\"},\"behavior\":\"Isolated\",\"invert\":false}"},
        {"removed", "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"Removed\",\"invert\":false}"},
        {"merged_prev", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[,.;]\"},\"behavior\":\"MergedWithPrevious\",\"invert\":false}"},
        {"merged_next", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s\"},\"behavior\":\"MergedWithNext\",\"invert\":false}"},
        {"contiguous", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\p{N}\"},\"behavior\":\"Contiguous\",\"invert\":false}"},
        {"invert", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[a-z]+\"},\"behavior\":\"Removed\",\"invert\":true}"},
    };
    char *path = tu_path("%s/tests/data/tokenizer/synthetic/tokenizer.json", tu_source_dir());
    char *base = tu_read_file(path, NULL);
    ck_assert(base != NULL);
    int total = 0, agree = 0;
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        cJSON *root = cJSON_Parse(base);
        cJSON *seq = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
                                                      "pretokenizers");
        ck_assert(cJSON_IsArray(seq));
        cJSON_ReplaceItemInArray(seq, 0, cJSON_Parse(variants[v].split));
        char *json = cJSON_PrintUnformatted(root);
        rosa_tokenizer *tk;
        char err[512] = "";
        int rc = rosa__tokenizer_load_mem(json, strlen(json), variants[v].name, NULL, 0, NULL, &tk, err, sizeof err);
        ck_assert_msg(rc == 0, "%s", err);
        tally t = {0};
        run_file(tk, "synthetic_cases.jsonl", variants[v].name, &t);
        ck_assert_int_gt(t.cases, 50);
        total += t.cases;
        agree += t.agree;
        rosa_tokenizer_free(tk);
        free(json);
        cJSON_Delete(root);
    }
    printf("synthetic pipelines: %d of %d cases agree\n", agree, total);
    ck_assert_int_eq(agree, total);
    free(base);
    free(path);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tokenizer_synthetic");
    TCase *tc = tcase_create("hf");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, synthetic_variants_match_hf);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
