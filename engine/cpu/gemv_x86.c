/* gemv_x86.c: decode's matrix-vector products over bf16 weights (cpu_kernels.h, gemv_bf16 and
 * gemv_bf16_x16) for AVX2+FMA, AVX-512 and AVX512_BF16.  At batch 1 every weight is used once
 * per token, so these loops are bound by reading the weights: each pass runs GEMV_NR rows at
 * once (the loads of x shared), keeps independent sums per row and prefetches the rows of the
 * next pass (prefetches past the last row are harmless: they never fault).  Compiled per
 * instruction set with target attributes and only reached through the kernel sets of
 * cpu_kernels_x86.c after their run-time checks. */
#include "cpu/gemv_x86.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "cpu/simd_x86.h"

#define T2 __attribute__((target("avx2,fma,f16c")))
#define TB __attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma")))

/* Rows per pass.  Each row prefetches the same columns of its counterpart in the next pass
 * (NR rows further on): far enough ahead to cover the memory latency, and in the order the
 * next pass reads them.  Measured on the Sapphire Rapids VM against prefetching a fixed
 * 512-2048 values ahead and against none (none: 0.7-0.85 of a plain streaming read). */
#define GEMV_NR 4

static inline float bf16_val(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
}

/* ---- AVX2: 16 values per step, converted by zero-extension and a shift ---- */
T2 static inline float a2_hsum(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    return _mm_cvtss_f32(_mm_add_ss(lo, _mm_movehdup_ps(lo)));
}

T2 static inline __m256 a2_bf16x8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

T2 static inline __attribute__((always_inline)) void a2_rows(const uint16_t *w, size_t ldw, int K,
                                                            const float *x, float *y, const int NR) {
    __m256 s0[GEMV_NR], s1[GEMV_NR];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) s0[i] = s1[i] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m256 xa = _mm256_loadu_ps(x + k), xb = _mm256_loadu_ps(x + k + 8);
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const uint16_t *wi = w + (size_t)i * ldw + k;
            _mm_prefetch((const char *)(wi + (size_t)NR * ldw), _MM_HINT_T0);
            s0[i] = _mm256_fmadd_ps(a2_bf16x8(wi), xa, s0[i]);
            s1[i] = _mm256_fmadd_ps(a2_bf16x8(wi + 8), xb, s1[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) {
        float s = a2_hsum(_mm256_add_ps(s0[i], s1[i]));
        const uint16_t *wi = w + (size_t)i * ldw;
        for (int j = k; j < K; j++) s += bf16_val(wi[j]) * x[j];
        y[i] = s;
    }
}

T2 void rosa__gemv_bf16_avx2(const void *W, size_t ldw, int nrows, int K, const float *x, float *y) {
    const uint16_t *w = W;
    int r = 0;
    for (; r + GEMV_NR <= nrows; r += GEMV_NR) a2_rows(w + (size_t)r * ldw, ldw, K, x, y + r, GEMV_NR);
    for (; r < nrows; r++) a2_rows(w + (size_t)r * ldw, ldw, K, x, y + r, 1);
}

/* ---- AVX-512: 32 values (64 bytes) per step.  A 32-bit lane of bf16 pairs holds the even
 * value in its low half and the odd one in its high half: a shift left by 16 gives the even
 * values as float32, masking the low half gives the odd ones, so one load and two integer
 * operations convert 32 weights with no cross-lane shuffle; x is split into its even and odd
 * values once per step for all rows of the pass. ---- */
T5 static inline __attribute__((always_inline)) void a5_rows(const uint16_t *w, size_t ldw, int K,
                                                            const float *x, float *y, const int NR) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    __m512 se[GEMV_NR], so[GEMV_NR];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) se[i] = so[i] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        __m512 xa = _mm512_loadu_ps(x + k), xb = _mm512_loadu_ps(x + k + 16);
        __m512 xe = _mm512_permutex2var_ps(xa, ie, xb), xo = _mm512_permutex2var_ps(xa, io, xb);
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const uint16_t *wi = w + (size_t)i * ldw + k;
            _mm_prefetch((const char *)(wi + (size_t)NR * ldw), _MM_HINT_T0);
            __m512i v = _mm512_loadu_si512(wi);
            se[i] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, se[i]);
            so[i] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi)), xo, so[i]);
        }
    }
    if (k < K) { /* 1..31 values left: masked loads, zeros beyond K */
        int n = K - k;
        __mmask32 mw = (__mmask32)((1u << n) - 1);
        __mmask16 ma = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
        __mmask16 mb = n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
        __m512 xa = _mm512_maskz_loadu_ps(ma, x + k), xb = _mm512_maskz_loadu_ps(mb, x + k + 16);
        __m512 xe = _mm512_permutex2var_ps(xa, ie, xb), xo = _mm512_permutex2var_ps(xa, io, xb);
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            __m512i v = _mm512_maskz_loadu_epi16(mw, w + (size_t)i * ldw + k);
            se[i] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, se[i]);
            so[i] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi)), xo, so[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) y[i] = _mm512_reduce_add_ps(_mm512_add_ps(se[i], so[i]));
}

T5 void rosa__gemv_bf16_avx512(const void *W, size_t ldw, int nrows, int K, const float *x, float *y) {
    const uint16_t *w = W;
    int r = 0;
    for (; r + GEMV_NR <= nrows; r += GEMV_NR) a5_rows(w + (size_t)r * ldw, ldw, K, x, y + r, GEMV_NR);
    for (; r < nrows; r++) a5_rows(w + (size_t)r * ldw, ldw, K, x, y + r, 1);
}

/* ---- AVX512_BF16: x already bf16; one vdpbf16ps multiplies 32 weight/input pairs and adds
 * each lane's two products into its float32 sum ---- */
TB static inline __attribute__((always_inline)) void ab_rows(const uint16_t *w, size_t ldw, int K,
                                                            const uint16_t *x16, float *y, const int NR) {
    __m512 s[GEMV_NR];
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) s[i] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        __m512bh xv = (__m512bh)_mm512_loadu_si512(x16 + k);
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++) {
            const uint16_t *wi = w + (size_t)i * ldw + k;
            _mm_prefetch((const char *)(wi + (size_t)NR * ldw), _MM_HINT_T0);
            s[i] = _mm512_dpbf16_ps(s[i], (__m512bh)_mm512_loadu_si512(wi), xv);
        }
    }
    if (k < K) {
        __mmask32 m = (__mmask32)((1u << (K - k)) - 1);
        __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m, x16 + k);
#pragma GCC unroll 4
        for (int i = 0; i < NR; i++)
            s[i] = _mm512_dpbf16_ps(s[i], (__m512bh)_mm512_maskz_loadu_epi16(m, w + (size_t)i * ldw + k), xv);
    }
#pragma GCC unroll 4
    for (int i = 0; i < NR; i++) y[i] = _mm512_reduce_add_ps(s[i]);
}

TB void rosa__gemv_bf16_x16_avx512bf16(const void *W, size_t ldw, int nrows, int K, const uint16_t *x16, float *y) {
    const uint16_t *w = W;
    int r = 0;
    for (; r + GEMV_NR <= nrows; r += GEMV_NR) ab_rows(w + (size_t)r * ldw, ldw, K, x16, y + r, GEMV_NR);
    for (; r < nrows; r++) ab_rows(w + (size_t)r * ldw, ldw, K, x16, y + r, 1);
}

int rosa__cpu_has_avx512bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
}
#endif
