/* server.h: the objects the loop thread and the engine thread share.
 *
 * srv_config  - command-line options (config.c).
 * srv_server  - one server: config, model/tokenizer (owned by the engine thread once loaded),
 *               the libuv loop, the MHD daemon, the engine queue, sessions and metrics.
 * srv_job     - one HTTP generation request; reference counted between the MHD connection,
 *               the SSE response, the engine and the loop's ready list.
 * Threads: everything under "loop thread" is touched only by the loop; the engine thread
 * writes events under job->mu and wakes the loop with uv_async_send once per iteration. */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "auth.h"
#include "metrics.h"
#include "request.h"
#include "rosa.h"
#include "rosa_sampler.h"
#include "rosa_tokenizer.h"
#include "sbuf.h"

struct MHD_Daemon;
struct MHD_Connection;
struct srv_engine;
struct srv_sessions;

typedef struct srv_config {
    const char *model, *adapter, *tokenizer, *host, *api_key, *model_name, *cache_dir;
    const char *api_key_file, *metrics_key; /* auth.c */
    const char *replica_id; /* X-Rosa-Replica on every response; NULL: the hostname */
    const char *session_dir;    /* --session-dir: evicted sessions are saved there (NULL: dropped) */
    size_t session_dir_bytes;   /* --session-dir-bytes: files kept there at most (0: no limit) */
    int port, max_batch, max_queue, prefill_chunk, max_prompt_tokens, max_tokens;
    int max_n, max_connections, idle_timeout;
    int max_sessions;           /* kept sessions (LRU-evicted beyond) */
    size_t max_body_bytes, max_session_bytes;
    size_t max_response_bytes;  /* largest response one request may produce */
    double request_timeout, session_ttl, shutdown_grace;
    double read_timeout;        /* a whole request (headers + body) must arrive within it */
    rosa_load_opts run; /* run options (--window ... --gpu-memory, rosa_load_opts_arg); the
                           adapter is set from `adapter` (or the demo) at load */
    int log_json, verbose;
    int chat_special_tokens;    /* parse special-token text in chat content (the old way) */
    int chat_prepare;           /* feed a chat session its answer as the next turn will render
                                   it, while idle (chat_prepare.c; --no-chat-prepare: 0) */
} srv_config;

/* Shutdown phases (shutdown.c): grace period, requests cancelled, requests answered by the loop. */
enum { SRV_PHASE_GRACE = 1, SRV_PHASE_CANCELLED, SRV_PHASE_FORCED };

/* Response header naming the replica that answered (scale-out routing checks, debugging). */
#define SRV_REPLICA_HEADER "X-Rosa-Replica"

void srv_config_defaults(srv_config *c);
/* Parse argv.  Returns 0 to run, 1 when --help/--version was printed, -1 on a bad flag (message
 * printed to stderr). */
int srv_config_parse(srv_config *c, int argc, char **argv);
void srv_config_help(FILE *f);

typedef struct srv_server {
    srv_config cfg;
    srv_auth auth;       /* API keys and their owners (auth.c) */
    char model_path[1024], adapter_path[1024], tokenizer_path[1024];
    char model_id[256];
    char replica_id[128]; /* --replica-id, else the hostname */
    /* Set by the engine thread before `ready` becomes 1; read-only afterwards. */
    rosa_model *model;
    const rosa_model_info *info;
    rosa_tokenizer *tok;  /* NULL: token-id prompts only */
    int32_t eos_ids[8];
    int n_eos;
    int32_t chat_stop_ids[8];
    int n_chat_stop;
    size_t kv_bytes_per_token; /* lower bound of a session's growth per token (K and V of every
                                  global-attention layer at 2 bytes, the smallest KV dtype of any
                                  backend: bf16 on CUDA, f32 on the CPU), for admission */
    atomic_int ready;     /* 0 loading, 1 ready, -1 failed */
    char load_error[512];
    /* loop thread */
    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t mhd_poll;
    uv_timer_t mhd_timer;
    uv_async_t wake;
    uv_signal_t sig_int, sig_term;
    uv_timer_t drain_timer;
    uv_timer_t guard_tick;   /* conn_guard.c: heartbeat pump + read deadlines */
    struct srv_sock *socks;  /* conn_guard.c: open connections */
    int shutting_down;
    long active;          /* requests not yet completed by MHD */
    struct srv_job *live; /* jobs attached to a connection */
    double shutdown_deadline; /* end of the current shutdown phase (shutdown.c) */
    int shutdown_phase;       /* 0 running, SRV_PHASE_* */
    unsigned bound_port;
    struct srv_engine *engine;
    struct srv_sessions *sessions;
    srv_metrics metrics;
    /* ready list: jobs with new events (engine -> loop) */
    pthread_mutex_t ready_mu;
    struct srv_job *ready_head;
    atomic_int wake_pending; /* events listed since the engine last woke the loop */
    time_t started;
} srv_server;

/* ---------------------------------------------------------------- jobs */

enum { EV_PROMPT_LP = 1, EV_TOKEN, EV_DONE, EV_ERROR };

typedef struct srv_event {
    int kind;
    int choice;
    int32_t token;
    float lp;              /* NAN when none (first prompt token) */
    int ntop;
    int32_t top_ids[ROSA_MAX_TOP_LOGPROBS];
    float top_lp[ROSA_MAX_TOP_LOGPROBS];
    int finish;            /* EV_DONE: FIN_* */
    int status;            /* EV_ERROR */
} srv_event;

enum { FIN_NONE = 0, FIN_STOP, FIN_LENGTH, FIN_CANCEL, FIN_ERROR };

/* a streamed token waiting for its chunk: its event (id, logprobs) and its text offset */
typedef struct srv_pend_tok {
    srv_event ev;
    size_t offset;
} srv_pend_tok;

/* what the loop keeps per choice */
typedef struct srv_choice {
    int prompt_idx;
    sbuf text;             /* text produced (after stop-string trimming) */
    size_t emitted;        /* bytes of text already streamed */
    sbuf pending;          /* decoded bytes not yet checked against stop strings */
    rosa_detok_stream *ds;
    int32_t *ids;          /* generated ids */
    int n_ids, cap_ids;
    sbuf lp_json;          /* logprobs entries built so far (JSON fragments) */
    sbuf lp_tokens, lp_values, lp_tops, lp_offsets; /* completions-format logprob arrays */
    int n_lp;
    size_t text_offset;
    /* stream: tokens whose text has not gone out yet (held back by the streaming detokenizer
     * or a possible stop string); they travel with the chunk that carries their text */
    struct srv_pend_tok *pend;
    int n_pend, cap_pend;
    int finish;            /* FIN_* once finished, as reported to the client */
    int engine_done;
    int started;           /* stream: first chunk sent (chat role, prompt_token_ids) */
} srv_choice;

/* srv_job.cancel: GONE = the client left (nothing more is sent); SHUTDOWN = the grace period
 * ended (the engine reports an error the client still receives, then [DONE]); LIMIT = the loop
 * ended it (--max-response-bytes) and holds the error in j->err. */
enum { SRV_CANCEL_NONE = 0, SRV_CANCEL_GONE = 1, SRV_CANCEL_SHUTDOWN = 2, SRV_CANCEL_LIMIT = 3 };

enum { JOB_PREPARING = 0, JOB_ERROR, JOB_RUNNING, JOB_DONE };
enum { JOBK_GEN = 0, JOBK_TOKENIZE, JOBK_DETOKENIZE };

typedef struct srv_job {
    srv_server *srv;
    atomic_int refs;
    atomic_int cancel;       /* SRV_CANCEL_*: whole request cancelled */
    atomic_int *choice_stop; /* [n_choices]: loop saw a stop string */
    atomic_int paused;       /* loop -> engine: the client lags behind; do not advance (outflow.c) */
    srv_params p;
    char id[48];
    long created;
    double t_start, t_first;
    /* prepared prompts (ids), one per prompt, and their text (for echo) */
    int32_t **prompt_ids;
    int *prompt_n;
    char **prompt_text;
    size_t *prompt_text_len;
    int kind;                /* JOBK_* */
    char *body;              /* request body, read by the pool thread while preparing */
    size_t body_len;
    int n_prompts;
    int n_choices;
    srv_choice *choices;
    int n_done;
    long prompt_tokens, completion_tokens;
    atomic_long reused_tokens; /* engine: prompt tokens a kept session already held */
    int32_t stop_ids[16];
    int n_stop_ids;
    /* engine -> loop */
    pthread_mutex_t mu;
    srv_event *ev;
    int n_ev, cap_ev;
    int listed;
    struct srv_job *next_ready;
    struct srv_job *lprev, *lnext; /* loop thread: srv_server.live */
    /* loop thread: HTTP side */
    int state;               /* JOB_* */
    srv_error err;
    struct MHD_Connection *conn;
    int suspended;
    int completed;           /* MHD reported the request completed */
    uv_poll_t *watch;        /* disconnect watcher while suspended */
    sbuf out;                /* SSE bytes not yet handed to MHD */
    size_t out_off;
    int stream_finished;     /* [DONE] appended */
    int stream_response;     /* SSE response queued */
    size_t resp_bytes;       /* response bytes built so far (outflow.c) */
    int too_big;             /* over --max-response-bytes: further tokens are dropped */
    int ended;               /* answered by srv_job_end_now: further events are dropped */
    struct srv_sess *sess_entry; /* reserved session, NULL without session_id */
    uint64_t sess_turn;      /* its turn counter after the reservation (chat_prepare.c) */
    int engine_left;         /* engine thread: sequences not yet finished */
} srv_job;

void srv_job_unref(srv_job *j);
int srv_http_start(srv_server *s);
srv_job *srv_job_ref(srv_job *j);

/* engine thread -> loop: append an event and list the job as ready ... */
void srv_job_push(srv_job *j, const srv_event *ev);
/* ... and wake the loop once for everything listed since the last call (the engine calls it
 * once per iteration, so the tokens of one batch step reach the loop in one wake-up). */
void srv_wake_loop(srv_server *s);

double srv_now(void);

#endif
