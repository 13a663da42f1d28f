/* errors.c: the one error-code table and the message helper. */
#include <stdarg.h>
#include <stdio.h>
#include "errors.h"

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
