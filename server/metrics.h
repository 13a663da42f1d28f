/* metrics.h: Prometheus counters, gauges and histograms, updated from both threads with
 * relaxed atomics and rendered as text exposition format by GET /metrics. */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H
#include <stdatomic.h>
#include <stdint.h>

#include "sbuf.h"

#define SRV_HIST_BUCKETS 14

typedef struct srv_hist {
    atomic_ullong bucket[SRV_HIST_BUCKETS + 1]; /* last one: +Inf */
    atomic_ullong count;
    atomic_ullong sum_us;
} srv_hist;

#define SRV_N_STATUS 10

typedef struct srv_metrics {
    atomic_ullong requests[SRV_N_STATUS]; /* by status, see srv_metrics_status_index */
    atomic_ullong prompt_tokens, generation_tokens, prompt_tokens_reused;
    atomic_llong queue_depth, running, paused, kv_bytes, rosa_bytes, sessions, session_bytes;
    atomic_ullong evictions, cancellations, engine_steps;
    atomic_ullong session_rollbacks;         /* kept sessions rolled back to a shared prefix */
    atomic_ullong session_rollback_rebuilds; /* ... rebuilt instead: beyond the horizon */
    atomic_ullong session_prepared_tokens;   /* chat_prepare.c: fed ahead of the next turn */
    atomic_ullong session_preparations;      /* ... preparations completed */
    atomic_ullong session_prep_abandoned;    /* ... given up: a request came first */
    atomic_ullong read_timeouts;        /* connections closed by --read-timeout */
    atomic_ullong engine_thread_cpu_ns; /* CPU time of the engine thread, after each iteration */
    /* --session-dir (session_disk.c) */
    atomic_llong disk_sessions, disk_bytes;
    atomic_ullong disk_saves, disk_save_failures, disk_restores, disk_restore_failures;
    atomic_ullong disk_dropped;         /* removed by --session-dir-bytes (LRU) */
    srv_hist ttft, per_token, step;
    srv_hist disk_save_time, disk_restore_time;
} srv_metrics;

void srv_metrics_count_status(srv_metrics *m, int status);
void srv_hist_observe(srv_hist *h, double seconds);
/* Call on the loop thread: it also reports that thread's own CPU time. */
void srv_metrics_render(srv_metrics *m, sbuf *out);
/* CPU time (user + system) of the calling thread, in seconds. */
double srv_thread_cpu_seconds(void);
#endif
