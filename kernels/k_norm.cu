/* k_norm.cu: RMSNorm fused with the residual add (and with a row gather for the final norm),
 * the pre_attn mix + RMSNorm, and the per-head q/k RMSNorm + rotary embedding that also
 * writes keys and values in the cache dtype (ROSA-SPEC section 1). */
#include "k_common.cuh"

#define NORM_THREADS 256

__global__ void rmsnorm_kernel(void *out, int out_dt, float *x, const float *add, const float *w,
                               const int32_t *rows, int C, float eps) {
    __shared__ float scratch[32];
    int i = blockIdx.x;
    size_t r = rows ? (size_t)rows[i] : (size_t)i;
    float *xr = x + r * C;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = xr[c];
        if (add) {
            v += add[r * C + c];
            xr[c] = v; /* each element is read and written by the same thread */
        }
        ss += v * v;
    }
    ss = rc_block_sum(ss, scratch);
    float inv = 1.0f / sqrtf(ss / (float)C + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x) rc_st(out, out_dt, (size_t)i * C + c, xr[c] * inv * w[c]);
}

extern "C" int rc_rmsnorm(void *out, int out_dt, float *x, const float *add, const float *w, const int32_t *rows,
                          int n, int C, float eps, cudaStream_t st) {
    if (n <= 0) return 0;
    if (C <= 0 || (add && rows) || n > 0x7fffffff) return (int)cudaErrorInvalidValue;
    rmsnorm_kernel<<<n, NORM_THREADS, 0, st>>>(out, out_dt, x, add, w, rows, C, eps);
    return rc_launched();
}

/* the mix is recomputed in the second pass rather than stored: C floats per row is cheap */
__global__ void mix_rmsnorm_kernel(void *out, int out_dt, const float *h, const float *inj, const float *alpha,
                                   const float *w, int C, float eps) {
    __shared__ float scratch[32];
    size_t r = blockIdx.x;
    const float *hr = h + r * C, *ir = inj + r * C;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = (1.0f - alpha[c]) * hr[c] + alpha[c] * ir[c];
        ss += v * v;
    }
    ss = rc_block_sum(ss, scratch);
    float inv = 1.0f / sqrtf(ss / (float)C + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = (1.0f - alpha[c]) * hr[c] + alpha[c] * ir[c];
        rc_st(out, out_dt, r * C + c, v * inv * w[c]);
    }
}

extern "C" int rc_mix_rmsnorm(void *out, int out_dt, const float *h, const float *inj, const float *alpha,
                              const float *w, int N, int C, float eps, cudaStream_t st) {
    if (N <= 0) return 0;
    if (C <= 0) return (int)cudaErrorInvalidValue;
    mix_rmsnorm_kernel<<<N, NORM_THREADS, 0, st>>>(out, out_dt, h, inj, alpha, w, C, eps);
    return rc_launched();
}

/* grid (Hq + Hkv, N): block y = row, x = head (q heads first, then k heads); thread j owns the
 * rotary pair (j, j + D/2). */
__global__ void qk_norm_rope_kernel(float *q, const float *k, const float *v, void *kout, void *vout, int kv_dt,
                                    const float *q_norm, const float *k_norm, const float *inv_freq,
                                    float rope_scale, const int32_t *pos, int Hq, int Hkv, int D, float eps) {
    __shared__ float scratch[32];
    int row = blockIdx.y, head = blockIdx.x, j = threadIdx.x, half = D / 2;
    int is_q = head < Hq;
    const float *src = is_q ? q + ((size_t)row * Hq + head) * D : k + ((size_t)row * Hkv + head - Hq) * D;
    const float *w = is_q ? q_norm : k_norm;
    float a = 0.0f, b = 0.0f;
    if (j < half) {
        a = src[j];
        b = src[j + half];
    }
    float ss = rc_block_sum(a * a + b * b, scratch);
    float inv = 1.0f / sqrtf(ss / (float)D + eps);
    if (j >= half) return;
    a = a * inv * w[j];
    b = b * inv * w[j + half];
    float ang = (float)pos[row] * inv_freq[j];
    float c = cosf(ang) * rope_scale, s = sinf(ang) * rope_scale; /* yarn: attention factor */
    float ra = a * c - b * s, rb = b * c + a * s;
    if (is_q) {
        float *dst = q + ((size_t)row * Hq + head) * D;
        dst[j] = ra;
        dst[j + half] = rb;
    } else {
        size_t o = ((size_t)row * Hkv + head - Hq) * D;
        rc_st(kout, kv_dt, o + j, ra);
        rc_st(kout, kv_dt, o + j + half, rb);
        rc_st(vout, kv_dt, o + j, v[o + j]);
        rc_st(vout, kv_dt, o + j + half, v[o + j + half]);
    }
}

extern "C" int rc_qk_norm_rope(float *q, const float *k, const float *v, void *kout, void *vout, int kv_dt,
                               const float *q_norm, const float *k_norm, const float *inv_freq, float rope_scale,
                               const int32_t *pos, int N, int Hq, int Hkv, int D, float eps, cudaStream_t st) {
    if (N <= 0) return 0;
    if (D <= 0 || D % 2 || D > 2048 || N > 65535 || Hq <= 0 || Hkv <= 0) return (int)cudaErrorInvalidValue;
    int threads = RC_CDIV(D / 2, 32) * 32;
    dim3 grid(Hq + Hkv, N);
    qk_norm_rope_kernel<<<grid, threads, 0, st>>>(q, k, v, kout, vout, kv_dt, q_norm, k_norm, inv_freq, rope_scale, pos, Hq, Hkv,
                                                  D, eps);
    return rc_launched();
}
