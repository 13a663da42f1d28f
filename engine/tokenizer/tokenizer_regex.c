/* tokenizer_regex.c: compile Hugging Face split patterns with PCRE2.
 *
 * Hugging Face `tokenizers` runs these patterns with Oniguruma.  PCRE2 in UTF + UCP mode agrees
 * with it on everything these patterns use except a few escapes, which are rewritten here
 * before compiling:
 *   \s, \S  Oniguruma: Unicode White_Space.  PCRE2 also counts U+180E MONGOLIAN VOWEL SEPARATOR,
 *           which stopped being a space in Unicode 6.3, so \s becomes the explicit class.
 *   \h, \H  Oniguruma (Ruby syntax): a hexadecimal digit.  PCRE2: horizontal space.
 * Inside a bracket class \s and \h are expanded the same way; \S and \H there cannot be
 * expressed as ranges and are refused. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "tokenizer/tokenizer_internal.h"

#define WS_RANGES "\\t-\\r\\x20\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
#define HEX_RANGES "0-9a-fA-F"

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static int put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->n + n + 1) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) return -1;
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

#define PUTS(b, s) put(b, s, strlen(s))

/* Rewrite the escapes listed above.  Returns 0, -1 (out of memory) or -2 (unsupported, with
 * *what naming the construct). */
static int translate(const char *pat, size_t len, sbuf *out, const char **what) {
    int in_class = 0;
    for (size_t i = 0; i < len; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < len) {
            char e = pat[i + 1];
            int r = 0;
            if (e == 's' || e == 'S' || e == 'h' || e == 'H') {
                const char *ranges = (e == 's' || e == 'S') ? WS_RANGES : HEX_RANGES;
                int neg = (e == 'S' || e == 'H');
                if (in_class) {
                    if (neg) {
                        *what = e == 'S' ? "\\S inside a character class" : "\\H inside a character class";
                        return -2;
                    }
                    r = PUTS(out, ranges);
                } else {
                    r = PUTS(out, neg ? "[^" : "[");
                    if (!r) r = PUTS(out, ranges);
                    if (!r) r = PUTS(out, "]");
                }
            } else {
                r = put(out, pat + i, 2);
            }
            if (r) return -1;
            i++;
            continue;
        }
        if (in_class) {
            if (c == '[' && i + 1 < len && pat[i + 1] == ':') {
                /* POSIX class [:name:]: copy through to ":]" */
                const char *end = NULL;
                for (size_t k = i + 2; k + 1 < len; k++)
                    if (pat[k] == ':' && pat[k + 1] == ']') {
                        end = pat + k + 2;
                        break;
                    }
                if (end) {
                    if (put(out, pat + i, (size_t)(end - (pat + i)))) return -1;
                    i = (size_t)(end - pat) - 1;
                    continue;
                }
            }
            if (c == '[') {
                *what = "a nested character class";
                return -2;
            }
            if (c == ']') in_class = 0;
            if (put(out, &c, 1)) return -1;
            continue;
        }
        if (c == '[') {
            in_class = 1;
            if (put(out, &c, 1)) return -1;
            /* a ']' right after '[' or '[^' is a literal member */
            if (i + 1 < len && pat[i + 1] == '^') {
                if (put(out, "^", 1)) return -1;
                i++;
            }
            if (i + 1 < len && pat[i + 1] == ']') {
                if (put(out, "\\]", 2)) return -1;
                i++;
            }
            continue;
        }
        if (put(out, &c, 1)) return -1;
    }
    return 0;
}

int rosa__regex_compile(const char *pattern, size_t len, int literal, pcre2_code **out, char *err,
                        size_t errlen) {
    *out = NULL;
    sbuf b = {0};
    const char *src = pattern;
    size_t srclen = len;
    if (!literal) {
        const char *what = NULL;
        int r = translate(pattern, len, &b, &what);
        if (r == -1) {
            free(b.p);
            return rosa__err(err, errlen, ROSA_ERR_NOMEM, "out of memory");
        }
        if (r == -2) {
            free(b.p);
            return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "regex uses %s", what);
        }
        src = b.p ? b.p : "";
        srclen = b.n;
    }
    int ec;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, srclen,
                                   literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP, &ec, &eoff,
                                   NULL);
    free(b.p);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "regex does not compile with PCRE2: %s",
                         (const char *)msg);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
    *out = re;
    return 0;
}

void rosa__regex_free(pcre2_code *re) {
    if (re) pcre2_code_free(re);
}
