/* log.h: one-line logs to stderr, as text or JSON (--log-format). Thread-safe (one fprintf). */
#ifndef SRV_LOG_H
#define SRV_LOG_H
struct srv_server;
enum { SRV_LOG_ERROR = 0, SRV_LOG_WARN, SRV_LOG_INFO, SRV_LOG_DEBUG };
void srv_log(const struct srv_server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif
