/* fuzz_request.c: fuzz target for the server's request parser (srv_parse_request and
 * srv_parse_tok_request).  Built two ways: with clang -fsanitize=fuzzer as a libFuzzer target
 * (-DROSA_LIBFUZZER), or as a plain program that replays files given on the command line and
 * then runs a small seeded mutation loop (what ctest runs under ASan/UBSan). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What an accepted body must satisfy (issue 14 item 9): no NUL byte, no text cut short by a
 * decoded \u0000 (every text's length is its C string length), and nothing accepted after the
 * JSON value: the same body with a byte of garbage appended is refused. */
static void check_accepted(const uint8_t *data, size_t size, const srv_params *p, int kind,
                           const srv_limits *lim) {
    if (memchr(data, 0, size)) abort();
    for (int i = 0; i < p->n_prompts; i++)
        if (p->prompts[i].text && strlen(p->prompts[i].text) != p->prompts[i].text_len) abort();
    if (size < 4096) {
        static uint8_t more[4097];
        memcpy(more, data, size);
        more[size] = 'x';
        srv_params q;
        srv_error e;
        if (srv_parse_request((const char *)more, size + 1, (srv_kind)kind, lim, &q, &e) == 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    srv_limits lim;
    srv_limits_default(&lim);
    lim.vocab = 1000;
    srv_params p;
    srv_error e;
    for (int kind = 0; kind < 2; kind++)
        if (srv_parse_request((const char *)data, size, (srv_kind)kind, &lim, &p, &e) == 0) {
            check_accepted(data, size, &p, kind, &lim);
            srv_params_free(&p);
        }
    srv_tok_req r;
    for (int d = 0; d < 2; d++)
        if (srv_parse_tok_request((const char *)data, size, d, 1000, &r, &e) == 0)
            srv_tok_req_free(&r);
    return 0;
}

#ifndef ROSA_LIBFUZZER
static const char *seeds[] = {
    "{\"prompt\":[[1,2],[3]],\"n\":2,\"stop\":[\"x\"],\"logit_bias\":{\"3\":1.5},\"stream\":true,"
    "\"stream_options\":{\"include_usage\":false},\"seed\":1,\"echo\":true,\"logprobs\":3}",
    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],"
    "\"logprobs\":true,\"top_logprobs\":2,\"max_completion_tokens\":3,\"session_id\":\"a:b\"}",
    "{\"prompt\":\"hello\",\"temperature\":0.5,\"top_p\":0.9,\"top_k\":5,\"min_p\":0.1}",
    "{\"tokens\":[1,2,3],\"skip_special_tokens\":true}",
    /* strict JSON (issue 14): trailing data, NUL escapes, repeated keys, exact field names */
    "{\"prompt\":\"a\\u0000b\",\"stop\":[\"\\\\u0000\"]} {\"prompt\":\"c\"}",
    "{\"prompt\":\"a\",\"prompt\":[1],\"logit_bias\":{\"1\":1,\"01\":2,\"1\":3}}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\\u0000\",\"role\":\"system\"}]}\n",
    "{\"prompt|text\":\"a\",\"text\":\"b\",\"add_special_tokens\":false}",
};

static uint64_t rng = 0x1234567;
static uint32_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) continue;
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
    }
    const char *alphabet = "{}[]\",:0123456789-.eE truefalsnul\\u\n";
    int iters = getenv("FUZZ_ITERS") ? atoi(getenv("FUZZ_ITERS")) : 100000;
    uint8_t buf[512];
    for (int it = 0; it < iters; it++) {
        const char *s = seeds[next() % (sizeof seeds / sizeof seeds[0])];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int muts = 1 + (int)(next() % 4);
        for (int m = 0; m < muts; m++) {
            size_t pos = n ? next() % n : 0;
            switch (next() % 4) {
            case 0: buf[pos] = (uint8_t)alphabet[next() % strlen(alphabet)]; break;
            case 1: buf[pos] = (uint8_t)next(); break;
            case 2: if (n) { memmove(buf + pos, buf + pos + 1, n - pos - 1); n--; } break;
            case 3: if (n + 1 < sizeof buf) { memmove(buf + pos + 1, buf + pos, n - pos); buf[pos] = (uint8_t)alphabet[next() % strlen(alphabet)]; n++; } break;
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz_request: %d mutated inputs parsed\n", iters);
    return 0;
}
#endif
