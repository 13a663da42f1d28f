/* rosa_sam_check.c: rosa__route_check, the structural check of a route read from outside
 * (session files): after it passes, stepping the route cannot read or write out of bounds or
 * loop forever, whatever the file held.
 *
 * Why its own file: rosa_sam.c trusts its arrays (that is what makes it fast); this file states
 * and checks, in one linear pass per array, every invariant the step code relies on for memory
 * safety and termination (layout: rosa_sam.h; the step code: rosa_sam.c, rosa_sam_edges.c).
 *
 * Checked:
 * - the header (rosa__route_check_hdr) and that each array holds its used length; a route that
 *   has seen nothing (no states) has t 0, no root block and empty free lists;
 * - st parses in creation order into records that exactly fill nst: prefix records (2 words,
 *   no clone/block flag), each followed by one clone record (5 words, no spine/extra-edge flag)
 *   when it has the clone-follows flag; nruns + 1 prefix records, the newest at `last`, nclones
 *   clones; psample[k] is the id of P_{64k}; the root is a prefix record with no link, flagged
 *   like a cell state (that stops last_end walks) with cell field 0xFFFFFF;
 * - every state id (suffix links, edge targets, last, cursor, cell bottoms and exits, xmap keys)
 *   is the start of a record; edge targets are never the root; every non-root state has a link
 *   to a strictly shorter state (prefix P_i has length i; a clone's length is in 1..nruns), so
 *   every suffix chain ends at the root;
 * - spine symbols of P_0 .. P_{nruns-1} below 1 << kd_log and no two consecutive equal,
 *   prev_k the newest run's symbol; a clone's inline edges: the first present, the second
 *   absent or on another symbol, symbols below 1 << kd_log;
 * - edge blocks (clone blocks, the root's block, the xmap's blocks, the free lists) lie inside
 *   npool with a valid code and never overlap each other (each block belongs to one owner; the
 *   free lists are acyclic).  Sparse: 1 <= count <= capacity, distinct symbols below
 *   1 << kd_log, the unused slots repeating the first symbol (lookups read no count), targets
 *   valid.  Dense: width 1 .. kd_log, every entry absent or a valid target, count exact;
 * - xmap: each key a non-root prefix state with the extra-edge flag, no key twice, every key
 *   found by the probe sequence from its hash (no empty slot before it), nx the number of keys
 *   and the number of flagged prefix states (so the map always has an empty slot: probes end);
 *   the root's flag set exactly when rootx names a block;
 * - last_end: plain non-root states hold a run index < nruns; cells hold values < nruns; every
 *   flagged non-root state names a cell < ncells and lies on that cell's path: the walk up the
 *   links from the cell's bottom meets exactly its members, then its exit;
 * - runs: start times strictly increasing from 0, the last one < t.
 * Not checked (a forged but well-formed route gives wrong retrievals, not a crash): that the
 * automaton is the suffix automaton of the spine (edges, links and lengths being the right
 * ones), last_end values being the right runs, cell membership being the right one, the cursor
 * and csym, value symbols (any byte is a value symbol of some route width).
 *
 * Cost: linear in the arrays; memory: three bits per st word, one per pool word, and a rank
 * directory (one uint32 per 64 st words). */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa/rosa_sam.h"

/* flags and record words: see rosa_sam.c */
#define LOW24 0xFFFFFFu
#define F_CF (1u << 27)
#define F_X (1u << 28)
#define F_BLOCK (1u << 29)
#define F_CELL (1u << 30)
#define F_CLONE (1u << 31)
#define SAMPLE_LOG 6
enum { W_LINK = 0, W_LE = 1, W_LEN = 2, W_A = 3, W_B = 4, PW = 2, CW = 5 };

#define BAD ROSA_ERR_FORMAT

typedef struct {
    const rosa__route *r;
    uint64_t *start;  /* [nw] record starts */
    uint64_t *pfx;    /* [nw] prefix record starts */
    uint64_t *xseen;  /* [nw] prefix states met as xmap keys */
    uint64_t *used;   /* [npw] pool words owned by a block */
    uint32_t *rank;   /* [nw] prefix records before word i of pfx */
    uint32_t symlim;  /* 1 << kd_log */
} chk;

static inline int bit(const uint64_t *b, uint32_t i) { return (int)(b[i >> 6] >> (i & 63)) & 1; }
static inline void set(uint64_t *b, uint32_t i) { b[i >> 6] |= 1ull << (i & 63); }

/* A state id: the start of a record. */
static inline int is_state(const chk *c, uint32_t id) { return id < c->r->nst && bit(c->start, id); }

/* An edge target: a state other than the root. */
static inline int is_target(const chk *c, uint32_t id) { return id != 0 && is_state(c, id); }

/* Length of state s (a record start): its index for a prefix state, else the clone's field. */
static inline uint32_t state_len(const chk *c, uint32_t s) {
    uint64_t w = c->pfx[s >> 6];
    if (!(w >> (s & 63) & 1)) return c->r->st[s + W_LEN] & LOW24;
    return c->rank[s >> 6] + (uint32_t)__builtin_popcountll(w & ((1ull << (s & 63)) - 1));
}

static uint32_t code_words(unsigned code) {
    if (code >= ROSA__DENSE_CODE) return 1 + (1u << (code - ROSA__DENSE_CODE));
    return 1 + (1u << code) + (4u << code);
}

/* Words o .. o + n - 1 of the pool become owned; they must lie inside it and be free. */
static int claim(chk *c, uint32_t o, uint32_t n) {
    if ((uint64_t)o + n > c->r->npool) return BAD;
    for (uint32_t i = o, end = o + n; i < end;) { /* a 64-bit word of the bitmap at a time */
        uint32_t k = 64 - (i & 63);
        if (k > end - i) k = end - i;
        uint64_t m = (k == 64 ? ~0ull : (1ull << k) - 1) << (i & 63);
        if (c->used[i >> 6] & m) return BAD;
        c->used[i >> 6] |= m;
        i += k;
    }
    return 0;
}

/* An edge block in use, named by handle h. */
static int check_block(chk *c, uint32_t h) {
    const uint32_t *pool = c->r->pool;
    uint32_t o = h & ROSA__OFF_MASK;
    unsigned code = h >> ROSA__CODE_SHIFT;
    if (code >= ROSA__DENSE_CODE) {
        unsigned w = code - ROSA__DENSE_CODE;
        if (w < 1 || w > c->r->kd_log || claim(c, o, code_words(code))) return BAD;
        uint32_t n = 0;
        for (uint32_t i = 0; i < (1u << w); i++) {
            uint32_t t = pool[o + 1 + i];
            if (t == ROSA__NONE) continue;
            if (!is_target(c, t)) return BAD;
            n++;
        }
        return pool[o] == n ? 0 : BAD;
    }
    if (claim(c, o, code_words(code))) return BAD;
    uint32_t n = pool[o], cap = 4u << code;
    if (n < 1 || n > cap) return BAD;
    const uint8_t *sy = (const uint8_t *)(pool + o + 1);
    const uint32_t *tg = pool + o + 1 + (1u << code);
    uint64_t seen[4] = {0, 0, 0, 0};
    for (uint32_t i = 0; i < n; i++) {
        if (sy[i] >= c->symlim || (seen[sy[i] >> 6] >> (sy[i] & 63) & 1) || !is_target(c, tg[i]))
            return BAD;
        seen[sy[i] >> 6] |= 1ull << (sy[i] & 63);
    }
    for (uint32_t i = n; i < cap; i++) /* lookups stop at the first match: never here */
        if (sy[i] != sy[0]) return BAD;
    return 0;
}

/* ---------------------------------------------------------------- st: records and psample */

/* Parse st into records (prefix records, each followed by a clone record when flagged so);
 * mark starts and prefix starts.  Branch-free but for the psample test (every 64th): the
 * clone flag is random.  The clone records' own flags are checked by check_states. */
static int parse(chk *c) {
    const rosa__route *r = c->r;
    const uint32_t *st = r->st;
    uint64_t *start = c->start, *pfx = c->pfx; /* one spare word: j below may be nst */
    uint32_t nst = r->nst, i = 0, npfx = 0, nclones = 0, last = 0, bad = 0;
    while (nst - i >= PW) {
        uint32_t w0 = st[i], cf = (w0 >> 27) & 1, j = i + PW;
        bad |= w0 & (F_CLONE | F_BLOCK);
        if (!(npfx & ((1u << SAMPLE_LOG) - 1)) &&
            ((npfx >> SAMPLE_LOG) > (r->nruns >> SAMPLE_LOG) || r->psample[npfx >> SAMPLE_LOG] != i))
            return BAD;
        uint64_t bi = 1ull << (i & 63);
        start[i >> 6] |= bi;
        pfx[i >> 6] |= bi;
        bad |= cf & (nst - j < CW);
        start[j >> 6] |= (uint64_t)cf << (j & 63);
        last = i;
        npfx++;
        nclones += cf;
        i = j + CW * cf;
        if (bad) return BAD;
    }
    if (i != nst || npfx != r->nruns + 1 || nclones != r->nclones || last != r->last) return BAD;
    uint32_t nw = (r->nst + 63) >> 6, acc = 0;
    for (uint32_t k = 0; k < nw; k++) {
        c->rank[k] = acc;
        acc += (uint32_t)__builtin_popcountll(c->pfx[k]);
    }
    return 0;
}

/* Non-zero unless non-root state s (first word w0, length len) links to a shorter state and
 * its last_end field holds a run index (plain) or a cell id (flagged). */
static inline uint32_t bad_link_le(const chk *c, uint32_t s, uint32_t w0, uint32_t len, uint32_t *ncellst) {
    const rosa__route *r = c->r;
    uint32_t l = w0 & ROSA__NONE, le = r->st[s + W_LE] & LOW24, cell = (w0 >> 30) & 1;
    *ncellst += cell;
    if (le >= (cell ? r->ncells : r->nruns) || !is_state(c, l)) return 1;
    return state_len(c, l) >= len;
}

/* Every state: link, length, flags, last_end field, edges (blocks claimed).  Counts the
 * non-root cell members and flagged prefix states for the cell and xmap checks. */
static int check_states(chk *c, uint32_t *ncellst, uint32_t *nxp) {
    const rosa__route *r = c->r;
    const uint32_t *st = r->st;
    /* the root */
    if ((st[0] & ROSA__NONE) != ROSA__NONE || !(st[0] & F_CELL) || (st[W_LE] & LOW24) != LOW24)
        return BAD;
    if (!(st[0] & F_X) != (r->rootx == ROSA__NONE)) return BAD;
    if (r->rootx != ROSA__NONE && check_block(c, r->rootx)) return BAD;
    uint32_t pi = 0, prevsym = 256, nruns = r->nruns, bad = 0;
    for (uint32_t s = 0; s < r->nst; pi++) { /* a prefix record (parse) */
        uint32_t w0 = st[s];
        if (s) bad |= bad_link_le(c, s, w0, pi, ncellst);
        if (pi < nruns) { /* the spine symbol: run pi's (the newest state has none yet) */
            uint32_t sym = st[s + W_LE] >> 24;
            bad |= (sym >= c->symlim) | (sym == prevsym);
            if (pi + 1 == nruns) bad |= sym != r->prev_k;
            prevsym = sym;
        }
        *nxp += s && (w0 & F_X);
        s += PW;
        if (w0 & F_CF) { /* a clone record */
            uint32_t cw = st[s], len = st[s + W_LEN] & LOW24;
            bad |= !(cw & F_CLONE) | ((cw & (F_CF | F_X)) != 0) | (len < 1) | (len > nruns);
            bad |= bad_link_le(c, s, cw, len, ncellst);
            if (cw & F_BLOCK) {
                bad |= (uint32_t)check_block(c, st[s + W_A]);
            } else {
                uint32_t c0 = st[s + W_LE] >> 24, c1 = st[s + W_LEN] >> 24;
                bad |= (c0 >= c->symlim) | !is_target(c, st[s + W_A]);
                if (st[s + W_B] != ROSA__NONE)
                    bad |= (c1 >= c->symlim) | (c1 == c0) | !is_target(c, st[s + W_B]);
            }
            s += CW;
        }
        if (bad) return BAD;
    }
    return 0;
}

/* ---------------------------------------------------------------- xmap, free lists, cells, runs */

static int check_xmap(chk *c, uint32_t nxp) {
    const rosa__route *r = c->r;
    uint32_t capx = r->capx, mask = capx - 1, occ = 0, empty = 0;
    if (!capx) return r->nx || nxp ? BAD : 0;
    for (uint32_t s = 0; s < capx; s++) {
        if (r->xmap[2 * s]) occ++;
        else empty = s;
    }
    if (occ != r->nx || occ != nxp || occ >= capx) return BAD;
    /* from the slot after an empty one, so that runs of occupied slots do not wrap unseen */
    uint32_t run = 0;
    for (uint32_t k = 1; k <= capx; k++) {
        uint32_t s = (empty + k) & mask, key = r->xmap[2 * s];
        if (!key) {
            run = 0;
            continue;
        }
        run++;
        uint32_t id = key - 1;
        if (!id || !is_state(c, id) || !bit(c->pfx, id) || !(r->st[id] & F_X) || bit(c->xseen, id))
            return BAD;
        set(c->xseen, id);
        /* the probe from id's hash slot (as rosa__sam_xslot) must not meet an empty slot first */
        uint32_t home = (uint32_t)(((uint64_t)(id + 1) * 0x9E3779B97F4A7C15ull) >> 40) & mask;
        if (((s - home) & mask) >= run) return BAD;
        if (check_block(c, r->xmap[2 * s + 1])) return BAD;
    }
    return 0;
}

static int check_free(chk *c) {
    for (unsigned k = 0; k < ROSA__NCLASS; k++)
        for (uint32_t o = c->r->freel[k]; o != ROSA__NONE; o = c->r->pool[o + 1])
            if (o > ROSA__OFF_MASK || claim(c, o, code_words(k))) return BAD; /* claims end cycles */
    return 0;
}

static int check_cells(chk *c, uint32_t ncellst) {
    const rosa__route *r = c->r;
    const uint32_t *st = r->st;
    uint64_t members = 0;
    for (uint32_t h = 0; h < r->ncells; h++) {
        uint32_t value = r->cells[3 * h], bottom = r->cells[3 * h + 1], exit = r->cells[3 * h + 2];
        if (value >= r->nruns || !is_state(c, bottom) || !is_state(c, exit)) return BAD;
        if (!bottom || !(st[bottom] & F_CELL) || (st[bottom + W_LE] & LOW24) != h)
            continue; /* no member (a cell born empty at the root): never read */
        uint32_t v = bottom; /* the root is never a member (its field is 0xFFFFFF): walks end */
        while ((st[v] & F_CELL) && (st[v + W_LE] & LOW24) == h) {
            members++;
            v = st[v] & ROSA__NONE;
        }
        if (v != exit) return BAD;
    }
    return members == ncellst ? 0 : BAD;
}

static int check_runs(const rosa__route *r) {
    uint32_t prev = 0;
    for (uint32_t n = 0; n < r->nruns; n++) {
        uint32_t start;
        memcpy(&start, r->runs + (size_t)n * ROSA__RUN_BYTES, 4);
        if (n ? start <= prev : start != 0) return BAD;
        prev = start;
    }
    return r->nruns && (int64_t)prev >= r->t ? BAD : 0;
}

/* ---------------------------------------------------------------- the whole route */

int rosa__route_check(const rosa__route *r) {
    rosa__route_hdr h;
    if (r->err || rosa__route_get_hdr(r, &h) || rosa__route_check_hdr(&h)) return BAD;
    if (r->capst < r->nst || r->cappool < r->npool || r->capsample < h.nsample ||
        r->capcells < r->ncells || r->capruns < r->nruns || (r->capx && !r->xmap))
        return BAD;
    if (!r->nst) { /* a route that has seen nothing: no blocks either (its first step allocates) */
        for (int k = 0; k < ROSA__NCLASS; k++)
            if (r->freel[k] != ROSA__NONE) return BAD;
        return r->t || r->rootx != ROSA__NONE ? BAD : 0;
    }
    if (!r->nruns) return BAD; /* a started route has seen its first run */
    uint32_t nw = (r->nst + 64) >> 6, npw = (r->npool + 63) >> 6; /* (st: a spare word) */
    uint64_t *mem = calloc((size_t)3 * nw + npw + (nw + 1) / 2, sizeof(uint64_t));
    if (!mem) return ROSA_ERR_NOMEM;
    chk c = {r, mem, mem + nw, mem + 2 * (size_t)nw, mem + 3 * (size_t)nw,
             (uint32_t *)(mem + 3 * (size_t)nw + npw), 1u << r->kd_log};
    uint32_t ncellst = 0, nxp = 0;
    int err = parse(&c);
    if (!err && !is_state(&c, r->cursor)) err = BAD;
    if (!err) err = check_states(&c, &ncellst, &nxp);
    if (!err) err = check_xmap(&c, nxp);
    if (!err) err = check_free(&c);
    if (!err) err = check_cells(&c, ncellst);
    if (!err) err = check_runs(r);
    free(mem);
    return err;
}
