/* cpu_kernels.c: portable scalar kernels and the run-time choice of the best variant. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_kernels.h"

float rosa__half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else {
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 1024));
            u = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 1023) << 13;
        }
    } else if (exp == 31) u = sign | 0x7f800000u | man << 13;
    else u = sign | (exp + 127 - 15) << 23 | man << 13;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float bf16f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float s_dot_f32(const float *a, const float *b, int n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float s_dot_bf16(const void *w, const float *x, int n) {
    const uint16_t *p = w;
    float s0 = 0, s1 = 0;
    int i = 0;
    for (; i + 2 <= n; i += 2) { s0 += bf16f(p[i]) * x[i]; s1 += bf16f(p[i + 1]) * x[i + 1]; }
    for (; i < n; i++) s0 += bf16f(p[i]) * x[i];
    return s0 + s1;
}

static float s_dot_f16(const void *w, const float *x, int n) {
    const uint16_t *p = w;
    float s = 0;
    for (int i = 0; i < n; i++) s += rosa__half_to_float(p[i]) * x[i];
    return s;
}

static void s_bf16_to_f32(const void *w, float *out, int n) {
    const uint16_t *p = w;
    for (int i = 0; i < n; i++) out[i] = bf16f(p[i]);
}

static void s_gemv_bf16(const void *W, size_t ldw, int nrows, int K, const float *x, float *y) {
    for (int r = 0; r < nrows; r++) y[r] = s_dot_bf16((const uint16_t *)W + (size_t)r * ldw, x, K);
}

static void s_f16_to_f32(const void *w, float *out, int n) {
    const uint16_t *p = w;
    for (int i = 0; i < n; i++) out[i] = rosa__half_to_float(p[i]);
}

/* portable GEMM tile: 4 rows x 8 columns of accumulators, which compilers keep in registers */
#define S_MR 4
#define S_NR 8
static void s_gemm_tile(const float *P, const float *x, int ldx, int kc, float *y, int ldy, int mr,
                        int nv, int acc) {
    float c[S_MR][S_NR] = {{0}};
    for (int k = 0; k < kc; k++) {
        const float *b = P + (size_t)k * S_NR;
        for (int i = 0; i < mr; i++) {
            float a = x[(size_t)i * ldx + k];
            for (int j = 0; j < S_NR; j++) c[i][j] += a * b[j];
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nv; j++) y[(size_t)i * ldy + j] = acc ? y[(size_t)i * ldy + j] + c[i][j] : c[i][j];
}

static void s_exp_f32(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = expf(x[i]);
}

static void s_axpy_f32(float a, const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void s_scale_f32(float *y, float a, int n) {
    for (int i = 0; i < n; i++) y[i] *= a;
}

/* The online softmax's step for a block of nb scores whose maximum is bm: rescale what was
 * summed so far when the maximum grows, then sc[b] = exp(sc[b] - max). */
static void att_softmax_step(const rosa__kernels *k, float *sc, int nb, float bm, int D, float *mx,
                             float *sum, float *acc) {
    if (bm > *mx) {
        if (*sum > 0) {
            float f = expf(*mx - bm);
            *sum *= f;
            k->scale_f32(acc, f, D);
        }
        *mx = bm;
    }
    for (int b = 0; b < nb; b++) sc[b] -= *mx;
    k->exp_f32(sc, nb);
}

void rosa__att_block_generic(const rosa__kernels *k, const float *q, const float *const *kp,
                             const float *const *vp, int nb, int D, float scale, float *mx,
                             float *sum, float *acc) {
    float sc[ROSA_ATT_BLOCK], bm = -INFINITY;
    for (int b = 0; b < nb; b++) {
        sc[b] = k->dot_f32(q, kp[b], D) * scale;
        if (sc[b] > bm) bm = sc[b];
    }
    att_softmax_step(k, sc, nb, bm, D, mx, sum, acc);
    for (int b = 0; b < nb; b++) {
        *sum += sc[b];
        k->axpy_f32(sc[b], vp[b], acc, D);
    }
}

void rosa__att_block_generic_bf16(const rosa__kernels *k, const float *q, const uint16_t *const *kp,
                                  const uint16_t *const *vp, int nb, int D, float scale, float *mx,
                                  float *sum, float *acc) {
    float sc[ROSA_ATT_BLOCK], bm = -INFINITY, row[1024]; /* the CPU backend refuses D > 1024 */
    for (int b = 0; b < nb; b++) {
        k->bf16_to_f32(kp[b], row, D);
        sc[b] = k->dot_f32(q, row, D) * scale;
        if (sc[b] > bm) bm = sc[b];
    }
    att_softmax_step(k, sc, nb, bm, D, mx, sum, acc);
    for (int b = 0; b < nb; b++) {
        *sum += sc[b];
        k->bf16_to_f32(vp[b], row, D);
        k->axpy_f32(sc[b], row, acc, D);
    }
}

void rosa__att_group_generic(const rosa__kernels *k, const float *q, int G, const float *const *kp,
                             const float *const *vp, int nb, int D, float scale, float *mx, float *sum,
                             float *acc, const int *lo, const int *hi) {
    for (int g = 0; g < G; g++) {
        int l = lo ? lo[g] : 0, n = (hi ? hi[g] : nb) - l;
        if (n > 0)
            rosa__att_block_generic(k, q + (size_t)g * D, kp + l, vp + l, n, D, scale, mx + g, sum + g,
                                    acc + (size_t)g * D);
    }
}

void rosa__att_group_generic_bf16(const rosa__kernels *k, const float *q, int G, const uint16_t *const *kp,
                                  const uint16_t *const *vp, int nb, int D, float scale, float *mx,
                                  float *sum, float *acc, const int *lo, const int *hi) {
    for (int g = 0; g < G; g++) {
        int l = lo ? lo[g] : 0, n = (hi ? hi[g] : nb) - l;
        if (n > 0)
            rosa__att_block_generic_bf16(k, q + (size_t)g * D, kp + l, vp + l, n, D, scale, mx + g,
                                         sum + g, acc + (size_t)g * D);
    }
}

void rosa__round_bf16_scalar(const float *x, uint16_t *out, int n) {
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) out[i] = (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
        else out[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
    }
}

static const rosa__kernels scalar;
static void s_att_block(const float *q, const float *const *kp, const float *const *vp, int nb,
                        int D, float scale, float *mx, float *sum, float *acc) {
    rosa__att_block_generic(&scalar, q, kp, vp, nb, D, scale, mx, sum, acc);
}

static void s_att_block_group(const float *q, int G, const float *const *kp, const float *const *vp,
                              int nb, int D, float scale, float *mx, float *sum, float *acc,
                              const int *lo, const int *hi) {
    rosa__att_group_generic(&scalar, q, G, kp, vp, nb, D, scale, mx, sum, acc, lo, hi);
}

static void s_att_block_group_bf16(const float *q, int G, const uint16_t *const *kp,
                                   const uint16_t *const *vp, int nb, int D, float scale, float *mx,
                                   float *sum, float *acc, const int *lo, const int *hi) {
    rosa__att_group_generic_bf16(&scalar, q, G, kp, vp, nb, D, scale, mx, sum, acc, lo, hi);
}

static const rosa__kernels scalar = {
    .name = "scalar", .dot_f32 = s_dot_f32, .dot_bf16 = s_dot_bf16, .dot_f16 = s_dot_f16,
    .bf16_to_f32 = s_bf16_to_f32, .f16_to_f32 = s_f16_to_f32,
    .gemm_tile = s_gemm_tile, .gemm_mr = S_MR, .gemm_nr = S_NR,
    .exp_f32 = s_exp_f32, .axpy_f32 = s_axpy_f32, .scale_f32 = s_scale_f32,
    .att_block = s_att_block, .att_block_group = s_att_block_group,
    .att_block_group_bf16 = s_att_block_group_bf16,
    .round_bf16 = rosa__round_bf16_scalar, .gemv_bf16 = s_gemv_bf16};

const rosa__kernels *rosa__kernels_scalar(void) { return &scalar; }

const rosa__kernels *rosa__kernels_get(void) {
    const char *force = getenv("ROSA_KERNELS");
    const rosa__kernels *k = NULL;
    if (force && !strcmp(force, "scalar")) return &scalar;
    if (force && !strcmp(force, "avx2")) k = rosa__kernels_avx2();
    else if (force && !strcmp(force, "avx512")) k = rosa__kernels_avx512();
    else {
        k = rosa__kernels_avx512();
        if (!k) k = rosa__kernels_avx2();
    }
    return k ? k : &scalar;
}
