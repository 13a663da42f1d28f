/* errors.h: formatting of error messages into caller buffers. */
#ifndef ROSA_ERRORS_H
#define ROSA_ERRORS_H
#include <stddef.h>
#include "rosa.h"

/* snprintf into err (if non-NULL) and return code; for `return rosa__err(...)`. */
int rosa__err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Copy n bytes of untrusted text (a name read from a file) into buf for a message: printable
 * ASCII kept, other bytes shown as '?', cut with "..." to fit cap (>= 4).  Returns buf. */
const char *rosa__quote(char *buf, size_t cap, const char *s, size_t n);
#endif
