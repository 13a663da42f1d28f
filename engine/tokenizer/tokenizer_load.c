/* engine/tokenizer/: the Qwen3 byte-level BPE tokenizer behind rosa_tokenizer.h (load, normalise,
 * pre-tokenise, merge, encode, decode) and the chat format (chat_format.c).
 *
 * tokenizer_load.c: build a rosa_tokenizer from tokenizer.json (+ tokenizer_config.json).
 *
 * This file reads the model (BPE vocab and merges) and the config, and owns the per-id tables;
 * the added tokens are read by tokenizer_load_added.c and the normalizer / pre-tokenizer /
 * decoder sections by tokenizer_load_pipeline.c.  The
 * file is untrusted: every field is type-checked, ids are bounded, and anything we cannot
 * reproduce exactly is refused with a message naming the file and the component, never
 * approximated. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/errors.h"
#include "model/tensors.h"
#include "tokenizer/tokenizer_internal.h"

int64_t rosa__tk_arena_add(rosa_tokenizer *tk, const void *p, size_t n) {
    if (tk->arena_len + n + 1 > UINT32_MAX) return -1;
    if (tk->arena_len + n + 1 > tk->arena_cap) {
        size_t c = tk->arena_cap ? tk->arena_cap : 4096;
        while (c < tk->arena_len + n + 1) c *= 2;
        char *q = realloc(tk->arena, c);
        if (!q) return -1;
        tk->arena = q;
        tk->arena_cap = c;
    }
    int64_t off = (int64_t)tk->arena_len;
    if (n) memcpy(tk->arena + tk->arena_len, p, n);
    tk->arena_len += n;
    tk->arena[tk->arena_len] = 0;
    return off;
}

void rosa_tokenizer_free(rosa_tokenizer *tk) {
    if (!tk) return;
    for (int i = 0; i < tk->n_pre; i++) rosa__regex_free(tk->pre[i].re);
    rosa__strmap_free(&tk->vocab);
    rosa__pairmap_free(&tk->merges);
    free(tk->add_raw.tok);
    free(tk->add_norm.tok);
    free(tk->added);
    free(tk->flags);
    free(tk->str_off);
    free(tk->str_len);
    free(tk->dec_off);
    free(tk->dec_len);
    free(tk->arena);
    free(tk);
}

/* ---- small JSON helpers ---- */

/* A JSON number that is an integer in [0, ROSA__TK_MAX_IDS). */
int rosa__tk_json_id(const cJSON *j, int32_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0) || d >= ROSA__TK_MAX_IDS || floor(d) != d) return -1;
    *out = (int32_t)d;
    return 0;
}

/* Optional boolean field: absent or null gives def; anything else but a boolean is an error. */
int rosa__tk_json_bool(const cJSON *obj, const char *key, int def, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(j)) return -1;
    *out = cJSON_IsTrue(j) ? 1 : 0;
    return 0;
}

/* ---- ids and their strings ---- */

/* Byte-level decoding of one token string: every character maps back to its byte, or (if one
 * does not belong to the byte-level alphabet) the string stays as it is, as in Hugging Face's
 * ByteLevel decoder. */
int rosa__tk_set_decoded(rosa_tokenizer *tk, int32_t id, const char *s, size_t n) {
    char tmp[256];
    char *b = n <= sizeof tmp ? tmp : malloc(n);
    if (!b) return ROSA_ERR_NOMEM;
    const unsigned char *u = (const unsigned char *)s;
    size_t w = 0, i = 0;
    int all = 1;
    while (i < n) {
        int l = rosa__utf8_seq(u + i, n - i);
        int byte = l ? rosa__char_byte(rosa__utf8_decode(u + i, l)) : -1;
        if (byte < 0) {
            all = 0;
            break;
        }
        b[w++] = (char)byte;
        i += (size_t)l;
    }
    int64_t off = all ? rosa__tk_arena_add(tk, b, w) : rosa__tk_arena_add(tk, s, n);
    if (b != tmp) free(b);
    if (off < 0) return ROSA_ERR_NOMEM;
    tk->dec_off[id] = (uint32_t)off;
    tk->dec_len[id] = (uint32_t)(all ? w : n);
    return 0;
}

int rosa__tk_set_string(rosa_tokenizer *tk, int32_t id, const char *s, size_t n) {
    int64_t off = rosa__tk_arena_add(tk, s, n);
    if (off < 0) return ROSA_ERR_NOMEM;
    tk->str_off[id] = (uint32_t)off;
    tk->str_len[id] = (uint32_t)n;
    return rosa__tk_set_decoded(tk, id, s, n);
}

/* ---- model ---- */

static int load_model_options(rosa_tokenizer *tk, const cJSON *model, const char *file, char *err,
                              size_t errlen) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "BPE") == 0))
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                         "%s: model type '%s' is not supported (only BPE)", file,
                         cJSON_IsString(type) ? type->valuestring : "?");
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout)) {
        if (!cJSON_IsNumber(dropout) || !(dropout->valuedouble >= 0 && dropout->valuedouble <= 1))
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: model.dropout is not a number in [0, 1]", file);
        if (dropout->valuedouble != 0)
            return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                             "%s: BPE dropout (random merges) is not supported", file);
    }
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(model, affixes[i]);
        if (a && !cJSON_IsNull(a) && !(cJSON_IsString(a) && a->valuestring[0] == 0))
            return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                             "%s: BPE %s is not supported (byte-level BPE does not use it)", file,
                             affixes[i]);
    }
    int byte_fallback;
    if (rosa__tk_json_bool(model, "fuse_unk", 0, &tk->fuse_unk) ||
        rosa__tk_json_bool(model, "ignore_merges", 0, &tk->ignore_merges) ||
        rosa__tk_json_bool(model, "byte_fallback", 0, &byte_fallback))
        return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                         "%s: model.fuse_unk / ignore_merges / byte_fallback is not a boolean", file);
    if (byte_fallback)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: BPE byte_fallback is not supported", file);
    return 0;
}

static int load_vocab(rosa_tokenizer *tk, const cJSON *vocab, const char *file, char *err, size_t errlen) {
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id;
        if (rosa__tk_json_id(e, &id))
            return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                             "%s: model.vocab['%.64s'] is not an id in [0, %d)", file,
                             e->string ? e->string : "", ROSA__TK_MAX_IDS);
        if (tk->flags[id] & ROSA__TOK_VALID)
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: model.vocab gives id %d to two tokens",
                             file, (int)id);
        const char *s = e->string ? e->string : "";
        int rc = rosa__tk_set_string(tk, id, s, strlen(s));
        if (rc) return rosa__err(err, errlen, rc, "%s: out of memory", file);
        tk->flags[id] = ROSA__TOK_VALID;
    }
    return 0;
}

/* Index the vocabulary.  The map reaches keys through the arena pointer, which later appends
 * may move: callers refresh tk->vocab.arena before lookups until the arena is final. */
static int index_vocab(rosa_tokenizer *tk, int32_t n_vocab, const char *file, char *err, size_t errlen) {
    if (rosa__strmap_init(&tk->vocab, (uint32_t)n_vocab, tk->arena, tk->str_off, tk->str_len))
        return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", file);
    for (int32_t id = 0; id < tk->n_ids; id++)
        if (tk->flags[id] & ROSA__TOK_VALID)
            (void)rosa__strmap_put(&tk->vocab, id); /* a repeated key keeps its first id */
    for (unsigned b = 0; b < 256; b++) {
        char u[4];
        int l = rosa__utf8_encode(rosa__byte_char(b), u);
        tk->byte_id[b] = rosa__strmap_get(&tk->vocab, u, (size_t)l);
    }
    return 0;
}

static int merge_lookup(const rosa_tokenizer *tk, size_t rank, const char *a, size_t al,
                        const char *b, size_t bl, int32_t *ia, int32_t *ib, int32_t *im,
                        const char *file, char *err, size_t errlen) {
    *ia = rosa__strmap_get(&tk->vocab, a, al);
    *ib = rosa__strmap_get(&tk->vocab, b, bl);
    const char *missing = *ia < 0 ? a : *ib < 0 ? b : NULL;
    size_t mlen = *ia < 0 ? al : bl;
    char small[256];
    char *cat = small;
    if (!missing) {
        if (al + bl > sizeof small && !(cat = malloc(al + bl)))
            return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", file);
        memcpy(cat, a, al);
        memcpy(cat + al, b, bl);
        *im = rosa__strmap_get(&tk->vocab, cat, al + bl);
        if (*im < 0) {
            missing = cat;
            mlen = al + bl;
        }
    }
    int rc = 0;
    if (missing)
        rc = rosa__err(err, errlen, ROSA_ERR_FORMAT,
                       "%s: merge %zu ('%.*s' + '%.*s') names a token that is not in the vocabulary: '%.*s'",
                       file, rank, (int)(al > 64 ? 64 : al), a, (int)(bl > 64 ? 64 : bl), b,
                       (int)(mlen > 64 ? 64 : mlen), missing);
    if (cat != small) free(cat);
    return rc;
}

static int load_merges(rosa_tokenizer *tk, const cJSON *merges, const char *file, char *err, size_t errlen) {
    int n = cJSON_GetArraySize(merges);
    if (rosa__pairmap_init(&tk->merges, (uint32_t)(n > 0 ? n : 1)))
        return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", file);
    size_t rank = 0;
    for (const cJSON *m = merges->child; m; m = m->next) {
        const char *a, *b;
        size_t al, bl;
        if (cJSON_IsString(m)) {
            /* legacy "a b" form: exactly two parts separated by one space */
            const char *s = m->valuestring;
            if (strncmp(s, "#version", 8) == 0) continue;
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                                 "%s: merge %zu ('%.64s') is not two tokens separated by one space",
                                 file, rank, s);
            a = s;
            al = (size_t)(sp - s);
            b = sp + 1;
            bl = strlen(b);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            a = m->child->valuestring;
            al = strlen(a);
            b = m->child->next->valuestring;
            bl = strlen(b);
        } else {
            return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                             "%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", file, rank);
        }
        int32_t ia, ib, im;
        int rc = merge_lookup(tk, rank, a, al, b, bl, &ia, &ib, &im, file, err, errlen);
        if (rc) return rc;
        rosa__pairmap_put(&tk->merges, ia, ib, (uint32_t)rank, im);
        rank++;
    }
    return 0;
}

/* ---- tokenizer_config.json ---- */

static int load_config(rosa_tokenizer *tk, const char *json, size_t len, const char *file, char *err,
                       size_t errlen) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: not a JSON object", file);
    }
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token");
    if (cJSON_IsObject(eos)) eos = cJSON_GetObjectItemCaseSensitive(eos, "content");
    if (cJSON_IsString(eos)) tk->eos_id = rosa_tokenizer_token_id(tk, eos->valuestring);
    const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    if (cJSON_IsString(tpl)) {
        tk->has_chat_template = 1;
        tk->chatml_template = strstr(tpl->valuestring, "<|im_start|>") != NULL;
    } else if (cJSON_IsArray(tpl)) { /* [{"name": ..., "template": ...}] */
        tk->has_chat_template = 1;
        tk->chatml_template = 1;
        for (const cJSON *t = tpl->child; t; t = t->next) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "template");
            if (!cJSON_IsString(s) || !strstr(s->valuestring, "<|im_start|>")) tk->chatml_template = 0;
        }
    }
    cJSON_Delete(root);
    return 0;
}

/* ---- the whole file ---- */

static int max_id_of(const cJSON *vocab, const cJSON *added, int32_t *max_id, int32_t *n_vocab) {
    int32_t mx = -1, nv = 0, id;
    for (const cJSON *e = vocab->child; e; e = e->next, nv++)
        if (!rosa__tk_json_id(e, &id) && id > mx) mx = id;
    if (added)
        for (const cJSON *t = added->child; t; t = t->next)
            if (!rosa__tk_json_id(cJSON_GetObjectItemCaseSensitive(t, "id"), &id) && id > mx) mx = id;
    *max_id = mx;
    *n_vocab = nv;
    return 0;
}

static int load_root(rosa_tokenizer *tk, const cJSON *root, const char *file, char *err, size_t errlen) {
    if (!cJSON_IsObject(root)) return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: not a JSON object", file);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: no \"model\" object", file);
    int rc = load_model_options(tk, model, file, err, errlen);
    if (rc) return rc;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges))
        return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                         "%s: model needs a \"vocab\" object and a \"merges\" array", file);
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: added_tokens is not an array", file);
    if (!cJSON_IsArray(added)) added = NULL;

    /* the pipeline first: normalized added tokens are stored in normalized form */
    if ((rc = rosa__tk_load_normalizer(tk, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), file, err, errlen)))
        return rc;
    if ((rc = rosa__tk_load_pretokenizer(tk, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), file, err,
                                         errlen)))
        return rc;
    if ((rc = rosa__tk_load_decoder(cJSON_GetObjectItemCaseSensitive(root, "decoder"), file, err, errlen)))
        return rc;

    int32_t max_id, n_vocab;
    max_id_of(vocab, added, &max_id, &n_vocab);
    if (max_id < 0) return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: the vocabulary is empty", file);
    tk->n_ids = max_id + 1;
    size_t n = (size_t)tk->n_ids;
    tk->flags = calloc(n, 1);
    tk->str_off = calloc(n, sizeof *tk->str_off);
    tk->str_len = calloc(n, sizeof *tk->str_len);
    tk->dec_off = calloc(n, sizeof *tk->dec_off);
    tk->dec_len = calloc(n, sizeof *tk->dec_len);
    if (!tk->flags || !tk->str_off || !tk->str_len || !tk->dec_off || !tk->dec_len)
        return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", file);
    if ((rc = load_vocab(tk, vocab, file, err, errlen))) return rc;
    if ((rc = index_vocab(tk, n_vocab, file, err, errlen))) return rc;
    if (added && (rc = rosa__tk_load_added(tk, added, file, err, errlen))) return rc;
    /* the arena is final from here on */
    tk->vocab.arena = tk->arena;
    if ((rc = rosa__tk_finish_added(tk))) return rosa__err(err, errlen, rc, "%s: out of memory", file);
    if ((rc = load_merges(tk, merges, file, err, errlen))) return rc;

    const char *unk = NULL;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(u)) unk = u->valuestring;
    else if (u && !cJSON_IsNull(u))
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: model.unk_token is not a string", file);
    tk->unk_id = unk ? rosa__strmap_get(&tk->vocab, unk, strlen(unk)) : -1;
    if (unk && tk->unk_id < 0)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: unk_token '%.64s' is not in the vocabulary", file, unk);
    return 0;
}

int rosa__tokenizer_load_mem(const char *json, size_t len, const char *name, const char *config_json,
                             size_t config_len, const char *config_name, rosa_tokenizer **out, char *err,
                             size_t errlen) {
    *out = NULL;
    rosa_tokenizer *tk = calloc(1, sizeof *tk);
    if (!tk) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", name);
    tk->unk_id = -1;
    tk->eos_id = -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    int rc;
    if (!root) {
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : len;
        rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: malformed or truncated JSON (at byte %zu of %zu)",
                       name, at, len);
    } else {
        rc = load_root(tk, root, name, err, errlen);
        cJSON_Delete(root);
    }
    if (!rc && config_json) rc = load_config(tk, config_json, config_len, config_name, err, errlen);
    if (rc) {
        rosa_tokenizer_free(tk);
        return rc;
    }
    *out = tk;
    return 0;
}

int rosa_tokenizer_load(const char *path, rosa_tokenizer **out, char *err, size_t errlen) {
    if (!out) return rosa__err(err, errlen, ROSA_ERR_INVALID, "rosa_tokenizer_load: out is NULL");
    *out = NULL;
    if (!path) return rosa__err(err, errlen, ROSA_ERR_INVALID, "rosa_tokenizer_load: path is NULL");
    void *map;
    size_t len;
    int rc = rosa__map_file(path, &map, &len, err, errlen);
    if (rc) return rc;
    /* tokenizer_config.json beside it, when present */
    char cfg[4096];
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path) + 1 : 0;
    void *cmap = NULL;
    size_t clen = 0;
    if (snprintf(cfg, sizeof cfg, "%.*stokenizer_config.json", dl, path) < (int)sizeof cfg) {
        char cerr[8];
        if (rosa__map_file(cfg, &cmap, &clen, cerr, sizeof cerr) != 0) cmap = NULL;
    }
    rc = rosa__tokenizer_load_mem(map, len, path, cmap, clen, cfg, out, err, errlen);
    munmap(map, len);
    if (cmap) munmap(cmap, clen);
    return rc;
}
