/* test_rosa_check.c: rosa__route_check (engine/rosa/rosa_sam_check.c), the structural check a
 * route read from a session file must pass before it is stepped.
 *
 * - Every route the engine builds passes, at many points of streams that make every structure
 *   (random and low-entropy keys, periodic keys -> last_end cells, many symbols -> sparse blocks
 *   that grow (free lists) and dense blocks, long repeats -> clones, the root's and prefix
 *   states' extra edges), with several cell_min, stepped alone and in groups (lanes).
 * - Targeted forgeries are each refused: an empty route naming blocks; links to themselves, to longer states, past the
 *   states, to the middle of a record, to NONE; edge targets likewise and to the root; block
 *   handles and counts; the extra-edge map; psample; cells; runs; free-list cycles; scalars.
 * - Thousands of random forgeries (one to a few words or bytes of any array or scalar replaced
 *   by random or boundary values, or a suffix-link cycle) either fail the check or, when they
 *   pass, take 200 more random steps (alone and in a group) with no ASan/UBSan report and no
 *   hang (each continuation runs under an alarm that fails the test with the forgery's name). */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rosa.h"
#include "rosa/rosa_sam.h"
#include "testutil.h"

/* record layout (rosa_sam.c) */
#define LOW24 0xFFFFFFu
#define F_CF (1u << 27)
#define F_X (1u << 28)
#define F_BLOCK (1u << 29)
#define F_CELL (1u << 30)
#define F_CLONE (1u << 31)
#define NONE ROSA__NONE

static uint64_t rng(uint64_t *g) {
    *g ^= *g << 13;
    *g ^= *g >> 7;
    *g ^= *g << 17;
    return *g;
}
static uint32_t below(uint64_t *g, uint32_t n) { return n ? (uint32_t)(rng(g) % n) : 0; }

enum { K_RANDOM, K_LOW, K_PERIODIC, K_WIDE, K_REPEAT, K_KINDS };

/* T key symbols of one kind; a: alphabet size (K_WIDE: 256). */
static void gen_keys(uint64_t *g, int kind, unsigned a, int T, uint8_t *k) {
    uint8_t pat[64];
    int P = 2 + (int)below(g, kind == K_REPEAT ? 60 : 7);
    for (int i = 0; i < P; i++) pat[i] = (uint8_t)below(g, a);
    uint8_t lo[3] = {(uint8_t)below(g, a), (uint8_t)below(g, a), (uint8_t)below(g, a)};
    for (int t = 0; t < T; t++) {
        switch (kind) {
        case K_LOW: {
            uint32_t x = below(g, 100);
            k[t] = lo[x < 70 ? 0 : x < 90 ? 1 : 2];
            break;
        }
        case K_PERIODIC:
            k[t] = below(g, 60) ? pat[t % P] : (uint8_t)below(g, a);
            break;
        case K_WIDE:
            k[t] = (uint8_t)below(g, 256);
            break;
        case K_REPEAT: /* a block repeated with mutations, sometimes a fresh block */
            if (!below(g, 2000)) for (int i = 0; i < P; i++) pat[i] = (uint8_t)below(g, a);
            k[t] = below(g, 25) ? pat[t % P] : (uint8_t)below(g, a);
            break;
        default:
            k[t] = (uint8_t)below(g, a);
        }
    }
}

static void gen_qv(uint64_t *g, unsigned a, int T, uint8_t *q, uint8_t *v, const uint8_t *k) {
    for (int t = 0; t < T; t++) {
        q[t] = below(g, 3) ? (uint8_t)below(g, a) : k[(t + 1) % T];
        v[t] = (uint8_t)below(g, 256);
    }
}

/* A route fed T steps of the given kind (alphabet a), checked every `every` steps. */
static void build(rosa__route *r, uint64_t *g, int kind, unsigned a, int T, int every, uint32_t cell_min) {
    uint8_t *q = malloc((size_t)T), *k = malloc((size_t)T), *v = malloc((size_t)T);
    int16_t *vo = malloc((size_t)T * 2);
    int32_t *de = malloc((size_t)T * 4);
    gen_keys(g, kind, a, T, k);
    gen_qv(g, a, T, q, v, k);
    rosa__route_init(r);
    r->cell_min = cell_min;
    ck_assert_int_eq(rosa__route_check(r), 0); /* the empty route */
    for (int t = 0; t < T;) {
        int n = every < T - t ? every : T - t;
        ck_assert_int_eq(rosa__route_run(r, n, q + t, k + t, v + t, 1, vo, de), 0);
        t += n;
        int rc = rosa__route_check(r);
        ck_assert_msg(rc == 0, "kind %d a %u cell_min %u: a genuine route refused after %d steps", kind, a,
                      cell_min, t);
    }
    free(q); free(k); free(v); free(vo); free(de);
}

/* ---------------------------------------------------------------- structure census */

typedef struct {
    uint32_t clones, inline_clones, block_clones, dense, sparse, xprefix, cellst, freeb, ncells;
    uint32_t first_inline, first_block, first_xprefix, first_cellst; /* ids (NONE: none) */
} census;

static void take_census(const rosa__route *r, census *c) {
    memset(c, 0, sizeof *c);
    c->first_inline = c->first_block = c->first_xprefix = c->first_cellst = NONE;
    c->ncells = r->ncells;
    for (uint32_t s = 0; s < r->nst;) {
        uint32_t w0 = r->st[s];
        if (s && (w0 & F_CELL)) {
            c->cellst++;
            if (c->first_cellst == NONE) c->first_cellst = s;
        }
        if (w0 & F_CLONE) {
            c->clones++;
            if (w0 & F_BLOCK) {
                c->block_clones++;
                if (r->st[s + 3] >> ROSA__CODE_SHIFT >= ROSA__DENSE_CODE) c->dense++;
                else c->sparse++;
                if (c->first_block == NONE) c->first_block = s;
            } else {
                c->inline_clones++;
                if (c->first_inline == NONE) c->first_inline = s;
            }
            s += 5;
        } else {
            if (s && (w0 & F_X)) {
                c->xprefix++;
                if (c->first_xprefix == NONE) c->first_xprefix = s;
            }
            s += 2;
        }
    }
    for (int k = 0; k < ROSA__NCLASS; k++)
        for (uint32_t o = r->freel[k]; o != NONE; o = r->pool[o + 1]) c->freeb++;
}

static const uint32_t CELL_MINS[] = {32, 1, 2, 3, 5, 8, 0};

START_TEST(genuine_routes_pass) {
    static const unsigned alph[] = {2, 3, 4, 16, 64, 256};
    uint64_t g = 1234567 + (uint64_t)_i * 77;
    census tot;
    memset(&tot, 0, sizeof tot);
    for (int trial = 0; trial < 30; trial++) {
        int kind = trial % K_KINDS;
        unsigned a = alph[below(&g, 6)];
        uint32_t cm = CELL_MINS[below(&g, 7)];
        int T = 500 + (int)below(&g, 5000);
        rosa__route r;
        build(&r, &g, kind, a, T, 1 + (int)below(&g, 700), cm);
        census c;
        take_census(&r, &c);
        tot.clones += c.clones;
        tot.dense += c.dense;
        tot.sparse += c.sparse;
        tot.xprefix += c.xprefix;
        tot.cellst += c.cellst;
        tot.freeb += c.freeb;
        tot.ncells += c.ncells;
        /* a copy (exact-size arrays, as restore makes) passes too */
        rosa__route cp;
        rosa__route_init(&cp);
        ck_assert_int_eq(rosa__route_copy(&cp, &r), 0);
        ck_assert_int_eq(rosa__route_check(&cp), 0);
        rosa__route_free(&cp);
        rosa__route_free(&r);
    }
    /* the streams made every structure the check looks at */
    ck_assert_uint_gt(tot.clones, 100);
    ck_assert_uint_gt(tot.dense, 0);
    ck_assert_uint_gt(tot.sparse, 0);
    ck_assert_uint_gt(tot.xprefix, 0);
    ck_assert_uint_gt(tot.cellst, 100);
    ck_assert_uint_gt(tot.freeb, 0);
    ck_assert_uint_gt(tot.ncells, 0);
}
END_TEST

/* Routes stepped in a group (rosa__routes_run, the lanes) pass as well. */
START_TEST(genuine_group_pass) {
    enum { N = 6, T = 3000 };
    uint64_t g = 4242;
    rosa__route rr[N], *rp[N];
    uint8_t *q = malloc((size_t)T * N), *k = malloc((size_t)T * N), *v = malloc((size_t)T * N);
    int16_t *vo = malloc((size_t)T * N * 2);
    uint8_t tmp[T], tq[T], tv[T];
    for (int i = 0; i < N; i++) {
        rosa__route_init(&rr[i]);
        rr[i].cell_min = CELL_MINS[i % 7];
        rp[i] = &rr[i];
        gen_keys(&g, i % K_KINDS, i % 2 ? 16 : 256, T, tmp);
        gen_qv(&g, 16, T, tq, tv, tmp);
        for (int t = 0; t < T; t++) {
            k[(size_t)t * N + i] = tmp[t];
            q[(size_t)t * N + i] = tq[t];
            v[(size_t)t * N + i] = tv[t];
        }
    }
    for (int t = 0; t < T; t += 97) {
        int n = T - t < 97 ? T - t : 97;
        size_t off = (size_t)t * N;
        ck_assert_int_eq(rosa__routes_run(rp, N, n, q + off, k + off, v + off, N, 1, vo + off, NULL), 0);
        for (int i = 0; i < N; i++) ck_assert_int_eq(rosa__route_check(&rr[i]), 0);
    }
    for (int i = 0; i < N; i++) rosa__route_free(&rr[i]);
    free(q); free(k); free(v); free(vo);
}
END_TEST

/* ---------------------------------------------------------------- forgeries */

/* A fresh exact-size copy of src (as a session file restores it). */
static void copy_of(rosa__route *dst, const rosa__route *src) {
    rosa__route_init(dst);
    ck_assert_int_eq(rosa__route_copy(dst, src), 0);
}

static char g_desc[256]; /* the forgery being checked or continued: named when the alarm fires */

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_rosa_check: the check or the steps after it hang: ";
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, g_desc, strlen(g_desc));
    (void)!write(2, "\n", 1);
    _exit(1);
}

/* The base routes of the forgeries: wide symbols (blocks that grew, free lists, the root's and
 * prefix states' extra edges, clones) and periodic keys (cells). */
static void bases(rosa__route *wide, rosa__route *per) {
    uint64_t g = 777;
    build(wide, &g, K_RANDOM, 64, 4000, 4000, 32);
    build(per, &g, K_PERIODIC, 8, 3000, 3000, 2);
    census c;
    take_census(wide, &c);
    ck_assert_uint_gt(c.inline_clones, 0);
    ck_assert_uint_gt(c.block_clones, 0);
    ck_assert_uint_gt(c.xprefix, 0);
    ck_assert_uint_gt(c.freeb, 0);
    ck_assert_uint_ne(wide->rootx, NONE);
    take_census(per, &c);
    ck_assert_uint_gt(c.cellst, 4);
    ck_assert_uint_gt(per->ncells, 0);
}

/* The id of the i-th prefix state. */
static uint32_t prefix_id(const rosa__route *r, uint32_t i) {
    uint32_t s = 0;
    while (i-- && s < r->nst) s += 2 + 5 * ((r->st[s] >> 27) & 1);
    return s < r->nst ? s : 0; /* (a forgery may have changed the flags) */
}

static void set_link(rosa__route *r, uint32_t s, uint32_t l) { r->st[s] = (r->st[s] & ~NONE) | (l & NONE); }

typedef void (*forge_fn)(rosa__route *r, const census *c);
typedef struct {
    const char *name;
    int periodic; /* on the periodic base, else the wide one */
    forge_fn f;
} forgery;

#define FORGE(nm) static void nm(rosa__route *r, const census *c)
#define UNUSED (void)c
FORGE(root_link_self) { UNUSED; set_link(r, 0, 0); }
FORGE(root_not_cell) { UNUSED; r->st[0] &= ~F_CELL; }
FORGE(root_cell_field) { UNUSED; r->st[1] &= ~LOW24; }
FORGE(link_self) { UNUSED; uint32_t s = prefix_id(r, 100); set_link(r, s, s); }
FORGE(link_longer) { UNUSED; set_link(r, prefix_id(r, 100), prefix_id(r, 101)); }
FORGE(link_cycle) { UNUSED; uint32_t a = prefix_id(r, 50), b = r->st[a] & NONE; set_link(r, b, a); }
FORGE(link_nst) { UNUSED; set_link(r, prefix_id(r, 7), r->nst); }
FORGE(link_nst1) { UNUSED; set_link(r, prefix_id(r, 7), r->nst - 1); }
FORGE(link_none) { UNUSED; set_link(r, prefix_id(r, 7), NONE); }
FORGE(link_mid) { UNUSED; set_link(r, prefix_id(r, 9), prefix_id(r, 3) + 1); }
FORGE(clone_link_self) { set_link(r, c->first_inline, c->first_inline); }
FORGE(clone_len_zero) { r->st[c->first_inline + 2] &= ~LOW24; }
FORGE(clone_len_huge) { r->st[c->first_inline + 2] |= LOW24; }
FORGE(target_nst) { r->st[c->first_inline + 3] = r->nst; }
FORGE(target_root) { r->st[c->first_inline + 3] = 0; }
FORGE(target_mid) { r->st[c->first_inline + 3] = prefix_id(r, 5) + 1; }
FORGE(target_all_ones) { r->st[c->first_inline + 3] = 0xFFFFFFFF; }
FORGE(target_none_first) { r->st[c->first_inline + 3] = NONE; }
FORGE(flag_clone_on_prefix) { UNUSED; r->st[prefix_id(r, 20)] |= F_CLONE; }
FORGE(flag_block_on_prefix) { UNUSED; r->st[prefix_id(r, 20)] |= F_BLOCK; }
FORGE(flag_cf_dropped) {
    UNUSED;
    for (uint32_t s = 0; s < r->nst; s += 2)
        if (r->st[s] & F_CF) {
            r->st[s] &= ~F_CF;
            return;
        }
}
FORGE(flag_x_no_map) {
    UNUSED;
    for (uint32_t i = 1;; i++) {
        uint32_t s = prefix_id(r, i);
        if (!(r->st[s] & F_X)) {
            r->st[s] |= F_X;
            return;
        }
    }
}
FORGE(flag_x_dropped) { r->st[c->first_xprefix] &= ~F_X; }
FORGE(handle_past_pool) { r->st[c->first_block + 3] = (r->st[c->first_block + 3] & ~ROSA__OFF_MASK) | r->npool; }
FORGE(handle_end_of_pool) { r->st[c->first_block + 3] = (r->st[c->first_block + 3] & ~ROSA__OFF_MASK) | (r->npool - 1); }
FORGE(handle_bad_code) { r->st[c->first_block + 3] |= 0xFu << ROSA__CODE_SHIFT; }
FORGE(handle_shared) { r->st[c->first_block + 3] = r->rootx; }
FORGE(block_count_zero) { r->pool[r->st[c->first_block + 3] & ROSA__OFF_MASK] = 0; }
FORGE(block_count_big) { r->pool[r->st[c->first_block + 3] & ROSA__OFF_MASK] = 1000; }
FORGE(block_target_nst) {
    uint32_t h = r->st[c->first_block + 3], o = h & ROSA__OFF_MASK, code = h >> ROSA__CODE_SHIFT;
    r->pool[o + 1 + (code >= ROSA__DENSE_CODE ? 0 : 1u << code)] = r->nst; /* dense: symbol 0 */
}
FORGE(sparse_unused_slot) { /* an unused slot of a sparse block names a symbol: its target is garbage */
    UNUSED;
    for (uint32_t s = 0; s < r->nst;) {
        uint32_t w0 = r->st[s], h = r->st[s + 3], code = h >> ROSA__CODE_SHIFT;
        if ((w0 & F_CLONE) && (w0 & F_BLOCK) && code < ROSA__DENSE_CODE) {
            uint32_t o = h & ROSA__OFF_MASK, n = r->pool[o];
            uint8_t *sy = (uint8_t *)(r->pool + o + 1);
            if (n < (4u << code)) {
                sy[n] = (uint8_t)(sy[0] ^ 1);
                return;
            }
        }
        s += (w0 & F_CLONE) ? 5 : 2;
    }
    ck_abort_msg("no sparse block with a free slot");
}
FORGE(sparse_dup_symbol) {
    UNUSED;
    for (uint32_t s = 0; s < r->nst;) {
        uint32_t w0 = r->st[s], h = r->st[s + 3], code = h >> ROSA__CODE_SHIFT;
        if ((w0 & F_CLONE) && (w0 & F_BLOCK) && code < ROSA__DENSE_CODE && r->pool[h & ROSA__OFF_MASK] >= 2) {
            uint8_t *sy = (uint8_t *)(r->pool + (h & ROSA__OFF_MASK) + 1);
            sy[1] = sy[0];
            return;
        }
        s += (w0 & F_CLONE) ? 5 : 2;
    }
    ck_abort_msg("no sparse block with two edges");
}
FORGE(sparse_symbol_wide) {
    UNUSED;
    for (uint32_t s = 0; s < r->nst;) {
        uint32_t w0 = r->st[s], h = r->st[s + 3], code = h >> ROSA__CODE_SHIFT;
        if ((w0 & F_CLONE) && (w0 & F_BLOCK) && code < ROSA__DENSE_CODE) {
            ((uint8_t *)(r->pool + (h & ROSA__OFF_MASK) + 1))[0] = 200; /* past 1 << kd_log (64) */
            return;
        }
        s += (w0 & F_CLONE) ? 5 : 2;
    }
    ck_abort_msg("no sparse block");
}
FORGE(rootx_none) { UNUSED; r->rootx = NONE; }
FORGE(rootx_past) { UNUSED; r->rootx = r->npool; }
FORGE(kd_log_small) { UNUSED; r->kd_log = 1; }
FORGE(free_cycle) {
    UNUSED;
    for (int k = 0; k < ROSA__NCLASS; k++)
        if (r->freel[k] != NONE) {
            r->pool[r->freel[k] + 1] = r->freel[k];
            return;
        }
}
FORGE(free_over_used) {
    for (int k = 0; k < ROSA__NCLASS; k++)
        if (r->freel[k] != NONE) {
            r->freel[k] = r->st[c->first_block + 3] & ROSA__OFF_MASK;
            return;
        }
}
FORGE(free_past) { UNUSED; r->freel[0] = r->npool - 2; }
FORGE(xmap_key_dropped) {
    UNUSED;
    for (uint32_t s = 0; s < r->capx; s++)
        if (r->xmap[2 * s]) {
            r->xmap[2 * s] = 0;
            return;
        }
}
FORGE(xmap_key_dup) {
    UNUSED;
    uint32_t a = 0;
    for (uint32_t s = 0; s < r->capx; s++)
        if (r->xmap[2 * s]) {
            if (a) {
                r->xmap[2 * s] = a;
                return;
            }
            a = r->xmap[2 * s];
        }
}
FORGE(xmap_key_moved) { /* the same key one empty slot further: probes stop before it */
    UNUSED;
    uint32_t m = r->capx - 1;
    for (uint32_t s = 0; s < r->capx; s++)
        if (r->xmap[2 * s] && !r->xmap[2 * ((s + 1) & m)] && !r->xmap[2 * ((s + 2) & m)]) {
            memcpy(r->xmap + 2 * ((s + 2) & m), r->xmap + 2 * s, 8);
            r->xmap[2 * s] = 0;
            return;
        }
}
FORGE(xmap_full) { UNUSED; r->nx = r->capx / 2; }
FORGE(xmap_block_past) {
    UNUSED;
    for (uint32_t s = 0; s < r->capx; s++)
        if (r->xmap[2 * s]) {
            r->xmap[2 * s + 1] = r->npool;
            return;
        }
}
FORGE(psample_off) { UNUSED; r->psample[1] += 2; }
FORGE(psample_mid) { UNUSED; r->psample[1] += 1; }
FORGE(last_wrong) { UNUSED; r->last = prefix_id(r, r->nruns - 1); }
FORGE(cursor_mid) { UNUSED; r->cursor = r->nst - 1; }
FORGE(nclones_off) { UNUSED; r->nclones++; }
FORGE(nruns_short) { UNUSED; r->nruns--; }
FORGE(prev_k_wrong) { UNUSED; r->prev_k ^= 1; }
FORGE(run_time_repeat) { UNUSED; memcpy(r->runs + 5 * 10, r->runs + 5 * 9, 4); }
FORGE(run_time_future) { UNUSED; uint32_t x = (uint32_t)r->t; memcpy(r->runs + 5 * (r->nruns - 1), &x, 4); }
FORGE(cell_id_past) { r->st[c->first_cellst + 1] |= LOW24; }
FORGE(cell_id_other) { r->st[c->first_cellst + 1] = (r->st[c->first_cellst + 1] & ~LOW24) | (r->ncells > 1 ? (r->st[c->first_cellst + 1] & LOW24) ^ 1 : 5); }
FORGE(cell_bottom_nst) { UNUSED; r->cells[1] = r->nst; }
FORGE(cell_exit_wrong) { UNUSED; r->cells[2] = r->cells[1]; }
FORGE(cell_exit_mid) { UNUSED; r->cells[2] += 1; }
FORGE(cell_member_dropped) { r->st[c->first_cellst] &= ~F_CELL; }
FORGE(cell_value_past) { UNUSED; r->cells[0] = r->nruns; }
FORGE(plain_le_past) { UNUSED; r->st[prefix_id(r, 3) + 1] |= LOW24; }

static const forgery FORGERIES[] = {
    {"root_link_self", 0, root_link_self}, {"root_not_cell", 0, root_not_cell},
    {"root_cell_field", 0, root_cell_field}, {"link_self", 0, link_self},
    {"link_longer", 0, link_longer}, {"link_cycle", 0, link_cycle}, {"link_nst", 0, link_nst},
    {"link_nst1", 0, link_nst1}, {"link_none", 0, link_none}, {"link_mid", 0, link_mid},
    {"clone_link_self", 0, clone_link_self}, {"clone_len_zero", 0, clone_len_zero},
    {"clone_len_huge", 0, clone_len_huge}, {"target_nst", 0, target_nst},
    {"target_root", 0, target_root}, {"target_mid", 0, target_mid},
    {"target_all_ones", 0, target_all_ones}, {"target_none_first", 0, target_none_first},
    {"flag_clone_on_prefix", 0, flag_clone_on_prefix}, {"flag_block_on_prefix", 0, flag_block_on_prefix},
    {"flag_cf_dropped", 0, flag_cf_dropped}, {"flag_x_no_map", 0, flag_x_no_map},
    {"flag_x_dropped", 0, flag_x_dropped}, {"handle_past_pool", 0, handle_past_pool},
    {"handle_end_of_pool", 0, handle_end_of_pool}, {"handle_bad_code", 0, handle_bad_code},
    {"handle_shared", 0, handle_shared}, {"block_count_zero", 0, block_count_zero},
    {"block_count_big", 0, block_count_big}, {"block_target_nst", 0, block_target_nst},
    {"sparse_unused_slot", 0, sparse_unused_slot}, {"sparse_dup_symbol", 0, sparse_dup_symbol},
    {"sparse_symbol_wide", 0, sparse_symbol_wide}, {"rootx_none", 0, rootx_none}, {"rootx_past", 0, rootx_past}, {"kd_log_small", 0, kd_log_small},
    {"free_cycle", 0, free_cycle}, {"free_over_used", 0, free_over_used}, {"free_past", 0, free_past},
    {"xmap_key_dropped", 0, xmap_key_dropped}, {"xmap_key_dup", 0, xmap_key_dup},
    {"xmap_key_moved", 0, xmap_key_moved}, {"xmap_full", 0, xmap_full},
    {"xmap_block_past", 0, xmap_block_past}, {"psample_off", 0, psample_off},
    {"psample_mid", 0, psample_mid}, {"last_wrong", 0, last_wrong}, {"cursor_mid", 0, cursor_mid},
    {"nclones_off", 0, nclones_off}, {"nruns_short", 0, nruns_short}, {"prev_k_wrong", 0, prev_k_wrong},
    {"run_time_repeat", 0, run_time_repeat}, {"run_time_future", 0, run_time_future},
    {"cell_id_past", 1, cell_id_past}, {"cell_id_other", 1, cell_id_other},
    {"cell_bottom_nst", 1, cell_bottom_nst}, {"cell_exit_wrong", 1, cell_exit_wrong},
    {"cell_exit_mid", 1, cell_exit_mid}, {"cell_member_dropped", 1, cell_member_dropped},
    {"cell_value_past", 1, cell_value_past}, {"plain_le_past", 1, plain_le_past},
};

/* A route that has seen nothing: its first step allocates from the free lists and the root's
 * block, so a header naming blocks in an empty pool is refused (found by fuzz_route_image). */
START_TEST(empty_route_forgeries_refused) {
    rosa__route r;
    rosa__route_init(&r);
    ck_assert_int_eq(rosa__route_check(&r), 0);
    for (int k = 0; k < ROSA__NCLASS; k++) {
        r.freel[k] = 0x1FFFF;
        ck_assert_int_eq(rosa__route_check(&r), ROSA_ERR_FORMAT);
        r.freel[k] = NONE;
    }
    r.rootx = 0x70000000;
    ck_assert_int_eq(rosa__route_check(&r), ROSA_ERR_FORMAT);
    r.rootx = NONE;
    r.t = 5;
    ck_assert_int_eq(rosa__route_check(&r), ROSA_ERR_FORMAT);
    r.t = 0;
    r.cursor = 2;
    ck_assert_int_eq(rosa__route_check(&r), ROSA_ERR_FORMAT);
    rosa__route_free(&r);
}
END_TEST

START_TEST(targeted_forgeries_refused) {
    rosa__route wide, per;
    bases(&wide, &per);
    census cw, cp;
    take_census(&wide, &cw);
    take_census(&per, &cp);
    signal(SIGALRM, on_alarm);
    for (size_t i = 0; i < sizeof FORGERIES / sizeof *FORGERIES; i++) {
        const forgery *f = &FORGERIES[i];
        rosa__route r;
        copy_of(&r, f->periodic ? &per : &wide);
        ck_assert_int_eq(rosa__route_check(&r), 0);
        f->f(&r, f->periodic ? &cp : &cw);
        snprintf(g_desc, sizeof g_desc, "targeted forgery %s", f->name);
        alarm(20);
        int rc = rosa__route_check(&r);
        alarm(0);
        ck_assert_msg(rc == ROSA_ERR_FORMAT, "forgery %s accepted", f->name);
        rosa__route_free(&r);
    }
    signal(SIGALRM, SIG_DFL);
    rosa__route_free(&wide);
    rosa__route_free(&per);
}
END_TEST

/* ---------------------------------------------------------------- random forgeries */

/* A value for a word: random, or a boundary an id, a handle or a count may take. */
static uint32_t forged_value(uint64_t *g, const rosa__route *r, uint32_t old) {
    switch (below(g, 12)) {
    case 0: return (uint32_t)rng(g);
    case 1: return old ^ (1u << below(g, 32));
    case 2: return (old & ~NONE) | r->nst;
    case 3: return (old & ~NONE) | (r->nst - 1);
    case 4: return 0xFFFFFFFF;
    case 5: return (old & ~NONE) | NONE;
    case 6: return (old & ~NONE) | below(g, r->nst); /* often mid-record */
    case 7: return (old & ~NONE) | prefix_id(r, below(g, r->nruns + 1));
    case 8: return old + 1;
    case 9: return old - 1;
    case 10: return (old & ~ROSA__OFF_MASK) | below(g, r->npool + 2);
    default: return below(g, 3);
    }
}

/* A state the next steps will visit: on the suffix chain of the newest state or the cursor. */
static uint32_t chain_state(uint64_t *g, const rosa__route *r) {
    uint32_t s = below(g, 2) ? r->last : r->cursor, up = below(g, 40);
    if (s >= r->nst || r->nst - s < 2) return 0; /* (a forgery may have moved them) */
    while (up-- && (r->st[s] & NONE) != 0 && (r->st[s] & NONE) + 2 <= r->nst) s = r->st[s] & NONE;
    return s;
}

/* The edge block of state s (NONE: none). */
static uint32_t block_of(const rosa__route *r, uint32_t s) {
    uint32_t w0 = r->st[s];
    if (w0 & F_CLONE) return (w0 & F_BLOCK) && s + 5 <= r->nst ? r->st[s + 3] : NONE;
    if (!(w0 & F_X)) return NONE;
    if (!s) return r->rootx;
    for (uint32_t k = 0; k < r->capx; k++)
        if (r->xmap[2 * k] == s + 1) return r->xmap[2 * k + 1];
    return NONE;
}

/* One random mutation of r; appends its name to g_desc. */
static void mutate(uint64_t *g, rosa__route *r) {
    char buf[96];
    uint32_t what = below(g, 19), i, old;
    uint8_t sym = (uint8_t)(below(g, 2) ? below(g, 1u << r->kd_log) : rng(g)); /* a symbol byte */
    switch (what) {
    case 0: case 1: case 2: case 3: /* st, the largest array */
        i = below(g, r->nst);
        old = r->st[i];
        r->st[i] = forged_value(g, r, old);
        snprintf(buf, sizeof buf, "st[%u]=%08x->%08x ", i, old, r->st[i]);
        break;
    case 4: case 5:
        if (!r->npool) {
            mutate(g, r);
            return;
        }
        i = below(g, r->npool);
        old = r->pool[i];
        r->pool[i] = below(g, 3) ? forged_value(g, r, old) : (old & ~0xFFu) | below(g, 256); /* a symbol byte */
        snprintf(buf, sizeof buf, "pool[%u]=%08x->%08x ", i, old, r->pool[i]);
        break;
    case 6:
        if (!r->capx) {
            mutate(g, r);
            return;
        }
        i = below(g, 2 * r->capx);
        old = r->xmap[i];
        r->xmap[i] = i % 2 ? forged_value(g, r, old) : below(g, 2) ? 0 : 1 + prefix_id(r, below(g, r->nruns + 1));
        snprintf(buf, sizeof buf, "xmap[%u]=%08x->%08x ", i, old, r->xmap[i]);
        break;
    case 7:
        i = below(g, (r->nruns >> 6) + 1);
        old = r->psample[i];
        r->psample[i] = forged_value(g, r, old);
        snprintf(buf, sizeof buf, "psample[%u]=%08x->%08x ", i, old, r->psample[i]);
        break;
    case 8:
        if (!r->ncells) {
            mutate(g, r);
            return;
        }
        i = below(g, 3 * r->ncells);
        old = r->cells[i];
        r->cells[i] = forged_value(g, r, old);
        snprintf(buf, sizeof buf, "cells[%u]=%08x->%08x ", i, old, r->cells[i]);
        break;
    case 9:
        i = below(g, 5 * r->nruns);
        old = r->runs[i];
        r->runs[i] = (uint8_t)rng(g);
        snprintf(buf, sizeof buf, "runs byte %u=%02x->%02x ", i, old, r->runs[i]);
        break;
    case 10: { /* a suffix-link cycle or a link to a longer state */
        uint32_t a = prefix_id(r, 1 + below(g, r->nruns)), b = prefix_id(r, below(g, r->nruns + 1));
        if (below(g, 2)) b = r->st[a] & NONE; /* a <-> link(a) */
        set_link(r, b, a);
        snprintf(buf, sizeof buf, "link(%u)=%u ", b, a);
        break;
    }
    case 11: /* a byte anywhere in st (symbols, flags) */
        i = below(g, r->nst * 4);
        ((uint8_t *)r->st)[i] = sym;
        snprintf(buf, sizeof buf, "st byte %u=%02x ", i, sym);
        break;
    case 12: /* a byte anywhere in pool (block symbols, unused slots, counts) */
        if (!r->npool) {
            mutate(g, r);
            return;
        }
        i = below(g, r->npool * 4);
        ((uint8_t *)r->pool)[i] = sym;
        snprintf(buf, sizeof buf, "pool byte %u=%02x ", i, sym);
        break;
    case 13: { /* a state joins a cell, or a member leaves its cell */
        if (!r->ncells) {
            mutate(g, r);
            return;
        }
        i = below(g, 2) ? chain_state(g, r) : 0;
        if (!i) i = prefix_id(r, 1 + below(g, r->nruns));
        if (below(g, 2)) {
            r->st[i] |= F_CELL;
            r->st[i + 1] = (r->st[i + 1] & ~LOW24) | below(g, r->ncells);
        } else {
            r->st[i] &= ~F_CELL;
        }
        snprintf(buf, sizeof buf, "cell membership of %u ", i);
        break;
    }
    case 14: case 15: { /* a byte of the edge block of a state the next steps visit */
        uint32_t st = chain_state(g, r), h = block_of(r, st);
        if (h == NONE || (h & ROSA__OFF_MASK) >= r->npool) {
            mutate(g, r);
            return;
        }
        uint32_t o = h & ROSA__OFF_MASK, code = h >> ROSA__CODE_SHIFT;
        uint32_t words = code >= ROSA__DENSE_CODE ? 1 + (1u << (code - ROSA__DENSE_CODE)) : 1 + (1u << code) + (4u << code);
        if (o + words > r->npool) words = r->npool - o;
        i = 4 * o + below(g, 4 * words);
        ((uint8_t *)r->pool)[i] = below(g, 2) ? sym : (uint8_t)(i % 4 ? 0 : below(g, 3));
        snprintf(buf, sizeof buf, "block %08x of %u byte %u=%02x ", h, st, i, ((uint8_t *)r->pool)[i]);
        break;
    }
    default: { /* a scalar (counts only downwards: the arrays keep their sizes) */
        uint32_t *sc[] = {&r->last, &r->cursor, &r->rootx, &r->freel[0], &r->freel[1], &r->freel[2],
                          &r->kd_log, &r->nclones, &r->nx, &r->cell_min, &r->nst, &r->npool, &r->ncells,
                          &r->nruns};
        i = below(g, 18);
        if (i < 14) {
            old = *sc[i];
            uint32_t nv = i >= 10 ? (old ? old - 1 - below(g, old) % 3 : 0) : forged_value(g, r, old);
            if (i >= 10 && nv > old) nv = 0;
            if (i == 6) nv = below(g, 10);
            *sc[i] = nv;
            snprintf(buf, sizeof buf, "scalar %u=%u->%u ", i, old, nv);
        } else if (i == 14) {
            r->prev_k = (uint8_t)rng(g);
            snprintf(buf, sizeof buf, "prev_k ");
        } else if (i == 15) {
            r->csym = (uint8_t)rng(g);
            r->moved = (uint8_t)below(g, 2);
            snprintf(buf, sizeof buf, "csym/moved ");
        } else if (i == 16) {
            r->t = below(g, 2) ? r->t + 1 + below(g, 1000) : 0x7FFFFFFF - below(g, 150);
            snprintf(buf, sizeof buf, "t=%lld ", (long long)r->t);
        } else {
            r->prev_q = (uint8_t)rng(g);
            snprintf(buf, sizeof buf, "prev_q ");
        }
    }
    }
    strncat(g_desc, buf, sizeof g_desc - strlen(g_desc) - 1);
}

/* 200 random steps of a route that passed the check, alone or in a group with a genuine one. */
static void continue_forged(uint64_t *g, rosa__route *r, const rosa__route *mate) {
    enum { T = 200 };
    uint8_t q[2 * T], k[2 * T], v[2 * T];
    int16_t vo[2 * T];
    int32_t de[2 * T];
    unsigned a = below(g, 2) ? 256 : 2 + below(g, 14);
    for (int t = 0; t < 2 * T; t++) {
        k[t] = (uint8_t)below(g, a);
        q[t] = (uint8_t)below(g, a);
        v[t] = (uint8_t)below(g, a);
    }
    if (below(g, 2)) {
        for (int t = 0; t < T; t += 50)
            if (rosa__route_run(r, 50, q + t, k + t, v + t, 1, vo + t, de + t)) break;
    } else {
        rosa__route m;
        copy_of(&m, mate);
        rosa__route *rp[2] = {&m, r};
        for (int t = 0; t < T; t += 40)
            if (rosa__routes_run(rp, 2, 40, q + 2 * t, k + 2 * t, v + 2 * t, 2, 1, vo + 2 * t, de + 2 * t)) break;
        rosa__route_free(&m);
    }
}

START_TEST(random_forgeries_safe) {
    rosa__route base[4];
    uint64_t g = 99991 + (uint64_t)_i * 1000003;
    build(&base[0], &g, K_RANDOM, 64, 1500, 1500, 32);
    build(&base[1], &g, K_PERIODIC, 6, 1500, 1500, 2);
    build(&base[2], &g, K_WIDE, 256, 1200, 1200, 32);
    build(&base[3], &g, K_REPEAT, 4, 1500, 1500, 4);
    signal(SIGALRM, on_alarm);
    int refused = 0, passed = 0;
    for (int n = 0; n < 1500; n++) {
        const rosa__route *b = &base[below(&g, 4)];
        rosa__route r;
        copy_of(&r, b);
        snprintf(g_desc, sizeof g_desc, "run %d forgery %d: ", _i, n);
        int nm = below(&g, 3) ? 1 : 2 + (int)below(&g, 3);
        for (int m = 0; m < nm; m++) mutate(&g, &r);
        alarm(20); /* the check and the steps after it must end */
        if (rosa__route_check(&r)) {
            refused++;
        } else {
            passed++;
            continue_forged(&g, &r, &base[below(&g, 4)]);
        }
        alarm(0);
        rosa__route_free(&r);
    }
    signal(SIGALRM, SIG_DFL);
    fprintf(stderr, "test_rosa_check: random forgeries (run %d): %d refused, %d passed and were stepped safely\n",
            _i, refused, passed);
    ck_assert_int_gt(refused, 500); /* most single-word forgeries break an invariant */
    ck_assert_int_gt(passed, 20);   /* and some are well-formed: they were stepped */
    for (int i = 0; i < 4; i++) rosa__route_free(&base[i]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rosa_check");
    TCase *tc = tcase_create("check");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, genuine_routes_pass, 0, 3);
    tcase_add_test(tc, genuine_group_pass);
    tcase_add_test(tc, empty_route_forgeries_refused);
    tcase_add_test(tc, targeted_forgeries_refused);
    tcase_add_loop_test(tc, random_forgeries_safe, 0, 3);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
