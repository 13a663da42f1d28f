/* rosa_routes.c: the ROSA state of one session, all its routes together (see rosa_routes.h). */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa/rosa_routes.h"

int rosa__routes_new(rosa__routes *rs, size_t n, int huge) {
    memset(rs, 0, sizeof *rs);
    if (!n) return 0;
    rs->r = malloc(n * sizeof *rs->r);
    if (huge) rs->arena = rosa__arena_new();
    if (!rs->r || (huge && !rs->arena)) {
        free(rs->r);
        rosa__arena_free(rs->arena);
        rs->r = NULL;
        rs->arena = NULL;
        return ROSA_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        rosa__route_init(&rs->r[i]);
        rosa__route_set_arena(&rs->r[i], rs->arena);
    }
    rs->n = n;
    return 0;
}

void rosa__routes_free(rosa__routes *rs) {
    for (size_t i = 0; i < rs->n; i++) rosa__route_free(&rs->r[i]);
    free(rs->r);
    rosa__arena_free(rs->arena);
    memset(rs, 0, sizeof *rs);
}

size_t rosa__routes_bytes(const rosa__routes *rs) {
    size_t b = rs->n * sizeof *rs->r, mapped = 0, used = 0;
    for (size_t i = 0; i < rs->n; i++) b += rosa__route_bytes(&rs->r[i]);
    if (rs->arena) rosa__arena_stats(rs->arena, &mapped, &used);
    return b + (mapped - used);
}

int64_t rosa__routes_nruns(const rosa__routes *rs) {
    int64_t n = 0;
    for (size_t i = 0; i < rs->n; i++) n += rosa__route_nruns(&rs->r[i]);
    return n;
}

int rosa__routes_copy(rosa__routes *dst, const rosa__routes *src) {
    if (dst->n != src->n) return ROSA_ERR_INVALID;
    for (size_t i = 0; i < src->n; i++) {
        int err = rosa__route_copy(&dst->r[i], &src->r[i]);
        if (err) return err;
    }
    return 0;
}

void rosa__routes_set_horizon(rosa__routes *rs, uint32_t steps) {
    for (size_t i = 0; i < rs->n; i++) rosa__route_set_horizon(&rs->r[i], steps);
}

int rosa__routes_truncate(rosa__routes *rs, int64_t t) {
    for (size_t i = 0; i < rs->n; i++) {
        int err = rosa__route_can_truncate(&rs->r[i], t);
        if (err) return err;
    }
    for (size_t i = 0; i < rs->n; i++) {
        int err = rosa__route_truncate(&rs->r[i], t);
        if (err) return err;
    }
    return 0;
}

size_t rosa__routes_undo_bytes(const rosa__routes *rs) {
    size_t b = 0;
    for (size_t i = 0; i < rs->n; i++) b += rosa__route_undo_bytes(&rs->r[i]);
    return b;
}
