/* gemm_cpu.c: the blocked matrix product behind every many-row product of the CPU backend.
 *
 * Weights stay in their stored dtype (bf16, f16, f32) in the checkpoint mapping.  A panel of
 * gemm_nr weight rows by ROSA_GEMM_KC columns is converted once into float32, transposed so that
 * one k holds gemm_nr consecutive weights (P[k][j]), and then reused by every row of x: the
 * micro-kernel (cpu_kernels*.c) broadcasts x[t, k] and multiplies it into gemm_nr accumulators
 * per row held in registers.  A weight is therefore converted once per call instead of once
 * per row, and the arithmetic runs from registers instead of two loads per multiply.
 *
 * Loop order within one caller's column range: depth blocks outside, panels inside, so the
 * x[T, kc] block stays in cache while the panels of the range pass over it. */
#include "cpu/gemm_cpu.h"

static void pack_panel(const rosa__kernels *kr, rosa_dtype dt, const void *W, int K, int n0, int nv,
                       int nr, int k0, int kc, float *P) {
    if (nv == nr && kr->gemm_pack && kr->gemm_pack(dt, W, K, n0, k0, kc, P)) return;
    float row[ROSA_GEMM_KC];
    size_t es = rosa__dtype_size(dt);
    for (int j = 0; j < nr; j++) {
        if (j >= nv) {
            for (int k = 0; k < kc; k++) P[(size_t)k * nr + j] = 0;
            continue;
        }
        const char *src = (const char *)W + ((size_t)(n0 + j) * K + k0) * es;
        const float *r = row;
        if (dt == ROSA_DT_BF16) kr->bf16_to_f32(src, row, kc);
        else if (dt == ROSA_DT_F16) kr->f16_to_f32(src, row, kc);
        else r = (const float *)src;
        for (int k = 0; k < kc; k++) P[(size_t)k * nr + j] = r[k];
    }
}

/* The next panel's weights are fetched from memory while this panel's tiles run: its rows are
 * kc * es bytes at a stride of K * es, streams too short for the hardware prefetcher, so a pack
 * used to wait on memory for each of them.  The lines are requested a few per tile. */
typedef struct {
    const char *base; /* the next panel's first row at column k0 */
    size_t stride;    /* bytes between its rows */
    int rows, lines;  /* rows, 64-byte lines per row */
    int next;         /* lines requested so far */
} prefetch_cursor;

static void prefetch_some(prefetch_cursor *c, int n) {
    int total = c->rows * c->lines;
    for (; n > 0 && c->next < total; n--, c->next++) {
        int r = c->next / c->lines, l = c->next % c->lines;
        __builtin_prefetch(c->base + (size_t)r * c->stride + (size_t)l * 64, 0, 2);
    }
}

void rosa__gemm(const rosa__kernels *kr, rosa_dtype dt, const void *W, int N, int K,
                const float *x, int T, float *y, int n0, int n1, float *pack) {
    int nr = kr->gemm_nr, mr = kr->gemm_mr;
    size_t es = rosa__dtype_size(dt);
    for (int k0 = 0; k0 < K; k0 += ROSA_GEMM_KC) {
        int kc = K - k0 < ROSA_GEMM_KC ? K - k0 : ROSA_GEMM_KC;
        for (int nb = n0; nb < n1; nb += nr) {
            int nv = n1 - nb < nr ? n1 - nb : nr;
            pack_panel(kr, dt, W, K, nb, nv, nr, k0, kc, pack);
            /* the panel after this one: the next rows at k0, or the first rows at the next k0 */
            int pn = nb + nr, pk = k0;
            if (pn >= n1) { pn = n0; pk = k0 + ROSA_GEMM_KC; }
            prefetch_cursor pc = {0};
            if (pk < K) {
                int pkc = K - pk < ROSA_GEMM_KC ? K - pk : ROSA_GEMM_KC;
                pc.base = (const char *)W + ((size_t)pn * K + pk) * es;
                pc.stride = (size_t)K * es;
                pc.rows = n1 - pn < nr ? n1 - pn : nr;
                pc.lines = (int)((pkc * es + 63) / 64);
            }
            int tiles = (T + mr - 1) / mr, per = (pc.rows * pc.lines + tiles - 1) / tiles;
            for (int t = 0; t < T; t += mr) {
                prefetch_some(&pc, per);
                kr->gemm_tile(pack, x + (size_t)t * K + k0, K, kc, y + (size_t)t * N + nb, N,
                              T - t < mr ? T - t : mr, nv, k0 > 0);
            }
        }
    }
}
