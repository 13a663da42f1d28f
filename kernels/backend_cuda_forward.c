/* backend_cuda_forward.c: one forward call of the CUDA backend over a batch of (session,
 * token chunk) rows, the same computation as backend_cpu.c.
 *
 * Everything is queued on one stream; the host waits only where the ROSA automata need it.
 * Per ROSA layer: the GPU computes the three projections and packs them into route symbols,
 * which are copied to pinned host memory; in post_attn mode the layer's attention (q/k/v
 * products, norm + rotary, attention, cache store, o_proj) is queued *before* the host waits
 * for the symbols, so the automata steps on the CPU overlap the attention on the GPU.  The
 * retrieved value symbols go back, are turned into y and added through rosa_out.  pre_attn
 * needs the injection before its attention, so there the CPU step is not hidden. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend_cuda.h"

#define CK(call) do { if ((rc = rosa__cu_check((int)(call), #call))) goto out; } while (0)

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t al(size_t n) { return (n + 255) / 256 * 256; }

typedef struct call_meta {
    int32_t *tokens, *pos, *last;  /* [rows], [rows], [nseq] */
    rc_seq *seqs;                   /* [nseq] */
    rc_tile *tiles;                 /* [rows + nseq] */
    const int32_t **tabs;           /* [L, nseq] device page tables per layer */
} call_meta;

/* must match rosa__cu_meta_bytes */
static void meta_layout(char *base, int rows, int nseq, call_meta *o) {
    size_t off = 0;
    o->tokens = (int32_t *)(base + off); off += al((size_t)rows * 4);
    o->pos = (int32_t *)(base + off); off += al((size_t)rows * 4);
    o->last = (int32_t *)(base + off); off += al((size_t)rows * 4);
    o->seqs = (rc_seq *)(base + off); off += al((size_t)nseq * sizeof(rc_seq));
    o->tiles = (rc_tile *)(base + off); off += al((size_t)(rows + nseq) * sizeof(rc_tile));
    o->tabs = (const int32_t **)(base + off);
}

/* A range of the call: sessions [s0, s1), their rows [r0, r1) and tiles [t0, t1). */
typedef struct span {
    int s0, s1, r0, r1, t0, t1;
} span;

typedef struct call {
    rosa_model *m;
    cu_model *cm;
    /* where this call's projections land: the scratch buffers, or for a single row (batch-1
     * decode) consecutive slices of cm->row1, so that products sharing an input and adjacent in
     * the weight arena run as one GEMM ([rq|rk|rv|q|k|v], [gate|up]): fewer launches */
    float *rq, *rk, *rv, *q, *k, *v, *g, *up;
    int one;
    int N, nseq, ntiles, max_tile_rows, max_ntok;
    int nlast;                      /* sessions with rows (ntok > 0): the rows of c.h.last */
    span all;                       /* the whole call */
    span half[2];                   /* the ROSA pipeline's two halves (nhalf = 2), else half[0] = all */
    int nhalf;
    call_meta h, d;
} call;

/* splits of the key range per tile of span p: enough blocks to fill the GPU, >= min_keys keys each */
static int pick_nsplit(const call *c, const span *p, int W, int min_keys) {
    int maxk = 1;
    for (int t = p->t0; t < p->t1; t++) {
        const rc_tile *tl = &c->h.tiles[t];
        const rc_seq *sq = &c->h.seqs[tl->seq];
        int p_first = sq->pos0 + (tl->row0 - sq->row0), p_last = p_first + tl->nrows - 1;
        int lo = W && p_first - W + 1 > 0 ? p_first - W + 1 : 0;
        if (p_last - lo + 1 > maxk) maxk = p_last - lo + 1;
    }
    int want = (maxk + min_keys - 1) / min_keys;
    int blocks = (p->t1 - p->t0) * c->m->Hkv;
    int fill = (2 * c->cm->sms + blocks - 1) / blocks;
    int n = want < fill ? want : fill;
    int cap = c->cm->part_rows / c->N;
    if (n > cap) n = cap;
    return n < 1 ? 1 : n;
}

/* q/k/v products, norm + rotary, attention, cache store, h += o_proj(att), for the rows of span
 * p (uin: the whole call's normed input; rows are addressed inside it) */
static int attn_block(const call *c, const span *p, int l, const void *uin, int qkv_done) {
    rosa_model *m = c->m;
    cu_model *cm = c->cm;
    const cu_layer *w = &cm->ly[l];
    int rc = 0, n = p->r1 - p->r0, C = m->C, D = m->D, Hq = m->Hq, Hkv = m->Hkv, act = cm->act;
    size_t ea = rc_dtype_size(act), r0 = (size_t)p->r0, QD = (size_t)Hq * D, KD = (size_t)Hkv * D;
    const char *u = (const char *)uin + r0 * C * ea;
    float *q = c->q + r0 * QD, *k = c->k + r0 * KD, *v = c->v + r0 * KD;
    char *kn = (char *)cm->kn + r0 * KD * ea, *vn = (char *)cm->vn + r0 * KD * ea;
    if (n <= 0) return 0;
    if (qkv_done) {
        /* computed with the ROSA projections (rosa_block) */
    } else if (c->one && w->fuse_qkv) {
        CK(rc_gemm(cm->blas, q, u, w->q, act, 1, (Hq + 2 * Hkv) * D, C, 0.0f));
    } else {
        CK(rc_gemm(cm->blas, q, u, w->q, act, n, Hq * D, C, 0.0f));
        CK(rc_gemm(cm->blas, k, u, w->k, act, n, Hkv * D, C, 0.0f));
        CK(rc_gemm(cm->blas, v, u, w->v, act, n, Hkv * D, C, 0.0f));
    }
    CK(rc_qk_norm_rope(q, k, v, kn, vn, act, w->q_norm, w->k_norm, cm->inv_freq, m->rope_scale, c->d.pos + r0, n, Hq,
                       Hkv, D, m->cfg.eps, cm->st));
    /* tiles name absolute rows and sessions: the whole q/k/v, seqs and tables, p's tiles; the
     * combine merges only p's rows */
    rc_kv_layer kv = {.kpool = cm->kpool, .vpool = cm->vpool, .tables = c->d.tabs + (size_t)l * c->nseq,
                      .P = CU_PAGE_TOKENS, .W = m->layer_window[l], .dt = act};
    rc_attn_args a = {.q = c->q, .k = cm->kn, .v = cm->vn, .out = cm->att, .out_dt = act, .kv = kv,
                      .seqs = c->d.seqs, .tiles = c->d.tiles + p->t0, .ntiles = p->t1 - p->t0, .nsplit = 1,
                      .max_tile_rows = c->max_tile_rows, .part = cm->part, .N = c->N, .Hq = Hq, .Hkv = Hkv, .D = D,
                      .scale = 1.0f / sqrtf((float)D), .comb_row0 = p->r0, .comb_rows = n};
    /* decode steps (single-row tiles) take the streaming kernel, unless ROSA_CUDA_ATTN=generic */
    if (!cm->attn_generic && rc_attention_decode_supported(&a)) {
        a.nsplit = pick_nsplit(c, p, kv.W, CU_SPLIT_KEYS_DECODE);
        CK(rc_attention_decode(&a, cm->st));
    } else {
        a.nsplit = pick_nsplit(c, p, kv.W, CU_SPLIT_KEYS);
        CK(rc_attention(&a, cm->st));
    }
    rc_kv_layer kvp = kv;
    kvp.tables = kv.tables + p->s0;
    CK(rc_kv_store(&kvp, cm->kn, cm->vn, c->d.seqs + p->s0, p->s1 - p->s0, c->max_ntok, Hkv, D, cm->st));
    CK(rc_gemm(cm->blas, cm->x + r0 * C, (const char *)cm->att + r0 * QD * ea, w->o, act, n, C, Hq * D, 1.0f));
out:
    return rc;
}

/* The ROSA channel of layer l.  Each half's projections are packed into its own region of the
 * symbol buffer with its own event; post_attn then queues the whole attention before any wait.
 * The host steps half 0's automata as soon as its symbols are there and queues its injection
 * (pre_attn: and its attention), then steps half 1 while the GPU works on half 0. */
static int rosa_block(const call *c, int l, struct rosa_session *const *ss, const int *ntok) {
    rosa_model *m = c->m;
    cu_model *cm = c->cm;
    const cu_layer *w = &cm->ly[l];
    int rc = 0, C = m->C, R = m->R, M = m->M, act = cm->act;
    size_t ea = rc_dtype_size(act);
    int post = m->inject_mode == ROSA_INJECT_POST_ATTN;
    /* post_attn, one row: the attention's q/k/v read the same u, so all six in one product */
    int six = post && c->one && w->fuse6;
    for (int h = 0; h < c->nhalf; h++) {
        const span *p = &c->half[h];
        int n = p->r1 - p->r0;
        size_t r0 = (size_t)p->r0, tot = (size_t)n * R;
        const char *u = (const char *)cm->u + r0 * C * ea;
        float *rq = c->rq + r0 * C, *rk = c->rk + r0 * C, *rv = c->rv + r0 * C;
        if (six) {
            CK(rc_gemm(cm->blas, rq, u, w->rq, act, 1, 3 * C + (m->Hq + 2 * m->Hkv) * m->D, C, 0.0f));
        } else if (c->one && w->fuse_rosa) {
            CK(rc_gemm(cm->blas, rq, u, w->rq, act, 1, 3 * C, C, 0.0f));
        } else {
            CK(rc_gemm(cm->blas, rq, u, w->rq, act, n, C, C, 0.0f));
            CK(rc_gemm(cm->blas, rk, u, w->rk, act, n, C, C, 0.0f));
            CK(rc_gemm(cm->blas, rv, u, w->rv, act, n, C, C, 0.0f));
        }
        /* half h's symbols: [3, n, R] at 3 * r0 * R */
        if (cm->m_sym) {
            CK(rc_rosa_pack(cm->m_sym + 3 * r0 * R, rq, rk, rv, n, R, M, cm->st));
        } else {
            CK(rc_rosa_pack(cm->d_sym + 3 * r0 * R, rq, rk, rv, n, R, M, cm->st));
            CK(cudaMemcpyAsync(cm->h_sym + 3 * r0 * R, cm->d_sym + 3 * r0 * R, 3 * tot, cudaMemcpyDeviceToHost, cm->st));
        }
        CK(cudaEventRecord(cm->ev_sym[h], cm->st));
    }
    if (post && (rc = attn_block(c, &c->all, l, cm->u, six))) goto out;
    for (int h = 0; h < c->nhalf; h++) {
        const span *p = &c->half[h];
        int n = p->r1 - p->r0;
        size_t r0 = (size_t)p->r0, tot = (size_t)n * R;
        double t0 = now_s();
        /* spin on the event rather than block: the wait is short and a sleeping host thread
         * would add its wake-up to every ROSA layer */
        cudaError_t q;
        while ((q = cudaEventQuery(cm->ev_sym[h])) == cudaErrorNotReady) cpu_relax();
        CK(q);
        double t1 = now_s();
        const uint8_t *sym = cm->h_sym + 3 * r0 * R;
        rc = rosa__rosa_step(m, ss + p->s0, p->s1 - p->s0, ntok + p->s0, m->layer[l].rosa, sym, sym + tot, sym + 2 * tot,
                             cm->h_vout + r0 * R, cm->h_dest + r0 * R);
        if (rc) goto out;
        cm->rosa_wait_s += t1 - t0;
        cm->rosa_cpu_s += now_s() - t1;
        char *y = (char *)cm->y + r0 * C * ea;
        if (cm->m_vout) {
            CK(rc_rosa_inject(y, act, cm->m_vout + r0 * R, w->e0, w->e1, n, R, M, cm->st));
        } else {
            CK(cudaMemcpyAsync(cm->d_vout + r0 * R, cm->h_vout + r0 * R, tot * sizeof(int16_t), cudaMemcpyHostToDevice,
                               cm->st));
            CK(rc_rosa_inject(y, act, cm->d_vout + r0 * R, w->e0, w->e1, n, R, M, cm->st));
        }
        if (post) {
            CK(rc_gemm(cm->blas, cm->x + r0 * C, y, w->rout, act, n, C, C, 1.0f));
        } else {
            CK(rc_gemm(cm->blas, cm->inj + r0 * C, y, w->rout, act, n, C, C, 0.0f));
            CK(rc_mix_rmsnorm((char *)cm->u + r0 * C * ea, act, cm->x + r0 * C, cm->inj + r0 * C, w->alpha, w->in_norm,
                              n, C, m->cfg.eps, cm->st));
            if ((rc = attn_block(c, p, l, cm->u, 0))) goto out;
        }
    }
    cm->rosa_layer_calls++;
out:
    return rc;
}

/* Logits rows [rows, V] from the device into the caller's (pageable) buffer through the pinned
 * h_last, in two halves that alternate: the copy of one chunk runs while the host moves the
 * previous one out.  A direct cudaMemcpyAsync into pageable memory is synchronous and runs at
 * pageable speed; this keeps the DMA on pinned memory.  h_last holds nseq_cap >= 8 rows. */
static int rows_out(cu_model *cm, const float *d_src, int rows, int V, float *dst) {
    int rc = 0, half = cm->nseq_cap / 2, nchunks = (rows + half - 1) / half;
    float *buf[2] = {cm->h_last, cm->h_last + (size_t)half * V};
    for (int k = 0; k <= nchunks; k++) {
        /* queue chunk k into buf[k & 1]: that half was emptied on the host in step k - 1 */
        if (k < nchunks) {
            int n = rows - k * half < half ? rows - k * half : half;
            CK(cudaMemcpyAsync(buf[k & 1], d_src + (size_t)k * half * V, (size_t)n * V * sizeof(float),
                               cudaMemcpyDeviceToHost, cm->st));
            CK(cudaEventRecord(cm->ev_out[k & 1], cm->st));
        }
        if (k > 0) {
            int j = k - 1, n = rows - j * half < half ? rows - j * half : half;
            CK(cudaEventSynchronize(cm->ev_out[j & 1]));
            memcpy(dst + (size_t)j * half * V, buf[j & 1], (size_t)n * V * sizeof(float));
        }
    }
out:
    return rc;
}

int rosa__cu_forward(rosa_model *m, struct rosa_session *const *ss, int nseq, const int *ntok, const int32_t *tokens,
                     float *logits) {
    return rosa__cu_forward_ex(m, ss, nseq, ntok, tokens, logits, 0);
}

int rosa__cu_forward_ex(rosa_model *m, struct rosa_session *const *ss, int nseq, const int *ntok, const int32_t *tokens,
                        float *logits, int keep) {
    cu_model *cm = m->bctx;
    int rc = 0, N = 0, max_ntok = 0;
    for (int i = 0; i < nseq; i++) {
        N += ntok[i];
        if (ntok[i] > max_ntok) max_ntok = ntok[i];
    }
    if (N == 0) return 0;
    /* admission: the pages of every session of the call, or nothing changes */
    int64_t need = 0;
    for (int i = 0; i < nseq; i++) {
        const cu_session *cs = ss[i]->bstate;
        int64_t n = rosa__kvtable_need(&cs->tab, m->layer_window, ss[i]->pos + ntok[i]);
        if (n < 0) return ROSA_ERR_LIMIT;
        need += n - (n < cs->tab.reserved ? n : cs->tab.reserved);
    }
    if (need > rosa__kvpool_available(&cm->pool)) return ROSA_ERR_LIMIT;
    if ((rc = rosa__cu_check((int)cudaSetDevice(cm->dev), "cudaSetDevice"))) return rc;
    if (rosa__cu_ensure_rows(m, N, nseq)) {
        /* device or pinned memory for this many rows is not there now; nothing has changed yet,
         * so the call is refused like a full pool and the sessions stay usable */
        cudaGetLastError();
        return ROSA_ERR_LIMIT;
    }
    for (int i = 0; i < nseq; i++) {
        cu_session *cs = ss[i]->bstate;
        int64_t lo, hi;
        if (rosa__kvtable_grow(&cs->tab, &cm->pool, m->layer_window, ss[i]->pos + ntok[i], &lo, &hi)) return ROSA_ERR_LIMIT;
        if (lo >= 0)
            CK(cudaMemcpyAsync(cs->d_ids + lo, cs->tab.ids + lo, (size_t)(hi - lo + 1) * sizeof(int32_t),
                               cudaMemcpyHostToDevice, cm->st));
    }

    call c = {.m = m, .cm = cm, .N = N, .nseq = nseq, .max_ntok = max_ntok, .one = N == 1};
    if (c.one) {
        size_t QD = (size_t)m->Hq * m->D, KD = (size_t)m->Hkv * m->D;
        c.rq = cm->row1;
        c.rk = c.rq + m->C;
        c.rv = c.rk + m->C;
        c.q = c.rv + m->C;
        c.k = c.q + QD;
        c.v = c.k + KD;
        c.g = c.v + KD;
        c.up = c.g + m->F;
    } else {
        c.rq = cm->rq; c.rk = cm->rk; c.rv = cm->rv; c.q = cm->q; c.k = cm->k; c.v = cm->v; c.g = cm->g; c.up = cm->up;
    }
    meta_layout(cm->h_meta, cm->rows_cap, cm->nseq_cap, &c.h);
    meta_layout(cm->d_meta, cm->rows_cap, cm->nseq_cap, &c.d);
    int qt = RC_ATTN_MAXQ / (m->Hq / m->Hkv);
    for (int i = 0, row0 = 0; i < nseq; row0 += ntok[i], i++) {
        int32_t pos0 = (int32_t)ss[i]->pos;
        c.h.seqs[i] = (rc_seq){.row0 = row0, .ntok = ntok[i], .pos0 = pos0};
        /* a session with no rows in this call has no last row: it keeps its logits */
        if (ntok[i]) c.h.last[c.nlast++] = row0 + ntok[i] - 1;
        for (int t = 0; t < ntok[i]; t++) {
            c.h.tokens[row0 + t] = tokens[row0 + t];
            c.h.pos[row0 + t] = pos0 + t;
        }
        for (int t0 = 0; t0 < ntok[i]; t0 += qt) {
            int nr = ntok[i] - t0 < qt ? ntok[i] - t0 : qt;
            c.h.tiles[c.ntiles++] = (rc_tile){.seq = i, .row0 = row0 + t0, .nrows = nr};
            if (nr > c.max_tile_rows) c.max_tile_rows = nr;
        }
        const cu_session *cs = ss[i]->bstate;
        for (int l = 0; l < m->L; l++) c.h.tabs[(size_t)l * nseq + i] = cs->d_ids + cs->tab.off[l];
    }
    CK(cudaMemcpyAsync(cm->d_meta, cm->h_meta, cm->meta_bytes, cudaMemcpyHostToDevice, cm->st));
    /* the ROSA pipeline's halves: sessions split in two, so the GPU works on one half while the
     * host steps the other's automata; one span when there is a single session */
    c.all = (span){0, nseq, 0, N, 0, c.ntiles};
    c.half[0] = c.all;
    c.nhalf = 1;
    if (nseq >= 2 && m->n_rosa && !cm->no_halves) {
        int sm = nseq / 2, rm = c.h.seqs[sm].row0, tm = 0;
        while (tm < c.ntiles && c.h.tiles[tm].seq < sm) tm++;
        if (rm > 0 && rm < N) {
            c.half[0] = (span){0, sm, 0, rm, 0, tm};
            c.half[1] = (span){sm, nseq, rm, N, tm, c.ntiles};
            c.nhalf = 2;
        }
    }

    int C = m->C, V = m->V, F = m->F, act = cm->act;
    float eps = m->cfg.eps;
    CK(rc_embed(cm->x, cm->embed, act, c.d.tokens, N, C, V, cm->st));
    /* the automata's workers spin between the ROSA layers of this pass instead of sleeping */
    if (m->n_rosa) rosa__pool_hot(m->pool, 1);
    for (int l = 0; l < m->L; l++) {
        const cu_layer *w = &cm->ly[l];
        CK(rc_rmsnorm(cm->u, act, cm->x, NULL, w->in_norm, NULL, N, C, eps, cm->st));
        if (m->layer[l].rosa >= 0) rc = rosa_block(&c, l, ss, ntok);
        else rc = attn_block(&c, &c.all, l, cm->u, 0);
        if (rc) goto out;
        CK(rc_rmsnorm(cm->h2, act, cm->x, NULL, w->post_norm, NULL, N, C, eps, cm->st));
        if (c.one && w->fuse_gu) {
            CK(rc_gemm(cm->blas, c.g, cm->h2, w->gate, act, 1, 2 * F, C, 0.0f));
        } else {
            CK(rc_gemm(cm->blas, c.g, cm->h2, w->gate, act, N, F, C, 0.0f));
            CK(rc_gemm(cm->blas, c.up, cm->h2, w->up, act, N, F, C, 0.0f));
        }
        CK(rc_silu_gate(cm->gu, act, c.g, c.up, (size_t)N * F, cm->st));
        CK(rc_gemm(cm->blas, cm->x, cm->gu, w->down, act, N, C, F, 1.0f));
    }
    rosa__pool_hot(m->pool, 0);
    if (logits) {
        CK(rc_rmsnorm(cm->u, act, cm->x, NULL, cm->final_norm, NULL, N, C, eps, cm->st));
        CK(rc_gemm(cm->blas, cm->logits, cm->u, cm->lm_head, act, N, V, C, 0.0f));
        if ((rc = rows_out(cm, cm->logits, N, V, logits))) goto out;
        for (int i = 0, k = 0; i < nseq; i++)
            if (ntok[i]) memcpy(ss[i]->last_logits, logits + (size_t)c.h.last[k++] * V, (size_t)V * sizeof(float));
    } else {
        CK(rc_rmsnorm(cm->u, act, cm->x, NULL, cm->final_norm, c.d.last, c.nlast, C, eps, cm->st));
        CK(rc_gemm(cm->blas, cm->logits, cm->u, cm->lm_head, act, c.nlast, V, C, 0.0f));
        if (keep) { /* the caller samples from cm->logits on the stream (backend_cuda_sample.c) */
            cm->forwards++;
            return 0;
        }
        CK(cudaMemcpyAsync(cm->h_last, cm->logits, (size_t)c.nlast * V * sizeof(float), cudaMemcpyDeviceToHost, cm->st));
        CK(cudaStreamSynchronize(cm->st));
        for (int i = 0, k = 0; i < nseq; i++)
            if (ntok[i]) memcpy(ss[i]->last_logits, cm->h_last + (size_t)k++ * V, (size_t)V * sizeof(float));
    }
    cm->forwards++;
out:
    rosa__pool_hot(m->pool, 0);
    if (rc) cudaStreamSynchronize(cm->st); /* leave nothing in flight on the shared buffers */
    return rc;
}
