/* outflow.c: how much one request may send, and how fast it may produce it.
 *
 * --max-response-bytes: a small request can ask for a very large response (echo + logprobs 20
 * on a long prompt: about 300 bytes out per prompt token).  A lower bound is checked before the
 * request starts (413 at once), and the bytes actually built are counted as events arrive; past
 * the limit the request is cancelled and ends with 413 (in a stream: an error event, then
 * [DONE]).
 *
 * Backpressure: a stream whose client does not read would make j->out grow without bound.  Once
 * SRV_OUT_HIGH bytes wait, the job is marked paused and the engine skips its sequences (they
 * keep their batch slot and state); the SSE reader clears the mark below SRV_OUT_LOW and wakes
 * the engine.  A client that never reads again is closed by MHD's --idle-timeout (no byte sent),
 * which cancels the request like any hang-up. */
#include "outflow.h"

#include "engine_thread.h"

static void fail_too_big(srv_job *j, const char *what, double bytes) {
    srv_server *s = j->srv;
    pthread_mutex_lock(&j->mu);
    if (!j->err.status) /* the first error wins */
        srv_fail(&j->err, 413, NULL, "the response %s %.0f bytes, more than "
                 "--max-response-bytes (%zu); ask for fewer tokens, log-probabilities or choices, "
                 "or no echo", what, bytes, s->cfg.max_response_bytes);
    pthread_mutex_unlock(&j->mu);
}

int srv_out_check_request(srv_job *j) {
    const srv_params *p = &j->p;
    double least = 0;
    for (int i = 0; i < j->n_prompts; i++) {
        if (!p->echo) break;
        least += (double)j->prompt_text_len[i];
        /* a prompt token's log-probability entries: at least ~12 bytes each (value, token) */
        if (p->logprobs >= 0) least += (double)j->prompt_n[i] * (p->logprobs + 1) * 12.0;
    }
    least *= p->n;
    if (least <= (double)j->srv->cfg.max_response_bytes) return 0;
    fail_too_big(j, "would be at least", least);
    return -1;
}

size_t srv_out_held(const srv_job *j) {
    if (j->p.stream) return j->out.len;
    size_t n = 0;
    for (int i = 0; i < j->n_choices && j->choices; i++) {
        const srv_choice *c = &j->choices[i];
        n += c->text.len + c->lp_json.len + c->lp_tokens.len + c->lp_values.len + c->lp_tops.len +
             c->lp_offsets.len + (size_t)c->n_ids * 8;
    }
    return n;
}

static void set_paused(srv_job *j, int on) {
    if (atomic_exchange(&j->paused, on) == on) return;
    atomic_fetch_add_explicit(&j->srv->metrics.paused, on ? 1 : -1, memory_order_relaxed);
    if (!on && j->srv->engine) srv_engine_poke(j->srv->engine);
}

void srv_out_grew(srv_job *j, size_t before) {
    srv_server *s = j->srv;
    size_t now = srv_out_held(j);
    if (now > before) j->resp_bytes += now - before;
    if (!j->too_big && j->resp_bytes > s->cfg.max_response_bytes) {
        j->too_big = 1;
        fail_too_big(j, "reached", (double)j->resp_bytes);
        int none = SRV_CANCEL_NONE;
        atomic_compare_exchange_strong(&j->cancel, &none, SRV_CANCEL_LIMIT);
        if (s->engine) srv_engine_poke(s->engine);
    }
    if (j->p.stream && !j->completed && j->out.len - j->out_off > SRV_OUT_HIGH) set_paused(j, 1);
}

void srv_out_drained(srv_job *j) {
    if (atomic_load(&j->paused) && j->out.len - j->out_off < SRV_OUT_LOW) set_paused(j, 0);
}

void srv_out_release(srv_job *j) { set_paused(j, 0); }
