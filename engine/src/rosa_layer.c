/* rosa_layer.c: the ROSA channel of one layer, shared by every backend (it runs on the CPU):
 * sign-and-pack of projections into route symbols, advancing each (session, route) automaton
 * over a chunk of tokens in parallel, and the injection vector y (ROSA-SPEC sections 2-3). */
#include <stdatomic.h>
#include <string.h>

#include "model.h"

void rosa__symbols(const float *x, int R, int M, uint8_t *sym) {
    for (int r = 0; r < R; r++) {
        const float *p = x + (size_t)r * M;
        unsigned s = 0;
        for (int b = 0; b < M; b++) s |= (unsigned)(p[b] > 0.0f) << b;
        sym[r] = (uint8_t)s;
    }
}

void rosa__inject_y(const rosa__layer *ly, const int16_t *vout, int R, int M, float *y) {
    for (int r = 0; r < R; r++) {
        float *o = y + (size_t)r * M;
        int v = vout[r];
        if (v < 0) {
            memset(o, 0, (size_t)M * sizeof *o);
            continue;
        }
        const float *e0 = ly->e0 + (size_t)r * M, *e1 = ly->e1 + (size_t)r * M;
        for (int b = 0; b < M; b++) o[b] = e0[b] + (e1[b] - e0[b]) * (float)((v >> b) & 1);
    }
}

#define ROUTES_PER_TASK ROSA__ROUTE_GROUP

typedef struct {
    rosa_model *m;
    struct rosa_session *s;
    int rl, T, R, ngroups;
    const uint8_t *qs, *ks, *vs;
    int16_t *vout;
    int32_t *dest; /* [T, R] scratch when tracing, else NULL */
    atomic_int failed;
} step_ctx;

/* One task: the routes [r0, r1) of the layer over the chunk, advanced together token by
 * token (rosa__routes_run), so that their cache misses overlap (in decode, T = 1). */
static void step_task(void *vctx, int task, int thread) {
    step_ctx *c = vctx;
    int r0 = task * ROUTES_PER_TASK, r1 = r0 + ROUTES_PER_TASK;
    if (r1 > c->R) r1 = c->R;
    struct rosa_session *s = c->s;
    int64_t pos0 = s->pos;
    rosa__route *rts[ROUTES_PER_TASK];
    for (int r = r0; r < r1; r++) rts[r - r0] = &s->routes[(size_t)c->rl * c->R + r];
    if (rosa__routes_run(rts, r1 - r0, c->T, c->qs + r0, c->ks + r0, c->vs + r0, (size_t)c->R, 1,
                         c->vout + r0, c->dest ? c->dest + r0 : NULL)) {
        atomic_store(&c->failed, 1);
        return;
    }
    if (c->dest)
        for (int r = r0; r < r1; r++)
            for (int i = 0; i < c->T; i++) {
                int64_t p = pos0 + i;
                if (p < s->trace_T)
                    s->trace[((size_t)c->rl * c->R + r) * s->trace_T + p] = c->dest[(size_t)i * c->R + r];
            }
}

int rosa__rosa_step(rosa_model *m, struct rosa_session *s, int rl, int T, const uint8_t *qs,
                    const uint8_t *ks, const uint8_t *vs, int16_t *vout, int32_t *dest) {
    step_ctx c = {.m = m, .s = s, .rl = rl, .T = T, .R = m->R, .qs = qs, .ks = ks, .vs = vs, .vout = vout,
                  .dest = s->trace && s->pos < s->trace_T ? dest : NULL};
    atomic_init(&c.failed, 0);
    c.ngroups = (m->R + ROUTES_PER_TASK - 1) / ROUTES_PER_TASK;
    rosa__pool_run(m->pool, c.ngroups, step_task, &c);
    return atomic_load(&c.failed) ? ROSA_ERR_NOMEM : 0;
}
