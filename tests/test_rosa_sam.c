/* test_rosa_sam.c: the ROSA route state (engine/rosa/rosa_sam.c) against a brute-force reading
 * of ROSA-SPEC section 3 that uses no automaton, on thousands of seeded random streams (random,
 * low-entropy, repetitive, growing alphabet; q independent of k, q == k, k = q delayed by one;
 * M = 1, 2, 4, 8), whole and in random chunks at random strides, with the last_end cell
 * threshold varied; the automaton's state count against a textbook construction (no redundant
 * clones); periodic keys in linear time; memory bounds; the allocation-failure path; the
 * multi-route call (rosa__routes_run) against per-route calls.
 *
 * The reference keeps the query cursor as a string x (a substring of the run string S, stored as
 * end position + length) and answers a query c by definition: x' = the longest suffix of x such
 * that x'c occurs in S; the new state is the endpos class of x'c, whose last_end is the largest
 * end of an occurrence of x'c and whose longest string extends x'c to the left as long as all
 * occurrences agree.  A table of longest common suffixes of prefixes of S makes this O(runs). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rosa.h"
#include "rosa/rosa_sam.h"
#include "testutil.h"

/* ---------------------------------------------------------------- seeded generator */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static unsigned rng_below(uint64_t *s, unsigned n) { return (unsigned)(rng_next(s) % n); }

/* ---------------------------------------------------------------- brute-force reference */

typedef struct {
    int n, cap;          /* runs so far, room */
    uint8_t *S, *vsym;   /* [cap] run symbols, value symbols */
    int32_t *start;      /* [cap] */
    uint16_t *L;         /* [cap * cap]: L[i*cap+j], j <= i: common suffix of S[0..i], S[0..j] */
    int xe, xl;          /* cursor string x = S[xe-xl+1 .. xe] (xl = 0: empty) */
    int moved, t, pk, pq;
} ref_route;

static void ref_init(ref_route *r, int cap) {
    memset(r, 0, sizeof *r);
    r->cap = cap;
    r->S = malloc((size_t)cap);
    r->vsym = malloc((size_t)cap);
    r->start = malloc((size_t)cap * sizeof(int32_t));
    r->L = malloc((size_t)cap * cap * sizeof(uint16_t));
    ck_assert(r->S && r->vsym && r->start && r->L);
}

static void ref_free(ref_route *r) {
    free(r->S);
    free(r->vsym);
    free(r->start);
    free(r->L);
}

static int lcs(const ref_route *r, int i, int j) {
    if (i < 0 || j < 0) return 0;
    return i >= j ? r->L[(size_t)i * r->cap + j] : r->L[(size_t)j * r->cap + i];
}

static void ref_step(ref_route *r, int q, int k, int v, int *vout, int *dest) {
    if (r->t == 0 || k != r->pk) {
        ck_assert_int_lt(r->n, r->cap);
        int n = r->n++;
        r->S[n] = (uint8_t)k;
        r->start[n] = r->t;
        r->vsym[n] = (uint8_t)v;
        for (int j = 0; j <= n; j++)
            r->L[(size_t)n * r->cap + j] = r->S[j] == r->S[n] ? (uint16_t)(lcs(r, n - 1, j - 1) + 1) : 0;
    }
    if (r->t == 0 || q != r->pq) r->moved = 0;
    *vout = -1;
    *dest = -1;
    /* m(e): how much of x ends at e - 1; x' = suffix of x of length max m(e) over S[e] == q */
    int best = -1;
    for (int e = 0; e < r->n; e++)
        if (r->S[e] == q) {
            int m = lcs(r, r->xe, e - 1);
            if (m > r->xl) m = r->xl;
            if (m > best) best = m;
        }
    if (best >= 0) {
        int last = -1;
        for (int e = 0; e < r->n; e++)
            if (r->S[e] == q) {
                int m = lcs(r, r->xe, e - 1);
                if (m > r->xl) m = r->xl;
                if (m >= best) last = e;
            }
        int p = last + 1;
        if (p <= r->n - 1) {
            *dest = r->start[p];
            *vout = r->vsym[p];
        }
        if (!r->moved) {
            int ell = last + 1;
            for (int e = 0; e < r->n; e++)
                if (r->S[e] == q) {
                    int m = lcs(r, r->xe, e - 1);
                    if (m > r->xl) m = r->xl;
                    if (m >= best && lcs(r, last, e) < ell) ell = lcs(r, last, e);
                }
            r->xe = last;
            r->xl = ell;
            r->moved = 1;
        }
    }
    r->pk = k;
    r->pq = q;
    r->t++;
}

/* Number of states of the suffix automaton of the run string S[0..n), by the textbook online
 * construction with dense tables: the minimal automaton, to check that the route's (which
 * stores lengths and edges differently) makes no redundant clones. */
static int64_t textbook_sam_states(const uint8_t *S, int n) {
    int cap = 2 * n + 2, sz = 1, last = 0;
    int *len = calloc((size_t)cap, sizeof *len), *link = malloc((size_t)cap * sizeof *link);
    int *next = malloc((size_t)cap * 256 * sizeof *next);
    ck_assert(len && link && next);
    link[0] = -1;
    memset(next, -1, 256 * sizeof *next);
    for (int i = 0; i < n; i++) {
        int c = S[i], cur = sz++, p = last;
        len[cur] = len[last] + 1;
        memset(next + (size_t)cur * 256, -1, 256 * sizeof *next);
        while (p >= 0 && next[(size_t)p * 256 + c] < 0) {
            next[(size_t)p * 256 + c] = cur;
            p = link[p];
        }
        if (p < 0) {
            link[cur] = 0;
        } else {
            int q = next[(size_t)p * 256 + c];
            if (len[p] + 1 == len[q]) {
                link[cur] = q;
            } else {
                int cl = sz++;
                len[cl] = len[p] + 1;
                link[cl] = link[q];
                memcpy(next + (size_t)cl * 256, next + (size_t)q * 256, 256 * sizeof *next);
                while (p >= 0 && next[(size_t)p * 256 + c] == q) {
                    next[(size_t)p * 256 + c] = cl;
                    p = link[p];
                }
                link[q] = link[cur] = cl;
            }
        }
        last = cur;
    }
    free(len);
    free(link);
    free(next);
    return sz;
}

/* ---------------------------------------------------------------- stream generators */

enum { DIST_RANDOM, DIST_LOW, DIST_REPEAT, DIST_GROW, NDIST };
enum { QK_INDEP, QK_SHIFT, QK_SAME, NQK };

typedef struct {
    int T;
    uint8_t *q, *k, *v;
} stream;

/* One symbol stream of the given distribution over K symbols.  A low-entropy stream uses the
 * alphabet alpha[] when given (so q, k and v can share one), else draws its own. */
static void gen_syms(uint64_t *g, int dist, int K, int T, uint8_t *out, const uint8_t *alpha) {
    if (dist == DIST_RANDOM) {
        for (int t = 0; t < T; t++) out[t] = (uint8_t)rng_below(g, (unsigned)K);
    } else if (dist == DIST_LOW) {
        /* 2 or 3 symbols (not always distinct), skewed: 70/20/10 or 80/20 */
        int d = K == 2 ? 2 : 2 + (int)rng_below(g, 2);
        uint8_t a[3];
        for (int i = 0; i < 3; i++) a[i] = alpha ? alpha[i] : (uint8_t)rng_below(g, (unsigned)K);
        for (int t = 0; t < T; t++) {
            unsigned x = rng_below(g, 100);
            out[t] = d == 2 ? a[x < 80 ? 0 : 1] : a[x < 70 ? 0 : x < 90 ? 1 : 2];
        }
    } else if (dist == DIST_REPEAT) {
        /* a short pattern repeated, with occasional mutations (some of which stick) */
        uint8_t pat[16];
        int P = 1 + (int)rng_below(g, 12);
        unsigned mut = rng_below(g, 61); /* per mille; 0: exactly periodic */
        for (int i = 0; i < P; i++) pat[i] = (uint8_t)rng_below(g, (unsigned)K);
        for (int t = 0; t < T; t++) {
            out[t] = pat[t % P];
            if (rng_below(g, 1000) < mut) {
                out[t] = (uint8_t)rng_below(g, (unsigned)K);
                if (rng_below(g, 4) == 0) pat[t % P] = out[t];
            }
        }
    } else {
        /* the alphabet widens over time (exercises dense edge blocks getting wider) */
        for (int t = 0; t < T; t++) {
            unsigned w = 2 + (unsigned)t / 4;
            out[t] = (uint8_t)rng_below(g, w < (unsigned)K ? w : (unsigned)K);
        }
    }
}

static void gen_stream(uint64_t *g, int dist, int qk, int M, int T, stream *s) {
    int K = 1 << M;
    s->T = T;
    s->q = malloc((size_t)T + 1);
    s->k = malloc((size_t)T + 1);
    s->v = malloc((size_t)T + 1);
    ck_assert(s->q && s->k && s->v);
    /* half the low-entropy streams share one alphabet between q, k and v */
    uint8_t alpha[3];
    for (int i = 0; i < 3; i++) alpha[i] = (uint8_t)rng_below(g, (unsigned)K);
    const uint8_t *shared = rng_below(g, 2) ? alpha : NULL;
    gen_syms(g, dist, K, T, s->k, shared);
    if (shared && dist == DIST_LOW)
        gen_syms(g, dist, K, T, s->v, shared);
    else
        for (int t = 0; t < T; t++) s->v[t] = (uint8_t)rng_below(g, (unsigned)K);
    if (qk == QK_INDEP) {
        gen_syms(g, dist, K, T, s->q, shared);
    } else if (qk == QK_SAME) {
        memcpy(s->q, s->k, (size_t)T);
    } else { /* the copy demo: k_t = q_{t-1}, v_t = k_t */
        gen_syms(g, dist, K, T, s->q, shared);
        s->k[0] = (uint8_t)rng_below(g, (unsigned)K);
        for (int t = 1; t < T; t++) s->k[t] = s->q[t - 1];
        memcpy(s->v, s->k, (size_t)T);
    }
}

static void stream_free(stream *s) {
    free(s->q);
    free(s->k);
    free(s->v);
}

/* ---------------------------------------------------------------- comparison */

static int checked_streams, checked_steps;

/* Reference outputs of a whole stream. */
static void ref_run(const stream *s, int *vout, int *dest) {
    ref_route rr;
    ref_init(&rr, s->T + 1);
    for (int t = 0; t < s->T; t++) ref_step(&rr, s->q[t], s->k[t], s->v[t], &vout[t], &dest[t]);
    ref_free(&rr);
}

/* Run the route over s (in random chunks when chunked, with the inputs interleaved at a
 * random stride) and compare with the reference at every step. */
static void check_route(uint64_t *g, const stream *s, const int *rv, const int *rd, int chunked,
                        const char *what) {
    size_t stride = chunked ? 1 + rng_below(g, 4) : 1;
    int T = s->T;
    uint8_t *q = calloc((size_t)T * stride + 1, 1), *k = calloc((size_t)T * stride + 1, 1),
            *v = calloc((size_t)T * stride + 1, 1);
    int16_t *vo = calloc((size_t)T * stride + 1, sizeof *vo);
    int32_t *de = calloc((size_t)T * stride + 1, sizeof *de);
    ck_assert(q && k && v && vo && de);
    for (int t = 0; t < T; t++) {
        q[t * stride] = s->q[t];
        k[t * stride] = s->k[t];
        v[t * stride] = s->v[t];
    }
    rosa__route r;
    rosa__route_init(&r);
    /* last_end cells are an optimisation for long suffix chains: results must not depend on
     * when they form, so stress them with short thresholds too */
    if (rng_below(g, 2)) r.cell_min = 1 + rng_below(g, 8);
    int64_t runs = 0;
    for (int t0 = 0; t0 < T;) {
        int n = T - t0;
        if (chunked) {
            int c = rng_below(g, 8) == 0 ? 1 + (int)rng_below(g, 200) : 1 + (int)rng_below(g, 6);
            if (c < n) n = c;
        }
        size_t at = (size_t)t0 * stride;
        /* half the chunked runs pass dest = NULL: vout must not depend on it */
        int32_t *dp = chunked && (t0 & 1) ? NULL : de + at;
        if (!dp)
            for (int i = 0; i < n; i++) de[at + (size_t)i * stride] = rd[t0 + i];
        int err = rosa__route_run(&r, n, q + at, k + at, v + at, stride, vo + at, dp);
        ck_assert_msg(err == 0, "%s: route_run failed: %s", what, rosa_strerror(err));
        t0 += n;
    }
    for (int t = 0; t < T; t++) {
        runs += t == 0 || s->k[t] != s->k[t - 1];
        if (vo[t * stride] != rv[t] || de[t * stride] != rd[t]) {
            char buf[512];
            int o = 0;
            for (int i = t > 12 ? t - 12 : 0; i <= t && o < 400; i++)
                o += snprintf(buf + o, sizeof buf - (size_t)o, " (%d,%d,%d)", s->q[i], s->k[i], s->v[i]);
            ck_abort_msg("%s%s T=%d: step %d: got vout %d dest %d, want %d %d; last (q,k,v):%s", what,
                         chunked ? " (chunked)" : "", T, t, vo[t * stride], de[t * stride], rv[t],
                         rd[t], buf);
        }
    }
    ck_assert_int_eq(rosa__route_nruns(&r), runs);
    if (!chunked) {
        uint8_t *S = malloc((size_t)runs + 1);
        ck_assert(S);
        int n = 0;
        for (int t = 0; t < T; t++)
            if (t == 0 || s->k[t] != s->k[t - 1]) S[n++] = s->k[t];
        ck_assert_int_eq(rosa__route_nstates(&r), textbook_sam_states(S, n));
        free(S);
    }
    rosa__route_free(&r);
    ck_assert_int_eq(rosa__route_bytes(&r), 0);
    free(q);
    free(k);
    free(v);
    free(vo);
    free(de);
    checked_streams++;
    checked_steps += T;
}

static const char *dist_name[NDIST] = {"random", "low-entropy", "repetitive", "growing"};
static const char *qk_name[NQK] = {"q,k independent", "k = q delayed", "q == k"};

/* nstreams streams of one family, lengths 1..maxT (a few long ones; all long if minT = maxT). */
static void check_family(int dist, int M, int nstreams, int minT, int maxT, uint64_t seed) {
    uint64_t g = seed;
    for (int i = 0; i < nstreams; i++) {
        int qk = i % NQK;
        int T = rng_below(&g, 10) == 0 ? maxT : minT + (int)rng_below(&g, (unsigned)maxT / 4);
        if (T > maxT) T = maxT;
        stream s;
        gen_stream(&g, dist, qk, M, T, &s);
        int *rv = malloc(sizeof(int) * (size_t)T), *rd = malloc(sizeof(int) * (size_t)T);
        ck_assert(rv && rd);
        ref_run(&s, rv, rd);
        char what[160];
        snprintf(what, sizeof what, "%s M=%d %s stream %d", dist_name[dist], M, qk_name[qk], i);
        check_route(&g, &s, rv, rd, 0, what);
        check_route(&g, &s, rv, rd, 1, what);
        free(rv);
        free(rd);
        stream_free(&s);
    }
}

/* ---------------------------------------------------------------- tests */

START_TEST(hand_example) {
    /* k = q delayed by one, v = k; worked by hand from section 3 */
    const uint8_t q[] = {0, 1, 0, 1, 0}, k[] = {9, 0, 1, 0, 1};
    const int wv[] = {-1, -1, 1, 0, 1}, wd[] = {-1, -1, 2, 3, 4};
    int16_t vo[5];
    int32_t de[5];
    rosa__route r;
    rosa__route_init(&r);
    ck_assert_int_eq(rosa__route_run(&r, 5, q, k, k, 1, vo, de), 0);
    for (int t = 0; t < 5; t++) {
        ck_assert_int_eq(vo[t], wv[t]);
        ck_assert_int_eq(de[t], wd[t]);
    }
    ck_assert_int_eq(rosa__route_nruns(&r), 5);
    /* q == k never retrieves: the match always ends in the newest run */
    rosa__route_free(&r);
    rosa__route_init(&r);
    ck_assert_int_eq(rosa__route_run(&r, 5, k, k, k, 1, vo, NULL), 0);
    for (int t = 0; t < 5; t++) ck_assert_int_eq(vo[t], -1);
    ck_assert_int_eq(rosa__route_run(&r, 0, k, k, k, 1, vo, NULL), 0);
    rosa__route_free(&r);
}
END_TEST

START_TEST(brute_random) {
    static const int Ms[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) check_family(DIST_RANDOM, Ms[i], 300, 1, 1200, 1000 + (uint64_t)i);
}
END_TEST

START_TEST(brute_low_entropy) {
    static const int Ms[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) check_family(DIST_LOW, Ms[i], 300, 1, 1200, 2000 + (uint64_t)i);
}
END_TEST

START_TEST(brute_repetitive) {
    static const int Ms[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) check_family(DIST_REPEAT, Ms[i], 300, 1, 1200, 3000 + (uint64_t)i);
}
END_TEST

START_TEST(brute_growing_alphabet) {
    check_family(DIST_GROW, 8, 200, 1, 1500, 4000);
    check_family(DIST_GROW, 4, 100, 1, 600, 4001);
}
END_TEST

START_TEST(brute_long_streams) {
    /* a few streams long enough for many sampled prefix states and wide dense blocks */
    for (int dist = 0; dist < NDIST; dist++) check_family(dist, dist == DIST_GROW ? 8 : 4, 3, 4000, 4000, 5000 + (uint64_t)dist);
}
END_TEST

START_TEST(periodic_keys_stay_linear) {
    /* Keys with period 2 or 3: every suffix chain is as long as the number of periods, so
     * walking it at each run (the spec's description) is quadratic, ~10^10 steps here, some
     * 1000x the time of random keys; last_end cells make it linear.  Whole vs chunked runs
     * must also agree. */
    enum { T = 200000 };
    uint8_t *q = malloc(T), *k = malloc(T), *v = malloc(T);
    int16_t *vo = malloc(T * sizeof *vo), *vo2 = malloc(T * sizeof *vo2);
    int32_t *de = malloc(T * sizeof *de), *de2 = malloc(T * sizeof *de2);
    ck_assert(q && k && v && vo && vo2 && de && de2);
    /* the yardstick: random keys of the same length (short suffix chains) */
    uint64_t g = 3;
    for (int t = 0; t < T; t++) {
        k[t] = (uint8_t)rng_below(&g, 16);
        q[t] = (uint8_t)rng_below(&g, 16);
        v[t] = (uint8_t)rng_below(&g, 16);
    }
    clock_t c0 = clock();
    rosa__route r;
    rosa__route_init(&r);
    ck_assert_int_eq(rosa__route_run(&r, T, q, k, v, 1, vo, de), 0);
    rosa__route_free(&r);
    double random_secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
    for (int P = 2; P <= 3; P++) {
        for (int t = 0; t < T; t++) {
            k[t] = (uint8_t)(t % P);
            q[t] = (uint8_t)((t + 1) % P);
            v[t] = (uint8_t)(t % 7);
        }
        c0 = clock();
        rosa__route_init(&r);
        ck_assert_int_eq(rosa__route_run(&r, T, q, k, v, 1, vo, de), 0);
        double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
        ck_assert_msg(secs < 10 * random_secs + 0.5, "period %d: %.2f s for %d tokens (random: %.2f s)",
                      P, secs, T, random_secs);
        ck_assert_int_eq(rosa__route_nruns(&r), T);
        rosa__route_free(&r);
        rosa__route_init(&r);
        for (int t0 = 0; t0 < T; t0 += 977) {
            int n = T - t0 < 977 ? T - t0 : 977;
            ck_assert_int_eq(rosa__route_run(&r, n, q + t0, k + t0, v + t0, 1, vo2 + t0, de2 + t0), 0);
        }
        rosa__route_free(&r);
        ck_assert(!memcmp(vo, vo2, T * sizeof *vo) && !memcmp(de, de2, T * sizeof *de));
        /* and a prefix agrees with the brute-force reference */
        stream st = {.T = 3000, .q = q, .k = k, .v = v};
        int rv[3000], rd[3000];
        ref_run(&st, rv, rd);
        for (int t = 0; t < 3000; t++) {
            ck_assert_int_eq(vo[t], rv[t]);
            ck_assert_int_eq(de[t], rd[t]);
        }
    }
    free(q);
    free(k);
    free(v);
    free(vo);
    free(vo2);
    free(de);
    free(de2);
}
END_TEST

START_TEST(memory_follows_runs) {
    /* 200000 tokens whose key changes every 1000 tokens: 200 runs, so a few KiB */
    enum { T = 200000 };
    uint8_t *q = malloc(T), *k = malloc(T), *v = malloc(T);
    int16_t *vo = malloc(T * sizeof *vo);
    ck_assert(q && k && v && vo);
    uint64_t g = 7;
    for (int t = 0; t < T; t++) {
        k[t] = (uint8_t)((t / 1000) * 7 % 16);
        q[t] = (uint8_t)rng_below(&g, 16);
        v[t] = (uint8_t)rng_below(&g, 16);
    }
    rosa__route r;
    rosa__route_init(&r);
    ck_assert_int_eq(rosa__route_run(&r, T, q, k, v, 1, vo, NULL), 0);
    ck_assert_int_eq(rosa__route_nruns(&r), 200);
    size_t few = rosa__route_bytes(&r);
    ck_assert_msg(few < 16384, "200 runs take %zu bytes", few);
    rosa__route_free(&r);
    /* random keys: about 15/16 of the tokens start a run; bytes per run stay bounded */
    for (int t = 0; t < T; t++) k[t] = (uint8_t)rng_below(&g, 16);
    rosa__route_init(&r);
    ck_assert_int_eq(rosa__route_run(&r, T, q, k, v, 1, vo, NULL), 0);
    double per = (double)rosa__route_bytes(&r) / (double)rosa__route_nruns(&r);
    ck_assert_msg(per < 64, "%.1f bytes per run", per);
    rosa__route_free(&r);
    free(q);
    free(k);
    free(v);
    free(vo);
}
END_TEST

START_TEST(allocation_failure) {
    /* a byte cap makes every growth site fail in turn: the route must report the error, keep
     * reporting it, stay under the cap and free cleanly; results before the failure are right */
    uint64_t g = 11;
    int failures = 0;
    for (int trial = 0; trial < 120; trial++) {
        int dist = trial % 3, M = trial % 2 ? 8 : 4;
        stream s;
        gen_stream(&g, dist, trial % NQK, M, 400, &s);
        int rv[400], rd[400];
        ref_run(&s, rv, rd);
        rosa__route r;
        rosa__route_init(&r);
        size_t cap = 64 + (size_t)rng_below(&g, 12000);
        rosa__route_set_max_bytes(&r, cap);
        int err = 0, t = 0;
        while (t < s.T && !err) {
            int16_t vo[7];
            int32_t de[7];
            int n = s.T - t < 7 ? s.T - t : 7;
            err = rosa__route_run(&r, n, s.q + t, s.k + t, s.v + t, 1, vo, de);
            if (!err)
                for (int i = 0; i < n; i++) {
                    ck_assert_int_eq(vo[i], rv[t + i]);
                    ck_assert_int_eq(de[i], rd[t + i]);
                }
            t += n;
        }
        ck_assert_uint_le(rosa__route_bytes(&r), cap);
        if (err) {
            failures++;
            ck_assert_int_eq(err, ROSA_ERR_LIMIT);
            int16_t vo;
            ck_assert_int_eq(rosa__route_run(&r, 1, s.q, s.k, s.v, 1, &vo, NULL), ROSA_ERR_LIMIT);
        }
        rosa__route_free(&r);
        stream_free(&s);
    }
    ck_assert_int_gt(failures, 60);
}
END_TEST

/* rosa__routes_run over random groups (1..12 routes, each with its own distribution, alphabet
 * and cell threshold), random chunkings and both layouts ([token][route] with padding, and
 * [route][token]) gives what rosa__route_run gives on each route alone (and, for short streams,
 * the brute-force reference). */
START_TEST(routes_run_matches_route_run) {
    uint64_t g = 4242;
    for (int trial = 0; trial < 300; trial++) {
        int n = 1 + (int)rng_below(&g, 12), M = 1 + (int)rng_below(&g, 8);
        int T = rng_below(&g, 10) == 0 ? 3000 + (int)rng_below(&g, 3000) : 1 + (int)rng_below(&g, 700);
        stream *ss = calloc((size_t)n, sizeof *ss);
        rosa__route *solo = calloc((size_t)n, sizeof *solo), *grp = calloc((size_t)n, sizeof *grp);
        rosa__route **ptr = calloc((size_t)n, sizeof *ptr);
        int16_t *want_v = malloc(sizeof(int16_t) * (size_t)n * (size_t)T);
        int32_t *want_d = malloc(sizeof(int32_t) * (size_t)n * (size_t)T);
        ck_assert(ss && solo && grp && ptr && want_v && want_d);
        for (int i = 0; i < n; i++) {
            gen_stream(&g, (int)rng_below(&g, NDIST), (int)rng_below(&g, NQK), M, T, &ss[i]);
            rosa__route_init(&solo[i]);
            rosa__route_init(&grp[i]);
            if (rng_below(&g, 2)) solo[i].cell_min = grp[i].cell_min = 1 + rng_below(&g, 8);
            ptr[i] = &grp[i];
            int16_t *wv = want_v + (size_t)i * T;
            int32_t *wd = want_d + (size_t)i * T;
            ck_assert_int_eq(rosa__route_run(&solo[i], T, ss[i].q, ss[i].k, ss[i].v, 1, wv, wd), 0);
            if (T <= 800) {
                int rv[800], rd[800];
                ref_run(&ss[i], rv, rd);
                for (int t = 0; t < T; t++) {
                    ck_assert_int_eq(wv[t], rv[t]);
                    ck_assert_int_eq(wd[t], rd[t]);
                }
            }
        }
        /* layout: token-major with route stride sr and token stride n*sr + pad, or route-major */
        size_t sr, stt;
        if (rng_below(&g, 2)) {
            sr = 1 + rng_below(&g, 3);
            stt = (size_t)n * sr + rng_below(&g, 3);
        } else {
            stt = 1 + rng_below(&g, 2);
            sr = (size_t)T * stt + rng_below(&g, 3);
        }
        size_t len = (size_t)(T - 1) * stt + (size_t)(n - 1) * sr + 1;
        uint8_t *q = calloc(len, 1), *k = calloc(len, 1), *v = calloc(len, 1);
        int16_t *vo = calloc(len, sizeof *vo);
        int32_t *de = calloc(len, sizeof *de);
        ck_assert(q && k && v && vo && de);
        for (int i = 0; i < n; i++)
            for (int t = 0; t < T; t++) {
                size_t at = (size_t)t * stt + (size_t)i * sr;
                q[at] = ss[i].q[t];
                k[at] = ss[i].k[t];
                v[at] = ss[i].v[t];
            }
        int with_dest = (int)rng_below(&g, 4) != 0;
        for (int t0 = 0; t0 < T;) {
            int c = rng_below(&g, 3) == 0 ? 1 : 1 + (int)rng_below(&g, rng_below(&g, 4) ? 8 : 300);
            if (c > T - t0) c = T - t0;
            size_t at = (size_t)t0 * stt;
            ck_assert_int_eq(rosa__routes_run(ptr, n, c, q + at, k + at, v + at, stt, sr, vo + at,
                                              with_dest ? de + at : NULL),
                             0);
            t0 += c;
        }
        for (int i = 0; i < n; i++) {
            for (int t = 0; t < T; t++) {
                size_t at = (size_t)t * stt + (size_t)i * sr;
                if (vo[at] != want_v[(size_t)i * T + t] || (with_dest && de[at] != want_d[(size_t)i * T + t]))
                    ck_abort_msg("trial %d (n=%d M=%d T=%d strides %zu,%zu): route %d step %d: got %d %d, "
                                 "want %d %d",
                                 trial, n, M, T, stt, sr, i, t, vo[at], de[at],
                                 want_v[(size_t)i * T + t], want_d[(size_t)i * T + t]);
            }
            ck_assert_int_eq(rosa__route_t(&grp[i]), T);
            ck_assert_int_eq(rosa__route_nruns(&grp[i]), rosa__route_nruns(&solo[i]));
            ck_assert_int_eq(rosa__route_nstates(&grp[i]), rosa__route_nstates(&solo[i]));
            rosa__route_free(&solo[i]);
            rosa__route_free(&grp[i]);
            stream_free(&ss[i]);
        }
        free(ss);
        free(solo);
        free(grp);
        free(ptr);
        free(want_v);
        free(want_d);
        free(q);
        free(k);
        free(v);
        free(vo);
        free(de);
    }
}
END_TEST

/* A route of a group that runs out of its byte cap: the call reports the error, that route
 * keeps reporting it, the others stay valid (they continue correctly from where they stopped). */
START_TEST(routes_run_failure) {
    uint64_t g = 99;
    enum { N = 5, T = 2000 };
    for (int trial = 0; trial < 40; trial++) {
        stream ss[N];
        rosa__route rt[N], *ptr[N];
        int bad = (int)rng_below(&g, N);
        uint8_t q[T * N], k[T * N], v[T * N];
        int16_t vo[T * N];
        int32_t de[T * N];
        for (int i = 0; i < N; i++) {
            gen_stream(&g, DIST_RANDOM, QK_INDEP, 4, T, &ss[i]);
            for (int t = 0; t < T; t++) {
                q[t * N + i] = ss[i].q[t];
                k[t * N + i] = ss[i].k[t];
                v[t * N + i] = ss[i].v[t];
            }
            rosa__route_init(&rt[i]);
            ptr[i] = &rt[i];
        }
        rosa__route_set_max_bytes(&rt[bad], 256 + rng_below(&g, 20000));
        int err = 0, t0 = 0;
        while (!err && t0 < T) {
            int c = 1 + (int)rng_below(&g, 50);
            if (c > T - t0) c = T - t0;
            err = rosa__routes_run(ptr, N, c, q + t0 * N, k + t0 * N, v + t0 * N, N, 1, vo + t0 * N,
                                   de + t0 * N);
            t0 += c;
        }
        ck_assert_int_eq(err, ROSA_ERR_LIMIT);
        ck_assert_int_eq(rosa__routes_run(ptr, N, 1, q, k, v, N, 1, vo, de), ROSA_ERR_LIMIT);
        ck_assert_int_eq(rosa__route_run(&rt[bad], 1, q, k, v, 1, vo, de), ROSA_ERR_LIMIT);
        for (int i = 0; i < N; i++) {
            if (i != bad) { /* finish alone and compare with a fresh run */
                int64_t done = rosa__route_t(&rt[i]);
                ck_assert_int_le(done, T);
                int16_t a[T], b[T];
                int32_t da[T], db[T];
                ck_assert_int_eq(rosa__route_run(&rt[i], T - (int)done, ss[i].q + done, ss[i].k + done,
                                                 ss[i].v + done, 1, a + done, da + done),
                                 0);
                rosa__route r2;
                rosa__route_init(&r2);
                ck_assert_int_eq(rosa__route_run(&r2, T, ss[i].q, ss[i].k, ss[i].v, 1, b, db), 0);
                ck_assert(!memcmp(a + done, b + done, (size_t)(T - done) * sizeof *a));
                ck_assert(!memcmp(da + done, db + done, (size_t)(T - done) * sizeof *da));
                rosa__route_free(&r2);
            }
            rosa__route_free(&rt[i]);
            stream_free(&ss[i]);
        }
    }
}
END_TEST

static void report(void) {
    fprintf(stderr, "test_rosa_sam: %d streams (%d steps) compared with the brute-force reference\n",
            checked_streams, checked_steps);
}

int main(void) {
    Suite *s = suite_create("rosa_sam");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, hand_example);
    tcase_add_test(tc, brute_random);
    tcase_add_test(tc, brute_low_entropy);
    tcase_add_test(tc, brute_repetitive);
    tcase_add_test(tc, brute_growing_alphabet);
    tcase_add_test(tc, brute_long_streams);
    tcase_add_test(tc, periodic_keys_stay_linear);
    tcase_add_test(tc, memory_follows_runs);
    tcase_add_test(tc, allocation_failure);
    tcase_add_test(tc, routes_run_matches_route_run);
    tcase_add_test(tc, routes_run_failure);
    suite_add_tcase(s, tc);
    int rc = tu_run_suite(s);
    report();
    return rc;
}
