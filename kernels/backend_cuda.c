/* backend_cuda.c: the CUDA backend's lifetimes: weights uploaded once (stored dtype converted
 * on the device to the compute dtype: bf16, or f32 for the test precision), the KV page pool
 * sized once from --gpu-memory, per-session page tables, and the activation scratch.  The
 * forward pass is in backend_cuda_forward.c.  Plain C over the CUDA runtime and cuBLAS C APIs;
 * the kernels are reached through rosa_cuda.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend_cuda.h"
#include "core/errors.h"

#define STAGE_BYTES ((size_t)64 << 20)       /* upload staging for dtype conversion */

int rosa__cu_check(int e, const char *what) {
    if (!e) return 0;
    fprintf(stderr, "rosa cuda: %s: %s\n", what, cudaGetErrorString((cudaError_t)e));
    return ROSA_ERR_BACKEND;
}

#define CK(call) do { if ((rc = rosa__cu_check((int)(call), #call))) goto out; } while (0)

static size_t align_up(size_t n) { return rosa__cu_align(n); }

/* ---------- weights ---------- */

typedef struct arena_cursor {
    char *base;
    size_t used, cap;
    void *stage;            /* device staging buffer, STAGE_BYTES */
    cudaStream_t st;
    int act;
} arena_cursor;

static void *arena_take(arena_cursor *a, size_t bytes) {
    if (a->used + align_up(bytes) > a->cap) return NULL;
    void *p = a->base + a->used;
    a->used += align_up(bytes);
    return p;
}

static int stored_dt(rosa_dtype dt) { return dt == ROSA_DT_BF16 ? RC_BF16 : dt == ROSA_DT_F16 ? RC_F16 : RC_F32; }

/* Upload a matrix in its stored dtype, converting to the compute dtype on the device in
 * chunks of rows (the staging buffer bounds the extra memory).  Every copy and conversion is
 * queued on the backend's stream: it is created non-blocking, so a cudaMemcpy on the legacy
 * default stream would not be ordered with the conversions that read the staging buffer.  The
 * stream orders the staging buffer's reuse too; upload_weights waits once at the end. */
static int upload_mat(arena_cursor *a, const rosa__mat *w, const void **out) {
    int sdt = stored_dt(w->dt), rc = 0;
    size_t es = rc_dtype_size(sdt), ea = rc_dtype_size(a->act), row_bytes = (size_t)w->cols * es;
    char *dst = arena_take(a, (size_t)w->rows * w->cols * ea);
    if (!dst) return rosa__cu_check((int)cudaErrorMemoryAllocation, "weight arena");
    if (sdt == a->act) {
        CK(cudaMemcpyAsync(dst, w->w, (size_t)w->rows * row_bytes, cudaMemcpyHostToDevice, a->st));
    } else {
        size_t rows_per = STAGE_BYTES / row_bytes;
        if (rows_per < 1) return rosa__cu_check((int)cudaErrorInvalidValue, "matrix row larger than the staging buffer");
        for (size_t r0 = 0; r0 < (size_t)w->rows; r0 += rows_per) {
            size_t nr = (size_t)w->rows - r0 < rows_per ? (size_t)w->rows - r0 : rows_per;
            CK(cudaMemcpyAsync(a->stage, (const char *)w->w + r0 * row_bytes, nr * row_bytes, cudaMemcpyHostToDevice, a->st));
            CK(rc_convert(dst + r0 * w->cols * ea, a->act, a->stage, sdt, nr * w->cols, a->st));
        }
    }
    *out = dst;
out:
    return rc;
}

static int upload_vec(arena_cursor *a, const float *v, int n, float **out) {
    int rc = 0;
    if (!v) { *out = NULL; return 0; }
    float *dst = arena_take(a, (size_t)n * sizeof(float));
    if (!dst) return rosa__cu_check((int)cudaErrorMemoryAllocation, "weight arena");
    CK(cudaMemcpyAsync(dst, v, (size_t)n * sizeof(float), cudaMemcpyHostToDevice, a->st));
    *out = dst;
out:
    return rc;
}

static int upload_weights(rosa_model *m, cu_model *cm) {
    int rc = 0;
    arena_cursor a = {.st = cm->st, .act = cm->act};
    cm->arena_bytes = rosa__cu_weights_bytes(m, rc_dtype_size(cm->act));
    CK(cudaMalloc((void **)&cm->arena, cm->arena_bytes));
    CK(cudaMalloc(&a.stage, STAGE_BYTES));
    a.base = cm->arena;
    a.cap = cm->arena_bytes;
    for (int l = 0; l < m->L && !rc; l++) {
        const rosa__layer *ly = &m->layer[l];
        cu_layer *d = &cm->ly[l];
        /* ROSA q/k/v first, then q/k/v: adjacent, so a single row's six products are one GEMM */
        if (ly->rosa >= 0 && ((rc = upload_mat(&a, &ly->rq, &d->rq)) || (rc = upload_mat(&a, &ly->rk, &d->rk)) ||
                              (rc = upload_mat(&a, &ly->rv, &d->rv))))
            break;
        if ((rc = upload_mat(&a, &ly->q, &d->q)) || (rc = upload_mat(&a, &ly->k, &d->k)) ||
            (rc = upload_mat(&a, &ly->v, &d->v)) || (rc = upload_mat(&a, &ly->o, &d->o)) ||
            (rc = upload_mat(&a, &ly->gate, &d->gate)) || (rc = upload_mat(&a, &ly->up, &d->up)) ||
            (rc = upload_mat(&a, &ly->down, &d->down)))
            break;
        if ((rc = upload_vec(&a, ly->in_norm, m->C, &d->in_norm)) || (rc = upload_vec(&a, ly->post_norm, m->C, &d->post_norm)) ||
            (rc = upload_vec(&a, ly->q_norm, m->D, &d->q_norm)) || (rc = upload_vec(&a, ly->k_norm, m->D, &d->k_norm)))
            break;
        if (ly->rosa >= 0) {
            if ((rc = upload_mat(&a, &ly->rout, &d->rout)) ||
                (rc = upload_vec(&a, ly->e0, m->C, &d->e0)) || (rc = upload_vec(&a, ly->e1, m->C, &d->e1)) ||
                (rc = upload_vec(&a, m->inject_mode == ROSA_INJECT_PRE_ATTN ? ly->alpha : NULL, m->C, &d->alpha)))
                break;
        }
        size_t ea = rc_dtype_size(cm->act), C = m->C, QD = (size_t)m->Hq * m->D, KD = (size_t)m->Hkv * m->D;
        d->fuse_qkv = (const char *)d->k == (const char *)d->q + QD * C * ea &&
                      (const char *)d->v == (const char *)d->k + KD * C * ea;
        d->fuse_rosa = ly->rosa >= 0 && (const char *)d->rk == (const char *)d->rq + C * C * ea &&
                       (const char *)d->rv == (const char *)d->rk + C * C * ea;
        d->fuse6 = d->fuse_rosa && d->fuse_qkv && (const char *)d->q == (const char *)d->rv + C * C * ea;
        d->fuse_gu = (const char *)d->up == (const char *)d->gate + (size_t)m->F * C * ea;
    }
    if (rc) goto out;
    if ((rc = upload_mat(&a, &m->embed, &cm->embed))) goto out;
    if (m->lm_head.w == m->embed.w) cm->lm_head = cm->embed;
    else if ((rc = upload_mat(&a, &m->lm_head, &cm->lm_head))) goto out;
    if ((rc = upload_vec(&a, m->final_norm, m->C, &cm->final_norm))) goto out;
    if ((rc = upload_vec(&a, m->inv_freq, m->D / 2, &cm->inv_freq))) goto out;
    CK(cudaStreamSynchronize(cm->st)); /* before the staging buffer is freed */
out:
    if (rc) cudaStreamSynchronize(cm->st);
    if (a.stage) cudaFree(a.stage);
    return rc;
}

/* ---------- scratch ---------- */

static void free_rows(cu_model *cm) {
    void *d[] = {cm->row1, cm->x, cm->rq, cm->rk, cm->rv, cm->q, cm->k, cm->v, cm->g, cm->up, cm->inj, cm->logits, cm->part,
                 cm->u, cm->kn, cm->vn, cm->att, cm->y, cm->h2, cm->gu, cm->d_sym, cm->d_vout, cm->d_meta};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) if (d[i]) cudaFree(d[i]);
    void *h[] = {cm->h_meta, cm->h_sym, cm->h_vout, cm->h_last};
    for (size_t i = 0; i < sizeof h / sizeof *h; i++) if (h[i]) cudaFreeHost(h[i]);
    free(cm->h_dest);
    cm->row1 = cm->x = cm->rq = cm->rk = cm->rv = cm->q = cm->k = cm->v = cm->g = cm->up = cm->inj = cm->logits = cm->part = NULL;
    cm->u = cm->kn = cm->vn = cm->att = cm->y = cm->h2 = cm->gu = NULL;
    cm->d_sym = NULL; cm->d_vout = NULL; cm->d_meta = cm->h_meta = NULL;
    cm->h_sym = NULL; cm->h_vout = NULL; cm->h_last = NULL; cm->h_dest = NULL;
    cm->m_sym = NULL; cm->m_vout = NULL;
    cm->rows_cap = cm->nseq_cap = 0;
}

/* Per-call metadata block: tokens, positions, last rows [rows]; seqs, tiles [rows + nseq];
 * table pointers [L, nseq].  Same layout on host (pinned) and device: one copy per call. */
size_t rosa__cu_meta_bytes(int rows, int nseq, int L) {
    return align_up((size_t)rows * 4) * 3 + align_up((size_t)nseq * sizeof(rc_seq)) +
           align_up((size_t)(rows + nseq) * sizeof(rc_tile)) + align_up((size_t)L * nseq * sizeof(void *));
}

int rosa__cu_ensure_rows(rosa_model *m, int N, int nseq) {
    cu_model *cm = m->bctx;
    if (N <= cm->rows_cap && nseq <= cm->nseq_cap) return 0;
    int rows = N > cm->rows_cap ? N : cm->rows_cap, ns = nseq > cm->nseq_cap ? nseq : cm->nseq_cap;
    if (rows < 16) rows = 16;
    if (ns < 8) ns = 8;
    if (ns > rows) rows = ns;
    free_rows(cm);
    int rc = 0;
    size_t C = m->C, QD = (size_t)m->Hq * m->D, KD = (size_t)m->Hkv * m->D, F = m->F, V = m->V, R = m->R ? m->R : 1;
    size_t ea = rc_dtype_size(cm->act), n = rows;
    cm->part_rows = rows * 8 > CU_PART_ROWS_MIN ? rows * 8 : CU_PART_ROWS_MIN;
    struct { void **p; size_t bytes; } d[] = {
        {(void **)&cm->x, n * C * 4}, {(void **)&cm->rq, n * C * 4}, {(void **)&cm->rk, n * C * 4},
        {(void **)&cm->rv, n * C * 4}, {(void **)&cm->q, n * QD * 4}, {(void **)&cm->k, n * KD * 4},
        {(void **)&cm->v, n * KD * 4}, {(void **)&cm->g, n * F * 4}, {(void **)&cm->up, n * F * 4},
        {(void **)&cm->inj, n * C * 4}, {(void **)&cm->logits, n * V * 4},
        {(void **)&cm->part, (size_t)cm->part_rows * m->Hq * (m->D + 2) * 4},
        {&cm->u, n * C * ea}, {&cm->kn, n * KD * ea}, {&cm->vn, n * KD * ea}, {&cm->att, n * QD * ea},
        {&cm->y, n * C * ea}, {&cm->h2, n * C * ea}, {&cm->gu, n * F * ea},
        {(void **)&cm->d_sym, 3 * n * R}, {(void **)&cm->d_vout, n * R * 2},
        {(void **)&cm->row1, (3 * C + QD + 2 * KD + 2 * F) * 4},
    };
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) CK(cudaMalloc(d[i].p, d[i].bytes));
    cm->meta_bytes = rosa__cu_meta_bytes(rows, ns, m->L);
    CK(cudaMalloc((void **)&cm->d_meta, cm->meta_bytes));
    CK(cudaHostAlloc((void **)&cm->h_meta, cm->meta_bytes, cudaHostAllocDefault));
    /* mapped: the pack kernel writes the symbols straight into host memory and the injection
     * reads the retrieved ones from there, two copies fewer per ROSA layer */
    CK(cudaHostAlloc((void **)&cm->h_sym, 3 * n * R, cudaHostAllocMapped));
    CK(cudaHostAlloc((void **)&cm->h_vout, n * R * 2, cudaHostAllocMapped));
    if (cudaHostGetDevicePointer((void **)&cm->m_sym, cm->h_sym, 0) ||
        cudaHostGetDevicePointer((void **)&cm->m_vout, cm->h_vout, 0)) {
        cudaGetLastError();
        cm->m_sym = NULL;
        cm->m_vout = NULL;
    }
    CK(cudaHostAlloc((void **)&cm->h_last, (size_t)ns * V * 4, cudaHostAllocDefault));
    cm->h_dest = malloc(n * R * sizeof(int32_t));
    if (!cm->h_dest) rc = ROSA_ERR_NOMEM;
out:
    if (rc) free_rows(cm);
    else { cm->rows_cap = rows; cm->nseq_cap = ns; }
    return rc;
}

/* ---------- model ---------- */

static void cu_model_free(rosa_model *m);

static int cu_model_init(rosa_model *m, char *err, size_t errlen) {
    if (rc_device_count() < 1)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "device 'cuda': no CUDA device is available");
    if (m->D > RC_ATTN_MAXD || m->D % 2 || m->Hq % m->Hkv || m->Hq / m->Hkv > RC_ATTN_MAXQ)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                         "device 'cuda' supports head_dim <= %d (even) and at most %d query heads per kv head", RC_ATTN_MAXD, RC_ATTN_MAXQ);
    cu_model *cm = calloc(1, sizeof *cm);
    if (!cm) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "out of memory");
    m->bctx = cm;
    cm->act = m->precision == ROSA_PREC_BF16 ? RC_BF16 : RC_F32;
    /* bring-up switch (docs/CUDA.md): the decode attention kernel has not run on a GPU yet */
    const char *attn = getenv("ROSA_CUDA_ATTN");
    cm->attn_generic = attn && !strcmp(attn, "generic");
    const char *halves = getenv("ROSA_CUDA_HALVES");
    cm->no_halves = halves && !strcmp(halves, "0");
    cm->ly = calloc((size_t)m->L, sizeof *cm->ly);
    if (!cm->ly) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "out of memory");
    int rc = 0;
    CK(cudaSetDevice(cm->dev));
    CK(cudaDeviceGetAttribute(&cm->sms, cudaDevAttrMultiProcessorCount, cm->dev));
    CK(cudaStreamCreateWithFlags(&cm->st, cudaStreamNonBlocking));
    CK(cudaEventCreateWithFlags(&cm->ev_sym[0], cudaEventDisableTiming));
    CK(cudaEventCreateWithFlags(&cm->ev_sym[1], cudaEventDisableTiming));
    CK(cudaEventCreateWithFlags(&cm->ev_out[0], cudaEventDisableTiming));
    CK(cudaEventCreateWithFlags(&cm->ev_out[1], cudaEventDisableTiming));
    if (cublasCreate(&cm->blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(cm->blas, cm->st) != CUBLAS_STATUS_SUCCESS) {
        cm->blas = NULL;
        rc = ROSA_ERR_BACKEND;
        goto out;
    }
    size_t free_b = 0, total_b = 0;
    CK(cudaMemGetInfo(&free_b, &total_b));
    size_t budget = m->gpu_memory ? m->gpu_memory : free_b / 10 * 9;
    if (budget > free_b) {
        rc = rosa__err(err, errlen, ROSA_ERR_LIMIT, "--gpu-memory %zu MiB exceeds the %zu MiB free on the device",
                       budget >> 20, free_b >> 20);
        goto out;
    }
    if ((rc = upload_weights(m, cm))) goto out;
    /* the pool gets what the weights and the scratch reserve leave (cu_budget.c) */
    rosa__cu_plan plan;
    if (rosa__cu_plan_pool(m, rc_dtype_size(cm->act), budget, &plan)) {
        rc = rosa__err(err, errlen, ROSA_ERR_LIMIT, "device memory budget %zu MiB leaves %zu KV pages, one session needs %zu",
                       budget >> 20, plan.npages, plan.min_pages);
        goto out;
    }
    cm->page_bytes = plan.page_bytes;
    size_t npages = plan.npages;
    if ((rc = rosa__kvpool_init(&cm->pool, (int32_t)npages))) goto out;
    CK(cudaMalloc(&cm->kpool, npages * cm->page_bytes));
    CK(cudaMalloc(&cm->vpool, npages * cm->page_bytes));
    cm->max_tokens = m->cfg.max_pos > (1 << 17) ? m->cfg.max_pos : (1 << 17);
    rc = rosa__cu_ensure_rows(m, 64, 8);
out:
    if (rc && err && !err[0]) rosa__err(err, errlen, rc, "device 'cuda': initialisation failed (%s)", rosa_strerror(rc));
    return rc;
}

static void cu_model_free(rosa_model *m) {
    cu_model *cm = m->bctx;
    if (!cm) return;
    cudaSetDevice(cm->dev);
    if (cm->st) cudaStreamSynchronize(cm->st);
    free_rows(cm);
    rosa__cu_sample_free(cm);
    if (cm->kpool) cudaFree(cm->kpool);
    if (cm->vpool) cudaFree(cm->vpool);
    rosa__kvpool_free(&cm->pool);
    if (cm->arena) cudaFree(cm->arena);
    if (cm->blas) cublasDestroy(cm->blas);
    for (int i = 0; i < 2; i++) if (cm->ev_sym[i]) cudaEventDestroy(cm->ev_sym[i]);
    for (int i = 0; i < 2; i++) if (cm->ev_out[i]) cudaEventDestroy(cm->ev_out[i]);
    if (cm->st) cudaStreamDestroy(cm->st);
    free(cm->ly);
    free(cm);
    m->bctx = NULL;
}

/* ---------- sessions ---------- */

static int cu_session_init(struct rosa_session *s) {
    rosa_model *m = s->m;
    cu_model *cm = m->bctx;
    cu_session *cs = calloc(1, sizeof *cs);
    if (!cs) return ROSA_ERR_NOMEM;
    s->bstate = cs;
    int rc = rosa__kvtable_init(&cs->tab, m->L, CU_PAGE_TOKENS, m->layer_window, cm->max_tokens);
    if (rc) return rc;
    CK(cudaSetDevice(cm->dev));
    CK(cudaMalloc((void **)&cs->d_ids, (size_t)cs->tab.total * sizeof(int32_t)));
    /* on the backend's stream, like every later update of the table (not the legacy stream) */
    CK(cudaMemcpyAsync(cs->d_ids, cs->tab.ids, (size_t)cs->tab.total * sizeof(int32_t), cudaMemcpyHostToDevice, cm->st));
    CK(cudaStreamSynchronize(cm->st));
out:
    return rc;
}

static void cu_session_free(struct rosa_session *s) {
    cu_session *cs = s->bstate;
    if (!cs) return;
    cu_model *cm = s->m->bctx;
    /* pages may still be read by queued work of this session: forward always ends synchronised */
    rosa__kvtable_free(&cs->tab, &cm->pool);
    if (cs->d_ids) cudaFree(cs->d_ids);
    free(cs);
    s->bstate = NULL;
}

static size_t cu_session_kv_bytes(const struct rosa_session *s) {
    const cu_session *cs = s->bstate;
    const cu_model *cm = s->m->bctx;
    return (size_t)rosa__kvtable_pages(&cs->tab) * 2 * cm->page_bytes;
}

static void cu_stats(const rosa_model *m, char *buf, size_t len) {
    const cu_model *cm = m->bctx;
    snprintf(buf, len,
             "precision=%s weights_mib=%.1f kv_pages=%d kv_pages_free=%d page_tokens=%d forwards=%lld rosa_layer_calls=%lld "
             "rosa_cpu_s=%.6f rosa_wait_s=%.6f",
             cm->act == RC_BF16 ? "bf16" : "f32", cm->arena_bytes / 1048576.0, cm->pool.npages, cm->pool.nfree,
             CU_PAGE_TOKENS, (long long)cm->forwards, (long long)cm->rosa_layer_calls, cm->rosa_cpu_s, cm->rosa_wait_s);
}

/* Device-to-device copy of 1 GiB, best of 5, counting bytes read + written: the bandwidth a
 * weight-streaming decode step can at best reach. */
static double cu_copy_bandwidth(rosa_model *m) {
    cu_model *cm = m->bctx;
    size_t bytes = (size_t)1 << 30;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double best = 0;
    if (cudaMalloc(&a, bytes) || cudaMalloc(&b, bytes) || cudaEventCreate(&e0) || cudaEventCreate(&e1)) goto out;
    cudaMemsetAsync(a, 1, bytes, cm->st);
    for (int rep = 0; rep < 6; rep++) {
        float ms = 0;
        cudaEventRecord(e0, cm->st);
        cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, cm->st);
        cudaEventRecord(e1, cm->st);
        if (cudaEventSynchronize(e1) || cudaEventElapsedTime(&ms, e0, e1)) break;
        if (rep > 0 && ms > 0 && 2.0 * bytes / (ms * 1e-3) > best) best = 2.0 * bytes / (ms * 1e-3);
    }
out:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (a) cudaFree(a);
    if (b) cudaFree(b);
    cudaGetLastError();
    return best;
}

static const rosa__backend cuda_backend = {
    .name = "cuda",
    .model_init = cu_model_init,
    .model_free = cu_model_free,
    .session_init = cu_session_init,
    .session_free = cu_session_free,
    .session_kv_bytes = cu_session_kv_bytes,
    .forward = rosa__cu_forward,
    .stats = cu_stats,
    .copy_bandwidth = cu_copy_bandwidth,
    .step_sample = rosa__cu_step_sample,
};

const rosa__backend *rosa__cuda_backend_get(void) { return &cuda_backend; }

int rosa__cuda_device_count(void) { return rc_device_count(); }
