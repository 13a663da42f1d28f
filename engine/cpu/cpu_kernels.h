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
    /* Fast packing of a full panel (nv == gemm_nr) of rows n0.. and columns k0..k0+kc of W
     * ([*, K], stored dtype dt) into P[kc][gemm_nr]; returns 0 when it does not handle the case
     * (gemm_cpu.c then packs element by element).  May be NULL. */
    int (*gemm_pack)(int dt, const void *W, int K, int n0, int k0, int kc, float *P);
    /* attention: x[i] = exp(x[i]) in place (relative error < 1e-6 for x in [-87, 88]; below,
     * 0), y += a * x, y *= a */
    void (*exp_f32)(float *x, int n);
    void (*axpy_f32)(float a, const float *x, float *y, int n);
    void (*scale_f32)(float *y, float a, int n);
    /* One block of the attention softmax for query q[D]: scores sc[b] = scale q.k_b for the nb
     * keys kp[b] (nb <= ROSA_ATT_BLOCK), then the running maximum *mx, the running sum *sum and
     * the unnormalised output acc[D] are updated with the weights exp(sc[b] - *mx) of values
     * vp[b] (acc and *sum rescaled when the maximum grows).  Start with *mx = -inf, *sum = 0,
     * acc = 0; the output is acc / *sum.  Every kernel set runs the same steps in this order. */
    void (*att_block)(const float *q, const float *const *kp, const float *const *vp, int nb, int D,
                      float scale, float *mx, float *sum, float *acc);
    /* att_block for G <= ROSA_ATT_GROUP queries over the same keys and values (the query heads
     * of one kv head, and in prefill those of several rows): q[G, D], mx[G], sum[G], acc[G, D].
     * Query g takes keys lo[g] <= b < hi[g] of the block (0 <= lo[g] <= hi[g] <= nb; every key
     * when lo and hi are NULL), the others leave it unchanged.  Each query's result is exactly
     * that of a call for it alone with the same kp, vp, nb and its own range, so a row's
     * attention does not depend on the rows it is computed with (the keys and values are read
     * once for all G).  The AVX-512 set places key b in lane b % 16, so callers that want the
     * same result for a row in any call start blocks at a multiple of 16 keys. */
    void (*att_block_group)(const float *q, int G, const float *const *kp, const float *const *vp,
                            int nb, int D, float scale, float *mx, float *sum, float *acc,
                            const int *lo, const int *hi);
    /* att_block_group over keys and values stored as bf16 (--precision bf16's attention
     * cache): exactly att_block_group on the rows widened to float32 (widening is exact), in
     * every kernel set; the rows are widened as they are read */
    void (*att_block_group_bf16)(const float *q, int G, const uint16_t *const *kp,
                                 const uint16_t *const *vp, int nb, int D, float scale, float *mx,
                                 float *sum, float *acc, const int *lo, const int *hi);
    /* --precision bf16: out[i] = x[i] rounded to the nearest bf16 (ties to even), as bits */
    void (*round_bf16)(const float *x, uint16_t *out, int n);
    /* Decode's matrix-vector product (one input row): y[r] = sum_k W[r, k] x[k] for r < nrows,
     * W bf16 rows of K values at a stride of ldw values.  Several rows per pass share the loads
     * of x; products and sums in float32 (bf16 -> float32 is exact), in a kernel-set order. */
    void (*gemv_bf16)(const void *W, size_t ldw, int nrows, int K, const float *x, float *y);
    /* The same with x given as bf16 (--precision bf16: the input rounded once per product):
     * pairs of bf16 products summed in float32 (vdpbf16ps).  NULL where the CPU lacks
     * AVX512_BF16; callers then pass the rounded input as float32 to gemv_bf16. */
    void (*gemv_bf16_x16)(const void *W, size_t ldw, int nrows, int K, const uint16_t *x16, float *y);
} rosa__kernels;

#define ROSA_ATT_BLOCK 128
#define ROSA_ATT_GROUP 8 /* query heads per att_block_group call */

/* The best kernels this CPU runs (ROSA_KERNELS=scalar|avx2|avx512 in the environment forces one). */
const rosa__kernels *rosa__kernels_get(void);
const rosa__kernels *rosa__kernels_scalar(void);
const rosa__kernels *rosa__kernels_avx2(void);   /* NULL if the CPU lacks AVX2+FMA+F16C */
const rosa__kernels *rosa__kernels_avx512(void); /* NULL if the CPU lacks AVX-512F/BW */
/* gemv_bf16_x16 is set when the CPU has AVX512_BF16 and ROSA_NO_AVX512BF16 is not in the
 * environment (that switch reaches the float32 fallback of bf16 mode on any CPU) */

/* att_block_group / att_block_group_bf16 from the two above: each query alone over its own
 * range of keys (the portable set's, and the SIMD sets' for shapes their fused version does not
 * take) */
void rosa__att_group_generic(const rosa__kernels *k, const float *q, int G, const float *const *kp,
                             const float *const *vp, int nb, int D, float scale, float *mx, float *sum,
                             float *acc, const int *lo, const int *hi);
void rosa__att_group_generic_bf16(const rosa__kernels *k, const float *q, int G, const uint16_t *const *kp,
                                  const uint16_t *const *vp, int nb, int D, float scale, float *mx,
                                  float *sum, float *acc, const int *lo, const int *hi);
float rosa__half_to_float(uint16_t h);
void rosa__round_bf16_scalar(const float *x, uint16_t *out, int n);
/* att_block from a kernel set's dot/exp/scale/axpy (the portable set's, and the SIMD sets' for
 * head sizes their fused version does not take) */
void rosa__att_block_generic(const rosa__kernels *k, const float *q, const float *const *kp,
                             const float *const *vp, int nb, int D, float scale, float *mx,
                             float *sum, float *acc);
/* the same over bf16 rows (D <= 1024): each row widened into a stack buffer, then the kernel
 * set's dot_f32 / axpy_f32 as rosa__att_block_generic calls them (bit-identical to it on the
 * widened rows) */
void rosa__att_block_generic_bf16(const rosa__kernels *k, const float *q, const uint16_t *const *kp,
                                  const uint16_t *const *vp, int nb, int D, float scale, float *mx,
                                  float *sum, float *acc);
#endif
