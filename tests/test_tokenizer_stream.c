/* test_tokenizer_stream.c: streaming decode holds back exactly the incomplete UTF-8 tail, passes
 * on bytes that can never complete, skips special tokens when asked, and flushes the rest;
 * plus the added-token matching rules (leftmost-longest, parse_special, lstrip / rstrip /
 * single_word) that the Qwen3 corpus does not reach. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa_tokenizer.h"
#include "testutil.h"
#include "tokenizer_fixture.h"

static rosa_tokenizer *tk;

static void setup(void) {
    char err[256];
    /* byte tokens, plus <|a|> (special) and <|a|>x (non-special: longest match wins) */
    tkf_opts o = {.added = "{\"id\":300,\"content\":\"<|a|>\",\"special\":true,\"normalized\":false},"
                           "{\"id\":301,\"content\":\"<|a|>x\",\"special\":false,\"normalized\":false},"
                           "{\"id\":302,\"content\":\"[L]\",\"lstrip\":true,\"normalized\":false},"
                           "{\"id\":303,\"content\":\"[R]\",\"rstrip\":true,\"normalized\":false},"
                           "{\"id\":304,\"content\":\"[W]\",\"single_word\":true,\"normalized\":false}"};
    ck_assert_int_eq(tkf_load(&o, &tk, err, sizeof err), 0);
}

static void teardown(void) {
    rosa_tokenizer_free(tk);
    tk = NULL;
}

/* Push ids (bytes are their own ids), returning what each push emitted, joined by '|'. */
static char *pushes(rosa_detok_stream *ds, const int32_t *ids, size_t n) {
    static char buf[256];
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        const char *o;
        size_t l;
        ck_assert_int_eq(rosa_detok_stream_push(ds, ids[i], &o, &l), 0);
        if (i) buf[w++] = '|';
        memcpy(buf + w, o, l);
        w += l;
    }
    buf[w] = 0;
    return buf;
}

START_TEST(holds_back_incomplete_sequences) {
    rosa_detok_stream *ds = rosa_detok_stream_new(tk, 0);
    int32_t ni[] = {0xE4, 0xBD, 0xA0, 'a'}; /* 你 split over three tokens */
    ck_assert_str_eq(pushes(ds, ni, 4), "||\xe4\xbd\xa0|a");
    int32_t emoji[] = {0xF0, 0x9F, 0x98, 0x80};
    ck_assert_str_eq(pushes(ds, emoji, 4), "|||\xf0\x9f\x98\x80");
    /* never-completable bytes go out at once */
    int32_t bad[] = {0xFF, 0x80, 0xC0, 0xE0, 0x80}; /* E0 80 can never be well-formed */
    ck_assert_str_eq(pushes(ds, bad, 5), "\xff|\x80|\xc0||\xe0\x80");
    /* an incomplete sequence interrupted by ASCII is passed on with it */
    int32_t cut[] = {0xE4, 0xBD, 'z'};
    ck_assert_str_eq(pushes(ds, cut, 3), "||\xe4\xbdz");
    /* the end of the stream: the held tail comes out of flush */
    int32_t tail[] = {'q', 0xF0, 0x9F};
    ck_assert_str_eq(pushes(ds, tail, 3), "q||");
    const char *o;
    size_t l;
    ck_assert_int_eq(rosa_detok_stream_flush(ds, &o, &l), 0);
    ck_assert_int_eq(l, 2);
    ck_assert(memcmp(o, "\xf0\x9f", 2) == 0);
    ck_assert_int_eq(rosa_detok_stream_flush(ds, &o, &l), 0);
    ck_assert_int_eq(l, 0);
    rosa_detok_stream_free(ds);
}
END_TEST

START_TEST(skip_special) {
    int32_t ids[] = {'a', 300, 301, 'b'};
    rosa_detok_stream *ds = rosa_detok_stream_new(tk, 1);
    ck_assert_str_eq(pushes(ds, ids, 4), "a||<|a|>x|b");
    rosa_detok_stream_free(ds);
    ds = rosa_detok_stream_new(tk, 0);
    ck_assert_str_eq(pushes(ds, ids, 4), "a|<|a|>|<|a|>x|b");
    rosa_detok_stream_free(ds);
    char *t;
    size_t l;
    ck_assert_int_eq(rosa_detokenize(tk, ids, 4, 1, &t, &l), 0);
    ck_assert_str_eq(t, "a<|a|>xb");
    free(t);
    ck_assert_int_eq(rosa_tokenizer_is_special(tk, 300), 1);
    ck_assert_int_eq(rosa_tokenizer_is_special(tk, 301), 0);
    ck_assert_int_eq(rosa_tokenizer_token_id(tk, "<|a|>x"), 301);
}
END_TEST

static void expect_ids(const char *text, int special, const int32_t *want, size_t nwant) {
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(rosa_tokenize(tk, text, strlen(text), special, &ids, &n), 0);
    int ok = n == nwant && memcmp(ids, want, n * sizeof *ids) == 0;
    if (!ok) {
        printf("'%s' (special=%d):", text, special);
        for (size_t i = 0; i < n; i++) printf(" %d", (int)ids[i]);
        printf("\n");
    }
    ck_assert(ok);
    free(ids);
}
#define EXPECT(text, special, ...)                                                                   \
    do {                                                                                             \
        int32_t w_[] = {__VA_ARGS__};                                                                \
        expect_ids(text, special, w_, sizeof w_ / sizeof w_[0]);                                     \
    } while (0)

START_TEST(added_token_rules) {
    EXPECT("<|a|>", 1, 300);
    EXPECT("<|a|>x", 1, 301);           /* longest match */
    EXPECT("<|a|>x", 0, 301);           /* a non-special token is matched even as text */
    EXPECT("<|a|>", 0, '<', '|', 'a', '|', '>');
    EXPECT("<<|a|>>", 1, '<', 300, '>');
    EXPECT("a  [L]b", 1, 'a', 302, 'b'); /* lstrip eats the spaces before */
    EXPECT("a[R]  b", 1, 'a', 303, 'b'); /* rstrip eats the spaces after */
    EXPECT("a[R] \n\tb", 1, 'a', 303, 'b');
    EXPECT("a [W] b", 1, 'a', ' ', 304, ' ', 'b');
    EXPECT("a[W] b", 1, 'a', '[', 'W', ']', ' ', 'b'); /* not a single word */
    EXPECT("[W]", 1, 304);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tokenizer_stream");
    TCase *tc = tcase_create("stream");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, holds_back_incomplete_sequences);
    tcase_add_test(tc, skip_special);
    tcase_add_test(tc, added_token_rules);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
