/* rosa_cuda.h: the plain C interface of the CUDA kernels (kernels/k_*.cu) and the cuBLAS
 * matrix product (gemm.c).  Everything the CUDA backend (backend_cuda*.c) launches is here.
 *
 * Conventions: every launcher takes the stream it runs on, sizes its grid with a ceiling
 * division, checks its preconditions (returning cudaErrorInvalidValue) and returns the launch
 * error (cudaGetLastError) as an int: 0 = cudaSuccess.  Matrices are row-major.  Activations
 * that feed a matrix product are written in the "activation dtype" (RC_F32 or RC_BF16); the
 * residual stream, GEMM outputs and queries stay float32.  Each kernel has a plain-C reference
 * with the same meaning in kernels/ref_kernels.c, compared in tests/test_cuda_kernels.c. */
#ifndef ROSA_CUDA_H
#define ROSA_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { RC_F32 = 0, RC_BF16 = 1, RC_F16 = 2 }; /* element types; RC_F16 only as a source */

size_t rc_dtype_size(int dt);

/* Number of usable CUDA devices; 0 when the driver or device is absent (never fails). */
int rc_device_count(void);

/* dst[n] (dst_dt: RC_F32 or RC_BF16) = src[n] (any of the three), round to nearest even. */
int rc_convert(void *dst, int dst_dt, const void *src, int src_dt, size_t n, cudaStream_t st);

/* out[N, C] f32 = table[tokens[i]] (table [V, C], dt RC_F32 or RC_BF16).  Ids are checked on
 * the host before they get here; the kernel clamps anyway. */
int rc_embed(float *out, const void *table, int dt, const int32_t *tokens, int N, int C, int V,
             cudaStream_t st);

/* RMSNorm over rows, fused with the residual add:
 *   if add: x[r] += add[r] (written back);   out[i] = x[r] * rsqrt(mean(x[r]^2) + eps) * w
 * with r = rows ? rows[i] : i, for i < n.  out: [n, C] in out_dt.  add requires rows == NULL. */
int rc_rmsnorm(void *out, int out_dt, float *x, const float *add, const float *w,
               const int32_t *rows, int n, int C, float eps, cudaStream_t st);

/* pre_attn mix: out = RMSNorm((1 - alpha) * h + alpha * inj; w), rows [N, C]. */
int rc_mix_rmsnorm(void *out, int out_dt, const float *h, const float *inj, const float *alpha,
                   const float *w, int N, int C, float eps, cudaStream_t st);

/* Per-head RMSNorm (q_norm / k_norm over D) and rotary ("rotate half") at positions pos[N]:
 * q [N, Hq, D] f32 in place; k [N, Hkv, D] f32 -> kout (kv_dt); v [N, Hkv, D] f32 -> vout
 * (kv_dt, a plain conversion).  inv_freq [D/2] and rope_scale (cos and sin are multiplied by it:
 * yarn's attention factor, else 1) are the model's (rosa_model.inv_freq, .rope_scale). */
int rc_qk_norm_rope(float *q, const float *k, const float *v, void *kout, void *vout, int kv_dt,
                    const float *q_norm, const float *k_norm, const float *inv_freq, float rope_scale,
                    const int32_t *pos, int N, int Hq, int Hkv, int D, float eps, cudaStream_t st);

/* out[n] (out_dt) = silu(g[n]) * up[n] */
int rc_silu_gate(void *out, int out_dt, const float *g, const float *up, size_t n, cudaStream_t st);

/* ---- attention over the paged cache ---- */

typedef struct rc_seq {
    int32_t row0;   /* first row of the sequence in this call */
    int32_t ntok;   /* rows (tokens) of the sequence in this call */
    int32_t pos0;   /* position of its first row = tokens cached before this call */
    int32_t pad;
} rc_seq;

typedef struct rc_tile {
    int32_t seq;    /* index into seqs */
    int32_t row0;   /* first row of the tile (absolute row) */
    int32_t nrows;  /* rows in the tile; nrows * (Hq / Hkv) <= RC_ATTN_MAXQ */
    int32_t pad;
} rc_tile;

#define RC_ATTN_MAXQ 16     /* query vectors (rows x heads of one kv head) per block */
#define RC_ATTN_MAXD 256    /* largest head dimension */
#define RC_ATTN_KTILE 32    /* keys per shared-memory tile (one per lane) */

/* The cache of one layer: pages of P token slots, page p holding keys at
 * kpool + p * P * Hkv * D elements ([P, Hkv, D]), values likewise.  A windowed layer (W > 0)
 * keeps token j in slot j % W, a global layer in slot j; slot s lives in page
 * tables[seq][s / P] at offset s % P. */
typedef struct rc_kv_layer {
    void *kpool, *vpool;
    const int32_t *const *tables; /* device [nseq] -> device page ids of this layer */
    int P, W, dt;
} rc_kv_layer;

typedef struct rc_attn_args {
    const float *q;            /* [N, Hq, D] f32, after norm + rope */
    const void *k, *v;         /* [N, Hkv, D] kv dtype: this call's keys/values */
    void *out;                 /* [N, Hq, D] out_dt */
    int out_dt;
    rc_kv_layer kv;
    const rc_seq *seqs;        /* device [nseq] */
    const rc_tile *tiles;      /* device [ntiles] */
    int ntiles, nsplit;        /* nsplit: key-range splits per tile (flash-decoding), >= 1 */
    int max_tile_rows;         /* largest tiles[i].nrows */
    float *part;               /* scratch [nsplit, N, Hq, D + 2] f32 */
    int N, Hq, Hkv, D;
    float scale;               /* 1 / sqrt(D) */
    int comb_row0, comb_rows;  /* rows the combine merges; comb_rows 0: all N */
} rc_attn_args;

/* Causal (+ window) attention of every row of the call: keys of positions before a sequence's
 * pos0 come from the cache, its own rows' keys from k/v; never a T x T matrix.  Launches the
 * tiled split-K kernel and the combine kernel. */
int rc_attention(const rc_attn_args *a, cudaStream_t st);

/* The same for calls whose tiles are all single rows (decode steps), streaming the cache with
 * 16-byte loads (k_attn_decode.cu); one pass without the combine when nsplit == 1.  Returns
 * cudaErrorNotSupported (launching nothing) for shapes it does not cover:
 * rc_attention_decode_supported says beforehand. */
int rc_attention_decode(const rc_attn_args *a, cudaStream_t st);
int rc_attention_decode_supported(const rc_attn_args *a);
/* The split combine alone: out from part (both kernels' partials). */
int rc_attention_combine(const rc_attn_args *a, cudaStream_t st);

/* Write the rows' keys/values into the cache: all rows for a global layer, the last W rows of
 * each sequence for a windowed one (earlier ones would be overwritten within the call). */
int rc_kv_store(const rc_kv_layer *kv, const void *k, const void *v, const rc_seq *seqs, int nseq,
                int max_ntok, int Hkv, int D, cudaStream_t st);

/* ---- ROSA ---- */

/* Sign-and-pack: sym[0][N][R], sym[1][N][R], sym[2][N][R] = symbols of rq, rk, rv ([N, C] f32,
 * C = R * M): bit m of route r is (x[r*M + m] > 0). */
int rc_rosa_pack(uint8_t *sym, const float *rq, const float *rk, const float *rv, int N, int R,
                 int M, cudaStream_t st);

/* y[N, C] (out_dt) from retrieved value symbols vsym [N, R] (-1: none): e0/e1 selection. */
int rc_rosa_inject(void *y, int out_dt, const int16_t *vsym, const float *e0, const float *e1,
                   int N, int R, int M, cudaStream_t st);

/* ---- sampling ---- */

typedef struct rc_sample_params {
    float temperature;         /* <= 0: greedy */
    int top_k;                 /* 0: off */
    float top_p;               /* >= 1: off */
    float min_p;               /* 0: off */
    float presence, frequency; /* penalties on generated tokens (gen_count) */
    float repetition;          /* 1: off; on tokens with seen[i] != 0 */
    double u;                  /* uniform [0, 1) drawn by the host's per-sequence RNG */
    const uint16_t *gen_count; /* device [V] or NULL */
    const uint8_t *seen;       /* device [V] or NULL */
    const int32_t *bias_ids;   /* device [n_bias] or NULL */
    const float *bias_vals;
    int n_bias;
    int pad;
} rc_sample_params;

/* tokens[n] = the choice for each logits row ([n, V] f32) under params[n] (device array),
 * work: device scratch [n, V] f32.  Semantics of rosa_sampler_sample (rosa_sampler.h) except
 * that top-k keeps ties of the k-th value and the draw walks candidates in id order; the CPU
 * reference is rc_ref_sample. */
int rc_sample(int32_t *tokens, const float *logits, const rc_sample_params *params, float *work,
              int n, int V, cudaStream_t st);

/* ---- matrix product (gemm.c, cuBLAS) ---- */

/* y[N, rows] (f32) = x[N, cols] W^T + beta * y, with x and W both in dt (RC_F32: plain fp32
 * arithmetic, no TF32; RC_BF16: bf16 inputs, fp32 accumulation).  handle: a cublasHandle_t
 * already bound to the stream. */
int rc_gemm(void *handle, float *y, const void *x, const void *W, int dt, int N, int rows,
            int cols, float beta);

/* ---- CPU references (ref_kernels.c): same meaning, float32 (bf16 inputs as uint16) ---- */
float rc_ref_bf16_to_f32(uint16_t h);
uint16_t rc_ref_f32_to_bf16(float f);
void rc_ref_rmsnorm(float *out, float *x, const float *add, const float *w, const int32_t *rows,
                    int n, int C, float eps);
void rc_ref_mix_rmsnorm(float *out, const float *h, const float *inj, const float *alpha,
                        const float *w, int N, int C, float eps);
void rc_ref_qk_norm_rope(float *q, float *k, const float *q_norm, const float *k_norm,
                         const float *inv_freq, float rope_scale, const int32_t *pos, int N, int Hq,
                         int Hkv, int D, float eps);
void rc_ref_silu_gate(float *out, const float *g, const float *up, size_t n);
/* attention of rows against full key/value histories: keys[s] / vals[s] are [pos0+ntok, Hkv, D]
 * (every position of sequence s so far); out [N, Hq, D] */
void rc_ref_attention(float *out, const float *q, const float *const *keys,
                      const float *const *vals, const rc_seq *seqs, int nseq, int W, int N, int Hq,
                      int Hkv, int D);
void rc_ref_rosa_pack(uint8_t *sym, const float *rq, const float *rk, const float *rv, int N,
                      int R, int M);
void rc_ref_rosa_inject(float *y, const int16_t *vsym, const float *e0, const float *e1, int N,
                        int R, int M);
int32_t rc_ref_sample(const float *logits, const rc_sample_params *p, const uint16_t *gen_count,
                      const uint8_t *seen, const int32_t *bias_ids, const float *bias_vals,
                      float *work, int V);

#ifdef __cplusplus
}
#endif
#endif
