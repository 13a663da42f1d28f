/* testutil.c: see testutil.h. */
#define _GNU_SOURCE
#include <check.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

const char *tu_source_dir(void) { return ROSA_SOURCE_DIR; }
const char *tu_binary_dir(void) { return ROSA_BINARY_DIR; }

const char *tu_shared_dir(void) {
    static char buf[4096];
    const char *env = getenv("ROSA_SHARED");
    if (env && *env) snprintf(buf, sizeof buf, "%s", env);
    else snprintf(buf, sizeof buf, "%s/../shared", ROSA_SOURCE_DIR);
    struct stat st;
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/golden", buf);
    if (stat(probe, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return buf;
}

void tu_require_shared(const char *test_name) {
    if (!tu_shared_dir()) {
        printf("NOTICE: %s skipped: ../shared (golden cases, tokenizer) not found beside the "
               "source tree; set ROSA_SHARED to its path to run it\n", test_name);
        exit(77);
    }
}

char *tu_path(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

void *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b) { fclose(f); return NULL; }
    if (fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); fclose(f); return NULL; }
    b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

int tu_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    fclose(f);
    return w == len ? 0 : -1;
}

/* Temporary directories are removed when the test program exits. */
static char *tmpdirs[256];
static int ntmpdirs;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void rm_tmpdirs(void) {
    for (int i = 0; i < ntmpdirs; i++) {
        nftw(tmpdirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(tmpdirs[i]);
    }
    ntmpdirs = 0;
}

char *tu_tmpdir(void) {
    char tmpl[] = "/tmp/rosa-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d) return NULL;
    if (ntmpdirs == 0) atexit(rm_tmpdirs);
    if (ntmpdirs < 256) tmpdirs[ntmpdirs++] = strdup(d);
    return strdup(d);
}

int tu_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? 0 : 1;
}
