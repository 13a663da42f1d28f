/* cli_chat.c: `rosa-cli chat`: an interactive, streaming chat against a running rosa-server
 * (or any OpenAI-compatible server) over /v1/chat/completions, with libcurl.
 *
 * The whole history is sent each turn; with --session the server keeps the ROSA state between
 * turns and computes only the new suffix.  Ctrl-C while an answer streams aborts that transfer
 * (the server notices the hang-up and cancels the sequence) and returns to the prompt; the
 * partial answer stays in the history.  Ctrl-D or /quit leaves; /reset clears the history. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_common.h"

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) { g_interrupted = 1; }

typedef struct chat_msg {
    char *role, *content;
} chat_msg;

typedef struct chat {
    const char *url, *session, *api_key, *model, *system;
    long max_tokens;
    double temperature;
    chat_msg *msgs;
    int n, cap;
} chat;

/* what one streamed answer accumulates */
typedef struct stream_state {
    char *line;         /* incomplete SSE line */
    size_t line_len, line_cap;
    char *answer;       /* assistant text so far */
    size_t ans_len, ans_cap;
    char *error;        /* body of a non-200 answer, or an error event */
    size_t err_len, err_cap;
    int done, any;
    CURL *h;
    int status_seen, failed; /* failed: a non-2xx status; the body is an error, not SSE */
} stream_state;

static int append(char **buf, size_t *len, size_t *cap, const char *p, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (*len + n + 1 > c) c *= 2;
        char *nb = realloc(*buf, c);
        if (!nb) return -1;
        *buf = nb;
        *cap = c;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = 0;
    return 0;
}

static int push_msg(chat *c, const char *role, const char *content) {
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        chat_msg *nm = realloc(c->msgs, (size_t)cap * sizeof *nm);
        if (!nm) return -1;
        c->msgs = nm;
        c->cap = cap;
    }
    c->msgs[c->n].role = strdup(role);
    c->msgs[c->n].content = strdup(content);
    if (!c->msgs[c->n].role || !c->msgs[c->n].content) return -1;
    c->n++;
    return 0;
}

static void clear_history(chat *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->msgs[i].role);
        free(c->msgs[i].content);
    }
    c->n = 0;
}

/* One SSE line ("data: {...}"): print the delta, note errors and [DONE]. */
static void sse_line(stream_state *st, const char *line) {
    if (strncmp(line, "data: ", 6)) return;
    const char *payload = line + 6;
    if (!strcmp(payload, "[DONE]")) {
        st->done = 1;
        return;
    }
    cJSON *j = cJSON_Parse(payload);
    if (!j) return;
    cJSON *err = cJSON_GetObjectItem(j, "error");
    if (err) {
        const cJSON *m = cJSON_GetObjectItem(err, "message");
        const char *msg = cJSON_IsString(m) ? m->valuestring : "error";
        append(&st->error, &st->err_len, &st->err_cap, msg, strlen(msg));
    }
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    cJSON *delta = cJSON_GetObjectItem(ch, "delta");
    const cJSON *content = cJSON_GetObjectItem(delta, "content");
    if (cJSON_IsString(content) && content->valuestring[0]) {
        size_t n = strlen(content->valuestring);
        fwrite(content->valuestring, 1, n, stdout);
        fflush(stdout);
        append(&st->answer, &st->ans_len, &st->ans_cap, content->valuestring, n);
        st->any = 1;
    }
    cJSON_Delete(j);
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud) {
    stream_state *st = ud;
    size_t n = size * nmemb;
    if (!st->status_seen) {
        long code = 0;
        curl_easy_getinfo(st->h, CURLINFO_RESPONSE_CODE, &code);
        st->failed = code < 200 || code >= 300;
        st->status_seen = 1;
    }
    if (st->failed) {
        return append(&st->error, &st->err_len, &st->err_cap, p, n) ? 0 : n;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (st->line_len && st->line[st->line_len - 1] == '\r') st->line[--st->line_len] = 0;
            if (st->line_len) sse_line(st, st->line);
            st->line_len = 0;
            if (st->line) st->line[0] = 0;
        } else if (append(&st->line, &st->line_len, &st->line_cap, p + i, 1)) {
            return 0;
        }
    }
    return n;
}

/* aborts the transfer once Ctrl-C was pressed */
static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    return g_interrupted ? 1 : 0;
}

static char *request_body(const chat *c) {
    cJSON *b = cJSON_CreateObject();
    if (c->model) cJSON_AddStringToObject(b, "model", c->model);
    cJSON *msgs = cJSON_AddArrayToObject(b, "messages");
    if (c->system) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", c->system);
        cJSON_AddItemToArray(msgs, m);
    }
    for (int i = 0; i < c->n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", c->msgs[i].role);
        cJSON_AddStringToObject(m, "content", c->msgs[i].content);
        cJSON_AddItemToArray(msgs, m);
    }
    cJSON_AddBoolToObject(b, "stream", 1);
    if (c->max_tokens > 0) cJSON_AddNumberToObject(b, "max_tokens", (double)c->max_tokens);
    if (c->temperature >= 0) cJSON_AddNumberToObject(b, "temperature", c->temperature);
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return s;
}

/* Print a server error body ({"error": {"message": ...}}) or the raw text. */
static void print_error(long code, const char *body) {
    cJSON *j = body ? cJSON_Parse(body) : NULL;
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message");
    fprintf(stderr, "[error%s%ld: %s]\n", code ? " " : "", code,
            cJSON_IsString(m) ? m->valuestring : (body && *body ? body : "no answer"));
    cJSON_Delete(j);
}

/* One turn: stream the answer to stdout.  Returns 0 (answer complete or interrupted, kept in the
 * history) or -1 (error printed; the user's line is dropped from the history). */
static int turn(chat *c, CURL *h) {
    char *body = request_body(c);
    if (!body) return -1;
    char url[2048];
    snprintf(url, sizeof url, "%s/v1/chat/completions", c->url);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    char line[1024];
    if (c->session) {
        snprintf(line, sizeof line, "X-Session-Id: %s", c->session);
        hdr = curl_slist_append(hdr, line);
    }
    if (c->api_key) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", c->api_key);
        hdr = curl_slist_append(hdr, line);
    }
    stream_state st = {.h = h};
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &st);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    g_interrupted = 0;
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    int ret = 0;
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        printf("%s[interrupted]\n", st.any ? " " : "");
    } else if (rc != CURLE_OK) {
        fprintf(stderr, "[error: %s: %s]\n", c->url, curl_easy_strerror(rc));
        ret = -1;
    } else if (code != 200) {
        print_error(code, st.error);
        ret = -1;
    } else {
        if (st.line_len) sse_line(&st, st.line);
        if (st.error) print_error(0, st.error);
        printf("\n");
        if (!st.done && !st.error) fprintf(stderr, "[the stream ended early]\n");
    }
    fflush(stdout);
    if (ret == 0 && push_msg(c, "assistant", st.answer ? st.answer : "")) ret = -1;
    free(st.line);
    free(st.answer);
    free(st.error);
    curl_slist_free_all(hdr);
    free(body);
    return ret;
}

static void chat_usage(FILE *f) {
    fputs("usage: rosa-cli chat [--url URL] [--session ID] [--api-key KEY] [--model NAME]\n"
          "                     [--system TEXT] [--max-tokens N] [--temperature T]\n"
          "  --url       server base URL (default http://127.0.0.1:8080)\n"
          "  --session   keep the conversation's ROSA state on the server (X-Session-Id)\n"
          "  --api-key   bearer key (default: $ROSA_API_KEY)\n"
          "commands: /reset (forget the history), /quit; Ctrl-C stops the current answer,\n"
          "Ctrl-D leaves\n",
          f);
}

int cli_chat(int argc, char **argv) {
    chat c = {.url = "http://127.0.0.1:8080", .temperature = -1};
    c.api_key = getenv("ROSA_API_KEY");
    if (c.api_key && !*c.api_key) c.api_key = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { chat_usage(stdout); return 0; }
        if (!v) { fprintf(stderr, "rosa-cli chat: unknown or incomplete option '%s'\n", a); return 2; }
        i++;
        if (!strcmp(a, "--url")) c.url = v;
        else if (!strcmp(a, "--session")) c.session = v;
        else if (!strcmp(a, "--api-key")) c.api_key = v;
        else if (!strcmp(a, "--model")) c.model = v;
        else if (!strcmp(a, "--system")) c.system = v;
        else if (!strcmp(a, "--max-tokens")) { if ((c.max_tokens = cli_parse_long(v, 1, 1 << 30, a)) < 0) return 2; }
        else if (!strcmp(a, "--temperature")) {
            char *end;
            c.temperature = strtod(v, &end);
            if (*end || !(c.temperature >= 0 && c.temperature <= 2)) { fprintf(stderr, "rosa-cli chat: --temperature is in [0, 2]\n"); return 2; }
        } else { fprintf(stderr, "rosa-cli chat: unknown option '%s'\n", a); chat_usage(stderr); return 2; }
    }
    if (c.session && strpbrk(c.session, "\r\n")) { fprintf(stderr, "rosa-cli chat: bad --session\n"); return 2; }
    size_t ulen = strlen(c.url);
    char *url = strdup(c.url);
    while (url && ulen && url[ulen - 1] == '/') url[--ulen] = 0;
    c.url = url;
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) return 1;
    CURL *h = curl_easy_init();
    if (!h || !url) return 1;
    /* SIGINT without SA_RESTART: a Ctrl-C at the prompt interrupts the read */
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    int tty = isatty(0);
    if (tty) fprintf(stderr, "rosa-cli chat with %s (/reset, /quit, Ctrl-C stops an answer)\n", c.url);
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        if (tty) { fputs("> ", stdout); fflush(stdout); }
        g_interrupted = 0;
        clearerr(stdin);
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (g_interrupted) {
                fputs("\n(Ctrl-D or /quit leaves)\n", stdout);
                fflush(stdout);
                continue;
            }
            break;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!n) continue;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
        if (!strcmp(line, "/reset")) {
            clear_history(&c);
            puts("[history cleared]");
            fflush(stdout);
            continue;
        }
        if (push_msg(&c, "user", line)) break;
        if (turn(&c, h)) {
            /* drop the user's line so that a retry does not send it twice */
            c.n--;
            free(c.msgs[c.n].role);
            free(c.msgs[c.n].content);
        }
    }
    if (tty) fputc('\n', stdout);
    clear_history(&c);
    free(c.msgs);
    free(line);
    free(url);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    return 0;
}
