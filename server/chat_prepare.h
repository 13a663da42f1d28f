/* chat_prepare.h: keep a chat session's answer in it, as the next turn will send it.
 *
 * Qwen3's template renders an earlier answer without its think block, so the next prompt leaves
 * the kept tokens right after "<|im_start|>assistant\n" and the whole answer would be computed
 * again.  When a chat request with a session ends normally, the loop has the conversation
 * rendered and tokenized (libuv pool, like every prompt) the way the next request will render
 * it up to the answer's "<|im_end|>\n"; the engine thread then, only while it has nothing else
 * to run and in small slices, rolls the session back to what it shares with those tokens and
 * feeds the rest.  A request for the session that arrives first makes it give up (between two
 * slices: the token list always says exactly what the session holds); the request's own
 * longest-common-prefix rollback keeps the results exact whatever the prediction was. */
#ifndef SRV_CHAT_PREPARE_H
#define SRV_CHAT_PREPARE_H

#include <stdint.h>

#include "server.h"

#define SRV_PREP_SLICE 32  /* tokens fed per engine iteration (a request waits at most this) */
#define SRV_PREP_MAX 64    /* preparations waiting; beyond, the oldest is dropped */

typedef struct srv_prep {
    char id[200];          /* the session's key (sessions.h) */
    uint64_t turn;         /* its turn counter when the answer's request reserved it */
    int32_t *toks;         /* the next prompt's tokens up to the answer's "<|im_end|>\n" */
    int64_t n;
    int started;           /* rolled back to the common prefix already */
    struct srv_prep *next;
} srv_prep;

/* Loop thread, when a generation job is done: for a chat request with a session that ended
 * normally (stop or length, n = 1, no error), queue the rendering and tokenizing on the libuv
 * pool; its result goes to the engine (srv_engine_prepare). */
void srv_chat_prepare_job_done(srv_job *j);

/* Engine thread, idle: one step of p (the rollback and at most `slice` tokens).  Returns 1 when
 * p is over (done, given up or impossible; the caller frees it), 0 when more remains. */
int srv_chat_prepare_step(srv_server *s, srv_prep *p, int slice);

void srv_prep_free(srv_prep *p);

#endif
