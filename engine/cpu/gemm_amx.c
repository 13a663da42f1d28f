/* gemm_amx.c: --precision bf16 matrix products on Intel AMX tiles (Sapphire Rapids and later).
 *
 * One AMX tile multiply (TDPBF16PS) adds a 16 x 32 bf16 block of x times a 32 x 16 block of W^T
 * into a 16 x 16 float32 tile: 8,192 multiply-adds per instruction, against 32 for an AVX-512
 * FMA.  Each call covers 32 rows of x by 32 weight rows with four accumulator tiles kept in the
 * tile registers over the whole depth K, so every output is summed in float32 in one pass.
 *
 * Layouts (built by the backend and by pack_panel below):
 *   x16   the rows of x rounded to bf16, row stride ldx (a multiple of 32, zero beyond K), and
 *         rows up to a multiple of 32 (zero beyond T): A tiles load 16 rows x 64 bytes from it.
 *   panel the 32 weight rows of one output block as pairs P[k / 2][32] (W[n][k], W[n][k + 1] in
 *         one 32-bit unit, zero beyond K): B tiles load 16 pair rows x 16 columns.
 * The operating system must grant the tile state once per process (arch_prctl), which
 * rosa__amx_available does; without AMX (or that grant) the backend uses the AVX-512 paths. */
#include <stdatomic.h>
#include <string.h>

#include "cpu/gemm_cpu.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cpu/simd_x86.h"

#define TA __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx2,fma,f16c")))
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

int rosa__amx_available(void) {
    static atomic_int state = -1; /* -1 unknown, 0 no, 1 yes */
    int s = atomic_load(&state);
    if (s >= 0) return s;
    unsigned a, b, c, d;
    s = 0;
    /* CPUID.(7,0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE; AVX-512 for the packing */
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 22)) && (d & (1u << 24)) &&
        rosa__kernels_avx512() && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0)
        s = 1;
    atomic_store(&state, s);
    return s;
}

/* 32 weight rows n0.. (nv of them real) x K -> P[ldx / 2][32] pairs, zero past K and nv */
TA static void pack_panel(const uint16_t *W, int K, int n0, int nv, int ldx, uint32_t *P) {
    int kfull = nv == 32 ? K / 32 * 32 : 0;
    for (int jb = 0; jb < 32; jb += 16)
        for (int kb = 0; kb < kfull; kb += 32) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = _mm512_castsi512_ps(_mm512_loadu_si512(W + (size_t)(n0 + jb + i) * K + kb));
            a5_transpose16(r);
            for (int c = 0; c < 16; c++) _mm512_storeu_ps((float *)(P + (size_t)(kb / 2 + c) * 32 + jb), r[c]);
        }
    for (int k2 = kfull / 2; k2 < ldx / 2; k2++)
        for (int j = 0; j < 32; j++) {
            uint32_t lo = 0, hi = 0;
            if (j < nv && 2 * k2 < K) {
                const uint16_t *row = W + (size_t)(n0 + j) * K;
                lo = row[2 * k2];
                if (2 * k2 + 1 < K) hi = row[2 * k2 + 1];
            }
            P[(size_t)k2 * 32 + j] = lo | hi << 16;
        }
}

TA void rosa__gemm_amx(const uint16_t *W, int N, int K, const uint16_t *x16, int ldx, int T,
                       float *y, int n0, int n1, void *scratch) {
    amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
    uint32_t *P = scratch;
    float *C = (float *)(P + (size_t)ldx / 2 * 32); /* [32][32] staging of the four C tiles */
    size_t xs = (size_t)ldx * 2;                     /* bytes per x16 row */
    for (int nb = n0; nb < n1; nb += 32) {
        int nv = n1 - nb < 32 ? n1 - nb : 32;
        pack_panel(W, K, nb, nv, ldx, P);
        for (int t0 = 0; t0 < T; t0 += 32) {
            _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            const uint16_t *a0 = x16 + (size_t)t0 * ldx, *a1 = a0 + (size_t)16 * ldx;
            for (int k = 0; k < ldx; k += 32) {
                _tile_loadd(4, a0 + k, xs);
                _tile_loadd(5, a1 + k, xs);
                _tile_loadd(6, P + (size_t)k / 2 * 32, 128);
                _tile_loadd(7, P + (size_t)k / 2 * 32 + 16, 128);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, C, 128);
            _tile_stored(1, C + 16, 128);
            _tile_stored(2, C + 16 * 32, 128);
            _tile_stored(3, C + 16 * 32 + 16, 128);
            int rows = T - t0 < 32 ? T - t0 : 32;
            for (int r = 0; r < rows; r++) memcpy(y + (size_t)(t0 + r) * N + nb, C + r * 32, (size_t)nv * sizeof(float));
        }
    }
    _tile_release();
}
#else
int rosa__amx_available(void) { return 0; }
void rosa__gemm_amx(const uint16_t *W, int N, int K, const uint16_t *x16, int ldx, int T, float *y,
                    int n0, int n1, void *scratch) {
    (void)W; (void)N; (void)K; (void)x16; (void)ldx; (void)T; (void)y; (void)n0; (void)n1; (void)scratch;
}
#endif
