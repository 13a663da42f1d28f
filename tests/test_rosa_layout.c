/* test_rosa_layout.c: where the ROSA state lives and in which order it is advanced must never
 * change a result.  The session arena (engine/rosa/rosa_arena.c: blocks on huge pages) against
 * a model of its bookkeeping; routes whose arrays live in an arena against the same routes on
 * the C heap; the multi-route call (rosa__routes_run) under different interleavings (group
 * sizes, orders of the routes in a group, chunkings, one token per call) against one route at a
 * time; the engine's layer step (rosa__rosa_step, what every backend calls) on 1 and 3 threads
 * against per-route runs; the byte cap with an arena.  The per-route runs these compare with are
 * checked against the brute-force reading of the spec in test_rosa_sam.c. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "rosa.h"
#include "rosa/rosa_arena.h"
#include "rosa/rosa_routes.h"
#include "rosa/rosa_sam.h"
#include "testutil.h"

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static unsigned rng_below(uint64_t *s, unsigned n) { return (unsigned)(rng_next(s) % n); }

/* ---------------------------------------------------------------- the arena alone */

/* Random blocks (small, class-sized, large) taken and given back in random order: each keeps
 * its own bytes (no overlap), sizes are at least what was asked and at most a class step more
 * (or 64 KiB more for large ones), 64-byte aligned; the counters add up; an empty arena holds
 * nothing mapped; a pointer that is not an arena block is refused. */
START_TEST(arena_blocks) {
    enum { N = 200 };
    uint64_t g = 7;
    rosa__arena *a = rosa__arena_new();
    ck_assert_ptr_nonnull(a);
    unsigned char *p[N] = {0};
    size_t got[N] = {0}, want_used = 0, mapped, used;
    for (int round = 0; round < 2000; round++) {
        int i = (int)rng_below(&g, N);
        if (p[i]) {
            for (size_t j = 0; j < got[i]; j += 4093)
                ck_assert_msg(p[i][j] == (unsigned char)i, "block %d byte %zu overwritten", i, j);
            ck_assert_int_eq(p[i][got[i] - 1], (unsigned char)i);
            ck_assert_int_eq(rosa__arena_release(a, p[i]), 1);
            want_used -= got[i];
            p[i] = NULL;
            continue;
        }
        unsigned kind = rng_below(&g, 3);
        size_t bytes = kind == 0 ? 1 + rng_below(&g, 70000)
                     : kind == 1 ? ROSA__ARENA_MIN + rng_below(&g, (unsigned)ROSA__ARENA_SLAB_MAX)
                                 : ROSA__ARENA_SLAB_MAX + 1 + rng_below(&g, 3u << 20);
        p[i] = rosa__arena_alloc(a, bytes, &got[i]);
        ck_assert_ptr_nonnull(p[i]);
        ck_assert_uint_ge(got[i], bytes);
        size_t lim = bytes <= ROSA__ARENA_MIN ? ROSA__ARENA_MIN
                   : bytes <= ROSA__ARENA_SLAB_MAX ? bytes + bytes / 4 : bytes + (64u << 10);
        ck_assert_uint_le(got[i], lim);
        ck_assert_uint_eq((uintptr_t)p[i] % 64, 0);
        memset(p[i], i, got[i]);
        want_used += got[i];
        rosa__arena_stats(a, &mapped, &used);
        ck_assert_uint_eq(used, want_used);
        ck_assert_uint_ge(mapped, used);
    }
    int x;
    void *heap = malloc(100);
    ck_assert_int_eq(rosa__arena_release(a, &x), 0);
    ck_assert_int_eq(rosa__arena_release(a, heap), 0);
    free(heap);
    for (int i = 0; i < N; i++)
        if (p[i]) {
            ck_assert_int_eq(p[i][got[i] / 2], (unsigned char)i);
            ck_assert_int_eq(rosa__arena_release(a, p[i]), 1);
        }
    rosa__arena_stats(a, &mapped, &used);
    ck_assert_uint_eq(used, 0);
    ck_assert_uint_eq(mapped, 0); /* emptied slabs are unmapped */
    rosa__arena_free(a);
}
END_TEST

/* ---------------------------------------------------------------- routes in any layout */

typedef struct {
    int T;
    uint8_t *q, *k, *v;
} stream;

/* Random keys (many runs: the arrays pass ROSA__ARENA_MIN within a few thousand tokens) or
 * low-entropy ones (long suffix chains, clones, cells). */
static void gen(uint64_t *g, int T, int M, stream *s) {
    unsigned K = 1u << M, low = rng_below(g, 3) == 0;
    uint8_t a[3] = {(uint8_t)rng_below(g, K), (uint8_t)rng_below(g, K), (uint8_t)rng_below(g, K)};
    s->T = T;
    s->q = malloc((size_t)T);
    s->k = malloc((size_t)T);
    s->v = malloc((size_t)T);
    ck_assert(s->q && s->k && s->v);
    for (int t = 0; t < T; t++) {
        if (low) {
            unsigned x = rng_below(g, 10), y = rng_below(g, 10);
            s->q[t] = a[x < 7 ? 0 : x < 9 ? 1 : 2];
            s->k[t] = a[y < 7 ? 0 : y < 9 ? 1 : 2];
        } else {
            s->q[t] = (uint8_t)rng_below(g, K);
            s->k[t] = (uint8_t)rng_below(g, K);
        }
        s->v[t] = (uint8_t)rng_below(g, K);
    }
}

static void stream_free(stream *s) {
    free(s->q);
    free(s->k);
    free(s->v);
}

/* What each route gives alone on the heap, whole stream in one call. */
static void solo(const stream *s, int16_t *vout, int32_t *dest, int64_t *nstates) {
    rosa__route r;
    rosa__route_init(&r);
    ck_assert_int_eq(rosa__route_run(&r, s->T, s->q, s->k, s->v, 1, vout, dest), 0);
    *nstates = rosa__route_nstates(&r);
    rosa__route_free(&r);
}

enum { NR = 7 };

/* The routes of one trial: streams, and what each gives alone. */
typedef struct {
    int T;
    stream s[NR];
    int16_t *want_v;  /* [NR][T] */
    int32_t *want_d;
    int64_t nstates[NR];
} trial;

static void trial_new(uint64_t *g, int T, trial *tr) {
    tr->T = T;
    tr->want_v = malloc(sizeof(int16_t) * NR * (size_t)T);
    tr->want_d = malloc(sizeof(int32_t) * NR * (size_t)T);
    ck_assert(tr->want_v && tr->want_d);
    int M = 1 + (int)rng_below(g, 8);
    for (int i = 0; i < NR; i++) {
        gen(g, T, M, &tr->s[i]);
        solo(&tr->s[i], tr->want_v + (size_t)i * T, tr->want_d + (size_t)i * T, &tr->nstates[i]);
    }
}

static void trial_free(trial *tr) {
    for (int i = 0; i < NR; i++) stream_free(&tr->s[i]);
    free(tr->want_v);
    free(tr->want_d);
}

/* Run the trial's routes (in an arena when `arena`) by one schedule and compare:
 * schedule 0: every call one token of a group of all routes in a random order;
 * 1: random chunks, each cut into random groups of random order;
 * 2: route by route through rosa__routes_run with n = 1, random chunks. */
static void run_schedule(uint64_t *g, const trial *tr, int schedule, int arena) {
    int T = tr->T;
    rosa__routes rs;
    ck_assert_int_eq(rosa__routes_new(&rs, NR, arena), 0);
    int16_t *vo = malloc(sizeof(int16_t) * NR * (size_t)T);
    int32_t *de = malloc(sizeof(int32_t) * NR * (size_t)T);
    ck_assert(vo && de);
    int perm[NR];
    for (int t0 = 0; t0 < T;) {
        int c = schedule == 0 ? 1 : 1 + (int)rng_below(g, rng_below(g, 4) ? 9 : 700);
        if (c > T - t0) c = T - t0;
        for (int i = 0; i < NR; i++) perm[i] = i;
        for (int i = NR - 1; i > 0; i--) { /* a random order of the routes */
            int j = (int)rng_below(g, (unsigned)i + 1), x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        for (int b = 0; b < NR;) {
            int n = schedule == 0 ? NR : schedule == 2 ? 1 : 1 + (int)rng_below(g, NR - (unsigned)b);
            /* a group of n routes: inputs gathered [token][route] as the engine lays them out */
            rosa__route *grp[NR];
            uint8_t q[NR * 700], k[NR * 700], v[NR * 700];
            int16_t ov[NR * 700];
            int32_t od[NR * 700];
            for (int j = 0; j < n; j++) {
                int r = perm[b + j];
                grp[j] = &rs.r[r];
                for (int t = 0; t < c; t++) {
                    q[t * n + j] = tr->s[r].q[t0 + t];
                    k[t * n + j] = tr->s[r].k[t0 + t];
                    v[t * n + j] = tr->s[r].v[t0 + t];
                }
            }
            ck_assert_int_eq(rosa__routes_run(grp, n, c, q, k, v, (size_t)n, 1, ov, od), 0);
            for (int j = 0; j < n; j++)
                for (int t = 0; t < c; t++) {
                    size_t at = (size_t)perm[b + j] * T + (size_t)(t0 + t);
                    vo[at] = ov[t * n + j];
                    de[at] = od[t * n + j];
                }
            b += n;
        }
        t0 += c;
    }
    for (int i = 0; i < NR; i++) {
        for (int t = 0; t < T; t++) {
            size_t at = (size_t)i * T + (size_t)t;
            if (vo[at] != tr->want_v[at] || de[at] != tr->want_d[at])
                ck_abort_msg("schedule %d arena %d T=%d: route %d step %d: got %d %d, want %d %d",
                             schedule, arena, T, i, t, vo[at], de[at], tr->want_v[at], tr->want_d[at]);
        }
        ck_assert_int_eq(rosa__route_nstates(&rs.r[i]), tr->nstates[i]);
    }
    if (arena) { /* the large arrays did come from the arena, and all go back */
        size_t mapped, used;
        rosa__arena_stats(rs.arena, &mapped, &used);
        ck_assert_uint_gt(used, 0);
        ck_assert_uint_ge(rosa__routes_bytes(&rs), used);
        for (int i = 0; i < NR; i++) rosa__route_free(&rs.r[i]);
        rosa__arena_stats(rs.arena, &mapped, &used);
        ck_assert_uint_eq(used, 0);
        ck_assert_uint_eq(mapped, 0);
    }
    rosa__routes_free(&rs);
    free(vo);
    free(de);
}

START_TEST(any_interleaving_any_storage) {
    uint64_t g = 2026;
    for (int rep = 0; rep < 3; rep++) {
        trial tr;
        trial_new(&g, rep == 0 ? 3000 : 20000 + (int)rng_below(&g, 20000), &tr);
        for (int schedule = 0; schedule < 3; schedule++)
            for (int arena = 0; arena < 2; arena++) run_schedule(&g, &tr, schedule, arena);
        trial_free(&tr);
    }
}
END_TEST

/* ---------------------------------------------------------------- the engine's layer step */

/* rosa__rosa_step over 3 sessions of a 2-layer, R-route model, in prefill chunks of varying
 * sizes then one token at a time, on 1 and on 3 threads: every output equals the per-route run. */
START_TEST(layer_step_matches_routes) {
    enum { R = 37, NL = 2, B = 3, T = 9000 };
    uint64_t g = 77;
    stream *s = calloc(B * NL * R, sizeof *s);
    int16_t *want = malloc(sizeof(int16_t) * B * NL * R * (size_t)T);
    int32_t *wd = malloc(sizeof(int32_t) * (size_t)T);
    ck_assert(s && want && wd);
    for (int i = 0; i < B * NL * R; i++) {
        int64_t ns;
        gen(&g, T, 4, &s[i]);
        solo(&s[i], want + (size_t)i * T, wd, &ns);
    }
    for (int threads = 1; threads <= 3; threads += 2) {
        rosa_model m;
        memset(&m, 0, sizeof m);
        m.R = R;
        m.M = 4;
        m.n_rosa = NL;
        m.pool = rosa__pool_new(threads);
        ck_assert_ptr_nonnull(m.pool);
        struct rosa_session sess[B], *ss[B];
        memset(sess, 0, sizeof sess);
        for (int b = 0; b < B; b++) {
            sess[b].m = &m;
            ss[b] = &sess[b];
            ck_assert_int_eq(rosa__routes_new(&sess[b].routes, NL * R, 1), 0);
        }
        uint8_t *q = malloc((size_t)B * 600 * R), *k = malloc((size_t)B * 600 * R), *v = malloc((size_t)B * 600 * R);
        int16_t *vo = malloc(sizeof(int16_t) * B * 600 * R);
        ck_assert(q && k && v && vo);
        for (int t0 = 0; t0 < T;) {
            int ntok[B], rows = 0;
            for (int b = 0; b < B; b++) { /* sessions advance by different amounts per call */
                int c = t0 >= T - 500 ? 1 : (int)rng_below(&g, 600);
                if (c > T - (int)sess[b].pos) c = T - (int)sess[b].pos;
                ntok[b] = c;
            }
            for (int l = 0; l < NL; l++) {
                rows = 0;
                for (int b = 0; b < B; b++)
                    for (int i = 0; i < ntok[b]; i++, rows++)
                        for (int r = 0; r < R; r++) {
                            const stream *x = &s[(b * NL + l) * R + r];
                            int64_t t = sess[b].pos + i;
                            q[rows * R + r] = x->q[t];
                            k[rows * R + r] = x->k[t];
                            v[rows * R + r] = x->v[t];
                        }
                ck_assert_int_eq(rosa__rosa_step(&m, ss, B, ntok, l, q, k, v, vo, NULL), 0);
                rows = 0;
                for (int b = 0; b < B; b++)
                    for (int i = 0; i < ntok[b]; i++, rows++)
                        for (int r = 0; r < R; r++) {
                            int64_t t = sess[b].pos + i;
                            int16_t w = want[(size_t)((b * NL + l) * R + r) * T + (size_t)t];
                            if (vo[rows * R + r] != w)
                                ck_abort_msg("threads %d session %d layer %d route %d t %lld: got %d want %d",
                                             threads, b, l, r, (long long)t, vo[rows * R + r], w);
                        }
            }
            int lo = T;
            for (int b = 0; b < B; b++) {
                sess[b].pos += ntok[b];
                if (sess[b].pos < lo) lo = (int)sess[b].pos;
            }
            t0 = lo;
        }
        size_t mapped, used;
        rosa__arena_stats(sess[0].routes.arena, &mapped, &used);
        ck_assert_uint_gt(used, 0); /* the arena was used */
        for (int b = 0; b < B; b++) rosa__routes_free(&sess[b].routes);
        rosa__pool_free(m.pool);
        free(q);
        free(k);
        free(v);
        free(vo);
    }
    for (int i = 0; i < B * NL * R; i++) stream_free(&s[i]);
    free(s);
    free(want);
    free(wd);
}
END_TEST

/* A byte cap holds with an arena too (a class block is taken only in part when the whole would
 * pass the cap), and reaching it is ROSA_ERR_LIMIT. */
START_TEST(cap_with_arena) {
    uint64_t g = 5;
    stream s;
    gen(&g, 200000, 4, &s);
    for (size_t cap = 150000; cap <= 2000000; cap = cap * 3 / 2) {
        rosa__arena *a = rosa__arena_new();
        ck_assert_ptr_nonnull(a);
        rosa__route r;
        rosa__route_init(&r);
        rosa__route_set_arena(&r, a);
        rosa__route_set_max_bytes(&r, cap);
        int16_t vo[1000];
        int err = 0;
        for (int t0 = 0; t0 < s.T && !err; t0 += 1000) {
            err = rosa__route_run(&r, 1000, s.q + t0, s.k + t0, s.v + t0, 1, vo, NULL);
            ck_assert_uint_le(rosa__route_bytes(&r), cap);
        }
        ck_assert_int_eq(err, ROSA_ERR_LIMIT);
        rosa__route_free(&r);
        rosa__arena_free(a);
    }
    stream_free(&s);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rosa_layout");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, arena_blocks);
    tcase_add_test(tc, any_interleaving_any_storage);
    tcase_add_test(tc, layer_step_matches_routes);
    tcase_add_test(tc, cap_with_arena);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
