/* tokenizer_map.h: the two hash tables of the BPE tokenizer.
 *
 * rosa__strmap maps a token's string form to its id (vocabulary and merges lookups at load,
 * ignore_merges at encode); the strings themselves live in the tokenizer's arena and are
 * reached through per-id offsets, so a slot is only 8 bytes.  rosa__pairmap maps a pair of
 * ids to its merge (rank, merged id): the only lookup on the hot path of encoding. */
#ifndef ROSA_TOKENIZER_MAP_H
#define ROSA_TOKENIZER_MAP_H

#include <stddef.h>
#include <stdint.h>

uint32_t rosa__hash_bytes(const void *p, size_t n);

typedef struct rosa__strmap {
    struct rosa__strslot { uint32_t hash; int32_t id; } *slots; /* id -1: empty */
    uint32_t mask;
    uint32_t n;
    /* where the keys live: key of id i is arena[off[i] .. off[i] + len[i]) */
    const char *arena;
    const uint32_t *off, *len;
} rosa__strmap;

/* capacity for at least n keys; keys come from arena/off/len (which must stay valid). */
int rosa__strmap_init(rosa__strmap *m, uint32_t n, const char *arena, const uint32_t *off,
                      const uint32_t *len);
void rosa__strmap_free(rosa__strmap *m);
/* Insert id (its key is read through off/len).  Returns 0, or the id already holding an equal
 * key (>= 0 and != id) as 1 + that id; the caller decides. */
int64_t rosa__strmap_put(rosa__strmap *m, int32_t id);
int32_t rosa__strmap_get(const rosa__strmap *m, const char *key, size_t len);

typedef struct rosa__pairmap {
    struct rosa__pairslot { uint64_t key; uint32_t rank; int32_t merged; } *slots;
    uint32_t mask;
    int shift;
    uint32_t n;
} rosa__pairmap;

#define ROSA__PAIR_EMPTY UINT64_MAX

int rosa__pairmap_init(rosa__pairmap *m, uint32_t n);
void rosa__pairmap_free(rosa__pairmap *m);
/* Insert or overwrite (a later duplicate merge wins, as in Hugging Face's HashMap collect). */
void rosa__pairmap_put(rosa__pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t merged);

static inline const struct rosa__pairslot *rosa__pairmap_get(const rosa__pairmap *m, int32_t a,
                                                            int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> m->shift);
    for (;;) {
        const struct rosa__pairslot *s = &m->slots[i];
        if (s->key == key) return s;
        if (s->key == ROSA__PAIR_EMPTY) return NULL;
        i = (i + 1) & m->mask;
    }
}

#endif
