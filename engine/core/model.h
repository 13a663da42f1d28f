/* model.h: the in-memory model (weights bound to layers), sessions, and the backend seam.
 *
 * Weights stay in their stored dtype inside the checkpoint mappings (rosa__mat points there);
 * only the small per-channel vectors (norm weights, e0/e1/alpha) get float32 copies.
 * A backend (CPU today, CUDA next) implements rosa__backend; ROSA automata always live on the
 * CPU in the session (rosa_layer.c), whatever the backend. */
#ifndef ROSA_MODEL_H
#define ROSA_MODEL_H

#include <stdint.h>

#include "rosa.h"
#include "rosa/rosa_sam.h"
#include "model/rope.h"
#include "rosa/rosa_routes.h"
#include "model/tensors.h"
#include "cpu/threadpool.h"

typedef struct rosa__mat {
    rosa_dtype dt;
    const void *w;  /* [rows, cols] row-major, stored dtype */
    int rows, cols; /* rows = out features, cols = in features */
} rosa__mat;

typedef struct rosa__layer {
    float *in_norm, *post_norm; /* [C] */
    float *q_norm, *k_norm;     /* [D] */
    rosa__mat q, k, v, o;       /* [Hq*D, C], [Hkv*D, C], [Hkv*D, C], [C, Hq*D] */
    rosa__mat gate, up, down;   /* [F, C], [F, C], [C, F] */
    int window;                 /* 0: global attention, else W */
    int rosa;                   /* index among ROSA layers, or -1 */
    rosa__mat rq, rk, rv, rout; /* [C, C] */
    float *e0, *e1, *alpha;     /* [C]; alpha is sigmoid(rosa_alpha) (pre_attn only) */
} rosa__layer;

typedef struct rosa__config {
    int vocab, hidden, layers, heads, kv_heads, head_dim, ffn, max_pos;
    float eps;
    rosa__rope rope;            /* rope_theta, rope_parameters / rope_scaling (model/rope.c) */
    int tied;
    int bos, eos;
    int sliding_window;         /* config.json's sliding_window, 0 when absent or null */
    int *layer_window;          /* [layers] from config.json, 0 = global */
} rosa__config;

struct rosa_session;
struct rosa_sampler;

typedef struct rosa__backend {
    const char *name;
    int (*model_init)(rosa_model *m, char *err, size_t errlen);
    void (*model_free)(rosa_model *m);
    int (*session_init)(struct rosa_session *s);
    void (*session_free)(struct rosa_session *s);
    size_t (*session_kv_bytes)(const struct rosa_session *s);
    /* Run nseq sessions over ntok[i] tokens each (tokens concatenated in order).
     * logits: NULL, or [sum ntok, V] for every position.  The last position's logits of each
     * session are always written to its last_logits. */
    int (*forward)(rosa_model *m, struct rosa_session *const *ss, int nseq, const int *ntok,
                   const int32_t *tokens, float *logits);
    /* optional (NULL): one line of backend counters (timings, pool use) for benchmarks */
    void (*stats)(const rosa_model *m, char *buf, size_t len);
    /* optional (NULL): measured device-to-device copy bandwidth in bytes/s, for rooflines */
    double (*copy_bandwidth)(rosa_model *m);
    /* optional (NULL): one step of n sessions (one token each) whose next tokens smp[i] chooses
     * without the logits leaving the backend (rosa_step_batch_sample).  ROSA_ERR_UNSUPPORTED,
     * before anything changes, when it cannot for these samplers or logprobs: the caller then
     * steps with forward and samples on the host. */
    int (*step_sample)(rosa_model *m, struct rosa_session *const *ss, int n, const int32_t *tokens,
                       struct rosa_sampler *const *smp, int32_t *next, float *logprobs);
    /* optional (NULL: rosa_session_fork / _save / _restore answer ROSA_ERR_UNSUPPORTED): layer
     * l's attention cache in host memory, K and V each [slots, Hkv, D] elements of *es bytes
     * (4: float32; 2: bf16, the CPU backend's --precision bf16), position p in
     * slot p % S for a windowed layer (its ring of S = W + H slots: the window W and the
     * rollback horizon H, rosa__kv_slots) and slot p for a global one; the first
     * rosa__kv_filled(pos) slots are allocated, and of them the last min(pos, W) (windowed) or
     * pos (global) positions are valid (rosa__kv_valid: a fork or restore brings only those).
     * reserve > 0 first makes room for that many slots (as a feed would).  0 or ROSA_ERR_NOMEM. */
    int (*session_kv_host)(struct rosa_session *s, int layer, int64_t reserve, void **k, void **v,
                           size_t *es);
    /* optional (NULL: rosa_session_truncate answers ROSA_ERR_UNSUPPORTED and the model's
     * horizon is 0): the session goes back to its first n tokens, s->pos - H <= n < s->pos
     * (rosa_session_truncate checks the horizon first; s->pos is still the old length).  The
     * caches then hold positions < n unchanged; later feeds overwrite the rest.  0, or an error
     * before anything changes. */
    int (*session_truncate)(struct rosa_session *s, int64_t n);
    /* optional (NULL: 0): bytes of the session's attention caches beyond what attention needs,
     * kept for the rollback horizon (the H extra slots of every windowed ring) */
    size_t (*session_rollback_bytes)(const struct rosa_session *s);
} rosa__backend;

extern const rosa__backend rosa__cpu_backend;
/* The CUDA backend (kernels/backend_cuda*.c), or NULL in builds without CUDA. */
const rosa__backend *rosa__cuda_backend_get(void);
int rosa__cuda_device_count(void); /* 0 in builds without CUDA */

enum { ROSA_PREC_F32 = 0, ROSA_PREC_BF16 = 1 };

struct rosa_model {
    rosa_model_info info;
    rosa__config cfg;
    int C, L, Hq, Hkv, D, F, V;
    int M, R;                   /* bits per route, routes (R = 0 without ROSA) */
    int inject_mode;
    int n_rosa;
    int *layer_window;          /* [L] effective */
    int *layer_rosa_flag;       /* [L] */
    rosa__mat embed;            /* [V, C] */
    rosa__mat lm_head;          /* [V, C] (the embedding when tied) */
    float *final_norm;          /* [C] */
    float *inv_freq;            /* [D/2] rotary inverse frequencies (model/rope.c), both backends */
    float rope_scale;           /* scale of cos and sin (yarn's attention factor, else 1) */
    rosa__layer *layer;         /* [L] */
    rosa__tensor_set base, adapter;
    char weight_dtype[8];
    const rosa__backend *backend;
    void *bctx;                 /* backend model state */
    rosa__pool *pool;
    int max_chunk;              /* tokens per forward call inside feed */
    int precision;              /* ROSA_PREC_*: what the backend computes in */
    int emulate_cuda_bf16;      /* tests only: the CPU backend rounds where the CUDA bf16 path
                                   stores bf16 (backend_cpu.c, tests/test_bf16_emulation.c) */
    size_t gpu_memory;          /* rosa_load_opts.gpu_memory */
    int rollback;               /* rollback horizon H in tokens (0 when the backend cannot) */
};

struct rosa_session {
    rosa_model *m;
    int64_t pos;                /* tokens fed so far */
    float *last_logits;         /* [V] */
    int has_logits;
    void *bstate;               /* backend state (attention caches) */
    rosa__routes routes;        /* [n_rosa * R] automata, layer-major (rosa_routes.h) */
    int32_t *trace;             /* dest trace [n_rosa, R, trace_T] or NULL */
    int64_t trace_T;
    int broken;                 /* a failed forward left the state inconsistent */
    int64_t rb_floor;           /* the oldest length rosa_session_truncate may go back to, as
                                   of the last truncate: the fork / restore point, or the
                                   largest length reached minus H (session_truncate.c) */
};

/* Ring slots of layer l: W + H for a windowed layer (window W, rollback horizon H), 0 for a
 * global one (it grows; position p in slot p). */
static inline int64_t rosa__kv_slots(const rosa_model *m, int l) {
    int W = m->layer_window[l];
    return W ? (int64_t)W + m->rollback : 0;
}

/* Allocated attention-cache slots of layer l after pos tokens (see session_kv_host). */
static inline int64_t rosa__kv_filled(const rosa_model *m, int l, int64_t pos) {
    int64_t S = rosa__kv_slots(m, l);
    return S && pos > S ? S : pos;
}

/* Positions of layer l that attention can still read after pos tokens: the last min(pos, W)
 * (windowed) or all pos (global).  What fork copies and a session file holds. */
static inline int64_t rosa__kv_valid(const rosa_model *m, int l, int64_t pos) {
    int W = m->layer_window[l];
    return W && pos > W ? W : pos;
}

/* rosa_layer.c: ROSA symbols, the per-route automata step, and the injection vector. */
void rosa__symbols(const float *x, int R, int M, uint8_t *sym);
/* Advance ROSA layer rl of nseq sessions over their ntok[i] rows each (rows concatenated in
 * session order; qs/ks/vs/vout are [rows, R]), all in one parallel region.  dest: [rows, R]
 * int32 scratch, used for the sessions that trace destinations. */
int rosa__rosa_step(rosa_model *m, struct rosa_session *const *ss, int nseq, const int *ntok, int rl,
                    const uint8_t *qs, const uint8_t *ks, const uint8_t *vs, int16_t *vout, int32_t *dest);
void rosa__inject_y(const rosa__layer *ly, const int16_t *vout, int R, int M, float *y);

/* config.c */
int rosa__config_load(const char *model_dir, rosa__config *c, char *err, size_t errlen);
void rosa__config_free(rosa__config *c);
#endif
