/* fuzz_tokenize.c: fuzz target for the encoder and decoders (libFuzzer entry point).
 *
 * Input: one flags byte (bit 0: parse special tokens, bit 1: skip special tokens when
 * decoding), then the text, any bytes.  Checked on every input, beyond "no crash":
 *   - decode(encode(x)) == x with each well-formed run NFC-normalized by utf8proc directly (so
 *     the fast path of tokenizer_norm.c is checked against the plain library call);
 *   - streaming decode equals one-shot decode, with and without skipping special tokens;
 *   - the lossy repair of the decoded bytes is well-formed UTF-8.
 * The tokenizer is $ROSA_FUZZ_TOKENIZER, else Qwen3's from ../shared. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "fuzz.h"
#include "rosa.h"
#include "rosa_tokenizer.h"
#include "tokenizer/tokenizer_internal.h"

static rosa_tokenizer *tk;

static void cleanup(void) { rosa_tokenizer_free(tk); }

/* decode(encode(x)) == NFC(x) holds for Qwen3's tokenizer; the synthetic fallback strips
 * whitespace around some added tokens and normalises with NFKC, so only the other checks apply. */
static int exact_roundtrip = 1;

int rosa_fuzz_init(void) {
    const char *path = getenv("ROSA_FUZZ_TOKENIZER");
    char def[4096];
    if (!path) {
        const char *shared = getenv("ROSA_SHARED");
        if (shared) snprintf(def, sizeof def, "%s/tokenizer/qwen3/tokenizer.json", shared);
        else snprintf(def, sizeof def, "%s/../shared/tokenizer/qwen3/tokenizer.json", ROSA_SOURCE_DIR);
        path = def;
        /* without ../shared (a plain clone), fuzz the project's own synthetic tokenizer */
        FILE *f = fopen(def, "rb");
        if (f) fclose(f);
        else {
            snprintf(def, sizeof def, "%s/tests/data/tokenizer/synthetic/tokenizer.json", ROSA_SOURCE_DIR);
            exact_roundtrip = 0;
            fprintf(stderr, "fuzz_tokenize: ../shared absent; fuzzing %s\n", def);
        }
    }
    char err[512];
    int rc = rosa_tokenizer_load(path, &tk, err, sizeof err);
    if (rc) {
        fprintf(stderr, "fuzz_tokenize: %s\n", err);
        return rc == ROSA_ERR_IO ? 77 : 1;
    }
    atexit(cleanup);
    return 0;
}

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_tokenize: check failed: %s (line %d)\n", #c, __LINE__);         \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* x with its well-formed runs NFC'd by utf8proc (what decode(encode(x)) must give). */
static char *expected(const char *x, size_t n, size_t *len) {
    char *out = malloc(n * 3 + 1); /* NFC grows text by at most 3x */
    size_t w = 0, i = 0;
    const unsigned char *u = (const unsigned char *)x;
    while (i < n) {
        size_t v = rosa__utf8_valid_prefix(u + i, n - i);
        if (v) {
            utf8proc_uint8_t *nfc = NULL;
            utf8proc_ssize_t l = utf8proc_map(u + i, (utf8proc_ssize_t)v, &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            CHECK(l >= 0 && (size_t)l <= 3 * v);
            memcpy(out + w, nfc, (size_t)l);
            w += (size_t)l;
            free(nfc);
            i += v;
        } else {
            out[w++] = x[i++];
        }
    }
    *len = w;
    return out;
}

static void check_stream(const int32_t *ids, size_t n, int skip) {
    char *one;
    size_t one_len;
    CHECK(rosa_detokenize(tk, ids, n, skip, &one, &one_len) == 0);
    rosa_detok_stream *ds = rosa_detok_stream_new(tk, skip);
    CHECK(ds != NULL);
    size_t w = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *o;
        size_t l;
        CHECK((i < n ? rosa_detok_stream_push(ds, ids[i], &o, &l) : rosa_detok_stream_flush(ds, &o, &l)) == 0);
        CHECK(w + l <= one_len && memcmp(one + w, o, l) == 0);
        w += l;
    }
    CHECK(w == one_len);
    rosa_detok_stream_free(ds);
    free(one);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tk && rosa_fuzz_init() != 0) abort();
    if (size == 0) return 0;
    int flags = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t *ids;
    size_t n;
    CHECK(rosa_tokenize(tk, text, len, flags & 1, &ids, &n) == 0);
    char *dec;
    size_t dl;
    CHECK(rosa_detokenize(tk, ids, n, 0, &dec, &dl) == 0);
    size_t el;
    char *exp = expected(text, len, &el);
    if (exact_roundtrip) CHECK(dl == el && memcmp(dec, exp, el) == 0);
    check_stream(ids, n, flags & 2 ? 1 : 0);
    char *lossy;
    size_t ll;
    CHECK(rosa_utf8_lossy(dec, dl, &lossy, &ll) == 0);
    CHECK(rosa__utf8_valid_prefix((const unsigned char *)lossy, ll) == ll);
    free(lossy);
    free(exp);
    free(dec);
    free(ids);
    return 0;
}
