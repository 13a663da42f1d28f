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
#define ID_MASK ROSA__NONE
#define MAX_ENTRIES (1u << 28) /* 2 GiB of entries per route at most (ROSA_ERR_LIMIT beyond) */
#define CH ROSA__UNDO_CHUNK
#define CH_LOG ROSA__UNDO_CHUNK_LOG
#define CNUM_MASK ((1u << (32 - CH_LOG)) - 1) /* chunk numbers: positions >> CH_LOG, wrapping */
/* Positions start this far before they wrap around 2^32, so that every long-lived log (and
 * the tests) goes through the wrap early. */
#define FIRST_POS (0u - 64u * CH)
#define PW ROSA__PREFIX_WORDS
#define CW ROSA__CLONE_WORDS

static size_t undo_bytes(const rosa__undo *u) {
    if (!u) return 0;
    size_t b = sizeof *u + ((size_t)u->cmask + 1) * sizeof *u->chunks +
               (size_t)u->nchunks * CH * sizeof(uint64_t) + (size_t)u->mcap * sizeof *u->m +
               (size_t)u->capmaps * sizeof *u->maps;
    for (uint32_t i = 0; i < u->nmaps; i++) b += (size_t)u->maps[i].capx * 2 * sizeof(uint32_t);
    return b;
}

size_t rosa__route_undo_bytes(const rosa__route *r) { return undo_bytes(r->undo); }

/* Chunks c0 .. c1 - 1 (chunk numbers) are no longer needed: one becomes the spare. */
static void free_chunks(rosa__undo *u, uint32_t c0, uint32_t c1) {
    for (uint32_t c = c0; c != c1; c = (c + 1) & CNUM_MASK) {
        uint64_t *ch = u->chunks[c & u->cmask];
        u->chunks[c & u->cmask] = NULL;
        if (!u->spare) {
            u->spare = ch;
        } else {
            free(ch);
            u->nchunks--;
        }
    }
}

/* Chunk numbers in use: [tail >> LOG, ceil(head / CH)). */
static uint32_t chunk_end(uint32_t head) { return (uint32_t)(((uint64_t)head + CH - 1) >> CH_LOG) & CNUM_MASK; }

void rosa__undo_free(rosa__route *r) {
    rosa__undo *u = r->undo;
    r->u_st = r->u_pool = r->u_cells = 0;
    if (!u) return;
    if (u->chunks) free_chunks(u, u->tail >> CH_LOG, chunk_end(u->head));
    free(u->spare);
    for (uint32_t i = 0; i < u->nmaps; i++) free(u->maps[i].map);
    free(u->maps);
    free(u->chunks);
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

static int grow_fail(rosa__undo *u, int err) {
    u->fail = err;
    return err;
}

/* head is at a chunk boundary: the chunk for positions head .. head + CH - 1. */
int rosa__undo_grow(rosa__route *r) {
    rosa__undo *u = r->undo;
    uint32_t c = u->head >> CH_LOG, used = (c - (u->tail >> CH_LOG)) & CNUM_MASK; /* chunks before c */
    if (u->head - u->tail >= MAX_ENTRIES) return grow_fail(u, ROSA_ERR_LIMIT);
    if (used + 1 > u->cmask + 1 || !u->chunks) { /* a bigger ring of chunk pointers */
        uint32_t nc = u->chunks ? 2 * (u->cmask + 1) : 16;
        if (over_cap(r, (size_t)(nc - (u->chunks ? u->cmask + 1 : 0)) * sizeof *u->chunks))
            return grow_fail(u, ROSA_ERR_LIMIT);
        uint64_t **cs = calloc(nc, sizeof *cs);
        if (!cs) return grow_fail(u, ROSA_ERR_NOMEM);
        for (uint32_t k = u->tail >> CH_LOG; k != c; k = (k + 1) & CNUM_MASK)
            cs[k & (nc - 1)] = u->chunks[k & u->cmask];
        free(u->chunks);
        u->chunks = cs;
        u->cmask = nc - 1;
    }
    uint64_t *ch = u->spare;
    if (ch) {
        u->spare = NULL;
    } else {
        if (over_cap(r, CH * sizeof *ch)) return grow_fail(u, ROSA_ERR_LIMIT);
        if (!(ch = malloc(CH * sizeof *ch))) return grow_fail(u, ROSA_ERR_NOMEM);
        u->nchunks++;
    }
    u->chunks[c & u->cmask] = ch;
    u->cur = ch;
    return 0;
}

static uint64_t entry(const rosa__undo *u, uint32_t p) {
    return u->chunks[(p >> CH_LOG) & u->cmask][p & (CH - 1)];
}

/* The i-th oldest mark. */
static rosa__undo_mark *mark(const rosa__undo *u, uint32_t i) {
    uint32_t j = u->m0 + i;
    return &u->m[j >= u->mcap ? j - u->mcap : j];
}

/* Drop the oldest step.  Its entries and any xmap it saved are freed with those of the next
 * ROSA__UNDO_DROP - 1 dropped steps: reading the oldest mark (cold) every step would cost a
 * cache miss a step. */
static void drop_oldest(rosa__undo *u) {
    uint32_t t0 = u->tail;
    u->m0 = u->m0 + 1 == u->mcap ? 0 : u->m0 + 1;
    u->nm--;
    if (++u->ndrop < ROSA__UNDO_DROP && u->nm) return;
    u->ndrop = 0;
    u->tail = u->nm ? mark(u, 0)->pos : u->head;
    free_chunks(u, t0 >> CH_LOG, u->tail >> CH_LOG);
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

int rosa__undo_step_slow(rosa__route *r, uint32_t cursor, uint32_t bytes) {
    rosa__undo *u = r->undo;
    int err;
    if (!u) {
        if (over_cap(r, sizeof *u)) return ROSA_ERR_LIMIT;
        if (!(u = calloc(1, sizeof *u))) return ROSA_ERR_NOMEM;
        u->head = u->tail = FIRST_POS;
        r->undo = u;
    }
    if (u->fail) return u->fail;
    if (u->nm == r->horizon) drop_oldest(u);
    if (u->nm == u->mcap && (err = grow_marks(r, u))) return err;
    rosa__undo_mark *m = mark(u, u->nm++);
    m->pos = u->head;
    m->cursor = cursor;
    m->bytes = bytes;
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
    case ROSA__US_NPOOL: r->npool = v; break;
    case ROSA__US_NCELLS: r->ncells = v; break;
    case ROSA__US_NX: r->nx = v; break;
    case ROSA__US_ROOTX: r->rootx = v; break;
    case ROSA__US_KD_LOG: r->kd_log = v; break;
    default: r->freel[id - ROSA__US_FREEL] = v; break;
    }
}

/* Undo a last_end walk logged at positions p0 (its first state and old value) .. p1 - 1 (the
 * next states' old values, two per entry): walk the suffix links from the first state again, putting the old values back. */
static void undo_paint(rosa__route *r, uint32_t p0, uint32_t p1) {
    uint64_t e0 = entry(r->undo, p0);
    uint32_t *st = r->st, v = (uint32_t)(e0 >> 32) & 0x0FFFFFFFu;
    st[v + 1] = (st[v + 1] & ~LOW24) | ((uint32_t)e0 & LOW24);
    v = st[v] & ID_MASK;
    for (uint32_t p = p0 + 1; p != p1; p++) {
        uint64_t e = entry(r->undo, p);
        uint32_t vals[2] = {(uint32_t)(e >> 24) & LOW24, (uint32_t)e & LOW24};
        for (unsigned j = 0; j <= ((e >> 56) & 1); j++) {
            st[v + 1] = (st[v + 1] & ~LOW24) | vals[j];
            v = st[v] & ID_MASK;
        }
    }
}

/* The word entry e restores: fetched some entries ahead, since a route being truncated is
 * cold and the words are scattered (the misses then overlap). */
static inline void prefetch_entry(const rosa__route *r, uint64_t e) {
#if defined(__GNUC__)
    uint32_t idx = (uint32_t)(e >> 32) & 0x0FFFFFFFu;
    switch ((unsigned)(e >> 60)) {
    case ROSA__U_ST:
    case ROSA__U_PAINT: __builtin_prefetch(r->st + idx, 1); break;
    case ROSA__U_POOL:
    case ROSA__U_SADD:
    case ROSA__U_DADD: __builtin_prefetch(r->pool + idx, 1); break;
    case ROSA__U_CELLS: __builtin_prefetch(r->cells + idx, 1); break;
    default: break;
    }
#else
    (void)r;
    (void)e;
#endif
}

#define AHEAD 16 /* entries prefetched ahead of the replay */

int rosa__route_truncate(rosa__route *r, int64_t t) {
    int err = rosa__route_can_truncate(r, t);
    if (err || t == r->t) return err;
    rosa__undo *u = r->undo;
    uint32_t target = u->nm - (uint32_t)(r->t - t), h0 = u->head, stop = mark(u, target)->pos;
    for (uint32_t p = h0; p != stop && h0 - p < AHEAD; p--) prefetch_entry(r, entry(u, p - 1));
    for (uint32_t i = u->nm; i-- > target;) {
        const rosa__undo_mark *m = mark(u, i);
        while (u->head != m->pos) {
            if (u->head - stop > AHEAD) prefetch_entry(r, entry(u, u->head - 1 - AHEAD));
            uint64_t e = entry(u, --u->head);
            uint32_t old = (uint32_t)e, idx = (uint32_t)(e >> 32) & 0x0FFFFFFFu;
            switch ((unsigned)(e >> 60)) {
            case ROSA__U_ST: r->st[idx] = old; break;
            case ROSA__U_POOL: r->pool[idx] = old; break;
            case ROSA__U_CELLS: r->cells[idx] = old; break;
            case ROSA__U_XMAP: r->xmap[idx] = old; break;
            case ROSA__U_SCALAR: set_scalar(r, idx, old); break;
            case ROSA__U_XREHASH: /* the map before the step grew it */
                free(r->xmap);
                r->xmap = u->maps[--u->nmaps].map;
                r->capx = old;
                break;
            case ROSA__U_PAINTV: { /* back to the walk's first state, then undo it forwards */
                uint32_t p1 = u->head + 1;
                while ((entry(u, u->head - 1) >> 60) == ROSA__U_PAINTV) u->head--;
                undo_paint(r, --u->head, p1);
                break;
            }
            case ROSA__U_SADD: { /* slot n back to unused: the first symbol, target 0 (an
                                  * older entry has the target if it was not 0) */
                uint32_t n = r->pool[idx] - 1;
                uint8_t *sy = (uint8_t *)(r->pool + idx + 1);
                sy[n] = sy[0];
                r->pool[idx + 1 + (1u << old) + n] = 0;
                r->pool[idx] = n;
                break;
            }
            case ROSA__U_DADD:
                r->pool[idx + 1 + old] = ROSA__NONE;
                r->pool[idx]--;
                break;
            default: /* ROSA__U_PAINT: a walk of one state */
                undo_paint(r, u->head, u->head + 1);
                break;
            }
        }
        if (m->bytes & ROSA__UM_RUN) { /* the k-run this step started (and its clone) */
            if (r->nst - r->last == PW + CW) r->nclones--;
            r->nruns--;
            r->nst = r->last;
            r->last = r->nst - (m->bytes & ROSA__UM_FAR ? PW + CW : PW);
            r->st[r->last + 1] &= LOW24; /* its spine symbol, written by the step */
        }
    }
    free_chunks(u, chunk_end(u->head), chunk_end(h0));
    u->cur = u->head & (CH - 1) ? u->chunks[(u->head >> CH_LOG) & u->cmask] : NULL;
    const rosa__undo_mark *m = mark(u, target);
    r->cursor = m->cursor;
    r->moved = (uint8_t)(m->bytes & ROSA__UM_MOVED);
    r->prev_k = (uint8_t)(m->bytes >> 8);
    r->prev_q = (uint8_t)(m->bytes >> 16);
    r->csym = (uint8_t)(m->bytes >> 24);
    u->nm = target;
    r->t = t;
    r->u_st = r->u_pool = r->u_cells = 0;
    if (t == 0) { /* the first step started the route (root record): back to a fresh one */
        r->nst = r->last = r->nruns = r->cursor = 0;
        r->moved = r->prev_k = r->prev_q = r->csym = 0;
    }
    return 0;
}
