/* chat_format.c: render chat messages as a Qwen3 (ChatML) prompt, and the ids that end a turn.
 *
 * This is not a Jinja engine: it reproduces what Qwen3's chat template renders for messages
 * without tools (docs/TOKENIZER.md lists the exact subset).  The layout lives in the tables
 * below; the only logic is the template's handling of <think> blocks in assistant turns:
 *   - assistant turns before the last user query lose their reasoning (only the text after
 *     the last </think> is kept);
 *   - turns after it keep it, re-wrapped as "<think>\n" + reasoning + "\n</think>\n\n", when
 *     they are the final message or have non-empty reasoning;
 *   - consecutive tool messages share one user turn of <tool_response> blocks. */
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "tokenizer/tokenizer_internal.h"

enum role_kind { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL };

static const struct {
    const char *name;
    enum role_kind kind;
} roles[] = {
    {"system", ROLE_SYSTEM},
    {"user", ROLE_USER},
    {"assistant", ROLE_ASSISTANT},
    {"tool", ROLE_TOOL},
};

/* The fixed pieces of the layout. */
static const char IM_START[] = "<|im_start|>", IM_END_NL[] = "<|im_end|>\n";
static const char THINK_OPEN[] = "<think>\n", THINK_CLOSE[] = "\n</think>\n\n";
static const char EMPTY_THINK[] = "<think>\n\n</think>\n\n";
static const char TOOL_OPEN[] = "\n<tool_response>\n", TOOL_CLOSE[] = "\n</tool_response>";
static const char GEN_PROMPT[] = "<|im_start|>assistant\n";

/* The rendered text, and optionally (want_mask) one byte per text byte: 1 where the template
 * wrote it, 0 where it is a message's content (rosa_chat_format_marked). */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
    int want_mask;
    unsigned char *m;
    unsigned char cur; /* mask value of what is added now */
} sb;

static void add(sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n + 1) c *= 2;
        char *q = realloc(b->p, c);
        if (q) b->p = q;
        unsigned char *mq = b->want_mask ? realloc(b->m, c) : NULL;
        if (mq) b->m = mq;
        if (!q || (b->want_mask && !mq)) {
            b->oom = 1;
            return;
        }
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    if (b->want_mask) memset(b->m + b->n, b->cur, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void adds(sb *b, const char *s) { add(b, s, strlen(s)); }

/* Text that comes from a message, not from the template. */
static void add_content(sb *b, const char *s, size_t n) {
    b->cur = 0;
    add(b, s, n);
    b->cur = 1;
}

/* A view of a string, for the template's split / strip operations. */
typedef struct {
    const char *p;
    size_t n;
} view;

static const char *find_in(view v, const char *needle, int last) {
    size_t k = strlen(needle);
    const char *found = NULL;
    for (size_t i = 0; i + k <= v.n; i++)
        if (memcmp(v.p + i, needle, k) == 0) {
            found = v.p + i;
            if (!last) break;
        }
    return found;
}

static view lstrip_nl(view v) {
    while (v.n && v.p[0] == '\n') v.p++, v.n--;
    return v;
}

static view rstrip_nl(view v) {
    while (v.n && v.p[v.n - 1] == '\n') v.n--;
    return v;
}

static int role_of(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(name, roles[i].name) == 0) return (int)roles[i].kind;
    return -1;
}

static int is_tool_response(const char *c) {
    size_t n = strlen(c), a = strlen("<tool_response>"), z = strlen("</tool_response>");
    return n >= a && n >= z && memcmp(c, "<tool_response>", a) == 0 && memcmp(c + n - z, "</tool_response>", z) == 0;
}

static void assistant_turn(sb *b, const char *content, int keep_reasoning, int is_last) {
    view c = {content, strlen(content)}, reasoning = {"", 0};
    const char *close = find_in(c, "</think>", 0);
    if (close) {
        /* reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
        view before = rstrip_nl((view){c.p, (size_t)(close - c.p)});
        const char *open = find_in(before, "<think>", 1);
        if (open) before = (view){open + 7, before.n - (size_t)(open + 7 - before.p)};
        reasoning = lstrip_nl(before);
        /* content = content.split('</think>')[-1].lstrip('\n') */
        const char *last = find_in(c, "</think>", 1) + 8;
        c = lstrip_nl((view){last, c.n - (size_t)(last - c.p)});
    }
    adds(b, IM_START);
    adds(b, "assistant\n");
    if (keep_reasoning && (is_last || reasoning.n)) {
        view r = rstrip_nl(lstrip_nl(reasoning));
        adds(b, THINK_OPEN);
        add_content(b, r.p, r.n);
        adds(b, THINK_CLOSE);
        c = lstrip_nl(c);
    }
    add_content(b, c.p, c.n);
    adds(b, IM_END_NL);
}

static int chat_format(const rosa_tokenizer *tk, const rosa_chat_msg *msgs, int n, const rosa_chat_opts *opts,
                       char **out, size_t *len, unsigned char **mask) {
    if (!out || !len || n < 0 || (!msgs && n)) return ROSA_ERR_INVALID;
    *out = NULL;
    *len = 0;
    if (mask) *mask = NULL;
    if (tk && tk->has_chat_template && !tk->chatml_template) return ROSA_ERR_UNSUPPORTED;
    rosa_chat_opts def = {.add_generation_prompt = 1, .enable_thinking = 1};
    if (!opts) opts = &def;
    for (int i = 0; i < n; i++)
        if (role_of(msgs[i].role) < 0) return ROSA_ERR_INVALID;
#define CONTENT(i) (msgs[i].content ? msgs[i].content : "")
    /* the last user message that is a real query (not a wrapped tool response) */
    int last_query = n - 1;
    for (int i = n - 1; i >= 0; i--)
        if (role_of(msgs[i].role) == ROLE_USER && !is_tool_response(CONTENT(i))) {
            last_query = i;
            break;
        }
    sb b = {.want_mask = mask != NULL, .cur = 1};
    add(&b, "", 0);
    for (int i = 0; i < n; i++) {
        int kind = role_of(msgs[i].role);
        const char *c = CONTENT(i);
        switch (kind) {
        case ROLE_SYSTEM: /* the first message, or like a user turn elsewhere */
        case ROLE_USER:
            adds(&b, IM_START);
            adds(&b, msgs[i].role);
            adds(&b, "\n");
            add_content(&b, c, strlen(c));
            adds(&b, IM_END_NL);
            break;
        case ROLE_ASSISTANT:
            assistant_turn(&b, c, i > last_query, i == n - 1);
            break;
        case ROLE_TOOL:
            if (i == 0 || role_of(msgs[i - 1].role) != ROLE_TOOL) {
                adds(&b, IM_START);
                adds(&b, "user");
            }
            adds(&b, TOOL_OPEN);
            add_content(&b, c, strlen(c));
            adds(&b, TOOL_CLOSE);
            if (i == n - 1 || role_of(msgs[i + 1].role) != ROLE_TOOL) adds(&b, IM_END_NL);
            break;
        }
    }
#undef CONTENT
    if (opts->add_generation_prompt) {
        adds(&b, GEN_PROMPT);
        if (!opts->enable_thinking) adds(&b, EMPTY_THINK);
    }
    if (b.oom) {
        free(b.p);
        free(b.m);
        return ROSA_ERR_NOMEM;
    }
    *out = b.p;
    *len = b.n;
    if (mask) *mask = b.m;
    return 0;
}

int rosa_chat_format(const rosa_tokenizer *tk, const rosa_chat_msg *msgs, int n, const rosa_chat_opts *opts,
                     char **out, size_t *len) {
    return chat_format(tk, msgs, n, opts, out, len, NULL);
}

int rosa_chat_format_marked(const rosa_tokenizer *tk, const rosa_chat_msg *msgs, int n,
                            const rosa_chat_opts *opts, char **out, size_t *len, unsigned char **markup) {
    if (!markup) return ROSA_ERR_INVALID;
    return chat_format(tk, msgs, n, opts, out, len, markup);
}

int rosa_chat_stop_ids(const rosa_tokenizer *tk, int32_t *out, int cap) {
    if (!tk || (!out && cap > 0)) return 0;
    int32_t cand[2] = {rosa_tokenizer_token_id(tk, "<|im_end|>"), rosa_tokenizer_eos(tk)};
    int k = 0;
    for (int i = 0; i < 2; i++) {
        if (cand[i] < 0 || (i == 1 && cand[1] == cand[0])) continue;
        if (k < cap) out[k++] = cand[i];
    }
    return k;
}
