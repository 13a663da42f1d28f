/* main.c: rosa-server entry point: flags, the loop, the engine thread, a clean exit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine_thread.h"
#include "log.h"
#include "server.h"
#include "session_disk.h"
#include "sessions.h"

static void set_paths(srv_server *s) {
    const srv_config *c = &s->cfg;
    if (c->model) {
        snprintf(s->model_path, sizeof s->model_path, "%s", c->model);
        if (c->adapter) snprintf(s->adapter_path, sizeof s->adapter_path, "%s", c->adapter);
        if (c->tokenizer) {
            snprintf(s->tokenizer_path, sizeof s->tokenizer_path, "%s", c->tokenizer);
        } else {
            struct stat st;
            char p[1100];
            snprintf(p, sizeof p, "%s/tokenizer.json", c->model);
            if (stat(p, &st) == 0) snprintf(s->tokenizer_path, sizeof s->tokenizer_path, "%s", p);
        }
    }
    /* model id: --model-name, else the model directory's last component, else the demo */
    const char *name = c->model_name;
    char buf[256];
    if (!name && c->model) {
        snprintf(buf, sizeof buf, "%s", c->model);
        size_t n = strlen(buf);
        while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
        char *slash = strrchr(buf, '/');
        name = slash ? slash + 1 : buf;
    }
    snprintf(s->model_id, sizeof s->model_id, "%s", name ? name : "rosa-copy-demo");
    /* replica id: --replica-id, else the hostname (a pod name under Kubernetes), with any
     * character unfit for a header value replaced */
    if (c->replica_id) {
        snprintf(s->replica_id, sizeof s->replica_id, "%s", c->replica_id);
    } else {
        if (gethostname(s->replica_id, sizeof s->replica_id - 1) != 0 || !s->replica_id[0])
            snprintf(s->replica_id, sizeof s->replica_id, "rosa-server");
        for (char *p = s->replica_id; *p; p++)
            if (*p <= ' ' || *p > '~') *p = '_';
    }
}

int main(int argc, char **argv) {
    srv_server *s = calloc(1, sizeof *s);
    srv_sessions *sessions = calloc(1, sizeof *sessions);
    if (!s || !sessions) return 1;
    srv_config_defaults(&s->cfg);
    int rc = srv_config_parse(&s->cfg, argc, argv);
    if (rc) {
        free(s);
        free(sessions);
        return rc > 0 ? 0 : 2;
    }
    char err[300];
    if (srv_auth_init(&s->auth, s->cfg.api_key, s->cfg.api_key_file, s->cfg.metrics_key, err,
                      sizeof err)) {
        fprintf(stderr, "rosa-server: %s\n", err);
        free(s);
        free(sessions);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    set_paths(s);
    s->started = time(NULL);
    pthread_mutex_init(&s->ready_mu, NULL);
    srv_sessions_init(sessions, s->cfg.max_session_bytes, s->cfg.session_ttl, s->cfg.max_sessions,
                      &s->metrics);
    s->sessions = sessions;
    if (s->cfg.session_dir &&
        srv_disk_open(sessions, s, s->cfg.session_dir, s->cfg.session_dir_bytes, err, sizeof err)) {
        fprintf(stderr, "rosa-server: %s\n", err);
        srv_sessions_destroy(sessions);
        srv_auth_free(&s->auth);
        free(sessions);
        free(s);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    s->loop = &loop;
    if (srv_http_start(s)) {
        srv_disk_close(sessions);
        uv_loop_close(&loop);
        return 1;
    }
    srv_log(s, SRV_LOG_INFO, "replica id %s", s->replica_id);
    if (!s->cfg.model)
        srv_log(s, SRV_LOG_INFO, "no --model: serving the built-in copy demo (ROSA recall with a "
                                 "2-token attention window)");
    if (srv_engine_start(s, &s->engine)) {
        srv_log(s, SRV_LOG_ERROR, "cannot start the engine thread");
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    srv_disk_close(sessions);
    srv_sessions_destroy(sessions);
    if (s->tok) rosa_tokenizer_free(s->tok);
    if (s->model) rosa_model_free(s->model);
    pthread_mutex_destroy(&s->ready_mu);
    srv_auth_free(&s->auth);
    free(sessions);
    free(s);
    return 0;
}
