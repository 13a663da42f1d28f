/* rosa_sampler.h: turning one row of logits into the next token.
 *
 * One rosa_sampler per generated sequence: it owns its seeded RNG, the counts of generated
 * tokens (presence / frequency penalties) and of the whole history (repetition penalty), and a
 * scratch row.  Order of processing, as in vLLM: logit_bias, repetition penalty, presence and
 * frequency penalties, then temperature 0 = greedy (argmax, lowest id on ties), otherwise
 * temperature, top-k, top-p, min-p and a draw.  Reported log-probabilities are those of the
 * model (log_softmax of the raw logits), which is what OpenAI-style `logprobs` means. */
#ifndef ROSA_SAMPLER_H
#define ROSA_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ROSA_MAX_TOP_LOGPROBS 20

typedef struct rosa_sampler_params {
    float temperature;        /* 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float presence_penalty;   /* 0: off; applied to generated tokens */
    float frequency_penalty;  /* 0: off; applied to generated tokens */
    float repetition_penalty; /* 1: off; applied to prompt and generated tokens */
    uint64_t seed;
    const int32_t *bias_ids;  /* logit_bias; copied by rosa_sampler_new */
    const float *bias_vals;
    int n_bias;
} rosa_sampler_params;

void rosa_sampler_params_init(rosa_sampler_params *p);

typedef struct rosa_sampler rosa_sampler;

/* NULL on allocation failure or bad arguments (vocab <= 0, bias id out of range). */
rosa_sampler *rosa_sampler_new(const rosa_sampler_params *p, int vocab);
void rosa_sampler_free(rosa_sampler *s);

/* Record a token of the history: prompt tokens (generated = 0) count for the repetition
 * penalty only; generated tokens (generated = 1) for all penalties. */
void rosa_sampler_accept(rosa_sampler *s, int32_t token, int generated);

/* Choose the next token from logits [vocab].  Returns the token id. */
int32_t rosa_sampler_sample(rosa_sampler *s, const float *logits);

/* Model log-probabilities of a logits row: logprob of token (or NAN when token < 0), and the
 * top n (n <= ROSA_MAX_TOP_LOGPROBS) ids and logprobs, best first.  Returns the logprob. */
float rosa_logprobs(const float *logits, int vocab, int32_t token, int n, int32_t *top_ids,
                    float *top_lp);

#ifdef __cplusplus
}
#endif
#endif
