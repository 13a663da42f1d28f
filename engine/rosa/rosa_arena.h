/* rosa_arena.h: the memory of one session's ROSA state: a few large mappings on huge pages.
 *
 * Why: in decode every route of every layer takes a handful of dependent cache misses per
 * token, spread over gigabytes; on 4 KiB pages nearly each one also misses the TLB and pays a
 * page walk (a nested one under a hypervisor).  So the large arrays of a session's routes
 * (rosa_sam.h: states, edge blocks, runs; those of ROSA__ARENA_MIN bytes and up) live here:
 * - blocks up to 1 MiB come from slabs: 2 MiB-aligned mappings of at least 2 MiB holding 8 or
 *   more blocks of one size class (sizes step by 1.25x or less), so that many routes share each
 *   huge page; an emptied slab is unmapped (memory goes back as routes outgrow a class);
 * - larger blocks get a 2 MiB-aligned mapping of their own (rounded to 64 KiB).
 * Every mapping is madvise(MADV_HUGEPAGE)'d (transparent huge pages in madvise mode).  Growth
 * is allocate-copy-release, as realloc.  One mutex: the routes of a session are advanced by
 * several threads at once, but blocks are taken only when an array grows.  A session's state is
 * then a few hundred mappings, not tens of thousands of heap blocks, which also makes freeing
 * it cheap. */
#ifndef ROSA_ARENA_H
#define ROSA_ARENA_H

#include <stddef.h>

#define ROSA__ARENA_MIN ((size_t)64 << 10)       /* requests below this stay on the C heap */
#define ROSA__ARENA_SLAB_MAX ((size_t)1 << 20)   /* up to this, sizes are classes 1.25x apart */

typedef struct rosa__arena rosa__arena;

rosa__arena *rosa__arena_new(void); /* NULL when out of memory */
/* Unmaps everything (blocks still held by routes included). */
void rosa__arena_free(rosa__arena *a);

/* A block of at least `bytes` (>= ROSA__ARENA_MIN) bytes, its usable size in *got; NULL when
 * out of memory.  Block addresses are 64-byte aligned. */
void *rosa__arena_alloc(rosa__arena *a, size_t bytes, size_t *got);

/* Give block p back.  Returns 1, or 0 (nothing done) when p is not a block of this arena. */
int rosa__arena_release(rosa__arena *a, void *p);

/* Bytes mapped, and bytes of the blocks handed out (mapped - used: slab slack). */
void rosa__arena_stats(rosa__arena *a, size_t *mapped, size_t *used);
#endif
