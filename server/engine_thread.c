/* engine_thread.c: model loading and the continuous-batching scheduler.
 *
 * Each request (srv_job) expands into n_prompts * n sequences.  One iteration:
 *   1. take newly submitted jobs; drop sequences whose job was cancelled or stopped;
 *   2. admit queued sequences while fewer than --max-batch run (session reuse happens here;
 *      with n > 1 the first choice of a prompt prefills it and the others fork its state:
 *      they wait in the queue until it has, see fork_src);
 *   3. prefill: spend at most --prefill-chunk prompt tokens over the prefilling sequences, so a
 *      long prompt advances in slices between decode steps and never freezes other streams;
 *   4. decode: one rosa_step_batch over every decoding sequence, then sample each.
 * Only this thread touches rosa_session objects.  Results go out as srv_events. */
#include "engine_thread.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_prepare.h"
#include "demo_model.h"
#include "log.h"
#include "session_disk.h"
#include "sessions.h"

typedef struct eseq {
    srv_job *job;
    int choice;
    const int32_t *prompt;
    int n_prompt;
    int fed;                 /* prompt tokens fed */
    rosa_session *rs;
    srv_sess *sess;
    rosa_sampler *smp;
    int32_t *hist;           /* every token fed into rs (kept for sessions) */
    int64_t n_hist, cap_hist;
    int n_gen, max_tokens;
    int32_t next;            /* sampled, not yet fed; -1 none */
    int want_plp;            /* echo + logprobs: prompt log-probabilities */
    int ntop;
    int decoding;
    double t_last;
    uint64_t admit_no;       /* admission order (the youngest gives way under memory pressure) */
    size_t bytes, kv_bytes;  /* state (all, attention caches) at the last account_memory */
} eseq;

/* n > 1: the state after prompt pi of a job, made once by its first choice (choice pi * n) and
 * forked (rosa_session_fork) by the other n - 1 as they are admitted, instead of each
 * prefilling the same prompt.  Not for sessions (n = 1 there) nor echo + logprobs (every choice
 * reports prompt log-probabilities). */
enum { FS_PREFILL, FS_READY, FS_NONE };
typedef struct fork_src {
    srv_job *job;
    int pi;
    int state;              /* FS_PREFILL: the first choice is on it (the others wait);
                               FS_READY: rs holds it; FS_NONE: each choice prefills itself */
    rosa_session *rs;
    int left;               /* choices still to be admitted; at 0 the entry goes */
    struct fork_src *next;
} fork_src;

typedef struct qnode {
    srv_job *job;
    int next_choice;
    struct qnode *next;
} qnode;

struct srv_engine {
    srv_server *srv;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int poked;                /* guarded by mu: something changed since the last wait */
    qnode *in_head, *in_tail; /* submitted, guarded by mu */
    long queued_jobs;         /* guarded by mu */
    qnode *q_head, *q_tail;   /* engine-private admission queue */
    eseq **run;
    int n_run;
    float *logits;            /* [max_batch, vocab] */
    float *plp_logits;        /* [plp_chunk, vocab] */
    int plp_chunk;
    rosa_session **b_sess;
    int32_t *b_tok;
    eseq **b_seq;
    int rr;                   /* prefill round-robin start */
    uint64_t seed_ctr;
    uint64_t admitted;        /* admission counter */
    size_t running_bytes;     /* state of the running sequences, last measured */
    fork_src *forks;          /* n > 1 prompt states (engine-private) */
    srv_prep *preps;          /* chat sessions to prepare while idle, oldest first; guarded by
                                 mu (chat_prepare.h) */
};

/* ---------------------------------------------------------------- events */

static void push_simple(srv_job *j, int kind, int choice, int finish) {
    srv_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.choice = choice;
    ev.finish = finish;
    ev.lp = NAN;
    srv_job_push(j, &ev);
}

static void push_error(srv_job *j, int choice, int status, const char *msg) {
    srv_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = EV_ERROR;
    ev.choice = choice;
    ev.status = status;
    ev.lp = NAN;
    /* the message travels in the job's error slot (first error wins) */
    pthread_mutex_lock(&j->mu);
    if (!j->err.status) srv_fail(&j->err, status, NULL, "%s", msg);
    pthread_mutex_unlock(&j->mu);
    srv_job_push(j, &ev);
}

static void push_token(srv_job *j, int kind, int choice, int32_t tok, const float *row, int V,
                       int ntop) {
    srv_event ev;
    ev.kind = kind;
    ev.choice = choice;
    ev.token = tok;
    ev.finish = 0;
    ev.status = 0;
    ev.ntop = 0;
    ev.lp = NAN;
    if (row) {
        ev.ntop = ntop > 0 ? ntop : 0;
        ev.lp = rosa_logprobs(row, V, tok, ev.ntop, ev.top_ids, ev.top_lp);
    }
    srv_job_push(j, &ev);
}

/* ---------------------------------------------------------------- sequences */

static int hist_push(eseq *s, const int32_t *t, int n) {
    if (s->n_hist + n > s->cap_hist) {
        int64_t cap = s->cap_hist ? s->cap_hist : 64;
        while (cap < s->n_hist + n) cap *= 2;
        int32_t *h = realloc(s->hist, sizeof(int32_t) * (size_t)cap);
        if (!h) return -1;
        s->hist = h;
        s->cap_hist = cap;
    }
    memcpy(s->hist + s->n_hist, t, sizeof(int32_t) * (size_t)n);
    s->n_hist += n;
    return 0;
}

/* ---------------------------------------------------------------- n > 1: prefill once */

static int fork_applies(const srv_job *j) {
    return j->p.n > 1 && !j->sess_entry && !(j->p.echo && j->p.logprobs >= 0);
}

static fork_src *fs_find(srv_engine *e, const srv_job *j, int pi) {
    for (fork_src *f = e->forks; f; f = f->next)
        if (f->job == j && f->pi == pi) return f;
    return NULL;
}

static void fs_drop(srv_engine *e, fork_src *f) {
    for (fork_src **pp = &e->forks; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    if (f->rs) rosa_session_free(f->rs);
    free(f);
}

/* The job's engine part is over: whatever states of it are left go. */
static void fs_purge_job(srv_engine *e, const srv_job *j) {
    for (fork_src *f = e->forks, *next; f; f = next) {
        next = f->next;
        if (f->job == j) fs_drop(e, f);
    }
}

/* One of the choices waiting on f was taken from the queue (admitted or dropped); f may be NULL. */
static void fs_taken(srv_engine *e, fork_src *f) {
    if (f && --f->left <= 0) fs_drop(e, f);
}

/* A choice that never became a sequence: give back its session reservation untouched. */
static void release_unused_sess(srv_engine *e, srv_job *j) {
    srv_sess *ss = j->sess_entry;
    if (ss) srv_sessions_release(e->srv->sessions, ss, ss->rs, ss->toks, ss->n, srv_now());
}

static void job_engine_done(srv_engine *e, srv_job *j) {
    /* engine_left counts the job's sequences still owned by the engine */
    if (--j->engine_left == 0) {
        fs_purge_job(e, j);
        srv_job_unref(j);
    }
}

/* End a sequence: report, store or free its session, free the rest. */
static void seq_finish(srv_engine *e, eseq *s, int finish) {
    srv_server *srv = e->srv;
    if (finish == FIN_CANCEL)
        atomic_fetch_add_explicit(&srv->metrics.cancellations, 1, memory_order_relaxed);
    if (fork_applies(s->job) && s->choice % s->job->p.n == 0) {
        fork_src *f = fs_find(e, s->job, s->choice / s->job->p.n);
        if (f && f->state == FS_PREFILL) f->state = FS_NONE; /* the others prefill themselves */
    }
    if (s->sess) {
        int keep = finish != FIN_ERROR && s->rs;
        srv_sessions_release(srv->sessions, s->sess, keep ? s->rs : NULL, keep ? s->hist : NULL,
                             keep ? s->n_hist : 0, srv_now());
        if (keep) s->hist = NULL;
        else if (s->rs) rosa_session_free(s->rs);
    } else if (s->rs) {
        rosa_session_free(s->rs);
    }
    rosa_sampler_free(s->smp);
    free(s->hist);
    push_simple(s->job, EV_DONE, s->choice, finish);
    job_engine_done(e, s->job);
    free(s);
}

static int is_stop_token(const srv_job *j, int32_t t) {
    for (int i = 0; i < j->n_stop_ids; i++)
        if (j->stop_ids[i] == t) return 1;
    return 0;
}

/* A token was sampled from row.  Returns 1 if the sequence finished (and was freed). */
static int seq_take_token(srv_engine *e, eseq *s, const float *row) {
    srv_server *srv = e->srv;
    const int V = srv->info->vocab;
    int32_t t = rosa_sampler_sample(s->smp, row);
    double now = srv_now();
    if (s->n_gen > 0) srv_hist_observe(&srv->metrics.per_token, now - s->t_last);
    s->t_last = now;
    if (is_stop_token(s->job, t)) {
        seq_finish(e, s, FIN_STOP);
        return 1;
    }
    rosa_sampler_accept(s->smp, t, 1);
    push_token(s->job, EV_TOKEN, s->choice, t, s->ntop >= 0 ? row : NULL, V, s->ntop);
    s->n_gen++;
    atomic_fetch_add_explicit(&srv->metrics.generation_tokens, 1, memory_order_relaxed);
    int64_t len = s->n_hist + 1;
    if (s->n_gen >= s->max_tokens || (srv->info->max_positions > 0 && len >= srv->info->max_positions)) {
        seq_finish(e, s, FIN_LENGTH);
        return 1;
    }
    s->next = t;
    s->decoding = 1;
    return 0;
}

static eseq *seq_new(srv_engine *e, srv_job *j, int choice) {
    srv_server *srv = e->srv;
    const srv_params *p = &j->p;
    int pi = choice / p->n;
    eseq *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->job = j;
    s->choice = choice;
    s->prompt = j->prompt_ids[pi];
    s->n_prompt = j->prompt_n[pi];
    s->next = -1;
    s->ntop = p->logprobs; /* -1: none */
    s->want_plp = p->echo && p->logprobs >= 0;
    int64_t room = srv->info->max_positions > 0 ? srv->info->max_positions - s->n_prompt : INT32_MAX;
    if (room < 0) room = 0;
    int64_t mt = p->max_tokens < 0 ? srv->cfg.max_tokens : p->max_tokens;
    s->max_tokens = (int)(mt < room ? mt : room);
    rosa_sampler_params sp;
    rosa_sampler_params_init(&sp);
    sp.temperature = p->temperature;
    sp.top_k = p->top_k;
    sp.top_p = p->top_p;
    sp.min_p = p->min_p;
    sp.presence_penalty = p->presence_penalty;
    sp.frequency_penalty = p->frequency_penalty;
    sp.repetition_penalty = p->repetition_penalty;
    sp.seed = p->has_seed ? p->seed + (uint64_t)choice * 0x9E3779B97F4A7C15ull
                          : (uint64_t)(srv_now() * 1e9) ^ (++e->seed_ctr * 0xD1B54A32D192ED03ull);
    sp.bias_ids = p->bias_ids;
    sp.bias_vals = p->bias_vals;
    sp.n_bias = p->n_bias;
    s->smp = rosa_sampler_new(&sp, srv->info->vocab);
    if (!s->smp) {
        free(s);
        return NULL;
    }
    if (p->repetition_penalty != 1.0f)
        for (int i = 0; i < s->n_prompt; i++) rosa_sampler_accept(s->smp, s->prompt[i], 0);
    return s;
}

/* Tokens at the start of a and b that agree. */
static int64_t common_prefix(const int32_t *a, int64_t na, const int32_t *b, int64_t nb) {
    int64_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* How many of the kept session's tokens the prompt can start from: their longest common prefix,
 * less one when the whole prompt is in the session (its last token is fed again, so that the
 * sequence has its logits; a session that holds exactly the prompt keeps them).  0: none. */
static int64_t reusable_prefix(const srv_sess *ss, const eseq *s) {
    int64_t keep = common_prefix(ss->toks, ss->n, s->prompt, s->n_prompt);
    if (keep == s->n_prompt && !(keep == ss->n && rosa_session_logits(ss->rs))) keep--;
    return keep > 0 ? keep : 0;
}

/* Bind the sequence to a fresh or kept rosa_session.  A kept one is rolled back to the part the
 * prompt shares with it (rosa_session_truncate) and only the rest is fed; beyond the rollback
 * horizon, or with echo + logprobs (the prefix's logits are not kept), it is rebuilt from
 * scratch.  Returns 0 or a rosa_err. */
static int seq_attach(srv_engine *e, eseq *s) {
    srv_server *srv = e->srv;
    srv_sess *ss = s->job->sess_entry;
    if (ss) {
        s->sess = ss;
        srv_disk_bring_back(srv->sessions, ss, srv->model, srv->info->vocab); /* --session-dir */
        int64_t keep = 0, held = ss->n; /* toks has room for held tokens */
        if (ss->rs && !s->want_plp && ss->n > 0 && rosa_session_length(ss->rs) == ss->n)
            keep = reusable_prefix(ss, s);
        if (keep > 0 && keep < ss->n) {
            int rc = rosa_session_truncate(ss->rs, keep);
            if (rc == 0) {
                atomic_fetch_add_explicit(&srv->metrics.session_rollbacks, 1, memory_order_relaxed);
                srv_log(srv, SRV_LOG_DEBUG, "session %s: rolled back from %lld to %lld tokens",
                        ss->id, (long long)ss->n, (long long)keep);
            } else {
                if (rc == ROSA_ERR_LIMIT || rc == ROSA_ERR_UNSUPPORTED) /* CUDA: horizon 0 */
                    atomic_fetch_add_explicit(&srv->metrics.session_rollback_rebuilds, 1,
                                              memory_order_relaxed);
                srv_log(srv, SRV_LOG_DEBUG, "session %s: no rollback from %lld to %lld tokens "
                        "(%s): rebuilt", ss->id, (long long)ss->n, (long long)keep,
                        rosa_strerror(rc));
                keep = 0;
            }
        }
        if (keep > 0) {
            s->rs = ss->rs;
            s->hist = ss->toks;
            s->n_hist = keep;
            s->cap_hist = held;
            s->fed = (int)keep;
            ss->rs = NULL; /* the sequence owns them while it runs */
            ss->toks = NULL;
            atomic_fetch_add_explicit(&srv->metrics.prompt_tokens_reused, (unsigned long long)keep,
                                      memory_order_relaxed);
            atomic_fetch_add_explicit(&s->job->reused_tokens, (long)keep, memory_order_relaxed);
            return 0;
        }
        /* diverged at once, or no state yet: rebuild from scratch */
        if (ss->rs) rosa_session_free(ss->rs);
        free(ss->toks);
        ss->rs = NULL;
        ss->toks = NULL;
    }
    return rosa_session_new(srv->model, &s->rs);
}

/* ---------------------------------------------------------------- scheduler steps */

/* Why a job must stop now with an error the client sees (server shutdown, --request-timeout),
 * or NULL.  A client that left (cancel == SRV_CANCEL_GONE) needs no message. */
static const char *abort_reason(srv_engine *e, const srv_job *j, double now) {
    if (atomic_load(&j->cancel) == SRV_CANCEL_SHUTDOWN)
        return "the server is shutting down; the request was cut short";
    double tmo = e->srv->cfg.request_timeout;
    if (tmo > 0 && now - j->t_start > tmo) return "the request timed out (--request-timeout)";
    return NULL;
}

static void admit(srv_engine *e) {
    srv_server *srv = e->srv;
    size_t budget = srv->cfg.max_session_bytes;
    /* while the running sequences hold nearly all of the state budget (7/8), newcomers wait in
     * the queue rather than start and be the first to give way (account_memory) */
    if (budget && e->n_run > 0 && e->running_bytes >= budget - budget / 8) return;
    /* in queue order; a job whose next choice waits for its prompt's state (n > 1, below) is
     * passed over, so that the jobs behind it need not wait for that prefill */
    qnode *prev = NULL;
    for (;;) {
        qnode *q = prev ? prev->next : e->q_head;
        if (!q || e->n_run >= srv->cfg.max_batch) break;
        srv_job *j = q->job;
        fork_src *fs = NULL;
        int lead = 0;
        if (fork_applies(j)) {
            int nn = j->p.n, pc = q->next_choice;
            lead = pc % nn == 0;
            fs = lead ? NULL : fs_find(e, j, pc / nn);
            /* the prompt's first choice is still on it (it is running, so it gets there or
             * ends: FS_NONE): the others wait for its state */
            if (fs && fs->state == FS_PREFILL && !atomic_load(&j->cancel)) {
                prev = q;
                continue;
            }
        }
        /* --session-dir: its session is being read from disk (other jobs go on meanwhile) */
        if (j->sess_entry && !atomic_load(&j->cancel) &&
            srv_disk_restore_wait(srv->sessions, j->sess_entry)) {
            prev = q;
            continue;
        }
        int c = q->next_choice++;
        if (q->next_choice >= j->n_choices) { /* the job's last choice: q leaves the queue */
            if (prev) prev->next = q->next;
            else e->q_head = q->next;
            if (e->q_tail == q) e->q_tail = prev;
            free(q);
            atomic_fetch_sub_explicit(&srv->metrics.queue_depth, 1, memory_order_relaxed);
        }
        const char *why = abort_reason(e, j, srv_now());
        if (why || atomic_load(&j->cancel)) {
            fs_taken(e, fs);
            atomic_fetch_add_explicit(&srv->metrics.cancellations, 1, memory_order_relaxed);
            release_unused_sess(e, j);
            if (why) push_error(j, c, 503, why);
            push_simple(j, EV_DONE, c, why ? FIN_ERROR : FIN_CANCEL);
            job_engine_done(e, j);
            continue;
        }
        eseq *s = seq_new(e, j, c);
        int rc = s ? seq_attach(e, s) : ROSA_ERR_NOMEM;
        if (!rc && fs && fs->state == FS_READY) {
            /* the prompt's state, forked: this choice starts at its first token */
            rosa_session *copy;
            if (rosa_session_fork(fs->rs, &copy) == 0) {
                if (hist_push(s, s->prompt, s->n_prompt) == 0) {
                    rosa_session_free(s->rs);
                    s->rs = copy;
                    s->fed = s->n_prompt;
                    atomic_fetch_add_explicit(&srv->metrics.prompt_tokens_reused,
                                              (unsigned long long)s->fed, memory_order_relaxed);
                    atomic_fetch_add_explicit(&j->reused_tokens, (long)s->fed, memory_order_relaxed);
                } else {
                    s->n_hist = 0;
                    rosa_session_free(copy);
                }
            }
        }
        fs_taken(e, fs);
        if (rc) {
            push_error(j, c, 500, rosa_strerror(rc));
            if (s) {
                s->rs = NULL;
                seq_finish(e, s, FIN_ERROR);
            } else {
                release_unused_sess(e, j);
                push_simple(j, EV_DONE, c, FIN_ERROR);
                job_engine_done(e, j);
            }
            continue;
        }
        if (lead && (fs = calloc(1, sizeof *fs))) { /* the others will fork what it prefills */
            fs->job = j;
            fs->pi = c / j->p.n;
            fs->left = j->p.n - 1;
            fs->state = FS_PREFILL;
            fs->next = e->forks;
            e->forks = fs;
        }
        s->t_last = srv_now();
        s->admit_no = ++e->admitted;
        if (s->want_plp && s->fed == 0) push_token(j, EV_PROMPT_LP, c, s->prompt[0], NULL, 0, 0);
        if (s->max_tokens == 0 && !s->want_plp && !s->sess) {
            /* nothing to compute: echo-only or empty generation (a session still takes the
             * prompt in, so that a later request can extend it) */
            seq_finish(e, s, FIN_LENGTH);
            continue;
        }
        e->run[e->n_run++] = s;
    }
}

static void remove_run(srv_engine *e, int i) {
    e->run[i] = e->run[--e->n_run];
}

/* One prefill slice for s; returns 1 if s finished (freed). */
static int prefill_slice(srv_engine *e, eseq *s, int budget) {
    srv_server *srv = e->srv;
    const int V = srv->info->vocab;
    int n = s->n_prompt - s->fed;
    if (n > budget) n = budget;
    float *lg = NULL;
    if (s->want_plp) {
        if (n > e->plp_chunk) n = e->plp_chunk;
        lg = e->plp_logits;
    }
    if (n > 0) {
        int rc = rosa_session_feed(s->rs, s->prompt + s->fed, n, lg);
        if (rc == 0 && hist_push(s, s->prompt + s->fed, n)) rc = ROSA_ERR_NOMEM;
        if (rc) {
            push_error(s->job, s->choice, rc == ROSA_ERR_LIMIT ? 413 : 500, rosa_strerror(rc));
            seq_finish(e, s, FIN_ERROR);
            return 1;
        }
        if (lg)
            for (int i = 0; i < n; i++) {
                int pos = s->fed + i + 1; /* row i predicts prompt[pos] */
                if (pos < s->n_prompt)
                    push_token(s->job, EV_PROMPT_LP, s->choice, s->prompt[pos], lg + (size_t)i * V,
                               V, s->ntop);
            }
        s->fed += n;
    }
    if (s->fed < s->n_prompt) return 0;
    if (fork_applies(s->job) && s->choice % s->job->p.n == 0) {
        fork_src *f = fs_find(e, s->job, s->choice / s->job->p.n);
        if (f && f->state == FS_PREFILL)
            f->state = rosa_session_fork(s->rs, &f->rs) == 0 ? FS_READY : FS_NONE;
    }
    if (s->max_tokens == 0) {
        seq_finish(e, s, FIN_LENGTH);
        return 1;
    }
    const float *row = rosa_session_logits(s->rs);
    if (!row) {
        push_error(s->job, s->choice, 500, "no logits after the prompt");
        seq_finish(e, s, FIN_ERROR);
        return 1;
    }
    return seq_take_token(e, s, row);
}

static int prefill(srv_engine *e) {
    int budget = e->srv->cfg.prefill_chunk, work = 0;
    int n0 = e->n_run, start = n0 ? e->rr % n0 : 0;
    eseq **todo = e->b_seq; /* snapshot: prefill_slice may remove entries from run */
    int nt = 0;
    for (int k = 0; k < n0; k++) {
        eseq *s = e->run[(start + k) % n0];
        if (!s->decoding && !atomic_load(&s->job->paused)) todo[nt++] = s;
    }
    for (int k = 0; k < nt && budget > 0; k++) {
        eseq *s = todo[k];
        int take = s->n_prompt - s->fed;
        if (take > budget) take = budget;
        work = 1;
        if (prefill_slice(e, s, budget))
            for (int i = 0; i < e->n_run; i++)
                if (e->run[i] == s) {
                    remove_run(e, i);
                    break;
                }
        budget -= take > 0 ? take : 1;
    }
    e->rr++;
    return work;
}

static int decode(srv_engine *e) {
    srv_server *srv = e->srv;
    const int V = srv->info->vocab;
    int n = 0;
    for (int i = 0; i < e->n_run; i++)
        if (e->run[i]->decoding && !atomic_load(&e->run[i]->job->paused)) {
            e->b_seq[n] = e->run[i];
            e->b_sess[n] = e->run[i]->rs;
            e->b_tok[n] = e->run[i]->next;
            n++;
        }
    if (!n) return 0;
    int rc = rosa_step_batch(e->b_sess, e->b_tok, n, e->logits);
    for (int k = 0; k < n; k++) {
        eseq *s = e->b_seq[k];
        int done = 0;
        if (rc == 0 && hist_push(s, &s->next, 1)) rc = ROSA_ERR_NOMEM;
        if (rc) {
            push_error(s->job, s->choice, 500, rosa_strerror(rc));
            seq_finish(e, s, FIN_ERROR);
            done = 1;
        } else {
            done = seq_take_token(e, s, e->logits + (size_t)k * V);
        }
        if (done)
            for (int i = 0; i < e->n_run; i++)
                if (e->run[i] == s) {
                    remove_run(e, i);
                    break;
                }
    }
    return 1;
}

/* End the not yet admitted choices of a queued job (client gone, shutdown, timeout). */
static void end_queued(srv_engine *e, qnode *q, const char *why) {
    srv_job *j = q->job;
    for (int c = q->next_choice; c < j->n_choices; c++) {
        atomic_fetch_add_explicit(&e->srv->metrics.cancellations, 1, memory_order_relaxed);
        release_unused_sess(e, j);
        if (why) push_error(j, c, 503, why);
        push_simple(j, EV_DONE, c, why ? FIN_ERROR : FIN_CANCEL);
        job_engine_done(e, j);
    }
}

static void drop_cancelled(srv_engine *e) {
    double now = srv_now();
    /* queued jobs first: a full batch must not keep them waiting for an answer they will not
     * get (a client that left, the shutdown grace over, --request-timeout) */
    qnode *prev = NULL;
    for (qnode *q = e->q_head, *next; q; q = next) {
        next = q->next;
        const char *why = abort_reason(e, q->job, now);
        if (!why && !atomic_load(&q->job->cancel)) {
            prev = q;
            continue;
        }
        end_queued(e, q, why);
        if (prev) prev->next = next;
        else e->q_head = next;
        if (e->q_tail == q) e->q_tail = prev;
        free(q);
        atomic_fetch_sub_explicit(&e->srv->metrics.queue_depth, 1, memory_order_relaxed);
    }
    for (int i = 0; i < e->n_run; i++) {
        eseq *s = e->run[i];
        srv_job *j = s->job;
        int fin = 0;
        const char *why = abort_reason(e, j, now);
        if (why) {
            push_error(j, s->choice, 503, why);
            fin = FIN_ERROR;
        } else if (atomic_load(&j->cancel) || atomic_load(&j->choice_stop[s->choice])) {
            fin = FIN_CANCEL;
        }
        if (fin) {
            seq_finish(e, s, fin);
            remove_run(e, i);
            i--;
        }
    }
}

/* After every iteration: memory gauges and the --max-session-bytes budget.  State grows by at
 * most one prefill slice or one token per sequence between two checks.
 *  - one sequence over the budget ends with 413 (it could never fit);
 *  - kept idle sessions are evicted (LRU) to make room for the running ones;
 *  - if the running sequences together still exceed it, the most recently admitted ones end
 *    with 429 (retry later) until the rest fit: the server never grows past its budget;
 *    unless the youngest one's request alone (n > 1 choices) exceeds it: that request could
 *    never fit and ends with 413. */
static void account_memory(srv_engine *e) {
    size_t total = 0, kv = 0, budget = e->srv->cfg.max_session_bytes;
    for (int i = 0; i < e->n_run; i++) {
        eseq *s = e->run[i];
        rosa_session_mem m;
        rosa_session_memory(s->rs, &m);
        s->bytes = m.kv_bytes + m.rosa_bytes;
        s->kv_bytes = m.kv_bytes;
        if (budget && s->bytes > budget) {
            char msg[200];
            snprintf(msg, sizeof msg, "the request needs more than --max-session-bytes (%zu "
                     "bytes) of session state (%zu bytes after %lld tokens)", budget, s->bytes,
                     (long long)s->n_hist);
            push_error(s->job, s->choice, 413, msg);
            seq_finish(e, s, FIN_ERROR);
            remove_run(e, i--);
            continue;
        }
        total += s->bytes;
        kv += m.kv_bytes;
    }
    if (budget && srv_sessions_fit(e->srv->sessions, total < budget ? budget - total : 0))
        srv_sessions_collect(e->srv->sessions, srv_now());
    while (budget && total > budget && e->n_run > 1) {
        int y = 0;
        for (int i = 1; i < e->n_run; i++)
            if (e->run[i]->admit_no > e->run[y]->admit_no) y = i;
        eseq *s = e->run[y];
        size_t own = 0; /* the youngest one's request alone (its n > 1 choices run together) */
        for (int i = 0; i < e->n_run; i++)
            if (e->run[i]->job == s->job) own += e->run[i]->bytes;
        if (own > budget) {
            /* it would not fit on an idle server either: 413, not an invitation to retry */
            srv_job *j = s->job;
            char msg[240];
            snprintf(msg, sizeof msg, "the request's %d choices together need more than "
                     "--max-session-bytes (%zu bytes) of session state (%zu bytes so far)",
                     j->n_choices, budget, own);
            int none = SRV_CANCEL_NONE; /* its choices not yet admitted are dropped */
            atomic_compare_exchange_strong(&j->cancel, &none, SRV_CANCEL_LIMIT);
            for (int i = 0; i < e->n_run; i++) {
                eseq *q = e->run[i];
                if (q->job != j) continue;
                push_error(j, q->choice, 413, msg);
                total -= q->bytes;
                kv -= q->kv_bytes;
                seq_finish(e, q, FIN_ERROR);
                remove_run(e, i--);
            }
            continue;
        }
        char msg[240];
        snprintf(msg, sizeof msg, "the running requests need more than --max-session-bytes (%zu "
                 "bytes) of state together; this one, the most recent, gave way: retry later",
                 budget);
        push_error(s->job, s->choice, 429, msg);
        total -= s->bytes;
        kv -= s->kv_bytes;
        seq_finish(e, s, FIN_ERROR);
        remove_run(e, y);
    }
    e->running_bytes = total;
    srv_metrics *mt = &e->srv->metrics;
    atomic_store_explicit(&mt->kv_bytes, (long long)kv, memory_order_relaxed);
    atomic_store_explicit(&mt->rosa_bytes, (long long)(total - kv), memory_order_relaxed);
    atomic_store_explicit(&mt->running, e->n_run, memory_order_relaxed);
}

/* ---------------------------------------------------------------- chat preparation */

/* Nothing else to run: one step of the oldest preparation (chat_prepare.h).  It is off the list
 * while it runs, so that the loop can queue a newer one for the same session meanwhile (which
 * then replaces it).  Returns 1 if it did anything. */
static int prepare_idle(srv_engine *e) {
    pthread_mutex_lock(&e->mu);
    srv_prep *p = e->preps;
    if (p) e->preps = p->next;
    pthread_mutex_unlock(&e->mu);
    if (!p) return 0;
    p->next = NULL;
    int slice = e->srv->cfg.prefill_chunk < SRV_PREP_SLICE ? e->srv->cfg.prefill_chunk
                                                           : SRV_PREP_SLICE;
    if (srv_chat_prepare_step(e->srv, p, slice)) {
        srv_prep_free(p);
        return 1;
    }
    pthread_mutex_lock(&e->mu);
    int newer = 0;
    for (srv_prep *q = e->preps; q; q = q->next)
        if (!strcmp(q->id, p->id)) newer = 1;
    if (!newer) { /* back at the head: it goes on at the next idle iteration */
        p->next = e->preps;
        e->preps = p;
        p = NULL;
    }
    pthread_mutex_unlock(&e->mu);
    if (p) atomic_fetch_add_explicit(&e->srv->metrics.session_prep_abandoned, 1,
                                     memory_order_relaxed);
    srv_prep_free(p);
    return 1;
}

void srv_engine_prepare(srv_engine *e, srv_prep *p) {
    srv_prep *old = NULL;
    int count = 0;
    p->next = NULL;
    pthread_mutex_lock(&e->mu);
    srv_prep **pp = &e->preps;
    while (*pp) {
        if (!strcmp((*pp)->id, p->id)) { /* an older turn's: a request came before it ran */
            srv_prep *q = *pp;
            atomic_fetch_add_explicit(&e->srv->metrics.session_prep_abandoned, 1,
                                      memory_order_relaxed);
            *pp = q->next;
            q->next = old;
            old = q;
            continue;
        }
        count++;
        pp = &(*pp)->next;
    }
    *pp = p;
    if (count >= SRV_PREP_MAX) { /* too many waiting: the oldest goes */
        srv_prep *q = e->preps;
        e->preps = q->next;
        q->next = old;
        old = q;
    }
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    while (old) {
        srv_prep *q = old;
        old = q->next;
        srv_prep_free(q);
    }
}

/* ---------------------------------------------------------------- thread */

static int load(srv_engine *e) {
    srv_server *srv = e->srv;
    const srv_config *c = &srv->cfg;
    char err[512] = "";
    if (!c->model) {
        if (srv_demo_model_write(c->cache_dir, srv->model_path, sizeof srv->model_path,
                                 srv->adapter_path, sizeof srv->adapter_path,
                                 srv->tokenizer_path, sizeof srv->tokenizer_path, err,
                                 sizeof err)) {
            snprintf(srv->load_error, sizeof srv->load_error, "demo model: %s", err);
            return -1;
        }
    }
    rosa_load_opts o = c->run;
    o.adapter = srv->adapter_path[0] ? srv->adapter_path : NULL;
    int rc = rosa_model_load(srv->model_path, &o, &srv->model, err, sizeof err);
    if (rc) {
        snprintf(srv->load_error, sizeof srv->load_error, "%s", err[0] ? err : rosa_strerror(rc));
        return -1;
    }
    srv->info = rosa_model_get_info(srv->model);
    if (srv->tokenizer_path[0]) {
        rc = rosa_tokenizer_load(srv->tokenizer_path, &srv->tok, err, sizeof err);
        if (rc && srv->cfg.tokenizer) {
            snprintf(srv->load_error, sizeof srv->load_error, "%s", err);
            return -1;
        }
        if (rc) {
            srv_log(srv, SRV_LOG_WARN, "no tokenizer (%s): token-id prompts only", err);
            srv->tok = NULL;
        }
    }
    if (srv->tok && rosa_tokenizer_vocab_size(srv->tok) > srv->info->vocab)
        srv_log(srv, SRV_LOG_WARN, "the tokenizer has %d ids, the model %d: text that encodes to "
                "larger ids is refused (400)", rosa_tokenizer_vocab_size(srv->tok),
                srv->info->vocab);
    if (srv->tok) {
        srv->n_chat_stop = rosa_chat_stop_ids(srv->tok, srv->chat_stop_ids, 8);
        int32_t te = rosa_tokenizer_eos(srv->tok);
        if (te >= 0) srv->eos_ids[srv->n_eos++] = te;
    }
    if (srv->info->eos_token >= 0 && (srv->n_eos == 0 || srv->eos_ids[0] != srv->info->eos_token))
        srv->eos_ids[srv->n_eos++] = srv->info->eos_token;
    for (int l = 0; l < srv->info->layers; l++)
        if (srv->info->layer_window[l] == 0)
            srv->kv_bytes_per_token += 2 * 2 * (size_t)srv->info->kv_heads *
                                       (size_t)srv->info->head_dim; /* K + V, >= 2 bytes each */
    const int V = srv->info->vocab;
    e->logits = malloc(sizeof(float) * (size_t)V * (size_t)c->max_batch);
    e->plp_chunk = (int)((64u << 20) / (sizeof(float) * (size_t)V));
    if (e->plp_chunk < 1) e->plp_chunk = 1;
    if (e->plp_chunk > c->prefill_chunk) e->plp_chunk = c->prefill_chunk;
    e->plp_logits = malloc(sizeof(float) * (size_t)V * (size_t)e->plp_chunk);
    e->run = calloc((size_t)c->max_batch, sizeof *e->run);
    e->b_sess = calloc((size_t)c->max_batch, sizeof *e->b_sess);
    e->b_tok = calloc((size_t)c->max_batch, sizeof *e->b_tok);
    e->b_seq = calloc((size_t)c->max_batch, sizeof *e->b_seq);
    if (!e->logits || !e->plp_logits || !e->run || !e->b_sess || !e->b_tok || !e->b_seq) {
        snprintf(srv->load_error, sizeof srv->load_error, "out of memory");
        return -1;
    }
    return 0;
}

static void *engine_main(void *arg) {
    srv_engine *e = arg;
    srv_server *srv = e->srv;
    double t0 = srv_now();
    if (load(e)) {
        srv_log(srv, SRV_LOG_ERROR, "model load failed: %s", srv->load_error);
        atomic_store(&srv->ready, -1);
    } else {
        srv_log(srv, SRV_LOG_INFO, "model loaded in %.2f s: vocab %d, %d layers, %d ROSA layers, "
                "backend %s", srv_now() - t0, srv->info->vocab, srv->info->layers,
                srv->info->n_rosa_layers, srv->info->backend);
        atomic_store(&srv->ready, 1);
    }
    uv_async_send(&srv->wake); /* let the loop notice readiness */
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stop && !e->in_head && e->n_run == 0 && !e->q_head && !e->preps) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&e->cv, &e->mu, &ts);
            if (srv->ready == 1) {
                pthread_mutex_unlock(&e->mu);
                srv_sessions_collect(srv->sessions, srv_now());
                pthread_mutex_lock(&e->mu);
            }
        }
        int stopping = e->stop;
        if (e->in_head) {
            if (e->q_tail) e->q_tail->next = e->in_head;
            else e->q_head = e->in_head;
            e->q_tail = e->in_tail;
            e->in_head = e->in_tail = NULL;
        }
        e->queued_jobs = 0;
        for (qnode *q = e->q_head; q; q = q->next) e->queued_jobs++;
        pthread_mutex_unlock(&e->mu);
        if (stopping) break;
        if (srv->ready != 1) {
            /* no model: fail everything queued */
            while (e->q_head) {
                qnode *q = e->q_head;
                e->q_head = q->next;
                for (int c = q->next_choice; c < q->job->n_choices; c++) {
                    push_error(q->job, c, 503, "the model failed to load");
                    release_unused_sess(e, q->job);
                    push_simple(q->job, EV_DONE, c, FIN_ERROR);
                    job_engine_done(e, q->job);
                }
                atomic_fetch_sub_explicit(&srv->metrics.queue_depth, 1, memory_order_relaxed);
                free(q);
            }
            e->q_tail = NULL;
            srv_wake_loop(srv);
            continue;
        }
        double ts = srv_now();
        drop_cancelled(e);
        admit(e);
        int work = prefill(e);
        work |= decode(e);
        /* the lowest priority: only when nothing else ran (not an engine step either) */
        int prepared = !work && e->n_run == 0 && !e->q_head && prepare_idle(e);
        account_memory(e);
        srv_sessions_free_saved(srv->sessions); /* --session-dir: saves written meanwhile */
        srv_wake_loop(srv); /* one wake-up for all the events of this iteration */
        if (work) {
            srv_hist_observe(&srv->metrics.step, srv_now() - ts);
            atomic_fetch_add_explicit(&srv->metrics.engine_steps, 1, memory_order_relaxed);
        } else if (!prepared) {
            /* nothing could advance (every running stream paused by backpressure, the queue
             * waiting for room): sleep until poked (unpause, cancel, submit) or for a while, so
             * that timeouts are still checked */
            pthread_mutex_lock(&e->mu);
            if (!e->stop && !e->in_head && !e->poked) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += 200 * 1000000L;
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&e->cv, &e->mu, &until);
            }
            e->poked = 0;
            pthread_mutex_unlock(&e->mu);
        }
        atomic_store_explicit(&srv->metrics.engine_thread_cpu_ns,
                              (unsigned long long)(srv_thread_cpu_seconds() * 1e9),
                              memory_order_relaxed);
    }
    /* shutdown: cancel whatever is left */
    for (int i = 0; i < e->n_run; i++) seq_finish(e, e->run[i], FIN_CANCEL);
    e->n_run = 0;
    qnode *all = e->q_head;
    pthread_mutex_lock(&e->mu);
    if (e->in_head) {
        if (e->q_tail) e->q_tail->next = e->in_head;
        else all = e->in_head;
    }
    e->in_head = e->in_tail = NULL;
    pthread_mutex_unlock(&e->mu);
    while (all) {
        qnode *q = all;
        all = q->next;
        for (int c = q->next_choice; c < q->job->n_choices; c++) {
            release_unused_sess(e, q->job);
            push_simple(q->job, EV_DONE, c, FIN_CANCEL);
            job_engine_done(e, q->job);
        }
        free(q);
    }
    e->q_head = e->q_tail = NULL;
    srv_wake_loop(srv);
    if (srv->ready == 1 && srv->sessions->disk) { /* graceful shutdown: keep the sessions */
        double t_save = srv_now();
        int n = srv_sessions_save_all(srv->sessions);
        srv_log(srv, SRV_LOG_INFO, "saved %d sessions to --session-dir in %.2f s", n,
                srv_now() - t_save);
    }
    pthread_mutex_lock(&srv->sessions->mu);
    srv->sessions->wake = NULL; /* (the engine goes) */
    pthread_mutex_unlock(&srv->sessions->mu);
    return NULL;
}

static void wake_engine(void *arg) { srv_engine_poke(arg); }

int srv_engine_start(srv_server *s, srv_engine **out) {
    srv_engine *e = calloc(1, sizeof *e);
    if (!e) return -1;
    e->srv = s;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_mutex_lock(&s->sessions->mu);
    s->sessions->wake = wake_engine; /* a restore read by the disk thread */
    s->sessions->wake_arg = e;
    pthread_mutex_unlock(&s->sessions->mu);
    if (pthread_create(&e->thread, NULL, engine_main, e)) {
        s->sessions->wake = NULL;
        free(e);
        return -1;
    }
    *out = e;
    return 0;
}

int srv_engine_submit(srv_engine *e, srv_job *j) {
    qnode *q = calloc(1, sizeof *q);
    if (!q) return -2;
    pthread_mutex_lock(&e->mu);
    long waiting = atomic_load_explicit(&e->srv->metrics.queue_depth, memory_order_relaxed);
    if (waiting >= e->srv->cfg.max_queue) {
        pthread_mutex_unlock(&e->mu);
        free(q);
        return -1;
    }
    q->job = srv_job_ref(j);
    j->engine_left = j->n_choices;
    if (e->in_tail) e->in_tail->next = q;
    else e->in_head = q;
    e->in_tail = q;
    atomic_fetch_add_explicit(&e->srv->metrics.queue_depth, 1, memory_order_relaxed);
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return 0;
}

void srv_engine_poke(srv_engine *e) {
    pthread_mutex_lock(&e->mu);
    e->poked = 1;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void srv_engine_stop(srv_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stop = 1;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    srv_server *srv = e->srv;
    srv_sessions_collect(srv->sessions, srv_now());
    while (e->forks) fs_drop(e, e->forks); /* (every job's end purged its own already) */
    while (e->preps) {
        srv_prep *p = e->preps;
        e->preps = p->next;
        srv_prep_free(p);
    }
    free(e->logits);
    free(e->plp_logits);
    free(e->run);
    free(e->b_sess);
    free(e->b_tok);
    free(e->b_seq);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}
