/* test_session_fork.c: rosa_session_fork on every golden case of ../shared/golden.
 *
 * At several fork points f of the prompt: the original goes on with the rest of the prompt and
 * gives bit-for-bit the logits (and ROSA destinations) of a session never forked, fed in the
 * same chunks, and the golden logits within 1e-3; a copy fed the same tokens equals the
 * original; a copy fed other tokens equals a fresh session fed prompt[0, f) and those tokens;
 * the original is freed before the copies are fed, so shared memory would show under ASan.
 * The same again in --precision bf16 (bf16 attention caches), without the golden check. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"
#include "testutil.h"

static const char *CASES[] = {"tiny-post-m4", "tiny-pre-m2", "tiny-base-full"};

typedef struct {
    rosa_model *m;
    int T, V;
    int32_t *prompt, *other; /* other: a different continuation, same length */
    float *golden;           /* [T, V] */
    size_t ndest;            /* n_rosa_layers * R * T */
} fixture;

/* precision: NULL (the case's own, float32) or "bf16" (the CPU's bf16 mode, bf16 K/V cache) */
static void fx_load(fixture *f, const char *name, const char *precision) {
    memset(f, 0, sizeof *f);
    char *dir = tu_path("%s/golden/%s", tu_shared_dir(), name);
    rosa_load_opts o;
    char *adapter = tu_golden_opts(dir, &o);
    if (precision) o.precision = precision;
    char *mdir = tu_path("%s/model", dir), err[512] = "";
    ck_assert_msg(rosa_model_load(mdir, &o, &f->m, err, sizeof err) == 0, "%s: %s", mdir, err);
    const rosa_model_info *mi = rosa_model_get_info(f->m);
    f->V = mi->vocab;
    f->prompt = tu_golden_prompt(dir, &f->T);
    ck_assert_ptr_nonnull(f->prompt);
    char *p;
    size_t len;
    f->other = malloc((size_t)f->T * sizeof(int32_t));
    for (int t = 0; t < f->T; t++) f->other[t] = (f->prompt[f->T - 1 - t] * 7 + 3) % f->V;
    p = tu_path("%s/logits.f32", dir);
    f->golden = tu_read_file(p, &len);
    ck_assert_ptr_nonnull(f->golden);
    ck_assert_uint_eq(len, (size_t)f->T * f->V * 4);
    free(p);
    f->ndest = (size_t)mi->n_rosa_layers * mi->routes * f->T;
    free(adapter);
    free(mdir);
    free(dir);
}

static void fx_free(fixture *f) {
    rosa_model_free(f->m);
    free(f->prompt);
    free(f->other);
    free(f->golden);
}

typedef struct {
    float *logits;  /* [T, V] */
    int32_t *dest;  /* [nrl, R, T] */
} outs;

static void outs_new(const fixture *f, outs *o) {
    o->logits = calloc((size_t)f->T * f->V, sizeof(float));
    o->dest = malloc((f->ndest ? f->ndest : 1) * sizeof(int32_t));
}

static void outs_free(outs *o) {
    free(o->logits);
    free(o->dest);
}

/* Feed a session rows [a, b) of tokens seq, in chunks of c, into o (rows as positions). */
static void feed(const fixture *f, rosa_session *s, const int32_t *seq, int a, int b, int c, outs *o) {
    for (int i = a; i < b; i += c) {
        int n = b - i < c ? b - i : c;
        ck_assert_int_eq(rosa_session_feed(s, seq + i, n, o->logits + (size_t)i * f->V), 0);
    }
}

/* dest of positions [a, T) equal */
static void same_dest(const fixture *f, const outs *x, const outs *y, int a, const char *what) {
    size_t per = (size_t)f->T;
    for (size_t lr = 0; f->ndest && lr < f->ndest / per; lr++)
        ck_assert_msg(!memcmp(x->dest + lr * per + a, y->dest + lr * per + a, (per - (size_t)a) * 4),
                      "%s: dest differ (layer-route %zu)", what, lr);
}

START_TEST(fork_then_diverge) {
    fixture f;
    /* _i >= 3: the same in bf16 mode (bf16 K/V slots copied raw), golden check aside */
    int bf = _i >= 3;
    fx_load(&f, CASES[_i % 3], bf ? "bf16" : NULL);
    int T = f.T, V = f.V;
    int points[] = {0, 1, 7, T / 3, T / 2 + 5, T - 1, T};
    int chunks[] = {5, 1, 13, 64, 3, 2, 9};
    /* the mixed sequence: prompt[0, fp) then other[fp, T) */
    int32_t *mixed = malloc((size_t)T * sizeof(int32_t));
    for (size_t pi = 0; pi < sizeof points / sizeof *points; pi++) {
        int fp = points[pi], c = chunks[pi];
        char what[96];
        snprintf(what, sizeof what, "%s%s fork at %d", CASES[_i % 3], bf ? " bf16" : "", fp);
        outs ref, org, same, div, fresh;
        outs_new(&f, &ref); outs_new(&f, &org); outs_new(&f, &same); outs_new(&f, &div); outs_new(&f, &fresh);
        /* never forked */
        rosa_session *r;
        ck_assert_int_eq(rosa_session_new(f.m, &r), 0);
        if (f.ndest) rosa_session_trace_dest(r, ref.dest, T);
        feed(&f, r, f.prompt, 0, fp, c, &ref);
        feed(&f, r, f.prompt, fp, T, c, &ref);
        rosa_session_free(r);
        /* forked at fp */
        rosa_session *s, *c1, *c2;
        ck_assert_int_eq(rosa_session_new(f.m, &s), 0);
        if (f.ndest) rosa_session_trace_dest(s, org.dest, T);
        feed(&f, s, f.prompt, 0, fp, c, &org);
        ck_assert_int_eq(rosa_session_fork(s, &c1), 0);
        ck_assert_int_eq(rosa_session_fork(s, &c2), 0);
        ck_assert_int_eq(rosa_session_length(c1), fp);
        if (fp) {
            ck_assert_ptr_nonnull(rosa_session_logits(c1));
            ck_assert_mem_eq(rosa_session_logits(c1), rosa_session_logits(s), (size_t)V * 4);
        } else
            ck_assert_ptr_null(rosa_session_logits(c1));
        rosa_session_mem ms, mc;
        rosa_session_memory(s, &ms);
        rosa_session_memory(c1, &mc);
        ck_assert_int_eq(ms.rosa_runs, mc.rosa_runs);
        feed(&f, s, f.prompt, fp, T, c, &org);
        ck_assert_mem_eq(org.logits, ref.logits, (size_t)T * V * 4);
        same_dest(&f, &org, &ref, 0, what);
        for (size_t i = 0; !bf && i < (size_t)T * V; i++)
            ck_assert_msg(fabsf(org.logits[i] - f.golden[i]) <= 1e-3f, "%s: golden logit %zu", what, i);
        rosa_session_free(s); /* the copies must not need it */
        if (f.ndest) rosa_session_trace_dest(c1, same.dest, T);
        feed(&f, c1, f.prompt, fp, T, c, &same);
        ck_assert_msg(!memcmp(same.logits + (size_t)fp * V, ref.logits + (size_t)fp * V, (size_t)(T - fp) * V * 4),
                      "%s: the copy fed the same tokens differs", what);
        same_dest(&f, &same, &ref, fp, what);
        /* diverge */
        memcpy(mixed, f.prompt, (size_t)fp * 4);
        memcpy(mixed + fp, f.other + fp, (size_t)(T - fp) * 4);
        ck_assert_int_eq(rosa_session_new(f.m, &r), 0);
        if (f.ndest) rosa_session_trace_dest(r, fresh.dest, T);
        feed(&f, r, mixed, 0, fp, c, &fresh);
        feed(&f, r, mixed, fp, T, c, &fresh);
        rosa_session_free(r);
        if (f.ndest) rosa_session_trace_dest(c2, div.dest, T);
        feed(&f, c2, mixed, fp, T, c, &div);
        ck_assert_msg(!memcmp(div.logits + (size_t)fp * V, fresh.logits + (size_t)fp * V, (size_t)(T - fp) * V * 4),
                      "%s: the diverged copy differs from a fresh session", what);
        same_dest(&f, &div, &fresh, fp, what);
        if (fp < T - 1) /* it did diverge */
            ck_assert(memcmp(div.logits + (size_t)(T - 1) * V, ref.logits + (size_t)(T - 1) * V, (size_t)V * 4));
        rosa_session_free(c1);
        rosa_session_free(c2);
        outs_free(&ref); outs_free(&org); outs_free(&same); outs_free(&div); outs_free(&fresh);
    }
    free(mixed);
    fx_free(&f);
}
END_TEST

/* Bad arguments. */
START_TEST(fork_arguments) {
    fixture f;
    fx_load(&f, CASES[0], NULL);
    rosa_session *s, *c = (rosa_session *)&f;
    ck_assert_int_eq(rosa_session_fork(NULL, &c), ROSA_ERR_INVALID);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(rosa_session_new(f.m, &s), 0);
    ck_assert_int_eq(rosa_session_fork(s, NULL), ROSA_ERR_INVALID);
    rosa_session_free(s);
    fx_free(&f);
}
END_TEST

int main(void) {
    tu_require_shared("test_session_fork");
    Suite *s = suite_create("session_fork");
    TCase *tc = tcase_create("fork");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, fork_then_diverge, 0, 6);
    tcase_add_test(tc, fork_arguments);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
