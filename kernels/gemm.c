/* gemm.c: y = x W^T (+ beta y) through cuBLAS, for row-major x [N, cols], W [rows, cols] and
 * y [N, rows].  In cuBLAS's column-major view W is W^T [cols, rows] and x is x^T [cols, N], so
 * y^T [rows, N] = op_T(W^T) x^T.  f32 runs plain fp32 (CUBLAS_COMPUTE_32F_PEDANTIC: no TF32,
 * needed to reproduce the golden logits); bf16 takes bf16 inputs with fp32 accumulation and
 * fp32 output, so residual adds can ride on beta = 1. */
#include <cublas_v2.h>

#include "rosa_cuda.h"

int rc_gemm(void *handle, float *y, const void *x, const void *W, int dt, int N, int rows, int cols, float beta) {
    if (N <= 0 || rows <= 0) return 0;
    if (!handle || cols <= 0 || (dt != RC_F32 && dt != RC_BF16)) return (int)cudaErrorInvalidValue;
    const float alpha = 1.0f;
    cudaDataType_t t = dt == RC_F32 ? CUDA_R_32F : CUDA_R_16BF;
    cublasComputeType_t ct = dt == RC_F32 ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F;
    cublasStatus_t s = cublasGemmEx((cublasHandle_t)handle, CUBLAS_OP_T, CUBLAS_OP_N, rows, N, cols, &alpha, W, t, cols,
                                    x, t, cols, &beta, y, CUDA_R_32F, rows, ct, CUBLAS_GEMM_DEFAULT);
    /* cuBLAS statuses are mapped onto one runtime error the backend reports as such */
    return s == CUBLAS_STATUS_SUCCESS ? 0 : (int)cudaErrorUnknown;
}
