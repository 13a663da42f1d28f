/* tokenizer_load_pipeline.c: read the normalizer, pre_tokenizer and decoder of tokenizer.json.
 *
 * Supported: normalizers NFC, NFD, NFKC, NFKD and Sequence of them; pre-tokenizers Split (Regex
 * or String pattern, any behaviour, invert), ByteLevel (add_prefix_space, use_regex) and Sequence
 * of them, with ByteLevel last; the ByteLevel decoder.  Anything else is refused by name: a
 * tokenizer we cannot reproduce exactly must not load. */
#include <cjson/cJSON.h>
#include <string.h>

#include "core/errors.h"
#include "tokenizer/tokenizer_internal.h"

/* GPT-2's pattern, used by ByteLevel when use_regex is true (as in Hugging Face). */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const char *type_of(const cJSON *j) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static int add_norm(rosa_tokenizer *tk, const cJSON *j, const char *file, int depth, char *err, size_t errlen) {
    if (!j || cJSON_IsNull(j)) return 0;
    const char *type = type_of(j);
    if (!cJSON_IsObject(j) || !type)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: normalizer without a \"type\"", file);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
        if (!cJSON_IsArray(list) || depth > 4)
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: normalizer Sequence without a \"normalizers\" array",
                             file);
        for (const cJSON *e = list->child; e; e = e->next) {
            int rc = add_norm(tk, e, file, depth + 1, err, errlen);
            if (rc) return rc;
        }
        return 0;
    }
    static const char *const forms[] = {[ROSA__NORM_NFC] = "NFC", [ROSA__NORM_NFD] = "NFD",
                                        [ROSA__NORM_NFKC] = "NFKC", [ROSA__NORM_NFKD] = "NFKD"};
    for (int f = 0; f < 4; f++)
        if (strcmp(type, forms[f]) == 0) {
            if (tk->n_norm == ROSA__TK_MAX_STEPS)
                return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: more than %d normalizers", file,
                                 ROSA__TK_MAX_STEPS);
            tk->norm[tk->n_norm++] = f;
            return 0;
        }
    return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                     "%s: normalizer '%.64s' is not supported (supported: NFC, NFD, NFKC, NFKD, Sequence)", file,
                     type);
}

int rosa__tk_load_normalizer(rosa_tokenizer *tk, const cJSON *j, const char *file, char *err, size_t errlen) {
    return add_norm(tk, j, file, 0, err, errlen);
}

static int parse_behavior(const char *s) {
    static const struct { const char *name; int v; } tab[] = {
        {"Removed", ROSA__SPLIT_REMOVED},
        {"Isolated", ROSA__SPLIT_ISOLATED},
        {"MergedWithPrevious", ROSA__SPLIT_MERGED_PREV},
        {"MergedWithNext", ROSA__SPLIT_MERGED_NEXT},
        {"Contiguous", ROSA__SPLIT_CONTIGUOUS},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(s, tab[i].name) == 0) return tab[i].v;
    return -1;
}

static int add_split(rosa_tokenizer *tk, const cJSON *j, const char *file, char *err, size_t errlen) {
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
    const cJSON *beh = cJSON_GetObjectItemCaseSensitive(j, "behavior");
    const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
    const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
    const cJSON *inv = cJSON_GetObjectItemCaseSensitive(j, "invert");
    if (!(cJSON_IsString(rx) || cJSON_IsString(str)) || !cJSON_IsString(beh) || (inv && !cJSON_IsBool(inv)))
        return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                         "%s: pre_tokenizer Split needs pattern {Regex|String}, behavior and invert", file);
    rosa__pretok *p = &tk->pre[tk->n_pre];
    p->kind = ROSA__PRE_SPLIT;
    p->behavior = parse_behavior(beh->valuestring);
    if (p->behavior < 0)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: Split behavior '%.64s' is not supported", file,
                         beh->valuestring);
    p->invert = inv && cJSON_IsTrue(inv);
    const char *s = cJSON_IsString(rx) ? rx->valuestring : str->valuestring;
    char rerr[200];
    int rc = rosa__regex_compile(s, strlen(s), !cJSON_IsString(rx), &p->re, rerr, sizeof rerr);
    if (rc) return rosa__err(err, errlen, rc, "%s: pre_tokenizer Split: %s", file, rerr);
    tk->n_pre++;
    return 0;
}

static int add_bytelevel(rosa_tokenizer *tk, const cJSON *j, const char *file, char *err, size_t errlen) {
    const cJSON *aps = cJSON_GetObjectItemCaseSensitive(j, "add_prefix_space");
    const cJSON *ur = cJSON_GetObjectItemCaseSensitive(j, "use_regex");
    if ((aps && !cJSON_IsBool(aps)) || (ur && !cJSON_IsBool(ur)))
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: ByteLevel flags are not booleans", file);
    rosa__pretok *p = &tk->pre[tk->n_pre];
    p->kind = ROSA__PRE_BYTELEVEL;
    /* Hugging Face's defaults when a flag is absent: add_prefix_space true, use_regex true */
    p->add_prefix_space = aps ? cJSON_IsTrue(aps) : 1;
    if (!ur || cJSON_IsTrue(ur)) {
        char rerr[200];
        int rc = rosa__regex_compile(gpt2_pattern, strlen(gpt2_pattern), 0, &p->re, rerr, sizeof rerr);
        if (rc) return rosa__err(err, errlen, rc, "%s: ByteLevel: %s", file, rerr);
    }
    tk->n_pre++;
    return 0;
}

static int add_pre(rosa_tokenizer *tk, const cJSON *j, const char *file, int depth, char *err, size_t errlen) {
    const char *type = type_of(j);
    if (!cJSON_IsObject(j) || !type)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: pre_tokenizer without a \"type\"", file);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers");
        if (!cJSON_IsArray(list) || depth > 4)
            return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                             "%s: pre_tokenizer Sequence without a \"pretokenizers\" array", file);
        for (const cJSON *e = list->child; e; e = e->next) {
            int rc = add_pre(tk, e, file, depth + 1, err, errlen);
            if (rc) return rc;
        }
        return 0;
    }
    int is_split = strcmp(type, "Split") == 0, is_bl = strcmp(type, "ByteLevel") == 0;
    if (!is_split && !is_bl)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                         "%s: pre_tokenizer '%.64s' is not supported (supported: Split, ByteLevel, Sequence)",
                         file, type);
    if (tk->n_pre > 0 && tk->pre[tk->n_pre - 1].kind == ROSA__PRE_BYTELEVEL)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                         "%s: pre_tokenizer %s after ByteLevel is not supported (ByteLevel must come last)",
                         file, type);
    if (tk->n_pre == ROSA__TK_MAX_STEPS)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizers", file,
                         ROSA__TK_MAX_STEPS);
    return is_split ? add_split(tk, j, file, err, errlen) : add_bytelevel(tk, j, file, err, errlen);
}

int rosa__tk_load_pretokenizer(rosa_tokenizer *tk, const cJSON *j, const char *file, char *err, size_t errlen) {
    if (j && !cJSON_IsNull(j)) {
        int rc = add_pre(tk, j, file, 0, err, errlen);
        if (rc) return rc;
    }
    if (tk->n_pre == 0 || tk->pre[tk->n_pre - 1].kind != ROSA__PRE_BYTELEVEL)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                         "%s: pre_tokenizer has no ByteLevel step: only byte-level BPE is supported", file);
    return 0;
}

int rosa__tk_load_decoder(const cJSON *j, const char *file, char *err, size_t errlen) {
    const char *type = j ? type_of(j) : NULL;
    if (!type)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                         "%s: decoder is missing (a ByteLevel decoder is required)", file);
    if (strcmp(type, "ByteLevel") != 0)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                         "%s: decoder '%.64s' is not supported (only ByteLevel)", file, type);
    return 0;
}
