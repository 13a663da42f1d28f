/* gemv_x86.h: the x86 matrix-vector kernels of gemv_x86.c, which the kernel sets of
 * cpu_kernels_x86.c point to (contracts: cpu_kernels.h, gemv_bf16 and gemv_bf16_x16).  Only
 * declared on x86-64 with GCC/clang; call them only after the kernel sets' CPU checks. */
#ifndef ROSA_GEMV_X86_H
#define ROSA_GEMV_X86_H
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
void rosa__gemv_bf16_avx2(const void *W, size_t ldw, int nrows, int K, const float *x, float *y);
void rosa__gemv_bf16_avx512(const void *W, size_t ldw, int nrows, int K, const float *x, float *y);
void rosa__gemv_bf16_x16_avx512bf16(const void *W, size_t ldw, int nrows, int K, const uint16_t *x16, float *y);
int rosa__cpu_has_avx512bf16(void); /* the CPU runs vdpbf16ps */
#endif
#endif
