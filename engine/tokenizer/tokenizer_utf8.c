/* tokenizer_utf8.c: UTF-8 well-formedness, the GPT-2 byte-level alphabet, and the lossy
 * repair that Hugging Face applies at the end of decoding.
 *
 * Well-formed means Unicode Table 3-7 (no overlongs, no surrogates, nothing above U+10FFFF):
 * exactly what Rust's str and Python's "utf-8" codec accept, so a text splits into the same
 * valid runs and invalid bytes here as in the generator of the expected ids. */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "tokenizer/tokenizer_internal.h"

/* The length of the sequence lead byte c starts (0 if none) and the allowed range of the
 * second byte, which excludes overlong forms, surrogates and code points past U+10FFFF. */
static int utf8_lead(unsigned c, unsigned *lo, unsigned *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) *lo = 0x90;
        if (c == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

int rosa__utf8_seq(const unsigned char *p, size_t n) {
    if (n == 0) return 0;
    unsigned c = p[0];
    if (c < 0x80) return 1;
    unsigned lo, hi;
    int len = utf8_lead(c, &lo, &hi);
    if (!len) return 0;
    if (n < (size_t)len) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (int i = 2; i < len; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* How many bytes at p begin a well-formed sequence without completing it (0 if p[0] cannot
 * start one, or the sequence is complete).  A decoder holds these back; a lossy repair
 * replaces them by one U+FFFD (the "maximal subpart"). */
static int utf8_partial(const unsigned char *p, size_t n) {
    if (n == 0) return 0;
    unsigned c = p[0];
    unsigned lo, hi;
    int len = utf8_lead(c, &lo, &hi);
    if (!len) return 0;
    int k = 1;
    if (k < len && (size_t)k < n && p[1] >= lo && p[1] <= hi) {
        k = 2;
        while (k < len && (size_t)k < n && (p[k] & 0xC0) == 0x80) k++;
    }
    return k < len ? k : 0;
}

size_t rosa__utf8_valid_prefix(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        int l = rosa__utf8_seq(p + i, n - i);
        if (!l) break;
        i += (size_t)l;
    }
    return i;
}

size_t rosa__utf8_complete_prefix(const unsigned char *p, size_t n) {
    /* A tail that could still become a well-formed sequence starts at most 3 bytes back. */
    size_t from = n > 3 ? n - 3 : 0;
    for (size_t i = from; i < n; i++) {
        int k = utf8_partial(p + i, n - i);
        if (k && i + (size_t)k == n) return i;
    }
    return n;
}

uint32_t rosa__utf8_decode(const unsigned char *p, int len) {
    switch (len) {
    case 1: return p[0];
    case 2: return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    case 3: return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    default:
        return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
               ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    }
}

int rosa__utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* GPT-2's bytes_to_unicode: printable bytes (! .. ~, ¡ .. ¬, ® .. ÿ) stand for themselves, the
 * other 68 bytes map in order to U+0100 .. U+0143. */
uint32_t rosa__byte_char(unsigned b) {
    if (b <= 0x20) return 256 + b;
    if (b >= 0x7F && b <= 0xA0) return 256 + 33 + (b - 0x7F);
    if (b == 0xAD) return 256 + 67;
    return b;
}

int rosa__char_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 256 && cp <= 256 + 32) return (int)(cp - 256);
    if (cp >= 256 + 33 && cp <= 256 + 66) return (int)(0x7F + cp - (256 + 33));
    if (cp == 256 + 67) return 0xAD;
    return -1;
}

int rosa__is_space(uint32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85) return 0;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

int rosa_utf8_lossy(const char *s, size_t len, char **out, size_t *outlen) {
    if (!out || !outlen || (!s && len)) return ROSA_ERR_INVALID;
    /* each bad byte becomes at most 3 bytes */
    if (len > (SIZE_MAX - 1) / 3) return ROSA_ERR_LIMIT;
    char *o = malloc(len * 3 + 1);
    if (!o) return ROSA_ERR_NOMEM;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, w = 0;
    while (i < len) {
        int l = rosa__utf8_seq(p + i, len - i);
        if (l) {
            memcpy(o + w, p + i, (size_t)l);
            w += (size_t)l;
            i += (size_t)l;
            continue;
        }
        int k = utf8_partial(p + i, len - i);
        i += k ? (size_t)k : 1;
        memcpy(o + w, "\xEF\xBF\xBD", 3);
        w += 3;
    }
    o[w] = 0;
    *out = o;
    *outlen = w;
    return 0;
}
