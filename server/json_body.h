/* json_body.h: strict parsing of a request body into a cJSON tree (json_body.c). */
#ifndef SRV_JSON_BODY_H
#define SRV_JSON_BODY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "request.h"

/* Parse body[0..len) as exactly one JSON value.  NULL with a 400 in e for: invalid JSON, any
 * byte but whitespace after the value (garbage, a second object, NUL), a NUL byte or a \u0000
 * escape anywhere (C strings would end there: a prompt, stop string or field name cut short),
 * a key given twice in one object (which one counts would depend on the parser). */
cJSON *srv_json_parse(const char *body, size_t len, srv_error *e);

#endif
