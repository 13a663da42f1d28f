/* rosa_sam.c: the ROSA state of one route: k-runs, an online suffix automaton with last_end,
 * and the query cursor (ROSA-SPEC section 3).  The state layout is described in rosa_sam.h;
 * this file holds the hot part: transition lookup, the automaton extension, the last_end walk
 * and the per-step query.  Storage (growth, edge blocks, the extra-edge map) is in
 * rosa_sam_edges.c. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa/rosa_sam.h"

#define NONE ROSA__NONE
#define ID_MASK ROSA__NONE
#define LOW24 0xFFFFFFu
#define CF_SHIFT 27
#define F_CF (1u << CF_SHIFT) /* prefix state: a clone record sits before the next prefix state */
#define F_X (1u << 28)        /* prefix state: has edges besides the spine */
#define F_BLOCK (1u << 29)    /* clone: its edges are in the block at word W_A */
#define F_CELL (1u << 30)     /* either kind: word W_LE holds a last_end cell id, not a value */
#define F_CLONE (1u << 31)
#define SAMPLE_LOG 6          /* psample keeps the id of every 64th prefix state */
#define MAX_TIME 0x7FFFFFFF

/* record words; both kinds start with link and last_end */
enum { W_LINK = 0, W_LE = 1, W_LEN = 2, W_A = 3, W_B = 4, PW = ROSA__PREFIX_WORDS, CW = ROSA__CLONE_WORDS };

#if defined(__GNUC__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define PREFETCH(p) __builtin_prefetch(p)
#define PREFETCH_W(p) __builtin_prefetch(p, 1)
#else
#define PREFETCH(p) ((void)(p))
#define PREFETCH_W(p) ((void)(p))
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#define NOINLINE
#define ALWAYS_INLINE inline
#endif

void rosa__route_init(rosa__route *r) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < ROSA__NCLASS; i++) r->freel[i] = NONE;
    r->rootx = NONE;
    r->kd_log = 1;
    r->cell_min = 32;
}

void rosa__route_free(rosa__route *r) {
    rosa__sam_release(r, r->st);
    rosa__sam_release(r, r->pool);
    free(r->xmap);
    rosa__sam_release(r, r->psample);
    rosa__sam_release(r, r->cells);
    rosa__sam_release(r, r->runs);
    rosa__undo_free(r);
    size_t max_bytes = r->max_bytes;
    uint32_t cell_min = r->cell_min, horizon = r->horizon;
    rosa__arena *arena = r->arena;
    rosa__route_init(r);
    r->max_bytes = max_bytes;
    r->cell_min = cell_min;
    r->horizon = horizon;
    r->arena = arena;
}

void rosa__route_set_arena(rosa__route *r, rosa__arena *a) { r->arena = a; }

int64_t rosa__route_nruns(const rosa__route *r) { return r->nruns; }

int64_t rosa__route_t(const rosa__route *r) { return r->t; }

int64_t rosa__route_nstates(const rosa__route *r) {
    return r->nst ? 1 + (int64_t)r->nruns + r->nclones : 0;
}

void rosa__route_set_max_bytes(rosa__route *r, size_t max_bytes) { r->max_bytes = max_bytes; }

/* ---------------------------------------------------------------- lookups */

/* The prefix state after prefix state s (the target of its spine edge). */
static inline uint32_t rosa__spine_next(uint32_t s, uint32_t w0) {
    return s + PW + CW * ((w0 >> CF_SHIFT) & 1);
}

/* Index j of symbol c among the symbols of sparse block (o, code), or -1.  Unused slots
 * repeat the first symbol, so the lowest match is always a real edge and no count is read. */
static inline int rosa__sparse_index(const uint32_t *pool, uint32_t o, unsigned code, unsigned c) {
    const uint8_t *sy = (const uint8_t *)(pool + o + 1);
    const uint64_t ones = 0x0101010101010101ull, pat = ones * c;
    uint64_t w, x, z;
    memcpy(&w, sy, 8); /* class 0 holds 4 symbols: the other 4 bytes are target 0, masked */
    x = w ^ pat;
    z = (x - ones) & ~x & (ones << 7) & (code ? ~0ull : 0x80808080ull);
    if (z) return (int)((unsigned)__builtin_ctzll(z) >> 3);
    for (unsigned i = 8; i < (4u << code); i += 8) {
        memcpy(&w, sy + i, 8);
        x = w ^ pat;
        z = (x - ones) & ~x & (ones << 7);
        if (z) return (int)(i + ((unsigned)__builtin_ctzll(z) >> 3));
    }
    return -1;
}

/* The word holding the target of the edge on c in block h, or NULL. */
static inline uint32_t *rosa__block_word(uint32_t *pool, uint32_t h, unsigned c) {
    uint32_t o = h & ROSA__OFF_MASK;
    unsigned code = h >> ROSA__CODE_SHIFT;
    if (code >= ROSA__DENSE_CODE)
        return c < (1u << (code - ROSA__DENSE_CODE)) && pool[o + 1 + c] != NONE ? &pool[o + 1 + c]
                                                                               : NULL;
    int j = rosa__sparse_index(pool, o, code, c);
    return j >= 0 ? &pool[o + 1 + (1u << code) + (unsigned)j] : NULL;
}

/* Target of the edge on c in block h, or NONE. */
static inline uint32_t rosa__block_find(const uint32_t *pool, uint32_t h, unsigned c) {
    uint32_t o = h & ROSA__OFF_MASK;
    unsigned code = h >> ROSA__CODE_SHIFT;
    if (code >= ROSA__DENSE_CODE)
        return c < (1u << (code - ROSA__DENSE_CODE)) ? pool[o + 1 + c] : NONE;
    int j = rosa__sparse_index(pool, o, code, c);
    return j >= 0 ? pool[o + 1 + (1u << code) + (unsigned)j] : NONE;
}

/* The extra-edge block handle of prefix state s (flag F_X set). */
static inline uint32_t rosa__xblock(const rosa__route *r, uint32_t s) {
    return s == 0 ? r->rootx : r->xmap[2 * rosa__sam_xslot(r, s) + 1];
}

static NOINLINE uint32_t rosa__xfind(const rosa__route *r, uint32_t s, unsigned c) {
    return rosa__block_find(r->pool, rosa__xblock(r, s), c);
}

/* Target of the transition of state s on symbol c, or NONE.  Inline edges of a clone have
 * target NONE while unused, so no count is needed. */
static ALWAYS_INLINE uint32_t rosa__trans(const rosa__route *r, uint32_t s, unsigned c) {
    const uint32_t *w = r->st + s;
    uint32_t w0 = w[W_LINK];
    if (!(w0 & F_CLONE)) {
        if ((w[W_LE] >> 24) == c && s != r->last) return rosa__spine_next(s, w0);
        if (w0 & F_X) return rosa__xfind(r, s, c);
        return NONE;
    }
    if (w0 & F_BLOCK) return rosa__block_find(r->pool, w[W_A], c);
    if ((w[W_LE] >> 24) == c) return w[W_A];
    if ((w[W_LEN] >> 24) == c) return w[W_B];
    return NONE;
}

/* last_end of state s (a plain value, or its cell's). */
static inline uint32_t rosa__last_end(const rosa__route *r, uint32_t s) {
    uint32_t le = r->st[s + W_LE] & LOW24;
    return (r->st[s] & F_CELL) ? r->cells[3 * le] : le;
}

/* Length of prefix state s: from the nearest sampled prefix state at or before it, walk the
 * spine.  Only needed when a non-spine edge of a prefix state is followed (rare). */
static NOINLINE uint32_t rosa__prefix_len(const rosa__route *r, uint32_t s) {
    uint32_t lo = 0, hi = (r->nruns >> SAMPLE_LOG) + 1;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->psample[mid] <= s)
            lo = mid;
        else
            hi = mid;
    }
    uint32_t v = r->psample[lo], i = lo << SAMPLE_LOG;
    while (v < s) {
        v = rosa__spine_next(v, r->st[v]);
        i++;
    }
    assert(v == s);
    return i;
}

static inline uint32_t rosa__len(const rosa__route *r, uint32_t s) {
    return (r->st[s] & F_CLONE) ? r->st[s + W_LEN] & LOW24 : rosa__prefix_len(r, s);
}

/* The word holding the target of the stored edge of s on c, or NULL (no edge, or the spine). */
static uint32_t *rosa__edge_word(rosa__route *r, uint32_t s, unsigned c) {
    uint32_t *w = r->st + s;
    if (!(w[W_LINK] & F_CLONE)) {
        if (((w[W_LE] >> 24) == c && s != r->last) || !(w[W_LINK] & F_X)) return NULL;
        return rosa__block_word(r->pool, rosa__xblock(r, s), c);
    }
    if (w[W_LINK] & F_BLOCK) return rosa__block_word(r->pool, w[W_A], c);
    if ((w[W_LE] >> 24) == c && w[W_A] != NONE) return &w[W_A];
    if ((w[W_LEN] >> 24) == c && w[W_B] != NONE) return &w[W_B];
    return NULL;
}

/* ---------------------------------------------------------------- building */

/* Log the old value of an edge target word (in st or pool) before it is written. */
static void rosa__log_word(rosa__route *r, const uint32_t *w) {
    if ((uintptr_t)w >= (uintptr_t)r->st && (uintptr_t)w < (uintptr_t)(r->st + r->nst))
        rosa__log_st(r, (uint32_t)(w - r->st));
    else
        rosa__log_pool(r, (uint32_t)(w - r->pool));
}

/* Add edge (c -> t) to prefix state s, which has none on c. */
static NOINLINE int rosa__add_xedge(rosa__route *r, uint32_t s, unsigned c, uint32_t t) {
    uint32_t o;
    int err;
    if (r->st[s] & F_X) {
        uint32_t old = o = rosa__xblock(r, s);
        if ((err = rosa__sam_block_add(r, &o, c, t))) return err;
        if (o == old) return 0;
        if (s == 0) {
            rosa__log_scalar(r, ROSA__US_ROOTX, r->rootx);
            r->rootx = o;
        } else {
            uint32_t i = 2 * rosa__sam_xslot(r, s) + 1;
            rosa__log_xmap(r, i);
            r->xmap[i] = o;
        }
        return 0;
    }
    if ((err = rosa__sam_block_new(r, 1, &o))) return err;
    if (s == 0) {
        rosa__log_scalar(r, ROSA__US_ROOTX, r->rootx);
        r->rootx = o;
    } else if ((err = rosa__sam_xput(r, s, o))) {
        return err;
    }
    rosa__log_st(r, s);
    r->st[s] |= F_X;
    return rosa__sam_block_add(r, &o, c, t); /* fits: does not move */
}

/* Move the two inline edges of clone s and a third one (c -> t) into a new block. */
static NOINLINE int rosa__spill(rosa__route *r, uint32_t s, unsigned c, uint32_t t) {
    uint32_t h;
    int err = rosa__sam_block_new(r, 3, &h);
    if (err) return err;
    uint32_t *w = r->st + s, o = h & ROSA__OFF_MASK, *pool = r->pool;
    unsigned code = h >> ROSA__CODE_SHIFT, c0 = w[W_LE] >> 24, c1 = w[W_LEN] >> 24;
    if (code >= ROSA__DENSE_CODE) { /* (a new block: dense blocks are never reused) */
        pool[o + 1 + c0] = w[W_A];
        pool[o + 1 + c1] = w[W_B];
        pool[o + 1 + c] = t;
    } else {
        uint8_t *sy = (uint8_t *)(pool + o + 1);
        if (r->u_st) { /* (a reused block: its old contents) */
            rosa__log_pool_range(r, o + 1, 1u << code);
            rosa__log_pool_range(r, o + 1 + (1u << code), 3);
        }
        memset(sy, (int)c0, 4u << code); /* unused slots repeat the first symbol */
        sy[1] = (uint8_t)c1;
        sy[2] = (uint8_t)c;
        uint32_t *tg = pool + o + 1 + (1u << code);
        tg[0] = w[W_A];
        tg[1] = w[W_B];
        tg[2] = t;
    }
    pool[o] = 3; /* (undo: a reused block's count was logged by rosa__sam_block_new) */
    if (r->u_st) {
        rosa__log_st(r, s + W_LINK);
        rosa__log_st(r, s + W_A);
        rosa__log_st(r, s + W_B);
    }
    w[W_LINK] |= F_BLOCK;
    w[W_A] = h;
    w[W_B] = 0;
    return 0;
}

/* Add edge (c -> t) to state s, which has none on c.  May grow pool, never st.  logging: 0
 * where the caller knows that no undo log is kept (a constant: no tests for it here). */
static ALWAYS_INLINE int rosa__add_edge(rosa__route *r, uint32_t s, unsigned c, uint32_t t, int logging) {
    uint32_t *w = r->st + s;
    if (!(w[W_LINK] & F_CLONE)) return rosa__add_xedge(r, s, c, t);
    if (w[W_LINK] & F_BLOCK) {
        uint32_t h = w[W_A], o = h & ROSA__OFF_MASK, n = r->pool[o];
        unsigned code = h >> ROSA__CODE_SHIFT;
        if (code >= ROSA__DENSE_CODE) {
            if (c < (1u << (code - ROSA__DENSE_CODE))) {
                if (logging) rosa__log_dadd(r, o, c);
                r->pool[o + 1 + c] = t;
                r->pool[o] = n + 1;
                return 0;
            }
        } else if (n < (4u << code)) { /* room in a sparse block (never empty here) */
            if (logging) rosa__log_sadd(r, o, code, n);
            ((uint8_t *)(r->pool + o + 1))[n] = (uint8_t)c;
            r->pool[o + 1 + (1u << code) + n] = t;
            r->pool[o] = n + 1;
            return 0;
        }
        int err = rosa__sam_block_add(r, &h, c, t);
        if (err) return err;
        if (logging) rosa__log_st(r, s + W_A);
        w[W_A] = h;
        return 0;
    }
    assert(w[W_A] != NONE); /* a clone is born with its original's edges (at least one) */
    if (w[W_B] == NONE) {
        if (logging) {
            rosa__log_st(r, s + W_LEN);
            rosa__log_st(r, s + W_B);
        }
        w[W_LEN] = (w[W_LEN] & LOW24) | c << 24;
        w[W_B] = t;
    } else {
        return rosa__spill(r, s, c, t);
    }
    return 0;
}

/* ---------------------------------------------------------------- last_end cells */

/* Set the states from v up to (not including) stop to plain with last_end le. */
static void rosa__cell_unset(rosa__route *r, uint32_t v, uint32_t stop, uint32_t le) {
    uint32_t *st = r->st;
    for (; v != stop; v = st[v] & ID_MASK) {
        rosa__log_st(r, v);
        rosa__log_st(r, v + W_LE);
        st[v] &= ~F_CELL;
        st[v + W_LE] = (st[v + W_LE] & ~LOW24) | le;
    }
}

/* Put the states from v up to (not including) stop into cell h. */
static void rosa__cell_set(rosa__route *r, uint32_t v, uint32_t stop, uint32_t h) {
    uint32_t *st = r->st;
    for (; v != stop; v = st[v] & ID_MASK) {
        rosa__log_st(r, v);
        rosa__log_st(r, v + W_LE);
        st[v] |= F_CELL;
        st[v + W_LE] = (st[v + W_LE] & ~LOW24) | h;
    }
}

/* A new cell {value, bottom, exit} in *h. */
static int rosa__cell_new(rosa__route *r, uint32_t value, uint32_t bottom, uint32_t exit,
                          uint32_t *h) {
    if (r->ncells >= LOW24) return ROSA_ERR_LIMIT; /* ids must fit the last_end field */
    int err = rosa__sam_grow(r, (void **)&r->cells, &r->capcells, (uint64_t)r->ncells + 1,
                             3 * sizeof(uint32_t), 4);
    if (err) return err;
    rosa__log_scalar(r, ROSA__US_NCELLS, r->ncells);
    *h = r->ncells++;
    r->cells[3 * *h] = value;
    r->cells[3 * *h + 1] = bottom;
    r->cells[3 * *h + 2] = exit;
    return 0;
}

/* Cell h's path is bottom .. top, exit = link(top); v is on it above the bottom.  Split it
 * there and give v .. top last_end n, relabelling whichever side is shorter (both sides are
 * walked in turn until one ends), so that a split costs O(smaller side).  Sides shorter than
 * 4 states become plain rather than new cells. */
static int rosa__cell_split(rosa__route *r, uint32_t h, uint32_t v, uint32_t n) {
    uint32_t *st = r->st, bottom = r->cells[3 * h + 1], exit = r->cells[3 * h + 2];
    uint32_t a = v, b = bottom, steps = 0;
    for (;;) {
        steps++;
        a = st[a] & ID_MASK;
        if (a == exit) { /* the upper side is shorter: it leaves the cell */
            rosa__cell_unset(r, v, exit, n);
            rosa__log_cells(r, 3 * h + 2);
            r->cells[3 * h + 2] = v;
            return 0;
        }
        b = st[b] & ID_MASK;
        if (b == v) break; /* the lower side is shorter: it leaves the cell */
    }
    uint32_t old = r->cells[3 * h];
    if (steps < 4) {
        rosa__cell_unset(r, bottom, v, old);
    } else {
        uint32_t h2;
        int err = rosa__cell_new(r, old, bottom, v, &h2);
        if (err) return err;
        rosa__cell_set(r, bottom, v, h2);
    }
    rosa__log_cells(r, 3 * h);
    rosa__log_cells(r, 3 * h + 1);
    r->cells[3 * h] = n;
    r->cells[3 * h + 1] = v;
    return 0;
}

/* ---------------------------------------------------------------- building (continued) */

/* New clone of state q with length len, appended at st[nst] (room reserved by the caller).
 * Its last_end is copied, though the walk that follows always overwrites it: the clone is on
 * the new suffix chain. */
static int rosa__clone(rosa__route *r, uint32_t q, uint32_t len, uint32_t *out) {
    int err;
    uint32_t id = r->nst;
    r->nst += CW;
    r->nclones++; /* (undo: a step makes at most one clone, seen from nst) */
    uint32_t *cl = r->st + id;
    const uint32_t *src = r->st + q;
    cl[W_LINK] = (src[W_LINK] & ID_MASK) | F_CLONE;
    cl[W_LE] = rosa__last_end(r, q);
    cl[W_LEN] = len;
    cl[W_A] = cl[W_B] = NONE;
    if (src[W_LINK] & F_CELL) {
        /* the clone goes between q and its link: q's cell is cut there, the clone (plain)
         * joins neither part; the walk that follows gives the upper part its new value */
        uint32_t h = src[W_LE] & LOW24, up = src[W_LINK] & ID_MASK;
        if (r->cells[3 * h + 2] == up) {
            rosa__log_cells(r, 3 * h + 2);
            r->cells[3 * h + 2] = id; /* q is the top */
        } else {
            uint32_t value = r->cells[3 * h];
            if ((err = rosa__cell_split(r, h, up, value))) return err;
            /* the lower side (bottom .. q) now exits to up: make it exit to the clone */
            uint32_t hq = (r->st[q] & F_CELL) ? r->st[q + W_LE] & LOW24 : UINT32_MAX;
            /* (undo: hq is h, whose exit the split logged, or a cell made by the split) */
            if (hq != UINT32_MAX) r->cells[3 * hq + 2] = id;
        }
        cl = r->st + id;
        src = r->st + q;
    }
    if (src[W_LINK] & F_CLONE) {
        cl[W_LINK] |= src[W_LINK] & F_BLOCK;
        cl[W_LE] |= src[W_LE] & ~LOW24;
        cl[W_LEN] |= src[W_LEN] & ~LOW24;
        cl[W_A] = src[W_A];
        cl[W_B] = src[W_B];
        if (src[W_LINK] & F_BLOCK) {
            uint32_t o;
            if ((err = rosa__sam_block_dup(r, src[W_A], &o))) return err;
            r->st[id + W_A] = o;
        }
    } else {
        /* a prefix state: its spine edge (present: q is not the newest state) and any others */
        cl[W_LE] |= src[W_LE] & ~LOW24;
        cl[W_A] = rosa__spine_next(q, src[W_LINK]);
        if (src[W_LINK] & F_X) {
            uint8_t sym[256];
            uint32_t tgt[256];
            unsigned n = rosa__sam_block_list(r->pool, rosa__xblock(r, q), sym, tgt);
            for (unsigned e = 0; e < n; e++)
                if ((err = rosa__add_edge(r, id, sym[e], tgt[e], 1))) return err;
        }
    }
    *out = id;
    return 0;
}

/* The rest of a last_end walk: v is a cell state or the root (flagged like a cell state, to
 * stop the plain loop), and the plain run run .. (run_len states, last_end n) lies below v. */
static NOINLINE int rosa__paint_cells(rosa__route *r, uint32_t v, uint32_t run, uint32_t run_len,
                                      uint32_t n) {
    int err;
    for (;;) {
        uint32_t *st = r->st, w0;
        if (v == 0) { /* the root: a long run becomes a cell */
            if (run_len < r->cell_min) return 0;
            uint32_t h;
            if ((err = rosa__cell_new(r, n, run, 0, &h))) return err;
            rosa__cell_set(r, run, 0, h);
            return 0;
        }
        uint32_t h = st[v + W_LE] & LOW24, exit = r->cells[3 * h + 2];
        int joined = 1;
        if (r->cells[3 * h + 1] == v) { /* entered at the bottom: all of it is on the chain */
            rosa__log_cells(r, 3 * h);
            r->cells[3 * h] = n;
        } else {
            if ((err = rosa__cell_split(r, h, v, n))) return err;
            st = r->st;
            joined = (st[v] & F_CELL) != 0; /* else the upper side became plain (value n) */
        }
        if (joined) {
            if (run_len) { /* the run joins the cell, whose bottom v now is */
                rosa__cell_set(r, run, v, h);
                rosa__log_cells(r, 3 * h + 1);
                r->cells[3 * h + 1] = run;
            }
            run = exit;
            run_len = 0;
        }
        /* (if not joined, the run goes on through the states that just became plain) */
        for (v = exit; !((w0 = st[v]) & F_CELL); v = w0 & ID_MASK) {
            rosa__log_st(r, v + W_LE);
            st[v + W_LE] = (st[v + W_LE] & ~LOW24) | n;
            run_len++;
        }
    }
}

/* last_end = n on the suffix chain of the new state cur (see "last_end cells" in
 * rosa_sam.h).  The root's last_end is never read (it is no transition target): the walk
 * stops below it.  A run of plain states ending right below a cell's bottom joins that cell
 * (which has value n by then); a long run ending at the root becomes a cell of its own.  So a
 * chain tends to become a few cells, and the next walk over it costs a few steps. */
/* In three parts, so that several routes can interleave their walks (rosa__routes_run):
 * start, steps over plain states (each returns 0 once at a cell state or the root), finish. */
typedef struct {
    uint32_t v, run, run_len; /* the walk is at v; the plain run so far starts at run */
    uint32_t pend;            /* undo log: an old last_end not yet logged (its pair), or NONE */
} rosa__walk;

static inline void rosa__paint_start(rosa__route *r, uint32_t cur, uint32_t n, rosa__walk *w) {
    uint32_t *st = r->st, v = cur, u = st[cur] & ID_MASK;
    if (u != 0 && (st[u] & F_CELL) && r->cells[3 * (st[u + W_LE] & LOW24) + 1] == u) {
        /* cur's link is the bottom of a cell: cur becomes its bottom (the periodic case) */
        uint32_t h = st[u + W_LE] & LOW24;
        st[cur] |= F_CELL;
        st[cur + W_LE] = (st[cur + W_LE] & ~LOW24) | h;
        rosa__log_cells(r, 3 * h);
        rosa__log_cells(r, 3 * h + 1);
        r->cells[3 * h] = n;
        r->cells[3 * h + 1] = cur;
        v = r->cells[3 * h + 2];
    }
    w->v = w->run = v;
    w->run_len = 0;
    w->pend = NONE;
}

/* Undo log of a walk's plain states (see rosa_sam.h): the first state with its old value,
 * then the others' old values in pairs. */
static inline void rosa__log_paint(rosa__route *r, rosa__walk *w, uint32_t v, uint32_t old) {
    if (!w->run_len) {
        rosa__undo_push(r, ROSA__U_PAINT, v, old);
    } else if (w->pend == NONE) {
        w->pend = old;
    } else {
        rosa__undo_push64(r, (uint64_t)ROSA__U_PAINTV << 60 | 1ull << 56 | (uint64_t)w->pend << 24 | old);
        w->pend = NONE;
    }
}

/* (logging: a constant where called, so that the walk of routes that keep no undo log has no
 * test for it per state) */
static ALWAYS_INLINE int rosa__paint_step(rosa__route *r, rosa__walk *w, uint32_t n, int logging) {
    uint32_t *st = r->st, v = w->v, w0 = st[v];
    if (w0 & F_CELL) return 0; /* plain states only (the root is flagged: it stops here) */
    if (logging && r->u_st) rosa__log_paint(r, w, v, st[v + W_LE] & LOW24);
    st[v + W_LE] = (st[v + W_LE] & ~LOW24) | n;
    w->v = w0 & ID_MASK;
    w->run_len++;
    return 1;
}

static inline int rosa__paint_finish(rosa__route *r, const rosa__walk *w, uint32_t n) {
    if (w->pend != NONE) /* (only when logging) the last old value, alone */
        rosa__undo_push64(r, (uint64_t)ROSA__U_PAINTV << 60 | (uint64_t)w->pend << 24);
    if (w->v == 0 && w->run_len < r->cell_min) return 0;
    return rosa__paint_cells(r, w->v, w->run, w->run_len, n);
}

static inline int rosa__paint(rosa__route *r, uint32_t cur, uint32_t n) {
    rosa__walk w;
    rosa__paint_start(r, cur, n, &w);
    if (r->u_st)
        while (rosa__paint_step(r, &w, n, 1)) {
        }
    else
        while (rosa__paint_step(r, &w, n, 0)) {
        }
    return rosa__paint_finish(r, &w, n);
}

/* Append run symbol c as run n (the newest prefix state L = P_n): the standard online
 * construction, then last_end = n along the suffix chain of the new state.  The spec's walk
 * stops at the first state that already has n; none has (clones copy an older value), so the
 * walk always runs up to the root.  In three parts, so that several routes can interleave
 * their cache misses (rosa__routes_run): begin (new state, edges to it up the suffix chain of
 * L, up to the first state p with an edge to q on c; q's record is prefetched), end (the link
 * of the new state, cloning q if needed; the paint walk's second state is prefetched) and the
 * last_end walk (rosa__paint). */
typedef struct {
    uint32_t cur, p, q; /* the new state; p and its transition q on c (p == NONE: none) */
} rosa__ext;

static inline int rosa__extend_start(rosa__route *r, unsigned c, uint32_t n, rosa__ext *x) {
    int err;
    if (UNLIKELY(r->nst + PW + CW > r->capst)) { /* room for the new state and a clone */
        if ((err = rosa__sam_grow(r, (void **)&r->st, &r->capst, (uint64_t)r->nst + PW + CW,
                                  sizeof(uint32_t), 32)))
            return err;
    }
    if (UNLIKELY(!((n + 1) & ((1u << SAMPLE_LOG) - 1)))) {
        uint32_t k = (n + 1) >> SAMPLE_LOG;
        if ((err = rosa__sam_grow(r, (void **)&r->psample, &r->capsample, (uint64_t)k + 1,
                                  sizeof(uint32_t), 4)))
            return err;
        r->psample[k] = r->nst;
    }
    uint32_t *st = r->st, L = r->last, cur = r->nst;
    r->nst += PW;
    st[cur + W_LINK] = 0;
    st[cur + W_LE] = LOW24;
    /* the spine edge P_n -> P_n+1 (undo: the symbol byte was 0 before, nothing to log) */
    st[L + W_LE] = (st[L + W_LE] & LOW24) | c << 24;
    r->last = cur;
    x->cur = cur;
    x->p = st[L + W_LINK] & ID_MASK;
    x->q = NONE;
    if (x->p != NONE) PREFETCH(st + x->p); /* the walk's first state */
    return 0;
}

/* One state p of the walk up from link(L): its transition on c is q (done: returns 0, with
 * q's record prefetched), or it gets an edge to the new state and the walk goes on (1). */
static ALWAYS_INLINE int rosa__extend_step(rosa__route *r, unsigned c, rosa__ext *x, int *err,
                                           int logging) {
    uint32_t p = x->p, q;
    if (p == NONE) return 0;
    if ((q = rosa__trans(r, p, c)) != NONE) {
        PREFETCH(r->st + q);
        x->q = q;
        return 0;
    }
    if ((*err = rosa__add_edge(r, p, c, x->cur, logging))) return 0;
    x->p = r->st[p + W_LINK] & ID_MASK;
    return 1;
}

static inline int rosa__extend_begin(rosa__route *r, unsigned c, uint32_t n, rosa__ext *x) {
    int err = rosa__extend_start(r, c, n, x);
    if (r->u_st)
        while (!err && rosa__extend_step(r, c, x, &err, 1)) {
        }
    else
        while (!err && rosa__extend_step(r, c, x, &err, 0)) {
        }
    return err;
}

static inline int rosa__extend_end(rosa__route *r, unsigned c, const rosa__ext *x) {
    int err;
    uint32_t *st = r->st, cur = x->cur, p = x->p, q = x->q, link = 0;
    if (p != NONE) {
        uint32_t pw0 = st[p + W_LINK];
        /* the edge p -> q is solid (len p + 1 == len q) when it is p's spine, or when q is a
         * clone of length len p + 1; other edges into prefix states are never solid */
        if (!(pw0 & F_CLONE) && (st[p + W_LE] >> 24) == c) {
            link = q;
        } else {
            uint32_t plen = (pw0 & F_CLONE) ? st[p + W_LEN] & LOW24 : rosa__len(r, p);
            if ((st[q + W_LINK] & F_CLONE) && (st[q + W_LEN] & LOW24) == plen + 1) {
                link = q;
            } else {
                if ((err = rosa__clone(r, q, plen + 1, &link))) return err;
                st[cur + W_LINK] |= F_CF; /* the clone sits between cur and the next prefix */
                for (;;) { /* redirect p and its suffixes from q to the clone */
                    uint32_t *tw = rosa__edge_word(r, p, c);
                    if (!tw || *tw != q) break;
                    if (r->u_st) rosa__log_word(r, tw);
                    *tw = link;
                    p = st[p + W_LINK] & ID_MASK;
                    if (p == NONE) break;
                }
                rosa__log_st(r, q + W_LINK);
                st[q + W_LINK] = (st[q + W_LINK] & ~ID_MASK) | link;
            }
        }
    }
    st[cur + W_LINK] |= link;
    uint32_t lw0 = st[link + W_LINK];
    /* the next extension starts with a lookup on link(cur): fetch its edge block meanwhile;
     * the last_end walk goes on to link(link) */
    if (lw0 & F_BLOCK) PREFETCH(r->pool + (st[link + W_A] & ROSA__OFF_MASK));
    if (link) PREFETCH(st + (lw0 & ID_MASK));
    return 0;
}

static int rosa__extend(rosa__route *r, unsigned c, uint32_t n) {
    rosa__ext x;
    int err;
    if ((err = rosa__extend_begin(r, c, n, &x)) || (err = rosa__extend_end(r, c, &x))) return err;
    return rosa__paint(r, x.cur, n);
}

/* ---------------------------------------------------------------- the per-step loop */

/* The output of a retrieval of run p. */
static inline void rosa__retrieve(const rosa__route *r, uint32_t p, int16_t *vout, int32_t *dest) {
    const uint8_t *run = r->runs + (size_t)p * ROSA__RUN_BYTES;
    uint32_t start;
    memcpy(&start, run, 4);
    *vout = run[4];
    if (dest) *dest = (int32_t)start;
}

static int rosa__fail(rosa__route *r, int err) {
    r->err = err;
    return err;
}

static int rosa__start(rosa__route *r) {
    int err;
    if ((err = rosa__sam_grow(r, (void **)&r->st, &r->capst, 32, sizeof(uint32_t), 32))) return err;
    if ((err = rosa__sam_grow(r, (void **)&r->psample, &r->capsample, 1, sizeof(uint32_t), 4)))
        return err;
    r->st[W_LINK] = NONE | F_CELL; /* the root P_0; F_CELL stops last_end walks there */
    r->st[W_LE] = LOW24;
    r->nst = PW;
    r->last = 0;
    r->psample[0] = 0;
    return 0;
}

/* Start run n = nruns at time t: its record (start time, value symbol v). */
static inline int rosa__new_run(rosa__route *r, int64_t t, unsigned k, unsigned v, uint32_t *out) {
    int err;
    uint32_t n = r->nruns;
    if (UNLIKELY(n >= ROSA__MAX_RUNS)) return ROSA_ERR_LIMIT;
    if (UNLIKELY(n >= r->capruns) &&
        (err = rosa__sam_grow(r, (void **)&r->runs, &r->capruns, (uint64_t)n + 1, ROSA__RUN_BYTES, 8)))
        return err;
    uint8_t *run = r->runs + (size_t)n * ROSA__RUN_BYTES;
    uint32_t start = (uint32_t)t;
    memcpy(run, &start, 4);
    run[4] = (uint8_t)v;
    if (UNLIKELY(k >> r->kd_log)) {
        rosa__log_scalar(r, ROSA__US_KD_LOG, r->kd_log);
        while (k >> r->kd_log) r->kd_log++;
    }
    *out = n;
    return 0;
}

/* The query walk: the state the cursor moves to on q (NONE: none).  Runs never repeat a
 * symbol, so every string of a non-root state ends with the symbol that led to it (the
 * cursor's is csym, 256 for the root), and none of them can be followed by that symbol again:
 * the walk would end at the root.  Repeated query symbols hit this. */
static inline uint32_t rosa__query(const rosa__route *r, uint32_t cursor, unsigned csym, unsigned q) {
    uint32_t s = q == csym ? 0 : cursor, ns;
    while ((ns = rosa__trans(r, s, q)) == NONE && s != 0) s = r->st[s + W_LINK] & ID_MASK;
    return ns;
}

/* The cursor moves to ns: the next query starts there, so fetch its edge block and its
 * link's record. */
static inline void rosa__prefetch_cursor(const rosa__route *r, uint32_t ns) {
    const uint32_t *nw = r->st + ns;
    if (nw[W_LINK] & F_BLOCK) PREFETCH(r->pool + (nw[W_A] & ROSA__OFF_MASK));
    PREFETCH(r->st + (nw[W_LINK] & ID_MASK));
}

int rosa__route_run(rosa__route *r, int T, const uint8_t *qs, const uint8_t *ks,
                    const uint8_t *vs, size_t stride, int16_t *vout, int32_t *dest) {
    int err;
    if (r->err) return r->err;
    if (T <= 0) return 0;
    if (r->t + T > MAX_TIME) return ROSA_ERR_LIMIT;
    if (!r->nst && (err = rosa__start(r))) return rosa__fail(r, err);
    uint32_t cursor = r->cursor;
    unsigned moved = r->moved, prev_k = r->prev_k, prev_q = r->prev_q;
    unsigned csym = cursor ? r->csym : 256; /* last symbol of the cursor's strings */
    int64_t t = r->t;
    /* A retrieval reads run p's record: an independent cache miss at the end of a step.  It
     * is prefetched, and the step's output is written after the next step's extension, so
     * that the miss overlaps with work (runs are never changed once written). */
    uint32_t pend_p = 0;
    size_t pend_at = SIZE_MAX;
    const int logging = r->horizon != 0;
    for (int i = 0; i < T; i++, t++) {
        size_t at = (size_t)i * stride;
        unsigned q = qs[at], k = ks[at];
        if (UNLIKELY(logging) &&
            (err = rosa__undo_step(r, cursor, moved, prev_k, prev_q, csym, k != prev_k || t == 0)))
            return rosa__fail(r, err);
        if (k != prev_k || t == 0) {
            uint32_t n;
            if ((err = rosa__new_run(r, t, k, vs[at], &n)) || (err = rosa__extend(r, k, n)))
                return rosa__fail(r, err);
            r->nruns = n + 1;
            prev_k = k;
        }
        if (pend_at != SIZE_MAX) rosa__retrieve(r, pend_p, vout + pend_at, dest ? dest + pend_at : NULL);
        if (q != prev_q || t == 0) {
            moved = 0;
            prev_q = q;
        }
        uint32_t ns = rosa__query(r, cursor, csym, q);
        pend_at = SIZE_MAX;
        if (ns != NONE) {
            uint32_t p = rosa__last_end(r, ns) + 1;
            if (p < r->nruns) { /* p <= E */
                PREFETCH(r->runs + (size_t)p * ROSA__RUN_BYTES);
                pend_p = p;
                pend_at = at;
            }
            if (!moved) {
                rosa__prefetch_cursor(r, ns);
                cursor = ns;
                csym = q;
                moved = 1;
            }
        }
        if (pend_at == SIZE_MAX) {
            vout[at] = -1;
            if (dest) dest[at] = -1;
        }
    }
    if (pend_at != SIZE_MAX) rosa__retrieve(r, pend_p, vout + pend_at, dest ? dest + pend_at : NULL);
    if (r->undo && r->undo->fail) return rosa__fail(r, r->undo->fail);
    r->cursor = cursor;
    r->moved = (uint8_t)moved;
    r->prev_k = (uint8_t)prev_k;
    r->prev_q = (uint8_t)prev_q;
    r->csym = (uint8_t)csym;
    r->t = t;
    return 0;
}

/* ---------------------------------------------------------------- several routes at once */

/* Routes advanced together by rosa__routes_run ("lanes").  A time step of a route is a chain
 * of dependent cache misses (the states up the suffix chains walked by the extension, the
 * last_end walk and the query, the record of the state reached, the run it retrieves).  When
 * the routes are large and many (the engine steps every route of every layer per token), each
 * is a DRAM miss.  So a step of all lanes is done in stages, each stage of every lane
 * prefetching what its next stage reads, and the three walks advance one state per lane in
 * turn: the misses of different routes overlap (numbers in docs/PERFORMANCE.md). */
#define LANES ROSA__ROUTE_GROUP

typedef struct {
    rosa__route *r;
    rosa__ext x;
    rosa__walk w;
    uint32_t cursor, n, s, ns, pend; /* s, ns: query walk; pend: run to retrieve, or NONE */
    unsigned moved, prev_k, prev_q, csym, q;
    int ext, live;
} rosa__lane;

static void rosa__lane_kill(rosa__lane *l, int err, int *first) {
    rosa__fail(l->r, err);
    l->live = 0;
    if (!*first) *first = err;
}

/* One round of the lanes' walks up from link(L) (the extension): a state of each lane in
 * act[0 .. na); returns how many walk on (kept in act[], in order). */
static ALWAYS_INLINE int rosa__ext_round(rosa__lane *L, int *act, int na, int *first, int logging) {
    int k = 0;
    for (int j = 0; j < na; j++) {
        rosa__lane *l = &L[act[j]];
        int err = 0;
        if (rosa__extend_step(l->r, l->prev_k, &l->x, &err, logging)) {
            if (l->x.p != NONE) PREFETCH(l->r->st + l->x.p);
            act[k++] = act[j];
        } else if (err) {
            rosa__lane_kill(l, err, first);
        }
    }
    return k;
}

/* One round of the lanes' last_end walks: a state of each lane in act[0 .. na); returns how
 * many lanes walk on (kept in act[], in order). */
static ALWAYS_INLINE int rosa__paint_round(rosa__lane *L, int *act, int na, int logging) {
    int k = 0;
    for (int j = 0; j < na; j++) {
        rosa__lane *l = &L[act[j]];
        if (rosa__paint_step(l->r, &l->w, l->n, logging)) {
            PREFETCH(l->r->st + l->w.v);
            act[k++] = act[j];
        }
    }
    return k;
}

static int rosa__lanes_run(rosa__route *const *routes, int m, int T, const uint8_t *qs,
                           const uint8_t *ks, const uint8_t *vs, size_t stride_t, size_t stride_r,
                           int16_t *vout, int32_t *dest) {
    rosa__lane L[LANES];
    int err, first = 0, any_log = 0;
    for (int i = 0; i < m; i++) {
        /* field by field: a compound literal would be built and copied whole (a memcpy per
         * lane, which in decode, one token per call, cost about a third of the step's
         * instructions); the other fields are set by the stages before they are read */
        rosa__route *r = routes[i];
        rosa__lane *l = &L[i];
        l->r = r;
        l->cursor = r->cursor;
        l->moved = r->moved;
        l->prev_k = r->prev_k;
        l->prev_q = r->prev_q;
        l->csym = r->cursor ? r->csym : 256;
        l->live = 1;
    }
    for (int t = 0; t < T && !first; t++) {
        size_t base = (size_t)t * stride_t;
        /* stage 0: what each lane reads first, fetched for all lanes before any is needed (in
         * decode every route is cold): the newest state (its spine symbol is written, its link
         * starts the extension), the cursor's record (the query), the next run record's slot */
        for (int i = 0; i < m; i++) {
            const rosa__route *r = L[i].r;
            PREFETCH_W(r->st + r->last);
            PREFETCH(r->st + L[i].cursor);
            if (r->runs) PREFETCH_W(r->runs + (size_t)r->nruns * ROSA__RUN_BYTES);
            if (r->undo && r->undo->cur) /* where the undo log writes next */
                PREFETCH_W(r->undo->cur + (r->undo->head & (ROSA__UNDO_CHUNK - 1)));
        }
        /* stage 1: the run record, and the extension up to the first state with an edge on k */
        int logging = 0; /* some route keeps an undo log */
        for (int i = 0; i < m; i++) {
            rosa__lane *l = &L[i];
            rosa__route *r = l->r;
            size_t at = base + (size_t)i * stride_r;
            unsigned k = ks[at];
            l->q = qs[at];
            l->ext = k != l->prev_k || r->t == 0;
            if (r->horizon) {
                logging = any_log = 1;
                if ((err = rosa__undo_step(r, l->cursor, l->moved, l->prev_k, l->prev_q, l->csym, l->ext))) {
                    rosa__lane_kill(l, err, &first);
                    continue;
                }
            }
            if (l->ext) {
                if ((err = rosa__new_run(r, r->t, k, vs[at], &l->n)) ||
                    (err = rosa__extend_start(r, k, l->n, &l->x))) {
                    rosa__lane_kill(l, err, &first);
                    continue;
                }
                l->prev_k = k;
            }
        }
        /* the walks up from link(L), one state of each route in turn.  Each walk below keeps
         * the lanes still walking in act[] (in lane order), so that a round costs nothing for
         * lanes that are done and has no branch on their state */
        int act[LANES], na = 0;
        for (int i = 0; i < m; i++)
            if (L[i].live && L[i].ext) act[na++] = i;
        if (logging)
            while (na) na = rosa__ext_round(L, act, na, &first, 1);
        else
            while (na) na = rosa__ext_round(L, act, na, &first, 0);
        /* stage 2: the new state's link (a clone of q if needed) */
        for (int i = 0; i < m; i++) {
            rosa__lane *l = &L[i];
            if (l->live && l->ext && (err = rosa__extend_end(l->r, l->prev_k, &l->x)))
                rosa__lane_kill(l, err, &first);
        }
        /* stage 3: the last_end walks, one state of each route in turn, prefetching the next */
        na = 0;
        for (int i = 0; i < m; i++) {
            rosa__lane *l = &L[i];
            if (l->live && l->ext) {
                rosa__paint_start(l->r, l->x.cur, l->n, &l->w);
                act[na++] = i;
            }
        }
        if (logging)
            while (na) na = rosa__paint_round(L, act, na, 1);
        else
            while (na) na = rosa__paint_round(L, act, na, 0);
        /* stage 4: the end of the last_end walks (cells); the query walks start */
        na = 0;
        for (int i = 0; i < m; i++) {
            rosa__lane *l = &L[i];
            rosa__route *r = l->r;
            if (!l->live) continue;
            if (l->ext) {
                if ((err = rosa__paint_finish(r, &l->w, l->n))) {
                    rosa__lane_kill(l, err, &first);
                    continue;
                }
                r->nruns = l->n + 1;
            }
            if (l->q != l->prev_q || r->t == 0) {
                l->moved = 0;
                l->prev_q = l->q;
            }
            l->s = l->q == l->csym ? 0 : l->cursor; /* see rosa__query */
            act[na++] = i;
        }
        /* the query walks, one state of each route in turn (as rosa__query) */
        while (na) {
            int k = 0;
            for (int j = 0; j < na; j++) {
                rosa__lane *l = &L[act[j]];
                const rosa__route *r = l->r;
                uint32_t ns = rosa__trans(r, l->s, l->q);
                if (ns == NONE && l->s != 0) {
                    l->s = r->st[l->s + W_LINK] & ID_MASK;
                    PREFETCH(r->st + l->s);
                    act[k++] = act[j];
                } else {
                    l->ns = ns;
                    l->s = NONE;
                    if (ns != NONE) PREFETCH(r->st + ns);
                }
            }
            na = k;
        }
        /* stage 5: last_end of the state reached, and the cursor move */
        for (int i = 0; i < m; i++) {
            rosa__lane *l = &L[i];
            rosa__route *r = l->r;
            if (!l->live) continue;
            l->pend = NONE;
            if (l->ns == NONE) continue;
            uint32_t p = rosa__last_end(r, l->ns) + 1;
            if (p < r->nruns) { /* p <= E */
                PREFETCH(r->runs + (size_t)p * ROSA__RUN_BYTES);
                l->pend = p;
            }
            if (!l->moved) {
                rosa__prefetch_cursor(r, l->ns);
                l->cursor = l->ns;
                l->csym = l->q;
                l->moved = 1;
            }
        }
        /* stage 6: the retrieved run */
        for (int i = 0; i < m; i++) {
            rosa__lane *l = &L[i];
            if (!l->live) continue;
            size_t at = base + (size_t)i * stride_r;
            if (l->pend != NONE) {
                rosa__retrieve(l->r, l->pend, vout + at, dest ? dest + at : NULL);
            } else {
                vout[at] = -1;
                if (dest) dest[at] = -1;
            }
            l->r->t++;
        }
    }
    for (int i = 0; i < m; i++) {
        rosa__lane *l = &L[i];
        if (!l->live) continue;
        if (any_log && l->r->undo && l->r->undo->fail) {
            rosa__lane_kill(l, l->r->undo->fail, &first);
            continue;
        }
        l->r->cursor = l->cursor;
        l->r->moved = (uint8_t)l->moved;
        l->r->prev_k = (uint8_t)l->prev_k;
        l->r->prev_q = (uint8_t)l->prev_q;
        l->r->csym = (uint8_t)l->csym;
    }
    return first;
}

int rosa__routes_run(rosa__route *const *routes, int n, int T, const uint8_t *qs,
                     const uint8_t *ks, const uint8_t *vs, size_t stride_t, size_t stride_r,
                     int16_t *vout, int32_t *dest) {
    int err;
    if (T <= 0) return 0;
    for (int i = 0; i < n; i++) {
        if (routes[i]->err) return routes[i]->err;
        if (routes[i]->t + T > MAX_TIME) return ROSA_ERR_LIMIT;
    }
    for (int i = 0; i < n; i++)
        if (!routes[i]->nst && (err = rosa__start(routes[i]))) return rosa__fail(routes[i], err);
    for (int b = 0; b < n; b += LANES) {
        size_t off = (size_t)b * stride_r;
        if ((err = rosa__lanes_run(routes + b, n - b < LANES ? n - b : LANES, T, qs + off, ks + off,
                                   vs + off, stride_t, stride_r, vout + off, dest ? dest + off : NULL)))
            return err;
    }
    return 0;
}
