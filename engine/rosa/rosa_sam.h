/* rosa_sam.h: the ROSA state of one (layer, route): k-runs and an online suffix automaton.
 *
 * Implements ROSA-SPEC section 3 exactly, one time step at a time.  One route is touched by one
 * thread at a time; routes are independent, so a layer runs its routes in parallel.
 *
 * Layout (why it is compact; measured numbers in docs/PERFORMANCE.md).  All states live in one
 * array of 32-bit words, `st`, in creation order; a state's id is the offset of its first word.
 * - A prefix state P_i (longest string = the first i run symbols; P_0 is the root, id 0) takes
 *   2 words: suffix link + flags, and last_end + the symbol of run i.  Its transition on run
 *   symbol i always goes to P_{i+1} (a solid edge is never redirected), so that "spine" edge is
 *   implicit: P_{i+1} is the next record, or the one after a clone made in the same step (a
 *   flag says which).  Other out-edges of a prefix state are rare; a flag sends the lookup to a
 *   small hash map.  Its length i is needed only when such an edge is followed; it is found
 *   from a sample of every 64th prefix state's id and a short walk along the spine.
 * - A clone takes 5 words: link + flags, last_end + symbol 0, length + symbol 1, and two inline
 *   edge targets, or (flag) the offset of an edge block in `pool`: sparse (symbols searched 8
 *   at a time, then targets) or dense (one target per symbol, for states with many edges).
 * Both kinds start with link and last_end, so suffix-chain walks need not tell them apart.
 * last_end cells: after adding run n, every state on the new state's suffix chain gets
 * last_end = n.  Periodic keys make that chain as long as the number of periods, so a long
 * stretch of it becomes a cell: its states hold the cell's id (and a flag) instead of a value,
 * and the cell holds the value, its bottom state and the state above its top (exit).  A new
 * state whose link is a cell's bottom joins the cell (one value update, then the walk goes on
 * from the exit); a walk entering a cell higher up turns the part above into plain states.
 * Periodic keys then cost O(1) per run instead of O(T).
 * Limits: ROSA__MAX_RUNS k-runs per route (16.7 M; ROSA_ERR_LIMIT beyond), times < 2^31. */
#ifndef ROSA_SAM_H
#define ROSA_SAM_H

#include <stddef.h>
#include <stdint.h>

#include "rosa/rosa_arena.h"

#define ROSA__ID_BITS 27
#define ROSA__NONE ((1u << ROSA__ID_BITS) - 1)
#define ROSA__MAX_RUNS ((1u << 24) - 2)
#define ROSA__ROUTE_GROUP 32 /* most routes the engine advances together (one task, one rosa__routes_run) */
#define ROSA__NCLASS 3 /* sparse edge-block classes: capacity 4 << class (4, 8, 16) */

typedef struct rosa__route {
    uint32_t *st;       /* [capst] state records (see above) */
    uint32_t *pool;     /* [cappool] edge blocks */
    uint32_t *xmap;     /* [2 * capx] prefix states with extra edges: id + 1 (0: empty), block */
    uint32_t *psample;  /* [capsample] id of P_{64k}: lengths of prefix states on demand */
    uint32_t *cells;    /* [3 * capcells] last_end cells: value, bottom state, exit state */
    uint8_t *runs;      /* [5 * capruns] run n at 5n: start time (uint32, native order), vsym */
    uint32_t nst, capst, npool, cappool, nx, capx, nruns, capruns, capsample, ncells, capcells;
    uint32_t cell_min;  /* plain runs this long on a last_end walk become cells (default 32;
                           a tuning knob that never changes results: tests vary it) */
    uint32_t last;      /* id of the newest prefix state */
    uint32_t nclones;   /* clone states */
    uint32_t rootx;     /* block handle of the root's extra edges (the root is not in xmap) */
    uint32_t freel[ROSA__NCLASS]; /* free sparse blocks per class, ROSA__NONE-terminated */
    uint32_t kd_log;    /* dense blocks cover symbols < 1 << kd_log (grows with symbols seen) */
    int64_t t;          /* time steps seen */
    size_t max_bytes;   /* 0: unlimited; else growing past this fails with ROSA_ERR_LIMIT */
    rosa__arena *arena; /* NULL, or where st, pool and runs go once ROSA__ARENA_MIN bytes or
                           more (huge pages; shared by the routes of a session) */
    uint32_t cursor;    /* query cursor s */
    int err;            /* sticky error: once a step failed the route refuses further input */
    uint8_t moved, prev_k, prev_q;
    uint8_t csym;       /* the symbol every string of the cursor state ends with */
    uint32_t horizon;   /* rollback horizon H in steps (0: no undo log; see "Rollback") */
    uint32_t u_st, u_pool, u_cells; /* logged writes: st, pool words and cells words below these
                                       (the used lengths when the current step began); 0 when
                                       nothing is logged, so the check is one compare */
    struct rosa__undo *undo; /* the undo log (rosa_sam_undo.c); NULL while empty */
} rosa__route;

void rosa__route_init(rosa__route *r);
/* Frees the route's memory; it can be used again as a fresh route (same arena, cap, cell_min). */
void rosa__route_free(rosa__route *r);
/* Take the large arrays of this (fresh) route from arena a (NULL: the C heap). */
void rosa__route_set_arena(rosa__route *r, rosa__arena *a);

/* Run T time steps.  Inputs at qs[t*stride], ks[t*stride], vs[t*stride]; outputs:
 * vout[t*stride] = retrieved value symbol or -1, dest[t*stride] = dest time or -1 (dest may be
 * NULL).  Returns 0, ROSA_ERR_NOMEM or ROSA_ERR_LIMIT; after an error the outputs of this call
 * are unspecified and the route keeps returning the error (it can be freed, not continued). */
int rosa__route_run(rosa__route *r, int T, const uint8_t *qs, const uint8_t *ks,
                    const uint8_t *vs, size_t stride, int16_t *vout, int32_t *dest);

/* Run T time steps of n routes together, token by token across the routes (the routes must be
 * distinct).  Route i's input of step t is at qs[t*stride_t + i*stride_r] (likewise ks, vs), its
 * outputs at vout[...] and dest[...] with the same offsets (dest may be NULL).  Same results
 * as rosa__route_run on each route; faster when routes are large, because the cache misses of
 * different routes overlap.  Returns 0 or the first error: then the outputs of this call are
 * unspecified, the failing route keeps returning its error, and the others are valid but may
 * have advanced by fewer than T steps (rosa__route_t says how many they have seen). */
int rosa__routes_run(rosa__route *const *routes, int n, int T, const uint8_t *qs,
                     const uint8_t *ks, const uint8_t *vs, size_t stride_t, size_t stride_r,
                     int16_t *vout, int32_t *dest);

/* Time steps this route has seen. */
int64_t rosa__route_t(const rosa__route *r);

/* Heap bytes allocated by this route (capacities, not sizes). */
size_t rosa__route_bytes(const rosa__route *r);

/* Number of k-runs so far (E + 1). */
int64_t rosa__route_nruns(const rosa__route *r);

/* Number of automaton states (root, one per k-run, clones): the minimal suffix automaton's. */
int64_t rosa__route_nstates(const rosa__route *r);

/* Rollback (rosa_sam_undo.c).  A route with a horizon of H steps logs what each step changes
 * so that its last H steps can be undone: rosa__route_truncate(r, t) restores exactly the state
 * it had after t steps (the same arrays a fresh route fed those t steps holds), for
 * r->t - H <= t <= r->t; ROSA_ERR_LIMIT beyond that, ROSA_ERR_INVALID for t > r->t or a failed
 * route.  rosa__route_can_truncate answers the same without changing anything.  Setting the
 * horizon drops any log kept so far (H is clamped to ROSA__MAX_HORIZON; 0: no log, no cost).
 * After truncating to t, older steps still in the log can be undone too.  undo_bytes: heap
 * bytes of the log (also counted by rosa__route_bytes and against max_bytes).  The log is
 * not part of a route's image: rosa__route_copy and a session file restore give a route with
 * the same horizon and an empty log (it covers the steps taken after the copy).  A failure
 * to grow the log fails the route like any other (ROSA_ERR_NOMEM / ROSA_ERR_LIMIT).
 *
 * The log (rosa__undo below): before a step writes a word that existed when the step began (an st
 * or pool word, a cells word, an xmap word, a rare scalar), the old value goes into a list of
 * 64-bit entries, code << 60 | index << 32 | old value (code: which array, or which scalar; st,
 * pool and cells writes below the used lengths at the step's start only, since records made in
 * the same step vanish when the lengths are restored).  Two kinds are compact: the last_end walk,
 * most of a step's writes, is its first state and old value, then the next states' old 24-bit
 * values two per entry (undo walks the same suffix links again); adding an edge to a block is one
 * entry, since what it overwrites is known (unused sparse slots hold the first symbol and target
 * 0, but in reused blocks, whose old target is logged too; dense slots ROSA__NONE).  Entries live
 * in 2 KiB chunks (a ring of chunk pointers, one spare chunk), so the log's memory follows what
 * the last H steps wrote.  Each step starts with a 12-byte mark: its first entry's position, the
 * query scalars (cursor, moved, prev_k, prev_q, csym) and two flags from which nst, last, nruns,
 * nclones and the spine symbol written before the step follow (whether the step starts a k-run;
 * whether the newest prefix state was then followed by a clone record); t is implied by the
 * mark's place.  Growing the xmap keeps the old map whole in the log (an entry plus a saved
 * pointer, freed when its step leaves the log): undoing it puts the old map back, amortised O(1).
 * New edge blocks are written in full, so a route's arrays equal a fresh route's byte for byte.
 * Truncating replays the entries backwards to the target step's mark.  Marks live in a ring of at
 * most H; when a step's mark is dropped (H newer steps), its entries go with it.  Cost (measured,
 * 4-bit keys): about 65 bytes a step in all, 130-140 KB a route at H = 2048 (a 0.6b session at
 * 32k tokens: +16% bytes), and about 25% more CPU time per step than at H = 0. */
#define ROSA__MAX_HORIZON (1u << 20) /* steps; a larger horizon is clamped to it */
void rosa__route_set_horizon(rosa__route *r, uint32_t steps);
int rosa__route_can_truncate(const rosa__route *r, int64_t t);
int rosa__route_truncate(rosa__route *r, int64_t t);
size_t rosa__route_undo_bytes(const rosa__route *r);

/* Cap the heap bytes of this route (0: no cap); growth beyond fails with ROSA_ERR_LIMIT. */
void rosa__route_set_max_bytes(rosa__route *r, size_t max_bytes);

/* ---- internal to rosa_sam*.c: storage helpers (rosa_sam_edges.c) ----
 * Edge blocks live in pool and are named by a handle: word offset | code << 28.  Code 0..2: a
 * sparse block of capacity 4 << code: [count][symbols, 1 byte each, unused slots repeat the
 * first symbol][targets].  Code 3 + w: a dense block: [count][1 << w targets indexed by symbol,
 * ROSA__NONE where absent]. */
#define ROSA__OFF_MASK 0x0FFFFFFFu
#define ROSA__CODE_SHIFT 28
#define ROSA__DENSE_CODE 3u
#define ROSA__RUN_BYTES 5 /* one k-run: start time and value symbol, read with one miss */

int rosa__sam_grow(rosa__route *r, void **p, uint32_t *cap, uint64_t need, size_t elem, uint32_t min);
/* Free an array made by rosa__sam_grow. */
void rosa__sam_release(rosa__route *r, void *p);
/* A new empty block able to hold `need` edges (handle in *h). */
int rosa__sam_block_new(rosa__route *r, unsigned need, uint32_t *h);
/* Add edge (c -> t) to block *h, which has none on c; the block may move (*h changes). */
int rosa__sam_block_add(rosa__route *r, uint32_t *h, unsigned c, uint32_t t);
/* A copy of block h. */
int rosa__sam_block_dup(rosa__route *r, uint32_t h, uint32_t *out);
/* The edges of block h into sym[] / tgt[] (room for 256); returns their number. */
unsigned rosa__sam_block_list(const uint32_t *pool, uint32_t h, uint8_t *sym, uint32_t *tgt);
/* Extra-edge map of prefix states (not the root): the slot of id (its block handle is
 * xmap[2*slot+1]), and insertion. */
uint32_t rosa__sam_xslot(const rosa__route *r, uint32_t id);
int rosa__sam_xput(rosa__route *r, uint32_t id, uint32_t block);

/* ---- internal: the undo log (rosa_sam_undo.c; format under "Rollback" above) ---- */
#define ROSA__PREFIX_WORDS 2 /* words of a prefix state's record (rosa_sam.c) */
#define ROSA__CLONE_WORDS 5  /* words of a clone's record */
enum { ROSA__U_ST, ROSA__U_POOL, ROSA__U_CELLS, ROSA__U_XMAP, ROSA__U_SCALAR, ROSA__U_XREHASH,
       ROSA__U_PAINT, ROSA__U_PAINTV, ROSA__U_SADD, ROSA__U_DADD };
enum { ROSA__US_NPOOL, ROSA__US_NCELLS, ROSA__US_NX, ROSA__US_ROOTX,
       ROSA__US_KD_LOG, ROSA__US_FREEL }; /* scalars logged when they change; FREEL + class */
#define ROSA__UNDO_CHUNK_LOG 8 /* entries are kept in chunks of 256 (2 KiB) */
#define ROSA__UNDO_CHUNK (1u << ROSA__UNDO_CHUNK_LOG)
#define ROSA__UNDO_DROP 32 /* steps dropped between updates of tail (each reads the oldest mark) */
#define ROSA__UM_MOVED 1u   /* mark flags (low byte of bytes) */
#define ROSA__UM_RUN 2u     /* the step starts a k-run (so nst, last and nruns change) */
#define ROSA__UM_FAR 4u     /* ... and its newest prefix state is followed by a clone record */
typedef struct rosa__undo_mark {
    uint32_t pos;    /* position of the step's first entry */
    uint32_t cursor; /* the query scalars when the step began */
    uint32_t bytes;  /* flags | prev_k << 8 | prev_q << 16 | csym << 24 */
} rosa__undo_mark;
typedef struct rosa__undo_map {
    uint32_t *map;                 /* an xmap replaced by a bigger one during a logged step */
    uint32_t capx, pos;            /* its capacity; position of its entry */
} rosa__undo_map;
typedef struct rosa__undo {
    uint64_t *cur;                 /* the chunk of position head (when head is inside one) */
    uint32_t head, tail;           /* positions (wrapping): head - tail entries are kept (tail
                                      follows the oldest mark in batches of ROSA__UNDO_DROP) */
    uint64_t **chunks;             /* [cmask + 1] ring of chunks by chunk number (pos >> LOG) */
    uint32_t cmask, nchunks;       /* nchunks: allocated (spare included) */
    uint64_t *spare;               /* a free chunk kept for the next one needed */
    rosa__undo_mark *m;            /* [mcap] marks, ring: m0 the oldest, nm live */
    uint32_t mcap, m0, nm;
    uint32_t ndrop;                /* marks dropped since tail was last moved up to the oldest */
    rosa__undo_map *maps;          /* [capmaps] saved xmaps, oldest first */
    uint32_t nmaps, capmaps;
    int fail;                      /* the log could not grow: the route fails at the step's end */
} rosa__undo;

/* Slow path of a push: a new chunk (on failure: fail is set and the entry is lost). */
int rosa__undo_grow(rosa__route *r);
static inline void rosa__undo_push64(rosa__route *r, uint64_t e) {
    rosa__undo *u = r->undo;
    uint32_t i = u->head & (ROSA__UNDO_CHUNK - 1);
    if (i == 0 && rosa__undo_grow(r)) return;
    u->cur[i] = e;
    u->head++;
}
static inline void rosa__undo_push(rosa__route *r, unsigned code, uint32_t idx, uint32_t old) {
    rosa__undo_push64(r, (uint64_t)code << 60 | (uint64_t)idx << 32 | old);
}
/* Log the old value of st[i] / pool[i] / cells[i] (a word index) before it is written. */
static inline void rosa__log_st(rosa__route *r, uint32_t i) {
    if (i < r->u_st) rosa__undo_push(r, ROSA__U_ST, i, r->st[i]);
}
static inline void rosa__log_pool(rosa__route *r, uint32_t i) {
    if (i < r->u_pool) rosa__undo_push(r, ROSA__U_POOL, i, r->pool[i]);
}
static inline void rosa__log_pool_range(rosa__route *r, uint32_t i, uint32_t n) {
    if (i < r->u_pool)
        for (uint32_t j = 0; j < n; j++) rosa__log_pool(r, i + j);
}
/* An edge is added to the sparse block at o (class code) holding n edges, or on symbol c to
 * the dense block at o: one entry, since what the add overwrites is known (an unused sparse
 * slot: the first symbol, and a target that is 0 unless the block is a reused one, when it is
 * logged too; a dense slot: ROSA__NONE). */
static inline void rosa__log_sadd(rosa__route *r, uint32_t o, unsigned code, uint32_t n) {
    if (o >= r->u_pool) return;
    if (n) {
        uint32_t ti = o + 1 + (1u << code) + n;
        if (r->pool[ti]) rosa__undo_push(r, ROSA__U_POOL, ti, r->pool[ti]);
        rosa__undo_push(r, ROSA__U_SADD, o, code);
    } else { /* the symbols are all set: log the words (rare: a reused block) */
        rosa__log_pool_range(r, o, 1 + (1u << code));
        rosa__log_pool(r, o + 1 + (1u << code));
    }
}
static inline void rosa__log_dadd(rosa__route *r, uint32_t o, unsigned c) {
    if (o < r->u_pool) rosa__undo_push(r, ROSA__U_DADD, o, c);
}
static inline void rosa__log_cells(rosa__route *r, uint32_t i) {
    if (i < r->u_cells) rosa__undo_push(r, ROSA__U_CELLS, i, r->cells[i]);
}
static inline void rosa__log_xmap(rosa__route *r, uint32_t i) {
    if (r->undo) rosa__undo_push(r, ROSA__U_XMAP, i, r->xmap[i]);
}
static inline void rosa__log_scalar(rosa__route *r, unsigned id, uint32_t old) {
    if (r->undo) rosa__undo_push(r, ROSA__U_SCALAR, id, old);
}
/* The general case of rosa__undo_step (first steps, growth, failures, moving tail). */
int rosa__undo_step_slow(rosa__route *r, uint32_t cursor, uint32_t bytes);
/* Start a logged step (r->horizon > 0): its mark, given the caller's copies of the query
 * scalars and whether the step starts a k-run.  0, or the error that fails the route.  Inline
 * for the usual case: the ring of marks is full (H steps), so the new mark takes the oldest
 * one's slot. */
static inline int rosa__undo_step(rosa__route *r, uint32_t cursor, unsigned moved, unsigned prev_k,
                                  unsigned prev_q, unsigned csym, int run) {
    rosa__undo *u = r->undo;
    uint32_t bytes = (moved & 1) | (run ? ROSA__UM_RUN : 0) |
                     (r->nst - r->last == ROSA__PREFIX_WORDS + ROSA__CLONE_WORDS ? ROSA__UM_FAR : 0) |
                     (prev_k & 255) << 8 | (prev_q & 255) << 16 | (csym & 255) << 24;
    if (!u || u->nm != r->horizon || u->fail || u->ndrop + 1 >= ROSA__UNDO_DROP)
        return rosa__undo_step_slow(r, cursor, bytes);
    rosa__undo_mark *m = &u->m[u->m0];
    u->m0 = u->m0 + 1 == u->mcap ? 0 : u->m0 + 1;
    u->ndrop++;
    m->pos = u->head;
    m->cursor = cursor;
    m->bytes = bytes;
    r->u_st = r->nst;
    r->u_pool = r->npool;
    r->u_cells = 3 * r->ncells;
    return 0;
}
/* xmap om (capacity oc) was replaced during a step: keep it for undo, or free it. */
void rosa__undo_xmap_replaced(rosa__route *r, uint32_t *om, uint32_t oc);
/* Free the log (the horizon stays). */
void rosa__undo_free(rosa__route *r);

/* ---- a route's state as data: fork and session files (rosa_sam_image.c) ----
 * Everything of a route but its arena, cap and trace: scalars and the used length of each
 * array.  A route is rebuilt from a header (arrays allocated to exactly those lengths, through
 * the route's arena) and then its arrays are filled: by memcpy (fork) or from a file. */
#define ROSA__ROUTE_NARRAYS 6 /* st, pool, xmap, psample, cells, runs */
typedef struct rosa__route_hdr {
    uint32_t nst, npool, capx, nx, nsample, ncells, nruns; /* used lengths (xmap: capx slots) */
    uint32_t last, nclones, rootx, freel[ROSA__NCLASS], kd_log, cell_min, cursor;
    uint32_t moved, prev_k, prev_q, csym;
    int64_t t;
} rosa__route_hdr;
#define ROSA__ROUTE_HDR_WORDS 22 /* uint32 words of a header on file (t as two words) */

/* The header of route r.  ROSA_ERR_INVALID when r failed (r->err): a broken route is not copied. */
int rosa__route_get_hdr(const rosa__route *r, rosa__route_hdr *h);
/* 0 if header h describes a route this build could have made (counts within the limits of
 * rosa_sam.h and consistent with each other); else ROSA_ERR_FORMAT. */
int rosa__route_check_hdr(const rosa__route_hdr *h);
/* Fresh route r (its arena set): take h's scalars and allocate its arrays to h's lengths
 * (contents undefined until filled).  h must pass rosa__route_check_hdr.  0 or ROSA_ERR_NOMEM. */
int rosa__route_from_hdr(rosa__route *r, const rosa__route_hdr *h);
/* The used part of each array of r, in the order of ROSA__ROUTE_NARRAYS: p[i] (NULL when empty)
 * and bytes[i]. */
void rosa__route_arrays(const rosa__route *r, void **p, size_t *bytes);
/* header <-> the 22 words stored in a session file */
void rosa__route_hdr_pack(const rosa__route_hdr *h, uint32_t *w);
void rosa__route_hdr_unpack(const uint32_t *w, rosa__route_hdr *h);
/* Deep copy of src into fresh route dst (dst keeps its arena): the same results from here on.
 * dst takes src's horizon with an empty undo log (the log is not part of the image). */
int rosa__route_copy(rosa__route *dst, const rosa__route *src);
/* 0 if every invariant the step code relies on for memory safety and termination holds in r
 * (ids, links, lengths, edge blocks, the extra-edge map, cells, free lists, runs, scalars: the
 * list is in rosa_sam_check.c), so that stepping r can neither leave its arrays nor loop;
 * ROSA_ERR_FORMAT if one fails, ROSA_ERR_NOMEM.  Linear time.  Not checked: that the automaton
 * is the right one (a forged but well-formed route retrieves wrong runs, nothing worse).  Used
 * on every route a session file restores. */
int rosa__route_check(const rosa__route *r);
#endif
