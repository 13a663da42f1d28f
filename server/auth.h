/* auth.h: API keys and who owns what (auth.c). */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H

#include <stddef.h>

struct MHD_Connection;

#define SRV_MAX_OWNER 64

typedef struct srv_key {
    char *key;
    char owner[SRV_MAX_OWNER]; /* sessions are kept per owner; "" for --api-key */
} srv_key;

typedef struct srv_auth {
    srv_key *keys;
    int n;
    const char *metrics_key; /* --metrics-key: GET /metrics needs it; NULL: open */
} srv_auth;

/* Build the key list from --api-key (owner "") and --api-key-file (one key a line, optionally
 * followed by white space and an owner name of [A-Za-z0-9._:-]; '#' starts a comment line).
 * Returns 0, or -1 with a message in err. */
int srv_auth_init(srv_auth *a, const char *api_key, const char *key_file, const char *metrics_key,
                  char *err, size_t errlen);
void srv_auth_free(srv_auth *a);
/* The request's key: 1 when allowed (*owner: the key's owner, "" without keys), 0 otherwise. */
int srv_auth_check(const srv_auth *a, struct MHD_Connection *c, const char **owner);
/* GET /metrics: 1 when allowed. */
int srv_auth_metrics(const srv_auth *a, struct MHD_Connection *c);

#endif
