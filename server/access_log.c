/* access_log.c: --verbose: one line per finished HTTP request, written when MHD reports the
 * request completed (loop thread): method, path, status, prompt / generated / reused tokens,
 * time to first token and total time, both from the request's arrival.  Text or JSON lines per
 * --log-format, like every other log line (log.c). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sbuf.h"
#include "server.h"

void srv_log_request(const srv_server *s, const srv_request_log *r) {
    if (!s || !s->cfg.verbose) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    sbuf b = {0};
    if (s->cfg.log_json) {
        sb_printf(&b, "{\"time\":\"%s.%03ldZ\",\"level\":\"info\",\"msg\":\"request\",\"method\":", when,
                  ts.tv_nsec / 1000000);
        sb_json_str(&b, r->method, strlen(r->method));
        sb_puts(&b, ",\"path\":");
        sb_json_str(&b, r->path, strlen(r->path));
        sb_printf(&b, ",\"status\":%d,\"prompt_tokens\":%ld,\"generated_tokens\":%ld,\"reused_tokens\":%ld,",
                  r->status, r->prompt_tokens, r->generated_tokens, r->reused_tokens);
        if (r->ttft_ms >= 0) sb_printf(&b, "\"ttft_ms\":%.3f", r->ttft_ms);
        else sb_puts(&b, "\"ttft_ms\":null");
        sb_printf(&b, ",\"total_ms\":%.3f}\n", r->total_ms);
    } else {
        /* the path is the client's: printable ASCII only, so one request stays one line */
        char path[160];
        size_t n = 0;
        for (const char *p = r->path; *p && n + 1 < sizeof path; p++)
            path[n++] = *p > ' ' && *p < 127 ? *p : '?';
        path[n] = 0;
        sb_printf(&b, "%s.%03ldZ info  %s %s %d prompt_tokens=%ld generated_tokens=%ld reused_tokens=%ld ", when,
                  ts.tv_nsec / 1000000, r->method, path, r->status, r->prompt_tokens, r->generated_tokens,
                  r->reused_tokens);
        if (r->ttft_ms >= 0) sb_printf(&b, "ttft_ms=%.3f", r->ttft_ms);
        else sb_puts(&b, "ttft_ms=-");
        sb_printf(&b, " total_ms=%.3f\n", r->total_ms);
    }
    if (!b.oom) fputs(b.p, stderr);
    sb_free(&b);
}
