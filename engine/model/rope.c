/* rope.c: rotary embedding parameters as transformers (5.x, modeling_rope_utils.py) reads them
 * from a Qwen3 config.json, and the inverse frequencies each supported type computes.
 *
 * Where the parameters come from, in transformers' precedence:
 *   - the parameter object: "rope_scaling" when it is a non-empty object (the older layout, and
 *     transformers lets it win), else "rope_parameters" (what transformers >= 5 writes);
 *   - rope_theta: the object's own "rope_theta", else the top-level "rope_theta", else 10000;
 *   - the type: the object's "rope_type", else its "type", else "default".
 * Types: default, linear (inv_freq / factor) and yarn (NTK-by-parts blend between interpolated
 * and extrapolated frequencies, cos and sin scaled by the attention factor).  Anything else is
 * refused by name.  Arithmetic mirrors transformers: the per-dimension tensors in float32, the
 * scalar formulas (correction range, attention factor) in double, as Python computes them. */
#include "model/rope.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "core/errors.h"

const char *rosa__rope_type_name(int type) {
    return type == ROSA_ROPE_LINEAR ? "linear" : type == ROSA_ROPE_YARN ? "yarn" : "default";
}

static const cJSON *item(const cJSON *o, const char *k) {
    const cJSON *j = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return j && !cJSON_IsNull(j) ? j : NULL;
}

/* A number in (lo, hi]: 0 ok (stored), 1 absent or null, -1 present but not such a number. */
static int num(const cJSON *o, const char *k, double lo, double hi, double *out) {
    const cJSON *j = item(o, k);
    if (!j) return 1;
    if (!cJSON_IsNumber(j) || !(j->valuedouble > lo && j->valuedouble <= hi)) return -1;
    *out = j->valuedouble;
    return 0;
}

#define BAD(code, ...) return rosa__err(err, errlen, code, __VA_ARGS__)

static int parse_yarn(const cJSON *root, const cJSON *p, const char *pn, int max_pos,
                      const char *path, rosa__rope *r, char *err, size_t errlen) {
    /* original_max_position_embeddings: a top-level key wins (transformers moves it into the
     * parameters), then the parameters', then max_position_embeddings */
    double omp = max_pos;
    int rc = num(root, "original_max_position_embeddings", 0, 1 << 30, &omp);
    if (rc > 0) rc = num(p, "original_max_position_embeddings", 0, 1 << 30, &omp);
    if (rc < 0 || floor(omp) != omp)
        BAD(ROSA_ERR_FORMAT, "%s: \"original_max_position_embeddings\" must be a positive integer", path);
    r->original_max_pos = (int)omp;
    if (!cJSON_GetObjectItemCaseSensitive(p, "factor"))
        BAD(ROSA_ERR_FORMAT, "%s: %s of type yarn needs \"factor\"", path, pn);
    rc = num(p, "factor", 0, 1e6, &r->factor);
    if (rc < 0) BAD(ROSA_ERR_FORMAT, "%s: %s.factor must be a number in (0, 1e6]", path, pn);
    if (rc > 0) r->factor = (double)max_pos / (double)r->original_max_pos; /* "factor": null */
    double mscale = 0, mscale_all = 0;
    if (num(p, "mscale", -1e6, 1e6, &mscale) < 0 || num(p, "mscale_all_dim", -1e6, 1e6, &mscale_all) < 0)
        BAD(ROSA_ERR_FORMAT, "%s: %s.mscale and .mscale_all_dim must be numbers", path, pn);
    rc = num(p, "attention_factor", 0, 1e6, &r->attention_factor);
    if (rc < 0) BAD(ROSA_ERR_FORMAT, "%s: %s.attention_factor must be a number in (0, 1e6]", path, pn);
    if (rc > 0) {
        /* get_mscale(scale, m) = 1 for scale <= 1, else 0.1 m ln(scale) + 1 */
        double f = r->factor, l = f <= 1 ? 0 : log(f);
        if (mscale != 0 && mscale_all != 0)
            r->attention_factor = (f <= 1 ? 1.0 : 0.1 * mscale * l + 1.0) / (f <= 1 ? 1.0 : 0.1 * mscale_all * l + 1.0);
        else
            r->attention_factor = f <= 1 ? 1.0 : 0.1 * l + 1.0;
    }
    /* `get("beta_fast") or 32`: absent, null and 0 all mean the default */
    r->beta_fast = 32;
    r->beta_slow = 1;
    if (num(p, "beta_fast", -1e6, 1e6, &r->beta_fast) < 0 || num(p, "beta_slow", -1e6, 1e6, &r->beta_slow) < 0)
        BAD(ROSA_ERR_FORMAT, "%s: %s.beta_fast and .beta_slow must be numbers", path, pn);
    if (r->beta_fast == 0) r->beta_fast = 32;
    if (r->beta_slow == 0) r->beta_slow = 1;
    if (!(r->beta_fast > 0 && r->beta_slow > 0))
        BAD(ROSA_ERR_FORMAT, "%s: %s.beta_fast and .beta_slow must be positive", path, pn);
    /* `get("truncate", True)`: absent means true, null false */
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(p, "truncate");
    if (tr && !cJSON_IsBool(tr) && !cJSON_IsNull(tr))
        BAD(ROSA_ERR_FORMAT, "%s: %s.truncate must be true, false or null", path, pn);
    r->truncate = !tr || cJSON_IsTrue(tr);
    return 0;
}

int rosa__rope_parse(const cJSON *root, int max_pos, const char *path, rosa__rope *r, char *err,
                     size_t errlen) {
    memset(r, 0, sizeof *r);
    r->type = ROSA_ROPE_DEFAULT;
    r->theta = 10000.0;
    r->factor = 1.0;
    r->attention_factor = 1.0;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (rs && !cJSON_IsNull(rs) && !cJSON_IsObject(rs))
        BAD(ROSA_ERR_FORMAT, "%s: \"rope_scaling\" must be an object or null", path);
    if (rp && !cJSON_IsNull(rp) && !cJSON_IsObject(rp))
        BAD(ROSA_ERR_FORMAT, "%s: \"rope_parameters\" must be an object or null", path);
    const cJSON *p = NULL;
    const char *pn = NULL;
    if (cJSON_IsObject(rs) && rs->child) p = rs, pn = "rope_scaling";
    else if (cJSON_IsObject(rp)) p = rp, pn = "rope_parameters";
    if (p && (cJSON_GetObjectItemCaseSensitive(p, "full_attention") ||
              cJSON_GetObjectItemCaseSensitive(p, "sliding_attention")))
        BAD(ROSA_ERR_UNSUPPORTED, "%s: %s per layer type is not supported (Qwen3 has one rotary embedding)", path, pn);

    if (num(root, "rope_theta", 0, 1e12, &r->theta) < 0 || r->theta < 1)
        BAD(ROSA_ERR_FORMAT, "%s: \"rope_theta\" is invalid (expected a number in [1, 1e12])", path);
    if (p && cJSON_GetObjectItemCaseSensitive(p, "rope_theta") &&
        (num(p, "rope_theta", 0, 1e12, &r->theta) != 0 || r->theta < 1))
        BAD(ROSA_ERR_FORMAT, "%s: %s.rope_theta is invalid (expected a number in [1, 1e12])", path, pn);
    double prf = 1.0;
    if (num(root, "partial_rotary_factor", 0, 1, &prf) < 0 || (p && num(p, "partial_rotary_factor", 0, 1, &prf) < 0) ||
        prf != 1.0)
        BAD(ROSA_ERR_UNSUPPORTED, "%s: partial_rotary_factor other than 1 is not supported", path);
    if (!p) return 0;

    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "rope_type");
    if (!ty) ty = cJSON_GetObjectItemCaseSensitive(p, "type");
    if (ty && !cJSON_IsString(ty))
        BAD(ROSA_ERR_FORMAT, "%s: %s.rope_type must be a string", path, pn);
    const char *type = ty ? ty->valuestring : "default";
    if (!strcmp(type, "default")) return 0;
    if (!strcmp(type, "linear")) {
        r->type = ROSA_ROPE_LINEAR;
        if (num(p, "factor", 0, 1e6, &r->factor) != 0)
            BAD(ROSA_ERR_FORMAT, "%s: %s of type linear needs \"factor\", a number in (0, 1e6]", path, pn);
        return 0;
    }
    if (!strcmp(type, "yarn")) {
        r->type = ROSA_ROPE_YARN;
        return parse_yarn(root, p, pn, max_pos, path, r, err, errlen);
    }
    char q[64];
    BAD(ROSA_ERR_UNSUPPORTED, "%s: rope type \"%s\" (%s) is not supported (default, linear, yarn)", path,
        rosa__quote(q, sizeof q, type, strlen(type)), pn);
}

/* transformers' find_correction_dim: the dimension whose wavelength turns n_rot times over the
 * original context (double, as in Python; the constant is math.pi) */
static double correction_dim(double n_rot, int dim, double base, int max_pos) {
    return (dim * log(max_pos / (n_rot * 2 * 3.141592653589793))) / (2 * log(base));
}

void rosa__rope_inv_freq(const rosa__rope *r, int D, float *inv_freq, float *scale) {
    int half = D / 2;
    float theta = (float)r->theta, factor = (float)r->factor;
    double low = 0, high = 0;
    if (r->type == ROSA_ROPE_YARN) {
        low = correction_dim(r->beta_fast, D, r->theta, r->original_max_pos);
        high = correction_dim(r->beta_slow, D, r->theta, r->original_max_pos);
        if (r->truncate) {
            low = floor(low);
            high = ceil(high);
        }
        if (low < 0) low = 0;
        if (high > D - 1) high = D - 1;
        if (low == high) high += 0.001; /* transformers: "prevent singularity" */
    }
    for (int j = 0; j < half; j++) {
        float pos_freq = powf(theta, (float)(2 * j) / (float)D);
        float f = 1.0f / pos_freq;
        if (r->type == ROSA_ROPE_LINEAR) f /= factor;
        if (r->type == ROSA_ROPE_YARN) {
            float inter = 1.0f / (factor * pos_freq);
            float ramp = ((float)j - (float)low) / (float)(high - low);
            ramp = ramp < 0.0f ? 0.0f : ramp > 1.0f ? 1.0f : ramp;
            float extra_w = 1.0f - ramp; /* weight of the extrapolated (unscaled) frequency */
            f = inter * (1.0f - extra_w) + f * extra_w;
        }
        inv_freq[j] = f;
    }
    *scale = r->type == ROSA_ROPE_YARN ? (float)r->attention_factor : 1.0f;
}
