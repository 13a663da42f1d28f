/* test_rosa_undo.c: rollback of a route (engine/rosa/rosa_sam_undo.c, rosa__route_truncate).
 *
 * - After T steps with horizon H, truncating to any t in [T - H, T] leaves exactly the route a
 *   fresh one fed the first t steps holds: the same header and arrays byte for byte; fed another
 *   continuation, both give the same vout and dest and end with the same image.  Streams make
 *   every structure the log must undo: dense edge blocks (256 symbols), low entropy (2-3
 *   symbols), periodic keys with small cell_min (last_end cells made, joined and split), long
 *   repeats (clones, redirects, spills), both through rosa__route_run (in chunks) and grouped
 *   rosa__routes_run.
 * - Truncating past the log returns ROSA_ERR_LIMIT and changes nothing; t > r->t, t < 0 and a
 *   failed route give ROSA_ERR_INVALID; t == r->t is a no-op; repeated truncate/continue cycles
 *   stay exact; horizon 0 keeps no log; set_horizon drops the log; a copy keeps the horizon
 *   with an empty log; route_bytes counts the log.
 * - rosa__routes_truncate changes no route when one cannot go back; a route failing inside a
 *   grouped call leaves the others valid and truncatable.
 * - The streams are checked to have made cells, clones, a grown xmap and a dense block; logs
 *   start near the wrap of their 32-bit positions, so the longer runs cross it. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa/rosa_routes.h"
#include "rosa/rosa_sam.h"
#include "testutil.h"

static uint64_t rng(uint64_t *g) {
    *g ^= *g << 13;
    *g ^= *g >> 7;
    *g ^= *g << 17;
    return *g;
}

static unsigned below(uint64_t *g, unsigned n) { return (unsigned)(rng(g) % n); }

enum { K_UNIFORM256, K_UNIFORM16, K_LOW, K_PERIODIC, K_REPEATS, NKINDS };

/* q, k, v of T steps of stream kind `kind`. */
static void gen(uint64_t *g, int kind, int T, uint8_t *q, uint8_t *k, uint8_t *v) {
    unsigned a = kind == K_UNIFORM256 ? 256 : kind == K_UNIFORM16 ? 16 : kind == K_LOW ? 2 + below(g, 2) : 8;
    unsigned period = 2 + below(g, 5);
    for (int t = 0; t < T; t++) {
        if (kind == K_PERIODIC && below(g, 50)) {
            k[t] = (uint8_t)(t % period);
            q[t] = (uint8_t)((t + 1) % period);
        } else if (kind == K_REPEATS && t > 64 && below(g, 100) < 3) {
            /* copy an earlier stretch: long repeated patterns (clones, redirects) */
            int from = (int)below(g, (unsigned)t - 32), len = 16 + (int)below(g, 300);
            for (int j = 0; j < len && t < T; j++, t++) {
                k[t] = k[from + j];
                q[t] = below(g, 4) ? k[from + j + 1 < t ? from + j + 1 : from] : (uint8_t)below(g, a);
                v[t] = (uint8_t)below(g, a);
            }
            t--;
            continue;
        } else {
            k[t] = (uint8_t)below(g, a);
            q[t] = (uint8_t)below(g, a);
        }
        v[t] = (uint8_t)below(g, 256);
    }
}

/* Route a's state equals route b's: header and the used part of every array, byte for byte. */
static void assert_same(const rosa__route *a, const rosa__route *b) {
    rosa__route_hdr ha, hb;
    ck_assert_int_eq(rosa__route_get_hdr(a, &ha), 0);
    ck_assert_int_eq(rosa__route_get_hdr(b, &hb), 0);
    uint32_t wa[ROSA__ROUTE_HDR_WORDS], wb[ROSA__ROUTE_HDR_WORDS];
    rosa__route_hdr_pack(&ha, wa);
    rosa__route_hdr_pack(&hb, wb);
    for (int i = 0; i < ROSA__ROUTE_HDR_WORDS; i++)
        ck_assert_msg(wa[i] == wb[i], "header word %d: %u != %u", i, wa[i], wb[i]);
    void *pa[ROSA__ROUTE_NARRAYS], *pb[ROSA__ROUTE_NARRAYS];
    size_t ba[ROSA__ROUTE_NARRAYS], bb[ROSA__ROUTE_NARRAYS];
    rosa__route_arrays(a, pa, ba);
    rosa__route_arrays(b, pb, bb);
    for (int i = 0; i < ROSA__ROUTE_NARRAYS; i++) {
        ck_assert_msg(ba[i] == bb[i], "array %d: %zu != %zu bytes", i, ba[i], bb[i]);
        if (ba[i]) {
            size_t j = 0;
            while (j < ba[i] && ((uint8_t *)pa[i])[j] == ((uint8_t *)pb[i])[j]) j++;
            ck_assert_msg(j == ba[i], "array %d differs at byte %zu of %zu", i, j, ba[i]);
        }
    }
}

/* A fresh route (cell_min cm) fed T steps of q, k, v (stride 1). */
static void fresh(rosa__route *f, uint32_t cm, int T, const uint8_t *q, const uint8_t *k, const uint8_t *v,
                  int16_t *vo, int32_t *de) {
    rosa__route_init(f);
    f->cell_min = cm;
    if (T) ck_assert_int_eq(rosa__route_run(f, T, q, k, v, 1, vo, de), 0);
}

/* Feed T steps to route r: in random chunks through rosa__route_run, or with the other routes
 * of the group together (rosa__routes_run; inputs [t][route], stride n). */
static void feed(uint64_t *g, rosa__route **rs, int n, int grouped, int T, const uint8_t *q, const uint8_t *k,
                 const uint8_t *v, int16_t *vo, int32_t *de) {
    for (int at = 0; at < T;) {
        int c = 1 + (int)below(g, below(g, 4) ? 40 : 2000);
        if (c > T - at) c = T - at;
        size_t o = (size_t)at * n;
        if (grouped) {
            ck_assert_int_eq(rosa__routes_run(rs, n, c, q + o, k + o, v + o, (size_t)n, 1, vo + o, de + o), 0);
        } else {
            for (int i = 0; i < n; i++)
                ck_assert_int_eq(rosa__route_run(rs[i], c, q + o + i, k + o + i, v + o + i, (size_t)n, vo + o + i,
                                                 de + o + i),
                                 0);
        }
        at += c;
    }
}

/* Route i's stream (stride n in buf) as a contiguous array. */
static void column(const uint8_t *buf, int n, int i, int T, uint8_t *out) {
    for (int t = 0; t < T; t++) out[t] = buf[(size_t)t * n + i];
}

/* Run T steps, truncate to t in [T - H, T], continue with other inputs: the image right after
 * the truncate, the outputs and the final image equal a fresh route's. */
START_TEST(truncate_matches_fresh) {
    static const uint32_t hs[] = {1, 7, 64, 500};
    uint64_t g = 1234567 + 7919 * (uint64_t)_i;
    int seen_cells = 0, seen_clones = 0, seen_xmap = 0, seen_dense = 0; /* the streams' coverage */
    for (int trial = 0; trial < 30; trial++) {
        int kind = (_i + trial) % NKINDS, grouped = trial % 2, n = grouped ? 1 + (int)below(&g, 4) : 1 + trial % 2;
        uint32_t H = hs[(trial / 2) % 4], cm = trial % 3 ? 1 + below(&g, 6) : 32;
        int T1 = 1 + (int)below(&g, 4000), T2 = 1 + (int)below(&g, 1500);
        if (trial % 5 == 4) T1 = (int)H; /* truncating right to the log's start, maybe to 0 */
        int back = (int)below(&g, (H < (uint32_t)T1 ? H : (uint32_t)T1) + 1), t = T1 - back;
        size_t all = (size_t)(T1 + T2) * n;
        uint8_t *q = malloc(all), *k = malloc(all), *v = malloc(all);
        uint8_t *cq = malloc(all), *ck = malloc(all), *cv = malloc(all);
        int16_t *vo = malloc(all * 2), *vf = malloc(all * 2);
        int32_t *de = malloc(all * 4), *df = malloc(all * 4);
        for (int i = 0; i < n; i++) { /* each route its own stream: history, then continuation */
            uint8_t *tq = malloc((size_t)T1 + T2), *tk = malloc((size_t)T1 + T2), *tv = malloc((size_t)T1 + T2);
            gen(&g, kind, T1 + T2, tq, tk, tv);
            for (int s = 0; s < T1; s++) {
                q[(size_t)s * n + i] = tq[s];
                k[(size_t)s * n + i] = tk[s];
                v[(size_t)s * n + i] = tv[s];
            }
            gen(&g, kind, T1 + T2, tq, tk, tv); /* the continuation: another stream */
            for (int s = 0; s < T1 + T2; s++) {
                cq[(size_t)s * n + i] = s < t ? q[(size_t)s * n + i] : tq[s];
                ck[(size_t)s * n + i] = s < t ? k[(size_t)s * n + i] : tk[s];
                cv[(size_t)s * n + i] = s < t ? v[(size_t)s * n + i] : tv[s];
            }
            free(tq);
            free(tk);
            free(tv);
        }
        rosa__route *rs[4], rt[4];
        for (int i = 0; i < n; i++) {
            rs[i] = &rt[i];
            rosa__route_init(&rt[i]);
            rt[i].cell_min = cm;
            rosa__route_set_horizon(&rt[i], H);
        }
        feed(&g, rs, n, grouped, T1, q, k, v, vo, de);
        for (int i = 0; i < n; i++) {
            seen_cells |= rt[i].ncells > 0;
            seen_clones |= rt[i].nclones > 0;
            seen_xmap |= rt[i].capx > 16; /* grew (rehashed) at least once */
            seen_dense |= rt[i].rootx != ROSA__NONE && rt[i].rootx >> ROSA__CODE_SHIFT >= ROSA__DENSE_CODE;
            ck_assert_int_eq(rosa__route_can_truncate(&rt[i], t), 0);
            ck_assert_int_eq(rosa__route_truncate(&rt[i], t), 0);
            ck_assert_int_eq(rosa__route_t(&rt[i]), t);
        }
        /* right after the truncate: each route equals a fresh one fed its first t steps */
        int T3 = T1 + T2 - t;
        uint8_t *fq = malloc((size_t)T1 + T2), *fk = malloc((size_t)T1 + T2), *fv = malloc((size_t)T1 + T2);
        rosa__route f[4];
        for (int i = 0; i < n; i++) {
            column(cq, n, i, T1 + T2, fq);
            column(ck, n, i, T1 + T2, fk);
            column(cv, n, i, T1 + T2, fv);
            fresh(&f[i], cm, t, fq, fk, fv, vf, df);
            assert_same(&rt[i], &f[i]);
        }
        /* the continuation (T3 steps of cq from step t): the same outputs and final image */
        size_t o = (size_t)t * n;
        feed(&g, rs, n, grouped, T3, cq + o, ck + o, cv + o, vo + o, de + o);
        for (int i = 0; i < n; i++) {
            column(cq, n, i, T1 + T2, fq);
            column(ck, n, i, T1 + T2, fk);
            column(cv, n, i, T1 + T2, fv);
            ck_assert_int_eq(rosa__route_run(&f[i], T3, fq + t, fk + t, fv + t, 1, vf + t, df + t), 0);
            for (int s = t; s < T1 + T2; s++) {
                ck_assert_msg(vo[(size_t)s * n + i] == vf[s], "trial %d kind %d H %u route %d: vout step %d (t %d)",
                              trial, kind, H, i, s, t);
                ck_assert_msg(de[(size_t)s * n + i] == df[s], "trial %d: dest step %d", trial, s);
            }
            assert_same(&rt[i], &f[i]);
            rosa__route_free(&f[i]);
        }
        for (int i = 0; i < n; i++) rosa__route_free(&rt[i]);
        free(fq); free(fk); free(fv);
        free(q); free(k); free(v); free(cq); free(ck); free(cv);
        free(vo); free(vf); free(de); free(df);
    }
    ck_assert(seen_cells && seen_clones && seen_xmap && seen_dense);
}
END_TEST

/* The image right after a truncate equals a fresh route's, for every t the log covers, going
 * back one random stretch at a time (truncate after truncate). */
START_TEST(image_after_truncate) {
    uint64_t g = 4242 + 31 * (uint64_t)_i;
    for (int trial = 0; trial < 10; trial++) {
        int kind = (_i + trial) % NKINDS, T = 200 + (int)below(&g, 3000);
        uint32_t H = trial % 2 ? 500 : (uint32_t)T, cm = trial % 3 ? 1 + below(&g, 6) : 32;
        uint8_t *q = malloc((size_t)T), *k = malloc((size_t)T), *v = malloc((size_t)T);
        int16_t *vo = malloc((size_t)T * 2);
        int32_t *de = malloc((size_t)T * 4);
        gen(&g, kind, T, q, k, v);
        rosa__route r, *rp = &r;
        rosa__route_init(&r);
        r.cell_min = cm;
        rosa__route_set_horizon(&r, H);
        feed(&g, &rp, 1, trial % 2, T, q, k, v, vo, de);
        int lo = T - (int)H < 0 ? 0 : T - (int)H;
        for (int t = T; t > lo;) {
            t -= 1 + (int)below(&g, below(&g, 2) ? 3 : 200);
            if (t < lo) t = lo;
            ck_assert_int_eq(rosa__route_truncate(&r, t), 0);
            rosa__route f;
            fresh(&f, cm, t, q, k, v, vo, de);
            assert_same(&r, &f);
            rosa__route_free(&f);
        }
        ck_assert_int_eq(rosa__route_can_truncate(&r, lo - 1), lo ? ROSA_ERR_LIMIT : ROSA_ERR_INVALID);
        rosa__route_free(&r);
        free(q); free(k); free(v); free(vo); free(de);
    }
}
END_TEST

/* Many cycles of: feed a random stretch, truncate a random way back within the log.  The
 * route must always equal a fresh route fed the effective history. */
START_TEST(repeated_cycles) {
    uint64_t g = 777 + (uint64_t)_i;
    const int MAXT = 12000;
    uint8_t *hq = malloc(MAXT), *hk = malloc(MAXT), *hv = malloc(MAXT);
    int16_t *vo = malloc(MAXT * 2), *vf = malloc(MAXT * 2);
    int32_t *de = malloc(MAXT * 4), *df = malloc(MAXT * 4);
    for (int trial = 0; trial < 3; trial++) {
        int kind = (_i + trial) % NKINDS;
        uint32_t H = trial == 0 ? 64 : 300, cm = 1 + below(&g, 5);
        rosa__route r, *rp = &r;
        rosa__route_init(&r);
        r.cell_min = cm;
        rosa__route_set_horizon(&r, H);
        int len = 0;
        for (int cyc = 0; cyc < 30 && len < MAXT - 600; cyc++) {
            int c = 1 + (int)below(&g, 500);
            gen(&g, kind, c, hq + len, hk + len, hv + len);
            feed(&g, &rp, 1, cyc % 2, c, hq + len, hk + len, hv + len, vo + len, de + len);
            rosa__route f;
            fresh(&f, cm, len + c, hq, hk, hv, vf, df);
            ck_assert_mem_eq(vo + len, vf + len, (size_t)c * 2);
            ck_assert_mem_eq(de + len, df + len, (size_t)c * 4);
            rosa__route_free(&f);
            len += c;
            int avail = len < (int)H ? len : (int)H;
            /* the log covers what was fed since... at most H steps, fewer right after a truncate */
            int back = (int)below(&g, (unsigned)avail + 1);
            int e = rosa__route_truncate(&r, len - back);
            if (e == ROSA_ERR_LIMIT) { /* past what the log still holds: nothing changed */
                fresh(&f, cm, len, hq, hk, hv, vf, df);
                assert_same(&r, &f);
                rosa__route_free(&f);
                continue;
            }
            ck_assert_int_eq(e, 0);
            len -= back;
            fresh(&f, cm, len, hq, hk, hv, vf, df);
            assert_same(&r, &f);
            rosa__route_free(&f);
        }
        rosa__route_free(&r);
    }
    free(hq); free(hk); free(hv); free(vo); free(vf); free(de); free(df);
}
END_TEST

/* Past the horizon: ROSA_ERR_LIMIT, nothing changes, and the route goes on correctly.  Bad t
 * and failed routes: ROSA_ERR_INVALID.  t == r->t: a no-op. */
START_TEST(limits_and_errors) {
    uint64_t g = 99;
    const int T = 3000, H = 100;
    uint8_t q[3500], k[3500], v[3500];
    int16_t vo[3500], vf[3500];
    int32_t de[3500], df[3500];
    gen(&g, K_UNIFORM16, 3500, q, k, v);
    rosa__route r, c, f;
    rosa__route_init(&r);
    rosa__route_init(&c);
    rosa__route_set_horizon(&r, H);
    ck_assert_int_eq(rosa__route_can_truncate(&r, 0), 0); /* t == r->t == 0 */
    ck_assert_int_eq(rosa__route_truncate(&r, 0), 0);
    ck_assert_int_eq(rosa__route_run(&r, T, q, k, v, 1, vo, de), 0);
    ck_assert_int_eq(rosa__route_copy(&c, &r), 0); /* the image before the refused truncates */
    ck_assert_int_eq(rosa__route_can_truncate(&r, T - H), 0);
    ck_assert_int_eq(rosa__route_can_truncate(&r, T - H - 1), ROSA_ERR_LIMIT);
    ck_assert_int_eq(rosa__route_truncate(&r, T - H - 1), ROSA_ERR_LIMIT);
    ck_assert_int_eq(rosa__route_truncate(&r, 0), ROSA_ERR_LIMIT);
    ck_assert_int_eq(rosa__route_truncate(&r, T + 1), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa__route_truncate(&r, -1), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa__route_truncate(&r, T), 0);
    assert_same(&r, &c);
    ck_assert_int_eq(rosa__route_t(&r), T);
    /* still continues like a fresh route, and can still go back H steps */
    ck_assert_int_eq(rosa__route_run(&r, 500, q + T, k + T, v + T, 1, vo + T, de + T), 0);
    fresh(&f, 32, T + 500, q, k, v, vf, df);
    ck_assert_mem_eq(vo + T, vf + T, 500 * 2);
    ck_assert_mem_eq(de + T, df + T, 500 * 4);
    ck_assert_int_eq(rosa__route_truncate(&r, T + 500 - H), 0);
    rosa__route_free(&f);
    fresh(&f, 32, T + 500 - H, q, k, v, vf, df);
    assert_same(&r, &f);
    rosa__route_free(&f);
    /* a failed route: INVALID (the cap also counts the log) */
    rosa__route b;
    rosa__route_init(&b);
    rosa__route_set_horizon(&b, 2048);
    rosa__route_set_max_bytes(&b, 20000);
    int e = rosa__route_run(&b, T, q, k, v, 1, vo, de);
    ck_assert_int_eq(e, ROSA_ERR_LIMIT);
    ck_assert_int_eq(rosa__route_can_truncate(&b, 0), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa__route_truncate(&b, rosa__route_t(&b)), ROSA_ERR_INVALID);
    rosa__route_free(&b);
    rosa__route_free(&r);
    rosa__route_free(&c);
}
END_TEST

/* rosa__routes_truncate is all or nothing: when one route's log does not reach t, no route
 * changes.  A route failing inside a grouped call leaves the others valid and truncatable. */
START_TEST(route_set_and_failures) {
    uint64_t g = 31337;
    enum { N = 3, T = 1500 };
    uint8_t q[T * N], k[T * N], v[T * N], cq[T], ck[T], cv[T];
    int16_t vo[T * N], vf[T];
    int32_t de[T * N], df[T];
    gen(&g, K_UNIFORM16, T * N, q, k, v);
    rosa__routes rs, cp;
    ck_assert_int_eq(rosa__routes_new(&rs, N, 0), 0);
    ck_assert_int_eq(rosa__routes_new(&cp, N, 0), 0);
    rosa__routes_set_horizon(&rs, 100);
    rosa__route *ptr[N] = {&rs.r[0], &rs.r[1], &rs.r[2]};
    ck_assert_int_eq(rosa__routes_run(ptr, N, 1000, q, k, v, N, 1, vo, de), 0);
    ck_assert_uint_gt(rosa__routes_undo_bytes(&rs), 0);
    rosa__route_set_horizon(&rs.r[1], 100); /* route 1's log is gone */
    ck_assert_int_eq(rosa__routes_copy(&cp, &rs), 0);
    ck_assert_int_eq(rosa__routes_truncate(&rs, 950), ROSA_ERR_LIMIT);
    for (int i = 0; i < N; i++) assert_same(&rs.r[i], &cp.r[i]);
    ck_assert_int_eq(rosa__routes_truncate(&rs, 1000), 0);
    /* a grouped call in which route 1 fails (its cap) */
    rosa__route_set_max_bytes(&rs.r[1], rosa__route_bytes(&rs.r[1]) + 64);
    ck_assert_int_ne(rosa__routes_run(ptr, N, 500, q + 1000 * N, k + 1000 * N, v + 1000 * N, N, 1, vo, de), 0);
    ck_assert_int_eq(rosa__route_can_truncate(&rs.r[1], 900), ROSA_ERR_INVALID);
    for (int i = 0; i < N; i += 2) {
        int64_t ti = rosa__route_t(&rs.r[i]);
        ck_assert_int_ge(ti, 1000);
        ck_assert_int_eq(rosa__route_truncate(&rs.r[i], ti - 90), 0);
        for (int s = 0; s < T; s++) {
            cq[s] = q[s * N + i];
            ck[s] = k[s * N + i];
            cv[s] = v[s * N + i];
        }
        rosa__route f;
        fresh(&f, 32, (int)ti - 90, cq, ck, cv, vf, df);
        assert_same(&rs.r[i], &f);
        rosa__route_free(&f);
    }
    rosa__routes_free(&rs);
    rosa__routes_free(&cp);
}
END_TEST

/* Horizon 0 keeps no log; set_horizon drops the log; a copy and a freed route keep the
 * horizon with an empty log; route_bytes counts the log. */
START_TEST(horizon_bookkeeping) {
    uint64_t g = 5;
    uint8_t q[2000], k[2000], v[2000];
    int16_t vo[2000];
    int32_t de[2000];
    gen(&g, K_LOW, 2000, q, k, v);
    rosa__route r0, r1, c;
    rosa__route_init(&r0);
    rosa__route_init(&r1);
    rosa__route_init(&c);
    rosa__route_set_horizon(&r1, 64);
    ck_assert_int_eq(rosa__route_run(&r0, 1500, q, k, v, 1, vo, de), 0);
    ck_assert_int_eq(rosa__route_run(&r1, 1500, q, k, v, 1, vo, de), 0);
    ck_assert_uint_eq(rosa__route_undo_bytes(&r0), 0);
    ck_assert_ptr_null(r0.undo);
    ck_assert_int_eq(rosa__route_can_truncate(&r0, 1499), ROSA_ERR_LIMIT);
    ck_assert_uint_gt(rosa__route_undo_bytes(&r1), 0);
    ck_assert_uint_eq(rosa__route_bytes(&r1), rosa__route_bytes(&r0) + rosa__route_undo_bytes(&r1));
    ck_assert_int_eq(rosa__route_can_truncate(&r1, 1500 - 64), 0);
    /* a copy: same horizon, empty log, which then covers the steps after the copy */
    ck_assert_int_eq(rosa__route_copy(&c, &r1), 0);
    ck_assert_uint_eq(c.horizon, 64);
    ck_assert_uint_eq(rosa__route_undo_bytes(&c), 0);
    ck_assert_int_eq(rosa__route_can_truncate(&c, 1499), ROSA_ERR_LIMIT);
    ck_assert_int_eq(rosa__route_run(&c, 10, q + 1500, k + 1500, v + 1500, 1, vo, de), 0);
    ck_assert_int_eq(rosa__route_can_truncate(&c, 1500), 0);
    ck_assert_int_eq(rosa__route_can_truncate(&c, 1499), ROSA_ERR_LIMIT);
    /* setting the horizon drops the log */
    rosa__route_set_horizon(&r1, 64);
    ck_assert_uint_eq(rosa__route_undo_bytes(&r1), 0);
    ck_assert_int_eq(rosa__route_can_truncate(&r1, 1499), ROSA_ERR_LIMIT);
    /* a freed route keeps its horizon */
    rosa__route_free(&r1);
    ck_assert_uint_eq(r1.horizon, 64);
    ck_assert_int_eq(rosa__route_run(&r1, 100, q, k, v, 1, vo, de), 0);
    ck_assert_int_eq(rosa__route_truncate(&r1, 36), 0);
    rosa__route f;
    fresh(&f, 32, 36, q, k, v, vo, de);
    assert_same(&r1, &f);
    rosa__route_free(&f);
    rosa__route_set_horizon(&r1, 0xFFFFFFFFu);
    ck_assert_uint_eq(r1.horizon, ROSA__MAX_HORIZON);
    rosa__route_free(&r0);
    rosa__route_free(&r1);
    rosa__route_free(&c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rosa_undo");
    TCase *tc = tcase_create("undo");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, truncate_matches_fresh, 0, 4);
    tcase_add_loop_test(tc, image_after_truncate, 0, 2);
    tcase_add_loop_test(tc, repeated_cycles, 0, 2);
    tcase_add_test(tc, limits_and_errors);
    tcase_add_test(tc, route_set_and_failures);
    tcase_add_test(tc, horizon_bookkeeping);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
