/* test_backend_forward.c: the backend seam's forward contract (core/model.h) where the public
 * API never exercises it: a batch in which some sessions have no rows (ntok == 0).  Such a
 * session takes no part: its last logits, attention cache and ROSA automata stay as they were,
 * and the other sessions' rows and last logits are those of the golden case.  Runs on the CPU
 * backend, and on the CUDA backend (f32) when a device is present, so both backends answer to
 * the same contract.  Needs ../shared (golden case tiny-post-m4); exits 77 without it. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "rosa.h"
#include "testutil.h"

typedef struct golden {
    char *dir;
    int32_t *prompt;
    float *logits; /* [T, V] */
    int T, V;
} golden;

static void golden_load(golden *g, const char *name) {
    g->dir = tu_path("%s/golden/%s", tu_shared_dir(), name);
    char *p = tu_path("%s/logits.f32", g->dir);
    size_t len = 0;
    g->logits = tu_read_file(p, &len);
    ck_assert_ptr_nonnull(g->logits);
    free(p);
    p = tu_path("%s/case.json", g->dir);
    char *text = tu_read_file(p, NULL);
    ck_assert_ptr_nonnull(text);
    free(p);
    cJSON *c = cJSON_Parse(text);
    const cJSON *pr = cJSON_GetObjectItem(c, "prompt");
    g->T = cJSON_GetArraySize(pr);
    ck_assert_int_gt(g->T, 8);
    g->prompt = malloc((size_t)g->T * sizeof *g->prompt);
    int i = 0;
    for (const cJSON *e = pr->child; e; e = e->next) g->prompt[i++] = (int32_t)e->valuedouble;
    cJSON_Delete(c);
    free(text);
    g->V = (int)(len / sizeof(float) / (size_t)g->T);
    ck_assert_uint_eq((size_t)g->T * g->V * sizeof(float), len);
}

static void near_row(const golden *g, const float *got, int t, const char *what) {
    double worst = 0;
    for (int v = 0; v < g->V; v++) worst = fmax(worst, fabs((double)got[v] - g->logits[(size_t)t * g->V + v]));
    ck_assert_msg(worst <= 1e-3, "%s: logits of position %d differ from golden by %g", what, t, worst);
}

static const char *DEVICES[] = {"cpu", "cuda"};

START_TEST(ntok_zero_takes_no_part) {
    const char *dev = DEVICES[_i];
    if (strcmp(dev, "cpu") && rosa_device_count(dev) < 1) {
        printf("test_backend_forward: no '%s' device: that half skipped\n", dev);
        return;
    }
    golden g;
    golden_load(&g, "tiny-post-m4");
    rosa_load_opts o;
    char *adapter = tu_golden_opts(g.dir, &o);
    o.device = dev;
    if (strcmp(dev, "cpu")) {
        o.precision = "f32";
        o.gpu_memory = (size_t)2 << 30;
    }
    char *mdir = tu_path("%s/model", g.dir);
    char err[512] = "";
    rosa_model *m;
    ck_assert_msg(rosa_model_load(mdir, &o, &m, err, sizeof err) == 0, "%s", err);
    size_t vb = (size_t)g.V * sizeof(float);
    rosa_session *a, *b, *c;
    ck_assert_int_eq(rosa_session_new(m, &a), 0);
    ck_assert_int_eq(rosa_session_new(m, &b), 0);
    ck_assert_int_eq(rosa_session_new(m, &c), 0);
    ck_assert_int_eq(rosa_session_feed(a, g.prompt, 1, NULL), 0);
    float *a_last = malloc(vb);
    memcpy(a_last, rosa_session_logits(a), vb);

    /* a first with no rows, last logits only (the gather path) */
    rosa_session *s1[2] = {a, b};
    int n1[2] = {0, 3};
    ck_assert_int_eq(m->backend->forward(m, s1, 2, n1, g.prompt, NULL), 0);
    b->pos += 3;
    ck_assert_msg(memcmp(a->last_logits, a_last, vb) == 0, "%s: a session without rows had its logits changed", dev);
    near_row(&g, b->last_logits, 2, dev);

    /* a in the middle with no rows, every row's logits */
    rosa_session *s2[3] = {b, a, c};
    int n2[3] = {2, 0, 1};
    int32_t tok2[3] = {g.prompt[3], g.prompt[4], g.prompt[0]};
    float *out = malloc(3 * vb);
    ck_assert_int_eq(m->backend->forward(m, s2, 3, n2, tok2, out), 0);
    b->pos += 2;
    c->pos += 1;
    near_row(&g, out, 3, dev);
    near_row(&g, out + g.V, 4, dev);
    near_row(&g, out + 2 * (size_t)g.V, 0, dev);
    ck_assert_msg(memcmp(a->last_logits, a_last, vb) == 0, "%s: a session without rows had its logits changed", dev);
    ck_assert_mem_eq(b->last_logits, out + g.V, vb);
    ck_assert_mem_eq(c->last_logits, out + 2 * (size_t)g.V, vb);

    /* a's cache and automata were untouched: the rest of the prompt still gives the golden logits */
    float *rest = malloc((size_t)(g.T - 1) * vb);
    ck_assert_int_eq(rosa_session_feed(a, g.prompt + 1, g.T - 1, rest), 0);
    for (int t = 1; t < g.T; t++) near_row(&g, rest + (size_t)(t - 1) * g.V, t, dev);

    free(rest);
    free(out);
    free(a_last);
    rosa_session_free(a);
    rosa_session_free(b);
    rosa_session_free(c);
    rosa_model_free(m);
    free(mdir);
    free(adapter);
    free(g.dir);
    free(g.prompt);
    free(g.logits);
}
END_TEST

int main(void) {
    tu_require_shared("test_backend_forward");
    Suite *s = suite_create("backend_forward");
    TCase *tc = tcase_create("forward");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, ntok_zero_takes_no_part, 0, 2);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
