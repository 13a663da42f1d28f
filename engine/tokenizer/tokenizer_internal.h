/* tokenizer_internal.h: the loaded form of a Hugging Face byte-level BPE tokenizer.
 *
 * tokenizer_load*.c fill it from tokenizer.json, tokenizer_encode.c / tokenizer_bpe.c /
 * tokenizer_norm.c / tokenizer_pretok.c run the encode pipeline over it, tokenizer_decode.c and
 * chat_format.c read it.  After load nothing in it changes, which is what makes a tokenizer safe
 * to share between threads (per-call scratch lives in rosa__enc, never here). */
#ifndef ROSA_TOKENIZER_INTERNAL_H
#define ROSA_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "rosa_tokenizer.h"
#include "tokenizer/tokenizer_map.h"

struct pcre2_real_code_8;

#define ROSA__TK_MAX_STEPS 8          /* normalizers / pre-tokenizers in one Sequence */
#define ROSA__TK_MAX_IDS (1 << 24)    /* sanity bound on ids in an untrusted file */
#define ROSA__TK_MAX_ADDED 65536

/* Normalizers: the four Unicode forms (utf8proc). */
enum { ROSA__NORM_NFC, ROSA__NORM_NFD, ROSA__NORM_NFKC, ROSA__NORM_NFKD };

/* Pre-tokenizer steps, applied in order to every piece the previous step produced. */
enum { ROSA__PRE_SPLIT, ROSA__PRE_BYTELEVEL };
/* Split behaviours (Hugging Face SplitDelimiterBehavior). */
enum {
    ROSA__SPLIT_REMOVED,
    ROSA__SPLIT_ISOLATED,
    ROSA__SPLIT_MERGED_PREV,
    ROSA__SPLIT_MERGED_NEXT,
    ROSA__SPLIT_CONTIGUOUS
};

typedef struct rosa__pretok {
    int kind;
    struct pcre2_real_code_8 *re; /* SPLIT; BYTELEVEL with use_regex (the GPT-2 pattern) */
    int behavior;                 /* SPLIT */
    int invert;                   /* SPLIT */
    int add_prefix_space;         /* BYTELEVEL */
} rosa__pretok;

/* Per-id flags */
enum {
    ROSA__TOK_VALID = 1,   /* the id names a token (vocabularies may have holes) */
    ROSA__TOK_ADDED = 2,   /* an added token (matched before the model runs) */
    ROSA__TOK_SPECIAL = 4, /* an added token marked special */
};

typedef struct rosa__added {
    const char *pat; /* the bytes matched in text: content, or its normalized form */
    uint32_t len;
    uint32_t off;    /* pat's offset in the arena (pat is set when the arena is final) */
    int32_t id;
    uint8_t special, single_word, lstrip, rstrip, normalized;
} rosa__added;

/* The added tokens matched in one pass (raw text, or normalized text), ordered by first byte
 * and, within one first byte, longest first: the first pattern that matches at a position is
 * the leftmost-longest match. */
typedef struct rosa__addset {
    int n;
    const rosa__added **tok;
    uint16_t first_lo[256], first_hi[256]; /* tok[first_lo[b] .. first_hi[b]) start with b */
    int single_first;                      /* the only first byte in use, or -1 */
} rosa__addset;

struct rosa_tokenizer {
    int32_t n_ids;     /* largest id + 1 */
    uint8_t *flags;    /* [n_ids] ROSA__TOK_* */
    /* string form of each id as in tokenizer.json (token_id lookups, merges at load) */
    uint32_t *str_off, *str_len; /* [n_ids] into arena */
    /* decoded bytes of each id (what the ByteLevel decoder makes of it) */
    uint32_t *dec_off, *dec_len; /* [n_ids] into arena */
    char *arena;
    size_t arena_len, arena_cap;

    /* model: BPE */
    rosa__strmap vocab;   /* string form -> id, model vocabulary only */
    rosa__pairmap merges; /* (left id, right id) -> (rank, merged id) */
    int32_t byte_id[256]; /* id of the one-byte token of each byte, -1 if absent */
    int32_t unk_id;       /* -1: none */
    int fuse_unk;
    int ignore_merges;

    /* added tokens */
    rosa__added *added;
    int n_added;
    rosa__addset add_raw;  /* normalized: false, matched on the raw text */
    rosa__addset add_norm; /* normalized: true, matched on normalized pieces */

    /* pipeline */
    int norm[ROSA__TK_MAX_STEPS];
    int n_norm;
    rosa__pretok pre[ROSA__TK_MAX_STEPS];
    int n_pre;

    /* tokenizer_config.json */
    int32_t eos_id;
    int has_chat_template;
    int chatml_template; /* the template (if any) is a ChatML one (<|im_start|>) */
};

/* ---- encoding: per-call state (tokenizer_encode.c, tokenizer_pretok.c, tokenizer_bpe.c) ---- */
struct pcre2_real_match_data_8;
struct rosa__sym;
struct rosa__merge;
typedef struct rosa__enc {
    const rosa_tokenizer *tk;
    int parse_special;
    const char *text;             /* the raw input (rosa_tokenize_marked) ... */
    size_t text_len;
    const unsigned char *markup;  /* ... and where special tokens may be; NULL: everywhere */
    int32_t *ids; /* output */
    size_t n, cap;
    struct pcre2_real_match_data_8 *md;
    /* BPE scratch, grown on demand */
    struct rosa__sym *sym;
    size_t sym_cap;
    struct rosa__merge *heap;
    size_t heap_cap;
    char *tmp; /* byte-level string of a word (ignore_merges lookups) */
    size_t tmp_cap;
} rosa__enc;

int rosa__enc_push(rosa__enc *e, int32_t id);
/* BPE-encode one pre-token (raw bytes) and append its ids. */
int rosa__bpe_word(rosa__enc *e, const unsigned char *w, size_t n);
void rosa__bpe_free(rosa__enc *e);
/* Run pre-tokenizer steps step.. on a piece of normalized text, then BPE each resulting word. */
int rosa__pretok_run(rosa__enc *e, int step, const char *s, size_t n);

/* ---- loading (tokenizer_load.c) ---- */
/* Load from memory (the fuzz target of the loader).  config_json may be NULL. */
int rosa__tokenizer_load_mem(const char *json, size_t len, const char *name, const char *config_json,
                             size_t config_len, const char *config_name, rosa_tokenizer **out, char *err,
                             size_t errlen);
/* Append n bytes; returns the offset, or -1 on out of memory. */
int64_t rosa__tk_arena_add(rosa_tokenizer *tk, const void *p, size_t n);

/* ---- loading helpers shared by the tokenizer_load*.c files ---- */
struct cJSON;
/* A JSON integer in [0, ROSA__TK_MAX_IDS); 0 or -1. */
int rosa__tk_json_id(const struct cJSON *j, int32_t *out);
/* Optional boolean member: absent or null gives def; -1 if it is something else. */
int rosa__tk_json_bool(const struct cJSON *obj, const char *key, int def, int *out);
/* Record id's string form (and its decoded bytes) in the arena. */
int rosa__tk_set_string(rosa_tokenizer *tk, int32_t id, const char *s, size_t n);
int rosa__tk_set_decoded(rosa_tokenizer *tk, int32_t id, const char *s, size_t n);

/* ---- added tokens (tokenizer_load_added.c) ---- */
int rosa__tk_load_added(rosa_tokenizer *tk, const struct cJSON *arr, const char *file, char *err, size_t errlen);
/* Once the arena is final: point the patterns into it and build the match sets. */
int rosa__tk_finish_added(rosa_tokenizer *tk);

/* ---- loading the pipeline (tokenizer_load_pipeline.c) ---- */
int rosa__tk_load_normalizer(rosa_tokenizer *tk, const struct cJSON *j, const char *file,
                             char *err, size_t errlen);
int rosa__tk_load_pretokenizer(rosa_tokenizer *tk, const struct cJSON *j, const char *file,
                               char *err, size_t errlen);
int rosa__tk_load_decoder(const struct cJSON *j, const char *file, char *err, size_t errlen);

/* ---- regexes (tokenizer_regex.c) ---- */
/* Compile a Hugging Face (Oniguruma-flavoured) pattern with PCRE2 in UTF + UCP mode, JIT when
 * available.  literal: the pattern is a plain string (Split "String" patterns). */
int rosa__regex_compile(const char *pattern, size_t len, int literal, struct pcre2_real_code_8 **out,
                        char *err, size_t errlen);
void rosa__regex_free(struct pcre2_real_code_8 *re);

/* ---- UTF-8 and the byte-level alphabet (tokenizer_utf8.c) ---- */
/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 if the bytes there are not one. */
int rosa__utf8_seq(const unsigned char *p, size_t n);
/* Length of the leading run of p that is well-formed UTF-8. */
size_t rosa__utf8_valid_prefix(const unsigned char *p, size_t n);
/* Length of the prefix of p that ends on a sequence boundary: a tail that is the incomplete
 * beginning of a well-formed sequence is left out (invalid bytes are not held back). */
size_t rosa__utf8_complete_prefix(const unsigned char *p, size_t n);
/* Decode one well-formed sequence (callers validate first). */
uint32_t rosa__utf8_decode(const unsigned char *p, int len);
int rosa__utf8_encode(uint32_t cp, char *out);
/* The GPT-2 byte <-> character table: the code point standing for byte b. */
uint32_t rosa__byte_char(unsigned b);
/* The byte a code point stands for, or -1 if it is not in the byte-level alphabet. */
int rosa__char_byte(uint32_t cp);
/* Unicode White_Space (as Rust's char::is_whitespace). */
int rosa__is_space(uint32_t cp);

/* ---- normalization (tokenizer_norm.c) ---- */
/* Apply the tokenizer's normalizers to valid UTF-8 s[0..n).  *out is s itself when nothing
 * changes (the common case, checked cheaply) or a malloc'd buffer the caller frees (*owned=1). */
int rosa__tk_normalize(const rosa_tokenizer *tk, const char *s, size_t n, char **out,
                       size_t *outlen, int *owned);

#endif
