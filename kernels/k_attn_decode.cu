/* k_attn_decode.cu: attention for calls whose tiles are single rows (decode steps), written to
 * stream the cache at memory bandwidth.  Same meaning as rc_attention (k_attn.cu) and the same
 * split partials, so the combine kernel is shared; when one split covers the key range the
 * block writes the output itself (one pass, no combine).
 *
 * Why a second kernel: a decode row has one query per head, so the tiled kernel's shared-memory
 * staging and per-lane loops over D buy nothing and its scalar loads leave the bandwidth idle.
 * Here a group of LPK lanes owns one key at a time: each lane loads 16 bytes of the key and of
 * the value (8 bf16 or 4 f32 head dims) per chunk, the group reduces the dot product with
 * shuffles, and every group keeps its own online softmax over the keys it saw (KB keys per
 * step, so 2 * KB 16-byte loads per lane are in flight).  Groups merge through shared memory at
 * the end.  Slots advance incrementally (no per-key division); page ids come from the table
 * with a shift (P a power of two).  NOT YET RUN ON A GPU: see docs/CUDA.md.
 *
 * Supported: head_dim a multiple of 8 (bf16) or 4 (f32) whose 16-byte chunks split evenly over
 * a power-of-two number of lanes (<= 32) with at most 2 chunks per lane, Hq / Hkv in {1, 2, 4},
 * P a power of two, max_tile_rows == 1; otherwise rc_attention_decode returns
 * cudaErrorNotSupported and the caller uses rc_attention. */
#include "k_common.cuh"

#define DEC_THREADS 128
#define DEC_KB 4 /* keys per group per step */

/* 16 bytes of keys/values as floats: E = 8 (bf16) or 4 (f32) */
template <typename T> struct vec16;
template <> struct vec16<float> {
    static constexpr int E = 4;
    static __device__ __forceinline__ void load(float *o, const void *base, size_t elem) {
        float4 v = *(const float4 *)((const float *)base + elem);
        o[0] = v.x; o[1] = v.y; o[2] = v.z; o[3] = v.w;
    }
};
template <> struct vec16<__nv_bfloat16> {
    static constexpr int E = 8;
    static __device__ __forceinline__ void load(float *o, const void *base, size_t elem) {
        uint4 v = *(const uint4 *)((const __nv_bfloat16 *)base + elem);
        const __nv_bfloat162 *h = (const __nv_bfloat162 *)&v;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float2 f = __bfloat1622float2(h[i]);
            o[2 * i] = f.x;
            o[2 * i + 1] = f.y;
        }
    }
};

/* grid (ntiles, Hkv, nsplit), DEC_THREADS threads; G query heads per kv head, CPL 16-byte chunks
 * per lane, LPK = D / (E * CPL) lanes per key.  smem: groups * G * (D + 2) floats. */
template <typename T, int G, int CPL>
__global__ void __launch_bounds__(DEC_THREADS) attn_decode_kernel(const rc_attn_args a, int lpk_log2, int p_log2) {
    extern __shared__ float sm[];
    constexpr int E = vec16<T>::E;
    const int D = a.D, Hq = a.Hq, Hkv = a.Hkv, W = a.kv.W;
    const int LPK = 1 << lpk_log2, groups_per_warp = 32 >> lpk_log2;
    const rc_tile tile = a.tiles[blockIdx.x];
    const int kh = blockIdx.y, sp = blockIdx.z;
    const rc_seq sq = a.seqs[tile.seq];
    const int32_t *table = a.kv.tables[tile.seq];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int sub = lane & (LPK - 1);                                  /* chunk column within a key */
    const int grp = warp * groups_per_warp + (lane >> lpk_log2);       /* key group of the block */
    const int ngroups = (DEC_THREADS / 32) * groups_per_warp;
    const int row = tile.row0, pos = sq.pos0 + (row - sq.row0);

    /* the key range of this split, as in rc_attention */
    const int klo = W ? max(0, pos - W + 1) : 0;
    const int len = pos - klo + 1;
    const int per = RC_CDIV(len, a.nsplit);
    const int a0 = klo + sp * per, a1 = min(pos, a0 + per - 1);

    /* this lane's query chunks, pre-scaled */
    float q[G][CPL][E];
#pragma unroll
    for (int h = 0; h < G; h++)
#pragma unroll
        for (int c = 0; c < CPL; c++)
#pragma unroll
            for (int e = 0; e < E; e++)
                q[h][c][e] = a.q[((size_t)row * Hq + kh * G + h) * D + (size_t)(c * LPK + sub) * E + e] * a.scale;

    float m[G], l[G], acc[G][CPL][E];
#pragma unroll
    for (int h = 0; h < G; h++) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
#pragma unroll
        for (int c = 0; c < CPL; c++)
#pragma unroll
            for (int e = 0; e < E; e++) acc[h][c][e] = 0.0f;
    }

    const size_t hs = (size_t)Hkv * D; /* elements per token slot */
    /* the loop runs the same steps in every lane of a warp (the shuffles need all 32): a group
     * whose keys lie past a1 just sees no valid key */
    const int step = ngroups * DEC_KB, gofs = (lane >> lpk_log2) * DEC_KB;
    int slot0 = W ? (a0 + grp * DEC_KB) % W : a0 + grp * DEC_KB; /* the only division */
    for (int jw = a0 + warp * groups_per_warp * DEC_KB; jw <= a1; jw += step) {
        const int j0 = jw + gofs;
        float kx[DEC_KB][CPL][E], vx[DEC_KB][CPL][E];
        bool ok[DEC_KB];
#pragma unroll
        for (int b = 0; b < DEC_KB; b++) {
            int j = j0 + b;
            ok[b] = j <= a1;
            if (!ok[b]) {
#pragma unroll
                for (int c = 0; c < CPL; c++)
#pragma unroll
                    for (int e = 0; e < E; e++) kx[b][c][e] = vx[b][c][e] = 0.0f;
                continue;
            }
            const void *kb, *vb;
            size_t base;
            if (j < sq.pos0) {
                int s = slot0 + b;
                if (W) while (s >= W) s -= W;
                base = ((size_t)table[s >> p_log2] * (1 << p_log2) + (s & ((1 << p_log2) - 1))) * hs + (size_t)kh * D;
                kb = a.kv.kpool;
                vb = a.kv.vpool;
            } else {
                base = ((size_t)(sq.row0 + j - sq.pos0) * Hkv + kh) * D;
                kb = a.k;
                vb = a.v;
            }
#pragma unroll
            for (int c = 0; c < CPL; c++) {
                vec16<T>::load(kx[b][c], kb, base + (size_t)(c * LPK + sub) * E);
                vec16<T>::load(vx[b][c], vb, base + (size_t)(c * LPK + sub) * E);
            }
        }
#pragma unroll
        for (int h = 0; h < G; h++) {
            float s[DEC_KB], smax = -INFINITY;
#pragma unroll
            for (int b = 0; b < DEC_KB; b++) {
                float d = 0.0f;
#pragma unroll
                for (int c = 0; c < CPL; c++)
#pragma unroll
                    for (int e = 0; e < E; e++) d += q[h][c][e] * kx[b][c][e];
                for (int o = LPK >> 1; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
                s[b] = ok[b] ? d : -INFINITY;
                smax = fmaxf(smax, s[b]);
            }
            if (smax != -INFINITY) { /* else: no key of this group in this step */
                float mnew = fmaxf(m[h], smax), corr = expf(m[h] - mnew);
                l[h] *= corr;
#pragma unroll
                for (int c = 0; c < CPL; c++)
#pragma unroll
                    for (int e = 0; e < E; e++) acc[h][c][e] *= corr;
#pragma unroll
                for (int b = 0; b < DEC_KB; b++) {
                    float p = ok[b] ? expf(s[b] - mnew) : 0.0f;
                    l[h] += p;
#pragma unroll
                    for (int c = 0; c < CPL; c++)
#pragma unroll
                        for (int e = 0; e < E; e++) acc[h][c][e] += p * vx[b][c][e];
                }
                m[h] = mnew;
            }
        }
        if (W) {
            slot0 += step;
            while (slot0 >= W) slot0 -= W;
        } else {
            slot0 += step;
        }
    }

    /* merge the groups: each writes (m, l, acc chunks) per head, then threads reduce per dim */
    const int stride = D + 2;
    float *mine = sm + (size_t)grp * G * stride;
#pragma unroll
    for (int h = 0; h < G; h++) {
#pragma unroll
        for (int c = 0; c < CPL; c++)
#pragma unroll
            for (int e = 0; e < E; e++) mine[h * stride + (c * LPK + sub) * E + e] = acc[h][c][e];
        if (sub == 0) {
            mine[h * stride + D] = m[h];
            mine[h * stride + D + 1] = l[h];
        }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < G * D; idx += DEC_THREADS) {
        int h = idx / D, d = idx - h * D;
        float mstar = -INFINITY;
        for (int g2 = 0; g2 < ngroups; g2++) mstar = fmaxf(mstar, sm[(size_t)(g2 * G + h) * stride + D]);
        float num = 0.0f, den = 0.0f;
        if (mstar != -INFINITY)
            for (int g2 = 0; g2 < ngroups; g2++) {
                const float *p = sm + (size_t)(g2 * G + h) * stride;
                if (!(p[D + 1] > 0.0f)) continue;
                float f = expf(p[D] - mstar);
                num += p[d] * f;
                den += p[D + 1] * f;
            }
        int head = kh * G + h;
        if (a.nsplit == 1) {
            rc_st(a.out, a.out_dt, ((size_t)row * Hq + head) * D + d, den > 0.0f ? num / den : 0.0f);
        } else {
            float *pp = a.part + (((size_t)sp * a.N + row) * Hq + head) * (D + 2);
            pp[d] = num;
            if (d == 0) {
                pp[D] = mstar;
                pp[D + 1] = den;
            }
        }
    }
}

static int ilog2_exact(int x) {
    int k = 0;
    while ((1 << k) < x) k++;
    return (1 << k) == x ? k : -1;
}

template <typename T, int G>
static int launch_g(const rc_attn_args *a, int cpl, int lpk_log2, int p_log2, cudaStream_t st) {
    int ngroups = (DEC_THREADS / 32) * (32 >> lpk_log2);
    size_t smem = sizeof(float) * (size_t)ngroups * G * (a->D + 2);
    dim3 grid(a->ntiles, a->Hkv, a->nsplit);
    if (cpl == 1) {
        if (smem > 48 * 1024) {
            cudaError_t e = cudaFuncSetAttribute(attn_decode_kernel<T, G, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
            if (e != cudaSuccess) return (int)e;
        }
        attn_decode_kernel<T, G, 1><<<grid, DEC_THREADS, smem, st>>>(*a, lpk_log2, p_log2);
    } else if constexpr (sizeof(T) == 4) { /* two chunks per lane: only f32 (bf16 D <= 256 needs one) */
        if (smem > 48 * 1024) {
            cudaError_t e = cudaFuncSetAttribute(attn_decode_kernel<T, G, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
            if (e != cudaSuccess) return (int)e;
        }
        attn_decode_kernel<T, G, 2><<<grid, DEC_THREADS, smem, st>>>(*a, lpk_log2, p_log2);
    } else {
        return (int)cudaErrorNotSupported;
    }
    return rc_launched();
}

template <typename T>
static int launch_t(const rc_attn_args *a, int g, int cpl, int lpk_log2, int p_log2, cudaStream_t st) {
    if (g == 1) return launch_g<T, 1>(a, cpl, lpk_log2, p_log2, st);
    if (g == 2) return launch_g<T, 2>(a, cpl, lpk_log2, p_log2, st);
    return launch_g<T, 4>(a, cpl, lpk_log2, p_log2, st);
}

extern "C" int rc_attention_decode_supported(const rc_attn_args *a) {
    if (a->kv.dt != RC_F32 && a->kv.dt != RC_BF16) return 0;
    if (a->Hkv <= 0 || a->Hq % a->Hkv || a->D <= 0 || a->D > RC_ATTN_MAXD || a->max_tile_rows != 1) return 0;
    int g = a->Hq / a->Hkv, E = a->kv.dt == RC_BF16 ? 8 : 4;
    if (g != 1 && g != 2 && g != 4) return 0;
    if (a->D % E || ilog2_exact(a->kv.P) < 0) return 0;
    int ch = a->D / E;
    return (ch <= 32 && ilog2_exact(ch) >= 0) || (ch % 2 == 0 && ch / 2 <= 32 && ilog2_exact(ch / 2) >= 0);
}

extern "C" int rc_attention_decode(const rc_attn_args *a, cudaStream_t st) {
    if (a->N <= 0 || a->ntiles <= 0) return 0;
    if (!rc_attention_decode_supported(a)) return (int)cudaErrorNotSupported;
    if (a->nsplit < 1 || a->nsplit > 65535 || a->Hkv > 65535 || a->N > 65535 || a->kv.W < 0)
        return (int)cudaErrorInvalidValue;
    int E = a->kv.dt == RC_BF16 ? 8 : 4, ch = a->D / E;
    int cpl = ilog2_exact(ch) >= 0 && ch <= 32 ? 1 : 2;
    int lpk_log2 = ilog2_exact(ch / cpl), p_log2 = ilog2_exact(a->kv.P), g = a->Hq / a->Hkv;
    int rc = a->kv.dt == RC_BF16 ? launch_t<__nv_bfloat16>(a, g, cpl, lpk_log2, p_log2, st)
                                 : launch_t<float>(a, g, cpl, lpk_log2, p_log2, st);
    if (rc || a->nsplit == 1) return rc;
    return rc_attention_combine(a, st);
}
