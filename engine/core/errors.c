/* errors.c: the one error-code table and the message helper. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "core/errors.h"

const char *rosa_strerror(int err) {
    switch (err) {
    case ROSA_OK: return "ok";
    case ROSA_ERR_IO: return "I/O error";
    case ROSA_ERR_FORMAT: return "malformed input";
    case ROSA_ERR_UNSUPPORTED: return "unsupported";
    case ROSA_ERR_NOMEM: return "out of memory";
    case ROSA_ERR_INVALID: return "invalid argument";
    case ROSA_ERR_LIMIT: return "limit exceeded";
    case ROSA_ERR_BACKEND: return "backend failure";
    case ROSA_ERR_MISMATCH: return "made for another model";
    default: return "unknown error";
    }
}

int rosa__err(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *rosa__quote(char *buf, size_t cap, const char *s, size_t n) {
    size_t keep = n < cap ? n : (cap >= 4 ? cap - 4 : 0);
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (keep < n && cap >= 4) {
        memcpy(buf + keep, "...", 3);
        keep += 3;
    }
    buf[keep] = 0;
    return buf;
}
