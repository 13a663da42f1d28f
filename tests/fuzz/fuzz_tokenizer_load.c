/* fuzz_tokenizer_load.c: fuzz target for the tokenizer.json loader (libFuzzer entry point).
 *
 * Input: a tokenizer.json.  Whatever it holds, loading returns 0 or an error with a message;
 * a file that loads then encodes and decodes a fixed mixed text without failing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rosa.h"
#include "rosa_tokenizer.h"
#include "tokenizer/tokenizer_internal.h"

int rosa_fuzz_init(void) { return 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rosa_tokenizer *tk = NULL;
    char err[512] = "";
    int rc = rosa__tokenizer_load_mem((const char *)data, size, "fuzz.json", NULL, 0, NULL, &tk, err, sizeof err);
    if (rc) {
        if (tk || err[0] == 0) __builtin_trap(); /* an error always comes with a message */
        return 0;
    }
    static const char text[] = "Hello, world! 你好 <|im_end|> <s> 123  \n\r\n\xff\xfe e\xcc\x81 \xf0\x9f\x98\x80";
    int32_t *ids;
    size_t n;
    for (int special = 0; special < 2; special++) {
        /* a hostile split regex may hit PCRE2's match limit: an error, not a crash */
        rc = rosa_tokenize(tk, text, sizeof text - 1, special, &ids, &n);
        if (rc == ROSA_ERR_LIMIT) continue;
        if (rc != 0) __builtin_trap();
        char *dec;
        size_t dl;
        if (rosa_detokenize(tk, ids, n, special, &dec, &dl) != 0) __builtin_trap();
        free(dec);
        free(ids);
    }
    int32_t past_end = rosa_tokenizer_vocab_size(tk);
    char *dec;
    size_t dl;
    if (rosa_detokenize(tk, &past_end, 1, 0, &dec, &dl) != ROSA_ERR_INVALID) __builtin_trap();
    rosa_tokenizer_free(tk);
    return 0;
}
