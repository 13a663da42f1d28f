/* chat_prepare.c: after a chat turn, the next turn's view of the conversation is rendered and
 * tokenized on the libuv pool (loop side) and fed into the kept session by the engine thread
 * while it is idle (engine side).  See chat_prepare.h. */
#include "chat_prepare.h"

#include <stdlib.h>
#include <string.h>

#include "engine_thread.h"
#include "log.h"
#include "sessions.h"

void srv_prep_free(srv_prep *p) {
    if (!p) return;
    free(p->toks);
    free(p);
}

/* ---------------------------------------------------------------- loop + pool */

typedef struct prep_work {
    uv_work_t req;
    srv_job *job;          /* a reference: its messages are read on the pool */
    char *answer;          /* the answer's text as the client received it */
    srv_prep *out;         /* the result, NULL when there is nothing to prepare */
} prep_work;

static const char IM_START[] = "<|im_start|>";

/* Pool thread: messages + the answer + a placeholder user turn, rendered as a request would be;
 * the tokens before the placeholder's "<|im_start|>" are the next prompt's start. */
static void work_render(uv_work_t *req) {
    prep_work *w = req->data;
    srv_job *j = w->job;
    srv_server *s = j->srv;
    const srv_params *p = &j->p;
    int n = p->n_msgs + 2;
    rosa_chat_msg *m = calloc((size_t)n, sizeof *m);
    if (!m) return;
    for (int k = 0; k < p->n_msgs; k++) {
        m[k].role = p->msgs[k].role;
        m[k].content = p->msgs[k].content;
    }
    m[n - 2].role = "assistant";
    m[n - 2].content = w->answer;
    m[n - 1].role = "user";
    m[n - 1].content = "x";
    rosa_chat_opts o = {0, p->enable_thinking};
    char *text = NULL;
    unsigned char *markup = NULL;
    size_t len = 0;
    int rc = s->cfg.chat_special_tokens
                 ? rosa_chat_format(s->tok, m, n, &o, &text, &len)
                 : rosa_chat_format_marked(s->tok, m, n, &o, &text, &len, &markup);
    free(m);
    size_t cut = 0; /* the last "<|im_start|>": the placeholder's (its content is "x") */
    for (size_t i = 0; rc == 0 && i + sizeof IM_START - 1 <= len; i++)
        if (!memcmp(text + i, IM_START, sizeof IM_START - 1)) cut = i;
    int32_t *ids = NULL;
    size_t nid = 0;
    if (rc == 0 && cut > 0 && (!markup || markup[cut]))
        rc = markup ? rosa_tokenize_marked(s->tok, text, cut, markup, &ids, &nid)
                    : rosa_tokenize(s->tok, text, cut, 1, &ids, &nid);
    free(text);
    free(markup);
    /* the next request would be refused past these limits: nothing to prepare for */
    int ok = rc == 0 && ids && nid > 0 && nid < (size_t)s->cfg.max_prompt_tokens &&
             (s->info->max_positions <= 0 || nid + 1 < (size_t)s->info->max_positions);
    for (size_t i = 0; ok && i < nid; i++)
        if (ids[i] < 0 || ids[i] >= s->info->vocab) ok = 0;
    srv_prep *pr = ok ? calloc(1, sizeof *pr) : NULL;
    if (!pr) {
        free(ids);
        return;
    }
    snprintf(pr->id, sizeof pr->id, "%s", p->session_id);
    pr->turn = j->sess_turn;
    pr->toks = ids;
    pr->n = (int64_t)nid;
    w->out = pr;
}

static void after_render(uv_work_t *req, int status) {
    prep_work *w = req->data;
    srv_server *s = w->job->srv;
    if (status == 0 && w->out && !s->shutting_down && s->engine) {
        srv_engine_prepare(s->engine, w->out);
        w->out = NULL;
    }
    srv_prep_free(w->out);
    srv_job_unref(w->job);
    free(w->answer);
    free(w);
}

void srv_chat_prepare_job_done(srv_job *j) {
    srv_server *s = j->srv;
    if (!s->cfg.chat_prepare || j->kind != JOBK_GEN || j->p.kind != SRV_CHAT || !s->tok ||
        !j->p.session_id || !j->sess_entry || j->n_choices != 1 || j->err.status ||
        atomic_load(&j->cancel) != SRV_CANCEL_NONE || j->too_big || j->ended ||
        s->shutting_down)
        return;
    const srv_choice *c = &j->choices[0];
    if (c->finish != FIN_STOP && c->finish != FIN_LENGTH) return;
    prep_work *w = calloc(1, sizeof *w);
    if (!w) return;
    w->answer = malloc(c->text.len + 1);
    if (!w->answer) {
        free(w);
        return;
    }
    if (c->text.len) memcpy(w->answer, c->text.p, c->text.len);
    w->answer[c->text.len] = 0;
    if (strlen(w->answer) != c->text.len) { /* a NUL in the answer: the client's copy differs */
        free(w->answer);
        free(w);
        return;
    }
    w->req.data = w;
    w->job = srv_job_ref(j);
    if (uv_queue_work(s->loop, &w->req, work_render, after_render)) {
        srv_job_unref(j);
        free(w->answer);
        free(w);
    }
}

/* ---------------------------------------------------------------- engine thread */

int srv_chat_prepare_step(srv_server *s, srv_prep *p, int slice) {
    srv_metrics *mt = &s->metrics;
    int taken = 0;
    srv_sess *e = srv_sessions_prep_begin(s->sessions, p->id, p->turn, &taken);
    if (!e) {
        if (taken) {
            atomic_fetch_add_explicit(&mt->session_prep_abandoned, 1, memory_order_relaxed);
            srv_log(s, SRV_LOG_DEBUG, "session %s: preparation abandoned (%s)", p->id,
                    p->started ? "a request came during it" : "a request came first");
        }
        return 1;
    }
    rosa_session *rs = e->rs;
    int32_t *toks = e->toks;
    int64_t n = e->n;
    int done = 1;
    if (!rs || n <= 0 || rosa_session_length(rs) != n) goto out; /* nothing kept to extend */
    if (!p->started) {
        int64_t keep = 0, lim = n < p->n ? n : p->n;
        while (keep < lim && toks[keep] == p->toks[keep]) keep++;
        /* holds it all already, or shares nothing (another conversation under this id) */
        if (keep == p->n || keep == 0) goto out;
        if (keep < n) {
            int rc = rosa_session_truncate(rs, keep);
            if (rc) { /* beyond the horizon: leave it as it is, the request decides */
                srv_log(s, SRV_LOG_DEBUG, "session %s: no preparation (rollback from %lld to "
                        "%lld: %s)", p->id, (long long)n, (long long)keep, rosa_strerror(rc));
                goto out;
            }
            n = keep;
        }
        int32_t *t = realloc(toks, sizeof(int32_t) * (size_t)p->n);
        if (!t) goto out;
        toks = t;
        p->started = 1;
    }
    int64_t m = p->n - n;
    if (m > slice) m = slice;
    int rc = rosa_session_feed(rs, p->toks + n, (int)m, NULL);
    if (rc) { /* the state is not trustworthy: dropped (the next request starts afresh) */
        srv_log(s, SRV_LOG_WARN, "session %s: preparation failed (%s); state dropped", p->id,
                rosa_strerror(rc));
        rosa_session_free(rs);
        rs = NULL;
        goto out;
    }
    memcpy(toks + n, p->toks + n, sizeof(int32_t) * (size_t)m);
    n += m;
    atomic_fetch_add_explicit(&mt->session_prepared_tokens, (unsigned long long)m,
                              memory_order_relaxed);
    if (n < p->n) {
        done = 0;
    } else {
        atomic_fetch_add_explicit(&mt->session_preparations, 1, memory_order_relaxed);
        srv_log(s, SRV_LOG_DEBUG, "session %s: prepared for the next turn (%lld tokens)", p->id,
                (long long)n);
    }
out:
    srv_sessions_prep_end(s->sessions, e, rs, toks, n);
    return done;
}
