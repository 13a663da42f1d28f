/* cu_budget.c: see cu_budget.h.  Must agree with what upload_weights (backend_cuda.c) takes
 * from the arena: the same matrices and vectors, each rounded up to CU_ARENA_ALIGN. */
#include <stdint.h>

#include "core/errors.h"
#include "cu_budget.h"

size_t rosa__cu_align(size_t n) { return (n + CU_ARENA_ALIGN - 1) / CU_ARENA_ALIGN * CU_ARENA_ALIGN; }

size_t rosa__cu_weights_bytes(const rosa_model *m, size_t elt) {
    size_t C = m->C, QD = (size_t)m->Hq * m->D, KD = (size_t)m->Hkv * m->D, F = m->F, b = 0;
    for (int l = 0; l < m->L; l++) {
        b += rosa__cu_align(QD * C * elt) * 2 + rosa__cu_align(KD * C * elt) * 2 + rosa__cu_align(F * C * elt) * 3;
        b += rosa__cu_align(C * 4) * 2 + rosa__cu_align((size_t)m->D * 4) * 2;
        if (m->layer[l].rosa >= 0) {
            b += rosa__cu_align(C * C * elt) * 4 + rosa__cu_align(C * 4) * 2;
            if (m->inject_mode == ROSA_INJECT_PRE_ATTN) b += rosa__cu_align(C * 4);
        }
    }
    size_t table = rosa__cu_align((size_t)m->V * C * elt);
    b += m->lm_head.w == m->embed.w ? table : 2 * table;
    /* final norm; inv_freq is [D/2], D floats leave room should the rotary table grow */
    return b + rosa__cu_align(C * 4) + rosa__cu_align((size_t)m->D * 4);
}

int rosa__cu_plan_pool(const rosa_model *m, size_t elt, size_t budget, rosa__cu_plan *out) {
    out->weights = rosa__cu_weights_bytes(m, elt);
    out->page_bytes = (size_t)CU_PAGE_TOKENS * m->Hkv * m->D * elt;
    size_t used = out->weights + CU_SCRATCH_RESERVE;
    out->npages = budget > used ? (budget - used) / (2 * out->page_bytes) : 0;
    if (out->npages > INT32_MAX) out->npages = INT32_MAX;
    out->min_pages = 0;
    for (int l = 0; l < m->L; l++)
        out->min_pages += m->layer_window[l] ? (size_t)(m->layer_window[l] + CU_PAGE_TOKENS - 1) / CU_PAGE_TOKENS : 1;
    return out->npages < out->min_pages ? ROSA_ERR_LIMIT : 0;
}
