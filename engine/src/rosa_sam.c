/* rosa_sam.c: the ROSA state of one route: k-runs, an online suffix automaton with last_end,
 * and the query cursor (ROSA-SPEC section 3).  The state layout is described in rosa_sam.h;
 * this file holds the allocation helpers, the edge sets (inline pairs, sparse blocks searched
 * eight symbols at a time, dense blocks), the automaton extension and the per-step query. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa_sam.h"

#define ID_MASK ROSA__NONE
#define LE_MASK 0xFFFFFFu
#define XFLAG 0x80000000u
#define MODE_SHIFT 25
#define DENSE 15u /* block class of a dense block */
#define MAX_TIME 0x7FFFFFFF

/* ---------------------------------------------------------------- growth and accounting */

size_t rosa__route_bytes(const rosa__route *r) {
    return (size_t)r->capps * sizeof(rosa__pstate) + (size_t)r->capcs * sizeof(rosa__cstate) +
           (size_t)r->cappool * sizeof(uint32_t) + (size_t)r->capx * 2 * sizeof(uint32_t) +
           (size_t)r->capruns * (sizeof(int32_t) + sizeof(uint8_t));
}

/* New capacity for an array of `elem`-byte items that must hold `need`: geometric growth by
 * 1.5 (the average slack is about 23%; realloc copies total about twice the final size). */
static int rosa__new_cap(const rosa__route *r, uint32_t cap, uint64_t need, size_t elem,
                         uint32_t min, uint32_t *out) {
    uint64_t nc = cap ? (uint64_t)cap + cap / 2 : min;
    if (nc < need) nc = need;
    if (nc > UINT32_MAX || nc * elem > (uint64_t)SIZE_MAX / 2) return ROSA_ERR_LIMIT;
    if (r->max_bytes && rosa__route_bytes(r) + (size_t)(nc - cap) * elem > r->max_bytes)
        return ROSA_ERR_LIMIT;
    *out = (uint32_t)nc;
    return 0;
}

static int rosa__grow(rosa__route *r, void **p, uint32_t *cap, uint64_t need, size_t elem,
                      uint32_t min) {
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

/* start[] and vsym[] share one allocation: [capruns int32 | capruns uint8]. */
static int rosa__grow_runs(rosa__route *r, uint32_t need) {
    if (need <= r->capruns) return 0;
    uint32_t nc, oc = r->capruns;
    int err = rosa__new_cap(r, oc, need, sizeof(int32_t) + 1, 16, &nc);
    if (err) return err;
    uint8_t *q = realloc(r->start, (size_t)nc * (sizeof(int32_t) + 1));
    if (!q) return ROSA_ERR_NOMEM;
    memmove(q + (size_t)nc * sizeof(int32_t), q + (size_t)oc * sizeof(int32_t), oc);
    r->start = (int32_t *)(void *)q;
    r->vsym = q + (size_t)nc * sizeof(int32_t);
    r->capruns = nc;
    return 0;
}

void rosa__route_init(rosa__route *r) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < ROSA__NCLASS; i++) r->freel[i] = ROSA__NONE;
    r->kd_log = 1;
}

void rosa__route_free(rosa__route *r) {
    free(r->ps);
    free(r->cs);
    free(r->pool);
    free(r->xmap);
    free(r->start);
    size_t max_bytes = r->max_bytes;
    rosa__route_init(r);
    r->max_bytes = max_bytes;
}

int64_t rosa__route_nruns(const rosa__route *r) { return r->nps ? (int64_t)r->nps - 1 : 0; }

void rosa__route_set_max_bytes(rosa__route *r, size_t max_bytes) { r->max_bytes = max_bytes; }

/* ---------------------------------------------------------------- edge blocks
 * A block at pool offset o: pool[o] = count | class << 16 | log2(dense width) << 20.
 * Sparse (class k, capacity 4 << k): cap symbol bytes, then cap targets.
 * Dense: one target per symbol c < width, ROSA__NONE where there is no edge. */

static inline uint32_t rosa__class_words(unsigned cls) {
    uint32_t cap = 4u << cls;
    return 1 + cap / 4 + cap;
}

/* Index in pool of the target of the edge on c, or 0 (offset 0 is never a target word). */
static inline uint32_t rosa__block_slot(const uint32_t *pool, uint32_t o, unsigned c) {
    uint32_t h = pool[o];
    unsigned n = h & 0xFFFF, cls = (h >> 16) & 15;
    if (cls == DENSE) {
        unsigned width = 1u << ((h >> 20) & 15);
        return c < width && pool[o + 1 + c] != ROSA__NONE ? o + 1 + c : 0;
    }
    unsigned cap = 4u << cls;
    const uint8_t *sy = (const uint8_t *)(pool + o + 1);
    const uint64_t ones = 0x0101010101010101ull, pat = ones * c;
    /* 8 symbols per step: a zero byte in sym ^ pat marks a match; the lowest flagged byte is
     * always a true match.  Bytes past n are garbage (still inside the block), hence j < n. */
    for (unsigned i = 0; i < n; i += 8) {
        uint64_t w;
        memcpy(&w, sy + i, 8);
        uint64_t x = w ^ pat;
        uint64_t z = (x - ones) & ~x & (ones << 7);
        if (z) {
            unsigned j = i + ((unsigned)__builtin_ctzll(z) >> 3);
            return j < n ? o + 1 + cap / 4 + j : 0;
        }
    }
    return 0;
}

static inline uint32_t rosa__block_find(const uint32_t *pool, uint32_t o, unsigned c) {
    uint32_t s = rosa__block_slot(pool, o, c);
    return s ? pool[s] : ROSA__NONE;
}

/* Smallest block kind holding `need` edges: a sparse class, or DENSE when a dense block is no
 * bigger or the sparse search would exceed two 8-symbol steps. */
static unsigned rosa__pick_class(const rosa__route *r, unsigned need) {
    uint32_t dense_words = 1 + (1u << r->kd_log);
    for (unsigned cls = 0; cls < ROSA__NCLASS; cls++) {
        if ((4u << cls) < need) continue;
        if ((4u << cls) > 16 || rosa__class_words(cls) >= dense_words) return DENSE;
        return cls;
    }
    return DENSE;
}

static int rosa__block_new(rosa__route *r, unsigned cls, uint32_t *off) {
    uint32_t o, words = cls == DENSE ? 1 + (1u << r->kd_log) : rosa__class_words(cls);
    if (cls != DENSE && r->freel[cls] != ROSA__NONE) {
        o = r->freel[cls];
        r->freel[cls] = r->pool[o + 1];
    } else {
        /* offset 0 is reserved so that a slot index of 0 can mean "absent" */
        uint32_t base = r->npool ? r->npool : 1;
        int err = rosa__grow(r, (void **)&r->pool, &r->cappool, (uint64_t)base + words,
                             sizeof(uint32_t), 64);
        if (err) return err;
        o = base;
        r->npool = base + words;
    }
    if (cls == DENSE) {
        r->pool[o] = DENSE << 16 | r->kd_log << 20;
        for (uint32_t i = 1; i < words; i++) r->pool[o + i] = ROSA__NONE;
    } else {
        r->pool[o] = cls << 16;
    }
    *off = o;
    return 0;
}

static void rosa__block_release(rosa__route *r, uint32_t o) {
    unsigned cls = (r->pool[o] >> 16) & 15;
    if (cls == DENSE) return; /* rare (a wider alphabet appeared): not reused */
    r->pool[o + 1] = r->freel[cls];
    r->freel[cls] = o;
}

/* Append edge (c -> t) to a block that has no edge on c yet; may move the block (*off). */
static int rosa__block_add(rosa__route *r, uint32_t *off, unsigned c, uint32_t t) {
    uint32_t o = *off, h = r->pool[o];
    unsigned n = h & 0xFFFF, cls = (h >> 16) & 15;
    if (cls == DENSE) {
        unsigned width = 1u << ((h >> 20) & 15);
        if (c < width) {
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
    /* full (or dense and too narrow): move to a bigger block; a dense block stays dense */
    unsigned ncls = cls == DENSE ? DENSE : rosa__pick_class(r, n + 1);
    uint32_t no;
    int err = rosa__block_new(r, ncls, &no);
    if (err) return err;
    uint32_t *pool = r->pool;
    if (cls == DENSE) {
        unsigned width = 1u << ((h >> 20) & 15);
        memcpy(pool + no + 1, pool + o + 1, width * sizeof(uint32_t));
        pool[no] += n;
    } else if (ncls == DENSE) {
        const uint8_t *sy = (const uint8_t *)(pool + o + 1);
        for (unsigned i = 0; i < n; i++) pool[no + 1 + sy[i]] = pool[o + 1 + (1u << cls) + i];
        pool[no] += n;
    } else {
        memcpy(pool + no + 1, pool + o + 1, n);
        memcpy(pool + no + 1 + (1u << ncls), pool + o + 1 + (1u << cls), n * sizeof(uint32_t));
        pool[no] += n;
    }
    rosa__block_release(r, o);
    *off = no;
    return rosa__block_add(r, off, c, t);
}

/* The edges of block o, in sym[] / tgt[] (room for 256); returns their number. */
static unsigned rosa__block_list(const uint32_t *pool, uint32_t o, uint8_t *sym, uint32_t *tgt) {
    uint32_t h = pool[o];
    unsigned n = h & 0xFFFF, cls = (h >> 16) & 15, k = 0;
    if (cls == DENSE) {
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

/* A copy of block o (for a clone); a dense block keeps its own width. */
static int rosa__block_dup(rosa__route *r, uint32_t o, uint32_t *off) {
    uint32_t h = r->pool[o];
    unsigned cls = (h >> 16) & 15;
    uint32_t words = cls == DENSE ? 1 + (1u << ((h >> 20) & 15)) : rosa__class_words(cls);
    uint32_t no;
    int err;
    if (cls == DENSE) {
        /* block_new makes one of the current width, at least as wide */
        if ((err = rosa__block_new(r, DENSE, &no))) return err;
        memcpy(r->pool + no + 1, r->pool + o + 1, (words - 1) * sizeof(uint32_t));
        r->pool[no] |= h & 0xFFFF;
    } else {
        if ((err = rosa__block_new(r, cls, &no))) return err;
        memcpy(r->pool + no, r->pool + o, words * sizeof(uint32_t));
    }
    *off = no;
    return 0;
}

/* ---------------------------------------------------------------- extra edges of prefix states
 * Open addressing, linear probing, load <= 1/2: keys are prefix index + 1, values blocks. */

static inline uint32_t rosa__xslot(const rosa__route *r, uint32_t i) {
    uint32_t mask = r->capx - 1;
    uint32_t h = (uint32_t)(((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull) >> 40) & mask;
    while (r->xmap[2 * h] != 0 && r->xmap[2 * h] != i + 1) h = (h + 1) & mask;
    return h;
}

static int rosa__xput(rosa__route *r, uint32_t i, uint32_t block) {
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
            if (om[2 * s]) {
                uint32_t h = rosa__xslot(r, om[2 * s] - 1);
                nm[2 * h] = om[2 * s];
                nm[2 * h + 1] = om[2 * s + 1];
            }
        free(om);
    }
    uint32_t h = rosa__xslot(r, i);
    if (!r->xmap[2 * h]) r->nx++;
    r->xmap[2 * h] = i + 1;
    r->xmap[2 * h + 1] = block;
    return 0;
}

static inline uint32_t rosa__xget(const rosa__route *r, uint32_t i) {
    return r->xmap[2 * rosa__xslot(r, i) + 1];
}

/* ---------------------------------------------------------------- states */

static inline int rosa__is_clone(uint32_t s) { return (s & ROSA__CLONE) != 0; }

static inline uint32_t rosa__link(const rosa__route *r, uint32_t s) {
    return (rosa__is_clone(s) ? r->cs[s ^ ROSA__CLONE].link : r->ps[s].link) & ID_MASK;
}

static inline uint32_t rosa__len(const rosa__route *r, uint32_t s) {
    return rosa__is_clone(s) ? r->cs[s ^ ROSA__CLONE].len & LE_MASK : s;
}

static inline uint32_t rosa__last_end(const rosa__route *r, uint32_t s) {
    return (rosa__is_clone(s) ? r->cs[s ^ ROSA__CLONE].le : r->ps[s].le) & LE_MASK;
}

static inline void rosa__set_link(rosa__route *r, uint32_t s, uint32_t to) {
    uint32_t *w = rosa__is_clone(s) ? &r->cs[s ^ ROSA__CLONE].link : &r->ps[s].link;
    *w = (*w & ~ID_MASK) | to;
}

static inline void rosa__set_last_end(rosa__route *r, uint32_t s, uint32_t n) {
    uint32_t *w = rosa__is_clone(s) ? &r->cs[s ^ ROSA__CLONE].le : &r->ps[s].le;
    *w = (*w & ~LE_MASK) | n;
}

/* Target of the transition of state s on symbol c, or ROSA__NONE. */
static inline uint32_t rosa__trans(const rosa__route *r, uint32_t s, unsigned c) {
    if (!rosa__is_clone(s)) {
        const rosa__pstate *p = &r->ps[s];
        if ((p->le >> 24) == c && s + 1 < r->nps) return s + 1; /* the spine edge */
        if (p->link & XFLAG) return rosa__block_find(r->pool, rosa__xget(r, s), c);
        return ROSA__NONE;
    }
    const rosa__cstate *q = &r->cs[s ^ ROSA__CLONE];
    unsigned mode = (q->link >> MODE_SHIFT) & 3;
    if (mode == 3) return rosa__block_find(r->pool, q->a, c);
    if (mode >= 1 && (q->len >> 24) == c) return q->a;
    if (mode == 2 && (q->le >> 24) == c) return q->b;
    return ROSA__NONE;
}

/* Add edge (c -> t) to state s, which has no edge on c. */
static int rosa__add_edge(rosa__route *r, uint32_t s, unsigned c, uint32_t t) {
    if (!rosa__is_clone(s)) {
        uint32_t o;
        int err;
        if (r->ps[s].link & XFLAG) {
            uint32_t h = rosa__xslot(r, s);
            o = r->xmap[2 * h + 1];
            if ((err = rosa__block_add(r, &o, c, t))) return err;
            r->xmap[2 * h + 1] = o;
            return 0;
        }
        if ((err = rosa__block_new(r, rosa__pick_class(r, 1), &o))) return err;
        if ((err = rosa__xput(r, s, o))) return err;
        r->ps[s].link |= XFLAG;
        if ((err = rosa__block_add(r, &o, c, t))) return err;
        r->xmap[2 * rosa__xslot(r, s) + 1] = o;
        return 0;
    }
    uint32_t j = s ^ ROSA__CLONE;
    rosa__cstate *q = &r->cs[j];
    unsigned mode = (q->link >> MODE_SHIFT) & 3;
    if (mode == 0) {
        q->len = (q->len & LE_MASK) | c << 24;
        q->a = t;
    } else if (mode == 1) {
        q->le = (q->le & LE_MASK) | c << 24;
        q->b = t;
    } else if (mode == 2) {
        uint32_t o;
        unsigned c0 = q->len >> 24, c1 = q->le >> 24;
        uint32_t t0 = q->a, t1 = q->b;
        int err;
        if ((err = rosa__block_new(r, rosa__pick_class(r, 3), &o))) return err;
        (void)rosa__block_add(r, &o, c0, t0); /* fits: no allocation */
        (void)rosa__block_add(r, &o, c1, t1);
        if ((err = rosa__block_add(r, &o, c, t))) return err;
        q = &r->cs[j];
        q->a = o;
        q->b = 0;
    } else {
        uint32_t o = q->a;
        int err = rosa__block_add(r, &o, c, t);
        if (err) return err;
        r->cs[j].a = o;
        return 0;
    }
    q->link += 1u << MODE_SHIFT;
    return 0;
}

/* Redirect the existing edge of s on c to t (never a spine edge: those are solid). */
static void rosa__set_edge(rosa__route *r, uint32_t s, unsigned c, uint32_t t) {
    uint32_t o;
    if (!rosa__is_clone(s)) {
        assert((r->ps[s].link & XFLAG) && ((r->ps[s].le >> 24) != c || s + 1 >= r->nps));
        o = rosa__xget(r, s);
    } else {
        rosa__cstate *q = &r->cs[s ^ ROSA__CLONE];
        unsigned mode = (q->link >> MODE_SHIFT) & 3;
        if (mode < 3) {
            if (mode >= 1 && (q->len >> 24) == c)
                q->a = t;
            else
                q->b = t;
            return;
        }
        o = q->a;
    }
    uint32_t slot = rosa__block_slot(r->pool, o, c);
    assert(slot);
    r->pool[slot] = t;
}

/* New clone of state q with length len; returns its id in *out. */
static int rosa__clone(rosa__route *r, uint32_t q, uint32_t len, uint32_t *out) {
    int err;
    if (r->ncs >= ROSA__MAX_RUNS) return ROSA_ERR_LIMIT;
    if ((err = rosa__grow(r, (void **)&r->cs, &r->capcs, (uint64_t)r->ncs + 1,
                          sizeof(rosa__cstate), 8)))
        return err;
    uint32_t j = r->ncs++, id = ROSA__CLONE | j;
    rosa__cstate *cl = &r->cs[j];
    cl->len = len;
    cl->link = rosa__link(r, q);
    cl->le = rosa__last_end(r, q);
    cl->a = cl->b = 0;
    if (rosa__is_clone(q)) {
        const rosa__cstate *src = &r->cs[q ^ ROSA__CLONE];
        unsigned mode = (src->link >> MODE_SHIFT) & 3;
        cl->len |= src->len & ~LE_MASK;
        cl->le |= src->le & ~LE_MASK;
        cl->link |= src->link & ~ID_MASK;
        if (mode < 3) {
            cl->a = src->a;
            cl->b = src->b;
        } else {
            uint32_t o;
            if ((err = rosa__block_dup(r, src->a, &o))) return err;
            r->cs[j].a = o;
        }
    } else {
        /* a prefix state: its spine edge (always present: q is not the newest state) plus any
         * extra edges */
        if ((err = rosa__add_edge(r, id, r->ps[q].le >> 24, q + 1))) return err;
        if (r->ps[q].link & XFLAG) {
            /* copy the (rare) extra edges out first: add_edge may move the pool */
            uint8_t sym[256];
            uint32_t tgt[256];
            unsigned n = rosa__block_list(r->pool, rosa__xget(r, q), sym, tgt);
            for (unsigned e = 0; e < n; e++)
                if ((err = rosa__add_edge(r, id, sym[e], tgt[e]))) return err;
        }
    }
    *out = id;
    return 0;
}

/* Append run symbol c as run n = nps - 1 (P_n is the current last state). */
static int rosa__extend(rosa__route *r, unsigned c) {
    uint32_t n = r->nps - 1, cur = n + 1;
    int err;
    if (n >= ROSA__MAX_RUNS) return ROSA_ERR_LIMIT;
    if ((err = rosa__grow(r, (void **)&r->ps, &r->capps, (uint64_t)r->nps + 1,
                          sizeof(rosa__pstate), 16)))
        return err;
    r->ps[cur].link = 0;
    r->ps[cur].le = LE_MASK; /* no last_end yet: the walk below sets it */
    r->ps[n].le = (r->ps[n].le & LE_MASK) | c << 24; /* the spine edge P_n -> P_n+1 */
    r->nps++;
    uint32_t p = r->ps[n].link & ID_MASK, q = ROSA__NONE;
    while (p != ROSA__NONE && (q = rosa__trans(r, p, c)) == ROSA__NONE) {
        if ((err = rosa__add_edge(r, p, c, cur))) return err;
        p = rosa__link(r, p);
    }
    if (p == ROSA__NONE) {
        rosa__set_link(r, cur, 0);
    } else if (rosa__len(r, p) + 1 == rosa__len(r, q)) {
        rosa__set_link(r, cur, q);
    } else {
        uint32_t cl;
        if ((err = rosa__clone(r, q, rosa__len(r, p) + 1, &cl))) return err;
        while (p != ROSA__NONE && rosa__trans(r, p, c) == q) {
            rosa__set_edge(r, p, c, cl);
            p = rosa__link(r, p);
        }
        rosa__set_link(r, q, cl);
        rosa__set_link(r, cur, cl);
    }
    for (uint32_t v = cur; v != ROSA__NONE && rosa__last_end(r, v) != n; v = rosa__link(r, v))
        rosa__set_last_end(r, v, n);
    return 0;
}

/* ---------------------------------------------------------------- the per-step loop */

static int rosa__start(rosa__route *r) {
    int err = rosa__grow(r, (void **)&r->ps, &r->capps, 1, sizeof(rosa__pstate), 16);
    if (err) return err;
    r->ps[0].link = ROSA__NONE;
    r->ps[0].le = LE_MASK;
    r->nps = 1;
    r->cursor = 0;
    return 0;
}

static int rosa__fail(rosa__route *r, int err) {
    r->err = err;
    return err;
}

int rosa__route_run(rosa__route *r, int T, const uint8_t *qs, const uint8_t *ks,
                    const uint8_t *vs, size_t stride, int16_t *vout, int32_t *dest) {
    int err;
    if (r->err) return r->err;
    if (T <= 0) return 0;
    if (r->t + T > MAX_TIME) return ROSA_ERR_LIMIT;
    if (!r->nps && (err = rosa__start(r))) return rosa__fail(r, err);
    for (int i = 0; i < T; i++) {
        size_t at = (size_t)i * stride;
        unsigned q = qs[at], k = ks[at];
        int first = r->t == 0;
        if (first || k != r->prev_k) {
            uint32_t n = r->nps - 1;
            if ((err = rosa__grow_runs(r, n + 1))) return rosa__fail(r, err);
            r->start[n] = (int32_t)r->t;
            r->vsym[n] = vs[at];
            while (k >> r->kd_log) r->kd_log++;
            if ((err = rosa__extend(r, k))) return rosa__fail(r, err);
        }
        if (first || q != r->prev_q) r->moved = 0;
        uint32_t s = r->cursor, ns;
        while ((ns = rosa__trans(r, s, q)) == ROSA__NONE && s != 0) s = rosa__link(r, s);
        int16_t out = -1;
        int32_t d = -1;
        if (ns != ROSA__NONE) {
            uint32_t p = rosa__last_end(r, ns) + 1;
            if (p + 1 < r->nps) { /* p <= E = nps - 2 */
                d = r->start[p];
                out = r->vsym[p];
            }
            if (!r->moved) {
                r->cursor = ns;
                r->moved = 1;
            }
        }
        vout[at] = out;
        if (dest) dest[at] = d;
        r->prev_k = (uint8_t)k;
        r->prev_q = (uint8_t)q;
        r->t++;
    }
    return 0;
}
