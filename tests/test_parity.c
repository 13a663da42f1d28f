/* test_parity.c: the engine against transformers, on checkpoints transformers built and saved
 * itself (tests/data/parity, written by tools/make_parity_fixtures.py; no torch needed here).
 *
 * Every case and run: the logits of every prompt position within 1e-3 of transformers' float32
 * logits, fed whole and in chunks; the greedy continuation identical; the model's rotary inverse
 * frequencies and cos/sin scale equal to transformers' (rope_parameters and the older
 * rope_theta + rope_scaling layout; default, linear and yarn).  Runs with run options check the
 * layout overrides against transformers on the config they stand for.  Then the layout refusals
 * on a checkpoint with no windowed layer.  ROSA_TEST_DEVICE / ROSA_TEST_PRECISION: the same
 * through another backend (ctest test_cuda_parity_f32). */
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

#define TOL 1e-3

static cJSON *CASES; /* cases.json: {"cases": [names]} */

static char *data_dir(void) { return tu_path("%s/tests/data/parity", tu_source_dir()); }

static cJSON *read_json(const char *path) {
    char *text = tu_read_file(path, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    cJSON *j = cJSON_Parse(text);
    ck_assert_msg(j != NULL, "%s is not JSON", path);
    free(text);
    return j;
}

static void base_opts(rosa_load_opts *o) {
    rosa_load_opts_init(o);
    o->threads = 2;
    const char *dev = getenv("ROSA_TEST_DEVICE"), *prec = getenv("ROSA_TEST_PRECISION");
    if (dev && *dev) {
        o->device = dev;
        o->gpu_memory = (size_t)1 << 30;
    }
    if (prec && *prec) o->precision = prec;
}

static int argmax(const float *l, int V) {
    int b = 0;
    for (int v = 1; v < V; v++)
        if (l[v] > l[b]) b = v;
    return b;
}

/* Feed the prompt in chunks of the given sizes (cycling); max |logit - reference|. */
static double feed_compare(rosa_model *m, const int32_t *prompt, int T, int V, const float *ref,
                           const int *sizes, int nsizes, rosa_session **keep) {
    rosa_session *s;
    ck_assert_int_eq(rosa_session_new(m, &s), 0);
    float *lg = malloc((size_t)T * V * sizeof *lg);
    for (int done = 0, k = 0; done < T;) {
        int c = sizes[k++ % nsizes];
        if (c > T - done) c = T - done;
        ck_assert_int_eq(rosa_session_feed(s, prompt + done, c, lg + (size_t)done * V), 0);
        done += c;
    }
    double worst = 0;
    for (size_t i = 0; i < (size_t)T * V; i++) {
        double d = fabs((double)lg[i] - ref[i]);
        if (!(d <= worst)) worst = d; /* NaN counts as worst */
    }
    free(lg);
    if (keep) *keep = s;
    else rosa_session_free(s);
    return worst;
}

START_TEST(parity_case) {
    const char *name = cJSON_GetArrayItem(cJSON_GetObjectItem(CASES, "cases"), _i)->valuestring;
    char *dd = data_dir();
    char *dir = tu_path("%s/%s", dd, name), *cp = tu_path("%s/case.json", dir);
    cJSON *c = read_json(cp);
    const cJSON *shape = cJSON_GetObjectItem(c, "logits_shape");
    int T = cJSON_GetArrayItem(shape, 0)->valueint, V = cJSON_GetArrayItem(shape, 1)->valueint;
    int32_t *prompt = malloc((size_t)T * sizeof *prompt);
    for (int t = 0; t < T; t++) prompt[t] = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "prompt"), t)->valueint;
    const cJSON *runs = cJSON_GetObjectItem(c, "runs");
    ck_assert_int_gt(cJSON_GetArraySize(runs), 0);
    for (int r = 0; r < cJSON_GetArraySize(runs); r++) {
        const cJSON *run = cJSON_GetArrayItem(runs, r), *op = cJSON_GetObjectItem(run, "options");
        rosa_load_opts o;
        base_opts(&o);
        const cJSON *w = cJSON_GetObjectItem(op, "window"), *g = cJSON_GetObjectItem(op, "global_layers");
        if (w) o.window = w->valueint;
        if (g) o.global_layers = g->valueint;
        char err[1024] = "";
        rosa_model *m = NULL;
        int rc = rosa_model_load(dir, &o, &m, err, sizeof err);
        ck_assert_msg(rc == 0, "%s: load: %s", name, err);

        /* the rotary embedding transformers built from this config.json */
        const cJSON *inv = cJSON_GetObjectItem(c, "inv_freq");
        ck_assert_int_eq(cJSON_GetArraySize(inv), m->D / 2);
        for (int j = 0; j < m->D / 2; j++) {
            double want = cJSON_GetArrayItem(inv, j)->valuedouble;
            ck_assert_msg(fabs(m->inv_freq[j] - want) <= 2e-7 * fabs(want), "%s: inv_freq[%d] = %.9g, transformers %.9g",
                          name, j, m->inv_freq[j], want);
        }
        double scale = cJSON_GetObjectItem(c, "attention_scaling")->valuedouble;
        ck_assert_msg(fabs(m->rope_scale - scale) <= 1e-7 * scale, "%s: cos/sin scale %.9g, transformers %.9g", name,
                      m->rope_scale, scale);
        ck_assert_float_eq_tol(rosa_model_get_info(m)->rope.attention_factor, (float)scale, 1e-6f);

        char *lp = tu_path("%s/%s", dir, cJSON_GetObjectItem(run, "logits")->valuestring);
        size_t len = 0;
        float *ref = tu_read_file(lp, &len);
        ck_assert_msg(ref && len == (size_t)T * V * 4, "%s: %s is not [%d, %d] float32", name, lp, T, V);
        rosa_session *s;
        int whole[] = {T}, odd[] = {1, 7, 2, 13, 5};
        double d1 = feed_compare(m, prompt, T, V, ref, whole, 1, &s);
        double d2 = feed_compare(m, prompt, T, V, ref, odd, 5, NULL);
        char *ops = cJSON_PrintUnformatted(op);
        printf("parity %-26s run %d %-32s max |diff| %.3g (whole) %.3g (chunks)\n", name, r, ops ? ops : "", d1, d2);
        free(ops);
        ck_assert_msg(d1 <= TOL && d2 <= TOL, "%s run %d: logits differ from transformers by %g (whole) / %g (chunks)",
                      name, r, d1, d2);
        const cJSON *greedy = cJSON_GetObjectItem(run, "greedy");
        for (int k = 0; k < cJSON_GetArraySize(greedy); k++) {
            int want = cJSON_GetArrayItem(greedy, k)->valueint, got = argmax(rosa_session_logits(s), V);
            ck_assert_msg(got == want, "%s run %d: greedy token %d is %d, transformers %d", name, r, k, got, want);
            int32_t t = got;
            ck_assert_int_eq(rosa_session_feed(s, &t, 1, NULL), 0);
        }
        rosa_session_free(s);
        rosa_model_free(m);
        /* attention rings of W + H slots with a small rollback horizon H: the CPU backend's
         * prefill tiles then hold at most H + 1 rows (a tile's newest key must not overwrite
         * one its oldest row reads) */
        for (int h = 0; h <= 2; h += 2) {
            o.rollback_tokens = h;
            rc = rosa_model_load(dir, &o, &m, err, sizeof err);
            ck_assert_msg(rc == 0, "%s: load with rollback_tokens %d: %s", name, h, err);
            double d3 = feed_compare(m, prompt, T, V, ref, whole, 1, NULL);
            ck_assert_msg(d3 <= TOL, "%s run %d, rollback_tokens %d: logits differ from transformers by %g", name, r, h, d3);
            rosa_model_free(m);
        }
        free(ref);
        free(lp);
    }
    free(prompt);
    cJSON_Delete(c);
    free(cp);
    free(dir);
    free(dd);
}
END_TEST

static void expect_refused(const char *dir, const rosa_load_opts *o, const char *needle1, const char *needle2) {
    char err[1024] = "";
    rosa_model *m = NULL;
    int rc = rosa_model_load(dir, o, &m, err, sizeof err);
    ck_assert_msg(rc == ROSA_ERR_INVALID && !m, "load of %s should be refused as invalid (rc %d)", dir, rc);
    ck_assert_msg(strstr(err, needle1), "message '%s' does not say '%s'", err, needle1);
    if (needle2) ck_assert_msg(strstr(err, needle2), "message '%s' does not say '%s'", err, needle2);
}

static void expect_windows(const char *dir, const rosa_load_opts *o, const int *want, int L) {
    char err[1024] = "";
    rosa_model *m = NULL;
    ck_assert_msg(rosa_model_load(dir, o, &m, err, sizeof err) == 0, "load %s: %s", dir, err);
    const rosa_model_info *in = rosa_model_get_info(m);
    ck_assert_int_eq(in->layers, L);
    for (int l = 0; l < L; l++)
        ck_assert_msg(in->layer_window[l] == want[l], "layer %d: window %d, wanted %d", l, in->layer_window[l], want[l]);
    rosa_model_free(m);
}

/* --window changes windowed layers only; a model with none needs --global-layers too. */
START_TEST(layout_overrides) {
    char *dd = data_dir();
    char *full = tu_path("%s/full-tied-f32-p5", dd), *alt = tu_path("%s/swa-layertypes-bf16-p5", dd);
    rosa_load_opts o;
    base_opts(&o);
    o.window = 8;
    expect_refused(full, &o, "--window 8", "add --global-layers");
    o.global_layers = 1;
    int w1[] = {0, 8, 8};
    expect_windows(full, &o, w1, 3);
    o.window = -1;
    expect_refused(full, &o, "no window is set", "add --window");
    o.global_layers = 3; /* every layer global: no window needed */
    int w0[] = {0, 0, 0};
    expect_windows(full, &o, w0, 3);
    /* the same refusal when the window comes from the sidecar beside the model */
    char *tmp = tu_tmpdir();
    const char *files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *src = tu_path("%s/%s", full, files[i]), *dst = tu_path("%s/%s", tmp, files[i]);
        ck_assert_int_eq(symlink(src, dst), 0);
        free(src);
        free(dst);
    }
    char *sc = tu_path("%s/rosa_config.json", tmp);
    const char *side = "{\"window\": 6}";
    ck_assert_int_eq(tu_write_file(sc, side, strlen(side)), 0);
    base_opts(&o);
    expect_refused(tmp, &o, "rosa_config.json", "add --global-layers");
    o.global_layers = 2;
    int w2[] = {0, 0, 6};
    expect_windows(tmp, &o, w2, 3);
    /* sliding, full, sliding, full: --window 2 keeps the full layers full */
    base_opts(&o);
    int w3[] = {5, 0, 5, 0};
    expect_windows(alt, &o, w3, 4);
    o.window = 2;
    int w4[] = {2, 0, 2, 0};
    expect_windows(alt, &o, w4, 4);
    o.global_layers = 1;
    int w5[] = {0, 2, 2, 2};
    expect_windows(alt, &o, w5, 4);
    o.window = -1; /* --global-layers alone: config.json's window */
    int w6[] = {0, 5, 5, 5};
    expect_windows(alt, &o, w6, 4);
    unlink(sc);
    for (int i = 0; i < 2; i++) {
        char *p = tu_path("%s/%s", tmp, files[i]);
        unlink(p);
        free(p);
    }
    rmdir(tmp);
    free(sc);
    free(tmp);
    free(full);
    free(alt);
    free(dd);
}
END_TEST

int main(void) {
    const char *dev = getenv("ROSA_TEST_DEVICE");
    if (dev && *dev && rosa_device_count(dev) < 1) {
        printf("test_parity: no '%s' device on this machine: skipped\n", dev);
        return 77;
    }
    char *dd = data_dir(), *idx = tu_path("%s/cases.json", dd);
    char *text = tu_read_file(idx, NULL);
    if (!text) {
        fprintf(stderr, "test_parity: cannot read %s\n", idx);
        return 1;
    }
    CASES = cJSON_Parse(text);
    free(text);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(CASES, "cases"));
    if (n < 1) {
        fprintf(stderr, "test_parity: %s lists no case\n", idx);
        return 1;
    }
    free(idx);
    free(dd);
    Suite *s = suite_create("parity");
    TCase *tc = tcase_create("parity");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, parity_case, 0, n);
    tcase_add_test(tc, layout_overrides);
    suite_add_tcase(s, tc);
    int rc = tu_run_suite(s);
    cJSON_Delete(CASES);
    return rc;
}
