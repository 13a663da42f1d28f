/* simd_x86.h: x86 SIMD pieces shared by the CPU kernel files (cpu_kernels_x86.c, gemm_amx.c).
 * Include only inside an x86 + GCC/clang section, after <immintrin.h>. */
#ifndef ROSA_SIMD_X86_H
#define ROSA_SIMD_X86_H

#define T5 __attribute__((target("avx512f,avx512bw,avx2,fma,f16c")))

/* 16 rows of 16 floats -> 16 columns: 32-bit, 64-bit and two 128-bit-lane interleaves */
static inline __attribute__((always_inline, target("avx512f,avx512bw,avx2,fma,f16c"))) void a5_transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[i + 8] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* t[i]: rows 2i, 2i+1, columns 4L, 4L+1 per lane L; t[i+8]: columns 4L+2, 4L+3 */
    for (int g = 0; g < 4; g++) {
        __m512d a = _mm512_castps_pd(t[2 * g]), b = _mm512_castps_pd(t[2 * g + 1]);
        __m512d c = _mm512_castps_pd(t[2 * g + 8]), d = _mm512_castps_pd(t[2 * g + 9]);
        u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    /* u[4g + c], lane L: rows 4g..4g+3 of column 4L + c */
    for (int c = 0; c < 4; c++) {
        __m512 v = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), w = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88), w2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_f32x4(v, v2, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(w, w2, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(v, v2, 0xdd);
        r[12 + c] = _mm512_shuffle_f32x4(w, w2, 0xdd);
    }
}

#endif
