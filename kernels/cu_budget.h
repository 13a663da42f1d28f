/* cu_budget.h: the CUDA backend's device-memory arithmetic (cu_budget.c), plain C with no CUDA
 * types so that it is built in every configuration and unit-tested without a GPU
 * (tests/test_gpu_budget.c).  Internal. */
#ifndef ROSA_CU_BUDGET_H
#define ROSA_CU_BUDGET_H

#include <stddef.h>

#include "core/model.h"

#define CU_PAGE_TOKENS 16                     /* P: token slots per KV page */
#define CU_ARENA_ALIGN 256                    /* every tensor of the weight arena starts aligned */
#define CU_SCRATCH_RESERVE ((size_t)768 << 20) /* kept out of the pool for activations, cuBLAS */

typedef struct rosa__cu_plan {
    size_t weights;     /* bytes of the weight arena (matrices in the compute dtype, fp32 vectors) */
    size_t page_bytes;  /* one of K / V of one page: [P, Hkv, D] in the compute dtype */
    size_t npages;      /* pages the budget leaves after the weights and the scratch reserve */
    size_t min_pages;   /* pages one session needs at its first token (a full ring per windowed layer) */
} rosa__cu_plan;

size_t rosa__cu_align(size_t n);
/* Weight arena bytes for compute elements of elt bytes (2: bf16, 4: f32).  A tied lm_head is the
 * embedding and takes no second copy; alpha exists only in pre_attn mode. */
size_t rosa__cu_weights_bytes(const rosa_model *m, size_t elt);
/* Split a device-memory budget: 0, or ROSA_ERR_LIMIT when one session would not fit
 * (out is filled either way, for the message). */
int rosa__cu_plan_pool(const rosa_model *m, size_t elt, size_t budget, rosa__cu_plan *out);
#endif
