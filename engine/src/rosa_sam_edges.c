/* rosa_sam_edges.c: storage for the ROSA route state (rosa_sam.c): array growth with byte
 * accounting and an optional cap, edge blocks (sparse classes with free lists, dense blocks),
 * and the hash map of the rare extra edges of prefix states.  Lookups, which are hot, live in
 * rosa_sam.c; everything here runs when something grows. */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa_sam.h"

/* ---------------------------------------------------------------- growth and accounting */

size_t rosa__route_bytes(const rosa__route *r) {
    return ((size_t)r->capst + r->cappool + (size_t)r->capx * 2 + r->capsample) * sizeof(uint32_t) +
           (size_t)r->capruns * ROSA__RUN_BYTES;
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

int rosa__sam_grow(rosa__route *r, void **p, uint32_t *cap, uint64_t need, size_t elem, uint32_t min) {
    if (need <= *cap) return 0;
    uint32_t nc;
    int err = rosa__new_cap(r, *cap, need, elem, min, &nc);
    if (err) return err;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return ROSA_ERR_NOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

/* ---------------------------------------------------------------- edge blocks */

static uint32_t rosa__class_words(unsigned cls) {
    uint32_t cap = 4u << cls;
    return 1 + cap / 4 + cap;
}

/* Smallest block kind holding `need` edges: a sparse class, or dense when a dense block is no
 * bigger or a sparse search would take more than two 8-symbol steps. */
static unsigned rosa__pick_class(const rosa__route *r, unsigned need) {
    uint32_t dense_words = 1 + (1u << r->kd_log);
    for (unsigned cls = 0; cls < ROSA__NCLASS; cls++) {
        if ((4u << cls) < need) continue;
        return rosa__class_words(cls) >= dense_words ? ROSA__DENSE : cls;
    }
    return ROSA__DENSE;
}

static int rosa__block_alloc(rosa__route *r, unsigned cls, uint32_t *off) {
    uint32_t o, words = cls == ROSA__DENSE ? 1 + (1u << r->kd_log) : rosa__class_words(cls);
    if (cls != ROSA__DENSE && r->freel[cls] != ROSA__NONE) {
        o = r->freel[cls];
        r->freel[cls] = r->pool[o + 1];
    } else {
        /* offset 0 stays unused so that a slot index of 0 can mean "absent" */
        uint32_t base = r->npool ? r->npool : 1;
        int err = rosa__sam_grow(r, (void **)&r->pool, &r->cappool, (uint64_t)base + words,
                                 sizeof(uint32_t), 64);
        if (err) return err;
        o = base;
        r->npool = base + words;
    }
    if (cls == ROSA__DENSE) {
        r->pool[o] = ROSA__DENSE << 16 | r->kd_log << 20;
        for (uint32_t i = 1; i < words; i++) r->pool[o + i] = ROSA__NONE;
    } else {
        r->pool[o] = cls << 16;
    }
    *off = o;
    return 0;
}

int rosa__sam_block_new(rosa__route *r, unsigned need, uint32_t *off) {
    return rosa__block_alloc(r, rosa__pick_class(r, need), off);
}

static void rosa__block_release(rosa__route *r, uint32_t o) {
    unsigned cls = (r->pool[o] >> 16) & 15;
    if (cls == ROSA__DENSE) return; /* rare (a wider alphabet appeared): not reused */
    r->pool[o + 1] = r->freel[cls];
    r->freel[cls] = o;
}

int rosa__sam_block_add(rosa__route *r, uint32_t *off, unsigned c, uint32_t t) {
    uint32_t o = *off, h = r->pool[o];
    unsigned n = h & 0xFFFF, cls = (h >> 16) & 15;
    if (cls == ROSA__DENSE) {
        if (c < (1u << ((h >> 20) & 15))) {
            r->pool[o + 1 + c] = t;
            r->pool[o] = h + 1;
            return 0;
        }
    } else if (n < (4u << cls)) {
        ((uint8_t *)(r->pool + o + 1))[n] = (uint8_t)c;
        r->pool[o + 1 + (1u << cls) + n] = t;
        r->pool[o] = h + 1;
        return 0;
    }
    /* full, or dense and too narrow: move to a bigger block (a dense block stays dense) */
    unsigned ncls = cls == ROSA__DENSE ? ROSA__DENSE : rosa__pick_class(r, n + 1);
    uint32_t no;
    int err = rosa__block_alloc(r, ncls, &no);
    if (err) return err;
    uint32_t *pool = r->pool;
    if (cls == ROSA__DENSE) {
        memcpy(pool + no + 1, pool + o + 1, ((size_t)1 << ((h >> 20) & 15)) * sizeof(uint32_t));
    } else if (ncls == ROSA__DENSE) {
        const uint8_t *sy = (const uint8_t *)(pool + o + 1);
        for (unsigned i = 0; i < n; i++) pool[no + 1 + sy[i]] = pool[o + 1 + (1u << cls) + i];
    } else {
        memcpy(pool + no + 1, pool + o + 1, n);
        memcpy(pool + no + 1 + (1u << ncls), pool + o + 1 + (1u << cls), n * sizeof(uint32_t));
    }
    pool[no] += n;
    rosa__block_release(r, o);
    *off = no;
    return rosa__sam_block_add(r, off, c, t);
}

int rosa__sam_block_dup(rosa__route *r, uint32_t o, uint32_t *off) {
    uint32_t h = r->pool[o], no;
    unsigned cls = (h >> 16) & 15;
    int err = rosa__block_alloc(r, cls, &no);
    if (err) return err;
    if (cls == ROSA__DENSE) {
        /* the copy has the current width, at least as wide as the original */
        memcpy(r->pool + no + 1, r->pool + o + 1, ((size_t)1 << ((h >> 20) & 15)) * sizeof(uint32_t));
        r->pool[no] |= h & 0xFFFF;
    } else {
        memcpy(r->pool + no, r->pool + o, rosa__class_words(cls) * sizeof(uint32_t));
    }
    *off = no;
    return 0;
}

unsigned rosa__sam_block_list(const uint32_t *pool, uint32_t o, uint8_t *sym, uint32_t *tgt) {
    uint32_t h = pool[o];
    unsigned n = h & 0xFFFF, cls = (h >> 16) & 15, k = 0;
    if (cls == ROSA__DENSE) {
        unsigned width = 1u << ((h >> 20) & 15);
        for (unsigned c = 0; c < width; c++)
            if (pool[o + 1 + c] != ROSA__NONE) {
                sym[k] = (uint8_t)c;
                tgt[k++] = pool[o + 1 + c];
            }
        return k;
    }
    memcpy(sym, pool + o + 1, n);
    memcpy(tgt, pool + o + 1 + (1u << cls), n * sizeof(uint32_t));
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
        free(om);
    }
    uint32_t h = rosa__sam_xslot(r, id);
    if (!r->xmap[2 * h]) r->nx++;
    r->xmap[2 * h] = id + 1;
    r->xmap[2 * h + 1] = block;
    return 0;
}
