/* backend_cuda_sample.c: rosa_step_batch_sample on the CUDA backend: the step's last-row
 * logits stay on the device, rc_sample (k_sample.cu) chooses each session's next token there
 * with its sampler's parameters and the uniform drawn from the sampler's own RNG, and only the
 * ids come back.  Samplers with logit_bias or penalties (their counts live on the host) and
 * requests for logprobs are declined (ROSA_ERR_UNSUPPORTED, nothing changed) and sampled on the
 * host by session.c.  NOT YET RUN ON A GPU: see docs/CUDA.md. */
#include <stdlib.h>
#include <string.h>

#include "backend_cuda.h"
#include "core/errors.h"
#include "core/sampler_internal.h"

#define CK(call) do { if ((rc = rosa__cu_check((int)(call), #call))) goto out; } while (0)

void rosa__cu_sample_free(cu_model *cm) {
    if (cm->h_sp) cudaFreeHost(cm->h_sp);
    if (cm->h_next) cudaFreeHost(cm->h_next);
    if (cm->d_sp) cudaFree(cm->d_sp);
    if (cm->d_next) cudaFree(cm->d_next);
    if (cm->d_swork) cudaFree(cm->d_swork);
    free(cm->ones);
    cm->ones = NULL;
    cm->h_sp = cm->d_sp = NULL;
    cm->h_next = cm->d_next = NULL;
    cm->d_swork = NULL;
    cm->sample_cap = 0;
}

static int ensure_sample(cu_model *cm, int n, int V) {
    if (n <= cm->sample_cap) return 0;
    rosa__cu_sample_free(cm);
    int rc = 0, cap = n < 8 ? 8 : n;
    CK(cudaHostAlloc((void **)&cm->h_sp, (size_t)cap * sizeof(rc_sample_params), cudaHostAllocDefault));
    CK(cudaHostAlloc((void **)&cm->h_next, (size_t)cap * sizeof(int32_t), cudaHostAllocDefault));
    CK(cudaMalloc((void **)&cm->d_sp, (size_t)cap * sizeof(rc_sample_params)));
    CK(cudaMalloc((void **)&cm->d_next, (size_t)cap * sizeof(int32_t)));
    CK(cudaMalloc((void **)&cm->d_swork, (size_t)cap * V * sizeof(float)));
    if (!(cm->ones = malloc((size_t)cap * sizeof *cm->ones))) {
        rc = ROSA_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < cap; i++) cm->ones[i] = 1;
    cm->sample_cap = cap;
out:
    if (rc) rosa__cu_sample_free(cm);
    return rc;
}

int rosa__cu_step_sample(rosa_model *m, struct rosa_session *const *ss, int n, const int32_t *tokens,
                         struct rosa_sampler *const *smp, int32_t *next, float *logprobs) {
    cu_model *cm = m->bctx;
    if (logprobs) return ROSA_ERR_UNSUPPORTED;
    for (int i = 0; i < n; i++)
        if (!rosa__sampler_plain(smp[i])) return ROSA_ERR_UNSUPPORTED;
    int rc = 0;
    if (ensure_sample(cm, n, m->V)) {
        cudaGetLastError();
        return ROSA_ERR_UNSUPPORTED; /* no room for the sampling buffers: sample on the host */
    }
    rc = rosa__cu_forward_ex(m, ss, n, cm->ones, tokens, NULL, 1);
    if (rc) return rc;
    /* the forward succeeded: now, and only now, each sampler's RNG advances */
    for (int i = 0; i < n; i++) {
        rc_sample_params *p = &cm->h_sp[i];
        memset(p, 0, sizeof *p);
        rosa__sampler_next(smp[i], &p->temperature, &p->top_k, &p->top_p, &p->min_p, &p->u);
        p->repetition = 1.0f;
    }
    CK(cudaMemcpyAsync(cm->d_sp, cm->h_sp, (size_t)n * sizeof(rc_sample_params), cudaMemcpyHostToDevice, cm->st));
    CK(rc_sample(cm->d_next, cm->logits, cm->d_sp, cm->d_swork, n, m->V, cm->st));
    CK(cudaMemcpyAsync(cm->h_next, cm->d_next, (size_t)n * sizeof(int32_t), cudaMemcpyDeviceToHost, cm->st));
    CK(cudaStreamSynchronize(cm->st));
    memcpy(next, cm->h_next, (size_t)n * sizeof(int32_t));
out:
    if (rc) cudaStreamSynchronize(cm->st);
    return rc;
}
