/* log.h: one-line logs to stderr, as text or JSON (--log-format). Thread-safe (one fprintf). */
#ifndef SRV_LOG_H
#define SRV_LOG_H
struct srv_server;
enum { SRV_LOG_ERROR = 0, SRV_LOG_WARN, SRV_LOG_INFO, SRV_LOG_DEBUG };
void srv_log(const struct srv_server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --verbose: one line per finished request (access_log.c); nothing without --verbose. */
typedef struct srv_request_log {
    const char *method, *path;
    int status;              /* 0: no response was queued (the client left first) */
    long prompt_tokens, generated_tokens, reused_tokens;
    double ttft_ms;          /* arrival to first generated token; < 0: none */
    double total_ms;         /* arrival to completion */
} srv_request_log;
void srv_log_request(const struct srv_server *s, const srv_request_log *r);
#endif
