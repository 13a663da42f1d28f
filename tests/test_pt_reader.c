/* test_pt_reader.c: the PyTorch .pt reader on the committed fixtures (tests/data/pt, written by
 * tools/make_pt_fixtures.py in torch's exact layout): torch 1.x and 2.x archives, f32/f16/bf16,
 * an OrderedDict state_dict, views into a shared storage, pickle protocol 4, zip64 directory
 * entries.  Each loadable fixture must equal its safetensors twin byte for byte.  One archive
 * past 4 GiB (sparse, so it costs no disk) checks real zip64 offsets. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt_build.h"
#include "rosa.h"
#include "tensor_compare.h"
#include "model/tensors.h"
#include "testutil.h"

static void check_twin(const char *stem, int expect_n) {
    char *pt = tu_path("%s/tests/data/pt/%s.pt", tu_source_dir(), stem);
    char *st = tu_path("%s/tests/data/pt/%s.safetensors", tu_source_dir(), stem);
    rosa__tensor_set a, b;
    rosa__tset_init(&a);
    rosa__tset_init(&b);
    char err[512] = "", why[512] = "";
    int rc = rosa__pt_load(&a, pt, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: %s", pt, err);
    rc = rosa__safetensors_load(&b, st, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: %s", st, err);
    ck_assert_int_eq(a.n, expect_n);
    ck_assert_msg(tc_sets_equal(&a, &b, why, sizeof why) == 0, "%s: %s", stem, why);
    for (int i = 0; i < a.n; i++) ck_assert_str_eq(a.t[i].file, pt);
    rosa__tset_free(&a);
    rosa__tset_free(&b);
    free(pt);
    free(st);
}

START_TEST(torch1_plain_dict) {
    check_twin("torch1_dict", 4);
    /* dict order is kept, and the 0-dim tensor is a scalar */
    char *pt = tu_path("%s/tests/data/pt/torch1_dict.pt", tu_source_dir());
    rosa__tensor_set s;
    rosa__tset_init(&s);
    char err[512];
    ck_assert_int_eq(rosa__pt_load(&s, pt, err, sizeof err), 0);
    ck_assert_str_eq(s.t[0].name, "layer.weight.f32");
    ck_assert_int_eq(s.t[0].dtype, ROSA_DT_F32);
    ck_assert_int_eq(s.t[1].dtype, ROSA_DT_F16);
    ck_assert_int_eq(s.t[2].dtype, ROSA_DT_BF16);
    const rosa__tensor *sc = rosa__tset_find(&s, "scale");
    ck_assert_ptr_nonnull(sc);
    ck_assert_int_eq(sc->ndim, 0);
    ck_assert(*(const float *)sc->data == 3.5f);
    rosa__tset_free(&s);
    free(pt);
}
END_TEST

START_TEST(torch2_ordered_dict_shared_storage) {
    check_twin("torch2_ordered", 5);
    char *pt = tu_path("%s/tests/data/pt/torch2_ordered.pt", tu_source_dir());
    rosa__tensor_set s;
    rosa__tset_init(&s);
    char err[512];
    ck_assert_int_eq(rosa__pt_load(&s, pt, err, sizeof err), 0);
    /* shared.head and shared.tail are views of one storage: the tail starts 4 elements in */
    const rosa__tensor *h = rosa__tset_find(&s, "shared.head"), *t = rosa__tset_find(&s, "shared.tail");
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_eq((const float *)h->data + 4, t->data);
    ck_assert(((const float *)t->data)[0] == 3.0f);
    rosa__tset_free(&s);
    free(pt);
}
END_TEST

START_TEST(torch2_protocol4) { check_twin("torch2_proto4", 2); }
END_TEST

START_TEST(zip64_directory) { check_twin("zip64_extras", 2); }
END_TEST

static void expect_refusal(const char *stem, int code, const char *needle1, const char *needle2) {
    char *pt = tu_path("%s/tests/data/pt/%s.pt", tu_source_dir(), stem);
    rosa__tensor_set s;
    rosa__tset_init(&s);
    char err[512] = "";
    int rc = rosa__pt_load(&s, pt, err, sizeof err);
    ck_assert_msg(rc == code, "%s: rc %d (%s)", stem, rc, err);
    ck_assert_msg(strstr(err, pt) != NULL, "message does not name the file: %s", err);
    ck_assert_msg(strstr(err, needle1) != NULL, "message lacks '%s': %s", needle1, err);
    ck_assert_msg(strstr(err, needle2) != NULL, "message lacks '%s': %s", needle2, err);
    rosa__tset_free(&s);
    free(pt);
}

START_TEST(non_contiguous_refused) {
    expect_refusal("noncontig", ROSA_ERR_UNSUPPORTED, "'t.transposed'", "not contiguous");
}
END_TEST

START_TEST(long_storage_refused) {
    expect_refusal("long_storage", ROSA_ERR_UNSUPPORTED, "'step'", "LongStorage");
}
END_TEST

START_TEST(missing_file) {
    rosa__tensor_set s;
    rosa__tset_init(&s);
    char err[512] = "";
    ck_assert_int_eq(rosa__pt_load(&s, "/nonexistent/x.pt", err, sizeof err), ROSA_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.pt"));
    rosa__tset_free(&s);
}
END_TEST

/* A 4 GiB + 64 byte storage (a hole in a sparse file) followed by a small one whose local
 * header lies past 4 GiB: sizes and offsets only fit the zip64 extra fields. */
START_TEST(zip64_past_4gib) {
    const int64_t big_numel = ((4ll << 30) + 64) / 4;
    tspec t[3] = {
        {.name = "big", .cls = "FloatStorage", .key = "0", .st_numel = big_numel, .ndim = 1, .shape = {big_numel}, .stride = {-1}},
        {.name = "big.tail", .cls = "FloatStorage", .key = "0", .st_numel = big_numel, .offset = big_numel - 4, .ndim = 1,
         .shape = {4}, .stride = {-1}},
        {.name = "small", .cls = "BFloat16Storage", .key = "1", .st_numel = 4, .ndim = 2, .shape = {2, 2}, .stride = {-1}},
    };
    bb pk = {0};
    pk_dict(&pk, t, 3);
    static const unsigned char small[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    zrec r[4] = {{"big_model/data.pkl", pk.p, pk.n, 0, 0},
                 {"big_model/data/0", NULL, (uint64_t)big_numel * 4, 0, 0},
                 {"big_model/data/1", small, sizeof small, 0, 0},
                 {"big_model/version", (const unsigned char *)"3\n", 2, 0, 0}};
    char *dir = tu_tmpdir();
    char *path = tu_path("%s/big_model.pt", dir);
    struct stat st;
    if (zb_write_file(path, r, 4) != 0 || stat(path, &st) != 0 || (int64_t)st.st_blocks * 512 > (64 << 20)) {
        printf("NOTICE: zip64_past_4gib skipped: no sparse 4 GiB file could be made in %s\n", dir);
    } else {
        ck_assert_int_gt(st.st_size, 4ll << 30);
        rosa__tensor_set s;
        rosa__tset_init(&s);
        char err[512] = "";
        ck_assert_msg(rosa__pt_load(&s, path, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(s.n, 3);
        const rosa__tensor *b = rosa__tset_find(&s, "big"), *tl = rosa__tset_find(&s, "big.tail"),
                           *sm = rosa__tset_find(&s, "small");
        ck_assert_ptr_nonnull(b);
        ck_assert_ptr_nonnull(tl);
        ck_assert_ptr_nonnull(sm);
        ck_assert_uint_eq(b->nbytes, (size_t)big_numel * 4);
        ck_assert_ptr_eq((const float *)b->data + big_numel - 4, tl->data);
        ck_assert(((const float *)tl->data)[3] == 0.0f); /* the last bytes of the hole map */
        ck_assert_int_eq(sm->dtype, ROSA_DT_BF16);
        ck_assert_int_eq(memcmp(sm->data, small, sizeof small), 0);
        ck_assert((const unsigned char *)sm->data > (const unsigned char *)b->data + (4ll << 30));
        rosa__tset_free(&s);
    }
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    bb_free(&pk);
}
END_TEST

int main(void) {
    Suite *s = suite_create("pt_reader");
    TCase *tc = tcase_create("fixtures");
    tcase_add_test(tc, torch1_plain_dict);
    tcase_add_test(tc, torch2_ordered_dict_shared_storage);
    tcase_add_test(tc, torch2_protocol4);
    tcase_add_test(tc, zip64_directory);
    tcase_add_test(tc, non_contiguous_refused);
    tcase_add_test(tc, long_storage_refused);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, zip64_past_4gib);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
