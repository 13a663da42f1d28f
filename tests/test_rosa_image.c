/* test_rosa_image.c: a route's state as data (engine/rosa/rosa_sam_image.c), the base of
 * rosa_session_fork and session files.
 *
 * - A copy continues exactly like its original (same vout and dest, step by step), on the C
 *   heap and on a huge-page arena, over streams that make clones, extra edges, dense blocks and
 *   last_end cells; a copy fed other inputs equals a fresh route fed the same history; freeing
 *   the original first leaves the copy whole (ASan sees any shared memory).
 * - Headers survive pack/unpack, and rosa__route_check_hdr refuses every out-of-range field. */
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

/* q, k, v symbols of T steps: alphabet a, or (periodic) keys with a short period and rare
 * mutations, which build long suffix chains and so last_end cells. */
static void gen(uint64_t *g, int kind, int a, int T, uint8_t *q, uint8_t *k, uint8_t *v) {
    int period = 2 + (int)(rng(g) % 5);
    for (int t = 0; t < T; t++) {
        if (kind == 1 && rng(g) % 50) {
            k[t] = (uint8_t)((t % period) % a);
            q[t] = (uint8_t)(((t + 1) % period) % a);
        } else {
            k[t] = (uint8_t)(rng(g) % (unsigned)a);
            q[t] = (uint8_t)(rng(g) % (unsigned)a);
        }
        v[t] = (uint8_t)(rng(g) % (unsigned)a);
    }
}

static void run_ok(rosa__route *r, int T, const uint8_t *q, const uint8_t *k, const uint8_t *v, int16_t *vo, int32_t *de) {
    ck_assert_int_eq(rosa__route_run(r, T, q, k, v, 1, vo, de), 0);
}

START_TEST(copy_continues_like_original) {
    static const int alph[] = {2, 4, 16, 256};
    uint64_t g = 99 + (uint64_t)_i;
    for (int trial = 0; trial < 24; trial++) {
        int a = alph[trial % 4], kind = (trial / 4) % 2, huge = (trial / 8) % 2;
        int T1 = 1 + (int)(rng(&g) % 6000), T2 = 1 + (int)(rng(&g) % 3000);
        if (trial % 8 == 7) T1 = 0; /* a route that has seen nothing */
        uint32_t cell_min = trial % 3 ? 1 + (uint32_t)(rng(&g) % 8) : 32;
        size_t T = (size_t)T1 + T2;
        uint8_t *q = malloc(T), *k = malloc(T), *v = malloc(T), *q2 = malloc(T2), *k2 = malloc(T2), *v2 = malloc(T2);
        int16_t *vo = malloc(T * 2), *vo2 = malloc(T * 2), *vo3 = malloc(T * 2);
        int32_t *de = malloc(T * 4), *de2 = malloc(T * 4), *de3 = malloc(T * 4);
        gen(&g, kind, a, (int)T, q, k, v);
        gen(&g, kind, a, T2, q2, k2, v2);
        rosa__routes orig, c1, c2, ref;
        ck_assert_int_eq(rosa__routes_new(&orig, 1, huge), 0);
        ck_assert_int_eq(rosa__routes_new(&c1, 1, huge), 0);
        ck_assert_int_eq(rosa__routes_new(&c2, 1, !huge), 0);
        ck_assert_int_eq(rosa__routes_new(&ref, 1, huge), 0);
        orig.r[0].cell_min = ref.r[0].cell_min = cell_min;
        if (T1) run_ok(&orig.r[0], T1, q, k, v, vo, de);
        ck_assert_int_eq(rosa__routes_copy(&c1, &orig), 0);
        ck_assert_int_eq(rosa__routes_copy(&c2, &orig), 0);
        ck_assert_int_eq(rosa__route_nruns(&c1.r[0]), rosa__route_nruns(&orig.r[0]));
        ck_assert_int_eq(rosa__route_nstates(&c1.r[0]), rosa__route_nstates(&orig.r[0]));
        ck_assert_int_eq(rosa__route_t(&c1.r[0]), T1);
        /* the same inputs: the same outputs */
        run_ok(&orig.r[0], T2, q + T1, k + T1, v + T1, vo + T1, de + T1);
        run_ok(&c1.r[0], T2, q + T1, k + T1, v + T1, vo2, de2);
        ck_assert_mem_eq(vo + T1, vo2, (size_t)T2 * 2);
        ck_assert_mem_eq(de + T1, de2, (size_t)T2 * 4);
        /* other inputs, after the original is gone: a fresh route with that history */
        rosa__routes_free(&orig);
        if (T1) run_ok(&ref.r[0], T1, q, k, v, vo3, de3);
        run_ok(&ref.r[0], T2, q2, k2, v2, vo3, de3);
        run_ok(&c2.r[0], T2, q2, k2, v2, vo2, de2);
        ck_assert_mem_eq(vo3, vo2, (size_t)T2 * 2);
        ck_assert_mem_eq(de3, de2, (size_t)T2 * 4);
        ck_assert_int_eq(rosa__route_nstates(&c2.r[0]), rosa__route_nstates(&ref.r[0]));
        rosa__routes_free(&c1);
        rosa__routes_free(&c2);
        rosa__routes_free(&ref);
        free(q); free(k); free(v); free(q2); free(k2); free(v2);
        free(vo); free(vo2); free(vo3); free(de); free(de2); free(de3);
    }
}
END_TEST

/* A failed route is not copied. */
START_TEST(failed_route_refused) {
    rosa__routes a, b;
    ck_assert_int_eq(rosa__routes_new(&a, 1, 0), 0);
    ck_assert_int_eq(rosa__routes_new(&b, 1, 0), 0);
    rosa__route_set_max_bytes(&a.r[0], 64);
    uint8_t s[512];
    for (int i = 0; i < 512; i++) s[i] = (uint8_t)(i * 7 % 251);
    int16_t vo[512];
    ck_assert_int_ne(rosa__route_run(&a.r[0], 512, s, s, s, 1, vo, NULL), 0);
    ck_assert_int_eq(rosa__routes_copy(&b, &a), ROSA_ERR_INVALID);
    rosa__routes_free(&a);
    rosa__routes_free(&b);
}
END_TEST

START_TEST(header_checks) {
    rosa__route r;
    rosa__route_init(&r);
    uint8_t q[3000], k[3000], v[3000];
    uint64_t g = 5;
    gen(&g, 0, 4, 3000, q, k, v);
    int16_t vo[3000];
    ck_assert_int_eq(rosa__route_run(&r, 3000, q, k, v, 1, vo, NULL), 0);
    rosa__route_hdr h, h2;
    ck_assert_int_eq(rosa__route_get_hdr(&r, &h), 0);
    ck_assert_int_eq(rosa__route_check_hdr(&h), 0);
    ck_assert_uint_gt(h.nruns, 64); /* more than one psample entry */
    uint32_t w[ROSA__ROUTE_HDR_WORDS];
    rosa__route_hdr_pack(&h, w);
    memset(&h2, 0xAB, sizeof h2);
    rosa__route_hdr_unpack(w, &h2);
    ck_assert_int_eq(rosa__route_check_hdr(&h2), 0);
    uint32_t w2[ROSA__ROUTE_HDR_WORDS];
    rosa__route_hdr_pack(&h2, w2);
    ck_assert_mem_eq(w, w2, sizeof w);
    /* each field out of range, alone */
    struct { int word; uint32_t val; } bad[] = {
        {0, 1},                 /* nst: below the root's record */
        {0, ROSA__NONE + 1},    /* nst: ids would not fit */
        {1, ROSA__OFF_MASK + 1},/* npool */
        {2, 3},                 /* capx: not a power of two */
        {3, h.capx / 2 + 1},    /* nx: map over half full */
        {4, h.nsample + 1},     /* nsample: not (nruns >> 6) + 1 */
        {5, 0xFFFFFF},          /* ncells: ids would not fit */
        {6, ROSA__MAX_RUNS + 1},/* nruns */
        {7, h.nst},             /* last: past the states */
        {8, h.nst + 1},         /* nclones */
        {9, h.npool},           /* rootx: past the pool */
        {10, h.npool + 5},      /* freel */
        {13, 0},                /* kd_log */
        {13, 9},
        {15, h.nst},            /* cursor */
        {16, 2},                /* moved */
        {17, 256},              /* prev_k */
        {19, 300},              /* csym */
        {20, 0}, {21, 1},       /* t: below nruns, then past 2^31 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint32_t wb[ROSA__ROUTE_HDR_WORDS];
        memcpy(wb, w, sizeof w);
        wb[bad[i].word] = bad[i].val;
        rosa__route_hdr hb;
        rosa__route_hdr_unpack(wb, &hb);
        ck_assert_msg(rosa__route_check_hdr(&hb) == ROSA_ERR_FORMAT, "bad field %zu (word %d = %u) accepted", i,
                      bad[i].word, bad[i].val);
    }
    /* an empty route: counts must all be zero */
    rosa__route e;
    rosa__route_init(&e);
    ck_assert_int_eq(rosa__route_get_hdr(&e, &h), 0);
    ck_assert_int_eq(rosa__route_check_hdr(&h), 0);
    h.nruns = 1;
    ck_assert_int_eq(rosa__route_check_hdr(&h), ROSA_ERR_FORMAT);
    rosa__route_free(&r);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rosa_image");
    TCase *tc = tcase_create("image");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, copy_continues_like_original, 0, 2);
    tcase_add_test(tc, failed_route_refused);
    tcase_add_test(tc, header_checks);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
