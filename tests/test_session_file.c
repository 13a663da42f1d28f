/* test_session_file.c: rosa_session_save / rosa_session_restore on the golden cases.
 *
 * - save -> restore -> continue gives bit-for-bit the logits and ROSA destinations of the
 *   session never saved (fed in the same chunks), at several points of every case; a restored
 *   session saved again writes the same bytes (the format is canonical: no stray memory in it).
 *   The same in --precision bf16 (bf16 caches widened to the file's float32 and rounded back),
 *   whose files a float32 model refuses.
 * - A malformed-file corpus made from a real file: truncated at many offsets, single bytes
 *   flipped anywhere, wrong magic, version 0 and a future version, another model's file and this
 *   file under other run options, huge counts (positions, routes, states, runs), trailing bytes,
 *   a missing file, a directory, an unwritable target: each refused with its documented code,
 *   *out NULL, and nothing leaked (ASan).
 * - Forged files (bytes of a route changed and the checksum recomputed): a broken structure
 *   (a suffix link to itself, an id past the states, random words) is refused with
 *   ROSA_ERR_FORMAT by the route check; a well-formed forgery restores and feeds safely. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/session_io.h"
#include "rosa.h"
#include "testutil.h"

static const char *CASES[] = {"tiny-post-m4", "tiny-pre-m2", "tiny-base-full"};

static rosa_model *load_case_prec(const char *name, int no_rosa, const char *precision, int32_t **prompt, int *T) {
    char *dir = tu_path("%s/golden/%s", tu_shared_dir(), name);
    rosa_load_opts o;
    char *adapter = tu_golden_opts(dir, &o);
    o.no_rosa = no_rosa;
    if (precision) o.precision = precision;
    char *mdir = tu_path("%s/model", dir), err[512] = "";
    rosa_model *m = NULL;
    ck_assert_msg(rosa_model_load(mdir, &o, &m, err, sizeof err) == 0, "%s: %s", mdir, err);
    if (prompt) {
        *prompt = tu_golden_prompt(dir, T);
        ck_assert_ptr_nonnull(*prompt);
    }
    free(adapter);
    free(mdir);
    free(dir);
    return m;
}

static rosa_model *load_case(const char *name, int no_rosa, int32_t **prompt, int *T) {
    return load_case_prec(name, no_rosa, NULL, prompt, T);
}

static void feed(rosa_session *s, const int32_t *seq, int a, int b, int c, float *logits, int V) {
    for (int i = a; i < b; i += c) {
        int n = b - i < c ? b - i : c;
        ck_assert_int_eq(rosa_session_feed(s, seq + i, n, logits + (size_t)i * V), 0);
    }
}

START_TEST(save_restore_continue) {
    int32_t *prompt;
    int T;
    /* _i >= 3: bf16 mode, whose bf16 caches the file holds widened to float32 (format 1) */
    const char *name = CASES[_i % 3], *prec = _i >= 3 ? "bf16" : NULL;
    rosa_model *m = load_case_prec(name, 0, prec, &prompt, &T);
    const rosa_model_info *mi = rosa_model_get_info(m);
    int V = mi->vocab;
    size_t ndest = (size_t)mi->n_rosa_layers * mi->routes * T;
    char *tmp = tu_tmpdir();
    char *path = tu_path("%s/s.rosa", tmp), *path2 = tu_path("%s/s2.rosa", tmp);
    int points[] = {0, 1, 9, T / 2, T - 1, T};
    float *ref = malloc((size_t)T * V * 4), *got = malloc((size_t)T * V * 4);
    int32_t *dref = malloc((ndest ? ndest : 1) * 4), *dgot = malloc((ndest ? ndest : 1) * 4);
    for (size_t pi = 0; pi < sizeof points / sizeof *points; pi++) {
        int sp = points[pi], c = 1 + (int)pi * 3;
        rosa_session *r, *s, *t;
        ck_assert_int_eq(rosa_session_new(m, &r), 0);
        if (ndest) rosa_session_trace_dest(r, dref, T);
        feed(r, prompt, 0, sp, c, ref, V);
        feed(r, prompt, sp, T, c, ref, V);
        rosa_session_free(r);

        ck_assert_int_eq(rosa_session_new(m, &s), 0);
        if (ndest) rosa_session_trace_dest(s, dgot, T);
        feed(s, prompt, 0, sp, c, got, V);
        ck_assert_int_eq(rosa_session_save(s, path), 0);
        char *tmpf = tu_path("%s.tmp", path);
        ck_assert_int_eq(access(tmpf, F_OK), -1); /* renamed into place */
        free(tmpf);
        ck_assert_int_eq(rosa_session_restore(m, path, &t), 0);
        ck_assert_int_eq(rosa_session_length(t), sp);
        if (sp) ck_assert_mem_eq(rosa_session_logits(t), rosa_session_logits(s), (size_t)V * 4);
        else ck_assert_ptr_null(rosa_session_logits(t));
        rosa_session_mem ma, mb;
        rosa_session_memory(s, &ma);
        rosa_session_memory(t, &mb);
        ck_assert_int_eq(ma.rosa_runs, mb.rosa_runs);
        rosa_session_free(s);
        /* canonical: the restored session writes the same bytes */
        ck_assert_int_eq(rosa_session_save(t, path2), 0);
        size_t l1, l2;
        char *b1 = tu_read_file(path, &l1), *b2 = tu_read_file(path2, &l2);
        ck_assert_uint_eq(l1, l2);
        ck_assert_msg(!memcmp(b1, b2, l1), "%s at %d: a restored session saves other bytes", name, sp);
        free(b1);
        free(b2);
        if (ndest) rosa_session_trace_dest(t, dgot, T);
        feed(t, prompt, sp, T, c, got, V);
        ck_assert_msg(!memcmp(got + (size_t)sp * V, ref + (size_t)sp * V, (size_t)(T - sp) * V * 4),
                      "%s: restored at %d: logits differ from the uninterrupted session", name, sp);
        size_t per = (size_t)T;
        for (size_t lr = 0; ndest && lr < ndest / per; lr++)
            ck_assert_msg(!memcmp(dgot + lr * per + sp, dref + lr * per + sp, (per - (size_t)sp) * 4),
                          "%s: restored at %d: dest differ", name, sp);
        rosa_session_free(t);
    }
    if (prec) { /* the precision is in the fingerprint: a bf16 session does not restore in f32 */
        rosa_model *m32 = load_case(name, 0, NULL, NULL);
        rosa_session *t = (rosa_session *)1;
        ck_assert_int_eq(rosa_session_restore(m32, path, &t), ROSA_ERR_MISMATCH);
        ck_assert_ptr_null(t);
        rosa_model_free(m32);
    }
    unlink(path);
    unlink(path2);
    rmdir(tmp);
    free(ref); free(got); free(dref); free(dgot);
    free(path); free(path2); free(tmp); free(prompt);
    rosa_model_free(m);
}
END_TEST

/* ---------------------------------------------------------------- malformed files */

typedef struct {
    rosa_model *m;
    char *dir, *good, *bad;
    uint8_t *bytes;
    size_t len;
    size_t route0; /* offset of the first route's header */
} corpus;

static void corpus_new(corpus *c) {
    int32_t *prompt;
    int T;
    memset(c, 0, sizeof *c);
    c->m = load_case(CASES[0], 0, &prompt, &T);
    c->dir = tu_tmpdir();
    c->good = tu_path("%s/good.rosa", c->dir);
    c->bad = tu_path("%s/bad.rosa", c->dir);
    rosa_session *s;
    ck_assert_int_eq(rosa_session_new(c->m, &s), 0);
    ck_assert_int_eq(rosa_session_feed(s, prompt, T / 2, NULL), 0);
    ck_assert_int_eq(rosa_session_save(s, c->good), 0);
    const rosa_model_info *mi = rosa_model_get_info(c->m);
    c->route0 = 64 + (size_t)mi->vocab * 4;
    for (int l = 0; l < mi->layers; l++) {
        int W = mi->layer_window[l];
        size_t n = (size_t)(W && T / 2 > W ? W : T / 2);
        c->route0 += 8 + 2 * n * (size_t)mi->kv_heads * mi->head_dim * 4;
    }
    rosa_session_free(s);
    free(prompt);
    c->bytes = tu_read_file(c->good, &c->len);
    ck_assert_ptr_nonnull(c->bytes);
    ck_assert_uint_gt(c->len, c->route0 + 100);
}

static void corpus_free(corpus *c) {
    unlink(c->good);
    unlink(c->bad);
    rmdir(c->dir);
    free(c->dir); free(c->good); free(c->bad); free(c->bytes);
    rosa_model_free(c->m);
}

/* Restore bytes b[0, n) from the bad file; returns the code (and checks *out is NULL on error). */
static int try_bytes(corpus *c, const uint8_t *b, size_t n) {
    ck_assert_int_eq(tu_write_file(c->bad, b, n), 0);
    rosa_session *s = (rosa_session *)c;
    int rc = rosa_session_restore(c->m, c->bad, &s);
    if (rc) ck_assert_ptr_null(s);
    else rosa_session_free(s);
    return rc;
}

/* The good file with 4 bytes at off replaced by v. */
static int try_patch32(corpus *c, size_t off, uint32_t v) {
    uint8_t *b = malloc(c->len);
    memcpy(b, c->bytes, c->len);
    memcpy(b + off, &v, 4);
    int rc = try_bytes(c, b, c->len);
    free(b);
    return rc;
}

START_TEST(malformed_truncated) {
    corpus c;
    corpus_new(&c);
    ck_assert_int_eq(try_bytes(&c, c.bytes, c.len), 0); /* the corpus base is good */
    size_t step = c.len / 300 + 1;
    for (size_t n = 0; n < c.len; n += n < 200 ? 1 : step)
        ck_assert_msg(try_bytes(&c, c.bytes, n) == ROSA_ERR_FORMAT, "truncated at %zu of %zu accepted", n, c.len);
    for (size_t n = c.len - 16; n < c.len; n++) /* the trailer's bytes */
        ck_assert_int_eq(try_bytes(&c, c.bytes, n), ROSA_ERR_FORMAT);
    /* trailing bytes */
    uint8_t *b = malloc(c.len + 5);
    memcpy(b, c.bytes, c.len);
    memset(b + c.len, 0, 5);
    ck_assert_int_eq(try_bytes(&c, b, c.len + 5), ROSA_ERR_FORMAT);
    free(b);
    corpus_free(&c);
}
END_TEST

START_TEST(malformed_flipped) {
    corpus c;
    corpus_new(&c);
    uint8_t *b = malloc(c.len);
    size_t step = c.len / 400 + 1;
    for (size_t off = 0; off < c.len; off += off < 160 ? 1 : step) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(b, c.bytes, c.len);
            b[off] ^= (uint8_t)(1u << bit);
            int rc = try_bytes(&c, b, c.len);
            if (off >= 16 && off < 24) /* the model fingerprint */
                ck_assert_msg(rc == ROSA_ERR_MISMATCH, "flip at %zu: %d", off, rc);
            else if (off >= 8 && off < 12) /* the version: 0 or newer */
                ck_assert_msg(rc == ROSA_ERR_FORMAT || rc == ROSA_ERR_UNSUPPORTED, "flip at %zu: %d", off, rc);
            else
                ck_assert_msg(rc == ROSA_ERR_FORMAT, "flip of bit %d at %zu of %zu: %d (%s)", bit, off, c.len, rc,
                              rosa_strerror(rc));
        }
    }
    /* the last byte, and the last of the payload */
    memcpy(b, c.bytes, c.len);
    b[c.len - 1] ^= 0x10;
    ck_assert_int_eq(try_bytes(&c, b, c.len), ROSA_ERR_FORMAT);
    memcpy(b, c.bytes, c.len);
    b[c.len - 9] ^= 0x10;
    ck_assert_int_eq(try_bytes(&c, b, c.len), ROSA_ERR_FORMAT);
    free(b);
    corpus_free(&c);
}
END_TEST

START_TEST(malformed_header_and_counts) {
    corpus c;
    corpus_new(&c);
    uint8_t *b = malloc(c.len);
    memcpy(b, c.bytes, c.len);
    memcpy(b, "ROSASESZ", 8);
    ck_assert_int_eq(try_bytes(&c, b, c.len), ROSA_ERR_FORMAT);  /* wrong magic */
    ck_assert_int_eq(try_patch32(&c, 8, 2), ROSA_ERR_UNSUPPORTED); /* a future version */
    ck_assert_int_eq(try_patch32(&c, 8, 0), ROSA_ERR_FORMAT);
    ck_assert_int_eq(try_patch32(&c, 12, 65), ROSA_ERR_FORMAT);    /* header size */
    ck_assert_int_eq(try_patch32(&c, 24, 0x7FFFFFFF), ROSA_ERR_FORMAT); /* pos: caches past the file */
    ck_assert_int_eq(try_patch32(&c, 28, 1), ROSA_ERR_FORMAT);     /* pos past 2^32 */
    ck_assert_int_eq(try_patch32(&c, 24, 3), ROSA_ERR_FORMAT);     /* pos disagrees with the caches */
    ck_assert_int_eq(try_patch32(&c, 32, 7), ROSA_ERR_FORMAT);     /* has_logits */
    ck_assert_int_eq(try_patch32(&c, 36, 1u << 30), ROSA_ERR_FORMAT); /* vocabulary */
    ck_assert_int_eq(try_patch32(&c, 48, 0xFFFFFFFF), ROSA_ERR_FORMAT); /* route count */
    ck_assert_int_eq(try_patch32(&c, 52, 1), ROSA_ERR_FORMAT);
    ck_assert_int_eq(try_patch32(&c, 56, 23), ROSA_ERR_FORMAT);    /* route header words */
    ck_assert_int_eq(try_patch32(&c, 64 + 4 * 512, 0xFFFFFFFF), ROSA_ERR_FORMAT); /* slots of layer 0 */
    /* the first route's header: huge states, pool, map, runs, cells */
    size_t r0 = c.route0;
    ck_assert_int_eq(try_patch32(&c, r0 + 0, 0x7FFFFFF), ROSA_ERR_FORMAT);
    ck_assert_int_eq(try_patch32(&c, r0 + 0, 0x8000000), ROSA_ERR_FORMAT);
    ck_assert_int_eq(try_patch32(&c, r0 + 4, 0x0FFFFFFF), ROSA_ERR_FORMAT);
    ck_assert_int_eq(try_patch32(&c, r0 + 8, 1u << 30), ROSA_ERR_FORMAT);
    ck_assert_int_eq(try_patch32(&c, r0 + 24, 0xFFFFFF), ROSA_ERR_FORMAT);
    ck_assert_int_eq(try_patch32(&c, r0 + 20, 0xFFFFFE), ROSA_ERR_FORMAT);
    ck_assert_int_eq(try_patch32(&c, r0 + 80, 5), ROSA_ERR_FORMAT); /* t != pos */
    free(b);
    /* a missing file, a directory, an unwritable target */
    rosa_session *s = (rosa_session *)&c;
    char *missing = tu_path("%s/none.rosa", c.dir);
    ck_assert_int_eq(rosa_session_restore(c.m, missing, &s), ROSA_ERR_IO);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(rosa_session_restore(c.m, c.dir, &s), ROSA_ERR_IO);
    char *nodir = tu_path("%s/no/such/dir/x.rosa", c.dir);
    ck_assert_int_eq(rosa_session_new(c.m, &s), 0);
    ck_assert_int_eq(rosa_session_save(s, nodir), ROSA_ERR_IO);
    rosa_session_free(s);
    ck_assert_int_eq(rosa_session_save(NULL, c.bad), ROSA_ERR_INVALID);
    ck_assert_int_eq(rosa_session_restore(c.m, NULL, &s), ROSA_ERR_INVALID);
    ck_assert_ptr_null(s);
    free(missing);
    free(nodir);
    corpus_free(&c);
}
END_TEST

/* The good file with the checksum recomputed after its bytes were changed (a forgery). */
static int try_forged(corpus *c, uint8_t *b) {
    rosa__cks k;
    rosa__cks_init(&k);
    rosa__cks_update(&k, b, c->len - 8);
    uint64_t sum = rosa__cks_final(&k);
    memcpy(b + c->len - 8, &sum, 8);
    return try_bytes(c, b, c->len);
}

/* Forged files (checksum recomputed): the route check refuses a broken structure; a
 * well-formed forgery restores and runs (wrong retrievals, nothing worse). */
START_TEST(forged_with_valid_checksum) {
    corpus c;
    corpus_new(&c);
    uint8_t *b = malloc(c.len);
    memcpy(b, c.bytes, c.len);
    ck_assert_int_eq(try_forged(&c, b), 0); /* recomputing the checksum alone changes nothing */
    uint32_t w[22];
    memcpy(w, c.bytes + c.route0, sizeof w); /* the first route's header */
    uint32_t nst = w[0], npool = w[1], capx = w[2], nsample = w[4], ncells = w[5], nruns = w[6];
    ck_assert_uint_gt(nst, 8);
    size_t st = c.route0 + sizeof w;
    size_t runs = st + 4 * ((size_t)nst + npool + 2 * (size_t)capx + nsample + 3 * (size_t)ncells);
    ck_assert_uint_le(runs + 5 * (size_t)nruns, c.len - 8);
    /* P_1 (st[2]) linked to itself: its suffix chain would never end */
    uint32_t v;
    memcpy(&v, b + st + 8, 4);
    v = (v & 0xF8000000u) | 2;
    memcpy(b + st + 8, &v, 4);
    ck_assert_int_eq(try_forged(&c, b), ROSA_ERR_FORMAT);
    /* the root (st[0]) given a link past the states */
    memcpy(b, c.bytes, c.len);
    memcpy(&v, b + st, 4);
    v = (v & 0xF8000000u) | nst;
    memcpy(b + st, &v, 4);
    ck_assert_int_eq(try_forged(&c, b), ROSA_ERR_FORMAT);
    /* a run's value symbol: well-formed, restored */
    memcpy(b, c.bytes, c.len);
    b[runs + 4] ^= 1;
    ck_assert_int_eq(try_forged(&c, b), 0);
    /* random words of the first route's arrays: refused, or restored and fed safely (ASan) */
    uint64_t g = 12345;
    const rosa_model_info *mi = rosa_model_get_info(c.m);
    int refused = 0, taken = 0;
    for (int n = 0; n < 300; n++) {
        memcpy(b, c.bytes, c.len);
        g ^= g << 13, g ^= g >> 7, g ^= g << 17;
        size_t off = st + 4 * (size_t)(g % ((runs - st) / 4));
        uint32_t x = (uint32_t)(g >> 32);
        switch (n % 4) {
        case 0: v = x; break;
        case 1: memcpy(&v, b + off, 4); v ^= 1u << (x % 32); break;
        case 2: memcpy(&v, b + off, 4); v = (v & 0xF8000000u) | (x % (nst + 2)); break;
        default: v = x % 4 ? nst : 0xFFFFFFFFu;
        }
        memcpy(b + off, &v, 4);
        rosa__cks k;
        rosa__cks_init(&k);
        rosa__cks_update(&k, b, c.len - 8);
        uint64_t sum = rosa__cks_final(&k);
        memcpy(b + c.len - 8, &sum, 8);
        ck_assert_int_eq(tu_write_file(c.bad, b, c.len), 0);
        rosa_session *s = NULL;
        int rc = rosa_session_restore(c.m, c.bad, &s);
        if (rc) {
            ck_assert_int_eq(rc, ROSA_ERR_FORMAT);
            ck_assert_ptr_null(s);
            refused++;
            continue;
        }
        taken++;
        int32_t tok[6];
        for (int i = 0; i < 6; i++) tok[i] = (int32_t)((x >> (i * 4)) % (uint32_t)mi->vocab);
        ck_assert_int_eq(rosa_session_feed(s, tok, 6, NULL), 0);
        rosa_session_free(s);
    }
    fprintf(stderr, "test_session_file: forged route words: %d refused, %d restored and fed\n", refused, taken);
    ck_assert_int_gt(refused, 100);
    free(b);
    corpus_free(&c);
}
END_TEST

/* A file is bound to its model and run options. */
START_TEST(foreign_model) {
    corpus c;
    corpus_new(&c);
    rosa_session *s = (rosa_session *)&c;
    rosa_model *other = load_case(CASES[1], 0, NULL, NULL);
    ck_assert_int_eq(rosa_session_restore(other, c.good, &s), ROSA_ERR_MISMATCH);
    ck_assert_ptr_null(s);
    rosa_model_free(other);
    rosa_model *plain = load_case(CASES[0], 1, NULL, NULL); /* the same weights, --no-rosa */
    ck_assert_int_eq(rosa_session_restore(plain, c.good, &s), ROSA_ERR_MISMATCH);
    rosa_model_free(plain);
    ck_assert_int_eq(rosa_session_restore(c.m, c.good, &s), 0);
    rosa_session_free(s);
    corpus_free(&c);
}
END_TEST

int main(void) {
    tu_require_shared("test_session_file");
    Suite *s = suite_create("session_file");
    TCase *tc = tcase_create("file");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, save_restore_continue, 0, 6);
    tcase_add_test(tc, malformed_truncated);
    tcase_add_test(tc, malformed_flipped);
    tcase_add_test(tc, malformed_header_and_counts);
    tcase_add_test(tc, forged_with_valid_checksum);
    tcase_add_test(tc, foreign_model);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
