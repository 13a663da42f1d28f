/* http.h: shared between http_loop.c (libuv + libmicrohttpd glue) and routes.c (endpoints).
 * Everything here runs on the loop thread. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <microhttpd.h>

#include "server.h"

/* per-connection state (MHD's con_cls) */
typedef struct srv_conn {
    srv_server *srv;
    sbuf body;
    int too_big;
    int answered;       /* a response was queued from the headers alone */
    int counted;        /* counted in srv->active */
    srv_job *job;
    double t0;          /* arrival (srv_now), for --verbose */
    char method[16], path[200]; /* for --verbose (path cut to fit) */
} srv_conn;

/* Queue a complete response (body copied).  Adds Content-Type, Retry-After on 429, Connection:
 * close while shutting down, and counts the status in the metrics. */
enum MHD_Result srv_send(srv_server *s, struct MHD_Connection *c, int status, const char *ctype,
                         const char *body, size_t len);
enum MHD_Result srv_send_error(srv_server *s, struct MHD_Connection *c, const srv_error *e);

/* Suspend the job's connection (only from the access handler or the SSE reader) and watch the
 * socket for the peer hanging up meanwhile. */
void srv_job_suspend(srv_job *j);
/* Resume if suspended (outside MHD callbacks; the caller pumps afterwards). */
void srv_job_resume(srv_job *j);
void srv_pump(srv_server *s);
/* Take the engine's events (ready list) and turn them into responses (process = 0: drop them). */
void srv_drain_ready(srv_server *s, int process);

/* shutdown.c: SIGINT/SIGTERM handlers and the drain (set up by srv_http_start). */
void srv_shutdown_init(srv_server *s);

/* routes.c */
/* From the headers alone: 1 when the request goes on to read its body (an authorised POST to an
 * endpoint that takes one, on a ready server); 0 when srv_route can answer at once. */
int srv_route_wants_body(srv_server *s, struct MHD_Connection *c, const char *url,
                         const char *method);
enum MHD_Result srv_route(srv_server *s, struct MHD_Connection *c, srv_conn *cc, const char *url,
                          const char *method);
enum MHD_Result srv_route_resume(srv_server *s, struct MHD_Connection *c, srv_conn *cc);

#endif
