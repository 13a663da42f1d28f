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

/* The routes replay their logs in parallel on the model's pool (each route is independent and
 * frees only its own heap blocks): a 0.6B session's 6,912 routes undo 2048 steps in ~3 s on
 * one thread. */
typedef struct trunc_ctx {
    rosa__routes *rs;
    int64_t n;
    int ntasks;
    int rc[64];
} trunc_ctx;

static void trunc_task(void *arg, int task, int thread) {
    (void)thread;
    trunc_ctx *c = arg;
    size_t lo = c->rs->n * (size_t)task / (size_t)c->ntasks;
    size_t hi = c->rs->n * (size_t)(task + 1) / (size_t)c->ntasks;
    for (size_t i = lo; i < hi && !c->rc[task]; i++) c->rc[task] = rosa__route_truncate(&c->rs->r[i], c->n);
}

static int routes_truncate(rosa_model *m, rosa__routes *rs, int64_t n) {
    int threads = m->pool ? rosa__pool_size(m->pool) : 1;
    if (threads <= 1 || rs->n < 16) return rosa__routes_truncate(rs, n);
    trunc_ctx c = {.rs = rs, .n = n, .ntasks = 4 * threads};
    if (c.ntasks > 64) c.ntasks = 64;
    rosa__pool_run(m->pool, c.ntasks, trunc_task, &c);
    for (int t = 0; t < c.ntasks; t++)
        if (c.rc[t]) return c.rc[t];
    return 0;
}

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
    rc = routes_truncate(m, &s->routes, n);
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
