/* tokenizer_load_added.c: the added_tokens of tokenizer.json.
 *
 * Each token gets its id (the vocabulary's, if the content is already a token there, as Hugging
 * Face does), its flags, and the pattern matched in text: its content, or for a normalized token
 * the content normalized.  The patterns are then sorted into the two sets matched at encode time
 * (raw text, normalized text), longest first per first byte. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "tokenizer/tokenizer_internal.h"

static int cmp_added(const void *x, const void *y) {
    const rosa__added *a = *(const rosa__added *const *)x, *b = *(const rosa__added *const *)y;
    unsigned char fa = (unsigned char)a->pat[0], fb = (unsigned char)b->pat[0];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int build_addset(rosa_tokenizer *tk, rosa__addset *set, int normalized) {
    int n = 0;
    for (int i = 0; i < tk->n_added; i++) n += tk->added[i].normalized == normalized;
    set->n = 0;
    set->single_first = -1;
    if (!n) return 0;
    set->tok = malloc(sizeof *set->tok * (size_t)n);
    if (!set->tok) return ROSA_ERR_NOMEM;
    for (int i = 0; i < tk->n_added; i++)
        if (tk->added[i].normalized == normalized) set->tok[set->n++] = &tk->added[i];
    qsort(set->tok, (size_t)n, sizeof *set->tok, cmp_added);
    int distinct = 0;
    for (int i = 0; i < n;) {
        unsigned char f = (unsigned char)set->tok[i]->pat[0];
        int j = i;
        while (j < n && (unsigned char)set->tok[j]->pat[0] == f) j++;
        set->first_lo[f] = (uint16_t)i;
        set->first_hi[f] = (uint16_t)j;
        distinct++;
        set->single_first = f;
        i = j;
    }
    if (distinct != 1) set->single_first = -1;
    return 0;
}

int rosa__tk_load_added(rosa_tokenizer *tk, const cJSON *arr, const char *file, char *err, size_t errlen) {
    int n = cJSON_GetArraySize(arr);
    tk->added = calloc((size_t)(n ? n : 1), sizeof *tk->added);
    if (!tk->added) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", file);
    int k = 0;
    for (const cJSON *t = arr->child; t; t = t->next, k++) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(t, "content");
        int32_t id;
        if (!cJSON_IsObject(t) || !cJSON_IsString(content) ||
            rosa__tk_json_id(cJSON_GetObjectItemCaseSensitive(t, "id"), &id))
            return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                             "%s: added_tokens[%d] needs a string content and an integer id", file, k);
        int special, single_word, lstrip, rstrip, normalized;
        if (rosa__tk_json_bool(t, "special", 0, &special) || rosa__tk_json_bool(t, "single_word", 0, &single_word) ||
            rosa__tk_json_bool(t, "lstrip", 0, &lstrip) || rosa__tk_json_bool(t, "rstrip", 0, &rstrip) ||
            rosa__tk_json_bool(t, "normalized", !special, &normalized))
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: added_tokens[%d]: a flag is not a boolean",
                             file, k);
        const char *c = content->valuestring;
        size_t cl = strlen(c);
        if (cl == 0) continue; /* Hugging Face ignores empty added tokens */
        if (rosa__utf8_valid_prefix((const unsigned char *)c, cl) != cl)
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: added_tokens[%d] is not valid UTF-8", file, k);
        /* a token already in the model vocabulary keeps the vocabulary's id (as in HF) */
        tk->vocab.arena = tk->arena;
        int32_t vid = rosa__strmap_get(&tk->vocab, c, cl);
        if (vid >= 0) id = vid;
        else if (tk->flags[id] & ROSA__TOK_VALID && !(tk->flags[id] & ROSA__TOK_ADDED))
            return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                             "%s: added token '%.64s' has id %d, which the vocabulary gives to another token",
                             file, c, (int)id);
        if (tk->flags[id] & ROSA__TOK_ADDED) {
            if (tk->str_len[id] == cl && memcmp(tk->arena + tk->str_off[id], c, cl) == 0) continue; /* repeated */
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: two added tokens have id %d", file, (int)id);
        }
        rosa__added *a = &tk->added[tk->n_added++];
        a->id = id;
        a->special = (uint8_t)special;
        a->single_word = (uint8_t)single_word;
        a->lstrip = (uint8_t)lstrip;
        a->rstrip = (uint8_t)rstrip;
        a->normalized = (uint8_t)normalized;
        /* the matched pattern (and what decoding yields): the normalized form when normalized */
        char *norm = (char *)c;
        size_t nl = cl;
        int owned = 0;
        if (normalized) {
            int rc = rosa__tk_normalize(tk, c, cl, &norm, &nl, &owned);
            if (rc) return rosa__err(err, errlen, rc, "%s: added_tokens[%d]: normalization failed", file, k);
        }
        int rc = rosa__tk_set_string(tk, id, c, cl);
        if (!rc && owned) rc = rosa__tk_set_decoded(tk, id, norm, nl);
        int64_t off = rc ? -1 : rosa__tk_arena_add(tk, norm, nl);
        if (owned) free(norm);
        if (off < 0) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", file);
        a->off = (uint32_t)off; /* a->pat is set once the arena is final */
        a->len = (uint32_t)nl;
        tk->flags[id] |= ROSA__TOK_VALID | ROSA__TOK_ADDED | (special ? ROSA__TOK_SPECIAL : 0);
    }
    return 0;
}

int rosa__tk_finish_added(rosa_tokenizer *tk) {
    int w = 0;
    for (int i = 0; i < tk->n_added; i++) {
        tk->added[i].pat = tk->arena + tk->added[i].off;
        if (tk->added[i].len) tk->added[w++] = tk->added[i]; /* normalized to nothing: never matches */
    }
    tk->n_added = w;
    if (build_addset(tk, &tk->add_raw, 0) || build_addset(tk, &tk->add_norm, 1)) return ROSA_ERR_NOMEM;
    return 0;
}
