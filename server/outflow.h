/* outflow.h: bounds on what one request sends: --max-response-bytes and stream backpressure
 * (outflow.c).  Loop thread only. */
#ifndef SRV_OUTFLOW_H
#define SRV_OUTFLOW_H

#include "server.h"

/* A stream pauses its generation once this many bytes wait for a client that does not read,
 * and resumes below SRV_OUT_LOW (MHD holds at most one more block of 16 KiB). */
#define SRV_OUT_HIGH ((size_t)256 << 10)
#define SRV_OUT_LOW ((size_t)64 << 10)

/* Before a request starts: refuse (413 in j->err, returns -1) when a lower bound of its response
 * (echoed prompts, their log-probabilities) is over --max-response-bytes. */
int srv_out_check_request(srv_job *j);
/* Bytes of response the job holds so far (stream: waiting in j->out; otherwise the choices'
 * text and log-probability fragments). */
size_t srv_out_held(const srv_job *j);
/* After building response bytes: count what grew since `before` (srv_out_held), end the request
 * with 413 over --max-response-bytes, and pause a stream whose client lags behind. */
void srv_out_grew(srv_job *j, size_t before);
/* The SSE reader handed bytes to MHD: resume a paused stream that caught up. */
void srv_out_drained(srv_job *j);
/* The request is over: it no longer counts as paused. */
void srv_out_release(srv_job *j);

#endif
