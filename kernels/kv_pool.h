/* kv_pool.h: host-side bookkeeping of the GPU KV cache (pure C, no CUDA: unit-tested on any
 * machine by tests/test_kv_pool.c).
 *
 * The device holds one pool of pages, sized once at model load (--gpu-memory); a page holds
 * the keys and values of P token slots of one layer.  Each session has a page table per
 * layer: a windowed layer needs at most ceil(W / P) pages (its ring of W slots), a global
 * layer grows one page per P tokens up to its capacity.  Growth is all-or-nothing: a forward
 * call first asks how many pages all its sessions need, and is refused (ROSA_ERR_LIMIT) before
 * anything changes when the pool cannot supply them.  Reservations let a caller hold pages for
 * a request's whole length at admission, so a running request never fails for memory. */
#ifndef ROSA_KV_POOL_H
#define ROSA_KV_POOL_H

#include <stdint.h>

typedef struct rosa__kvpool {
    int32_t npages;      /* pages in the pool */
    int32_t nfree;       /* pages on the free stack */
    int64_t reserved;    /* pages promised to reservations but not yet taken */
    int32_t *free_ids;   /* [npages] stack of free page ids */
} rosa__kvpool;

typedef struct rosa__kvtable {
    int L, P;
    int32_t *maxp;       /* [L] page capacity per layer */
    int32_t *off;        /* [L] offset of layer l's entries in ids */
    int32_t *have;       /* [L] pages held per layer */
    int32_t *ids;        /* [sum maxp] page ids, -1 where none */
    int64_t reserved;    /* pages this table reserved (taken from first when growing) */
    int64_t total;       /* sum maxp */
} rosa__kvtable;

int rosa__kvpool_init(rosa__kvpool *p, int32_t npages);
void rosa__kvpool_free(rosa__kvpool *p);
/* pages available to new growth: free minus promised */
int64_t rosa__kvpool_available(const rosa__kvpool *p);

/* window[l]: 0 = global (capacity ceil(max_tokens / P)), else W (capacity ceil(min(W,
 * max_tokens) / P)). */
int rosa__kvtable_init(rosa__kvtable *t, int L, int P, const int *window, int64_t max_tokens);
/* give every page (and reservation) back */
void rosa__kvtable_free(rosa__kvtable *t, rosa__kvpool *p);
/* new pages needed to hold len tokens (-1 when len exceeds a layer's capacity) */
int64_t rosa__kvtable_need(const rosa__kvtable *t, const int *window, int64_t len);
/* Take the pages for len tokens; all or nothing.  0, or ROSA_ERR_LIMIT.  *first_changed /
 * *last_changed (may be NULL): range of ids entries written, for the device copy. */
int rosa__kvtable_grow(rosa__kvtable *t, rosa__kvpool *p, const int *window, int64_t len,
                       int64_t *first_changed, int64_t *last_changed);
/* Reserve pages for len tokens beyond what the table holds; 0 or ROSA_ERR_LIMIT. */
int rosa__kvtable_reserve(rosa__kvtable *t, rosa__kvpool *p, const int *window, int64_t len);
/* pages held by the table */
int64_t rosa__kvtable_pages(const rosa__kvtable *t);
#endif
