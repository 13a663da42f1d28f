/* respond.c: engine events -> OpenAI JSON (loop thread).
 *
 * Tokens are decoded with a streaming detokenizer per choice, checked against the request's
 * stop strings (text that could begin a stop string is held back), and become either SSE chunks
 * (`data: {...}\n\n`, then `data: [DONE]\n\n`) or, once every choice is done, one completion
 * object.  Logprobs follow OpenAI's two formats (completions arrays, chat content entries). */
#define _GNU_SOURCE /* memmem */
#include "respond.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chat_prepare.h"
#include "http.h"
#include "outflow.h"

static const char *fin_name(int f) { return f == FIN_STOP ? "stop" : "length"; }

void srv_error_json(sbuf *o, const srv_error *e) {
    sb_puts(o, "{\"error\":{\"message\":");
    sb_json_str(o, e->message, strlen(e->message));
    sb_printf(o, ",\"type\":\"%s\",\"param\":", e->type ? e->type : "server_error");
    if (e->param[0]) sb_json_str(o, e->param, strlen(e->param));
    else sb_puts(o, "null");
    sb_puts(o, ",\"code\":");
    if (e->code[0]) sb_json_str(o, e->code, strlen(e->code));
    else sb_puts(o, "null");
    sb_puts(o, "}}");
}

/* the JSON string of one token (its bytes, repaired to valid UTF-8) */
static void tok_json(const srv_server *s, int32_t id, sbuf *o, int with_bytes) {
    char *text = NULL;
    size_t len = 0;
    if (s->tok && rosa_detokenize(s->tok, &id, 1, 0, &text, &len) == 0) {
        sb_json_str(o, text, len);
        if (with_bytes) {
            sb_puts(o, ",\"bytes\":[");
            for (size_t i = 0; i < len; i++) sb_printf(o, i ? ",%u" : "%u", (unsigned char)text[i]);
            sb_puts(o, "]");
        }
    } else {
        sb_printf(o, "\"token_id:%d\"", (int)id);
        if (with_bytes) sb_puts(o, ",\"bytes\":null");
    }
    free(text);
}

static size_t tok_len(const srv_server *s, int32_t id) {
    char *text = NULL;
    size_t len = 0;
    if (s->tok && rosa_detokenize(s->tok, &id, 1, 0, &text, &len) == 0) {
        free(text);
        return len;
    }
    return 0;
}

/* One token's chat logprobs entry {"token","bytes","logprob","top_logprobs"}. */
static void chat_lp_entry(const srv_server *s, const srv_event *ev, sbuf *o) {
    sb_puts(o, "{\"token\":");
    tok_json(s, ev->token, o, 1);
    sb_puts(o, ",\"logprob\":");
    sb_json_float(o, ev->lp);
    sb_puts(o, ",\"top_logprobs\":[");
    for (int k = 0; k < ev->ntop; k++) {
        sb_puts(o, k ? ",{\"token\":" : "{\"token\":");
        tok_json(s, ev->top_ids[k], o, 1);
        sb_puts(o, ",\"logprob\":");
        sb_json_float(o, ev->top_lp[k]);
        sb_puts(o, "}");
    }
    sb_puts(o, "]}");
}

/* completions top_logprobs object {"tok": lp, ...} (null for the first prompt token) */
static void top_obj(const srv_server *s, const srv_event *ev, sbuf *o) {
    if (isnan(ev->lp)) {
        sb_puts(o, "null");
        return;
    }
    sb_puts(o, "{");
    for (int k = 0; k < ev->ntop; k++) {
        if (k) sb_puts(o, ",");
        tok_json(s, ev->top_ids[k], o, 0);
        sb_puts(o, ":");
        sb_json_float(o, ev->top_lp[k]);
    }
    sb_puts(o, "}");
}

/* Record one token's logprobs in the choice's whole-response arrays (non-streamed responses;
 * prompt tokens of echo). */
static void add_logprobs(srv_job *j, srv_choice *c, const srv_event *ev) {
    const srv_server *s = j->srv;
    const char *sep = c->n_lp ? "," : "";
    if (j->p.kind == SRV_CHAT) {
        sb_puts(&c->lp_json, sep);
        chat_lp_entry(s, ev, &c->lp_json);
    } else {
        sb_puts(&c->lp_tokens, sep);
        tok_json(s, ev->token, &c->lp_tokens, 0);
        sb_puts(&c->lp_values, sep);
        if (isnan(ev->lp)) sb_puts(&c->lp_values, "null");
        else sb_json_float(&c->lp_values, ev->lp);
        sb_puts(&c->lp_tops, sep);
        top_obj(s, ev, &c->lp_tops);
        sb_printf(&c->lp_offsets, "%s%zu", sep, c->text_offset);
    }
    c->text_offset += tok_len(s, ev->token);
    c->n_lp++;
}

/* The logprobs object of a stream chunk: the chunk's pending tokens. */
static void chunk_logprobs(srv_job *j, const srv_choice *c, sbuf *o) {
    const srv_server *s = j->srv;
    if (j->p.logprobs < 0 || c->n_pend == 0) {
        sb_puts(o, "null");
        return;
    }
    if (j->p.kind == SRV_CHAT) {
        sb_puts(o, "{\"content\":[");
        for (int i = 0; i < c->n_pend; i++) {
            if (i) sb_puts(o, ",");
            chat_lp_entry(s, &c->pend[i].ev, o);
        }
        sb_puts(o, "]}");
        return;
    }
    sb_puts(o, "{\"tokens\":[");
    for (int i = 0; i < c->n_pend; i++) {
        if (i) sb_puts(o, ",");
        tok_json(s, c->pend[i].ev.token, o, 0);
    }
    sb_puts(o, "],\"token_logprobs\":[");
    for (int i = 0; i < c->n_pend; i++) {
        if (i) sb_puts(o, ",");
        if (isnan(c->pend[i].ev.lp)) sb_puts(o, "null"); /* the first prompt token */
        else sb_json_float(o, c->pend[i].ev.lp);
    }
    sb_puts(o, "],\"top_logprobs\":[");
    for (int i = 0; i < c->n_pend; i++) {
        if (i) sb_puts(o, ",");
        top_obj(s, &c->pend[i].ev, o);
    }
    sb_puts(o, "],\"text_offset\":[");
    for (int i = 0; i < c->n_pend; i++) sb_printf(o, i ? ",%zu" : "%zu", c->pend[i].offset);
    sb_puts(o, "]}");
}

/* Stream: keep a generated token until the chunk carrying its text goes out. */
static void pend_token(srv_job *j, srv_choice *c, const srv_event *ev) {
    if (c->n_pend == c->cap_pend) {
        int cap = c->cap_pend ? c->cap_pend * 2 : 4;
        srv_pend_tok *p = realloc(c->pend, sizeof *p * (size_t)cap);
        if (!p) {
            j->out.oom = 1; /* the stream ends with an error rather than with wrong data */
            return;
        }
        c->pend = p;
        c->cap_pend = cap;
    }
    c->pend[c->n_pend].ev = *ev;
    c->pend[c->n_pend].offset = c->text_offset;
    c->n_pend++;
    if (j->p.logprobs >= 0) c->text_offset += tok_len(j->srv, ev->token); /* for text_offset */
}

/* Move decoded bytes through the stop-string filter into c->text.  Returns 1 if a stop string
 * was found (the choice is then finished). */
static int commit_text(srv_job *j, srv_choice *c, int idx, const char *t, size_t n, int final) {
    sb_put(&c->pending, t, n);
    const srv_params *p = &j->p;
    size_t cut = c->pending.len;
    int stopped = 0;
    for (int i = 0; i < p->n_stop && c->pending.len; i++) {
        const char *hit = memmem(c->pending.p, c->pending.len, p->stop[i], strlen(p->stop[i]));
        if (hit && (size_t)(hit - c->pending.p) <= cut) {
            cut = (size_t)(hit - c->pending.p);
            stopped = 1;
        }
    }
    size_t keep = 0;
    if (!stopped && !final) {
        for (int i = 0; i < p->n_stop; i++) {
            size_t sl = strlen(p->stop[i]);
            for (size_t k = sl - 1; k > keep; k--)
                if (k <= c->pending.len && !memcmp(c->pending.p + c->pending.len - k, p->stop[i], k)) {
                    keep = k;
                    break;
                }
        }
        cut = c->pending.len - keep;
    }
    sb_put(&c->text, c->pending.p, cut);
    memmove(c->pending.p, c->pending.p + c->pending.len - keep, keep);
    c->pending.len = keep;
    if (stopped) {
        c->pending.len = 0;
        c->finish = FIN_STOP;
        atomic_store(&j->choice_stop[idx], 1);
    }
    return stopped;
}

static void chunk_head(srv_job *j, sbuf *o) {
    int chat = j->p.kind == SRV_CHAT;
    sb_printf(o, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":", j->id,
              chat ? "chat.completion.chunk" : "text_completion", j->created);
    sb_json_str(o, j->srv->model_id, strlen(j->srv->model_id));
    sb_puts(o, ",\"choices\":[");
}

static void ids_json(sbuf *o, const int32_t *ids, int n) {
    sb_puts(o, "[");
    for (int i = 0; i < n; i++) sb_printf(o, i ? ",%d" : "%d", (int)ids[i]);
    sb_puts(o, "]");
}

/* One SSE chunk for choice idx: the text not yet streamed, the pending tokens (their logprobs
 * and, with return_token_ids, their ids) and the finish reason if any.  A chunk goes out when
 * there is new text or a finish; tokens whose text is still held back wait for it.  Without a
 * tokenizer there is never text, so every token makes a chunk. */
static void emit_chunk(srv_job *j, int idx, int finish) {
    srv_choice *c = &j->choices[idx];
    int chat = j->p.kind == SRV_CHAT;
    size_t from = c->emitted, n = c->text.len - from;
    if (!n && !finish && (j->srv->tok || !c->n_pend)) return;
    sbuf *o = &j->out;
    chunk_head(j, o);
    sb_printf(o, "{\"index\":%d,", idx);
    const char *txt = c->text.p ? c->text.p + from : "";
    if (chat) {
        sb_puts(o, "\"delta\":{");
        if (!c->started) sb_puts(o, "\"role\":\"assistant\",");
        if (n || !finish) {
            sb_puts(o, "\"content\":");
            sb_json_str(o, txt, n);
        } else if (o->p[o->len - 1] == ',') {
            o->len--;
        }
        sb_puts(o, "},\"logprobs\":");
    } else {
        sb_puts(o, "\"text\":");
        sb_json_str(o, txt, n);
        sb_puts(o, ",\"logprobs\":");
    }
    chunk_logprobs(j, c, o);
    sb_puts(o, ",\"finish_reason\":");
    if (finish) sb_printf(o, "\"%s\"", fin_name(finish));
    else sb_puts(o, "null");
    if (j->p.return_token_ids) {
        if (!c->started) {
            sb_puts(o, ",\"prompt_token_ids\":");
            ids_json(o, j->prompt_ids[c->prompt_idx], j->prompt_n[c->prompt_idx]);
        }
        sb_puts(o, ",\"token_ids\":[");
        int k = 0;
        for (int i = 0; i < c->n_pend; i++)
            if (c->pend[i].ev.kind == EV_TOKEN)
                sb_printf(o, k++ ? ",%d" : "%d", (int)c->pend[i].ev.token);
        sb_puts(o, "]");
    }
    sb_puts(o, "}]}\n\n");
    c->started = 1;
    c->n_pend = 0;
    c->emitted = c->text.len;
}

/* cached_tokens (OpenAI's prompt_tokens_details): prompt tokens not recomputed, from a kept
 * session or, with n > 1, forked from the prompt's first choice.  prompt_tokens counts each
 * prompt once while every forked choice reuses it, so the count stops at prompt_tokens. */
static void usage_json(srv_job *j, sbuf *o) {
    long cached = atomic_load_explicit(&j->reused_tokens, memory_order_relaxed);
    if (cached > j->prompt_tokens) cached = j->prompt_tokens;
    sb_printf(o, "\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"total_tokens\":%ld,"
                 "\"prompt_tokens_details\":{\"cached_tokens\":%ld}}",
              j->prompt_tokens, j->completion_tokens, j->prompt_tokens + j->completion_tokens,
              cached);
}

static void finish_stream(srv_job *j) {
    if (j->err.status) {
        /* an error after the stream began: tell the client in-band, as vLLM does */
        sb_puts(&j->out, "data: ");
        srv_error_json(&j->out, &j->err);
        sb_puts(&j->out, "\n\n");
    } else if (j->p.include_usage) {
        chunk_head(j, &j->out);
        sb_puts(&j->out, "],");
        usage_json(j, &j->out);
        sb_puts(&j->out, "}\n\n");
    }
    sb_puts(&j->out, "data: [DONE]\n\n");
    j->stream_finished = 1;
}

static void on_token(srv_job *j, const srv_event *ev) {
    srv_choice *c = &j->choices[ev->choice];
    if (c->finish) return; /* after a stop string: discard */
    if (j->t_first == 0) {
        j->t_first = srv_now();
        srv_hist_observe(&j->srv->metrics.ttft, j->t_first - j->t_start);
    }
    if (c->n_ids == c->cap_ids) {
        int cap = c->cap_ids ? c->cap_ids * 2 : 16;
        int32_t *p = realloc(c->ids, sizeof(int32_t) * (size_t)cap);
        if (!p) {
            j->out.oom = 1;
            return;
        }
        c->ids = p;
        c->cap_ids = cap;
    }
    c->ids[c->n_ids++] = ev->token;
    j->completion_tokens++;
    if (j->p.stream) pend_token(j, c, ev);
    else if (j->p.logprobs >= 0) add_logprobs(j, c, ev);
    const char *t = NULL;
    size_t n = 0;
    if (c->ds && rosa_detok_stream_push(c->ds, ev->token, &t, &n) != 0) n = 0;
    commit_text(j, c, ev->choice, t, n, 0);
    if (j->p.stream) emit_chunk(j, ev->choice, c->finish);
}

static void on_done(srv_job *j, const srv_event *ev) {
    srv_choice *c = &j->choices[ev->choice];
    if (c->engine_done) return;
    c->engine_done = 1;
    j->n_done++;
    if (!c->finish) {
        const char *t = NULL;
        size_t n = 0;
        if (c->ds && rosa_detok_stream_flush(c->ds, &t, &n) != 0) n = 0;
        commit_text(j, c, ev->choice, t, n, 1);
        if (!c->finish) c->finish = ev->finish == FIN_STOP ? FIN_STOP : FIN_LENGTH;
        if (j->p.stream && ev->finish != FIN_ERROR && ev->finish != FIN_CANCEL)
            emit_chunk(j, ev->choice, c->finish);
    }
}

void srv_job_process(srv_job *j, const srv_event *ev, int n) {
    if (j->ended) return; /* answered by srv_job_end_now */
    size_t held = srv_out_held(j);
    for (int i = 0; i < n; i++) {
        const srv_event *e = &ev[i];
        if (e->choice < 0 || e->choice >= j->n_choices) continue;
        if (j->too_big && (e->kind == EV_TOKEN || e->kind == EV_PROMPT_LP)) continue;
        switch (e->kind) {
        case EV_PROMPT_LP: /* echo + logprobs: streamed with the echoed text */
            if (j->p.stream) pend_token(j, &j->choices[e->choice], e);
            else add_logprobs(j, &j->choices[e->choice], e);
            break;
        case EV_TOKEN: on_token(j, e); break;
        case EV_ERROR: break; /* message already in j->err */
        case EV_DONE: on_done(j, e); break;
        }
    }
    srv_out_grew(j, held);
    if (j->n_done == j->n_choices && j->state == JOB_RUNNING) {
        j->state = JOB_DONE;
        srv_chat_prepare_job_done(j); /* a chat session: ready it for the next turn */
        if (j->p.stream) finish_stream(j);
    }
}

static void logprobs_json(srv_job *j, srv_choice *c, sbuf *o) {
    if (j->p.logprobs < 0) {
        sb_puts(o, "null");
    } else if (j->p.kind == SRV_CHAT) {
        sb_puts(o, "{\"content\":[");
        sb_put(o, c->lp_json.p, c->lp_json.len);
        sb_puts(o, "]}");
    } else {
        sb_puts(o, "{\"tokens\":[");
        sb_put(o, c->lp_tokens.p, c->lp_tokens.len);
        sb_puts(o, "],\"token_logprobs\":[");
        sb_put(o, c->lp_values.p, c->lp_values.len);
        sb_puts(o, "],\"top_logprobs\":[");
        sb_put(o, c->lp_tops.p, c->lp_tops.len);
        sb_puts(o, "],\"text_offset\":[");
        sb_put(o, c->lp_offsets.p, c->lp_offsets.len);
        sb_puts(o, "]}");
    }
}

void srv_job_result_json(srv_job *j, sbuf *o) {
    int chat = j->p.kind == SRV_CHAT;
    sb_printf(o, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":", j->id,
              chat ? "chat.completion" : "text_completion", j->created);
    sb_json_str(o, j->srv->model_id, strlen(j->srv->model_id));
    sb_puts(o, ",\"choices\":[");
    for (int i = 0; i < j->n_choices; i++) {
        srv_choice *c = &j->choices[i];
        if (i) sb_puts(o, ",");
        sb_printf(o, "{\"index\":%d,", i);
        const char *txt = c->text.p ? c->text.p : "";
        if (chat) {
            sb_puts(o, "\"message\":{\"role\":\"assistant\",\"content\":");
            sb_json_str(o, txt, c->text.len);
            sb_puts(o, "}");
        } else {
            sb_puts(o, "\"text\":");
            if (j->p.echo) {
                sbuf both = {0};
                int pi = c->prompt_idx;
                sb_put(&both, j->prompt_text[pi], j->prompt_text_len[pi]);
                sb_put(&both, txt, c->text.len);
                sb_json_str(o, both.p ? both.p : "", both.len);
                sb_free(&both);
            } else {
                sb_json_str(o, txt, c->text.len);
            }
        }
        sb_puts(o, ",\"logprobs\":");
        logprobs_json(j, c, o);
        sb_printf(o, ",\"finish_reason\":\"%s\"", fin_name(c->finish));
        if (j->p.return_token_ids) {
            sb_puts(o, ",\"prompt_token_ids\":");
            ids_json(o, j->prompt_ids[c->prompt_idx], j->prompt_n[c->prompt_idx]);
            sb_puts(o, ",\"token_ids\":");
            ids_json(o, c->ids, c->n_ids);
        }
        sb_puts(o, "}");
    }
    sb_puts(o, "],");
    usage_json(j, o);
    sb_puts(o, "}");
}

void srv_job_stream_echo(srv_job *j) {
    /* completions with echo + stream: the prompt text goes out first, as OpenAI does; with
     * logprobs it waits for the prompt's log-probabilities and goes out with the first token */
    if (j->p.kind != SRV_COMPLETION || !j->p.echo) return;
    size_t held = srv_out_held(j);
    for (int i = 0; i < j->n_choices; i++) {
        srv_choice *c = &j->choices[i];
        sb_put(&c->text, j->prompt_text[c->prompt_idx], j->prompt_text_len[c->prompt_idx]);
        if (j->p.logprobs < 0) emit_chunk(j, i, 0);
    }
    srv_out_grew(j, held);
}

void srv_job_end_now(srv_job *j, int status, const char *msg) {
    if (j->completed || j->ended || j->state == JOB_DONE || j->state == JOB_ERROR) return;
    pthread_mutex_lock(&j->mu);
    if (!j->err.status) srv_fail(&j->err, status, NULL, "%s", msg);
    pthread_mutex_unlock(&j->mu);
    j->ended = 1;
    if (j->kind == JOBK_GEN && j->p.stream && j->stream_response) {
        if (!j->stream_finished) finish_stream(j);
        j->state = JOB_DONE;
    } else {
        j->state = JOB_ERROR; /* the access handler sends j->err once resumed */
    }
    srv_job_resume(j);
}
