/* test_golden.c: every golden case of ../shared/golden through the engine API.
 *
 * For each case: logits of every prompt position within 1e-3 and ROSA destinations identical,
 * whether the prompt is fed whole, token by token, in random chunk sizes, or interleaved with
 * other sessions through rosa_step_batch; greedy continuation identical; and the .pt,
 * safetensors and merged adapters give identical logits. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "testutil.h"

typedef struct golden {
    char *dir;
    int T, V;
    int32_t *prompt;
    int32_t *greedy;
    int ngreedy;
    float *logits;     /* [T, V] */
    int32_t *dest;     /* [nrl, R, T] or NULL */
    size_t ndest;
    rosa_load_opts opts;
} golden;

static int32_t *json_ids(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    int32_t *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next) v[i++] = (int32_t)e->valuedouble;
    return v;
}

static void golden_load(golden *g, const char *name) {
    memset(g, 0, sizeof *g);
    g->dir = tu_path("%s/golden/%s", tu_shared_dir(), name);
    char *p = tu_path("%s/case.json", g->dir);
    char *text = tu_read_file(p, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", p);
    cJSON *c = cJSON_Parse(text);
    ck_assert_ptr_nonnull(c);
    g->prompt = json_ids(cJSON_GetObjectItem(c, "prompt"), &g->T);
    g->greedy = json_ids(cJSON_GetObjectItem(c, "greedy"), &g->ngreedy);
    g->V = (int)cJSON_GetArrayItem(cJSON_GetObjectItem(c, "logits_shape"), 1)->valuedouble;
    rosa_load_opts_init(&g->opts);
    g->opts.threads = 2;
    /* ROSA_TEST_DEVICE / ROSA_TEST_PRECISION: the same cases through another backend
     * (ctest test_cuda_golden_f32); a small pool keeps many model loads cheap */
    const char *dev = getenv("ROSA_TEST_DEVICE"), *prec = getenv("ROSA_TEST_PRECISION");
    if (dev && *dev) {
        g->opts.device = dev;
        g->opts.gpu_memory = (size_t)2 << 30;
    }
    if (prec && *prec) g->opts.precision = prec;
    const cJSON *run = cJSON_GetObjectItem(c, "run");
    const cJSON *w = cJSON_GetObjectItem(run, "window"), *gl = cJSON_GetObjectItem(run, "global_layers");
    const cJSON *bits = cJSON_GetObjectItem(run, "bits_per_route"), *mode = cJSON_GetObjectItem(run, "inject_mode");
    const cJSON *wfc = cJSON_GetObjectItem(run, "window_from_config");
    if (cJSON_IsNumber(w) && !cJSON_IsTrue(wfc)) {
        g->opts.window = (int)w->valuedouble;
        if (cJSON_IsNumber(gl)) g->opts.global_layers = (int)gl->valuedouble;
    }
    if (cJSON_IsNumber(bits)) g->opts.bits_per_route = (int)bits->valuedouble;
    if (cJSON_IsString(mode))
        g->opts.inject_mode = strcmp(mode->valuestring, "pre_attn") == 0 ? ROSA_INJECT_PRE_ATTN : ROSA_INJECT_POST_ATTN;
    cJSON_Delete(c);
    free(text);
    free(p);
    size_t len;
    p = tu_path("%s/logits.f32", g->dir);
    g->logits = tu_read_file(p, &len);
    ck_assert_ptr_nonnull(g->logits);
    ck_assert_uint_eq(len, (size_t)g->T * g->V * 4);
    free(p);
    p = tu_path("%s/dest.i32", g->dir);
    g->dest = tu_read_file(p, &len);
    g->ndest = g->dest ? len / 4 : 0;
    free(p);
}

static void golden_free(golden *g) {
    free(g->dir);
    free(g->prompt);
    free(g->greedy);
    free(g->logits);
    free(g->dest);
}

static rosa_model *load(golden *g, const char *subdir, const char *adapter_file) {
    char *dir = tu_path("%s/%s", g->dir, subdir);
    char *ad = adapter_file ? tu_path("%s/adapter/%s", g->dir, adapter_file) : NULL;
    rosa_load_opts o = g->opts;
    o.adapter = ad;
    char err[1024] = "";
    rosa_model *m = NULL;
    int rc = rosa_model_load(dir, &o, &m, err, sizeof err);
    ck_assert_msg(rc == 0, "load %s (%s): %s", dir, ad ? ad : "no adapter", err);
    free(dir);
    free(ad);
    return m;
}

static int has_adapter(const golden *g) { return g->ndest > 0; }

/* Compare logits [T, V] and dest against the golden files. */
static void check_outputs(const golden *g, const float *logits, const int32_t *dest, const char *how) {
    double worst = 0;
    int worst_t = -1;
    for (int t = 0; t < g->T; t++)
        for (int v = 0; v < g->V; v++) {
            double d = fabs((double)logits[(size_t)t * g->V + v] - g->logits[(size_t)t * g->V + v]);
            if (!(d <= worst)) { worst = d; worst_t = t; }
        }
    ck_assert_msg(worst <= 1e-3, "%s: %s: logits differ by %g at position %d", g->dir, how, worst, worst_t);
    if (dest && g->ndest) {
        for (size_t i = 0; i < g->ndest; i++)
            ck_assert_msg(dest[i] == g->dest[i], "%s: %s: dest[%zu] = %d, golden %d", g->dir, how, i, dest[i], g->dest[i]);
    }
}

/* Feed the prompt in the given chunk sizes (sizes cycle), collecting logits and dest. */
static void run_chunked(golden *g, rosa_model *m, const int *sizes, int nsizes, const char *how) {
    rosa_session *s;
    ck_assert_int_eq(rosa_session_new(m, &s), 0);
    float *logits = malloc((size_t)g->T * g->V * sizeof(float));
    int32_t *dest = malloc((g->ndest ? g->ndest : 1) * sizeof(int32_t));
    if (g->ndest) rosa_session_trace_dest(s, dest, g->T);
    int done = 0, k = 0;
    while (done < g->T) {
        int c = sizes[k++ % nsizes];
        if (c > g->T - done) c = g->T - done;
        ck_assert_int_eq(rosa_session_feed(s, g->prompt + done, c, logits + (size_t)done * g->V), 0);
        ck_assert_int_eq(rosa_session_length(s), done + c);
        done += c;
    }
    check_outputs(g, logits, dest, how);
    /* the kept last logits equal the last row */
    ck_assert_mem_eq(rosa_session_logits(s), logits + (size_t)(g->T - 1) * g->V, (size_t)g->V * sizeof(float));
    /* greedy continuation */
    for (int i = 0; i < g->ngreedy; i++) {
        const float *l = rosa_session_logits(s);
        int32_t best = 0;
        for (int v = 1; v < g->V; v++) if (l[v] > l[best]) best = v;
        ck_assert_msg(best == g->greedy[i], "%s: %s: greedy token %d is %d, golden %d", g->dir, how, i, best, g->greedy[i]);
        ck_assert_int_eq(rosa_session_feed(s, &best, 1, NULL), 0);
    }
    rosa_session_mem mem;
    rosa_session_memory(s, &mem);
    ck_assert_uint_gt(mem.kv_bytes, 0);
    if (g->ndest) ck_assert_int_gt(mem.rosa_runs, 0);
    rosa_session_free(s);
    free(logits);
    free(dest);
}

static const char *CASES[] = {"tiny-post-m4", "tiny-pre-m2", "tiny-base-full"};
#define NCASES 3

START_TEST(golden_whole_tokenwise_random) {
    golden g;
    golden_load(&g, CASES[_i]);
    rosa_model *m = load(&g, "model", has_adapter(&g) ? "rosa_adapter.safetensors" : NULL);
    int whole[] = {g.T};
    run_chunked(&g, m, whole, 1, "whole prompt");
    int one[] = {1};
    run_chunked(&g, m, one, 1, "token by token");
    srand(1234 + _i);
    for (int rep = 0; rep < 3; rep++) {
        int sizes[64];
        for (int i = 0; i < 64; i++) sizes[i] = 1 + rand() % 23;
        run_chunked(&g, m, sizes, 64, "random chunks");
    }
    rosa_model_free(m);
    golden_free(&g);
}
END_TEST

/* Three sessions advanced together with rosa_step_batch, each at a different offset. */
START_TEST(golden_step_batch) {
    golden g;
    golden_load(&g, CASES[_i]);
    rosa_model *m = load(&g, "model", has_adapter(&g) ? "rosa_adapter.safetensors" : NULL);
    enum { NS = 3 };
    rosa_session *s[NS];
    float *logits[NS];
    int32_t *dest[NS];
    int lead[NS] = {0, 5, 17};   /* session i is first fed lead[i] tokens alone */
    for (int i = 0; i < NS; i++) {
        ck_assert_int_eq(rosa_session_new(m, &s[i]), 0);
        logits[i] = malloc((size_t)g.T * g.V * sizeof(float));
        dest[i] = malloc((g.ndest ? g.ndest : 1) * sizeof(int32_t));
        if (g.ndest) rosa_session_trace_dest(s[i], dest[i], g.T);
        if (lead[i]) ck_assert_int_eq(rosa_session_feed(s[i], g.prompt, lead[i], logits[i]), 0);
    }
    int pos[NS] = {lead[0], lead[1], lead[2]};
    for (;;) {
        rosa_session *b[NS];
        int32_t tok[NS];
        int who[NS], n = 0;
        for (int i = 0; i < NS; i++)
            if (pos[i] < g.T) { b[n] = s[i]; tok[n] = g.prompt[pos[i]]; who[n++] = i; }
        if (!n) break;
        float *out = malloc((size_t)n * g.V * sizeof(float));
        ck_assert_int_eq(rosa_step_batch(b, tok, n, out), 0);
        for (int k = 0; k < n; k++) {
            int i = who[k];
            memcpy(logits[i] + (size_t)pos[i] * g.V, out + (size_t)k * g.V, (size_t)g.V * sizeof(float));
            ck_assert_mem_eq(rosa_session_logits(s[i]), out + (size_t)k * g.V, (size_t)g.V * sizeof(float));
            pos[i]++;
        }
        free(out);
    }
    /* batch invariance: a session stepped alone, after the same lead chunk, gives bit for bit
     * the logits it got inside batches of 1-3 (the server batches whatever runs together) */
    float *alone = malloc((size_t)g.V * sizeof(float));
    for (int i = 0; i < NS; i++) {
        rosa_session *r;
        ck_assert_int_eq(rosa_session_new(m, &r), 0);
        if (lead[i]) ck_assert_int_eq(rosa_session_feed(r, g.prompt, lead[i], NULL), 0);
        for (int p = lead[i]; p < g.T; p++) {
            ck_assert_int_eq(rosa_session_feed(r, g.prompt + p, 1, alone), 0);
            ck_assert_msg(memcmp(alone, logits[i] + (size_t)p * g.V, (size_t)g.V * sizeof(float)) == 0,
                          "%s: session %d, position %d: batched logits differ from stepping alone",
                          CASES[_i], i, p);
        }
        rosa_session_free(r);
    }
    free(alone);
    for (int i = 0; i < NS; i++) {
        check_outputs(&g, logits[i], dest[i], "rosa_step_batch");
        rosa_session_free(s[i]);
        free(logits[i]);
        free(dest[i]);
    }
    /* a batch naming one session twice, or a bad token, is refused without harm */
    rosa_session *a;
    ck_assert_int_eq(rosa_session_new(m, &a), 0);
    rosa_session *twice[2] = {a, a};
    int32_t tk[2] = {1, 2};
    ck_assert_int_eq(rosa_step_batch(twice, tk, 2, NULL), ROSA_ERR_INVALID);
    int32_t bad = g.V;
    ck_assert_int_eq(rosa_session_feed(a, &bad, 1, NULL), ROSA_ERR_INVALID);
    bad = -1;
    ck_assert_int_eq(rosa_step_batch(&a, &bad, 1, NULL), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa_session_length(a), 0);
    ck_assert_ptr_null(rosa_session_logits(a));
    rosa_session_free(a);
    rosa_model_free(m);
    golden_free(&g);
}
END_TEST

/* .pt, safetensors and merged checkpoints agree exactly. */
START_TEST(golden_adapter_formats) {
    golden g;
    golden_load(&g, "tiny-post-m4");
    const char *variants[][2] = {{"model", "rosa_adapter.safetensors"}, {"model", "rosa_adapters.pt"}, {"model-merged", NULL}};
    float *ref = NULL;
    for (int v = 0; v < 3; v++) {
        rosa_model *m = load(&g, variants[v][0], variants[v][1]);
        ck_assert_int_eq(rosa_model_get_info(m)->n_rosa_layers, 3);
        rosa_session *s;
        ck_assert_int_eq(rosa_session_new(m, &s), 0);
        float *l = malloc((size_t)g.T * g.V * sizeof(float));
        ck_assert_int_eq(rosa_session_feed(s, g.prompt, g.T, l), 0);
        check_outputs(&g, l, NULL, variants[v][1] ? variants[v][1] : "merged");
        if (!ref) ref = l;
        else {
            ck_assert_mem_eq(l, ref, (size_t)g.T * g.V * sizeof(float));
            free(l);
        }
        rosa_session_free(s);
        rosa_model_free(m);
    }
    /* pre_attn case: .pt equals safetensors too */
    golden g2;
    golden_load(&g2, "tiny-pre-m2");
    float *r2 = NULL;
    for (int v = 0; v < 2; v++) {
        rosa_model *m = load(&g2, "model", v ? "rosa_adapters.pt" : "rosa_adapter.safetensors");
        rosa_session *s;
        ck_assert_int_eq(rosa_session_new(m, &s), 0);
        float *l = malloc((size_t)g2.T * g2.V * sizeof(float));
        ck_assert_int_eq(rosa_session_feed(s, g2.prompt, g2.T, l), 0);
        if (!r2) r2 = l;
        else { ck_assert_mem_eq(l, r2, (size_t)g2.T * g2.V * sizeof(float)); free(l); }
        rosa_session_free(s);
        rosa_model_free(m);
    }
    free(r2);
    free(ref);
    golden_free(&g);
    golden_free(&g2);
}
END_TEST

/* Without the adapter, a ROSA case must differ from its golden logits (the channel matters),
 * and --no-rosa on the merged checkpoint equals the base model without adapter. */
START_TEST(golden_rosa_matters) {
    golden g;
    golden_load(&g, "tiny-post-m4");
    float *l[2];
    for (int v = 0; v < 2; v++) {
        rosa_load_opts o = g.opts;
        char *dir = tu_path("%s/%s", g.dir, v ? "model-merged" : "model");
        o.no_rosa = v;
        rosa_model *m;
        char err[512];
        ck_assert_int_eq(rosa_model_load(dir, &o, &m, err, sizeof err), 0);
        ck_assert_int_eq(rosa_model_get_info(m)->n_rosa_layers, 0);
        rosa_session *s;
        ck_assert_int_eq(rosa_session_new(m, &s), 0);
        l[v] = malloc((size_t)g.T * g.V * sizeof(float));
        ck_assert_int_eq(rosa_session_feed(s, g.prompt, g.T, l[v]), 0);
        rosa_session_free(s);
        rosa_model_free(m);
        free(dir);
    }
    ck_assert_mem_eq(l[0], l[1], (size_t)g.T * g.V * sizeof(float));
    double maxd = 0;
    for (size_t i = 0; i < (size_t)g.T * g.V; i++) maxd = fmax(maxd, fabs(l[0][i] - g.logits[i]));
    ck_assert_msg(maxd > 1e-2, "ROSA off should change the logits (max diff %g)", maxd);
    free(l[0]);
    free(l[1]);
    golden_free(&g);
}
END_TEST

int main(void) {
    tu_require_shared("test_golden");
    const char *dev = getenv("ROSA_TEST_DEVICE");
    if (dev && *dev && rosa_device_count(dev) < 1) {
        printf("test_golden: no '%s' device on this machine: skipped\n", dev);
        return 77;
    }
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, golden_whole_tokenwise_random, 0, NCASES);
    tcase_add_loop_test(tc, golden_step_batch, 0, NCASES);
    tcase_add_test(tc, golden_adapter_formats);
    tcase_add_test(tc, golden_rosa_matters);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
