/* test_rope_config.c: how config.json's rope fields are read (model/rope.c).
 *
 * Each case takes the config.json of the parity checkpoint full-tied-f32-p5 (tests/data/parity),
 * removes rope_parameters, merges in the case's keys and loads the model.  Precedence cases
 * check the type, theta and scale in effect and the first inverse frequencies against the values
 * transformers 5.24 computes for the same config.json (Qwen3RotaryEmbedding, printed with the
 * generator's venv); malformed and unsupported ones must be refused with a message naming the
 * field or the rope type. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/model.h"
#include "rosa.h"
#include "testutil.h"

static char *BASE_DIR, *BASE_CONFIG;

/* A temporary model directory: the base config without rope_parameters, plus `extra` (a JSON
 * object whose keys are set at top level), and the base weights. */
static char *make_model(const char *extra) {
    cJSON *c = cJSON_Parse(BASE_CONFIG), *x = cJSON_Parse(extra);
    ck_assert_msg(c && cJSON_IsObject(x), "bad test case %s", extra);
    cJSON_DeleteItemFromObject(c, "rope_parameters");
    for (cJSON *e = x->child; e; e = e->next) {
        cJSON_DeleteItemFromObject(c, e->string);
        cJSON_AddItemToObject(c, e->string, cJSON_Duplicate(e, 1));
    }
    char *text = cJSON_Print(c), *d = tu_tmpdir(), *p = tu_path("%s/config.json", d);
    ck_assert_int_eq(tu_write_file(p, text, strlen(text)), 0);
    char *src = tu_path("%s/model.safetensors", BASE_DIR), *dst = tu_path("%s/model.safetensors", d);
    ck_assert_int_eq(symlink(src, dst), 0);
    free(src); free(dst); free(p); free(text);
    cJSON_Delete(c);
    cJSON_Delete(x);
    return d;
}

static void remove_model(char *d) {
    const char *files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *p = tu_path("%s/%s", d, files[i]);
        unlink(p);
        free(p);
    }
    rmdir(d);
    free(d);
}

static rosa_model *load(const char *d, char *err, size_t errlen, int *rc) {
    rosa_load_opts o;
    rosa_load_opts_init(&o);
    o.threads = 1;
    rosa_model *m = NULL;
    *rc = rosa_model_load(d, &o, &m, err, errlen);
    return m;
}

static const struct {
    const char *extra, *type;
    double theta, scale, inv[3]; /* transformers' rope_theta, attention_scaling, inv_freq[0..2] */
} OK[] = {
    /* rope_parameters' own theta wins over a top-level one */
    {"{\"rope_theta\": 5.0, \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1e6}}", "default", 1e6, 1,
     {1.0, 0.177827939, 0.031622779}},
    /* without one, the top-level theta */
    {"{\"rope_parameters\": {\"rope_type\": \"default\"}, \"rope_theta\": 5e5}", "default", 5e5, 1,
     {1.0, 0.193922758, 0.037606031}},
    /* neither: 10000 */
    {"{}", "default", 1e4, 1, {1.0, 0.316227764, 0.100000001}},
    /* a non-empty rope_scaling wins over rope_parameters (and its theta is the top-level one) */
    {"{\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}, \"rope_parameters\": {\"rope_type\": \"default\", "
     "\"rope_theta\": 1e6}}", "linear", 1e4, 1, {0.5, 0.158113882, 0.050000001}},
    /* an empty one does not */
    {"{\"rope_scaling\": {}, \"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4.0, \"rope_theta\": 1e4}}", "yarn",
     1e4, 1.138629436111989, {1.0, 0.316227764, 0.100000001}},
    /* yarn: a top-level original_max_position_embeddings wins */
    {"{\"original_max_position_embeddings\": 100, \"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4.0, "
     "\"original_max_position_embeddings\": 50, \"rope_theta\": 1e4}}", "yarn", 1e4, 1.138629436111989,
     {1.0, 0.237170815, 0.049999997}},
    /* yarn: "factor": null is max_position_embeddings / original */
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": null, \"original_max_position_embeddings\": 1024, "
     "\"rope_theta\": 1e4}}", "yarn", 1e4, 1.138629436111989, {1.0, 0.316227764, 0.081250004}},
    /* yarn: beta_fast 0 means 32, truncate null means false */
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4.0, \"truncate\": null, \"beta_fast\": 0, "
     "\"rope_theta\": 1e4}}", "yarn", 1e4, 1.138629436111989, {1.0, 0.316227764, 0.100000001}},
};

START_TEST(precedence) {
    char *d = make_model(OK[_i].extra), err[1024] = "";
    int rc;
    rosa_model *m = load(d, err, sizeof err, &rc);
    ck_assert_msg(rc == 0, "%s: %s", OK[_i].extra, err);
    const rosa_rope_info *r = &rosa_model_get_info(m)->rope;
    ck_assert_str_eq(r->type, OK[_i].type);
    ck_assert_float_eq_tol(r->theta, OK[_i].theta, OK[_i].theta * 1e-7);
    ck_assert_float_eq_tol(m->rope_scale, OK[_i].scale, 1e-7);
    for (int j = 0; j < 3; j++)
        ck_assert_msg(fabs(m->inv_freq[j] - OK[_i].inv[j]) <= 3e-7 * OK[_i].inv[j], "%s: inv_freq[%d] = %.9g, want %.9g",
                      OK[_i].extra, j, m->inv_freq[j], OK[_i].inv[j]);
    if (!strcmp(r->type, "yarn")) {
        ck_assert_float_eq(r->beta_fast, 32);
        ck_assert_float_eq(r->beta_slow, 1);
    }
    rosa_model_free(m);
    remove_model(d);
}
END_TEST

static const struct {
    const char *extra, *needle;
    int code;
} BAD[] = {
    {"{\"rope_parameters\": \"yarn\"}", "\"rope_parameters\" must be an object", ROSA_ERR_FORMAT},
    {"{\"rope_scaling\": [1, 2]}", "\"rope_scaling\" must be an object", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"dynamic\", \"factor\": 2.0}}", "rope type \"dynamic\"", ROSA_ERR_UNSUPPORTED},
    {"{\"rope_scaling\": {\"type\": \"longrope\", \"factor\": 2.0}}", "rope type \"longrope\" (rope_scaling)",
     ROSA_ERR_UNSUPPORTED},
    {"{\"rope_parameters\": {\"rope_type\": \"llama3\", \"factor\": 8.0}}", "\"llama3\"", ROSA_ERR_UNSUPPORTED},
    {"{\"rope_parameters\": {\"rope_type\": 7}}", "rope_parameters.rope_type must be a string", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": null}}", "rope_type must be a string", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"linear\"}}", "linear needs \"factor\"", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": \"2\"}}", "linear needs \"factor\"", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": -1}}", "linear needs \"factor\"", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\"}}", "yarn needs \"factor\"", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 0}}", "factor must be", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 0}}",
     "original_max_position_embeddings", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 10.5}}",
     "original_max_position_embeddings", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4, \"truncate\": \"yes\"}}", "truncate", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4, \"beta_fast\": \"x\"}}", "beta_fast", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4, \"beta_slow\": -2}}", "beta_slow", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4, \"attention_factor\": -1}}", "attention_factor",
     ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4, \"mscale\": true}}", "mscale", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": -5}}", "rope_parameters.rope_theta",
     ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": null}}", "rope_parameters.rope_theta",
     ROSA_ERR_FORMAT},
    {"{\"rope_theta\": \"abc\"}", "\"rope_theta\" is invalid", ROSA_ERR_FORMAT},
    {"{\"rope_theta\": 1e300}", "\"rope_theta\" is invalid", ROSA_ERR_FORMAT},
    {"{\"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\"}}}", "per layer type", ROSA_ERR_UNSUPPORTED},
    {"{\"partial_rotary_factor\": 0.5, \"rope_theta\": 1e4}", "partial_rotary_factor", ROSA_ERR_UNSUPPORTED},
    {"{\"rope_parameters\": {\"rope_type\": \"default\", \"partial_rotary_factor\": 0.25}}", "partial_rotary_factor",
     ROSA_ERR_UNSUPPORTED},
};

START_TEST(refusals) {
    char *d = make_model(BAD[_i].extra), err[1024] = "";
    int rc;
    rosa_model *m = load(d, err, sizeof err, &rc);
    ck_assert_msg(rc == BAD[_i].code && !m, "%s: rc %d, want %d (%s)", BAD[_i].extra, rc, BAD[_i].code, err);
    ck_assert_msg(strstr(err, "config.json") && strstr(err, BAD[_i].needle), "%s: message '%s' does not say '%s'",
                  BAD[_i].extra, err, BAD[_i].needle);
    remove_model(d);
}
END_TEST

int main(void) {
    BASE_DIR = tu_path("%s/tests/data/parity/full-tied-f32-p5", tu_source_dir());
    char *p = tu_path("%s/config.json", BASE_DIR);
    BASE_CONFIG = tu_read_file(p, NULL);
    free(p);
    if (!BASE_CONFIG) {
        fprintf(stderr, "test_rope_config: cannot read the parity fixture in %s\n", BASE_DIR);
        return 1;
    }
    Suite *s = suite_create("rope_config");
    TCase *tc = tcase_create("rope_config");
    tcase_add_loop_test(tc, precedence, 0, (int)(sizeof OK / sizeof *OK));
    tcase_add_loop_test(tc, refusals, 0, (int)(sizeof BAD / sizeof *BAD));
    suite_add_tcase(s, tc);
    int rc = tu_run_suite(s);
    free(BASE_CONFIG);
    free(BASE_DIR);
    return rc;
}
