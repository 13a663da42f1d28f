/* k_act.cu: the SiLU gate of the MLP, written in the activation dtype for the down product. */
#include "k_common.cuh"

__global__ void silu_gate_kernel(void *out, int out_dt, const float *g, const float *up, size_t n) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float x = g[i];
        rc_st(out, out_dt, i, x / (1.0f + expf(-x)) * up[i]);
    }
}

extern "C" int rc_silu_gate(void *out, int out_dt, const float *g, const float *up, size_t n, cudaStream_t st) {
    if (!n) return 0;
    size_t blocks = RC_CDIV(n, (size_t)256);
    if (blocks > 65535u * 16) blocks = 65535u * 16;
    silu_gate_kernel<<<(unsigned)blocks, 256, 0, st>>>(out, out_dt, g, up, n);
    return rc_launched();
}
