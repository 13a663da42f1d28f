/* session_fork.c: rosa_session_fork, an independent deep copy of a session.
 *
 * Why its own file: the copy touches every part of a session (last logits, the backend's
 * attention caches through session_kv_host, every route's automaton through
 * rosa__routes_copy) and is the base the server forks `n > 1` completions from.  The copy
 * shares nothing with the original but the model: either can be fed or freed alone. */
#include <stdlib.h>
#include <string.h>

#include "core/model.h"

int rosa_session_fork(rosa_session *s, rosa_session **out) {
    if (!out) return ROSA_ERR_INVALID;
    *out = NULL;
    if (!s || s->broken) return ROSA_ERR_INVALID;
    rosa_model *m = s->m;
    if (!m->backend->session_kv_host) return ROSA_ERR_UNSUPPORTED;
    rosa_session *c;
    int rc = rosa_session_new(m, &c);
    if (rc) return rc;
    for (int l = 0; l < m->L && !rc; l++) {
        int64_t n = rosa__kv_filled(m, l, s->pos);
        float *sk, *sv, *dk, *dv;
        if (!n) continue;
        rc = m->backend->session_kv_host(s, l, 0, &sk, &sv);
        if (!rc) rc = m->backend->session_kv_host(c, l, n, &dk, &dv);
        if (!rc) {
            size_t bytes = (size_t)n * m->Hkv * m->D * sizeof(float);
            memcpy(dk, sk, bytes);
            memcpy(dv, sv, bytes);
        }
    }
    if (!rc) rc = rosa__routes_copy(&c->routes, &s->routes);
    if (rc) {
        rosa_session_free(c);
        return rc;
    }
    memcpy(c->last_logits, s->last_logits, (size_t)m->V * sizeof(float));
    c->has_logits = s->has_logits;
    c->pos = s->pos;
    *out = c;
    return 0;
}
