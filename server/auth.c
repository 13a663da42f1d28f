/* auth.c: API keys.  With several keys (--api-key-file) each key has an owner name and the
 * sessions a request creates belong to that owner: session ids are kept per owner (routes.c
 * prefixes them "owner/"), so a key sees, continues and deletes only its own sessions and two
 * owners may use the same id without meeting.  Keys are compared in constant time (the time
 * does not depend on where a guess differs); every key is compared, so neither does the time
 * say which key matched.  --metrics-key guards GET /metrics separately. */
#include "auth.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int same(const char *want, const char *got) {
    size_t n = strlen(want), m = strlen(got);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < m ? got[i] : 0);
    return diff == 0;
}

static const char *bearer(struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return h && !strncmp(h, "Bearer ", 7) ? h + 7 : NULL;
}

static int owner_ok(const char *s) {
    size_t n = strlen(s);
    if (!n || n >= SRV_MAX_OWNER) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._:-", *s)))
            return 0;
    return 1;
}

static int add_key(srv_auth *a, const char *key, const char *owner) {
    srv_key *k = realloc(a->keys, sizeof *k * (size_t)(a->n + 1));
    if (!k) return -1;
    a->keys = k;
    if (!(k[a->n].key = strdup(key))) return -1;
    snprintf(k[a->n].owner, sizeof k[a->n].owner, "%s", owner);
    a->n++;
    return 0;
}

int srv_auth_init(srv_auth *a, const char *api_key, const char *key_file, const char *metrics_key,
                  char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    a->metrics_key = metrics_key && *metrics_key ? metrics_key : NULL;
    if (api_key && add_key(a, api_key, "")) goto nomem;
    if (!key_file) return 0;
    FILE *f = fopen(key_file, "r");
    if (!f) {
        snprintf(err, errlen, "--api-key-file %s: cannot open", key_file);
        return -1;
    }
    char line[1024];
    int no = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        no++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            snprintf(err, errlen, "--api-key-file line %d: longer than %zu bytes", no,
                     sizeof line - 2);
            rc = -1;
            break;
        }
        char *key = strtok(line, " \t\r\n");
        if (!key || key[0] == '#') continue;
        char *owner = strtok(NULL, " \t\r\n"), def[32];
        if (strtok(NULL, " \t\r\n") || (owner && !owner_ok(owner)) || strlen(key) < 8) {
            snprintf(err, errlen, "--api-key-file line %d: expected 'KEY [OWNER]' with a key of "
                     "8 characters or more and an owner of 1-63 of [A-Za-z0-9._:-]", no);
            rc = -1;
            break;
        }
        if (!owner) {
            snprintf(def, sizeof def, "key%d", no);
            owner = def;
        }
        if (add_key(a, key, owner)) {
            fclose(f);
            goto nomem;
        }
    }
    fclose(f);
    if (!rc && a->n == (api_key ? 1 : 0)) {
        snprintf(err, errlen, "--api-key-file %s: no key", key_file);
        rc = -1;
    }
    if (rc) srv_auth_free(a);
    return rc;
nomem:
    snprintf(err, errlen, "out of memory");
    srv_auth_free(a);
    return -1;
}

void srv_auth_free(srv_auth *a) {
    for (int i = 0; i < a->n; i++) free(a->keys[i].key);
    free(a->keys);
    a->keys = NULL;
    a->n = 0;
}

int srv_auth_check(const srv_auth *a, struct MHD_Connection *c, const char **owner) {
    *owner = "";
    if (!a->n) return 1;
    const char *got = bearer(c);
    if (!got) return 0;
    int hit = -1;
    for (int i = 0; i < a->n; i++)
        if (same(a->keys[i].key, got) && hit < 0) hit = i;
    if (hit < 0) return 0;
    *owner = a->keys[hit].owner;
    return 1;
}

int srv_auth_metrics(const srv_auth *a, struct MHD_Connection *c) {
    if (!a->metrics_key) return 1;
    const char *got = bearer(c);
    return got && same(a->metrics_key, got);
}
