/* k_rosa.cu: the GPU half of a ROSA layer: sign-and-pack of the three projections into route
 * symbols (which then cross to the CPU automata), and the injection vector y built from the
 * retrieved value symbols that come back (ROSA-SPEC sections 2-3). */
#include "k_common.cuh"

__global__ void rosa_pack_kernel(uint8_t *sym, const float *rq, const float *rk, const float *rv, int N, int R,
                                 int M) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; /* (row, route) */
    size_t total = (size_t)N * R;
    if (i >= total) return;
    const float *src[3] = {rq, rk, rv};
    for (int w = 0; w < 3; w++) {
        const float *p = src[w] + i * M; /* row * C + r * M == i * M since C = R * M */
        unsigned s = 0;
        for (int b = 0; b < M; b++) s |= (unsigned)(p[b] > 0.0f) << b;
        sym[(size_t)w * total + i] = (uint8_t)s;
    }
}

extern "C" int rc_rosa_pack(uint8_t *sym, const float *rq, const float *rk, const float *rv, int N, int R, int M,
                            cudaStream_t st) {
    if (N <= 0) return 0;
    if (R <= 0 || M < 1 || M > 8) return (int)cudaErrorInvalidValue;
    size_t total = (size_t)N * R;
    rosa_pack_kernel<<<(unsigned)RC_CDIV(total, (size_t)256), 256, 0, st>>>(sym, rq, rk, rv, N, R, M);
    return rc_launched();
}

__global__ void rosa_inject_kernel(void *y, int out_dt, const int16_t *vsym, const float *e0, const float *e1,
                                   int N, int R, int M) {
    int C = R * M;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; /* (row, channel) */
    if (i >= (size_t)N * C) return;
    int c = (int)(i % C);
    size_t row = i / C;
    int v = vsym[row * R + c / M];
    float o = 0.0f;
    if (v >= 0) o = e0[c] + (e1[c] - e0[c]) * (float)((v >> (c % M)) & 1);
    rc_st(y, out_dt, i, o);
}

extern "C" int rc_rosa_inject(void *y, int out_dt, const int16_t *vsym, const float *e0, const float *e1, int N,
                              int R, int M, cudaStream_t st) {
    if (N <= 0) return 0;
    if (R <= 0 || M < 1 || M > 8) return (int)cudaErrorInvalidValue;
    size_t total = (size_t)N * R * M;
    rosa_inject_kernel<<<(unsigned)RC_CDIV(total, (size_t)256), 256, 0, st>>>(y, out_dt, vsym, e0, e1, N, R, M);
    return rc_launched();
}
