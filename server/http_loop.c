/* http_loop.c: libmicrohttpd driven from the libuv loop (../shared/docs/MHD-LIBUV.md).
 *
 * MHD runs in external epoll mode with no threads: a uv_poll_t watches its epoll fd and a
 * one-shot uv_timer_t honours MHD_get_timeout; srv_pump() is called after every event that may
 * give MHD work.  Engine events arrive through a uv_async_t that drains the ready list, turns
 * events into response bytes (respond.c) and resumes suspended connections.  SIGINT/SIGTERM:
 * shutdown.c. */
#include <arpa/inet.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conn_guard.h"
#include "engine_thread.h"
#include "http.h"
#include "log.h"
#include "outflow.h"
#include "respond.h"
#include "sessions.h"

/* ---------------------------------------------------------------- pump */

static void on_mhd_timer(uv_timer_t *t) { srv_pump(t->data); }

static void on_mhd_poll(uv_poll_t *p, int status, int events) { srv_pump(p->data); }

static unsigned n_connections(srv_server *s) {
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return i ? i->num_connections : 0;
}

void srv_pump(srv_server *s) {
    if (!s->mhd) return;
    /* A run that closes connections (idle timeout at --max-connections) leaves the listen
     * socket out of MHD's epoll set until the next run, and MHD may report no timeout: run
     * again while runs close connections (bounded; the heartbeat in conn_guard.c is the
     * backstop). */
    for (int i = 0; i < 4; i++) {
        unsigned before = n_connections(s);
        MHD_run(s->mhd);
        if (n_connections(s) >= before) break;
    }
    MHD_UNSIGNED_LONG_LONG to = 0;
    if (MHD_get_timeout(s->mhd, &to) == MHD_YES) uv_timer_start(&s->mhd_timer, on_mhd_timer, to, 0);
    else uv_timer_stop(&s->mhd_timer);
}

/* ---------------------------------------------------------------- responses */

enum MHD_Result srv_send(srv_server *s, struct MHD_Connection *c, int status, const char *ctype,
                         const char *body, size_t len) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, SRV_REPLICA_HEADER, s->replica_id);
    if (status == 429 || status == 503) MHD_add_response_header(r, "Retry-After", "1");
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (s->shutting_down) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    srv_metrics_count_status(&s->metrics, status);
    return rc;
}

enum MHD_Result srv_send_error(srv_server *s, struct MHD_Connection *c, const srv_error *e) {
    sbuf b = {0};
    srv_error_json(&b, e);
    enum MHD_Result rc = b.oom ? MHD_NO
                               : srv_send(s, c, e->status, "application/json", b.p, b.len);
    sb_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- suspend / resume */

typedef struct watch {
    uv_poll_t h;
    srv_job *j;
    int fd;
    int active;
    int half;   /* the client shut its sending side: now only a hang-up or a reset counts */
} watch;

static void on_watch_closed(uv_handle_t *h) { free(h); /* h is the first member of watch */ }

/* A real hang-up: the connection is closed both ways or was reset (POLLHUP / POLLERR).  A
 * half-close (`nc -N`, shutdown(SHUT_WR) after the request) only raises POLLRDHUP. */
static int hung_up(int fd) {
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    return poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLERR | POLLNVAL));
}

static void on_hangup(uv_poll_t *p, int status, int events) {
    watch *w = (watch *)p;
    srv_job *j = w->j;
    (void)events;
    if (!j) return;
    if (status >= 0 && !hung_up(w->fd)) {
        if (w->half) return;
        /* The end of the client's stream: a half-close or a close, which look the same until
         * the server sends.  Keep serving and watch for the hang-up or reset alone (always
         * reported by epoll; UV_PRIORITIZED is only there to keep the watcher registered). */
        w->half = 1;
        uv_poll_start(&w->h, UV_PRIORITIZED, on_hangup);
        if (j->p.stream && j->stream_response && !j->stream_finished) {
            /* probe a stream at once: an SSE comment, answered by a reset if the client left */
            sb_puts(&j->out, ":\n\n");
            srv_job_resume(j);
            srv_pump(j->srv);
        }
        return;
    }
    atomic_store(&j->cancel, SRV_CANCEL_GONE);
    if (j->srv->engine) srv_engine_poke(j->srv->engine);
    /* the hang-up stays readable: stop watching (MHD sees it too once it has the fd back) */
    uv_poll_stop(&w->h);
    w->active = 0;
    srv_job_resume(j);
    srv_pump(j->srv);
}

void srv_job_suspend(srv_job *j) {
    if (j->suspended || !j->conn) return;
    MHD_suspend_connection(j->conn);
    j->suspended = 1;
    if (!j->watch) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(j->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        watch *w = calloc(1, sizeof *w);
        if (!ci || !w || uv_poll_init(j->srv->loop, &w->h, ci->connect_fd)) {
            free(w);
            return;
        }
        w->j = j;
        w->fd = ci->connect_fd;
        w->h.data = w;
        j->watch = &w->h;
    }
    watch *w = (watch *)j->watch;
    if (!w->active) {
        uv_poll_start(&w->h, w->half ? UV_PRIORITIZED : UV_DISCONNECT, on_hangup);
        w->active = 1;
    }
}

/* The watcher is left running across resumes: stopping and restarting it for every streamed
 * chunk cost two epoll_ctl calls per token.  While the connection is not suspended MHD watches
 * the socket as well; a hang-up seen here then only sets the cancel flag. */
void srv_job_resume(srv_job *j) {
    if (!j->suspended || !j->conn) return;
    j->suspended = 0;
    MHD_resume_connection(j->conn);
}

static void close_watch(srv_job *j) {
    if (!j->watch) return;
    watch *w = (watch *)j->watch;
    w->j = NULL;
    uv_close((uv_handle_t *)&w->h, on_watch_closed);
    j->watch = NULL;
}

/* ---------------------------------------------------------------- MHD callbacks */

typedef struct framing {
    int n_length, n_te, chunked_only;
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    framing *f = cls;
    (void)kind;
    if (!strcasecmp(key, "Content-Length")) f->n_length++;
    if (!strcasecmp(key, "Transfer-Encoding")) {
        f->n_te++;
        f->chunked_only = value && !strcasecmp(value, "chunked");
    }
    return MHD_YES;
}

/* How the body is delimited must be unambiguous: one Content-Length, or Transfer-Encoding:
 * chunked alone.  Two lengths (a proxy may use the other one: request smuggling) or both
 * headers are refused with 400; a transfer coding we do not implement gets 501 (it used to get
 * no answer until the idle timeout).  Returns 0 or the status, with e filled. */
static int bad_framing(struct MHD_Connection *c, srv_error *e) {
    framing f = {0, 0, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
    if (f.n_length > 1)
        return srv_fail(e, 400, NULL, "the request has %d Content-Length headers", f.n_length), 400;
    if (f.n_te && f.n_length)
        return srv_fail(e, 400, NULL, "the request has both Content-Length and "
                        "Transfer-Encoding"), 400;
    if (f.n_te > 1 || (f.n_te && !f.chunked_only))
        return srv_fail(e, 501, NULL, "only 'Transfer-Encoding: chunked' is supported"), 501;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls) {
    srv_server *s = cls;
    srv_conn *cc = *con_cls;
    if (!cc) {
        cc = calloc(1, sizeof *cc);
        if (!cc) return MHD_NO;
        cc->srv = s;
        cc->counted = 1;
        s->active++;
        *con_cls = cc;
        cc->t0 = srv_now();
        snprintf(cc->method, sizeof cc->method, "%s", method);
        snprintf(cc->path, sizeof cc->path, "%s", url);
        srv_error fe;
        if (bad_framing(c, &fe)) {
            cc->answered = 1;
            srv_guard_request_read(c);
            return srv_send_error(s, c, &fe);
        }
        if (!srv_route_wants_body(s, c, url, method)) {
            /* answered from the headers alone (no or a bad API key, a route or method that
             * takes no body, loading, shutting down): no body byte is read or buffered, and no
             * `100 Continue` goes out */
            cc->answered = 1;
            srv_guard_request_read(c);
            return srv_route(s, c, cc, url, method);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body_bytes) {
            cc->too_big = 1;
            srv_error e;
            srv_fail(&e, 413, NULL, "the request body is larger than --max-body-bytes (%zu)",
                     s->cfg.max_body_bytes);
            return srv_send_error(s, c, &e);
        }
        return MHD_YES;
    }
    if (cc->answered) { /* MHD reads no body after an early answer; discard if it does */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cc->too_big && cc->body.len + *upload_size > s->cfg.max_body_bytes) {
            cc->too_big = 1;
            sb_free(&cc->body);
        }
        if (!cc->too_big) sb_put(&cc->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (cc->job) return srv_route_resume(s, c, cc);
    srv_guard_request_read(c);
    if (cc->too_big) {
        srv_error e;
        srv_fail(&e, 413, NULL, "the request body is larger than --max-body-bytes (%zu)",
                 s->cfg.max_body_bytes);
        return srv_send_error(s, c, &e);
    }
    if (cc->body.oom) {
        srv_error e;
        srv_fail(&e, 500, NULL, "out of memory reading the request body");
        return srv_send_error(s, c, &e);
    }
    return srv_route(s, c, cc, url, method);
}

static void log_request(srv_server *s, struct MHD_Connection *c, const srv_conn *cc, const srv_job *j) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
    double now = srv_now();
    srv_request_log r = {.method = cc->method, .path = cc->path, .status = ci ? (int)ci->http_status : 0,
                         .ttft_ms = -1, .total_ms = (now - cc->t0) * 1e3};
    if (j && j->kind == JOBK_GEN) {
        r.prompt_tokens = j->prompt_tokens;
        r.generated_tokens = j->completion_tokens;
        r.reused_tokens = atomic_load(&j->reused_tokens);
        if (j->t_first > 0) r.ttft_ms = (j->t_first - cc->t0) * 1e3;
    }
    srv_log_request(s, &r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    srv_server *s = cls;
    srv_conn *cc = *con_cls;
    srv_guard_request_done(c);
    if (!cc) return;
    srv_job *j = cc->job;
    if (s->cfg.verbose) log_request(s, c, cc, j);
    if (j) {
        j->completed = 1;
        srv_out_release(j);
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && j->state != JOB_DONE) {
            atomic_store(&j->cancel, SRV_CANCEL_GONE);
            if (s->engine) srv_engine_poke(s->engine);
        }
        close_watch(j);
        if (j->lprev) j->lprev->lnext = j->lnext;
        else if (s->live == j) s->live = j->lnext;
        if (j->lnext) j->lnext->lprev = j->lprev;
        j->lprev = j->lnext = NULL;
        j->conn = NULL;
        j->suspended = 0;
        srv_job_unref(j);
    }
    if (cc->counted) s->active--;
    sb_free(&cc->body);
    free(cc);
    *con_cls = NULL;
}

/* ---------------------------------------------------------------- engine wake-up */

void srv_drain_ready(srv_server *s, int process) {
    pthread_mutex_lock(&s->ready_mu);
    srv_job *list = s->ready_head;
    s->ready_head = NULL;
    pthread_mutex_unlock(&s->ready_mu);
    while (list) {
        srv_job *j = list;
        list = j->next_ready;
        pthread_mutex_lock(&j->mu);
        srv_event *ev = j->ev;
        int n = j->n_ev;
        j->ev = NULL;
        j->n_ev = j->cap_ev = 0;
        j->listed = 0;
        pthread_mutex_unlock(&j->mu);
        if (process) srv_job_process(j, ev, n);
        free(ev);
        if (process && j->suspended) {
            int go = j->p.stream ? (j->stream_response && (j->out.len > j->out_off ||
                                                           j->stream_finished))
                                 : j->state == JOB_DONE;
            if (go) srv_job_resume(j);
        }
        srv_job_unref(j);
    }
}

static void on_wake(uv_async_t *a) {
    srv_server *s = a->data;
    srv_drain_ready(s, 1);
    srv_pump(s);
}

/* ---------------------------------------------------------------- start */

int srv_http_start(srv_server *s) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s->cfg.host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)s->cfg.port);
    } else if (inet_pton(AF_INET6, s->cfg.host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)s->cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        srv_log(s, SRV_LOG_ERROR, "--host '%s' is not an IPv4 or IPv6 address", s->cfg.host);
        return -1;
    }
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED,
        (MHD_RequestCompletedCallback)on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        (MHD_NotifyConnectionCallback)srv_guard_notify, s, MHD_OPTION_URI_LOG_CALLBACK,
        srv_guard_request_line, s, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)s->cfg.idle_timeout, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)s->cfg.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(64 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_END);
    if (!s->mhd) {
        srv_log(s, SRV_LOG_ERROR, "cannot listen on %s:%d", s->cfg.host, s->cfg.port);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->bound_port = pi ? pi->port : s->cfg.port;
    uv_poll_init(s->loop, &s->mhd_poll, di->epoll_fd);
    s->mhd_poll.data = s;
    uv_poll_start(&s->mhd_poll, UV_READABLE, on_mhd_poll);
    uv_timer_init(s->loop, &s->mhd_timer);
    s->mhd_timer.data = s;
    uv_async_init(s->loop, &s->wake, on_wake);
    s->wake.data = s;
    srv_shutdown_init(s);
    srv_guard_start(s);
    srv_log(s, SRV_LOG_INFO, "listening on http://%s:%u", s->cfg.host, (unsigned)s->bound_port);
    srv_pump(s);
    return 0;
}
