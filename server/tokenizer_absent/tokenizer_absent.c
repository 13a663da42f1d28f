/* tokenizer_absent.c: temporary stand-in linked only while the engine lacks the tokenizer
 * (see server/CMakeLists.txt): every call reports ROSA_ERR_UNSUPPORTED, so the server runs
 * with token-id prompts only.  Deleted once engine/src has the real implementation. */
#include <stddef.h>

#include "rosa.h"
#include "rosa_tokenizer.h"

int rosa_tokenizer_load(const char *p, rosa_tokenizer **out, char *err, size_t errlen) {
    if (err && errlen) {
        const char msg[] = "this build has no tokenizer";
        size_t n = sizeof msg < errlen ? sizeof msg : errlen;
        for (size_t i = 0; i + 1 < n; i++) err[i] = msg[i];
        err[n - 1] = 0;
    }
    *out = NULL;
    return ROSA_ERR_UNSUPPORTED;
}
void rosa_tokenizer_free(rosa_tokenizer *tk) {}
int rosa_tokenizer_vocab_size(const rosa_tokenizer *tk) { return 0; }
int32_t rosa_tokenizer_token_id(const rosa_tokenizer *tk, const char *t) { return -1; }
int rosa_tokenizer_is_special(const rosa_tokenizer *tk, int32_t id) { return 0; }
int32_t rosa_tokenizer_eos(const rosa_tokenizer *tk) { return -1; }
int rosa_tokenize(const rosa_tokenizer *tk, const char *t, size_t l, int ps, int32_t **ids,
                  size_t *n) {
    return ROSA_ERR_UNSUPPORTED;
}
int rosa_detokenize(const rosa_tokenizer *tk, const int32_t *ids, size_t n, int ss, char **text,
                    size_t *len) {
    return ROSA_ERR_UNSUPPORTED;
}
rosa_detok_stream *rosa_detok_stream_new(const rosa_tokenizer *tk, int ss) { return NULL; }
void rosa_detok_stream_free(rosa_detok_stream *ds) {}
int rosa_detok_stream_push(rosa_detok_stream *ds, int32_t id, const char **o, size_t *l) {
    return ROSA_ERR_UNSUPPORTED;
}
int rosa_detok_stream_flush(rosa_detok_stream *ds, const char **o, size_t *l) {
    return ROSA_ERR_UNSUPPORTED;
}
int rosa_chat_format(const rosa_tokenizer *tk, const rosa_chat_msg *m, int n,
                     const rosa_chat_opts *o, char **out, size_t *len) {
    return ROSA_ERR_UNSUPPORTED;
}
int rosa_chat_stop_ids(const rosa_tokenizer *tk, int32_t *out, int cap) { return 0; }
