/* rosa_sam_undo.c: rollback of a route (rosa__route_truncate, rosa_sam.h).
 *
 * Placeholder: no undo log yet, so a route can "go back" only to where it is. */
#include "rosa.h"
#include "rosa/rosa_sam.h"

void rosa__route_set_horizon(rosa__route *r, uint32_t steps) {
    (void)r;
    (void)steps;
}

int rosa__route_can_truncate(const rosa__route *r, int64_t t) {
    if (r->err || t < 0 || t > r->t) return ROSA_ERR_INVALID;
    return t == r->t ? 0 : ROSA_ERR_LIMIT;
}

int rosa__route_truncate(rosa__route *r, int64_t t) { return rosa__route_can_truncate(r, t); }

size_t rosa__route_undo_bytes(const rosa__route *r) {
    (void)r;
    return 0;
}
