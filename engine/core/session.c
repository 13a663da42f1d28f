/* engine/core/: what ties the parts together: the session API (this file), the sampler,
 * the error codes and the backend seam (model.h) that the CPU and CUDA backends implement.
 *
 * session.c: the public session API: create/free, feed in chunks, batched steps, destination
 * tracing and memory accounting (fork: session_fork.c, files: session_file.c, rollback:
 * session_truncate.c).  Validates every token before any state changes, so a bad
 * request never leaves a session half-advanced. */
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/model.h"
#include "rosa_sampler.h"

int rosa_session_new(rosa_model *m, rosa_session **out) {
    *out = NULL;
    rosa_session *s = calloc(1, sizeof *s);
    if (!s) return ROSA_ERR_NOMEM;
    s->m = m;
    s->last_logits = malloc((size_t)m->V * sizeof(float));
    if (!s->last_logits || rosa__routes_new(&s->routes, (size_t)m->n_rosa * m->R, 1)) {
        free(s->last_logits);
        free(s);
        return ROSA_ERR_NOMEM;
    }
    rosa__routes_set_horizon(&s->routes, (uint32_t)m->rollback);
    int rc = m->backend->session_init(s);
    if (rc) {
        rosa_session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void rosa_session_free(rosa_session *s) {
    if (!s) return;
    if (s->bstate) s->m->backend->session_free(s);
    rosa__routes_free(&s->routes);
    free(s->last_logits);
    free(s);
}

static int check_tokens(const rosa_model *m, const int32_t *tokens, int n) {
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->V) return ROSA_ERR_INVALID;
    return 0;
}

int rosa_session_feed(rosa_session *s, const int32_t *tokens, int n, float *logits) {
    if (n < 0 || (n && !tokens)) return ROSA_ERR_INVALID;
    if (s->broken) return ROSA_ERR_INVALID;
    int rc = check_tokens(s->m, tokens, n);
    if (rc) return rc;
    rosa_model *m = s->m;
    for (int i = 0; i < n; i += m->max_chunk) {
        int c = n - i < m->max_chunk ? n - i : m->max_chunk;
        rc = m->backend->forward(m, &s, 1, &c, tokens + i, logits ? logits + (size_t)i * m->V : NULL);
        if (rc) {
            /* ROSA_ERR_LIMIT (a full GPU KV pool) is refused before any state changes */
            if (rc != ROSA_ERR_LIMIT) s->broken = 1;
            return rc;
        }
        s->pos += c;
        s->has_logits = 1;
    }
    return 0;
}

/* a batch of n >= 1 distinct, unbroken sessions of one model, with valid tokens */
static int check_batch(rosa_session *const *ss, const int32_t *tokens, int n) {
    rosa_model *m = ss[0]->m;
    for (int i = 0; i < n; i++) {
        if (ss[i]->m != m || ss[i]->broken) return ROSA_ERR_INVALID;
        for (int j = 0; j < i; j++)
            if (ss[j] == ss[i]) return ROSA_ERR_INVALID;
    }
    return check_tokens(m, tokens, n);
}

int rosa_step_batch(rosa_session *const *ss, const int32_t *tokens, int n, float *logits) {
    if (n <= 0) return n == 0 ? 0 : ROSA_ERR_INVALID;
    rosa_model *m = ss[0]->m;
    int rc = check_batch(ss, tokens, n);
    if (rc) return rc;
    int *ones = malloc((size_t)n * sizeof *ones);
    if (!ones) return ROSA_ERR_NOMEM;
    for (int i = 0; i < n; i++) ones[i] = 1;
    rc = m->backend->forward(m, ss, n, ones, tokens, logits);
    free(ones);
    for (int i = 0; i < n; i++) {
        if (rc) ss[i]->broken = rc != ROSA_ERR_LIMIT;
        else {
            ss[i]->pos++;
            ss[i]->has_logits = 1;
        }
    }
    return rc;
}

int rosa_step_batch_sample(rosa_session *const *ss, const int32_t *tokens, int n, struct rosa_sampler *const *smp,
                           int32_t *next, float *logprobs) {
    if (n <= 0) return n == 0 ? 0 : ROSA_ERR_INVALID;
    if (!smp || !next) return ROSA_ERR_INVALID;
    for (int i = 0; i < n; i++)
        if (!smp[i]) return ROSA_ERR_INVALID;
    rosa_model *m = ss[0]->m;
    int rc = check_batch(ss, tokens, n);
    if (rc) return rc;
    rc = ROSA_ERR_UNSUPPORTED;
    if (m->backend->step_sample) {
        rc = m->backend->step_sample(m, ss, n, tokens, smp, next, logprobs);
        if (rc != ROSA_ERR_UNSUPPORTED)
            for (int i = 0; i < n; i++) {
                if (rc) ss[i]->broken = rc != ROSA_ERR_LIMIT;
                else ss[i]->pos++;
            }
    }
    if (rc == ROSA_ERR_UNSUPPORTED) {
        /* on the host: the step's last logits, then each sampler as rosa_sampler_sample */
        rc = rosa_step_batch(ss, tokens, n, NULL);
        for (int i = 0; i < n && !rc; i++) {
            next[i] = rosa_sampler_sample(smp[i], ss[i]->last_logits);
            if (logprobs) logprobs[i] = rosa_logprobs(ss[i]->last_logits, m->V, next[i], 0, NULL, NULL);
        }
    }
    if (!rc)
        for (int i = 0; i < n; i++) ss[i]->has_logits = 0; /* the same on every backend */
    return rc;
}

const float *rosa_session_logits(const rosa_session *s) { return s->has_logits ? s->last_logits : NULL; }

int64_t rosa_session_length(const rosa_session *s) { return s->pos; }

void rosa_session_trace_dest(rosa_session *s, int32_t *buf, int64_t T) {
    s->trace = buf;
    s->trace_T = buf ? T : 0;
    if (buf) {
        size_t n = (size_t)s->m->n_rosa * s->m->R * (size_t)T;
        for (size_t i = 0; i < n; i++) buf[i] = -1;
    }
}

void rosa_session_memory(const rosa_session *s, rosa_session_mem *out) {
    memset(out, 0, sizeof *out);
    out->kv_bytes = s->m->backend->session_kv_bytes(s);
    out->rosa_bytes = rosa__routes_bytes(&s->routes);
    out->rosa_runs = rosa__routes_nruns(&s->routes);
    out->rollback_bytes = rosa__routes_undo_bytes(&s->routes);
    if (s->m->backend->session_rollback_bytes) out->rollback_bytes += s->m->backend->session_rollback_bytes(s);
}
