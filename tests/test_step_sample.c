/* test_step_sample.c: rosa_step_batch_sample, the batched decode step that returns token ids.
 * On the CPU backend (host sampling) it must equal rosa_step_batch followed by
 * rosa_sampler_sample and rosa_logprobs with the same samplers, token for token and bit for
 * bit, for greedy and stochastic samplers, with and without penalties; it leaves
 * rosa_session_logits NULL and refuses bad arguments without changing a session.  On the CUDA
 * backend (f32; sampling on the device, only ids come back) greedy choices, and stochastic ones
 * whose candidates shrink to one token (top_k 1, a tiny top_p), must equal the CPU's argmax.
 * Needs ../shared (tiny-post-m4); the CUDA half runs only with a device. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "rosa_sampler.h"
#include "testutil.h"

enum { NS = 3, STEPS = 6 };

static int32_t *golden_prompt(const char *dir, int *T) {
    char *p = tu_path("%s/case.json", dir);
    char *text = tu_read_file(p, NULL);
    ck_assert_ptr_nonnull(text);
    cJSON *c = cJSON_Parse(text);
    const cJSON *pr = cJSON_GetObjectItem(c, "prompt");
    *T = cJSON_GetArraySize(pr);
    int32_t *v = malloc((size_t)*T * sizeof *v);
    int i = 0;
    for (const cJSON *e = pr->child; e; e = e->next) v[i++] = (int32_t)e->valuedouble;
    cJSON_Delete(c);
    free(text);
    free(p);
    return v;
}

static rosa_model *load(const char *dir, const char *dev) {
    rosa_load_opts o;
    char *adapter = tu_golden_opts(dir, &o);
    o.device = dev;
    if (strcmp(dev, "cpu")) {
        o.precision = "f32";
        o.gpu_memory = (size_t)2 << 30;
    }
    char *mdir = tu_path("%s/model", dir), err[512] = "";
    rosa_model *m;
    ck_assert_msg(rosa_model_load(mdir, &o, &m, err, sizeof err) == 0, "%s", err);
    free(mdir);
    free(adapter);
    return m;
}

/* three sessions fed different prefixes of the prompt */
static void open_sessions(rosa_model *m, const int32_t *prompt, rosa_session **s) {
    for (int i = 0; i < NS; i++) {
        ck_assert_int_eq(rosa_session_new(m, &s[i]), 0);
        ck_assert_int_eq(rosa_session_feed(s[i], prompt, 5 + 4 * i, NULL), 0);
    }
}

static void make_samplers(rosa_sampler **smp, int penalties, int vocab) {
    rosa_sampler_params p[NS];
    for (int i = 0; i < NS; i++) rosa_sampler_params_init(&p[i]);
    p[0].temperature = 0;
    p[1].temperature = 0.8f; p[1].top_p = 0.9f; p[1].seed = 7;
    p[2].temperature = 1.2f; p[2].top_k = 5; p[2].min_p = 0.05f; p[2].seed = 11;
    if (penalties) { p[1].repetition_penalty = 1.3f; p[2].presence_penalty = 0.5f; p[2].frequency_penalty = 0.2f; }
    for (int i = 0; i < NS; i++) ck_assert_ptr_nonnull(smp[i] = rosa_sampler_new(&p[i], vocab));
}

START_TEST(host_sampling_equals_step_then_sample) {
    int penalties = _i;
    char *dir = tu_path("%s/golden/tiny-post-m4", tu_shared_dir());
    int T;
    int32_t *prompt = golden_prompt(dir, &T);
    rosa_model *m = load(dir, "cpu");
    int V = rosa_model_get_info(m)->vocab;
    rosa_session *a[NS], *b[NS];
    rosa_sampler *sa[NS], *sb[NS];
    open_sessions(m, prompt, a);
    open_sessions(m, prompt, b);
    make_samplers(sa, penalties, V);
    make_samplers(sb, penalties, V);
    int32_t tok[NS] = {prompt[5], prompt[9], prompt[13]}, tb[NS];
    memcpy(tb, tok, sizeof tok);
    for (int step = 0; step < STEPS; step++) {
        int32_t next[NS];
        float lp[NS];
        ck_assert_int_eq(rosa_step_batch(a, tok, NS, NULL), 0);
        ck_assert_int_eq(rosa_step_batch_sample(b, tb, NS, sb, next, lp), 0);
        for (int i = 0; i < NS; i++) {
            const float *l = rosa_session_logits(a[i]);
            int32_t want = rosa_sampler_sample(sa[i], l);
            float wlp = rosa_logprobs(l, V, want, 0, NULL, NULL);
            ck_assert_msg(next[i] == want, "step %d session %d: %d, want %d", step, i, next[i], want);
            ck_assert_msg(lp[i] == wlp, "step %d session %d: logprob %g, want %g", step, i, lp[i], wlp);
            ck_assert_ptr_null(rosa_session_logits(b[i]));
            ck_assert_int_eq(rosa_session_length(b[i]), rosa_session_length(a[i]));
            rosa_sampler_accept(sa[i], want, 1);
            rosa_sampler_accept(sb[i], next[i], 1);
            tok[i] = want;
            tb[i] = next[i];
        }
    }
    /* refused without harm: no samplers, a missing sampler, a bad token */
    int32_t next[NS];
    int64_t len0 = rosa_session_length(b[0]);
    ck_assert_int_eq(rosa_step_batch_sample(b, tb, NS, NULL, next, NULL), ROSA_ERR_INVALID);
    rosa_sampler *holes[NS] = {sb[0], NULL, sb[2]};
    ck_assert_int_eq(rosa_step_batch_sample(b, tb, NS, holes, next, NULL), ROSA_ERR_INVALID);
    int32_t bad[NS] = {tb[0], V, tb[2]};
    ck_assert_int_eq(rosa_step_batch_sample(b, bad, NS, sb, next, NULL), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa_session_length(b[0]), len0);
    ck_assert_int_eq(rosa_step_batch_sample(b, tb, NS, sb, next, NULL), 0); /* still usable */
    for (int i = 0; i < NS; i++) {
        rosa_session_free(a[i]); rosa_session_free(b[i]);
        rosa_sampler_free(sa[i]); rosa_sampler_free(sb[i]);
    }
    rosa_model_free(m);
    free(prompt);
    free(dir);
}
END_TEST

START_TEST(device_sampling_single_candidate_is_argmax) {
    if (rosa_device_count("cuda") < 1) {
        printf("test_step_sample: no CUDA device: device half skipped\n");
        return;
    }
    char *dir = tu_path("%s/golden/tiny-post-m4", tu_shared_dir());
    int T;
    int32_t *prompt = golden_prompt(dir, &T);
    rosa_model *mc = load(dir, "cpu"), *mg = load(dir, "cuda");
    int V = rosa_model_get_info(mc)->vocab;
    rosa_session *c[NS], *g[NS];
    open_sessions(mc, prompt, c);
    open_sessions(mg, prompt, g);
    rosa_sampler_params p[NS];
    for (int i = 0; i < NS; i++) rosa_sampler_params_init(&p[i]);
    p[0].temperature = 0;                    /* greedy */
    p[1].temperature = 0.7f; p[1].top_k = 1; /* stochastic, one candidate */
    p[2].temperature = 1.0f; p[2].top_p = 1e-6f; p[2].seed = 3;
    rosa_sampler *sg[NS];
    for (int i = 0; i < NS; i++) ck_assert_ptr_nonnull(sg[i] = rosa_sampler_new(&p[i], V));
    int32_t tc[NS] = {prompt[5], prompt[9], prompt[13]}, tg[NS];
    memcpy(tg, tc, sizeof tc);
    for (int step = 0; step < STEPS; step++) {
        int32_t next[NS];
        ck_assert_int_eq(rosa_step_batch(c, tc, NS, NULL), 0);
        ck_assert_int_eq(rosa_step_batch_sample(g, tg, NS, sg, next, NULL), 0);
        for (int i = 0; i < NS; i++) {
            const float *l = rosa_session_logits(c[i]);
            int32_t best = 0;
            for (int v = 1; v < V; v++) if (l[v] > l[best]) best = v;
            ck_assert_msg(next[i] == best, "step %d session %d: device chose %d, argmax %d", step, i, next[i], best);
            tc[i] = tg[i] = best;
        }
    }
    for (int i = 0; i < NS; i++) { rosa_session_free(c[i]); rosa_session_free(g[i]); rosa_sampler_free(sg[i]); }
    rosa_model_free(mc);
    rosa_model_free(mg);
    free(prompt);
    free(dir);
}
END_TEST

int main(void) {
    tu_require_shared("test_step_sample");
    Suite *s = suite_create("step_sample");
    TCase *tc = tcase_create("step_sample");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, host_sampling_equals_step_then_sample, 0, 2);
    tcase_add_test(tc, device_sampling_single_candidate_is_argmax);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
