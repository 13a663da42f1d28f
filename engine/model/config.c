/* config.c: reads a Hugging Face Qwen3 config.json into rosa__config, with sanity limits.
 * The attention layout from config.json (layer_types, or use_sliding_window +
 * max_window_layers + sliding_window) is resolved here; run options override it later.  The rope
 * parameters are read by rope.c. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/model.h"
#include "model/rope.h"

#define CONFIG_MAX_BYTES (4u << 20)

static char *read_small_file(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = malloc(max + 1);
    if (!b) { fclose(f); return NULL; }
    size_t n = fread(b, 1, max + 1, f);
    fclose(f);
    if (n > max) { free(b); *len = max + 1; return NULL; }
    b[n] = 0;
    *len = n;
    return b;
}

/* Integer field: 0 ok, 1 absent or null, -1 wrong type / out of [lo, hi]. */
static int get_int(const cJSON *o, const char *k, long lo, long hi, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!j || cJSON_IsNull(j)) return 1;
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (floor(d) != d || d < (double)lo || d > (double)hi) return -1;
    *out = (int)d;
    return 0;
}

static int get_float(const cJSON *o, const char *k, double lo, double hi, float *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!j || cJSON_IsNull(j)) return 1;
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi)) return -1;
    *out = (float)j->valuedouble;
    return 0;
}

void rosa__config_free(rosa__config *c) {
    free(c->layer_window);
    c->layer_window = NULL;
}

#define REQ_INT(key, lo, hi, dst)                                                              \
    do {                                                                                        \
        int r_ = get_int(root, key, lo, hi, dst);                                               \
        if (r_ != 0) {                                                                          \
            rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: \"%s\" %s (expected an integer in [%ld, %ld])", \
                           path, key, r_ > 0 ? "is missing" : "is invalid", (long)(lo), (long)(hi)); \
            goto done;                                                                          \
        }                                                                                       \
    } while (0)

int rosa__config_load(const char *model_dir, rosa__config *c, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    memset(c, 0, sizeof *c);
    size_t len = 0;
    char *text = read_small_file(path, CONFIG_MAX_BYTES, &len);
    if (!text) {
        if (len > CONFIG_MAX_BYTES)
            return rosa__err(err, errlen, ROSA_ERR_LIMIT, "%s: larger than %u bytes", path, CONFIG_MAX_BYTES);
        return rosa__err(err, errlen, ROSA_ERR_IO, "%s: cannot read (is %s a Hugging Face model directory?)", path, model_dir);
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    int rc = 0;
    if (!root || !cJSON_IsObject(root)) {
        rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, "qwen3") != 0) {
        rc = rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: model_type \"%s\" is not supported (only \"qwen3\")", path, mt->valuestring);
        goto done;
    }
    REQ_INT("vocab_size", 1, 16 << 20, &c->vocab);
    REQ_INT("hidden_size", 1, 1 << 16, &c->hidden);
    REQ_INT("intermediate_size", 1, 1 << 20, &c->ffn);
    REQ_INT("num_hidden_layers", 1, 1024, &c->layers);
    REQ_INT("num_attention_heads", 1, 1024, &c->heads);
    c->kv_heads = c->heads;
    if (get_int(root, "num_key_value_heads", 1, 1024, &c->kv_heads) < 0) {
        rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: \"num_key_value_heads\" is invalid", path);
        goto done;
    }
    if (c->heads % c->kv_heads) {
        rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)", path, c->heads, c->kv_heads);
        goto done;
    }
    c->head_dim = c->hidden / c->heads;
    int hd = get_int(root, "head_dim", 2, 4096, &c->head_dim);
    if (hd < 0 || c->head_dim % 2 || c->head_dim < 2) {
        rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: \"head_dim\" must be an even integer in [2, 4096]", path);
        goto done;
    }
    c->eps = 1e-6f;
    if (get_float(root, "rms_norm_eps", 1e-12, 1.0, &c->eps) < 0) {
        rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: \"rms_norm_eps\" is invalid", path);
        goto done;
    }
    c->max_pos = 1 << 30;
    int mpr = get_int(root, "max_position_embeddings", 1, 1L << 30, &c->max_pos);
    if (mpr < 0) {
        rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: \"max_position_embeddings\" is invalid", path);
        goto done;
    }
    /* rope_theta, rope_parameters / rope_scaling (yarn's defaults use transformers' Qwen3
     * max_position_embeddings, 32768, when config.json has none) */
    if ((rc = rosa__rope_parse(root, mpr == 0 ? c->max_pos : 32768, path, &c->rope, err, errlen))) goto done;
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(root, "attention_bias");
    if (cJSON_IsTrue(ab)) {
        rc = rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: attention_bias = true is not supported (Qwen3 has no biases)", path);
        goto done;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (cJSON_IsString(act) && strcmp(act->valuestring, "silu") != 0) {
        rc = rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (only silu)", path, act->valuestring);
        goto done;
    }
    c->tied = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings"));
    c->bos = c->eos = -1;
    get_int(root, "bos_token_id", 0, 16 << 20, &c->bos);
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (cJSON_IsArray(eos) && cJSON_GetArraySize(eos) > 0) eos = cJSON_GetArrayItem(eos, 0);
    if (cJSON_IsNumber(eos) && eos->valuedouble >= 0 && eos->valuedouble < c->vocab) c->eos = (int)eos->valuedouble;

    /* attention layout */
    c->layer_window = calloc((size_t)c->layers, sizeof *c->layer_window);
    if (!c->layer_window) { rc = rosa__err(err, errlen, ROSA_ERR_NOMEM, "out of memory"); goto done; }
    int sw = 0;
    int swr = get_int(root, "sliding_window", 1, 1 << 30, &sw);
    if (swr < 0) {
        rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: \"sliding_window\" is invalid", path);
        goto done;
    }
    c->sliding_window = swr == 0 ? sw : 0;
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->layers) {
            rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: \"layer_types\" must list %d entries", path, c->layers);
            goto done;
        }
        for (int i = 0; i < c->layers; i++) {
            const cJSON *e = cJSON_GetArrayItem(lt, i);
            if (cJSON_IsString(e) && strcmp(e->valuestring, "full_attention") == 0) c->layer_window[i] = 0;
            else if (cJSON_IsString(e) && strcmp(e->valuestring, "sliding_attention") == 0) {
                if (swr != 0) {
                    rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: layer %d is sliding_attention but \"sliding_window\" is not set", path, i);
                    goto done;
                }
                c->layer_window[i] = sw;
            } else {
                rc = rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: layer_types[%d] is not \"full_attention\" or \"sliding_attention\"", path, i);
                goto done;
            }
        }
    } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "use_sliding_window"))) {
        int mwl = c->layers;
        if (get_int(root, "max_window_layers", 0, 1024, &mwl) < 0 || swr != 0) {
            rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: use_sliding_window needs valid \"sliding_window\" and \"max_window_layers\"", path);
            goto done;
        }
        for (int i = 0; i < c->layers; i++) c->layer_window[i] = i < mwl ? 0 : sw;
    }
done:
    cJSON_Delete(root);
    if (rc) rosa__config_free(c);
    return rc;
}
