/* engine/cpu/: the CPU backend: the forward pass (this file), its SIMD kernels picked at run
 * time (cpu_kernels*.c) and the thread pool (threadpool.c).
 *
 * backend_cpu.c: the plain-C CPU backend: the whole ROSA-augmented Qwen3 forward pass in
 * float32 over weights kept in their stored dtype (ROSA-SPEC sections 1-3).
 *
 * One forward call processes a batch of rows: the concatenated token chunks of one or more
 * sessions.  Matrix products run over all rows at once (each weight row is read once per call),
 * attention runs per (session, kv head), ROSA per (session, route group).  Windowed layers keep
 * a ring of W + H key/value slots per session (position p in slot p % (W + H); attention reads
 * the last W positions, the H older ones are kept for rosa_session_truncate); global layers a
 * growing cache.  With --precision bf16 the caches hold K and V as bf16 (half the bytes; the
 * attention kernels widen them as they read, sums in float32).
 *
 * CUDA bf16 emulation: when m->emulate_cuda_bf16 is set (never through the public API; tests
 * set it on a loaded f32 model), values are rounded to bf16 exactly
 * where the CUDA backend's bf16 path stores them (weights, GEMM inputs, the KV cache: see
 * docs/CUDA.md, "Precision"), so the agreement a bf16 device can reach with f32 is predicted
 * here without a GPU (tests/test_bf16_emulation.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_kernels.h"
#include "cpu/gemm_cpu.h"
#include "core/errors.h"
#include "core/model.h"

typedef struct cpu_kv {
    void *k, *v;    /* [cap, Hkv, D] float32, or bf16 in bf16 mode (cpu_model.kv_es) */
    int64_t cap;    /* slots allocated */
} cpu_kv;

typedef struct cpu_session {
    cpu_kv *kv;     /* [L] */
} cpu_session;

typedef struct cpu_model {
    const rosa__kernels *kern;
    int nthreads;
    float *rowbuf;  /* [nthreads, maxcols] converted weight rows */
    float *packbuf; /* [nthreads, ROSA_GEMM_PACK_FLOATS] GEMM panels */
    float *attbuf;  /* [nthreads, ATT_SPAN x group x (2 D + 2)] attention spans' queries and sums */
    int bf16;       /* --precision bf16: matrix-product inputs rounded to bf16, K/V cached as bf16 */
    size_t kv_es;   /* bytes per cached K/V element: 2 (bf16 mode) or 4 */
    int amx;        /* bf16 mode on a CPU with AMX: bf16 weights multiply on tiles */
    float *xr;      /* bf16 mode: [rows_cap, maxcols] the rounded input, as float32 */
    uint16_t *x16;  /* amx: [rows_cap rounded up to 32, ldx_cap] the rounded input, as bf16 */
    int ldx_cap;    /* maxcols rounded up to 32 */
    char *amxbuf;   /* amx: [nthreads, ROSA_AMX_SCRATCH_BYTES(ldx_cap)] panels */
    uint16_t *xv16; /* bf16 mode with kern->gemv_bf16_x16: [maxcols] one rounded input row */
    int maxcols;
    /* activations, [rows_cap, ...] */
    int rows_cap;
    float *x, *u, *u2, *q, *k, *v, *att, *tmp, *h2, *g, *up, *rq, *rk, *rv, *y, *inj;
    float *rope_cs;   /* [rows_cap, D] each row's rotary cos (first D/2) and sin (last D/2) */
    int64_t *rowpos;  /* [rows_cap] each row's position in its session */
    uint8_t *qs, *ks, *vs;
    int16_t *vout;
    int32_t *dest;
} cpu_model;

/* ---------- matrix products: y_i[T, rows_i] = x[T, cols] W_i^T ---------- */

/* Several products sharing one input run as one parallel region (q/k/v, gate/up, ROSA q/k/v):
 * fewer thread wake-ups per layer, and the threads stay busy across matrices. */
#define MM_MAX 3

typedef struct {
    const cpu_model *cm;
    int nmat;
    const rosa__mat *W[MM_MAX];
    float *y[MM_MAX];
    int first_task[MM_MAX + 1]; /* task range of each matrix */
    int rows_per_task[MM_MAX];
    const float *x;
    const uint16_t *x16; /* the same rows as bf16 for AMX (rosa__gemm_amx layout), or NULL */
    const uint16_t *xv16; /* T == 1, bf16 mode: the row as bf16 for kern->gemv_bf16_x16, or NULL */
    int ldx16;
    int T;
    int emulate;                /* round weights to bf16 (emulation of the CUDA bf16 path) */
} mm_ctx;

/* round to the nearest bf16, ties to even (as the CUDA backend's conversions) */
static float bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    memcpy(&f, &u, 4);
    return f;
}

static void round_bf16(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = bf16_round(x[i]);
}

static void mm_task(void *vctx, int task, int thread) {
    mm_ctx *c = vctx;
    int i = 0;
    while (task >= c->first_task[i + 1]) i++;
    const rosa__kernels *kr = c->cm->kern;
    const rosa__mat *W = c->W[i];
    float *y = c->y[i];
    int r0 = (task - c->first_task[i]) * c->rows_per_task[i], r1 = r0 + c->rows_per_task[i];
    if (r1 > W->rows) r1 = W->rows;
    if (c->x16 && W->dt == ROSA_DT_BF16) {
        rosa__gemm_amx(W->w, W->rows, W->cols, c->x16, c->ldx16, c->T, y, r0, r1,
                       c->cm->amxbuf + (size_t)thread * ROSA_AMX_SCRATCH_BYTES(c->cm->ldx_cap));
        return;
    }
    if (c->T >= ROSA_GEMM_MIN_ROWS && !(c->emulate && W->dt != ROSA_DT_BF16)) {
        rosa__gemm(kr, W->dt, W->w, W->rows, W->cols, c->x, c->T, y, r0, r1,
                   c->cm->packbuf + (size_t)thread * ROSA_GEMM_PACK_FLOATS);
        return;
    }
    if (c->T == 1 && W->dt == ROSA_DT_BF16) {
        /* decode: the rows r0..r1 in one call, several rows per pass */
        const uint16_t *w0 = (const uint16_t *)W->w + (size_t)r0 * W->cols;
        if (c->xv16) kr->gemv_bf16_x16(w0, (size_t)W->cols, r1 - r0, W->cols, c->xv16, y + r0);
        else kr->gemv_bf16(w0, (size_t)W->cols, r1 - r0, W->cols, c->x, y + r0);
        return;
    }
    if (W->dt == ROSA_DT_BF16 && !c->emulate) {
        /* a few rows (batched decode, short chunks): each row of x through the kernel a single
         * row takes, so a sequence's logits do not depend on what it is batched with; weights
         * in blocks of 16 rows that stay in cache while every row of x passes over them */
        for (int b0 = r0; b0 < r1; b0 += 16) {
            int nb = r1 - b0 < 16 ? r1 - b0 : 16;
            const uint16_t *wb = (const uint16_t *)W->w + (size_t)b0 * W->cols;
            for (int t = 0; t < c->T; t++)
                kr->gemv_bf16(wb, (size_t)W->cols, nb, W->cols, c->x + (size_t)t * W->cols,
                              y + (size_t)t * W->rows + b0);
        }
        return;
    }
    size_t es = rosa__dtype_size(W->dt);
    float *buf = c->cm->rowbuf + (size_t)thread * c->cm->maxcols;
    for (int r = r0; r < r1; r++) {
        const void *wr = (const char *)W->w + (size_t)r * W->cols * es;
        if (c->emulate && W->dt != ROSA_DT_BF16) {
            /* emulation: the device holds every matrix in bf16 */
            if (W->dt == ROSA_DT_F16) kr->f16_to_f32(wr, buf, W->cols);
            else memcpy(buf, wr, (size_t)W->cols * sizeof(float));
            round_bf16(buf, (size_t)W->cols);
            for (int t = 0; t < c->T; t++)
                y[(size_t)t * W->rows + r] = kr->dot_f32(buf, c->x + (size_t)t * W->cols, W->cols);
            continue;
        }
        if (c->T == 1) {
            float s;
            if (W->dt == ROSA_DT_BF16) s = kr->dot_bf16(wr, c->x, W->cols);
            else if (W->dt == ROSA_DT_F16) s = kr->dot_f16(wr, c->x, W->cols);
            else s = kr->dot_f32(wr, c->x, W->cols);
            y[r] = s;
            continue;
        }
        if (W->dt == ROSA_DT_F16) { /* the single-row kernel for every row: batch invariant */
            for (int t = 0; t < c->T; t++)
                y[(size_t)t * W->rows + r] = kr->dot_f16(wr, c->x + (size_t)t * W->cols, W->cols);
            continue;
        }
        const float *wf = wr;
        if (W->dt == ROSA_DT_BF16) { kr->bf16_to_f32(wr, buf, W->cols); wf = buf; }
        for (int t = 0; t < c->T; t++)
            y[(size_t)t * W->rows + r] = kr->dot_f32(wf, c->x + (size_t)t * W->cols, W->cols);
    }
}

static void matmul_prec(rosa_model *m, int nmat, float *const *y, const rosa__mat *const *W, const float *x, int T, int bf16) {
    cpu_model *cm = m->bctx;
    mm_ctx c = {.cm = cm, .nmat = nmat, .x = x, .T = T, .emulate = m->emulate_cuda_bf16};
    if (bf16) {
        /* every product's input rounded to bf16 once: as float32 for the vector paths, and for
         * AMX also as bf16 rows padded to whole tiles, so every path sees the same values */
        int K = W[0]->cols, ld = (K + 31) & ~31;
        int amx = cm->amx && T >= ROSA_GEMM_MIN_ROWS, vec16 = T == 1 && cm->xv16;
        for (int t = 0; t < T; t++) {
            uint16_t *h = amx ? cm->x16 + (size_t)t * ld : vec16 ? cm->xv16 : NULL, tmp[64];
            float *xr = cm->xr + (size_t)t * K;
            for (int k0 = 0; k0 < K; k0 += 64) {
                int n = K - k0 < 64 ? K - k0 : 64;
                uint16_t *o = h ? h + k0 : tmp;
                cm->kern->round_bf16(x + (size_t)t * K + k0, o, n);
                for (int k = 0; k < n; k++) {
                    uint32_t u = (uint32_t)o[k] << 16;
                    memcpy(&xr[k0 + k], &u, 4);
                }
            }
            if (amx) memset(h + K, 0, (size_t)(ld - K) * sizeof *h);
        }
        c.x = cm->xr;
        if (vec16) c.xv16 = cm->xv16;
        if (amx) {
            int Tp = (T + 31) & ~31;
            memset(cm->x16 + (size_t)T * ld, 0, (size_t)(Tp - T) * ld * sizeof *cm->x16);
            c.x16 = cm->x16;
            c.ldx16 = ld;
        }
    }
    int tasks = 0;
    for (int i = 0; i < nmat; i++) {
        c.W[i] = W[i];
        c.y[i] = y[i];
        int want = cm->nthreads * 8;
        int rpt = (W[i]->rows + want - 1) / want;
        if (rpt < 16) rpt = 16;
        if (T >= ROSA_GEMM_MIN_ROWS) /* whole panels per task */
            rpt = (rpt + cm->kern->gemm_nr - 1) / cm->kern->gemm_nr * cm->kern->gemm_nr;
        c.rows_per_task[i] = rpt;
        c.first_task[i] = tasks;
        tasks += (W[i]->rows + rpt - 1) / rpt;
    }
    c.first_task[nmat] = tasks;
    rosa__pool_run(m->pool, tasks, mm_task, &c);
}

static void matmul_n(rosa_model *m, int nmat, float *const *y, const rosa__mat *const *W, const float *x, int T) {
    matmul_prec(m, nmat, y, W, x, T, ((cpu_model *)m->bctx)->bf16);
}

static void matmul(rosa_model *m, float *y, const float *x, int T, const rosa__mat *W) {
    matmul_n(m, 1, &y, &W, x, T);
}

/* ---------- small row-wise operations ---------- */

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * inv * w[i];
}

/* rotate half: pair (j, j + D/2) by pos * inv_freq[j]; cos and sin scaled by `scale` (yarn's
 * attention factor, 1 otherwise), as transformers scales them.  rope_row computes a row's cos
 * and sin once per forward call (every layer and head of the row uses them); rope applies them. */
static void rope_row(float *cs, const float *inv_freq, float scale, int D, int64_t pos) {
    int h = D / 2;
    for (int j = 0; j < h; j++) {
        float ang = (float)pos * inv_freq[j];
        cs[j] = cosf(ang) * scale;
        cs[h + j] = sinf(ang) * scale;
    }
}

static void rope(float *v, const float *cs, int D) {
    int h = D / 2;
    for (int j = 0; j < h; j++) {
        float c = cs[j], s = cs[h + j];
        float a = v[j], b = v[j + h];
        v[j] = a * c - b * s;
        v[j + h] = b * c + a * s;
    }
}

/* ---------- attention ---------- */

typedef struct {
    rosa_model *m;
    struct rosa_session *const *ss;
    const int *ntok;
    const int *row0;    /* first row of each sequence */
    int layer, nseq;
} att_ctx;

/* Attention of one (session, kv head), in flash-attention order: the session's rows in spans of
 * up to ATT_SPAN consecutive positions; for each span its rows' keys and values enter the cache,
 * then each block of keys (the aligned positions [128 j, 128 (j + 1)), cut to the span's keys
 * and started at a multiple of 16) is read once from memory while every row of the span passes
 * over it, in tiles of rows whose query heads of this kv head (tile rows x heads <=
 * ROSA_ATT_GROUP) go through att_block_group together.  Each query masks the keys outside its
 * own window and causal end (att_block_group's lo/hi), so a row's arithmetic is the same in a
 * span and tile of any size (prefill in any chunking, decode alone or batched).  On a ring of
 * S = W + H slots a span holds at most H + 1 rows (its newest row must not overwrite a key its
 * oldest row still reads).  Per-thread scratch: the span's gathered queries and running sums. */
#define ATT_SPAN 64

static void att_task(void *vctx, int task, int thread) {
    att_ctx *c = vctx;
    rosa_model *m = c->m;
    cpu_model *cm = m->bctx;
    int si = task / m->Hkv, kh = task % m->Hkv;
    struct rosa_session *s = c->ss[si];
    cpu_kv *kv = &((cpu_session *)s->bstate)->kv[c->layer];
    int W = m->layer_window[c->layer];
    int64_t S = rosa__kv_slots(m, c->layer); /* ring slots, 0 for a global layer */
    int D = m->D, Hq = m->Hq, Hkv = m->Hkv, group = Hq / Hkv;
    float scale = 1.0f / sqrtf((float)D);
    const rosa__kernels *kr = cm->kern;
    size_t span_q = (size_t)ATT_SPAN * group;           /* queries of a span */
    float *qb = cm->attbuf + (size_t)thread * span_q * (2 * D + 2); /* [span_q, D] queries */
    float *acc = qb + span_q * D, *mx = acc + span_q * D, *sum = mx + span_q;
    int lo[ROSA_ATT_GROUP], hi[ROSA_ATT_GROUP];
    const void *kp[ROSA_ATT_BLOCK], *vp[ROSA_ATT_BLOCK];
    char *kc = kv->k, *vc = kv->v;
    size_t es = cm->kv_es, row_bytes = (size_t)D * es, slot_bytes = (size_t)Hkv * D * es;
    int gstep = group < ROSA_ATT_GROUP ? group : ROSA_ATT_GROUP; /* heads per call */
    int rt = ROSA_ATT_GROUP / gstep;                              /* rows per tile */
    int span = ATT_SPAN;
    if (S && S - W + 1 < span) span = (int)(S - W + 1);
    int n = c->ntok[si];
    for (int i0 = 0; i0 < n; i0 += span) {
        int ns = n - i0 < span ? n - i0 : span;
        for (int i = i0; i < i0 + ns; i++) { /* the span's keys and values into the cache */
            int row = c->row0[si] + i;
            int64_t pos = s->pos + i, slot = S ? pos % S : pos;
            size_t at = (size_t)slot * Hkv + kh, src = ((size_t)row * Hkv + kh) * D;
            if (es == sizeof(uint16_t)) { /* bf16 mode: the cache holds K and V rounded to bf16 */
                kr->round_bf16(cm->k + src, (uint16_t *)kc + at * D, D);
                kr->round_bf16(cm->v + src, (uint16_t *)vc + at * D, D);
            } else {
                memcpy(kc + at * row_bytes, cm->k + src, row_bytes);
                memcpy(vc + at * row_bytes, cm->v + src, row_bytes);
            }
        }
        /* queries (row i0 + t, head h) at t * group + h */
        for (int t = 0; t < ns; t++)
            memcpy(qb + (size_t)t * group * D, cm->q + ((size_t)(c->row0[si] + i0 + t) * Hq + (size_t)kh * group) * D,
                   (size_t)group * D * sizeof(float));
        for (int qi = 0; qi < ns * group; qi++) { mx[qi] = -INFINITY; sum[qi] = 0; }
        memset(acc, 0, (size_t)ns * group * D * sizeof *acc);
        int64_t p0 = s->pos + i0, p1 = p0 + ns - 1; /* the span's positions */
        int64_t first = W ? p0 - W + 1 : 0;         /* the oldest key any of its rows reads */
        if (first < 0) first = 0;
        for (int64_t B = first / ROSA_ATT_BLOCK * ROSA_ATT_BLOCK; B <= p1; B += ROSA_ATT_BLOCK) {
            int64_t j0 = B > (first & ~(int64_t)15) ? B : (first & ~(int64_t)15);
            int64_t j1 = B + ROSA_ATT_BLOCK - 1 < p1 ? B + ROSA_ATT_BLOCK - 1 : p1;
            int nb = (int)(j1 - j0 + 1);
            int64_t sl = S ? j0 % S : j0;
            for (int b = 0; b < nb; b++) {
                kp[b] = kc + (size_t)sl * slot_bytes + (size_t)kh * row_bytes;
                vp[b] = vc + (size_t)sl * slot_bytes + (size_t)kh * row_bytes;
                if (++sl == S) sl = 0;
            }
            for (int t0 = 0; t0 < ns; t0 += rt) {
                int nt = ns - t0 < rt ? ns - t0 : rt, live = 0, rl[ROSA_ATT_GROUP], rh[ROSA_ATT_GROUP];
                for (int t = 0; t < nt; t++) { /* each row's keys in this block */
                    int64_t p = p0 + t0 + t, f = W ? p - W + 1 : 0;
                    int64_t l = f - j0, h = p + 1 - j0;
                    if (l < 0) l = 0;
                    if (h > nb) h = nb;
                    if (h < l) h = l;
                    live |= h > l;
                    rl[t] = (int)l;
                    rh[t] = (int)h;
                }
                if (!live) continue;
                /* the tile's queries are contiguous: whole rows (group <= ROSA_ATT_GROUP), or
                 * gn heads of a one-row tile */
                for (int g0 = 0; g0 < group; g0 += gstep) {
                    int gn = group - g0 < gstep ? group - g0 : gstep;
                    for (int k = 0; k < nt * gn; k++) { lo[k] = rl[k / gn]; hi[k] = rh[k / gn]; }
                    size_t q0 = (size_t)t0 * group + g0;
                    if (es == sizeof(uint16_t))
                        kr->att_block_group_bf16(qb + q0 * D, nt * gn, (const uint16_t *const *)kp,
                                                 (const uint16_t *const *)vp, nb, D, scale, mx + q0, sum + q0,
                                                 acc + q0 * D, lo, hi);
                    else
                        kr->att_block_group(qb + q0 * D, nt * gn, (const float *const *)kp, (const float *const *)vp,
                                            nb, D, scale, mx + q0, sum + q0, acc + q0 * D, lo, hi);
                }
            }
        }
        for (int t = 0; t < ns; t++)
            for (int g = 0; g < group; g++) {
                size_t qi = (size_t)t * group + g;
                float *o = cm->att + ((size_t)(c->row0[si] + i0 + t) * Hq + (size_t)kh * group + g) * D;
                for (int d = 0; d < D; d++) o[d] = acc[qi * D + d] / sum[qi];
            }
    }
}

/* room for `need` slots; S: the ring's slots (0: a global layer, no bound) */
static int kv_reserve(rosa_model *m, cpu_kv *kv, int64_t S, int64_t need) {
    if (S && need > S) need = S;
    if (need <= kv->cap) return 0;
    int64_t nc = kv->cap ? kv->cap * 2 : 64;
    if (nc < need) nc = need;
    if (S && nc > S) nc = S;
    size_t bytes = (size_t)nc * m->Hkv * m->D * ((cpu_model *)m->bctx)->kv_es;
    void *k = realloc(kv->k, bytes);
    if (!k) return ROSA_ERR_NOMEM;
    kv->k = k;
    void *v = realloc(kv->v, bytes);
    if (!v) return ROSA_ERR_NOMEM;
    kv->v = v;
    kv->cap = nc;
    return 0;
}

/* ---------- scratch ---------- */

static int ensure_rows(rosa_model *m, int N) {
    cpu_model *cm = m->bctx;
    if (N <= cm->rows_cap) return 0;
    size_t C = m->C, QD = (size_t)m->Hq * m->D, KD = (size_t)m->Hkv * m->D, F = m->F, R = m->R ? m->R : 1;
    float **f32s[] = {&cm->x, &cm->u, &cm->u2, &cm->tmp, &cm->h2, &cm->rq, &cm->rk, &cm->rv, &cm->y, &cm->inj};
    for (size_t i = 0; i < sizeof f32s / sizeof *f32s; i++) {
        free(*f32s[i]);
        *f32s[i] = malloc((size_t)N * C * sizeof(float));
    }
    free(cm->q); cm->q = malloc((size_t)N * QD * sizeof(float));
    free(cm->rope_cs); cm->rope_cs = malloc((size_t)N * m->D * sizeof(float));
    free(cm->rowpos); cm->rowpos = malloc((size_t)N * sizeof *cm->rowpos);
    free(cm->att); cm->att = malloc((size_t)N * QD * sizeof(float));
    free(cm->k); cm->k = malloc((size_t)N * KD * sizeof(float));
    free(cm->v); cm->v = malloc((size_t)N * KD * sizeof(float));
    free(cm->g); cm->g = malloc((size_t)N * F * sizeof(float));
    free(cm->up); cm->up = malloc((size_t)N * F * sizeof(float));
    free(cm->qs); cm->qs = malloc((size_t)N * R);
    free(cm->ks); cm->ks = malloc((size_t)N * R);
    free(cm->vs); cm->vs = malloc((size_t)N * R);
    free(cm->vout); cm->vout = malloc((size_t)N * R * sizeof(int16_t));
    free(cm->dest); cm->dest = malloc((size_t)N * R * sizeof(int32_t));
    if (cm->bf16) {
        free(cm->xr); cm->xr = malloc((size_t)N * cm->maxcols * sizeof(float));
        if (!cm->xr) return ROSA_ERR_NOMEM;
        if (cm->amx) {
            free(cm->x16);
            cm->x16 = malloc((size_t)((N + 31) & ~31) * cm->ldx_cap * sizeof(uint16_t));
            if (!cm->x16) return ROSA_ERR_NOMEM;
        }
    }
    int ok = cm->q && cm->rope_cs && cm->rowpos && cm->att && cm->k && cm->v && cm->g && cm->up && cm->qs && cm->ks && cm->vs && cm->vout && cm->dest;
    for (size_t i = 0; i < sizeof f32s / sizeof *f32s; i++) ok = ok && *f32s[i];
    cm->rows_cap = ok ? N : 0;
    return ok ? 0 : ROSA_ERR_NOMEM;
}

static void free_rows(cpu_model *cm) {
    float *f[] = {cm->x, cm->u, cm->u2, cm->q, cm->k, cm->v, cm->att, cm->tmp, cm->h2, cm->g, cm->up, cm->rq, cm->rk, cm->rv, cm->y, cm->inj};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) free(f[i]);
    free(cm->qs); free(cm->ks); free(cm->vs); free(cm->vout); free(cm->dest);
    free(cm->xr); free(cm->x16); free(cm->rope_cs); free(cm->rowpos);
}

/* ---------- the backend interface ---------- */

static int cpu_model_init(rosa_model *m, char *err, size_t errlen) {
    cpu_model *cm = calloc(1, sizeof *cm);
    if (!cm) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "out of memory");
    m->bctx = cm;
    cm->kern = rosa__kernels_get();
    cm->bf16 = m->precision == ROSA_PREC_BF16;
    cm->kv_es = cm->bf16 ? sizeof(uint16_t) : sizeof(float);
    cm->amx = cm->bf16 && cm->kern->gemm_nr == 32 && !getenv("ROSA_NO_AMX") && rosa__amx_available();
    cm->nthreads = rosa__pool_size(m->pool);
    cm->maxcols = m->C > m->F ? m->C : m->F;
    if (m->Hq * m->D > cm->maxcols) cm->maxcols = m->Hq * m->D;
    cm->rowbuf = malloc((size_t)cm->nthreads * cm->maxcols * sizeof(float));
    cm->packbuf = malloc((size_t)cm->nthreads * ROSA_GEMM_PACK_FLOATS * sizeof(float));
    cm->attbuf = malloc((size_t)cm->nthreads * ATT_SPAN * (m->Hq / m->Hkv) * (2 * (size_t)m->D + 2) * sizeof(float));
    if (!cm->rowbuf || !cm->packbuf || !cm->attbuf) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "out of memory");
    cm->ldx_cap = (cm->maxcols + 31) & ~31;
    if (cm->bf16 && cm->kern->gemv_bf16_x16) {
        cm->xv16 = malloc((size_t)cm->maxcols * sizeof *cm->xv16);
        if (!cm->xv16) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "out of memory");
    }
    if (cm->amx) {
        cm->amxbuf = malloc((size_t)cm->nthreads * ROSA_AMX_SCRATCH_BYTES(cm->ldx_cap));
        if (!cm->amxbuf) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "out of memory");
    }
    if (m->D > 1024) return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "head_dim %d exceeds the CPU backend's 1024", m->D);
    return 0;
}

static void cpu_model_free(rosa_model *m) {
    cpu_model *cm = m->bctx;
    if (!cm) return;
    free_rows(cm);
    free(cm->rowbuf);
    free(cm->packbuf);
    free(cm->attbuf);
    free(cm->amxbuf);
    free(cm->xv16);
    free(cm);
    m->bctx = NULL;
}

static int cpu_session_init(struct rosa_session *s) {
    cpu_session *cs = calloc(1, sizeof *cs);
    if (!cs) return ROSA_ERR_NOMEM;
    cs->kv = calloc((size_t)s->m->L, sizeof *cs->kv);
    if (!cs->kv) { free(cs); return ROSA_ERR_NOMEM; }
    s->bstate = cs;
    return 0;
}

static void cpu_session_free(struct rosa_session *s) {
    cpu_session *cs = s->bstate;
    if (!cs) return;
    for (int l = 0; l < s->m->L; l++) { free(cs->kv[l].k); free(cs->kv[l].v); }
    free(cs->kv);
    free(cs);
    s->bstate = NULL;
}

static size_t cpu_session_kv_bytes(const struct rosa_session *s) {
    const cpu_session *cs = s->bstate;
    size_t b = 0;
    size_t es = ((const cpu_model *)s->m->bctx)->kv_es;
    for (int l = 0; l < s->m->L; l++) b += 2 * (size_t)cs->kv[l].cap * s->m->Hkv * s->m->D * es;
    return b;
}

static int cpu_session_kv_host(struct rosa_session *s, int l, int64_t reserve, void **k, void **v, size_t *es) {
    cpu_kv *kv = &((cpu_session *)s->bstate)->kv[l];
    if (reserve > 0 && kv_reserve(s->m, kv, rosa__kv_slots(s->m, l), reserve)) return ROSA_ERR_NOMEM;
    *k = kv->k;
    *v = kv->v;
    *es = ((const cpu_model *)s->m->bctx)->kv_es;
    return 0;
}

/* Nothing to undo: positions < n stay where they are (the ring keeps H positions beyond the
 * window, and rosa_session_truncate has checked n against the horizon); the next feed writes
 * position n onwards over what the dropped tokens left.  A global cache keeps its capacity. */
static int cpu_session_truncate(struct rosa_session *s, int64_t n) {
    (void)s;
    (void)n;
    return 0;
}

/* the slots of windowed rings beyond their window W */
static size_t cpu_session_rollback_bytes(const struct rosa_session *s) {
    const cpu_session *cs = s->bstate;
    size_t b = 0;
    for (int l = 0; l < s->m->L; l++) {
        int W = s->m->layer_window[l];
        if (W && cs->kv[l].cap > W)
            b += 2 * (size_t)(cs->kv[l].cap - W) * s->m->Hkv * s->m->D * ((const cpu_model *)s->m->bctx)->kv_es;
    }
    return b;
}

static void embed_row(const rosa_model *m, int32_t tok, float *out) {
    const cpu_model *cm = m->bctx;
    size_t es = rosa__dtype_size(m->embed.dt);
    const void *row = (const char *)m->embed.w + (size_t)tok * m->C * es;
    if (m->embed.dt == ROSA_DT_BF16) cm->kern->bf16_to_f32(row, out, m->C);
    else if (m->embed.dt == ROSA_DT_F16) cm->kern->f16_to_f32(row, out, m->C);
    else memcpy(out, row, (size_t)m->C * sizeof(float));
}

static int forward_rows(rosa_model *m, struct rosa_session *const *ss, int nseq, const int *ntok,
                        const int *row0, int N, const int32_t *tokens, float *logits);

static int cpu_forward(rosa_model *m, struct rosa_session *const *ss, int nseq, const int *ntok,
                       const int32_t *tokens, float *logits) {
    int N = 0;
    int *row0 = malloc((size_t)(nseq > 0 ? nseq : 1) * sizeof *row0);
    if (!row0) return ROSA_ERR_NOMEM;
    for (int i = 0; i < nseq; i++) { row0[i] = N; N += ntok[i]; }
    int rc = N == 0 ? 0 : ensure_rows(m, N);
    if (N && !rc) rc = forward_rows(m, ss, nseq, ntok, row0, N, tokens, logits);
    free(row0);
    return rc;
}

/* ---------- row-wise stages, split over the pool ----------
 * The element-wise work between the matrix products (norms, rotary embedding, SiLU, residual
 * sums, the ROSA symbols and injections) runs per row, rows split over the pool's threads when
 * a call has enough of them; each row's arithmetic is the same whichever thread takes it. */
enum {
    ROW_EMBED,     /* x = embedding(token); each row's rotary cos/sin */
    ROW_IN_NORM,   /* [x += tmp (the previous layer's down projection)]; u = in_norm(x) */
    ROW_SYMBOLS,   /* ROSA route symbols of rq, rk, rv */
    ROW_INJECT,    /* ROSA: y = inject(vout) */
    ROW_MIX,       /* ROSA pre_attn: u2 = in_norm((1 - alpha) x + alpha inj) */
    ROW_QK,        /* q/k norms and rotary embedding; bf16: K and V rounded */
    ROW_ROUND_ATT, /* bf16 emulation: att rounded */
    ROW_POST_ATT,  /* x += tmp (o projection) [+ inj]; h2 = post_norm(x) */
    ROW_SILU,      /* g = silu(g) * up */
    ROW_FINAL,     /* x += tmp; u = final_norm(x) */
};

typedef struct {
    rosa_model *m;
    const rosa__layer *ly;
    int stage, add_tmp, rows_per_task, N;
    const int32_t *tokens;
    const int64_t *rowpos;
} rows_ctx;

static void rows_run(rows_ctx *c, int r0, int r1) {
    rosa_model *m = c->m;
    cpu_model *cm = m->bctx;
    const rosa__layer *ly = c->ly;
    size_t C = m->C, D = m->D, F = m->F;
    int Hq = m->Hq, Hkv = m->Hkv, R = m->R, M = m->M;
    float eps = m->cfg.eps;
    int bf = m->emulate_cuda_bf16;
    for (int r = r0; r < r1; r++) {
        float *x = cm->x + r * C;
        switch (c->stage) {
        case ROW_EMBED:
            embed_row(m, c->tokens[r], x);
            if (bf) round_bf16(x, C); /* the device's table is bf16 */
            rope_row(cm->rope_cs + r * D, m->inv_freq, m->rope_scale, (int)D, c->rowpos[r]);
            break;
        case ROW_IN_NORM:
        case ROW_FINAL:
            if (c->add_tmp) {
                const float *t = cm->tmp + r * C;
                for (size_t i = 0; i < C; i++) x[i] += t[i];
            }
            rmsnorm(cm->u + r * C, x, c->stage == ROW_FINAL ? m->final_norm : ly->in_norm, (int)C, eps);
            if (bf) round_bf16(cm->u + r * C, C);
            break;
        case ROW_SYMBOLS:
            rosa__symbols(cm->rq + r * C, R, M, cm->qs + (size_t)r * R);
            rosa__symbols(cm->rk + r * C, R, M, cm->ks + (size_t)r * R);
            rosa__symbols(cm->rv + r * C, R, M, cm->vs + (size_t)r * R);
            break;
        case ROW_INJECT:
            rosa__inject_y(ly, cm->vout + (size_t)r * R, R, M, cm->y + r * C);
            if (bf) round_bf16(cm->y + r * C, C);
            break;
        case ROW_MIX: {
            float *mix = cm->tmp + r * C;
            const float *inj = cm->inj + r * C;
            for (size_t i = 0; i < C; i++) mix[i] = (1.0f - ly->alpha[i]) * x[i] + ly->alpha[i] * inj[i];
            rmsnorm(cm->u2 + r * C, mix, ly->in_norm, (int)C, eps);
            if (bf) round_bf16(cm->u2 + r * C, C);
            break;
        }
        case ROW_QK: {
            const float *cs = cm->rope_cs + r * D;
            for (int h = 0; h < Hq; h++) {
                float *q = cm->q + ((size_t)r * Hq + h) * D;
                rmsnorm(q, q, ly->q_norm, (int)D, eps);
                rope(q, cs, (int)D);
            }
            for (int h = 0; h < Hkv; h++) {
                float *k = cm->k + ((size_t)r * Hkv + h) * D;
                rmsnorm(k, k, ly->k_norm, (int)D, eps);
                rope(k, cs, (int)D);
            }
            if (bf) { /* keys and values enter the cache in bf16 (queries stay f32) */
                round_bf16(cm->k + (size_t)r * Hkv * D, (size_t)Hkv * D);
                round_bf16(cm->v + (size_t)r * Hkv * D, (size_t)Hkv * D);
            }
            break;
        }
        case ROW_ROUND_ATT:
            round_bf16(cm->att + (size_t)r * Hq * D, (size_t)Hq * D);
            break;
        case ROW_POST_ATT: {
            const float *t = cm->tmp + r * C;
            for (size_t i = 0; i < C; i++) x[i] += t[i];
            if (ly->rosa >= 0 && m->inject_mode == ROSA_INJECT_POST_ATTN) {
                const float *inj = cm->inj + r * C;
                for (size_t i = 0; i < C; i++) x[i] += inj[i];
            }
            rmsnorm(cm->h2 + r * C, x, ly->post_norm, (int)C, eps);
            if (bf) round_bf16(cm->h2 + r * C, C);
            break;
        }
        case ROW_SILU: {
            float *g = cm->g + r * F;
            const float *up = cm->up + r * F;
            for (size_t i = 0; i < F; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * up[i];
            if (bf) round_bf16(g, F);
            break;
        }
        }
    }
}

static void rows_task(void *vctx, int task, int thread) {
    (void)thread;
    rows_ctx *c = vctx;
    int r0 = task * c->rows_per_task, r1 = r0 + c->rows_per_task;
    rows_run(c, r0, r1 < c->N ? r1 : c->N);
}

/* one stage over rows 0..N-1: inline for a few rows (a decode step), else split over the pool */
static void rows(rosa_model *m, rows_ctx *c, int stage, const rosa__layer *ly, int add_tmp) {
    cpu_model *cm = m->bctx;
    c->stage = stage;
    c->ly = ly;
    c->add_tmp = add_tmp;
    if (cm->nthreads < 2 || c->N < 8) {
        rows_run(c, 0, c->N);
        return;
    }
    int tasks = cm->nthreads * 4 < c->N ? cm->nthreads * 4 : c->N;
    c->rows_per_task = (c->N + tasks - 1) / tasks;
    rosa__pool_run(m->pool, (c->N + c->rows_per_task - 1) / c->rows_per_task, rows_task, c);
}

static int forward_rows(rosa_model *m, struct rosa_session *const *ss, int nseq, const int *ntok,
                        const int *row0, int N, const int32_t *tokens, float *logits) {
    cpu_model *cm = m->bctx;
    int C = m->C;
    int bf = m->emulate_cuda_bf16; /* bf16 emulation: round where the device stores bf16 */
    for (int l = 0; l < m->L; l++)
        for (int i = 0; i < nseq; i++) {
            cpu_kv *kv = &((cpu_session *)ss[i]->bstate)->kv[l];
            if (kv_reserve(m, kv, rosa__kv_slots(m, l), ss[i]->pos + ntok[i])) return ROSA_ERR_NOMEM;
        }
    for (int i = 0; i < nseq; i++)
        for (int t = 0; t < ntok[i]; t++) cm->rowpos[row0[i] + t] = ss[i]->pos + t;
    rows_ctx rc = {.m = m, .N = N, .tokens = tokens, .rowpos = cm->rowpos};
    rows(m, &rc, ROW_EMBED, NULL, 0);

    for (int l = 0; l < m->L; l++) {
        const rosa__layer *ly = &m->layer[l];
        rows(m, &rc, ROW_IN_NORM, ly, l > 0);
        const float *uatt = cm->u;
        if (ly->rosa >= 0) {
            float *ys[3] = {cm->rq, cm->rk, cm->rv};
            const rosa__mat *ws[3] = {&ly->rq, &ly->rk, &ly->rv};
            /* always float32: the route symbols are signs of these projections, and bf16 inputs
             * flip the ones near zero (a different retrieval, not a small error) */
            matmul_prec(m, 3, ys, ws, cm->u, N, 0);
            rows(m, &rc, ROW_SYMBOLS, ly, 0);
            int err = rosa__rosa_step(m, ss, nseq, ntok, ly->rosa, cm->qs, cm->ks, cm->vs, cm->vout, cm->dest);
            if (err) return err;
            rows(m, &rc, ROW_INJECT, ly, 0);
            matmul(m, cm->inj, cm->y, N, &ly->rout);
            if (m->inject_mode == ROSA_INJECT_PRE_ATTN) {
                rows(m, &rc, ROW_MIX, ly, 0);
                uatt = cm->u2;
            }
        }
        float *yqkv[3] = {cm->q, cm->k, cm->v};
        const rosa__mat *wqkv[3] = {&ly->q, &ly->k, &ly->v};
        matmul_n(m, 3, yqkv, wqkv, uatt, N);
        rows(m, &rc, ROW_QK, ly, 0);
        att_ctx ac = {.m = m, .ss = ss, .ntok = ntok, .row0 = row0, .layer = l, .nseq = nseq};
        rosa__pool_run(m->pool, nseq * m->Hkv, att_task, &ac);
        if (bf) rows(m, &rc, ROW_ROUND_ATT, ly, 0);
        matmul(m, cm->tmp, cm->att, N, &ly->o);
        rows(m, &rc, ROW_POST_ATT, ly, 0);
        float *ygu[2] = {cm->g, cm->up};
        const rosa__mat *wgu[2] = {&ly->gate, &ly->up};
        matmul_n(m, 2, ygu, wgu, cm->h2, N);
        rows(m, &rc, ROW_SILU, ly, 0);
        matmul(m, cm->tmp, cm->g, N, &ly->down);
    }
    rows(m, &rc, ROW_FINAL, NULL, m->L > 0);
    /* a session with no rows in this call (ntok 0) keeps its last logits: it has no last row */
    if (logits) {
        matmul(m, logits, cm->u, N, &m->lm_head);
        for (int i = 0; i < nseq; i++)
            if (ntok[i])
                memcpy(ss[i]->last_logits, logits + (size_t)(row0[i] + ntok[i] - 1) * m->V, (size_t)m->V * sizeof(float));
    } else if (nseq == 1) {
        matmul(m, ss[0]->last_logits, cm->u + (size_t)(N - 1) * C, 1, &m->lm_head);
    } else {
        /* one pass over lm_head for all sessions' last rows */
        float *last = malloc((size_t)nseq * C * sizeof(float));
        float *out = malloc((size_t)nseq * m->V * sizeof(float));
        if (!last || !out) { free(last); free(out); return ROSA_ERR_NOMEM; }
        int n = 0;
        for (int i = 0; i < nseq; i++)
            if (ntok[i]) memcpy(last + (size_t)n++ * C, cm->u + (size_t)(row0[i] + ntok[i] - 1) * C, (size_t)C * sizeof(float));
        matmul(m, out, last, n, &m->lm_head);
        for (int i = 0, k = 0; i < nseq; i++)
            if (ntok[i]) memcpy(ss[i]->last_logits, out + (size_t)k++ * m->V, (size_t)m->V * sizeof(float));
        free(last);
        free(out);
    }
    return 0;
}

const rosa__backend rosa__cpu_backend = {
    .name = "cpu",
    .model_init = cpu_model_init,
    .model_free = cpu_model_free,
    .session_init = cpu_session_init,
    .session_free = cpu_session_free,
    .session_kv_bytes = cpu_session_kv_bytes,
    .stats = NULL,
    .copy_bandwidth = NULL,
    .forward = cpu_forward,
    .session_kv_host = cpu_session_kv_host,
    .session_truncate = cpu_session_truncate,
    .session_rollback_bytes = cpu_session_rollback_bytes,
};
