/* tokenizer_cases.h: checking a tokenizer against the stored Hugging Face cases
 * (tests/data/tokenizer JSONL files from tools/gen_tokenizer_cases.py, whose header gives the
 * line format).  For every case: encode with and without special-token parsing equals HF's ids;
 * decode gives NFC(text) back (HF's decode, with U+FFFD, where the case stores it); streaming
 * decode equals one-shot decode and, for valid text, never emits a broken UTF-8 sequence.
 * Header-only (static functions), shared by the corpus test programs. */
#ifndef ROSA_TOKENIZER_CASES_H
#define ROSA_TOKENIZER_CASES_H

#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa_tokenizer.h"
#include "testutil.h"
#include "tokenizer/tokenizer_internal.h"

typedef struct {
    int cases, agree, failures_shown;
} tally;

static inline int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A byte-string field: KEY (a JSON string) or KEY_hex; malloc'd, or NULL if absent. */
static inline char *get_bytes(const cJSON *c, const char *key, size_t *len) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, key);
    if (cJSON_IsString(t)) {
        *len = strlen(t->valuestring);
        return strdup(t->valuestring);
    }
    char hk[32];
    snprintf(hk, sizeof hk, "%s_hex", key);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(c, hk);
    if (!cJSON_IsString(h)) return NULL;
    size_t n = strlen(h->valuestring) / 2;
    char *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(hexval(h->valuestring[2 * i]) * 16 + hexval(h->valuestring[2 * i + 1]));
    b[n] = 0;
    *len = n;
    return b;
}

static inline int32_t *json_ids(const cJSON *a, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(a);
    int32_t *v = malloc((*n + 1) * sizeof *v);
    size_t i = 0;
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next) v[i++] = (int32_t)e->valuedouble;
    return v;
}

static inline void show(tally *t, const char *what, const char *text, size_t len) {
    if (t->failures_shown++ >= 8) return;
    printf("MISMATCH (%s) for %zu bytes: \"", what, len);
    for (size_t i = 0; i < len && i < 120; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7F && c != '"') putchar(c);
        else printf("\\x%02x", c);
    }
    printf("\"\n");
}

static inline int ids_equal(const rosa_tokenizer *tk, const char *text, size_t len, int special, const cJSON *want) {
    int32_t *got;
    size_t n;
    if (rosa_tokenize(tk, text, len, special, &got, &n) != 0) return 0;
    size_t wn;
    int32_t *w = json_ids(want, &wn);
    int ok = wn == n && memcmp(w, got, n * sizeof *got) == 0;
    if (!ok && getenv("ROSA_TEST_VERBOSE")) {
        printf("  want:");
        for (size_t i = 0; i < wn; i++) printf(" %d", (int)w[i]);
        printf("\n  got: ");
        for (size_t i = 0; i < n; i++) printf(" %d", (int)got[i]);
        printf("\n");
    }
    free(w);
    free(got);
    return ok;
}

/* Streaming decode equals one-shot decode; with valid text every chunk is well-formed. */
static inline int stream_ok(const rosa_tokenizer *tk, const int32_t *ids, size_t n, int skip, int valid) {
    char *one;
    size_t one_len;
    if (rosa_detokenize(tk, ids, n, skip, &one, &one_len)) return 0;
    rosa_detok_stream *ds = rosa_detok_stream_new(tk, skip);
    char *acc = malloc(one_len + 1);
    size_t w = 0;
    int ok = ds != NULL;
    for (size_t i = 0; i <= n && ok; i++) {
        const char *o;
        size_t l;
        int rc = i < n ? rosa_detok_stream_push(ds, ids[i], &o, &l) : rosa_detok_stream_flush(ds, &o, &l);
        if (rc || w + l > one_len) {
            ok = 0;
            break;
        }
        if (valid && rosa__utf8_valid_prefix((const unsigned char *)o, l) != l) ok = 0;
        memcpy(acc + w, o, l);
        w += l;
    }
    ok = ok && w == one_len && memcmp(acc, one, w) == 0;
    rosa_detok_stream_free(ds);
    free(acc);
    free(one);
    return ok;
}

static inline void check_case(const rosa_tokenizer *tk, const cJSON *c, tally *t) {
    size_t len, nfc_len = 0, dec_len = 0;
    char *text = get_bytes(c, "t", &len);
    ck_assert(text != NULL);
    int valid = rosa__utf8_valid_prefix((const unsigned char *)text, len) == len;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(c, "ids");
    const cJSON *plain = cJSON_GetObjectItemCaseSensitive(c, "ids_plain");
    char *nfc = get_bytes(c, "nfc", &nfc_len);
    char *dec = get_bytes(c, "dec", &dec_len);
    int ok = 1;
    t->cases++;
    if (!ids_equal(tk, text, len, 1, ids)) ok = 0, show(t, "ids, special tokens parsed", text, len);
    if (!ids_equal(tk, text, len, 0, plain ? plain : ids)) ok = 0, show(t, "ids, special tokens as text", text, len);
    size_t n;
    int32_t *v = json_ids(ids, &n);
    char *out;
    size_t out_len;
    ck_assert_int_eq(rosa_detokenize(tk, v, n, 0, &out, &out_len), 0);
    if (dec) { /* HF's string: our exact bytes made lossy */
        char *lossy;
        size_t ll;
        ck_assert_int_eq(rosa_utf8_lossy(out, out_len, &lossy, &ll), 0);
        if (ll != dec_len || memcmp(lossy, dec, ll) != 0)
            ok = 0, show(t, "decode", text, len);
        free(lossy);
    } else { /* round trip: decode(encode(x)) == NFC(x) */
        const char *want = nfc ? nfc : text;
        size_t wl = nfc ? nfc_len : len;
        if (out_len != wl || memcmp(out, want, wl) != 0) ok = 0, show(t, "round trip", text, len);
    }
    if (!stream_ok(tk, v, n, 0, valid) || !stream_ok(tk, v, n, 1, valid)) ok = 0, show(t, "streaming", text, len);
    free(out);
    free(v);
    free(text);
    free(nfc);
    free(dec);
    t->agree += ok;
}

/* Run every case of a JSONL file (only those of one variant, when variant is not NULL). */
static inline void run_file(const rosa_tokenizer *tk, const char *file, const char *variant, tally *t) {
    char *path = tu_path("%s/tests/data/tokenizer/%s", tu_source_dir(), file);
    size_t len;
    char *data = tu_read_file(path, &len);
    ck_assert_msg(data != NULL, "cannot read %s", path);
    for (char *line = data; *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (*line) {
            cJSON *c = cJSON_Parse(line);
            ck_assert_msg(c != NULL, "%s: bad line", file);
            const cJSON *var = cJSON_GetObjectItemCaseSensitive(c, "variant");
            if (!variant || (cJSON_IsString(var) && strcmp(var->valuestring, variant) == 0)) check_case(tk, c, t);
            cJSON_Delete(c);
        }
        if (!nl) break;
        line = nl + 1;
    }
    free(data);
    free(path);
}

#endif
