/* tokenizer_bpe.c: the BPE merge loop for one pre-token.
 *
 * This mirrors Hugging Face's Word::merge_all step for step, because "the lowest-ranked pair
 * first" alone does not pin the result down: a min-heap of (rank, position) candidates, stale
 * candidates skipped when the pair at that position no longer merges into the same id, and the
 * two new neighbouring pairs pushed after every merge.  Symbols start as one per byte (the
 * byte-level alphabet maps each byte to one character of the vocabulary). */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "tokenizer/tokenizer_internal.h"

struct rosa__sym {
    int32_t c;          /* token id */
    int32_t prev, next; /* neighbours, -1 at the ends */
    uint32_t len;       /* bytes covered; 0 once merged into its left neighbour */
};

struct rosa__merge {
    uint64_t key; /* rank << 32 | pos: the heap order (lowest rank, then leftmost) */
    int32_t merged;
};

int rosa__enc_push(rosa__enc *e, int32_t id) {
    if (e->n == e->cap) {
        size_t c = e->cap ? e->cap * 2 : 256;
        int32_t *p = realloc(e->ids, c * sizeof *p);
        if (!p) return ROSA_ERR_NOMEM;
        e->ids = p;
        e->cap = c;
    }
    e->ids[e->n++] = id;
    return 0;
}

static void heap_push(struct rosa__merge *h, size_t *n, uint64_t key, int32_t merged) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].key <= key) break;
        h[i] = h[p];
        i = p;
    }
    h[i].key = key;
    h[i].merged = merged;
}

static struct rosa__merge heap_pop(struct rosa__merge *h, size_t *n) {
    struct rosa__merge top = h[0];
    struct rosa__merge last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= m) break;
        size_t c = (l + 1 < m && h[l + 1].key < h[l].key) ? l + 1 : l;
        if (h[c].key >= last.key) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

static int grow(rosa__enc *e, size_t n) {
    if (n > e->sym_cap) {
        size_t c = e->sym_cap ? e->sym_cap : 64;
        while (c < n) c *= 2;
        struct rosa__sym *s = realloc(e->sym, c * sizeof *s);
        if (!s) return ROSA_ERR_NOMEM;
        e->sym = s;
        e->sym_cap = c;
    }
    /* every merge pushes at most two candidates: n initial + 2n */
    if (3 * n > e->heap_cap) {
        size_t c = e->heap_cap ? e->heap_cap : 192;
        while (c < 3 * n) c *= 2;
        struct rosa__merge *h = realloc(e->heap, c * sizeof *h);
        if (!h) return ROSA_ERR_NOMEM;
        e->heap = h;
        e->heap_cap = c;
    }
    return 0;
}

/* ignore_merges: a word that is itself a token is that token. */
static int32_t whole_word(rosa__enc *e, const unsigned char *w, size_t n) {
    if (4 * n > e->tmp_cap) {
        char *t = realloc(e->tmp, 4 * n);
        if (!t) return -2;
        e->tmp = t;
        e->tmp_cap = 4 * n;
    }
    size_t l = 0;
    for (size_t i = 0; i < n; i++) l += (size_t)rosa__utf8_encode(rosa__byte_char(w[i]), e->tmp + l);
    return rosa__strmap_get(&e->tk->vocab, e->tmp, l);
}

int rosa__bpe_word(rosa__enc *e, const unsigned char *w, size_t n) {
    const rosa_tokenizer *tk = e->tk;
    if (n == 0) return 0;
    if (n == 1 && tk->byte_id[w[0]] >= 0) return rosa__enc_push(e, tk->byte_id[w[0]]);
    if (tk->ignore_merges && n > 1) {
        int32_t id = whole_word(e, w, n);
        if (id == -2) return ROSA_ERR_NOMEM;
        if (id >= 0) return rosa__enc_push(e, id);
    }
    if (n > INT32_MAX / 4) return ROSA_ERR_LIMIT;
    int rc = grow(e, n);
    if (rc) return rc;
    struct rosa__sym *s = e->sym;
    int32_t ns = 0;
    int unk_open = 0; /* the last symbol is an unknown-character run that may still grow */
    for (size_t i = 0; i < n; i++) {
        int32_t id = tk->byte_id[w[i]];
        if (id < 0) {
            if (tk->unk_id < 0) continue; /* no unk token: the character is dropped (as in HF) */
            if (unk_open && tk->fuse_unk) {
                s[ns - 1].len++;
                continue;
            }
            id = tk->unk_id;
            unk_open = 1;
        } else {
            unk_open = 0;
        }
        s[ns].c = id;
        s[ns].prev = ns - 1;
        s[ns].next = ns + 1;
        s[ns].len = 1;
        ns++;
    }
    if (ns == 0) return 0;
    s[ns - 1].next = -1;

    struct rosa__merge *h = e->heap;
    size_t hn = 0;
    for (int32_t i = 0; i + 1 < ns; i++) {
        const struct rosa__pairslot *m = rosa__pairmap_get(&tk->merges, s[i].c, s[i + 1].c);
        if (m) heap_push(h, &hn, ((uint64_t)m->rank << 32) | (uint32_t)i, m->merged);
    }
    while (hn) {
        struct rosa__merge top = heap_pop(h, &hn);
        int32_t pos = (int32_t)(uint32_t)top.key;
        if (s[pos].len == 0 || s[pos].next < 0) continue;
        int32_t nx = s[pos].next;
        struct rosa__sym right = s[nx];
        const struct rosa__pairslot *m = rosa__pairmap_get(&tk->merges, s[pos].c, right.c);
        if (!m || m->merged != top.merged) continue; /* a stale candidate */
        s[pos].c = top.merged;
        s[pos].len += right.len;
        s[pos].next = right.next;
        s[nx].len = 0;
        if (right.next >= 0) s[right.next].prev = pos;
        if (s[pos].prev >= 0) {
            int32_t pv = s[pos].prev;
            const struct rosa__pairslot *mp = rosa__pairmap_get(&tk->merges, s[pv].c, s[pos].c);
            if (mp) heap_push(h, &hn, ((uint64_t)mp->rank << 32) | (uint32_t)pv, mp->merged);
        }
        if (s[pos].next >= 0) {
            const struct rosa__pairslot *mn = rosa__pairmap_get(&tk->merges, s[pos].c, s[s[pos].next].c);
            if (mn) heap_push(h, &hn, ((uint64_t)mn->rank << 32) | (uint32_t)pos, mn->merged);
        }
    }
    for (int32_t i = 0; i < ns; i++)
        if (s[i].len && (rc = rosa__enc_push(e, s[i].c))) return rc;
    return 0;
}

void rosa__bpe_free(rosa__enc *e) {
    free(e->sym);
    free(e->heap);
    free(e->tmp);
    e->sym = NULL;
    e->heap = NULL;
    e->tmp = NULL;
}
