/* tokenizer_norm.c: the NFC / NFD / NFKC / NFKD normalizers, through utf8proc.
 *
 * Most text is already normalized, and calling utf8proc on all of it would cost more than the
 * rest of encoding.  A character that is a "stable starter" for a form (quick-check Yes and
 * canonical combining class 0: nothing before it can combine with it) is a safe boundary:
 * normalizing pieces between such boundaries gives the same result as normalizing the whole.
 * So only the short spans around other characters go through utf8proc; the stable starters
 * are recognised by a few ranges known to hold only such characters (ASCII, CJK, Hangul, kana,
 * emoji...).  Anything outside them is simply handed to utf8proc, which decides. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "rosa.h"
#include "tokenizer/tokenizer_internal.h"

/* Characters known to be stable starters for the form (a conservative subset). */
static int stable(int form, uint32_t cp) {
    if (cp < 0x80) return 1;
    if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF)) return 1; /* CJK */
    if ((cp >= 0x1F300 && cp <= 0x1F64F) || (cp >= 0x1F680 && cp <= 0x1F6FF) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF))
        return 1; /* emoji */
    if (form == ROSA__NORM_NFD || form == ROSA__NORM_NFKD) return 0;
    /* composed forms: Hangul syllables, kana, Cyrillic are quick-check Yes for NFC and NFKC */
    if (cp >= 0xAC00 && cp <= 0xD7A3) return 1;
    if ((cp >= 0x3041 && cp <= 0x3096) || (cp >= 0x30A1 && cp <= 0x30FA)) return 1;
    if ((cp >= 0x400 && cp <= 0x482) || (cp >= 0x48A && cp <= 0x52F)) return 1;
    if (form == ROSA__NORM_NFKC) return 0;
    /* NFC only: Latin-1 and Latin Extended (compatibility characters are NFC-stable) */
    if (cp < 0x300) return 1;
    if (cp >= 0xFF01 && cp <= 0xFF60) return 1; /* fullwidth forms */
    return 0;
}

static const utf8proc_option_t form_opts[] = {
    [ROSA__NORM_NFC] = UTF8PROC_STABLE | UTF8PROC_COMPOSE,
    [ROSA__NORM_NFD] = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE,
    [ROSA__NORM_NFKC] = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT,
    [ROSA__NORM_NFKD] = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT,
};

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static int buf_add(buf *b, const void *p, size_t n) {
    if (n == 0) return 0;
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->n + n) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) return ROSA_ERR_NOMEM;
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

/* Normalize s[0..n) (valid UTF-8) to one form.  *changed = 0 leaves *out untouched. */
static int apply_form(int form, const char *s, size_t n, char **out, size_t *outlen, int *changed) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    /* fast scan: the common case is that every character is a stable starter */
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int l = rosa__utf8_seq(u + i, n - i);
        if (!l) return ROSA_ERR_INVALID; /* callers pass valid runs only */
        if (!stable(form, rosa__utf8_decode(u + i, l))) break;
        i += (size_t)l;
    }
    *changed = 0;
    if (i == n) return 0;

    buf b = {0};
    size_t done = 0; /* input consumed into b */
    int rc = 0;
    while (i < n) {
        int l = rosa__utf8_seq(u + i, n - i);
        if (!l) {
            rc = ROSA_ERR_INVALID;
            break;
        }
        uint32_t cp = rosa__utf8_decode(u + i, l);
        if (stable(form, cp)) {
            i += (size_t)l;
            continue;
        }
        /* copy the stable text before the span, then renormalize from the last starter */
        size_t span_from = i;
        if (i > done) {
            /* the character just before i is a stable starter: it may compose with what follows */
            size_t k = i - 1;
            while (k > done && (u[k] & 0xC0) == 0x80) k--;
            if ((rc = buf_add(&b, s + done, k - done))) break;
            span_from = k;
        }
        size_t j = i + (size_t)l;
        while (j < n) {
            int m = rosa__utf8_seq(u + j, n - j);
            if (!m) break;
            if (stable(form, rosa__utf8_decode(u + j, m))) break;
            j += (size_t)m;
        }
        utf8proc_uint8_t *norm = NULL;
        utf8proc_ssize_t nl = utf8proc_map((const utf8proc_uint8_t *)s + span_from,
                                           (utf8proc_ssize_t)(j - span_from), &norm, form_opts[form]);
        if (nl < 0) {
            free(norm);
            rc = nl == UTF8PROC_ERROR_NOMEM ? ROSA_ERR_NOMEM : ROSA_ERR_INVALID;
            break;
        }
        rc = buf_add(&b, norm, (size_t)nl);
        free(norm);
        if (rc) break;
        done = i = j;
    }
    if (!rc && done < n) rc = buf_add(&b, s + done, n - done);
    if (!rc) rc = buf_add(&b, "", 1); /* keep a NUL after the text for convenience */
    if (rc) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *outlen = b.n - 1;
    *changed = 1;
    return 0;
}

int rosa__tk_normalize(const rosa_tokenizer *tk, const char *s, size_t n, char **out,
                       size_t *outlen, int *owned) {
    const char *cur = s;
    size_t curlen = n;
    int cur_owned = 0;
    for (int k = 0; k < tk->n_norm; k++) {
        char *next;
        size_t nextlen;
        int changed;
        int rc = apply_form(tk->norm[k], cur, curlen, &next, &nextlen, &changed);
        if (rc) {
            if (cur_owned) free((char *)cur);
            return rc;
        }
        if (changed) {
            if (cur_owned) free((char *)cur);
            cur = next;
            curlen = nextlen;
            cur_owned = 1;
        }
    }
    *out = (char *)cur;
    *outlen = curlen;
    *owned = cur_owned;
    return 0;
}
