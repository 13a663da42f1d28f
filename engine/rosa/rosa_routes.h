/* rosa_routes.h: the ROSA state of one session: every (layer, route) automaton of it, created
 * and freed together.  The session (engine/core/session.c) and `rosa-cli bench rosa-step`
 * use the same calls, so the benchmark measures the storage the engine serves from. */
#ifndef ROSA_ROUTES_H
#define ROSA_ROUTES_H

#include <stddef.h>

#include "rosa/rosa_sam.h"

typedef struct rosa__routes {
    rosa__route *r;     /* [n]: layer-major, r[layer * R + route] */
    size_t n;
    rosa__arena *arena; /* the routes' large arrays (huge pages), or NULL (all on the heap) */
} rosa__routes;

/* n fresh routes (n may be 0), with an arena when huge != 0.  Returns 0 or ROSA_ERR_NOMEM. */
int rosa__routes_new(rosa__routes *rs, size_t n, int huge);
void rosa__routes_free(rosa__routes *rs);

/* Memory held (the route records, every route's arrays, and the arena's slack: memory mapped
 * but not handed out) and k-runs so far. */
size_t rosa__routes_bytes(const rosa__routes *rs);
int64_t rosa__routes_nruns(const rosa__routes *rs);

/* dst (made by rosa__routes_new with as many routes) becomes a deep copy of src, every route
 * on dst's own arena.  0, ROSA_ERR_NOMEM / _LIMIT (dst then holds partial copies: free it), or
 * ROSA_ERR_INVALID when a route of src has failed. */
int rosa__routes_copy(rosa__routes *dst, const rosa__routes *src);

/* Rollback of every route together (rosa__route_truncate): all or nothing; a route that cannot
 * go back to t (ROSA_ERR_LIMIT / _INVALID) is found before any route changes. */
void rosa__routes_set_horizon(rosa__routes *rs, uint32_t steps);
int rosa__routes_truncate(rosa__routes *rs, int64_t t);
size_t rosa__routes_undo_bytes(const rosa__routes *rs);
#endif
