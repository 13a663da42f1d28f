/* rosa_tokenizer.h: Hugging Face byte-level BPE tokenizer (tokenizer.json) and chat formatting.
 *
 * Token ids equal what Hugging Face `tokenizers` produces for the same tokenizer.json.
 * A loaded tokenizer is immutable and may be used from several threads at once. */
#ifndef ROSA_TOKENIZER_H
#define ROSA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rosa_tokenizer rosa_tokenizer;

/* Load tokenizer.json (and tokenizer_config.json beside it, when present).
 * Returns 0 or a negative rosa_err with a message naming the file and component. */
int rosa_tokenizer_load(const char *tokenizer_json, rosa_tokenizer **out, char *err, size_t errlen);
void rosa_tokenizer_free(rosa_tokenizer *tk);

/* Number of ids (base vocabulary + added tokens; the largest id + 1). */
int rosa_tokenizer_vocab_size(const rosa_tokenizer *tk);
/* Id of a token given as its string form (e.g. "<|im_end|>"), or -1. */
int32_t rosa_tokenizer_token_id(const rosa_tokenizer *tk, const char *token);
/* 1 if id is a special added token. */
int rosa_tokenizer_is_special(const rosa_tokenizer *tk, int32_t id);
/* End-of-sequence id from tokenizer_config.json (eos_token), or -1. */
int32_t rosa_tokenizer_eos(const rosa_tokenizer *tk);

/* Encode len bytes of text (any bytes; invalid UTF-8 is encoded byte-wise).
 * parse_special: 1 to match added special tokens in the text, 0 to treat them as plain text
 * (HF's encode_special_tokens; non-special added tokens such as <think> match either way, as in
 * HF).  No BOS/EOS is added (HF's add_special_tokens=False).
 * On success *ids (malloc'd, caller frees) holds *n ids. */
int rosa_tokenize(const rosa_tokenizer *tk, const char *text, size_t len, int parse_special,
                  int32_t **ids, size_t *n);
/* rosa_tokenize with special tokens recognised only where every byte of the token is marked
 * (markup[i] != 0, e.g. from rosa_chat_format_marked); elsewhere their text is plain text.
 * Special tokens of the tokenizer's normalized added-token set are never recognised here. */
int rosa_tokenize_marked(const rosa_tokenizer *tk, const char *text, size_t len,
                         const unsigned char *markup, int32_t **ids, size_t *n);

/* Decode ids to bytes (malloc'd, NUL-terminated, *len excludes the NUL).
 * Ids out of range give ROSA_ERR_INVALID. */
int rosa_detokenize(const rosa_tokenizer *tk, const int32_t *ids, size_t n, int skip_special,
                    char **text, size_t *len);

/* Streaming decode: push one id at a time; only complete UTF-8 sequences come out (an
 * incomplete multi-byte tail is held back until a later token completes it). */
typedef struct rosa_detok_stream rosa_detok_stream;
rosa_detok_stream *rosa_detok_stream_new(const rosa_tokenizer *tk, int skip_special);
void rosa_detok_stream_free(rosa_detok_stream *ds);
/* Appends the newly complete text of id to the stream's output; *out points to it (valid until
 * the next call), *len its length (may be 0).  Returns 0 or ROSA_ERR_INVALID. */
int rosa_detok_stream_push(rosa_detok_stream *ds, int32_t id, const char **out, size_t *len);
/* Whatever is still held back (bytes of a broken sequence, emitted as they are), at the end. */
int rosa_detok_stream_flush(rosa_detok_stream *ds, const char **out, size_t *len);

/* Replace each ill-formed UTF-8 subsequence of s by U+FFFD (one per maximal subpart, like
 * Rust's String::from_utf8_lossy, which Hugging Face's decode ends with, and Python's
 * errors="replace").  rosa_detokenize returns exact bytes; this gives HF's string.
 * *out is malloc'd and NUL-terminated. */
int rosa_utf8_lossy(const char *s, size_t len, char **out, size_t *outlen);

/* Chat formatting (Qwen3 ChatML).  Roles: "system", "user", "assistant", "tool"
 * (docs/TOKENIZER.md lists what of the Qwen3 template is reproduced). */
typedef struct rosa_chat_msg {
    const char *role;
    const char *content;
} rosa_chat_msg;

typedef struct rosa_chat_opts {
    int add_generation_prompt; /* append "<|im_start|>assistant\n" */
    int enable_thinking;       /* 0: append an empty <think> block after the generation prompt */
} rosa_chat_opts;

/* Render messages to the prompt text (malloc'd, NUL-terminated).  Encode the result with
 * parse_special = 1.  Unknown roles give ROSA_ERR_INVALID. */
int rosa_chat_format(const rosa_tokenizer *tk, const rosa_chat_msg *msgs, int n,
                     const rosa_chat_opts *opts, char **out, size_t *len);
/* The same text, and *markup (malloc'd, one byte per byte of the text): 1 where the template
 * wrote the text, 0 where it comes from a message (content, reasoning).  Encode the pair with
 * rosa_tokenize_marked so that text a user typed can never become control tokens. */
int rosa_chat_format_marked(const rosa_tokenizer *tk, const rosa_chat_msg *msgs, int n,
                            const rosa_chat_opts *opts, char **out, size_t *len,
                            unsigned char **markup);
/* Ids that end a chat turn (<|im_end|>, eos); returns the count written (<= cap). */
int rosa_chat_stop_ids(const rosa_tokenizer *tk, int32_t *out, int cap);

#ifdef __cplusplus
}
#endif
#endif
