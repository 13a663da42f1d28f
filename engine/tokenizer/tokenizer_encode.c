/* tokenizer_encode.c: rosa_tokenize, the encode pipeline from raw bytes to ids.
 *
 *   1. added tokens are cut out of the raw text (leftmost-longest, with their lstrip / rstrip /
 *      single_word rules; special ones only when parse_special);
 *   2. each remaining segment is cut into well-formed UTF-8 runs and invalid bytes;
 *   3. a valid run is normalized, normalized added tokens are cut out of it, and the rest goes
 *      through the pre-tokenizers and BPE (tokenizer_pretok.c, tokenizer_bpe.c);
 *   4. a run of invalid bytes is one word for BPE: Hugging Face cannot take such text at all
 *      (it wants a str), and byte-level BPE covers every byte, so this is the natural extension
 *      (and what a regex run in PCRE2's invalid-UTF mode would do: such bytes are barriers that
 *      no match crosses).  Well-formed text is unaffected by this choice. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "rosa.h"
#include "tokenizer/tokenizer_internal.h"

/* ---- added tokens ---- */

/* The code point ending just before s[at] / starting at s[at], or -1 (none or not UTF-8). */
static int32_t cp_before(const unsigned char *s, size_t at) {
    if (at == 0) return -1;
    size_t k = at - 1;
    while (k > 0 && at - k < 4 && (s[k] & 0xC0) == 0x80) k--;
    int l = rosa__utf8_seq(s + k, at - k);
    return l && (size_t)l == at - k ? (int32_t)rosa__utf8_decode(s + k, l) : -1;
}

static int32_t cp_at(const unsigned char *s, size_t n, size_t at, int *len) {
    int l = rosa__utf8_seq(s + at, n - at);
    *len = l;
    return l ? (int32_t)rosa__utf8_decode(s + at, l) : -1;
}

/* \w of the Rust regex crate: letters, marks, decimal and letter numbers, connectors. */
static int is_word(int32_t cp) {
    if (cp < 0) return 0;
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}

/* The first added token of set matching at s[i], longest first (so leftmost-longest overall). */
static const rosa__added *match_at(const rosa__addset *set, const unsigned char *s, size_t n, size_t i) {
    unsigned f = s[i];
    for (unsigned k = set->first_lo[f]; k < set->first_hi[f]; k++) {
        const rosa__added *t = set->tok[k];
        if (t->len <= n - i && memcmp(s + i, t->pat, t->len) == 0) return t;
    }
    return NULL;
}

typedef int (*segment_fn)(rosa__enc *e, const char *s, size_t n);

/* rosa_tokenize_marked: may a special token span str[start..stop)?  Only inside the raw input
 * with every byte marked (normalized copies are other buffers: never). */
static int special_allowed(const rosa__enc *e, const char *str, size_t start, size_t stop) {
    if (!e->markup) return 1;
    uintptr_t p = (uintptr_t)(str + start), base = (uintptr_t)e->text;
    if (p < base || p + (stop - start) > base + e->text_len) return 0;
    size_t off = (size_t)(p - base);
    for (size_t k = 0; k < stop - start; k++)
        if (!e->markup[off + k]) return 0;
    return 1;
}

/* Cut the added tokens of set out of s: segments go to seg, tokens to the output. */
static int split_added(rosa__enc *e, const rosa__addset *set, int parse_special, const char *str, size_t n,
                       segment_fn seg) {
    const unsigned char *s = (const unsigned char *)str;
    size_t start_offset = 0, i = 0;
    int rc;
    while (i < n) {
        /* find the next candidate position */
        if (set->single_first >= 0) {
            const void *p = memchr(s + i, set->single_first, n - i);
            if (!p) break;
            i = (size_t)((const unsigned char *)p - s);
        } else if (set->first_lo[s[i]] == set->first_hi[s[i]]) {
            i++;
            continue;
        }
        const rosa__added *t = match_at(set, s, n, i);
        if (!t) {
            i++;
            continue;
        }
        size_t start = i, stop = i + t->len;
        i = stop; /* the scan resumes after the match, whether it is used or not */
        if (t->special && (!parse_special || !special_allowed(e, str, start, stop))) continue;
        if (t->single_word) {
            int l;
            int start_space = start == 0 || !is_word(cp_before(s, start));
            int stop_space = stop == n || !is_word(cp_at(s, n, stop, &l));
            if (!start_space || !stop_space) continue;
        }
        if (t->lstrip) {
            size_t k = start;
            while (k > start_offset) {
                size_t j = k - 1;
                while (j > 0 && k - j < 4 && (s[j] & 0xC0) == 0x80) j--;
                int l = rosa__utf8_seq(s + j, k - j);
                if (!l || (size_t)l != k - j || !rosa__is_space(rosa__utf8_decode(s + j, l))) break;
                k = j;
            }
            start = k;
        }
        if (t->rstrip) {
            int l;
            while (stop < n) {
                int32_t cp = cp_at(s, n, stop, &l);
                if (cp < 0 || !rosa__is_space((uint32_t)cp)) break;
                stop += (size_t)l;
            }
            i = stop;
        }
        if (start > start_offset && (rc = seg(e, str + start_offset, start - start_offset))) return rc;
        if ((rc = rosa__enc_push(e, t->id))) return rc;
        start_offset = stop;
    }
    return start_offset < n ? seg(e, str + start_offset, n - start_offset) : 0;
}

/* ---- segments ---- */

static int normalized_piece(rosa__enc *e, const char *s, size_t n) { return rosa__pretok_run(e, 0, s, n); }

static int valid_run(rosa__enc *e, const char *s, size_t n) {
    const rosa_tokenizer *tk = e->tk;
    char *norm;
    size_t nl;
    int owned;
    int rc = rosa__tk_normalize(tk, s, n, &norm, &nl, &owned);
    if (rc) return rc;
    if (tk->add_norm.n) rc = split_added(e, &tk->add_norm, e->parse_special, norm, nl, normalized_piece);
    else rc = rosa__pretok_run(e, 0, norm, nl);
    if (owned) free(norm);
    return rc;
}

static int raw_segment(rosa__enc *e, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        size_t v = rosa__utf8_valid_prefix(s + i, n - i);
        if (v) {
            int rc = valid_run(e, str + i, v);
            if (rc) return rc;
            i += v;
            continue;
        }
        size_t j = i;
        while (j < n && rosa__utf8_seq(s + j, n - j) == 0) j++;
        int rc = rosa__bpe_word(e, s + i, j - i);
        if (rc) return rc;
        i = j;
    }
    return 0;
}

static int tokenize(const rosa_tokenizer *tk, const char *text, size_t len, int parse_special,
                    const unsigned char *markup, int32_t **ids, size_t *n) {
    if (!tk || !ids || !n || (!text && len)) return ROSA_ERR_INVALID;
    *ids = NULL;
    *n = 0;
    rosa__enc e = {.tk = tk, .parse_special = parse_special, .text = text, .text_len = len,
                   .markup = markup};
    e.md = pcre2_match_data_create(1, NULL);
    if (!e.md) return ROSA_ERR_NOMEM;
    int rc = 0;
    if (len) {
        if (tk->add_raw.n) rc = split_added(&e, &tk->add_raw, parse_special, text, len, raw_segment);
        else rc = raw_segment(&e, text, len);
    }
    pcre2_match_data_free(e.md);
    rosa__bpe_free(&e);
    if (rc) {
        free(e.ids);
        return rc;
    }
    if (!e.ids) e.ids = malloc(sizeof *e.ids); /* a valid pointer even for no ids */
    if (!e.ids) return ROSA_ERR_NOMEM;
    *ids = e.ids;
    *n = e.n;
    return 0;
}

int rosa_tokenize(const rosa_tokenizer *tk, const char *text, size_t len, int parse_special, int32_t **ids,
                  size_t *n) {
    return tokenize(tk, text, len, parse_special, NULL, ids, n);
}

int rosa_tokenize_marked(const rosa_tokenizer *tk, const char *text, size_t len, const unsigned char *markup,
                         int32_t **ids, size_t *n) {
    if (!markup && len) return ROSA_ERR_INVALID;
    return tokenize(tk, text, len, 1, markup, ids, n);
}
