/* gemm_cpu.h: the CPU backend's many-row matrix product (prefill chunks, batched decode). */
#ifndef ROSA_GEMM_CPU_H
#define ROSA_GEMM_CPU_H
#include "cpu/cpu_kernels.h"

/* Rows of x at or above this count go through rosa__gemm; fewer take one dot product per
 * (row, weight row), which reads each weight once and needs no packing. */
#define ROSA_GEMM_MIN_ROWS 16
/* Depth of one packed panel (weights converted to float32 per panel of kc x gemm_nr). */
#define ROSA_GEMM_KC 256
/* Floats of packing scratch one thread needs (any kernel set). */
#define ROSA_GEMM_PACK_FLOATS (ROSA_GEMM_KC * 32)

/* y[t, n] = sum_k x[t, k] W[n, k] for t < T and n0 <= n < n1, where W is [N, K] row-major in
 * stored dtype dt, x is [T, K] float32 and y is [T, N] float32 (columns outside n0..n1 are not
 * touched).  pack: ROSA_GEMM_PACK_FLOATS floats of scratch private to the caller's thread.
 * Every sum runs over k in order in float32, so the result does not depend on n0/n1 or on the
 * thread that computes it. */
void rosa__gemm(const rosa__kernels *kr, rosa_dtype dt, const void *W, int N, int K,
                const float *x, int T, float *y, int n0, int n1, float *pack);
/* AMX (gemm_amx.c).  rosa__amx_available: the CPU has AMX-BF16 and the OS granted the tile
 * state (asked once per process).  rosa__gemm_amx: y[t, n] for t < T, n0 <= n < n1 over bf16 W
 * [N, K]; x16 the rows of x rounded to bf16, row stride ldx (a multiple of 32), rows up to a multiple
 * of 32, zero-padded; scratch: ROSA_AMX_SCRATCH_BYTES(ldx). */
#define ROSA_AMX_SCRATCH_BYTES(ldx) ((size_t)(ldx) / 2 * 32 * 4 + 32 * 32 * 4)
int rosa__amx_available(void);
void rosa__gemm_amx(const uint16_t *W, int N, int K, const uint16_t *x16, int ldx, int T, float *y,
                    int n0, int n1, void *scratch);
#endif
