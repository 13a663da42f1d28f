/* engine/rosa/: the ROSA channel on the CPU: the per-route state (rosa_sam.c: k-runs and the
 * online suffix automaton; rosa_sam_edges.c: its storage) and, here, the layer step.
 *
 * rosa_layer.c: the ROSA channel of one layer, shared by every backend (it runs on the CPU):
 * sign-and-pack of projections into route symbols, advancing each (session, route) automaton
 * over a chunk of tokens in parallel, and the injection vector y (ROSA-SPEC sections 2-3). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"

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

/* Routes per task (one rosa__routes_run call): many, so that the cache misses of many routes
 * overlap (in decode every route is cold: 32 lanes cost about 25% less per route-token than 8,
 * docs/PERFORMANCE.md), but few enough that every thread gets about 4 tasks to balance. */
static int routes_per_task(int R, int nseq, int nthreads) {
    int g = ROSA__ROUTE_GROUP;
    while (g > 8 && (int64_t)nseq * ((R + g - 1) / g) < 4 * (int64_t)nthreads) g /= 2;
    return g;
}

typedef struct {
    rosa_model *m;
    struct rosa_session *const *ss;
    const int *ntok;
    const int *row0;   /* first row of each session in the [N, R] arrays */
    int rl, R, ngroups, group; /* group: routes per task */
    const uint8_t *qs, *ks, *vs;
    int16_t *vout;
    int32_t *dest;     /* [N, R] scratch, or NULL when no session traces */
    atomic_int failed;
} step_ctx;

/* One task: the routes [r0, r1) of one session's layer over its chunk, advanced together
 * token by token (rosa__routes_run), so that their cache misses overlap (in decode, T = 1). */
static void step_task(void *vctx, int task, int thread) {
    step_ctx *c = vctx;
    int si = task / c->ngroups, g = task % c->ngroups;
    int r0 = g * c->group, r1 = r0 + c->group;
    if (r1 > c->R) r1 = c->R;
    struct rosa_session *s = c->ss[si];
    int T = c->ntok[si];
    size_t o = (size_t)c->row0[si] * c->R;
    int64_t pos0 = s->pos;
    int32_t *dest = c->dest && s->trace && pos0 < s->trace_T ? c->dest + o : NULL;
    rosa__route *rts[ROSA__ROUTE_GROUP] = {0};
    for (int r = r0; r < r1; r++) rts[r - r0] = &s->routes.r[(size_t)c->rl * c->R + r];
    if (rosa__routes_run(rts, r1 - r0, T, c->qs + o + r0, c->ks + o + r0, c->vs + o + r0, (size_t)c->R, 1,
                         c->vout + o + r0, dest ? dest + r0 : NULL)) {
        atomic_store(&c->failed, 1);
        return;
    }
    if (dest)
        for (int r = r0; r < r1; r++)
            for (int i = 0; i < T; i++) {
                int64_t p = pos0 + i;
                if (p < s->trace_T)
                    s->trace[((size_t)c->rl * c->R + r) * s->trace_T + p] = dest[(size_t)i * c->R + r];
            }
}

int rosa__rosa_step(rosa_model *m, struct rosa_session *const *ss, int nseq, const int *ntok, int rl,
                    const uint8_t *qs, const uint8_t *ks, const uint8_t *vs, int16_t *vout, int32_t *dest) {
    int small[64];
    int *row0 = nseq <= 64 ? small : malloc((size_t)nseq * sizeof *row0);
    if (!row0) return ROSA_ERR_NOMEM;
    for (int i = 0, r = 0; i < nseq; r += ntok[i], i++) row0[i] = r;
    step_ctx c = {.m = m, .ss = ss, .ntok = ntok, .row0 = row0, .rl = rl, .R = m->R, .qs = qs, .ks = ks,
                  .vs = vs, .vout = vout, .dest = dest};
    atomic_init(&c.failed, 0);
    c.group = routes_per_task(m->R, nseq, rosa__pool_size(m->pool));
    c.ngroups = (m->R + c.group - 1) / c.group;
    /* one parallel region for all sessions of the batch: (session, route group) tasks */
    rosa__pool_run(m->pool, nseq * c.ngroups, step_task, &c);
    if (row0 != small) free(row0);
    return atomic_load(&c.failed) ? ROSA_ERR_NOMEM : 0;
}
