/* rosa_sam.h: the ROSA state of one (layer, route): k-runs and an online suffix automaton.
 *
 * Implements ROSA-SPEC section 3 exactly, one time step at a time.  Transitions are sparse
 * (K = 2^M can be up to 256 symbols, but a state has few out-edges).  One route is touched by
 * one thread at a time; routes are independent, so a layer runs its routes in parallel. */
#ifndef ROSA_SAM_H
#define ROSA_SAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct rosa__sam_state {
    int32_t len;      /* longest string length of the state */
    int32_t link;     /* suffix link, -1 for the root */
    int32_t last_end; /* largest run index where an occurrence ends */
    int32_t edges;    /* head of the edge list, -1 if none */
} rosa__sam_state;

typedef struct rosa__sam_edge {
    int32_t target;
    int32_t next;     /* next edge of the same state, -1 at the end */
    uint8_t sym;
} rosa__sam_edge;

typedef struct rosa__route {
    rosa__sam_state *st; int32_t nst, capst;
    rosa__sam_edge *ed;  int32_t ned, caped;
    int32_t last;        /* state of the whole run string */
    int32_t *start;      /* [runs] start time of run n */
    uint8_t *vsym;       /* [runs] value symbol at start[n] */
    int32_t nruns, capruns;
    int32_t t;           /* time steps seen */
    int32_t cursor;      /* query cursor s */
    uint8_t moved;
    uint8_t prev_k, prev_q;
} rosa__route;

void rosa__route_init(rosa__route *r);
void rosa__route_free(rosa__route *r);

/* Run T time steps.  Inputs at qs[t*stride], ks[t*stride], vs[t*stride]; outputs:
 * vout[t*stride] = retrieved value symbol or -1, dest[t*stride] = dest time or -1 (dest may be
 * NULL).  Returns 0 or ROSA_ERR_NOMEM (the route is then unusable). */
int rosa__route_run(rosa__route *r, int T, const uint8_t *qs, const uint8_t *ks,
                    const uint8_t *vs, size_t stride, int16_t *vout, int32_t *dest);

/* Heap bytes allocated by this route. */
size_t rosa__route_bytes(const rosa__route *r);
#endif
