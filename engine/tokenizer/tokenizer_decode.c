/* tokenizer_decode.c: ids back to bytes, one-shot and streaming.
 *
 * Each id's bytes were worked out at load (the ByteLevel decoder applied to its string), so
 * decoding is concatenation.  The result is the exact bytes: where Hugging Face would replace
 * an ill-formed sequence by U+FFFD (String::from_utf8_lossy), we keep the bytes, so that
 * decode(encode(x)) == x for any bytes; rosa_utf8_lossy gives Hugging Face's string.
 *
 * The stream holds back only an incomplete tail that a later token can still complete; bytes
 * that can never become well-formed are passed on at once (waiting would not help), so the
 * concatenation of everything a stream emits equals the one-shot decode. */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "tokenizer/tokenizer_internal.h"

static int id_ok(const rosa_tokenizer *tk, int32_t id) {
    return id >= 0 && id < tk->n_ids && (tk->flags[id] & ROSA__TOK_VALID);
}

static int skipped(const rosa_tokenizer *tk, int32_t id, int skip_special) {
    return skip_special && (tk->flags[id] & ROSA__TOK_SPECIAL);
}

int rosa_detokenize(const rosa_tokenizer *tk, const int32_t *ids, size_t n, int skip_special, char **text,
                    size_t *len) {
    if (!tk || !text || !len || (!ids && n)) return ROSA_ERR_INVALID;
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!id_ok(tk, ids[i])) return ROSA_ERR_INVALID;
        if (!skipped(tk, ids[i], skip_special)) total += tk->dec_len[ids[i]];
    }
    char *out = malloc(total + 1);
    if (!out) return ROSA_ERR_NOMEM;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (skipped(tk, ids[i], skip_special)) continue;
        memcpy(out + w, tk->arena + tk->dec_off[ids[i]], tk->dec_len[ids[i]]);
        w += tk->dec_len[ids[i]];
    }
    out[w] = 0;
    *text = out;
    *len = w;
    return 0;
}

struct rosa_detok_stream {
    const rosa_tokenizer *tk;
    int skip_special;
    char *pend; /* held-back tail, then the bytes of the new token */
    size_t npend, cap;
    char *out; /* what the last call returned */
    size_t out_cap;
};

rosa_detok_stream *rosa_detok_stream_new(const rosa_tokenizer *tk, int skip_special) {
    if (!tk) return NULL;
    rosa_detok_stream *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->tk = tk;
    ds->skip_special = skip_special;
    return ds;
}

void rosa_detok_stream_free(rosa_detok_stream *ds) {
    if (!ds) return;
    free(ds->pend);
    free(ds->out);
    free(ds);
}

static int reserve(char **p, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    char *q = realloc(*p, c);
    if (!q) return ROSA_ERR_NOMEM;
    *p = q;
    *cap = c;
    return 0;
}

/* Move the first k pending bytes to out. */
static int emit(rosa_detok_stream *ds, size_t k, const char **out, size_t *len) {
    if (reserve(&ds->out, &ds->out_cap, k + 1)) return ROSA_ERR_NOMEM;
    if (k) {
        memcpy(ds->out, ds->pend, k);
        memmove(ds->pend, ds->pend + k, ds->npend - k);
    }
    ds->out[k] = 0;
    ds->npend -= k;
    *out = ds->out;
    *len = k;
    return 0;
}

int rosa_detok_stream_push(rosa_detok_stream *ds, int32_t id, const char **out, size_t *len) {
    if (!ds || !out || !len) return ROSA_ERR_INVALID;
    *out = "";
    *len = 0;
    const rosa_tokenizer *tk = ds->tk;
    if (!id_ok(tk, id)) return ROSA_ERR_INVALID;
    if (!skipped(tk, id, ds->skip_special)) {
        size_t l = tk->dec_len[id];
        if (reserve(&ds->pend, &ds->cap, ds->npend + l)) return ROSA_ERR_NOMEM;
        memcpy(ds->pend + ds->npend, tk->arena + tk->dec_off[id], l);
        ds->npend += l;
    }
    return emit(ds, rosa__utf8_complete_prefix((const unsigned char *)ds->pend, ds->npend), out, len);
}

int rosa_detok_stream_flush(rosa_detok_stream *ds, const char **out, size_t *len) {
    if (!ds || !out || !len) return ROSA_ERR_INVALID;
    return emit(ds, ds->npend, out, len);
}
