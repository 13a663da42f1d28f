/* rosa_sam.h: the ROSA state of one (layer, route): k-runs and an online suffix automaton.
 *
 * Implements ROSA-SPEC section 3 exactly, one time step at a time.  One route is touched by one
 * thread at a time; routes are independent, so a layer runs its routes in parallel.
 *
 * Layout (why it is compact; numbers per k-run at M = 4, see docs/PERFORMANCE.md):
 * - prefix states P_i (the state whose longest string is the first i run symbols; P_0 is the
 *   root) live in `ps`, indexed by i, 8 bytes each.  Their length is i, and their transition on
 *   run symbol i always goes to P_{i+1} (a solid edge is never redirected), so that "spine" edge
 *   is implicit: only its symbol is stored.  Other out-edges of a prefix state are rare; a flag
 *   sends the lookup to a small hash map.
 * - clone states live in `cs`, 20 bytes each, with up to two edges inline; more edges go to an
 *   edge block in `pool` (sparse: symbols + targets searched 8 at a time; dense: one target per
 *   symbol for states with many edges, such as the root).
 * State ids: a prefix state is its index i, a clone j is ROSA__CLONE | j, ROSA__NONE is none.
 * Sizes are limited to ROSA__MAX_RUNS k-runs per route (ROSA_ERR_LIMIT beyond). */
#ifndef ROSA_SAM_H
#define ROSA_SAM_H

#include <stddef.h>
#include <stdint.h>

#define ROSA__ID_BITS 25
#define ROSA__CLONE (1u << 24)
#define ROSA__NONE ((1u << ROSA__ID_BITS) - 1)
#define ROSA__MAX_RUNS ((1u << 24) - 2)
#define ROSA__NCLASS 6 /* sparse edge-block classes: capacity 4 << class */

typedef struct rosa__pstate {
    uint32_t link; /* bits 0-24: suffix link id; bit 31: has edges besides the spine */
    uint32_t le;   /* bits 0-23: last_end; bits 24-31: symbol of the spine edge (run i) */
} rosa__pstate;

typedef struct rosa__cstate {
    uint32_t len;  /* bits 0-23: longest string length; bits 24-31: symbol of inline edge 0 */
    uint32_t link; /* bits 0-24: suffix link id; bits 25-26: inline edges 0..2, or 3 = block */
    uint32_t le;   /* bits 0-23: last_end; bits 24-31: symbol of inline edge 1 */
    uint32_t a, b; /* inline edge targets, or a = edge block offset in pool */
} rosa__cstate;

typedef struct rosa__route {
    rosa__pstate *ps;   /* [nps] prefix states P_0 .. P_E+1 */
    rosa__cstate *cs;   /* [ncs] clone states */
    uint32_t *pool;     /* [npool] edge blocks */
    uint32_t *xmap;     /* [2 * capx] open addressing: prefix index + 1 (0: empty), block */
    int32_t *start;     /* [nps - 1] start time of run n */
    uint8_t *vsym;      /* [nps - 1] value symbol at start[n] */
    uint32_t nps, capps, ncs, capcs, npool, cappool, nx, capx, capruns;
    uint32_t freel[ROSA__NCLASS]; /* free sparse blocks per class, ROSA__NONE-terminated */
    uint32_t kd_log;    /* dense blocks cover symbols < 1 << kd_log (grows with symbols seen) */
    int64_t t;          /* time steps seen */
    size_t max_bytes;   /* 0: unlimited; else growing past this fails with ROSA_ERR_LIMIT */
    uint32_t cursor;    /* query cursor s */
    int err;            /* sticky error: once a step failed the route refuses further input */
    uint8_t moved, prev_k, prev_q;
} rosa__route;

void rosa__route_init(rosa__route *r);
void rosa__route_free(rosa__route *r);

/* Run T time steps.  Inputs at qs[t*stride], ks[t*stride], vs[t*stride]; outputs:
 * vout[t*stride] = retrieved value symbol or -1, dest[t*stride] = dest time or -1 (dest may be
 * NULL).  Returns 0, ROSA_ERR_NOMEM or ROSA_ERR_LIMIT; after an error the route keeps returning
 * it (its state is consistent enough to free, not to continue). */
int rosa__route_run(rosa__route *r, int T, const uint8_t *qs, const uint8_t *ks,
                    const uint8_t *vs, size_t stride, int16_t *vout, int32_t *dest);

/* Heap bytes allocated by this route (capacities, not sizes). */
size_t rosa__route_bytes(const rosa__route *r);

/* Number of k-runs so far (E + 1). */
int64_t rosa__route_nruns(const rosa__route *r);

/* Cap the heap bytes of this route (0: no cap); growth beyond fails with ROSA_ERR_LIMIT. */
void rosa__route_set_max_bytes(rosa__route *r, size_t max_bytes);
#endif
