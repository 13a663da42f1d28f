/* tensor_compare.h: byte-for-byte comparison of two tensor sets, for the checkpoint reader tests
 * (a .pt and its safetensors twin must hold the same tensors).  Header-only because it needs the
 * engine's internal tensors.h, which only the test programs include. */
#ifndef ROSA_TENSOR_COMPARE_H
#define ROSA_TENSOR_COMPARE_H
#include <stdio.h>
#include <string.h>

#include "model/tensors.h"

/* 0 if a and b hold the same names, dtypes, shapes and bytes (in any order); else 1 with why. */
static inline int tc_sets_equal(const rosa__tensor_set *a, const rosa__tensor_set *b, char *why, size_t n) {
    if (a->n != b->n) {
        snprintf(why, n, "%d tensors vs %d", a->n, b->n);
        return 1;
    }
    for (int i = 0; i < a->n; i++) {
        const rosa__tensor *x = &a->t[i], *y = rosa__tset_find(b, x->name);
        if (!y) {
            snprintf(why, n, "'%s' missing from the second set", x->name);
            return 1;
        }
        int same_shape = x->ndim == y->ndim;
        for (int d = 0; same_shape && d < x->ndim; d++) same_shape = x->shape[d] == y->shape[d];
        if (x->dtype != y->dtype || !same_shape || x->nbytes != y->nbytes) {
            snprintf(why, n, "'%s': dtype/shape/size differ (%s %dd %zu B vs %s %dd %zu B)", x->name,
                     rosa__dtype_name(x->dtype), x->ndim, x->nbytes, rosa__dtype_name(y->dtype), y->ndim, y->nbytes);
            return 1;
        }
        if (x->nbytes && memcmp(x->data, y->data, x->nbytes) != 0) {
            snprintf(why, n, "'%s': bytes differ", x->name);
            return 1;
        }
    }
    return 0;
}
#endif
