/* shutdown.c: SIGINT/SIGTERM, on the loop thread.  Every path ends every open request with
 * an answer the client can read (a JSON 503, or for a stream an error event, `data: [DONE]` and
 * the terminating chunk), never with a cut connection:
 *
 *   1. first signal: stop accepting (listen socket closed; new requests on open connections get
 *      503), let running requests finish for --shutdown-grace seconds;
 *   2. grace over (or a second signal): cancel what is left; the engine reports the error to
 *      each request at its next iteration;
 *   3. FORCE_AFTER seconds later (or a third signal), requests the engine has not ended yet (a
 *      long engine step, a prompt still being tokenized) are answered by the loop itself;
 *   4. FLUSH_FOR seconds later at most (clients that do not read), or as soon as nothing is
 *      open: stop MHD, the engine (which saves the kept sessions to --session-dir first) and
 *      the loop. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "conn_guard.h"
#include "engine_thread.h"
#include "http.h"
#include "log.h"
#include "respond.h"

#define FORCE_AFTER 2.0
#define FLUSH_FOR 1.0

static void close_cb(uv_handle_t *h) { (void)h; }

static void finish_shutdown(srv_server *s) {
    uv_timer_stop(&s->drain_timer);
    if (s->mhd) {
        /* resume everything still suspended, otherwise MHD_stop_daemon aborts */
        for (srv_job *j = s->live; j; j = j->lnext) {
            atomic_store(&j->cancel, SRV_CANCEL_GONE);
            srv_job_resume(j);
        }
        uv_poll_stop(&s->mhd_poll);
        uv_timer_stop(&s->mhd_timer);
        MHD_stop_daemon(s->mhd);
        s->mhd = NULL;
    }
    srv_engine_stop(s->engine);
    s->engine = NULL;
    srv_drain_ready(s, 0);
    uv_close((uv_handle_t *)&s->mhd_poll, close_cb);
    uv_close((uv_handle_t *)&s->mhd_timer, close_cb);
    uv_close((uv_handle_t *)&s->wake, close_cb);
    uv_close((uv_handle_t *)&s->sig_int, close_cb);
    uv_close((uv_handle_t *)&s->sig_term, close_cb);
    uv_close((uv_handle_t *)&s->drain_timer, close_cb);
    srv_guard_stop(s, close_cb);
    srv_log(s, SRV_LOG_INFO, "stopped");
}

static void cancel_all(srv_server *s) {
    s->shutdown_phase = SRV_PHASE_CANCELLED;
    s->shutdown_deadline = srv_now() + FORCE_AFTER;
    srv_log(s, SRV_LOG_WARN, "grace period over: cancelling %ld requests", s->active);
    /* cut running requests short with an error event + [DONE] (or an error response) */
    for (srv_job *j = s->live; j; j = j->lnext) {
        int none = SRV_CANCEL_NONE;
        atomic_compare_exchange_strong(&j->cancel, &none, SRV_CANCEL_SHUTDOWN);
    }
    if (s->engine) srv_engine_poke(s->engine);
}

/* The engine did not end them in time: answer every open request from here. */
static void force_all(srv_server *s) {
    s->shutdown_phase = SRV_PHASE_FORCED;
    s->shutdown_deadline = srv_now() + FLUSH_FOR;
    srv_log(s, SRV_LOG_WARN, "ending %ld requests without the engine", s->active);
    for (srv_job *j = s->live; j; j = j->lnext) srv_job_end_now(j, 503, "the server is shutting "
                                                                "down; the request was cut short");
}

static void on_drain_tick(uv_timer_t *t) {
    srv_server *s = t->data;
    if (s->active == 0) {
        finish_shutdown(s);
        return;
    }
    if (srv_now() >= s->shutdown_deadline) {
        if (s->shutdown_phase == SRV_PHASE_GRACE) cancel_all(s);
        else if (s->shutdown_phase == SRV_PHASE_CANCELLED) force_all(s);
        else {
            srv_log(s, SRV_LOG_WARN, "%ld connections did not take their answer: closing",
                    s->active);
            finish_shutdown(s);
            return;
        }
    }
    srv_pump(s);
}

static void on_signal(uv_signal_t *h, int signum) {
    srv_server *s = h->data;
    if (s->shutting_down) {
        /* each further signal moves on to the next phase at once */
        srv_log(s, SRV_LOG_WARN, "signal %d again: moving on", signum);
        s->shutdown_deadline = srv_now();
        on_drain_tick(&s->drain_timer);
        return;
    }
    s->shutting_down = 1;
    s->shutdown_phase = SRV_PHASE_GRACE;
    srv_log(s, SRV_LOG_INFO, "signal %d: draining %ld requests (grace %.0f s)", signum, s->active,
            s->cfg.shutdown_grace);
    if (s->mhd) {
        MHD_socket fd = MHD_quiesce_daemon(s->mhd);
        if (fd != MHD_INVALID_SOCKET) close(fd);
    }
    s->shutdown_deadline = srv_now() + s->cfg.shutdown_grace;
    uv_timer_start(&s->drain_timer, on_drain_tick, 0, 50);
    srv_pump(s);
}

void srv_shutdown_init(srv_server *s) {
    uv_timer_init(s->loop, &s->drain_timer);
    s->drain_timer.data = s;
    uv_signal_init(s->loop, &s->sig_int);
    s->sig_int.data = s;
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_init(s->loop, &s->sig_term);
    s->sig_term.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
}
