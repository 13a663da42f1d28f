/* k_attn.cu: causal (+ sliding window) grouped-query attention over the paged KV cache.
 *
 * One kernel serves prefill and decode.  A block takes one tile of rows of one sequence, one
 * kv head (so K/V are read once for the Hq/Hkv query heads that share it) and one split of the
 * tile's key range (flash-decoding: decode has one row per sequence, so the key range is split
 * over blocks to fill the GPU).  Keys stream through shared memory RC_ATTN_KTILE at a time,
 * one key per lane; each warp keeps an online softmax for up to QPW query vectors.  No score
 * matrix is stored.  A second kernel merges the splits.
 *
 * Keys before a sequence's pos0 come from the cache (which still holds them: this call's keys
 * are stored afterwards by rc_kv_store); keys of this call come from its own k/v rows. */
#include "k_common.cuh"

#define QPW 4                       /* query vectors per warp */
#define KT RC_ATTN_KTILE
#define DPL (RC_ATTN_MAXD / 32)     /* head dims per lane */

static size_t attn_smem_bytes(int D) {
    return sizeof(float) * ((size_t)RC_ATTN_MAXQ * D + (size_t)KT * (D + 1) + (size_t)KT * D);
}

__global__ void attn_kernel(const rc_attn_args a) {
    extern __shared__ float smem[];
    const int D = a.D, Hq = a.Hq, Hkv = a.Hkv, g = Hq / Hkv, W = a.kv.W, P = a.kv.P;
    const rc_tile tile = a.tiles[blockIdx.x];
    const int kh = blockIdx.y, sp = blockIdx.z;
    const rc_seq sq = a.seqs[tile.seq];
    const int32_t *table = a.kv.tables[tile.seq];
    const int nqv = tile.nrows * g;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    float *qs = smem;                       /* [MAXQ][D] */
    float *ks = qs + RC_ATTN_MAXQ * D;      /* [KT][D + 1]: padded, lanes read rows */
    float *vs = ks + KT * (D + 1);          /* [KT][D] */

    for (int idx = threadIdx.x; idx < nqv * D; idx += blockDim.x) {
        int qi = idx / D, d = idx % D;
        int row = tile.row0 + qi / g, head = kh * g + qi % g;
        qs[idx] = a.q[((size_t)row * Hq + head) * D + d];
    }

    const int p_first = sq.pos0 + (tile.row0 - sq.row0);
    const int p_last = p_first + tile.nrows - 1;
    const int klo = W ? max(0, p_first - W + 1) : 0;
    const int len = p_last - klo + 1;
    const int per = RC_CDIV(RC_CDIV(len, a.nsplit), KT) * KT;
    const int a0 = klo + sp * per;
    const int a1 = min(p_last, a0 + per - 1);

    float m[QPW], l[QPW], acc[QPW][DPL];
#pragma unroll
    for (int i = 0; i < QPW; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int dd = 0; dd < DPL; dd++) acc[i][dd] = 0.0f;
    }

    const size_t head_stride = (size_t)Hkv * D;
    for (int kt = a0; kt <= a1; kt += KT) {
        __syncthreads(); /* the previous tile (and the queries) are done with / written */
        for (int idx = threadIdx.x; idx < KT * D; idx += blockDim.x) {
            int jj = idx / D, d = idx % D, j = kt + jj;
            float kv = 0.0f, vv = 0.0f;
            if (j <= a1) {
                if (j < sq.pos0) {
                    int slot = W ? j % W : j;
                    size_t off = ((size_t)table[slot / P] * P + slot % P) * head_stride + (size_t)kh * D + d;
                    kv = rc_ld(a.kv.kpool, a.kv.dt, off);
                    vv = rc_ld(a.kv.vpool, a.kv.dt, off);
                } else {
                    size_t off = ((size_t)(sq.row0 + j - sq.pos0) * Hkv + kh) * D + d;
                    kv = rc_ld(a.k, a.kv.dt, off);
                    vv = rc_ld(a.v, a.kv.dt, off);
                }
            }
            ks[jj * (D + 1) + d] = kv;
            vs[jj * D + d] = vv;
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < QPW; i++) {
            int qi = warp + i * nwarps;
            if (qi >= nqv) continue; /* warp-uniform */
            int pos = p_first + qi / g;
            int lo = W ? pos - W + 1 : 0;
            int j = kt + lane;
            bool valid = j <= a1 && j >= lo && j <= pos;
            float s = -INFINITY;
            if (valid) {
                const float *qv = qs + qi * D, *kr = ks + lane * (D + 1);
                float dot = 0.0f;
                for (int d = 0; d < D; d++) dot += qv[d] * kr[d];
                s = dot * a.scale;
            }
            float mt = rc_warp_max(s);
            if (mt == -INFINITY) continue; /* no allowed key in this tile for this query */
            float mnew = fmaxf(m[i], mt);
            float corr = expf(m[i] - mnew);
            float p = valid ? expf(s - mnew) : 0.0f;
            l[i] = l[i] * corr + rc_warp_sum(p);
#pragma unroll
            for (int dd = 0; dd < DPL; dd++) acc[i][dd] *= corr;
            for (int jj = 0; jj < KT; jj++) {
                float pj = __shfl_sync(0xffffffffu, p, jj);
                if (pj == 0.0f) continue;
#pragma unroll
                for (int dd = 0; dd < DPL; dd++) {
                    int d = lane + 32 * dd;
                    if (d < D) acc[i][dd] += pj * vs[jj * D + d];
                }
            }
            m[i] = mnew;
        }
    }

#pragma unroll
    for (int i = 0; i < QPW; i++) {
        int qi = warp + i * nwarps;
        if (qi >= nqv) continue;
        int row = tile.row0 + qi / g, head = kh * g + qi % g;
        float *pp = a.part + (((size_t)sp * a.N + row) * Hq + head) * (D + 2);
#pragma unroll
        for (int dd = 0; dd < DPL; dd++) {
            int d = lane + 32 * dd;
            if (d < D) pp[d] = acc[i][dd];
        }
        if (lane == 0) {
            pp[D] = m[i];
            pp[D + 1] = l[i];
        }
    }
}

/* grid (Hq, rows), one thread per head dim; rows row0.. */
__global__ void attn_combine_kernel(void *out, int out_dt, const float *part, int nsplit, int N, int Hq, int D, int row0) {
    int head = blockIdx.x, row = row0 + blockIdx.y, d = threadIdx.x;
    if (d >= D) return;
    size_t stride = (size_t)N * Hq * (D + 2);
    const float *p0 = part + ((size_t)row * Hq + head) * (D + 2);
    float mstar = -INFINITY;
    for (int s = 0; s < nsplit; s++) mstar = fmaxf(mstar, p0[s * stride + D]);
    float num = 0.0f, den = 0.0f;
    for (int s = 0; s < nsplit; s++) {
        const float *p = p0 + s * stride;
        if (!(p[D + 1] > 0.0f)) continue; /* empty split */
        float f = expf(p[D] - mstar);
        den += p[D + 1] * f;
        num += p[d] * f;
    }
    rc_st(out, out_dt, ((size_t)row * Hq + head) * D + d, den > 0.0f ? num / den : 0.0f);
}

extern "C" int rc_attention(const rc_attn_args *a, cudaStream_t st) {
    if (a->N <= 0 || a->ntiles <= 0) return 0;
    if (a->D <= 0 || a->D > RC_ATTN_MAXD || a->Hkv <= 0 || a->Hq % a->Hkv || a->nsplit < 1 || a->nsplit > 65535 ||
        a->Hkv > 65535 || a->Hq > 65535 || a->N > 65535 || a->kv.P <= 0 || a->kv.W < 0 || a->max_tile_rows < 1 ||
        a->max_tile_rows * (a->Hq / a->Hkv) > RC_ATTN_MAXQ)
        return (int)cudaErrorInvalidValue;
    int nqv = a->max_tile_rows * (a->Hq / a->Hkv);
    int warps = RC_CDIV(nqv, QPW);
    size_t smem = attn_smem_bytes(a->D);
    if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(attn_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return (int)e;
    }
    dim3 grid(a->ntiles, a->Hkv, a->nsplit);
    attn_kernel<<<grid, 32 * warps, smem, st>>>(*a);
    int rc = rc_launched();
    if (rc) return rc;
    return rc_attention_combine(a, st);
}

extern "C" int rc_attention_combine(const rc_attn_args *a, cudaStream_t st) {
    int rows = a->comb_rows > 0 ? a->comb_rows : a->N, row0 = a->comb_rows > 0 ? a->comb_row0 : 0;
    if (row0 < 0 || row0 + rows > a->N) return (int)cudaErrorInvalidValue;
    dim3 cgrid(a->Hq, rows);
    attn_combine_kernel<<<cgrid, RC_CDIV(a->D, 32) * 32, 0, st>>>(a->out, a->out_dt, a->part, a->nsplit, a->N, a->Hq,
                                                                  a->D, row0);
    return rc_launched();
}

/* grid (ceil(Hkv * D / 256), max_ntok, nseq) */
__global__ void kv_store_kernel(const rc_kv_layer kv, const void *k, const void *v, const rc_seq *seqs, int Hkv,
                                int D) {
    const rc_seq sq = seqs[blockIdx.z];
    int t = blockIdx.y;
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= sq.ntok || e >= Hkv * D) return;
    int p = sq.pos0 + t;
    if (kv.W && p < sq.pos0 + sq.ntok - kv.W) return; /* overwritten later in this call */
    int slot = kv.W ? p % kv.W : p;
    const int32_t *table = kv.tables[blockIdx.z];
    size_t dst = ((size_t)table[slot / kv.P] * kv.P + slot % kv.P) * Hkv * D + e;
    size_t src = (size_t)(sq.row0 + t) * Hkv * D + e;
    if (kv.dt == RC_F32) {
        ((float *)kv.kpool)[dst] = ((const float *)k)[src];
        ((float *)kv.vpool)[dst] = ((const float *)v)[src];
    } else {
        ((uint16_t *)kv.kpool)[dst] = ((const uint16_t *)k)[src];
        ((uint16_t *)kv.vpool)[dst] = ((const uint16_t *)v)[src];
    }
}

extern "C" int rc_kv_store(const rc_kv_layer *kv, const void *k, const void *v, const rc_seq *seqs, int nseq,
                           int max_ntok, int Hkv, int D, cudaStream_t st) {
    if (nseq <= 0 || max_ntok <= 0) return 0;
    if (nseq > 65535 || max_ntok > 65535 || kv->P <= 0 || kv->W < 0 || (kv->dt != RC_F32 && kv->dt != RC_BF16))
        return (int)cudaErrorInvalidValue;
    dim3 grid(RC_CDIV(Hkv * D, 256), max_ntok, nseq);
    kv_store_kernel<<<grid, 256, 0, st>>>(*kv, k, v, seqs, Hkv, D);
    return rc_launched();
}
