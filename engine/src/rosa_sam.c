/* rosa_sam.c: online suffix automaton over k-runs with last_end, and the ROSA query cursor.
 * See rosa_sam.h and ROSA-SPEC section 3. */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa_sam.h"

void rosa__route_init(rosa__route *r) {
    memset(r, 0, sizeof *r);
    r->last = -1;
    r->cursor = 0;
}

void rosa__route_free(rosa__route *r) {
    free(r->st);
    free(r->ed);
    free(r->start);
    free(r->vsym);
    rosa__route_init(r);
}

size_t rosa__route_bytes(const rosa__route *r) {
    return (size_t)r->capst * sizeof *r->st + (size_t)r->caped * sizeof *r->ed +
           (size_t)r->capruns * (sizeof *r->start + sizeof *r->vsym);
}

static int reserve(void **p, int32_t *cap, int32_t need, size_t elem) {
    if (need <= *cap) return 0;
    int64_t nc = *cap ? (int64_t)*cap * 3 / 2 + 16 : 64;
    if (nc < need) nc = need;
    if (nc > INT32_MAX) return ROSA_ERR_NOMEM;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return ROSA_ERR_NOMEM;
    *p = q;
    *cap = (int32_t)nc;
    return 0;
}

static int32_t next_of(const rosa__route *r, int32_t s, uint8_t c) {
    for (int32_t e = r->st[s].edges; e >= 0; e = r->ed[e].next)
        if (r->ed[e].sym == c) return r->ed[e].target;
    return -1;
}

static void set_next(rosa__route *r, int32_t s, uint8_t c, int32_t to) {
    for (int32_t e = r->st[s].edges; e >= 0; e = r->ed[e].next)
        if (r->ed[e].sym == c) { r->ed[e].target = to; return; }
}

static int add_edge(rosa__route *r, int32_t s, uint8_t c, int32_t to) {
    if (reserve((void **)&r->ed, &r->caped, r->ned + 1, sizeof *r->ed)) return ROSA_ERR_NOMEM;
    rosa__sam_edge *e = &r->ed[r->ned];
    e->target = to;
    e->sym = c;
    e->next = r->st[s].edges;
    r->st[s].edges = r->ned++;
    return 0;
}

static int32_t new_state(rosa__route *r, int32_t len, int32_t link, int32_t last_end) {
    if (reserve((void **)&r->st, &r->capst, r->nst + 1, sizeof *r->st)) return -1;
    rosa__sam_state *s = &r->st[r->nst];
    s->len = len;
    s->link = link;
    s->last_end = last_end;
    s->edges = -1;
    return r->nst++;
}

/* Append run symbol c as run index n. */
static int sam_extend(rosa__route *r, uint8_t c, int32_t n) {
    if (r->nst == 0) {
        if (new_state(r, 0, -1, -1) < 0) return ROSA_ERR_NOMEM;
        r->last = 0;
    }
    int32_t cur = new_state(r, r->st[r->last].len + 1, -1, -1);
    if (cur < 0) return ROSA_ERR_NOMEM;
    int32_t p = r->last;
    while (p >= 0 && next_of(r, p, c) < 0) {
        if (add_edge(r, p, c, cur)) return ROSA_ERR_NOMEM;
        p = r->st[p].link;
    }
    if (p < 0) {
        r->st[cur].link = 0;
    } else {
        int32_t q = next_of(r, p, c);
        if (r->st[p].len + 1 == r->st[q].len) {
            r->st[cur].link = q;
        } else {
            int32_t cl = new_state(r, r->st[p].len + 1, r->st[q].link, r->st[q].last_end);
            if (cl < 0) return ROSA_ERR_NOMEM;
            for (int32_t e = r->st[q].edges; e >= 0; e = r->ed[e].next)
                if (add_edge(r, cl, r->ed[e].sym, r->ed[e].target)) return ROSA_ERR_NOMEM;
            while (p >= 0 && next_of(r, p, c) == q) {
                set_next(r, p, c, cl);
                p = r->st[p].link;
            }
            r->st[q].link = cl;
            r->st[cur].link = cl;
        }
    }
    r->last = cur;
    for (int32_t v = cur; v >= 0 && r->st[v].last_end != n; v = r->st[v].link) r->st[v].last_end = n;
    return 0;
}

int rosa__route_run(rosa__route *r, int T, const uint8_t *qs, const uint8_t *ks,
                    const uint8_t *vs, size_t stride, int16_t *vout, int32_t *dest) {
    for (int i = 0; i < T; i++) {
        uint8_t q = qs[i * stride], k = ks[i * stride], v = vs[i * stride];
        int first = r->t == 0;
        if (first || k != r->prev_k) {
            if (reserve((void **)&r->start, &r->capruns, r->nruns + 1, sizeof *r->start)) return ROSA_ERR_NOMEM;
            int32_t cap = r->capruns - 1; /* vsym grows in step with start */
            (void)cap;
            uint8_t *nv = realloc(r->vsym, (size_t)r->capruns);
            if (!nv) return ROSA_ERR_NOMEM;
            r->vsym = nv;
            r->start[r->nruns] = r->t;
            r->vsym[r->nruns] = v;
            if (sam_extend(r, k, r->nruns)) return ROSA_ERR_NOMEM;
            r->nruns++;
        }
        if (first || q != r->prev_q) r->moved = 0;
        /* step(s, q) */
        int32_t s = r->cursor, ns = -1;
        while (s >= 0) {
            ns = next_of(r, s, q);
            if (ns >= 0) break;
            s = r->st[s].link;
        }
        int16_t out = -1;
        int32_t d = -1;
        if (ns >= 0) {
            int32_t p = r->st[ns].last_end + 1;
            if (p <= r->nruns - 1) {
                d = r->start[p];
                out = r->vsym[p];
            }
            if (!r->moved) {
                r->cursor = ns;
                r->moved = 1;
            }
        }
        vout[i * stride] = out;
        if (dest) dest[i * stride] = d;
        r->prev_k = k;
        r->prev_q = q;
        r->t++;
    }
    return 0;
}
