/* test_server_request.c: request validation of the server (server/request.c): every field's
 * type and bounds, malformed JSON, unsupported fields, prompt forms. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "request.h"
#include "testutil.h"

static srv_limits lim;

static int parse(srv_kind kind, const char *body, srv_params *p, srv_error *e) {
    srv_limits_default(&lim);
    lim.vocab = 512;
    lim.max_n = 8;
    lim.max_tokens = 1000;
    lim.max_prompt_tokens = 100;
    return srv_parse_request(body, strlen(body), kind, &lim, p, e);
}

/* expect a 400 naming param */
static void bad(srv_kind kind, const char *body, const char *param) {
    srv_params p;
    srv_error e;
    memset(&e, 0, sizeof e);
    int rc = parse(kind, body, &p, &e);
    ck_assert_msg(rc == -1, "accepted: %s", body);
    ck_assert_int_eq(e.status, 400);
    if (param) ck_assert_msg(!strcmp(e.param, param), "%s: param '%s' (%s)", body, e.param, e.message);
    ck_assert(e.message[0]);
}

START_TEST(completion_forms) {
    srv_params p;
    srv_error e;
    ck_assert_int_eq(parse(SRV_COMPLETION, "{\"prompt\":\"hello\"}", &p, &e), 0);
    ck_assert_int_eq(p.n_prompts, 1);
    ck_assert_str_eq(p.prompts[0].text, "hello");
    ck_assert_int_eq(p.max_tokens, 16);
    ck_assert_int_eq(p.logprobs, -1);
    srv_params_free(&p);
    ck_assert_int_eq(parse(SRV_COMPLETION, "{\"prompt\":[1,2,3],\"max_tokens\":0,\"echo\":true,"
                                           "\"logprobs\":5,\"n\":2,\"stop\":[\"a\",\"bc\"],"
                                           "\"seed\":-3,\"logit_bias\":{\"7\":-100},"
                                           "\"return_token_ids\":true}", &p, &e), 0);
    ck_assert_int_eq(p.prompts[0].n_ids, 3);
    ck_assert_int_eq(p.prompts[0].ids[2], 3);
    ck_assert_int_eq(p.max_tokens, 0);
    ck_assert_int_eq(p.logprobs, 5);
    ck_assert_int_eq(p.n_stop, 2);
    ck_assert_int_eq(p.n_bias, 1);
    ck_assert_int_eq(p.bias_ids[0], 7);
    ck_assert(p.has_seed);
    srv_params_free(&p);
    ck_assert_int_eq(parse(SRV_COMPLETION, "{\"prompt\":[[1],[2,3]],\"stream\":true,"
                                           "\"stream_options\":{\"include_usage\":true}}", &p, &e), 0);
    ck_assert_int_eq(p.n_prompts, 2);
    ck_assert(p.include_usage);
    srv_params_free(&p);
    ck_assert_int_eq(parse(SRV_COMPLETION, "{\"prompt\":[\"a\",\"b\"],\"response_format\":{\"type\":\"text\"}}", &p, &e), 0);
    srv_params_free(&p);
}
END_TEST

START_TEST(chat_forms) {
    srv_params p;
    srv_error e;
    ck_assert_int_eq(parse(SRV_CHAT, "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                                     "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                                     "{\"type\":\"text\",\"text\":\"b\"}]}],\"logprobs\":true,"
                                     "\"top_logprobs\":3,\"max_completion_tokens\":5}", &p, &e), 0);
    ck_assert_int_eq(p.n_msgs, 2);
    ck_assert_str_eq(p.msgs[1].content, "ab");
    ck_assert_int_eq(p.logprobs, 3);
    ck_assert_int_eq(p.max_tokens, 5);
    srv_params_free(&p);
    ck_assert_int_eq(parse(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &p, &e), 0);
    ck_assert_int_eq(p.max_tokens, -1);
    srv_params_free(&p);
}
END_TEST

START_TEST(malformed) {
    bad(SRV_COMPLETION, "", NULL);
    bad(SRV_COMPLETION, "{", NULL);
    bad(SRV_COMPLETION, "[1,2]", NULL);
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",}", NULL);
    bad(SRV_COMPLETION, "null", NULL);
    bad(SRV_COMPLETION, "{}", "prompt");
    bad(SRV_COMPLETION, "{\"prompt\":\"\"}", "prompt");
    bad(SRV_COMPLETION, "{\"prompt\":[]}", "prompt");
    bad(SRV_COMPLETION, "{\"prompt\":[1,\"a\"]}", "prompt");
    bad(SRV_COMPLETION, "{\"prompt\":[1.5]}", "prompt");
    bad(SRV_COMPLETION, "{\"prompt\":[-1]}", "prompt");
    bad(SRV_COMPLETION, "{\"prompt\":[512]}", "prompt");
    bad(SRV_COMPLETION, "{\"prompt\":[[1],\"a\"]}", "prompt");
    bad(SRV_COMPLETION, "{\"prompt\":{}}", "prompt");
    bad(SRV_COMPLETION, "{\"prompt\":7}", "prompt");
}
END_TEST

START_TEST(types_and_bounds) {
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"max_tokens\":-1}", "max_tokens");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"max_tokens\":1e12}", "max_tokens");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"max_tokens\":\"5\"}", "max_tokens");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"max_tokens\":1.5}", "max_tokens");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"n\":0}", "n");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"n\":1000000}", "n");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"logprobs\":21}", "logprobs");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"logprobs\":true}", "logprobs");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"temperature\":-0.1}", "temperature");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"temperature\":\"hot\"}", "temperature");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"top_p\":0}", "top_p");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"top_p\":1.5}", "top_p");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"min_p\":2}", "min_p");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"top_k\":-2}", "top_k");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"presence_penalty\":3}", "presence_penalty");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"repetition_penalty\":0}", "repetition_penalty");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"stream\":1}", "stream");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"stream_options\":{\"include_usage\":true}}", "stream_options");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"stop\":5}", "stop");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"stop\":[\"\"]}", "stop");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"seed\":\"x\"}", "seed");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"logit_bias\":{\"x\":1}}", "logit_bias");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"logit_bias\":{\"1\":101}}", "logit_bias");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"logit_bias\":{\"9999\":1}}", "logit_bias");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"logit_bias\":[1]}", "logit_bias");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"echo\":\"yes\"}", "echo");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"model\":5}", "model");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"session_id\":\"a b\"}", "session_id");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"session_id\":\"s\",\"n\":2}", "session_id");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"best_of\":3}", "best_of");
    bad(SRV_COMPLETION, "{\"prompt\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,100,101]}", "prompt");
}
END_TEST

START_TEST(unsupported_fields) {
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"suffix\":\"b\"}", "suffix");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"frobnicate\":1}", "frobnicate");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"messages\":[]}", "messages");
    bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[]}", "tools");
    bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}}", "response_format");
    bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"echo\":true}", "echo");
    bad(SRV_CHAT, "{\"messages\":[]}", "messages");
    bad(SRV_CHAT, "{\"messages\":\"hi\"}", "messages");
    bad(SRV_CHAT, "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages[0]");
    bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", "messages[0]");
    bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages[0]");
    bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}", "top_logprobs");
    bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs");
}
END_TEST

START_TEST(tok_requests) {
    srv_tok_req r;
    srv_error e;
    ck_assert_int_eq(srv_parse_tok_request("{\"prompt\":\"ab\"}", 15, 0, 10, &r, &e), 0);
    ck_assert_str_eq(r.text, "ab");
    srv_tok_req_free(&r);
    const char *d = "{\"tokens\":[1,2]}";
    ck_assert_int_eq(srv_parse_tok_request(d, strlen(d), 1, 10, &r, &e), 0);
    ck_assert_int_eq(r.n_ids, 2);
    srv_tok_req_free(&r);
    d = "{\"tokens\":[1,\"x\"]}";
    ck_assert_int_eq(srv_parse_tok_request(d, strlen(d), 1, 10, &r, &e), -1);
    d = "{\"prompt\":3}";
    ck_assert_int_eq(srv_parse_tok_request(d, strlen(d), 0, 10, &r, &e), -1);
    d = "{\"bogus\":3}";
    ck_assert_int_eq(srv_parse_tok_request(d, strlen(d), 0, 10, &r, &e), -1);
}
END_TEST

/* a body of n bytes (may hold NUL): 400 expected */
static void bad_n(srv_kind kind, const char *body, size_t n, const char *param) {
    srv_params p;
    srv_error e;
    memset(&e, 0, sizeof e);
    srv_limits_default(&lim);
    lim.vocab = 512;
    ck_assert_msg(srv_parse_request(body, n, kind, &lim, &p, &e) == -1, "accepted: %s", body);
    ck_assert_int_eq(e.status, 400);
    if (param) ck_assert_msg(!strcmp(e.param, param), "%s: param '%s' (%s)", body, e.param, e.message);
}

/* issue 14 item 9: exactly one JSON value; no NUL, raw or escaped; no key twice */
START_TEST(strict_json) {
    srv_params p;
    srv_error e;
    bad(SRV_COMPLETION, "{\"prompt\":\"a\"} x", NULL);
    bad(SRV_COMPLETION, "{\"prompt\":\"a\"}{\"prompt\":\"b\"}", NULL);
    bad(SRV_COMPLETION, "{\"prompt\":\"a\"}]", NULL);
    bad(SRV_COMPLETION, "{\"prompt\":\"a\"}\n\n1", NULL);
    bad_n(SRV_COMPLETION, "{\"prompt\":\"a\"}\0", 15, NULL);
    bad_n(SRV_COMPLETION, "{\"prompt\":\"a\0b\"}", 16, NULL);
    /* \u0000 anywhere: prompt, stop string, message, part text, a key */
    bad(SRV_COMPLETION, "{\"prompt\":\"secret\\u0000ignored\"}", NULL);
    bad(SRV_COMPLETION, "{\"prompt\":[\"a\",\"b\\u0000\"]}", NULL);
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"stop\":[\"x\\u0000y\"]}", NULL);
    bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\\u0000there\"}]}", NULL);
    bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                  "\"text\":\"\\u0000\"}]}]}", NULL);
    bad(SRV_COMPLETION, "{\"prompt\\u0000x\":\"a\"}", NULL);
    /* a key twice, at any depth */
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"prompt\":\"b\"}", "prompt");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"max_tokens\":1,\"max_tokens\":900}", "max_tokens");
    bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"role\":\"system\",\"content\":\"x\"}]}",
        "role");
    char big[2048];
    size_t o = (size_t)snprintf(big, sizeof big, "{\"prompt\":\"a\",\"logit_bias\":{");
    for (int i = 0; i < 40; i++) o += (size_t)snprintf(big + o, sizeof big - o, "\"%d\":1,", i);
    snprintf(big + o, sizeof big - o, "\"7\":2}}");
    bad(SRV_COMPLETION, big, "7");
    bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"logit_bias\":{\"7\":1,\"07\":2}}", "logit_bias");
    /* still accepted: trailing whitespace, an escaped backslash before u0000, other escapes */
    ck_assert_int_eq(parse(SRV_COMPLETION, "{\"prompt\":\"a\\\\u0000\\u0041\"} \r\n\t", &p, &e), 0);
    ck_assert_str_eq(p.prompts[0].text, "a\\u0000A");
    srv_params_free(&p);
    big[o - 1] = '}';
    big[o] = '}';
    big[o + 1] = 0;
    ck_assert_int_eq(parse(SRV_COMPLETION, big, &p, &e), 0);
    ck_assert_int_eq(p.n_bias, 40);
    srv_params_free(&p);
}
END_TEST

/* issue 14 items 9, 10: /tokenize field names exactly; one session-id rule for body and header */
START_TEST(exact_names) {
    srv_tok_req r;
    srv_error e;
    const char *d = "{\"prompt|text\":\"a\"}";
    ck_assert_int_eq(srv_parse_tok_request(d, strlen(d), 0, 10, &r, &e), -1);
    d = "{\"|model|\":\"a\",\"prompt\":\"a\"}";
    ck_assert_int_eq(srv_parse_tok_request(d, strlen(d), 0, 10, &r, &e), -1);
    d = "{\"tok\":[1]}";
    ck_assert_int_eq(srv_parse_tok_request(d, strlen(d), 1, 10, &r, &e), -1);
    d = "{\"prompt\":\"a\",\"text\":\"b\"}";
    ck_assert_int_eq(srv_parse_tok_request(d, strlen(d), 0, 10, &r, &e), -1);
    d = "{\"text\":\"ab\",\"add_special_tokens\":false}";
    ck_assert_int_eq(srv_parse_tok_request(d, strlen(d), 0, 10, &r, &e), 0);
    ck_assert_str_eq(r.text, "ab");
    ck_assert_int_eq(r.add_special, 0);
    srv_tok_req_free(&r);
    d = "{\"prompt\":\"a\\u0000b\"}";
    ck_assert_int_eq(srv_parse_tok_request(d, strlen(d), 0, 10, &r, &e), -1);
    const char *good[] = {"a", "alice", "A-b_c.d:e", "0", NULL};
    const char *evil[] = {"", "../../etc/passwd", "a/b", "a b", "a\tb", "a\x01", "\xc3\xa9",
                          "a\"b", "a\\b", NULL};
    for (int i = 0; good[i]; i++) ck_assert_msg(srv_valid_session_id(good[i]), "%s", good[i]);
    for (int i = 0; evil[i]; i++) ck_assert_msg(!srv_valid_session_id(evil[i]), "%s", evil[i]);
    char longid[200];
    memset(longid, 'a', sizeof longid);
    longid[SRV_MAX_ID_LEN] = 0;
    ck_assert(srv_valid_session_id(longid));
    longid[SRV_MAX_ID_LEN] = 'a';
    longid[SRV_MAX_ID_LEN + 1] = 0;
    ck_assert(!srv_valid_session_id(longid));
}
END_TEST

/* every prefix of a valid body: never crashes, never leaks (ASan) */
START_TEST(prefixes) {
    const char *b = "{\"prompt\":[[1,2],[3]],\"n\":2,\"stop\":[\"x\"],\"logit_bias\":{\"3\":1.5},"
                    "\"stream\":true,\"stream_options\":{\"include_usage\":false},\"seed\":1}";
    for (size_t n = 0; n <= strlen(b); n++) {
        srv_params p;
        srv_error e;
        srv_limits_default(&lim);
        if (srv_parse_request(b, n, SRV_COMPLETION, &lim, &p, &e) == 0) srv_params_free(&p);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("server_request");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, completion_forms);
    tcase_add_test(tc, chat_forms);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, types_and_bounds);
    tcase_add_test(tc, unsupported_fields);
    tcase_add_test(tc, tok_requests);
    tcase_add_test(tc, prefixes);
    tcase_add_test(tc, strict_json);
    tcase_add_test(tc, exact_names);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
