/* request.c: JSON body -> srv_params, with a type check and a bound for every field.
 * Unknown fields are refused by name (OpenAI does the same), unsupported OpenAI features
 * (tools, response_format json, suffix, ...) get a message saying so. */
#include "request.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_body.h"

int srv_fail(srv_error *e, int status, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = status == 401   ? "authentication_error"
              : status == 404 ? "not_found_error"
              : status == 429 ? "rate_limit_error"
              : status >= 500 ? "server_error"
                              : "invalid_request_error";
    e->code[0] = 0;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

void srv_limits_default(srv_limits *l) {
    l->max_n = 16;
    l->max_tokens = 1 << 20;
    l->max_prompts = 64;
    l->max_prompt_tokens = 1 << 20;
    l->max_messages = 1024;
    l->vocab = 0;
}

void srv_params_free(srv_params *p) {
    free(p->model);
    for (int i = 0; i < p->n_prompts; i++) {
        free(p->prompts[i].ids);
        free(p->prompts[i].text);
    }
    free(p->prompts);
    for (int i = 0; i < p->n_msgs; i++) {
        free(p->msgs[i].role);
        free(p->msgs[i].content);
    }
    free(p->msgs);
    for (int i = 0; i < p->n_stop; i++) free(p->stop[i]);
    free(p->bias_ids);
    free(p->bias_vals);
    free(p->session_id);
    memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------- typed getters */

#define NOMEM(e) srv_fail(e, 500, NULL, "out of memory")

static int get_bool(const cJSON *v, const char *name, int *out, srv_error *e) {
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return srv_fail(e, 400, name, "'%s' must be a boolean", name);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_int(const cJSON *v, const char *name, double lo, double hi, int *out, srv_error *e) {
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return srv_fail(e, 400, name, "'%s' must be an integer", name);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return srv_fail(e, 400, name, "'%s' must be between %.0f and %.0f, got %.0f", name, lo,
                        hi, v->valuedouble);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_float(const cJSON *v, const char *name, double lo, double hi, int lo_open,
                     float *out, srv_error *e) {
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return srv_fail(e, 400, name, "'%s' must be a number", name);
    double x = v->valuedouble;
    if (x < lo || x > hi || (lo_open && x == lo))
        return srv_fail(e, 400, name, "'%s' must be in %s%g, %g], got %g", name,
                        lo_open ? "(" : "[", lo, hi, x);
    *out = (float)x;
    return 0;
}

static int get_str(const cJSON *v, const char *name, size_t maxlen, char **out, srv_error *e) {
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return srv_fail(e, 400, name, "'%s' must be a string", name);
    size_t n = strlen(v->valuestring);
    if (n > maxlen) return srv_fail(e, 400, name, "'%s' is longer than %zu bytes", name, maxlen);
    char *s = malloc(n + 1);
    if (!s) return NOMEM(e);
    memcpy(s, v->valuestring, n + 1);
    free(*out);
    *out = s;
    return 0;
}

/* ---------------------------------------------------------------- prompt */

static int ids_from_array(const cJSON *a, const char *name, const srv_limits *lim, int32_t **ids,
                          int *n, srv_error *e) {
    int len = cJSON_GetArraySize(a);
    if (len == 0) return srv_fail(e, 400, name, "'%s' must not be empty", name);
    if (len > lim->max_prompt_tokens)
        return srv_fail(e, 400, name, "'%s' has %d tokens, more than the limit of %d", name, len,
                        lim->max_prompt_tokens);
    int32_t *v = malloc(sizeof(int32_t) * (size_t)len);
    if (!v) return NOMEM(e);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        double x = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!cJSON_IsNumber(it) || x != floor(x) || x < 0 || x > INT32_MAX) {
            free(v);
            return srv_fail(e, 400, name, "'%s' must hold non-negative integer token ids", name);
        }
        if (lim->vocab > 0 && x >= lim->vocab) {
            free(v);
            return srv_fail(e, 400, name, "token id %.0f in '%s' is out of range [0, %d)", x,
                            name, lim->vocab);
        }
        v[i++] = (int32_t)x;
    }
    *ids = v;
    *n = len;
    return 0;
}

static int parse_prompt(const cJSON *v, const srv_limits *lim, srv_params *p, srv_error *e) {
    if (!v || cJSON_IsNull(v)) return srv_fail(e, 400, "prompt", "'prompt' is required");
    if (cJSON_IsString(v)) {
        if (!v->valuestring[0]) return srv_fail(e, 400, "prompt", "'prompt' must not be empty");
        p->prompts = calloc(1, sizeof *p->prompts);
        if (!p->prompts) return NOMEM(e);
        p->n_prompts = 1;
        if (get_str(v, "prompt", (size_t)-1, &p->prompts[0].text, e)) return -1;
        p->prompts[0].text_len = strlen(p->prompts[0].text);
        return 0;
    }
    if (!cJSON_IsArray(v))
        return srv_fail(e, 400, "prompt",
                        "'prompt' must be a string, an array of strings, an array of token ids "
                        "or an array of token-id arrays");
    int len = cJSON_GetArraySize(v);
    if (len == 0) return srv_fail(e, 400, "prompt", "'prompt' must not be empty");
    const cJSON *first = v->child;
    if (cJSON_IsNumber(first)) {
        p->prompts = calloc(1, sizeof *p->prompts);
        if (!p->prompts) return NOMEM(e);
        p->n_prompts = 1;
        return ids_from_array(v, "prompt", lim, &p->prompts[0].ids, &p->prompts[0].n_ids, e);
    }
    if (len > lim->max_prompts)
        return srv_fail(e, 400, "prompt", "'prompt' holds %d prompts, more than the limit of %d",
                        len, lim->max_prompts);
    p->prompts = calloc((size_t)len, sizeof *p->prompts);
    if (!p->prompts) return NOMEM(e);
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        srv_prompt *pr = &p->prompts[p->n_prompts++];
        if (cJSON_IsString(it) != cJSON_IsString(first))
            return srv_fail(e, 400, "prompt",
                            "'prompt' arrays must hold only strings or only token-id arrays");
        if (cJSON_IsString(it)) {
            if (!it->valuestring[0])
                return srv_fail(e, 400, "prompt", "'prompt' must not contain empty strings");
            if (get_str(it, "prompt", (size_t)-1, &pr->text, e)) return -1;
            pr->text_len = strlen(pr->text);
        } else if (cJSON_IsArray(it)) {
            if (ids_from_array(it, "prompt", lim, &pr->ids, &pr->n_ids, e)) return -1;
        } else {
            return srv_fail(e, 400, "prompt",
                            "'prompt' arrays must hold only strings or only token-id arrays");
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- chat messages */

static int parse_messages(const cJSON *v, const srv_limits *lim, srv_params *p, srv_error *e) {
    if (!v || cJSON_IsNull(v)) return srv_fail(e, 400, "messages", "'messages' is required");
    if (!cJSON_IsArray(v)) return srv_fail(e, 400, "messages", "'messages' must be an array");
    int len = cJSON_GetArraySize(v);
    if (len == 0) return srv_fail(e, 400, "messages", "'messages' must not be empty");
    if (len > lim->max_messages)
        return srv_fail(e, 400, "messages", "'messages' holds %d messages, more than %d", len,
                        lim->max_messages);
    p->msgs = calloc((size_t)len, sizeof *p->msgs);
    if (!p->msgs) return NOMEM(e);
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, v) {
        char pname[64];
        snprintf(pname, sizeof pname, "messages[%d]", i);
        srv_msg *out = &p->msgs[p->n_msgs++];
        if (!cJSON_IsObject(m)) return srv_fail(e, 400, pname, "'%s' must be an object", pname);
        const cJSON *f;
        cJSON_ArrayForEach(f, m) {
            if (strcmp(f->string, "role") && strcmp(f->string, "content") &&
                strcmp(f->string, "name"))
                return srv_fail(e, 400, pname, "'%s.%s' is not supported", pname, f->string);
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role))
            return srv_fail(e, 400, pname, "'%s.role' must be a string", pname);
        const char *r = role->valuestring;
        if (!strcmp(r, "developer")) r = "system";
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant"))
            return srv_fail(e, 400, pname,
                            "'%s.role' must be 'system', 'user' or 'assistant', got '%.40s'",
                            pname, role->valuestring);
        if (!(out->role = strdup(r))) return NOMEM(e);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsString(c)) {
            if (!(out->content = strdup(c->valuestring))) return NOMEM(e);
        } else if (cJSON_IsArray(c)) {
            size_t total = 0;
            const cJSON *part;
            cJSON_ArrayForEach(part, c) {
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "type");
                const cJSON *tx = cJSON_GetObjectItemCaseSensitive(part, "text");
                if (!cJSON_IsObject(part) || !cJSON_IsString(t) || strcmp(t->valuestring, "text"))
                    return srv_fail(e, 400, pname,
                                    "'%s.content' parts must be {\"type\": \"text\", ...}; "
                                    "other part types are not supported", pname);
                if (!cJSON_IsString(tx))
                    return srv_fail(e, 400, pname, "'%s.content' text part needs 'text'", pname);
                total += strlen(tx->valuestring);
            }
            if (!(out->content = malloc(total + 1))) return NOMEM(e);
            size_t o = 0;
            cJSON_ArrayForEach(part, c) {
                const char *s = cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring;
                size_t n = strlen(s);
                memcpy(out->content + o, s, n);
                o += n;
            }
            out->content[o] = 0;
        } else if ((!c || cJSON_IsNull(c)) && !strcmp(r, "assistant")) {
            if (!(out->content = strdup(""))) return NOMEM(e);
        } else {
            return srv_fail(e, 400, pname, "'%s.content' must be a string or text parts", pname);
        }
        i++;
    }
    return 0;
}

/* ---------------------------------------------------------------- other fields */

static int parse_stop(const cJSON *v, srv_params *p, srv_error *e) {
    if (!v || cJSON_IsNull(v)) return 0;
    const cJSON *it = v;
    int single = cJSON_IsString(v);
    if (!single && !cJSON_IsArray(v))
        return srv_fail(e, 400, "stop", "'stop' must be a string or an array of strings");
    if (!single && cJSON_GetArraySize(v) > SRV_MAX_STOP)
        return srv_fail(e, 400, "stop", "'stop' holds more than %d strings", SRV_MAX_STOP);
    if (!single) it = v->child;
    for (; it; it = single ? NULL : it->next) {
        if (!cJSON_IsString(it))
            return srv_fail(e, 400, "stop", "'stop' must be a string or an array of strings");
        if (!it->valuestring[0]) return srv_fail(e, 400, "stop", "'stop' strings must not be empty");
        if (get_str(it, "stop", SRV_MAX_STOP_LEN, &p->stop[p->n_stop], e)) return -1;
        p->n_stop++;
    }
    return 0;
}

static int parse_bias(const cJSON *v, const srv_limits *lim, srv_params *p, srv_error *e) {
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsObject(v))
        return srv_fail(e, 400, "logit_bias", "'logit_bias' must be an object of id: bias");
    int len = cJSON_GetArraySize(v);
    if (len > SRV_MAX_BIAS)
        return srv_fail(e, 400, "logit_bias", "'logit_bias' has more than %d entries",
                        SRV_MAX_BIAS);
    if (len == 0) return 0;
    p->bias_ids = malloc(sizeof(int32_t) * (size_t)len);
    p->bias_vals = malloc(sizeof(float) * (size_t)len);
    if (!p->bias_ids || !p->bias_vals) return NOMEM(e);
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        char *end = NULL;
        long id = strtol(it->string, &end, 10);
        if (!it->string[0] || *end || id < 0 || id > INT32_MAX ||
            (lim->vocab > 0 && id >= lim->vocab))
            return srv_fail(e, 400, "logit_bias", "'logit_bias' key '%.40s' is not a token id",
                            it->string);
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < -100 ||
            it->valuedouble > 100)
            return srv_fail(e, 400, "logit_bias", "'logit_bias' values must be numbers in "
                                                  "[-100, 100]");
        for (int k = 0; k < p->n_bias; k++) /* "7" and "07": one token twice */
            if (p->bias_ids[k] == (int32_t)id)
                return srv_fail(e, 400, "logit_bias", "'logit_bias' names token %ld twice", id);
        p->bias_ids[p->n_bias] = (int32_t)id;
        p->bias_vals[p->n_bias++] = (float)it->valuedouble;
    }
    return 0;
}

int srv_valid_session_id(const char *s) {
    if (!s[0] || strlen(s) > SRV_MAX_ID_LEN) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.' || *s == ':'))
            return 0;
    return 1;
}

/* Fields we know: name, which endpoint takes it (1 completions, 2 chat, 3 both). */
static const struct {
    const char *name;
    int kinds;
} known[] = {
    {"model", 3}, {"prompt", 1}, {"messages", 2}, {"max_tokens", 3},
    {"max_completion_tokens", 2}, {"temperature", 3}, {"top_p", 3}, {"n", 3}, {"stream", 3},
    {"stream_options", 3}, {"stop", 3}, {"seed", 3}, {"presence_penalty", 3},
    {"frequency_penalty", 3}, {"logprobs", 3}, {"top_logprobs", 2}, {"echo", 1},
    {"logit_bias", 3}, {"user", 3}, {"top_k", 3}, {"min_p", 3}, {"repetition_penalty", 3},
    {"ignore_eos", 3}, {"session_id", 3}, {"return_token_ids", 3}, {"best_of", 1},
    {"chat_template_kwargs", 2}, {"add_special_tokens", 1},
};
static const char *const unsupported[] = {
    "tools", "tool_choice", "functions", "function_call", "parallel_tool_calls", "suffix",
    "response_format", "audio", "modalities", "prediction", "web_search_options",
    "reasoning_effort", "store", "metadata", "service_tier",
};

static int check_fields(const cJSON *root, srv_kind kind, srv_error *e) {
    const cJSON *f;
    cJSON_ArrayForEach(f, root) {
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (!strcmp(f->string, known[i].name) && (known[i].kinds & (kind == SRV_CHAT ? 2 : 1)))
                ok = 1;
        if (ok) continue;
        if (!strcmp(f->string, "response_format")) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(f, "type");
            if (cJSON_IsNull(f) || (cJSON_IsString(t) && !strcmp(t->valuestring, "text"))) continue;
        }
        for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
            if (!strcmp(f->string, unsupported[i]) && !cJSON_IsNull(f))
                return srv_fail(e, 400, f->string, "'%s' is not supported by this server",
                                f->string);
        if (cJSON_IsNull(f)) continue;
        return srv_fail(e, 400, f->string, "Unrecognized request argument supplied: %.60s",
                        f->string);
    }
    return 0;
}

static int parse_fields(const cJSON *root, srv_kind kind, const srv_limits *lim, srv_params *p,
                        srv_error *e) {
#define F(name) cJSON_GetObjectItemCaseSensitive(root, name)
    if (!cJSON_IsObject(root))
        return srv_fail(e, 400, NULL, "the request body must be a JSON object");
    if (check_fields(root, kind, e)) return -1;
    if (get_str(F("model"), "model", 256, &p->model, e)) return -1;
    if (kind == SRV_COMPLETION) {
        if (parse_prompt(F("prompt"), lim, p, e)) return -1;
    } else {
        if (parse_messages(F("messages"), lim, p, e)) return -1;
    }
    p->max_tokens = kind == SRV_CHAT ? -1 : 16;
    if (get_int(F("max_tokens"), "max_tokens", 0, lim->max_tokens, &p->max_tokens, e)) return -1;
    if (kind == SRV_CHAT && get_int(F("max_completion_tokens"), "max_completion_tokens", 0,
                                    lim->max_tokens, &p->max_tokens, e))
        return -1;
    p->n = 1;
    if (get_int(F("n"), "n", 1, lim->max_n, &p->n, e)) return -1;
    int best_of = p->n;
    if (get_int(F("best_of"), "best_of", 1, lim->max_n, &best_of, e)) return -1;
    if (best_of != p->n) return srv_fail(e, 400, "best_of", "'best_of' other than 'n' is not supported");
    if (get_bool(F("stream"), "stream", &p->stream, e)) return -1;
    const cJSON *so = F("stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so))
            return srv_fail(e, 400, "stream_options", "'stream_options' must be an object");
        if (!p->stream)
            return srv_fail(e, 400, "stream_options",
                            "'stream_options' is only allowed when 'stream' is true");
        if (get_bool(cJSON_GetObjectItemCaseSensitive(so, "include_usage"),
                     "stream_options.include_usage", &p->include_usage, e))
            return -1;
    }
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->repetition_penalty = 1.0f;
    if (get_float(F("temperature"), "temperature", 0, 10, 0, &p->temperature, e) ||
        get_float(F("top_p"), "top_p", 0, 1, 1, &p->top_p, e) ||
        get_float(F("min_p"), "min_p", 0, 1, 0, &p->min_p, e) ||
        get_float(F("presence_penalty"), "presence_penalty", -2, 2, 0, &p->presence_penalty, e) ||
        get_float(F("frequency_penalty"), "frequency_penalty", -2, 2, 0, &p->frequency_penalty,
                  e) ||
        get_float(F("repetition_penalty"), "repetition_penalty", 0, 10, 1,
                  &p->repetition_penalty, e))
        return -1;
    if (get_int(F("top_k"), "top_k", -1, 1 << 24, &p->top_k, e)) return -1;
    if (p->top_k < 0) p->top_k = 0;
    const cJSON *seed = F("seed");
    if (seed && !cJSON_IsNull(seed)) {
        if (!cJSON_IsNumber(seed) || seed->valuedouble != floor(seed->valuedouble) ||
            fabs(seed->valuedouble) > 9007199254740992.0)
            return srv_fail(e, 400, "seed", "'seed' must be an integer");
        p->has_seed = 1;
        p->seed = (uint64_t)(int64_t)seed->valuedouble;
    }
    if (parse_stop(F("stop"), p, e)) return -1;
    if (parse_bias(F("logit_bias"), lim, p, e)) return -1;
    p->logprobs = -1;
    if (kind == SRV_COMPLETION) {
        if (get_int(F("logprobs"), "logprobs", 0, SRV_MAX_LOGPROBS, &p->logprobs, e)) return -1;
        if (get_bool(F("echo"), "echo", &p->echo, e)) return -1;
        p->parse_special = 1;
        if (get_bool(F("add_special_tokens"), "add_special_tokens", &p->parse_special, e))
            return -1;
    } else {
        int lp = 0, top = 0;
        if (get_bool(F("logprobs"), "logprobs", &lp, e)) return -1;
        if (get_int(F("top_logprobs"), "top_logprobs", 0, SRV_MAX_LOGPROBS, &top, e)) return -1;
        if (F("top_logprobs") && !cJSON_IsNull(F("top_logprobs")) && !lp)
            return srv_fail(e, 400, "top_logprobs", "'top_logprobs' requires 'logprobs': true");
        p->logprobs = lp ? top : -1;
        const cJSON *kw = F("chat_template_kwargs");
        if (kw && !cJSON_IsNull(kw)) {
            if (!cJSON_IsObject(kw))
                return srv_fail(e, 400, "chat_template_kwargs",
                                "'chat_template_kwargs' must be an object");
            if (get_bool(cJSON_GetObjectItemCaseSensitive(kw, "enable_thinking"),
                         "chat_template_kwargs.enable_thinking", &p->enable_thinking, e))
                return -1;
        }
    }
    if (get_bool(F("ignore_eos"), "ignore_eos", &p->ignore_eos, e) ||
        get_bool(F("return_token_ids"), "return_token_ids", &p->return_token_ids, e))
        return -1;
    char *user = NULL;
    int rc = get_str(F("user"), "user", 256, &user, e);
    free(user);
    if (rc) return -1;
    if (get_str(F("session_id"), "session_id", SRV_MAX_ID_LEN, &p->session_id, e)) return -1;
    if (p->session_id && !srv_valid_session_id(p->session_id))
        return srv_fail(e, 400, "session_id",
                        "'session_id' must be 1-128 characters of [A-Za-z0-9._:-]");
    if (p->session_id && (p->n != 1 || p->n_prompts > 1))
        return srv_fail(e, 400, "session_id", "'session_id' needs n = 1 and a single prompt");
    if ((long)p->n * (p->n_prompts > 0 ? p->n_prompts : 1) > lim->max_n * 4L)
        return srv_fail(e, 400, "n", "n times the number of prompts exceeds %d", lim->max_n * 4);
    return 0;
#undef F
}

int srv_parse_request(const char *body, size_t len, srv_kind kind, const srv_limits *lim,
                      srv_params *p, srv_error *e) {
    memset(p, 0, sizeof *p);
    p->kind = kind;
    cJSON *root = srv_json_parse(body, len, e);
    if (!root) return -1;
    int rc = parse_fields(root, kind, lim, p, e);
    cJSON_Delete(root);
    if (rc) srv_params_free(p);
    return rc ? -1 : 0;
}

/* ---------------------------------------------------------------- /tokenize, /detokenize */

void srv_tok_req_free(srv_tok_req *r) {
    free(r->text);
    free(r->model);
    free(r->ids);
    memset(r, 0, sizeof *r);
}

int srv_parse_tok_request(const char *body, size_t len, int detok, int max_ids, srv_tok_req *r,
                          srv_error *e) {
    memset(r, 0, sizeof *r);
    r->add_special = 1;
    cJSON *root = srv_json_parse(body, len, e);
    if (!root) return -1;
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        srv_fail(e, 400, NULL, "the request body must be a JSON object");
        goto out;
    }
    static const char *const tok_fields[] = {"prompt", "text", "model", "add_special_tokens"};
    static const char *const detok_fields[] = {"tokens", "model", "skip_special_tokens"};
    const char *const *names = detok ? detok_fields : tok_fields;
    size_t n_names = detok ? sizeof detok_fields / sizeof *detok_fields
                           : sizeof tok_fields / sizeof *tok_fields;
    const cJSON *f;
    cJSON_ArrayForEach(f, root) {
        int ok = 0;
        for (size_t i = 0; i < n_names; i++) ok |= !strcmp(f->string, names[i]);
        if (!ok) {
            srv_fail(e, 400, f->string, "Unrecognized request argument supplied: %.60s",
                     f->string);
            goto out;
        }
    }
    if (detok) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "tokens");
        if (!cJSON_IsArray(t)) {
            srv_fail(e, 400, "tokens", "'tokens' must be an array of token ids");
            goto out;
        }
        srv_limits lim;
        srv_limits_default(&lim);
        lim.max_prompt_tokens = max_ids;
        if (cJSON_GetArraySize(t) == 0) {
            r->ids = malloc(sizeof(int32_t));
            if (!r->ids) goto out;
            r->n_ids = 0;
        } else if (ids_from_array(t, "tokens", &lim, &r->ids, &r->n_ids, e)) {
            goto out;
        }
        if (get_bool(cJSON_GetObjectItemCaseSensitive(root, "skip_special_tokens"),
                     "skip_special_tokens", &r->skip_special, e))
            goto out;
    } else {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        const char *name = "prompt";
        if (t && cJSON_GetObjectItemCaseSensitive(root, "text")) {
            srv_fail(e, 400, "text", "give 'prompt' or 'text', not both");
            goto out;
        }
        if (!t && (t = cJSON_GetObjectItemCaseSensitive(root, "text"))) name = "text";
        if (!cJSON_IsString(t)) {
            srv_fail(e, 400, name, "'%s' must be a string", name);
            goto out;
        }
        if (get_str(t, name, (size_t)-1, &r->text, e)) goto out;
        r->text_len = strlen(r->text);
        if (get_bool(cJSON_GetObjectItemCaseSensitive(root, "add_special_tokens"),
                     "add_special_tokens", &r->add_special, e))
            goto out;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (m && !cJSON_IsNull(m) && !cJSON_IsString(m)) {
        srv_fail(e, 400, "model", "'model' must be a string");
        goto out;
    }
    if (cJSON_IsString(m) && get_str(m, "model", SRV_MAX_ID_LEN, &r->model, e)) goto out;
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc) srv_tok_req_free(r);
    return rc;
}
