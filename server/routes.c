/* routes.c: the endpoints.  Small ones answer at once on the loop thread; generation and
 * (de)tokenisation parse on the loop, then run their text work (chat formatting, tokenising a
 * possibly huge prompt) on the libuv thread pool while the connection is suspended, and come
 * back in after_prepare to be admitted to the engine. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_thread.h"
#include "http.h"
#include "log.h"
#include "outflow.h"
#include "respond.h"
#include "sessions.h"

static srv_error *fail(srv_error *e, int status, const char *param, const char *msg) {
    srv_fail(e, status, param, "%s", msg);
    return e;
}

/* ---------------------------------------------------------------- small endpoints */

static enum MHD_Result send_sbuf(srv_server *s, struct MHD_Connection *c, int status,
                                 const char *ctype, sbuf *b) {
    enum MHD_Result rc;
    if (b->oom) {
        srv_error e;
        rc = srv_send_error(s, c, fail(&e, 500, NULL, "out of memory"));
    } else {
        rc = srv_send(s, c, status, ctype, b->p ? b->p : "", b->len);
    }
    sb_free(b);
    return rc;
}

static void model_json(srv_server *s, sbuf *o) {
    const rosa_model_info *i = s->info;
    sb_puts(o, "{\"id\":");
    sb_json_str(o, s->model_id, strlen(s->model_id));
    sb_printf(o, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"rosa-serve\"",
              (long)s->started);
    if (i) {
        int win = 0, glob = 0;
        for (int l = 0; l < i->layers; l++) {
            if (i->layer_window[l] == 0) glob++;
            else win = i->layer_window[l];
        }
        sb_printf(o, ",\"max_model_len\":%d,\"vocab_size\":%d,\"layers\":%d,\"hidden_size\":%d,"
                     "\"attention_window\":%d,\"global_layers\":%d,\"rosa\":{\"layers\":%d,"
                     "\"bits_per_route\":%d,\"routes\":%d,\"inject_mode\":\"%s\"},"
                     "\"backend\":\"%s\",\"weight_dtype\":\"%s\",\"rollback_tokens\":%d,\"tokenizer\":%s",
                  i->max_positions, i->vocab, i->layers, i->hidden, win, glob, i->n_rosa_layers,
                  i->bits_per_route, i->routes,
                  i->inject_mode == ROSA_INJECT_PRE_ATTN ? "pre_attn" : "post_attn", i->backend,
                  i->weight_dtype, i->rollback_tokens, s->tok ? "true" : "false");
        const rosa_rope_info *r = &i->rope;
        sb_printf(o, ",\"rope\":{\"type\":\"%s\",\"theta\":%.9g,\"factor\":%.9g", r->type, r->theta, r->factor);
        if (!strcmp(r->type, "yarn"))
            sb_printf(o, ",\"original_max_position_embeddings\":%d,\"attention_factor\":%.9g,\"beta_fast\":%.9g,"
                         "\"beta_slow\":%.9g,\"truncate\":%s",
                      r->original_max_positions, r->attention_factor, r->beta_fast, r->beta_slow,
                      r->truncate ? "true" : "false");
        sb_puts(o, "}");
    }
    sb_puts(o, "}");
}

static int authorized(srv_server *s, struct MHD_Connection *c) {
    const char *owner;
    return srv_auth_check(&s->auth, c, &owner);
}

/* The sessions table key of a session id: "owner/id" for a key with an owner (ids hold no
 * '/', so owners never meet), else the id itself.  NULL when out of memory. */
static char *sess_key(const char *owner, const char *id) {
    size_t n = strlen(owner) + strlen(id) + 2;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s%s%s", owner, *owner ? "/" : "", id);
    return k;
}

static int body_route(const char *url) {
    return !strcmp(url, "/v1/completions") || !strcmp(url, "/v1/chat/completions") ||
           !strcmp(url, "/tokenize") || !strcmp(url, "/detokenize");
}

int srv_route_wants_body(srv_server *s, struct MHD_Connection *c, const char *url,
                         const char *method) {
    return !strcmp(method, "POST") && body_route(url) && authorized(s, c) &&
           !s->shutting_down && atomic_load(&s->ready) == 1;
}

/* ---------------------------------------------------------------- job preparation */

static int prepare_gen(srv_job *j) {
    srv_server *s = j->srv;
    srv_params *p = &j->p;
    srv_error *e = &j->err;
    int np = p->kind == SRV_CHAT ? 1 : p->n_prompts;
    j->prompt_ids = calloc((size_t)np, sizeof *j->prompt_ids);
    j->prompt_n = calloc((size_t)np, sizeof *j->prompt_n);
    j->prompt_text = calloc((size_t)np, sizeof *j->prompt_text);
    j->prompt_text_len = calloc((size_t)np, sizeof *j->prompt_text_len);
    if (!j->prompt_ids || !j->prompt_n || !j->prompt_text || !j->prompt_text_len)
        return srv_fail(e, 500, NULL, "out of memory");
    j->n_prompts = np;
    for (int i = 0; i < np; i++) {
        const char *text = NULL;
        size_t tlen = 0;
        char *chat = NULL;
        unsigned char *markup = NULL; /* chat: where the template's own markup is */
        if (p->kind == SRV_CHAT) {
            if (!s->tok) return srv_fail(e, 400, "messages", "chat needs a tokenizer; this "
                                                             "server has none (see --tokenizer)");
            rosa_chat_msg *m = calloc((size_t)p->n_msgs, sizeof *m);
            if (!m) return srv_fail(e, 500, NULL, "out of memory");
            for (int k = 0; k < p->n_msgs; k++) {
                m[k].role = p->msgs[k].role;
                m[k].content = p->msgs[k].content;
            }
            rosa_chat_opts o = {1, p->enable_thinking};
            int rc = s->cfg.chat_special_tokens
                         ? rosa_chat_format(s->tok, m, p->n_msgs, &o, &chat, &tlen)
                         : rosa_chat_format_marked(s->tok, m, p->n_msgs, &o, &chat, &tlen, &markup);
            free(m);
            if (rc) return srv_fail(e, 400, "messages", "cannot format messages: %s",
                                    rosa_strerror(rc));
            text = chat;
        } else if (p->prompts[i].text) {
            text = p->prompts[i].text;
            tlen = p->prompts[i].text_len;
        }
        if (text) {
            size_t n = 0;
            /* chat content is plain text (only the template's markup is special, unless
             * --chat-special-tokens); completions prompts parse special tokens unless
             * "add_special_tokens": false */
            int rc = !s->tok ? ROSA_ERR_UNSUPPORTED
                     : markup ? rosa_tokenize_marked(s->tok, text, tlen, markup,
                                                     &j->prompt_ids[i], &n)
                              : rosa_tokenize(s->tok, text, tlen,
                                              p->kind == SRV_CHAT || p->parse_special,
                                              &j->prompt_ids[i], &n);
            free(markup);
            if (rc) {
                free(chat);
                return rc == ROSA_ERR_UNSUPPORTED
                           ? srv_fail(e, 400, "prompt", "text prompts need a tokenizer; send "
                                                        "token ids or start with --tokenizer")
                           : srv_fail(e, 500, "prompt", "tokenizer: %s", rosa_strerror(rc));
            }
            j->prompt_n[i] = (int)(n > INT32_MAX ? INT32_MAX : n);
            j->prompt_text[i] = chat ? chat : strdup(text);
            j->prompt_text_len[i] = tlen;
            if (!j->prompt_text[i]) return srv_fail(e, 500, NULL, "out of memory");
        } else {
            srv_prompt *pr = &p->prompts[i];
            j->prompt_ids[i] = pr->ids;
            j->prompt_n[i] = pr->n_ids;
            pr->ids = NULL;
            pr->n_ids = 0;
            if (s->tok && p->echo) {
                rosa_detokenize(s->tok, j->prompt_ids[i], (size_t)j->prompt_n[i], 0,
                                &j->prompt_text[i], &j->prompt_text_len[i]);
            }
            if (!j->prompt_text[i]) j->prompt_text[i] = strdup("");
        }
        if (j->prompt_n[i] == 0) return srv_fail(e, 400, "prompt", "the prompt has no tokens");
        /* ids given by the client, or produced by a tokenizer larger than the model */
        for (int k = 0; k < j->prompt_n[i]; k++)
            if (j->prompt_ids[i][k] >= s->info->vocab)
                return srv_fail(e, 400, p->kind == SRV_CHAT ? "messages" : "prompt",
                                "token id %d is out of range [0, %d) of the model%s",
                                j->prompt_ids[i][k], s->info->vocab,
                                text ? " (the tokenizer's vocabulary is larger)" : "");
        if (j->prompt_n[i] > s->cfg.max_prompt_tokens)
            return srv_fail(e, 400, p->kind == SRV_CHAT ? "messages" : "prompt",
                            "the prompt has %d tokens, more than --max-prompt-tokens (%d)",
                            j->prompt_n[i], s->cfg.max_prompt_tokens);
        if (s->info->max_positions > 0 && j->prompt_n[i] >= s->info->max_positions)
            return srv_fail(e, 400, "prompt", "the prompt has %d tokens; the model's context is %d",
                            j->prompt_n[i], s->info->max_positions);
        j->prompt_tokens += j->prompt_n[i];
    }
    return 0;
}

static void prepare_tok(srv_job *j, int detok) {
    srv_server *s = j->srv;
    srv_tok_req r;
    if (srv_parse_tok_request(j->body, j->body_len, detok, s->cfg.max_prompt_tokens, &r, &j->err))
        return;
    sbuf *o = &j->out;
    if (r.model && strcmp(r.model, s->model_id)) {
        srv_fail(&j->err, 404, "model", "The model '%.100s' does not exist; this server serves "
                 "'%s'", r.model, s->model_id);
        snprintf(j->err.code, sizeof j->err.code, "model_not_found");
    } else if (!s->tok) {
        srv_fail(&j->err, 400, NULL, "this server has no tokenizer (see --tokenizer)");
    } else if (detok) {
        char *text = NULL;
        size_t len = 0;
        int rc = rosa_detokenize(s->tok, r.ids, (size_t)r.n_ids, r.skip_special, &text, &len);
        if (rc) {
            srv_fail(&j->err, 400, "tokens", "cannot detokenize: %s", rosa_strerror(rc));
        } else {
            sb_puts(o, "{\"prompt\":");
            sb_json_str(o, text, len);
            sb_puts(o, "}");
        }
        free(text);
    } else {
        int32_t *ids = NULL;
        size_t n = 0;
        int rc = rosa_tokenize(s->tok, r.text, r.text_len, r.add_special, &ids, &n);
        if (rc) {
            srv_fail(&j->err, 500, NULL, "tokenizer: %s", rosa_strerror(rc));
        } else {
            sb_printf(o, "{\"count\":%zu,\"max_model_len\":%d,\"tokens\":[", n,
                      s->info->max_positions);
            for (size_t i = 0; i < n; i++) sb_printf(o, i ? ",%d" : "%d", (int)ids[i]);
            sb_puts(o, "]}");
        }
        free(ids);
    }
    srv_tok_req_free(&r);
}

static void work_prepare(uv_work_t *w) {
    srv_job *j = w->data;
    if (j->kind == JOBK_GEN) prepare_gen(j);
    else prepare_tok(j, j->kind == JOBK_DETOKENIZE);
}

static int init_choices(srv_job *j) {
    srv_server *s = j->srv;
    int n = j->n_prompts * j->p.n;
    j->choices = calloc((size_t)n, sizeof *j->choices);
    j->choice_stop = calloc((size_t)n, sizeof *j->choice_stop);
    if (!j->choices || !j->choice_stop) return -1;
    j->n_choices = n;
    for (int i = 0; i < n; i++) {
        j->choices[i].prompt_idx = i / j->p.n;
        if (s->tok && !(j->choices[i].ds = rosa_detok_stream_new(s->tok, 1))) return -1;
    }
    if (!j->p.ignore_eos)
        for (int i = 0; i < s->n_eos; i++) j->stop_ids[j->n_stop_ids++] = s->eos_ids[i];
    if (j->p.kind == SRV_CHAT)
        for (int i = 0; i < s->n_chat_stop && j->n_stop_ids < 16; i++)
            j->stop_ids[j->n_stop_ids++] = s->chat_stop_ids[i];
    return 0;
}

/* Refuse at once (413) a request whose session state must outgrow --max-session-bytes: the
 * attention caches of its global layers alone (at 2 bytes per element), for prompt + max_tokens,
 * exceed it.  (ROSA state
 * is not predictable in advance; the engine checks the real size as the request runs.) */
static void check_state_budget(srv_job *j) {
    const srv_server *s = j->srv;
    size_t budget = s->cfg.max_session_bytes;
    if (!budget || !s->kv_bytes_per_token) return;
    /* choices that run side by side (all of them when they fit in one batch) add up */
    int together = j->n_choices <= s->cfg.max_batch;
    double sum = 0;
    for (int i = 0; i < j->n_prompts; i++) {
        double toks = (double)j->prompt_n[i] + (j->p.max_tokens > 0 ? j->p.max_tokens : 0);
        double need = toks * (double)s->kv_bytes_per_token;
        sum += need * j->p.n;
        if (together && sum > (double)budget && need <= (double)budget) {
            srv_fail(&j->err, 413, "n", "the request's %d choices need at least %.0f bytes of "
                     "attention cache together, more than --max-session-bytes (%zu)",
                     j->n_choices, sum, budget);
            return;
        }
        if (need > (double)budget) {
            srv_fail(&j->err, 413, j->p.max_tokens > 0 ? "max_tokens" : "prompt",
                     "prompt + max_tokens (%.0f tokens) need at least %.0f bytes of attention "
                     "cache, more than --max-session-bytes (%zu)", toks, need, budget);
            return;
        }
    }
}

static void after_prepare(uv_work_t *w, int status) {
    srv_job *j = w->data;
    srv_server *s = j->srv;
    free(w);
    free(j->body);
    j->body = NULL;
    if (j->completed || j->state != JOB_PREPARING) { /* the client left, or was answered
                                                         (shutdown) meanwhile */
        srv_job_unref(j);
        return;
    }
    if (!j->err.status && j->kind != JOBK_GEN) {
        j->state = JOB_DONE;
    } else if (!j->err.status) {
        if (init_choices(j)) srv_fail(&j->err, 500, NULL, "out of memory");
        else srv_out_check_request(j);
    }
    if (!j->err.status && j->kind == JOBK_GEN && j->p.session_id) {
        int busy = 0;
        j->sess_entry = srv_sessions_acquire(s->sessions, j->p.session_id, &busy, srv_now());
        if (j->sess_entry) j->sess_turn = j->sess_entry->turn; /* written by the loop only */
        if (!j->sess_entry && busy)
            srv_fail(&j->err, 409, "session_id", "session '%.128s' is in use by another request",
                     j->p.session_id);
        else if (!j->sess_entry)
            srv_fail(&j->err, 429, "session_id", "all %d sessions (--max-sessions) are in use by "
                     "running requests", s->cfg.max_sessions);
    }
    if (!j->err.status && j->kind == JOBK_GEN) check_state_budget(j);
    if (!j->err.status && s->shutdown_phase >= SRV_PHASE_CANCELLED) /* grace over */
        srv_fail(&j->err, 503, NULL, "the server is shutting down");
    if (!j->err.status && j->kind == JOBK_GEN) {
        int rc = srv_engine_submit(s->engine, j);
        if (rc) {
            if (j->sess_entry) { /* (the engine thread may be preparing it: chat_prepare.c) */
                srv_sessions_unreserve(s->sessions, j->sess_entry, srv_now());
                j->sess_entry = NULL;
            }
            srv_fail(&j->err, rc == -1 ? 429 : 500, NULL,
                     rc == -1 ? "the server is busy: %d requests are waiting (--max-queue)"
                              : "out of memory %.0d",
                     s->cfg.max_queue);
        } else {
            atomic_fetch_add_explicit(&s->metrics.prompt_tokens, (unsigned long long)j->prompt_tokens,
                                      memory_order_relaxed);
            j->state = JOB_RUNNING;
            if (j->p.stream) srv_job_stream_echo(j);
        }
    }
    if (j->err.status) j->state = JOB_ERROR;
    if (j->state != JOB_RUNNING || j->p.stream) srv_job_resume(j);
    srv_job_unref(j);
    srv_pump(s);
}

static srv_job *job_new(srv_server *s, struct MHD_Connection *c, srv_conn *cc, int kind) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    atomic_init(&j->refs, 1);
    pthread_mutex_init(&j->mu, NULL);
    j->srv = s;
    j->conn = c;
    j->kind = kind;
    j->t_start = srv_now();
    j->created = (long)time(NULL);
    static unsigned long counter;
    snprintf(j->id, sizeof j->id, "%s-%lx%06lx", "cmpl", (unsigned long)j->created, ++counter);
    cc->job = j;
    j->lnext = s->live;
    if (s->live) s->live->lprev = j;
    s->live = j;
    return j;
}

static enum MHD_Result start_job(srv_server *s, struct MHD_Connection *c, srv_job *j,
                                 srv_conn *cc) {
    uv_work_t *w = calloc(1, sizeof *w);
    if (!w) {
        srv_error e;
        return srv_send_error(s, c, fail(&e, 500, NULL, "out of memory"));
    }
    /* the body moves to the job: the pool thread reads it */
    j->body = cc->body.p;
    j->body_len = cc->body.len;
    cc->body.p = NULL;
    cc->body.len = cc->body.cap = 0;
    w->data = srv_job_ref(j);
    if (uv_queue_work(s->loop, w, work_prepare, after_prepare)) {
        free(w);
        srv_job_unref(j);
        srv_error e;
        return srv_send_error(s, c, fail(&e, 500, NULL, "cannot queue work"));
    }
    srv_job_suspend(j);
    return MHD_YES;
}

static enum MHD_Result generate(srv_server *s, struct MHD_Connection *c, srv_conn *cc,
                                srv_kind kind, const char *owner) {
    srv_limits lim;
    srv_limits_default(&lim);
    lim.max_n = s->cfg.max_n;
    lim.max_tokens = s->cfg.max_tokens;
    lim.max_prompt_tokens = s->cfg.max_prompt_tokens;
    lim.vocab = s->info->vocab;
    srv_params p;
    srv_error e;
    if (srv_parse_request(cc->body.p ? cc->body.p : "", cc->body.len, kind, &lim, &p, &e))
        return srv_send_error(s, c, &e);
    if (p.model && strcmp(p.model, s->model_id)) {
        srv_fail(&e, 404, "model", "The model '%.100s' does not exist; this server serves '%s'",
                 p.model, s->model_id);
        e.code[0] = 0;
        snprintf(e.code, sizeof e.code, "model_not_found");
        srv_params_free(&p);
        return srv_send_error(s, c, &e);
    }
    if (!p.session_id) {
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Session-Id");
        if (h) { /* the body field's rules, checked by the same function */
            const char *why = !srv_valid_session_id(h) ? "X-Session-Id must be 1-128 characters "
                                                          "of [A-Za-z0-9._:-]"
                              : p.n != 1 || p.n_prompts > 1 ? "sessions need n = 1 and a single "
                                                              "prompt"
                                                            : NULL;
            if (why || !(p.session_id = strdup(h))) {
                srv_params_free(&p);
                return srv_send_error(s, c, fail(&e, why ? 400 : 500, "X-Session-Id",
                                                 why ? why : "out of memory"));
            }
        }
    }
    if (p.session_id && *owner) { /* the key's own namespace */
        char *k = sess_key(owner, p.session_id);
        free(p.session_id);
        p.session_id = k;
        if (!k) {
            srv_params_free(&p);
            return srv_send_error(s, c, fail(&e, 500, NULL, "out of memory"));
        }
    }
    srv_job *j = job_new(s, c, cc, JOBK_GEN);
    if (!j) {
        srv_params_free(&p);
        return srv_send_error(s, c, fail(&e, 500, NULL, "out of memory"));
    }
    if (kind == SRV_CHAT) { /* "cmpl-..." -> "chatcmpl-..." */
        char tail[sizeof j->id];
        snprintf(tail, sizeof tail, "%s", j->id + 4);
        snprintf(j->id, sizeof j->id, "chatcmpl%.39s", tail);
    }
    j->p = p;
    return start_job(s, c, j, cc);
}

/* ---------------------------------------------------------------- routing */

enum MHD_Result srv_route(srv_server *s, struct MHD_Connection *c, srv_conn *cc, const char *url,
                          const char *method) {
    srv_error e;
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    int del = !strcmp(method, "DELETE");
    if (!strcmp(url, "/health")) {
        if (!get) goto bad_method;
        int r = atomic_load(&s->ready);
        if (s->shutting_down) return srv_send(s, c, 503, "application/json",
                                              "{\"status\":\"shutting_down\"}", 26);
        if (r == 1) return srv_send(s, c, 200, "application/json", "{\"status\":\"ok\"}", 15);
        if (r == 0) return srv_send(s, c, 503, "application/json", "{\"status\":\"loading\"}", 20);
        return srv_send_error(s, c, fail(&e, 503, NULL, s->load_error));
    }
    if (!strcmp(url, "/metrics")) {
        if (!get) goto bad_method;
        if (!srv_auth_metrics(&s->auth, c)) {
            srv_fail(&e, 401, NULL, "/metrics needs the metrics key (--metrics-key)");
            snprintf(e.code, sizeof e.code, "invalid_api_key");
            return srv_send_error(s, c, &e);
        }
        sbuf b = {0};
        srv_metrics_render(&s->metrics, &b);
        return send_sbuf(s, c, 200, "text/plain; version=0.0.4", &b);
    }
    int known = !strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11) ||
                !strcmp(url, "/v1/completions") || !strcmp(url, "/v1/chat/completions") ||
                !strcmp(url, "/tokenize") || !strcmp(url, "/detokenize") ||
                !strcmp(url, "/v1/sessions") || !strncmp(url, "/v1/sessions/", 13);
    if (!known) {
        srv_fail(&e, 404, NULL, "no route %.100s %.200s", method, url);
        return srv_send_error(s, c, &e);
    }
    const char *owner = "";
    if (!srv_auth_check(&s->auth, c, &owner)) {
        e.code[0] = 0;
        srv_fail(&e, 401, NULL, "invalid or missing API key (Authorization: Bearer ...)");
        snprintf(e.code, sizeof e.code, "invalid_api_key");
        return srv_send_error(s, c, &e);
    }
    if (s->shutting_down) return srv_send_error(s, c, fail(&e, 503, NULL, "the server is shutting down"));
    if (atomic_load(&s->ready) != 1)
        return srv_send_error(s, c, fail(&e, 503, NULL, atomic_load(&s->ready) == 0
                                                            ? "the model is loading"
                                                            : s->load_error));
    if (!strcmp(url, "/v1/models")) {
        if (!get) goto bad_method;
        sbuf b = {0};
        sb_puts(&b, "{\"object\":\"list\",\"data\":[");
        model_json(s, &b);
        sb_puts(&b, "]}");
        return send_sbuf(s, c, 200, "application/json", &b);
    }
    if (!strncmp(url, "/v1/models/", 11)) {
        if (!get) goto bad_method;
        if (strcmp(url + 11, s->model_id))
            return srv_send_error(s, c, fail(&e, 404, "model", "no such model"));
        sbuf b = {0};
        model_json(s, &b);
        return send_sbuf(s, c, 200, "application/json", &b);
    }
    if (!strcmp(url, "/v1/completions") || !strcmp(url, "/v1/chat/completions")) {
        if (!post) goto bad_method;
        return generate(s, c, cc, url[4] == 'c' && url[5] == 'h' ? SRV_CHAT : SRV_COMPLETION,
                        owner);
    }
    if (!strcmp(url, "/tokenize") || !strcmp(url, "/detokenize")) {
        if (!post) goto bad_method;
        srv_job *j = job_new(s, c, cc, url[1] == 'd' ? JOBK_DETOKENIZE : JOBK_TOKENIZE);
        if (!j) return srv_send_error(s, c, fail(&e, 500, NULL, "out of memory"));
        return start_job(s, c, j, cc);
    }
    if (!strcmp(url, "/v1/sessions")) {
        if (!get) goto bad_method;
        sbuf b = {0};
        srv_sessions_list(s->sessions, &b, srv_now(), owner);
        return send_sbuf(s, c, 200, "application/json", &b);
    }
    if (!strncmp(url, "/v1/sessions/", 13)) {
        if (!del) goto bad_method;
        if (!srv_valid_session_id(url + 13)) /* no '/': never another owner's session */
            return srv_send_error(s, c, fail(&e, 404, "session_id", "no such session"));
        char *key = sess_key(owner, url + 13);
        int rc = key ? srv_sessions_delete(s->sessions, key) : -3;
        free(key);
        if (rc == -3) return srv_send_error(s, c, fail(&e, 500, NULL, "out of memory"));
        if (rc == -1) return srv_send_error(s, c, fail(&e, 404, "session_id", "no such session"));
        if (rc == -2)
            return srv_send_error(s, c, fail(&e, 409, "session_id", "the session is in use"));
        if (s->engine) srv_engine_poke(s->engine);
        sbuf b = {0};
        sb_puts(&b, "{\"id\":");
        sb_json_str(&b, url + 13, strlen(url + 13));
        sb_puts(&b, ",\"object\":\"session\",\"deleted\":true}");
        return send_sbuf(s, c, 200, "application/json", &b);
    }
bad_method:
    srv_fail(&e, 405, NULL, "method %.20s is not allowed on %.200s", method, url);
    return srv_send_error(s, c, &e);
}

/* ---------------------------------------------------------------- SSE response */

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    srv_job *j = cls;
    if (j->out.len > j->out_off) {
        size_t n = j->out.len - j->out_off;
        if (n > max) n = max;
        memcpy(buf, j->out.p + j->out_off, n);
        j->out_off += n;
        if (j->out_off == j->out.len) j->out.len = j->out_off = 0;
        srv_out_drained(j);
        return (ssize_t)n;
    }
    if (j->stream_finished) return MHD_CONTENT_READER_END_OF_STREAM;
    if (atomic_load(&j->cancel) == SRV_CANCEL_GONE || j->out.oom)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    srv_job_suspend(j);
    return 0;
}

static void sse_free(void *cls) { srv_job_unref(cls); }

enum MHD_Result srv_route_resume(srv_server *s, struct MHD_Connection *c, srv_conn *cc) {
    srv_job *j = cc->job;
    switch (j->state) {
    case JOB_ERROR: return srv_send_error(s, c, &j->err);
    case JOB_PREPARING: srv_job_suspend(j); return MHD_YES;
    case JOB_RUNNING:
    case JOB_DONE:
        if (j->kind != JOBK_GEN) return send_sbuf(s, c, 200, "application/json", &j->out);
        if (j->p.stream) {
            if (j->stream_response) return MHD_YES;
            struct MHD_Response *r =
                MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read,
                                                  srv_job_ref(j), sse_free);
            if (!r) {
                srv_job_unref(j);
                return MHD_NO;
            }
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
            MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
            MHD_add_response_header(r, SRV_REPLICA_HEADER, s->replica_id);
            j->stream_response = 1;
            enum MHD_Result rc = MHD_queue_response(c, 200, r);
            MHD_destroy_response(r);
            srv_metrics_count_status(&s->metrics, 200);
            return rc;
        }
        if (j->state == JOB_RUNNING) {
            if (atomic_load(&j->cancel) == SRV_CANCEL_GONE) return MHD_NO;
            srv_job_suspend(j);
            return MHD_YES;
        }
        if (j->err.status) return srv_send_error(s, c, &j->err);
        sbuf b = {0};
        srv_job_result_json(j, &b);
        return send_sbuf(s, c, 200, "application/json", &b);
    }
    return MHD_NO;
}
