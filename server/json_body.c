/* json_body.c: one strict entry point for JSON request bodies.  cJSON alone accepts trailing
 * data after the value, decodes \u0000 into a NUL that silently ends the C string it lands in
 * (prompt, message, stop string, even a field name: {"prompt\u0000x": ...} read as "prompt"),
 * and keeps duplicate keys (the first one wins, where a proxy may read the last).  All of these
 * are refused here, before any field is looked at. */
#include "json_body.h"

#include <stdlib.h>
#include <string.h>

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* A \u0000 escape in any string (keys included).  The body is valid JSON here, so a backslash
 * inside a string always starts an escape of known length. */
static int has_nul_escape(const char *p, size_t n) {
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!in_str) {
            in_str = c == '"';
            continue;
        }
        if (c == '"') {
            in_str = 0;
        } else if (c == '\\') {
            if (i + 1 < n && p[i + 1] == 'u' && i + 5 < n && !memcmp(p + i + 2, "0000", 4))
                return 1;
            i++; /* the escaped character (the 4 hex digits of \u are plain characters) */
        }
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first key that appears twice in one object anywhere in the tree, or NULL; *oom on
 * allocation failure.  Small objects are compared pairwise, large ones (logit_bias) sorted. */
static const char *dup_key(const cJSON *v, int *oom) {
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return NULL;
    if (cJSON_IsObject(v)) {
        int n = cJSON_GetArraySize(v);
        if (n > 1 && n <= 32) {
            for (const cJSON *a = v->child; a; a = a->next)
                for (const cJSON *b = a->next; b; b = b->next)
                    if (!strcmp(a->string, b->string)) return a->string;
        } else if (n > 32) {
            const char **keys = malloc(sizeof *keys * (size_t)n);
            if (!keys) {
                *oom = 1;
                return NULL;
            }
            int k = 0;
            for (const cJSON *a = v->child; a; a = a->next) keys[k++] = a->string;
            qsort(keys, (size_t)k, sizeof *keys, cmp_str);
            const char *dup = NULL;
            for (int i = 1; i < k && !dup; i++)
                if (!strcmp(keys[i - 1], keys[i])) dup = keys[i];
            free(keys);
            if (dup) return dup;
        }
    }
    for (const cJSON *c = v->child; c; c = c->next) {
        const char *d = dup_key(c, oom);
        if (d || *oom) return d;
    }
    return NULL;
}

cJSON *srv_json_parse(const char *body, size_t len, srv_error *e) {
    if (memchr(body, 0, len)) {
        srv_fail(e, 400, NULL, "the request body contains a NUL byte");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        srv_fail(e, 400, NULL, "the request body is not valid JSON");
        return NULL;
    }
    size_t at = end ? (size_t)(end - body) : len;
    while (at < len && is_ws(body[at])) at++;
    int oom = 0;
    const char *dup = NULL;
    if (at < len)
        srv_fail(e, 400, NULL, "the request body has data after the JSON value (at byte %zu)", at);
    else if (has_nul_escape(body, len))
        srv_fail(e, 400, NULL, "strings must not contain \\u0000 (NUL)");
    else if ((dup = dup_key(root, &oom)) != NULL)
        srv_fail(e, 400, dup, "the key '%.60s' appears twice in one object", dup);
    else if (oom)
        srv_fail(e, 500, NULL, "out of memory");
    else
        return root;
    cJSON_Delete(root);
    return NULL;
}
