/* test_cuda_kernels.c: every CUDA kernel against its CPU reference (kernels/ref_kernels.c) on
 * seeded random input, in f32 and bf16 outputs, with an absolute + relative tolerance; the
 * first mismatches are printed.  Exits 77 (skipped) when the machine has no CUDA device. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>

#include "model/rope.h"
#include "rosa_cuda.h"
#include "testutil.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return (uint32_t)((rng * 2685821657736338717ull) >> 32);
}
static float frand(void) { return (float)((int32_t)rnd()) * (1.0f / 2147483648.0f); } /* [-1, 1) */

static float *rand_vec(size_t n, float scale) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = frand() * scale;
    return v;
}

static void *dup_dev(const void *h, size_t bytes) {
    void *d = NULL;
    ck_assert_int_eq(cudaMalloc(&d, bytes ? bytes : 1), cudaSuccess);
    if (h && bytes) ck_assert_int_eq(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    return d;
}

static void *get_dev(const void *d, size_t bytes) {
    void *h = malloc(bytes ? bytes : 1);
    ck_assert_int_eq(cudaDeviceSynchronize(), cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
}

/* device output of dtype dt -> floats */
static float *get_dev_f(const void *d, int dt, size_t n) {
    void *raw = get_dev(d, n * rc_dtype_size(dt));
    if (dt == RC_F32) return raw;
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = rc_ref_bf16_to_f32(((uint16_t *)raw)[i]);
    free(raw);
    return f;
}

/* |got - want| <= atol + rtol |want| everywhere; prints the first mismatches */
static void compare(const char *what, const float *got, const float *want, size_t n, float atol, float rtol) {
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= atol + rtol * fabs(want[i]))) {
            if (bad < 5) fprintf(stderr, "%s: [%zu] got %.7g want %.7g\n", what, i, got[i], want[i]);
            bad++;
        }
        if (d > worst) worst = d;
    }
    ck_assert_msg(bad == 0, "%s: %d of %zu values out of tolerance (max |diff| %g)", what, bad, n, worst);
}

static float tol_of(int dt) { return dt == RC_BF16 ? 1.0f / 128 : 2e-5f; }

START_TEST(convert_and_embed) {
    size_t n = 100003;
    float *x = rand_vec(n, 10.0f);
    float *dx = dup_dev(x, n * 4);
    uint16_t *db = dup_dev(NULL, n * 2);
    ck_assert_int_eq(rc_convert(db, RC_BF16, dx, RC_F32, n, 0), 0);
    uint16_t *b = get_dev(db, n * 2);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += b[i] != rc_ref_f32_to_bf16(x[i]);
    ck_assert_int_eq(bad, 0);
    float *back = dup_dev(NULL, n * 4);
    ck_assert_int_eq(rc_convert(back, RC_F32, db, RC_BF16, n, 0), 0);
    float *f = get_dev(back, n * 4), *want = malloc(n * 4);
    for (size_t i = 0; i < n; i++) want[i] = rc_ref_bf16_to_f32(b[i]);
    compare("bf16->f32", f, want, n, 0, 0);
    /* embedding gather from a bf16 table */
    int V = 1000, C = 96, N = 37;
    int32_t tok[37];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)(rnd() % V);
    int32_t *dtok = dup_dev(tok, sizeof tok);
    float *dout = dup_dev(NULL, (size_t)N * C * 4);
    ck_assert_int_eq(rc_embed(dout, db, RC_BF16, dtok, N, C, V, 0), 0);
    float *out = get_dev(dout, (size_t)N * C * 4), *ref = malloc((size_t)N * C * 4);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) ref[i * C + c] = rc_ref_bf16_to_f32(b[(size_t)tok[i] * C + c]);
    compare("embed bf16", out, ref, (size_t)N * C, 0, 0);
    cudaFree(dx); cudaFree(db); cudaFree(back); cudaFree(dtok); cudaFree(dout);
    free(x); free(b); free(f); free(want); free(out); free(ref);
}
END_TEST

START_TEST(rmsnorm_fused) {
    int dt = _i, N = 19, C = 1000;
    float eps = 1e-6f;
    float *x = rand_vec((size_t)N * C, 3.0f), *add = rand_vec((size_t)N * C, 1.0f), *w = rand_vec(C, 1.0f);
    float *dx = dup_dev(x, (size_t)N * C * 4), *dadd = dup_dev(add, (size_t)N * C * 4), *dw = dup_dev(w, C * 4);
    void *dout = dup_dev(NULL, (size_t)N * C * 4);
    ck_assert_int_eq(rc_rmsnorm(dout, dt, dx, dadd, dw, NULL, N, C, eps, 0), 0);
    float *ref = malloc((size_t)N * C * 4);
    rc_ref_rmsnorm(ref, x, add, w, NULL, N, C, eps);
    float *out = get_dev_f(dout, dt, (size_t)N * C), *xs = get_dev(dx, (size_t)N * C * 4);
    compare("rmsnorm out", out, ref, (size_t)N * C, 1e-6f, tol_of(dt));
    compare("rmsnorm residual", xs, x, (size_t)N * C, 0, 1e-7f);
    free(out);
    /* gathered rows (the final norm of the last row of each sequence) */
    int32_t rows[3] = {18, 0, 7};
    int32_t *drows = dup_dev(rows, sizeof rows);
    ck_assert_int_eq(rc_rmsnorm(dout, dt, dx, NULL, dw, drows, 3, C, eps, 0), 0);
    rc_ref_rmsnorm(ref, x, NULL, w, rows, 3, C, eps);
    out = get_dev_f(dout, dt, (size_t)3 * C);
    compare("rmsnorm rows", out, ref, (size_t)3 * C, 1e-6f, tol_of(dt));
    free(out);
    /* pre_attn mix */
    float *alpha = rand_vec(C, 0.5f);
    for (int c = 0; c < C; c++) alpha[c] = 0.5f + alpha[c];
    float *dal = dup_dev(alpha, C * 4);
    ck_assert_int_eq(rc_mix_rmsnorm(dout, dt, dx, dadd, dal, dw, N, C, eps, 0), 0);
    rc_ref_mix_rmsnorm(ref, x, add, alpha, w, N, C, eps);
    out = get_dev_f(dout, dt, (size_t)N * C);
    compare("mix rmsnorm", out, ref, (size_t)N * C, 1e-6f, tol_of(dt));
    cudaFree(dx); cudaFree(dadd); cudaFree(dw); cudaFree(dout); cudaFree(drows); cudaFree(dal);
    free(x); free(add); free(w); free(ref); free(out); free(xs); free(alpha);
}
END_TEST

START_TEST(qk_norm_rope) {
    int dt = _i, N = 13, Hq = 16, Hkv = 8, D = 128;
    float eps = 1e-6f;
    size_t nq = (size_t)N * Hq * D, nk = (size_t)N * Hkv * D;
    float *q = rand_vec(nq, 2.0f), *k = rand_vec(nk, 2.0f), *v = rand_vec(nk, 2.0f);
    float *qn = rand_vec(D, 1.0f), *kn = rand_vec(D, 1.0f), *inv = malloc(D / 2 * 4), scale;
    /* yarn frequencies and attention factor, as a model gets them (model/rope.c) */
    rosa__rope yarn = {.type = ROSA_ROPE_YARN, .theta = 1e6, .factor = 4, .original_max_pos = 32768,
                       .beta_fast = 32, .beta_slow = 1, .truncate = 1, .attention_factor = 1.1386294361119890};
    rosa__rope_inv_freq(&yarn, D, inv, &scale);
    ck_assert(scale > 1.1f);
    int32_t pos[13];
    for (int i = 0; i < N; i++) pos[i] = (int32_t)(rnd() % 200000);
    float *dq = dup_dev(q, nq * 4), *dk = dup_dev(k, nk * 4), *dv = dup_dev(v, nk * 4);
    float *dqn = dup_dev(qn, D * 4), *dkn = dup_dev(kn, D * 4), *dinv = dup_dev(inv, D / 2 * 4);
    int32_t *dpos = dup_dev(pos, sizeof pos);
    void *dko = dup_dev(NULL, nk * 4), *dvo = dup_dev(NULL, nk * 4);
    ck_assert_int_eq(rc_qk_norm_rope(dq, dk, dv, dko, dvo, dt, dqn, dkn, dinv, scale, dpos, N, Hq, Hkv, D, eps, 0), 0);
    rc_ref_qk_norm_rope(q, k, qn, kn, inv, scale, pos, N, Hq, Hkv, D, eps);
    float *gq = get_dev(dq, nq * 4), *gk = get_dev_f(dko, dt, nk), *gv = get_dev_f(dvo, dt, nk);
    compare("q norm+rope", gq, q, nq, 1e-5f, 1e-4f);
    compare("k norm+rope", gk, k, nk, 1e-5f, dt == RC_BF16 ? 1.0f / 128 : 1e-4f);
    compare("v copy", gv, v, nk, 0, tol_of(dt));
    cudaFree(dq); cudaFree(dk); cudaFree(dv); cudaFree(dqn); cudaFree(dkn); cudaFree(dinv); cudaFree(dpos);
    cudaFree(dko); cudaFree(dvo);
    free(q); free(k); free(v); free(qn); free(kn); free(inv); free(gq); free(gk); free(gv);
}
END_TEST

START_TEST(silu_gate) {
    int dt = _i;
    size_t n = 77777;
    float *g = rand_vec(n, 6.0f), *u = rand_vec(n, 2.0f), *ref = malloc(n * 4);
    float *dg = dup_dev(g, n * 4), *du = dup_dev(u, n * 4);
    void *dout = dup_dev(NULL, n * 4);
    ck_assert_int_eq(rc_silu_gate(dout, dt, dg, du, n, 0), 0);
    rc_ref_silu_gate(ref, g, u, n);
    float *out = get_dev_f(dout, dt, n);
    compare("silu gate", out, ref, n, 1e-6f, tol_of(dt));
    cudaFree(dg); cudaFree(du); cudaFree(dout);
    free(g); free(u); free(ref); free(out);
}
END_TEST

/* One attention case over a paged cache with shuffled pages, against rc_ref_attention.
 * decode: single-row tiles through rc_attention_decode (the streaming kernel), else the tiled
 * rc_attention with tiles of up to RC_ATTN_MAXQ / g rows, then the cache store is checked. */
static void attention_case(int W, int nsplit, int dt, int Hq, int Hkv, int D, const rc_seq *seqs, int NS, int decode) {
    int P = 16, g = Hq / Hkv, N = 0;
    for (int s = 0; s < NS; s++) N += seqs[s].ntok;
    size_t hd = (size_t)Hkv * D;
    enum { MAXS = 8, TABP = 24 };
    ck_assert_int_le(NS, MAXS);
    /* full histories in f32 (values rounded to the cache dtype), queries */
    float *keys[MAXS], *vals[MAXS];
    for (int s = 0; s < NS; s++) {
        int T = seqs[s].pos0 + seqs[s].ntok;
        ck_assert_int_le(W ? W : T, TABP * P);
        keys[s] = rand_vec((size_t)T * hd, 1.5f);
        vals[s] = rand_vec((size_t)T * hd, 1.0f);
        if (dt == RC_BF16)
            for (size_t i = 0; i < (size_t)T * hd; i++) {
                keys[s][i] = rc_ref_bf16_to_f32(rc_ref_f32_to_bf16(keys[s][i]));
                vals[s][i] = rc_ref_bf16_to_f32(rc_ref_f32_to_bf16(vals[s][i]));
            }
    }
    float *q = rand_vec((size_t)N * Hq * D, 1.5f);
    size_t es = rc_dtype_size(dt);
    /* this call's k/v rows and the cache pages, in dt */
    char *kr = malloc((size_t)N * hd * es), *vr = malloc((size_t)N * hd * es);
    int npages = MAXS * TABP;
    char *kp = calloc((size_t)npages * P * hd, es), *vp = calloc((size_t)npages * P * hd, es);
    int32_t perm[MAXS * TABP];
    for (int i = 0; i < npages; i++) perm[i] = i;
    for (int i = npages - 1; i > 0; i--) { int j = (int)(rnd() % (uint32_t)(i + 1)); int32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
    int32_t tabs[MAXS][TABP];
    int used = 0;
    #define PUT(buf, idx, val) do { if (dt == RC_F32) ((float *)(buf))[idx] = (val); else ((uint16_t *)(buf))[idx] = rc_ref_f32_to_bf16(val); } while (0)
    for (int s = 0; s < NS; s++) {
        for (int i = 0; i < TABP; i++) tabs[s][i] = perm[used++ % npages];
        for (int j = 0; j < seqs[s].pos0; j++) { /* cached positions (the last W for a ring) */
            if (W && j < seqs[s].pos0 - W) continue;
            int slot = W ? j % W : j;
            size_t base = ((size_t)tabs[s][slot / P] * P + slot % P) * hd;
            for (size_t e = 0; e < hd; e++) { PUT(kp, base + e, keys[s][(size_t)j * hd + e]); PUT(vp, base + e, vals[s][(size_t)j * hd + e]); }
        }
        for (int t = 0; t < seqs[s].ntok; t++)
            for (size_t e = 0; e < hd; e++) {
                size_t src = (size_t)(seqs[s].pos0 + t) * hd + e, dst = (size_t)(seqs[s].row0 + t) * hd + e;
                PUT(kr, dst, keys[s][src]);
                PUT(vr, dst, vals[s][src]);
            }
    }
    ck_assert_int_le(used, npages);
    rc_tile *tiles = malloc((size_t)N * sizeof *tiles);
    int ntiles = 0, qt = decode ? 1 : RC_ATTN_MAXQ / g, maxr = 0, max_ntok = 0;
    for (int s = 0; s < NS; s++) {
        if (seqs[s].ntok > max_ntok) max_ntok = seqs[s].ntok;
        for (int t0 = 0; t0 < seqs[s].ntok; t0 += qt) {
            int nr = seqs[s].ntok - t0 < qt ? seqs[s].ntok - t0 : qt;
            tiles[ntiles++] = (rc_tile){s, seqs[s].row0 + t0, nr, 0};
            if (nr > maxr) maxr = nr;
        }
    }
    int32_t *dtab[MAXS];
    for (int s = 0; s < NS; s++) dtab[s] = dup_dev(tabs[s], sizeof tabs[s]);
    void *dtabs = dup_dev(dtab, sizeof(int32_t *) * NS);
    rc_kv_layer kv = {.kpool = dup_dev(kp, (size_t)npages * P * hd * es), .vpool = dup_dev(vp, (size_t)npages * P * hd * es),
                      .tables = dtabs, .P = P, .W = W, .dt = dt};
    rc_attn_args a = {.q = dup_dev(q, (size_t)N * Hq * D * 4), .k = dup_dev(kr, (size_t)N * hd * es),
                      .v = dup_dev(vr, (size_t)N * hd * es), .out = dup_dev(NULL, (size_t)N * Hq * D * 4), .out_dt = RC_F32,
                      .kv = kv, .seqs = dup_dev(seqs, sizeof(rc_seq) * NS), .tiles = dup_dev(tiles, sizeof(rc_tile) * ntiles),
                      .ntiles = ntiles, .nsplit = nsplit, .max_tile_rows = maxr,
                      .part = dup_dev(NULL, (size_t)nsplit * N * Hq * (D + 2) * 4), .N = N, .Hq = Hq, .Hkv = Hkv, .D = D,
                      .scale = 1.0f / sqrtf((float)D)};
    char what[96];
    snprintf(what, sizeof what, "%s W=%d nsplit=%d %s Hq=%d Hkv=%d D=%d", decode ? "decode attention" : "attention", W,
             nsplit, dt == RC_BF16 ? "bf16" : "f32", Hq, Hkv, D);
    if (decode) {
        ck_assert_msg(rc_attention_decode_supported(&a), "%s: not supported", what);
        ck_assert_int_eq(rc_attention_decode(&a, 0), 0);
    } else {
        ck_assert_int_eq(rc_attention(&a, 0), 0);
    }
    float *out = get_dev(a.out, (size_t)N * Hq * D * 4), *ref = malloc((size_t)N * Hq * D * 4);
    const float *ck[MAXS], *cv[MAXS];
    for (int s = 0; s < NS; s++) { ck[s] = keys[s]; cv[s] = vals[s]; }
    rc_ref_attention(ref, q, ck, cv, seqs, NS, W, N, Hq, Hkv, D);
    compare(what, out, ref, (size_t)N * Hq * D, 2e-5f, 2e-4f);
    char *kp2 = NULL;
    if (!decode) {
        /* the store leaves each sequence's last W (or all) positions in their slots */
        ck_assert_int_eq(rc_kv_store(&kv, a.k, a.v, a.seqs, NS, max_ntok, Hkv, D, 0), 0);
        kp2 = get_dev(kv.kpool, (size_t)npages * P * hd * es);
        for (int s = 0; s < NS; s++) {
            int T = seqs[s].pos0 + seqs[s].ntok;
            for (int j = W && T > W ? T - W : 0; j < T; j++) {
                int slot = W ? j % W : j;
                size_t base = ((size_t)tabs[s][slot / P] * P + slot % P) * hd;
                for (size_t e = 0; e < hd; e++) {
                    float got = dt == RC_F32 ? ((float *)kp2)[base + e] : rc_ref_bf16_to_f32(((uint16_t *)kp2)[base + e]);
                    ck_assert_msg(got == keys[s][(size_t)j * hd + e], "kv_store seq %d pos %d", s, j);
                }
            }
        }
    }
    #undef PUT
    for (int s = 0; s < NS; s++) { free(keys[s]); free(vals[s]); cudaFree(dtab[s]); }
    cudaFree(dtabs); cudaFree(kv.kpool); cudaFree(kv.vpool); cudaFree((void *)a.q); cudaFree((void *)a.k);
    cudaFree((void *)a.v); cudaFree(a.out); cudaFree((void *)a.seqs); cudaFree((void *)a.tiles); cudaFree(a.part);
    free(q); free(kr); free(vr); free(kp); free(vp); free(out); free(ref); free(kp2); free(tiles);
}

/* Three sequences at different positions (prefill chunk, decode step, a chunk longer than the
 * window), global and windowed layers, one split and several; then the cache store. */
START_TEST(attention_paged) {
    int W = (int[]){0, 16, 64}[_i % 3], nsplit = _i < 3 ? 1 : 5, dt = _i % 2 ? RC_BF16 : RC_F32;
    rc_seq seqs[3] = {{0, 40, 0, 0}, {40, 1, 137, 0}, {41, 70, 203, 0}};
    attention_case(W, nsplit, dt, 6, 2, 64, seqs, 3, 0);
}
END_TEST

/* The streaming decode kernel: single-row tiles of decode steps at positions before, at and past
 * the window (the ring wraps), a sequence fed several rows in one call (its own keys), every
 * supported group size (1, 2, 4), head dims that give 1 or 2 chunks per lane and 2 to 32 lanes
 * per key, one split (the one-pass path) and several (the combine). */
START_TEST(attention_decode) {
    static const struct { int Hq, Hkv, D; } shapes[] = {{16, 8, 128}, {4, 4, 64}, {8, 2, 32}, {4, 2, 256}, {2, 1, 16}};
    int sh = _i % 5, dt = (_i / 5) % 2 ? RC_BF16 : RC_F32, nsplit = _i / 10 ? 3 : 1;
    rc_seq seqs[6] = {{0, 1, 0, 0}, {1, 1, 15, 0}, {2, 1, 16, 0}, {3, 1, 200, 0}, {4, 5, 61, 0}, {9, 1, 333, 0}};
    for (int w = 0; w < 3; w++) {
        int W = (int[]){0, 16, 100}[w];
        if (!W) seqs[5].pos0 = 300; /* a global layer's table holds 24 pages of 16 */
        attention_case(W, nsplit, dt, shapes[sh].Hq, shapes[sh].Hkv, shapes[sh].D, seqs, 6, 1);
        seqs[5].pos0 = 333;
    }
}
END_TEST

START_TEST(rosa_pack_inject) {
    int N = 33, M = (int[]){4, 2, 1, 8}[_i], R = 240 / M, C = R * M, dt = _i % 2 ? RC_BF16 : RC_F32;
    float *rq = rand_vec((size_t)N * C, 1), *rk = rand_vec((size_t)N * C, 1), *rv = rand_vec((size_t)N * C, 1);
    for (int i = 0; i < 50; i++) rq[rnd() % (N * C)] = 0.0f; /* exactly zero is bit 0 */
    float *drq = dup_dev(rq, (size_t)N * C * 4), *drk = dup_dev(rk, (size_t)N * C * 4), *drv = dup_dev(rv, (size_t)N * C * 4);
    uint8_t *dsym = dup_dev(NULL, (size_t)3 * N * R), *ref = malloc((size_t)3 * N * R);
    ck_assert_int_eq(rc_rosa_pack(dsym, drq, drk, drv, N, R, M, 0), 0);
    rc_ref_rosa_pack(ref, rq, rk, rv, N, R, M);
    uint8_t *sym = get_dev(dsym, (size_t)3 * N * R);
    ck_assert_mem_eq(sym, ref, (size_t)3 * N * R);
    int16_t *vs = malloc((size_t)N * R * 2);
    for (int i = 0; i < N * R; i++) vs[i] = (int16_t)((int)(rnd() % ((1u << M) + 1)) - 1); /* -1 = none */
    float *e0 = rand_vec(C, 1), *e1 = rand_vec(C, 1), *y = malloc((size_t)N * C * 4);
    int16_t *dvs = dup_dev(vs, (size_t)N * R * 2);
    float *de0 = dup_dev(e0, C * 4), *de1 = dup_dev(e1, C * 4);
    void *dy = dup_dev(NULL, (size_t)N * C * 4);
    ck_assert_int_eq(rc_rosa_inject(dy, dt, dvs, de0, de1, N, R, M, 0), 0);
    rc_ref_rosa_inject(y, vs, e0, e1, N, R, M);
    float *gy = get_dev_f(dy, dt, (size_t)N * C);
    compare("rosa inject", gy, y, (size_t)N * C, 0, dt == RC_BF16 ? 1.0f / 256 : 0);
    cudaFree(drq); cudaFree(drk); cudaFree(drv); cudaFree(dsym); cudaFree(dvs); cudaFree(de0); cudaFree(de1); cudaFree(dy);
    free(rq); free(rk); free(rv); free(ref); free(sym); free(vs); free(e0); free(e1); free(y); free(gy);
}
END_TEST

START_TEST(gemm_cublas) {
    int dt = _i, N = 7, rows = 300, cols = 520;
    float *x = rand_vec((size_t)N * cols, 1), *w = rand_vec((size_t)rows * cols, 1), *y0 = rand_vec((size_t)N * rows, 1);
    if (dt == RC_BF16) {
        for (size_t i = 0; i < (size_t)N * cols; i++) x[i] = rc_ref_bf16_to_f32(rc_ref_f32_to_bf16(x[i]));
        for (size_t i = 0; i < (size_t)rows * cols; i++) w[i] = rc_ref_bf16_to_f32(rc_ref_f32_to_bf16(w[i]));
    }
    float *dxf = dup_dev(x, (size_t)N * cols * 4), *dwf = dup_dev(w, (size_t)rows * cols * 4);
    void *dx = dxf, *dw = dwf;
    if (dt == RC_BF16) {
        dx = dup_dev(NULL, (size_t)N * cols * 2);
        dw = dup_dev(NULL, (size_t)rows * cols * 2);
        ck_assert_int_eq(rc_convert(dx, RC_BF16, dxf, RC_F32, (size_t)N * cols, 0), 0);
        ck_assert_int_eq(rc_convert(dw, RC_BF16, dwf, RC_F32, (size_t)rows * cols, 0), 0);
    }
    float *dy = dup_dev(y0, (size_t)N * rows * 4);
    cublasHandle_t h;
    ck_assert_int_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    ck_assert_int_eq(rc_gemm(h, dy, dx, dw, dt, N, rows, cols, 1.0f), 0); /* y += x W^T */
    float *ref = malloc((size_t)N * rows * 4);
    for (int t = 0; t < N; t++)
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < cols; c++) s += (double)x[(size_t)t * cols + c] * w[(size_t)r * cols + c];
            ref[(size_t)t * rows + r] = (float)(s + y0[(size_t)t * rows + r]);
        }
    float *y = get_dev(dy, (size_t)N * rows * 4);
    compare("gemm", y, ref, (size_t)N * rows, 1e-4f, 1e-4f);
    cublasDestroy(h);
    cudaFree(dxf); cudaFree(dwf); cudaFree(dy);
    if (dt == RC_BF16) { cudaFree(dx); cudaFree(dw); }
    free(x); free(w); free(y0); free(ref); free(y);
}
END_TEST

START_TEST(sampling) {
    int V = 5003, n = 9;
    float *lg = rand_vec((size_t)n * V, 6.0f);
    lg[3 * V + 17] = -INFINITY;
    lg[4 * V + 11] = lg[4 * V + 12] = 50.0f; /* a tie at the top: lowest id wins greedy */
    uint16_t *cnt = calloc(V, 2);
    uint8_t *seen = calloc(V, 1);
    for (int i = 0; i < 300; i++) { cnt[rnd() % V] += 1; seen[rnd() % V] = 1; }
    int32_t bid[3] = {5, 77, 5};
    float bval[3] = {3.0f, -100.0f, 1.5f};
    uint16_t *dcnt = dup_dev(cnt, (size_t)V * 2);
    uint8_t *dseen = dup_dev(seen, V);
    int32_t *dbid = dup_dev(bid, sizeof bid);
    float *dbval = dup_dev(bval, sizeof bval);
    rc_sample_params p[9], ph[9];
    for (int i = 0; i < n; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].temperature = 0.8f;
        p[i].top_p = 1.0f;
        p[i].repetition = 1.0f;
        p[i].u = (rnd() >> 8) * (1.0 / 16777216.0);
    }
    p[0].temperature = 0;                                    /* greedy */
    p[4].temperature = 0;                                    /* greedy with a tie */
    p[1].top_k = 40;
    p[2].top_p = 0.9f;
    p[3].min_p = 0.05f;
    p[5].top_k = 100; p[5].top_p = 0.7f; p[5].min_p = 0.01f;
    p[6].presence = 0.5f; p[6].frequency = 0.3f; p[6].repetition = 1.3f; p[6].gen_count = dcnt; p[6].seen = dseen;
    p[7].n_bias = 3; p[7].bias_ids = dbid; p[7].bias_vals = dbval; p[7].temperature = 0;
    p[8].temperature = 1.7f; p[8].top_k = 1;                /* top-1 sampling is greedy */
    memcpy(ph, p, sizeof p);
    float *dlg = dup_dev(lg, (size_t)n * V * 4), *dwork = dup_dev(NULL, (size_t)n * V * 4);
    rc_sample_params *dp = dup_dev(p, sizeof p);
    int32_t *dtok = dup_dev(NULL, n * 4);
    ck_assert_int_eq(rc_sample(dtok, dlg, dp, dwork, n, V, 0), 0);
    int32_t *tok = get_dev(dtok, n * 4);
    float *work = malloc((size_t)V * 4);
    for (int i = 0; i < n; i++) {
        int32_t want = rc_ref_sample(lg + (size_t)i * V, &ph[i], ph[i].gen_count ? cnt : NULL, ph[i].seen ? seen : NULL,
                                     ph[i].n_bias ? bid : NULL, ph[i].n_bias ? bval : NULL, work, V);
        ck_assert_msg(tok[i] == want, "sample row %d: gpu %d, reference %d", i, tok[i], want);
    }
    ck_assert_int_eq(tok[4], 11);
    cudaFree(dcnt); cudaFree(dseen); cudaFree(dbid); cudaFree(dbval); cudaFree(dlg); cudaFree(dwork); cudaFree(dp); cudaFree(dtok);
    free(lg); free(cnt); free(seen); free(tok); free(work);
}
END_TEST

/* preconditions are refused, not launched */
START_TEST(launch_checks) {
    rc_attn_args a = {.N = 1, .ntiles = 1, .D = 512, .Hq = 2, .Hkv = 1, .nsplit = 1, .max_tile_rows = 1};
    a.kv.P = 16;
    ck_assert_int_ne(rc_attention(&a, 0), 0);
    /* the decode kernel refuses what it does not cover (D = 20 splits into no 16-byte chunks;
     * 3 query heads per kv head; multi-row tiles) without launching */
    rc_attn_args d = {.N = 1, .ntiles = 1, .D = 20, .Hq = 2, .Hkv = 1, .nsplit = 1, .max_tile_rows = 1};
    d.kv.P = 16;
    d.kv.dt = RC_BF16;
    ck_assert_int_eq(rc_attention_decode_supported(&d), 0);
    ck_assert_int_eq(rc_attention_decode(&d, 0), (int)cudaErrorNotSupported);
    d.D = 64;
    ck_assert_int_eq(rc_attention_decode_supported(&d), 1);
    d.Hq = 3;
    ck_assert_int_eq(rc_attention_decode_supported(&d), 0);
    d.Hq = 2;
    d.max_tile_rows = 2;
    ck_assert_int_eq(rc_attention_decode_supported(&d), 0);
    ck_assert_int_ne(rc_rosa_pack(NULL, NULL, NULL, NULL, 1, 4, 9, 0), 0);
    ck_assert_int_ne(rc_qk_norm_rope(NULL, NULL, NULL, NULL, NULL, RC_F32, NULL, NULL, NULL, 1.0f, NULL, 1, 1, 1, 7, 1e-6f, 0), 0);
    ck_assert_int_eq(rc_silu_gate(NULL, RC_F32, NULL, NULL, 0, 0), 0); /* empty: nothing to do */
}
END_TEST

int main(void) {
    if (rc_device_count() < 1) {
        printf("test_cuda_kernels: no CUDA device: skipped\n");
        return 77;
    }
    Suite *s = suite_create("cuda_kernels");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, convert_and_embed);
    tcase_add_loop_test(tc, rmsnorm_fused, RC_F32, RC_BF16 + 1);
    tcase_add_loop_test(tc, qk_norm_rope, RC_F32, RC_BF16 + 1);
    tcase_add_loop_test(tc, silu_gate, RC_F32, RC_BF16 + 1);
    tcase_add_loop_test(tc, attention_paged, 0, 6);
    tcase_add_loop_test(tc, attention_decode, 0, 20);
    tcase_add_loop_test(tc, rosa_pack_inject, 0, 4);
    tcase_add_loop_test(tc, gemm_cublas, RC_F32, RC_BF16 + 1);
    tcase_add_test(tc, sampling);
    tcase_add_test(tc, launch_checks);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
