/* config.c: command-line flags of rosa-server, their defaults, bounds and --help. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

void srv_config_defaults(srv_config *c) {
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 8080;
    c->max_batch = 64;
    c->max_queue = 256;
    c->prefill_chunk = 512;
    c->chat_prepare = 1;
    c->max_prompt_tokens = 131072;
    c->max_tokens = 32768;
    c->max_n = 16;
    c->max_connections = 1024;
    c->idle_timeout = 60;
    c->read_timeout = 30;
    c->max_sessions = 4096;
    c->max_response_bytes = (size_t)32 << 20;
    c->max_body_bytes = 8u << 20;
    c->max_session_bytes = (size_t)4 << 30;
    c->request_timeout = 0;
    c->session_ttl = 3600;
    c->session_dir_bytes = (size_t)64 << 30;
    c->shutdown_grace = 10;
    const char *key = getenv("ROSA_API_KEY");
    if (key && *key) c->api_key = key;
    rosa_load_opts_init(&c->run);
}

void srv_config_help(FILE *f) {
    fputs(
        "usage: rosa-server [options]\n"
        "OpenAI-compatible HTTP server for ROSA-augmented Qwen3 models.\n"
        "With no --model it serves the built-in copy demo (generated into a cache directory).\n\n"
        "model:\n"
        "  --model DIR              Hugging Face Qwen3 directory (config.json + safetensors)\n"
        "  --adapter FILE           ROSA adapter (rosa_adapters.pt or .safetensors)\n"
        "  --tokenizer FILE         tokenizer.json (default: DIR/tokenizer.json if present)\n"
        "  --model-name NAME        id reported by /v1/models (default: directory name)\n"
        "  --cache-dir DIR          where the demo model is written\n\n"
        "run options (the same words in rosa-cli):\n",
        f);
    fputs(rosa_load_opts_help(), f);
    fputs("\n"
        "http:\n"
        "  --host ADDR              listen address (default 127.0.0.1)\n"
        "  --port N                 listen port (default 8080; 0 picks a free port)\n"
        "  --api-key KEY            require 'Authorization: Bearer KEY' (401 otherwise;\n"
        "                           default: $ROSA_API_KEY when set and not empty)\n"
        "  --api-key-file FILE      more keys, one a line: KEY [OWNER]; each owner sees,\n"
        "                           continues and deletes only its own sessions\n"
        "  --metrics-key KEY        GET /metrics requires 'Authorization: Bearer KEY'\n"
        "  --replica-id ID          sent as X-Rosa-Replica on every response (default: hostname)\n"
        "  --max-body-bytes N       largest request body (default 8388608; 413 beyond)\n"
        "  --max-connections N      simultaneous connections (default 1024)\n"
        "  --idle-timeout S         close idle connections after S seconds (default 60)\n"
        "  --read-timeout S         a whole request (headers + body) must arrive within S\n"
        "                           seconds of the connection becoming ready (default 30;\n"
        "                           0: no deadline)\n"
        "  --max-response-bytes N   largest response of one request (default 33554432;\n"
        "                           413, or an error event in a stream, beyond)\n\n"
        "scheduling and limits:\n"
        "  --max-batch N            sequences decoded together (default 64)\n"
        "  --max-queue N            requests waiting for admission (default 256; 429 beyond)\n"
        "  --prefill-chunk N        prompt tokens per engine iteration (default 512)\n"
        "  --max-prompt-tokens N    longest prompt (default 131072)\n"
        "  --max-tokens N           largest max_tokens, and the default for chat (32768)\n"
        "  --max-n N                largest n (default 16)\n"
        "  --request-timeout S      cancel requests running longer (default 0: none)\n"
        "  --max-session-bytes N    state budget of kept sessions (LRU-evicted) and running\n"
        "                           sequences: 413 for one over it, 429 (default 4 GiB)\n"
        "  --session-ttl S          evict sessions idle longer (default 3600; 0: never)\n"
        "  --max-sessions N         kept sessions; the least recently used idle one is\n"
        "                           evicted for a new one (default 4096)\n"
        "  --session-dir DIR        save sessions evicted from memory (and all kept ones at\n"
        "                           shutdown) in DIR, restore them when used again; replicas\n"
        "                           may share DIR (docs/DEPLOY.md)\n"
        "  --session-dir-bytes N    files kept in --session-dir at most, least recently used\n"
        "                           removed first (default 68719476736; 0: no limit)\n"
        "  --shutdown-grace S       on SIGINT/SIGTERM, time to finish streams (default 10)\n"
        "  --chat-special-tokens    read special-token text (<|im_start|>) in chat messages as\n"
        "                           control tokens (default: plain text; only the template's\n"
        "                           own markup is special)\n"
        "  --no-chat-prepare        do not feed a chat session its answer, as the next turn\n"
        "                           will render it, while the engine is idle (default: do;\n"
        "                           docs/SERVER.md, Sessions)\n\n"
        "logging:\n"
        "  --log-format text|json   (default text)\n"
        "  --verbose                one log line per finished request (method, path, status,\n"
        "                           tokens, time to first token, total ms) and debug logs\n"
        "  --help                   this text\n",
        f);
}

static int num(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "rosa-server: %s expects a number in [%g, %g], got '%s'\n", flag, lo, hi,
                v);
        return -1;
    }
    *out = x;
    return 0;
}

int srv_config_parse(srv_config *c, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            srv_config_help(stdout);
            return 1;
        }
        char err[256];
        int r = rosa_load_opts_arg(&c->run, argc, argv, &i, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "rosa-server: %s\n", err);
            return -1;
        }
        if (r > 0) continue;
        if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            c->verbose = 1;
            continue;
        }
        if (!strcmp(a, "--chat-special-tokens")) {
            c->chat_special_tokens = 1;
            continue;
        }
        if (!strcmp(a, "--no-chat-prepare")) {
            c->chat_prepare = 0;
            continue;
        }
        if (strncmp(a, "--", 2) || i + 1 >= argc) {
            fprintf(stderr, "rosa-server: unknown or incomplete option '%s' (see --help)\n", a);
            return -1;
        }
        const char *v = argv[++i];
        double x = 0;
#define STR(name, field)                                                                        \
    if (!strcmp(a, name)) {                                                                     \
        c->field = v;                                                                           \
        continue;                                                                               \
    }
#define INT(name, field, lo, hi)                                                                \
    if (!strcmp(a, name)) {                                                                     \
        if (num(a, v, lo, hi, &x) || x != (double)(long long)x) return -1;                      \
        c->field = (int)x;                                                                      \
        continue;                                                                               \
    }
#define DBL(name, field, lo, hi)                                                                \
    if (!strcmp(a, name)) {                                                                     \
        if (num(a, v, lo, hi, &x)) return -1;                                                   \
        c->field = x;                                                                           \
        continue;                                                                               \
    }
        STR("--model", model)
        STR("--adapter", adapter)
        STR("--tokenizer", tokenizer)
        STR("--host", host)
        STR("--api-key", api_key)
        STR("--api-key-file", api_key_file)
        STR("--metrics-key", metrics_key)
        if (!strcmp(a, "--replica-id")) {
            size_t n = strlen(v);
            int ok = n > 0 && n < 128;
            for (size_t k = 0; ok && k < n; k++)
                ok = (v[k] >= 'a' && v[k] <= 'z') || (v[k] >= 'A' && v[k] <= 'Z') ||
                     (v[k] >= '0' && v[k] <= '9') || strchr("._:-", v[k]);
            if (!ok) {
                fprintf(stderr, "rosa-server: --replica-id is 1..127 of [A-Za-z0-9._:-]\n");
                return -1;
            }
            c->replica_id = v;
            continue;
        }
        STR("--model-name", model_name)
        STR("--session-dir", session_dir)
        STR("--cache-dir", cache_dir)
        INT("--port", port, 0, 65535)
        INT("--max-batch", max_batch, 1, 4096)
        INT("--max-queue", max_queue, 0, 1000000)
        INT("--prefill-chunk", prefill_chunk, 1, 1 << 20)
        INT("--max-prompt-tokens", max_prompt_tokens, 1, 1 << 30)
        INT("--max-tokens", max_tokens, 1, 1 << 30)
        INT("--max-n", max_n, 1, 128)
        INT("--max-connections", max_connections, 1, 1000000)
        INT("--idle-timeout", idle_timeout, 0, 86400)
        DBL("--read-timeout", read_timeout, 0, 86400)
        INT("--max-sessions", max_sessions, 1, 1000000)
        DBL("--request-timeout", request_timeout, 0, 1e7)
        DBL("--session-ttl", session_ttl, 0, 1e9)
        DBL("--shutdown-grace", shutdown_grace, 0, 3600)
        if (!strcmp(a, "--max-body-bytes") || !strcmp(a, "--max-session-bytes")) {
            if (num(a, v, 0, 1e15, &x)) return -1;
            if (a[6] == 'b') c->max_body_bytes = (size_t)x;
            else c->max_session_bytes = (size_t)x;
            continue;
        }
        if (!strcmp(a, "--session-dir-bytes")) {
            if (num(a, v, 0, 1e15, &x)) return -1;
            c->session_dir_bytes = (size_t)x;
            continue;
        }
        if (!strcmp(a, "--max-response-bytes")) {
            if (num(a, v, 1024, 1e15, &x)) return -1;
            c->max_response_bytes = (size_t)x;
            continue;
        }
        if (!strcmp(a, "--log-format")) {
            if (!strcmp(v, "json")) c->log_json = 1;
            else if (!strcmp(v, "text")) c->log_json = 0;
            else {
                fprintf(stderr, "rosa-server: --log-format is text or json\n");
                return -1;
            }
            continue;
        }
        fprintf(stderr, "rosa-server: unknown option '%s' (see --help)\n", a);
        return -1;
    }
    return 0;
}
