/* cpu_kernels.h: the CPU backend's inner loops (dot products over stored-dtype weights).
 * One portable implementation (cpu_kernels.c) and x86 SIMD variants (cpu_kernels_x86.c),
 * picked once at run time from what the CPU supports. */
#ifndef ROSA_CPU_KERNELS_H
#define ROSA_CPU_KERNELS_H
#include "model/tensors.h"

typedef struct rosa__kernels {
    const char *name;                                          /* "scalar", "avx2", "avx512" */
    float (*dot_f32)(const float *a, const float *b, int n);
    /* dot of one stored-dtype weight row with a float32 vector */
    float (*dot_bf16)(const void *w, const float *x, int n);
    float (*dot_f16)(const void *w, const float *x, int n);
    void (*bf16_to_f32)(const void *w, float *out, int n);
    void (*f16_to_f32)(const void *w, float *out, int n);
    /* GEMM micro-kernel (gemm_cpu.c drives it): the tile y[mr, nv] (row stride ldy) =, or += when
     * acc, x[mr, kc] (row stride ldx) times the packed weight panel P[kc][gemm_nr] (float32, rows
     * of W as columns, zero beyond nv).  mr <= gemm_mr, nv <= gemm_nr.  Sums run over k in order. */
    void (*gemm_tile)(const float *P, const float *x, int ldx, int kc, float *y, int ldy, int mr,
                      int nv, int acc);
    int gemm_mr, gemm_nr;
} rosa__kernels;

/* The best kernels this CPU runs (ROSA_KERNELS=scalar|avx2|avx512 in the environment forces one). */
const rosa__kernels *rosa__kernels_get(void);
const rosa__kernels *rosa__kernels_scalar(void);
const rosa__kernels *rosa__kernels_avx2(void);   /* NULL if the CPU lacks AVX2+FMA+F16C */
const rosa__kernels *rosa__kernels_avx512(void); /* NULL if the CPU lacks AVX-512F/BW */

float rosa__half_to_float(uint16_t h);
#endif
