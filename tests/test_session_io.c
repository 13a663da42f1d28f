/* test_session_io.c: the buffered, checksummed sequential I/O of session files
 * (engine/core/session_io.c).
 * - The checksum does not depend on how the bytes are split into updates (the writer and the
 *   reader split them differently: buffered and direct paths), changes with any flipped bit
 *   and with zero bytes appended.
 * - Round trip through a file of small fields and arrays above the direct-I/O threshold; a
 *   read past the end is ROSA_ERR_FORMAT and leaves the reader failed; a wrong trailer, or bytes
 *   after it, are refused by rosa__sio_check_end. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rosa.h"
#include "core/session_io.h"
#include "testutil.h"

static uint64_t rng(uint64_t *g) {
    *g ^= *g << 13;
    *g ^= *g >> 7;
    *g ^= *g << 17;
    return *g;
}

static uint64_t cks_of(const uint8_t *p, size_t n) {
    rosa__cks c;
    rosa__cks_init(&c);
    rosa__cks_update(&c, p, n);
    return rosa__cks_final(&c);
}

START_TEST(checksum_splits_and_flips) {
    uint64_t g = 77;
    size_t n = 5000;
    uint8_t *b = malloc(n + 8);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rng(&g);
    uint64_t whole = cks_of(b, n);
    for (int trial = 0; trial < 200; trial++) {
        rosa__cks c;
        rosa__cks_init(&c);
        for (size_t at = 0; at < n;) {
            size_t k = 1 + rng(&g) % (trial % 2 ? 7 : 300);
            if (k > n - at) k = n - at;
            rosa__cks_update(&c, b + at, k);
            at += k;
        }
        ck_assert_uint_eq(rosa__cks_final(&c), whole);
    }
    for (size_t i = 0; i < n; i += 13)
        for (int bit = 0; bit < 8; bit += 3) {
            b[i] ^= (uint8_t)(1u << bit);
            ck_assert_uint_ne(cks_of(b, n), whole);
            b[i] ^= (uint8_t)(1u << bit);
        }
    memset(b + n, 0, 8);
    for (size_t extra = 1; extra <= 8; extra++) ck_assert_uint_ne(cks_of(b, n + extra), whole);
    ck_assert_uint_ne(cks_of(b, 0), cks_of(b + n, 1)); /* empty vs one zero byte */
    free(b);
}
END_TEST

START_TEST(file_round_trip) {
    char *dir = tu_tmpdir(), *path = tu_path("%s/io.bin", dir);
    size_t big = (size_t)3 << 20, sizes[] = {7, 64, big, 1, (size_t)1 << 20, 100000, 3};
    enum { NS = sizeof sizes / sizeof *sizes };
    uint8_t *src[NS];
    uint64_t g = 9, total = 0;
    for (int i = 0; i < NS; i++) {
        src[i] = malloc(sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++) src[i][j] = (uint8_t)rng(&g);
        total += sizes[i];
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    rosa__sio w;
    ck_assert_int_eq(rosa__sio_writer(&w, fd), 0);
    for (int i = 0; i < NS; i++) ck_assert_int_eq(rosa__sio_put(&w, src[i], sizes[i]), 0);
    ck_assert_int_eq(rosa__sio_finish(&w), 0);
    rosa__sio_close(&w);
    close(fd);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq((uint64_t)st.st_size, total + 8);
    /* read back, in the same pieces */
    fd = open(path, O_RDONLY);
    rosa__sio r;
    ck_assert_int_eq(rosa__sio_reader(&r, fd, (uint64_t)st.st_size), 0);
    for (int i = 0; i < NS; i++) {
        uint8_t *d = malloc(sizes[i]);
        ck_assert_int_eq(rosa__sio_get(&r, d, sizes[i]), 0);
        ck_assert_mem_eq(d, src[i], sizes[i]);
        free(d);
    }
    ck_assert_int_eq(rosa__sio_check_end(&r), 0);
    rosa__sio_close(&r);
    close(fd);
    /* a read past the end fails and stays failed */
    fd = open(path, O_RDONLY);
    ck_assert_int_eq(rosa__sio_reader(&r, fd, (uint64_t)st.st_size), 0);
    uint8_t *d = malloc(total + 16);
    ck_assert_int_eq(rosa__sio_get(&r, d, total + 9), ROSA_ERR_FORMAT);
    ck_assert_int_eq(rosa__sio_get(&r, d, 1), ROSA_ERR_FORMAT);
    rosa__sio_close(&r);
    close(fd);
    /* a trailer that does not match; bytes after the trailer */
    size_t len;
    uint8_t *all = tu_read_file(path, &len);
    for (int k = 0; k < 2; k++) {
        if (k == 0) all[len - 3] ^= 1;
        ck_assert_int_eq(tu_write_file(path, all, len + (size_t)k), 0);
        fd = open(path, O_RDONLY);
        ck_assert_int_eq(rosa__sio_reader(&r, fd, len + (size_t)k), 0);
        ck_assert_int_eq(rosa__sio_get(&r, d, total), 0);
        ck_assert_int_eq(rosa__sio_check_end(&r), ROSA_ERR_FORMAT);
        rosa__sio_close(&r);
        close(fd);
        if (k == 0) all[len - 3] ^= 1;
    }
    free(all);
    free(d);
    for (int i = 0; i < NS; i++) free(src[i]);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("session_io");
    TCase *tc = tcase_create("io");
    tcase_add_test(tc, checksum_splits_and_flips);
    tcase_add_test(tc, file_round_trip);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
