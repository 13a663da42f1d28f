/* session_fork.c: rosa_session_fork, an independent deep copy of a session.
 *
 * Why its own file: the copy touches every part of a session (last logits, the backend's
 * attention caches through session_kv_host, every route's automaton through
 * rosa__routes_copy) and is the base the server forks `n > 1` completions from.  The copy
 * shares nothing with the original but the model: either can be fed or freed alone.  It can be
 * truncated back to its fork point, not before (what the rollback horizon keeps is not copied). */
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
        /* the positions attention still reads, [pos - n, pos), in the same ring slots: at most
         * two runs (the ring's H older positions are not copied: the copy's horizon starts here) */
        int64_t n = rosa__kv_valid(m, l, s->pos), S = rosa__kv_slots(m, l);
        void *sk, *sv, *dk, *dv;
        size_t es = 0, des = 0;
        if (!n) continue;
        rc = m->backend->session_kv_host(s, l, 0, &sk, &sv, &es);
        if (!rc) rc = m->backend->session_kv_host(c, l, rosa__kv_filled(m, l, s->pos), &dk, &dv, &des);
        if (!rc && es != des) rc = ROSA_ERR_INVALID; /* one model, one element size */
        size_t row = (size_t)m->Hkv * m->D * es; /* raw slots: float32 or bf16 */
        for (int64_t p = s->pos - n; !rc && p < s->pos;) {
            int64_t slot = S ? p % S : p, run = s->pos - p;
            if (S && run > S - slot) run = S - slot;
            memcpy((char *)dk + (size_t)slot * row, (char *)sk + (size_t)slot * row, (size_t)run * row);
            memcpy((char *)dv + (size_t)slot * row, (char *)sv + (size_t)slot * row, (size_t)run * row);
            p += run;
        }
    }
    if (!rc) rc = rosa__routes_copy(&c->routes, &s->routes);
    if (!rc) rosa__routes_set_horizon(&c->routes, (uint32_t)m->rollback); /* empty logs */
    if (rc) {
        rosa_session_free(c);
        return rc;
    }
    memcpy(c->last_logits, s->last_logits, (size_t)m->V * sizeof(float));
    c->has_logits = s->has_logits;
    c->pos = s->pos;
    c->rb_floor = s->pos;
    *out = c;
    return 0;
}
