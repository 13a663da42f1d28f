/* tokenizer_map.c: open-addressing hash tables for token strings and merge pairs (see
 * tokenizer_map.h).  Both are built once at load and only read afterwards, so lookups need no
 * locking and a loaded tokenizer can be shared between threads. */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "tokenizer/tokenizer_map.h"

uint32_t rosa__hash_bytes(const void *p, size_t n) {
    /* FNV-1a, then a final mix so that the low bits (used for the slot) are well spread. */
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
    h ^= h >> 15;
    h *= 0x2c1b3c6dU;
    h ^= h >> 12;
    return h;
}

static uint32_t pow2_at_least(uint32_t n) {
    uint32_t c = 16;
    while (c < n && c < (1u << 30)) c <<= 1;
    return c;
}

int rosa__strmap_init(rosa__strmap *m, uint32_t n, const char *arena, const uint32_t *off,
                      const uint32_t *len) {
    memset(m, 0, sizeof *m);
    uint32_t cap = pow2_at_least(n * 2 + 1);
    m->slots = malloc(sizeof *m->slots * cap);
    if (!m->slots) return ROSA_ERR_NOMEM;
    for (uint32_t i = 0; i < cap; i++) m->slots[i].id = -1;
    m->mask = cap - 1;
    m->arena = arena;
    m->off = off;
    m->len = len;
    return 0;
}

void rosa__strmap_free(rosa__strmap *m) {
    free(m->slots);
    m->slots = NULL;
}

int64_t rosa__strmap_put(rosa__strmap *m, int32_t id) {
    const char *key = m->arena + m->off[id];
    size_t len = m->len[id];
    uint32_t h = rosa__hash_bytes(key, len);
    uint32_t i = h & m->mask;
    for (;;) {
        struct rosa__strslot *s = &m->slots[i];
        if (s->id < 0) {
            s->hash = h;
            s->id = id;
            m->n++;
            return 0;
        }
        if (s->hash == h && m->len[s->id] == len && memcmp(m->arena + m->off[s->id], key, len) == 0)
            return s->id == id ? 0 : 1 + (int64_t)s->id;
        i = (i + 1) & m->mask;
    }
}

int32_t rosa__strmap_get(const rosa__strmap *m, const char *key, size_t len) {
    if (!m->slots) return -1;
    uint32_t h = rosa__hash_bytes(key, len);
    uint32_t i = h & m->mask;
    for (;;) {
        const struct rosa__strslot *s = &m->slots[i];
        if (s->id < 0) return -1;
        if (s->hash == h && m->len[s->id] == len && memcmp(m->arena + m->off[s->id], key, len) == 0)
            return s->id;
        i = (i + 1) & m->mask;
    }
}

int rosa__pairmap_init(rosa__pairmap *m, uint32_t n) {
    memset(m, 0, sizeof *m);
    uint32_t cap = pow2_at_least(n * 2 + 1);
    m->slots = malloc(sizeof *m->slots * cap);
    if (!m->slots) return ROSA_ERR_NOMEM;
    for (uint32_t i = 0; i < cap; i++) m->slots[i].key = ROSA__PAIR_EMPTY;
    m->mask = cap - 1;
    int bits = 0;
    while ((1u << bits) < cap) bits++;
    m->shift = 64 - bits;
    return 0;
}

void rosa__pairmap_free(rosa__pairmap *m) {
    free(m->slots);
    m->slots = NULL;
}

void rosa__pairmap_put(rosa__pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t merged) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> m->shift);
    for (;;) {
        struct rosa__pairslot *s = &m->slots[i];
        if (s->key == ROSA__PAIR_EMPTY) {
            s->key = key;
            m->n++;
        }
        if (s->key == key) {
            s->rank = rank;
            s->merged = merged;
            return;
        }
        i = (i + 1) & m->mask;
    }
}
