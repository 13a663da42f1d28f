/* sampler_internal.h: what a backend that samples on its device needs from a rosa_sampler
 * (sampler.c): whether its choice depends only on the logits row (no logit_bias, no penalties,
 * whose state lives on the host), its parameters, and the uniform its next stochastic draw uses,
 * taken from the same RNG stream as rosa_sampler_sample.  Internal. */
#ifndef ROSA_SAMPLER_INTERNAL_H
#define ROSA_SAMPLER_INTERNAL_H

#include "rosa_sampler.h"

/* 1 when the sampler has no logit_bias and no penalties */
int rosa__sampler_plain(const rosa_sampler *s);
/* parameters of the next choice; *u: the draw's uniform in [0, 1) (consumed from the RNG only
 * when temperature > 0, as rosa_sampler_sample does), 0 for greedy */
void rosa__sampler_next(rosa_sampler *s, float *temperature, int *top_k, float *top_p, float *min_p, double *u);
#endif
