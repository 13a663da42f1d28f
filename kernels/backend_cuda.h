/* backend_cuda.h: state shared by the two halves of the CUDA backend (backend_cuda.c: model,
 * weights, pool, sessions; backend_cuda_forward.c: the forward pass).  Internal. */
#ifndef ROSA_BACKEND_CUDA_H
#define ROSA_BACKEND_CUDA_H

#include <cublas_v2.h>

#include "kv_pool.h"
#include "core/model.h"
#include "cu_budget.h"
#include "rosa_cuda.h"

#define CU_SPLIT_KEYS 64           /* flash-decoding: at least this many keys per split */
#define CU_SPLIT_KEYS_DECODE 256   /* the same for the streaming decode kernel (k_attn_decode.cu) */
#define CU_PART_ROWS_MIN 4096      /* split partials: rows x splits held by the scratch */

typedef struct cu_layer {
    const void *q, *k, *v, *o, *gate, *up, *down;   /* act dtype, [out, in] */
    const void *rq, *rk, *rv, *rout;                /* [C, C] or NULL */
    float *in_norm, *post_norm, *q_norm, *k_norm;   /* [C], [C], [D], [D] */
    float *e0, *e1, *alpha;                         /* [C] or NULL */
    /* adjacent in the arena, so one GEMM computes several products for a single row:
     * [q;k;v], [rq;rk;rv], [rq;rk;rv;q;k;v] (post_attn), [gate;up] */
    int fuse_qkv, fuse_rosa, fuse6, fuse_gu;
} cu_layer;

typedef struct cu_session {
    rosa__kvtable tab;   /* host page table */
    int32_t *d_ids;      /* device copy of tab.ids */
} cu_session;

typedef struct cu_model {
    int dev, act;                 /* device; RC_F32 / RC_BF16 for weights, GEMM inputs, KV */
    int sms;                      /* multiprocessors (split-K sizing) */
    int attn_generic;             /* ROSA_CUDA_ATTN=generic: decode steps on the tiled kernel too */
    int no_halves;                /* ROSA_CUDA_HALVES=0: the ROSA pipeline in one piece */
    cudaStream_t st;
    cublasHandle_t blas;
    char *arena;                  /* all weights + small vectors, one allocation */
    size_t arena_bytes;
    cu_layer *ly;                 /* [L] */
    const void *embed, *lm_head;  /* [V, C] (lm_head == embed when tied) */
    float *final_norm, *inv_freq;
    /* KV pool */
    rosa__kvpool pool;
    void *kpool, *vpool;          /* [npages, P, Hkv, D] each */
    size_t page_bytes;            /* of one of K / V */
    int64_t max_tokens;           /* per-session capacity of a global layer */
    /* activation scratch, for rows_cap rows and nseq_cap sequences */
    int rows_cap, nseq_cap, part_rows;
    float *x, *rq, *rk, *rv, *q, *k, *v, *g, *up, *inj, *logits, *part;
    float *row1;                  /* one row of [rq|rk|rv|q|k|v|g|up]: the fused single-row products */
    void *u, *kn, *vn, *att, *y, *h2, *gu;
    uint8_t *d_sym;               /* [3, rows, R] */
    int16_t *d_vout;              /* [rows, R] */
    char *d_meta, *h_meta;        /* per-call metadata, device + pinned host */
    size_t meta_bytes;
    uint8_t *h_sym;               /* pinned, mapped [3, rows, R] */
    int16_t *h_vout;              /* pinned, mapped [rows, R] */
    uint8_t *m_sym;               /* device addresses of h_sym / h_vout (zero-copy), or NULL: */
    int16_t *m_vout;              /* then d_sym / d_vout and a copy each way */
    int32_t *h_dest;              /* [rows, R] dest scratch while tracing */
    float *h_last;                /* pinned [nseq_cap, V] */
    /* device sampling (backend_cuda_sample.c), for up to sample_cap rows, allocated on first use */
    int sample_cap;
    rc_sample_params *h_sp, *d_sp;  /* pinned / device [sample_cap] */
    int32_t *h_next, *d_next;       /* pinned / device [sample_cap] */
    float *d_swork;                 /* [sample_cap, V] */
    int *ones;                      /* [sample_cap] ntok of a decode step: all 1 */
    /* pipeline counters (ROSA layers) */
    cudaEvent_t ev_sym[2];        /* symbols of the pipeline's two halves are on the host */
    cudaEvent_t ev_out[2];        /* the two halves of h_last while logits rows stream out */
    double rosa_cpu_s, rosa_wait_s;  /* host time in automata steps / waiting for symbols */
    int64_t rosa_layer_calls, forwards;
} cu_model;

size_t rosa__cu_meta_bytes(int rows, int nseq, int L);
int rosa__cu_check(int e, const char *what);   /* 0, or ROSA_ERR_BACKEND with a message */
int rosa__cu_ensure_rows(rosa_model *m, int N, int nseq);
int rosa__cu_forward(rosa_model *m, struct rosa_session *const *ss, int nseq, const int *ntok,
                     const int32_t *tokens, float *logits);
/* keep (with logits NULL): the last rows' logits stay in cm->logits [sessions with rows, V],
 * queued on cm->st, not copied or waited for */
int rosa__cu_forward_ex(rosa_model *m, struct rosa_session *const *ss, int nseq, const int *ntok,
                        const int32_t *tokens, float *logits, int keep);
/* backend_cuda_sample.c: rosa__backend.step_sample */
int rosa__cu_step_sample(rosa_model *m, struct rosa_session *const *ss, int n, const int32_t *tokens,
                         struct rosa_sampler *const *smp, int32_t *next, float *logprobs);
void rosa__cu_sample_free(cu_model *cm);
#endif
