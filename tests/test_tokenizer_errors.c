/* test_tokenizer_errors.c: bad input to the tokenizer gives clear errors, never a crash:
 * malformed and truncated tokenizer.json, merges naming unknown tokens, unsupported components
 * (refused by name), ids out of range, invalid UTF-8 text (encoded, not refused), bad arguments. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa_tokenizer.h"
#include "testutil.h"
#include "tokenizer_fixture.h"

static int load_str(const char *json, char *err, size_t errlen) {
    rosa_tokenizer *tk = NULL;
    int rc = rosa__tokenizer_load_mem(json, strlen(json), "t.json", NULL, 0, NULL, &tk, err, errlen);
    rosa_tokenizer_free(tk);
    return rc;
}

START_TEST(malformed_json) {
    static const char *const bad[] = {"", "{", "[]", "null", "{\"model\": 3}", "{\"model\":{\"type\":\"BPE\"}}",
                                      "{\"model\":{\"vocab\":[],\"merges\":[]}}", "\xff\xfe{}", "{\"model\":{}}x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        int rc = load_str(bad[i], err, sizeof err);
        ck_assert_int_eq(rc, ROSA_ERR_FORMAT);
        ck_assert_msg(strstr(err, "t.json") != NULL, "message should name the file: %s", err);
    }
}
END_TEST

/* Every prefix of a valid file is refused cleanly (and the whole file loads). */
START_TEST(truncated_fixture) {
    tkf_opts o = {.vocab = ",\"ab\":256", .merges = "\"a b\"",
                  .added = "{\"id\":257,\"content\":\"<s>\",\"special\":true}"};
    char *j = tkf_json(&o);
    size_t n = strlen(j);
    for (size_t cut = 0; cut < n; cut += (cut < 200 || n - cut < 200) ? 1 : 7) {
        rosa_tokenizer *tk = NULL;
        char err[256] = "";
        int rc = rosa__tokenizer_load_mem(j, cut, "cut.json", NULL, 0, NULL, &tk, err, sizeof err);
        ck_assert_msg(rc < 0 && tk == NULL, "prefix of %zu bytes loaded", cut);
        ck_assert(err[0] != 0);
    }
    rosa_tokenizer *tk = NULL;
    char err[256];
    ck_assert_int_eq(rosa__tokenizer_load_mem(j, n, "full.json", NULL, 0, NULL, &tk, err, sizeof err), 0);
    rosa_tokenizer_free(tk);
    free(j);
}
END_TEST

START_TEST(truncated_qwen3) {
    const char *shared = tu_shared_dir();
    if (!shared) return; /* needs ../shared */
    char *p = tu_path("%s/tokenizer/qwen3/tokenizer.json", shared);
    size_t n;
    char *j = tu_read_file(p, &n);
    ck_assert(j != NULL);
    size_t cuts[] = {1, 100, n / 3, n / 2, n - 2};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        rosa_tokenizer *tk = NULL;
        char err[256] = "";
        int rc = rosa__tokenizer_load_mem(j, cuts[i], p, NULL, 0, NULL, &tk, err, sizeof err);
        ck_assert_int_eq(rc, ROSA_ERR_FORMAT);
        ck_assert_msg(strstr(err, "truncated") != NULL, "%s", err);
    }
    free(j);
    free(p);
}
END_TEST

static void expect(const tkf_opts *o, int code, const char *needle) {
    rosa_tokenizer *tk = NULL;
    char err[512];
    int rc = tkf_load(o, &tk, err, sizeof err);
    ck_assert_msg(rc == code, "rc %d (want %d): %s", rc, code, err);
    ck_assert_msg(strstr(err, needle) != NULL, "message '%s' should mention '%s'", err, needle);
    ck_assert(tk == NULL);
}

START_TEST(bad_merges) {
    expect(&(tkf_opts){.merges = "\"a c\""}, ROSA_ERR_FORMAT, "not in the vocabulary: 'ac'");
    expect(&(tkf_opts){.merges = "\"a zz\""}, ROSA_ERR_FORMAT, "not in the vocabulary: 'zz'");
    expect(&(tkf_opts){.merges = "[\"q\",\"a\"]"}, ROSA_ERR_FORMAT, "not in the vocabulary: 'qa'");
    expect(&(tkf_opts){.merges = "\"a b c\""}, ROSA_ERR_FORMAT, "two tokens");
    expect(&(tkf_opts){.merges = "\"ab\""}, ROSA_ERR_FORMAT, "two tokens");
    expect(&(tkf_opts){.merges = "[1,2]"}, ROSA_ERR_FORMAT, "merge 0");
    expect(&(tkf_opts){.vocab = ",\"ab\":256", .merges = "\"a b\",[\"a\"]"}, ROSA_ERR_FORMAT, "merge 1");
    /* "#version" lines are skipped (and take no rank), as Hugging Face does */
    rosa_tokenizer *tk = NULL;
    char err[256];
    ck_assert_int_eq(tkf_load(&(tkf_opts){.vocab = ",\"ab\":256", .merges = "\"#version: 0.2\",\"a b\""}, &tk,
                              err, sizeof err), 0);
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(rosa_tokenize(tk, "xab", 3, 1, &ids, &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(ids[1], 256);
    free(ids);
    rosa_tokenizer_free(tk);
}
END_TEST

START_TEST(bad_vocab_and_added) {
    expect(&(tkf_opts){.vocab = ",\"ab\":-1"}, ROSA_ERR_FORMAT, "model.vocab['ab']");
    expect(&(tkf_opts){.vocab = ",\"ab\":1.5"}, ROSA_ERR_FORMAT, "model.vocab['ab']");
    expect(&(tkf_opts){.vocab = ",\"ab\":\"x\""}, ROSA_ERR_FORMAT, "model.vocab['ab']");
    expect(&(tkf_opts){.vocab = ",\"ab\":1e12"}, ROSA_ERR_FORMAT, "model.vocab['ab']");
    expect(&(tkf_opts){.vocab = ",\"ab\":5"}, ROSA_ERR_FORMAT, "id 5 to two tokens");
    expect(&(tkf_opts){.added = "{\"id\":300}"}, ROSA_ERR_FORMAT, "added_tokens[0]");
    expect(&(tkf_opts){.added = "{\"id\":300,\"content\":\"x\",\"special\":1}"}, ROSA_ERR_FORMAT, "not a boolean");
    expect(&(tkf_opts){.added = "{\"id\":65,\"content\":\"<s>\"}"}, ROSA_ERR_FORMAT, "gives to another token");
    expect(&(tkf_opts){.added = "{\"id\":300,\"content\":\"<s>\"},{\"id\":300,\"content\":\"<t>\"}"}, ROSA_ERR_FORMAT,
           "two added tokens have id 300");
    expect(&(tkf_opts){.model_extra = ",\"unk_token\":\"<unk>\""}, ROSA_ERR_FORMAT, "unk_token '<unk>'");
}
END_TEST

START_TEST(unsupported_components) {
    expect(&(tkf_opts){.model_extra = ",\"dropout\":0.1"}, ROSA_ERR_UNSUPPORTED, "dropout");
    expect(&(tkf_opts){.model_extra = ",\"byte_fallback\":true"}, ROSA_ERR_UNSUPPORTED, "byte_fallback");
    expect(&(tkf_opts){.model_extra = ",\"continuing_subword_prefix\":\"##\""}, ROSA_ERR_UNSUPPORTED,
           "continuing_subword_prefix");
    expect(&(tkf_opts){.normalizer = "{\"type\":\"Lowercase\"}"}, ROSA_ERR_UNSUPPORTED, "normalizer 'Lowercase'");
    expect(&(tkf_opts){.normalizer = "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Strip\"}]}"},
           ROSA_ERR_UNSUPPORTED, "normalizer 'Strip'");
    expect(&(tkf_opts){.pre = "{\"type\":\"Whitespace\"}"}, ROSA_ERR_UNSUPPORTED, "pre_tokenizer 'Whitespace'");
    expect(&(tkf_opts){.pre = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\"},"
                              "{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Isolated\",\"invert\":false}]}"},
           ROSA_ERR_UNSUPPORTED, "Split after ByteLevel");
    expect(&(tkf_opts){.pre = "{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Isolated\",\"invert\":false}"},
           ROSA_ERR_UNSUPPORTED, "no ByteLevel");
    expect(&(tkf_opts){.pre = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
                              "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\"}]}"},
           ROSA_ERR_UNSUPPORTED, "does not compile");
    expect(&(tkf_opts){.pre = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[\\\\S]\"},"
                              "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\"}]}"},
           ROSA_ERR_UNSUPPORTED, "\\S inside a character class");
    expect(&(tkf_opts){.pre = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"x\"},"
                              "\"behavior\":\"Sideways\",\"invert\":false},{\"type\":\"ByteLevel\"}]}"},
           ROSA_ERR_UNSUPPORTED, "behavior 'Sideways'");
    expect(&(tkf_opts){.decoder = "{\"type\":\"WordPiece\"}"}, ROSA_ERR_UNSUPPORTED, "decoder 'WordPiece'");
    expect(&(tkf_opts){.decoder = "null"}, ROSA_ERR_UNSUPPORTED, "decoder is missing");
    expect(&(tkf_opts){.model_type = "WordPiece"}, ROSA_ERR_UNSUPPORTED, "model type 'WordPiece'");
}
END_TEST

START_TEST(missing_file) {
    rosa_tokenizer *tk = (rosa_tokenizer *)1;
    char err[256] = "";
    ck_assert_int_eq(rosa_tokenizer_load("/nonexistent/tokenizer.json", &tk, err, sizeof err), ROSA_ERR_IO);
    ck_assert(tk == NULL);
    ck_assert(strstr(err, "/nonexistent/tokenizer.json") != NULL);
    ck_assert_int_eq(rosa_tokenizer_load(NULL, &tk, err, sizeof err), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa_tokenizer_load("x", NULL, err, sizeof err), ROSA_ERR_INVALID);
}
END_TEST

START_TEST(ids_out_of_range) {
    rosa_tokenizer *tk = NULL;
    char err[256];
    ck_assert_int_eq(tkf_load(&(tkf_opts){.vocab = ",\"ab\":260"}, &tk, err, sizeof err), 0);
    ck_assert_int_eq(rosa_tokenizer_vocab_size(tk), 261);
    int32_t bad[] = {-1, 261, 1000000000, 258 /* a hole */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t ids[2] = {65, bad[i]};
        char *t = (char *)1;
        size_t l;
        ck_assert_int_eq(rosa_detokenize(tk, ids, 2, 0, &t, &l), ROSA_ERR_INVALID);
        ck_assert(t == NULL);
        rosa_detok_stream *ds = rosa_detok_stream_new(tk, 0);
        const char *o;
        ck_assert_int_eq(rosa_detok_stream_push(ds, bad[i], &o, &l), ROSA_ERR_INVALID);
        ck_assert_int_eq(rosa_detok_stream_push(ds, 66, &o, &l), 0); /* the stream goes on */
        ck_assert_int_eq(l, 1);
        ck_assert_int_eq(o[0], 'B');
        rosa_detok_stream_free(ds);
    }
    ck_assert_int_eq(rosa_tokenizer_is_special(tk, -5), 0);
    ck_assert_int_eq(rosa_tokenizer_is_special(tk, 1 << 30), 0);
    rosa_tokenizer_free(tk);
}
END_TEST

START_TEST(invalid_utf8_encodes) {
    rosa_tokenizer *tk = NULL;
    char err[256];
    ck_assert_int_eq(tkf_load(&(tkf_opts){.normalizer = "{\"type\":\"NFC\"}",
                                          .pre = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
                                                 "\"pattern\":{\"Regex\":\"\\\\s+|\\\\p{L}+\"},\"behavior\":\"Isolated\","
                                                 "\"invert\":false},{\"type\":\"ByteLevel\",\"use_regex\":false,"
                                                 "\"add_prefix_space\":false}]}"},
                              &tk, err, sizeof err),
                     0);
    static const char *const texts[] = {"\xff", "\xc0\xaf", "a\xed\xa0\x80z", "\xf0\x9f\x98", "\x80\x80 e\xcc\x81\xfe",
                                        "\xf4\x90\x80\x80", "ok"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int32_t *ids;
        size_t n;
        size_t len = strlen(texts[i]);
        ck_assert_int_eq(rosa_tokenize(tk, texts[i], len, 1, &ids, &n), 0);
        char *out;
        size_t ol;
        ck_assert_int_eq(rosa_detokenize(tk, ids, n, 0, &out, &ol), 0);
        if (i == 4) ck_assert_str_eq(out, "\x80\x80 \xc3\xa9\xfe"); /* the valid part is NFC'd */
        else ck_assert(ol == len && memcmp(out, texts[i], len) == 0);
        free(out);
        free(ids);
    }
    /* NUL bytes are text like any other */
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(rosa_tokenize(tk, "a\0b", 3, 1, &ids, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(ids[1], 0);
    free(ids);
    rosa_tokenizer_free(tk);
}
END_TEST

START_TEST(bad_arguments) {
    rosa_tokenizer *tk = NULL;
    char err[256];
    ck_assert_int_eq(tkf_load(&(tkf_opts){0}, &tk, err, sizeof err), 0);
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(rosa_tokenize(NULL, "a", 1, 1, &ids, &n), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa_tokenize(tk, NULL, 1, 1, &ids, &n), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa_tokenize(tk, "a", 1, 1, NULL, &n), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa_tokenize(tk, NULL, 0, 1, &ids, &n), 0); /* empty text: no ids */
    ck_assert_int_eq(n, 0);
    free(ids);
    char *t;
    size_t l;
    ck_assert_int_eq(rosa_detokenize(tk, NULL, 1, 0, &t, &l), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa_detokenize(tk, NULL, 0, 0, &t, &l), 0);
    ck_assert_int_eq(l, 0);
    ck_assert_str_eq(t, "");
    free(t);
    ck_assert_ptr_null(rosa_detok_stream_new(NULL, 0));
    const char *o;
    ck_assert_int_eq(rosa_detok_stream_push(NULL, 1, &o, &l), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa_detok_stream_flush(NULL, &o, &l), ROSA_ERR_INVALID);
    rosa_detok_stream_free(NULL);
    rosa_tokenizer_free(NULL);
    ck_assert_int_eq(rosa_tokenizer_token_id(tk, NULL), -1);
    ck_assert_int_eq(rosa_tokenizer_token_id(NULL, "a"), -1);
    ck_assert_int_eq(rosa_tokenizer_token_id(tk, "a"), 'a');
    ck_assert_int_eq(rosa_tokenizer_eos(tk), -1);
    ck_assert_int_eq(rosa_utf8_lossy(NULL, 1, &t, &l), ROSA_ERR_INVALID);
    rosa_tokenizer_free(tk);
}
END_TEST

START_TEST(utf8_lossy_like_hf) {
    static const struct { const char *in, *out; } cases[] = {
        {"abc", "abc"},
        {"\xff", "\xef\xbf\xbd"},
        {"\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* E0 80: not a prefix */
        {"\xe4\xbd", "\xef\xbf\xbd"},                             /* one maximal subpart */
        {"\xe4\xbd" "a", "\xef\xbf\xbd" "a"},
        {"\xf0\x9f\x98" "\xf0\x9f\x98\x80", "\xef\xbf\xbd\xf0\x9f\x98\x80"},
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *o;
        size_t l;
        ck_assert_int_eq(rosa_utf8_lossy(cases[i].in, strlen(cases[i].in), &o, &l), 0);
        ck_assert_str_eq(o, cases[i].out);
        free(o);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("tokenizer_errors");
    TCase *tc = tcase_create("errors");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, malformed_json);
    tcase_add_test(tc, truncated_fixture);
    tcase_add_test(tc, truncated_qwen3);
    tcase_add_test(tc, bad_merges);
    tcase_add_test(tc, bad_vocab_and_added);
    tcase_add_test(tc, unsupported_components);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, ids_out_of_range);
    tcase_add_test(tc, invalid_utf8_encodes);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, utf8_lossy_like_hf);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
