/* kv_pool.c: the page pool and per-session page tables of the GPU KV cache (see kv_pool.h).
 * No device code: the backend mirrors the tables to the device after they change. */
#include "kv_pool.h"

#include <stdlib.h>

#include "rosa.h"

int rosa__kvpool_init(rosa__kvpool *p, int32_t npages) {
    p->npages = npages > 0 ? npages : 0;
    p->reserved = 0;
    p->free_ids = malloc((size_t)(p->npages ? p->npages : 1) * sizeof *p->free_ids);
    if (!p->free_ids) return ROSA_ERR_NOMEM;
    /* pop order 0, 1, 2, ...: fresh sessions get contiguous pages */
    for (int32_t i = 0; i < p->npages; i++) p->free_ids[i] = p->npages - 1 - i;
    p->nfree = p->npages;
    return 0;
}

void rosa__kvpool_free(rosa__kvpool *p) {
    free(p->free_ids);
    p->free_ids = NULL;
    p->npages = p->nfree = 0;
}

int64_t rosa__kvpool_available(const rosa__kvpool *p) { return (int64_t)p->nfree - p->reserved; }

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int rosa__kvtable_init(rosa__kvtable *t, int L, int P, const int *window, int64_t max_tokens) {
    t->L = L;
    t->P = P;
    t->reserved = 0;
    t->maxp = calloc((size_t)L, sizeof *t->maxp);
    t->off = calloc((size_t)L, sizeof *t->off);
    t->have = calloc((size_t)L, sizeof *t->have);
    t->ids = NULL;
    if (!t->maxp || !t->off || !t->have || P <= 0 || max_tokens <= 0) goto fail;
    int64_t total = 0;
    for (int l = 0; l < L; l++) {
        int64_t cap = window[l] && window[l] < max_tokens ? window[l] : max_tokens;
        t->maxp[l] = (int32_t)cdiv(cap, P);
        t->off[l] = (int32_t)total;
        total += t->maxp[l];
        if (total > INT32_MAX) goto fail;
    }
    t->total = total;
    t->ids = malloc((size_t)(total ? total : 1) * sizeof *t->ids);
    if (!t->ids) goto fail;
    for (int64_t i = 0; i < total; i++) t->ids[i] = -1;
    return 0;
fail:
    free(t->maxp); free(t->off); free(t->have);
    t->maxp = t->off = t->have = NULL;
    return ROSA_ERR_NOMEM;
}

void rosa__kvtable_free(rosa__kvtable *t, rosa__kvpool *p) {
    if (!t->ids) return;
    for (int l = 0; l < t->L; l++)
        for (int32_t i = 0; i < t->have[l]; i++) p->free_ids[p->nfree++] = t->ids[t->off[l] + i];
    p->reserved -= t->reserved;
    free(t->maxp); free(t->off); free(t->have); free(t->ids);
    t->maxp = t->off = t->have = t->ids = NULL;
    t->reserved = 0;
}

/* pages layer l needs for len tokens */
static int64_t layer_need(const rosa__kvtable *t, const int *window, int l, int64_t len) {
    int64_t slots = window[l] && window[l] < len ? window[l] : len;
    return cdiv(slots, t->P);
}

int64_t rosa__kvtable_need(const rosa__kvtable *t, const int *window, int64_t len) {
    int64_t need = 0;
    for (int l = 0; l < t->L; l++) {
        int64_t n = layer_need(t, window, l, len);
        if (n > t->maxp[l]) return -1;
        if (n > t->have[l]) need += n - t->have[l];
    }
    return need;
}

int rosa__kvtable_grow(rosa__kvtable *t, rosa__kvpool *p, const int *window, int64_t len, int64_t *first_changed,
                       int64_t *last_changed) {
    int64_t need = rosa__kvtable_need(t, window, len);
    int64_t lo = -1, hi = -1;
    if (need < 0) return ROSA_ERR_LIMIT;
    int64_t from_res = need < t->reserved ? need : t->reserved;
    if (need - from_res > rosa__kvpool_available(p)) return ROSA_ERR_LIMIT;
    t->reserved -= from_res;
    p->reserved -= from_res;
    for (int l = 0; l < t->L; l++) {
        int64_t n = layer_need(t, window, l, len);
        while (t->have[l] < n) {
            int64_t at = t->off[l] + t->have[l]++;
            t->ids[at] = p->free_ids[--p->nfree];
            if (lo < 0 || at < lo) lo = at;
            if (at > hi) hi = at;
        }
    }
    if (first_changed) *first_changed = lo;
    if (last_changed) *last_changed = hi;
    return 0;
}

int rosa__kvtable_reserve(rosa__kvtable *t, rosa__kvpool *p, const int *window, int64_t len) {
    int64_t need = rosa__kvtable_need(t, window, len);
    if (need < 0) return ROSA_ERR_LIMIT;
    int64_t more = need - t->reserved;
    if (more <= 0) return 0;
    if (more > rosa__kvpool_available(p)) return ROSA_ERR_LIMIT;
    t->reserved += more;
    p->reserved += more;
    return 0;
}

int64_t rosa__kvtable_pages(const rosa__kvtable *t) {
    int64_t n = 0;
    for (int l = 0; l < t->L; l++) n += t->have[l];
    return n;
}
