/* rosa_sam_undo.c: rollback of a route (rosa__route_truncate, rosa_sam.h "Rollback").
 *
 * The writers (rosa_sam.c, rosa_sam_edges.c) log old values through the inline helpers of
 * rosa_sam.h; this file keeps the log: step marks, ring growth, dropping steps older than the
 * horizon, saved xmaps, and the backward replay. */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa/rosa_sam.h"

#define LOW24 0xFFFFFFu
#define MAX_ENTRIES (1u << 28) /* 2 GiB of entries per route at most (ROSA_ERR_LIMIT beyond) */

static size_t undo_bytes(const rosa__undo *u) {
    if (!u) return 0;
    size_t b = sizeof *u + ((size_t)u->emask + 1) * sizeof *u->e + (size_t)u->mcap * sizeof *u->m +
               (size_t)u->capmaps * sizeof *u->maps;
    for (uint32_t i = 0; i < u->nmaps; i++) b += (size_t)u->maps[i].capx * 2 * sizeof(uint32_t);
    return b;
}

size_t rosa__route_undo_bytes(const rosa__route *r) { return undo_bytes(r->undo); }

void rosa__undo_free(rosa__route *r) {
    rosa__undo *u = r->undo;
    r->u_st = r->u_pool = r->u_cells = 0;
    if (!u) return;
    for (uint32_t i = 0; i < u->nmaps; i++) free(u->maps[i].map);
    free(u->maps);
    free(u->e);
    free(u->m);
    free(u);
    r->undo = NULL;
}

void rosa__route_set_horizon(rosa__route *r, uint32_t steps) {
    rosa__undo_free(r);
    r->horizon = steps > ROSA__MAX_HORIZON ? ROSA__MAX_HORIZON : steps;
}

/* Would growing the log by `more` bytes pass the route's cap? */
static int over_cap(const rosa__route *r, size_t more) {
    return r->max_bytes && rosa__route_bytes(r) + more > r->max_bytes;
}

int rosa__undo_grow(rosa__route *r) {
    rosa__undo *u = r->undo;
    uint32_t cap = u->emask + 1, n = u->head - u->tail;
    if (n < cap) return 0;
    if (cap >= MAX_ENTRIES || over_cap(r, (size_t)cap * sizeof *u->e)) {
        u->fail = ROSA_ERR_LIMIT;
        return u->fail;
    }
    uint64_t *e = malloc((size_t)cap * 2 * sizeof *e);
    if (!e) {
        u->fail = ROSA_ERR_NOMEM;
        return u->fail;
    }
    /* unwrap: entry at position p goes to p & (2 cap - 1) */
    for (uint32_t p = u->tail; p != u->head; p++) e[p & (2 * cap - 1)] = u->e[p & (cap - 1)];
    free(u->e);
    u->e = e;
    u->emask = 2 * cap - 1;
    return 0;
}

/* The i-th oldest mark. */
static rosa__undo_mark *mark(const rosa__undo *u, uint32_t i) {
    uint32_t j = u->m0 + i;
    return &u->m[j >= u->mcap ? j - u->mcap : j];
}

/* Drop the oldest step: its entries and any xmap it saved. */
static void drop_oldest(rosa__undo *u) {
    u->m0 = u->m0 + 1 == u->mcap ? 0 : u->m0 + 1;
    u->nm--;
    u->tail = u->nm ? mark(u, 0)->pos : u->head;
    uint32_t live = u->head - u->tail, k = 0;
    while (k < u->nmaps && u->head - u->maps[k].pos > live) free(u->maps[k++].map);
    if (k) {
        memmove(u->maps, u->maps + k, (u->nmaps - k) * sizeof *u->maps);
        u->nmaps -= k;
    }
}

static int grow_marks(rosa__route *r, rosa__undo *u) {
    uint32_t nc = u->mcap ? u->mcap * 2 : 16;
    if (nc > r->horizon) nc = r->horizon;
    if (over_cap(r, (size_t)(nc - u->mcap) * sizeof *u->m)) return ROSA_ERR_LIMIT;
    rosa__undo_mark *m = malloc((size_t)nc * sizeof *m);
    if (!m) return ROSA_ERR_NOMEM;
    for (uint32_t i = 0; i < u->nm; i++) m[i] = *mark(u, i);
    free(u->m);
    u->m = m;
    u->mcap = nc;
    u->m0 = 0;
    return 0;
}

int rosa__undo_step(rosa__route *r, uint32_t cursor, unsigned moved, unsigned prev_k,
                    unsigned prev_q, unsigned csym) {
    rosa__undo *u = r->undo;
    int err;
    if (!u) {
        if (over_cap(r, sizeof *u + 64 * sizeof *u->e)) return ROSA_ERR_LIMIT;
        u = calloc(1, sizeof *u);
        if (!u) return ROSA_ERR_NOMEM;
        u->e = malloc(64 * sizeof *u->e);
        if (!u->e) {
            free(u);
            return ROSA_ERR_NOMEM;
        }
        u->emask = 63;
        r->undo = u;
    }
    if (u->fail) return u->fail;
    if (u->nm == r->horizon) drop_oldest(u);
    if (u->nm == u->mcap && (err = grow_marks(r, u))) return err;
    rosa__undo_mark *m = mark(u, u->nm++);
    m->pos = u->head;
    m->cursor = cursor;
    m->bytes = (moved & 1) | (prev_k & 255) << 8 | (prev_q & 255) << 16 | (csym & 255) << 24;
    m->nst = r->nst;
    m->last = r->last;
    m->nruns = r->nruns;
    r->u_st = r->nst;
    r->u_pool = r->npool;
    r->u_cells = 3 * r->ncells;
    return 0;
}

void rosa__undo_xmap_replaced(rosa__route *r, uint32_t *om, uint32_t oc) {
    rosa__undo *u = r->undo;
    if (!u || u->fail) {
        free(om);
        return;
    }
    if (u->nmaps == u->capmaps) {
        uint32_t nc = u->capmaps ? u->capmaps * 2 : 4;
        rosa__undo_map *m = realloc(u->maps, nc * sizeof *m);
        if (!m) {
            u->fail = ROSA_ERR_NOMEM;
            free(om);
            return;
        }
        u->maps = m;
        u->capmaps = nc;
    }
    u->maps[u->nmaps++] = (rosa__undo_map){om, oc, u->head};
    rosa__undo_push(r, ROSA__U_XREHASH, 0, oc);
}

int rosa__route_can_truncate(const rosa__route *r, int64_t t) {
    if (r->err || t < 0 || t > r->t) return ROSA_ERR_INVALID;
    if (t == r->t) return 0;
    uint32_t nm = r->undo ? r->undo->nm : 0;
    return r->t - t <= nm ? 0 : ROSA_ERR_LIMIT;
}

static void set_scalar(rosa__route *r, unsigned id, uint32_t v) {
    switch (id) {
    case ROSA__US_NCLONES: r->nclones = v; break;
    case ROSA__US_NPOOL: r->npool = v; break;
    case ROSA__US_NCELLS: r->ncells = v; break;
    case ROSA__US_NX: r->nx = v; break;
    case ROSA__US_ROOTX: r->rootx = v; break;
    case ROSA__US_KD_LOG: r->kd_log = v; break;
    default: r->freel[id - ROSA__US_FREEL] = v; break;
    }
}

int rosa__route_truncate(rosa__route *r, int64_t t) {
    int err = rosa__route_can_truncate(r, t);
    if (err || t == r->t) return err;
    rosa__undo *u = r->undo;
    uint32_t target = u->nm - (uint32_t)(r->t - t);
    const rosa__undo_mark *m = mark(u, target);
    while (u->head != m->pos) {
        uint64_t e = u->e[--u->head & u->emask];
        uint32_t old = (uint32_t)e, idx = (uint32_t)(e >> 32) & 0x0FFFFFFFu;
        switch ((unsigned)(e >> 60)) {
        case ROSA__U_ST: r->st[idx] = old; break;
        case ROSA__U_POOL: r->pool[idx] = old; break;
        case ROSA__U_CELLS: r->cells[idx] = old; break;
        case ROSA__U_XMAP: r->xmap[idx] = old; break;
        case ROSA__U_SCALAR: set_scalar(r, idx, old); break;
        default: /* ROSA__U_XREHASH: the map before the step grew it */
            free(r->xmap);
            r->xmap = u->maps[--u->nmaps].map;
            r->capx = old;
            break;
        }
    }
    r->cursor = m->cursor;
    r->moved = (uint8_t)(m->bytes & 1);
    r->prev_k = (uint8_t)(m->bytes >> 8);
    r->prev_q = (uint8_t)(m->bytes >> 16);
    r->csym = (uint8_t)(m->bytes >> 24);
    r->nst = m->nst;
    r->last = m->last;
    r->nruns = m->nruns;
    u->nm = target;
    r->t = t;
    r->u_st = r->u_pool = r->u_cells = 0;
    if (t == 0) { /* the first step started the route (root record): back to a fresh one */
        r->nst = r->last = r->nruns = r->cursor = 0;
        r->moved = r->prev_k = r->prev_q = r->csym = 0;
    }
    return 0;
}
