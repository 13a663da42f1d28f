/* log.c: timestamped log lines; JSON lines when --log-format json. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sbuf.h"
#include "server.h"

static const char *const names[] = {"error", "warn", "info", "debug"};

void srv_log(const struct srv_server *s, int level, const char *fmt, ...) {
    if (level == SRV_LOG_DEBUG && !(s && s->cfg.verbose)) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    if (s && s->cfg.log_json) {
        sbuf b = {0};
        sb_printf(&b, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", when,
                  ts.tv_nsec / 1000000, names[level]);
        sb_json_str(&b, msg, strlen(msg));
        sb_puts(&b, "}\n");
        if (!b.oom) fputs(b.p, stderr);
        sb_free(&b);
    } else {
        fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000, names[level], msg);
    }
}
