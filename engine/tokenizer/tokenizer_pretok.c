/* tokenizer_pretok.c: the pre-tokenizer steps (Split with a regex, ByteLevel) over one piece
 * of normalized text, ending in BPE for every word they produce.
 *
 * Hugging Face applies each step to every piece the previous step made; here that is a
 * recursion over the step index, so pieces go straight to BPE without being collected.  The
 * split rules (match iteration, empty matches, the five behaviours, invert) follow
 * NormalizedString::split and the onig FindMatches iterator of `tokenizers`. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "tokenizer/tokenizer_internal.h"

typedef struct {
    size_t a, b;
    int match;
} span;

typedef struct {
    span *v;
    size_t n, cap;
} spans;

static int spans_add(spans *s, size_t a, size_t b, int match) {
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 64;
        span *p = realloc(s->v, c * sizeof *p);
        if (!p) return ROSA_ERR_NOMEM;
        s->v = p;
        s->cap = c;
    }
    s->v[s->n++] = (span){a, b, match};
    return 0;
}

/* Next match at or after *from, as onig's find_iter yields them: an empty match right where the
 * previous match ended is skipped (the search moves on one character).  Returns 1 with the
 * match in [*ms, *me), 0 when there is none, or a negative error. */
static int next_match(rosa__enc *e, pcre2_code *re, const char *s, size_t n, size_t *from,
                      size_t *last_end, size_t *ms, size_t *me) {
    while (*from <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, *from, PCRE2_NO_UTF_CHECK, e->md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* the interpreter keeps its backtracking on the heap */
            rc = pcre2_match(re, (PCRE2_SPTR)s, n, *from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, e->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        if (rc < 0) return rc == PCRE2_ERROR_NOMEMORY ? ROSA_ERR_NOMEM : ROSA_ERR_LIMIT;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t a = ov[0], b = ov[1];
        if (a == b && a == *last_end) {
            if (a >= n) return 0;
            size_t k = a + 1;
            while (k < n && ((unsigned char)s[k] & 0xC0) == 0x80) k++;
            *from = k;
            continue;
        }
        *from = b;
        *last_end = b;
        *ms = a;
        *me = b;
        return 1;
    }
    return 0;
}

static int run_split(rosa__enc *e, int step, pcre2_code *re, int behavior, int invert, const char *s,
                     size_t n) {
    size_t from = 0, last_end = (size_t)-1, a, b, prev = 0;
    int rc;
    if (behavior == ROSA__SPLIT_ISOLATED) {
        /* the common case: every match and every gap is a piece, in order (invert only swaps
         * which is which) */
        while ((rc = next_match(e, re, s, n, &from, &last_end, &a, &b)) == 1) {
            if (a > prev && (rc = rosa__pretok_run(e, step + 1, s + prev, a - prev))) return rc;
            if ((rc = rosa__pretok_run(e, step + 1, s + a, b - a))) return rc;
            prev = b;
        }
        if (rc < 0) return rc;
        return prev < n ? rosa__pretok_run(e, step + 1, s + prev, n - prev) : 0;
    }
    spans m = {0}, out = {0};
    while ((rc = next_match(e, re, s, n, &from, &last_end, &a, &b)) == 1) {
        if (a > prev && (rc = spans_add(&m, prev, a, invert))) break;
        if ((rc = spans_add(&m, a, b, !invert))) break;
        prev = b;
    }
    if (rc >= 0 && prev < n) rc = spans_add(&m, prev, n, invert);
    if (rc < 0) goto done;
    rc = 0;
    /* apply the behaviour: (offsets, remove?) as in NormalizedString::split */
    if (behavior == ROSA__SPLIT_REMOVED) {
        for (size_t i = 0; i < m.n && !rc; i++)
            if (!m.v[i].match) rc = spans_add(&out, m.v[i].a, m.v[i].b, 0);
    } else if (behavior == ROSA__SPLIT_MERGED_PREV || behavior == ROSA__SPLIT_CONTIGUOUS) {
        int prev_match = 0;
        for (size_t i = 0; i < m.n && !rc; i++) {
            int mm = m.v[i].match;
            int join = behavior == ROSA__SPLIT_CONTIGUOUS ? mm == prev_match : mm && !prev_match;
            if (join && out.n) out.v[out.n - 1].b = m.v[i].b;
            else rc = spans_add(&out, m.v[i].a, m.v[i].b, 0);
            prev_match = mm;
        }
    } else { /* MERGED_NEXT: the same fold from the right */
        int prev_match = 0;
        for (size_t i = m.n; i-- > 0 && !rc;) {
            int mm = m.v[i].match;
            if (mm && !prev_match && out.n) out.v[out.n - 1].a = m.v[i].a;
            else rc = spans_add(&out, m.v[i].a, m.v[i].b, 0);
            prev_match = mm;
        }
        for (size_t i = 0; i < out.n / 2; i++) {
            span t = out.v[i];
            out.v[i] = out.v[out.n - 1 - i];
            out.v[out.n - 1 - i] = t;
        }
    }
    for (size_t i = 0; i < out.n && !rc; i++)
        rc = rosa__pretok_run(e, step + 1, s + out.v[i].a, out.v[i].b - out.v[i].a);
done:
    free(m.v);
    free(out.v);
    return rc;
}

int rosa__pretok_run(rosa__enc *e, int step, const char *s, size_t n) {
    if (n == 0) return 0; /* empty pieces are dropped */
    const rosa_tokenizer *tk = e->tk;
    if (step == tk->n_pre) return rosa__bpe_word(e, (const unsigned char *)s, n);
    const rosa__pretok *p = &tk->pre[step];
    if (p->kind == ROSA__PRE_SPLIT) return run_split(e, step, p->re, p->behavior, p->invert, s, n);
    /* ByteLevel: optional prefix space, optional GPT-2 split; the byte mapping itself is
     * implicit (the vocabulary is indexed by bytes) */
    if (p->add_prefix_space && s[0] != ' ') {
        char *t = malloc(n + 1);
        if (!t) return ROSA_ERR_NOMEM;
        t[0] = ' ';
        memcpy(t + 1, s, n);
        int rc = p->re ? run_split(e, step, p->re, ROSA__SPLIT_ISOLATED, 0, t, n + 1)
                       : rosa__pretok_run(e, step + 1, t, n + 1);
        free(t);
        return rc;
    }
    return p->re ? run_split(e, step, p->re, ROSA__SPLIT_ISOLATED, 0, s, n) : rosa__pretok_run(e, step + 1, s, n);
}
