/* conn_guard.h: the heartbeat that keeps MHD running and the per-request read deadline
 * (--read-timeout).  Loop thread only. */
#ifndef SRV_CONN_GUARD_H
#define SRV_CONN_GUARD_H

#include "http.h"

/* MHD_OPTION_NOTIFY_CONNECTION callback (cls: the server). */
void srv_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe);
/* MHD_OPTION_URI_LOG_CALLBACK: a request line arrived; the read deadline starts. */
void *srv_guard_request_line(void *cls, const char *uri, struct MHD_Connection *c);
/* The access handler has the whole request (headers and body). */
void srv_guard_request_read(struct MHD_Connection *c);
/* MHD completed the request: the connection may send the next one from now on. */
void srv_guard_request_done(struct MHD_Connection *c);
void srv_guard_start(srv_server *s);
void srv_guard_stop(srv_server *s, uv_close_cb cb);

#endif
