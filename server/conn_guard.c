/* conn_guard.c: what keeps clients from holding connection slots, on the loop thread.
 *
 * The heartbeat: a repeating timer that pumps MHD twice a second whatever MHD's own timeout
 * says.  MHD takes its listen socket out of its epoll set at --max-connections and puts it back
 * only in a later MHD_run; srv_pump re-runs MHD when a run closed connections, and the heartbeat
 * makes sure no such case can leave the loop asleep with nothing armed (a server that stopped
 * accepting for good after --max-connections idle clients timed out).
 *
 * The read deadline (--read-timeout): once a request line has arrived, the rest of the request
 * (headers and body) must arrive within the deadline, however slowly it trickles in
 * (--idle-timeout only counts time without any byte).  Before its request line a connection (new,
 * or kept alive after a response) has the longer of the two timeouts, so a request line trickled
 * a byte at a time is bounded too.  Past the deadline the socket is shut down; MHD sees the end
 * of the stream and closes the connection.  Connections whose request was read (waiting on the
 * engine, streaming the answer) are not concerned. */
#include "conn_guard.h"

#include <stdlib.h>
#include <sys/socket.h>

#include "log.h"

typedef struct srv_sock {
    struct MHD_Connection *conn;
    int fd;
    double since;       /* start of the current phase */
    int reading;        /* 1: before the request line, 2: request line in, the rest not yet */
    int cut;            /* shut down by the deadline */
    struct srv_sock *prev, *next;
} srv_sock;

void srv_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe) {
    srv_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        srv_sock *k = calloc(1, sizeof *k);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!k || !ci) { /* not guarded: --idle-timeout still applies */
            free(k);
            *socket_context = NULL;
            return;
        }
        k->conn = c;
        k->fd = ci->connect_fd;
        k->since = srv_now();
        k->reading = 1;
        k->next = s->socks;
        if (s->socks) s->socks->prev = k;
        s->socks = k;
        *socket_context = k;
        return;
    }
    srv_sock *k = *socket_context;
    if (!k) return;
    if (k->prev) k->prev->next = k->next;
    else s->socks = k->next;
    if (k->next) k->next->prev = k->prev;
    free(k);
    *socket_context = NULL;
}

static srv_sock *sock_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void *srv_guard_request_line(void *cls, const char *uri, struct MHD_Connection *c) {
    (void)cls;
    (void)uri;
    srv_sock *k = sock_of(c);
    if (k) {
        k->reading = 2;
        k->since = srv_now();
    }
    return NULL; /* the access handler's con_cls starts NULL, as without this callback */
}

void srv_guard_request_read(struct MHD_Connection *c) {
    srv_sock *k = sock_of(c);
    if (k) k->reading = 0;
}

void srv_guard_request_done(struct MHD_Connection *c) {
    srv_sock *k = sock_of(c);
    if (!k) return;
    k->reading = 1;
    k->since = srv_now();
}

static void sweep(srv_server *s) {
    double limit = s->cfg.read_timeout, now = srv_now();
    if (limit <= 0) return;
    double before_line = limit > s->cfg.idle_timeout ? limit : s->cfg.idle_timeout;
    for (srv_sock *k = s->socks; k; k = k->next) {
        if (!k->reading || k->cut || now - k->since <= (k->reading == 2 ? limit : before_line))
            continue;
        k->cut = 1;
        shutdown(k->fd, SHUT_RDWR);
        atomic_fetch_add_explicit(&s->metrics.read_timeouts, 1, memory_order_relaxed);
        srv_log(s, SRV_LOG_DEBUG, "closing a connection whose request took longer than "
                "--read-timeout (%.0f s)", limit);
    }
}

static void on_tick(uv_timer_t *t) {
    srv_server *s = t->data;
    sweep(s);
    srv_pump(s);
}

void srv_guard_start(srv_server *s) {
    uv_timer_init(s->loop, &s->guard_tick);
    s->guard_tick.data = s;
    uv_timer_start(&s->guard_tick, on_tick, 500, 500);
}

void srv_guard_stop(srv_server *s, uv_close_cb cb) {
    uv_timer_stop(&s->guard_tick);
    uv_close((uv_handle_t *)&s->guard_tick, cb);
}
