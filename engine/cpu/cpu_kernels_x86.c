/* cpu_kernels_x86.c: AVX2+FMA+F16C and AVX-512 variants of the CPU kernels.  Each function is
 * compiled for its instruction set with a target attribute and only called after the run-time
 * check in rosa__kernels_avx2/avx512; other architectures get NULL (portable kernels). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_kernels.h"
#include "cpu/gemv_x86.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "cpu/simd_x86.h"

#define T2 __attribute__((target("avx2,fma,f16c")))

T2 static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 sh = _mm_movehdup_ps(lo);
    lo = _mm_add_ps(lo, sh);
    sh = _mm_movehl_ps(sh, lo);
    return _mm_cvtss_f32(_mm_add_ss(lo, sh));
}

T2 static inline __m256 load_bf16_8(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

T2 static float a2_dot_f32(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

T2 static float a2_dot_bf16(const void *w, const float *x, int n) {
    const uint16_t *p = w;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(load_bf16_8(p + i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(load_bf16_8(p + i + 8), _mm256_loadu_ps(x + i + 8), s1);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) {
        uint32_t u = (uint32_t)p[i] << 16;
        float f;
        __builtin_memcpy(&f, &u, 4);
        s += f * x[i];
    }
    return s;
}

T2 static float a2_dot_f16(const void *w, const float *x, int n) {
    const uint16_t *p = w;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + i))), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + i + 8))), _mm256_loadu_ps(x + i + 8), s1);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += rosa__half_to_float(p[i]) * x[i];
    return s;
}

T2 static void a2_bf16_to_f32(const void *w, float *out, int n) {
    const uint16_t *p = w;
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load_bf16_8(p + i));
    for (; i < n; i++) {
        uint32_t u = (uint32_t)p[i] << 16;
        __builtin_memcpy(out + i, &u, 4);
    }
}

T2 static void a2_f16_to_f32(const void *w, float *out, int n) {
    const uint16_t *p = w;
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + i))));
    for (; i < n; i++) out[i] = rosa__half_to_float(p[i]);
}

/* ---- AVX-512 ---- */
T5 static inline __m512 load_bf16_16(const uint16_t *p) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

T5 static float a5_dot_f32(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= n) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

T5 static float a5_dot_bf16(const void *w, const float *x, int n) {
    const uint16_t *p = w;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(load_bf16_16(p + i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(load_bf16_16(p + i + 16), _mm512_loadu_ps(x + i + 16), s1);
    }
    if (i + 16 <= n) {
        s0 = _mm512_fmadd_ps(load_bf16_16(p + i), _mm512_loadu_ps(x + i), s0);
        i += 16;
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) {
        uint32_t u = (uint32_t)p[i] << 16;
        float f;
        __builtin_memcpy(&f, &u, 4);
        s += f * x[i];
    }
    return s;
}

T5 static float a5_dot_f16(const void *w, const float *x, int n) {
    const uint16_t *p = w;
    __m512 s0 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + i))), _mm512_loadu_ps(x + i), s0);
    float s = _mm512_reduce_add_ps(s0);
    for (; i < n; i++) s += rosa__half_to_float(p[i]) * x[i];
    return s;
}

T5 static void a5_bf16_to_f32(const void *w, float *out, int n) {
    const uint16_t *p = w;
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load_bf16_16(p + i));
    for (; i < n; i++) {
        uint32_t u = (uint32_t)p[i] << 16;
        __builtin_memcpy(out + i, &u, 4);
    }
}

/* ---- GEMM tiles: broadcast one x value per row, FMA it with the panel's row of weights.
 * The tile is fully unrolled for each row count (MR is a constant at each call site), so the
 * accumulators live in registers: AVX2 6 x 16 (12 ymm), AVX-512 12 x 32 (24 zmm). ---- */
#define A2_MR 6
#define A5_MR 12

T2 static inline __attribute__((always_inline)) void a2_tile(const float *P, const float *x, int ldx,
                                                            int kc, float *y, int ldy, const int MR,
                                                            int nv, int acc) {
    __m256 c0[A2_MR], c1[A2_MR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(P + (size_t)k * 16), b1 = _mm256_loadu_ps(P + (size_t)k * 16 + 8);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m256 a = _mm256_broadcast_ss(x + (size_t)i * ldx + k);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
    }
    if (nv == 16) {
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            float *yi = y + (size_t)i * ldy;
            if (acc) {
                c0[i] = _mm256_add_ps(c0[i], _mm256_loadu_ps(yi));
                c1[i] = _mm256_add_ps(c1[i], _mm256_loadu_ps(yi + 8));
            }
            _mm256_storeu_ps(yi, c0[i]);
            _mm256_storeu_ps(yi + 8, c1[i]);
        }
        return;
    }
    float t[16];
    for (int i = 0; i < MR; i++) {
        float *yi = y + (size_t)i * ldy;
        _mm256_storeu_ps(t, c0[i]);
        _mm256_storeu_ps(t + 8, c1[i]);
        for (int j = 0; j < nv; j++) yi[j] = acc ? yi[j] + t[j] : t[j];
    }
}

T2 static void a2_gemm_tile(const float *P, const float *x, int ldx, int kc, float *y, int ldy,
                            int mr, int nv, int acc) {
    switch (mr) {
    case 6: a2_tile(P, x, ldx, kc, y, ldy, 6, nv, acc); break;
    case 5: a2_tile(P, x, ldx, kc, y, ldy, 5, nv, acc); break;
    case 4: a2_tile(P, x, ldx, kc, y, ldy, 4, nv, acc); break;
    case 3: a2_tile(P, x, ldx, kc, y, ldy, 3, nv, acc); break;
    case 2: a2_tile(P, x, ldx, kc, y, ldy, 2, nv, acc); break;
    default: a2_tile(P, x, ldx, kc, y, ldy, 1, nv, acc); break;
    }
}

T5 static inline __attribute__((always_inline)) void a5_tile(const float *P, const float *x, int ldx,
                                                            int kc, float *y, int ldy, const int MR,
                                                            int nv, int acc) {
    __m512 c0[A5_MR], c1[A5_MR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(P + (size_t)k * 32), b1 = _mm512_loadu_ps(P + (size_t)k * 32 + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_set1_ps(x[(size_t)i * ldx + k]);
            c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
        }
    }
    __mmask16 m0 = nv >= 16 ? 0xffff : (__mmask16)((1u << nv) - 1);
    __mmask16 m1 = nv >= 32 ? 0xffff : nv > 16 ? (__mmask16)((1u << (nv - 16)) - 1) : 0;
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        float *yi = y + (size_t)i * ldy;
        if (acc) {
            c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, yi));
            c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, yi + 16));
        }
        _mm512_mask_storeu_ps(yi, m0, c0[i]);
        _mm512_mask_storeu_ps(yi + 16, m1, c1[i]);
    }
}

T5 static void a5_gemm_tile(const float *P, const float *x, int ldx, int kc, float *y, int ldy,
                            int mr, int nv, int acc) {
    switch (mr) {
    case 12: a5_tile(P, x, ldx, kc, y, ldy, 12, nv, acc); break;
    case 11: a5_tile(P, x, ldx, kc, y, ldy, 11, nv, acc); break;
    case 10: a5_tile(P, x, ldx, kc, y, ldy, 10, nv, acc); break;
    case 9: a5_tile(P, x, ldx, kc, y, ldy, 9, nv, acc); break;
    case 8: a5_tile(P, x, ldx, kc, y, ldy, 8, nv, acc); break;
    case 7: a5_tile(P, x, ldx, kc, y, ldy, 7, nv, acc); break;
    case 6: a5_tile(P, x, ldx, kc, y, ldy, 6, nv, acc); break;
    case 5: a5_tile(P, x, ldx, kc, y, ldy, 5, nv, acc); break;
    case 4: a5_tile(P, x, ldx, kc, y, ldy, 4, nv, acc); break;
    case 3: a5_tile(P, x, ldx, kc, y, ldy, 3, nv, acc); break;
    case 2: a5_tile(P, x, ldx, kc, y, ldy, 2, nv, acc); break;
    default: a5_tile(P, x, ldx, kc, y, ldy, 1, nv, acc); break;
    }
}

/* ---- attention helpers.  exp: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two for an exact
 * reduction), e^r by its degree-6 Taylor polynomial (error < 2e-7 relative), 2^n through the
 * exponent bits; inputs below -87.3 give 0 (the softmax weights they stand for), above 88.3
 * are clamped (attention only passes x <= 0). ---- */
#define EXP_HI 88.3f
#define EXP_LO -87.3f
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO -2.12194440e-4f

T2 static inline __m256 a2_exp8(__m256 x) {
    __m256 lo = _mm256_set1_ps(EXP_LO);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

T2 static void a2_exp_f32(float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, a2_exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = {0};
        for (int j = i; j < n; j++) t[j - i] = x[j];
        _mm256_storeu_ps(t, a2_exp8(_mm256_loadu_ps(t)));
        for (int j = i; j < n; j++) x[j] = t[j - i];
    }
}

T2 static void a2_axpy_f32(float a, const float *x, float *y, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

T2 static void a2_scale_f32(float *y, float a, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}

T5 static inline __m512 a5_exp16(__m512 x) {
    __m512 lo = _mm512_set1_ps(EXP_LO);
    __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(keep, p, _mm512_castsi512_ps(e));
}

T5 static void a5_exp_f32(float *x, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, a5_exp16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, a5_exp16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

T5 static void a5_axpy_f32(float a, const float *x, float *y, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

T5 static void a5_scale_f32(float *y, float a, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(va, _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}

T5 static int a5_gemm_pack(int dt, const void *W, int K, int n0, int k0, int kc, float *P) {
    if (kc % 16) return 0;
    size_t es = dt == ROSA_DT_F32 ? 4 : 2;
    for (int jb = 0; jb < 32; jb += 16)
        for (int kb = 0; kb < kc; kb += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                const char *src = (const char *)W + ((size_t)(n0 + jb + i) * K + k0 + kb) * es;
                if (dt == ROSA_DT_BF16) r[i] = load_bf16_16((const uint16_t *)src);
                else if (dt == ROSA_DT_F16) r[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)src));
                else r[i] = _mm512_loadu_ps((const float *)src);
            }
            a5_transpose16(r);
            for (int c = 0; c < 16; c++) _mm512_storeu_ps(P + (size_t)(kb + c) * 32 + jb, r[c]);
        }
    return 1;
}

/* Fused attention block (see cpu_kernels.h, att_block and att_block_group) for head sizes that
 * are multiples of 64: scores of 16 keys at a time reduced together through one transpose, exp
 * over the block, and the value sum with 64 output floats at a time held in registers across
 * all keys of the block.  The G query heads of a group go through each key and value row
 * together (rows of one kv head lie Hkv * D floats apart, 4 KiB for Qwen3's 8 x 128: all map to
 * the same cache sets, so a second pass per head would read them from memory again); each
 * head's arithmetic is exactly that of a call for it alone. */
static const rosa__kernels k_avx512;

/* 16 floats at element i of a row of float32 (BF 0) or bf16 (BF 1, widened exactly) */
T5 static inline __attribute__((always_inline)) __m512 a5_row16(const void *row, int i, const int BF) {
    return BF ? load_bf16_16((const uint16_t *)row + i) : _mm512_loadu_ps((const float *)row + i);
}

/* a key row of zeros (float32 or bf16) for the lanes of an unpacked chunk no query takes */
static const float a5_zero_row[1024] __attribute__((aligned(64)));

/* lanes of the 16 keys b0..b0+15 that lie in [lo, hi) */
static inline __mmask16 a5_key_mask(int b0, int lo, int hi) {
    int a = lo - b0, e = hi - b0;
    if (a < 0) a = 0;
    if (e > 16) e = 16;
    if (e <= a) return 0;
    return (__mmask16)((((1u << (e - a)) - 1u) << a) & 0xffffu);
}

/* A chunk of 16 key (or value) rows copied as float32 into P[d / 16][i][16] (row i's columns
 * d..d+15 at P + d * 16 + i * 16): cached rows of one kv head lie Hkv x D elements apart (4 KiB
 * for Qwen3's 8 x 128 float32), so 16 of them fall into the same L1 sets and evict each other
 * between the queries that read them; the copy is read from L1 by every query, at offsets the
 * compiler knows.  Rows no query takes (take[i] == 0, or i >= nk) become zeros and are not read. */
T5 static inline __attribute__((always_inline)) void a5_pack_chunk(const void *const *rows, int nk,
                                                                  const unsigned char *take, int D,
                                                                  float *P, const int BF) {
    for (int i = 0; i < 16; i++) {
        if (i < nk && take[i]) {
            const void *r = rows[i];
            for (int d = 0; d < D; d += 16) _mm512_store_ps(P + (size_t)d * 16 + i * 16, a5_row16(r, d, BF));
        } else {
            for (int d = 0; d < D; d += 16) _mm512_store_ps(P + (size_t)d * 16 + i * 16, _mm512_setzero_ps());
        }
    }
}

/* The value sums of GN (1..4) queries over a chunk of nk value rows, packed (a5_pack_chunk) or
 * read where they are (rows vr, those no query takes skipped): acc[g] += sc[g][b0 + i] v_i in
 * key order, each row loaded once for the GN queries.  A query's weight is 0 for keys outside
 * its range (and packed rows no query takes are zeros), so adding every row of the chunk
 * changes nothing for it there (0 * v + a == a): both forms give the same sums. */
T5 static inline __attribute__((always_inline)) void a5_att_values(const float (*sc)[ROSA_ATT_BLOCK], int b0,
                                                                  int nk, const float *P,
                                                                  const void *const *vr,
                                                                  const unsigned char *used, float *acc,
                                                                  int D, const int GN, const int BF,
                                                                  const int PACK) {
    for (int d = 0; d < D; d += 64) {
        const float *pd = P + (PACK ? (size_t)d * 16 : 0);
        __m512 a[4][4];
#pragma GCC unroll 4
        for (int g = 0; g < GN; g++)
            for (int j = 0; j < 4; j++) a[g][j] = _mm512_loadu_ps(acc + (size_t)g * D + d + 16 * j);
        for (int i = 0; i < nk; i++) {
            __m512 v0, v1, v2, v3;
            if (PACK) {
                v0 = _mm512_load_ps(pd + i * 16);
                v1 = _mm512_load_ps(pd + 256 + i * 16);
                v2 = _mm512_load_ps(pd + 512 + i * 16);
                v3 = _mm512_load_ps(pd + 768 + i * 16);
            } else {
                if (!used[i]) continue;
                v0 = a5_row16(vr[i], d, BF);
                v1 = a5_row16(vr[i], d + 16, BF);
                v2 = a5_row16(vr[i], d + 32, BF);
                v3 = a5_row16(vr[i], d + 48, BF);
            }
#pragma GCC unroll 4
            for (int g = 0; g < GN; g++) {
                __m512 p = _mm512_set1_ps(sc[g][b0 + i]);
                a[g][0] = _mm512_fmadd_ps(p, v0, a[g][0]);
                a[g][1] = _mm512_fmadd_ps(p, v1, a[g][1]);
                a[g][2] = _mm512_fmadd_ps(p, v2, a[g][2]);
                a[g][3] = _mm512_fmadd_ps(p, v3, a[g][3]);
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < GN; g++)
            for (int j = 0; j < 4; j++) _mm512_storeu_ps(acc + (size_t)g * D + d + 16 * j, a[g][j]);
    }
}

/* D % 64 == 0, D <= 1024, G <= ROSA_ATT_GROUP; rows float32 (BF 0) or bf16 (BF 1).  Query g
 * takes keys lo[g] <= b < hi[g] (all nb when lo is NULL).  Keys go in chunks of 16: key b in
 * lane b % 16 of chunk b / 16.  Keys outside a query's range give it no score, weight 0 and
 * nothing to its sum, so what a query gets depends on its own range, never on the other queries
 * of the call.  Rows outside every query's range are never read (a caller may point at slots
 * not yet written).  Per query: each key's score sums q . k in 16 lanes over d in order, then
 * the lanes as a tree (a5_transpose16); values are added in key order. */
T5 static inline __attribute__((always_inline)) void a5_att_group(const float *q, int G, const void *const *kp,
                                                                 const void *const *vp, int nb, int D,
                                                                 float scale, float *mx, float *sum,
                                                                 float *acc, const int *lo,
                                                                 const int *hi, const int BF,
                                                                 const int PACK) {
    float sc[ROSA_ATT_GROUP][ROSA_ATT_BLOCK];
    float P[16 * 1024] __attribute__((aligned(64))); /* packed: a chunk of keys, then of values */
    int glo[ROSA_ATT_GROUP], ghi[ROSA_ATT_GROUP];
    unsigned char used[ROSA_ATT_BLOCK]; /* the keys some query takes: the only rows read */
    __m512 vmax[ROSA_ATT_GROUP], vs = _mm512_set1_ps(scale);
    memset(used, lo ? 0 : 1, (size_t)nb);
    for (int g = 0; g < G; g++) {
        vmax[g] = _mm512_set1_ps(-INFINITY);
        glo[g] = lo ? lo[g] : 0;
        ghi[g] = hi ? hi[g] : nb;
        if (lo && glo[g] < ghi[g]) memset(used + glo[g], 1, (size_t)(ghi[g] - glo[g]));
    }
    for (int b0 = 0; b0 < nb; b0 += 16) {
        int nk = nb - b0 < 16 ? nb - b0 : 16, any = 0;
        for (int i = 0; i < nk; i++) any |= used[b0 + i];
        if (!any) continue;
        const void *kk[16]; /* unpacked: the rows, the zero row where no query takes the key */
        if (PACK) a5_pack_chunk(kp + b0, nk, used + b0, D, P, BF);
        else
            for (int i = 0; i < 16; i++) kk[i] = i < nk && used[b0 + i] ? kp[b0 + i] : (const void *)a5_zero_row;
        for (int g = 0; g < G; g++) {
            __mmask16 m = a5_key_mask(b0, glo[g], ghi[g]);
            if (!m) continue;
            const float *qg = q + (size_t)g * D;
            __m512 r[16]; /* 16 independent sums, one per key */
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) r[i] = _mm512_setzero_ps();
            for (int d = 0; d < D; d += 16) {
                __m512 qd = _mm512_loadu_ps(qg + d);
                const float *pd = P + (PACK ? (size_t)d * 16 : 0);
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    r[i] = _mm512_fmadd_ps(qd, PACK ? _mm512_load_ps(pd + i * 16) : a5_row16(kk[i], d, BF), r[i]);
            }
            a5_transpose16(r);
            __m512 t = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(r[0], r[1]), _mm512_add_ps(r[2], r[3])),
                                     _mm512_add_ps(_mm512_add_ps(r[4], r[5]), _mm512_add_ps(r[6], r[7])));
            __m512 t2 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(r[8], r[9]), _mm512_add_ps(r[10], r[11])),
                                      _mm512_add_ps(_mm512_add_ps(r[12], r[13]), _mm512_add_ps(r[14], r[15])));
            t = _mm512_mul_ps(_mm512_add_ps(t, t2), vs);
            _mm512_storeu_ps(sc[g] + b0, t);
            vmax[g] = _mm512_mask_max_ps(vmax[g], m, vmax[g], t);
        }
    }
    for (int g = 0; g < G; g++) {
        float bm = _mm512_reduce_max_ps(vmax[g]);
        if (bm > mx[g]) {
            if (sum[g] > 0) {
                float f = expf(mx[g] - bm);
                sum[g] *= f;
                a5_scale_f32(acc + (size_t)g * D, f, D);
            }
            mx[g] = bm;
        }
        __m512 vm = _mm512_set1_ps(mx[g]), vsum = _mm512_setzero_ps();
        for (int b0 = 0; b0 < nb; b0 += 16) {
            __mmask16 m = a5_key_mask(b0, glo[g], ghi[g]);
            if (!m) { /* no score here: weight 0 (sc[g] holds no scores for these keys) */
                _mm512_storeu_ps(sc[g] + b0, _mm512_setzero_ps());
                continue;
            }
            __m512 e = a5_exp16(_mm512_sub_ps(_mm512_loadu_ps(sc[g] + b0), vm));
            e = _mm512_maskz_mov_ps(m, e);
            vsum = _mm512_add_ps(vsum, e);
            _mm512_storeu_ps(sc[g] + b0, e);
        }
        sum[g] += _mm512_reduce_add_ps(vsum);
    }
    /* values, a chunk of 16 rows at a time: acc[g] += sc[g][b] v_b for the keys in order */
    for (int b0 = 0; b0 < nb; b0 += 16) {
        int nk = nb - b0 < 16 ? nb - b0 : 16, any = 0;
        for (int i = 0; i < nk; i++) any |= used[b0 + i];
        if (!any) continue;
        if (PACK) a5_pack_chunk(vp + b0, nk, used + b0, D, P, BF);
        for (int g0 = 0; g0 < G; g0 += 4) {
            int gn = G - g0 < 4 ? G - g0 : 4, live = 0;
            for (int g = g0; g < g0 + gn; g++) live |= a5_key_mask(b0, glo[g], ghi[g]) != 0;
            if (!live) continue; /* weights 0 */
            const void *const *vr = vp + b0;
            const unsigned char *u = used + b0;
            float *ag = acc + (size_t)g0 * D;
            switch (gn) {
            case 1: a5_att_values(sc + g0, b0, nk, P, vr, u, ag, D, 1, BF, PACK); break;
            case 2: a5_att_values(sc + g0, b0, nk, P, vr, u, ag, D, 2, BF, PACK); break;
            case 3: a5_att_values(sc + g0, b0, nk, P, vr, u, ag, D, 3, BF, PACK); break;
            default: a5_att_values(sc + g0, b0, nk, P, vr, u, ag, D, 4, BF, PACK); break;
            }
        }
    }
}

T5 static void a5_att_block_group(const float *q, int G, const float *const *kp, const float *const *vp,
                                  int nb, int D, float scale, float *mx, float *sum, float *acc,
                                  const int *lo, const int *hi) {
    if (D % 64 || D > 1024 || G > ROSA_ATT_GROUP) {
        rosa__att_group_generic(&k_avx512, q, G, kp, vp, nb, D, scale, mx, sum, acc, lo, hi);
        return;
    }
    /* one or two queries (decode) read the rows where they are; more share a packed copy */
    if (G > 2) a5_att_group(q, G, (const void *const *)kp, (const void *const *)vp, nb, D, scale, mx, sum, acc, lo, hi, 0, 1);
    else a5_att_group(q, G, (const void *const *)kp, (const void *const *)vp, nb, D, scale, mx, sum, acc, lo, hi, 0, 0);
}

/* bf16 rows: the same arithmetic, each element widened (exactly) as it is loaded.  The scores
 * stay float32 products (queries are not rounded), so vdpbf16ps is not used here. */
T5 static void a5_att_block_group_bf16(const float *q, int G, const uint16_t *const *kp,
                                       const uint16_t *const *vp, int nb, int D, float scale,
                                       float *mx, float *sum, float *acc, const int *lo,
                                       const int *hi) {
    if (D % 64 || D > 1024 || G > ROSA_ATT_GROUP) {
        rosa__att_group_generic_bf16(&k_avx512, q, G, kp, vp, nb, D, scale, mx, sum, acc, lo, hi);
        return;
    }
    if (G > 2) a5_att_group(q, G, (const void *const *)kp, (const void *const *)vp, nb, D, scale, mx, sum, acc, lo, hi, 1, 1);
    else a5_att_group(q, G, (const void *const *)kp, (const void *const *)vp, nb, D, scale, mx, sum, acc, lo, hi, 1, 0);
}

T5 static void a5_att_block(const float *q, const float *const *kp, const float *const *vp, int nb,
                            int D, float scale, float *mx, float *sum, float *acc) {
    a5_att_block_group(q, 1, kp, vp, nb, D, scale, mx, sum, acc, NULL, NULL);
}

static const rosa__kernels k_avx2;
/* 8 floats at element i of a row of float32 (BF 0) or bf16 (BF 1, widened exactly) */
T2 static inline __attribute__((always_inline)) __m256 a2_row8(const void *row, int i, const int BF) {
    return BF ? load_bf16_8((const uint16_t *)row + i) : _mm256_loadu_ps((const float *)row + i);
}

/* D % 32 == 0; rows float32 (BF 0) or bf16 (BF 1: a key row is widened into kw, then the same
 * dot product) */
T2 static inline __attribute__((always_inline)) void a2_att(const float *q, const void *const *kp,
                                                           const void *const *vp, int nb, int D,
                                                           float scale, float *mx, float *sum,
                                                           float *acc, const int BF) {
    float sc[ROSA_ATT_BLOCK], bm = -INFINITY, kw[1024];
    for (int b = 0; b < nb; b++) {
        const float *k = kp[b];
        if (BF) { a2_bf16_to_f32(kp[b], kw, D); k = kw; }
        sc[b] = a2_dot_f32(q, k, D) * scale;
        if (sc[b] > bm) bm = sc[b];
    }
    if (bm > *mx) {
        if (*sum > 0) {
            float f = expf(*mx - bm);
            *sum *= f;
            a2_scale_f32(acc, f, D);
        }
        *mx = bm;
    }
    for (int b = 0; b < nb; b++) sc[b] -= *mx;
    a2_exp_f32(sc, nb);
    for (int b = 0; b < nb; b++) *sum += sc[b];
    for (int d = 0; d < D; d += 32) {
        __m256 a0 = _mm256_loadu_ps(acc + d), a1 = _mm256_loadu_ps(acc + d + 8);
        __m256 a2 = _mm256_loadu_ps(acc + d + 16), a3 = _mm256_loadu_ps(acc + d + 24);
        for (int b = 0; b < nb; b++) {
            __m256 p = _mm256_set1_ps(sc[b]);
            const void *v = vp[b];
            a0 = _mm256_fmadd_ps(p, a2_row8(v, d, BF), a0);
            a1 = _mm256_fmadd_ps(p, a2_row8(v, d + 8, BF), a1);
            a2 = _mm256_fmadd_ps(p, a2_row8(v, d + 16, BF), a2);
            a3 = _mm256_fmadd_ps(p, a2_row8(v, d + 24, BF), a3);
        }
        _mm256_storeu_ps(acc + d, a0);
        _mm256_storeu_ps(acc + d + 8, a1);
        _mm256_storeu_ps(acc + d + 16, a2);
        _mm256_storeu_ps(acc + d + 24, a3);
    }
}

T2 static void a2_att_block(const float *q, const float *const *kp, const float *const *vp, int nb,
                            int D, float scale, float *mx, float *sum, float *acc) {
    if (D % 32) {
        rosa__att_block_generic(&k_avx2, q, kp, vp, nb, D, scale, mx, sum, acc);
        return;
    }
    a2_att(q, (const void *const *)kp, (const void *const *)vp, nb, D, scale, mx, sum, acc, 0);
}

T2 static void a2_att_block_group_bf16(const float *q, int G, const uint16_t *const *kp,
                                       const uint16_t *const *vp, int nb, int D, float scale,
                                       float *mx, float *sum, float *acc, const int *lo,
                                       const int *hi) {
    for (int g = 0; g < G; g++) {
        const float *qg = q + (size_t)g * D;
        float *ag = acc + (size_t)g * D;
        int l = lo ? lo[g] : 0, n = (hi ? hi[g] : nb) - l;
        if (n <= 0) continue;
        if (D % 32) rosa__att_block_generic_bf16(&k_avx2, qg, kp + l, vp + l, n, D, scale, mx + g, sum + g, ag);
        else a2_att(qg, (const void *const *)(kp + l), (const void *const *)(vp + l), n, D, scale, mx + g, sum + g, ag, 1);
    }
}

T2 static void a2_att_block_group(const float *q, int G, const float *const *kp, const float *const *vp,
                                  int nb, int D, float scale, float *mx, float *sum, float *acc,
                                  const int *lo, const int *hi) {
    for (int g = 0; g < G; g++) {
        int l = lo ? lo[g] : 0, n = (hi ? hi[g] : nb) - l;
        if (n > 0)
            a2_att_block(q + (size_t)g * D, kp + l, vp + l, n, D, scale, mx + g, sum + g, acc + (size_t)g * D);
    }
}

static const rosa__kernels k_avx2 = {
    .name = "avx2", .dot_f32 = a2_dot_f32, .dot_bf16 = a2_dot_bf16, .dot_f16 = a2_dot_f16,
    .bf16_to_f32 = a2_bf16_to_f32, .f16_to_f32 = a2_f16_to_f32,
    .gemm_tile = a2_gemm_tile, .gemm_mr = A2_MR, .gemm_nr = 16,
    .exp_f32 = a2_exp_f32, .axpy_f32 = a2_axpy_f32, .scale_f32 = a2_scale_f32,
    .att_block = a2_att_block, .att_block_group = a2_att_block_group,
    .att_block_group_bf16 = a2_att_block_group_bf16,
    .round_bf16 = rosa__round_bf16_scalar, .gemv_bf16 = rosa__gemv_bf16_avx2};
#define K_AVX512_COMMON                                                                           \
    .name = "avx512", .dot_f32 = a5_dot_f32, .dot_bf16 = a5_dot_bf16, .dot_f16 = a5_dot_f16,      \
    .bf16_to_f32 = a5_bf16_to_f32, .f16_to_f32 = a2_f16_to_f32,                                   \
    .gemm_tile = a5_gemm_tile, .gemm_mr = A5_MR, .gemm_nr = 32, .gemm_pack = a5_gemm_pack,         \
    .exp_f32 = a5_exp_f32, .axpy_f32 = a5_axpy_f32, .scale_f32 = a5_scale_f32,                     \
    .att_block = a5_att_block, .att_block_group = a5_att_block_group,                              \
    .att_block_group_bf16 = a5_att_block_group_bf16,                                               \
    .round_bf16 = rosa__round_bf16_scalar,                                                         \
    .gemv_bf16 = rosa__gemv_bf16_avx512
static const rosa__kernels k_avx512 = {K_AVX512_COMMON};
/* the same set on a CPU with AVX512_BF16: bf16 mode's matrix-vector products take bf16 input */
static const rosa__kernels k_avx512_bf16 = {K_AVX512_COMMON,
                                            .gemv_bf16_x16 = rosa__gemv_bf16_x16_avx512bf16};

const rosa__kernels *rosa__kernels_avx2(void) {
    __builtin_cpu_init();
    /* F16C is not queried: clang cannot, and every AVX2+FMA CPU has it */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &k_avx2;
    return NULL;
}

const rosa__kernels *rosa__kernels_avx512(void) {
    __builtin_cpu_init();
    if (!rosa__kernels_avx2() || !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return NULL;
    return rosa__cpu_has_avx512bf16() && !getenv("ROSA_NO_AVX512BF16") ? &k_avx512_bf16 : &k_avx512;
}

#else
const rosa__kernels *rosa__kernels_avx2(void) { return NULL; }
const rosa__kernels *rosa__kernels_avx512(void) { return NULL; }
#endif
