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

#include <cjson/cJSON.h>

#include "rosa.h"
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

char *tu_golden_opts(const char *case_dir, rosa_load_opts *o) {
    rosa_load_opts_init(o);
    o->threads = 2;
    char *p = tu_path("%s/case.json", case_dir);
    char *text = tu_read_file(p, NULL);
    free(p);
    cJSON *c = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *r = cJSON_GetObjectItem(c, "run");
    const cJSON *w = cJSON_GetObjectItem(r, "window"), *gl = cJSON_GetObjectItem(r, "global_layers");
    const cJSON *b = cJSON_GetObjectItem(r, "bits_per_route"), *md = cJSON_GetObjectItem(r, "inject_mode");
    if (cJSON_IsNumber(w) && !cJSON_IsTrue(cJSON_GetObjectItem(r, "window_from_config"))) {
        o->window = (int)w->valuedouble;
        if (cJSON_IsNumber(gl)) o->global_layers = (int)gl->valuedouble;
    }
    if (cJSON_IsNumber(b)) o->bits_per_route = (int)b->valuedouble;
    if (cJSON_IsString(md))
        o->inject_mode = strcmp(md->valuestring, "pre_attn") == 0 ? ROSA_INJECT_PRE_ATTN : ROSA_INJECT_POST_ATTN;
    cJSON_Delete(c);
    char *adapter = tu_path("%s/adapter/rosa_adapter.safetensors", case_dir);
    struct stat st;
    if (stat(adapter, &st) != 0) {
        free(adapter);
        return NULL;
    }
    o->adapter = adapter;
    return adapter;
}

int32_t *tu_golden_prompt(const char *case_dir, int *T) {
    char *p = tu_path("%s/case.json", case_dir);
    char *text = tu_read_file(p, NULL);
    free(p);
    cJSON *c = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *pr = cJSON_GetObjectItem(c, "prompt");
    int n = cJSON_IsArray(pr) ? cJSON_GetArraySize(pr) : 0;
    int32_t *ids = n ? malloc((size_t)n * sizeof *ids) : NULL;
    int i = 0;
    if (ids)
        for (const cJSON *e = pr->child; e; e = e->next) ids[i++] = (int32_t)e->valuedouble;
    cJSON_Delete(c);
    *T = ids ? n : 0;
    return ids;
}

int tu_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? 0 : 1;
}
