/* respond.h: building OpenAI responses from engine events (loop thread only). */
#ifndef SRV_RESPOND_H
#define SRV_RESPOND_H
#include "server.h"

void srv_error_json(sbuf *o, const srv_error *e);
/* Apply n events to the job: decode, stop strings, logprobs, SSE chunks into j->out. */
void srv_job_process(srv_job *j, const srv_event *ev, int n);
/* The non-streaming response object. */
void srv_job_result_json(srv_job *j, sbuf *o);
/* Streaming completions with echo: send the prompt text first. */
void srv_job_stream_echo(srv_job *j);
/* End the request now with an error the client still receives (503 JSON, or for a stream an
 * error event and [DONE]), whatever the engine is doing; its later events are ignored.  The
 * caller pumps afterwards. */
void srv_job_end_now(srv_job *j, int status, const char *msg);
#endif
