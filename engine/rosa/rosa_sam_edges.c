/* rosa_sam_edges.c: storage for the ROSA route state (rosa_sam.c): array growth with byte
 * accounting and an optional cap, edge blocks (sparse classes with free lists, dense blocks),
 * and the hash map of the rare extra edges of prefix states.  Lookups, which are hot, live in
 * rosa_sam.c; everything here runs when something grows. */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa/rosa_sam.h"

/* ---------------------------------------------------------------- growth and accounting */

size_t rosa__route_bytes(const rosa__route *r) {
    return ((size_t)r->capst + r->cappool + (size_t)r->capx * 2 + r->capsample + (size_t)r->capcells * 3) *
               sizeof(uint32_t) +
           (size_t)r->capruns * ROSA__RUN_BYTES + rosa__route_undo_bytes(r);
}

/* New capacity for an array of `elem`-byte items that must hold `need`: doubling while small
 * (many routes stay small; few reallocs), then growth by 1.25 past 64 KiB, so that slack stays
 * under 25% (about 12% on average); realloc copies add up to about 4x the final size. */
static int rosa__new_cap(const rosa__route *r, uint32_t cap, uint64_t need, size_t elem,
                         uint32_t min, uint32_t *out) {
    uint64_t nc = !cap ? min : (uint64_t)cap * elem < 65536 ? (uint64_t)cap * 2 : (uint64_t)cap + cap / 4;
    if (nc < need) nc = need;
    if (nc > UINT32_MAX || nc * elem > (uint64_t)SIZE_MAX / 2) return ROSA_ERR_LIMIT;
    if (r->max_bytes && rosa__route_bytes(r) + (size_t)(nc - cap) * elem > r->max_bytes)
        return ROSA_ERR_LIMIT;
    *out = (uint32_t)nc;
    return 0;
}

/* Arrays of ROSA__ARENA_MIN bytes and more come from the route's arena when it has one (huge
 * pages, see rosa_arena.h).  Up to ROSA__ARENA_SLAB_MAX the arena's sizes are classes at most
 * 1.25x apart, so the array asks for what it needs and takes the whole class (that is its
 * geometric growth; growing by 1.25x and then rounding up to a class would compound the
 * slack); beyond, it grows by 1.25x as on the heap.  Never past max_bytes. */
int rosa__sam_grow(rosa__route *r, void **p, uint32_t *cap, uint64_t need, size_t elem, uint32_t min) {
    if (need <= *cap) return 0;
    uint32_t nc;
    int err = rosa__new_cap(r, *cap, need, elem, min, &nc);
    if (err) return err;
    size_t bytes = (size_t)nc * elem, got;
    if (!r->arena || bytes < ROSA__ARENA_MIN) {
        void *q = realloc(*p, bytes);
        if (!q) return ROSA_ERR_NOMEM;
        *p = q;
        *cap = nc;
        return 0;
    }
    if (bytes <= ROSA__ARENA_SLAB_MAX && need * elem < bytes)
        bytes = need * elem < ROSA__ARENA_MIN ? ROSA__ARENA_MIN : (size_t)need * elem;
    void *q = rosa__arena_alloc(r->arena, bytes, &got);
    if (!q) return ROSA_ERR_NOMEM;
    uint64_t all = got / elem;
    if (all > UINT32_MAX) all = UINT32_MAX;
    if (all < need) all = need; /* (never: got >= bytes >= need * elem) */
    if (!r->max_bytes || rosa__route_bytes(r) + (size_t)(all - *cap) * elem <= r->max_bytes)
        nc = (uint32_t)all;
    else if (nc > all)
        nc = (uint32_t)all;
    if (*cap) memcpy(q, *p, (size_t)*cap * elem);
    rosa__sam_release(r, *p);
    *p = q;
    *cap = nc;
    return 0;
}

void rosa__sam_release(rosa__route *r, void *p) {
    if (p && (!r->arena || !rosa__arena_release(r->arena, p))) free(p);
}

/* ---------------------------------------------------------------- edge blocks */

#define OFF(h) ((h) & ROSA__OFF_MASK)
#define CODE(h) ((h) >> ROSA__CODE_SHIFT)
#define HANDLE(o, code) ((o) | (uint32_t)(code) << ROSA__CODE_SHIFT)

static uint32_t rosa__code_words(unsigned code) {
    if (code >= ROSA__DENSE_CODE) return 1 + (1u << (code - ROSA__DENSE_CODE));
    uint32_t cap = 4u << code;
    return 1 + cap / 4 + cap;
}

/* Smallest block kind holding `need` edges: a sparse class, or dense (as wide as the symbols
 * seen so far) when that is no bigger or a sparse search would take more than two 8-byte
 * steps. */
static unsigned rosa__pick_code(const rosa__route *r, unsigned need) {
    unsigned dense = ROSA__DENSE_CODE + r->kd_log;
    for (unsigned code = 0; code < ROSA__NCLASS; code++) {
        if ((4u << code) < need) continue;
        return rosa__code_words(code) >= rosa__code_words(dense) ? dense : code;
    }
    return dense;
}

static int rosa__block_alloc(rosa__route *r, unsigned code, uint32_t *h) {
    uint32_t o, words = rosa__code_words(code);
    if (code < ROSA__NCLASS && r->freel[code] != ROSA__NONE) {
        o = r->freel[code];
        rosa__log_scalar(r, ROSA__US_FREEL + code, o);
        r->freel[code] = r->pool[o + 1];
        rosa__log_pool(r, o);
    } else {
        uint32_t base = r->npool;
        if ((uint64_t)base + words > ROSA__OFF_MASK) return ROSA_ERR_LIMIT;
        int err = rosa__sam_grow(r, (void **)&r->pool, &r->cappool, (uint64_t)base + words,
                                 sizeof(uint32_t), 64);
        if (err) return err;
        o = base;
        rosa__log_scalar(r, ROSA__US_NPOOL, base);
        r->npool = base + words;
        /* every word of a new block is written: a route's image (and so a session file) holds
         * no uninitialised memory, and a truncated route's equals a fresh one's */
        memset(r->pool + o, 0, (size_t)words * sizeof(uint32_t));
    }
    r->pool[o] = 0;
    if (code >= ROSA__DENSE_CODE)
        for (uint32_t i = 1; i < words; i++) r->pool[o + i] = ROSA__NONE;
    *h = HANDLE(o, code);
    return 0;
}

int rosa__sam_block_new(rosa__route *r, unsigned need, uint32_t *h) {
    return rosa__block_alloc(r, rosa__pick_code(r, need), h);
}

static void rosa__block_release(rosa__route *r, uint32_t h) {
    if (CODE(h) >= ROSA__DENSE_CODE) return; /* rare (a wider alphabet appeared): not reused */
    rosa__log_pool(r, OFF(h) + 1);
    rosa__log_scalar(r, ROSA__US_FREEL + CODE(h), r->freel[CODE(h)]);
    r->pool[OFF(h) + 1] = r->freel[CODE(h)];
    r->freel[CODE(h)] = OFF(h);
}

/* Move the edges of block *h into a bigger one (a dense block stays dense, and gets as wide
 * as the symbols seen so far). */
static int rosa__block_grow(rosa__route *r, uint32_t *h) {
    uint32_t nh, old = *h, n = r->pool[OFF(old)];
    int err = rosa__block_alloc(r, CODE(old) >= ROSA__DENSE_CODE ? ROSA__DENSE_CODE + r->kd_log
                                                                 : rosa__pick_code(r, n + 1), &nh);
    if (err) return err;
    uint8_t sym[256];
    uint32_t tgt[256];
    unsigned k = rosa__sam_block_list(r->pool, old, sym, tgt);
    for (unsigned i = 0; i < k; i++) (void)rosa__sam_block_add(r, &nh, sym[i], tgt[i]); /* fits */
    rosa__block_release(r, old);
    *h = nh;
    return 0;
}

int rosa__sam_block_add(rosa__route *r, uint32_t *h, unsigned c, uint32_t t) {
    for (;;) {
        uint32_t o = OFF(*h), n = r->pool[o];
        unsigned code = CODE(*h);
        if (code >= ROSA__DENSE_CODE) {
            if (c < (1u << (code - ROSA__DENSE_CODE))) {
                rosa__log_pool(r, o + 1 + c);
                rosa__log_pool(r, o);
                r->pool[o + 1 + c] = t;
                r->pool[o] = n + 1;
                return 0;
            }
        } else if (n < (4u << code)) {
            uint8_t *sy = (uint8_t *)(r->pool + o + 1);
            if (n == 0)
                rosa__log_pool_range(r, o + 1, 1u << code);
            else
                rosa__log_pool(r, o + 1 + n / 4);
            rosa__log_pool(r, o + 1 + (1u << code) + n);
            rosa__log_pool(r, o);
            if (n == 0) memset(sy, (int)c, 4u << code); /* unused slots repeat the first symbol */
            sy[n] = (uint8_t)c;
            r->pool[o + 1 + (1u << code) + n] = t;
            r->pool[o] = n + 1;
            return 0;
        }
        int err = rosa__block_grow(r, h);
        if (err) return err;
    }
}

int rosa__sam_block_dup(rosa__route *r, uint32_t h, uint32_t *out) {
    unsigned code = CODE(h);
    int err = rosa__block_alloc(r, code, out);
    if (err) return err;
    rosa__log_pool_range(r, OFF(*out), rosa__code_words(code));
    memcpy(r->pool + OFF(*out), r->pool + OFF(h), rosa__code_words(code) * sizeof(uint32_t));
    return 0;
}

unsigned rosa__sam_block_list(const uint32_t *pool, uint32_t h, uint8_t *sym, uint32_t *tgt) {
    uint32_t o = OFF(h), n = pool[o];
    unsigned code = CODE(h), k = 0;
    if (code >= ROSA__DENSE_CODE) {
        for (unsigned c = 0; c < (1u << (code - ROSA__DENSE_CODE)); c++)
            if (pool[o + 1 + c] != ROSA__NONE) {
                sym[k] = (uint8_t)c;
                tgt[k++] = pool[o + 1 + c];
            }
        return k;
    }
    memcpy(sym, pool + o + 1, n);
    memcpy(tgt, pool + o + 1 + (1u << code), n * sizeof(uint32_t));
    return n;
}

/* ---------------------------------------------------------------- extra edges of prefix states
 * Open addressing, linear probing, load <= 1/2; entries: id + 1, block. */

uint32_t rosa__sam_xslot(const rosa__route *r, uint32_t id) {
    uint32_t mask = r->capx - 1;
    uint32_t h = (uint32_t)(((uint64_t)(id + 1) * 0x9E3779B97F4A7C15ull) >> 40) & mask;
    while (r->xmap[2 * h] != 0 && r->xmap[2 * h] != id + 1) h = (h + 1) & mask;
    return h;
}

int rosa__sam_xput(rosa__route *r, uint32_t id, uint32_t block) {
    if (2 * (r->nx + 1) > r->capx) {
        uint32_t oc = r->capx, nc = oc ? oc * 2 : 16;
        if (r->max_bytes && rosa__route_bytes(r) + (size_t)(nc - oc) * 8 > r->max_bytes)
            return ROSA_ERR_LIMIT;
        uint32_t *nm = calloc((size_t)nc * 2, sizeof(uint32_t));
        if (!nm) return ROSA_ERR_NOMEM;
        uint32_t *om = r->xmap;
        r->xmap = nm;
        r->capx = nc;
        for (uint32_t s = 0; s < oc; s++)
            if (om[2 * s]) memcpy(nm + 2 * rosa__sam_xslot(r, om[2 * s] - 1), om + 2 * s, 8);
        rosa__undo_xmap_replaced(r, om, oc); /* kept whole by the undo log, or freed */
    }
    uint32_t h = rosa__sam_xslot(r, id);
    if (!r->xmap[2 * h]) {
        rosa__log_scalar(r, ROSA__US_NX, r->nx);
        r->nx++;
    }
    rosa__log_xmap(r, 2 * h);
    rosa__log_xmap(r, 2 * h + 1);
    r->xmap[2 * h] = id + 1;
    r->xmap[2 * h + 1] = block;
    return 0;
}
