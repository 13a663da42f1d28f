/* session_truncate.c: rosa_session_truncate, exact rollback of a session to its first n tokens.
 *
 * Why its own file: it is the one place that decides how far back a session can go and undoes
 * every part of it together, all or nothing.  The horizon: a session keeps what undoing its
 * last H tokens needs (H = the model's rollback option): the attention rings of windowed layers
 * hold W + H slots (the backend's session_truncate), and every ROSA route logs its last H steps
 * (rosa__route_truncate, engine/rosa/rosa_sam_undo.c).  Counted from the newest length reached,
 * so going back never extends it, and never before a fork or restore point (a copy starts with
 * empty logs and only the window's positions in its rings).  The session keeps that floor in
 * s->rb_floor, updated here: the largest length reached since the last truncate is the current
 * one, since lengths only grow between truncates. */
#include "core/model.h"

int rosa_session_truncate(rosa_session *s, int64_t n) {
    if (!s || s->broken || n < 0 || n > s->pos) return ROSA_ERR_INVALID;
    if (n == s->pos) return 0;
    rosa_model *m = s->m;
    if (!m->backend->session_truncate) return ROSA_ERR_UNSUPPORTED;
    int64_t floor = s->pos - m->rollback;
    if (floor < s->rb_floor) floor = s->rb_floor;
    if (n < floor) return ROSA_ERR_LIMIT;
    /* every check before anything changes: the routes (their logs), then the backend */
    for (size_t i = 0; i < s->routes.n; i++) {
        int rc = rosa__route_can_truncate(&s->routes.r[i], n);
        if (rc) return rc;
    }
    int rc = m->backend->session_truncate(s, n);
    if (rc) return rc;
    rc = rosa__routes_truncate(&s->routes, n);
    if (rc) { /* a route agreed and then failed: the caches went back already */
        s->broken = 1;
        return rc;
    }
    if (s->trace) { /* the dropped positions read as never fed */
        int64_t end = s->pos < s->trace_T ? s->pos : s->trace_T;
        size_t lr = (size_t)m->n_rosa * m->R;
        for (size_t i = 0; i < lr && n < end; i++)
            for (int64_t p = n; p < end; p++) s->trace[i * (size_t)s->trace_T + (size_t)p] = -1;
    }
    s->pos = n;
    s->has_logits = 0;
    s->rb_floor = floor;
    return 0;
}
