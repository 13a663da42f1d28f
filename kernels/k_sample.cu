/* k_sample.cu: next-token choice on the device, one block per logits row, so that only token
 * ids cross the bus.  Order as rosa_sampler_sample: logit_bias, repetition penalty, presence /
 * frequency penalties, greedy when temperature <= 0, else temperature, top-k, top-p, min-p and
 * a draw with the host's uniform u.  Instead of sorting 150k logits, top-k and top-p find their
 * cut-off value by bisection over the bits of the float (32 counting passes); the draw walks
 * the kept tokens in id order.  The CPU reference with the same meaning is rc_ref_sample. */
#include "k_common.cuh"

#define ST 1024 /* threads per row */

__device__ __forceinline__ uint32_t fkey(float f) { /* order-preserving float -> uint32 */
    uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ bool is_cand(float x) { return isfinite(x) || x > 0.0f; }

__device__ double block_sum_d(double v, double *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    v = (threadIdx.x & 31) < (blockDim.x >> 5) ? sh[threadIdx.x & 31] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* (value, id) maximum, lowest id on ties; result valid in every thread */
__device__ void block_argmax(float &v, int &id, float *shv, int *shi) {
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, id, o);
        if (oi >= 0 && (id < 0 || ov > v || (ov == v && oi < id))) { v = ov; id = oi; }
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) { shv[threadIdx.x >> 5] = v; shi[threadIdx.x >> 5] = id; }
    __syncthreads();
    if ((threadIdx.x & 31) < (blockDim.x >> 5)) { v = shv[threadIdx.x & 31]; id = shi[threadIdx.x & 31]; }
    else { v = -INFINITY; id = -1; }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, id, o);
        if (oi >= 0 && (id < 0 || ov > v || (ov == v && oi < id))) { v = ov; id = oi; }
    }
}

__global__ void __launch_bounds__(ST) sample_kernel(int32_t *tokens, const float *logits, const rc_sample_params *params,
                                                    float *work, int V) {
    __shared__ double shd[32];
    __shared__ float shv[32];
    __shared__ int shi[32];
    __shared__ double scan[ST];
    const rc_sample_params p = params[blockIdx.x];
    const float *lg = logits + (size_t)blockIdx.x * V;
    float *w = work + (size_t)blockIdx.x * V;
    const int tid = threadIdx.x;

    for (int i = tid; i < V; i += ST) w[i] = lg[i];
    __syncthreads();
    if (tid == 0)
        for (int b = 0; b < p.n_bias; b++) w[p.bias_ids[b]] += p.bias_vals[b];
    __syncthreads();
    float bv = -INFINITY;
    int bi = -1;
    for (int i = tid; i < V; i += ST) {
        float x = w[i];
        if (p.seen && p.seen[i]) x = x > 0 ? x / p.repetition : x * p.repetition;
        if (p.gen_count && p.gen_count[i]) x -= p.presence + p.frequency * (float)p.gen_count[i];
        w[i] = x;
        if (bi < 0 || x > bv) { bv = x; bi = i; }
    }
    block_argmax(bv, bi, shv, shi);
    const int greedy = bi < 0 ? 0 : bi;
    if (!(p.temperature > 0.0f)) {
        if (tid == 0) tokens[blockIdx.x] = greedy;
        return;
    }
    /* candidates and their maximum */
    float mx = -INFINITY;
    double ncand = 0;
    for (int i = tid; i < V; i += ST)
        if (is_cand(w[i])) { ncand += 1; mx = fmaxf(mx, w[i]); }
    ncand = block_sum_d(ncand, shd);
    {   /* block maximum of mx */
        float m2 = rc_warp_max(mx);
        __syncthreads();
        if ((tid & 31) == 0) shv[tid >> 5] = m2;
        __syncthreads();
        m2 = (tid & 31) < (ST >> 5) ? shv[tid & 31] : -INFINITY;
        mx = rc_warp_max(m2);
    }
    if (ncand == 0) {
        if (tid == 0) tokens[blockIdx.x] = greedy;
        return;
    }
    /* top-k: the largest key t with count(key >= t) >= k */
    uint32_t kcut = 0;
    if (p.top_k > 0 && p.top_k < ncand) {
        for (int bit = 31; bit >= 0; bit--) {
            uint32_t t = kcut | (1u << bit);
            double c = 0;
            for (int i = tid; i < V; i += ST)
                if (is_cand(w[i]) && fkey(w[i]) >= t) c += 1;
            c = block_sum_d(c, shd);
            if (c >= p.top_k) kcut = t;
        }
    }
    __syncthreads();
    /* relative probabilities of the kept; -1 marks dropped tokens */
    const double inv_t = 1.0 / (double)p.temperature;
    double tot = 0, nkept = 0;
    for (int i = tid; i < V; i += ST) {
        float x = w[i];
        if (is_cand(x) && fkey(x) >= kcut) {
            float e = (float)exp((double)(x - mx) * inv_t);
            w[i] = e;
            tot += e;
            nkept += 1;
        } else {
            w[i] = -1.0f;
        }
    }
    tot = block_sum_d(tot, shd);
    nkept = block_sum_d(nkept, shd);
    /* top-p: the largest e-cut whose kept mass still reaches top_p (e >= 0: bits are ordered) */
    float cut = 0.0f;
    if (p.top_p < 1.0f && nkept > 1) {
        uint32_t t0 = 0;
        for (int bit = 30; bit >= 0; bit--) {
            uint32_t t = t0 | (1u << bit);
            float ft = __uint_as_float(t);
            double s = 0;
            for (int i = tid; i < V; i += ST)
                if (w[i] >= ft) s += w[i];
            s = block_sum_d(s, shd);
            if (s / tot >= p.top_p) t0 = t;
        }
        cut = __uint_as_float(t0);
    }
    if (p.min_p > 0.0f && p.min_p <= 1.0f) cut = fmaxf(cut, p.min_p);
    /* draw: prefix sums over contiguous id chunks */
    int chunk = RC_CDIV(V, ST), i0 = tid * chunk, i1 = min(V, i0 + chunk);
    double mine = 0;
    int last = -1;
    for (int i = i0; i < i1; i++)
        if (w[i] >= 0.0f && w[i] >= cut) { mine += w[i]; last = i; }
    scan[tid] = mine;
    __syncthreads();
    if (tid == 0) { /* 1024 adds: cheaper to write than a parallel scan, and exact in order */
        double a = 0;
        for (int t = 0; t < ST; t++) { double x = scan[t]; scan[t] = a; a += x; }
        shd[0] = a;
    }
    __syncthreads();
    double total = shd[0], r = p.u * total, acc = scan[tid];
    int lastall = last;
    {   /* the largest kept id, fallback when rounding leaves r at the end */
        for (int o = 16; o > 0; o >>= 1) lastall = max(lastall, __shfl_xor_sync(0xffffffffu, lastall, o));
        __syncthreads();
        if ((tid & 31) == 0) shi[tid >> 5] = lastall;
        __syncthreads();
        lastall = (tid & 31) < (ST >> 5) ? shi[tid & 31] : -1;
        for (int o = 16; o > 0; o >>= 1) lastall = max(lastall, __shfl_xor_sync(0xffffffffu, lastall, o));
    }
    __syncthreads();
    if (tid == 0) shi[0] = lastall >= 0 ? lastall : greedy;
    __syncthreads();
    if (r >= acc && r < acc + mine) {
        for (int i = i0; i < i1; i++) {
            if (!(w[i] >= 0.0f && w[i] >= cut)) continue;
            acc += w[i];
            if (r < acc) { shi[0] = i; break; }
        }
    }
    __syncthreads();
    if (tid == 0) tokens[blockIdx.x] = shi[0];
}

extern "C" int rc_sample(int32_t *tokens, const float *logits, const rc_sample_params *params, float *work, int n,
                         int V, cudaStream_t st) {
    if (n <= 0) return 0;
    if (V <= 0 || n > 65535) return (int)cudaErrorInvalidValue;
    sample_kernel<<<n, ST, 0, st>>>(tokens, logits, params, work, V);
    return rc_launched();
}
