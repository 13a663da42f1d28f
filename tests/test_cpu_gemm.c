/* test_cpu_gemm.c: the CPU backend's blocked matrix product (engine/cpu/gemm_cpu.c) and the
 * attention kernels (exp, axpy, scale, the fused softmax block; its grouped-query form bit for
 * bit against it; the form over bf16 keys and values, read across a ring's wrap, bit for bit
 * against the float32 one on the widened rows) of every kernel set this CPU runs, against plain double
 * references: all three weight dtypes, shapes with tails in every dimension (rows of x, weight
 * rows, depth across panel boundaries), sub-ranges of output columns, and the promise that a
 * column's value does not depend on the range it was computed in; the AMX product against the
 * float32 one on the same bf16 values. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_kernels.h"
#include "cpu/gemm_cpu.h"
#include "testutil.h"

static uint16_t bf16(float f) { uint32_t u; memcpy(&u, &f, 4); return (uint16_t)(u >> 16); }
static float bf16f(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }

static float frand(void) { return (float)rand() / RAND_MAX * 2 - 1; }

/* y = x W^T for W stored as dt; reference in double over the weights as stored */
static void check_gemm(const rosa__kernels *k, rosa_dtype dt, int T, int N, int K) {
    size_t es = rosa__dtype_size(dt);
    void *W = malloc((size_t)N * K * es);
    float *Wf = malloc((size_t)N * K * sizeof *Wf);
    float *x = malloc((size_t)T * K * sizeof *x);
    float *y = malloc((size_t)T * N * sizeof *y), *y2 = malloc((size_t)T * N * sizeof *y2);
    float *pack = malloc(ROSA_GEMM_PACK_FLOATS * sizeof *pack);
    for (size_t i = 0; i < (size_t)N * K; i++) {
        float f = frand();
        if (dt == ROSA_DT_BF16) { ((uint16_t *)W)[i] = bf16(f); Wf[i] = bf16f(bf16(f)); }
        else if (dt == ROSA_DT_F16) {
            /* f16 with 10 exact mantissa bits: multiples of 1/1024 in (-1, 1) */
            float q = roundf(f * 1024) / 1024;
            uint16_t h = 0;
            if (q != 0) {
                int e;
                float m = frexpf(fabsf(q), &e); /* q = m 2^e, m in [0.5, 1) */
                uint32_t man = (uint32_t)lroundf((m * 2 - 1) * 1024);
                h = (uint16_t)((q < 0 ? 0x8000 : 0) | (uint32_t)(e - 1 + 15) << 10 | man);
            }
            ((uint16_t *)W)[i] = h;
            Wf[i] = rosa__half_to_float(h);
        } else { ((float *)W)[i] = f; Wf[i] = f; }
    }
    for (size_t i = 0; i < (size_t)T * K; i++) x[i] = frand();
    for (size_t i = 0; i < (size_t)T * N; i++) y[i] = y2[i] = 1234.5f; /* untouched outside n0..n1 */
    rosa__gemm(k, dt, W, N, K, x, T, y, 0, N, pack);
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            double ref = 0, mag = 0;
            for (int kk = 0; kk < K; kk++) {
                ref += (double)x[(size_t)t * K + kk] * Wf[(size_t)n * K + kk];
                mag += fabs((double)x[(size_t)t * K + kk] * Wf[(size_t)n * K + kk]);
            }
            double got = y[(size_t)t * N + n];
            if (fabs(got - ref) > 1e-5 * mag + 1e-6)
                ck_abort_msg("%s dt=%d T=%d N=%d K=%d: y[%d,%d] = %.7g, reference %.7g", k->name, dt,
                             T, N, K, t, n, got, ref);
        }
    /* the same columns computed in two ranges (split off a panel boundary) are bit-identical,
     * and columns outside a range are left alone */
    int cut = N / 3;
    rosa__gemm(k, dt, W, N, K, x, T, y2, cut, N, pack);
    for (int t = 0; t < T; t++)
        for (int n = 0; n < cut; n++) ck_assert_float_eq(y2[(size_t)t * N + n], 1234.5f);
    rosa__gemm(k, dt, W, N, K, x, T, y2, 0, cut, pack);
    ck_assert_mem_eq(y, y2, (size_t)T * N * sizeof *y);
    free(W); free(Wf); free(x); free(y); free(y2); free(pack);
}

static void gemm_all_shapes(const rosa__kernels *k) {
    static const int Ts[] = {1, 5, 13, 16, 37};
    static const int Ns[] = {1, 31, 32, 33, 100};
    static const int Ks[] = {1, 15, 16, 255, 256, 300, 528};
    srand(11);
    for (int dt = 0; dt < 3; dt++)
        for (size_t a = 0; a < sizeof Ts / sizeof *Ts; a++)
            for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
                for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++)
                    check_gemm(k, (rosa_dtype)dt, Ts[a], Ns[b], Ks[c]);
}

static void check_attention_helpers(const rosa__kernels *k) {
    enum { n = 301 };
    float x[n], y[n], y2[n];
    for (int i = 0; i < n; i++) x[i] = -90.0f + 90.0f * i / (n - 1); /* -90 .. 0 */
    x[3] = -200.0f;
    memcpy(y, x, sizeof x);
    k->exp_f32(y, n);
    for (int i = 0; i < n; i++) {
        double ref = exp((double)x[i]);
        if (x[i] < -87.3f) ck_assert_float_le(y[i], 1e-37f);
        else if (fabs(y[i] - ref) > 1e-6 * ref)
            ck_abort_msg("%s exp(%g) = %.9g, reference %.9g", k->name, x[i], y[i], ref);
    }
    for (int i = 0; i < n; i++) { x[i] = frand(); y[i] = y2[i] = frand(); }
    k->axpy_f32(0.37f, x, y, n);
    for (int i = 0; i < n; i++) ck_assert_double_eq_tol(y[i], y2[i] + 0.37 * x[i], 1e-6);
    memcpy(y2, y, sizeof y);
    k->scale_f32(y, -1.5f, n - 1); /* the last element stays */
    for (int i = 0; i < n - 1; i++) ck_assert_double_eq_tol(y[i], -1.5 * y2[i], 1e-6);
    ck_assert_float_eq(y[n - 1], y2[n - 1]);
}

/* attention over nkeys keys in blocks through att_block, against a double softmax; the later
 * blocks get larger scores, so the running maximum grows and earlier sums are rescaled */
static void check_att_block(const rosa__kernels *k, int D, int nkeys) {
    float *q = malloc(D * sizeof *q), *K = malloc((size_t)nkeys * D * sizeof *K);
    float *V = malloc((size_t)nkeys * D * sizeof *V), *acc = calloc(D, sizeof *acc);
    double *ref = calloc(D, sizeof *ref), *sc = malloc(nkeys * sizeof *sc);
    for (int d = 0; d < D; d++) q[d] = frand();
    for (int j = 0; j < nkeys; j++)
        for (int d = 0; d < D; d++) {
            K[(size_t)j * D + d] = frand() * (1.0f + 4.0f * j / nkeys);
            V[(size_t)j * D + d] = frand();
        }
    float scale = 1.0f / sqrtf((float)D), mx = -INFINITY, sum = 0;
    for (int j0 = 0; j0 < nkeys; j0 += ROSA_ATT_BLOCK) {
        int nb = nkeys - j0 < ROSA_ATT_BLOCK ? nkeys - j0 : ROSA_ATT_BLOCK;
        const float *kp[ROSA_ATT_BLOCK], *vp[ROSA_ATT_BLOCK];
        for (int b = 0; b < nb; b++) { kp[b] = K + (size_t)(j0 + b) * D; vp[b] = V + (size_t)(j0 + b) * D; }
        k->att_block(q, kp, vp, nb, D, scale, &mx, &sum, acc);
    }
    double m = -INFINITY, z = 0;
    for (int j = 0; j < nkeys; j++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)q[d] * K[(size_t)j * D + d];
        sc[j] = s * scale;
        if (sc[j] > m) m = sc[j];
    }
    for (int j = 0; j < nkeys; j++) {
        double p = exp(sc[j] - m);
        z += p;
        for (int d = 0; d < D; d++) ref[d] += p * V[(size_t)j * D + d];
    }
    for (int d = 0; d < D; d++)
        if (fabs(acc[d] / sum - ref[d] / z) > 2e-5)
            ck_abort_msg("%s att D=%d keys=%d: out[%d] = %.7g, reference %.7g", k->name, D, nkeys, d,
                         acc[d] / sum, ref[d] / z);
    ck_assert_double_eq_tol(mx, m, 1e-4);
    free(q); free(K); free(V); free(acc); free(ref); free(sc);
}

/* att_block_group over G heads gives each head bit for bit what att_block gives it alone (the
 * golden cases' exactness rests on it), over several blocks so the rescaling path runs too;
 * keys and values at a row stride of 8 heads, as in the cache */
static void check_att_group(const rosa__kernels *k, int D, int nkeys, int G) {
    int st = 8 * D;
    float *q = malloc((size_t)G * D * sizeof *q), *K = malloc((size_t)nkeys * st * sizeof *K);
    float *V = malloc((size_t)nkeys * st * sizeof *V);
    float *acc = calloc((size_t)G * D, sizeof *acc), *acc1 = calloc(D, sizeof *acc1);
    for (int i = 0; i < G * D; i++) q[i] = frand() * (1 + i % 3);
    for (size_t i = 0; i < (size_t)nkeys * st; i++) {
        K[i] = frand() * (1.0f + 4.0f * (float)(i / st) / nkeys);
        V[i] = frand();
    }
    float scale = 1.0f / sqrtf((float)D), mx[ROSA_ATT_GROUP], sum[ROSA_ATT_GROUP];
    for (int g = 0; g < G; g++) { mx[g] = -INFINITY; sum[g] = 0; }
    for (int j0 = 0; j0 < nkeys; j0 += ROSA_ATT_BLOCK) {
        int nb = nkeys - j0 < ROSA_ATT_BLOCK ? nkeys - j0 : ROSA_ATT_BLOCK;
        const float *kp[ROSA_ATT_BLOCK], *vp[ROSA_ATT_BLOCK];
        for (int b = 0; b < nb; b++) { kp[b] = K + (size_t)(j0 + b) * st; vp[b] = V + (size_t)(j0 + b) * st; }
        k->att_block_group(q, G, kp, vp, nb, D, scale, mx, sum, acc, NULL, NULL);
    }
    for (int g = 0; g < G; g++) {
        float m1 = -INFINITY, s1 = 0;
        memset(acc1, 0, (size_t)D * sizeof *acc1);
        for (int j0 = 0; j0 < nkeys; j0 += ROSA_ATT_BLOCK) {
            int nb = nkeys - j0 < ROSA_ATT_BLOCK ? nkeys - j0 : ROSA_ATT_BLOCK;
            const float *kp[ROSA_ATT_BLOCK], *vp[ROSA_ATT_BLOCK];
            for (int b = 0; b < nb; b++) { kp[b] = K + (size_t)(j0 + b) * st; vp[b] = V + (size_t)(j0 + b) * st; }
            k->att_block(q + (size_t)g * D, kp, vp, nb, D, scale, &m1, &s1, acc1);
        }
        ck_assert_msg(m1 == mx[g] && s1 == sum[g] && !memcmp(acc1, acc + (size_t)g * D, (size_t)D * sizeof *acc1),
                      "%s att group D=%d keys=%d G=%d: head %d differs from att_block", k->name, D, nkeys, G, g);
    }
    free(q); free(K); free(V); free(acc); free(acc1);
}

/* att_block_group with a key range per query (prefill tiles: rows of a tile end at different
 * keys, windowed rows start at different keys): each query gets bit for bit what a call for it
 * alone with its own range gives (so a row's attention does not depend on its tile), its result
 * is near a double softmax over exactly the keys of its ranges, and the key and value rows
 * outside every range - NaN here - are never read.  Blocks of 128 keys starting at multiples of
 * 16; f32 and bf16 rows. */
static void check_att_ranges(const rosa__kernels *k, int D, int nblocks, int G, int bf) {
    int nkeys = nblocks * ROSA_ATT_BLOCK;
    float *q = malloc((size_t)G * D * 4), *Kf = malloc((size_t)nkeys * D * 4), *Vf = malloc((size_t)nkeys * D * 4);
    uint16_t *K16 = malloc((size_t)nkeys * D * 2), *V16 = malloc((size_t)nkeys * D * 2);
    float *acc = calloc((size_t)G * D, 4), *acc1 = calloc((size_t)D, 4);
    int (*lo)[ROSA_ATT_GROUP] = malloc((size_t)nblocks * sizeof *lo), (*hi)[ROSA_ATT_GROUP] = malloc((size_t)nblocks * sizeof *hi);
    char *used = calloc((size_t)nkeys, 1);
    for (int i = 0; i < G * D; i++) q[i] = frand() * (1 + i % 3);
    for (int j = 0; j < nblocks; j++)
        for (int g = 0; g < G; g++) {
            int a = rand() % (ROSA_ATT_BLOCK + 1), b = rand() % (ROSA_ATT_BLOCK + 1);
            if (rand() % 4 == 0) { a = 0; b = ROSA_ATT_BLOCK; } /* whole blocks too */
            lo[j][g] = a < b ? a : b;
            hi[j][g] = a < b ? b : a;
            for (int t = lo[j][g]; t < hi[j][g]; t++) used[j * ROSA_ATT_BLOCK + t] = 1;
        }
    for (int j = 0; j < nkeys; j++)
        for (int d = 0; d < D; d++) {
            float kf = used[j] ? frand() * (1.0f + 4.0f * j / nkeys) : NAN, vf = used[j] ? frand() : NAN;
            rosa__round_bf16_scalar(&kf, &K16[(size_t)j * D + d], 1);
            rosa__round_bf16_scalar(&vf, &V16[(size_t)j * D + d], 1);
            Kf[(size_t)j * D + d] = bf ? bf16f(K16[(size_t)j * D + d]) : kf;
            Vf[(size_t)j * D + d] = bf ? bf16f(V16[(size_t)j * D + d]) : vf;
        }
    float scale = 1.0f / sqrtf((float)D), mx[ROSA_ATT_GROUP], sum[ROSA_ATT_GROUP];
    for (int g = 0; g < G; g++) { mx[g] = -INFINITY; sum[g] = 0; }
    /* one call per block for all G, then G = 1 per query */
    for (int pass = -1; pass < G; pass++) {
        float m1 = -INFINITY, s1 = 0;
        memset(acc1, 0, (size_t)D * 4);
        for (int j = 0; j < nblocks; j++) {
            const float *kp[ROSA_ATT_BLOCK], *vp[ROSA_ATT_BLOCK];
            const uint16_t *kp16[ROSA_ATT_BLOCK], *vp16[ROSA_ATT_BLOCK];
            for (int b = 0; b < ROSA_ATT_BLOCK; b++) {
                size_t r = (size_t)(j * ROSA_ATT_BLOCK + b) * D;
                kp[b] = Kf + r; vp[b] = Vf + r; kp16[b] = K16 + r; vp16[b] = V16 + r;
            }
            int n = pass < 0 ? G : 1;
            const float *qq = pass < 0 ? q : q + (size_t)pass * D;
            const int *l = pass < 0 ? lo[j] : &lo[j][pass], *h = pass < 0 ? hi[j] : &hi[j][pass];
            float *mm = pass < 0 ? mx : &m1, *ss = pass < 0 ? sum : &s1, *aa = pass < 0 ? acc : acc1;
            if (bf) k->att_block_group_bf16(qq, n, kp16, vp16, ROSA_ATT_BLOCK, D, scale, mm, ss, aa, l, h);
            else k->att_block_group(qq, n, kp, vp, ROSA_ATT_BLOCK, D, scale, mm, ss, aa, l, h);
        }
        if (pass < 0) continue;
        int g = pass;
        ck_assert_msg(m1 == mx[g] && s1 == sum[g] && !memcmp(acc1, acc + (size_t)g * D, (size_t)D * 4),
                      "%s att ranges D=%d G=%d bf=%d: query %d differs from a call for it alone", k->name, D, G, bf, g);
        double m = -INFINITY, z = 0, ref[1024] = {0};
        int any = 0;
        for (int j = 0; j < nblocks; j++)
            for (int t = lo[j][g]; t < hi[j][g]; t++) {
                const float *kr = Kf + (size_t)(j * ROSA_ATT_BLOCK + t) * D;
                double sc = 0;
                for (int d = 0; d < D; d++) sc += (double)q[(size_t)g * D + d] * kr[d];
                if (sc * scale > m) m = sc * scale;
                any = 1;
            }
        if (!any) {
            ck_assert_msg(sum[g] == 0 && mx[g] == -INFINITY, "%s att ranges: query %d with no keys changed", k->name, g);
            continue;
        }
        for (int j = 0; j < nblocks; j++)
            for (int t = lo[j][g]; t < hi[j][g]; t++) {
                const float *kr = Kf + (size_t)(j * ROSA_ATT_BLOCK + t) * D, *vr = Vf + (size_t)(j * ROSA_ATT_BLOCK + t) * D;
                double sc = 0;
                for (int d = 0; d < D; d++) sc += (double)q[(size_t)g * D + d] * kr[d];
                double p = exp(sc * scale - m);
                z += p;
                for (int d = 0; d < D; d++) ref[d] += p * vr[d];
            }
        for (int d = 0; d < D; d++)
            if (!(fabs(acc[(size_t)g * D + d] / sum[g] - ref[d] / z) <= 2e-5))
                ck_abort_msg("%s att ranges D=%d G=%d bf=%d: query %d out[%d] = %.7g, reference %.7g", k->name, D, G,
                             bf, g, d, acc[(size_t)g * D + d] / sum[g], ref[d] / z);
    }
    free(q); free(Kf); free(Vf); free(K16); free(V16); free(acc); free(acc1); free(lo); free(hi); free(used);
}

/* att_block_group_bf16 (--precision bf16's cache) over a ring of S slots holding bf16 rows at
 * a stride of 8 heads: keys p0..p0+nkeys-1 in slots p % S, so the run wraps round the ring.
 * Each head's result is bit for bit att_block_group's on the same rows widened to float32, and
 * near a double softmax over those widened values (a kernel reading the bf16 bits wrongly, or
 * the wrong slots, fails both). */
static void check_att_group_bf16(const rosa__kernels *k, int D, int nkeys, int G) {
    int st = 8 * D, S = nkeys + 5;
    int64_t p0 = 3 * (int64_t)S - nkeys / 2;
    uint16_t *K16 = malloc((size_t)S * st * 2), *V16 = malloc((size_t)S * st * 2);
    float *Kf = malloc((size_t)S * st * 4), *Vf = malloc((size_t)S * st * 4);
    float *q = malloc((size_t)G * D * 4), *acc = calloc((size_t)G * D, 4), *acc2 = calloc((size_t)G * D, 4);
    double *ref = malloc((size_t)D * sizeof *ref), *sc = malloc((size_t)nkeys * sizeof *sc);
    for (int i = 0; i < G * D; i++) q[i] = frand() * (1 + i % 3);
    for (size_t i = 0; i < (size_t)S * st; i++) {
        float kf = frand() * (1.0f + 4.0f * (float)(i / st) / S), vf = frand();
        rosa__round_bf16_scalar(&kf, &K16[i], 1);
        rosa__round_bf16_scalar(&vf, &V16[i], 1);
        Kf[i] = bf16f(K16[i]);
        Vf[i] = bf16f(V16[i]);
    }
    float scale = 1.0f / sqrtf((float)D), mx[ROSA_ATT_GROUP], sum[ROSA_ATT_GROUP], mx2[ROSA_ATT_GROUP],
          sum2[ROSA_ATT_GROUP];
    for (int g = 0; g < G; g++) { mx[g] = mx2[g] = -INFINITY; sum[g] = sum2[g] = 0; }
    for (int j0 = 0; j0 < nkeys; j0 += ROSA_ATT_BLOCK) {
        int nb = nkeys - j0 < ROSA_ATT_BLOCK ? nkeys - j0 : ROSA_ATT_BLOCK;
        const uint16_t *kp[ROSA_ATT_BLOCK], *vp[ROSA_ATT_BLOCK];
        const float *kf[ROSA_ATT_BLOCK], *vf[ROSA_ATT_BLOCK];
        for (int b = 0; b < nb; b++) {
            size_t sl = (size_t)((p0 + j0 + b) % S) * st;
            kp[b] = K16 + sl; vp[b] = V16 + sl; kf[b] = Kf + sl; vf[b] = Vf + sl;
        }
        k->att_block_group_bf16(q, G, kp, vp, nb, D, scale, mx, sum, acc, NULL, NULL);
        k->att_block_group(q, G, kf, vf, nb, D, scale, mx2, sum2, acc2, NULL, NULL);
    }
    for (int g = 0; g < G; g++) {
        ck_assert_msg(mx[g] == mx2[g] && sum[g] == sum2[g] &&
                          !memcmp(acc + (size_t)g * D, acc2 + (size_t)g * D, (size_t)D * 4),
                      "%s att bf16 D=%d keys=%d G=%d: head %d differs from att_block_group on the widened rows",
                      k->name, D, nkeys, G, g);
        const float *qg = q + (size_t)g * D;
        double m = -INFINITY, z = 0;
        for (int j = 0; j < nkeys; j++) {
            const float *kr = Kf + (size_t)((p0 + j) % S) * st;
            double s = 0;
            for (int d = 0; d < D; d++) s += (double)qg[d] * kr[d];
            sc[j] = s * scale;
            if (sc[j] > m) m = sc[j];
        }
        memset(ref, 0, (size_t)D * sizeof *ref);
        for (int j = 0; j < nkeys; j++) {
            const float *vr = Vf + (size_t)((p0 + j) % S) * st;
            double p = exp(sc[j] - m);
            z += p;
            for (int d = 0; d < D; d++) ref[d] += p * vr[d];
        }
        for (int d = 0; d < D; d++) {
            double got = acc[(size_t)g * D + d] / sum[g];
            if (fabs(got - ref[d] / z) > 2e-5)
                ck_abort_msg("%s att bf16 D=%d keys=%d G=%d: out[%d,%d] = %.7g, reference %.7g", k->name, D,
                             nkeys, G, g, d, got, ref[d] / z);
        }
    }
    free(K16); free(V16); free(Kf); free(Vf); free(q); free(acc); free(acc2); free(ref); free(sc);
}

static void run_set(const rosa__kernels *k, const char *what) {
    if (!k) { printf("NOTICE: this CPU has no %s kernels; not checked\n", what); return; }
    gemm_all_shapes(k);
    check_attention_helpers(k);
    static const int Ds[] = {8, 48, 64, 128, 256};
    static const int Ns[] = {1, 15, 16, 17, 128, 129, 300, 1000};
    for (size_t a = 0; a < sizeof Ds / sizeof *Ds; a++)
        for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++) check_att_block(k, Ds[a], Ns[b]);
    static const int Gs[] = {1, 2, 3, 4, 5, 8};
    static const int Ns2[] = {1, 17, 128, 300};
    for (size_t a = 0; a < sizeof Ds / sizeof *Ds; a++)
        for (size_t b = 0; b < sizeof Ns2 / sizeof *Ns2; b++)
            for (size_t g = 0; g < sizeof Gs / sizeof *Gs; g++) check_att_group(k, Ds[a], Ns2[b], Gs[g]);
    static const int Ds3[] = {8, 40, 48, 64, 128, 192};
    static const int Ns3[] = {1, 15, 17, 128, 129, 300};
    static const int Gs3[] = {1, 3, 4, 8};
    for (size_t a = 0; a < sizeof Ds3 / sizeof *Ds3; a++)
        for (size_t b = 0; b < sizeof Ns3 / sizeof *Ns3; b++)
            for (size_t g = 0; g < sizeof Gs3 / sizeof *Gs3; g++) check_att_group_bf16(k, Ds3[a], Ns3[b], Gs3[g]);
    for (size_t a = 0; a < sizeof Ds3 / sizeof *Ds3; a++)
        for (size_t g = 0; g < sizeof Gs / sizeof *Gs; g++)
            for (int bf = 0; bf < 2; bf++) check_att_ranges(k, Ds3[a], 3, Gs[g], bf);
}

/* AMX tiles against the float32 product of the same bf16-rounded values (tails in rows, weight
 * rows and depth; column sub-ranges) */
START_TEST(amx_gemm_matches_f32_on_rounded_inputs) {
    if (!rosa__amx_available()) { printf("NOTICE: no AMX on this CPU (or not granted); AMX not checked\n"); return; }
    const rosa__kernels *k = rosa__kernels_avx512();
    static const int Ts[] = {1, 16, 31, 32, 45, 70};
    static const int Ns[] = {1, 31, 32, 33, 100};
    static const int Ks[] = {1, 31, 32, 33, 300, 544};
    srand(5);
    for (size_t a = 0; a < sizeof Ts / sizeof *Ts; a++)
        for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
            for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++) {
                int T = Ts[a], N = Ns[b], K = Ks[c], ld = (K + 31) & ~31, Tp = (T + 31) & ~31;
                uint16_t *W = malloc((size_t)N * K * 2), *x16 = calloc((size_t)Tp * ld, 2);
                float *xr = malloc((size_t)T * K * 4), *y = malloc((size_t)T * N * 4), *y2 = malloc((size_t)T * N * 4);
                float *pack = malloc(ROSA_GEMM_PACK_FLOATS * 4);
                void *scr = malloc(ROSA_AMX_SCRATCH_BYTES(ld));
                for (size_t i = 0; i < (size_t)N * K; i++) W[i] = bf16(frand());
                for (int t = 0; t < T; t++)
                    for (int kk = 0; kk < K; kk++) {
                        x16[(size_t)t * ld + kk] = bf16(frand());
                        xr[(size_t)t * K + kk] = bf16f(x16[(size_t)t * ld + kk]);
                    }
                for (size_t i = 0; i < (size_t)T * N; i++) y[i] = 7.0f;
                int n0 = N > 2 ? 1 : 0; /* columns outside n0..N stay */
                rosa__gemm_amx(W, N, K, x16, ld, T, y, n0, N, scr);
                rosa__gemm(k, ROSA_DT_BF16, W, N, K, xr, T, y2, 0, N, pack);
                for (int t = 0; t < T; t++)
                    for (int n = 0; n < N; n++) {
                        float got = y[(size_t)t * N + n];
                        if (n < n0) { ck_assert_float_eq(got, 7.0f); continue; }
                        double want = y2[(size_t)t * N + n];
                        if (fabs(got - want) > 1e-5 * (1 + sqrt((double)K)))
                            ck_abort_msg("AMX T=%d N=%d K=%d: y[%d,%d] = %.7g, float32 %.7g", T, N, K, t, n, got, want);
                    }
                free(W); free(x16); free(xr); free(y); free(y2); free(pack); free(scr);
            }
}
END_TEST

START_TEST(scalar_gemm_and_helpers) { run_set(rosa__kernels_scalar(), "scalar"); }
END_TEST
START_TEST(avx2_gemm_and_helpers) { run_set(rosa__kernels_avx2(), "AVX2"); }
END_TEST
START_TEST(avx512_gemm_and_helpers) { run_set(rosa__kernels_avx512(), "AVX-512"); }
END_TEST

int main(void) {
    Suite *s = suite_create("cpu_gemm");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, scalar_gemm_and_helpers);
    tcase_add_test(tc, avx2_gemm_and_helpers);
    tcase_add_test(tc, avx512_gemm_and_helpers);
    tcase_add_test(tc, amx_gemm_matches_f32_on_rounded_inputs);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
