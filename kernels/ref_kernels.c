/* ref_kernels.c: plain-C references of the CUDA kernels, with the same meaning and argument
 * order (llm.c style).  tests/test_cuda_kernels.c runs both on seeded random input. */
#include <math.h>
#include <string.h>

#include "rosa_cuda.h"

float rc_ref_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t rc_ref_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

void rc_ref_rmsnorm(float *out, float *x, const float *add, const float *w, const int32_t *rows, int n, int C,
                    float eps) {
    for (int i = 0; i < n; i++) {
        float *xr = x + (size_t)(rows ? rows[i] : i) * C;
        if (add)
            for (int c = 0; c < C; c++) xr[c] += add[(size_t)i * C + c];
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        float inv = 1.0f / sqrtf((float)(ss / C) + eps);
        for (int c = 0; c < C; c++) out[(size_t)i * C + c] = xr[c] * inv * w[c];
    }
}

void rc_ref_mix_rmsnorm(float *out, const float *h, const float *inj, const float *alpha, const float *w, int N,
                        int C, float eps) {
    for (int r = 0; r < N; r++) {
        double ss = 0;
        for (int c = 0; c < C; c++) {
            float v = (1.0f - alpha[c]) * h[(size_t)r * C + c] + alpha[c] * inj[(size_t)r * C + c];
            out[(size_t)r * C + c] = v;
            ss += (double)v * v;
        }
        float inv = 1.0f / sqrtf((float)(ss / C) + eps);
        for (int c = 0; c < C; c++) out[(size_t)r * C + c] = out[(size_t)r * C + c] * inv * w[c];
    }
}

static void norm_rope(float *x, const float *w, const float *inv_freq, float scale, int D, int32_t pos, float eps) {
    double ss = 0;
    for (int d = 0; d < D; d++) ss += (double)x[d] * x[d];
    float inv = 1.0f / sqrtf((float)(ss / D) + eps);
    for (int d = 0; d < D; d++) x[d] = x[d] * inv * w[d];
    int h = D / 2;
    for (int j = 0; j < h; j++) {
        float ang = (float)pos * inv_freq[j];
        float c = cosf(ang) * scale, s = sinf(ang) * scale, a = x[j], b = x[j + h];
        x[j] = a * c - b * s;
        x[j + h] = b * c + a * s;
    }
}

void rc_ref_qk_norm_rope(float *q, float *k, const float *q_norm, const float *k_norm, const float *inv_freq,
                         float rope_scale, const int32_t *pos, int N, int Hq, int Hkv, int D, float eps) {
    for (int r = 0; r < N; r++) {
        for (int h = 0; h < Hq; h++) norm_rope(q + ((size_t)r * Hq + h) * D, q_norm, inv_freq, rope_scale, D, pos[r], eps);
        for (int h = 0; h < Hkv; h++) norm_rope(k + ((size_t)r * Hkv + h) * D, k_norm, inv_freq, rope_scale, D, pos[r], eps);
    }
}

void rc_ref_silu_gate(float *out, const float *g, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * up[i];
}

void rc_ref_attention(float *out, const float *q, const float *const *keys, const float *const *vals,
                      const rc_seq *seqs, int nseq, int W, int N, int Hq, int Hkv, int D) {
    int g = Hq / Hkv;
    float scale = 1.0f / sqrtf((float)D);
    for (int s = 0; s < nseq; s++)
        for (int t = 0; t < seqs[s].ntok; t++) {
            int row = seqs[s].row0 + t, pos = seqs[s].pos0 + t;
            int lo = W ? pos - W + 1 : 0;
            if (lo < 0) lo = 0;
            for (int h = 0; h < Hq; h++) {
                const float *qv = q + ((size_t)row * Hq + h) * D;
                float *o = out + ((size_t)row * Hq + h) * D;
                double mx = -INFINITY, sum = 0;
                for (int j = lo; j <= pos; j++) {
                    const float *kj = keys[s] + ((size_t)j * Hkv + h / g) * D;
                    double sc = 0;
                    for (int d = 0; d < D; d++) sc += (double)qv[d] * kj[d];
                    if (sc * scale > mx) mx = sc * scale;
                }
                for (int d = 0; d < D; d++) o[d] = 0;
                double acc[RC_ATTN_MAXD] = {0};
                for (int j = lo; j <= pos; j++) {
                    const float *kj = keys[s] + ((size_t)j * Hkv + h / g) * D;
                    const float *vj = vals[s] + ((size_t)j * Hkv + h / g) * D;
                    double sc = 0;
                    for (int d = 0; d < D; d++) sc += (double)qv[d] * kj[d];
                    double p = exp(sc * scale - mx);
                    sum += p;
                    for (int d = 0; d < D; d++) acc[d] += p * vj[d];
                }
                for (int d = 0; d < D; d++) o[d] = (float)(acc[d] / sum);
            }
        }
    (void)N;
}

void rc_ref_rosa_pack(uint8_t *sym, const float *rq, const float *rk, const float *rv, int N, int R, int M) {
    const float *src[3] = {rq, rk, rv};
    size_t total = (size_t)N * R;
    for (int w = 0; w < 3; w++)
        for (size_t i = 0; i < total; i++) {
            unsigned s = 0;
            for (int b = 0; b < M; b++) s |= (unsigned)(src[w][i * M + b] > 0.0f) << b;
            sym[(size_t)w * total + i] = (uint8_t)s;
        }
}

void rc_ref_rosa_inject(float *y, const int16_t *vsym, const float *e0, const float *e1, int N, int R, int M) {
    int C = R * M;
    for (int r = 0; r < N; r++)
        for (int c = 0; c < C; c++) {
            int v = vsym[(size_t)r * R + c / M];
            y[(size_t)r * C + c] = v < 0 ? 0.0f : e0[c] + (e1[c] - e0[c]) * (float)((v >> (c % M)) & 1);
        }
}

/* ---- sampling ---- */

static uint32_t fkey(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static int is_cand(float x) { return isfinite(x) || x > 0.0f; }

int32_t rc_ref_sample(const float *logits, const rc_sample_params *p, const uint16_t *gen_count, const uint8_t *seen,
                      const int32_t *bias_ids, const float *bias_vals, float *w, int V) {
    memcpy(w, logits, sizeof(float) * (size_t)V);
    for (int b = 0; b < p->n_bias; b++) w[bias_ids[b]] += bias_vals[b];
    int greedy = 0;
    for (int i = 0; i < V; i++) {
        float x = w[i];
        if (seen && seen[i]) x = x > 0 ? x / p->repetition : x * p->repetition;
        if (gen_count && gen_count[i]) x -= p->presence + p->frequency * (float)gen_count[i];
        w[i] = x;
        if (x > w[greedy]) greedy = i;
    }
    if (!(p->temperature > 0.0f)) return greedy;
    double ncand = 0;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (is_cand(w[i])) { ncand += 1; mx = fmaxf(mx, w[i]); }
    if (ncand == 0) return greedy;
    uint32_t kcut = 0;
    if (p->top_k > 0 && p->top_k < ncand)
        for (int bit = 31; bit >= 0; bit--) {
            uint32_t t = kcut | (1u << bit);
            double c = 0;
            for (int i = 0; i < V; i++) c += is_cand(w[i]) && fkey(w[i]) >= t;
            if (c >= p->top_k) kcut = t;
        }
    double inv_t = 1.0 / (double)p->temperature, tot = 0, nkept = 0;
    for (int i = 0; i < V; i++) {
        if (is_cand(w[i]) && fkey(w[i]) >= kcut) {
            w[i] = (float)exp((double)(w[i] - mx) * inv_t);
            tot += w[i];
            nkept += 1;
        } else {
            w[i] = -1.0f;
        }
    }
    float cut = 0.0f;
    if (p->top_p < 1.0f && nkept > 1) {
        uint32_t t0 = 0;
        for (int bit = 30; bit >= 0; bit--) {
            uint32_t t = t0 | (1u << bit);
            float ft;
            memcpy(&ft, &t, 4);
            double s = 0;
            for (int i = 0; i < V; i++)
                if (w[i] >= ft) s += w[i];
            if (s / tot >= p->top_p) t0 = t;
        }
        memcpy(&cut, &t0, 4);
    }
    if (p->min_p > 0.0f && p->min_p <= 1.0f) cut = fmaxf(cut, p->min_p);
    double total = 0;
    int last = -1;
    for (int i = 0; i < V; i++)
        if (w[i] >= 0.0f && w[i] >= cut) { total += w[i]; last = i; }
    double r = p->u * total, acc = 0;
    for (int i = 0; i < V; i++) {
        if (!(w[i] >= 0.0f && w[i] >= cut)) continue;
        acc += w[i];
        if (r < acc) return i;
    }
    return last >= 0 ? last : greedy;
}
