/* rope.h: rotary position embedding parameters of a checkpoint, read from config.json the way
 * transformers reads them, and what each supported rope type computes from them: the inverse
 * frequencies and the scale of cos and sin.  Both backends rotate with these (rosa_model's
 * inv_freq and rope_scale), so the CPU and CUDA paths cannot disagree on the parameters. */
#ifndef ROSA_ROPE_H
#define ROSA_ROPE_H

#include <stddef.h>

struct cJSON;

enum { ROSA_ROPE_DEFAULT = 0, ROSA_ROPE_LINEAR = 1, ROSA_ROPE_YARN = 2 };

typedef struct rosa__rope {
    int type;               /* ROSA_ROPE_* */
    double theta;           /* rope_theta */
    double factor;          /* linear, yarn: the scaling factor; 1 for default */
    int original_max_pos;   /* yarn: original_max_position_embeddings; 0 otherwise */
    double beta_fast, beta_slow; /* yarn, defaults applied (32, 1); 0 otherwise */
    int truncate;           /* yarn: correction range floored/ceiled to whole dimensions */
    double attention_factor; /* yarn: scale of cos and sin (explicit or from factor/mscale); 1 otherwise */
} rosa__rope;

/* Reads the rope parameters of config.json's root object.  max_pos: config.json's
 * max_position_embeddings, or transformers' Qwen3 default (32768) when absent.  path names the
 * file in messages.  Returns 0, or ROSA_ERR_FORMAT / ROSA_ERR_UNSUPPORTED with a message naming
 * the field or the rope type. */
int rosa__rope_parse(const struct cJSON *root, int max_pos, const char *path, rosa__rope *r,
                     char *err, size_t errlen);

/* "default", "linear" or "yarn". */
const char *rosa__rope_type_name(int type);

/* inv_freq [D/2] and the cos/sin scale for head dimension D, in float32 as transformers
 * computes them. */
void rosa__rope_inv_freq(const rosa__rope *r, int D, float *inv_freq, float *scale);

#endif
