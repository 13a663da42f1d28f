/* k_embed.cu: dtype conversion (weight upload) and the embedding gather. */
#include "k_common.cuh"

extern "C" size_t rc_dtype_size(int dt) { return dt == RC_F32 ? 4 : 2; }

extern "C" int rc_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0;
    cudaGetLastError(); /* a failed query must not poison the next launch check */
    return n;
}

__global__ void convert_kernel(void *dst, int dst_dt, const void *src, int src_dt, size_t n) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        rc_st(dst, dst_dt, i, rc_ld(src, src_dt, i));
}

extern "C" int rc_convert(void *dst, int dst_dt, const void *src, int src_dt, size_t n, cudaStream_t st) {
    if (!n) return 0;
    if (!dst || !src || dst_dt == RC_F16) return (int)cudaErrorInvalidValue;
    size_t blocks = RC_CDIV(n, (size_t)256);
    if (blocks > 65535u * 16) blocks = 65535u * 16; /* grid-stride beyond that */
    convert_kernel<<<(unsigned)blocks, 256, 0, st>>>(dst, dst_dt, src, src_dt, n);
    return rc_launched();
}

__global__ void embed_kernel(float *out, const void *table, int dt, const int32_t *tokens, int C, int V) {
    int row = blockIdx.y;
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int t = tokens[row];
    t = t < 0 ? 0 : (t >= V ? V - 1 : t);
    out[(size_t)row * C + c] = rc_ld(table, dt, (size_t)t * C + c);
}

extern "C" int rc_embed(float *out, const void *table, int dt, const int32_t *tokens, int N, int C, int V,
                        cudaStream_t st) {
    if (N <= 0) return 0;
    if (N > 65535 || C <= 0 || V <= 0 || dt == RC_F16) return (int)cudaErrorInvalidValue;
    dim3 grid(RC_CDIV(C, 256), N);
    embed_kernel<<<grid, 256, 0, st>>>(out, table, dt, tokens, C, V);
    return rc_launched();
}
