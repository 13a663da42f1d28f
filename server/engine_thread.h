/* engine_thread.h: the one thread that runs the model (continuous batching).
 *
 * It loads the model and tokenizer at start (the server answers 503 until then), then loops:
 * admit queued requests up to --max-batch sequences, give prefilling sequences up to
 * --prefill-chunk prompt tokens, advance every decoding sequence by one token in one
 * rosa_step_batch call, sample, and push events to each job (srv_job_push), then wake the loop once (srv_wake_loop). */
#ifndef SRV_ENGINE_THREAD_H
#define SRV_ENGINE_THREAD_H

#include "server.h"

typedef struct srv_engine srv_engine;

int srv_engine_start(srv_server *s, srv_engine **out);
/* Loop thread: queue a prepared job (the engine takes one reference).  Returns 0, or -1 when
 * --max-queue jobs are already waiting (answer 429). */
int srv_engine_submit(srv_engine *e, srv_job *j);
/* Loop thread: queue a chat session's preparation (chat_prepare.h; the engine takes p).  It runs
 * only while nothing else is runnable; a newer one for the same session replaces it. */
struct srv_prep;
void srv_engine_prepare(srv_engine *e, struct srv_prep *p);
/* Loop thread: a job's cancel flag or stop flag changed: wake the engine if it sleeps. */
void srv_engine_poke(srv_engine *e);
/* Cancel everything, join the thread, free the model.  After it returns no more events come. */
void srv_engine_stop(srv_engine *e);

#endif
