/* tokenizer_query.c: the small read-only questions one asks a loaded tokenizer (size, ids of
 * named tokens, which ids are special, eos). */
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

int rosa_tokenizer_vocab_size(const rosa_tokenizer *tk) { return tk ? tk->n_ids : 0; }

int32_t rosa_tokenizer_token_id(const rosa_tokenizer *tk, const char *token) {
    if (!tk || !token) return -1;
    size_t n = strlen(token);
    /* added tokens first, by content (as Hugging Face's token_to_id) */
    for (int i = 0; i < tk->n_added; i++) {
        int32_t id = tk->added[i].id;
        if (tk->str_len[id] == n && memcmp(tk->arena + tk->str_off[id], token, n) == 0) return id;
    }
    return rosa__strmap_get(&tk->vocab, token, n);
}

int rosa_tokenizer_is_special(const rosa_tokenizer *tk, int32_t id) {
    return tk && id >= 0 && id < tk->n_ids && (tk->flags[id] & ROSA__TOK_SPECIAL) ? 1 : 0;
}

int32_t rosa_tokenizer_eos(const rosa_tokenizer *tk) { return tk ? tk->eos_id : -1; }
