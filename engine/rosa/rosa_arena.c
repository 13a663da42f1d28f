/* rosa_arena.c: a session's ROSA memory on huge pages: size-class slabs and large blocks, each
 * a 2 MiB-aligned mapping (design in rosa_arena.h).  Mappings are kept in an array sorted by
 * address, so that a block is found from its pointer alone (routes free by pointer). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "rosa/rosa_arena.h"

#define HUGE_PAGE ((size_t)2 << 20)
#define NCLASS 17                    /* 64 KiB .. 1 MiB, four sizes per doubling */
#define SLAB_MAX ROSA__ARENA_SLAB_MAX /* larger blocks get their own mapping */
#define LARGE_ROUND ((size_t)64 << 10)
#define SLAB_MIN_BLOCKS 8
#define SLAB_MAX_BLOCKS 128

typedef struct slab {
    char *base;
    size_t bytes;           /* mapping length */
    size_t bsize;           /* block size (a large block: its usable size) */
    int cls;                /* size class, or -1 for a large block */
    unsigned nblocks, nfree;
    uint64_t taken[SLAB_MAX_BLOCKS / 64]; /* bit i: block i is handed out */
    struct slab *prev, *next; /* in its class's list of slabs with a free block */
} slab;

struct rosa__arena {
    pthread_mutex_t mu;
    slab **by_addr;         /* [n] sorted by base */
    size_t n, cap;
    slab *partial[NCLASS];
    size_t mapped, used;
};

/* 64, 80, 96, 112, 128, 160, ... 1024 KiB */
static size_t class_size(int c) { return (((size_t)64 << 10) << (c / 4)) / 4 * (size_t)(4 + c % 4); }

static int class_of(size_t bytes) {
    int c = 0;
    while (class_size(c) < bytes) c++;
    return c;
}

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

/* A fresh mapping of `bytes` (a multiple of 64 KiB) starting on a 2 MiB boundary, marked for
 * transparent huge pages. */
static char *map_aligned(size_t bytes) {
    size_t len = bytes + HUGE_PAGE;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    char *base = (char *)round_up((uintptr_t)p, HUGE_PAGE);
    if (base > p) munmap(p, (size_t)(base - p));
    if (p + len > base + bytes) munmap(base + bytes, (size_t)(p + len - (base + bytes)));
#ifdef MADV_HUGEPAGE
    (void)madvise(base, bytes, MADV_HUGEPAGE); /* advice only: without THP, plain pages */
#endif
    return base;
}

rosa__arena *rosa__arena_new(void) {
    rosa__arena *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    if (pthread_mutex_init(&a->mu, NULL)) {
        free(a);
        return NULL;
    }
    return a;
}

void rosa__arena_free(rosa__arena *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) {
        munmap(a->by_addr[i]->base, a->by_addr[i]->bytes);
        free(a->by_addr[i]);
    }
    free(a->by_addr);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* Index of the first mapping whose base is above p. */
static size_t upper(const rosa__arena *a, const char *p) {
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->by_addr[mid]->base <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A new mapping of `bytes` as slab s (fields other than base and bytes set by the caller). */
static slab *slab_new(rosa__arena *a, size_t bytes) {
    if (a->n == a->cap) {
        size_t nc = a->cap ? 2 * a->cap : 64;
        slab **nb = realloc(a->by_addr, nc * sizeof *nb);
        if (!nb) return NULL;
        a->by_addr = nb;
        a->cap = nc;
    }
    slab *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->base = map_aligned(bytes);
    if (!s->base) {
        free(s);
        return NULL;
    }
    s->bytes = bytes;
    size_t at = upper(a, s->base);
    memmove(a->by_addr + at + 1, a->by_addr + at, (a->n - at) * sizeof *a->by_addr);
    a->by_addr[at] = s;
    a->n++;
    a->mapped += bytes;
    return s;
}

static void slab_unmap(rosa__arena *a, size_t at) {
    slab *s = a->by_addr[at];
    memmove(a->by_addr + at, a->by_addr + at + 1, (a->n - at - 1) * sizeof *a->by_addr);
    a->n--;
    a->mapped -= s->bytes;
    munmap(s->base, s->bytes);
    free(s);
}

static void partial_push(rosa__arena *a, slab *s) {
    s->prev = NULL;
    s->next = a->partial[s->cls];
    if (s->next) s->next->prev = s;
    a->partial[s->cls] = s;
}

static void partial_unlink(rosa__arena *a, slab *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        a->partial[s->cls] = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void *alloc_locked(rosa__arena *a, size_t bytes, size_t *got) {
    if (bytes > SLAB_MAX) {
        size_t size = round_up(bytes, LARGE_ROUND);
        slab *s = slab_new(a, size);
        if (!s) return NULL;
        s->bsize = size;
        s->cls = -1;
        s->nblocks = 1;
        a->used += size;
        *got = size;
        return s->base;
    }
    int c = class_of(bytes < ROSA__ARENA_MIN ? ROSA__ARENA_MIN : bytes);
    slab *s = a->partial[c];
    if (!s) {
        size_t bsize = class_size(c), len = round_up(SLAB_MIN_BLOCKS * bsize, HUGE_PAGE);
        if (!(s = slab_new(a, len))) return NULL;
        s->bsize = bsize;
        s->cls = c;
        s->nblocks = s->nfree = (unsigned)(len / bsize < SLAB_MAX_BLOCKS ? len / bsize : SLAB_MAX_BLOCKS);
        partial_push(a, s);
    }
    unsigned i = 0;
    for (unsigned w = 0; w < SLAB_MAX_BLOCKS / 64; w++)
        if (~s->taken[w]) {
            i = w * 64 + (unsigned)__builtin_ctzll(~s->taken[w]);
            break;
        }
    /* the lowest clear bit is a block: a slab on the partial list has one free below nblocks */
    s->taken[i / 64] |= 1ull << (i % 64);
    if (--s->nfree == 0) partial_unlink(a, s);
    a->used += s->bsize;
    *got = s->bsize;
    return s->base + (size_t)i * s->bsize;
}

void *rosa__arena_alloc(rosa__arena *a, size_t bytes, size_t *got) {
    pthread_mutex_lock(&a->mu);
    void *p = alloc_locked(a, bytes, got);
    pthread_mutex_unlock(&a->mu);
    return p;
}

int rosa__arena_release(rosa__arena *a, void *vp) {
    char *p = vp;
    pthread_mutex_lock(&a->mu);
    size_t at = upper(a, p);
    slab *s = at ? a->by_addr[at - 1] : NULL;
    if (!s || p >= s->base + s->bytes) {
        pthread_mutex_unlock(&a->mu);
        return 0;
    }
    at--;
    a->used -= s->bsize;
    if (s->cls < 0) {
        slab_unmap(a, at);
    } else {
        unsigned i = (unsigned)((size_t)(p - s->base) / s->bsize);
        s->taken[i / 64] &= ~(1ull << (i % 64));
        if (s->nfree++ == 0) partial_push(a, s);
        if (s->nfree == s->nblocks) { /* empty: the memory goes back */
            partial_unlink(a, s);
            slab_unmap(a, at);
        }
    }
    pthread_mutex_unlock(&a->mu);
    return 1;
}

void rosa__arena_stats(rosa__arena *a, size_t *mapped, size_t *used) {
    pthread_mutex_lock(&a->mu);
    *mapped = a->mapped;
    *used = a->used;
    pthread_mutex_unlock(&a->mu);
}
