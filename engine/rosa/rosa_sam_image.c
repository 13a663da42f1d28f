/* rosa_sam_image.c: a route's state as data, for rosa_session_fork and session files.
 *
 * A route (rosa_sam.h) is a handful of scalars plus six arrays addressed by 32-bit offsets, with
 * no pointers inside them, so a deep copy is: the scalars, then each array's used part copied
 * as bytes.  The copy's arrays are allocated to exactly the used lengths through the same
 * growth helper as a live route (rosa__sam_grow: its arena, its byte cap), so it grows on from
 * there like any route.  The header check bounds every count a session file can carry before
 * anything is allocated. */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa/rosa_sam.h"

#define LOW24 0xFFFFFFu
#define SAMPLE_LOG 6 /* rosa_sam.c: psample holds P_{64k} for k = 0 .. nruns >> 6 */

int rosa__route_get_hdr(const rosa__route *r, rosa__route_hdr *h) {
    if (r->err) return ROSA_ERR_INVALID;
    memset(h, 0, sizeof *h);
    h->nst = r->nst;
    h->npool = r->npool;
    h->capx = r->capx;
    h->nx = r->nx;
    h->nsample = r->nst ? (r->nruns >> SAMPLE_LOG) + 1 : 0;
    h->ncells = r->ncells;
    h->nruns = r->nruns;
    h->last = r->last;
    h->nclones = r->nclones;
    h->rootx = r->rootx;
    for (int i = 0; i < ROSA__NCLASS; i++) h->freel[i] = r->freel[i];
    h->kd_log = r->kd_log;
    h->cell_min = r->cell_min;
    h->cursor = r->cursor;
    h->moved = r->moved;
    h->prev_k = r->prev_k;
    h->prev_q = r->prev_q;
    h->csym = r->csym;
    h->t = r->t;
    return 0;
}

static int handle_ok(uint32_t hd, uint32_t npool) {
    return hd == ROSA__NONE || (hd & ROSA__OFF_MASK) < npool;
}

int rosa__route_check_hdr(const rosa__route_hdr *h) {
    if (h->moved > 1 || h->prev_k > 255 || h->prev_q > 255 || h->csym > 255) return ROSA_ERR_FORMAT;
    if (h->kd_log < 1 || h->kd_log > 8 || h->cell_min > LOW24) return ROSA_ERR_FORMAT;
    if (h->t < 0 || h->t > 0x7FFFFFFF) return ROSA_ERR_FORMAT;
    if (!h->nst) /* a route that has seen no k-run yet */
        return h->npool || h->capx || h->nx || h->nsample || h->ncells || h->nruns || h->last ||
                       h->cursor || h->nclones
                   ? ROSA_ERR_FORMAT
                   : 0;
    if (h->nst < 2 || h->nst > ROSA__NONE || h->npool > ROSA__OFF_MASK) return ROSA_ERR_FORMAT;
    /* capx: a power of two, at most what ROSA__MAX_RUNS prefix states need (load <= 1/2), so
     * that an xmap word index fits the undo log's 28 bits */
    if (h->capx & (h->capx - 1) || h->capx > (1u << 26) || 2ull * h->nx > h->capx) return ROSA_ERR_FORMAT;
    if (h->nruns > ROSA__MAX_RUNS || h->nsample != (h->nruns >> SAMPLE_LOG) + 1) return ROSA_ERR_FORMAT;
    if (h->ncells >= LOW24 || h->nclones > h->nst || (int64_t)h->nruns > h->t) return ROSA_ERR_FORMAT;
    if (h->last >= h->nst || h->cursor >= h->nst || !handle_ok(h->rootx, h->npool)) return ROSA_ERR_FORMAT;
    for (int i = 0; i < ROSA__NCLASS; i++)
        if (h->freel[i] != ROSA__NONE && h->freel[i] >= h->npool) return ROSA_ERR_FORMAT;
    return 0;
}

static int alloc_exact(rosa__route *r, void **p, uint32_t *cap, uint32_t n, size_t elem) {
    if (!n) return 0;
    return rosa__sam_grow(r, p, cap, n, elem, n);
}

int rosa__route_from_hdr(rosa__route *r, const rosa__route_hdr *h) {
    int err;
    if ((err = alloc_exact(r, (void **)&r->st, &r->capst, h->nst, sizeof(uint32_t))) ||
        (err = alloc_exact(r, (void **)&r->pool, &r->cappool, h->npool, sizeof(uint32_t))) ||
        (err = alloc_exact(r, (void **)&r->psample, &r->capsample, h->nsample, sizeof(uint32_t))) ||
        (err = alloc_exact(r, (void **)&r->cells, &r->capcells, h->ncells, 3 * sizeof(uint32_t))) ||
        (err = alloc_exact(r, (void **)&r->runs, &r->capruns, h->nruns, ROSA__RUN_BYTES)))
        return err;
    if (h->capx) { /* the extra-edge map keeps its capacity: slots are hashed modulo it */
        r->xmap = calloc((size_t)h->capx * 2, sizeof(uint32_t));
        if (!r->xmap) return ROSA_ERR_NOMEM;
        r->capx = h->capx;
    }
    r->nst = h->nst;
    r->npool = h->npool;
    r->nx = h->nx;
    r->ncells = h->ncells;
    r->nruns = h->nruns;
    r->last = h->last;
    r->nclones = h->nclones;
    r->rootx = h->rootx;
    for (int i = 0; i < ROSA__NCLASS; i++) r->freel[i] = h->freel[i];
    r->kd_log = h->kd_log;
    r->cell_min = h->cell_min;
    r->cursor = h->cursor;
    r->moved = (uint8_t)h->moved;
    r->prev_k = (uint8_t)h->prev_k;
    r->prev_q = (uint8_t)h->prev_q;
    r->csym = (uint8_t)h->csym;
    r->t = h->t;
    return 0;
}

void rosa__route_arrays(const rosa__route *r, void **p, size_t *bytes) {
    uint32_t nsample = r->nst ? (r->nruns >> SAMPLE_LOG) + 1 : 0;
    p[0] = r->st;      bytes[0] = (size_t)r->nst * sizeof(uint32_t);
    p[1] = r->pool;    bytes[1] = (size_t)r->npool * sizeof(uint32_t);
    p[2] = r->xmap;    bytes[2] = (size_t)r->capx * 2 * sizeof(uint32_t);
    p[3] = r->psample; bytes[3] = (size_t)nsample * sizeof(uint32_t);
    p[4] = r->cells;   bytes[4] = (size_t)r->ncells * 3 * sizeof(uint32_t);
    p[5] = r->runs;    bytes[5] = (size_t)r->nruns * ROSA__RUN_BYTES;
    for (int i = 0; i < ROSA__ROUTE_NARRAYS; i++)
        if (!bytes[i]) p[i] = NULL;
}

void rosa__route_hdr_pack(const rosa__route_hdr *h, uint32_t *w) {
    uint32_t v[ROSA__ROUTE_HDR_WORDS] = {h->nst, h->npool, h->capx, h->nx, h->nsample, h->ncells,
                                         h->nruns, h->last, h->nclones, h->rootx, h->freel[0],
                                         h->freel[1], h->freel[2], h->kd_log, h->cell_min,
                                         h->cursor, h->moved, h->prev_k, h->prev_q, h->csym,
                                         (uint32_t)((uint64_t)h->t & 0xFFFFFFFFu),
                                         (uint32_t)((uint64_t)h->t >> 32)};
    memcpy(w, v, sizeof v);
}

void rosa__route_hdr_unpack(const uint32_t *w, rosa__route_hdr *h) {
    uint32_t *f[20] = {&h->nst, &h->npool, &h->capx, &h->nx, &h->nsample, &h->ncells, &h->nruns,
                       &h->last, &h->nclones, &h->rootx, &h->freel[0], &h->freel[1], &h->freel[2],
                       &h->kd_log, &h->cell_min, &h->cursor, &h->moved, &h->prev_k, &h->prev_q,
                       &h->csym};
    for (int i = 0; i < 20; i++) *f[i] = w[i];
    h->t = (int64_t)((uint64_t)w[20] | (uint64_t)w[21] << 32);
}

int rosa__route_copy(rosa__route *dst, const rosa__route *src) {
    rosa__route_hdr h;
    int err = rosa__route_get_hdr(src, &h);
    if (err) return err;
    dst->max_bytes = src->max_bytes;
    dst->horizon = src->horizon; /* the log itself is not copied: dst's starts empty */
    if ((err = rosa__route_from_hdr(dst, &h))) return err;
    void *sp[ROSA__ROUTE_NARRAYS], *dp[ROSA__ROUTE_NARRAYS];
    size_t sb[ROSA__ROUTE_NARRAYS], db[ROSA__ROUTE_NARRAYS];
    rosa__route_arrays(src, sp, sb);
    rosa__route_arrays(dst, dp, db);
    for (int i = 0; i < ROSA__ROUTE_NARRAYS; i++)
        if (sb[i]) memcpy(dp[i], sp[i], sb[i]);
    return 0;
}
