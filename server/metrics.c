/* metrics.c: Prometheus text rendering of srv_metrics. */
#include "metrics.h"

#include <time.h>

static const int status_codes[SRV_N_STATUS] = {200, 400, 401, 404, 405, 409, 413, 429, 500, 503};
static const double bounds[SRV_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                0.25, 0.5, 1, 2.5, 5, 10, 30};

void srv_metrics_count_status(srv_metrics *m, int status) {
    int idx = 8; /* unknown codes count as 500 */
    for (int i = 0; i < SRV_N_STATUS; i++)
        if (status_codes[i] == status) idx = i;
    atomic_fetch_add_explicit(&m->requests[idx], 1, memory_order_relaxed);
}

void srv_hist_observe(srv_hist *h, double s) {
    int i = 0;
    while (i < SRV_HIST_BUCKETS && s > bounds[i]) i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)(s * 1e6), memory_order_relaxed);
}

static void render_hist(sbuf *o, const char *name, const char *help, srv_hist *h) {
    sb_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long acc = 0;
    for (int i = 0; i <= SRV_HIST_BUCKETS; i++) {
        acc += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < SRV_HIST_BUCKETS) sb_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], acc);
        else sb_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, acc);
    }
    sb_printf(o, "%s_sum %.6f\n%s_count %llu\n", name,
              (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6, name,
              (unsigned long long)atomic_load_explicit(&h->count, memory_order_relaxed));
}

#define LOAD(x) ((long long)atomic_load_explicit(&(x), memory_order_relaxed))

static void scalar(sbuf *o, const char *name, const char *type, const char *help, long long v) {
    sb_printf(o, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name, v);
}

double srv_thread_cpu_seconds(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)) return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void srv_metrics_render(srv_metrics *m, sbuf *o) {
    sb_puts(o, "# HELP rosa_requests_total HTTP requests answered, by status.\n"
               "# TYPE rosa_requests_total counter\n");
    for (int i = 0; i < SRV_N_STATUS; i++)
        sb_printf(o, "rosa_requests_total{status=\"%d\"} %lld\n", status_codes[i],
                  LOAD(m->requests[i]));
    scalar(o, "rosa_prompt_tokens_total", "counter", "Prompt tokens received.",
           LOAD(m->prompt_tokens));
    scalar(o, "rosa_prompt_tokens_reused_total", "counter",
           "Prompt tokens not recomputed: served from a kept session, or forked for n > 1.",
           LOAD(m->prompt_tokens_reused));
    scalar(o, "rosa_generation_tokens_total", "counter", "Tokens generated.",
           LOAD(m->generation_tokens));
    scalar(o, "rosa_cancellations_total", "counter", "Requests cancelled (disconnect, stop, "
           "timeout, shutdown).", LOAD(m->cancellations));
    scalar(o, "rosa_read_timeouts_total", "counter", "Connections closed because a request did "
           "not arrive in full within --read-timeout.", LOAD(m->read_timeouts));
    scalar(o, "rosa_engine_steps_total", "counter", "Engine iterations.", LOAD(m->engine_steps));
    scalar(o, "rosa_queue_depth", "gauge", "Requests waiting for admission.",
           LOAD(m->queue_depth));
    scalar(o, "rosa_running_requests", "gauge", "Sequences being prefilled or decoded.",
           LOAD(m->running));
    scalar(o, "rosa_paused_requests", "gauge", "Streams paused because their client does not "
           "read.", LOAD(m->paused));
    scalar(o, "rosa_kv_bytes", "gauge", "Attention cache bytes of live sessions.",
           LOAD(m->kv_bytes));
    scalar(o, "rosa_rosa_bytes", "gauge", "ROSA automaton bytes of live sessions.",
           LOAD(m->rosa_bytes));
    scalar(o, "rosa_sessions", "gauge", "Kept sessions.", LOAD(m->sessions));
    scalar(o, "rosa_session_bytes", "gauge", "Bytes held by kept idle sessions.",
           LOAD(m->session_bytes));
    scalar(o, "rosa_session_rollbacks_total", "counter", "Kept sessions rolled back to the "
           "prefix they share with a new prompt (the rest is fed).", LOAD(m->session_rollbacks));
    scalar(o, "rosa_session_rollback_rebuilds_total", "counter", "Kept sessions rebuilt from "
           "scratch because the prompt diverged beyond the rollback horizon (or the backend has "
           "none).",
           LOAD(m->session_rollback_rebuilds));
    scalar(o, "rosa_session_prepared_tokens_total", "counter", "Tokens fed into kept chat "
           "sessions while the engine was idle, ahead of the next turn (the answer as the next "
           "prompt renders it).", LOAD(m->session_prepared_tokens));
    scalar(o, "rosa_session_preparations_total", "counter", "Chat sessions fully prepared for "
           "their next turn.", LOAD(m->session_preparations));
    scalar(o, "rosa_session_preparations_abandoned_total", "counter", "Chat session "
           "preparations given up because a request for the session came first.",
           LOAD(m->session_prep_abandoned));
    scalar(o, "rosa_session_evictions_total", "counter", "Sessions evicted (LRU or TTL).",
           LOAD(m->evictions));
    scalar(o, "rosa_session_disk_sessions", "gauge", "Sessions saved in --session-dir.",
           LOAD(m->disk_sessions));
    scalar(o, "rosa_session_disk_bytes", "gauge", "Bytes of the sessions in --session-dir.",
           LOAD(m->disk_bytes));
    scalar(o, "rosa_session_saves_total", "counter", "Sessions saved to --session-dir.",
           LOAD(m->disk_saves));
    scalar(o, "rosa_session_save_failures_total", "counter", "Saves to --session-dir that "
           "failed (the session was dropped).", LOAD(m->disk_save_failures));
    scalar(o, "rosa_session_restores_total", "counter", "Sessions restored from --session-dir.",
           LOAD(m->disk_restores));
    scalar(o, "rosa_session_restore_failures_total", "counter", "Session files that could not "
           "be restored (bad, foreign, gone): the session was rebuilt from the prompt.",
           LOAD(m->disk_restore_failures));
    scalar(o, "rosa_session_disk_evictions_total", "counter", "Sessions removed from "
           "--session-dir by --session-dir-bytes (least recently used first).",
           LOAD(m->disk_dropped));
    /* what the server costs besides the model: compare the loop thread's CPU time per
     * generated token with the engine step (docs/PERFORMANCE.md) */
    sb_printf(o, "# HELP rosa_loop_thread_cpu_seconds_total CPU time of the HTTP loop thread "
                 "(HTTP, JSON, SSE; user + system).\n# TYPE rosa_loop_thread_cpu_seconds_total "
                 "counter\nrosa_loop_thread_cpu_seconds_total %.6f\n", srv_thread_cpu_seconds());
    sb_printf(o, "# HELP rosa_engine_thread_cpu_seconds_total CPU time of the engine thread "
                 "(not counting the backend's worker threads).\n# TYPE "
                 "rosa_engine_thread_cpu_seconds_total counter\n"
                 "rosa_engine_thread_cpu_seconds_total %.6f\n",
              (double)LOAD(m->engine_thread_cpu_ns) * 1e-9);
    render_hist(o, "rosa_time_to_first_token_seconds", "Arrival to first generated token.",
                &m->ttft);
    render_hist(o, "rosa_time_per_output_token_seconds", "Interval between generated tokens.",
                &m->per_token);
    render_hist(o, "rosa_engine_step_seconds", "Duration of one engine iteration.", &m->step);
    render_hist(o, "rosa_session_save_seconds", "Time to save one session to --session-dir "
                "(disk thread).", &m->disk_save_time);
    render_hist(o, "rosa_session_restore_seconds", "Time to restore one session from "
                "--session-dir (disk thread; the request waits in the queue meanwhile).",
                &m->disk_restore_time);
}
