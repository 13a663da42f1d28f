/* tokenizer_fixture.h: small hand-made tokenizer.json files for the tokenizer unit tests.
 *
 * tkf_json() writes a byte-level BPE whose ids 0..255 are the single bytes (id = byte value, the
 * key being the byte's GPT-2 character), plus whatever the test adds: more vocabulary, merges,
 * added tokens, and the normalizer / pre_tokenizer / decoder / model options as JSON snippets.
 * Header-only (static functions) so each test program takes what it uses. */
#ifndef ROSA_TOKENIZER_FIXTURE_H
#define ROSA_TOKENIZER_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosa_tokenizer.h"
#include "tokenizer/tokenizer_internal.h"

typedef struct tkf_opts {
    const char *vocab;       /* extra "key": id entries, comma-first: ",\"ab\":256" */
    const char *merges;      /* body of the merges array: "\"a b\"" */
    const char *added;       /* body of the added_tokens array */
    const char *normalizer;  /* JSON or NULL (null) */
    const char *pre;         /* JSON; NULL: ByteLevel without prefix space and regex */
    const char *decoder;     /* JSON; NULL: ByteLevel */
    const char *model_extra; /* extra model fields, comma-first */
    const char *model_type;  /* NULL: "BPE" */
} tkf_opts;

static inline char *tkf_json(const tkf_opts *o) {
    size_t cap = 1 << 16;
    char *j = malloc(cap);
    size_t n = 0;
#define TKF_PUT(...) n += (size_t)snprintf(j + n, cap - n, __VA_ARGS__)
    TKF_PUT("{\"version\":\"1.0\",\"added_tokens\":[%s],\"normalizer\":%s,\"pre_tokenizer\":%s,\"decoder\":%s,"
            "\"model\":{\"type\":\"%s\"%s,\"vocab\":{",
            o->added ? o->added : "", o->normalizer ? o->normalizer : "null",
            o->pre ? o->pre : "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}",
            o->decoder ? o->decoder : "{\"type\":\"ByteLevel\"}", o->model_type ? o->model_type : "BPE",
            o->model_extra ? o->model_extra : "");
    for (unsigned b = 0; b < 256; b++) {
        char u[5] = {0};
        rosa__utf8_encode(rosa__byte_char(b), u);
        if (u[0] == '"' || u[0] == '\\') TKF_PUT("%s\"\\%s\":%u", b ? "," : "", u, b);
        else TKF_PUT("%s\"%s\":%u", b ? "," : "", u, b);
    }
    TKF_PUT("%s},\"merges\":[%s]}}", o->vocab ? o->vocab : "", o->merges ? o->merges : "");
#undef TKF_PUT
    return j;
}

/* Load a fixture; returns the rosa_err and leaves the message in err. */
static inline int tkf_load(const tkf_opts *o, rosa_tokenizer **tk, char *err, size_t errlen) {
    char *j = tkf_json(o);
    err[0] = 0;
    int rc = rosa__tokenizer_load_mem(j, strlen(j), "fixture.json", NULL, 0, NULL, tk, err, errlen);
    free(j);
    return rc;
}

#endif
