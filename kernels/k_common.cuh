/* k_common.cuh: small device helpers shared by the k_*.cu files (dtype loads and stores,
 * warp and block reductions, the launch-check idiom).  Header-only, internal to kernels/. */
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "rosa_cuda.h"

#define RC_CDIV(a, b) (((a) + (b) - 1) / (b))

/* element i of an array of dtype dt, as float */
__device__ __forceinline__ float rc_ld(const void *p, int dt, size_t i) {
    if (dt == RC_F32) return ((const float *)p)[i];
    if (dt == RC_BF16) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return __half2float(((const __half *)p)[i]);
}

/* store a float as dtype dt (RC_F32 or RC_BF16), round to nearest even */
__device__ __forceinline__ void rc_st(void *p, int dt, size_t i, float v) {
    if (dt == RC_BF16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else ((float *)p)[i] = v;
}

__device__ __forceinline__ float rc_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float rc_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
 * scratch: __shared__ float[32]. */
__device__ __forceinline__ float rc_block_sum(float v, float *scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = rc_warp_sum(v);
    __syncthreads(); /* scratch may still be read by a previous call */
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : 0.0f;
    return rc_warp_sum(v);
}

/* launch epilogue: the error of the last launch (configuration or earlier asynchronous) */
static inline int rc_launched(void) { return (int)cudaGetLastError(); }
