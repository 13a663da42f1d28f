/* request.h: the validated form of a /v1/completions or /v1/chat/completions body.
 *
 * srv_parse_request is a pure function of (body bytes, limits): no model, no I/O, so it is unit
 * tested and fuzzed directly.  Every field has a type check and a bound; the first problem found
 * becomes an OpenAI-style error (status, message, param). */
#ifndef SRV_REQUEST_H
#define SRV_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#define SRV_MAX_STOP 4         /* as OpenAI */
#define SRV_MAX_STOP_LEN 256   /* bytes per stop string */
#define SRV_MAX_LOGPROBS 20
#define SRV_MAX_BIAS 1024      /* logit_bias entries */
#define SRV_MAX_ID_LEN 128     /* session_id, model, user */

typedef struct srv_error {
    int status;         /* HTTP status */
    const char *type;   /* "invalid_request_error", ... */
    char code[48];      /* "" for null */
    char param[64];     /* "" for null */
    char message[320];
} srv_error;

/* Fill e and return -1, so `return srv_fail(...)` reads naturally. */
int srv_fail(srv_error *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

typedef enum { SRV_COMPLETION = 0, SRV_CHAT = 1 } srv_kind;

typedef struct srv_prompt {
    int32_t *ids;   /* token ids (NULL when given as text) */
    int n_ids;
    char *text;     /* text (NULL when given as ids) */
    size_t text_len;
} srv_prompt;

typedef struct srv_msg {
    char *role;
    char *content;  /* text parts joined */
} srv_msg;

typedef struct srv_limits {
    int max_n;             /* choices per request */
    int max_tokens;        /* max_tokens ceiling */
    int max_prompts;       /* entries of a prompt array */
    int max_prompt_tokens; /* ids per prompt (text prompts are checked after tokenizing) */
    int max_messages;
    int vocab;             /* ids must be < vocab; <= 0: not checked here */
} srv_limits;

void srv_limits_default(srv_limits *l);

typedef struct srv_params {
    srv_kind kind;
    char *model;              /* NULL if absent */
    srv_prompt *prompts;      /* completions */
    int n_prompts;
    srv_msg *msgs;            /* chat */
    int n_msgs;
    int max_tokens;           /* -1: until the context ends (chat default) */
    int n;
    int stream, include_usage;
    int echo;
    int logprobs;             /* -1: none; completions 0..20 top alternatives; chat top_logprobs */
    float temperature, top_p, min_p;
    int top_k;
    float presence_penalty, frequency_penalty, repetition_penalty;
    int has_seed;
    uint64_t seed;
    char *stop[SRV_MAX_STOP];
    int n_stop;
    int32_t *bias_ids;
    float *bias_vals;
    int n_bias;
    int ignore_eos;
    int return_token_ids;
    char *session_id;         /* NULL if absent */
    int enable_thinking;      /* chat: Qwen3 thinking block (default 0: empty think block) */
    int parse_special;        /* completions: special-token text in prompts is special (default
                                 1; "add_special_tokens": false, as /tokenize) */
} srv_params;

/* A session id, from the body field or the X-Session-Id header: 1..SRV_MAX_ID_LEN characters of
 * [A-Za-z0-9._:-] (ids are listed, logged and may name files in tools: nothing else). */
int srv_valid_session_id(const char *s);

/* Parse and validate.  Returns 0, or -1 with e filled (p is then freed and zeroed). */
int srv_parse_request(const char *body, size_t len, srv_kind kind, const srv_limits *lim,
                      srv_params *p, srv_error *e);
void srv_params_free(srv_params *p);

/* Parse a /tokenize or /detokenize body: {"prompt"|"text": string} or {"tokens": [ids]}. */
typedef struct srv_tok_req {
    char *text;
    size_t text_len;
    int32_t *ids;
    int n_ids;
    int add_special;     /* /tokenize: parse special tokens in the text (default 1) */
    int skip_special;    /* /detokenize (default 0) */
    char *model;         /* NULL if absent */
} srv_tok_req;
int srv_parse_tok_request(const char *body, size_t len, int detok, int max_ids, srv_tok_req *r,
                          srv_error *e);
void srv_tok_req_free(srv_tok_req *r);

#endif
