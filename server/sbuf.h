/* sbuf.h: a growable byte buffer with printf and JSON-string escaping, used to build every
 * response body and SSE event by hand (faster than building cJSON trees per token).
 * Allocation failure is sticky: `oom` is set, later appends do nothing, callers check once. */
#ifndef SRV_SBUF_H
#define SRV_SBUF_H
#include <stddef.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

void sb_free(sbuf *b);
void sb_reset(sbuf *b);
void sb_put(sbuf *b, const void *data, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a quoted JSON string; invalid UTF-8 bytes become U+FFFD. */
void sb_json_str(sbuf *b, const char *s, size_t n);
/* Append a float as JSON (non-finite -> -9999.0, as OpenAI clients expect numbers). */
void sb_json_float(sbuf *b, double x);
/* Length of the longest prefix of s[0..n) that is complete, valid UTF-8 up to a cut
 * multi-byte sequence at the very end (used to hold back partial characters). */
size_t sb_utf8_complete(const char *s, size_t n);
#endif
