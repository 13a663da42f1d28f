/* cpu_kernels_x86.c: AVX2+FMA+F16C and AVX-512 variants of the CPU kernels.  Each function is
 * compiled for its instruction set with a target attribute and only called after the run-time
 * check in rosa__kernels_avx2/avx512; other architectures get NULL (portable kernels). */
#include "cpu/cpu_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define T2 __attribute__((target("avx2,fma,f16c")))
#define T5 __attribute__((target("avx512f,avx512bw,avx2,fma,f16c")))

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

static const rosa__kernels k_avx2 = {
    .name = "avx2", .dot_f32 = a2_dot_f32, .dot_bf16 = a2_dot_bf16, .dot_f16 = a2_dot_f16,
    .bf16_to_f32 = a2_bf16_to_f32, .f16_to_f32 = a2_f16_to_f32,
    .gemm_tile = a2_gemm_tile, .gemm_mr = A2_MR, .gemm_nr = 16};
static const rosa__kernels k_avx512 = {
    .name = "avx512", .dot_f32 = a5_dot_f32, .dot_bf16 = a5_dot_bf16, .dot_f16 = a5_dot_f16,
    .bf16_to_f32 = a5_bf16_to_f32, .f16_to_f32 = a2_f16_to_f32,
    .gemm_tile = a5_gemm_tile, .gemm_mr = A5_MR, .gemm_nr = 32};

const rosa__kernels *rosa__kernels_avx2(void) {
    __builtin_cpu_init();
    /* F16C is not queried: clang cannot, and every AVX2+FMA CPU has it */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &k_avx2;
    return NULL;
}

const rosa__kernels *rosa__kernels_avx512(void) {
    __builtin_cpu_init();
    if (rosa__kernels_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return &k_avx512;
    return NULL;
}
#else
const rosa__kernels *rosa__kernels_avx2(void) { return NULL; }
const rosa__kernels *rosa__kernels_avx512(void) { return NULL; }
#endif
