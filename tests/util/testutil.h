/* testutil.h: helpers shared by the Check test programs (paths, files, golden cases). */
#ifndef ROSA_TESTUTIL_H
#define ROSA_TESTUTIL_H
#include <stddef.h>
#include <stdint.h>

/* Directory of ../shared beside the source tree (or $ROSA_SHARED), or NULL if absent. */
const char *tu_shared_dir(void);
/* If ../shared is absent: print a notice and exit 77 (ctest: skipped). */
void tu_require_shared(const char *test_name);
/* Path helpers: returns a static-per-call-site-safe malloc'd string (caller frees). */
char *tu_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *tu_source_dir(void);
const char *tu_binary_dir(void);
/* Read a whole file; returns malloc'd buffer (NUL-terminated) and its size, or NULL. */
void *tu_read_file(const char *path, size_t *len);
/* Write a file; 0 on success. */
int tu_write_file(const char *path, const void *data, size_t len);
/* A fresh temporary directory (malloc'd path). */
char *tu_tmpdir(void);
/* The load options a golden case's case.json "run" block asks for (window, global layers, bits
 * per route, inject mode) on top of rosa_load_opts_init, 2 threads.  Returns its adapter's path
 * (malloc'd, caller frees) when CASE_DIR/adapter/rosa_adapter.safetensors exists, else NULL. */
struct rosa_load_opts;
char *tu_golden_opts(const char *case_dir, struct rosa_load_opts *o);
/* The prompt of a golden case (CASE_DIR/case.json "prompt"): malloc'd ids, their count in *T;
 * NULL when the file or the field is missing. */
int32_t *tu_golden_prompt(const char *case_dir, int *T);
/* Run a Check suite; returns the process exit code. */
struct Suite;
int tu_run_suite(struct Suite *s);
#endif
