/* sampler.c: next-token selection (greedy, temperature, top-k/p, min-p, penalties, logit_bias)
 * with a per-sequence seeded RNG, and model log-probabilities for `logprobs`.
 * Pure CPU code over one logits row; no allocation per call. */
#include "rosa_sampler.h"
#include "core/sampler_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct rosa_sampler {
    rosa_sampler_params p;
    int vocab;
    int32_t *bias_ids;
    float *bias_vals;
    uint16_t *gen_count;  /* [vocab] generated occurrences, saturating; NULL if unused */
    uint8_t *seen;        /* [vocab] 1 if in history; NULL if unused */
    float *work;          /* [vocab] processed logits / probabilities */
    int32_t *idx;         /* [vocab] candidate ids */
    uint64_t rng[4];
};

/* ---------------------------------------------------------------- RNG (xoshiro256**) */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t *s) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* uniform in [0, 1) with 53 random bits */
static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

/* ---------------------------------------------------------------- lifecycle */

void rosa_sampler_params_init(rosa_sampler_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->repetition_penalty = 1.0f;
}

rosa_sampler *rosa_sampler_new(const rosa_sampler_params *p, int vocab) {
    if (!p || vocab <= 0 || p->n_bias < 0) return NULL;
    for (int i = 0; i < p->n_bias; i++)
        if (p->bias_ids[i] < 0 || p->bias_ids[i] >= vocab) return NULL;
    rosa_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    s->vocab = vocab;
    s->work = malloc(sizeof(float) * (size_t)vocab);
    s->idx = malloc(sizeof(int32_t) * (size_t)vocab);
    int ok = s->work && s->idx;
    if (ok && p->n_bias > 0) {
        s->bias_ids = malloc(sizeof(int32_t) * (size_t)p->n_bias);
        s->bias_vals = malloc(sizeof(float) * (size_t)p->n_bias);
        ok = s->bias_ids && s->bias_vals;
        if (ok) {
            memcpy(s->bias_ids, p->bias_ids, sizeof(int32_t) * (size_t)p->n_bias);
            memcpy(s->bias_vals, p->bias_vals, sizeof(float) * (size_t)p->n_bias);
        }
    }
    s->p.bias_ids = s->bias_ids;
    s->p.bias_vals = s->bias_vals;
    if (ok && (p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f))
        ok = (s->gen_count = calloc((size_t)vocab, sizeof(uint16_t))) != NULL;
    if (ok && p->repetition_penalty != 1.0f)
        ok = (s->seen = calloc((size_t)vocab, 1)) != NULL;
    if (!ok) {
        rosa_sampler_free(s);
        return NULL;
    }
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    return s;
}

void rosa_sampler_free(rosa_sampler *s) {
    if (!s) return;
    free(s->bias_ids);
    free(s->bias_vals);
    free(s->gen_count);
    free(s->seen);
    free(s->work);
    free(s->idx);
    free(s);
}

void rosa_sampler_accept(rosa_sampler *s, int32_t token, int generated) {
    if (!s || token < 0 || token >= s->vocab) return;
    if (s->seen) s->seen[token] = 1;
    if (generated && s->gen_count && s->gen_count[token] < UINT16_MAX) s->gen_count[token]++;
}

/* ---------------------------------------------------------------- selection helpers */

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Move the k largest of v[idx[0..n)] to the front (unordered), quickselect. */
static void select_top(int32_t *idx, int n, int k, const float *v) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[idx[(lo + hi) / 2]];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[idx[i]] > pivot) i++;
            while (v[idx[j]] < pivot) j--;
            if (i <= j) {
                int32_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* Sort idx[0..n) by v descending (ties: lower id first): insertion sort when short, else a
 * heap sort (no qsort: its comparator could not see v without a global). */
static void sort_desc(int32_t *idx, int n, const float *v) {
    if (n <= 64) {
        for (int i = 1; i < n; i++) {
            int32_t t = idx[i];
            int j = i - 1;
            while (j >= 0 && (v[idx[j]] < v[t] || (v[idx[j]] == v[t] && idx[j] > t))) {
                idx[j + 1] = idx[j];
                j--;
            }
            idx[j + 1] = t;
        }
        return;
    }
    for (int start = n / 2 - 1; start >= 0; start--) {
        int root = start;
        for (;;) {
            int child = 2 * root + 1;
            if (child >= n) break;
            /* min-heap on "descending order" => build heap where root is the smallest */
            if (child + 1 < n && (v[idx[child + 1]] < v[idx[child]] ||
                                  (v[idx[child + 1]] == v[idx[child]] && idx[child + 1] > idx[child])))
                child++;
            if (v[idx[child]] < v[idx[root]] ||
                (v[idx[child]] == v[idx[root]] && idx[child] > idx[root])) {
                int32_t t = idx[root];
                idx[root] = idx[child];
                idx[child] = t;
                root = child;
            } else {
                break;
            }
        }
    }
    for (int end = n - 1; end > 0; end--) {
        int32_t t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        int root = 0;
        for (;;) {
            int child = 2 * root + 1;
            if (child >= end) break;
            if (child + 1 < end && (v[idx[child + 1]] < v[idx[child]] ||
                                    (v[idx[child + 1]] == v[idx[child]] && idx[child + 1] > idx[child])))
                child++;
            if (v[idx[child]] < v[idx[root]] ||
                (v[idx[child]] == v[idx[root]] && idx[child] > idx[root])) {
                int32_t u = idx[root];
                idx[root] = idx[child];
                idx[child] = u;
                root = child;
            } else {
                break;
            }
        }
    }
}

/* ---------------------------------------------------------------- sampling */

int32_t rosa_sampler_sample(rosa_sampler *s, const float *logits) {
    const int V = s->vocab;
    float *w = s->work;
    memcpy(w, logits, sizeof(float) * (size_t)V);
    for (int i = 0; i < s->p.n_bias; i++) w[s->bias_ids[i]] += s->bias_vals[i];
    if (s->seen) {
        float rp = s->p.repetition_penalty;
        for (int i = 0; i < V; i++)
            if (s->seen[i]) w[i] = w[i] > 0 ? w[i] / rp : w[i] * rp;
    }
    if (s->gen_count) {
        for (int i = 0; i < V; i++)
            if (s->gen_count[i])
                w[i] -= s->p.presence_penalty + s->p.frequency_penalty * (float)s->gen_count[i];
    }
    if (!(s->p.temperature > 0.0f)) return argmax(w, V);

    /* candidates, best first as far as needed */
    int32_t *idx = s->idx;
    int n = 0;
    for (int i = 0; i < V; i++)
        if (isfinite(w[i]) || w[i] > 0) idx[n++] = i;
    if (n == 0) return argmax(w, V);
    float inv_t = 1.0f / s->p.temperature;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        select_top(idx, n, s->p.top_k, w);
        n = s->p.top_k;
    }
    int sorted = 0;
    if (s->p.top_p < 1.0f && n > 1) {
        /* sort a prefix first; almost always the nucleus lies inside it */
        int pre = n > 1024 ? 1024 : n;
        if (pre < n) select_top(idx, n, pre, w);
        sort_desc(idx, pre, w);
        if (pre < n) {
            /* mass of the prefix relative to all candidates decides whether it suffices */
            double mx = w[idx[0]], tot = 0, part = 0;
            for (int i = 0; i < n; i++) tot += exp((double)(w[idx[i]] - mx) * inv_t);
            for (int i = 0; i < pre; i++) part += exp((double)(w[idx[i]] - mx) * inv_t);
            if (part / tot < s->p.top_p) sort_desc(idx, n, w);
            else n = pre;
        }
        sorted = 1;
    }
    /* probabilities of the candidates (w is overwritten for them only) */
    float mx = w[idx[0]];
    for (int i = 1; i < n; i++)
        if (w[idx[i]] > mx) mx = w[idx[i]];
    double tot = 0;
    for (int i = 0; i < n; i++) {
        float e = (float)exp((double)(w[idx[i]] - mx) * inv_t);
        w[idx[i]] = e;
        tot += e;
    }
    if (sorted) {
        double acc = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            acc += w[idx[i]] / tot;
            if (acc >= s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (s->p.min_p > 0.0f) {
        /* the largest probability among the candidates is exp(0) = 1 relative */
        int m = 0;
        for (int i = 0; i < n; i++)
            if (w[idx[i]] >= s->p.min_p) idx[m++] = idx[i];
        n = m > 0 ? m : 1;
    }
    tot = 0;
    for (int i = 0; i < n; i++) tot += w[idx[i]];
    double r = rng_uniform(s->rng) * tot, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += w[idx[i]];
        if (r < acc) return idx[i];
    }
    return idx[n - 1];
}

/* ---------------------------------------------------------------- for device sampling */

int rosa__sampler_plain(const rosa_sampler *s) { return s->p.n_bias == 0 && !s->gen_count && !s->seen; }

void rosa__sampler_next(rosa_sampler *s, float *temperature, int *top_k, float *top_p, float *min_p, double *u) {
    *temperature = s->p.temperature;
    *top_k = s->p.top_k;
    *top_p = s->p.top_p;
    *min_p = s->p.min_p;
    *u = s->p.temperature > 0.0f ? rng_uniform(s->rng) : 0.0;
}

/* ---------------------------------------------------------------- logprobs */

float rosa_logprobs(const float *logits, int vocab, int32_t token, int n, int32_t *top_ids,
                    float *top_lp) {
    float mx = logits[0];
    for (int i = 1; i < vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < vocab; i++) sum += exp((double)(logits[i] - mx));
    float lse = mx + (float)log(sum);
    if (n > ROSA_MAX_TOP_LOGPROBS) n = ROSA_MAX_TOP_LOGPROBS;
    if (n > vocab) n = vocab;
    int have = 0;
    for (int i = 0; i < vocab && n > 0; i++) {
        float v = logits[i];
        if (have == n && !(v > logits[top_ids[n - 1]])) continue;
        int j = have < n ? have++ : n - 1;
        while (j > 0 && logits[top_ids[j - 1]] < v) {
            top_ids[j] = top_ids[j - 1];
            j--;
        }
        top_ids[j] = i;
    }
    for (int i = 0; i < have; i++) top_lp[i] = logits[top_ids[i]] - lse;
    return token >= 0 && token < vocab ? logits[token] - lse : NAN;
}
