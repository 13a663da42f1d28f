/* test_malformed_files.c: checkpoint readers against files that lie.
 *
 * Every bad file is generated here, in a temporary folder, with the torch-layout zip writer and
 * pickle builder of util/pt_build.c; each case breaks one thing.  Each must be refused with a
 * code < 0 and a message naming the file (and the tensor when one is involved), never crash or
 * read out of bounds (the suite runs under AddressSanitizer).  Two seeded fuzz loops close the file: byte flips of a real .pt, and
 * mutations of a real data.pkl re-wrapped with a valid CRC so that they reach the pickle VM. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strndup */
#endif
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt_build.h"
#include "rosa.h"
#include "model/tensors.h"
#include "testutil.h"
#include "model/zip_reader.h"

static char *g_dir; /* temporary folder for this run */

/* A byte-string literal and its length, NULs included. */
#define S(lit) lit, sizeof(lit) - 1

/* ------------------------------------------------------------------ .pt builder */

typedef struct ptb {
    const char *prefix;      /* archive folder; default "archive" */
    tspec t[4];
    int nt;
    const char *byteorder;   /* NULL: no byteorder record */
    const bb *pickle;        /* non-NULL: these bytes as data.pkl */
    int omit_pkl, omit_storage, dup_record;
    int pkl_method, storage_method;
    int64_t pkl_size_lie, storage_size_lie;
    int64_t storage_bytes_delta; /* record data/<key> written this many bytes longer/shorter */
} ptb;

static size_t cls_size(const char *cls) {
    if (!strcmp(cls, "HalfStorage") || !strcmp(cls, "BFloat16Storage")) return 2;
    if (!strcmp(cls, "DoubleStorage") || !strcmp(cls, "LongStorage")) return 8;
    return 4;
}

/* The baseline: one f32 tensor "w" of shape [2, 3] over storage "0", which loads fine. */
static ptb base_pt(void) {
    ptb p;
    memset(&p, 0, sizeof p);
    p.prefix = "archive";
    p.byteorder = "little";
    p.nt = 1;
    p.t[0] = (tspec){.name = "w", .cls = "FloatStorage", .key = "0", .st_numel = 6, .ndim = 2,
                     .shape = {2, 3}, .stride = {-1}};
    return p;
}

static char *write_pt(const char *fname, const ptb *p) {
    bb pk = {0}, out = {0};
    if (p->pickle) bb_put(&pk, p->pickle->p, p->pickle->n);
    else pk_dict(&pk, p->t, p->nt);
    zrec r[16];
    char names[16][128];
    unsigned char *blobs[8] = {0};
    int n = 0;
    memset(r, 0, sizeof r);
    if (!p->omit_pkl) {
        snprintf(names[n], sizeof names[n], "%s/data.pkl", p->prefix);
        r[n] = (zrec){names[n], pk.p, pk.n, p->pkl_method, p->pkl_size_lie};
        n++;
    }
    if (p->byteorder) {
        snprintf(names[n], sizeof names[n], "%s/byteorder", p->prefix);
        r[n] = (zrec){names[n], (const unsigned char *)p->byteorder, strlen(p->byteorder), 0, 0};
        n++;
    }
    for (int i = 0; i < p->nt && !p->omit_storage; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= !strcmp(p->t[j].key, p->t[i].key);
        if (seen) continue;
        int64_t len = p->t[i].st_numel * (int64_t)cls_size(p->t[i].cls) + (i == 0 ? p->storage_bytes_delta : 0);
        if (len < 0) len = 0;
        if (len > 4096) len = 4096; /* storages that claim more hold less: the lie is the test */
        blobs[i] = malloc((size_t)len + 1);
        for (int64_t k = 0; k < len; k++) blobs[i][k] = (unsigned char)(k * 7 + i);
        snprintf(names[n], sizeof names[n], "%s/data/%s", p->prefix, p->t[i].key);
        r[n] = (zrec){names[n], blobs[i], (size_t)len, i == 0 ? p->storage_method : 0, i == 0 ? p->storage_size_lie : 0};
        n++;
    }
    snprintf(names[n], sizeof names[n], "%s/version", p->prefix);
    r[n] = (zrec){names[n], (const unsigned char *)"3\n", 2, 0, 0};
    n++;
    if (p->dup_record) { r[n] = r[n - 1]; n++; }
    zb_build(&out, r, n);
    char *path = tu_path("%s/%s", g_dir, fname);
    ck_assert_int_eq(tu_write_file(path, out.p, out.n), 0);
    for (int i = 0; i < 8; i++) free(blobs[i]);
    bb_free(&pk);
    bb_free(&out);
    return path;
}

/* ------------------------------------------------------------------ expectations */

/* The load must fail with a message naming the file and containing each needle (NULL ends). */
static void expect_fail_v(int (*load)(rosa__tensor_set *, const char *, char *, size_t), const char *path,
                          int code, const char *const *needles) {
    rosa__tensor_set s;
    rosa__tset_init(&s);
    char err[1024] = "";
    int rc = load(&s, path, err, sizeof err);
    ck_assert_msg(rc < 0, "%s: loaded (rc %d) but must be refused", path, rc);
    if (code) ck_assert_msg(rc == code, "%s: rc %d, want %d: %s", path, rc, code, err);
    ck_assert_msg(strstr(err, path) != NULL, "message does not name the file: '%s'", err);
    for (int i = 0; needles[i]; i++)
        ck_assert_msg(strstr(err, needles[i]) != NULL, "message lacks '%s': '%s'", needles[i], err);
    rosa__tset_free(&s);
}
#define EXPECT_PT(path, code, ...) expect_fail_v(rosa__pt_load, path, code, (const char *const[]){__VA_ARGS__, NULL})
#define EXPECT_ST(path, code, ...) expect_fail_v(rosa__safetensors_load, path, code, (const char *const[]){__VA_ARGS__, NULL})

/* Loads fine; every tensor lies inside the mapping or an owned copy. */
static int load_checked(int (*load)(rosa__tensor_set *, const char *, char *, size_t), const char *path, char *err, size_t errlen) {
    rosa__tensor_set s;
    rosa__tset_init(&s);
    int rc = load(&s, path, err, errlen);
    for (int i = 0; rc == 0 && i < s.n; i++) {
        const unsigned char *d = s.t[i].data, *m = s.maps[0];
        int inside = d >= m && d + s.t[i].nbytes <= m + s.map_len[0];
        for (int k = 0; k < s.nowned; k++) inside |= d == s.owned[k];
        ck_assert_msg(inside, "%s: tensor '%s' points outside the file", path, s.t[i].name);
    }
    rosa__tset_free(&s);
    return rc;
}

static char *write_bytes(const char *fname, const void *d, size_t n) {
    char *path = tu_path("%s/%s", g_dir, fname);
    ck_assert_int_eq(tu_write_file(path, d, n), 0);
    return path;
}

/* ================================================================== .pt cases */

START_TEST(pt_baseline_loads) {
    ptb p = base_pt();
    p.nt = 2;
    p.t[1] = (tspec){.name = "v", .cls = "BFloat16Storage", .key = "1", .st_numel = 4, .ndim = 1, .shape = {4}, .stride = {-1}};
    char *path = write_pt("base.pt", &p);
    char err[512] = "";
    ck_assert_msg(load_checked(rosa__pt_load, path, err, sizeof err) == 0, "%s", err);
    free(path);
}
END_TEST

START_TEST(pt_truncated) {
    char *src = tu_path("%s/tests/data/pt/torch2_ordered.pt", tu_source_dir());
    size_t n;
    unsigned char *b = tu_read_file(src, &n);
    ck_assert_ptr_nonnull(b);
    for (size_t cut = 0; cut < n; cut++) {
        char *path = write_bytes("trunc.pt", b, cut);
        if (cut == 0) EXPECT_PT(path, 0, "empty");
        else EXPECT_PT(path, 0, "zip");
        free(path);
    }
    free(b);
    free(src);
}
END_TEST

START_TEST(pt_corrupt_central_directory) {
    ptb p = base_pt();
    char *path = write_pt("cd.pt", &p);
    size_t n;
    unsigned char *b = tu_read_file(path, &n);
    unsigned char *cd = memmem(b, n, "PK\x01\x02", 4);
    ck_assert_ptr_nonnull(cd);
    /* a directory entry's signature broken */
    cd[3] = 9;
    tu_write_file(path, b, n);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "central directory is corrupt");
    cd[3] = 2;
    /* a name length running past the directory */
    cd[28] = 0xff; cd[29] = 0xff;
    tu_write_file(path, b, n);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "runs past the directory");
    cd[28] = (unsigned char)strlen("archive/data.pkl"); cd[29] = 0;
    /* zip64 end record: directory offset beyond the file */
    unsigned char *e64 = memmem(b, n, "PK\x06\x06", 4);
    ck_assert_ptr_nonnull(e64);
    e64[48 + 5] = 0x40;
    tu_write_file(path, b, n);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "outside the file");
    e64[48 + 5] = 0;
    /* entry count larger than the directory can hold */
    e64[24 + 3] = e64[32 + 3] = 0x10;
    tu_write_file(path, b, n);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "records");
    e64[24 + 3] = e64[32 + 3] = 0;
    /* entries on this disk differ from the total: a split archive */
    e64[24] ^= 1;
    tu_write_file(path, b, n);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "multi-disk");
    e64[24] ^= 1;
    /* zip64 locator pointing nowhere */
    unsigned char *loc = memmem(b, n, "PK\x06\x07", 4);
    loc[8] ^= 0x11;
    tu_write_file(path, b, n);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "zip64 end");
    loc[8] ^= 0x11;
    /* local header offset into garbage */
    cd[42] ^= 0x05;
    tu_write_file(path, b, n);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "local header");
    cd[42] ^= 0x05;
    /* not a zip at all */
    tu_write_file(path, "hello world, not a zip", 22);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "not a zip archive");
    free(b);
    free(path);
}
END_TEST

START_TEST(pt_entry_sizes_lie) {
    ptb p = base_pt();
    p.storage_size_lie = 1 << 20; /* past the end of the data area */
    char *path = write_pt("lie1.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "archive/data/0", "runs past the end", "'w'");
    free(path);
    p = base_pt();
    p.storage_size_lie = 8; /* inside the file, but not what 6 floats need */
    path = write_pt("lie2.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "tensor 'w'", "holds 32 bytes", "need 24");
    free(path);
    p = base_pt();
    p.storage_bytes_delta = -4; /* record shorter than the storage numel says */
    path = write_pt("lie3.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "tensor 'w'", "holds 20 bytes");
    free(path);
    p = base_pt();
    p.pkl_size_lie = 16; /* data.pkl swallows its data descriptor: CRC no longer matches */
    path = write_pt("lie4.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "data.pkl", "CRC");
    free(path);
}
END_TEST

START_TEST(pt_compressed_entry) {
    ptb p = base_pt();
    p.pkl_method = 8;
    char *path = write_pt("deflate1.pt", &p);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "archive/data.pkl", "compressed");
    free(path);
    p = base_pt();
    p.storage_method = 8;
    path = write_pt("deflate2.pt", &p);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "archive/data/0", "compressed", "tensor 'w'");
    free(path);
}
END_TEST

START_TEST(pt_missing_records) {
    ptb p = base_pt();
    p.omit_pkl = 1;
    char *path = write_pt("nopkl.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "data.pkl");
    free(path);
    p = base_pt();
    p.omit_storage = 1;
    path = write_pt("nostorage.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "tensor 'w'", "storage record 'archive/data/0' is missing");
    free(path);
    p = base_pt();
    p.dup_record = 1;
    path = write_pt("duprec.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "appears twice");
    free(path);
}
END_TEST

START_TEST(pt_any_archive_name) {
    /* the folder name is free; a second folder with its own data.pkl is ambiguous */
    ptb p = base_pt();
    p.prefix = "my-checkpoint_v2";
    p.byteorder = NULL;
    char *path = write_pt("my-checkpoint_v2.pt", &p);
    char err[512] = "";
    ck_assert_msg(load_checked(rosa__pt_load, path, err, sizeof err) == 0, "%s", err);
    free(path);
    bb pk = {0}, out = {0};
    pk_dict(&pk, p.t, p.nt);
    zrec r[3] = {{"a/data.pkl", pk.p, pk.n, 0, 0}, {"b/data.pkl", pk.p, pk.n, 0, 0}, {"a/data/0", pk.p, 24, 0, 0}};
    zb_build(&out, r, 3);
    path = write_bytes("two.pt", out.p, out.n);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "several top-level folders");
    free(path);
    bb_free(&out);
    /* data.pkl only below a nested folder: not a torch.save archive */
    r[0].name = "a/b/data.pkl";
    zb_build(&out, r, 1);
    path = write_bytes("nested.pt", out.p, out.n);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "no <archive>/data.pkl");
    free(path);
    bb_free(&out);
    bb_free(&pk);
}
END_TEST

static char *write_pickle(const char *fname, const bb *pk) {
    ptb p = base_pt();
    p.pickle = pk;
    return write_pt(fname, &p);
}

START_TEST(pt_pickle_unknown_opcode) {
    const unsigned char ops[] = {'i', 'b', 'S', 'G', 0x81, 0x92, 'l', 'a', 'e', 'p', 'g', 'F', 'I', 'L', 'V', 0x82, 0xff};
    for (size_t k = 0; k < sizeof ops; k++) {
        bb pk = {0};
        bb_u8(&pk, 0x80); bb_u8(&pk, 2);
        if (ops[k] == 'b') { bb_u8(&pk, ')'); bb_u8(&pk, 'N'); } /* BUILD on a tuple */
        bb_u8(&pk, ops[k]);
        bb_put(&pk, "xxxxxxxxxxxxxxxx", 16);
        bb_u8(&pk, '.');
        char *path = write_pickle("opcode.pt", &pk);
        EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "data.pkl", "pickle byte");
        free(path);
        bb_free(&pk);
    }
    /* protocol 0/1 and 6 */
    for (int proto = 0; proto < 8; proto += 6) {
        bb pk = {0};
        bb_u8(&pk, 0x80); bb_u8(&pk, (unsigned)proto); bb_u8(&pk, '}'); bb_u8(&pk, '.');
        char *path = write_pickle("proto.pt", &pk);
        EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "protocol");
        free(path);
        bb_free(&pk);
    }
}
END_TEST

START_TEST(pt_pickle_unknown_global) {
    char *marker = tu_path("%s/pwned", g_dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "touch %s", marker);
    /* GLOBAL os.system; REDUCE ("touch ...",): the classic payload */
    bb pk = {0};
    bb_u8(&pk, 0x80); bb_u8(&pk, 2);
    pk_global(&pk, "os", "system");
    pk_str(&pk, cmd);
    bb_u8(&pk, 0x85); bb_u8(&pk, 'R'); bb_u8(&pk, '.');
    char *path = write_pickle("os_system.pt", &pk);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "global 'os.system' is not allowed");
    free(path);
    bb_free(&pk);
    /* the same through STACK_GLOBAL (protocol 4) */
    bb_u8(&pk, 0x80); bb_u8(&pk, 4);
    bb_u8(&pk, 0x8c); bb_u8(&pk, 8); bb_str(&pk, "builtins");
    bb_u8(&pk, 0x8c); bb_u8(&pk, 4); bb_str(&pk, "eval");
    bb_u8(&pk, 0x93);
    pk_str(&pk, "__import__('os').system('true')");
    bb_u8(&pk, 0x85); bb_u8(&pk, 'R'); bb_u8(&pk, '.');
    path = write_pickle("eval.pt", &pk);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "global 'builtins.eval' is not allowed");
    free(path);
    bb_free(&pk);
    /* a torch name that is not whitelisted, in a tensor position */
    ptb p = base_pt();
    p.t[0].cls = "FloatStorage\ntorch";
    path = write_pt("bad_cls.pt", &p);
    EXPECT_PT(path, 0, "data.pkl");
    free(path);
    bb_u8(&pk, 0x80); bb_u8(&pk, 2);
    pk_global(&pk, "torch._utils", "_rebuild_tensor");
    bb_u8(&pk, '.');
    path = write_pickle("v1.pt", &pk);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "torch._utils._rebuild_tensor' is not allowed");
    free(path);
    bb_free(&pk);
    /* storage class used as a callable */
    bb_u8(&pk, 0x80); bb_u8(&pk, 2);
    pk_global(&pk, "torch", "FloatStorage"); bb_u8(&pk, ')'); bb_u8(&pk, 'R'); bb_u8(&pk, '.');
    path = write_pickle("callcls.pt", &pk);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "not callable");
    free(path);
    bb_free(&pk);
    struct stat st;
    ck_assert_msg(stat(marker, &st) != 0, "a pickle payload was executed");
    free(marker);
}
END_TEST

START_TEST(pt_pickle_stack_and_memo) {
    static const struct { const char *bytes; size_t n; const char *needle; } cases[] = {
        {S("\x80\x02\x86."), "stack underflow"},                 /* TUPLE2 on an empty stack */
        {S("\x80\x02}(K\x01\x86u."), "stack underflow"},         /* TUPLE2 through a MARK */
        {S("\x80\x02}K\x01u."), "no MARK"},                      /* SETITEMS without MARK */
        {S("\x80\x02}(K\x01u."), "odd number"},                  /* SETITEMS with one entry */
        {S("\x80\x02(K\x01K\x02u."), "not a dict"},              /* SETITEMS on nothing */
        {S("\x80\x02K\x01K\x02K\x03s."), "not a dict"},         /* SETITEM on an int */
        {S("\x80\x02Q."), "stack underflow"},                    /* BINPERSID on empty stack */
        {S("\x80\x02R."), "stack underflow"},
        {S("\x80\x02h\x05."), "memo index 5 out of range"},      /* BINGET never stored */
        {S("\x80\x02}r\xf0\xff\xff\xff."), "memo index"},        /* LONG_BINPUT huge */
        {S("\x80\x02}q\x00j\x00\x00\x01\x00."), "memo index"},  /* LONG_BINGET past */
        {S("\x80\x02q\x00."), "empty stack"},                    /* BINPUT with nothing */
        {S("\x80\x02}}."), "STOP with 2"},                       /* two objects left */
        {S("\x80\x02}"), "without STOP"},
        {S("\x80\x02X\xff\xff\x00\x00" "abc."), "truncated"},     /* string past the end */
        {S("\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\x7f."), "past the end"},
        {S("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09."), "64 bits"},
        {S("\x80\x02\x95\xff\x00\x00\x00\x00\x00\x00\x00}."), "frame"},
        {S("\x80\x02" "cos\nsystem"), "unterminated"},       /* GLOBAL without newline */
        {S("\x80\x02K\x01K\x02\x93."), "two strings"},          /* STACK_GLOBAL of ints */
        {S("\x80\x02" "ccollections\nOrderedDict\nK\x01\x85R."), "called with arguments"},
        {S("\x80\x02K\x01)R."), "REDUCE needs"},
        {S("\x80\x02)K\x01" "b."), "BUILD"},
        {S("\x80\x02K\x01."), "not a dict of tensors"},         /* top object an int */
        {S("\x80\x02)"), "without STOP"},
        {S("\x80"), "not a binary pickle"},
        {S("}."), "not a binary pickle"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bb pk = {0};
        bb_put(&pk, cases[k].bytes, cases[k].n);
        char *path = write_pickle("stack.pt", &pk);
        EXPECT_PT(path, 0, cases[k].needle);
        free(path);
        bb_free(&pk);
    }
}
END_TEST

START_TEST(pt_pickle_deeply_nested) {
    bb pk = {0};
    bb_u8(&pk, 0x80); bb_u8(&pk, 2);
    for (int i = 0; i < 10000; i++) bb_u8(&pk, '(');
    bb_u8(&pk, '.');
    char *path = write_pickle("marks.pt", &pk);
    EXPECT_PT(path, ROSA_ERR_LIMIT, "nested MARKs");
    free(path);
    bb_free(&pk);
    /* tuples of tuples, no MARKs */
    bb_u8(&pk, 0x80); bb_u8(&pk, 2);
    bb_u8(&pk, ')');
    for (int i = 0; i < 10000; i++) bb_u8(&pk, 0x85);
    bb_u8(&pk, '.');
    path = write_pickle("tuples.pt", &pk);
    EXPECT_PT(path, ROSA_ERR_LIMIT, "nested deeper");
    free(path);
    bb_free(&pk);
    /* a dict that contains itself */
    bb_u8(&pk, 0x80); bb_u8(&pk, 2);
    bb_u8(&pk, '}'); bb_u8(&pk, 'q'); bb_u8(&pk, 0);
    for (int i = 0; i < 100; i++) { pk_int(&pk, i); bb_u8(&pk, 'h'); bb_u8(&pk, 0); bb_u8(&pk, 's'); }
    bb_u8(&pk, '.');
    path = write_pickle("cycle.pt", &pk);
    EXPECT_PT(path, ROSA_ERR_LIMIT, "nested deeper");
    free(path);
    bb_free(&pk);
    /* millions of pushes: the stack bound, not memory, ends it */
    bb_u8(&pk, 0x80); bb_u8(&pk, 2);
    for (int i = 0; i < (1 << 22) + 10; i++) bb_u8(&pk, 'N');
    bb_u8(&pk, '.');
    path = write_pickle("stack_bomb.pt", &pk);
    EXPECT_PT(path, ROSA_ERR_LIMIT, "stack deeper");
    free(path);
    bb_free(&pk);
}
END_TEST

START_TEST(pt_tensor_checks) {
    ptb p = base_pt();
    char *path;
    p.t[0].st_numel = 4; /* storage too small for [2, 3] */
    path = write_pt("small.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "tensor 'w'", "exceed the storage's 4 elements");
    free(path);
    p = base_pt();
    p.t[0].offset = 1; /* offset pushes the view past the end */
    path = write_pt("offset.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "tensor 'w'", "storage offset 1");
    free(path);
    p = base_pt();
    p.t[0].offset = -1;
    path = write_pt("negoff.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "tensor 'w'");
    free(path);
    p = base_pt();
    p.t[0].cls = "DoubleStorage";
    path = write_pt("double.pt", &p);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "tensor 'w'", "unsupported storage dtype torch.DoubleStorage");
    free(path);
    p = base_pt();
    p.t[0].ndim = 5;
    p.t[0].st_numel = 32;
    for (int i = 0; i < 5; i++) p.t[0].shape[i] = 2;
    path = write_pt("dims.pt", &p);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "tensor 'w'", "5 dimensions");
    free(path);
    p = base_pt();
    p.t[0].shape[0] = -2;
    path = write_pt("negshape.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "tensor 'w'", "size -2");
    free(path);
    p = base_pt();
    p.t[0].shape[0] = 1ll << 40;
    p.t[0].shape[1] = 1ll << 40;
    path = write_pt("hugeshape.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "tensor 'w'");
    free(path);
    p = base_pt();
    p.t[0].st_numel = 1ll << 40; /* numel far beyond the record */
    path = write_pt("hugestorage.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "tensor 'w'");
    free(path);
    p = base_pt();
    p.t[0].stride[0] = 1;
    p.t[0].stride[1] = 2; /* transposed */
    path = write_pt("stride.pt", &p);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "tensor 'w'", "not contiguous");
    free(path);
    p = base_pt();
    p.t[0].extra_meta = 1;
    path = write_pt("meta.pt", &p);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "tensor 'w'", "metadata");
    free(path);
    p = base_pt(); /* duplicate names in the dict */
    p.nt = 2;
    p.t[1] = p.t[0];
    path = write_pt("dupname.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "tensor 'w' appears twice");
    free(path);
    p = base_pt(); /* one storage described two ways */
    p.nt = 2;
    p.t[1] = p.t[0];
    p.t[1].name = "w2";
    p.t[1].cls = "HalfStorage";
    path = write_pt("twoways.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "tensor 'w2'", "another dtype");
    free(path);
    p = base_pt();
    char longname[2100];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    p.t[0].name = longname;
    path = write_pt("longname.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "longer than 1024");
    free(path);
    p = base_pt();
    p.t[0].name = "";
    path = write_pt("noname.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "empty");
    free(path);
}
END_TEST

START_TEST(pt_byteorder_and_legacy) {
    ptb p = base_pt();
    p.byteorder = "big";
    char *path = write_pt("big.pt", &p);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "big-endian");
    free(path);
    p.byteorder = "middle";
    path = write_pt("middle.pt", &p);
    EXPECT_PT(path, ROSA_ERR_FORMAT, "byteorder");
    free(path);
    /* pre-1.6 torch.save: a bare pickle stream */
    static const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
    path = write_bytes("legacy.pt", legacy, sizeof legacy);
    EXPECT_PT(path, ROSA_ERR_UNSUPPORTED, "legacy");
    free(path);
}
END_TEST

START_TEST(pt_non_tensor_values) {
    /* value an int, key an int, value a call of OrderedDict */
    static const struct { const char *bytes; size_t n; const char *needle; } cases[] = {
        {S("\x80\x02}(X\x01\x00\x00\x00" "aK\x01u."), "tensor 'a': value is not a plain tensor"},
        {S("\x80\x02}(K\x01K\x01u."), "key that is not a string"},
        {S("\x80\x02}(X\x01\x00\x00\x00" "a" "ccollections\nOrderedDict\n)Ru."), "tensor 'a'"},
        {S("\x80\x02}(X\x01\x00\x00\x00" "a" "ctorch._utils\n_rebuild_tensor_v2\n)Ru."), "6 or 7 arguments"},
        {S("\x80\x02}(X\x01\x00\x00\x00" "a" "ctorch._utils\n_rebuild_tensor_v2\n(NK\x00))\x89}tRu."), "storage reference"},
        {S("\x80\x02}(X\x01\x00\x00\x00" "a" "ctorch._utils\n_rebuild_parameter\n)Ru."), "_rebuild_parameter without"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bb pk = {0};
        bb_put(&pk, cases[k].bytes, cases[k].n);
        char *path = write_pickle("values.pt", &pk);
        EXPECT_PT(path, 0, cases[k].needle);
        free(path);
        bb_free(&pk);
    }
}
END_TEST

/* ================================================================== safetensors cases */

static char *write_st(const char *fname, const char *header, size_t data_len) {
    bb b = {0};
    bb_le(&b, strlen(header), 8);
    bb_str(&b, header);
    for (size_t i = 0; i < data_len; i++) bb_u8(&b, (unsigned)i);
    char *path = write_bytes(fname, b.p, b.n);
    bb_free(&b);
    return path;
}

START_TEST(st_truncated) {
    char *src = tu_path("%s/tests/data/pt/torch1_dict.safetensors", tu_source_dir());
    size_t n;
    unsigned char *b = tu_read_file(src, &n);
    ck_assert_ptr_nonnull(b);
    for (size_t cut = 0; cut < n; cut++) {
        char *path = write_bytes("trunc.safetensors", b, cut);
        EXPECT_ST(path, 0, "");
        free(path);
    }
    free(b);
    free(src);
}
END_TEST

START_TEST(st_header_checks) {
    static const struct { const char *header; size_t data; int code; const char *needle; } cases[] = {
        {"hello, not json", 0, ROSA_ERR_FORMAT, "not a JSON object"},
        {"[1, 2, 3]", 0, ROSA_ERR_FORMAT, "not a JSON object"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]", 8, ROSA_ERR_FORMAT, "not a JSON object"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 4]}}", 16, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 16, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
         "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 16, ROSA_ERR_FORMAT, "overlap"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
         "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 16, ROSA_ERR_FORMAT, "overlap"},
        {"{\"a\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [0, 16]}}", 16, ROSA_ERR_UNSUPPORTED, "tensor 'a': unsupported dtype I64"},
        {"{\"a\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [0, 16]}}", 16, ROSA_ERR_UNSUPPORTED, "F64"},
        {"{\"a\": {\"dtype\": 7, \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 8]}}", 8, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1e300], \"data_offsets\": [0, 8]}}", 8, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 8]}}", 8, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}}", 8, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1, 1, 1, 1, 2], \"data_offsets\": [0, 8]}}", 8, ROSA_ERR_UNSUPPORTED, "tensor 'a': 5 dimensions"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [-8, 0]}}", 8, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", 8, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": 5}", 8, ROSA_ERR_FORMAT, "tensor 'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
         "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}", 16, ROSA_ERR_FORMAT, "tensor 'a' appears twice"},
        {"{\"\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, ROSA_ERR_FORMAT, "empty"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *path = write_st("bad.safetensors", cases[k].header, cases[k].data);
        EXPECT_ST(path, cases[k].code, cases[k].needle);
        free(path);
    }
    /* a good one, for contrast */
    char *path = write_st("good.safetensors", "{\"a\": {\"dtype\": \"BF16\", \"shape\": [2, 2], \"data_offsets\": [0, 8]}, "
                          "\"__metadata__\": {\"format\": \"pt\"}}", 8);
    char err[512] = "";
    ck_assert_msg(load_checked(rosa__safetensors_load, path, err, sizeof err) == 0, "%s", err);
    free(path);
}
END_TEST

START_TEST(st_header_length) {
    unsigned char b[64];
    memset(b, ' ', sizeof b);
    for (int i = 0; i < 8; i++) b[i] = 0xff; /* 2^64 - 1 */
    char *path = write_bytes("hlen.safetensors", b, sizeof b);
    EXPECT_ST(path, ROSA_ERR_FORMAT, "header length");
    free(path);
    memset(b, 0, 8);
    b[0] = 57; /* one byte longer than the file holds */
    memcpy(b + 8, "{}", 2);
    path = write_bytes("hlen2.safetensors", b, sizeof b);
    EXPECT_ST(path, ROSA_ERR_FORMAT, "header length 57");
    free(path);
    path = write_bytes("short.safetensors", b, 5);
    EXPECT_ST(path, ROSA_ERR_FORMAT, "truncated");
    free(path);
    path = write_bytes("empty.safetensors", b, 0);
    EXPECT_ST(path, ROSA_ERR_FORMAT, "empty");
    free(path);
}
END_TEST

/* ================================================================== fuzz */

static uint64_t rng_next(uint64_t *s) { /* splitmix64: seeded, reproducible */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char *fuzz_source(char **owned) {
    const char *sh = tu_shared_dir();
    if (sh) *owned = tu_path("%s/golden/tiny-pre-m2/adapter/rosa_adapters.pt", sh);
    else *owned = tu_path("%s/tests/data/pt/torch2_ordered.pt", tu_source_dir());
    return *owned;
}

START_TEST(fuzz_pt_byte_flips) {
    char *src;
    fuzz_source(&src);
    size_t n;
    unsigned char *orig = tu_read_file(src, &n), *b = malloc(n);
    ck_assert_ptr_nonnull(orig);
    char *path = tu_path("%s/fuzz.pt", g_dir);
    uint64_t seed = 0x5eed0001;
    int loaded = 0;
    const int iters = 2000;
    for (int it = 0; it < iters; it++) {
        memcpy(b, orig, n);
        int flips = 1 + (int)(rng_next(&seed) % 4);
        for (int f = 0; f < flips; f++) {
            uint64_t r = rng_next(&seed);
            /* half the flips hit the structure: the first 2 KiB (data.pkl) or the last 2 KiB
             * (central directory and end records); the rest land anywhere */
            size_t pos = r % 3 == 0 ? (size_t)(r >> 8) % (n < 2048 ? n : 2048)
                       : r % 3 == 1 ? n - 1 - (size_t)(r >> 8) % (n < 2048 ? n : 2048)
                                    : (size_t)(r >> 8) % n;
            b[pos] ^= (unsigned char)(1u << ((r >> 40) % 8));
            if ((r >> 50) % 8 == 0) b[pos] = (unsigned char)(r >> 32);
        }
        ck_assert_int_eq(tu_write_file(path, b, n), 0);
        char err[1024] = "";
        int rc = load_checked(rosa__pt_load, path, err, sizeof err);
        if (rc == 0) loaded++;
        else ck_assert_msg(strstr(err, path) != NULL, "iteration %d: message does not name the file: %s", it, err);
    }
    ck_assert_int_lt(loaded, iters); /* the structure was hit */
    free(path);
    free(b);
    free(orig);
    free(src);
}
END_TEST

/* Mutate data.pkl itself and re-wrap it with valid CRCs so the VM, not the CRC, sees it. */
START_TEST(fuzz_pt_pickle) {
    char *src;
    fuzz_source(&src);
    size_t n;
    unsigned char *orig = tu_read_file(src, &n);
    ck_assert_ptr_nonnull(orig);
    rosa__zip z;
    char err[1024] = "";
    ck_assert_msg(rosa__zip_open(&z, orig, n, src, err, sizeof err) == 0, "%s", err);
    zrec *recs = calloc((size_t)z.n, sizeof *recs);
    char **names = calloc((size_t)z.n, sizeof *names);
    int pkl = -1;
    for (int i = 0; i < z.n; i++) {
        const unsigned char *d;
        ck_assert_int_eq(rosa__zip_data(&z, i, &d, err, sizeof err), 0);
        names[i] = strndup(z.e[i].name, z.e[i].name_len);
        recs[i] = (zrec){names[i], d, (size_t)z.e[i].size, 0, 0};
        if (strstr(names[i], "/data.pkl")) pkl = i;
    }
    ck_assert_int_ge(pkl, 0);
    size_t pn = recs[pkl].len;
    unsigned char *pb = malloc(pn + 64);
    const unsigned char *porig = recs[pkl].data;
    char *path = tu_path("%s/fuzzpk.pt", g_dir);
    uint64_t seed = 0x5eed0002;
    int loaded = 0;
    const int iters = 3000;
    for (int it = 0; it < iters; it++) {
        memcpy(pb, porig, pn);
        size_t len = pn;
        int muts = 1 + (int)(rng_next(&seed) % 3);
        for (int m = 0; m < muts; m++) {
            uint64_t r = rng_next(&seed);
            size_t pos = (size_t)(r >> 8) % len;
            switch (r % 5) {
            case 0: pb[pos] ^= (unsigned char)(1u << ((r >> 40) % 8)); break;
            case 1: pb[pos] = (unsigned char)(r >> 32); break;
            case 2: /* small integers and lengths are where lies live */
                pb[pos] = (unsigned char[]){0, 1, 2, 4, 5, 0x7f, 0x80, 0xff}[(r >> 32) % 8];
                break;
            case 3: /* delete a byte */
                if (len > 2) { memmove(pb + pos, pb + pos + 1, len - pos - 1); len--; }
                break;
            case 4: /* insert an opcode byte */
                if (len < pn + 60) {
                    memmove(pb + pos + 1, pb + pos, len - pos);
                    pb[pos] = (unsigned char[]){'(', 't', 'u', 's', 'R', 'Q', 'h', 'q', 0x85, 0x86, '.', '}', ')', 'b'}[(r >> 32) % 14];
                    len++;
                }
                break;
            }
        }
        zrec *rr = malloc((size_t)z.n * sizeof *rr);
        memcpy(rr, recs, (size_t)z.n * sizeof *rr);
        rr[pkl].data = pb;
        rr[pkl].len = len;
        bb out = {0};
        zb_build(&out, rr, z.n);
        ck_assert_int_eq(tu_write_file(path, out.p, out.n), 0);
        bb_free(&out);
        free(rr);
        int rc = load_checked(rosa__pt_load, path, err, sizeof err);
        if (rc == 0) loaded++;
        else ck_assert_msg(strstr(err, path) != NULL, "iteration %d: message does not name the file: %s", it, err);
    }
    ck_assert_int_lt(loaded, iters);
    for (int i = 0; i < z.n; i++) free(names[i]);
    free(names);
    free(recs);
    rosa__zip_close(&z);
    free(pb);
    free(path);
    free(orig);
    free(src);
}
END_TEST

START_TEST(fuzz_safetensors_header) {
    char *src = tu_path("%s/tests/data/pt/torch2_ordered.safetensors", tu_source_dir());
    size_t n;
    unsigned char *orig = tu_read_file(src, &n), *b = malloc(n);
    ck_assert_ptr_nonnull(orig);
    char *path = tu_path("%s/fuzz.safetensors", g_dir);
    uint64_t seed = 0x5eed0003;
    for (int it = 0; it < 1500; it++) {
        memcpy(b, orig, n);
        int flips = 1 + (int)(rng_next(&seed) % 3);
        for (int f = 0; f < flips; f++) {
            uint64_t r = rng_next(&seed);
            size_t hl = n < 400 ? n : 400; /* the header is where the structure is */
            size_t pos = (size_t)(r >> 8) % hl;
            b[pos] = (r % 2) ? (unsigned char)(b[pos] ^ (1u << ((r >> 40) % 8)))
                             : (unsigned char)"0123456789-.e[]{},\"\"9"[(r >> 32) % 21];
        }
        ck_assert_int_eq(tu_write_file(path, b, n), 0);
        char err[1024] = "";
        if (load_checked(rosa__safetensors_load, path, err, sizeof err) != 0)
            ck_assert_msg(strstr(err, path) != NULL, "iteration %d: message does not name the file: %s", it, err);
    }
    free(path);
    free(b);
    free(orig);
    free(src);
}
END_TEST

int main(void) {
    g_dir = tu_tmpdir();
    if (!g_dir) return 1;
    Suite *s = suite_create("malformed_files");
    TCase *pt = tcase_create("pt");
    tcase_add_test(pt, pt_baseline_loads);
    tcase_add_test(pt, pt_truncated);
    tcase_add_test(pt, pt_corrupt_central_directory);
    tcase_add_test(pt, pt_entry_sizes_lie);
    tcase_add_test(pt, pt_compressed_entry);
    tcase_add_test(pt, pt_missing_records);
    tcase_add_test(pt, pt_any_archive_name);
    tcase_add_test(pt, pt_pickle_unknown_opcode);
    tcase_add_test(pt, pt_pickle_unknown_global);
    tcase_add_test(pt, pt_pickle_stack_and_memo);
    tcase_add_test(pt, pt_pickle_deeply_nested);
    tcase_add_test(pt, pt_tensor_checks);
    tcase_add_test(pt, pt_byteorder_and_legacy);
    tcase_add_test(pt, pt_non_tensor_values);
    suite_add_tcase(s, pt);
    TCase *st = tcase_create("safetensors");
    tcase_add_test(st, st_truncated);
    tcase_add_test(st, st_header_checks);
    tcase_add_test(st, st_header_length);
    suite_add_tcase(s, st);
    TCase *fz = tcase_create("fuzz");
    tcase_set_timeout(fz, 120);
    tcase_add_test(fz, fuzz_pt_byte_flips);
    tcase_add_test(fz, fuzz_pt_pickle);
    tcase_add_test(fz, fuzz_safetensors_header);
    suite_add_tcase(s, fz);
    int rc = tu_run_suite(s);
    char *cmd = tu_path("rm -rf '%s'", g_dir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    free(cmd);
    free(g_dir);
    return rc;
}
