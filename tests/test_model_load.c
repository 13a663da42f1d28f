/* test_model_load.c: model-level refusals: a checkpoint directory, config.json, shard index,
 * adapter or sidecar that is wrong in one way must be refused with one message naming the file
 * and tensor/field, never a crash.  Each case starts from the golden tiny-post-m4 checkpoint,
 * changes one thing and writes it to a temporary directory. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "model/tensors.h"
#include "testutil.h"

static char *G;   /* golden case dir */

/* Write a safetensors file from tensors (skipping `skip`, reshaping `reshape` to rs0 x rs1). */
static void write_st(const char *path, const rosa__tensor_set *s, const char *skip, const char *reshape, int rs0, int rs1) {
    size_t cap = 1 << 20, len = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h, cap, "{");
    size_t off = 0;
    int first = 1;
    for (int i = 0; i < s->n; i++) {
        const rosa__tensor *t = &s->t[i];
        if (skip && !strcmp(t->name, skip)) continue;
        const char *dt = t->dtype == ROSA_DT_F32 ? "F32" : t->dtype == ROSA_DT_F16 ? "F16" : "BF16";
        char shp[128];
        if (reshape && !strcmp(t->name, reshape)) {
            snprintf(shp, sizeof shp, rs1 ? "[%d,%d]" : "[%d]", rs0, rs1);
        } else if (t->ndim == 2) snprintf(shp, sizeof shp, "[%lld,%lld]", (long long)t->shape[0], (long long)t->shape[1]);
        else snprintf(shp, sizeof shp, "[%lld]", (long long)t->shape[0]);
        size_t nb = t->nbytes;
        if (reshape && !strcmp(t->name, reshape)) nb = (size_t)rs0 * (rs1 ? rs1 : 1) * rosa__dtype_size(t->dtype);
        len += (size_t)snprintf(h + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                                first ? "" : ",", t->name, dt, shp, off, off + nb);
        off += nb;
        first = 0;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t hl = len;
    fwrite(&hl, 8, 1, f);
    fwrite(h, 1, len, f);
    for (int i = 0; i < s->n; i++) {
        const rosa__tensor *t = &s->t[i];
        if (skip && !strcmp(t->name, skip)) continue;
        size_t nb = t->nbytes;
        if (reshape && !strcmp(t->name, reshape)) {
            nb = (size_t)rs0 * (rs1 ? rs1 : 1) * rosa__dtype_size(t->dtype);
            char *z = calloc(1, nb);
            memcpy(z, t->data, nb < t->nbytes ? nb : t->nbytes);
            fwrite(z, 1, nb, f);
            free(z);
        } else fwrite(t->data, 1, nb, f);
    }
    fclose(f);
    free(h);
}

static void load_set(rosa__tensor_set *s, const char *path) {
    char err[512];
    rosa__tset_init(s);
    ck_assert_int_eq(rosa__safetensors_load(s, path, err, sizeof err), 0);
}

static char *golden_config(void) {
    char *p = tu_path("%s/model/config.json", G);
    char *c = tu_read_file(p, NULL);
    free(p);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* Replace the first occurrence of `from` in s by `to` (new string). */
static char *replace(const char *s, const char *from, const char *to) {
    const char *p = strstr(s, from);
    ck_assert_msg(p != NULL, "'%s' not in config", from);
    size_t a = (size_t)(p - s);
    char *r = malloc(strlen(s) - strlen(from) + strlen(to) + 1);
    memcpy(r, s, a);
    strcpy(r + a, to);
    strcat(r, p + strlen(from));
    return r;
}

/* Make a model dir with `config` (or the golden one) and the golden weights (optionally altered). */
static char *make_dir(const char *config, const char *skip, const char *reshape, int rs0, int rs1) {
    char *d = tu_tmpdir();
    char *p = tu_path("%s/config.json", d);
    char *gc = config ? NULL : golden_config();
    tu_write_file(p, config ? config : gc, strlen(config ? config : gc));
    free(gc);
    free(p);
    rosa__tensor_set s;
    char *src = tu_path("%s/model/model.safetensors", G);
    load_set(&s, src);
    p = tu_path("%s/model.safetensors", d);
    write_st(p, &s, skip, reshape, rs0, rs1);
    rosa__tset_free(&s);
    free(src);
    free(p);
    return d;
}

/* Expect a load failure whose message contains every needle. */
static void expect_fail(const char *dir, const rosa_load_opts *o, const char *n1, const char *n2) {
    char err[1024] = "";
    rosa_model *m = NULL;
    int rc = rosa_model_load(dir, o, &m, err, sizeof err);
    ck_assert_msg(rc < 0, "load of %s should fail (wanted '%s')", dir, n1);
    ck_assert_ptr_null(m);
    ck_assert_msg(n1 == NULL || strstr(err, n1), "message '%s' lacks '%s'", err, n1);
    ck_assert_msg(n2 == NULL || strstr(err, n2), "message '%s' lacks '%s'", err, n2);
}

static rosa_load_opts opts_with_adapter(const char *adapter) {
    rosa_load_opts o;
    rosa_load_opts_init(&o);
    o.threads = 1;
    o.adapter = adapter;
    return o;
}

START_TEST(missing_and_misshapen_base_tensors) {
    rosa_load_opts o = opts_with_adapter(NULL);
    char *d = make_dir(NULL, "model.layers.2.self_attn.q_proj.weight", NULL, 0, 0);
    expect_fail(d, &o, "model.layers.2.self_attn.q_proj.weight", "missing");
    free(d);
    d = make_dir(NULL, NULL, "model.layers.1.self_attn.k_proj.weight", 64, 64);
    expect_fail(d, &o, "model.layers.1.self_attn.k_proj.weight", "expected [32, 64]");
    free(d);
    d = make_dir(NULL, NULL, "model.norm.weight", 63, 0);
    expect_fail(d, &o, "model.norm.weight", "model.safetensors");
    free(d);
    d = make_dir(NULL, NULL, "model.embed_tokens.weight", 500, 64);
    expect_fail(d, &o, "model.embed_tokens.weight", "[512, 64]");
    free(d);
    /* no weights file at all */
    d = tu_tmpdir();
    char *p = tu_path("%s/config.json", d);
    char *c = golden_config();
    tu_write_file(p, c, strlen(c));
    expect_fail(d, &o, "no model.safetensors", NULL);
    free(c); free(p); free(d);
}
END_TEST

START_TEST(bad_config_values) {
    rosa_load_opts o = opts_with_adapter(NULL);
    struct { const char *from, *to, *needle; } cases[] = {
        {"\"hidden_size\": 64", "\"hidden_size\": -64", "hidden_size"},
        {"\"hidden_size\": 64", "\"hidden_size\": \"64\"", "hidden_size"},
        {"\"num_hidden_layers\": 4", "\"num_hidden_layers\": 1000000000", "num_hidden_layers"},
        {"\"num_hidden_layers\": 4", "\"num_hidden_layers\": 2.5", "num_hidden_layers"},
        {"\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", "num_key_value_heads"},
        {"\"head_dim\": 16", "\"head_dim\": 15", "head_dim"},
        {"\"vocab_size\": 512", "\"vocab_size\": 0", "vocab_size"},
        {"\"vocab_size\": 512", "\"vocab_size\": 1e300", "vocab_size"},
        {"\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": -1", "rms_norm_eps"},
        {"\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 4}", "rope type \"dynamic\""},
        {"\"model_type\": \"qwen3\"", "\"model_type\": \"llama\"", "llama"},
        {"\"attention_bias\": false", "\"attention_bias\": true", "attention_bias"},
        {"\"use_sliding_window\": false", "\"use_sliding_window\": false, \"layer_types\": [\"full_attention\"]", "layer_types"},
        {"\"use_sliding_window\": false", "\"use_sliding_window\": false, \"layer_types\": [\"full_attention\",\"sliding_attention\",\"x\",\"y\"]", "sliding_window"},
        {"\"use_sliding_window\": false", "\"use_sliding_window\": true, \"sliding_window\": -3", "sliding_window"},
    };
    char *gc = golden_config();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *cfg = replace(gc, cases[i].from, cases[i].to);
        char *d = make_dir(cfg, NULL, NULL, 0, 0);
        expect_fail(d, &o, "config.json", cases[i].needle);
        free(cfg);
        free(d);
    }
    /* not JSON, empty, truncated */
    const char *texts[] = {"", "{", "[1,2]", "not json at all", "{\"vocab_size\": 512}"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        char *d = make_dir(texts[i], NULL, NULL, 0, 0);
        expect_fail(d, &o, "config.json", NULL);
        free(d);
    }
    free(gc);
    /* a directory that does not exist */
    expect_fail("/nonexistent/model", &o, "config.json", NULL);
}
END_TEST

START_TEST(bad_adapters) {
    char *src = tu_path("%s/adapter/rosa_adapter.safetensors", G);
    rosa__tensor_set s;
    load_set(&s, src);
    char *d = make_dir(NULL, NULL, NULL, 0, 0);
    char *ad = tu_path("%s/adapter.safetensors", d);
    rosa_load_opts o = opts_with_adapter(ad);
    o.window = 16;
    o.global_layers = 1;
    /* a layer with some ROSA tensors but not all */
    write_st(ad, &s, "model.layers.2.rosa_e1", NULL, 0, 0);
    expect_fail(d, &o, "layer 2", "model.layers.2.rosa_e1");
    /* wrong shape */
    write_st(ad, &s, NULL, "model.layers.3.rosa_out.weight", 64, 32);
    expect_fail(d, &o, "model.layers.3.rosa_out.weight", "expected [64, 64]");
    /* C % M != 0 */
    write_st(ad, &s, NULL, NULL, 0, 0);
    o.bits_per_route = 3;
    expect_fail(d, &o, "C % M", "64");
    o.bits_per_route = -1;
    /* the adapter file itself is missing */
    char *missing = tu_path("%s/nothing.pt", d);
    o.adapter = missing;
    expect_fail(d, &o, "nothing.pt", NULL);
    o.adapter = ad;
    /* pre_attn needs rosa_alpha */
    write_st(ad, &s, "model.layers.1.rosa_alpha", NULL, 0, 0);
    o.inject_mode = ROSA_INJECT_PRE_ATTN;
    expect_fail(d, &o, "model.layers.1.rosa_alpha", NULL);
    o.inject_mode = -1;
    /* sidecar with bad values */
    char *sc = tu_path("%s/rosa_config.json", d);
    const char *bad_sidecars[] = {"{\"bits_per_route\": 0}", "{\"inject_mode\": \"sideways\"}", "{\"window\": -1}", "[]",
                                  "{\"global_layers\": 1e9}"};
    write_st(ad, &s, NULL, NULL, 0, 0);
    for (size_t i = 0; i < sizeof bad_sidecars / sizeof *bad_sidecars; i++) {
        tu_write_file(sc, bad_sidecars[i], strlen(bad_sidecars[i]));
        expect_fail(d, &o, "rosa_config.json", NULL);
    }
    /* a good sidecar is applied: window 16, one global layer, pre_attn */
    const char *good = "{\"bits_per_route\": 4, \"inject_mode\": \"post_attn\", \"window\": 8, \"global_layers\": 2}";
    tu_write_file(sc, good, strlen(good));
    rosa_load_opts o2 = opts_with_adapter(ad);
    rosa_model *m;
    char err[512];
    ck_assert_int_eq(rosa_model_load(d, &o2, &m, err, sizeof err), 0);
    const rosa_model_info *in = rosa_model_get_info(m);
    ck_assert_int_eq(in->layer_window[0], 0);
    ck_assert_int_eq(in->layer_window[1], 0);
    ck_assert_int_eq(in->layer_window[2], 8);
    ck_assert_int_eq(in->routes, 16);
    rosa_model_free(m);
    /* explicit options win over the sidecar */
    o2.window = 5;
    o2.global_layers = 0;
    ck_assert_int_eq(rosa_model_load(d, &o2, &m, err, sizeof err), 0);
    ck_assert_int_eq(rosa_model_get_info(m)->layer_window[0], 5);
    rosa_model_free(m);
    /* unknown tensors in an adapter, or a layer index out of range */
    rosa__tensor extra = s.t[0];
    extra.name = "model.layers.9.rosa_q_proj.weight";
    rosa__tset_add(&s, &extra);
    write_st(ad, &s, NULL, NULL, 0, 0);
    expect_fail(d, &o, "model.layers.9.rosa_q_proj.weight", "layer");
    free(s.t[s.n - 1].name);
    s.n--;
    extra.name = "model.layers.1.lora_A.weight";
    rosa__tset_add(&s, &extra);
    write_st(ad, &s, NULL, NULL, 0, 0);
    expect_fail(d, &o, "model.layers.1.lora_A.weight", "ROSA");
    rosa__tset_free(&s);
    free(sc); free(missing); free(ad); free(d); free(src);
}
END_TEST

START_TEST(bad_shard_index) {
    rosa_load_opts o = opts_with_adapter(NULL);
    char *d = make_dir(NULL, NULL, NULL, 0, 0);
    char *idx = tu_path("%s/model.safetensors.index.json", d);
    const char *bad[] = {"{}", "not json", "{\"weight_map\": {\"model.norm.weight\": \"../../etc/passwd\"}}",
                         "{\"weight_map\": {\"model.norm.weight\": \"missing-shard.safetensors\"}}",
                         "{\"weight_map\": {\"model.not_there.weight\": \"model.safetensors\"}}",
                         "{\"weight_map\": {\"model.norm.weight\": 7}}"};
    const char *needle[] = {"weight_map", "weight_map", "not a file name", "missing-shard.safetensors", "model.not_there.weight", "model.norm.weight"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tu_write_file(idx, bad[i], strlen(bad[i]));
        expect_fail(d, &o, needle[i], NULL);
    }
    free(idx);
    free(d);
}
END_TEST

START_TEST(bad_options) {
    char *d = tu_path("%s/model", G);
    rosa_load_opts o = opts_with_adapter(NULL);
    o.device = "tpu";
    expect_fail(d, &o, "tpu", NULL);
    o.device = NULL;
    o.global_layers = 9;
    o.window = 4;
    expect_fail(d, &o, "global layers", NULL);
    o.global_layers = -1;
    o.threads = -3;
    expect_fail(d, &o, "threads", NULL);
    free(d);
}
END_TEST

int main(void) {
    tu_require_shared("test_model_load");
    G = tu_path("%s/golden/tiny-post-m4", tu_shared_dir());
    Suite *s = suite_create("model_load");
    TCase *tc = tcase_create("refusals");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, missing_and_misshapen_base_tensors);
    tcase_add_test(tc, bad_config_values);
    tcase_add_test(tc, bad_adapters);
    tcase_add_test(tc, bad_shard_index);
    tcase_add_test(tc, bad_options);
    suite_add_tcase(s, tc);
    int rc = tu_run_suite(s);
    free(G);
    return rc;
}
